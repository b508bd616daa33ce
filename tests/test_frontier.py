"""The seam's building blocks: boundary samples, Voronoi ridges, disc clipping, distances."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from gapmap.frontier import (SideDistance, boundary_samples, clip_to_discs, seam_ridges,
                             segment_pieces)


def test_boundary_samples_keep_vertices_and_spacing():
    square = shapely.box(0, 0, 100, 100)
    xy = boundary_samples(np.array([square]), 10.0)
    assert len(xy) == 41  # 40 steps of 10 around, plus the closing point
    gaps = np.hypot(*np.diff(xy, axis=0).T)
    assert gaps.max() == pytest.approx(10.0) and gaps.min() == pytest.approx(10.0)
    for corner in ((0, 0), (100, 0), (100, 100), (0, 100)):
        assert (np.abs(xy - corner).sum(axis=1) < 1e-9).any()
    assert boundary_samples(np.array([], dtype=object), 10.0).shape == (0, 2)


def test_clip_to_discs_closed_form():
    seg = np.array([[-10.0, 0.0, 10.0, 0.0],   # through the centre: [0.25, 0.75]
                    [-10.0, 3.0, 10.0, 3.0],   # chord at y = 3: x = ±4 → [0.3, 0.7]
                    [0.0, 0.0, 2.0, 0.0],      # wholly inside
                    [6.0, 0.0, 9.0, 0.0],      # wholly outside
                    [1.0, 1.0, 1.0, 1.0]])     # a point inside
    t0, t1 = clip_to_discs(seg, np.zeros((5, 2)), np.full(5, 5.0))
    assert t0.tolist() == pytest.approx([0.25, 0.3, 0.0, 1.0, 0.0])
    assert t1.tolist() == pytest.approx([0.75, 0.7, 1.0, 0.0, 1.0])
    # Tangent: a single point, i.e. an empty interval.
    t0, t1 = clip_to_discs(np.array([[-10.0, 5.0, 10.0, 5.0]]), np.zeros((1, 2)), np.array([5.0]))
    assert t1[0] - t0[0] <= 1e-9
    # Per-segment radius and centre.
    t0, t1 = clip_to_discs(np.array([[0.0, 0.0, 10.0, 0.0]] * 2), np.array([[0.0, 0.0], [10, 0]]),
                           np.array([2.0, 5.0]))
    assert t0.tolist() == pytest.approx([0.0, 0.5]) and t1.tolist() == pytest.approx([0.2, 1.0])


def test_segment_pieces_reuse_exact_ends():
    seg = np.array([[0.1, 0.2, 0.7, 0.9]])
    assert segment_pieces(seg, np.array([0.0]), np.array([1.0])).tolist() == seg.tolist()
    assert segment_pieces(seg, np.array([0.5]), np.array([0.5]))[0, :2].tolist() == \
        pytest.approx([0.4, 0.55])


def test_ridges_of_two_squares_lie_on_the_midline_with_a_on_column_zero():
    a, b = shapely.box(0, 0, 10, 100), shapely.box(30, 0, 40, 100)
    r = seam_ridges(np.array([a]), np.array([7]), np.array([b]), np.array([9]),
                    sample_m=1.0, max_dist_m=50.0)
    assert len(r) > 0 and set(r.zone_a.tolist()) == {7} and set(r.zone_b.tolist()) == {9}
    # Every generator is on A's boundary (x ≤ 10) — the orientation the coverage step needs.
    assert (r.gen[:, 0] <= 10 + 1e-6).all()
    beside = (r.seg[:, 1] > 5) & (r.seg[:, 1] < 95) & (r.seg[:, 3] > 5) & (r.seg[:, 3] < 95)
    assert np.abs(r.seg[beside][:, [0, 2]] - 20).max() < 1e-2
    # Each ridge point beside the squares is 10 from its generator (half the width).
    p = (r.seg[beside][:, :2] + r.seg[beside][:, 2:]) / 2
    assert np.hypot(*(p - r.gen[beside]).T) == pytest.approx(np.full(beside.sum(), 10.0),
                                                             abs=0.1)
    assert len(r.take(beside)) == beside.sum()


def test_samples_too_far_apart_give_no_ridges():
    a, b = shapely.box(0, 0, 10, 10), shapely.box(1000, 0, 1010, 10)
    r = seam_ridges(np.array([a]), np.array([0]), np.array([b]), np.array([1]),
                    sample_m=1.0, max_dist_m=100.0)
    assert len(r) == 0


def test_side_distance_outside_inside_and_nearest_zone():
    d = SideDistance(np.array([shapely.box(0, 0, 10, 10), shapely.box(100, 0, 110, 10)]),
                     np.array([3, 5]))
    dist, zone = d(np.array([[20.0, 5.0], [5.0, 5.0], [95.0, 5.0], [13.0, 14.0]]))
    assert dist.tolist() == pytest.approx([10.0, 0.0, 5.0, 5.0])
    assert zone.tolist() == [3, 3, 5, 3]
    empty = SideDistance(np.array([], dtype=object))
    assert np.isinf(empty(np.array([[0.0, 0.0]]))[0]).all()


def test_side_distance_to_a_hole_and_a_second_part_is_shapely_s():
    """Every ring counts and no segment joins two rings: inside a hole the distance is to the
    hole's edge, near a multipolygon's second part to that part, and between two parts to the
    nearer part, not to a line from one part's last vertex to the next part's first."""
    holed = shapely.Polygon([(0, 0), (100, 0), (100, 100), (0, 100)],
                            [[(40, 40), (60, 40), (60, 60), (40, 60)]])
    multi = shapely.MultiPolygon([shapely.box(200, 0, 210, 10), shapely.box(300, 0, 310, 10)])
    d = SideDistance(np.array([holed, multi]), np.array([7, 8]))
    pts = np.array([[50.0, 50.0], [45.0, 50.0], [295.0, 5.0], [320.0, 5.0], [250.0, 5.0],
                    [20.0, 20.0], [50.0, 30.0]])
    dist, zone = d(pts)
    want = shapely.distance(shapely.points(pts)[:, None],
                            np.array([holed, multi])[None, :]).min(axis=1)
    assert dist.tolist() == pytest.approx(want.tolist())
    assert dist.tolist() == pytest.approx([10.0, 5.0, 5.0, 10.0, 40.0, 0.0, 0.0])
    # (250, 5) lies 5 m from the line joining the first box's last vertex (210, 0) to the
    # second's first (310, 0): 40 m says no such segment was made.
    assert zone.tolist()[:4] == [7, 7, 8, 8]


def test_boundary_segments_of_nothing_is_an_empty_table():
    from gapmap.frontier import _boundary_segments

    for polys in (np.array([], dtype=object), np.array([shapely.Polygon()])):
        out = _boundary_segments(polys, max_len=10.0)
        assert out.shape == (0, 4) and out.dtype == np.float64
    # a square's four edges, split at max_len: 8 segments of 5 m
    sq = _boundary_segments(np.array([shapely.box(0, 0, 10, 10)]), max_len=5.0)
    assert sq.shape == (8, 4)
    assert np.hypot(sq[:, 2] - sq[:, 0], sq[:, 3] - sq[:, 1]).tolist() == [5.0] * 8


def _jagged_pair(seed: int = 5, n: int = 3000, length_m: float = 60e3):
    """Two facing strips with bent, random-walk edges about 4–10 km apart (like traced
    borders), and a small island of side B inside the belt."""
    rng = np.random.default_rng(seed)

    def strip(x0, facing):
        y = np.linspace(0, length_m, n)
        jit = np.cumsum(rng.normal(0, 3, n))
        jit -= np.linspace(jit[0], jit[-1], n)
        # Bends of a few km: much of each edge faces the other side (a rough edge alone
        # would leave only its outermost points as generators).
        jit += 1200 * np.sin(2 * np.pi * y / rng.uniform(5e3, 9e3) + rng.uniform(0, 6))
        edge = np.column_stack([x0 + facing * np.clip(jit, -2500, 2500), y])
        back = x0 - facing * 5e3
        return shapely.make_valid(shapely.Polygon(np.vstack([edge, [[back, length_m],
                                                                     [back, 0.0]]])))
    a = strip(0.0, +1)
    b = strip(7e3, -1)
    island = shapely.box(3.1e3, 14e3, 3.9e3, 15e3)
    return np.array([a]), np.array([b, island])


def _clipped(r, half_w):
    """The part of each ridge the seam keeps (w ≤ 2 half_w), endpoints in a fixed order,
    with its generator: rows sorted, so that two ridge sets can be compared."""
    t0, t1 = clip_to_discs(r.seg, r.gen, np.full(len(r), half_w))
    keep = t0 < t1
    seg = segment_pieces(r.seg[keep], t0[keep], t1[keep])
    a, b = seg[:, :2], seg[:, 2:]
    swap = (b[:, 0] < a[:, 0]) | ((b[:, 0] == a[:, 0]) & (b[:, 1] < a[:, 1]))
    seg = np.where(swap[:, None], np.column_stack([b, a]), seg)
    rows = np.column_stack([r.gen[keep], seg, r.zone_a[keep], r.zone_b[keep]])
    return rows[np.lexsort(rows.T[::-1])]


def test_tiled_voronoi_gives_the_same_seam(monkeypatch):
    import gapmap.frontier as fr

    pa, pb = _jagged_pair()
    half_w = 4000.0  # max width 8 km: some of the belt is wider, so clipping matters
    kw = dict(sample_m=25.0, max_dist_m=half_w)
    calls = []
    real = fr._mixed_ridges
    monkeypatch.setattr(fr, "_mixed_ridges", lambda *a: calls.append(len(a[0])) or real(*a))
    whole = seam_ridges(pa, np.array([0]), pb, np.array([1, 2]), tile_points=10**9, **kw)
    tiled = seam_ridges(pa, np.array([0]), pb, np.array([1, 2]), tile_points=1500, **kw)
    n, tiles = calls[0], calls[1:]
    assert len(tiles) >= 6 and max(tiles) < n / 2  # really tiled, each tile a small part
    w, t = _clipped(whole, half_w), _clipped(tiled, half_w)
    # Tiles cut a ridge where it leaves their square: more pieces, the same lines.
    assert len(w) > 300 and len(t) >= len(w)
    lw = np.hypot(w[:, 4] - w[:, 2], w[:, 5] - w[:, 3])
    lt = np.hypot(t[:, 4] - t[:, 2], t[:, 5] - t[:, 3])
    assert lt.sum() == pytest.approx(lw.sum(), rel=1e-12)
    lines_w = shapely.multilinestrings(shapely.linestrings(w[:, 2:6].reshape(-1, 2, 2)))
    lines_t = shapely.multilinestrings(shapely.linestrings(t[:, 2:6].reshape(-1, 2, 2)))
    assert shapely.hausdorff_distance(lines_w, lines_t) < 1e-6
    # The pieces of a cut ridge meet exactly: merged, both give the same number of lines.
    merged_w, merged_t = shapely.line_merge(lines_w), shapely.line_merge(lines_t)
    assert shapely.get_num_geometries(merged_t) == shapely.get_num_geometries(merged_w)
    # Both the island's ridges and the strips' are there.
    assert {1, 2} <= set(t[:, 7].astype(int).tolist())


def test_tiled_seam_gives_the_same_analysis(monkeypatch):
    import geopandas as gpd

    import gapmap.frontier as fr
    from gapmap import Settings, analyze, parse_side

    from .conftest import UTM38, X0, Y0

    pa, pb = _jagged_pair(seed=8, n=800, length_m=20e3)
    move = lambda g: shapely.transform(g, lambda xy: xy + [X0, Y0])  # noqa: E731
    zones = gpd.GeoDataFrame({"force": ["a", "b", "b"]}, crs=UTM38,
                             geometry=[move(g) for g in (*pa, *pb)])
    args = (zones, parse_side("A=a"), parse_side("B=b"))
    kw = dict(settings=Settings(max_width_km=8.0), sample_m=50.0)
    whole = analyze(*args, **kw)
    monkeypatch.setattr(fr, "TILE_POINTS", 500)
    tiled = analyze(*args, **kw)
    for k in ("seam_length_km", "unguarded_length_km", "width_mean_km"):
        assert tiled.summary[k] == pytest.approx(whole.summary[k], rel=1e-9), k
    assert tiled.summary["corridors"] == whole.summary["corridors"]
    assert sorted(tiled.seam["length_km"]) == pytest.approx(sorted(whole.seam["length_km"]),
                                                            rel=1e-9)
