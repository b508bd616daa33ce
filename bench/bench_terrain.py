"""Benchmark: gapmap's slope / TRI / hillshade against gdaldem on the same 4000×4000 DEM.

Run: ``python bench/bench_terrain.py [--size 4000] [--repeat 3]``. Prints one markdown table
row per derivative (best of ``--repeat`` runs each; gdaldem's time includes writing its
GeoTIFF, gapmap's is the in-memory array), the largest difference between the two, and an
end-to-end row (read + three GeoTIFFs written) against the sum of the three gdaldem runs.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from _util import best_of
from gapmap.terrain import hillshade, read_dem, slope, tri, write_derivatives


def make_dem(path: Path, size: int, seed: int = 1) -> None:
    """Rugged synthetic terrain (sum of random sine waves + noise), 30 m cells, UTM 38N."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    z = np.full((size, size), 600.0, np.float32)
    for _ in range(6):
        kx, ky = rng.uniform(0.002, 0.05, 2)
        z += rng.uniform(20, 200) * np.sin(kx * x + rng.uniform(0, 6)) * np.cos(ky * y)
    z += rng.normal(0, 3, z.shape).astype(np.float32)
    z[size // 3:size // 3 + 50, size // 2:size // 2 + 80] = -9999  # a nodata hole
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=1,
                       dtype="float32", crs="EPSG:32638", nodata=-9999, tiled=True,
                       transform=Affine(30, 0, 400000, 0, -30, 3900000)) as dst:
        dst.write(z, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    gdaldem = shutil.which("gdaldem")
    if gdaldem is None:
        raise SystemExit("gdaldem not found: install gdal-bin")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "dem.tif"
        make_dem(src, args.size)
        t_read = best_of(lambda: read_dem(src), args.repeat)
        dem = read_dem(src)
        print(f"{args.size}×{args.size} DEM, {platform.machine()}, read_dem {t_read:.2f} s\n")
        print("| derivative | cells | gapmap (s) | gdaldem (s) | ratio | max abs diff |")
        print("|---|---|---|---|---|---|")
        gdal_total = 0.0
        for name, func in (("slope", slope), ("TRI", tri), ("hillshade", hillshade)):
            out = Path(tmp) / f"{name}.tif"
            mine = func(dem)
            t_mine = best_of(lambda f=func: f(dem), args.repeat)
            cmd = [gdaldem, name, str(src), str(out), "-q"]
            t_gdal = best_of(lambda c=cmd: subprocess.run(c, check=True), args.repeat)
            with rasterio.open(out) as r:
                ref = r.read(1, masked=True)
            ok = ~np.ma.getmaskarray(ref)
            diff = np.abs(mine[ok].astype(float) - ref.data[ok].astype(float)).max()
            print(f"| {name} | {args.size}×{args.size} | {t_mine:.2f} | {t_gdal:.2f} | "
                  f"{t_mine / t_gdal:.2f} | {diff:.3g} |")
            gdal_total += t_gdal
        # end to end: read + three GeoTIFFs written, against the three gdaldem runs
        t_all = best_of(lambda: write_derivatives(src, Path(tmp) / "mine"), args.repeat)
        print(f"| all three, files written | {args.size}×{args.size} | {t_all:.2f} | "
              f"{gdal_total:.2f} | {t_all / gdal_total:.2f} | |")


if __name__ == "__main__":
    main()
