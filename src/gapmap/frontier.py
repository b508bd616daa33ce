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

import contextlib
import contextvars
import dataclasses
import hashlib
import logging
from dataclasses import dataclass

import numpy as np
import shapely
from scipy.spatial import Voronoi

__all__ = ["SideDistance", "Ridges", "boundary_samples", "seam_ridges", "clip_to_discs",
           "segment_pieces", "seam_samples", "Tile", "seam_tiles", "tile_ridges", "join_tiles",
           "TileCache", "seam_tile_cache", "series_tile_m"]

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
        :func:`seam_tiles`).

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
    cache = _TILE_CACHE.get()
    if cache is not None and cache.planned is not None:
        # A series' date whose tiles were cut from these same inputs before (its plan).
        planned, cache.planned = cache.planned, None
        return cache.ridges(planned)
    pts, side, zone = seam_samples(polys_a, ids_a, polys_b, ids_b, sample_m=sample_m,
                                   max_dist_m=max_dist_m, shared=shared, keep_near=keep_near)
    if side.all() or (~side).all() or len(pts) < 3:
        return _EMPTY
    if cache is not None:
        # A series: the seam from fixed tiles, each looked up by its samples (see TileCache).
        return cache.ridges(seam_tiles(pts, side, zone, max_dist_m=max_dist_m,
                                       tile_m=cache.tile_m(max_dist_m)))
    tile = TILE_POINTS if tile_points is None else int(tile_points)
    if len(pts) > tile:
        # Exact tiles (see seam_tiles) of about ``tile`` samples each.
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        span = np.maximum(hi - lo, 1e-9)
        ntiles = max(int(np.ceil(len(pts) / tile)), 1)
        size = max(float(np.sqrt(span[0] * span[1] / ntiles)), float(span.max()) / ntiles)
        tiles = seam_tiles(pts, side, zone, max_dist_m=max_dist_m, tile_m=size)
        log.debug("Voronoi of %d boundary samples in %d tiles", len(pts), len(tiles))
        return join_tiles([tile_ridges(t) for t in tiles])
    log.debug("Voronoi of %d boundary samples", len(pts))
    # Centre the coordinates: Qhull is more robust near the origin.
    centre = pts.mean(axis=0)
    seg, rp = _mixed_ridges((pts + _jitter(pts)) - centre, side, max_dist_m)
    seg = np.column_stack([seg[:, :2] + centre, seg[:, 2:] + centre])
    gen = pts[rp[:, 0]]
    return Ridges(seg, gen, zone[rp[:, 0]], zone[rp[:, 1]])


_EMPTY = Ridges(np.empty((0, 4)), np.empty((0, 2)), np.empty(0, int), np.empty(0, int))


