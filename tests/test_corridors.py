"""Seam, coverage and corridors against answers computed by hand."""

from __future__ import annotations

import math
import warnings

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Geod, Transformer
from shapely import affinity

from gapmap import InputError, Settings, analyze, parse_side
from gapmap.crs import geodesic_length_km

from .conftest import UTM38, X0, Y0

A = parse_side("krg=peshmerga")
B = parse_side("federal=isf,pmf")
GEOD = Geod(ellps="WGS84")


def geod_km(x0, y0, x1, y1, crs=UTM38):
    """Geodesic length of a straight projected segment (densified), the reference."""
    return float(geodesic_length_km([shapely.LineString([(x0, y0), (x1, y1)])], crs)[0])


def test_parallel_strips_seam_and_width(strips, strips_area):
    res = analyze(strips, A, B, study_area=strips_area)
    s = res.summary
    expected = geod_km(X0 + 20e3, Y0, X0 + 20e3, Y0 + 100e3)
    assert s["seam_length_km"] == pytest.approx(expected, rel=1e-3)
    assert s["width_mean_km"] == pytest.approx(20.0, abs=1e-3)
    assert res.seam["width_min_km"].min() == pytest.approx(20.0, abs=1e-3)
    assert res.seam["width_max_km"].max() == pytest.approx(20.0, abs=1e-3)
    # The seam is the midline: every vertex at x = X0 + 20 km.
    xy = shapely.get_coordinates(res.seam.geometry.values)
    assert np.abs(xy[:, 0] - (X0 + 20e3)).max() < 0.5
    # Reach 2 km covers nothing 10 km from each side: all unguarded, one corridor.
    assert s["corridors"] == 1 and s["unguarded_share"] == pytest.approx(1.0, abs=1e-6)


def test_posts_cover_known_intervals(strips, strips_area):
    # Post on the seam, 5 km range: covers 10 km of it; another 3 km range off the seam at
    # 4 km distance covers 2·sqrt(3² - ... ) -> here 2·sqrt(5²-4²) = 6 km.
    posts = gpd.GeoDataFrame({"range_km": [5.0, 5.0], "force": ["isf", "peshmerga"]},
                             geometry=[shapely.Point(X0 + 20e3, Y0 + 50e3),
                                       shapely.Point(X0 + 24e3, Y0 + 20e3)], crs=UTM38)
    res = analyze(strips, A, B, posts=posts, study_area=strips_area)
    total = geod_km(X0 + 20e3, Y0, X0 + 20e3, Y0 + 100e3)
    lengths = sorted(res.corridors["length_km"])
    # Stretches: [0, 17], [23, 45], [55, 100] km along the seam.
    scale = total / 100.0
    assert lengths == pytest.approx([17 * scale, 22 * scale, 45 * scale], rel=2e-3)
    assert res.summary["unguarded_length_km"] == pytest.approx(84 * scale, rel=2e-3)
    assert res.summary["corridors"] == 3
    assert res.summary["longest_corridor_km"] == pytest.approx(45 * scale, rel=2e-3)


def test_reach_covers_whole_seam_when_larger_than_half_width(strips, strips_area):
    res = analyze(strips, A, B, study_area=strips_area, settings=Settings(reach_km=10.5))
    assert res.summary["unguarded_length_km"] == 0
    assert res.summary["corridors"] == 0 and len(res.corridors) == 0
    res = analyze(strips, A, B, study_area=strips_area, settings=Settings(reach_km=9.5))
    assert res.summary["unguarded_share"] == pytest.approx(1.0, abs=1e-6)


def test_per_side_reach(strips, strips_area):
    # Side B's reach alone reaches the seam.
    res = analyze(strips, A, B, study_area=strips_area,
                  settings=Settings(reach_a_km=1, reach_b_km=11))
    assert res.summary["unguarded_length_km"] == 0


def test_min_length_drops_short_corridors_but_counts_them(strips, strips_area):
    posts = gpd.GeoDataFrame({"range_km": [5.0, 5.0]},
                             geometry=[shapely.Point(X0 + 20e3, Y0 + 50e3),
                                       shapely.Point(X0 + 20e3, Y0 + 60.5e3)], crs=UTM38)
    res = analyze(strips, A, B, posts=posts, study_area=strips_area)
    # Stretches of 45, 0.5 and 34.5 km: the 0.5 km one is minor.
    assert res.summary["corridors"] == 2
    assert res.summary["minor_corridors"] == 1
    assert res.minor["length_km"].iloc[0] == pytest.approx(0.5, rel=2e-3)
    assert res.summary["unguarded_length_km"] == pytest.approx(
        sum(res.corridors["length_km"]) + res.minor["length_km"].sum())


