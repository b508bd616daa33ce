"""Incident readers (ACLED, UCDP GED, CSV, point layers), assignment to corridors and the
exploitation ratio, against hand-computed answers and scipy's exact binomial."""

from __future__ import annotations

import csv
import dataclasses
import logging
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner
from pyproj import Geod, Transformer
from scipy import stats

from gapmap import InputError, analyze, parse_side
from gapmap.cli import main
from gapmap.errors import DatePrecisionWarning, InputWarning
from gapmap.incidents import (Incidents, admin_mismatches, date_bounds, place_similarity, exploitation_ratio, format_dates,
                              format_date_columns,
                              incident_metrics, nearest_seam_points, period_mask,
                              read_incidents, with_incidents)

from . import scenes
from .conftest import GEODATA, UTM38, X0, Y0

TO_LL = Transformer.from_crs(UTM38, 4326, always_xy=True)
KRG, FED = parse_side("krg=peshmerga"), parse_side("federal=isf,pmf")

# Events on the strips scene (seam x = X0 + 20 km, width 20 km, a post at (X0+20, Y0+50) with
# 5 km range splits the seam into a southern corridor (y 0–45 km) and a northern one
# (y 55–100 km)). Columns: dx km, dy km, fatalities, date, coarse; the expected outcome below.
EVENTS = [
    # dx, dy, fat, date, coarse      distance to seam → outcome
    (20, 20, 2, "2020-01-10", False),  # 0 km: south, in the gap
    (13, 30, 3, "2020-02-01", False),  # 7 km ≤ 10 + 5: south, in the gap
    (25, 80, 0, "2020-03-05", False),  # 5 km: north, in the gap
    (6, 70, 4, "2020-04-20", False),   # 14 km ≤ 15, inside zone A: north, not in the gap
    (3, 60, 1, "2020-05-02", False),   # 17 km > 15: not assigned, zone A
    (20, 52, 1, "2020-06-15", False),  # on the seam but covered by the post: no corridor
    (-15, 50, 1, "2020-07-01", False), # 35 km: not assigned, in the gap's outer band
    (70, 50, 9, "2020-08-01", False),  # outside the study area
    (20, 90, 7, "2020-09-09", True),   # coarse: left out unless include_coarse
]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September"]


def _lonlat(dx, dy):
    return TO_LL.transform(X0 + dx * 1e3, Y0 + dy * 1e3)


def write_acled(path, events=EVENTS, old=False, extra_rows=()):
    if old:
        cols = ["data_id", "iso", "event_id_cnty", "event_id_no_cnty", "event_date", "year",
                "time_precision", "event_type", "sub_event_type", "actor1", "assoc_actor_1",
                "inter1", "actor2", "assoc_actor_2", "inter2", "interaction", "region",
                "country", "admin1", "admin2", "admin3", "location", "latitude", "longitude",
                "geo_precision", "source", "source_scale", "notes", "fatalities", "timestamp",
                "iso3"]
    else:
        cols = ["event_id_cnty", "event_date", "year", "time_precision", "disorder_type",
                "event_type", "sub_event_type", "actor1", "assoc_actor_1", "inter1", "actor2",
                "assoc_actor_2", "inter2", "interaction", "civilian_targeting", "iso", "region",
                "country", "admin1", "admin2", "admin3", "location", "latitude", "longitude",
                "geo_precision", "source", "source_scale", "notes", "fatalities", "tags",
                "timestamp"]
    rows = []
    for k, (dx, dy, fat, date, coarse) in enumerate(events):
        lon, lat = _lonlat(dx, dy)
        d = pd.Timestamp(date)
        row = {c: "" for c in cols}
        row.update(event_id_cnty=f"IRQ{k + 1}", event_id_no_cnty=str(k + 1), data_id=str(900 + k),
                   event_date=(f"{d.day} {MONTHS[d.month - 1]} {d.year}" if old
                               else d.strftime("%Y-%m-%d")),
                   year=str(d.year), time_precision="1", disorder_type="Political violence",
                   event_type="Explosions/Remote violence" if k % 2 == 0 else "Battles",
                   sub_event_type="Remote explosive/landmine/IED" if k % 2 == 0 else
                   "Armed clash", actor1="Islamic State (Iraq)" if k % 3 else
                   "Military Forces of Iraq (2014-)",
                   actor2="Civilians (Iraq)", iso="368", iso3="IRQ", country="Iraq",
                   latitude=f"{lat:.7f}", longitude=f"{lon:.7f}",
                   geo_precision="3" if coarse else "1", notes=f"event {k + 1}",
                   fatalities=str(fat), timestamp="1600000000")
        rows.append(row)
    rows.extend(extra_rows)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in cols})
    return path


