"""Breakdowns by area on hand geometry: two strips whose seam crosses two areas."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gapmap import Settings, analyze, parse_side
from gapmap.by_area import OUTSIDE, breakdown, load_areas
from gapmap.errors import InputError
from gapmap.incidents import incident_metrics, with_incidents

from .conftest import UTM38, X0, Y0

A, B = parse_side("krg=peshmerga"), parse_side("federal=isf")


@pytest.fixture
def areas() -> gpd.GeoDataFrame:
    """North (y 60–100 km) and south (y 0–60 km) halves of the strips' study area."""
    return gpd.GeoDataFrame(
        {"ADM1_EN": ["North", "South"], "ADM2_EN": ["n1", "s1"]},
        geometry=[shapely.box(X0 - 20e3, Y0 + 60e3, X0 + 60e3, Y0 + 100e3),
                  shapely.box(X0 - 20e3, Y0, X0 + 60e3, Y0 + 60e3)], crs=UTM38)


@pytest.fixture
def post() -> gpd.GeoDataFrame:
    """A 5 km post on the seam at the north/south border: it guards 5 km each side of it."""
    return gpd.GeoDataFrame({"force": ["joint"], "range_km": [5.0]},
                            geometry=[shapely.Point(X0 + 20e3, Y0 + 60e3)], crs=UTM38)


@pytest.fixture
def result(strips, areas, post):
    return analyze(strips, A, B, posts=post, study_area=areas, settings=Settings(reach_km=2))


def _scale(crs, x, y) -> float:
    """Planar km per geodesic km at (x, y) (UTM point scale)."""
    from pyproj import Proj, Transformer

    lon, lat = Transformer.from_crs(crs, 4326, always_xy=True).transform(x, y)
    return float(Proj(crs).get_factors(lon, lat).meridional_scale)


def test_rows_match_hand_geometry(result, areas):
    k = _scale(result.crs, X0 + 20e3, Y0 + 50e3)
    t = breakdown(result, areas, "ADM1_EN").set_index("ADM1_EN")
    assert list(t.index) == ["North", "South"]
    # seam x = X0 + 20 km from y 0 to 100 km; post covers y 55–65 km
    assert t.loc["North", "seam_length_km"] == pytest.approx(40 / k, rel=1e-3)
    assert t.loc["South", "seam_length_km"] == pytest.approx(60 / k, rel=1e-3)
    assert t.loc["North", "unguarded_length_km"] == pytest.approx(35 / k, rel=1e-3)
    assert t.loc["South", "unguarded_length_km"] == pytest.approx(55 / k, rel=1e-3)
    assert t.loc["North", "longest_corridor_km"] == pytest.approx(35 / k, rel=1e-3)
    assert t.loc["South", "unguarded_share"] == pytest.approx(55 / 60, rel=1e-3)
    # gap: 80 km wide box minus the strips grown by 2 km (14 km each) = 52 km wide
    assert t.loc["North", "gap_area_km2"] == pytest.approx(52 * 40 / k**2, rel=2e-3)
    assert t.loc["South", "gap_area_km2"] == pytest.approx(52 * 60 / k**2, rel=2e-3)
    assert t["incidents"].isna().all()  # no incidents given: empty, not 0


def test_rows_sum_to_summary(result, areas):
    t = breakdown(result, areas, "ADM1_EN")
    s = result.summary
    for col in ("seam_length_km", "unguarded_length_km", "gap_area_km2"):
        assert t[col].sum() == pytest.approx(s[col], rel=1e-3)
    assert t["longest_corridor_km"].max() <= s["longest_corridor_km"] + 1e-9


