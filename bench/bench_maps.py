"""Benchmark: interactive map page size, build time and Chromium load time vs incident count.

The scene is two 100 km strips 20 km apart with two posts (the test fixture); incidents are
spread uniformly over it and dated through one year. Up to ``CLUSTER_MAX`` incidents are drawn
as clustered markers with popups, up to ``AGGREGATE_MIN`` as a heat map, beyond that as counts
per hexagon; the million-incident page is also drawn as a heat map (what gapmap did before
counting per hexagon) for comparison. Load time is measured in headless
Chromium with the network cut off, from navigation start until Leaflet has drawn the incident
layer (clusters or heat canvas), as reported by the page itself (performance.now()).

Usage: python bench/bench_maps.py [--quick]
Prints a markdown table. Targets: under 20 MB with 100k incidents; with 1M incidents under
20 MB and open in under 5 s.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from _util import ROOT  # noqa: F401  (puts tests/ on the path)
from gapmap import Side, analyze, parse_side
from gapmap.maps import AGGREGATE_MIN, CLUSTER_MAX, make_map, save_map
from tests import scenes
from tests.scenes import UTM38, X0, Y0

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--window-size=1400,1000"]


def scene():
    return analyze(scenes.strips(), parse_side("krg=peshmerga"), Side("federal", ("isf",)),
                   posts=scenes.two_posts(), study_area=scenes.strips_area())


def incidents(n: int, seed: int = 0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    return gpd.GeoDataFrame(
        {"date": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 366, n), "D"),
         "type": "armed clash", "actor": "actor name", "fatalities": rng.integers(0, 5, n),
         "notes": "a typical one-line description of the event, about eighty characters long"},
        geometry=gpd.points_from_xy(rng.uniform(X0, X0 + 40e3, n),
                                    rng.uniform(Y0, Y0 + 100e3, n)), crs=UTM38).to_crs(4326)


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="gapmap-bench-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for f in FLAGS:
        opts.add_argument(f)
    opts.add_argument(f"--user-data-dir={profile}")
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    d.set_page_load_timeout(300)
    d.execute_cdp_cmd("Network.enable", {})
    d.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    return d, profile


def load_seconds(driver, path: Path) -> float:
    """Seconds from navigation start until the incident layer has drawn (page's own clock)."""
    driver.get(path.resolve().as_uri())
    return driver.execute_async_script("""
        var done = arguments[arguments.length - 1];
        function ready() {
            return document.querySelector('.marker-cluster, canvas.leaflet-heatmap-layer, '
                                          + '.leaflet-overlay-pane canvas');
        }
        (function poll() {
            if (ready()) { requestAnimationFrame(function () {
                done(performance.now() / 1000); }); }
            else { setTimeout(poll, 10); }
        })();
    """)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="Fewer sizes, one run each.")
    args = ap.parse_args(argv)
    sizes = [1_000, 10_000, 100_000, 1_000_000] if args.quick else [
        1_000, 5_000, 10_000, 20_000, 100_000, 200_000, 1_000_000]
    repeat = 1 if args.quick else 3
    res = scene()
    out = Path(tempfile.mkdtemp(prefix="gapmap-bench-maps-"))
    driver, profile = browser()
    rows = []
    runs = [(n, AGGREGATE_MIN) for n in sizes] + [(1_000_000, 10 ** 9)]  # last: as a heat map
    try:
        for n, agg in runs:
            inc = incidents(n)
            t0 = time.perf_counter()
            path = save_map(make_map(res, incidents=inc, aggregate_min=agg),
                            out / f"map_{n}_{agg}.html")
            build = time.perf_counter() - t0
            loads = [load_seconds(driver, path) for _ in range(repeat)]
            mode = ("markers" if n <= CLUSTER_MAX else "heat map" if n < agg
                    else "counts per hexagon")
            rows.append((n, mode, path.stat().st_size / 1e6, build, min(loads)))
            path.unlink()
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
    print("| incidents | drawn as | page MB | build s | Chromium load s (best) |")
    print("|---:|---|---:|---:|---:|")
    for n, mode, mb, build, load in rows:
        print(f"| {n:,} | {mode} | {mb:.2f} | {build:.2f} | {load:.2f} |")
    big = [r for r in rows if r[0] == 100_000]
    if big and big[0][2] >= 20:
        print(f"FAIL: {big[0][2]:.1f} MB with 100k incidents (limit 20 MB)")
        return 1
    million = [r for r in rows if r[0] == 1_000_000 and r[1] == "counts per hexagon"]
    if million and (million[0][2] >= 20 or million[0][4] >= 5):
        print(f"FAIL: 1M incidents: {million[0][2]:.1f} MB, {million[0][4]:.2f} s "
              "(limits 20 MB, 5 s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
