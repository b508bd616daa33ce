"""Hostile data stay data: nothing from the inputs is evaluated as a template, run as a
script, or shown other than literally, on the map and the report; and no module builds a
template from a runtime string."""

from __future__ import annotations

import ast
import html
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gapmap.hotspots import monthly_counts
from gapmap.maps import make_map, render_html, save_map
from gapmap.report import render_report, write_report

from .chromium import browser  # noqa: F401 (a fixture)
from .payloads import (EXPR, assert_inert_in_browser, assert_no_live_markup,
                       assert_not_evaluated, data_block, data_strings, hostile, hostile_scene)

SRC = Path(__file__).resolve().parents[1] / "src" / "gapmap"
MAP_FIELDS = ("title", "zone1", "zone2", "forceA", "forceB1", "sideA", "sideB", "post", "site",
              "actor", "location", "source", "notes", "note", "route", "hexagon",
              "sourcename", "licence", "river", "road")
#: Fields that travel as plain text (labels: the page sets them as textContent).
LABEL_FIELDS = ("place", "governorate", "district")
REPORT_FIELDS = ("title", "sideA", "sideB", "forceA", "forceB1", "note", "site", "file", "layer")


@pytest.fixture(scope="module")
def scene():
    return hostile_scene()


def _extra_layers(scene):
    """Routes and hot-spot hexagons whose text columns are hostile too."""
    import geopandas as gpd
    import shapely

    from .conftest import UTM38, X0, Y0

    routes = gpd.GeoDataFrame({"corridor_id": [hostile("route")]},
                              geometry=[shapely.LineString([(X0 + 10e3, Y0 + 80e3),
                                                            (X0 + 30e3, Y0 + 80e3)])], crs=UTM38)
    hexes = gpd.GeoDataFrame({"hex_id": [hostile("hexagon")], "gi_z": [3.0], "p_sim": [0.001],
                              "hot": [True], "cold": [False]},
                             geometry=[shapely.Point(X0 + 20e3, Y0 + 40e3).buffer(5e3, 3)],
                             crs=UTM38)
    from types import SimpleNamespace

    from gapmap.sources import Source

    places = gpd.GeoDataFrame({"name": [hostile("place"), "Plain town"],
                               "population": [200_000.0, 1_000.0]},
                              geometry=[shapely.Point(X0 + 5e3, Y0 + 30e3),
                                        shapely.Point(X0 + 45e3, Y0 + 70e3)], crs=UTM38)
    areas = gpd.GeoDataFrame({"ADM1_EN": [hostile("governorate")] * 2,
                              "ADM2_EN": [hostile("district"), "Plain district"]},
                             geometry=[shapely.box(X0 - 20e3, Y0, X0 + 60e3, Y0 + 50e3),
                                       shapely.box(X0 - 20e3, Y0 + 50e3, X0 + 60e3,
                                                   Y0 + 100e3)], crs=UTM38)
    rivers = gpd.GeoDataFrame({"name": [hostile("river")]},
                              geometry=[shapely.LineString([(X0 + 50e3, Y0),
                                                            (X0 + 50e3, Y0 + 100e3)])],
                              crs=UTM38)
    pieces = gpd.GeoDataFrame({"road": [hostile("road")], "hours_from_origin": [1.0],
                               "reachable": [True], "seen": [False], "exposed": [True],
                               "length_km": [20.0]},
                              geometry=[shapely.LineString([(X0 + 15e3, Y0 + 5e3),
                                                            (X0 + 15e3, Y0 + 25e3)])],
                              crs=UTM38)
    sources = (Source("zones", hostile("sourcename"), hostile("licence")),)
    return {"routes": routes, "hotspots": hexes, "places": places, "areas": areas,
            "water": SimpleNamespace(rivers=rivers, lakes=None), "sources": sources,
            "exposure": SimpleNamespace(pieces=pieces, summary={})}


def _map_page(scene) -> str:
    m = make_map(scene["analysis"], incidents=scene["incidents"], placement=scene["sites"],
                 title=scene["title"], **_extra_layers(scene))
    return render_html(m)


