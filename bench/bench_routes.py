"""Benchmark: least walking time over a rugged DEM, gapmap against GRASS ``r.walk`` and
scikit-image's ``MCP_Geometric``, on 2000 × 2000 and 8000 × 8000 cells (30 m).

- gapmap: Tobler's anisotropic speed, 32 moves, each timed over the cells it crosses.
- GRASS ``r.walk`` (``-k``: 16 moves), the anisotropic peer. Its cost is Naismith/Langmuir's
  ``T = a·ΔS + b·ΔH_up + c·ΔH_moderate_down + d·ΔH_steep_down``, linear in the rise of each
  move and taken from the move's end points only; Tobler's pace is an exponential of the
  slope. The bench gives it ``a`` = Tobler's flat pace (so both agree on flat ground) and
  ``b``, ``c``, ``d`` and ``slope_factor`` fitted by least squares to Tobler's pace per
  horizontal metre for slopes between −40 % and +40 % (printed with the fit's worst error);
  the friction map is 0, so the cost is the walking time alone. Its segment cache is given
  enough memory to hold the whole grid (``memory=``), so it does not page to disk.
- ``MCP_Geometric`` (isotropic, 8 moves), the usual cost-distance tool in Python, given
  Tobler's speed for each cell's steepest slope as a per-cell cost.

Each tool runs in its own child process, one after the other, in the same run: the peak
memory is that process's own (``VmHWM``, the OS's figure), the time is of the search alone
(after reading the DEM; gapmap after a warm-up call that loads numba's cached code). r.walk's
time is of the ``r.walk`` command inside a GRASS session (the DEM linked with
``r.external``), its memory the peak of the GRASS processes. Cases: "route set" (one origin,
three targets; the search stops once all three are reached) and "whole grid" (every cell).

The accuracy row: on a flat 401 × 401 grid, the worst error over all directions (cells at
30–45 % of the grid from the centre) of each tool's time against the exact straight distance
at its own flat speed; theory: 32 moves 1.31 %, 16 moves 2.70 %, 8 moves 8.24 %.

With ``--crossings``: the corridor crossings of the sample scenario (``geodata/``), one
search keeping its paths (``corridor_crossings``) against the two calls the demo made before
(``corridor_terrain`` in ``analyze``, then ``crossing_routes``), run alternately on one DEM
read once, with a check that both give the same fields and routes.

Usage: python bench/bench_routes.py [--quick] [--sizes 2000,8000] [--no-grass] [--crossings]
Prints markdown rows (seconds, best of N runs of each tool, the same N for all: 3 up to
4 M cells, else 1), and the CPU time (user + system, the least over the whole-grid runs) of
each tool: on a loaded machine the wall times of tools run one after another see different
loads, their CPU times much less so.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _util import best_of, own_peak_mb, peak_rss_mb

CELL_M = 30.0
X0, Y0 = 400_000.0, 3_900_000.0
CRS = "EPSG:32638"
FLAT_N = 401


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


def rugged_dem(n: int, cell: float = CELL_M, seed: int = 0) -> np.ndarray:
    """Smoothed noise (hills a few hundred metres high) plus one long ridge, float32."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    z = ndimage.gaussian_filter(rng.normal(0, 1, (n, n)).astype(np.float32), n / 80)
    z = z / z.std() * 120
    cols = np.arange(n)
    z += np.clip(400 - 8 * np.abs(cols - n // 2), 0, None)[None, :] * (np.arange(n)[:, None] > n // 5)
    return z.astype(np.float32)


def write_dem(path: Path, z: np.ndarray) -> None:
    import rasterio
    from affine import Affine

    t = Affine(CELL_M, 0, X0, 0, -CELL_M, Y0 + z.shape[0] * CELL_M)
    with rasterio.open(path, "w", driver="GTiff", height=z.shape[0], width=z.shape[1], count=1,
                       dtype="float32", crs=CRS, transform=t, tiled=True, blockxsize=256,
                       blockysize=256) as dst:
        dst.write(z, 1)


def read_dem(path: str):
    from gapmap.terrain import Dem
    import rasterio

    with rasterio.open(path) as src:
        return Dem(src.read(1), src.transform, CRS)


def cells(n: int) -> tuple[tuple[int, int], list[tuple[int, int]]]:
    """(row, col) of the origin and of the three targets on an n × n grid."""
    return (n // 2, n // 10), [(n // 10, n * 9 // 10), (n * 9 // 10, n * 9 // 10),
                               (n // 2, n * 9 // 10)]


def xy_of(transform, rc) -> list[float]:
    x, y = transform @ (rc[1] + 0.5, rc[0] + 0.5)
    return [float(x), float(y)]


def big_ok(n: int) -> bool:
    """Whether the route-set case runs too: its targets lie near the far corners, so on the
    large grid it is the whole-grid search again (it is timed on the small one only)."""
    return n * n < 16e6


def ring(m: int) -> tuple[np.ndarray, np.ndarray]:
    rr, cc = np.indices((m, m))
    d = np.hypot(rr - m // 2, cc - m // 2) * CELL_M
    return d, (d > 0.3 * m * CELL_M) & (d < 0.45 * m * CELL_M)


# ------------------------------------------------------------------------------------------
# r.walk's coefficients: Tobler's pace in its linear model


def tobler_pace_s_per_m(g: np.ndarray) -> np.ndarray:
    """Seconds per horizontal metre at Tobler's speed for slope tangent ``g``."""
    return 3.6 / (6.0 * np.exp(-3.5 * np.abs(g + 0.05)))


def rwalk_coefficients() -> tuple[tuple[float, float, float, float], float, float]:
    """(a, b, c, d), slope_factor and the worst relative error of r.walk's pace against
    Tobler's for slopes of −40 % … +40 %.

    r.walk's pace per horizontal metre on slope g is ``a + b·g`` uphill, ``a + c·g`` from 0
    down to ``slope_factor`` and ``a + d·g`` below it. ``a`` is Tobler's flat pace; each
    slope coefficient is a least-squares line through (0, a); ``slope_factor`` the split of
    the descents that fits best.
    """
    a = float(tobler_pace_s_per_m(np.array(0.0)))
    g_up = np.linspace(0, 0.4, 401)[1:]
    b = float(np.sum(g_up * (tobler_pace_s_per_m(g_up) - a)) / np.sum(g_up ** 2))
    g_dn = np.linspace(-0.4, 0, 401)[:-1]
    y = tobler_pace_s_per_m(g_dn) - a
    best = None
    for sf in np.linspace(-0.35, -0.01, 341):
        lo, hi = g_dn < sf, g_dn >= sf
        c = float(np.sum(g_dn[hi] * y[hi]) / np.sum(g_dn[hi] ** 2))
        d = float(np.sum(g_dn[lo] * y[lo]) / np.sum(g_dn[lo] ** 2))
        sse = float(np.sum((np.where(lo, d, c) * g_dn - y) ** 2))
        if best is None or sse < best[0]:
            best = (sse, c, d, float(sf))
    _, c, d, sf = best
    g = np.linspace(-0.4, 0.4, 801)
    model = a + np.where(g >= 0, b, np.where(g < sf, d, c)) * g
    err = float(np.max(np.abs(model / tobler_pace_s_per_m(g) - 1)))
    return (a, b, c, d), sf, err


# ------------------------------------------------------------------------------------------
# workers (each in its own child process)


def repeats(n: int) -> int:
    """Timed runs of each tool on an n × n grid (the same for every tool)."""
    return 3 if n * n <= 4e6 else 1


def wall_and_cpu(fn, repeat: int) -> tuple[float, float]:
    """The least wall time and the least CPU time (user + system, s) of ``repeat`` runs."""
    walls, cpus = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus)


def work_gapmap(dem_path: str, max_step: int = 3) -> dict:
    from affine import Affine

    from gapmap.routes import TOBLER_FLAT_KMH, cost_distance
    from gapmap.terrain import Dem

    dem = read_dem(dem_path)
    n = dem.shape[0]
    repeat = repeats(n)
    small = Dem(np.zeros((50, 50), np.float32), dem.transform, dem.crs)
    # load the compiled code outside timing
    cost_distance(small, [dem.transform @ (25, 25)], max_step=max_step)
    o, ts = cells(n)
    src = np.array([xy_of(dem.transform, o)])
    targets = np.array([xy_of(dem.transform, t) for t in ts])
    t_set = (best_of(lambda: cost_distance(dem, src, stop_at=targets, max_step=max_step),
                     repeat) if big_ok(n) else float("nan"))
    t_full, cpu = wall_and_cpu(
        lambda: cost_distance(dem, src, keep_paths=False, max_step=max_step), repeat)
    out = cost_distance(dem, src, keep_paths=False, max_step=max_step).hours
    times = [float(out[r, c]) for r, c in ts]
    flat = Dem(np.zeros((FLAT_N, FLAT_N), np.float32),
               Affine(CELL_M, 0, 0, 0, -CELL_M, FLAT_N * CELL_M), CRS)
    c0 = FLAT_N * CELL_M / 2
    hours = cost_distance(flat, [[c0, c0]], keep_paths=False, max_step=max_step).hours
    d, ok = ring(FLAT_N)
    err = float((hours[ok] * TOBLER_FLAT_KMH * 1000 / d[ok]).max() - 1)
    return dict(route_set=t_set, whole=t_full, cpu=cpu, peak_mb=own_peak_mb(), flat_err=err,
                target_hours=times)


def work_mcp(dem_path: str) -> dict:
    from skimage.graph import MCP_Geometric

    from gapmap.routes import tobler_speed_kmh
    from gapmap.terrain import slope

    dem = read_dem(dem_path)
    n = dem.shape[0]
    repeat = repeats(n)
    s = np.nan_to_num(slope(dem), nan=0.0)
    # isotropic stand-in: hours per metre at Tobler's speed for the cell's steepest slope
    cost = 1.0 / (1000.0 * tobler_speed_kmh(np.tan(np.radians(s))))
    del s
    o, ts = cells(n)

    def route_set():
        m = MCP_Geometric(cost, sampling=(CELL_M, CELL_M))
        m.find_costs([o], ts, find_all_ends=True)

    def whole():
        m = MCP_Geometric(cost, sampling=(CELL_M, CELL_M))
        return m.find_costs([o])[0]

    t_set = best_of(route_set, repeat) if big_ok(n) else float("nan")
    t_full, cpu = wall_and_cpu(whole, repeat)
    mcp = MCP_Geometric(np.ones((FLAT_N, FLAT_N)), sampling=(CELL_M, CELL_M))
    peer_d, _ = mcp.find_costs([(FLAT_N // 2, FLAT_N // 2)])
    d, ok = ring(FLAT_N)
    err = float((peer_d[ok] / d[ok]).max() - 1)
    return dict(route_set=t_set, whole=t_full, cpu=cpu, peak_mb=own_peak_mb(), flat_err=err)


def _grass_session(tif: Path, lines: list[str], tmp: Path) -> None:
    script = tmp / "run.sh"
    script.write_text("\n".join(["set -e", f"r.external input={tif} output=dem --quiet",
                                  "g.region raster=dem", "r.mapcalc 'friction = 0' --quiet",
                                  *lines]) + "\n")
    subprocess.run([shutil.which("grass"), "--tmp-location", str(tif), "--exec", "bash",
                    str(script)], check=True, capture_output=True)


def work_grass(dem_path: str) -> dict:
    import rasterio
    from affine import Affine

    if shutil.which("grass") is None:
        return dict(error="GRASS GIS not installed")
    (a, b, c, d), sf, _ = rwalk_coefficients()
    with rasterio.open(dem_path) as src:
        t, n = src.transform, src.shape[0]
    o, ts = cells(n)
    ox, oy = xy_of(t, o)
    stops = ",".join(f"{x},{y}" for x, y in (xy_of(t, rc) for rc in ts))
    # hold the whole grid in the segment cache: about 40 bytes a cell (inputs, output, heap)
    mem_mb = max(300, int(n * n * 48 / 2**20))
    common = (f"r.walk -k elevation=dem friction=friction start_coordinates={ox},{oy} "
              f"walk_coeff={a!r},{b!r},{c!r},{d!r} slope_factor={sf!r} lambda=0 "
              f"memory={mem_mb} --overwrite --quiet")
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        timing = tmp / "seconds.txt"
        vals = tmp / "values.txt"
        set_run = (f"{common} output=cost_set stop_coordinates={stops}" if big_ok(n)
                   else "true")
        cpu_file = tmp / "cpu.txt"
        full_file = tmp / "full.txt"
        lines = ["TIMEFORMAT='%U %S'"]
        for _ in range(repeats(n)):  # as many timed runs as gapmap's, the least kept
            lines += ["s=$(date +%s.%N)", set_run, "m=$(date +%s.%N)",
                      f"{{ time {common} output=cost ; }} 2>> {cpu_file}", "e=$(date +%s.%N)",
                      f'echo "$m - $s" | bc >> {timing}', f'echo "$e - $m" | bc >> {full_file}']
        lines.append(f"r.what map=cost coordinates={stops} separator=comma > {vals}")
        _grass_session(Path(dem_path), lines, tmp)
        t_set = min(float(x) for x in timing.read_text().split())
        t_full = min(float(x) for x in full_file.read_text().split())
        t_set = t_set if big_ok(n) else float("nan")
        cpu = min(float(u) + float(sy)  # user + system
                  for u, sy in (line.split() for line in cpu_file.read_text().splitlines()
                                if line.strip()))
        times = [float(line.split(",")[-1]) / 3600.0 for line in vals.read_text().split()]
        # flat ground
        flat = tmp / "flat.tif"
        import rasterio as rio

        with rio.open(flat, "w", driver="GTiff", height=FLAT_N, width=FLAT_N, count=1,
                      dtype="float32", crs=CRS,
                      transform=Affine(CELL_M, 0, 0, 0, -CELL_M, FLAT_N * CELL_M)) as dst:
            dst.write(np.zeros((FLAT_N, FLAT_N), np.float32), 1)
        c0 = FLAT_N * CELL_M / 2
        out = tmp / "flat_cost.tif"
        _grass_session(flat, [
            f"r.walk -k elevation=dem friction=friction start_coordinates={c0},{c0} "
            f"walk_coeff={a!r},{b!r},{c!r},{d!r} slope_factor={sf!r} lambda=0 output=cost "
            "--quiet",
            f"r.out.gdal input=cost output={out} type=Float64 --quiet"], tmp)
        with rio.open(out) as src:
            secs = src.read(1)
    dd, ok = ring(FLAT_N)
    err = float((secs[ok] / a / dd[ok]).max() - 1)
    return dict(route_set=t_set, whole=t_full, cpu=cpu, peak_mb=peak_rss_mb(children=True),
                flat_err=err, target_hours=times)


def work_gapmap16(dem_path: str) -> dict:
    """gapmap with r.walk's own neighbourhood (16 moves, ``max_step=2``)."""
    return work_gapmap(dem_path, max_step=2)


WORKERS = {"gapmap": work_gapmap, "gapmap16": work_gapmap16, "mcp": work_mcp,
           "grass": work_grass}


def run_worker(kind: str, dem: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", kind, "--dem", str(dem)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def bench_size(n: int, with_grass: bool) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        dem = Path(tmp) / f"dem_{n}.tif"
        write_dem(dem, rugged_dem(n))
        res = {"gapmap": run_worker("gapmap", dem), "mcp": run_worker("mcp", dem)}
        if with_grass:
            res["grass"] = run_worker("grass", dem)
            res["gapmap16"] = run_worker("gapmap16", dem)
    g = res["gapmap"]
    rows = []
    peers = [("mcp", "skimage MCP_Geometric (isotropic, 8 moves)")]
    if "grass" in res and "error" not in res["grass"]:
        peers.insert(0, ("grass", "GRASS r.walk -k (anisotropic, 16 moves)"))
    for key, label in peers:
        p = res[key]
        for case in ("route_set", "whole"):
            if not np.isfinite(p[case]) or not np.isfinite(g[case]):
                continue
            name = "route set (stop at targets)" if case == "route_set" else "whole grid"
            rows.append(f"| {n:,}² | {name} | {label} | {g[case]:.2f} | {p[case]:.2f} | "
                        f"{p[case] / g[case]:.2f}× |")
        rows.append(f"| {n:,}² | whole grid, CPU time (user + system) | {label} | "
                    f"{g['cpu']:.2f} | {p['cpu']:.2f} | {p['cpu'] / g['cpu']:.2f}× |")
        rows.append(f"| {n:,}² | peak RSS MB | {label} | {g['peak_mb']:.0f} | "
                    f"{p['peak_mb']:.0f} | |")
    rows.append(f"| | worst flat-ground error | | {g['flat_err']:.2%} | "
                + " / ".join(f"{res[k]['flat_err']:.2%}" for k, _ in peers) + " | |")
    if "grass" in peers[0]:
        r = np.array(res["grass"]["target_hours"]) / np.array(g["target_hours"])
        rows.append(f"| {n:,}² | r.walk / gapmap time to the three targets | | | "
                    f"{', '.join(f'{x:.3f}' for x in r)} | |")
        rows += _same_moves_rows(n, res["gapmap16"], res["grass"])
    return rows


def _same_moves_rows(n: int, g16: dict, grass: dict) -> list[str]:
    """gapmap on r.walk's own 16-move neighbourhood against r.walk (same run)."""
    label = "GRASS r.walk -k, against gapmap on 16 moves"
    rows = [f"| {n:,}² | {'whole grid' if c == 'whole' else 'route set (stop at targets)'} | "
            f"{label} | {g16[c]:.2f} | {grass[c]:.2f} | {grass[c] / g16[c]:.2f}× |"
            for c in ("route_set", "whole") if np.isfinite(g16[c]) and np.isfinite(grass[c])]
    rows.append(f"| {n:,}² | whole grid, CPU time (user + system) | {label} | "
                f"{g16['cpu']:.2f} | {grass['cpu']:.2f} | {grass['cpu'] / g16['cpu']:.2f}× |")
    rows.append(f"| | worst flat-ground error, 16 moves | | {g16['flat_err']:.2%} | "
                f"{grass['flat_err']:.2%} | |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="500 × 500 only")
    ap.add_argument("--sizes", default="2000,8000", help="grid sizes (cells across)")
    ap.add_argument("--no-grass", action="store_true", help="skip GRASS r.walk")
    ap.add_argument("--crossings", action="store_true",
                    help="time the sample's corridor crossings instead")
    ap.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    ap.add_argument("--dem", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args.dem)))
        return
    if args.crossings:
        crossings(1 if args.quick else 2)
        return
    sizes = [500] if args.quick else [int(s) for s in args.sizes.split(",")]
    (a, b, c, d), sf, err = rwalk_coefficients()
    print(f"r.walk walk_coeff={a:.4f},{b:.4f},{c:.4f},{d:.4f} slope_factor={sf:.3f}: its pace "
          f"within {err:.1%} of Tobler's for slopes of −40 %…+40 %; load {os.getloadavg()[0]:.2f}")
    print()
    print("| DEM | case | peer | gapmap (Tobler, 32 moves) | peer | peer / gapmap |")
    print("|---|---|---|---:|---:|---:|")
    for n in sizes:
        for row in bench_size(n, not args.no_grass):
            print(row, flush=True)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f} (2 cores)")


if __name__ == "__main__":
    main()
