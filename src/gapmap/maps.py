"""Interactive map of an analysis: one self-contained, offline HTML page.

:func:`make_map` builds a :class:`folium.Map` with one toggleable layer per input (zones by
force, the seam, corridors coloured by length, the gap region, posts and their ranges,
incidents with a month slider, hillshade, coverage, routes, hot spots, new-post sites), a
legend, a scale bar and a panel with the headline figures. :func:`save_map` writes it as ONE
HTML file: Leaflet and its plugins are copied into the page from ``gapmap/assets``, so the map
opens without network access and asks no third-party server for anything. With
``offline=True`` (the default) the page also carries a Content-Security-Policy that forbids
every network request.

Every string that comes from input data (force names, notes, actors, field values, titles) is
HTML-escaped before it reaches a popup, tooltip, legend or panel, and JSON embedded in
``<script>`` is escaped so that no ``</script>`` inside the data can end the script early.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
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

__all__ = ["make_map", "save_map", "render_html", "CLUSTER_MAX", "ASSET_DIR", "illustrative_notes",
           "force_colors", "incident_frame", "scenario_layers"]

log = logging.getLogger(__name__)

ASSET_DIR = Path(__file__).with_name("assets")
#: Up to this many incidents are drawn as clustered markers with popups; beyond, as a heat map.
CLUSTER_MAX = 10_000
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

# Side A in blues/greens, side B in reds/oranges, forces of neither side in greys: an analyst
# reads the two camps at a glance, and forces within a camp stay distinguishable.
_PALETTE_A = ["#2166ac", "#4393c3", "#1b7837", "#5aae61", "#053061"]
_PALETTE_B = ["#b2182b", "#d6604d", "#e08214", "#8c510a", "#67001f"]
_PALETTE_OTHER = ["#737373", "#969696", "#525252", "#bdbdbd"]
_CORRIDOR_CMAP = "YlOrRd"
_LABELS = {
    "corridor_id": "Corridor", "side_a": "Side A", "side_b": "Side B",
    "length_km": "Length (km)", "width_min_km": "Width min (km)",
    "width_mean_km": "Width mean (km)", "width_max_km": "Width max (km)",
    "slope_mean_deg": "Mean slope (°)", "tri_mean_m": "Ruggedness TRI (m)",
    "crossing_hours": "Crossing time (h)", "roads_crossed": "Roads crossed",
    "incidents": "Incidents", "fatalities": "Fatalities",
    "incidents_per_100km": "Incidents per 100 km", "first_date": "First incident",
    "last_date": "Last incident", "force": "Force", "side": "Side", "reach_km": "Reach (km)",
    "range_km": "Range (km)", "height_m": "Height (m)", "note": "Note", "name": "Name",
    "date": "Date", "type": "Type", "sub_type": "Sub-type", "actor": "Actor",
    "actor2": "Actor 2", "notes": "Notes", "coarse": "Coarse location",
    "date_precision": "Date precision", "source_id": "Source id", "rank": "Rank",
    "gain_km": "Gain (km)", "gain_incidents": "Gain (incidents)", "count": "Incidents",
    "gi_z": "Gi* z", "p_sim": "p (permutation)", "hot": "Hot spot", "cold": "Cold spot",
}
_HIDDEN = {"start_lon", "start_lat", "end_lon", "end_lat"}


# --------------------------------------------------------------------------------------------
# small helpers


def _esc(value: Any) -> str:
    """Escape any value for HTML text or attribute context."""
    return html.escape(_fmt(value), quote=True)


def _fmt(value: Any) -> str:
    """A readable string for a table cell (numbers rounded, missing values as a dash)."""
    if value is None:
        return "—"
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        ts = pd.Timestamp(value)
        return "—" if pd.isna(ts) else ts.strftime("%Y-%m-%d")
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            return "—"
        v = float(value)
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.2f}".rstrip("0").rstrip(".")
    try:
        if pd.isna(value):
            return "—"
    except (TypeError, ValueError):
        pass
    return str(value)


def _label(col: str) -> str:
    return _LABELS.get(col, col.replace("_", " "))


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
        rows = rows + f"<tr><th>{html.escape(_label(str(col)))}</th><td>" + vals + "</td></tr>"
    if title_col is not None and title_col in gdf.columns:
        heads = "<b>" + html.escape(title_prefix) + gdf[title_col].map(_esc) + "</b>"
    else:
        heads = pd.Series([f"<b>{html.escape(title_prefix)}</b>" if title_prefix else ""] * n,
                          index=gdf.index, dtype=object)
    return (heads + '<table class="gm-tab">' + rows + "</table>").tolist()


def _find_col(df: pd.DataFrame, *names: str) -> str | None:
    lower = {str(c).lower(): c for c in df.columns}
    for n in names:
        if n.lower() in lower:
            return lower[n.lower()]
    return None


def illustrative_notes(*frames: pd.DataFrame | None) -> list[str]:
    """Distinct ``note`` values of the given layers (e.g. "illustrative layout, not an
    assessment"), in order of appearance.

    Examples
    --------
    >>> import pandas as pd
    >>> illustrative_notes(pd.DataFrame({"note": ["illustrative", None, "illustrative"]}))
    ['illustrative']
    """
    out: list[str] = []
    for df in frames:
        if df is None or not isinstance(df, pd.DataFrame):
            continue
        # "note" marks illustrative/synthetic layers; ACLED's "notes" are event descriptions.
        col = _find_col(df, "note")
        if col is None:
            continue
        for v in df[col].dropna().astype(str).str.strip().unique():
            if v and v not in out:
                out.append(v)
    return out


def _is_illustrative(notes: Sequence[str]) -> bool:
    return any(re.search(r"illustrat|synthetic|fictional|hypothetical", n, re.I) for n in notes)


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
    geoms = gdf.geometry.values
    arr = np.asarray(geoms, dtype=object)
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


def force_colors(zones: pd.DataFrame) -> dict[str, str]:
    """Colour per force: side A blues/greens, side B reds/oranges, others greys.

    Examples
    --------
    >>> import pandas as pd
    >>> force_colors(pd.DataFrame({"force": ["isf", "peshmerga"], "side": ["b", "a"]}))
    {'peshmerga': '#2166ac', 'isf': '#b2182b'}
    """
    out: dict[str, str] = {}
    if "force" not in zones.columns:
        return out
    side = zones["side"] if "side" in zones.columns else pd.Series([None] * len(zones),
                                                                     index=zones.index)
    pairs = (pd.DataFrame({"force": zones["force"].astype(str), "side": side.astype(object)})
             .drop_duplicates("force"))
    for tag, palette in (("a", _PALETTE_A), ("b", _PALETTE_B), (None, _PALETTE_OTHER)):
        sel = pairs[pairs["side"] == tag] if tag else pairs[~pairs["side"].isin(["a", "b"])]
        for i, f in enumerate(sorted(sel["force"])):
            out[f] = palette[i % len(palette)]
    return out


# --------------------------------------------------------------------------------------------
# page elements


class _Css(MacroElement):
    """A ``<style>`` block in the page head."""

    _template = Template("""
        {% macro header(this, kwargs) %}<style>{{ this.css }}</style>{% endmacro %}
    """)

    def __init__(self, css: str) -> None:
        super().__init__()
        self._name = "GapmapCss"
        self.css = css


class _Panel(MacroElement):
    """A Leaflet control holding HTML built (and escaped) by gapmap."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function () {
            var ctl = L.control({position: {{ this.position|tojson }}});
            ctl.onAdd = function () {
                var div = L.DomUtil.create("div", {{ this.css_class|tojson }});
                div.innerHTML = {{ this.html|tojson }};
                L.DomEvent.disableClickPropagation(div);
                L.DomEvent.disableScrollPropagation(div);
                return div;
            };
            ctl.addTo({{ this._parent.get_name() }});
        })();
        {% endmacro %}
    """)

    def __init__(self, html_text: str, position: str, css_class: str) -> None:
        super().__init__()
        self._name = "GapmapPanel"
        self.html = html_text
        self.position = position
        self.css_class = css_class


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


class _BindPopups(MacroElement):
    """Bind each feature's pre-escaped ``_popup`` / ``_tip`` HTML to its layer.

    folium's GeoJsonPopup/GeoJsonTooltip insert field values as raw HTML; here the HTML is built
    in Python with every value escaped, and only bound in the page.
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.eachLayer(function (l) {
            var p = l.feature && l.feature.properties;
            if (!p) { return; }
            if (p._popup) { l.bindPopup(p._popup, {maxWidth: 360}); }
            if (p._tip) { l.bindTooltip(p._tip, {sticky: true}); }
        });
        {% endmacro %}
    """)


class _Incidents(folium.map.Layer):
    """Incidents as clustered markers (≤ ``CLUSTER_MAX``) or a heat map, with a month slider.

    The data travel as compact arrays (lat, lon, month index, escaped popup HTML); a small
    Leaflet control filters them by month.
    """

    _template = Template("""
        {% macro header(this, kwargs) %}{% endmacro %}
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = (function () {
            var d = {{ this.data|tojson }};
            var map = {{ this._parent.get_name() }};
            var n = d.lat.length, group;
            if (d.mode === "cluster") {
                group = L.markerClusterGroup({chunkedLoading: true, maxClusterRadius: 45});
                var markers = new Array(n);
                var style = {radius: 5, color: "#49006a", weight: 1, fillColor: "#dd3497",
                             fillOpacity: 0.85};
                for (var i = 0; i < n; i++) {
                    markers[i] = L.circleMarker([d.lat[i], d.lon[i]], style);
                    if (d.popup) {
                        markers[i].bindPopup((function (k) {
                            return function () { return d.popup[k]; };
                        })(i), {maxWidth: 360});
                    }
                }
                group._gmShow = function (k) {
                    var sel = [];
                    for (var i = 0; i < n; i++) { if (k < 0 || d.month[i] === k) sel.push(markers[i]); }
                    group.clearLayers();
                    group.addLayers(sel);
                    return sel.length;
                };
            } else {
                group = L.heatLayer([], {radius: 12, blur: 15, maxZoom: 12, minOpacity: 0.35});
                group._gmShow = function (k) {
                    var pts = [];
                    for (var i = 0; i < n; i++) {
                        if (k < 0 || d.month[i] === k) pts.push([d.lat[i], d.lon[i]]);
                    }
                    group.setLatLngs(pts);
                    return pts.length;
                };
            }
            var total = group._gmShow(-1);
            if (d.months.length > 1) {
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
            return group;
        })();
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

    def render(self, **kwargs) -> None:
        # Link the plugin's script and styles the way folium's own plugins do (inlined later).
        figure = self.get_root()
        for name, url in self.default_js:
            figure.header.add_child(folium.elements.JavascriptLink(url), name=name)
        for name, url in self.default_css:
            figure.header.add_child(folium.elements.CssLink(url), name=name)
        super().render(**kwargs)


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
"""


# --------------------------------------------------------------------------------------------
# rasters (hillshade, coverage)


@dataclass(frozen=True)
class _Raster:
    array: np.ma.MaskedArray
    transform: Any
    crs: CRS
    note: str | None = None


def _read_raster(obj: Any, what: str) -> _Raster:
    """A single-band raster from a path, an open rasterio dataset, an ``(array, transform,
    crs)`` tuple, or an object with ``array``/``data``/``values``, ``transform`` and ``crs``."""
    import rasterio

    if isinstance(obj, (str, os.PathLike)):
        p = Path(obj)
        if not p.exists():
            raise InputError(p, None, f"{what} raster not found", "check the path")
        try:
            with rasterio.open(p) as ds:
                return _raster_from_dataset(ds, p.name)
        except rasterio.errors.RasterioIOError as exc:
            raise InputError(p, None, f"cannot read {what} raster: {exc}",
                             "give a GeoTIFF") from exc
    if hasattr(obj, "read") and hasattr(obj, "transform") and hasattr(obj, "crs"):
        return _raster_from_dataset(obj, str(getattr(obj, "name", what)))
    if isinstance(obj, tuple) and len(obj) == 3:
        arr, transform, crs = obj
    else:
        # "count" first: a viewshed Coverage carries both the 0/1 and the per-post count.
        arr = next((getattr(obj, a) for a in ("count", "array", "data", "values", "visible")
                    if getattr(obj, a, None) is not None), None)
        transform, crs = getattr(obj, "transform", None), getattr(obj, "crs", None)
    if arr is None or transform is None or crs is None:
        raise InputError(what, None, f"cannot use {type(obj).__name__} as a raster",
                         "give a GeoTIFF path or (array, transform, crs)")
    a = np.ma.masked_invalid(np.ma.asarray(arr, dtype=float))
    if a.ndim == 3:
        a = a[0]
    note = getattr(obj, "note", None)
    return _Raster(a, transform, CRS.from_user_input(crs), note)


def _raster_from_dataset(ds, name: str) -> _Raster:
    if ds.crs is None:
        raise InputError(name, "crs", "raster has no CRS", "assign one with gdal_edit.py -a_srs")
    arr = ds.read(1, masked=True).astype(float)
    tags = {k.lower(): v for k, v in ds.tags().items()}
    note = tags.get("note") or tags.get("description")
    if note is None and re.search(r"synthetic|illustrat", name, re.I):
        note = "synthetic"
    return _Raster(np.ma.masked_invalid(arr), ds.transform, CRS.from_user_input(ds.crs), note)


def _to_web_mercator(r: _Raster, resampling: str, max_px: int = 2048
                     ) -> tuple[np.ma.MaskedArray, list[list[float]]]:
    """Warp to EPSG:3857 (what Leaflet stretches image overlays in) and give lat/lon bounds."""
    from rasterio.transform import array_bounds
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    h, w = r.array.shape
    west, south, east, north = array_bounds(h, w, r.transform)
    dst_crs = CRS.from_epsg(3857)
    transform, dw, dh = calculate_default_transform(r.crs, dst_crs, w, h, west, south, east,
                                                    north)
    scale = max(dw / max_px, dh / max_px, 1.0)
    if scale > 1:
        transform, dw, dh = calculate_default_transform(
            r.crs, dst_crs, w, h, west, south, east, north,
            dst_width=int(dw / scale), dst_height=int(dh / scale))
    src = np.where(np.ma.getmaskarray(r.array), np.nan, r.array.filled(np.nan)).astype("float32")
    dst = np.full((dh, dw), np.nan, dtype="float32")
    reproject(src, dst, src_transform=r.transform, src_crs=r.crs, dst_transform=transform,
              dst_crs=dst_crs, resampling=getattr(Resampling, resampling), src_nodata=np.nan,
              dst_nodata=np.nan)
    x0, y1, x1, y0 = array_bounds(dh, dw, transform)
    t = Transformer.from_crs(dst_crs, 4326, always_xy=True)
    lons, lats = t.transform([x0, x1], [y0, y1])
    bounds = [[min(lats), min(lons)], [max(lats), max(lons)]]
    return np.ma.masked_invalid(dst), bounds


def _png_data_uri(rgba: np.ndarray) -> str:
    from matplotlib.image import imsave

    buf = io.BytesIO()
    imsave(buf, rgba, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _hillshade_rgba(a: np.ma.MaskedArray) -> np.ndarray:
    """Grey shading with transparency where there is no data."""
    v = a.filled(np.nan)
    finite = np.isfinite(v)
    hi = np.nanmax(v) if finite.any() else 1.0
    scale = 255.0 if hi > 1.0 else 1.0  # gdaldem gives 0–255; some tools give 0–1
    g = np.clip(np.nan_to_num(v / scale, nan=0.0), 0, 1)
    rgba = np.zeros(v.shape + (4,), dtype=np.uint8)
    rgba[..., :3] = (g * 255).astype(np.uint8)[..., None]
    rgba[..., 3] = np.where(finite, 255, 0)
    return rgba


def _coverage_rgba(a: np.ma.MaskedArray) -> np.ndarray:
    """Visible cells green (darker where more posts see them); unseen and no data clear."""
    v = np.nan_to_num(a.filled(np.nan), nan=0.0)
    seen = v > 0
    top = max(float(v.max()), 1.0)
    alpha = np.where(seen, 90 + 110 * np.clip(v / top, 0, 1), 0)
    rgba = np.zeros(v.shape + (4,), dtype=np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = 26, 152, 80
    rgba[..., 3] = alpha.astype(np.uint8)
    return rgba


def _add_raster(m: folium.Map, obj: Any, kind: str, name: str, show: bool) -> str | None:
    from .terrain import Dem, hillshade as shade

    if kind == "hillshade" and isinstance(obj, Dem):
        # An elevation grid: shade it here (gdaldem's 1–255, 0 where there is no data).
        sh = shade(obj).astype(float)
        obj = _Raster(np.ma.masked_equal(sh, 0), obj.transform, CRS.from_user_input(obj.crs),
                      "synthetic" if re.search(r"synthetic", str(obj.source or ""), re.I) else None)
    r = obj if isinstance(obj, _Raster) else _read_raster(obj, kind)
    arr, bounds = _to_web_mercator(r, "bilinear" if kind == "hillshade" else "nearest")
    rgba = _hillshade_rgba(arr) if kind == "hillshade" else _coverage_rgba(arr)
    folium.raster_layers.ImageOverlay(
        image=_png_data_uri(rgba), bounds=bounds, name=name, overlay=True, control=True,
        show=show, opacity=0.55 if kind == "hillshade" else 1.0, mercator_project=False,
        interactive=False, cross_origin=False, zindex=1 if kind == "hillshade" else 2,
    ).add_to(m)
    return r.note


# --------------------------------------------------------------------------------------------
# vector layers


def _geojson_layer(m: folium.Map, gdf: gpd.GeoDataFrame, crs: CRS, name: str, *,
                   style: dict | list[dict], popups: list[str] | None = None,
                   tips: list[str] | None = None, point_radius: float | None = None,
                   show: bool = True, densify_m: float = 1000.0) -> folium.GeoJson:
    """Add a GeoJSON layer whose per-feature styles are computed here, popups pre-escaped."""
    geoms = _to_ll(gdf, crs, densify_m)
    n = len(geoms)
    styles = style if isinstance(style, list) else [style] * n
    props: dict[str, list] = {"_s": list(range(n))}
    if popups is not None:
        props["_popup"] = popups
    if tips is not None:
        props["_tip"] = tips
    data = _feature_collection(geoms, props)
    kwargs: dict[str, Any] = {}
    if point_radius is not None:
        kwargs["marker"] = folium.CircleMarker(radius=point_radius, fill=True)
    layer = folium.GeoJson(
        data, name=name, show=show, overlay=True, control=True,
        style_function=lambda f: styles[f["properties"]["_s"]],
        highlight_function=None, embed=True, zoom_on_click=False, **kwargs)
    layer.add_child(_BindPopups())
    layer.add_to(m)
    return layer


def _zones_layer(m, analysis, colors: dict[str, str]) -> None:
    z = analysis.zones
    if z is None or len(z) == 0:
        return
    side_names = {"a": analysis.side_a.name, "b": analysis.side_b.name}
    z = z.copy()
    z["side"] = z["side"].map(lambda s: side_names.get(s, "neither side") if s else "neither side")
    cols = [c for c in ("force", "side", "name", "reach_km", "note") if c in z.columns]
    extra = [c for c in z.columns if c not in cols and c != z.geometry.name
             and str(c).lower() in ("label", "notes", "source")]
    styles = [{"color": colors.get(str(f), "#737373"), "weight": 1,
               "fillColor": colors.get(str(f), "#737373"), "fillOpacity": 0.45}
              for f in z["force"].astype(str)]
    tips = (z["force"].map(_esc) + " (" + z["side"].map(_esc) + ")").tolist()
    _geojson_layer(m, z, analysis.crs, "Zones (by force)", style=styles,
                   popups=_popups(z, cols + extra, title_col=None, title_prefix="Zone"), tips=tips)


def _corridor_layer(m, analysis) -> tuple[float, float] | None:
    c = analysis.corridors
    if c is None or len(c) == 0:
        return None
    lengths = c["length_km"].to_numpy(float)
    lo, hi = float(np.nanmin(lengths)), float(np.nanmax(lengths))
    colors = _hex_colors(lengths, _CORRIDOR_CMAP, lo, hi)
    styles = [{"color": col, "weight": 5, "opacity": 0.95, "lineCap": "round"} for col in colors]
    cols = [col for col in c.columns if col != c.geometry.name and col not in _HIDDEN
            and col != "corridor_id"]
    tips = ("Corridor " + c["corridor_id"].map(_esc) + ": "
            + c["length_km"].map(lambda v: _esc(round(float(v), 1))) + " km").tolist()
    _geojson_layer(m, c, analysis.crs, "Unguarded corridors", style=styles,
                   popups=_popups(c, cols, title_col="corridor_id", title_prefix="Corridor "),
                   tips=tips, densify_m=250.0)
    return lo, hi


def _posts_layer(m, analysis, colors: dict[str, str]) -> bool:
    p = analysis.posts
    if p is None or len(p) == 0:
        return False
    group = folium.FeatureGroup(name="Posts and ranges", overlay=True, control=True, show=True)
    rng = p["range_km"].to_numpy(float) if "range_km" in p.columns else np.full(len(p), 5.0)
    # Range discs are drawn in the metric CRS and then projected, so they are true circles on
    # the ground (Leaflet's own circles are Web Mercator approximations).
    discs = gpd.GeoDataFrame(geometry=shapely.buffer(p.geometry.values, rng * 1000,
                                                     quad_segs=16), crs=p.crs or analysis.crs)
    fc = _feature_collection(_to_ll(discs, analysis.crs, 2000.0), {"_s": list(range(len(p)))})
    folium.GeoJson(fc, name="ranges", control=False,
                   style_function=lambda f: {"color": "#1a9850", "weight": 1, "opacity": 0.7,
                                             "fillColor": "#1a9850", "fillOpacity": 0.12},
                   interactive=False).add_to(group)
    forces = p["force"].astype(str) if "force" in p.columns else pd.Series(["post"] * len(p))
    styles = [{"color": "#111", "weight": 1, "fillColor": colors.get(f, "#fee08b"),
               "fillOpacity": 1.0} for f in forces]
    cols = [c for c in p.columns if c != p.geometry.name][:10]
    pts = _to_ll(p, analysis.crs, 0)
    data = _feature_collection(pts, {"_s": list(range(len(p))),
                                     "_popup": _popups(p, cols, title_prefix="Post")})
    layer = folium.GeoJson(data, name="posts", control=False,
                           marker=folium.CircleMarker(radius=5, fill=True),
                           style_function=lambda f: styles[f["properties"]["_s"]])
    layer.add_child(_BindPopups())
    layer.add_to(group)
    group.add_to(m)
    return True


def incident_frame(incidents: Any) -> gpd.GeoDataFrame | None:
    """The point table of ``Incidents`` (``.gdf``), ``IncidentMetrics`` (``.incidents``) or a
    GeoDataFrame as it is.

    Examples
    --------
    >>> incident_frame(None) is None
    True
    """
    if incidents is None or isinstance(incidents, gpd.GeoDataFrame):
        return incidents
    for attr in ("gdf", "incidents"):
        v = getattr(incidents, attr, None)
        if isinstance(v, gpd.GeoDataFrame):
            return v
    raise InputError("incidents", None, f"cannot use {type(incidents).__name__} as incidents",
                     "pass read_incidents(...) or a point GeoDataFrame with a date column")


def _incident_data(inc: gpd.GeoDataFrame, crs: CRS | None, cluster_max: int) -> dict:
    """Compact arrays for the page: lat, lon, month index, escaped popups (cluster mode)."""
    inc = inc[~(inc.geometry.isna() | inc.geometry.is_empty)]
    pts = _to_ll(inc, crs, 0)
    xy = shapely.get_coordinates(pts)
    mode = "cluster" if len(inc) <= cluster_max else "heat"
    dcol = _find_col(inc, "date", "event_date", "date_start")
    if dcol is not None:
        dates = pd.to_datetime(inc[dcol], errors="coerce")
        if getattr(dates.dt, "tz", None) is not None:
            dates = dates.dt.tz_localize(None)
        # Dates known only to the year (UCDP GED yearly files sit on 1 July) would pile up in
        # July: step through years then, as gapmap.hotspots.monthly_counts does.
        pcol = _find_col(inc, "date_precision")
        freq = "Y" if pcol is not None and (inc[pcol].astype(str) == "year").any() else "M"
        unit = "years" if freq == "Y" else "months"
        period = dates.dt.to_period(freq)
        known = period.dropna()
        # Every period from the first to the last, empty ones included, so the slider steps
        # through time evenly.
        months = (pd.period_range(known.min(), known.max(), freq=freq) if len(known)
                  else pd.PeriodIndex([], freq=freq))
        index = {p: i for i, p in enumerate(months)}
        month = period.map(index).fillna(-2).astype(int).to_numpy()
        month_names = [str(p) for p in months]
    else:
        month, month_names, unit = np.full(len(inc), -2, dtype=int), [], "months"
    decimals = 5 if mode == "cluster" else 4
    data = {"mode": mode, "lat": np.round(xy[:, 1], decimals).tolist(),
            "lon": np.round(xy[:, 0], decimals).tolist(), "month": month.tolist(),
            "months": month_names, "unit": unit, "popup": None}
    if mode == "cluster":
        prefer = ["date", "event_date", "type", "event_type", "sub_event_type", "actor",
                  "actor1", "actor2", "side_a", "side_b", "fatalities", "best", "deaths",
                  "location", "where_coordinates", "precision", "geo_precision", "where_prec",
                  "source", "notes", "note"]
        cols = [c for name in prefer for c in [_find_col(inc, name)] if c is not None]
        cols = list(dict.fromkeys(cols))
        if not cols:
            cols = [c for c in inc.columns if c != inc.geometry.name][:8]
        data["popup"] = _popups(inc, cols, title_prefix="Incident")
    return data


def _hotspot_layer(m, hot: gpd.GeoDataFrame, crs: CRS) -> None:
    """Significant Gi* hexagons: hot in reds, cold in blues (``hot``/``cold`` flags when given,
    else p < 0.05 on ``p_sim``/``p``)."""
    n = len(hot)
    zc = _find_col(hot, "gi_z", "z", "z_score", "zscore")
    pc = _find_col(hot, "p_sim", "gi_p", "p", "p_value")
    z = pd.to_numeric(hot[zc], errors="coerce").to_numpy(float) if zc else np.zeros(n)
    p = pd.to_numeric(hot[pc], errors="coerce").to_numpy(float) if pc else np.ones(n)
    if "hot" in hot.columns and "cold" in hot.columns:
        is_hot = hot["hot"].fillna(False).to_numpy(bool)
        is_cold = hot["cold"].fillna(False).to_numpy(bool)
    else:
        is_hot, is_cold = (p < 0.05) & (z > 0), (p < 0.05) & (z < 0)
    strong = np.nan_to_num(p, nan=1.0) < 0.01
    keep = is_hot | is_cold
    sub = hot.loc[keep]
    if len(sub) == 0:
        log.info("no significant hot or cold spots to draw")
        return
    fill = np.where(is_hot, np.where(strong, "#b2182b", "#ef8a62"),
                    np.where(strong, "#5e3c99", "#b2abd2"))[keep]
    styles = [{"color": c, "weight": 0.5, "fillColor": c, "fillOpacity": 0.55} for c in fill]
    cols = [c for c in sub.columns if c != sub.geometry.name][:8]
    _geojson_layer(m, sub, crs, "Hot spots (Gi*)", style=styles,
                   popups=_popups(sub, cols, title_prefix="Hexagon"), densify_m=0)


def _sites_frame(placement: Any) -> gpd.GeoDataFrame | None:
    if placement is None:
        return None
    if isinstance(placement, gpd.GeoDataFrame):
        return placement
    for attr in ("sites", "chosen", "posts", "selected"):
        v = getattr(placement, attr, None)
        if isinstance(v, gpd.GeoDataFrame):
            return v
    raise InputError("placement", None, f"cannot draw {type(placement).__name__}",
                     "pass a Placement or a GeoDataFrame of sites")


# --------------------------------------------------------------------------------------------
# legend and headline panel


def _swatch(kind: str, color: str, label: str, extra: str = "") -> str:
    cls = {"fill": "gm-sw", "line": "gm-line", "dot": "gm-dot"}[kind]
    if kind == "line":
        sty = f"border-top-color:{color}"
    else:
        sty = f"background:{color}"
    return (f'<div class="gm-row"><span class="{cls}" style="{sty}"></span>'
            f"<span>{html.escape(label)}{extra}</span></div>")


def _headline_html(analysis, title: str | None) -> str:
    s = analysis.summary or {}
    def num(key: str, digits: int = 1) -> str:
        v = s.get(key)
        try:
            f = float(v)
        except (TypeError, ValueError):
            return "—"
        return f"{f:,.{digits}f}" if math.isfinite(f) else "—"
    share = s.get("unguarded_share")
    share_txt = (f"{100 * float(share):.1f}%" if share is not None and np.isfinite(float(share))
                 else "—")
    name_a, name_b = s.get("side_a", analysis.side_a.name), s.get("side_b", analysis.side_b.name)
    parts = []
    if title:
        parts.append(f"<h1>{html.escape(title)}</h1>")
    parts.append(f'<div class="gm-sub">{_esc(name_a)} – {_esc(name_b)}</div>')
    parts.append(f'<div><span class="gm-big">{num("unguarded_length_km")} km</span> unguarded '
                 f'({share_txt} of {num("seam_length_km")} km of seam)</div>')
    rows = [("Corridors", f'{s.get("corridors", 0)} (+{s.get("minor_corridors", 0)} short)'),
            ("Longest corridor", f'{num("longest_corridor_km")} km'),
            ("Mean width", f'{num("width_mean_km")} km'),
            ("Gap area", f'{num("gap_area_km2", 0)} km²')]
    if "exploitation_ratio" in s and s.get("exploitation_ratio") is not None:
        rows.append(("Exploitation ratio",
                     f'{num("exploitation_ratio", 3)} (95% CI {num("exploitation_ratio_low", 3)}'
                     f'–{num("exploitation_ratio_high", 3)})'))
    if "incidents_total" in s:
        rows.append(("Incidents", f'{s.get("incidents_total")} ({s.get("incidents_in_gap", "—")} '
                                  "in the gap)"))
    parts.append(_table_html(rows))
    return '<div class="gm-head-inner">' + "".join(parts) + "</div>"


# --------------------------------------------------------------------------------------------
# public API


def make_map(analysis, *, incidents: gpd.GeoDataFrame | None = None, coverage: Any = None,
             hillshade: Any = None, routes: gpd.GeoDataFrame | None = None,
             hotspots: gpd.GeoDataFrame | None = None, placement: Any = None,
             title: str | None = None, basemap: str = "none", offline: bool = True,
             m: folium.Map | None = None, cluster_max: int = CLUSTER_MAX) -> folium.Map:
    """Interactive map of an analysis, every layer toggleable, with legend and headline panel.

    Parameters
    ----------
    analysis
        A :class:`gapmap.Analysis` (zones, seam, corridors, gap, posts, summary, crs).
    incidents
        Incident points (any CRS) with a ``date`` column; up to ``cluster_max`` are drawn as
        clustered markers with popups, more as a heat map; a slider filters by month.
    coverage
        Visibility coverage raster (GeoTIFF path, open rasterio dataset, or
        ``(array, transform, crs)``): cells seen by at least one post, darker where more see.
    hillshade
        Hillshade raster (same forms), drawn as a grey image under the vector layers.
    routes
        Walking routes (lines, any CRS).
    hotspots
        Hot-spot hexagons (:func:`gapmap.hotspots.gi_star_hexes`): ``hot``/``cold`` flags, or a
        z-score (``gi_z``) and p-value (``p_sim``); hot in reds, cold in purples.
    placement
        New-post sites: a ``Placement`` (its ``sites``) or a GeoDataFrame of points.
    title
        Map title (also the page title).
    basemap
        ``"none"`` (default) or ``"osm"``; web tiles are only loaded when ``offline=False``.
    offline
        Keep the page free of network requests (default). Offline wins over ``basemap``.
    m
        Add the layers to this map instead of a new one.
    cluster_max
        Most incidents drawn as individual markers.

    Returns
    -------
    folium.Map
        Save it with :func:`save_map` (one self-contained HTML file).

    Examples
    --------
    >>> m = make_map(result, incidents=events, title="Disputed territories")  # doctest: +SKIP
    >>> save_map(m, "out/map.html")  # doctest: +SKIP
    """
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

    legend: list[str] = []
    notes: list[str] = []

    zone_notes = illustrative_notes(analysis.zones)
    tag_z = " <span class=\"gm-note\">(illustrative)</span>" if _is_illustrative(zone_notes) else ""
    notes += zone_notes
    if hillshade is not None:
        hn = _add_raster(m, hillshade, "hillshade", "Hillshade", show=True)
        tag = " <span class=\"gm-note\">(synthetic)</span>" if hn and re.search(
            r"synthetic", hn, re.I) else ""
        if hn and hn not in notes:
            notes.append(hn)
        legend.append(_swatch("fill", "linear-gradient(90deg,#333,#eee)", "Hillshade", tag))
    if coverage is not None:
        cn = _add_raster(m, coverage, "coverage", "Visible from posts", show=True)
        if cn and cn not in notes:
            notes.append(cn)
        legend.append(_swatch("fill", "rgba(26,152,80,0.6)", "Visible from posts"))

    colors = force_colors(analysis.zones)
    _zones_layer(m, analysis, colors)
    side_names = {"a": analysis.side_a.name, "b": analysis.side_b.name}
    zone_rows = []
    for force, col in colors.items():
        sides = analysis.zones.loc[analysis.zones["force"].astype(str) == force, "side"]
        sname = side_names.get(sides.iloc[0], "neither side") if len(sides) else ""
        zone_rows.append(_swatch("fill", col, f"{force} ({sname})"))
    if zone_rows:
        legend.append(f"<h2>Zones{tag_z}</h2>" + "".join(zone_rows))

    gap = analysis.gap
    if gap is not None and len(gap) and not gap.geometry.iloc[0].is_empty:
        _geojson_layer(m, gap, crs, "Gap region",
                       style={"color": "#7f3b08", "weight": 0.8, "dashArray": "4 3",
                              "fillColor": "#fdb863", "fillOpacity": 0.25},
                       popups=[_table_html([("Area (km²)", gap["area_km2"].iloc[0])],
                                           "Gap region")], densify_m=1000.0)
    legend.append("<h2>Analysis</h2>")
    legend.append(_swatch("fill", "rgba(253,184,99,0.5)", "Gap region"))
    if analysis.seam is not None and len(analysis.seam):
        sc = [c for c in analysis.seam.columns if c != analysis.seam.geometry.name
              and c not in _HIDDEN]
        _geojson_layer(m, analysis.seam, crs, "Seam (median line)",
                       style={"color": "#252525", "weight": 1.5, "dashArray": "6 4",
                              "opacity": 0.9},
                       popups=_popups(analysis.seam, sc, title_prefix="Seam"), densify_m=250.0)
        legend.append(_swatch("line", "#252525", "Seam (median line)"))
    rng = _corridor_layer(m, analysis)
    if rng is not None:
        stops = _hex_colors(np.linspace(0, 1, 6), _CORRIDOR_CMAP, 0, 1)
        legend.append(
            '<div class="gm-row"><span>Unguarded corridor length</span></div>'
            f'<div class="gm-ramp" style="background:linear-gradient(90deg,{",".join(stops)})">'
            f'</div><div class="gm-row" style="justify-content:space-between;width:142px">'
            f"<span>{_esc(round(rng[0], 1))} km</span><span>{_esc(round(rng[1], 1))} km</span></div>")
    if _posts_layer(m, analysis, colors):
        legend.append(_swatch("dot", "#fee08b", "Posts (filled by force), ranges"))

    if routes is not None and len(routes):
        rcols = [c for c in routes.columns if c != routes.geometry.name][:8]
        _geojson_layer(m, routes, crs, "Walking routes",
                       style={"color": "#542788", "weight": 2.5, "dashArray": "2 4"},
                       popups=_popups(routes, rcols, title_prefix="Route"), densify_m=0)
        legend.append(_swatch("line", "#542788", "Walking routes"))
        notes += [n for n in illustrative_notes(routes) if n not in notes]
    if hotspots is not None and len(hotspots):
        _hotspot_layer(m, hotspots, crs)
        legend.append("<h2>Hot spots (Gi*)</h2>"
                      + _swatch("fill", "#b2182b", "hot, p < 0.01")
                      + _swatch("fill", "#ef8a62", "hot, significant")
                      + _swatch("fill", "#5e3c99", "cold, p < 0.01")
                      + _swatch("fill", "#b2abd2", "cold, significant"))
    sites = _sites_frame(placement)
    if sites is not None and len(sites):
        scols = [c for c in sites.columns if c != sites.geometry.name][:8]
        group = folium.FeatureGroup(name="Proposed new posts", overlay=True, control=True)
        if "range_km" in sites.columns:
            discs = gpd.GeoDataFrame(geometry=shapely.buffer(
                sites.to_crs(crs).geometry.values if sites.crs else sites.geometry.values,
                sites["range_km"].to_numpy(float) * 1000, quad_segs=16), crs=crs)
            folium.GeoJson(_feature_collection(_to_ll(discs, crs, 2000.0), {"_s": [0] * len(discs)}),
                           name="new ranges", control=False, interactive=False,
                           style_function=lambda f: {"color": "#00429d", "weight": 1.5,
                                                     "dashArray": "5 4", "fillOpacity": 0.05}
                           ).add_to(group)
        data = _feature_collection(_to_ll(sites, crs, 0), {
            "_s": [0] * len(sites), "_popup": _popups(sites, scols, title_prefix="New post")})
        lay = folium.GeoJson(data, name="sites", control=False,
                             marker=folium.CircleMarker(radius=7, fill=True),
                             style_function=lambda f: {"color": "#fff", "weight": 2,
                                                       "fillColor": "#00429d", "fillOpacity": 1})
        lay.add_child(_BindPopups())
        closed = getattr(placement, "closed", None)
        if isinstance(closed, gpd.GeoDataFrame) and len(closed):
            ccols = [c for c in closed.columns if c != closed.geometry.name][:6]
            cl = folium.GeoJson(
                _feature_collection(_to_ll(closed, crs, 250.0), {
                    "_s": [0] * len(closed),
                    "_popup": _popups(closed, ccols, title_prefix="Closed by new post")}),
                name="closed", control=False,
                style_function=lambda f: {"color": "#00429d", "weight": 7, "opacity": 0.45})
            cl.add_child(_BindPopups())
            cl.add_to(group)
        lay.add_to(group)
        group.add_to(m)
        label = f"Proposed new posts ({len(sites)})"
        before = getattr(placement, "unguarded_before_km", None)
        after = getattr(placement, "unguarded_after_km", None)
        if before is not None and after is not None:
            label += f": unguarded {float(before):,.1f} → {float(after):,.1f} km"
        legend.append(_swatch("dot", "#00429d", label))
    incidents = incident_frame(incidents)
    if incidents is not None and len(incidents):
        data = _incident_data(incidents, crs, cluster_max)
        _Incidents(data, name="Incidents").add_to(m)
        how = "" if data["mode"] == "cluster" else " (density: too many for markers)"
        legend.append(_swatch("dot", "#dd3497", f"Incidents, {len(data['lat']):,}{how}"))
        notes += [n for n in illustrative_notes(incidents) if n not in notes]

    if notes:
        shown = [n if len(n) <= 200 else n[:199] + "…" for n in notes[:4]]
        legend.append("<h2>Notes</h2>" + "".join(
            f'<div class="gm-note">{html.escape(n)}</div>' for n in shown))
    m.add_child(_Panel(_headline_html(analysis, title), "topleft", "gm-panel gm-head"))
    m.add_child(_Panel("".join(legend), "bottomright", "gm-panel gm-legend"))
    folium.LayerControl(position="topright", collapsed=False).add_to(m)
    return m


def scenario_layers(scenario, analysis, *, hillshade: bool = True, coverage: bool = False,
                    hotspots: bool = False, hex_km: float = 10.0) -> dict[str, Any]:
    """The extra layers a scenario names, ready for :func:`make_map`, ``plot_map`` and
    ``write_report``: its incidents (read as the analysis read them), a hillshade of its DEM,
    and optionally visibility coverage of its posts and Gi* hot spots of its incidents.

    Parameters
    ----------
    scenario
        A :class:`gapmap.scenario.Scenario`.
    analysis
        The analysis of that scenario (gives the CRS and the study area).
    hillshade
        Shade the scenario's DEM (when it has one).
    coverage
        Compute which cells the posts see over the DEM (needs a DEM and posts).
    hotspots
        Compute Gi* hot spots of the incidents on ``hex_km`` hexagons.

    Returns
    -------
    dict
        Keys among ``incidents``, ``hillshade``, ``coverage``, ``hotspots``.

    Examples
    --------
    >>> layers = scenario_layers(sc, result)  # doctest: +SKIP
    >>> save_map(make_map(result, **layers), "out/map.html")  # doctest: +SKIP
    """
    out: dict[str, Any] = {}
    if scenario.incidents is not None:
        out["incidents"] = scenario.read_incidents()
    dem = None
    if scenario.dem is not None and (hillshade or coverage):
        from .terrain import read_dem

        area = analysis.study_area if not analysis.study_area.is_empty else shapely.union_all(
            analysis.zones.geometry.values)
        w, so, e, n = area.bounds
        margin = 0.05 * max(e - w, n - so)
        # The overlay is drawn at most ~2000 px wide, so a finer grid would only cost time.
        res = max(e - w, n - so) / 2000.0
        dem = read_dem(scenario.dem, bounds=(w - margin, so - margin, e + margin, n + margin),
                       bounds_crs=analysis.crs, dst_crs=analysis.crs,
                       resolution_m=res if coverage is False else None)
        if hillshade:
            out["hillshade"] = dem
    if coverage and dem is not None and analysis.posts is not None and len(analysis.posts):
        from .viewshed import coverage as visibility_coverage

        st = analysis.settings
        out["coverage"] = visibility_coverage(dem, analysis.posts, range_km=st.post_range_km,
                                              height_m=st.post_height_m,
                                              target_height_m=st.target_height_m)
    elif coverage:
        log.warning("coverage needs a DEM and posts; not drawn")
    if hotspots and "incidents" in out and len(out["incidents"]):
        from .hotspots import gi_star_hexes

        out["hotspots"] = gi_star_hexes(out["incidents"], analysis.study_area, hex_km=hex_km,
                                        crs=analysis.crs)
    return out


_SCRIPT_LINK = re.compile(r'<script src="([^"]+)"></script>')
_CSS_LINK = re.compile(r'<link rel="stylesheet" href="([^"]+)"\s*/?>')


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


def _csp(offline: bool) -> str:
    """Content-Security-Policy: inline code and data: images only; tiles only when online."""
    img = "data: blob:" + ("" if offline else " https://*.tile.openstreetmap.org")
    return ("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
            f"img-src {img}; font-src data:; connect-src 'none'; form-action 'none'; "
            "base-uri 'none'\">")


def render_html(m: folium.Map, *, offline: bool | None = None) -> str:
    """The map as one self-contained HTML string (scripts, styles and images inlined).

    Raises
    ------
    GapmapError
        If the map links a script or style gapmap does not ship and ``offline`` is on.
    """
    offline = getattr(m, "_gapmap_offline", True) if offline is None else offline
    page = m.get_root().render()
    seen: set[str] = set()
    missing: list[str] = []

    def js(match: re.Match) -> str:
        name = _asset_for(match.group(1))
        if name is None:
            missing.append(match.group(1))
            return match.group(0)
        if name in seen:
            return ""
        seen.add(name)
        return _inline_js(_asset_text(name))

    def css(match: re.Match) -> str:
        name = _asset_for(match.group(1))
        if name is None:
            missing.append(match.group(1))
            return match.group(0)
        if name in seen:
            return ""
        seen.add(name)
        return _inline_css(name, _asset_text(name))

    page = _SCRIPT_LINK.sub(js, page)
    page = _CSS_LINK.sub(css, page)
    if missing:
        if offline:
            raise GapmapError(f"the map links resources gapmap does not ship: {', '.join(missing)}"
                              " — remove the plugins that need them, or save with offline=False")
        log.warning("map links external resources: %s", ", ".join(missing))
    else:
        page = page.replace("<head>", "<head>\n    " + _csp(offline), 1)
    return page


def save_map(m: folium.Map, path: str | os.PathLike, *, offline: bool | None = None) -> Path:
    """Write the map as ONE self-contained HTML file, atomically.

    Parameters
    ----------
    m
        A map from :func:`make_map` (or any folium map using only Leaflet, MarkerCluster and
        Leaflet.heat).
    path
        Output file (``.html``).
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
    page = render_html(m, offline=offline)
    target = Path(path)
    with atomic_path(target) as tmp:
        tmp.write_text(page, encoding="utf-8")
    log.info("wrote %s (%.1f MB)", target, target.stat().st_size / 1e6)
    return target
