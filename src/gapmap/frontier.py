"""The seam (line of contact) between two sides, and distances to each side.

The seam S(A, B) is the equidistance (median) line between the zones of side A and those of
side B: the boundary between their Voronoi regions. It is computed from the Voronoi diagram of
points sampled along both sides' zone boundaries (every ``sample_m`` metres, plus every original
vertex): the seam is made of the Voronoi ridges whose two generating samples belong to different
sides. Where A and B zones touch, the seam is their shared border (width 0) and its samples are
dropped, since coincident samples make the diagram degenerate.

Each ridge point p is equidistant from its two generators, which are its nearest samples, so
``d_A(p) = d_B(p) = |p - a|`` and the width is ``w(p) = 2 |p - a|``. Clipping a ridge to
``w ≤ max_width_km`` or to ``w/2 ≤ reach`` is therefore the exact intersection of a segment with
a disc around its generator, done in closed form for all ridges at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import shapely
from scipy.spatial import Voronoi

__all__ = ["SideDistance", "Ridges", "boundary_samples", "seam_ridges", "clip_to_discs",
           "segment_pieces"]

log = logging.getLogger(__name__)


def _boundary_segments(polys: np.ndarray, max_len: float | None = None) -> np.ndarray:
    """All boundary segments of polygons as an (n, 4) array x0, y0, x1, y1.

    With ``max_len``, long edges are split so that their bounding boxes stay small, which keeps
    nearest-neighbour searches in an STRtree fast.
    """
    rings = shapely.get_rings(shapely.get_parts(polys))
    if len(rings) == 0:
        return np.empty((0, 4))
    if max_len:
        rings = shapely.segmentize(rings, max_len)
    xy, idx = shapely.get_coordinates(rings, return_index=True)
    same = idx[:-1] == idx[1:]
    return np.column_stack([xy[:-1][same], xy[1:][same]])


class SideDistance:
    """Distance from points to the nearest zone of one side (0 inside a zone).

    Uses an STRtree of the zones' boundary segments, which is far faster than
    ``shapely.distance`` against large polygons.

    Parameters
    ----------
    polys
        The side's zone polygons (metric CRS).
    zone_ids
        One id per polygon, returned for the nearest zone (e.g. its row position).

    Examples
    --------
    >>> import shapely, numpy as np
    >>> d = SideDistance(np.array([shapely.box(0, 0, 10, 10)]))
    >>> d(np.array([[20.0, 5.0], [5.0, 5.0]]))[0].tolist()
    [10.0, 0.0]
    """

    def __init__(self, polys: np.ndarray, zone_ids: np.ndarray | None = None) -> None:
        polys = np.asarray(polys, dtype=object)
        self.polys = polys
        self.zone_ids = np.arange(len(polys)) if zone_ids is None else np.asarray(zone_ids)
        parts_idx = []
        segs = []
        for i, p in enumerate(polys):  # per zone (few), not per vertex
            s = _boundary_segments(np.array([p], dtype=object), max_len=2000.0)
            segs.append(s)
            parts_idx.append(np.full(len(s), i))
        self._segs = np.vstack(segs) if segs else np.empty((0, 4))
        self._seg_zone = np.concatenate(parts_idx) if parts_idx else np.empty(0, int)
        lines = shapely.linestrings(self._segs.reshape(-1, 2, 2)) if len(self._segs) else []
        self._tree = shapely.STRtree(lines)
        self._poly_tree = shapely.STRtree(polys)

    def __call__(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (distance in CRS units, id of the nearest zone) for an (n, 2) array."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        n = len(xy)
        dist = np.full(n, np.inf)
        zone = np.full(n, -1, dtype=np.int64)
        if n == 0 or len(self._segs) == 0:
            return dist, zone
        pts = shapely.points(xy)
        (qi, si), d = self._tree.query_nearest(pts, return_distance=True, all_matches=False)
        dist[qi] = d
        zone[qi] = self.zone_ids[self._seg_zone[si]]
        # Polygons as the query side: GEOS then prepares each (large, jagged) polygon once
        # instead of testing every point against an unprepared one (100,000 points against a
        # 20,000-vertex zone: 0.6 s instead of 96 s).
        zi, pi = shapely.STRtree(pts).query(self.polys, predicate="intersects")
        dist[pi] = 0.0
        zone[pi] = self.zone_ids[zi]
        return dist, zone


def _bbox_distance(xy: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    dx = np.maximum(np.maximum(bounds[0] - xy[:, 0], xy[:, 0] - bounds[2]), 0)
    dy = np.maximum(np.maximum(bounds[1] - xy[:, 1], xy[:, 1] - bounds[3]), 0)
    return np.hypot(dx, dy)


def boundary_samples(polys: np.ndarray, sample_m: float) -> np.ndarray:
    """Points every ``sample_m`` along the polygons' boundaries, plus every vertex (n, 2).

    Examples
    --------
    A 10 × 10 square sampled every 5: its 4 corners, 4 edge midpoints and the ring's closing
    point (the first corner again).

    >>> import shapely, numpy as np
    >>> xy = boundary_samples(np.array([shapely.box(0, 0, 10, 10)]), 5.0)
    >>> len(xy), sorted(set(map(tuple, xy.tolist())))[:3]
    (9, [(0.0, 0.0), (0.0, 5.0), (0.0, 10.0)])
    """
    rings = shapely.get_rings(shapely.get_parts(np.asarray(polys, dtype=object)))
    if len(rings) == 0:
        return np.empty((0, 2))
    dense = shapely.segmentize(rings, sample_m)
    xy = shapely.get_coordinates(dense)
    return xy


@dataclass(frozen=True)
class Ridges:
    """Seam ridges as segments with their generating samples.

    Attributes
    ----------
    seg
        (n, 4) segments x0, y0, x1, y1.
    gen
        (n, 2) coordinates of the A-side generator (equidistant from the B-side one).
    zone_a, zone_b
        Row positions (in the zones table) of the zones the two generators lie on.
    """

    seg: np.ndarray
    gen: np.ndarray
    zone_a: np.ndarray
    zone_b: np.ndarray

    def __len__(self) -> int:
        return len(self.seg)

    def take(self, mask: np.ndarray) -> Ridges:
        return Ridges(self.seg[mask], self.gen[mask], self.zone_a[mask], self.zone_b[mask])


def _label_samples(polys: np.ndarray, ids: np.ndarray, sample_m: float):
    xs, zs = [], []
    for p, i in zip(polys, ids):
        s = boundary_samples(np.array([p], dtype=object), sample_m)
        xs.append(s)
        zs.append(np.full(len(s), i))
    if not xs:
        return np.empty((0, 2)), np.empty(0, int)
    return np.vstack(xs), np.concatenate(zs)


def seam_ridges(polys_a: np.ndarray, ids_a: np.ndarray, polys_b: np.ndarray, ids_b: np.ndarray,
                *, sample_m: float, max_dist_m: float, shared: shapely.Geometry | None = None,
                keep_near: shapely.Geometry | None = None,
                tile_points: int | None = None) -> Ridges:
    """Voronoi ridges separating the samples of side A from those of side B.

    Parameters
    ----------
    polys_a, polys_b
        Zone polygons of each side (metric CRS).
    ids_a, ids_b
        Zone ids (row positions) of those polygons.
    sample_m
        Boundary sampling interval.
    max_dist_m
        Half the maximum width: samples further than ``2 * max_dist_m`` from the other side,
        or further than ``max_dist_m`` from ``keep_near``, cannot generate seam and are dropped.
    shared
        Shared border of A and B (where they touch); samples on it are dropped.
    keep_near
        The study area, if any.
    tile_points
        Compute the diagram by tiles of about this many samples when there are more
        (default :data:`TILE_POINTS`); the seam is the same either way (see
        :func:`_tiled_ridges`).

    Returns
    -------
    Ridges
        Unclipped ridge segments (infinite ridges are extended to ``4 * max_dist_m``).

    Examples
    --------
    Two squares 20 m apart: every ridge separating their samples lies on the midline x = 20,
    and each ridge point is as far from its A generator as from side B.

    >>> import shapely, numpy as np
    >>> a, b = shapely.box(0, 0, 10, 10), shapely.box(30, 0, 40, 10)
    >>> r = seam_ridges(np.array([a]), np.array([0]), np.array([b]), np.array([1]),
    ...                 sample_m=1.0, max_dist_m=50.0)
    >>> mid = r.seg[np.abs(r.seg[:, 1] - 5) < 4]  # ridges beside the squares
    >>> bool(np.allclose(mid[:, [0, 2]], 20.0, atol=1e-2))
    True
    >>> sorted(set(r.zone_a.tolist())), sorted(set(r.zone_b.tolist()))
    ([0], [1])
    """
    xa, za = _label_samples(polys_a, ids_a, sample_m)
    xb, zb = _label_samples(polys_b, ids_b, sample_m)
    # Prune samples that cannot be nearest to any seam point (w ≤ max width). The distance to
    # the other side's bounding box is a cheap lower bound of the distance to the side itself.
    ka = _bbox_distance(xa, shapely.total_bounds(polys_b)) <= 2 * max_dist_m
    kb = _bbox_distance(xb, shapely.total_bounds(polys_a)) <= 2 * max_dist_m
    if shared is not None and not shared.is_empty:
        tol = max(sample_m * 1e-3, 1e-6)
        ka &= ~shapely.dwithin(shapely.points(xa), shared, tol)
        kb &= ~shapely.dwithin(shapely.points(xb), shared, tol)
    if keep_near is not None:
        # A seam point p in the study area has its generator within max_dist_m of p; the
        # distance to the study area's bounding box is a cheap lower bound to test against.
        box = np.asarray(shapely.bounds(keep_near))
        ka &= _bbox_distance(xa, box) <= max_dist_m
        kb &= _bbox_distance(xb, box) <= max_dist_m
    xa, za, xb, zb = xa[ka], za[ka], xb[kb], zb[kb]
    empty = Ridges(np.empty((0, 4)), np.empty((0, 2)), np.empty(0, int), np.empty(0, int))
    if len(xa) == 0 or len(xb) == 0:
        return empty
    pts = np.vstack([xa, xb])
    side = np.concatenate([np.zeros(len(xa), bool), np.ones(len(xb), bool)])
    zone = np.concatenate([za, zb])
    # Duplicates (shared vertices, repeated ring closures) make Qhull fail: keep one of each,
    # and drop coordinates claimed by both sides (touching points).
    key = np.round(pts, 3)
    _, first, inv, counts = np.unique(key, axis=0, return_index=True, return_inverse=True,
                                      return_counts=True)
    inv = inv.ravel()
    both = np.zeros(len(first), bool)
    np.logical_or.at(both, inv, side)
    anyA = np.zeros(len(first), bool)
    np.logical_or.at(anyA, inv, ~side)
    keep_u = ~(both & anyA)
    sel = first[keep_u]
    pts, side, zone = pts[sel], side[sel], zone[sel]
    if side.all() or (~side).all() or len(pts) < 3:
        return empty
    log.debug("Voronoi of %d boundary samples", len(pts))
    # Centre the coordinates: Qhull is more robust near the origin.
    centre = pts.mean(axis=0)
    # Collinear, evenly spaced samples (straight edges) are co-circular by the thousand and
    # send Qhull into its slow exact paths; a fixed sub-millimetre jitter removes the
    # degeneracy at no measurable cost in accuracy. Drawn once for all samples, so that a
    # sample has the same jitter whichever tile it falls in.
    jitter = np.random.default_rng(0).uniform(-5e-4, 5e-4, pts.shape)
    q = pts - centre + jitter
    tile = TILE_POINTS if tile_points is None else int(tile_points)
    if len(q) <= tile:
        seg, rp = _mixed_ridges(q, side, max_dist_m)
    else:
        seg, rp = _tiled_ridges(q, side, max_dist_m, tile)
    seg = np.column_stack([seg[:, :2] + centre, seg[:, 2:] + centre])
    gen = pts[rp[:, 0]]
    return Ridges(seg, gen, zone[rp[:, 0]], zone[rp[:, 1]])


#: Above this many boundary samples the Voronoi diagram is computed by tiles (exactly: see
#: :func:`_tiled_ridges`), which bounds Qhull's memory (its ridge lists take ~0.5 kB a
#: sample) and keeps every tile's diagram small.
TILE_POINTS = 250_000


def _mixed_ridges(q: np.ndarray, side: np.ndarray, max_dist_m: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Voronoi ridges of points ``q`` whose two generators are on different sides.

    Returns the segments (n, 4) in ``q``'s coordinates and the generator indices (n, 2), the
    side-A one in column 0; infinite ridges are extended to ``4 * max_dist_m`` beyond the
    generators' midpoint.
    """
    vor = Voronoi(q)
    rp = vor.ridge_points
    rv = np.asarray(vor.ridge_vertices)
    mixed = side[rp[:, 0]] != side[rp[:, 1]]
    rp, rv = rp[mixed], rv[mixed]
    # Orient each ridge so column 0 is the A sample.
    flip = side[rp[:, 0]]
    rp = np.where(flip[:, None], rp[:, ::-1], rp)
    verts = vor.vertices
    v0 = np.where(rv[:, 0] >= 0, rv[:, 0], rv[:, 1])
    v1 = np.where(rv[:, 0] >= 0, rv[:, 1], -1)
    p0 = verts[v0]
    p1 = np.empty_like(p0)
    fin = v1 >= 0
    p1[fin] = verts[v1[fin]]
    if (~fin).any():
        a = vor.points[rp[~fin, 0]]
        b = vor.points[rp[~fin, 1]]
        t = b - a
        nrm = np.column_stack([-t[:, 1], t[:, 0]])
        nrm /= np.linalg.norm(nrm, axis=1)[:, None]
        mid = (a + b) / 2
        # An infinite ridge separates two neighbours on the hull and runs away from its
        # inside, where the points' centroid lies.
        far_dir = np.sign(np.einsum("ij,ij->i", mid - vor.points.mean(axis=0), nrm))
        far_dir[far_dir == 0] = 1
        p1[~fin] = p0[~fin] + nrm * far_dir[:, None] * (4 * max_dist_m + np.linalg.norm(
            p0[~fin] - mid, axis=1)[:, None])
    return np.column_stack([p0, p1]), rp


