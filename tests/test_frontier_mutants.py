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
