"""The terrain notebook (notebooks/02_terrain.ipynb) runs from top to bottom on the sample."""

from __future__ import annotations

import pytest

from .notebook_runner import ROOT, run_notebook


@pytest.mark.slow
def test_terrain_notebook_runs(monkeypatch, tmp_path):
    assert (ROOT / "geodata" / "dem_synthetic.tif").exists(), "sample data missing: geodata/"
    ran = run_notebook("02_terrain.ipynb", monkeypatch, tmp_path)
    rows, cols, cell = ran.numbers(r"DEM window: {} × {} cells of {} m")
    assert rows > 100 and cols > 100 and cell == pytest.approx(90, abs=1)
    seen = ran.number(r"{}% of the window is seen")
    assert 0 < seen < 100
    two = ran.number(r"{}% by two or more")
    assert 0 <= two <= seen
    in_range, seam = ran.numbers(r"Seam within range of a post: {} km of {} km")
    hidden = ran.number(r"Seam the posts reach but cannot see: {} km")
    # Line of sight can only take coverage away, and only within the posts' range.
    assert 0 <= hidden <= in_range <= seam
    assert ran.images >= 4
