"""The map and the report in headless Chromium, with the network cut off.

Checks that the pages work with no network at all (Leaflet runs, layers draw, the console is
clean), that they do not even try to reach the network, and that markup injected through the
data does not run.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest

from gapmap.maps import make_map, save_map
from gapmap.report import write_report

from .chromium import browser, open_page, web_requests  # noqa: F401 (browser: a fixture)
from .conftest import UTM38, X0, Y0
from .test_maps import IMG, SCRIPT, incidents_frame, strips_analysis

pytestmark = pytest.mark.browser


def test_map_offline_layers_and_no_injection(browser, tmp_path):
    res = strips_analysis(hostile=True)
    inc = incidents_frame(200, hostile=True)
    page = save_map(make_map(res, incidents=inc, title="Strips " + SCRIPT), tmp_path / "map.html")
    urls, severe = open_page(browser, page)
    assert page.resolve().as_uri() in urls  # the log did capture the page's own load
    assert web_requests(urls) == []
    assert severe == []
    d = browser
    assert d.execute_script("return typeof window.L") == "object"
    assert d.execute_script("return window.L.version") == "1.9.4"
    # Zones, gap, seam, corridors and range discs drew as SVG paths; incidents as clusters.
    n_paths = d.execute_script("return document.querySelectorAll('path.leaflet-interactive')"
                               ".length")
    assert n_paths >= 3 + 1 + 3 + 2
    assert d.execute_script("return document.querySelectorAll('.marker-cluster, "
                            "path.leaflet-interactive').length") > n_paths
    assert d.execute_script("return document.querySelectorAll("
                            "'.leaflet-control-layers-overlays label').length") == 6
    assert d.execute_script("return document.querySelectorAll('.leaflet-control-scale').length") == 1
    # Injected markup shows as text and did not run.
    head = d.execute_script("return document.querySelector('.gm-head').textContent")
    legend = d.execute_script("return document.querySelector('.gm-legend').textContent")
    assert SCRIPT in head and IMG.lower() in legend and SCRIPT in legend
    assert d.execute_script("return document.querySelectorAll('.gm-panel img, .gm-panel "
                            "script').length") == 0
    # Open a zone popup (hostile name) and an incident popup (hostile notes).
    texts = d.execute_script("""
        var map = Object.values(window).find(function (v) { return v instanceof L.Map; });
        var out = [];
        map.eachLayer(function (l) {
            var p = l.feature && l.feature.properties;
            if (p && p._popup && p._popup.indexOf('Zone') >= 0 && out.length === 0) {
                l.openPopup();
                out.push(document.querySelector('.leaflet-popup-content').textContent);
                out.push(document.querySelectorAll('.leaflet-popup-content img').length);
            }
        });
        var cluster = Object.values(window).find(function (v) {
            return v instanceof L.MarkerClusterGroup; });
        var mk = cluster.getLayers()[0];
        map.closePopup();
        var pop = L.popup().setLatLng(mk.getLatLng()).setContent(mk.getPopup()._content(mk));
        pop.openOn(map);
        out.push(pop.getElement().querySelector('.leaflet-popup-content').textContent);
        out.push(pop.getElement().querySelectorAll('img, script').length);
        return out;
    """)
    assert IMG in texts[0] and texts[1] == 0
    assert ("IS " + SCRIPT) in texts[2] and texts[3] == 0
    assert d.execute_script("return typeof window.__pwned") == "undefined"
    shot = tmp_path / "map.png"
    assert d.save_screenshot(str(shot)) and shot.stat().st_size > 20_000


def test_month_slider_filters_incidents(browser, tmp_path):
    inc = incidents_frame(120)
    months = inc["date"].dt.to_period("M")
    first = str(months.min())
    n_first = int((months == months.min()).sum())
    page = save_map(make_map(strips_analysis(), incidents=inc), tmp_path / "slider.html")
    urls, severe = open_page(browser, page)
    assert web_requests(urls) == [] and severe == []
    d = browser
    label = d.execute_script("return document.querySelector('.gm-slider div').textContent")
    assert label == "Incidents: all months (120)"
    shown = d.execute_script("""
        var input = document.querySelector('.gm-slider input');
        input.value = 1;
        input.dispatchEvent(new Event('input'));
        var cluster = Object.values(window).find(function (v) {
            return v instanceof L.MarkerClusterGroup; });
        return [document.querySelector('.gm-slider div').textContent, cluster.getLayers().length];
    """)
    assert shown == [f"Incidents: {first} ({n_first})", n_first]
    assert int(d.execute_script("return document.querySelector('.gm-slider input').max")) == 12


def test_heat_map_page_offline(browser, tmp_path):
    page = save_map(make_map(strips_analysis(), incidents=incidents_frame(20_000)),
                    tmp_path / "heat.html")
    urls, severe = open_page(browser, page)
    assert web_requests(urls) == [] and severe == []
    assert browser.execute_script(
        "return document.querySelectorAll('canvas.leaflet-heatmap-layer').length") == 1
    assert browser.execute_script("return document.querySelectorAll('.marker-cluster').length") == 0


def test_report_offline_images_and_no_injection(browser, tmp_path):
    from gapmap.hotspots import monthly_counts

    res = strips_analysis(hostile=True)
    inc = incidents_frame(60, hostile=True)
    page = write_report(res, tmp_path / "report.html", incidents=inc,
                        monthly=monthly_counts(inc), title="Report " + SCRIPT)
    urls, severe = open_page(browser, page)
    assert web_requests(urls) == [] and severe == []
    d = browser
    assert d.execute_script("return document.images.length") == 2  # map and monthly chart
    assert d.execute_script("return Array.from(document.images).every(function (i) {"
                            " return i.complete && i.naturalWidth > 500; })")
    assert SCRIPT in d.execute_script("return document.querySelector('h1').textContent")
    assert d.execute_script("return typeof window.__pwned") == "undefined"
    assert d.execute_script("return document.scripts.length") == 0
    shot = tmp_path / "report.png"
    assert d.save_screenshot(str(shot)) and shot.stat().st_size > 20_000


_VISIBLE_LABELS_JS = """
    var boxes = Array.from(document.querySelectorAll('.gm-lab')).filter(function (e) {
        return e.style.visibility === 'visible'; });
    var r = boxes.map(function (e) { return e.getBoundingClientRect(); });
    var overlaps = 0;
    for (var i = 0; i < r.length; i++) { for (var j = i + 1; j < r.length; j++) {
        if (r[i].left < r[j].right && r[j].left < r[i].right && r[i].top < r[j].bottom
            && r[j].top < r[i].bottom) { overlaps++; } } }
    return [boxes.map(function (e) { return e.textContent; }), overlaps];
