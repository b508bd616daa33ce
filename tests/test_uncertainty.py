"""Monte Carlo uncertainty on scenes whose probabilities follow from the perturbations by hand."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gapmap import Settings, analyze, parse_side
from gapmap.errors import InputError
from gapmap.uncertainty import _base_states, _copy, _frame, parse_range, simulate

from .conftest import UTM38, X0, Y0

A, B = parse_side("krg=peshmerga"), parse_side("federal=isf")


def _tri_cdf_quantile(q: float, e: float) -> float:
    """Quantile of S = U1 + U2, Ui ~ U[-e, e] (triangular on [-2e, 2e]), for q ≤ 0.5."""
    return -2 * e + np.sqrt(8 * q) * e


def test_gap_closes_with_the_chance_the_edges_give(strips, strips_area):
    """Strips 20 km apart, reach 8 km: the seam is guarded when the two edges grow by a sum
    e_a + e_b ≥ 20 − 2·8 = 4 km; with e ~ U[−4, 4] that chance is (8 − 4)² / (8·4²) = 1/8."""
    res = analyze(strips, A, B, study_area=strips_area, settings=Settings(reach_km=8))
    assert res.summary["unguarded_share"] == pytest.approx(1.0)
    sim = simulate(res, draws=500, edge_km=4.0, seed=3, grid_points=2000)
    p = sim.p_unguarded["p_unguarded"].to_numpy()
    assert p.mean() == pytest.approx(7 / 8, abs=0.045)  # 3 standard errors
    assert np.ptp(p) <= 0.01  # one draw per zone: the whole seam closes or stays open
    t = sim.table
    # width 20 − (e_a + e_b): a triangular distribution's quantiles
    assert t.loc["width_mean_km", "p05"] == pytest.approx(20 + _tri_cdf_quantile(0.05, 4), abs=0.6)
    assert t.loc["width_mean_km", "p95"] == pytest.approx(20 - _tri_cdf_quantile(0.05, 4), abs=0.6)
    assert t.loc["width_mean_km", "base"] == pytest.approx(20.0, rel=1e-3)
    # the seam moves sideways but keeps its length
    assert t.loc["seam_length_km", "p05"] == pytest.approx(res.summary["seam_length_km"], rel=2e-3)
    assert t.loc["seam_length_km", "p95"] == pytest.approx(res.summary["seam_length_km"], rel=2e-3)
    assert t.loc["unguarded_length_km", "mean"] == pytest.approx(
        7 / 8 * res.summary["unguarded_length_km"], rel=0.05)
    assert t.loc["corridors", "p05"] == 0 and t.loc["corridors", "p95"] == 1


def test_post_range_gives_a_linear_probability(strips, strips_area):
    """A 10 km post on the seam, ranges ×U[0.5, 1.5]: a seam point ρ km from it is unguarded
    with chance P(10·u < ρ) = ρ/10 − 0.5 for 5 ≤ ρ ≤ 15 (0 nearer, 1 further)."""
    post = gpd.GeoDataFrame({"force": ["joint"], "range_km": [10.0]},
                            geometry=[shapely.Point(X0 + 20e3, Y0 + 50e3)], crs=UTM38)
    res = analyze(strips, A, B, posts=post, study_area=strips_area)
    sim = simulate(res, draws=600, post_range_frac=0.5, seed=7, grid_points=2000)
    s = sim.p_unguarded
    rho = np.abs(s.geometry.y.to_numpy() - (Y0 + 50e3)) / 1000.0
    p = s["p_unguarded"].to_numpy()
    mid = (rho > 6) & (rho < 14)
    assert mid.sum() > 50
    assert np.abs(p[mid] - (rho[mid] / 10 - 0.5)).max() < 0.07
    assert (p[rho < 4.9] == 0).all() and (p[rho > 15.1] == 1).all()
    # unguarded length = 100 − 2·10·u: mean 80 km, 90% range 100 − 20·(1.45, 0.55)
    k = res.summary["seam_length_km"] / 100.0
    assert sim.table.loc["unguarded_length_km", "mean"] == pytest.approx(80 * k, abs=1.0)
    assert sim.table.loc["unguarded_length_km", "p05"] == pytest.approx((100 - 29) * k, abs=1.0)
    assert sim.table.loc["unguarded_length_km", "p95"] == pytest.approx((100 - 11) * k, abs=1.0)


def test_reach_range_drawn_per_copy(strips, strips_area):
    """Half-width 10 km, reach ~ U[8, 12]: guarded in half the copies."""
    res = analyze(strips, A, B, study_area=strips_area)
    sim = simulate(res, draws=200, reach_km="8:12", seed=1, grid_points=2000)
    assert sim.p_unguarded["p_unguarded"].mean() == pytest.approx(0.5, abs=0.1)
    assert sim.draws["reach_km"].between(8, 12).all()


def test_one_copy_matches_the_analysis_of_grown_zones():
    """A copy with edges moved outward equals the analysis of the buffered zones (the offset
    distance d − e is exact outside a grown zone)."""
    a = shapely.box(X0, Y0, X0 + 20e3, Y0 + 80e3)
    b = shapely.affinity.rotate(shapely.box(X0 + 45e3, Y0, X0 + 60e3, Y0 + 80e3), 12)
    zones = gpd.GeoDataFrame({"force": ["peshmerga", "isf"]}, geometry=[a, b], crs=UTM38)
    area = gpd.GeoDataFrame(geometry=[shapely.box(X0 - 10e3, Y0 + 5e3, X0 + 80e3, Y0 + 75e3)],
                            crs=UTM38)
    posts = gpd.GeoDataFrame({"force": ["joint"], "range_km": [6.0]},
                             geometry=[shapely.Point(X0 + 32e3, Y0 + 40e3)], crs=UTM38)
    settings = Settings(reach_km=3)
    base = analyze(zones, A, B, posts=posts, study_area=area, settings=settings)
    e = np.array([1500.0, 700.0])
    grown = zones.assign(geometry=[a.buffer(1500, quad_segs=64), b.buffer(700, quad_segs=64)])
    ref = analyze(grown, A, B, posts=posts, study_area=area, settings=settings).summary
    fr, _, _ = _frame(base, 2.0, None, 250.0, grid_points=10_000)
    out, _, _, _ = _copy(fr, e, fr.zone_reach_m, np.ones(1), _base_states(fr))
    for name in ("seam_length_km", "width_mean_km"):
        assert out[name] == pytest.approx(ref[name], rel=5e-3), name
    # covered/uncovered changes are placed midway between samples: ≤ 125 m off at each of
    # the four corridor ends
    assert out["unguarded_length_km"] == pytest.approx(ref["unguarded_length_km"], abs=0.5)
    assert out["gap_area_km2"] == pytest.approx(ref["gap_area_km2"], rel=2e-3)
    assert out["corridors"] == ref["corridors"]


def _two_pairs(gap_north_km: float):
    """Two pairs of strips 100 km apart (a study area of two boxes): the southern pair 20 km
    apart, the northern ``gap_north_km`` apart; each pair's seam is one corridor."""
    def box(x0, y0, x1, y1):
        return shapely.box(X0 + x0 * 1e3, Y0 + y0 * 1e3, X0 + x1 * 1e3, Y0 + y1 * 1e3)

    g = gap_north_km
    zones = gpd.GeoDataFrame({"force": ["peshmerga", "isf", "peshmerga", "isf"]}, crs=UTM38,
                             geometry=[box(0, 0, 10, 100), box(30, 0, 40, 100),
                                       box(0, 200, 10, 300), box(10 + g, 200, 20 + g, 300)])
    area = gpd.GeoDataFrame(geometry=[box(-20, 0, 60, 100), box(-20, 200, 60, 300)], crs=UTM38)
    return zones, area


