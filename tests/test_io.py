"""Reading layers: formats, CRS handling, repair, and the errors users see."""

from __future__ import annotations

import hashlib
import warnings

import geopandas as gpd
import pytest
import shapely

from gapmap import InputError, load_posts, load_study_area, load_zones, parse_side, read_layer
from gapmap.io import atomic_dir, atomic_path

A = parse_side("krg=peshmerga")
B = parse_side("federal=isf,pmf")


@pytest.mark.parametrize("ext,driver", [(".geojson", "GeoJSON"), (".gpkg", "GPKG"),
                                        (".shp", "ESRI Shapefile"), (".fgb", "FlatGeobuf"),
                                        (".parquet", None)])
def test_formats_roundtrip(tmp_path, strips, ext, driver):
    p = tmp_path / f"zones{ext}"
    if driver is None:
        strips.to_parquet(p)
    else:
        strips.to_crs(4326 if ext == ".geojson" else strips.crs).to_file(p, driver=driver)
    z = load_zones(p, A, B)
    # FlatGeobuf reorders features by its spatial index: compare by name.
    assert sorted(zip(z["name"], z["side"])) == [("north", "a"), ("south", "b")]
    assert z.crs is not None


def test_gpkg_layer_option(tmp_path, strips):
    p = tmp_path / "all.gpkg"
    strips.to_file(p, layer="zones")
    strips.to_file(p, layer="other")
    assert len(read_layer(p, "zones")) == 2
    with pytest.raises(InputError, match="all.gpkg"):
        read_layer(p, "nope")


def test_no_crs_is_an_error_that_says_how(tmp_path, strips):
    p = tmp_path / "nocrs.shp"
    strips.set_crs(None, allow_override=True).to_file(p)
    with pytest.raises(InputError) as e:
        load_zones(p, A, B)
    msg = str(e.value)
    assert "nocrs.shp" in msg and "crs" in msg and "EPSG" in msg and "\n" not in msg


def test_invalid_geometry_repaired_with_warning(tmp_path):
    bowtie = shapely.Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])
    gdf = gpd.GeoDataFrame({"force": ["peshmerga", "isf"]},
                           geometry=[bowtie, shapely.box(20, 0, 30, 10)], crs=32638)
    p = tmp_path / "bad.gpkg"
    gdf.to_file(p)
    with pytest.warns(UserWarning, match="repaired 1 invalid"):
        z = load_zones(p, A, B)
    assert z.geometry.is_valid.all()
    assert z.geometry.iloc[0].area == pytest.approx(50.0)


def test_force_field_and_sides_errors(tmp_path, strips):
    p = tmp_path / "z.gpkg"
    strips.rename(columns={"force": "holder"}).to_file(p)
    with pytest.raises(InputError, match="--force-field"):
        load_zones(p, A, B)
    z = load_zones(p, A, B, force_field="holder")
    assert z["side"].tolist() == ["a", "b"]
    with pytest.raises(InputError, match="no zone belongs to side x"):
        load_zones(p, parse_side("x=nobody"), B, force_field="holder")
    with pytest.raises(InputError, match="both sides"):
        load_zones(p, parse_side("x=isf"), B, force_field="holder")


def test_force_values_are_case_insensitive(tmp_path, strips):
    z = load_zones(strips.assign(force=[" Peshmerga", "ISF"]), A, B)
    assert z["side"].tolist() == ["a", "b"]


def test_bad_side_spec():
    for text in ("krg", "=a", "krg="):
        with pytest.raises(InputError, match="NAME=force1,force2"):
            parse_side(text)


def test_posts_defaults_and_bad_values(tmp_path):
    pts = gpd.GeoDataFrame({"range_km": [3.0, None], "name": ["a", "b"]},
                           geometry=[shapely.Point(0, 0), shapely.Point(1, 1)], crs=32638)
    posts = load_posts(pts, default_range_km=5, default_height_m=10)
    assert posts["range_km"].tolist() == [3.0, 5.0]
    assert posts["height_m"].tolist() == [10.0, 10.0]
    p = tmp_path / "posts.geojson"
    pts.assign(range_km=["far", "2"]).to_crs(4326).to_file(p)
    with pytest.raises(InputError, match="range_km.*not numbers"):
        load_posts(p)


def test_posts_must_be_points(tmp_path, strips):
    p = tmp_path / "posts.gpkg"
    strips.to_file(p)
    with pytest.raises(InputError, match="must be Point"):
        load_posts(p)


def test_missing_file():
    with pytest.raises(InputError, match="not found"):
        read_layer("/nonexistent/zones.geojson", what="zones")