def seam_samples(polys_a: np.ndarray, ids_a: np.ndarray, polys_b: np.ndarray,
                 ids_b: np.ndarray, *, sample_m: float, max_dist_m: float,
                 shared: shapely.Geometry | None = None,
                 keep_near: shapely.Geometry | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The boundary samples that can generate seam: coordinates (n, 2), side (True = B) and
    zone id of each, pruned and without duplicates (arguments as :func:`seam_ridges`).

    Examples
    --------
    >>> import shapely, numpy as np
    >>> a, b = shapely.box(0, 0, 10, 10), shapely.box(30, 0, 40, 10)
    >>> pts, side, zone = seam_samples(np.array([a]), np.array([0]), np.array([b]),
    ...                                np.array([1]), sample_m=5.0, max_dist_m=50.0)
    >>> len(pts), int(side.sum()), sorted(set(zone.tolist()))
    (16, 8, [0, 1])
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
    if len(xa) == 0 or len(xb) == 0:
        return np.empty((0, 2)), np.empty(0, bool), np.empty(0, int)
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
    return pts[sel], side[sel], zone[sel]


def _jitter(pts: np.ndarray) -> np.ndarray:
    """A fixed sub-millimetre offset of each sample, a function of its coordinates alone.

    Collinear, evenly spaced samples (straight edges) are co-circular by the thousand and send
    Qhull into its slow exact paths; jitter below 0.5 mm removes the degeneracy at no
    measurable cost in accuracy. Derived from the coordinates (to the millimetre), a sample
    gets the same offset whichever tile, date or diagram it is part of.
    """
    k = np.round(np.asarray(pts, float) * 1000.0).astype(np.int64).view(np.uint64)
    out = np.empty(k.shape)
    with np.errstate(over="ignore"):
        for axis, salt in ((0, 0x9E3779B97F4A7C15), (1, 0xC2B2AE3D27D4EB4F)):
            h = k[:, 0] * np.uint64(0xBF58476D1CE4E5B9) + k[:, 1] + np.uint64(salt)
            h ^= h >> np.uint64(30)  # splitmix64's finaliser
            h *= np.uint64(0xBF58476D1CE4E5B9)
            h ^= h >> np.uint64(27)
            h *= np.uint64(0x94D049BB133111EB)
            h ^= h >> np.uint64(31)
            out[:, axis] = (h >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return (out - 0.5) * 1e-3


#: Above this many boundary samples the Voronoi diagram is computed by tiles (exactly: see
#: :func:`seam_tiles`), which bounds Qhull's memory (its ridge lists take ~0.5 kB a
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


# --------------------------------------------------------------------------------------------
# the seam by fixed tiles, each computed once for a whole series


#: Version of the tile computation, part of every tile's key.
_TILE_VERSION = b"gapmap-seam-tile-1"


@dataclass(frozen=True)
class Tile:
    """The input of one tile of the seam: what its ridges depend on, and nothing else.

    Attributes
    ----------
    key
        A hash of everything below: two tiles with one key have the same ridges.
    core
        ``(x0, y0, x1, y1)`` of the square the tile answers for (a cell of a grid fixed in
        the analysis CRS, so that it is the same cell on every date).
    pts, side, zone
        The boundary samples within ``max_dist_m`` of the core (the window), their side
        (True = B) and zone ids, in the order of the date's samples.
    max_dist_m
        Half the maximum width.
    """

    key: str
    core: tuple
    pts: np.ndarray = dataclasses.field(repr=False)
    side: np.ndarray = dataclasses.field(repr=False)
    zone: np.ndarray = dataclasses.field(repr=False)
    max_dist_m: float = 0.0


def series_tile_m(max_dist_m: float) -> float:
    """Side of the seam's tiles in a series: 3 × half the maximum width, at least 10 km.

    A tile's window is its core plus ``max_dist_m`` on each side, and a change of the
    boundary is felt up to ``max_dist_m`` away, so a stretch of length L that moves
    recomputes about ``(L + 2 R + c)(c + 2 R) / c`` of front for a tile side c
    (R = ``max_dist_m``); c = 3 R is near the least of it for L of one to three R.

    >>> series_tile_m(20e3)
    60000.0
    """
    return max(3.0 * float(max_dist_m), 10e3)


def seam_tiles(pts: np.ndarray, side: np.ndarray, zone: np.ndarray, *, max_dist_m: float,
               tile_m: float) -> list[Tile]:
    """Cut boundary samples (from :func:`seam_samples`) into the tiles of a fixed grid.

    Why a tile is exact: the seam keeps of a ridge between samples p and q only the points x
    with ``|x - p| = |x - q| ≤ max_dist_m``; x is on that ridge exactly when no sample is
    nearer to x than p, and such a sample lies within ``max_dist_m`` of x. So the Voronoi
    diagram of the samples within ``max_dist_m`` of a square (its window) is the true one
    at every point x of the square where the seam can be; each tile keeps the ridge pieces
    inside its square (:func:`tile_ridges`). The grid is anchored at the CRS origin, so a
    part of the boundary that did not move gives a tile with the same key on every date.

    Examples
    --------
    >>> import shapely, numpy as np
    >>> a, b = shapely.box(0, 0, 10e3, 100e3), shapely.box(14e3, 0, 30e3, 100e3)
    >>> s = seam_samples(np.array([a]), np.array([0]), np.array([b]), np.array([1]),
    ...                  sample_m=100.0, max_dist_m=5e3)
    >>> tiles = seam_tiles(*s, max_dist_m=5e3, tile_m=20e3)
    >>> len(tiles), tiles[0].core
    (7, (0.0, -20000.0, 20000.0, 0.0))
    >>> len({t.key for t in tiles}) == len(tiles)
    True
    """
    pts = np.asarray(pts, float)
    if len(pts) == 0:
        return []
    c, r = float(tile_m), float(max_dist_m)
    lo = np.floor((pts.min(axis=0) - r) / c).astype(np.int64)
    hi = np.floor((pts.max(axis=0) + r) / c).astype(np.int64)
    # Samples binned by the cells their window reach covers: a sample is in the window of
    # cell (i, j) when it lies within r of the cell's square (box distance).
    out = []
    xs = pts[:, 0]
    order = np.argsort(xs, kind="stable")
    xs_sorted = xs[order]
    for i in range(int(lo[0]), int(hi[0]) + 1):
        x0, x1 = i * c, (i + 1) * c
        a, b = np.searchsorted(xs_sorted, [x0 - r, x1 + r], side="left")
        col = np.sort(order[a:b])  # the date's order
        if len(col) == 0:
            continue
        ys = pts[col, 1]
        for j in range(int(lo[1]), int(hi[1]) + 1):
            y0, y1 = j * c, (j + 1) * c
            sel = col[(ys >= y0 - r) & (ys <= y1 + r)]
            if len(sel) == 0:
                continue
            sub = side[sel]
            if sub.all() or not sub.any():
                continue  # one side only: no seam in this square
            core = (float(x0), float(y0), float(x1), float(y1))
            p, sd, z = pts[sel], side[sel], np.asarray(zone[sel], np.int64)
            h = hashlib.blake2b(_TILE_VERSION, digest_size=16)
            h.update(np.array(core + (r,), float).tobytes())
            for arr in (p, sd, z):
                h.update(np.ascontiguousarray(arr).tobytes())
            out.append(Tile(h.hexdigest(), core, p, sd, z, r))
    return out


def tile_ridges(tile: Tile) -> Ridges:
    """The seam ridges of one tile: pieces inside its square that the seam can keep.

    Ridges are cut where they leave the square; the cut point is computed from the two
    generators alone (on their bisector), so the two tiles either side of a cut give the
    same point to the last bit and the pieces join exactly.

    Examples
    --------
    >>> import shapely, numpy as np
    >>> a, b = shapely.box(0, 0, 10e3, 100e3), shapely.box(14e3, 0, 30e3, 100e3)
    >>> s = seam_samples(np.array([a]), np.array([0]), np.array([b]), np.array([1]),
    ...                  sample_m=100.0, max_dist_m=5e3)
    >>> r = [tile_ridges(t) for t in seam_tiles(*s, max_dist_m=5e3, tile_m=20e3)]
    >>> seg = np.vstack([x.seg for x in r])
    >>> bool(np.allclose(seg[np.abs(seg[:, 1] - 50e3) < 40e3][:, [0, 2]], 12e3, atol=0.01))
    True
    """
    pts, side, r = tile.pts, tile.side, tile.max_dist_m
    if len(pts) < 4 or side.all() or not side.any():
        return _EMPTY
    x0, y0, x1, y1 = tile.core
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    qa = pts + _jitter(pts)  # jittered, absolute: the cut points are computed from these
    seg, rp = _mixed_ridges(qa - centre, side, r)
    seg = np.column_stack([seg[:, :2] + centre, seg[:, 2:] + centre])
    p0, d = seg[:, :2], seg[:, 2:] - seg[:, :2]
    n = len(seg)
    t_in, t_out = np.zeros(n), np.ones(n)
    ax_in, ax_out = np.full(n, -1), np.full(n, -1)
    v_in, v_out = np.zeros(n), np.zeros(n)
    ok = np.ones(n, bool)
    for axis, (lo_v, hi_v) in enumerate(((x0, x1), (y0, y1))):
        da, pa = d[:, axis], p0[:, axis]
        flat = da == 0
        ok &= ~(flat & ((pa < lo_v) | (pa > hi_v)))
        with np.errstate(divide="ignore", invalid="ignore"):
            t_lo, t_hi = (lo_v - pa) / da, (hi_v - pa) / da
        enter = np.where(da > 0, t_lo, t_hi)
        leave = np.where(da > 0, t_hi, t_lo)
        b_enter = np.where(da > 0, lo_v, hi_v)
        b_leave = np.where(da > 0, hi_v, lo_v)
        up = ~flat & (enter > t_in)
        t_in[up], ax_in[up], v_in[up] = enter[up], axis, b_enter[up]
        dn = ~flat & (leave < t_out)
        t_out[dn], ax_out[dn], v_out[dn] = leave[dn], axis, b_leave[dn]
    ok &= t_in < t_out
    seg, rp, t_in, t_out = seg[ok], rp[ok], t_in[ok], t_out[ok]
    ax_in, ax_out, v_in, v_out = ax_in[ok], ax_out[ok], v_in[ok], v_out[ok]
    a, b = qa[rp[:, 0]], qa[rp[:, 1]]
    piece = seg.copy()
    for cols, t, ax, v in (((0, 1), t_in, ax_in, v_in), ((2, 3), t_out, ax_out, v_out)):
        cut = ax >= 0
        if cut.any():
            piece[np.ix_(cut, cols)] = _on_bisector(a[cut], b[cut], ax[cut], v[cut])
    # Only pieces that keep something within the disc the seam is clipped to.
    k0, k1 = clip_to_discs(piece, pts[rp[:, 0]], np.full(len(piece), r))
    keep = k0 < k1
    piece, rp = piece[keep], rp[keep]
    return Ridges(piece, pts[rp[:, 0]], tile.zone[rp[:, 0]], tile.zone[rp[:, 1]])


def _on_bisector(a: np.ndarray, b: np.ndarray, axis: np.ndarray, value: np.ndarray
                 ) -> np.ndarray:
    """Where the bisector of a and b meets the line x = value (axis 0) or y = value (1)."""
    m, nv = (a + b) / 2, b - a
    out = np.empty_like(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        xcut = axis == 0
        out[xcut, 0] = value[xcut]
        out[xcut, 1] = m[xcut, 1] - (value[xcut] - m[xcut, 0]) * nv[xcut, 0] / nv[xcut, 1]
        ycut = ~xcut
        out[ycut, 1] = value[ycut]
        out[ycut, 0] = m[ycut, 0] - (value[ycut] - m[ycut, 1]) * nv[ycut, 1] / nv[ycut, 0]
    return out


def join_tiles(parts: list[Ridges]) -> Ridges:
    """The ridges of several tiles, in the order given (one date's seam)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return _EMPTY
    return Ridges(np.vstack([p.seg for p in parts]), np.vstack([p.gen for p in parts]),
                  np.concatenate([p.zone_a for p in parts]),
                  np.concatenate([p.zone_b for p in parts]))


class TileCache:
    """Tile ridges by key: while active (:func:`seam_tile_cache`), :func:`seam_ridges`
    builds the seam from fixed tiles, takes each known tile from here and computes (and
    keeps) the others.

    Parameters
    ----------
    known
        ``{key: Ridges}`` already computed (e.g. by other processes of a series).
    tile_m
        Side of the tiles; default :func:`series_tile_m`.
    planned
        The tiles of the next seam built in this block, when the caller already cut them from
        the same inputs (:func:`seam_samples` then :func:`seam_tiles`): that seam takes them
        instead of sampling the boundary again (used once).

    Attributes
    ----------
    computed
        Keys of the tiles computed here, in order.
    """

    def __init__(self, known: dict | None = None, tile_m: float | None = None,
                 planned: list | None = None) -> None:
        self.known = dict(known or {})
        self._tile_m = tile_m
        self.planned = planned
        self.computed: list[str] = []

    def tile_m(self, max_dist_m: float) -> float:
        return float(self._tile_m) if self._tile_m else series_tile_m(max_dist_m)

    def get(self, tile: Tile) -> Ridges:
        if tile.key not in self.known:
            self.known[tile.key] = tile_ridges(tile)
            self.computed.append(tile.key)
        return self.known[tile.key]

    def ridges(self, tiles: list[Tile]) -> Ridges:
        return join_tiles([self.get(t) for t in tiles])


_TILE_CACHE: contextvars.ContextVar = contextvars.ContextVar("gapmap_seam_tiles", default=None)


@contextlib.contextmanager
def seam_tile_cache(cache: TileCache):
    """Within this block, seams are built from the tiles of ``cache`` (see :class:`TileCache`).

    >>> with seam_tile_cache(TileCache()) as c:
    ...     pass
    >>> c.computed
    []
    """
    token = _TILE_CACHE.set(cache)
    try:
        yield cache
    finally:
        _TILE_CACHE.reset(token)
