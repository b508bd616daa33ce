"""Series: hand-computable scenes — posts switched on and off, an edge that moves, inputs as
files or one layer, corridor uids, bad input, and the same table whichever way it runs."""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner
from pyproj import Geod

from gapmap import Settings, parse_side
from gapmap.cli import main
from gapmap.errors import InputError, ResultWarning
from gapmap.series import analyze_series, compare, read_snapshots

A, B = parse_side("A=a"), parse_side("B=b")
CRS = 32638
# Side A x ∈ [400, 410] km, side B from x = 430 km: the seam is x = 420 km, 80 km long in the
# study area (y from 3910 to 3990 km).
ZA = shapely.box(400e3, 3900e3, 410e3, 4000e3)
ZB = shapely.box(430e3, 3900e3, 440e3, 4000e3)
AREA = gpd.GeoDataFrame(geometry=[shapely.box(405e3, 3910e3, 435e3, 3990e3)], crs=CRS)
GEOD = Geod(ellps="WGS84")


def geodesic_km(x, y0, y1):
    from pyproj import Transformer

    t = Transformer.from_crs(CRS, 4326, always_xy=True)
    lon, lat = t.transform([x, x], [y0, y1])
    return GEOD.line_length(lon, lat) / 1000


SEAM_KM = geodesic_km(420e3, 3910e3, 3990e3)


def zones_of(*boxes_b, days=("2024-01-01", "2024-01-02", "2024-01-03")):
    rows = []
    for day, zb in zip(days, boxes_b):
        rows += [{"force": "a", "day": day, "geometry": ZA}, {"force": "b", "day": day,
                                                              "geometry": zb}]
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=CRS)


def posts_switching():
    """One post on the seam with a 5 km range, active on 2024-01-02 only: covers 10 km."""
    return gpd.GeoDataFrame({"post_id": ["P1"], "range_km": [5.0], "active_from": ["2024-01-02"],
                             "active_to": ["2024-01-02"]},
                            geometry=[shapely.Point(420e3, 3950e3)], crs=CRS)


def test_post_switched_on_closes_and_off_opens_exact_stretch():
    s = analyze_series(zones_of(ZB, ZB, ZB), A, B, date_field="day", posts=posts_switching(),
                       study_area=AREA, settings=Settings(max_width_km=40, reach_km=5), workers=1)
    t = s.table.set_index("date")
    chord = geodesic_km(420e3, 3945e3, 3955e3)
    assert t.loc["2024-01-01", "unguarded_length_km"] == pytest.approx(SEAM_KM, rel=1e-3)
    assert t.loc["2024-01-02", "unguarded_length_km"] == pytest.approx(SEAM_KM - chord, rel=1e-3)
    assert np.isnan(t.loc["2024-01-01", "opened_km"])
    assert t.loc["2024-01-02", "closed_km"] == pytest.approx(chord, rel=1e-3)
    assert t.loc["2024-01-02", "opened_km"] == pytest.approx(0, abs=1e-6)
    assert t.loc["2024-01-03", "opened_km"] == pytest.approx(chord, rel=1e-3)
    assert t.loc["2024-01-03", "closed_km"] == pytest.approx(0, abs=1e-6)
    # The change layers hold the same stretches, where the post stands.
    closed = s.closed.loc[s.closed["date_to"] == "2024-01-02"]
    assert closed["length_km"].sum() == pytest.approx(chord, rel=1e-3)
    y0, y1 = closed.total_bounds[1], closed.total_bounds[3]
    assert (y0, y1) == pytest.approx((3945e3, 3955e3), abs=30)
    # Corridors: one on day 1, two pieces on day 2 (the longer keeps the uid), one on day 3.
    c = s.corridors
    assert c.groupby("date").size().to_dict() == {"2024-01-01": 1, "2024-01-02": 2,
                                                  "2024-01-03": 1}
    first = c.loc[c["date"] == "2024-01-01", "corridor_uid"].iloc[0]
    assert first in set(c.loc[c["date"] == "2024-01-02", "corridor_uid"])
    row = c.loc[c["corridor_uid"] == first].iloc[0]
    assert row["first_seen"] == "2024-01-01"
    # Lazily, the full analysis of a date.
    assert s.analysis("2024-01-02").summary["corridors"] == 2


