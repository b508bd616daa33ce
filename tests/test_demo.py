"""`gapmap demo` on the shipped sample: every output, consistent, self-contained."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import rasterio

from .pins import DEMO, DEMO_CRS, DEMO_PLACEMENT, DEMO_PLACEMENT_TOL, DEMO_TOL, assert_pinned

ROOT = Path(__file__).resolve().parents[1]

# The `demo` fixture (conftest.py) runs `gapmap demo` once per session.


@pytest.mark.slow
def test_demo_writes_everything(demo):
    out, stdout = demo
    for name in ("corridors.csv", "corridors.geojson", "seam.geojson", "gap.geojson",
                 "summary.json", "gapmap.gpkg", "map.html", "map.png", "report.html",
                 "terrain/slope.tif", "terrain/tri.tif", "terrain/hillshade.tif",
                 "hotspots/hotspots.geojson", "hotspots/monthly.csv",
                 "placement/sites.geojson", "placement/placement.json",
                 "placement/k_curve.csv", "placement/k_curve.png", "by_area.csv",
                 "series/compare.csv", "series/changes.gpkg", "series/map.html",
                 "uncertainty/uncertainty.csv", "uncertainty/draws.csv",
                 "uncertainty/unguarded_probability.gpkg", "uncertainty/by_area.csv",
                 "exposure/exposure.json", "exposure/exposure.gpkg"):
        assert (out / name).stat().st_size > 0, name
    assert "open" in stdout and "map.html" in stdout
    for name in ("series/compare.csv", "uncertainty/uncertainty.csv", "exposure/exposure.json",
                 "placement/k_curve.csv", "by_area.csv"):
        assert name in stdout, name


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


@pytest.mark.slow
def test_demo_summary_matches_its_pins(demo):
    out, _ = demo
    doc = json.loads((out / "summary.json").read_text())
    # The exact figures are exact in this CRS only: a change of analysis CRS must be a decision.
    assert doc["parameters"]["crs"] == DEMO_CRS
    assert_pinned(doc["pairs"][0], DEMO, DEMO_TOL)
    assert set(doc["pairs"][0]) == set(DEMO)  # no figure left unpinned
    placement = json.loads((out / "placement" / "placement.json").read_text())
    assert_pinned(placement, DEMO_PLACEMENT, DEMO_PLACEMENT_TOL)


@pytest.mark.slow
def test_demo_corridor_table_adds_up_to_the_summary(demo):
    out, _ = demo
    pair = json.loads((out / "summary.json").read_text())["pairs"][0]
    table = pd.read_csv(out / "corridors.csv")
    # the table lists the corridors; the minor stretches (each shorter than min_length_km = 1)
    # make up the rest of the unguarded length
    rest = pair["unguarded_length_km"] - table["length_km"].sum()
    assert len(table) == pair["corridors"]
    assert -1e-3 <= rest < pair["minor_corridors"] * 1.0 + 1e-3
    assert (rest > 0) == (pair["minor_corridors"] > 0)
    assert table["length_km"].max() == pytest.approx(pair["longest_corridor_km"], abs=1e-4)
    assert (table["width_min_km"] <= table["width_mean_km"]).all()
    assert (table["width_mean_km"] <= table["width_max_km"]).all()
    assert table["width_min_km"].min() <= pair["width_mean_km"] <= table["width_max_km"].max()


@pytest.mark.slow
def test_demo_series_shows_what_october_2017_opened(demo):
    out, _ = demo
    table = pd.read_csv(out / "series" / "compare.csv").set_index("field")
    opened = table.loc["opened_km", "change"]
    closed = table.loc["closed_km", "change"]
    assert opened > 0 and closed >= 0
    # the stretches drawn on the map add up to the table's figures
    layer = gpd.read_file(out / "series" / "changes.gpkg", layer="opened")
    assert layer["length_km"].sum() == pytest.approx(opened, rel=1e-6, abs=1e-6)
    closed_layer = gpd.read_file(out / "series" / "changes.gpkg", layer="closed")
    assert closed_layer["length_km"].sum() == pytest.approx(closed, rel=1e-6, abs=1e-6)
    # what opened is unguarded at the second date, what closed was at the first
    assert opened <= table.loc["unguarded_length_km", "after"] + 1e-6
    assert closed <= table.loc["unguarded_length_km", "before"] + 1e-6
    html = (out / "series" / "map.html").read_text(encoding="utf-8")
    assert "2017-06-30" in html and "2017-10-31" in html


@pytest.mark.slow
def test_demo_by_area_adds_up_to_the_summary(demo):
    out, _ = demo
    pair = json.loads((out / "summary.json").read_text())["pairs"][0]
    table = pd.read_csv(out / "by_area.csv")
    assert "ADM1_EN" in table.columns and len(table) >= 2
    # rows are rounded to 4 decimals when written
    assert table["unguarded_length_km"].sum() == pytest.approx(
        pair["unguarded_length_km"], abs=1e-6 + 5e-5 * len(table))
    assert table["seam_length_km"].sum() == pytest.approx(
        pair["seam_length_km"], abs=1e-6 + 5e-5 * len(table))
    assert (table["unguarded_length_km"] <= table["seam_length_km"] + 1e-4).all()


@pytest.mark.slow
def test_demo_uncertainty_brackets_the_base(demo):
    out, _ = demo
    pair = json.loads((out / "summary.json").read_text())["pairs"][0]
    table = pd.read_csv(out / "uncertainty" / "uncertainty.csv").set_index("field")
    row = table.loc["unguarded_length_km"]
    assert row["p05"] <= row["p50"] <= row["p95"] and row["p05"] < row["p95"]
    assert row["base"] == pytest.approx(pair["unguarded_length_km"], rel=1e-4)
    assert len(pd.read_csv(out / "uncertainty" / "draws.csv")) == 100
    p = gpd.read_file(out / "uncertainty" / "unguarded_probability.gpkg")["p_unguarded"]
    assert ((0 <= p) & (p <= 1)).all()


@pytest.mark.slow
def test_demo_exposure_from_the_hamrin_ridge(demo):
    out, _ = demo
    doc = json.loads((out / "exposure" / "exposure.json").read_text())
    assert {"road_km", "reachable_km", "seen_km", "exposed_km", "hours", "posts"} <= set(doc)
    assert doc["hours"] == 3.0 and doc["posts"] > 0
    assert 0 < doc["exposed_km"] <= doc["reachable_km"] <= doc["road_km"]
    pieces = gpd.read_file(out / "exposure" / "exposure.gpkg", layer="exposure")
    assert pieces.loc[pieces["exposed"], "length_km"].sum() == pytest.approx(
        doc["exposed_km"], rel=1e-6, abs=1e-6)
    assert (pieces.loc[pieces["reachable"], "hours_from_origin"] <= 3.0 + 1e-9).all()


def _readme_table_module():
    spec = importlib.util.spec_from_file_location("readme_table",
                                                  ROOT / "scripts" / "readme_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_readme_demo_table_is_the_demo_output(demo):
    out, _ = demo
    mod = _readme_table_module()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = mod.demo_table(out)
    assert mod.replace_table(readme, table) == readme, (
        "README's demo table differs from `gapmap demo`: run "
        "`python scripts/readme_table.py out/demo` after `make demo`")
    # The table states the pinned figures (not only whatever this run printed).
    assert f"| {DEMO['seam_length_km']:.1f} km |" in table
    assert f"{DEMO['gap_area_km2']:,.0f} km²" in table


def _gapmap(*args: str):
    import subprocess
    import sys

    exe = str(Path(sys.executable).with_name("gapmap"))
    return subprocess.run([exe, *args], capture_output=True, text=True)


def test_demo_skip_refuses_an_unknown_stage(tmp_path):
    out = tmp_path / "out"
    p = _gapmap("demo", "--quick", "--skip", "series,hillshade", "--out", str(out))
    assert p.returncode == 2
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--skip" in lines[0] and "'hillshade'" in lines[0], p.stderr
    assert "by-area" in lines[0]  # names the stages it knows
    assert not out.exists()  # refused before any work


@pytest.mark.slow
def test_demo_skip_leaves_out_the_stages_and_nothing_else(tmp_path):
    out = tmp_path / "out"
    p = _gapmap("demo", "--quick", "--skip", "series, by-area", "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert not (out / "series").exists() and not (out / "by_area.csv").exists()
    assert "series/" not in p.stdout and "by_area.csv" not in p.stdout
    for name in ("summary.json", "corridors.csv", "map.html", "report.html",
                 "placement/placement.json"):
        assert (out / name).stat().st_size > 0, name
    # the seam is vector geometry alone: the same with or without the skipped stages
    pair = json.loads((out / "summary.json").read_text())["pairs"][0]
    assert pair["seam_length_km"] == pytest.approx(DEMO["seam_length_km"], rel=1e-9)
