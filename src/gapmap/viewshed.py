"""Visibility from many posts: per-post viewsheds over a DEM, their union and their count.

Each post sees the cells within its ``range_km`` (distance between cell centres) whose target,
``target_height_m`` above ground, is not hidden by the terrain from an eye ``height_m`` above the
ground of the post's cell. Earth curvature with refraction lowers distant terrain by
``curvature_coeff · d² / (2·a)``, ``a`` the semi-major axis of the DEM's ellipsoid and
``curvature_coeff = 1 − 1/7`` (refraction coefficient 1/7, the default of GDAL and GRASS).

The line-of-sight rule is the reference-plane method of Wang, Robinson & White (2000),
*Generating viewsheds without using sightlines*, PE&RS 66(1), with exactly the rules of
``gdal_viewshed`` (``-cc 0.85714``, edge mode): the observer stands at the centre of the cell
holding the post; rows are scanned outward from the observer's row; a cell is visible when its
height plus the target height is at least the height of the sight surface interpolated from
the two cells next to it on the observer's side; the sight surface is then raised to the cell
when the cell is higher. The only deliberate difference from GDAL 3.6 concerns the eight cells
around the observer: they are always visible (as in later GDAL releases), whereas GDAL 3.6
compares the cells straight above and below the observer with the ground height of the
observer's own cell.

The grid is computed tile by tile (:mod:`gapmap.tiles`): a tile takes the posts whose range
reaches it, on the tile grown by their range (a windowed read from a DEM file), and scans each
post's window only between the post and the tile's far edges, which gives the same numbers as
a scan of the whole window. Posts run in parallel (numba ``prange``) with one count tile per
thread, so memory grows with the tile and the posts' windows, not with the DEM.
:func:`write_coverage` writes the tiles into a COG as they are done (and can spread them over
Dask workers); :func:`coverage` returns the whole grid in memory.

DEM cells holding nodata are never visible and do not block the view beyond them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numba
import numpy as np
import pandas as pd
import pyproj
import rasterio
import shapely
from affine import Affine
from numba import njit, prange
from scipy.spatial import cKDTree

from .errors import InputError
from .io import atomic_path
from .terrain import Dem, as_dem
from .tiles import (BASE_BYTES, GDAL_CACHE_BYTES, TILE_CHOICES, Tile, check_memory, cog_writer,
                    map_tiles, memory_limit_bytes, pick_tile_cells, read_window, tile_grid)

__all__ = ["Coverage", "CoverageSummary", "coverage", "write_coverage", "coverage_memory_bytes",
           "visible_from_posts", "CURVATURE_COEFF"]

log = logging.getLogger(__name__)

#: Curvature coefficient with refraction 1/7: terrain drops by CURVATURE_COEFF·d²/(2a).
CURVATURE_COEFF = 1.0 - 1.0 / 7.0

_WGS84_A = 6378137.0


# --------------------------------------------------------------------------------------------
# DEM grid


def _metric_dem(dem: Any, *, bounds=None, bounds_crs=None) -> Dem:
    """The DEM as a metric grid (:func:`gapmap.terrain.as_dem`; a Dem in a metric CRS as is).

    Line of sight needs cell sizes in metres, so a lon/lat Dem is moved to its local metric
    CRS by the one reprojection rule of :mod:`gapmap.terrain`.
    """
    d = as_dem(dem, bounds=bounds, bounds_crs=bounds_crs)
    return as_dem(d, crs=d.metric_crs())  # as it is unless in lon/lat


def _semi_major(crs: pyproj.CRS | None) -> float:
    if crs is not None and crs.ellipsoid is not None:
        return float(crs.ellipsoid.semi_major_metre)
    return _WGS84_A


# --------------------------------------------------------------------------------------------
# Posts


@dataclass(frozen=True)
class _Posts:
    row: np.ndarray  # int64 cell row of each post (inside the grid)
    col: np.ndarray
    x: np.ndarray  # coordinates in the grid's CRS
    y: np.ndarray
    range_m: np.ndarray
    height_m: np.ndarray


def _cells(t: Affine, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of the cells holding points (north-up grid)."""
    col = np.floor((xy[:, 0] - t.c) / t.a).astype(np.int64)
    row = np.floor((xy[:, 1] - t.f) / t.e).astype(np.int64)
    return row, col


#: Longest viewing range accepted, km. With refraction 1/7 the horizon of an eye 8,848 m up
#: (Everest) lies 363 km away at sea level, so two such summits see each other across 726 km:
#: beyond 1,000 km no post sees anything more, and the window of one post would be a
#: continent (a typo such as 5000 for 5).
MAX_RANGE_KM = 1000.0

#: Highest observer accepted above the ground, m (a mast, a tower, a tethered balloon).
MAX_HEIGHT_M = 10_000.0


def _check_post_values(values: np.ndarray, name: str, src: str) -> None:
    """Refuse non-finite or absurd ranges and heights (one line, before any window is made)."""
    limit = MAX_RANGE_KM if name == "range_km" else MAX_HEIGHT_M
    lo = 0.0 if name == "range_km" else -MAX_HEIGHT_M
    bad = ~np.isfinite(values) | (values < lo) | (values > limit)
    if bad.any():
        first = values[bad][0]
        option = "--range-km" if name == "range_km" else "--height-m"
        raise InputError(src, name, f"{int(bad.sum())} value(s) out of range, e.g. {first!r}",
                         f"give {name} between {lo:g} and {limit:g} (column or {option})")


