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

__all__ = ["DemoResult", "run_demo", "sample_data_dir"]

log = logging.getLogger(__name__)

#: Joint posts the demo places, and their range and observer height.
DEMO_K, DEMO_RANGE_KM, DEMO_HEIGHT_M = 4, 8.0, 15.0


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
             profile: bool = False) -> DemoResult:
    """Run the sample scenario end to end and write every output into ``out_dir``.

    Stages: seam and corridors with terrain (slope, ruggedness, crossing time) and visibility
    from the posts, incidents (per corridor, exploitation ratio), terrain rasters, hot spots,
    placement of four joint posts, then the interactive map, the static figure and the report.
    ``quick`` skips the terrain (no DEM, no visibility) for a fast look. Everything goes through
    one :class:`gapmap.Run` (each input read once, each product computed once) and is staged in
    one folder moved into ``out_dir`` at the end, so an interrupted demo leaves the previous
    result. With ``profile`` the seconds of each stage are logged (INFO).

    Examples
    --------
    >>> res = run_demo("out/demo")  # doctest: +SKIP
    >>> res.files["map.html"]  # doctest: +SKIP
    PosixPath('out/demo/map.html')
    """
    from .io import atomic_dir
    from .run import Run

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
        written, placement = _write_all(run, stage)
    files = {name: out / rel for name, rel in written.items()}
    if profile:
        log.info("stages: %s", ", ".join(f"{k} {v:.1f} s" for k, v in run.timings.items()))
    return DemoResult(result, placement, files, timings=dict(run.timings))


def _write_all(run, stage: Path) -> tuple[dict[str, Path], Any]:
    """Every demo output written into ``stage`` (name → path relative to it), and the
    placement."""
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
    title = "gapmap demo — Iraq's disputed territories (illustrative force layout)"
    layers = run.map_layers(hotspots=True, routes=True)

    def draw_map():
        return save_map(make_map(result, placement=placement, title=title, **layers),
                        stage / "map.html")
    keep({"map": run.timed("map", draw_map)})

    def draw_figure():
        fig = plot_map(result, incidents=run.incidents, placement=placement, title=title,
                       **run.page_layers())
        return save_figure(fig, stage / "map.png")
    keep({"figure": run.timed("figure", draw_figure)})
    keep({"report": run.timed("report", lambda: write_report(
        result, stage / "report.html", incidents=run.incidents, monthly=run.monthly,
        placement=placement, title=title, **run.page_layers()))})
    return files, placement


def _write_terrain(run, out: Path) -> dict:
    """slope.tif, tri.tif, hillshade.tif of the study area on the DEM's own grid, from the
    run's DEM (already read: no file is opened again)."""
    import numpy as np
    import rasterio

    from .io import atomic_dir
    from .terrain import DERIVATIVE_NODATA, hillshade, slope, tri

    dem = run.terrain_window()
    layers = {
        "slope": (np.nan_to_num(slope(dem), nan=DERIVATIVE_NODATA), DERIVATIVE_NODATA),
        "tri": (np.nan_to_num(tri(dem), nan=DERIVATIVE_NODATA), DERIVATIVE_NODATA),
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
            with rasterio.open(stage / f"{name}.tif", "w", **profile) as dst:
                dst.write(arr, 1)
            paths[name] = out / f"{name}.tif"
    return paths


def _write_hotspots(run, out: Path) -> dict:
    """Density, Gi* hexagons and counts over time, as the run computed them (once)."""
    from .hotspots import write_hotspot_products

    return write_hotspot_products(run.hotspot_products, out)
