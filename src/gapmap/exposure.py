"""Road exposure: the stretches of road a cell can reach on foot from its base, unseen.

The question behind a checkpoint taken over on a highway. Given road lines, an ORIGIN (the
cell's base: polygons, lines or points — a ridge, a safe haven, the unguarded corridors of an
analysis), a DEM and optionally posts, every road is split into pieces and each piece is

* ``reachable`` when the walking time from the origin (Tobler's function, as for
  ``crossing_hours``; :func:`gapmap.routes.cost_distance`) is at most ``hours``;
* ``seen`` when a post sees it (line of sight over the DEM, range and heights as in
  ``metrics.md``; :func:`gapmap.viewshed.visible_from_posts`);
* ``exposed`` when reachable and not seen.

How the pieces are cut
----------------------
Walking times come from the grid search, then are carried to any road point ``p`` by the last
straight step: ``hours(p) = min over cells c within 3 cells of p of T(c) + tobler(c → p)``
(the search's own longest move is 3 cells, so this adds no move it would not make). Cells the
origin touches start at the flat walking time from the origin to their centre, not at 0, and a
road point within 3 cells of the origin also gets the direct walk; a point on the origin is 0 h.
On flat ground this gives ``distance / 5.04 km/h`` along the grid's move directions exactly.

With ``water`` (:class:`gapmap.water.Water`) the walk is the corridors' crossing search's:
lakes cannot be entered and a river costs its ``crossing_hours`` per crossing away from the
roads (bridges within 150 m), through the same :func:`gapmap.routes.cost_distance`; the last
straight step pays the same (refused over a lake cell, timed with the mean river multiplier
along it), so on flat ground a road point across one river is reached at the flat time plus
the river's hours.

``road_name``/``where`` pick the roads assessed (:func:`select_roads`), ``posts_date`` the
posts active on a date (:func:`posts_on`); :func:`exposure_change` compares two runs, e.g. with
and without a withdrawn patrol.

Each road is sampled every half cell; where ``reachable`` or ``seen`` changes between two
samples the change is found by bisection along the road to ``tolerance_m`` (default 0.01 m), so
pieces end where the walking time equals ``hours`` and where a post's range or line of sight
ends — a road through a post's range disc on flat ground is cut at the circle. Consecutive
pieces with the same flags are merged. Lengths are geodesic (:func:`gapmap.crs.geodesic_length_km`).

Tiles along the roads
---------------------
The walk needs only its own window (the origin grown by twice ``hours`` at 6 km/h): a road
point outside it is not reached (:func:`hours_at` gives ``inf``). What the posts see is
tested tile by tile: the roads' bounding box is cut into square tiles of the DEM's cells
(their side the largest that fits ``max_memory_gb`` beside the walk, or ``tile_m``), and
each tile's points are tested on the tile's window — the tile grown by the longest post range
and four cells — with only the posts within range of the tile. A run whose one window (walk
and roads together) fits is read once and is one tile, as before; a DEM in memory is cut
into views, never copied.

Why the tiles give the answer of one window, exactly: a post sees a point when the point is
within its range and the viewshed marks its cell, and a cell's mark depends only on cells
between it and the post (nearer in both row and column, :mod:`gapmap.viewshed`). A post that
sees a point of a tile stands within its range of the tile, so its cell and every cell
between them lie in the tile's window, which is cut on the grid's own cells: the same
numbers, point for point (``tests/test_exposure_tiles.py`` compares pieces, flags and
summaries, in memory and from a file). The cuts are found with the samples of one run: each
interval between two samples belongs to the tile of its first sample and is tested and
bisected there (it lies within half a cell of the tile, inside the window); a tile whose
intervals needed fewer halvings than the most any tile needed is halved again at the end,
as one bisection of all of them would. So the cut positions, not only the flags, are those
of one window, bit for bit in the tests.

Reads: each tile's window is read when its samples and bisections are tested, and once more
when the pieces' midpoints are (the sweep runs backwards, so the last tile's window, still
held, is not read again): two reads a tile with posts in range, less one. Tiles without a
post in range are never read for sight; whether a piece lies on the DEM is looked up in a
small read of its tile's cells. One window is held at a time (the memory formula counts
one). Measured on an 8,000² DEM cut into 9 tiles (``docs/scale.md``): 17 window reads.

Examples
--------
>>> import numpy as np, geopandas as gpd, shapely
>>> from affine import Affine
>>> from gapmap.terrain import Dem
>>> flat = Dem(np.zeros((200, 400), np.float32), Affine(50, 0, 400000, 0, -50, 3900000), 32638)
>>> road = gpd.GeoDataFrame(geometry=[shapely.LineString([(400025, 3895025),
...                                                       (419975, 3895025)])], crs=32638)
>>> base = gpd.GeoDataFrame(geometry=[shapely.Point(400025, 3895025)], crs=32638)
>>> ex = road_exposure(road, base, flat, hours=1.0)
>>> round(ex.summary["reachable_km"] / ex.summary["road_km"] * 19.95, 2)  # 1 h at 5.04 km/h
5.04
"""

from __future__ import annotations

import json
import logging
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.ops

from .crs import geodesic_length_km
from .errors import InputError, InputWarning
from .io import atomic_dir
from .routes import cost_distance, tobler_hours
from .terrain import Dem, as_dem

__all__ = ["Exposure", "ExposureChange", "road_exposure", "road_exposure_on_dates",
           "select_roads", "posts_on",
           "exposure_change", "check_hours", "hours_at", "write_exposure",
           "write_exposure_change", "read_exposure", "format_exposure", "format_change",
           "exposure_memory_bytes", "PIECE_COLUMNS", "SUMMARY_KEYS", "CHANGE_KEYS"]

log = logging.getLogger(__name__)

#: Columns of :attr:`Exposure.pieces` (besides geometry).
PIECE_COLUMNS = ["road", "hours_from_origin", "seen", "reachable", "exposed", "length_km"]

#: Keys of :attr:`Exposure.summary`.
SUMMARY_KEYS = ["road_km", "reachable_km", "seen_km", "exposed_km", "hours"]

#: Keys of :attr:`ExposureChange.summary` (``change.json``).
CHANGE_KEYS = ["exposed_km_before", "exposed_km_after", "newly_exposed_km", "no_longer_exposed_km",
               "seen_km_before", "seen_km_after", "posts_before", "posts_after"]

#: The last straight step from the grid to a road point spans at most this many cells (the
#: search's own longest move).
_STEP_CELLS = 3

#: Fastest walk (km/h, Tobler on a gentle descent): nothing beyond hours × this is reachable.
_MAX_KMH = 6.0


