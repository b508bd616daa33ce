"""Walking time (Tobler), least-time routes and corridor terrain, against answers by hand.

Reference figures used throughout: Tobler's speed is 6·exp(−3.5·|tan θ + 0.05|) km/h, so
flat ground gives 6·e^−0.175 = 5.0367 km/h, a 10 % climb 6·e^−0.525 = 3.5493 km/h and a 10 %
descent 6·e^−0.175 = 5.0367 km/h (the same as the flat: |−0.1 + 0.05| = 0.05).
"""

from __future__ import annotations

import dataclasses
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from affine import Affine
from click.testing import CliRunner
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

import gapmap
from gapmap.crs import geodesic_length_km
from gapmap.errors import InputError
from gapmap.routes import (
    TOBLER_FLAT_KMH,
    corridor_terrain,
    cost_distance,
    crossing_routes,
    moves,
    tobler_hours,
    tobler_speed_kmh,
    walking_routes,
)
from gapmap.terrain import Dem

from .conftest import UTM38, X0, Y0

FLAT = 6.0 * math.exp(-0.175)


def speed(tan: float) -> float:
    return 6.0 * math.exp(-3.5 * abs(tan + 0.05))


def make_dem(z, cell: float = 10.0, x0: float = X0, y0: float = Y0) -> Dem:
    """A DEM whose lower-left corner is (x0, y0)."""
    z = np.asarray(z, np.float32)
    return Dem(z, Affine(cell, 0, x0, 0, -cell, y0 + z.shape[0] * cell), UTM38)


def centre(dem: Dem, row: int, col: int) -> list[float]:
    x, y = dem.transform @ (col + 0.5, row + 0.5)
    return [x, y]


def points(xy, names=None) -> gpd.GeoDataFrame:
    xy = np.asarray(xy, float).reshape(-1, 2)
    names = names or [f"p{i}" for i in range(len(xy))]
    return gpd.GeoDataFrame({"name": names}, geometry=shapely.points(xy), crs=UTM38)


# ------------------------------------------------------------------------------- Tobler


def test_tobler_speed_by_hand():
    assert TOBLER_FLAT_KMH == pytest.approx(5.036742, abs=1e-6)
    assert float(tobler_speed_kmh(0.0)) == pytest.approx(FLAT, rel=1e-12)
    assert float(tobler_speed_kmh(-0.05)) == pytest.approx(6.0, rel=1e-12)
    assert float(tobler_speed_kmh(0.1)) == pytest.approx(3.549332, abs=1e-6)
    assert float(tobler_speed_kmh(-0.1)) == pytest.approx(FLAT, rel=1e-12)
    # 1 km rising 100 m: 1 / 3.5479 h
    assert float(tobler_hours(1000.0, 100.0)) == pytest.approx(1 / 3.549332, rel=1e-6)


def test_move_set_has_32_moves_at_most_18_4_degrees_apart():
    mv = moves(3)
    assert len(mv) == 32 and len(set(map(tuple, mv))) == 32
    ang = np.sort(np.degrees(np.arctan2(mv[:, 0], mv[:, 1])) % 360)
    gaps = np.diff(np.concatenate([ang, [ang[0] + 360]]))
    assert gaps.max() == pytest.approx(math.degrees(math.atan(1 / 3)), abs=1e-9)  # 18.43°


# ------------------------------------------------------------------------------- engine


def _ring_ratios(max_step: int) -> np.ndarray:
    """Time to every cell 60–100 cells from the centre of flat ground ÷ straight-line time."""
    n = 201
    dem = make_dem(np.zeros((n, n)))
    cd = cost_distance(dem, [centre(dem, 100, 100)], max_step=max_step)
    rr, cc = np.indices((n, n))
    d_km = np.hypot(rr - 100, cc - 100) * 10 / 1000
    ring = (d_km >= 0.6) & (d_km <= 1.0)
    return cd.hours[ring] * FLAT / d_km[ring]


def test_flat_ground_every_direction_within_2_percent_of_straight_line():
    ratios = _ring_ratios(3)
    assert len(ratios) > 15000  # every direction: ~16,000 cells on the ring
    assert ratios.min() >= 1 - 1e-9  # never faster than the straight line
    assert ratios.max() <= 1.02
    # The worst direction lies midway between (1, 0) and (3, 1): 1/cos(9.2°) − 1 = 1.31 %.
    assert ratios.max() == pytest.approx(1 / math.cos(math.atan(1 / 3) / 2), abs=2e-4)


def test_eight_moves_would_err_by_8_percent():
    """The same measure on the 8-move graph: the test above would catch a coarse move set."""
    ratios = _ring_ratios(1)
    assert ratios.max() == pytest.approx(1 / math.cos(math.radians(22.5)), abs=2e-3)  # 8.2 %
    assert ratios.max() > 1.02


