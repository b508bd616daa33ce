"""Benchmark: `gapmap.simulate` (Monte Carlo copies) against one plain `gapmap.analyze`.

Peer: the analysis itself (`gapmap.analyze` of the sample, no terrain), which is what a naive
Monte Carlo would rerun per copy (and more: it would also grow each zone's polygon). gapmap's
figure is the time per copy of `simulate` (edges ±2 km, post ranges ±20%, reach 1–3 km) once
its distance fields are built, and the one-off cost of building them; both in the same process.

Usage: python bench/bench_uncertainty.py [--draws 200] [--repeat 3]
Prints a markdown table (seconds, best of --repeat runs of the analysis).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from gapmap.scenario import load_scenario, run_scenario
from gapmap.uncertainty import _frame, simulate

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    sc = dataclasses.replace(load_scenario(ROOT / "geodata" / "scenario.toml"), dem=None,
                             incidents=None, roads=None)
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        base = run_scenario(sc)
        times.append(time.perf_counter() - t)
    t_analyze = min(times)
    t = time.perf_counter()
    _frame(base, 2.0, (1.0, 3.0), base.settings.spacing_m)
    t_frame = time.perf_counter() - t
    t = time.perf_counter()
    sim = simulate(base, draws=args.draws, edge_km=2.0, post_range_frac=0.2, reach_km=(1, 3),
                   seed=0)
    t_total = time.perf_counter() - t
    per_draw = (t_total - t_frame) / args.draws
    print(f"| sample (`geodata/`, no terrain) | {t_analyze:.2f} | {t_frame:.2f} | "
          f"{per_draw * 1000:.1f} | {t_total:.1f} | {t_analyze / per_draw:.0f}× |")
    # the same copies broken down by governorate (by_area.csv's ranges for every field)
    from gapmap.by_area import areas_of_scenario

    areas = areas_of_scenario(sc, "ADM1_EN")
    t = time.perf_counter()
    simulate(base, draws=args.draws, edge_km=2.0, post_range_frac=0.2, reach_km=(1, 3), seed=0,
             areas=areas, by="ADM1_EN")
    per_by = (time.perf_counter() - t - t_frame) / args.draws
    print(f"| same, `--by ADM1_EN` | {t_analyze:.2f} | {t_frame:.2f} | {per_by * 1000:.1f} | "
          f"{time.perf_counter() - t:.1f} | {t_analyze / per_by:.0f}× |")
    u = sim.table.loc["unguarded_length_km"]
    print(f"\nunguarded km: base {u['base']:.1f}, 90% range {u['p05']:.1f}–{u['p95']:.1f}; "
          f"p_unguarded mean {np.mean(sim.p_unguarded['p_unguarded']):.3f}")


if __name__ == "__main__":
    main()