def _as_posts_frame(posts, range_km: float, height_m: float) -> gpd.GeoDataFrame:
    for name, default in (("range_km", range_km), ("height_m", height_m)):
        _check_post_values(np.array([default], dtype=float), name, name)
    if isinstance(posts, (str, os.PathLike)):
        from .io import load_posts

        out = load_posts(posts, default_range_km=range_km, default_height_m=height_m)
        src = out.attrs.get("source", str(posts))
        for name in ("range_km", "height_m"):
            if name in out.columns:
                _check_post_values(pd.to_numeric(out[name], errors="coerce").to_numpy(float),
                                   name, src)
        return out
    if isinstance(posts, gpd.GeoSeries):
        posts = gpd.GeoDataFrame(geometry=posts)
    if not isinstance(posts, gpd.GeoDataFrame):
        raise InputError("posts", None, f"posts must be a GeoDataFrame, got {type(posts).__name__}",
                         "read them with gapmap.load_posts")
    src = posts.attrs.get("source", "posts")
    out = posts.copy()
    for name, default in (("range_km", range_km), ("height_m", height_m)):
        if name not in out.columns:
            out[name] = float(default)
            continue
        vals = pd.to_numeric(out[name], errors="coerce")
        if (out[name].notna() & vals.isna()).any():
            raise InputError(src, name, "values that are not numbers",
                             f"give {name} as a number or leave it empty")
        out[name] = vals.fillna(float(default)).astype(float)
        if name == "range_km" and (out[name] < 0).any():
            raise InputError(src, name, "negative values", "give range_km ≥ 0")
        _check_post_values(out[name].to_numpy(float), name, src)
    out.attrs.update(posts.attrs)
    return out


def _warn_if_coarse(grid: Dem, range_m: np.ndarray, src: str) -> None:
    """ResolutionWarning when the DEM's cells exceed a tenth of the median post range: a view
    a few cells across says nothing about what a post sees (once per grid)."""
    from .resolution import warn_posts  # once per DEM grid, however many calls see it

    if not isinstance(grid, Dem):  # a DEM file read by tiles: no array to key "once" on
        from .resolution import ResolutionWarning, posts_problem

        message = posts_problem(float(grid.res_m), range_m)
        if message is not None:
            warnings.warn(f"{grid.source}: {message}", ResolutionWarning, stacklevel=4)
        return
    warn_posts(grid, range_m)


def _prepare_posts(posts, grid: Dem, range_km: float, height_m: float) -> _Posts:
    posts = _as_posts_frame(posts, range_km, height_m)
    src = posts.attrs.get("source", "posts")
    gdf = posts[~(posts.geometry.isna() | posts.geometry.is_empty)]
    if len(gdf) and not (gdf.geometry.geom_type == "Point").all():
        gdf = gdf.explode(index_parts=False)
        if not (gdf.geometry.geom_type == "Point").all():
            raise InputError(src, "geometry", "posts must be points",
                             "give a point layer of posts")
    if grid.crs is not None:
        if gdf.crs is None:
            raise InputError(src, "crs", "posts have no coordinate reference system",
                             "declare the posts' CRS")
        if not grid.crs.equals(gdf.crs):
            gdf = gdf.to_crs(grid.crs)
    n = len(gdf)
    xy = shapely.get_coordinates(gdf.geometry.values) if n else np.empty((0, 2))
    row, col = _cells(grid.transform, xy)
    h, w = grid.shape
    inside = (row >= 0) & (row < h) & (col >= 0) & (col < w)
    if (~inside).any():
        warnings.warn(f"{src}: {int((~inside).sum())} post(s) outside the DEM are ignored",
                      stacklevel=3)
    nodata = np.zeros(n, bool)
    nodata[inside] = np.isnan(_heights_at(grid, row[inside], col[inside]))
    if nodata.any():
        warnings.warn(f"{src}: {int(nodata.sum())} post(s) on DEM nodata see nothing",
                      stacklevel=3)
    keep = inside & ~nodata
    _warn_if_coarse(grid, gdf["range_km"].to_numpy(float)[keep] * 1000.0, src)
    return _Posts(row[keep], col[keep], xy[keep, 0], xy[keep, 1],
                  gdf["range_km"].to_numpy(float)[keep] * 1000.0,
                  gdf["height_m"].to_numpy(float)[keep])


@dataclass(frozen=True)
class _FileGrid:
    """A projected DEM file, known by its grid alone: read window by window, never whole."""

    path: str
    transform: Affine
    crs: pyproj.CRS | None
    shape: tuple[int, int]
    source: str
    res_m: float


def _file_grid(path: str | os.PathLike) -> _FileGrid | None:
    """The grid of a projected DEM file (``None`` for a lon/lat one, which must be reprojected
    whole by :func:`gapmap.terrain.as_dem`)."""
    from .terrain import _crs, _open_raster

    with _open_raster(path) as src:
        if src.crs is None:
            raise InputError(str(path), "crs", "the DEM has no coordinate reference system",
                             "set it with gdal_edit.py -a_srs EPSG:XXXX")
        crs = _crs(src.crs, str(path))
        if crs.is_geographic:
            return None
        t = src.transform
        if t.b != 0 or t.d != 0:
            raise InputError(str(path), "transform", "rotated DEM grids are not supported",
                             "warp it north-up first: gdalwarp in.tif out.tif")
        res = Dem(np.zeros((1, 1), np.float32), t, crs).res_m
        return _FileGrid(str(path), t, crs, (src.height, src.width), str(path), res)


