"""Terrain: reading DEMs, slope / ruggedness / hillshade, and assembling a DEM from tiles.

A :class:`Dem` is a float32 grid (nodata as NaN) with its affine transform and CRS (always a
:class:`pyproj.CRS`). :func:`as_dem` is the one way in for every engine (terrain, viewshed,
routes, placement): a Dem is used as it is, anything else (a path, an open rasterio dataset,
``(array, transform, crs)``) is read once, only the window needed. DEMs in lon/lat (SRTM,
Copernicus GLO-30) are reprojected on reading to a metric CRS, so every derivative is computed
on square metric cells; there is one reprojection rule (bilinear, masked: see
:func:`read_dem`).

The derivatives follow ``gdaldem`` (GDAL 3.x) cell for cell on projected DEMs:

* slope: Horn (1981) 3×3 gradient, degrees;
* TRI: Riley et al. (1999), the square root of the summed squared differences between a cell and
  its eight neighbours (the ``gdaldem TRI`` default since GDAL 3.3);
* hillshade: ``gdaldem hillshade``'s formula (azimuth 315°, altitude 45°), uint8 1–255,
  0 = nodata.

As with ``gdaldem`` without ``-compute_edges``, a cell whose 3×3 window holds a nodata cell or
leaves the grid is nodata. On a lon/lat grid (only if built by hand: :func:`read_dem` reprojects)
the cell sizes in metres are taken row by row at each row's latitude.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numba
import numpy as np
import pyproj
import rasterio
import rasterio.errors
import rasterio.io
import rasterio.merge
import rasterio.shutil
import rasterio.warp
import rasterio.windows
import shapely
from affine import Affine
from pyproj import CRS
from rasterio.enums import Resampling
from rasterio.io import MemoryFile
from rasterio.vrt import WarpedVRT

from .crs import GEOD, metric_crs
from .errors import InputError
from .io import atomic_dir, atomic_path

__all__ = [
    "Dem",
    "as_dem",
    "read_dem",
    "check_allocation",
    "MIN_CELLS",
    "slope",
    "tri",
    "hillshade",
    "write_derivatives",
    "derivatives_memory_bytes",
    "build_dem",
    "tile_urls",
    "mean_along",
    "DERIVATIVE_NODATA",
]

log = logging.getLogger(__name__)

#: Nodata written for slope and TRI (as ``gdaldem``); hillshade uses 0.
DERIVATIVE_NODATA = -9999.0

_MARGIN_CELLS = 3  # extra cells read around a requested window: 3×3 kernels and bilinear edges

#: Fewest cells across a usable DEM: a 3×3 window (slope, TRI, hillshade, one routing step).
MIN_CELLS = 3


@dataclass(frozen=True)
class Dem:
    """An elevation grid: float32 array (NaN = nodata), affine transform and CRS.

    Parameters
    ----------
    array
        2-D float32 elevations in metres; NaN where there is no data.
    transform
        Affine transform from (col, row) to the CRS's (x, y) of the upper-left corner of cells.
    crs
        Coordinate reference system of the grid: anything :meth:`pyproj.CRS.from_user_input`
        accepts (EPSG code, WKT, a rasterio CRS), held as a :class:`pyproj.CRS`; ``None`` for
        a bare grid in metres.
    source
        Where the data came from (used in messages).

    Examples
    --------
    >>> import numpy as np
    >>> from affine import Affine
    >>> dem = Dem(np.zeros((3, 4), np.float32), Affine(30, 0, 400000, 0, -30, 3900090),
    ...           CRS.from_epsg(32638))
    >>> dem.shape, dem.res_m
    ((3, 4), 30.0)
    """

    array: np.ndarray
    transform: Affine
    crs: CRS | None
    source: str | None = None

    def __post_init__(self) -> None:
        arr = np.asarray(self.array)
        if arr.ndim == 3 and arr.shape[0] == 1:  # one band as read by rasterio
            arr = arr[0]
        if arr.ndim != 2 or arr.size == 0:
            raise InputError(self.source, "array", f"DEM must be a 2-D array, got shape "
                             f"{arr.shape}", "pass a single band")
        if np.ma.isMaskedArray(arr):
            arr = np.ma.filled(arr.astype(np.float32), np.nan)
        if arr.dtype != np.float32:
            arr = arr.astype(np.float32)
        arr = arr.view()  # a read-only view: frozen like the dataclass, caller's array untouched
        arr.setflags(write=False)
        object.__setattr__(self, "array", arr)
        t = self.transform
        if not isinstance(t, Affine):  # its six coefficients a, b, c, d, e, f
            t = Affine(*tuple(t)[:6])
            object.__setattr__(self, "transform", t)
        if t.b != 0 or t.d != 0:
            raise InputError(self.source, "transform", "rotated DEM grids are not supported",
                             "warp it north-up first: gdalwarp in.tif out.tif")
        # None: a bare grid in metres (tests, arrays from elsewhere)
        object.__setattr__(self, "crs", _crs(self.crs, self.source))

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols)."""
        return self.array.shape  # type: ignore[return-value]

    @property
    def res_xy(self) -> tuple[float, float]:
        """Cell width and height in CRS units (positive)."""
        return abs(self.transform.a), abs(self.transform.e)

    @property
    def res_m(self) -> float:
        """Cell size in metres (mean of width and height; square cells from :func:`read_dem`).

        On a lon/lat grid the size is measured geodesically at the grid's centre latitude.
        """
        ew, ns = _cell_size_m(self, np.array([self.shape[0] / 2.0]))
        return float((ew[0] + ns[0]) / 2.0)

    @property
    def bounds(self) -> rasterio.coords.BoundingBox:
        """(left, bottom, right, top) in the DEM's CRS."""
        return rasterio.coords.BoundingBox(*_bounds(self.transform, self.shape))

    def metric_crs(self) -> CRS | None:
        """The grid's own CRS if projected; for a lon/lat grid the metric CRS gapmap chooses
        for its extent (:func:`gapmap.crs.metric_crs`), where line of sight and walking times
        are measured.

        Examples
        --------
        >>> import numpy as np
        >>> from affine import Affine
        >>> Dem(np.zeros((3, 3)), Affine(0.01, 0, 44, 0, -0.01, 35), 4326).metric_crs().to_epsg()
        32638
        """
        if self.crs is None or not self.crs.is_geographic:
            return self.crs
        box = gpd.GeoSeries([shapely.box(*self.bounds)], crs=self.crs)
        return metric_crs(box)

    def window(self, bounds: Sequence[float], bounds_crs=None) -> Dem:
        """The part of the grid covering ``bounds`` (in ``bounds_crs``, default the DEM's CRS)
        plus a margin of three cells: a view, no copy; the same cells :func:`read_dem` reads
        from a file for those bounds.

        Examples
        --------
        >>> import numpy as np
        >>> from affine import Affine
        >>> d = Dem(np.zeros((100, 100)), Affine(10, 0, 0, 0, -10, 1000), 32638)
        >>> d.window((200, 200, 300, 300)).shape
        (16, 16)
        """
        return _crop(self, bounds, bounds_crs)

    def write(self, path: str | os.PathLike) -> Path:
        """Write the DEM as a tiled, DEFLATE-compressed float32 GeoTIFF (NaN nodata), atomically.

        Examples
        --------
        >>> dem.write("out/dem.tif")  # doctest: +SKIP
        """
        return _write_tif(path, self.array, self.transform, self.crs, nodata=float("nan"))

    def sample(self, xy: np.ndarray | Sequence) -> np.ndarray:
        """Bilinear elevations at points ``xy`` (array ``(n, 2)`` in the DEM's CRS).

        Between the outermost cell centres and the grid edge the nearest row/column is used;
        points outside the grid, or next to nodata, give NaN.

        Examples
        --------
        >>> dem.sample([[400045.0, 3900045.0]])  # doctest: +SKIP
        array([0.], dtype=float32)
        """
        return _bilinear(self.array, self.transform, np.asarray(xy, dtype=float).reshape(-1, 2))


def _bounds(transform: Affine, shape: tuple[int, int]) -> tuple[float, float, float, float]:
    left, top = transform @ (0, 0)
    right, bottom = transform @ (shape[1], shape[0])
    return min(left, right), min(top, bottom), max(left, right), max(top, bottom)


