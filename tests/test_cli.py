"""The `gapmap` command: outputs, scenario files, and every bad-input path."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner

from gapmap import __version__
from gapmap.cli import main

from .conftest import UTM38, X0, Y0

SIDES = ["--side-a", "krg=peshmerga", "--side-b", "federal=isf,pmf"]


@pytest.fixture
def files(tmp_path, strips, strips_area):
    z = tmp_path / "zones.geojson"
    strips.to_crs(4326).assign(geometry=lambda g: g.geometry.segmentize(0.005)).to_file(z)
    sa = tmp_path / "area.gpkg"
    strips_area.to_file(sa, layer="area")
    posts = tmp_path / "posts.geojson"
    gpd.GeoDataFrame({"name": ["cp1"], "force": ["isf"], "range_km": [5.0]},
                     geometry=[shapely.Point(X0 + 20e3, Y0 + 50e3)], crs=UTM38
                     ).to_crs(4326).to_file(posts)
    return {"zones": z, "area": sa, "posts": posts, "dir": tmp_path}


def run(args, code=0):
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == code, res.output
    return res


def test_version_and_help():
    assert __version__ in run(["--version"]).output
    for cmd in ("metrics", "demo"):
        assert "Usage" in run([cmd, "--help"]).output


def test_metrics_writes_every_output(files):
    out = files["dir"] / "out"
    res = run(["metrics", "--zones", str(files["zones"]), *SIDES, "--posts", str(files["posts"]),
               "--study-area", str(files["area"]), "--study-area-layer", "area",
               "--out", str(out)])
    assert "unguarded" in res.output and "C1" in res.output
    names = {p.name for p in out.iterdir()}
    assert {"corridors.csv", "corridors.geojson", "seam.geojson", "gap.geojson", "summary.json",
            "gapmap.gpkg"} <= names
    table = pd.read_csv(out / "corridors.csv")
    assert list(table.columns[:11]) == [
        "corridor_id", "side_a", "side_b", "length_km", "width_min_km", "width_mean_km",
        "width_max_km", "start_lon", "start_lat", "end_lon", "end_lat"]
    assert len(table) == 2 and table["length_km"].sum() == pytest.approx(90.03, rel=2e-3)
    summary = json.loads((out / "summary.json").read_text())
    pair = summary["pairs"][0]
    assert pair["side_a"] == "krg" and pair["corridors"] == 2
    assert summary["parameters"]["reach_km"] == 2.0
    assert summary["inputs"]["zones"].endswith("zones.geojson")
    assert summary["gapmap_version"] == __version__
    gj = gpd.read_file(out / "corridors.geojson")
    assert gj.crs.to_epsg() == 4326 and len(gj) == 2
    import pyogrio

    layers = {name for name, _ in pyogrio.list_layers(out / "gapmap.gpkg")}
    assert {"corridors", "seam", "gap", "zones", "posts", "study_area"} <= layers


def test_scenario_file_matches_options(files):
    toml = files["dir"] / "scenario.toml"
    toml.write_text(
        '[layers]\nzones = "zones.geojson"\nposts = "posts.geojson"\n'
        'study_area = "area.gpkg"\nstudy_area_layer = "area"\n'
        '[sides]\na = "krg=peshmerga"\nb = "federal=isf,pmf"\n'
        '[parameters]\nreach_km = 2\nmin_length_km = 1\n')
    out1, out2 = files["dir"] / "o1", files["dir"] / "o2"
    run(["metrics", "--config", str(toml), "--out", str(out1)])
    run(["metrics", "--zones", str(files["zones"]), *SIDES, "--posts", str(files["posts"]),
         "--study-area", str(files["area"]), "--study-area-layer", "area", "--out", str(out2)])
    a = pd.read_csv(out1 / "corridors.csv")
    b = pd.read_csv(out2 / "corridors.csv")
    pd.testing.assert_frame_equal(a, b)
    # Options override the file.
    out3 = files["dir"] / "o3"
    run(["metrics", "--config", str(toml), "--reach-km", "11", "--out", str(out3)])
    assert json.loads((out3 / "summary.json").read_text())["pairs"][0]["corridors"] == 0


BAD = [
    (["--zones", "missing.geojson"], "missing.geojson: zones file not found"),
    (["--side-a", "krg"], "NAME=force1,force2"),
    (["--side-b", "federal=army"], "no zone belongs to side federal"),
    (["--force-field", "holder"], "holder: force field not found"),
    (["--crs", "EPSG:4326"], "not a projected CRS"),
    (["--crs", "nonsense"], "unknown CRS"),
    (["--reach-km", "-1"], "--reach-km: must be between 0 and"),
    (["--visibility"], "visibility needs a DEM"),
    (["--posts", "{zones}"], "posts must be Point"),
    (["--config", "{bad_toml}"], "not valid TOML"),
    (["--config", "{unknown_key}"], "layers.zonez: unknown key"),
    (["--study-area", "{nocrs}"], "no coordinate reference system"),
    (["--posts", "{bad_posts}"], "range_km: 1 value(s) are not numbers"),
]


@pytest.mark.parametrize("extra,message", BAD)
def test_bad_input_one_line_exit_2(files, extra, message):
    d = files["dir"]
    (d / "bad.toml").write_text("[layers\nzones = ")
    (d / "unknown.toml").write_text('[layers]\nzonez = "zones.geojson"\n')
    gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)]).to_file(d / "nocrs.shp")
    gpd.GeoDataFrame({"range_km": ["far"]}, geometry=[shapely.Point(44, 35)], crs=4326).to_file(
        d / "badposts.geojson")
    subst = {"zones": files["zones"], "bad_toml": d / "bad.toml",
             "unknown_key": d / "unknown.toml", "nocrs": d / "nocrs.shp",
             "bad_posts": d / "badposts.geojson"}
    extra = [str(x).format(**subst) for x in extra]
    base = {"--zones": str(files["zones"]), "--side-a": "krg=peshmerga",
            "--side-b": "federal=isf,pmf"}
    args = []
    for k, v in base.items():
        if k not in extra:
            args += [k, v]
    out = d / "out"
    out.mkdir(exist_ok=True)
    (out / "corridors.csv").write_text("previous run\n")
    zones_hash = hashlib.sha256(files["zones"].read_bytes()).hexdigest()
    res = CliRunner().invoke(main, ["metrics", *args, *extra, "--out", str(out)])
    assert res.exit_code == 2, res.output
    err = res.stderr if hasattr(res, "stderr") else res.output
    lines = [x for x in err.splitlines() if x.startswith("gapmap: error")]
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err
    # Nothing half-written, inputs untouched.
    assert (out / "corridors.csv").read_text() == "previous run\n"
    assert sorted(p.name for p in out.iterdir()) == ["corridors.csv"]
    assert hashlib.sha256(files["zones"].read_bytes()).hexdigest() == zones_hash


def test_no_traceback_in_a_real_process_and_debug_shows_it(tmp_path):
    exe = Path(sys.executable).with_name("gapmap")
    args = [str(exe), "metrics", "--zones", str(tmp_path / "nope.geojson"), *SIDES,
            "--out", str(tmp_path / "o")]
    p = subprocess.run(args, capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0 and "Traceback" not in p.stderr
    assert "nope.geojson" in p.stderr and "check the path" in p.stderr
    p = subprocess.run([args[0], "--debug", *args[1:]], capture_output=True, text=True)
    assert "Traceback" in p.stderr


def test_missing_sides_error(files):
    res = CliRunner().invoke(main, ["metrics", "--zones", str(files["zones"]), "--out",
                                    str(files["dir"] / "o")])
    assert res.exit_code == 2 and "--side-a" in res.output


def test_incidents_csv_with_named_coordinate_columns(files):
    d = files["dir"]
    # Three events on the seam, in the gap; coordinate columns with names nobody guesses.
    from pyproj import Transformer

    t = Transformer.from_crs(UTM38, 4326, always_xy=True)
    rows = [t.transform(X0 + 20e3, Y0 + y) for y in (10e3, 30e3, 80e3)]
    csv = d / "events.csv"
    pd.DataFrame({"northing_deg": [r[1] for r in rows], "easting_deg": [r[0] for r in rows],
                  "date": ["2020-01-05", "2020-02-05", "2020-03-05"]}).to_csv(csv, index=False)
    base = ["metrics", "--zones", str(files["zones"]), *SIDES, "--study-area", str(files["area"]),
            "--study-area-layer", "area", "--incidents", str(csv)]
    res = CliRunner().invoke(main, [*base, "--out", str(d / "x")])
    assert res.exit_code == 2 and "latitude" in res.output.lower()
    run([*base, "--incidents-lat", "northing_deg", "--incidents-lon", "easting_deg",
         "--out", str(d / "ok")])
    table = pd.read_csv(d / "ok" / "corridors.csv")
    assert table["incidents"].sum() == 3
    pair = json.loads((d / "ok" / "summary.json").read_text())["pairs"][0]
    assert pair["incidents_in_gap"] == 3


def _exposure_dir(tmp_path: Path) -> Path:
    from gapmap.exposure import Exposure, write_exposure

    from .test_maps import exposure_pieces

    summary = {"road_km": 37.5, "reachable_km": 20.0, "seen_km": 20.0, "exposed_km": 10.0,
               "hours": 3.0, "posts": 1, "off_dem_km": 0.0, "pieces": 4}
    write_exposure(Exposure(exposure_pieces(), summary), tmp_path / "exposure")
    return tmp_path / "exposure"


def _strong_pixels(png: Path) -> int:
    """Pixels of the exposed road's colour (within 12 of each channel)."""
    import numpy as np
    from matplotlib.colors import to_rgb
    from matplotlib.image import imread

    from gapmap.style import EXPOSURE_CLASSES

    img = imread(png)[..., :3]
    return int((np.abs(img - np.asarray(to_rgb(EXPOSURE_CLASSES[0][1]))) < 12 / 255)
               .all(axis=-1).sum())


