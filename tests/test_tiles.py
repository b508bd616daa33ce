"""Tiled rasters: the same cells whatever the tiling, in-process or on Dask, in bounded memory.

Coverage and terrain derivatives computed tile by tile must equal the whole-grid computation
cell for cell (the whole-grid viewshed is checked against gdal_viewshed in test_viewshed.py,
the derivatives against gdaldem in test_terrain.py); a DEM file is read only in windows of a
tile plus its halo; the memory formula refuses what cannot fit; on a Dask LocalCluster the
results are identical, a worker lost under a tile is replaced, and a run whose tile keeps
killing workers leaves no output.
"""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import rasterio.windows
import shapely
from affine import Affine
from click.testing import CliRunner
from scipy.ndimage import gaussian_filter

from gapmap import tiles as tiles_mod
from gapmap import viewshed
from gapmap.cli import main
from gapmap.errors import GapmapError, InputError
from gapmap.terrain import DERIVATIVE_NODATA, hillshade, read_dem, slope, tri, write_derivatives
from gapmap.tiles import Tile, cog_writer, memory_limit_bytes, tile_grid
from gapmap.viewshed import coverage, coverage_memory_bytes, write_coverage

UTM = "EPSG:32638"
CELL = 30.0
X0, Y0 = 400_000.0, 3_900_000.0

_real_tile = viewshed._coverage_tile