def _wedge_scene():
    """A's edge along the x axis, B's along a ray at 60°: the seam is the 30° bisector."""
    a = shapely.box(0, -50e3, 120e3, 0)
    b = affinity.rotate(shapely.box(0, 0, 120e3, 50e3), 60, origin=(0, 0))
    b = affinity.rotate(affinity.scale(a, 1, -1, origin=(0, 0)), 60, origin=(0, 0))
    arc = [(80e3 * math.cos(t), 80e3 * math.sin(t)) for t in np.radians(np.linspace(0, 60, 121))]
    area = shapely.Polygon([(0, 0)] + arc)
    shift = lambda g: affinity.translate(g, X0, Y0)  # noqa: E731
    zones = gpd.GeoDataFrame({"force": ["peshmerga", "isf"]},
                             geometry=[shift(a), shift(b)], crs=UTM38)
    study = gpd.GeoDataFrame(geometry=[shift(area)], crs=UTM38)
    return zones, study


def test_slanted_edge_seam_is_angle_bisector():
    zones, study = _wedge_scene()
    res = analyze(zones, A, B, study_area=study)
    xy = shapely.get_coordinates(res.seam.geometry.values) - [X0, Y0]
    ang = np.degrees(np.arctan2(xy[:, 1], xy[:, 0]))
    r = np.hypot(xy[:, 0], xy[:, 1])
    far = r > 2e3  # near the apex the sampled boundary is coarser than the distance
    assert np.abs(ang[far] - 30).max() < 0.05
    expected = geod_km(X0, Y0, X0 + 80e3 * math.cos(math.pi / 6), Y0 + 80e3 * math.sin(math.pi / 6))
    assert res.summary["seam_length_km"] == pytest.approx(expected, rel=1e-3)
    # Width at distance t from the apex along the bisector is 2·t·sin 30° = t: mean 40, max 80.
    assert res.summary["width_mean_km"] == pytest.approx(40.0, rel=2e-3)
    assert res.seam["width_max_km"].max() == pytest.approx(80.0, rel=1e-3)
    # Reach 2 km covers the seam up to where t = 4 km; the rest is one corridor of ~76 km.
    assert res.summary["unguarded_length_km"] == pytest.approx(expected * 76 / 80, rel=2e-3)


def test_touching_zones_seam_is_shared_border():
    zones = gpd.GeoDataFrame({"force": ["peshmerga", "isf"]},
                             geometry=[shapely.box(X0, Y0, X0 + 10e3, Y0 + 10e3),
                                       shapely.box(X0 + 10e3, Y0, X0 + 20e3, Y0 + 10e3)],
                             crs=UTM38)
    study = gpd.GeoDataFrame(geometry=[shapely.box(X0 - 5e3, Y0, X0 + 25e3, Y0 + 10e3)],
                             crs=UTM38)
    res = analyze(zones, A, B, study_area=study)
    assert res.summary["seam_length_km"] == pytest.approx(
        geod_km(X0 + 10e3, Y0, X0 + 10e3, Y0 + 10e3), rel=1e-3)
    assert res.summary["width_mean_km"] == pytest.approx(0.0, abs=1e-6)
    assert res.summary["unguarded_length_km"] == 0
    res0 = analyze(zones, A, B, study_area=study, settings=Settings(reach_km=0))
    assert res0.summary["unguarded_length_km"] == 0  # d = 0 ≤ reach 0: held ground


def test_partly_touching_zones_mix_border_and_gap():
    # B touches A along 10 km, then steps back 10 km: the seam has a border part (width 0)
    # and a gap part (width 10 km).
    a = shapely.box(X0, Y0, X0 + 10e3, Y0 + 40e3)
    b = shapely.Polygon([(X0 + 10e3, Y0), (X0 + 30e3, Y0), (X0 + 30e3, Y0 + 40e3),
                         (X0 + 20e3, Y0 + 40e3), (X0 + 20e3, Y0 + 10e3), (X0 + 10e3, Y0 + 10e3)])
    zones = gpd.GeoDataFrame({"force": ["peshmerga", "isf"]}, geometry=[a, b], crs=UTM38)
    study = gpd.GeoDataFrame(geometry=[shapely.box(X0, Y0, X0 + 30e3, Y0 + 40e3)], crs=UTM38)
    res = analyze(zones, A, B, study_area=study)
    assert res.seam["width_min_km"].min() == pytest.approx(0, abs=1e-6)
    assert res.seam["width_max_km"].max() == pytest.approx(10.0, rel=1e-3)
    # The gap part runs along x = X0 + 15 km from y = 15 km (where it leaves the step's
    # corner) to 40 km; all of it is more than 2 km from both sides.
    # Below it the seam is the bisector of the step's corner (X0 + 10, Y0 + 10) km, from the
    # corner to (15, 15): more than 2 km from A from (12, 12) on, 3·√2 km of it unguarded.
    unguarded = res.corridors.geometry.union_all()
    assert unguarded.length / 1e3 == pytest.approx(25 + 3 * math.sqrt(2), rel=1e-3)


