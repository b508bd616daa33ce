"""Uncertainty: the summary figures over perturbed copies of the inputs (Monte Carlo).

Nobody knows a zone's edge or a post's range exactly. :func:`simulate` draws ``draws`` copies in
which each zone's boundary moves outward or inward by ``e ~ U[-edge_km, edge_km]`` (one draw per
zone per copy), each post's range is multiplied by ``u ~ U[1 - F, 1 + F]`` and, optionally, the
reach is drawn from ``U[low, high]`` per copy, and measures each copy's summary figures and, at
every sample of the unperturbed seam, whether the copy's seam there is unguarded.

How a copy is measured (and why it is cheap)
--------------------------------------------
Growing large jagged zones is the slowest step of the pipeline (214 s for one 50k-vertex zone),
so no copy grows or shrinks a polygon. A zone moved by ``e`` has the distance function
``d - e`` (``d`` the signed distance to the zone: negative inside): this is exact everywhere
outside the grown zone for ``e ≥ 0`` (the distance to ``Z ⊕ B(e)`` is ``d(p, Z) - e``), and for
``e < 0`` wherever the nearest boundary point of the zone lies on an edge at least ``|e|`` from
its other edges (straight stretches and convex zones away from corners); near reflex corners the
shrunk zone lies slightly further than ``d + |e|``, so there a shrinking zone is taken a little
larger than it is. The per-zone distances are computed once, at fixed points; a copy only
subtracts its offsets and takes minima:

- **Seam**: along a transect through every seam sample (every ``spacing_m``, normal to the seam,
  ``±4·edge_km``) the copy's seam is where ``min_A(d_i - e_i) = min_B(d_j - e_j)``: the sign
  change of that difference nearest to the sample, placed by linear interpolation. The copy's
  seam is the chain of these points, measured geodesically; where a transect holds no sign change
  (the seam moved further, beyond the study area or the maximum width, or into a third force's
  zone) the copy has no seam there. The copy's seam is a deformation of the unperturbed one:
  seam that a copy would grow beyond the unperturbed seam's ends (at most about ``edge_km``) is
  not counted.
- **Coverage** at the copy's seam point: within the copy's reach of a zone
  (``d_i - e_i ≤ reach``), or within the copy's range of a post — and, with
  ``visibility=True``, in that post's line of sight over the DEM (the rule of
  :func:`gapmap.viewshed.visible_from_posts`); covered/uncovered changes are placed midway
  between samples, as the visibility mode does. Line of sight costs one viewshed per post for
  the whole run, not per copy: each post's viewshed is computed once over the window of its
  largest drawn range (the reference-plane scan decides a cell from the cells nearer the post
  only, so a cell within a shorter range is seen or hidden exactly as with that range), and a
  copy looks up the cell of each of its seam points in the windows of the posts whose drawn
  range reaches it. Observer and target heights are those of the analysis (not drawn).
- **Corridors**: maximal runs of uncovered samples, joined where seam branches meet.
- **Gap area** on a grid of about 40,000 points over the study area (each cell counted by the
  share of it inside the copy's gap, from the signed distance to the gap's edge), and
  **incidents in the gap** at the events themselves, both as *changes* from the unperturbed
  analysis: the area is the exact unperturbed gap area plus the change the grid measures, and an
  event whose state the copy leaves unchanged keeps its exact unperturbed state.

``p_unguarded`` at a seam sample is the share of copies in which the copy's seam point on that
sample's transect (the nearest seam point of the copy, when the seam moves parallel to itself) is
unguarded.

Examples
--------
>>> import geopandas as gpd, shapely
>>> from gapmap import analyze, parse_side
>>> zones = gpd.GeoDataFrame({"force": ["a", "b"]}, crs=32638,
...     geometry=[shapely.box(400e3, 3900e3, 410e3, 4000e3),
...               shapely.box(430e3, 3900e3, 440e3, 4000e3)])
>>> area = gpd.GeoDataFrame(geometry=[shapely.box(380e3, 3900e3, 460e3, 4000e3)], crs=32638)
>>> res = analyze(zones, parse_side("A=a"), parse_side("B=b"), study_area=area)
>>> sim = simulate(res, draws=50, edge_km=1.0, seed=1, grid_points=2000)
>>> round(float(sim.table.loc["seam_length_km", "p50"]), 1)
100.0
>>> bool(sim.p_unguarded["p_unguarded"].eq(1.0).all())  # 20 km apart, reach 2: never closes
True
"""

from __future__ import annotations

import functools
from functools import partial
import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from affine import Affine
from pyproj import CRS, Geod, Proj, Transformer
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from .crs import geodesic_area_km2
from .errors import InputError, ResultWarning
from .frontier import SideDistance, _boundary_segments, _bbox_distance

__all__ = ["Uncertainty", "simulate", "parse_range", "check_parameters", "write_uncertainty",
           "UNCERTAINTY_FIELDS", "AREA_RANGE_FIELDS", "CORRIDOR_RANGE_COLUMNS", "MAX_DRAWS",
           "format_uncertainty", "format_ranges", "corridor_ranges"]

log = logging.getLogger(__name__)

#: Summary fields each copy recomputes (the incident ones only with incidents).
UNCERTAINTY_FIELDS = ["seam_length_km", "unguarded_length_km", "unguarded_share", "corridors",
                      "minor_corridors", "longest_corridor_km", "width_mean_km", "gap_area_km2",
                      "incidents_in_gap", "exploitation_ratio"]
#: More draws than this need ``force=True`` (a typo such as 2000000 would run for hours).
MAX_DRAWS = 100_000
_GEOD = Geod(ellps="WGS84")
_TRANSECT_HALF = 20  # points each side of the seam sample along a transect
_GRID_POINTS = 40_000  # gap-area grid over the study area
_BATCH = 25  # draws per task


@dataclass(frozen=True)
class Uncertainty:
    """Result of :func:`simulate`.

    Attributes
    ----------
    table
        One row per summary field (index ``field``) with ``p05``, ``p50``, ``p95``, ``mean``,
        ``base`` (the unperturbed value): ``uncertainty.csv``.
    p_unguarded
        Samples of the unperturbed seam every ``spacing_m`` (points, in the analysis CRS) with
        ``seam_id``, ``along_km``, ``unguarded_base`` and ``p_unguarded``.
    draws
        One row per copy: its parameters' summary (``reach_km``) and its figures.
    parameters
        ``draws``, ``seed``, ``edge_km``, ``post_range_frac``, ``reach_km`` (low, high or None),
        ``spacing_m``.
    by_area
        With ``areas``: the breakdown of the unperturbed analysis
        (:func:`gapmap.by_area.breakdown`) and, for each of :data:`AREA_RANGE_FIELDS`, its
        ``_p05`` / ``_p50`` / ``_p95`` over the copies, e.g. ``unguarded_length_km_p05``
        (seam samples, grid cells and events count for the area holding them).
    corridors
        Per corridor of the unperturbed analysis (``corridor_id``, its ``length_km``):
        ``p_open``, the share of copies in which any of its seam samples is unguarded, and
        ``length_km_p05`` / ``_p50`` / ``_p95`` / ``_mean``, the length of the longest of the
        copy's corridors through its samples (0 in a copy where it closes; a copy's corridor
        may reach beyond it, or join a neighbour): ``corridors_uncertainty.csv``.
    """

    table: pd.DataFrame
    p_unguarded: gpd.GeoDataFrame
    draws: pd.DataFrame
    parameters: dict = field(default_factory=dict)
    by_area: pd.DataFrame | None = None
    corridors: pd.DataFrame | None = None

    def range_of(self, name: str) -> tuple[float, float]:
        """The 90% range (p05, p95) of a summary field."""
        row = self.table.loc[name]
        return float(row["p05"]), float(row["p95"])


