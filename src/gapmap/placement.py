"""Placement of new posts: where K new (joint) posts would close the most unguarded ground.

The problem is a *maximum coverage* problem (docs/metrics.md, "Placement of new posts"):

- the **universe** is the unguarded seam — the corridors of an :class:`~gapmap.Analysis` *and*
  its minor stretches (shorter than ``min_length_km``; they are unguarded ground too, and with
  them the totals equal the summary's ``unguarded_length_km``);
- each **candidate site** covers the part of the universe within its ``range_km`` (and, with a
  DEM and ``visibility=True``, in its line of sight);
- the universe is cut into **elementary pieces** by every candidate's coverage boundary, so
  that each piece is covered by a fixed set of candidates. Without visibility the cuts are the
  exact intersections of the seam's segments with the candidates' circles (closed form, all
  pairs at once); with visibility the seam is cut into pieces of at most ``spacing_m`` and each
  piece is covered when its midpoint is seen (so each end of a covered stretch errs by at most
  ``spacing_m / 2``, as for the corridors themselves);
- each piece weighs its geodesic length in km, or with ``weight="incidents"`` its length times
  its corridor's incidents per km (the incidents to expect on it at the corridor's rate);
- pieces covered by the same set of candidates are merged (an exact reduction), then the K
  sites are chosen by an integer program (:func:`scipy.optimize.milp`, HiGHS) when the problem
  is small enough to solve exactly, otherwise by the lazy greedy algorithm, whose choice is
  within ``1 − 1/e`` of the optimum; an online upper bound says how close it really is.

Among equally good choices the integer program prefers fewer sites (each site costs 10⁻⁶ of
the objective's unit, a millimetre of seam), and both methods stop early, with a note, when
further sites would add nothing.

Examples
--------
>>> import gapmap
>>> from gapmap.placement import place_posts
>>> res = gapmap.analyze("geodata/zones.geojson", gapmap.parse_side("krg=peshmerga"),
...                      gapmap.parse_side("federal=isf,pmf"))  # doctest: +SKIP
>>> pl = place_posts(res, 4, range_km=5)  # doctest: +SKIP
>>> pl.unguarded_before_km, pl.unguarded_after_km, pl.guarantee  # doctest: +SKIP
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from numba import njit
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.spatial import cKDTree

from ._version import __version__
from .crs import GEOD
from .errors import InputError
from .frontier import clip_to_discs, segment_pieces
from .io import atomic_dir, load_posts, read_layer

__all__ = ["MaxCoverage", "Placement", "candidate_grid", "max_coverage", "place_posts",
           "write_placement", "format_placement", "plot_k_curve", "k_curve_rows",
           "MILP_MAX_NONZEROS"]

log = logging.getLogger(__name__)

#: Integer programs up to this many nonzeros (pieces × candidates that cover them, after
#: merging identical pieces) are solved exactly under ``exact="auto"``. HiGHS proves such
#: maximum-coverage instances optimal in seconds; beyond, the lazy greedy is used.
MILP_MAX_NONZEROS = 400_000
#: Objective cost of each site in the integer program, so that it prefers fewer sites among
#: equally good choices (10⁻⁶ km = 1 mm of seam).
SITE_COST = 1e-6
#: Segments are densified to this length before measuring, so that the km of each piece follow
#: the ellipsoid as :func:`gapmap.crs.geodesic_length_km` does.
DENSIFY_M = 1000.0
GREEDY_GUARANTEE = 1 - 1 / math.e
_WEIGHTS = ("length", "incidents")
_EXACT = ("auto", "always", "never")

#: ``visible(cand_idx, xy) -> bool array``: does candidate ``cand_idx[i]`` see point ``xy[i]``?
VisibleFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


# --------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class MaxCoverage:
    """Result of :func:`max_coverage` (a chosen set of candidate sites).

    Attributes
    ----------
    chosen
        Indices of the chosen candidates, in rank order (largest marginal gain first).
    gain
        Marginal gain of each chosen site in the objective's unit (km, or incidents).
    gain_km
        Marginal gain of each chosen site in km of seam.
    total_km
        Length of the whole universe (the unguarded seam), km.
    covered_km
        Length the chosen sites cover together, km.
    value, bound
        Objective reached and the best upper bound on the optimum found (objective's unit).
    method
        ``"milp"`` or ``"lazy-greedy"``.
    optimal
        ``True`` when the choice is proven optimal.
    guarantee
        The optimality statement in words.
    notes
        What else the analyst should know (early stop, time limit).
    covered_rank
        Per universe piece (see ``pieces``), the rank (1-based) of the first chosen site that
        covers it, 0 when none does.
    pieces
        (n, 4) array of piece segments ``x0, y0, x1, y1`` in the lines' CRS.
    stats
        Problem size and timings.
    curve
        The best choice found for each K from 1 to ``k`` (see :func:`k_curve_rows`): a
        DataFrame with ``k``, ``closed_km``, ``value``, ``bound``, ``method``, ``optimal``,
        ``greedy_km``; ``None`` unless asked for.
    """

    chosen: np.ndarray
    gain: np.ndarray
    gain_km: np.ndarray
    total_km: float
    covered_km: float
    value: float
    bound: float
    method: str
    optimal: bool
    guarantee: str
    notes: tuple[str, ...] = ()
    covered_rank: np.ndarray = field(default_factory=lambda: np.zeros(0, int), repr=False)
    pieces: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)), repr=False)
    stats: dict = field(default_factory=dict)
    curve: pd.DataFrame | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Placement:
    """Where K new posts would go and what they would close (see :func:`place_posts`).

    Attributes
    ----------
    sites
        Chosen sites in the analysis CRS: ``rank``, ``name``, ``gain_km`` (marginal gain in
        unguarded km, in the order chosen), ``range_km``, ``height_m`` (and
        ``gain_incidents`` with ``weight="incidents"``).
    closed
        The unguarded seam the sites would cover, lines in the analysis CRS with the ``rank``
        of the first site covering them and ``length_km``.
    candidates
        Every candidate site considered (``name``, ``range_km``, ``height_m``, ``chosen``).
    unguarded_before_km, unguarded_after_km
        Unguarded seam length without and with the new sites, km.
    method
        ``"milp"`` (integer program) or ``"lazy-greedy"``.
    optimal
        ``True`` when the choice is proven optimal.
    bound_km
        Best upper bound found on the length K sites could cover (``weight="length"``); with
        ``weight="incidents"`` the bound is on incidents and is in :attr:`bound`, and this is
        ``None``.
    guarantee
        ``"proven optimal"`` or ``"≥ (1 − 1/e) of optimum; within X% of the bound found"``.
    k
        Number of sites asked for (``len(sites)`` may be smaller: see :attr:`notes`).
    weight
        ``"length"`` or ``"incidents"``.
    value, bound
        Objective reached and its upper bound (km, or incidents).
    visibility
        Whether sites cover only what they can see over the DEM.
    notes
        Early stop, time limit and similar remarks.
    crs
        The analysis CRS.
    k_curve
        Km closed by the best choice found for each K = 1 … ``k`` (the diminishing returns;
        see :func:`k_curve_rows`), or ``None``.
    """

    sites: gpd.GeoDataFrame
    closed: gpd.GeoDataFrame
    candidates: gpd.GeoDataFrame
    unguarded_before_km: float
    unguarded_after_km: float
    method: str
    optimal: bool
    bound_km: float | None
    guarantee: str
    k: int
    weight: str
    value: float
    bound: float
    visibility: bool = False
    notes: tuple[str, ...] = ()
    crs: CRS | None = None
    stats: dict = field(default_factory=dict)
    k_curve: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def closed_km(self) -> float:
        """Unguarded km the new sites would close."""
        return self.unguarded_before_km - self.unguarded_after_km

    def to_dict(self) -> dict:
        """The document written as ``placement.json``.

        Examples
        --------
        >>> pl.to_dict()["unguarded_after_km"]  # doctest: +SKIP
        312.4
        """
        sites = self.sites.to_crs(4326) if len(self.sites) else self.sites
        rows = []
        for i in range(len(sites)):
            r = sites.iloc[i]
            g = r.geometry
            row = {"rank": int(r["rank"]), "name": str(r["name"]),
                   **({"location": str(r["location"])} if "location" in sites.columns else {}),
                   "gain_km": _num(r["gain_km"]), "range_km": _num(r["range_km"]),
                   "height_m": _num(r["height_m"]), "lon": _num(g.x, 6), "lat": _num(g.y, 6)}
            if "gain_incidents" in sites.columns:
                row["gain_incidents"] = _num(r["gain_incidents"])
            rows.append(row)
        unit = "km" if self.weight == "length" else "incidents"
        return {
            "k": int(self.k),
            "sites_placed": int(len(self.sites)),
            "weight": self.weight,
            "visibility": bool(self.visibility),
            "unguarded_before_km": _num(self.unguarded_before_km),
            "unguarded_after_km": _num(self.unguarded_after_km),
            "closed_km": _num(self.closed_km),
            "method": self.method,
            "optimal": bool(self.optimal),
            "guarantee": self.guarantee,
            "bound_km": None if self.bound_km is None else _num(self.bound_km),
            "objective": {"unit": unit, "value": _num(self.value), "bound": _num(self.bound)},
            "candidates": int(len(self.candidates)),
            "notes": list(self.notes),
            "sites": rows,
            "k_curve": ([] if self.k_curve is None else
                        [{"k": int(r.k), "closed_km": _num(r.closed_km),
                          "unguarded_after_km": _num(r.unguarded_after_km),
                          "method": str(r.method), "optimal": bool(r.optimal),
                          "greedy_km": _num(r.greedy_km)}
                         for r in self.k_curve.itertuples()]),
            "stats": {k: (_num(v) if isinstance(v, float) else v) for k, v in self.stats.items()},
            "gapmap_version": __version__,
        }


def _num(v: Any, nd: int = 4) -> float | None:
    v = float(v)
    return round(v, nd) if math.isfinite(v) else None


# --------------------------------------------------------------------------------------------
# the universe: pieces of seam and which candidates cover them


@dataclass(frozen=True)
class _Universe:
    seg: np.ndarray          # (n_pieces, 4) piece segments
    km: np.ndarray           # geodesic-consistent length of each piece, km
    line: np.ndarray         # index of the input line each piece belongs to
    cover: sparse.csr_matrix  # pieces × candidates, True where the candidate covers the piece


def _segments(lines: np.ndarray, max_len_m: float | None
              ) -> tuple[np.ndarray, np.ndarray]:
    """All straight segments of the lines (x0, y0, x1, y1) and the line each belongs to."""
    if max_len_m:
        lines = shapely.segmentize(lines, max_len_m)
    parts, owner = shapely.get_parts(lines, return_index=True)
    xy, idx = shapely.get_coordinates(parts, return_index=True)
    same = idx[:-1] == idx[1:]
    seg = np.column_stack([xy[:-1][same], xy[1:][same]])
    seg_line = owner[idx[:-1][same]]
    keep = np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1]) > 0
    return seg[keep], seg_line[keep]


def _km_per_m(seg: np.ndarray, crs: CRS | None) -> np.ndarray:
    """Geodesic km per planar metre of each segment (1/1000 without a CRS)."""
    planar = np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1])
    if crs is None or len(seg) == 0:
        return np.full(len(seg), 1e-3)
    if crs.is_geographic:
        raise InputError(None, "crs", "placement needs lines in a projected metric CRS",
                         "project the lines first (gapmap.metric_crs)")
    t = Transformer.from_crs(crs, 4326, always_xy=True)
    lon0, lat0 = t.transform(seg[:, 0], seg[:, 1])
    lon1, lat1 = t.transform(seg[:, 2], seg[:, 3])
    _, _, geod_m = GEOD.inv(lon0, lat0, lon1, lat1)
    return np.asarray(geod_m) / planar / 1000.0


def _pieces_exact(seg: np.ndarray, cand_xy: np.ndarray, radius_m: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cut segments by every candidate circle; return piece params and the cover pairs.

    Returns ``(piece_seg, t0, t1, (rows, cols))``: each piece is the sub-segment [t0, t1] of
    segment ``piece_seg``; candidate ``cols[q]`` covers piece ``rows[q]``.
    """
    tree = shapely.STRtree(shapely.linestrings(seg.reshape(-1, 2, 2)))
    q_cand, q_seg = tree.query(shapely.points(cand_xy), predicate="dwithin", distance=radius_m)
    a, b = clip_to_discs(seg[q_seg], cand_xy[q_cand], radius_m[q_cand])
    hit = a < b
    q_cand, q_seg, a, b = q_cand[hit], q_seg[hit], a[hit], b[hit]
    n = len(seg)
    # Breakpoints keyed by 2·segment + t (t ∈ [0, 1]): one sorted array for all segments; the
    # same float expression is used for searching, so look-ups are exact.
    ends = np.arange(n, dtype=float) * 2
    keys = np.unique(np.concatenate([ends, ends + 1.0, 2.0 * q_seg + a, 2.0 * q_seg + b]))
    seg_of = np.floor(keys[:-1] / 2).astype(np.int64)
    valid = (seg_of == np.floor(keys[1:] / 2)) & (keys[1:] > keys[:-1])
    # Piece p spans keys[p] → keys[p + 1]; invalid ones (segment changes) are dropped below.
    lo = np.searchsorted(keys, 2.0 * q_seg + a)
    hi = np.searchsorted(keys, 2.0 * q_seg + b)
    counts = hi - lo
    rows = np.repeat(lo, counts) + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts,
                                                                         counts))
    cols = np.repeat(q_cand, counts)
    renum = np.cumsum(valid) - 1
    keep_rows = valid[rows]
    rows, cols = renum[rows[keep_rows]], cols[keep_rows]
    p_seg = seg_of[valid]
    t0 = keys[:-1][valid] - 2.0 * p_seg
    t1 = keys[1:][valid] - 2.0 * p_seg
    return p_seg, np.clip(t0, 0, 1), np.clip(t1, 0, 1), (rows, cols)