def test_figure_and_report_draw_an_exposure_result(files):
    d = files["dir"]
    ex = _exposure_dir(d)
    base = ["--zones", str(files["zones"]), *SIDES, "--study-area", str(files["area"])]
    run(["figure", *base, "--out", str(d / "plain.png"), "--width-in", "3"])
    run(["figure", *base, "--exposure", str(ex), "--out", str(d / "ex.png"), "--width-in", "3"])
    # 10 km of exposed road drawn 3 pt wide: hundreds of pixels of its colour, none without.
    assert _strong_pixels(d / "plain.png") == 0 and _strong_pixels(d / "ex.png") > 200
    # The report, given the exposure.gpkg itself: the summary beside it is read too.
    run(["report", *base, "--exposure", str(ex / "exposure.gpkg"), "--out", str(d / "r.html")])
    page = (d / "r.html").read_text(encoding="utf-8")
    assert "<dt>Exposed</dt><dd>10.0 km</dd>" in page
    assert "<dt>Reachable in 3 h on foot</dt><dd>20.0 km</dd>" in page


@pytest.mark.parametrize("command", ["figure", "report"])
def test_exposure_option_bad_path_one_line_exit_2(files, command):
    d = files["dir"]
    out = d / ("x.png" if command == "figure" else "x.html")
    res = CliRunner().invoke(main, [command, "--zones", str(files["zones"]), *SIDES,
                                    "--exposure", str(d / "nowhere"), "--out", str(out)])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "exposure result not found" in lines[0], res.output
    assert not out.exists()
    # A folder with a broken exposure.json beside the layer: refused, naming the file.
    ex = _exposure_dir(d)
    (ex / "exposure.json").write_text("{not json", encoding="utf-8")
    res = CliRunner().invoke(main, [command, "--zones", str(files["zones"]), *SIDES,
                                    "--exposure", str(ex), "--out", str(out)])
    assert res.exit_code == 2 and "exposure.json" in res.output and "JSON" in res.output
    assert len(res.output.strip().splitlines()) == 1 and not out.exists()
