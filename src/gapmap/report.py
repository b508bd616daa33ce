"""One-page HTML report: summary, corridor table, map figure, monthly incidents, placement,
road exposure.

With an uncertainty run the headline figures carry their 90% range (p05–p95 of the copies),
and with a breakdown by area the page lists the areas with the most unguarded seam. Both are
drawn from what the caller computed (:func:`gapmap.simulate`, :func:`gapmap.by_area.breakdown`);
the report computes nothing itself.

The page is self-contained (figures are PNG data URIs, the style is inline, a
Content-Security-Policy forbids network requests) and every string from the data is escaped by
Jinja2's autoescaping.
"""

from __future__ import annotations

import base64
import datetime as _dt
import io
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, select_autoescape

from ._version import __version__
from .errors import InputError
from .figures import plot_map
from .io import atomic_path
from .outputs import corridor_table
from .style import (cell, check_html_path, crs_label, exposure_frame, exposure_km, fmt,
                    illustrative_notes, incident_frame, is_synthetic, label, sites_frame)

__all__ = ["write_report", "render_report", "figure_data_uri", "png_data_uri", "incident_period",
           "range_texts", "exposure_section", "PRINT_AREA_ROWS"]

log = logging.getLogger(__name__)

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
 body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
        max-width: 1000px; margin: 24px auto; padding: 0 16px; }
 h1 { font-size: 22px; margin: 0 0 2px 0; }
 h2 { font-size: 16px; margin: 22px 0 6px 0; border-bottom: 1px solid #ddd; padding-bottom: 2px; }
 .sub { color: #555; margin-bottom: 10px; }
 .note { background: #fff7e6; border: 1px solid #d9a25f; color: #7a4300; padding: 6px 10px;
         border-radius: 4px; margin: 8px 0; font-style: italic; }
 .cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 10px 0; }
 .card { border: 1px solid #ddd; border-radius: 6px; padding: 8px 12px; min-width: 140px; }
 .card .v { font-size: 20px; font-weight: 700; }
 .card .k { color: #555; font-size: 12px; }
 .card .r { color: #555; font-size: 11px; }
 table { border-collapse: collapse; font-size: 12.5px; }
 th, td { border-bottom: 1px solid #e5e5e5; padding: 3px 8px; text-align: right; }
 th { background: #f6f6f6; }
 td.t, th.t { text-align: left; }
 img { max-width: 100%; height: auto; }
 .sources li { font-size: 12px; }
 dl.summary { grid-template-columns: repeat(2, max-content auto); }
 .printonly { display: none; }

 .small { font-size: 12px; color: #555; }
 dl { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; font-size: 12.5px; }
 dt { font-weight: 600; }
 dd { margin: 0; }
 @page { size: A4; margin: 9mm; }
 @media print {
   body { font-size: 9.5px; line-height: 1.3; max-width: none; margin: 0; padding: 0; }
   h1 { font-size: 15px; } h2 { font-size: 11px; margin: 6px 0 2px 0; }
   .sub, .note { margin: 2px 0; padding: 2px 6px; }
   .cards { gap: 4px; margin: 4px 0; } .card { padding: 2px 6px; min-width: 0; }
   .card .v { font-size: 13px; } .card .k, .card .r { font-size: 8.5px; }
   table { font-size: 8.5px; } th, td { padding: 1px 4px; }
   ul.sources { margin: 0; padding-left: 12px; }
   img.map { max-height: 90mm; max-width: 100%; width: auto; display: block; margin: 0 auto; }
   /* proposed posts, road exposure and the chart print beside the map, not below it: below,
      the demo's map had to shrink to 52 mm to stay on one sheet; beside, it keeps 112 mm */
   .mapgrid.withside { display: flex; gap: 5mm; align-items: flex-start; }
   .mapgrid.withside .mapcell { flex: 0 0 auto; }
   .mapgrid.withside .side { flex: 1 1 0; min-width: 0; }
   .mapgrid.withside img.map { max-height: 115mm; max-width: 112mm; margin: 0; }
   .mapgrid.withside img.chart { max-height: 30mm; max-width: 100%; }
   dl.exposure { gap: 0 6px; }
   table.sites { font-size: 7.5px; } table.sites td { white-space: nowrap; }
   img.chart { max-height: 20mm; width: auto; }
   dl.summary { grid-template-columns: repeat(3, max-content auto); gap: 0 8px; }
   tr.more { display: none; } .printonly { display: inline; }
   .small { margin: 2px 0; }
   .small, .sources li, dl, p { font-size: 8px; }
   .cols { columns: 2; column-gap: 8mm; }
   /* the page's definitions, the sources' notes and the input files stay on screen: printed,
      a sample page with proposed posts ran onto a second sheet with them */
   .noprint, .defs, .snote { display: none; }
   h2, table, img { break-inside: avoid; }
   /* ranges and the table by area take about 45 mm (the sample, printed): the map gives them
      room */
   body.dense img.map { max-height: 50mm; }
   body.dense .mapgrid.withside img.map { max-height: 80mm; }
   /* with ranges, corridor ranges and the by-area table too, the sample's last lines ran onto
      a second sheet: the incidents chart gives up 12 mm */
   body.dense img.chart { max-height: 14mm; }
   body.dense .mapgrid.withside img.chart { max-height: 18mm; }
 }
</style>
</head>
<body class="{% if dense %}dense{% endif %}">
<h1>{{ title }}</h1>
<div class="sub">{{ side_a }} – {{ side_b }} · generated {{ generated }} with gapmap {{ version }}</div>
{% for n in notes %}<div class="note">{{ n }}</div>{% endfor %}

<h2>Summary</h2>
<div class="cards">
{% for c in cards %}<div class="card"><div class="v">{{ c.value }}</div><div class="k">{{ c.label }}</div>{% if c.range %}<div class="r">90%: {{ c.range }}</div>{% endif %}</div>
{% endfor %}</div>
<dl class="summary">
{% for k, v in summary_rows %}<dt>{{ k }}</dt><dd>{{ v }}</dd>
{% endfor %}</dl>
{% if ranges_note %}<p class="small">{{ ranges_note }}</p>{% endif %}

<div class="mapgrid{% if side %} withside{% endif %}">
<div class="mapcell">
<h2>Map</h2>
<img class="map" alt="Map of the unguarded corridors between {{ side_a }} and {{ side_b }}" src="{{ map_png }}">
</div>
{% if side %}<div class="side">
{% if placement %}
<h2>Proposed new posts</h2>
<p>{{ placement.k }} new post(s): unguarded seam {{ placement.before }} km → {{ placement.after }} km
({{ placement.guarantee }}).{% if placement.common %} Each: {{ placement.common }}.{% endif %}</p>
{% if placement.rows %}<table class="sites">
<tr>{% for h in placement.head %}<th{% if loop.index == 1 or h == "Name" %} class="t"{% elif h in placement.screen_only %} class="noprint"{% endif %}>{{ h }}</th>{% endfor %}</tr>
{% for row in placement.rows %}<tr>{% for v in row %}{% set h = placement.head[loop.index0] %}<td{% if loop.index == 1 or h == "Name" %} class="t"{% elif h in placement.screen_only %} class="noprint"{% endif %}>{{ v }}</td>{% endfor %}</tr>
{% endfor %}</table>{% endif %}
{% endif %}

{% if exposure %}
<h2>Road exposure</h2>
<dl class="exposure">
{% for k, v in exposure.rows %}<dt>{{ k }}</dt><dd>{{ v }}</dd>
{% endfor %}</dl>
<p class="small">{{ exposure.text }}</p>
{% endif %}

{% if monthly_png %}
<h2>Incidents by {{ period }}</h2>
<img class="chart" alt="Incidents by {{ period }}" src="{{ monthly_png }}">
{% endif %}
</div>{% endif %}
</div>

<h2>Unguarded corridors{% if n_corridors > corridor_rows|length %} (the {{ corridor_rows|length }} longest of {{ n_corridors }}){% endif %}</h2>
{% if corridor_rows %}
<table>
<tr>{% for h in corridor_head %}<th{% if loop.index == 1 %} class="t"{% endif %}>{{ h }}</th>{% endfor %}</tr>
{% for row in corridor_rows %}<tr{% if loop.index > print_rows %} class="more"{% endif %}>{% for v in row %}<td{% if loop.index == 1 %} class="t"{% endif %}>{{ v }}</td>{% endfor %}</tr>
{% endfor %}</table>
<p class="small">Lengths are measured along the seam (geodesic); widths are d<sub>A</sub> + d<sub>B</sub>,
the separation of the two sides through the seam point.{% if corridor_rows|length > print_rows %}<span class="printonly"> The printed page lists the {{ print_rows }} longest; corridors.csv has them all.</span>{% endif %} Corridors shorter than
{{ min_length_km }} km are counted ({{ n_minor }}) but not listed.</p>
{% else %}<p>No unguarded corridor of {{ min_length_km }} km or more.</p>{% endif %}

{% if areas %}
<h2>By {{ areas.field }}{% if areas.rows|length > print_area_rows %}<span class="printonly"> (the {{ print_area_rows }} with the most unguarded seam of {{ areas.rows|length }})</span>{% endif %}</h2>
<table class="areas">
<tr>{% for h in areas.head %}<th{% if loop.index == 1 %} class="t"{% endif %}>{{ h }}</th>{% endfor %}</tr>
{% for row in areas.rows %}<tr{% if loop.index > print_area_rows %} class="more"{% endif %}>{% for v in row %}<td{% if loop.index == 1 %} class="t"{% endif %}>{{ v }}</td>{% endfor %}</tr>
{% endfor %}</table>
<p class="small">Corridors are cut at the area borders for this table: the rows add up to the
totals.{% if areas.rows|length > print_area_rows %}<span class="printonly"> The page on screen lists every area.</span>{% endif %}</p>
{% endif %}


<div class="cols">
<h2>Sources</h2>
{% if sources %}<ul class="sources">
{% for s in sources %}<li><b>{{ s.layer }}</b>: {{ s.name }}{% if s.licence %} ({{ s.licence }}){% endif %}{% if s.date %}, {{ s.date }}{% endif %}{% if s.note %}<span class="snote"> — {{ s.note }}</span>{% endif %}{% if s.url %}<span class="noprint"> · {{ s.url }}</span>{% endif %}</li>
{% endfor %}</ul>{% else %}<p class="small">No source or licence was given for the inputs (see [sources] in the scenario).</p>{% endif %}

<h2>Parameters and inputs</h2>
<dl>
{% for k, v in params %}<dt{% if k == "Inputs" %} class="noprint"{% endif %}>{{ k }}</dt><dd{% if k == "Inputs" %} class="noprint"{% endif %}>{{ v }}</dd>
{% endfor %}</dl>
<p class="small defs">Definitions: the seam is the median line between the two sides' zones; a seam
point is covered when it lies within a side's reach of its zones or within a post's range; an
unguarded corridor is a maximal stretch of uncovered seam; the gap region is the study area
minus every zone grown by its reach. The exploitation ratio is the incident density inside the
gap region divided by the density in the rest of the study area (95% exact Poisson interval).</p>
</div>
</body>
</html>
"""

#: Corridor rows on the printed page (the screen shows up to ``max_rows``): with the map, the
#: summary, the chart and the sources they fill one A4 page (printed in Chromium, counted).
PRINT_ROWS = 8
#: Corridor rows on the printed page when it also holds the table by area.
PRINT_ROWS_WITH_AREAS = 4
#: Area rows on the printed page (the areas with the most unguarded seam; the screen shows all).
PRINT_AREA_ROWS = 8
#: Headline figures that show a 90% range: (summary field, unit, decimals, scale).
_RANGED = {"seam_length_km": ("km", 1, 1.0), "unguarded_length_km": ("km", 1, 1.0),
           "unguarded_share": ("%", 1, 100.0), "longest_corridor_km": ("km", 1, 1.0),
           "corridors": ("", 0, 1.0), "width_mean_km": ("km", 1, 1.0),
           "gap_area_km2": ("km²", 0, 1.0), "incidents_in_gap": ("", 0, 1.0),
           "exploitation_ratio": ("", 3, 1.0)}

_ENV = Environment(autoescape=select_autoescape(default=True, default_for_string=True))


def figure_data_uri(fig, dpi: int = 200) -> str:
    """A matplotlib figure as a PNG data URI.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> figure_data_uri(Figure(figsize=(1, 1)), dpi=10)[:22]
    'data:image/png;base64,'
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_data_uri(png: str | os.PathLike | bytes) -> str:
    r"""An already drawn PNG (a file or its bytes) as a data URI, so a caller that has saved
    the map figure need not draw it again for the report.

    Raises
    ------
    InputError
        When the bytes are not a PNG image.

    Examples
    --------
    >>> png_data_uri(b"\x89PNG\r\n\x1a\n")
    'data:image/png;base64,iVBORw0KGgo='
    >>> png_data_uri(b"GIF89a")
    Traceback (most recent call last):
    ...
    gapmap.errors.InputError: map_png: not a PNG image — pass the map figure as a .png file or its bytes
    """
    given = isinstance(png, (bytes, bytearray))
    data = bytes(png) if given else Path(png).read_bytes()
    if data[:8] != _PNG_SIGNATURE:
        raise InputError(None if given else png, "map_png", "not a PNG image",
                         "pass the map figure as a .png file or its bytes")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _placement_section(placement: Any) -> dict | None:
    """The proposed new posts: their effect and one row per site."""
    sites = sites_frame(placement)
    if sites is None:
        return None
    pcols = [c for c in ("rank", "name", "gain_km", "gain_incidents", "range_km", "height_m")
             if c in sites.columns]
    ll = sites.to_crs(4326).geometry if sites.crs is not None else sites.geometry
    rows = [[cell(v, c) for v, c in zip(r, pcols)] + [f"{p.y:.5f}, {p.x:.5f}"]
            for r, p in zip(sites[pcols].itertuples(index=False), ll)]
    # A range or height every site shares is said once: printed beside the map, the table
    # has no room for columns that repeat one value.
    common, screen_only = [], []
    for col, unit, what in (("range_km", "km", "range"), ("height_m", "m", "high")):
        if col in pcols and sites[col].nunique(dropna=False) == 1:
            v = fmt(float(sites[col].iloc[0]), sig=3)
            common.append(f"{v} km range" if what == "range" else f"{v} m high")
            screen_only.append(label(col))
    return {"k": getattr(placement, "k", len(sites)),
            "before": fmt(getattr(placement, "unguarded_before_km", None), 1),
            "after": fmt(getattr(placement, "unguarded_after_km", None), 1),
            "guarantee": getattr(placement, "guarantee", "") or "",
            "head": [label(c) for c in pcols] + ["Lat, lon"], "rows": rows,
            "common": ", ".join(common) if len(sites) > 1 else "", "screen_only":
            screen_only if len(sites) > 1 else []}


def exposure_section(exposure: Any, origin: str | None = None) -> dict | None:
    """The road-exposure block: (label, value) rows of km and hours, and a sentence saying
    what they are.

    ``exposure`` is an :class:`gapmap.exposure.Exposure` (or an object with ``pieces`` and
    ``summary``, as read back from ``exposure.gpkg`` and ``exposure.json``) or the pieces
    alone (then the km are the sums of their ``length_km``). ``origin`` names the cell's base;
    by default the summary's ``origin`` when it has one.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from types import SimpleNamespace
    >>> pieces = gpd.GeoDataFrame({"reachable": [True, True, False], "seen": [False, True, True],
    ...                            "length_km": [12.5, 3.0, 40.0]}, geometry=[None] * 3)
    >>> sec = exposure_section(SimpleNamespace(pieces=pieces, summary={"hours": 3.0}),
    ...                        origin="Jebel Hamrin")
    >>> dict(sec["rows"])["Exposed"], dict(sec["rows"])["Reachable in 3 h on foot"]
    ('12.5 km', '15.5 km')
    """
    pieces, summary = exposure_frame(exposure)
    if pieces is None:
        return None
    km = exposure_km(exposure)
    origin = origin or summary.get("origin") or ""
    hours = summary.get("hours")
    walk = f"{fmt(float(hours), sig=3)} h" if hours is not None else fmt(None)
    rows = ([("From", str(origin))] if origin else []) + [
        ("Road", f"{fmt(km.get('road_km'), 1)} km"),
        (f"Reachable in {walk} on foot", f"{fmt(km.get('reachable_km'), 1)} km"),
        ("Seen by a post", f"{fmt(km.get('seen_km'), 1)} km"),
        ("Exposed", f"{fmt(km.get('exposed_km'), 1)} km")]
    posts = summary.get("posts")
    within = f"within {walk}" if hours is not None else "in the time given"
    seen_by = (f"none of the {fmt(int(posts))} posts" if posts is not None and int(posts) > 1
               else "no post")
    text = (f"Exposed: road reachable on foot {within} of the origin (Tobler's walking speed "
            f"over the terrain) and seen by {seen_by}; cyan on the map. Lengths are "
            "geodesic, along the roads.")
    off = summary.get("off_dem_km")
    if off is not None and float(off) > 0:
        text += (f" {fmt(float(off), 1)} km of road lie off the terrain model: counted as road,"
                 " neither reachable nor seen.")
    return {"rows": rows, "text": text}


def range_texts(uncertainty: Any) -> dict[str, str]:
    """The 90% range (p05–p95) of each headline figure of an uncertainty run, as text.

    ``uncertainty`` is a :class:`gapmap.uncertainty.Uncertainty` or its ``table`` (one row per
    summary field, index ``field``, with ``p05`` and ``p95``: ``uncertainty.csv``).

    Examples
    --------
    >>> t = pd.DataFrame({"p05": [380.2, 0.41], "p95": [450.4, 0.52]},
    ...                  index=pd.Index(["unguarded_length_km", "unguarded_share"], name="field"))
    >>> range_texts(t)
    {'unguarded_length_km': '380.2–450.4 km', 'unguarded_share': '41.0–52.0%'}
    """
    table = getattr(uncertainty, "table", uncertainty)
    if table is None or not {"p05", "p95"} <= set(table.columns):
        return {}
    out = {}
    for name, (unit, nd, k) in _RANGED.items():
        if name not in table.index:
            continue
        lo, hi = (float(table.loc[name, c]) * k for c in ("p05", "p95"))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            continue
        sep = "" if unit in ("%", "") else " "
        out[name] = f"{fmt(lo, nd)}–{fmt(hi, nd)}{sep}{unit}"
    return out


def _ranges_note(uncertainty: Any, summary: dict) -> str:
    """What the ranges are, and a warning when the run was made on other inputs."""
    table = getattr(uncertainty, "table", uncertainty)
    draws = getattr(uncertainty, "draws", None)
    n = len(draws) if draws is not None and len(draws) else None
    text = ("Ranges: 5th–95th percentile of the figures over "
            + (f"{n:,} perturbed copies" if n else "perturbed copies")
            + " of the inputs (gapmap uncertainty).")
    if "base" in table.columns and "unguarded_length_km" in table.index:
        base = float(table.loc["unguarded_length_km", "base"])
        here = summary.get("unguarded_length_km")
        # The copies perturb one analysis: another one's ranges would be misleading.
        if here is not None and math.isfinite(base) and abs(base - float(here)) > \
                max(1e-3 * abs(float(here)), 0.05):
            text += (f" Their unperturbed unguarded length ({fmt(base, 1)} km) differs from this "
                     f"analysis ({fmt(float(here), 1)} km): the run was made on other inputs.")
    return text


def _area_section(by_area: pd.DataFrame | None, ranges: bool) -> dict | None:
    """The by-area table: one row per area, the most unguarded seam first."""
    if by_area is None or not len(by_area):
        return None
    field = str(by_area.columns[0])
    t = by_area.sort_values("unguarded_length_km", ascending=False, kind="stable")
    cols = [c for c in ("seam_length_km", "unguarded_length_km") if c in t.columns]
    has_range = ranges and {"unguarded_length_km_p05", "unguarded_length_km_p95"} <= set(t.columns)
    has_inc = "incidents" in t.columns and t["incidents"].notna().any()
    names = {"seam_length_km": "Seam (km)", "unguarded_length_km": "Unguarded (km)"}
    head = [field] + [names[c] for c in cols] + (["90% range (km)"] if has_range else []) + \
        ["Unguarded share"] + (["Incidents"] if has_inc else [])
    rows = []
    for _, r in t.iterrows():
        row = [str(r[field])] + [fmt(r[c], 1) for c in cols]
        if has_range:
            row.append(f"{fmt(r['unguarded_length_km_p05'], 1)}–"
                       f"{fmt(r['unguarded_length_km_p95'], 1)}")
        share = r.get("unguarded_share")
        row.append(f"{fmt(100 * float(share), 1)}%" if share is not None
                   and math.isfinite(float(share)) else fmt(None))
        if has_inc:
            row.append(cell(r["incidents"], "incidents"))
        rows.append(row)
    return {"field": field, "head": head, "rows": rows}


def incident_period(inc) -> str:
    """First–last incident date, each at the precision it is known: "2003–2019" for events
    dated only to their year, "2017-10-16 – 2019-03-01" for dated ones.

    Examples
    --------
    >>> import geopandas as gpd
    >>> f = gpd.GeoDataFrame({"date": pd.to_datetime(["2003-07-01", "2019-07-01"]),
    ...                       "date_precision": ["year", "year"]}, geometry=[None, None])
    >>> incident_period(f)
    '2003–2019 (years only)'
    """
    if inc is None or not len(inc) or "date" not in inc.columns:
        return ""
    d = pd.to_datetime(inc["date"], errors="coerce")
    if not d.notna().any():
        return ""
    prec = inc["date_precision"].astype(str) if "date_precision" in inc.columns else \
        pd.Series("day", index=inc.index)
    first, last = d.idxmin(), d.idxmax()

    def one(i) -> str:
        p = prec.loc[i]
        return str(d.loc[i].year) if p == "year" else d.loc[i].strftime(
            "%Y-%m" if p == "month" else "%Y-%m-%d")
    text = f"{one(first)}–{one(last)}" if prec.loc[first] == "year" \
        and prec.loc[last] == "year" else f"{one(first)} – {one(last)}"
    if (prec[d.notna()] == "year").all():
        text += " (years only)"
    return text


def render_report(analysis, *, incidents: Any = None, monthly: pd.DataFrame | None = None,
                  placement: Any = None, title: str | None = None, max_rows: int = 40,
                  dpi: int = 200, sources: Sequence = (), places: Any = None,
                  areas: Any = None, water: Any = None, uncertainty: Any = None,
                  by_area: pd.DataFrame | None = None, exposure: Any = None,
                  exposure_origin: str | None = None,
                  map_png: str | os.PathLike | bytes | None = None) -> str:
    """The report as an HTML string (see :func:`write_report`)."""
    s = analysis.summary or {}
    title = title or f"gapmap report: {analysis.side_a.name} – {analysis.side_b.name}"
    inc = incident_frame(incidents)
    notes = illustrative_notes(analysis.zones, inc)
    if analysis.inputs and any(is_synthetic(v) for v in analysis.inputs.values()):
        notes.append("The terrain (DEM) is synthetic.")
    share = s.get("unguarded_share")
    rng = range_texts(uncertainty) if uncertainty is not None else {}
    cards = [
        {"value": f"{fmt(s.get('unguarded_length_km'), 1)} km", "label": "unguarded seam"},
        {"value": (f"{fmt(100 * float(share), 1)}%" if share is not None
                   and math.isfinite(float(share)) else fmt(None)),
         "label": "of the seam unguarded"},
        {"value": f"{fmt(s.get('longest_corridor_km'), 1)} km", "label": "longest corridor"},
        {"value": f"{s.get('corridors', 0)}", "label": "corridors"},
    ]
    for c, name in zip(cards, ("unguarded_length_km", "unguarded_share", "longest_corridor_km",
                               "corridors")):
        c["range"] = rng.get(name)
    if s.get("exploitation_ratio") is not None and "exploitation_ratio" in s:
        cards.append({"value": fmt(s["exploitation_ratio"], 3),
                      "label": f"exploitation ratio (95% CI {fmt(s.get('exploitation_ratio_low'), 3)}"
                               f"–{fmt(s.get('exploitation_ratio_high'), 3)})",
                      "range": rng.get("exploitation_ratio")})
    summary_rows = [
        ("Seam length", f"{fmt(s.get('seam_length_km'), 1)} km"),
        ("Unguarded length", f"{fmt(s.get('unguarded_length_km'), 1)} km"),
        ("Corridors (≥ min length)", cell(s.get("corridors"))),
        ("Shorter stretches", cell(s.get("minor_corridors"))),
        ("Mean seam width", f"{fmt(s.get('width_mean_km'), 1)} km"),
        ("Gap region area", f"{fmt(s.get('gap_area_km2'), 0)} km²"),
    ]
    for key, name in (("incidents_total", "Incidents"), ("incidents_in_gap", "Incidents in the gap"),
                       ("incidents_coarse", "Incidents with coarse location (left out)")):
        if key in s:
            summary_rows.append((name, cell(s[key])))
    fields = {"Seam length": "seam_length_km", "Unguarded length": "unguarded_length_km",
              "Corridors (≥ min length)": "corridors", "Mean seam width": "width_mean_km",
              "Gap region area": "gap_area_km2", "Incidents in the gap": "incidents_in_gap"}
    summary_rows = [(k, f"{v} (90%: {rng[fields[k]]})" if rng.get(fields.get(k, "")) else v)
                    for k, v in summary_rows]

    if map_png is not None:  # drawn once by the caller (the demo's map.png): 1.3-1.9 s saved
        map_uri = png_data_uri(map_png)
    else:
        fig = plot_map(analysis, incidents=inc, placement=placement, places=places, areas=areas,
                       water=water, sources=sources, width_in=7.2, exposure=exposure)
        map_uri = figure_data_uri(fig, dpi=dpi)

    table = corridor_table(analysis)
    cols = [c for c in ("corridor_id", "length_km", "width_min_km", "width_mean_km",
                        "width_max_km", "slope_mean_deg", "tri_mean_m", "crossing_hours",
                        "roads_crossed", "incidents", "fatalities", "incidents_per_100km",
                        "first_date", "last_date") if c in table.columns]
    head = [label(c) for c in cols]
    rows = [[cell(v, c) for v, c in zip(r, cols)]
            for r in table[cols].head(max_rows).itertuples(index=False)]
    from .uncertainty import corridor_ranges

    per = corridor_ranges(uncertainty)
    if per and "length_km" in cols:  # each corridor's length range and share of copies open
        at = cols.index("length_km") + 1
        head[at:at] = ["90% range (km)", "Open in copies"]
        for row, cid in zip(rows, table["corridor_id"].astype(str)):
            row[at:at] = list(per.get(cid, (fmt(None), fmt(None))))

    monthly_png, period = None, "month"
    if monthly is not None and len(monthly):
        from .hotspots import plot_monthly

        period = str(monthly.index.name or "month")
        monthly_png = figure_data_uri(plot_monthly(monthly, title=None), dpi=dpi)

    place = _placement_section(placement)
    exposure_block = exposure_section(exposure, exposure_origin)

    st = analysis.settings
    params = [("Side A", f"{analysis.side_a.name} = {', '.join(analysis.side_a.forces)}"),
              ("Side B", f"{analysis.side_b.name} = {', '.join(analysis.side_b.forces)}"),
              ("Reach", f"{st.reach_a:g} km (A), {st.reach_b:g} km (B)"),
              ("Max width", f"{st.max_width_km:g} km"),
              ("Min corridor length", f"{st.min_length_km:g} km"),
              ("CRS", crs_label(analysis.crs))]
    files = [f"{Path(str(v)).name} ({k})" for k, v in (analysis.inputs or {}).items()]
    if files:  # file names only: a local path says nothing to a reader and may say too much
        params.append(("Inputs", ", ".join(files)))
    inc_period = incident_period(inc)
    if inc_period:
        params.append(("Incident period", inc_period))
    control = next((s.date for s in sources if s.layer == "zones" and s.date), "")
    params.append(("Control layer date", control or "not stated"))
    params.append(("gapmap version", __version__))
    return _ENV.from_string(_TEMPLATE).render(
        title=title, side_a=analysis.side_a.name, side_b=analysis.side_b.name,
        generated=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__, notes=notes, cards=cards, summary_rows=summary_rows,
        map_png=map_uri, corridor_head=head, corridor_rows=rows, n_corridors=len(table),
        n_minor=s.get("minor_corridors", 0), min_length_km=f"{st.min_length_km:g}",
        monthly_png=monthly_png, period=period, placement=place, params=params,
        exposure=exposure_block, side=bool(place or exposure_block or monthly_png),
        sources=list(sources), dense=bool(rng) or by_area is not None,
        print_rows=PRINT_ROWS if by_area is None else PRINT_ROWS_WITH_AREAS,
        ranges_note=_ranges_note(uncertainty, s) if rng else "",
        areas=_area_section(by_area, ranges=uncertainty is not None),
        print_area_rows=PRINT_AREA_ROWS)


def write_report(analysis, path: str | os.PathLike, *, incidents: Any = None,
                 monthly: pd.DataFrame | None = None, placement: Any = None,
                 title: str | None = None, dpi: int = 200, sources: Sequence = (),
                 places: Any = None, areas: Any = None, water: Any = None,
                 uncertainty: Any = None, by_area: pd.DataFrame | None = None,
                 exposure: Any = None, exposure_origin: str | None = None,
                 map_png: str | os.PathLike | bytes | None = None) -> Path:
    """Write the one-page, self-contained HTML report, atomically.

    Parameters
    ----------
    analysis
        A :class:`gapmap.Analysis` (with incident fields if they were computed).
    path
        Output ``.html`` file.
    incidents
        ``Incidents``, ``IncidentMetrics`` or a point GeoDataFrame: adds the incidents to the
        map.
    monthly
        Incident counts by period (:func:`gapmap.hotspots.monthly_counts`), drawn as a chart;
        no chart without it.
    placement
        A ``Placement``: adds the proposed new posts and their effect.
    title
        Page title.
    dpi
        Resolution of the inlined figures (200: sharp in print).
    uncertainty
        A :class:`gapmap.uncertainty.Uncertainty` (or its ``table``, as read back from
        ``uncertainty.csv``): each headline figure shows its 90% range (p05–p95), e.g.
        "84.0 km (90%: 80.0–88.0 km)".
    by_area
        The table of :func:`gapmap.by_area.breakdown` (its first column the area field): a
        table of the areas, the most unguarded seam first, with unguarded length and share and
        incidents (and, with ``uncertainty``, the per-area range when the table carries
        ``unguarded_length_km_p05``/``_p95``). The printed page lists the
        :data:`PRINT_AREA_ROWS` largest.
    exposure
        Road exposure: an :class:`gapmap.exposure.Exposure` (or its pieces, as
        :func:`gapmap.exposure.read_exposure` returns): the map draws the exposed stretches
        and a "Road exposure" block gives the road, reachable, seen and exposed km and the
        walking hours (:func:`exposure_section`).
    exposure_origin
        The name of the exposure's origin (the cell's base), shown in that block.
    map_png
        An already drawn map figure (a ``.png`` path or its bytes, e.g. what
        :func:`gapmap.figures.save_figure` wrote), inlined as it is instead of drawing the map
        again; it should show the same ``incidents``, ``placement`` and layers. Anything but a
        PNG is refused (:class:`gapmap.errors.InputError`).

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> write_report(result, "out/report.html", incidents=inc,
    ...              monthly=monthly_counts(result.incidents))  # doctest: +SKIP
    PosixPath('out/report.html')
    """
    target = Path(path)
    check_html_path(target)
    page = render_report(analysis, incidents=incidents, monthly=monthly, placement=placement,
                         title=title, dpi=dpi, sources=sources, places=places, areas=areas,
                         water=water, uncertainty=uncertainty, by_area=by_area,
                         exposure=exposure, exposure_origin=exposure_origin,
                         map_png=map_png)
    with atomic_path(target) as tmp:
        tmp.write_text(page, encoding="utf-8")
    log.info("wrote %s", target)
    return target
