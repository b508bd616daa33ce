"""Files of a series and of a comparison: tables, change layers, the chart and the maps.

- :func:`plot_series`: unguarded and seam km over time, opened and closed km below (lines, no
  markers past 60 dates, date ticks chosen by matplotlib: readable at 700+ dates);
- :func:`series_map`: an offline Leaflet page with a slider over the dates, showing each date's
  seam, corridors and the stretches opened and closed since the date before;
- :func:`write_series` / :func:`write_compare`: every output of ``gapmap series`` /
  ``gapmap compare``, staged in one :func:`gapmap.io.atomic_dir` (an interrupted run leaves
  the output folder as it was).

The map page is built from the pieces of :mod:`gapmap.maps` (vendored Leaflet, one
self-contained file, Content-Security-Policy via :func:`gapmap.maps.render_html`). Every value
that comes from the data (dates, sides, ids) enters the page as JSON data only (Jinja's
``tojson``, which escapes ``<``, ``>``, ``&`` and quotes) and is shown with ``textContent``;
nothing from the data is ever part of the page's template or HTML source.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import MacroElement
from folium.template import Template
from pyproj import CRS

from .crs import to_lonlat
from .incidents import format_date_columns
from .io import atomic_dir
from .maps import DataElement  # the page's one JSON data block (data never enter a template)

__all__ = ["plot_series", "series_map", "compare_map", "write_series", "write_compare"]

log = logging.getLogger(__name__)

_COLORS = {"seam": "#252525", "corridor": "#e31a1c", "opened": "#d95f02", "closed": "#1b9e77",
           "unguarded": "#e31a1c"}
#: Above this many vertices in all dates together, the map's lines are simplified more.
_MAP_VERTICES = 250_000


# --------------------------------------------------------------------------------------------
# chart


def plot_series(table: pd.DataFrame, *, title: str | None = None):
    """Unguarded and seam km over time (top), opened and closed km per date (bottom).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"date": ["2024-01-01", "2024-01-02"], "seam_length_km": [10., 10.],
    ...                   "unguarded_length_km": [4., 6.], "opened_km": [None, 2.],
    ...                   "closed_km": [None, 0.]})
    >>> fig = plot_series(t)
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['km', 'km per date']
    """
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    days = pd.to_datetime(table["date"])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]})
    marker = "o" if len(table) <= 60 else None
    top.plot(days, table["seam_length_km"], color=_COLORS["seam"], marker=marker, ms=3, lw=1.2,
             label="seam km")
    top.plot(days, table["unguarded_length_km"], color=_COLORS["unguarded"], marker=marker,
             ms=3, lw=1.5, label="unguarded km")
    top.set_ylabel("km")
    top.set_ylim(bottom=0)
    top.grid(alpha=0.3)
    top.legend(loc="upper left", frameon=False)
    opened = pd.to_numeric(table["opened_km"], errors="coerce").fillna(0).to_numpy()
    closed = pd.to_numeric(table["closed_km"], errors="coerce").fillna(0).to_numpy()
    # Thin vertical lines rather than bars: bars of one day vanish or overlap at 700 dates.
    bottom.vlines(days, 0, opened, color=_COLORS["opened"], lw=1.5, label="opened km")
    bottom.vlines(days, 0, -closed, color=_COLORS["closed"], lw=1.5, label="closed km (below 0)")
    bottom.axhline(0, color="#555", lw=0.6)
    bottom.set_ylabel("km per date")
    bottom.grid(alpha=0.3)
    bottom.legend(loc="upper left", frameon=False)
    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    bottom.xaxis.set_major_locator(locator)
    bottom.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    if title:
        top.set_title(str(title).replace("$", r"\$"))
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# map pages


class _SeriesLayers(DataElement, MacroElement):
    """Each date's lines, drawn when the slider is on that date.

    The template holds only this code and generated names: the data travel in the page's JSON
    block (:func:`gapmap.maps.render_html`) under this element's key, and every text from them
    is shown with ``textContent``.
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function () {
            var map = {{ this._parent.get_name() }};
            var data = gapmap.data({{ this.key()|tojson }});
            var group = L.layerGroup().addTo(map);
            var styles = data.styles;
            function tip(layer, text) {
                var span = document.createElement("span");
                span.textContent = text;
                layer.bindTooltip(span, {sticky: true});
            }
            function draw(i) {
                group.clearLayers();
                var day = data.dates[i];
                ["seam", "corridors", "closed", "opened"].forEach(function (kind) {
                    var fc = data.layers[kind][i];
                    if (!fc) { return; }
                    L.geoJSON(fc, {
                        style: styles[kind],
                        onEachFeature: function (f, l) { tip(l, f.properties.label); }
                    }).addTo(group);
                });
                label.textContent = data.captions[i];
            }
            var ctl = L.control({position: "bottomleft"});
            var label;
            ctl.onAdd = function () {
                var div = L.DomUtil.create("div", "gm-panel gm-slider");
                var title = document.createElement("div");
                title.style.fontWeight = "700";
                title.textContent = data.title;
                div.appendChild(title);
                var input = document.createElement("input");
                input.type = "range"; input.min = 0; input.max = data.dates.length - 1;
                input.step = 1; input.value = data.dates.length - 1;
                input.id = "gm-date-slider";
                input.setAttribute("aria-label", "date");
                div.appendChild(input);
                label = document.createElement("div");
                label.id = "gm-date-label";
                div.appendChild(label);
                var legend = document.createElement("div");
                data.legend.forEach(function (row) {
                    var r = document.createElement("div");
                    r.className = "gm-row";
                    var sw = document.createElement("span");
                    sw.className = "gm-line";
                    sw.style.borderTopColor = row[1];
                    var t = document.createElement("span");
                    t.textContent = row[0];
                    r.appendChild(sw); r.appendChild(t);
                    legend.appendChild(r);
                });
                div.appendChild(legend);
                input.addEventListener("input", function () { draw(+input.value); });
                L.DomEvent.disableClickPropagation(div);
                L.DomEvent.disableScrollPropagation(div);
                return div;
            };
            ctl.addTo(map);
            draw(data.dates.length - 1);
        })();
        {% endmacro %}
    """)

    def __init__(self, payload: dict) -> None:
        super().__init__()
        self._name = "GapmapSeries"
        self._payload = payload

    def payload(self) -> dict:
        return self._payload


def _fc(gdf: gpd.GeoDataFrame | None, crs: CRS, labels: list[str], tol_m: float) -> dict | None:
    """A GeoJSON FeatureCollection in lon/lat, lines simplified by ``tol_m``, 5 decimals."""
    if gdf is None or len(gdf) == 0:
        return None
    geoms = shapely.simplify(gdf.geometry.values, tol_m) if tol_m > 0 else gdf.geometry.values
    ll = shapely.transform(to_lonlat(np.asarray(geoms, dtype=object), crs, densify_m=0),
                           lambda xy: np.round(xy, 5))
    feats = [{"type": "Feature", "properties": {"label": lab},
              "geometry": json.loads(shapely.to_geojson(g))}
             for g, lab in zip(ll, labels) if g is not None and not g.is_empty]
    return {"type": "FeatureCollection", "features": feats} if feats else None


def _km(v: Any) -> str:
    return "—" if v is None or not np.isfinite(float(v)) else f"{float(v):,.1f} km"


def _tolerance(frames: list[gpd.GeoDataFrame]) -> float:
    """Simplification that keeps the page small: none for small series, more for long ones."""
    n = sum(int(shapely.get_num_coordinates(f.geometry.values).sum()) for f in frames if len(f))
    return 0.0 if n <= _MAP_VERTICES else float(min(50.0 * n / _MAP_VERTICES, 2000.0))


_CSS = """
.leaflet-container { background: #eef0ea; font: 13px/1.35 system-ui, sans-serif; }
.gm-panel { background: rgba(255,255,255,0.94); padding: 8px 10px; border-radius: 5px;
  box-shadow: 0 1px 5px rgba(0,0,0,0.35); max-width: 340px; color: #222; }
.gm-row { display: flex; align-items: center; gap: 6px; margin: 2px 0; }
.gm-line { display: inline-block; width: 18px; height: 0; border-top: 3px solid; flex: none; }
.gm-slider input { width: 260px; }
"""


class _Css(MacroElement):
    _template = Template("{% macro header(this, kwargs) %}<style>{{ this.css }}</style>"
                         "{% endmacro %}")

    def __init__(self) -> None:
        super().__init__()
        self._name = "GapmapSeriesCss"
        self.css = _CSS


def _base_map(frames: list[gpd.GeoDataFrame], title: str) -> folium.Map:
    import html

    bounds = [f.to_crs(4326).total_bounds for f in frames if len(f)]
    b = np.array(bounds) if bounds else np.array([[-1.0, -1.0, 1.0, 1.0]])
    w, s, e, n = b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()
    m = folium.Map(location=[(s + n) / 2, (w + e) / 2], zoom_start=8, tiles=None,
                   control_scale=True)
    # Leaflet only (vendored, inlined by render_html); folium's jQuery/Bootstrap are dropped.
    m.default_js = [("leaflet", "gapmap-asset:leaflet.js")]
    m.default_css = [("leaflet_css", "gapmap-asset:leaflet.css")]
    m._gapmap_offline = True
    m.fit_bounds([[s, w], [n, e]])
    m.get_root().title = html.escape(title)  # folium writes the title into <title> as is
    m.add_child(_Css())
    return m


def series_map(series, *, title: str | None = None) -> folium.Map:
    """The series map: a slider over the dates; each date's seam, corridors, opened and closed.

    Parameters
    ----------
    series
        A :class:`gapmap.series.Series`.
    title
        Page and panel title.

    Returns
    -------
    folium.Map
        Save it with :func:`gapmap.maps.save_map`.
    """
    crs = series.crs
    title = title or "Change over time"
    dates = [d.isoformat() for d in series.dates]
    tol = _tolerance([series.seam, series.corridors, series.opened, series.closed])
    layers: dict[str, list] = {"seam": [], "corridors": [], "opened": [], "closed": []}
    by_date = {k: dict(tuple(df.groupby(col))) if len(df) else {}
               for k, df, col in (("seam", series.seam, "date"),
                                  ("corridors", series.corridors, "date"),
                                  ("opened", series.opened, "date_to"),
                                  ("closed", series.closed, "date_to"))}
    for d in dates:
        seam = by_date["seam"].get(d)
        layers["seam"].append(_fc(seam, crs, ["seam"] * (0 if seam is None else len(seam)), tol))
        cor = by_date["corridors"].get(d)
        layers["corridors"].append(None if cor is None else _fc(
            cor, crs, [f"corridor {u}: {_km(k)}" for u, k in
                       zip(cor["corridor_uid"], cor["length_km"])], tol))
        for kind in ("opened", "closed"):
            ch = by_date[kind].get(d)
            layers[kind].append(None if ch is None else _fc(
                ch, crs, [f"{kind} {a} → {b}: {_km(k)}" for a, b, k in
                          zip(ch["date_from"], ch["date_to"], ch["length_km"])], tol))
    captions = []
    for _, row in series.table.iterrows():
        cap = (f"{row['date']}: unguarded {_km(row['unguarded_length_km'])} of "
               f"{_km(row['seam_length_km'])} seam")
        if pd.notna(row.get("opened_km")):
            cap += f"; opened {_km(row['opened_km'])}, closed {_km(row['closed_km'])}"
        captions.append(cap)
    m = _base_map([series.seam, series.corridors], title)
    m.add_child(_SeriesLayers(_payload(title, dates, layers, captions)))
    return m


def _payload(title: str, dates: list[str], layers: dict, captions: list[str]) -> dict:
    return {
        "title": title, "dates": dates, "layers": layers, "captions": captions,
        "styles": {"seam": {"color": _COLORS["seam"], "weight": 1.5, "dashArray": "6 4"},
                   "corridors": {"color": _COLORS["corridor"], "weight": 4, "opacity": 0.8},
                   "opened": {"color": _COLORS["opened"], "weight": 7, "opacity": 0.6},
                   "closed": {"color": _COLORS["closed"], "weight": 7, "opacity": 0.6}},
        "legend": [["seam", _COLORS["seam"]], ["unguarded corridor", _COLORS["corridor"]],
                   ["opened since the date before", _COLORS["opened"]],
                   ["closed since the date before", _COLORS["closed"]]],
    }


def compare_map(comparison, *, title: str | None = None) -> folium.Map:
    """The comparison map: the seam after, opened stretches and closed stretches with their km.

    Returns
    -------
    folium.Map
    """
    series = comparison.series
    crs = series.crs
    title = title or f"{comparison.labels[0]} → {comparison.labels[1]}"
    tol = _tolerance([series.seam, series.opened, series.closed])
    after = series.dates[-1].isoformat()
    seam = series.seam.loc[series.seam["date"] == after] if len(series.seam) else series.seam
    layers = {
        "seam": [_fc(seam, crs, [f"seam ({comparison.labels[1]})"] * len(seam), tol)],
        "corridors": [None],
        "opened": [_fc(comparison.opened, crs, [f"opened: {_km(k)}" for k in
                                                comparison.opened["length_km"]], tol)],
        "closed": [_fc(comparison.closed, crs, [f"closed: {_km(k)}" for k in
                                                comparison.closed["length_km"]], tol)],
    }
    t = comparison.table.set_index("field")
    caption = (f"opened {_km(float(comparison.opened['length_km'].sum()))}, closed "
               f"{_km(float(comparison.closed['length_km'].sum()))}; unguarded "
               f"{_km(t.loc['unguarded_length_km', 'before'])} → "
               f"{_km(t.loc['unguarded_length_km', 'after'])}")
    m = _base_map([series.seam], title)
    payload = _payload(title, [f"{comparison.labels[0]} → {comparison.labels[1]}"], layers,
                       [caption])
    payload["legend"] = [[f"seam ({comparison.labels[1]})", _COLORS["seam"]],
                         ["opened", _COLORS["opened"]], ["closed", _COLORS["closed"]]]
    m.add_child(_SeriesLayers(payload))
    return m


# --------------------------------------------------------------------------------------------
# files


def _write_gpkg(path: Path, layers: dict[str, gpd.GeoDataFrame]) -> None:
    for name, gdf in layers.items():
        out = gdf.copy()
        if out.crs is not None:
            out = out.to_crs(4326)
        out.to_file(path, layer=name, driver="GPKG")


def _figure(table: pd.DataFrame, path: Path, title: str | None) -> None:
    import matplotlib.pyplot as plt

    fig = plot_series(table, title=title)
    fig.savefig(path, dpi=150)
    plt.close(fig)


def write_series(series, out_dir: str | os.PathLike, *, title: str | None = None,
                 tables: dict[str, pd.DataFrame] | None = None) -> dict[str, Path]:
    """Write ``series.csv``, ``corridors.csv``, ``changes.gpkg``, ``series.png`` and
    ``map.html`` into ``out_dir``, all or nothing; ``tables`` (file name → table, e.g.
    ``{"by_area.csv": ...}``) are written as CSV in the same step.

    Returns
    -------
    dict
        File name → final path.
    """
    from .maps import save_map

    out = Path(out_dir)
    names = ["series.csv", "corridors.csv", "changes.gpkg", "series.png", "map.html"]
    names += list(tables or {})
    with atomic_dir(out) as stage:
        for name, table in (tables or {}).items():
            table.to_csv(stage / name, index=False)
        series.table.to_csv(stage / "series.csv", index=False)
        format_date_columns(pd.DataFrame(series.corridors.drop(
            columns=series.corridors.geometry.name))).to_csv(stage / "corridors.csv", index=False)
        _write_gpkg(stage / "changes.gpkg", {"opened": series.opened, "closed": series.closed,
                                             "seam": series.seam,
                                             "corridors": series.corridors})
        _figure(series.table, stage / "series.png", title)
        save_map(series_map(series, title=title), stage / "map.html")
    return {n: out / n for n in names}


def write_compare(comparison, out_dir: str | os.PathLike, *, title: str | None = None
                  ) -> dict[str, Path]:
    """Write ``compare.csv``, ``changes.gpkg`` and ``map.html`` into ``out_dir``, all or nothing."""
    from .maps import save_map

    out = Path(out_dir)
    s = comparison.series
    with atomic_dir(out) as stage:
        comparison.table.to_csv(stage / "compare.csv", index=False)
        _write_gpkg(stage / "changes.gpkg", {"opened": comparison.opened,
                                             "closed": comparison.closed,
                                             "seam": s.seam, "corridors": s.corridors})
        save_map(compare_map(comparison, title=title), stage / "map.html")
    return {n: out / n for n in ("compare.csv", "changes.gpkg", "map.html")}
