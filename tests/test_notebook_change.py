"""The change-over-time notebook (notebooks/05_change_over_time.ipynb) runs top to bottom."""

from __future__ import annotations

import pytest
from pyproj import Geod, Transformer

from .notebook_runner import run_notebook


@pytest.mark.slow
def test_change_notebook_runs(monkeypatch, tmp_path):
    ran = run_notebook("05_change_over_time.ipynb", monkeypatch, tmp_path)
    # The checkpoint's 5 km range on the seam x = 420 km: a 10 km chord, geodesic.
    lon, lat = Transformer.from_crs(32638, 4326, always_xy=True).transform(
        [420e3, 420e3], [3945e3, 3955e3])
    chord_km = Geod(ellps="WGS84").line_length(lon, lat) / 1000
    closed = ran.number(r"checkpoint manned on 2024-03-08 closed {} km")
    opened = ran.number(r"checkpoint withdrawn on 2024-03-15 opened {} km")
    assert closed == pytest.approx(chord_km, abs=0.01)
    assert opened == pytest.approx(chord_km, abs=0.01)
    assert ran.images >= 1
