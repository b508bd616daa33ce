"""`gapmap series` and `gapmap compare`: change over time."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click

from ._common import roads_option, visibility_option

__all__ = ["COMMANDS"]

_FILE = click.Path(dir_okay=False, path_type=Path)


def _common_options(func: Callable, *, config: bool = False) -> Callable:
    """The options of both commands; with ``config`` the sides may come from --config."""
    opts = [
        click.option("--side-a", required=not config, help="Side A as NAME=force1,force2."),
        click.option("--side-b", required=not config, help="Side B as NAME=force1,force2."),
        click.option("--force-field", help="Zone field holding the force [force]."),
        click.option("--zones-layer", help="Layer name in multi-layer zones files."),
        click.option("--posts", type=_FILE, help="Posts (points; optional range_km, height_m, "
                                                 "active_from, active_to)."),
        click.option("--study-area", type=_FILE, help="Study area polygon(s)."),
        click.option("--reach-km", type=float, help="How far each side guards [2]."),
        click.option("--max-width-km", type=float, help="Widest separation still seam [150]."),
        click.option("--min-length-km", type=float, help="Shorter corridors counted apart [1]."),
        click.option("--crs", help="Analysis CRS for every date; chosen from the union of all "
                                   "dates and the study area if omitted."),
        click.option("--dem", type=_FILE, help="DEM GeoTIFF (terrain fields)."),
        visibility_option(),
        roads_option(),
        click.option("--match-km", type=float, default=1.0, show_default=True,
                     help="How far the seam may move and still be the same seam."),
        click.option("--workers", type=int, help="Local processes [one per core]; 1 runs "
                                                 "in this process without Dask."),
        click.option("--scheduler", metavar="ADDRESS",
                     help="An existing dask.distributed scheduler, e.g. tcp://host:8786."),
        click.option("--title", help="Title of the map and chart."),
        click.option("--out", "out_dir", required=True,
                     type=click.Path(file_okay=False, path_type=Path), help="Output folder."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def _settings(kw: dict[str, Any]):
    from ..settings import Settings

    names = ("reach_km", "max_width_km", "min_length_km", "crs")
    return Settings(**{k: kw[k] for k in names if kw.get(k) is not None})


class _Bar:
    """A tqdm bar over finished dates (silent when stderr is not a terminal)."""

    def __init__(self, desc: str) -> None:
        import sys

        from tqdm.auto import tqdm

        self._bar = tqdm(total=None, desc=desc, unit="date", leave=False, disable=None,
                         file=sys.stderr)

    def __call__(self, done: int, total: int) -> None:
        self._bar.total = total
        self._bar.n = done
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()


def _config_options(func: Callable) -> Callable:
    return _common_options(func, config=True)


#: Options of `series` that override the same key of a scenario file.
_SCENARIO_KEYS = ("side_a", "side_b", "force_field", "zones_layer", "posts", "study_area",
                  "reach_km", "max_width_km", "min_length_km", "crs", "dem", "incidents",
                  "until", "visibility", "roads")


def _from_scenario(config: Path, zones: str | None, date_field: str | None,
                   kw: dict[str, Any]) -> dict[str, Any]:
    """analyze_series arguments from a scenario file, the options given winning over it."""
    from ..errors import InputError
    from ..scenario import layer_source, load_scenario

    overrides = {k: kw.get(k) for k in _SCENARIO_KEYS}
    try:
        sc = load_scenario(config, zones=zones, **overrides)
    except InputError as exc:
        if exc.field == "zones" and zones is None:
            raise _no_dates(config) from exc
        raise
    if zones is not None:
        dated = zones
    elif sc.snapshots:
        dated, date_field = sc.snapshots, None
    elif date_field is not None:
        dated = sc.zones  # [layers] zones: one layer of every date
    else:
        raise _no_dates(config)
    return dict(
        zones=dated, side_a=sc.side_a, side_b=sc.side_b, date_field=date_field,
        zones_layer=sc.zones_layer, study_area=layer_source(
            sc.study_area, sc.study_area_layer, "study area", "Polygon"),
        posts=layer_source(sc.posts, sc.posts_layer, "posts", "Point"), settings=sc.settings,
        incidents=sc.read_incidents(), until=sc.until, margin_km=sc.margin_km,
        dem=sc.dem, visibility=sc.visibility, roads=sc.roads, force_field=sc.force_field)


def _no_dates(config: Path):
    from ..errors import InputError

    return InputError(config, "snapshots", "no dated layers: the file has no [[snapshots]] "
                      "and no --zones was given", "add [[snapshots]] entries (date, zones), "
                      "or pass --zones FOLDER|GLOB (or --date-field with [layers] zones)")


def _from_options(zones: str | None, date_field: str | None, kw: dict[str, Any]
                  ) -> dict[str, Any]:
    from ..errors import InputError
    from ..settings import parse_side

    if zones is None:
        raise InputError("--zones", None, "no dated layers given",
                         "pass --zones FOLDER|GLOB|FILE, or --config SCENARIO.toml with "
                         "[[snapshots]]")
    for opt in ("side_a", "side_b"):
        if kw.get(opt) is None:
            flag = "--" + opt.replace("_", "-")
            raise InputError(flag, None, "side not given", f"pass {flag} NAME=force1,force2 "
                             "or --config with [sides]")
    inc = None
    if kw["incidents"] is not None:
        from ..incidents import read_incidents

        inc = read_incidents(kw["incidents"])
    return dict(
        zones=zones, side_a=parse_side(kw["side_a"], "--side-a"),
        side_b=parse_side(kw["side_b"], "--side-b"), date_field=date_field,
        zones_layer=kw["zones_layer"], posts=kw["posts"], study_area=kw["study_area"],
        settings=_settings(kw), incidents=inc, until=kw["until"], dem=kw["dem"],
        visibility=bool(kw["visibility"]), roads=kw["roads"],
        force_field=kw["force_field"] or "force")


def _areas(field: str, study_area: Any):
    """The study-area layer for --by, read before any analysis (a bad field fails at once)."""
    from ..by_area import load_areas
    from ..errors import InputError

    if study_area is None:
        raise InputError("--by", field, "a breakdown needs the study-area layer that holds the "
                         "field", "add --study-area FILE (or layers.study_area in --config)")
    return load_areas(study_area, field)


@click.command("series")
@click.option("--config", type=_FILE, help="Scenario TOML file: its [[snapshots]] give the "
              "dated layers; sides, layers and parameters from it, options given here winning.")
@click.option("--zones", help="A folder or glob of one file per date (date in the name: "
              "YYYYMMDD or YYYY-MM-DD), or one layer with --date-field.")
@click.option("--date-field", help="Field holding each zone's date (one layer of all dates).")
@click.option("--incidents", type=_FILE, help="Incidents (ACLED, UCDP GED, CSV or points): "
              "each counts for the snapshot whose period holds its date.")
@click.option("--until", help="End of the last snapshot's period for incidents (YYYY-MM-DD).")
@click.option("--by", "by", metavar="FIELD", help="Study-area field to break every date's "
              "figures down by (writes by_area.csv with a date column), e.g. ADM1_EN.")
@click.option("--reuse/--no-reuse", default=True, show_default=True,
              help="Compute the seam of what did not move between dates once (the same "
                   "results); --no-reuse analyses every date whole.")
@_config_options
def series_cmd(config: Path | None, zones: str | None, date_field: str | None,
               by: str | None, reuse: bool, out_dir: Path, **kw) -> None:
    """Analyse dated control layers: one analysis per date and what opened and closed.

    Writes series.csv, corridors.csv, changes.gpkg, series.png and map.html into OUT
    (with --by also by_area.csv).

    \b
    Examples:
      gapmap series --zones 'fronts/zones_*.geojson' --side-a krg=peshmerga \\
          --side-b federal=isf,pmf --posts posts.geojson --out out/series
      gapmap series --config fronts.toml --by ADM1_EN --out out/series
      gapmap series --zones tracker.gpkg --date-field date --side-a ua=ua --side-b ru=ru \\
          --scheduler tcp://scheduler-host:8786 --out out/tracker
    """
    from ..series import analyze_series, by_area_series
    from ..series_render import write_series

    args = _from_scenario(config, zones, date_field, kw) if config is not None \
        else _from_options(zones, date_field, kw)
    areas = _areas(by, args["study_area"]) if by else None
    bar = _Bar("series")
    try:
        result = analyze_series(match_km=kw["match_km"], workers=kw["workers"],
                                scheduler=kw["scheduler"], progress=bar, reuse=reuse, **args)
    finally:
        bar.close()
    tables = {"by_area.csv": by_area_series(result, areas, by)} if by else None
    write_series(result, out_dir, title=kw["title"], tables=tables)
    t = result.table
    click.echo(f"{len(t)} dates, {t['date'].iloc[0]} … {t['date'].iloc[-1]}; unguarded "
               f"{t['unguarded_length_km'].iloc[0]:,.1f} → {t['unguarded_length_km'].iloc[-1]:,.1f}"
               f" km; opened {t['opened_km'].sum():,.1f} km, closed "
               f"{t['closed_km'].sum():,.1f} km in all")
    click.echo(f"Results in {out_dir}/ — open {out_dir}/map.html")


@click.command("compare")
@click.option("--before", required=True, type=_FILE, help="Zones at the first date.")
@click.option("--after", required=True, type=_FILE, help="Zones at the second date.")
@_common_options
def compare_cmd(before: Path, after: Path, out_dir: Path, **kw) -> None:
    """What opened and closed between two control layers.

    Writes compare.csv, changes.gpkg and map.html into OUT.

    \b
    Example:
      gapmap compare --before zones_20170901.geojson --after zones_20171101.geojson \\
          --side-a krg=peshmerga --side-b federal=isf,pmf --out out/compare
    """
    from ..series import compare
    from ..series_render import write_compare
    from ..settings import parse_side

    result = compare(before, after, parse_side(kw["side_a"], "--side-a"),
                     parse_side(kw["side_b"], "--side-b"), zones_layer=kw["zones_layer"],
                     posts=kw["posts"], study_area=kw["study_area"], settings=_settings(kw),
                     dem=kw["dem"], visibility=bool(kw["visibility"]), roads=kw["roads"],
                     force_field=kw["force_field"] or "force",
                     match_km=kw["match_km"], workers=kw["workers"] or 1, scheduler=kw["scheduler"])
    write_compare(result, out_dir, title=kw["title"])
    t = result.table.set_index("field")
    click.echo(f"unguarded {t.loc['unguarded_length_km', 'before']:,.1f} → "
               f"{t.loc['unguarded_length_km', 'after']:,.1f} km; opened "
               f"{t.loc['opened_km', 'change']:,.1f} km, closed "
               f"{t.loc['closed_km', 'change']:,.1f} km")
    click.echo(f"Results in {out_dir}/ — open {out_dir}/map.html")


COMMANDS = [series_cmd, compare_cmd]