def write_ucdp(path, events=EVENTS):
    cols = ["id", "relid", "year", "active_year", "code_status", "type_of_violence",
            "conflict_dset_id", "conflict_new_id", "conflict_name", "dyad_dset_id",
            "dyad_new_id", "dyad_name", "side_a_dset_id", "side_a_new_id", "side_a",
            "side_b_dset_id", "side_b_new_id", "side_b", "number_of_sources", "source_article",
            "source_office", "source_date", "source_headline", "source_original",
            "where_prec", "where_coordinates", "where_description", "adm_1", "adm_2",
            "latitude", "longitude", "geom_wkt", "priogrid_gid", "country", "country_id",
            "region", "event_clarity", "date_prec", "date_start", "date_end", "deaths_a",
            "deaths_b", "deaths_civilians", "deaths_unknown", "best", "high", "low"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for k, (dx, dy, fat, date, coarse) in enumerate(events):
            lon, lat = _lonlat(dx, dy)
            row = {c: "" for c in cols}
            row.update(id=str(300000 + k), year=date[:4], type_of_violence="1",
                       dyad_name="Government of Iraq - IS", side_a="Government of Iraq",
                       side_b="IS", where_prec="4" if coarse else "1", latitude=f"{lat:.7f}",
                       longitude=f"{lon:.7f}", country="Iraq", date_prec="1",
                       date_start=f"{date} 00:00:00.000", date_end=f"{date} 00:00:00.000",
                       best=str(fat), source_headline=f"event {k + 1}")
            w.writerow(row)
    return path


@pytest.fixture(scope="module")
def scene():
    """The strips, their study area and one post at the middle of the seam."""
    return analyze(scenes.strips(), KRG, FED, posts=scenes.posts([(20, 50)], forces=["isf"]),
                   study_area=scenes.strips_area())


def _north_south(analysis):
    lat = (analysis.corridors["start_lat"] + analysis.corridors["end_lat"]) / 2
    ids = analysis.corridors["corridor_id"].to_numpy()
    return ids[np.argmax(lat.to_numpy())], ids[np.argmin(lat.to_numpy())]


# --------------------------------------------------------------------------------------------
# assignment


def test_scene_is_as_described(scene):
    assert len(scene.corridors) == 2
    assert scene.corridors["length_km"].to_numpy() == pytest.approx([45.0, 45.0], rel=2e-3)


@pytest.mark.parametrize("fmt", ["acled", "ucdp"])
def test_hand_computed_assignment(scene, tmp_path, fmt):
    path = (write_acled if fmt == "acled" else write_ucdp)(tmp_path / f"{fmt}.csv")
    inc = read_incidents(path)
    assert inc.source_format == fmt
    assert len(inc) == len(EVENTS)
    m = incident_metrics(scene, inc)
    north, south = _north_south(scene)
    t = m.incidents
    assert t["distance_km"].iloc[:7].to_numpy() == pytest.approx([0, 7, 5, 14, 17, 0, 35],
                                                                abs=1e-3)
    assert t["width_km"].iloc[:7].to_numpy() == pytest.approx([20] * 7, abs=1e-3)
    assert t["assigned"].tolist() == [True, True, True, True, False, True, False, False, False]
    assert t["corridor_id"].iloc[:4].tolist() == [south, south, north, north]
    assert t["corridor_id"].iloc[4:].isna().all()
    per = m.corridors.set_index("corridor_id")
    assert per.loc[south, "incidents"] == 2 and per.loc[north, "incidents"] == 2
    assert per.loc[south, "fatalities"] == 5 and per.loc[north, "fatalities"] == 4
    length = scene.corridors.set_index("corridor_id")["length_km"]
    assert per.loc[south, "incidents_per_100km"] == pytest.approx(2 / length[south] * 100)
    assert per.loc[south, "first_date"] == pd.Timestamp("2020-01-10")
    assert per.loc[south, "last_date"] == pd.Timestamp("2020-02-01")
    assert per.loc[north, "first_date"] == pd.Timestamp("2020-03-05")
    assert per.loc[north, "last_date"] == pd.Timestamp("2020-04-20")
    s = m.summary
    # Totals count the study area; the one event beyond it is reported apart.
    assert (s["incidents_total"], s["incidents_outside_study_area"]) == (8, 1)
    assert (s["incidents_coarse"], s["incidents_assigned"]) == (1, 5)
    assert (s["incidents_in_gap"], s["incidents_in_rest"]) == (5, 2)


def test_acled_and_ucdp_give_identical_answers(scene, tmp_path):
    a = incident_metrics(scene, read_incidents(write_acled(tmp_path / "a.csv")))
    u = incident_metrics(scene, read_incidents(write_ucdp(tmp_path / "u.csv")))
    pd.testing.assert_frame_equal(a.corridors, u.corridors)
    assert a.summary == u.summary
    cols = ["date", "fatalities", "coarse", "corridor_id", "distance_km", "assigned", "in_gap"]
    pd.testing.assert_frame_equal(pd.DataFrame(a.incidents[cols]),
                                  pd.DataFrame(u.incidents[cols]))


def test_coarse_events_only_on_request(scene, tmp_path):
    inc = read_incidents(write_ucdp(tmp_path / "u.csv"))
    assert inc.gdf["coarse"].tolist() == [False] * 8 + [True]
    north, _ = _north_south(scene)
    m = incident_metrics(scene, inc, include_coarse=True)
    per = m.corridors.set_index("corridor_id")
    assert per.loc[north, "incidents"] == 3 and per.loc[north, "fatalities"] == 11
    assert m.summary["incidents_in_gap"] == 6 and m.summary["incidents_coarse"] == 1


def test_margin_changes_assignment(scene, tmp_path):
    inc = read_incidents(write_acled(tmp_path / "a.csv"))
    assert incident_metrics(scene, inc, margin_km=0).summary["incidents_assigned"] == 4  # 14 > 10
    assert incident_metrics(scene, inc, margin_km=8).summary["incidents_assigned"] == 6  # 17 ≤ 18
    with pytest.raises(InputError, match="margin"):
        incident_metrics(scene, inc, margin_km=-1)


def test_exploitation_ratio_against_scipy_exact_binomial(scene, tmp_path):
    m = incident_metrics(scene, read_incidents(write_acled(tmp_path / "a.csv")))
    s = m.summary
    # Independent areas: the gap is the study area minus the zones grown by 2 km (x 12–28 km
    # and the two outer bands); the rest is the study box minus the gap, by pyproj.Geod.
    geod = Geod(ellps="WGS84")

    def area(x0, x1):
        ring = shapely.segmentize(shapely.box(X0 + x0 * 1e3, Y0, X0 + x1 * 1e3, Y0 + 100e3), 500)
        lon, lat = TO_LL.transform(*np.asarray(ring.exterior.coords).T)
        return abs(geod.polygon_area_perimeter(lon, lat)[0]) / 1e6

    a_gap = area(-20, -2) + area(12, 28) + area(42, 60)
    a_rest = area(-20, 60) - a_gap
    assert scene.gap["area_km2"].iloc[0] == pytest.approx(a_gap, rel=1e-4)
    assert s["rest_area_km2"] == pytest.approx(a_rest, rel=1e-3)
    k, n = 5, 7
    assert s["exploitation_ratio"] == pytest.approx((k / a_gap) / ((n - k) / a_rest), rel=1e-3)
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    to_r = lambda p: p / (1 - p) * a_rest / a_gap  # noqa: E731
    assert s["exploitation_ratio_low"] == pytest.approx(to_r(ci.low), rel=1e-3)
    assert s["exploitation_ratio_high"] == pytest.approx(to_r(ci.high), rel=1e-3)
    # Exactness: at the bounds, the binomial tails are 2.5% (Clopper–Pearson).
    p_of = lambda r: r * a_gap / (r * a_gap + a_rest)  # noqa: E731
    assert stats.binom.sf(k - 1, n, p_of(s["exploitation_ratio_low"])) == pytest.approx(0.025,
                                                                                        rel=1e-3)
    assert stats.binom.cdf(k, n, p_of(s["exploitation_ratio_high"])) == pytest.approx(0.025,
                                                                                     rel=1e-3)


def test_exploitation_ratio_edge_cases():
    assert all(math.isnan(v) for v in exploitation_ratio(0, 0, 10.0, 10.0))
    r, lo, hi = exploitation_ratio(0, 5, 10.0, 10.0)
    assert r == 0 and lo == 0 and 0 < hi < math.inf
    r, lo, hi = exploitation_ratio(5, 0, 10.0, 10.0)
    assert r == math.inf and hi == math.inf and lo > 0
    assert math.isnan(exploitation_ratio(3, 3, 0.0, 10.0)[0])
    # Twice the density in the gap with equal areas: p = 2/3.
    r, lo, hi = exploitation_ratio(200, 100, 50.0, 50.0)
    assert r == pytest.approx(2.0) and lo < 2.0 < hi


def test_with_incidents_adds_fields(scene, tmp_path):
    m = incident_metrics(scene, read_incidents(write_acled(tmp_path / "a.csv")))
    res = with_incidents(scene, m)
    assert res is not scene and "incidents" not in scene.corridors.columns
    assert isinstance(res.corridors, gpd.GeoDataFrame)
    assert res.corridors["incidents"].sum() == 4
    assert res.summary["exploitation_ratio"] == m.summary["exploitation_ratio"]
    assert res.summary["seam_length_km"] == scene.summary["seam_length_km"]
    assert pd.api.types.is_datetime64_any_dtype(res.corridors["first_date"])
    # The lead's writer takes it as it is.
    from gapmap.outputs import write_metrics

    files = write_metrics(res, tmp_path / "out")
    table = pd.read_csv(files["corridors.csv"])
    assert table["incidents"].sum() == 4 and "last_date" in table.columns
    other = dataclasses.replace(m, corridors=m.corridors.iloc[:1])
    with pytest.raises(ValueError, match="do not match"):
        with_incidents(scene, other)


def test_nearest_seam_points_match_shapely_distance():
    rng = np.random.default_rng(3)
    seam = np.array([shapely.LineString(rng.uniform(0, 50e3, (40, 2))),
                     shapely.LineString([(0, 0), (60e3, 5e3)])], dtype=object)
    xy = rng.uniform(-10e3, 70e3, (500, 2))
    q, d = nearest_seam_points(seam, xy)
    ref = shapely.distance(shapely.points(xy), shapely.union_all(seam))
    assert d == pytest.approx(ref, abs=1e-6)
    # q lies on the seam, at that distance.
    assert shapely.distance(shapely.points(q), shapely.union_all(seam)).max() < 1e-6
    assert np.hypot(*(xy - q).T) == pytest.approx(d)


def test_gdf_input_and_crs(scene):
    north, south = _north_south(scene)
    pts = gpd.GeoDataFrame({"fatalities": [1.0, 2.0]},
                           geometry=[shapely.Point(X0 + 22e3, Y0 + 10e3),
                                     shapely.Point(X0 + 18e3, Y0 + 90e3)], crs=UTM38)
    m = incident_metrics(scene, pts.to_crs(4326))
    assert m.incidents["corridor_id"].tolist() == [south, north]
    assert m.incidents["distance_km"].to_numpy() == pytest.approx([2.0, 2.0], abs=1e-3)


# --------------------------------------------------------------------------------------------
# readers


def test_old_and_new_acled_layouts_read_alike(tmp_path):
    new = read_incidents(write_acled(tmp_path / "new.csv"))
    old = read_incidents(write_acled(tmp_path / "old.csv", old=True))
    assert new.source_format == old.source_format == "acled"
    cols = ["date", "date_precision", "type", "sub_type", "actor", "actor2", "fatalities",
            "coarse", "source_id", "notes"]
    pd.testing.assert_frame_equal(pd.DataFrame(new.gdf[cols]), pd.DataFrame(old.gdf[cols]))
    assert new.gdf["date"].iloc[3] == pd.Timestamp("2020-04-20")
    assert new.gdf["type"].iloc[1] == "Battles"
    assert shapely.equals_exact(new.gdf.geometry.values, old.gdf.geometry.values, 1e-9).all()


def test_ucdp_yearly_dates_and_window():
    inc = read_incidents(GEODATA / "incidents_ucdp_ged.csv")
    raw = pd.read_csv(GEODATA / "incidents_ucdp_ged.csv")
    assert len(inc) == len(raw) and inc.source_format == "ucdp"
    assert (inc.gdf["date"].dt.month == 7).all() and (inc.gdf["date"].dt.day == 1).all()
    assert (inc.gdf["date"].dt.year.to_numpy() == raw["year"].to_numpy()).all()
    assert (inc.gdf["date_precision"] == "year").all()
    assert inc.gdf["coarse"].sum() == (raw["where_prec"] >= 3).sum()
    assert inc.gdf["fatalities"].sum() == raw["best"].sum()
    # A window inside 2017 cannot hold an event known only to 2017: counted apart, once.
    n2017 = int((raw["year"] == 2017).sum())
    for window in ({"since": "2017-10-16"}, {"until": "2017-10-15"},
                   {"since": "2017-10-16", "until": "2017-12-31"}):
        with pytest.warns(DatePrecisionWarning, match=f"{n2017} incident") as rec:
            win = read_incidents(GEODATA / "incidents_ucdp_ged.csv", **window)
        assert len([w for w in rec if w.category is DatePrecisionWarning]) == 1
        assert win.dropped["imprecise_date"] == n2017
        assert 2017 not in set(win.gdf["date"].dt.year)
        assert win.dropped["filtered"] + n2017 + len(win) == len(raw)
    # The whole of 2017 holds them all.
    full = read_incidents(GEODATA / "incidents_ucdp_ged.csv", since="2017-01-01",
                          until="2017-12-31")
    assert len(full) == n2017 and full.dropped["imprecise_date"] == 0


def test_ucdp_dated_sample_layout():
    inc = read_incidents(GEODATA / "incidents_ucdp_ged_dated.csv")
    raw = pd.read_csv(GEODATA / "incidents_ucdp_ged_dated.csv")
    assert len(inc) == len(raw) and inc.source_format == "ucdp"
    assert (inc.gdf["date"].dt.strftime("%Y-%m-%d").to_numpy() == raw["date"].to_numpy()).all()
    labels = {1: "state-based", 2: "non-state", 3: "one-sided"}
    assert inc.gdf["type"].tolist() == raw["type_of_violence"].map(labels).tolist()
    one_sided = read_incidents(GEODATA / "incidents_ucdp_ged_dated.csv", types=["3"])
    assert len(one_sided) == (raw["type_of_violence"] == 3).sum()
    assert len(read_incidents(GEODATA / "incidents_ucdp_ged_dated.csv",
                              types="one-sided")) == len(one_sided)


def test_generic_csv_columns_by_name_or_given(tmp_path):
    p = tmp_path / "g.csv"
    pd.DataFrame({"Y": [35.1, 35.2], "X": [44.1, 44.2], "when": ["2021-01-01", "2021-02-01"],
                  "Deaths": [1, 2]}).to_csv(p, index=False)
    inc = read_incidents(p)
    assert inc.source_format == "csv" and len(inc) == 2
    assert inc.gdf.geometry.x.tolist() == [44.1, 44.2]
    assert inc.gdf["fatalities"].tolist() == [1.0, 2.0]
    assert inc.gdf["date"].isna().all()  # no date column that it knows
    q = tmp_path / "h.csv"
    pd.DataFrame({"northing": [35.1], "easting": [44.1], "date": ["2021-01-01"]}).to_csv(
        q, index=False)
    inc = read_incidents(q, lat="northing", lon="easting")
    assert inc.gdf.geometry.y.tolist() == [35.1]
    assert inc.gdf["date"].iloc[0] == pd.Timestamp("2021-01-01")
    with pytest.raises(InputError, match="no lat/lon column"):
        read_incidents(q)
    with pytest.raises(InputError, match="'lat_dd' not found"):
        read_incidents(q, lat="lat_dd", lon="easting")
    with pytest.raises(InputError, match="--since"):
        read_incidents(p, since="2021-01-01")  # no date column to filter by


def test_point_layer(tmp_path):
    pts = gpd.GeoDataFrame({"event_date": ["2019-05-01", "2019-05-02", "2019-05-03"],
                            "event_type": ["Battles"] * 3, "fatalities": [1, 0, 2],
                            "geo_precision": [1, 3, 2], "event_id_cnty": ["a", "b", "c"]},
                           geometry=[shapely.Point(X0, Y0), shapely.Point(X0 + 1e3, Y0),
                                     None], crs=UTM38)
    p = tmp_path / "pts.gpkg"
    pts.to_file(p, layer="events")
    inc = read_incidents(p)
    assert inc.source_format == "vector"
    assert len(inc) == 2 and inc.dropped["no_coordinates"] == 1
    assert inc.gdf["coarse"].tolist() == [False, True]
    assert inc.gdf["date"].tolist() == [pd.Timestamp("2019-05-01"), pd.Timestamp("2019-05-02")]
    lon, lat = TO_LL.transform(X0, Y0)
    assert inc.gdf.geometry.x.iloc[0] == pytest.approx(lon)
    lines = gpd.GeoDataFrame(geometry=[shapely.LineString([(0, 0), (1, 1)])], crs=4326)
    lines.to_file(tmp_path / "lines.geojson")
    with pytest.raises(InputError, match="must be points"):
        read_incidents(tmp_path / "lines.geojson")


def test_unusable_rows_are_counted_and_reported(tmp_path, caplog):
    bad = [{"event_date": "not a date"}, {"event_date": "31 Febtember 2020"},
           {"latitude": "", "longitude": ""}, {"latitude": "95", "longitude": "44"},
           {"latitude": "35", "longitude": "200"}]
    base = {"event_id_cnty": "X", "event_date": "2020-01-01", "event_type": "Battles",
            "latitude": "35.0", "longitude": "44.0", "geo_precision": "1", "fatalities": "1"}
    extra = [{**base, **b} for b in bad]
    p = write_acled(tmp_path / "a.csv", events=EVENTS[:3], extra_rows=extra)
    with pytest.warns(InputWarning) as rec:
        inc = read_incidents(p)
    assert len(inc) == 3 and inc.rows_read == 8
    assert inc.dropped == {"no_coordinates": 1, "outside_world": 2, "unreadable_date": 2,
                           "date_out_of_range": 0, "duplicate_id": 0, "imprecise_date": 0,
                           "filtered": 0}
    text = " ".join(str(w.message) for w in rec)
    assert "5 of 8 incident rows left out" in text
    assert "2 date(s) in an unrecognised format" in text and "'not a date'" in text
    filt = read_incidents(p, until="2020-01-31")
    assert len(filt) == 1 and filt.dropped["filtered"] == 2


def test_filters_by_type_and_actor(tmp_path):
    p = write_acled(tmp_path / "a.csv")
    battles = read_incidents(p, types=["battles"])
    assert (battles.gdf["type"] == "Battles").all() and len(battles) == 4
    ied = read_incidents(p, types="Remote explosive/landmine/IED")  # sub_event_type
    assert len(ied) == 5
    isis = read_incidents(p, actors=["Islamic State"])
    assert len(isis) == 6
    assert len(read_incidents(p, actors=["IS"])) == 0  # whole words: "IS" ≠ "Islamic", "Iraq"
    both = read_incidents(p, actors=["islamic state", "military forces of iraq"])
    assert len(both) == 9
    assert len(read_incidents(p, actors=["civilians"])) == 9  # actor2 counts too


@pytest.mark.parametrize("content, field, problem", [
    ("a,b\n1,2\n", "latitude/longitude", "no lat/lon column"),
    ("lat,lon,date\n,,2020-01-01\nx,y,2020-01-02\n", "lat/lon", "no usable incident"),
    ("lat,lon,date\n35,44,someday\n35,44,2020-13-45\n", "date", "no usable incident"),
    ("", None, "empty"),
])
def test_reader_errors(tmp_path, content, field, problem):
    p = tmp_path / "bad.csv"
    p.write_text(content)
    with pytest.raises(InputError) as err:
        read_incidents(p)
    msg = str(err.value)
    assert problem in msg and str(p) in msg and "\n" not in msg
    if field:
        assert err.value.field == field


def test_reader_errors_missing_file_and_bad_options(tmp_path):
    with pytest.raises(InputError, match="not found") as err:
        read_incidents(tmp_path / "nope.csv")
    assert "nope.csv" in str(err.value)
    p = write_acled(tmp_path / "a.csv")
    with pytest.raises(InputError, match="unknown format"):
        read_incidents(p, format="xls")
    with pytest.raises(InputError, match="YYYY-MM-DD"):
        read_incidents(p, since="last spring")
    with pytest.raises(InputError, match="after"):
        read_incidents(p, since="2021-01-01", until="2020-01-01")
    q = tmp_path / "q.csv"
    q.write_text("latitude,longitude\n35,44\n")
    with pytest.raises(InputError, match="event_date"):
        read_incidents(q, format="acled")


def test_inputs_are_not_modified(tmp_path, scene):
    p = write_acled(tmp_path / "a.csv")
    before = p.read_bytes()
    inc = read_incidents(p)
    gdf_before = inc.gdf.copy()
    incident_metrics(scene, inc)
    assert p.read_bytes() == before
    pd.testing.assert_frame_equal(pd.DataFrame(inc.gdf), pd.DataFrame(gdf_before))


# --------------------------------------------------------------------------------------------
# options for other commands


def test_incident_options_and_reader(tmp_path):
    import click

    from gapmap.cli._common import analysis_options
    from gapmap.cli.incidents import read_incidents_from_options

    seen = {}

    @click.command()
    @analysis_options
    def cmd(**kw):
        seen["kw"] = kw
        seen["inc"] = read_incidents_from_options(**kw)

    p = write_acled(tmp_path / "a.csv")
    res = CliRunner().invoke(cmd, ["--incidents", str(p), "--since", "2020-02-01", "--type",
                                   "Battles", "--actor", "Islamic State", "--margin-km", "3"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    inc = seen["inc"]
    assert isinstance(inc, Incidents)
    assert inc.gdf["date"].min() >= pd.Timestamp("2020-02-01")
    assert set(inc.gdf["type"]) == {"Battles"} and len(inc) == 3
    assert seen["kw"]["margin_km"] == 3.0
    CliRunner().invoke(cmd, [], catch_exceptions=False)
    assert seen["inc"] is None
    assert "--actor" in CliRunner().invoke(cmd, ["--help"]).output


def test_fast_assignment_equals_exact_reference(scene):
    """Assignment, distance, width and corridor of random incidents equal a brute-force
    reference: GEOS distance to the seam, w from Analysis.distances at the nearest point,
    corridor from GEOS distance to each corridor."""
    rng = np.random.default_rng(11)
    xy = rng.uniform([X0 - 20e3, Y0 - 5e3], [X0 + 60e3, Y0 + 105e3], (3000, 2))
    pts = gpd.GeoDataFrame(geometry=shapely.points(xy), crs=UTM38)
    m = incident_metrics(scene, pts, margin_km=3.0)
    seam = shapely.union_all(scene.seam.geometry.values)
    d_ref = shapely.distance(pts.geometry.values, seam) / 1000
    q_ref = shapely.get_coordinates(shapely.shortest_line(pts.geometry.values, seam))[1::2]
    da, db = scene.distances(q_ref)
    w_ref = da + db
    ok_ref = d_ref <= w_ref / 2 + 3.0
    assert m.incidents["distance_km"].to_numpy() == pytest.approx(d_ref, abs=1e-6)
    assert m.incidents["width_km"].to_numpy() == pytest.approx(w_ref, abs=0.1)
    assert (m.incidents["assigned"].to_numpy() == ok_ref).all()
    corr = scene.corridors
    dist_c = np.stack([shapely.distance(shapely.points(q_ref), g) for g in corr.geometry])
    on = dist_c.min(axis=0) <= 10.0
    want = np.where(ok_ref & on, corr["corridor_id"].to_numpy()[dist_c.argmin(axis=0)], None)
    got = m.incidents["corridor_id"].astype(object).where(m.incidents["corridor_id"].notna(),
                                                          None).to_numpy()
    assert (got == want).all()


# --------------------------------------------------------------------------------------------
# dates and periods (interface I6)


def test_date_bounds_are_the_calendar_unit():
    lo, hi = date_bounds(pd.to_datetime(["2020-02-29 13:45", "2020-02-29", "2020-02-29",
                                         "2020-02-29", None], format="ISO8601"),
                         ["day", "week", "month", "year", "day"])
    as_text = lambda a: [None if pd.isna(v) else str(v)[:10] for v in a]  # noqa: E731
    # 29 Feb 2020 was a Saturday: its ISO week is Mon 24 Feb – Sun 1 Mar.
    assert as_text(lo) == ["2020-02-29", "2020-02-24", "2020-02-01", "2020-01-01", None]
    assert as_text(hi) == ["2020-03-01", "2020-03-02", "2020-03-01", "2021-01-01", None]


@pytest.mark.parametrize("start, end, inside, straddling", [
    (None, None, [1, 1, 1, 1], [0, 0, 0, 0]),
    ("2017-10-16", None, [0, 1, 0, 0], [1, 0, 1, 1]),   # the year and the month straddle
    (None, "2017-10-16", [0, 0, 0, 0], [1, 0, 1, 1]),   # October 2017 straddles the end
    (None, "2017-11-01", [0, 0, 1, 0], [1, 0, 0, 1]),   # October 2017 wholly before
    ("2017-01-01", "2018-01-01", [1, 1, 1, 0], [0, 0, 0, 1]),
    ("2017-10-01", "2017-11-01", [0, 0, 1, 0], [1, 0, 0, 1]),
    ("2017-10-01", "2017-11-02", [0, 0, 1, 0], [1, 0, 0, 1]),  # end exclusive: the 2nd left out
    ("2017-11-02", "2017-11-03", [0, 1, 0, 0], [1, 0, 0, 1]),
    ("2018-01-01", None, [0, 0, 0, 0], [0, 0, 0, 1]),   # undated straddles any bounded period
])
def test_period_mask_by_hand(start, end, inside, straddling):
    dates = pd.to_datetime(["2017-07-01", "2017-11-02", "2017-10-03", pd.NaT])
    prec = ["year", "day", "month", None]
    ins, stra = period_mask(dates, prec, start, end)
    assert ins.tolist() == [bool(v) for v in inside]
    assert stra.tolist() == [bool(v) for v in straddling]


def test_period_mask_partitions_overlapping_events():
    rng = np.random.default_rng(3)
    dates = pd.Timestamp("2015-01-01") + pd.to_timedelta(rng.integers(0, 2000, 400), unit="D")
    prec = rng.choice(["day", "week", "month", "year"], 400)
    lo, hi = date_bounds(dates, prec)
    for start, end in (("2016-03-10", "2016-09-01"), ("2015-01-01", "2016-01-01")):
        ins, stra = period_mask(dates, prec, start, end)
        s, e = np.datetime64(start), np.datetime64(end)
        assert not (ins & stra).any()
        # inside ⇔ the whole range in [s, e); inside or straddling ⇔ the range meets [s, e).
        assert (ins == ((lo >= s) & (hi <= e))).all()
        assert ((ins | stra) == ((hi > s) & (lo < e))).all()
        # Day-precise events: inside ⇔ the date itself lies in [s, e).
        day = prec == "day"
        d = dates.to_numpy()[day]
        assert (ins[day] == ((d >= s) & (d < e))).all()


def test_format_dates_at_their_precision():
    assert format_dates(pd.to_datetime(["2007-07-01", "2007-07-01", "2007-07-01"]),
                        ["year", "month", "day"]).tolist() == ["2007", "2007-07", "2007-07-01"]
    with pytest.raises(InputError, match="unknown precision"):
        period_mask(["2020-01-01"], "decade")


# --------------------------------------------------------------------------------------------
# stated places


def test_place_names_match_tolerantly():
    for a, b in (("Tooz", "Tuz Khurmatu"), ("al-Hawija District", "Hawija"),
                 ("KIRKUK", "Kirkuk"), ("Salah al-Din", "Salahuddin"), ("Daqouq", "Daquq")):
        assert place_similarity(a, b) >= 0.8, (a, b)
    for a, b in (("Kirkuk", "Diyala"), ("Tooz", "Daquq"), ("Erbil", "Mosul")):
        assert place_similarity(a, b) < 0.8, (a, b)


def test_admin_mismatches_by_hand(tmp_path):
    # Two districts side by side along the 35th parallel (edges densified: the test's
    # distances follow the parallel); events stated in one, found in the other.
    areas = gpd.GeoDataFrame(
        {"ADM2_EN": ["Tuz Khurmatu", "Kirkuk"], "ADM1_EN": ["Salah al-Din", "Kirkuk"]},
        geometry=shapely.segmentize(np.array([shapely.box(44.0, 34.6, 44.8, 35.0),
                                              shapely.box(44.0, 35.0, 44.8, 35.6)]), 0.001),
        crs=4326)
    inc = gpd.GeoDataFrame(
        {"source_id": ["ok", "wrong", "coarse", "unknown", "outside"],
         "admin1": ["Salah al-Din", "Salahuddin", "Salah al-Din", "Basra", "Kirkuk"],
         "admin2": ["Tooz", "Tuz", "Tooz", "Basra", "Kirkuk"],
         "coarse": [False, False, True, False, False]},
        geometry=shapely.points([(44.5, 34.8), (44.5, 35.3), (44.5, 35.3), (44.5, 35.3),
                                 (46.0, 35.3)]), crs=4326)
    for field in ("ADM2_EN", "ADM1_EN"):
        out = admin_mismatches(inc, areas, field)
        assert out.columns.tolist() == ["event_id", "stated", "found", "distance_km"]
        assert out["event_id"].tolist() == ["wrong"]
        assert out["found"].tolist() == ["Kirkuk"]
        ref = Geod(ellps="WGS84").inv(44.5, 35.3, 44.5, 35.0)[2] / 1000
        assert out["distance_km"].iloc[0] == pytest.approx(ref, rel=1e-3)
    assert admin_mismatches(inc, areas, "ADM2_EN")["stated"].tolist() == ["Tuz"]
    with pytest.raises(InputError, match="ADM2_EN"):
        admin_mismatches(inc, areas, "NAME")


def test_acled_keeps_the_stated_place_names(tmp_path):
    p = write_acled(tmp_path / "a.csv")
    raw = pd.read_csv(p, dtype=str, keep_default_na=False)
    raw["admin1"], raw["admin2"] = "Kirkuk", ["Daquq", "Hawija", ""] * 3
    raw["location"] = [f"Village {k}" for k in range(len(raw))]
    raw.to_csv(p, index=False)
    inc = read_incidents(p)
    assert inc.gdf["admin1"].tolist() == ["Kirkuk"] * 9
    assert inc.gdf["admin2"].fillna("").tolist() == ["Daquq", "Hawija", ""] * 3
    assert inc.gdf["location"].tolist() == raw["location"].tolist()


# --------------------------------------------------------------------------------------------
# bad input


def _csv(path, n=200, **over):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"id": [f"E{k}" for k in range(n)],
                       "latitude": rng.uniform(35.0, 35.5, n).round(5),
                       "longitude": rng.uniform(44.0, 44.5, n).round(5),
                       "date": pd.Timestamp("2020-01-01") + pd.to_timedelta(np.arange(n), "D"),
                       "type": np.where(np.arange(n) % 2, "attack", "clash"),
                       "fatalities": 1})
    df["date"] = df["date"].dt.strftime("%Y-%m-%d")
    for k, v in over.items():
        df[k] = v
    df.to_csv(path, index=False)
    return path, df


def test_dates_outside_1900_2100_are_refused_per_row(tmp_path):
    dates = [pd.Timestamp("2020-01-01") + pd.Timedelta(days=k) for k in range(199)]
    p, _ = _csv(tmp_path / "a.csv", date=[d.strftime("%Y-%m-%d") for d in dates] +
                ["9999-12-31"])
    with pytest.warns(InputWarning, match=r"1 dated outside 1900–2100"):
        inc = read_incidents(p)
    assert len(inc) == 199 and inc.dropped["date_out_of_range"] == 1
    assert inc.dropped["unreadable_date"] == 0
    p2, _ = _csv(tmp_path / "b.csv", n=3, date=["1850-05-01", "2020-01-01", "2150-01-01"])
    with pytest.warns(InputWarning):
        assert read_incidents(p2).dropped["date_out_of_range"] == 2
    with pytest.raises(InputError, match="--since"):
        read_incidents(p, since="9999-01-01")


def test_duplicate_event_ids_keep_one(tmp_path):
    p = write_acled(tmp_path / "a.csv", events=EVENTS[:1] * 200)
    raw = pd.read_csv(p, dtype=str)
    raw["event_id_cnty"] = "IRQ1"
    raw.to_csv(p, index=False)
    with pytest.warns(InputWarning, match="event_id_cnty: 199 duplicate event id"):
        inc = read_incidents(p)
    assert len(inc) == 1 and inc.dropped["duplicate_id"] == 199


def test_negative_fatalities_are_refused(tmp_path):
    p, _ = _csv(tmp_path / "a.csv", fatalities=[1] * 199 + [-1000])
    with pytest.raises(InputError, match=r"a\.csv: fatalities: 1 negative fatality"):
        read_incidents(p)


def test_swapped_coordinates(tmp_path, scene):
    # Columns exchanged wholesale: latitudes of 44 are fine, longitudes of 35 too; with the
    # study area known, the swap shows.
    p, df = _csv(tmp_path / "a.csv", n=40)
    lon, lat = TO_LL.transform(X0 + 20e3 + np.zeros(40), Y0 + np.linspace(5e3, 95e3, 40))
    pd.DataFrame({"id": df["id"], "latitude": lon, "longitude": lat, "date": df["date"]}
                 ).to_csv(p, index=False)
    inc = read_incidents(p)
    with pytest.warns(InputWarning, match="latitude and longitude look swapped"):
        m = incident_metrics(scene, inc)
    assert m.summary["incidents_outside_study_area"] == 40
    # Latitudes beyond ±90 in most rows: refused, naming the columns.
    far = tmp_path / "b.csv"
    pd.DataFrame({"latitude": [120.0, 130.0, 35.0], "longitude": [35.0, 36.0, 44.0],
                  "date": "2020-01-01"}).to_csv(far, index=False)
    with pytest.raises(InputError, match="latitude/longitude: latitude and longitude look "
                                         "swapped"):
        read_incidents(far)


def test_type_matching_nothing_lists_the_types_present(tmp_path):
    p, _ = _csv(tmp_path / "a.csv")
    with pytest.raises(InputError, match="no incident has type 'atack'; types present: "
                                         "attack, clash"):
        read_incidents(p, types=["atack"])
    with pytest.warns(InputWarning, match="'raid'; types present: attack, clash"):
        assert len(read_incidents(p, types=["attack", "raid"])) == 100


def test_date_format_option_and_warning(tmp_path):
    dates = [f"{k % 28 + 1:02d}/03/2019" for k in range(200)]
    p, _ = _csv(tmp_path / "a.csv", date=dates)
    with pytest.warns(InputWarning, match=r"--date-format '%d/%m/%Y'") as rec:
        with pytest.raises(InputError, match="no usable incident"):
            read_incidents(p)
    assert any("200 date(s) in an unrecognised format, e.g. '01/03/2019'" in str(w.message)
               for w in rec)
    inc = read_incidents(p, date_format="%d/%m/%Y")
    assert len(inc) == 200 and (inc.gdf["date"].dt.month == 3).all()
    assert inc.gdf["date"].dt.day.tolist() == [k % 28 + 1 for k in range(200)]
    res = CliRunner().invoke(main, ["hotspots", "--incidents", str(p), "--date-format",
                                    "%d/%m/%Y", "--hex-km", "20", "--out",
                                    str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert pd.read_csv(tmp_path / "out" / "monthly.csv")["total"].sum() == 200


def test_year_only_dates_print_as_the_year(scene, tmp_path):
    """A corridor's first and last dates are the earliest and latest dates its events may
    have, printed at their precision: an event known only to 2016 gives "2016" (from
    2016-01-01 to 2016-12-31), never the 1 July it is stored on, in corridors.csv, the GeoJSON
    and the table the report prints."""
    import json

    from gapmap.outputs import corridor_table, write_metrics

    rows = [(20, 20, "2016-07-01", "year"), (20, 30, "2017-03-05", "day"),   # south
            (25, 80, "2016-03-01", "day"), (25, 85, "2016-07-01", "year")]  # north
    xy = [TO_LL.transform(X0 + dx * 1e3, Y0 + dy * 1e3) for dx, dy, _, _ in rows]
    events = gpd.GeoDataFrame(
        {"date": pd.to_datetime([r[2] for r in rows]), "date_precision": [r[3] for r in rows],
         "coarse": False, "fatalities": 1.0},
        geometry=[shapely.Point(p) for p in xy], crs=4326)
    m = incident_metrics(scene, events)
    north, south = _north_south(scene)
    per = m.corridors.set_index("corridor_id")
    assert per.loc[south, "first_date"] == pd.Timestamp("2016-01-01")
    assert per.loc[south, "first_date_precision"] == "year"
    assert (per.loc[south, "last_date"], per.loc[south, "last_date_precision"]) == (
        pd.Timestamp("2017-03-05"), "day")
    # the year-only event may be later in 2016 than 1 March: the span is all of 2016
    assert (per.loc[north, "first_date"], per.loc[north, "last_date"]) == (
        pd.Timestamp("2016-01-01"), pd.Timestamp("2016-12-31"))
    res = with_incidents(scene, m)
    table = corridor_table(res).set_index("corridor_id")
    assert table.loc[south, ["first_date", "last_date"]].tolist() == ["2016", "2017-03-05"]
    assert table.loc[north, ["first_date", "last_date"]].tolist() == ["2016", "2016"]
    assert "first_date_precision" not in table.columns
    files = write_metrics(res, tmp_path / "out")
    csv_rows = pd.read_csv(files["corridors.csv"], dtype=str).set_index("corridor_id")
    assert csv_rows.loc[south, "first_date"] == "2016"
    assert csv_rows.loc[north, "last_date"] == "2016"
    feats = json.loads(files["corridors.geojson"].read_text())["features"]
    dates = {f["properties"]["corridor_id"]: f["properties"]["first_date"] for f in feats}
    assert dates[south] == "2016" and dates[north] == "2016"
    assert "2016-07-01" not in files["corridors.csv"].read_text()


def test_format_date_columns_leaves_other_columns():
    t = pd.DataFrame({"date": pd.to_datetime(["2007-07-01", "2019-03-15", None]),
                      "date_precision": ["year", "month", None], "n": [1, 2, 3]})
    out = format_date_columns(t)
    assert out["date"].tolist() == ["2007", "2019-03", ""]
    assert out["date_precision"].tolist()[:2] == ["year", "month"] and out["n"].sum() == 6
    assert pd.api.types.is_datetime64_any_dtype(t["date"])  # the input is left as it was
