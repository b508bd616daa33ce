"""Terrain: DEM reading, derivatives against gdaldem, tiles → COG, means along lines."""

from __future__ import annotations

import http.server
import io
import math
import shutil
import subprocess
import threading
import warnings
import zipfile
from functools import partial
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import rasterio
import rasterio.shutil
import shapely
from affine import Affine
from click.testing import CliRunner
from rasterio.crs import CRS

from gapmap.cli import main
from gapmap.errors import InputError
from gapmap.terrain import (
    DERIVATIVE_NODATA,
    Dem,
    build_dem,
    hillshade,
    mean_along,
    read_dem,
    slope,
    tile_urls,
    tri,
    write_derivatives,
)

from .conftest import UTM38, X0, Y0

GEOD = pyproj.Geod(ellps="WGS84")


# --------------------------------------------------------------------------- fixtures


def _write(path: Path, arr: np.ndarray, transform: Affine, crs, nodata=None) -> Path:
    with rasterio.open(path, "w", driver="GTiff", height=arr.shape[0], width=arr.shape[1],
                       count=1, dtype=arr.dtype.name, crs=crs, transform=transform,
                       nodata=nodata) as dst:
        dst.write(arr, 1)
    return path


def _rugged(rows: int = 60, cols: int = 70, seed: int = 0) -> np.ndarray:
    """Hills and noise: slopes from flat to steep in every direction."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols]
    return (200 * np.sin(x / 7) * np.cos(y / 5) + 30 * rng.standard_normal((rows, cols)) + 500
            ).astype(np.float32)


RUGGED_T = Affine(30, 0, X0, 0, -25, Y0)  # non-square cells catch mixed-up x / y spacing


@pytest.fixture
def rugged(tmp_path) -> tuple[Path, Dem]:
    """A projected rugged DEM with nodata holes (a block and a single cell), on disk and read."""
    z = _rugged()
    z[20:25, 30:33] = -9999
    z[40, 10] = -9999
    path = _write(tmp_path / "rugged.tif", z, RUGGED_T, UTM38, nodata=-9999)
    return path, read_dem(path)


def _gdaldem(*args: str) -> None:
    exe = shutil.which("gdaldem")
    if exe is None:
        pytest.fail("gdaldem not found: install gdal-bin (apt-get install gdal-bin) to run the "
                    "terrain parity tests")
    subprocess.run([exe, *args, "-q"], check=True, capture_output=True)


def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with rasterio.open(path) as src:
        band = src.read(1, masked=True)
    return np.ma.getdata(band), np.ma.getmaskarray(band)


# --------------------------------------------------------------------------- Dem, read_dem


def test_dem_properties_write_and_read_back(tmp_path):
    z = np.arange(12, dtype=np.float32).reshape(3, 4)
    z[0, 0] = np.nan
    dem = Dem(z, Affine(30, 0, X0, 0, -30, Y0), CRS.from_epsg(UTM38))
    assert dem.shape == (3, 4)
    assert dem.res_m == 30.0
    assert tuple(dem.bounds) == (X0, Y0 - 90, X0 + 120, Y0)
    out = dem.write(tmp_path / "sub" / "dem.tif")
    assert [p.name for p in out.parent.iterdir()] == ["dem.tif"]  # no temporary left behind
    back = read_dem(out)
    assert back.transform == dem.transform and back.crs == dem.crs
    np.testing.assert_array_equal(back.array, z)  # NaN round-trips as nodata
    with pytest.raises(ValueError):
        dem.array[1, 1] = 5  # frozen


def test_sample_is_bilinear_and_nan_off_grid():
    t = Affine(10, 0, 0, 0, -10, 100)
    rows, cols = np.mgrid[0:10, 0:10]
    x, y = (cols + 0.5) * 10, 100 - (rows + 0.5) * 10  # cell centres
    plane = (2 * x + 3 * y + 7).astype(np.float32)
    dem = Dem(plane, t, CRS.from_epsg(UTM38))
    pts = np.array([[12.3, 47.1], [55.0, 55.0], [91.0, 13.7], [5.0, 95.0]])
    np.testing.assert_allclose(dem.sample(pts), 2 * pts[:, 0] + 3 * pts[:, 1] + 7, rtol=1e-6)
    # half a cell beyond the last centre: nearest row/column; beyond the grid: NaN
    np.testing.assert_allclose(dem.sample([[2.0, 50.0]]), 2 * 5 + 3 * 50 + 7, rtol=1e-6)
    assert np.isnan(dem.sample([[-1.0, 50.0], [50.0, 100.5]])).all()
    holed = plane.copy()
    holed[5, 5] = np.nan
    d2 = Dem(holed, t, CRS.from_epsg(UTM38))
    assert np.isnan(d2.sample([[52.0, 47.0]]))[0]  # a nodata neighbour
    assert np.isfinite(d2.sample([[20.0, 20.0]]))[0]


def test_read_dem_reads_only_the_window(tmp_path):
    z = np.arange(200 * 300, dtype=np.float32).reshape(200, 300)
    z[100, 150] = -32768
    path = _write(tmp_path / "big.tif", z, Affine(10, 0, X0, 0, -10, Y0), UTM38, nodata=-32768)
    bounds = (X0 + 1000, Y0 - 1200, X0 + 2000, Y0 - 900)  # cols 100–200, rows 90–120
    dem = read_dem(path, bounds=bounds)
    assert dem.shape == (30 + 6, 100 + 6)  # three cells of margin each side
    assert dem.transform == Affine(10, 0, X0 + 970, 0, -10, Y0 - 870)
    want = np.where(z == -32768, np.nan, z)[90:120, 100:200]
    np.testing.assert_array_equal(dem.array[3:-3, 3:-3], want)
    # bounds in another CRS are transformed; nodata becomes NaN
    ll = pyproj.Transformer.from_crs(UTM38, 4326, always_xy=True).transform_bounds(
        X0 + 1400, Y0 - 1100, X0 + 1600, Y0 - 900)
    d2 = read_dem(path, bounds=ll, bounds_crs="EPSG:4326")
    assert d2.crs == CRS.from_epsg(UTM38)
    c, r = (~d2.transform) @ (X0 + 1505, Y0 - 1005)
    assert np.isnan(d2.array[int(r), int(c)])
    assert d2.shape[0] < 40 and d2.shape[1] < 40


def test_read_dem_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_dem(tmp_path / "nope.tif")
    path = _write(tmp_path / "nocrs.tif", np.zeros((5, 5), np.float32),
                  Affine(1, 0, 0, 0, -1, 5), None)
    with pytest.raises(InputError, match="crs.*gdal_edit"):
        read_dem(path)
    ok = _write(tmp_path / "ok.tif", np.zeros((5, 5), np.float32),
                Affine(10, 0, X0, 0, -10, Y0), UTM38)
    with pytest.raises(InputError, match="does not cover"):
        read_dem(ok, bounds=(X0 + 1e5, Y0, X0 + 2e5, Y0 + 1e4))
    with pytest.raises(InputError, match="bounds"):
        read_dem(ok, bounds=(X0 + 10, Y0, X0, Y0 + 10))
    garbage = tmp_path / "bad.tif"
    garbage.write_text("not a raster")
    with pytest.raises(InputError, match="cannot read"):
        read_dem(garbage)


def _lonlat_plane(tmp_path, gx: float, gy: float) -> tuple[Path, float]:
    """A lon/lat DEM (3″) whose elevation is a plane in UTM 38N metres: z = gx·E + gy·N."""
    res = 1 / 1200
    lon0, lat0, n = 44.2, 35.4, 180
    t = Affine(res, 0, lon0, 0, -res, lat0)
    rows, cols = np.mgrid[0:n, 0:n]
    lon, lat = lon0 + (cols + 0.5) * res, lat0 - (rows + 0.5) * res
    e, nn = pyproj.Transformer.from_crs(4326, UTM38, always_xy=True).transform(lon, lat)
    z = (gx * (e - e.min()) + gy * (nn - nn.min()) + 100).astype(np.float32)
    return _write(tmp_path / "ll.tif", z, t, "EPSG:4326"), lat0 - n * res / 2


def test_lonlat_dem_reprojected_to_metres_with_right_slope(tmp_path):
    gx, gy = 0.05, 0.10
    path, lat_c = _lonlat_plane(tmp_path, gx, gy)
    dem = read_dem(path)
    assert dem.crs == CRS.from_epsg(UTM38)  # the UTM zone of the area
    # native spacing at the centre latitude: geometric mean of E-W and N-S, from pyproj.Geod
    ew = GEOD.inv(44.2, lat_c, 44.2 + 1 / 1200, lat_c)[2]
    ns = GEOD.inv(44.2, lat_c - 1 / 2400, 44.2, lat_c + 1 / 2400)[2]
    assert dem.res_m == pytest.approx(math.sqrt(ew * ns), rel=1e-6)
    assert dem.res_xy[0] == pytest.approx(dem.res_xy[1])
    s = slope(dem)
    inner = s[np.isfinite(s)]
    assert inner.size > 0.9 * s.size  # the rotated footprint leaves thin nodata slivers only
    want = math.degrees(math.atan(math.hypot(gx, gy)))  # 6.38°
    assert np.max(np.abs(inner - want)) < 0.01  # also next to the footprint's edge
    # the bilinear samples reproduce the plane in metres
    b = dem.bounds
    xy = np.array([[b.left + 2000, b.bottom + 3000], [b.left + 9000, b.bottom + 12500]])
    z = dem.sample(xy)
    assert z[1] - z[0] == pytest.approx(gx * 7000 + gy * 9500, rel=2e-4)
    # the same DEM kept in lon/lat: derivatives use metric cell sizes row by row
    with rasterio.open(path) as src:
        geo = Dem(src.read(1), src.transform, src.crs)
    assert np.nanmax(np.abs(slope(geo) - want)) < 0.01


def test_read_dem_resolution_and_target_crs(tmp_path):
    path, _ = _lonlat_plane(tmp_path, 0.0, 0.1)
    dem = read_dem(path, dst_crs="EPSG:32638", resolution_m=200)
    assert dem.res_xy == (200.0, 200.0)
    # coarser cells: GDAL's widened (anti-aliasing) bilinear kernel, slightly smoothed
    s = slope(dem)
    assert np.nanmax(np.abs(s - math.degrees(math.atan(0.1)))) < 0.15
    assert np.nanmedian(s) == pytest.approx(math.degrees(math.atan(0.1)), abs=0.03)


# --------------------------------------------------------------------------- derivatives


def test_hand_computed_values():
    crs = CRS.from_epsg(UTM38)
    ramp = Dem(np.tile(np.arange(5, dtype=np.float32) * 10, (5, 1)),
               Affine(10, 0, 0, 0, -10, 50), crs)
    s = slope(ramp)
    assert s[1:-1, 1:-1] == pytest.approx(np.full((3, 3), 45.0))
    assert np.isnan(s[0]).all() and np.isnan(s[:, -1]).all()  # edges are nodata
    spike = np.zeros((3, 3), np.float32)
    spike[1, 1] = 3
    assert tri(Dem(spike, Affine(10, 0, 0, 0, -10, 30), crs))[1, 1] == pytest.approx(
        math.sqrt(8 * 9))
    flat = Dem(np.zeros((4, 4), np.float32), Affine(10, 0, 0, 0, -10, 40), crs)
    h = hillshade(flat)
    assert h.dtype == np.uint8 and h[1, 1] == round(1 + 254 * math.sin(math.radians(45)))
    assert h[0, 0] == 0
    # slope rising to the east faces west: lit by a western sun, shaded by an eastern one
    assert hillshade(ramp, azimuth_deg=270)[2, 2] > hillshade(ramp, azimuth_deg=90)[2, 2]
    with pytest.raises(InputError, match="too small"):
        slope(Dem(np.zeros((2, 5), np.float32), Affine(10, 0, 0, 0, -10, 20), crs))


@pytest.mark.parametrize("name, func, tol", [("slope", slope, 0.05), ("TRI", tri, 0.05)])
def test_parity_with_gdaldem(rugged, tmp_path, name, func, tol):
    path, dem = rugged
    out = tmp_path / f"{name}.tif"
    _gdaldem(name, str(path), str(out))
    ref, ref_mask = _read(out)
    mine = func(dem)
    assert mine.shape == ref.shape
    np.testing.assert_array_equal(np.isnan(mine), ref_mask)  # same edges and nodata holes
    assert ref_mask[19:26, 29:34].all() and ref_mask[39:42, 9:12].all()
    inner = ~ref_mask
    assert inner.sum() > 3500
    assert np.max(np.abs(mine[inner] - ref[inner])) <= tol
    assert np.max(mine[inner]) > (40 if name == "slope" else 150)  # really rugged


def test_tri_default_is_riley(rugged, tmp_path):
    """The installed gdaldem's default TRI is Riley (GDAL ≥ 3.3), which tri() follows."""
    path, dem = rugged
    _gdaldem("TRI", str(path), str(tmp_path / "default.tif"))
    _gdaldem("TRI", str(path), str(tmp_path / "riley.tif"), "-alg", "Riley")
    _gdaldem("TRI", str(path), str(tmp_path / "wilson.tif"), "-alg", "Wilson")
    default, m = _read(tmp_path / "default.tif")
    riley, _ = _read(tmp_path / "riley.tif")
    wilson, _ = _read(tmp_path / "wilson.tif")
    np.testing.assert_array_equal(default[~m], riley[~m])
    assert np.abs(default[~m] - wilson[~m]).max() > 10
    np.testing.assert_allclose(tri(dem)[~m], riley[~m], atol=0.05)


