"""Checks of the shipped sample data (``geodata/``) and of its build script."""

from __future__ import annotations

import filecmp
import importlib.util
import os
import sys
import tomllib
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from pyproj import CRS, Geod

ROOT = Path(__file__).resolve().parents[1]
GEODATA = ROOT / "geodata"
# the reference data the sample is built from (scripts/build_geodata.py --src)
SRC = Path(os.environ.get("GAPMAP_GEODATA_SRC", Path(__file__).resolve().parents[1] / "geodata" / "sources"))
SCRIPT = ROOT / "scripts" / "build_geodata.py"
VECTORS = ["zones", "posts", "study_area", "roads", "places", "zones_2017-06-30",
           "zones_2017-10-31", "posts_dated", "rivers", "lakes"]
TABLES = ["incidents_ucdp_ged.csv", "incidents_ucdp_ged_dated.csv"]
DISTRICTS = {  # PCODE: CSO name
    "IQG15Q07": "Sinjar", "IQG15Q08": "Telafar", "IQG15Q09": "Tilkaef",
    "IQG15Q03": "Al-Hamdaniya", "IQG15Q06": "Al-Shikhan", "IQG15Q01": "Aqra",
    "IQG11Q04": "Makhmour", "IQG13Q04": "Kirkuk", "IQG13Q02": "Daquq", "IQG13Q01": "Al-Hawiga",
    "IQG13Q03": "Dibis", "IQG16Q07": "Tooz Khurmato", "IQG10Q05": "Khanaqin", "IQG10Q06": "Kifri",
}
UTM38 = "EPSG:32638"


