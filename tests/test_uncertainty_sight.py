"""The posts' lines of sight that ``gapmap uncertainty`` computes once per run: grouped
coverage calls give each post exactly the view one ``viewshed.coverage`` call of its own gives."""

from __future__ import annotations

from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import shapely
from affine import Affine

from gapmap.settings import Settings
from gapmap.terrain import Dem
from gapmap.uncertainty import _disjoint_groups, _sight
from gapmap.viewshed import coverage

CELL = 30.0


def _terrain(n: int = 160) -> Dem:
    """Rolling hills with a ridge and a nodata hole: views with shadows, not open discs."""
    y, x = np.mgrid[0:n, 0:n].astype(np.float32)
    z = 40 * np.sin(x / 9.0) * np.cos(y / 13.0) + 0.8 * np.abs(x - n / 2)
    z[100:106, 20:30] = np.nan
    return Dem(z.astype(np.float32), Affine(CELL, 0, 500_000, 0, -CELL, 4_000_000), "EPSG:32638")


def _analysis(dem: Dem) -> SimpleNamespace:
    t = dem.transform
    # cells (row, col): two posts whose windows overlap, two far apart, one on nodata, one
    # off the grid; ranges and heights differ per post
    cells = [(40, 40), (45, 50), (120, 130), (20, 140), (102, 25), (-50, 10)]
    pts = [shapely.Point(*(t @ (c + 0.5, r + 0.5))) for r, c in cells]
    posts = gpd.GeoDataFrame({"range_km": [1.2, 0.9, 1.5, 0.6, 1.0, 1.0],
                              "height_m": [10.0, 25.0, 5.0, 15.0, 10.0, 10.0]},
                             geometry=pts, crs=dem.crs)
    return SimpleNamespace(crs=dem.crs, posts=posts, settings=Settings())


def test_grouped_views_equal_one_coverage_call_per_post():
    dem = _terrain()
    an = _analysis(dem)
    factor = 1.2
    s = _sight(an, dem, factor)
    assert list(s.offset[4:]) == [-1, -1]  # on nodata, off the grid: they see nothing
    t = dem.transform
    diag = float(np.hypot(t.a, t.e))
    seen_some = 0
    for i in range(4):
        row, col = s.row0[i], s.col0[i]
        h, w = s.height[i], s.width[i]
        window = Dem(dem.array[row:row + h, col:col + w], t @ Affine.translation(col, row),
                     dem.crs)
        r_km = (an.posts["range_km"].iloc[i] * 1000.0 * factor + diag) / 1000.0
        # the reference: this post alone, over its own window, at its largest drawn range
        ref = coverage(window, an.posts.iloc[[i]].assign(range_km=r_km),
                       target_height_m=an.settings.target_height_m).visible.astype(bool)
        n = h * w
        bits = np.unpackbits(s.bits)[s.offset[i]:s.offset[i] + n].reshape(h, w).astype(bool)
        assert np.array_equal(bits, ref), i
        # a view with shadows: neither nothing nor the whole window
        assert 0 < bits.sum() < n
        seen_some += 1
    assert seen_some == 4


def test_disjoint_groups_cover_each_post_once_without_overlap():
    rng = np.random.default_rng(3)
    n = 200
    row0, col0 = rng.integers(0, 500, n), rng.integers(0, 500, n)
    hh, ww = rng.integers(1, 80, n), rng.integers(1, 80, n)
    ok = rng.random(n) < 0.9
    groups = _disjoint_groups(row0, col0, hh, ww, ok)
    members = np.concatenate(groups)
    assert sorted(members.tolist()) == np.flatnonzero(ok).tolist()
    for g in groups:
        for a in g:
            for b in g:
                if a < b:  # boxes are half-open: touching edges are not an overlap
                    assert (row0[a] + hh[a] <= row0[b] or row0[b] + hh[b] <= row0[a]
                            or col0[a] + ww[a] <= col0[b] or col0[b] + ww[b] <= col0[a])
    # first fit packs: fewer groups than posts, and overlapping boxes do get split
    assert 1 < len(groups) < ok.sum()