@pytest.mark.parametrize("az, alt, z", [(315, 45, 1), (90, 30, 2), (200, 60, 0.5)])
def test_hillshade_parity_with_gdaldem(rugged, tmp_path, az, alt, z):
    path, dem = rugged
    out = tmp_path / "hs.tif"
    _gdaldem("hillshade", str(path), str(out), "-az", str(az), "-alt", str(alt), "-z", str(z))
    with rasterio.open(out) as src:
        ref = src.read(1)
        assert src.nodata == 0
    mine = hillshade(dem, azimuth_deg=az, altitude_deg=alt, z_factor=z)
    np.testing.assert_array_equal(mine == 0, ref == 0)
    assert np.abs(mine.astype(int) - ref).max() <= 1
    assert len(np.unique(ref)) > 50


def test_write_derivatives_on_the_dem_grid(rugged, tmp_path):
    path, dem = rugged
    out = tmp_path / "terrain"
    paths = write_derivatives(path, out)
    assert set(paths) == {"slope", "tri", "hillshade"}
    assert sorted(p.name for p in out.iterdir()) == ["hillshade.tif", "slope.tif", "tri.tif"]
    with rasterio.open(path) as src:
        grid = (src.crs, src.transform, src.shape)
    for name, func in (("slope", slope), ("tri", tri), ("hillshade", hillshade)):
        with rasterio.open(paths[name]) as src:
            assert (src.crs, src.transform, src.shape) == grid
            assert src.nodata == (0 if name == "hillshade" else DERIVATIVE_NODATA)
            arr = src.read(1, masked=True)
        want = func(dem)
        if name == "hillshade":
            np.testing.assert_array_equal(arr.filled(0), want)
        else:
            np.testing.assert_array_equal(np.ma.getmaskarray(arr), np.isnan(want))
            np.testing.assert_allclose(arr.compressed(), want[np.isfinite(want)])


