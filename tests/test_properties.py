"""Property tests (hypothesis) of the seam and coverage invariants and of reprojection."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Transformer

from gapmap import analyze, parse_side
from gapmap.crs import GEOD, geodesic_length_km, metric_crs

from .conftest import UTM38, X0, Y0

A, B = parse_side("krg=peshmerga"), parse_side("federal=isf,pmf")
FAST = settings(max_examples=3, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


def _zones(gap_km: float, shift_km: float) -> gpd.GeoDataFrame:
    """Two 20 km strips ``gap_km`` apart, the second shifted along by ``shift_km``."""
    g, s = gap_km * 1e3, shift_km * 1e3
    return gpd.GeoDataFrame(
        {"force": ["peshmerga", "isf"]},
        geometry=[shapely.box(X0, Y0, X0 + 10e3, Y0 + 20e3),
                  shapely.box(X0 + 10e3 + g, Y0 + s, X0 + 20e3 + g, Y0 + 20e3 + s)],
        crs=UTM38)


def _posts(points) -> gpd.GeoDataFrame | None:
    if not points:
        return None
    return gpd.GeoDataFrame(
        {"force": [f for f, _, _, _ in points], "range_km": [r for _, _, _, r in points]},
        geometry=[shapely.Point(X0 + x * 1e3, Y0 + y * 1e3) for _, x, y, _ in points],
        crs=UTM38)


post = st.tuples(st.sampled_from(["isf", "peshmerga"]), st.floats(0, 40), st.floats(-5, 25),
                 st.floats(0.5, 8))
layout = dict(gap_km=st.floats(2, 20), shift_km=st.floats(-10, 10), reach_km=st.floats(0, 4))


def _unguarded(zones, posts, reach_km) -> tuple[float, float]:
    from gapmap.settings import Settings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = analyze(zones, A, B, posts=posts, settings=Settings(reach_km=reach_km, max_width_km=30.0)).summary
    return s["unguarded_length_km"], s["seam_length_km"]


@FAST
@given(posts=st.lists(post, max_size=4), **layout)
def test_unguarded_never_exceeds_the_seam(gap_km, shift_km, reach_km, posts):
    ung, seam = _unguarded(_zones(gap_km, shift_km), _posts(posts), reach_km)
    assert 0 <= ung <= seam + 1e-9


@settings(max_examples=2, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(posts=st.lists(post, max_size=3), more=st.lists(post, min_size=1, max_size=3), **layout)
def test_more_posts_never_lengthen_the_unguarded_seam(gap_km, shift_km, reach_km, posts, more):
    zones = _zones(gap_km, shift_km)
    before, seam_before = _unguarded(zones, _posts(posts), reach_km)
    after, seam_after = _unguarded(zones, _posts(posts + more), reach_km)
    assert seam_after == pytest.approx(seam_before, rel=1e-9)  # posts do not move the seam
    assert after <= before + 1e-6


lonlat = st.tuples(st.floats(-179.9, 179.9), st.floats(-79, 79))


@settings(max_examples=25, deadline=None, derandomize=True)
@given(centre=lonlat, offsets=st.lists(st.tuples(st.floats(-1, 1), st.floats(-1, 1)),
                                       min_size=2, max_size=20))
def test_reprojection_round_trip_and_geodesic_length(centre, offsets):
    lon = np.array([centre[0] + dx for dx, _ in offsets])
    lon = (lon + 180) % 360 - 180
    lat = np.clip(np.array([centre[1] + dy for _, dy in offsets]), -80, 80)
    pts = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs=4326)
    crs = metric_crs(pts)
    fwd = Transformer.from_crs(4326, crs, always_xy=True)
    back = Transformer.from_crs(crs, 4326, always_xy=True)
    x, y = fwd.transform(lon, lat)
    lon2, lat2 = back.transform(x, y)
    dlon = (np.asarray(lon2) - lon + 180) % 360 - 180
    assert np.abs(dlon).max() < 1e-7 and np.abs(np.asarray(lat2) - lat).max() < 1e-7
    # The same line measured in lon/lat and in the metric CRS: one geodesic length (0.1%).
    # A lon/lat line is straight in lon/lat (RFC 7946): one crossing the antimeridian is given
    # with continuous longitudes (179 → 180.5), not wrapped ones (179 → −179.5, the long way).
    raw = np.array([centre[0] + dx for dx, _ in offsets])
    line = shapely.LineString(np.column_stack([raw, lat]))
    metric = shapely.LineString(np.column_stack([x, y]))
    ref = sum(GEOD.inv(lon[i], lat[i], lon[i + 1], lat[i + 1])[2]
              for i in range(len(lon) - 1)) / 1000
    km_ll = geodesic_length_km([line], 4326)[0]
    km_m = geodesic_length_km([metric], crs)[0]
    assert km_ll == pytest.approx(ref, rel=1e-3, abs=1e-6)
    assert km_m == pytest.approx(ref, rel=1e-3, abs=1e-3)