def _tile_grid(q: np.ndarray, tile_points: int) -> tuple[np.ndarray, float, int, int]:
    """Square tile cores over the points' bounds, about ``tile_points`` points each."""
    lo, hi = q.min(axis=0), q.max(axis=0)
    span = np.maximum(hi - lo, 1e-9)
    ntiles = max(int(np.ceil(len(q) / tile_points)), 1)
    size = float(np.sqrt(span[0] * span[1] / ntiles))
    size = max(size, float(span.max()) / ntiles)
    nx, ny = (int(v) for v in np.maximum(np.ceil(span / size), 1))
    return lo, size, nx, ny


def _tiled_ridges(q: np.ndarray, side: np.ndarray, max_dist_m: float, tile_points: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_mixed_ridges` by tiles, with the same result where the seam can be.

    Why it is exact: the seam keeps of a ridge between samples p and q only the points x
    with ``|x - p| = |x - q| ≤ max_dist_m`` (a chord of that disc, centred on the generators'
    midpoint m, so every such x is within ``max_dist_m`` of m). Such an x is on the ridge
    exactly when no sample is nearer to x than p, and any such sample lies within
    ``max_dist_m`` of x, so within ``2 * max_dist_m`` of m. Each tile computes the diagram
    of the samples within ``2 * max_dist_m`` of its core and keeps the ridges whose m lies
    in the core: each ridge is kept once, by the tile that holds every sample it depends
    on. Ridge ends beyond that disc (which the seam drops) may differ; ridges that keep
    nothing within it are dropped.
    """
    overlap = 2.0 * max_dist_m
    lo, size, nx, ny = _tile_grid(q, tile_points)
    segs, rps = [], []
    for i in range(nx):
        for j in range(ny):
            c0 = lo + size * np.array([i, j], float)
            c1 = c0 + size
            sel = np.flatnonzero(((q >= c0 - overlap) & (q <= c1 + overlap)).all(axis=1))
            sub = side[sel]
            if len(sel) == 0 or sub.all() or not sub.any():
                continue
            if len(sel) < 8:  # too few for Qhull: more samples never change the kept ridges
                dist = np.abs(q - (c0 + c1) / 2).max(axis=1)
                sel = np.sort(np.argsort(dist, kind="stable")[:8])
            seg, rp = _mixed_ridges(q[sel], side[sel], max_dist_m)
            rp = sel[rp]
            m = (q[rp[:, 0]] + q[rp[:, 1]]) / 2
            mcell = np.minimum(np.floor((m - lo) / size).astype(np.int64), [nx - 1, ny - 1])
            mcell = np.maximum(mcell, 0)
            keep = (mcell[:, 0] == i) & (mcell[:, 1] == j)
            t0, t1 = clip_to_discs(seg[keep], q[rp[keep, 0]], np.full(keep.sum(), max_dist_m))
            keep[np.flatnonzero(keep)[t0 >= t1]] = False
            segs.append(seg[keep])
            rps.append(rp[keep])
    log.debug("Voronoi of %d boundary samples in %d × %d tiles", len(q), nx, ny)
    if not segs:
        return np.empty((0, 4)), np.empty((0, 2), np.int64)
    seg, rp = np.vstack(segs), np.vstack(rps)
    # Tiles are visited in a fixed order; sort by generators so the output does not depend
    # on the tiling.
    order = np.lexsort((rp[:, 1], rp[:, 0]))
    return seg[order], rp[order]


def clip_to_discs(seg: np.ndarray, centre: np.ndarray, radius: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Parameter interval [t0, t1] ⊂ [0, 1] of each segment inside its disc.

    Segments that miss their disc get t0 > t1.

    Examples
    --------
    The segment (-10, 0)–(10, 0) against a disc of radius 5 at the origin: inside for
    t ∈ [0.25, 0.75]; a segment at y = 6 misses the disc:

    >>> import numpy as np
    >>> seg = np.array([[-10.0, 0.0, 10.0, 0.0], [-10.0, 6.0, 10.0, 6.0]])
    >>> t0, t1 = clip_to_discs(seg, np.zeros((2, 2)), np.array([5.0, 5.0]))
    >>> t0.tolist(), t1.tolist()
    ([0.25, 1.0], [0.75, 0.0])

    A disc holding the whole segment gives [0, 1]:

    >>> [v.tolist() for v in clip_to_discs(seg[:1], np.zeros((1, 2)), np.array([20.0]))]
    [[0.0], [1.0]]
    """
    p0, p1 = seg[:, :2], seg[:, 2:]
    d = p1 - p0
    f = p0 - centre
    a = np.einsum("ij,ij->i", d, d)
    b = 2 * np.einsum("ij,ij->i", f, d)
    c = np.einsum("ij,ij->i", f, f) - radius**2
    disc = b * b - 4 * a * c
    t0 = np.full(len(seg), 1.0)
    t1 = np.full(len(seg), 0.0)
    ok = (disc >= 0) & (a > 0)
    sq = np.sqrt(np.where(ok, disc, 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        r0 = (-b - sq) / (2 * a)
        r1 = (-b + sq) / (2 * a)
    t0[ok] = np.clip(r0[ok], 0, 1)
    t1[ok] = np.clip(r1[ok], 0, 1)
    miss = t0 >= t1
    t0[miss], t1[miss] = 1.0, 0.0
    degenerate = (a == 0) & (c <= 0)  # zero-length segment inside its disc
    t0[degenerate], t1[degenerate] = 0.0, 1.0
    return t0, t1


def segment_pieces(seg: np.ndarray, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
    """Sub-segments [t0, t1] of segments, reusing exact end coordinates at t = 0 and 1.

    Examples
    --------
    >>> import numpy as np
    >>> seg = np.array([[0.0, 0.0, 10.0, 20.0]])
    >>> segment_pieces(seg, np.array([0.25]), np.array([1.0])).tolist()
    [[2.5, 5.0, 10.0, 20.0]]
    """
    p0, p1 = seg[:, :2], seg[:, 2:]
    d = p1 - p0

    def at(t):
        pt = p0 + t[:, None] * d
        pt = np.where((t == 0)[:, None], p0, pt)
        return np.where((t == 1)[:, None], p1, pt)

    return np.column_stack([at(t0), at(t1)])
