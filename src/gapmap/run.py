"""One run: every input read once, every product computed once, on first use.

A :class:`Run` is built from a :class:`gapmap.scenario.Scenario` (``Run(scenario)``) or from
layers (:meth:`Run.from_layers`). Each product is a property computed the first time it is
asked for and kept:

.. code-block:: text

    layers ─► crs ─► inputs ─► base analysis (seam, coverage, corridors, gap)
                 │                 │
                 └─► dem ──────────┼─► crossings (terrain fields + routes, one search)
                      │            ▼
                      │        analysis (+ roads, terrain, incidents) ─► placement(k)
                      └─► hillshade          │
              incidents (read once) ─► incident_metrics ─► hotspots, monthly

Who computes what: the run calls the engines (:mod:`gapmap.corridors`, :mod:`gapmap.routes`,
:mod:`gapmap.incidents`, :mod:`gapmap.hotspots`, :mod:`gapmap.placement`); the renderers
(:mod:`gapmap.maps`, :mod:`gapmap.figures`, :mod:`gapmap.report`) only draw what it hands
them. A run with ``profile`` records the seconds each product took (:attr:`Run.timings`).

The analysis CRS is, in this order: the one pinned (``crs=`` / ``Settings.crs``); the DEM's own
projected CRS when it is true to scale within 0.1% over the study area (so nothing is
reprojected); else the metric CRS gapmap chooses for the layers (:func:`gapmap.crs.metric_crs`).
A projected DEM stays on its own grid even when the analysis CRS differs (resampling would
change elevations and lines of sight; the engines bring vectors to the DEM's CRS); a lon/lat
DEM is reprojected once, to the analysis CRS.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable
from functools import cached_property
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Proj, Transformer

from .corridors import (TERRAIN_FIELDS, Analysis, Layers, analyze_inputs, prepare_inputs,
                        read_layers, with_roads, with_terrain)
from .crs import metric_crs
from .errors import InputError
from .resolution import check_resolution
from .settings import Settings, Side

__all__ = ["Run", "Crossings", "analysis_crs", "crossing_groups", "shade", "MAX_SCALE_ERROR"]

log = logging.getLogger(__name__)

#: A DEM's own CRS becomes the analysis CRS only when its scale error over the study area is
#: at most this (the project's accuracy standard for lengths).
MAX_SCALE_ERROR = 1e-3

#: The hillshade handed to the map is at most this many cells across (it is drawn ~2000 px
#: wide, so a finer grid would only cost time and page size).
HILLSHADE_MAX_CELLS = 2000


@dataclasses.dataclass(frozen=True)
class Crossings:
    """Terrain fields and crossing routes of the corridors, from one search.

    ``fields`` is indexed by ``corridor_id`` (``slope_mean_deg``, ``tri_mean_m``,
    ``crossing_hours``); ``routes`` holds the least-time paths (``corridor_id``, ``km``, …).
    """

    fields: pd.DataFrame
    routes: gpd.GeoDataFrame


def _scale_error(crs: CRS, lonlat_bounds: tuple[float, float, float, float]) -> float:
    """Largest |scale − 1| of a projected CRS over a 5 × 5 grid of the bounds."""
    w, s, e, n = lonlat_bounds
    lon, lat = np.meshgrid(np.linspace(w, e, 5), np.linspace(s, n, 5))
    f = Proj(crs).get_factors(lon.ravel(), lat.ravel())
    err = np.concatenate([np.abs(np.asarray(f.meridional_scale) - 1),
                          np.abs(np.asarray(f.parallel_scale) - 1)])
    return float(np.nanmax(err)) if np.isfinite(err).any() else math.inf


def _is_metric(crs: CRS | None) -> bool:
    if crs is None or not crs.is_projected or not crs.axis_info:
        return False
    return crs.axis_info[0].unit_name in ("metre", "meter")


def analysis_crs(layers: Layers, *, pinned: Any = None, dem_crs: Any = None) -> CRS:
    """The analysis CRS of a run (see the module docstring for the rule).

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> z = gpd.GeoDataFrame({"force": ["a"]}, crs=4326, geometry=[shapely.box(44, 35, 45, 36)])
    >>> analysis_crs(Layers(z)).to_epsg()
    32638
    >>> analysis_crs(Layers(z), dem_crs="EPSG:32638").to_epsg()
    32638
    >>> analysis_crs(Layers(z), dem_crs="EPSG:3857").to_epsg()  # 22% off at 35° N: not used
    32638
    """
    frames = (layers.study_area,) if layers.study_area is not None else (layers.zones,
                                                                          layers.posts)
    if pinned is not None:
        # Checked against the data: a CRS that distorts distances over it is refused.
        return metric_crs(*frames, crs=pinned)
    if dem_crs is not None:
        dcrs = CRS.from_user_input(dem_crs)
        if _is_metric(dcrs):
            b = [f.to_crs(4326).total_bounds for f in frames if f is not None and len(f)]
            if b:
                b = np.array(b)
                box = (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
                err = _scale_error(dcrs, box)
                if err <= MAX_SCALE_ERROR:
                    log.info("analysis CRS: %s, the DEM's own (scale error %.2g%% over the "
                             "study area): nothing is reprojected", dcrs.name, 100 * err)
                    return dcrs
                log.info("the DEM's CRS %s is off scale by %.2g%% over the study area; "
                         "the DEM stays on its own grid", dcrs.name, 100 * err)
    return metric_crs(*frames)


def _crop(dem, bounds, bounds_crs, margin_cells: int = 3):
    """The part of a Dem covering ``bounds`` (in ``bounds_crs``) plus a margin of cells, as a
    view of the same cells (no copy, no resampling)."""
    import rasterio.warp
    import rasterio.windows
    from affine import Affine

    from .terrain import Dem

    b = rasterio.warp.transform_bounds(CRS.from_user_input(bounds_crs), dem.crs, *bounds,
                                       densify_pts=21)
    win = rasterio.windows.from_bounds(*b, transform=dem.transform)
    h, w = dem.shape
    c0 = max(math.floor(win.col_off) - margin_cells, 0)
    r0 = max(math.floor(win.row_off) - margin_cells, 0)
    c1 = min(math.ceil(win.col_off + win.width) + margin_cells, w)
    r1 = min(math.ceil(win.row_off + win.height) + margin_cells, h)
    if c1 <= c0 or r1 <= r0:
        raise InputError(dem.source, "bounds", "the DEM does not cover the study area",
                         "give a DEM that covers the area, e.g. build one with gapmap dem")
    return Dem(dem.array[r0:r1, c0:c1], dem.transform @ Affine.translation(c0, r0), dem.crs,
               source=dem.source)


def _box_cells(dem, box) -> int:
    """Cells of ``dem``'s window over ``box`` (its CRS), as the crossing search reads it."""
    r, c = dem.window(box).shape
    return int(r) * int(c)


