"""`gapmap metrics` and `gapmap demo`."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from ._common import ProgressBar, analysis_options, max_memory_option, scenario_from_options

__all__ = ["COMMANDS"]


@click.command("metrics")
@analysis_options
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (created if needed).")
@click.option("--by", "by", metavar="FIELD",
              help="Study-area field to break the figures down by (writes by_area.csv), e.g. "
                   "ADM1_EN.")
@click.option("--uncertainty", "uncertainty_dir", metavar="DIR",
              type=click.Path(file_okay=False, path_type=Path),
              help="Output folder of gapmap uncertainty on the same inputs: the summary shows "
                   "each figure's 90% range.")
@click.option("--profile", is_flag=True, help="Log the seconds each stage takes.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Local processes for the incidents when there are more than 500,000 "
                   "(dask-geopandas partitions of 500,000); 1 runs in this process.")
@click.option("--scheduler", metavar="ADDRESS",
              help="An existing dask.distributed scheduler for the incidents, e.g. "
                   "tcp://host:8786 (more than 500,000 incidents).")
@max_memory_option
def metrics_cmd(out_dir: Path, profile: bool, by: str | None = None, workers: int = 1,
                scheduler: str | None = None, uncertainty_dir: Path | None = None,
                max_memory_gb: float | None = None, **kw) -> None:
    """Seam, unguarded corridors and gap region between two sides.

    Writes corridors.csv, corridors.geojson, seam.geojson, gap.geojson, summary.json and
    gapmap.gpkg into OUT (with --by also by_area.csv and, with incidents,
    admin_mismatches.csv), and prints a summary; with --uncertainty DIR (a gapmap uncertainty
    run) the summary adds each figure's 90% range. The crossing searches (with --dem) run on
    groups of overlapping corridors whose windows fit --max-memory-gb (the crossing_hours of
    one search over all; docs/scale.md); a corridor whose own window does not fit is refused.

    \b
    Example:
      gapmap metrics --zones zones.geojson --side-a krg=peshmerga \\
          --side-b federal=isf,pmf --posts posts.geojson --study-area districts.geojson \\
          --out out/run1
    """
    from ..by_area import admin_check, areas_of_scenario, breakdown
    from ..outputs import format_summary, write_metrics
    from ..run import Run

    unc = None
    if uncertainty_dir is not None:  # read first: a wrong folder stops before any work
        from ..maps import read_uncertainty

        unc = read_uncertainty(uncertainty_dir)
    scenario = scenario_from_options(**kw)
    areas = areas_of_scenario(scenario, by) if by else None
    table = mismatches = None
    _profile_logging(profile)
    with ProgressBar(8, "metrics") as bar:
        run = Run(scenario, progress=bar, profile=profile, workers=workers, scheduler=scheduler,
                  max_memory_gb=max_memory_gb)
        result = run.analysis
        if areas is not None:
            table = breakdown(result, areas, by)
            result, mismatches = admin_check(result, areas, by)
        # one atomic step for every file of the run (by_area.csv included)
        tables = {"by_area.csv": table, "admin_mismatches.csv": mismatches}
        run.timed("writing", lambda: write_metrics(result, out_dir, tables=tables))
    click.echo(format_summary(result))
    if unc is not None:
        from ..uncertainty import format_ranges

        click.echo("")
        click.echo(format_ranges(result.summary, unc, str(uncertainty_dir)))
    if mismatches is not None:
        click.echo(f"  events whose stated {by} is not where they lie: {len(mismatches)} "
                   "(admin_mismatches.csv)")
    click.echo(f"\nResults in {out_dir}/")


@click.command("demo")
@click.option("--out", "out_dir", default=Path("out/demo"), show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--data", "data_dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Sample data folder [the geodata/ folder of the gapmap source tree].")
@click.option("--quick", is_flag=True, help="Skip the terrain and placement steps.")
@click.option("--profile", is_flag=True, help="Log the seconds each stage takes.")
@click.option("--skip", "skip", default=None, metavar="STAGES",
              help="Leave out stages, comma separated: uncertainty, series, exposure, by-area "
                   "(all four: what the first demo ran).")
def demo_cmd(out_dir: Path, data_dir: Path | None, quick: bool, profile: bool,
             skip: str | None) -> None:
    """Run the whole analysis on the shipped sample of Iraq's disputed territories.

    The force layout of the sample is illustrative, not an assessment; its terrain is synthetic.
    """
    from ..demo import parse_skip, run_demo

    skipped = parse_skip(skip)  # a bad name ends here, before any work
    _profile_logging(profile)
    with ProgressBar(16, "demo") as bar:
        result = run_demo(out_dir, data_dir=data_dir, quick=quick, progress=bar,
                          profile=profile, skip=skipped)
    from ..outputs import format_summary

    click.echo(format_summary(result.analysis))
    click.echo("")
    for name, path in sorted(result.files.items()):
        click.echo(f"  {name:<22} {path}")
    click.echo(f"\nResults in {out_dir}/ — open {out_dir}/map.html or {out_dir}/report.html"
               if "map.html" in result.files else f"\nResults in {out_dir}/")


def _profile_logging(profile: bool) -> None:
    """With --profile, show the stage timings (INFO) even without -v."""
    if profile:
        logger = logging.getLogger("gapmap.run")
        logger.setLevel(logging.INFO)
        logging.getLogger("gapmap.demo").setLevel(logging.INFO)


COMMANDS = [metrics_cmd, demo_cmd]