def _heights_at(grid, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """DEM heights (NaN = nodata) at cells; from the file, cell by cell, for a file grid."""
    if isinstance(grid, Dem):
        return grid.array[rows, cols]
    out = np.empty(len(rows), np.float32)
    with rasterio.open(grid.path) as src:
        for i, (r, c) in enumerate(zip(rows, cols)):
            out[i] = read_window(src, int(r), int(c), int(r) + 1, int(c) + 1)[0, 0]
    return out


# --------------------------------------------------------------------------------------------
# Kernels


@njit(cache=True, nogil=True, inline="always")
def _line(d, za, zo):
    # Height at distance d on the line from the observer through za at distance d - 1.
    return (za - zo) / (d - 1) + za


@njit(cache=True, nogil=True, inline="always")
def _edge(i, j, za, zb, zo):
    # Plane through the observer and the two inner neighbours (GDAL's edge mode), i < j.
    return ((za - zo) * i + (zb - zo) * (j - i)) / (j - 1) + zo


@njit(cache=True, nogil=True)
def _load_row(dem, r, c_lo, x_min, x_max, ox, dy, gx, gy, max_d2, curv_over_diam, cur):
    """Curvature-adjusted heights of one window row between columns ``x_min`` and ``x_max``
    (exclusive; the observer's column always); returns the in-range span [lo, hi)."""
    ydist = gy * dy
    y2 = ydist * ydist
    if y2 > max_d2:
        return ox + 1, ox + 1
    lo = ox
    hi = ox + 1
    v = dem[r, c_lo + ox]
    cur[ox] = -np.inf if v != v else v - curv_over_diam * y2
    for x in range(ox - 1, x_min - 1, -1):  # outward to the left: distance only grows
        xd = gx * (x - ox)
        r2 = xd * xd + y2
        if r2 > max_d2:
            break
        v = dem[r, c_lo + x]
        cur[x] = -np.inf if v != v else v - curv_over_diam * r2
        lo = x
    for x in range(ox + 1, x_max):
        xd = gx * (x - ox)
        r2 = xd * xd + y2
        if r2 > max_d2:
            break
        v = dem[r, c_lo + x]
        cur[x] = -np.inf if v != v else v - curv_over_diam * r2
        hi = x + 1
    return lo, hi


@njit(cache=True, nogil=True, inline="always")
def _see(cur, x, z, tz):
    # a select, not a branch: whether the sight surface rises is as unpredictable as
    # visibility itself
    h = cur[x]
    vis = h + tz >= z
    cur[x] = z if h < z else h
    return vis


@njit(cache=True, nogil=True)
def _viewshed(dem, orow, ocol, oz, tz, max_d2, curv_over_diam, gx, gy, out, out_r0, out_c0,
              gdal36, t_r0, t_r1, t_c0, t_c1):
    """Add 1 to ``out[r - out_r0, c - out_c0]`` for every cell (r, c) of the tile
    ``t_r0 ≤ r < t_r1``, ``t_c0 ≤ c < t_c1`` that the post sees.

    ``gx``/``gy`` are the signed cell sizes (transform a and e); ``max_d2`` the squared range.
    ``gdal36`` reproduces GDAL 3.6's treatment of the cells next to the observer. A cell's
    sight surface depends only on cells nearer the observer in both row and column, so only
    the rows and columns between the observer and the tile's far edges are scanned: the same
    numbers as a scan of the whole window, for the part of it that reaches the tile.
    """
    h, w = dem.shape
    rng = np.sqrt(max_d2)
    hx = int(rng / abs(gx)) + 1
    hy = int(rng / abs(gy)) + 1
    c_lo = max(0, ocol - hx)
    c_hi = min(w, ocol + hx + 1)
    r_lo = max(0, orow - hy)
    r_hi = min(h, orow + hy + 1)
    n = c_hi - c_lo
    ox = ocol - c_lo
    # columns of the window to scan: up to the tile's far edges, none on a side it avoids
    x_min = max(0, t_c0 - c_lo) if t_c0 <= ocol else ox
    x_max = min(n, t_c1 - c_lo) if t_c1 > ocol + 1 else ox + 1
    z0 = np.float64(dem[orow, ocol])
    if z0 != z0:
        return
    zo = z0 + oz
    first = np.empty(n)
    last = np.empty(n)
    cur = np.empty(n)

    # The observer's row: the observer and its two neighbours are visible, then straight lines.
    lo, hi = _load_row(dem, orow, c_lo, x_min, x_max, ox, 0, gx, gy, max_d2, curv_over_diam,
                       first)
    row_in = t_r0 <= orow < t_r1
    rr = orow - out_r0
    if row_in and t_c0 <= ocol < t_c1:
        out[rr, ocol - out_c0] += 1
    for side in (-1, 1):
        x = ox + side
        if lo <= x < hi:
            if first[x] == -np.inf:  # nodata next to the post: assume level ground
                first[x] = z0
            elif row_in and t_c0 <= c_lo + x < t_c1:
                out[rr, c_lo + x - out_c0] += 1
        end = lo - 1 if side < 0 else hi
        x = ox + 2 * side
        while (x - end) * side < 0:
            seen = _see(first, x, _line(abs(x - ox), first[x - side], zo), tz)
            c = c_lo + x
            if seen and row_in and t_c0 <= c < t_c1 and dem[orow, c] == dem[orow, c]:
                out[rr, c - out_c0] += 1
            x += side

    # Rows above, then rows below, scanned outward from the observer's row. ``last`` holds the
    # sight surface of the row nearer the observer, ``cur`` the row being scanned.
    for direction in (-1, 1):
        if direction < 0:
            if t_r0 >= orow:
                continue  # the tile lies wholly below the observer's row
            r_stop = max(r_lo, t_r0)
        else:
            if t_r1 <= orow + 1:
                continue
            r_stop = min(r_hi, t_r1) - 1
        last[:] = first
        r = orow + direction
        while (r_stop - r) * direction >= 0:
            dy = abs(r - orow)
            lo, hi = _load_row(dem, r, c_lo, x_min, x_max, ox, dy, gx, gy, max_d2,
                               curv_over_diam, cur)
            if lo >= hi:
                break  # further rows are further away still
            rr = r - out_r0
            row_in = t_r0 <= r < t_r1
            if dy == 1 and not gdal36:
                if cur[ox] == -np.inf:
                    cur[ox] = z0
                z = cur[ox]  # next to the observer: always seen
            elif dy == 1:
                z = last[ox]  # GDAL 3.6: the ground height of the observer's cell
            else:
                z = _line(dy, last[ox], zo)
            if _see(cur, ox, z, tz) and row_in and t_c0 <= ocol < t_c1 \
                    and dem[r, ocol] == dem[r, ocol]:
                out[rr, ocol - out_c0] += 1
            for side in (-1, 1):  # left half, then right half
                end = lo - 1 if side < 0 else hi
                x = ox + side
                while (x - end) * side < 0:
                    inner = x - side  # the neighbour on the observer's side
                    dx = abs(x - ox)
                    if dx == dy == 1 and not gdal36:
                        if cur[x] == -np.inf:
                            cur[x] = z0
                        z = cur[x]
                    elif dx == dy == 1:
                        z = last[inner]
                    elif dx == dy:
                        z = _line(dx, last[inner], zo)
                    elif dx > dy:
                        z = _edge(dy, dx, last[inner], cur[inner], zo)
                    else:
                        z = _edge(dx, dy, last[inner], last[x], zo)
                    c = c_lo + x
                    seen = _see(cur, x, z, tz)
                    if row_in and t_c0 <= c < t_c1 and dem[r, c] == dem[r, c]:
                        # added, not branched on: a mispredicted branch per change of
                        # visibility cost more than the store
                        out[rr, c - out_c0] += np.uint16(seen)
                    x += side
            last, cur = cur, last
            r += direction


@njit(cache=True, parallel=True)
def _tile_kernel(dem, rows, cols, heights, ranges, tz, curv_over_diam, gx, gy, nthreads,
                 gdal36, t_r0, t_c0, count):
    """Add the viewsheds of the posts to ``count``, the tile whose top-left cell is
    (``t_r0``, ``t_c0``) of ``dem``; posts at ``rows``/``cols`` of ``dem``."""
    th, tw = count.shape
    t_r1 = t_r0 + th
    t_c1 = t_c0 + tw
    # thread 0 adds into ``count``, the others into private tiles summed afterwards
    acc = np.zeros((max(nthreads - 1, 0), th, tw), dtype=np.uint16)
    # one task per thread, posts dealt out in turn: balanced without a dynamic scheduler
    for t in prange(nthreads):
        out = count if t == 0 else acc[t - 1]
        for i in range(t, rows.shape[0], nthreads):
            _viewshed(dem, rows[i], cols[i], heights[i], tz, ranges[i] * ranges[i],
                      curv_over_diam, gx, gy, out, t_r0, t_c0, gdal36, t_r0, t_r1, t_c0, t_c1)
    for r in prange(th):
        for c in range(tw):
            total = np.int64(count[r, c])
            for t in range(nthreads - 1):
                total += acc[t, r, c]
            count[r, c] = min(total, 65535)


@njit(cache=True, nogil=True)
def _points_one(dem, rows, cols, heights, ranges_ext, tz, curv_over_diam, gx, gy, starts,
            pt_idx, pt_row, pt_col, seen, gdal36, i):
    """Viewshed of post ``i`` in its own window; mark the points it holds that it sees."""
    a, b = starts[i], starts[i + 1]
    if a == b:
        return
    rng = ranges_ext[i]
    hx = int(rng / abs(gx)) + 1
    hy = int(rng / abs(gy)) + 1
    win = np.zeros((2 * hy + 1, 2 * hx + 1), dtype=np.uint16)
    r0 = rows[i] - hy
    c0 = cols[i] - hx
    _viewshed(dem, rows[i], cols[i], heights[i], tz, rng * rng, curv_over_diam, gx, gy,
              win, r0, c0, gdal36, r0, r0 + win.shape[0], c0, c0 + win.shape[1])
    for k in range(a, b):
        p = pt_idx[k]
        rr = pt_row[p] - r0
        cc = pt_col[p] - c0
        if 0 <= rr < win.shape[0] and 0 <= cc < win.shape[1] and win[rr, cc] > 0:
            seen[p] = True


@njit(cache=True, parallel=True)
def _points_kernel(dem, rows, cols, heights, ranges_ext, tz, curv_over_diam, gx, gy,
                   starts, pt_idx, pt_row, pt_col, seen, nthreads, gdal36):
    for t in prange(nthreads):
        for i in range(t, rows.shape[0], nthreads):
            _points_one(dem, rows, cols, heights, ranges_ext, tz, curv_over_diam, gx, gy,
                        starts, pt_idx, pt_row, pt_col, seen, gdal36, i)


# --------------------------------------------------------------------------------------------
# Tiles


@dataclass(frozen=True)
class _CoverageJob:
    """What every tile of one coverage run needs (shipped once to each Dask worker)."""

    grid: Any  # the metric Dem in memory, or a _FileGrid read window by window
    rows: np.ndarray  # posts' cells on the grid
    cols: np.ndarray
    heights: np.ndarray  # float64 eye heights, m
    ranges: np.ndarray  # float64 ranges, m
    target_height_m: float
    factor: float  # curvature drop per m² of distance
    threads: int
    gdal36: bool

    @property
    def n_posts(self) -> int:
        return int(len(self.rows))

    def halo_cells(self, ranges: np.ndarray | None = None) -> tuple[int, int]:
        """Rows and columns a tile must be grown by to hold its posts' windows."""
        r = self.ranges if ranges is None else ranges
        if len(r) == 0:
            return 0, 0
        t = self.grid.transform
        top = float(r.max())
        return int(top / abs(t.e)) + 1, int(top / abs(t.a)) + 1


def _job(grid, posts, range_km, height_m, target_height_m, curvature_coeff, threads,
         gdal36) -> _CoverageJob:
    if not target_height_m >= 0:
        raise InputError("target_height_m", None, f"must be ≥ 0, got {target_height_m!r}",
                         "give --target-height-m ≥ 0")
    p = _prepare_posts(posts, grid, range_km, height_m)
    n = len(p.row)
    if n > np.iinfo(np.uint16).max:
        raise InputError("posts", None, f"{n:,} posts: at most 65,535 can be counted per cell",
                         "split the posts into groups and add the counts")
    order = np.argsort(p.row, kind="stable")  # neighbouring windows share cache lines
    factor = float(curvature_coeff) / (2.0 * _semi_major(grid.crs))
    return _CoverageJob(grid, p.row[order], p.col[order],
                        p.height_m[order].astype(np.float64), p.range_m[order].astype(np.float64),
                        float(target_height_m), factor, max(int(threads), 1), bool(gdal36))


def _posts_reaching(job: _CoverageJob, tile: Tile) -> np.ndarray:
    """Indices of the posts whose range reaches some cell centre of the tile."""
    r0, c0, r1, c1 = tile.bounds
    dr = np.maximum(np.maximum(r0 - job.rows, job.rows - (r1 - 1)), 0) * job.grid.transform.e
    dc = np.maximum(np.maximum(c0 - job.cols, job.cols - (c1 - 1)), 0) * job.grid.transform.a
    return np.flatnonzero(dr * dr + dc * dc <= job.ranges * job.ranges)


def _coverage_tile(job: _CoverageJob, tile: Tile) -> np.ndarray:
    """The count raster (uint16) of one tile: the tile's posts on the tile grown by their
    range, read from the file (a windowed read) or cut from the grid in memory."""
    count = np.zeros((tile.rows, tile.cols), dtype=np.uint16)
    idx = _posts_reaching(job, tile)
    if len(idx) == 0:
        return count
    hy, hx = job.halo_cells(job.ranges[idx])
    r0, c0, r1, c1 = tile.grown(hy, hx, job.grid.shape)
    if isinstance(job.grid, Dem):
        # a writable C-ordered copy: one compiled kernel for memory and file alike
        z = np.array(job.grid.array[r0:r1, c0:c1], dtype=np.float32, order="C")
    else:
        z = read_window(job.grid.path, r0, c0, r1, c1)
    t = job.grid.transform
    if job.threads != numba.get_num_threads():
        numba.set_num_threads(min(job.threads, numba.config.NUMBA_NUM_THREADS))
    _tile_kernel(z, job.rows[idx] - r0, job.cols[idx] - c0, job.heights[idx], job.ranges[idx],
                 job.target_height_m, job.factor, float(t.a), float(t.e),
                 numba.get_num_threads(), job.gdal36, tile.row0 - r0, tile.col0 - c0, count)
    return count


@contextlib.contextmanager
def _tile_bar(show: bool, total: int):
    """A progress callback over tiles: a tqdm bar when ``show``, else nothing."""
    if not show:
        yield lambda k: None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc="viewsheds", unit="tile", leave=False, disable=None)
    try:
        yield bar.update
    finally:
        bar.close()


