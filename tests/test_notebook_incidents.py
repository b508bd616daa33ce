"""The incidents notebook runs from top to bottom on the sample and prints the demo's figures."""

from __future__ import annotations

import pytest

from .notebook_runner import run_notebook
from .pins import DEMO


def test_incidents_notebook_runs(monkeypatch, tmp_path):
    ran = run_notebook("03_incidents.ipynb", monkeypatch, tmp_path, timeout_s=300)
    # The same events and gap region as the demo (the gap region does not depend on the DEM).
    assert ran.number(r"events: {} \(coarse") == DEMO["incidents_total"]
    assert ran.number(r"coarse, left out: {}\)") == DEMO["incidents_coarse"]
    assert ran.number(r"in the study area: {} —") == DEMO["incidents_in_study_area"]
    assert ran.number(r"in the gap region: {},") == DEMO["incidents_in_gap"]
    assert ran.number(r"elsewhere: {}") == DEMO["incidents_in_rest"]
    ratio, lo, hi = ran.numbers(r"exploitation ratio {} \(95% CI {}–{}\)")
    assert ratio == pytest.approx(DEMO["exploitation_ratio"], abs=5e-4)
    assert lo == pytest.approx(DEMO["exploitation_ratio_low"], abs=5e-4)
    assert hi == pytest.approx(DEMO["exploitation_ratio_high"], abs=5e-4)
    # Hot spots: a count of hexagons, of which some hot, at an FDR-controlled p.
    n_hex, n_hot, n_cold = ran.numbers(r"{} hexagons, {} hot, {} cold")
    assert n_hex > 100 and 0 < n_hot + n_cold < n_hex
    assert n_hot > 0  # the towns' clusters are found
    # The kernel density integrates to at most the non-coarse events.
    integral = ran.number(r"integral {} events")
    assert 0 < integral <= DEMO["incidents_used"]
    assert ran.images >= 4  # Gi* map, density, yearly and monthly charts
