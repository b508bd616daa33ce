"""Sources and licences of the inputs: scenario tables, sidecar files, the sample's credits."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gapmap.errors import InputError
from gapmap.scenario import load_scenario
from gapmap.sources import Source, attribution, modelled_terrain, read_sources, sidecar_path

from .conftest import GEODATA
from .scenes import strips

EXE = str(Path(sys.executable).with_name("gapmap"))

SCENARIO = """\
[layers]
zones = "zones.geojson"
[sides]
a = "A=peshmerga"
b = "B=isf"
"""


@pytest.fixture
def scene(tmp_path):
    strips().to_file(tmp_path / "zones.geojson", driver="GeoJSON")
    return tmp_path


def _write(d: Path, extra: str = "") -> Path:
    p = d / "scenario.toml"
    p.write_text(SCENARIO + extra, encoding="utf-8")
    return p


def test_sidecar_then_table_field_by_field(tmp_path):
    layer = tmp_path / "dem.tif"
    sidecar_path(layer).write_text(json.dumps(
        {"name": "SRTM", "license": "public domain", "date": "2000-02"}), encoding="utf-8")
    got = read_sources({"dem": {"date": "2000-02-11", "note": "void-filled"}}, {"dem": layer})
    assert got == (Source("dem", "SRTM", "public domain", date="2000-02-11",
                          note="void-filled"),)


def test_toml_dates_and_layer_order(scene):
    p = _write(scene, '[sources.zones]\nname = "OCHA COD-AB"\ndate = 2019-06-03\n')
    sc = load_scenario(p)
    (src,) = read_sources(sc.sources, sc.layer_files())
    assert (src.layer, src.date) == ("zones", "2019-06-03")


@pytest.mark.parametrize("extra, field", [
    ('[sources.rivers]\nname = "HydroRIVERS"\n', "sources.rivers"),      # not a layer at all
    ('[sources.posts]\nname = "Survey"\n', "sources.posts"),             # layer not given
    ('[sources.zones]\nname = "X"\ncolour = "red"\n', "sources.zones.colour"),
    ('[sources.zones]\nlicence = "CC BY 4.0"\n', "sources.zones.name"),
    ('[sources.zones]\nname = ["a", "b"]\n', "sources.zones.name"),
    ('[sources]\nzones = "COD-AB"\n', "sources.zones"),
])
def test_bad_tables_are_input_errors(scene, extra, field):
    with pytest.raises(InputError) as e:
        load_scenario(_write(scene, extra))
    assert e.value.field == field
    assert str(scene / "scenario.toml") in str(e.value)


def test_a_bad_sidecar_names_itself(scene):
    sidecar_path(scene / "zones.geojson").write_text("{name: no quotes}", encoding="utf-8")
    with pytest.raises(InputError, match=r"zones\.geojson\.source\.json: not readable as JSON"):
        load_scenario(_write(scene))


def test_cli_refuses_a_table_for_a_missing_layer_in_one_line(scene):
    cfg = _write(scene, '[sources.roads]\nname = "OSM"\nlicence = "ODbL"\n')
    out = scene / "out"
    p = subprocess.run([EXE, "metrics", "--config", str(cfg), "--out", str(out)],
                       capture_output=True, text=True)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "sources.roads" in lines[0] and "Traceback" not in p.stderr
    assert "add the layer under [layers]" in lines[0]
    assert not out.exists()


def test_a_layer_replaced_on_the_command_line_drops_its_table(scene):
    other = scene / "other.geojson"
    strips().to_file(other, driver="GeoJSON")
    p = _write(scene, '[sources.zones]\nname = "OCHA COD-AB"\n')
    assert load_scenario(p).sources == {"zones": {"name": "OCHA COD-AB"}}
    assert load_scenario(p, zones=other).sources == {}
    # The same file given again keeps it.
    assert "zones" in load_scenario(p, zones=scene / "zones.geojson").sources


def test_run_sources_from_a_scenario_and_from_layers(scene):
    from gapmap import Run, parse_side

    sidecar_path(scene / "zones.geojson").write_text(
        json.dumps({"name": "Field survey", "licence": "CC BY 4.0"}), encoding="utf-8")
    run = Run(load_scenario(_write(scene)))
    assert [s.credit() for s in run.sources] == ["Field survey (CC BY 4.0)"]
    mem = Run.from_layers(strips(), parse_side("A=peshmerga"), parse_side("B=isf"),
                          sources={"zones": {"name": "Drawn by hand"}})
    assert mem.sources == (Source("zones", "Drawn by hand"),)
    with pytest.raises(InputError, match="sources.dem"):
        Run.from_layers(strips(), parse_side("A=peshmerga"), parse_side("B=isf"),
                        sources={"dem": {"name": "SRTM"}})


def test_attribution_lists_each_credit_once():
    s = [Source("zones", "OCHA COD-AB", "CC BY-IGO 3.0"), Source("posts", "Survey"),
         Source("study_area", "OCHA COD-AB", "CC BY-IGO 3.0")]
    assert attribution(s) == "OCHA COD-AB (CC BY-IGO 3.0) · Survey"


def test_the_sample_credits_its_data_as_its_readme_does():
    from gapmap import Run

    run = Run(load_scenario(GEODATA / "scenario.toml"))
    by_layer = {s.layer: s for s in run.sources}
    files = load_scenario(GEODATA / "scenario.toml").layer_files()
    assert set(by_layer) == set(files), "every shipped layer is credited"
    credits = attribution(run.sources)
    for c in ("UCDP GED (CC BY 4.0)", "OCHA COD-AB (CC BY-IGO 3.0)", "GeoNames (CC BY 4.0)"):
        assert c in credits
    readme = (GEODATA / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Sources, licences and attribution")[1].split("\n## ")[0]
    for s in run.sources:
        if s.licence:
            assert s.licence.replace(" ", "") in section.replace(" ", "").replace("*", ""), s
    assert "2019-06-03" in section and by_layer["study_area"].date == "2019-06-03"
    # The shipped terrain is synthetic: the DEM's source says so, and how coarse the real
    # relief under it is (ETOPO5, 5 arc-minutes: about 9 km at these latitudes).
    assert "synthetic" in by_layer["dem"].note.lower()
    assert re.search(r"terrain below \d+ km is modelled", modelled_terrain(run.sources))
    assert "5-arc-minute" in section or "5 arc-minute" in section
