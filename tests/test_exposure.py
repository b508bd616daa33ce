"""Road exposure on ground where the answer follows from geometry.

On flat ground a walker makes Tobler's flat speed (5.0367 km/h) in every direction, so the
reachable stretch of a road walked from its start is ``hours × 5.0367 km``; a post on flat
ground sees its whole range disc, so a straight road at distance d from a post of range R is
seen along a chord of ``2·sqrt(R² − d²)``. The expected lengths are measured with pyproj.Geod
between hand-computed end points.
"""

from __future__ import annotations

import json
import math

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine
from pyproj import Geod, Transformer

from gapmap.errors import InputError
from gapmap.exposure import (PIECE_COLUMNS, read_exposure, road_exposure, write_exposure)
from gapmap.routes import TOBLER_FLAT_KMH, tobler_speed_kmh
from gapmap.terrain import Dem

UTM = 32638
X0, Y0 = 400_000.0, 3_900_000.0
CELL = 50.0
GEOD = Geod(ellps="WGS84")
TO_LL = Transformer.from_crs(UTM, 4326, always_xy=True)


def _dem(z=None, *, rows=200, cols=500) -> Dem:
    """A 25 km × 10 km grid of 50 m cells whose top-left corner is (X0, Y0 + 10 km)."""
    arr = np.zeros((rows, cols), np.float32) if z is None else np.asarray(z, np.float32)
    return Dem(arr, Affine(CELL, 0, X0, 0, -CELL, Y0 + rows * CELL), UTM)


def _line(*xy) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"name": ["road 1"]}, geometry=[shapely.LineString(xy)], crs=UTM)


def _point(x, y) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(geometry=[shapely.Point(x, y)], crs=UTM)


def _geod_km(a, b) -> float:
    (lon0, lon1), (lat0, lat1) = TO_LL.transform([a[0], b[0]], [a[1], b[1]])
    return GEOD.inv(lon0, lat0, lon1, lat1)[2] / 1000.0


def _close(got, want, rel=1e-3):
    assert got == pytest.approx(want, rel=rel), (got, want)


ROW_Y = Y0 + 5_000.0 - CELL / 2  # a row of cell centres


def test_walk_from_a_point_along_the_grid_is_distance_over_flat_speed():
    start = (X0 + 1_025.0, ROW_Y)
    end = (X0 + 24_025.0, ROW_Y)
    ex = road_exposure(_line(start, end), _point(*start), _dem(), hours=1.0)
    reach_m = TOBLER_FLAT_KMH * 1000.0
    _close(ex.summary["road_km"], _geod_km(start, end))
    _close(ex.summary["reachable_km"], _geod_km(start, (start[0] + reach_m, ROW_Y)))
    assert ex.summary["seen_km"] == 0 and ex.summary["exposed_km"] == ex.summary["reachable_km"]
    # the road is cut where the walk takes exactly one hour
    reach = ex.pieces[ex.pieces["reachable"]]
    assert len(reach) == 1
    assert reach.geometry.iloc[0].coords[-1][0] == pytest.approx(start[0] + reach_m, abs=0.5)
    assert reach["hours_from_origin"].iloc[0] == 0.0
    far = ex.pieces[~ex.pieces["reachable"]]
    assert far["hours_from_origin"].iloc[0] == pytest.approx(1.0, abs=1e-3)


def test_walk_along_a_diagonal_move_and_off_the_moves():
    start = (X0 + 1_025.0, Y0 + 1_025.0)
    # (2, 1) is one of the search's moves: exact
    d = np.array([2.0, 1.0]) / math.sqrt(5.0)
    end = tuple(np.array(start) + d * 9_000)
    ex = road_exposure(_line(start, end), _point(*start), _dem(), hours=1.0)
    reach_m = TOBLER_FLAT_KMH * 1000.0
    _close(ex.summary["reachable_km"], _geod_km(start, tuple(np.array(start) + d * reach_m)))
    # 30° lies between moves: the grid's walk is at most 1.3 % longer, never shorter
    d30 = np.array([math.cos(math.radians(30)), math.sin(math.radians(30))])
    end30 = tuple(np.array(start) + d30 * 9_000)
    ex30 = road_exposure(_line(start, end30), _point(*start), _dem(), hours=1.0)
    want = _geod_km(start, tuple(np.array(start) + d30 * reach_m))
    assert want / 1.0131 <= ex30.summary["reachable_km"] <= want * 1.0001


