"""Shared fixtures: small synthetic scenes whose answers can be computed by hand."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
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


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> tuple[Path, str]:
    """``gapmap demo`` run once per test session: (its output folder, what it printed)."""
    exe = str(Path(sys.executable).with_name("gapmap"))
    out = tmp_path_factory.mktemp("demo") / "out"
    p = subprocess.run([exe, "demo", "--out", str(out)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return out, p.stdout


@pytest.fixture(scope="module")
def cluster():
    """An explicit ``distributed.LocalCluster`` (2 worker processes), reached by its address
    like a remote scheduler; one per test module, so a test that kills workers cannot disturb
    another module's."""
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        c = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                         dashboard_address=None, silence_logs=logging.ERROR)
    yield c
    c.close()