def test_tilted_plane_uphill_and_downhill_differ_as_tobler_says():
    n, cell, g = 201, 10.0, 0.1  # z rises 0.1 m per m eastwards
    cols = np.arange(n) * cell
    dem = make_dem(np.tile(cols * g, (n, 1)), cell)
    cd = cost_distance(dem, [centre(dem, 100, 100)])
    east = cd.hours[100, 200]   # 1 km uphill at 10 %
    west = cd.hours[100, 0]     # 1 km downhill at 10 %
    north = cd.hours[0, 100]    # 1 km along the contour
    assert east == pytest.approx(1 / speed(0.1), rel=1e-9)
    assert west == pytest.approx(1 / speed(-0.1), rel=1e-9)
    assert north == pytest.approx(1 / FLAT, rel=1e-9)
    assert east / west == pytest.approx(math.exp(3.5 * 0.1), rel=1e-9)
    # Diagonal north-east: tan θ = 0.1 / √2 along the move; 0.5·√2 km.
    ne = cd.hours[50, 150]
    assert ne == pytest.approx(0.5 * math.sqrt(2) / speed(0.1 / math.sqrt(2)), rel=1e-9)
    # Walking *to* the centre: the reverse search swaps uphill and downhill.
    back = cost_distance(dem, [centre(dem, 100, 100)], reverse=True)
    assert back.hours[100, 200] == pytest.approx(west, rel=1e-9)
    assert back.hours[100, 0] == pytest.approx(east, rel=1e-9)


def _reference_dijkstra(z: np.ndarray, cell: float, src: tuple[int, int]) -> np.ndarray:
    """Independent check: the 32-move graph built edge by edge with numpy
    (:func:`_reference_graph`, no penalty) and solved by scipy.sparse.csgraph.dijkstra."""
    graph = _reference_graph(z, cell)
    return dijkstra(graph, directed=True, indices=src[0] * z.shape[1] + src[1]).reshape(z.shape)


def test_engine_matches_scipy_dijkstra_on_rugged_terrain():
    rng = np.random.default_rng(7)
    z = np.cumsum(np.cumsum(rng.normal(0, 3, (40, 40)), axis=0), axis=1)  # rough, 0–300 m
    dem = make_dem(z, 30.0)
    ours = cost_distance(dem, [centre(dem, 12, 25)]).hours
    ref = _reference_dijkstra(np.asarray(dem.array, float), 30.0, (12, 25))
    # The outer 3 cells are never expanded (moves would leave the grid); compare inside them.
    inner = np.s_[3:-3, 3:-3]
    assert np.isfinite(ref[inner]).all()
    np.testing.assert_allclose(ours[inner], ref[inner], rtol=1e-5)


def _reference_graph(z: np.ndarray, cell: float, pen: np.ndarray | None = None):
    """The 32-move graph edge by edge: each move is timed over the points where it crosses
    rows (or columns) of cell centres, elevations interpolated linearly between the two
    cells, each piece's time multiplied by the mean of the penalty at its two ends
    (interpolated like the elevation; 1 without a penalty)."""
    n_r, n_c = z.shape
    pen = np.ones_like(z) if pen is None else pen
    rows, cols, weights = [], [], []
    rr, cc = np.indices(z.shape)
    for dr, dc in moves(3):
        k = max(abs(dr), abs(dc))
        piece = math.hypot(dr, dc) * cell / k
        ok = (rr + dr >= 0) & (rr + dr < n_r) & (cc + dc >= 0) & (cc + dc < n_c)
        r0, c0 = rr[ok], cc[ok]
        hours = np.zeros(len(r0))
        z_prev, p_prev = z[r0, c0], pen[r0, c0]
        for s in range(1, k + 1):
            fr, fc = r0 + dr * s / k, c0 + dc * s / k
            lo_r, lo_c = np.floor(fr).astype(int), np.floor(fc).astype(int)
            hi_r, hi_c = np.minimum(lo_r + 1, n_r - 1), np.minimum(lo_c + 1, n_c - 1)
            wr, wc = fr - lo_r, fc - lo_c

            def at(g):
                return ((1 - wr) * (1 - wc) * g[lo_r, lo_c] + (1 - wr) * wc * g[lo_r, hi_c]
                        + wr * (1 - wc) * g[hi_r, lo_c] + wr * wc * g[hi_r, hi_c])
            z_here, p_here = at(z), at(pen)
            speed_kmh = 6 * np.exp(-3.5 * np.abs((z_here - z_prev) / piece + 0.05))
            hours += piece / 1000 / speed_kmh * 0.5 * (p_prev + p_here)
            z_prev, p_prev = z_here, p_here
        rows.append(r0 * n_c + c0)
        cols.append((r0 + dr) * n_c + c0 + dc)
        weights.append(hours)
    return coo_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(z.size, z.size)).tocsr()