def _bilinear(arr: np.ndarray, transform: Affine, xy: np.ndarray) -> np.ndarray:
    rows, cols = arr.shape
    inv = ~transform
    c, r = inv @ (xy[:, 0], xy[:, 1])
    c = np.asarray(c, dtype=float) - 0.5  # to cell-centre coordinates
    r = np.asarray(r, dtype=float) - 0.5
    inside = (c >= -0.5) & (c <= cols - 0.5) & (r >= -0.5) & (r <= rows - 0.5)
    c = np.clip(c, 0, cols - 1)
    r = np.clip(r, 0, rows - 1)
    c0 = np.minimum(np.floor(c).astype(np.intp), max(cols - 2, 0))
    r0 = np.minimum(np.floor(r).astype(np.intp), max(rows - 2, 0))
    c1 = np.minimum(c0 + 1, cols - 1)
    r1 = np.minimum(r0 + 1, rows - 1)
    fc, fr = c - c0, r - r0
    a = arr.astype(np.float64, copy=False)
    top = a[r0, c0] * (1 - fc) + a[r0, c1] * fc
    bot = a[r1, c0] * (1 - fc) + a[r1, c1] * fc
    out = top * (1 - fr) + bot * fr  # NaN if any of the four cells is nodata
    out = np.where(inside, out, np.nan)
    return out.astype(np.float32)


def _write_tif(path: str | os.PathLike, arr: np.ndarray, transform: Affine, crs: CRS,
               nodata: float | int) -> Path:
    """Write one band as a tiled DEFLATE GeoTIFF via a temporary file renamed into place."""
    target = Path(path)
    profile = {"driver": "GTiff", "height": arr.shape[0], "width": arr.shape[1], "count": 1,
               "dtype": arr.dtype.name, "crs": crs, "transform": transform, "nodata": nodata,
               "compress": "deflate", "zlevel": 1,  # level 6 took 5× longer for 15% less
               "tiled": arr.shape[0] >= 256 and arr.shape[1] >= 256,
               "BIGTIFF": "IF_SAFER"}
    if profile["tiled"]:
        profile.update(blockxsize=256, blockysize=256)
    with atomic_path(target) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(arr, 1)
    return target


