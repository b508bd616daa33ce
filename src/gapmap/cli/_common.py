"""The ``gapmap`` command group and the options its commands share.

Commands are thin: they turn options into a :class:`gapmap.scenario.Scenario`, call the public
API and write what it returns. Bad input ends with one line on stderr and exit code 2
(``gapmap --debug …`` shows the traceback).
"""

from __future__ import annotations

import functools
import importlib
import logging
import math
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

import click

from .._version import __version__
from ..errors import GapmapError, InputError

__all__ = ["main", "analysis_options", "scenario_from_options", "analysis_from_options",
           "ProgressBar", "layer_option_names"]

log = logging.getLogger("gapmap")

#: Modules under gapmap.cli that contribute commands (each defines COMMANDS).
COMMAND_MODULES = ("metrics", "terrain", "viewshed", "routes", "incidents", "maps", "place", "series",
                   "uncertainty", "exposure")


class GapmapGroup(click.Group):
    """Click group that turns every failure into one line on stderr.

    Bad input (gapmap's :class:`~gapmap.errors.InputError` and click's usage errors) exits
    with code 2, failures to write outputs with code 1, an interrupt with 130; each distinct
    warning is printed once per run.
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.UsageError as exc:
            hint = " (see 'gapmap --help')"
            if exc.ctx is not None:
                sub = exc.ctx.command_path.split(" ")[1:]
                hint = f" (see '{' '.join(['gapmap', *sub])} --help')"
            click.echo(f"gapmap: error: {_one_line(exc.format_message())}{hint}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"gapmap: error: {_one_line(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("gapmap: interrupted", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.params.get("debug"))
        with warnings.catch_warnings():
            _shown.clear()
            try:
                return super().invoke(ctx)
            except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
                raise
            except InputError as exc:
                if debug:
                    raise
                click.echo(f"gapmap: error: {_one_line(str(exc))}", err=True)
                ctx.exit(2)
            except GapmapError as exc:
                if debug:
                    raise
                click.echo(f"gapmap: error: {_one_line(str(exc))}", err=True)
                ctx.exit(1)
            except KeyboardInterrupt:
                click.echo("gapmap: interrupted", err=True)
                ctx.exit(130)
            except SystemExit as exc:  # SIGTERM (gapmap.io turns it into SystemExit(143))
                if exc.code == 143:
                    click.echo("gapmap: terminated", err=True)
                raise
            except OSError as exc:  # a write outside gapmap.io's writers: still one line, exit 1
                if debug:
                    raise
                where = f"{exc.filename}: " if exc.filename else ""
                click.echo(f"gapmap: error: {where}{exc.strerror or exc}", err=True)
                ctx.exit(1)
            except Exception as exc:  # unexpected: one line, the traceback with --debug
                if debug:
                    raise
                first = str(exc).splitlines()[0] if str(exc) else ""
                click.echo(f"gapmap: internal error: {type(exc).__name__}: {first} "
                           "(run with --debug for the traceback)", err=True)
                ctx.exit(1)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


#: Warnings already printed in this run (each distinct one is printed once).
_shown: set[str] = set()


def _showwarning(message, category, filename, lineno, file=None, line=None):
    text = _one_line(str(message))
    if text in _shown:
        return
    _shown.add(text)
    click.echo(f"gapmap: warning: {text}", err=True)


@click.group(cls=GapmapGroup, context_settings={"help_option_names": ["-h", "--help"],
                                                 "max_content_width": 100})
@click.version_option(__version__, prog_name="gapmap")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
def main(debug: bool, verbose: int, quiet: bool) -> None:
    """gapmap: measure the unguarded ground between forces that do not cooperate.

    Start with `gapmap demo --out out/demo`, or `gapmap metrics --help`.
    """
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="gapmap: %(levelname)s: %(message)s", stream=sys.stderr)
    logging.getLogger("gapmap").setLevel(level)
    if quiet:
        warnings.simplefilter("ignore")
    else:
        warnings.simplefilter("always", UserWarning)  # _showwarning drops repeats: once per run
        warnings.showwarning = _showwarning


class ProgressBar:
    """A tqdm bar over named stages; silent when stderr is not a terminal (tests, pipes)."""

    def __init__(self, stages: int, desc: str = "gapmap") -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=stages, desc=desc, unit="step", leave=False,
                         disable=None, file=sys.stderr)
        self._started = False

    def __call__(self, name: str) -> None:
        if self._started:
            self._bar.update(1)
        self._started = True
        self._bar.set_postfix_str(name)

    def close(self) -> None:
        self._bar.update(self._bar.total - self._bar.n)
        self._bar.close()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc) -> None:
        self._bar.close()


_PATH = click.Path(dir_okay=False, path_type=Path)

#: (param names) the layer options add; commands pass them on to scenario_from_options.
layer_option_names = (
    "config", "zones", "zones_layer", "force_field", "side_a", "side_b", "posts", "posts_layer",
    "study_area", "study_area_layer", "reach_km", "max_width_km", "min_length_km", "spacing_m",
    "crs", "dem", "visibility", "roads", "incidents", "incidents_format", "incidents_lat",
    "incidents_lon", "since", "until", "margin_km", "types", "actors", "date_format",
    "places", "places_name_field",
)


def visibility_option() -> Callable:
    """``--visibility/--no-visibility``, as metrics and series define it."""
    return click.option("--visibility/--no-visibility", default=None,
                        help="Posts cover only what they can see over the DEM.")


def roads_option() -> Callable:
    """``--roads``, as metrics and series define it."""
    return click.option("--roads", type=_PATH, help="Road lines: corridors count the roads "
                                                     "crossing them (roads_crossed).")


def analysis_options(func: Callable) -> Callable:
    """Add the layer and parameter options shared by metrics, map, figure, report and place."""
    opts = [
        click.option("--config", type=click.Path(exists=False, dir_okay=False, path_type=Path),
                     help="Scenario TOML file with layers, sides and parameters; options given "
                          "here override it."),
        click.option("--zones", type=_PATH, help="Force-control zones (polygons)."),
        click.option("--zones-layer", help="Layer name in a multi-layer zones source."),
        click.option("--force-field", default=None, help="Zone field holding the force [force]."),
        click.option("--side-a", help="Side A as NAME=force1,force2 (e.g. krg=peshmerga)."),
        click.option("--side-b", help="Side B as NAME=force1,force2 (e.g. federal=isf,pmf)."),
        click.option("--posts", type=_PATH, help="Posts/checkpoints (points; optional range_km, "
                                                  "height_m)."),
        click.option("--posts-layer", help="Layer name in a multi-layer posts source."),
        click.option("--study-area", type=_PATH, help="Study area polygon(s)."),
        click.option("--study-area-layer", help="Layer name in a multi-layer study-area source."),
        click.option("--reach-km", type=float, help="How far each side guards beyond its zones [2]."),
        click.option("--max-width-km", type=float, help="Widest separation still counted as seam "
                                                        "[150]."),
        click.option("--min-length-km", type=float, help="Shorter corridors are counted apart "
                                                         "[1]."),
        click.option("--spacing-m", type=float, help="Seam sampling with visibility [250]."),
        click.option("--crs", help="Analysis CRS (projected, metres); chosen automatically if "
                                   "omitted."),
        click.option("--dem", type=_PATH, help="DEM GeoTIFF: adds slope, TRI and crossing time."),
        visibility_option(),
        roads_option(),
        click.option("--incidents", type=_PATH, help="Incidents: ACLED or UCDP GED export, CSV "
                                                      "with lat/lon, or a point layer."),
        click.option("--incidents-format", type=click.Choice(
            ["auto", "acled", "ucdp", "csv", "vector"]), default=None,
            help="Incident file format [auto]."),
        click.option("--incidents-lat", help="Latitude column of a CSV of incidents [found "
                                             "by name: lat, latitude, y]."),
        click.option("--incidents-lon", help="Longitude column of a CSV of incidents [found "
                                             "by name: lon, lng, longitude, x]."),
        click.option("--since", help="Only incidents on or after this date (YYYY-MM-DD)."),
        click.option("--until", help="Only incidents on or before this date (YYYY-MM-DD)."),
        click.option("--date-format", help="strftime layout of the incident dates when not ISO "
                                           "8601, e.g. '%d/%m/%Y'."),
        click.option("--margin-km", type=float, help="Incident assignment margin beyond half "
                                                     "the width [5]."),
        click.option("--places", type=_PATH, help="Named places (points with a name field): "
                                                   "labels, and proposed sites named after them."),
        click.option("--places-name-field", help="Field of --places holding the names [found "
                                                 "by name: name, asciiname, ADM*_EN …]."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return incident_filter_options(func)


def incident_filter_options(func: Callable) -> Callable:
    """Add ``--type`` and ``--actor`` (repeatable incident filters) to a command."""
    opts = [
        click.option("--type", "types", multiple=True, metavar="TYPE",
                     help="Only incidents of this type (ACLED event_type or sub_event_type; "
                          "UCDP state-based, non-state, one-sided). Repeatable."),
        click.option("--actor", "actors", multiple=True, metavar="NAME",
                     help="Only incidents involving this actor (whole words, either side). "
                          "Repeatable."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def scenario_from_options(**kw: Any):
    """Build a Scenario from analysis_options values (``--config`` first, options on top)."""
    from ..scenario import load_scenario, make_scenario

    values = {k: kw.get(k) for k in layer_option_names if k != "config"}
    for k in ("types", "actors"):  # click gives () for a repeatable option not used
        if not values.get(k):
            values[k] = None
    config = kw.get("config")
    if config is not None:
        scenario = load_scenario(config, **values)
    else:
        scenario = make_scenario(**{k: v for k, v in values.items() if v is not None})
    if scenario.places is not None:  # a places layer without names fails now, not mid-run
        from ..places import load_places

        load_places(scenario.places, name_field=scenario.places_name_field)
    return scenario


def analysis_from_options(progress: Callable[[str], None] | None = None, **kw: Any):
    """Run the analysis the options describe (used by every analysis command)."""
    from ..scenario import run_scenario

    return run_scenario(scenario_from_options(**kw), progress=progress)


#: Largest distance an option may give, km: no two points on Earth are further apart.
MAX_OPTION_KM = 20_000.0


def _check_numbers(ctx: click.Context, params: dict[str, Any]) -> None:
    """Refuse non-finite numbers in every option, and negative or impossible distances.

    Options in km or m (``--reach-km``, ``--height-m`` …) are lengths: 0 to 20,000 km.
    Options in s are durations ≥ 0. Each command checks its own finer limits.
    """
    opts = {p.name: (p.opts[0] if p.opts else p.name) for p in ctx.command.params}
    for name, value in params.items():
        if isinstance(value, bool) or not isinstance(value, float):
            continue
        opt = opts.get(name, f"--{name.replace('_', '-')}")
        if not math.isfinite(value):
            raise InputError(opt, None, f"must be a finite number, got {value}",
                             f"give {opt} a number")
        unit = name.rsplit("_", 1)[-1]
        limit = {"km": MAX_OPTION_KM, "m": MAX_OPTION_KM * 1000, "s": math.inf}.get(unit)
        if limit is not None and not 0 <= value <= limit:
            raise InputError(opt, None, f"must be between 0 and {limit:,.0f} {unit}, "
                             f"got {value:g}", f"give {opt} a value in that range")


def max_memory_option(func: Callable) -> Callable:
    """--max-memory-gb: memory a run may use (decimal GB, default the machine's), refused in
    one line unless a positive number (:func:`gapmap.tiles.memory_limit_bytes`)."""

    def check(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
        if value is not None:
            from ..tiles import memory_limit_bytes

            memory_limit_bytes(value)
        return value

    return click.option("--max-memory-gb", type=float, default=None, callback=check,
                        help="Memory the run may use, decimal GB [the machine's]; a run whose "
                             "formula (docs/scale.md) needs more is refused.")(func)


def _checked(callback: Callable) -> Callable:
    @functools.wraps(callback)
    def wrapper(**params: Any) -> Any:
        _check_numbers(click.get_current_context(), params)
        return callback(**params)

    return wrapper


for _name in COMMAND_MODULES:
    _mod = importlib.import_module(f"{__package__}.{_name}")
    for _cmd in getattr(_mod, "COMMANDS", []):
        if _cmd.callback is not None:
            _cmd.callback = _checked(_cmd.callback)
        main.add_command(_cmd)