def test_corridor_split_at_border_gives_longest_piece(strips, areas):
    """Without the post one 100 km corridor crosses the border: pieces of 40 and 60 km."""
    res = analyze(strips, A, B, study_area=areas)
    assert res.summary["corridors"] == 1
    t = breakdown(res, areas, "ADM1_EN").set_index("ADM1_EN")
    k = _scale(res.crs, X0 + 20e3, Y0 + 50e3)
    assert t.loc["North", "longest_corridor_km"] == pytest.approx(40 / k, rel=1e-3)
    assert t.loc["South", "longest_corridor_km"] == pytest.approx(60 / k, rel=1e-3)


def test_incidents_counted_per_area(result, areas):
    pts = gpd.GeoDataFrame(
        {"date": pd.to_datetime(["2017-01-01"] * 3), "event_id": ["g-north", "g-south", "in-zone"]},
        geometry=[shapely.Point(X0 + 20e3, Y0 + 80e3), shapely.Point(X0 + 20e3, Y0 + 20e3),
                  shapely.Point(X0 + 5e3, Y0 + 30e3)], crs=UTM38)
    res = with_incidents(result, incident_metrics(result, pts))
    t = breakdown(res, areas, "ADM1_EN").set_index("ADM1_EN")
    assert t.loc["North", "incidents"] == 1 and t.loc["North", "incidents_in_gap"] == 1
    assert t.loc["South", "incidents"] == 2 and t.loc["South", "incidents_in_gap"] == 1
    assert t["incidents_in_gap"].sum() == res.summary["incidents_in_gap"]


def test_grouping_merges_polygons_with_one_value(result, areas):
    one = areas.assign(ADM0="Iraq")
    t = breakdown(result, one, "ADM0")
    assert len(t) == 1
    assert t["seam_length_km"].iloc[0] == pytest.approx(result.summary["seam_length_km"],
                                                        rel=1e-6)


def test_outside_row_when_areas_do_not_cover(result, areas):
    north = areas.iloc[[0]]
    t = breakdown(result, north, "ADM1_EN").set_index("ADM1_EN")
    assert OUTSIDE in t.index
    assert t["seam_length_km"].sum() == pytest.approx(result.summary["seam_length_km"], rel=1e-3)


def test_missing_field_lists_fields(areas):
    with pytest.raises(InputError, match="ADM1_EN, ADM2_EN") as exc:
        load_areas(areas, "district")
    assert "\n" not in str(exc.value)


def test_overlapping_areas_refused(areas):
    over = gpd.GeoDataFrame({"ADM1_EN": ["North", "Middle"]}, crs=UTM38,
                            geometry=[areas.geometry.iloc[0],
                                      shapely.box(X0 - 20e3, Y0 + 40e3, X0 + 60e3, Y0 + 80e3)])
    with pytest.raises(InputError, match="overlap"):
        load_areas(over, "ADM1_EN")


def test_slivers_go_to_first_area(areas):
    sliver = areas.copy()
    sliver.loc[1, "geometry"] = shapely.box(X0 - 20e3, Y0, X0 + 60e3, Y0 + 60e3 + 0.5)
    fixed = load_areas(sliver, "ADM1_EN")
    inter = shapely.intersection(fixed.geometry.iloc[0], fixed.geometry.iloc[1])
    assert inter.area == pytest.approx(0.0, abs=1e-6)
    assert np.isclose(fixed.geometry.iloc[0].area, areas.geometry.iloc[0].area)


def test_metrics_by_writes_by_area_csv(tmp_path, strips, areas):
    from click.testing import CliRunner

    from gapmap.cli import main

    z, sa = tmp_path / "zones.gpkg", tmp_path / "areas.gpkg"
    strips.to_file(z)
    areas.to_file(sa)
    args = ["metrics", "--zones", str(z), "--side-a", "krg=peshmerga", "--side-b",
            "federal=isf", "--study-area", str(sa)]
    out = tmp_path / "out"
    res = CliRunner().invoke(main, [*args, "--by", "ADM2_EN", "--out", str(out)],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out / "by_area.csv")
    assert list(table.columns) == ["ADM2_EN", "seam_length_km", "unguarded_length_km",
                                   "unguarded_share", "longest_corridor_km", "gap_area_km2",
                                   "incidents", "incidents_in_gap"]
    assert sorted(table["ADM2_EN"]) == ["n1", "s1"]
    bad = CliRunner().invoke(main, [*args, "--by", "ADM3_EN", "--out", str(tmp_path / "no")])
    assert bad.exit_code == 2 and "use one of: ADM1_EN, ADM2_EN" in bad.output
    assert not (tmp_path / "no").exists()


