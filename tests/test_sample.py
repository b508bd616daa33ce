"""End to end on the shipped sample (geodata/): the CLI as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from gapmap.crs import geodesic_length_km

from .pins import DEMO_CRS, PLAIN, PLAIN_TOL, assert_pinned

ROOT = Path(__file__).resolve().parents[1]
GEO = ROOT / "geodata"
EXE = str(Path(sys.executable).with_name("gapmap"))


@pytest.mark.slow
def test_metrics_on_sample_with_options(tmp_path):
    out = tmp_path / "run"
    p = subprocess.run(
        [EXE, "metrics", "--zones", str(GEO / "zones.geojson"), "--side-a", "krg=peshmerga",
         "--side-b", "federal=isf,pmf", "--posts", str(GEO / "posts.geojson"),
         "--study-area", str(GEO / "study_area.geojson"), "--out", str(out)],
        capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "unguarded" in p.stdout
    summary = json.loads((out / "summary.json").read_text())["pairs"][0]
    table = pd.read_csv(out / "corridors.csv")
    layer = gpd.read_file(out / "corridors.geojson")
    seam = gpd.read_file(out / "seam.geojson")
    # Internal consistency of what was written.
    assert summary["corridors"] == len(table) == len(layer) > 0
    assert json.loads((out / "summary.json").read_text())["parameters"]["crs"] == DEMO_CRS
    assert_pinned(summary, PLAIN, PLAIN_TOL)  # the belt from Sinjar to Khanaqin
    assert 0 < summary["unguarded_share"] <= 1
    assert summary["longest_corridor_km"] == pytest.approx(table["length_km"].max(), rel=1e-4)
    assert (table["width_min_km"] <= table["width_mean_km"]).all()
    assert (table["width_mean_km"] <= table["width_max_km"]).all()
    # Lengths in the table are geodesic: re-measure the written lon/lat layers with Geod.
    assert geodesic_length_km(layer.geometry).tolist() == pytest.approx(
        table["length_km"].tolist(), rel=1e-3)
    assert geodesic_length_km(seam.geometry).sum() == pytest.approx(
        summary["seam_length_km"], rel=1e-3)
    # Corridor ends lie in the belt.
    assert table["start_lon"].between(41, 47).all() and table["start_lat"].between(33, 38).all()


@pytest.mark.slow
def test_metrics_on_sample_scenario_file_matches_options(tmp_path):
    # The scenario file adds terrain and incidents; the core figures must match the plain run.
    out = tmp_path / "cfg"
    p = subprocess.run([EXE, "metrics", "--config", str(GEO / "scenario.toml"), "--out",
                        str(out)], capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["inputs"]["scenario"].endswith("scenario.toml")
    assert s["parameters"]["side_b"]["forces"] == ["isf", "pmf"]
    pair = s["pairs"][0]
    assert "exploitation_ratio" in pair
    # Terrain, roads and incidents add fields; without visibility the seam, its coverage and
    # the gap region are those of the plain run.
    assert_pinned(pair, PLAIN, PLAIN_TOL)
    table = pd.read_csv(out / "corridors.csv")
    assert {"slope_mean_deg", "tri_mean_m", "crossing_hours", "incidents",
            "roads_crossed"} <= set(table.columns)
    # Roads held by one side run inside its road corridors (held ground); the links between
    # the Kurdistan Region and the belt cross the front, some through unguarded stretches.
    # Recount the crossings on the written lon/lat layers.
    import shapely

    layer = gpd.read_file(out / "corridors.geojson")
    roads = gpd.read_file(GEO / "roads.geojson")
    hits = [sum(shapely.get_num_geometries(shapely.intersection(c, r))
                for r in roads.geometry if c.intersects(r)) for c in layer.geometry]
    assert table.set_index("corridor_id").loc[layer["corridor_id"], "roads_crossed"].tolist() \
        == hits
    assert sum(hits) > 0