def _build_module():
    spec = importlib.util.spec_from_file_location("build_geodata", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_geodata", mod)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def layers() -> dict[str, gpd.GeoDataFrame]:
    return {name: gpd.read_file(GEODATA / f"{name}.geojson") for name in VECTORS}


@pytest.fixture(scope="module")
def belt_bbox(layers) -> tuple[float, float, float, float]:
    w, s, e, n = layers["study_area"].total_bounds
    return (w - 0.5, s - 0.5, e + 0.5, n + 0.5)


def test_all_files_present_and_sizes():
    names = {p.name for p in GEODATA.iterdir() if p.is_file()}
    wanted = {f"{v}.geojson" for v in VECTORS} | set(TABLES) | {
        "dem_synthetic.tif", "scenario.toml", "README.md"}
    assert wanted <= names, sorted(wanted - names)
    total = sum(p.stat().st_size for p in GEODATA.rglob("*") if p.is_file())
    assert total < 25 * 2**20
    assert (GEODATA / "dem_synthetic.tif").stat().st_size < 16 * 2**20


@pytest.mark.parametrize("name", VECTORS)
def test_vector_layers_load_in_wgs84_with_note(layers, name):
    gdf = layers[name]
    assert len(gdf) > 0
    assert CRS(gdf.crs).equals(CRS("EPSG:4326"))
    assert gdf.geometry.is_valid.all()
    w, s, e, n = gdf.total_bounds
    assert 38.0 < w < e < 49.0 and 29.0 < s < n < 38.0  # inside Iraq's lon/lat frame
    assert "note" in gdf.columns and gdf["note"].str.len().gt(20).all()


def test_force_layout_says_it_is_illustrative(layers):
    for name in ("zones", "posts", "zones_2017-06-30", "posts_dated"):
        assert layers[name]["note"].str.contains("ILLUSTRATIVE").all(), name
    assert layers["roads"]["note"].str.contains("chematic").all()
    assert (layers["roads"]["kind"] == "schematic").all()
    assert layers["places"]["note"].str.contains("GeoNames").all()
    readme = (GEODATA / "README.md").read_text(encoding="utf-8")
    for word in ("ILLUSTRATIVE", "schematic", "terrain below 1 km is modelled", "CC BY-IGO",
                 "CC BY 4.0", "Sundberg", "public domain", "Jalawla", "GLOBE", "GSHHG",
                 "CC BY-SA", "crossing_hours"):
        assert word in readme, word


def test_zones_forces_and_no_overlap_between_sides(layers):
    z = layers["zones"].to_crs(UTM38)
    assert set(z["force"]) == {"peshmerga", "isf", "pmf"}
    assert z.geom_type.isin(["Polygon", "MultiPolygon"]).all()
    krg = shapely.union_all(z.loc[z.force == "peshmerga"].geometry.values)
    fed = shapely.union_all(z.loc[z.force != "peshmerga"].geometry.values)
    # touching is allowed; overlap is not, beyond the 6-decimal rounding of the written
    # vertices (≤ 0.1 m along ~1,500 km of shared edge: ≤ 150 m²)
    assert krg.intersection(fed).area < 150.0
    # the federal zones stay out of the Kurdistan Region but reach into the belt
    study = shapely.union_all(layers["study_area"].to_crs(UTM38).geometry.values)
    assert fed.intersection(study).area > 1e9
    # and the belt keeps wide unheld ground: a large part of the study area is held by nobody
    free = study.difference(krg).difference(fed)
    assert free.area / study.area > 0.5


def test_zones_peshmerga_zone_is_the_krg(layers):
    z = layers["zones"].to_crs(UTM38)
    krg = shapely.union_all(z.loc[z.force == "peshmerga"].geometry.values)
    # Erbil, Duhok, Sulaymaniyah and Halabja lie in it; Kirkuk and Mosul do not
    pts = gpd.GeoSeries(gpd.points_from_xy([44.009, 42.988, 45.433, 45.986, 44.392, 43.119],
                                           [36.191, 36.866, 35.565, 35.178, 35.468, 36.335]),
                        crs="EPSG:4326").to_crs(UTM38)
    inside = shapely.contains(krg, pts.values)
    assert inside.tolist() == [True, True, True, True, False, False]
    # the KRG area is about that of the three governorates (~40,600 km²) minus Makhmour district
    geod = Geod(ellps="WGS84")
    area_km2 = abs(sum(geod.geometry_area_perimeter(g)[0] for g in
                       layers["zones"].loc[layers["zones"].force == "peshmerga"].geometry)) / 1e6
    assert 30_000 < area_km2 < 42_000


def test_posts_points_with_numeric_range_and_height(layers):
    p = layers["posts"]
    assert (p.geom_type == "Point").all()
    assert 100 <= len(p) <= 400
    assert pd.api.types.is_numeric_dtype(p["range_km"])
    assert pd.api.types.is_numeric_dtype(p["height_m"])
    assert p["range_km"].between(3, 8).all() and p["range_km"].nunique() > 3
    assert p["height_m"].between(5, 20).all() and p["height_m"].nunique() > 3
    assert set(p["kind"]) <= {"road", "town entry", "line crossing", "front line", "ridge crest"}
    assert {"road", "town entry", "front line", "ridge crest"} <= set(p["kind"])
    assert {"peshmerga", "isf"} <= set(p["force"])
    assert p["name"].is_unique


def test_krg_posts_sit_just_inside_the_krg_line(layers):
    z = layers["zones"].to_crs(UTM38)
    krg = shapely.union_all(z.loc[z.force == "peshmerga"].geometry.values)
    p = layers["posts"].to_crs(UTM38)
    pk = p.loc[(p.force == "peshmerga") & (p.kind == "front line")].geometry.values
    assert len(pk) > 10
    assert shapely.contains(krg, pk).all()
    d = shapely.distance(krg.boundary, pk)
    assert np.allclose(d, 2000.0, atol=50.0)


def test_study_area_holds_the_named_districts(layers):
    sa = layers["study_area"]
    assert {"ADM2_EN", "ADM2_PCODE", "ADM1_EN"} <= set(sa.columns)
    assert sa["ADM2_PCODE"].is_unique
    got = dict(zip(sa["ADM2_PCODE"], sa["ADM2_EN"]))
    for code, name in DISTRICTS.items():
        assert got.get(code) == name, code
    # each district's area matches the source polygon's (simplification is slight)
    src = gpd.read_file(SRC / "boundaries" / "irq_admbnda_adm2_cso_20190603.geojson")
    src = src.set_index("ADM2_PCODE").loc[sa["ADM2_PCODE"]]
    ratio = sa.to_crs(UTM38).area.to_numpy() / src.set_crs(4326, allow_override=True).to_crs(
        UTM38).area.to_numpy()
    assert np.allclose(ratio, 1.0, atol=0.005)


def test_roads_and_places_are_real_towns(layers):
    r, pl = layers["roads"], layers["places"]
    assert (r.geom_type == "LineString").all()
    names = set(pl["name"])
    assert set(r["from"]) | set(r["to"]) <= names
    # every road end is a place
    ends = np.r_[shapely.get_coordinates(shapely.get_point(r.geometry.values, 0)),
                 shapely.get_coordinates(shapely.get_point(r.geometry.values, -1))]
    pts = shapely.get_coordinates(pl.geometry.values)
    assert (np.abs(ends[:, None, :] - pts[None, :, :]).max(axis=2).min(axis=1) < 1e-6).all()
    # GeoNames towns keep their GeoNames coordinates
    gn = pd.read_csv(SRC / "places" / "geonames_iraq_cities500.csv").set_index("geonameid")
    known = pl.dropna(subset=["geonameid"])
    ref = gn.loc[known["geonameid"].astype(int)]
    assert np.allclose(known.geometry.x, ref["longitude"], atol=1e-6)
    assert np.allclose(known.geometry.y, ref["latitude"], atol=1e-6)
    # Jalawla is not in GeoNames: its point is an ADM3 centroid and says so
    jal = pl.loc[pl["name"] == "Jalawla"].iloc[0]
    assert pd.isna(jal["geonameid"]) and "centroid" in jal["location_source"]
    assert "IQG10Q05N04" in jal["location_source"]


def test_link_lengths_match_pyproj_geod(layers):
    r = layers["roads"]
    geod = Geod(ellps="WGS84")
    geod_km = np.array([geod.geometry_length(g) for g in r.geometry]) / 1e3
    utm_km = r.to_crs(UTM38).length.to_numpy() / 1e3
    # the links are real distances between towns: 5–150 km, and UTM agrees with geodesic to 0.5 %
    assert geod_km.min() > 5 and geod_km.max() < 160
    assert np.allclose(utm_km, geod_km, rtol=5e-3)


def test_incidents_inside_the_belt_and_columns_as_released(belt_bbox):
    w, s, e, n = belt_bbox
    src_cols = {
        "incidents_ucdp_ged.csv": "ucdp_ged_iraq_2003_2019_yearly.csv",
        "incidents_ucdp_ged_dated.csv": "ucdp_ged_iraq_sample_dated_1991_2024.csv",
    }
    for name, src_name in src_cols.items():
        df = pd.read_csv(GEODATA / name)
        src = pd.read_csv(SRC / "conflict" / src_name)
        assert list(df.columns) == list(src.columns)
        assert len(df) > 0
        assert df["longitude"].between(w - 1e-3, e + 1e-3).all()
        assert df["latitude"].between(s - 1e-3, n + 1e-3).all()
        assert set(df["id"]) <= set(src["id"])
        # every source row inside the box is kept
        inside = src["longitude"].between(w + 1e-3, e - 1e-3) & src["latitude"].between(
            s + 1e-3, n - 1e-3)
        assert set(src.loc[inside, "id"]) <= set(df["id"])
        assert not any("event_id_cnty" in c for c in df.columns)  # never ACLED
    yearly = pd.read_csv(GEODATA / "incidents_ucdp_ged.csv")
    assert "year" in yearly.columns and "date" not in yearly.columns
    assert yearly["year"].between(2003, 2019).all()


def test_dem_is_a_labelled_cog_covering_the_study_area(layers):
    with rasterio.open(GEODATA / "dem_synthetic.tif") as ds:
        assert ds.crs.is_projected and ds.crs.linear_units in ("metre", "m")
        assert ds.dtypes[0] == "int16" and ds.nodata is not None
        assert abs(ds.res[0] - 90) < 1 and abs(ds.res[1] - 90) < 1
        assert ds.profile["compress"].lower() == "deflate" and ds.profile["tiled"]
        assert ds.overviews(1)
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert "terrain below 1 km is modelled" in ds.tags()["TIFFTAG_IMAGEDESCRIPTION"]
        assert ds.tags()["LABEL"] == "terrain below 1 km is modelled"
        assert "GLOBE" in ds.tags()["SOURCE"]
        sa = layers["study_area"].to_crs(ds.crs)
        w, s, e, n = sa.total_bounds
        b = ds.bounds
        assert b.left <= w - 15e3 and b.right >= e + 15e3
        assert b.bottom <= s - 15e3 and b.top >= n + 15e3
        ov = ds.read(1, out_shape=(ds.height // 8, ds.width // 8))
        assert (ov != ds.nodata).all()
        assert -100 < ov.min() and ov.max() < 4100


@pytest.fixture(scope="module")
def dem_vs_globe():
    """The sample DEM averaged onto GLOBE's own 30" grid, and GLOBE there (inside the DEM)."""
    from rasterio.warp import Resampling, reproject

    with rasterio.open(SRC / "dem" / "globe30s_north_iraq.tif") as g, \
            rasterio.open(GEODATA / "dem_synthetic.tif") as ds:
        ref = g.read(1).astype(float)
        avg = np.full(ref.shape, np.nan)
        reproject(ds.read(1).astype(float), avg, src_transform=ds.transform, src_crs=ds.crs,
                  src_nodata=ds.nodata, dst_transform=g.transform, dst_crs=g.crs,
                  dst_nodata=np.nan, resampling=Resampling.average)
        return ref, avg


def test_dem_follows_globe_at_1_km(dem_vs_globe):
    ref, avg = dem_vs_globe
    ok = np.isfinite(avg)
    # the DEM covers most of GLOBE's box (the belt plus 20 km)
    assert ok.mean() > 0.4
    r = np.corrcoef(avg[ok], ref[ok])[0, 1]
    rmse = float(np.sqrt(np.mean((avg[ok] - ref[ok]) ** 2)))
    assert r >= 0.95, r
    assert rmse <= 80.0, rmse


@pytest.mark.parametrize("place, lon, lat, lo, hi", [
    ("Kirkuk", 44.39, 35.47, 240, 440),     # GLOBE 338 m
    ("Erbil", 44.01, 36.19, 340, 540),      # GLOBE 437 m
    ("Mosul", 43.13, 36.34, 156, 356),      # GLOBE 256 m
])
def test_dem_spot_heights_within_100_m_of_globe(place, lon, lat, lo, hi):
    from pyproj import Transformer

    with rasterio.open(GEODATA / "dem_synthetic.tif") as ds, \
            rasterio.open(SRC / "dem" / "globe30s_north_iraq.tif") as g:
        xy = Transformer.from_crs(4326, ds.crs, always_xy=True).transform(lon, lat)
        z = float(next(ds.sample([xy]))[0])
        zg = float(next(g.sample([(lon, lat)]))[0])
    assert lo < zg < hi  # the reference itself, as SOURCES.md states it
    assert abs(z - zg) <= 100.0, (place, z, zg)


def test_dem_sinjar_ridge_top_and_hamrin_stand_out():
    from pyproj import Transformer
    from rasterio.windows import from_bounds

    with rasterio.open(GEODATA / "dem_synthetic.tif") as ds:
        tr = Transformer.from_crs(4326, ds.crs, always_xy=True)
        x0, y0 = tr.transform(41.6, 36.3)
        x1, y1 = tr.transform(42.2, 36.5)
        sinjar = ds.read(1, window=from_bounds(x0, y0, x1, y1, ds.transform))
        assert sinjar.max() >= 1200
        # Jebel Hamrin south of Tuz: its crest stands above the plain around it
        x0, y0 = tr.transform(44.55, 34.45)
        x1, y1 = tr.transform(44.85, 34.75)
        hamrin = ds.read(1, window=from_bounds(x0, y0, x1, y1, ds.transform))
        assert hamrin.max() - np.median(hamrin) > 80


def test_layouts_before_and_after_october_2017(layers):
    before = layers["zones_2017-06-30"].to_crs(UTM38)
    after = layers["zones_2017-10-31"].to_crs(UTM38)
    pb = shapely.union_all(before.loc[before.force == "peshmerga"].geometry.values)
    pa = shapely.union_all(after.loc[after.force == "peshmerga"].geometry.values)
    fa = shapely.union_all(after.loc[after.force != "peshmerga"].geometry.values)
    # Kirkuk, Sinjar, Makhmour and Khanaqin: Peshmerga-held before, federal after
    towns = {"Kirkuk": (44.392, 35.468), "Sinjar": (41.877, 36.321),
             "Makhmour": (43.580, 35.776), "Khanaqin": (45.391, 34.348)}
    pts = gpd.GeoSeries(gpd.points_from_xy(*zip(*towns.values())), crs=4326).to_crs(UTM38)
    assert shapely.contains(pb, pts.values).all()
    assert not shapely.intersects(pa, pts.values).any()
    assert shapely.contains(fa, pts.values).all()
    # the Peshmerga held more ground before (the belt's Kurdish-held places)
    assert pb.area > pa.area * 1.1
    # the default layout is the after one
    assert layers["zones"].geometry.equals(layers["zones_2017-10-31"].geometry)
    # the before layout is grounded in the control points: the Kurdish-marked places lie in
    # the Peshmerga ground
    ctl = pd.read_csv(SRC / "control" / "wikipedia_iraq_control_points_2017.csv")
    kurd = ctl.loc[ctl["mark"].str.startswith("SDF")]
    kp = gpd.GeoSeries(gpd.points_from_xy(kurd["lon"], kurd["lat"]), crs=4326).to_crs(UTM38)
    assert shapely.contains(pb.buffer(1.0), kp.values).mean() > 0.98


def test_dated_posts_follow_the_layouts(layers):
    p = layers["posts_dated"]
    assert {"active_from", "active_to"} <= set(p.columns)
    patrol = (p["kind"] == "patrol").to_numpy()
    ended = p["active_to"].notna() & ~patrol
    started = p["active_from"].notna() & ~patrol
    assert ended.sum() > 10 and started.sum() > 10 and not (ended & started).any()
    def days(col):
        return {str(pd.Timestamp(v).date()) for v in col}

    assert days(p.loc[ended, "active_to"]) == {"2017-10-15"}
    assert days(p.loc[started, "active_from"]) == {"2017-10-16"}
    # posts.geojson is the after date's set (the patrol was withdrawn before it)
    assert sorted(layers["posts"]["name"]) == sorted(p.loc[~ended & ~patrol, "name"])
    assert p["name"].is_unique


def test_withdrawn_anjata_patrol_on_the_kirkuk_baghdad_road(layers):
    p, r = layers["posts_dated"], layers["roads"]
    patrol = p.loc[p["kind"] == "patrol"]
    assert len(patrol) == 3 and patrol["name"].str.contains("Anjata").all()
    assert {str(pd.Timestamp(v).date()) for v in patrol["active_from"]} == {"2017-10-16"}
    assert {str(pd.Timestamp(v).date()) for v in patrol["active_to"]} == {"2017-10-25"}
    # active between the layouts' dates only: on neither 2017-06-30 nor 2017-10-31
    from gapmap.exposure import posts_on

    names = set(patrol["name"])
    assert names <= set(posts_on(p, "2017-10-20")["name"])
    assert not names & set(posts_on(p, "2017-10-31")["name"])
    assert not names & set(posts_on(p, "2017-06-30")["name"])
    # the stops lie on the road, south of Tuz Khurmatu (34.9° N) on the Anjanah–Adhaim leg
    kb = r.loc[r["name"].str.contains("Kirkuk–Baghdad")]
    assert set(kb["corridor"]) == {"Kirkuk–Baghdad"} and len(kb) == 5
    line = kb.loc[kb["from"] == "Tuz Khurmatu"].to_crs(UTM38).geometry.iloc[0]
    assert (patrol.to_crs(UTM38).distance(line) < 1.0).all()
    assert patrol.geometry.y.between(34.5, 34.6).all()
    # the stops are 1/3 of the ~12 km leg apart (geodesic)
    geod = Geod(ellps="WGS84")
    xy = patrol.sort_values("name").geometry
    gaps = [geod.inv(a.x, a.y, b.x, b.y)[2] / 1e3 for a, b in zip(xy[:-1], xy[1:])]
    assert gaps == pytest.approx([4.1, 4.1], abs=0.1)


def test_roads_are_named_by_corridor_and_ends(layers):
    r = layers["roads"]
    assert r["name"].is_unique
    for _, row in r.iterrows():
        ends = f"{row['from']}–{row['to']}"
        assert row["name"] == (f"{row['corridor']} road ({ends})"
                               if row["corridor"] and row["corridor"] != ends
                               else f"{ends} road")


def test_water_layers_from_gshhg(layers):
    rivers, lakes = layers["rivers"], layers["lakes"]
    assert (rivers.geom_type == "LineString").all()
    assert rivers["crossing_hours"].between(0.25, 4.0).all()
    # the permanent major rivers (Tigris, the Zabs, Diyala) are the dearest to cross
    major = rivers.loc[rivers["wdbii_level"] == 1, "crossing_hours"]
    assert (major == rivers["crossing_hours"].max()).all() and len(major) > 3
    assert {"Lake Tharthar", "Lake Dukan", "Darbandikhan Lake"} <= set(lakes["name"])
    geod = Geod(ellps="WGS84")
    dukan = lakes.loc[lakes["name"] == "Lake Dukan"].geometry.iloc[0]
    assert abs(geod.geometry_area_perimeter(dukan)[0]) / 1e6 == pytest.approx(133.3, rel=0.01)


def test_sample_run_has_water_and_lakes_block_walking():
    from affine import Affine

    from gapmap.run import Run
    from gapmap.scenario import load_scenario
    from gapmap.terrain import Dem
    from gapmap.water import walk_masks

    run = Run(load_scenario(GEODATA / "scenario.toml"))
    water = run.water
    assert water is not None and len(water.rivers) > 10 and len(water.lakes) >= 3
    assert water.bridges is not None  # the roads
    # a 1 km grid over Lake Dukan: the lake's cells are not walkable
    dukan = water.lakes.loc[water.lakes["name"] == "Lake Dukan"].geometry.iloc[0]
    x0, y0, x1, y1 = dukan.bounds
    n, m = int((y1 - y0) // 1000) + 1, int((x1 - x0) // 1000) + 1
    dem = Dem(np.zeros((n, m), np.float32), Affine(1000, 0, x0, 0, -1000, y0 + n * 1000),
              run.crs)
    walkable, extra = walk_masks(water, dem)
    assert 100 < (~walkable).sum() < 170  # ~133 km² of lake on 1 km² cells
    assert extra is not None and extra.max() > 0


def test_scenario_file_names_the_shipped_layers():
    sc = tomllib.loads((GEODATA / "scenario.toml").read_text(encoding="utf-8"))
    for key in ("zones", "posts", "study_area", "incidents", "dem", "roads", "rivers", "lakes"):
        assert (GEODATA / sc["layers"][key]).exists(), key
    assert sc["sides"] == {"a": "krg=peshmerga", "b": "federal=isf,pmf"}
    assert sc["parameters"] == {"reach_km": 2, "max_width_km": 150, "min_length_km": 1}
    assert sc["layers"]["force_field"] == "force"


def test_readme_checksums_match_files():
    import hashlib

    text = (GEODATA / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- sha256 -->")[1].split("<!-- /sha256 -->")[0]
    listed = {ln.split()[1]: ln.split()[0] for ln in block.splitlines() if len(ln.split()) >= 2
              and len(ln.split()[0]) == 64}
    files = {p.name for p in GEODATA.iterdir() if p.is_file() and p.name != "README.md"}
    assert set(listed) == files
    for name, digest in listed.items():
        assert hashlib.sha256((GEODATA / name).read_bytes()).hexdigest() == digest, name


def test_sample_loads_through_gapmap_io():
    from gapmap import parse_side
    from gapmap.io import load_posts, load_study_area, load_zones

    z = load_zones(GEODATA / "zones.geojson", parse_side("krg=peshmerga"),
                   parse_side("federal=isf,pmf"))
    assert set(z["side"]) == {"a", "b"}
    p = load_posts(GEODATA / "posts.geojson")
    assert p["range_km"].dtype == float and len(p) > 30
    sa = load_study_area(GEODATA / "study_area.geojson")
    assert len(sa) == 1 and sa.geometry.iloc[0].area > 0


def test_build_is_deterministic_and_matches_shipped_files(tmp_path):
    """Two builds of the vector and table layers are byte-identical and equal the shipped ones.

    The terrain build takes about a minute, so it is left out here; its seed is fixed and the
    README checksum test guards the shipped file.
    """
    mod = _build_module()
    a, b = tmp_path / "a", tmp_path / "b"
    mod.build(SRC, a, dem=False)
    mod.build(SRC, b, dem=False)
    names = [f"{v}.geojson" for v in VECTORS] + TABLES
    match, mismatch, errors = filecmp.cmpfiles(a, b, names + ["scenario.toml"], shallow=False)
    assert sorted(match) == sorted(names + ["scenario.toml"]), (mismatch, errors)
    match, mismatch, errors = filecmp.cmpfiles(a, GEODATA, names, shallow=False)
    assert sorted(match) == sorted(names), (mismatch, errors)
    # the shipped scenario is the built one, plus the [sources] tables kept as they are
    shipped = (GEODATA / "scenario.toml").read_text(encoding="utf-8")
    assert shipped.startswith((a / "scenario.toml").read_text(encoding="utf-8"))


def test_dem_build_is_deterministic_on_a_small_area(tmp_path):
    """The terrain code path gives byte-identical COGs (small area: the full build takes ~1 min)."""
    mod = _build_module()
    box = gpd.GeoDataFrame(geometry=[shapely.box(44.3, 34.55, 44.6, 34.75)], crs="EPSG:4326")
    info = [mod.build_dem(SRC, box, tmp_path / f"dem{i}.tif") for i in (1, 2)]
    assert info[0] == info[1]
    assert (tmp_path / "dem1.tif").read_bytes() == (tmp_path / "dem2.tif").read_bytes()
    with rasterio.open(tmp_path / "dem1.tif") as ds:
        z = ds.read(1)
        assert ds.crs.to_epsg() == 32638 and z.dtype == np.int16
        # Jebel Hamrin crosses this box: its crest stands above the plain around it
        assert z.max() - np.median(z) > 80
