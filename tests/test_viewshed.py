"""Visibility coverage: hand-computable scenes and agreement with gdal_viewshed."""

from __future__ import annotations

import re
import shutil
import subprocess
import warnings

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from click.testing import CliRunner
from scipy.ndimage import gaussian_filter

from gapmap.errors import InputError
from gapmap.terrain import as_dem
from gapmap.viewshed import CURVATURE_COEFF, coverage, visible_from_posts

UTM = "EPSG:32638"
A_WGS84 = 6378137.0
K = CURVATURE_COEFF / (2 * A_WGS84)  # curvature drop per m² of distance


def _grid(z: np.ndarray, cell_m: float, x0: float = 400_000.0, y0: float = 3_900_000.0):
    """(array, transform, crs) with the top-left corner at (x0, y0 + rows·cell)."""
    t = Affine(cell_m, 0, x0, 0, -cell_m, y0 + z.shape[0] * cell_m)
    return z.astype("float32"), t, UTM


def _xy(t: Affine, col, row):
    """Map coordinates of fractional (col, row) positions on a north-up grid."""
    return t.c + t.a * np.asarray(col, float), t.f + t.e * np.asarray(row, float)


def _centre(t: Affine, row: int, col: int) -> tuple[float, float]:
    x, y = _xy(t, col + 0.5, row + 0.5)
    return float(x), float(y)


def _posts(xy, **cols) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(cols, geometry=[shapely.Point(p) for p in xy], crs=UTM)


def _dist_cells(shape, row, col, cell_m):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    return np.hypot(yy - row, xx - col) * cell_m


# --------------------------------------------------------------------------------------------
# hand-computable scenes


def test_flat_plane_everything_in_range_is_visible():
    z, t, crs = _grid(np.full((101, 101), 250.0), 30.0)
    x, y = _centre(t, 50, 50)
    cov = coverage((z, t, crs), _posts([(x, y)]), range_km=1.2, height_m=10, target_height_m=2)
    disc = _dist_cells(z.shape, 50, 50, 30.0) <= 1200.0
    assert cov.visible.dtype == np.uint8 and cov.count.dtype == np.uint16
    assert np.array_equal(cov.visible.astype(bool), disc)
    assert np.array_equal(cov.count, disc.astype(np.uint16))
    assert cov.transform == t and cov.crs.to_epsg() == 32638
    assert cov.visible_area_km2 == pytest.approx(disc.sum() * 900 / 1e6)


def _wall_expected(dist_m, frac, eye_m=10.0, wall_m=6.0, target_m=2.0):
    """Whether the sight line from the eye clears a wall crossed at ``frac`` of the way."""
    wall_d = dist_m * frac
    target = target_m - K * dist_m ** 2
    wall = wall_m - K * wall_d ** 2
    return eye_m + (target - eye_m) * frac >= wall


def test_wall_casts_the_shadow_geometry_predicts():
    # flat ground at 0 m; a 6 m wall fills column c+10; eye 10 m, target 2 m above ground
    n, c, a = 121, 60, 10
    z = np.zeros((n, n))
    z[:, c + a] = 6.0
    z, t, crs = _grid(z, 30.0)
    cov = coverage((z, t, crs), _posts([_centre(t, c, c)]), range_km=1.75)
    dist = _dist_cells(z.shape, c, c, 30.0)
    rows, cols = np.nonzero(dist <= 1750.0)
    behind = cols > c + a
    dx = cols[behind] - c
    expected = _wall_expected(dist[rows[behind], cols[behind]], a / dx)
    got = cov.visible[rows[behind], cols[behind]].astype(bool)
    assert np.array_equal(got, expected)
    # on the observer's row: hidden from just behind the wall to 20 cells out (the tie at
    # exactly 20 cells is decided by the curvature drop), visible again from 21 cells
    row = cov.visible[c, c + a + 1:c + 30]
    assert row.tolist() == [0] * 10 + [1] * 9
    # in front of the wall, and the wall itself, everything is seen
    assert cov.visible[dist <= 1750.0][(np.nonzero(dist <= 1750.0)[1] <= c + a)].all()


