"""Benchmark: placement of K = 10 new posts among 2,000 candidate sites on the sample.

Two candidate sets on the sample's unguarded corridors (``geodata/``): a dense grid along the
corridors (spacing chosen to give 2,000 sites) and 2,000 random sites within 4 km of them;
each solved without and with line of sight over ``geodata/dem_synthetic.tif``, by the integer
program (``exact="auto"``) and by the lazy greedy alone (``exact="never"``).

Peer: the plain (non-lazy) greedy over the same coverage matrix, every marginal gain
recomputed at every step — the textbook algorithm the lazy one must match.

Usage: python bench/bench_placement.py [--data DIR] [--candidates 2000] [--k 10]
Prints markdown tables (seconds, one run each after a warm-up of the line-of-sight kernel).
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

import gapmap
from gapmap.placement import candidate_grid, place_posts

ROOT = Path(__file__).resolve().parents[1]


def random_sites(corridors: gpd.GeoDataFrame, n: int, within_m: float, seed: int = 0
                 ) -> gpd.GeoDataFrame:
    """``n`` random points within ``within_m`` of the corridors (rejection sampling)."""
    rng = np.random.default_rng(seed)
    zone = shapely.buffer(shapely.union_all(corridors.geometry.values), within_m)
    shapely.prepare(zone)
    x0, y0, x1, y1 = zone.bounds
    out = np.empty((0, 2))
    while len(out) < n:
        xy = rng.uniform([x0, y0], [x1, y1], (4 * n, 2))
        out = np.vstack([out, xy[shapely.contains_xy(zone, xy[:, 0], xy[:, 1])]])
    pts = shapely.points(out[:n])
    return gpd.GeoDataFrame({"name": [f"r{i}" for i in range(n)]}, geometry=pts,
                            crs=corridors.crs)


def plain_greedy_s(res, cand, k: int, visibility: bool, dem) -> float:
    """Time of the textbook greedy on the same instance (peer)."""
    from scipy import sparse

    from gapmap.placement import _merge_identical, _universe  # the same coverage matrix

    lines = np.concatenate([res.corridors.geometry.values, res.minor.geometry.values])
    xy = shapely.get_coordinates(cand.geometry.values)
    vis = None
    sample = None
    if visibility:
        from gapmap.placement import _visibility_fn

        vis = _visibility_fn(dem, cand.assign(range_km=5.0, height_m=10.0), res.crs,
                             res.settings.target_height_m)
        sample = res.settings.spacing_m
    uni = _universe(lines, xy, np.full(len(xy), 5000.0), res.crs, sample, vis)
    red, w, _, _ = _merge_identical(uni.cover, uni.km, uni.km)
    csc = sparse.csc_matrix(red, dtype=float)
    t = time.perf_counter()
    covered = np.zeros(len(w), bool)
    for _ in range(k):
        gains = csc.T @ (w * ~covered)
        j = int(np.argmax(gains))
        if gains[j] <= 0:
            break
        covered[csc.indices[csc.indptr[j]:csc.indptr[j + 1]]] = True
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT / "geodata")
    ap.add_argument("--candidates", type=int, default=2000)
    ap.add_argument("--k", type=int, default=10)
    args = ap.parse_args(argv)
    d = args.data
    dem = d / "dem_synthetic.tif"
    for f in ("zones.geojson", "posts.geojson", "study_area.geojson", "dem_synthetic.tif"):
        if not (d / f).exists():
            print(f"missing {d / f}: build the sample first (scripts/build_geodata.py)",
                  file=sys.stderr)
            return 2
    warnings.simplefilter("ignore")
    t = time.perf_counter()
    res = gapmap.analyze(d / "zones.geojson", gapmap.parse_side("krg=peshmerga"),
                         gapmap.parse_side("federal=isf,pmf"), posts=d / "posts.geojson",
                         study_area=d / "study_area.geojson")
    t_an = time.perf_counter() - t
    total = float(res.corridors["length_km"].sum())
    spacing = total / args.candidates
    grid = candidate_grid(res.corridors, spacing)
    sets = {
        f"grid every {spacing * 1000:.0f} m": grid,
        "random within 4 km": random_sites(res.corridors, args.candidates, 4000.0),
    }
    # Warm-up: compile the line-of-sight kernel once, outside the timings.
    place_posts(res, 1, candidates=grid.iloc[:5], dem=dem, visibility=True)

    print(f"Sample: {res.summary['unguarded_length_km']:.1f} km unguarded in "
          f"{len(res.corridors)} corridors (+{len(res.minor)} minor); analysis {t_an:.1f} s; "
          f"K = {args.k}, range 5 km.\n")
    print("| candidates | visibility | method | exact | total s | coverage build s | solve s | "
          "pieces (merged) | nonzeros | closed km | guarantee | plain greedy s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for label, cand in sets.items():
        for visibility in (False, True):
            peer = plain_greedy_s(res, cand, args.k, visibility, dem)
            for exact in ("auto", "never"):
                t = time.perf_counter()
                pl = place_posts(res, args.k, candidates=cand, dem=dem, visibility=visibility,
                                 exact=exact)
                secs = time.perf_counter() - t
                s = pl.stats
                solve = s["greedy_s"] + s.get("milp_s", 0.0)
                print(f"| {len(cand)} {label} | {'on' if visibility else 'off'} | {pl.method} | "
                      f"{exact} | {secs:.2f} | {s['build_s']:.2f} | {solve:.3f} | "
                      f"{s['pieces']} ({s['merged_pieces']}) | {s['nonzeros']} | "
                      f"{pl.closed_km:.1f} | {pl.guarantee} | {peer:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