@pytest.mark.parametrize("reverse", [False, True])
def test_bucket_queue_equals_scipy_dijkstra_with_penalty_walls_and_two_sources(reverse):
    """The bucket queue against scipy's binary-heap Dijkstra on the same move times, to
    1e-9: rugged ground, a visibility penalty of 3 on a block, a plateau 400 m up a cliff
    (reaching it takes thousands of hours, beyond the 65,536 buckets of 0.005 h: those entries go
    through the overflow heap and the window moves), two sources, and the reverse search
    (scipy on the transposed graph)."""
    rng = np.random.default_rng(11)
    z = np.cumsum(np.cumsum(rng.normal(0, 2, (44, 44)), axis=0), axis=1)
    z[30:, 30:] = z.max() + 400.0  # the plateau
    vis = np.zeros(z.shape, bool)
    vis[5:20, 10:30] = True
    dem = make_dem(z, 30.0)
    srcs = [(12, 8), (35, 12)]
    ours = cost_distance(dem, np.array([centre(dem, *s) for s in srcs]), visible=vis,
                         visible_penalty=3.0, reverse=reverse).hours
    graph = _reference_graph(np.asarray(dem.array, float), 30.0, np.where(vis, 3.0, 1.0))
    if reverse:
        graph = graph.T.tocsr()
    ref = dijkstra(graph, directed=True, indices=[r * 44 + c for r, c in srcs],
                   min_only=True).reshape(z.shape)
    inner = np.s_[3:-3, 3:-3]
    assert np.isfinite(ref[inner]).all()
    assert ref[33:-3, 33:-3].min() > 65536 * 0.005  # the plateau lies beyond the buckets
    np.testing.assert_allclose(ours[inner], ref[inner], rtol=1e-9)


@pytest.mark.parametrize("max_step", [1, 2, 3])
def test_max_hours_keeps_every_time_within_and_none_beyond(max_step):
    """A search cut at ``max_hours`` gives the full search's time, bit for bit, to every cell
    within it and ``inf`` to every cell beyond, whatever order the last bucket was emptied
    in; a stop list naming one cell twice still waits for the others."""
    rng = np.random.default_rng(3)
    z = np.cumsum(np.cumsum(rng.normal(0, 2, (80, 80)), axis=0), axis=1)
    dem = make_dem(z, 30.0)
    src = [centre(dem, 40, 40)]
    full = cost_distance(dem, src, max_step=max_step, keep_paths=False).hours
    cut_h = float(np.median(full[np.isfinite(full)]))
    cut = cost_distance(dem, src, max_step=max_step, max_hours=cut_h).hours
    within = full <= cut_h
    assert 0.3 < within.mean() < 0.7
    assert np.array_equal(cut[within], full[within])
    assert np.isinf(cut[~within]).all()
    far, near = centre(dem, 2, 2), centre(dem, 41, 41)
    stopped = cost_distance(dem, src, max_step=max_step, stop_at=[near, near, far]).hours
    assert stopped[2, 2] == full[2, 2]


def test_search_resumes_with_more_room_to_the_same_times_and_paths(monkeypatch):
    """The search returns for larger queue arrays whenever they fill and goes on where it
    stopped: starting with room for one entry (the entries and the heap, which holds the
    plateau beyond the buckets, doubled at each return) gives the same times and paths, bit
    for bit."""
    import gapmap.routes as routes

    rng = np.random.default_rng(5)
    z = np.cumsum(np.cumsum(rng.normal(0, 2, (60, 60)), axis=0), axis=1)
    z[40:, 40:] = z.max() + 400.0
    dem = make_dem(z, 30.0)
    src = np.array([centre(dem, 12, 8), centre(dem, 45, 12)])
    ref = cost_distance(dem, src)
    calls = []
    real = routes._dijkstra

    def counted(*args):
        calls.append(real(*args))
        return calls[-1]

    monkeypatch.setattr(routes, "_ROOM", 1)
    monkeypatch.setattr(routes, "_dijkstra", counted)
    small = cost_distance(dem, src)
    assert calls.count(1) >= 5 and calls.count(2) >= 1 and calls[-1] == 0  # both grew
    assert np.array_equal(small.hours, ref.hours)
    for rc in [(5, 55), (55, 55), (30, 30)]:
        assert small.path(centre(dem, *rc)).equals(ref.path(centre(dem, *rc)))


def test_long_moves_do_not_jump_a_one_cell_wall():
    """A wall one cell wide, without data except a one-cell gap: even the three-cell moves
    must pass through the gap."""
    n = 61
    z = np.zeros((n, n))
    z[:, 30] = np.nan
    z[10, 30] = 0.0  # the gap
    dem = make_dem(z)
    start, goal = centre(dem, 40, 20), centre(dem, 40, 40)
    cd = cost_distance(dem, [start])
    via = math.hypot(30 - 20, 10 - 40) * 2 * 10 / 1000  # to the gap and back down: 2 legs
    assert cd.hours[40, 40] == pytest.approx(via / FLAT, rel=0.02)
    assert cd.hours[40, 40] >= via / FLAT * (1 - 1e-9)
    path = cd.path(goal)
    gap_cell = shapely.Point(centre(dem, 10, 30)).buffer(5.01, cap_style="square")
    assert path.intersects(gap_cell)