def test_walk_from_a_polygon_starts_at_its_edge():
    edge = X0 + 2_012.0  # not on a cell edge or centre
    base = gpd.GeoDataFrame(geometry=[shapely.box(X0, Y0, edge, Y0 + 10_000)], crs=UTM)
    y = Y0 + 4_310.0  # between rows of cell centres
    start, end = (X0 + 512.0, y), (X0 + 20_000.0, y)
    ex = road_exposure(_line(start, end), base, _dem(), hours=0.5)
    cut = edge + 0.5 * TOBLER_FLAT_KMH * 1000.0
    _close(ex.summary["reachable_km"], _geod_km(start, (cut, y)))
    reach = ex.pieces[ex.pieces["reachable"]].geometry.iloc[0]
    assert reach.coords[-1][0] == pytest.approx(cut, abs=3.0)


def test_uphill_and_downhill_follow_tobler():
    rows, cols = 200, 500
    x = X0 + (np.arange(cols) + 0.5) * CELL
    z = np.tile(0.1 * (x - X0), (rows, 1))  # 10 % rise to the east
    start = (X0 + 12_525.0, ROW_Y)
    road = _line((X0 + 525.0, ROW_Y), (X0 + 24_525.0, ROW_Y))
    ex = road_exposure(road, _point(*start), _dem(z), hours=1.0)
    up_m = float(tobler_speed_kmh(0.1)) * 1000.0      # 3.55 km/h uphill
    down_m = float(tobler_speed_kmh(-0.1)) * 1000.0   # 5.04 km/h down a 10 % slope
    reach = ex.pieces[ex.pieces["reachable"]]
    xs = shapely.get_coordinates(reach.geometry.values)[:, 0]
    assert xs.min() == pytest.approx(start[0] - down_m, abs=1.0)
    assert xs.max() == pytest.approx(start[0] + up_m, abs=1.0)
    _close(ex.summary["reachable_km"],
           _geod_km((start[0] - down_m, ROW_Y), (start[0] + up_m, ROW_Y)))


def test_post_sees_a_chord_of_its_range_disc():
    post = gpd.GeoDataFrame({"range_km": [2.0], "height_m": [10.0]},
                            geometry=[shapely.Point(X0 + 10_000.0, Y0 + 6_210.0)], crs=UTM)
    start, end = (X0 + 1_025.0, ROW_Y), (X0 + 24_025.0, ROW_Y)
    ex = road_exposure(_line(start, end), _point(*start), _dem(), posts=post, hours=5.0)
    d = 6_210.0 - (ROW_Y - Y0)
    half = math.sqrt(2_000.0 ** 2 - d ** 2)
    a, b = (X0 + 10_000.0 - half, ROW_Y), (X0 + 10_000.0 + half, ROW_Y)
    _close(ex.summary["seen_km"], _geod_km(a, b))
    seen = ex.pieces[ex.pieces["seen"]].geometry.iloc[0]
    assert seen.coords[0][0] == pytest.approx(a[0], abs=0.05)
    assert seen.coords[-1][0] == pytest.approx(b[0], abs=0.05)
    # 5 h reach the whole road: exposed is the road minus the chord
    _close(ex.summary["exposed_km"], ex.summary["road_km"] - ex.summary["seen_km"])


def test_exposed_is_reachable_and_not_seen():
    start, end = (X0 + 1_025.0, ROW_Y), (X0 + 20_025.0, ROW_Y)
    post = gpd.GeoDataFrame(geometry=[shapely.Point(X0 + 4_025.0, ROW_Y)], crs=UTM)
    ex = road_exposure(_line(start, end), _point(*start), _dem(), posts=post, hours=1.0,
                       range_km=1.0)
    reach_end = start[0] + TOBLER_FLAT_KMH * 1000.0
    want = _geod_km(start, (X0 + 3_025.0, ROW_Y)) + _geod_km((X0 + 5_025.0, ROW_Y),
                                                             (reach_end, ROW_Y))
    _close(ex.summary["exposed_km"], want)
    _close(ex.summary["seen_km"], _geod_km((X0 + 3_025.0, ROW_Y), (X0 + 5_025.0, ROW_Y)))
    p = ex.pieces
    assert (p["exposed"] == (p["reachable"] & ~p["seen"])).all()
    assert set(PIECE_COLUMNS) <= set(p.columns)
    assert p["name"].eq("road 1").all()
    # pieces tile the road: lengths add up, no overlaps
    _close(p["length_km"].sum(), ex.summary["road_km"], rel=1e-6)
    assert shapely.union_all(p.geometry.values).length == pytest.approx(end[0] - start[0])
    assert len(p) == 4  # exposed, seen, exposed, out of reach