def test_corridor_closes_with_the_chance_its_edges_give():
    """Reach 8 km, edges ±4 km (one draw per zone). A pair's corridor closes when its two
    edges grow by e_a + e_b ≥ gap − 16 km: P = (8 − s)² / 128 for that threshold s. South:
    gap 20, s = 4, it stays open in 7/8 of the copies; north: gap 16.4, s = 0.4, it closes in
    (7.6)² / 128 = 45.1% of them — about half. Open, a corridor spans its whole strip (100
    km); closed, 0."""
    zones, area = _two_pairs(16.4)
    res = analyze(zones, A, B, study_area=area, settings=Settings(reach_km=8))
    assert len(res.corridors) == 2
    sim = simulate(res, draws=400, edge_km=4.0, seed=11, grid_points=2000)
    c = sim.corridors.set_index("corridor_id")
    south = res.corridors.loc[res.corridors.geometry.bounds["miny"] < Y0 + 1e3, "corridor_id"]
    s_id = south.iloc[0]
    n_id = next(i for i in c.index if i != s_id)
    p_south, p_north = 7 / 8, 1 - 7.6 ** 2 / 128
    assert c.loc[s_id, "p_open"] == pytest.approx(p_south, abs=3 * np.sqrt(p_south / 8 / 400))
    assert c.loc[n_id, "p_open"] == pytest.approx(
        p_north, abs=3 * np.sqrt(p_north * (1 - p_north) / 400))
    for cid in (s_id, n_id):
        full = float(res.corridors.set_index("corridor_id").loc[cid, "length_km"])
        assert c.loc[cid, "length_km"] == pytest.approx(full)
        assert c.loc[cid, "length_km_p05"] == 0  # closed in more than 5% of the copies
        assert c.loc[cid, "length_km_p95"] == pytest.approx(full, rel=2e-3)
        # length 100 km when open, 0 when closed: the mean is P(open) × 100 km
        assert c.loc[cid, "length_km_mean"] == pytest.approx(c.loc[cid, "p_open"] * full,
                                                             rel=2e-3)
    assert c.loc[s_id, "length_km_p50"] == pytest.approx(c.loc[s_id, "length_km"], rel=2e-3)