def _cell_size_m(dem: Dem, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cell width and height in metres at the given (fractional) rows.

    Projected grids: the CRS's linear unit times the cell size. Lon/lat grids: geodesic length
    of one cell east-west and north-south at the row's latitude (WGS84).
    """
    rows = np.asarray(rows, dtype=float)
    dx, dy = dem.res_xy
    crs = dem.crs
    if crs is None or not crs.is_geographic:
        unit = crs.axis_info[0].unit_conversion_factor if crs is not None and crs.axis_info else 1.0
        return np.full(rows.shape, dx * unit), np.full(rows.shape, dy * unit)
    lon0 = dem.transform.c
    lat = dem.transform.f + dem.transform.e * rows
    n = rows.size
    _, _, ew = GEOD.inv(np.full(n, lon0), lat, np.full(n, lon0 + dx), lat)
    _, _, ns = GEOD.inv(np.full(n, lon0), lat - dy / 2, np.full(n, lon0), lat + dy / 2)
    return np.asarray(ew, dtype=float), np.asarray(ns, dtype=float)


# --------------------------------------------------------------------------- reading


def _crs(value, source: str | None = None) -> CRS | None:
    """The one CRS type of gapmap's rasters, :class:`pyproj.CRS` (``None`` stays ``None``).

    pyproj reads EPSG codes, WKT, PROJ strings and anything with a ``to_wkt`` method, such as
    a rasterio CRS.
    """
    if value is None or isinstance(value, CRS):
        return value
    try:
        return CRS.from_user_input(value)
    except pyproj.exceptions.CRSError as exc:
        raise InputError(source, "crs", f"unknown CRS {value!r}",
                         "give an EPSG code such as EPSG:32638") from exc


def _physical_memory_bytes() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # not POSIX: assume a 16 GiB machine
        return 16 * 2**30


def check_allocation(nbytes: float, source: str | None, field: str | None, what: str,
                     fix: str) -> None:
    """Refuse, before it starts, a step whose estimated memory exceeds the machine's.

    Parameters
    ----------
    nbytes
        The estimate, in bytes (NaN or infinite estimates are refused as well).
    source, field, fix
        As for :class:`gapmap.errors.InputError`.
    what
        The step, for the message ("the mosaic", "candidate sites" …).

    Raises
    ------
    gapmap.errors.InputError
        Naming the estimate and the machine's memory.

    Examples
    --------
    >>> check_allocation(1e6, "--bbox", None, "the mosaic", "give a smaller --bbox")
    >>> check_allocation(1e15, "--bbox", None, "the mosaic", "give a smaller --bbox")
    Traceback (most recent call last):
    ...
    gapmap.errors.InputError: --bbox: the mosaic would need about 931,323 GiB of memory, ...
    """
    limit = _physical_memory_bytes()
    if not (math.isfinite(nbytes) and nbytes <= limit):
        size = f"{nbytes / 2**30:,.0f} GiB" if math.isfinite(nbytes) else "unbounded memory"
        raise InputError(source, field, f"{what} would need about {size} of memory, more than "
                         f"this machine's {limit / 2**30:,.0f} GiB", fix)


def _check_cells(dem: Dem) -> None:
    if min(dem.shape) < MIN_CELLS:
        rows, cols = dem.shape
        raise InputError(dem.source, None, f"a DEM of {rows}×{cols} cells is too small "
                         f"(slope, line of sight and routes need at least {MIN_CELLS}×"
                         f"{MIN_CELLS})", "give a DEM that covers the area with finer cells")


def _window_for(src: rasterio.DatasetReader, bounds: Sequence[float], bounds_crs
                ) -> rasterio.windows.Window:
    """The window of ``src`` covering ``bounds`` plus a margin of cells, clipped to the raster."""
    b = rasterio.warp.transform_bounds(_crs(bounds_crs, "bounds_crs"), src.crs, *bounds,
                                       densify_pts=21)
    win = rasterio.windows.from_bounds(*b, transform=src.transform)
    col0 = math.floor(win.col_off) - _MARGIN_CELLS
    row0 = math.floor(win.row_off) - _MARGIN_CELLS
    col1 = math.ceil(win.col_off + win.width) + _MARGIN_CELLS
    row1 = math.ceil(win.row_off + win.height) + _MARGIN_CELLS
    col0, row0 = max(col0, 0), max(row0, 0)
    col1, row1 = min(col1, src.width), min(row1, src.height)
    if col1 <= col0 or row1 <= row0:
        raise InputError(src.name, "bounds", "the DEM does not cover the study area "
                         f"(DEM bounds {tuple(round(v, 4) for v in src.bounds)} in its CRS)",
                         "give a DEM that covers the area, e.g. build one with gapmap dem")
    return rasterio.windows.Window(col0, row0, col1 - col0, row1 - row0)


def _geographic_cell_m(transform: Affine, shape: tuple[int, int]) -> float:
    """Native spacing in metres at the window's centre latitude: the geometric mean of the
    east-west and north-south spacing, which keeps the number of cells (and so the detail)."""
    tmp = Dem(np.zeros((1, 1), np.float32), transform, CRS.from_epsg(4326))
    ew, ns = _cell_size_m(tmp, np.array([shape[0] / 2.0]))
    return float(math.sqrt(ew[0] * ns[0]))


def _check_bounds(bounds, source: str) -> tuple[float, float, float, float]:
    b = tuple(float(v) for v in bounds)
    if len(b) != 4 or not all(map(math.isfinite, b)) or not (b[0] < b[2] and b[1] < b[3]):
        raise InputError(source, "bounds", f"bad bounds {tuple(bounds)}",
                         "give (west, south, east, north) with west < east, south < north")
    return b  # type: ignore[return-value]


def _read_dataset(src, label: str, bounds, bounds_crs, dst_crs) -> Dem:
    """The window of an open dataset's band 1 covering ``bounds`` (whole raster without),
    on its own grid, nodata as NaN."""
    if src.crs is None:
        raise InputError(label, "crs", "the DEM has no coordinate reference system",
                         "set it with gdal_edit.py -a_srs EPSG:XXXX")
    src_crs = _crs(src.crs, label)
    if bounds is not None:
        bcrs = bounds_crs if bounds_crs is not None else (dst_crs if dst_crs is not None
                                                           else src_crs)
        win = _window_for(src, _check_bounds(bounds, label), bcrs)
    else:
        win = rasterio.windows.Window(0, 0, src.width, src.height)
    # float32 cells plus their mask and the NaN-filled copy
    check_allocation(float(win.width) * float(win.height) * 9, label, None,
                     f"reading {int(win.width):,}×{int(win.height):,} DEM cells",
                     "give a smaller study area or a coarser DEM")
    try:
        data = src.read(1, window=win, masked=True, out_dtype=np.float32)
    except rasterio.errors.RasterioError as exc:
        raise InputError(label, None, "cannot read the DEM's cells (truncated or damaged "
                         f"file?): {str(exc).splitlines()[0]}",
                         "download or rebuild the DEM (gapmap dem)") from exc
    transform = src.transform @ Affine.translation(win.col_off, win.row_off)
    arr = np.ma.filled(data, np.nan).astype(np.float32)
    arr[~np.isfinite(arr)] = np.nan
    return Dem(arr, transform, src_crs, source=label)


def _finish(dem: Dem, dst_crs, resolution_m: float | None) -> Dem:
    """Bring a freshly read grid to ``dst_crs`` (default: its own if projected, the local
    metric CRS if lon/lat) and ``resolution_m``; refuse grids too small or without data."""
    src_geo = dem.crs is not None and dem.crs.is_geographic
    if dst_crs is None and src_geo:
        dst_crs = dem.metric_crs()
    target = _crs(dst_crs, "crs") if dst_crs is not None else dem.crs
    if (target is not None and dem.crs is not None and not target.equals(dem.crs)) or \
            resolution_m is not None:
        if dem.crs is None or target is None:
            raise InputError(dem.source, "crs", "a DEM without a CRS cannot be reprojected",
                             "give the DEM's CRS")
        if resolution_m is None:
            resolution_m = (_geographic_cell_m(dem.transform, dem.shape) if src_geo
                            else float(np.mean(dem.res_xy)))
        if not (math.isfinite(resolution_m) and resolution_m > 0):
            raise InputError(dem.source, "resolution_m", f"resolution must be > 0, got "
                             f"{resolution_m!r}", "give a cell size in m")
        dem = _reproject(dem, target, float(resolution_m))
    _check_cells(dem)
    if np.isnan(dem.array).all():
        raise InputError(dem.source, None, "the DEM holds only nodata in the area",
                         "check the DEM's extent")
    log.debug("DEM %s: %s cells of %.1f m in %s", dem.source, dem.shape, dem.res_m,
              dem.crs.name if dem.crs is not None else "metres")
    return dem


def read_dem(path: str | os.PathLike, *, bounds: Sequence[float] | None = None,
             bounds_crs=None, dst_crs=None, resolution_m: float | None = None) -> Dem:
    """Read a DEM (any GeoTIFF/COG, any CRS), only the window needed, in a metric CRS.

    Parameters
    ----------
    path
        Raster readable by GDAL (GeoTIFF, COG, ``.hgt``, ``/vsicurl/`` URLs ...). Band 1 is read;
        its nodata value becomes NaN.
    bounds
        ``(west, south, east, north)`` of the area needed, in ``bounds_crs``. Only that window
        plus a margin of three cells is read (a 3×3 kernel and bilinear sampling need it).
    bounds_crs
        CRS of ``bounds``; default ``dst_crs`` if given, else the DEM's CRS.
    dst_crs
        CRS wanted. Default: the DEM's own CRS if it is projected; for a lon/lat DEM, the metric
        CRS gapmap would choose for the window (:func:`gapmap.crs.metric_crs`).
    resolution_m
        Cell size wanted after reprojection. Default: the native spacing. For a lon/lat DEM
        that is the DEM's spacing in metres at the window's centre latitude, as the geometric
        mean of the east-west and north-south spacing (1″ SRTM at 35° N: 25.3 × 30.8 m →
        27.9 m square cells), so the grid keeps about as many cells as the source.

    Returns
    -------
    Dem
        Reprojected with bilinear resampling whenever the CRS or the cell size changes
        (elevation is continuous; nearest would add steps, cubic overshoot at cliffs). For
        cells coarser than the source's coarser spacing GDAL widens the kernel
        (anti-aliasing); up to it, plain bilinear interpolation keeps planes exact. Cells whose
        kernel reaches nodata or the source's edge are NaN rather than extrapolated.

    Raises
    ------
    gapmap.errors.InputError
        Missing, unreadable or truncated file; no CRS; bounds outside the DEM; a window
        smaller than 3×3 cells or holding only nodata; a window too big for memory.

    Examples
    --------
    >>> dem = read_dem("geodata/dem.tif", bounds=(44.0, 35.0, 44.5, 35.5),
    ...                bounds_crs="EPSG:4326")  # doctest: +SKIP
    >>> dem.crs.to_epsg(), round(dem.res_m)  # doctest: +SKIP
    (32638, 28)
    """
    with _open_raster(path) as src:
        dem = _read_dataset(src, str(path), bounds, bounds_crs, dst_crs)
    return _finish(dem, dst_crs, resolution_m)


def _open_raster(path: str | os.PathLike):
    """The open dataset of a DEM file or URL; InputError when missing or unreadable."""
    p = str(path)
    if "://" not in p and not p.startswith("/vsi") and not Path(p).exists():
        raise InputError(p, None, "DEM file not found", "check the path given with --dem")
    try:
        return rasterio.open(p)
    except rasterio.errors.RasterioError as exc:
        raise InputError(p, None, f"cannot read the DEM: {str(exc).splitlines()[0]}",
                         "give a GeoTIFF (or another raster GDAL reads)") from exc


def _crop(dem: Dem, bounds, bounds_crs) -> Dem:
    """The part of ``dem`` covering ``bounds`` plus the reading margin (a view, no copy)."""
    b = _check_bounds(bounds, dem.source or "dem")
    bcrs = _crs(bounds_crs, "bounds_crs") if bounds_crs is not None else dem.crs
    if bcrs is not None and dem.crs is not None and not bcrs.equals(dem.crs):
        b = rasterio.warp.transform_bounds(bcrs, dem.crs, *b, densify_pts=21)
    win = rasterio.windows.from_bounds(*b, transform=dem.transform)
    r0 = max(math.floor(win.row_off) - _MARGIN_CELLS, 0)
    c0 = max(math.floor(win.col_off) - _MARGIN_CELLS, 0)
    r1 = min(math.ceil(win.row_off + win.height) + _MARGIN_CELLS, dem.shape[0])
    c1 = min(math.ceil(win.col_off + win.width) + _MARGIN_CELLS, dem.shape[1])
    if r1 <= r0 or c1 <= c0:
        raise InputError(dem.source, "bounds", "the DEM does not cover the study area",
                         "give a DEM that covers the area, e.g. build one with gapmap dem")
    return Dem(dem.array[r0:r1, c0:c1], dem.transform @ Affine.translation(c0, r0), dem.crs,
               source=dem.source)


def _wants_change(dem: Dem, crs, resolution_m: float | None) -> bool:
    if crs is not None and dem.crs is not None and not _crs(crs, "crs").equals(dem.crs):
        return True
    if crs is not None and dem.crs is None:
        return True
    if resolution_m is None:
        return False
    dx, dy = dem.res_xy
    return not (math.isclose(dx, resolution_m, rel_tol=1e-9)
                and math.isclose(dy, resolution_m, rel_tol=1e-9))


def as_dem(obj: Any, *, bounds: Sequence[float] | None = None, bounds_crs=None, crs=None,
           resolution_m: float | None = None) -> Dem:
    """Turn anything that holds elevations into a :class:`Dem`: the one way in for every engine.

    Parameters
    ----------
    obj
        A :class:`Dem`; a path or URL of a raster GDAL reads; an open rasterio dataset; or
        ``(array, transform[, crs])``.
    bounds, bounds_crs
        ``(west, south, east, north)`` of the area needed (in ``bounds_crs``, default ``crs``
        or the DEM's own): only that window plus three cells is read. A :class:`Dem` is
        already read; it is cut to ``bounds`` (a view) only when it must be reprojected.
    crs
        CRS wanted. Default: a :class:`Dem` keeps its own; anything else is read like a file
        (:func:`read_dem`): its own CRS if projected, the local metric CRS if lon/lat.
    resolution_m
        Cell size wanted (square cells, metres); default: the native spacing.

    Returns
    -------
    Dem
        A :class:`Dem` already in the wanted CRS and cell size is returned as it is (no copy,
        no file read). Otherwise the grid is reprojected by the one rule of :func:`read_dem`
        (bilinear; cells whose kernel reaches nodata or the edge become NaN).

    Raises
    ------
    gapmap.errors.InputError
        Anything that is not a DEM, an unreadable or truncated file, a grid smaller than 3×3
        cells, a rotated grid, an unknown CRS.

    Examples
    --------
    >>> import numpy as np
    >>> from affine import Affine
    >>> dem = as_dem((np.zeros((4, 5)), Affine(30, 0, 400000, 0, -30, 3900120), 32638))
    >>> dem.shape, dem.crs.to_epsg(), dem.array.dtype
    ((4, 5), 32638, dtype('float32'))
    >>> as_dem(dem) is dem, as_dem(dem, crs="EPSG:32638") is dem
    (True, True)
    >>> as_dem(dem, crs="EPSG:32637").crs.to_epsg()
    32637
    """
    if isinstance(obj, Dem):
        if not _wants_change(obj, crs, resolution_m):
            _check_cells(obj)
            return obj
        dem = _crop(obj, bounds, bounds_crs if bounds_crs is not None else crs) \
            if bounds is not None else obj
        return _finish(dem, crs, resolution_m)
    if isinstance(obj, (str, os.PathLike)):
        return read_dem(obj, bounds=bounds, bounds_crs=bounds_crs, dst_crs=crs,
                        resolution_m=resolution_m)
    if isinstance(obj, rasterio.io.DatasetReaderBase):
        if obj.closed:
            raise InputError(obj.name, None, "the raster dataset is closed",
                             "pass it while it is open, or pass its path")
        return _finish(_read_dataset(obj, obj.name, bounds, bounds_crs, crs), crs, resolution_m)
    if isinstance(obj, tuple) and len(obj) in (2, 3):
        dem = Dem(obj[0], obj[1], obj[2] if len(obj) == 3 else None, source="dem")
    elif hasattr(obj, "array") and hasattr(obj, "transform"):  # a grid from another library
        dem = Dem(obj.array, obj.transform, getattr(obj, "crs", None),
                  source=str(getattr(obj, "source", None) or "dem"))
    else:
        raise InputError("dem", None, f"cannot use a {type(obj).__name__} as a DEM",
                         "pass a GeoTIFF path, a gapmap.terrain.Dem or (array, transform, crs)")
    if bounds is not None and _wants_change(dem, crs, resolution_m):
        dem = _crop(dem, bounds, bounds_crs if bounds_crs is not None else crs)
    return _finish(dem, crs, resolution_m)


@contextlib.contextmanager
def _quiet_affine():
    """Silence affine 3's notice about ``*`` that rasterio 1.4's own helpers still trigger."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Use `@` matmul")
        yield


def _reproject(dem: Dem, dst_crs: CRS, resolution_m: float) -> Dem:
    """The one reprojection rule of gapmap's rasters: bilinear, masked.

    Cells whose bilinear kernel reaches nodata or the source's edge become NaN instead of being
    filled from renormalised weights, because those filled cells bend the slope, the line of
    sight and the walking time next to every hole and edge; masked, a plane stays a plane up
    to the last cell with full support.
    """
    left, bottom, right, top = _bounds(dem.transform, dem.shape)
    with _quiet_affine():
        dst_transform, width, height = rasterio.warp.calculate_default_transform(
            dem.crs, dst_crs, dem.shape[1], dem.shape[0], left, bottom, right, top,
            resolution=resolution_m)
    # the result, its support grid and the framed validity grid: 3 float32 grids
    check_allocation(12.0 * width * height, dem.source, "resolution_m",
                     f"reprojecting to {width:,}×{height:,} cells of {resolution_m:g} m",
                     "give a coarser resolution or a smaller area")
    ew, ns = _cell_size_m(dem, np.array([dem.shape[0] / 2.0]))
    # Up to the source's coarser spacing, plain bilinear interpolation (planes stay exact).
    # GDAL would widen the kernel as soon as one axis is coarser (e.g. 25 × 31 m SRTM cells to
    # 28 m), which tilts planes by a few hundredths of a degree; it is kept for real coarsening,
    # where anti-aliasing matters more.
    point = {"XSCALE": 1, "YSCALE": 1} if resolution_m <= max(ew[0], ns[0]) * 1.0001 else {}
    out = np.full((height, width), np.nan, np.float32)
    rasterio.warp.reproject(np.ascontiguousarray(dem.array), out, src_transform=dem.transform,
                            src_crs=dem.crs, src_nodata=np.nan, dst_transform=dst_transform,
                            dst_crs=dst_crs, dst_nodata=np.nan, resampling=Resampling.bilinear,
                            tolerance=0, **point)  # exact per-cell transforms: no kinks
    # GDAL renormalises bilinear weights next to nodata and the grid's edge, which bends
    # slopes there; keep only cells whose whole kernel lies on data. The support is measured
    # by warping a 0/1 validity grid framed by a row of zeros with the same kernel.
    valid = np.zeros((dem.shape[0] + 2, dem.shape[1] + 2), np.float32)
    valid[1:-1, 1:-1] = np.isfinite(dem.array)
    support = np.zeros_like(out)
    framed = dem.transform @ Affine.translation(-1, -1)
    rasterio.warp.reproject(valid, support, src_transform=framed, src_crs=dem.crs,
                            dst_transform=dst_transform, dst_crs=dst_crs,
                            resampling=Resampling.bilinear, tolerance=0, **point)
    out[support < 0.999] = np.nan
    return Dem(out, dst_transform, dst_crs, source=dem.source)


# --------------------------------------------------------------------------- derivatives


# The three kernels make one pass over the grid (numba): the numpy version with nine shifted
# views allocated a dozen full-size temporaries and ran 1.2–1.9× slower than gdaldem.
# gdaldem's window order: 0 1 2 / 3 4 5 / 6 7 8, 0 the upper-left neighbour. NaN propagates,
# so any nodata in the window gives nodata, as gdaldem without -compute_edges.


@numba.njit(cache=True, nogil=True)
def _horn(z, r, c, ew, ns, north_up):  # pragma: no cover - compiled
    """Horn gradient at interior cell (r, c): (dz/d east, dz/d north) per metre; NaN when
    any of the nine cells is NaN (the kernel skips the centre, gdaldem does not)."""
    z0, z1, z2 = float(z[r - 1, c - 1]), float(z[r - 1, c]), float(z[r - 1, c + 1])
    z3, z4, z5 = float(z[r, c - 1]), float(z[r, c]), float(z[r, c + 1])
    z6, z7, z8 = float(z[r + 1, c - 1]), float(z[r + 1, c]), float(z[r + 1, c + 1])
    dzdx = ((z2 + 2 * z5 + z8) - (z0 + 2 * z3 + z6)) / (8.0 * ew) + 0.0 * z4
    dzdy = north_up * ((z0 + 2 * z1 + z2) - (z6 + 2 * z7 + z8)) / (8.0 * ns)
    return dzdx, dzdy


@numba.njit(cache=True, nogil=True)
def _slope_kernel(z, ew, ns, north_up, out):  # pragma: no cover - compiled
    to_deg = 180.0 / math.pi
    for r in range(1, z.shape[0] - 1):
        for c in range(1, z.shape[1] - 1):
            dx, dy = _horn(z, r, c, ew[r], ns[r], north_up)
            out[r, c] = math.atan(math.sqrt(dx * dx + dy * dy)) * to_deg


@numba.njit(cache=True, nogil=True)
def _tri_kernel(z, out):  # pragma: no cover - compiled
    for r in range(1, z.shape[0] - 1):
        for c in range(1, z.shape[1] - 1):
            z0 = float(z[r, c])
            total = 0.0
            for i in range(-1, 2):
                for j in range(-1, 2):
                    d = float(z[r + i, c + j]) - z0
                    total += d * d
            out[r, c] = math.sqrt(total)


@numba.njit(cache=True, nogil=True)
def _hillshade_kernel(z, ew, ns, north_up, sin_alt, cos_alt_cos_az, cos_alt_sin_az, zf,
                      out):  # pragma: no cover - compiled
    for r in range(1, z.shape[0] - 1):
        for c in range(1, z.shape[1] - 1):
            dx, dy = _horn(z, r, c, ew[r], ns[r], north_up)
            if math.isnan(dx) or math.isnan(dy):
                continue  # stays 0 = nodata
            num = sin_alt - zf * (dy * cos_alt_cos_az + dx * cos_alt_sin_az)
            cang = 254.0 * num / math.sqrt(1.0 + zf * zf * (dx * dx + dy * dy))
            shade = 1.0 if cang <= 0.0 else 1.0 + cang
            out[r, c] = min(255, int(math.floor(shade + 0.5)))  # GDAL rounds to nearest


def _row_sizes(dem: Dem) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-row cell width and height in metres (constant when projected) and the sign that
    makes dz/dy point north (row 0 is north on north-up grids)."""
    ew, ns = _cell_size_m(dem, np.arange(dem.shape[0]) + 0.5)
    return ew, ns, (1.0 if dem.transform.e < 0 else -1.0)


def _check_grid(dem: Dem) -> None:
    if min(dem.shape) < 3:
        raise InputError(dem.source, None, f"DEM of {dem.shape} cells is too small for a 3×3 "
                         "window", "give a DEM at least 3 cells wide and tall")


def _edged(shape: tuple[int, int]) -> np.ndarray:
    """A float32 field whose edge cells are NaN and whose interior the kernels fill (every
    interior cell is written), so the interior is not filled twice as with ``np.full``.

    >>> _edged((3, 4))[0].tolist(), bool(np.isnan(_edged((3, 4))[:, -1]).all())
    ([nan, nan, nan, nan], True)
    """
    out = np.empty(shape, np.float32)
    out[0], out[-1], out[:, 0], out[:, -1] = np.nan, np.nan, np.nan, np.nan
    return out


def slope(dem: Dem | str | os.PathLike) -> np.ndarray:
    """Slope in degrees, Horn (1981), as ``gdaldem slope`` (edges and nodata windows NaN).

    Examples
    --------
    >>> import numpy as np
    >>> from affine import Affine
    >>> ramp = np.tile(np.arange(5, dtype=np.float32) * 10, (5, 1))  # 10 m rise per 10 m cell
    >>> d = Dem(ramp, Affine(10, 0, 0, 0, -10, 50), CRS.from_epsg(32638))
    >>> float(slope(d)[2, 2])
    45.0
    """
    dem = as_dem(dem)
    _check_grid(dem)
    out = _edged(dem.shape)
    _slope_kernel(dem.array, *_row_sizes(dem), out)
    return out


def tri(dem: Dem | str | os.PathLike) -> np.ndarray:
    """Terrain Ruggedness Index (Riley et al. 1999) in metres, as ``gdaldem TRI`` (default
    ``-alg Riley`` since GDAL 3.3): √Σ(zᵢ − z₀)² over the eight neighbours.

    Examples
    --------
    >>> import numpy as np
    >>> from affine import Affine
    >>> z = np.zeros((3, 3), np.float32); z[1, 1] = 1
    >>> float(tri(Dem(z, Affine(10, 0, 0, 0, -10, 30), CRS.from_epsg(32638)))[1, 1])
    2.828...
    """
    dem = as_dem(dem)
    _check_grid(dem)
    out = _edged(dem.shape)
    _tri_kernel(dem.array, out)
    return out


def hillshade(dem: Dem | str | os.PathLike, azimuth_deg: float = 315.0, altitude_deg: float = 45.0,
              z_factor: float = 1.0) -> np.ndarray:
    """Hillshade as ``gdaldem hillshade``: uint8 1–255, 0 on edges and nodata windows.

    Shade = 1 + 254·max(0, (sin alt − cos alt·z·(∂z/∂north·cos az + ∂z/∂east·sin az))
    / √(1 + z²·|∇z|²)), the light coming from ``azimuth_deg`` (clockwise from north).

    Examples
    --------
    >>> import numpy as np
    >>> from affine import Affine
    >>> flat = Dem(np.zeros((3, 3), np.float32), Affine(10, 0, 0, 0, -10, 30),
    ...            CRS.from_epsg(32638))
    >>> hillshade(flat)[1, 1]  # 1 + 254·sin 45°
    np.uint8(181)
    """
    dem = as_dem(dem)
    _check_grid(dem)
    az, alt = math.radians(azimuth_deg), math.radians(altitude_deg)
    out = np.zeros(dem.shape, np.uint8)
    _hillshade_kernel(dem.array, *_row_sizes(dem), math.sin(alt), math.cos(alt) * math.cos(az),
                      math.cos(alt) * math.sin(az), float(z_factor), out)
    return out


def derivatives_memory_bytes(tile_cells: int) -> float:
    """Peak memory (bytes) of one process computing derivative tiles: the formula of
    ``docs/scale.md``, ``BASE + GDAL cache + 14·(T + 2)² + 8·T²`` for tiles of ``T`` cells
    grown by one cell (the float32 window and its mask, slope, TRI and hillshade on it, the
    cropped slope and TRI with their nodata filled).

    >>> round(derivatives_memory_bytes(2048) / 1e9, 2)
    0.58
    """
    from .tiles import BASE_BYTES, GDAL_CACHE_BYTES

    t = float(tile_cells)
    return BASE_BYTES + GDAL_CACHE_BYTES + 14.0 * (t + 2) ** 2 + 8.0 * t * t


@dataclass(frozen=True)
class _DerivativesJob:
    """What every tile of one derivatives run needs (shipped once to each Dask worker)."""

    source: Any  # an in-memory Dem, an open dataset (in this process) or a path (on Dask)
    row0: int  # the output grid's first row and column in the source
    col0: int
    shape: tuple[int, int]  # the output grid
    transform: Affine  # of the output grid
    crs: CRS | None
    ew: np.ndarray  # cell width and height in metres of every output row
    ns: np.ndarray
    north_up: float


def _derivatives_tile(job: _DerivativesJob, tile) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slope, TRI (nodata −9999) and hillshade (nodata 0) of one tile, from the tile grown by
    one cell: the same cells as on the whole grid (edges of the grid stay nodata)."""
    from .tiles import read_window

    r0, c0, r1, c1 = tile.grown(1, 1, job.shape)
    if isinstance(job.source, Dem):
        z = job.source.array[job.row0 + r0:job.row0 + r1, job.col0 + c0:job.col0 + c1]
    else:
        z = read_window(job.source, job.row0 + r0, job.col0 + c0, job.row0 + r1,
                        job.col0 + c1)
    ew, ns = job.ew[r0:r1], job.ns[r0:r1]
    cut = (slice(tile.row0 - r0, tile.row0 - r0 + tile.rows),
           slice(tile.col0 - c0, tile.col0 - c0 + tile.cols))
    if min(z.shape) < 3:  # a sliver at the grid's edge: nothing but edge cells
        return (np.full((tile.rows, tile.cols), DERIVATIVE_NODATA, np.float32),
                np.full((tile.rows, tile.cols), DERIVATIVE_NODATA, np.float32),
                np.zeros((tile.rows, tile.cols), np.uint8))
    s = np.full(z.shape, np.nan, np.float32)
    _slope_kernel(z, ew, ns, job.north_up, s)
    s = np.nan_to_num(s[cut], nan=DERIVATIVE_NODATA)
    t = np.full(z.shape, np.nan, np.float32)
    _tri_kernel(z, t)
    t = np.nan_to_num(t[cut], nan=DERIVATIVE_NODATA)
    az, alt = math.radians(315.0), math.radians(45.0)
    hs = np.zeros(z.shape, np.uint8)
    _hillshade_kernel(z, ew, ns, job.north_up, math.sin(alt), math.cos(alt) * math.cos(az),
                      math.cos(alt) * math.sin(az), 1.0, hs)
    return s, t, np.ascontiguousarray(hs[cut])


def _derivatives_job(dem, src, bounds, bounds_crs, dask: bool) -> _DerivativesJob:
    """The output grid: the whole Dem or file, or the window of ``bounds`` plus three cells."""
    if dem is not None:
        # a Dem is written as it is (``bounds`` are for reading a file)
        source, row0, col0, shape, transform, crs = dem, 0, 0, dem.shape, dem.transform, dem.crs
    else:
        crs = _crs(src.crs, src.name)
        if crs is None:
            raise InputError(src.name, "crs", "the DEM has no coordinate reference system",
                             "set it with gdal_edit.py -a_srs EPSG:XXXX")
        if bounds is not None:
            win = _window_for(src, _check_bounds(bounds, src.name),
                              bounds_crs if bounds_crs is not None else crs)
        else:
            win = rasterio.windows.Window(0, 0, src.width, src.height)
        row0, col0 = int(win.row_off), int(win.col_off)
        shape = (int(win.height), int(win.width))
        transform = src.transform @ Affine.translation(col0, row0)
        source = src.name if dask else src
        if transform.b != 0 or transform.d != 0:
            raise InputError(src.name, "transform", "rotated DEM grids are not supported",
                             "warp it north-up first: gdalwarp in.tif out.tif")
    if min(shape) < 3:
        raise InputError(str(getattr(dem, "source", None) or src.name), None,
                         f"DEM of {shape} cells is too small for a 3×3 window",
                         "give a DEM at least 3 cells wide and tall")
    # cell sizes from the whole grid's rows, so a tile's rows get the very same numbers
    probe = Dem(np.zeros((1, 1), np.float32), transform, crs)
    ew, ns = _cell_size_m(probe, np.arange(shape[0]) + 0.5)
    return _DerivativesJob(source, row0, col0, shape, transform, crs, ew, ns,
                           1.0 if transform.e < 0 else -1.0)


def write_derivatives(dem: Dem | str | os.PathLike, out_dir: str | os.PathLike, *,
                      bounds: Sequence[float] | None = None, bounds_crs=None,
                      tile_cells: int | None = None, max_memory_gb: float | None = None,
                      workers: int | None = 1, scheduler: str | None = None,
                      progress: Any = None) -> dict[str, Path]:
    """Write ``slope.tif``, ``tri.tif`` and ``hillshade.tif`` (COGs) on the DEM's own grid.

    Same CRS, transform and shape as the input (no reprojection, also for lon/lat DEMs, whose
    cell sizes are then taken in metres row by row). Slope and TRI are float32 with nodata
    −9999 (as ``gdaldem``), hillshade uint8 with nodata 0. The three files appear together.
    With ``bounds`` (in ``bounds_crs``, default the DEM's CRS) only that window of a file,
    plus a margin of three cells, is read and written; a :class:`Dem` is written as it is.

    The grid is computed tile by tile, each tile read from the file with a one-cell halo
    (:mod:`gapmap.tiles`) and written as it is done, so a DEM larger than memory is never read
    whole; ``workers`` / ``scheduler`` spread the tiles over Dask workers
    (:func:`gapmap.engine.run_tasks`; each worker must reach the DEM's path). The cells are
    the same whatever the tiling.

    Parameters
    ----------
    tile_cells
        Tile size in cells across; default the largest of 2048, 1024, 512 that fits.
    max_memory_gb
        Memory the run may use (decimal GB; default the machine's); a run whose formula
        (``docs/scale.md``) exceeds it is refused with :class:`~gapmap.errors.InputError`.
    progress
        Called as ``progress(done, total)`` after each tile.

    Examples
    --------
    >>> write_derivatives("geodata/dem.tif", "out/terrain")  # doctest: +SKIP
    {'slope': PosixPath('out/terrain/slope.tif'), 'tri': ..., 'hillshade': ...}
    """
    with contextlib.ExitStack() as stack:
        src = None
        if not isinstance(dem, Dem):
            src = stack.enter_context(_open_raster(dem))  # opened once, here
        dask = scheduler is not None or (workers is not None and int(workers) > 1) \
            or workers is None
        job = _derivatives_job(dem if src is None else None, src, bounds, bounds_crs, dask)
        return _write_tiles(job, Path(out_dir), tile_cells, max_memory_gb, workers, scheduler,
                            progress, dask)


def _write_tiles(job: _DerivativesJob, out: Path, tile_cells, max_memory_gb, workers,
                 scheduler, progress, dask: bool) -> dict[str, Path]:
    from .engine import default_workers
    from .tiles import (BASE_BYTES, GDAL_CACHE_BYTES, check_memory, cog_writer, map_tiles,
                        memory_limit_bytes, pick_tile_cells, tile_grid)

    limit = memory_limit_bytes(max_memory_gb)
    procs = 1 if scheduler is not None or not dask else (
        default_workers() if workers is None else int(workers))

    def need(t: int) -> float:  # local workers, and the batch of results held here
        client = BASE_BYTES + GDAL_CACHE_BYTES + 9.0 * t * t * 2 * procs if dask else 0.0
        return derivatives_memory_bytes(t) * procs + client

    t = pick_tile_cells(need, limit, tile_cells)
    if t is None:
        t_min = int(tile_cells) if tile_cells is not None else 512
        check_memory(need(t_min), limit, what=f"terrain derivatives on tiles of {t_min}",
                     formula="400 MB + 64 MB + 14·(T+2)² + 8·T² per process",
                     fits=f"allow --max-memory-gb {math.ceil(need(t_min) / 1e8) / 10:g}"
                          + (" or fewer --workers" if procs > 1 else ""))
    tiles = tile_grid(job.shape, t)
    batch = 2 * procs if dask else 1
    paths: dict[str, Path] = {}
    grid = dict(height=job.shape[0], width=job.shape[1], transform=job.transform, crs=job.crs,
                atomic=False)
    with atomic_dir(out) as stage, contextlib.ExitStack() as files:
        writers = [files.enter_context(cog_writer(stage / f"{name}.tif", count=1, dtype=dtype,
                                                  nodata=nodata, **grid))
                   for name, dtype, nodata in (("slope", "float32", DERIVATIVE_NODATA),
                                               ("tri", "float32", DERIVATIVE_NODATA),
                                               ("hillshade", "uint8", 0))]
        for tile, layers in map_tiles(_derivatives_tile, tiles, shared=job, workers=workers,
                                      scheduler=scheduler, batch=batch, progress=progress):
            for write, arr in zip(writers, layers):
                write(tile, arr)
        files.close()  # the three COGs are made before the folder is moved into place
    for name in ("slope", "tri", "hillshade"):
        paths[name] = out / f"{name}.tif"
    return paths


# --------------------------------------------------------------------------- along lines


def mean_along(values: np.ndarray, dem: Dem, geoms, *, spacing_m: float | None = None
               ) -> np.ndarray:
    """Mean of a raster on ``dem``'s grid along each line (or at each point).

    Each line is cut into equal pieces no longer than ``spacing_m`` (default half a cell, so
    every cell it crosses is visited) and the values of the cells holding the pieces'
    midpoints are averaged: a length-weighted mean along the line. Nodata (NaN) samples are left
    out; a line entirely on nodata or off the grid gives NaN. Points give their cell's value.

    Parameters
    ----------
    values
        2-D array of ``dem.shape`` (e.g. ``slope(dem)``).
    dem
        The grid ``values`` lives on.
    geoms
        LineStrings / MultiLineStrings / Points: a GeoSeries (reprojected to the DEM's CRS if
        needed) or an array of shapely geometries in the DEM's CRS.

    Examples
    --------
    >>> s = slope(dem)  # doctest: +SKIP
    >>> mean_along(s, dem, corridors.geometry)  # doctest: +SKIP
    array([ 3.2, 11.7])
    """
    values = np.asarray(values)
    if values.shape != dem.shape:
        raise InputError(dem.source, "values", f"raster of shape {values.shape} is not on the "
                         f"DEM grid {dem.shape}", "derive it from the same DEM")
    if isinstance(geoms, gpd.GeoSeries | gpd.GeoDataFrame):
        g = geoms.geometry if isinstance(geoms, gpd.GeoDataFrame) else geoms
        if g.crs is not None and dem.crs is not None and not dem.crs.equals(g.crs):
            g = g.to_crs(dem.crs)
        arr = np.asarray(g.values, dtype=object)
    else:
        arr = np.asarray(list(geoms) if not isinstance(geoms, np.ndarray) else geoms, dtype=object)
    n = len(arr)
    if n == 0:
        return np.zeros(0, dtype=float)
    step = spacing_m if spacing_m else min(dem.res_xy) / 2.0
    parts, owner = shapely.get_parts(arr, return_index=True)
    is_line = np.isin(shapely.get_type_id(parts), (1, 2))  # LineString, LinearRing
    lengths = np.where(is_line, shapely.length(parts), 0.0)
    # midpoints of equal pieces: every sample stands for the same length (length-weighted mean)
    counts = np.where(is_line, np.maximum(np.ceil(lengths / step), 1).astype(np.int64), 1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    k = np.arange(counts.sum()) - np.repeat(starts, counts)
    frac = (k + 0.5) / np.repeat(counts, counts)
    part_of = np.repeat(np.arange(len(parts)), counts)
    on_line = is_line[part_of]
    pts = np.empty(len(part_of), dtype=object)
    pts[on_line] = shapely.line_interpolate_point(parts[part_of[on_line]], frac[on_line],
                                                  normalized=True)
    pts[~on_line] = parts[part_of[~on_line]]  # points (other types give no samples)
    keep = shapely.get_type_id(pts) == 0
    keep &= ~shapely.is_empty(pts)
    part_of = part_of[keep]
    xy = shapely.get_coordinates(pts[keep])
    inv = ~dem.transform
    c, r = inv @ (xy[:, 0], xy[:, 1])
    c = np.floor(np.asarray(c)).astype(np.int64)
    r = np.floor(np.asarray(r)).astype(np.int64)
    ok = (r >= 0) & (r < dem.shape[0]) & (c >= 0) & (c < dem.shape[1])
    v = np.full(len(xy), np.nan)
    v[ok] = values[r[ok], c[ok]]
    good = np.isfinite(v)
    geom_of = owner[part_of]
    total = np.bincount(geom_of[good], weights=v[good], minlength=n)
    count = np.bincount(geom_of[good], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


# --------------------------------------------------------------------------- tiles → COG

_HGT_NAME = re.compile(r"^([NS])(\d{1,2})([EW])(\d{1,3})", re.IGNORECASE)
_RASTER_SUFFIXES = (".hgt", ".hgt.zip", ".tif", ".tiff")


def _parse_bbox(bbox) -> tuple[float, float, float, float]:
    if isinstance(bbox, str):
        try:
            vals = tuple(float(v) for v in bbox.replace(" ", "").split(","))
        except ValueError:
            vals = ()
    else:
        vals = tuple(float(v) for v in bbox)
    if len(vals) != 4:
        raise InputError("--bbox", None, f"bad bounding box {bbox!r}",
                         "give W,S,E,N in degrees, e.g. 43.5,34.5,45.5,36.5")
    w, s, e, n = vals
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise InputError("--bbox", None, f"bad bounding box {bbox!r}",
                         "give W,S,E,N in degrees with W < E and S < N")
    return w, s, e, n


def _degree_cells(bbox: tuple[float, float, float, float]) -> list[tuple[int, int]]:
    """(lat, lon) of the south-west corners of the 1°×1° tiles the bbox touches."""
    w, s, e, n = bbox
    lats = range(math.floor(s), math.ceil(n))
    lons = range(math.floor(w), math.ceil(e))
    return [(lat, lon) for lat in lats for lon in lons]


_PLACEHOLDERS = ("lat", "lon", "NS", "EW", "ns", "ew", "slat", "slon")
_WIDTH = re.compile(r"^0?\d{0,2}d?$")  # "", "d", "2d", "02d", "03d" ...


def _check_template(template: str) -> None:
    """Only the documented placeholders, each bare or with an integer width: no attribute or
    index access (``{lat.__class__}``), no conversions, no nested fields."""
    import string

    fix = ("use only {lat} {lon} {NS} {EW} {ns} {ew} {slat} {slon}, optionally with a width "
           "such as {lat:02d}")
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise InputError("--tiles", None, f"bad template: {exc}", fix) from exc
    for _, name, spec, conv in fields:
        if name is None:
            continue
        letters = name in ("NS", "EW", "ns", "ew")
        if name not in _PLACEHOLDERS or conv is not None or not _WIDTH.match(spec or "") or \
                (letters and spec):
            shown = "{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
            raise InputError("--tiles", None, f"unsupported placeholder {shown!r} in the "
                             "template", fix)


def tile_urls(template: str, bbox) -> dict[tuple[int, int], str]:
    """Fill a tile-name template for each 1°×1° tile the bbox touches.

    Placeholders (Python format syntax, so widths like ``{lat:02d}`` work), for the tile whose
    south-west corner is at (``lat``, ``lon``) degrees:

    ``{lat}``, ``{lon}``
        absolute values of the corner's latitude and longitude (ints);
    ``{NS}``, ``{EW}`` / ``{ns}``, ``{ew}``
        hemisphere letters, upper / lower case;
    ``{slat}``, ``{slon}``
        signed latitude and longitude (ints).

    Copernicus GLO-30 on AWS, for example::

        https://copernicus-dem-30m.s3.amazonaws.com/Copernicus_DSM_COG_10_{NS}{lat:02d}_00_{EW}{lon:03d}_00_DEM/Copernicus_DSM_COG_10_{NS}{lat:02d}_00_{EW}{lon:03d}_00_DEM.tif

    and SRTM-style names: ``/data/srtm/{NS}{lat:02d}{EW}{lon:03d}.hgt``.

    Examples
    --------
    >>> tile_urls("{NS}{lat:02d}{EW}{lon:03d}.hgt", (44.2, 35.1, 44.8, 35.9))
    {(35, 44): 'N35E044.hgt'}
    """
    _check_template(template)
    out = {}
    for lat, lon in _degree_cells(_parse_bbox(bbox)):
        keys = {"lat": abs(lat), "lon": abs(lon), "NS": "N" if lat >= 0 else "S",
                "EW": "E" if lon >= 0 else "W", "slat": lat, "slon": lon}
        keys.update(ns=keys["NS"].lower(), ew=keys["EW"].lower())
        try:
            out[(lat, lon)] = template.format(**keys)
        except (KeyError, IndexError, ValueError) as exc:
            raise InputError("--tiles", None, f"bad placeholder in template: {exc}",
                             "use {lat} {lon} {NS} {EW} {ns} {ew} {slat} {slon}") from exc
    return out


def _gdal_name(path: Path) -> str:
    """GDAL path of a tile; zipped .hgt through /vsizip/ (the .hgt inside the zip)."""
    name = path.name.lower()
    if name.endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            inner = [m for m in zf.namelist() if m.lower().endswith((".hgt", ".tif", ".tiff"))]
        if not inner:
            raise InputError(path, None, "no .hgt or .tif inside the zip", "check the tile")
        return f"/vsizip/{path.resolve()}/{inner[0]}"
    return str(path)


def _open_tile(name: str, label: str):
    try:
        return rasterio.open(name)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(label, None, f"cannot read tile: {str(exc).splitlines()[0]}",
                         "check or remove the tile") from exc


def _local_tiles(folder: Path, bbox) -> tuple[list[str], list[str]]:
    """(GDAL names of tiles that touch bbox, names of missing 1° SRTM tiles)."""
    files = sorted(f for f in folder.rglob("*")
                   if f.is_file() and f.name.lower().endswith(_RASTER_SUFFIXES))
    if not files:
        raise InputError(folder, None, "no .hgt, .hgt.zip or GeoTIFF tiles in the folder",
                         "give the folder that holds the DEM tiles")
    w, s, e, n = bbox
    chosen, hgt_cells, tif_boxes = [], set(), []
    for f in files:
        m = _HGT_NAME.match(f.name)
        if m and f.name.lower().endswith((".hgt", ".hgt.zip")):
            lat = int(m.group(2)) * (1 if m.group(1).upper() == "N" else -1)
            lon = int(m.group(4)) * (1 if m.group(3).upper() == "E" else -1)
            if lon < e and lon + 1 > w and lat < n and lat + 1 > s:
                chosen.append(_gdal_name(f))
                hgt_cells.add((lat, lon))
            continue
        gname = _gdal_name(f)
        with _open_tile(gname, str(f)) as src:
            if src.crs is None:
                warnings.warn(f"{f}: tile without a CRS ignored", stacklevel=3)
                continue
            tb = rasterio.warp.transform_bounds(src.crs, "EPSG:4326", *src.bounds,
                                                densify_pts=21)
        if tb[0] < e and tb[2] > w and tb[1] < n and tb[3] > s:
            chosen.append(gname)
            tif_boxes.append(shapely.box(*tb))
    missing = []
    if hgt_cells:
        for lat, lon in _degree_cells(bbox):
            if (lat, lon) not in hgt_cells:
                missing.append(f"{'N' if lat >= 0 else 'S'}{abs(lat):02d}"
                               f"{'E' if lon >= 0 else 'W'}{abs(lon):03d}")
    elif tif_boxes:  # GeoTIFFs of any names: say how much of the area they leave out
        area = shapely.box(*bbox)
        gap = shapely.difference(area, shapely.union_all(tif_boxes)).area / area.area
        if gap > 1e-3:
            missing.append(f"{100 * gap:.1f}% of the bounding box")
    return chosen, missing


def _check_mosaic_memory(src, bbox, label: str) -> None:
    """Refuse a mosaic of ``bbox`` at the tile's cell size that would not fit in memory (the
    merged grid and its float32 copy for reprojection)."""
    w, s_, e, n = rasterio.warp.transform_bounds("EPSG:4326", src.crs, *bbox, densify_pts=21)
    dx, dy = src.res
    cells = (e - w) / dx * ((n - s_) / dy)
    per_cell = np.dtype(src.dtypes[0]).itemsize + 4
    check_allocation(cells * per_cell, "--bbox", None,
                     f"a mosaic of {cells:,.0f} cells at the tiles' {dx:g}×{dy:g} spacing",
                     "give the study area's bounding box, a few degrees across")


def _remote_tiles(template: str, bbox) -> tuple[list[str], list[str]]:
    chosen, missing = [], []
    for url in tile_urls(template, bbox).values():
        name = url
        if re.match(r"^https?://", url):
            name = "/vsicurl/" + url
        elif url.lower().endswith(".zip") and Path(url).exists():
            name = _gdal_name(Path(url))
        try:
            with rasterio.open(name) as src:
                if not chosen:  # the first tile tells the cell size: refuse before the rest
                    _check_mosaic_memory(src, bbox, template)
            chosen.append(name)
        except rasterio.errors.RasterioIOError as exc:
            log.debug("tile %s: %s", url, exc)
            missing.append(url)
    return chosen, missing


def build_dem(bbox, *, tiles: str, out: str | os.PathLike, dst_crs=None) -> Path:
    """Assemble a study-area DEM from tiles into one Cloud-Optimised GeoTIFF.

    Parameters
    ----------
    bbox
        ``(west, south, east, north)`` in degrees (or the string ``"W,S,E,N"``).
    tiles
        Either a folder of tiles — SRTM ``.hgt`` / ``.hgt.zip`` (named like ``N35E044``) and/or
        GeoTIFFs (any names, any CRS; their bounds decide which are used) — or a template
        with ``{lat}``/``{lon}`` placeholders (see :func:`tile_urls`) naming one 1° tile per
        cell, as an ``http(s)://`` URL (read with GDAL's ``/vsicurl/``: only the needed window
        of each COG is fetched) or a local path.
    out
        The output GeoTIFF (COG layout, DEFLATE, internal tiles and overviews).
    dst_crs
        Reproject to this CRS (bilinear, native spacing as in :func:`read_dem`). Default: the
        tiles' CRS.

    Returns
    -------
    Path
        ``out``, written atomically.

    Missing 1° tiles are reported with a warning and left as nodata (sea, or tiles not
    supplied); when no tile covers the bbox at all, :class:`~gapmap.errors.InputError`.

    Examples
    --------
    >>> build_dem("43.5,34.5,45.5,36.5", tiles="srtm/", out="geodata/dem.tif")  # doctest: +SKIP
    PosixPath('geodata/dem.tif')
    """
    box = _parse_bbox(bbox)
    # only the named tiles are wanted: no directory listings over HTTP
    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"):
        return _build_dem(box, tiles, Path(out), dst_crs)


def _build_dem(box, tiles: str, target: Path, dst_crs) -> Path:
    if "{" in tiles:
        names, missing = _remote_tiles(tiles, box)
        where = tiles
    else:
        folder = Path(tiles)
        if not folder.is_dir():
            raise InputError(tiles, None, "tile folder not found",
                             "give a folder of .hgt/.tif tiles or a URL template with {lat}/{lon}")
        names, missing = _local_tiles(folder, box)
        where = str(folder)
    if not names:
        raise InputError(where, None, f"no tile covers the bounding box {box}",
                         "check --bbox and the tile folder or template")
    with _open_tile(names[0], names[0]) as first:  # refuse a huge mosaic before any notice
        _check_mosaic_memory(first, box, where)
    if missing and missing[0].endswith("of the bounding box"):
        warnings.warn(f"the GeoTIFF tiles leave {missing[0]} uncovered: left as nodata",
                      stacklevel=3)
    elif missing:
        warnings.warn(f"{len(missing)} DEM tile(s) missing, left as nodata: "
                      f"{', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}",
                      stacklevel=3)
    with contextlib.ExitStack() as stack:
        srcs = [stack.enter_context(_open_tile(nm, nm)) for nm in names]
        arr, transform, crs, nodata = _mosaic(srcs, box)
    if not _valid(arr, nodata).any():
        raise InputError(where, None, f"the tiles hold no data inside {box}",
                         "check --bbox against the tiles' coverage")
    if dst_crs is not None:
        fl = np.where(_valid(arr, nodata), arr, np.nan).astype(np.float32)
        dem = Dem(fl, transform, crs, source=where)
        res = (_geographic_cell_m(transform, arr.shape) if dem.crs.is_geographic
               else float(np.mean(dem.res_xy)))
        dem = _reproject(dem, _crs(dst_crs, "--crs"), res)
        arr, transform, crs, nodata = dem.array, dem.transform, dem.crs, float("nan")
    _write_cog(target, arr, transform, crs, nodata)
    log.info("DEM %s: %d×%d cells from %d tile(s)", target, arr.shape[1], arr.shape[0], len(names))
    return target


def _mosaic(srcs: list, box) -> tuple[np.ndarray, Affine, CRS, float | int]:
    """Merge the tiles on the first tile's grid, clipped to bbox (snapped outwards to cells)."""
    first = srcs[0]
    _check_mosaic_memory(first, box, first.name)
    crs = first.crs
    # tiles in another CRS are warped onto the first one's on the fly
    vrts = [WarpedVRT(t, crs=crs, resampling=Resampling.bilinear) for t in srcs if t.crs != crs]
    it = iter(vrts)
    srcs = [t if t.crs == crs else next(it) for t in srcs]
    dtype = np.dtype(first.dtypes[0])
    nodata = first.nodata
    if nodata is None:
        nodata = float("nan") if dtype.kind == "f" else (-32768 if dtype == np.int16 else 0)
    w, s, e, n = rasterio.warp.transform_bounds("EPSG:4326", crs, *box, densify_pts=21)
    # snap to the first tile's pixel grid so that no cell is shifted by the merge
    dx, dy = first.res
    x0, y0 = first.transform.c, first.transform.f
    w = x0 + math.floor(round((w - x0) / dx, 6)) * dx
    e = x0 + math.ceil(round((e - x0) / dx, 6)) * dx
    n = y0 - math.floor(round((y0 - n) / dy, 6)) * dy
    s = y0 - math.ceil(round((y0 - s) / dy, 6)) * dy
    with _quiet_affine():
        arr, transform = rasterio.merge.merge(srcs, bounds=(w, s, e, n), res=(dx, dy),
                                              nodata=nodata, dtype=dtype.name)
    for v in vrts:
        v.close()
    return arr[0], transform, crs, nodata


def _valid(arr: np.ndarray, nodata) -> np.ndarray:
    if arr.dtype.kind == "f":
        ok = np.isfinite(arr)
        return ok if math.isnan(float(nodata)) else ok & (arr != nodata)
    return arr != nodata


def _write_cog(target: Path, arr: np.ndarray, transform: Affine, crs: CRS, nodata) -> None:
    """Write a COG (GDAL COG driver: DEFLATE, 512-pixel tiles, overviews) atomically."""
    profile = {"driver": "GTiff", "height": arr.shape[0], "width": arr.shape[1], "count": 1,
               "dtype": arr.dtype.name, "crs": crs, "transform": transform, "nodata": nodata}
    predictor = 3 if arr.dtype.kind == "f" else 2
    with MemoryFile() as mem:
        with mem.open(**profile) as tmp:
            tmp.write(arr, 1)
        with mem.open() as tmp, atomic_path(target) as dst:
            rasterio.shutil.copy(tmp, dst, driver="COG", compress="DEFLATE", predictor=predictor,
                                 blocksize=512, overviews="AUTO", overview_resampling="average",
                                 bigtiff="IF_SAFER")
