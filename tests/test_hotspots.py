"""Kernel density, hexagon grid, Gi* hot spots, monthly counts and `gapmap hotspots`."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from click.testing import CliRunner

from gapmap.cli import main
from scipy import stats

from gapmap.errors import DatePrecisionWarning, InputError, ResultWarning
from gapmap.hotspots import (gi_star_hexes, gi_star_z, hex_grid, hex_neighbours,
                             kernel_density, monthly_counts, plot_monthly, write_hotspots)
from gapmap.incidents import period_mask, read_incidents

from .conftest import UTM38, X0, Y0


def points(xy, crs=UTM38, **cols):
    return gpd.GeoDataFrame(cols, geometry=shapely.points(np.asarray(xy, float)), crs=crs)


# --------------------------------------------------------------------------------------------
# kernel density


def test_kernel_density_matches_direct_gaussian_sum():
    cell = 500.0
    rng = np.random.default_rng(1)
    # Points at cell centres, so the grid answer is exact up to the kernel's discretisation.
    ij = rng.integers(20, 60, (25, 2))
    xy = np.column_stack([X0 + (ij[:, 0] + 0.5) * cell, Y0 + 80 * cell - (ij[:, 1] + 0.5) * cell])
    dens, tr = kernel_density(points(xy), bandwidth_km=3.0, cell_m=cell,
                              bounds=(X0, Y0, X0 + 80 * cell, Y0 + 80 * cell), crs=UTM38)
    assert dens.shape == (80, 80) and dens.dtype == np.float32
    assert (tr.a, tr.e, tr.c, tr.f) == (cell, -cell, X0, Y0 + 80 * cell)
    cols, rows = np.meshgrid(np.arange(80), np.arange(80))
    cx, cy = rasterio.transform.xy(tr, rows.ravel(), cols.ravel())
    centres = np.column_stack([cx, cy])
    s = 3000.0
    d2 = ((centres[:, None, :] - xy[None, :, :]) ** 2).sum(-1)
    ref = (np.exp(-d2 / (2 * s * s)) / (2 * np.pi * s * s)).sum(1) * 1e6  # per km²
    # Equal up to the kernel's truncation at 4σ (exp(−8) ≈ 3e-4 of the peak).
    assert dens.ravel() == pytest.approx(ref, rel=2e-3, abs=4e-4 * ref.max())
    assert dens.max() == pytest.approx(ref.max(), rel=1e-3)


def test_kernel_density_integrates_to_count_and_sees_past_the_edge():
    xy = [[X0 + 10e3, Y0 + 10e3], [X0 + 12e3, Y0 + 11e3]]
    bounds = (X0 - 20e3, Y0 - 20e3, X0 + 40e3, Y0 + 40e3)
    dens, _ = kernel_density(points(xy), bandwidth_km=2, cell_m=250, bounds=bounds, crs=UTM38)
    assert dens.sum() * 0.25 ** 2 == pytest.approx(2.0, rel=1e-4)
    # A point just outside the grid still raises the density at the edge.
    edge, _ = kernel_density(points([[X0 + 40.5e3, Y0 + 10e3]]), bandwidth_km=2, cell_m=250,
                             bounds=bounds, crs=UTM38)
    assert edge[:, -1].max() > 0.5 * edge.max() > 0
    with pytest.raises(InputError, match="bandwidth"):
        kernel_density(points(xy), bandwidth_km=0, cell_m=250, bounds=bounds, crs=UTM38)
    with pytest.raises(InputError, match="too large"):
        kernel_density(points(xy), bandwidth_km=2, cell_m=1, bounds=bounds, crs=UTM38)


def test_kernel_density_leaves_out_coarse_by_default():
    g = points([[X0, Y0], [X0 + 5e3, Y0]], coarse=[False, True])
    b = (X0 - 30e3, Y0 - 30e3, X0 + 30e3, Y0 + 30e3)
    one, _ = kernel_density(g, bandwidth_km=2, cell_m=500, bounds=b, crs=UTM38)
    two, _ = kernel_density(g, bandwidth_km=2, cell_m=500, bounds=b, crs=UTM38,
                            include_coarse=True)
    assert one.sum() * 0.25 == pytest.approx(1.0, rel=1e-3)
    assert two.sum() * 0.25 == pytest.approx(2.0, rel=1e-3)


# --------------------------------------------------------------------------------------------
# hexagons and Gi*


def test_hex_grid_geometry():
    area = shapely.box(X0, Y0, X0 + 50e3, Y0 + 40e3)
    hexes = hex_grid(area, 10.0).values
    assert shapely.area(hexes) == pytest.approx(np.sqrt(3) / 2 * 1e8)
    assert shapely.union_all(hexes).contains(area)
    assert shapely.intersects(hexes, area).all()
    c = shapely.get_coordinates(shapely.centroid(hexes))
    d = np.hypot(*(c[:, None, :] - c[None, :, :]).transpose(2, 0, 1))
    d[d == 0] = np.inf
    assert d.min(axis=1) == pytest.approx(np.full(len(c), 10e3))
    # Neighbours share an edge, none overlap.
    assert shapely.area(shapely.union_all(hexes)) == pytest.approx(shapely.area(hexes).sum())


def _hex_counts(counts_by_hex, hexes, rng):
    """Incidents placed at random inside each hexagon, counts given."""
    c = shapely.get_coordinates(shapely.centroid(hexes))
    reps = np.repeat(np.arange(len(hexes)), counts_by_hex)
    jitter = rng.uniform(-2500, 2500, (len(reps), 2))  # inside the 5 km inner circle
    return points(c[reps] + jitter)


def test_gi_star_finds_a_planted_cluster_and_not_noise():
    rng = np.random.default_rng(7)
    area = shapely.box(X0, Y0, X0 + 100e3, Y0 + 100e3)
    hexes = hex_grid(area, 10.0).values
    c = shapely.get_coordinates(shapely.centroid(hexes))
    centre = c[np.argmin(np.hypot(*(c - [X0 + 60e3, Y0 + 40e3]).T))]
    dist = np.hypot(*(c - centre).T)
    near = dist < 10.5e3  # a hexagon and its six neighbours
    assert near.sum() == 7
    base = rng.poisson(2.0, len(hexes))
    planted = base + np.where(near, 12, 0)
    res = gi_star_hexes(_hex_counts(planted, hexes, rng), area, hex_km=10, crs=UTM38,
                        permutations=999, seed=1)
    assert list(res["count"]) == list(planted)
    hot = res["hot"].to_numpy()
    assert hot[dist < 1e3].all()  # the centre: itself and all six neighbours high
    assert hot.sum() >= 3
    assert (dist[hot] < 21e3).all()  # nothing far from the cluster
    assert (res.loc[hot, "gi_z"] > 3).all()
    assert not res["cold"].any()
    # Uniform noise: no hot or cold spot survives FDR control.
    noise = gi_star_hexes(_hex_counts(base, hexes, rng), area, hex_km=10, crs=UTM38,
                          permutations=999, seed=1)
    assert not noise["hot"].any() and not noise["cold"].any()


def test_gi_star_no_false_cold_spots_in_empty_ground():
    rng = np.random.default_rng(2)
    area = shapely.box(X0, Y0, X0 + 150e3, Y0 + 150e3)
    hexes = hex_grid(area, 10.0).values
    counts = np.zeros(len(hexes), int)
    counts[rng.choice(len(hexes), 20, replace=False)] = rng.integers(1, 30, 20)
    res = gi_star_hexes(_hex_counts(counts, hexes, rng), area, hex_km=10, crs=UTM38, seed=0)
    assert not res["cold"].any()
    # Empty hexagons amid empty neighbours are not significant either way.
    c = shapely.get_coordinates(shapely.centroid(hexes))
    d = np.hypot(*(c[:, None, :] - c[None, :, :]).transpose(2, 0, 1))
    empty_around = np.array([(counts[row < 10.5e3] == 0).all() for row in d])
    assert empty_around.sum() > 100
    assert res.loc[empty_around, "p_value"].min() > 0.05


def test_gi_star_z_equals_esda_on_hexagons():
    """Same hexagons, same weights (libpysal's distance band): z equal to esda's Gi*."""
    import esda
    from libpysal.weights import DistanceBand

    rng = np.random.default_rng(4)
    hexes = hex_grid(shapely.box(X0, Y0, X0 + 120e3, Y0 + 90e3), 10.0).values
    centres = shapely.get_coordinates(shapely.centroid(hexes))
    y = rng.poisson(3.0, len(hexes)).astype(float)
    y[5] = 40.0
    w = DistanceBand.from_array(centres, threshold=10e3 * 1.01, binary=True,
                                silence_warnings=True)
    g = esda.G_Local(y, w, transform="B", star=True, permutations=0)
    ours = hex_neighbours(hexes)
    assert (ours != w.sparse.tocsr()).nnz == 0
    assert gi_star_z(y, ours) == pytest.approx(np.asarray(g.Zs), rel=1e-9, abs=1e-12)


def _sparse_field(rng, n_background=150):
    area = shapely.box(X0, Y0, X0 + 200e3, Y0 + 200e3)
    xy = rng.uniform([X0, Y0], [X0 + 200e3, Y0 + 200e3], (n_background, 2))
    return area, xy


@pytest.mark.parametrize("inference", ["normal", "permutation"])
def test_a_lone_peak_is_hot(inference):
    """1,200 events in one hexagon amid a sparse field (as Mosul on the sample): hot."""
    rng = np.random.default_rng(1)
    area, xy = _sparse_field(rng)
    peak = rng.uniform(-2e3, 2e3, (1200, 2)) + [X0 + 100e3, Y0 + 100e3]
    res = gi_star_hexes(points(np.vstack([xy, peak])), area, hex_km=10, crs=UTM38,
                        inference=inference, permutations=1999, seed=0)
    top = res["count"].idxmax()
    assert res.loc[top, "count"] >= 1200 and res.loc[top, "hot"]
    assert res.attrs["n_hot"] == int(res["hot"].sum()) >= 1
    assert res.attrs["inference"] == inference
    if inference == "normal":
        assert res.attrs["n_cold"] == 0
    else:
        assert res.loc[top, "p_sim"] == pytest.approx(2 / 2000)
        # Against random placement the rest of the field is emptier than chance: the cold
        # hexagons' neighbourhoods hold fewer events than the expected 7·N/n.
        w = hex_neighbours(res.geometry.values)
        y = res["count"].to_numpy()
        local = (w @ y + y)[res["cold"].to_numpy()]
        assert (local < 7 * y.sum() / len(y)).all()


def test_a_planted_cluster_in_a_sparse_field_is_hot():
    rng = np.random.default_rng(2)
    area, xy = _sparse_field(rng)
    cluster = rng.normal([X0 + 60e3, Y0 + 140e3], 6e3, (300, 2))
    res = gi_star_hexes(points(np.vstack([xy, cluster])), area, hex_km=10, crs=UTM38)
    c = shapely.get_coordinates(shapely.centroid(res.geometry.values))
    dist = np.hypot(*(c - [X0 + 60e3, Y0 + 140e3]).T)
    hot = res["hot"].to_numpy()
    assert hot[dist < 6e3].all() and hot.sum() >= 7
    assert (dist[hot] < 30e3).all() and not res["cold"].any()


def test_uniform_events_flag_about_alpha_at_most():
    flagged = []
    for seed in range(4):
        rng = np.random.default_rng(100 + seed)
        area, xy = _sparse_field(rng, n_background=3000)
        res = gi_star_hexes(points(xy), area, hex_km=10, crs=UTM38, alpha=0.05)
        flagged.append((res["hot"] | res["cold"]).mean())
    # FDR control under the null: most runs flag nothing, none flags more than alpha.
    assert max(flagged) <= 0.05 and np.mean(flagged) <= 0.01


def test_permutation_p_values_follow_the_binomial_tail():
    """Events placed at random on n equal hexagons: a neighbourhood of W hexagons holds
    Binomial(N, W/n) of them, so p_high = P(X ≥ observed) exactly, up to Monte Carlo."""
    rng = np.random.default_rng(3)
    area = shapely.box(X0, Y0, X0 + 80e3, Y0 + 80e3)
    xy = np.vstack([rng.uniform([X0, Y0], [X0 + 80e3, Y0 + 80e3], (200, 2)),
                    rng.normal([X0 + 40e3, Y0 + 40e3], 4e3, (25, 2))])
    res = gi_star_hexes(points(xy), area, hex_km=10, crs=UTM38, inference="permutation",
                        permutations=20000, seed=4, alpha=0.05)
    w = hex_neighbours(res.geometry.values)
    W = np.asarray(w.sum(axis=1)).ravel() + 1
    obs = (w @ res["count"].to_numpy()) + res["count"].to_numpy()
    N, n = int(res["count"].sum()), len(res)
    tail_hi = stats.binom.sf(obs - 1, N, W / n)
    tail_lo = stats.binom.cdf(obs, N, W / n)
    one = np.minimum(tail_hi, tail_lo)
    ref = np.minimum(2 * one, 1)
    # Within four Monte Carlo standard errors (doubled by the two-sided fold).
    tol = 8 * np.sqrt(one * (1 - one) / 20000) + 2 / 20001
    assert (np.abs(res["p_sim"].to_numpy() - ref) <= tol).all()
    assert (ref < 0.01).sum() >= 3  # the cluster is in the comparison


def test_permutations_are_bounded_with_the_figure():
    area = shapely.box(X0, Y0, X0 + 30e3, Y0 + 30e3)
    pts = points([[X0 + 1e3, Y0 + 1e3], [X0 + 15e3, Y0 + 15e3]])
    with pytest.raises(InputError, match="at most|between 1 and"):
        gi_star_hexes(pts, area, hex_km=10, crs=UTM38, inference="permutation",
                      permutations=1_000_000_000)
    many = points(np.repeat([[X0 + 1e3, Y0 + 1e3]], 20000, axis=0))
    with pytest.raises(InputError, match=r"would take about [\d,]+ min"):
        gi_star_hexes(many, shapely.box(X0, Y0, X0 + 300e3, Y0 + 300e3), hex_km=2, crs=UTM38,
                      inference="permutation", permutations=900_000)
    with pytest.raises(InputError, match="inference"):
        gi_star_hexes(pts, area, hex_km=10, crs=UTM38, inference="bootstrap")


def test_gi_star_degenerate_inputs():
    area = shapely.box(X0, Y0, X0 + 30e3, Y0 + 30e3)
    with pytest.warns(ResultWarning, match="no hot spots computed"):
        res = gi_star_hexes(points(np.empty((0, 2))), area, hex_km=10, crs=UTM38)
    assert (res["count"] == 0).all() and not res["hot"].any() and res["gi_z"].isna().all()
    with pytest.raises(InputError, match="alpha"):
        gi_star_hexes(points([[X0, Y0]]), area, hex_km=10, crs=UTM38, alpha=2)
    with pytest.raises(InputError, match="hex"):
        gi_star_hexes(points([[X0, Y0]]), area, hex_km=0, crs=UTM38)


# --------------------------------------------------------------------------------------------
# counts over time


def test_monthly_counts_by_corridor():
    t = pd.DataFrame({
        "date": pd.to_datetime(["2020-01-05", "2020-01-20", "2020-03-01", "2020-03-31",
                                "2020-04-02", None]),
        "corridor_id": ["C2", "C10", None, "C2", "C2", "C2"]})
    out = monthly_counts(t)
    assert out.index.name == "month"
    assert list(out.index.strftime("%Y-%m")) == ["2020-01", "2020-02", "2020-03", "2020-04"]
    assert list(out.columns) == ["C2", "C10", "not_in_corridor", "total"]
    assert out["C2"].tolist() == [1, 0, 1, 1]
    assert out["C10"].tolist() == [1, 0, 0, 0]
    assert out["not_in_corridor"].tolist() == [0, 0, 1, 0]
    assert out["total"].tolist() == [2, 0, 2, 1]
    plain = monthly_counts(t.drop(columns="corridor_id"))
    assert list(plain.columns) == ["total"] and plain["total"].sum() == 5


def test_monthly_counts_switch_to_years_for_yearly_dates(caplog):
    t = pd.DataFrame({"date": pd.to_datetime(["2015-07-01", "2015-07-01", "2017-07-01"]),
                      "date_precision": ["year"] * 3})
    with caplog.at_level("INFO", logger="gapmap.hotspots"):
        out = monthly_counts(t)
    assert out.index.name == "year" and out["total"].tolist() == [2, 0, 1]
    assert "only to the year" in caplog.text
    # Per month, a year-only event fits no month: all counted apart, with one warning.
    with pytest.warns(DatePrecisionWarning, match="3 incident"):
        forced = monthly_counts(t, freq="month")
    assert forced["total"].sum() == 0 and forced.attrs["incidents_undated"] == 3


def test_monthly_counts_agree_with_period_mask_and_the_study_area():
    rng = np.random.default_rng(8)
    dates = pd.Timestamp("2019-11-01") + pd.to_timedelta(rng.integers(0, 200, 300), "D")
    prec = rng.choice(["day", "day", "week", "month"], 300)
    inside = rng.random(300) < 0.8
    t = pd.DataFrame({"date": dates, "date_precision": prec, "in_study_area": inside})
    with pytest.warns(DatePrecisionWarning):
        out = monthly_counts(t)
    assert out.attrs["incidents_outside_study_area"] == int((~inside).sum())
    undated = 0
    for month in pd.date_range("2019-10-01", "2020-06-01", freq="MS"):
        ins, stra = period_mask(dates[inside], prec[inside], month, month + pd.offsets.MonthBegin())
        got = out["total"].get(month, 0)
        assert got == ins.sum()
        undated += stra.sum()
    # Each straddling event straddles two months here (weeks across a month's end).
    assert out.attrs["incidents_undated"] * 2 == undated
    assert out["total"].sum() + out.attrs["incidents_undated"] == inside.sum()


def test_plot_monthly_writes_png(tmp_path):
    t = pd.DataFrame({"date": pd.date_range("2020-01-01", periods=40, freq="9D"),
                      "corridor_id": [f"C{i % 11 + 1}" if i % 4 else None for i in range(40)]})
    path = plot_monthly(monthly_counts(t), tmp_path / "m.png", title="test")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


# --------------------------------------------------------------------------------------------
# outputs and command line


@pytest.fixture
def incident_csv(tmp_path):
    rng = np.random.default_rng(5)
    xy = np.vstack([rng.uniform([X0, Y0], [X0 + 80e3, Y0 + 80e3], (150, 2)),
                    rng.normal([X0 + 40e3, Y0 + 40e3], 3e3, (120, 2))])
    g = points(xy).to_crs(4326)
    dates = pd.Timestamp("2019-01-01") + pd.to_timedelta(rng.integers(0, 700, len(xy)), "D")
    df = pd.DataFrame({"id": np.arange(len(xy)), "latitude": g.geometry.y,
                       "longitude": g.geometry.x, "date": dates.strftime("%Y-%m-%d"),
                       "type": np.where(np.arange(len(xy)) % 2, "attack", "clash"),
                       "fatalities": rng.integers(0, 4, len(xy))})
    p = tmp_path / "inc.csv"
    df.to_csv(p, index=False)
    return p


def test_write_hotspots_outputs(incident_csv, tmp_path):
    out = tmp_path / "hot"
    files = write_hotspots(read_incidents(incident_csv), out, hex_km=8, bandwidth_km=4)
    assert sorted(files) == ["density.tif", "hotspots.geojson", "monthly.csv", "monthly.png"]
    with rasterio.open(out / "density.tif") as src:
        dens = src.read(1)
        assert src.crs.to_epsg() == 32638
        cell_km2 = abs(src.transform.a * src.transform.e) / 1e6
    assert dens.sum() * cell_km2 == pytest.approx(270, rel=0.02)
    hexes = gpd.read_file(out / "hotspots.geojson")
    assert {"count", "gi_z", "p_value", "hot", "cold"} <= set(hexes.columns)
    assert hexes["count"].sum() == 270
    cluster = hexes.geometry.contains(
        points([[X0 + 40e3, Y0 + 40e3]]).to_crs(4326).geometry.iloc[0])
    assert hexes.loc[cluster, "hot"].all()
    monthly = pd.read_csv(out / "monthly.csv")
    assert monthly.columns.tolist() == ["month", "total"] and monthly["total"].sum() == 270
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_hotspots_command(incident_csv, tmp_path):
    out = tmp_path / "cli"
    area = tmp_path / "area.geojson"
    gpd.GeoDataFrame(geometry=[shapely.box(X0, Y0, X0 + 80e3, Y0 + 80e3)], crs=UTM38
                     ).to_crs(4326).to_file(area)
    res = CliRunner().invoke(main, ["hotspots", "--incidents", str(incident_csv), "--study-area",
                                    str(area), "--hex-km", "10", "--bandwidth-km", "5",
                                    "--inference", "permutation", "--permutations", "99",
                                    "--type", "attack", "--since", "2019-03-01", "--out",
                                    str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "filtered" in res.output
    hexes_gdf = gpd.read_file(out / "hotspots.geojson")
    assert (f"Gi* (permutation, FDR 0.05): {int(hexes_gdf['hot'].sum())} hot and "
            f"{int(hexes_gdf['cold'].sum())} cold of {len(hexes_gdf)} hexagons") in res.output
    assert {p.name for p in out.iterdir()} == {"density.tif", "hotspots.geojson", "monthly.csv",
                                               "monthly.png"}
    monthly = pd.read_csv(out / "monthly.csv")
    assert monthly["month"].iloc[0] >= "2019-03"
    df = pd.read_csv(incident_csv)
    expect = ((df["type"] == "attack") & (df["date"] >= "2019-03-01")).sum()
    assert monthly["total"].sum() == expect
    hexes = json.loads((out / "hotspots.geojson").read_text())
    assert sum(f["properties"]["count"] for f in hexes["features"]) <= expect
    assert "Usage" in CliRunner().invoke(main, ["hotspots", "--help"]).output


def test_hotspots_command_bad_input_writes_nothing(incident_csv, tmp_path):
    out = tmp_path / "bad"
    res = CliRunner().invoke(main, ["hotspots", "--incidents", str(incident_csv), "--hex-km",
                                    "-1", "--out", str(out)])
    assert res.exit_code == 2
    assert "hex" in res.output
    assert not out.exists() or not any(out.iterdir())
    res = CliRunner().invoke(main, ["hotspots", "--incidents", str(tmp_path / "none.csv"),
                                    "--out", str(out)])
    assert res.exit_code == 2 and "not found" in res.output


@pytest.mark.parametrize("alpha", ["0", "1", "1.5", "-0.05"])
def test_hotspots_command_refuses_alpha_outside_0_1(incident_csv, tmp_path, alpha):
    """--alpha is a false discovery rate: 0 < alpha < 1, else exit 2, one line, no output."""
    out = tmp_path / "never"
    res = CliRunner().invoke(main, ["hotspots", "--incidents", str(incident_csv), "--alpha",
                                    alpha, "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert "--alpha" in res.output and len(res.output.strip().splitlines()) == 1
    assert not out.exists()