def test_corridor_length_follows_the_post_range():
    """One strip pair always unguarded (reach 2 km), a 10 km post at its middle, ranges
    ×U[0.5, 1.5]: each half is a corridor of 50 − 10·u km, longer than in the analysis when
    the post shrinks (the copy's corridor reaches beyond the analysis' one)."""
    from .scenes import strips as make_strips, strips_area as make_area

    post = gpd.GeoDataFrame({"force": ["joint"], "range_km": [10.0]},
                            geometry=[shapely.Point(X0 + 20e3, Y0 + 50e3)], crs=UTM38)
    res = analyze(make_strips(), A, B, posts=post, study_area=make_area())
    assert len(res.corridors) == 2
    sim = simulate(res, draws=400, post_range_frac=0.5, seed=4, grid_points=2000)
    c = sim.corridors
    assert (c["p_open"] == 1).all()
    k = res.summary["seam_length_km"] / 100.0
    assert c["length_km"].to_numpy() == pytest.approx(40 * k, abs=0.15)
    # u ~ U[0.5, 1.5]: p05 of 50 − 10u is 50 − 10·1.45, p95 50 − 10·0.55, mean 40
    assert c["length_km_p05"].to_numpy() == pytest.approx(35.5 * k, abs=0.5)
    assert c["length_km_p95"].to_numpy() == pytest.approx(44.5 * k, abs=0.5)
    assert c["length_km_mean"].to_numpy() == pytest.approx(40 * k, abs=0.5)


