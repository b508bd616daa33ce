"""The terrain notebook (notebooks/02_terrain.ipynb) runs from top to bottom on the sample."""

from __future__ import annotations

import pytest

from .notebook_runner import ROOT, run_notebook


@pytest.mark.slow
def test_terrain_notebook_runs(monkeypatch):
    assert (ROOT / "geodata" / "dem_synthetic.tif").exists(), "sample data missing: geodata/"
    ran = run_notebook("02_terrain.ipynb", monkeypatch)
    # The steps printed what they measured: visibility, hidden seam, posts' seen share.
    assert "of the window is seen" in ran.text
    assert "Seam the posts reach but cannot see" in ran.text
    assert ran.images >= 4
