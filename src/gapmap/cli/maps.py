"""`gapmap map`, `gapmap figure` and `gapmap report`."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import (ProgressBar, analysis_options, layer_option_names,
                      scenario_from_options)

__all__ = ["COMMANDS"]

_FILE = click.Path(dir_okay=False, path_type=Path)


def _run(kw: dict, bar: ProgressBar, hex_km: float = 10.0):
    """The run of the options' scenario (each product computed once, on first use)."""
    from ..run import Run

    return Run(scenario_from_options(**kw), progress=bar, hex_km=hex_km)


def _places_option(func):
    """``--places`` here unless the shared layer options already give it (then the run reads
    it like every other layer)."""
    if "places" in layer_option_names:
        return func
    return click.option("--places", type=_FILE,
                        help="Towns (points with a name field; optional population): "
                             "permanent labels.")(func)


def _extra_layers(places: Path | None, routes: Path | None, sites: Path | None,
                  exposure: Path | None, uncertainty: Path | None) -> dict:
    """Layers read from result files given on the command line."""
    from ..maps import read_routes, read_sites, read_uncertainty

    out: dict = {}
    if places is not None:
        from ..places import load_places

        out["places"] = load_places(places)
    if routes is not None:
        out["routes"] = read_routes(routes)
    if sites is not None:
        out["placement"] = read_sites(sites)
    if exposure is not None:
        out["exposure"] = _read_exposure(exposure)
    if uncertainty is not None:
        out["uncertainty"] = read_uncertainty(uncertainty)
    return out