def test_lonlat_input_matches_projected(strips, strips_area):
    posts = gpd.GeoDataFrame({"range_km": [5.0]}, geometry=[shapely.Point(X0 + 20e3, Y0 + 50e3)],
                             crs=UTM38)
    proj = analyze(strips, A, B, posts=posts, study_area=strips_area)
    ll = lambda g: gpd.GeoDataFrame(g.drop(columns="geometry"),  # noqa: E731
                                    geometry=shapely.segmentize(g.geometry.values, 500),
                                    crs=UTM38).to_crs(4326)
    geo = analyze(ll(strips), A, B, posts=posts.to_crs(4326), study_area=ll(strips_area))
    for key in ("seam_length_km", "unguarded_length_km", "width_mean_km"):
        assert geo.summary[key] == pytest.approx(proj.summary[key], rel=1e-3), key
    assert geo.summary["corridors"] == proj.summary["corridors"] == 2
    assert geo.crs.to_epsg() == 32638  # the data lies in one UTM zone


def test_seam_over_three_degrees_of_latitude_matches_geod():
    west = shapely.Polygon([(43.8, 33.0), (43.9, 33.0), (43.9, 36.0), (43.8, 36.0)])
    east = shapely.Polygon([(44.1, 33.0), (44.2, 33.0), (44.2, 36.0), (44.1, 36.0)])
    zones = gpd.GeoDataFrame({"force": ["peshmerga", "isf"]},
                             geometry=shapely.segmentize(np.array([west, east]), 0.01), crs=4326)
    study = gpd.GeoDataFrame(geometry=[shapely.segmentize(shapely.box(43.5, 33.0, 44.5, 36.0),
                                                          0.01)], crs=4326)
    res = analyze(zones, A, B, study_area=study)
    _, _, ref = GEOD.inv(44.0, 33.0, 44.0, 36.0)
    assert res.summary["seam_length_km"] == pytest.approx(ref / 1000, rel=1e-3)
    # The width is the east–west gap of 0.2° of longitude, measured geodesically at mid-lat.
    _, _, w_ref = GEOD.inv(43.9, 34.5, 44.1, 34.5)
    assert res.summary["width_mean_km"] == pytest.approx(w_ref / 1000, rel=5e-3)


def test_hole_and_island_give_closed_loop():
    a = shapely.box(X0, Y0, X0 + 100e3, Y0 + 100e3).difference(
        shapely.box(X0 + 20e3, Y0 + 20e3, X0 + 80e3, Y0 + 80e3))
    b = shapely.box(X0 + 40e3, Y0 + 40e3, X0 + 60e3, Y0 + 60e3)
    zones = gpd.GeoDataFrame({"force": ["peshmerga", "isf"]}, geometry=[a, b], crs=UTM38)
    res = analyze(zones, A, B)
    assert res.summary["corridors"] == 1
    loop = res.corridors.geometry.iloc[0]
    assert loop.geom_type == "LineString" and loop.is_ring
    # Straight parts x = 30 km for |y - 50| ≤ 10 (20 km each), and at each corner two parabola
    # arcs with focus the island's corner and the hole's wall as directrix:
    # x = 30 + u²/40 (km, u = 40 - y) out to the diagonal, u = 20(√2 - 1)·2 = 8.284 km.
    u_end = -20 + math.sqrt(400 + 400)
    u = np.linspace(0, u_end, 100001)
    arc = np.trapezoid(np.sqrt(1 + (u / 20) ** 2), u)
    expected = 4 * (20 + 2 * arc)  # ≈ 148.1 km in projected units
    assert loop.length / 1e3 == pytest.approx(expected, rel=2e-3)
    assert res.corridors["width_min_km"].iloc[0] == pytest.approx(20.0, rel=1e-3)


def test_many_zones_per_side_follow_the_nearest(strips_area):
    zones = gpd.GeoDataFrame(
        {"force": ["peshmerga", "peshmerga", "pmf"]},
        geometry=[shapely.box(X0, Y0, X0 + 10e3, Y0 + 50e3),
                  shapely.box(X0 + 4e3, Y0 + 50e3, X0 + 10e3, Y0 + 100e3),
                  shapely.box(X0 + 30e3, Y0, X0 + 40e3, Y0 + 100e3)], crs=UTM38)
    res = analyze(zones, A, B, study_area=strips_area)
    xy = shapely.get_coordinates(res.seam.geometry.values)
    low = xy[(xy[:, 1] < Y0 + 45e3)]
    assert np.abs(low[:, 0] - (X0 + 20e3)).max() < 1.0


def test_sides_too_far_apart_give_empty_results(strips_area):
    zones = gpd.GeoDataFrame({"force": ["peshmerga", "isf"]},
                             geometry=[shapely.box(X0, Y0, X0 + 10e3, Y0 + 100e3),
                                       shapely.box(X0 + 300e3, Y0, X0 + 310e3, Y0 + 100e3)],
                             crs=UTM38)
    study = gpd.GeoDataFrame(geometry=[shapely.box(X0, Y0, X0 + 310e3, Y0 + 100e3)], crs=UTM38)
    res = analyze(zones, A, B, study_area=study)
    assert res.summary["seam_length_km"] == 0
    assert res.summary["corridors"] == 0 and len(res.corridors) == 0
    assert math.isnan(res.summary["unguarded_share"])
    assert res.to_dict()["pairs"][0]["unguarded_share"] is None  # JSON null, not NaN


