"""Benchmark: `gapmap demo` of this tree against the landed commit 0d70e02, alternately.

Peer: the same command of commit 0d70e02 (checked out with ``git worktree add`` into a
temporary folder and run with this venv's Python on ``PYTHONPATH``), on the same machine in
the same run, alternating landed / this tree / this tree like for like so that a change of
load hits all three. "Like for like" is ``gapmap demo --skip uncertainty,series,exposure,by-area``:
the stages the landed demo ran and nothing more; the full demo is timed as well.

Both read this tree's sample layers (``geodata/``). The landed version does not know the
scenario keys added since (``places``, ``rivers``, ``lakes``, the ``[sources]`` tables), so
it gets a folder of links to the same files with its own ``scenario.toml`` of 0d70e02, which
names the same zones, posts, study area, incidents, DEM and roads. This tree's demo does more
with them (the dated series, the breakdown by area, uncertainty ranges, exposure).

Usage: python bench/bench_demo.py [--rounds N] [--landed DIR] [--no-warmup]   (N 2 by default)
A warm-up run of each tree, not timed, first compiles its numba kernels (a landed checkout
starts with an empty cache, which made its first timed run 4× its others).
Prints a markdown table (wall seconds per run, median, ratios), the load average at the start
and the end, and the stage timings of this tree's last full run. A landed tree it checked out itself is removed
at the end (``git worktree remove``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LANDED = "0d70e02"
#: The stages added since the landed demo: ``--skip`` them for the like-for-like run.
LATER_STAGES = "uncertainty,series,exposure,by-area"
RUNS = (("landed", "landed " + LANDED), ("this", "this tree, full demo"),
        ("like", f"this tree, --skip {LATER_STAGES}"))


def _landed_tree(where: Path | None) -> tuple[Path, bool]:
    """The landed tree, and whether this run checked it out (and so removes it)."""
    if where is not None and (where / "src" / "gapmap").exists():
        return where, False
    tree = Path(tempfile.mkdtemp(prefix="gapmap-landed-")) / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), LANDED],
                   check=True, capture_output=True)
    return tree, True


def _landed_data(landed: Path) -> Path:
    """This tree's sample files, with the landed version's scenario (see the module doc)."""
    data = Path(tempfile.mkdtemp(prefix="gapmap-landed-data-"))
    for f in (ROOT / "geodata").iterdir():
        if f.name != "scenario.toml":
            (data / f.name).symlink_to(f)
    shutil.copy(landed / "geodata" / "scenario.toml", data / "scenario.toml")
    return data


def _remove_tree(tree: Path) -> None:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                   capture_output=True)
    shutil.rmtree(tree.parent, ignore_errors=True)


def _run(src: Path, data: Path, out: Path, profile: bool, extra: tuple = ()
         ) -> tuple[float, str]:
    env = dict(os.environ, PYTHONPATH=str(src / "src"), GAPMAP_DATA=str(data))
    cmd = [sys.executable, "-c", "from gapmap.cli import main; main()", "demo", "--out",
           str(out)]
    if profile:
        cmd.append("--profile")
    cmd.extend(extra)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=src)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"demo failed in {src}: {p.stderr[-2000:]}")
    return dt, p.stderr


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--landed", type=Path, default=None)
    ap.add_argument("--no-warmup", action="store_true",
                    help="time the first runs too (each tree's numba cache starts empty)")
    args = ap.parse_args()
    landed, ours = _landed_tree(args.landed)
    work = Path(tempfile.mkdtemp(prefix="gapmap-bench-demo-"))
    data = {"landed": _landed_data(landed), "this": ROOT / "geodata", "like": ROOT / "geodata"}
    src = {"landed": landed, "this": ROOT, "like": ROOT}
    extra = {"landed": (), "this": (), "like": ("--skip", LATER_STAGES)}
    times: dict[str, list[float]] = {k: [] for k, _ in RUNS}
    stages = {"this": "", "like": ""}
    load0 = os.getloadavg()
    try:
        if not args.no_warmup:  # compile each tree's kernels once, untimed
            for name in ("landed", "like"):
                dt, _ = _run(src[name], data[name], work / f"warm-{name}", profile=False,
                             extra=extra[name])
                print(f"warm-up, {name}: {dt:.1f} s (not counted)", file=sys.stderr, flush=True)
                shutil.rmtree(work / f"warm-{name}", ignore_errors=True)
        for i in range(args.rounds):
            for name, _ in RUNS:
                dt, err = _run(src[name], data[name], work / f"{name}{i}",
                               profile=name != "landed", extra=extra[name])
                times[name].append(dt)
                # each run as it ends: a run cut short still leaves its figures
                print(f"round {i + 1}, {name}: {dt:.1f} s (load {os.getloadavg()[0]:.1f})",
                      file=sys.stderr, flush=True)
                if name in stages:
                    stages[name] = "\n".join(ln for ln in err.splitlines() if "stage " in ln)
                shutil.rmtree(work / f"{name}{i}", ignore_errors=True)
        load = os.getloadavg()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(data["landed"], ignore_errors=True)
        if ours:
            _remove_tree(landed)
    med = {k: statistics.median(v) for k, v in times.items()}
    print("| `gapmap demo` | runs (s) | median (s) | / landed |\n|---|---|---:|---:|")
    for k, label in RUNS:
        print(f"| {label} | {', '.join(f'{t:.1f}' for t in times[k])} | {med[k]:.1f} | "
              f"{med[k] / med['landed']:.2f}× |")
    print(f"\nload average (1, 5, 15 min) {', '.join(f'{x:.1f}' for x in load0)} at the start, "
          f"{', '.join(f'{x:.1f}' for x in load)} at the end, on {os.cpu_count()} cores\n")
    for k, label in RUNS[1:]:
        print(f"Stages of the last run of {label} (--profile):\n")
        print("| stage | s |\n|---|---:|")
        for line in stages[k].splitlines():
            m = re.search(r"stage (.+?)\s+([\d.]+) s", line)
            if m:
                print(f"| {m.group(1).strip()} | {float(m.group(2)):.1f} |")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
