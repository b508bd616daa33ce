"""The analysts' claims notebook (notebooks/06_seed_questions.ipynb) runs top to bottom, and the
figures it prints agree with the files it wrote and with independent measurements."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from pyproj import Geod

from .notebook_runner import run_notebook

GEOD = Geod(ellps="WGS84")


def _geod_km(gdf: gpd.GeoDataFrame) -> float:
    g = gdf.to_crs(4326)
    return sum(GEOD.geometry_length(x) for x in g.geometry) / 1000.0


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    try:
        yield run_notebook("06_seed_questions.ipynb", mp, tmp_path_factory.mktemp("nb06"))
    finally:
        mp.undo()


@pytest.mark.slow
def test_notebook_runs_and_shows_a_figure_per_claim(ran):
    assert ran.images >= 5
    out = ran.cwd / "out" / "notebook06"
    for name in ("1_by_governorate.png", "2_october_2017.png", "3_anjata_exposure.png",
                 "4_k_curve.png", "5_gi_star.png"):
        assert (out / name).stat().st_size > 10_000, name


@pytest.mark.slow
def test_north_and_south_by_governorate_with_ranges(ran):
    out = ran.cwd / "out" / "notebook06"
    total = ran.number(r"unguarded {} km \(")
    by_gov = pd.read_csv(out / "by_governorate.csv").set_index("ADM1_EN")
    # the governorates add up to the whole (no seam outside them on the sample)
    assert ran.number(r"all governorates: unguarded {} km") == pytest.approx(total, abs=0.05)
    assert by_gov["unguarded_length_km"].sum() == pytest.approx(total, abs=0.05)
    ranges = pd.read_csv(out / "uncertainty" / "by_area.csv").set_index("ADM1_EN")
    for region, names in (("north", ["Ninewa", "Erbil"]), ("south", ["Salah Al-Din", "Diyala"])):
        km, lo, hi, longest = ran.numbers(
            region + r" \([^)]*\): unguarded {} km \(90% range {}–{} km\), "
            r"longest corridor {} km")
        assert km == pytest.approx(by_gov.loc[names, "unguarded_length_km"].sum(), abs=0.05)
        assert lo == pytest.approx(ranges.loc[names, "unguarded_length_km_p05"].sum(), abs=0.05)
        assert hi == pytest.approx(ranges.loc[names, "unguarded_length_km_p95"].sum(), abs=0.05)
        assert lo <= hi
        assert longest == pytest.approx(by_gov.loc[names, "longest_corridor_km"].max(), abs=0.05)
        assert longest <= km + 0.05  # a corridor is part of its governorates' unguarded seam


@pytest.mark.slow
def test_october_2017_opened_and_closed_are_the_written_stretches(ran):
    out = ran.cwd / "out" / "notebook06"
    opened, closed, before, after = ran.numbers(
        r"October 2017: opened {} km, closed {} km; unguarded {} -> {} km")
    assert opened == pytest.approx(_geod_km(gpd.read_file(out / "opened.geojson")), rel=2e-3)
    assert closed == pytest.approx(_geod_km(gpd.read_file(out / "closed.geojson")), rel=2e-3)
    # what opened less what closed is the change of the unguarded seam, up to the seam
    # itself moving between the dates (its pieces are matched within 1 km)
    assert opened - closed == pytest.approx(after - before, abs=5.0)
    assert opened > 0 and closed > 0
    n, longest = ran.numbers(r"{} stretches opened, the longest {} km")
    written = gpd.read_file(out / "opened.geojson")
    assert n == len(written) and n > 1  # several stretches, not one
    assert longest == pytest.approx(written["length_km"].max(), abs=0.05)


@pytest.mark.slow
def test_anjata_exposure_with_and_without_the_patrol(ran):
    out = ran.cwd / "out" / "notebook06"
    exp_with, exp_without, newly, stretches = ran.numbers(
        r"with the patrol \(posts of 2017-10-20\): {} km exposed; without \(2017-10-31\): "
        r"{} km; newly exposed {} km in {} stretches")
    w = json.loads((out / "exposure_with_patrol" / "exposure.json").read_text())
    wo = json.loads((out / "exposure_without_patrol" / "exposure.json").read_text())
    assert exp_with == pytest.approx(w["exposed_km"], abs=0.05)
    assert exp_without == pytest.approx(wo["exposed_km"], abs=0.05)
    # the three patrol stops are the only difference in posts
    assert w["posts"] - wo["posts"] == 3
    # exposed km measured again with pyproj along the written pieces
    for d, doc in (("exposure_with_patrol", w), ("exposure_without_patrol", wo)):
        pieces = gpd.read_file(out / d / "exposure.gpkg", layer="exposure")
        assert _geod_km(pieces[pieces["exposed"]]) == pytest.approx(doc["exposed_km"], rel=1e-3)
        assert pieces["name"].str.contains("Kirkuk–Baghdad").all()
    # withdrawing posts can only expose more: the newly exposed km are the whole difference
    assert newly > 0 and exp_without > exp_with
    assert newly == pytest.approx(exp_without - exp_with, abs=0.05)
    new = gpd.read_file(out / "exposure_without_patrol" / "newly_exposed.geojson")
    assert len(new) == stretches
    assert _geod_km(new) == pytest.approx(newly, rel=2e-3)
    # every newly exposed stretch lies within a stop's 4 km range (geodesic, from its ends)
    posts = gpd.read_file(ran.cwd / "geodata" / "posts_dated.geojson")
    stops = posts[posts["kind"] == "patrol"]
    for line in new.geometry:
        for x, y in (line.coords[0], line.coords[-1]):
            d = min(GEOD.inv(x, y, p.x, p.y)[2] for p in stops.geometry) / 1000.0
            assert d <= 4.0 + 1e-3


@pytest.mark.slow
def test_four_joint_posts_and_a_fifth(ran):
    out = ran.cwd / "out" / "notebook06"
    four, before, _share, fifth = ran.numbers(
        r"four joint posts close {} km of {} km \({}%\); a fifth adds {} km")
    curve = pd.read_csv(out / "k_curve.csv").set_index("k")
    assert four == pytest.approx(curve.loc[4, "closed_km"], abs=0.05)
    assert fifth == pytest.approx(curve.loc[5, "closed_km"] - curve.loc[4, "closed_km"], abs=0.05)
    closed = curve["closed_km"].to_numpy()
    assert (np.diff(closed) >= -1e-9).all()      # more sites never close less
    # an 8 km post covers at most a 16 km chord of each seam line it reaches, and K posts
    # close more than one and at most K chords' worth per line here
    assert 0 < four <= 4 * 16.0 * 2
    assert curve["optimal"].all()
    assert before == pytest.approx(ran.number(r"unguarded {} km \("), abs=0.05)


@pytest.mark.slow
def test_gi_star_hot_spots_are_the_written_hexagons(ran):
    out = ran.cwd / "out" / "notebook06"
    n_hot, n_hex, in_hot, total, n_cold = ran.numbers(
        r"Gi\* hot spots: {} of {} hexagons, holding {} of {} events; cold spots: {}")
    hexes = gpd.read_file(out / "gi_star.geojson")
    assert len(hexes) == n_hex and hexes["hot"].sum() == n_hot and hexes["cold"].sum() == n_cold
    assert hexes.loc[hexes["hot"], "count"].sum() == in_hot and hexes["count"].sum() == total
    # Gi* sums a hexagon and its six neighbours: around every hot spot that sum is above
    # seven average hexagons (centres one spacing, 10 km, apart; measured in UTM 38N)
    c = hexes.to_crs(32638).geometry.centroid
    xy = np.column_stack([c.x, c.y])
    counts = hexes["count"].to_numpy()
    for i in np.flatnonzero(hexes["hot"].to_numpy()):
        near = np.hypot(*(xy - xy[i]).T) <= 10_000 * 1.05
        assert near.sum() <= 7 and counts[near].sum() > 7 * counts.mean()
    top = int(ran.number(r"largest count: {} events in the hexagon at"))
    assert top == counts.max()