def test_no_study_area_uses_max_width(strips):
    res = analyze(strips, A, B, settings=Settings(max_width_km=50))
    # Beyond the strips' ends the seam continues while d_A + d_B ≤ 50 km:
    # sqrt(25² - 10²) km past each end.
    extra = math.sqrt(25**2 - 10**2)
    expected = geod_km(X0 + 20e3, Y0 - extra * 1e3, X0 + 20e3, Y0 + 100e3 + extra * 1e3)
    assert res.summary["seam_length_km"] == pytest.approx(expected, rel=2e-3)
    assert res.seam["width_max_km"].max() == pytest.approx(50, rel=1e-3)


def test_gap_area_of_strips(strips, strips_area):
    res = analyze(strips, A, B, study_area=strips_area)
    # Study area minus the strips grown by 2 km: 80×100 minus (10+2+2... ) -> the free band
    # between the grown strips is 16 km wide, plus 18 km west and 18 km east margins... but
    # the western margin is 20-12=... computed exactly below in projected units, then scaled.
    free = strips_area.geometry.iloc[0].difference(
        strips.geometry.buffer(2000, quad_segs=64).union_all())
    area_proj_km2 = free.area / 1e6
    scale = res.summary["seam_length_km"] / 100  # UTM scale factor there (≈ 1.0003)
    assert res.summary["gap_area_km2"] == pytest.approx(area_proj_km2 * scale**2, rel=2e-3)


def test_zero_length_study_area_is_an_error(strips):
    # A study area thousands of km from the zones cannot hold a seam: refused, not a silent 0.
    far = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)], crs=UTM38)
    with pytest.raises(InputError, match="from the nearest zone"):
        analyze(strips, A, B, study_area=far)


def test_visibility_requires_dem(strips):
    with pytest.raises(InputError, match="DEM"):
        analyze(strips, A, B, visibility=True)


def test_posts_of_third_forces_are_left_out(strips, strips_area):
    posts = gpd.GeoDataFrame({"range_km": [5.0], "force": ["unifil"]},
                             geometry=[shapely.Point(X0 + 20e3, Y0 + 50e3)], crs=UTM38)
    with pytest.warns(UserWarning, match="neither side"):
        res = analyze(strips, A, B, posts=posts, study_area=strips_area)
    assert res.summary["corridors"] == 1


def test_distances_method(strips, strips_area):
    res = analyze(strips, A, B, study_area=strips_area)
    da, db = res.distances(np.array([[X0 + 20e3, Y0 + 50e3], [X0 + 5e3, Y0 + 50e3]]))
    assert da.tolist() == pytest.approx([10.0, 0.0])
    assert db.tolist() == pytest.approx([10.0, 25.0])


def test_layers_in_different_crs_are_reprojected(strips, strips_area):
    posts = gpd.GeoDataFrame({"range_km": [5.0]}, geometry=[shapely.Point(X0 + 20e3, Y0 + 50e3)],
                             crs=UTM38)
    same = analyze(strips, A, B, posts=posts, study_area=strips_area)
    mixed = analyze(strips.to_crs(32637), A, B, posts=posts.to_crs(4326),
                    study_area=strips_area.to_crs(3857), settings=Settings(crs="EPSG:32638"))
    assert mixed.summary["unguarded_length_km"] == pytest.approx(
        same.summary["unguarded_length_km"], rel=1e-3)
    assert mixed.summary["corridors"] == same.summary["corridors"]


def _flat_dem(path, wall_y=None):
    """A flat 100 m DEM over the strips (UTM 38N), optionally with an east–west wall."""
    import rasterio
    from affine import Affine

    cell = 100.0
    w, h = 800, 1100
    x0, y1 = X0 - 20e3, Y0 + 105e3
    z = np.full((h, w), 300.0, dtype="float32")
    if wall_y is not None:
        row = int((y1 - wall_y) // cell)
        z[row, :] = 800.0
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=1, dtype="float32",
                       crs="EPSG:32638", transform=Affine(cell, 0, x0, 0, -cell, y1)) as dst:
        dst.write(z, 1)
    return path


def test_visibility_on_flat_ground_matches_range_discs(tmp_path, strips, strips_area):
    posts = gpd.GeoDataFrame({"range_km": [5.0], "height_m": [10.0]},
                             geometry=[shapely.Point(X0 + 20e3, Y0 + 50e3)], crs=UTM38)
    plain = analyze(strips, A, B, posts=posts, study_area=strips_area)
    dem = _flat_dem(tmp_path / "flat.tif")
    vis = analyze(strips, A, B, posts=posts, study_area=strips_area, dem=dem, visibility=True)
    # Each of the two corridor ends may move by at most spacing/2 = 125 m.
    assert vis.summary["unguarded_length_km"] == pytest.approx(
        plain.summary["unguarded_length_km"], abs=2 * 0.125 + 1e-3)
    assert vis.summary["corridors"] == 2
    assert {"slope_mean_deg", "tri_mean_m", "crossing_hours"} <= set(vis.corridors.columns)
    assert vis.corridors["slope_mean_deg"].max() == pytest.approx(0.0, abs=1e-6)


