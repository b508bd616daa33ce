"""The seam's building blocks at their edge cases, by hand.

Written against the mutants that survived the mutation run of docs/mutation.md: each test
pins a convention or a figure that a changed operator or constant would move.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from gapmap.frontier import (SideDistance, boundary_samples, clip_to_discs, seam_ridges,
                             segment_pieces)


def test_an_empty_interval_is_always_reported_as_1_0():
    # A zero-length segment outside its disc, a tangent, a segment ending on the circle from
    # outside and one starting on it going out: none has length inside the disc.
    seg = np.array([[7.0, 0.0, 7.0, 0.0],
                    [5.05, 0.0, 5.05, 0.0],
                    [-10.0, 5.0, 10.0, 5.0],
                    [-10.0, 0.0, -5.0, 0.0],
                    [5.0, 0.0, 10.0, 0.0]])
    t0, t1 = clip_to_discs(seg, np.zeros((5, 2)), np.full(5, 5.0))
    assert t0.tolist() == [1.0] * 5 and t1.tolist() == [0.0] * 5


def test_a_point_on_its_circle_is_inside():
    # Reach is "within": a zero-length segment at exactly the radius counts as covered.
    t0, t1 = clip_to_discs(np.array([[3.0, 4.0, 3.0, 4.0]]), np.zeros((1, 2)), np.array([5.0]))
    assert (t0.tolist(), t1.tolist()) == ([0.0], [1.0])


def test_clip_parameters_of_a_chord_off_centre_and_off_origin():
    # Disc of radius 5 at (100, 200); the segment from (90, 203) to (120, 203) crosses the
    # circle at x = 100 ± 4, i.e. t = 6/30 and 14/30.
    t0, t1 = clip_to_discs(np.array([[90.0, 203.0, 120.0, 203.0]]), np.array([[100.0, 200.0]]),
                           np.array([5.0]))
    assert t0[0] == pytest.approx(6 / 30, abs=1e-12) and t1[0] == pytest.approx(14 / 30,
                                                                                abs=1e-12)
    # Reversed, the same chord is [1 - 14/30, 1 - 6/30].
    t0, t1 = clip_to_discs(np.array([[120.0, 203.0, 90.0, 203.0]]), np.array([[100.0, 200.0]]),
                           np.array([5.0]))
    assert t0[0] == pytest.approx(16 / 30, abs=1e-12) and t1[0] == pytest.approx(24 / 30,
                                                                                abs=1e-12)


def test_segment_pieces_end_exactly_at_the_segments_ends():
    # 0.2 + (0.9 - 0.2) is not 0.9 in floating point: t = 1 must give the end itself.
    seg = np.array([[0.2, 0.2, 0.9, 0.9]])
    out = segment_pieces(seg, np.array([0.0]), np.array([1.0]))
    assert out.tolist() == seg.tolist()
    out = segment_pieces(seg, np.array([1.0]), np.array([1.0]))
    assert out.tolist() == [[0.9, 0.9, 0.9, 0.9]]
    out = segment_pieces(np.array([[0.0, 0.0, 8.0, -4.0]]), np.array([0.25]), np.array([0.75]))
    assert out.tolist() == [[2.0, -1.0, 6.0, -3.0]]


def test_boundary_samples_of_a_polygon_with_a_hole_and_two_parts():
    outer = shapely.box(0, 0, 20, 20).difference(shapely.box(5, 5, 15, 15))
    multi = shapely.MultiPolygon([outer, shapely.box(30, 0, 40, 10)])
    xy = boundary_samples(np.array([multi]), 5.0)
    # Outer ring 80 / 5 = 16 steps, hole 40 / 5 = 8, the square 40 / 5 = 8: each + closing.
    assert len(xy) == 17 + 9 + 9
    assert (np.abs(xy - [10.0, 5.0]).sum(axis=1) < 1e-9).any()  # on the hole


def test_side_distance_ids_inside_and_outside_and_zero_inside():
    d = SideDistance(np.array([shapely.box(0, 0, 10, 10), shapely.box(20, 0, 30, 10)]),
                     np.array([11, 22]))
    dist, zone = d(np.array([[25.0, 5.0], [5.0, 5.0], [16.0, 5.0], [14.0, 5.0], [25, 13]]))
    assert dist.tolist() == pytest.approx([0.0, 0.0, 4.0, 4.0, 3.0])
    assert zone.tolist() == [22, 11, 22, 11, 22]
    empty_query = d(np.empty((0, 2)))
    assert empty_query[0].shape == (0,) and empty_query[1].shape == (0,)


def test_ridges_when_side_a_lies_east_and_zones_are_many():
    # A east of B, A in two zones (ids 4 and 6, north and south): generators are still A's
    # samples, and each ridge names the zone its A generator lies on.
    a = np.array([shapely.box(30, 50, 40, 100), shapely.box(30, 0, 40, 50)])
    b = np.array([shapely.box(0, 0, 10, 100)])
    r = seam_ridges(a, np.array([4, 6]), b, np.array([9]), sample_m=1.0, max_dist_m=50.0)
    assert (r.gen[:, 0] >= 30 - 1e-6).all()
    beside = (np.minimum(r.seg[:, 1], r.seg[:, 3]) > 5) & (np.maximum(r.seg[:, 1], r.seg[:, 3])
                                                           < 95)
    assert np.abs(r.seg[beside][:, [0, 2]] - 20).max() < 1e-2
    north = beside & (r.gen[:, 1] > 51)
    south = beside & (r.gen[:, 1] < 49)
    assert set(r.zone_a[north].tolist()) == {4} and set(r.zone_a[south].tolist()) == {6}
    assert set(r.zone_b.tolist()) == {9}


def test_samples_on_the_shared_border_generate_no_ridges():
    # A and B touch along x = 10 from y = 0 to 10; B then steps back. Without the border's
    # samples no ridge runs along it; with them, Voronoi ridges would lie on it.
    a = shapely.box(0, 0, 10, 20)
    b = shapely.Polygon([(10, 0), (30, 0), (30, 20), (20, 20), (20, 10), (10, 10)])
    shared = a.boundary.intersection(b.boundary)
    r = seam_ridges(np.array([a]), np.array([0]), np.array([b]), np.array([1]), sample_m=0.5,
                    max_dist_m=20.0, shared=shared)
    mid = (r.seg[:, :2] + r.seg[:, 2:]) / 2
    on_border = (np.abs(mid[:, 0] - 10) < 0.2) & (mid[:, 1] > 0.5) & (mid[:, 1] < 9.5)
    assert not on_border.any()
    # Above the corner's bisector (which ends at (15, 15)) the seam is the midline x = 15.
    up = (mid[:, 1] > 16) & (mid[:, 1] < 19)
    assert up.any() and np.abs(mid[up, 0] - 15).max() < 0.05


def test_keep_near_drops_samples_far_from_the_study_area():
    a, b = shapely.box(0, 0, 10, 1000), shapely.box(30, 0, 40, 1000)
    full = seam_ridges(np.array([a]), np.array([0]), np.array([b]), np.array([1]),
                       sample_m=1.0, max_dist_m=20.0)
    near = seam_ridges(np.array([a]), np.array([0]), np.array([b]), np.array([1]),
                       sample_m=1.0, max_dist_m=20.0, keep_near=shapely.box(15, 400, 25, 500))
    # Generators within max_dist_m (20) of the area's box only: y in [380, 520].
    assert near.gen[:, 1].min() >= 380 - 1e-6 and near.gen[:, 1].max() <= 520 + 1e-6
    assert near.gen[:, 1].min() <= 385 and near.gen[:, 1].max() >= 515
    assert len(full) > 3 * len(near)


def test_ridges_where_the_shared_border_samples_do_not_coincide():
    # A and B touch along x = 10 from y = 0.3 to 10.3, and their samples there fall at
    # different places (A's every 0.5 from y = 0, B's every 0.5 from y = 0.3): only the
    # shared border, not the dropping of coincident samples, keeps them out of the diagram.
    a = shapely.box(0, 0, 10, 20)
    b = shapely.Polygon([(10, 0.3), (30, 0.3), (30, 20), (20, 20), (20, 10.3), (10, 10.3)])
    shared = a.boundary.intersection(b.boundary)
    assert shared.length == pytest.approx(10.0)
    r = seam_ridges(np.array([a]), np.array([0]), np.array([b]), np.array([1]), sample_m=0.5,
                    max_dist_m=20.0, shared=shared)
    on_border = (np.abs(r.gen[:, 0] - 10) < 1e-9) & (r.gen[:, 1] > 0.5) & (r.gen[:, 1] < 10)
    assert len(r) > 0 and not on_border.any()


def test_ridges_of_three_samples():
    # Sampled every 1 km, each triangle is its three corners; only two of A's corners and one
    # of B's lie within 2 × 10 m of the other side's box: three samples, A (0, 0), A (0, 1) and
    # B (10, 0). Their Voronoi vertex is (5, 0.5); the ridge of A (0, 0) and B runs from it
    # down x = 5 (away from the samples' centroid) for 4 × 10 m + 0.5 m.
    a = shapely.Polygon([(0, 0), (0, 1), (-100, 0)])
    b = shapely.Polygon([(10, 0), (110, 0), (110, 5)])
    r = seam_ridges(np.array([a]), np.array([3]), np.array([b]), np.array([7]), sample_m=1000.0,
                    max_dist_m=10.0)
    assert len(r) == 2
    assert sorted(map(tuple, r.gen.tolist())) == [(0.0, 0.0), (0.0, 1.0)]
    low = r.seg[r.gen[:, 1] == 0.0][0]
    assert low == pytest.approx([5.0, 0.5, 5.0, -40.0], abs=1e-2)
    assert r.zone_a.tolist() == [3, 3] and r.zone_b.tolist() == [7, 7]


def _covered_length(r, radius: float) -> float:
    t0, t1 = clip_to_discs(r.seg, r.gen, np.full(len(r), radius))
    ok = t0 < t1
    piece = segment_pieces(r.seg[ok], t0[ok], t1[ok])
    return float(np.hypot(piece[:, 2] - piece[:, 0], piece[:, 3] - piece[:, 1]).sum())


def test_ridges_from_a_tile_cache_are_the_seam_and_are_kept():
    # Strips 4 km apart, 100 km long, half width 5 km: the seam is x = 12 km over the strips'
    # 100 km and, beyond each end, on until 5 km from the corners: 2 √(5² − 2²) km more.
    from gapmap.frontier import TileCache, seam_samples, seam_tile_cache, seam_tiles, \
        series_tile_m

    a, b = shapely.box(0, 0, 10e3, 100e3), shapely.box(14e3, 0, 30e3, 100e3)
    args = (np.array([a]), np.array([0]), np.array([b]), np.array([1]))
    kw = dict(sample_m=100.0, max_dist_m=5e3)
    expected = 100e3 + 2 * np.sqrt(5e3**2 - 2e3**2)
    with seam_tile_cache(TileCache()) as cache:
        r = seam_ridges(*args, **kw)
    tiles = seam_tiles(*seam_samples(*args, **kw), max_dist_m=5e3, tile_m=series_tile_m(5e3))
    assert cache.computed == [t.key for t in tiles] and len(tiles) > 1
    assert _covered_length(r, 5e3) == pytest.approx(expected, abs=0.01)
    assert _covered_length(seam_ridges(*args, **kw), 5e3) == pytest.approx(expected, abs=0.01)
    # Pieces of x = 12 km only (the cut points lie on the bisectors).
    assert np.abs(r.seg[:, [0, 2]] - 12e3).max() < 0.01
    # The same seam again: every tile is known, none is computed.
    with seam_tile_cache(cache):
        again = seam_ridges(*args, **kw)
    assert len(cache.computed) == len(tiles)
    assert np.array_equal(again.seg, r.seg)


def test_infinite_ridges_are_extended_away_from_the_centroid():
    # Three samples, 1 km east of the origin: A1 (1000, 0), B (1002, 0), A2 (1001, -100).
    # Their one Voronoi vertex is c = (1001, -49.995) (1 + y² = (y + 100)²); both mixed ridges
    # are infinite and end 4 × 20 m + |c - m| beyond c (m the midpoint of their samples),
    # away from the centroid (1001, -33.3).
    from gapmap.frontier import _mixed_ridges

    q = np.array([[1000.0, 0.0], [1002.0, 0.0], [1001.0, -100.0]])
    seg, rp = _mixed_ridges(q, np.array([False, True, False]), 20.0)
    c = np.array([1001.0, -49.995])
    by_a = {int(i): s for i, s in zip(rp[:, 0], seg)}
    assert sorted(by_a) == [0, 2] and rp[:, 1].tolist() == [1, 1]
    # A1-B: up x = 1001 from c, through m = (1001, 0), to c + (80 + 49.995) ĵ.
    assert by_a[0] == pytest.approx([1001.0, -49.995, 1001.0, 80.0], abs=1e-9)
    # A2-B: from c along the normal of (1, 100) pointing east, 80 + |c - m| long.
    m = np.array([1001.5, -50.0])
    u = np.array([100.0, -1.0]) / np.hypot(100.0, 1.0)
    end = c + u * (80.0 + np.hypot(*(c - m)))
    assert by_a[2] == pytest.approx([*c, *end], abs=1e-9)


def test_a_finite_mixed_ridge_joins_its_two_vertices():
    # A rhombus: A (-1, 0), B (1, 0), A (0, 3), B (0, -3). The Voronoi vertices are the
    # circumcentres (0, ±4/3); the ridge of (-1, 0) and (1, 0) is the segment between them.
    from gapmap.frontier import _mixed_ridges

    q = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, 3.0], [0.0, -3.0]])
    seg, rp = _mixed_ridges(q, np.array([False, True, False, True]), 10.0)
    row = [i for i, p in enumerate(rp.tolist()) if p == [0, 1]]
    assert len(row) == 1
    s = seg[row[0]]
    assert sorted([s[1], s[3]]) == pytest.approx([-4 / 3, 4 / 3], abs=1e-9)
    assert s[[0, 2]] == pytest.approx([0.0, 0.0], abs=1e-9)
    # Three mixed ridges: the finite one and the infinite ones of the hull edges (0, 3)-(1, 0)
    # and (0, -3)-(-1, 0) (the other two hull edges join samples of one side).
    assert len(seg) == 3 and (rp[:, 0] % 2 == 0).all() and (rp[:, 1] % 2 == 1).all()


def test_side_distance_in_the_notch_of_an_l_and_for_one_point():
    # An L (the 10 × 10 square less its north-east 5 × 5 quarter) with id 7, and a 2 × 2 square
    # with id 3 further east. The point (8, 8) lies in the L's bounding box but outside it, 3
    # from its edges x = 5 and y = 5; one point alone is measured too.
    ell = shapely.Polygon([(0, 0), (10, 0), (10, 5), (5, 5), (5, 10), (0, 10)])
    d = SideDistance(np.array([ell, shapely.box(30, 0, 32, 2)], dtype=object),
                     zone_ids=np.array([7, 3]))
    dist, zone = d(np.array([[8.0, 8.0], [2.0, 2.0], [31.0, 5.0], [19.0, 1.0]]))
    assert dist.tolist() == [3.0, 0.0, 3.0, 9.0]
    assert zone.tolist() == [7, 7, 3, 7] and zone.dtype == np.int64
    one_d, one_z = d(np.array([31.0, 1.0]))
    assert one_d.tolist() == [0.0] and one_z.tolist() == [3]
    one_d, one_z = d(np.array([[8.0, 9.0]]))
    assert one_d.tolist() == [3.0] and one_z.tolist() == [7]


def test_side_distance_with_no_zones_or_no_points():
    d = SideDistance(np.array([], dtype=object))
    dist, zone = d(np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert np.isinf(dist).all() and dist.tolist() == [np.inf, np.inf]
    assert zone.tolist() == [-1, -1]
    dist, zone = SideDistance(np.array([shapely.box(0, 0, 1, 1)]))(np.empty((0, 2)))
    assert dist.shape == (0,) and zone.shape == (0,)
    # Without ids a zone is known by its position.
    two = SideDistance(np.array([shapely.box(0, 0, 1, 1), shapely.box(5, 0, 6, 1)]))
    assert two(np.array([[4.5, 0.5], [0.5, 0.5]]))[1].tolist() == [1, 0]


def _samples(a, b, **kw):
    from gapmap.frontier import seam_samples

    kw.setdefault("sample_m", 5.0)
    pts, side, zone = seam_samples(np.array([a]), np.array([7]), np.array([b]), np.array([9]),
                                   **kw)
    return {tuple(p) for p in pts[~side].tolist()}, {tuple(p) for p in pts[side].tolist()}, \
        pts, side, zone


def test_seam_samples_within_twice_the_max_distance_of_the_other_side():
    # Squares 10 wide, 20 apart, sampled every 5 (corners and edge midpoints, 8 each). A
    # sample is kept if within 2 × max_dist of the other side's box: with max_dist 10 only
    # the facing edges (exactly 20 away) are; with 9.99 none, and then there are no samples.
    a, b = shapely.box(0, 0, 10, 10), shapely.box(30, 0, 40, 10)
    sa, sb, pts, side, zone = _samples(a, b, max_dist_m=10.0)
    assert sa == {(10, 0), (10, 5), (10, 10)} and sb == {(30, 0), (30, 5), (30, 10)}
    assert len(pts) == 6 and zone[~side].tolist() == [7] * 3 and zone[side].tolist() == [9] * 3
    assert pts.dtype == float and side.dtype == bool
    sa, sb, pts, side, zone = _samples(a, b, max_dist_m=9.99)
    assert pts.shape == (0, 2) and side.shape == (0,) and zone.shape == (0,)
    assert side.dtype == bool and zone.dtype.kind == "i"
    sa, sb, pts, _, _ = _samples(a, b, max_dist_m=50.0)
    assert len(sa) == 8 and len(sb) == 8 and len(pts) == 16


def test_seam_samples_near_the_study_area_and_off_the_shared_border():
    a, b = shapely.box(0, 0, 10, 10), shapely.box(30, 0, 40, 10)
    # Kept: samples within max_dist (35) of the study area's box (0, 0)-(5, 1): all of A's,
    # and B's but (40, 5) and (40, 10); (40, 0) is exactly 35 away.
    sa, sb, *_ = _samples(a, b, max_dist_m=35.0, keep_near=shapely.box(0, 0, 5, 1))
    assert len(sa) == 8
    assert sb == {(30, 0), (30, 5), (30, 10), (35, 0), (35, 10), (40, 0)}
    # A shared border 4 mm east of A's east edge (within sample_m / 1000 = 5 mm) removes
    # A's samples on that edge; 6 mm east it does not.
    near = shapely.LineString([(10.004, -1), (10.004, 11)])
    sa, sb, *_ = _samples(a, b, max_dist_m=50.0, shared=near)
    assert sa == {(0, 0), (0, 5), (0, 10), (5, 0), (5, 10)} and len(sb) == 8
    far = shapely.LineString([(10.006, -1), (10.006, 11)])
    assert len(_samples(a, b, max_dist_m=50.0, shared=far)[0]) == 8
    assert len(_samples(a, b, max_dist_m=50.0, shared=shapely.LineString())[0]) == 8


def test_seam_samples_drop_points_of_both_sides_and_keep_one_of_repeats():
    # Touching squares share the edge x = 10: its three samples belong to both sides and
    # are dropped; each square's other five samples are kept once (the rings' closing
    # points repeat their first ones).
    a, b = shapely.box(0, 0, 10, 10), shapely.box(10, 0, 20, 10)
    sa, sb, pts, side, zone = _samples(a, b, max_dist_m=50.0)
    assert sa == {(0, 0), (0, 5), (0, 10), (5, 0), (5, 10)}
    assert sb == {(20, 0), (20, 5), (20, 10), (15, 0), (15, 10)}
    assert len(pts) == 10 and len({tuple(p) for p in pts.tolist()}) == 10
    # Samples within half a millimetre of each other are one.
    b2 = shapely.Polygon([(30, 0), (30.0004, 0), (40, 0), (40, 10), (30, 10)])
    _, sb, pts, side, _ = _samples(a, b2, max_dist_m=50.0)
    assert int(side.sum()) == 8 and (30.0004, 0) not in sb


def test_seam_samples_pruned_by_every_rule_at_once():
    a, b = shapely.box(0, 0, 10, 10), shapely.box(30, 0, 40, 10)
    # max_dist 10 keeps the facing edges; a shared border beside the corners (10, 10) and
    # (30, 10) removes those two as well.
    shared = shapely.MultiLineString([[(10.004, 9), (10.004, 11)], [(29.996, 9), (29.996, 11)]])
    sa, sb, *_ = _samples(a, b, max_dist_m=10.0, shared=shared)
    assert sa == {(10, 0), (10, 5)} and sb == {(30, 0), (30, 5)}
    # A study area 10 south of the squares, y in [-20, -10]: of the facing edges only the
    # southern corners are within 10 of it (exactly), one sample a side.
    sa, sb, pts, *_ = _samples(a, b, max_dist_m=10.0, keep_near=shapely.box(0, -20, 40, -10))
    assert sa == {(10, 0)} and sb == {(30, 0)} and len(pts) == 2
    # A study area beside B only: no sample of A is left, so there are none at all.
    sa, sb, pts, *_ = _samples(a, b, max_dist_m=10.0, keep_near=shapely.box(35, 0, 36, 1))
    assert pts.shape == (0, 2)


def test_seam_samples_30_cm_apart_are_two():
    a = shapely.box(0, 0, 10, 10)
    b = shapely.Polygon([(30, 0), (30.3, 0), (40, 0), (40, 10), (30, 10)])
    _, sb, *_ = _samples(a, b, max_dist_m=50.0)
    assert (30, 0) in sb and (30.3, 0) in sb


def test_series_tile_side_and_a_cache_of_its_own_side():
    from gapmap.frontier import TileCache, series_tile_m

    # Three times the max distance, at least 10 km.
    assert series_tile_m(2e3) == 10e3 and series_tile_m(4e3) == 12e3
    assert TileCache().tile_m(5e3) == 15e3
    assert TileCache(tile_m=7000).tile_m(5e3) == 7000.0


def _splitmix_jitter(x: float, y: float) -> tuple[float, float]:
    # The jitter in plain integers modulo 2**64: each coordinate to the millimetre, the pair
    # mixed as kx * C + ky + salt, then splitmix64's finaliser; its top 53 bits as [0, 1).
    m64 = 2**64 - 1
    kx, ky = round(x * 1000.0) & m64, round(y * 1000.0) & m64
    out = []
    for salt in (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F):
        h = (kx * 0xBF58476D1CE4E5B9 + ky + salt) & m64
        h ^= h >> 30
        h = (h * 0xBF58476D1CE4E5B9) & m64
        h ^= h >> 27
        h = (h * 0x94D049BB133111EB) & m64
        h ^= h >> 31
        out.append(((h >> 11) * 2.0**-53 - 0.5) * 1e-3)
    return out[0], out[1]


def test_jitter_is_splitmix64_of_the_millimetre_coordinates():
    # A tile's key hashes its samples, not the jitter its ridges were computed with: tiles
    # kept from an earlier run only join today's exactly if the jitter is the same to the
    # last bit. Any change to it must come with a new _TILE_VERSION; this pins it.
    from gapmap.frontier import _jitter

    pts = np.array([[0.0, 0.0], [1.0, 2.0], [-3.25, 7.5], [456_789.123, -4_321_987.654],
                    [1e7, 1e7], [-0.0004, 0.0004]])
    expected = np.array([_splitmix_jitter(x, y) for x, y in pts.tolist()])
    assert np.array_equal(_jitter(pts), expected)


def test_jitter_is_under_half_a_millimetre_and_the_same_within_a_millimetre():
    from gapmap.frontier import _jitter

    rng = np.random.default_rng(7)
    pts = rng.uniform(-50e3, 50e3, (2000, 2))
    j = _jitter(pts)
    assert np.abs(j).max() < 0.5e-3 and j.dtype == np.float64
    # Centred and spread over the whole ±0.5 mm (not an offset of all points alike).
    assert abs(j.mean()) < 0.02e-3 and j.min() < -0.49e-3 and j.max() > 0.49e-3
    assert len(np.unique(j[:, 0])) == len(pts) and not np.array_equal(j[:, 0], j[:, 1])
    # 1.4999 and 1.5004 are both 1500 mm (but 1501 and 1502 in units of 1/1001 m); 1.5006
    # is 1501 mm. Its own coordinates alone: the same offset in any array.
    near = np.array([[1.4999, 2.0], [1.5004, 2.0], [1.5006, 2.0]])
    jn = _jitter(near)
    assert np.array_equal(jn[0], jn[1]) and not np.array_equal(jn[1], jn[2])
    assert np.array_equal(_jitter(near[2:]), jn[2:])
