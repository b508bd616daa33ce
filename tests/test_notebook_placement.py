"""The placement notebook runs from top to bottom on the sample and says what it should."""

from __future__ import annotations

import json

import pytest

from .notebook_runner import ROOT, run_notebook


@pytest.mark.slow
def test_placement_notebook_runs(monkeypatch):
    ran = run_notebook("04_placement.ipynb", monkeypatch)
    text = ran.text
    # The three placements were printed, each with before/after figures and a statement.
    assert text.count("unguarded before") == 3 and text.count("unguarded after") == 3
    assert "proven optimal" in text
    assert ran.images >= 1  # the map was drawn
    # What it saved matches what it printed.
    doc = json.loads((ROOT / "out" / "notebook04" / "placement.json").read_text())
    assert doc["sites_placed"] == 4 and doc["k"] == 4
    assert doc["unguarded_after_km"] < doc["unguarded_before_km"]
    assert f"{doc['unguarded_after_km']:10.1f} km" in text
