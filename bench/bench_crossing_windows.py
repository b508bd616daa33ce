"""The run's crossing searches: one window over all corridors, groups of corridors on windows
that fit a memory limit, and one window per corridor, on the sample scenario.

Each case runs in its own process (peak memory is the OS's ``VmHWM`` of that process), one
after the other in the same invocation; the crossing times of the three are compared.

    python bench/bench_crossing_windows.py [--limit-gb 0.75]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _util import ROOT, vm_kb

CASES = ("one window", "groups", "groups, no limit", "per corridor")


def work(case: str, limit_gb: float) -> dict:
    import gapmap.run as run_mod
    from gapmap.scenario import load_scenario

    sc = load_scenario(ROOT / "geodata" / "scenario.toml")
    groups_seen: list = []
    real = run_mod.crossing_groups

    def spy(analysis, dem, limit, **kw):
        if case == "per corridor":
            out = [[i] for i in range(len(analysis.corridors))]
        else:
            out = real(analysis, dem, limit, one_window=case != "groups, no limit", **kw)
        groups_seen.append(out)
        return out

    run_mod.crossing_groups = spy
    run = run_mod.Run(sc, max_memory_gb=limit_gb if case == "groups" else None)
    run.base  # the analysis before the searches: not timed
    _ = run.dem, run.water
    t = time.perf_counter()
    cr = run.crossings
    seconds = time.perf_counter() - t
    return {"case": case, "seconds": seconds, "peak_mb": vm_kb() / 1024.0,
            "windows": len(groups_seen[-1]),
            "hours": cr.fields["crossing_hours"].tolist(),
            "km": cr.routes["km"].tolist()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--limit-gb", type=float, default=0.75)
    ap.add_argument("--case", choices=CASES)
    args = ap.parse_args()
    if args.case:
        print(json.dumps(work(args.case, args.limit_gb)))
        return
    print(f"load: {os.getloadavg()[0]:.1f} (1 min), {os.cpu_count()} cores")
    rows = []
    for case in CASES:
        out = subprocess.run([sys.executable, __file__, "--case", case, "--limit-gb",
                              str(args.limit_gb)], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    one = rows[0]
    print(f"\n| case | windows | seconds | peak RSS (MB) | time / one window |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['case']}{' (limit %g GB)' % args.limit_gb if r['case'] == 'groups' else ''}"
              f" | {r['windows']} | {r['seconds']:.1f} | {r['peak_mb']:.0f} | "
              f"{r['seconds'] / one['seconds']:.2f}× |")
    import numpy as np

    for r in rows[1:]:
        same = np.allclose(r["hours"], one["hours"], rtol=1e-12, equal_nan=True) and \
            np.allclose(r["km"], one["km"], rtol=1e-12, equal_nan=True)
        print(f"{r['case']}: same crossing_hours and route lengths as one window: {same}")


if __name__ == "__main__":
    main()