def test_a_ridge_hides_the_road_beyond_it():
    z = np.zeros((200, 500), np.float32)
    z[:, 140] = 200.0  # a 200 m wall 7.0–7.05 km east of X0
    post = gpd.GeoDataFrame(geometry=[shapely.Point(X0 + 5_025.0, ROW_Y)], crs=UTM)
    start, end = (X0 + 1_025.0, ROW_Y), (X0 + 12_025.0, ROW_Y)
    ex = road_exposure(_line(start, end), _point(*start), _dem(z), posts=post, hours=0.1,
                       range_km=4.0)
    seen = ex.pieces[ex.pieces["seen"]]
    xs = shapely.get_coordinates(seen.geometry.values)[:, 0]
    assert xs.min() == pytest.approx(X0 + 1_025.0, abs=1)  # 4 km west: the range
    assert X0 + 7_000.0 <= xs.max() <= X0 + 7_100.0        # up to the wall, not beyond


def test_multilines_and_several_roads_keep_their_ids():
    roads = gpd.GeoDataFrame(
        {"name": ["a", "b"]}, index=[10, 20], crs=UTM,
        geometry=[shapely.MultiLineString([[(X0 + 1_025, ROW_Y), (X0 + 3_025, ROW_Y)],
                                           [(X0 + 5_025, ROW_Y), (X0 + 8_025, ROW_Y)]]),
                  shapely.LineString([(X0 + 1_025, ROW_Y - 500), (X0 + 1_025, ROW_Y - 2500)])])
    ex = road_exposure(roads, _point(X0 + 1_025, ROW_Y), _dem(), hours=10.0)
    assert set(ex.pieces["road"]) == {10, 20}
    by_road = ex.pieces.groupby("road")["length_km"].sum()
    _close(by_road[10], _geod_km((X0 + 1_025, ROW_Y), (X0 + 3_025, ROW_Y))
           + _geod_km((X0 + 5_025, ROW_Y), (X0 + 8_025, ROW_Y)))
    _close(by_road[20], _geod_km((X0 + 1_025, ROW_Y - 500), (X0 + 1_025, ROW_Y - 2500)))
    assert ex.pieces["reachable"].all()


def test_bad_input():
    road = _line((X0 + 1_025, ROW_Y), (X0 + 5_025, ROW_Y))
    base = _point(X0 + 1_025, ROW_Y)
    for h in (0, -1, float("nan")):
        with pytest.raises(InputError, match="--hours"):
            road_exposure(road, base, _dem(), hours=h)
    with pytest.raises(InputError, match="roads must be LineString"):
        road_exposure(base, base, _dem())
    with pytest.raises(InputError, match="origin lies outside the DEM"):
        road_exposure(road, _point(X0 - 50_000, Y0), _dem())
    with pytest.raises(InputError, match="origin lies outside the DEM"):
        road_exposure(road, _point(X0 + 1_025, ROW_Y), _dem(np.full((200, 500), np.nan)))


def test_write_and_read_back(tmp_path):
    start, end = (X0 + 1_025.0, ROW_Y), (X0 + 9_025.0, ROW_Y)
    post = gpd.GeoDataFrame(geometry=[shapely.Point(X0 + 4_025.0, ROW_Y)], crs=UTM)
    ex = road_exposure(_line(start, end), _point(*start), _dem(), posts=post, hours=1.0,
                       range_km=1.0)
    paths = write_exposure(ex, tmp_path / "out")
    assert sorted(paths) == ["exposure.gpkg", "exposure.json"]
    doc = json.loads(paths["exposure.json"].read_text())
    for k in ("road_km", "reachable_km", "seen_km", "exposed_km"):
        assert doc[k] == pytest.approx(ex.summary[k], abs=1e-4)
    back = read_exposure(tmp_path / "out")
    assert back.crs.to_epsg() == 4326 and back["exposed"].dtype == bool
    _close(back["length_km"].sum(), ex.summary["road_km"], rel=1e-6)
    assert (back["exposed"] == ex.pieces["exposed"].to_numpy()).all()
    with pytest.raises(InputError, match="not found"):
        read_exposure(tmp_path / "nothing")


def _cli(*args):
    from click.testing import CliRunner

    from gapmap.cli import main

    return CliRunner().invoke(main, ["exposure", *args])


@pytest.fixture(scope="module")
def flat_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("flat")
    import rasterio

    dem = _dem()
    with rasterio.open(d / "dem.tif", "w", driver="GTiff", height=200, width=500, count=1,
                       dtype="float32", crs="EPSG:32638", transform=dem.transform) as dst:
        dst.write(dem.array, 1)
    start, end = (X0 + 1_025.0, ROW_Y), (X0 + 20_025.0, ROW_Y)
    _line(start, end).to_crs(4326).to_file(d / "roads.geojson")
    _point(*start).to_crs(4326).to_file(d / "base.geojson")
    lon, lat = TO_LL.transform(X0 + 4_025.0, ROW_Y)
    (d / "posts.csv").write_text(f"name,latitude,longitude,range_km\nK1,{lat},{lon},1\n")
    return d


