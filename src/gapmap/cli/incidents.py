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
    ``types``, ``actors``.
    """
    from ..incidents import read_incidents

    path = kw.get("incidents")
    if path is None:
        return None
    return read_incidents(path, format=kw.get("incidents_format") or "auto",
                          lat=kw.get("incidents_lat"), lon=kw.get("incidents_lon"),
                          since=kw.get("since"), until=kw.get("until"),
                          types=list(kw.get("types") or ()) or None,
                          actors=list(kw.get("actors") or ()) or None)


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
@click.option("--permutations", type=int, default=9999, show_default=True,
              help="Permutations for the Gi* p-values (more than hexagons ÷ alpha lets FDR "
                   "control find isolated hot spots).")
@click.option("--alpha", type=float, default=0.05, show_default=True,
              help="False discovery rate for hot and cold spots.")
@click.option("--include-coarse", is_flag=True,
              help="Also map incidents placed at district or province centroids.")
@click.option("--incidents-lat", help="Latitude column of a CSV [found by name].")
@click.option("--incidents-lon", help="Longitude column of a CSV [found by name].")
@click.option("--since", help="Only incidents on or after this date (YYYY-MM-DD).")
@click.option("--until", help="Only incidents on or before this date (YYYY-MM-DD).")
@incident_filter_options
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (created if needed).")
def hotspots_cmd(out_dir: Path, study_area: Path | None, hex_km: float, bandwidth_km: float,
                 cell_m: float | None, permutations: int, alpha: float, include_coarse: bool,
                 **kw: Any) -> None:
    """Kernel density, Gi* hot spots and monthly counts of incidents.

    Writes density.tif (incidents per km²), hotspots.geojson (hexagons with count, gi_z,
    p_sim, hot, cold), monthly.csv and monthly.png into OUT. Dates known only to the year
    (UCDP GED yearly files) are counted per year.

    \b
    Example:
      gapmap hotspots --incidents geodata/incidents_ucdp_ged.csv \\
          --study-area geodata/study_area.geojson --hex-km 10 --out out/hotspots
    """
    from ..hotspots import write_hotspots

    with ProgressBar(7, "hotspots") as bar:
        bar("reading incidents")
        inc = read_incidents_from_options(**kw)
        files = write_hotspots(inc, out_dir, study_area=study_area, hex_km=hex_km,
                               bandwidth_km=bandwidth_km, cell_m=cell_m,
                               permutations=permutations, alpha=alpha,
                               include_coarse=include_coarse, progress=bar)
    dropped = {k: v for k, v in inc.dropped.items() if v}
    click.echo(f"{len(inc)} incidents from {inc.source} ({inc.source_format})"
               + (f"; left out: {', '.join(f'{v} {k}' for k, v in dropped.items())}"
                  if dropped else ""))
    for name, path in sorted(files.items()):
        click.echo(f"  {name:<18} {path}")
    click.echo(f"\nResults in {out_dir}/")


COMMANDS = [hotspots_cmd]