def test_map_page_keeps_every_field_as_data(scene):
    page = _map_page(scene)
    assert_not_evaluated(page)
    assert_no_live_markup(page)
    shown = "\n".join(data_strings(data_block(page)))
    for tag in MAP_FIELDS:
        assert hostile(tag) in shown, tag
    labels = [lb["text"] for v in data_block(page).values()
              if isinstance(v, dict) and "labels" in v for lb in v["labels"]]
    for tag in LABEL_FIELDS:
        assert hostile(tag) in labels, tag
    assert f"<title>{html.escape(hostile('title'))}</title>" in page
    # The page's executable scripts hold none of the data (only the JSON block does).
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
    assert len(scripts) >= 3  # Leaflet, folium's, gapmap's runtime
    for code in scripts:
        for piece in ("zq{{7*7}}qz", "gapmap-pwned", "__pwned"):
            assert piece not in code.lower()
    # Inline scripts are admitted by hash only.
    csp = page.split("Content-Security-Policy", 1)[1].split(">", 1)[0]
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    assert "'sha256-" in csp


def test_report_page_keeps_every_field_as_data(scene):
    page = render_report(scene["analysis"], incidents=scene["incidents"],
                         placement=scene["sites"], title=scene["title"],
                         monthly=monthly_counts(scene["incidents"]), dpi=50)
    assert_not_evaluated(page)
    assert_no_live_markup(page)
    assert "<script" not in page
    text = html.unescape(page)
    for tag in REPORT_FIELDS:
        assert hostile(tag) in text, tag


_POPUPS_JS = """
    var map = Object.values(window).find(function (v) { return v instanceof L.Map; });
    var out = [];
    map.eachLayer(function (l) {
        if (l.feature && l.getPopup && l.getPopup()) {
            l.openPopup(map.getCenter());
            var el = l.getPopup().getElement();
            out.push(el ? el.querySelector('.leaflet-popup-content').textContent : '');
            l.closePopup();
        }
    });
    var cluster = Object.values(window).find(function (v) {
        return v instanceof L.MarkerClusterGroup; });
    var mk = cluster.getLayers()[0];
    var pop = L.popup().setLatLng(mk.getLatLng()).setContent(mk.getPopup()._content(mk));
    pop.openOn(map);
    out.push(pop.getElement().querySelector('.leaflet-popup-content').textContent);
    out.push(document.querySelectorAll('.leaflet-popup-content img, .gm-panel img').length);
    return out;
"""


@pytest.mark.browser
def test_pages_are_inert_in_the_browser(browser, scene, tmp_path):  # noqa: F811
    path = save_map(make_map(scene["analysis"], incidents=scene["incidents"],
                             placement=scene["sites"], title=scene["title"],
                             **_extra_layers(scene)), tmp_path / "map.html")
    visible = [hostile(t) for t in ("title", "sideA", "sideB", "forceA")]
    assert_inert_in_browser(browser, path, [])
    panels = browser.execute_script(
        "return Array.from(document.querySelectorAll('.gm-panel')).map("
        "function (e) { return e.textContent; }).join('\\n')")
    for lit in visible:
        assert lit in panels
    popups = browser.execute_script(_POPUPS_JS)
    assert popups[-1] == 0  # no <img> from the data became an element
    text = "\n".join(popups[:-1])
    assert_not_evaluated(text)
    for tag in ("zone1", "zone2", "post", "site", "route", "hexagon", "actor", "location",
                "source", "notes", "road"):
        assert hostile(tag) in text, tag
    # Place names, governorates and districts as label text; the credits in the
    # attribution line: as typed, no element made from them.
    shown = browser.execute_script(
        "return [Array.from(document.querySelectorAll('.gm-lab-text')).map("
        "function (e) { return e.textContent; }).join('\\n'),"
        " document.querySelector('.leaflet-control-attribution').textContent,"
        " document.querySelectorAll('.gm-lab img, .leaflet-control-attribution img').length]")
    for tag in ("place", "governorate", "district"):
        assert hostile(tag) in shown[0], tag
    assert f"{hostile('sourcename')} ({hostile('licence')})" in shown[1]
    assert shown[2] == 0
    assert_not_evaluated(shown[0] + shown[1])
    # {{7*7}} in a zone name shows as typed.
    zone = next(t for t in popups[:-1] if "zone1" in t)
    assert EXPR in zone and "ZQ49QZ" not in zone
    assert browser.execute_script("return typeof window.__pwned") == "undefined"

    report = write_report(scene["analysis"], tmp_path / "report.html", title=scene["title"],
                          placement=scene["sites"], dpi=50)
    shown = assert_inert_in_browser(browser, report, [hostile("title"), hostile("file")])
    assert shown.count(EXPR) >= 5
    assert browser.execute_script("return document.scripts.length") == 0