def test_cli_writes_the_spec_outputs(flat_files, tmp_path):
    d = flat_files
    out = tmp_path / "exp"
    proc = _cli("--roads", str(d / "roads.geojson"), "--origin", str(d / "base.geojson"),
                "--dem", str(d / "dem.tif"), "--posts", str(d / "posts.csv"), "--hours", "1",
                "--out", str(out))
    assert proc.exit_code == 0, proc.output
    doc = json.loads((out / "exposure.json").read_text())
    start = (X0 + 1_025.0, ROW_Y)
    reach_end = start[0] + TOBLER_FLAT_KMH * 1000.0
    _close(doc["reachable_km"], _geod_km(start, (reach_end, ROW_Y)))
    _close(doc["seen_km"], _geod_km((X0 + 3_025.0, ROW_Y), (X0 + 5_025.0, ROW_Y)))
    _close(doc["exposed_km"], doc["reachable_km"] - doc["seen_km"])
    assert "exposed" in proc.output
    layer = gpd.read_file(out / "exposure.gpkg", layer="exposure")
    assert {"hours_from_origin", "seen", "reachable", "exposed"} <= set(layer.columns)


@pytest.mark.parametrize("args, words", [
    (["--hours", "0"], ["--hours", "more than 0"]),
    (["--hours", "-2"], ["--hours", "more than 0"]),
    (["--origin-far"], ["origin", "outside the DEM"]),
    (["--roads-points"], ["roads", "LineString"]),
])
def test_cli_bad_input_exit_2_one_line(flat_files, tmp_path, args, words):
    d = flat_files
    roads, origin = d / "roads.geojson", d / "base.geojson"
    if args == ["--origin-far"]:
        origin = tmp_path / "far.geojson"
        _point(X0 - 90_000, Y0).to_crs(4326).to_file(origin)
        args = []
    if args == ["--roads-points"]:
        roads = origin
        args = []
    out = tmp_path / "o"
    proc = _cli("--roads", str(roads), "--origin", str(origin), "--dem", str(d / "dem.tif"),
                *args, "--out", str(out))
    assert proc.exit_code == 2, proc.output
    lines = [x for x in proc.output.splitlines() if x.startswith("gapmap: error")]
    assert len(lines) == 1 and all(w in lines[0] for w in words), lines
    assert "Traceback" not in proc.output
    assert not out.exists()


# --------------------------------------------------------------------------------------------
# rivers and lakes in the walk (gapmap.water, the same masks as the crossing search)


def _river(x, hours=1.0) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"crossing_hours": [hours]},
                            geometry=[shapely.LineString([(x, Y0 - 1e4), (x, Y0 + 3e4)])],
                            crs=UTM)


def _coarse_dem() -> Dem:
    """100 m cells: the last straight step (3 cells) then reaches past a river 300 m away."""
    return Dem(np.zeros((100, 250), np.float32), Affine(100, 0, X0, 0, -100, Y0 + 10_000), UTM)


@pytest.mark.parametrize("crossing_hours", [0.5, 1.0])
def test_river_adds_its_crossing_hours_to_the_flat_walk(crossing_hours):
    from gapmap.water import Water

    y = Y0 + 5_050.0                      # a row of cell centres
    start = (X0 + 1_050.0, y)
    road_a, road_b = (X0 + 9_050.0, y), (X0 + 20_050.0, y)
    river_x = road_a[0] - 300.0           # a column of cell centres, 3 cells from the road
    water = Water(_river(river_x, crossing_hours), None)
    v = TOBLER_FLAT_KMH
    ex = road_exposure(_line(road_a, road_b), _point(*start), _coarse_dem(), hours=3.0,
                       water=water)
    flat_h = (road_a[0] - start[0]) / 1000.0 / v
    # the road's first point: flat time + the river's cost (hand computed), not + half of it;
    # to 1e-6 h (4 ms) because the searches keep the time multiplier in float32
    assert ex.pieces["hours_from_origin"].min() == pytest.approx(flat_h + crossing_hours,
                                                                 abs=1e-6)
    # the road is reachable up to where flat time + cost = 3 h
    cut = start[0] + (3.0 - crossing_hours) * v * 1000.0
    _close(ex.summary["reachable_km"], _geod_km(road_a, (cut, y)), rel=1e-5)
    assert ex.summary["water"] is True
    # without the river: flat time only
    dry = road_exposure(_line(road_a, road_b), _point(*start), _coarse_dem(), hours=3.0)
    assert dry.pieces["hours_from_origin"].min() == pytest.approx(flat_h, abs=1e-9)


