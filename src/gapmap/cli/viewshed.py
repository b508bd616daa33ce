"""`gapmap coverage`: what a set of posts can see over a DEM."""

from __future__ import annotations

from pathlib import Path

import click

from .terrain import scale_options

__all__ = ["COMMANDS"]


@click.command("coverage")
@click.option("--dem", "dem_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="DEM GeoTIFF (any CRS; nodata respected; lon/lat is reprojected to metres).")
@click.option("--posts", "posts_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Posts (points; optional range_km and height_m fields override the defaults).")
@click.option("--posts-layer", help="Layer name in a multi-layer posts source.")
@click.option("--range-km", type=float, default=5.0, show_default=True,
              help="Viewing range of posts without a range_km value.")
@click.option("--height-m", type=float, default=10.0, show_default=True,
              help="Observer height above ground of posts without a height_m value.")
@click.option("--target-height-m", type=float, default=2.0, show_default=True,
              help="Height above ground of what must be seen.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output COG: band 1 visible from any post (0/1), band 2 number of posts.")
@scale_options
def coverage_cmd(dem_path: Path, posts_path: Path, posts_layer: str | None, range_km: float,
                 height_m: float, target_height_m: float, out_path: Path, tile_cells: int | None,
                 max_memory_gb: float | None, workers: int | None,
                 scheduler: str | None) -> None:
    """Visibility coverage of many posts: per-post viewsheds, their union and their count.

    Line of sight as gdal_viewshed computes it (observer at the centre of its cell, target
    height above ground, Earth curvature with refraction coefficient 1/7), on the DEM's grid.
    Computed tile by tile in bounded memory (a projected DEM is never read whole), the tiles
    spread over Dask workers with --workers or --scheduler; refused when the memory formula
    of docs/scale.md exceeds --max-memory-gb.

    \b
    Examples:
      gapmap coverage --dem geodata/dem_synthetic.tif --posts geodata/posts.geojson \\
          --range-km 5 --height-m 10 --out out/coverage.tif
      gapmap coverage --dem front.tif --posts posts.gpkg --range-km 15 \\
          --scheduler tcp://scheduler-host:8786 --max-memory-gb 4 --out out/coverage.tif
    """
    from ..io import load_posts
    from ..viewshed import write_coverage

    posts = load_posts(posts_path, layer=posts_layer, default_range_km=range_km,
                       default_height_m=height_m)
    cov = write_coverage(dem_path, posts, out_path, range_km=range_km, height_m=height_m,
                         target_height_m=target_height_m, tile_cells=tile_cells,
                         max_memory_gb=max_memory_gb, workers=workers or 1,
                         scheduler=scheduler, progress=True)
    click.echo(f"posts computed: {cov.posts_used} of {len(posts)}")
    click.echo(f"visible from at least one post: {cov.visible_area_km2:,.1f} km² "
               f"({100 * cov.visible_share:.1f}% of the DEM)")
    click.echo(f"most posts seeing one cell: {cov.max_count}")
    click.echo(f"tiles: {cov.tiles} of {cov.tile_cells} cells, memory about "
               f"{cov.memory_bytes / 1e9:.2f} GB")
    click.echo(f"coverage: {out_path}")


COMMANDS = [coverage_cmd]
