"""The quick-start notebook runs from top to bottom on the sample and shows what it says."""

from __future__ import annotations

import pytest

from .notebook_runner import ROOT, run_notebook


@pytest.mark.slow
def test_quickstart_notebook_runs(monkeypatch):
    ran = run_notebook("01_quickstart.ipynb", monkeypatch)
    assert "seam_length_km" in ran.shown and "unguarded_share" in ran.shown  # the summary
    assert "corridor_id" in ran.shown and "C1" in ran.shown  # the corridor table
    assert ran.images >= 1  # the map
    assert (ROOT / "out" / "notebook01" / "summary.json").exists()
