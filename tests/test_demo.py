"""`gapmap demo` on the shipped sample: every output, consistent, self-contained."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import rasterio

EXE = str(Path(sys.executable).with_name("gapmap"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    p = subprocess.run([EXE, "demo", "--out", str(out)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return out, p.stdout


@pytest.mark.slow
def test_demo_writes_everything(demo):
    out, stdout = demo
    for name in ("corridors.csv", "corridors.geojson", "seam.geojson", "gap.geojson",
                 "summary.json", "gapmap.gpkg", "map.html", "map.png", "report.html",
                 "terrain/slope.tif", "terrain/tri.tif", "terrain/hillshade.tif",
                 "hotspots/hotspots.geojson", "hotspots/monthly.csv",
                 "placement/sites.geojson", "placement/placement.json"):
        assert (out / name).stat().st_size > 0, name
    assert "open" in stdout and "map.html" in stdout


@pytest.mark.slow
def test_demo_corridors_are_terrain_and_incident_aware(demo):
    out, _ = demo
    table = pd.read_csv(out / "corridors.csv")
    for col in ("slope_mean_deg", "tri_mean_m", "crossing_hours", "incidents",
                "incidents_per_100km"):
        assert table[col].notna().all(), col
    assert (table["crossing_hours"] > 0).all()
    pair = json.loads((out / "summary.json").read_text())["pairs"][0]
    assert pair["corridors"] == len(table)
    assert 0 < pair["exploitation_ratio_low"] <= pair["exploitation_ratio"] \
        <= pair["exploitation_ratio_high"]
    assert pair["incidents_in_corridors"] == table["incidents"].sum()


@pytest.mark.slow
def test_demo_placement_closes_ground(demo):
    out, _ = demo
    doc = json.loads((out / "placement" / "placement.json").read_text())
    pair = json.loads((out / "summary.json").read_text())["pairs"][0]
    assert doc["sites_placed"] == 4
    assert doc["unguarded_before_km"] == pytest.approx(pair["unguarded_length_km"], rel=1e-4)
    assert doc["unguarded_after_km"] < doc["unguarded_before_km"]
    gains = [s["gain_km"] for s in doc["sites"]]
    assert sum(gains) == pytest.approx(doc["closed_km"], rel=1e-3)
    # Sites are listed in order of marginal gain whichever method chose them (coverage is
    # submodular, so the gains never grow).
    assert gains == sorted(gains, reverse=True)
    assert len(gpd.read_file(out / "placement" / "sites.geojson")) == 4


@pytest.mark.slow
def test_demo_map_and_report_are_self_contained(demo):
    out, _ = demo
    for page in ("map.html", "report.html"):
        html = (out / page).read_text(encoding="utf-8")
        # No resource is fetched from anywhere: no external script, stylesheet or image.
        assert not re.search(r'<(script|img|iframe)[^>]+src="https?:', html), page
        assert not re.search(r'<link[^>]+href="https?:', html), page
        assert "illustrative" in html.lower(), page


@pytest.mark.slow
def test_demo_terrain_rasters_on_the_dem_grid(demo):
    out, _ = demo
    with rasterio.open(out / "terrain" / "slope.tif") as s, \
            rasterio.open(out / "terrain" / "hillshade.tif") as h:
        assert s.crs == h.crs and s.transform == h.transform and s.shape == h.shape
        slope = s.read(1, masked=True)
        assert 0 <= slope.min() and slope.max() < 90