def crossing_groups(analysis, dem, limit_bytes: float, *, penalty: bool = False,
                    window_km: float | None = None, one_window: bool = True
                    ) -> list[list[int]]:
    """Corridors grouped into search windows that fit ``limit_bytes`` by the crossing
    search's formula (:func:`gapmap.routes.crossing_memory_bytes`, ``docs/scale.md``).

    With ``one_window``, one window over all corridors when it fits. Else (or without
    ``one_window``) each corridor starts as its own window and the two whose merged box saves
    the most cells are merged, while the merged box fits and holds no more cells than the two
    boxes apart (so no ground is searched more often than corridor by corridor, and ground
    shared by overlapping windows is searched once). The searches' answer does not depend on
    the grouping (:func:`gapmap.routes.corridor_crossings`). Refused in one line, with the
    formula's figure and the largest window that would fit, when one corridor's own window
    does not fit.

    Examples
    --------
    >>> groups = crossing_groups(analysis, dem, 0.5e9)  # doctest: +SKIP
    >>> groups  # doctest: +SKIP
    [[0, 1, 2], [3, 4]]
    """
    from .routes import crossing_memory_bytes

    n = len(analysis.corridors)
    if n == 0:
        return []
    boxes = _corridor_boxes(analysis, dem, window_km)

    def need(b) -> float:
        r, c = dem.window(b).shape
        return crossing_memory_bytes(r, c, penalty=penalty)

    whole = (min(b[0] for b in boxes), min(b[1] for b in boxes),
             max(b[2] for b in boxes), max(b[3] for b in boxes))
    one = need(whole)
    if one_window and one <= limit_bytes:
        r, c = dem.window(whole).shape
        log.info("crossings: one window of %d × %d cells for %d corridors (about %.2f GB by "
                 "the formula)", r, c, n, one / 1e9)
        return [list(range(n))]
    own = [need(b) for b in boxes]
    _refuse_largest(analysis, dem, boxes, own, limit_bytes, penalty)
    groups, merged = _merge_boxes(dem, boxes, lambda b: need(b) <= limit_bytes)
    log.info("crossings: %d windows for %d corridors (one window would need about %.2f GB, "
             "%.2f GB allowed; largest %.2f GB)", len(groups), n, one / 1e9,
             limit_bytes / 1e9, max(need(b) for b in merged) / 1e9)
    return groups


def _corridor_boxes(analysis, dem, window_km: float | None) -> list[tuple]:
    """Each corridor's crossing-search window as a box in the DEM's CRS, clipped to the DEM's
    bounds."""
    from .routes import crossing_windows

    windows = crossing_windows(analysis, window_km)
    if dem.crs is not None and not CRS.from_user_input(dem.crs).equals(analysis.crs):
        windows = gpd.GeoSeries(windows, crs=analysis.crs).to_crs(dem.crs).values
    db = tuple(dem.bounds)
    return [(max(b[0], db[0]), max(b[1], db[1]), min(b[2], db[2]), min(b[3], db[3]))
            for b in map(tuple, shapely.bounds(np.asarray(windows, dtype=object)))]


