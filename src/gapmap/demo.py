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
from .scenario import load_scenario, run_scenario

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


def run_demo(out_dir: str | os.PathLike, *, data_dir: str | os.PathLike | None = None,
             quick: bool = False, progress: Callable[[str], None] | None = None) -> DemoResult:
    """Run the sample scenario end to end and write every output into ``out_dir``.

    Stages: seam and corridors with terrain (slope, ruggedness, crossing time) and visibility
    from the posts, incidents (per corridor, exploitation ratio), terrain rasters, hot spots,
    placement of four joint posts, then the interactive map, the static figure and the report.
    ``quick`` skips the terrain (no DEM, no visibility) for a fast look.

    Examples
    --------
    >>> res = run_demo("out/demo")  # doctest: +SKIP
    >>> res.files["map.html"]  # doctest: +SKIP
    PosixPath('out/demo/map.html')
    """
    from .figures import plot_map, save_figure
    from .hotspots import monthly_counts, write_hotspots
    from .layers import scenario_layers
    from .maps import make_map, save_map
    from .placement import place_posts, write_placement
    from .report import write_report

    data = Path(data_dir) if data_dir is not None else sample_data_dir()
    scenario_file = data / "scenario.toml"
    if not scenario_file.exists():
        raise InputError(scenario_file, None, "sample scenario not found",
                         "run from a gapmap source checkout or pass --data DIR")
    out = Path(out_dir)
    step = progress or (lambda name: None)
    sc = load_scenario(scenario_file)
    sc = dataclasses.replace(sc, dem=None, visibility=False) if quick else \
        dataclasses.replace(sc, visibility=sc.dem is not None)
    result = run_scenario(sc, progress=step)

    step("layers")
    layers = scenario_layers(sc, result, hillshade=True, coverage=False, hotspots=True)
    files: dict[str, Path] = {}
    files.update(write_metrics(result, out))
    if sc.dem is not None:
        from .routes import crossing_routes
        from .terrain import write_derivatives

        step("terrain rasters")
        area = result.study_area.bounds
        for name, path in write_derivatives(sc.dem, out / "terrain", bounds=area,
                                            bounds_crs=result.crs).items():
            files[f"terrain/{Path(path).name}"] = Path(path)
        step("crossing routes")
        routes = crossing_routes(result, sc.dem)
        if len(routes):
            layers["routes"] = routes

    if result.incidents is not None and len(result.incidents):
        step("hot spots")
        # The assigned table, so that the monthly counts are per corridor.
        for name, path in write_hotspots(result.incidents, out / "hotspots",
                                         study_area=result.study_area, crs=result.crs).items():
            files[f"hotspots/{Path(path).name}"] = Path(path)

    step("placement")
    placement = place_posts(result, DEMO_K, range_km=DEMO_RANGE_KM, height_m=DEMO_HEIGHT_M,
                            dem=sc.dem, visibility=sc.dem is not None)
    for name, path in write_placement(placement, out / "placement").items():
        files[f"placement/{Path(path).name}"] = Path(path)

    step("map")
    title = "gapmap demo — Iraq's disputed territories (illustrative force layout)"
    m = make_map(result, placement=placement, title=title, **layers)
    files["map.html"] = save_map(m, out / "map.html")
    step("figure")
    fig = plot_map(result, incidents=layers.get("incidents"), placement=placement, title=title)
    files["map.png"] = save_figure(fig, out / "map.png")
    step("report")
    files["report.html"] = write_report(result, out / "report.html",
                                        incidents=layers.get("incidents"), placement=placement,
                                        monthly=None if result.incidents is None
                                        else monthly_counts(result.incidents), title=title)
    return DemoResult(result, placement, files)
