"""Benchmark: least-time walking routes on a 2000 × 2000 DEM.

gapmap's engine (Tobler's anisotropic speed, 32 moves, each timed over the cells it crosses)
against the named peer, scikit-image's ``MCP_Geometric`` (isotropic cost, 8 moves), on the same
synthetic rugged DEM (30 m cells), in the same process. The peer is given Tobler's speed for the
cell's steepest slope as a per-cell cost, the usual isotropic stand-in; its routes are not the
same and its times are not directional, so the speed comparison is of the searches, and the
accuracy line shows what the 8 isotropic moves miss on flat ground.

With ``--crossings``: the corridor crossings of the sample scenario (``geodata/``), one
search keeping its paths (``corridor_crossings``) against the two calls the demo made before
(``corridor_terrain`` in ``analyze``, then ``crossing_routes``), run alternately on one DEM
read once, with a check that both give the same fields and routes.

Usage: python bench/bench_routes.py [--quick] [--crossings]
Prints markdown rows (seconds, best of N runs).
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from affine import Affine
from scipy import ndimage
from skimage.graph import MCP_Geometric

from _util import best_of, peak_rss_mb
from gapmap.routes import TOBLER_FLAT_KMH, cost_distance, tobler_speed_kmh
from gapmap.terrain import Dem, slope


def crossings(repeat: int) -> None:
    """One crossing search against the two the demo ran, on the sample scenario."""
    import dataclasses
    import time

    from _util import ROOT
    from gapmap.routes import corridor_crossings, corridor_terrain, crossing_routes
    from gapmap.scenario import load_scenario, run_scenario
    from gapmap.terrain import as_dem

    sc = load_scenario(ROOT / "geodata" / "scenario.toml")
    res = run_scenario(dataclasses.replace(sc, dem=None, visibility=False))
    w, s_, e, n = res.study_area.bounds
    dem = as_dem(sc.dem, bounds=(w - 30e3, s_ - 30e3, e + 30e3, n + 30e3), bounds_crs=res.crs,
                 crs=res.crs)
    t_one, t_two = [], []
    for _ in range(max(repeat, 1)):  # alternately, so both see the same machine load
        t = time.perf_counter()
        one = corridor_crossings(res, dem)
        t_one.append(time.perf_counter() - t)
        t = time.perf_counter()
        fields, routes = corridor_terrain(res, dem), crossing_routes(res, dem)
        t_two.append(time.perf_counter() - t)
    same = one.fields.equals(fields) and all(
        a.equals_exact(b, 0.0) for a, b in zip(one.routes.geometry, routes.geometry))
    print(f"sample scenario: {len(res.corridors)} corridors, DEM {dem.shape[0]} × "
          f"{dem.shape[1]} cells of {dem.res_m:.0f} m")
    print()
    print("| case | corridor_crossings (one search) s | corridor_terrain + crossing_routes s "
          "| ratio |")
    print("|---|---|---|---|")
    print(f"| corridor fields and routes | {min(t_one):.2f} | {min(t_two):.2f} | "
          f"{min(t_one) / min(t_two):.2f}× |")
    print(f"\nsame fields and routes: {same}")


def rugged_dem(n: int, cell: float = 30.0, seed: int = 0) -> Dem:
    """Smoothed noise (hills a few hundred metres high) plus one long ridge."""
    rng = np.random.default_rng(seed)
    z = ndimage.gaussian_filter(rng.normal(0, 1, (n, n)), n / 80)
    z = z / z.std() * 120
    cols = np.arange(n)
    z += np.clip(400 - 8 * np.abs(cols - n // 2), 0, None)[None, :] * (np.arange(n)[:, None] > n // 5)
    return Dem(z.astype(np.float32), Affine(cell, 0, 400_000, 0, -cell, 3_900_000 + n * cell),
               32638)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="500 × 500 instead of 2000 × 2000")
    ap.add_argument("--crossings", action="store_true",
                    help="time the sample's corridor crossings instead")
    args = ap.parse_args()
    if args.crossings:
        crossings(1 if args.quick else 2)
        return
    n = 500 if args.quick else 2000
    repeat = 1 if args.quick else 2
    dem = rugged_dem(n)
    cell = dem.res_xy[0]
    src = np.array(dem.transform @ (n // 10 + 0.5, n // 2 + 0.5)).reshape(1, 2)
    targets = np.array([dem.transform @ (c + 0.5, r + 0.5)
                        for r, c in [(n // 10, n * 9 // 10), (n * 9 // 10, n * 9 // 10),
                                     (n // 2, n * 9 // 10)]])
    rows = []
    small = Dem(np.zeros((50, 50), np.float32), dem.transform, dem.crs)
    cost_distance(small, [dem.transform @ (25, 25)])  # compile outside the timing
    # One route set: all three targets from one origin (the search stops once all are reached).
    t_gap = best_of(lambda: cost_distance(dem, src, stop_at=targets), repeat)
    full = best_of(lambda: cost_distance(dem, src, keep_paths=False), repeat)

    # Peer: isotropic per-cell cost = hours per metre at Tobler's speed for the cell's slope.
    s = np.nan_to_num(slope(dem), nan=0.0)
    cost = 1.0 / (1000.0 * tobler_speed_kmh(np.tan(np.radians(s))))
    start = (n // 2, n // 10)
    ends = [(n // 10, n * 9 // 10), (n * 9 // 10, n * 9 // 10), (n // 2, n * 9 // 10)]

    def peer():
        m = MCP_Geometric(cost, sampling=(cell, cell))
        m.find_costs([start], ends, find_all_ends=True)
        return m

    t_peer = best_of(peer, repeat)

    def peer_full():
        m = MCP_Geometric(cost, sampling=(cell, cell))
        m.find_costs([start])

    t_peer_full = best_of(peer_full, repeat)
    peak_mb = peak_rss_mb()

    # Accuracy on flat ground: worst error over all directions, ring 40–50 % of the grid.
    m = 401
    flat = Dem(np.zeros((m, m), np.float32), Affine(cell, 0, 0, 0, -cell, m * cell), 32638)
    ours = cost_distance(flat, [[m * cell / 2, m * cell / 2]], keep_paths=False).hours
    mcp = MCP_Geometric(np.ones((m, m)), sampling=(cell, cell))
    peer_d, _ = mcp.find_costs([(m // 2, m // 2)])
    rr, cc = np.indices((m, m))
    d = np.hypot(rr - m // 2, cc - m // 2) * cell
    ring = (d > 0.3 * m * cell) & (d < 0.45 * m * cell)
    err_ours = (ours[ring] * TOBLER_FLAT_KMH * 1000 / d[ring]).max() - 1
    err_peer = (peer_d[ring] / d[ring]).max() - 1

    print(f"DEM {n} × {n} cells of {cell:.0f} m ({n * n / 1e6:.1f} M cells); one origin, three "
          "targets")
    print()
    print("| case | gapmap (Tobler, 32 moves) s | skimage MCP_Geometric (isotropic, 8 moves) s "
          "| ratio |")
    print("|---|---|---|---|")
    rows.append(("route set (stop at targets)", t_gap, t_peer))
    rows.append(("whole grid", full, t_peer_full))
    for name, a, b in rows:
        print(f"| {name} | {a:.2f} | {b:.2f} | {a / b:.1f}× |")
    print(f"| worst flat-ground error over all directions | {err_ours:.2%} | {err_peer:.2%} | |")
    print()
    print(f"peak RSS {peak_mb:.0f} MB; theory: 32 moves 1/cos(9.2°)−1 = "
          f"{1 / math.cos(math.atan(1 / 3) / 2) - 1:.2%}, 8 moves 1/cos(22.5°)−1 = "
          f"{1 / math.cos(math.pi / 8) - 1:.2%}")


if __name__ == "__main__":
    main()
