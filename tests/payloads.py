"""Hostile text for every field a user controls, and checks that a page kept it as data.

Any page gapmap writes (map, report, series and compare maps, exposure pages) can be checked
the same way: build its inputs with :func:`hostile` text (or take :func:`hostile_scene`), write
the page, then call :func:`assert_not_evaluated` and :func:`assert_no_live_markup` on its
source and, in headless Chromium, :func:`assert_inert_in_browser` with the texts that must
show literally.

The payloads: Jinja expressions (``{{7*7}}`` would print 49), a Jinja call that runs a shell
command (its output, ``gapmap-pwned-42``, is not in the payload: only running it makes it),
Jinja statement and comment openers that break a template (``{%``, ``{#``), a ``</script>``
that would end a script early and start another, and an ``<img onerror>``.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gapmap import Side, analyze

from .conftest import UTM38, X0, Y0

EXPR = "ZQ{{7*7}}QZ"
CMD = "{{ cycler.__init__.__globals__.os.popen('echo gapmap-pwned-$((6*7))').read() }}"
STMT = 'Tuz {{ "north" }} sector {%'
COMMENT = "{# unclosed"
SCRIPT = "</script><script>window.__pwned=3</script>"
IMG = '<img src=x onerror="window.__pwned=4">'
#: What only evaluation could write: 7*7 between the markers, the command's output, the
#: statement rendered.
EVALUATED = ("ZQ49QZ", "gapmap-pwned-42", "Tuz north sector")


def hostile(tag: str) -> str:
    """A field value carrying every payload, led by ``tag`` (which field it is). Force names
    are lower-cased by the analysis: look for ``hostile(tag).lower()`` there."""
    text = f"{tag} {EXPR} {CMD} {STMT} {COMMENT} {SCRIPT} {IMG}"
    return text.lower() if tag.startswith("force") else text


def assert_not_evaluated(text: str) -> None:
    """Nothing in ``text`` (a page's source or its visible text) came from evaluating data."""
    low = text.lower()  # some fields are lower-cased on the way (force names)
    for mark in EVALUATED:
        assert mark.lower() not in low, f"data was evaluated: {mark!r} in the page"
    assert "uid=" not in text


def assert_no_live_markup(page: str) -> None:
    """The payloads' markup is nowhere in the page source as markup."""
    assert "<img src=x" not in page.lower()
    assert "<script>window.__pwned" not in page
    # Every </script> closes a script the page opened itself.
    assert page.count("</script>") == len(re.findall(r"<script[\s>]", page))


def data_block(page: str) -> dict:
    """A map page's JSON data block."""
    blocks = re.findall(r'<script type="application/json" id="gapmap-data">(.*?)</script>',
                        page, flags=re.S)
    assert len(blocks) == 1, "one data block"
    return json.loads(blocks[0])


def data_strings(obj) -> list[str]:
    """Every string in a decoded data block, HTML-unescaped (the text a browser shows)."""
    if isinstance(obj, str):
        return [html.unescape(re.sub(r"<[^>]+>", " ", obj))]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in data_strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in data_strings(v)]
    return []


def assert_inert_in_browser(driver, path: Path, literals: list[str]) -> str:
    """Open ``path`` in ``driver``: no payload ran, no CSP or script error, and each of
    ``literals`` shows as text. Returns the page's visible text."""
    from .chromium import open_page

    _, severe = open_page(driver, path)
    assert severe == [], severe
    assert driver.execute_script("return typeof window.__pwned") == "undefined"
    text = driver.execute_script("return document.documentElement.textContent")
    assert_not_evaluated(text)
    for lit in literals:
        assert lit in text, f"{lit[:40]!r} not shown literally"
    return text


def hostile_scene(n_incidents: int = 30) -> dict:
    """The two-strip scene (seam at x = X0 + 20 km, corridors of 17, 22 and 45 km) with a
    hostile value in every text field: side and force names, zone, post and site names,
    incident notes, actors, locations and sources, input file names, and a title."""
    force_a, force_b1, force_b2 = hostile("forceA"), hostile("forceB1"), "pmf"
    zones = gpd.GeoDataFrame(
        {"force": [force_a, force_b1, force_b2],
         "name": [hostile("zone1"), hostile("zone2"), "south2"],
         "note": ["illustrative layout " + hostile("note")] * 3},
        geometry=[shapely.box(X0, Y0, X0 + 10e3, Y0 + 100e3),
                  shapely.box(X0 + 30e3, Y0, X0 + 40e3, Y0 + 60e3),
                  shapely.box(X0 + 30e3, Y0 + 60e3, X0 + 40e3, Y0 + 100e3)], crs=UTM38)
    area = gpd.GeoDataFrame(geometry=[shapely.box(X0 - 20e3, Y0, X0 + 60e3, Y0 + 100e3)],
                            crs=UTM38)
    posts = gpd.GeoDataFrame({"range_km": [5.0, 5.0], "force": [force_b1, force_a],
                              "name": [hostile("post"), "p2"]},
                             geometry=[shapely.Point(X0 + 20e3, Y0 + 50e3),
                                       shapely.Point(X0 + 24e3, Y0 + 20e3)], crs=UTM38)
    side_a = Side(hostile("sideA"), (force_a,))
    side_b = Side(hostile("sideB"), (force_b1, force_b2))
    rng = np.random.default_rng(3)
    x = rng.uniform(X0, X0 + 40e3, n_incidents)
    y = rng.uniform(Y0, Y0 + 100e3, n_incidents)
    incidents = gpd.GeoDataFrame(
        {"date": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 366, n_incidents),
                                                              "D"),
         "type": "armed clash", "actor": hostile("actor"), "location": hostile("location"),
         "source": hostile("source"), "notes": hostile("notes"),
         "fatalities": rng.integers(0, 5, n_incidents).astype(float)},
        geometry=gpd.points_from_xy(x, y), crs=UTM38).to_crs(4326)
    sites = gpd.GeoDataFrame({"rank": [1], "name": [hostile("site")], "gain_km": [10.0],
                              "range_km": [5.0]},
                             geometry=[shapely.Point(X0 + 20e3, Y0 + 80e3)], crs=UTM38)
    analysis = analyze(zones, side_a, side_b, posts=posts, study_area=area)
    analysis = dataclasses.replace(analysis, inputs={
        "zones": "zones " + hostile("file") + ".gpkg", "layer": hostile("layer")})
    return {"analysis": analysis, "incidents": incidents, "sites": sites,
            "title": hostile("title")}
