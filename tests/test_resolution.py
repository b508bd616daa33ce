"""DEM resolution warnings: too coarse for the posts' ranges or across a corridor, once per run."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from affine import Affine

from gapmap import Settings, analyze, parse_side
from gapmap.errors import ResolutionWarning, ResultWarning
from gapmap.resolution import corridors_problem, posts_problem
from gapmap.terrain import Dem

from . import scenes
from .conftest import X0, Y0

A, B = parse_side("krg=peshmerga"), parse_side("federal=isf")


def _dem(cell_m: float) -> Dem:
    """Flat ground over the strips' study area (x −20…60 km, y 0…100 km) with ``cell_m`` cells."""
    w, h = int(np.ceil(90e3 / cell_m)), int(np.ceil(110e3 / cell_m))
    return Dem(np.full((h, w), 300.0, np.float32),
               Affine(cell_m, 0, X0 - 25e3, 0, -cell_m, Y0 + 105e3), "EPSG:32638")


def _caught(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [w for w in caught if issubclass(w.category, ResolutionWarning)]


def test_thresholds_by_hand():
    assert posts_problem(500.0, [5000.0]) is None  # exactly a tenth: fine
    assert "tenth" in posts_problem(501.0, [5000.0, 5000.0, 1.0e6])
    assert corridors_problem(1000.0, [3.0, 10.0]) is None  # exactly three cells: fine
    assert corridors_problem(1000.0, [2.9, 10.0]).startswith("1 of 2 corridors")
    assert issubclass(ResolutionWarning, ResultWarning)


def test_coarse_dem_for_posts_warns_once_per_run():
    """1 km cells, 5 km ranges: visibility meaningless. The viewsheds of the analysis and the
    run's own check tell it once."""
    posts = scenes.posts([(20, 50), (20, 20)], range_km=5.0)
    got = _caught(lambda: analyze(scenes.strips(), A, B, posts=posts,
                                  study_area=scenes.strips_area(), dem=_dem(1000.0),
                                  visibility=True))
    assert len(got) == 1 and "more than a tenth" in str(got[0].message)
    fine = _caught(lambda: analyze(scenes.strips(), A, B, posts=posts,
                                   study_area=scenes.strips_area(), dem=_dem(400.0),
                                   visibility=True))
    assert fine == []


def test_corridor_narrower_than_three_cells_warns():
    """Strips 2 km apart (no reach) on 1 km cells: the corridor is two cells across."""
    narrow = scenes.strips(gap_km=2.0)
    got = _caught(lambda: analyze(narrow, A, B, study_area=scenes.strips_area(),
                                  dem=_dem(1000.0), settings=Settings(reach_km=0)))
    assert len(got) == 1 and "narrower than 3 cells" in str(got[0].message)
    wide = _caught(lambda: analyze(scenes.strips(), A, B, study_area=scenes.strips_area(),
                                   dem=_dem(1000.0)))
    assert wide == []


def test_corridor_notice_gives_the_median_width_in_cells():
    """Widths 2, 2.5 and 10 km on 1 km cells: two narrower than 3 cells, the median 2.5 km
    (2.5 cells), so the DEM is too coarse for most corridors, not just for a few."""
    msg = corridors_problem(1000.0, [10.0, 2.0, 2.5, float("nan")])
    assert msg.startswith("2 of 3 corridors narrower than 3 cells of 1,000 m (3 km;")
    assert "the median corridor is 2.5 km wide, 2.5 cells" in msg
    # 450 m cells: the 2 km corridor is 4.4 cells across, none narrower than 1.35 km.
    assert corridors_problem(450.0, [10.0, 2.0, 2.5]) is None


def test_scene_notice_names_the_corridor_width_in_cells():
    """Strips 2 km apart (no reach) on 1 km cells: the one corridor is 2 km wide, 2 cells."""
    got = _caught(lambda: analyze(scenes.strips(gap_km=2.0), A, B,
                                  study_area=scenes.strips_area(), dem=_dem(1000.0),
                                  settings=Settings(reach_km=0)))
    assert len(got) == 1
    assert "1 of 1 corridors" in str(got[0].message)
    assert "the median corridor is 2 km wide, 2.0 cells" in str(got[0].message)