def test_a_road_bridges_the_river_and_a_lake_cannot_be_walked():
    from gapmap.water import Water

    y = Y0 + 5_050.0
    start = (X0 + 1_050.0, y)
    river_x = X0 + 5_050.0
    far = (X0 + 9_050.0, y)
    # a second road crossing the river on the walker's row is a bridge: the crossing is free
    bridge = gpd.GeoDataFrame({"name": ["bridge road", "target"]},
                              geometry=[shapely.LineString([(river_x - 2_000, y),
                                                            (river_x + 2_000, y)]),
                                        shapely.LineString([far, (X0 + 20_050.0, y)])],
                              crs=UTM)
    v = TOBLER_FLAT_KMH
    ex = road_exposure(bridge, _point(*start), _coarse_dem(), hours=3.0,
                       water=Water(_river(river_x, 2.0), None), road_name="target")
    assert set(ex.pieces["name"]) == {"target"}
    assert ex.pieces["hours_from_origin"].min() == pytest.approx(
        (far[0] - start[0]) / 1000.0 / v, abs=1e-9)
    # a lake across the whole grid between the origin and the road: nothing reachable
    lake = gpd.GeoDataFrame(geometry=[shapely.box(X0 + 4_000, Y0 - 10, X0 + 5_000, Y0 + 10_010)],
                            crs=UTM)
    wet = road_exposure(bridge, _point(*start), _coarse_dem(), hours=3.0,
                        water=Water(None, lake), road_name="target")
    assert wet.summary["reachable_km"] == 0.0


# --------------------------------------------------------------------------------------------
# which roads, which posts, and what a withdrawn post changed


def _roads_named() -> gpd.GeoDataFrame:
    y = ROW_Y
    return gpd.GeoDataFrame(
        {"name": ["Kirkuk–Baghdad road (A–B)", "Kirkuk–Baghdad road (B–C)", "A–D road"],
         "corridor": ["Kirkuk–Baghdad", "Kirkuk–Baghdad", ""]},
        geometry=[shapely.LineString([(X0 + 1_025.0, y), (X0 + 5_025.0, y)]),
                  shapely.LineString([(X0 + 5_025.0, y), (X0 + 9_025.0, y)]),
                  shapely.LineString([(X0 + 1_025.0, y), (X0 + 1_025.0, y + 4_000)])],
        crs=UTM)


def test_select_roads_by_name_and_field():
    from gapmap.exposure import select_roads

    r = _roads_named()
    assert list(select_roads(r, road_name="kirkuk-baghdad").index) == [0, 1]
    assert list(select_roads(r, road_name="Baghdad", where="name=Kirkuk–Baghdad road (B–C)"
                             ).index) == [1]
    assert list(select_roads(r, where="corridor=KIRKUK-BAGHDAD").index) == [0, 1]
    with pytest.raises(InputError, match=r"no road's name contains 'Mosul'.*'A–D road'"):
        select_roads(r, road_name="Mosul")
    with pytest.raises(InputError, match=r"no field 'kind' \(fields: name, corridor\)"):
        select_roads(r, where="kind=primary")
    with pytest.raises(InputError, match="FIELD=VALUE"):
        select_roads(r, where="corridor")
    # only the selected roads are assessed: 8 km of the 12
    ex = road_exposure(r, _point(X0 + 1_025.0, ROW_Y), _dem(), hours=1.0,
                       road_name="Kirkuk–Baghdad")
    _close(ex.summary["road_km"], _geod_km((X0 + 1_025.0, ROW_Y), (X0 + 9_025.0, ROW_Y)))


def test_posts_by_date_and_the_stretch_a_withdrawn_post_exposes():
    from gapmap.exposure import exposure_change, posts_on

    start, end = (X0 + 1_025.0, ROW_Y), (X0 + 9_025.0, ROW_Y)
    posts = gpd.GeoDataFrame({"name": ["patrol", "post"],
                              "range_km": [1.0, 0.5],
                              "active_from": [None, None],
                              "active_to": ["2017-10-25", None]},
                             geometry=[shapely.Point(X0 + 3_025.0, ROW_Y),
                                       shapely.Point(X0 + 6_025.0, ROW_Y)], crs=UTM)
    assert list(posts_on(posts, "2017-10-25")["name"]) == ["patrol", "post"]  # inclusive
    assert list(posts_on(posts, "2017-10-26")["name"]) == ["post"]
    with pytest.raises(InputError, match="not a date"):
        posts_on(posts, "25/10/2017")
    kw = dict(posts=posts, hours=2.0)
    on = road_exposure(_line(start, end), _point(*start), _dem(), posts_date="2017-10-20", **kw)
    off = road_exposure(_line(start, end), _point(*start), _dem(), posts_date="2017-10-31", **kw)
    assert (on.summary["posts"], off.summary["posts"]) == (2, 1)
    chord_patrol = _geod_km((X0 + 2_025.0, ROW_Y), (X0 + 4_025.0, ROW_Y))
    chord_post = _geod_km((X0 + 5_525.0, ROW_Y), (X0 + 6_525.0, ROW_Y))
    _close(on.summary["seen_km"], chord_patrol + chord_post)
    _close(off.summary["seen_km"], chord_post)
    ch = exposure_change(on, off)
    _close(ch.summary["newly_exposed_km"], chord_patrol)
    _close(ch.summary["exposed_km_after"] - ch.summary["exposed_km_before"], chord_patrol)
    assert ch.summary["no_longer_exposed_km"] == 0.0 and ch.summary["stretches"] == 1
    x = shapely.get_coordinates(ch.newly_exposed.geometry.iloc[0])[:, 0]
    assert x.min() == pytest.approx(X0 + 2_025.0, abs=0.05)
    assert x.max() == pytest.approx(X0 + 4_025.0, abs=0.05)


