"""Placement of new posts: optima known by hand, brute force and shapely as references."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from affine import Affine
from click.testing import CliRunner

from gapmap import InputError, Settings, analyze, parse_side
from gapmap.cli import main
from gapmap.crs import geodesic_length_km
from gapmap.placement import (candidate_grid, format_placement, max_coverage, place_posts,
                              write_placement)

from .conftest import UTM38, X0, Y0

A = parse_side("krg=peshmerga")
B = parse_side("federal=isf,pmf")
SEAM_X = X0 + 20e3  # the strips' seam: x = X0 + 20 km, from Y0 to Y0 + 100 km


def seam_km(y0_km: float, y1_km: float) -> float:
    """Geodesic length of the seam between two distances along it (the reference)."""
    line = shapely.LineString([(SEAM_X, Y0 + y0_km * 1e3), (SEAM_X, Y0 + y1_km * 1e3)])
    return float(geodesic_length_km([line], UTM38)[0])


def sites(xy_km, crs=UTM38, **cols) -> gpd.GeoDataFrame:
    """Candidate sites at (x, y) km from (X0, Y0)."""
    pts = [shapely.Point(X0 + x * 1e3, Y0 + y * 1e3) for x, y in xy_km]
    return gpd.GeoDataFrame(cols, geometry=pts, crs=crs)


@pytest.fixture(scope="module")
def strips_res():
    """The conftest ``strips`` scene analysed once for the module (results are frozen)."""
    zones = gpd.GeoDataFrame(
        {"force": ["peshmerga", "isf"]},
        geometry=[shapely.box(X0, Y0, X0 + 10e3, Y0 + 100e3),
                  shapely.box(X0 + 30e3, Y0, X0 + 40e3, Y0 + 100e3)], crs=UTM38)
    area = gpd.GeoDataFrame(geometry=[shapely.box(X0 - 20e3, Y0, X0 + 60e3, Y0 + 100e3)],
                            crs=UTM38)
    return analyze(zones, A, B, study_area=area)


# --------------------------------------------------------------------------------------------
# the core problem on raw lines


def classic():
    """Two ends covering 5 km each, a middle site covering 6 km: greedy 8, optimum 10."""
    line = [shapely.LineString([(0, 0), (10_000, 0)])]
    pts = [shapely.Point(2_500, 0), shapely.Point(5_000, 0), shapely.Point(7_500, 0)]
    return line, pts, np.array([2.5, 3.0, 2.5])


def test_greedy_is_not_optimal_but_the_integer_program_is():
    line, pts, r = classic()
    greedy = max_coverage(line, pts, 2, range_km=r, exact="never")
    assert greedy.method == "lazy-greedy" and not greedy.optimal
    assert greedy.chosen[0] == 1  # the middle site first: 6 km
    assert greedy.covered_km == pytest.approx(8.0, abs=1e-9)
    assert greedy.gain_km.tolist() == pytest.approx([6.0, 2.0], abs=1e-9)
    # The online bound is the true optimum here: 6 + (2 + 2).
    assert greedy.bound == pytest.approx(10.0, abs=1e-9)
    assert greedy.guarantee == "≥ (1 − 1/e) of optimum; within 20.0% of the bound found"
    assert greedy.covered_km >= (1 - 1 / math.e) * 10.0

    for exact in ("auto", "always"):
        opt = max_coverage(line, pts, 2, range_km=r, exact=exact)
        assert opt.method == "milp" and opt.optimal and opt.guarantee == "proven optimal"
        assert sorted(opt.chosen.tolist()) == [0, 2]
        assert opt.covered_km == pytest.approx(10.0, abs=1e-9)
        assert opt.bound == pytest.approx(10.0, abs=1e-9)


def test_auto_falls_back_to_greedy_when_too_large_and_says_so():
    line, pts, r = classic()
    cov = max_coverage(line, pts, 2, range_km=r, exact="auto", max_nonzeros=1)
    assert cov.method == "lazy-greedy" and not cov.optimal
    assert any("integer program skipped" in n for n in cov.notes)


def _shapely_covered_m(lines, pts, radii, chosen) -> float:
    if len(chosen) == 0:
        return 0.0
    discs = shapely.union_all([shapely.buffer(pts[j], radii[j] * 1000, quad_segs=1024)
                               for j in chosen])
    return float(shapely.length(shapely.intersection(shapely.union_all(lines), discs)))


def random_instance(seed: int, n_cand: int):
    rng = np.random.default_rng(seed)
    # A zig-zag line and a crossing second line, 20 km × 10 km box.
    xs = np.linspace(0, 20_000, 9)
    ys = rng.uniform(0, 10_000, 9)
    lines = [shapely.LineString(np.column_stack([xs, ys])),
             shapely.LineString([(3_000, 0), (15_000, 10_000)])]
    pts = [shapely.Point(x, y) for x, y in rng.uniform([0, 0], [20_000, 10_000], (n_cand, 2))]
    radii = rng.uniform(1.0, 4.0, n_cand)
    return lines, pts, radii


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_integer_program_matches_brute_force_with_shapely_lengths(seed):
    lines, pts, radii = random_instance(seed, 9)
    k = 3
    best = max(_shapely_covered_m(lines, pts, radii, c)
               for c in itertools.combinations(range(len(pts)), k)) / 1000
    cov = max_coverage(lines, pts, k, range_km=radii, exact="always")
    assert cov.optimal  # by the integer program, or by the greedy reaching its own bound
    # Independent reference: shapely's overlay of 4096-gon discs (error < 1 m here).
    assert cov.covered_km == pytest.approx(best, abs=2e-3)
    assert cov.covered_km == pytest.approx(
        _shapely_covered_m(lines, pts, radii, cov.chosen) / 1000, abs=2e-3)
    assert cov.total_km == pytest.approx(sum(ln.length for ln in lines) / 1000, rel=1e-12)
    # Marginal gains add up and come in non-increasing order.
    assert cov.gain_km.sum() == pytest.approx(cov.covered_km, rel=1e-12)
    assert np.all(np.diff(cov.gain_km) <= 1e-9)


def test_lazy_greedy_equals_plain_greedy_with_shapely():
    lines, pts, radii = random_instance(11, 25)
    k = 5
    cov = max_coverage(lines, pts, k, range_km=radii, exact="never")
    chosen: list[int] = []
    for _ in range(k):  # plain greedy, every gain recomputed by shapely
        base = _shapely_covered_m(lines, pts, radii, chosen)
        gains = [(_shapely_covered_m(lines, pts, radii, chosen + [j]) - base, j)
                 for j in range(len(pts)) if j not in chosen]
        chosen.append(max(gains)[1])
    assert cov.chosen.tolist() == chosen
    assert cov.bound >= cov.covered_km
    # The greedy guarantee against the proven optimum.
    opt = max_coverage(lines, pts, k, range_km=radii, exact="always")
    assert opt.optimal and opt.covered_km >= cov.covered_km - 1e-9
    assert cov.covered_km >= (1 - 1 / math.e) * opt.covered_km
    assert cov.bound >= opt.covered_km - 1e-6


def test_time_limit_keeps_a_solution_and_says_so():
    lines, pts, radii = random_instance(5, 400)
    cov = max_coverage(lines, pts, 6, range_km=radii, exact="always", time_limit_s=1e-6)
    greedy = max_coverage(lines, pts, 6, range_km=radii, exact="never")
    assert len(cov.chosen) == 6
    assert cov.covered_km >= greedy.covered_km - 1e-9
    # 400 candidates: far beyond what HiGHS proves optimal in a microsecond (or in presolve).
    assert not cov.optimal
    assert any("without proving" in n for n in cov.notes)
    assert "1 − 1/e" in cov.guarantee and cov.guarantee != "proven optimal"


def test_lengths_are_geodesic_even_in_a_distorting_projection():
    # Web Mercator stretches lengths by ~1/cos(36°) ≈ 1.24 here: km must still be geodesic.
    from pyproj import Geod, Transformer

    to_merc = Transformer.from_crs(4326, 3857, always_xy=True)
    (x0, x1), (y0, y1) = to_merc.transform([44.0, 44.6], [36.0, 36.3])
    line = shapely.LineString([(x0, y0), (x1, y1)])
    mid = shapely.Point((x0 + x1) / 2, (y0 + y1) / 2)
    cov = max_coverage(gpd.GeoSeries([line], crs=3857), [mid], 1, range_km=1e4)
    ref = Geod(ellps="WGS84").inv(44.0, 36.0, 44.6, 36.3)[2] / 1000
    assert cov.total_km == pytest.approx(ref, rel=1e-3)
    assert cov.covered_km == pytest.approx(ref, rel=1e-3)  # the whole line is in range


def test_sampled_universe_counts_each_piece_once():
    line = [shapely.LineString([(0, 0), (10_000, 0)])]
    cov = max_coverage(line, [shapely.Point(5_000, 0)], 1, range_km=2.0, sample_m=250)
    # Pieces of 250 m whose midpoints lie within 2 km: midpoints 3125 … 6875 → 16 pieces.
    assert cov.covered_km == pytest.approx(4.0, abs=1e-9)
    assert cov.total_km == pytest.approx(10.0, abs=1e-9)


# --------------------------------------------------------------------------------------------
# on an analysis


def test_grid_on_strips_tiles_the_seam(strips_res):
    res = strips_res
    grid = candidate_grid(res.corridors, 2.0)
    ys = np.sort(grid.geometry.y.to_numpy() - Y0) / 1e3
    assert ys == pytest.approx(np.arange(1, 100, 2), abs=1e-6)
    assert np.allclose(grid.geometry.x, SEAM_X, atol=0.5)

    pl = place_posts(res, 1, range_km=5)
    assert pl.optimal and len(pl.sites) == 1
    assert pl.sites["gain_km"].iloc[0] == pytest.approx(seam_km(0, 10), rel=1e-3)
    assert pl.unguarded_before_km == pytest.approx(res.summary["unguarded_length_km"], rel=1e-12)
    assert pl.stats["universe_km"] == pytest.approx(res.summary["unguarded_length_km"], rel=1e-6)

    # Ten 10 km discs tile the 100 km seam exactly; more sites would add nothing.
    pl = place_posts(res, 12, range_km=5)
    assert len(pl.sites) == 10 and pl.k == 12
    assert pl.unguarded_after_km == pytest.approx(0.0, abs=1e-6)
    assert pl.optimal and pl.guarantee == "proven optimal"
    assert any("only 10 site(s) add coverage" in n for n in pl.notes)
    assert sorted(pl.sites["rank"]) == list(range(1, 11))
    assert pl.closed["length_km"].sum() == pytest.approx(pl.closed_km, rel=1e-9)


def test_minor_stretches_count_and_get_candidates(strips, strips_area):
    # With min_length_km above the seam's length, the whole seam is one minor stretch.
    res = analyze(strips, A, B, study_area=strips_area, settings=Settings(min_length_km=200))
    assert len(res.corridors) == 0 and len(res.minor) == 1
    pl = place_posts(res, 2, range_km=5)
    assert pl.closed_km == pytest.approx(seam_km(0, 20), rel=1e-3)
    assert pl.unguarded_before_km == pytest.approx(seam_km(0, 100), rel=1e-3)
    # Nothing unguarded: nothing placed, and said so.
    full = analyze(strips, A, B, study_area=strips_area, settings=Settings(reach_km=11))
    pl = place_posts(full, 2)
    assert len(pl.sites) == 0 and pl.unguarded_after_km == 0
    assert pl.notes == ("no unguarded seam: nothing to close",)


def test_adding_a_site_never_lengthens_unguarded_ground(strips, strips_area):
    posts = gpd.GeoDataFrame({"range_km": [5.0, 3.0]},
                             geometry=[shapely.Point(SEAM_X, Y0 + 50e3),
                                       shapely.Point(SEAM_X + 2e3, Y0 + 20e3)], crs=UTM38)
    res = analyze(strips, A, B, posts=posts, study_area=strips_area)
    rng = np.random.default_rng(3)
    cand = sites(np.column_stack([rng.uniform(14, 26, 30), rng.uniform(0, 100, 30)]),
                 range_km=rng.uniform(2, 6, 30))
    after = []
    for k in range(1, 7):
        pl = place_posts(res, k, candidates=cand, exact="always")
        assert pl.optimal
        assert pl.bound_km >= pl.closed_km - 1e-9
        after.append(pl.unguarded_after_km)
    assert np.all(np.diff(after) <= 1e-9)
    assert after[0] < res.summary["unguarded_length_km"]


def test_candidates_with_their_own_range_and_name(strips_res):
    # Given in lon/lat: reprojected; the 7 km site covers 14 km, the 5 km one 10 km.
    cand = sites([(20, 30), (20, 70)], name=["small", "large"], range_km=[5.0, 7.0])
    cand = cand.to_crs(4326)
    pl = place_posts(strips_res, 1, candidates=cand)
    assert pl.sites["name"].tolist() == ["large"]
    assert pl.sites["range_km"].iloc[0] == 7.0
    assert pl.sites["gain_km"].iloc[0] == pytest.approx(seam_km(63, 77), rel=1e-3)
    pl2 = place_posts(strips_res, 2, candidates=cand)
    assert pl2.sites["name"].tolist() == ["large", "small"]
    assert pl2.closed_km == pytest.approx(seam_km(63, 77) + seam_km(25, 35), rel=1e-3)


def test_incident_weighting_changes_the_choice(strips, strips_area):
    # A post at 50 km splits the seam: south corridor [0, 45], north [55, 100].
    posts = gpd.GeoDataFrame({"range_km": [5.0]}, geometry=[shapely.Point(SEAM_X, Y0 + 50e3)],
                             crs=UTM38)
    res = analyze(strips, A, B, posts=posts, study_area=strips_area)
    assert len(res.corridors) == 2
    cand = sites([(20, 20), (20, 80)], name=["south", "north"], range_km=[6.0, 4.0])
    by_length = place_posts(res, 1, candidates=cand)
    assert by_length.sites["name"].tolist() == ["south"]  # 12 km against 8 km

    ys = res.corridors.geometry.centroid.y.to_numpy()
    rate = np.where(ys > Y0 + 50e3, 10.0, 1.0)  # incidents per 100 km: north is ten times worse
    hot = dataclasses.replace(res, corridors=res.corridors.assign(incidents_per_100km=rate))
    by_inc = place_posts(hot, 1, candidates=cand, weight="incidents")
    assert by_inc.sites["name"].tolist() == ["north"]
    assert by_inc.sites["gain_incidents"].iloc[0] == pytest.approx(seam_km(76, 84) * 0.1,
                                                                   rel=1e-3)
    assert by_inc.bound_km is None and by_inc.to_dict()["objective"]["unit"] == "incidents"
    # Still reported in km of unguarded seam.
    assert by_inc.closed_km == pytest.approx(seam_km(76, 84), rel=1e-3)

    # From incident points: five on the north corridor, none on the south one.
    inc = gpd.GeoDataFrame({"date": pd.to_datetime(["2020-01-01"] * 5), "fatalities": [1] * 5},
                           geometry=[shapely.Point(SEAM_X + 1e3, Y0 + y * 1e3)
                                     for y in (70, 75, 80, 85, 90)], crs=UTM38)
    from_points = place_posts(res, 1, candidates=cand, weight="incidents", incidents=inc)
    assert from_points.sites["name"].tolist() == ["north"]
    assert from_points.value == pytest.approx(seam_km(76, 84) * 5 / seam_km(55, 100), rel=1e-3)

    cold = dataclasses.replace(res, corridors=res.corridors.assign(incidents_per_100km=0.0))
    none = place_posts(cold, 2, candidates=cand, weight="incidents")
    assert len(none.sites) == 0 and "nothing to gain" in none.notes[0]

    with pytest.raises(InputError, match="incidents"):
        place_posts(res, 1, candidates=cand, weight="incidents")


def _flat_dem(heights=None):
    arr = np.zeros((1100, 500), "float32") if heights is None else heights
    return arr, Affine(100, 0, X0 - 5e3, 0, -100, Y0 + 105e3), "EPSG:32638"


def test_visibility_on_flat_ground_matches_range_and_a_wall_blocks(strips_res):
    res = strips_res
    spacing_km = res.settings.spacing_m / 1000
    cand = sites([(20, 49), (20, 56)], name=["south", "north"], range_km=[6.0, 5.0])
    plain = place_posts(res, 1, candidates=cand)
    assert plain.sites["name"].tolist() == ["south"]  # 12 km against 10 km
    flat = place_posts(res, 1, candidates=cand, dem=_flat_dem(), visibility=True)
    assert flat.sites["name"].tolist() == ["south"] and flat.visibility
    # Sampled every spacing: each end errs by at most half a spacing.
    assert flat.closed_km == pytest.approx(plain.closed_km, abs=spacing_km + 1e-6)

    # A 500 m wall across the seam at 50 km hides most of the south site's stretch.
    arr = np.zeros((1100, 500), "float32")
    row = int((105e3 - 50e3) / 100)
    arr[row - 1:row + 1, :] = 500.0
    walled = place_posts(res, 1, candidates=cand, dem=_flat_dem(arr), visibility=True)
    assert walled.sites["name"].tolist() == ["north"]
    assert walled.closed_km == pytest.approx(seam_km(51, 61), abs=spacing_km + 1e-6)

    # Fifty overlapping sites on flat ground: each sees exactly what is in its range, so the
    # line-of-sight pairs (found in batches of non-overlapping sites) equal the range pairs.
    grid = candidate_grid(res.corridors, 2.0).assign(range_km=5.0)
    seen = place_posts(res, 3, dem=_flat_dem(), visibility=True, exact="never")
    ref = max_coverage(res.corridors.geometry, grid, 3, sample_m=res.settings.spacing_m,
                       exact="never")
    assert seen.stats["nonzeros"] == ref.stats["nonzeros"] > 0
    assert seen.closed_km == pytest.approx(ref.covered_km, rel=1e-12)

    with pytest.raises(InputError, match="DEM"):
        place_posts(dataclasses.replace(res, dem=None), 1, candidates=cand, visibility=True)


def test_bad_input(strips_res, tmp_path):
    with pytest.raises(InputError, match="--k"):
        place_posts(strips_res, 0)
    with pytest.raises(InputError, match="weight"):
        place_posts(strips_res, 1, weight="votes")
    with pytest.raises(InputError, match="spacing"):
        place_posts(strips_res, 1, candidate_spacing_km=0)
    bad = tmp_path / "lines.geojson"
    gpd.GeoDataFrame(geometry=[shapely.LineString([(44, 35), (44.1, 35)])],
                     crs=4326).to_file(bad)
    with pytest.raises(InputError, match="candidate sites"):
        place_posts(strips_res, 1, candidates=bad)
    nocrs = sites([(20, 20)])
    nocrs = nocrs.set_crs(None, allow_override=True)
    with pytest.raises(InputError, match="crs"):
        place_posts(strips_res, 1, candidates=nocrs)


# --------------------------------------------------------------------------------------------
# outputs


def test_write_placement_and_text(strips_res, tmp_path):
    pl = place_posts(strips_res, 3, range_km=5)
    paths = write_placement(pl, tmp_path / "out")
    assert sorted(paths) == ["closed.geojson", "k_curve.csv", "k_curve.png", "placement.json",
                             "sites.geojson"]
    curve = pd.read_csv(paths["k_curve.csv"])
    assert curve["k"].tolist() == [1, 2, 3]
    assert curve["closed_km"].to_numpy() == pytest.approx([seam_km(0, 10) * k for k in (1, 2, 3)],
                                                          rel=1e-3)
    assert paths["k_curve.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    s = gpd.read_file(paths["sites.geojson"])
    assert s.crs.to_epsg() == 4326
    assert {"rank", "name", "gain_km"} <= set(s.columns) and len(s) == 3
    doc = json.loads(paths["placement.json"].read_text())
    assert doc["unguarded_before_km"] == pytest.approx(pl.unguarded_before_km, abs=1e-3)
    assert doc["unguarded_after_km"] == pytest.approx(pl.unguarded_before_km - 3 * seam_km(0, 10),
                                                      rel=1e-3)
    assert doc["optimal"] is True and doc["guarantee"] == "proven optimal"
    assert doc["bound_km"] == pytest.approx(3 * seam_km(0, 10), rel=1e-3)
    assert not list((tmp_path / "out").glob(".gapmap-*"))  # no staging folder left
    text = format_placement(pl)
    assert "unguarded after" in text and "proven optimal" in text


def test_cli_place(strips, strips_area, tmp_path):
    zones = tmp_path / "zones.geojson"
    area = tmp_path / "area.geojson"
    strips.to_crs(4326).to_file(zones)
    strips_area.to_crs(4326).to_file(area)
    out = tmp_path / "place"
    r = CliRunner().invoke(main, ["place", "--k", "2", "--range-km", "5", "--zones", str(zones),
                                  "--side-a", "krg=peshmerga", "--side-b", "federal=isf,pmf",
                                  "--study-area", str(area), "--out", str(out)])
    assert r.exit_code == 0, r.output
    doc = json.loads((out / "placement.json").read_text())
    assert doc["sites_placed"] == 2 and doc["optimal"] is True
    assert doc["closed_km"] == pytest.approx(2 * seam_km(0, 10), rel=2e-3)
    assert gpd.read_file(out / "sites.geojson").crs.to_epsg() == 4326
    assert "closed" in r.output
    assert [row["k"] for row in doc["k_curve"]] == [1, 2]
    assert (out / "k_curve.csv").exists() and (out / "k_curve.png").exists()

    # User-given candidates from a file, with their own names and ranges.
    cand = tmp_path / "cand.geojson"
    sites([(20, 30), (20, 70)], name=["small", "large"], range_km=[5.0, 7.0]).to_crs(
        4326).to_file(cand)
    r = CliRunner().invoke(main, ["place", "--k", "1", "--candidates", str(cand),
                                  "--zones", str(zones), "--side-a", "krg=peshmerga",
                                  "--side-b", "federal=isf,pmf", "--study-area", str(area),
                                  "--out", str(out)])
    assert r.exit_code == 0, r.output
    doc = json.loads((out / "placement.json").read_text())
    assert [s["name"] for s in doc["sites"]] == ["large"] and doc["candidates"] == 2

    r = CliRunner().invoke(main, ["place", "--k", "0", "--zones", str(zones), "--out", str(out)])
    assert r.exit_code == 2
    r = CliRunner().invoke(main, ["place", "--help"])
    assert r.exit_code == 0 and "--candidate-spacing-km" in r.output


def test_candidate_spacing_of_10_cm_refused_with_the_estimate(strips_res, strips, strips_area,
                                                               tmp_path):
    with pytest.raises(InputError, match=r"candidate sites every 0\.1 m along 100 km of seam "
                                         r"would need about [\d,]+ GiB"):
        place_posts(strips_res, 1, candidate_spacing_km=1e-4)
    zones, area = tmp_path / "zones.geojson", tmp_path / "area.geojson"
    strips.to_file(zones)
    strips_area.to_file(area)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["place", "--zones", str(zones), "--side-a", "krg=peshmerga",
                                    "--side-b", "federal=isf", "--study-area", str(area),
                                    "--k", "1", "--candidate-spacing-km", "0.0001",
                                    "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert len(res.stderr.strip().splitlines()) == 1 and "GiB" in res.stderr
    assert not out.exists()


def test_visibility_uses_the_dem_it_is_given(strips_res, monkeypatch):
    import rasterio

    import gapmap.viewshed as vs
    from gapmap.terrain import as_dem

    dem = as_dem(_flat_dem())
    given = []
    real = vs.visible_from_posts
    monkeypatch.setattr(vs, "visible_from_posts",
                        lambda d, *a, **k: given.append(d) or real(d, *a, **k))
    monkeypatch.setattr(rasterio, "open", lambda *a, **k: pytest.fail("DEM file re-read"))
    cand = sites([(20, 49), (20, 56)], name=["south", "north"], range_km=[6.0, 5.0])
    pl = place_posts(strips_res, 1, candidates=cand, dem=dem, visibility=True)
    assert pl.sites["name"].tolist() == ["south"]
    assert given and all(d is dem for d in given)


# --------------------------------------------------------------------------------------------
# the K curve and named sites


def test_k_curve_re_solves_each_k_exactly():
    """The best two sites do not contain the best one: A covers 2–8 km (6 km alone), B and C
    cover 0–5 and 5–10 (10 km together). Greedy takes A then B: 8 km."""
    line = [shapely.LineString([(0, 0), (10_000, 0)])]
    cand = [shapely.Point(5_000, 0), shapely.Point(2_500, 0), shapely.Point(7_500, 0)]
    radius = np.array([3.0, 2.5, 2.5])
    cov = max_coverage(line, cand, 2, range_km=radius, curve=True)
    c = cov.curve
    assert c["k"].tolist() == [1, 2]
    assert c["closed_km"].to_numpy() == pytest.approx([6.0, 10.0])
    assert c["greedy_km"].to_numpy() == pytest.approx([6.0, 8.0])
    assert c["optimal"].all() and c["method"].iloc[1] == "milp"
    greedy = max_coverage(line, cand, 2, range_km=radius, curve=True, exact="never").curve
    assert greedy["closed_km"].to_numpy() == pytest.approx([6.0, 8.0])
    assert greedy["method"].tolist() == ["lazy-greedy", "lazy-greedy"]
    assert not greedy["optimal"].iloc[1]  # its bound (12 km) does not prove 8 km optimal
    assert (greedy["bound"] >= greedy["value"]).all()


def test_k_curve_is_monotone_and_matches_separate_solves():
    rng = np.random.default_rng(5)
    line = [shapely.LineString([(0, 0), (20_000, 0), (20_000, 15_000)])]
    cand = [shapely.Point(x, y) for x, y in rng.uniform(0, 20_000, (25, 2))]
    radius = rng.uniform(1.0, 6.0, 25)
    cov = max_coverage(line, cand, 6, range_km=radius, curve=True)
    km = cov.curve["closed_km"].to_numpy()
    assert np.all(np.diff(km) >= -1e-9)
    assert km[-1] == pytest.approx(cov.covered_km)
    for k in (1, 3, 5):
        alone = max_coverage(line, cand, k, range_km=radius)
        assert alone.optimal and km[k - 1] == pytest.approx(alone.covered_km, abs=1e-6)
    # the best K by brute force, for K = 2
    best2 = 0.0
    for a, b in itertools.combinations(range(25), 2):
        one = max_coverage(line, [cand[a], cand[b]], 2, range_km=radius[[a, b]])
        best2 = max(best2, one.covered_km)
    assert km[1] == pytest.approx(best2, abs=1e-6)


def test_sites_are_named_after_the_nearest_place(strips_res):
    from pyproj import Geod, Transformer

    towns = gpd.GeoDataFrame({"name": ["Daquq", "Tuz"]}, crs=UTM38,
                             geometry=[shapely.Point(X0 + 25e3, Y0 + 20e3),
                                       shapely.Point(X0 + 5e3, Y0 + 90e3)])
    pl = place_posts(strips_res, 2, range_km=5, places=towns)
    geod = Geod(ellps="WGS84")
    to_ll = Transformer.from_crs(UTM38, 4326, always_xy=True)
    t_ll = [to_ll.transform(p.x, p.y) for p in towns.geometry]
    for site in pl.sites.itertuples():
        lon, lat = to_ll.transform(site.geometry.x, site.geometry.y)
        inv = [geod.inv(tl[0], tl[1], lon, lat) for tl in t_ll]
        i = int(np.argmin([d for _, _, d in inv]))
        az, _, d = inv[i]
        sector = ["N", "NE", "E", "SE", "S", "SW", "W", "NW"][int(((az % 360) + 22.5) // 45) % 8]
        want = f"near {towns['name'].iloc[i]}, {round(d / 1000)} km {sector}"
        assert site.location == want and site.name == want
    # user candidates keep their own names and get a location beside them
    own = place_posts(strips_res, 1, candidates=sites([(20, 30)], name=["Hill 402"]),
                      places=towns)
    assert own.sites["name"].tolist() == ["Hill 402"]
    assert own.sites["location"].iloc[0].startswith("near Daquq, ")
    assert place_posts(strips_res, 1, range_km=5, k_curve=False).k_curve is None