def test_wall_higher_than_the_eye_hides_everything_behind():
    n, c = 81, 40
    z = np.zeros((n, n))
    z[:, c + 5] = 50.0
    z, t, crs = _grid(z, 30.0)
    cov = coverage((z, t, crs), _posts([_centre(t, c, c)]), range_km=1.1)
    assert cov.visible[:, c + 6:].sum() == 0
    assert cov.visible[c, c:c + 6].all()


def test_curvature_hides_a_low_target_beyond_the_predicted_horizon():
    # flat sea-level plane, 100 m cells: eye 10 m, target 2 m; with refraction 1/7 the
    # horizon distance is sqrt(2·R')·(sqrt(10) + sqrt(2)), R' = a / (1 − 1/7)
    n, c, cell = 401, 200, 100.0
    z, t, crs = _grid(np.zeros((n, n)), cell)
    post = _posts([_centre(t, c, c)])
    cov = coverage((z, t, crs), post, range_km=19.9)
    r_eff = A_WGS84 / CURVATURE_COEFF
    horizon = np.sqrt(2 * r_eff) * (np.sqrt(10.0) + np.sqrt(2.0))
    assert horizon == pytest.approx(17655.0, abs=1.0)
    dist = _dist_cells(z.shape, c, c, cell)
    vis = cov.visible.astype(bool)
    assert dist[vis].max() <= horizon + cell
    assert dist[(~vis) & (dist <= 19900)].min() >= horizon - cell
    # on the axes the scan is exact: the last visible cell is the last one before the horizon
    last = np.floor(horizon / cell) * cell
    for line in (vis[c, c:], vis[c, :c + 1][::-1], vis[c:, c], vis[:c + 1, c][::-1]):
        assert np.flatnonzero(line)[-1] * cell == last
    # without curvature the whole plane within range is visible
    flat = coverage((z, t, crs), post, range_km=19.9, curvature_coeff=0.0)
    assert np.array_equal(flat.visible.astype(bool), dist <= 19900)


def test_per_post_range_and_height_columns_override_defaults():
    n, c = 81, 40
    z = np.zeros((n, n))
    z[:, c + 5] = 15.0  # a 15 m wall: a 10 m eye is below it, a 40 m mast sees over it
    z, t, crs = _grid(z, 30.0)
    xy = [_centre(t, c, c)]
    low = coverage((z, t, crs), _posts(xy), range_km=1.1)
    mast = coverage((z, t, crs), _posts(xy, height_m=[40.0]), range_km=1.1)
    assert low.visible[c, c + 6:].sum() == 0
    assert mast.visible[c, c + 20:c + 30].all()
    flat = np.zeros_like(z)
    short = coverage((flat, t, crs), _posts(xy, range_km=[0.3]), range_km=1.1)
    dist = _dist_cells(z.shape, c, c, 30.0)
    assert np.array_equal(short.visible.astype(bool), dist <= 300.0)
    # missing values in the columns fall back to the defaults
    mixed = coverage((flat, t, crs), _posts(xy, range_km=[np.nan]), range_km=0.3)
    assert np.array_equal(mixed.visible, short.visible)


def test_count_adds_overlapping_posts_and_nodata_is_never_visible():
    z = np.full((61, 61), 100.0)
    z[30, 35] = np.nan  # a nodata cell between the posts
    z, t, crs = _grid(z, 30.0)
    posts = _posts([_centre(t, 30, 25), _centre(t, 30, 45)])
    cov = coverage((z, t, crs), posts, range_km=0.9)
    d1 = _dist_cells(z.shape, 30, 25, 30.0) <= 900
    d2 = _dist_cells(z.shape, 30, 45, 30.0) <= 900
    expected = d1.astype(int) + d2.astype(int)
    expected[30, 35] = 0
    assert np.array_equal(cov.count, expected)
    assert cov.visible[30, 35] == 0 and cov.visible[30, 36] == 1  # no shadow behind nodata