def test_cli_road_name_posts_date_and_compare(flat_files, tmp_path):
    d = flat_files
    lon, lat = TO_LL.transform(X0 + 4_025.0, ROW_Y)
    (tmp_path / "dated.csv").write_text("name,latitude,longitude,range_km,active_to\n"
                                        f"K1,{lat},{lon},1,2017-10-25\n")
    named = tmp_path / "roads.geojson"
    r = gpd.read_file(d / "roads.geojson")
    r["name"] = "Kirkuk–Baghdad road (A–B)"
    r.to_file(named)
    out = tmp_path / "exp"
    base = ["--roads", str(named), "--origin", str(d / "base.geojson"), "--dem",
            str(d / "dem.tif"), "--posts", str(tmp_path / "dated.csv"), "--hours", "1"]
    proc = _cli(*base, "--road-name", "kirkuk-baghdad", "--posts-date", "2017-10-31",
                "--compare-date", "2017-10-20", "--out", str(out))
    assert proc.exit_code == 0, proc.output
    doc = json.loads((out / "exposure.json").read_text())
    assert doc["seen_km"] == 0 and doc["posts"] == 0 and doc["posts_date"] == "2017-10-31"
    change = json.loads((out / "compare" / "change.json").read_text())
    chord = _geod_km((X0 + 3_025.0, ROW_Y), (X0 + 5_025.0, ROW_Y))
    _close(change["newly_exposed_km"], chord, rel=1e-3)
    assert change["posts_before"] == 1 and change["posts_after"] == 0
    assert json.loads((out / "compare" / "exposure.json").read_text())["posts"] == 1
    newly = gpd.read_file(out / "compare" / "newly_exposed.geojson")
    assert len(newly) == 1 and newly["length_km"].sum() == pytest.approx(chord, rel=1e-3)
    assert "newly exposed" in proc.output
    # nothing matches: exit 2, one line listing the names, nothing written
    bad = tmp_path / "bad"
    proc = _cli(*base, "--road-name", "Mosul", "--out", str(bad))
    assert proc.exit_code == 2, proc.output
    lines = [x for x in proc.output.splitlines() if x.startswith("gapmap: error")]
    assert len(lines) == 1 and "Kirkuk–Baghdad road (A–B)" in lines[0], lines
    assert not bad.exists()
    proc = _cli(*base, "--posts-date", "31.10.2017", "--out", str(bad))
    assert proc.exit_code == 2 and "not a date" in proc.output and not bad.exists()


def test_one_walk_for_several_dates_gives_the_runs_of_each_date():
    from gapmap.exposure import road_exposure_on_dates

    start, end = (X0 + 1_025.0, ROW_Y), (X0 + 9_025.0, ROW_Y)
    posts = gpd.GeoDataFrame({"range_km": [1.0], "active_to": ["2017-10-25"]},
                             geometry=[shapely.Point(X0 + 3_025.0, ROW_Y)], crs=UTM)
    dates = ["2017-10-20", "2017-10-31"]
    runs = road_exposure_on_dates(_line(start, end), _point(*start), _dem(), posts=posts,
                                  dates=dates, hours=1.5)
    assert list(runs) == dates
    for d in dates:
        one = road_exposure(_line(start, end), _point(*start), _dem(), posts=posts,
                            posts_date=d, hours=1.5)
        assert runs[d].summary == one.summary
        assert runs[d].pieces.geometry.geom_equals_exact(one.pieces.geometry, 1e-9).all()
    assert runs[dates[0]].summary["posts"] == 1 and runs[dates[1]].summary["posts"] == 0


# --------------------------------------------------------------------------------------------
# bounded memory: only the DEM's window the walk and the roads need is read


def _long_dem_file(path, cols=2000):
    """A 100 km × 10 km file of 50 m cells with rolling hills (so every cell matters)."""
    import rasterio

    rows = 200
    y, x = np.mgrid[0:rows, 0:cols]
    z = (40 * np.sin(x / 37.0) * np.cos(y / 23.0) + 0.5 * x).astype(np.float32)
    t = Affine(CELL, 0, X0, 0, -CELL, Y0 + rows * CELL)
    with rasterio.open(path, "w", driver="GTiff", height=rows, width=cols, count=1,
                       dtype="float32", crs="EPSG:32638", transform=t, tiled=True,
                       blockxsize=256, blockysize=256) as dst:
        dst.write(z, 1)
    return Dem(z, t, UTM)