def _refuse_largest(analysis, dem, boxes: list, own: list, limit_bytes: float,
                    penalty: bool) -> None:
    """Refuse in one line when the corridor with the largest window cannot fit alone."""
    from .routes import crossing_memory_bytes
    from .tiles import BASE_BYTES, check_memory

    big = int(np.argmax(own))
    if own[big] <= limit_bytes:
        return
    corr = analysis.corridors
    ids = (corr["corridor_id"].astype(str).tolist() if "corridor_id" in corr.columns
           else [str(i) for i in range(len(corr))])
    r, c = dem.window(boxes[big]).shape
    per = (crossing_memory_bytes(1, 1, penalty=penalty) - BASE_BYTES) / 49.0
    fit_cells = max(int((limit_bytes - BASE_BYTES) / per), 0)
    check_memory(own[big], limit_bytes,
                 what=f"the crossing search of corridor {ids[big]} ({r:,}×{c:,} cells, "
                 "its own window)",
                 formula=f"400 MB + {per:g} bytes a cell of its window",
                 fits=f"a window of about {fit_cells:,} cells would fit; allow "
                 f"--max-memory-gb {math.ceil(own[big] / 1e8) / 10:g}, or give a "
                 "coarser DEM")


def _overlap(a, b) -> bool:
    return not (a[0] > b[2] or b[0] > a[2] or a[1] > b[3] or b[1] > a[3])


def _merge_boxes(dem, boxes: list, fits) -> tuple[list[list[int]], list[tuple]]:
    """Greedy merging of overlapping boxes: each step merges the two groups whose union saves
    the most cells of ``dem`` (never a merge that would search more cells than the two apart,
    nor one whose union does not ``fits``). Boxes apart are never merged: that only adds the
    ground between them. Returns the groups (sorted indices) and each group's box."""
    n = len(boxes)
    groups: list[list[int] | None] = [[i] for i in range(n)]
    box: list[tuple | None] = list(boxes)
    cells = np.array([_box_cells(dem, b) for b in boxes], float)
    gain = np.full((n, n), -np.inf)
    union: dict[tuple[int, int], tuple] = {}

    def score(i: int, j: int) -> None:
        a, b = box[i], box[j]
        if not _overlap(a, b):
            return
        u = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
        union[i, j] = u
        if u[2] <= u[0] or u[3] <= u[1]:
            return
        saved = cells[i] + cells[j] - _box_cells(dem, u)
        if saved >= 0 and fits(u):
            gain[i, j] = saved

    for i in range(n):
        for j in range(i + 1, n):
            score(i, j)
    while True:
        i, j = divmod(int(np.argmax(gain)), n)
        if not np.isfinite(gain[i, j]):
            break
        groups[i] = groups[i] + groups[j]
        groups[j], box[j], box[i] = None, None, union[i, j]
        cells[i] = _box_cells(dem, box[i])
        gain[[i, j], :] = -np.inf
        gain[:, [i, j]] = -np.inf
        for m in range(n):
            if m != i and groups[m] is not None:
                score(min(i, m), max(i, m))
    kept = [k for k in range(n) if groups[k] is not None]
    return [sorted(groups[k]) for k in kept], [box[k] for k in kept]


def shade(dem):
    """Hillshade of an elevation :class:`~gapmap.terrain.Dem` as a Dem of shade values 1–255
    (NaN where gdaldem gives 0: edges and no data), the DEM's source kept: what
    :attr:`Run.hillshade` hands the map.

    Examples
    --------
    >>> import numpy as np
    >>> from affine import Affine
    >>> from gapmap.terrain import Dem
    >>> flat = Dem(np.zeros((3, 3), np.float32), Affine(10, 0, 0, 0, -10, 30), 32638, "x.tif")
    >>> s = shade(flat)
    >>> float(s.array[1, 1]), bool(np.isnan(s.array[0, 0])), s.source
    (181.0, True, 'x.tif')
    """
    from .terrain import Dem, hillshade

    sh = hillshade(dem).astype(np.float32)
    sh[sh == 0] = np.nan
    return Dem(sh, dem.transform, dem.crs, dem.source)


