"""`gapmap series` against a shell loop of `gapmap metrics` over the same dated files.

The layers are shaped like a frontline tracker's: one jagged front of ``--vertices`` vertices
(default 20,000) between two sides whose separation varies along it, moving a little each day
(a 30 km stretch advances by 200 m). Both ways run in the same run, on the same files:

- the loop: ``for f in front_*.geojson; do gapmap metrics --zones $f ... ; done``;
- the series: ``gapmap series --zones 'front_*.geojson' ... --workers W``.

Prints a markdown table: wall time of each, the ratio, and the peak RSS of the largest process
(``getrusage(RUSAGE_CHILDREN)``: a Dask worker, for the series). ``--dates`` may list several
counts to report how the series time grows (the loop is run for the first count only).

    python bench/bench_series.py --dates 60 240 720 --workers 2
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

GAPMAP = str(Path(sys.executable).with_name("gapmap"))
SIDES = ["--side-a", "west=w", "--side-b", "east=e", "--reach-km", "2", "--max-width-km", "40"]


def front(vertices: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """y (m) and a jagged x (m) of a 400 km front."""
    y = np.linspace(0, 400e3, vertices)
    x = np.cumsum(rng.normal(0, 60, vertices))
    x -= np.convolve(x, np.ones(201) / 201, mode="same")  # jagged, without drifting away
    return y, x + 500e3


def write_layers(folder: Path, dates: int, vertices: int, seed: int = 1) -> list[Path]:
    rng = np.random.default_rng(seed)
    y, x = front(vertices, rng)
    gap = 3000 + 2500 * np.sin(y / 40e3)  # 0.5–5.5 km apart: some seam covered, some not
    files = []
    y0 = 5.0e6
    for d in range(dates):
        centre = rng.uniform(30e3, 370e3)
        x = x + 200 * (np.abs(y - centre) < 15e3)  # one 30 km stretch advances 200 m
        west = shapely.Polygon(np.r_[np.c_[x, y + y0], [[x.min() - 60e3, y0 + 400e3],
                                                         [x.min() - 60e3, y0]]])
        east = shapely.Polygon(np.r_[np.c_[x + gap, y + y0], [[x.max() + 60e3, y0 + 400e3],
                                                               [x.max() + 60e3, y0]]])
        gdf = gpd.GeoDataFrame({"force": ["w", "e"]}, geometry=[west, east], crs=32637)
        day = np.datetime64("2022-02-24") + d
        path = folder / f"front_{str(day).replace('-', '')}.geojson"
        gdf.to_crs(4326).to_file(path)
        files.append(path)
    area = gpd.GeoDataFrame(geometry=[shapely.box(x.min() - 20e3, y0 + 10e3, x.max() + 20e3,
                                                  y0 + 390e3)], crs=32637)
    area.to_crs(4326).to_file(folder / "area.geojson")
    return files


def timed(cmd: list[str] | str, shell: bool = False) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, shell=shell, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def peak_child_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dates", type=int, nargs="+", default=[60])
    ap.add_argument("--vertices", type=int, default=20_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-loop", action="store_true", help="Only the series.")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, n in enumerate(args.dates):
            folder = Path(tmp) / f"d{n}"
            folder.mkdir()
            files = write_layers(folder, n, args.vertices)
            area = str(folder / "area.geojson")
            loop_s = None
            if i == 0 and not args.no_loop:
                script = " ; ".join(
                    f"{GAPMAP} -q metrics --zones {f} --study-area {area} {' '.join(SIDES)} "
                    f"--out {folder}/m_{f.stem}" for f in files)
                loop_s = timed(script, shell=True)
            before = peak_child_mb()
            series_s = timed([GAPMAP, "-q", "series", "--zones", str(folder / "front_*.geojson"),
                              "--study-area", area, *SIDES, "--workers", str(args.workers),
                              "--out", str(folder / "series")])
            rows.append((n, loop_s, series_s, max(peak_child_mb(), before)))
    print(f"front of {args.vertices:,} vertices, {args.workers} workers, "
          f"{os.cpu_count()} cores\n")
    print("| dates | metrics loop (s) | series (s) | series / loop | s per date | peak RSS (MB) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n, loop_s, series_s, rss in rows:
        ratio = f"{series_s / loop_s:.2f}" if loop_s else "—"
        loop = f"{loop_s:.1f}" if loop_s else "—"
        print(f"| {n} | {loop} | {series_s:.1f} | {ratio} | {series_s / n:.2f} | {rss:.0f} |")


if __name__ == "__main__":
    main()
