"""Benchmark: assigning incidents to the seam (`gapmap.incidents.incident_metrics`).

Peer: a plain geopandas ``sjoin_nearest`` of the same points to the seam lines (nearest seam
feature and distance only — no width, no corridor, no ratio), run on the same points in the
same process. gapmap's figure is the whole of ``incident_metrics``: nearest seam point, width
there, assignment, corridor lookup, gap / study-area tests and the exploitation ratio.

Usage: python bench/bench_incidents.py [--n 1000000] [--quick]
Prints a markdown table (seconds, best of N runs) and checks that both give the same
distances.

``--memory`` measures gapmap alone, each run in its own child process, on the sample's seam:
``incident_metrics`` in process, and in dask-geopandas partitions on a local cluster of
``--workers`` single-threaded processes (reached by its address, as ``--scheduler`` would). The
figures are the OS's: ``VmHWM`` of /proc/<pid>/status of the child (reset once its inputs are
built, so the run's own peak is told apart from the inputs') and of each worker process.

    python bench/bench_incidents.py --memory --n 10000000 --workers 2
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from _util import best_run as best_of, vm_kb
from gapmap import analyze, parse_side
from gapmap.incidents import SeamIndex, incident_metrics

ROOT = Path(__file__).resolve().parents[1]


def sample_analysis():
    sample = ROOT / "geodata" / "scenario.toml"
    if not sample.exists():
        return None
    from gapmap.scenario import load_scenario, run_scenario

    sc = dataclasses.replace(load_scenario(sample), incidents=None, dem=None)
    return run_scenario(sc)


def synthetic_analysis(seed: int = 0):
    """Two 400 km strips with jagged facing edges (random walk), 70 km apart, 40 posts."""
    rng = np.random.default_rng(seed)
    length, n = 400e3, 20_000

    def strip(x0, facing):
        y = np.linspace(0, length, n)
        jitter = np.cumsum(rng.normal(0, 40, n))
        jitter -= np.linspace(jitter[0], jitter[-1], n)
        edge = x0 + facing * np.clip(jitter, -3000, 3000)
        coords = np.vstack([np.column_stack([edge, y + 3700e3]),
                            [[x0 - facing * 20e3, length + 3700e3],
                             [x0 - facing * 20e3, 3700e3]]])
        return shapely.make_valid(shapely.Polygon(coords))

    zones = gpd.GeoDataFrame({"force": ["a", "b"]},
                             geometry=[strip(450e3, 1), strip(520e3, -1)], crs=32638)
    posts = gpd.GeoDataFrame({"range_km": np.full(40, 5.0)},
                             geometry=shapely.points(np.column_stack(
                                 [np.full(40, 485e3), np.linspace(3710e3, 4090e3, 40)])),
                             crs=32638)
    area = gpd.GeoDataFrame(geometry=[shapely.box(420e3, 3700e3, 550e3, 4100e3)], crs=32638)
    return analyze(zones, parse_side("a=a"), parse_side("b=b"), posts=posts, study_area=area,
                   sample_m=100.0)


def reset_peak() -> None:
    """Reset this process's VmHWM to its current RSS (Linux ``clear_refs`` 5)."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def sample_events(res, n: int, seed: int = 1) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    lo, hi = np.array(shapely.bounds(res.study_area)).reshape(2, 2)
    xy = rng.uniform(lo, hi, (n, 2))
    return gpd.GeoDataFrame({"coarse": np.zeros(n, bool)}, geometry=shapely.points(xy),
                            crs=res.crs)


def memory_child(mode: str, n: int, workers: int, partition_events: int | None) -> dict:
    """One measurement (run in a child process): seconds and peak memory of
    ``incident_metrics`` on ``n`` events, in process or in partitions."""
    import json
    import time

    res = sample_analysis() or synthetic_analysis()
    pts = sample_events(res, n)
    inputs_mb = vm_kb("VmRSS") / 1024
    out = {"mode": mode, "n": n, "inputs_mb": inputs_mb}
    if mode == "process":
        reset_peak()
        t = time.perf_counter()
        m = incident_metrics(res, pts)
        out["seconds"] = time.perf_counter() - t
    else:
        import logging

        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=logging.ERROR)
        client = Client(cluster)
        # Each worker's peak since it started: a fresh process, so the peak is the run's.
        base = client.run(lambda: vm_kb("VmRSS"))
        reset_peak()
        t = time.perf_counter()
        m = incident_metrics(res, pts, scheduler=cluster.scheduler_address,
                             partition_events=partition_events)
        out["seconds"] = time.perf_counter() - t
        peaks = client.run(vm_kb)
        out["worker_idle_mb"] = [v / 1024 for v in base.values()]
        out["worker_peak_mb"] = [v / 1024 for v in peaks.values()]
        client.close()
        cluster.close()
    out["peak_mb"] = vm_kb() / 1024
    out["assigned"] = int(m.summary["incidents_assigned"])
    out["seam_vertices"] = int(shapely.get_num_coordinates(res.seam.geometry.values).sum())
    print(json.dumps(out))
    return out


