"""Named places: reading a places layer, and naming points by the nearest place."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Geod

from gapmap.errors import InputError
from gapmap.places import compass, describe_locations, load_places

GEOD = Geod(ellps="WGS84")


def _towns():
    return gpd.GeoDataFrame({"name": ["Daquq", "Tuz Khurmatu", "Kirkuk"]}, crs=4326,
                            geometry=[shapely.Point(44.45, 35.14), shapely.Point(44.63, 34.88),
                                      shapely.Point(44.39, 35.47)])


def _at(lon, lat, az_deg, km):
    x, y, _ = GEOD.fwd(lon, lat, az_deg, km * 1000.0)
    return shapely.Point(x, y)


def test_describe_by_geodesic_distance_and_bearing():
    pts = gpd.GeoDataFrame(geometry=[_at(44.45, 35.14, 45, 4.2), _at(44.45, 35.14, 180, 2.6),
                                     _at(44.39, 35.47, 290, 7.4), _at(44.63, 34.88, 100, 0.6)],
                           crs=4326, index=["a", "b", "c", "d"])
    out = describe_locations(pts, _towns())
    assert out.index.tolist() == ["a", "b", "c", "d"]
    assert out.tolist() == ["near Daquq, 4 km NE", "near Daquq, 3 km S", "near Kirkuk, 7 km W",
                            "at Tuz Khurmatu"]


def test_describe_points_in_another_crs_and_polygons():
    pts = gpd.GeoDataFrame(geometry=[_at(44.45, 35.14, 90, 5.0)], crs=4326).to_crs(32638)
    assert describe_locations(pts, _towns().to_crs(32638)).tolist() == ["near Daquq, 5 km E"]
    square = gpd.GeoDataFrame(geometry=[_at(44.45, 35.14, 0, 3.0).buffer(0.001)], crs=4326)
    assert describe_locations(square, _towns()).tolist() == ["near Daquq, 3 km N"]


def test_nearest_is_the_geodesic_nearest_among_many():
    rng = np.random.default_rng(1)
    lon, lat = rng.uniform(43, 46, 400), rng.uniform(33, 37, 400)
    places = gpd.GeoDataFrame({"name": [f"p{i}" for i in range(400)]}, crs=4326,
                              geometry=gpd.points_from_xy(lon, lat))
    qlon, qlat = rng.uniform(43, 46, 50), rng.uniform(33, 37, 50)
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(qlon, qlat), crs=4326)
    got = describe_locations(pts, places)
    for i in range(50):
        _, _, d = GEOD.inv(np.full(400, qlon[i]), np.full(400, qlat[i]), lon, lat)
        want = f"p{int(np.argmin(d))}"
        assert got.iloc[i].split(",")[0].split()[-1] == want


def test_compass_sectors():
    assert [compass(a) for a in (0, 22.4, 22.6, 90, 180, 250, 292.6, 359)] == \
        ["N", "N", "NE", "E", "S", "W", "NW", "N"]


def test_empty_places_give_empty_names():
    pts = gpd.GeoDataFrame(geometry=[shapely.Point(44, 35)], crs=4326)
    assert describe_locations(pts, _towns().iloc[:0]).tolist() == [""]


def test_load_sample_places():
    places = load_places("geodata/places.geojson")
    assert {"Kirkuk", "Mosul"} <= set(places["name"]) and len(places) >= 20
    assert places["population"].dtype == float and (places["population"] > 0).any()
    assert places.crs.to_epsg() == 4326


@pytest.mark.parametrize("field", ["NAME", "Name", "asciiname", "ADM2_EN"])
def test_name_field_found_by_name(field):
    raw = gpd.GeoDataFrame({field: ["X"], "other": [1]}, geometry=[shapely.Point(44, 35)],
                           crs=4326)
    assert load_places(raw)["name"].tolist() == ["X"]


def test_named_field_and_csv(tmp_path):
    f = tmp_path / "towns.csv"
    f.write_text("town,lat,lon,population\nDaquq,35.14,44.45,\nKirkuk,35.47,44.39,1e6\n",
                 encoding="utf-8")
    places = load_places(f, name_field="town")
    assert places["name"].tolist() == ["Daquq", "Kirkuk"]
    assert np.isnan(places["population"].iloc[0]) and places["population"].iloc[1] == 1e6


def test_no_name_field_lists_the_fields(tmp_path):
    f = tmp_path / "places.geojson"
    gpd.GeoDataFrame({"label_ar": ["x"], "pop": [3]}, geometry=[shapely.Point(44, 35)],
                     crs=4326).to_file(f)
    with pytest.raises(InputError) as err:
        load_places(f)
    msg = str(err.value)
    assert "places.geojson" in msg and "label_ar" in msg and "pop" in msg and "\n" not in msg
    with pytest.raises(InputError, match="town.*not found.*label_ar"):
        load_places(f, name_field="town")


@pytest.mark.parametrize("command", ["metrics", "place"])
def test_cli_places_without_name_exits_2(tmp_path, command):
    from click.testing import CliRunner

    from gapmap.cli import main

    f = tmp_path / "places.geojson"
    gpd.GeoDataFrame({"label_ar": ["x"]}, geometry=[shapely.Point(44.4, 35.4)],
                     crs=4326).to_file(f)
    out = tmp_path / "out"
    extra = ["--k", "2"] if command == "place" else []
    res = CliRunner().invoke(main, [command, *extra, "--config", "geodata/scenario.toml",
                                    "--places", str(f), "--out", str(out)])
    assert res.exit_code == 2, res.output
    lines = [x for x in res.output.splitlines() if x.startswith("gapmap: error")]
    assert len(lines) == 1 and "label_ar" in lines[0] and "places.geojson" in lines[0], lines
    assert "Traceback" not in res.output and not out.exists()


def test_scenario_places_key(tmp_path):
    from pathlib import Path

    from gapmap.run import Run
    from gapmap.scenario import load_scenario

    geo = Path("geodata").resolve()
    doc = tmp_path / "s.toml"
    doc.write_text(f"""[layers]
zones = "{geo / 'zones.geojson'}"
places = "{geo / 'places.geojson'}"
[sides]
a = "krg=peshmerga"
b = "federal=isf,pmf"
""", encoding="utf-8")
    sc = load_scenario(doc)
    assert sc.places == geo / "places.geojson" and sc.inputs()["places"].endswith("places.geojson")
    assert "Kirkuk" in set(Run(sc).places["name"])
    renamed = Run(load_scenario(doc, places_name_field="geonames_name")).places
    assert "Al-'Alam" in set(renamed["name"])
    plain = tmp_path / "plain.toml"
    plain.write_text(doc.read_text(encoding="utf-8").replace("places =", "# places ="),
                     encoding="utf-8")
    assert Run(load_scenario(plain)).places is None
