"""The incidents notebook runs from top to bottom on the sample data (cwd: repository root)."""

from __future__ import annotations

from .notebook_runner import run_notebook


def test_incidents_notebook_runs(monkeypatch, tmp_path):
    import re

    ran = run_notebook("03_incidents.ipynb", monkeypatch, tmp_path, timeout_s=300)
    assert "exploitation ratio" in ran.text and "95% CI" in ran.text
    found = re.search(r"(\d+) hexagons, (\d+) hot, (\d+) cold", ran.text)
    assert found, ran.text[:500]
    assert int(found.group(2)) > 0  # the towns' clusters are found
    assert ran.images >= 4  # Gi* map, density, yearly and monthly charts
