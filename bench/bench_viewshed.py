"""Benchmark: visibility coverage of many posts, gapmap vs a loop of gdal_viewshed (and GRASS
r.viewshed when installed).

Cases (synthetic fractal terrain, 30 m cells, UTM 38N, eye 10 m, target 2 m, curvature with
refraction 1/7):

  a. 100 posts × 6 km on a 2000 × 2000 DEM
  b. 500 posts × 15 km on a 5000 × 5000 DEM (25 M cells);
  c. 1,000 posts × 15 km on an 8000 × 8000 DEM (64 M cells);
  d. 2,000 posts × 15 km on a 10,000 × 10,000 DEM (100 M cells).

gapmap runs as ``gapmap coverage`` does: ``write_coverage``, tile by tile from the file into a
COG (the time includes writing it).

The gdal_viewshed loop of case b and the r.viewshed loops run on a random subset of the posts
and are extrapolated linearly to all posts (the rows say so).

Every measurement runs in its own child process so the peak memory (``ru_maxrss``) belongs to
it alone. gapmap is timed after one warm-up call on a tiny DEM (numba's compiled code is cached
on disk; the first call in a process loads it). The gdal_viewshed loop includes reading each
output back and adding it to a count raster, the work the union needs.

Usage::

    python bench/bench_viewshed.py            # all four cases, markdown rows on stdout
    python bench/bench_viewshed.py --case c --case d --no-grass   # some cases, no GRASS
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _util import own_peak_mb, peak_rss_mb

CASES = {
    "a": dict(n=2000, posts=100, range_km=6.0, subset=100, grass_subset=25),
    "b": dict(n=5000, posts=500, range_km=15.0, subset=30, grass_subset=10),
    "c": dict(n=8000, posts=1000, range_km=15.0, subset=20, grass_subset=4),
    "d": dict(n=10000, posts=2000, range_km=15.0, subset=20, grass_subset=4),
}
CELL_M = 30.0
X0, Y0 = 300_000.0, 4_000_000.0
CRS = "EPSG:32638"


def fractal_dem(n: int, seed: int = 0) -> np.ndarray:
    """Spectral-synthesis terrain (power-law spectrum, β = 3.2), 0–1500 m, float32."""
    rng = np.random.default_rng(seed)
    noise = np.fft.rfft2(rng.standard_normal((n, n)).astype(np.float32))
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.rfftfreq(n)[None, :]
    f = np.hypot(fx, fy)
    f[0, 0] = 1.0
    noise *= (f ** -1.6).astype(np.float32)
    noise[0, 0] = 0
    z = np.fft.irfft2(noise, s=(n, n)).astype(np.float32)
    z -= z.min()
    z *= 1500.0 / z.max()
    return z


def write_dem(path: Path, z: np.ndarray) -> None:
    import rasterio
    from affine import Affine

    n = z.shape[0]
    t = Affine(CELL_M, 0, X0, 0, -CELL_M, Y0 + n * CELL_M)
    with rasterio.open(path, "w", driver="GTiff", height=n, width=n, count=1, dtype="float32",
                       crs=CRS, transform=t, tiled=True, blockxsize=256, blockysize=256) as dst:
        dst.write(z, 1)


def post_xy(n: int, count: int, range_km: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    margin = min(range_km * 1000.0 / 2, n * CELL_M / 4)
    x = rng.uniform(X0 + margin, X0 + n * CELL_M - margin, count)
    y = rng.uniform(Y0 + margin, Y0 + n * CELL_M - margin, count)
    return np.column_stack([x, y])


def peak_mb(who=resource.RUSAGE_SELF) -> float:
    return peak_rss_mb(children=who == resource.RUSAGE_CHILDREN)


# ------------------------------------------------------------------------------------------
# workers (run in child processes)


def work_gapmap(dem: str, xy: np.ndarray, range_km: float) -> dict:
    import geopandas as gpd
    import shapely
    from affine import Affine

    from gapmap.viewshed import coverage, write_coverage

    tiny = (np.zeros((50, 50), np.float32), Affine(30, 0, 0, 0, -30, 1500), CRS)
    coverage(tiny, gpd.GeoDataFrame(geometry=[shapely.Point(750, 750)], crs=CRS), range_km=0.3)
    posts = gpd.GeoDataFrame(geometry=shapely.points(xy), crs=CRS)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        cov = write_coverage(dem, posts, Path(tmp) / "cov.tif", range_km=range_km,
                             height_m=10.0, target_height_m=2.0)
        seconds = time.perf_counter() - t0
    return dict(seconds=seconds, peak_mb=own_peak_mb(), visible=cov.visible_share,
                formula_mb=cov.memory_bytes / 1e6)


def work_gdal(dem: str, xy: np.ndarray, range_km: float) -> dict:
    import rasterio

    with rasterio.open(dem) as src:
        t, shape = src.transform, src.shape
    count = np.zeros(shape, np.uint16)
    md = str(range_km * 1000.0)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "vs.tif")
        t0 = time.perf_counter()
        for x, y in xy:
            subprocess.run(["gdal_viewshed", "-q", "-ox", repr(float(x)), "-oy", repr(float(y)),
                            "-oz", "10", "-tz", "2", "-md", md, "-cc", "0.85714", "-vv", "1",
                            "-iv", "0", "-ov", "0", dem, out], check=True)
            with rasterio.open(out) as src:
                a = src.read(1)
                c0 = int(round((src.transform.c - t.c) / t.a))
                r0 = int(round((src.transform.f - t.f) / t.e))
            count[r0:r0 + a.shape[0], c0:c0 + a.shape[1]] += a
        seconds = time.perf_counter() - t0
    return dict(seconds=seconds, peak_mb=max(peak_mb(), peak_mb(resource.RUSAGE_CHILDREN)))


def work_grass(dem: str, xy: np.ndarray, range_km: float) -> dict:
    grass = shutil.which("grass")
    if grass is None:
        return dict(error="GRASS GIS not installed")
    md = range_km * 1000.0
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "run.sh"
        timing = Path(tmp) / "seconds.txt"
        lines = ["set -e", f"r.external input={dem} output=dem --quiet",
                 "g.region raster=dem", "start=$(date +%s.%N)"]
        for x, y in xy:  # a region just around each post, as one would set it by hand
            lines.append(f"g.region n={y + md} s={y - md} e={x + md} w={x - md} align=dem")
            lines.append(f"r.viewshed -c -r -b input=dem output=vs coordinates={x},{y} "
                         f"observer_elevation=10 target_elevation=2 max_distance={md} "
                         "--overwrite --quiet")
        lines.append(f'echo "$(date +%s.%N) - $start" | bc > {timing}')
        script.write_text("\n".join(lines) + "\n")
        subprocess.run([grass, "--tmp-location", dem, "--exec", "bash", str(script)],
                       check=True, capture_output=True)
        seconds = float(timing.read_text())
    return dict(seconds=seconds, peak_mb=peak_mb(resource.RUSAGE_CHILDREN))


WORKERS = {"gapmap": work_gapmap, "gdal": work_gdal, "grass": work_grass}


def run_worker(kind: str, dem: Path, xy: np.ndarray, range_km: float) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".npy", delete=False) as f:
        np.save(f.name, xy)
    try:
        out = subprocess.run([sys.executable, __file__, "--worker", kind, "--dem", str(dem),
                              "--xy", f.name, "--range-km", str(range_km)],
                             check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(f.name)
    return json.loads(out.strip().splitlines()[-1])


def bench_case(name: str, folder: Path, with_grass: bool) -> list[str]:
    c = CASES[name]
    dem = folder / f"dem_{name}.tif"
    write_dem(dem, fractal_dem(c["n"], seed=ord(name)))
    xy = post_xy(c["n"], c["posts"], c["range_km"])
    subset = xy[np.random.default_rng(2).choice(len(xy), c["subset"], replace=False)]
    scale = len(xy) / len(subset)
    g = run_worker("gapmap", dem, xy, c["range_km"])
    d = run_worker("gdal", dem, subset, c["range_km"])
    gdal_s = d["seconds"] * scale
    note = "" if scale == 1 else f" (×{scale:g} from {len(subset)} posts)"
    label = f"{name}: {c['posts']} posts × {c['range_km']:g} km, {c['n']}² cells"
    rows = [f"| {label} | {g['seconds']:.2f} | {gdal_s:.1f}{note} | {gdal_s / g['seconds']:.0f}× "
            f"| {g['peak_mb']:.0f} MB (formula {g['formula_mb']:.0f} MB) / "
            f"{d['peak_mb']:.0f} MB |"]
    if with_grass:
        few = xy[np.random.default_rng(3).choice(len(xy), c["grass_subset"], replace=False)]
        r = run_worker("grass", dem, few, c["range_km"])
        if "error" in r:
            rows.append(f"| {label}, r.viewshed | — | {r['error']} | — | — |")
        else:
            scale = len(xy) / len(few)
            note = "" if scale == 1 else f" (×{scale:g} from {len(few)} posts)"
            grass_s = r["seconds"] * scale
            rows.append(f"| {label}, GRASS r.viewshed loop | {g['seconds']:.2f} | "
                        f"{grass_s:.1f}{note} | {grass_s / g['seconds']:.0f}× | "
                        f"— / {r['peak_mb']:.0f} MB |")
    dem.unlink()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=sorted(CASES), action="append")
    ap.add_argument("--no-grass", action="store_true", help="Skip GRASS r.viewshed.")
    ap.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    ap.add_argument("--dem", help=argparse.SUPPRESS)
    ap.add_argument("--xy", help=argparse.SUPPRESS)
    ap.add_argument("--range-km", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        res = WORKERS[args.worker](args.dem, np.load(args.xy), args.range_km)
        print(json.dumps(res))
        return
    if shutil.which("gdal_viewshed") is None:
        sys.exit("gdal_viewshed not found: install gdal-bin")
    print("| case | gapmap s | loop s (gdal_viewshed, or as named) | ratio | "
          "peak memory gapmap / loop |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.case or sorted(CASES):
            before = os.getloadavg()[0]
            for row in bench_case(name, Path(tmp), not args.no_grass):
                print(row, flush=True)
            # the machine's load decides the seconds; the ratios compare runs under the same
            print(f"<!-- case {name}: load average {before:.1f} before, "
                  f"{os.getloadavg()[0]:.1f} after -->", flush=True)


if __name__ == "__main__":
    main()