def test_zone_edge_moving_changes_unguarded_length_by_computed_amount():
    moved = shapely.box(426e3, 3900e3, 440e3, 4000e3)  # gap 20 → 16 km; reach 9 covers 16
    for match_km in (1.0, 3.0):  # the seam moves 2 km: gone (1 km) or the same seam (3 km)
        s = analyze_series(zones_of(ZB, moved, days=("2024-01-01", "2024-01-02")), A, B,
                           date_field="day", study_area=AREA, settings=Settings(max_width_km=40, reach_km=9),
                           workers=1, match_km=match_km)
        t = s.table
        change = t["unguarded_length_km"].iloc[0] - t["unguarded_length_km"].iloc[1]
        assert change == pytest.approx(SEAM_KM, rel=1e-3)
        assert t["closed_km"].iloc[1] == pytest.approx(SEAM_KM, rel=1e-3)
        assert t["opened_km"].iloc[1] == pytest.approx(0, abs=1e-6)


def test_one_layer_with_date_field_equals_one_file_per_date(tmp_path):
    layer = zones_of(ZB, shapely.box(428e3, 3900e3, 440e3, 4000e3), ZB)
    for day, rows in layer.groupby("day"):
        rows.drop(columns="day").to_file(tmp_path / f"front_{day.replace('-', '')}.geojson")
    kw = dict(study_area=AREA, settings=Settings(max_width_km=40, reach_km=5), workers=1)
    from_layer = analyze_series(layer, A, B, date_field="day", **kw)
    from_files = analyze_series(str(tmp_path / "front_*.geojson"), A, B, **kw)
    from_folder = analyze_series(tmp_path, A, B, **kw)
    pd.testing.assert_frame_equal(from_layer.table, from_files.table)
    pd.testing.assert_frame_equal(from_layer.table, from_folder.table)
    assert list(from_files.table["date"]) == ["2024-01-01", "2024-01-02", "2024-01-03"]
    # One CRS for the whole series, from the study area.
    assert from_files.crs.to_epsg() == 32638


def test_same_table_serial_local_cluster_and_scheduler():
    import dask
    from distributed import LocalCluster

    zones = zones_of(ZB, shapely.box(428e3, 3900e3, 440e3, 4000e3), ZB)
    kw = dict(date_field="day", posts=posts_switching(), study_area=AREA,
              settings=Settings(max_width_km=40, reach_km=5))
    serial = analyze_series(zones, A, B, workers=1, **kw)
    local = analyze_series(zones, A, B, workers=2, **kw)
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None,
                               silence_logs=logging.ERROR)
    try:
        remote = analyze_series(zones, A, B, scheduler=cluster.scheduler_address, **kw)
    finally:
        cluster.close()
    pd.testing.assert_frame_equal(serial.table, local.table)
    pd.testing.assert_frame_equal(serial.table, remote.table)
    pd.testing.assert_frame_equal(pd.DataFrame(serial.corridors.drop(columns="geometry")),
                                  pd.DataFrame(remote.corridors.drop(columns="geometry")))


def test_a_date_without_one_side_reports_zero_seam_with_a_warning():
    layer = zones_of(ZB, ZB, days=("2024-01-01", "2024-01-02"))
    layer = layer.loc[~((layer["day"] == "2024-01-02") & (layer["force"] == "b"))]
    with pytest.warns(ResultWarning, match="2024-01-02: no zone of side B"):
        s = analyze_series(layer, A, B, date_field="day", study_area=AREA,
                           settings=Settings(max_width_km=40, reach_km=5), workers=1)
    t = s.table
    assert t["seam_length_km"].iloc[1] == 0
    assert t["closed_km"].iloc[1] == pytest.approx(SEAM_KM, rel=1e-3)  # the seam went away


