"""The incidents notebook runs from top to bottom on the sample data (cwd: repository root)."""

from __future__ import annotations

from .notebook_runner import run_notebook


def test_incidents_notebook_runs(monkeypatch):
    ran = run_notebook("03_incidents.ipynb", monkeypatch, timeout_s=300)
    assert "exploitation ratio" in ran.text and "95% CI" in ran.text
    assert "hexagons" in ran.text and "hot" in ran.text
    assert ran.images >= 4  # Gi* map, density, yearly and monthly charts