def _terrain(rows: int, cols: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = np.zeros((rows, cols))
    for sigma, amp in ((20, 250), (6, 60), (2, 10)):
        z += amp * gaussian_filter(rng.standard_normal((rows, cols)), sigma) * sigma / 3
    return (z + 400).astype(np.float32)


def _write(path: Path, z: np.ndarray, t: Affine, crs=UTM, nodata=None) -> Path:
    with rasterio.open(path, "w", driver="GTiff", height=z.shape[0], width=z.shape[1], count=1,
                       dtype="float32", crs=crs, transform=t, nodata=nodata) as dst:
        dst.write(z, 1)
    return path


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A 300×340 DEM with a nodata hole on disk, and 30 posts of 1–3 km (33–100 cells)."""
    folder = tmp_path_factory.mktemp("tiles")
    z = _terrain(300, 340)
    z[140:150, 200:230] = -9999
    t = Affine(CELL, 0, X0, 0, -CELL, Y0 + 300 * CELL)
    dem = _write(folder / "dem.tif", z, t, nodata=-9999)
    rng = np.random.default_rng(5)
    x = rng.uniform(X0 + 100, X0 + 340 * CELL - 100, 30)
    y = rng.uniform(Y0 + 100, Y0 + 300 * CELL - 100, 30)
    posts = gpd.GeoDataFrame({"range_km": rng.uniform(1.0, 3.0, 30)},
                             geometry=shapely.points(x, y), crs=UTM)
    whole = coverage(dem, posts, range_km=2.0, tile_cells=4096)
    return dict(dem=dem, posts=posts, whole=whole, folder=folder)


def _bands(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


# --------------------------------------------------------------------------- tiling


def test_tile_grid_covers_every_cell_once():
    tiles = tile_grid((1000, 1300), 512)
    hits = np.zeros((1000, 1300), int)
    for t in tiles:
        r0, c0, r1, c1 = t.bounds
        hits[r0:r1, c0:c1] += 1
    assert (hits == 1).all() and len(tiles) == 2 * 3
    assert Tile(0, 0, 0, 10, 10).grown(3, 5, (8, 12)) == (0, 0, 8, 12)
    with pytest.raises(InputError, match="--tile-cells"):
        tile_grid((10, 10), 0)


@pytest.mark.parametrize("tile_cells", [23, 64, 150])
def test_tiled_coverage_equals_the_whole_grid(scene, tile_cells):
    got = coverage(scene["dem"], scene["posts"], range_km=2.0, tile_cells=tile_cells)
    whole = scene["whole"]
    assert whole.count.max() >= 3 and 0.2 < whole.visible.mean() < 0.98  # a real scene
    np.testing.assert_array_equal(got.count, whole.count)


def test_write_coverage_is_a_cog_reading_windows_only(scene, tmp_path, monkeypatch):
    windows = []
    real = tiles_mod.read_window

    def spy(src, r0, c0, r1, c1):
        windows.append((r1 - r0) * (c1 - c0))
        return real(src, r0, c0, r1, c1)

    monkeypatch.setattr(viewshed, "read_window", spy)
    out = tmp_path / "cov.tif"
    s = write_coverage(scene["dem"], scene["posts"], out, range_km=2.0, tile_cells=64)
    bands = _bands(out)
    np.testing.assert_array_equal(bands[1], scene["whole"].count)
    np.testing.assert_array_equal(bands[0], scene["whole"].visible)
    # windows of a tile plus the posts' range (≤ 101 cells each side), never the whole DEM
    assert max(windows) <= (64 + 2 * 101) ** 2 < 300 * 340
    assert s.tiles == 5 * 6 and s.posts_used == 30
    assert s.visible_cells == int(scene["whole"].visible.sum())
    assert s.max_count == int(scene["whole"].count.max())
    with rasterio.open(out) as src:
        assert src.block_shapes[0] == (512, 512) and src.profile["compress"] == "deflate"
        assert src.descriptions == ("visible from any post (0/1)",
                                    "number of posts that see the cell")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cov.tif"]  # no staging left


def test_memory_formula_refuses_what_cannot_fit(scene, tmp_path):
    need = coverage_memory_bytes(512, 101, 1, 30)
    assert need == pytest.approx(400 * 2**20 + 64 * 2**20 + 5 * 714**2 + 2 * 512**2
                                 + 4 * 512**2 + 64 * 30)
    out = tmp_path / "cov.tif"
    with pytest.raises(InputError, match=r"--max-memory-gb: coverage .* needs about 0\.\d\d GB"):
        write_coverage(scene["dem"], scene["posts"], out, max_memory_gb=0.3)
    assert not out.exists()
    with pytest.raises(InputError, match="positive"):
        memory_limit_bytes(-1)
    res = CliRunner().invoke(main, ["coverage", "--dem", str(scene["dem"]), "--posts",
                                    str(scene["folder"] / "none.gpkg"), "--out", str(out)])
    assert res.exit_code == 2
    posts = tmp_path / "posts.geojson"
    scene["posts"].to_file(posts)
    res = CliRunner().invoke(main, ["coverage", "--dem", str(scene["dem"]), "--posts",
                                    str(posts), "--max-memory-gb", "0.3", "--out", str(out)])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert "needs about" in res.output and "--max-memory-gb 0.5" in res.output
    assert not out.exists()
    res = CliRunner().invoke(main, ["coverage", "--dem", str(scene["dem"]), "--posts",
                                    str(posts), "--range-km", "2", "--tile-cells", "100",
                                    "--max-memory-gb", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "tiles: 12 of 100 cells" in res.output
    # the file's own ranges are kept (load_posts reads them), as in the API
    np.testing.assert_array_equal(_bands(out)[1], scene["whole"].count)


def test_range_too_long_for_the_memory_says_which_range_fits(tmp_path):
    # a 20,000² grid declared but stored sparse: only the block under the post holds data
    t = Affine(CELL, 0, X0, 0, -CELL, Y0 + 20_000 * CELL)
    dem = tmp_path / "big.tif"
    with rasterio.open(dem, "w", driver="GTiff", height=20_000, width=20_000, count=1,
                       dtype="float32", crs=UTM, transform=t, nodata=-9999, tiled=True,
                       sparse_ok=True) as dst:
        dst.write(np.full((1, 256, 256), 100, np.float32),
                  window=rasterio.windows.Window(9984, 9984, 256, 256))
    assert dem.stat().st_size < 5_000_000
    x, y = t * (10_000.5, 10_000.5)
    posts = gpd.GeoDataFrame(geometry=[shapely.Point(x, y)], crs=UTM)
    with pytest.raises(InputError, match=r"posts of range up to (\d+)\.\d km would fit") as e:
        write_coverage(dem, posts, tmp_path / "c.tif", range_km=300.0, max_memory_gb=0.6)
    km = float(str(e.value).split("range up to ")[1].split(" km")[0])
    assert 10 < km < 300
    # and that range does fit (the formula's figure for it is below the limit)
    halo = int(km * 1000 / CELL) + 1
    assert coverage_memory_bytes(512, halo, 1, 1) <= 0.6e9


# --------------------------------------------------------------------------- terrain


def test_tiled_derivatives_equal_the_whole_grid(tmp_path):
    z = _terrain(70, 90)
    z[30:34, 40:45] = np.nan
    t = Affine(30, 0, X0, 0, -25, Y0)
    path = _write(tmp_path / "dem.tif", z, t)
    paths = write_derivatives(path, tmp_path / "t", tile_cells=16)
    dem = read_dem(path)
    for name, func, nodata in (("slope", slope, DERIVATIVE_NODATA),
                               ("tri", tri, DERIVATIVE_NODATA), ("hillshade", hillshade, 0)):
        want = func(dem)
        want = np.nan_to_num(want, nan=nodata) if want.dtype.kind == "f" else want
        got = _bands(paths[name])[0]
        np.testing.assert_array_equal(got, want)
    assert (_bands(paths["slope"])[0] != DERIVATIVE_NODATA).mean() > 0.9


def test_tiled_derivatives_of_a_lonlat_grid_equal_the_whole_grid(tmp_path):
    z = _terrain(40, 50)
    t = Affine(0.0003, 0, 44.0, 0, -0.00025, 35.0)
    path = _write(tmp_path / "ll.tif", z, t, crs="EPSG:4326")
    paths = write_derivatives(path, tmp_path / "t", tile_cells=16)
    from gapmap.terrain import Dem

    dem = Dem(z, t, "EPSG:4326")
    np.testing.assert_array_equal(_bands(paths["slope"])[0],
                                  np.nan_to_num(slope(dem), nan=DERIVATIVE_NODATA))


def test_cli_terrain_refuses_what_cannot_fit(tmp_path):
    path = _write(tmp_path / "dem.tif", _terrain(40, 40), Affine(30, 0, X0, 0, -30, Y0))
    res = CliRunner().invoke(main, ["terrain", "--dem", str(path), "--max-memory-gb", "0.2",
                                    "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert "terrain derivatives on tiles of 512 needs about" in res.output
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- Dask


def test_coverage_and_derivatives_on_a_local_cluster_equal_in_process(scene, cluster,
                                                                     tmp_path):
    out = tmp_path / "cov.tif"
    s = write_coverage(scene["dem"], scene["posts"], out, range_km=2.0, tile_cells=128,
                       scheduler=cluster.scheduler_address)
    assert s.tiles == 9
    np.testing.assert_array_equal(_bands(out)[1], scene["whole"].count)
    here = write_derivatives(scene["dem"], tmp_path / "a", tile_cells=128)
    there = write_derivatives(scene["dem"], tmp_path / "b", tile_cells=128,
                              scheduler=cluster.scheduler_address)
    for name in here:
        np.testing.assert_array_equal(_bands(here[name]), _bands(there[name]))


def _die_once(job, tile):
    marker = Path(job.grid.path).with_suffix(".died")
    if tile.index == 1 and not marker.exists():
        marker.write_text("1")
        os._exit(1)  # the worker process dies under the tile
    return _real_tile(job, tile)


def _always_die(job, tile):
    if tile.index == 1:
        os._exit(1)
    return _real_tile(job, tile)


def test_lost_worker_tile_is_retried_and_a_failing_run_writes_nothing(scene, cluster,
                                                                      tmp_path, monkeypatch):
    import shutil

    dem = tmp_path / "dem.tif"
    shutil.copy(scene["dem"], dem)
    monkeypatch.setattr(viewshed, "_coverage_tile", _die_once)
    out = tmp_path / "cov.tif"
    write_coverage(dem, scene["posts"], out, range_km=2.0, tile_cells=128,
                   scheduler=cluster.scheduler_address)
    assert dem.with_suffix(".died").exists()  # a worker really died
    np.testing.assert_array_equal(_bands(out)[1], scene["whole"].count)
    monkeypatch.setattr(viewshed, "_coverage_tile", _always_die)
    bad = tmp_path / "bad.tif"
    with pytest.raises(GapmapError, match="died|dying"):
        write_coverage(dem, scene["posts"], bad, range_km=2.0, tile_cells=128,
                       scheduler=cluster.scheduler_address)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cov.tif", "dem.died", "dem.tif"]


def test_cog_writer_leaves_nothing_when_the_writing_fails(tmp_path):
    out = tmp_path / "x.tif"
    with pytest.raises(RuntimeError), cog_writer(out, height=600, width=600, count=1,
                                                 dtype="uint8", transform=Affine.identity(),
                                                 crs=UTM) as write:
        write(tile_grid((600, 600), 512)[0], np.ones((512, 512), np.uint8))
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_write_coverage_warns_of_a_dem_too_coarse_for_the_posts(tmp_path):
    from gapmap.errors import ResolutionWarning

    t = Affine(500, 0, X0, 0, -500, Y0 + 40 * 500)
    dem = _write(tmp_path / "coarse.tif", _terrain(40, 40), t)
    posts = gpd.GeoDataFrame(geometry=[shapely.Point(X0 + 10_000, Y0 + 10_000)], crs=UTM)
    with pytest.warns(ResolutionWarning, match="coarse.tif"):
        s = write_coverage(dem, posts, tmp_path / "c.tif", range_km=2.0)
    assert s.posts_used == 1 and s.visible_cells >= 1