def test_visibility_wall_hides_the_seam_behind_it(tmp_path, strips, strips_area):
    posts = gpd.GeoDataFrame({"range_km": [5.0], "height_m": [10.0]},
                             geometry=[shapely.Point(X0 + 20e3, Y0 + 50e3)], crs=UTM38)
    dem = _flat_dem(tmp_path / "wall.tif", wall_y=Y0 + 51e3)
    vis = analyze(strips, A, B, posts=posts, study_area=strips_area, dem=dem, visibility=True)
    scale = geod_km(X0 + 20e3, Y0, X0 + 20e3, Y0 + 100e3) / 100
    # Seen: 45 km to the wall at 51 km; the 4 km beyond it inside the range are hidden.
    assert vis.summary["unguarded_length_km"] == pytest.approx(94 * scale, abs=0.4)
    assert vis.summary["corridors"] == 2


def test_roads_crossed_counts_crossings(strips, strips_area):
    posts = gpd.GeoDataFrame({"range_km": [5.0]}, geometry=[shapely.Point(X0 + 20e3, Y0 + 50e3)],
                             crs=UTM38)
    roads = gpd.GeoDataFrame(
        {"name": ["east-west 1", "east-west 2", "zigzag", "outside"]},
        geometry=[shapely.LineString([(X0, Y0 + 20e3), (X0 + 40e3, Y0 + 20e3)]),
                  shapely.LineString([(X0, Y0 + 70e3), (X0 + 40e3, Y0 + 70e3)]),
                  # crosses the seam three times between 80 and 90 km
                  shapely.LineString([(X0 + 15e3, Y0 + 80e3), (X0 + 25e3, Y0 + 82e3),
                                      (X0 + 15e3, Y0 + 84e3), (X0 + 25e3, Y0 + 86e3)]),
                  # crosses only the covered stretch around the post
                  shapely.LineString([(X0 + 10e3, Y0 + 50e3), (X0 + 30e3, Y0 + 50e3)])],
        crs=UTM38).to_crs(4326)
    res = analyze(strips, A, B, posts=posts, study_area=strips_area, roads=roads)
    by_start = res.corridors.sort_values("start_lat")
    assert by_start["roads_crossed"].tolist() == [1, 4]


# --------------------------------------------------------------------------------------------
# Lengths and areas are geodesic even where the analysis CRS is far from true scale.


def _mercator_strips():
    """The strips as lon/lat boxes at 55–56° N, analysed in a pinned Web Mercator.

    There the grid stretches lengths by 1/cos(55.5°) ≈ 1.77, so a grid length reported as km
    is off by 77%. Boxes in lon/lat are rectangles in Mercator: edges run along meridians and
    parallels, the seam is the meridian 44.4° E (equidistant from both sides in the grid and
    on the ellipsoid alike, by symmetry).
    """
    a = shapely.box(44.0, 55.0, 44.2, 56.0)
    b = shapely.box(44.6, 55.0, 44.8, 56.0)
    zones = gpd.GeoDataFrame({"force": ["peshmerga", "isf"]},
                             geometry=shapely.segmentize(np.array([a, b]), 0.01), crs=4326)
    study = gpd.GeoDataFrame(geometry=[shapely.segmentize(shapely.box(43.8, 55.0, 45.0, 56.0),
                                                          0.01)], crs=4326)
    return zones, study


def _lonlat_box_area_km2(lon0, lat0, lon1, lat1):
    """Geodesic area of a lon/lat box (edges along meridians and parallels), by pyproj.Geod."""
    lons = np.concatenate([np.linspace(lon0, lon1, 200), np.full(200, lon1),
                           np.linspace(lon1, lon0, 200), np.full(200, lon0)])
    lats = np.concatenate([np.full(200, lat0), np.linspace(lat0, lat1, 200),
                           np.full(200, lat1), np.linspace(lat1, lat0, 200)])
    return abs(GEOD.polygon_area_perimeter(lons, lats)[0]) / 1e6


def test_web_mercator_is_refused_for_its_distortion():
    # At 55.5° N the Web Mercator grid stretches distances by ≈ 1.77: reach and widths measured
    # in its metres would be 77% off, so a pinned EPSG:3857 is refused with the figure.
    zones, study = _mercator_strips()
    with pytest.raises(InputError, match="distorts distances"):
        analyze(zones, A, B, study_area=study, settings=Settings(crs="EPSG:3857"))