def _universe(lines: np.ndarray, cand_xy: np.ndarray, radius_m: np.ndarray, crs: CRS | None,
              sample_m: float | None, visible: VisibleFn | None) -> _Universe:
    n_c = len(cand_xy)
    if sample_m is None:
        seg, seg_line = _segments(lines, DENSIFY_M)
        if len(seg) == 0:
            return _Universe(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int),
                             sparse.csr_matrix((0, n_c), dtype=bool))
        factor = _km_per_m(seg, crs)
        p_seg, t0, t1, (rows, cols) = _pieces_exact(seg, cand_xy, radius_m)
        pieces = segment_pieces(seg[p_seg], t0, t1)
        seg_len = np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1])
        km = (t1 - t0) * seg_len[p_seg] * factor[p_seg]
        line = seg_line[p_seg]
    else:
        # Pieces of at most sample_m; each is covered when its midpoint is in range and seen.
        pieces, line = _segments(lines, sample_m)
        if len(pieces) == 0:
            return _Universe(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int),
                             sparse.csr_matrix((0, n_c), dtype=bool))
        factor = _km_per_m(pieces, crs)
        km = np.hypot(pieces[:, 2] - pieces[:, 0], pieces[:, 3] - pieces[:, 1]) * factor
        mid = (pieces[:, :2] + pieces[:, 2:]) / 2
        tree = shapely.STRtree(shapely.points(mid))
        cols, rows = tree.query(shapely.points(cand_xy), predicate="dwithin", distance=radius_m)
        if visible is not None and len(rows):
            seen = np.asarray(visible(cols, mid[rows]), dtype=bool)
            cols, rows = cols[seen], rows[seen]
    cover = sparse.csr_matrix((np.ones(len(rows), bool), (rows, cols)),
                              shape=(len(pieces), n_c))
    return _Universe(pieces, km, line, cover)


