"""`gapmap hotspots`.

The incident options of the analysis commands live with the other shared options in
``_common``; ``read_incidents_from_options`` turns their values into
:class:`gapmap.incidents.Incidents`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click

from ._common import ProgressBar, incident_filter_options

__all__ = ["COMMANDS", "read_incidents_from_options"]

_PATH = click.Path(dir_okay=False, path_type=Path)


def read_incidents_from_options(**kw: Any):
    """Read the incidents the options name; ``None`` without ``--incidents``.

    Accepts the keyword arguments of a command decorated with ``analysis_options``
    (others are ignored): ``incidents``, ``incidents_format``, ``since``, ``until``,
    ``types``, ``actors``, ``date_format``.
    """
    from ..incidents import read_incidents

    path = kw.get("incidents")
    if path is None:
        return None
    return read_incidents(path, format=kw.get("incidents_format") or "auto",
                          lat=kw.get("incidents_lat"), lon=kw.get("incidents_lon"),
                          since=kw.get("since"), until=kw.get("until"),
                          types=list(kw.get("types") or ()) or None,
                          actors=list(kw.get("actors") or ()) or None,
                          date_format=kw.get("date_format"))


@click.command("hotspots")
@click.option("--incidents", type=_PATH, required=True,
              help="Incidents: ACLED or UCDP GED export, CSV with lat/lon, or a point layer.")
@click.option("--incidents-format", type=click.Choice(["auto", "acled", "ucdp", "csv", "vector"]),
              default="auto", show_default=True, help="Incident file format.")
@click.option("--study-area", type=_PATH,
              help="Study area polygon(s) [the incidents' convex hull grown by one hexagon].")
@click.option("--hex-km", type=float, default=10.0, show_default=True,
              help="Distance between neighbouring hexagon centres, km.")
@click.option("--bandwidth-km", type=float, default=10.0, show_default=True,
              help="Kernel density bandwidth (Gaussian standard deviation), km.")
@click.option("--cell-m", type=float, default=None,
              help="Density cell size, m [a fifth of the bandwidth].")
@click.option("--inference", type=click.Choice(["normal", "permutation"]), default="normal",
              show_default=True,
              help="Gi* significance: the z-score's normal p-value, or a Monte Carlo test "
                   "placing the events at random (--permutations times).")
@click.option("--permutations", type=int, default=9999, show_default=True,
              help="Random placements with --inference permutation (at most 1,000,000).")
@click.option("--alpha", type=float, default=0.05, show_default=True,
              help="False discovery rate for hot and cold spots.")
@click.option("--include-coarse", is_flag=True,
              help="Also map incidents placed at district or province centroids.")
@click.option("--incidents-lat", help="Latitude column of a CSV [found by name].")
@click.option("--incidents-lon", help="Longitude column of a CSV [found by name].")
@click.option("--since", help="Only incidents on or after this date (YYYY-MM-DD).")
@click.option("--until", help="Only incidents on or before this date (YYYY-MM-DD).")
@click.option("--date-format", help="strftime layout of the incident dates when not ISO "
                                    "8601, e.g. '%d/%m/%Y'.")
@incident_filter_options
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (created if needed).")
def hotspots_cmd(out_dir: Path, study_area: Path | None, hex_km: float, bandwidth_km: float,
                 cell_m: float | None, inference: str, permutations: int, alpha: float,
                 include_coarse: bool, **kw: Any) -> None:
    """Kernel density, Gi* hot spots and monthly counts of incidents.

    Writes density.tif (incidents per km²), hotspots.geojson (hexagons with count, gi_z,
    p_value, hot, cold), monthly.csv and monthly.png into OUT. Dates known only to the year
    (UCDP GED yearly files) are counted per year; with --study-area the counts over time
    hold the incidents inside it.

    \b
    Example:
      gapmap hotspots --incidents geodata/incidents_ucdp_ged.csv \\
          --study-area geodata/study_area.geojson --hex-km 10 --out out/hotspots
    """
    from ..hotspots import hotspot_products, write_hotspot_products

    with ProgressBar(7, "hotspots") as bar:
        bar("reading incidents")
        inc = read_incidents_from_options(**kw)
        products = hotspot_products(inc, study_area=study_area, hex_km=hex_km,
                                    bandwidth_km=bandwidth_km, cell_m=cell_m, alpha=alpha,
                                    inference=inference, permutations=permutations,
                                    include_coarse=include_coarse, progress=bar)
        bar("writing")
        files = write_hotspot_products(products, out_dir)
    dropped = {k: v for k, v in inc.dropped.items() if v}
    click.echo(f"{len(inc)} incidents from {inc.source} ({inc.source_format})"
               + (f"; left out: {', '.join(f'{v} {k}' for k, v in dropped.items())}"
                  if dropped else ""))
    hexes = products.hexes
    click.echo(f"Gi* ({hexes.attrs['inference']}, FDR {alpha:g}): {hexes.attrs['n_hot']} hot "
               f"and {hexes.attrs['n_cold']} cold of {len(hexes)} hexagons")
    outside = (products.counts.attrs.get("incidents_outside_study_area", 0)
               if products.counts is not None else 0)
    if outside:
        click.echo(f"{outside} incidents outside the study area left out of monthly.csv")
    for name, path in sorted(files.items()):
        click.echo(f"  {name:<18} {path}")
    click.echo(f"\nResults in {out_dir}/")


COMMANDS = [hotspots_cmd]