def test_gap_area_is_geodesic_in_a_neighbouring_utm_zone():
    # UTM 37N at 44.4° E, 55.5° N: grid scale ≈ 1.0014, so a grid area would be ≈ 0.28% off.
    zones, study = _mercator_strips()
    res = analyze(zones, A, B, study_area=study, settings=Settings(crs="EPSG:32637"))
    # The gap: the study box minus the zones grown by 2 km, three lon/lat boxes; 2 km of
    # longitude taken at the mid latitude (the strips' widths vary linearly with latitude).
    phi = math.radians(55.5)
    a, f = 6378137.0, 1 / 298.257223563
    e2 = f * (2 - f)
    n_radius = a / math.sqrt(1 - e2 * math.sin(phi) ** 2)
    d = math.degrees(2000.0 / (n_radius * math.cos(phi)))
    gap_ref = sum(_lonlat_box_area_km2(w, 55.0, e, 56.0) for w, e in
                  ((43.8, 44.0 - d), (44.2 + d, 44.6 - d), (44.8 + d, 45.0)))
    assert res.summary["gap_area_km2"] == pytest.approx(gap_ref, rel=1e-3)
    grid_km2 = res.gap.geometry.area.iloc[0] / 1e6
    assert abs(grid_km2 / gap_ref - 1) > 2e-3  # the grid area would fail the check above


def test_neighbouring_utm_zone_at_high_latitude_gives_geodesic_lengths():
    # The same scene in UTM 37N (central meridian 39° E): 5.4° off the central meridian at
    # 55.5° N the grid scale is ≈ 1.0014, beyond the 0.1% the figures must meet.
    zones, study = _mercator_strips()
    posts = gpd.GeoDataFrame({"range_km": [5.0]}, geometry=[shapely.Point(44.4, 55.5)], crs=4326)
    res = analyze(zones, A, B, posts=posts, study_area=study, settings=Settings(crs="EPSG:32637"))
    seam_ref = GEOD.inv(44.4, 55.0, 44.4, 56.0)[2] / 1000
    assert res.summary["seam_length_km"] == pytest.approx(seam_ref, rel=2e-4)
    # The post splits the seam into two corridors; their ends, back in lon/lat, must sum up
    # geodesically to the seam minus the post's covered stretch (≈ 10 km of the grid).
    ends = res.corridors[["start_lon", "start_lat", "end_lon", "end_lat"]].to_numpy()
    by_geod = sum(GEOD.inv(*e)[2] for e in ends) / 1000
    assert res.summary["corridors"] == 2
    assert res.summary["unguarded_length_km"] == pytest.approx(by_geod, rel=2e-4)
    assert res.corridors["length_km"].tolist() == pytest.approx(
        [GEOD.inv(*e)[2] / 1000 for e in ends], rel=2e-4)


# --------------------------------------------------------------------------------------------
# Per-side and per-zone reach, and the gap region's width limit, by hand geometry.


def _gap_x_extent_km(res, y_km=50.0):
    """The gap region's cross-section at y = Y0 + y_km, as (start, end) km from X0, sorted."""
    line = shapely.LineString([(X0 - 300e3, Y0 + y_km * 1e3), (X0 + 300e3, Y0 + y_km * 1e3)])
    cut = shapely.intersection(res.gap.geometry.iloc[0], line)
    parts = [p for p in shapely.get_parts(cut) if p.length > 0]
    return sorted((round((p.bounds[0] - X0) / 1e3, 3), round((p.bounds[2] - X0) / 1e3, 3))
                  for p in parts)


def test_per_side_reach_grows_each_side_by_its_own_reach(strips, strips_area):
    # A (x 0–10 km) grows by 1 km, B (x 30–40 km) by 5 km: the gap region's cross-section is
    # [-20, -1] ∪ [11, 25] ∪ [45, 60] km. Swapping the reaches would give [-20, -5] ∪ [15, 29]
    # ∪ [41, 60] (same total area: only the geometry tells them apart).
    res = analyze(strips, A, B, study_area=strips_area,
                  settings=Settings(reach_a_km=1, reach_b_km=5))
    got = _gap_x_extent_km(res)
    assert len(got) == 3
    for (g0, g1), (e0, e1) in zip(got, [(-20, -1), (11, 25), (45, 60)]):
        assert g0 == pytest.approx(e0, abs=0.01) and g1 == pytest.approx(e1, abs=0.01)
    scale = res.summary["seam_length_km"] / 100  # UTM scale factor there (≈ 1.0003)
    assert res.summary["gap_area_km2"] == pytest.approx((19 + 14 + 15) * 100 * scale**2,
                                                        rel=1e-3)
    da, db = res.distances(np.array([[X0 + 11.5e3, Y0 + 50e3]]))
    assert (da[0], db[0]) == pytest.approx((1.5, 18.5))  # in the gap: beyond both reaches


def test_per_side_reach_on_the_seam_and_by_side_name(strips, strips_area):
    # On the seam d_A = d_B = 10 km: covered by A's reach 10.5 alone, or B's alone.
    for ra, rb in ((10.5, 0.0), (0.0, 10.5)):
        res = analyze(strips, A, B, study_area=strips_area,
                      settings=Settings(reach_a_km=ra, reach_b_km=rb))
        assert res.summary["unguarded_length_km"] == 0, (ra, rb)
    # Which zone is A follows the sides, not the row order: reversed rows, same gap region.
    flipped = strips.iloc[::-1].reset_index(drop=True)
    res = analyze(flipped, A, B, study_area=strips_area,
                  settings=Settings(reach_a_km=1, reach_b_km=5))
    assert _gap_x_extent_km(res)[1] == pytest.approx((11, 25), abs=0.01)