def test_the_walk_reads_a_window_of_the_file_not_the_whole_dem(tmp_path, monkeypatch):
    import gapmap.exposure as exposure_mod
    from gapmap.terrain import as_dem

    whole = _long_dem_file(tmp_path / "dem.tif")
    start, end = (X0 + 1_025.0, ROW_Y), (X0 + 12_025.0, ROW_Y)
    posts = gpd.GeoDataFrame({"range_km": [2.0]}, geometry=[shapely.Point(X0 + 6_025.0, ROW_Y)],
                             crs=UTM)
    reads = []
    monkeypatch.setattr(exposure_mod, "as_dem",
                        lambda *a, **k: reads.append((a, k)) or as_dem(*a, **k))
    got = road_exposure(_line(start, end), _point(*start), tmp_path / "dem.tif", posts=posts,
                        hours=1.0)
    # one windowed read over the walk's window (origin + 2 h at 6 km/h = 12 km + 4 cells: to
    # 13.225 km) and the road grown by the post's 2 km + 4 cells (to 14.225 km), clipped to
    # the file's west edge, plus the three-cell margin of a read
    reads = [r for r in reads if not isinstance(r[0][0], Dem)]  # Dems in memory: no read
    assert len(reads) == 1 and reads[0][1]["bounds"] is not None
    cols = reads[0][1]
    read = as_dem(tmp_path / "dem.tif", bounds=cols["bounds"], bounds_crs=cols["bounds_crs"])
    assert read.shape[1] == pytest.approx((12_025 + 2_000 + 200) / CELL + 3, abs=1)
    assert read.shape[1] < whole.shape[1] / 6
    # the same pieces as with the whole DEM in memory
    want = road_exposure(_line(start, end), _point(*start), whole, posts=posts, hours=1.0)
    assert got.summary == want.summary
    assert got.pieces.geometry.geom_equals_exact(want.pieces.geometry, 1e-9).all()
    assert 0 < got.summary["exposed_km"] < got.summary["reachable_km"]


def test_a_walk_that_cannot_fit_is_refused_with_the_figure_and_the_hours_that_fit(tmp_path):
    from gapmap.exposure import exposure_memory_bytes
    from gapmap.tiles import BASE_BYTES

    _long_dem_file(tmp_path / "dem.tif")
    road, base = _line((X0 + 1_025.0, ROW_Y), (X0 + 3_025.0, ROW_Y)), _point(X0 + 1_025.0, ROW_Y)
    assert exposure_memory_bytes(10, 4, 4) == pytest.approx(
        BASE_BYTES + 5 * 10 + 40 * 10 * 10)
    limit_gb = 0.4205  # 1.07 MB beyond the process's 400 MiB
    with pytest.raises(InputError) as err:
        road_exposure(road, base, tmp_path / "dem.tif", hours=6.0, max_memory_gb=limit_gb)
    msg = str(err.value)
    assert msg.startswith("--max-memory-gb: the walk of 6 h from the origin") and "\n" not in msg
    assert "0.42 GB allowed" in msg and "needs about" in msg
    # 6 h: a window of the whole 200 rows × about 1,500 columns ≈ 12 MB beyond the 400 MiB
    assert "needs about 0.43 GB" in msg
    fit = float(msg.split("--hours ")[1].split(" ")[0])
    assert 0 < fit < 6.0
    ok = road_exposure(road, base, tmp_path / "dem.tif", hours=fit, max_memory_gb=limit_gb)
    assert ok.summary["hours"] == fit
    with pytest.raises(InputError, match="--max-memory-gb"):
        road_exposure(road, base, tmp_path / "dem.tif", hours=fit * 1.1 + 0.05,
                      max_memory_gb=limit_gb)


@pytest.mark.parametrize("value, words", [("0.4205", ["needs about", "--hours"]),
                                          ("-1", ["positive"]), ("many", ["--max-memory-gb"])])
def test_cli_max_memory_exit_2_one_line(flat_files, tmp_path, value, words):
    d = flat_files
    out = tmp_path / "o"
    proc = _cli("--roads", str(d / "roads.geojson"), "--origin", str(d / "base.geojson"),
                "--dem", str(d / "dem.tif"), "--hours", "8", "--max-memory-gb", value,
                "--out", str(out))
    assert proc.exit_code == 2, proc.output
    lines = [x for x in proc.output.splitlines() if x.startswith("gapmap: error")]
    assert len(lines) == 1 and all(w in lines[0] for w in words), proc.output
    assert not out.exists()


