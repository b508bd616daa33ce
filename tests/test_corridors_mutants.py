"""Corridor figures on small scenes, stage by stage, to the precision the code has.

These tests run the stages of :mod:`gapmap.corridors` (prepare inputs → seam → coverage →
corridor tables → summary) on scenes of a few kilometres, so that each takes a fraction of a
second, and they compare every figure with a hand computation made geodesic with
``pyproj.Geod``. The scenes sit 100 km west of UTM 38N's central meridian, where the grid
scale is 0.99972: a figure reported in grid metres instead of geodesic ones is off by 2.8e-4,
far outside the tolerances here. They were written against the mutants that survived the
mutation run of docs/mutation.md.

The small strips::

    x (km from X0):   0 ── 2            6 ── 8
                      | A  |   seam    | B  |       10 km long (y from Y0 to Y0 + 10 km)
                      |    |  x = 4    |    |

The seam is x = X0 + 4 km, 10 km long, 4 km wide everywhere.
"""

from __future__ import annotations

import os

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import CRS, Geod, Transformer

from gapmap import Settings, parse_side
from gapmap.errors import InputWarning
from gapmap.corridors import (coverage_stage, corridor_tables, gap_stage, prepare_inputs,
                              read_layers, seam_stage, summarize)

from .conftest import UTM38, X0, Y0

A = parse_side("A=a")
B = parse_side("B=b")
GEOD = Geod(ellps="WGS84")
TO_LONLAT = Transformer.from_crs(UTM38, 4326, always_xy=True)
SEAM_X = X0 + 4e3


