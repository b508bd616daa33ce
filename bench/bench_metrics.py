"""Benchmark: seam + corridors (`gapmap.analyze`) on the sample and on synthetic scenes.

Peer: the textbook vector way to get a median line with GEOS — Voronoi *polygons* of the same
boundary samples (`shapely.voronoi_polygons`), dissolved per side, and the shared boundary of
the two dissolved regions — run on the same samples in the same process.

Usage: python bench/bench_metrics.py [--quick]
Prints markdown tables (seconds, best of N runs).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from _util import best_of
from gapmap import Settings, analyze, parse_side
from gapmap.frontier import boundary_samples

ROOT = Path(__file__).resolve().parents[1]
A, B = parse_side("a=a"), parse_side("b=b")


def jagged_strip(x0: float, width: float, length: float, n: int, rng, facing: int):
    """A strip whose facing edge has n vertices of random-walk jitter (like traced borders)."""
    y = np.linspace(0, length, n)
    jitter = np.cumsum(rng.normal(0, 40, n))
    jitter -= np.linspace(jitter[0], jitter[-1], n)
    x_edge = x0 + facing * np.clip(jitter, -3000, 3000)
    back = x0 - facing * width
    ring = np.column_stack([x_edge, y])
    coords = np.vstack([ring, [[back, length], [back, 0]]])
    return shapely.make_valid(shapely.Polygon(coords))


def synthetic(vertices: int, posts: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    length = 400e3
    a = jagged_strip(450e3, 20e3, length, vertices // 2, rng, +1)
    b = jagged_strip(520e3, 20e3, length, vertices // 2, rng, -1)
    off = np.array([500e3, 3700e3])
    zones = gpd.GeoDataFrame({"force": ["a", "b"]},
                             geometry=[shapely.affinity.translate(g, 0, off[1]) for g in (a, b)],
                             crs=32638)
    px = rng.uniform(455e3, 515e3, posts)
    py = rng.uniform(0, length, posts) + off[1]
    pts = gpd.GeoDataFrame({"range_km": rng.uniform(2, 6, posts)},
                           geometry=shapely.points(px, py), crs=32638)
    return zones, pts


def peer_voronoi_polygons(zones: gpd.GeoDataFrame, sample_m: float):
    ga = zones.geometry.values[zones["force"].to_numpy() == "a"]
    gb = zones.geometry.values[zones["force"].to_numpy() == "b"]
    xa = boundary_samples(ga, sample_m)
    xb = boundary_samples(gb, sample_m)
    pts = shapely.multipoints(np.vstack([xa, xb]))
    cells = shapely.get_parts(shapely.voronoi_polygons(pts))
    tree = shapely.STRtree(shapely.points(xa))
    owner_a = np.zeros(len(cells), bool)
    idx_cell, _ = tree.query(cells, predicate="contains")
    owner_a[idx_cell] = True
    ra = shapely.union_all(cells[owner_a])
    rb = shapely.union_all(cells[~owner_a])
    return shapely.intersection(ra.boundary, rb.boundary)


def cli_vs_voronoi(vertices: int = 50_000, posts: int = 1000, repeat: int = 3) -> None:
    """The whole `gapmap metrics` command (read files, analyse, write every output) on the
    jagged scene against `scipy.spatial.Voronoi` of the same 100 m boundary samples,
    alternately in this process (best of ``repeat`` each)."""
    import tempfile

    from click.testing import CliRunner
    from scipy.spatial import Voronoi

    from gapmap.cli import main as cli

    zones, pts = synthetic(vertices, posts)
    area = gpd.GeoDataFrame(geometry=[shapely.box(440e3, 3700e3, 530e3, 4100e3)], crs=32638)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        zones.to_file(d / "zones.gpkg")
        pts.to_file(d / "posts.gpkg")
        area.to_file(d / "area.gpkg")
        args = ["metrics", "--zones", str(d / "zones.gpkg"), "--side-a", "a=a", "--side-b",
                "b=b", "--posts", str(d / "posts.gpkg"), "--study-area", str(d / "area.gpkg"),
                "--out", str(d / "out")]
        samples = boundary_samples(zones.geometry.values, 100.0)
        t_cli, t_vor = [], []
        for _ in range(repeat):
            t0 = time.perf_counter()
            res = CliRunner().invoke(cli, args)
            t_cli.append(time.perf_counter() - t0)
            assert res.exit_code == 0, res.output
            t0 = time.perf_counter()
            Voronoi(samples)
            t_vor.append(time.perf_counter() - t0)
    a, b = min(t_cli), min(t_vor)
    print(f"| zone vertices | posts | `gapmap metrics` CLI (s) | scipy Voronoi of the "
          f"{len(samples):,} samples (s) | ratio |\n|---:|---:|---:|---:|---:|\n"
          f"| {vertices:,} | {posts:,} | {a:.2f} | {b:.2f} | {a / b:.2f}× |")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cli", action="store_true",
                    help="only the metrics command against its Voronoi floor")
    args = ap.parse_args()
    if args.cli:
        warnings.simplefilter("ignore")
        cli_vs_voronoi(repeat=1 if args.quick else 3)
        return 0
    repeat = 1 if args.quick else 3
    warnings.simplefilter("ignore")
    rows = []
    sample = ROOT / "geodata" / "scenario.toml"
    if sample.exists():
        from gapmap.scenario import load_scenario, run_scenario
        import dataclasses

        sc = dataclasses.replace(load_scenario(sample), incidents=None, dem=None)
        t = best_of(lambda: run_scenario(sc), repeat)
        z = gpd.read_file(sc.zones)
        nv = int(shapely.get_num_coordinates(z.geometry.values).sum())
        rows.append(("sample (geodata/)", nv, len(gpd.read_file(sc.posts)), t))
    grid = [(25_000, 1000), (50_000, 1000), (100_000, 1000), (100_000, 100), (100_000, 10_000)]
    if args.quick:
        grid = grid[:1]
    peer_rows = []
    for nv, npost in grid:
        zones, posts = synthetic(nv, npost)
        area = gpd.GeoDataFrame(geometry=[shapely.box(440e3, 3700e3, 530e3, 4100e3)], crs=32638)
        t = best_of(lambda: analyze(zones, A, B, posts=posts, study_area=area,
                                    sample_m=100.0), repeat)
        rows.append((f"synthetic, {npost} posts", nv, npost, t))
        if npost == 1000:
            t0 = time.perf_counter()
            try:
                peer_voronoi_polygons(zones, 100.0)
                peer_rows.append((nv, t, time.perf_counter() - t0, None))
            except Exception as exc:  # the peer's known fragility is part of the result
                peer_rows.append((nv, t, time.perf_counter() - t0, type(exc).__name__))
    print("| scene | zone vertices | posts | gapmap analyze (s) |")
    print("|---|---:|---:|---:|")
    for name, nv, npost, t in rows:
        print(f"| {name} | {nv:,} | {npost if isinstance(npost, str) else f'{npost:,}'} | {t:.2f} |")
    print()
    print("| zone vertices (1,000 posts) | gapmap analyze, whole pipeline (s) | "
          "peer: GEOS Voronoi polygons, seam only (s) | peer / gapmap |")
    print("|---:|---:|---:|---:|")
    for nv, t, tp, failed in peer_rows:
        if failed:
            print(f"| {nv:,} | {t:.2f} | failed after {tp:.2f} s ({failed}) | – |")
        else:
            print(f"| {nv:,} | {t:.2f} | {tp:.2f} | {tp / t:.2f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
