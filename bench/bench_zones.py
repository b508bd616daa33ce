"""Benchmark: many small zones (10,000 and 100,000), time and peak memory.

Each scene is N squares of 400 m on a jittered grid over a square area (about one zone per
1.4 km², sides alternating at random), two sides, no posts: the seam is a network between the
squares. Each size runs in its own process; peak RSS comes from the OS: gapmap's is the
child's ``ru_maxrss`` after the analysis (before the peer), the child's whole one comes from
``os.wait4``. The seconds per stage of each run go to stderr.

Peer: ``scipy.spatial.Voronoi`` of the same 100 m boundary samples, in the same child.

Usage: python bench/bench_zones.py [--sizes 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings

log = logging.getLogger("bench_zones")


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

    from gapmap import Run, Settings, parse_side
    from gapmap.frontier import boundary_samples

    warnings.simplefilter("ignore")
    zones = scene(n)
    cpu_stages: dict[str, float] = {}
    clock = {"stage": None, "t": time.process_time()}

    def progress(stage: str | None) -> None:
        # CPU seconds per stage: on a shared machine wall time mostly measures the queue.
        now = time.process_time()
        if clock["stage"] is not None:
            cpu_stages[clock["stage"]] = cpu_stages.get(clock["stage"], 0.0) + now - clock["t"]
        clock["stage"], clock["t"] = stage, now

    t0, c0 = time.perf_counter(), time.process_time()
    # analyze() is Run.from_layers(...).analysis; the run also keeps the seconds per stage.
    run = Run.from_layers(zones, parse_side("A=a"), parse_side("B=b"),
                          settings=Settings(max_width_km=5.0), sample_m=100.0,
                          progress=progress)
    res = run.analysis
    progress(None)
    t, c = time.perf_counter() - t0, time.process_time() - c0
    # The peak so far is gapmap's alone: Qhull's diagram of every sample, next, takes more.
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0, c0 = time.perf_counter(), time.process_time()
    Voronoi(boundary_samples(zones.geometry.values, 100.0))
    tv, cv = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"n": n, "s": t, "voronoi_s": tv, "cpu_s": c, "voronoi_cpu_s": cv,
                      "rss_kb": rss_kb,
                      "cpu_stages_s": {k: round(v, 1) for k, v in cpu_stages.items()},
                      "seam_km": res.summary["seam_length_km"],
                      "corridors": res.summary["corridors"] + res.summary["minor_corridors"],
                      "stages_s": {k: round(v, 2) for k, v in run.timings.items()}}))


def _run_child(n: int) -> tuple[int, int, str, str]:
    """Run one size in its own process: exit code, its own peak RSS (kB), stdout, stderr.

    ``os.wait4`` gives the rusage of that child alone (RUSAGE_CHILDREN would be the largest
    child so far).
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen([sys.executable, __file__, "--child", str(n)], stdout=out,
                             stderr=err, text=True)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return p.returncode, usage.ru_maxrss, out.read(), err.read()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--child", type=int)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    print("| zones | gapmap analyze, CPU (wall) s | peer: scipy Voronoi of the samples, CPU "
          "(wall) s | ratio, CPU (wall) | peak RSS, gapmap (MB) | peak RSS, with the peer (MB) "
          "| seam (km) |\n|---:|---:|---:|---:|---:|---:|---:|")
    for n in (int(v) for v in args.sizes.split(",")):
        code, rss_kb, out, err = _run_child(n)
        if code != 0:
            last = (err.strip().splitlines() or [f"exit {code}"])[-1]
            print(f"| {n:,} | failed: {last} | | | | {rss_kb / 1024:.0f} | |", flush=True)
            continue
        r = json.loads(out.strip().splitlines()[-1])
        print(f"| {n:,} | {r['cpu_s']:.1f} ({r['s']:.1f}) | {r['voronoi_cpu_s']:.1f} "
              f"({r['voronoi_s']:.1f}) | {r['cpu_s'] / r['voronoi_cpu_s']:.1f} "
              f"({r['s'] / r['voronoi_s']:.1f}) | {r['rss_kb'] / 1024:.0f} | {rss_kb / 1024:.0f} | {r['seam_km']:,.0f} |",
              flush=True)
        log.info("%d zones: CPU seconds per stage %s, wall %s; load %s", n, r["cpu_stages_s"],
                 r["stages_s"],
                 " ".join(f"{v:.1f}" for v in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