def test_per_zone_reach_overrides_the_side_reach(strips, strips_area):
    # Zone A carries reach_km = 11: the whole seam (10 km from it) is covered, and the gap
    # region between the strips shrinks to [21, 28] km; B keeps the side reach of 2 km.
    zones = strips.assign(reach_km=[11.0, np.nan])
    res = analyze(zones, A, B, study_area=strips_area)
    assert res.summary["unguarded_length_km"] == 0 and res.summary["corridors"] == 0
    assert res.zones["reach_km"].tolist()[0] == 11.0
    got = _gap_x_extent_km(res)
    expected = [(-20, -11), (21, 28), (42, 60)]
    assert len(got) == 3
    for (g0, g1), (e0, e1) in zip(got, expected):
        assert g0 == pytest.approx(e0, abs=0.01) and g1 == pytest.approx(e1, abs=0.01)
    # A per-zone reach of 0 wins over the side reach too: A's zone is not grown at all.
    res0 = analyze(strips.assign(reach_km=[0.0, np.nan]), A, B, study_area=strips_area)
    assert _gap_x_extent_km(res0)[0] == pytest.approx((-20, 0), abs=0.01)
    assert res0.summary["unguarded_share"] == pytest.approx(1.0, abs=1e-9)


def test_gap_region_is_limited_to_max_width(strips):
    # A wide study area, max width 50 km. East of B at distance e: d_B = e, d_A = e + 30, so
    # d_A + d_B ≤ 50 up to e = 10 km; the same west of A. Between the strips w = 20 ≤ 50.
    # The gap region is x ∈ [-10, -2] ∪ [12, 28] ∪ [42, 50] km; without the limit it would
    # run out to the study area's edges at -100 and 140 km.
    study = gpd.GeoDataFrame(geometry=[shapely.box(X0 - 100e3, Y0, X0 + 140e3, Y0 + 100e3)],
                             crs=UTM38)
    res = analyze(strips, A, B, study_area=study, settings=Settings(max_width_km=50))
    got = _gap_x_extent_km(res)
    assert len(got) == 3
    # The limit is placed on a grid of 1500 cells across the extent (≈ 0.23 km here).
    for (g0, g1), (e0, e1) in zip(got, [(-10, -2), (12, 28), (42, 50)]):
        assert g0 == pytest.approx(e0, abs=0.5) and g1 == pytest.approx(e1, abs=0.5)
    scale = res.summary["seam_length_km"] / 100
    assert res.summary["gap_area_km2"] == pytest.approx((8 + 16 + 8) * 100 * scale**2,
                                                        rel=0.02)
    # With 300 km the limit (e ≤ 135 km) lies beyond the study area: nothing is cut.
    wide = analyze(strips, A, B, study_area=study, settings=Settings(max_width_km=300))
    assert wide.summary["gap_area_km2"] == pytest.approx((98 + 16 + 98) * 100 * scale**2,
                                                         rel=1e-3)


def _random_zones(seed: int, n: int = 60) -> gpd.GeoDataFrame:
    """Rectangles of 100–800 m scattered over 20 km (many touch or overlap), one with a hole,
    sides at random."""
    rng = np.random.default_rng(seed)
    x, y = X0 + rng.uniform(0, 20e3, (2, n))
    s = rng.uniform(100, 800, n)
    boxes = shapely.box(x, y, x + s, y + s * rng.uniform(0.5, 2, n))
    boxes[0] = shapely.box(X0 - 3e3, Y0 - 3e3, X0, Y0).difference(
        shapely.box(X0 - 2e3, Y0 - 2e3, X0 - 1e3, Y0 - 1e3))
    force = np.where(rng.random(n) < 0.5, "peshmerga", "isf")
    return gpd.GeoDataFrame({"force": force}, geometry=boxes, crs=UTM38)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_growing_part_by_part_is_the_buffer_of_the_whole(seed):
    """Zones are grown part by part and unioned (GEOS's buffer of a many-part multipolygon
    grows faster than linearly); the region must be GEOS's buffer of the whole, to 1 µm."""
    from gapmap.corridors import _grow

    union = shapely.union_all(_random_zones(seed).geometry.values)
    assert len(shapely.get_parts(union)) > 20  # many parts, some merged, one with a hole
    for dist_m, quad_segs in ((300.0, 4), (2000.0, 8), (5000.0, 16)):
        got = _grow(union, dist_m, quad_segs)
        ref = shapely.buffer(union, dist_m, quad_segs=quad_segs)
        assert shapely.equals_exact(shapely.normalize(got), shapely.normalize(ref), 1e-6)
        assert shapely.symmetric_difference(got, ref).area <= 1e-9 * ref.area


