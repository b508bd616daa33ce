"""Interactive map: layers, offline self-contained page, escaping of hostile data."""

from __future__ import annotations

import functools
import json
import logging
import re

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from affine import Affine
from click.testing import CliRunner
from pyproj import Transformer

from gapmap import GapmapError, InputError, Side, analyze, parse_side
from gapmap.cli import main
from gapmap.maps import (CLUSTER_MAX, _incident_data, force_colors, illustrative_notes, make_map,
                         render_html, save_map)

from .conftest import UTM38, X0, Y0

IMG = '<img src=x onerror="window.__pwned=1">'
SCRIPT = "<script>window.__pwned=2</script>"
NOTE = "illustrative layout, not an assessment " + SCRIPT


def strips_frames(hostile: bool = False):
    """Two 100 km strips 20 km apart (side B split in two forces), a study area, two posts."""
    names = [IMG, "south", SCRIPT] if hostile else ["north", "south", "south2"]
    force_b2 = IMG.lower() if hostile else "pmf"
    zones = gpd.GeoDataFrame(
        {"force": ["peshmerga", "isf", force_b2], "name": names,
         "note": [NOTE if hostile else "illustrative layout"] * 3},
        geometry=[shapely.box(X0, Y0, X0 + 10e3, Y0 + 100e3),
                  shapely.box(X0 + 30e3, Y0, X0 + 40e3, Y0 + 60e3),
                  shapely.box(X0 + 30e3, Y0 + 60e3, X0 + 40e3, Y0 + 100e3)], crs=UTM38)
    area = gpd.GeoDataFrame(geometry=[shapely.box(X0 - 20e3, Y0, X0 + 60e3, Y0 + 100e3)],
                            crs=UTM38)
    posts = gpd.GeoDataFrame({"range_km": [5.0, 5.0], "force": ["isf", "peshmerga"],
                              "name": [IMG if hostile else "p1", "p2"]},
                             geometry=[shapely.Point(X0 + 20e3, Y0 + 50e3),
                                       shapely.Point(X0 + 24e3, Y0 + 20e3)], crs=UTM38)
    side_b = Side("federal", ("isf", force_b2))
    return zones, area, posts, side_b


@functools.lru_cache(maxsize=4)
def strips_analysis(hostile: bool = False):
    """Analysis of the strips: seam at x = X0 + 20 km; corridors of 17, 22 and 45 km."""
    zones, area, posts, side_b = strips_frames(hostile)
    return analyze(zones, parse_side("krg=peshmerga"), side_b, posts=posts, study_area=area)