def test_study_area_dissolved(strips):
    sa = load_study_area(strips)
    assert len(sa) == 1 and sa.geometry.iloc[0].area == pytest.approx(strips.area.sum())


def test_inputs_are_not_modified(tmp_path, strips):
    p = tmp_path / "z.geojson"
    strips.to_crs(4326).to_file(p)
    before = hashlib.sha256(p.read_bytes()).hexdigest()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_zones(p, A, B)
    assert hashlib.sha256(p.read_bytes()).hexdigest() == before


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_dir_commits_all_or_nothing(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.csv").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as stage:
            (stage / "keep.csv").write_text("new")
            raise RuntimeError("boom")
    assert (out / "keep.csv").read_text() == "old"
    assert sorted(x.name for x in out.iterdir()) == ["keep.csv"]
    with atomic_dir(out) as stage:
        (stage / "keep.csv").write_text("new")
    assert (out / "keep.csv").read_text() == "new"


# --------------------------------------------------------------------------------------------
# point tables (posts, checkpoints, candidate sites) from latitude/longitude columns


def test_posts_csv_read_like_incident_csvs(tmp_path):
    from gapmap.io import load_posts

    f = tmp_path / "posts.csv"
    f.write_bytes("\ufeffName;LATITUDE;Longitude;range_km;height_m;force\n"
                  "Post 1;35.47;44.39;4;;ISF\nPost 2;35.10;44.50;;15;pmf\n".encode("utf-8"))
    posts = load_posts(f)
    assert posts.crs.to_epsg() == 4326 and len(posts) == 2
    assert [(round(p.x, 2), round(p.y, 2)) for p in posts.geometry] == [(44.39, 35.47),
                                                                        (44.5, 35.1)]
    assert posts["range_km"].tolist() == [4.0, 5.0] and posts["height_m"].tolist() == [10.0, 15.0]
    assert posts["force"].tolist() == ["isf", "pmf"] and posts["Name"].tolist() == ["Post 1",
                                                                                   "Post 2"]


def test_checkpoints_csv_for_routes(tmp_path):
    from gapmap.routes import _points_layer

    f = tmp_path / "checkpoints.csv"
    f.write_text("id,lat,lon\nA,35.0,44.0\nB,35.1,44.1\n", encoding="latin-1")
    cps = _points_layer(f, "checkpoints")
    assert cps["id"].tolist() == ["A", "B"] and cps.geom_type.eq("Point").all()


@pytest.mark.parametrize("text, words", [
    ("name,northing,easting\nA,1,2\n", ["latitude/longitude", "northing, easting"]),
    ("name,lat,lon\nA,35.1,44\nB,,44\n", ["1 row(s)", "row 3"]),
    ("name,lat,lon\nA,135.1,44\n", ["row 2", "-90 to 90"]),
    ("", ["empty"]),
])
def test_bad_point_tables(tmp_path, text, words):
    from gapmap.io import load_posts

    f = tmp_path / "posts.csv"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_posts(f)
    msg = str(err.value)
    assert "posts.csv" in msg and all(w in msg for w in words) and "\n" not in msg, msg


def test_cli_posts_csv(tmp_path):
    """A posts CSV gives the analysis the same figures as the same posts as a layer."""
    import json

    from click.testing import CliRunner

    from gapmap.cli import main

    from .scenes import strips, strips_area, two_posts

    zones, area = tmp_path / "zones.geojson", tmp_path / "area.geojson"
    strips().to_crs(4326).to_file(zones)
    strips_area().to_crs(4326).to_file(area)
    layer = two_posts(forces=["isf", "peshmerga"]).to_crs(4326)
    layer.to_file(tmp_path / "posts.geojson")
    table = layer.drop(columns="geometry").assign(latitude=layer.geometry.y,
                                                  longitude=layer.geometry.x)
    table.to_csv(tmp_path / "posts.csv", index=False)
    km = {}
    for name in ("posts.csv", "posts.geojson"):
        out = tmp_path / name.replace(".", "_")
        r = CliRunner().invoke(main, ["metrics", "--zones", str(zones), "--side-a",
                                      "krg=peshmerga", "--side-b", "federal=isf,pmf",
                                      "--posts", str(tmp_path / name), "--study-area",
                                      str(area), "--out", str(out)])
        assert r.exit_code == 0, r.output
        km[name] = json.loads((out / "summary.json").read_text())["pairs"][0]["unguarded_length_km"]
    # two posts of 5 km leave [0, 17], [23, 45] and [55, 100] km of the 100 km seam
    assert km["posts.csv"] == pytest.approx(km["posts.geojson"], rel=1e-9)
    assert km["posts.csv"] == pytest.approx(84.0, rel=2e-3)
