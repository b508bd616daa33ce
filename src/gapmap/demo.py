"""The demo run on the shipped sample (``geodata/``): every stage, every output."""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .corridors import Analysis
from .errors import InputError
from .outputs import write_metrics
from .scenario import load_scenario

__all__ = ["DEMO_STAGES", "DemoResult", "parse_skip", "run_demo", "sample_data_dir"]

log = logging.getLogger(__name__)

#: Joint posts the demo places, and their range and observer height.
DEMO_K, DEMO_RANGE_KM, DEMO_HEIGHT_M = 4, 8.0, 15.0

#: The sample's two dated layouts (before, after) and their dated posts, for ``series/``.
DEMO_SERIES = ("zones_2017-06-30.geojson", "zones_2017-10-31.geojson")
DEMO_SERIES_POSTS = "posts_dated.geojson"

#: The study-area field ``by_area.csv`` breaks the figures down by (governorates).
DEMO_BY = "ADM1_EN"

#: ``uncertainty/``: copies and perturbations (zone edges ± km, post ranges × U[1 ± F],
#: reach drawn from U[low, high] km around the sample's 2 km), and the seed.
DEMO_DRAWS, DEMO_EDGE_KM, DEMO_POST_RANGE_FRAC, DEMO_REACH_KM, DEMO_SEED = \
    100, 2.0, 0.2, (1.0, 3.0), 0

#: ``exposure/``: the origin layer (a band along the Jebel Hamrin crest) and the walk, hours;
#: the road assessed (names containing it) and the posts' dates with and without the
#: illustrative Anjata patrol (active to 2017-10-25, see geodata/README.md).
DEMO_ORIGIN, DEMO_HOURS = "hamrin_origin.geojson", 3.0
DEMO_ROAD = "Kirkuk–Baghdad"
DEMO_PATROL_DATES = ("2017-10-20", "2017-10-31")
#: How the report names that origin.
DEMO_ORIGIN_NAME = "Jebel Hamrin crest (illustrative)"


#: The stages ``skip`` can leave out: the ones added after the first demo (0d70e02), so that
#: ``--skip uncertainty,series,exposure,by-area`` runs what that demo ran, for comparisons.
DEMO_STAGES = ("uncertainty", "series", "exposure", "by-area")


def parse_skip(text: str | None) -> frozenset[str]:
    """The stage names of ``--skip`` (comma separated), checked against :data:`DEMO_STAGES`.

    >>> sorted(parse_skip("series, by-area"))
    ['by-area', 'series']
    >>> parse_skip(None)
    frozenset()
    """
    names = frozenset(n.strip() for n in (text or "").split(",") if n.strip())
    bad = sorted(names - set(DEMO_STAGES))
    if bad:
        raise InputError("--skip", None, f"unknown stage {bad[0]!r}",
                         f"give some of {', '.join(DEMO_STAGES)} (comma separated)")
    return names


def sample_data_dir() -> Path:
    """The ``geodata/`` folder of the source tree (or ``$GAPMAP_DATA``)."""
    env = os.environ.get("GAPMAP_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "geodata"


@dataclass(frozen=True)
class DemoResult:
    """What :func:`run_demo` produced: the analysis, the placement and the files written."""

    analysis: Analysis
    placement: Any = None
    files: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)