def _read_exposure(path: Path):
    """The road pieces and summary written by ``gapmap exposure`` (its --out folder or its
    exposure.gpkg, with the exposure.json beside it when there is one)."""
    import json
    from types import SimpleNamespace

    from ..errors import InputError
    from ..exposure import read_exposure

    pieces = read_exposure(path)
    summary = path / "exposure.json" if path.is_dir() else path.with_name("exposure.json")
    doc: dict = {}
    if summary.exists():
        try:
            doc = json.loads(summary.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(summary, None, f"not readable JSON ({exc})",
                             "give the exposure.json that gapmap exposure wrote, or remove it"
                             ) from exc
        if not isinstance(doc, dict):
            raise InputError(summary, None, "not an exposure summary",
                             "give the exposure.json that gapmap exposure wrote")
    return SimpleNamespace(pieces=pieces, summary=doc)


def _exposure_option(func):
    return click.option(
        "--exposure", "exposure_path", type=click.Path(path_type=Path),
        help="Road exposure: the output folder of `gapmap exposure` or its exposure.gpkg "
             "(exposed stretches drawn in a strong colour, with their km).")(func)


@click.command("map")
@analysis_options
@_places_option
@click.option("--out", required=True, type=_FILE, help="Output HTML file, e.g. map.html.")
@click.option("--title", help="Map title.")
@click.option("--basemap", type=click.Choice(["none", "osm"]), default="none", show_default=True,
              help="Web basemap under the layers (loaded only with --online).")
@click.option("--offline/--online", default=True, show_default=True,
              help="Offline: the page makes no network request at all (basemap off).")
@click.option("--hillshade/--no-hillshade", default=True, show_default=True,
              help="Shade the --dem under the layers.")
@click.option("--coverage", is_flag=True, help="Show what the posts see over the --dem.")
@click.option("--hotspots", is_flag=True, help="Gi* hot and cold spots of the --incidents.")
@click.option("--hex-km", type=float, default=10.0, show_default=True,
              help="Hexagon spacing for --hotspots, km.")
@click.option("--routes", "routes_file", type=_FILE,
              help="Walking routes written by `gapmap routes` (.geojson or .gpkg).")
@click.option("--sites", "sites_path", type=click.Path(path_type=Path),
              help="New-post sites: the output folder of `gapmap place` or its sites.geojson.")
@_exposure_option
@click.option("--uncertainty", "uncertainty_dir", type=click.Path(path_type=Path),
              help="Output folder of `gapmap uncertainty`: the seam coloured by the chance "
                   "it is unguarded, figures with 90% ranges.")
def map_cmd(out: Path, title: str | None, basemap: str, offline: bool, hillshade: bool,
            coverage: bool, hotspots: bool, hex_km: float, routes_file: Path | None,
            sites_path: Path | None, exposure_path: Path | None,
            uncertainty_dir: Path | None, **kw) -> None:
    """Interactive map: one self-contained HTML file that works offline.

    Layers (each can be switched on and off): zones by force, the seam, unguarded corridors
    coloured by length, the gap region, posts and their ranges, incidents (with a month
    slider; counted per hexagon when there are very many), hillshade, visibility coverage,
    hot spots, and a light reference layer (study-area outlines, rivers and lakes) with
    place names that thin out as you zoom out. Results of other commands can be drawn on
    it: --routes, --sites, --exposure and --uncertainty. The attribution line credits the
    run's sources and licences.

    \b
    Example:
      gapmap map --config geodata/scenario.toml --out out/map.html --title "Disputed areas"
      gapmap map --config geodata/scenario.toml --sites out/place \\
          --uncertainty out/uncertainty --out out/map.html
    """
    from ..maps import make_map, save_map

    places = None if "places" in layer_option_names else kw.pop("places", None)
    extra = _extra_layers(places, routes_file, sites_path, exposure_path, uncertainty_dir)
    with ProgressBar(10, "map") as bar:
        run = _run(kw, bar, hex_km=hex_km)
        result = run.analysis
        layers = run.map_layers(hillshade=hillshade, coverage=coverage, hotspots=hotspots)
        layers.update(extra)
        m = run.timed("map", lambda: make_map(result, title=title, basemap=basemap,
                                              offline=offline, **layers))
        path = run.timed("writing", lambda: save_map(m, out))
    click.echo(f"Map written to {path} ({path.stat().st_size / 1e6:.1f} MB)")


@click.command("figure")
@analysis_options
@click.option("--out", required=True, type=_FILE, help="Output image: .png, .pdf or .svg.")
@click.option("--title", help="Figure title.")
@click.option("--dpi", type=click.IntRange(200, 1200), default=200, show_default=True,
              help="Resolution (print quality: 200 or more).")
@click.option("--width-in", type=float, default=8.0, show_default=True,
              help="Figure width, inches (the height follows the study area's shape).")
@_exposure_option
def figure_cmd(out: Path, title: str | None, dpi: int, width_in: float,
               exposure_path: Path | None, **kw) -> None:
    """Static map for print: legend, scale bar, north arrow, corridor lengths.

    With --exposure (a gapmap exposure result) the exposed stretches of road are drawn in a
    strong colour and the legend gives their km.

    \b
    Example:
      gapmap figure --config geodata/scenario.toml --out out/map.png
      gapmap figure --config geodata/scenario.toml --exposure out/exposure --out out/map.png
    """
    from ..figures import plot_map, save_figure

    exposure = _read_exposure(exposure_path) if exposure_path is not None else None
    with ProgressBar(10, "figure") as bar:
        run = _run(kw, bar)
        result = run.analysis
        fig = run.timed("figure", lambda: plot_map(result, incidents=run.incidents, title=title,
                                                   width_in=width_in, exposure=exposure,
                                                   **run.page_layers()))
        path = save_figure(fig, out, dpi=dpi)
    click.echo(f"Figure written to {path}")


def _read_uncertainty(folder: Path):
    """The :class:`gapmap.uncertainty.Uncertainty` written by ``gapmap uncertainty`` into
    ``folder`` (its table, draws and seam probabilities read back)."""
    import geopandas as gpd
    import pandas as pd

    from ..errors import InputError
    from ..uncertainty import Uncertainty

    csv = folder / "uncertainty.csv"
    if not csv.is_file():
        raise InputError(csv, None, "not found",
                         "give --uncertainty the --out folder of gapmap uncertainty")
    table = pd.read_csv(csv)
    missing = [c for c in ("field", "p05", "p50", "p95") if c not in table.columns]
    if missing:
        raise InputError(csv, missing[0], "column not found",
                         "give the uncertainty.csv written by gapmap uncertainty")
    draws = pd.read_csv(folder / "draws.csv") if (folder / "draws.csv").is_file() \
        else pd.DataFrame()
    gpkg = folder / "unguarded_probability.gpkg"
    probs = gpd.read_file(gpkg) if gpkg.is_file() else gpd.GeoDataFrame(geometry=[])
    return Uncertainty(table=table.set_index("field"), p_unguarded=probs, draws=draws)


def _area_ranges(table, folder: Path | None, by: str):
    """The breakdown with the per-area ranges of the uncertainty run, when it has them for
    ``by`` (its by_area.csv)."""
    import pandas as pd

    path = None if folder is None else folder / "by_area.csv"
    if path is None or not path.is_file():
        return table
    runs = pd.read_csv(path)
    cols = [c for c in runs.columns if c.startswith("unguarded_length_km_p")]
    if by not in runs.columns or not cols:
        return table
    # Names read back from CSV are text: match on text on both sides.
    runs = runs.assign(_key=runs[by].astype(str))[["_key"] + cols]
    return table.assign(_key=table[by].astype(str)).merge(runs, on="_key", how="left") \
        .drop(columns="_key")


@click.command("report")
@analysis_options
@click.option("--out", required=True, type=_FILE, help="Output HTML file, e.g. report.html.")
@click.option("--title", help="Report title.")
@click.option("--uncertainty", "uncertainty_dir", metavar="DIR",
              type=click.Path(file_okay=False, path_type=Path),
              help="Output folder of gapmap uncertainty: the headline figures show their 90% "
                   "range.")
@click.option("--by", "by", metavar="FIELD",
              help="Study-area field to break the figures down by, e.g. ADM1_EN: a table of "
                   "the areas.")
@_exposure_option
def report_cmd(out: Path, title: str | None, uncertainty_dir: Path | None, by: str | None,
               exposure_path: Path | None, **kw) -> None:
    """One-page HTML report: summary, corridor table, map, incidents by month.

    The page is self-contained (figures inlined) and can be mailed or printed as it is.
    With --uncertainty (the folder of a gapmap uncertainty run on the same inputs) each
    headline figure shows its 90% range; with --by FIELD a table lists the areas with their
    unguarded seam, share and incidents (the printed page keeps the 8 with the most unguarded
    seam). With --exposure (a gapmap exposure result) the map draws the exposed stretches of
    road and a block gives the road, reachable, seen and exposed km.

    \b
    Example:
      gapmap report --config geodata/scenario.toml --by ADM1_EN \\
          --uncertainty out/uncertainty --exposure out/exposure --out out/report.html
    """
    from ..by_area import areas_of_scenario, breakdown
    from ..report import write_report

    unc = _read_uncertainty(uncertainty_dir) if uncertainty_dir is not None else None
    exposure = _read_exposure(exposure_path) if exposure_path is not None else None
    scenario = scenario_from_options(**kw)
    areas = areas_of_scenario(scenario, by) if by else None
    with ProgressBar(10, "report") as bar:
        from ..run import Run

        run = Run(scenario, progress=bar)
        result = run.analysis
        table = None
        if areas is not None:
            table = run.timed("by area", lambda: breakdown(result, areas, by))
            table = _area_ranges(table, uncertainty_dir, by)
        path = run.timed("report", lambda: write_report(result, out, incidents=run.incidents,
                                                        monthly=run.monthly, title=title,
                                                        uncertainty=unc, by_area=table,
                                                        exposure=exposure,
                                                        **run.page_layers()))
    click.echo(f"Report written to {path}")


COMMANDS = [map_cmd, figure_cmd, report_cmd]