def _merge_identical(cover: sparse.csr_matrix, w: np.ndarray, km: np.ndarray, seed: int = 7
                     ) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray, np.ndarray]:
    """Merge pieces covered by the same set of candidates (dropping those nobody covers).

    Rows are grouped by two independent 64-bit hashes of their candidate sets (sums of random
    keys, wrapping), a collision-free grouping in practice. Returns the reduced matrix, its
    weights and km, and for each original piece its group (-1: uncovered).
    """
    cover = cover.tocsr()
    cover.sum_duplicates()
    nnz = np.diff(cover.indptr)
    used = np.flatnonzero(nnz > 0)
    group = np.full(cover.shape[0], -1, dtype=np.int64)
    if len(used) == 0:
        return sparse.csr_matrix((0, cover.shape[1]), dtype=bool), np.zeros(0), np.zeros(0), group
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, np.iinfo(np.uint64).max, size=(2, cover.shape[1]), dtype=np.uint64,
                        endpoint=True)
    starts = cover.indptr[used]
    with np.errstate(over="ignore"):
        h1 = np.add.reduceat(keys[0][cover.indices], starts)
        h2 = np.add.reduceat(keys[1][cover.indices], starts)
    sig = np.column_stack([h1, h2, nnz[used].astype(np.uint64)])
    _, first, inv = np.unique(sig, axis=0, return_index=True, return_inverse=True)
    inv = inv.ravel()
    group[used] = inv
    n_g = len(first)
    reduced = cover[used[first]]
    return (reduced, np.bincount(inv, weights=w[used], minlength=n_g),
            np.bincount(inv, weights=km[used], minlength=n_g), group)


# --------------------------------------------------------------------------------------------
# solvers


def _lazy_greedy(cover_csc: sparse.csc_matrix, w: np.ndarray, k: int, tol: float
                 ) -> tuple[list[int], list[float], float, float]:
    """Lazy greedy maximum coverage with the online upper bound.

    Stored gains in the queue are upper bounds of the current ones (coverage is submodular),
    so ``value + sum of the K largest stored gains`` bounds the optimum at every step.
    Returns (chosen, gains, value, bound).
    """
    indptr, indices = cover_csc.indptr, cover_csc.indices
    covered = np.zeros(len(w), bool)
    gains0 = np.asarray(cover_csc.T @ w).ravel()
    heap = [(-g, j) for j, g in enumerate(gains0) if g > tol]
    heapq.heapify(heap)
    chosen: list[int] = []
    gains: list[float] = []
    value = 0.0
    bound = float(np.sort(gains0)[::-1][:k].sum())
    while heap and len(chosen) < k:
        neg, j = heapq.heappop(heap)
        rows = indices[indptr[j]:indptr[j + 1]]
        fresh = float(w[rows][~covered[rows]].sum())
        if fresh <= tol:
            continue  # adds nothing any more: gone for good (gains only shrink)
        if heap and fresh < -heap[0][0]:
            heapq.heappush(heap, (-fresh, j))
            continue
        # j's gain is the largest: the K largest gains now are j's and the next K − 1 stored.
        bound = min(bound, value + fresh - sum(g for g, _ in heapq.nsmallest(k - 1, heap)))
        chosen.append(j)
        gains.append(fresh)
        value += fresh
        covered[rows] = True
    # One exact pass at the end: the current gains of every remaining candidate.
    rest = np.asarray(cover_csc.T @ (w * ~covered)).ravel()
    rest[chosen] = 0
    bound = min(bound, value + float(np.sort(rest)[::-1][:k].sum()))
    return chosen, gains, value, max(bound, value)


def _solve_milp(cover: sparse.csr_matrix, w: np.ndarray, k: int, time_limit_s: float
                ) -> tuple[np.ndarray | None, float, float, int, float]:
    """Exact maximum coverage as an integer program.

    Maximise Σ w_i y_i − c Σ x_j subject to y_i ≤ Σ_(j covers i) x_j and Σ x_j ≤ K, with x
    binary and 0 ≤ y ≤ 1.

    The y_i need not be integer: for integer x the optimum sets y_i = 1 exactly on covered
    pieces. Returns (x or None, value, dual bound, status, gap).
    """
    n_p, n_c = cover.shape
    scale = float(w.max()) if len(w) and w.max() > 0 else 1.0
    ws = w / scale  # keep the objective near 1 for the solver's tolerances
    c = np.concatenate([np.full(n_c, SITE_COST / scale), -ws])
    a_cov = sparse.hstack([-cover.astype(float), sparse.identity(n_p, format="csr")],
                          format="csr")
    a_k = sparse.csr_matrix(np.concatenate([np.ones(n_c), np.zeros(n_p)])[None, :])
    res = milp(c, integrality=np.concatenate([np.ones(n_c), np.zeros(n_p)]),
               bounds=Bounds(0, 1),
               constraints=[LinearConstraint(a_cov, -np.inf, 0), LinearConstraint(a_k, 0, k)],
               options={"time_limit": float(time_limit_s), "mip_rel_gap": 1e-9,
                        "presolve": True, "disp": False})
    if res.x is None:
        return None, 0.0, math.inf, int(res.status), math.inf
    x = res.x[:n_c] > 0.5
    value = float(-res.fun) * scale
    dual = getattr(res, "mip_dual_bound", None)
    bound = float(-dual) * scale if dual is not None and np.isfinite(dual) else math.inf
    gap = float(getattr(res, "mip_gap", math.inf) or 0.0)
    return x, value, bound, int(res.status), gap


def _order_by_gain(cover_csc: sparse.csc_matrix, w: np.ndarray, chosen: Sequence[int],
                   tol: float) -> tuple[list[int], list[float]]:
    """Rank a chosen set greedily (largest marginal gain first); drop sites adding nothing."""
    covered = np.zeros(len(w), bool)
    left = list(chosen)
    order, gains = [], []
    while left:
        g = [float(w[r][~covered[r]].sum())
             for r in (cover_csc.indices[cover_csc.indptr[j]:cover_csc.indptr[j + 1]]
                       for j in left)]
        best = int(np.argmax(g))
        if g[best] <= tol:
            break
        j = left.pop(best)
        order.append(j)
        gains.append(g[best])
        covered[cover_csc.indices[cover_csc.indptr[j]:cover_csc.indptr[j + 1]]] = True
    return order, gains


# --------------------------------------------------------------------------------------------
# the lower-level problem on raw geometries