def run_demo(out_dir: str | os.PathLike, *, data_dir: str | os.PathLike | None = None,
             quick: bool = False, progress: Callable[[str], None] | None = None,
             profile: bool = False, skip: str | frozenset[str] | None = None) -> DemoResult:
    """Run the sample scenario end to end and write every output into ``out_dir``.

    Stages: seam and corridors with terrain (slope, ruggedness, crossing time) and visibility
    from the posts, incidents (per corridor, exploitation ratio), terrain rasters, hot spots,
    placement of four joint posts (with the K curve), the breakdown by governorate
    (``by_area.csv``), the stretches of the Kirkuk–Baghdad road a cell on the Jebel Hamrin
    crest reaches unseen within three hours, without and with the withdrawn Anjata patrol
    (``exposure/``), then the interactive map, the static figure and the report (all three
    draw that exposure, the patrol withdrawn); then the two dated layouts of 2017 compared
    (``series/``: what October 2017 opened and closed, no terrain) and the ranges over
    perturbed copies (``uncertainty/``).
    ``quick`` skips the terrain (no DEM, no visibility, no uncertainty, no exposure) for a
    fast look. Everything goes through
    one :class:`gapmap.Run` (each input read once, each product computed once) and is staged in
    one folder moved into ``out_dir`` at the end, so an interrupted demo leaves the previous
    result. With ``profile`` the seconds of each stage are logged (INFO). ``skip`` leaves
    out some of :data:`DEMO_STAGES` (a set or a comma-separated string); the pages then draw
    without them.

    Examples
    --------
    >>> res = run_demo("out/demo")  # doctest: +SKIP
    >>> res.files["map.html"]  # doctest: +SKIP
    PosixPath('out/demo/map.html')
    """
    from .io import atomic_dir
    from .run import Run

    skipped = parse_skip(skip) if skip is None or isinstance(skip, str) else parse_skip(
        ",".join(skip))
    data = Path(data_dir) if data_dir is not None else sample_data_dir()
    scenario_file = data / "scenario.toml"
    if not scenario_file.exists():
        raise InputError(scenario_file, None, "sample scenario not found",
                         "run from a gapmap source checkout or pass --data DIR")
    out = Path(out_dir)
    sc = load_scenario(scenario_file)
    sc = dataclasses.replace(sc, dem=None, visibility=False) if quick else \
        dataclasses.replace(sc, visibility=sc.dem is not None)
    run = Run(sc, progress=progress, profile=profile)
    result = run.analysis
    with atomic_dir(out) as stage:
        # The exposure first: the map, the figure and the report draw it (computed once).
        written, exposure = ({}, None) if "exposure" in skipped else \
            _write_exposure_first(run, data, stage, quick=quick)
        drawn, placement = _write_all(run, stage, exposure=exposure, skip=skipped)
        written.update(drawn)
        if "series" not in skipped:
            written.update(_write_extras(run, data, stage, quick=quick))
    files = {name: out / rel for name, rel in written.items()}
    if profile:
        log.info("stages: %s", ", ".join(f"{k} {v:.1f} s" for k, v in run.timings.items()))
    return DemoResult(result, placement, files, timings=dict(run.timings))


def _write_exposure_first(run, data: Path, stage: Path, *, quick: bool
                          ) -> tuple[dict[str, Path], Any]:
    """``exposure/`` (with terrain, when the origin layer is there) and the exposure, for the
    pages drawn after it; ``({}, None)`` otherwise."""
    if quick or run.dem is None:
        return {}, None
    if not (data / DEMO_ORIGIN).exists():
        log.info("no %s in %s: no exposure/", DEMO_ORIGIN, data)
        return {}, None
    paths, exposure = run.timed("exposure", lambda: _write_exposure(run, data, stage))
    return _rel(paths, stage), exposure


