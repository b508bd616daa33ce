"""Tiles: a grid cut into tiles with halos, memory budgets, and COGs written block by block.

The raster engines (coverage, terrain derivatives) work on one tile at a time: a tile is a
window of the output grid; the input they read for it is that window grown by the halo its
computation needs (one cell for a 3×3 kernel, a post's range for a viewshed), read from the
file with a windowed read. Peak memory then grows with the tile and its halo, never with the
DEM, and the tiles can be spread over Dask workers by :func:`gapmap.engine.run_tasks`
(:func:`map_tiles`).

Outputs are written tile by tile into a tiled GeoTIFF (rasterio windowed writes) and then
copied into a Cloud-Optimised GeoTIFF by GDAL's COG driver, which streams block by block; both
happen inside :func:`gapmap.io.atomic_path`, so a run that fails (a worker lost for good, an
interrupt) leaves no partial output.

Each engine states its memory formula in ``docs/scale.md`` and checks it with
:func:`check_memory` against ``--max-memory-gb`` (default: the machine's memory,
:func:`machine_memory_bytes`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError

__all__ = [
    "Tile",
    "tile_grid",
    "machine_memory_bytes",
    "memory_limit_bytes",
    "check_memory",
    "pick_tile_cells",
    "read_window",
    "map_tiles",
    "cog_writer",
    "TILE_CHOICES",
    "BASE_BYTES",
    "GDAL_CACHE_BYTES",
]

log = logging.getLogger(__name__)

#: Tile sizes tried, largest first: multiples of the COG's 512-cell blocks, so every tile
#: writes whole blocks.
TILE_CHOICES = (2048, 1024, 512)

#: Resident memory of a Python process with gapmap's libraries loaded (numpy, numba, GDAL,
#: pyproj, geopandas) before any grid: measured 290–330 MB on Linux x86-64; rounded up.
BASE_BYTES = 400 * 2**20

#: GDAL's block cache during tiled reads and writes (its default, 5% of the machine's memory,
#: would fill with DEM blocks read once and dominate the peak).
GDAL_CACHE_BYTES = 64 * 2**20

GB = 1e9  # --max-memory-gb is in decimal gigabytes, as `free -g` is not; said so in the docs


@dataclass(frozen=True)
class Tile:
    """A window of a grid: rows ``row0 … row0 + rows − 1``, columns ``col0 … col0 + cols − 1``.

    Examples
    --------
    >>> t = Tile(1, 0, 512, 512, 88)
    >>> t.bounds
    (0, 512, 512, 600)
    >>> t.grown(10, 20, (512, 600))
    (0, 492, 512, 600)
    """

    index: int
    row0: int
    col0: int
    rows: int
    cols: int

    @property
    def bounds(self) -> tuple[int, int, int, int]:
        """(row0, col0, row1, col1), the last two exclusive."""
        return self.row0, self.col0, self.row0 + self.rows, self.col0 + self.cols

    def grown(self, halo_rows: int, halo_cols: int, shape: tuple[int, int]
              ) -> tuple[int, int, int, int]:
        """The tile grown by a halo, clipped to a grid of ``shape``: (row0, col0, row1, col1)."""
        r0, c0, r1, c1 = self.bounds
        return (max(r0 - halo_rows, 0), max(c0 - halo_cols, 0),
                min(r1 + halo_rows, shape[0]), min(c1 + halo_cols, shape[1]))


def tile_grid(shape: tuple[int, int], tile_cells: int) -> tuple[Tile, ...]:
    """Cut a grid of ``shape`` (rows, cols) into tiles of ``tile_cells`` × ``tile_cells``
    (smaller on the last row and column), row by row.

    Examples
    --------
    >>> [t.bounds for t in tile_grid((3, 5), 2)]
    [(0, 0, 2, 2), (0, 2, 2, 4), (0, 4, 2, 5), (2, 0, 3, 2), (2, 2, 3, 4), (2, 4, 3, 5)]
    """
    if int(tile_cells) < 1:
        raise InputError("--tile-cells", None, f"must be at least 1, got {tile_cells}",
                         "give a tile size such as 2048")
    n = int(tile_cells)
    h, w = int(shape[0]), int(shape[1])
    out = []
    for r in range(0, h, n):
        for c in range(0, w, n):
            out.append(Tile(len(out), r, c, min(n, h - r), min(n, w - c)))
    return tuple(out)


# --------------------------------------------------------------------------- memory


def machine_memory_bytes() -> int:
    """The machine's memory: ``MemTotal`` of ``/proc/meminfo``, else ``os.sysconf``.

    >>> machine_memory_bytes() > 2**28
    True
    """
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # not POSIX: assume a 16 GiB machine
        return 16 * 2**30


def memory_limit_bytes(max_memory_gb: float | None) -> int:
    """``--max-memory-gb`` in bytes; ``None`` means the machine's memory.

    >>> memory_limit_bytes(1.5)
    1500000000
    """
    if max_memory_gb is None:
        return machine_memory_bytes()
    if not (math.isfinite(max_memory_gb) and max_memory_gb > 0):
        raise InputError("--max-memory-gb", None, f"must be a positive number, got "
                         f"{max_memory_gb!r}", "give the memory the run may use, e.g. 8")
    return int(max_memory_gb * GB)


def check_memory(need_bytes: float, limit_bytes: float, *, what: str, formula: str,
                 fits: str) -> None:
    """Refuse a run whose memory formula gives more than the limit (one-line InputError).

    Examples
    --------
    >>> check_memory(1e9, 2e9, what="coverage", formula="f", fits="x")
    >>> check_memory(3e9, 2e9, what="coverage", formula="400 MB + 4·(T+2H)²", fits="give x")
    Traceback (most recent call last):
    ...
    gapmap.errors.InputError: --max-memory-gb: coverage needs about 3.00 GB (400 MB + 4·(T+2H)²), more than the 2.00 GB allowed — give x
    """
    if need_bytes > limit_bytes:
        raise InputError("--max-memory-gb", None, f"{what} needs about {need_bytes / GB:.2f} GB "
                         f"({formula}), more than the {limit_bytes / GB:.2f} GB allowed", fits)


def pick_tile_cells(need: Callable[[int], float], limit_bytes: float,
                    tile_cells: int | None) -> int | None:
    """The largest tile size whose memory ``need(T)`` fits the limit (``tile_cells`` if given
    and it fits); ``None`` when none fits.

    >>> pick_tile_cells(lambda t: t * t, 1100 ** 2, None)
    1024
    >>> pick_tile_cells(lambda t: t * t, 100, None) is None
    True
    """
    choices = (int(tile_cells),) if tile_cells is not None else TILE_CHOICES
    for t in choices:
        if need(t) <= limit_bytes:
            return t
    return None


# --------------------------------------------------------------------------- reading


def read_window(src, r0: int, c0: int, r1: int, c1: int) -> np.ndarray:
    """Rows ``r0:r1`` and columns ``c0:c1`` of band 1 of ``src`` (a path or an open rasterio
    dataset) as float32, nodata and non-finite values as NaN: a windowed read, the rest of the
    file untouched. Peak memory: 5 bytes a cell (the cells and their mask).

    >>> read_window("geodata/dem.tif", 0, 0, 2, 3).shape  # doctest: +SKIP
    (2, 3)
    """
    import rasterio
    import rasterio.errors
    from rasterio.windows import Window

    with contextlib.ExitStack() as stack:
        stack.enter_context(rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES // 2**20))
        if isinstance(src, (str, os.PathLike)):
            src = stack.enter_context(rasterio.open(src))
        try:
            data = src.read(1, window=Window(c0, r0, c1 - c0, r1 - r0), masked=True,
                            out_dtype=np.float32)
        except rasterio.errors.RasterioError as exc:
            raise InputError(src.name, None, "cannot read the DEM's cells (truncated or "
                             f"damaged file?): {str(exc).splitlines()[0]}",
                             "download or rebuild the DEM (gapmap dem)") from exc
    arr = np.asarray(data.data, dtype=np.float32)
    arr[np.ma.getmaskarray(data)] = np.nan
    del data
    arr[~np.isfinite(arr)] = np.nan
    return arr


# --------------------------------------------------------------------------- running


def map_tiles(fn: Callable[[Any, Tile], Any], tiles: Sequence[Tile], *, shared: Any,
              workers: int | None = 1, scheduler: str | None = None, batch: int = 1,
              progress: Callable[[int, int], None] | None = None
              ) -> Iterator[tuple[Tile, Any]]:
    """Yield ``(tile, fn(shared, tile))`` in tile order, ``batch`` tiles at a time.

    Each batch runs through :func:`gapmap.engine.run_tasks` (in this process, on a local
    cluster or on ``scheduler``), so at most ``batch`` results are held here at once. A worker
    lost under a tile is replaced and the tile runs again; a tile that keeps killing workers
    raises :class:`~gapmap.errors.GapmapError`.

    >>> [r for _, r in map_tiles(lambda s, t: t.rows * s, tile_grid((3, 3), 2), shared=10)]
    [20, 20, 10, 10]
    """
    from .engine import run_tasks

    tiles = list(tiles)
    done = 0
    step = max(int(batch), 1)
    for start in range(0, len(tiles), step):
        part = tiles[start:start + step]
        results = run_tasks(fn, part, shared=shared, workers=workers, scheduler=scheduler)
        for tile, res in zip(part, results):
            yield tile, res
            done += 1
            if progress is not None:
                progress(done, len(tiles))
        del results


# --------------------------------------------------------------------------- writing


@contextlib.contextmanager
def cog_writer(path: str | os.PathLike, *, height: int, width: int, count: int, dtype: str,
               transform, crs, nodata=None, descriptions: Sequence[str] = (),
               atomic: bool = True, level: int | None = None
               ) -> Iterator[Callable[[Tile, np.ndarray], None]]:
    """Yield ``write(tile, array)`` writing ``array`` (bands × rows × cols, or rows × cols)
    at ``tile``'s window; on leaving, the file becomes a COG at ``path``.

    The tiles go into a tiled GeoTIFF beside the target (ZSTD level 1: the cheapest to write
    and to read back), which GDAL's COG driver then copies (DEFLATE at ``level``, GDAL's
    default 6 when ``None``; 512-cell blocks, overviews), both block by block, the copy
    compressing on all cores. With ``atomic``
    the COG appears at ``path`` only if everything succeeded (:func:`gapmap.io.atomic_path`);
    without it (inside :func:`gapmap.io.atomic_dir`'s staging folder) it is written in place.

    Examples
    --------
    >>> with cog_writer("out.tif", height=600, width=600, count=1, dtype="uint8",
    ...                 transform=t, crs=crs) as write:  # doctest: +SKIP
    ...     for tile in tile_grid((600, 600), 512):
    ...         write(tile, np.ones((tile.rows, tile.cols), np.uint8))
    """
    import rasterio
    import rasterio.shutil
    from rasterio.windows import Window

    from .io import atomic_path

    target = Path(path)
    ctx = atomic_path(target) if atomic else contextlib.nullcontext(target)
    predictor = 3 if np.dtype(dtype).kind == "f" else 2
    profile = dict(driver="GTiff", height=height, width=width, count=count, dtype=dtype,
                   transform=transform, crs=crs, nodata=nodata, tiled=True, blockxsize=512,
                   blockysize=512, compress="zstd", zstd_level=1, predictor=predictor,
                   BIGTIFF="IF_SAFER")
    with ctx as out, rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES // 2**20):
        stage = out.with_name(out.name + ".stage.tif")
        try:
            with rasterio.open(stage, "w", **profile) as dst:
                for i, text in enumerate(descriptions, start=1):
                    dst.set_band_description(i, text)

                def write(tile: Tile, arr: np.ndarray) -> None:
                    a = arr if arr.ndim == 3 else arr[None]
                    dst.write(a, window=Window(tile.col0, tile.row0, tile.cols, tile.rows))

                yield write
            with rasterio.open(stage) as src:
                extra = {} if level is None else {"level": int(level)}
                rasterio.shutil.copy(src, out, driver="COG", compress="DEFLATE",
                                     predictor=predictor, blocksize=512, overviews="AUTO",
                                     overview_resampling="nearest", bigtiff="IF_SAFER",
                                     num_threads="ALL_CPUS", **extra)
        finally:
            stage.unlink(missing_ok=True)