def test_compare_two_files(tmp_path):
    zones_of(ZB, days=("x",)).drop(columns="day").to_file(tmp_path / "z_20240101.geojson")
    gpd.GeoDataFrame({"force": ["a", "b"]}, geometry=[ZA, ZB], crs=CRS).to_file(
        tmp_path / "z_20240201.geojson")
    posts = posts_switching().assign(active_from=None, active_to=None)
    c = compare(tmp_path / "z_20240101.geojson", tmp_path / "z_20240201.geojson", A, B,
                study_area=AREA, settings=Settings(max_width_km=40, reach_km=5), posts=None)
    t = c.table.set_index("field")
    assert t.loc["unguarded_length_km", "change"] == pytest.approx(0, abs=1e-9)
    assert c.labels == ("2024-01-01", "2024-02-01")
    c2 = compare(tmp_path / "z_20240101.geojson", tmp_path / "z_20240201.geojson", A, B,
                 study_area=AREA, settings=Settings(max_width_km=40, reach_km=5), posts=posts)
    assert c2.table.set_index("field").loc["closed_km", "change"] == pytest.approx(0, abs=1e-6)


# --------------------------------------------------------------------------------------------
# bad input: exit 2, one line naming the file/field/date and the fix, nothing written


def _cli(args, out):
    r = CliRunner().invoke(main, ["series", *args, "--side-a", "A=a", "--side-b", "B=b",
                                  "--workers", "1", "--out", str(out)])
    return r


def _bad(tmp_path, args, *needles):
    out = tmp_path / "out"
    r = _cli(args, out)
    assert r.exit_code == 2, r.output
    line = r.output.strip().splitlines()[-1]
    for n in needles:
        assert n in line
    assert not out.exists() or not any(p for p in out.iterdir() if not p.name.startswith("."))


def test_glob_matching_nothing(tmp_path):
    _bad(tmp_path, ["--zones", str(tmp_path / "none_*.geojson")], "none_*.geojson",
         "matches no file")


def test_file_name_without_date(tmp_path):
    gpd.GeoDataFrame({"force": ["a", "b"]}, geometry=[ZA, ZB], crs=CRS).to_file(
        tmp_path / "zones_latest.geojson")
    _bad(tmp_path, ["--zones", str(tmp_path / "zones_*.geojson")], "zones_latest.geojson",
         "file name", "rename")


def test_two_snapshots_with_one_date(tmp_path):
    for name in ("a_20240101.geojson", "b_2024-01-01.geojson"):
        gpd.GeoDataFrame({"force": ["a", "b"]}, geometry=[ZA, ZB], crs=CRS).to_file(
            tmp_path / name)
    _bad(tmp_path, ["--zones", str(tmp_path / "*.geojson")], "2024-01-01", "one snapshot per date")


def test_date_field_with_mixed_formats(tmp_path):
    layer = zones_of(ZB, ZB)
    layer.loc[layer.index[2:], "day"] = "20240102"
    layer.to_file(tmp_path / "all.gpkg")
    _bad(tmp_path, ["--zones", str(tmp_path / "all.gpkg"), "--date-field", "day"], "all.gpkg",
         "day", "mixed formats")


def test_date_field_without_date(tmp_path):
    layer = zones_of(ZB, ZB)
    layer.loc[layer.index[0], "day"] = "last week"
    layer.to_file(tmp_path / "all.gpkg")
    _bad(tmp_path, ["--zones", str(tmp_path / "all.gpkg"), "--date-field", "day"], "last week")


def test_active_from_after_active_to(tmp_path):
    layer = zones_of(ZB, ZB)
    layer.to_file(tmp_path / "all.gpkg")
    posts_switching().assign(active_from="2024-03-01").to_file(tmp_path / "posts.geojson")
    _bad(tmp_path, ["--zones", str(tmp_path / "all.gpkg"), "--date-field", "day", "--posts",
                    str(tmp_path / "posts.geojson")], "posts.geojson", "P1", "active_from")