#: Bytes per post held by each process (cells, heights, ranges and their per-tile selections).
_POST_BYTES = 64


def coverage_memory_bytes(tile_cells: int, halo_cells: int, threads: int, posts: int,
                          shape: tuple[int, int] | None = None) -> float:
    """Peak memory (bytes) of one process computing coverage tiles: the formula of
    ``docs/scale.md``,

    ``BASE + GDAL cache + 5·(T + 2H)² + 2·T²·threads + 4·T² + 64·posts``

    for tiles of ``T`` cells across grown by a halo of ``H`` cells (the longest range over the
    cell size, plus one): the float32 DEM window and its mask, one uint16 count tile per
    thread, the two bands written, the posts. On a grid of ``shape`` the tile and its window
    are no larger than the grid.

    >>> round(coverage_memory_bytes(2048, 501, 2, 1000) / 1e9, 2)
    0.57
    >>> round(coverage_memory_bytes(2048, 501, 2, 1000, shape=(1000, 1000)) / 1e9, 2)
    0.5
    """
    rows, cols = shape if shape is not None else (math.inf, math.inf)
    t, hh = float(tile_cells), float(halo_cells)
    win = min(t + 2 * hh, rows) * min(t + 2 * hh, cols)
    tile = min(t, rows) * min(t, cols)
    return (BASE_BYTES + GDAL_CACHE_BYTES + 5.0 * win + 2.0 * tile * threads + 4.0 * tile
            + _POST_BYTES * posts)


