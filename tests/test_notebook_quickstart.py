"""The quick-start notebook runs from top to bottom on the sample and shows what it computed."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from .notebook_runner import run_notebook
from .pins import PLAIN, PLAIN_TOL, assert_pinned


@pytest.mark.slow
def test_quickstart_notebook_runs(monkeypatch, tmp_path):
    ran = run_notebook("01_quickstart.ipynb", monkeypatch, tmp_path)
    # What it saved in this run's folder is the sample's plain analysis (posts by range).
    saved = json.loads((tmp_path / "out" / "notebook01" / "summary.json").read_text())["pairs"][0]
    assert_pinned(saved, PLAIN, PLAIN_TOL)
    # What it showed is what it saved: the summary's figures and the corridor table.
    for key in ("seam_length_km", "unguarded_length_km", "width_mean_km", "gap_area_km2"):
        assert ran.number(f"'{key}': {{}}", "shown") == pytest.approx(saved[key], abs=1e-6), key
    table = pd.read_csv(tmp_path / "out" / "notebook01" / "corridors.csv")
    assert len(table) == saved["corridors"]
    longest = table["length_km"].max()
    assert longest == pytest.approx(saved["longest_corridor_km"], rel=1e-6)
    assert f"{longest:.1f}" in ran.shown  # the table shown, rounded to 0.1
    assert ran.images >= 1  # the map