"""


def _zoom(driver, delta: int) -> None:
    driver.execute_async_script("""
        var done = arguments[arguments.length - 1];
        var map = Object.values(window).find(function (v) { return v instanceof L.Map; });
        map.once('zoomend', function () { setTimeout(done, 100); });
        map.setZoom(map.getZoom() + arguments[0], {animate: false});
    """, delta)


def test_labels_thin_out_without_overlaps_as_the_map_zooms_out(browser, tmp_path):
    from .test_maps import strips_areas

    # 80 towns on a 4 km grid over the strips, population falling from the south-west.
    xs, ys = np.meshgrid(np.arange(8) * 4e3 + X0 + 2e3, np.arange(10) * 9e3 + Y0 + 4e3)
    places = gpd.GeoDataFrame(
        {"name": [f"Town {i:02d}" for i in range(80)],
         "population": 1e6 / (1 + np.arange(80))},
        geometry=gpd.points_from_xy(xs.ravel(), ys.ravel()), crs=UTM38)
    page = save_map(make_map(strips_analysis(), areas=strips_areas(), places=places),
                    tmp_path / "labels.html")
    urls, severe = open_page(browser, page)
    assert web_requests(urls) == [] and severe == []
    shown, overlaps = browser.execute_script(_VISIBLE_LABELS_JS)
    assert overlaps == 0
    # Governorates first; then the most populous towns win the room (Town 01, 4 km east of
    # Town 00, gives way to it).
    assert {"North", "South", "Town 00"} <= set(shown) and "Town 01" not in shown
    _zoom(browser, -2)
    fewer, overlaps = browser.execute_script(_VISIBLE_LABELS_JS)
    assert overlaps == 0 and {"North", "South", "Town 00"} <= set(fewer)
    assert len(fewer) < len(shown)
    _zoom(browser, 4)
    more, overlaps = browser.execute_script(_VISIBLE_LABELS_JS)
    assert overlaps == 0 and len(more) > len(shown)
    # Districts appear only from zoom 8 on.
    assert "Upper" in more


def test_demo_map_names_towns_governorates_and_sources(browser, demo):
    out, _ = demo
    urls, severe = open_page(browser, out / "map.html")
    assert web_requests(urls) == [] and severe == []
    shown, overlaps = browser.execute_script(_VISIBLE_LABELS_JS)
    assert overlaps == 0
    assert {"Kirkuk", "Mosul", "Erbil", "Ninewa", "Diyala", "Salah Al-Din"} <= set(shown)
    credits = browser.execute_script(
        "return document.querySelector('.leaflet-control-attribution').textContent")
    for credit in ("Leaflet", "UCDP GED (CC BY 4.0)", "OCHA COD-AB (CC BY-IGO 3.0)",
                   "GeoNames (CC BY 4.0)"):
        assert credit in credits
    shot = out.parent / "demo_map.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 50_000


def test_demo_report_prints_on_one_a4_page_with_its_sources(demo, tmp_path):
    """The demo's report, printed by headless Chromium, is one A4 sheet that names its
    sources, licences and incident period."""
    import subprocess

    import pypdf

    from .chromium import CHROMIUM

    out, _ = demo
    pdf = tmp_path / "report.pdf"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                    "--no-pdf-header-footer", f"--user-data-dir={tmp_path / 'profile'}",
                    f"--print-to-pdf={pdf}", (out / "report.html").as_uri()],
                   capture_output=True, timeout=120, check=False)
    reader = pypdf.PdfReader(pdf)
    assert len(reader.pages) == 1
    w, h = float(reader.pages[0].mediabox.width), float(reader.pages[0].mediabox.height)
    assert (round(w / 72 * 25.4), round(h / 72 * 25.4)) == (210, 297)
    text = " ".join(reader.pages[0].extract_text().split())
    for piece in ("UCDP GED (CC BY 4.0)", "OCHA COD-AB (CC BY-IGO 3.0)", "GeoNames (CC BY 4.0)",
                  "2003–2019 (years only)", "near "):
        assert piece in text, piece


def test_incidents_counted_per_hexagon_draw_and_filter(browser, tmp_path):
    inc = incidents_frame(3000)
    page = save_map(make_map(strips_analysis(), incidents=inc, aggregate_min=1000),
                    tmp_path / "hex.html")
    urls, severe = open_page(browser, page)
    assert web_requests(urls) == [] and severe == []
    months = inc["date"].dt.to_period("M")
    n_first = int((months == months.min()).sum())
    got = browser.execute_script("""
        var label = document.querySelector('.gm-slider div').textContent;
        var input = document.querySelector('.gm-slider input');
        input.value = 1;
        input.dispatchEvent(new Event('input'));
        return [label, document.querySelector('.gm-slider div').textContent,
                document.querySelectorAll('canvas').length];
    """)
    assert got[0] == "Incidents: all months (3000)"
    assert got[1] == f"Incidents: {months.min()} ({n_first})"
    assert got[2] >= 1