def test_by_area_ranges_for_every_field(strips, strips_area):
    """Strips 20 km apart, reach 8, edges ±4 km, areas North (y 60–100) and South (y 0–60):
    both areas close together (one draw per zone): unguarded 0 or the area's seam; the seam
    and its share keep their lengths; the ranges hold every by-area field."""
    areas = gpd.GeoDataFrame({"ADM1_EN": ["North", "South"]}, crs=UTM38,
                             geometry=[shapely.box(X0 - 20e3, Y0 + 60e3, X0 + 60e3, Y0 + 100e3),
                                       shapely.box(X0 - 20e3, Y0, X0 + 60e3, Y0 + 60e3)])
    res = analyze(strips, A, B, study_area=areas, settings=Settings(reach_km=8))
    sim = simulate(res, draws=200, edge_km=4.0, seed=3, grid_points=2000, areas=areas,
                   by="ADM1_EN")
    t = sim.by_area.set_index("ADM1_EN")
    from gapmap.uncertainty import AREA_RANGE_FIELDS

    for name in AREA_RANGE_FIELDS[:5]:
        for p in ("p05", "p50", "p95"):
            assert f"{name}_{p}" in t.columns, (name, p)
    for area, km in (("North", 40.0), ("South", 60.0)):
        row = t.loc[area]
        assert row["seam_length_km_p05"] == pytest.approx(km, rel=3e-3)
        assert row["seam_length_km_p95"] == pytest.approx(km, rel=3e-3)
        assert row["unguarded_length_km_p05"] == 0  # closed in 1/8 of the copies
        assert row["unguarded_length_km_p95"] == pytest.approx(km, rel=3e-3)
        assert row["longest_corridor_km_p50"] == pytest.approx(km, rel=3e-3)
        assert row["unguarded_share_p95"] == pytest.approx(1.0, abs=1e-3)
        # the edges move the gap's sides both ways: its range brackets the unperturbed area
        assert row["gap_area_km2_p05"] < row["gap_area_km2"] < row["gap_area_km2_p95"]
    # the areas' medians of the gap area add up to about the whole one's (one draw per zone
    # moves both areas alike, in proportion to their lengths 40 : 60)
    assert t["gap_area_km2_p50"].sum() == pytest.approx(sim.table.loc["gap_area_km2", "p50"],
                                                        rel=0.01)


def test_copy_of_a_kinked_seam_matches_the_analysis_of_the_grown_zone():
    """Side B's edge a sawtooth (teeth 3 km deep every 4 km): the seam bends at every tooth.
    A copy with side A grown by 3 km measures the seam analyze() finds for the buffered zone
    to 0.1% (transects normal to the seam's direction over ±edge_km; normal to its 1 m
    tangent they fanned and crossed at the bends: 0.3% short here, 3–15% long on the sample)."""
    ys = np.arange(0, 100.01, 2.0)
    xs = np.where(np.arange(len(ys)) % 2 == 0, 30.0, 33.0)
    saw = shapely.Polygon([(X0 + 45e3, Y0)] + [(X0 + x * 1e3, Y0 + y * 1e3)
                                               for x, y in zip(xs, ys)] + [(X0 + 45e3, Y0 + 100e3)])
    a = shapely.box(X0, Y0, X0 + 10e3, Y0 + 100e3)
    zones = gpd.GeoDataFrame({"force": ["peshmerga", "isf"]}, geometry=[a, saw], crs=UTM38)
    area = gpd.GeoDataFrame(geometry=[shapely.box(X0 - 10e3, Y0 + 5e3, X0 + 60e3, Y0 + 95e3)],
                            crs=UTM38)
    settings = Settings(reach_km=2)
    base = analyze(zones, A, B, study_area=area, settings=settings)
    ref = analyze(zones.assign(geometry=[a.buffer(3000, quad_segs=64), saw]), A, B,
                  study_area=area, settings=settings).summary
    fr, _, _ = _frame(base, 4.0, None, 250.0, grid_points=5000)
    out = _copy(fr, np.array([3000.0, 0.0]), fr.zone_reach_m, np.ones(0), _base_states(fr))[0]
    assert out["seam_length_km"] == pytest.approx(ref["seam_length_km"], rel=1e-3)
    assert out["unguarded_length_km"] == pytest.approx(ref["unguarded_length_km"], rel=1e-3)


