"""`gapmap series` against a shell loop of `gapmap metrics` over the same dated files.

The layers are shaped like a frontline tracker's: one jagged front of ``--vertices`` vertices
(default 20,000) between two sides whose separation varies along it, moving a little each day
(a 30 km stretch advances by 200 m). Both ways run in the same run, on the same files:

- the loop: ``for f in front_*.geojson; do gapmap metrics --zones $f ... ; done``;
- the series: ``gapmap series --zones 'front_*.geojson' ... --workers W``.

Prints a markdown table: wall time of each, the ratio, their CPU time (user + system, of the
command and every process it started: on a shared machine whose load changes between the two,
the CPU ratio is the steadier figure), the seconds per date, and peak memory
from the OS: ``VmHWM`` of every process of the series (the main process and each Dask worker,
read from ``/proc/PID/status`` while it runs). ``--dates`` may list several counts to report
how the series time grows (the loop is run for the first count only); ``--loop-dates K`` runs
the loop over the first K files only and scales its time to all of them (on a loaded machine
a 60-date loop takes hours), and says so. ``--no-reuse`` also runs the series with
``reuse=False`` (every date's seam whole) at the first count, for what reuse buys.

    python bench/bench_series.py --dates 60 240 720 --workers 2 --loop-dates 10
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

GAPMAP = str(Path(sys.executable).with_name("gapmap"))
SIDES = ["--side-a", "west=w", "--side-b", "east=e", "--reach-km", "2", "--max-width-km", "40"]


def front(vertices: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """y (m) and a jagged x (m) of a 400 km front."""
    y = np.linspace(0, 400e3, vertices)
    x = np.cumsum(rng.normal(0, 60, vertices))
    x -= np.convolve(x, np.ones(201) / 201, mode="same")  # jagged, without drifting away
    return y, x + 500e3


def write_layers(folder: Path, dates: int, vertices: int, seed: int = 1) -> list[Path]:
    rng = np.random.default_rng(seed)
    y, x = front(vertices, rng)
    gap = 3000 + 2500 * np.sin(y / 40e3)  # 0.5–5.5 km apart: some seam covered, some not
    files = []
    y0 = 5.0e6
    for d in range(dates):
        centre = rng.uniform(30e3, 370e3)
        x = x + 200 * (np.abs(y - centre) < 15e3)  # one 30 km stretch advances 200 m
        west = shapely.Polygon(np.r_[np.c_[x, y + y0], [[x.min() - 60e3, y0 + 400e3],
                                                         [x.min() - 60e3, y0]]])
        east = shapely.Polygon(np.r_[np.c_[x + gap, y + y0], [[x.max() + 60e3, y0 + 400e3],
                                                               [x.max() + 60e3, y0]]])
        gdf = gpd.GeoDataFrame({"force": ["w", "e"]}, geometry=[west, east], crs=32637)
        day = np.datetime64("2022-02-24") + d
        path = folder / f"front_{str(day).replace('-', '')}.geojson"
        gdf.to_crs(4326).to_file(path)
        files.append(path)
    area = gpd.GeoDataFrame(geometry=[shapely.box(x.min() - 20e3, y0 + 10e3, x.max() + 20e3,
                                                  y0 + 390e3)], crs=32637)
    area.to_crs(4326).to_file(folder / "area.geojson")
    return files


def _cpu_children() -> float:
    """CPU seconds (user + system) of the finished, reaped descendants of this process."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd: list[str] | str, shell: bool = False) -> tuple[float, float]:
    """Wall time and CPU time of a command (and everything it started and waited for)."""
    t0, c0 = time.perf_counter(), _cpu_children()
    subprocess.run(cmd, shell=shell, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0, _cpu_children() - c0


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    return kids


def _hwm_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def timed_with_memory(cmd: list[str]) -> tuple[float, float, float, float]:
    """Wall time, peak RSS of the main process and of the largest other descendant (MB), and
    the CPU time of all of them (s: the Dask workers are reaped by the process that started
    them, so their time is counted)."""
    t0, c0 = time.perf_counter(), _cpu_children()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peaks: dict[int, float] = {}
    while proc.poll() is None:
        kids, todo, seen = _children(), [proc.pid], []
        while todo:
            pid = todo.pop()
            seen.append(pid)
            todo.extend(kids.get(pid, []))
        for pid in seen:
            hwm = _hwm_mb(pid)
            if hwm is not None:
                peaks[pid] = max(peaks.get(pid, 0.0), hwm)
        time.sleep(0.5)
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    main = peaks.pop(proc.pid, 0.0)
    return (time.perf_counter() - t0, main, max(peaks.values(), default=0.0),
            _cpu_children() - c0)


def load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dates", type=int, nargs="+", default=[60])
    ap.add_argument("--vertices", type=int, default=20_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--loop-dates", type=int, default=None,
                    help="Run the loop over this many of the files and scale.")
    ap.add_argument("--no-loop", action="store_true", help="Only the series.")
    ap.add_argument("--no-reuse", action="store_true",
                    help="Also the series without reuse, at the first count.")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, n in enumerate(args.dates):
            folder = Path(tmp) / f"d{n}"
            folder.mkdir()
            files = write_layers(folder, n, args.vertices)
            area = str(folder / "area.geojson")
            loop_s, loop_cpu, looped = None, None, 0
            cmd = [GAPMAP, "-q", "series", "--zones", str(folder / "front_*.geojson"),
                   "--study-area", area, *SIDES, "--workers", str(args.workers)]
            if i == 0 and not args.no_loop:
                sub = files[: args.loop_dates] if args.loop_dates else files
                script = " ; ".join(
                    f"{GAPMAP} -q metrics --zones {f} --study-area {area} {' '.join(SIDES)} "
                    f"--out {folder}/m_{f.stem}" for f in sub)
                print(f"loop over {len(sub)} dates, load {load()}", file=sys.stderr)
                wall, cpu = timed(script, shell=True)
                scale = len(files) / len(sub)
                loop_s, loop_cpu, looped = wall * scale, cpu * scale, len(sub)
            print(f"series of {n} dates, load {load()}", file=sys.stderr)
            series_s, main_mb, worker_mb, cpu = timed_with_memory(
                cmd + ["--out", str(folder / "s")])
            rows.append((n, loop_s, loop_cpu, looped, series_s, cpu, main_mb, worker_mb, "yes",
                         load()))
            if i == 0 and args.no_reuse:
                print(f"series of {n} dates without reuse, load {load()}", file=sys.stderr)
                t, m, w, c = timed_with_memory(cmd + ["--no-reuse", "--out", str(folder / "s0")])
                rows.append((n, loop_s, loop_cpu, looped, t, c, m, w, "no", load()))
    print(f"front of {args.vertices:,} vertices, {args.workers} workers, "
          f"{os.cpu_count()} cores\n")
    print("| dates | reuse | metrics loop (s) | series (s) | series / loop | loop CPU (s) "
          "| series CPU (s) | CPU series / loop | s per date | peak RSS main (MB) "
          "| peak RSS per worker (MB) | load after |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for n, loop_s, loop_cpu, looped, series_s, cpu, main_mb, worker_mb, reuse, ld in rows:
        ratio = f"{series_s / loop_s:.2f}" if loop_s else "—"
        cratio = f"{cpu / loop_cpu:.2f}" if loop_cpu else "—"
        mark = "" if looped == n else " ¹"
        loop = "—" if not loop_s else f"{loop_s:.1f}{mark}"
        lcpu = "—" if not loop_cpu else f"{loop_cpu:.1f}{mark}"
        print(f"| {n} | {reuse} | {loop} | {series_s:.1f} | {ratio} | {lcpu} | {cpu:.1f} | "
              f"{cratio} | {series_s / n:.2f} | {main_mb:.0f} | {worker_mb:.0f} | {ld} |")
    if any(r[3] and r[3] != r[0] for r in rows):
        looped = next(r[3] for r in rows if r[3])
        print(f"\n¹ the loop over the first {looped} dates, scaled to all of them")


if __name__ == "__main__":
    main()