# --------------------------------------------------------------------------------------------
# lint: templates only from literal text

# Calls that compile their first argument as a template.
_TEMPLATE_CALLS = {"Template", "from_string", "Element", "MacroElement"}
# folium/branca elements whose templates embed their arguments (text, HTML, data).
_FORBIDDEN_CALLS = {"GeoJson", "GeoJsonPopup", "GeoJsonTooltip", "Popup", "Tooltip", "Html",
                    "IFrame", "JsCode", "Marker", "DivIcon", "TopoJson", "Choropleth"}


def _constants(tree: ast.Module) -> set[str]:
    """Module-level names bound once to a literal string."""
    out = set()
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            out.add(node.targets[0].id)
    return out


def template_problems(source: str, name: str = "<module>") -> list[str]:
    """Where a module builds a template from anything but literal text, uses a folium
    element that embeds its data in a template, or a Jinja environment without autoescape."""
    tree = ast.parse(source)
    consts = _constants(tree)
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        fname = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
        where = f"{name}:{node.lineno} {fname}"
        if fname in _FORBIDDEN_CALLS:
            out.append(f"{where}: element embeds its arguments in a template")
        elif fname in _TEMPLATE_CALLS and node.args:
            arg = node.args[0]
            literal = isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            if not (literal or (isinstance(arg, ast.Name) and arg.id in consts)):
                out.append(f"{where}: template from a runtime value")
        elif fname == "Environment":
            auto = [k for k in node.keywords if k.arg == "autoescape"]
            if not auto or (isinstance(auto[0].value, ast.Constant) and not auto[0].value.value):
                out.append(f"{where}: Jinja environment without autoescape")
    return out


def test_lint_finds_templates_built_from_runtime_strings():
    bad = ("from jinja2 import Environment, Template\n"
           "T = 'fixed {{ x }}'\n"
           "def f(name):\n"
           "    Template(f'<b>{name}</b>')\n"
           "    Template(T)\n"
           "    Environment().from_string('<b>' + name)\n"
           "    folium.Popup(name)\n")
    problems = template_problems(bad)
    assert len(problems) == 4, problems  # the f-string, the concatenation, Popup, Environment
    assert not any(":5 " in p for p in problems)  # Template(T) of a literal is fine


def test_no_module_builds_templates_from_runtime_strings():
    problems = [p for path in sorted(SRC.rglob("*.py"))
                for p in template_problems(path.read_text(encoding="utf-8"),
                                           str(path.relative_to(SRC)))]
    assert problems == []


def test_renderers_only_draw():
    """maps, figures, report and style import no analysis and no other module's private
    names; drawing a PNG or a report does not import folium."""
    analysis = {"viewshed", "routes", "placement", "corridors", "frontier", "scenario"}
    for mod in ("maps", "figures", "report", "style"):
        tree = ast.parse((SRC / f"{mod}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.level or 0) >= 1:
                target = (node.module or "").split(".")[0]
                assert target not in analysis, f"{mod} imports {target}"
                assert target != "incidents" or mod == "maps", f"{mod} imports incidents"
                assert not any(a.name.startswith("_") for a in node.names
                               if a.name != "__version__"), f"{mod}: {node.module}"
                if target == "hotspots":
                    assert [a.name for a in node.names] == ["plot_monthly"], mod
                if target == "incidents":  # dates printed at their precision, nothing else
                    assert [a.name for a in node.names] == ["format_dates"], mod
    code = ("import sys, gapmap.figures, gapmap.report, gapmap.style\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('folium', 'branca')))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert p.stdout.strip() == "[]"