def test_write_two_band_geotiff_on_the_dem_grid(tmp_path):
    z, t, crs = _grid(np.zeros((40, 50)), 30.0)
    cov = coverage((z, t, crs), _posts([_centre(t, 20, 20), _centre(t, 20, 22)]), range_km=0.5)
    out = tmp_path / "sub" / "coverage.tif"
    cov.write(out)
    with rasterio.open(out) as src:
        assert src.count == 2 and src.shape == (40, 50)
        assert src.transform == t and src.crs.to_epsg() == 32638
        assert np.array_equal(src.read(1), cov.visible)
        assert np.array_equal(src.read(2), cov.count)
        assert src.read(2).max() == 2
    assert sorted(p.name for p in out.parent.iterdir()) == ["coverage.tif"]


def test_bad_input_and_posts_outside_the_dem():
    z, t, crs = _grid(np.zeros((20, 20)), 30.0)
    polys = gpd.GeoDataFrame(geometry=[shapely.box(*_xy(t, 0, 0), *_xy(t, 5, 5))], crs=UTM)
    with pytest.raises(InputError, match="points"):
        coverage((z, t, crs), polys)
    with pytest.raises(InputError, match="rotated"):
        coverage((z, Affine(30, 1, 0, 0, -30, 600), crs), _posts([(15, 585)]))
    with pytest.raises(InputError, match="range_km"):
        coverage((z, t, crs), _posts([_centre(t, 5, 5)], range_km=[-1.0]))
    far = _posts([_centre(t, 5, 5), (0.0, 0.0)])
    with pytest.warns(UserWarning, match="1 post"):
        cov = coverage((z, t, crs), far, range_km=0.1)
    assert cov.posts_used == 1 and cov.count.max() == 1


def test_lonlat_dem_is_reprojected_to_metres():
    lon0, lat0, step = 44.0, 35.0, 1 / 1200  # 3″ cells
    z = np.zeros((60, 60), "float32")
    g = as_dem((z, Affine(step, 0, lon0, 0, -step, lat0 + 60 * step), "EPSG:4326"))
    assert g.crs.is_projected and g.crs.to_epsg() == 32638
    assert 60 < abs(g.transform.a) < 95 and abs(g.transform.a) == abs(g.transform.e)


# --------------------------------------------------------------------------------------------
# points


def test_visible_from_posts_matches_coverage_and_true_range():
    rng = np.random.default_rng(3)
    z = gaussian_filter(rng.standard_normal((150, 150)), 6) * 400
    z, t, crs = _grid(z, 30.0)
    posts = _posts([_centre(t, 50, 60), _centre(t, 100, 90)], range_km=[1.5, 1.0])
    cov = coverage((z, t, crs), posts)
    # cell centres well inside a range disc: same answer as the coverage raster
    d1 = _dist_cells(z.shape, 50, 60, 30.0)
    d2 = _dist_cells(z.shape, 100, 90, 30.0)
    inner = (d1 <= 1450) | (d2 <= 950)
    far = (d1 > 1500) & (d2 > 1000)
    rows, cols = np.nonzero(inner | far)
    xy = np.column_stack(_xy(t, cols + 0.5, rows + 0.5))
    seen = visible_from_posts((z, t, crs), posts, xy)
    assert seen.dtype == bool
    assert np.array_equal(seen[inner[rows, cols]], cov.visible[inner].astype(bool))
    assert not seen[far[rows, cols]].any()
    assert 0.2 < seen[inner[rows, cols]].mean() < 0.98  # the terrain hides part of the discs
    # a point just inside the true range on level ground is seen even where its cell centre is
    # just outside; one just beyond is not
    flat, tf, _ = _grid(np.zeros((100, 100)), 30.0)
    p = _posts([_centre(tf, 50, 50)])
    x0, y0 = _centre(tf, 50, 50)
    pts = np.array([[x0 + 1000 - 1, y0], [x0 + 1000 + 1, y0], [x0, y0 - 999]])
    assert visible_from_posts((flat, tf, UTM), p, pts, range_km=1.0).tolist() == \
        [True, False, True]


