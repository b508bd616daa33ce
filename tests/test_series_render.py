"""Series outputs: every file written, all or nothing; the map keeps data as data."""

from __future__ import annotations

import json
import re

import geopandas as gpd
import pytest
import shapely
from PIL import Image

from gapmap import Settings
from gapmap.series import analyze_series, compare
from gapmap.series_render import plot_series, write_compare, write_series

from .chromium import browser  # noqa: F401 (fixture)
from .test_series import AREA, ZB, A, B, posts_switching, zones_of

HOSTILE = 'ZQ{{7*7}}QZ </script><script>window.__pwned=1</script> <img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def series():
    return analyze_series(zones_of(ZB, ZB, ZB), A, B, date_field="day", posts=posts_switching(),
                          study_area=AREA, settings=Settings(max_width_km=40, reach_km=5),
                          workers=1)


def _data_block(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="gapmap-data">(.*?)</script>', page, re.S)
    assert m, "no data block"
    return json.loads(m.group(1))


def test_write_series_files_and_map(series, tmp_path):
    files = write_series(series, tmp_path, title=HOSTILE)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == sorted(
        files)
    page = (tmp_path / "map.html").read_text()
    # Offline: no network address in the page, a CSP forbidding requests.
    assert "Content-Security-Policy" in page
    assert not re.search(r'<script[^>]+src=|<link[^>]+href="https?:', page)
    # The hostile title never became markup nor was evaluated as a template.
    assert "ZQ49QZ" not in page
    assert "<img src=x" not in page and "window.__pwned=1</script>" not in page
    data = [v for v in _data_block(page).values() if isinstance(v, dict) and "dates" in v][0]
    assert data["title"] == HOSTILE
    assert data["dates"] == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert data["layers"]["closed"][1] is not None  # closed on the second date
    assert "closed 10.0 km" in data["captions"][1]
    # Tables and layers.
    import pandas as pd

    t = pd.read_csv(tmp_path / "series.csv")
    assert list(t.columns[:3]) == ["date", "side_a", "side_b"]
    assert {"opened_km", "closed_km", "seam_length_km"} <= set(t.columns)
    c = pd.read_csv(tmp_path / "corridors.csv")
    assert {"corridor_uid", "date", "first_seen", "last_seen", "length_km"} <= set(c.columns)
    import pyogrio

    layers = {name for name, _ in pyogrio.list_layers(tmp_path / "changes.gpkg")}
    assert layers == {"opened", "closed", "seam", "corridors"}
    closed = gpd.read_file(tmp_path / "changes.gpkg", layer="closed")
    assert {"date_from", "date_to", "length_km"} <= set(closed.columns)
    with Image.open(tmp_path / "series.png") as im:
        assert im.size[0] >= 1000


def test_interrupted_write_leaves_folder_as_it_was(series, tmp_path, monkeypatch):
    (tmp_path / "series.csv").write_text("old")
    import gapmap.series_render as sr

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(sr, "_figure", boom)
    with pytest.raises(KeyboardInterrupt):
        write_series(series, tmp_path)
    assert (tmp_path / "series.csv").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "series.csv"]


def test_chart_readable_at_700_dates():
    import numpy as np
    import pandas as pd

    days = pd.date_range("2022-02-24", periods=720).strftime("%Y-%m-%d")
    t = pd.DataFrame({"date": days, "seam_length_km": 1200 + np.arange(720) % 50,
                      "unguarded_length_km": 300 + np.arange(720) % 30,
                      "opened_km": 1.0, "closed_km": 2.0})
    fig = plot_series(t)
    labels = [lab.get_text() for lab in fig.axes[1].get_xticklabels()]
    assert 3 <= len([x for x in labels if x]) <= 12  # a few dated ticks, not 720


def test_compare_outputs(tmp_path):
    zones_of(ZB, days=("x",)).drop(columns="day").to_file(tmp_path / "z_20240101.geojson")
    moved = shapely.box(428e3, 3900e3, 440e3, 4000e3)
    zones_of(moved, days=("x",)).drop(columns="day").to_file(tmp_path / "z_20240201.geojson")
    c = compare(tmp_path / "z_20240101.geojson", tmp_path / "z_20240201.geojson", A, B,
                study_area=AREA, settings=Settings(max_width_km=40, reach_km=9.5))
    out = tmp_path / "out"
    write_compare(c, out)
    t = __import__("pandas").read_csv(out / "compare.csv")
    assert list(t.columns) == ["field", "before", "after", "change"]
    row = t.set_index("field").loc["unguarded_length_km"]
    assert row["change"] == pytest.approx(row["after"] - row["before"])
    page = (out / "map.html").read_text()
    data = [v for v in _data_block(page).values() if isinstance(v, dict) and "dates" in v][0]
    colours = {row[0]: row[1] for row in data["legend"]}
    assert colours["opened"] != colours["closed"]
    assert data["layers"]["closed"][0] is not None


@pytest.mark.browser
def test_series_map_in_chromium_slider_works_and_payloads_stay_text(series, tmp_path, browser):
    from .payloads import assert_inert_in_browser, assert_no_live_markup, hostile

    title = hostile("title")
    write_series(series, tmp_path, title=title)
    page = (tmp_path / "map.html").read_text()
    assert_no_live_markup(page)
    text = assert_inert_in_browser(browser, tmp_path / "map.html", [title])
    assert "2024-01-03: unguarded" in text  # the last date is shown first
    # Move the slider to the second date: its caption and the closed stretch appear.
    browser.execute_script("var s = document.getElementById('gm-date-slider'); s.value = 1;"
                           "s.dispatchEvent(new Event('input'));")
    label = browser.execute_script("return document.getElementById('gm-date-label').textContent")
    assert label.startswith("2024-01-02") and "closed 10.0 km" in label
    paths = browser.execute_script("return document.querySelectorAll('path.leaflet-interactive')"
                                   ".length")
    assert paths >= 3  # seam, two corridor pieces, the closed stretch


def test_series_pages_use_the_public_data_element():
    """The series pages build on maps.DataElement, the one JSON data block; the old private
    alias is gone."""
    from gapmap import maps, series_render

    assert issubclass(series_render._SeriesLayers, maps.DataElement)
    assert not hasattr(maps, "_Data")