def _write_all(run, stage: Path, *, exposure: Any = None, skip: frozenset[str] = frozenset()
               ) -> tuple[dict[str, Path], Any]:
    """Every demo output written into ``stage`` (name → path relative to it), and the
    placement; the map, the figure and the report draw ``exposure`` when given. ``skip``:
    stages left out (``by-area``, ``uncertainty``)."""
    from .figures import plot_map, save_figure
    from .maps import make_map, save_map
    from .report import write_report

    result = run.analysis
    files: dict[str, Path] = {}

    def keep(paths: dict) -> None:
        for path in paths.values():
            rel = Path(path).relative_to(stage)
            files[rel.as_posix()] = rel

    keep(write_metrics(result, stage))
    if run.dem is not None:
        keep(run.timed("terrain rasters", lambda: _write_terrain(run, stage / "terrain")))
    if result.incidents is not None and len(result.incidents):
        keep(run.timed("hot spot files", lambda: _write_hotspots(run, stage / "hotspots")))
    placement = run.placement(DEMO_K, range_km=DEMO_RANGE_KM, height_m=DEMO_HEIGHT_M)
    from .placement import write_placement

    keep(write_placement(placement, stage / "placement"))
    by_table = unc = None
    if run.scenario.study_area is not None and "by-area" not in skip:
        by_table = run.timed("by area", lambda: _write_by_area(run, stage, keep))
    if run.dem is not None and "uncertainty" not in skip:  # ranges on the map and report
        unc = run.timed("uncertainty", lambda: _write_uncertainty(run, stage, keep))
        by_table = unc.by_area if unc.by_area is not None else by_table
    title = "gapmap demo — Iraq's disputed territories (illustrative force layout)"
    layers = run.map_layers(hotspots=True, routes=True)

    def draw_map():
        return save_map(make_map(result, placement=placement, title=title, exposure=exposure,
                                 uncertainty=unc, **layers), stage / "map.html")
    keep({"map": run.timed("map", draw_map)})

    def draw_figure():
        fig = plot_map(result, incidents=run.incidents, placement=placement, title=title,
                       exposure=exposure, **run.page_layers())
        return save_figure(fig, stage / "map.png")
    keep({"figure": run.timed("figure", draw_figure)})
    keep({"report": run.timed("report", lambda: write_report(
        result, stage / "report.html", incidents=run.incidents, monthly=run.monthly,
        placement=placement, title=title, exposure=exposure,
        exposure_origin=DEMO_ORIGIN_NAME if exposure is not None else None,
        uncertainty=unc, by_area=by_table, map_png=stage / "map.png",
        **run.page_layers()))})
    return files, placement


def _write_terrain(run, out: Path) -> dict:
    """slope.tif, tri.tif, hillshade.tif of the study area on the DEM's own grid, from the
    run's DEM (already read: no file is opened again)."""
    import numpy as np
    import rasterio

    from .io import atomic_dir
    from .terrain import DERIVATIVE_NODATA, hillshade, slope, tri

    dem = run.terrain_window()

    def filled(arr):
        # In place, NaN only (the fields are finite elsewhere): np.nan_to_num also scans for
        # ±inf and copies: 0.72 s against 0.017 s a field on the sample (machine loaded).
        np.copyto(arr, DERIVATIVE_NODATA, where=np.isnan(arr))
        return arr

    layers = {
        "slope": (filled(slope(dem)), DERIVATIVE_NODATA),
        "tri": (filled(tri(dem)), DERIVATIVE_NODATA),
        "hillshade": (hillshade(dem), 0),
    }
    h, w = dem.shape
    tiled = h >= 256 and w >= 256
    paths = {}
    with atomic_dir(out) as stage:
        for name, (arr, nodata) in layers.items():
            profile = {"driver": "GTiff", "height": h, "width": w, "count": 1,
                       "dtype": arr.dtype.name, "crs": dem.crs, "transform": dem.transform,
                       "nodata": nodata, "compress": "deflate", "zlevel": 1, "tiled": tiled,
                       **({"blockxsize": 256, "blockysize": 256} if tiled else {})}
            # Compressed on every core, the band written as one 3-D block: 0.19 s against
            # 0.39 s a float field of the sample.
            with rasterio.open(stage / f"{name}.tif", "w", num_threads="ALL_CPUS",
                               **profile) as dst:
                dst.write(arr[np.newaxis])
            paths[name] = out / f"{name}.tif"
    return paths


def _write_hotspots(run, out: Path) -> dict:
    """Density, Gi* hexagons and counts over time, as the run computed them (once)."""
    from .hotspots import write_hotspot_products

    return write_hotspot_products(run.hotspot_products, out)


def _rel(paths: dict, stage: Path) -> dict[str, Path]:
    out = {}
    for path in paths.values():
        rel = Path(path).relative_to(stage)
        out[rel.as_posix()] = rel
    return out


def _write_by_area(run, stage: Path, keep):
    """``by_area.csv``: the run's figures per governorate (``ADM1_EN``); the table."""
    from .by_area import areas_of_scenario, breakdown, write_breakdown

    areas = areas_of_scenario(run.scenario, DEMO_BY)
    table = breakdown(run.analysis, areas, DEMO_BY)
    keep(write_breakdown(table, stage))
    return table


