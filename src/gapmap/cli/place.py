"""`gapmap place`: where K new joint posts would close the most unguarded ground."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import ProgressBar, analysis_options, scenario_from_options

__all__ = ["COMMANDS"]


@click.command("place")
@click.option("--k", "k", required=True, type=click.IntRange(min=1),
              help="Number of new posts to place.")
@click.option("--range-km", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Range of the new posts (candidates may carry their own range_km).")
@click.option("--height-m", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Observer height of the new posts above ground (with --visibility).")
@click.option("--candidates", type=click.Path(dir_okay=False, path_type=Path),
              help="Candidate sites (points; optional name, range_km, height_m). "
                   "Default: a grid along the unguarded corridors.")
@click.option("--candidate-spacing-km", type=float, default=2.0, show_default=True,
              help="Spacing of the candidate grid along the corridors.")
@click.option("--weight", type=click.Choice(["length", "incidents"]), default="length",
              show_default=True,
              help="Cover the most unguarded km, or weigh each km by its corridor's incidents "
                   "per km (needs --incidents).")
@click.option("--exact", type=click.Choice(["auto", "always", "never"]), default="auto",
              show_default=True,
              help="Integer program (proven optimum) when affordable, always, or never "
                   "(lazy greedy).")
@click.option("--time-limit-s", type=click.FloatRange(min=0, min_open=True), default=60.0,
              show_default=True, help="Time limit of the integer program.")
@analysis_options
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (created if needed).")
def place_cmd(k: int, range_km: float, height_m: float, candidates: Path | None,
              candidate_spacing_km: float, weight: str, exact: str, time_limit_s: float,
              out_dir: Path, **kw) -> None:
    """Where K new joint posts would close the most unguarded seam.

    Runs the analysis the layer options describe, then chooses K candidate sites covering the
    most unguarded seam (exactly by integer programming when affordable, else by lazy greedy
    with its guarantee). With --dem and --visibility a site covers only what it can see.
    Writes sites.geojson (EPSG:4326: rank, name, gain_km), closed.geojson (the seam the sites
    would close) and placement.json (before/after km, method, optimality, bound) into OUT.

    \b
    Example:
      gapmap place --k 4 --range-km 5 --config geodata/scenario.toml --out out/place
    """
    from ..placement import format_placement, write_placement
    from ..run import Run

    with ProgressBar(10, "place") as bar:
        run = Run(scenario_from_options(**kw), progress=bar)
        placement = run.placement(k, range_km=range_km, height_m=height_m,
                                  candidates=candidates,
                                  candidate_spacing_km=candidate_spacing_km, weight=weight,
                                  exact=exact, time_limit_s=time_limit_s)
        run.timed("writing", lambda: write_placement(placement, out_dir))
    click.echo(format_placement(placement))
    click.echo(f"\nResults in {out_dir}/")


COMMANDS = [place_cmd]