def incidents_frame(n: int, hostile: bool = False, seed: int = 0) -> gpd.GeoDataFrame:
    """n incidents spread over the strips, dated through 2020, in lon/lat."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(X0, X0 + 40e3, n)
    y = rng.uniform(Y0, Y0 + 100e3, n)
    notes = np.array(["attack on a checkpoint"] * n, dtype=object)
    if hostile:
        notes[::2] = IMG
        notes[1::2] = SCRIPT
    return gpd.GeoDataFrame(
        {"date": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 366, n), "D"),
         "type": "armed clash", "actor": ["IS " + SCRIPT if hostile else "IS"] * n,
         "fatalities": rng.integers(0, 5, n).astype(float), "notes": notes},
        geometry=gpd.points_from_xy(x, y), crs=UTM38).to_crs(4326)


def script_blocks(page: str) -> list[str]:
    return re.findall(r"<script>(.*?)</script>", page, flags=re.S)


def page_data(page: str) -> dict:
    """The page's JSON data block (every layer's features, popups, legend, panels) by key."""
    blocks = re.findall(r'<script type="application/json" id="gapmap-data">(.*?)</script>',
                        page, flags=re.S)
    assert len(blocks) == 1
    return json.loads(blocks[0])


# --------------------------------------------------------------------------------------------


def test_page_is_self_contained_and_offline(tmp_path):
    m = make_map(strips_analysis(), incidents=incidents_frame(50), title="Strips")
    out = save_map(m, tmp_path / "sub" / "map.html")
    page = out.read_text(encoding="utf-8")
    assert out.exists() and [p.name for p in out.parent.iterdir()] == ["map.html"]
    # Nothing is linked: every script and style is inline.
    assert not re.search(r"<script[^>]+src=", page)
    assert not re.search(r"<link[^>]+href=", page)
    markup = re.sub(r"<script>.*?</script>", "", page, flags=re.S)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", markup)
    assert "cdn." not in page and "cdnjs" not in page and "jquery" not in page.lower()
    # Leaflet, MarkerCluster and our own scripts are inside; the CSP forbids any request.
    assert "Leaflet 1.9.4" in page
    assert "markerClusterGroup" in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "connect-src 'none'" in page and "https://" not in page.split("img-src")[1][:60]
    # Leaflet's CSS images became data URIs.
    assert "url(images/" not in page and "url(data:image/png;base64," in page
    assert "sourceMappingURL" not in page


def test_layers_legend_and_headline():
    res = strips_analysis()
    m = make_map(res, title="Strips")
    page = render_html(m)
    names = [c.layer_name for c in m._children.values()
             if isinstance(c, folium.map.Layer) and c.control]
    assert names == ["Zones (by force)", "Gap region", "Seam (median line)",
                     "Unguarded corridors", "Posts and ranges"]
    assert "L.control.layers(" in page and "L.control.scale(" in page
    # Headline figures: 84 of 100 km unguarded, longest 45 km.
    s = res.summary
    assert f'{s["unguarded_length_km"]:,.1f} km' == "84.0 km"
    assert "84.0 km" in page and "45.0 km" in page and "84.0%" in page
    # Legend: each force with its side, the corridor ramp from 17 to 45 km, the illustrative tag.
    for label in ("peshmerga (krg)", "isf (federal)", "pmf (federal)"):
        assert label in page
    assert "17 km" in page and "45 km" in page
    assert "(illustrative)" in page and "illustrative layout" in page


def test_corridor_colours_follow_length():
    from matplotlib.colors import to_rgb

    res = strips_analysis()
    m = make_map(res)
    layer = next(c for c in m._children.values() if getattr(c, "layer_name", "")
                 == "Unguarded corridors")
    feats = layer.data["features"]
    assert len(feats) == 3
    # Corridor popups carry length and widths (45.01 km is the longest, listed first).
    pops = [f["properties"]["_popup"] for f in feats]
    top = res.corridors.loc[res.corridors["rank"] == 1, "corridor_id"].item()
    assert pops[0].startswith(f"<b>Corridor {top}</b>")
    assert "Length (km)</th><td>45.01" in pops[0] and "Width mean (km)</th><td>20" in pops[0]
    # Longer corridors are darker (YlOrRd): brightness falls with length 45 > 22 > 17 km.
    bright = [sum(to_rgb(layer.style_function(f)["color"])) for f in feats]
    assert bright[0] < bright[1] < bright[2]
    assert sorted(res.corridors["length_km"].round(1)) == [17.0, 22.0, 45.0]


def test_hostile_strings_are_escaped():
    res = strips_analysis(hostile=True)
    inc = incidents_frame(40, hostile=True)
    page = render_html(make_map(res, incidents=inc, title=SCRIPT))
    assert IMG not in page and IMG.lower() not in page
    # The only </script> closers are the page's own: one per <script> opener.
    assert page.count("</script>") == len(re.findall(r"<script[\s>]", page))
    assert "window.__pwned" in page  # the data are there, but only in escaped form
    for block in script_blocks(page):
        assert "<img" not in block and "<script" not in block.lower()
    # Escaped for HTML, then JSON-encoded with < > & as \\u escapes.
    assert "\\u0026lt;img src=x onerror=\\u0026quot;window.__pwned=1\\u0026quot;\\u0026gt;" in page
    assert "<title>&lt;script&gt;window.__pwned=2&lt;/script&gt;</title>" in page


def test_incident_modes_and_months():
    inc = gpd.GeoDataFrame({"date": pd.to_datetime(["2020-01-05", "2020-03-01", "2020-03-09",
                                                    None])},
                           geometry=gpd.points_from_xy([44.0, 44.1, 44.2, 44.3],
                                                       [35.0, 35.1, 35.2, 35.3]), crs=4326)
    d = _incident_data(inc, None, cluster_max=10)
    assert d["mode"] == "cluster"
    assert d["months"] == ["2020-01", "2020-02", "2020-03"]  # empty months kept
    assert d["month"] == [0, 2, 2, -2]  # undated: shown under "all months" only
    assert d["lat"] == [35.0, 35.1, 35.2, 35.3] and len(d["popup"]) == 4
    assert d["unit"] == "months"
    yearly = inc.assign(date_precision=["year", "day", "day", None])
    y = _incident_data(yearly, None, cluster_max=10)
    assert y["unit"] == "years" and y["months"] == ["2020"] and y["month"] == [0, 0, 0, -2]
    heat = _incident_data(inc, None, cluster_max=3)
    assert heat["mode"] == "heat" and heat["popup"] is None
    m = make_map(strips_analysis(), incidents=incidents_frame(30), cluster_max=10)
    page = render_html(m)
    assert "simpleheat" in page and "L.MarkerClusterGroup" not in page
    assert CLUSTER_MAX == 10_000


def test_large_incident_sets_stay_small():
    inc = incidents_frame(100_000)
    page = render_html(make_map(strips_analysis(), incidents=inc))
    size_mb = len(page.encode()) / 1e6
    assert size_mb < 20
    assert "Incidents, 100,000 (density" in page


def test_basemap_offline_wins(caplog):
    res = strips_analysis()
    with caplog.at_level(logging.WARNING, logger="gapmap.maps"):
        page = render_html(make_map(res, basemap="osm"))
    assert "tile.openstreetmap.org" not in page
    assert "offline" in caplog.text
    online = render_html(make_map(res, basemap="osm", offline=False))
    assert "https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png" in online
    assert "img-src data: blob: https://*.tile.openstreetmap.org" in online
    with pytest.raises(InputError, match="basemap"):
        make_map(res, basemap="satellite")
    # A map passed in with folium's default web tiles loses them when offline.
    page = render_html(make_map(res, m=folium.Map()))
    assert "tile.openstreetmap.org" not in page and "L.tileLayer(" not in page


def test_unshipped_plugin_fails_offline_and_leaves_no_file(tmp_path, caplog):
    from folium.plugins import Fullscreen

    m = make_map(strips_analysis())
    Fullscreen().add_to(m)
    target = tmp_path / "map.html"
    with pytest.raises(GapmapError, match="does not ship"):
        save_map(m, target)
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with caplog.at_level(logging.WARNING, logger="gapmap.maps"):
        save_map(m, target, offline=False)
    assert target.exists() and "external resources" in caplog.text


def test_raster_overlays_are_placed_at_their_bounds():
    res = strips_analysis()
    # A 40 × 100 km grid of 1 km cells over the strips; hillshade values 0–255.
    tr = Affine(1000, 0, X0, 0, -1000, Y0 + 100e3)
    shade = np.tile(np.linspace(1, 255, 40, dtype=np.float32), (100, 1))
    seen = np.zeros((100, 40), np.float32)
    seen[:, 15:25] = 2
    page = render_html(make_map(res, hillshade=(shade, tr, UTM38), coverage=(seen, tr, UTM38)))
    bounds = re.findall(r"L\.imageOverlay\(\s*\"data:image/png;base64,[A-Za-z0-9+/=]+\",\s*"
                        r"(\[\[.*?\]\])", page, flags=re.S)
    assert len(bounds) == 2
    t = Transformer.from_crs(UTM38, 4326, always_xy=True)
    lons, lats = t.transform([X0, X0 + 40e3, X0, X0 + 40e3], [Y0, Y0, Y0 + 100e3, Y0 + 100e3])
    for b in bounds:
        (s, w), (n, e) = json.loads(b)
        # The warped image covers the grid's lon/lat envelope (to a fraction of a cell).
        assert s == pytest.approx(min(lats), abs=0.01) and n == pytest.approx(max(lats), abs=0.01)
        assert w == pytest.approx(min(lons), abs=0.01) and e == pytest.approx(max(lons), abs=0.01)
    assert "Hillshade" in page and "Visible from posts" in page


def test_hotspots_routes_and_placement_layers():
    from types import SimpleNamespace

    res = strips_analysis()
    hexes = gpd.GeoDataFrame(
        {"hex_id": [1, 2, 3], "count": [9, 0, 1], "gi_z": [3.1, -2.5, 0.2],
         "p_sim": [0.001, 0.02, 0.6], "hot": [True, False, False], "cold": [False, True, False]},
        geometry=[shapely.Point(X0 + 20e3, Y0 + k * 20e3).buffer(5e3, 3) for k in (1, 2, 3)],
        crs=UTM38)
    route = gpd.GeoDataFrame({"corridor_id": ["C1"], "hours": [3.5]},
                             geometry=[shapely.LineString([(X0 + 10e3, Y0 + 80e3),
                                                           (X0 + 30e3, Y0 + 80e3)])], crs=UTM38)
    sites = gpd.GeoDataFrame({"rank": [1], "name": ["site " + SCRIPT], "gain_km": [10.0],
                              "range_km": [5.0]},
                             geometry=[shapely.Point(X0 + 20e3, Y0 + 80e3)], crs=UTM38)
    placement = SimpleNamespace(sites=sites, closed=None, unguarded_before_km=84.0,
                                unguarded_after_km=74.0)
    m = make_map(res, hotspots=hexes, routes=route, placement=placement)
    names = [c.layer_name for c in m._children.values()
             if isinstance(c, folium.map.Layer) and c.control]
    assert {"Hot spots (Gi*)", "Walking routes", "Proposed new posts"} <= set(names)
    page = render_html(m)
    assert "unguarded 84.0 \\u2192 74.0 km" in page  # JSON-escaped arrow
    assert SCRIPT not in page
    # Only the two significant hexagons are drawn.
    hot = [d["geojson"] for d in page_data(page).values() if "geojson" in d]
    hexlayers = [d for d in hot if d["features"] and "Hexagon" in
                 d["features"][0]["properties"].get("_popup", "")]
    assert len(hexlayers) == 1 and len(hexlayers[0]["features"]) == 2


def test_force_colours_and_notes():
    zones = pd.DataFrame({"force": ["isf", "pmf", "peshmerga", "other"],
                          "side": ["b", "b", "a", None]})
    c = force_colors(zones)
    assert c["peshmerga"].startswith("#2") and c["isf"] != c["pmf"] and c["other"] == "#737373"
    assert illustrative_notes(pd.DataFrame({"notes": ["event text"]})) == []
    assert illustrative_notes(pd.DataFrame({"Note": ["synthetic", None, "synthetic"]})) == [
        "synthetic"]


def test_map_command(tmp_path):
    zones, area, posts, _ = strips_frames()
    zones.to_file(tmp_path / "zones.geojson")
    area.to_file(tmp_path / "area.geojson")
    posts.to_file(tmp_path / "posts.geojson")
    csv = tmp_path / "events.csv"
    inc = incidents_frame(20)
    pd.DataFrame({"date": inc["date"].dt.strftime("%Y-%m-%d"), "latitude": inc.geometry.y,
                  "longitude": inc.geometry.x, "notes": [IMG] * 20}).to_csv(csv, index=False)
    out = tmp_path / "out" / "map.html"
    r = CliRunner().invoke(main, [
        "map", "--zones", str(tmp_path / "zones.geojson"), "--side-a", "krg=peshmerga",
        "--side-b", "federal=isf,pmf", "--posts", str(tmp_path / "posts.geojson"),
        "--study-area", str(tmp_path / "area.geojson"), "--incidents", str(csv),
        "--out", str(out), "--title", "Strips", "--basemap", "osm"])
    assert r.exit_code == 0, r.output
    page = out.read_text()
    assert "Map written to" in r.output
    assert "tile.openstreetmap.org" not in page  # offline by default
    assert "Incidents, 20" in page and IMG not in page
    help_text = CliRunner().invoke(main, ["map", "--help"]).output
    assert "--offline / --online" in help_text and "--basemap" in help_text
    bad = CliRunner().invoke(main, ["map", "--out", str(out)])
    assert bad.exit_code == 2 and "zones" in bad.output


def test_run_map_layers_feed_the_map(tmp_path):
    import rasterio

    from gapmap.incidents import Incidents
    from gapmap.scenario import make_scenario
    from gapmap.terrain import Dem
    from gapmap.viewshed import Coverage

    zones, area, posts, _ = strips_frames()
    for name, gdf in (("zones", zones), ("area", area), ("posts", posts)):
        gdf.to_file(tmp_path / f"{name}.geojson")
    inc = incidents_frame(60)
    csv = tmp_path / "events.csv"
    pd.DataFrame({"date": inc["date"].dt.strftime("%Y-%m-%d"), "latitude": inc.geometry.y,
                  "longitude": inc.geometry.x}).to_csv(csv, index=False)
    # A 500 m DEM over the strips: a ridge rising eastwards, 0–400 m.
    dem_path = tmp_path / "dem_synthetic.tif"
    z = np.tile(np.linspace(0, 400, 100, dtype=np.float32), (200, 1))
    with rasterio.open(dem_path, "w", driver="GTiff", width=100, height=200, count=1,
                       dtype="float32", crs=f"EPSG:{UTM38}",
                       transform=Affine(500, 0, X0 - 5e3, 0, -500, Y0 + 100e3)) as dst:
        dst.write(z, 1)
    sc = make_scenario(zones=tmp_path / "zones.geojson", side_a="krg=peshmerga",
                       side_b="federal=isf,pmf", posts=tmp_path / "posts.geojson",
                       study_area=tmp_path / "area.geojson", incidents=csv, dem=dem_path)
    from gapmap import Run

    layers = Run(sc, hex_km=20).map_layers(hillshade=True, coverage=True, hotspots=True)
    assert isinstance(layers["incidents"], Incidents) and len(layers["incidents"]) == 60
    assert isinstance(layers["hillshade"], Dem) and isinstance(layers["coverage"], Coverage)
    assert {"hex_id", "gi_z", "hot", "cold"} <= set(layers["hotspots"].columns)
    page = render_html(make_map(strips_analysis(), **layers))
    assert page.count("L.imageOverlay(") == 2
    assert 'Hillshade \\u003cspan class=\\"gm-note\\"\\u003e(synthetic)' in page
    assert "Incidents, 60" in page


def test_unknown_map_format_is_refused(tmp_path):
    with pytest.raises(InputError, match=r"unknown page format \.png.*\.html"):
        save_map(make_map(strips_analysis()), tmp_path / "map.png")
    zones, area, _, _ = strips_frames()
    zones.to_file(tmp_path / "zones.geojson")
    r = CliRunner().invoke(main, [
        "map", "--zones", str(tmp_path / "zones.geojson"), "--side-a", "krg=peshmerga",
        "--side-b", "federal=isf,pmf", "--out", str(tmp_path / "map.txt")])
    assert r.exit_code == 2 and "unknown page format .txt" in r.output, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zones.geojson"]


def test_hotspot_legend_lists_only_classes_present():
    hexes = gpd.GeoDataFrame(
        {"hex_id": [1, 2, 3], "gi_z": [3.1, 2.0, 0.2], "p_sim": [0.001, 0.03, 0.6],
         "hot": [True, True, False], "cold": [False, False, False]},
        geometry=[shapely.Point(X0 + 20e3, Y0 + k * 20e3).buffer(5e3, 3) for k in (1, 2, 3)],
        crs=UTM38)
    legend = next(d["html"] for d in page_data(render_html(make_map(
        strips_analysis(), hotspots=hexes))).values() if "gm-legend" in d.get("cls", ""))
    assert "hot, p &lt; 0.01" in legend and "hot, significant" in legend
    assert "cold" not in legend
    # No significant hexagon: no hot-spot layer and no hot-spot legend at all.
    m = make_map(strips_analysis(), hotspots=hexes.assign(hot=False))
    assert "Hot spots" not in render_html(m)


def test_map_hotspots_use_the_hotspots_command_defaults(tmp_path, monkeypatch):
    """`gapmap map --hotspots` and `gapmap hotspots` call Gi* with the same settings."""
    import inspect

    import gapmap.hotspots as hs
    from gapmap import Run
    from gapmap.scenario import make_scenario

    calls = []
    signature = inspect.signature(hs.gi_star_hexes)

    class Recorded(Exception):
        pass

    def spy(*args, **kw):  # record the settings in effect, skip the computation
        bound = signature.bind(*args, **kw)
        bound.apply_defaults()
        calls.append(dict(bound.arguments))
        raise Recorded

    monkeypatch.setattr(hs, "gi_star_hexes", spy)
    zones, area, posts, _ = strips_frames()
    for name, gdf in (("zones", zones), ("area", area)):
        gdf.to_file(tmp_path / f"{name}.geojson")
    inc = incidents_frame(40)
    csv = tmp_path / "events.csv"
    pd.DataFrame({"date": inc["date"].dt.strftime("%Y-%m-%d"), "latitude": inc.geometry.y,
                  "longitude": inc.geometry.x}).to_csv(csv, index=False)
    r = CliRunner().invoke(main, ["hotspots", "--incidents", str(csv), "--study-area",
                                  str(tmp_path / "area.geojson"), "--out", str(tmp_path / "hs")])
    assert r.exit_code != 0 and len(calls) == 1, r.output
    sc = make_scenario(zones=tmp_path / "zones.geojson", side_a="krg=peshmerga",
                       side_b="federal=isf,pmf", study_area=tmp_path / "area.geojson",
                       incidents=csv)
    with pytest.raises(Recorded):
        Run(sc).map_layers(hillshade=False, hotspots=True)
    assert len(calls) == 2
    cli, drawn = calls
    # (write_hotspots leaves out coarse locations itself, then passes include_coarse=True.)
    settings = [k for k in signature.parameters
                if k not in ("incidents", "study_area", "crs", "include_coarse")]
    assert {k: drawn[k] for k in settings} == {k: cli[k] for k in settings}
    assert cli["hex_km"] == 10.0


# --------------------------------------------------------------------------------------------
# reference layer, place names, sources, exposure, uncertainty, aggregation


def strips_areas() -> gpd.GeoDataFrame:
    """The strips' study area cut into three districts in two governorates: North (two
    districts, y above Y0 + 50 km) and South (one)."""
    return gpd.GeoDataFrame(
        {"ADM1_EN": ["North", "North", "South"], "ADM2_EN": ["Upper", "Middle", "Lower"]},
        geometry=[shapely.box(X0 - 20e3, Y0 + 70e3, X0 + 60e3, Y0 + 100e3),
                  shapely.box(X0 - 20e3, Y0 + 50e3, X0 + 60e3, Y0 + 70e3),
                  shapely.box(X0 - 20e3, Y0, X0 + 60e3, Y0 + 50e3)], crs=UTM38)


def strips_places() -> gpd.GeoDataFrame:
    """Four towns in the frame (one of unknown population) and one 500 km away."""
    return gpd.GeoDataFrame(
        {"name": ["Bigtown", "Smallville", "Midtown", "Nowhere", "Faraway"],
         "population": [250_000, 5_000, 120_000, np.nan, 1e6]},
        geometry=[shapely.Point(X0 + 5e3, Y0 + 30e3), shapely.Point(X0 + 35e3, Y0 + 90e3),
                  shapely.Point(X0 + 45e3, Y0 + 60e3), shapely.Point(X0 + 15e3, Y0 + 10e3),
                  shapely.Point(X0 + 500e3, Y0 + 50e3)], crs=UTM38).to_crs(4326)


class _Credit:
    """A source record as gapmap.sources gives them (name, licence, credit())."""

    def __init__(self, name: str, licence: str) -> None:
        self.name, self.licence = name, licence

    def credit(self) -> str:
        return f"{self.name} ({self.licence})"


def _element(m, cls_name: str):
    return next(c for c in m._children.values() if type(c).__name__ == cls_name)


def test_place_and_area_labels_in_priority_order():
    m = make_map(strips_analysis(), areas=strips_areas(), places=strips_places())
    labels = _element(m, "_Labels").labels
    got = [(lb["kind"], lb["text"]) for lb in labels]
    # Governorates (largest first), towns of 100,000 or more, districts, the other towns;
    # the town 500 km outside the frame is left out.
    assert got == [("adm1", "North"), ("adm1", "South"), ("town", "Bigtown"),
                   ("town", "Midtown"), ("adm2", "Lower"), ("adm2", "Upper"),
                   ("adm2", "Middle"), ("town", "Smallville"), ("town", "Nowhere")]
    to_utm = Transformer.from_crs(4326, UTM38, always_xy=True)
    # A governorate's label lies inside it: North spans y = Y0 + 50 … 100 km (two districts
    # dissolved), so its pole of inaccessibility is at y = Y0 + 75 km, x = X0 + 20 km.
    x, y = to_utm.transform(labels[0]["lon"], labels[0]["lat"])
    assert abs(x - (X0 + 20e3)) < 300 and abs(y - (Y0 + 75e3)) < 300
    x, y = to_utm.transform(labels[2]["lon"], labels[2]["lat"])
    assert abs(x - (X0 + 5e3)) < 1 and abs(y - (Y0 + 30e3)) < 1
    assert {lb["minzoom"] for lb in labels if lb["kind"] == "adm2"} == {8}
    page = render_html(m)
    assert "Bigtown" in page and "Faraway" not in page
    # Outlines: governorates dissolved (2 features), districts (3), in the reference group.
    ref = next(c for c in m._children.values()
               if getattr(c, "layer_name", "") == "Reference (boundaries, water)")
    counts = sorted(len(v.data["features"]) for v in ref._children.values()
                    if hasattr(v, "data"))
    assert counts == [2, 3]
    assert "Governorates" in page and "Districts" in page


def test_area_labels_from_a_plain_name_field():
    areas = strips_areas().drop(columns=["ADM1_EN"]).rename(columns={"ADM2_EN": "name"})
    labels = _element(make_map(strips_analysis(), areas=areas), "_Labels").labels
    assert sorted(lb["text"] for lb in labels) == ["Lower", "Middle", "Upper"]
    assert {lb["kind"] for lb in labels} == {"adm1"}


def test_water_is_clipped_to_the_frame_and_simplified():
    from types import SimpleNamespace

    # A river 600 km long crossing the frame with a vertex every 100 m, and a lake.
    ys = np.arange(Y0 - 250e3, Y0 + 350e3, 100.0)
    river = shapely.LineString(np.column_stack([np.full(len(ys), X0 + 50e3), ys]))
    rivers = gpd.GeoDataFrame({"name": ["Long river"]}, geometry=[river], crs=UTM38)
    lakes = gpd.GeoDataFrame(geometry=[shapely.Point(X0 - 10e3, Y0 + 20e3).buffer(3e3)],
                             crs=UTM38)
    m = make_map(strips_analysis(), water=SimpleNamespace(rivers=rivers, lakes=lakes))
    ref = next(c for c in m._children.values()
               if getattr(c, "layer_name", "") == "Reference (boundaries, water)")
    layers = {v.layer_name: v for v in ref._children.values() if hasattr(v, "data")}
    coords = np.array(layers["rivers"].data["features"][0]["geometry"]["coordinates"])
    to_utm = Transformer.from_crs(4326, UTM38, always_xy=True)
    _, yy = to_utm.transform(coords[:, 0], coords[:, 1])
    # Clipped to the study area's box (y = Y0 … Y0 + 100 km) and straight: a few vertices.
    assert yy.min() > Y0 - 100 and yy.max() < Y0 + 100e3 + 100 and len(coords) < 10
    assert layers["rivers"].data["features"][0]["properties"]["_tip"] == "Long river"
    assert len(layers["lakes"].data["features"]) == 1
    page = render_html(m)
    assert "Rivers" in page and "Lakes, reservoirs" in page


def test_attribution_lists_the_sources_once():
    srcs = [_Credit("UCDP GED", "CC BY 4.0"), _Credit("OCHA COD-AB", "CC BY-IGO"),
            _Credit("UCDP GED", "CC BY 4.0"), _Credit("GeoNames", "CC BY 4.0 " + SCRIPT)]
    page = render_html(make_map(strips_analysis(), sources=srcs))
    data = page_data(page)
    credits = next(v["credits"] for v in data.values() if isinstance(v, dict) and "credits" in v)
    assert credits == ["UCDP GED (CC BY 4.0) · OCHA COD-AB (CC BY-IGO) · GeoNames (CC BY 4.0 "
                       "&lt;script&gt;window.__pwned=2&lt;/script&gt;)"]
    assert "gapmap.attribution(" in page
    assert "GapmapAttribution" not in render_html(make_map(strips_analysis()))


def exposure_pieces() -> gpd.GeoDataFrame:
    """Four 10 km road pieces along x = X0 + 20 km, one of each class (lengths by hand)."""
    lines = [shapely.LineString([(X0 + 20e3, Y0 + 10e3 * i), (X0 + 20e3, Y0 + 10e3 * (i + 1))])
             for i in range(4)]
    return gpd.GeoDataFrame(
        {"road": ["r1", "r1", "r1", "r2"], "hours_from_origin": [1.0, 2.0, 4.0, 5.0],
         "reachable": [True, True, False, False], "seen": [False, True, True, False],
         "exposed": [True, False, False, False], "length_km": [10.0, 10.0, 10.0, 7.5]},
        geometry=lines, crs=UTM38)


def test_exposure_layer_classes_and_km():
    from types import SimpleNamespace

    from gapmap.maps import EXPOSURE_CLASSES

    exposure = SimpleNamespace(pieces=exposure_pieces(), summary={"hours": 3.0,
                                                                  "exposed_km": 10.0})
    m = make_map(strips_analysis(), exposure=exposure)
    group = next(c for c in m._children.values() if getattr(c, "layer_name", "")
                 == "Road exposure")
    layers = {v.layer_name: v for v in group._children.values() if hasattr(v, "data")}
    assert set(layers) == {"exposed", "reach_seen", "seen", "other"}
    # The exposed stretch is drawn last (on top), in the strong colour and thickest.
    assert list(layers)[-1] == "exposed"
    st = layers["exposed"].styles[0]
    assert st["color"] == EXPOSURE_CLASSES[0][1] and st["weight"] == max(
        v.styles[0]["weight"] for v in layers.values())
    page = render_html(m)
    assert "Road exposure (3.0 h on foot)" in page
    assert "Exposed: reachable on foot, unseen: 10.0 km" in page
    assert "Neither reachable nor seen: 7.5 km" in page
    pop = layers["exposed"].data["features"][0]["properties"]["_popup"]
    assert "r1" in pop and "hours from origin</th><td>1.00" in pop
    # Reachable and seen but no 'exposed' column: exposed = reachable and unseen.
    no_flag = exposure_pieces().drop(columns="exposed")
    page2 = render_html(make_map(strips_analysis(), exposure=no_flag))
    assert "Exposed: reachable on foot, unseen: 10.0 km" in page2
    with pytest.raises(InputError, match="seen"):
        make_map(strips_analysis(), exposure=no_flag.drop(columns="seen"))


def _uncertainty(p: list[float], along_step: float = 0.25):
    """Seam samples every 250 m along x = X0 + 20 km with the given p_unguarded, and a
    table of 90% ranges."""
    from types import SimpleNamespace

    n = len(p)
    samples = gpd.GeoDataFrame(
        {"seam_id": ["s1"] * n, "along_km": np.arange(n) * along_step,
         "unguarded_base": [True] * n, "p_unguarded": p},
        geometry=[shapely.Point(X0 + 20e3, Y0 + 1000 * along_step * i) for i in range(n)],
        crs=UTM38)
    table = pd.DataFrame({"p05": [80.0, 40.0], "p50": [84.0, 45.0], "p95": [90.5, 45.0],
                          "mean": [85.0, 44.0], "base": [84.0, 45.0]},
                         index=pd.Index(["unguarded_length_km", "longest_corridor_km"],
                                        name="field"))
    return SimpleNamespace(p_unguarded=samples, table=table)


def test_uncertainty_colours_the_seam_by_probability():
    unc = _uncertainty([0.0, 0.0, 0.0, 0.3, 0.3, 0.95, 1.0, 1.0])
    m = make_map(strips_analysis(), uncertainty=unc)
    layer = next(c for c in m._children.values() if getattr(c, "layer_name", "")
                 == "Chance the seam is unguarded")
    feats = layer.data["features"]
    # Three runs (under 10%, 10–50%, over 90%), each reaching the next one's first sample.
    assert [len(f["geometry"]["coordinates"]) for f in feats] == [4, 3, 3]
    assert [s["color"] for s in layer.styles] == ["#4575b4", "#fee090", "#a50026"]
    pops = [f["properties"]["_popup"] for f in feats]
    assert "Chance unguarded</th><td>95–100%" in pops[2]
    assert "Unguarded, 90% range</th><td>80.0–90.5 km" in pops[0]
    corridors = next(c for c in m._children.values() if getattr(c, "layer_name", "")
                     == "Unguarded corridors")
    assert corridors.show is False  # the probabilities take the corridors' place
    assert "Longest corridor, 90% range</th><td>40.0–45.0 km" in \
        corridors.data["features"][0]["properties"]["_popup"]
    shown = json.dumps(page_data(render_html(m)), ensure_ascii=False)
    assert "90% range 80.0–90.5 km over the uncertainty copies" in shown
    assert "Longest corridor</th><td>45.0 km (90%: 40.0–45.0)" in shown
    assert "50–90%" not in shown  # the legend lists only the classes drawn
    # A jump in the samples (a second branch) ends a run.
    gap = _uncertainty([1.0] * 4)
    gap.p_unguarded.loc[2:, "along_km"] += 10
    runs = next(c for c in make_map(strips_analysis(), uncertainty=gap)._children.values()
                if getattr(c, "layer_name", "") == "Chance the seam is unguarded")
    assert [len(f["geometry"]["coordinates"]) for f in runs.data["features"]] == [2, 2]


def test_year_only_dates_show_the_year():
    inc = incidents_frame(6)
    inc["date_precision"] = ["year", "day", "month", "year", "day", "day"]
    inc["date"] = pd.to_datetime(["2017-07-01", "2019-03-15", "2019-04-01", "2018-07-01",
                                  "2020-02-12", "2020-02-13"])
    data = _incident_data(inc, UTM38, CLUSTER_MAX)
    dates = [re.search(r"Date</th><td>([^<]*)<", p).group(1) for p in data["popup"]]
    assert dates == ["2017", "2019-03-15", "2019-04", "2018", "2020-02-12", "2020-02-13"]


def test_very_many_incidents_are_counted_per_hexagon():
    from gapmap.maps import _hex_index

    inc = incidents_frame(3000)
    m = make_map(strips_analysis(), incidents=inc, aggregate_min=1000)
    layer = _element(m, "_Incidents")
    d = layer.data
    assert d["mode"] == "hex" and d["n"] == 3000 and sum(d["total"]) == 3000
    # Per-period counts add up to the totals, cell by cell.
    per = np.zeros(len(d["total"]), int)
    np.add.at(per, d["pc"], d["pn"])
    assert per.tolist() == d["total"] and max(d["pp"]) == len(d["months"]) - 1
    # Each incident is counted in the hexagon whose centre is nearest (what a hexagonal cell
    # is), checked with a k-d tree over the centres of the drawn rings.
    from scipy.spatial import cKDTree

    to_utm = Transformer.from_crs(4326, UTM38, always_xy=True)
    rings = np.array(d["rings"])  # (cells, 6, lat/lon)
    cx, cy = to_utm.transform(rings[..., 1], rings[..., 0])
    centres = np.column_stack([cx.mean(axis=1), cy.mean(axis=1)])
    pts = shapely.get_coordinates(inc.to_crs(UTM38).geometry.values)
    nearest = cKDTree(centres).query(pts)[1]
    assert np.bincount(nearest, minlength=len(centres)).tolist() == d["total"]
    # Hexagons are regular: 150 across the frame, ~0.53 km wide here (80 km / 150).
    assert d["hex_km"] == pytest.approx(100 / 150, rel=1e-6)
    # Circumradius 10: (1, 12) lies above hexagon (0, 0)'s top corner (0, 10), nearest to the
    # centre (8.66, 15) of hexagon (0, 1).
    q, r = _hex_index(np.array([0.0, 1.0, 1.0]), np.array([0.0, 0.0, 12.0]), 10.0)
    assert q.tolist() == [0, 0, 0] and r.tolist() == [0, 0, 1]
    assert "counted per 0.7 km hexagon" in render_html(m)


def test_map_command_draws_saved_results(tmp_path):
    from gapmap.uncertainty import simulate, write_uncertainty

    zones, area, posts, _ = strips_frames()
    for name, gdf in (("zones", zones), ("area", area), ("posts", posts)):
        gdf.to_file(tmp_path / f"{name}.geojson")
    routes = gpd.GeoDataFrame({"origin": ["o1"], "target": ["t1"], "hours": [2.5]},
                              geometry=[shapely.LineString([(X0 + 5e3, Y0 + 80e3),
                                                            (X0 + 35e3, Y0 + 80e3)])],
                              crs=UTM38).to_crs(4326)
    routes.to_file(tmp_path / "routes.geojson")
    place = tmp_path / "place"
    place.mkdir()
    gpd.GeoDataFrame({"rank": [1], "name": ["near Bigtown, 4 km NE"], "gain_km": [10.0],
                      "range_km": [5.0]}, geometry=[shapely.Point(X0 + 20e3, Y0 + 80e3)],
                     crs=UTM38).to_crs(4326).to_file(place / "sites.geojson")
    (place / "placement.json").write_text(json.dumps({"unguarded_before_km": 84.0,
                                                      "unguarded_after_km": 74.0}))
    sim = simulate(strips_analysis(), draws=8, edge_km=1.0, seed=1, grid_points=2000)
    write_uncertainty(sim, tmp_path / "unc")
    base = ["map", "--zones", str(tmp_path / "zones.geojson"), "--side-a", "krg=peshmerga",
            "--side-b", "federal=isf,pmf", "--posts", str(tmp_path / "posts.geojson"),
            "--study-area", str(tmp_path / "area.geojson")]
    out = tmp_path / "map.html"
    r = CliRunner().invoke(main, base + ["--routes", str(tmp_path / "routes.geojson"),
                                         "--sites", str(place), "--uncertainty",
                                         str(tmp_path / "unc"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    shown = json.dumps(page_data(out.read_text()), ensure_ascii=False)
    assert "Walking routes" in shown and "near Bigtown, 4 km NE" in shown
    assert "Proposed new posts (1): unguarded 84.0 → 74.0 km" in shown
    # 20 km apart with reach 2 km and edges ±1 km: the strips' gap never closes, except at
    # the posts; the seam away from the posts is unguarded in every copy.
    assert "over 90% (unguarded in nearly every copy)" in shown
    lo, hi = sim.range_of("unguarded_length_km")
    assert f"90% range {lo:.1f}–{hi:.1f} km" in shown


@pytest.mark.parametrize("case", ["routes_columns", "routes_points", "sites_lines",
                                  "uncertainty_missing"])
def test_map_command_refuses_bad_result_files(tmp_path, case):
    zones, area, posts, _ = strips_frames()
    for name, gdf in (("zones", zones), ("area", area)):
        gdf.to_file(tmp_path / f"{name}.geojson")
    line = shapely.LineString([(X0, Y0), (X0 + 1e3, Y0)])
    bad = tmp_path / "bad.geojson"
    if case == "routes_columns":
        gpd.GeoDataFrame({"from": ["a"]}, geometry=[line], crs=UTM38).to_file(bad)
        opts, words = ["--routes", str(bad)], ["origin", "routes"]
    elif case == "routes_points":
        posts.to_file(bad)
        opts, words = ["--routes", str(bad)], ["LineString"]
    elif case == "sites_lines":
        gpd.GeoDataFrame({"rank": [1]}, geometry=[line], crs=UTM38).to_file(bad)
        opts, words = ["--sites", str(bad)], ["Point", "gapmap place"]
    else:
        (tmp_path / "unc").mkdir()
        opts, words = ["--uncertainty", str(tmp_path / "unc")], ["gapmap uncertainty"]
    out = tmp_path / "map.html"
    r = CliRunner().invoke(main, ["map", "--zones", str(tmp_path / "zones.geojson"),
                                  "--side-a", "krg=peshmerga", "--side-b", "federal=isf,pmf",
                                  "--study-area", str(tmp_path / "area.geojson"),
                                  "--out", str(out)] + opts)
    assert r.exit_code == 2, r.output
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output
    for w in words:
        assert w in r.output, (w, r.output)
    assert not out.exists()


def test_map_command_draws_road_exposure(tmp_path):
    from gapmap.exposure import Exposure, write_exposure

    zones, area, _, _ = strips_frames()
    for name, gdf in (("zones", zones), ("area", area)):
        gdf.to_file(tmp_path / f"{name}.geojson")
    pieces = exposure_pieces()
    write_exposure(Exposure(pieces=pieces, summary={"road_km": 37.5, "exposed_km": 10.0,
                                                    "hours": 3.0}), tmp_path / "exp")
    out = tmp_path / "map.html"
    r = CliRunner().invoke(main, ["map", "--zones", str(tmp_path / "zones.geojson"),
                                  "--side-a", "krg=peshmerga", "--side-b", "federal=isf,pmf",
                                  "--study-area", str(tmp_path / "area.geojson"),
                                  "--exposure", str(tmp_path / "exp"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    shown = json.dumps(page_data(out.read_text()), ensure_ascii=False)
    assert "Road exposure (3.0 h on foot)" in shown
    assert "Exposed: reachable on foot, unseen: 10.0 km" in shown
    assert "Reachable, but seen by a post: 10.0 km" in shown
