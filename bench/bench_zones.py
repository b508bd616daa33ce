"""Benchmark: many small zones (10,000 and 100,000), time and peak memory.

Each scene is N squares of 400 m on a jittered grid over a square area (about one zone per
1.4 km², sides alternating at random), two sides, no posts: the seam is a network between the
squares. Each size runs in its own process; peak RSS comes from the OS
(``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` after that child alone).

Peer: ``scipy.spatial.Voronoi`` of the same 100 m boundary samples, in the same child.

Usage: python bench/bench_zones.py [--sizes 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings


def scene(n: int, seed: int = 0):
    import geopandas as gpd
    import numpy as np
    import shapely

    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n)))
    step = 1200.0
    i, j = np.divmod(np.arange(n), side)
    x = 400e3 + i * step + rng.uniform(-200, 200, n)
    y = 3900e3 + j * step + rng.uniform(-200, 200, n)
    boxes = shapely.box(x - 200, y - 200, x + 200, y + 200)
    force = np.where(rng.random(n) < 0.5, "a", "b")
    return gpd.GeoDataFrame({"force": force}, geometry=boxes, crs=32638)


def child(n: int) -> None:
    from scipy.spatial import Voronoi

    from gapmap import Settings, analyze, parse_side
    from gapmap.frontier import boundary_samples

    warnings.simplefilter("ignore")
    zones = scene(n)
    t0 = time.perf_counter()
    res = analyze(zones, parse_side("A=a"), parse_side("B=b"),
                  settings=Settings(max_width_km=5.0), sample_m=100.0)
    t = time.perf_counter() - t0
    t0 = time.perf_counter()
    Voronoi(boundary_samples(zones.geometry.values, 100.0))
    tv = time.perf_counter() - t0
    print(json.dumps({"n": n, "s": t, "voronoi_s": tv,
                      "seam_km": res.summary["seam_length_km"],
                      "corridors": res.summary["corridors"] + res.summary["minor_corridors"]}))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--child", type=int)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return 0
    print("| zones | gapmap analyze (s) | peer: scipy Voronoi of the samples (s) | "
          "peak RSS (MB) | seam (km) |\n|---:|---:|---:|---:|---:|")
    for n in (int(v) for v in args.sizes.split(",")):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        p = subprocess.run([sys.executable, __file__, "--child", str(n)], capture_output=True,
                           text=True)
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if p.returncode != 0:
            print(f"| {n:,} | failed: {p.stderr.strip().splitlines()[-1]} | | {rss / 1024:.0f} | |")
            continue
        r = json.loads(p.stdout.strip().splitlines()[-1])
        # ru_maxrss of children is the largest child so far: sizes run in increasing order.
        print(f"| {n:,} | {r['s']:.1f} | {r['voronoi_s']:.1f} | "
              f"{max(rss, before) / 1024:.0f} | {r['seam_km']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
