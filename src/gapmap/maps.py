"""Interactive map of an analysis: one self-contained, offline HTML page.

:func:`make_map` builds a :class:`folium.Map` with one toggleable layer per input (zones by
force, the seam, corridors coloured by length, the gap region, posts and their ranges,
incidents with a month slider, hillshade, coverage, routes, hot spots, new-post sites), a
legend, a scale bar and a panel with the headline figures. :func:`save_map` writes it as ONE
HTML file: Leaflet and its plugins are copied into the page from ``gapmap/assets``, so the map
opens without network access and asks no third-party server for anything. With
``offline=True`` (the default) the page also carries a Content-Security-Policy that forbids
every network request.

Data stay data. folium renders each element's script with Jinja and branca then parses that
output *again* as a template (``MacroElement.render`` wraps it in ``Element(template=…)``), so
any text from the inputs that reached a script would be evaluated as Jinja: ``{{7*7}}`` in a
zone name would print 49, and worse. Here no string from the data ever enters a template:
every layer's features, popups, legend and panel text travel in ONE JSON block
(``<script type="application/json" id="gapmap-data">``, with ``<``, ``>`` and ``&`` escaped)
that :func:`render_html` adds after folium has rendered, and the element scripts only name
their block by its (generated) key. Text inside that JSON is HTML-escaped before it reaches a
popup, tooltip, legend or panel. The page's CSP admits only the inline scripts gapmap wrote,
by their SHA-256 hashes (no ``'unsafe-inline'``), so a script smuggled into the page would not
run either.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import MacroElement
from folium.template import Template
from pyproj import CRS, Transformer

from .crs import to_lonlat
from .errors import GapmapError, InputError
from .io import atomic_path
from .sources import attribution
from .style import (find_column, CORRIDOR_CMAP, EXPOSURE_CLASSES, HOTSPOT_CLASSES, PALETTE_OTHER,
                    check_html_path, exposure_classes, exposure_frame, fmt, force_colors,
                    illustrative_notes, incident_frame, is_illustrative, is_synthetic, label,
                    side_label, sites_frame)

__all__ = ["make_map", "save_map", "render_html", "json_for_html", "DataElement", "CLUSTER_MAX",
           "ASSET_DIR", "AGGREGATE_MIN", "MAX_PLACES", "EXPOSURE_CLASSES", "ROUTE_FIELDS",
           "read_routes", "read_sites", "read_uncertainty",
           "illustrative_notes", "force_colors", "incident_frame"]

log = logging.getLogger(__name__)

ASSET_DIR = Path(__file__).with_name("assets")
#: Up to this many incidents are drawn as clustered markers with popups; beyond, as a heat map.
CLUSTER_MAX = 10_000
#: From this many incidents on they are counted per hexagon (a heat map of a million points
#: weighs ~25 MB and takes seconds to draw).
AGGREGATE_MIN = 200_000
_ASSET_SCHEME = "gapmap-asset:"
#: Asset file by the name it is linked under (our own names and folium's CDN file names).
_ASSETS = {
    "leaflet.js": "leaflet/leaflet.js",
    "leaflet.css": "leaflet/leaflet.css",
    "leaflet.markercluster.js": "leaflet.markercluster/leaflet.markercluster.js",
    "MarkerCluster.css": "leaflet.markercluster/MarkerCluster.css",
    "MarkerCluster.Default.css": "leaflet.markercluster/MarkerCluster.Default.css",
    "leaflet-heat.js": "leaflet.heat/leaflet-heat.js",
}
_BASEMAPS = ("none", "osm")
_OSM_TILES = "https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png"
_OSM_ATTR = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
_HIDDEN = {"start_lon", "start_lat", "end_lon", "end_lat"}
_DATA_ID = "gapmap-data"
_JS_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# --------------------------------------------------------------------------------------------
# small helpers


def _esc(value: Any) -> str:
    """Escape any value for HTML text or attribute context."""
    return html.escape(fmt(value), quote=True)


def _table_html(pairs: Sequence[tuple[str, Any]], title: str | None = None) -> str:
    """A small two-column HTML table; every key and value escaped."""
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_esc(v)}</td></tr>" for k, v in pairs)
    head = f"<b>{html.escape(title)}</b>" if title else ""
    return f'{head}<table class="gm-tab">{rows}</table>'


def _popups(gdf: pd.DataFrame, columns: Sequence[str], title_col: str | None = None,
            title_prefix: str = "") -> list[str]:
    """Escaped popup HTML per row, built column by column (no per-geometry work)."""
    n = len(gdf)
    if n == 0:
        return []
    rows = pd.Series([""] * n, index=gdf.index, dtype=object)
    for col in columns:
        if col not in gdf.columns:
            continue
        vals = gdf[col].map(_esc)
        rows = rows + f"<tr><th>{html.escape(label(str(col)))}</th><td>" + vals + "</td></tr>"
    if title_col is not None and title_col in gdf.columns:
        heads = "<b>" + html.escape(title_prefix) + gdf[title_col].map(_esc) + "</b>"
    else:
        heads = pd.Series([f"<b>{html.escape(title_prefix)}</b>" if title_prefix else ""] * n,
                          index=gdf.index, dtype=object)
    return (heads + '<table class="gm-tab">' + rows + "</table>").tolist()


def _round_coords(geoms: np.ndarray, decimals: int = 5) -> np.ndarray:
    """Round lon/lat to ~1 m (5 decimals): the page shrinks by half, nothing visible changes."""
    return shapely.transform(geoms, lambda xy: np.round(xy, decimals))


def _to_ll(gdf: gpd.GeoDataFrame, crs: CRS | None, densify_m: float = 1000.0) -> np.ndarray:
    """Geometries in lon/lat (densified so long edges follow the projection's curves)."""
    src = gdf.crs if gdf.crs is not None else crs
    if src is None:
        raise InputError(gdf.attrs.get("source", "layer"), "crs", "layer has no CRS",
                         "give the layer a coordinate reference system")
    c = CRS.from_user_input(src)
    arr = np.asarray(gdf.geometry.values, dtype=object)
    if c.is_geographic and c.equals(CRS.from_epsg(4326), ignore_axis_order=True):
        return _round_coords(arr)
    if c.is_projected:
        return _round_coords(to_lonlat(arr, c, densify_m=densify_m))
    return _round_coords(np.asarray(gpd.GeoSeries(arr, crs=c).to_crs(4326).values, dtype=object))


def _feature_collection(geoms_ll: np.ndarray, props: dict[str, Sequence[Any]]) -> dict:
    """GeoJSON FeatureCollection from lon/lat geometries and property columns."""
    frame = gpd.GeoDataFrame({k: list(v) for k, v in props.items()}, geometry=list(geoms_ll),
                             crs=4326)
    keep = ~(frame.geometry.isna() | frame.geometry.is_empty)
    return json.loads(frame.loc[keep].to_json(drop_id=True, na="null"))


def _hex_colors(values: np.ndarray, cmap: str, vmin: float, vmax: float) -> list[str]:
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    cm = colormaps[cmap]
    span = vmax - vmin if vmax > vmin else 1.0
    t = np.clip((np.asarray(values, float) - vmin) / span, 0, 1)
    # Start at 0.25 of the map: the palest yellows vanish on a light background.
    return [to_hex(c) for c in cm(0.25 + 0.75 * t)]


def json_for_html(obj: Any) -> str:
    """JSON safe inside an HTML ``<script>`` data block: ``<``, ``>`` and ``&`` as ``\\u``
    escapes (so no ``</script>`` or ``<!--`` can appear), non-ASCII escaped, no NaN.

    Examples
    --------
    >>> json_for_html({"name": "</script><b>&"})
    '{"name": "\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003e\\\\u0026"}'
    """
    text = json.dumps(obj, ensure_ascii=True, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# --------------------------------------------------------------------------------------------
# page elements: their templates hold only gapmap's own code and generated names; their data
# go to the page's JSON block under their key (see the module docstring)


class DataElement:
    """Mixin of page elements whose data travel in the page's JSON block under :meth:`key`:
    :meth:`payload` gives the data, the element's template names only ``key()``."""

    def key(self) -> str:
        name = self.get_name()
        if not _JS_NAME.match(name):  # generated by folium/branca; checked all the same
            raise GapmapError(f"unexpected element name {name!r}")
        return name

    def payload(self) -> Any:  # pragma: no cover - every subclass defines it
        raise NotImplementedError




class _Css(MacroElement):
    """A ``<style>`` block in the page head (gapmap's own constant style sheet)."""

    _template = Template("""
        {% macro header(this, kwargs) %}<style>{{ this.css }}</style>{% endmacro %}
    """)

    def __init__(self, css: str) -> None:
        super().__init__()
        self._name = "GapmapCss"
        self.css = css


class _Panel(DataElement, MacroElement):
    """A Leaflet control holding HTML built (and escaped) by gapmap."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        gapmap.panel({{ this.key()|tojson }}, {{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self, html_text: str, position: str, css_class: str) -> None:
        super().__init__()
        self._name = "GapmapPanel"
        self.html = html_text
        self.position = position
        self.css_class = css_class

    def payload(self) -> dict:
        return {"html": self.html, "position": self.position, "cls": self.css_class}


class _ScaleBar(MacroElement):
    """Leaflet's metric scale bar (for maps passed in without ``control_scale``)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        L.control.scale({metric: true, imperial: false}).addTo({{ this._parent.get_name() }});
        {% endmacro %}
    """)


class _MaxZoom(MacroElement):
    """Give the map a maximum zoom: without tiles Leaflet has none, and MarkerCluster needs it."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        if (!isFinite({{ this._parent.get_name() }}.getMaxZoom())) {
            {{ this._parent.get_name() }}.setMaxZoom({{ this.zoom|tojson }});
        }
        {% endmacro %}
    """)

    def __init__(self, zoom: int = 18) -> None:
        super().__init__()
        self._name = "MaxZoom"
        self.zoom = int(zoom)


class _Vector(DataElement, folium.map.Layer):
    """A GeoJSON layer: features with pre-escaped ``_popup``/``_tip`` HTML and a style index
    ``_s`` into ``styles``, drawn by the page's ``gapmap.vector``.

    (folium's GeoJson embeds the features in its script, which branca parses as a template.)
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = gapmap.vector({{ this.key()|tojson }});
        {% endmacro %}
    """)

    def __init__(self, data: dict, styles: list[dict], *, name: str, control: bool = True,
                 show: bool = True, radius: float | None = None,
                 interactive: bool = True) -> None:
        super().__init__(name=name, overlay=True, control=control, show=show)
        self._name = "GapmapVector"
        self.data = data
        self.styles = styles
        self.radius = radius
        self.interactive = interactive

    def style_function(self, feature: dict) -> dict:
        """The style of one feature (as folium's GeoJson gives it)."""
        return self.styles[feature["properties"]["_s"]]

    def payload(self) -> dict:
        return {"geojson": self.data, "styles": self.styles, "radius": self.radius,
                "interactive": self.interactive}


class _Incidents(DataElement, folium.map.Layer):
    """Incidents as clustered markers (≤ ``CLUSTER_MAX``) or a heat map, with a month slider.

    The data travel as compact arrays (lat, lon, month index, escaped popup HTML); the page's
    ``gapmap.incidents`` draws them and adds a control that filters them by month.
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = gapmap.incidents({{ this.key()|tojson }},
                                                     {{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self, data: dict, name: str, show: bool = True) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "Incidents"
        self.data = data
        if data["mode"] == "cluster":
            self.default_js = [("leaflet.markercluster", _ASSET_SCHEME + "leaflet.markercluster.js")]
            self.default_css = [("MarkerCluster", _ASSET_SCHEME + "MarkerCluster.css"),
                                ("MarkerClusterDefault", _ASSET_SCHEME + "MarkerCluster.Default.css")]
        else:
            self.default_js = [("leaflet.heat", _ASSET_SCHEME + "leaflet-heat.js")]
            self.default_css = []

    def payload(self) -> dict:
        return self.data

    def render(self, **kwargs) -> None:
        # Link the plugin's script and styles the way folium's own plugins do (inlined later).
        figure = self.get_root()
        for name, url in self.default_js:
            figure.header.add_child(folium.elements.JavascriptLink(url), name=name)
        for name, url in self.default_css:
            figure.header.add_child(folium.elements.CssLink(url), name=name)
        super().render(**kwargs)


class _LayerControl(DataElement, MacroElement):
    """Leaflet's layer switcher; the labels travel as data, the layers by their names.

    (Leaflet inserts the labels as HTML, so they are escaped here.)
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
        gapmap.layers({{ this.key()|tojson }}, {{ this._parent.get_name() }},
                      [{{ this.names(False)|join(", ") }}], [{{ this.names(True)|join(", ") }}]);
        {% endmacro %}
    """)

    def __init__(self, position: str = "topright", collapsed: bool = False) -> None:
        super().__init__()
        self._name = "GapmapLayers"
        self.options = {"position": position, "collapsed": bool(collapsed)}

    def _layers(self, overlay: bool) -> list:
        return [c for c in self._parent._children.values()
                if isinstance(c, folium.map.Layer) and c.control and bool(c.overlay) == overlay]

    def names(self, overlay: bool) -> list[str]:
        names = [c.get_name() for c in self._layers(overlay)]
        for n in names:
            if not _JS_NAME.match(n):
                raise GapmapError(f"unexpected layer name {n!r}")
        return names

    def payload(self) -> dict:
        return {"base": [html.escape(str(c.layer_name)) for c in self._layers(False)],
                "overlays": [html.escape(str(c.layer_name)) for c in self._layers(True)],
                "options": self.options}


# The page's own script: builds the layers from the JSON block. It is inserted by render_html
# as it is (it never passes through a template engine) and admitted by its CSP hash.
_RUNTIME_JS = r"""
var gapmap = (function () {
    "use strict";
    var store = null;
    function data(key) {
        if (store === null) {
            store = JSON.parse(document.getElementById("gapmap-data").textContent);
        }
        return store[key];
    }
    function bind(layer) {
        layer.eachLayer(function (l) {
            var p = l.feature && l.feature.properties;
            if (!p) { return; }
            if (p._popup) { l.bindPopup(p._popup, {maxWidth: 360}); }
            if (p._tip) { l.bindTooltip(p._tip, {sticky: true}); }
        });
    }
    function vector(key) {
        var d = data(key);
        var opts = {
            interactive: d.interactive,
            style: function (f) { return d.styles[f.properties._s]; }
        };
        if (d.radius !== null) {
            opts.pointToLayer = function (f, ll) {
                return L.circleMarker(ll, {radius: d.radius, fill: true,
                                           interactive: d.interactive});
            };
        }
        var layer = L.geoJSON(d.geojson, opts);
        if (d.interactive) { bind(layer); }
        return layer;
    }
    function panel(key, map) {
        var d = data(key);
        var ctl = L.control({position: d.position});
        ctl.onAdd = function () {
            var div = L.DomUtil.create("div", d.cls);
            div.innerHTML = d.html;
            L.DomEvent.disableClickPropagation(div);
            L.DomEvent.disableScrollPropagation(div);
            return div;
        };
        ctl.addTo(map);
        return ctl;
    }
    function layers(key, map, base, overlays) {
        var d = data(key), b = {}, o = {}, i;
        for (i = 0; i < base.length; i++) { b[d.base[i]] = base[i]; }
        for (i = 0; i < overlays.length; i++) { o[d.overlays[i]] = overlays[i]; }
        return L.control.layers(b, o, d.options).addTo(map);
    }
    function clusterGroup(d, n) {
        var group = L.markerClusterGroup({chunkedLoading: true, maxClusterRadius: 45});
        var markers = new Array(n);
        var style = {radius: 5, color: "#49006a", weight: 1, fillColor: "#dd3497",
                     fillOpacity: 0.85};
        function popup(k) { return function () { return d.popup[k]; }; }
        for (var i = 0; i < n; i++) {
            markers[i] = L.circleMarker([d.lat[i], d.lon[i]], style);
            if (d.popup) { markers[i].bindPopup(popup(i), {maxWidth: 360}); }
        }
        group._gmShow = function (k) {
            var sel = [];
            for (var i = 0; i < n; i++) { if (k < 0 || d.month[i] === k) { sel.push(markers[i]); } }
            group.clearLayers();
            group.addLayers(sel);
            return sel.length;
        };
        return group;
    }
    function heatGroup(d, n) {
        var group = L.heatLayer([], {radius: 12, blur: 15, maxZoom: 12, minOpacity: 0.35});
        group._gmShow = function (k) {
            var pts = [];
            for (var i = 0; i < n; i++) {
                if (k < 0 || d.month[i] === k) { pts.push([d.lat[i], d.lon[i]]); }
            }
            group.setLatLngs(pts);
            return pts.length;
        };
        return group;
    }
    function slider(d, group, total, map) {
        var ctl = L.control({position: "bottomleft"});
        ctl.onAdd = function () {
            var div = L.DomUtil.create("div", "gm-panel gm-slider");
            var lab = L.DomUtil.create("div", "", div);
            var input = L.DomUtil.create("input", "", div);
            input.type = "range"; input.min = 0; input.max = d.months.length;
            input.step = 1; input.value = 0;
            input.setAttribute("aria-label", "Incidents by period");
            lab.textContent = "Incidents: all " + d.unit + " (" + total + ")";
            input.addEventListener("input", function () {
                var k = parseInt(input.value, 10) - 1;
                var shown = group._gmShow(k);
                lab.textContent = "Incidents: " + (k < 0 ? "all " + d.unit : d.months[k])
                    + " (" + shown + ")";
            });
            L.DomEvent.disableClickPropagation(div);
            return div;
        };
        group.on("add", function () { ctl.addTo(map); });
        group.on("remove", function () { ctl.remove(); });
    }

    function labels(key, map) {
        // Permanent labels, placed greedily in priority order where they do not overlap a
        // label already placed: as the map zooms out, the less important ones give way.
        var d = data(key), items = [], i;
        var pane = map.createPane("gmLabels");
        pane.style.zIndex = 640;  // above markers (600), below tooltips and popups
        pane.style.pointerEvents = "none";
        var group = L.layerGroup();
        for (i = 0; i < d.labels.length; i++) {
            var lb = d.labels[i];
            var box = document.createElement("div");
            box.className = "gm-lab gm-lab-" + lb.kind;
            var text = document.createElement("span");
            text.className = "gm-lab-text";
            text.textContent = lb.text;  // text, never markup
            if (lb.kind === "town") {
                var dot = document.createElement("span");
                dot.className = "gm-lab-dot";
                box.appendChild(dot);
            }
            box.appendChild(text);
            var mk = L.marker([lb.lat, lb.lon], {
                icon: L.divIcon({className: "gm-lab-icon", html: box, iconSize: null}),
                interactive: false, keyboard: false, pane: "gmLabels"});
            group.addLayer(mk);
            items.push({marker: mk, box: box, kind: lb.kind, min: lb.minzoom});
        }
        function overlaps(a, b) {
            return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
        }
        function extent(it) {
            // The label's box from its anchor and its laid-out size (offsetWidth ignores the
            // transforms of a zoom animation, so the boxes are those of the final view).
            var p = map.latLngToContainerPoint(it.marker.getLatLng());
            var w = it.box.offsetWidth, h = it.box.offsetHeight;
            var left = it.kind === "town" ? p.x - 4 : p.x - w / 2;
            return {left: left - 3, right: left + w + 3, top: p.y - h / 2 - 2,
                    bottom: p.y + h / 2 + 2, w: w};
        }
        function place() {
            if (!map.hasLayer(group)) { return; }
            var placed = [], z = map.getZoom(), k, r, j, ok;
            for (k = 0; k < items.length; k++) {
                var it = items[k];
                if (!it.marker._icon) { continue; }
                it.box.style.visibility = "hidden";
                if (z < it.min) { continue; }
                r = extent(it);
                if (r.w === 0) { continue; }
                ok = true;
                for (j = 0; j < placed.length && ok; j++) { ok = !overlaps(r, placed[j]); }
                if (ok) { placed.push(r); it.box.style.visibility = "visible"; }
            }
            group._gmShown = placed.length;
        }
        group.on("add", function () { setTimeout(place, 0); });
        // Text widths change once the fonts have loaded: place again then.
        if (document.fonts && document.fonts.ready) { document.fonts.ready.then(place); }
        window.addEventListener("load", place);
        map.on("zoomend moveend resize", place);
        group._gmPlace = place;
        return group;
    }
    function attribution(key, map) {
        var d = data(key);
        var ctl = map.attributionControl;
        if (!ctl) { ctl = L.control.attribution({position: "bottomright"}).addTo(map); }
        for (var i = 0; i < d.credits.length; i++) { ctl.addAttribution(d.credits[i]); }
        return ctl;
    }
    function hexRamp(d, t) {
        var n = d.palette.length;
        return d.palette[Math.min(n - 1, Math.max(0, Math.floor(t * n)))];
    }
    function hexGroup(d, n) {
        // Incidents counted per hexagon (too many for markers or a heat map): one polygon
        // per hexagon on a canvas, coloured by its count on a log scale.
        var renderer = L.canvas({padding: 0.3});
        var group = L.featureGroup();
        var cells = new Array(d.rings.length), counts = new Array(d.rings.length), i;
        for (i = 0; i < d.rings.length; i++) {
            cells[i] = L.polygon(d.rings[i], {renderer: renderer, weight: 0.3, color: "#7a0177",
                                              fillOpacity: 0.75});
            cells[i].bindTooltip((function (k) { return function () {
                return String(counts[k]) + " incidents"; }; })(i), {sticky: true});
            group.addLayer(cells[i]);
        }
        group._gmShow = function (k) {
            var total = 0, top = 0;
            for (i = 0; i < cells.length; i++) { counts[i] = k < 0 ? d.total[i] : 0; }
            if (k >= 0) {
                for (i = 0; i < d.pc.length; i++) {
                    if (d.pp[i] === k) { counts[d.pc[i]] += d.pn[i]; }
                }
            }
            for (i = 0; i < cells.length; i++) {
                total += counts[i];
                top = Math.max(top, counts[i]);
            }
            var lt = Math.log(top + 1);
            for (i = 0; i < cells.length; i++) {
                var c = counts[i];
                cells[i].setStyle(c > 0 ? {stroke: true, fill: true,
                    fillColor: hexRamp(d, lt > 0 ? Math.log(c + 1) / lt : 0)}
                    : {stroke: false, fill: false});
            }
            return total;
        };
        return group;
    }
    function incidents(key, map) {
        var d = data(key), n = d.mode === "hex" ? 0 : d.lat.length;
        var group = d.mode === "cluster" ? clusterGroup(d, n)
            : (d.mode === "hex" ? hexGroup(d, n) : heatGroup(d, n));
        var total = group._gmShow(-1);
        if (d.months.length > 1) { slider(d, group, total, map); }
        return group;
    }
    return {data: data, vector: vector, panel: panel, layers: layers, incidents: incidents,
            labels: labels, attribution: attribution};
})();
"""

_CSS = """
.leaflet-container { background: #eef0ea; font: 13px/1.35 system-ui, -apple-system, "Segoe UI",
  Roboto, sans-serif; }
.gm-panel { background: rgba(255,255,255,0.94); padding: 8px 10px; border-radius: 5px;
  box-shadow: 0 1px 5px rgba(0,0,0,0.35); max-width: 300px; color: #222; }
.gm-panel h1 { font-size: 15px; margin: 0 0 4px 0; }
.gm-panel h2 { font-size: 12px; margin: 6px 0 2px 0; text-transform: uppercase;
  letter-spacing: .04em; color: #555; }
.gm-head .gm-big { font-size: 20px; font-weight: 700; }
.gm-head .gm-sub { color: #555; }
.gm-legend { max-height: 60vh; overflow-y: auto; }
.gm-legend .gm-row { display: flex; align-items: center; gap: 6px; margin: 2px 0; }
.gm-sw { display: inline-block; width: 16px; height: 12px; border: 1px solid rgba(0,0,0,.4);
  flex: none; }
.gm-line { display: inline-block; width: 18px; height: 0; border-top: 3px solid; flex: none; }
.gm-dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; flex: none;
  border: 1px solid rgba(0,0,0,.5); }
.gm-ramp { height: 10px; width: 140px; border: 1px solid rgba(0,0,0,.3); }
.gm-note { color: #8a4b00; font-style: italic; }
.gm-tab { border-collapse: collapse; }
.gm-tab th { text-align: left; padding: 1px 8px 1px 0; font-weight: 600; vertical-align: top; }
.gm-tab td { padding: 1px 0; }
.gm-slider input { width: 220px; }
.gm-lab-icon { background: none; border: none; }
.gm-lab { position: absolute; white-space: nowrap; color: #1b1b1b; pointer-events: none;
  text-shadow: 0 0 2px #fff, 0 0 2px #fff, 0 0 3px #fff, 0 0 4px #fff; }
.gm-lab-town { transform: translate(-4px, -50%); display: flex; align-items: center; gap: 4px;
  font-weight: 600; font-size: 12px; }
.gm-lab-dot { width: 7px; height: 7px; border-radius: 50%; background: #111;
  border: 1.5px solid #fff; flex: none; }
.gm-lab-adm1 { transform: translate(-50%, -50%); font-size: 13px; font-weight: 700;
  letter-spacing: .14em; text-transform: uppercase; color: #4a4a4a; }
.gm-lab-adm2 { transform: translate(-50%, -50%); font-size: 11px; font-style: italic;
  color: #555; }
.leaflet-control-attribution { max-width: 62vw; white-space: normal; font-size: 11px; }
"""


# --------------------------------------------------------------------------------------------
# rasters (hillshade, coverage)


def _grid(obj: Any, kind: str):
    """A drawable :class:`~gapmap.terrain.Dem`: a viewshed ``Coverage`` as its per-cell count
    of posts, anything else through :func:`gapmap.terrain.as_dem` (a Dem as it is)."""
    from .terrain import Dem, as_dem

    if not isinstance(obj, Dem) and all(getattr(obj, a, None) is not None
                                        for a in ("count", "transform", "crs")):
        return Dem(np.asarray(obj.count, np.float32), obj.transform, obj.crs, kind)
    if isinstance(obj, tuple) and len(obj) == 3 and np.ndim(obj[0]) == 3:
        obj = (np.asarray(obj[0])[0], obj[1], obj[2])  # first band
    return as_dem(obj)


def _to_web_mercator(dem, resampling: str, max_px: int = 2048
                     ) -> tuple[np.ndarray, list[list[float]]]:
    """Warp to EPSG:3857 (what Leaflet stretches image overlays in) and give lat/lon bounds."""
    from rasterio.transform import array_bounds
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    h, w = dem.shape
    west, south, east, north = array_bounds(h, w, dem.transform)
    src_crs = CRS.from_user_input(dem.crs)
    dst_crs = CRS.from_epsg(3857)
    transform, dw, dh = calculate_default_transform(src_crs, dst_crs, w, h, west, south, east,
                                                    north)
    scale = max(dw / max_px, dh / max_px, 1.0)
    if scale > 1:
        transform, dw, dh = calculate_default_transform(
            src_crs, dst_crs, w, h, west, south, east, north,
            dst_width=int(dw / scale), dst_height=int(dh / scale))
    dst = np.full((dh, dw), np.nan, dtype="float32")
    reproject(np.asarray(dem.array, np.float32), dst, src_transform=dem.transform,
              src_crs=src_crs, dst_transform=transform, dst_crs=dst_crs,
              resampling=getattr(Resampling, resampling), src_nodata=np.nan, dst_nodata=np.nan)
    x0, y1, x1, y0 = array_bounds(dh, dw, transform)
    t = Transformer.from_crs(dst_crs, 4326, always_xy=True)
    lons, lats = t.transform([x0, x1], [y0, y1])
    bounds = [[min(lats), min(lons)], [max(lats), max(lons)]]
    return dst, bounds


def _png_data_uri(rgba: np.ndarray) -> str:
    """An RGBA uint8 image as a PNG data URI; a grey image (R = G = B, the hillshade) as grey
    with alpha ("LA"), the same pixels in half the channels.

    zlib level 3, not PIL's 6: on the sample's 2,048-pixel hillshade, 0.36 s and 1.57 MB
    against 1.5 s and 1.71 MB for matplotlib's RGBA at level 6 (level 1: 0.17 s, 1.74 MB).

    >>> import base64, io
    >>> from PIL import Image
    >>> grey = np.zeros((2, 3, 4), np.uint8); grey[..., :3] = 90; grey[0, 0, 3] = 255
    >>> uri = _png_data_uri(grey)
    >>> im = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    >>> im.mode, im.convert("RGBA").getpixel((0, 0)), im.convert("RGBA").getpixel((1, 0))
    ('LA', (90, 90, 90, 255), (90, 90, 90, 0))
    """
    from PIL import Image

    rgba = np.ascontiguousarray(rgba, dtype=np.uint8)
    grey = bool((rgba[..., 0] == rgba[..., 1]).all() and (rgba[..., 1] == rgba[..., 2]).all())
    # (h, w, 2) uint8 is read as "LA", (h, w, 4) as "RGBA"
    image = Image.fromarray(np.ascontiguousarray(rgba[..., [0, 3]]) if grey else rgba)
    buf = io.BytesIO()
    image.save(buf, format="png", compress_level=3)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _hillshade_rgba(v: np.ndarray) -> np.ndarray:
    """Grey shading with transparency where there is no data (NaN)."""
    finite = np.isfinite(v)
    hi = np.nanmax(v) if finite.any() else 1.0
    scale = 255.0 if hi > 1.0 else 1.0  # gdaldem gives 0–255; some tools give 0–1
    g = np.clip(np.nan_to_num(v / scale, nan=0.0), 0, 1)
    rgba = np.zeros(v.shape + (4,), dtype=np.uint8)
    rgba[..., :3] = (g * 255).astype(np.uint8)[..., None]
    rgba[..., 3] = np.where(finite, 255, 0)
    return rgba


def _coverage_rgba(v: np.ndarray) -> np.ndarray:
    """Visible cells green (darker where more posts see them); unseen and no data clear."""
    v = np.nan_to_num(v, nan=0.0)
    seen = v > 0
    top = max(float(v.max()), 1.0)
    alpha = np.where(seen, 90 + 110 * np.clip(v / top, 0, 1), 0)
    rgba = np.zeros(v.shape + (4,), dtype=np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = 26, 152, 80
    rgba[..., 3] = alpha.astype(np.uint8)
    return rgba


def _raster_layer(m: folium.Map, obj: Any, kind: str, notes: list[str]) -> list[str]:
    """Hillshade (a Dem of shade values 0–255) or coverage (counts of posts) as an image
    overlay; returns its legend entry and adds "synthetic" to ``notes`` for synthetic data."""
    if obj is None:
        return []
    dem = _grid(obj, kind)
    hill = kind == "hillshade"
    arr, bounds = _to_web_mercator(dem, "bilinear" if hill else "nearest")
    rgba = _hillshade_rgba(arr) if hill else _coverage_rgba(arr)
    name = "Hillshade" if hill else "Visible from posts"
    folium.raster_layers.ImageOverlay(
        image=_png_data_uri(rgba), bounds=bounds, name=name, overlay=True, control=True,
        show=True, opacity=0.55 if hill else 1.0, mercator_project=False,
        interactive=False, cross_origin=False, zindex=1 if hill else 2,
    ).add_to(m)
    synthetic = is_synthetic(dem.source)
    if synthetic and "synthetic" not in notes:
        notes.append("synthetic")
    if hill:
        tag = ' <span class="gm-note">(synthetic)</span>' if synthetic else ""
        return [_swatch("fill", "linear-gradient(90deg,#333,#eee)", name, tag)]
    return [_swatch("fill", "rgba(26,152,80,0.6)", name)]


# --------------------------------------------------------------------------------------------
# vector layers: each adds its layer and returns its legend entries


def _vector(parent, gdf: gpd.GeoDataFrame, crs: CRS, name: str, *,
            style: dict | list[dict], popups: list[str] | None = None,
            tips: list[str] | None = None, radius: float | None = None, control: bool = True,
            interactive: bool = True, densify_m: float = 1000.0, show: bool = True) -> _Vector:
    """Add a GeoJSON layer whose per-feature styles are computed here, popups pre-escaped."""
    geoms = _to_ll(gdf, crs, densify_m)
    n = len(geoms)
    styles = style if isinstance(style, list) else [style] * n
    props: dict[str, list] = {"_s": list(range(n))}
    if popups is not None:
        props["_popup"] = popups
    if tips is not None:
        props["_tip"] = tips
    layer = _Vector(_feature_collection(geoms, props), styles, name=name, control=control,
                    radius=radius, interactive=interactive, show=show)
    layer.add_to(parent)
    return layer


def _zones_layer(m, analysis, colors: dict[str, str]) -> list[str]:
    z = analysis.zones
    if z is None or len(z) == 0:
        return []
    side_names = {"a": analysis.side_a.name, "b": analysis.side_b.name}
    z = z.copy()
    z["side"] = z["side"].map(lambda s: side_names.get(s, "neither side") if s else "neither side")
    cols = [c for c in ("force", "side", "name", "reach_km", "note") if c in z.columns]
    extra = [c for c in z.columns if c not in cols and c != z.geometry.name
             and str(c).lower() in ("label", "notes", "source")]
    styles = [{"color": colors.get(str(f), PALETTE_OTHER[0]), "weight": 1,
               "fillColor": colors.get(str(f), PALETTE_OTHER[0]), "fillOpacity": 0.45}
              for f in z["force"].astype(str)]
    tips = (z["force"].map(_esc) + " (" + z["side"].map(_esc) + ")").tolist()
    _vector(m, z, analysis.crs, "Zones (by force)", style=styles,
            popups=_popups(z, cols + extra, title_col=None, title_prefix="Zone"), tips=tips)
    tag = (' <span class="gm-note">(illustrative)</span>'
           if is_illustrative(illustrative_notes(analysis.zones)) else "")
    rows = [_swatch("fill", col, side_label(analysis, force)) for force, col in colors.items()]
    return [f"<h2>Zones{tag}</h2>" + "".join(rows)] if rows else []


def _gap_layer(m, analysis) -> list[str]:
    gap = analysis.gap
    if gap is not None and len(gap) and not gap.geometry.iloc[0].is_empty:
        _vector(m, gap, analysis.crs, "Gap region",
                style={"color": "#7f3b08", "weight": 0.8, "dashArray": "4 3",
                       "fillColor": "#fdb863", "fillOpacity": 0.25},
                popups=[_table_html([("Area (km²)", gap["area_km2"].iloc[0])], "Gap region")],
                densify_m=1000.0)
    return ["<h2>Analysis</h2>", _swatch("fill", "rgba(253,184,99,0.5)", "Gap region")]


def _seam_layer(m, analysis) -> list[str]:
    seam = analysis.seam
    if seam is None or not len(seam):
        return []
    cols = [c for c in seam.columns if c != seam.geometry.name and c not in _HIDDEN]
    _vector(m, seam, analysis.crs, "Seam (median line)",
            style={"color": "#252525", "weight": 1.5, "dashArray": "6 4", "opacity": 0.9},
            popups=_popups(seam, cols, title_prefix="Seam"), densify_m=250.0)
    return [_swatch("line", "#252525", "Seam (median line)")]


def _corridor_layer(m, analysis, *, show: bool = True,
                    ranges: Sequence[tuple[str, str]] = ()) -> list[str]:
    c = analysis.corridors
    if c is None or len(c) == 0:
        return []
    lengths = c["length_km"].to_numpy(float)
    lo, hi = float(np.nanmin(lengths)), float(np.nanmax(lengths))
    if hi - lo < 0.2 * hi:
        # One corridor (or a few of nearly one length): a 553.0–553.8 km scale would draw it
        # in the palest colour; the scale starts at 0 km instead.
        lo = 0.0
    colors = _hex_colors(lengths, CORRIDOR_CMAP, lo, hi)
    styles = [{"color": col, "weight": 5, "opacity": 0.95, "lineCap": "round"} for col in colors]
    cols = [col for col in c.columns if col != c.geometry.name and col not in _HIDDEN
            and col != "corridor_id"]
    tips = ("Corridor " + c["corridor_id"].map(_esc) + ": "
            + c["length_km"].map(lambda v: _esc(float(v))) + " km").tolist()
    popups = _popups(c, cols, title_col="corridor_id", title_prefix="Corridor ")
    if ranges:
        extra = _table_html(list(ranges), "Whole seam, over the uncertainty copies")
        popups = [p + extra for p in popups]
    _vector(m, c, analysis.crs, "Unguarded corridors", style=styles, popups=popups,
            tips=tips, densify_m=250.0, show=show)
    stops = _hex_colors(np.linspace(0, 1, 6), CORRIDOR_CMAP, 0, 1)
    return ['<div class="gm-row"><span>Unguarded corridor length</span></div>'
            f'<div class="gm-ramp" style="background:linear-gradient(90deg,{",".join(stops)})">'
            f'</div><div class="gm-row" style="justify-content:space-between;width:142px">'
            f"<span>{_esc(fmt(lo, 0))} km</span><span>{_esc(fmt(hi, 0))} km</span></div>"]


def _posts_layer(m, analysis, colors: dict[str, str]) -> list[str]:
    p = analysis.posts
    if p is None or len(p) == 0:
        return []
    group = folium.FeatureGroup(name="Posts and ranges", overlay=True, control=True, show=True)
    rng = p["range_km"].to_numpy(float) if "range_km" in p.columns else np.full(len(p), 5.0)
    # Range discs are drawn in the metric CRS and then projected, so they are true circles on
    # the ground (Leaflet's own circles are Web Mercator approximations).
    discs = gpd.GeoDataFrame(geometry=shapely.buffer(p.geometry.values, rng * 1000,
                                                     quad_segs=16), crs=p.crs or analysis.crs)
    _vector(group, discs, analysis.crs, "ranges", control=False, interactive=False,
            style={"color": "#1a9850", "weight": 1, "opacity": 0.7, "fillColor": "#1a9850",
                   "fillOpacity": 0.12}, densify_m=2000.0)
    forces = p["force"].astype(str) if "force" in p.columns else pd.Series(["post"] * len(p))
    styles = [{"color": "#111", "weight": 1, "fillColor": colors.get(f, "#fee08b"),
               "fillOpacity": 1.0} for f in forces]
    cols = [c for c in p.columns if c != p.geometry.name][:10]
    _vector(group, p, analysis.crs, "posts", control=False, style=styles, radius=5,
            popups=_popups(p, cols, title_prefix="Post"), densify_m=0)
    group.add_to(m)
    return [_swatch("dot", "#fee08b", "Posts (filled by force), ranges")]


def _routes_layer(m, routes: gpd.GeoDataFrame | None, crs: CRS, notes: list[str]) -> list[str]:
    if routes is None or not len(routes):
        return []
    rcols = [c for c in routes.columns if c != routes.geometry.name][:8]
    _vector(m, routes, crs, "Walking routes",
            style={"color": "#542788", "weight": 2.5, "dashArray": "2 4"},
            popups=_popups(routes, rcols, title_prefix="Route"), densify_m=0)
    notes += [n for n in illustrative_notes(routes) if n not in notes]
    return [_swatch("line", "#542788", "Walking routes")]


def _hotspot_classes(hot: gpd.GeoDataFrame) -> np.ndarray:
    """Gi* class key per hexagon (see :data:`gapmap.style.HOTSPOT_CLASSES`), "" when not
    significant: ``hot``/``cold`` flags when given, else p < 0.05 on ``p_value``/``p_sim``."""
    n = len(hot)
    zc = find_column(hot, "gi_z", "z", "z_score", "zscore")
    pc = find_column(hot, "p_value", "p_sim", "gi_p", "p")
    z = pd.to_numeric(hot[zc], errors="coerce").to_numpy(float) if zc else np.zeros(n)
    p = pd.to_numeric(hot[pc], errors="coerce").to_numpy(float) if pc else np.ones(n)
    if "hot" in hot.columns and "cold" in hot.columns:
        is_hot = hot["hot"].fillna(False).to_numpy(bool)
        is_cold = hot["cold"].fillna(False).to_numpy(bool)
    else:
        is_hot, is_cold = (p < 0.05) & (z > 0), (p < 0.05) & (z < 0)
    strong = np.nan_to_num(p, nan=1.0) < 0.01
    return np.where(is_hot, np.where(strong, "hot_strong", "hot"),
                    np.where(is_cold, np.where(strong, "cold_strong", "cold"), ""))


def _hotspot_layer(m, hot: gpd.GeoDataFrame | None, crs: CRS) -> list[str]:
    """Significant Gi* hexagons: hot in reds, cold in purples; the legend lists only the
    classes drawn."""
    if hot is None or not len(hot):
        return []
    classes = _hotspot_classes(hot)
    keep = classes != ""
    if not keep.any():
        log.info("no significant hot or cold spots to draw")
        return []
    color = {key: col for key, col, _ in HOTSPOT_CLASSES}
    sub = hot.loc[keep]
    styles = [{"color": color[k], "weight": 0.5, "fillColor": color[k], "fillOpacity": 0.55}
              for k in classes[keep]]
    cols = [c for c in sub.columns if c != sub.geometry.name][:8]
    _vector(m, sub, crs, "Hot spots (Gi*)", style=styles,
            popups=_popups(sub, cols, title_prefix="Hexagon"), densify_m=0)
    present = set(classes[keep])
    return ["<h2>Hot spots (Gi*)</h2>" + "".join(
        _swatch("fill", col, text) for key, col, text in HOTSPOT_CLASSES if key in present)]


def _sites_layer(m, placement: Any, crs: CRS) -> list[str]:
    sites = sites_frame(placement)
    if sites is None or not len(sites):
        return []
    group = folium.FeatureGroup(name="Proposed new posts", overlay=True, control=True)
    if "range_km" in sites.columns:
        discs = gpd.GeoDataFrame(geometry=shapely.buffer(
            sites.to_crs(crs).geometry.values if sites.crs else sites.geometry.values,
            sites["range_km"].to_numpy(float) * 1000, quad_segs=16), crs=crs)
        _vector(group, discs, crs, "new ranges", control=False, interactive=False,
                style={"color": "#00429d", "weight": 1.5, "dashArray": "5 4",
                       "fillOpacity": 0.05}, densify_m=2000.0)
    closed = getattr(placement, "closed", None)
    if isinstance(closed, gpd.GeoDataFrame) and len(closed):
        ccols = [c for c in closed.columns if c != closed.geometry.name][:6]
        _vector(group, closed, crs, "closed", control=False,
                style={"color": "#00429d", "weight": 7, "opacity": 0.45},
                popups=_popups(closed, ccols, title_prefix="Closed by new post"), densify_m=250.0)
    scols = [c for c in sites.columns if c != sites.geometry.name][:8]
    _vector(group, sites, crs, "sites", control=False, radius=7, densify_m=0,
            style={"color": "#fff", "weight": 2, "fillColor": "#00429d", "fillOpacity": 1},
            popups=_popups(sites, scols, title_prefix="New post"))
    group.add_to(m)
    text = f"Proposed new posts ({fmt(len(sites))})"
    before = getattr(placement, "unguarded_before_km", None)
    after = getattr(placement, "unguarded_after_km", None)
    if before is not None and after is not None:
        text += f": unguarded {fmt(float(before), 1)} → {fmt(float(after), 1)} km"
    return [_swatch("dot", "#00429d", text)]


def _incident_data(inc: gpd.GeoDataFrame, crs: CRS | None, cluster_max: int) -> dict:
    """Compact arrays for the page: lat, lon, month index, escaped popups (cluster mode)."""
    inc = inc[~(inc.geometry.isna() | inc.geometry.is_empty)]
    xy = shapely.get_coordinates(_to_ll(inc, crs, 0))
    mode = "cluster" if len(inc) <= cluster_max else "heat"
    month, month_names, unit = _incident_periods(inc)
    decimals = 5 if mode == "cluster" else 4
    data = {"mode": mode, "lat": np.round(xy[:, 1], decimals).tolist(),
            "lon": np.round(xy[:, 0], decimals).tolist(), "month": month.tolist(),
            "months": month_names, "unit": unit, "popup": None}
    if mode == "cluster":
        prefer = ["date", "event_date", "type", "event_type", "sub_event_type", "actor",
                  "actor1", "actor2", "side_a", "side_b", "fatalities", "best", "deaths",
                  "location", "where_coordinates", "precision", "geo_precision", "where_prec",
                  "source", "notes", "note"]
        cols = [c for name in prefer for c in [find_column(inc, name)] if c is not None]
        cols = list(dict.fromkeys(cols))
        if not cols:
            cols = [c for c in inc.columns if c != inc.geometry.name][:8]
        data["popup"] = _popups(_dates_as_text(inc), cols, title_prefix="Incident")
    return data


def _dates_as_text(inc: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Dates at their precision (``2017`` for an event dated only to its year, not
    ``2017-07-01``), as :func:`gapmap.incidents.format_dates` prints them."""
    from .incidents import format_dates

    dcol = find_column(inc, "date", "event_date", "date_start")
    pcol = find_column(inc, "date_precision")
    if dcol is None or pcol is None:
        return inc
    out = inc.copy()
    out[dcol] = format_dates(inc[dcol], inc[pcol])
    return out


def _incident_periods(inc: gpd.GeoDataFrame) -> tuple[np.ndarray, list[str], str]:
    """Period index of each incident (-2 when undated), the period names, and their unit."""
    dcol = find_column(inc, "date", "event_date", "date_start")
    if dcol is None:
        return np.full(len(inc), -2, dtype=int), [], "months"
    dates = pd.to_datetime(inc[dcol], errors="coerce")
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)
    # Dates known only to the year (UCDP GED yearly files sit on 1 July) would pile up in
    # July: step through years then, as gapmap.hotspots.monthly_counts does.
    pcol = find_column(inc, "date_precision")
    freq = "Y" if pcol is not None and (inc[pcol].astype(str) == "year").any() else "M"
    period = dates.dt.to_period(freq)
    known = period.dropna()
    # Every period from the first to the last, empty ones included, so the slider steps
    # through time evenly.
    periods = (pd.period_range(known.min(), known.max(), freq=freq) if len(known)
               else pd.PeriodIndex([], freq=freq))
    index = {p: i for i, p in enumerate(periods)}
    month = period.map(index).fillna(-2).astype(int).to_numpy()
    return month, [str(p) for p in periods], "years" if freq == "Y" else "months"


def _incidents_layer(m, incidents: Any, crs: CRS, cluster_max: int, notes: list[str], *,
                     aggregate_min: int = AGGREGATE_MIN, box_m=None) -> list[str]:
    inc = incident_frame(incidents)
    if inc is None or not len(inc):
        return []
    inc = inc[~(inc.geometry.isna() | inc.geometry.is_empty)]
    if len(inc) >= aggregate_min and box_m is not None:
        data = _hex_data(inc, crs, box_m)
    else:
        data = _incident_data(inc, crs, cluster_max)
    _Incidents(data, name="Incidents").add_to(m)
    notes += [n for n in illustrative_notes(inc) if n not in notes]
    if data["mode"] == "hex":
        top = max(data["total"]) if data["total"] else 0
        stops = ",".join(_HEX_PALETTE)
        return [f'<div class="gm-row"><span>Incidents, {_esc(fmt(data["n"]))}, counted per '
                f'{_esc(fmt(data["hex_km"], 1))} km hexagon</span></div>'
                f'<div class="gm-ramp" style="background:linear-gradient(90deg,{stops})"></div>'
                '<div class="gm-row" style="justify-content:space-between;width:142px">'
                f"<span>1</span><span>{_esc(fmt(top))} (log scale)</span></div>"]
    how = "" if data["mode"] == "cluster" else " (density: too many for markers)"
    return [_swatch("dot", "#dd3497", f"Incidents, {fmt(len(data['lat']))}{how}")]


# --------------------------------------------------------------------------------------------
# reference: study-area outlines, water and place names (what makes the map read with no tiles)


class _Labels(DataElement, folium.map.Layer):
    """Permanent place-name labels, placed in priority order without overlaps by the page's
    ``gapmap.labels`` (the less important ones give way as the map zooms out)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = gapmap.labels({{ this.key()|tojson }},
                                                  {{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self, labels: list[dict], name: str = "Place names") -> None:
        super().__init__(name=name, overlay=True, control=True, show=True)
        self._name = "GapmapLabels"
        self.labels = labels

    def payload(self) -> dict:
        return {"labels": self.labels}


class _Attribution(DataElement, MacroElement):
    """The sources and licences of the run in Leaflet's attribution control (escaped here:
    Leaflet inserts attributions as HTML)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        gapmap.attribution({{ this.key()|tojson }}, {{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self, credits: Sequence[str]) -> None:
        super().__init__()
        self._name = "GapmapAttribution"
        self.credits = [str(c) for c in credits]

    def payload(self) -> dict:
        return {"credits": [html.escape(c, quote=True) for c in self.credits]}


#: Study-area fields naming the areas, coarse level first (COD-AB names, then generic ones).
_AREA_LEVELS = (("ADM1_EN", "adm1"), ("ADM2_EN", "adm2"))
_AREA_NAMES = ("name", "NAME", "Name", "ADM3_EN", "ADM0_EN", "shapeName", "NAME_1", "NAME_2")
#: Most towns labelled (by population); the page thins them further by collision.
MAX_PLACES = 2_000


def _area_levels(areas: gpd.GeoDataFrame) -> list[tuple[str, str]]:
    """(field, level) pairs naming the study-area polygons: ADM1_EN/ADM2_EN, else one name."""
    levels = [(f, lv) for f, lv in _AREA_LEVELS if f in areas.columns]
    if levels:
        return levels
    field = find_column(areas, *_AREA_NAMES)
    return [(field, "adm1")] if field is not None else []


def _dissolved(areas: gpd.GeoDataFrame, field: str) -> gpd.GeoDataFrame:
    """One polygon per name (a governorate from its districts)."""
    named = areas[areas[field].notna() & (areas[field].astype(str).str.strip() != "")]
    return named[[field, named.geometry.name]].dissolve(by=field, as_index=False)


def _label_point(geom, crs: CRS) -> shapely.Point:
    """A point well inside the largest part (pole of inaccessibility, in metres)."""
    from shapely.ops import polylabel

    parts = list(getattr(geom, "geoms", [geom]))
    big = max(parts, key=lambda g: g.area)
    if not CRS.from_user_input(crs).is_projected:
        return big.representative_point()
    return polylabel(big, tolerance=max(big.length / 500.0, 1.0))


def _area_labels(areas: gpd.GeoDataFrame, crs: CRS) -> list[dict]:
    """Labels of the named study areas (governorates, then districts), largest first."""
    out = []
    metric = areas.to_crs(crs) if areas.crs is not None else areas.set_crs(crs)
    for field, level in _area_levels(metric):
        d = _dissolved(metric, field)
        if not len(d):
            continue
        d = d.iloc[np.argsort(-d.geometry.area.to_numpy(), kind="stable")]
        pts = gpd.GeoDataFrame(geometry=[_label_point(g, crs) for g in d.geometry], crs=crs)
        xy = shapely.get_coordinates(_to_ll(pts, crs, 0))
        # District names need room: only from a zoom where districts are a few cm across.
        minzoom = 0 if level == "adm1" else 8
        out += [{"text": str(t), "lat": float(y), "lon": float(x), "kind": level,
                 "minzoom": minzoom} for t, (x, y) in zip(d[field], xy)]
    return out


def _place_labels(places: gpd.GeoDataFrame | None, crs: CRS,
                  box_ll: tuple[float, float, float, float]) -> tuple[list[dict], list[dict]]:
    """Town labels within the map's frame (with a margin), most populous first: the large
    towns (≥ 100,000) and the rest, so districts can be placed between the two."""
    if places is None or not len(places):
        return [], []
    if "name" not in places.columns:
        raise InputError(places.attrs.get("source", "places"), "name",
                         "the places layer has no name column",
                         "read it with gapmap.places.load_places (it finds the name field)")
    pts = places[places.geometry.notna() & ~places.geometry.is_empty]
    pts = pts[pts.geometry.geom_type == "Point"]
    xy = shapely.get_coordinates(_to_ll(pts, crs, 0))
    w, s, e, n = box_ll
    mx, my = 0.1 * (e - w), 0.1 * (n - s)
    inside = ((xy[:, 0] >= w - mx) & (xy[:, 0] <= e + mx) & (xy[:, 1] >= s - my)
              & (xy[:, 1] <= n + my))
    names = pts["name"].astype(object).to_numpy()[inside]
    pop = (pd.to_numeric(pts["population"], errors="coerce").to_numpy(float)[inside]
           if "population" in pts.columns else np.full(int(inside.sum()), np.nan))
    xy = xy[inside]
    order = np.lexsort((names.astype(str), -np.nan_to_num(pop, nan=-1.0)))[:MAX_PLACES]
    big, rest = [], []
    for i in order:
        if names[i] is None or (isinstance(names[i], float) and np.isnan(names[i])):
            continue
        lab = {"text": str(names[i]), "lat": float(xy[i, 1]), "lon": float(xy[i, 0]),
               "kind": "town", "minzoom": 0}
        (big if np.nan_to_num(pop[i]) >= 100_000 else rest).append(lab)
    return big, rest


def _water_frames(water: Any) -> tuple[gpd.GeoDataFrame | None, gpd.GeoDataFrame | None]:
    """Rivers and lakes of a ``Water`` (``.rivers``, ``.lakes``), or a (rivers, lakes) pair."""
    if water is None:
        return None, None
    if isinstance(water, tuple):
        return water
    return getattr(water, "rivers", None), getattr(water, "lakes", None)


def _clip_simplify(gdf: gpd.GeoDataFrame, crs: CRS, box_m, tol_m: float) -> gpd.GeoDataFrame:
    """The layer in the analysis CRS, clipped to the frame and simplified to ``tol_m`` (a
    national river layer would otherwise weigh more than the whole analysis)."""
    g = gdf.to_crs(crs) if gdf.crs is not None else gdf.set_crs(crs)
    g = g[g.geometry.notna() & ~g.geometry.is_empty]
    geoms = shapely.clip_by_rect(g.geometry.values, *box_m)
    geoms = shapely.simplify(geoms, tol_m, preserve_topology=True)
    out = gpd.GeoDataFrame(g.drop(columns=g.geometry.name), geometry=list(geoms), crs=crs)
    return out[~out.geometry.is_empty]


def _reference_layer(m, areas: gpd.GeoDataFrame | None, water: Any, crs: CRS,
                     box_m) -> list[str]:
    """Study-area outlines (governorates heavier than districts), rivers and lakes, drawn
    first so that everything else lies on top; one "Reference" layer."""
    group = folium.FeatureGroup(name="Reference (boundaries, water)", overlay=True,
                                control=True, show=True)
    legend: list[str] = []
    tol = max((box_m[2] - box_m[0]) / 4000.0, 20.0)
    rivers, lakes = _water_frames(water)
    if lakes is not None and len(lakes):
        lk = _clip_simplify(lakes, crs, box_m, tol)
        if len(lk):
            _vector(group, lk, crs, "lakes", control=False, interactive=False, densify_m=0,
                    style={"color": "#6baed6", "weight": 0.8, "fillColor": "#c6dbef",
                           "fillOpacity": 0.9})
            legend.append(_swatch("fill", "#c6dbef", "Lakes, reservoirs"))
    if rivers is not None and len(rivers):
        rv = _clip_simplify(rivers, crs, box_m, tol)
        if len(rv):
            name = find_column(rv, "name", "NAME", "name_en", "river")
            tips = rv[name].map(_esc).tolist() if name else None
            _vector(group, rv, crs, "rivers", control=False, interactive=tips is not None,
                    style={"color": "#4292c6", "weight": 1.6, "opacity": 0.85}, tips=tips,
                    densify_m=0)
            legend.append(_swatch("line", "#4292c6", "Rivers"))
    if areas is not None and len(areas):
        metric = areas.to_crs(crs) if areas.crs is not None else areas.set_crs(crs)
        for field, level in reversed(_area_levels(metric)):
            d = _dissolved(metric, field)
            heavy = level == "adm1" and len(_area_levels(metric)) > 1
            _vector(group, d, crs, level, control=False, interactive=False, densify_m=1000.0,
                    style={"color": "#555" if heavy else "#888", "weight": 2.2 if heavy else 0.8,
                           "opacity": 0.9, "fill": False,
                           "dashArray": None if heavy else "3 3"})
            legend.append(_swatch("line", "#555" if heavy else "#888",
                                  "Governorates" if heavy else "Districts" if level == "adm2"
                                  else "Study areas"))
    if not legend:
        return []
    group.add_to(m)
    return ["<h2>Reference</h2>" + "".join(legend)]


def _labels_layer(m, areas, places, crs: CRS, box_ll) -> int:
    """Place names: governorates, large towns, districts, then the other towns, as one
    toggleable layer; returns how many labels it holds."""
    big, rest = _place_labels(places, crs, box_ll)
    adm = _area_labels(areas, crs) if areas is not None and len(areas) else []
    labels = ([lb for lb in adm if lb["kind"] == "adm1"] + big
              + [lb for lb in adm if lb["kind"] == "adm2"] + rest)
    if labels:
        _Labels(labels).add_to(m)
    return len(labels)


# --------------------------------------------------------------------------------------------
# road exposure (classes and the view of a result: gapmap.style) and the uncertainty of the seam


def _exposure_layer(m, exposure: Any, crs: CRS) -> list[str]:
    """Road pieces by class, the exposed ones in a strong red on top; legend rows with km."""
    pieces, summary = exposure_frame(exposure)
    if pieces is None or not len(pieces):
        return []
    classes = exposure_classes(pieces)
    km = (pd.to_numeric(pieces["length_km"], errors="coerce").to_numpy(float)
          if "length_km" in pieces.columns else np.full(len(pieces), np.nan))
    cols = [c for c in ("road", "hours_from_origin", "length_km", "reachable", "seen",
                        "exposed") if c in pieces.columns]
    group = folium.FeatureGroup(name="Road exposure", overlay=True, control=True, show=True)
    rows = []
    for key, color, weight, text in reversed(EXPOSURE_CLASSES):
        sel = classes == key
        if not sel.any():
            continue
        sub = pieces.loc[sel]
        _vector(group, sub, crs, key, control=False, densify_m=0,
                style={"color": color, "weight": weight, "opacity": 0.95, "lineCap": "round"},
                popups=_popups(sub, cols, title_prefix=text.split(":")[0] + " road"))
        rows.insert(0, _swatch("line", color, f"{text}: {fmt(float(np.nansum(km[sel])), 1)} km"))
    group.add_to(m)
    head = "Road exposure"
    if summary.get("hours") is not None:
        head += f" ({fmt(float(summary['hours']), 1)} h on foot)"
    return [f"<h2>{html.escape(head)}</h2>" + "".join(rows)]


#: Classes of the chance that the seam is unguarded, for colouring and the legend.
_P_BINS = np.array([0.0, 0.1, 0.5, 0.9, 1.0000001])
_P_COLORS = ("#4575b4", "#fee090", "#fc8d59", "#a50026")
_P_TEXT = ("under 10% (guarded in nearly every copy)", "10–50%", "50–90%",
           "over 90% (unguarded in nearly every copy)")


def _uncertainty_parts(uncertainty: Any) -> tuple[gpd.GeoDataFrame | None, pd.DataFrame | None]:
    if uncertainty is None:
        return None, None
    samples = getattr(uncertainty, "p_unguarded", None)
    table = getattr(uncertainty, "table", None)
    if not isinstance(samples, gpd.GeoDataFrame):
        raise InputError("uncertainty", None, f"cannot draw {type(uncertainty).__name__}",
                         "pass the result of gapmap.simulate (or read its output folder)")
    return samples, table if isinstance(table, pd.DataFrame) else None


def _probability_runs(samples: gpd.GeoDataFrame, crs: CRS) -> gpd.GeoDataFrame:
    """Consecutive seam samples of one probability class joined into lines: one feature per
    run instead of one per sample (a seam of 500 km has 2,000 samples)."""
    s = samples.to_crs(crs) if samples.crs is not None else samples.set_crs(crs)
    rows = []
    for sid, part in s.groupby(s["seam_id"].astype(str), sort=False):
        part = part.sort_values("along_km")
        xy = shapely.get_coordinates(part.geometry.values)
        along = part["along_km"].to_numpy(float)
        p = pd.to_numeric(part["p_unguarded"], errors="coerce").to_numpy(float)
        cls = np.clip(np.searchsorted(_P_BINS, np.nan_to_num(p), side="right") - 1, 0, 3)
        step = np.median(np.diff(along)) if len(along) > 2 else np.inf
        jump = np.r_[False, np.diff(along) > 1.6 * step]  # a branch or a hole in the samples
        start = 0
        for i in range(1, len(p) + 1):
            if i < len(p) and not jump[i] and cls[i] == cls[start]:
                continue
            # A run reaches the next run's first sample, so the coloured line has no holes.
            end = i if i < len(p) and not jump[i] else i - 1
            if end > start:
                rows.append({"seam_id": sid, "cls": int(cls[start]),
                             "p_min": float(np.nanmin(p[start:i])),
                             "p_max": float(np.nanmax(p[start:i])),
                             "from_km": float(along[start]), "to_km": float(along[end]),
                             "geometry": shapely.LineString(xy[start:end + 1])})
            start = i
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=crs) if rows else \
        gpd.GeoDataFrame({"cls": []}, geometry=[], crs=crs)


def _range_rows(table: pd.DataFrame | None) -> list[tuple[str, str]]:
    """Headline figures with their 90% ranges ("base (90%: p05–p95)")."""
    if table is None:
        return []
    names = {"unguarded_length_km": ("Unguarded", "km", 1),
             "longest_corridor_km": ("Longest corridor", "km", 1),
             "corridors": ("Corridors", "", 0), "gap_area_km2": ("Gap area", "km²", 0),
             "seam_length_km": ("Seam", "km", 1)}
    out = []
    for key, (text, unit, nd) in names.items():
        if key not in table.index:
            continue
        r = table.loc[key]
        out.append((f"{text}, 90% range",
                    f"{fmt(float(r['p05']), nd)}–{fmt(float(r['p95']), nd)} {unit}".strip()))
    return out


def _uncertainty_layer(m, uncertainty: Any, crs: CRS) -> list[str]:
    """The seam coloured by the chance that it is unguarded (``p_unguarded``), with the run's
    90% ranges in every popup."""
    samples, table = _uncertainty_parts(uncertainty)
    if samples is None or not len(samples):
        return []
    missing = [c for c in ("seam_id", "along_km", "p_unguarded") if c not in samples.columns]
    if missing:
        raise InputError(samples.attrs.get("source", "uncertainty"), missing[0],
                         "seam samples lack the column",
                         "pass unguarded_probability.gpkg as gapmap uncertainty writes it")
    runs = _probability_runs(samples, crs)
    if not len(runs):
        return []
    ranges = _range_rows(table)
    popups = [_table_html([("Chance unguarded",
                            f"{fmt(100 * r.p_min, 0)}–{fmt(100 * r.p_max, 0)}%"),
                           ("Along the seam", f"{fmt(r.from_km, 1)}–{fmt(r.to_km, 1)} km")]
                          + ranges, "Seam, over the uncertainty copies")
              for r in runs.itertuples()]
    styles = [{"color": _P_COLORS[c], "weight": 6, "opacity": 0.95, "lineCap": "butt"}
              for c in runs["cls"]]
    _vector(m, runs, crs, "Chance the seam is unguarded", style=styles, popups=popups,
            densify_m=0)
    present = set(runs["cls"])
    return ["<h2>Chance unguarded</h2>" + "".join(
        _swatch("line", col, txt) for k, (col, txt) in enumerate(zip(_P_COLORS, _P_TEXT))
        if k in present)]


# --------------------------------------------------------------------------------------------
# very many incidents: counts per hexagon

_HEX_PALETTE = ("#fde0dd", "#fcc5c0", "#fa9fb5", "#f768a1", "#dd3497", "#ae017e", "#7a0177",
                "#49006a")


def _hex_index(x: np.ndarray, y: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
    """Axial (q, r) of the pointy-top hexagon of circumradius ``size`` holding each point
    (cube rounding, as in https://www.redblobgames.com/grids/hexagons/).

    Examples
    --------
    >>> q, r = _hex_index(np.array([0.0, 3 ** 0.5 * 10]), np.array([0.0, 0.0]), 10.0)
    >>> q.tolist(), r.tolist()
    ([0, 1], [0, 0])
    """
    fq = (np.sqrt(3) / 3 * x - y / 3) / size
    fr = (2 / 3 * y) / size
    fs = -fq - fr
    q, r, s = np.round(fq), np.round(fr), np.round(fs)
    dq, dr, ds = np.abs(q - fq), np.abs(r - fr), np.abs(s - fs)
    fix_q = (dq > dr) & (dq > ds)
    fix_r = ~fix_q & (dr > ds)
    q = np.where(fix_q, -r - s, q)
    r = np.where(fix_r, -q - s, r)
    return q.astype(np.int64), r.astype(np.int64)


def _hex_rings(q: np.ndarray, r: np.ndarray, size: float, crs: CRS) -> list:
    """Lat/lon rings (six corners) of hexagons (q, r)."""
    cx = size * np.sqrt(3) * (q + r / 2)
    cy = size * 1.5 * r
    ang = np.deg2rad(30 + 60 * np.arange(6))
    xs = cx[:, None] + size * np.cos(ang)[None, :]
    ys = cy[:, None] + size * np.sin(ang)[None, :]
    t = Transformer.from_crs(crs, 4326, always_xy=True)
    lon, lat = t.transform(xs, ys)
    ll = np.round(np.stack([lat, lon], axis=-1), 4)
    return ll.tolist()


def _hex_data(inc: gpd.GeoDataFrame, crs: CRS, box_m) -> dict:
    """Counts of incidents per hexagon and per period (sparse), about 150 hexagons across the
    frame."""
    xy = shapely.get_coordinates(inc.geometry.values)
    src = CRS.from_user_input(inc.crs) if inc.crs is not None else crs
    if not src.equals(crs):
        xy = np.column_stack(Transformer.from_crs(src, crs, always_xy=True).transform(
            xy[:, 0], xy[:, 1]))
    size = max(box_m[2] - box_m[0], box_m[3] - box_m[1]) / 150 / np.sqrt(3)
    q, r = _hex_index(xy[:, 0], xy[:, 1], size)
    period, names, unit = _incident_periods(inc)
    cells, cell = np.unique(np.column_stack([q, r]), axis=0, return_inverse=True)
    cell = cell.ravel()
    total = np.bincount(cell, minlength=len(cells))
    pair, pn = np.unique(cell * (len(names) + 2) + (period + 2), return_counts=True)
    pc, pp = pair // (len(names) + 2), pair % (len(names) + 2) - 2
    keep = pp >= 0
    return {"mode": "hex", "rings": _hex_rings(cells[:, 0], cells[:, 1], size, crs),
            "total": total.tolist(), "pc": pc[keep].tolist(), "pp": pp[keep].tolist(),
            "pn": pn[keep].tolist(), "palette": list(_HEX_PALETTE), "months": names,
            "unit": unit, "hex_km": float(size * np.sqrt(3) / 1000), "n": int(len(inc))}


# --------------------------------------------------------------------------------------------
# legend and headline panel


def _swatch(kind: str, color: str, text: str, extra: str = "") -> str:
    """A legend row; ``text`` is escaped, ``extra`` is gapmap's own markup."""
    cls = {"fill": "gm-sw", "line": "gm-line", "dot": "gm-dot"}[kind]
    sty = f"border-top-color:{color}" if kind == "line" else f"background:{color}"
    return (f'<div class="gm-row"><span class="{cls}" style="{sty}"></span>'
            f"<span>{html.escape(text)}{extra}</span></div>")


def _notes_entry(notes: list[str]) -> list[str]:
    if not notes:
        return []
    shown = [n if len(n) <= 200 else n[:199] + "…" for n in notes[:4]]
    return ["<h2>Notes</h2>" + "".join(f'<div class="gm-note">{html.escape(n)}</div>'
                                       for n in shown)]


def _headline_html(analysis, title: str | None, uncertainty: Any = None) -> str:
    s = analysis.summary or {}
    table = _uncertainty_parts(uncertainty)[1]

    def rng(key: str, digits: int = 1) -> str:
        """ " (90%: low–high)" of a figure, when an uncertainty run is given."""
        if table is None or key not in table.index:
            return ""
        r = table.loc[key]
        return f' (90%: {fmt(float(r["p05"]), digits)}–{fmt(float(r["p95"]), digits)})'

    def num(key: str, digits: int = 1) -> str:
        v = s.get(key)
        return fmt(float(v), digits) if isinstance(v, (int, float, np.number)) else fmt(None)

    share = s.get("unguarded_share")
    share_txt = (f"{fmt(100 * float(share), 1)}%" if isinstance(share, (int, float, np.number))
                 and np.isfinite(float(share)) else fmt(None))
    name_a, name_b = s.get("side_a", analysis.side_a.name), s.get("side_b", analysis.side_b.name)
    parts = [f"<h1>{html.escape(title)}</h1>"] if title else []
    parts.append(f'<div class="gm-sub">{_esc(name_a)} – {_esc(name_b)}</div>')
    parts.append(f'<div><span class="gm-big">{num("unguarded_length_km")} km</span> unguarded '
                 f'({share_txt} of {num("seam_length_km")} km of seam)</div>')
    if table is not None and "unguarded_length_km" in table.index:
        r = table.loc["unguarded_length_km"]
        parts.append(f'<div class="gm-sub">90% range {_esc(fmt(float(r["p05"]), 1))}–'
                     f'{_esc(fmt(float(r["p95"]), 1))} km over the uncertainty copies</div>')
    rows = [("Corridors", f'{fmt(s.get("corridors", 0))} (+{fmt(s.get("minor_corridors", 0))} '
                          f'short){rng("corridors", 0)}'),
            ("Longest corridor", f'{num("longest_corridor_km")} km{rng("longest_corridor_km")}'),
            ("Mean width", f'{num("width_mean_km")} km'),
            ("Gap area", f'{num("gap_area_km2", 0)} km²{rng("gap_area_km2", 0)}')]
    if s.get("exploitation_ratio") is not None:
        rows.append(("Exploitation ratio",
                     f'{num("exploitation_ratio", 3)} (95% CI {num("exploitation_ratio_low", 3)}'
                     f'–{num("exploitation_ratio_high", 3)})'))
    if "incidents_total" in s:
        rows.append(("Incidents", f'{fmt(s.get("incidents_total"))} '
                                  f'({fmt(s.get("incidents_in_gap"))} in the gap)'))
    parts.append(_table_html(rows))
    return '<div class="gm-head-inner">' + "".join(parts) + "</div>"


# --------------------------------------------------------------------------------------------
# public API


def _base_map(analysis, m: folium.Map | None, *, title: str | None, basemap: str,
              offline: bool) -> folium.Map:
    """The folium map framed on the study area: Leaflet only, scale bar, style, basemap."""
    if basemap not in _BASEMAPS:
        raise InputError("--basemap", None, f"unknown basemap {basemap!r}",
                         f"use one of {', '.join(_BASEMAPS)}")
    crs = analysis.crs
    area = gpd.GeoDataFrame(geometry=[analysis.study_area], crs=crs)
    bounds_geom = area if not analysis.study_area.is_empty else analysis.zones
    w, s, e, n = gpd.GeoSeries(_to_ll(bounds_geom, crs), crs=4326).total_bounds
    if m is None:
        m = folium.Map(location=[(s + n) / 2, (w + e) / 2], zoom_start=8, tiles=None,
                       control_scale=False, prefer_canvas=False)
    if not getattr(m, "control_scale", False):
        m.add_child(_ScaleBar())
    # Only Leaflet itself is needed: folium's jQuery, Bootstrap and icon fonts are dropped.
    m.default_js = [("leaflet", _ASSET_SCHEME + "leaflet.js")]
    m.default_css = [("leaflet_css", _ASSET_SCHEME + "leaflet.css")]
    m._gapmap_offline = bool(offline)
    m._gapmap_basemap = basemap
    m.fit_bounds([[s, w], [n, e]])
    if title:
        # The figure's own template prints the title as a variable (rendered once).
        m.get_root().title = html.escape(title)
    m.add_child(_Css(_CSS))
    m.add_child(_MaxZoom(18))
    if offline:
        # A map passed in may carry web tiles (folium's default): offline wins.
        for key, child in list(m._children.items()):
            if isinstance(child, folium.raster_layers.TileLayer):
                log.warning("tile layer %r removed: the map is offline", child.layer_name)
                del m._children[key]
    if basemap == "osm":
        if offline:
            log.warning("basemap 'osm' not loaded: the map is offline (pass offline=False, or "
                        "--online, to load web tiles)")
        else:
            folium.TileLayer(_OSM_TILES, attr=_OSM_ATTR, name="OpenStreetMap", overlay=False,
                             control=True, max_zoom=19).add_to(m)
    return m


def make_map(analysis, *, incidents: gpd.GeoDataFrame | None = None, coverage: Any = None,
             hillshade: Any = None, routes: gpd.GeoDataFrame | None = None,
             hotspots: gpd.GeoDataFrame | None = None, placement: Any = None,
             places: gpd.GeoDataFrame | None = None, areas: gpd.GeoDataFrame | None = None,
             water: Any = None, sources: Sequence[Any] = (), exposure: Any = None,
             sites: Any = None, uncertainty: Any = None,
             title: str | None = None, basemap: str = "none", offline: bool = True,
             m: folium.Map | None = None, cluster_max: int = CLUSTER_MAX,
             aggregate_min: int = AGGREGATE_MIN) -> folium.Map:
    """Interactive map of an analysis, every layer toggleable, with legend and headline panel.

    Parameters
    ----------
    analysis
        A :class:`gapmap.Analysis` (zones, seam, corridors, gap, posts, summary, crs).
    incidents
        Incident points (``Incidents``, ``IncidentMetrics`` or a GeoDataFrame in any CRS) with
        a ``date`` column; up to ``cluster_max`` are drawn as clustered markers with popups
        (dates at their precision: ``2017`` for a year-only date), up to ``aggregate_min`` as
        a heat map, more as counts per hexagon; a slider filters by month (or year).
    coverage
        Visibility already computed: a :class:`gapmap.viewshed.Coverage` or a
        :class:`~gapmap.terrain.Dem` of counts of posts; cells seen by at least one post are
        green, darker where more see.
    hillshade
        A :class:`~gapmap.terrain.Dem` of shade values 0–255 already computed (e.g.
        :func:`gapmap.run.shade`), drawn as a grey image under the vector layers.
    routes
        Walking routes (lines, any CRS), e.g. what ``gapmap routes`` writes.
    hotspots
        Hot-spot hexagons (:func:`gapmap.hotspots.gi_star_hexes`): ``hot``/``cold`` flags, or a
        z-score (``gi_z``) and p-value (``p_sim``); hot in reds, cold in purples.
    placement, sites
        New-post sites: a ``Placement`` (its ``sites``) or a GeoDataFrame of points (``sites``
        is the same as ``placement``).
    places
        Towns (points with ``name`` and ``population``, :func:`gapmap.places.load_places`):
        permanent labels, the most populous kept as the map zooms out.
    areas
        The study-area polygons with their names (``ADM1_EN``/``ADM2_EN`` or a name field):
        outlines and labels of governorates and districts.
    water
        Rivers and lakes (a ``Water`` with ``.rivers`` and ``.lakes``), drawn under the layers.
    sources
        The run's :class:`gapmap.sources.Source` records: their credits and licences go into
        the attribution line.
    exposure
        Road exposure (:func:`gapmap.exposure.road_exposure`, or its pieces): exposed road in
        a strong red, reachable-but-seen and seen-only road distinguishable, km in the legend.
    uncertainty
        A :func:`gapmap.simulate` result: the seam coloured by ``p_unguarded``, and the 90%
        ranges of the headline figures in the panel and the popups.
    title
        Map title (also the page title).
    basemap
        ``"none"`` (default) or ``"osm"``; web tiles are only loaded when ``offline=False``.
    offline
        Keep the page free of network requests (default). Offline wins over ``basemap``.
    m
        Add the layers to this map instead of a new one.
    cluster_max, aggregate_min
        Most incidents drawn as individual markers; fewest counted per hexagon.

    Returns
    -------
    folium.Map
        Save it with :func:`save_map` (one self-contained HTML file).

    Examples
    --------
    >>> m = make_map(result, incidents=events, title="Disputed territories")  # doctest: +SKIP
    >>> save_map(m, "out/map.html")  # doctest: +SKIP
    """
    if sites is not None and placement is not None:
        raise InputError("sites", None, "both sites and placement given", "pass one of them")
    placement = sites if sites is not None else placement
    m = _base_map(analysis, m, title=title, basemap=basemap, offline=offline)
    crs = analysis.crs
    box_m, box_ll = _frame(analysis)
    notes = illustrative_notes(analysis.zones)
    colors = force_colors(analysis.zones)
    legend = _raster_layer(m, hillshade, "hillshade", notes)
    legend += _raster_layer(m, coverage, "coverage", notes)
    reference = _reference_layer(m, areas, water, crs, box_m)
    legend += _zones_layer(m, analysis, colors)
    legend += _gap_layer(m, analysis)
    legend += _seam_layer(m, analysis)
    legend += _corridor_layer(m, analysis, show=uncertainty is None,
                              ranges=_range_rows(_uncertainty_parts(uncertainty)[1]))
    legend += _uncertainty_layer(m, uncertainty, crs)
    legend += _exposure_layer(m, exposure, crs)
    legend += _posts_layer(m, analysis, colors)
    legend += _routes_layer(m, routes, crs, notes)
    legend += _hotspot_layer(m, hotspots, crs)
    legend += _sites_layer(m, placement, crs)
    legend += _incidents_layer(m, incidents, crs, cluster_max, notes,
                               aggregate_min=aggregate_min, box_m=box_m)
    legend += reference
    legend += _notes_entry(notes)
    _labels_layer(m, areas, places, crs, box_ll)
    m.add_child(_Panel(_headline_html(analysis, title, uncertainty), "topleft",
                       "gm-panel gm-head"))
    m.add_child(_Panel("".join(legend), "bottomright", "gm-panel gm-legend"))
    m.add_child(_LayerControl(position="topright", collapsed=False))
    credit_line = attribution(sources or ())
    if credit_line:
        m.add_child(_Attribution([credit_line]))
    return m


def _frame(analysis) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The map's frame (study area, else zones) in the analysis CRS and in lon/lat."""
    crs = analysis.crs
    area = gpd.GeoDataFrame(geometry=[analysis.study_area], crs=crs)
    frame = area if not analysis.study_area.is_empty else analysis.zones
    box_m = tuple(float(v) for v in frame.total_bounds)
    box_ll = tuple(float(v) for v in gpd.GeoSeries(_to_ll(frame, crs), crs=4326).total_bounds)
    return box_m, box_ll


# --------------------------------------------------------------------------------------------
# the page: folium's rendering, then assets inlined, the data block, the runtime and the CSP

_SCRIPT_LINK = re.compile(r'<script src="([^"]+)"></script>')
_CSS_LINK = re.compile(r'<link rel="stylesheet" href="([^"]+)"\s*/?>')
# Executable inline scripts (every <script> that is not a data block), for the CSP hashes.
_INLINE_SCRIPT = re.compile(r'<script(?![^>]*\stype="application/json")(?:\s[^>]*)?>(.*?)'
                            r"</script>", re.S | re.I)


def _asset_text(name: str) -> str:
    return (ASSET_DIR / _ASSETS[name]).read_text(encoding="utf-8")


def _asset_for(url: str) -> str | None:
    """The vendored file for a link (our own scheme, or a CDN URL of the same file)."""
    if url.startswith(_ASSET_SCHEME):
        return url[len(_ASSET_SCHEME):]
    base = url.rsplit("/", 1)[-1].split("?")[0]
    return base if base in _ASSETS else None


def _inline_js(code: str) -> str:
    code = re.sub(r"^//# sourceMappingURL=.*$", "", code, flags=re.M)
    return "<script>\n" + re.sub(r"</(script)", r"<\\/\1", code, flags=re.I) + "\n</script>"


def _inline_css(name: str, css: str) -> str:
    folder = (ASSET_DIR / _ASSETS[name]).parent

    def data_uri(match: re.Match) -> str:
        ref = match.group(1).strip("'\"")
        if ref.startswith(("data:", "#")):
            return match.group(0)
        img = folder / ref
        if not img.exists():
            return match.group(0)
        b64 = base64.b64encode(img.read_bytes()).decode("ascii")
        return f"url(data:image/png;base64,{b64})"

    css = re.sub(r"url\(([^)]+)\)", data_uri, css)
    return "<style>\n" + re.sub(r"</(style)", r"<\\/\1", css, flags=re.I) + "\n</style>"


def _payloads(root) -> dict[str, Any]:
    """The data of every data-carrying element of the page, by key."""
    out: dict[str, Any] = {}
    stack = [root]
    while stack:
        el = stack.pop()
        if isinstance(el, DataElement):
            out[el.key()] = el.payload()
        stack.extend(getattr(el, "_children", {}).values())
    return out


def _script_hashes(page: str) -> list[str]:
    """CSP sources admitting exactly the page's inline scripts (SHA-256 of each)."""
    out = []
    for body in _INLINE_SCRIPT.findall(page):
        digest = hashlib.sha256(body.encode("utf-8")).digest()
        source = f"'sha256-{base64.b64encode(digest).decode('ascii')}'"
        if source not in out:
            out.append(source)
    return out


def _csp(offline: bool, script_sources: Sequence[str]) -> str:
    """Content-Security-Policy: gapmap's own inline scripts (by hash), inline styles and data:
    images only; tiles only when online."""
    img = "data: blob:" + ("" if offline else " https://*.tile.openstreetmap.org")
    return ("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            f"script-src {' '.join(script_sources)}; style-src 'unsafe-inline'; "
            f"img-src {img}; font-src data:; connect-src 'none'; form-action 'none'; "
            "base-uri 'none'\">")


def _inline_assets(page: str, offline: bool) -> tuple[str, list[str]]:
    """Replace links to shipped scripts and styles by their text; the links left unshipped."""
    seen: set[str] = set()
    missing: list[str] = []

    def inline(match: re.Match, as_js: bool) -> str:
        name = _asset_for(match.group(1))
        if name is None:
            missing.append(match.group(1))
            return match.group(0)
        if name in seen:
            return ""
        seen.add(name)
        text = _asset_text(name)
        return _inline_js(text) if as_js else _inline_css(name, text)

    page = _SCRIPT_LINK.sub(lambda mt: inline(mt, True), page)
    page = _CSS_LINK.sub(lambda mt: inline(mt, False), page)
    return page, missing


def render_html(m: folium.Map, *, offline: bool | None = None) -> str:
    """The map as one self-contained HTML string (scripts, styles and images inlined).

    Raises
    ------
    GapmapError
        If the map links a script or style gapmap does not ship and ``offline`` is on.
    """
    offline = getattr(m, "_gapmap_offline", True) if offline is None else offline
    root = m.get_root()
    page = root.render()
    page, missing = _inline_assets(page, offline)
    if missing and offline:
        raise GapmapError(f"the map links resources gapmap does not ship: {', '.join(missing)}"
                          " — remove the plugins that need them, or save with offline=False")
    # The data block and the runtime go in last, as text: neither passes through Jinja.
    extra = (f'<script type="application/json" id="{_DATA_ID}">'
             f"{json_for_html(_payloads(root))}</script>\n"
             f"<script>{_RUNTIME_JS}</script>\n")
    head_end = page.index("</head>")
    page = page[:head_end] + extra + page[head_end:]
    # The HTML parser turns CR LF into LF before it hashes a script: hash what it will see.
    page = page.replace("\r\n", "\n").replace("\r", "\n")
    if missing:
        log.warning("map links external resources: %s", ", ".join(missing))
    else:
        page = page.replace("<head>", "<head>\n    " + _csp(offline, _script_hashes(page)), 1)
    return page


def save_map(m: folium.Map, path: str | os.PathLike, *, offline: bool | None = None) -> Path:
    """Write the map as ONE self-contained HTML file, atomically.

    Parameters
    ----------
    m
        A map from :func:`make_map` (or any folium map using only Leaflet, MarkerCluster and
        Leaflet.heat).
    path
        Output file (``.html``; another suffix is refused).
    offline
        Override the map's own offline setting.

    Returns
    -------
    pathlib.Path
        The written file.

    Examples
    --------
    >>> save_map(make_map(result), "out/map.html")  # doctest: +SKIP
    PosixPath('out/map.html')
    """
    target = check_html_path(path)
    page = render_html(m, offline=offline)
    with atomic_path(target) as tmp:
        tmp.write_text(page, encoding="utf-8")
    log.info("wrote %s (%.1f MB)", target, target.stat().st_size / 1e6)
    return target


# --------------------------------------------------------------------------------------------
# saved results read back for the map (`gapmap map --routes/--sites/--uncertainty`)

#: Columns a routes file must have (what ``gapmap routes`` writes).
ROUTE_FIELDS = ("origin", "target", "hours")


def _read_layer(path: Path, what: str, kinds: tuple[str, ...], fix: str) -> gpd.GeoDataFrame:
    if not path.exists():
        raise InputError(str(path), None, f"{what} file not found", fix)
    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure is the file's fault
        raise InputError(str(path), None, f"cannot read {what}: {str(exc).splitlines()[0]}",
                         fix) from None
    types = set(gdf.geometry.geom_type.dropna()) if len(gdf) else set()
    if not types <= set(kinds):
        raise InputError(str(path), "geometry", f"{what} must be {' or '.join(kinds)}, not "
                         f"{', '.join(sorted(types))}", fix)
    gdf.attrs["source"] = path.name
    return gdf


def read_routes(path: str | os.PathLike) -> gpd.GeoDataFrame:
    """Routes written by ``gapmap routes`` (lines with ``origin``, ``target``, ``hours``).

    Raises
    ------
    InputError
        If the file is missing, not lines, or lacks one of :data:`ROUTE_FIELDS`.

    Examples
    --------
    >>> routes = read_routes("out/routes.geojson")  # doctest: +SKIP
    """
    p = Path(path)
    fix = "pass the output of gapmap routes (--out routes.geojson)"
    gdf = _read_layer(p, "routes", ("LineString", "MultiLineString"), fix)
    missing = [c for c in ROUTE_FIELDS if c not in gdf.columns]
    if missing:
        raise InputError(str(p), missing[0], "routes file lacks the column "
                         f"(it has {', '.join(map(str, gdf.columns.drop(gdf.geometry.name)))})",
                         fix)
    return gdf


def read_sites(path: str | os.PathLike):
    """New-post sites written by ``gapmap place``: its output folder (``sites.geojson``, with
    ``closed.geojson`` and the before/after km of ``placement.json`` when there) or the sites
    file itself. Returns an object with ``.sites`` (and ``.closed``,
    ``.unguarded_before_km``, ``.unguarded_after_km`` when known) for :func:`make_map`.

    Examples
    --------
    >>> placement = read_sites("out/place")  # doctest: +SKIP
    """
    from types import SimpleNamespace

    p = Path(path)
    fix = "pass the output folder of gapmap place, or its sites.geojson"
    folder = p if p.is_dir() else None
    sites = _read_layer(p / "sites.geojson" if folder else p, "sites", ("Point",), fix)
    out = SimpleNamespace(sites=sites, closed=None, unguarded_before_km=None,
                          unguarded_after_km=None)
    if folder is not None and (folder / "closed.geojson").exists():
        out.closed = _read_layer(folder / "closed.geojson", "closed seam",
                                 ("LineString", "MultiLineString", "Point"), fix)
    if folder is not None and (folder / "placement.json").exists():
        meta = json.loads((folder / "placement.json").read_text(encoding="utf-8"))
        out.unguarded_before_km = meta.get("unguarded_before_km")
        out.unguarded_after_km = meta.get("unguarded_after_km")
    return out


def read_uncertainty(path: str | os.PathLike):
    """The output folder of ``gapmap uncertainty`` (``unguarded_probability.gpkg``,
    ``uncertainty.csv``, ``draws.csv``) as a :class:`gapmap.uncertainty.Uncertainty`.

    Examples
    --------
    >>> sim = read_uncertainty("out/uncertainty")  # doctest: +SKIP
    """
    from .uncertainty import Uncertainty

    p = Path(path)
    fix = "pass the output folder of gapmap uncertainty (--out DIR)"
    if not p.is_dir():
        raise InputError(str(p), None, "not a folder of gapmap uncertainty outputs", fix)
    gpkg, csv = p / "unguarded_probability.gpkg", p / "uncertainty.csv"
    samples = _read_layer(gpkg, "seam samples", ("Point",), fix)
    for col in ("seam_id", "along_km", "p_unguarded"):
        if col not in samples.columns:
            raise InputError(str(gpkg), col, "seam samples lack the column", fix)
    if not csv.exists():
        raise InputError(str(csv), None, "uncertainty table not found", fix)
    table = pd.read_csv(csv)
    missing = [c for c in ("field", "p05", "p95") if c not in table.columns]
    if missing:
        raise InputError(str(csv), missing[0], "uncertainty table lacks the column", fix)
    draws = pd.read_csv(p / "draws.csv") if (p / "draws.csv").exists() else pd.DataFrame()
    cor = p / "corridors_uncertainty.csv"
    cor = pd.read_csv(cor, dtype={"corridor_id": str}) if cor.exists() else None
    return Uncertainty(table=table.set_index("field"), p_unguarded=samples, draws=draws,
                       corridors=cor)
