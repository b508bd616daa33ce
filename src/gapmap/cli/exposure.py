"""`gapmap exposure`: the stretches of road a cell can reach on foot, unseen by any post."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import InputError
from ._common import ProgressBar, analysis_options, scenario_from_options

__all__ = ["COMMANDS"]


def _inputs(origin: str, kw: dict):
    """Roads, origin, DEM and posts from the options (and the scenario, when there is one)."""
    from ..io import load_posts

    roads, dem, posts = kw.get("roads"), kw.get("dem"), kw.get("posts")
    if origin.lower() == "corridors" or kw.get("config") is not None:
        from ..run import Run

        scenario = scenario_from_options(**kw)
        roads = roads or scenario.roads
        if origin.lower() == "corridors":
            run = Run(scenario)
            corridors = run.analysis.corridors
            if corridors is None or not len(corridors):
                raise InputError("--origin", None, "the analysis has no unguarded corridors",
                                 "give an origin layer (polygons or points) instead")
            if scenario.dem is None:
                raise InputError("--dem", None, "no DEM given",
                                 "pass --dem DEM.tif or set layers.dem in the scenario")
            origin_layer = corridors
            dem = run.dem
            posts = run.analysis.posts if posts is None else posts
        else:
            origin_layer = Path(origin)
            dem = dem or scenario.dem
            posts = posts or scenario.posts
    else:
        origin_layer = Path(origin)
    for value, opt, key in ((roads, "--roads", "roads"), (dem, "--dem", "dem")):
        if value is None:
            raise InputError(opt, None, f"no {key} given",
                             f"pass {opt} FILE or set layers.{key} in a scenario (--config)")
    if isinstance(posts, Path):
        posts = load_posts(posts, layer=kw.get("posts_layer"))
    return roads, origin_layer, dem, posts


@click.command("exposure")
@click.option("--origin", required=True, metavar="FILE|corridors",
              help="Where the walk starts: polygons, lines or points (a ridge, a safe haven), "
                   "or 'corridors' for the unguarded corridors of the analysis the other "
                   "options describe.")
@click.option("--hours", type=float, default=3.0, show_default=True,
              help="Longest walk from the origin, hours.")
@click.option("--range-km", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Range of posts without their own range_km.")
@click.option("--height-m", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Observer height of posts without their own height_m.")
@click.option("--target-height-m", type=click.FloatRange(min=0), default=2.0,
              show_default=True, help="Height above the road of what a post must see.")
@analysis_options
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (created if needed).")
def exposure_cmd(origin: str, hours: float, range_km: float, height_m: float,
                 target_height_m: float, out_dir: Path, **kw) -> None:
    """Which stretches of road a cell can reach on foot from ORIGIN within --hours, unseen.

    Walking time is Tobler's over the DEM (as for crossing_hours); a road point is seen when
    a post sees it (line of sight over the DEM, range and heights); exposed when reachable
    and not seen. The roads are split into pieces exactly where this changes. Writes
    exposure.json (road_km, reachable_km, seen_km, exposed_km: geodesic, along the roads)
    and exposure.gpkg (layer exposure: the pieces with hours_from_origin, seen, reachable,
    exposed) into OUT.

    \b
    Examples:
      gapmap exposure --roads roads.geojson --origin hamrin.geojson --dem dem.tif \\
          --posts posts.csv --hours 3 --out out/exposure
      gapmap exposure --config geodata/scenario.toml --origin corridors --out out/exposure
    """
    from ..exposure import check_hours, format_exposure, road_exposure, write_exposure

    check_hours(hours)
    with ProgressBar(5, "exposure") as bar:
        bar("reading layers")
        roads, origin_layer, dem, posts = _inputs(origin, kw)
        ex = road_exposure(roads, origin_layer, dem, posts=posts, hours=hours,
                           range_km=range_km, height_m=height_m,
                           target_height_m=target_height_m, progress=bar)
        bar("writing")
        write_exposure(ex, out_dir)
    click.echo(format_exposure(ex))
    click.echo(f"\nResults in {out_dir}/")


COMMANDS = [exposure_cmd]
