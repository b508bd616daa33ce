"""Scenario files: paths relative to the file, sides and parameters, every mistake named."""

from __future__ import annotations

import pytest

from gapmap import InputError, Settings, analyze, parse_side
from gapmap.scenario import load_scenario, make_scenario, run_scenario

from . import scenes

TOML = """
[layers]
zones = "zones.geojson"
study_area = "area.geojson"

[sides]
a = "krg=peshmerga"
b = "federal=isf"

[parameters]
reach_km = 3
min_length_km = 0.5
"""


@pytest.fixture
def scenario_dir(tmp_path):
    scenes.strips().to_file(tmp_path / "zones.geojson", driver="GeoJSON")
    scenes.strips_area().to_file(tmp_path / "area.geojson", driver="GeoJSON")
    (tmp_path / "s.toml").write_text(TOML)
    return tmp_path


def test_paths_are_relative_to_the_file_and_values_typed(scenario_dir):
    sc = load_scenario(scenario_dir / "s.toml")
    assert sc.zones == scenario_dir / "zones.geojson"
    assert sc.study_area == scenario_dir / "area.geojson"
    assert sc.side_a == parse_side("krg=peshmerga") and sc.side_b.forces == ("isf",)
    assert sc.settings == Settings(reach_km=3.0, min_length_km=0.5)
    assert sc.inputs() == {"zones": str(scenario_dir / "zones.geojson"),
                           "study_area": str(scenario_dir / "area.geojson"),
                           "scenario": str(scenario_dir / "s.toml")}
    assert sc.read_incidents() is None


def test_overrides_win_over_the_file(scenario_dir):
    sc = load_scenario(scenario_dir / "s.toml", reach_km=11, side_b="federal=isf,pmf")
    assert sc.settings.reach_km == 11 and sc.side_b.forces == ("isf", "pmf")
    assert load_scenario(scenario_dir / "s.toml", reach_km=None).settings.reach_km == 3


def test_run_scenario_equals_analyze_on_the_same_layers(scenario_dir):
    res = run_scenario(load_scenario(scenario_dir / "s.toml"))
    ref = analyze(scenes.strips(), parse_side("krg=peshmerga"), parse_side("federal=isf"),
                  study_area=scenes.strips_area(), settings=Settings(reach_km=3, min_length_km=0.5))
    for key in ("seam_length_km", "unguarded_length_km", "width_mean_km", "gap_area_km2"):
        assert res.summary[key] == pytest.approx(ref.summary[key], rel=1e-9), key
    assert res.to_dict()["inputs"]["scenario"].endswith("s.toml")


@pytest.mark.parametrize("text, field", [
    ('[layers]\nzone = "z.geojson"\n', "layers.zone"),
    ('[layers]\nzones = "z.geojson"\n[sides]\nc = "x=y"\n', "sides.c"),
    ('[layers]\nzones = "z.geojson"\n[parameters]\nreach = 2\n', "parameters.reach"),
    ('[layers]\nzones = "z.geojson"\n[extra]\n', "extra"),
    ('[layers]\nzones = "z.geojson"\n[sides]\na = "krg=peshmerga"\n', "side_b"),
    ('[sides]\na = "krg=peshmerga"\nb = "f=isf"\n', "zones"),
    ('[layers]\nzones = "z.geojson"\n[sides]\na = "k=p"\nb = "f=i"\n[parameters]\n'
     'reach_km = "far"\n', "reach_km"),
    ("[layers\n", "TOML"),
])
def test_mistakes_are_input_errors_naming_the_key(tmp_path, text, field):
    (tmp_path / "bad.toml").write_text(text)
    with pytest.raises(InputError, match=field):
        load_scenario(tmp_path / "bad.toml")


def test_missing_file_and_make_scenario(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_scenario(tmp_path / "none.toml")
    sc = make_scenario(zones="z.geojson", side_a="a=x", side_b="b=y", types="armed clash",
                       max_width_km=50)
    assert sc.types == ("armed clash",) and sc.settings.max_width_km == 50.0
    # A number given as text is refused: a scenario file says what it means in TOML types.
    with pytest.raises(InputError, match="must be a number"):
        make_scenario(zones="z.geojson", side_a="a=x", side_b="b=y", max_width_km="50")
