"""What every drawing of an analysis shares: colours, labels, the number formatter, the notes
that mark illustrative data, CRS labels, and the drawable views of results.

The interactive map (:mod:`gapmap.maps`), the static figure (:mod:`gapmap.figures`) and the
report (:mod:`gapmap.report`) all take their colours, column labels and number formatting
from here, so a figure reads the same on the map, in print and in the report. This module
imports neither folium nor matplotlib.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from .errors import InputError

__all__ = ["PALETTE_A", "PALETTE_B", "PALETTE_OTHER", "CORRIDOR_CMAP", "HOTSPOT_CLASSES",
           "LABELS", "fmt", "cell", "label", "force_colors", "side_label", "illustrative_notes",
           "is_illustrative", "is_synthetic", "crs_label", "incident_frame", "sites_frame",
           "MISSING", "check_html_path", "find_column", "WATER_FILL", "WATER_LINE",
           "AREA_NAME_FIELDS", "named_areas", "EXPOSURE_CLASSES", "exposure_frame",
           "exposure_classes", "exposure_km"]

# Side A in blues/greens, side B in reds/oranges, forces of neither side in greys: an analyst
# reads the two camps at a glance, and forces within a camp stay distinguishable.
PALETTE_A = ("#2166ac", "#4393c3", "#1b7837", "#5aae61", "#053061")
PALETTE_B = ("#b2182b", "#d6604d", "#e08214", "#8c510a", "#67001f")
PALETTE_OTHER = ("#737373", "#969696", "#525252", "#bdbdbd")
#: Matplotlib colour map of corridor length (short: yellow, long: dark red).
CORRIDOR_CMAP = "YlOrRd"
#: Gi* classes as (key, fill colour, legend label), strongest first.
HOTSPOT_CLASSES = (
    ("hot_strong", "#b2182b", "hot, p < 0.01"),
    ("hot", "#ef8a62", "hot, significant"),
    ("cold_strong", "#5e3c99", "cold, p < 0.01"),
    ("cold", "#b2abd2", "cold, significant"),
)
#: Rivers (line) and lakes (fill, outlined with the line colour).
WATER_LINE = "#3a7dbf"
WATER_FILL = "#b9d7ef"
#: Name fields of admin areas, coarsest level first: governorates/provinces label a map
#: better than districts (5 labels on the sample rather than 17).
AREA_NAME_FIELDS = ("ADM1_EN", "ADM1_NAME", "NAME_1", "admin1", "adm_1", "governorate",
                    "province", "state", "region", "ADM2_EN", "ADM2_NAME", "NAME_2", "admin2",
                    "adm_2", "district", "name", "NAME", "Name")
#: Road-exposure classes: (key, colour, line weight on the web map, legend text). The exposed
#: class is the one strong colour, a bright cyan no other layer uses (zones are blue and red,
#: corridors yellow to dark red, routes purple, incidents magenta): in red it read as one more
#: corridor on the sample's figure. The others are muted (reachable but seen a pale lilac, not
#: the corridors' orange) so the exposed stretches stand out.
EXPOSURE_CLASSES = (
    ("exposed", "#00d2ff", 6, "Exposed: reachable on foot, unseen"),
    ("reach_seen", "#c2a5cf", 4, "Reachable, but seen by a post"),
    ("seen", "#2c7bb6", 2.5, "Seen, not reachable in time"),
    ("other", "#969696", 2, "Neither reachable nor seen"),
)
#: Shown for a missing or non-finite value.
MISSING = "—"

LABELS = {
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
    "gi_z": "Gi* z", "p_value": "p", "p_sim": "p (permutation)", "hot": "Hot spot", "cold": "Cold spot",
}
# Columns whose values are measures (decimals kept even when whole): by their unit suffix.
_MEASURE_SUFFIXES = ("_km", "_km2", "_deg", "_m", "_hours", "_100km", "_z", "_share")


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def fmt(value: Any, digits: int | None = None, *, sig: int | None = None) -> str:
    """THE number formatter of every drawing: a readable string for any value.

    Missing and non-finite values print as a dash, dates as ``YYYY-MM-DD``, booleans as
    yes/no, integers with thousands separators. Floats get ``digits`` decimals, or ``sig``
    significant figures, or by default 2 decimals below 100 and 1 above.

    Examples
    --------
    >>> fmt(84.03, 1), fmt(20.0), fmt(1234.56), fmt(12345), fmt(float("nan"))
    ('84.0', '20.00', '1,234.6', '12,345', '—')
    >>> fmt(1.23456, sig=3), fmt(17.0, 0), fmt(True), fmt("text")
    ('1.23', '17', 'yes', 'text')
    """
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        ts = pd.Timestamp(value)
        return MISSING if pd.isna(ts) else ts.strftime("%Y-%m-%d")
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            return MISSING
        if sig is not None:
            return f"{v:.{sig}g}"
        d = digits if digits is not None else (2 if abs(v) < 100 else 1)
        return f"{v:,.{d}f}"
    if _missing(value):
        return MISSING
    return str(value)


def cell(value: Any, column: str | None = None) -> str:
    """A table cell: :func:`fmt`, with counts stored as floats (NaN-able) printed as integers
    unless the column is a measure (``_km``, ``_m``, ``_deg``, … keep their decimals).

    Examples
    --------
    >>> cell(3.0, "fatalities"), cell(20.0, "width_mean_km"), cell(2.5, "fatalities")
    ('3', '20.00', '2.50')
    """
    measure = column is not None and str(column).endswith(_MEASURE_SUFFIXES)
    if (not measure and isinstance(value, (float, np.floating)) and math.isfinite(float(value))
            and float(value).is_integer()):
        return fmt(int(value))
    return fmt(value)


def label(column: str) -> str:
    """Readable label of a column.

    Examples
    --------
    >>> label("width_mean_km"), label("my_field")
    ('Width mean (km)', 'my field')
    """
    return LABELS.get(column, str(column).replace("_", " "))


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
    for tag, palette in (("a", PALETTE_A), ("b", PALETTE_B), (None, PALETTE_OTHER)):
        sel = pairs[pairs["side"] == tag] if tag else pairs[~pairs["side"].isin(["a", "b"])]
        for i, f in enumerate(sorted(sel["force"])):
            out[f] = palette[i % len(palette)]
    return out


def side_label(analysis, force: str) -> str:
    """``"<force> (<side name>)"`` for the legend of zones.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> import pandas as pd
    >>> a = NS(zones=pd.DataFrame({"force": ["isf"], "side": ["b"]}), side_a=NS(name="krg"),
    ...        side_b=NS(name="federal"))
    >>> side_label(a, "isf")
    'isf (federal)'
    """
    names = {"a": analysis.side_a.name, "b": analysis.side_b.name}
    zones = analysis.zones
    sides = zones.loc[zones["force"].astype(str) == force, "side"]
    sname = names.get(sides.iloc[0], "neither side") if len(sides) else ""
    return f"{force} ({sname})"


def find_column(df: pd.DataFrame, *names: str) -> str | None:
    """The first of ``names`` that is a column of ``df``, matched case-insensitively.

    Examples
    --------
    >>> find_column(pd.DataFrame(columns=["Event_Date", "x"]), "date", "event_date")
    'Event_Date'
    """
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
        col = find_column(df, "note")
        if col is None:
            continue
        for v in df[col].dropna().astype(str).str.strip().unique():
            if v and v not in out:
                out.append(v)
    return out


def is_illustrative(notes: Sequence[str]) -> bool:
    """Whether notes say the data are illustrative, synthetic, fictional or hypothetical.

    Examples
    --------
    >>> is_illustrative(["illustrative layout"]), is_illustrative(["ACLED export"])
    (True, False)
    """
    return any(re.search(r"illustrat|synthetic|fictional|hypothetical", str(n), re.I)
               for n in notes)


def is_synthetic(source: Any) -> bool:
    """Whether a source (file name, note) says it is synthetic.

    Examples
    --------
    >>> is_synthetic("geodata/dem_synthetic.tif"), is_synthetic(None)
    (True, False)
    """
    return bool(source) and re.search(r"synthetic", str(source), re.I) is not None


def crs_label(crs: Any) -> str:
    """A short readable name of a CRS (for a figure's footer or the report).

    Examples
    --------
    >>> crs_label(32638)
    'EPSG:32638 (WGS 84 / UTM zone 38N)'
    >>> crs_label("+proj=aeqd +lat_0=35.5 +lon_0=44.25 +datum=WGS84")
    'Azimuthal Equidistant, centred 35.50°, 44.25°'
    """
    crs = CRS.from_user_input(crs)
    epsg = crs.to_epsg()
    if epsg:
        return f"EPSG:{epsg} ({crs.name})"
    op = crs.coordinate_operation
    params = {p.name: p.value for p in (op.params if op else [])}
    lat = params.get("Latitude of natural origin")
    lon = params.get("Longitude of natural origin")
    method = op.method_name if op else crs.name
    if lat is not None and lon is not None:
        return f"{method}, centred {lat:.2f}°, {lon:.2f}°"
    return method


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


def sites_frame(placement: Any) -> gpd.GeoDataFrame | None:
    """The new-post sites of a ``Placement`` (``.sites``), or a GeoDataFrame as it is.

    Examples
    --------
    >>> sites_frame(None) is None
    True
    """
    if placement is None or isinstance(placement, gpd.GeoDataFrame):
        return placement
    for attr in ("sites", "chosen", "posts", "selected"):
        v = getattr(placement, attr, None)
        if isinstance(v, gpd.GeoDataFrame):
            return v
    raise InputError("placement", None, f"cannot draw {type(placement).__name__}",
                     "pass a Placement or a GeoDataFrame of sites")


def check_html_path(path) -> Path:
    """Refuse an output page (map, report) whose name does not end in ``.html`` or ``.htm``.

    Examples
    --------
    >>> check_html_path("out/map.html").name
    'map.html'
    >>> check_html_path("out/map.docx")
    Traceback (most recent call last):
    ...
    gapmap.errors.InputError: out/map.docx: unknown page format .docx — name the output .html
    """
    target = Path(path)
    if target.suffix.lower() not in (".html", ".htm"):
        raise InputError(target, None, f"unknown page format {target.suffix or '(no suffix)'}",
                         "name the output .html")
    return target


def named_areas(areas: gpd.GeoDataFrame | None, field: str | None = None
                ) -> gpd.GeoDataFrame | None:
    """The areas to label on a map: one feature per value of ``field`` (by default the first
    of :data:`AREA_NAME_FIELDS` present), with its value as ``name``; ``None`` without a name
    field.

    Examples
    --------
    >>> import shapely
    >>> a = gpd.GeoDataFrame({"ADM2_EN": ["Kirkuk", "Daquq", "Sinjar"],
    ...                       "ADM1_EN": ["Kirkuk", "Kirkuk", "Ninewa"]}, crs=32638,
    ...                      geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1),
    ...                                shapely.box(5, 5, 6, 6)])
    >>> named_areas(a)["name"].tolist()
    ['Kirkuk', 'Ninewa']
    >>> named_areas(a, "ADM2_EN")["name"].tolist()
    ['Kirkuk', 'Daquq', 'Sinjar']
    """
    if areas is None or not len(areas):
        return None
    col = find_column(areas, field) if field else find_column(areas, *AREA_NAME_FIELDS)
    if col is None:
        return None
    names = areas[col].astype(str).str.strip()
    keep = areas[col].notna() & names.ne("")
    if not keep.any():
        return None
    order = list(pd.unique(names[keep]))
    geoms = [shapely.union_all(areas.geometry[keep & names.eq(n)].values) for n in order]
    return gpd.GeoDataFrame({"name": order}, geometry=geoms, crs=areas.crs)


def exposure_frame(exposure: Any) -> tuple[gpd.GeoDataFrame | None, dict]:
    """The road pieces and summary of an ``Exposure`` (``.pieces``, ``.summary``), or a
    GeoDataFrame of pieces (as :func:`gapmap.exposure.read_exposure` returns) with no summary.

    Examples
    --------
    >>> exposure_frame(None)
    (None, {})
    """
    if exposure is None:
        return None, {}
    if isinstance(exposure, gpd.GeoDataFrame):
        return exposure, {}
    pieces = getattr(exposure, "pieces", None)
    if not isinstance(pieces, gpd.GeoDataFrame):
        raise InputError("exposure", None, f"cannot draw {type(exposure).__name__}",
                         "pass an Exposure (gapmap.exposure) or its pieces GeoDataFrame")
    return pieces, dict(getattr(exposure, "summary", None) or {})


def exposure_classes(pieces: gpd.GeoDataFrame) -> np.ndarray:
    """The :data:`EXPOSURE_CLASSES` key of each road piece.

    Examples
    --------
    >>> f = pd.DataFrame({"reachable": [True, True, False, False],
    ...                   "seen": [False, True, True, False]})
    >>> exposure_classes(f).tolist()
    ['exposed', 'reach_seen', 'seen', 'other']
    """
    missing = [c for c in ("reachable", "seen") if c not in pieces.columns]
    if missing:
        raise InputError(pieces.attrs.get("source", "exposure"), missing[0],
                         "road pieces lack the column", "pass the pieces of gapmap exposure")

    def flag(col: str) -> np.ndarray:
        return pieces[col].fillna(False).astype(bool).to_numpy()

    reach, seen = flag("reachable"), flag("seen")
    exposed = flag("exposed") if "exposed" in pieces.columns else reach & ~seen
    return np.where(exposed, "exposed", np.where(reach, "reach_seen",
                                                  np.where(seen, "seen", "other")))


def exposure_km(exposure: Any) -> dict[str, float]:
    """``road_km``, ``reachable_km``, ``seen_km``, ``exposed_km`` of an exposure result: its
    summary's figures when it has them, else the sums of the pieces' ``length_km``.

    Examples
    --------
    >>> f = gpd.GeoDataFrame({"reachable": [True, True, False], "seen": [False, True, False],
    ...                       "length_km": [2.5, 1.0, 4.0]}, geometry=[None] * 3)
    >>> exposure_km(f)
    {'road_km': 7.5, 'reachable_km': 3.5, 'seen_km': 1.0, 'exposed_km': 2.5}
    """
    pieces, summary = exposure_frame(exposure)
    out: dict[str, float] = {}
    if pieces is not None and "length_km" in pieces.columns:
        km = pd.to_numeric(pieces["length_km"], errors="coerce").fillna(0.0).to_numpy(float)
        cls = exposure_classes(pieces)
        out = {"road_km": float(km.sum()),
               "reachable_km": float(km[np.isin(cls, ("exposed", "reach_seen"))].sum()),
               "seen_km": float(km[np.isin(cls, ("reach_seen", "seen"))].sum()),
               "exposed_km": float(km[cls == "exposed"].sum())}
    for key in ("road_km", "reachable_km", "seen_km", "exposed_km"):
        value = summary.get(key)
        if value is not None and math.isfinite(float(value)):
            out[key] = float(value)
    return out