def test_unreachable_scheduler(tmp_path, monkeypatch):
    from gapmap import engine

    monkeypatch.setattr(engine, "CONNECT_TIMEOUT_S", 2.0)
    layer = zones_of(ZB, ZB)
    layer.to_file(tmp_path / "all.gpkg")
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["series", "--zones", str(tmp_path / "all.gpkg"),
                                  "--date-field", "day", "--side-a", "A=a", "--side-b", "B=b",
                                  "--scheduler", "tcp://127.0.0.1:9", "--out", str(out)])
    assert r.exit_code == 2
    assert "tcp://127.0.0.1:9" in r.output


def test_read_snapshots_mapping_and_errors():
    snaps = read_snapshots({"2024-01-02": zones_of(ZB), "2024-01-01": zones_of(ZB)})
    assert [s.date.isoformat() for s in snaps] == ["2024-01-01", "2024-01-02"]
    with pytest.raises(InputError, match="--date-field"):
        read_snapshots(zones_of(ZB))


def test_incidents_windowed_per_snapshot_and_coarse_dates_counted_apart():
    from gapmap.errors import DatePrecisionWarning

    pts = [shapely.Point(420e3, 3930e3), shapely.Point(420e3, 3960e3),
           shapely.Point(421e3, 3970e3), shapely.Point(419e3, 3940e3)]
    events = gpd.GeoDataFrame({
        "date": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-01", "2024-01-03"]),
        "date_precision": ["day", "day", "year", "day"]}, geometry=pts, crs=CRS)
    with pytest.warns(DatePrecisionWarning, match="1 incident"):
        s = analyze_series(zones_of(ZB, ZB, ZB), A, B, date_field="day", study_area=AREA,
                           settings=Settings(max_width_km=40, reach_km=5), incidents=events,
                           until="2024-01-31", workers=1)
    t = s.table.set_index("date")
    assert t["incidents_total"].tolist() == [1, 1, 1]
    # The year-only event overlaps every snapshot's period, lies inside none.
    assert t["incidents_undated"].tolist() == [1, 1, 1]


def test_scenario_snapshots_with_their_own_posts(tmp_path):
    """[[snapshots]] in a scenario file: each date's zones, and a date's own posts replacing
    the scenario's posts on that date (a 5 km post on the seam closes its 10 km chord)."""
    from gapmap.scenario import load_scenario

    for day in ("2024-01-01", "2024-01-02"):
        gpd.GeoDataFrame({"force": ["a", "b"]}, geometry=[ZA, ZB], crs=CRS).to_file(
            tmp_path / f"z_{day}.geojson")
    post = gpd.GeoDataFrame({"post_id": ["P1"], "range_km": [5.0]},
                            geometry=[shapely.Point(420e3, 3950e3)], crs=CRS)
    post.to_file(tmp_path / "post.geojson")
    (tmp_path / "s.toml").write_text(
        '[sides]\na = "A=a"\nb = "B=b"\n'
        '[[snapshots]]\ndate = 2024-01-01\nzones = "z_2024-01-01.geojson"\n'
        '[[snapshots]]\ndate = "2024-01-02"\nzones = "z_2024-01-02.geojson"\n'
        'posts = "post.geojson"\n')
    sc = load_scenario(tmp_path / "s.toml")
    assert [s.date for s in sc.snapshots] == ["2024-01-01", "2024-01-02"]
    assert sc.zones == tmp_path / "z_2024-01-02.geojson"  # one-date commands: the latest
    s = analyze_series(sc.snapshots, A, B, study_area=AREA,
                       settings=Settings(max_width_km=40, reach_km=5), workers=1)
    t = s.table.set_index("date")
    chord = geodesic_km(420e3, 3945e3, 3955e3)
    assert t.loc["2024-01-01", "unguarded_length_km"] == pytest.approx(SEAM_KM, rel=1e-3)
    assert t.loc["2024-01-02", "closed_km"] == pytest.approx(chord, rel=1e-3)


