"""Walking time over terrain (Tobler's hiking function) and least-time routes.

Movement follows Tobler (1993): on a slope θ taken along the direction of travel a walker
makes ``6·exp(−3.5·|tan θ + 0.05|)`` km/h — 5.04 km/h on the flat, at most 6 km/h on a gentle
descent (tan θ = −0.05), and uphill and downhill differ. Time over a stretch is its horizontal
length divided by that speed.

The cost-distance engine is Dijkstra's algorithm (numba) on the DEM grid with 32 moves per cell:
every step ``(dx, dy)`` with ``max(|dx|, |dy|) ≤ 3`` and no common divisor, i.e. (±1, 0),
(±1, ±1), (±2, ±1), (±3, ±1), (±3, ±2) and their transposes. Their directions are at most
18.4° apart, so a route on flat ground in any direction is at most ``1/cos(9.2°) − 1 = 1.3 %``
longer than the straight line (8 moves: 8.2 %, 16 moves: 2.7 %). A long move is timed over the
cells it crosses, not from its end points: it is cut where it crosses each row (or column) of
cell centres, the elevation there is interpolated between the two cells on either side, and
the pieces are timed one by one. A move therefore cannot jump over a one-cell ridge or a cell
without data, and on a plane it gives exactly the end-point answer.

Optionally, time spent in cells seen from posts is multiplied by ``visible_penalty``
(e.g. 3: a visible stretch "costs" three times its walking time, because a walker there must
go slowly, wait for dark or take cover). Routes then trade extra walking against exposure.

Examples
--------
>>> import geopandas as gpd, shapely
>>> from gapmap.routes import walking_routes
>>> routes = walking_routes("geodata/dem_synthetic.tif",
...     gpd.GeoDataFrame({"name": ["a"]}, geometry=[shapely.Point(44.0, 35.3)], crs=4326),
...     gpd.GeoDataFrame({"name": ["b"]}, geometry=[shapely.Point(44.1, 35.4)], crs=4326))
...     # doctest: +SKIP
>>> routes[["origin", "target", "hours", "km"]]  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import shapely
from affine import Affine
from numba import njit
from scipy import ndimage

from .crs import geodesic_length_km
from .errors import InputError
from .terrain import Dem, as_dem, check_allocation

__all__ = [
    "TOBLER_FLAT_KMH",
    "tobler_speed_kmh",
    "tobler_hours",
    "moves",
    "CostDistance",
    "cost_distance",
    "walking_routes",
    "Crossings",
    "corridor_crossings",
    "corridor_terrain",
    "crossing_routes",
    "crossing_windows",
    "crossing_memory_bytes",
    "TERRAIN_COLUMNS",
]

log = logging.getLogger(__name__)

#: Walking speed on flat ground, km/h: 6·exp(−3.5·0.05).
TOBLER_FLAT_KMH = 6.0 * math.exp(-3.5 * 0.05)

#: Columns :func:`corridor_terrain` adds to the corridor table.
TERRAIN_COLUMNS = ["slope_mean_deg", "tri_mean_m", "crossing_hours"]

#: Default time multiplier in cells seen from posts when posts are given without a penalty.
DEFAULT_VISIBLE_PENALTY = 3.0


# --------------------------------------------------------------------------------------------
# Tobler's function


def tobler_speed_kmh(tan_slope: np.ndarray | float) -> np.ndarray:
    """Tobler's walking speed (km/h) for the slope's tangent along the direction of travel.

    Positive ``tan_slope`` is uphill.

    Examples
    --------
    >>> round(float(tobler_speed_kmh(0.0)), 4)
    5.0367
    >>> round(float(tobler_speed_kmh(-0.05)), 4)
    6.0
    """
    return 6.0 * np.exp(-3.5 * np.abs(np.asarray(tan_slope, dtype=float) + 0.05))


def tobler_hours(length_m: np.ndarray | float, dz_m: np.ndarray | float) -> np.ndarray:
    """Hours to walk a straight stretch of horizontal length ``length_m`` rising ``dz_m``.

    Examples
    --------
    >>> round(float(tobler_hours(1000.0, 100.0)), 4)  # 1 km at 10 % uphill: 3.55 km/h
    0.2817
    """
    length_m = np.asarray(length_m, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        tan = np.where(length_m > 0, np.asarray(dz_m, dtype=float) / length_m, 0.0)
    return length_m / 1000.0 / tobler_speed_kmh(tan)


# --------------------------------------------------------------------------------------------
# the move set


def moves(max_step: int = 3) -> np.ndarray:
    """The moves of the grid graph: primitive steps ``(drow, dcol)`` with both ≤ ``max_step``.

    ``max_step`` 1 gives 8 moves, 2 gives 16, 3 gives 32 (the default), 4 gives 48.

    Examples
    --------
    >>> len(moves(1)), len(moves(2)), len(moves(3))
    (8, 16, 32)
    """
    out = [(dr, dc) for dr in range(-max_step, max_step + 1)
           for dc in range(-max_step, max_step + 1)
           if (dr or dc) and math.gcd(abs(dr), abs(dc)) == 1]
    # Sorted by angle so the table is easy to read when debugging.
    out.sort(key=lambda m: math.atan2(m[0], m[1]))
    return np.array(out, dtype=np.int64)


def _move_tables(max_step: int):
    """For each move, the points where it crosses rows/columns of cell centres.

    Sub-step ``s`` of ``k = max(|dr|, |dc|)`` lies at ``(dr·s/k, dc·s/k)`` from the start: one
    coordinate is whole, the other lies between two cells ``a`` and ``b`` with weight ``w`` on
    ``b`` (``w = 0``: the point is a cell centre).
    """
    mv = moves(max_step)
    m = len(mv)
    k = np.abs(mv).max(axis=1)
    kmax = int(k.max())
    ra = np.zeros((m, kmax), np.int64)
    ca = np.zeros((m, kmax), np.int64)
    rb = np.zeros((m, kmax), np.int64)
    cb = np.zeros((m, kmax), np.int64)
    w = np.zeros((m, kmax), np.float64)
    for i, (dr, dc) in enumerate(mv):
        for s in range(1, k[i] + 1):
            fr, fc = dr * s / k[i], dc * s / k[i]
            r0, c0 = math.floor(fr), math.floor(fc)
            if fr != r0:  # between rows r0 and r0 + 1, in column fc
                ra[i, s - 1], ca[i, s - 1] = r0, int(fc)
                rb[i, s - 1], cb[i, s - 1] = r0 + 1, int(fc)
                w[i, s - 1] = fr - r0
            elif fc != c0:  # between columns c0 and c0 + 1, in row fr
                ra[i, s - 1], ca[i, s - 1] = int(fr), c0
                rb[i, s - 1], cb[i, s - 1] = int(fr), c0 + 1
                w[i, s - 1] = fc - c0
            else:
                ra[i, s - 1] = rb[i, s - 1] = int(fr)
                ca[i, s - 1] = cb[i, s - 1] = int(fc)
    return mv, k.astype(np.int64), ra, ca, rb, cb, w


# --------------------------------------------------------------------------------------------
# the numba engine


@njit(cache=True, nogil=True, inline="always")
def _sample(z, walk, r, c, ra, ca, rb, cb, w):
    """Interpolated elevation at a sub-step (NaN when a cell involved is not walkable)."""
    r1, c1 = r + ra, c + ca
    if not walk[r1, c1]:
        return np.nan
    if w == 0.0:
        return float(z[r1, c1])
    r2, c2 = r + rb, c + cb
    if not walk[r2, c2]:
        return np.nan
    return (1.0 - w) * z[r1, c1] + w * z[r2, c2]


@njit(cache=True, nogil=True, inline="always")
def _sample_pen(pen, r, c, ra, ca, rb, cb, w):
    if w == 0.0:
        return float(pen[r + ra, c + ca])
    return (1.0 - w) * pen[r + ra, c + ca] + w * pen[r + rb, c + cb]


@njit(cache=True, nogil=True, fastmath={"afn", "contract"}, inline="always")
def _move_hours(z, walk, pen, use_pen, r, c, m, sign, k, ra, ca, rb, cb, w, sub_len_m):
    """Hours for move ``m`` between cell (r, c) and cell (r, c) + move.

    ``sign`` +1 times the walk from (r, c) to the other cell; −1 times the walk the other way
    (same pieces, slopes negated). Returns inf when the move is blocked.
    """
    z0 = float(z[r, c])
    p0 = float(pen[r, c]) if use_pen else 1.0
    length = sub_len_m[m]
    total = 0.0
    for s in range(k[m]):
        z1 = _sample(z, walk, r, c, ra[m, s], ca[m, s], rb[m, s], cb[m, s], w[m, s])
        if np.isnan(z1):
            return np.inf
        tan = sign * (z1 - z0) / length
        hours = length / 6000.0 * math.exp(3.5 * abs(tan + 0.05))
        if use_pen:
            p1 = _sample_pen(pen, r, c, ra[m, s], ca[m, s], rb[m, s], cb[m, s], w[m, s])
            hours *= 0.5 * (p0 + p1)
            p0 = p1
        total += hours
        z0 = z1
    return total


@njit(cache=True, nogil=True, inline="always")
def _sift_up(hc, hn, i):
    c, n = hc[i], hn[i]
    while i > 0:
        parent = (i - 1) >> 1
        if hc[parent] <= c:
            break
        hc[i], hn[i] = hc[parent], hn[parent]
        i = parent
    hc[i], hn[i] = c, n


@njit(cache=True, nogil=True, inline="always")
def _sift_down(hc, hn, size):
    c, n = hc[0], hn[0]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and hc[child + 1] < hc[child]:
            child += 1
        if hc[child] >= c:
            break
        hc[i], hn[i] = hc[child], hn[child]
        i = child
    hc[i], hn[i] = c, n


_N_BUCKETS = 1 << 16

#: Queue entries a search starts with room for (beyond its sources); it asks for more.
_ROOM = 1024


@njit(cache=True, nogil=True, inline="always")
def _heap_add(hc, hn, hsize, cost, v):
    """Push (cost, v) onto the binary heap of ``hsize`` entries (the caller made room)."""
    hc[hsize], hn[hsize] = cost, v
    _sift_up(hc, hn, hsize)
    return hsize + 1


def _doubled(a: np.ndarray) -> np.ndarray:
    """``a`` copied into an array twice as long (the rest uninitialised)."""
    out = np.empty(2 * len(a), a.dtype)
    out[:len(a)] = a
    return out


@njit(cache=True, nogil=True, fastmath={"afn", "contract"}, inline="always")
def _piece_hours(zf, walkf, penf, use_pen, u, m, sign, k, oa, ob, w, sub_len_m, z0):
    """Hours of move ``m`` from flat cell ``u`` (elevation ``z0``), piece by piece: the same
    arithmetic as :func:`_move_hours`, on flat indices. inf when the move is blocked."""
    p0 = np.float64(penf[u]) if use_pen else 1.0
    length = sub_len_m[m]
    total = 0.0
    for s in range(k[m]):
        a = np.uint64(u + oa[m, s])
        if not walkf[a]:
            return np.inf
        ws = w[m, s]
        if ws == 0.0:
            z1 = np.float64(zf[a])
        else:
            b = np.uint64(u + ob[m, s])
            if not walkf[b]:
                return np.inf
            z1 = (1.0 - ws) * zf[a] + ws * zf[b]
        tan = sign * (z1 - z0) / length
        hours = length / 6000.0 * math.exp(3.5 * abs(tan + 0.05))
        if use_pen:
            if ws == 0.0:
                p1 = np.float64(penf[a])
            else:
                p1 = (1.0 - ws) * penf[a] + ws * penf[np.uint64(u + ob[m, s])]
            hours *= 0.5 * (p0 + p1)
            p0 = p1
        total += hours
        z0 = z1
    return total


@njit(cache=True, nogil=True, error_model="numpy")
def _dijkstra(z, walk, pen, src, src_cost, max_cost, reverse, pred, dist,
              mv, k, ra, ca, rb, cb, w, sub_len_m, is_stop, head, e_node, e_next, hc, hn, st,
              st_base):
    """Multi-source Dijkstra over the grid; fills ``dist`` (flat, inf beforehand).

    The queue is a bucket queue (Dial's algorithm) of bucket width just under the cheapest
    possible move (one cell at 6 km/h): two entries in one bucket cannot improve each other,
    so a bucket may be emptied in any order and the result is Dijkstra's, while pushing and
    popping cost O(1) instead of a binary heap's O(log n) cache misses. Entries beyond the
    65,536 buckets (times of hundreds of hours: walls) wait in a binary heap until the
    buckets run dry, and then the window moves on. Each bucket is a linked list of cells; a
    popped cell is expanded at its time in ``dist``, and skipped (stale) when that time now
    falls in an earlier bucket, where it was expanded already. A cell improved within the
    bucket it is already queued in is not queued again: that entry reads the new time (a
    third of the improvements on the rugged 2,000² grid, and 11% of the search). No per-cell
    "settled" flag is needed: a settled cell's time is below any move into it, and the first
    test of a move turns it away.

    The queue's arrays come from the caller (see :func:`_run`): the buckets' ``head``, the
    entries ``e_node``/``e_next`` and the heap ``hc``/``hn``. When they have no room left for
    the next cell's moves the search returns 1 (the entries are short) or 2 (the heap is), its
    counters saved in ``st`` (entries used, free list, heap size, bucket, stop cells left,
    state) and ``st_base``; the caller hands it larger arrays and calls again, and it goes on
    where it stopped. It returns 0 once done. Growing the arrays inside the compiled loop
    instead makes numba count references on every move (19% of the search on the rugged
    2,000² grid, 16 moves).

    ``reverse`` False: ``dist`` is the least time *from* a source to each cell; True: the least
    time from each cell *to* a source (edges walked backwards). ``is_stop``: 1 on the cells
    whose settling ends the search (``st[4]`` of them). ``pred``: filled with each cell's predecessor
    when it has one entry per cell (an array of length 1 keeps none). ``pen``: the time
    multipliers as a 2-D grid, or a 1-D array for none. The sources must be walkable cells
    and the grid padded by the longest move with cells that are not (see :func:`_run`), so
    no move of an expanded cell leaves the grid.
    """
    # A penalty comes as a 2-D grid, none as a 1-D array: ``ndim`` is known when numba
    # compiles, so the search without a penalty is compiled without its branches.
    use_pen = pen.ndim == 2
    nr, nc = z.shape
    n = nr * nc
    zf = z.ravel()
    walkf = walk.ravel()
    penf = pen.ravel()
    want_pred = len(pred) == n
    nm = len(mv)
    kmax = ra.shape[1]
    # flat offsets of the moves and of their interpolation points
    off = np.empty(nm, np.int64)
    oa = np.empty((nm, kmax), np.int64)
    ob = np.empty((nm, kmax), np.int64)
    for m in range(nm):
        off[m] = mv[m, 0] * nc + mv[m, 1]
        for s in range(kmax):
            oa[m, s] = ra[m, s] * nc + ca[m, s]
            ob[m, s] = rb[m, s] * nc + cb[m, s]
    sign = -1.0 if reverse else 1.0
    min_hours = sub_len_m * k / 6000.0
    inv_len = 1.0 / (sub_len_m * k)
    # The penalty multiplies a piece by the mean of its ends' multipliers, never below the
    # smallest one; 1e-9 under it keeps the bound below the computed time despite rounding.
    pen_floor = (1.0 - 1e-9) * (min(1.0, float(pen.min())) if use_pen else 1.0)
    bound = min_hours * pen_floor
    direct = (k == 1) & (not use_pen)
    delta = 0.999 * min_hours.min()
    inv_delta = 1.0 / delta
    nb = _N_BUCKETS
    cap, hcap = len(e_node), len(hc)
    used, free, hsize, cur, remaining = st[0], np.int32(st[1]), st[2], st[3], st[4]
    base = st_base[0]
    if st[5] == 0:  # first call: queue the sources (the caller made room for all of them)
        for j in range(len(src)):
            base = min(base, src_cost[j])
        for j in range(len(src)):
            i = src[j]
            if src_cost[j] < dist[i]:
                dist[i] = src_cost[j]
                b = int((src_cost[j] - base) * inv_delta)
                if b < nb:
                    e_node[used], e_next[used] = i, head[b]
                    head[b] = used
                    used += 1
                else:
                    hsize = _heap_add(hc, hn, hsize, src_cost[j], i)
        st[5] = 1
    short = 0
    while True:
        # no room for the next cell's moves: the caller makes more
        if used + nm > cap:
            short = 1
            break
        if hsize + nm > hcap:
            short = 2
            break
        while cur < nb and head[cur] == -1:
            cur += 1
        if cur == nb:
            if hsize == 0:
                st[5] = 2  # done
                break
            if used + hsize > cap:
                short = 1  # no room for the heap's entries in the buckets
                break
            # Move the window of buckets to the cheapest waiting entry.
            base = hc[0]
            cur = 0
            limit = base + nb * delta
            while hsize > 0 and hc[0] < limit:
                cost0, v0 = hc[0], hn[0]
                hsize -= 1
                if hsize > 0:
                    hc[0], hn[0] = hc[hsize], hn[hsize]
                    _sift_down(hc, hn, hsize)
                b = min(int((cost0 - base) * inv_delta), nb - 1)
                if free >= 0:
                    slot = free
                    free = e_next[slot]
                else:
                    slot = used
                    used += 1
                e_node[slot], e_next[slot] = v0, head[b]
                head[b] = slot
            continue
        # Unsigned indices: numba then skips its negative-index fix-up on every access
        # (12% of the search on the rugged 2,000² grid).
        slot = np.uint64(head[np.uint64(cur)])
        head[np.uint64(cur)] = e_next[slot]
        u = np.uint64(e_node[slot])
        e_next[slot] = free
        free = np.int32(slot)
        cost = dist[u]
        if min(int((cost - base) * inv_delta), nb - 1) != cur:
            continue  # stale: the cell was reached faster since, in an earlier bucket
        if cost > max_cost:
            st[5] = 2
            break
        if remaining > 0 and is_stop[u]:
            is_stop[u] = 0
            remaining -= 1
            if remaining == 0:
                st[5] = 2
                break
        z_u = np.float64(zf[u])  # float() of a float32 stays float32 in numba
        for m in range(nm):
            v = np.uint64(np.int64(u) + off[m])
            dv = dist[v]
            # No piece is faster than 6 km/h (nor cheaper than ×1 with a penalty): skip the
            # exponentials when even that cannot improve on the time already found. This
            # also turns away settled cells (their time is below ``cost``).
            if cost + min_hours[m] >= dv:
                continue
            if not walkf[v]:
                continue
            if direct[m]:
                # One piece: its time from the end points, as _move_hours computes it. The
                # cubic below exp (see the bound below) turns away most moves that cannot
                # improve before the exp: 9% of the search on the rugged 2,000² grid.
                tan = sign * (np.float64(zf[v]) - z_u) / sub_len_m[m]
                x = 3.5 * abs(tan + 0.05)
                if bound[m] * (1.0 + x * (1.0 + x * (0.5 + x * (1.0 / 6.0)))) >= dv - cost:
                    continue
                t = sub_len_m[m] / 6000.0 * math.exp(x)
            else:
                # A bound from the end points alone: the pieces have equal lengths and
                # their mean slope is the end points' (Δz / move length), and exp is
                # convex, so the move takes at least min_hours·exp(3.5·|mean tan + 0.05|)
                # (Jensen), and the cubic 1 + x + x²/2 + x³/6 lies below exp(x) for x ≥ 0.
                # Of the moves that pass the test above, the cubic turns most away before
                # their pieces are sampled; testing the exp itself after it turned away
                # 0.2% more (rugged 2,000² grid, 16 moves) and cost more than it saved.
                x = 3.5 * abs(sign * (np.float64(zf[v]) - z_u) * inv_len[m] + 0.05)
                gap = dv - cost
                if bound[m] * (1.0 + x * (1.0 + x * (0.5 + x * (1.0 / 6.0)))) >= gap:
                    continue
                # Forward: time from u to v. Reverse: time from v to u (same pieces, back).
                t = _piece_hours(zf, walkf, penf, use_pen, np.int64(u), m, sign, k, oa, ob,
                                 w, sub_len_m, z_u)
            nd = cost + t
            if nd < dv:
                dist[v] = nd
                if want_pred:
                    pred[v] = u
                b = int((nd - base) * inv_delta)
                if b < nb - 1 and dv < np.inf and int((dv - base) * inv_delta) == b:
                    continue  # v's entry in bucket b is still queued: it will read dist[v]
                if b < nb:
                    if free >= 0:
                        slot = np.uint64(free)
                        free = e_next[slot]
                    else:
                        slot = np.uint64(used)
                        used += 1
                    bu = np.uint64(b)
                    e_node[slot], e_next[slot] = v, head[bu]
                    head[bu] = np.int32(slot)
                else:
                    hsize = _heap_add(hc, hn, hsize, nd, v)
    st[0], st[1], st[2], st[3], st[4] = used, free, hsize, cur, remaining
    st_base[0] = base
    return 0 if st[5] == 2 else short


@njit(cache=True, nogil=True)
def _trace(pred, start):
    """Flat indices from ``start`` back along ``pred`` to a source."""
    n = 0
    i = start
    while i >= 0:
        n += 1
        i = pred[i]
    out = np.empty(n, np.int64)
    i = start
    for j in range(n):
        out[j] = i
        i = pred[i]
    return out


@njit(cache=True, nogil=True)
def _path_hours(z, walk, pen, use_pen, path, nc, lookup, k, ra, ca, rb, cb, w, sub_len_m):
    """Walking hours along consecutive cells of a path (each step one of the moves)."""
    total = 0.0
    half = (lookup.shape[0] - 1) // 2
    for j in range(len(path) - 1):
        r, c = path[j] // nc, path[j] % nc
        r2, c2 = path[j + 1] // nc, path[j + 1] % nc
        m = lookup[r2 - r + half, c2 - c + half]
        total += _move_hours(z, walk, pen, use_pen, r, c, m, 1.0, k, ra, ca, rb, cb, w,
                             sub_len_m)
    return total


# --------------------------------------------------------------------------------------------
# grid handling


@dataclass(frozen=True)
class _Engine:
    """A DEM prepared for the search: padded so no move leaves the grid."""

    z: np.ndarray          # float32 elevations, padded with NaN
    walk: np.ndarray       # uint8, 1 where a walker may stand
    pen: np.ndarray        # float32 time multipliers (1 outside views), padded
    use_pen: bool
    transform: Affine      # of the unpadded grid
    shape: tuple[int, int]  # unpadded
    pad: int
    tables: tuple

    def flat(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return (np.asarray(rows) + self.pad) * (self.shape[1] + 2 * self.pad) + \
            (np.asarray(cols) + self.pad)

    def unflat(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ncp = self.shape[1] + 2 * self.pad
        return idx // ncp - self.pad, idx % ncp - self.pad

    def unpad(self, arr: np.ndarray) -> np.ndarray:
        p = self.pad
        grid = arr.reshape(self.shape[0] + 2 * p, self.shape[1] + 2 * p)
        return grid[p:-p, p:-p]


def _tables(res_x: float, res_y: float, max_step: int = 3) -> tuple:
    mv, k, ra, ca, rb, cb, w = _move_tables(max_step)
    sub_len = np.hypot(mv[:, 0] * res_y, mv[:, 1] * res_x) / k
    half = max_step
    lookup = np.full((2 * half + 1, 2 * half + 1), -1, np.int64)
    for i, (dr, dc) in enumerate(mv):
        for mult in range(1, 2 * half + 1):
            if abs(dr * mult) <= half and abs(dc * mult) <= half:
                lookup[dr * mult + half, dc * mult + half] = i
    return mv, k, ra, ca, rb, cb, w, sub_len, lookup


def _engine(z: np.ndarray, transform: Affine, *, walkable: np.ndarray | None = None,
            penalty: np.ndarray | None = None, max_step: int = 3) -> _Engine:
    res_x, res_y = abs(transform.a), abs(transform.e)
    p = max_step
    zz = np.pad(np.asarray(z, np.float32), p, constant_values=np.nan)
    walk = np.isfinite(zz)
    if walkable is not None:
        walk[p:-p, p:-p] &= np.asarray(walkable, bool)
    if penalty is not None:
        pen = np.pad(np.asarray(penalty, np.float32), p, constant_values=1.0)
    else:
        pen = np.ones((1, 1), np.float32)
    return _Engine(zz, walk.astype(np.uint8), pen, penalty is not None, transform,
                   tuple(z.shape), p, _tables(res_x, res_y, max_step))


def _engine_walk(eng: _Engine, walkable: np.ndarray) -> np.ndarray:
    """The walkable flags of ``eng``'s grid with another mask (for a second search sharing its
    padded elevations and penalty)."""
    p = eng.pad
    walk = np.isfinite(eng.z)
    walk[p:-p, p:-p] &= np.asarray(walkable, bool)
    return walk.astype(np.uint8)


def _run(eng: _Engine, src: np.ndarray, *, src_cost: np.ndarray | None = None,
         stop: np.ndarray | None = None, max_hours: float | None = None, reverse: bool = False,
         want_pred: bool = True) -> tuple[np.ndarray, np.ndarray]:
    mv, k, ra, ca, rb, cb, w, sub_len, _ = eng.tables
    src = np.asarray(src, np.int64)
    cost0 = np.zeros(len(src)) if src_cost is None else np.asarray(src_cost, np.float64)
    stop = np.zeros(0, np.int64) if stop is None else np.asarray(stop, np.int64)
    n = eng.z.size
    # int32 predecessors halve the memory of the search on grids below 2**31 cells
    pred = np.full(n if want_pred else 1, -1, np.int32 if n < 2**31 - 1 else np.int64)
    # Allocated by numpy, not inside the compiled search: numpy asks the kernel for huge
    # pages on large arrays, so the scattered reads of the times do not miss the TLB.
    dist = np.full(n, np.inf)
    if not eng.walk.ravel()[src].all():
        # the search expands sources without checking the grid's edge (see _dijkstra)
        raise ValueError("a source cell is not walkable")
    nm = len(mv)
    is_stop = np.zeros(n if len(stop) else 1, np.uint8)
    is_stop[stop] = 1
    st = np.array([0, -1, 0, 0, int(is_stop.sum()) if len(stop) else 0, 0], np.int64)
    st_base = np.full(1, np.inf)
    head = np.full(_N_BUCKETS, -1, np.int32)
    e_node = np.empty(max(_ROOM, 2 * len(src)) + nm, pred.dtype)  # int32 below 2**31 cells
    e_next = np.empty(len(e_node), np.int32)
    hc = np.empty(len(src) + _ROOM + nm)
    hn = np.empty(len(hc), pred.dtype)
    pen = eng.pen if eng.use_pen else eng.pen.ravel()
    max_cost = np.inf if max_hours is None else float(max_hours)
    while short := _dijkstra(eng.z, eng.walk, pen, src, cost0, max_cost, reverse, pred,
                             dist, mv, k, ra, ca, rb, cb, w, sub_len, is_stop, head, e_node,
                             e_next, hc, hn, st, st_base):
        # more room for the queue: the search resumes where it stopped
        if short == 1:
            e_node, e_next = _doubled(e_node), _doubled(e_next)
        else:
            hc, hn = _doubled(hc), _doubled(hn)
    return dist, pred


def _metric(dem: Dem) -> Dem:
    """``dem`` itself, refused unless it has a metric CRS (walking times are in metres)."""
    if dem.crs is None:
        raise InputError(dem.source or "dem", "crs", "the DEM has no CRS",
                         "set it with gdal_edit.py -a_srs EPSG:XXXX")
    if dem.crs.is_geographic:
        raise InputError(dem.source or "dem", "crs",
                         "walking times need a DEM in metres, this one is in degrees",
                         "read it with gapmap.terrain.as_dem(path), which reprojects it")
    return dem


def _check_search_memory(shape: tuple[int, int], source: str | None) -> None:
    """Refuse a search whose grids would not fit: per padded cell the elevation (4 bytes), the
    walkable flag and the done/stop flags (3), the time (8), the predecessor (4) and the
    penalty (4)."""
    cells = float(shape[0] + 6) * float(shape[1] + 6)
    check_allocation(23.0 * cells, source, None,
                     f"a walking-time search over {shape[0]:,}×{shape[1]:,} cells",
                     "give a smaller area (--margin-km) or a coarser DEM")


def _as_xy(points, crs, what: str) -> np.ndarray:
    """(n, 2) coordinates in ``crs`` from a GeoSeries/GeoDataFrame or an array in ``crs``."""
    if isinstance(points, (gpd.GeoDataFrame, gpd.GeoSeries)):
        g = points.geometry if isinstance(points, gpd.GeoDataFrame) else points
        if g.crs is None:
            raise InputError(what, "crs", f"{what} have no CRS", "give them a CRS")
        g = g.to_crs(crs)
        kinds = set(g.geom_type)
        if kinds - {"Point"}:
            raise InputError(what, "geometry", f"{what} must be points, found {sorted(kinds)}",
                             "give a point layer")
        return shapely.get_coordinates(g.values)
    arr = np.asarray(points, dtype=float)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InputError(what, None, f"expected an (n, 2) array of coordinates, got {arr.shape}",
                         "give x, y pairs in the DEM's CRS")
    return arr


def _cells(transform: Affine, shape: tuple[int, int], xy: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row, column of the cells holding points, and whether they fall on the grid."""
    inv = ~transform
    c, r = inv @ (xy[:, 0], xy[:, 1])
    r = np.floor(np.asarray(r, float)).astype(np.int64)
    c = np.floor(np.asarray(c, float)).astype(np.int64)
    ok = (r >= 0) & (r < shape[0]) & (c >= 0) & (c < shape[1])
    return r, c, ok