# ------------------------------------------------------------------------------- routes


def test_ridge_forces_a_detour_through_the_pass():
    n, cell = 201, 10.0
    cols = np.arange(n)
    # A 300 m ridge (slopes of 150 %) along column 100, with a flat pass at rows 20–30.
    ridge = np.clip(300 - 15 * np.abs(cols - 100), 0, None).astype(float)
    z = np.tile(ridge, (n, 1))
    z[20:31, 80:121] = 0.0
    dem = make_dem(z, cell)
    o, t = centre(dem, 150, 40), centre(dem, 150, 160)
    routes = walking_routes(dem, points([o], ["west"]), points([t], ["east"]))
    assert len(routes) == 1 and routes.loc[0, "origin"] == "west"
    line = routes.geometry.iloc[0]
    pass_box = shapely.box(*centre(dem, 31, 80), *centre(dem, 19, 121))
    assert line.intersects(pass_box)
    assert routes.loc[0, "climb_m"] == pytest.approx(0.0, abs=1e-6)
    # By hand: the shortest way on flat ground hugs the ridge's corners at the pass, the
    # corners between cells (30, 80)/(31, 81) and (30, 120)/(31, 119).
    corner = lambda row, col: np.array(dem.transform @ (col, row))  # noqa: E731
    p1, p2 = corner(31, 81), corner(31, 119)
    legs_km = (np.hypot(*(p1 - o)) + np.hypot(*(p2 - p1)) + np.hypot(*(t - p2))) / 1000
    assert routes.loc[0, "hours"] == pytest.approx(legs_km / FLAT, rel=0.02)
    assert routes.loc[0, "hours"] >= legs_km / FLAT * (1 - 1e-9)
    # Crossing the ridge directly would take far longer than the detour.
    direct = 0.6 / FLAT + 2 * 0.2 / speed(1.5)
    assert routes.loc[0, "hours"] < direct / 2


def _disc_detour_km(half_km: float, radius_km: float) -> float:
    """Shortest way between two points ``half_km`` either side of a disc's centre, around it:
    two tangents and the arc between them."""
    tangent = math.sqrt(half_km ** 2 - radius_km ** 2)
    arc = radius_km * (math.pi - 2 * math.acos(radius_km / half_km))
    return 2 * tangent + arc


def test_visible_penalty_keeps_the_route_out_of_a_posts_view():
    n, cell = 241, 25.0
    dem = make_dem(np.zeros((n, n)), cell)
    o, t = centre(dem, 120, 40), centre(dem, 120, 200)  # 4 km apart
    post = gpd.GeoDataFrame({"range_km": [1.0], "height_m": [10.0]},
                            geometry=[shapely.Point(centre(dem, 120, 120))], crs=UTM38)
    plain = walking_routes(dem, points([o]), points([t]))
    seen = walking_routes(dem, points([o]), points([t]), posts=post, visible_penalty=3)
    # Without a penalty: the straight line; 2 km of it in view when the post is known.
    assert plain.loc[0, "hours"] == pytest.approx(4.0 / FLAT, rel=1e-6)
    assert np.isnan(plain.loc[0, "exposed_km"])
    # With it: around the 1 km disc the post sees on flat ground (tangents + arc, 4.51 km).
    detour = _disc_detour_km(2.0, 1.0)
    assert seen.loc[0, "hours"] == pytest.approx(detour / FLAT, rel=0.03)
    assert seen.loc[0, "walk_hours"] == pytest.approx(seen.loc[0, "hours"], rel=1e-9)
    assert seen.loc[0, "exposed_km"] == pytest.approx(0.0, abs=0.05)
    assert not seen.geometry.iloc[0].intersects(shapely.Point(centre(dem, 120, 120)).buffer(900))
    # Straight through would cost 2 km × 3 + 2 km: the detour wins.
    assert seen.loc[0, "hours"] < 8.0 / FLAT


def test_visible_mask_penalty_is_a_time_multiplier():
    n = 101
    dem = make_dem(np.zeros((n, n)))
    vis = np.ones((n, n), bool)  # everything seen: no way round it
    o, t = centre(dem, 50, 10), centre(dem, 50, 90)
    r = walking_routes(dem, points([o]), points([t]), visible=vis, visible_penalty=2.5)
    assert r.loc[0, "hours"] == pytest.approx(2.5 * 0.8 / FLAT, rel=1e-9)
    assert r.loc[0, "walk_hours"] == pytest.approx(0.8 / FLAT, rel=1e-9)
    assert r.loc[0, "exposed_km"] == pytest.approx(r.loc[0, "km"], rel=1e-9)