def max_coverage(
    lines: gpd.GeoSeries | Sequence[shapely.Geometry] | np.ndarray,
    candidates: gpd.GeoDataFrame | gpd.GeoSeries | Sequence[shapely.Point] | np.ndarray,
    k: int,
    *,
    range_km: float | np.ndarray = 5.0,
    weight_per_km: np.ndarray | None = None,
    crs: Any = None,
    sample_m: float | None = None,
    visible: VisibleFn | None = None,
    exact: str = "auto",
    time_limit_s: float = 60.0,
    max_nonzeros: int = MILP_MAX_NONZEROS,
    curve: bool = False,
) -> MaxCoverage:
    """Choose ``k`` candidate sites covering the most (weighted) length of ``lines``.

    Parameters
    ----------
    lines
        (Multi)LineStrings in a projected metric CRS (a GeoSeries carries its CRS).
    candidates
        Points in the same CRS; a GeoDataFrame may carry a ``range_km`` column per site.
    k
        Number of sites to choose (≥ 1).
    range_km
        Coverage radius, km: one value, or one per candidate (overridden by a ``range_km``
        column).
    weight_per_km
        Optional weight per km of each line (e.g. incidents per km); ``None`` weighs length.
    crs
        CRS of ``lines`` and ``candidates`` for geodesic km; ``None`` takes the GeoSeries' CRS,
        or measures planar metres when there is none.
    sample_m
        ``None``: exact coverage by circles. A length: cut lines into pieces of at most
        ``sample_m`` covered when their midpoint is in range (and ``visible``).
    visible
        With ``sample_m``: ``visible(cand_idx, xy)`` → bool per pair, line of sight.
    exact
        ``"auto"``: integer program when the problem has at most ``max_nonzeros`` nonzeros,
        else lazy greedy (with a note); ``"always"``: integer program whatever the size;
        ``"never"``: lazy greedy only. The greedy runs first in every case, and when its own
        bound already proves its choice optimal the integer program is not needed.
    time_limit_s
        Time limit of the integer program; when reached, the better of its best solution and
        the greedy one is kept, with a note.
    max_nonzeros
        Size limit of ``exact="auto"``.
    curve
        Also find the best choice for every K below ``k`` (:attr:`MaxCoverage.curve`).

    Returns
    -------
    MaxCoverage

    Examples
    --------
    >>> import shapely
    >>> line = [shapely.LineString([(0, 0), (10_000, 0)])]
    >>> sites = [shapely.Point(2_500, 0), shapely.Point(5_000, 0), shapely.Point(7_500, 0)]
    >>> cov = max_coverage(line, sites, 2, range_km=np.array([2.5, 3.0, 2.5]))
    >>> cov.chosen.tolist(), round(cov.covered_km, 6), cov.optimal
    ([0, 2], 10.0, True)
    """
    k = _check_k(k)
    if exact not in _EXACT:
        raise InputError(None, "exact", f"unknown value {exact!r}", "use auto, always or never")
    if isinstance(lines, gpd.GeoSeries | gpd.GeoDataFrame):
        crs = lines.crs if crs is None else crs
        lines = lines.geometry.values if isinstance(lines, gpd.GeoDataFrame) else lines.values
    crs = CRS.from_user_input(crs) if crs is not None else None
    lines = np.asarray(lines, dtype=object)
    radius = np.broadcast_to(np.asarray(range_km, dtype=float), (len(candidates),)).copy()
    if isinstance(candidates, gpd.GeoDataFrame):
        if "range_km" in candidates.columns:
            radius = candidates["range_km"].to_numpy(dtype=float)
        cand = candidates.geometry.values
    elif isinstance(candidates, gpd.GeoSeries):
        cand = candidates.values
    else:
        cand = np.asarray(candidates, dtype=object)
    cand_xy = shapely.get_coordinates(np.asarray(cand, dtype=object)).reshape(-1, 2)
    if len(cand_xy) != len(radius):
        raise InputError(None, "candidates", "every candidate must be a single point",
                         "explode multipoints first")
    if np.any(~np.isfinite(radius)) or np.any(radius < 0):
        raise InputError(None, "range_km", "ranges must be numbers ≥ 0", "fix range_km")

    t0 = time.perf_counter()
    uni = _universe(lines, cand_xy, radius * 1000.0, crs, sample_m, visible)
    per_km = np.ones(len(lines)) if weight_per_km is None else np.asarray(weight_per_km, float)
    if len(per_km) != len(lines) or np.any(~np.isfinite(per_km)) or np.any(per_km < 0):
        raise InputError(None, "weight_per_km", "need one finite weight ≥ 0 per line",
                         "give one value per corridor")
    w_piece = uni.km * per_km[uni.line] if len(uni.km) else np.zeros(0)
    total_km = float(uni.km.sum())
    red, w, km_g, group = _merge_identical(uni.cover, w_piece, uni.km)
    t_build = time.perf_counter() - t0
    tol = 1e-9 * max(float(w.sum()), 1e-300)
    csc = red.tocsc()
    stats = {"pieces": int(len(uni.km)), "merged_pieces": int(red.shape[0]),
             "candidates": int(len(cand_xy)), "nonzeros": int(red.nnz),
             "build_s": round(t_build, 3)}
    notes: list[str] = []

    t1 = time.perf_counter()
    g_chosen, _, g_value, g_bound = _lazy_greedy(csc, w, k, tol)
    stats["greedy_s"] = round(time.perf_counter() - t1, 3)
    method, chosen, value, bound, optimal = "lazy-greedy", g_chosen, g_value, g_bound, False
    # The greedy's own bound may already prove it optimal (e.g. disjoint candidates).
    if g_value >= g_bound - max(tol, 1e-9 * g_bound):
        optimal = True
    use_milp = (exact == "always" or (exact == "auto" and red.nnz <= max_nonzeros)) \
        and not optimal and red.shape[0] > 0
    if exact == "auto" and not use_milp and not optimal and red.shape[0] > 0:
        notes.append(f"integer program skipped: {red.nnz:,} nonzeros exceed the exact-solve "
                     f"limit of {max_nonzeros:,} (pass exact='always' to force it)")
    if use_milp:
        t2 = time.perf_counter()
        x, m_value, m_bound, status, gap = _solve_milp(red, w, k, time_limit_s)
        stats["milp_s"] = round(time.perf_counter() - t2, 3)
        m_bound = m_bound + SITE_COST * k  # the bound of the pure coverage objective
        if x is not None:
            m_order, m_gains = _order_by_gain(csc, w, np.flatnonzero(x), tol)
            m_cov = float(sum(m_gains))
            bound = min(bound, m_bound)
            if status == 0:
                method, chosen, value, optimal = "milp", m_order, m_cov, True
                bound = max(min(bound, m_cov + SITE_COST * k), m_cov)
            elif m_cov > value:
                method, chosen, value = "milp", m_order, m_cov
        if status != 0:
            notes.append(f"integer program stopped after {time_limit_s:g} s without proving "
                         f"optimality (status {status}); kept the better of its best solution "
                         "and the greedy one")
        optimal = optimal and status == 0
    if method == "lazy-greedy":
        chosen, gains = _order_by_gain(csc, w, chosen, tol) if chosen else ([], [])
    else:
        gains = _order_by_gain(csc, w, chosen, tol)[1]
    if total_km == 0:
        notes.append("no unguarded seam: nothing to close")
    elif red.shape[0] == 0:
        notes.append("no candidate site is within range (or sight) of the unguarded seam")
    elif float(w.sum()) == 0:
        notes.append("all the seam within reach of the candidates weighs zero (no incidents "
                     "on those corridors): nothing to gain")
    elif len(chosen) < k:
        notes.append(f"only {len(chosen)} site(s) add coverage; the other {k - len(chosen)} "
                     "of the K asked would close nothing more, so they were not placed")
    bound = max(bound, value)
    if optimal:
        bound = value
    chosen_arr = np.asarray(chosen, dtype=np.int64)
    gain_km = _gains_km(csc, km_g, chosen_arr)
    guarantee = _guarantee(optimal, method, value, bound)
    covered_rank = np.zeros(len(group), dtype=np.int64)
    if len(chosen_arr):
        sub = red[:, chosen_arr].toarray()
        first = np.where(sub.any(axis=1), sub.argmax(axis=1) + 1, 0)
        covered_rank[group >= 0] = first[group[group >= 0]]
    covered_km = float(gain_km.sum())
    log.info("placement: %d site(s), %.3f of %.3f km covered, %s (%s)", len(chosen_arr),
             covered_km, total_km, method, guarantee)
    rows = None
    if curve:
        last = {"k": k, "chosen": list(chosen_arr), "value": float(value),
                "bound": float(bound), "method": method, "optimal": bool(optimal)}
        rows = k_curve_rows(red, csc, w, km_g, k, last, use_milp=use_milp,
                            time_limit_s=time_limit_s, tol=tol)
    return MaxCoverage(chosen=chosen_arr, gain=np.asarray(gains, float), gain_km=gain_km,
                    total_km=total_km, covered_km=covered_km, value=float(value),
                    bound=float(bound), method=method, optimal=bool(optimal),
                    guarantee=guarantee, notes=tuple(notes), covered_rank=covered_rank,
                    pieces=uni.seg, stats=stats, curve=rows)