def test_scenario_snapshot_errors(tmp_path):
    from gapmap.scenario import load_scenario

    bad = {"date = \"2024-13-01\"\nzones = \"z.geojson\"": "snapshots[1].date",
           "date = 2024-01-01": "snapshots[1].zones",
           "date = 2024-01-01\nzones = \"z.geojson\"\nrange = 3": "snapshots[1].range"}
    for body, field in bad.items():
        (tmp_path / "s.toml").write_text('[sides]\na = "A=a"\nb = "B=b"\n[[snapshots]]\n' + body)
        with pytest.raises(InputError, match=field.replace("[", r"\[").replace("]", r"\]")):
            load_scenario(tmp_path / "s.toml")


# --------------------------------------------------------------------------------------------
# gapmap series --config (a scenario's [[snapshots]]) and --by (a breakdown per date)


def _strips_files(tmp_path):
    """Two dates of the strips scene: no post on 2024-01-01; the usual two posts from
    2024-01-02 (unguarded [0, 17], [23, 45], [55, 100] km); a study area cut at y = 50 km."""
    from .scenes import X0, Y0, strips, two_posts

    for day in ("2024-01-01", "2024-01-02"):
        strips(("a", "b")).to_file(tmp_path / f"z_{day}.geojson")
    two_posts().assign(active_from="2024-01-02").to_file(tmp_path / "posts.geojson")
    gpd.GeoDataFrame({"gov": ["south", "north"]}, crs=CRS, geometry=[
        shapely.box(X0 - 20e3, Y0, X0 + 60e3, Y0 + 50e3),
        shapely.box(X0 - 20e3, Y0 + 50e3, X0 + 60e3, Y0 + 100e3)]).to_file(
        tmp_path / "govs.geojson")
    (tmp_path / "s.toml").write_text(
        '[sides]\na = "A=a"\nb = "B=b"\n'
        '[layers]\nposts = "posts.geojson"\nstudy_area = "govs.geojson"\n'
        '[[snapshots]]\ndate = 2024-01-01\nzones = "z_2024-01-01.geojson"\n'
        '[[snapshots]]\ndate = 2024-01-02\nzones = "z_2024-01-02.geojson"\n')


def _strips_km(*pieces_km):
    """Geodesic km of stretches (y from, y to, km from Y0) of the strips' seam x = X0 + 20 km."""
    from .scenes import X0, Y0

    return sum(geodesic_km(X0 + 20e3, Y0 + a * 1e3, Y0 + b * 1e3) for a, b in pieces_km)


def _series(args):
    r = CliRunner().invoke(main, ["series", *args, "--workers", "1"])
    assert r.exit_code == 0, r.output
    return r


def test_cli_config_snapshots_same_as_folder_form_and_by_area_per_date(tmp_path):
    _strips_files(tmp_path)
    _series(["--config", str(tmp_path / "s.toml"), "--by", "gov", "--out", str(tmp_path / "c")])
    _series(["--zones", str(tmp_path / "z_*.geojson"), "--side-a", "A=a", "--side-b", "B=b",
             "--posts", str(tmp_path / "posts.geojson"), "--study-area",
             str(tmp_path / "govs.geojson"), "--out", str(tmp_path / "f")])
    cfg = pd.read_csv(tmp_path / "c" / "series.csv")
    pd.testing.assert_frame_equal(cfg, pd.read_csv(tmp_path / "f" / "series.csv"))
    t = cfg.set_index("date")["unguarded_length_km"]
    assert t["2024-01-01"] == pytest.approx(_strips_km((0, 100)), rel=1e-3)
    assert t["2024-01-02"] == pytest.approx(_strips_km((0, 17), (23, 45), (55, 100)), rel=1e-3)
    # by_area.csv: one row per date and governorate, summing to that date's unguarded km.
    by = pd.read_csv(tmp_path / "c" / "by_area.csv")
    assert list(by.columns[:2]) == ["date", "gov"]
    assert by.groupby("date")["unguarded_length_km"].sum().to_dict() == pytest.approx(
        t.to_dict(), rel=1e-6)
    got = by.set_index(["date", "gov"])["unguarded_length_km"]
    assert got["2024-01-01", "south"] == pytest.approx(_strips_km((0, 50)), rel=1e-3)
    assert got["2024-01-02", "south"] == pytest.approx(_strips_km((0, 17), (23, 45)), rel=1e-3)
    assert got["2024-01-02", "north"] == pytest.approx(_strips_km((55, 100)), rel=1e-3)
    assert not (tmp_path / "f" / "by_area.csv").exists()