def test_routes_table_pairs_ids_and_geodesic_km():
    n = 81
    dem = make_dem(np.zeros((n, n)), 20.0)
    o = points([centre(dem, 10, 10), centre(dem, 70, 10)], ["a", "b"])
    t = points([centre(dem, 10, 70), centre(dem, 40, 40), centre(dem, 70, 70)],
               ["x", "y", "z"])
    r = walking_routes(dem, o, t)
    assert list(zip(r.origin, r.target)) == [(a, b) for a in "ab" for b in "xyz"]
    np.testing.assert_allclose(r["km"], geodesic_length_km(r.geometry.values, r.crs))
    # Geodesic km differ from projected metres only by the UTM scale (< 0.1 % here).
    np.testing.assert_allclose(r["km"], r.geometry.length / 1000, rtol=1e-3)
    assert r.loc[0, "hours"] == pytest.approx(1.2 / FLAT, rel=1e-9)  # a→x: 60 cells × 20 m
    # Each line runs from its origin's cell centre to its target's.
    assert shapely.Point(r.geometry.iloc[0].coords[0]).distance(o.geometry.iloc[0]) < 1e-6
    assert shapely.Point(r.geometry.iloc[0].coords[-1]).distance(t.geometry.iloc[0]) < 1e-6
    # zip: the i-th origin to the i-th target.
    z = walking_routes(dem, o, t.iloc[[0, 2]], pairs="zip")
    assert list(zip(z.origin, z.target)) == [("a", "x"), ("b", "z")]
    np.testing.assert_allclose(z["hours"], [1.2 / FLAT, 1.2 / FLAT], rtol=1e-9)


def test_backward_search_gives_the_same_routes_as_forward():
    rng = np.random.default_rng(3)
    z = np.cumsum(np.cumsum(rng.normal(0, 2, (60, 60)), axis=0), axis=1)
    dem = make_dem(z, 30.0)
    one = points([centre(dem, 10, 10)], ["o"])
    many = points([centre(dem, 50, 50), centre(dem, 10, 50)], ["t1", "t2"])
    fwd = walking_routes(dem, one, many)             # one origin: a forward search
    back = walking_routes(dem, many, one)            # one target: a backward search
    rev = cost_distance(dem, [centre(dem, 10, 10)], reverse=True).hours
    np.testing.assert_allclose(back["hours"], [rev[50, 50], rev[10, 50]], rtol=1e-9)
    # Uphill one way is downhill the other: on rough ground the two directions differ.
    assert not np.allclose(fwd["hours"], back["hours"], rtol=1e-3)


def test_bad_inputs_raise_input_errors():
    dem = make_dem(np.zeros((21, 21)))
    inside = points([centre(dem, 10, 10)])
    outside = points([[X0 - 1000, Y0 - 1000]])
    with pytest.raises(InputError, match="outside the DEM"):
        walking_routes(dem, inside, outside)
    holes = make_dem(np.where(np.eye(21, dtype=bool), np.nan, 0.0))
    with pytest.raises(InputError, match="without data"):
        walking_routes(holes, points([centre(dem, 5, 5)]), inside)
    with pytest.raises(InputError, match="needs posts"):
        walking_routes(dem, inside, inside, visible_penalty=3)
    with pytest.raises(InputError, match="≥ 1"):
        walking_routes(dem, inside, inside, visible=np.ones((21, 21), bool), visible_penalty=0.5)
    with pytest.raises(InputError, match="zip"):
        walking_routes(dem, inside, points([centre(dem, 1, 1), centre(dem, 2, 2)]), pairs="zip")
    lonlat = Dem(np.zeros((21, 21), np.float32), Affine(0.001, 0, 44, 0, -0.001, 35), 4326)
    with pytest.raises(InputError, match="degrees"):
        cost_distance(lonlat, [[44.01, 34.99]])


def test_unreachable_target_gives_nan_and_a_warning():
    z = np.zeros((41, 41))
    z[:, 20] = np.nan  # a wall of nodata, no gap
    dem = make_dem(z)
    with pytest.warns(UserWarning, match="cannot be walked"):
        r = walking_routes(dem, points([centre(dem, 20, 5)]), points([centre(dem, 20, 35)]))
    assert np.isnan(r.loc[0, "hours"]) and r.geometry.iloc[0].is_empty


# ------------------------------------------------------------------------------- corridors

CELL = 200.0
# DEM: 60 km × 104 km around the strips, its columns shifted a quarter cell so that no zone
# edge or seam runs along a cell edge. A's last cells are centred 150 m inside A, B's first
# 50 m inside B: every crossing between them measures 20.2 km east-west.
DEM_X0, DEM_Y0 = X0 - 10e3 - 50, Y0 - 2e3
NX, NY = 300, 520
XC = (np.arange(NX) + 0.5) * CELL + DEM_X0   # cell-centre eastings