def _coarsen(dem, max_cells: int):
    """Block means of a Dem so that it is at most ``max_cells`` across (NaN-aware)."""
    from affine import Affine

    from .terrain import Dem

    f = max(int(math.ceil(max(dem.shape) / max_cells)), 1)
    if f == 1:
        return dem
    h, w = (dem.shape[0] // f) * f, (dem.shape[1] // f) * f
    # One strided slice per place in the block, f² of them: on the sample's 3,884 × 4,596
    # cells (f = 3) 0.18 s, against 0.8 s for a float64 copy summed over axes (1, 3).
    total = np.zeros((h // f, w // f))
    count = np.zeros((h // f, w // f), np.int64)
    for i in range(f):
        for j in range(f):
            part = dem.array[i:h:f, j:w:f]
            ok = np.isfinite(part)
            total += np.where(ok, part, 0.0)
            count += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        arr = np.where(count > 0, total / count, np.nan).astype(np.float32)
    return Dem(arr, dem.transform @ Affine.scale(f), dem.crs, source=dem.source)


def _file_crs_and_read(path, lonlat_box, target_crs: Callable[[], CRS]):
    """Open a DEM file once and read its window for ``lonlat_box``: on its own grid when the
    file is projected in metres, else reprojected (in the same open) to ``target_crs()``.

    Returns the :class:`gapmap.terrain.Dem` and whether it was reprojected.
    """
    import rasterio
    import rasterio.warp
    import rasterio.windows
    from affine import Affine

    from .terrain import Dem, as_dem, read_dem

    try:
        # Decoding on every core: 0.07 s against 0.13-0.23 s for the sample's deflate DEM.
        src_cm = rasterio.open(path, num_threads="ALL_CPUS")
    except (rasterio.errors.RasterioIOError, OSError):
        return read_dem(path), False  # raises the InputError that names the problem
    with src_cm as src:
        if src.crs is None or not _is_metric(CRS.from_user_input(src.crs)):
            if src.crs is None:
                raise InputError(path, "crs", "the DEM has no coordinate reference system",
                                 "set it with gdal_edit.py -a_srs EPSG:XXXX")
            # A lon/lat DEM: reprojected once, from the dataset already open.
            return as_dem(src, bounds=lonlat_box, bounds_crs="EPSG:4326",
                          crs=target_crs()), True
        b = rasterio.warp.transform_bounds("EPSG:4326", src.crs, *lonlat_box, densify_pts=21)
        win = rasterio.windows.from_bounds(*b, transform=src.transform)
        c0, r0 = max(math.floor(win.col_off), 0), max(math.floor(win.row_off), 0)
        c1 = min(math.ceil(win.col_off + win.width), src.width)
        r1 = min(math.ceil(win.row_off + win.height), src.height)
        if c1 <= c0 or r1 <= r0:
            raise InputError(path, "bounds", "the DEM does not cover the study area "
                             f"(DEM bounds {tuple(round(v, 4) for v in src.bounds)} in its CRS)",
                             "give a DEM that covers the area, e.g. build one with gapmap dem")
        win = rasterio.windows.Window(c0, r0, c1 - c0, r1 - r0)
        data = src.read(1, window=win, masked=True, out_dtype=np.float32)
        transform = src.transform @ Affine.translation(c0, r0)
        crs = src.crs
    arr = np.ma.filled(data, np.nan).astype(np.float32)
    arr[~np.isfinite(arr)] = np.nan
    if np.isnan(arr).all():
        raise InputError(path, None, "the DEM holds only nodata in the area",
                         "check the DEM's extent")
    log.info("DEM %s: %d × %d cells of its own grid (%s), read once", path, *arr.shape,
             crs.to_string())
    return Dem(arr, transform, crs, source=str(path)), False


class Run:
    """The products of one scenario, each computed once on first use.

    Parameters
    ----------
    scenario
        A :class:`gapmap.scenario.Scenario`.
    crs
        Pin the analysis CRS (wins over ``Settings.crs``); pass the same one to several runs
        (dated layers, Monte Carlo draws) so that their geometry is comparable.
    progress
        Called with the name of each stage as it starts.
    profile
        Log the seconds of each stage at INFO level (always kept in :attr:`timings`).
    hex_km
        Hexagon spacing of the Gi* hot spots.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> from gapmap import Run, parse_side
    >>> zones = gpd.GeoDataFrame({"force": ["a", "b"]}, crs=32638,
    ...     geometry=[shapely.box(400e3, 3900e3, 410e3, 4000e3),
    ...               shapely.box(430e3, 3900e3, 440e3, 4000e3)])
    >>> run = Run.from_layers(zones, parse_side("A=a"), parse_side("B=b"))
    >>> run.crs.to_epsg(), run.analysis.summary["corridors"]
    (32638, 1)
    >>> run.analysis is run.analysis  # computed once
    True
    """

    def __init__(self, scenario, *, crs: Any = None, progress: Callable[[str], None] | None = None,
                 profile: bool = False, hex_km: float = 10.0, workers: int | None = 1,
                 scheduler: str | None = None, max_memory_gb: float | None = None) -> None:
        self._setup(
            zones=scenario.zones, side_a=scenario.side_a, side_b=scenario.side_b,
            zones_layer=scenario.zones_layer, posts=scenario.posts,
            posts_layer=scenario.posts_layer, study_area=scenario.study_area,
            study_area_layer=scenario.study_area_layer, force_field=scenario.force_field,
            dem=scenario.dem, roads=scenario.roads, incidents=scenario.incidents,
            settings=scenario.settings, visibility=scenario.visibility,
            margin_km=scenario.margin_km, inputs=scenario.inputs(), crs=crs,
            rivers=scenario.rivers, lakes=scenario.lakes,
            progress=progress, profile=profile, hex_km=hex_km, places=scenario.places,
            places_name_field=scenario.places_name_field)
        self.scenario = scenario
        self._sources_table = dict(scenario.sources)
        # Dask for the incidents when there are more than one partition's worth
        # (gapmap.partitions.PARTITION_EVENTS); the other products run in this process.
        self.workers, self.scheduler = workers, scheduler
        self._set_memory(max_memory_gb)

    def _set_memory(self, max_memory_gb: float | None) -> None:
        """``max_memory_gb`` for the crossing searches, checked now (a bad value stops the run
        before anything is read)."""
        from .tiles import memory_limit_bytes

        memory_limit_bytes(max_memory_gb)
        self.max_memory_gb = max_memory_gb

    def _setup(self, *, zones, side_a: Side, side_b: Side, settings: Settings, zones_layer=None,
               posts=None, posts_layer=None, study_area=None, study_area_layer=None,
               force_field: str = "force", dem=None, roads=None, incidents=None,
               visibility: bool = False, margin_km: float = 5.0, sample_m=None,
               inputs: dict | None = None, crs: Any = None, progress=None,
               profile: bool = False, hex_km: float = 10.0, places=None,
               places_name_field: str | None = None, rivers=None, lakes=None) -> None:
        self._src = {"zones": zones, "zones_layer": zones_layer, "posts": posts,
                     "posts_layer": posts_layer, "study_area": study_area,
                     "study_area_layer": study_area_layer, "force_field": force_field,
                     "dem": dem, "roads": roads, "incidents": incidents, "places": places,
                     "places_name_field": places_name_field, "rivers": rivers, "lakes": lakes}
        self.scenario = None
        self.side_a, self.side_b, self.settings = side_a, side_b, settings
        self.visibility = bool(visibility)
        self.margin_km = float(margin_km)
        self.sample_m = sample_m
        self.inputs = dict(inputs or {})
        self._pinned = crs if crs is not None else settings.crs
        self._step = progress or (lambda name: None)
        self.profile = profile
        self.hex_km = float(hex_km)
        self.timings: dict[str, float] = {}
        self.workers, self.scheduler = 1, None
        self.max_memory_gb = None
        if self.visibility and dem is None:
            raise InputError("--visibility", None, "visibility needs a DEM",
                             "add --dem DEM.tif")

    @classmethod
    def from_layers(cls, zones, side_a: Side, side_b: Side, *, posts=None, study_area=None,
                    settings: Settings = Settings(), dem: Any = None, visibility: bool = False,
                    roads=None, incidents=None, force_field: str = "force",
                    margin_km: float = 5.0, sample_m: float | None = None,
                    inputs: dict | None = None, crs: Any = None,
                    progress: Callable[[str], None] | None = None,
                    profile: bool = False, hex_km: float = 10.0, places=None,
                    places_name_field: str | None = None, rivers=None, lakes=None,
                    sources: dict | None = None, max_memory_gb: float | None = None) -> Run:
        """A run over layers given as GeoDataFrames or paths (``dem``: a path or a
        :class:`gapmap.terrain.Dem`; ``incidents``: a path, an
        :class:`gapmap.incidents.Incidents` or a point GeoDataFrame; ``sources``: layer →
        source fields, as the scenario's ``[sources]`` tables; ``max_memory_gb``: memory the
        crossing searches may use, as ``Run``'s)."""
        paths = {"zones": zones, "posts": posts, "study_area": study_area,
                 "incidents": incidents, "dem": dem, "roads": roads, "rivers": rivers,
                 "lakes": lakes}
        if inputs is None:
            inputs = {k: str(v) for k, v in paths.items() if isinstance(v, (str, os.PathLike))}
        self = cls.__new__(cls)
        self._setup(zones=zones, side_a=side_a, side_b=side_b, settings=settings, posts=posts,
                    study_area=study_area, force_field=force_field, dem=dem, roads=roads,
                    incidents=incidents, visibility=visibility, margin_km=margin_km,
                    sample_m=sample_m, inputs=inputs, crs=crs, progress=progress,
                    profile=profile, hex_km=hex_km, places=places,
                    places_name_field=places_name_field, rivers=rivers, lakes=lakes)
        self._sources_table = dict(sources or {})
        self._set_memory(max_memory_gb)
        from .sources import read_sources

        read_sources(self._sources_table, self._layer_files(), origin="sources")
        return self

    # ---------------------------------------------------------------------------- plumbing

    def timed(self, name: str, fn: Callable[[], Any]) -> Any:
        """Call ``fn()`` as the stage ``name``: reported to ``progress``, timed in
        :attr:`timings` (and logged with ``profile``)."""
        self._step(name)
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        self.timings[name] = self.timings.get(name, 0.0) + dt
        if self.profile:
            log.info("stage %-16s %7.2f s", name, dt)
        return out

    # ---------------------------------------------------------------------------- inputs

    @cached_property
    def layers(self) -> Layers:
        """Zones (with their sides), the pair's posts and the study area, read once."""
        from .scenario import layer_source

        s = self._src

        def read():
            return read_layers(
                layer_source(s["zones"], s["zones_layer"], "zones", "Polygon"),
                self.side_a, self.side_b,
                posts=layer_source(s["posts"], s["posts_layer"], "posts", "Point"),
                study_area=layer_source(s["study_area"], s["study_area_layer"], "study area",
                                        "Polygon"),
                settings=self.settings, force_field=s["force_field"])
        return self.timed("reading layers", read)

    def _dem_box(self) -> tuple[float, float, float, float]:
        """Lon/lat bounds the DEM is read for: the study area (or the layers) plus how far
        crossing routes may go beyond a corridor (its width, at most max_width, + 5 km)."""
        lay = self.layers
        frames = [f for f in ((lay.study_area,) if lay.study_area is not None
                              else (lay.zones, lay.posts)) if f is not None and len(f)]
        w, s, e, n = np.array([f.to_crs(4326).total_bounds for f in frames]).T
        margin_km = self.settings.max_width_km + 6.0
        dlat = margin_km / 110.0
        coslat = max(math.cos(math.radians(max(abs(s.min()), abs(n.max())))), 0.05)
        dlon = margin_km / (111.3 * coslat)
        return (max(w.min() - dlon, -180.0), max(s.min() - dlat, -90.0),
                min(e.max() + dlon, 180.0), min(n.max() + dlat, 90.0))

    @cached_property
    def _dem_native(self):
        """The DEM read once, on its own grid when projected in metres; a lon/lat DEM is
        reprojected to the analysis CRS chosen from the layers (``None`` without a DEM)."""
        dem = self._src["dem"]
        if dem is None:
            return None
        if not isinstance(dem, (str, os.PathLike)):
            return dem  # a Dem (or Dem-like grid) already in memory

        def read():
            out, self._dem_reprojected = _file_crs_and_read(
                dem, self._dem_box(), lambda: analysis_crs(self.layers, pinned=self._pinned))
            return out
        return self.timed("reading DEM", read)

    @cached_property
    def crs(self) -> CRS:
        """The analysis CRS (pinned, the DEM's own when true to scale, or chosen)."""
        dem = self._dem_native
        own = dem is not None and not getattr(self, "_dem_reprojected", False)
        out = analysis_crs(self.layers, pinned=self._pinned,
                           dem_crs=dem.crs if own and dem.crs is not None else None)
        log.info("analysis CRS: %s", out.name)
        return out

    @cached_property
    def dem(self):
        """The DEM as one :class:`gapmap.terrain.Dem` (``None`` without one), read once."""
        dem = self._dem_native
        if dem is None:
            return None
        return dem

    @cached_property
    def roads(self) -> gpd.GeoDataFrame | None:
        """The road lines, read once (``None`` without any)."""
        roads = self._src["roads"]
        if roads is None or isinstance(roads, gpd.GeoDataFrame):
            return roads
        from .io import read_layer

        return read_layer(roads, what="roads", geom_types=("LineString",))

    @cached_property
    def places(self) -> gpd.GeoDataFrame | None:
        """The named places (:func:`gapmap.places.load_places`), read once (``None`` without
        a places layer)."""
        src = self._src.get("places")
        if src is None:
            return None
        from .places import load_places

        return load_places(src, name_field=self._src.get("places_name_field"))

    @cached_property
    def water(self):
        """Rivers and lakes in the analysis CRS (:class:`gapmap.water.Water`, the roads as its
        bridges), read once; ``None`` without either."""
        rivers, lakes = self._src["rivers"], self._src["lakes"]
        if rivers is None and lakes is None:
            return None
        from .water import read_water

        return self.timed("reading water", lambda: read_water(
            rivers, lakes, crs=self.crs, bridges=self.roads))

    @cached_property
    def incidents(self):
        """The incidents, read and filtered once (``None`` without any)."""
        inc = self._src["incidents"]
        if inc is None:
            return None
        if not isinstance(inc, (str, os.PathLike)):
            return inc
        if self.scenario is not None:
            return self.timed("reading incidents", self.scenario.read_incidents)
        from .incidents import read_incidents

        return self.timed("reading incidents", lambda: read_incidents(inc))

    def _layer_files(self) -> dict[str, Any]:
        """Layer → file (``None`` when given in memory) of every layer this run has."""
        if self.scenario is not None:
            return self.scenario.layer_files()
        names = ("zones", "study_area", "posts", "roads", "places", "rivers", "lakes",
                 "incidents", "dem")
        return {k: (v if isinstance(v, (str, os.PathLike)) else None)
                for k in names if (v := self._src.get(k)) is not None}

    @cached_property
    def sources(self) -> tuple:
        """Source, licence and date of each input that has them
        (:class:`gapmap.sources.Source`; scenario ``[sources]`` tables and sidecar files)."""
        from .sources import read_sources

        origin = self.scenario.source if self.scenario is not None else "sources"
        files = self._layer_files()
        # The scenario's tables were checked when it was read; a layer left out of this run
        # since (``dataclasses.replace(scenario, dem=None)``, a quick demo) is not credited.
        table = {k: v for k, v in getattr(self, "_sources_table", {}).items() if k in files}
        return read_sources(table, files, origin=origin)

    # ---------------------------------------------------------------------------- analysis

    @cached_property
    def prepared(self):
        """The layers in the analysis CRS (:class:`gapmap.corridors.Inputs`)."""
        layers, crs = self.layers, self.crs  # read first: their own stages
        return self.timed("preparing inputs", lambda: prepare_inputs(
            layers, self.side_a, self.side_b, crs, self.settings))

    @cached_property
    def base(self) -> Analysis:
        """Seam, coverage, corridors and gap region (no terrain, roads or incidents)."""
        inp = self.prepared
        dem = self.dem if self.visibility else None
        t0 = time.perf_counter()
        res = analyze_inputs(inp, dem=dem, visibility=self.visibility, sample_m=self.sample_m,
                             inputs=self.inputs, progress=self._stage_clock())
        self._stage_clock()(None)
        log.debug("analysis in %.2f s", time.perf_counter() - t0)
        check_resolution(res, self.dem, visibility=self.visibility)  # DEM vs posts, corridors
        return dataclasses.replace(res, dem=self.dem)

    def _stage_clock(self) -> Callable[[str | None], None]:
        """A progress callback that also times the stages it is told about."""
        if not hasattr(self, "_clock"):
            self._clock = [None, 0.0]

        def step(name):
            now = time.perf_counter()
            prev, t0 = self._clock
            if prev is not None:
                self.timings[prev] = self.timings.get(prev, 0.0) + now - t0
                if self.profile:
                    log.info("stage %-16s %7.2f s", prev, now - t0)
            self._clock = [name, now]
            if name is not None:
                self._step(name)
        return step

    @cached_property
    def crossings(self) -> Crossings | None:
        """Terrain fields and crossing routes of corridors and minor stretches; ``None``
        without a DEM.

        Searched on groups of overlapping corridors whose windows fit ``max_memory_gb`` by
        the search's formula (:func:`crossing_groups`, ``docs/scale.md``); the same fields and
        routes as one window over all of them."""
        if self.dem is None:
            return None
        base = self.base
        both = pd.concat([base.corridors, base.minor], ignore_index=True)
        both = gpd.GeoDataFrame(both, geometry=base.corridors.geometry.name, crs=base.crs)

        def search():
            from .routes import crossing_routes

            if len(both) == 0:
                return crossing_routes(dataclasses.replace(base, corridors=both), self.dem,
                                       water=self.water)
            # Routes stay within each corridor's widest separation (≤ max width) + 5 km of it
            # (routes.py): the search needs only that part of the DEM.
            wmax = np.minimum(np.nan_to_num(both["width_max_km"].to_numpy(float),
                                            nan=self.settings.max_width_km),
                              self.settings.max_width_km)
            grow = (wmax + 6.0) * 1000.0
            box = shapely.total_bounds(shapely.buffer(both.geometry.values, grow, quad_segs=4))
            dem = _crop(self.dem, tuple(box), self.crs)
            analysis = dataclasses.replace(base, corridors=both)
            from .tiles import memory_limit_bytes

            water = self.water
            # Groups even when one window over all would fit: on the sample (18 corridors and
            # stretches) 6 groups took 0.29–0.65× the one window's time at 0.56× its peak
            # memory (bench/bench_crossing_windows.py), each group's searches stopping once
            # its own corridors are reached.
            groups = crossing_groups(analysis, dem, memory_limit_bytes(self.max_memory_gb),
                                     penalty=water is not None, one_window=False)
            return crossing_routes(analysis, dem, water=water, groups=groups,
                                   max_memory_gb=self.max_memory_gb)
        routes = self.timed("terrain", search)
        fields = pd.DataFrame(routes.drop(columns=routes.geometry.name)).set_index(
            "corridor_id")[TERRAIN_FIELDS]
        return Crossings(fields, routes)

    @cached_property
    def analysis(self) -> Analysis:
        """The analysis with every field its inputs allow (roads, terrain, incidents)."""
        res = self.base
        if self.roads is not None:
            res = with_roads(res, self.roads)
        if self.crossings is not None:
            res = with_terrain(res, self.crossings.fields)
        if self.incident_metrics is not None:
            from .incidents import with_incidents

            res = with_incidents(res, self.incident_metrics)
        return res

    @cached_property
    def measured(self) -> Analysis:
        """The base analysis with its incident fields but no roads or terrain fields (no
        route search): the summary figures, as ``gapmap uncertainty`` perturbs them."""
        res = self.base
        if self.incident_metrics is not None:
            from .incidents import with_incidents

            res = with_incidents(res, self.incident_metrics)
        return res

    @cached_property
    def routes(self) -> gpd.GeoDataFrame | None:
        """Crossing routes of the (major) corridors, or ``None``."""
        if self.crossings is None:
            return None
        r = self.crossings.routes
        keep = r["corridor_id"].isin(set(self.base.corridors["corridor_id"]))
        routes = r.loc[keep.to_numpy()].reset_index(drop=True)
        return routes if len(routes) else None

    @cached_property
    def incident_metrics(self):
        """Incidents assigned to corridors and the exploitation ratio (once)."""
        if self.incidents is None:
            return None
        from .incidents import incident_metrics

        return self.timed("incidents", lambda: incident_metrics(
            self.base, self.incidents, margin_km=self.margin_km, workers=self.workers,
            scheduler=self.scheduler))

    @cached_property
    def hotspot_products(self):
        """Density, Gi* hexagons and counts over time of the incidents (computed once, with
        the settings of `gapmap hotspots`), or ``None`` without incidents."""
        inc = self.analysis.incidents
        if inc is None or len(inc) == 0:
            return None
        from .hotspots import hotspot_products

        return self.timed("hot spots", lambda: hotspot_products(
            inc, study_area=self.base.study_area, hex_km=self.hex_km, crs=self.crs))

    @property
    def hotspots(self) -> gpd.GeoDataFrame | None:
        """Gi* hot and cold spots of the incidents on ``hex_km`` hexagons (once)."""
        products = self.hotspot_products
        return None if products is None else products.hexes

    @cached_property
    def monthly(self) -> pd.DataFrame | None:
        """Incident counts over time, by corridor (``None`` without dated incidents)."""
        m = self.incident_metrics
        if m is None or not m.incidents["date"].notna().any():
            return None
        from .hotspots import monthly_counts

        return monthly_counts(m.incidents)

    @cached_property
    def hillshade(self):
        """Shade values (1–255, NaN without data) of the DEM over the study area, as a
        :class:`gapmap.terrain.Dem` at most :data:`HILLSHADE_MAX_CELLS` across."""
        if self.dem is None:
            return None
        def shaded():
            area = self.base.study_area
            w, s, e, n = area.bounds
            margin = 0.05 * max(e - w, n - s)
            crop = _crop(self.dem, (w - margin, s - margin, e + margin, n + margin), self.crs)
            return shade(_coarsen(crop, HILLSHADE_MAX_CELLS))
        return self.timed("hillshade", shaded)

    def coverage(self):
        """Cells the analysis' posts see over the DEM (``viewshed.Coverage``), or ``None``."""
        posts = self.base.posts
        if self.dem is None or posts is None or len(posts) == 0:
            log.warning("coverage needs a DEM and posts; not drawn")
            return None
        from .viewshed import coverage

        st = self.settings
        return self.timed("coverage", lambda: coverage(
            self.dem, posts, range_km=st.post_range_km, height_m=st.post_height_m,
            target_height_m=st.target_height_m))

    def terrain_window(self):
        """The DEM over the study area plus three cells, on its own grid (for the terrain
        rasters)."""
        if self.dem is None:
            return None
        return _crop(self.dem, self.base.study_area.bounds, self.crs)

    def placement(self, k: int, **kw: Any):
        """:func:`gapmap.placement.place_posts` on this run's analysis, with its DEM,
        visibility and places (keywords as there; ``visibility`` defaults to the run's)."""
        from .placement import place_posts

        kw.setdefault("visibility", self.visibility)
        if kw["visibility"]:
            kw.setdefault("dem", self.dem)
        if self.places is not None:
            kw.setdefault("places", self.places)
        return self.timed("placement", lambda: place_posts(self.analysis, k, **kw))

    def map_layers(self, *, hillshade: bool = True, coverage: bool = False,
                   hotspots: bool = False, routes: bool = False) -> dict[str, Any]:
        """The computed layers for :func:`gapmap.maps.make_map` (incidents, hillshade and,
        as asked, coverage, hot spots and crossing routes)."""
        out: dict[str, Any] = {}
        if self.incidents is not None:
            out["incidents"] = self.incidents
        if hillshade and self.hillshade is not None:
            out["hillshade"] = self.hillshade
        if coverage:
            cov = self.coverage()
            if cov is not None:
                out["coverage"] = cov
        if hotspots and self.hotspots is not None:
            out["hotspots"] = self.hotspots
        if routes and self.routes is not None:
            out["routes"] = self.routes
        # Reference and credits: the study areas' names, towns, water and the sources (the
        # places, water and sources properties come with their layers).
        area_src = self._src.get("study_area")
        if isinstance(area_src, gpd.GeoDataFrame):
            out["areas"] = area_src
        elif area_src is not None:  # the named polygons (read_layers dissolves them)
            from .io import read_layer

            out["areas"] = read_layer(area_src, self._src.get("study_area_layer"),
                                      what="study area", geom_types=("Polygon",))
        for name in ("places", "water"):
            value = getattr(self, name, None)
            if value is not None:
                out[name] = value
        out["sources"] = tuple(getattr(self, "sources", None) or ())
        return out

    def page_layers(self) -> dict[str, Any]:
        """What a figure or report draws besides the analysis: ``places`` (towns), ``areas``
        (the study area's named areas, e.g. governorates), ``water`` and ``sources`` — for
        :func:`gapmap.figures.plot_map` and :func:`gapmap.report.write_report`."""
        from .style import named_areas

        out: dict[str, Any] = {"sources": self.sources}
        study = self._src.get("study_area")
        if study is not None:
            from .scenario import layer_source

            src = layer_source(study, self._src.get("study_area_layer"), "study area",
                               "Polygon")
            if isinstance(src, (str, os.PathLike)):
                from .io import read_layer

                src = read_layer(src, what="study area")
            out["areas"] = named_areas(src)
        # Towns and water come from their own layers when the run has them.
        for name in ("places", "water"):
            value = getattr(self, name, None)
            if value is not None:
                out[name] = value
        return out