def test_visible_from_posts_reads_a_window_and_reprojects_points(tmp_path):
    rng = np.random.default_rng(5)
    z = gaussian_filter(rng.standard_normal((200, 200)), 5) * 300
    z, t, crs = _grid(z, 30.0)
    path = tmp_path / "dem.tif"
    with rasterio.open(path, "w", driver="GTiff", height=200, width=200, count=1,
                       dtype="float32", crs=crs, transform=t) as dst:
        dst.write(z, 1)
    posts = _posts([_centre(t, 40, 40), _centre(t, 150, 160)])
    rows, cols = rng.integers(0, 200, (2, 400))
    pts = gpd.GeoSeries(shapely.points(np.column_stack(_xy(t, cols + 0.5, rows + 0.5))),
                        crs=UTM)
    ref = visible_from_posts((z, t, crs), posts, pts, range_km=2.0)
    assert ref.any() and not ref.all()
    assert np.array_equal(visible_from_posts(path, posts, pts, range_km=2.0), ref)
    # the same samples in lon/lat, posts in another CRS
    got = visible_from_posts(path, posts.to_crs(3857), pts.to_crs(4326), range_km=2.0)
    assert (got == ref).mean() > 0.99


# --------------------------------------------------------------------------------------------
# agreement with gdal_viewshed


def _gdal_version() -> tuple[int, int]:
    exe = shutil.which("gdal_viewshed")
    if exe is None:
        pytest.fail("gdal_viewshed not found: install gdal-bin (apt-get install gdal-bin)")
    out = subprocess.run(["gdalinfo", "--version"], capture_output=True, text=True).stdout
    m = re.search(r"GDAL (\d+)\.(\d+)", out)
    assert m, out
    return int(m.group(1)), int(m.group(2))


@pytest.fixture(scope="module")
def rugged(tmp_path_factory):
    """A 400×400 rugged DEM (fractal noise + a sharp ridge), 8 posts, and gdal_viewshed's
    union and count of their viewsheds (-oz 10 -tz 2 -md 3000 -cc 0.85714)."""
    _gdal_version()
    rng = np.random.default_rng(11)
    n, cell = 400, 30.0
    z = np.zeros((n, n))
    for sigma, amp in ((40, 300), (15, 80), (5, 25), (2, 8)):
        z += amp * gaussian_filter(rng.standard_normal((n, n)), sigma) * sigma / 3
    yy, xx = np.mgrid[0:n, 0:n]
    z += 120 * np.exp(-((xx - 0.7 * yy - 100) / 6.0) ** 2)
    z, t, crs = _grid(z, cell)
    folder = tmp_path_factory.mktemp("rugged")
    dem = folder / "dem.tif"
    with rasterio.open(dem, "w", driver="GTiff", height=n, width=n, count=1, dtype="float32",
                       crs=crs, transform=t) as dst:
        dst.write(z, 1)
    rc = rng.integers(20, 380, (8, 2))
    off = rng.uniform(0.05, 0.95, (8, 2))  # posts anywhere inside their cells
    xy = [tuple(map(float, _xy(t, c + oc, r + orr))) for (r, c), (orr, oc) in zip(rc, off)]
    count = np.zeros((n, n), int)
    in_range = np.zeros((n, n), bool)
    for i, (x, y) in enumerate(xy):
        out = folder / f"vs{i}.tif"
        subprocess.run(["gdal_viewshed", "-q", "-ox", repr(x), "-oy", repr(y), "-oz", "10",
                        "-tz", "2", "-md", "3000", "-cc", "0.85714", "-vv", "1", "-iv", "0",
                        "-ov", "2", str(dem), str(out)], check=True, capture_output=True)
        with rasterio.open(out) as src:
            a = src.read(1)
            c0 = int(round((src.transform.c - t.c) / cell))
            r0 = int(round((t.f - src.transform.f) / cell))
        count[r0:r0 + a.shape[0], c0:c0 + a.shape[1]] += a == 1
        in_range[r0:r0 + a.shape[0], c0:c0 + a.shape[1]] |= a != 2
    return dict(dem=dem, grid=(z, t, crs), posts=_posts(xy), count=count, in_range=in_range)


def test_union_and_count_agree_with_gdal_viewshed(rugged):
    cov = coverage(rugged["dem"], rugged["posts"], range_km=3.0, height_m=10.0,
                   target_height_m=2.0)
    inside = rugged["in_range"]
    gdal_count = rugged["count"]
    assert inside.sum() > 100_000
    union_agree = ((cov.visible > 0) == (gdal_count > 0))[inside].mean()
    count_agree = (cov.count == gdal_count)[inside].mean()
    assert union_agree >= 0.98, union_agree
    assert count_agree >= 0.98, count_agree
    assert 0.15 < (gdal_count > 0)[inside].mean() < 0.9  # a real test: much is hidden
    assert not cov.visible[~inside].any()  # nothing outside the range discs


