"""Shared fixtures: small synthetic scenes whose answers can be computed by hand."""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import matplotlib
import pytest

from . import scenes
from .scenes import UTM38, X0, Y0  # noqa: F401  (re-exported for the tests)

matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parents[1]
GEODATA = ROOT / "geodata"


@pytest.fixture
def strips() -> gpd.GeoDataFrame:
    """Two parallel 100 km strips, 20 km apart: the seam is x = X0 + 20 km, width 20 km."""
    return scenes.strips()


@pytest.fixture
def strips_area() -> gpd.GeoDataFrame:
    """A study area spanning the strips' length only."""
    return scenes.strips_area()
