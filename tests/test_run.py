"""The run object: each input read once, each product computed once, stable corridor ids."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine

from gapmap import Run, Settings, analyze, parse_side
from gapmap.corridors import read_layers
from gapmap.errors import GapmapWarning
from gapmap.run import analysis_crs

from .conftest import UTM38, X0, Y0

A, B = parse_side("krg=peshmerga"), parse_side("federal=isf")


def _posts(ys_km, x_km=20.0):
    return gpd.GeoDataFrame({"range_km": [5.0] * len(ys_km)}, crs=UTM38,
                            geometry=[shapely.Point(X0 + x_km * 1e3, Y0 + y * 1e3)
                                      for y in ys_km])


def _dem_file(path, crs=UTM38):
    """A tilted plane, 200 m cells, over the strips and 60 km around them."""
    cell = 200.0
    x0, y1 = X0 - 60e3, Y0 + 160e3
    h, w = int(220e3 / cell), int(160e3 / cell)
    cols = np.arange(w) * cell
    arr = np.tile((cols * 0.02).astype(np.float32), (h, 1))
    with rasterio.open(path, "w", driver="GTiff", height=h, width=w, count=1,
                       dtype="float32", crs=f"EPSG:{crs}", nodata=-9999,
                       transform=Affine(cell, 0, x0, 0, -cell, y1)) as dst:
        dst.write(arr, 1)
    return path


def test_products_computed_once_and_match_analyze(strips, strips_area):
    run = Run.from_layers(strips, A, B, posts=_posts([50]), study_area=strips_area)
    assert run.analysis is run.analysis and run.base is run.base
    assert run.crs.to_epsg() == UTM38
    # 100 km seam, a 10 km disc around the post: 90 km in two corridors of 45 km.
    s = run.analysis.summary
    assert s["seam_length_km"] == pytest.approx(100.0, rel=1e-3)
    assert s["unguarded_length_km"] == pytest.approx(90.0, rel=2e-3) and s["corridors"] == 2
    assert run.dem is None and run.hillshade is None and run.crossings is None


def test_ids_come_from_the_place_along_the_seam(strips, strips_area):
    # Posts at y = 30 km and y = 70 km: corridors [0, 25], [35, 65], [75, 100] km.
    before = analyze(strips, A, B, posts=_posts([30, 70]), study_area=strips_area).corridors
    # Moving the upper post north grows the middle corridor past the others in length.
    after = analyze(strips, A, B, posts=_posts([30, 95]), study_area=strips_area).corridors
    def by_id(t):
        return {r.corridor_id: (round(r.start_lat, 3), r.rank, round(r.length_km, 1))
                for r in t.itertuples()}
    b, a = by_id(before), by_id(after)
    assert sorted(b) == ["C1", "C2", "C3"] and sorted(a) == ["C1", "C2"]
    # C1 is the southern corridor in both, C2 the middle one, whatever their lengths.
    assert b["C1"][0] == a["C1"][0] and b["C2"][0] == a["C2"][0]
    assert b["C2"][1] == 1 and a["C2"][1] == 1 and a["C2"][2] > b["C2"][2]
    assert {b["C1"][1], b["C3"][1]} == {2, 3}  # rank: by length, 1 = longest (25 km ties)
    assert list(before["rank"]) == [1, 2, 3]  # rows in rank order


def test_pinned_crs_is_shared(strips, strips_area):
    pinned = "EPSG:32637"
    runs = [Run.from_layers(strips, A, B, study_area=strips_area, crs=pinned),
            Run.from_layers(strips, A, B, study_area=strips_area,
                            settings=Settings(crs=pinned))]
    assert all(r.crs.to_epsg() == 32637 for r in runs)
    assert all(r.analysis.crs.to_epsg() == 32637 for r in runs)


def test_dem_crs_preferred_only_when_true_to_scale():
    z = gpd.GeoDataFrame({"force": ["peshmerga", "isf"]}, crs=4326,
                         geometry=[shapely.box(44.0, 35.0, 44.2, 36.0),
                                   shapely.box(44.5, 35.0, 44.7, 36.0)])
    lay = read_layers(z, A, B)
    assert analysis_crs(lay, dem_crs="EPSG:32638").to_epsg() == 32638
    # UTM 37N at 44–45° E: 6° off its meridian, scale off by ~0.4%: not used.
    assert analysis_crs(lay, dem_crs="EPSG:32637").to_epsg() == 32638
    assert analysis_crs(lay, dem_crs="EPSG:32637", pinned="EPSG:32637").to_epsg() == 32637


def _counted_run(strips, strips_area, dem_path, monkeypatch):
    """A run with visibility over ``dem_path``, and the modes ``rasterio.open`` was called
    with on that file (filled as the run goes)."""
    opened = []
    real_open = rasterio.open

    def counting_open(fp, *a, **kw):
        if str(fp) == str(dem_path):
            opened.append(kw.get("mode", a[0] if a else "r"))
        return real_open(fp, *a, **kw)

    monkeypatch.setattr(rasterio, "open", counting_open)
    run = Run.from_layers(strips, A, B, posts=_posts([30, 70]), study_area=strips_area,
                          dem=dem_path, visibility=True)
    return run, opened


def test_dem_opened_once_in_a_demo_like_run(strips, strips_area, tmp_path, monkeypatch):
    dem_path = _dem_file(tmp_path / "dem.tif")
    run, opened = _counted_run(strips, strips_area, dem_path, monkeypatch)
    res = run.analysis
    pl = run.placement(2, range_km=5.0, height_m=10.0)
    hs, cr, win = run.hillshade, run.crossings, run.terrain_window()
    assert opened == ["r"]
    assert res.dem is run.dem and run.dem.crs.to_epsg() == UTM38
    # On a plane rising 2 m per 100 m east, the slope is atan(0.02) everywhere.
    assert res.corridors["slope_mean_deg"].to_numpy() == pytest.approx(
        np.degrees(np.arctan(0.02)), rel=1e-4)
    assert set(cr.fields.index) == set(res.corridors["corridor_id"])
    assert (cr.fields["crossing_hours"] > 0).all()
    assert len(run.routes) == len(res.corridors)
    assert np.nanmax(hs.array) <= 255 and max(hs.shape) <= 2000
    assert win.shape[0] < run.dem.shape[0] and pl.k == 2


def _lonlat_dem_file(path):
    """A plane rising 1 m per 0.001° of longitude, 0.005° cells, in EPSG:4326, around the
    strips and well beyond the window a run reads (lon 43.0–45.2, lat 34.6–36.8)."""
    cell = 0.005
    w, n = 43.0, 36.8
    h, wd = int(round(2.2 / cell)), int(round(2.2 / cell))
    lon = w + (np.arange(wd) + 0.5) * cell
    arr = np.tile(((lon - w) * 1000.0).astype(np.float32), (h, 1))
    with rasterio.open(path, "w", driver="GTiff", height=h, width=wd, count=1,
                       dtype="float32", crs="EPSG:4326", nodata=-9999,
                       transform=Affine(cell, 0, w, 0, -cell, n)) as dst:
        dst.write(arr, 1)
    return path


def test_lonlat_dem_opened_once_and_reprojected_once(strips, strips_area, tmp_path,
                                                      monkeypatch):
    from gapmap.terrain import read_dem

    dem_path = _lonlat_dem_file(tmp_path / "dem_lonlat.tif")
    run, opened = _counted_run(strips, strips_area, dem_path, monkeypatch)
    res = run.analysis
    hs, cr, win = run.hillshade, run.crossings, run.terrain_window()
    assert opened == ["r"]
    # Reprojected to the analysis CRS chosen from the layers (the DEM's is not metric).
    assert run.crs.to_epsg() == UTM38 and run.dem.crs.equals(run.crs)
    assert res.dem is run.dem and run.dem.source == str(dem_path)
    assert (cr.fields["crossing_hours"] > 0).all() and np.nanmax(hs.array) <= 255
    assert win.shape[0] < run.dem.shape[0]
    # The same grid as reading the file on its own with the same window and CRS.
    monkeypatch.undo()
    alone = read_dem(dem_path, bounds=run._dem_box(), bounds_crs="EPSG:4326",
                     dst_crs=run.crs)
    assert alone.shape == run.dem.shape and alone.transform == run.dem.transform
    np.testing.assert_array_equal(alone.array, run.dem.array)
    # 1 m per 0.001° of longitude is ~1 m per 91 m east at 35.2° N: a slope of ~0.63°.
    assert res.corridors["slope_mean_deg"].to_numpy() == pytest.approx(
        np.degrees(np.arctan(1 / 91.1)), rel=0.02)


def test_each_warning_once_per_run(strips, strips_area):
    posts = _posts([50])
    posts["force"] = ["nobody"]  # a post of a third force: left out with a warning
    posts = gpd.GeoDataFrame(posts, crs=UTM38)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = Run.from_layers(strips, A, B, posts=posts, study_area=strips_area)
        run.analysis, run.base, run.analysis
    ours = [w for w in caught if issubclass(w.category, GapmapWarning)]
    assert len(ours) == 1 and "neither side" in str(ours[0].message)


def test_progress_and_timings(strips, strips_area):
    seen = []
    run = Run.from_layers(strips, A, B, study_area=strips_area, progress=seen.append)
    run.analysis
    assert seen[:1] == ["reading layers"]
    for stage in ("seam", "coverage", "corridors", "gap region"):
        assert stage in seen and run.timings[stage] >= 0


def test_gap_area_of_jagged_zones_within_a_tenth_of_a_percent():
    # Random-walk borders (like traced ones), 2 km reach: the gap stage simplifies before
    # growing; the exact answer grows the unsimplified zones with fine arcs.
    rng = np.random.default_rng(3)
    def strip(x0, facing):
        y = np.linspace(0, 60e3, 3000)
        jit = np.cumsum(rng.normal(0, 40, len(y)))
        jit -= np.linspace(jit[0], jit[-1], len(y))
        edge = np.column_stack([x0 + facing * np.clip(jit, -3000, 3000), Y0 + y])
        back = x0 - facing * 10e3
        return shapely.make_valid(shapely.Polygon(
            np.vstack([edge, [[back, Y0 + 60e3], [back, Y0]]])))
    zones = gpd.GeoDataFrame({"force": ["peshmerga", "isf"]}, crs=UTM38,
                             geometry=[strip(X0, +1), strip(X0 + 30e3, -1)])
    area = gpd.GeoDataFrame(geometry=[shapely.box(X0 - 5e3, Y0, X0 + 35e3, Y0 + 60e3)],
                            crs=UTM38)
    res = analyze(zones, A, B, study_area=area)
    grown = shapely.buffer(shapely.union_all(zones.geometry.values), 2000.0, quad_segs=64)
    exact = shapely.difference(area.geometry.iloc[0], grown)
    from gapmap.crs import geodesic_area_km2

    want = float(geodesic_area_km2([exact], UTM38)[0])
    assert res.summary["gap_area_km2"] == pytest.approx(want, rel=1e-3)
    assert want > 500  # a real gap: ~26 km wide belt minus what the posts cannot reach


def test_coarsen_takes_nan_aware_block_means():
    """5 × 7 cells to at most 3 across: blocks of 3 × 3 (the last rows and columns dropped),
    each the mean of its finite cells, NaN where none is; the cell size triples."""
    from gapmap.run import _coarsen
    from gapmap.terrain import Dem

    a = np.arange(35, dtype=np.float32).reshape(5, 7)
    a[0, 0] = np.nan
    a[0:3, 3:6] = np.nan
    dem = Dem(a, Affine(10, 0, 100, 0, -10, 500), UTM38)
    out = _coarsen(dem, 3)
    rows = [[1, 2, 7, 8, 9, 14, 15, 16], [np.nan]]
    assert out.shape == (1, 2)
    assert out.array[0, 0] == pytest.approx(np.mean(rows[0]))
    assert np.isnan(out.array[0, 1])
    assert out.transform == Affine(30, 0, 100, 0, -30, 500)
    assert _coarsen(dem, 7) is dem