def parse_range(text: str | float | tuple | None, option: str = "--reach-km"
                ) -> tuple[float, float] | None:
    """Read ``LOW:HIGH`` (or one number, a fixed value) into ``(low, high)``.

    >>> parse_range("1:5")
    (1.0, 5.0)
    >>> parse_range("3")
    (3.0, 3.0)
    >>> parse_range("5:1")
    Traceback (most recent call last):
    ...
    gapmap.errors.InputError: --reach-km: range 5:1 has LOW > HIGH — write it as LOW:HIGH, e.g. 1:5
    """
    if text is None:
        return None
    if isinstance(text, tuple):
        lo, hi = (float(v) for v in text)
    else:
        parts = str(text).split(":")
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            vals = []
        if len(vals) not in (1, 2) or not all(math.isfinite(v) for v in vals):
            raise InputError(option, None, f"cannot read {text!r}",
                             "give a number or a range LOW:HIGH, e.g. 1:5")
        lo, hi = vals[0], vals[-1]
    if lo > hi:
        raise InputError(option, None, f"range {lo:g}:{hi:g} has LOW > HIGH",
                         "write it as LOW:HIGH, e.g. 1:5")
    if lo < 0:
        raise InputError(option, None, f"must be ≥ 0, got {lo:g}", "give a non-negative reach")
    return lo, hi


def check_parameters(draws: int, edge_km: float = 0.0, post_range_frac: float = 0.0,
                     force: bool = False) -> None:
    """Raise :class:`InputError` for a number of draws or a perturbation gapmap cannot use.

    >>> check_parameters(200, 1.0, 0.2)
    >>> check_parameters(1)
    Traceback (most recent call last):
    ...
    gapmap.errors.InputError: --draws: needs at least 2 copies, got 1 — give --draws 2 or more (200 is the default)
    """
    if not isinstance(draws, (int, np.integer)) or draws < 2:
        raise InputError("--draws", None, f"needs at least 2 copies, got {draws!r}",
                         "give --draws 2 or more (200 is the default)")
    if draws > MAX_DRAWS and not force:
        raise InputError("--draws", None, f"{draws:,} copies is more than {MAX_DRAWS:,}",
                         "give fewer, or add --force to run them anyway")
    if not (edge_km >= 0) or not math.isfinite(edge_km):
        raise InputError("--edge-km", None, f"must be ≥ 0, got {edge_km!r}",
                         "give the edge uncertainty as a non-negative distance in km")
    if not (0 <= post_range_frac <= 1):
        raise InputError("--post-range-frac", None, f"must be in [0, 1], got {post_range_frac!r}",
                         "give a fraction such as 0.2 (ranges ×0.8–1.2)")


# --------------------------------------------------------------------------------------------
# fixed points and their per-zone distances (computed once)


@dataclass(frozen=True)
class _Field:
    """Signed distances from ``n`` points to the zones that can matter there (sparse pairs).

    Pair k joins point ``point[k]`` to zone ``zone[k]`` at signed distance ``dist[k]`` (m,
    negative inside); pairs are sorted by group (side A, side B, other forces), then by point,
    so per-point minima are one ``np.minimum.reduceat`` per group.
    """

    n: int
    zone: np.ndarray
    dist: np.ndarray
    groups: tuple  # per group: (slice of pairs, points with pairs, reduceat starts)

    def minimum(self, values: np.ndarray, group: int | None) -> np.ndarray:
        """Per point, the minimum of ``values`` (one per pair) over one group (or all)."""
        if group is None:
            return np.minimum.reduce([self.minimum(values, g) for g in range(3)])
        out = np.full(self.n, np.inf)
        sl, pts, starts = self.groups[group]
        if len(pts):
            out[pts] = np.minimum.reduceat(values[sl], starts)
        return out


def _distance_field(xy: np.ndarray, geoms: np.ndarray, group: np.ndarray, margin_m: float
                    ) -> _Field:
    """Signed distances from ``xy`` to every zone that could be nearest (within the side's
    nearest distance + ``margin_m``) or could hold the point after moving by ``margin_m``."""
    n = len(xy)
    near = np.zeros((3, n))
    for g in range(3):
        polys = geoms[group == g]
        near[g] = SideDistance(polys)(xy)[0] if len(polys) else np.inf
    zs, ds, ps, gs = [], [], [], []
    for z, poly in enumerate(geoms):  # per zone (tens): the points it can matter for
        lb = _bbox_distance(xy, np.asarray(shapely.bounds(poly)))
        pts = np.flatnonzero(lb <= near[group[z]] + margin_m)
        if len(pts) == 0:
            continue
        segs = _boundary_segments(np.array([poly], dtype=object), max_len=2000.0)
        tree = shapely.STRtree(shapely.linestrings(segs.reshape(-1, 2, 2)))
        (qi, _), d = tree.query_nearest(shapely.points(xy[pts]), return_distance=True,
                                        all_matches=False)
        dist = np.empty(len(pts))
        dist[qi] = d
        shapely.prepare(poly)
        dist[shapely.contains_xy(poly, xy[pts, 0], xy[pts, 1])] *= -1
        zs.append(np.full(len(pts), z))
        ds.append(dist)
        ps.append(pts)
        gs.append(np.full(len(pts), group[z]))
    cat = (lambda parts, dt: np.concatenate(parts) if parts else np.empty(0, dt))
    zone, dist, point, grp = cat(zs, int), cat(ds, float), cat(ps, int), cat(gs, int)
    order = np.lexsort((point, grp))
    zone, dist, point, grp = zone[order], dist[order], point[order], grp[order]
    groups = []
    for g in range(3):
        lo, hi = np.searchsorted(grp, [g, g + 1])
        p = point[lo:hi]
        starts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]]) if len(p) else np.empty(0, int)
        groups.append((slice(lo, hi), p[starts], starts))
    return _Field(n, zone, dist, tuple(groups))


@dataclass(frozen=True)
class _Sight:
    """What each post sees, computed once: its viewshed over the window of its largest drawn
    range, as packed bits (one window per post, concatenated).

    ``offset[i]`` is the first bit of post ``i``'s window (-1: the post stands off the DEM or
    on nodata and sees nothing); the window's cells are rows ``row0[i]`` … ``row0[i] +
    height[i]`` and columns ``col0[i]`` … of the DEM grid ``inverse`` maps to.
    """

    bits: np.ndarray
    offset: np.ndarray
    row0: np.ndarray
    col0: np.ndarray
    height: np.ndarray
    width: np.ndarray
    inverse: Affine  # DEM CRS (x, y) → (col, row)
    crs_pair: tuple[str, str] | None  # (analysis CRS, DEM CRS) as WKT when they differ

    def seen(self, post: np.ndarray, xy: np.ndarray) -> np.ndarray:
        """Whether post ``post[k]`` sees the DEM cell holding point ``xy[k]`` (analysis CRS)."""
        if len(post) == 0:
            return np.zeros(0, bool)
        if self.crs_pair is not None:
            x, y = _transformer(*self.crs_pair).transform(xy[:, 0], xy[:, 1])
        else:
            x, y = xy[:, 0], xy[:, 1]
        x, y, inv = np.asarray(x, float), np.asarray(y, float), self.inverse
        col, row = inv.a * x + inv.b * y + inv.c, inv.d * x + inv.e * y + inv.f
        rr = np.floor(row).astype(np.int64) - self.row0[post]
        cc = np.floor(col).astype(np.int64) - self.col0[post]
        ok = (self.offset[post] >= 0) & (rr >= 0) & (rr < self.height[post]) & (cc >= 0) \
            & (cc < self.width[post])
        bit = self.offset[post] + rr * self.width[post] + cc
        out = np.zeros(len(post), bool)
        b = bit[ok]
        out[ok] = (self.bits[b >> 3] >> (7 - (b & 7))) & 1 == 1
        return out


@functools.lru_cache(maxsize=8)
def _transformer(src: str, dst: str) -> Transformer:
    return Transformer.from_crs(CRS.from_wkt(src), CRS.from_wkt(dst), always_xy=True)