@dataclass(frozen=True)
class Exposure:
    """Roads split into pieces that are reachable, seen and exposed.

    Attributes
    ----------
    pieces
        GeoDataFrame of LineStrings in the DEM's CRS: ``road`` (the input road's index),
        ``hours_from_origin`` (least walking time to the piece; NaN when not reached within
        twice ``hours`` or off the DEM), ``seen``, ``reachable``, ``exposed``, ``length_km``
        (geodesic), and the roads' ``name`` when they have one.
    summary
        ``road_km``, ``reachable_km``, ``seen_km``, ``exposed_km`` (geodesic km) and ``hours``,
        plus ``posts`` (posts used) and ``off_dem_km`` (road off the DEM: neither reachable
        nor seen).
    """

    pieces: gpd.GeoDataFrame
    summary: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The summary as written to ``exposure.json``."""
        return dict(self.summary)


# --------------------------------------------------------------------------------------------
# inputs


def check_hours(hours: float) -> float:
    """``hours`` as a float, refused unless finite and > 0.

    >>> check_hours(0)
    Traceback (most recent call last):
    ...
    gapmap.errors.InputError: --hours: must be more than 0 hours, got 0 — give --hours a positive number of hours, e.g. 3
    """
    h = float(hours)
    if not (math.isfinite(h) and h > 0):
        raise InputError("--hours", None, f"must be more than 0 hours, got {hours:g}",
                         "give --hours a positive number of hours, e.g. 3")
    return h


def _as_layer(obj, what: str, kinds: tuple[str, ...]) -> gpd.GeoDataFrame:
    from .io import check_coordinates, read_layer

    if isinstance(obj, gpd.GeoSeries):
        obj = gpd.GeoDataFrame(geometry=obj)
    if isinstance(obj, gpd.GeoDataFrame):
        src = obj.attrs.get("source", what)
        if obj.crs is None:
            raise InputError(src, "crs", f"{what} have no coordinate reference system",
                             "declare the layer's CRS")
        check_coordinates(obj, src, what)
        gdf = obj[~(obj.geometry.isna() | obj.geometry.is_empty)]
        bad = ~gdf.geometry.geom_type.str.replace("Multi", "", regex=False).isin(kinds)
        if bad.any():
            raise InputError(src, "geometry", f"{what} must be {'/'.join(kinds)}, found "
                             f"{sorted(set(gdf.geometry.geom_type[bad]))}",
                             f"give a {'/'.join(kinds).lower()} layer for {what}")
    else:
        src = str(obj)
        gdf = read_layer(obj, what=what, geom_types=kinds)
    if not len(gdf):
        raise InputError(src, None, f"no {what}", "give at least one feature")
    gdf = gdf.copy()
    gdf.attrs["source"] = src
    return gdf


_DASHES = str.maketrans({"\u2013": "-", "\u2014": "-", "\u2212": "-"})


def _norm(text) -> str:
    """Text compared without case and with every dash a hyphen ("Kirkuk-Baghdad" matches
    "Kirkuk–Baghdad")."""
    return " ".join(str(text).translate(_DASHES).casefold().split())


def _field(gdf: gpd.GeoDataFrame, name: str, src: str, opt: str) -> str:
    col = next((c for c in gdf.columns if str(c).lower() == name.lower()), None)
    if col is None or col == gdf.geometry.name:
        fields = ", ".join(str(c) for c in gdf.columns if c != gdf.geometry.name) or "none"
        raise InputError(src, name, f"{opt}: the roads have no field {name!r} (fields: "
                         f"{fields})", f"name one of the roads' fields in {opt}")
    return col


def _values(series: pd.Series, limit: int = 12) -> str:
    vals = sorted({str(v) for v in series.dropna() if str(v).strip()})
    more = f" … ({len(vals)} in all)" if len(vals) > limit else ""
    return ", ".join(repr(v) for v in vals[:limit]) + more if vals else "none"


def select_roads(roads, *, road_name: str | None = None,
                 where: str | tuple[str, str] | None = None) -> gpd.GeoDataFrame:
    """The roads to assess: those whose ``name`` field contains ``road_name`` and/or whose
    ``FIELD`` equals ``VALUE`` (``where="FIELD=VALUE"``).

    Both comparisons ignore case, extra spaces and the kind of dash, so ``"kirkuk-baghdad"``
    matches ``"Kirkuk–Baghdad"``. Nothing matching is refused with the values present.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> r = gpd.GeoDataFrame({"name": ["Kirkuk–Baghdad road", "Erbil–Kirkuk road"],
    ...                       "corridor": ["Kirkuk–Baghdad", "Erbil–Kirkuk"]},
    ...                      geometry=[shapely.LineString([(0, 0), (1, 1)])] * 2, crs=4326)
    >>> list(select_roads(r, road_name="kirkuk-baghdad")["name"])
    ['Kirkuk–Baghdad road']
    >>> list(select_roads(r, where="corridor=Erbil–Kirkuk").index)
    [1]
    >>> select_roads(r, road_name="Mosul")
    Traceback (most recent call last):
    ...
    gapmap.errors.InputError: roads: name: --road-name: no road's name contains 'Mosul' (names: 'Erbil–Kirkuk road', 'Kirkuk–Baghdad road') — give part of one of these names
    """
    gdf = _as_layer(roads, "roads", ("LineString",))
    src = gdf.attrs.get("source", "roads")
    keep = np.ones(len(gdf), bool)
    if road_name is not None and str(road_name).strip():
        col = _field(gdf, "name", src, "--road-name")
        want = _norm(road_name)
        keep &= gdf[col].map(lambda v: v is not None and not pd.isna(v)
                             and want in _norm(v)).to_numpy(bool)
        if not keep.any():
            raise InputError(src, col, f"--road-name: no road's name contains {road_name!r} "
                             f"(names: {_values(gdf[col])})", "give part of one of these names")
    if where is not None:
        if isinstance(where, str):
            if "=" not in where:
                raise InputError("--where", None, f"expected FIELD=VALUE, got {where!r}",
                                 "write it as e.g. --where corridor=Kirkuk–Baghdad")
            field, value = where.split("=", 1)
        else:
            field, value = where
        col = _field(gdf, field.strip(), src, "--where")
        want = _norm(value)
        match = gdf[col].map(lambda v: v is not None and not pd.isna(v)
                             and _norm(v) == want).to_numpy(bool)
        if not (keep & match).any():
            raise InputError(src, col, f"--where: no road has {col} = {value.strip()!r}"
                             f"{' with that name' if road_name else ''} (values: "
                             f"{_values(gdf.loc[keep, col])})", "give one of these values")
        keep &= match
    out = gdf.loc[keep].copy()
    out.attrs["source"] = src
    return out


def posts_on(posts, date, *, range_km: float = 5.0, height_m: float = 10.0
             ) -> gpd.GeoDataFrame:
    """The posts active on ``date``: ``active_from <= date <= active_to`` (a missing bound is
    open), the rule :func:`gapmap.series.posts_active` applies to a series.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> p = gpd.GeoDataFrame({"name": ["patrol", "post"], "active_to": ["2017-10-25", None]},
    ...                      geometry=[shapely.Point(44, 35)] * 2, crs=4326)
    >>> list(posts_on(p, "2017-10-20")["name"]), list(posts_on(p, "2017-10-31")["name"])
    (['patrol', 'post'], ['post'])
    """
    import datetime as dt

    from .io import load_posts
    from .series import _dated_posts, posts_active

    if isinstance(date, dt.datetime):
        day = date.date()
    elif isinstance(date, dt.date):
        day = date
    else:
        try:
            day = dt.date.fromisoformat(str(date).strip())
        except ValueError:
            raise InputError("--posts-date", None, f"not a date: {date!r}",
                             "give the date as YYYY-MM-DD, e.g. 2017-10-31") from None
    frame = load_posts(posts, default_range_km=range_km, default_height_m=height_m)
    src = frame.attrs.get("source", "posts")
    dated = _dated_posts(frame)
    if dated["active_from"].isna().all() and dated["active_to"].isna().all():
        warnings.warn(f"{src}: no post has active_from/active_to: every post counts on "
                      f"{day.isoformat()}", InputWarning, stacklevel=2)
    out = posts_active(dated, day).drop(columns=["active_from", "active_to"])
    out.attrs["source"] = src
    log.info("posts on %s: %d of %d", day.isoformat(), len(out), len(frame))
    return out


def _metric_grid(dem, like: gpd.GeoDataFrame) -> Dem:
    grid = as_dem(dem)
    if grid.crs is None:
        raise InputError(grid.source or "dem", "crs", "the DEM has no CRS",
                         "set it with gdal_edit.py -a_srs EPSG:XXXX")
    if grid.crs.is_geographic:
        from .crs import metric_crs

        grid = as_dem(grid, crs=metric_crs(like))
    t = grid.transform
    if t.b != 0 or t.d != 0:
        raise InputError(grid.source or "dem", "transform", "the DEM grid is rotated",
                         "warp it north-up with gdalwarp")
    return grid


#: Bytes a cell of the walk's window (padded by 3 cells): elevations padded (4), walkable and
#: done/stop flags (3), times padded and unpadded (8 + 8), start times (8), the origin's cells
#: and their rasterising buffer (2), a river penalty and the water masks (5); rounded up.
WALK_BYTES_PER_CELL = 40.0

#: Bytes a cell of a DEM window read from a file: the float32 cells and the read's mask
#: (:func:`gapmap.tiles.read_window`: measured 5.3 reading 64 M cells).
READ_BYTES_PER_CELL = 5.0

#: Bytes a cell of the one window of a run read whole (:func:`gapmap.terrain.as_dem`, which
#: also checks and converts the cells): measured 13.6 at the peak reading 64 M cells.
ONE_READ_BYTES_PER_CELL = 14.0

#: Bytes a cell of one post's viewshed window (uint16 counts), one window per numba thread.
VIEW_BYTES_PER_CELL = 2.0

#: Smallest tile (cells across) the memory limit may cut the roads into: below it the halo,
#: read again by every tile, is most of each window.
MIN_TILE_CELLS = 64

#: Cells a tile's window reaches beyond the longest post range: the samples and bisections
#: of a tile reach up to half a cell past it, a post's own cell one more; rounded up.
_HALO_EXTRA_CELLS = 4


def exposure_memory_bytes(read_cells: float, walk_rows: int, walk_cols: int,
                          view_cells: float = 0.0, threads: int = 1, *,
                          one_window: bool = False) -> float:
    """Peak memory (bytes) of an exposure run by the formula of ``docs/scale.md``:
    ``400 MB + 5·(cells read) + 40·(R+6)·(C+6) + 2·V·threads``.

    ``R × C`` is the walk's window; the cells read are those held at once: the walk's window
    and one tile's window — or, with ``one_window``, the one window of a run read whole, at
    14 bytes a cell; ``V`` the cells of one post's viewshed window (the longest range and a
    cell diagonal on each side), one per numba thread.

    >>> round(exposure_memory_bytes(1000 * 1000, 1000, 1000) / 1e9, 3)
    0.465
    >>> round(exposure_memory_bytes(1000 * 1000, 1000, 1000, 2000 * 2000, 2) / 1e9, 3)
    0.481
    >>> round(exposure_memory_bytes(1000 * 1000, 1000, 1000, one_window=True) / 1e9, 3)
    0.474
    """
    from .tiles import BASE_BYTES

    per_cell = ONE_READ_BYTES_PER_CELL if one_window else READ_BYTES_PER_CELL
    return (BASE_BYTES + per_cell * float(read_cells)
            + WALK_BYTES_PER_CELL * float(walk_rows + 6) * float(walk_cols + 6)
            + VIEW_BYTES_PER_CELL * float(view_cells) * max(int(threads), 1))


def _view_cells(reach_m: float, cell_m: float) -> int:
    """Cells of the viewshed window of a post of range ``reach_m`` (as
    :func:`gapmap.viewshed.visible_from_posts` allocates it: the range and a cell diagonal)."""
    if reach_m <= 0:
        return 0
    return (2 * (int(reach_m / cell_m) + 3) + 1) ** 2


def _walk_margin_m(hours: float, cell_m: float) -> float:
    """How far around the origin the walk's window reaches: nothing beyond twice the hours at
    the fastest walk matters (reported as not reached), plus four cells."""
    return 2.0 * hours * _MAX_KMH * 1000.0 + 4 * cell_m


def _grow(b, m: float) -> tuple[float, float, float, float]:
    return (b[0] - m, b[1] - m, b[2] + m, b[3] + m)


def _clip(b, c) -> tuple[float, float, float, float]:
    return (max(b[0], c[0]), max(b[1], c[1]), min(b[2], c[2]), min(b[3], c[3]))


def _box_shape(b, cell_x: float, cell_y: float, full) -> tuple[int, int]:
    """Rows, cols of a grid window over ``b`` (plus the 3-cell margin of a windowed read),
    at most those of the grid over ``full``."""
    return (min(max(int(math.ceil((b[3] - b[1]) / cell_y)), 0) + 7,
                int(math.ceil((full[3] - full[1]) / cell_y - 1e-9))),
            min(max(int(math.ceil((b[2] - b[0]) / cell_x)), 0) + 7,
                int(math.ceil((full[2] - full[0]) / cell_x - 1e-9))))


# --------------------------------------------------------------------------------------------
# tiles along the roads


class _Source:
    """Where the tiles' windows come from: a grid in memory (views, no copies) or a projected
    DEM file (windowed reads). One window is held at a time: the next read drops it."""

    def __init__(self, grid: Dem | None = None, *, path=None, transform=None, shape=None,
                 crs=None):
        self.grid = grid
        self.path = path
        self.transform = grid.transform if grid is not None else transform
        self.shape = tuple(grid.shape) if grid is not None else tuple(shape)
        self.crs = grid.crs if grid is not None else crs
        self.source = grid.source if grid is not None else str(path)
        self._held: tuple[tuple[int, int, int, int], Dem] | None = None
        self.reads: list[tuple[int, int]] = []  # shapes of the tiles' windows read
        self.cell_reads: list[tuple[int, int]] = []  # shapes of the on-DEM look-ups read

    def window(self, r0: int, c0: int, r1: int, c1: int) -> Dem:
        """Rows ``r0:r1``, columns ``c0:c1`` of the grid as a :class:`Dem`."""
        from affine import Affine

        key = (int(r0), int(c0), int(r1), int(c1))
        if self._held is not None and self._held[0] == key:
            return self._held[1]
        t = self.transform @ Affine.translation(key[1], key[0])
        if self.grid is not None:
            win = Dem(self.grid.array[key[0]:key[2], key[1]:key[3]], t, self.crs,
                      source=self.source)
        else:
            from . import tiles

            self._held = None  # the last window goes before the next is read
            arr = tiles.read_window(self.path, *key)
            self.reads.append(arr.shape)
            win = Dem(arr, t, self.crs, source=self.source)
        self._held = (key, win)
        return win

    def finite_at(self, xy: np.ndarray, tiles: _Tiles) -> np.ndarray:
        """Whether points fall on a cell of the DEM with data (the test of ``off_dem_km``).

        From a file: looked up in the window held when it holds the point, else read cell by
        cell (GDAL's block cache, capped as for tiles, serves the points of one block)."""
        if self.grid is not None:
            return _on_dem(self.grid, xy)
        out = np.zeros(len(xy), bool)
        if not len(xy):
            return out
        inv = ~self.transform
        cf, rf = inv @ (xy[:, 0], xy[:, 1])
        r, c = np.floor(rf).astype(np.int64), np.floor(cf).astype(np.int64)
        h, w = self.shape
        ok = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        if self._held is not None:
            (r0, c0, r1, c1), win = self._held
            held = ok & (r >= r0) & (r < r1) & (c >= c0) & (c < c1)
            out[held] = np.isfinite(win.array[r[held] - r0, c[held] - c0])
            ok &= ~held
        if ok.any():
            import rasterio

            from .tiles import GDAL_CACHE_BYTES

            idx = np.flatnonzero(ok)
            # the cells' centres: a point on a cell's edge is looked up in the cell it is in
            cx, cy = self.transform @ (c[idx] + 0.5, r[idx] + 0.5)
            with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES // 2**20), \
                    rasterio.open(self.path) as ds:
                vals = np.ma.concatenate([v for v in ds.sample(zip(cx, cy), indexes=1,
                                                                masked=True)])
            self.cell_reads.append((len(idx), 1))
            out[idx] = ~np.ma.getmaskarray(vals) & np.isfinite(np.ma.getdata(vals))
        return out


@dataclass(frozen=True)
class _Tiles:
    """Square tiles of ``cells`` cells over the cells ``core`` = (r0, c0, r1, c1) of a grid
    (the roads' bounding box); a tile's window is the tile grown by ``halo`` cells, clipped to
    the grid."""

    core: tuple[int, int, int, int]
    cells: int
    halo: int
    shape: tuple[int, int]
    transform: Any

    @property
    def rows(self) -> int:
        return max(int(math.ceil((self.core[2] - self.core[0]) / self.cells)), 1)

    @property
    def cols(self) -> int:
        return max(int(math.ceil((self.core[3] - self.core[1]) / self.cells)), 1)

    @property
    def count(self) -> int:
        return self.rows * self.cols

    def of(self, xy: np.ndarray) -> np.ndarray:
        """The tile of each point (points beyond the roads' box: the nearest tile)."""
        inv = ~self.transform
        cf, rf = inv @ (xy[:, 0], xy[:, 1])
        tr = np.clip((np.floor(rf) - self.core[0]) // self.cells, 0, self.rows - 1)
        tc = np.clip((np.floor(cf) - self.core[1]) // self.cells, 0, self.cols - 1)
        return (tr * self.cols + tc).astype(np.int64)

    def cells_of(self, tid: int) -> tuple[int, int, int, int]:
        """The tile's own cells (r0, c0, r1, c1)."""
        tr, tc = divmod(int(tid), self.cols)
        r0 = self.core[0] + tr * self.cells
        c0 = self.core[1] + tc * self.cells
        return r0, c0, min(r0 + self.cells, self.core[2]), min(c0 + self.cells, self.core[3])

    def window(self, tid: int) -> tuple[int, int, int, int]:
        """The tile's window (r0, c0, r1, c1): its cells grown by the halo, clipped."""
        r0, c0, r1, c1 = self.cells_of(tid)
        h, w = self.shape
        return (max(r0 - self.halo, 0), max(c0 - self.halo, 0), min(r1 + self.halo, h),
                min(c1 + self.halo, w))

    def box(self, tid: int) -> tuple[float, float, float, float]:
        """The tile's own cells in the grid's CRS (west, south, east, north)."""
        r0, c0, r1, c1 = self.cells_of(tid)
        x0, y0 = self.transform @ (c0, r0)
        x1, y1 = self.transform @ (c1, r1)
        return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)

    def largest_window(self) -> tuple[int, int]:
        return _window_dims(self.cells, self.halo, self.core, self.shape)


def _window_dims(cells: int, halo: int, core, shape) -> tuple[int, int]:
    """Rows, cols of the largest window of tiles of ``cells`` grown by ``halo`` over
    ``core``."""
    return (min(min(cells, core[2] - core[0]) + 2 * halo, shape[0]),
            min(min(cells, core[3] - core[1]) + 2 * halo, shape[1]))


def _core_cells(transform, shape, b) -> tuple[int, int, int, int]:
    """The cells of the grid over the box ``b`` (at least one, clipped to the grid)."""
    h, w = shape
    inv = ~transform
    cx, ry = inv @ (np.array([b[0], b[2]]), np.array([b[3], b[1]]))
    cx, ry = np.sort(cx), np.sort(ry)
    c0 = int(np.clip(np.floor(cx[0]), 0, w - 1))
    r0 = int(np.clip(np.floor(ry[0]), 0, h - 1))
    c1 = int(np.clip(np.floor(cx[1]) + 1, c0 + 1, w))
    r1 = int(np.clip(np.floor(ry[1]) + 1, r0 + 1, h))
    return r0, c0, r1, c1


class _TiledSight:
    """What the posts see, tile by tile: each tile's points on the tile's window with only the
    posts within range of the tile (see the module docstring)."""

    def __init__(self, source: _Source, tiles: _Tiles, posts, *, range_km: float,
                 height_m: float, target_height_m: float, margin_m: float):
        from .viewshed import _as_posts_frame

        frame = _as_posts_frame(posts, range_km, height_m)
        frame = frame[~(frame.geometry.isna() | frame.geometry.is_empty)]
        if len(frame) and not (frame.geometry.geom_type == "Point").all():
            frame = frame.explode(index_parts=False)
        if frame.crs is not None and source.crs is not None and not source.crs.equals(frame.crs):
            frame = frame.to_crs(source.crs)
        self.source, self.tiles, self.posts = source, tiles, frame
        self.kw = dict(range_km=range_km, height_m=height_m, target_height_m=target_height_m)
        points = bool(len(frame)) and bool((frame.geometry.geom_type == "Point").all())
        self._xy = shapely.get_coordinates(frame.geometry.values) if points else None
        self._range_m = frame["range_km"].to_numpy(float) * 1000.0
        self._margin_m = float(margin_m)
        self._near: dict[int, np.ndarray] = {}

    def posts_near(self, tid: int) -> np.ndarray:
        """Positions of the posts within range of the tile (grown by the margin)."""
        if tid not in self._near:
            if self._xy is None:  # not points: every post, for the viewshed to refuse
                near = np.arange(len(self.posts))
            else:
                x0, y0, x1, y1 = _grow(self.tiles.box(tid), self._margin_m)
                px, py = self._xy[:, 0], self._xy[:, 1]
                d = np.hypot(np.maximum(np.maximum(x0 - px, px - x1), 0.0),
                             np.maximum(np.maximum(y0 - py, py - y1), 0.0))
                near = np.flatnonzero(d <= self._range_m * 1.01 + 1.0)
            self._near[tid] = near
        return self._near[tid]

    def in_tile(self, tid: int, xy: np.ndarray) -> np.ndarray:
        """Which of ``xy`` (within the margin of tile ``tid``) some post sees."""
        near = self.posts_near(tid)
        if not len(near) or not len(xy):
            return np.zeros(len(xy), bool)
        from .viewshed import visible_from_posts

        win = self.source.window(*self.tiles.window(tid))
        return visible_from_posts(win, self.posts.iloc[near], xy, **self.kw)

    def __call__(self, xy: np.ndarray) -> np.ndarray:
        """Which of ``xy`` some post sees, tile after tile (last tile first: the window held
        after a sweep in order is used again)."""
        out = np.zeros(len(xy), bool)
        if not len(xy):
            return out
        tid = self.tiles.of(xy)
        for t in np.unique(tid)[::-1]:
            sel = tid == t
            out[sel] = self.in_tile(int(t), xy[sel])
        return out


@dataclass
class _Plan:
    """The walk's grid, where the tiles' windows come from, and the tiles."""

    grid: Dem
    source: _Source
    tiles: _Tiles


def _post_reach_m(frames: list, range_km: float) -> float:
    reach_m = 0.0
    for f in frames:
        if f is not None and len(f):
            r = (f["range_km"].to_numpy(float) if "range_km" in f.columns
                 else np.full(len(f), float(range_km)))
            reach_m = max(reach_m, float(np.nanmax(np.where(np.isfinite(r), r, range_km)))
                          * 1000.0)
    return reach_m


@dataclass(frozen=True)
class _Frame:
    """The DEM's grid as a run sees it, in the metric CRS it works in: where the origin's walk
    and the roads lie on it, and what reading them takes (:func:`_frame_of`)."""

    in_memory: bool            # a projected Dem held in memory (used as it is)
    crs: Any                   # the DEM's own CRS
    work: Any                  # the metric CRS the run works in
    tr: Any                    # the file's transform (None for a Dem in memory)
    hw: tuple                  # the file's (rows, cols) (None for a Dem in memory)
    full: tuple                # the DEM's bounds in ``work``
    cell_x: float
    cell_y: float
    ob: tuple                  # the origin's bounds in ``work``
    rb: tuple                  # the roads' bounds in ``work``
    reach_m: float             # the longest post range
    view: int                  # cells across a post's viewshed
    threads: int
    grid: Dem | None           # the Dem in memory, made metric (None otherwise)
    hours: float               # the run's walking hours

    @property
    def res(self) -> float:
        return max(self.cell_x, self.cell_y)

    @property
    def cell(self) -> float:
        return min(self.cell_x, self.cell_y)

    @property
    def halo(self) -> int:
        return int(math.ceil(self.reach_m / self.cell)) + _HALO_EXTRA_CELLS

    def shape(self, box: tuple) -> tuple[int, int]:
        return _box_shape(box, self.cell_x, self.cell_y, self.full)

    def walk_box(self, hours: float | None = None) -> tuple:
        """The walk's window: the origin grown by :func:`_walk_margin_m` (of ``hours``, on the
        mean cell; given ``hours``, on the coarser cell, as the refusal's search does)."""
        cell = 0.5 * (self.cell_x + self.cell_y) if hours is None else self.res
        return _clip(_grow(self.ob, _walk_margin_m(self.hours if hours is None else hours,
                                                   cell)), self.full)

    @property
    def road_box(self) -> tuple:
        return _clip(_grow(self.rb, self.reach_m + 4 * self.res), self.full)

    def union_box(self, walk_box: tuple) -> tuple:
        r = self.road_box
        return _clip((min(walk_box[0], r[0]), min(walk_box[1], r[1]), max(walk_box[2], r[2]),
                      max(walk_box[3], r[3])), self.full)

    def union_need(self, hours: float | None = None) -> float:
        """Bytes of one window holding the walk (of ``hours``) and the roads' tiles."""
        b = self.walk_box(hours)
        r_, c_ = self.shape(self.union_box(b))
        wr_, wc_ = self.shape(b)
        return exposure_memory_bytes(0 if self.in_memory else r_ * c_, wr_, wc_, self.view,
                                     self.threads, one_window=True)


def _frame_of(dem, roads: gpd.GeoDataFrame, origin: gpd.GeoDataFrame, frames: list,
              hours: float, range_km: float) -> _Frame:
    """:class:`_Frame` of ``dem`` (a path or a Dem) for the run, from the file's header (never
    its cells). Refused when the DEM has no CRS or the origin lies outside it."""
    import numba

    src = origin.attrs.get("source", "origin")
    # A projected Dem in memory is used as it is; a lon/lat one is planned like a lon/lat
    # file, so only the window the run needs is reprojected (not the whole array).
    in_memory = isinstance(dem, Dem) and not (dem.crs is not None and dem.crs.is_geographic)
    tr = hw = full = None
    if isinstance(dem, Dem):
        crs = dem.crs
        if not in_memory:
            tr, hw, full = dem.transform, dem.shape, _bounds(dem)
    else:
        import rasterio

        try:
            with rasterio.open(dem) as ds:
                crs, tr, hw, full = ds.crs, ds.transform, ds.shape, tuple(ds.bounds)
        except (rasterio.errors.RasterioIOError, OSError):
            _metric_grid(dem, roads)  # raises the InputError that names the problem
            raise
        if crs is None:
            raise InputError(str(dem), "crs", "the DEM has no CRS",
                             "set it with gdal_edit.py -a_srs EPSG:XXXX")
    if crs is not None and not crs.is_geographic:
        work = crs
    else:
        from .crs import metric_crs

        work = metric_crs(roads)
    grid = None
    if in_memory:  # projected (or without a CRS: refused here)
        grid = _metric_grid(dem, roads)
        full = _bounds(grid)
        cell_x, cell_y = abs(grid.transform.a), abs(grid.transform.e)
        work = grid.crs
    elif work == crs:
        cell_x, cell_y = abs(tr.a), abs(tr.e)
    else:  # a lon/lat file: its bounds and cell size in the metric CRS it is read in
        import rasterio.warp

        full = tuple(rasterio.warp.transform_bounds(crs, work, *full, densify_pts=21))
        cell_x = cell_y = min((full[2] - full[0]) / hw[1], (full[3] - full[1]) / hw[0])
    ob = tuple(origin.to_crs(work).total_bounds)
    if ob[2] < full[0] or ob[0] > full[2] or ob[3] < full[1] or ob[1] > full[3]:
        raise InputError(src, "geometry", "the origin lies outside the DEM (origin bounds "
                         f"{tuple(round(v) for v in ob)}, DEM bounds "
                         f"{tuple(round(v) for v in full)} in the DEM's CRS)",
                         "give an origin inside the DEM, or a DEM that covers it")
    reach_m = _post_reach_m(frames, range_km)
    return _Frame(in_memory, crs, work, tr, hw, full, cell_x, cell_y, ob,
                  tuple(roads.to_crs(work).total_bounds), reach_m,
                  _view_cells(reach_m, min(cell_x, cell_y)), numba.get_num_threads(), grid,
                  float(hours))


def _read_grid(dem, roads: gpd.GeoDataFrame, origin: gpd.GeoDataFrame, frames: list,
               hours: float, range_km: float, limit_bytes: float,
               tile_m: float | None = None) -> _Plan:
    """What the run reads, never the whole file. A run whose one window (the walk's, the
    origin grown by :func:`_walk_margin_m`, with the roads grown by the longest post range)
    fits the limit reads it once, as one tile; otherwise the walk's window is read alone and
    the roads are cut into tiles whose windows fit beside it (``tile_m`` forces the tiles'
    side, metres). Refused in one line when the walk or one tile cannot fit
    (:func:`exposure_memory_bytes`).
    """
    f = _frame_of(dem, roads, origin, frames, hours, range_km)
    by_tiles = not f.in_memory and f.work == f.crs  # a projected file: read tile by tile
    if not by_tiles or (tile_m is None and f.union_need() <= limit_bytes):
        return _plan_one_window(f, dem, roads, hours, limit_bytes, tile_m)
    return _plan_tiles(f, dem, roads, hours, limit_bytes, tile_m)


def _plan_one_window(f: _Frame, dem, roads: gpd.GeoDataFrame, hours: float,
                     limit_bytes: float, tile_m: float | None) -> _Plan:
    """The walk's and the roads' window read once (a Dem in memory, a lon/lat DEM, or a
    projected file whose window fits), the roads' tiles cut from it."""
    need = f.union_need()
    box = f.union_box(f.walk_box())
    wr, wc = f.shape(f.walk_box())
    rr, rc = f.shape(box)
    if need > limit_bytes:
        _refuse_walk(hours, need, limit_bytes, (wr, wc), 0 if f.in_memory else rr * rc,
                     lambda h_: f.union_need(h_) <= limit_bytes,
                     "" if isinstance(dem, Dem) else "reproject the DEM to metres with "
                     "gdalwarp (it is then read tile by tile) or ", ONE_READ_BYTES_PER_CELL)
    grid = f.grid
    if grid is None:
        grid = _metric_grid(as_dem(dem, bounds=box, bounds_crs=f.work,
                                   crs=None if f.work == f.crs else f.work), roads)
    core = _core_cells(grid.transform, grid.shape, f.rb)
    cells = (max(core[2] - core[0], core[3] - core[1]) if tile_m is None
             else max(int(round(float(tile_m) / f.res)), 1))
    tiles = _Tiles(core, cells, f.halo, tuple(grid.shape), grid.transform)
    log.info("exposure: DEM window of %d × %d cells, walk on %d × %d, roads on %d tile(s) "
             "of %d cells (about %.2f GB by the formula)", *grid.shape, wr, wc,
             tiles.count, cells, need / 1e9)
    return _Plan(grid, _Source(grid), tiles)


def _plan_tiles(f: _Frame, dem, roads: gpd.GeoDataFrame, hours: float, limit_bytes: float,
                tile_m: float | None) -> _Plan:
    """The walk's window read alone, and the roads in the largest tiles that fit beside it
    (``tile_m`` forces their side); refused when even the smallest tile does not fit."""
    h, w = f.hw
    wr, wc = f.shape(f.walk_box())
    halo = f.halo
    core = _core_cells(f.tr, (h, w), f.rb)
    span = max(core[2] - core[0], core[3] - core[1])

    def tiled_need(cells: int, halo_: int = halo, walk: tuple[int, int] = (wr, wc),
                   view_: int = f.view) -> float:
        a, b = _window_dims(cells, halo_, core, (h, w))
        return exposure_memory_bytes(walk[0] * walk[1] + a * b, walk[0], walk[1], view_,
                                     f.threads)

    least = min(MIN_TILE_CELLS, span)
    if tile_m is not None:
        cells = max(int(round(float(tile_m) / f.res)), 1)
    elif tiled_need(span) <= limit_bytes:
        cells = span
    else:
        lo, hi = least, span  # the largest tile that fits (need grows with the tile)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if tiled_need(mid) <= limit_bytes else (lo, mid)
        cells = lo
    need = tiled_need(cells)
    if need > limit_bytes:
        cells = min(cells, least)
        _refuse_tile(f, hours, cells, tiled_need, limit_bytes, (wr, wc), core)
        need = tiled_need(cells)
    grid = _metric_grid(as_dem(dem, bounds=f.walk_box(), bounds_crs=f.work), roads)
    source = _Source(path=dem, transform=f.tr, shape=(h, w), crs=grid.crs)
    tiles = _Tiles(core, cells, halo, (h, w), f.tr)
    a, b = tiles.largest_window()
    log.info("exposure: walk on %d × %d cells, roads on %d tile(s) of %d cells, windows up to "
             "%d × %d cells (halo %d), about %.2f GB by the formula", *grid.shape,
             tiles.count, cells, a, b, halo, need / 1e9)
    return _Plan(grid, source, tiles)


def _refuse_tile(f: _Frame, hours: float, cells: int, tiled_need, limit_bytes: float,
                 walk: tuple[int, int], core: tuple) -> None:
    """Refuse in one line when a tile of ``cells`` beside the walk does not fit: with the
    longest post range that would, or the walk that would when even no view fits."""
    from .tiles import check_memory

    need = tiled_need(cells)
    if need <= limit_bytes:
        return
    halo = f.halo
    a, b = _window_dims(cells, halo, core, f.hw)
    wr, wc = walk
    walk_alone = tiled_need(cells, _HALO_EXTRA_CELLS, view_=0)
    if walk_alone > limit_bytes:
        _refuse_walk(hours, need, limit_bytes, (wr, wc), wr * wc + a * b,
                     lambda h_: (f.union_need(h_) <= limit_bytes
                                 or tiled_need(cells, walk=f.shape(f.walk_box(h_)))
                                 <= limit_bytes), "")
    lo_m, hi_m = 0.0, f.reach_m
    for _ in range(40):
        mid = 0.5 * (lo_m + hi_m)
        ok = tiled_need(cells, int(math.ceil(mid / f.cell)) + _HALO_EXTRA_CELLS,
                        view_=_view_cells(mid, f.cell)) <= limit_bytes
        lo_m, hi_m = (mid, hi_m) if ok else (lo_m, mid)
    check_memory(
        need, limit_bytes,
        what=f"a tile of the roads ({cells:,}×{cells:,} cells, its window {a:,}×{b:,}: "
             f"the tile grown by {halo:,} cells for posts of range {f.reach_m / 1000:g} km) "
             f"beside the walk of {hours:g} h ({wr:,}×{wc:,} cells)",
        formula="400 MB + 5 bytes a cell read (the walk's window and one tile's) + 40 a "
                "cell of the walk's window + 2 a cell of a post's viewshed per thread",
        fits=f"posts of range up to {math.floor(lo_m / 100) / 10:g} km would fit; or allow "
             f"--max-memory-gb {math.ceil(need / 1e8) / 10:g}, or give a coarser DEM")


def _refuse_walk(hours: float, need: float, limit: float, walk: tuple[int, int],
                 read_cells: int, fits, other: str, read_bytes: float = READ_BYTES_PER_CELL
                 ) -> None:
    """Refuse a walk that cannot fit, naming the longest ``hours`` that would (``fits``)."""
    from .tiles import check_memory

    lo, hi = 0.0, hours
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    alt = (f"--hours {math.floor(lo * 100) / 100:g} would fit; or {other}" if lo >= 0.01 else
           f"select fewer roads (--road-name/--where) or give a coarser DEM; or {other}")
    check_memory(
        need, limit, what=f"the walk of {hours:g} h from the origin ({walk[0]:,}×{walk[1]:,} "
        f"cells; {read_cells:,} cells of the DEM read)",
        formula=f"400 MB + {read_bytes:g} bytes a cell read + 40 a cell of the walk's window",
        fits=f"{alt}allow --max-memory-gb {math.ceil(need / 1e8) / 10:g}")


def _window(grid: Dem, bounds, margin_m: float) -> Dem:
    """The cells of ``grid`` over ``bounds`` (DEM CRS) grown by ``margin_m`` (a view)."""
    from affine import Affine

    t = grid.transform
    h, w = grid.shape
    x0, y0, x1, y1 = bounds[0] - margin_m, bounds[1] - margin_m, bounds[2] + margin_m, \
        bounds[3] + margin_m
    cols = sorted(((x0 - t.c) / t.a, (x1 - t.c) / t.a))
    rows = sorted(((y0 - t.f) / t.e, (y1 - t.f) / t.e))
    c0, c1 = max(int(math.floor(cols[0])), 0), min(int(math.ceil(cols[1])), w)
    r0, r1 = max(int(math.floor(rows[0])), 0), min(int(math.ceil(rows[1])), h)
    if c1 <= c0 or r1 <= r0:
        return grid
    return Dem(grid.array[r0:r1, c0:c1], t @ Affine.translation(c0, r0), grid.crs,
               source=grid.source)


# --------------------------------------------------------------------------------------------
# walking time


@dataclass(frozen=True)
class _Walk:
    grid: Dem
    hours: np.ndarray          # least hours on the grid (inf: not reached)
    origin: Any                # union of the origin geometries (DEM CRS)
    near: Any                  # the origin grown by the last step (points there walk direct)
    walkable: np.ndarray | None = None   # cells that may be entered (None: every cell)
    penalty: np.ndarray | None = None    # time multiplier per cell (rivers), None: 1


def _start_hours(grid: Dem, origin: gpd.GeoDataFrame, src: str) -> tuple[np.ndarray, np.ndarray]:
    """Source cells of the origin and when each is reached: 0 for a cell whose centre lies in
    the origin, the flat walk from the origin to the centre for the other cells it touches."""
    import rasterio.features

    h, w = grid.shape
    geoms = [g for g in origin.geometry.values if g is not None and not g.is_empty]
    touched = rasterio.features.rasterize(((g, 1) for g in geoms), out_shape=(h, w),
                                          transform=grid.transform, all_touched=True,
                                          fill=0, dtype="uint8").astype(bool)
    touched &= np.isfinite(grid.array)
    if not touched.any():
        b = tuple(round(v) for v in _bounds(grid))
        raise InputError(src, "geometry", "the origin lies outside the DEM (or only on cells "
                         f"without data; DEM bounds {b} in its CRS)",
                         "give an origin inside the DEM, or a DEM that covers it")
    rows, cols = np.nonzero(touched)
    x, y = grid.transform @ (cols + 0.5, rows + 0.5)
    union = shapely.union_all(geoms)
    dist = shapely.distance(union, shapely.points(x, y))
    start = np.full((h, w), np.inf)
    start[rows, cols] = tobler_hours(dist, 0.0)
    return touched, start


def _bounds(grid: Dem) -> tuple[float, float, float, float]:
    h, w = grid.shape
    x0, y0 = grid.transform @ (0, 0)
    x1, y1 = grid.transform @ (w, h)
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def _walk(grid: Dem, origin: gpd.GeoDataFrame, hours: float, walkable, water=None) -> _Walk:
    src = origin.attrs.get("source", "origin")
    org = origin.to_crs(grid.crs)
    full_b = _bounds(grid)
    ob = org.total_bounds
    if ob[2] < full_b[0] or ob[0] > full_b[2] or ob[3] < full_b[1] or ob[1] > full_b[3]:
        raise InputError(src, "geometry", "the origin lies outside the DEM (origin bounds "
                         f"{tuple(round(v) for v in ob)}, DEM bounds "
                         f"{tuple(round(v) for v in full_b)} in the DEM's CRS)",
                         "give an origin inside the DEM, or a DEM that covers it")
    # nothing beyond twice the hours at the fastest walk matters (reported as not reached)
    window = _window(grid, ob, _walk_margin_m(hours, grid.res_m))
    walk_mask = None
    if walkable is not None:
        walk_mask = np.asarray(walkable, bool)
        if walk_mask.shape != grid.shape:
            raise InputError("walkable", None, "mask is not on the DEM grid",
                             "compute it on the same DEM")
        r0, c0 = _offset(grid, window)
        walk_mask = walk_mask[r0:r0 + window.shape[0], c0:c0 + window.shape[1]]
    penalty = None
    if water is not None and not water.empty:
        # the same masks the search builds from ``water`` (gapmap.water), kept for the last
        # step from the grid to the road
        from .water import crossing_penalty, walk_masks

        dry, extra = walk_masks(water, window)
        walk_mask = dry if walk_mask is None else (walk_mask & dry)
        penalty = crossing_penalty(extra, window)
    mask, start = _start_hours(window, org, src)
    if walk_mask is not None:
        mask &= walk_mask
        if not mask.any():
            raise InputError(src, "geometry", "the origin lies only on ground that cannot be "
                             "walked (water)", "give an origin on land")
    cd = cost_distance(window, mask, start_hours=start, max_hours=2.0 * hours,
                       walkable=walk_mask, keep_paths=False, water=water)
    union = shapely.union_all(org.geometry.values)
    near = shapely.buffer(union, _STEP_CELLS * window.res_m * math.sqrt(2.0))
    shapely.prepare(near)
    shapely.prepare(union)
    return _Walk(window, cd.hours, union, near, walk_mask, penalty)


#: Samples along the last straight step at which water is looked up (a 3-cell diagonal step
#: is then sampled every 0.35 cell, so no river cell it crosses is missed).
_STEP_SAMPLES = 12


def _step_factor(walk: _Walk, x0: np.ndarray, y0: np.ndarray, x1: np.ndarray,
                 y1: np.ndarray) -> np.ndarray:
    """Time multiplier of straight steps (x0, y0) → (x1, y1): ``inf`` when a step passes over
    a cell that cannot be entered (a lake), else the mean of the cells' multipliers along it
    (a river cell's crossing hours), as the search times its own moves; 1 without water."""
    if walk.walkable is None and walk.penalty is None:
        return np.ones(len(x0))
    g = walk.grid
    h, w = g.shape
    inv = ~g.transform
    f = (np.arange(_STEP_SAMPLES) + 0.5) / _STEP_SAMPLES
    xs = x0[:, None] + (x1 - x0)[:, None] * f[None, :]
    ys = y0[:, None] + (y1 - y0)[:, None] * f[None, :]
    cf, rf = inv @ (xs, ys)
    r = np.clip(np.floor(rf).astype(np.int64), 0, h - 1)
    c = np.clip(np.floor(cf).astype(np.int64), 0, w - 1)
    factor = np.ones(len(x0)) if walk.penalty is None else \
        np.asarray(walk.penalty, np.float64)[r, c].mean(axis=1)
    if walk.walkable is not None:
        factor[~walk.walkable[r, c].all(axis=1)] = np.inf
    return factor


def _offset(grid: Dem, window: Dem) -> tuple[int, int]:
    c0 = int(round((window.transform.c - grid.transform.c) / grid.transform.a))
    r0 = int(round((window.transform.f - grid.transform.f) / grid.transform.e))
    return r0, c0


def hours_at(walk: _Walk, xy: np.ndarray) -> np.ndarray:
    """Walking hours from the origin to points ``xy`` (DEM CRS): the grid's time carried by
    the last straight step (see the module docstring); ``inf`` off the searched grid."""
    g = walk.grid
    h, w = g.shape
    z = np.asarray(g.array, np.float64)
    inv = ~g.transform
    cf, rf = inv @ (xy[:, 0], xy[:, 1])
    r = np.floor(rf).astype(np.int64)
    c = np.floor(cf).astype(np.int64)
    on = (r >= 0) & (r < h) & (c >= 0) & (c < w)
    zp = np.full(len(xy), np.nan)
    zp[on] = _bilinear(z, rf[on] - 0.5, cf[on] - 0.5)
    zp[on] = np.where(np.isfinite(zp[on]), zp[on], z[r[on], c[on]])
    best = np.full(len(xy), np.inf)
    for dr in range(-_STEP_CELLS, _STEP_CELLS + 1):
        for dc in range(-_STEP_CELLS, _STEP_CELLS + 1):
            rr, cc = r + dr, c + dc
            ok = on & (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
            if not ok.any():
                continue
            t0 = walk.hours[rr[ok], cc[ok]]
            fin = np.isfinite(t0)
            if not fin.any():
                continue
            idx = np.flatnonzero(ok)[fin]
            cx, cy = g.transform @ (cc[idx] + 0.5, rr[idx] + 0.5)
            d = np.hypot(xy[idx, 0] - cx, xy[idx, 1] - cy)
            dz = zp[idx] - z[rr[idx], cc[idx]]
            step = tobler_hours(d, np.nan_to_num(dz)) * _step_factor(
                walk, cx, cy, xy[idx, 0], xy[idx, 1])
            t = t0[fin] + step
            best[idx] = np.fmin(best[idx], t)
    pts = shapely.points(xy[:, 0], xy[:, 1])
    near = shapely.contains_xy(walk.near, xy[:, 0], xy[:, 1])
    if near.any():
        from_pt = shapely.get_coordinates(
            shapely.get_point(shapely.shortest_line(walk.origin, pts[near]), 0))
        direct = tobler_hours(shapely.distance(walk.origin, pts[near]), 0.0) * _step_factor(
            walk, from_pt[:, 0], from_pt[:, 1], xy[near, 0], xy[near, 1])
        best[near] = np.fmin(best[near], direct)
    best[shapely.intersects(walk.origin, pts)] = 0.0
    best[~on] = np.inf
    return best


# --------------------------------------------------------------------------------------------
# cutting the roads


def _bilinear(z: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Elevations between cell centres (``rows``, ``cols`` in cell-centre units): the climb
    of the last step is the ground's, not the step's from one cell centre to another."""
    from scipy import ndimage

    return ndimage.map_coordinates(z, [rows, cols], order=1, mode="nearest", cval=np.nan)


def _parts(roads: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Single LineStrings of the roads and the position of the road each came from."""
    geoms = np.asarray(roads.geometry.values, dtype=object)
    parts, owner = shapely.get_parts(geoms, return_index=True)
    keep = ~shapely.is_empty(parts) & (shapely.length(parts) > 0)
    return parts[keep], owner[keep]


def _bisect(lines: np.ndarray, lo: np.ndarray, hi: np.ndarray, flag_lo: np.ndarray, test,
            tolerance_m: float) -> np.ndarray:
    """Along-line distances where ``test`` changes between ``lo`` (value ``flag_lo``) and
    ``hi``, to ``tolerance_m``."""
    lo, hi, _ = _bisect_steps(lines, lo, hi, flag_lo, test, tolerance_m)
    return 0.5 * (lo + hi)


def _bisect_steps(lines: np.ndarray, lo: np.ndarray, hi: np.ndarray, flag_lo: np.ndarray,
                  test, tolerance_m: float, steps: int | None = None
                  ) -> tuple[np.ndarray, np.ndarray, int]:
    """Halve the intervals ``lo``–``hi`` until all are within ``tolerance_m`` (or ``steps``
    times): the intervals and the halvings done. Each interval's halvings depend on it alone,
    so intervals bisected in groups, each group then halved as often as the group that
    needed most, end where one bisection of them all puts them."""
    lo, hi = lo.astype(float).copy(), hi.astype(float).copy()
    done = 0
    while len(lo) and (float(np.max(hi - lo)) > tolerance_m if steps is None
                       else done < steps):
        mid = 0.5 * (lo + hi)
        pts = shapely.line_interpolate_point(lines, mid)
        same = test(shapely.get_coordinates(pts)) == flag_lo
        lo = np.where(same, mid, lo)
        hi = np.where(same, hi, mid)
        done += 1
    return lo, hi, done


def _cuts(parts: np.ndarray, step_m: float, tests: list, tolerance_m: float
          ) -> list[np.ndarray]:
    """For each line part, the sorted along-line distances where it is cut (ends included).

    A test given as a :class:`_TiledSight` is run tile by tile (:func:`_tiled_changes`)."""
    lengths = shapely.length(parts)
    counts = np.maximum(np.ceil(lengths / step_m).astype(np.int64), 1)
    owner = np.repeat(np.arange(len(parts)), counts + 1)
    frac = np.concatenate([np.linspace(0.0, 1.0, n + 1) for n in counts])
    along = frac * lengths[owner]
    xy = shapely.get_coordinates(shapely.line_interpolate_point(parts[owner], along))
    cuts = [[0.0, float(n)] for n in lengths]
    same_line = owner[1:] == owner[:-1]
    for test in tests:
        if isinstance(test, _TiledSight):
            change, where = _tiled_changes(test, parts, owner, along, xy, same_line,
                                           tolerance_m)
        else:
            flags = test(xy)
            change = np.flatnonzero(same_line & (flags[1:] != flags[:-1]))
            if not len(change):
                continue
            where = _bisect(parts[owner[change]], along[change], along[change + 1],
                            flags[change], test, tolerance_m)
        for i, d in zip(owner[change], where):
            cuts[i].append(float(d))
    return [np.unique(np.asarray(c)) for c in cuts]


def _tiled_changes(sight: _TiledSight, parts: np.ndarray, owner: np.ndarray,
                   along: np.ndarray, xy: np.ndarray, same_line: np.ndarray,
                   tolerance_m: float) -> tuple[np.ndarray, np.ndarray]:
    """The samples after which ``sight`` changes and where, as :func:`_cuts` finds them on
    one grid, found tile by tile: each interval between two samples belongs to the tile of
    its first sample and is tested and bisected there (its points lie within half a cell of
    the tile, inside the tile's window). Tiles whose intervals needed fewer halvings than the
    most any tile needed are halved again at the end, as one bisection of them all would."""
    starts = np.flatnonzero(same_line)
    empty = (np.empty(0, np.int64), np.empty(0))
    if not len(starts):
        return empty
    tid = sight.tiles.of(xy[starts])
    flags = np.zeros(len(xy), bool)
    groups = []
    for t in np.unique(tid):
        t = int(t)
        ks = starts[tid == t]
        pts = np.unique(np.concatenate([ks, ks + 1]))
        flags[pts] = sight.in_tile(t, xy[pts])
        ch = ks[flags[ks] != flags[ks + 1]]
        if not len(ch):
            continue
        lines = parts[owner[ch]]
        lo, hi, done = _bisect_steps(lines, along[ch], along[ch + 1], flags[ch],
                                     lambda p, t=t: sight.in_tile(t, p), tolerance_m)
        groups.append([t, ch, lines, lo, hi, done])
    if not groups:
        return empty
    most = max(g[5] for g in groups)
    for g in groups[::-1]:  # the window held last first
        t, ch, lines, lo, hi, done = g
        if done < most:
            g[3], g[4], _ = _bisect_steps(lines, lo, hi, flags[ch],
                                          lambda p, t=t: sight.in_tile(t, p), tolerance_m,
                                          steps=most - done)
    return (np.concatenate([g[1] for g in groups]),
            np.concatenate([0.5 * (g[3] + g[4]) for g in groups]))


def _pieces(parts: np.ndarray, owner: np.ndarray, cuts: list[np.ndarray]
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sub-lines between consecutive cuts, the part each came from, and their ends."""
    geoms, of, starts, ends = [], [], [], []
    for i, c in enumerate(cuts):
        for a, b in zip(c[:-1], c[1:]):
            if b - a <= 0:
                continue
            geoms.append(shapely.ops.substring(parts[i], a, b))
            of.append(i)
            starts.append(a)
            ends.append(b)
    return (np.asarray(geoms, dtype=object), np.asarray(of, np.int64), np.asarray(starts),
            np.asarray(ends))


# --------------------------------------------------------------------------------------------
# public


def road_exposure(roads, origin, dem, *, posts=None, hours: float = 3.0, range_km: float = 5.0,
                  height_m: float = 10.0, target_height_m: float = 2.0,
                  walkable: np.ndarray | None = None, water=None,
                  road_name: str | None = None, where: str | None = None,
                  posts_date=None, tolerance_m: float = 0.01, progress=None,
                  max_memory_gb: float | None = None, tile_m: float | None = None
                  ) -> Exposure:
    """Which stretches of road a cell can reach on foot from ``origin`` within ``hours``,
    unseen by any post.

    Parameters
    ----------
    roads
        Road lines (LineString/MultiLineString GeoDataFrame or a path).
    origin
        Where the walk starts: polygons, lines or points (GeoDataFrame or a path).
    dem
        DEM (path or :class:`gapmap.terrain.Dem`); a lon/lat DEM is reprojected to a metric CRS.
    posts
        Posts (points with optional ``range_km``, ``height_m``), or ``None``: nothing is seen.
    hours
        Longest walk, h (> 0).
    range_km, height_m, target_height_m
        Defaults for posts without their own, and the height of what must be seen.
    walkable
        Boolean mask on the DEM grid of cells a walker may enter.
    water
        A :class:`gapmap.water.Water` (:func:`gapmap.water.read_water`): lakes cannot be
        entered and rivers cost their ``crossing_hours`` per crossing, exactly as in the
        corridors' crossing search (one code path, :func:`gapmap.routes.cost_distance`). Where
        it has no ``bridges``, every road given (before ``road_name``/``where`` select some)
        is one: a river within 150 m of a road is crossed for free.
    road_name, where
        Assess only the roads whose ``name`` contains ``road_name`` and/or whose field equals
        a value (``"FIELD=VALUE"``): :func:`select_roads`.
    posts_date
        Only the posts active on this date (``active_from``/``active_to``, as in
        :mod:`gapmap.series`): :func:`posts_on`.
    tolerance_m
        Precision of the cuts along the roads.
    progress
        Called with the name of each stage (for a progress bar).
    max_memory_gb
        Memory the run may use (decimal GB; default the machine's). Only the DEM's windows the
        run needs are read from a file: the walk's (the origin grown by twice ``hours`` at
        6 km/h), and the roads' grown by the longest post range — in one read when the two
        fit, else the roads tile by tile (the module docstring). A run whose formula
        (``docs/scale.md``: ``400 MB + 5 bytes a cell read + 40 a cell of the walk's window``
        + the posts' viewsheds) exceeds it even with the smallest tile is refused before the
        walk, saying which ``hours`` or post range would fit.
    tile_m
        Side of the tiles the roads are cut into (metres of the DEM's CRS); default the
        largest that fits ``max_memory_gb``. The result does not depend on it.

    Returns
    -------
    Exposure
        ``pieces`` in the DEM's CRS and ``summary`` in km.

    Examples
    --------
    >>> ex = road_exposure("geodata/roads.geojson", base, "geodata/dem_synthetic.tif",
    ...                    posts="geodata/posts.geojson", hours=3)  # doctest: +SKIP
    >>> ex.summary["exposed_km"]  # doctest: +SKIP
    """
    return _exposures(roads, origin, dem, posts=posts, dates=[posts_date], hours=hours,
                      range_km=range_km, height_m=height_m, target_height_m=target_height_m,
                      walkable=walkable, water=water, road_name=road_name, where=where,
                      tolerance_m=tolerance_m, progress=progress,
                      max_memory_gb=max_memory_gb, tile_m=tile_m)[0]


def road_exposure_on_dates(roads, origin, dem, *, posts, dates, **kw: Any
                           ) -> dict[str, Exposure]:
    """:func:`road_exposure` with the posts of each of ``dates`` (:func:`posts_on`), walking
    once: the walk does not depend on the posts, so each further date costs only the cutting
    of the roads.

    Parameters
    ----------
    posts
        Posts with ``active_from`` / ``active_to``.
    dates
        Dates (``YYYY-MM-DD`` text or :class:`datetime.date`).
    **kw
        As for :func:`road_exposure` (``hours``, ``water``, ``road_name`` …).

    Returns
    -------
    dict
        The date's text → its :class:`Exposure`, in the order given.

    Examples
    --------
    >>> runs = road_exposure_on_dates("geodata/roads.geojson", "geodata/hamrin_origin.geojson",
    ...     "geodata/dem_synthetic.tif", posts="geodata/posts_dated.geojson",
    ...     dates=["2017-10-20", "2017-10-31"], road_name="Kirkuk–Baghdad")  # doctest: +SKIP
    >>> exposure_change(*runs.values()).summary["newly_exposed_km"]  # doctest: +SKIP
    """
    dates = [str(d) for d in dates]
    if not dates:
        raise InputError("dates", None, "no date given", "give at least one date")
    return dict(zip(dates, _exposures(roads, origin, dem, posts=posts, dates=dates, **kw)))


def _exposures(roads, origin, dem, *, posts, dates: list, hours: float = 3.0,
               range_km: float = 5.0, height_m: float = 10.0, target_height_m: float = 2.0,
               walkable=None, water=None, road_name=None, where=None,
               tolerance_m: float = 0.01, progress=None,
               max_memory_gb: float | None = None, tile_m: float | None = None
               ) -> list[Exposure]:
    """One walk, then the roads cut for the posts of each date (``None``: every post)."""
    from .tiles import memory_limit_bytes

    hours = check_hours(hours)
    limit = memory_limit_bytes(max_memory_gb)
    step_name = progress or (lambda name: None)
    all_roads = _as_layer(roads, "roads", ("LineString",))
    roads = all_roads
    if road_name is not None or where is not None:
        roads = select_roads(all_roads, road_name=road_name, where=where)
    origin = _as_layer(origin, "origin", ("Point", "LineString", "Polygon"))
    frames = [posts_on(posts, d, range_km=range_km, height_m=height_m)
              if posts is not None and d is not None else _posts(posts, range_km, height_m)
              for d in dates]
    plan = _read_grid(dem, roads, origin, frames, hours, range_km, limit, tile_m)
    grid = plan.grid
    rd = roads.to_crs(grid.crs)
    if water is not None and water.bridges is None:
        from .water import Water

        water = Water(water.rivers, water.lakes, all_roads)
    if water is not None:
        water = water.to_crs(grid.crs)
    step_name("walking time")
    walk = _walk(grid, origin, hours, walkable, water)
    step_name("cutting the roads")
    out = []
    for posts_date, post_frame in zip(dates, frames):
        ex = _cut(rd, walk, plan, post_frame, hours=hours, range_km=range_km,
                  height_m=height_m, target_height_m=target_height_m,
                  tolerance_m=tolerance_m, source=roads.attrs.get("source", "roads"))
        summary = ex.summary
        if posts_date is not None and posts is not None:
            summary["posts_date"] = str(posts_date)
        if road_name is not None:
            summary["road_name"] = str(road_name)
        if where is not None:
            summary["where"] = where if isinstance(where, str) else "=".join(map(str, where))
        summary["water"] = water is not None and not water.empty
        log.info("exposure: %.1f of %.1f km reachable unseen within %g h",
                 summary["exposed_km"], summary["road_km"], hours)
        out.append(ex)
    return out


def _cut(rd: gpd.GeoDataFrame, walk: _Walk, plan: _Plan, post_frame, *, hours: float,
         range_km: float, height_m: float, target_height_m: float, tolerance_m: float,
         source: str) -> Exposure:
    """The roads (DEM CRS) cut into pieces by the walk and by what ``post_frame`` sees, tile
    by tile (:class:`_TiledSight`)."""
    grid = plan.grid
    step = 0.5 * grid.res_m
    sight = None
    if post_frame is not None and len(post_frame):
        # a tile's points reach half a cell beyond it: posts within range of that are its own
        sight = _TiledSight(plan.source, plan.tiles, post_frame, range_km=range_km,
                            height_m=height_m, target_height_m=target_height_m,
                            margin_m=step + grid.res_m)

    def reachable(xy):
        return hours_at(walk, xy) <= hours

    def seen(xy):
        return np.zeros(len(xy), bool) if sight is None else sight(xy)

    parts, owner = _parts(rd)
    cuts = _cuts(parts, step, [reachable] + ([sight] if sight is not None else []),
                 tolerance_m)
    geoms, of, a, b = _pieces(parts, owner, cuts)
    mid = shapely.get_coordinates(shapely.line_interpolate_point(geoms, 0.5, normalized=True))
    ends = np.vstack([shapely.get_coordinates(shapely.get_point(geoms, 0)),
                      shapely.get_coordinates(shapely.get_point(geoms, -1))])
    h_mid = hours_at(walk, mid)
    h_end = hours_at(walk, ends).reshape(2, -1).min(axis=0)
    reach = h_mid <= hours
    is_seen = seen(mid)
    least = np.fmin(h_mid, h_end)
    least = np.where(reach, least, np.maximum(least, hours))  # a piece leaving reach ends at H
    on_dem = plan.source.finite_at(mid, plan.tiles)
    frame = pd.DataFrame({"road": rd.index.to_numpy()[owner[of]], "part": of,
                          "hours_from_origin": np.where(np.isfinite(least) & on_dem, least,
                                                        np.nan),
                          "seen": is_seen, "reachable": reach, "a": a, "b": b})
    frame["exposed"] = frame["reachable"] & ~frame["seen"]
    pieces = _merge(gpd.GeoDataFrame(frame, geometry=list(geoms), crs=grid.crs), parts)
    name_col = next((c for c in rd.columns if str(c).lower() == "name"), None)
    if name_col is not None:
        pieces.insert(1, "name", rd[name_col].reindex(pieces["road"]).to_numpy())
    off_km = float(pieces["length_km"][~plan.source.finite_at(_midpoints(pieces),
                                                             plan.tiles)].sum())
    if off_km > 0:
        warnings.warn(f"{source}: {off_km:.1f} km of road lie off the DEM: counted as neither "
                      "reachable nor seen", InputWarning, stacklevel=4)
    summary = _summary(pieces, hours, 0 if post_frame is None else len(post_frame), off_km)
    return Exposure(pieces, summary)


def _posts(posts, range_km: float, height_m: float):
    if posts is None:
        return None
    from .io import load_posts

    if isinstance(posts, (str, os.PathLike)):
        return load_posts(posts, default_range_km=range_km, default_height_m=height_m)
    return posts


def _on_dem(grid: Dem, xy: np.ndarray) -> np.ndarray:
    inv = ~grid.transform
    cf, rf = inv @ (xy[:, 0], xy[:, 1])
    r, c = np.floor(rf).astype(np.int64), np.floor(cf).astype(np.int64)
    h, w = grid.shape
    ok = (r >= 0) & (r < h) & (c >= 0) & (c < w)
    out = np.zeros(len(xy), bool)
    out[ok] = np.isfinite(grid.array[r[ok], c[ok]])
    return out


def _midpoints(gdf: gpd.GeoDataFrame) -> np.ndarray:
    if not len(gdf):
        return np.empty((0, 2))
    return shapely.get_coordinates(shapely.line_interpolate_point(
        np.asarray(gdf.geometry.values, dtype=object), 0.5, normalized=True))


def _merge(pieces: gpd.GeoDataFrame, parts: np.ndarray) -> gpd.GeoDataFrame:
    """Consecutive pieces of one line part with the same flags, joined into one."""
    pieces = pieces.sort_values(["part", "a"], kind="stable").reset_index(drop=True)
    key = pieces[["part", "seen", "reachable"]]
    new = (key != key.shift()).any(axis=1).cumsum()
    rows = []
    for _, grp in pieces.groupby(new, sort=True):
        first = grp.iloc[0]
        geom = (shapely.ops.substring(parts[int(first["part"])], float(first["a"]),
                                      float(grp["b"].iloc[-1])) if len(grp) > 1
                else grp.geometry.iloc[0])
        rows.append({"road": first["road"], "hours_from_origin": grp["hours_from_origin"].min(),
                     "seen": bool(first["seen"]), "reachable": bool(first["reachable"]),
                     "exposed": bool(first["exposed"]), "geometry": geom})
    out = gpd.GeoDataFrame(rows, geometry="geometry", crs=pieces.crs) if rows else \
        gpd.GeoDataFrame({c: [] for c in PIECE_COLUMNS}, geometry=[], crs=pieces.crs)
    out["length_km"] = geodesic_length_km(out.geometry, out.crs)
    return out[PIECE_COLUMNS + ["geometry"]]


def _summary(pieces: gpd.GeoDataFrame, hours: float, n_posts: int, off_km: float
             ) -> dict[str, Any]:
    km = pieces["length_km"]
    return {"road_km": float(km.sum()),
            "reachable_km": float(km[pieces["reachable"]].sum()),
            "seen_km": float(km[pieces["seen"]].sum()),
            "exposed_km": float(km[pieces["exposed"]].sum()),
            "hours": float(hours), "posts": int(n_posts), "off_dem_km": off_km,
            "pieces": int(len(pieces))}


def write_exposure(exposure: Exposure, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``exposure.json`` (the summary) and ``exposure.gpkg`` (layer ``exposure``: the
    pieces, in EPSG:4326) into ``out_dir``, atomically.

    Examples
    --------
    >>> write_exposure(ex, "out/exposure")  # doctest: +SKIP
    {'exposure.gpkg': ..., 'exposure.json': ...}
    """
    out = Path(out_dir)
    with atomic_dir(out) as stage:
        pieces = exposure.pieces.to_crs(4326)
        pieces.to_file(stage / "exposure.gpkg", layer="exposure", driver="GPKG")
        (stage / "exposure.json").write_text(
            json.dumps(_jsonable(exposure.to_dict()), indent=2) + "\n", encoding="utf-8")
        names = sorted(p.name for p in stage.iterdir())
    return {n: out / n for n in names}


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    # 6 decimals, as summary.json: a length sums back from the pieces to 1e-6 km
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in d.items()}


def read_exposure(path: str | os.PathLike) -> gpd.GeoDataFrame:
    """The pieces written by :func:`write_exposure`: from the folder or ``exposure.gpkg``.

    Examples
    --------
    >>> pieces = read_exposure("out/exposure")  # doctest: +SKIP
    >>> pieces[pieces["exposed"]]  # doctest: +SKIP
    """
    p = Path(path)
    if p.is_dir():
        p = p / "exposure.gpkg"
    if not p.exists():
        raise InputError(p, None, "exposure result not found",
                         "give the --out folder of gapmap exposure or its exposure.gpkg")
    from .io import read_layer

    gdf = read_layer(p, "exposure", what="exposure", geom_types=("LineString",))
    missing = [c for c in PIECE_COLUMNS if c not in gdf.columns]
    if missing:
        raise InputError(p, missing[0], "not an exposure layer (column missing)",
                         "give the exposure.gpkg that gapmap exposure wrote")
    for col in ("seen", "reachable", "exposed"):
        gdf[col] = gdf[col].astype(bool)
    return gdf


def format_exposure(exposure: Exposure) -> str:
    """Plain-text summary for the terminal.

    Examples
    --------
    >>> print(format_exposure(ex))  # doctest: +SKIP
    """
    s = exposure.summary
    return "\n".join([
        f"gapmap exposure — walking up to {s['hours']:g} h, {s['posts']} post(s)",
        f"  road          {s['road_km']:10.1f} km",
        f"  reachable     {s['reachable_km']:10.1f} km",
        f"  seen          {s['seen_km']:10.1f} km",
        f"  exposed       {s['exposed_km']:10.1f} km   (reachable and not seen)",
    ])


# --------------------------------------------------------------------------------------------
# two runs compared: what a withdrawn post (or an added one) changes


@dataclass(frozen=True)
class ExposureChange:
    """Exposure before and after a change of posts, on the same roads, origin and walk.

    Attributes
    ----------
    summary
        :data:`CHANGE_KEYS`: exposed and seen km of each run, the km exposed only after
        (``newly_exposed_km``) and only before (``no_longer_exposed_km``), and the posts used.
    newly_exposed
        GeoDataFrame (DEM CRS) of the stretches exposed after but not before, with
        ``length_km`` (geodesic) and the road's ``name`` when it has one.
    """

    summary: dict[str, Any]
    newly_exposed: gpd.GeoDataFrame


def _exposed_lines(ex: Exposure):
    sel = ex.pieces.loc[ex.pieces["exposed"].astype(bool)]
    return shapely.union_all(np.asarray(sel.geometry.values, dtype=object)) if len(sel) \
        else shapely.LineString()


def exposure_change(before: Exposure, after: Exposure) -> ExposureChange:
    """What changed between two exposures of the same roads (e.g. with and without a post).

    A stretch is newly exposed when it is exposed in ``after`` and not in ``before``: the
    exposed pieces of ``after`` less those of ``before`` (the cuts of the two runs agree to
    their tolerance, so a 0.05 m margin keeps rounding slivers out).

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> def ex(flags):
    ...     lines = [shapely.LineString([(400000 + i * 1000, 3900000), (401000 + i * 1000,
    ...              3900000)]) for i in range(len(flags))]
    ...     p = gpd.GeoDataFrame({"road": 0, "hours_from_origin": 1.0,
    ...                           "seen": [not f for f in flags], "reachable": True,
    ...                           "exposed": flags}, geometry=lines, crs=32638)
    ...     p["length_km"] = geodesic_length_km(p.geometry, p.crs)
    ...     return Exposure(p, _summary(p, 3.0, 1, 0.0))
    >>> ch = exposure_change(ex([True, False, False]), ex([True, True, False]))
    >>> round(ch.summary["newly_exposed_km"], 2), round(ch.summary["exposed_km_after"], 2)
    (1.0, 2.0)
    """
    a, b = _exposed_lines(before), _exposed_lines(after)
    crs = after.pieces.crs
    margin = 0.05

    def less(x, y):
        if x.is_empty:
            return []
        d = x.difference(shapely.buffer(y, margin)) if not y.is_empty else x
        parts = [g for g in shapely.get_parts(shapely.line_merge(d) if not d.is_empty else d)
                 if g.length > 2 * margin]
        return parts

    new = less(b, a)
    gone = less(a, b)
    frame = gpd.GeoDataFrame(geometry=new, crs=crs)
    frame["length_km"] = geodesic_length_km(frame.geometry, crs) if len(frame) else []
    if "name" in after.pieces.columns and len(frame):
        names = after.pieces.loc[after.pieces["exposed"].astype(bool)]
        near = names.sindex.nearest(frame.geometry, return_all=False)[1]
        frame.insert(0, "name", names["name"].to_numpy()[near])
    gone_km = float(geodesic_length_km(gpd.GeoSeries(gone, crs=crs), crs).sum()) if gone else 0.0
    sb, sa = before.summary, after.summary
    summary = {"exposed_km_before": float(sb["exposed_km"]),
               "exposed_km_after": float(sa["exposed_km"]),
               "newly_exposed_km": float(frame["length_km"].sum()) if len(frame) else 0.0,
               "no_longer_exposed_km": gone_km,
               "seen_km_before": float(sb["seen_km"]), "seen_km_after": float(sa["seen_km"]),
               "posts_before": int(sb.get("posts", 0)), "posts_after": int(sa.get("posts", 0)),
               "stretches": int(len(frame))}
    for key in ("posts_date",):
        if key in sb:
            summary[f"{key}_before"] = sb[key]
        if key in sa:
            summary[f"{key}_after"] = sa[key]
    log.info("exposure change: %.1f → %.1f km exposed, %.1f km newly", summary[
        "exposed_km_before"], summary["exposed_km_after"], summary["newly_exposed_km"])
    return ExposureChange(summary, frame)


def write_exposure_change(change: ExposureChange, out_dir: str | os.PathLike
                          ) -> dict[str, Path]:
    """Write ``change.json`` (the summary) and ``newly_exposed.geojson`` (EPSG:4326) into
    ``out_dir``, each atomically (beside what :func:`write_exposure` wrote there).

    Examples
    --------
    >>> write_exposure_change(exposure_change(with_post, without), "out/exposure")  # doctest: +SKIP
    """
    from .io import atomic_path

    out = Path(out_dir)
    files = {}
    with atomic_path(out / "change.json") as tmp:
        tmp.write_text(json.dumps(_jsonable(change.summary), indent=2) + "\n", encoding="utf-8")
    files["change.json"] = out / "change.json"
    with atomic_path(out / "newly_exposed.geojson") as tmp:
        frame = change.newly_exposed.to_crs(4326)
        if len(frame):
            frame.to_file(tmp, driver="GeoJSON")
        else:
            tmp.write_text('{"type": "FeatureCollection", "features": []}\n', encoding="utf-8")
    files["newly_exposed.geojson"] = out / "newly_exposed.geojson"
    return files


def format_change(change: ExposureChange) -> str:
    """Plain-text lines for the terminal.

    Examples
    --------
    >>> print(format_change(change))  # doctest: +SKIP
    """
    s = change.summary
    lines = [f"  exposed before {s['exposed_km_before']:8.1f} km   ({s['posts_before']} posts"
             f"{', ' + s['posts_date_before'] if 'posts_date_before' in s else ''})",
             f"  exposed after  {s['exposed_km_after']:8.1f} km   ({s['posts_after']} posts"
             f"{', ' + s['posts_date_after'] if 'posts_date_after' in s else ''})",
             f"  newly exposed  {s['newly_exposed_km']:8.1f} km   in {s['stretches']} "
             "stretch(es)"]
    return "\n".join(lines)