def geod_km(x0: float, y0: float, x1: float, y1: float) -> float:
    """Geodesic length of the straight UTM segment, densified every 10 m (the reference)."""
    n = int(np.hypot(x1 - x0, y1 - y0) / 10) + 2
    lon, lat = TO_LONLAT.transform(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    return GEOD.line_length(lon, lat) / 1e3


def geod_area_km2(poly: shapely.Polygon) -> float:
    ring = shapely.segmentize(poly, 10.0).exterior
    lon, lat = TO_LONLAT.transform(*np.asarray(ring.coords).T)
    return abs(GEOD.polygon_area_perimeter(lon, lat)[0]) / 1e6


def seam_km(y0_km: float, y1_km: float) -> float:
    """Geodesic length of the seam x = X0 + 4 km between two distances along it (km)."""
    return geod_km(SEAM_X, Y0 + y0_km * 1e3, SEAM_X, Y0 + y1_km * 1e3)


def small_strips(reach_km=(np.nan, np.nan), split_b: bool = False) -> gpd.GeoDataFrame:
    """The small strips; ``split_b`` cuts B's strip at y = 5 km into a south and a north zone
    (reach_km then holds A's, B south's and B north's per-zone reach)."""
    a = shapely.box(X0, Y0, X0 + 2e3, Y0 + 10e3)
    if split_b:
        geoms = [a, shapely.box(X0 + 6e3, Y0, X0 + 8e3, Y0 + 5e3),
                 shapely.box(X0 + 6e3, Y0 + 5e3, X0 + 8e3, Y0 + 10e3)]
        forces = ["a", "b", "b"]
    else:
        geoms = [a, shapely.box(X0 + 6e3, Y0, X0 + 8e3, Y0 + 10e3)]
        forces = ["a", "b"]
    return gpd.GeoDataFrame({"force": forces, "reach_km": list(reach_km)[:len(geoms)]},
                            geometry=geoms, crs=UTM38)


def area(x0_km: float = -2.0, x1_km: float = 10.0) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(geometry=[shapely.box(X0 + x0_km * 1e3, Y0, X0 + x1_km * 1e3,
                                                  Y0 + 10e3)], crs=UTM38)


def posts_at(*ys_km: float, range_km: float = 1.0) -> gpd.GeoDataFrame:
    """Posts on the seam at these distances along it, each with ``range_km``."""
    return gpd.GeoDataFrame({"range_km": [range_km] * len(ys_km)},
                            geometry=[shapely.Point(SEAM_X, Y0 + y * 1e3) for y in ys_km],
                            crs=UTM38)


def stages(zones, *, posts=None, study=None, gap: bool = False, **settings):
    """Run the stages; the gap region (a 1500 × 1500 distance transform) only if asked."""
    kw = dict(reach_km=0.5, max_width_km=8.0, min_length_km=0.1)
    kw.update(settings)
    s = Settings(**kw)
    layers = read_layers(zones, A, B, posts=posts, study_area=area() if study is None else study,
                         settings=s)
    inp = prepare_inputs(layers, A, B, CRS.from_epsg(UTM38), s)
    seam = seam_stage(inp, 50.0)
    unguarded = coverage_stage(inp, seam)
    seam_gdf, corridors, minor = corridor_tables(inp, seam, unguarded)
    gap_gdf = gap_stage(inp) if gap else gpd.GeoDataFrame({"area_km2": [0.0]})
    return seam_gdf, corridors, minor, gap_gdf, summarize(inp, seam_gdf, corridors, minor,
                                                          gap_gdf)


def test_seam_of_small_strips_is_geodesic_and_4_km_wide():
    seam, corridors, minor, _, s = stages(small_strips())
    full = seam_km(0, 10)
    assert full == pytest.approx(10.0 / 0.99972, rel=2e-5)  # the grid is 2.8e-4 short here
    assert s["seam_length_km"] == pytest.approx(full, rel=1e-6)
    assert len(seam) == 1 and seam["corridor_id"].tolist() == ["S1"]
    assert seam["length_km"].iloc[0] == pytest.approx(full, rel=1e-6)
    for col in ("width_min_km", "width_mean_km", "width_max_km"):
        assert seam[col].iloc[0] == pytest.approx(4.0, abs=1e-6), col
    assert s["width_mean_km"] == pytest.approx(4.0, abs=1e-6)
    # The seam starts at its southern end (a north-south line), ends at its northern one.
    lon0, lat0 = TO_LONLAT.transform(SEAM_X, Y0)
    lon1, lat1 = TO_LONLAT.transform(SEAM_X, Y0 + 10e3)
    row = seam.iloc[0]
    assert [row.start_lon, row.start_lat, row.end_lon, row.end_lat] == pytest.approx(
        [lon0, lat0, lon1, lat1], abs=1e-7)
    # Reach 0.5 km covers nothing 2 km from both sides: one corridor, all the seam.
    assert s["corridors"] == 1 and s["minor_corridors"] == 0
    assert s["unguarded_length_km"] == pytest.approx(full, rel=1e-6)
    assert s["longest_corridor_km"] == pytest.approx(full, rel=1e-6)
    assert s["unguarded_share"] == pytest.approx(1.0, abs=1e-9)
    assert corridors["width_mean_km"].iloc[0] == pytest.approx(4.0, abs=1e-6)
    assert [corridors["corridor_id"].iloc[0], corridors["rank"].iloc[0]] == ["C1", 1]
    assert len(minor) == 0
    # The tables: the contract's columns, the sides' names, the analysis CRS.
    from gapmap.corridors import CORRIDOR_COLUMNS

    for table in (corridors, minor):
        assert set(table.columns) == set(CORRIDOR_COLUMNS) | {"geometry"}
        assert table.crs == CRS.from_epsg(UTM38)
    assert seam.crs == CRS.from_epsg(UTM38)
    assert corridors[["side_a", "side_b"]].values.tolist() == [["A", "B"]]
    assert (s["side_a"], s["side_b"]) == ("A", "B")


def test_a_post_on_the_seam_leaves_two_corridors_of_known_length():
    # A post 4 km along the seam with a 1 km range covers [3, 5] km: corridors [0, 3] and
    # [5, 10]. The range disc has a vertex on the seam's line, so the cut is exact.
    seam, corridors, minor, _, s = stages(small_strips(), posts=posts_at(4.0))
    south, north = seam_km(0, 3), seam_km(5, 10)
    assert s["corridors"] == 2 and s["minor_corridors"] == 0
    assert s["unguarded_length_km"] == pytest.approx(south + north, rel=1e-6)
    assert s["unguarded_share"] == pytest.approx((south + north) / seam_km(0, 10), rel=1e-6)
    assert s["longest_corridor_km"] == pytest.approx(north, rel=1e-6)
    # Rows by length (rank), ids by place along the seam from its southern start.
    assert corridors["corridor_id"].tolist() == ["C2", "C1"]
    assert corridors["rank"].tolist() == [1, 2]
    assert corridors["length_km"].tolist() == pytest.approx([north, south], rel=1e-6)
    lat = [TO_LONLAT.transform(SEAM_X, Y0 + y * 1e3)[1] for y in (0, 3, 5, 10)]
    assert corridors["start_lat"].tolist() == pytest.approx([lat[2], lat[0]], abs=1e-7)
    assert corridors["end_lat"].tolist() == pytest.approx([lat[3], lat[1]], abs=1e-7)
    for col in ("width_min_km", "width_mean_km", "width_max_km"):
        assert corridors[col].tolist() == pytest.approx([4.0, 4.0], abs=1e-6), col
    assert s["seam_length_km"] == pytest.approx(seam_km(0, 10), rel=1e-6)


def test_min_length_makes_one_stretch_minor_and_still_counts_it():
    # The same two stretches, 3 and 5 km; with min_length 4 km the southern one is minor
    # (one corridor and one minor stretch: the unguarded length still holds both).
    _, corridors, minor, _, s = stages(small_strips(), posts=posts_at(4.0), min_length_km=4.0)
    south, north = seam_km(0, 3), seam_km(5, 10)
    assert s["corridors"] == 1 and s["minor_corridors"] == 1
    assert s["unguarded_length_km"] == pytest.approx(south + north, rel=1e-6)
    assert s["longest_corridor_km"] == pytest.approx(north, rel=1e-6)
    assert minor["corridor_id"].tolist() == ["m1"] and corridors["corridor_id"].tolist() == ["C1"]
    assert minor["length_km"].iloc[0] == pytest.approx(south, rel=1e-6)
    assert minor["rank"].tolist() == [1]


def test_a_stretch_exactly_min_length_long_is_a_corridor():
    # Posts at 1.5 and 6.5 km (range 1 km) leave [0, 0.5], [2.5, 5.5] and [7.5, 10] km.
    _, corridors, minor, _, s = stages(small_strips(), posts=posts_at(1.5, 6.5),
                                       min_length_km=float(seam_km(7.5, 10)) * (1 - 1e-9))
    assert s["corridors"] == 2 and s["minor_corridors"] == 1
    assert sorted(corridors["length_km"]) == pytest.approx([seam_km(7.5, 10), seam_km(2.5, 5.5)],
                                                            rel=1e-6)
    assert minor["length_km"].tolist() == pytest.approx([seam_km(0, 0.5)], rel=1e-6)
    # Ids along the seam from the south: the minor stretch is m1, the corridors C1 then C2.
    assert corridors.sort_values("start_lat")["corridor_id"].tolist() == ["C1", "C2"]


def test_reach_beyond_half_the_width_covers_everything():
    _, corridors, minor, _, s = stages(small_strips(), reach_km=2.1)
    assert s["unguarded_length_km"] == 0.0 and s["longest_corridor_km"] == 0.0
    assert s["corridors"] == 0 and s["minor_corridors"] == 0
    assert s["unguarded_share"] == 0.0
    assert s["seam_length_km"] == pytest.approx(seam_km(0, 10), rel=1e-6)
    # Empty tables keep the contract's columns and types.
    from gapmap.corridors import CORRIDOR_COLUMNS

    for table in (corridors, minor):
        assert set(table.columns) == set(CORRIDOR_COLUMNS) | {"geometry"}
        assert table.crs == CRS.from_epsg(UTM38)
        assert table["corridor_id"].dtype == object and table["side_a"].dtype == object
        assert table["length_km"].dtype == float


@pytest.mark.parametrize("reach_a, reach_b", [(2.5, 0.5), (0.5, 2.5)])
def test_either_sides_reach_covers_the_seam(reach_a, reach_b):
    _, _, _, _, s = stages(small_strips(), reach_a_km=reach_a, reach_b_km=reach_b)
    assert s["unguarded_length_km"] == 0.0
    _, _, _, _, s = stages(small_strips(), reach_a_km=1.9, reach_b_km=1.9)
    assert s["unguarded_length_km"] == pytest.approx(seam_km(0, 10), rel=1e-6)


def test_a_zones_own_reach_overrides_its_sides():
    # Side reach 0.5 km; A's zone reaches 2.5 km: all of the seam is covered.
    _, _, _, _, s = stages(small_strips(reach_km=(2.5, np.nan)))
    assert s["unguarded_length_km"] == 0.0
    # B's northern zone alone reaches 2.5 km: only the southern half (to within one 50 m
    # sample at y = 5 km, where the generator changes zone) is unguarded.
    _, corridors, _, _, s = stages(small_strips(reach_km=(np.nan, np.nan, 2.5), split_b=True))
    assert s["corridors"] == 1
    assert s["unguarded_length_km"] == pytest.approx(seam_km(0, 5), abs=0.03)
    assert corridors["start_lat"].iloc[0] == pytest.approx(TO_LONLAT.transform(SEAM_X, Y0)[1],
                                                           abs=1e-7)
    # The same with B's southern zone: the northern half is unguarded.
    _, corridors, _, _, s = stages(small_strips(reach_km=(np.nan, 2.5, np.nan), split_b=True))
    assert s["unguarded_length_km"] == pytest.approx(seam_km(5, 10), abs=0.03)
    assert corridors["end_lat"].iloc[0] == pytest.approx(
        TO_LONLAT.transform(SEAM_X, Y0 + 10e3)[1], abs=1e-7)


def test_reach_zero_leaves_the_whole_seam_unguarded():
    _, _, _, _, s = stages(small_strips(), reach_km=0.0)
    assert s["unguarded_length_km"] == pytest.approx(seam_km(0, 10), rel=1e-6)


def test_width_limit_clips_the_seam():
    # Max width 3.9 km < the 4 km between the strips: no seam at all; 4.1 km: all of it.
    seam, _, _, _, s = stages(small_strips(), max_width_km=3.9)
    assert len(seam) == 0 and s["seam_length_km"] == 0.0
    # An empty seam table has the columns of a full one: the corridors' without ``rank``.
    from gapmap.corridors import CORRIDOR_COLUMNS

    assert set(seam.columns) == set(CORRIDOR_COLUMNS) - {"rank"} | {"geometry"}
    assert set(stages(small_strips())[0].columns) == set(seam.columns)
    assert s["unguarded_length_km"] == 0.0 and np.isnan(s["unguarded_share"])
    assert np.isnan(s["width_mean_km"])
    _, _, _, _, s = stages(small_strips(), max_width_km=4.1)
    assert s["seam_length_km"] == pytest.approx(seam_km(0, 10), rel=1e-6)


def test_study_area_clips_the_seam():
    study = gpd.GeoDataFrame(geometry=[shapely.box(X0, Y0 + 2e3, X0 + 8e3, Y0 + 7e3)],
                             crs=UTM38)
    seam, corridors, _, _, s = stages(small_strips(), study=study)
    assert s["seam_length_km"] == pytest.approx(seam_km(2, 7), rel=1e-6)
    assert corridors["length_km"].tolist() == pytest.approx([seam_km(2, 7)], rel=1e-6)


def test_a_seam_shorter_than_a_kilometre_has_its_width_and_share():
    study = gpd.GeoDataFrame(geometry=[shapely.box(X0, Y0 + 2e3, X0 + 8e3, Y0 + 2.6e3)],
                             crs=UTM38)
    _, _, _, _, s = stages(small_strips(), study=study, posts=posts_at(2.5, range_km=0.1))
    assert s["seam_length_km"] == pytest.approx(seam_km(2, 2.6), rel=1e-6)
    assert s["width_mean_km"] == pytest.approx(4.0, abs=1e-6)
    assert s["unguarded_share"] == pytest.approx(seam_km(2, 2.4) / seam_km(2, 2.6), rel=1e-6)


def test_a_third_forces_zone_on_the_seam_is_held_ground():
    # A zone of neither side astride the seam, y in [4, 6] km: the seam through it is not
    # seam (it is held), so 8 km are left in two stretches.
    zones = small_strips()
    third = gpd.GeoDataFrame({"force": ["other"], "reach_km": [np.nan]}, crs=UTM38,
                             geometry=[shapely.box(X0 + 3.5e3, Y0 + 4e3, X0 + 4.5e3, Y0 + 6e3)])
    zones = gpd.GeoDataFrame(pd.concat([zones, third], ignore_index=True), crs=UTM38)
    _, _, _, _, s = stages(zones)
    assert s["seam_length_km"] == pytest.approx(seam_km(0, 4) + seam_km(6, 10), rel=1e-6)
    assert s["corridors"] == 2


def test_gap_region_of_small_strips_by_hand():
    # Reach 0.5 km for A, 1 km for B: the gap is x in [2.5, 5] km over the study area's 10 km
    # (the study spans the strips only, so nothing lies beyond them).
    seam, _, _, gap, s = stages(small_strips(), study=area(0.0, 8.0), gap=True,
                                reach_a_km=0.5, reach_b_km=1.0)
    expected = shapely.box(X0 + 2.5e3, Y0, X0 + 5e3, Y0 + 10e3)
    assert s["gap_area_km2"] == pytest.approx(geod_area_km2(expected), rel=1e-6)
    assert gap.geometry.iloc[0].symmetric_difference(expected).area < 1.0  # m²
    assert s["seam_length_km"] == pytest.approx(seam_km(0, 10), rel=1e-6)


def _fake_side(fn):
    """A distance-to-side stand-in: d(p) = fn(x, y) metres, zone 0."""
    return lambda xy: (fn(xy[:, 0], xy[:, 1]), np.zeros(len(xy), np.int64))


def test_width_mean_is_weighted_by_length():
    # An L: 1 km east along y = 0 (w = 0), then 3 km north (w = y, 0 to 3 km, mean 1.5).
    # w is linear on each piece, so the length-weighted mean is exact: (0·1 + 1.5·3) / 4.
    from gapmap.corridors import _width_stats

    line = np.array([shapely.LineString([(0, 0), (1000, 0), (1000, 3000)])])
    wmin, wmean, wmax = _width_stats(line, _fake_side(lambda x, y: y),
                                     _fake_side(lambda x, y: 0 * x))
    assert wmean[0] == pytest.approx(1.125, rel=1e-12)
    assert (wmin[0], wmax[0]) == (0.0, 3.0)


@pytest.mark.parametrize("length_m", [3000.0, 30000.0])
def test_width_mean_within_the_midpoint_rule_bound(length_m):
    # w(y) = y² / 1e6 km along x = 0 from y = 0 to L: the mean is L² / 3e6 km. w is evaluated
    # at the midpoints of pieces at most min(L / 50, 250 m) long, and the midpoint rule's
    # error for a quadratic is exactly h² w'' / 24 = h² / 12e6 km.
    from gapmap.corridors import _width_stats

    line = np.array([shapely.LineString([(0, 0), (0, length_m)])])
    wmin, wmean, wmax = _width_stats(line, _fake_side(lambda x, y: y * y / 1000),
                                     _fake_side(lambda x, y: 0 * x))
    exact = length_m**2 / 3e6
    h = min(length_m / 50, 250.0)
    assert abs(wmean[0] - exact) <= h**2 / 12e6 * (1 + 1e-6)
    assert (wmin[0], wmax[0]) == pytest.approx((0.0, length_m**2 / 1e6), rel=1e-12)


def test_clip_lines_cuts_a_single_line_and_takes_no_or_an_empty_area():
    # One 10 m line through the box x in [2, 8]: 6 m inside; minus the box x in [4, 5]: 5 m.
    from gapmap.corridors import _clip_lines

    line = np.array([shapely.LineString([(0, 0), (10, 0)])])
    keep, remove = shapely.box(2, -1, 8, 1), shapely.box(4, -1, 5, 1)
    assert shapely.length(_clip_lines(line, keep, None)).sum() == pytest.approx(6.0)
    out = _clip_lines(line, keep, remove)
    assert sorted(shapely.length(out).tolist()) == pytest.approx([2.0, 3.0])
    # No area, or an empty one, keeps the line whole.
    for area_ in (None, shapely.Polygon()):
        out = _clip_lines(line, area_, remove)
        assert sorted(shapely.length(out).tolist()) == pytest.approx([4.0, 5.0])
        assert shapely.length(_clip_lines(line, area_, None)).tolist() == [10.0]


def test_gap_region_with_one_reach_reaches_the_study_areas_edges():
    # Both reaches 0.5 km (one distinct reach, under 1 km): the gap is x in [2.5, 5.5] km over
    # all 10 km, up to the study area's southern and northern edges.
    _, _, _, gap, s = stages(small_strips(), study=area(0.0, 8.0), gap=True)
    expected = shapely.box(X0 + 2.5e3, Y0, X0 + 5.5e3, Y0 + 10e3)
    assert s["gap_area_km2"] == pytest.approx(geod_area_km2(expected), rel=1e-6)
    assert gap.geometry.iloc[0].symmetric_difference(expected).area < 1.0  # m²
    # The table: the sides' names, the analysis CRS.
    assert gap[["side_a", "side_b"]].values.tolist() == [["A", "B"]]
    assert gap.crs == CRS.from_epsg(UTM38)


def test_an_empty_gap_region_has_no_area():
    _, _, _, gap, s = stages(small_strips(), study=area(0.0, 8.0), gap=True, reach_km=2.5)
    assert gap.geometry.iloc[0].is_empty
    assert s["gap_area_km2"] == 0.0 and gap["area_km2"].tolist() == [0.0]


def test_gap_region_beside_a_far_zone_of_its_own_reach():
    # A third zone of side A, 30 km north of the study area, with its own reach (0.2 km, the
    # smallest of the three distinct reaches): it grows nothing inside the study area, and
    # the strips' 0.5 and 1 km still do.
    zones = small_strips()
    far = gpd.GeoDataFrame({"force": ["a"], "reach_km": [0.2]}, crs=UTM38,
                           geometry=[shapely.box(X0, Y0 + 40e3, X0 + 2e3, Y0 + 42e3)])
    zones = gpd.GeoDataFrame(pd.concat([zones, far], ignore_index=True), crs=UTM38)
    _, _, _, gap, s = stages(zones, study=area(0.0, 8.0), gap=True, reach_a_km=0.5,
                             reach_b_km=1.0)
    expected = shapely.box(X0 + 2.5e3, Y0, X0 + 5e3, Y0 + 10e3)
    assert s["gap_area_km2"] == pytest.approx(geod_area_km2(expected), rel=1e-6)


def test_gap_region_keeps_a_60_m_tooth_of_a_zone():
    # A's strip has a tooth 40 m wide and 60 m deep pointing at the gap, at y = 5 km. Grown by
    # 0.5 km it bulges the gap's edge by up to 60 m over ~0.5 km (about 0.02 km²); zones are
    # simplified by reach / 20 = 25 m only before growing, so the tooth stays. The reference is
    # the exact offset (64 segments a quarter circle).
    tooth = shapely.Polygon([(X0 + 2e3, Y0 + 4980), (X0 + 2060, Y0 + 5e3),
                             (X0 + 2e3, Y0 + 5020)])
    zones = small_strips()
    zones.loc[0, "geometry"] = shapely.union(zones.geometry.iloc[0], tooth)
    _, _, _, gap, s = stages(zones, study=area(0.0, 8.0), gap=True)
    study = shapely.box(X0, Y0, X0 + 8e3, Y0 + 10e3)
    exact = study.difference(shapely.buffer(shapely.union_all(zones.geometry.values), 500.0,
                                            quad_segs=64))
    plain = shapely.box(X0 + 2.5e3, Y0, X0 + 5.5e3, Y0 + 10e3)
    assert (geod_area_km2(plain) - geod_area_km2(exact)) > 0.015  # the tooth's bulge, km²
    assert s["gap_area_km2"] == pytest.approx(geod_area_km2(exact), abs=2e-3)


def test_gap_region_stops_where_the_sides_are_further_apart_than_the_max_width():
    # Study area x in [-2, 10] km; reach 0.5 km; max width 8 km. Between the strips
    # d_A + d_B = 4 km; west of A it is 6 + 2|x| (≤ 8 for x ≥ -1), east of B 2x - 10 (≤ 8 for
    # x ≤ 9). The gap: x in [-1, -0.5], [2.5, 5.5] and [8.5, 9] km, 10 km long (40 km²); the
    # limit is placed to within one cell of its 1500-cell grid (28 km / 1500 = 19 m).
    _, _, _, gap, s = stages(small_strips(), study=area(-2.0, 10.0), gap=True)
    parts = [shapely.box(X0 + x0 * 1e3, Y0, X0 + x1 * 1e3, Y0 + 10e3)
             for x0, x1 in ((-1, -0.5), (2.5, 5.5), (8.5, 9))]
    expected = sum(geod_area_km2(p) for p in parts)
    assert s["gap_area_km2"] == pytest.approx(expected, abs=2 * 10 * 0.019 * 1.01)
    assert gap.geometry.iloc[0].bounds[0] == pytest.approx(X0 - 1e3, abs=19.0)
    assert gap.geometry.iloc[0].bounds[2] == pytest.approx(X0 + 9e3, abs=19.0)


def test_width_limit_of_the_scene_turned_a_quarter_is_turned_too():
    # The scene above turned by 90°: A's strip y in [0, 2] km, B's y in [6, 8] km, both 10 km
    # long, study area y in [-2, 10] km. The limit lines are now the rows y = -1 and y = 9 km,
    # so the grid's rows must be placed as well as its columns (a raster sheared by one metre
    # a column would move them by up to 1.5 km). Gap: y in [-1, -0.5], [2.5, 5.5], [8.5, 9]
    # km, 10 km wide; the limit within one cell (28 km / 1500 = 19 m).
    zones = gpd.GeoDataFrame(
        {"force": ["a", "b"], "reach_km": [np.nan, np.nan]}, crs=UTM38,
        geometry=[shapely.box(X0, Y0, X0 + 10e3, Y0 + 2e3),
                  shapely.box(X0, Y0 + 6e3, X0 + 10e3, Y0 + 8e3)])
    study = gpd.GeoDataFrame(geometry=[shapely.box(X0, Y0 - 2e3, X0 + 10e3, Y0 + 10e3)],
                             crs=UTM38)
    _, _, _, gap, s = stages(zones, study=study, gap=True)
    parts = [shapely.box(X0, Y0 + y0 * 1e3, X0 + 10e3, Y0 + y1 * 1e3)
             for y0, y1 in ((-1, -0.5), (2.5, 5.5), (8.5, 9))]
    expected = sum(geod_area_km2(p) for p in parts)
    assert s["gap_area_km2"] == pytest.approx(expected, abs=2 * 10 * 0.019 * 1.01)
    assert gap.geometry.iloc[0].bounds[1] == pytest.approx(Y0 - 1e3, abs=19.0)
    assert gap.geometry.iloc[0].bounds[3] == pytest.approx(Y0 + 9e3, abs=19.0)


def test_visibility_on_flat_ground_leaves_the_seam_beyond_the_posts_range():
    # The visibility branch on a flat 100 m DEM (in memory): the post 4 km along the seam sees
    # [3, 5] km of it; the seam is sampled every spacing_m (250 m) and cut midway between
    # samples, so each of the two cut points moves by at most 125 m.
    from affine import Affine

    s = Settings(reach_km=0.5, max_width_km=8.0, min_length_km=0.1)
    layers = read_layers(small_strips(), A, B, posts=posts_at(4.0), study_area=area(), settings=s)
    inp = prepare_inputs(layers, A, B, CRS.from_epsg(UTM38), s)
    seam = seam_stage(inp, 50.0)
    dem = (np.full((120, 100), 300.0, "float32"),
           Affine(100.0, 0.0, X0 - 1e3, 0.0, -100.0, Y0 + 11e3), f"EPSG:{UTM38}")
    seen = coverage_stage(inp, seam, dem=dem, visibility=True)
    grid_m = sorted(shapely.length(seen).tolist())
    assert len(grid_m) == 2
    assert grid_m[0] == pytest.approx(3e3, abs=125.001) and grid_m[1] == pytest.approx(5e3,
                                                                                      abs=125.001)
    assert sum(grid_m) == pytest.approx(8e3, abs=250.002)
    # Without a DEM the branch is refused.
    with pytest.raises(Exception):
        coverage_stage(inp, seam, dem=None, visibility=True)


# --------------------------------------------------------------------------------------------
# the ends of a stretch (_end_points) and the grouping of lines (_components), by hand


def _ends(geom) -> list[list[float]]:
    from gapmap.corridors import _end_points

    a, b = _end_points(geom)
    return [np.asarray(a, float).tolist(), np.asarray(b, float).tolist()]


def test_the_ends_of_a_bent_line_are_its_first_and_last_vertex_west_first():
    bent = shapely.LineString([(2, 0), (1, 3), (0, 1)])  # drawn east to west
    assert _ends(bent) == [[0, 1], [2, 0]]
    # A north-south line starts in the south, whichever way it is drawn.
    assert _ends(shapely.LineString([(5, 9), (5.0004, 4), (5, 0)])) == [[5, 0], [5, 9]]
    assert _ends(shapely.LineString([(5, 0), (5, 9)])) == [[5, 0], [5, 9]]


def test_the_ends_of_a_branched_stretch_are_the_free_ends_furthest_apart():
    # A T: a 10-unit bar with a 2-unit stem at its middle; the three parts meet at (5, 0),
    # which is an end of each and no free end. The bar's ends are 10 apart, the stem's
    # tip √29 from either.
    t = shapely.MultiLineString([[(5, 0), (0, 0)], [(5, 0), (10, 0)], [(5, 0), (5, 2)]])
    assert _ends(t) == [[0, 0], [10, 0]]
    # The same with the stem longer than the bar is wide: its tip and a bar end.
    t = shapely.MultiLineString([[(5, 0), (4, 0)], [(5, 0), (6, 0)], [(5, 0), (5, 20)]])
    assert _ends(t) == [[4, 0], [5, 20]]
    # A part drawn in reverse still meets the others at its last point.
    z = shapely.MultiLineString([[(0, 0), (3, 0)], [(7, 4), (3, 0)], [(3, 0), (3, -1)]])
    assert _ends(z) == [[0, 0], [7, 4]]


@pytest.mark.parametrize("drawn, start", [
    (((2, 0), (0, 5)), (0, 5)),            # the western end, wherever it is drawn
    (((0, 5), (2, 0)), (0, 5)),
    (((0.7, 0), (0.6, 9)), (0.6, 9)),      # a few decimetres west is west
    (((0.6, 0), (0.7, 9)), (0.6, 0)),
    (((5, 0), (4.9996, 9)), (5, 0)),       # the same x to the millimetre: the southern end
    (((5.0004, 0), (5, 9)), (5.0004, 0)),
    (((5, 1.7), (5, 1.6)), (5, 1.6)),      # a 10 cm north-south line
    (((5, 1.4), (5, 1.2)), (5, 1.2)),
    (((5, 0), (5, 2)), (5, 0)),
    (((5, 4), (5, 9)), (5, 4)),
])
def test_a_stretch_starts_at_its_western_then_southern_end(drawn, start):
    a, b = _ends(shapely.LineString(drawn))
    assert a == list(map(float, start))
    assert b == [float(v) for v in (drawn[1] if drawn[0] == start else drawn[0])]


def test_the_ends_of_a_hook_and_of_a_y():
    # A hook: a bar (0, 0)-(10, 0), then up and back west to (2, 3), in two parts that meet
    # 0.4 mm apart (one point to the millimetre). Its free ends are (0, 0) and (2, 3), though
    # the corner (10, 0) is further from (0, 0).
    hook = shapely.MultiLineString([[(0, 0), (5, 0), (10, 0)],
                                    [(10.0004, 0), (10.0004, 3), (2, 3)]])
    assert _ends(hook) == [[0, 0], [2, 3]]
    # A Y meeting at (3, 3): its tips (0, 10) and (10, 0) are 14.1 apart, the third tip (1, 1)
    # 9.1 from either (and first in x + y, and in x - y, from neither).
    y = shapely.MultiLineString([[(3, 3), (0, 10)], [(3, 3), (10, 0)], [(3, 3), (1, 1)]])
    assert _ends(y) == [[0, 10], [10, 0]]


def test_a_closed_stretch_without_free_ends_takes_the_parts_ends_furthest_apart():
    # A square loop in two halves: the ends (0, 0) and (4, 4) are shared, so there are no
    # free ends; the ends furthest apart of all are these two.
    loop = shapely.MultiLineString([[(0, 0), (4, 0), (4, 4)], [(4, 4), (0, 4), (0, 0)]])
    assert _ends(loop) == [[0, 0], [4, 4]]


@pytest.mark.parametrize("n_teeth", [64, 65, 71])
def test_the_ends_of_a_comb_of_many_teeth(n_teeth: int):
    # A spine along y = 0 cut at each tooth, teeth of length 1 + 0.1 (k mod 3) upwards at
    # x = k: the free ends are the n tips (the spine's ends are teeth roots). The tips furthest
    # apart are the first and the last; from 65 free ends on they are found on the hull.
    n = n_teeth
    spine = [[(k, 0), (k + 1, 0)] for k in range(n - 1)]
    teeth = [[(k, 0), (k, 1 + 0.1 * (k % 3))] for k in range(n)]
    comb = shapely.MultiLineString(spine + teeth)
    a, b = _ends(comb)
    assert a == [0, 1]
    assert b[0] == n - 1 and b[1] == pytest.approx(1 + 0.1 * ((n - 1) % 3))
    # Teeth all of length 1: the 65 tips are in a row, their hull is one segment.
    teeth = [[(k, 0), (k, 1)] for k in range(n)]
    assert _ends(shapely.MultiLineString(spine + teeth)) == [[0, 1], [n - 1, 1]]
    # The comb 1000 units east: the hull's vertices keep their x and y.
    east = shapely.transform(comb, lambda xy: xy + [1000.0, 0.0])
    a, b = _ends(east)
    assert a == [1000, 1] and b[0] == 1000 + n - 1


def _comps(lines, **kw):
    from gapmap.corridors import _components

    return _components(np.array([shapely.LineString(c) for c in lines], dtype=object), **kw)


def test_components_join_touching_lines_and_keep_apart_ones_apart():
    assert _comps([]) == []
    one = _comps([[(0, 0), (3, 4)]])
    assert len(one) == 1 and one[0].geom_type == "LineString" and one[0].length == 5.0
    # Two diagonals 1 apart (their boxes overlap, they do not touch), and a third line
    # continuing the first: two components, the first merged into one 10-long line.
    comps = _comps([[(0, 0), (3, 4)], [(1, 0), (4, 4)], [(3, 4), (6, 8)]])
    assert sorted(round(g.length, 9) for g in comps) == [5.0, 10.0]
    assert sorted(g.geom_type for g in comps) == ["LineString", "LineString"]
    merged = next(g for g in comps if g.length > 6)
    assert shapely.get_num_coordinates(merged) == 2  # one straight line: (0, 0)-(6, 8)
    # Three apart lines in a row: three components.
    assert len(_comps([[(0, 0), (1, 0)], [(2, 0), (3, 0)], [(4, 0), (5, 0)]])) == 3


def test_a_t_junction_is_one_component_of_three_parts():
    comps = _comps([[(0, 0), (5, 0)], [(5, 0), (10, 0)], [(5, 0), (5, 2)], [(20, 0), (21, 0)]])
    assert len(comps) == 2
    t = next(g for g in comps if g.length > 2)
    assert t.geom_type == "MultiLineString" and t.length == 12.0
    assert shapely.get_num_geometries(t) == 3


def test_components_drop_vertices_within_half_a_metre_of_the_line():
    # A 100 m line bent 0.3 m at its middle loses the bend; one bent 0.8 m keeps it; with no
    # simplification both keep it.
    slight = [[(0, 0), (50, 0.3), (100, 0)]]
    bent = [[(0, 0), (50, 0.8), (100, 0)]]
    assert shapely.get_num_coordinates(_comps(slight)[0]) == 2
    assert shapely.get_num_coordinates(_comps(bent)[0]) == 3
    assert shapely.get_num_coordinates(_comps(slight, simplify_m=0)[0]) == 3
    assert shapely.get_num_coordinates(_comps(slight, simplify_m=0.2)[0]) == 3


# --------------------------------------------------------------------------------------------
# numbering along the seam (_number_along_seam), by hand


def _table(lines, lengths_km, starts=None, ids=None) -> gpd.GeoDataFrame:
    cols = {"length_km": lengths_km}
    if starts is not None:
        cols["start_lon"], cols["start_lat"] = zip(*starts)
    if ids is not None:
        cols["corridor_id"] = ids
    # Grid metres from (X0, Y0): the seam parts' starts are then far from the origin.
    geoms = [shapely.LineString(np.asarray(c, float) + [X0, Y0]) for c in lines]
    return gpd.GeoDataFrame(cols, geometry=geoms, crs=UTM38)


def test_seam_parts_are_numbered_west_then_south_and_ordered_by_length():
    from gapmap.corridors import _number_along_seam

    # Starts (lon, lat): the second and third share a longitude, the third is further south.
    seam = _table([[(0, 0), (0, 1)], [(1, 0), (1, 3)], [(2, 0), (2, 2)], [(3, 0), (3, 1)]],
                  [1.0, 3.0, 2.0, 1.0], starts=[(44.3, 33.1), (44.1, 33.4), (44.1, 33.2),
                                                (44.0, 33.9)])
    out = _number_along_seam(seam, None, "S")
    # West first (44.0), then the two at 44.1 south first, then 44.3; rows by length, ties
    # in their given order.
    assert out["corridor_id"].tolist() == ["S3", "S2", "S4", "S1"]
    assert out["length_km"].tolist() == [3.0, 2.0, 1.0, 1.0]
    assert out.columns.tolist() == ["length_km", "start_lon", "start_lat", "geometry",
                                    "corridor_id"]
    assert out.index.tolist() == [0, 1, 2, 3]
    empty = _number_along_seam(seam.iloc[:0], None, "S")
    assert len(empty) == 0 and "corridor_id" in empty.columns


def test_stretches_are_numbered_by_seam_part_then_distance_along_it():
    from gapmap.corridors import _number_along_seam

    # Seam part S1 runs north along x = 0; S2 along x = 50 is drawn from north to south,
    # and starts (west, then south) at (50, 0) all the same.
    seam = _table([[(0, 0), (0, 100)], [(50, 100), (50, 0)]], [0.1, 0.1], ids=["S1", "S2"])
    stretches = _table([[(50, 20), (50, 10)],    # on S2, 10 m along (drawn backwards)
                        [(0, 60), (0, 90)],      # on S1, 60 m along
                        [(0, 5), (0, 15)],       # on S1, 5 m along
                        [(50, 70), (50, 75)]],   # on S2, 70 m along
                       [0.010, 0.030, 0.010, 0.005], starts=[(44.0, 33.0)] * 4)
    out = _number_along_seam(stretches, seam, "C")
    # ids by place: S1 at 5 m → C1, S1 at 60 m → C2, S2 at 10 m → C3, S2 at 70 m → C4; rows by
    # length (ties in their given order), ranked 1..4.
    assert out["corridor_id"].tolist() == ["C2", "C3", "C1", "C4"]
    assert out["length_km"].tolist() == [0.030, 0.010, 0.010, 0.005]
    assert out["rank"].tolist() == [1, 2, 3, 4] and out["rank"].dtype == np.int64
    assert out.index.tolist() == [0, 1, 2, 3]
    assert out.columns.tolist() == ["length_km", "start_lon", "start_lat", "geometry",
                                    "corridor_id", "rank"]
    # Numbering is by place, not by the order given.
    again = _number_along_seam(stretches.iloc[::-1], seam, "m")
    assert sorted(zip(again["length_km"], again["corridor_id"])) == sorted(
        zip(out["length_km"], out["corridor_id"].str.replace("C", "m")))
    # A seam part numbered S10 comes after S2 (the numbers, not their text).
    seam10 = seam.assign(corridor_id=["S10", "S2"])
    out10 = _number_along_seam(stretches, seam10, "C")
    assert out10["corridor_id"].tolist() == ["C4", "C1", "C3", "C2"]
    # No stretches, or no seam parts.
    assert len(_number_along_seam(stretches.iloc[:0], seam, "C")) == 0


def test_stretches_on_a_seam_of_one_part_short_parts_and_close_places():
    from gapmap.corridors import _number_along_seam

    # One seam part, x = 0 northwards; the stretches' starts (lon, lat) put the one further
    # along first, which must not matter: the place along the seam does.
    seam = _table([[(0, 0), (0, 100)]], [0.1], ids=["S1"])
    st = _table([[(0, 60), (0, 90)], [(0, 5), (0, 15)]], [0.03, 0.01],
                starts=[(44.0, 33.0), (44.5, 33.5)])
    assert _number_along_seam(st, seam, "C")["corridor_id"].tolist() == ["C2", "C1"]
    # Places 0.3 m apart are told apart (to the millimetre): given the further first.
    st = _table([[(0, 5.4), (0, 5.5)], [(0, 5.1), (0, 5.3)]], [0.0001, 0.0002],
                starts=[(44.0, 33.0)] * 2)
    assert _number_along_seam(st, seam, "C")["corridor_id"].tolist() == ["C1", "C2"]
    # A seam part 0.8 m long drawn from north to south: places count from its southern end.
    short = _table([[(0, 0.8), (0, 0)]], [0.0008], ids=["S1"])
    st = _table([[(0, 0.5), (0, 0.7)], [(0, 0.1), (0, 0.2)]], [0.0002, 0.0001],
                starts=[(44.0, 33.0)] * 2)
    assert _number_along_seam(st, short, "C")["corridor_id"].tolist() == ["C2", "C1"]


def test_rows_of_equal_length_keep_their_order():
    from gapmap.corridors import _number_along_seam

    # 40 seam parts along a row, lengths alternating 2 and 1 km: the 2 km ones first, each
    # group in the given order (a stable sort; quicksort is not one past 16 rows).
    n = 40
    lines = [[(10 * k, 0), (10 * k, 5)] for k in range(n)]
    lengths = [2.0 if k % 2 == 0 else 1.0 for k in range(n)]
    starts = [(44.0 + 0.01 * k, 33.0) for k in range(n)]
    out = _number_along_seam(_table(lines, lengths, starts=starts), None, "S")
    assert out["corridor_id"].tolist() == [f"S{k + 1}" for k in range(0, n, 2)] + [
        f"S{k + 1}" for k in range(1, n, 2)]


def test_visibility_with_a_dem_in_another_crs():
    # The flat-ground scene above with the DEM in UTM 37N (the analysis is in 38N): the seam's
    # samples must be handed over in the analysis CRS to be placed on it. The post 4 km along
    # still sees [3, 5] km of the seam, to the 125 m of the sampling (1 km in 37N grid metres
    # is 2 m more or less on the ground here, well within that).
    from affine import Affine

    s = Settings(reach_km=0.5, max_width_km=8.0, min_length_km=0.1)
    layers = read_layers(small_strips(), A, B, posts=posts_at(4.0), study_area=area(), settings=s)
    inp = prepare_inputs(layers, A, B, CRS.from_epsg(UTM38), s)
    seam = seam_stage(inp, 50.0)
    to37 = Transformer.from_crs(UTM38, 32637, always_xy=True)
    x, y = to37.transform([X0 - 2e3, X0 + 12e3, X0 - 2e3, X0 + 12e3],
                          [Y0 - 2e3, Y0 - 2e3, Y0 + 12e3, Y0 + 12e3])
    west, north = np.floor(min(x) / 100) * 100, np.ceil(max(y) / 100) * 100
    w, h = int(np.ceil((max(x) - west) / 100)), int(np.ceil((north - min(y)) / 100))
    dem = (np.full((h, w), 300.0, "float32"), Affine(100.0, 0.0, west, 0.0, -100.0, north),
           "EPSG:32637")
    seen = coverage_stage(inp, seam, dem=dem, visibility=True)
    grid_m = sorted(shapely.length(seen).tolist())
    assert len(grid_m) == 2
    assert grid_m[0] == pytest.approx(3e3, abs=125.001) and grid_m[1] == pytest.approx(5e3,
                                                                                      abs=125.001)


def test_a_study_area_that_cuts_the_shared_border_keeps_only_its_part():
    # A and B touch along x = X0 + 2 km for 10 km; the study area ends 6 km north: the seam
    # is the 6 km of shared border inside it (width 0), not the 10 km.
    zones = gpd.GeoDataFrame({"force": ["a", "b"], "reach_km": [np.nan, np.nan]}, crs=UTM38,
                             geometry=[shapely.box(X0, Y0, X0 + 2e3, Y0 + 10e3),
                                       shapely.box(X0 + 2e3, Y0, X0 + 4e3, Y0 + 10e3)])
    study = gpd.GeoDataFrame(geometry=[shapely.box(X0 - 1e3, Y0, X0 + 5e3, Y0 + 6e3)],
                             crs=UTM38)
    seam, _, _, _, s = stages(zones, study=study)
    border = geod_km(X0 + 2e3, Y0, X0 + 2e3, Y0 + 6e3)
    assert s["seam_length_km"] == pytest.approx(border, rel=1e-6)
    assert seam["length_km"].sum() == pytest.approx(border, rel=1e-6)
    assert seam.geometry.union_all().bounds[3] == pytest.approx(Y0 + 6e3, abs=1e-6)


def test_a_zone_of_neither_side_is_held_but_not_grown_in_the_gap_region():
    # A zone of neither side (no reach of its own: 0) in the middle of the gap, x in
    # [3.5, 4.5], y in [4, 6] km: the gap is the 3 × 10 km band less that 2 km² zone, not
    # less the zone grown by any reach.
    zones = small_strips()
    third = gpd.GeoDataFrame({"force": ["other"], "reach_km": [np.nan]}, crs=UTM38,
                             geometry=[shapely.box(X0 + 3.5e3, Y0 + 4e3, X0 + 4.5e3, Y0 + 6e3)])
    zones = gpd.GeoDataFrame(pd.concat([zones, third], ignore_index=True), crs=UTM38)
    _, _, _, gap, s = stages(zones, study=area(0.0, 8.0), gap=True)
    band = shapely.box(X0 + 2.5e3, Y0, X0 + 5.5e3, Y0 + 10e3)
    hole = third.geometry.iloc[0]
    assert s["gap_area_km2"] == pytest.approx(geod_area_km2(band) - geod_area_km2(hole),
                                              rel=1e-6)
    assert gap.geometry.iloc[0].symmetric_difference(band.difference(hole)).area < 1.0  # m²


# --------------------------------------------------------------------------------------------
# the analysis object: analyze_inputs, the summary document, distances, roads and terrain


def _analysis(*, posts=None, study=None, inputs=None, progress=None, dem=None,
              visibility=False, sample_m=50.0, **settings):
    """:func:`analyze_inputs` on the small strips (reach 0.5 km, max width 8 km)."""
    from gapmap.corridors import analyze_inputs

    kw = dict(reach_km=0.5, max_width_km=8.0, min_length_km=0.1)
    kw.update(settings)
    s = Settings(**kw)
    layers = read_layers(small_strips(), A, B, posts=posts,
                         study_area=area() if study is None else study, settings=s)
    inp = prepare_inputs(layers, A, B, CRS.from_epsg(UTM38), s)
    return inp, analyze_inputs(inp, dem=dem, visibility=visibility, sample_m=sample_m,
                               inputs=inputs, progress=progress)


def _flat_dem():
    """A flat 100 m DEM (in memory) over the small strips' scene, in the analysis CRS."""
    from affine import Affine

    return (np.full((120, 100), 300.0, "float32"),
            Affine(100.0, 0.0, X0 - 1e3, 0.0, -100.0, Y0 + 11e3), f"EPSG:{UTM38}")


_STAGES: list = []
_PATHS = {"zones": "zones.gpkg", "posts": Path("in") / "posts.csv"}
_DEM = object()  # not read without visibility, only kept


@pytest.fixture(scope="module")
def post_analysis():
    """The small strips with a post 4 km along the seam (range 1 km) and min length 4 km:
    corridor C1 is [5, 10] km of the seam, minor stretch m1 is [0, 3] km."""
    _STAGES.clear()  # a runner that runs the suite twice in one process (mutmut) keeps it
    return _analysis(posts=posts_at(4.0), inputs=_PATHS, progress=_STAGES.append, dem=_DEM,
                     min_length_km=4.0)


def test_analyze_inputs_reports_each_stage_and_keeps_every_layer(post_analysis):
    inp, res = post_analysis
    assert _STAGES == ["seam", "coverage", "corridors", "gap region"]
    assert res.zones is inp.zones and res.posts is inp.posts and res.study_area is inp.study
    assert len(res.posts) == 1
    assert res.dem is _DEM and res.inputs == _PATHS and res.inputs is not _PATHS
    assert res.corridors["length_km"].tolist() == pytest.approx([seam_km(5, 10)], rel=1e-6)
    assert res.minor["corridor_id"].tolist() == ["m1"]
    assert res.minor["length_km"].tolist() == pytest.approx([seam_km(0, 3)], rel=1e-6)
    assert res.gap["area_km2"].iloc[0] == res.summary["gap_area_km2"] > 0
    assert res.summary["minor_corridors"] == 1


def test_analyze_inputs_with_visibility_samples_the_seam_every_spacing():
    # The flat DEM: the post 4 km along sees the seam within its 1 km range; with visibility
    # the seam is sampled every 250 m (the samples 3 and 5 km along, exactly at the range, are
    # not seen) and cut midway between a seen and an unseen sample: at 3.125 and 4.875 km,
    # not at the range disc's exact 3 and 5 km.
    _, res = _analysis(posts=posts_at(4.0), dem=_flat_dem(), visibility=True)
    assert sorted(res.corridors["length_km"]) == pytest.approx(
        [seam_km(0, 3.125), seam_km(4.875, 10)], rel=1e-6)
    assert res.dem is not None
    # Without visibility the post's range disc cuts at exactly 3 and 5 km.
    _, res = _analysis(posts=posts_at(4.0), dem=_flat_dem())
    assert sorted(res.corridors["length_km"]) == pytest.approx(
        [seam_km(0, 3), seam_km(5, 10)], rel=1e-6)


def test_distances_from_points_to_each_side_in_km(post_analysis):
    # A holds x ≤ X0 + 2 km, B x ≥ X0 + 6 km (y in [0, 10] km): a point at x = X0 + 3 km,
    # y = 5 km is 1 km from A and 3 km from B; one at x = X0 + 9 km is 7 km from A, 1 from B.
    _, res = post_analysis
    xy = np.array([[X0 + 3e3, Y0 + 5e3], [X0 + 9e3, Y0 + 5e3]])
    want_a, want_b = [1.0, 7.0], [3.0, 1.0]
    for pts in (xy, xy.ravel(), shapely.points(xy),
                gpd.GeoSeries(shapely.points(xy), crs=UTM38),
                gpd.GeoSeries(shapely.points(xy)),
                gpd.GeoSeries(shapely.points(xy), crs=UTM38).to_crs(4326)):
        d_a, d_b = res.distances(pts)
        assert d_a.tolist() == pytest.approx(want_a, abs=1e-6)
        assert d_b.tolist() == pytest.approx(want_b, abs=1e-6)


def test_summary_document_has_the_pair_parameters_and_inputs(post_analysis):
    from gapmap import __version__

    _, res = post_analysis
    doc = res.to_dict()
    assert set(doc) == {"pairs", "parameters", "inputs", "gapmap_version"}
    assert doc["gapmap_version"] == __version__
    assert doc["inputs"] == {"zones": "zones.gpkg", "posts": str(Path("in") / "posts.csv")}
    params = doc["parameters"]
    assert params["side_a"] == {"name": "A", "forces": ["a"]}
    assert params["side_b"] == {"name": "B", "forces": ["b"]}
    assert params["crs"] == "EPSG:32638"
    assert params["max_width_km"] == 8.0 and params["reach_km"] == 0.5
    (pair,) = doc["pairs"]
    assert pair["side_a"] == "A" and pair["corridors"] == 1 and pair["minor_corridors"] == 1
    assert pair["seam_length_km"] == round(res.summary["seam_length_km"], 6)


def test_jsonable_rounds_floats_to_6_places_and_nulls_non_finite_ones():
    from gapmap.corridors import _jsonable

    obj = {1: [np.int64(3), (np.float32(0.5), float("inf"), np.float64(1.23456789))],
           "t": pd.Timestamp("2026-01-02T03:04:05"), "p": Path("a") / "b", "n": float("nan"),
           "s": "x", "z": None}
    out = _jsonable(obj)
    assert out == {"1": [3, [0.5, None, 1.234568]], "t": "2026-01-02T03:04:05",
                   "p": str(Path("a") / "b"), "n": None, "s": "x", "z": None}
    assert type(out["1"][0]) is int and type(out["1"][1][0]) is float


@pytest.mark.parametrize("boundary_km, max_width_km, want_m", [
    (48.0, 8.0, 25.0),        # 0.48 m a sample by count: the 25 m floor
    (5_000.0, 8.0, 50.0),     # 100,000 samples of 50 m
    (20_000.0, 8.0, 100.0),   # 200 m by count: the 100 m cap
    (5_000.0, 2.0, 40.0),     # max width / 50 = 40 m
    (5_000.0, 0.02, 1.0),     # max width / 50 = 0.4 m: the 1 m floor
])
def test_default_sample_spacing_from_the_sides_boundary_length(boundary_km, max_width_km,
                                                               want_m):
    # Two squares (one per side) of boundary_km / 2 perimeter each, and a zone of neither
    # side with a far longer boundary, which does not count.
    from types import SimpleNamespace

    from gapmap.corridors import default_sample_m

    side = boundary_km * 1e3 / 8
    geoms = np.array([shapely.box(0, 0, side, side), shapely.box(0, 0, 1e9, 1e9),
                      shapely.box(2 * side, 0, 3 * side, side)], dtype=object)
    inp = SimpleNamespace(geoms=geoms, ia=np.array([0]), ib=np.array([2]),
                          settings=Settings(max_width_km=max_width_km))
    assert default_sample_m(inp) == pytest.approx(want_m, rel=1e-12)


def _roads_4326(lines) -> gpd.GeoDataFrame:
    """Road lines drawn in the analysis CRS, handed over in lon/lat."""
    return gpd.GeoDataFrame({"name": [f"r{k}" for k in range(len(lines))]}, geometry=lines,
                            crs=UTM38).to_crs(4326)


def _road_scene() -> gpd.GeoDataFrame:
    # C1 is the seam x = X0 + 4 km for y in [5, 10] km, m1 for y in [0, 3] km.
    def ew(y_km):
        return [(X0 + 3e3, Y0 + y_km * 1e3), (X0 + 5e3, Y0 + y_km * 1e3)]

    u_turn = shapely.LineString(ew(6) + ew(7)[::-1])  # over the seam at y = 6 km, back at 7
    return _roads_4326([shapely.LineString(ew(1)),            # m1 once
                        u_turn,                                # C1 twice
                        shapely.MultiLineString([ew(8), ew(9)]),  # C1 twice, one road
                        shapely.LineString(ew(4)),             # the post's ground: nothing
                        shapely.LineString([(X0 + 3e3, Y0 + 11e3), (X0 + 5e3, Y0 + 12e3)])])


def test_roads_crossed_counts_each_crossing_of_each_stretch(post_analysis, tmp_path):
    from gapmap.corridors import with_roads

    _, res = post_analysis
    roads = _road_scene()
    path = tmp_path / "roads.geojson"
    roads.to_file(path, driver="GeoJSON")
    for given in (roads, path, str(path)):
        out = with_roads(res, given)
        assert out.corridors["corridor_id"].tolist() == ["C1"]
        assert out.corridors["roads_crossed"].tolist() == [4]
        assert out.minor["roads_crossed"].tolist() == [1]
        assert out.corridors["roads_crossed"].dtype.kind == "i"
        assert out.seam is res.seam and out.gap is res.gap
    assert "roads_crossed" not in res.corridors.columns  # a new Analysis; the old one kept
    # No roads (an empty layer): every count is 0.
    out = with_roads(res, roads.iloc[:0])
    assert out.corridors["roads_crossed"].tolist() == [0]
    assert out.minor["roads_crossed"].tolist() == [0]
    assert out.minor["roads_crossed"].dtype.kind == "i"


def test_roads_must_be_lines_with_a_crs(post_analysis, tmp_path):
    from gapmap.corridors import with_roads
    from gapmap.errors import InputError

    _, res = post_analysis
    bare = gpd.GeoDataFrame(geometry=[shapely.LineString([(0, 0), (1, 1)])])
    with pytest.raises(InputError) as err:
        with_roads(res, bare)
    assert (err.value.source, err.value.field) == ("roads", "crs")
    assert err.value.problem == "roads have no coordinate reference system"
    assert err.value.fix == "set the layer's CRS"
    bare.attrs["source"] = "roads.gpkg"
    with pytest.raises(InputError) as err:
        with_roads(res, bare)
    assert err.value.source == "roads.gpkg"
    # A file of polygons is refused, naming the roads.
    path = tmp_path / "areas.geojson"
    _roads_4326([shapely.box(X0, Y0, X0 + 1e3, Y0 + 1e3)]).to_file(path, driver="GeoJSON")
    with pytest.raises(InputError, match="roads must be LineString, found"):
        with_roads(res, path)
    with pytest.raises(InputError, match="roads file not found"):
        with_roads(res, tmp_path / "none.geojson")


def test_terrain_fields_join_by_corridor_id_and_keep_every_row(post_analysis):
    from gapmap.corridors import with_terrain

    _, res = post_analysis
    fields = pd.DataFrame({"slope_mean_deg": [1.5, 2.5], "crossing_hours": [3.0, 4.0],
                           "other": [9, 9]}, index=["m1", "C1"])
    out = with_terrain(res, fields)
    assert out.corridors["slope_mean_deg"].tolist() == [2.5]
    assert out.corridors["crossing_hours"].tolist() == [4.0]
    assert out.minor[["slope_mean_deg", "crossing_hours"]].values.tolist() == [[1.5, 3.0]]
    for table in (out.corridors, out.minor):
        assert set(table.columns) == set(res.corridors.columns) | {"slope_mean_deg",
                                                                   "crossing_hours"}
        assert isinstance(table, gpd.GeoDataFrame) and table.crs == res.corridors.crs
    assert out.seam is res.seam and "slope_mean_deg" not in res.corridors.columns
    # A stretch without fields keeps its row, with NaN.
    out = with_terrain(res, fields.loc[["C1"]])
    assert out.minor["corridor_id"].tolist() == ["m1"]
    assert np.isnan(out.minor["slope_mean_deg"].iloc[0])
    assert out.corridors["slope_mean_deg"].tolist() == [2.5]


def test_posts_of_neither_side_are_left_out_with_a_warning():
    # Forces a, B (any case), joint, none and no force at all count for the pair; c does not.
    forces = ["a", "B", "joint", None, "c", "none"]
    posts = gpd.GeoDataFrame({"force": forces, "range_km": [1.0] * 6}, crs=UTM38,
                             geometry=[shapely.Point(SEAM_X, Y0 + k * 1e3) for k in range(6)])
    with pytest.warns(InputWarning) as caught:
        layers = read_layers(small_strips(), A, B, posts=posts, study_area=area())
    assert [str(w.message) for w in caught] == [
        "1 post(s) of forces in neither side left out: ['c']"]
    # Reported where read_layers was called; under mutmut a trampoline frame sits between.
    assert caught[0].filename == __file__ or "MUTANT_UNDER_TEST" in os.environ
    kept = layers.posts
    assert kept.index.tolist() == [0, 1, 2, 3, 4]
    assert kept.geometry.y.tolist() == [Y0 + k * 1e3 for k in (0, 1, 2, 3, 5)]
    assert set(kept.columns) == {"force", "range_km", "height_m", "geometry"}
    # Posts without any force, or without the field, all count (and no warning).
    import warnings

    for table in (posts.assign(force=None), posts.drop(columns="force")):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            kept = read_layers(small_strips(), A, B, posts=table, study_area=area()).posts
        assert len(kept) == 6 and kept.index.tolist() == list(range(6))


def test_analyze_passes_every_layer_and_option_on():
    from gapmap import analyze

    # The zones' force in a field named "unit"; a post 4 km along; one road across C2.
    zones = small_strips().rename(columns={"force": "unit"})
    roads = _roads_4326([shapely.LineString([(X0 + 3e3, Y0 + 8e3), (X0 + 5e3, Y0 + 8e3)])])
    names = []
    s = Settings(reach_km=0.5, max_width_km=8.0, min_length_km=0.1)
    res = analyze(zones, A, B, posts=posts_at(4.0), study_area=area(), settings=s, roads=roads,
                  force_field="unit", sample_m=50.0, inputs={"zones": "z.gpkg"},
                  progress=names.append)
    assert res.corridors["corridor_id"].tolist() == ["C2", "C1"]
    assert res.corridors["length_km"].tolist() == pytest.approx([seam_km(5, 10), seam_km(0, 3)],
                                                                rel=1e-6)
    assert res.corridors["roads_crossed"].tolist() == [1, 0]
    assert res.inputs == {"zones": "z.gpkg"}
    assert names == ["reading layers", "preparing inputs", "seam", "coverage", "corridors",
                     "gap region"]
    # With the flat DEM and visibility: the seam sampled every 250 m (cuts at 3.125 and
    # 4.875 km, as in test_analyze_inputs_with_visibility_samples_the_seam_every_spacing).
    from gapmap.terrain import Dem

    arr, transform, crs = _flat_dem()
    dem = Dem(arr, transform, CRS.from_user_input(crs))
    res = analyze(small_strips(), A, B, posts=posts_at(4.0), study_area=area(), settings=s,
                  sample_m=50.0, dem=dem, visibility=True)
    assert res.dem is dem
    assert res.corridors["length_km"].tolist() == pytest.approx(
        [seam_km(4.875, 10), seam_km(0, 3.125)], rel=1e-6)


def test_a_stretch_exactly_min_length_long_is_a_corridor_to_the_last_bit():
    # The southern stretch of a post 4 km along ([0, 3] km) is min_length long to the last
    # bit of its computed length: a corridor (only shorter ones are minor).
    _, corridors, _, _, _ = stages(small_strips(), posts=posts_at(4.0))
    south = float(corridors["length_km"].min())
    _, corridors, minor, _, s = stages(small_strips(), posts=posts_at(4.0), min_length_km=south)
    assert s["corridors"] == 2 and s["minor_corridors"] == 0 and len(minor) == 0


def test_minor_stretches_are_numbered_along_the_seam_not_by_longitude():
    # Posts at 1.5 and 6.5 km (range 1 km), min length 3 km: minor [0, 0.5] and [7.5, 10] km,
    # corridor [2.5, 5.5] km. Along the seam the southern minor stretch is m1; by longitude
    # alone it would be m2 (the line x = X0 + 4 km runs 0.0009° west over its 10 km north).
    _, corridors, minor, _, _ = stages(small_strips(), posts=posts_at(1.5, 6.5),
                                       min_length_km=3.0)
    assert corridors["corridor_id"].tolist() == ["C1"]
    by_id = minor.set_index("corridor_id")["length_km"]
    assert by_id["m1"] == pytest.approx(seam_km(0, 0.5), rel=1e-6)
    assert by_id["m2"] == pytest.approx(seam_km(7.5, 10), rel=1e-6)


def _squares(n_apart: int, rows: int = 2, per_row: int = 5):
    """n_apart unit squares 10 apart, and rows of per_row squares each touching the next
    (row 0) or overlapping it by half (the other rows)."""
    apart = [shapely.box(10 * k, 0, 10 * k + 1, 1) for k in range(n_apart)]
    groups = []
    for r in range(rows):
        step = 1.0 if r == 0 else 0.5
        groups += [shapely.box(step * k, 100 + 10 * r, step * k + 1, 101 + 10 * r)
                   for k in range(per_row)]
    return apart, groups


@pytest.mark.parametrize("n_apart", [10, 62, 70])
def test_union_of_many_polygons_is_the_union_of_all(n_apart):
    # 62 apart + 10 in groups: 72 polygons, over the 64 from which touching groups are unioned
    # alone; 10 apart: under it. Either way the union of all, with one part per group.
    from gapmap.corridors import _union

    apart, groups = _squares(n_apart)
    geoms = np.array(apart + groups + [None, shapely.Polygon()], dtype=object)
    out = _union(geoms)
    assert out.geom_type == "MultiPolygon"
    assert shapely.get_num_geometries(out) == n_apart + 2
    assert out.area == pytest.approx(n_apart + 5 + 3, abs=1e-9)  # 5 × 1, then 1 + 4 × 0.5
    assert out.symmetric_difference(shapely.union_all(geoms[:-2])).area == pytest.approx(0.0,
                                                                                       abs=1e-9)
    assert shapely.is_valid(out)


def test_union_of_many_polygons_in_one_group_or_with_lines():
    from gapmap.corridors import _union

    _, row = _squares(0, rows=1, per_row=70)  # one group of 70 touching squares
    out = _union(np.array(row, dtype=object))
    assert out.geom_type == "Polygon" and out.area == pytest.approx(70.0)
    # 69 apart, one group of 2 (overlapping) and one multipolygon of two apart squares.
    apart, pair = _squares(69, rows=2, per_row=2)
    multi = shapely.MultiPolygon([shapely.box(0, 50, 1, 51), shapely.box(5, 50, 6, 51)])
    out = _union(np.array(apart + pair[2:] + [multi], dtype=object))
    assert out.geom_type == "MultiPolygon" and shapely.get_num_geometries(out) == 69 + 1 + 2
    assert out.area == pytest.approx(69 + 1.5 + 2)
    # A line among them: the plain union of all (a collection).
    line = shapely.LineString([(0, -5), (1, -5)])
    out = _union(np.array(apart + [line], dtype=object))
    assert out.geom_type == "GeometryCollection" and out.area == pytest.approx(69.0)
    # Two apart groups and nothing else: a multipolygon of the two.
    _, rows = _squares(0, rows=2, per_row=40)
    out = _union(np.array(rows, dtype=object))
    assert out.geom_type == "MultiPolygon" and out.area == pytest.approx(40 + 20.5)


# --------------------------------------------------------------------------------------------
# the last functions' mutants: _line_parts, the overlap warning, the zone ids of the distances

def test_line_parts_keeps_the_lines_of_positive_length_at_any_depth():
    from gapmap.corridors import _line_parts

    l1, l2, l3, l4 = (shapely.LineString([(i, 0), (i, 1)]) for i in range(4))
    zero = shapely.LineString([(9, 9), (9, 9)])
    gc = shapely.GeometryCollection([
        shapely.Point(5, 5), l1, shapely.MultiLineString([l2, l3]), zero,
        shapely.GeometryCollection([l4, shapely.Point(6, 6)]), shapely.box(7, 7, 8, 8)])
    assert [g.wkt for g in _line_parts(gc)] == [g.wkt for g in (l1, l2, l3, l4)]
    assert len(_line_parts(shapely.Point(0, 0))) == 0
    assert len(_line_parts(shapely.GeometryCollection())) == 0
    assert [g.wkt for g in _line_parts(l1)] == [l1.wkt]


def _overlap_inputs(overlap_m: float):
    """The small strips with B's zone reaching ``overlap_m`` into A's (0: they are apart)."""
    zones = small_strips()
    zones.loc[1, "geometry"] = shapely.box(X0 + 2e3 - overlap_m, Y0, X0 + 8e3, Y0 + 10e3)
    s = Settings(reach_km=0.5, max_width_km=8.0, min_length_km=0.1)
    layers = read_layers(zones, A, B, study_area=area(), settings=s)
    return lambda: prepare_inputs(layers, A, B, CRS.from_epsg(UTM38), s)


@pytest.mark.parametrize("overlap_m, km2", [(500.0, "5.000"), (5e-5, "0.000")])
def test_overlapping_sides_are_reported_with_the_overlap_in_km2(overlap_m, km2):
    # 500 m × 10 km = 5 km²; 0.05 mm × 10 km = 0.5 m²: any overlap is reported.
    with pytest.warns(InputWarning) as caught:
        _overlap_inputs(overlap_m)()
    assert [str(w.message) for w in caught] == [
        f"zones of A and B overlap over {km2} km²; the overlap counts as held ground"]


def test_sides_apart_give_no_overlap_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _overlap_inputs(0.0)()


@pytest.mark.parametrize("order, reach, unguarded", [
    ([1, 2, 0], (2.5, np.nan, np.nan), (0.0, 0.0)),   # A last, reaching 2.5 km: all covered
    ([0, 1, 2], (np.nan, np.nan, 2.5), (0.0, 5.0)),   # B's north zone reaching 2.5 km
])
def test_visibility_branch_takes_each_zones_reach_by_its_row(order, reach, unguarded):
    # The visibility branch samples the seam every 250 m and looks up each sample's nearest
    # zone's reach by the zone's row: with A's zone after B's two (ids 2, not 0) or B's north
    # zone third (id 2, not 1), a lookup by the position within the side takes another zone's
    # reach. Unguarded: the seam from y0 to y1 km (to within a 250 m sample).
    from gapmap.corridors import analyze_inputs

    zones = small_strips(reach_km=reach, split_b=True).iloc[order]
    s = Settings(reach_km=0.5, max_width_km=8.0, min_length_km=0.1)
    layers = read_layers(zones, A, B, study_area=area(), settings=s)
    inp = prepare_inputs(layers, A, B, CRS.from_epsg(UTM38), s)
    res = analyze_inputs(inp, dem=_flat_dem(), visibility=True, sample_m=50.0)
    got = res.summary["unguarded_length_km"]
    assert got == pytest.approx(seam_km(*unguarded), abs=0.26)
