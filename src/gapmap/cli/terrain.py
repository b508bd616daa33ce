"""`gapmap terrain` (slope, TRI, hillshade rasters) and `gapmap dem` (tiles → one COG)."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import ProgressBar

__all__ = ["COMMANDS"]


@click.command("terrain")
@click.option("--dem", "dem_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="DEM GeoTIFF (any CRS; nodata respected).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (created if needed).")
def terrain_cmd(dem_path: Path, out_dir: Path) -> None:
    """Slope (degrees, Horn), TRI (Riley, metres) and hillshade on the DEM's grid.

    Writes slope.tif, tri.tif and hillshade.tif into OUT with the DEM's CRS, transform and
    size; cells on the edge or next to nodata are nodata (as gdaldem without -compute_edges).

    \b
    Example:
      gapmap terrain --dem geodata/dem.tif --out out/terrain
    """
    from ..terrain import write_derivatives

    with ProgressBar(1, "terrain") as bar:
        bar("slope, TRI, hillshade")
        paths = write_derivatives(dem_path, out_dir)
    for name, path in paths.items():
        click.echo(f"{name}: {path}")


@click.command("dem")
@click.option("--bbox", required=True, help="Area as W,S,E,N in degrees (lon/lat).")
@click.option("--tiles", required=True,
              help="Folder of SRTM .hgt/.hgt.zip or GeoTIFF tiles, or a URL/path template with "
                   "{lat} {lon} {NS} {EW} {ns} {ew} {slat} {slon} placeholders (one 1° tile per "
                   "south-west corner), e.g. https://host/{NS}{lat:02d}{EW}{lon:03d}.tif")
@click.option("--out", "out_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="Output Cloud-Optimised GeoTIFF.")
@click.option("--crs", "dst_crs", default=None,
              help="Reproject to this CRS (e.g. EPSG:32638); default: the tiles' CRS.")
def dem_cmd(bbox: str, tiles: str, out_path: Path, dst_crs: str | None) -> None:
    """Assemble a study-area DEM from tiles into one Cloud-Optimised GeoTIFF.

    Missing tiles are reported and left as nodata.

    \b
    Examples:
      gapmap dem --bbox 43.5,34.5,45.5,36.5 --tiles ~/srtm --out geodata/dem.tif
      gapmap dem --bbox 44,35,45,36 --out dem.tif --tiles \\
        'https://copernicus-dem-30m.s3.amazonaws.com/Copernicus_DSM_COG_10_{NS}{lat:02d}_00_{EW}{lon:03d}_00_DEM/Copernicus_DSM_COG_10_{NS}{lat:02d}_00_{EW}{lon:03d}_00_DEM.tif'
    """
    from ..terrain import build_dem

    with ProgressBar(1, "dem") as bar:
        bar("mosaic")
        path = build_dem(bbox, tiles=tiles, out=out_path, dst_crs=dst_crs)
    click.echo(f"DEM: {path}")


COMMANDS = [terrain_cmd, dem_cmd]