def test_cli_options_override_the_scenario(tmp_path):
    """--posts on the command line replaces [layers] posts: a post on the seam at 80 km, all
    dates, leaves [0, 75] and [85, 100] km unguarded on both."""
    from .scenes import posts

    _strips_files(tmp_path)
    posts([(20, 80)]).to_file(tmp_path / "other.geojson")
    _series(["--config", str(tmp_path / "s.toml"), "--posts", str(tmp_path / "other.geojson"),
             "--out", str(tmp_path / "o")])
    t = pd.read_csv(tmp_path / "o" / "series.csv")["unguarded_length_km"]
    assert t.tolist() == pytest.approx([_strips_km((0, 75), (85, 100))] * 2, rel=1e-3)


@pytest.mark.parametrize("layers", ['[layers]\nzones = "z_2024-01-01.geojson"\n', ""])
def test_cli_config_without_snapshots_or_zones(tmp_path, layers):
    _strips_files(tmp_path)
    (tmp_path / "bad.toml").write_text('[sides]\na = "A=a"\nb = "B=b"\n' + layers)
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["series", "--config", str(tmp_path / "bad.toml"),
                                  "--workers", "1", "--out", str(out)])
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "bad.toml" in lines[0] and "snapshots" in lines[0]
    assert "--zones" in lines[0] and "Traceback" not in r.output
    assert not out.exists()


def test_cli_by_without_field_fails_before_analysis(tmp_path):
    _strips_files(tmp_path)
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["series", "--config", str(tmp_path / "s.toml"), "--by",
                                  "ADM1_EN", "--workers", "1", "--out", str(out)])
    assert r.exit_code == 2, r.output
    line = r.output.strip().splitlines()[-1]
    assert "govs.geojson" in line and "ADM1_EN" in line and "gov" in line
    assert not out.exists()


# --------------------------------------------------------------------------------------------
# reuse between dates: the seam of what did not move is computed once


def _front_b(bump: bool) -> shapely.Polygon:
    """Side B from x = 430 km, y 3800–4000 km, a vertex every km along its edge; with
    ``bump`` the edge between y = 3880 and 3900 km is 2 km nearer side A."""
    xy = shapely.get_coordinates(shapely.segmentize(shapely.box(430e3, 3800e3, 440e3, 4000e3),
                                                    1000.0))
    if bump:
        moved = (np.abs(xy[:, 0] - 430e3) < 1) & (xy[:, 1] >= 3880e3) & (xy[:, 1] <= 3900e3)
        xy[moved, 0] = 428e3
    return shapely.Polygon(xy)