def strips_analysis(strips, strips_area, posts=None):
    return gapmap.analyze(strips, gapmap.parse_side("krg=peshmerga"),
                          gapmap.parse_side("federal=isf"), posts=posts, study_area=strips_area)


def test_corridor_terrain_on_a_tilted_plane(strips, strips_area):
    res = strips_analysis(strips, strips_area)
    assert len(res.corridors) == 1  # the whole 100 km seam
    g = 0.05  # z rises 5 m per 100 m towards side B
    dem = make_dem(np.tile((XC - X0) * g, (NY, 1)), CELL, DEM_X0, DEM_Y0)
    t = corridor_terrain(res, dem)
    assert list(t.columns) == ["slope_mean_deg", "tri_mean_m", "crossing_hours"]
    assert t.index.name == "corridor_id" and list(t.index) == ["C1"]
    assert t.loc["C1", "slope_mean_deg"] == pytest.approx(math.degrees(math.atan(g)), abs=1e-4)
    # Riley TRI of a plane: six of the eight neighbours differ by g·cell → g·cell·√6.
    assert t.loc["C1", "tri_mean_m"] == pytest.approx(g * CELL * math.sqrt(6), rel=1e-5)
    # A's edge cell centre (150 m inside A) to B's (50 m inside B): 20.2 km at 5 % uphill.
    assert t.loc["C1", "crossing_hours"] == pytest.approx(20.2 / speed(g), rel=1e-9)
    # Tilted the other way the walk from A to B is downhill at 5 %: Tobler's fastest, 6 km/h.
    down = make_dem(np.tile(-(XC - X0) * g, (NY, 1)), CELL, DEM_X0, DEM_Y0)
    assert corridor_terrain(res, down).loc["C1", "crossing_hours"] == pytest.approx(
        20.2 / 6.0, rel=1e-9)


def test_crossing_goes_through_its_own_corridor(strips, strips_area):
    """A ridge along the seam with a pass in the north; a post covers the seam's middle, so the
    seam splits into a northern corridor (holding the pass) and a southern one (all ridge)."""
    post = gpd.GeoDataFrame({"range_km": [5.0]}, geometry=[shapely.Point(X0 + 20e3, Y0 + 50e3)],
                            crs=UTM38)
    res = strips_analysis(strips, strips_area, posts=post)
    assert len(res.corridors) == 2
    north_id = res.corridors.loc[res.corridors.geometry.centroid.y.idxmax(), "corridor_id"]
    south_id = res.corridors.loc[res.corridors.geometry.centroid.y.idxmin(), "corridor_id"]
    # The seam x = X0 + 20 km runs through the cells centred at X0 + 20.05 km, which carry
    # the crest. Ridge: 300 m high, 2 km each side: 15 %.
    crest = X0 + 20e3 + 50
    ridge = np.clip(300 * (1 - np.abs(XC - crest) / 2000), 0, None)
    z = np.tile(ridge, (NY, 1))
    rows_y = DEM_Y0 + (NY - np.arange(NY) - 0.5) * CELL   # cell-centre northings
    z[(rows_y > Y0 + 80e3) & (rows_y < Y0 + 82e3)] = 0.0    # the pass
    dem = make_dem(z, CELL, DEM_X0, DEM_Y0)
    t = corridor_terrain(res, dem)
    # North: straight through the pass on flat ground, 20.2 km.
    assert t.loc[north_id, "crossing_hours"] == pytest.approx(20.2 / FLAT, rel=1e-9)
    # South: over the ridge, 2 km up at 15 %, 2 km down at 15 %, 16.2 km flat.
    by_hand = 16.2 / FLAT + 2 / speed(0.15) + 2 / speed(-0.15)
    assert t.loc[south_id, "crossing_hours"] == pytest.approx(by_hand, rel=1e-9)
    assert t.loc[south_id, "slope_mean_deg"] == pytest.approx(0.0, abs=1e-9)  # on the crest
    assert t.loc[north_id, "slope_mean_deg"] > 0  # the pass walls are steep
    # The routes: the northern one runs through the pass, the southern one stays south.
    routes = crossing_routes(res, dem).set_index("corridor_id")
    assert routes.loc[north_id, "geometry"].intersects(
        shapely.box(X0 + 19e3, Y0 + 80e3, X0 + 21e3, Y0 + 82e3))
    assert routes.loc[south_id, "geometry"].bounds[3] < Y0 + 45.5e3  # corridor ends at 45 km
    assert routes.loc[south_id, "km"] == pytest.approx(20.2, rel=1e-3)
    np.testing.assert_allclose(routes["crossing_hours"], t.loc[routes.index, "crossing_hours"])