def test_admin_check_counts_events_stated_elsewhere(result, areas):
    from gapmap.by_area import admin_check

    pts = gpd.GeoDataFrame(
        {"source_id": ["right", "wrong"], "admin1": ["north", "North"], "coarse": [False, False],
         "date": pd.to_datetime(["2017-01-01"] * 2)},
        geometry=[shapely.Point(X0 + 20e3, Y0 + 80e3), shapely.Point(X0 + 20e3, Y0 + 20e3)],
        crs=UTM38)
    res = with_incidents(result, incident_metrics(result, pts))
    checked, table = admin_check(res, areas, "ADM1_EN")
    assert checked.summary["admin_mismatches"] == 1
    assert table["stated"].tolist() == ["North"] and table["found"].tolist() == ["South"]
    # the point lies 40 km south of the North area (y 20 km vs its edge at y 60 km)
    assert table["distance_km"].iloc[0] == pytest.approx(40.0, rel=2e-3)
    plain, none = admin_check(result, areas, "ADM1_EN")
    assert none is None and "admin_mismatches" not in plain.summary


def test_metrics_by_failing_at_by_area_leaves_the_previous_folder(tmp_path, strips, areas,
                                                                  monkeypatch):
    """by_area.csv is written in the same atomic step as the other files: a run that fails
    while writing it leaves the previous result byte-identical (not new summary, old table)."""
    import errno
    import hashlib

    from click.testing import CliRunner

    from gapmap.cli import main

    z, sa = tmp_path / "zones.gpkg", tmp_path / "areas.gpkg"
    strips.to_file(z)
    areas.to_file(sa)
    args = ["metrics", "--zones", str(z), "--side-a", "krg=peshmerga", "--side-b",
            "federal=isf", "--study-area", str(sa), "--by", "ADM2_EN"]
    out = tmp_path / "out"
    res = CliRunner().invoke(main, [*args, "--reach-km", "2", "--out", str(out)],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output

    def tree():
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(out.iterdir())}

    before = tree()
    assert "by_area.csv" in before and "summary.json" in before
    real = pd.DataFrame.to_csv

    def failing(self, path=None, *a, **kw):
        if path is not None and str(path).endswith("by_area.csv"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, path, *a, **kw)

    monkeypatch.setattr(pd.DataFrame, "to_csv", failing)
    # another reach: every file of a successful run would differ
    bad = CliRunner().invoke(main, [*args, "--reach-km", "9", "--out", str(out)])
    assert bad.exit_code == 1 and "space" in bad.output
    assert tree() == before
    assert not [p for p in tmp_path.iterdir() if ".gapmap-" in p.name]
    monkeypatch.setattr(pd.DataFrame, "to_csv", real)
    good = CliRunner().invoke(main, [*args, "--reach-km", "9", "--out", str(out)],
                              catch_exceptions=False)
    assert good.exit_code == 0 and tree()["summary.json"] != before["summary.json"]
    assert tree()["by_area.csv"] != before["by_area.csv"]
    # into a new folder: a failure while writing by_area.csv leaves no folder at all
    fresh = tmp_path / "fresh"
    monkeypatch.setattr(pd.DataFrame, "to_csv", failing)
    bad = CliRunner().invoke(main, [*args, "--reach-km", "2", "--out", str(fresh)])
    assert bad.exit_code == 1 and "space" in bad.output
    assert not fresh.exists()
    assert not [p for p in tmp_path.iterdir() if ".gapmap-" in p.name]