def test_reuse_gives_the_same_series_and_computes_unchanged_tiles_once(monkeypatch):
    import gapmap.frontier as fr

    za = shapely.box(400e3, 3800e3, 410e3, 4000e3)
    days = ("2024-01-01", "2024-01-02", "2024-01-03")  # the bump on the 2nd day only
    zones = gpd.GeoDataFrame(
        [{"force": f, "day": d, "geometry": g} for d, bump in zip(days, (False, True, False))
         for f, g in (("a", za), ("b", _front_b(bump)))], geometry="geometry", crs=CRS)
    area = gpd.GeoDataFrame(geometry=[shapely.box(405e3, 3810e3, 435e3, 3990e3)], crs=CRS)
    posts = gpd.GeoDataFrame({"range_km": [4.0]}, geometry=[shapely.Point(420e3, 3950e3)],
                             crs=CRS)
    kw = dict(date_field="day", study_area=area, posts=posts, workers=1,
              settings=Settings(max_width_km=30, reach_km=5))
    cores = []
    real = fr.tile_ridges
    monkeypatch.setattr(fr, "tile_ridges", lambda t: cores.append(t.core) or real(t))
    on = analyze_series(zones, A, B, **kw)
    assert cores, "the series was not built from tiles"
    computed = list(cores)
    off = analyze_series(zones, A, B, reuse=False, **kw)
    assert len(cores) == len(computed)  # without reuse, no tiles
    # The same series.csv and corridors.csv either way.
    pd.testing.assert_frame_equal(on.table, off.table, rtol=1e-9, atol=1e-9)
    pd.testing.assert_frame_equal(pd.DataFrame(on.corridors.drop(columns="geometry")),
                                  pd.DataFrame(off.corridors.drop(columns="geometry")),
                                  rtol=1e-9, atol=1e-9)
    assert on.table["closed_km"].iloc[1] > 0 or on.table["opened_km"].iloc[1] > 0
    # A tile's window is its square plus half the maximum width (15 km): only the squares
    # whose window meets the moved edge (x 428–430 km, y 3879–3901 km) are computed again on
    # the 2nd day; every other tile once for the three days, the 3rd day (= the 1st) none.
    r = 15e3

    def near_bump(c):
        return c[0] - r <= 430e3 and c[2] + r >= 428e3 and c[1] - r <= 3901e3 \
            and c[3] + r >= 3879e3

    counts = pd.Series(computed).value_counts()
    twice = {c for c, n in counts.items() if n == 2}
    assert twice and twice == {c for c in counts.index if near_bump(c)}
    assert set(counts) <= {1, 2}
    n_day = len(counts)  # tiles of one day
    assert on.reuse == {"tiles_used": 3 * n_day, "tiles_computed": n_day + len(twice)}


def test_roads_crossing_a_corridor_count_on_its_date_only(tmp_path):
    # A post covering y 3945–3955 km stands on the 1st and 3rd days, not the 2nd: the road
    # along y = 3950 km crosses unguarded seam on the 2nd day only.
    posts = gpd.GeoDataFrame({"range_km": [5.0, 5.0], "active_from": [None, "2024-01-03"],
                              "active_to": ["2024-01-01", None]},
                             geometry=[shapely.Point(420e3, 3950e3)] * 2, crs=CRS)
    posts.to_file(tmp_path / "posts.geojson")
    gpd.GeoDataFrame(geometry=[shapely.LineString([(405e3, 3950e3), (435e3, 3950e3)])],
                     crs=CRS).to_file(tmp_path / "roads.geojson")
    AREA.to_file(tmp_path / "area.geojson")
    for day in ("20240101", "20240102", "20240103"):
        gpd.GeoDataFrame({"force": ["a", "b"]}, geometry=[ZA, ZB], crs=CRS).to_file(
            tmp_path / f"z_{day}.geojson")
    out = tmp_path / "out"
    r = _cli(["--zones", str(tmp_path / "z_*.geojson"), "--posts", str(tmp_path / "posts.geojson"),
              "--roads", str(tmp_path / "roads.geojson"), "--study-area",
              str(tmp_path / "area.geojson"), "--reach-km", "5", "--max-width-km", "40"], out)
    assert r.exit_code == 0, r.output
    c = pd.read_csv(out / "corridors.csv")
    crossed = c.groupby("date")["roads_crossed"].sum().to_dict()
    assert crossed == {"2024-01-01": 0, "2024-01-02": 1, "2024-01-03": 0}
    assert c.groupby("date").size().to_dict() == {"2024-01-01": 2, "2024-01-02": 1,
                                                  "2024-01-03": 2}