def _ridge_with_pass() -> Dem:
    """A 300 m ridge along the seam (15 % each side) with a flat pass 80–82 km north."""
    crest = X0 + 20e3 + 50
    z = np.tile(np.clip(300 * (1 - np.abs(XC - crest) / 2000), 0, None), (NY, 1))
    rows_y = DEM_Y0 + (NY - np.arange(NY) - 0.5) * CELL
    z[(rows_y > Y0 + 80e3) & (rows_y < Y0 + 82e3)] = 0.0
    return make_dem(z, CELL, DEM_X0, DEM_Y0)


@pytest.mark.parametrize("window_km", [None, 12.0])
def test_per_corridor_windows_give_the_whole_windows_crossings(strips, strips_area,
                                                               window_km, monkeypatch):
    """Each corridor searched on its own window (grown to 6 km/h × its crossing time) gives
    the crossing times and routes of one search over the window of all corridors. With
    12 km windows a crossing (20.2 km, 4 h: 24 km at 6 km/h) may leave them: they must grow."""
    import gapmap.routes as routes_mod

    post = gpd.GeoDataFrame({"range_km": [5.0]}, geometry=[shapely.Point(X0 + 20e3, Y0 + 50e3)],
                            crs=UTM38)
    res = strips_analysis(strips, strips_area, posts=post)
    assert len(res.corridors) == 2
    dem = _ridge_with_pass()
    whole, whole_routes, _ = routes_mod._crossing(res, dem, visible_penalty=None,
                                                  window_km=window_km, per_corridor=False)
    shapes = []
    real_run = routes_mod._run
    monkeypatch.setattr(routes_mod, "_run",
                        lambda eng, *a, **k: shapes.append(eng.shape) or real_run(eng, *a, **k))
    per, per_routes, _ = routes_mod._crossing(res, dem, visible_penalty=None,
                                              window_km=window_km)
    assert np.isfinite(whole["crossing_hours"]).all()
    pd.testing.assert_frame_equal(per, whole, check_exact=False, rtol=1e-12)
    assert all(a.equals_exact(b, 1e-6) for a, b in zip(per_routes, whole_routes))
    # the per-corridor grids are smaller than the whole window
    full = dem.window(tuple(shapely.total_bounds(shapely.buffer(
        res.corridors.geometry.values, (window_km or 25.0) * 1000.0)))).shape
    assert min(r * c for r, c in shapes) < full[0] * full[1]
    if window_km is not None:
        assert len(shapes) > 4  # at least one window grew and was searched again


def test_crossing_search_refused_when_its_window_does_not_fit(strips, strips_area):
    res = strips_analysis(strips, strips_area)
    dem = make_dem(np.zeros((NY, NX)), CELL, DEM_X0, DEM_Y0)
    with pytest.raises(InputError) as err:
        corridor_terrain(res, dem, max_memory_gb=0.3)
    msg = str(err.value)
    assert "--max-memory-gb" in msg and "0.30 GB allowed" in msg
    # the formula's figure: 400 MB + 45 bytes a cell of the window (all 520 × 300 cells here)
    rows, cols = dem.shape
    need = routes_mod_memory(rows, cols)
    assert f"{need / 1e9:.2f} GB" in msg


def routes_mod_memory(rows: int, cols: int) -> float:
    from gapmap.routes import crossing_memory_bytes

    assert crossing_memory_bytes(rows, cols) == pytest.approx(
        400 * 2**20 + 45.0 * (rows + 6) * (cols + 6))
    return crossing_memory_bytes(rows, cols)


def test_analyze_with_a_dem_file_adds_terrain_columns(strips, strips_area, tmp_path):
    g = 0.05
    z = np.tile((XC - X0) * g, (NY, 1)).astype(np.float32)
    path = tmp_path / "tilted.tif"
    dem = make_dem(z, CELL, DEM_X0, DEM_Y0)
    with rasterio.open(path, "w", driver="GTiff", height=NY, width=NX, count=1,
                       dtype="float32", crs="EPSG:32638", transform=dem.transform) as dst:
        dst.write(z, 1)
    res = gapmap.analyze(strips, gapmap.parse_side("krg=peshmerga"),
                         gapmap.parse_side("federal=isf"), study_area=strips_area, dem=path)
    row = res.corridors.iloc[0]
    assert row["crossing_hours"] == pytest.approx(20.2 / speed(g), rel=1e-9)
    assert row["slope_mean_deg"] == pytest.approx(math.degrees(math.atan(g)), abs=1e-4)


def test_no_corridors_gives_an_empty_table(strips, strips_area):
    res = strips_analysis(strips, strips_area)
    empty = dataclasses.replace(res, corridors=res.corridors.iloc[:0])
    t = corridor_terrain(empty, make_dem(np.zeros((10, 10)), CELL, DEM_X0, DEM_Y0))
    assert len(t) == 0 and list(t.columns) == ["slope_mean_deg", "tri_mean_m", "crossing_hours"]