@dataclass(frozen=True)
class CoverageSummary:
    """What :func:`write_coverage` wrote: its path and the figures the command prints.

    Attributes
    ----------
    path
        The COG written (band 1 visible from any post 0/1, band 2 number of posts).
    posts_used
        Posts inside the DEM that were computed.
    cells, visible_cells
        Cells of the grid, and those seen by at least one post.
    max_count
        Most posts seeing one cell.
    cell_area_m2
        Area of one cell of the (metric) grid.
    tile_cells, tiles
        Tile size used and number of tiles.
    memory_bytes
        The memory formula's figure for the run (per process; see ``docs/scale.md``).
    """

    path: Path
    posts_used: int
    cells: int
    visible_cells: int
    max_count: int
    cell_area_m2: float
    tile_cells: int
    tiles: int
    memory_bytes: float

    @property
    def visible_share(self) -> float:
        """Share (0–1) of the grid's cells seen by at least one post."""
        return self.visible_cells / self.cells if self.cells else 0.0

    @property
    def visible_area_km2(self) -> float:
        """Area (km²) seen by at least one post (planar cell area of the metric grid)."""
        return self.visible_cells * self.cell_area_m2 / 1e6


def _plan(job: _CoverageJob, tile_cells, max_memory_gb, workers, scheduler
          ) -> tuple[int, int, float, int]:
    """(tile size, batch of tiles held here, the formula's figure, threads per task) for the
    memory allowed, or InputError saying what would fit."""
    from .engine import default_workers

    limit = memory_limit_bytes(max_memory_gb)
    hy, hx = job.halo_cells()
    halo = max(hy, hx)
    local = scheduler is None
    procs = 1 if local and (workers or 1) == 1 else (
        (default_workers() if workers is None else int(workers)) if local else 1)
    threads = job.threads if procs == 1 and local else 1
    dask = not (local and procs == 1)

    def need(t: int) -> float:
        one = coverage_memory_bytes(t, halo, threads, job.n_posts, job.grid.shape)
        # on Dask this process also holds a batch of results (at least one per worker)
        client = (BASE_BYTES + GDAL_CACHE_BYTES + 2.0 * t * t * 2 * procs) if dask else 0.0
        return one * (procs if local else 1) + client

    t = pick_tile_cells(need, limit, tile_cells)
    if t is None:
        t_min = int(tile_cells) if tile_cells is not None else TILE_CHOICES[-1]
        cell = float(abs(job.grid.transform.a))
        # what is left for the DEM window 5·(T+2H)² once the rest of the formula is paid
        spare = (limit / max(procs, 1) - coverage_memory_bytes(t_min, 0, threads, job.n_posts)
                 + 5.0 * t_min * t_min)
        h_max = (math.sqrt(spare / 5.0) - t_min) / 2 - 1 if spare > 0 else -1
        fit = (f"posts of range up to {h_max * cell / 1000:.1f} km would fit; or allow "
               f"--max-memory-gb {math.ceil(need(t_min) / 1e8) / 10:g}" if h_max > 0 else
               f"allow --max-memory-gb {math.ceil(need(t_min) / 1e8) / 10:g}")
        if procs > 1:
            fit += " or fewer --workers"
        check_memory(need(t_min), limit, what=f"coverage of {job.n_posts:,} posts with a "
                     f"halo of {halo:,} cells on tiles of {t_min}",
                     formula="400 MB + 64 MB + 5·(T+2H)² + 2·T²·threads + 4·T² per process",
                     fits=fit)
    batch = 1
    if dask:
        # results waiting here: what the memory left allows, at most 64 tiles (0.5 GB at 2048)
        spare = limit - need(t)
        batch = int(min(64, max(2 * procs, 2 * procs + spare // (2.0 * t * t))))
    return t, batch, need(t), threads


def write_coverage(dem: str | os.PathLike | Dem, posts: gpd.GeoDataFrame | str | os.PathLike,
                   out: str | os.PathLike, *, range_km: float = 5.0, height_m: float = 10.0,
                   target_height_m: float = 2.0, curvature_coeff: float = CURVATURE_COEFF,
                   tile_cells: int | None = None, max_memory_gb: float | None = None,
                   workers: int | None = 1, scheduler: str | None = None,
                   progress: bool = False, _gdal36: bool = False) -> CoverageSummary:
    """Coverage of many posts written tile by tile into a COG, in bounded memory.

    The same cells as :func:`coverage`, but a projected DEM file is never read whole: each tile
    reads its window grown by its posts' longest range, and the tiles are written as they
    are done. A lon/lat DEM is reprojected to metres in memory first (by
    :func:`gapmap.terrain.as_dem`, which refuses one too big for the machine).

    Parameters
    ----------
    dem, posts, range_km, height_m, target_height_m, curvature_coeff
        As for :func:`coverage`.
    out
        The COG to write (band 1 visible from any post 0/1, band 2 number of posts, uint16),
        atomically: a failed run leaves nothing at ``out``.
    tile_cells
        Tile size in cells across; default the largest of 2048, 1024, 512 that fits.
    max_memory_gb
        Memory the run may use (decimal GB; default the machine's). A run whose formula
        (``docs/scale.md``) exceeds it is refused with :class:`~gapmap.errors.InputError`
        saying what would fit.
    workers, scheduler
        As for :func:`gapmap.engine.run_tasks`: ``workers=1`` computes in this process with
        all of numba's threads, more spreads the tiles over a local Dask cluster, or over
        the cluster at ``scheduler`` (every worker must reach the DEM's path).
    progress
        Show a progress bar over the tiles.

    Returns
    -------
    CoverageSummary

    Examples
    --------
    >>> s = write_coverage("geodata/dem.tif", "geodata/posts.geojson",
    ...                    "out/coverage.tif", range_km=5)  # doctest: +SKIP
    >>> s.posts_used, round(s.visible_area_km2)  # doctest: +SKIP
    (12, 410)
    """
    grid = _file_grid(dem) if isinstance(dem, (str, os.PathLike)) else None
    if grid is None:
        grid = _metric_dem(dem)
    job = _job(grid, posts, range_km, height_m, target_height_m, curvature_coeff,
               numba.get_num_threads(), _gdal36)
    t, batch, need, threads = _plan(job, tile_cells, max_memory_gb, workers, scheduler)
    if threads != job.threads:
        job = dataclasses.replace(job, threads=threads)
    h, w = grid.shape
    tiles = tile_grid((h, w), t)
    log.info("coverage: %d posts on %d tiles of %d cells, about %.2f GB per process",
             job.n_posts, len(tiles), t, need / 1e9)
    visible_cells, top = 0, 0
    # DEFLATE level 1: on 100 M cells the count bands compress to 46 MB instead of 34 MB at
    # GDAL's default level 6, for half the CPU (8 s instead of 16 s)
    with _tile_bar(progress, len(tiles)) as bar, \
            cog_writer(out, height=h, width=w, count=2, dtype="uint16", level=1,
                       transform=grid.transform, crs=grid.crs,
                       descriptions=("visible from any post (0/1)",
                                     "number of posts that see the cell")) as write:
        for tile, count in map_tiles(_coverage_tile, tiles, shared=job, workers=workers,
                                     scheduler=scheduler, batch=batch):
            seen = count > 0
            visible_cells += int(np.count_nonzero(seen))
            top = max(top, int(count.max()) if count.size else 0)
            write(tile, np.stack([seen.astype(np.uint16), count]))
            bar(1)
    tr = grid.transform
    return CoverageSummary(Path(out), job.n_posts, h * w, visible_cells, top,
                           abs(tr.a * tr.e - tr.b * tr.d), t, len(tiles), need)


# --------------------------------------------------------------------------------------------
# Public API


@dataclass(frozen=True)
class Coverage:
    """Visibility coverage of a set of posts on the DEM's grid.

    Attributes
    ----------
    visible
        uint8 array, 1 where at least one post sees the cell.
    count
        uint16 array, the number of posts that see the cell.
    transform, crs
        Grid of both arrays (the DEM's grid, or its metric reprojection for a lon/lat DEM).
    posts_used
        Number of posts inside the DEM that were computed.
    """

    visible: np.ndarray
    count: np.ndarray
    transform: Affine
    crs: pyproj.CRS | None
    posts_used: int = 0

    @property
    def visible_share(self) -> float:
        """Share (0–1) of the grid's cells seen by at least one post."""
        return float(self.visible.mean()) if self.visible.size else 0.0

    @property
    def visible_area_km2(self) -> float:
        """Area (km²) seen by at least one post: visible cells × cell area of the metric grid
        (planar; a UTM grid's scale error is at most a few tenths of a percent)."""
        cell_m2 = abs(self.transform.a * self.transform.e - self.transform.b * self.transform.d)
        return float(np.count_nonzero(self.visible)) * cell_m2 / 1e6

    def write(self, path: str | os.PathLike) -> None:
        """Write a 2-band GeoTIFF (band 1 visible-from-any 0/1, band 2 count), atomically.

        Examples
        --------
        >>> cov.write("out/coverage.tif")  # doctest: +SKIP
        """
        h, w = self.visible.shape
        profile = dict(driver="GTiff", height=h, width=w, count=2, dtype="uint16",
                       transform=self.transform, compress="deflate", tiled=w >= 256 and h >= 256,
                       crs=self.crs)
        with atomic_path(path) as tmp:
            with rasterio.open(tmp, "w", **profile) as dst:
                dst.write(self.visible.astype(np.uint16), 1)
                dst.write(self.count, 2)
                dst.set_band_description(1, "visible from any post (0/1)")
                dst.set_band_description(2, "number of posts that see the cell")


def coverage(dem: Any, posts: gpd.GeoDataFrame | str | os.PathLike, *, range_km: float = 5.0,
             height_m: float = 10.0, target_height_m: float = 2.0, progress: bool = False,
             curvature_coeff: float = CURVATURE_COEFF, tile_cells: int = TILE_CHOICES[0],
             _gdal36: bool = False) -> Coverage:
    """Visibility coverage of many posts over a DEM.

    Parameters
    ----------
    dem
        GeoTIFF path, a ``Dem`` (``array``, ``transform``, ``crs``) or
        ``(array, transform[, crs])``; heights in metres, NaN (or the file's nodata) where unknown.
    posts
        Point GeoDataFrame (reprojected to the DEM's CRS) or a path; optional per-post
        ``range_km`` and ``height_m`` columns override the defaults.
    range_km
        Default viewing range, km (distance between cell centres).
    height_m
        Default observer height above ground, m.
    target_height_m
        Height above ground of what must be seen, m.
    progress
        Show a progress bar over the tiles (for the command line).
    curvature_coeff
        Curvature/refraction coefficient (GDAL's ``-cc``); 0 switches curvature off.
    _gdal36
        Treat the cells next to the observer as GDAL 3.6 does (for comparisons with it).

    tile_cells
        Tiles computed one after the other (cells across); the result does not depend on it.

    Returns
    -------
    Coverage
        ``visible`` (uint8 0/1) and ``count`` (uint16) on the DEM's grid. The whole grid is
        held in memory; :func:`write_coverage` writes a DEM larger than memory tile by tile.

    Examples
    --------
    >>> import numpy as np, geopandas as gpd, shapely
    >>> from affine import Affine
    >>> dem = (np.zeros((101, 101), "float32"), Affine(30, 0, 0, 0, -30, 3030), "EPSG:32638")
    >>> posts = gpd.GeoDataFrame(geometry=[shapely.Point(1515, 1515)], crs=32638)
    >>> cov = coverage(dem, posts, range_km=1.0)
    >>> int(cov.count.max()), int(cov.visible.sum()) > 3000
    (1, True)
    """
    grid = _metric_dem(dem)
    job = _job(grid, posts, range_km, height_m, target_height_m, curvature_coeff,
               numba.get_num_threads(), _gdal36)
    h, w = grid.shape
    count = np.zeros((h, w), dtype=np.uint16)
    tiles = tile_grid((h, w), tile_cells)
    with _tile_bar(progress, len(tiles)) as bar:
        for tile in tiles:
            r0, c0, r1, c1 = tile.bounds
            count[r0:r1, c0:c1] = _coverage_tile(job, tile)
            bar(1)
    visible = (count > 0).view(np.uint8)
    log.info("coverage: %d posts, %.1f%% of %d cells visible", job.n_posts,
             100.0 * float(visible.mean()), h * w)
    return Coverage(visible, count, grid.transform, grid.crs, job.n_posts)


def visible_from_posts(dem: Any, posts: gpd.GeoDataFrame, points, *, range_km: float = 5.0,
                       height_m: float = 10.0, target_height_m: float = 2.0,
                       curvature_coeff: float = CURVATURE_COEFF,
                       _gdal36: bool = False) -> np.ndarray:
    """Which points some post sees: within the post's range and in its line of sight.

    A point counts as within range when its true distance to the post is at most ``range_km``;
    it is in line of sight when its DEM cell is visible from the post by the same rule as
    :func:`coverage` (inside the ranges the two agree cell for cell).

    Parameters
    ----------
    dem, posts, range_km, height_m, target_height_m
        As for :func:`coverage`.
    points
        GeoSeries (reprojected to the DEM's CRS) or an ``(n, 2)`` array in the DEM's CRS.

    Returns
    -------
    numpy.ndarray
        Boolean, one value per point.

    Examples
    --------
    >>> import numpy as np, geopandas as gpd, shapely
    >>> from affine import Affine
    >>> dem = (np.zeros((101, 101), "float32"), Affine(30, 0, 0, 0, -30, 3030), "EPSG:32638")
    >>> posts = gpd.GeoDataFrame(geometry=[shapely.Point(1515, 1515)], crs=32638)
    >>> visible_from_posts(dem, posts, np.array([[1515, 2400], [1515, 2600]]), range_km=1.0)
    array([ True, False])
    """
    posts_gdf = _as_posts_frame(posts, range_km, height_m)
    if isinstance(points, gpd.GeoSeries):
        pts_crs = points.crs
        xy_in = shapely.get_coordinates(points.values) if len(points) else np.empty((0, 2))
        if len(xy_in) != len(points):
            raise InputError("points", "geometry", "points must be single points",
                             "pass one point per sample")
    else:
        pts_crs = None
        xy_in = np.asarray(points, dtype=float).reshape(-1, 2)
    m = len(xy_in)
    seen = np.zeros(m, dtype=np.bool_)
    if m == 0 or len(posts_gdf) == 0:
        return seen
    bounds = bounds_crs = None
    if isinstance(dem, (str, os.PathLike)) and pts_crs is not None:
        # only posts that reach some point matter, and only the ground around them
        from .crs import metric_crs

        work = pyproj.CRS.from_user_input(pts_crs)
        if not work.is_projected:
            work = metric_crs(points)
        mxy = shapely.get_coordinates(points.to_crs(work).values)
        pp = posts_gdf.to_crs(work) if posts_gdf.crs is not None else posts_gdf
        pxy = shapely.get_coordinates(pp.geometry.values)
        reach = np.asarray(pp["range_km"], dtype=float) * 1000.0
        near, _ = cKDTree(mxy).query(pxy, distance_upper_bound=float(reach.max()) * 1.01 + 1)
        keep = np.isfinite(near) & (near <= reach * 1.01 + 1)
        posts_gdf = posts_gdf[keep]
        if len(posts_gdf) == 0:
            return seen
        margin = float(reach[keep].max()) * 1.01 + 1000.0
        lo, hi = mxy.min(axis=0) - margin, mxy.max(axis=0) + margin
        bounds, bounds_crs = (lo[0], lo[1], hi[0], hi[1]), work
    grid = _metric_dem(dem, bounds=bounds, bounds_crs=bounds_crs)
    p = _prepare_posts(posts_gdf, grid, range_km, height_m)
    if pts_crs is not None and grid.crs is not None and not grid.crs.equals(pts_crs):
        xy = shapely.get_coordinates(
            gpd.GeoSeries(shapely.points(xy_in), crs=pts_crs).to_crs(grid.crs).values)
    else:
        xy = xy_in
    if len(p.row) == 0:
        return seen
    h, w = grid.array.shape
    prow, pcol = _cells(grid.transform, xy)
    inside = (prow >= 0) & (prow < h) & (pcol >= 0) & (pcol < w)
    # pairs (post, point) with the point truly within the post's range
    tree = cKDTree(xy)
    lists = tree.query_ball_point(np.column_stack([p.x, p.y]), r=p.range_m)
    sizes = np.fromiter((len(lst) for lst in lists), dtype=np.int64, count=len(lists))
    starts = np.concatenate([[0], np.cumsum(sizes)])
    flat = (np.concatenate([np.asarray(lst, dtype=np.int64) for lst in lists])
            if starts[-1] else np.empty(0, np.int64))
    keep = inside[flat]
    # drop points off the DEM while keeping the CSR layout
    owner = np.repeat(np.arange(len(lists)), sizes)[keep]
    flat = flat[keep]
    starts = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=len(lists)))])
    # the window reaches one cell diagonal further so edge points get their line of sight
    diag = float(np.hypot(grid.transform.a, grid.transform.e))
    ranges_ext = p.range_m + diag
    factor = float(curvature_coeff) / (2.0 * _semi_major(grid.crs))
    _points_kernel(grid.array, p.row, p.col, p.height_m.astype(np.float64), ranges_ext,
                   float(target_height_m), factor, float(grid.transform.a),
                   float(grid.transform.e), starts.astype(np.int64), flat, prow, pcol, seen,
                   numba.get_num_threads(), _gdal36)
    return seen
