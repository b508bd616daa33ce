"""The map and the report in headless Chromium, with the network cut off.

Checks that the pages work with no network at all (Leaflet runs, layers draw, the console is
clean), that they do not even try to reach the network, and that markup injected through the
data does not run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from gapmap.maps import make_map, save_map
from gapmap.report import write_report

from .test_maps import IMG, SCRIPT, incidents_frame, strips_analysis

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--window-size=1400,1000"]


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium with a fresh profile, DevTools network logging, network offline."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.exists(path) and os.access(path, os.X_OK)):
            pytest.fail(f"{path} not found: the browser tests need Debian's chromium and "
                        "chromium-driver; `make test` installs them")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="gapmap-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for f in FLAGS:
        opts.add_argument(f)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def open_page(driver, path: Path) -> tuple[list[str], list[dict]]:
    """Load a file:// page; return the URLs it requested and the SEVERE console entries."""
    driver.get_log("performance")  # drop what earlier pages logged
    driver.get_log("browser")
    driver.get(path.resolve().as_uri())
    driver.execute_async_script(
        "var done = arguments[arguments.length - 1];"
        "if (document.readyState === 'complete') { setTimeout(done, 300); }"
        "else { window.addEventListener('load', function () { setTimeout(done, 300); }); }")
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    return urls, severe


def web_requests(urls: list[str]) -> list[str]:
    return [u for u in urls if u.split(":", 1)[0].lower() in ("http", "https", "ws", "wss", "ftp")]


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
