"""`gapmap exposure`: the stretches of road a cell can reach on foot, unseen by any post."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import InputError
from ._common import ProgressBar, analysis_options, max_memory_option, scenario_from_options

__all__ = ["COMMANDS"]


def _inputs(origin: str, kw: dict, rivers: Path | None = None, lakes: Path | None = None,
            max_memory_gb: float | None = None, range_km: float | None = None,
            height_m: float | None = None):
    """Roads, origin, DEM, posts and water from the options (and the scenario, when there is
    one), and the range and height of posts that carry none.

    ``range_km``/``height_m``: the options when given (``None`` when not): they then fill the
    posts without their own, also the analysis's posts with ``--origin corridors``, so the
    corridors and the sight of the roads come from the same posts; when not given, the
    scenario's ``post_range_km``/``post_height_m`` (or the options' defaults without one).
    """
    import dataclasses

    from ..io import load_posts
    from ..settings import Settings

    roads, dem, posts = kw.get("roads"), kw.get("dem"), kw.get("posts")
    base = Settings()
    if origin.lower() == "corridors" or kw.get("config") is not None:
        from ..run import Run

        scenario = scenario_from_options(**kw)
        given = {k: v for k, v in (("post_range_km", range_km), ("post_height_m", height_m))
                 if v is not None}
        scenario = dataclasses.replace(scenario, settings=dataclasses.replace(
            scenario.settings, **given))
        base = scenario.settings
        roads = roads or scenario.roads
        rivers = rivers or scenario.rivers
        lakes = lakes or scenario.lakes
        if origin.lower() == "corridors":
            run = Run(scenario, max_memory_gb=max_memory_gb)
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
    range_km = base.post_range_km if range_km is None else range_km
    height_m = base.post_height_m if height_m is None else height_m
    for value, opt, key in ((roads, "--roads", "roads"), (dem, "--dem", "dem")):
        if value is None:
            raise InputError(opt, None, f"no {key} given",
                             f"pass {opt} FILE or set layers.{key} in a scenario (--config)")
    if isinstance(posts, Path):
        # load_posts keeps active_from/active_to for --posts-date
        posts = load_posts(posts, layer=kw.get("posts_layer"), default_range_km=range_km,
                           default_height_m=height_m)
    water = None
    if rivers is not None or lakes is not None:
        from ..water import read_water

        water = read_water(rivers, lakes)
    return roads, origin_layer, dem, posts, water, range_km, height_m


@click.command("exposure")
@click.option("--origin", required=True, metavar="FILE|corridors",
              help="Where the walk starts: polygons, lines or points (a ridge, a safe haven), "
                   "or 'corridors' for the unguarded corridors of the analysis the other "
                   "options describe.")
@click.option("--hours", type=float, default=3.0, show_default=True,
              help="Longest walk from the origin, hours.")
@click.option("--range-km", type=click.FloatRange(min=0), default=None,
              help="Range of posts without their own range_km [default: the scenario's "
                   "post_range_km, else 5].")
@click.option("--height-m", type=click.FloatRange(min=0), default=None,
              help="Observer height of posts without their own height_m [default: the "
                   "scenario's post_height_m, else 10].")
@click.option("--target-height-m", type=click.FloatRange(min=0), default=2.0,
              show_default=True, help="Height above the road of what a post must see.")
@click.option("--road-name", default=None, metavar="TEXT",
              help="Assess only the roads whose name field contains TEXT (any case; any dash "
                   "matches '–'), e.g. 'Kirkuk–Baghdad'. Every road still bridges rivers.")
@click.option("--where", "where", default=None, metavar="FIELD=VALUE",
              help="Assess only the roads whose FIELD equals VALUE (any case), e.g. "
                   "corridor=Kirkuk–Baghdad.")
@click.option("--posts-date", default=None, metavar="YYYY-MM-DD",
              help="Only the posts active on this date (active_from <= date <= active_to, a "
                   "missing bound open; the rule of gapmap series).")
@click.option("--compare-date", default=None, metavar="YYYY-MM-DD",
              help="Also run with the posts of this date and write what changed to OUT/compare/ "
                   "(change.json: exposed km on both dates; newly_exposed.geojson: the "
                   "stretches exposed on --posts-date but not on this one).")
@click.option("--rivers", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="River lines (crossing_hours field, default 1 h) crossed at a "
                                 "cost except within 150 m of a road.")
@click.option("--lakes", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Lake polygons: cannot be walked.")
@max_memory_option
@analysis_options
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (created if needed).")
def exposure_cmd(origin: str, hours: float, range_km: float | None, height_m: float | None,
                 target_height_m: float, road_name: str | None, where: str | None,
                 posts_date: str | None, compare_date: str | None, rivers: Path | None,
                 lakes: Path | None, out_dir: Path, max_memory_gb: float | None = None,
                 **kw) -> None:
    """Which stretches of road a cell can reach on foot from ORIGIN within --hours, unseen.

    Walking time is Tobler's over the DEM (as for crossing_hours); a road point is seen when
    a post sees it (line of sight over the DEM, range and heights); exposed when reachable
    and not seen. The roads are split into pieces exactly where this changes. Writes
    exposure.json (road_km, reachable_km, seen_km, exposed_km: geodesic, along the roads)
    and exposure.gpkg (layer exposure: the pieces with hours_from_origin, seen, reachable,
    exposed) into OUT. Rivers and lakes (--rivers/--lakes or the scenario's) shape the walk
    as in every walking-time search. --road-name/--where pick the roads to assess,
    --posts-date the posts of one date; --compare-date adds what a change of posts did.
    Only the DEM's window the walk and the roads need is read; a run that would need more
    than --max-memory-gb (formula in docs/scale.md) is refused, saying which --hours fits.

    \b
    Examples:
      gapmap exposure --roads roads.geojson --origin hamrin.geojson --dem dem.tif \\
          --posts posts.csv --hours 3 --out out/exposure
      gapmap exposure --config geodata/scenario.toml --origin corridors --out out/exposure
      gapmap exposure --config geodata/scenario.toml --origin geodata/hamrin_origin.geojson \\
          --road-name Kirkuk–Baghdad --posts geodata/posts_dated.geojson \\
          --posts-date 2017-10-31 --compare-date 2017-10-20 --out out/anjata
    """
    from ..exposure import (check_hours, exposure_change, format_change, format_exposure,
                            posts_on, road_exposure, road_exposure_on_dates, select_roads,
                            write_exposure, write_exposure_change)

    check_hours(hours)
    if compare_date is not None and posts_date is None:
        raise InputError("--compare-date", None, "needs --posts-date (the date compared with)",
                         "give --posts-date DATE as well")
    with ProgressBar(5, "exposure") as bar:
        bar("reading layers")
        roads, origin_layer, dem, posts, water, range_km, height_m = _inputs(
            origin, kw, rivers, lakes, max_memory_gb, range_km, height_m)
        if (posts_date or compare_date) and posts is None:
            raise InputError("--posts-date", None, "no posts given",
                             "pass --posts FILE (with active_from/active_to)")
        for day in (posts_date, compare_date):
            if day is not None:  # a bad date or road selection stops before the long walk
                posts_on(posts, day, range_km=range_km, height_m=height_m)
        if road_name is not None or where is not None:
            select_roads(roads, road_name=road_name, where=where)
        opts = dict(hours=hours, range_km=range_km, height_m=height_m,
                    target_height_m=target_height_m, water=water, road_name=road_name,
                    where=where, max_memory_gb=max_memory_gb)
        other = None
        if compare_date is None:
            ex = road_exposure(roads, origin_layer, dem, posts=posts, posts_date=posts_date,
                               progress=bar, **opts)
        else:  # one walk, the roads cut for the posts of each date
            runs = road_exposure_on_dates(roads, origin_layer, dem, posts=posts,
                                          dates=[posts_date, compare_date], progress=bar,
                                          **opts)
            ex, other = runs[str(posts_date)], runs[str(compare_date)]
        bar("writing")
        write_exposure(ex, out_dir)
        if other is not None:
            change = exposure_change(other, ex)
            write_exposure(other, out_dir / "compare")
            write_exposure_change(change, out_dir / "compare")
    click.echo(format_exposure(ex))
    if other is not None:
        click.echo(f"\nchange from {compare_date} to {posts_date}:\n" + format_change(change))
    click.echo(f"\nResults in {out_dir}/")


COMMANDS = [exposure_cmd]
