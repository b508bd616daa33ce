"""`gapmap terrain` (slope, TRI, hillshade rasters) and `gapmap dem` (tiles → one COG)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import click

from ._common import ProgressBar, max_memory_option

__all__ = ["COMMANDS"]


def scale_options(func: Callable) -> Callable:
    """--tile-cells, --max-memory-gb, --workers and --scheduler of the tiled raster commands
    (the last two as for `gapmap series`)."""
    opts = [
        click.option("--tile-cells", type=click.IntRange(min=16), default=None,
                     help="Tile size in cells across [the largest of 2048, 1024, 512 that "
                          "fits]; the result does not depend on it."),
        max_memory_option,
        click.option("--workers", type=click.IntRange(min=1), default=None,
                     help="Local processes for the tiles [1: this process, all its threads]."),
        click.option("--scheduler", metavar="ADDRESS",
                     help="An existing dask.distributed scheduler, e.g. tcp://host:8786 "
                          "(every worker must reach the DEM's path)."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


@click.command("terrain")
@click.option("--dem", "dem_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="DEM GeoTIFF (any CRS; nodata respected).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (created if needed).")
@scale_options
def terrain_cmd(dem_path: Path, out_dir: Path, tile_cells: int | None,
                max_memory_gb: float | None, workers: int | None, scheduler: str | None) -> None:
    """Slope (degrees, Horn), TRI (Riley, metres) and hillshade on the DEM's grid.

    Writes slope.tif, tri.tif and hillshade.tif (COGs) into OUT with the DEM's CRS, transform
    and size; cells on the edge or next to nodata are nodata (as gdaldem without
    -compute_edges). Computed tile by tile (the DEM is never read whole), the tiles spread
    over Dask workers with --workers or --scheduler.

    \b
    Examples:
      gapmap terrain --dem geodata/dem.tif --out out/terrain
      gapmap terrain --dem front.tif --workers 4 --max-memory-gb 8 --out out/terrain
    """
    from ..terrain import write_derivatives

    with ProgressBar(1, "terrain") as bar:
        bar("slope, TRI, hillshade")
        paths = write_derivatives(dem_path, out_dir, tile_cells=tile_cells,
                                  max_memory_gb=max_memory_gb, workers=workers or 1,
                                  scheduler=scheduler)
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