def _centres(transform: Affine, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    x, y = transform @ (np.asarray(cols) + 0.5, np.asarray(rows) + 0.5)
    return np.column_stack([x, y])


def _penalty_grid(visible: np.ndarray | None, visible_penalty: float | None,
                  shape: tuple[int, int]) -> np.ndarray | None:
    if visible is None:
        if visible_penalty is not None:
            raise InputError("visible_penalty", None, "a visibility penalty needs posts or a "
                             "visibility mask", "pass posts= (or visible=) with the penalty")
        return None
    vis = np.asarray(visible)
    if vis.shape != shape:
        raise InputError("visible", None, f"visibility mask of shape {vis.shape} is not on the "
                         f"DEM grid {shape}", "compute it on the same DEM")
    p = DEFAULT_VISIBLE_PENALTY if visible_penalty is None else float(visible_penalty)
    if not p >= 1.0:
        raise InputError("--visible-penalty", None, f"penalty must be ≥ 1, got {p}",
                         "give a multiplier such as 3 (three times the walking time)")
    return np.where(vis.astype(bool), np.float32(p), np.float32(1.0))


def _with_water(water, dem, walkable: np.ndarray | None, pen: np.ndarray | None
                ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The walkable mask and time multiplier with water added (:mod:`gapmap.water`): lakes
    cannot be entered, river cells multiply the time so a crossing costs its extra hours."""
    if water is None:
        return walkable, pen
    from .water import crossing_penalty, walk_masks

    walk, extra = walk_masks(water, dem)
    walkable = walk if walkable is None else (np.asarray(walkable, bool) & walk)
    mult = crossing_penalty(extra, dem)
    if mult is not None:
        pen = mult if pen is None else (pen * mult).astype(np.float32)
    return walkable, pen


# --------------------------------------------------------------------------------------------
# public: cost distance


@dataclass(frozen=True)
class CostDistance:
    """Least walking time between sources and every cell of a DEM grid.

    Attributes
    ----------
    hours
        float64 array on the DEM grid: least time (h) from the nearest source to the cell
        (``reverse=False``), or from the cell to the nearest source (``reverse=True``);
        ``inf`` where unreachable or not searched.
    transform, crs
        The DEM grid.
    reverse
        Direction of travel (see ``hours``).
    """

    hours: np.ndarray
    transform: Affine
    crs: Any
    reverse: bool = False
    _engine: _Engine | None = field(default=None, repr=False, compare=False)
    _pred: np.ndarray | None = field(default=None, repr=False, compare=False)

    def path(self, xy: Sequence[float]) -> shapely.LineString:
        """Least-time path between the point ``xy`` (DEM CRS) and its nearest source.

        Vertices are cell centres, ordered in the direction of travel (from the source for
        ``reverse=False``, towards it for ``reverse=True``). Empty when unreachable.

        Examples
        --------
        >>> cd = cost_distance(dem, [[x0, y0]])  # doctest: +SKIP
        >>> cd.path([x1, y1]).length  # doctest: +SKIP
        """
        if self._pred is None or self._engine is None:
            raise ValueError("paths were not kept (keep_paths=False)")
        eng = self._engine
        r, c, ok = _cells(self.transform, self.hours.shape, np.asarray(xy, float).reshape(1, 2))
        if not ok[0] or not np.isfinite(self.hours[r[0], c[0]]):
            return shapely.LineString()
        idx = _trace(self._pred, eng.flat(r, c)[0])
        if not self.reverse:
            idx = idx[::-1]
        rr, cc = eng.unflat(idx)
        pts = _centres(self.transform, rr, cc)
        if len(pts) == 1:
            pts = np.vstack([pts, pts])
        return shapely.simplify(shapely.LineString(pts), 0.0)


def cost_distance(dem, sources, *, visible: np.ndarray | None = None,
                  visible_penalty: float | None = None, reverse: bool = False,
                  stop_at=None, max_hours: float | None = None,
                  walkable: np.ndarray | None = None, keep_paths: bool = True,
                  max_step: int = 3, start_hours: np.ndarray | None = None,
                  water=None) -> CostDistance:
    """Least walking time (Tobler) from the sources to every cell, or from every cell to them.

    Parameters
    ----------
    dem
        A :class:`gapmap.terrain.Dem` (or any object with ``array``, ``transform``, ``crs``) in
        a metric CRS; NaN cells cannot be entered.
    sources
        Points (GeoSeries/GeoDataFrame, or an ``(n, 2)`` array in the DEM's CRS) or a boolean
        mask on the DEM grid. Each source starts at time 0.
    visible, visible_penalty
        Boolean mask of cells seen from posts and the time multiplier there (default 3 when a
        mask is given).
    reverse
        False: time to walk from a source to each cell. True: time to walk from each cell to
        the nearest source (uphill and downhill swap).
    stop_at
        Points or mask: stop as soon as all of these are reached (cells further away keep
        ``inf``).
    max_hours
        Do not search beyond this time: cells further away keep ``inf``.
    walkable
        Boolean mask of cells that may be entered (default: every cell with data).
    keep_paths
        Keep predecessors so :meth:`CostDistance.path` can trace routes.
    max_step
        Longest move in cells (3 → 32 moves; 1 → the 8 king's moves).
    start_hours
        With ``sources`` a mask: the time (h) at which each source cell is reached, on the DEM
        grid (e.g. the walk from the edge of an area to the centre of a cell it touches);
        default 0 everywhere.
    water
        A :class:`gapmap.water.Water`: its lakes cannot be entered and its rivers cost their
        crossing hours (see :mod:`gapmap.water`).

    Returns
    -------
    CostDistance

    Examples
    --------
    >>> import numpy as np
    >>> from affine import Affine
    >>> from gapmap.terrain import Dem
    >>> flat = Dem(np.zeros((101, 101), np.float32), Affine(10, 0, 0, 0, -10, 1010), 32638)
    >>> cd = cost_distance(flat, [[505.0, 505.0]])
    >>> round(float(cd.hours[50, 100]) * TOBLER_FLAT_KMH, 3)  # 500 m east: 0.5 km at 5.04 km/h
    0.5
    """
    dem = _metric(as_dem(dem))
    z = np.asarray(dem.array, np.float32)
    shape = z.shape
    if walkable is not None and np.asarray(walkable).shape != shape:
        raise InputError("walkable", None, "mask is not on the DEM grid", "use the DEM's shape")
    pen = _penalty_grid(visible, visible_penalty, shape)
    walkable, pen = _with_water(water, dem, walkable, pen)
    eng = _engine(z, dem.transform, walkable=walkable, penalty=pen, max_step=max_step)
    src = _index_of(eng, dem, sources, "sources")
    if len(src) == 0:
        raise InputError("sources", None, "no source falls on a DEM cell with data",
                         "place the sources inside the DEM's extent")
    stop = None if stop_at is None else _index_of(eng, dem, stop_at, "stop_at", strict=False)
    cost0 = None
    if start_hours is not None:
        start = np.asarray(start_hours, np.float64)
        if start.shape != shape or not (isinstance(sources, np.ndarray) and sources.dtype == bool):
            raise InputError("start_hours", None, "start times need a source mask on the DEM "
                             "grid", "give sources as a boolean mask and start_hours its shape")
        cost0 = start[eng.unflat(src)]
    dist, pred = _run(eng, src, src_cost=cost0, stop=stop, max_hours=max_hours,
                      reverse=reverse, want_pred=keep_paths)
    if max_hours is not None:
        # The search ends inside the bucket holding max_hours, so the few cells just beyond
        # it that it reached depend on the order that bucket was emptied in; none is kept.
        dist[dist > max_hours] = np.inf
    hours = eng.unpad(dist)
    return CostDistance(hours, dem.transform, dem.crs, reverse, eng if keep_paths else None,
                        pred if keep_paths else None)


def _index_of(eng: _Engine, dem, points, what: str, strict: bool = True) -> np.ndarray:
    """Flat (padded) indices of walkable cells for points or a mask."""
    arr = points
    if isinstance(points, np.ndarray) and points.dtype == bool:
        if points.shape != eng.shape:
            raise InputError(what, None, "mask is not on the DEM grid", "use the DEM's shape")
        rows, cols = np.nonzero(points)
        ok = np.ones(len(rows), bool)
    else:
        xy = _as_xy(arr, dem.crs, what)
        rows, cols, ok = _cells(dem.transform, eng.shape, xy)
        if strict and not ok.all():
            raise InputError(what, None, f"{int((~ok).sum())} point(s) outside the DEM",
                             "use a DEM covering every point")
    idx = eng.flat(rows[ok], cols[ok])
    good = eng.walk.ravel()[idx].astype(bool)
    if strict and not good.all():
        raise InputError(what, None, f"{int((~good).sum())} point(s) on DEM cells without data "
                         "or not walkable", "move them onto ground with elevation data")
    return np.unique(idx[good])


# --------------------------------------------------------------------------------------------
# public: routes between points


def _points_layer(points, what: str) -> gpd.GeoDataFrame:
    from .io import read_layer

    if isinstance(points, gpd.GeoDataFrame):
        gdf = points
    elif isinstance(points, gpd.GeoSeries):
        gdf = gpd.GeoDataFrame(geometry=points)
    else:
        gdf = read_layer(points, what=what, geom_types=("Point",))
    src = gdf.attrs.get("source", what)
    if gdf.crs is None:
        raise InputError(src, "crs", f"{what} have no CRS", "give the layer a CRS")
    if len(gdf) == 0:
        raise InputError(src, None, f"no {what}", "give at least one point")
    kinds = set(gdf.geom_type)
    if kinds - {"Point"}:
        raise InputError(src, "geometry", f"{what} must be single points, found {sorted(kinds)}",
                         "give a point layer (explode multipoints first)")
    return gdf


def _ids(gdf: gpd.GeoDataFrame, id_field: str | None, what: str) -> list:
    if id_field is not None:
        for col in gdf.columns:
            if str(col).lower() == id_field.lower():
                return gdf[col].astype(str).tolist()
        raise InputError(gdf.attrs.get("source", what), id_field, f"field not found in {what}",
                         f"name one of: {', '.join(map(str, gdf.columns.drop(gdf.geometry.name)))}")
    for name in ("name", "id"):
        for col in gdf.columns:
            if str(col).lower() == name and gdf[col].notna().all():
                return gdf[col].astype(str).tolist()
    return [str(i) for i in range(len(gdf))]


def walking_routes(
    dem,
    origins,
    targets,
    *,
    posts=None,
    visible_penalty: float | None = None,
    visible: np.ndarray | None = None,
    pairs: Literal["all", "zip"] = "all",
    id_field: str | None = None,
    margin_km: float | None = None,
    range_km: float = 5.0,
    height_m: float = 10.0,
    target_height_m: float = 2.0,
    progress: bool = False,
    water=None,
) -> gpd.GeoDataFrame:
    """Least-time walking routes (Tobler) from origins to targets over a DEM.

    Parameters
    ----------
    dem
        DEM GeoTIFF path (any CRS; lon/lat DEMs are reprojected to a metric CRS on reading) or a
        :class:`gapmap.terrain.Dem` in a metric CRS.
    origins, targets
        Point layers (GeoDataFrame, GeoSeries or a path). Each point is snapped to the centre
        of the DEM cell holding it.
    posts
        Posts (points; optional ``range_km``, ``height_m``): cells any post sees
        (:func:`gapmap.viewshed.coverage`) cost ``visible_penalty`` times their walking time.
    visible_penalty
        Time multiplier in seen cells, ≥ 1 (default 3 when ``posts`` or ``visible`` is given):
        3 means a seen stretch counts as three times its walking time.
    visible
        A ready visibility mask on the DEM grid (instead of ``posts``).
    pairs
        ``"all"``: every origin to every target; ``"zip"``: origin i to target i.
    id_field
        Field naming the points (default ``name`` or ``id`` when present, else the row number).
    margin_km
        When ``dem`` is a path, only the box around all points grown by this margin is read
        (default: half the box's diagonal, at least 10 km); routes cannot leave it.
    range_km, height_m, target_height_m
        Defaults for posts without their own values (see :func:`gapmap.viewshed.coverage`).
    progress
        Show a progress bar (command line).
    water
        A :class:`gapmap.water.Water`: lakes cannot be entered, rivers cost their crossing
        hours (counted in ``hours``; ``walk_hours`` stays the plain walking time).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per pair, in the DEM's CRS: ``origin``, ``target``, ``hours`` (least time,
        including the penalty when one applies), ``walk_hours`` (plain walking time along that
        route), ``km`` (geodesic length), ``climb_m`` (total ascent), ``exposed_km`` (length
        in seen cells, NaN without visibility) and the route as a LineString through cell
        centres. Unreachable pairs get NaN times and an empty line, with a warning.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> o = gpd.GeoDataFrame({"name": ["camp"]}, geometry=[shapely.Point(44.0, 35.3)], crs=4326)
    >>> t = gpd.GeoDataFrame({"name": ["road"]}, geometry=[shapely.Point(44.1, 35.4)], crs=4326)
    >>> walking_routes("geodata/dem_synthetic.tif", o, t)  # doctest: +SKIP
    """
    o_gdf = _points_layer(origins, "origins")
    t_gdf = _points_layer(targets, "targets")
    if pairs not in ("all", "zip"):
        raise InputError("--pairs", None, f"unknown pairing {pairs!r}", "use 'all' or 'zip'")
    if pairs == "zip" and len(o_gdf) != len(t_gdf):
        raise InputError("--pairs", None, f"zip needs as many origins ({len(o_gdf)}) as "
                         f"targets ({len(t_gdf)})", "give equal counts or use --pairs all")
    o_ids, t_ids = _ids(o_gdf, id_field, "origins"), _ids(t_gdf, id_field, "targets")

    d = _routes_dem(dem, o_gdf, t_gdf, margin_km)
    _check_search_memory(d.shape, d.source)
    if posts is not None:
        if visible is not None:
            raise InputError("posts", None, "give posts or a visibility mask, not both",
                             "drop one of them")
        visible = _posts_visible(d, posts, range_km, height_m, target_height_m, progress)
    pen = _penalty_grid(visible, visible_penalty, d.shape)
    walk, pen = _with_water(water, d, None, pen)
    eng = _engine(np.asarray(d.array, np.float32), d.transform, walkable=walk, penalty=pen)
    o_idx = _point_cells(eng, d, o_gdf, "origins")
    t_idx = _point_cells(eng, d, t_gdf, "targets")
    if pairs == "all":
        pair_list = [(i, j) for i in range(len(o_idx)) for j in range(len(t_idx))]
    else:
        pair_list = [(i, i) for i in range(len(o_idx))]
    results = _route_searches(eng, o_idx, t_idx, pair_list, progress)
    return _routes_table(eng, d, results, pair_list, o_ids, t_ids, visible)


def _routes_dem(dem, o_gdf: gpd.GeoDataFrame, t_gdf: gpd.GeoDataFrame,
                margin_km: float | None) -> Dem:
    """The DEM the routes search: a Dem as it is, or of a file only the box around all the
    points grown by ``margin_km`` (default: half their spread, at least 10 km)."""
    if isinstance(dem, Dem):
        return _metric(as_dem(dem))
    pts = pd.concat([o_gdf.geometry.to_crs(4326), t_gdf.geometry.to_crs(4326)])
    from .crs import metric_crs

    mcrs = metric_crs(gpd.GeoSeries(pts.values, crs=4326))
    xy = shapely.get_coordinates(pts.to_crs(mcrs).values)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    grow = (max(10e3, 0.5 * float(np.hypot(*(hi - lo)))) if margin_km is None
            else float(margin_km) * 1000.0)
    bounds = (lo[0] - grow, lo[1] - grow, hi[0] + grow, hi[1] + grow)
    return _metric(as_dem(dem, bounds=bounds, bounds_crs=mcrs))


def _posts_visible(d: Dem, posts, range_km, height_m, target_height_m,
                   progress: bool) -> np.ndarray:
    """The cells of ``d`` seen from ``posts`` (:func:`gapmap.viewshed.coverage`)."""
    from .viewshed import coverage

    cov = coverage(d, posts, range_km=range_km, height_m=height_m,
                   target_height_m=target_height_m, progress=progress)
    if cov.visible.shape != d.shape:
        raise InputError("posts", None, "the visibility grid does not match the DEM grid",
                         "give a DEM in a metric CRS")
    return cov.visible.astype(bool)


def _route_searches(eng: _Engine, o_idx: np.ndarray, t_idx: np.ndarray, pair_list: list,
                    progress: bool) -> dict[tuple[int, int], tuple]:
    """(hours, walking hours, climb m, path cells) of each pair, from one search per origin
    (forward) or per target (backward), whichever are fewer; NaNs and no path when a pair
    cannot be walked."""
    by_target = len({j for _, j in pair_list}) < len({i for i, _ in pair_list})
    groups: dict[int, list[tuple[int, int]]] = {}
    for i, j in pair_list:
        groups.setdefault(j if by_target else i, []).append((i, j))
    n_cols = eng.shape[1] + 2 * eng.pad
    mv, k, ra, ca, rb, cb, w, sub_len, lookup = eng.tables
    results: dict[tuple[int, int], tuple] = {}
    it = groups.items()
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(list(it), desc="routes", unit="search", leave=False, disable=None)
    for key, members in it:
        src = t_idx[key] if by_target else o_idx[key]
        others = np.array([o_idx[i] if by_target else t_idx[j] for i, j in members])
        dist, pred = _run(eng, np.array([src]), stop=others, reverse=by_target)
        for (i, j), other in zip(members, others):
            hours = float(dist[other])
            if not np.isfinite(hours):
                results[(i, j)] = (np.nan, np.nan, np.nan, None)
                continue
            path = _trace(pred, other)
            if not by_target:
                path = path[::-1]
            walk_h = _path_hours(eng.z, eng.walk, eng.pen, False, path, n_cols, lookup, k, ra,
                                 ca, rb, cb, w, sub_len)
            zpath = eng.z.ravel()[path].astype(float)
            climb = float(np.clip(np.diff(zpath), 0, None).sum())
            results[(i, j)] = (hours, walk_h, climb, path)
    return results


def _routes_table(eng: _Engine, d: Dem, results: dict, pair_list: list, o_ids: list,
                  t_ids: list, visible: np.ndarray | None) -> gpd.GeoDataFrame:
    """The routes' table (see :func:`walking_routes`), one row a pair in ``pair_list``'s
    order; warns once naming the pairs that cannot be walked."""
    rows = []
    geoms = []
    for i, j in pair_list:
        hours, walk_h, climb, path = results[(i, j)]
        if path is None:
            geoms.append(shapely.LineString())
        else:
            rr, cc = eng.unflat(path)
            xy = _centres(d.transform, rr, cc)
            if len(xy) == 1:
                xy = np.vstack([xy, xy])
            geoms.append(shapely.LineString(xy))
        rows.append({"origin": o_ids[i], "target": t_ids[j], "hours": hours,
                     "walk_hours": walk_h, "climb_m": climb})
    unreachable = [f"{r['origin']}→{r['target']}" for r in rows if not np.isfinite(r["hours"])]
    if unreachable:
        warnings.warn(f"{len(unreachable)} route(s) cannot be walked on the DEM (nodata or "
                      f"walls in the way): {', '.join(unreachable[:5])}", stacklevel=3)
    crs = d.crs
    geoms_arr = np.array(geoms, dtype=object)
    out = gpd.GeoDataFrame(rows, geometry=geoms_arr, crs=crs)
    # An origin on the target's cell is reached at once: a zero-hour, zero-km route whose line
    # is that cell's centre twice (GEOS cannot densify or simplify a line of no length).
    still = shapely.length(geoms_arr) == 0
    km = np.zeros(len(geoms_arr))
    km[~still] = geodesic_length_km(geoms_arr[~still], crs)
    out["km"] = km
    out["exposed_km"] = (_exposed_km(geoms_arr, visible, d, crs) if visible is not None
                         else np.nan)
    out.loc[out["hours"].isna(), "km"] = np.nan
    geoms_simple = geoms_arr.copy()
    geoms_simple[~still] = shapely.simplify(geoms_arr[~still], 0.0)  # drop collinear vertices
    out = out.set_geometry(gpd.GeoSeries(geoms_simple, crs=crs))
    return out[["origin", "target", "hours", "walk_hours", "km", "climb_m", "exposed_km",
                "geometry"]]


def _point_cells(eng: _Engine, dem, gdf: gpd.GeoDataFrame, what: str) -> np.ndarray:
    """Flat indices of the cells holding each point (one per point, order kept)."""
    xy = _as_xy(gdf, dem.crs, what)
    r, c, ok = _cells(dem.transform, eng.shape, xy)
    src = gdf.attrs.get("source", what)
    if not ok.all():
        raise InputError(src, "geometry", f"{int((~ok).sum())} of the {what} lie outside the "
                         "DEM", "use a DEM that covers every point")
    idx = eng.flat(r, c)
    bad = eng.walk.ravel()[idx] == 0
    if bad.any():
        raise InputError(src, "geometry", f"{int(bad.sum())} of the {what} lie on DEM cells "
                         "without data", "move them onto ground with elevation data")
    return idx


def _exposed_km(geoms: np.ndarray, visible: np.ndarray, dem, crs) -> np.ndarray:
    """Geodesic km of each line inside seen cells (sampled every quarter cell)."""
    step = min(abs(dem.transform.a), abs(dem.transform.e)) / 4.0
    out = np.zeros(len(geoms))
    for g_i, g in enumerate(geoms):  # one line per route: a handful
        if g is None or g.is_empty or g.length == 0:
            out[g_i] = np.nan if g is None or g.is_empty else 0.0
            continue
        n = max(int(math.ceil(g.length / step)), 1)
        pts = shapely.line_interpolate_point(g, (np.arange(n) + 0.5) / n, normalized=True)
        r, c, ok = _cells(dem.transform, visible.shape, shapely.get_coordinates(pts))
        seen = np.zeros(n, bool)
        seen[ok] = visible[r[ok], c[ok]]
        km = geodesic_length_km([g], crs)[0]
        out[g_i] = km * seen.mean()
    return out


# --------------------------------------------------------------------------------------------
# public: terrain of the unguarded corridors


@dataclass(frozen=True)
class Crossings:
    """Terrain and least-time crossing of each unguarded corridor, from one search.

    Attributes
    ----------
    fields
        Indexed by ``corridor_id``: ``slope_mean_deg``, ``tri_mean_m``, ``crossing_hours``
        (see :func:`corridor_crossings`), aligned to the corridors' order.
    routes
        One row per corridor, in the DEM's CRS: ``corridor_id``, the three fields, ``km``
        (geodesic length of the route, NaN without one) and the route (A's edge → corridor →
        B's edge) as a LineString, empty where no crossing exists.
    """

    fields: pd.DataFrame
    routes: gpd.GeoDataFrame


def _side_masks(zones: gpd.GeoDataFrame, dem, bounds) -> tuple[np.ndarray, np.ndarray]:
    """Cells (by centre) inside side A's and side B's zones, on the DEM grid."""
    box = shapely.box(*bounds)
    out = []
    for tag in ("a", "b"):
        geoms = zones.geometry.values[(zones["side"] == tag).to_numpy()]
        geoms = shapely.clip_by_rect(geoms, *bounds) if len(geoms) else geoms
        geoms = [g for g in geoms if g is not None and not g.is_empty and g.intersects(box)]
        if geoms:
            mask = rasterio.features.rasterize(((g, 1) for g in geoms), out_shape=dem.shape,
                                               transform=dem.transform, fill=0, dtype="uint8")
        else:
            mask = np.zeros(dem.shape, np.uint8)
        out.append(mask.astype(bool))
    return out[0], out[1]


def _edge_cells(mask: np.ndarray) -> np.ndarray:
    """Cells of ``mask`` with a neighbour (of 8) outside it: the zone's edge on the grid."""
    inner = ndimage.binary_erosion(mask, structure=np.ones((3, 3), bool), border_value=1)
    return mask & ~inner


def _line_cells(dem, geom) -> tuple[np.ndarray, np.ndarray]:
    """Rows, cols of the cells a line passes through (sampled every quarter cell)."""
    step = min(abs(dem.transform.a), abs(dem.transform.e)) / 4.0
    parts = shapely.get_parts(geom)
    xy = []
    for p in parts:  # parts of one corridor: a few
        n = max(int(math.ceil(p.length / step)), 1) + 1
        xy.append(shapely.get_coordinates(
            shapely.line_interpolate_point(p, np.linspace(0, 1, n), normalized=True)))
    xy = np.vstack(xy) if xy else np.empty((0, 2))
    r, c, ok = _cells(dem.transform, dem.shape, xy)
    cells = np.unique(np.column_stack([r[ok], c[ok]]), axis=0)
    return cells[:, 0], cells[:, 1]


#: Bytes per cell of a corridor's crossing search (padded grid): the elevations read and their
#: padded copy (4 + 4), the two walkable masks (2), the two searches' times and predecessors
#: (2 × (8 + 4)), their done and stop flags (2), seven boolean masks of zones, edges and window
#: (7), rasterising buffers (2); a penalty adds its grid and padded copy (8).
CROSSING_BYTES_PER_CELL = 45.0
CROSSING_PENALTY_BYTES_PER_CELL = 8.0


def crossing_memory_bytes(rows: int, cols: int, penalty: bool = False) -> float:
    """Peak memory (bytes) of the crossing search over one corridor's window of
    ``rows`` × ``cols`` cells: the formula of ``docs/scale.md``,
    ``400 MB + 45·(rows + 6)·(cols + 6)`` (+ 8 bytes a cell with a visibility or water
    penalty).

    >>> round(crossing_memory_bytes(2000, 2000) / 1e9, 2)
    0.6
    """
    per = CROSSING_BYTES_PER_CELL + (CROSSING_PENALTY_BYTES_PER_CELL if penalty else 0.0)
    from .tiles import BASE_BYTES

    return BASE_BYTES + per * float(rows + 6) * float(cols + 6)


def _grid_box(bounds, transform) -> tuple[int, int]:
    """Rows, cols of a grid window over ``bounds`` (plus the three-cell reading margin)."""
    x0, y0, x1, y1 = bounds
    return (int(math.ceil((y1 - y0) / abs(transform.e))) + 7,
            int(math.ceil((x1 - x0) / abs(transform.a))) + 7)


def crossing_windows(analysis, window_km: float | None = None) -> np.ndarray:
    """Each corridor's search window (polygons in ``analysis.crs``, the corridors' order): the
    corridor grown by ``window_km``, default its widest separation (at most
    ``max_width_km``) + 5 km. Routes may use the union of these windows.

    >>> crossing_windows(res)[0].bounds  # doctest: +SKIP
    """
    corr = analysis.corridors
    geoms = corr.geometry.values
    if window_km is not None:
        grow_m = np.full(len(corr), float(window_km) * 1000.0)
    else:
        wmax = (corr["width_max_km"].to_numpy(float) if "width_max_km" in corr.columns
                else np.full(len(corr), np.nan))
        if np.isnan(wmax).any():
            d_a, d_b = analysis.distances(shapely.centroid(geoms))
            wmax = np.where(np.isnan(wmax), np.asarray(d_a) + np.asarray(d_b), wmax)
        # The zone edges nearest a corridor point are within width/2 of it; a further
        # width/2 + 5 km leaves room for detours around ridges. Seam is never wider than
        # max_width_km, which also bounds the window where a width is missing.
        cap = float(analysis.settings.max_width_km)
        wmax = np.where(np.isfinite(wmax), np.minimum(wmax, cap), cap)
        grow_m = (np.asarray(wmax, float) + 5.0) * 1000.0
    return shapely.buffer(geoms, grow_m, quad_segs=4)


def _terrain_along(d: Dem, geoms, members: list, slope_mean: np.ndarray,
                   tri_mean: np.ndarray) -> None:
    """Mean slope and TRI along each member corridor's line into ``slope_mean``/``tri_mean``,
    each on a small crop of ``d`` around the line (two cells of margin)."""
    from .terrain import mean_along, slope, tri

    inv = ~d.transform
    for i in members:
        g = geoms[i]
        x0, y0, x1, y1 = shapely.bounds(g)
        cs, rs = inv @ (np.array([x0, x1]), np.array([y1, y0]))
        r0 = max(int(math.floor(min(rs))) - 2, 0)
        r1 = min(int(math.ceil(max(rs))) + 3, d.shape[0])
        c0 = max(int(math.floor(min(cs))) - 2, 0)
        c1 = min(int(math.ceil(max(cs))) + 3, d.shape[1])
        if r1 - r0 < 3 or c1 - c0 < 3:
            continue
        crop = Dem(d.array[r0:r1, c0:c1], d.transform @ Affine.translation(c0, r0),
                   d.crs, source=d.source)
        slope_mean[i] = mean_along(slope(crop), crop, [g])[0]
        tri_mean[i] = mean_along(tri(crop), crop, [g])[0]


def _best_crossings(d: Dem, lines: list, members: list, walks: tuple, starts: tuple,
                    pen: np.ndarray | None) -> dict:
    """Each member's crossing on ``d``: {position: (hours, route)}, the least A-edge → corridor
    cell → B-edge time minimised over the corridor's cells. One forward search from A's edge
    cells (``starts[0]``, walking on ``walks[0]``) and one backward search from B's serve all
    the members; each stops once all their cells are reached. Members without a crossing
    are left out."""
    cells = {i: _line_cells(d, g) for i, g in zip(members, lines)}
    out: dict = {}
    all_cells = (np.concatenate([cells[i][0] for i in members]),
                 np.concatenate([cells[i][1] for i in members]))
    if not (starts[0].any() and starts[1].any() and len(all_cells[0])):
        return out
    eng_a = _engine(np.asarray(d.array, np.float32), d.transform, walkable=walks[0],
                    penalty=pen)
    eng_b = _Engine(eng_a.z, _engine_walk(eng_a, walks[1]), eng_a.pen, eng_a.use_pen,
                    eng_a.transform, eng_a.shape, eng_a.pad, eng_a.tables)
    stop = eng_a.flat(*all_cells)
    stop_a = stop[eng_a.walk.ravel()[stop] == 1]  # cells never enterable never settle
    stop_b = stop[eng_b.walk.ravel()[stop] == 1]
    src_a = eng_a.flat(*np.nonzero(starts[0] & walks[0]))
    src_b = eng_b.flat(*np.nonzero(starts[1] & walks[1]))
    src_a = src_a[eng_a.walk.ravel()[src_a] == 1]
    src_b = src_b[eng_b.walk.ravel()[src_b] == 1]
    if not (len(src_a) and len(src_b)):
        return out
    log.info("crossing times: %d corridor cells, %d × %d grid", len(stop), *d.shape)
    t_a, pred_a = _run(eng_a, src_a, stop=stop_a)
    t_b, pred_b = _run(eng_b, src_b, stop=stop_b, reverse=True)
    for i in members:
        rr, cc = cells[i]
        if len(rr) == 0:
            continue
        idx = eng_a.flat(rr, cc)
        total = t_a[idx] + t_b[idx]
        best = int(np.argmin(total))
        if not np.isfinite(total[best]):
            continue
        first = _trace(pred_a, idx[best])[::-1]
        second = _trace(pred_b, idx[best])[1:]
        pr, pc = eng_a.unflat(np.concatenate([first, second]))
        xy = _centres(d.transform, pr, pc)
        if len(xy) == 1:
            xy = np.vstack([xy, xy])
        out[i] = (float(total[best]), shapely.simplify(shapely.LineString(xy), 0.0))
    return out


def _window_holds(box: tuple, d: Dem, lines: list, members: list, found: dict,
                  cell_m: float, cap_b: tuple, names: list) -> tuple[bool, tuple]:
    """Whether the grid ``d`` holds every crossing as fast as the ones ``found``, and the box
    grown to hold them when it does not (not yet clipped to ``cap_b``).

    No walker is faster than 6 km/h (and penalties only slow him): a crossing of these hours
    stays within 6·hours km of the corridor. If that, with two cells to spare for the zone
    edges found on the grid, lies inside the grid (or the grid already reaches the union's
    edge there), no faster crossing exists elsewhere; else the window grows to that reach,
    for every member of the group. A corridor without a crossing inside its window keeps NaN.
    """
    g0, g1, g2, g3 = d.bounds
    inner = (g0 + 2 * cell_m, g1 + 2 * cell_m, g2 - 2 * cell_m, g3 - 2 * cell_m)
    half = 0.5 * cell_m  # the grid reaches the union's edge on that side
    grown = list(box)
    fits = True
    for i, line, name in zip(members, lines, names):
        hours = found[i][0] if i in found else math.inf
        if not math.isfinite(hours):
            continue
        want = shapely.bounds(shapely.buffer(line, 6000.0 * hours + 2 * cell_m, quad_segs=4))
        want = (max(want[0], cap_b[0]), max(want[1], cap_b[1]), min(want[2], cap_b[2]),
                min(want[3], cap_b[3]))
        ok = all(want[j] >= inner[j] or d.bounds[j] <= cap_b[j] + half for j in (0, 1)) and \
            all(want[j] <= inner[j] or d.bounds[j] >= cap_b[j] - half for j in (2, 3))
        if not ok:
            fits = False
            log.info("corridor %s: a crossing of %.2f h may leave its window; growing it",
                     name, hours)
            grown = [min(grown[0], want[0]), min(grown[1], want[1]),
                     max(grown[2], want[2]), max(grown[3], want[3])]
    return fits, tuple(grown)


def _crossing(analysis, dem, *, visible_penalty: float | None, window_km: float | None,
              water=None, max_memory_gb: float | None = None, per_corridor: bool = True,
              groups=None) -> tuple[pd.DataFrame, list, Any]:
    """(fields table, one route per corridor, CRS of the routes).

    Each corridor is searched on its own window of the DEM (``per_corridor``), not on one
    window over all of them, so memory grows with a corridor's window. Routes may use the
    union of all corridors' windows, as when all are searched at once; a corridor's window is
    grown until it holds every cell within 6 km/h × the crossing time found (no route can be
    faster, so none that fast can leave it): the answer is the one of the whole window.
    ``groups`` (lists of corridor positions) searches each group on the box of its members'
    windows instead, grown by the same rule for every member; ``per_corridor=False`` is one
    group of all.
    """
    from .tiles import check_memory, memory_limit_bytes

    corr = analysis.corridors
    ids = corr["corridor_id"].astype(str).tolist() if "corridor_id" in corr.columns else \
        [str(i) for i in range(len(corr))]
    if len(corr) == 0:
        empty = pd.DataFrame({c: pd.Series(dtype=float) for c in TERRAIN_COLUMNS},
                             index=pd.Index([], name="corridor_id", dtype=object))
        return empty, [], analysis.crs
    geoms = corr.geometry.values
    windows = crossing_windows(analysis, window_km)
    wb = shapely.total_bounds(windows)

    # A Dem is used in its own CRS (the vectors go to it) and cut to windows (views: the same
    # cells a file read gives); a file is read in the analysis CRS, one window at a time.
    if isinstance(dem, Dem):
        whole = _metric(dem).window(tuple(wb), analysis.crs)

        def read(box):
            return whole.window(box)
        grid_t, dem_crs, source, cap_b = whole.transform, whole.crs, whole.source, whole.bounds
    else:
        first = _metric(as_dem(dem, bounds=tuple(shapely.bounds(windows[0])),
                               bounds_crs=analysis.crs, crs=analysis.crs))

        def read(box):
            return _metric(as_dem(dem, bounds=tuple(box), bounds_crs=analysis.crs,
                                  crs=analysis.crs))
        grid_t, dem_crs, source = first.transform, first.crs, first.source
        cap_b = tuple(wb)
        del first
    cap_b = tuple(float(v) for v in cap_b)
    zones, posts = analysis.zones, analysis.posts
    if not dem_crs.equals(analysis.crs):  # a Dem object in its own CRS: bring vectors to it
        geoms = gpd.GeoSeries(geoms, crs=analysis.crs).to_crs(dem_crs).values
        windows = gpd.GeoSeries(windows, crs=analysis.crs).to_crs(dem_crs).values
        zones = zones.to_crs(dem_crs)
        posts = posts.to_crs(dem_crs) if posts is not None else None
    penalised = visible_penalty is not None or water is not None
    # Posts see at most this far: the visibility of a window needs the DEM that much wider.
    reach_m = 0.0
    if visible_penalty is not None and posts is not None and len(posts):
        s = analysis.settings
        r = (posts["range_km"].to_numpy(float) if "range_km" in posts.columns
             else np.full(len(posts), float(s.post_range_km)))
        reach_m = float(np.nanmax(np.where(np.isfinite(r), r, s.post_range_km))) * 1000.0
    cell_m = max(abs(grid_t.a), abs(grid_t.e))

    def clip(box):
        return (max(box[0], cap_b[0]), max(box[1], cap_b[1]), min(box[2], cap_b[2]),
                min(box[3], cap_b[3]))

    if groups is None:
        groups = ([[i] for i in range(len(corr))] if per_corridor else [list(range(len(corr)))])
    groups = [sorted(int(i) for i in g) for g in groups if len(g)]
    if sorted(i for g in groups for i in g) != list(range(len(corr))):
        raise InputError("groups", None, "must hold every corridor position once",
                         f"give lists of the positions 0…{len(corr) - 1}, each in one list")
    boxes = [cap_b if len(g) == len(corr) else
             clip(tuple(shapely.total_bounds(windows[g]))) for g in groups]
    limit = memory_limit_bytes(max_memory_gb)
    shapes = [(whole.window(b).shape if isinstance(dem, Dem) else _grid_box(b, grid_t))
              for b in boxes]
    big = int(np.argmax([r * c for r, c in shapes]))

    def check_fits(shape: tuple[int, int], first: int) -> None:
        """Refuse, with the formula's figure, a search whose window does not fit."""
        need = crossing_memory_bytes(*shape, penalty=penalised)
        check_memory(need, limit, what=f"the crossing search of corridor {ids[first]} "
                     f"({shape[0]:,}×{shape[1]:,} cells)",
                     formula="400 MB + 45 bytes a cell of its window" +
                     (" + 8 with a penalty" if penalised else ""),
                     fits=f"allow --max-memory-gb {math.ceil(need / 1e8) / 10:g}, or give a "
                     "coarser DEM or a smaller --window-km")

    check_fits(shapes[big], groups[big][0])

    slope_mean = np.full(len(corr), np.nan)
    tri_mean = np.full(len(corr), np.nan)
    crossing = np.full(len(corr), np.nan)
    routes: list = [shapely.LineString() for _ in range(len(corr))]

    def search(box, members, terrain: bool):
        """Crossings of ``members`` on the grid over ``box``; slope/TRI too if ``terrain``."""
        if reach_m > 0:  # visibility needs the posts' reach around the window
            dv = read(clip((box[0] - reach_m, box[1] - reach_m, box[2] + reach_m,
                            box[3] + reach_m)))
            d = dv.window(box)
        else:
            dv, d = None, read(box)
        check_fits(d.shape, members[0])
        _check_search_memory(d.shape, d.source)
        bounds = tuple(d.bounds)
        gbox = shapely.box(*bounds)
        near = [w for w in windows if w.intersects(gbox)]
        inside = rasterio.features.rasterize(((g, 1) for g in near), out_shape=d.shape,
                                             transform=d.transform, fill=0,
                                             dtype="uint8").astype(bool)
        mask_a, mask_b = _side_masks(zones, d, bounds)
        edge_a, edge_b = _edge_cells(mask_a), _edge_cells(mask_b)
        visible = None
        if visible_penalty is not None:
            if posts is not None and len(posts):
                from .viewshed import coverage

                st = analysis.settings
                vis = coverage(dv, posts, range_km=st.post_range_km, height_m=st.post_height_m,
                               target_height_m=st.target_height_m).visible.astype(bool)
                r0 = int(round((d.transform.f - dv.transform.f) / dv.transform.e))
                c0 = int(round((d.transform.c - dv.transform.c) / dv.transform.a))
                visible = vis[r0:r0 + d.shape[0], c0:c0 + d.shape[1]]
                del vis
            else:
                visible = np.zeros(d.shape, bool)
        del dv
        pen = _penalty_grid(visible, visible_penalty, d.shape)
        dry, pen = _with_water(water, d, None, pen)

        if terrain:  # slope and TRI along each corridor, on a small crop around it
            _terrain_along(d, geoms, members, slope_mean, tri_mean)

        walks = (inside & ~mask_b & (~mask_a | edge_a),   # A's interior adds nothing; B ends it
                 inside & ~mask_a & (~mask_b | edge_b))
        if dry is not None:
            walks = (walks[0] & dry, walks[1] & dry)
        starts = (edge_a & inside, edge_b & inside)
        del inside, mask_a, mask_b, edge_a, edge_b
        out = _best_crossings(d, [geoms[i] for i in members], members, walks, starts, pen)
        return out, d

    for box, members in zip(boxes, groups):  # one window per group (per corridor: one each)
        terrain = True
        while True:
            found, d = search(box, members, terrain)
            terrain = False
            if len(members) == len(corr):  # the whole union: nothing lies outside it
                break
            fits, grown = _window_holds(box, d, [geoms[i] for i in members], members, found,
                                        cell_m, cap_b, [ids[i] for i in members])
            if fits:
                break
            grown = clip(grown)
            if tuple(grown) == tuple(box):  # already as large as the union allows
                break
            box = grown
        for i, (h, line) in found.items():
            crossing[i], routes[i] = h, line
    missing = [ids[i] for i in range(len(corr)) if not np.isfinite(crossing[i])]
    if missing:
        warnings.warn(f"no walking route across the gap through corridor(s) "
                      f"{', '.join(missing[:5])}{'…' if len(missing) > 5 else ''} inside the "
                      "DEM window; crossing_hours left empty", stacklevel=3)
    table = pd.DataFrame({"slope_mean_deg": slope_mean, "tri_mean_m": tri_mean,
                          "crossing_hours": crossing},
                         index=pd.Index(ids, name="corridor_id"))
    return table, routes, dem_crs


def corridor_crossings(analysis, dem, *, visible_penalty: float | None = None,
                       window_km: float | None = None, water=None,
                       max_memory_gb: float | None = None, groups=None) -> Crossings:
    """Slope, ruggedness, crossing time and least-time route of each unguarded corridor.

    For each corridor, one forward search from side A's zone edges and one backward search
    from side B's, on that corridor's window of the DEM (grown, if need be, until it holds
    every cell within 6 km/h × the crossing time: the answer is that of one search over all
    the corridors' windows, with the memory of one corridor's; ``docs/scale.md``). Their paths
    are kept, so the fields and the routes come from the same search
    (:func:`corridor_terrain` and :func:`crossing_routes` return one part each).

    Parameters
    ----------
    analysis
        A :class:`gapmap.Analysis` (its ``corridors``, ``zones`` with ``side``, ``crs``).
    dem
        Anything :func:`gapmap.terrain.as_dem` takes: a :class:`gapmap.terrain.Dem` in a metric
        CRS is used as it is (no copy, no file read; the vectors go to its CRS); a file is
        read in ``analysis.crs``, only the window needed.
    visible_penalty
        If given, time in cells seen from the analysis' posts is multiplied by it (then
        ``crossing_hours`` is a risk-weighted time, not a plain walking time).
    window_km
        How far around each corridor routes may go. Default: the corridor's widest
        separation ``width_max_km`` + 5 km.
    water
        A :class:`gapmap.water.Water`: routes go round its lakes and pay its rivers' crossing
        hours (see :mod:`gapmap.water`).
    max_memory_gb
        Memory the searches may use (decimal GB; default the machine's). Each corridor is
        searched on its own window, ``400 MB + 45 bytes`` a cell of it (``docs/scale.md``);
        a corridor whose window would not fit is refused before any search, with the
        figure.
    groups
        Corridor positions searched together, on the box of their windows (e.g.
        ``[[0, 1, 2], [3]]``; ``[list(range(n))]``: one window over all, the fastest when it
        fits). Default: each corridor on its own window. The answer does not depend on it.

    Returns
    -------
    Crossings
        ``fields``, indexed by ``corridor_id``:

        - ``slope_mean_deg``: mean slope (Horn, degrees) of the cells along the corridor's
          seam line, sampled every half cell (:func:`gapmap.terrain.mean_along`);
        - ``tri_mean_m``: mean terrain ruggedness index (Riley), likewise;
        - ``crossing_hours``: least walking time (Tobler) from side A's zone edge to side B's
          zone edge by a route that passes through the corridor: min over the corridor's
          cells s of T_A(s) + T_B(s), where T_A(s) is the least time from any edge cell of A's
          zones to s, and T_B(s) the least time from s to any edge cell of B's zones. Edge
          cells are the zone cells (by centre) with a neighbour outside the zone, so each end
          of a crossing is measured from within one cell of the zone's edge. Routes stay out
          of the other side's zones and inside the window; NaN when none exists.

        ``routes``: the same fields with ``corridor_id`` as a column, ``km`` (geodesic length
        of the route) and the route s is reached by (A's edge → corridor → B's edge), in the
        DEM's CRS.

    Examples
    --------
    >>> res = gapmap.analyze(zones, side_a, side_b)  # doctest: +SKIP
    >>> cr = corridor_crossings(res, "geodata/dem_synthetic.tif")  # doctest: +SKIP
    >>> cr.fields.columns.tolist(), len(cr.routes) == len(res.corridors)  # doctest: +SKIP
    (['slope_mean_deg', 'tri_mean_m', 'crossing_hours'], True)
    """
    table, routes, crs = _crossing(analysis, dem, visible_penalty=visible_penalty,
                                   window_km=window_km, water=water,
                                   max_memory_gb=max_memory_gb, groups=groups)
    geoms = np.array(routes, dtype=object)
    out = gpd.GeoDataFrame(table.reset_index(), geometry=geoms, crs=crs)
    out["km"] = np.where(shapely.is_empty(geoms), np.nan, geodesic_length_km(geoms, crs))
    return Crossings(table, out)


def corridor_terrain(analysis, dem, *, visible_penalty: float | None = None,
                     window_km: float | None = None, water=None,
                     max_memory_gb: float | None = None) -> pd.DataFrame:
    """Slope, ruggedness and crossing time of each unguarded corridor: the ``fields`` of
    :func:`corridor_crossings` (parameters and definitions there; call it to get the routes
    of the same search as well).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``corridor_id``: ``slope_mean_deg``, ``tri_mean_m``, ``crossing_hours``.

    Examples
    --------
    >>> res = gapmap.analyze(zones, side_a, side_b)  # doctest: +SKIP
    >>> corridor_terrain(res, "geodata/dem_synthetic.tif")  # doctest: +SKIP
                 slope_mean_deg  tri_mean_m  crossing_hours
    corridor_id
    C1                     2.1        6.3            9.8
    """
    return corridor_crossings(analysis, dem, visible_penalty=visible_penalty,
                              window_km=window_km, water=water,
                              max_memory_gb=max_memory_gb).fields


def crossing_routes(analysis, dem, *, visible_penalty: float | None = None,
                    window_km: float | None = None, water=None,
                    max_memory_gb: float | None = None, groups=None) -> gpd.GeoDataFrame:
    """The least-time route across the gap through each corridor, as lines in the DEM's CRS:
    the ``routes`` of :func:`corridor_crossings` (parameters and definitions there).

    Returns
    -------
    geopandas.GeoDataFrame
        ``corridor_id``, ``slope_mean_deg``, ``tri_mean_m``, ``crossing_hours``, ``km``
        (geodesic length of the route) and the route (A's edge → corridor → B's edge).

    Examples
    --------
    >>> crossing_routes(res, "geodata/dem_synthetic.tif").plot()  # doctest: +SKIP
    """
    return corridor_crossings(analysis, dem, visible_penalty=visible_penalty,
                              window_km=window_km, water=water,
                              max_memory_gb=max_memory_gb, groups=groups).routes