def test_no_perturbation_reproduces_the_analysis(strips, strips_area):
    res = analyze(strips, A, B, study_area=strips_area)
    sim = simulate(res, draws=3, seed=0, grid_points=2000)
    for name in ("seam_length_km", "unguarded_length_km", "gap_area_km2", "corridors"):
        row = sim.table.loc[name]
        assert row["p05"] == pytest.approx(row["base"], rel=1e-3)
        assert row["p95"] == pytest.approx(row["base"], rel=1e-3)


def test_same_seed_same_result_however_it_runs(strips, strips_area):
    """In-process, on a reversed runner and on the Dask engine: identical results."""
    res = analyze(strips, A, B, study_area=strips_area, settings=Settings(reach_km=8))
    one = simulate(res, draws=30, edge_km=3.0, post_range_frac=0.1, seed=5, grid_points=2000)

    def backwards(fn, items, *, shared=None):  # a runner that works through the tasks reversed
        return [fn(shared, it) for it in items[::-1]][::-1]

    two = simulate(res, draws=30, edge_km=3.0, post_range_frac=0.1, seed=5, run_tasks=backwards,
                   grid_points=2000)
    assert one.table.equals(two.table)
    assert np.array_equal(one.p_unguarded["p_unguarded"], two.p_unguarded["p_unguarded"])
    from functools import partial

    from gapmap.engine import run_tasks

    dask = simulate(res, draws=30, edge_km=3.0, post_range_frac=0.1, seed=5, grid_points=2000,
                    run_tasks=partial(run_tasks, workers=2))
    assert one.table.equals(dask.table)
    other = simulate(res, draws=30, edge_km=3.0, post_range_frac=0.1, seed=6, grid_points=2000)
    assert not one.draws["width_mean_km"].equals(other.draws["width_mean_km"])


