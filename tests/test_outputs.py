"""Writing the metrics: every file, the same figures in each, atomically."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest

from gapmap import analyze, parse_side
from gapmap.crs import geodesic_length_km
from gapmap.outputs import corridor_table, format_summary, write_metrics

from . import scenes


@pytest.fixture(scope="module")
def result():
    return analyze(scenes.strips(), parse_side("krg=peshmerga"), parse_side("federal=isf"),
                   posts=scenes.two_posts(), study_area=scenes.strips_area())


def test_write_metrics_writes_each_file_with_the_same_figures(result, tmp_path):
    out = tmp_path / "run"
    paths = write_metrics(result, out)
    assert sorted(paths) == ["corridors.csv", "corridors.geojson", "gap.geojson",
                             "gapmap.gpkg", "seam.geojson", "summary.json"]
    assert sorted(p.name for p in out.iterdir()) == sorted(paths)  # nothing else left beside
    doc = json.loads((out / "summary.json").read_text())
    pair = doc["pairs"][0]
    for key, value in result.summary.items():
        want = round(value, 6) if isinstance(value, float) else value
        assert pair[key] == want, key
    assert doc["parameters"]["crs"] == result.crs.to_string()
    table = pd.read_csv(out / "corridors.csv")
    assert table["corridor_id"].tolist() == result.corridors["corridor_id"].tolist()
    assert table["length_km"].tolist() == pytest.approx(result.corridors["length_km"], abs=1e-4)
    layer = gpd.read_file(out / "corridors.geojson")
    assert layer.crs.to_epsg() == 4326
    assert geodesic_length_km(layer.geometry).tolist() == pytest.approx(
        table["length_km"].tolist(), rel=1e-4)
    names = set(pyogrio.list_layers(out / "gapmap.gpkg")[:, 0])
    assert {"corridors", "minor_corridors", "seam", "gap", "zones", "study_area",
            "posts"} <= names


def test_rewriting_replaces_its_files_and_leaves_others(result, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("the user's own file")
    (out / "summary.json").write_text("{}")
    write_metrics(result, out)
    assert (out / "notes.txt").read_text() == "the user's own file"
    assert json.loads((out / "summary.json").read_text())["pairs"][0]["corridors"] == 3
    assert not [p for p in tmp_path.iterdir() if p.name != "run"]  # no temporary left
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_corridor_table_and_summary_text(result):
    table = corridor_table(result)
    assert "geometry" not in table.columns
    assert list(table.columns[:4]) == ["corridor_id", "side_a", "side_b", "length_km"]
    assert (table["length_km"] == table["length_km"].round(4)).all()
    text = format_summary(result)
    s = result.summary
    assert f"{s['seam_length_km']:10.1f} km" in text
    assert f"{s['unguarded_length_km']:10.1f} km ({100 * s['unguarded_share']:.1f}%)" in text
    assert f"{s['corridors']:10d}" in text
