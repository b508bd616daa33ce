"""Memory per Dask worker: a series of dates and a tiled coverage on a LocalCluster.

Measured for the worked example of docs/scale.md (a 700-date series, a 100M-cell coverage on a
cluster): a :class:`distributed.LocalCluster` of ``--workers`` single-threaded processes is
started here and reached by its address, as ``--scheduler`` reaches a remote one; after each
run every worker reports its own peak RSS (``VmHWM`` of /proc/self/status, from the OS) and its
RSS when idle. Each run gets a fresh cluster, so a peak belongs to that run.

- series: the dated fronts of bench/bench_series.py (one jagged front of ``--vertices``
  vertices), ``analyze_series`` over ``--dates`` dates, twice (N and 2N dates) to show that
  a worker's peak does not grow with the number of dates;
- coverage: ``write_coverage`` of ``--posts`` posts × 15 km on a fractal DEM of ``--cells``²
  (bench/bench_viewshed.py's), tiles of 1024, against the memory formula's figure per worker.

Usage: python bench/bench_workers.py [--dates 4] [--vertices 5000] [--cells 3000]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from _util import ROOT, vm_kb  # noqa: F401 - ROOT puts the repository on sys.path


def on_cluster(workers: int, fn):
    """``fn(address)`` on a fresh LocalCluster; (seconds, result, idle MB, peak MB per
    worker and, last, of this process: the client, which also runs the scheduler)."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=":0", silence_logs=logging.ERROR)
    client = Client(cluster)
    try:
        idle = [v / 1024 for v in client.run(vm_kb, "VmRSS").values()]
        with open("/proc/self/clear_refs", "w") as fh:  # this process's peak from here on
            fh.write("5")
        t = time.perf_counter()
        out = fn(cluster.scheduler_address)
        seconds = time.perf_counter() - t
        peak = [v / 1024 for v in client.run(vm_kb).values()]
        peak.append(vm_kb() / 1024)  # last: this process (the client, the scheduler)
    finally:
        client.close()
        cluster.close()
    return seconds, out, idle, peak


def series_rows(folder: Path, dates: int, vertices: int, workers: int) -> list[str]:
    from bench_series import write_layers

    from gapmap import Settings, analyze_series, parse_side

    rows = []
    for n in (dates, 2 * dates):
        sub = folder / f"series{n}"
        sub.mkdir()
        write_layers(sub, n, vertices)

        def run(address, sub=sub):
            return analyze_series(str(sub / "front_*.geojson"), parse_side("west=w"),
                                  parse_side("east=e"), study_area=str(sub / "area.geojson"),
                                  settings=Settings(reach_km=2, max_width_km=40),
                                  scheduler=address)
        s, _, idle, peak = on_cluster(workers, run)
        rows.append(f"| series, {n} dates, front of {vertices:,} vertices | {s:.1f} | "
                    f"{max(idle):,.0f} | {' / '.join(f'{p:,.0f}' for p in peak)} | — |")
    return rows


def coverage_rows(folder: Path, cells: int, posts: int, workers: int) -> list[str]:
    import geopandas as gpd
    import shapely
    from bench_viewshed import CRS, fractal_dem, post_xy, write_dem

    from gapmap.viewshed import write_coverage

    dem = folder / "dem.tif"
    write_dem(dem, fractal_dem(cells, seed=5))
    pts = gpd.GeoDataFrame(geometry=shapely.points(post_xy(cells, posts, 15.0)), crs=CRS)

    def run(address):
        return write_coverage(dem, pts, folder / "cov.tif", range_km=15.0, height_m=10.0,
                              tile_cells=1024, scheduler=address)
    s, cov, idle, peak = on_cluster(workers, run)
    return [f"| coverage, {posts:,} posts × 15 km on {cells:,}², tiles of 1024 | {s:.1f} | "
            f"{max(idle):,.0f} | {' / '.join(f'{p:,.0f}' for p in peak)} | "
            f"{cov.memory_bytes / 1e6:,.0f} |"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dates", type=int, default=4)
    ap.add_argument("--vertices", type=int, default=5_000)
    ap.add_argument("--cells", type=int, default=3_000)
    ap.add_argument("--posts", type=int, default=200)
    ap.add_argument("--only", choices=["series", "coverage"])
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "coverage"):
            rows += coverage_rows(Path(tmp), args.cells, args.posts, args.workers)
        if args.only in (None, "series"):
            rows += series_rows(Path(tmp), args.dates, args.vertices, args.workers)
    print(f"| run ({args.workers} workers) | seconds | worker idle (MB, RSS) | "
          f"peak per worker / of the client (MB, VmHWM) | formula per worker (MB) |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