# ------------------------------------------------------------------------------- CLI


def test_cli_routes_writes_lonlat_geojson(tmp_path):
    from gapmap.cli import main

    n, cell = 101, 20.0
    z = np.zeros((n, n), np.float32)
    dem = make_dem(z, cell)
    with rasterio.open(tmp_path / "dem.tif", "w", driver="GTiff", height=n, width=n, count=1,
                       dtype="float32", crs="EPSG:32638", transform=dem.transform) as dst:
        dst.write(z, 1)
    points([centre(dem, 50, 10)], ["camp"]).to_file(tmp_path / "from.geojson")
    points([centre(dem, 50, 90)], ["town"]).to_crs(4326).to_file(tmp_path / "to.geojson")
    out = tmp_path / "out" / "routes.geojson"
    run = CliRunner().invoke(main, ["routes", "--dem", str(tmp_path / "dem.tif"),
                                    "--from", str(tmp_path / "from.geojson"),
                                    "--to", str(tmp_path / "to.geojson"), "--out", str(out)])
    assert run.exit_code == 0, run.output
    assert "camp" in run.output and "town" in run.output
    r = gpd.read_file(out)
    assert r.crs.to_epsg() == 4326 and len(r) == 1
    assert r.loc[0, "hours"] == pytest.approx(1.6 / FLAT, rel=1e-6)
    assert r.loc[0, "km"] == pytest.approx(1.6, rel=1e-3)
    # A point off the DEM: one line on stderr, exit code 2, nothing written.
    points([[X0 - 5000, Y0]], ["far"]).to_file(tmp_path / "far.geojson")
    bad = CliRunner().invoke(main, ["routes", "--dem", str(tmp_path / "dem.tif"),
                                    "--from", str(tmp_path / "far.geojson"),
                                    "--to", str(tmp_path / "to.geojson"),
                                    "--out", str(tmp_path / "bad.geojson")])
    assert bad.exit_code == 2
    assert "outside the DEM" in bad.output
    assert not (tmp_path / "bad.geojson").exists()
    helptext = CliRunner().invoke(main, ["routes", "--help"])
    assert helptext.exit_code == 0 and "--visible-penalty" in helptext.output


def test_corridor_crossings_is_one_search_giving_fields_and_routes(strips, strips_area,
                                                                    tmp_path, monkeypatch):
    import gapmap.routes as routes_mod

    res = strips_analysis(strips, strips_area)
    g = 0.05
    dem = make_dem(np.tile((XC - X0) * g, (NY, 1)), CELL, DEM_X0, DEM_Y0)
    path = dem.write(tmp_path / "dem.tif")
    # the two wrappers on the file: the fields of the old corridor_terrain, the old routes
    fields, routes = corridor_terrain(res, path), crossing_routes(res, path)
    searches = []
    real_run = routes_mod._run
    monkeypatch.setattr(routes_mod, "_run",
                        lambda *a, **k: searches.append(1) or real_run(*a, **k))
    monkeypatch.setattr(rasterio, "open", lambda *a, **k: pytest.fail("DEM file re-read"))
    cr = routes_mod.corridor_crossings(res, dem)
    assert len(searches) == 2  # one forward from A's edges, one backward from B's
    assert isinstance(cr, routes_mod.Crossings)
    assert cr.fields.loc["C1", "crossing_hours"] == pytest.approx(20.2 / speed(g), rel=1e-9)
    assert cr.routes.loc[0, "km"] == pytest.approx(20.2, rel=1e-3)
    # the Dem (cut to the corridors' window) gives exactly what its file gives
    assert cr.fields.equals(fields)
    assert list(cr.routes.columns) == list(routes.columns)
    assert cr.routes.drop(columns="geometry").equals(routes.drop(columns="geometry"))
    assert all(a.equals_exact(b, 0.0) for a, b in zip(cr.routes.geometry, routes.geometry))


def test_route_from_a_point_to_itself_takes_zero_hours():
    dem = make_dem(np.zeros((21, 21)))
    p = points([centre(dem, 10, 10)], ["here"])
    r = walking_routes(dem, p, p)
    assert r.loc[0, "hours"] == 0.0 and r.loc[0, "walk_hours"] == 0.0
    assert r.loc[0, "km"] == 0.0 and r.loc[0, "climb_m"] == 0.0
    assert r.geometry[0].length == 0.0 and not r.geometry[0].is_empty


def test_routes_refuse_a_lonlat_dem_and_a_tiny_one():
    tiny = make_dem(np.zeros((2, 2)))
    with pytest.raises(InputError, match="2×2 cells is too small"):
        walking_routes(tiny, points([centre(tiny, 0, 0)]), points([centre(tiny, 1, 1)]))
