"""Shared fixtures: small synthetic scenes whose answers can be computed by hand."""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import matplotlib
import pytest
import shapely

matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parents[1]
GEODATA = ROOT / "geodata"
UTM38 = 32638
X0, Y0 = 400_000.0, 3_900_000.0  # a spot near Kirkuk in UTM 38N


@pytest.fixture
def strips() -> gpd.GeoDataFrame:
    """Two parallel 100 km strips, 20 km apart: the seam is x = X0 + 20 km, width 20 km."""
    return gpd.GeoDataFrame(
        {"force": ["peshmerga", "isf"], "name": ["north", "south"]},
        geometry=[shapely.box(X0, Y0, X0 + 10e3, Y0 + 100e3),
                  shapely.box(X0 + 30e3, Y0, X0 + 40e3, Y0 + 100e3)],
        crs=UTM38)


@pytest.fixture
def strips_area() -> gpd.GeoDataFrame:
    """A study area spanning the strips' length only."""
    return gpd.GeoDataFrame(geometry=[shapely.box(X0 - 20e3, Y0, X0 + 60e3, Y0 + 100e3)],
                            crs=UTM38)
