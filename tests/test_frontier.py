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