def _wall_dem(path, wall=True):
    """A flat 100 m DEM over the strips with an 800 m wall across the seam at y = 50.9–51 km
    (ground 300 m): a post at 50 km sees north to the wall and no further."""
    import rasterio
    from affine import Affine

    cell, w, h = 100.0, 800, 1100
    x0, y1 = X0 - 20e3, Y0 + 105e3
    z = np.full((h, w), 300.0, dtype="float32")
    if wall:
        z[int((y1 - (Y0 + 51e3)) // cell), :] = 800.0
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=1, dtype="float32",
                       crs="EPSG:32638", transform=Affine(cell, 0, x0, 0, -cell, y1)) as dst:
        dst.write(z, 1)
    return path


def _seen(zones, posts, area, dem):
    """The analysis with visibility, without the terrain search (as the command runs it)."""
    from gapmap import Run

    return Run.from_layers(zones, A, B, posts=posts, study_area=area, dem=dem,
                           visibility=True).measured


_POST = dict(geometry=[shapely.Point(X0 + 20e3, Y0 + 50e3)], crs=UTM38)


def test_line_of_sight_wall_hides_what_the_ranges_reach(tmp_path, strips, strips_area):
    """Post on the seam at 50 km, range 5 km × U[0.5, 1.5], a wall across the seam at 51 km.
    South of the post a point ρ km away is unguarded with chance P(5u < ρ) = (ρ − 2.5)/5;
    between the post and the wall never; beyond the wall always (hidden, whatever the range).
    So the unguarded length is 100 − 1 − r with r ~ U[2.5, 7.5] km."""
    post = gpd.GeoDataFrame({"force": ["joint"], "range_km": [5.0], "height_m": [10.0]}, **_POST)
    dem = _wall_dem(tmp_path / "wall.tif")
    res = _seen(strips, post, strips_area, dem)
    sim = simulate(res, draws=400, post_range_frac=0.5, seed=2, grid_points=2000,
                   visibility=True)
    assert sim.parameters["visibility"] is True
    s = sim.p_unguarded
    y = (s.geometry.y.to_numpy() - Y0) / 1000.0
    p = s["p_unguarded"].to_numpy()
    south = (y > 50 - 7) & (y < 50 - 3)
    assert np.abs(p[south] - ((50 - y[south]) - 2.5) / 5).max() < 0.09
    assert (p[(y > 50.2) & (y < 50.8)] == 0).all()  # seen in every copy
    assert (p[(y > 51.2) & (y < 58)] == 1).all()  # behind the wall, though within range
    assert (p[y < 42.4] == 1).all()
    k = res.summary["seam_length_km"] / 100.0
    t = sim.table.loc["unguarded_length_km"]
    assert t["base"] == pytest.approx(94 * k, abs=0.3)  # the metrics --visibility figure
    assert t["mean"] == pytest.approx(94 * k, abs=0.4)
    assert t["p05"] == pytest.approx((99 - 7.25) * k, abs=0.5)
    assert t["p95"] == pytest.approx((99 - 2.75) * k, abs=0.5)
    # without line of sight the same draws cover the stretch beyond the wall too
    plain = simulate(analyze(strips, A, B, posts=post, study_area=strips_area), draws=400,
                     post_range_frac=0.5, seed=2, grid_points=2000)
    q = plain.p_unguarded["p_unguarded"].to_numpy()
    assert q[(y > 51.2) & (y < 52.4)].max() == 0
    assert plain.table.loc["unguarded_length_km", "mean"] == pytest.approx(90 * k, abs=0.4)


def test_line_of_sight_unperturbed_copies_equal_the_analysis(tmp_path, strips, strips_area):
    """No perturbation: every copy measures what metrics --visibility measured (to a sample
    spacing at each corridor end)."""
    post = gpd.GeoDataFrame({"force": ["joint"], "range_km": [6.0], "height_m": [10.0]}, **_POST)
    res = _seen(strips, post, strips_area, _wall_dem(tmp_path / "wall.tif"))
    sim = simulate(res, draws=2, seed=0, grid_points=2000, visibility=True)
    row = sim.table.loc["unguarded_length_km"]
    assert row["p05"] == pytest.approx(row["base"], abs=0.25)
    assert row["p95"] == pytest.approx(row["base"], abs=0.25)
    assert sim.table.loc["corridors", "p50"] == res.summary["corridors"] == 2


def test_line_of_sight_needs_a_dem(strips, strips_area):
    res = analyze(strips, A, B, study_area=strips_area)
    with pytest.raises(InputError, match="needs a DEM"):
        simulate(res, draws=2, visibility=True)


@pytest.mark.parametrize("kw, match", [
    ({"draws": 1}, "--draws"),
    ({"draws": 100_001}, "--force"),
    ({"edge_km": -1.0}, "--edge-km"),
    ({"reach_km": "5:1"}, "LOW > HIGH"),
    ({"post_range_frac": 1.5}, "--post-range-frac"),
])
def test_bad_input(strips, strips_area, kw, match):
    res = analyze(strips, A, B, study_area=strips_area)
    with pytest.raises(InputError, match=match) as exc:
        simulate(res, **kw)
    assert "\n" not in str(exc.value)


def test_parse_range_fixed_and_bad():
    assert parse_range("2.5") == (2.5, 2.5)
    with pytest.raises(InputError):
        parse_range("a:b")


# --------------------------------------------------------------------------------------------
# the command


@pytest.fixture
def cli_files(tmp_path, strips):
    z, sa = tmp_path / "zones.gpkg", tmp_path / "areas.gpkg"
    strips.to_file(z)
    gpd.GeoDataFrame({"ADM1_EN": ["North", "South"]}, crs=UTM38,
                     geometry=[shapely.box(X0 - 20e3, Y0 + 60e3, X0 + 60e3, Y0 + 100e3),
                               shapely.box(X0 - 20e3, Y0, X0 + 60e3, Y0 + 60e3)]).to_file(sa)
    return ["--zones", str(z), "--side-a", "krg=peshmerga", "--side-b", "federal=isf",
            "--study-area", str(sa)]


def test_command_writes_the_contract_files(cli_files, tmp_path):
    import pandas as pd
    from click.testing import CliRunner

    from gapmap.cli import main

    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["uncertainty", *cli_files, "--draws", "40", "--edge-km",
                                    "4", "--reach-km", "6:10", "--by", "ADM1_EN", "--workers",
                                    "1", "--out", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "90% range" in res.output and "unguarded" in res.output
    table = pd.read_csv(out / "uncertainty.csv")
    assert list(table.columns) == ["field", "p05", "p50", "p95", "mean", "base"]
    assert {"seam_length_km", "unguarded_length_km", "gap_area_km2"} <= set(table["field"])
    assert (table["p05"] <= table["p95"]).all()
    layer = gpd.read_file(out / "unguarded_probability.gpkg", layer="unguarded_probability")
    assert layer["p_unguarded"].between(0, 1).all() and len(layer) > 300
    by = pd.read_csv(out / "by_area.csv")
    assert list(by["ADM1_EN"]) == ["North", "South"]
    for name in ("seam_length_km", "unguarded_length_km", "longest_corridor_km", "gap_area_km2"):
        assert (by[f"{name}_p05"] <= by[f"{name}_p95"]).all()
    cor = pd.read_csv(out / "corridors_uncertainty.csv")
    assert cor["corridor_id"].tolist() == ["C1"]  # the strips' one corridor, by its id
    assert cor["p_open"].between(0, 1).all()


@pytest.mark.parametrize("extra, match", [
    (["--draws", "1"], "--draws"),
    (["--draws", "200000"], "--force"),
    (["--edge-km", "-2"], "--edge-km"),
    (["--reach-km", "5:1"], "LOW > HIGH"),
    (["--by", "district"], "ADM1_EN"),
    (["--workers", "0"], "--workers"),
])
def test_command_bad_input_exit_2_nothing_written(cli_files, tmp_path, extra, match):
    from click.testing import CliRunner

    from gapmap.cli import main

    out = tmp_path / "never"
    res = CliRunner().invoke(main, ["uncertainty", *cli_files, *extra, "--out", str(out)])
    assert res.exit_code == 2
    assert match in res.output and len(res.output.strip().splitlines()) == 1
    assert not out.exists()


def test_command_with_line_of_sight(cli_files, tmp_path):
    """`gapmap uncertainty --visibility --dem`: the wall scene's figures from the command line
    (the base is the metrics --visibility figure, 94 km; beyond the wall always unguarded)."""
    import pandas as pd
    from click.testing import CliRunner

    from gapmap.cli import main

    posts = tmp_path / "posts.gpkg"
    gpd.GeoDataFrame({"force": ["isf"], "range_km": [5.0], "height_m": [10.0]},
                     **_POST).to_file(posts)
    out = tmp_path / "vis"
    res = CliRunner().invoke(main, [
        "uncertainty", *cli_files, "--posts", str(posts), "--dem",
        str(_wall_dem(tmp_path / "wall.tif")), "--visibility", "--draws", "50",
        "--post-range-frac", "0.5", "--workers", "1", "--out", str(out)],
        catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "line of sight" in res.output
    table = pd.read_csv(out / "uncertainty.csv").set_index("field")
    k = table.loc["seam_length_km", "base"] / 100.0
    assert table.loc["unguarded_length_km", "base"] == pytest.approx(94 * k, abs=0.3)
    assert 91.5 * k <= table.loc["unguarded_length_km", "p05"] <= 93.5 * k
    layer = gpd.read_file(out / "unguarded_probability.gpkg")
    y = (layer.geometry.y.to_numpy() - Y0) / 1000.0
    assert (layer["p_unguarded"].to_numpy()[(y > 51.2) & (y < 58)] == 1).all()


def test_metrics_summary_shows_the_ranges_of_an_uncertainty_run(cli_files, tmp_path):
    """`gapmap metrics --uncertainty DIR` prints each figure's 90% range as uncertainty.csv
    holds it; another analysis (other reach) gets a note; a wrong folder stops first."""
    import pandas as pd
    from click.testing import CliRunner

    from gapmap.cli import main

    unc = tmp_path / "unc"
    res = CliRunner().invoke(main, ["uncertainty", *cli_files, "--draws", "40", "--edge-km", "4",
                                    "--reach-km", "8", "--workers", "1", "--out", str(unc)],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    t = pd.read_csv(unc / "uncertainty.csv").set_index("field")
    out = tmp_path / "m"
    res = CliRunner().invoke(main, ["metrics", *cli_files, "--reach-km", "8", "--uncertainty",
                                    str(unc), "--out", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "90% ranges over 40 perturbed copies" in res.output
    lo, hi = t.loc["unguarded_length_km", ["p05", "p95"]]
    assert f"unguarded              {lo:,.1f}–{hi:,.1f} km" in res.output
    assert "other inputs" not in res.output
    other = CliRunner().invoke(main, ["metrics", *cli_files, "--reach-km", "9.5",
                                      "--uncertainty", str(unc), "--out", str(tmp_path / "o")],
                               catch_exceptions=False)
    assert other.exit_code == 0 and "other inputs" in other.output
    bad = CliRunner().invoke(main, ["metrics", *cli_files, "--uncertainty", str(tmp_path / "x"),
                                    "--out", str(tmp_path / "never")])
    assert bad.exit_code == 2 and len(bad.output.strip().splitlines()) == 1
    assert not (tmp_path / "never").exists()


def test_report_corridor_table_shows_each_corridors_range(tmp_path):
    """The report's corridor table gets each corridor's length range and share of copies open
    (from the two-pairs scene: the southern pair open in about 7/8 of the copies)."""
    from gapmap.report import render_report
    from gapmap.uncertainty import corridor_ranges

    zones, area = _two_pairs(16.4)
    res = analyze(zones, A, B, study_area=area, settings=Settings(reach_km=8))
    sim = simulate(res, draws=100, edge_km=4.0, seed=11, grid_points=2000)
    page = render_report(res, uncertainty=sim, dpi=50)
    assert "90% range (km)" in page and "Open in copies" in page
    texts = corridor_ranges(sim)
    assert set(texts) == set(res.corridors["corridor_id"])
    for cid, (rng, share) in texts.items():
        assert f"<td>{rng}</td><td>{share}</td>" in page.replace("\n", "")
        row = sim.corridors.set_index("corridor_id").loc[cid]
        assert share == f"{100 * row['p_open']:.0f}%"
    assert "Open in copies" not in render_report(res, dpi=50)


def test_command_refuses_overlapping_areas_for_by(tmp_path, strips):
    """--by over a study area whose polygons overlap (a sample would count twice): exit 2,
    one line naming the two areas, nothing written."""
    from click.testing import CliRunner

    from gapmap.cli import main

    z, sa = tmp_path / "zones.gpkg", tmp_path / "areas.gpkg"
    strips.to_file(z)
    gpd.GeoDataFrame({"ADM1_EN": ["North", "South"]}, crs=UTM38,
                     geometry=[shapely.box(X0 - 20e3, Y0 + 40e3, X0 + 60e3, Y0 + 100e3),
                               shapely.box(X0 - 20e3, Y0, X0 + 60e3, Y0 + 60e3)]).to_file(sa)
    out = tmp_path / "never"
    res = CliRunner().invoke(main, ["uncertainty", "--zones", str(z), "--side-a",
                                    "krg=peshmerga", "--side-b", "federal=isf", "--study-area",
                                    str(sa), "--by", "ADM1_EN", "--out", str(out)])
    assert res.exit_code == 2
    assert "overlap" in res.output and "North" in res.output
    assert len(res.output.strip().splitlines()) == 1 and not out.exists()
