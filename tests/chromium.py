"""Headless Chromium with the network cut off, shared by the browser tests.

Import the ``browser`` fixture into a test module (``from .chromium import browser``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

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