def test_default_study_area_and_gap_match_the_whole_buffers():
    """Without a study area: both sides grown by max_width_km, intersected; the gap is the
    study area minus every zone grown by its reach. Against buffers of the whole layers."""
    zones = _random_zones(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = analyze(zones, A, B, settings=Settings(max_width_km=4.0, reach_km=0.3))
    geoms = res.zones.geometry.values
    side = res.zones["side"].to_numpy()
    grown = [shapely.buffer(shapely.simplify(shapely.union_all(geoms[side == s]), 100.0),
                            4000.0, quad_segs=16) for s in ("a", "b")]
    study = shapely.intersection(*grown)
    assert shapely.symmetric_difference(res.study_area, study).area <= 1e-9 * study.area
    held = shapely.buffer(shapely.union_all(geoms), 300.0, quad_segs=8)
    gap = res.gap.geometry.iloc[0]
    # Every gap point is in the study area and beyond the reach (to the 15 m of the light
    # simplification); of the rest of the study area, the gap holds the points with
    # d_A + d_B ≤ 4 km (placed on a raster of ~20 m cells here: 100 m margins).
    assert shapely.difference(gap, study).area <= 1e-6 * study.area
    assert shapely.intersection(gap, shapely.buffer(held, -15.0)).area == pytest.approx(0.0,
                                                                                         abs=1.0)
    x0, y0, x1, y1 = study.bounds
    gx, gy = np.meshgrid(np.arange(x0, x1, 200.0), np.arange(y0, y1, 200.0))
    pts = shapely.points(gx.ravel(), gy.ravel())
    free = shapely.contains(shapely.difference(study, shapely.buffer(held, 15.0)), pts)
    w = (shapely.distance(pts, shapely.union_all(geoms[side == "a"]))
         + shapely.distance(pts, shapely.union_all(geoms[side == "b"])))
    in_gap = shapely.contains(gap, pts)
    assert in_gap[free & (w <= 3900.0)].all() and (free & (w <= 3900.0)).sum() > 1000
    assert not in_gap[free & (w >= 4100.0)].any() and (free & (w >= 4100.0)).sum() > 1000


def _ids_by_brute_force(table, seam, prefix: str) -> tuple[list[str], list[int]]:
    """Ids along the seam, one stretch at a time: the nearest seam part by distance to every
    part, the distance along it from its start (west, then south) to the stretch's nearer end."""
    from gapmap.corridors import _end_points

    keys = []
    for g in table.geometry.values:
        ends = _end_points(g)
        k = int(np.argmin([shapely.distance(shapely.Point(ends[0]), s)
                           for s in seam.geometry.values]))
        part = seam.geometry.values[k]
        start = _end_points(part)[0]
        flip = np.hypot(*(shapely.get_coordinates(part)[0] - start)) > 1e-3
        along = [part.length - part.project(shapely.Point(p)) if flip
                 else part.project(shapely.Point(p)) for p in ends]
        keys.append((int(seam["corridor_id"].iloc[k][1:]), round(min(along), 3)))
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    ids = [""] * len(keys)
    for rank, i in enumerate(order):
        ids[i] = f"{prefix}{rank + 1}"
    return ids, [k[0] for k in keys]


@pytest.mark.parametrize("seed", [3, 4])
def test_ids_along_the_seam_match_a_brute_force_numbering(seed):
    """Many stretches, several on one seam part: the vectorised numbering (each part's start
    found once) gives the ids of the one-stretch-at-a-time reference."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = analyze(_random_zones(seed, n=80), A, B,
                      settings=Settings(max_width_km=4.0, reach_km=0.15, min_length_km=2.0))
    assert len(res.seam) >= 10 and len(res.corridors) >= 3 and len(res.minor) >= 3
    assert len(res.corridors) + len(res.minor) >= 15
    on_part = []
    for table, prefix in ((res.corridors, "C"), (res.minor, "m")):
        ids, parts = _ids_by_brute_force(table, res.seam, prefix)
        assert table["corridor_id"].tolist() == ids
        on_part += parts
    assert len(set(on_part)) < len(on_part)  # some seam part holds several stretches


@pytest.mark.parametrize("seed", [0, 1])
def test_union_by_groups_is_the_union_of_all(seed):
    """Zones are unioned group by group (touching ones together, apart ones collected); the
    region must be GEOS's union of all of them."""
    from gapmap.corridors import _union

    rng = np.random.default_rng(seed)
    x, y = X0 + rng.uniform(0, 30e3, (2, 300))
    s = rng.uniform(100, 900, 300)
    geoms = shapely.box(x, y, x + s, y + s)
    geoms[:5] = shapely.multipolygons([[shapely.box(X0 - 9e3 + k * 1e3, Y0, X0 - 8.5e3 + k * 1e3,
                                                    Y0 + 500)] for k in range(5)])
    got, ref = _union(geoms), shapely.union_all(geoms)
    assert len(shapely.get_parts(ref)) > 100  # many apart, some merged
    assert len(shapely.get_parts(got)) == len(shapely.get_parts(ref))
    assert shapely.symmetric_difference(got, ref).area <= 1e-9 * ref.area
    assert got.area == pytest.approx(ref.area, rel=1e-12)
