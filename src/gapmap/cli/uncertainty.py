"""`gapmap uncertainty`: the summary figures with their ranges over perturbed copies."""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path

import click

from ._common import ProgressBar, analysis_options, scenario_from_options

__all__ = ["COMMANDS"]


@click.command("uncertainty")
@analysis_options
@click.option("--draws", type=int, default=200, show_default=True,
              help="Number of perturbed copies.")
@click.option("--edge-km", type=float, default=0.0, show_default=True,
              help="Each zone's edge moves out or in by up to this much (uniform, one draw per "
                   "zone per copy).")
@click.option("--post-range-frac", type=float, default=0.0, show_default=True,
              help="Each post's range is multiplied by U[1-F, 1+F].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the draws.")
@click.option("--by", "by", metavar="FIELD",
              help="Study-area field to break the figures down by (writes by_area.csv), e.g. "
                   "ADM1_EN.")
@click.option("--force", is_flag=True, help="Allow more than 100,000 draws.")
@click.option("--workers", type=int, help="Local processes [one per core]; 1 runs in this "
                                          "process without Dask.")
@click.option("--scheduler", metavar="ADDRESS",
              help="An existing dask.distributed scheduler, e.g. tcp://host:8786.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (created if needed).")
def uncertainty_cmd(out_dir: Path, draws: int, edge_km: float, post_range_frac: float, seed: int,
                    by: str | None, force: bool, workers: int | None, scheduler: str | None,
                    **kw) -> None:
    """Ranges of the summary figures over perturbed copies of the inputs (Monte Carlo).

    Writes uncertainty.csv (p05, p50, p95, mean, base per summary field), draws.csv,
    unguarded_probability.gpkg (seam samples with p_unguarded), corridors_uncertainty.csv
    (per corridor of the unperturbed analysis: share of copies in which it stays open, its
    length's p05/p50/p95) and, with --by, by_area.csv with the ranges of every field per area
    (and admin_mismatches.csv with incidents).
    --reach-km takes a range LOW:HIGH here (drawn per copy; the unperturbed analysis uses its
    middle). Coverage is measured by reach and range; with --visibility (and --dem) a post
    covers only what it sees, as in gapmap metrics --visibility (each post's viewshed is
    computed once). No terrain fields or roads are computed.
    The copies run in batches on Dask (--workers, --scheduler); the result is the same
    however they run.

    \b
    Example:
      gapmap uncertainty --config geodata/scenario.toml --edge-km 2 \\
          --post-range-frac 0.2 --reach-km 1:3 --by ADM1_EN --out out/uncertainty
    """
    from ..by_area import admin_check, areas_of_scenario
    from ..engine import run_tasks
    from ..errors import InputError
    from ..run import Run
    from ..uncertainty import check_parameters, format_uncertainty, parse_range, simulate, \
        write_uncertainty

    reach = parse_range(kw.pop("reach_km"))
    check_parameters(draws, edge_km, post_range_frac, force)
    if workers is not None and workers < 1:
        raise InputError("--workers", None, f"must be at least 1, got {workers}",
                         "give --workers 1 to run in this process, or more for a local cluster")
    scenario = scenario_from_options(reach_km=None if reach is None else sum(reach) / 2, **kw)
    areas = areas_of_scenario(scenario, by) if by else None
    # Terrain fields and roads do not enter the summary figures: leave them out of the base
    # run (the DEM stays only for line of sight).
    scenario = dataclasses.replace(scenario, roads=None,
                                   dem=scenario.dem if scenario.visibility else None)
    with ProgressBar(10, "uncertainty") as bar:
        base = Run(scenario, progress=bar).measured
        mismatches = None
        if areas is not None:
            base, mismatches = admin_check(base, areas, by)
        result = simulate(base, draws=draws, edge_km=edge_km, post_range_frac=post_range_frac,
                          reach_km=reach if reach is not None and reach[0] < reach[1] else None,
                          seed=seed, areas=areas, by=by, force=force, progress=bar,
                          visibility=scenario.visibility,
                          run_tasks=partial(run_tasks, workers=workers, scheduler=scheduler))
        bar("writing")
        write_uncertainty(result, out_dir, mismatches=mismatches)
    click.echo(format_uncertainty(base, result))
    show = lambda t: t.to_string(index=False, float_format=lambda v: f"{v:.1f}")  # noqa: E731
    if result.corridors is not None and len(result.corridors):
        cor = result.corridors.sort_values("length_km", ascending=False).head(10)
        cor = cor.assign(p_open=(100 * cor["p_open"]).round().astype(int).astype(str) + "%")
        click.echo("")
        click.echo(show(cor[["corridor_id", "length_km", "length_km_p05", "length_km_p95",
                             "p_open"]]))
        if len(result.corridors) > 10:
            click.echo(f"  … {len(result.corridors) - 10} more in corridors_uncertainty.csv")
    if result.by_area is not None:
        cols = [c for c in (by, "unguarded_length_km", "unguarded_length_km_p05",
                            "unguarded_length_km_p95", "longest_corridor_km",
                            "longest_corridor_km_p05", "longest_corridor_km_p95")
                if c in result.by_area.columns]
        click.echo("")
        click.echo(show(result.by_area[cols]))
    if mismatches is not None:
        click.echo(f"  events whose stated {by} is not where they lie: {len(mismatches)} "
                   "(admin_mismatches.csv)")
    click.echo(f"\nResults in {out_dir}/")


# --reach-km is a range here (LOW:HIGH), a number in the other analysis commands.
for _p in uncertainty_cmd.params:
    if _p.name == "reach_km":
        _p.type = click.STRING
        _p.help = "Reach of both sides, km: a number, or a range LOW:HIGH drawn per copy."

COMMANDS = [uncertainty_cmd]
