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

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import CRS, Geod, Transformer

from gapmap import Settings, parse_side
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
