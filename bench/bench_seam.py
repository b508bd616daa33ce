"""Benchmark: the seam of a 1,000,000-vertex control layer, tiled Voronoi, in bounded memory.

Scene: a 1,000 km front — two strips whose facing edges are random walks of 500,000 vertices
each (2 m apart, like a finely traced border), 10 km apart on average, ±3 km of jitter —
with ``max_width_km`` 30 (the belt is 4–16 km wide), 100 posts.

Each measurement runs in its own child process and reports its own peak memory (``VmHWM``
of /proc/self/status, from the OS):

- ``analyze``: the whole of ``gapmap.analyze`` (seam, widths, coverage, corridors, gap
  region); its Voronoi diagram is tiled (more than ``frontier.TILE_POINTS`` samples);
- ``tiled`` and ``whole``: ``frontier.seam_ridges`` alone on the same zones, by tiles of
  ``TILE_POINTS`` samples and as one diagram (the peer: one ``scipy.spatial.Voronoi`` of all
  samples, what gapmap did before). The two ridge sets, clipped to the width the seam keeps,
  are compared here: tiling is exact, so they must be equal.

Usage: python bench/bench_seam.py [--vertices 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

from _util import ROOT  # noqa: F401 - puts the repository on sys.path

LENGTH_M = 1_000e3
GAP_M = 10e3
MAX_WIDTH_KM = 30.0
TILE = 250_000  # frontier.TILE_POINTS, for the table
X0, Y0 = 500e3, 3_300e3


def vm_hwm_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def front(vertices: int, seed: int = 0):
    """Zones (two strips with jagged facing edges) and posts of the scene."""
    import geopandas as gpd
    import shapely

    rng = np.random.default_rng(seed)
    n = vertices // 2

    def strip(x0: float, facing: int):
        y = np.linspace(0, LENGTH_M, n)
        # Step σ 20 m every 2 m: about as rough per km as the 100k-vertex scenes of
        # bench_metrics.py (σ 40 m every 8 m); pinned to 0 at both ends, clipped to ±3 km.
        walk = np.cumsum(rng.normal(0, 20, n))
        walk -= np.linspace(walk[0], walk[-1], n)
        edge = x0 + facing * np.clip(walk, -3000, 3000)
        back = x0 - facing * 20e3
        ring = np.vstack([np.column_stack([edge, y]), [[back, LENGTH_M], [back, 0.0]]])
        return shapely.make_valid(shapely.Polygon(ring + [0, Y0]))

    zones = gpd.GeoDataFrame({"force": ["a", "b"]},
                             geometry=[strip(X0, +1), strip(X0 + GAP_M, -1)], crs=32638)
    py = rng.uniform(0, LENGTH_M, 100) + Y0
    posts = gpd.GeoDataFrame({"range_km": np.full(100, 4.0)},
                             geometry=shapely.points(np.full(100, X0 + GAP_M / 2), py),
                             crs=32638)
    return zones, posts


def child(mode: str, vertices: int, out: str | None) -> dict:
    import shapely

    from gapmap import Settings, analyze, parse_side
    from gapmap import frontier as fr

    warnings.simplefilter("ignore")
    zones, posts = front(vertices)
    nv = int(shapely.get_num_coordinates(zones.geometry.values).sum())
    res = {"mode": mode, "zone_vertices": nv}
    t = time.perf_counter()
    if mode == "analyze":
        a = analyze(zones, parse_side("a=a"), parse_side("b=b"), posts=posts,
                    settings=Settings(max_width_km=MAX_WIDTH_KM))
        res["seam_km"] = float(a.summary["seam_length_km"])
        res["unguarded_km"] = float(a.summary["unguarded_length_km"])
        res["corridors"] = int(a.summary["corridors"])
    else:
        tile = fr.TILE_POINTS if mode == "tiled" else 10**12
        calls = []
        real = fr._mixed_ridges
        fr._mixed_ridges = lambda *args: calls.append(len(args[0])) or real(*args)
        half = MAX_WIDTH_KM * 500.0
        g = zones.geometry.values
        r = fr.seam_ridges(g[:1], np.array([0]), g[1:], np.array([1]), sample_m=100.0,
                           max_dist_m=half, tile_points=tile)
        res["diagrams"] = len(calls)
        res["largest_diagram"] = max(calls)
        t0, t1 = fr.clip_to_discs(r.seg, r.gen, np.full(len(r.seg), half))
        keep = t0 < t1
        seg = fr.segment_pieces(r.seg[keep], t0[keep], t1[keep])
        np.save(out, np.column_stack([r.gen[keep], seg]))
        res["ridges_kept"] = int(keep.sum())
    res["seconds"] = time.perf_counter() - t
    res["peak_mb"] = vm_hwm_mb()
    print(json.dumps(res))
    return res


def _sorted_rows(rows: np.ndarray) -> np.ndarray:
    a, b = rows[:, 2:4], rows[:, 4:6]
    swap = (b[:, 0] < a[:, 0]) | ((b[:, 0] == a[:, 0]) & (b[:, 1] < a[:, 1]))
    rows = rows.copy()
    rows[swap, 2:6] = np.column_stack([b[swap], a[swap]])
    return rows[np.lexsort(rows.T[::-1])]


def compare(tiled: np.ndarray, whole: np.ndarray) -> tuple[float, str]:
    """Largest coordinate difference of the ridges both have (matched to 1 mm), and the count
    and total length of those only one has."""
    def keyed(rows):
        return {tuple(np.round(r, 3)): r for r in rows}
    kt, kw = keyed(tiled), keyed(whole)
    both = kt.keys() & kw.keys()
    diff = max((float(np.abs(kt[k] - kw[k]).max()) for k in both), default=0.0)

    def length(rows):
        return float(np.hypot(rows[:, 4] - rows[:, 2], rows[:, 5] - rows[:, 3]).sum()) \
            if len(rows) else 0.0
    only_t = np.array([kt[k] for k in kt.keys() - both]).reshape(-1, 6)
    only_w = np.array([kw[k] for k in kw.keys() - both]).reshape(-1, 6)
    return diff, (f"only tiled: {len(only_t)} ridges, {length(only_t):.3g} m; only one "
                  f"diagram: {len(only_w)}, {length(only_w):.3g} m; total length "
                  f"{length(tiled) / 1e3:,.3f} km tiled, {length(whole) / 1e3:,.3f} km one "
                  "diagram")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vertices", type=int, default=1_000_000)
    ap.add_argument("--ridges-only", action="store_true", help="skip gapmap analyze")
    ap.add_argument("--child", choices=["analyze", "tiled", "whole"], help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.vertices, args.out)
        return 0
    rows, saved = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        modes = ("tiled", "whole") if args.ridges_only else ("analyze", "tiled", "whole")
        for mode in modes:
            out = os.path.join(tmp, f"{mode}.npy")
            proc = subprocess.run([sys.executable, __file__, "--child", mode, "--vertices",
                                   str(args.vertices), "--out", out],
                                  check=True, capture_output=True, text=True)
            rows[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
            if mode != "analyze":
                saved[mode] = _sorted_rows(np.load(out))
    a, t, w = rows.get("analyze"), rows["tiled"], rows["whole"]
    diff, extra = compare(saved["tiled"], saved["whole"])
    print(f"| run | zone vertices | diagrams (largest, samples) | seconds | peak RSS (MB) |")
    print("|---|---:|---:|---:|---:|")
    if a is not None:
        print(f"| gapmap analyze (seam {a['seam_km']:,.1f} km, {a['corridors']} corridors) | "
              f"{a['zone_vertices']:,} | tiled above {TILE:,} samples | {a['seconds']:.1f} | "
              f"{a['peak_mb']:,.0f} |")
    for name, r in (("seam ridges, tiled", t), ("seam ridges, one diagram (peer)", w)):
        print(f"| {name} | {r['zone_vertices']:,} | {r['diagrams']} "
              f"({r['largest_diagram']:,}) | {r['seconds']:.1f} | {r['peak_mb']:,.0f} |")
    print(f"\ntiled / one diagram: time {t['seconds'] / w['seconds']:.2f}×, peak memory "
          f"{t['peak_mb'] / w['peak_mb']:.2f}×; ridges kept {t['ridges_kept']:,} and "
          f"{w['ridges_kept']:,}; largest coordinate difference of the ridges in both "
          f"{diff:.1e} m; {extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
