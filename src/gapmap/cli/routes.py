"""`gapmap routes`: least-time walking routes (Tobler) over a DEM."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import InputError

__all__ = ["COMMANDS"]

_PATH = click.Path(dir_okay=False, path_type=Path)


@click.command("routes")
@click.option("--dem", required=True, type=_PATH, help="DEM GeoTIFF (any CRS).")
@click.option("--from", "origins", required=True, type=_PATH,
              help="Origins (points), e.g. hideouts or crossing points.")
@click.option("--to", "targets", required=True, type=_PATH,
              help="Targets (points), e.g. towns or roads.")
@click.option("--pairs", type=click.Choice(["all", "zip"]), default="all", show_default=True,
              help="all: every origin to every target; zip: the i-th origin to the i-th target.")
@click.option("--id-field", default=None,
              help="Field naming the points [name or id when present, else the row number].")
@click.option("--posts", type=_PATH, default=None,
              help="Posts (points; optional range_km, height_m): ground they see costs more.")
@click.option("--visible-penalty", type=float, default=None,
              help="Time multiplier in cells seen from --posts (≥ 1) [3].")
@click.option("--range-km", type=float, default=5.0, show_default=True,
              help="Range of posts without their own range_km.")
@click.option("--height-m", type=float, default=10.0, show_default=True,
              help="Observer height of posts without their own height_m.")
@click.option("--target-height-m", type=float, default=2.0, show_default=True,
              help="Height above ground a post must see.")
@click.option("--margin-km", type=float, default=None,
              help="Read the DEM this far around the points [half their extent, ≥ 10 km].")
@click.option("--out", "out", required=True, type=_PATH,
              help="Output routes (.geojson in lon/lat; .gpkg or other formats keep the DEM's "
                   "CRS).")
def routes_cmd(dem: Path, origins: Path, targets: Path, pairs: str, id_field: str | None,
               posts: Path | None, visible_penalty: float | None, range_km: float,
               height_m: float, target_height_m: float, margin_km: float | None,
               out: Path) -> None:
    """Least-time walking routes between points over a DEM (Tobler's hiking function).

    Speed is 6·exp(−3.5·|tan θ + 0.05|) km/h with the slope taken along the direction of
    travel, so climbing and descending differ. With --posts, time in ground the posts can
    see is multiplied by --visible-penalty (default 3), so routes keep out of view where
    the detour is worth it. Writes one line per origin–target pair with hours, walk_hours,
    km, climb_m and exposed_km, and prints a table.

    \b
    Example:
      gapmap routes --dem geodata/dem_synthetic.tif --from hideouts.geojson \\
          --to towns.geojson --posts geodata/posts.geojson --out out/routes.geojson
    """
    from ..io import atomic_path
    from ..routes import walking_routes

    if visible_penalty is not None and posts is None:
        raise click.UsageError("--visible-penalty needs --posts")
    if out.suffix.lower() not in (".geojson", ".json", ".gpkg"):
        kind = out.suffix or "a file without an extension"
        raise InputError("--out", None, f"cannot write routes as {kind!r}",
                         "name the output .gpkg or .geojson")
    result = walking_routes(dem, origins, targets, posts=posts, visible_penalty=visible_penalty,
                            pairs=pairs, id_field=id_field, margin_km=margin_km,
                            range_km=range_km, height_m=height_m,
                            target_height_m=target_height_m, progress=True)
    geojson = out.suffix.lower() in (".geojson", ".json")
    layer = result.to_crs(4326) if geojson else result  # GeoJSON is lon/lat by definition
    with atomic_path(out) as tmp:  # the temporary file keeps the suffix: driver from it
        if geojson:
            layer.to_file(tmp, driver="GeoJSON")
        else:  # name the layer after the output, not the temporary file
            layer.to_file(tmp, layer=out.stem)
    cols = ["origin", "target", "hours", "walk_hours", "km", "climb_m", "exposed_km"]
    table = result[cols].copy()
    if table["exposed_km"].isna().all():
        table = table.drop(columns="exposed_km")
    click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    click.echo(f"\n{len(result)} route(s) written to {out}")


COMMANDS = [routes_cmd]
