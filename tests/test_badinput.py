"""Bad, hostile and impossible input across every command: one line, the right exit code.

Each case asserts the exit code, exactly one line on stderr (``gapmap: error: …``) holding the
expected words, no traceback, every input byte-identical afterwards, no output written and no
staging file left. Most cases run in-process (click's CliRunner); a few in a real process.
The last group holds cases that other parts of gapmap (incidents, rasters, rendering, the
demo pipeline) refuse; they are kept here so that one suite covers every command.
"""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from click.testing import CliRunner
from rasterio.transform import from_origin

from gapmap.cli import main
from gapmap.outputs import safe_cells

from .conftest import UTM38, X0, Y0

SIDES = ["--side-a", "krg=peshmerga", "--side-b", "federal=isf,pmf"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    """Good inputs and one bad variant of each; nothing here may change during the suite."""
    d = tmp_path_factory.mktemp("inputs")
    strips = gpd.GeoDataFrame(
        {"force": ["peshmerga", "isf"], "name": ["north", "south"]},
        geometry=[shapely.box(X0, Y0, X0 + 10e3, Y0 + 100e3),
                  shapely.box(X0 + 30e3, Y0, X0 + 40e3, Y0 + 100e3)], crs=UTM38)
    area = gpd.GeoDataFrame(geometry=[shapely.box(X0 - 20e3, Y0, X0 + 60e3, Y0 + 100e3)],
                            crs=UTM38)
    posts = gpd.GeoDataFrame({"name": ["cp1"], "force": ["isf"], "range_km": [5.0]},
                             geometry=[shapely.Point(X0 + 20e3, Y0 + 50e3)], crs=UTM38)
    f = {}

    def save(name, gdf, **kw):
        f[name] = d / name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gdf.to_file(f[name], **kw)

    save("zones.geojson", strips.to_crs(4326))
    save("zones.gpkg", strips, layer="zones")
    save("area.geojson", area.to_crs(4326))
    save("posts.geojson", posts.to_crs(4326))
    # UTM metres in a layer that says lon/lat.
    save("zones_metres.geojson", strips.set_crs(4326, allow_override=True))
    save("posts_metres.geojson", posts.set_crs(4326, allow_override=True))
    save("area_metres.geojson", area.set_crs(4326, allow_override=True))
    z = strips.to_crs(4326)
    nan = z.copy()
    nan.loc[0, "geometry"] = shapely.Polygon([(44, 35), (44.1, np.nan), (44.1, 35.1)])
    save("zones_nan.gpkg", nan)
    lon = z.copy()
    lon.loc[0, "geometry"] = shapely.box(200, 35, 200.1, 35.5)
    save("zones_lon200.geojson", lon)
    flat = z.copy()
    flat.loc[0, "geometry"] = shapely.Polygon([(44, 35), (44.1, 35), (44.2, 35)])
    save("zones_flat.gpkg", flat)
    save("zones_far.gpkg", z.assign(reach_km=["far", None]))
    save("zones_negreach.geojson", z.assign(reach_km=[-3.0, None]))
    save("zones_infreach.gpkg", z.assign(reach_km=[np.inf, 1.0]))
    save("zones_points.geojson", gpd.GeoDataFrame({"force": ["isf"]},
                                                  geometry=[shapely.Point(44, 35)], crs=4326))
    save("zones_nocrs.gpkg", strips.set_crs(None, allow_override=True))
    p = posts.to_crs(4326)
    save("posts_badrange.geojson", p.assign(range_km=["x"]))
    save("posts_neg.geojson", p.assign(height_m=[-5.0]))
    save("posts_huge.geojson", p.assign(range_km=[1e6]))
    # A study area 3,000 km away (west Africa-ish longitude shift).
    save("area_far.geojson", area.to_crs(4326).translate(-30.0, 0.0).to_frame("geometry"))
    for name, text in (("garbage.geojson", "this is not a layer\n"),
                       ("garbage.csv", "a,b\n1,2\n"), ("bad.toml", "[layers\nzones=\n")):
        f[name] = d / name
        f[name].write_text(text)
    dem = d / "dem.tif"
    with rasterio.open(dem, "w", driver="GTiff", width=60, height=120, count=1, dtype="float32",
                       crs=f"EPSG:{UTM38}", transform=from_origin(X0 - 10e3, Y0 + 110e3, 1e3, 1e3),
                       nodata=-9999) as dst:
        dst.write(np.fromfunction(lambda r, c: 200 + 3 * c, (120, 60), dtype="float32")[None])
    f["dem.tif"] = dem
    inc = d / "incidents.csv"
    pts = gpd.GeoSeries([shapely.Point(X0 + 20e3, Y0 + 10e3 * i) for i in range(1, 9)],
                        crs=UTM38).to_crs(4326)
    pd.DataFrame({"date": [f"2020-0{1 + i % 9}-15" for i in range(8)],
                  "lat": pts.y, "lon": pts.x}).to_csv(inc, index=False)
    f["incidents.csv"] = inc
    f["dir"] = d
    return f


def scenario(data, tmp_path, text: str) -> Path:
    """A scenario file with good layers and sides, plus ``text`` (a section or parameters)."""
    p = tmp_path / "scenario.toml"
    base = (f'[layers]\nzones = "{data["zones.geojson"]}"\n'
            '[sides]\na = "krg=peshmerga"\nb = "federal=isf,pmf"\n')
    if text.startswith("[parameters]") or text.startswith("[layers]") or text.startswith("["):
        body = base + text if not text.startswith("[layers]") else \
            text.replace("[layers]\n", f'[layers]\nzones = "{data["zones.geojson"]}"\n', 1) + \
            '\n[sides]\na = "krg=peshmerga"\nb = "federal=isf,pmf"\n'
    else:
        body = base + "[parameters]\n" + text + "\n"
    p.write_text(body)
    return p


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def staging(*folders: Path) -> list[Path]:
    return [p for f in folders for p in f.rglob("*") if ".gapmap-" in p.name]


def analysis(data, *extra):
    return ["--zones", str(data["zones.geojson"]), *SIDES, *extra]


def _limited() -> None:  # a refusal must come before any large allocation: cap at 4 GB
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


# 90 s: a hang still fails; a loaded 2-core machine with cold numba caches is not one.
def run_process(args: list[str], timeout: float = 90):
    """Run gapmap in a real process, bounded in time and memory (a hang is a failure)."""
    exe = Path(sys.executable).with_name("gapmap")
    try:
        res = subprocess.run([str(exe), *args], capture_output=True, text=True,
                             timeout=timeout, preexec_fn=_limited)
    except subprocess.TimeoutExpired:
        pytest.fail(f"gapmap {' '.join(args)} still running after {timeout} s")
    return res.returncode, res.stderr, res.stdout + res.stderr, None


def check(data, tmp_path, args: list[str], code: int, words: str, *, out_kind="dir",
          extra_inputs: tuple[Path, ...] = (), process: bool = False) -> str:
    """Run ``args`` (``{out}`` replaced by a fresh output path); assert the one-line refusal."""
    out = tmp_path / ("out" if out_kind == "dir" else "out.html")
    args = [str(a).replace("{out}", str(out)) for a in args]
    before = digest(data["dir"])
    extra = {p: p.read_bytes() for p in extra_inputs}
    if process:
        exit_code, err, output, exception = run_process(args)
    else:
        res = CliRunner().invoke(main, args)
        exit_code, err, output, exception = res.exit_code, res.stderr, res.output, res.exception
    lines = [x for x in err.splitlines() if x.strip()]
    assert exit_code == code, (exit_code, output)
    assert exception is None or isinstance(exception, SystemExit), repr(exception)
    errors = [x for x in lines if x.startswith("gapmap: error: ")]
    assert len(errors) == 1 and words in errors[0], err
    assert not [x for x in lines if not x.startswith("gapmap: ")], err  # one line (+warnings)
    assert "Traceback" not in output and "internal error" not in output
    assert digest(data["dir"]) == before  # inputs byte-identical
    assert all(p.read_bytes() == b for p, b in extra.items())
    assert not out.exists() or out.is_fifo() or out.is_char_device()  # no partial output
    assert staging(tmp_path, data["dir"]) == []
    return errors[0]


# --- Parameters: non-finite, negative, absurd ------------------------------------------------

PARAM_CASES = [
    (["--reach-km", "nan"], "--reach-km: must be a finite number"),
    (["--reach-km", "inf"], "--reach-km: must be a finite number"),
    (["--reach-km", "-1"], "--reach-km: must be between 0 and"),
    (["--reach-km", "5000"], "reach_km: out of range"),
    (["--max-width-km", "inf"], "--max-width-km: must be a finite number"),
    (["--max-width-km", "0"], "max_width_km: out of range"),
    (["--max-width-km", "1e9"], "--max-width-km: must be between 0 and"),
    (["--min-length-km", "nan"], "--min-length-km: must be a finite number"),
    (["--spacing-m", "0.1"], "spacing_m: out of range"),
    (["--spacing-m", "-inf"], "--spacing-m: must be a finite number"),
    (["--margin-km", "nan"], "--margin-km: must be a finite number"),
    (["--margin-km", "5000"], "margin_km: out of range"),
    (["--crs", "EPSG:999999"], "unknown CRS"),
    (["--crs", "not a crs"], "unknown CRS"),
    (["--crs", "EPSG:4326"], "not a projected CRS in metres"),
    (["--crs", "+proj=longlat +datum=WGS84"], "not a projected CRS in metres"),
    (["--crs", "EPSG:32618"], "distorts distances over the data by up to"),
    (["--crs", "EPSG:3857"], "distorts distances over the data by up to"),
    (["--visibility"], "visibility needs a DEM"),
]


@pytest.mark.parametrize("extra, words", PARAM_CASES, ids=[" ".join(c[0]) for c in PARAM_CASES])
def test_metrics_parameters(data, tmp_path, extra, words):
    check(data, tmp_path, ["metrics", *analysis(data, *extra), "--out", "{out}"], 2, words)


# --- Layers: coordinates, geometry, fields, files --------------------------------------------

LAYER_CASES = [
    ({"--zones": "zones_nan.gpkg"}, "coordinate(s) are not finite"),
    ({"--zones": "zones_lon200.geojson"}, "out of range (longitude up to 200"),
    ({"--zones": "zones_metres.geojson"}, "looks like metres — declare the layer's CRS"),
    ({"--posts": "posts_metres.geojson"}, "looks like metres"),
    ({"--study-area": "area_metres.geojson"}, "looks like metres"),
    ({"--zones": "zones_flat.gpkg"}, "zone(s) have zero area"),
    ({"--zones": "zones_far.gpkg"}, "reach_km: 1 value(s) are not numbers (e.g. 'far')"),
    ({"--zones": "zones_negreach.geojson"}, "reach_km: value -3 out of range"),
    ({"--zones": "zones_infreach.gpkg"}, "reach_km: value inf out of range"),
    ({"--zones": "zones_points.geojson"}, "zones must be Polygon"),
    ({"--zones": "zones_nocrs.gpkg"}, "no coordinate reference system"),
    ({"--zones": "missing.geojson"}, "zones file not found"),
    ({"--zones": "garbage.geojson"}, "--zones-layer"),
    ({"--posts": "garbage.geojson"}, "--posts-layer"),
    ({"--study-area": "garbage.geojson"}, "--study-area-layer"),
    ({"--posts": "posts_badrange.geojson"}, "range_km: 1 value(s) are not numbers"),
    ({"--posts": "posts_neg.geojson"}, "height_m: value -5 out of range"),
    ({"--posts": "posts_huge.geojson"}, "range_km: value 1e+06 out of range"),
    ({"--study-area": "area_far.geojson"}, "no seam can lie in it"),
    ({"--zones": "zones.gpkg", "--zones-layer": "nope"}, "check the layer name"),
    ({"--force-field": "holder"}, "force field not found"),
    ({"--side-a": "krg"}, "cannot read side 'krg'"),
    ({"--side-a": "x=nobody"}, "no zone belongs to side x"),
    ({"--side-a": "krg=peshmerga,isf"}, "are on both sides"),
]


@pytest.mark.parametrize("swap, words", LAYER_CASES, ids=[" ".join(f"{k}={v}" for k, v in
                                                                  c[0].items()) for c in LAYER_CASES])
def test_metrics_layers(data, tmp_path, swap, words):
    opts = {"--zones": "zones.geojson", "--side-a": "krg=peshmerga",
            "--side-b": "federal=isf,pmf"}
    opts.update(swap)
    args = ["metrics"]
    for k, v in opts.items():
        path_like = k in ("--zones", "--posts", "--study-area")
        args += [k, str(data["dir"] / v) if path_like else v]
    err = check(data, tmp_path, [*args, "--out", "{out}"], 2, words)
    assert " --layer " not in err + " "  # no such option


# --- Scenario files: types and values ---------------------------------------------------------

SCENARIO_CASES = [
    ('[layers]\nforce_field = 7', "layers.force_field: must be text, got a number (7)"),
    ("reach_km = true", "parameters.reach_km: must be a number, got a boolean (true)"),
    ('margin_km = "wide"', "parameters.margin_km: must be a number, got text ('wide')"),
    ('reach_b_km = "nan"', "parameters.reach_b_km: must be a number, got text ('nan')"),
    ("reach_a_km = -2", "reach_a_km: out of range, got -2"),
    ('visibility = "false"', "parameters.visibility: must be a boolean, got text ('false')"),
    ("visibility = 1", "parameters.visibility: must be a boolean"),
    ("reach_km = nan", "parameters.reach_km: must be a finite number"),
    ("max_width_km = inf", "parameters.max_width_km: must be a finite number"),
    ("max_width_km = 1e9", "max_width_km: out of range"),
    ("spacing_m = 0", "spacing_m: out of range"),
    ("post_height_m = 1e6", "post_height_m: out of range"),
    ("crs = true", "parameters.crs: must be a CRS string"),
    ('crs = "EPSG:32618"', "distorts distances"),
    ("types = 5", "parameters.types: must be text or a list of text"),
    ("since = 5", "parameters.since: must be a date"),
    ("bogus = 1", "parameters.bogus: unknown parameter"),
    ('[layers]\nzones_layers = "x"', "layers.zones_layers: unknown key"),
    ('[layers]\nposts = 3', "layers.posts: must be text"),
    ('[extra]\nx = 1', "extra: unknown section"),
]


@pytest.mark.parametrize("text, words", SCENARIO_CASES, ids=[c[0] for c in SCENARIO_CASES])
def test_scenario_values(data, tmp_path, text, words):
    toml = scenario(data, tmp_path, text)
    err = check(data, tmp_path, ["metrics", "--config", str(toml), "--out", "{out}"], 2, words,
                extra_inputs=(toml,))
    if "distorts" not in words:  # known only once the data is read: names the option
        assert str(toml) in err  # names the file


def test_scenario_zones_as_number_and_sides_as_number(data, tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('[layers]\nzones = 5\n[sides]\na = "krg=peshmerga"\nb = "federal=isf"\n')
    check(data, tmp_path, ["metrics", "--config", str(p), "--out", "{out}"], 2,
          "layers.zones: must be text, got a number (5)")
    p.write_text(f'[layers]\nzones = "{data["zones.geojson"]}"\n[sides]\na = 3\nb = "f=isf"\n')
    check(data, tmp_path, ["metrics", "--config", str(p), "--out", "{out}"], 2,
          "sides.a: must be text")


def test_scenario_file_problems(data, tmp_path):
    check(data, tmp_path, ["metrics", "--config", str(tmp_path / "none.toml"), "--out",
                           "{out}"], 2, "scenario file not found")
    check(data, tmp_path, ["metrics", "--config", str(data["bad.toml"]), "--out", "{out}"], 2,
          "not valid TOML")
    check(data, tmp_path, ["metrics", "--config", str(data["dir"]), "--out", "{out}"], 2,
          "Invalid value for '--config'")


# --- Click usage errors: one line --------------------------------------------------------------

USAGE_CASES = [
    (["metrics", "--zones", "z.geojson"], "Missing option '--out'"),
    (["metrics", "--reach-km", "abc", "--out", "{out}"], "Invalid value for '--reach-km'"),
    (["frobnicate"], "No such command 'frobnicate'"),
    (["metrics", "--bogus"], "No such option '--bogus'"),
    (["place", "--k", "0", "--out", "{out}"], "Invalid value for '--k'"),
    (["figure", "--dpi", "10", "--out", "x.png"], "Invalid value for '--dpi'"),
    (["routes"], "Missing option"),
    (["metrics", "--incidents-format", "xml", "--out", "{out}"], "'--incidents-format'"),
    (["hotspots", "--permutations", "many", "--out", "{out}"], "'--permutations'"),
    (["coverage", "--dem"], "requires an argument"),
]


@pytest.mark.parametrize("args, words", USAGE_CASES, ids=[" ".join(c[0]) for c in USAGE_CASES])
def test_usage_errors_are_one_line(data, tmp_path, args, words):
    err = check(data, tmp_path, args, 2, words)
    assert "--help" in err  # says where to look


# --- Outputs that are not ours to replace ------------------------------------------------------

def test_out_is_a_regular_file_fifo_or_device(data, tmp_path):
    target = tmp_path / "afile"
    target.write_text("precious")
    check(data, tmp_path, ["metrics", *analysis(data), "--out", str(target)], 2,
          "is a file", extra_inputs=(target,))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    check(data, tmp_path, ["metrics", *analysis(data), "--out", str(fifo)], 2,
          "is a FIFO, not a folder")
    assert fifo.is_fifo()
    dev = tmp_path / "full.html"
    os.mknod(dev, 0o20600, os.makedev(1, 7))
    check(data, tmp_path, ["report", *analysis(data), "--out", str(dev)], 2,
          "is a character device, not a regular file")
    assert dev.is_char_device()
    check(data, tmp_path, ["terrain", "--dem", str(data["dem.tif"]), "--out", str(target)], 2,
          "is a file", extra_inputs=(target,))
    check(data, tmp_path, ["coverage", "--dem", str(data["dem.tif"]), "--posts",
                           str(data["posts.geojson"]), "--out", str(fifo)], 2, "is a FIFO")


def test_out_below_a_file_is_an_output_error_exit_1(data, tmp_path):
    (tmp_path / "f").write_text("x")
    check(data, tmp_path, ["metrics", *analysis(data), "--out", str(tmp_path / "f" / "o")], 1,
          "a component of the path is a file")


# --- Other commands ---------------------------------------------------------------------------

OTHER_CASES = [
    (["coverage", "--dem", "{dem}", "--posts", "{posts}", "--range-km", "nan"], "--range-km"),
    (["coverage", "--dem", "{dem}", "--posts", "{posts}", "--height-m", "inf"], "--height-m"),
    (["coverage", "--dem", "{dem}", "--posts", "{posts}", "--target-height-m", "-1"],
     "--target-height-m: must be between 0 and"),
    (["coverage", "--dem", "{dem}", "--posts", "{d}/posts_metres.geojson"], "looks like metres"),
    (["coverage", "--dem", "{dem}", "--posts", "{d}/garbage.geojson"], "--posts-layer"),
    (["routes", "--dem", "{dem}", "--from", "{posts}", "--to", "{posts}", "--margin-km", "nan"],
     "--margin-km: must be a finite number"),
    (["routes", "--dem", "{dem}", "--from", "{posts}", "--to", "{posts}", "--range-km", "inf"],
     "--range-km: must be a finite number"),
    (["routes", "--dem", "{dem}", "--from", "{posts}", "--to", "{posts}",
      "--visible-penalty", "2"], "--visible-penalty needs --posts"),
    (["routes", "--dem", "{dem}", "--from", "{posts}", "--to", "{posts}",
      "--visible-penalty", "nan", "--posts", "{posts}"], "--visible-penalty: must be a finite"),
    (["hotspots", "--incidents", "{inc}", "--hex-km", "-1"], "--hex-km: must be between 0"),
    (["hotspots", "--incidents", "{inc}", "--bandwidth-km", "nan"], "--bandwidth-km"),
    (["hotspots", "--incidents", "{inc}", "--cell-m", "inf"], "--cell-m: must be a finite"),
    (["hotspots", "--incidents", "{inc}", "--alpha", "nan"], "--alpha: must be a finite"),
    (["hotspots", "--incidents", "{d}/none.csv"], "not found"),
    (["place", "--k", "2", "--candidate-spacing-km", "nan", *SIDES, "--zones", "{zones}"],
     "--candidate-spacing-km: must be a finite number"),
    (["place", "--k", "2", "--time-limit-s", "nan", *SIDES, "--zones", "{zones}"],
     "--time-limit-s: must be a finite number"),
    (["place", "--k", "2", "--range-km", "inf", *SIDES, "--zones", "{zones}"],
     "--range-km: must be a finite number"),
    (["place", "--k", "2", "--reach-km", "nan", *SIDES, "--zones", "{zones}"], "--reach-km"),
    (["figure", "--width-in", "nan", *SIDES, "--zones", "{zones}"], "--width-in: must be"),
    (["map", "--hex-km", "inf", *SIDES, "--zones", "{zones}"], "--hex-km: must be a finite"),
    (["report", "--reach-km", "nan", *SIDES, "--zones", "{zones}"], "--reach-km"),
    (["demo", "--data", "{d}/nowhere"], "sample scenario not found"),
]


@pytest.mark.parametrize("args, words", OTHER_CASES, ids=[" ".join(c[0][:1] + c[0][-2:])
                                                          for c in OTHER_CASES])
def test_other_commands(data, tmp_path, args, words):
    subst = {"{dem}": str(data["dem.tif"]), "{posts}": str(data["posts.geojson"]),
             "{inc}": str(data["incidents.csv"]), "{zones}": str(data["zones.geojson"]),
             "{d}": str(data["dir"])}
    out_kind = "file" if args[0] in ("coverage", "routes", "figure", "map", "report") else "dir"
    resolved = []
    for a in args:
        for k, v in subst.items():
            a = a.replace(k, v)
        resolved.append(a)
    if args[0] == "figure":
        out = ["--out", str(tmp_path / "out.png")]
    else:
        out = ["--out", "{out}"]
    check(data, tmp_path, [*resolved, *out], 2, words, out_kind=out_kind)


# --- A real process: stderr is one line, no traceback ------------------------------------------

@pytest.mark.parametrize("args, code, words", [
    (["metrics", "--reach-km", "nan"], 2, "--reach-km: must be a finite number"),
    (["metrics", "--nope"], 2, "No such option '--nope'"),
    (["metrics", "--zones", "{d}/zones_metres.geojson"], 2, "looks like metres"),
])
def test_in_a_real_process(data, tmp_path, args, code, words):
    exe = Path(sys.executable).with_name("gapmap")
    full = [a.replace("{d}", str(data["dir"])) for a in args]
    if "--zones" not in full:
        full += ["--zones", str(data["zones.geojson"])]
    res = subprocess.run([str(exe), *full, *SIDES, "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == code, res.stderr
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("gapmap: error: "), res.stderr
    assert words in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "o").exists() and staging(tmp_path) == []


# --- Warnings where the answer would be silently wrong ----------------------------------------

def test_swapped_coordinates_and_no_zones_in_study_area_warn_once(data, tmp_path):
    z = gpd.read_file(data["zones.geojson"])
    swapped = z.set_geometry(shapely.transform(z.geometry.values, lambda xy: xy[:, ::-1]))
    zs = tmp_path / "swapped.geojson"
    swapped.to_file(zs)
    area = gpd.read_file(data["area.geojson"])
    area_sw = tmp_path / "area_sw.geojson"
    area.to_file(area_sw)
    res = CliRunner().invoke(main, ["metrics", "--zones", str(zs), *SIDES, "--study-area",
                                    str(area_sw), "--max-width-km", "5000", "--out",
                                    str(tmp_path / "o")])
    warns = [x for x in res.stderr.splitlines() if x.startswith("gapmap: warning")]
    assert any("look swapped" in w for w in warns), res.stderr
    assert any("no zones within the study area" in w for w in warns), res.stderr
    assert len(warns) == len(set(warns))  # each distinct warning once


def test_each_distinct_warning_is_printed_once_per_run(data, tmp_path):
    z = gpd.read_file(data["zones.geojson"])
    bowtie = shapely.Polygon([(44.0, 35.0), (44.1, 35.1), (44.1, 35.0), (44.0, 35.1)])
    bad = pd.concat([z, gpd.GeoDataFrame({"force": ["other"]}, geometry=[bowtie], crs=4326)])
    p = tmp_path / "z.geojson"
    bad.to_file(p)
    args = ["metrics", "--zones", str(p), *SIDES, "--out", str(tmp_path / "o")]
    for _ in range(2):  # and again in the same process: still printed
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 0, res.output
        warns = [x for x in res.stderr.splitlines() if "repaired 1 invalid zones" in x]
        assert len(warns) == 1, res.stderr


# --- Hostile text in tables -------------------------------------------------------------------

def test_formula_cells_are_neutralised_in_csv_and_geopackage(data, tmp_path):
    z = gpd.read_file(data["zones.geojson"])
    z["force"] = ["=HYPERLINK(\"http://x\")", "+cmd|' /C calc'!A0"]
    z["name"] = ["@SUM(1)", "-2+3"]
    p = tmp_path / "z.geojson"
    z.to_file(p)
    out = tmp_path / "o"
    res = CliRunner().invoke(main, ["metrics", "--zones", str(p), "--side-a",
                                    '+cmd==hyperlink("http://x")', "--side-b",
                                    "@sum(1)=+cmd|' /c calc'!a0", "--out", str(out)])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out / "corridors.csv", dtype=str, keep_default_na=False)
    text = table.select_dtypes(object)
    assert set(table["side_a"]) == {"'+cmd"} and set(table["side_b"]) == {"'@sum(1)"}
    assert not text.apply(lambda c: c.str.match(r"^[=+@\t\r]")).any().any()
    zones = gpd.read_file(out / "gapmap.gpkg", layer="zones")
    assert set(zones["force"]) == {"'=hyperlink(\"http://x\")", "'+cmd|' /c calc'!a0"}
    assert set(zones["name"]) == {"'@SUM(1)", "'-2+3"}
    nums = pd.read_csv(out / "corridors.csv")
    assert pd.api.types.is_float_dtype(nums["length_km"])  # numbers stay numbers


def test_safe_cells_rule():
    df = pd.DataFrame({"t": ["=a", "+a", "-a", "@a", "\ta", "\ra", "a=b", "", None, "'=x"],
                       "n": [-1.0, -2.5, 0.0, 1.0, -1e9, 3.0, math.nan, 1.0, 2.0, 3.0]})
    out = safe_cells(df)
    assert out["t"][:8].tolist() == ["'=a", "'+a", "'-a", "'@a", "'\ta", "'\ra", "a=b", ""]
    assert pd.isna(out["t"][8]) and out["t"][9] == "'=x"  # missing stays missing
    assert out["n"].equals(df["n"])  # negative numbers untouched
    assert df["t"][0] == "=a"  # the input is not modified


# --- Cases other parts of gapmap refuse (incidents, rasters, rendering, demo pipeline) --------
# These pass once those parts land; they are run with the rest of the suite.

def test_other_parts_permutations_bound(data, tmp_path):
    check(data, tmp_path, ["hotspots", "--incidents", str(data["incidents.csv"]),
                           "--permutations", "1000000000", "--out", "{out}"], 2, "permutations", process=True)


def test_other_parts_negative_fatalities(data, tmp_path):
    p = tmp_path / "acled.csv"
    df = pd.read_csv(data["incidents.csv"])
    pd.DataFrame({"event_id_cnty": [f"IRQ{i}" for i in range(len(df))],
                  "event_date": df["date"], "latitude": df["lat"], "longitude": df["lon"],
                  "event_type": "Battles", "fatalities": [-1000] + [0] * (len(df) - 1),
                  "geo_precision": 1}).to_csv(p, index=False)
    check(data, tmp_path, ["hotspots", "--incidents", str(p), "--incidents-format", "acled",
                           "--out", "{out}"], 2, "fatalities", extra_inputs=(p,), process=True)


def test_other_parts_date_out_of_range_is_dropped_with_a_count(data, tmp_path):
    p = tmp_path / "inc.csv"
    df = pd.read_csv(data["incidents.csv"])
    df.loc[0, "date"] = "9999-12-31"
    df.to_csv(p, index=False)
    code, err, output, _ = run_process(["hotspots", "--incidents", str(p), "--permutations",
                                        "99", "--out", str(tmp_path / "o")])
    assert code == 0, output
    assert any("1" in x and "date" in x for x in err.splitlines()
               if x.startswith("gapmap: warning")), err


def test_other_parts_whole_world_dem_refused_with_the_figure(data, tmp_path):
    import rasterio
    from affine import Affine

    tiles = tmp_path / "tiles"
    tiles.mkdir()
    # One 1″ tile: the cell size the estimate is made from.
    with rasterio.open(tiles / "t.tif", "w", driver="GTiff", width=10, height=10, count=1,
                       dtype="int16", crs="EPSG:4326",
                       transform=Affine(1 / 3600, 0, 44.0, 0, -1 / 3600, 35.0)) as ds:
        ds.write(np.ones((1, 10, 10), np.int16))
    check(data, tmp_path, ["dem", "--bbox", "-180,-90,180,90", "--tiles", str(tiles),
                           "--out", str(tmp_path / "out.html")], 2, "GiB", out_kind="file", process=True)


def test_other_parts_tile_template_attribute_access(data, tmp_path):
    check(data, tmp_path, ["dem", "--bbox", "44,35,45,36", "--tiles",
                           "{lat.__class__}/x.tif", "--out", str(tmp_path / "out.html")], 2,
          "--tiles", out_kind="file", process=True)


def test_other_parts_truncated_tiff(data, tmp_path):
    t = tmp_path / "trunc.tif"
    t.write_bytes(data["dem.tif"].read_bytes()[:300])
    check(data, tmp_path, ["terrain", "--dem", str(t), "--out", "{out}"], 2, "trunc.tif",
          extra_inputs=(t,), process=True)


def test_other_parts_tiny_candidate_spacing(data, tmp_path):
    check(data, tmp_path, ["place", "--k", "2", "--candidate-spacing-km", "0.0001",
                           *analysis(data), "--out", "{out}"], 2, "candidate", process=True)


def test_other_parts_route_origin_equals_target(data, tmp_path):
    # Origin = target is a zero-hour route (it crashed in GEOS before), not a refusal.
    out = tmp_path / "routes.gpkg"
    before = digest(data["dir"])
    exit_code, err, _, _ = run_process(["routes", "--dem", str(data["dem.tif"]), "--from",
                                        str(data["posts.geojson"]), "--to",
                                        str(data["posts.geojson"]), "--pairs", "zip",
                                        "--out", str(out)])
    assert exit_code == 0, err
    assert "Traceback" not in err
    routes = gpd.read_file(out)
    assert len(routes) and (routes["hours"] == 0).all() and (routes["km"] == 0).all()
    assert digest(data["dir"]) == before


def test_routes_unknown_output_extension(data, tmp_path):
    check(data, tmp_path, ["routes", "--dem", str(data["dem.tif"]), "--from",
                           str(data["posts.geojson"]), "--to", str(data["posts.geojson"]),
                           "--out", str(tmp_path / "out.html")], 2, ".gpkg", out_kind="file")


@pytest.mark.parametrize("width", ["0", "100000"])
def test_other_parts_figure_sizes(data, tmp_path, width):
    check(data, tmp_path, ["figure", *analysis(data), "--width-in", width, "--out",
                           str(tmp_path / "out.png")], 2, "--width-in", out_kind="file", process=True)


def test_other_parts_unknown_figure_extension(data, tmp_path):
    check(data, tmp_path, ["figure", *analysis(data), "--out", str(tmp_path / "out.xyz")], 2,
          ".xyz", out_kind="file", process=True)


def test_other_parts_demo_out_fifo_refused_before_running(data, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    check(data, tmp_path, ["demo", "--quick", "--out", str(fifo)], 2, "is a FIFO", process=True)
