"""Opened and closed stretches of seam between two dates.

Between dates t0 → t1 (the contract's definition), a point p of the unguarded seam at t1 is
*newly unguarded* when the seam at t0 passes within ``match_km`` of p and its nearest point
there was guarded at t0, or when no seam at t0 passes within ``match_km`` of p (the seam
itself moved). ``opened_km`` is the geodesic length of newly unguarded seam at t1;
``closed_km`` the same with t0 and t1 swapped.

How it is measured: each unguarded line is sampled every ``step_m``; each sample's nearest
seam point at the other date is found with an STRtree over the seam's segments (and over the
unguarded segments: the nearest seam point was unguarded when the unguarded seam is as near as
the seam); where the state changes between two samples the change point is found by bisection
along the line to ``tol_m`` (0.1 m by default), so the stretches do not depend on the sampling
step: each end is placed to within 0.7 m (the seam and unguarded lines are simplified by up to
0.5 m apart). A post switched on over 10 km of an unchanged seam closes those 10 km (to ±1.5 m).

>>> import shapely
>>> seam = [shapely.LineString([(0, 0), (20000, 0)])]
>>> before = [shapely.LineString([(0, 0), (20000, 0)])]     # all unguarded
>>> after = [shapely.LineString([(0, 0), (5000, 0)]), shapely.LineString([(15000, 0), (20000, 0)])]
>>> lines = newly_unguarded(seam, after, before)   # t0 = after, t1 = before: closed at "after"
>>> abs(float(shapely.length(shapely.union_all(lines))) - 10_000) <= 1.5
True
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from shapely.ops import substring

from .crs import geodesic_length_km

__all__ = ["newly_unguarded", "change_layers", "CHANGE_COLUMNS"]

#: Columns of the ``opened`` and ``closed`` layers.
CHANGE_COLUMNS = ["date_from", "date_to", "length_km"]
#: Seam and unguarded lines of one date are simplified separately (by < 0.5 m): within this,
#: an unguarded line counts as lying on the seam. It is also how far (at most) each end of an
#: opened or closed stretch may sit from the true change point.
_ON_SEAM_M = 0.6


def _segments(lines: Sequence) -> np.ndarray:
    geoms = np.asarray([g for g in lines if g is not None and not g.is_empty], dtype=object)
    if len(geoms) == 0:
        return np.empty(0, dtype=object)
    parts = shapely.get_parts(geoms)
    xy, idx = shapely.get_coordinates(parts, return_index=True)
    same = idx[:-1] == idx[1:]
    seg = np.stack([xy[:-1][same], xy[1:][same]], axis=1)
    return shapely.linestrings(seg)


class _Nearest:
    """Distance from points to a set of lines (inf when there are none)."""

    def __init__(self, lines: Sequence) -> None:
        self.seg = _segments(lines)
        self.tree = shapely.STRtree(self.seg) if len(self.seg) else None

    def __call__(self, pts: np.ndarray) -> np.ndarray:
        out = np.full(len(pts), np.inf)
        if self.tree is None or len(pts) == 0:
            return out
        idx, d = self.tree.query_nearest(pts, return_distance=True, all_matches=False)
        out[idx[0]] = d
        return out


def _is_new(pts: np.ndarray, seam0: _Nearest, ung0: _Nearest, match_m: float) -> np.ndarray:
    d_seam = seam0(pts)
    d_ung = ung0(pts)
    gone = d_seam > match_m
    was_guarded = d_ung > d_seam + _ON_SEAM_M
    return gone | was_guarded


def newly_unguarded(seam0: Sequence, unguarded0: Sequence, unguarded1: Sequence, *,
                    match_km: float = 1.0, step_m: float = 50.0, tol_m: float = 0.1
                    ) -> np.ndarray:
    """The parts of ``unguarded1`` (lines at t1) newly unguarded since t0.

    Parameters
    ----------
    seam0, unguarded0
        Seam lines and unguarded lines at t0 (metric CRS).
    unguarded1
        Unguarded lines at t1 (same CRS).
    match_km
        How far the seam may move and still count as the same seam.
    step_m, tol_m
        Sampling step along the lines, and the precision of the change points.

    Returns
    -------
    numpy.ndarray
        LineStrings (pieces of ``unguarded1``).
    """
    lines = np.asarray([p for g in unguarded1 if g is not None and not g.is_empty
                        for p in shapely.get_parts(g)], dtype=object)
    if len(lines) == 0:
        return np.empty(0, dtype=object)
    near_seam, near_ung = _Nearest(seam0), _Nearest(unguarded0)
    match_m = match_km * 1000.0
    lengths = shapely.length(lines)
    counts = np.maximum(np.ceil(lengths / step_m).astype(int), 1) + 1
    owner = np.repeat(np.arange(len(lines)), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    k = np.arange(counts.sum()) - np.repeat(starts, counts)
    along = lengths[owner] * k / (counts[owner] - 1)
    new = _is_new(shapely.line_interpolate_point(lines[owner], along), near_seam, near_ung,
                  match_m)
    # Change points between consecutive samples of the same line, refined by bisection.
    same_line = owner[1:] == owner[:-1]
    flip = np.flatnonzero(same_line & (new[1:] != new[:-1]))
    lo, hi = along[flip].copy(), along[flip + 1].copy()
    lo_state = new[flip]
    fl_lines = lines[owner[flip]]
    while len(flip) and np.max(hi - lo) > tol_m:
        mid = (lo + hi) / 2
        s = _is_new(shapely.line_interpolate_point(fl_lines, mid), near_seam, near_ung, match_m)
        go_right = s == lo_state
        lo = np.where(go_right, mid, lo)
        hi = np.where(go_right, hi, mid)
    cut = (lo + hi) / 2
    out = []
    for i in range(len(lines)):
        sl = slice(starts[i], starts[i] + counts[i])
        mine = owner[flip] == i
        cuts = np.concatenate([[0.0], cut[mine], [lengths[i]]])
        state = np.concatenate([[new[sl][0]], ~lo_state[mine]])
        for a, b, s in zip(cuts[:-1], cuts[1:], state):
            if s and b - a > 0:
                out.append(substring(lines[i], a, b))
    return np.asarray(out, dtype=object)


def _layer(pieces: np.ndarray, d0: dt.date, d1: dt.date, crs: CRS) -> gpd.GeoDataFrame:
    km = geodesic_length_km(pieces, crs) if len(pieces) else np.empty(0)
    return gpd.GeoDataFrame({"date_from": [d0.isoformat()] * len(pieces),
                             "date_to": [d1.isoformat()] * len(pieces), "length_km": km},
                            geometry=gpd.GeoSeries(list(pieces), crs=crs), crs=crs)


def change_layers(seams: Sequence[gpd.GeoDataFrame], unguarded: Sequence[gpd.GeoDataFrame],
                  dates: Sequence[dt.date], crs: CRS, *, match_km: float = 1.0
                  ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, pd.DataFrame]:
    """Opened and closed stretches between each pair of consecutive dates.

    Returns
    -------
    opened, closed
        Lines with ``date_from``, ``date_to``, ``length_km`` (opened: on the seam at
        ``date_to``; closed: on the seam at ``date_from``).
    km
        One row per date: ``opened_km``, ``closed_km`` (NaN on the first date).
    """
    geo = [s.geometry.values if len(s) else np.empty(0, dtype=object) for s in seams]
    ung = [u.geometry.values if len(u) else np.empty(0, dtype=object) for u in unguarded]
    opened, closed = [], []
    km = pd.DataFrame({"opened_km": np.nan, "closed_km": np.nan}, index=range(len(dates)))
    for i in range(1, len(dates)):
        o = _layer(newly_unguarded(geo[i - 1], ung[i - 1], ung[i], match_km=match_km),
                   dates[i - 1], dates[i], crs)
        c = _layer(newly_unguarded(geo[i], ung[i], ung[i - 1], match_km=match_km),
                   dates[i - 1], dates[i], crs)
        km.loc[i, "opened_km"] = float(o["length_km"].sum())
        km.loc[i, "closed_km"] = float(c["length_km"].sum())
        opened.append(o)
        closed.append(c)
    empty = _layer(np.empty(0, dtype=object), dt.date.min, dt.date.min, crs)
    cat = (lambda parts: gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=crs)
           if parts else empty)
    return cat(opened), cat(closed), km