def test_gdal_rules_reproduced_cell_for_cell(rugged):
    # with GDAL 3.6's rule for the observer's neighbours the result is identical to
    # gdal_viewshed's; later GDAL releases use the rule gapmap uses by default
    gdal36 = _gdal_version() < (3, 9)
    cov = coverage(rugged["dem"], rugged["posts"], range_km=3.0, curvature_coeff=0.85714,
                   _gdal36=gdal36)
    inside = rugged["in_range"]
    assert (cov.count == rugged["count"])[inside].mean() >= 0.9999


# --------------------------------------------------------------------------------------------
# command line


def test_cli_coverage_writes_the_raster(tmp_path, rugged):
    from gapmap.cli import main

    posts = tmp_path / "posts.geojson"
    rugged["posts"].assign(range_km=[3.0] * 4 + [None] * 4).to_file(posts)
    out = tmp_path / "cov.tif"
    res = CliRunner().invoke(main, ["coverage", "--dem", str(rugged["dem"]), "--posts",
                                    str(posts), "--range-km", "3", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "posts computed: 8 of 8" in res.output
    api = coverage(rugged["dem"], rugged["posts"], range_km=3.0)
    with rasterio.open(out) as src:
        assert np.array_equal(src.read(2), api.count)
    help_ = CliRunner().invoke(main, ["coverage", "--help"])
    assert help_.exit_code == 0 and "--target-height-m" in help_.output
    bad = CliRunner().invoke(main, ["coverage", "--dem", str(tmp_path / "none.tif"), "--posts",
                                    str(posts), "--out", str(out)])
    assert bad.exit_code == 2 and "DEM file not found" in bad.output


# --------------------------------------------------------------------------------------------
# bad input and warnings


@pytest.mark.parametrize("kw", [{"range_km": float("inf")}, {"range_km": float("nan")},
                                {"range_km": 5000.0}, {"height_m": float("nan")},
                                {"height_m": 1e9}])
def test_non_finite_or_absurd_range_and_height_refused(kw):
    z, t, crs = _grid(np.zeros((20, 20)), 30.0)
    name = next(iter(kw))
    with pytest.raises(InputError, match=name):
        coverage((z, t, crs), _posts([_centre(t, 5, 5)]), **kw)
    if not np.isnan(kw[name]):  # also as a column of the posts (empty cells take the default)
        with pytest.raises(InputError, match=name):
            coverage((z, t, crs), _posts([_centre(t, 5, 5)], **{name: [kw[name]]}))


def test_cli_coverage_refuses_an_absurd_range_in_one_line(tmp_path):
    from click.testing import CliRunner

    from gapmap.cli import main

    z, t, crs = _grid(np.zeros((20, 20)), 30.0)
    dem = tmp_path / "dem.tif"
    with rasterio.open(dem, "w", driver="GTiff", height=20, width=20, count=1, dtype="float32",
                       crs=crs, transform=t) as dst:
        dst.write(z, 1)
    _posts([_centre(t, 5, 5)]).to_file(tmp_path / "posts.geojson")
    out = tmp_path / "cov.tif"
    res = CliRunner().invoke(main, ["coverage", "--dem", str(dem), "--posts",
                                    str(tmp_path / "posts.geojson"), "--range-km", "5000",
                                    "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert len(res.stderr.strip().splitlines()) == 1 and "--range-km" in res.stderr
    assert "between 0 and 1000" in res.stderr
    assert not out.exists()


def test_dem_coarser_than_a_tenth_of_the_range_warns():
    from gapmap.errors import ResultWarning

    z, t, crs = _grid(np.zeros((40, 40)), 100.0)
    posts = _posts([_centre(t, 20, 20)])
    with pytest.warns(ResultWarning, match="100 m are more than a tenth"):
        coverage((z, t, crs), posts, range_km=0.9)  # 100 m > 90 m
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResultWarning)
        coverage((z, t, crs), posts, range_km=1.0)  # exactly a tenth: fine