def _sight(analysis, dem, max_factor: float) -> _Sight:
    """Each post's viewshed over its largest drawn range (plus one cell diagonal, as
    :func:`gapmap.viewshed.visible_from_posts` reaches), from :func:`gapmap.viewshed.coverage`
    on the DEM cut to that window."""
    import warnings

    from .terrain import Dem, as_dem
    from .viewshed import coverage

    grid = as_dem(dem)
    if grid.crs is not None and grid.crs.is_geographic:
        grid = as_dem(grid, crs=analysis.crs)  # line of sight needs metres, as viewshed does
    crs = CRS.from_user_input(analysis.crs)
    posts = analysis.posts
    same = grid.crs is None or grid.crs.equals(crs)
    pts = posts if same else posts.to_crs(grid.crs)
    xy = shapely.get_coordinates(pts.geometry.values)
    st = analysis.settings
    rng_m = posts["range_km"].to_numpy(float) * 1000.0 * max_factor
    height = (posts["height_m"].to_numpy(float) if "height_m" in posts.columns
              else np.full(len(posts), st.post_height_m))
    height = np.where(np.isfinite(height), height, st.post_height_m)
    t = grid.transform
    diag = float(np.hypot(t.a, t.e))
    h, w = grid.shape
    n = len(posts)
    offset = np.full(n, -1, np.int64)
    row0, col0 = np.zeros(n, np.int64), np.zeros(n, np.int64)
    hh, ww = np.zeros(n, np.int64), np.zeros(n, np.int64)
    radius = np.zeros(n)
    for i in range(n):  # each post's window: its largest drawn range around its cell
        col, row = (~t) @ (xy[i, 0], xy[i, 1])
        row, col = math.floor(row), math.floor(col)
        if not (0 <= row < h and 0 <= col < w) or not np.isfinite(grid.array[row, col]):
            continue
        r = rng_m[i] + diag
        hy, hx = int(r / abs(t.e)) + 1, int(r / abs(t.a)) + 1
        row0[i], col0[i] = max(row - hy, 0), max(col - hx, 0)
        hh[i], ww[i] = min(row + hy + 1, h) - row0[i], min(col + hx + 1, w) - col0[i]
        radius[i], offset[i] = r, 0
    # One coverage call per group of posts whose windows do not overlap: within a post's window
    # only that post can see anything (its view ends at its range, inside the window), so the
    # group's count there is that post's own view, cell for cell as one call per post gives
    # it; and the posts of a group run in parallel. On the sample: 268 posts in 9 groups,
    # 30.8 s → 4.1 s for this step (load 7 on 2 cores), bit for bit the same views.
    flags = [None] * n
    for members in _disjoint_groups(row0, col0, hh, ww, offset >= 0):
        r0, c0 = int(row0[members].min()), int(col0[members].min())
        r1, c1 = int((row0 + hh)[members].max()), int((col0 + ww)[members].max())
        window = Dem(grid.array[r0:r1, c0:c1], t @ Affine.translation(c0, r0), grid.crs,
                     source=grid.source)
        group = gpd.GeoDataFrame({"range_km": radius[members] / 1000.0,
                                  "height_m": height[members].astype(float)},
                                 geometry=shapely.points(xy[members]), crs=grid.crs)
        with warnings.catch_warnings():
            # the resolution check speaks once per run (gapmap.resolution), not per post
            warnings.simplefilter("ignore", ResultWarning)
            vis = coverage(window, group, target_height_m=st.target_height_m).visible
        for i in members:
            a, b = row0[i] - r0, col0[i] - c0
            flags[i] = vis[a:a + hh[i], b:b + ww[i]].ravel().astype(bool)
    chunks, at = [], 0
    for i in range(n):  # in post order, as the offsets say
        if flags[i] is None:
            offset[i] = -1
            continue
        chunks.append(flags[i])
        offset[i] = at
        at += len(flags[i])
    bits = np.packbits(np.concatenate(chunks)) if chunks else np.zeros(0, np.uint8)
    pair = None if same else (crs.to_wkt(), CRS.from_user_input(grid.crs).to_wkt())
    return _Sight(bits, offset, row0, col0, hh, ww, ~t, pair)


def _disjoint_groups(row0: np.ndarray, col0: np.ndarray, height: np.ndarray, width: np.ndarray,
                     ok: np.ndarray) -> list[np.ndarray]:
    """Posts (where ``ok``) in groups whose windows (rows ``row0`` … ``row0 + height``,
    columns likewise) overlap no other window of the group: first fit, in post order."""
    groups: list[list[int]] = []
    boxes: list[list[tuple[int, int, int, int]]] = []
    for i in np.flatnonzero(ok):
        box = (int(row0[i]), int(col0[i]), int(row0[i] + height[i]), int(col0[i] + width[i]))
        for g, held in enumerate(boxes):
            if all(box[0] >= b[2] or b[0] >= box[2] or box[1] >= b[3] or b[1] >= box[3]
                   for b in held):
                groups[g].append(int(i))
                held.append(box)
                break
        else:
            groups.append([int(i)])
            boxes.append([box])
    return [np.asarray(g, dtype=np.int64) for g in groups]


@dataclass(frozen=True)
class _Frame:
    """Everything a copy needs, computed once from the unperturbed analysis (shared by tasks)."""

    samples: np.ndarray  # (K, 2) seam samples
    normals: np.ndarray  # (K, 2)
    part: np.ndarray  # (K,) seam part of each sample
    seg_scale: np.ndarray  # (K,) geodesic/planar factor of the segment k → k+1 (NaN at part ends)
    node_start: np.ndarray  # (P,) node id of each part's first / last point
    node_end: np.ndarray
    offsets: np.ndarray  # (J,) transect offsets (m)
    transect: _Field  # at samples[k] + offsets[j] * normals[k], point index k * J + j
    grid: _Field  # gap-area grid
    grid_xy: np.ndarray  # (G, 2) its points
    grid_cell_km2: np.ndarray
    grid_cell_m: float
    events: _Field | None  # incidents used and in the study area
    events_xy: np.ndarray | None  # their points
    events_base_gap: np.ndarray | None
    zone_group: np.ndarray
    zone_reach_m: np.ndarray  # per-zone reach of the unperturbed analysis (m)
    zone_own_reach: np.ndarray  # bool: zone carries its own reach_km
    post_xy: np.ndarray
    post_range_m: np.ndarray
    sight: _Sight | None  # line of sight of the posts (visibility), or None
    study: shapely.Geometry
    max_width_m: float
    min_length_km: float
    base_gap_km2: float
    study_km2: float
    events_in_study: int
    has_incidents: bool


