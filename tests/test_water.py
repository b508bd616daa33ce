"""Rivers and lakes in walking time (gapmap.water), on flat ground where times are hand-computable."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine

from gapmap import parse_side
from gapmap.errors import InputError
from gapmap.routes import TOBLER_FLAT_KMH, cost_distance, walking_routes
from gapmap.run import Run
from gapmap.terrain import Dem
from gapmap.water import Water, crossing_penalty, read_water, walk_masks

from . import scenes

CELL = 100.0
N = 61  # 6.1 km square of flat ground, cell centres at 50, 150, … 6050 m


def flat(n: int = N, cell: float = CELL, x0: float = 0.0, y0: float = 0.0) -> Dem:
    return Dem(np.zeros((n, n), np.float32), Affine(cell, 0, x0, 0, -cell, y0 + n * cell),
               scenes.UTM38)


def gdf(geoms, **cols) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(cols, geometry=list(geoms), crs=scenes.UTM38)


def test_lake_forces_a_detour_of_the_hand_computed_length():
    # From (1050, 3050) to (5050, 3050): 4 km straight. A lake x 2500–3500, y 1000–5000 stands in
    # the way; the shortest way round passes its north corners (2500, 5000) and (3500, 5000).
    dem = flat()
    lake = gdf([shapely.box(2500, 1000, 3500, 5000)])
    a, b = (1050.0, 3050.0), (5050.0, 3050.0)
    leg = math.hypot(2500 - a[0], 5000 - a[1])
    detour_km = (2 * leg + 1000.0) / 1000.0
    plain = cost_distance(dem, [a])
    wet = cost_distance(dem, [a], water=Water(None, lake))
    r, c = 29, 50  # the cell of b
    assert plain.hours[r, c] == pytest.approx(4.0 / TOBLER_FLAT_KMH, rel=1e-9)
    got_km = wet.hours[r, c] * TOBLER_FLAT_KMH
    # 32 move directions: at most 1.3 % longer than the straight legs; corners are cut by at
    # most half a cell on each side of the lake's edge.
    assert detour_km - 0.1 < got_km < detour_km * 1.013 + 0.1
    assert got_km > 1.5 * 4.0
    # the lake's cells are never entered, and the route goes round its north end
    path = wet.path(b)
    assert not path.intersects(shapely.box(2550, 1050, 3450, 4950))
    assert shapely.get_coordinates(path)[:, 1].max() > 4950


def test_lake_cells_are_the_ones_whose_centre_is_inside():
    walkable, extra = walk_masks(Water(None, gdf([shapely.box(2500, 1000, 3500, 5000)])), flat())
    assert extra is None
    assert int((~walkable).sum()) == 10 * 40
    rows, cols = np.nonzero(~walkable)
    assert cols.min() == 25 and cols.max() == 34  # centres 2550 … 3450
    assert rows.min() == 11 and rows.max() == 50  # centres 4950 … 1050


def test_river_crossing_adds_its_hours_and_a_bridge_removes_them():
    dem = flat()
    river = gdf([shapely.LineString([(3050, 0), (3050, N * CELL)])], crossing_hours=[2.0])
    a, b = (1050.0, 3050.0), (5050.0, 3050.0)
    t_dry = 4.0 / TOBLER_FLAT_KMH
    wet = cost_distance(dem, [a], water=Water(river, None))
    assert wet.hours[29, 50] == pytest.approx(t_dry + 2.0, rel=1e-6)
    # a road crossing the river 1 km north of the straight line: 2 h of wading are worth a
    # detour of sqrt(2² + 1²) · 2 km − 4 km = 0.47 km
    road = gdf([shapely.LineString([(0, 4050), (N * CELL, 4050)])])
    bridged = cost_distance(dem, [a], water=Water(river, None, bridges=road))
    detour_h = 2 * math.hypot(2000, 1000) / 1000.0 / TOBLER_FLAT_KMH
    assert detour_h < t_dry + 2.0
    assert bridged.hours[29, 50] == pytest.approx(detour_h, rel=0.015)
    assert bridged.hours[29, 50] >= detour_h * (1 - 1e-9)


def test_walking_routes_count_the_crossing_in_hours_not_in_walk_hours():
    dem = flat()
    river = gdf([shapely.LineString([(3050, 0), (3050, N * CELL)])], crossing_hours=[1.5])
    o = gdf([shapely.Point(1050, 3050)], name=["o"])
    t = gdf([shapely.Point(5050, 3050)], name=["t"])
    r = walking_routes(dem, o, t, water=Water(river, None)).iloc[0]
    assert r["hours"] == pytest.approx(4.0 / TOBLER_FLAT_KMH + 1.5, rel=1e-6)
    assert r["walk_hours"] == pytest.approx(4.0 / TOBLER_FLAT_KMH, rel=1e-6)


def test_crossing_penalty_matches_the_flat_walking_speed():
    m = crossing_penalty(np.array([[0.0, 1.0]], np.float32), flat(n=2))
    assert m[0, 0] == 1.0
    # 100 m at 5.04 km/h is 0.0198 h; ×m it must be 0.0198 + 1 h
    assert (m[0, 1] * 0.1 / TOBLER_FLAT_KMH) == pytest.approx(0.1 / TOBLER_FLAT_KMH + 1.0, rel=1e-6)
    assert crossing_penalty(np.zeros((2, 2), np.float32), flat(n=2)) is None


def test_dearest_river_wins_where_two_touch_a_cell_and_default_hours_apply():
    cross = [shapely.LineString([(3050, 0), (3050, 6100)]),
             shapely.LineString([(0, 3050), (6100, 3050)])]
    _, extra = walk_masks(Water(gdf(cross, crossing_hours=[3.0, 0.5]), None), flat())
    assert extra[29, 30] == 3.0 and extra[29, 10] == 0.5 and extra[10, 30] == 3.0
    _, extra = walk_masks(Water(gdf(cross[:1]), None), flat())
    assert set(np.unique(extra)) == {0.0, 1.0}


def test_bad_crossing_hours_are_refused(tmp_path):
    river = gdf([shapely.LineString([(0, 0), (100, 100)])], crossing_hours=[-1.0])
    path = tmp_path / "rivers.geojson"
    river.to_file(path)
    with pytest.raises(InputError, match="crossing_hours"):
        read_water(path, None)
    assert read_water(None, None) is None


def test_run_feeds_water_into_the_corridor_crossing_time():
    # Two strips 20 km apart on flat ground; a river down the middle of the gap costs 2 h.
    zones = scenes.strips()
    dem = Dem(np.zeros((110, 60), np.float32),
              Affine(1000, 0, scenes.X0 - 10e3, 0, -1000, scenes.Y0 + 105e3), scenes.UTM38)
    river = gdf([shapely.LineString([(scenes.X0 + 20.5e3, scenes.Y0 - 5e3),
                                     (scenes.X0 + 20.5e3, scenes.Y0 + 105e3)])],
                crossing_hours=[2.0])
    a, b = parse_side("A=peshmerga"), parse_side("B=isf")
    dry = Run.from_layers(zones, a, b, dem=dem)
    wet = Run.from_layers(zones, a, b, dem=dem, rivers=river)
    assert dry.water is None and wet.water.rivers.crs.equals(wet.crs)
    h_dry = dry.analysis.corridors["crossing_hours"].to_numpy()
    h_wet = wet.analysis.corridors["crossing_hours"].to_numpy()
    assert len(h_dry) == 1
    assert h_dry[0] == pytest.approx(20.0 / TOBLER_FLAT_KMH, abs=2.5 / TOBLER_FLAT_KMH)
    assert h_wet[0] - h_dry[0] == pytest.approx(2.0, rel=1e-3)