def _write_extras(run, data: Path, stage: Path, *, quick: bool) -> dict[str, Path]:
    """``series/`` (when the sample's dated layouts are there)."""
    files: dict[str, Path] = {}
    if all((data / name).exists() for name in (*DEMO_SERIES, DEMO_SERIES_POSTS)):
        files.update(_rel(run.timed("series", lambda: _write_series(run, data, stage)), stage))
    else:
        log.info("no dated layouts in %s: no series/", data)
    return files


def _write_series(run, data: Path, stage: Path) -> dict:
    """The two dated layouts compared in this process, without terrain (``series/``)."""
    from .series import compare
    from .series_render import write_compare

    sc = run.scenario
    before, after = (data / name for name in DEMO_SERIES)
    comparison = compare(before, after, sc.side_a, sc.side_b, posts=data / DEMO_SERIES_POSTS,
                         study_area=sc.study_area, settings=sc.settings,
                         force_field=sc.force_field, workers=1)
    return write_compare(comparison, stage / "series",
                         title="gapmap demo — what October 2017 opened and closed "
                               "(illustrative force layouts)")


def _write_uncertainty(run, stage: Path, keep):
    """The summary figures over perturbed copies, by governorate too, as ``gapmap
    uncertainty`` writes them (``uncertainty/``); posts cover what they see, as in the run.
    Returns the result (for the map and the report)."""
    from .by_area import admin_check, areas_of_scenario
    from .uncertainty import simulate, write_uncertainty

    areas = areas_of_scenario(run.scenario, DEMO_BY) \
        if run.scenario.study_area is not None else None
    base, mismatches = run.measured, None
    if areas is not None:
        base, mismatches = admin_check(base, areas, DEMO_BY)
    result = simulate(base, draws=DEMO_DRAWS, edge_km=DEMO_EDGE_KM,
                      post_range_frac=DEMO_POST_RANGE_FRAC, reach_km=DEMO_REACH_KM,
                      seed=DEMO_SEED, areas=areas, by=DEMO_BY if areas is not None else None,
                      visibility=run.scenario.visibility, dem=run.dem)
    keep(write_uncertainty(result, stage / "uncertainty", mismatches=mismatches))
    return result


def _write_exposure(run, data: Path, stage: Path) -> tuple[dict, Any]:
    """The Kirkuk–Baghdad road: which stretches a cell on the Jebel Hamrin crest reaches on
    foot within ``DEMO_HOURS``, unseen, after the Anjata patrol was withdrawn (the posts of
    ``DEMO_PATROL_DATES[1]``: ``exposure/``) and while it ran (``DEMO_PATROL_DATES[0]``:
    ``exposure/with_patrol/``), and the stretches its withdrawal exposed
    (``exposure/change.json``, ``exposure/newly_exposed.geojson``). Lakes cannot be walked,
    rivers cost their crossing hours away from the roads. Returns the files written and the
    exposure without the patrol."""
    from .exposure import (exposure_change, road_exposure, road_exposure_on_dates,
                           write_exposure, write_exposure_change)

    posts = data / DEMO_SERIES_POSTS
    with_date, without_date = DEMO_PATROL_DATES
    opts = dict(posts=posts, hours=DEMO_HOURS, water=run.water, road_name=DEMO_ROAD)
    if not posts.exists():  # a sample without dated posts: the run's posts, no comparison
        ex = road_exposure(run.roads, data / DEMO_ORIGIN, run.dem,
                           **{**opts, "posts": run.analysis.posts})
        return write_exposure(ex, stage / "exposure"), ex
    runs = road_exposure_on_dates(run.roads, data / DEMO_ORIGIN, run.dem,
                                  dates=[with_date, without_date], **opts)
    with_patrol, ex = runs[with_date], runs[without_date]
    files = dict(write_exposure(ex, stage / "exposure"))
    for name, path in write_exposure(with_patrol, stage / "exposure" / "with_patrol").items():
        files[f"with_patrol/{name}"] = path
    files.update(write_exposure_change(exposure_change(with_patrol, ex), stage / "exposure"))
    return files, ex