def test_write_derivatives_window(rugged, tmp_path):
    path, dem = rugged
    b = (X0 + 600, Y0 - 1000, X0 + 1200, Y0 - 500)  # cols 20–40, rows 20–40 (+3 each side)
    paths = write_derivatives(path, tmp_path / "w", bounds=b)
    with rasterio.open(paths["tri"]) as src:
        assert src.shape == (26, 26)
        assert src.transform == RUGGED_T @ Affine.translation(17, 17)
        got = src.read(1, masked=True).filled(np.nan)
    np.testing.assert_allclose(got[1:-1, 1:-1], tri(dem)[18:42, 18:42])
    assert np.isnan(got[1:-1, 1:-1]).any()  # the nodata hole lies in the window


def test_write_derivatives_keeps_a_lonlat_grid(tmp_path):
    path, _ = _lonlat_plane(tmp_path, 0.0, 0.1)
    paths = write_derivatives(path, tmp_path / "t")
    with rasterio.open(path) as a, rasterio.open(paths["slope"]) as b:
        assert (a.crs, a.transform, a.shape) == (b.crs, b.transform, b.shape)
        s = b.read(1, masked=True)
    assert np.ma.median(s) == pytest.approx(math.degrees(math.atan(0.1)), abs=0.02)


def test_cli_terrain(rugged, tmp_path):
    path, _ = rugged
    runner = CliRunner()
    assert "Usage" in runner.invoke(main, ["terrain", "--help"]).output
    res = runner.invoke(main, ["terrain", "--dem", str(path), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / "slope.tif").exists() and "hillshade" in res.output
    res = runner.invoke(main, ["terrain", "--dem", str(tmp_path / "x.tif"), "--out", "o"])
    assert res.exit_code == 2 and "DEM file not found" in res.output


# --------------------------------------------------------------------------- mean_along


def test_mean_along_lines_and_points():
    crs = CRS.from_epsg(UTM38)
    t = Affine(10, 0, X0, 0, -10, Y0)
    dem = Dem(np.zeros((20, 30), np.float32), t, crs)
    cols = np.tile(np.arange(30, dtype=np.float32), (20, 1))
    cols[15, :] = np.nan
    lines = [
        shapely.LineString([(X0 + 5, Y0 - 55), (X0 + 95, Y0 - 55)]),  # columns 0..9 → 4.5
        shapely.LineString([(X0 + 125, Y0 - 5), (X0 + 125, Y0 - 195)]),  # column 12 only
        shapely.LineString([(X0 + 5, Y0 - 155), (X0 + 295, Y0 - 155)]),  # all nodata
        shapely.Point(X0 + 203, Y0 - 10),  # column 20
        shapely.LineString([(X0 - 500, Y0 + 10), (X0 - 100, Y0 + 10)]),  # off the grid
        shapely.MultiLineString([[(X0 + 5, Y0 - 5), (X0 + 15, Y0 - 5)],
                                 [(X0 + 285, Y0 - 5), (X0 + 295, Y0 - 5)]]),  # 0,1 and 28,29
    ]
    got = mean_along(cols, dem, lines)
    np.testing.assert_allclose(got[[0, 1, 3, 5]], [4.5, 12.0, 20.0, 14.5])
    assert np.isnan(got[2]) and np.isnan(got[4])
    # a GeoSeries in another CRS is moved onto the DEM's grid
    gs = gpd.GeoSeries(lines[:2], crs=UTM38).to_crs(4326)
    np.testing.assert_allclose(mean_along(cols, dem, gs), [4.5, 12.0], atol=1e-6)
    with pytest.raises(InputError, match="not on the DEM grid"):
        mean_along(cols[:5], dem, lines)
    assert mean_along(cols, dem, []).shape == (0,)


# --------------------------------------------------------------------------- tiles → COG


def _hgt(lat: int, lon: int, n: int = 1201) -> np.ndarray:
    """An SRTM tile whose elevation encodes position: 100·lat + 10·lon (rounded)."""
    i = np.arange(n)
    la = lat + 1 - i / (n - 1)
    lo = lon + i / (n - 1)
    z = np.rint(100 * la[:, None] + 10 * lo[None, :]).astype(">i2")
    z[:3, :3] = -32768
    return z


def _expected(lon: float, lat: float) -> float:
    n = 1200  # cells per degree; centres on whole multiples of 1/1200
    return float(np.rint(100 * (round(lat * n) / n) + 10 * (round(lon * n) / n)))


@pytest.fixture
def hgt_dir(tmp_path) -> Path:
    d = tmp_path / "srtm"
    d.mkdir()
    _hgt(35, 44).tofile(d / "N35E044.hgt")
    with zipfile.ZipFile(d / "N35E045.hgt.zip", "w") as zf:
        zf.writestr("N35E045.hgt", _hgt(35, 45).tobytes())
    return d


def _check_cog(path: Path) -> rasterio.DatasetReader:
    src = rasterio.open(path)
    assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    assert src.profile["tiled"] and src.profile["compress"] == "deflate"
    assert src.block_shapes[0] == (512, 512)
    assert src.overviews(1)  # internal overviews
    return src


def test_build_dem_from_hgt_and_zipped_hgt(hgt_dir, tmp_path):
    bbox = (44.6, 35.2, 45.4, 36.3)  # N36 row missing
    with pytest.warns(UserWarning, match=r"2 DEM tile\(s\) missing.*N36E044, N36E045"):
        out = build_dem(bbox, tiles=str(hgt_dir), out=tmp_path / "dem.tif")
    with _check_cog(out) as src:
        assert src.crs == CRS.from_epsg(4326) and src.dtypes[0] == "int16"
        assert src.nodata == -32768
        b = src.bounds
        half = 1 / 2400
        assert (b.left, b.bottom, b.right, b.top) == pytest.approx(
            (44.6 - half, 35.2 - half, 45.4 + half, 36.3 + half), abs=1e-9)
        arr = src.read(1)
        for lon, lat in ((44.75, 35.5), (45.25, 35.75), (45.0, 35.2125)):
            r, c = src.index(lon, lat)
            assert arr[r, c] == _expected(lon, lat)
        r, _ = src.index(44.7, 36.2)
        assert (arr[r] == -32768).all()  # the missing row of tiles
    # the written DEM reads back into metres for the analysis
    dem = read_dem(out, bounds=(44.7, 35.3, 45.3, 35.9), bounds_crs="EPSG:4326")
    assert dem.crs == CRS.from_epsg(UTM38) and np.isfinite(dem.array).mean() > 0.9


def test_build_dem_reprojected_and_cli(hgt_dir, tmp_path):
    out = tmp_path / "utm.tif"
    res = CliRunner().invoke(main, ["dem", "--bbox", "44.2,35.2,44.8,35.8", "--tiles",
                                    str(hgt_dir), "--out", str(out), "--crs", "EPSG:32638"])
    assert res.exit_code == 0, res.output
    with _check_cog(out) as src:
        assert src.crs == CRS.from_epsg(UTM38)
        assert src.res[0] == pytest.approx(src.res[1]) and 80 < src.res[0] < 90
        x, y = pyproj.Transformer.from_crs(4326, UTM38, always_xy=True).transform(44.5, 35.5)
        v = next(src.sample([(x, y)]))[0]
    assert v == pytest.approx(100 * 35.5 + 10 * 44.5, abs=1.0)
    assert "Usage" in CliRunner().invoke(main, ["dem", "--help"]).output
    bad = CliRunner().invoke(main, ["dem", "--bbox", "44,35", "--tiles", str(hgt_dir),
                                    "--out", str(tmp_path / "bad.tif")])
    assert bad.exit_code == 2 and "--bbox" in bad.output and "W,S,E,N" in bad.output


def test_build_dem_from_geotiff_tiles_any_names(tmp_path):
    d = tmp_path / "tiles"
    d.mkdir()
    res = 0.01
    for i, (lon0, name) in enumerate(((44.0, "west_part.tif"), (44.5, "b.tiff"))):
        z = np.full((50, 50), 100.0 * (i + 1), np.float32)
        _write(d / name, z, Affine(res, 0, lon0, 0, -res, 36.0), "EPSG:4326", nodata=-9999)
    # a projected tile far away is ignored by its bounds
    _write(d / "elsewhere.tif", np.zeros((10, 10), np.float32),
           Affine(100, 0, 500000, 0, -100, 1000000), 32633)
    out = build_dem("44.2,35.6,44.8,35.9", tiles=str(d), out=tmp_path / "m.tif")
    with rasterio.open(out) as src:
        assert src.dtypes[0] == "float32"
        vals = [v[0] for v in src.sample([(44.3, 35.7), (44.7, 35.7)])]
    assert vals == [100.0, 200.0]
    # the tiles span 44.0–45.0 E: 45.0–45.5 E, half of this box, is not covered
    with pytest.warns(UserWarning, match=r"leave 50\.0% of the bounding box uncovered"):
        build_dem("44.5,35.6,45.5,35.9", tiles=str(d), out=tmp_path / "m2.tif")


def test_build_dem_bad_inputs(tmp_path, hgt_dir):
    with pytest.raises(InputError, match="no tile covers"):
        build_dem((10.0, 10.0, 10.5, 10.5), tiles=str(hgt_dir), out=tmp_path / "x.tif")
    assert not (tmp_path / "x.tif").exists()
    with pytest.raises(InputError, match="bbox"):
        build_dem("44,35,43,36", tiles=str(hgt_dir), out=tmp_path / "x.tif")
    with pytest.raises(InputError, match="bbox"):
        build_dem("44,35,45", tiles=str(hgt_dir), out=tmp_path / "x.tif")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no .hgt"):
        build_dem("44,35,45,36", tiles=str(empty), out=tmp_path / "x.tif")
    with pytest.raises(InputError, match="placeholder"):
        build_dem("44,35,45,36", tiles="http://127.0.0.1:9/{latitude}.tif", out=tmp_path / "x.tif")


def test_tile_urls_placeholders():
    t = ("https://h/Copernicus_DSM_COG_10_{NS}{lat:02d}_00_{EW}{lon:03d}_00_DEM/"
         "x_{ns}{ew}_{slat}_{slon}.tif")
    got = tile_urls(t, (-0.5, -1.5, 0.5, -0.5))
    assert got[(-2, -1)] == "https://h/Copernicus_DSM_COG_10_S02_00_W001_00_DEM/x_sw_-2_-1.tif"
    assert got[(-1, 0)] == "https://h/Copernicus_DSM_COG_10_S01_00_E000_00_DEM/x_se_-1_0.tif"
    assert len(got) == 4


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with HTTP range requests, as object stores serve COGs."""

    def log_message(self, *args):  # keep test output clean
        pass

    def send_head(self):
        rng = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not rng or not path.is_file():
            return super().send_head()
        data = path.read_bytes()
        start, _, end = rng.removeprefix("bytes=").partition("-")
        start, end = int(start), min(int(end) if end else len(data) - 1, len(data) - 1)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return io.BytesIO(data[start:end + 1])


@pytest.fixture
def tile_server(tmp_path):
    """Copernicus-style COG tiles on a loopback HTTP server (N35E044 present, N35E045 absent)."""
    root = tmp_path / "www"
    name = "Copernicus_DSM_COG_10_N35_00_E044_00_DEM"
    (root / name).mkdir(parents=True)
    n = 600  # 6″ cells
    i = (np.arange(n) + 0.5) / n
    z = (100 * (36 - i)[:, None] + 10 * (44 + i)[None, :]).astype(np.float32)
    plain = _write(tmp_path / "plain.tif", z, Affine(1 / n, 0, 44, 0, -1 / n, 36), "EPSG:4326")
    rasterio.shutil.copy(plain, root / name / f"{name}.tif", driver="COG", compress="DEFLATE")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(_RangeHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_build_dem_from_url_template(tile_server, tmp_path):
    template = (tile_server + "/Copernicus_DSM_COG_10_{NS}{lat:02d}_00_{EW}{lon:03d}_00_DEM/"
                "Copernicus_DSM_COG_10_{NS}{lat:02d}_00_{EW}{lon:03d}_00_DEM.tif")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = build_dem((44.1, 35.1, 45.2, 35.95), tiles=template, out=tmp_path / "cop.tif")
    msgs = [str(w.message) for w in caught]
    assert any("1 DEM tile(s) missing" in m and "N35_00_E045" in m for m in msgs), msgs
    with _check_cog(out) as src:
        assert src.dtypes[0] == "float32"
        assert src.bounds.left == pytest.approx(44.1) and src.bounds.top == pytest.approx(35.95)
        v = [x[0] for x in src.sample([(44.5 + 1 / 1200, 35.5 + 1 / 1200), (45.1, 35.5)])]
    assert v[0] == pytest.approx(100 * (35.5 + 1 / 1200) + 10 * (44.5 + 1 / 1200), abs=1e-2)
    assert math.isnan(v[1])  # the missing tile is nodata
    with pytest.raises(InputError, match="no tile covers"):
        build_dem((50.1, 35.1, 50.2, 35.2), tiles=template, out=tmp_path / "none.tif")


# --------------------------------------------------------------------------- as_dem, bad input


def _one_line_exit_2(res, *words):
    """A refusal: exit 2, one line on stderr naming ``words``, no traceback."""
    assert res.exit_code == 2, res.output
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in res.output, err
    for w in words:
        assert w in err, err
    return err


def test_as_dem_returns_a_dem_as_it_is_without_reading(rugged, monkeypatch):
    from gapmap.terrain import as_dem

    path, dem = rugged
    assert isinstance(dem.crs, pyproj.CRS)  # one CRS type
    monkeypatch.setattr(rasterio, "open", lambda *a, **k: pytest.fail("file re-read"))
    assert as_dem(dem) is dem
    assert as_dem(dem, crs=UTM38) is dem and as_dem(dem, crs=dem.crs.to_wkt()) is dem
    assert as_dem(dem, bounds=(X0, Y0 - 500, X0 + 500, Y0)) is dem  # bounds only limit reads
    moved = as_dem(dem, crs="EPSG:32637")  # reprojected by the one masked rule
    assert moved.crs.to_epsg() == 32637 and moved.array.base is not dem.array.base


def test_as_dem_takes_paths_datasets_and_tuples(rugged):
    from gapmap.terrain import as_dem

    path, dem = rugged
    with rasterio.open(path) as src:
        from_ds = as_dem(src)
    from_tuple = as_dem((np.asarray(dem.array), dem.transform, "EPSG:32638"))
    for d in (as_dem(path), from_ds, from_tuple):
        assert d.transform == dem.transform and d.crs == dem.crs
        np.testing.assert_array_equal(d.array, dem.array)
    with pytest.raises(InputError, match="cannot use a dict"):
        as_dem({"a": 1})


def test_truncated_tiff_is_refused_in_one_line(rugged, tmp_path):
    path, _ = rugged
    data = path.read_bytes()
    bad = tmp_path / "truncated.tif"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated.tif"):
        read_dem(bad)
    res = CliRunner().invoke(main, ["terrain", "--dem", str(bad), "--out", str(tmp_path / "o")])
    _one_line_exit_2(res, "truncated.tif")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("n", [1, 2])
def test_dem_of_one_or_two_cells_is_too_small(tmp_path, n):
    path = _write(tmp_path / "tiny.tif", np.ones((n, n), np.float32),
                  Affine(30, 0, X0, 0, -30, Y0), UTM38)
    with pytest.raises(InputError, match=f"{n}×{n} cells is too small"):
        read_dem(path)
    res = CliRunner().invoke(main, ["terrain", "--dem", str(path), "--out", str(tmp_path / "o")])
    _one_line_exit_2(res, "too small")


def test_whole_world_bbox_refused_with_the_estimate(tmp_path):
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    _write(tiles / "small.tif", np.ones((10, 10), np.int16),
           Affine(1 / 3600, 0, 44.0, 0, -1 / 3600, 35.0), "EPSG:4326")
    out = tmp_path / "dem.tif"
    res = CliRunner().invoke(main, ["dem", "--bbox", "-180,-90,180,90", "--tiles", str(tiles),
                                    "--out", str(out)])
    err = _one_line_exit_2(res, "--bbox", "GiB")
    # 1″ cells over the globe: 1,296,000 × 648,000 cells of 2 + 4 bytes ≈ 4,693 GiB
    assert "4,693 GiB" in err
    assert not out.exists()


@pytest.mark.parametrize("template", ["{lat.__class__.__mro__}.tif", "{NS!r}{lat}.tif",
                                      "{lat[0]}.tif", "{user}.tif", "{NS:02d}{lat}.tif"])
def test_tile_template_only_takes_documented_placeholders(tmp_path, template):
    res = CliRunner().invoke(main, ["dem", "--bbox", "44,35,45,36", "--tiles",
                                    str(tmp_path / template), "--out", str(tmp_path / "d.tif")])
    _one_line_exit_2(res, "unsupported placeholder", "{lat}")
    assert not (tmp_path / "d.tif").exists()


def test_check_allocation_names_the_estimate():
    from gapmap.terrain import check_allocation

    check_allocation(2**20, "x", None, "a step", "fix")  # 1 MiB: fine
    with pytest.raises(InputError, match=r"a step would need about 1,048,576 GiB"):
        check_allocation(2**50, "x", None, "a step", "fix")
    with pytest.raises(InputError, match="unbounded"):
        check_allocation(float("inf"), "x", None, "a step", "fix")


def test_write_derivatives_opens_the_dem_once_and_takes_a_dem(rugged, tmp_path, monkeypatch):
    path, dem = rugged
    opened = []
    real = rasterio.open
    monkeypatch.setattr(rasterio, "open", lambda fp, *a, **k: (
        opened.append(str(fp)) if str(fp) == str(path) else None) or real(fp, *a, **k))
    from_file = write_derivatives(path, tmp_path / "a")
    assert opened == [str(path)]
    from_dem = write_derivatives(dem, tmp_path / "b")
    assert opened == [str(path)]  # a Dem is not read again
    for name in ("slope", "tri", "hillshade"):
        a, _ = _read(from_file[name])
        b, _ = _read(from_dem[name])
        np.testing.assert_array_equal(a, b)