def test_visibility_over_a_dem_hides_what_a_wall_hides(tmp_path):
    import rasterio
    from rasterio.transform import from_origin

    # Flat ground but for a 300 m wall across y 3952–3953 km; a post at y = 3950 km (5 km
    # range, 10 m mast) sees the seam from 3945 km to the wall's top, not beyond.
    cell = 100.0
    x0, y1 = 395e3, 4005e3
    h, w = int((y1 - 3895e3) / cell), int((445e3 - x0) / cell)
    dem = np.zeros((h, w), np.float32)
    rows = (y1 - (np.arange(h) + 0.5) * cell)
    dem[(rows > 3952e3) & (rows < 3953e3), :] = 300.0
    with rasterio.open(tmp_path / "dem.tif", "w", driver="GTiff", height=h, width=w, count=1,
                       dtype="float32", crs=f"EPSG:{CRS}",
                       transform=from_origin(x0, y1, cell, cell)) as dst:
        dst.write(dem, 1)
    gpd.GeoDataFrame({"range_km": [5.0]}, geometry=[shapely.Point(420e3, 3950e3)],
                     crs=CRS).to_file(tmp_path / "posts.geojson")
    AREA.to_file(tmp_path / "area.geojson")
    for day in ("20240101", "20240102"):
        gpd.GeoDataFrame({"force": ["a", "b"]}, geometry=[ZA, ZB], crs=CRS).to_file(
            tmp_path / f"z_{day}.geojson")
    args = ["--zones", str(tmp_path / "z_*.geojson"), "--posts", str(tmp_path / "posts.geojson"),
            "--study-area", str(tmp_path / "area.geojson"), "--reach-km", "5",
            "--max-width-km", "40", "--dem", str(tmp_path / "dem.tif")]
    r = _cli([*args, "--visibility"], tmp_path / "vis")
    assert r.exit_code == 0, r.output
    r = _cli(args, tmp_path / "plain")
    assert r.exit_code == 0, r.output
    vis = pd.read_csv(tmp_path / "vis" / "series.csv")["unguarded_length_km"]
    plain = pd.read_csv(tmp_path / "plain" / "series.csv")["unguarded_length_km"]
    assert plain.iloc[0] == pytest.approx(SEAM_KM - geodesic_km(420e3, 3945e3, 3955e3),
                                          rel=1e-3)
    # Seen: 3945 km to the wall (3952–3953 km); hidden: the 2 km or so beyond it. Sampled
    # every 250 m, each end of a covered stretch is placed to within 125 m.
    hidden = vis.iloc[0] - plain.iloc[0]
    assert 2.0 - 0.5 <= hidden <= 3.0 + 0.5
    assert vis.iloc[1] == pytest.approx(vis.iloc[0], abs=1e-9)


def test_memo_distance_equals_the_full_search():
    # The distances of a date, carried from the date before where its nearest segment is
    # still there (and searched among the added segments only), are those of a full search
    # bit for bit: points beside the moved edge, beside the unchanged edge, inside the zone.
    from gapmap.frontier import SideDistance
    from gapmap.series import _MemoDistance

    rng = np.random.default_rng(3)
    xy = np.c_[rng.uniform(415e3, 445e3, 3000), rng.uniform(3790e3, 4010e3, 3000)]
    before = _MemoDistance(SideDistance(np.array([_front_b(False)])), None)
    d0, z0 = before(xy)
    full0 = SideDistance(np.array([_front_b(False)]))(xy)
    assert np.array_equal(d0, full0[0]) and np.array_equal(z0, full0[1])
    side1 = SideDistance(np.array([_front_b(True)]))
    after = _MemoDistance(side1, before.state())
    d1, z1 = after(xy)
    full1 = side1(xy)
    assert np.array_equal(d1, full1[0]) and np.array_equal(z1, full1[1])
    moved = (np.abs(xy[:, 1] - 3890e3) < 12e3) & (xy[:, 0] < 430e3)
    assert (d1[moved] < d0[moved]).any()  # the bump came nearer: carried values were updated
    assert (d1 == 0).any() and (d1 > 0).any()
    # A third date back without the bump: segments removed again, the full search runs there.
    side2 = SideDistance(np.array([_front_b(False)]))
    again = _MemoDistance(side2, after.state())
    assert np.array_equal(again(xy)[0], full0[0])
    assert len(after.memo) == len(xy)