def _km_of(csc: sparse.csc_matrix, km: np.ndarray, chosen: Sequence[int]) -> float:
    covered = np.zeros(len(km), bool)
    for j in chosen:
        covered[csc.indices[csc.indptr[j]:csc.indptr[j + 1]]] = True
    return float(km[covered].sum())


def _value_of(csc: sparse.csc_matrix, w: np.ndarray, chosen: Sequence[int]) -> float:
    return _km_of(csc, w, chosen)


def k_curve_rows(red: sparse.csr_matrix, csc: sparse.csc_matrix, w: np.ndarray,
                 km: np.ndarray, k: int, last: dict, *, use_milp: bool, time_limit_s: float,
                 tol: float) -> pd.DataFrame:
    """The best choice found for each K = 1 … ``k``: the diminishing-returns curve.

    The best K sites need not contain the best K − 1 (two sites flanking a corridor may beat
    the single best site plus any other), so when the integer program is affordable each K
    is solved again exactly (``method="milp"``, ``optimal=True`` once proven), and the
    curve answers "what do K sites buy at best". Otherwise each K takes the first K sites of
    the greedy order — the greedy choice for K, since the greedy algorithm is nested — with
    its ``1 − 1/e`` guarantee and its own bound. Either way a K never closes less than K − 1
    plus the best single addition, so the curve never falls. ``greedy_km`` is the greedy
    order's km for comparison; ``last`` is the solution already found for ``k``.

    Returns
    -------
    pandas.DataFrame
        ``k``, ``closed_km``, ``value`` (the objective: km, or incidents), ``bound`` (upper
        bound on the objective), ``method``, ``optimal``, ``greedy_km``.
    """
    g_chosen, g_gains, _, _ = _lazy_greedy(csc, w, k, tol)
    rows = []
    prev: list[int] = []
    prev_value = 0.0
    for kk in range(1, k + 1):
        if kk == k:
            best = last
        else:
            gk = g_chosen[:kk]
            _, _, gv, gb = _lazy_greedy(csc, w, kk, tol)
            gv = _value_of(csc, w, gk)
            best = {"chosen": list(gk), "value": gv, "bound": max(gb, gv),
                    "method": "lazy-greedy", "optimal": gv >= gb - max(tol, 1e-9 * gb)}
            if use_milp and not best["optimal"]:
                x, _, m_bound, status, _ = _solve_milp(red, w, kk, time_limit_s)
                if x is not None:
                    mc = list(np.flatnonzero(x))
                    mv = _value_of(csc, w, mc)
                    if mv >= gv:
                        best = {"chosen": mc, "value": mv, "method": "milp",
                                "optimal": status == 0,
                                "bound": mv if status == 0 else max(min(best["bound"],
                                                                        m_bound), mv)}
                    elif status == 0:
                        best["optimal"] = True
        if best["value"] < prev_value - tol:  # never below K − 1 plus one more site
            fresh = np.asarray(csc.T @ (w * ~_covered(csc, len(w), prev))).ravel()
            extra = [int(np.argmax(fresh))] if len(fresh) and fresh.max() > tol else []
            best = {**best, "chosen": prev + extra,
                    "value": _value_of(csc, w, prev + extra), "optimal": False}
        prev, prev_value = list(best["chosen"]), float(best["value"])
        rows.append({"k": kk, "closed_km": _km_of(csc, km, best["chosen"]),
                     "value": prev_value, "bound": float(max(best["bound"], prev_value)),
                     "method": best["method"], "optimal": bool(best["optimal"]),
                     "greedy_km": _km_of(csc, km, g_chosen[:kk])})
    return pd.DataFrame(rows, columns=["k", "closed_km", "value", "bound", "method",
                                       "optimal", "greedy_km"])


def _covered(csc: sparse.csc_matrix, n: int, chosen: Sequence[int]) -> np.ndarray:
    out = np.zeros(n, bool)
    for j in chosen:
        out[csc.indices[csc.indptr[j]:csc.indptr[j + 1]]] = True
    return out


