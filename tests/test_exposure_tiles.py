"""Road exposure tile by tile along the roads equals the run on one window.

The posts' sight is tested on tiles of the roads' bounding box, each on the tile's window of
the DEM (the tile grown by the longest post range and four cells) with only the posts within
range of the tile. Line of sight from a post to a point only crosses cells between the two,
so on hilly ground, with roads across tile edges and posts next to them, the pieces, flags
and summary must be those of the run on one window — compared here exactly (geometry to
1e-9 m, flags and hours equal, summary to 1e-9 relative), in memory and from a file.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine
from pyproj import Transformer

from gapmap.errors import InputError
from gapmap.exposure import exposure_memory_bytes, road_exposure
from gapmap.terrain import Dem
from gapmap.tiles import BASE_BYTES
from gapmap.viewshed import visible_from_posts

UTM = 32638
X0, Y0 = 400_000.0, 3_900_000.0
CELL = 50.0
TO_LL = Transformer.from_crs(UTM, 4326, always_xy=True)


def _hills(rows: int, cols: int) -> np.ndarray:
    """Ridges 0.5–1.5 km apart, up to 90 m high, on a gentle rise: a post sees some of a
    road and not the rest, changing every few hundred metres."""
    y, x = np.mgrid[0:rows, 0:cols]
    return (60 * np.sin(x / 11.0) * np.cos(y / 7.0) + 30 * np.sin((x + y) / 23.0)
            + 0.2 * x).astype(np.float32)


def _transform(rows: int) -> Affine:
    return Affine(CELL, 0, X0, 0, -CELL, Y0 + rows * CELL)


def _write_tif(path, z: np.ndarray) -> None:
    import rasterio

    rows, cols = z.shape
    with rasterio.open(path, "w", driver="GTiff", height=rows, width=cols, count=1,
                       dtype="float32", crs="EPSG:32638", transform=_transform(rows),
                       tiled=True, blockxsize=256, blockysize=256) as dst:
        dst.write(z, 1)


@pytest.fixture(scope="module")
def hills() -> Dem:
    """12 km × 16 km of 50 m cells."""
    return Dem(_hills(240, 320), _transform(240), UTM)


def _roads() -> gpd.GeoDataFrame:
    """Roads across many 1.5 km tiles: a bent one, one along a row, a multiline with a
    north–south part and an L."""
    return gpd.GeoDataFrame(
        {"name": ["bent", "east-west", "multi"]}, crs=UTM, index=[7, 8, 9],
        geometry=[shapely.LineString([(X0 + 300, Y0 + 600), (X0 + 6_000, Y0 + 9_000),
                                      (X0 + 15_500, Y0 + 11_500)]),
                  shapely.LineString([(X0 + 1_000, Y0 + 6_000), (X0 + 15_000, Y0 + 6_020)]),
                  shapely.MultiLineString([[(X0 + 8_000, Y0 + 500), (X0 + 8_010, Y0 + 11_500)],
                                           [(X0 + 12_000, Y0 + 3_000), (X0 + 3_000, Y0 + 3_100),
                                            (X0 + 2_900, Y0 + 10_000)]])])


def _posts() -> gpd.GeoDataFrame:
    """Posts on and beside the edges of the tiles of 1,500 m (30 cells) laid from the roads'
    south-west corner (X0 + 300, Y0 + 500): x = X0 + 4,800 and y = Y0 + 6,500 are tile edges."""
    xy = [(X0 + 4_800.0, Y0 + 6_013.0), (X0 + 4_790.0, Y0 + 3_050.0), (X0 + 7_333.0, Y0 + 6_500.0),
          (X0 + 9_010.0, Y0 + 8_000.0), (X0 + 12_000.0, Y0 + 5_010.0), (X0 + 2_950.0, Y0 + 9_500.0)]
    return gpd.GeoDataFrame({"name": [f"P{i}" for i in range(len(xy))],
                             "range_km": [2.0, 1.5, 2.5, 1.0, 3.0, 2.0]},
                            geometry=[shapely.Point(p) for p in xy], crs=UTM)


def _origin() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(geometry=[shapely.Point(X0 + 6_000, Y0 + 6_000)], crs=UTM)


def _tiles_logged(caplog) -> list[int]:
    return [int(r.getMessage().split(" on ")[-1].split(" tile")[0].split()[-1])
            for r in caplog.records if "tile(s)" in r.getMessage()]


def _assert_same(got, want) -> None:
    a, b = got.pieces, want.pieces
    assert len(a) == len(b) and len(a) > 10
    assert list(a.columns) == list(b.columns)
    assert a.geometry.geom_equals_exact(b.geometry, 1e-9).all()
    for col in ("road", "name", "seen", "reachable", "exposed"):
        assert (a[col].to_numpy() == b[col].to_numpy()).all(), col
    assert np.array_equal(a["hours_from_origin"].to_numpy(), b["hours_from_origin"].to_numpy(),
                          equal_nan=True)
    assert set(got.summary) == set(want.summary)
    for k, v in want.summary.items():
        if isinstance(v, float):
            assert got.summary[k] == pytest.approx(v, rel=1e-9, abs=1e-12), k
        else:
            assert got.summary[k] == v, k


def test_a_window_sees_what_the_whole_grid_sees(hills):
    # points whose posts' lines of sight stay inside the window: the window's answer is the
    # whole grid's, point for point (the window is cut on the grid's cells)
    rng = np.random.default_rng(1)
    posts = _posts()
    pts = np.column_stack([X0 + 4_000 + rng.random(20_000) * 6_000,
                           Y0 + 4_000 + rng.random(20_000) * 5_000])
    whole = visible_from_posts(hills, posts, pts)
    win = Dem(hills.array[10:230, 20:300], hills.transform @ Affine.translation(20, 10), UTM)
    assert 0.1 < whole.mean() < 0.9  # hills: some seen, some not
    assert (visible_from_posts(win, posts, pts) == whole).all()


@pytest.mark.parametrize("tile_m", [1_500.0, 2_750.0])
def test_tiles_in_memory_give_the_one_window_run(hills, tile_m, caplog):
    roads, base, posts = _roads(), _origin(), _posts()
    want = road_exposure(roads, base, hills, posts=posts, hours=0.8)
    with caplog.at_level(logging.INFO, logger="gapmap.exposure"):
        got = road_exposure(roads, base, hills, posts=posts, hours=0.8, tile_m=tile_m)
    assert max(_tiles_logged(caplog)) >= 16
    _assert_same(got, want)
    s = want.summary
    assert 0 < s["seen_km"] < s["road_km"] and 0 < s["exposed_km"] < s["reachable_km"]
    # the seen stretches change often: many cuts, and some cross a tile edge
    assert want.pieces["seen"].sum() >= 5


def test_the_tiles_of_a_dem_in_memory_are_views_of_it(hills, monkeypatch):
    import gapmap.viewshed as viewshed_mod

    grids = []
    real = viewshed_mod.visible_from_posts

    def spy(dem, *a, **k):
        grids.append(dem)
        return real(dem, *a, **k)

    monkeypatch.setattr(viewshed_mod, "visible_from_posts", spy)
    road_exposure(_roads(), _origin(), hills, posts=_posts(), hours=0.8, tile_m=1_500.0)
    assert len(grids) > 16
    assert all(np.shares_memory(g.array, hills.array) for g in grids)
    assert max(g.array.size for g in grids) < hills.array.size / 2


def test_tiles_read_from_a_file_give_the_one_window_run(hills, tmp_path, monkeypatch):
    import gapmap.tiles as tiles_mod

    _write_tif(tmp_path / "dem.tif", hills.array)
    roads, base, posts = _roads(), _origin(), _posts()
    want = road_exposure(roads, base, hills, posts=posts, hours=0.8)
    whole_file = road_exposure(roads, base, tmp_path / "dem.tif", posts=posts, hours=0.8)
    _assert_same(whole_file, want)
    reads = []
    real = tiles_mod.read_window
    monkeypatch.setattr(tiles_mod, "read_window",
                        lambda *a: reads.append(a[1:]) or real(*a))
    got = road_exposure(roads, base, tmp_path / "dem.tif", posts=posts, hours=0.8,
                        tile_m=1_500.0)
    _assert_same(got, want)
    # windows only: each a tile of 30 cells grown by the longest range (3 km: 60 cells) and
    # four cells, at most 158 × 158 cells of the file's 240 × 320
    sizes = [(r1 - r0) * (c1 - c0) for r0, c0, r1, c1 in reads]
    assert len(reads) > 16 and max(sizes) <= 158 * 158 < hills.array.size / 3


def test_roads_across_a_dem_too_large_to_read_whole_run_in_tiles(tmp_path, monkeypatch,
                                                                 caplog):
    import gapmap.exposure as exposure_mod
    import gapmap.tiles as tiles_mod
    from gapmap.terrain import as_dem

    rows, cols = 200, 2_000  # 10 km × 100 km
    z = _hills(rows, cols)
    _write_tif(tmp_path / "dem.tif", z)
    y = Y0 + 5_013.0
    roads = gpd.GeoDataFrame({"name": ["long"]}, crs=UTM, geometry=[shapely.LineString(
        [(X0 + 100, y), (X0 + 50_000, y + 2_000), (X0 + 99_900, y - 1_000)])])
    posts = gpd.GeoDataFrame({"range_km": [2.0] * 6}, crs=UTM, geometry=[
        shapely.Point(X0 + 5_000 + 17_000 * i, y + 700 * (-1) ** i) for i in range(6)])
    base = gpd.GeoDataFrame(geometry=[shapely.Point(X0 + 30_000, y)], crs=UTM)
    unlimited = road_exposure(roads, base, tmp_path / "dem.tif", posts=posts, hours=0.5)
    # the one window (the whole file: 400,000 cells, 2 MB) and the walk's (all 200 rows ×
    # 2 × 6.2 km / 50 m + 7 = 255 columns) do not fit within 1 MB less; the walk and tiles of
    # a few hundred cells do
    import numba

    threads = numba.get_num_threads()
    one_window = exposure_memory_bytes(rows * cols, 200, 255, 87 ** 2, threads)
    limit_gb = (one_window - 1.0e6) / 1e9
    reads, walk_reads = [], []
    real = tiles_mod.read_window
    monkeypatch.setattr(tiles_mod, "read_window", lambda *a: reads.append(a[1:]) or real(*a))
    monkeypatch.setattr(exposure_mod, "as_dem",
                        lambda *a, **k: walk_reads.append(k) or as_dem(*a, **k))
    with caplog.at_level(logging.INFO, logger="gapmap.exposure"):
        got = road_exposure(roads, base, tmp_path / "dem.tif", posts=posts, hours=0.5,
                            max_memory_gb=limit_gb)
    _assert_same(got, unlimited)
    assert _tiles_logged(caplog)[-1] >= 3
    # the walk's window read alone (6 km + 4 cells around the origin), and tiles' windows
    walk = [k for k in walk_reads if k.get("bounds") is not None]
    assert len(walk) == 1
    b = walk[0]["bounds"]
    assert b[2] - b[0] == pytest.approx(2 * 6_200, abs=1)
    tile_reads = [(r1 - r0) * (c1 - c0) for r0, c0, r1, c1 in reads]
    assert tile_reads and max(tile_reads) < rows * cols / 2
    assert 0 < got.summary["seen_km"] < got.summary["road_km"]


def test_the_formula_counts_the_walk_one_tile_and_the_viewsheds():
    assert exposure_memory_bytes(10, 4, 4) == pytest.approx(BASE_BYTES + 5 * 10 + 40 * 10 * 10)
    assert exposure_memory_bytes(10, 4, 4, 100, 3) == pytest.approx(
        BASE_BYTES + 5 * 10 + 40 * 10 * 10 + 2 * 100 * 3)


@pytest.fixture(scope="module")
def wide_files(tmp_path_factory):
    """A 50 km × 50 km file and a 40 km road across it, with one post."""
    d = tmp_path_factory.mktemp("wide")
    _write_tif(d / "dem.tif", _hills(1_000, 1_000))
    y = Y0 + 25_025.0
    gpd.GeoDataFrame(geometry=[shapely.LineString([(X0 + 5_000, y), (X0 + 45_000, y)])],
                     crs=UTM).to_crs(4326).to_file(d / "roads.geojson")
    gpd.GeoDataFrame(geometry=[shapely.Point(X0 + 6_000, y)],
                     crs=UTM).to_crs(4326).to_file(d / "base.geojson")
    lon, lat = TO_LL.transform(X0 + 20_000.0, y + 500)
    (d / "posts.csv").write_text(f"name,latitude,longitude\nK1,{lat},{lon}\n")
    (d / "posts20.csv").write_text(f"name,latitude,longitude,range_km\nK1,{lat},{lon},20\n")
    return d


def test_a_tile_that_cannot_fit_is_refused_with_the_range_that_fits(wide_files):
    d = wide_files
    args = dict(posts=d / "posts.csv", hours=0.1, max_memory_gb=0.4205)
    with pytest.raises(InputError) as err:
        road_exposure(d / "roads.geojson", d / "base.geojson", d / "dem.tif", range_km=20.0,
                      **args)
    msg = str(err.value)
    assert msg.startswith("--max-memory-gb: a tile of the roads (64×64 cells") and "\n" not in msg
    assert "grown by 404 cells for posts of range 20 km" in msg and "0.42 GB allowed" in msg
    fit = float(msg.split("posts of range up to ")[1].split(" km")[0])
    assert 0.5 < fit < 20
    ok = road_exposure(d / "roads.geojson", d / "base.geojson", d / "dem.tif", range_km=fit,
                       **args)
    assert ok.summary["posts"] == 1 and ok.summary["road_km"] > 39


def test_cli_a_tile_that_cannot_fit_exit_2_one_line(wide_files, tmp_path):
    from click.testing import CliRunner

    from gapmap.cli import main

    d = wide_files
    out = tmp_path / "o"
    proc = CliRunner().invoke(main, [
        "exposure", "--roads", str(d / "roads.geojson"), "--origin", str(d / "base.geojson"),
        "--dem", str(d / "dem.tif"), "--posts", str(d / "posts20.csv"),
        "--hours", "0.1", "--max-memory-gb", "0.4205", "--out", str(out)])
    assert proc.exit_code == 2, proc.output
    lines = [x for x in proc.output.splitlines() if x.startswith("gapmap: error")]
    assert len(lines) == 1, proc.output
    for words in ("a tile of the roads", "needs about", "posts of range up to",
                  "--max-memory-gb"):
        assert words in lines[0], lines[0]
    assert "Traceback" not in proc.output and not out.exists()


def test_road_off_the_dem_and_over_nodata_counts_alike(hills, tmp_path):
    import rasterio

    z = hills.array.copy()
    z[100:140, 150:200] = np.nan          # a hole across the east-west road
    z[20:40, 60:90] = -32768.0            # nodata by the file's tag
    with rasterio.open(tmp_path / "dem.tif", "w", driver="GTiff", height=240, width=320,
                       count=1, dtype="float32", crs="EPSG:32638", transform=_transform(240),
                       nodata=-32768.0) as dst:
        dst.write(z, 1)
    mem = Dem(np.where(z == -32768.0, np.nan, z), _transform(240), UTM)
    roads = _roads()
    # the bent road runs on beyond the DEM's east edge (X0 + 16 km)
    roads.loc[7, "geometry"] = shapely.LineString([(X0 + 300, Y0 + 600), (X0 + 6_000, Y0 + 9_000),
                                                   (X0 + 19_500, Y0 + 11_500)])
    base, posts = _origin(), _posts()
    with pytest.warns(UserWarning, match="off the DEM"):
        want = road_exposure(roads, base, mem, posts=posts, hours=0.8)
    assert want.summary["off_dem_km"] > 3.5
    assert want.pieces["hours_from_origin"].isna().any()
    for dem in (mem, tmp_path / "dem.tif"):
        with pytest.warns(UserWarning, match="off the DEM"):
            got = road_exposure(roads, base, dem, posts=posts, hours=0.8, tile_m=1_500.0)
        _assert_same(got, want)


def test_several_dates_share_the_tiles_and_give_each_date_s_run(hills, tmp_path):
    from gapmap.exposure import road_exposure_on_dates

    _write_tif(tmp_path / "dem.tif", hills.array)
    posts = _posts()
    posts["active_to"] = ["2017-10-25", None, "2017-10-25", None, None, "2017-10-25"]
    dates = ["2017-10-20", "2017-10-31"]
    runs = road_exposure_on_dates(_roads(), _origin(), tmp_path / "dem.tif", posts=posts,
                                  dates=dates, hours=0.8, tile_m=2_000.0)
    for d in dates:
        _assert_same(runs[d], road_exposure(_roads(), _origin(), hills, posts=posts,
                                            posts_date=d, hours=0.8))
    assert runs[dates[0]].summary["seen_km"] > runs[dates[1]].summary["seen_km"] > 0
