"""The run's crossing searches in bounded memory: groups of corridors on windows that fit
``max_memory_gb``, with the answer of one search over the window of all corridors.

The scene: the two 100 km strips (seam at x = X0 + 20 km, 20 km wide) cut into four corridors
by three posts on the seam, over a DEM of 400 m cells with a ridge along the seam and a pass.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from affine import Affine
from click.testing import CliRunner

import gapmap
import gapmap.run as run_mod
from gapmap.cli import main
from gapmap.errors import InputError
from gapmap.routes import corridor_crossings, crossing_memory_bytes, crossing_windows
from gapmap.terrain import Dem
from gapmap.tiles import BASE_BYTES

from .conftest import UTM38, X0, Y0

CELL = 400.0
DEM_X0, DEM_Y0 = X0 - 10e3 - 100, Y0 - 26e3
NX, NY = 150, 380   # 60 km × 152 km: the strips and 26 km beyond their ends
POSTS_KM = [(20.0, 25.0), (20.0, 50.0), (20.0, 75.0)]


def _dem() -> Dem:
    xc = (np.arange(NX) + 0.5) * CELL + DEM_X0
    yc = DEM_Y0 + (NY - np.arange(NY) - 0.5) * CELL
    crest = X0 + 20e3
    z = np.tile(np.clip(300 * (1 - np.abs(xc - crest) / 2000), 0, None), (NY, 1))
    z[(yc > Y0 + 60e3) & (yc < Y0 + 62e3)] = 0.0          # a pass in the third corridor
    z += (0.002 * (yc[:, None] - Y0)).astype(np.float32)  # a gentle tilt north
    return Dem(z.astype(np.float32), Affine(CELL, 0, DEM_X0, 0, -CELL, DEM_Y0 + NY * CELL),
               UTM38)


def _layers():
    posts = gpd.GeoDataFrame({"force": ["isf"] * 3, "range_km": [3.0] * 3},
                             geometry=[shapely.Point(X0 + dx * 1e3, Y0 + dy * 1e3)
                                       for dx, dy in POSTS_KM], crs=UTM38)
    return gapmap.parse_side("krg=peshmerga"), gapmap.parse_side("federal=isf"), posts


def _run(strips, strips_area, **kw) -> gapmap.Run:
    a, b, posts = _layers()
    return gapmap.Run.from_layers(strips, a, b, posts=posts, study_area=strips_area,
                                  dem=_dem(), **kw)


def test_groups_fit_the_limit_and_give_the_single_windows_crossings(strips, strips_area,
                                                                    monkeypatch, caplog):
    one = _run(strips, strips_area)
    corridors = one.base.corridors
    assert len(corridors) >= 4
    dem = _dem()
    windows = crossing_windows(one.base)
    # one corridor's own window, by the formula (400 MB + 45 bytes a padded cell)
    r, c = dem.window(shapely.bounds(windows[0])).shape
    assert crossing_memory_bytes(r, c) == pytest.approx(BASE_BYTES + 45.0 * (r + 6) * (c + 6))
    biggest = max(crossing_memory_bytes(*dem.window(shapely.bounds(w)).shape) for w in windows)
    whole = crossing_memory_bytes(*dem.window(shapely.total_bounds(windows)).shape)
    # Halfway between the largest corridor's window and the window of all (beyond the 400 MB
    # of the process): neighbours' windows overlap by two thirds, so pairs fit merged.
    assert whole - BASE_BYTES > 1.5 * (biggest - BASE_BYTES)
    limit_gb = (BASE_BYTES + 0.5 * (whole + biggest - 2 * BASE_BYTES)) / 1e9

    seen: list = []
    real = run_mod.crossing_groups

    def spy(analysis, dem, limit, **kw):
        out = real(analysis, dem, limit, **kw)
        seen.append((out, limit, analysis, dem))
        return out

    monkeypatch.setattr(run_mod, "crossing_groups", spy)
    free = one.crossings
    # the machine's memory: overlapping windows merge until merging saves no cells
    assert len(seen[-1][0]) < len(corridors)
    with caplog.at_level(logging.INFO, logger="gapmap.run"):
        tight = _run(strips, strips_area, max_memory_gb=limit_gb).crossings
    groups, limit, analysis, cut = seen[-1]
    assert limit == pytest.approx(limit_gb * 1e9)
    assert 1 < len(groups) < len(analysis.corridors)  # several windows, some corridors merged
    assert sorted(i for g in groups for i in g) == list(range(len(analysis.corridors)))
    wins = crossing_windows(analysis)
    for g in groups:  # every group's window fits the limit by the formula
        box = shapely.total_bounds(wins[g])
        assert crossing_memory_bytes(*cut.window(box).shape) <= limit
    assert "windows for" in caplog.text
    # the reference: one search over the window of all corridors
    single = corridor_crossings(analysis, cut, groups=[list(range(len(analysis.corridors)))])
    assert np.isfinite(single.fields["crossing_hours"]).all()
    pd.testing.assert_frame_equal(tight.fields, single.fields, check_exact=False, rtol=1e-12)
    assert all(a.equals_exact(b, 1e-6) for a, b in
               zip(tight.routes.geometry.values, single.routes.geometry.values))
    np.testing.assert_allclose(tight.routes["km"], single.routes["km"], rtol=1e-12)
    pd.testing.assert_frame_equal(free.fields, single.fields, check_exact=False, rtol=1e-12)


def test_a_corridor_whose_window_cannot_fit_is_refused_with_the_figure(strips, strips_area):
    run = _run(strips, strips_area, max_memory_gb=0.42)
    windows = crossing_windows(run.base)
    dem = _dem()
    own = [crossing_memory_bytes(*dem.window(shapely.bounds(w)).shape) for w in windows]
    assert min(own) > 0.42e9  # not even the smallest corridor's own window fits
    with pytest.raises(InputError) as err:
        run.crossings
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("--max-memory-gb: the crossing search of corridor")
    assert "0.42 GB allowed" in msg
    # the figure is the formula's for some corridor's own window; what fits is said
    assert any(f"about {o / 1e9:.2f} GB" in msg for o in own)
    fit = int((0.42e9 - BASE_BYTES) / 45.0)
    assert f"about {fit:,} cells would fit" in msg


def test_bad_limit_is_refused_before_any_work(strips, strips_area):
    with pytest.raises(InputError, match="positive"):
        _run(strips, strips_area, max_memory_gb=0)


@pytest.fixture
def files(strips, strips_area, tmp_path):
    strips.to_file(tmp_path / "zones.geojson")
    strips_area.to_file(tmp_path / "area.geojson")
    _layers()[2].to_file(tmp_path / "posts.geojson")
    d = _dem()
    with rasterio.open(tmp_path / "dem.tif", "w", driver="GTiff", height=NY, width=NX, count=1,
                       dtype="float32", crs=f"EPSG:{UTM38}", transform=d.transform) as dst:
        dst.write(d.array, 1)
    return tmp_path


def _metrics(files, *extra):
    return CliRunner().invoke(main, [
        "metrics", "--zones", str(files / "zones.geojson"), "--side-a", "krg=peshmerga",
        "--side-b", "federal=isf", "--posts", str(files / "posts.geojson"), "--study-area",
        str(files / "area.geojson"), "--dem", str(files / "dem.tif"), "--out",
        str(files / "out"), *extra])


@pytest.mark.parametrize("value", ["-1", "0", "lots", "nan"])
def test_cli_bad_max_memory_exits_2_in_one_line(files, value):
    res = _metrics(files, "--max-memory-gb", value)
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "--max-memory-gb" in lines[0], res.output
    assert not (files / "out").exists()


def test_cli_refuses_a_run_that_cannot_fit(files):
    res = _metrics(files, "--max-memory-gb", "0.42")
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "needs about" in lines[0] and "cells would fit" in lines[0], \
        res.output
    assert not (files / "out" / "summary.json").exists()


def test_boxes_merge_only_where_they_overlap_and_save_cells():
    """Hand-computable boxes on a 1 m grid: two overlapping squares save cells and merge; an
    L of two long boxes touching at a corner would search far more ground merged and stays
    apart; a box far away is never merged; a ``fits`` that refuses every union merges nothing.
    """
    dem = Dem(np.zeros((100, 100), np.float32), Affine(1, 0, 0, 0, -1, 100), UTM38)
    boxes = [(0, 0, 10, 10), (5, 0, 15, 10), (50, 50, 60, 60), (0, 20, 10, 99),
             (0, 89, 99, 99)]
    groups, merged = run_mod._merge_boxes(dem, boxes, lambda b: True)
    assert groups == [[0, 1], [2], [3], [4]]
    assert merged[0] == (0, 0, 15, 10)
    groups, merged = run_mod._merge_boxes(dem, boxes, lambda b: False)
    assert groups == [[0], [1], [2], [3], [4]] and merged == boxes
    # three overlapping squares in a row end in one group, whatever the order of merging
    row = [(0, 0, 10, 10), (8, 0, 18, 10), (16, 0, 26, 10)]
    groups, merged = run_mod._merge_boxes(dem, row, lambda b: True)
    assert groups == [[0, 1, 2]] and merged == [(0, 0, 26, 10)]
    # ... unless the union of all three does not fit: then the best pair merges
    groups, _ = run_mod._merge_boxes(dem, row, lambda b: b[2] - b[0] <= 18)
    assert sorted(map(len, groups)) == [1, 2]