def _gains_km(csc: sparse.csc_matrix, km: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    covered = np.zeros(len(km), bool)
    out = np.zeros(len(chosen))
    for i, j in enumerate(chosen):  # K sites: a handful
        rows = csc.indices[csc.indptr[j]:csc.indptr[j + 1]]
        out[i] = km[rows][~covered[rows]].sum()
        covered[rows] = True
    return out


def _guarantee(optimal: bool, method: str, value: float, bound: float) -> str:
    if optimal:
        return "proven optimal"
    pct = 100.0 * (bound - value) / bound if bound > 0 else 0.0
    if method == "lazy-greedy":
        return f"≥ (1 − 1/e) of optimum; within {pct:.1f}% of the bound found"
    return (f"≥ (1 − 1/e) of optimum (at least as good as the greedy choice); "
            f"within {pct:.1f}% of the bound found")


def _check_k(k: Any) -> int:
    try:
        ki = int(k)
    except (TypeError, ValueError):
        ki = -1
    if ki != k or ki < 1:
        raise InputError("--k", None, f"the number of new posts must be a whole number ≥ 1, "
                         f"got {k!r}", "pass --k 1 or more")
    return ki


# --------------------------------------------------------------------------------------------
# candidate sites


def candidate_grid(corridors: gpd.GeoDataFrame | gpd.GeoSeries, spacing_km: float = 2.0
                   ) -> gpd.GeoDataFrame:
    """Candidate sites every ``spacing_km`` along the unguarded corridors.

    Each corridor part of length L gets ``ceil(L / spacing)`` sites at the centres of equal
    stretches (so a part shorter than the spacing still gets one, at its middle).

    Parameters
    ----------
    corridors
        Corridor lines in a projected metric CRS.
    spacing_km
        Distance between neighbouring candidates along a corridor, km (> 0).

    Returns
    -------
    geopandas.GeoDataFrame
        Points with ``name`` (``"<corridor_id> @ <km> km"``) and ``corridor_id``.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> c = gpd.GeoSeries([shapely.LineString([(0, 0), (10_000, 0)])], crs=32638)
    >>> candidate_grid(c, 2.0).geometry.x.tolist()
    [1000.0, 3000.0, 5000.0, 7000.0, 9000.0]
    """
    if not (spacing_km > 0):
        raise InputError("--candidate-spacing-km", None, f"must be > 0, got {spacing_km!r}",
                         "give a positive spacing, e.g. 2")
    gdf = corridors if isinstance(corridors, gpd.GeoDataFrame) else gpd.GeoDataFrame(
        geometry=corridors)
    ids = (gdf["corridor_id"].astype(str).to_numpy() if "corridor_id" in gdf.columns
           else np.array([f"C{i + 1}" for i in range(len(gdf))]))
    parts, owner = shapely.get_parts(gdf.geometry.values, return_index=True)
    if len(parts) == 0:
        return gpd.GeoDataFrame({"name": pd.Series(dtype=object),
                                 "corridor_id": pd.Series(dtype=object)},
                                geometry=gpd.GeoSeries([], crs=gdf.crs), crs=gdf.crs)
    length = shapely.length(parts)
    n = np.maximum(np.ceil(length / (spacing_km * 1000.0) - 1e-9), 1).astype(np.int64)
    part = np.repeat(np.arange(len(parts)), n)
    i = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    step = length[part] / n[part]
    along = (i + 0.5) * step
    pts = shapely.line_interpolate_point(parts[part], along)
    cid = ids[owner[part]]
    names = [f"{c} @ {a / 1000:.1f} km" for c, a in zip(cid, along)]
    return gpd.GeoDataFrame({"name": names, "corridor_id": cid}, geometry=pts, crs=gdf.crs)


def _check_candidate_memory(lines: gpd.GeoDataFrame, spacing_km: float, range_km: float
                            ) -> None:
    """Refuse, before the grid is made, a candidate spacing whose sites and cover pairs would
    not fit in memory.

    Per site about 300 bytes (point, name, table row); each site's disc cuts the seam within
    ``range_km`` of it at every other site's disc edge, so a site covers about
    ``4·range / spacing`` pieces (at most one per site), 32 bytes per cover pair (indices and
    clip parameters).
    """
    from .terrain import check_allocation  # rasterio only when placing

    if not (spacing_km > 0):
        return  # candidate_grid refuses it with its own message
    total_m = float(shapely.length(lines.geometry.values).sum()) if len(lines) else 0.0
    n_sites = math.ceil(total_m / (spacing_km * 1000.0)) + len(lines)
    pairs = n_sites * min(float(n_sites), 4.0 * range_km / spacing_km + 1.0)
    check_allocation(300.0 * n_sites + 32.0 * pairs, "--candidate-spacing-km", None,
                     f"{n_sites:,} candidate sites every {spacing_km * 1000:g} m along "
                     f"{total_m / 1000:,.0f} km of seam",
                     "give a spacing of a few hundred metres or more, e.g. 2 (km)")


def _load_candidates(candidates, analysis, range_km: float, height_m: float
                     ) -> gpd.GeoDataFrame:
    if isinstance(candidates, (str, os.PathLike)):
        gdf = read_layer(candidates, what="candidate sites", geom_types=("Point",))
    elif isinstance(candidates, gpd.GeoDataFrame):
        gdf = candidates
    elif isinstance(candidates, gpd.GeoSeries):
        gdf = gpd.GeoDataFrame(geometry=candidates)
    else:
        raise InputError("--candidates", None, "candidates must be a point layer",
                         "give a file or a GeoDataFrame of points")
    src = gdf.attrs.get("source", "candidates")
    if gdf.crs is None:
        raise InputError(src, "crs", "candidate sites have no coordinate reference system",
                         "declare the layer's CRS (GeoJSON is lon/lat)")
    kinds = set(gdf.geometry.geom_type.dropna())
    if not kinds <= {"Point", "MultiPoint"}:
        raise InputError(src, "geometry", f"candidate sites must be points, found {sorted(kinds)}",
                         "give a point layer")
    if len(gdf) == 0:
        raise InputError(src, None, "no candidate sites", "give at least one point")
    out = load_posts(gdf, default_range_km=range_km, default_height_m=height_m)
    out = out.to_crs(analysis.crs).reset_index(drop=True)
    name_col = next((c for c in out.columns if str(c).lower() == "name"), None)
    names = (out[name_col].astype("string").fillna("").to_numpy() if name_col is not None
             else np.array([""] * len(out), dtype=object))
    out["name"] = [n if n else f"site {i + 1}" for i, n in enumerate(names)]
    return out[["name", "range_km", "height_m", "geometry"]]


# --------------------------------------------------------------------------------------------
# the analysis-level entry point


def place_posts(
    analysis,
    k: int,
    *,
    range_km: float = 5.0,
    height_m: float = 10.0,
    candidates: gpd.GeoDataFrame | str | os.PathLike | None = None,
    candidate_spacing_km: float = 2.0,
    weight: str = "length",
    incidents: gpd.GeoDataFrame | str | os.PathLike | None = None,
    dem: str | os.PathLike | None = None,
    visibility: bool = False,
    exact: str = "auto",
    time_limit_s: float = 60.0,
    places: gpd.GeoDataFrame | str | os.PathLike | None = None,
    k_curve: bool = True,
) -> Placement:
    """Choose where ``k`` new (joint) posts would close the most unguarded seam.

    Parameters
    ----------
    analysis
        A :class:`gapmap.Analysis` (existing posts are already counted in it).
    k
        Number of new posts (≥ 1).
    range_km, height_m
        Range and observer height of the new posts (defaults for candidates without their own
        ``range_km`` / ``height_m``).
    candidates
        Candidate sites (points; optional ``name``, ``range_km``, ``height_m``). ``None``:
        a grid every ``candidate_spacing_km`` along the unguarded corridors and the minor
        stretches (each gets at least one site, at its middle).
    candidate_spacing_km
        Spacing of the generated grid, km.
    weight
        ``"length"``: cover the most unguarded km. ``"incidents"``: weigh each km by its
        corridor's incidents per km (the corridors' ``incidents_per_100km``, computed with
        :func:`gapmap.incidents.incident_metrics` from ``incidents`` when not there yet).
    incidents
        Incidents (a file or GeoDataFrame) for ``weight="incidents"``.
    dem, visibility
        With ``visibility=True``, a site covers only seam it can see over the DEM (``dem``: a
        GeoTIFF path or ``(array, transform, crs)``; default the analysis' own) from
        ``height_m`` above ground, the target ``settings.target_height_m`` above ground; the
        seam is then measured in pieces of ``settings.spacing_m``.
    exact
        ``"auto"``, ``"always"`` or ``"never"`` (see :func:`max_coverage`).
    time_limit_s
        Time limit of the integer program, s.
    places
        Named places (:func:`gapmap.places.load_places`, or a layer to read with it): each
        site gets a ``location`` such as "near Daquq, 4 km NE", which also becomes its
        ``name`` when the site had only a generated one (grid candidates, "site 3").
    k_curve
        Also find the best choice for every K = 1 … ``k`` (:attr:`Placement.k_curve`; each K
        solved again exactly when the integer program is used, see :func:`k_curve_rows`).

    Returns
    -------
    Placement

    Examples
    --------
    >>> import geopandas as gpd, shapely, gapmap
    >>> zones = gpd.GeoDataFrame({"force": ["a", "b"]}, crs=32638,
    ...     geometry=[shapely.box(400e3, 3900e3, 410e3, 4000e3),
    ...               shapely.box(430e3, 3900e3, 440e3, 4000e3)])
    >>> res = gapmap.analyze(zones, gapmap.parse_side("A=a"), gapmap.parse_side("B=b"))
    >>> pl = place_posts(res, 2, range_km=5)
    >>> round(pl.closed_km), pl.guarantee
    (20, 'proven optimal')
    """
    k = _check_k(k)
    if weight not in _WEIGHTS:
        raise InputError("--weight", None, f"unknown weight {weight!r}", "use length or incidents")
    if exact not in _EXACT:
        raise InputError("--exact", None, f"unknown value {exact!r}", "use auto, always or never")
    if not (range_km >= 0) or not (height_m >= 0):
        raise InputError("--range-km", None, "range and height must be ≥ 0",
                         "give non-negative --range-km and --height-m")
    crs = analysis.crs
    parts = [analysis.corridors, analysis.minor]
    lines_gdf = pd.concat([p for p in parts if p is not None and len(p)], ignore_index=True) \
        if any(p is not None and len(p) for p in parts) else analysis.corridors.iloc[:0]
    lines_gdf = gpd.GeoDataFrame(lines_gdf, geometry=lines_gdf.geometry.name, crs=crs)

    if candidates is None:
        _check_candidate_memory(lines_gdf, candidate_spacing_km, range_km)
        cand = candidate_grid(lines_gdf, candidate_spacing_km)
        cand["range_km"] = float(range_km)
        cand["height_m"] = float(height_m)
        cand = cand[["name", "range_km", "height_m", "geometry"]]
    else:
        cand = _load_candidates(candidates, analysis, range_km, height_m)

    per_km = None
    if weight == "incidents":
        per_km = _incidents_per_km(analysis, lines_gdf, incidents)

    visible = None
    sample_m = None
    if visibility:
        dem = dem if dem is not None else getattr(analysis, "dem", None)
        if dem is None:
            raise InputError("--visibility", None, "visibility needs a DEM", "add --dem DEM.tif")
        sample_m = float(analysis.settings.spacing_m)
        visible = _visibility_fn(dem, cand, crs, analysis.settings.target_height_m)

    if len(cand) == 0:
        cov = max_coverage(lines_gdf.geometry, cand.geometry, k, crs=crs, sample_m=sample_m)
    else:
        cov = max_coverage(lines_gdf.geometry, cand, k, weight_per_km=per_km, crs=crs,
                           sample_m=sample_m, visible=visible, exact=exact,
                           time_limit_s=time_limit_s, curve=k_curve)
    before = float(analysis.summary.get("unguarded_length_km", cov.total_km))
    # The universe is the same seam, measured the same way: use the summary's figure as the
    # reference and subtract what the sites cover.
    after = max(before - cov.covered_km, 0.0)

    sites = cand.iloc[cov.chosen].copy().reset_index(drop=True)
    sites.insert(0, "rank", np.arange(1, len(sites) + 1, dtype=np.int64))
    sites["gain_km"] = cov.gain_km
    if weight == "incidents":
        sites["gain_incidents"] = cov.gain
    if places is not None:
        sites = _named_sites(sites, places, grid=candidates is None)
    sites = gpd.GeoDataFrame(sites[[c for c in ("rank", "name", "location", "gain_km",
                                                "gain_incidents", "range_km", "height_m")
                                    if c in sites.columns] + ["geometry"]],
                             geometry="geometry", crs=crs)
    cand_out = cand.copy().reset_index(drop=True)
    cand_out["chosen"] = 0
    cand_out.loc[cov.chosen, "chosen"] = np.arange(1, len(cov.chosen) + 1)
    closed = _closed_lines(cov, crs)
    notes = tuple(cov.notes)
    return Placement(
        sites=sites, closed=closed, candidates=gpd.GeoDataFrame(cand_out, crs=crs),
        unguarded_before_km=before, unguarded_after_km=after, method=cov.method,
        optimal=cov.optimal, bound_km=cov.bound if weight == "length" else None,
        guarantee=cov.guarantee, k=k, weight=weight, value=cov.value, bound=cov.bound,
        visibility=bool(visibility), notes=notes, crs=crs,
        stats={**cov.stats, "universe_km": cov.total_km},
        k_curve=_curve_frame(cov.curve, before))


#: The name gapmap gives a candidate site that has none ("site 2"): a place-based location
#: replaces it, as it replaces the names of grid candidates ("C3 @ 12.0 km").
_GENERATED_NAME = re.compile(r"^site \d+$")


def _named_sites(sites: gpd.GeoDataFrame, places, *, grid: bool) -> gpd.GeoDataFrame:
    """Sites with a ``location`` from the nearest place, which also names unnamed sites."""
    from .places import describe_locations, load_places

    if not isinstance(places, gpd.GeoDataFrame) or "name" not in places.columns:
        places = load_places(places)
    out = sites.copy()
    loc = describe_locations(out, places)
    out["location"] = loc.to_numpy()
    generated = (np.ones(len(out), bool) if grid
                 else out["name"].astype(str).str.match(_GENERATED_NAME).to_numpy())
    out.loc[generated & (loc != "").to_numpy(), "name"] = loc[generated & (loc != "").to_numpy()]
    return out


def _curve_frame(curve: pd.DataFrame | None, before_km: float) -> pd.DataFrame | None:
    """The K curve with the unguarded km left after each K."""
    if curve is None:
        return None
    out = curve.copy()
    out.insert(2, "unguarded_after_km", np.maximum(before_km - out["closed_km"], 0.0))
    return out


def _closed_lines(cov: MaxCoverage, crs: CRS) -> gpd.GeoDataFrame:
    """Covered pieces merged into lines, one row per rank of the first site covering them."""
    ranks = cov.covered_rank
    rows, geoms = [], []
    for r in range(1, len(cov.chosen) + 1):  # K ranks
        seg = cov.pieces[ranks == r]
        if len(seg) == 0:
            continue
        merged = shapely.line_merge(shapely.multilinestrings(shapely.linestrings(
            seg.reshape(-1, 2, 2))))
        rows.append({"rank": r, "length_km": float(cov.gain_km[r - 1])})
        geoms.append(merged)
    return gpd.GeoDataFrame(pd.DataFrame(rows, columns=["rank", "length_km"]),
                            geometry=gpd.GeoSeries(geoms, crs=crs), crs=crs)


def _incidents_per_km(analysis, lines_gdf: gpd.GeoDataFrame, incidents) -> np.ndarray:
    """Incidents per km of each corridor (and minor stretch) of ``lines_gdf``."""
    col = "incidents_per_100km"
    if col not in lines_gdf.columns or lines_gdf[col].isna().all():
        if incidents is None:
            raise InputError("--weight", "incidents", "no incident counts on the corridors",
                             "pass --incidents FILE (or use --weight length)")
        from .incidents import incident_metrics, with_incidents  # only when weighting by them

        inc = incidents
        if isinstance(incidents, (str, os.PathLike)):
            from .incidents import read_incidents

            inc = read_incidents(incidents)
        enriched = with_incidents(analysis, incident_metrics(analysis, inc))
        parts = [enriched.corridors, enriched.minor]
        lines_gdf = pd.concat([p for p in parts if p is not None and len(p)], ignore_index=True)
        if col not in lines_gdf.columns:
            raise InputError("--incidents", col, "incident metrics gave no rate per corridor",
                             "check the incidents layer")
    rate = pd.to_numeric(lines_gdf[col], errors="coerce").fillna(0.0).to_numpy(float) / 100.0
    return np.clip(rate, 0.0, None)


@njit(cache=True)
def _greedy_colouring(indptr: np.ndarray, nbrs: np.ndarray) -> np.ndarray:
    """Colour a graph (CSR adjacency) so that neighbours differ: each node, in order, takes the
    smallest colour none of its already coloured neighbours has."""
    n = len(indptr) - 1
    colour = np.full(n, -1, np.int64)
    taken = np.full(n + 1, -1, np.int64)  # taken[c] == v: colour c is used next to node v
    for v in range(n):
        for q in range(indptr[v], indptr[v + 1]):
            c = colour[nbrs[q]]
            if c >= 0:
                taken[c] = v
        c = 0
        while taken[c] == v:
            c += 1
        colour[v] = c
    return colour


def _separated_batches(xy: np.ndarray, radius_m: np.ndarray) -> np.ndarray:
    """Batch number per site such that sites of one batch have disjoint range discs."""
    n = len(xy)
    if n == 0:
        return np.zeros(0, np.int64)
    tree = cKDTree(xy)
    pairs = tree.query_pairs(2.0 * float(radius_m.max()) + 1.0, output_type="ndarray")
    if len(pairs):
        d = np.hypot(*(xy[pairs[:, 0]] - xy[pairs[:, 1]]).T)
        pairs = pairs[d <= radius_m[pairs[:, 0]] + radius_m[pairs[:, 1]] + 1.0]
    both = np.concatenate([pairs, pairs[:, ::-1]]) if len(pairs) else np.zeros((0, 2), np.int64)
    adj = sparse.csr_matrix((np.ones(len(both), bool), (both[:, 0], both[:, 1])), shape=(n, n))
    return _greedy_colouring(adj.indptr.astype(np.int64), adj.indices.astype(np.int64))


def _visibility_fn(dem, cand: gpd.GeoDataFrame, crs: CRS, target_height_m: float) -> VisibleFn:
    """Line of sight from candidate sites to seam points, via :mod:`gapmap.viewshed`.

    :func:`gapmap.viewshed.visible_from_posts` tells whether *any* of the posts it is given
    sees a point. To learn *which* candidate sees it, candidates are handed over in batches
    whose range discs do not overlap (a greedy colouring of the overlap graph), so that each
    point is in range of exactly one post of its batch: every candidate's viewshed is still
    computed only once, in a few dozen calls.
    """
    from .terrain import as_dem
    from .viewshed import visible_from_posts  # terrain stage; only when used

    # read once for all batches (a Dem is used as it is); lon/lat moves to metres once here,
    # not in every batch
    grid = as_dem(dem)
    grid = as_dem(grid, crs=grid.metric_crs())
    dem_crs = grid.crs if grid.crs is not None else crs
    posts = cand[["range_km", "height_m", "geometry"]].reset_index(drop=True)
    if not CRS.from_user_input(posts.crs).equals(dem_crs):
        posts = posts.to_crs(dem_crs)
    batch = _separated_batches(shapely.get_coordinates(cand.geometry.values),
                               cand["range_km"].to_numpy(float) * 1000.0)
    to_dem = Transformer.from_crs(crs, dem_crs, always_xy=True)

    def visible(cand_idx: np.ndarray, pts: np.ndarray) -> np.ndarray:
        out = np.zeros(len(cand_idx), bool)
        if len(cand_idx) == 0:
            return out
        px, py = to_dem.transform(pts[:, 0], pts[:, 1])
        pxy = np.column_stack([px, py])
        pair_batch = batch[cand_idx]
        order = np.argsort(pair_batch, kind="stable")
        bounds = np.searchsorted(pair_batch[order], np.arange(pair_batch.max() + 2))
        for b in range(len(bounds) - 1):  # one kernel call per batch (a few dozen)
            sel = order[bounds[b]:bounds[b + 1]]
            if len(sel) == 0:
                continue
            members = np.unique(cand_idx[sel])
            out[sel] = visible_from_posts(grid, posts.iloc[members], pxy[sel],
                                          target_height_m=target_height_m)
        return out

    return visible


# --------------------------------------------------------------------------------------------
# writing


def write_placement(placement: Placement, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``sites.geojson`` (EPSG:4326: rank, name, location, gain_km, range_km,
    height_m), ``closed.geojson`` (the seam the sites close), ``placement.json`` and, with
    the K curve, ``k_curve.csv`` and ``k_curve.png`` into ``out_dir``, atomically.

    Returns the written paths by name.

    Examples
    --------
    >>> write_placement(pl, "out/place")  # doctest: +SKIP
    {'closed.geojson': ..., 'placement.json': ..., 'sites.geojson': ...}
    """
    out = Path(out_dir)
    with atomic_dir(out) as stage:
        placement.sites.to_crs(4326).to_file(stage / "sites.geojson", driver="GeoJSON")
        placement.closed.to_crs(4326).to_file(stage / "closed.geojson", driver="GeoJSON")
        (stage / "placement.json").write_text(
            json.dumps(placement.to_dict(), indent=2, ensure_ascii=False) + "\n",
            encoding="utf-8")
        if placement.k_curve is not None:
            placement.k_curve.to_csv(stage / "k_curve.csv", index=False, float_format="%.4f")
            _save_png(plot_k_curve(placement), stage / "k_curve.png")
        names = sorted(p.name for p in stage.iterdir())
    return {n: out / n for n in names}


def plot_k_curve(placement: Placement):
    """The diminishing-returns curve: unguarded km closed by the best K sites, K = 1 … k.

    Draws :attr:`Placement.k_curve` as it is (bars of the km closed, the marginal km of each
    extra site above them; the greedy order's km as a dashed line when it differs).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_k_curve(pl)  # doctest: +SKIP
    """
    from matplotlib.figure import Figure

    curve = placement.k_curve
    if curve is None or not len(curve):
        raise InputError("k_curve", None, "the placement has no K curve",
                         "place the posts with k_curve=True")
    k = curve["k"].to_numpy(int)
    km = curve["closed_km"].to_numpy(float)
    fig = Figure(figsize=(6.0, 3.6), layout="constrained")
    ax = fig.add_subplot()
    ax.bar(k, km, color="#2b6ca3", width=0.6, label="best choice found for K")
    extra = np.diff(np.concatenate([[0.0], km]))
    for x, y, d in zip(k, km, extra):
        ax.annotate(f"{y:,.1f}\n(+{d:,.1f})", (x, y), ha="center", va="bottom", fontsize=8,
                    xytext=(0, 2), textcoords="offset points")
    greedy = curve["greedy_km"].to_numpy(float)
    if not np.allclose(greedy, km, rtol=1e-6, atol=1e-6):
        ax.plot(k, greedy, "k--", lw=1, marker="o", ms=3, label="greedy order")
        ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_xticks(k)
    ax.set_xlabel("new posts (K)")
    ax.set_ylabel("unguarded seam closed, km")
    ax.set_ylim(0, max(float(km.max()), float(greedy.max()), 1e-9) * 1.22)
    proven = bool(curve["optimal"].all())
    ax.set_title("What each extra post buys" + (" (each K proven optimal)" if proven else ""),
                 fontsize=10, loc="left")
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def _save_png(fig, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=200, format="png", metadata={"Software": "gapmap"})


def format_placement(placement: Placement) -> str:
    """Plain-text summary of a placement for the terminal.

    Examples
    --------
    >>> print(format_placement(pl))  # doctest: +SKIP
    """
    lines = [
        f"gapmap place — {placement.k} new post(s), weight: {placement.weight}",
        f"  unguarded before   {placement.unguarded_before_km:10.1f} km",
        f"  unguarded after    {placement.unguarded_after_km:10.1f} km",
        f"  closed             {placement.closed_km:10.1f} km",
        f"  method             {placement.method} — {placement.guarantee}",
    ]
    if placement.bound_km is not None:
        lines.append(f"  bound              {placement.bound_km:10.1f} km coverable at most")
    else:
        lines.append(f"  incidents covered  {placement.value:10.1f}   (closed km × their "
                     f"corridor's incidents per km; bound {placement.bound:.1f})")
    for note in placement.notes:
        lines.append(f"  note: {note}")
    if len(placement.sites):
        lines.append("")
        sites = placement.sites.to_crs(4326)
        lines.append(f"  {'rank':>4}  {'gain_km':>8}  {'lon':>10}  {'lat':>9}  name")
        for i in range(len(sites)):
            r = sites.iloc[i]
            lines.append(f"  {int(r['rank']):>4}  {r['gain_km']:8.1f}  {r.geometry.x:10.5f}  "
                         f"{r.geometry.y:9.5f}  {r['name']}")
    curve = placement.k_curve
    if curve is not None and len(curve) > 1:
        lines.append("")
        lines.append(f"  {'K':>4}  {'closed_km':>9}  {'+km':>7}  method")
        prev = 0.0
        for r in curve.itertuples():
            how = f"{r.method}, {'proven optimal' if r.optimal else 'not proven optimal'}"
            lines.append(f"  {int(r.k):>4}  {r.closed_km:9.1f}  {r.closed_km - prev:7.1f}  {how}")
            prev = r.closed_km
    return "\n".join(lines)
