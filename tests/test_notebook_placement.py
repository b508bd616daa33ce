"""The placement notebook runs from top to bottom on the sample and prints what it computed."""

from __future__ import annotations

import json

import pytest

from .notebook_runner import run_notebook
from .pins import PLAIN


@pytest.mark.slow
def test_placement_notebook_runs(monkeypatch, tmp_path):
    ran = run_notebook("04_placement.ipynb", monkeypatch, tmp_path)
    text = ran.text
    # Three placements printed; the unguarded seam before each is the sample's (posts by
    # range for the first two; by line of sight it can only grow).
    before = [float(x) for x in _all(text, "unguarded before")]
    after = [float(x) for x in _all(text, "unguarded after")]
    closed = [float(x) for x in _all(text, "closed")]
    assert len(before) == len(after) == len(closed) == 3
    assert before[:2] == pytest.approx([PLAIN["unguarded_length_km"]] * 2, abs=0.05)
    assert before[2] >= before[0] - 0.05
    for b, a, c in zip(before, after, closed):
        assert 0 < c and a == pytest.approx(b - c, abs=0.1)
    assert "proven optimal" in text
    assert ran.images >= 1  # the map was drawn
    # What it saved in this run's folder matches what it printed first.
    doc = json.loads((tmp_path / "out" / "notebook04" / "placement.json").read_text())
    assert doc["sites_placed"] == 4 and doc["k"] == 4
    assert doc["unguarded_before_km"] == pytest.approx(PLAIN["unguarded_length_km"], rel=1e-6)
    assert doc["unguarded_after_km"] == pytest.approx(after[0], abs=0.05)
    assert doc["closed_km"] == pytest.approx(sum(s["gain_km"] for s in doc["sites"]), abs=1e-3)


def _all(text: str, label: str) -> list[str]:
    import re

    return re.findall(rf"^\s*{label}\s+([-\d.]+) km", text, flags=re.M)