def test_cli_range_km_fills_posts_without_their_own_and_the_scenario_default(flat_files,
                                                                             tmp_path):
    """A post without range_km sees --range-km when it is given, else the scenario's
    post_range_km, else 5 km: a flat chord of 2·range along the road through the post."""
    d = flat_files
    lon, lat = TO_LL.transform(X0 + 4_025.0, ROW_Y)
    posts = tmp_path / "posts.csv"
    posts.write_text(f"name,latitude,longitude\nK1,{lat},{lon}\n")
    gpd.GeoDataFrame({"force": ["x", "y"]}, geometry=[
        shapely.box(X0, Y0, X0 + 5_000.0, Y0 + 5_000.0),
        shapely.box(X0 + 6_000.0, Y0, X0 + 11_000.0, Y0 + 5_000.0)], crs=UTM).to_crs(
        4326).to_file(tmp_path / "zones.geojson")
    (tmp_path / "scenario.toml").write_text(
        f'[layers]\nzones = "zones.geojson"\nroads = "{d / "roads.geojson"}"\n'
        f'dem = "{d / "dem.tif"}"\nposts = "posts.csv"\n'
        '[sides]\na = "a=x"\nb = "b=y"\n[parameters]\npost_range_km = 1\n')

    def seen_km(*args) -> float:
        out = tmp_path / f"out{len(list(tmp_path.glob('out*')))}"
        proc = _cli("--origin", str(d / "base.geojson"), "--hours", "1", *args,
                    "--out", str(out))
        assert proc.exit_code == 0, proc.output
        return json.loads((out / "exposure.json").read_text())["seen_km"]

    files = ["--roads", str(d / "roads.geojson"), "--dem", str(d / "dem.tif"),
             "--posts", str(posts)]
    config = ["--config", str(tmp_path / "scenario.toml")]
    for args, half_m in ((files + ["--range-km", "2"], 2_000.0), (files, 5_000.0),
                         (config, 1_000.0), (config + ["--range-km", "2"], 2_000.0)):
        a = max(X0 + 4_025.0 - half_m, X0 + 1_025.0)  # the road starts at X0 + 1,025 m
        _close(seen_km(*args), _geod_km((a, ROW_Y), (X0 + 4_025.0 + half_m, ROW_Y)))


def test_a_lonlat_dem_in_memory_is_reprojected_only_where_the_run_needs(tmp_path, monkeypatch):
    """A lon/lat Dem already in memory is planned like a lon/lat file: only the window of the
    walk and the roads is reprojected (a sixth of the grid here), with the file's answer."""
    import rasterio
    import rasterio.warp

    import gapmap.exposure as exposure_mod
    from gapmap.terrain import as_dem

    _long_dem_file(tmp_path / "utm.tif")
    with rasterio.open(tmp_path / "utm.tif") as src:
        t, w, h = rasterio.warp.calculate_default_transform(src.crs, "EPSG:4326", src.width,
                                                            src.height, *src.bounds)
        z = np.full((h, w), np.nan, np.float32)
        rasterio.warp.reproject(src.read(1), z, src_transform=src.transform, src_crs=src.crs,
                                dst_transform=t, dst_crs="EPSG:4326",
                                resampling=rasterio.enums.Resampling.bilinear)
    with rasterio.open(tmp_path / "ll.tif", "w", driver="GTiff", height=h, width=w, count=1,
                       dtype="float32", crs="EPSG:4326", transform=t, nodata=np.nan) as dst:
        dst.write(z, 1)
    lonlat = Dem(z, t, "EPSG:4326")
    start, end = (X0 + 1_025.0, ROW_Y), (X0 + 12_025.0, ROW_Y)
    posts = gpd.GeoDataFrame({"range_km": [2.0]}, geometry=[shapely.Point(X0 + 6_025.0, ROW_Y)],
                             crs=UTM)
    made = []
    monkeypatch.setattr(exposure_mod, "as_dem",
                        lambda *a, **k: (lambda d: made.append(d) or d)(as_dem(*a, **k)))
    got = road_exposure(_line(start, end), _point(*start), lonlat, posts=posts, hours=1.0)
    grids = list({id(d): d for d in made if not d.crs.is_geographic}.values())
    assert len(grids) == 1 and grids[0].shape[1] < 2000 / 5  # 100 km wide: ~15 km of it
    want = road_exposure(_line(start, end), _point(*start), tmp_path / "ll.tif", posts=posts,
                         hours=1.0)
    for key in ("road_km", "reachable_km", "seen_km", "exposed_km"):
        _close(got.summary[key], want.summary[key], rel=1e-3)
    assert 0 < got.summary["exposed_km"] < got.summary["reachable_km"]