def _seam_samples(seam: gpd.GeoDataFrame, spacing: float, crs: CRS, tangent_m: float = 1.0):
    parts, seam_id = [], []
    for sid, g in zip(seam["corridor_id"] if "corridor_id" in seam.columns else seam.index,
                      seam.geometry.values):
        for p in shapely.get_parts(shapely.line_merge(g) if g.geom_type != "LineString" else g):
            if p.geom_type == "LineString" and p.length > 0:
                parts.append(p)
                seam_id.append(sid)
    parts = np.array(parts, dtype=object)
    if len(parts) == 0:
        z = np.empty((0, 2))
        return parts, z, z, np.empty(0, int), np.empty(0), np.empty(0), np.empty(0, object)
    lengths = shapely.length(parts)
    counts = np.maximum(np.ceil(lengths / spacing).astype(int), 1) + 1
    owner = np.repeat(np.arange(len(parts)), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    k = np.arange(counts.sum()) - np.repeat(starts, counts)
    along = np.minimum(k * spacing, lengths[owner])
    xy = shapely.get_coordinates(shapely.line_interpolate_point(parts[owner], along))
    # Each transect runs normal to the seam's direction over ±tangent_m: at the seam's kinks
    # (its Voronoi ridges turn sharply) transects normal to the local 1 m tangent fan out on
    # one side and cross on the other, and a copy's chain of crossings a few km off zigzags.
    # Over ±edge_km they turn gradually: on the sample (edges ±2 km) three copies' seam and
    # unguarded lengths came within 2% of analyze() on the buffered zones, against 3–15%
    # long with the 1 m tangent.
    h = np.minimum(tangent_m, lengths[owner] / 4)
    a = shapely.get_coordinates(shapely.line_interpolate_point(parts[owner], np.maximum(along - h, 0)))
    b = shapely.get_coordinates(shapely.line_interpolate_point(
        parts[owner], np.minimum(along + h, lengths[owner])))
    t = b - a
    t /= np.maximum(np.hypot(*t.T), 1e-12)[:, None]
    normals = np.column_stack([-t[:, 1], t[:, 0]])
    # geodesic / planar length of each chord between consecutive samples (projection scale)
    tr = Transformer.from_crs(crs, 4326, always_xy=True)
    lon, lat = tr.transform(xy[:, 0], xy[:, 1])
    scale = np.full(len(xy), np.nan)
    same = owner[:-1] == owner[1:]
    i = np.flatnonzero(same)
    planar = np.hypot(*(xy[i + 1] - xy[i]).T)
    geo = _GEOD.inv(lon[i], lat[i], lon[i + 1], lat[i + 1])[2]
    scale[i] = np.where(planar > 0, geo / np.maximum(planar, 1e-12), 1.0)
    return parts, xy, normals, owner, along, scale, np.asarray(seam_id, dtype=object)[owner]


def _nodes(parts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ends = np.vstack([shapely.get_coordinates(shapely.get_point(parts, 0)),
                      shapely.get_coordinates(shapely.get_point(parts, -1))])
    _, inv = np.unique(np.round(ends, 1), axis=0, return_inverse=True)
    inv = inv.ravel()
    return inv[: len(parts)], inv[len(parts):]


def _grid(study: shapely.Geometry, crs: CRS, n_target: int):
    area = study.area
    if area <= 0:
        return np.empty((0, 2)), np.empty(0)
    cell = math.sqrt(area / n_target)
    x0, y0, x1, y1 = study.bounds
    xs = np.arange(x0 + cell / 2, x1, cell)
    ys = np.arange(y0 + cell / 2, y1, cell)
    gx, gy = np.meshgrid(xs, ys)
    gx, gy = gx.ravel(), gy.ravel()
    shapely.prepare(study)
    inside = shapely.contains_xy(study, gx, gy)
    gx, gy = gx[inside], gy[inside]
    lon, lat = Transformer.from_crs(crs, 4326, always_xy=True).transform(gx, gy)
    factors = Proj(crs).get_factors(lon, lat)
    return np.column_stack([gx, gy]), cell * cell / 1e6 / np.asarray(factors.areal_scale)


def _frame(analysis, edge_km: float, reach: tuple | None, spacing_m: float,
           grid_points: int = _GRID_POINTS, sight: _Sight | None = None
           ) -> tuple[_Frame, np.ndarray, np.ndarray]:
    crs = CRS.from_user_input(analysis.crs)
    settings = analysis.settings
    zones = analysis.zones
    side = zones["side"].to_numpy(dtype=object)
    group = np.where(side == "a", 0, np.where(side == "b", 1, 2))
    own = zones["reach_km"].notna().to_numpy()
    side_reach = np.where(group == 0, settings.reach_a, np.where(group == 1, settings.reach_b, 0.0))
    reach_m = np.where(own, zones["reach_km"].to_numpy(dtype=float, na_value=0.0),
                       side_reach) * 1000.0
    geoms = zones.geometry.values
    edge_m = edge_km * 1000.0
    hi_reach = max(float(reach_m.max(initial=0.0)), (reach[1] * 1000.0) if reach else 0.0)
    margin = 2 * edge_m + hi_reach + 1.0

    parts, xy, normals, owner, along, scale, seam_id = _seam_samples(
        analysis.seam, spacing_m, crs, tangent_m=max(edge_m, 1.0))
    half = 4 * edge_m
    offsets = np.linspace(-half, half, 2 * _TRANSECT_HALF + 1) if half > 0 else np.zeros(1)
    pts = (xy[:, None, :] + offsets[None, :, None] * normals[:, None, :]).reshape(-1, 2)
    transect = _distance_field(pts, geoms, group, margin)

    study = analysis.study_area
    gxy, cell_km2 = _grid(study, crs, grid_points)
    # Only grid points that a copy can move into or out of the gap matter (the area is counted
    # as a change from the exact unperturbed gap): those within the edge and reach changes of a
    # zone, or of the width limit. On the sample that is a fifth of the grid for edges ±2 km.
    cell = math.sqrt(float(cell_km2.max(initial=0.0))) * 1000.0 * 1.01
    lo_reach = min(float(reach_m.min(initial=0.0)), reach[0] * 1000.0 if reach else np.inf)
    band = edge_m + hi_reach - min(lo_reach, 0.0) + cell
    near = [SideDistance(geoms[group == g])(gxy)[0] if (group == g).any()
            else np.full(len(gxy), np.inf) for g in range(3)]
    keep = (np.minimum.reduce(near) <= band) | (
        np.abs(near[0] + near[1] - settings.max_width_km * 1000.0) <= 2 * edge_m + 2 * cell)
    gxy, cell_km2 = gxy[keep], cell_km2[keep]
    grid = _distance_field(gxy, geoms, group, margin)

    events = events_base = exy = None
    n_study = 0
    inc = analysis.incidents
    has_inc = inc is not None and "in_gap" in getattr(inc, "columns", [])
    if has_inc:
        pts_inc = inc.to_crs(crs) if inc.crs is not None else inc
        keep = pts_inc["used"].to_numpy(bool) & pts_inc["in_study_area"].to_numpy(bool)
        exy = shapely.get_coordinates(pts_inc.geometry.values[keep])
        events = _distance_field(exy, geoms, group, margin)
        events_base = pts_inc["in_gap"].to_numpy(bool)[keep]
        n_study = int(keep.sum())
    posts = analysis.posts
    post_xy = shapely.get_coordinates(posts.geometry.values) if posts is not None and len(posts) \
        else np.empty((0, 2))
    post_r = posts["range_km"].to_numpy(float) * 1000.0 if len(post_xy) else np.empty(0)
    ns, ne = _nodes(parts) if len(parts) else (np.empty(0, int), np.empty(0, int))
    frame = _Frame(
        samples=xy, normals=normals, part=owner, seg_scale=scale, node_start=ns, node_end=ne,
        offsets=offsets, transect=transect, grid=grid, grid_xy=gxy, grid_cell_km2=cell_km2,
        grid_cell_m=max(cell / 1.01, 1.0), events=events, events_xy=exy, events_base_gap=events_base,
        zone_group=group,
        zone_reach_m=reach_m, zone_own_reach=own, post_xy=post_xy, post_range_m=post_r,
        sight=sight,
        study=study, max_width_m=settings.max_width_km * 1000.0,
        min_length_km=settings.min_length_km,
        base_gap_km2=float(analysis.summary.get("gap_area_km2", 0.0)),
        study_km2=float(geodesic_area_km2([study], crs)[0]) if not study.is_empty else 0.0,
        events_in_study=n_study, has_incidents=has_inc)
    return frame, along, seam_id


# --------------------------------------------------------------------------------------------
# one copy


def _crossings(fr: _Frame, e: np.ndarray, reach_m: np.ndarray):
    """The copy's seam point on each transect: (valid, xy, half-width D, covered by zones)."""
    tf = fr.transect
    v = tf.dist - e[tf.zone]
    da, db, dn = (tf.minimum(v, g) for g in (0, 1, 2))
    ga = tf.minimum(v - reach_m[tf.zone], 0)
    gb = tf.minimum(v - reach_m[tf.zone], 1)
    k, j = len(fr.samples), len(fr.offsets)
    f = (da - db).reshape(k, j)
    centre = j // 2
    if j == 1:  # edges fixed: the seam stays where it is
        ok = np.isfinite(f[:, 0])
        lo = np.zeros(k, int)
        frac = np.zeros(k)
    else:
        s = np.sign(f)
        change = (s[:, :-1] * s[:, 1:] <= 0) & np.isfinite(f[:, :-1]) & np.isfinite(f[:, 1:]) \
            & ~((s[:, :-1] == 0) & (s[:, 1:] == 0))
        dist_c = np.abs(np.arange(j - 1) + 0.5 - centre)
        score = np.where(change, dist_c[None, :], np.inf)
        lo = np.argmin(score, axis=1)
        ok = np.isfinite(score[np.arange(k), lo])
        f0, f1 = f[np.arange(k), lo], f[np.arange(k), lo + 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(f1 != f0, f0 / (f0 - f1), 0.0)
        frac = np.clip(np.nan_to_num(frac), 0.0, 1.0)
    idx0 = np.arange(k) * j + lo
    idx1 = np.minimum(idx0 + (1 if j > 1 else 0), k * j - 1)

    def at(a):
        a0, a1 = a[idx0], a[idx1]
        with np.errstate(invalid="ignore"):
            return np.where(np.isfinite(a0) & np.isfinite(a1), a0 + frac * (a1 - a0), a0)

    t = fr.offsets[lo] + frac * (fr.offsets[np.minimum(lo + 1, j - 1)] - fr.offsets[lo]) \
        if j > 1 else np.zeros(k)
    xy = fr.samples + t[:, None] * fr.normals
    d, n_other = at(da), at(dn)
    ok &= np.isfinite(d) & (2 * d <= fr.max_width_m) & ~(n_other < 0)
    if ok.any() and not fr.study.is_empty:
        # a seam end on the border stays in, whatever rounding moves it by (≤ 1 mm)
        inside = shapely.contains_xy(fr.study, xy[:, 0], xy[:, 1])
        edge = ok & ~inside
        if edge.any():
            inside[edge] = shapely.dwithin(fr.study, shapely.points(xy[edge]), 1e-3)
        ok &= inside
    covered = (at(ga) <= 0) | (at(gb) <= 0) | (d <= 0)
    return ok, xy, np.maximum(d, 0.0), covered


def _post_cover(fr: _Frame, xy: np.ndarray, factor: np.ndarray) -> np.ndarray:
    out = np.zeros(len(xy), bool)
    if len(fr.post_xy) == 0 or len(xy) == 0:
        return out
    r = fr.post_range_m * factor
    pairs = cKDTree(fr.post_xy).sparse_distance_matrix(cKDTree(xy), float(r.max()),
                                                       output_type="ndarray")
    hit = pairs["v"] <= r[pairs["i"]]
    post, point = pairs["i"][hit], pairs["j"][hit]
    if fr.sight is not None:  # within range and in the post's line of sight
        seen = fr.sight.seen(post, xy[point])
        point = point[seen]
    out[point] = True
    return out


def _runs(fr: _Frame, bad: np.ndarray, share: np.ndarray, split: np.ndarray | None = None
          ) -> tuple[np.ndarray, np.ndarray]:
    """The copy's corridors: runs of uncovered samples, joined at junctions of seam branches.

    Returns the length (km) of each corridor and, per sample, the corridor holding it (-1 for
    covered samples). With ``split`` (a label per sample, e.g. its area) runs also break where
    the label changes and join at a junction only with runs of the same label: the pieces of
    the corridors inside each area.
    """
    k = len(bad)
    label = np.full(k, -1)
    if not bad.any():
        return np.empty(0), label
    prev_same = np.r_[False, fr.part[1:] == fr.part[:-1]]
    if split is not None:
        prev_same &= np.r_[False, split[1:] == split[:-1]]
    start = bad & ~(prev_same & np.r_[False, bad[:-1]])
    run = np.cumsum(start) - 1
    run = np.where(bad, run, -1)
    nrun = int(start.sum())
    length = np.bincount(run[bad], weights=share[bad], minlength=nrun)
    # join runs that reach a shared part end (a junction of seam branches)
    first = np.r_[True, fr.part[1:] != fr.part[:-1]]
    last = np.r_[fr.part[1:] != fr.part[:-1], True]
    node = np.concatenate([fr.node_start[fr.part[first & bad]], fr.node_end[fr.part[last & bad]]])
    rid = np.concatenate([run[first & bad], run[last & bad]])
    comp = np.arange(nrun)
    if len(node):
        if split is not None:  # a junction joins only the pieces in one area
            lab_at = np.concatenate([split[first & bad], split[last & bad]])
            _, node = np.unique(np.column_stack([node, lab_at]), axis=0, return_inverse=True)
            node = node.ravel()
        nn = int(node.max()) + 1
        g = coo_matrix((np.ones(len(node)), (rid, node + nrun)), shape=(nrun + nn, nrun + nn))
        _, lab = connected_components(g, directed=False)
        _, comp = np.unique(lab[:nrun], return_inverse=True)
        length = np.bincount(comp, weights=length)
    label[bad] = comp[run[bad]]
    return length, label


def _gap_margin(fld: _Field, e: np.ndarray, reach_m: np.ndarray, max_w: float) -> np.ndarray:
    """Signed distance (m, about) from each point to the copy's gap boundary, > 0 inside."""
    v = fld.dist - e[fld.zone]
    outside = fld.minimum(v - reach_m[fld.zone], None)
    width = fld.minimum(v, 0) + fld.minimum(v, 1)
    return np.minimum(outside, (max_w - width) / 2)


def _gap_state(fld: _Field, e: np.ndarray, reach_m: np.ndarray, max_w: float) -> np.ndarray:
    return _gap_margin(fld, e, reach_m, max_w) > 0


def _gap_fraction(fr: _Frame, e: np.ndarray, reach_m: np.ndarray) -> np.ndarray:
    """Share of each grid cell in the copy's gap: a boundary at signed distance m from the
    cell's centre leaves 1/2 + m/cell of it inside (exact for a boundary along the grid; on
    the strips-and-wedge test scene this halves the area error of counting whole cells)."""
    m = _gap_margin(fr.grid, e, reach_m, fr.max_width_m)
    return np.clip(0.5 + m / fr.grid_cell_m, 0.0, 1.0)


@dataclass
class _Parts:
    """What the breakdowns of one copy need beyond its summary figures."""

    seam_km: np.ndarray  # seam km each sample holds (0 where the copy has no seam)
    runs: np.ndarray  # length (km) of each of the copy's corridors
    run_of: np.ndarray  # per sample, its corridor in ``runs`` (-1: covered)
    gap_delta_km2: np.ndarray | None  # per grid cell, the change of gap area from the base
    in_gap: np.ndarray | None  # per event (used, in the study area), in the copy's gap


def _copy(fr: _Frame, e: np.ndarray, reach_m: np.ndarray, factor: np.ndarray,
          base_states=None) -> tuple[dict, np.ndarray, np.ndarray, _Parts]:
    """Summary figures of one copy, its per-sample unguarded state, unguarded km per sample
    and the parts the breakdowns by area and by corridor need."""
    ok, xy, d, covered = _crossings(fr, e, reach_m)
    covered |= _post_cover(fr, xy, factor)
    nxt = np.r_[fr.part[1:] == fr.part[:-1], False]
    seg_ok = nxt & ok & np.r_[ok[1:], False]
    seg_km = np.zeros(len(ok))
    i = np.flatnonzero(seg_ok)
    seg_km[i] = np.hypot(*(xy[i + 1] - xy[i]).T) * fr.seg_scale[i] / 1000.0
    seg_w = np.zeros(len(ok))
    seg_w[i] = (d[i] + d[i + 1]) / 1000.0  # mean of the two widths 2·D
    bad = ok & ~covered
    held = 0.5 * (seg_km + np.r_[0.0, seg_km[:-1]])  # each sample holds half of each segment
    share = np.where(bad, held, 0.0)
    seam_km = float(seg_km.sum())
    ung_km = float(share.sum())
    runs, run_of = _runs(fr, bad, share)
    major = runs[runs >= fr.min_length_km]
    out = {
        "seam_length_km": seam_km,
        "unguarded_length_km": ung_km,
        "unguarded_share": ung_km / seam_km if seam_km > 0 else math.nan,
        "corridors": int(len(major)),
        "minor_corridors": int(len(runs) - len(major)),
        "longest_corridor_km": float(major.max()) if len(major) else 0.0,
        "width_mean_km": float((seg_w * seg_km).sum() / seam_km) if seam_km > 0 else math.nan,
    }
    parts = _Parts(held, runs, run_of, None, None)
    if base_states is not None:
        grid_b, ev_b = base_states
        parts.gap_delta_km2 = fr.grid_cell_km2 * (_gap_fraction(fr, e, reach_m) - grid_b)
        delta = parts.gap_delta_km2.sum()
        out["gap_area_km2"] = max(fr.base_gap_km2 + float(delta), 0.0)
        if fr.has_incidents:
            st = _gap_state(fr.events, e, reach_m, fr.max_width_m)
            in_gap = np.where(st != ev_b, st, fr.events_base_gap)
            parts.in_gap = in_gap
            n_gap = int(in_gap.sum())
            n_rest = fr.events_in_study - n_gap
            a_gap, a_rest = out["gap_area_km2"], max(fr.study_km2 - out["gap_area_km2"], 0.0)
            out["incidents_in_gap"] = n_gap
            out["exploitation_ratio"] = (n_gap / n_rest * a_rest / a_gap
                                         if n_rest > 0 and a_gap > 0 and a_rest > 0 else math.nan)
    return out, bad, share, parts


def _reach_of(fr: _Frame, reach_km: float | None) -> np.ndarray:
    if reach_km is None:
        return fr.zone_reach_m
    drawn = np.where(fr.zone_group < 2, reach_km * 1000.0, 0.0)
    return np.where(fr.zone_own_reach, fr.zone_reach_m, drawn)


def _base_states(fr: _Frame):
    zero = np.zeros(len(fr.zone_group))
    grid = _gap_fraction(fr, zero, fr.zone_reach_m)
    ev = _gap_state(fr.events, zero, fr.zone_reach_m, fr.max_width_m) if fr.has_incidents \
        else None
    return grid, ev


@dataclass(frozen=True)
class _Labels:
    """Which area holds each seam sample, grid cell and event; which base corridor each
    sample belongs to (-1: none)."""

    sample_area: np.ndarray | None
    grid_area: np.ndarray | None
    event_area: np.ndarray | None
    n_areas: int
    sample_corridor: np.ndarray | None
    n_corridors: int


#: Per-area fields each copy measures (``by_area.csv`` gets ``_p05``/``_p50``/``_p95`` of each).
AREA_RANGE_FIELDS = ["seam_length_km", "unguarded_length_km", "unguarded_share",
                     "longest_corridor_km", "gap_area_km2", "incidents_in_gap"]


def _area_figures(fr: _Frame, lab: _Labels, bad: np.ndarray, share: np.ndarray,
                  parts: _Parts) -> np.ndarray:
    """One copy's figures per area: rows of :data:`AREA_RANGE_FIELDS` (the gap area as the
    change from the base, lengths before the seam-length correction)."""
    n, sa = lab.n_areas, lab.sample_area
    out = np.full((len(AREA_RANGE_FIELDS), n), np.nan)
    out[0] = np.bincount(sa, weights=parts.seam_km, minlength=n)
    out[1] = np.bincount(sa, weights=share, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[2] = np.where(out[0] > 0, out[1] / out[0], np.nan)
    # longest piece of a corridor (≥ the minimum length as a whole) inside each area
    longest = np.zeros(n)
    if bad.any():
        pieces, piece_of = _runs(fr, bad, share, split=sa)
        major = np.zeros(len(pieces), bool)
        i = np.flatnonzero(bad)
        major[piece_of[i]] = parts.runs[parts.run_of[i]] >= fr.min_length_km
        area_of_piece = np.zeros(len(pieces), int)
        area_of_piece[piece_of[i]] = sa[i]
        np.maximum.at(longest, area_of_piece[major], pieces[major])
    out[3] = longest
    if parts.gap_delta_km2 is not None and lab.grid_area is not None:
        out[4] = np.bincount(lab.grid_area, weights=parts.gap_delta_km2, minlength=n)
    if parts.in_gap is not None and lab.event_area is not None:
        out[5] = np.bincount(lab.event_area, weights=parts.in_gap.astype(float), minlength=n)
    return out


def _corridor_figures(lab: _Labels, bad: np.ndarray, parts: _Parts
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Per base corridor: open in this copy (a sample of it unguarded) and the length (km) of
    the longest of the copy's corridors through its samples (0 when closed)."""
    nc, sc = lab.n_corridors, lab.sample_corridor
    hit = bad & (sc >= 0)
    is_open = np.bincount(sc[hit], minlength=nc) > 0
    length = np.zeros(nc)
    np.maximum.at(length, sc[hit], parts.runs[parts.run_of[hit]])
    return is_open, length


def _batch(shared, item):
    """Run one batch of copies (a task for the engine): figures and unguarded counts."""
    fr, base_states, lab = shared
    e_rows, f_rows, reaches = item
    rows, counts = [], np.zeros(len(fr.samples))
    per_area, per_corridor = [], []
    for e, f, r in zip(e_rows, f_rows, reaches):
        out, bad, share, parts = _copy(fr, e, _reach_of(fr, None if np.isnan(r) else r), f,
                                       base_states)
        out["reach_km"] = r
        rows.append(out)
        counts += bad
        if lab.sample_area is not None:
            per_area.append(_area_figures(fr, lab, bad, share, parts))
        if lab.sample_corridor is not None:
            per_corridor.append(_corridor_figures(lab, bad, parts))
    return rows, counts, per_area, per_corridor


def simulate(analysis, *, draws: int = 200, edge_km: float = 0.0, post_range_frac: float = 0.0,
             reach_km: tuple[float, float] | str | None = None, seed: int = 0,
             spacing_m: float | None = None, areas: gpd.GeoDataFrame | None = None,
             by: str | None = None, run_tasks: Callable | None = None, force: bool = False,
             grid_points: int = _GRID_POINTS, visibility: bool = False, dem=None,
             progress: Callable[[str], None] | None = None) -> Uncertainty:
    """The analysis over ``draws`` perturbed copies of its inputs.

    Parameters
    ----------
    analysis
        The unperturbed :class:`gapmap.Analysis` (with incidents for the incident fields).
    draws
        Number of copies (2 to 100,000; more with ``force=True``).
    edge_km
        Each zone's boundary moves by ``U[-edge_km, edge_km]`` km, one draw per zone per copy.
    post_range_frac
        Each post's range is multiplied by ``U[1 - F, 1 + F]``.
    reach_km
        ``(low, high)`` or ``"LOW:HIGH"``: the reach of both sides is drawn from ``U[low, high]``
        per copy (zones with their own ``reach_km`` keep it); ``None`` keeps the analysis' reach.
    seed
        Seed of the random draws: the same seed gives the same result however it runs.
    spacing_m
        Seam sampling interval [the analysis' ``spacing_m``].
    areas, by
        A study-area layer and one of its fields: adds :attr:`Uncertainty.by_area`.
    run_tasks
        A task runner with the signature of ``gapmap.engine.run_tasks`` (``fn(shared, item)``
        for each item); ``None`` runs in-process.
    force
        Allow more than :data:`MAX_DRAWS` copies.
    grid_points
        Points of the study-area grid on which the gap area's changes are measured.
    visibility
        A post covers a copy's seam point only when it also sees it over the DEM (line of
        sight, observer and target heights of the analysis), as ``gapmap metrics
        --visibility`` does; give the analysis of that run (computed with visibility).
    dem
        The DEM for ``visibility`` [the analysis' own ``dem``].
    progress
        Called with the name of each stage.

    Returns
    -------
    Uncertainty
    """
    step = progress or (lambda name: None)
    reach = parse_range(reach_km) if reach_km is not None else None
    check_parameters(draws, float(edge_km), float(post_range_frac), force)
    spacing = float(spacing_m or analysis.settings.spacing_m)
    sight = None
    if visibility:
        dem = dem if dem is not None else analysis.dem
        if dem is None:
            raise InputError("--visibility", None, "visibility needs a DEM", "add --dem DEM.tif")
        if analysis.posts is not None and len(analysis.posts):
            step("line of sight")
            sight = _sight(analysis, dem, 1.0 + float(post_range_frac))
    step("sampling")
    fr, along, seam_id = _frame(analysis, float(edge_km), reach, spacing, grid_points, sight)
    base_states = _base_states(fr)
    nz, npost = len(fr.zone_group), len(fr.post_xy)
    base_out, base_bad, _, base_parts = _copy(fr, np.zeros(nz), fr.zone_reach_m, np.ones(npost))
    area_names = None
    area_labels = (None, None, None)
    if areas is not None and by is not None:
        area_labels, area_names = _area_labels(fr, areas, by, analysis.crs)
    corr_of, corr_ids = _corridor_labels(fr, analysis, base_bad, base_parts)
    lab = _Labels(*area_labels, n_areas=len(area_names or ()), sample_corridor=corr_of,
                  n_corridors=len(corr_ids))

    rng = np.random.default_rng(seed)
    e_all = rng.uniform(-edge_km * 1000.0, edge_km * 1000.0, (draws, nz)) if edge_km > 0 \
        else np.zeros((draws, nz))
    f_all = rng.uniform(1 - post_range_frac, 1 + post_range_frac, (draws, npost)) \
        if post_range_frac > 0 else np.ones((draws, npost))
    r_all = rng.uniform(reach[0], reach[1], draws) if reach is not None \
        else np.full(draws, np.nan)
    items = [(e_all[s:s + _BATCH], f_all[s:s + _BATCH], r_all[s:s + _BATCH])
             for s in range(0, draws, _BATCH)]
    step("draws")
    shared = (fr, base_states, lab)
    results = run_tasks(_batch, items, shared=shared) if run_tasks is not None \
        else [_batch(shared, it) for it in items]
    rows = [r for res in results for r in res[0]]
    counts = np.sum([res[1] for res in results], axis=0)
    table_draws = pd.DataFrame(rows)
    # Chords between samples run slightly inside a bending seam (0.18% short on the sample):
    # scale every length by the unperturbed seam's exact / sampled ratio.
    exact = float(analysis.summary.get("seam_length_km", math.nan))
    ratio = 1.0
    if base_out["seam_length_km"] > 0 and exact > 0:
        ratio = exact / base_out["seam_length_km"]
        for c in ("seam_length_km", "unguarded_length_km", "longest_corridor_km"):
            table_draws[c] = table_draws[c] * ratio
    table = _table(table_draws, analysis.summary)
    samples = gpd.GeoDataFrame({
        "seam_id": seam_id, "along_km": along / 1000.0,
        "unguarded_base": base_bad, "p_unguarded": counts / draws,
    }, geometry=shapely.points(fr.samples), crs=analysis.crs)
    by_area = None
    if area_names is not None:
        per = np.stack([a for res in results for a in res[2]])  # (draws, fields, areas)
        per[:, [0, 1, 3]] *= ratio
        by_area = _by_area_table(analysis, areas, by, area_names, per)
    corridors = _corridor_table(analysis, corr_ids,
                                [c for res in results for c in res[3]], ratio)
    params = {"draws": int(draws), "seed": int(seed), "edge_km": float(edge_km),
              "post_range_frac": float(post_range_frac),
              "reach_km": None if reach is None else list(reach), "spacing_m": spacing,
              "visibility": bool(visibility)}
    log.info("%d copies: %d seam samples, base sampled seam %.1f km", draws, len(fr.samples),
             base_out["seam_length_km"])
    return Uncertainty(table=table, p_unguarded=samples, draws=table_draws, parameters=params,
                       by_area=by_area, corridors=corridors)


def _table(draws: pd.DataFrame, summary: dict) -> pd.DataFrame:
    names = [c for c in UNCERTAINTY_FIELDS if c in draws.columns]
    rows = []
    for c in names:
        vals = draws[c].to_numpy(dtype=float)
        fin = vals[np.isfinite(vals)]
        q = np.percentile(fin, [5, 50, 95]) if len(fin) else [math.nan] * 3
        base = summary.get(c, math.nan)
        rows.append({"field": c, "p05": q[0], "p50": q[1], "p95": q[2],
                     "mean": float(fin.mean()) if len(fin) else math.nan,
                     "base": float(base) if base is not None else math.nan})
    return pd.DataFrame(rows).set_index("field")


def _area_labels(fr: _Frame, areas: gpd.GeoDataFrame, by: str, crs):
    """The area of each seam sample, grid cell and event (indices into the area names)."""
    from .by_area import check_field

    check_field(areas, by)
    a = areas.to_crs(crs) if areas.crs is not None else areas
    vals = a[by].astype(object).where(a[by].notna(), "(none)").to_numpy()
    names = list(pd.unique(vals))
    index = np.array([names.index(v) for v in vals])
    tree = shapely.STRtree(a.geometry.values)

    def label(xy: np.ndarray | None):
        if xy is None:
            return None
        out = np.zeros(len(xy), int)
        if len(xy):
            # Each point counts for the nearest area (0 m for the one holding it): points in
            # the slivers traced boundaries leave between neighbours still count once.
            pi, ai = tree.query_nearest(shapely.points(xy), all_matches=False)
            out[pi] = index[ai]
        return out

    events = fr.events_xy if fr.has_incidents else None
    return (label(fr.samples), label(fr.grid_xy), label(events)), names


def _corridor_labels(fr: _Frame, analysis, base_bad: np.ndarray, parts: _Parts):
    """Which corridor of the analysis each seam sample belongs to (-1: none), and the ids.

    A run of unguarded samples of the unperturbed copy belongs to the corridor most of its
    samples lie on (within 1 m: samples are points of the seam); shorter stretches (the
    analysis' minor corridors) belong to none.
    """
    cor = analysis.corridors
    ids = cor["corridor_id"].astype(str).tolist() if "corridor_id" in cor.columns \
        else [f"C{i + 1}" for i in range(len(cor))]
    out = np.full(len(fr.samples), -1)
    i = np.flatnonzero(base_bad)
    if len(cor) == 0 or len(i) == 0:
        return out, ids
    tree = shapely.STRtree(cor.geometry.values)
    (pi, ci), d = tree.query_nearest(shapely.points(fr.samples[i]), return_distance=True,
                                     all_matches=False)
    near = np.full(len(i), -1)
    near[pi[d <= 1.0]] = ci[d <= 1.0]
    run = parts.run_of[i]
    has = near >= 0
    if has.any():
        # the corridor most samples of each run lie on
        pairs, n = np.unique(np.column_stack([run[has], near[has]]), axis=0, return_counts=True)
        order = np.lexsort((-n, pairs[:, 0]))
        pairs = pairs[order]
        first = np.r_[True, pairs[1:, 0] != pairs[:-1, 0]]
        best = np.full(len(parts.runs), -1)
        best[pairs[first, 0]] = pairs[first, 1]
        out[i] = best[run]
    return out, ids


def _by_area_table(analysis, areas, by, names, per: np.ndarray) -> pd.DataFrame:
    """The breakdown of the analysis with the 90% ranges (and medians) of each field over the
    copies: ``<field>_p05``, ``<field>_p50``, ``<field>_p95``."""
    from .by_area import breakdown

    base = breakdown(analysis, areas, by)
    extra = {by: names}
    key = base[by].astype(object)
    for k, name in enumerate(AREA_RANGE_FIELDS):
        vals = per[:, k, :]
        if name == "gap_area_km2":  # the copies measure the change from the exact base area
            b = np.array([float(base.loc[key == n, name].sum()) for n in names])
            vals = np.maximum(vals + b[None, :], 0.0)
        if not np.isfinite(vals).any():
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an area without seam: NaN share
            q = np.nanpercentile(vals, [5, 50, 95], axis=0)
        for p, row in zip(("p05", "p50", "p95"), q):
            extra[f"{name}_{p}"] = row
    return base.merge(pd.DataFrame(extra), on=by, how="left")


#: Columns of ``corridors_uncertainty.csv``.
CORRIDOR_RANGE_COLUMNS = ["corridor_id", "length_km", "p_open", "length_km_p05",
                          "length_km_p50", "length_km_p95", "length_km_mean"]


def _corridor_table(analysis, ids: list[str], per: list, ratio: float) -> pd.DataFrame:
    """Per corridor of the analysis: the share of copies in which it stays open and its
    length over the copies (0 in a copy where it closes)."""
    base = analysis.corridors["length_km"].to_numpy(float) if len(ids) else np.empty(0)
    if not per or not len(ids):
        return pd.DataFrame({c: pd.Series(dtype=object if c == "corridor_id" else float)
                             for c in CORRIDOR_RANGE_COLUMNS})
    is_open = np.stack([o for o, _ in per])
    length = np.stack([g for _, g in per]) * ratio
    q = np.percentile(length, [5, 50, 95], axis=0)
    return pd.DataFrame({"corridor_id": ids, "length_km": base, "p_open": is_open.mean(axis=0),
                         "length_km_p05": q[0], "length_km_p50": q[1], "length_km_p95": q[2],
                         "length_km_mean": length.mean(axis=0)})


def corridor_ranges(result) -> dict[str, tuple[str, str]]:
    """Per corridor id, the 90% range of its length and the share of copies in which it stays
    open, as text (for the report's corridor table).

    ``result`` is an :class:`Uncertainty` (or anything with a ``corridors`` table as in
    ``corridors_uncertainty.csv``); without one, an empty dict.

    >>> t = pd.DataFrame({"corridor_id": ["C1"], "p_open": [0.875], "length_km_p05": [0.0],
    ...                   "length_km_p95": [100.03]})
    >>> corridor_ranges(Uncertainty(pd.DataFrame(), None, pd.DataFrame(), corridors=t))
    {'C1': ('0.0–100.0', '88%')}
    """
    table = getattr(result, "corridors", None)
    need = {"corridor_id", "p_open", "length_km_p05", "length_km_p95"}
    if table is None or not len(table) or not need <= set(table.columns):
        return {}
    return {str(r.corridor_id): (f"{r.length_km_p05:,.1f}–{r.length_km_p95:,.1f}",
                                 f"{100 * r.p_open:.0f}%")
            for r in table.itertuples(index=False)}


#: Terminal labels of the figures that carry a range: (label, unit, decimals; 3 = 3 digits).
_LABELS = {"seam_length_km": ("seam length", "km", 1),
           "unguarded_length_km": ("unguarded", "km", 1),
           "unguarded_share": ("unguarded share", "%", 1),
           "corridors": ("corridors", "", 0),
           "longest_corridor_km": ("longest corridor", "km", 1),
           "width_mean_km": ("mean seam width", "km", 1),
           "gap_area_km2": ("gap area", "km²", 0),
           "incidents_in_gap": ("incidents in the gap", "", 0),
           "exploitation_ratio": ("exploitation ratio", "", 3)}


def _fmt(v: float, unit: str, nd: int) -> str:
    v = v * (100.0 if unit == "%" else 1.0)
    return f"{v:.3g}" if nd == 3 else f"{v:,.{nd}f}"


def format_ranges(summary: dict, result: Uncertainty, source: str = "") -> str:
    """The 90% ranges of an uncertainty run under a summary, for the terminal (``gapmap
    metrics --uncertainty DIR``), with a note when the run perturbed another analysis (its
    unperturbed seam, unguarded length or gap area differs from ``summary``'s by over 0.1%).

    >>> t = pd.DataFrame({"p05": [470.9], "p95": [576.7], "base": [505.7]},
    ...                  index=pd.Index(["unguarded_length_km"], name="field"))
    >>> print(format_ranges({"unguarded_length_km": 505.7},
    ...                     Uncertainty(t, None, pd.DataFrame(index=range(100)))))
    90% ranges over 100 perturbed copies:
      unguarded              470.9–576.7 km
    """
    t = result.table
    n = len(result.draws) if result.draws is not None else 0
    where = f" ({source})" if source else ""
    lines = [f"90% ranges over {n:,} perturbed copies{where}:" if n
             else f"90% ranges over the perturbed copies{where}:"]
    for name, (label, unit, nd) in _LABELS.items():
        if name not in t.index or not {"p05", "p95"} <= set(t.columns):
            continue
        lo, hi = float(t.loc[name, "p05"]), float(t.loc[name, "p95"])
        if math.isfinite(lo) and math.isfinite(hi):
            lines.append(f"  {label:<22} {_fmt(lo, unit, nd)}–{_fmt(hi, unit, nd)} {unit}"
                         .rstrip())
    for name in ("seam_length_km", "unguarded_length_km", "gap_area_km2"):
        base = float(t.loc[name, "base"]) if "base" in t.columns and name in t.index \
            else math.nan
        here = summary.get(name)
        if here is not None and math.isfinite(base) and \
                abs(base - float(here)) > max(1e-3 * abs(float(here)), 0.05):
            label, unit, nd = _LABELS[name]
            lines.append(f"  note: the copies perturb an analysis with {label} "
                         f"{_fmt(base, unit, nd)} {unit}, not this one's "
                         f"{_fmt(float(here), unit, nd)} {unit}: it was run on other inputs")
            break
    return "\n".join(lines)


def format_uncertainty(analysis, result: Uncertainty) -> str:
    """The headline figures with their 90% ranges, for the terminal."""
    p = result.parameters
    reach = "" if p["reach_km"] is None else f", reach {p['reach_km'][0]:g}–{p['reach_km'][1]:g} km"
    reach += "; posts by line of sight" if p.get("visibility") else ""
    lines = [f"gapmap uncertainty — {analysis.summary['side_a']} vs {analysis.summary['side_b']}: "
             f"{p['draws']} copies (edges ±{p['edge_km']:g} km, post ranges "
             f"±{100 * p['post_range_frac']:g}%{reach}; seed {p['seed']})",
             f"  {'figure':<22}{'base':>10}{'90% range':>24}"]
    for name, (label, unit, nd) in _LABELS.items():
        if name not in result.table.index:
            continue
        row = result.table.loc[name]
        fmt = partial(_fmt, unit=unit, nd=nd)
        rng = f"{fmt(row['p05'])}–{fmt(row['p95'])} {unit}".rstrip()
        lines.append(f"  {label:<22}{fmt(row['base']):>10} {unit:<4}{rng:>19}")
    return "\n".join(lines)


def write_uncertainty(result: Uncertainty, out_dir, *,
                      mismatches: pd.DataFrame | None = None) -> dict:
    """Write ``uncertainty.csv``, ``unguarded_probability.gpkg``, ``draws.csv`` and
    ``corridors_uncertainty.csv`` (and ``by_area.csv`` when the result has a breakdown, ``admin_mismatches.csv`` when given) into
    ``out_dir``, atomically.

    Returns the written paths by name.
    """
    import warnings
    from pathlib import Path

    from .io import atomic_dir

    out = Path(out_dir)
    with atomic_dir(out) as stage:
        result.table.round(6).reset_index().to_csv(stage / "uncertainty.csv", index=False)
        result.draws.round(6).rename_axis("draw").reset_index().to_csv(stage / "draws.csv",
                                                                       index=False)
        layer = result.p_unguarded.copy()
        layer["seam_id"] = layer["seam_id"].astype("string")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            layer.to_file(stage / "unguarded_probability.gpkg", layer="unguarded_probability",
                          driver="GPKG")
        if result.by_area is not None:
            result.by_area.round(4).to_csv(stage / "by_area.csv", index=False)
        if result.corridors is not None:
            result.corridors.round(4).to_csv(stage / "corridors_uncertainty.csv", index=False)
        if mismatches is not None:
            mismatches.round(4).to_csv(stage / "admin_mismatches.csv", index=False)
        names = [p.name for p in stage.iterdir()]
    return {n: out / n for n in names}