def memory_rows(n: int, workers: int, partition_events: int | None) -> None:
    import json
    import os
    import subprocess

    from gapmap.partitions import PARTITION_EVENTS, partition_count

    size = partition_events or PARTITION_EVENTS
    rows = []
    for mode in ("process", "partitions"):
        cmd = [sys.executable, __file__, "--memory-child", mode, "--n", str(n),
               "--workers", str(workers), "--partition-events", str(size)]
        proc = subprocess.run(cmd, check=True, capture_output=True, text=True,
                              env={**os.environ, "PYTHONWARNINGS": "ignore"})
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"| run | events | seconds | inputs (MB, RSS) | peak of the process (MB, VmHWM) | "
          f"peak per worker (MB, VmHWM) | assigned |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if r["mode"] == "process":
            label, per = "in process", "—"
        else:
            label = (f"{partition_count(r['n'], size)} partitions of {size:,} on "
                     f"{workers} workers")
            per = " / ".join(f"{v:,.0f}" for v in r["worker_peak_mb"]) + \
                f" (idle {max(r['worker_idle_mb']):,.0f})"
        print(f"| {label} | {r['n']:,} | {r['seconds']:.1f} | {r['inputs_mb']:,.0f} | "
              f"{r['peak_mb']:,.0f} | {per} | {r['assigned']:,} |")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--memory", action="store_true",
                    help="gapmap alone: peak memory in process and in partitions on Dask")
    ap.add_argument("--workers", type=int, default=2, help="workers for --memory")
    ap.add_argument("--partition-events", type=int, default=None,
                    help="events per partition for --memory [gapmap's default]")
    ap.add_argument("--memory-child", choices=["process", "partitions"],
                    help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=1_000_000, help="incidents per scene")
    ap.add_argument("--quick", action="store_true", help="100,000 incidents, one run")
    ap.add_argument("--hotspots", action="store_true", help="also time Gi* against esda")
    ap.add_argument("--hexes", type=int, default=20_000, help="hexagons for --hotspots")
    args = ap.parse_args()
    n = 100_000 if args.quick else args.n
    if args.memory_child:
        warnings.simplefilter("ignore")
        memory_child(args.memory_child, n, args.workers, args.partition_events)
        return 0
    if args.memory:
        memory_rows(n, args.workers, args.partition_events)
        return 0
    repeat = 1 if args.quick or n >= 500_000 else 3
    warnings.simplefilter("ignore")
    scenes = []
    s = sample_analysis()
    if s is not None:
        scenes.append(("sample (geodata/)", s))
    scenes.append(("synthetic jagged strips", synthetic_analysis()))
    rows = []
    for name, res in scenes:
        rng = np.random.default_rng(1)
        lo, hi = np.array(shapely.bounds(res.study_area)).reshape(2, 2)
        xy = rng.uniform(lo, hi, (n, 2))
        pts = gpd.GeoDataFrame({"coarse": np.zeros(n, bool)}, geometry=shapely.points(xy),
                               crs=res.crs)
        seam_vertices = int(shapely.get_num_coordinates(res.seam.geometry.values).sum())
        t_full, m = best_of(lambda: incident_metrics(res, pts), repeat)
        index = SeamIndex.build(res.seam.geometry.values)
        t_near, _ = best_of(lambda: index.nearest(xy), repeat)
        seam = res.seam[[res.seam.geometry.name]]
        t_peer, joined = best_of(lambda: gpd.sjoin_nearest(pts, seam, distance_col="d"), repeat)
        d_peer = joined["d"].groupby(level=0).first().reindex(range(n)).to_numpy() / 1000
        err = float(np.nanmax(np.abs(d_peer - m.incidents["distance_km"].to_numpy())))
        rows.append((name, seam_vertices, n, t_full, t_near, t_peer, err,
                     int(m.summary["incidents_assigned"])))
    print("| scene | seam vertices | incidents | gapmap incident_metrics (s) | "
          "gapmap nearest seam point only (s) | peer: geopandas sjoin_nearest (s) | "
          "peer / gapmap (whole) | max distance difference (km) | assigned |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, nv, n_, tf, tn, tp, err, na in rows:
        print(f"| {name} | {nv:,} | {n_:,} | {tf:.2f} | {tn:.2f} | {tp:.2f} | "
              f"{tp / tf:.1f}× | {err:.1e} | {na:,} |")
    if args.hotspots:
        hotspot_rows(args.hexes)
    return 0


def hotspot_rows(n_hexes: int) -> None:
    """Gi* z-scores: gapmap (numpy/scipy) against esda's G_Local(star=True) on the same
    hexagons and libpysal weights; and the permutation test's time and peak memory."""
    import resource

    import esda
    from libpysal.weights import WSP

    from gapmap.hotspots import gi_star_hexes, gi_star_z, hex_grid, hex_neighbours

    side = float(np.sqrt(n_hexes * np.sqrt(3) / 2)) * 10e3
    hexes = hex_grid(shapely.box(0, 0, side, side), 10.0).values
    rng = np.random.default_rng(2)
    y = rng.poisson(2.0, len(hexes)).astype(float)
    t_w, w = best_of(lambda: hex_neighbours(hexes), 1)
    t_z, z = best_of(lambda: gi_star_z(y, w), 3)
    W = WSP(w).to_W(silence_warnings=True)
    t_esda, g = best_of(lambda: esda.G_Local(y, W, transform="B", star=True, permutations=0), 1)
    err = float(np.max(np.abs(z - np.asarray(g.Zs))))
    xy = rng.uniform(0, side, (20_000, 2))
    pts = gpd.GeoDataFrame(geometry=shapely.points(xy), crs=32638)
    t_perm, _ = best_of(lambda: gi_star_hexes(pts, shapely.box(0, 0, side, side), hex_km=10,
                                              crs=32638, inference="permutation",
                                              permutations=999), 1)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n| hexagons | gapmap weights + z (s) | esda G_Local z (s) | esda / gapmap | "
          f"max z difference | permutation test, 20,000 events × 999 (s) | peak RSS (MB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {len(hexes):,} | {t_w + t_z:.3f} | {t_esda:.3f} | {t_esda / (t_w + t_z):.1f}× | "
          f"{err:.1e} | {t_perm:.1f} | {rss_mb:,.0f} |")


if __name__ == "__main__":
    sys.exit(main())
