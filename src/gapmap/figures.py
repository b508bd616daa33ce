"""Static map of an analysis for print: zones, seam, corridors by length, gap region, posts,
proposed posts by name, road exposure, towns and areas by name, rivers and lakes, and the
sources of the data.

:func:`plot_map` draws in the analysis's metric CRS. The page has a header (title, headline
figures, the note when the data are illustrative or synthetic), the map and a footer (sources
and licences, the terrain's note when it is modelled, the CRS). Inside the map frame: the
legend and the colour bar of corridor length, in the corner where they hide least of the
corridors, the seam and the towns; a scale bar whose length is true on the ground at the
map's centre (the projection's scale factor is taken into account) and a north arrow pointing
to true north (rotated by the meridian convergence) in the corners the legend leaves free.
Proposed-post, town, area and corridor labels are placed so that none overlaps another or the
furniture, nor where it can be helped the exposed road (see :func:`_label_all`).
:func:`save_figure` writes it at print quality (≥ 200 dpi), atomically.
"""

from __future__ import annotations

import logging
import math
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Proj, Transformer

from .errors import InputError
from .io import atomic_path
from .sources import attribution, modelled_terrain
from .style import (CORRIDOR_CMAP, EXPOSURE_CLASSES, PALETTE_OTHER, WATER_FILL, WATER_LINE,
                    crs_label, exposure_classes, exposure_frame, exposure_km, fmt, force_colors,
                    illustrative_notes, incident_frame, is_synthetic, side_label, sites_frame)

__all__ = ["plot_map", "save_figure", "scale_bar_km", "check_size", "figure_format",
           "corridor_norm", "PRINT_DPI", "MAX_PIXELS", "FORMATS"]

log = logging.getLogger(__name__)

#: Resolution of saved figures (print quality).
PRINT_DPI = 200
_NICE = np.array([1, 2, 5])


def _plain(text: str) -> str:
    """Text from data drawn literally: matplotlib would typeset ``$...$`` as mathematics."""
    return str(text).replace("$", r"\$")


def scale_bar_km(width_m: float, scale_factor: float = 1.0) -> float:
    """A round scale-bar length (1, 2, 5 × 10ⁿ km) near a fifth of the map width.

    Parameters
    ----------
    width_m
        Width of the map in projected metres.
    scale_factor
        The projection's point scale factor at the map centre (projected m per ground m).

    Examples
    --------
    >>> scale_bar_km(100_000)
    20.0
    >>> scale_bar_km(7_000)
    1.0
    """
    target = width_m / scale_factor / 5 / 1000.0
    if target <= 0 or not math.isfinite(target):
        return 1.0
    exp = math.floor(math.log10(target))
    cands = _NICE * 10.0 ** exp
    return float(cands[cands <= target].max()) if (cands <= target).any() else float(cands[0])


def _map_factors(crs: CRS, x: float, y: float) -> tuple[float, float]:
    """(scale factor along the meridian, meridian convergence in degrees) at a projected point."""
    lon, lat = Transformer.from_crs(crs, 4326, always_xy=True).transform(x, y)
    try:
        f = Proj(crs).get_factors(lon, lat)
        return float(f.meridional_scale), float(f.meridian_convergence)
    except Exception:  # projections without analytic factors: measure numerically
        t = Transformer.from_crs(4326, crs, always_xy=True)
        x1, y1 = t.transform(lon, lat + 0.01)
        from .crs import GEOD

        ground = GEOD.inv(lon, lat, lon, lat + 0.01)[2]
        k = math.hypot(x1 - x, y1 - y) / ground
        conv = math.degrees(math.atan2(x1 - x, y1 - y))
        return k, conv


def _draw_scale_bar(ax, crs: CRS, length_km: float | None = None, *,
                    corner: str = "left") -> float:
    """Draw a two-part scale bar true to the ground at the map centre, in the lower ``corner``
    ("left" or "right"); returns its km."""
    from matplotlib.patches import Rectangle

    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    k, _ = _map_factors(crs, (x0 + x1) / 2, (y0 + y1) / 2)
    km = length_km or scale_bar_km(x1 - x0, k)
    length = km * 1000.0 * k  # projected metres for km on the ground
    bx = x0 + 0.04 * (x1 - x0) if corner == "left" else x1 - 0.04 * (x1 - x0) - length
    by = y0 + 0.035 * (y1 - y0)
    h = 0.012 * (y1 - y0)
    for i in range(2):  # two alternating halves, as on printed maps
        ax.add_patch(Rectangle(
            (bx + i * length / 2, by), length / 2, h, facecolor="black" if i == 0 else "white",
            edgecolor="black", lw=0.8, zorder=20))
    halo = [_halo()]
    label = f"{km:g} km"
    ax.text(bx, by + 1.8 * h, "0", ha="center", va="bottom", fontsize=7, zorder=20,
            path_effects=halo)
    ax.text(bx + length, by + 1.8 * h, label, ha="center", va="bottom", fontsize=7, zorder=20,
            path_effects=halo)
    return km


def _draw_north_arrow(ax, crs: CRS, *, corner: str = "right") -> float:
    """Draw an arrow to true north in the upper ``corner``; returns the meridian convergence
    used (degrees)."""
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    _, conv = _map_factors(crs, (x0 + x1) / 2, (y0 + y1) / 2)
    # Grid north is up; true north is rotated from it by the meridian convergence. The arrow
    # is laid out in points, so its angle is the same on the page whatever the axes' shape.
    ang = math.radians(-conv)
    cx, cy = (0.95 if corner == "right" else 0.05), 0.90
    length = 26.0
    dx, dy = length * math.sin(ang), length * math.cos(ang)
    ax.annotate("", xy=(cx, cy), xycoords="axes fraction", xytext=(-dx, -dy),
                textcoords="offset points",
                arrowprops=dict(facecolor="black", edgecolor="white", lw=0.5, width=3,
                                headwidth=9, headlength=9), zorder=20)
    ax.annotate("N", xy=(cx, cy), xycoords="axes fraction", xytext=(0.35 * dx, 0.35 * dy + 3),
                textcoords="offset points", ha="center", va="bottom", fontsize=9,
                fontweight="bold", zorder=20, path_effects=[_halo()])
    return conv


def _halo(width: float = 2.2):
    """A white outline that keeps text readable over any layer."""
    from matplotlib import patheffects

    return patheffects.withStroke(linewidth=width, foreground="white")


#: Largest figure drawn, in pixels (an RGBA canvas of 100 Mpx takes 400 MB of memory).
MAX_PIXELS = 100_000_000
#: Figure formats by file suffix.
FORMATS = ("png", "pdf", "svg", "jpg", "jpeg", "tif", "tiff")


def check_size(figsize: tuple[float, float], dpi: float = PRINT_DPI, *,
               source: str = "figure") -> tuple[float, float]:
    """Refuse a figure size that is not a positive finite number of inches, or whose canvas
    at ``dpi`` would exceed :data:`MAX_PIXELS`, before anything is drawn.

    Raises
    ------
    InputError
        Naming the size asked for and its estimated pixels and memory.

    Examples
    --------
    >>> check_size((8, 6))
    (8.0, 6.0)
    >>> check_size((3000, 3000))
    Traceback (most recent call last):
    ...
    gapmap.errors.InputError: figure: figsize: a figure of 600,000 × 600,000 px (360,000 Mpx, about 1.4 TB in memory) at 200 dpi is larger than the 100 Mpx gapmap draws — give a smaller width (--width-in) or --dpi
    """
    try:
        w, h = (float(v) for v in figsize)
    except (TypeError, ValueError) as exc:
        raise InputError(source, "figsize", f"figure size {figsize!r} is not two numbers",
                         "give the width and height in inches, e.g. --width-in 8") from exc
    if not (math.isfinite(w) and math.isfinite(h) and w > 0 and h > 0):
        raise InputError(source, "figsize", f"figure size {w:g} × {h:g} in is not a positive "
                         "finite size", "give a width above 0 inches, e.g. --width-in 8")
    px_w, px_h = w * dpi, h * dpi
    if px_w * px_h > MAX_PIXELS:
        tb = px_w * px_h * 4 / 1e12
        mem = f"{tb:.1f} TB" if tb >= 1 else f"{tb * 1000:.1f} GB"
        raise InputError(source, "figsize",
                         f"a figure of {px_w:,.0f} × {px_h:,.0f} px ({px_w * px_h / 1e6:,.0f} "
                         f"Mpx, about {mem} in memory) at {dpi:g} dpi is larger than the "
                         f"{MAX_PIXELS / 1e6:,.0f} Mpx gapmap draws",
                         "give a smaller width (--width-in) or --dpi")
    return w, h


def figure_format(path: str | os.PathLike) -> str:
    """The format of a figure file from its suffix; an unknown or missing suffix refused.

    Examples
    --------
    >>> figure_format("out/map.PDF")
    'pdf'
    """
    target = Path(path)
    fmt = target.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise InputError(target, None, f"unknown figure format {target.suffix or '(no suffix)'}",
                         "name the output .png, .pdf or .svg")
    return fmt


# --------------------------------------------------------------------------- page layout

#: Header and footer type sizes (points) and the page margin (inches).
_TITLE_PT, _SUB_PT, _NOTE_PT, _FOOT_PT = 12.0, 8.0, 7.5, 6.0
_MARGIN_IN = 0.12
#: Average glyph width as a share of the type size, measured on DejaVu Sans over mixed text
#: (0.55 for lower case, 0.62 with capitals and digits): wrapping at 0.6 never overflows.
_GLYPH = 0.6


def _wrap(text: str, width_in: float, size_pt: float) -> list[str]:
    """Lines of ``text`` that fit ``width_in`` inches at ``size_pt``."""
    chars = max(int(width_in * 72 / (size_pt * _GLYPH)), 20)
    return textwrap.wrap(text, width=chars) or [""]


def _line_in(size_pt: float) -> float:
    return size_pt * 1.35 / 72


def _header_lines(analysis, title: str | None, notes: list[str], width_in: float) -> dict:
    s = analysis.summary or {}
    if title is None:
        title = f"{analysis.side_a.name} – {analysis.side_b.name}: unguarded corridors"
    share = s.get("unguarded_share")
    sub = (f"Unguarded {fmt(s.get('unguarded_length_km', float('nan')), 1)} km"
           + (f" ({fmt(100 * share, 1)}% of the seam)" if share is not None
              and np.isfinite(share) else "")
           + f"; longest corridor {fmt(s.get('longest_corridor_km', float('nan')), 1)} km")
    if s.get("exploitation_ratio") is not None:
        sub += f"; exploitation ratio {fmt(s['exploitation_ratio'], sig=3)}"
    avail = width_in - 2 * _MARGIN_IN
    note = " · ".join(notes)[:400]
    return {"title": _wrap(title, avail, _TITLE_PT)[:2], "sub": _wrap(sub, avail, _SUB_PT),
            "note": _wrap(note, avail, _NOTE_PT)[:3] if note else []}


def _footer_lines(sources, crs: CRS, width_in: float) -> list[str]:
    avail = width_in - 2 * _MARGIN_IN
    lines: list[str] = []
    credits = attribution(sources)
    if credits:
        lines += _wrap(f"Sources: {credits}", avail, _FOOT_PT)
    terrain = modelled_terrain(sources)
    if terrain:
        lines += _wrap(f"Terrain: {terrain}", avail, _FOOT_PT)
    lines += _wrap(f"CRS: {crs_label(crs)} · made with gapmap", avail, _FOOT_PT)
    return lines


def _block_in(header: dict, footer: list[str]) -> tuple[float, float]:
    """Heights (inches) of the header and the footer."""
    top = (len(header["title"]) * _line_in(_TITLE_PT) + len(header["sub"]) * _line_in(_SUB_PT)
           + len(header["note"]) * _line_in(_NOTE_PT) + 0.08)
    return top, len(footer) * _line_in(_FOOT_PT) + 0.04


def _page(frame: shapely.Geometry, figsize, width_in: float, header: dict,
          footer: list[str]):
    """A figure with the map axes between the header and the footer. Without ``figsize`` the
    page is as tall as the frame's shape needs at ``width_in``."""
    from matplotlib.figure import Figure

    top, bottom = _block_in(header, footer)
    map_w = width_in - 2 * _MARGIN_IN
    if figsize is None:
        x0, y0, x1, y1 = frame.bounds
        ratio = float(np.clip((y1 - y0) / (x1 - x0) if x1 > x0 else 1.0, 0.55, 1.5))
        size = check_size((width_in, map_w * ratio + top + bottom + 2 * _MARGIN_IN))
    else:
        size = check_size(figsize)
    w, h = size
    map_w = w - 2 * _MARGIN_IN
    map_h = max(h - top - bottom - 2 * _MARGIN_IN, 0.3 * h)
    fig = Figure(figsize=size)
    ax = fig.add_axes([_MARGIN_IN / w, (_MARGIN_IN + bottom) / h, map_w / w, map_h / h])
    return fig, ax


def _draw_header(fig, ax, header: dict) -> None:
    """Title, headline figures and notes above the map, left-aligned with it."""
    w, h = fig.get_size_inches()
    x = _MARGIN_IN / w
    y = 1 - _MARGIN_IN / h
    for key, size, style in (("title", _TITLE_PT, dict(fontweight="bold")),
                             ("sub", _SUB_PT, dict(color="#333")),
                             ("note", _NOTE_PT, dict(style="italic", color="#8a4b00"))):
        for line in header[key]:
            fig.text(x, y, _plain(line), fontsize=size, va="top", ha="left", **style)
            y -= _line_in(size) / h


def _draw_footer(fig, footer: list[str]) -> None:
    w, h = fig.get_size_inches()
    y = _MARGIN_IN / h + (len(footer) - 1) * _line_in(_FOOT_PT) / h
    for line in footer:
        fig.text(_MARGIN_IN / w, y, _plain(line), fontsize=_FOOT_PT, color="#555", ha="left",
                 va="bottom")
        y -= _line_in(_FOOT_PT) / h


def _set_window(ax, frame: shapely.Geometry) -> tuple[float, float, float, float]:
    """Limits that show the frame with a small margin and fill the axes at equal scale."""
    x0, y0, x1, y1 = frame.bounds
    pad = 0.04 * max(x1 - x0, y1 - y0, 1.0)
    x0, y0, x1, y1 = x0 - pad, y0 - pad, x1 + pad, y1 + pad
    bw, bh = ax.get_position().width * ax.figure.get_figwidth(), \
        ax.get_position().height * ax.figure.get_figheight()
    want = bh / bw if bw > 0 else 1.0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if (y1 - y0) / (x1 - x0) < want:
        half = (x1 - x0) * want / 2
        y0, y1 = cy - half, cy + half
    else:
        half = (y1 - y0) / want / 2
        x0, x1 = cx - half, cx + half
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")
    for sp in ax.spines.values():
        sp.set_linewidth(0.6)
    return x0, y0, x1, y1


# --------------------------------------------------------------------------- layers

def _draw_study_area(ax, analysis) -> list:
    from matplotlib.lines import Line2D

    if analysis.study_area.is_empty:
        return []
    gpd.GeoSeries([analysis.study_area], crs=analysis.crs).plot(
        ax=ax, facecolor="none", edgecolor="#555", lw=0.9, ls=":", zorder=1)
    return [Line2D([], [], color="#555", lw=0.9, ls=":", label="Study area")]


def _draw_areas(ax, areas, crs) -> gpd.GeoDataFrame | None:
    """Boundaries of the named areas (governorates, districts); returns them in ``crs``."""
    if areas is None or not len(areas):
        return None
    a = areas.to_crs(crs) if areas.crs is not None else areas.set_crs(crs)
    a.boundary.plot(ax=ax, color="#777", lw=0.5, ls="-.", zorder=1)
    return a


def _draw_water(ax, water, crs) -> list:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = []
    lakes = getattr(water, "lakes", None)
    rivers = getattr(water, "rivers", None)
    if lakes is not None and len(lakes):
        lakes.to_crs(crs).plot(ax=ax, facecolor=WATER_FILL, edgecolor=WATER_LINE, lw=0.5,
                               zorder=2)
        handles.append(Patch(facecolor=WATER_FILL, edgecolor=WATER_LINE, label="Lakes"))
    if rivers is not None and len(rivers):
        rivers.to_crs(crs).plot(ax=ax, color=WATER_LINE, lw=1.0, zorder=2)
        handles.append(Line2D([], [], color=WATER_LINE, lw=1.0, label="Rivers"))
    return handles


def _draw_gap(ax, analysis) -> list:
    from matplotlib.patches import Patch

    gap = analysis.gap
    if gap is None or not len(gap) or gap.geometry.iloc[0].is_empty:
        return []
    gap.plot(ax=ax, facecolor="#fdb863", alpha=0.35, edgecolor="#7f3b08", lw=0.4, zorder=2)
    return [Patch(facecolor="#fdb863", alpha=0.5, edgecolor="#7f3b08", label="Gap region")]


def _draw_zones(ax, analysis) -> list:
    from matplotlib.patches import Patch

    zones = analysis.zones
    if not len(zones):
        return []
    colors = force_colors(zones)
    fc = zones["force"].astype(str).map(colors).fillna(PALETTE_OTHER[0])
    zones.plot(ax=ax, color=fc.tolist(), alpha=0.5, edgecolor="#333", lw=0.3, zorder=3)
    return [Patch(facecolor=col, alpha=0.7, edgecolor="#333",
                  label=_plain(side_label(analysis, force))) for force, col in colors.items()]


def _draw_seam(ax, analysis) -> list:
    from matplotlib.lines import Line2D

    seam = analysis.seam
    if seam is None or not len(seam):
        return []
    seam.plot(ax=ax, color="#252525", lw=0.8, ls="--", zorder=4)
    return [Line2D([], [], color="#252525", lw=0.8, ls="--", label="Seam (median line)")]


def corridor_norm(lengths_km) -> tuple[float, float] | None:
    """The colour scale of corridor lengths: from 0 to a round length at or above the longest,
    so a colour means the same length whatever else is drawn; ``None`` when the lengths do
    not differ (one colour, no colour bar).

    Examples
    --------
    >>> corridor_norm([17.0, 22.0, 45.0])
    (0.0, 50.0)
    >>> corridor_norm([553.4]) is None
    True
    """
    v = np.asarray(lengths_km, float)
    v = v[np.isfinite(v)]
    if len(v) < 2 or v.max() - v.min() < 1e-6 * max(v.max(), 1.0):
        return None
    step = 10.0 ** math.floor(math.log10(v.max()))
    top = next(m * step for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10) if m * step >= v.max())
    return 0.0, float(top)


def _corridor_cmap():
    import matplotlib.colors as mcolors
    from matplotlib import colormaps

    # From 0.3 of the colour map: its palest yellows vanish on a light background.
    return mcolors.ListedColormap(colormaps[CORRIDOR_CMAP](np.linspace(0.3, 1.0, 256)))


def _draw_corridors(ax, analysis) -> tuple[list, Any]:
    """Corridors coloured by length on a 0-based scale (one strong colour when the lengths do
    not differ); (legend handles, colour mappable or ``None``)."""
    import matplotlib.colors as mcolors
    from matplotlib.cm import ScalarMappable
    from matplotlib.lines import Line2D

    cor = analysis.corridors
    if cor is None or not len(cor):
        return [], None
    cmap = _corridor_cmap()
    span = corridor_norm(cor["length_km"])
    # A white casing under each corridor keeps it visible over zones and the gap region.
    cor.plot(ax=ax, color="white", lw=4.4, zorder=5)
    if span is None:
        color = cmap(0.85)
        cor.plot(ax=ax, color=color, lw=2.8, zorder=5)
        km = cor["length_km"].astype(float)
        text = (f"Unguarded corridor ({fmt(float(km.iloc[0]), 1)} km)" if len(cor) == 1
                else f"Unguarded corridors ({fmt(float(km.iloc[0]), 1)} km each)")
        return [Line2D([], [], color=color, lw=2.8, label=text)], None
    norm = mcolors.Normalize(*span)
    cor.plot(ax=ax, column="length_km", cmap=cmap, norm=norm, lw=2.8, zorder=5)
    handle = Line2D([], [], color=cmap(0.7), lw=2.8, label="Unguarded corridor")
    return [handle], ScalarMappable(norm=norm, cmap=cmap)


def _draw_posts(ax, analysis) -> list:
    from matplotlib.lines import Line2D

    posts = analysis.posts
    if posts is None or not len(posts):
        return []
    rng = posts["range_km"].to_numpy(float) if "range_km" in posts.columns else 5.0
    discs = gpd.GeoSeries(shapely.buffer(posts.geometry.values, np.asarray(rng) * 1000,
                                         quad_segs=16), crs=analysis.crs)
    discs.plot(ax=ax, facecolor="#1a9850", alpha=0.12, edgecolor="#1a9850", lw=0.4, zorder=6)
    posts.plot(ax=ax, color="#111", markersize=8, marker="^", zorder=7)
    return [Line2D([], [], color="#111", marker="^", ls="none", markersize=5,
                   label="Posts and ranges")]


def _draw_incidents(ax, inc, crs) -> list:
    from matplotlib.lines import Line2D

    if inc is None or not len(inc):
        return []
    inc.to_crs(crs).plot(ax=ax, color="#dd3497", markersize=4 if len(inc) < 2000 else 1.5,
                         alpha=0.6, zorder=8, edgecolor="none")
    return [Line2D([], [], color="#dd3497", marker="o", ls="none", markersize=4,
                   label=f"Incidents ({fmt(len(inc))})")]


#: Proposed posts: star colour.
_SITE_COLOR = "#00429d"


def _draw_sites(ax, placement, crs) -> tuple[list, gpd.GeoDataFrame | None]:
    """Stars at the proposed posts; (legend handles, the sites in ``crs`` with a ``_label``
    for :func:`_label_all`: the site's name, else its location)."""
    from matplotlib.lines import Line2D

    sites = sites_frame(placement)
    if sites is None or not len(sites):
        return [], None
    sites = sites.to_crs(crs) if sites.crs is not None else sites.set_crs(crs)
    sites = sites[sites.geometry.geom_type == "Point"]
    if not len(sites):
        return [], None
    sites.plot(ax=ax, color=_SITE_COLOR, marker="*", markersize=110, edgecolor="white", lw=0.6,
               zorder=9)
    names = pd.Series("", index=sites.index, dtype=object)
    for col in ("location", "name"):  # the name wins; a site without one shows its location
        if col in sites.columns:
            v = sites[col].astype(object).where(sites[col].notna(), "").astype(str).str.strip()
            names = v.where(v != "", names)
    return ([Line2D([], [], color=_SITE_COLOR, marker="*", ls="none", markersize=10,
                    label="Proposed new posts")], sites.assign(_label=names.to_numpy()))


_EXPOSURE_COLOR = {key: color for key, color, _, _ in EXPOSURE_CLASSES}
#: The dark casing under the exposed road: the cyan stays crisp over pale ground and zones.
_EXPOSURE_CASING = "#0b1f4d"


def _draw_exposure(ax, exposure, crs) -> tuple[list, shapely.Geometry]:
    """Road exposure: the exposed stretches in one strong colour over a dark casing, road
    reachable but seen thin and muted, road out of reach (seen or not) thinner and grey, so
    the eye goes to the exposed. Legend rows give each class's km (the result's summary when
    it has one, else the pieces' ``length_km``). Returns (handles, the exposed lines in
    ``crs``, which the legend must not hide)."""
    from matplotlib import patheffects
    from matplotlib.lines import Line2D

    pieces, summary = exposure_frame(exposure)
    if pieces is None or not len(pieces):
        return [], shapely.LineString()
    if pieces.crs is None:
        raise InputError(pieces.attrs.get("source", "exposure"), "crs",
                         "the road pieces have no CRS", "pass the pieces of gapmap exposure")
    cls = exposure_classes(pieces)
    p = pieces.to_crs(crs)
    km = exposure_km(exposure)
    hours = summary.get("hours")
    # "in reach": within the walk's hours of the origin; exposed: in reach and seen by no post.
    within = f" ({fmt(float(hours), sig=3)} h on foot, unseen)" if hours is not None \
        else " (in reach on foot, unseen)"
    styles = (  # (classes, colour, width, casing width, zorder, legend text, km)
        (("seen", "other"), "#8c8c8c", 0.9, 0.0, 4.6, "Road out of reach",
         km.get("road_km", 0.0) - km.get("reachable_km", 0.0)),
        (("reach_seen",), _EXPOSURE_COLOR["reach_seen"], 1.6, 0.0, 4.7, "Road in reach, seen",
         km.get("reachable_km", 0.0) - km.get("exposed_km", 0.0)),
        (("exposed",), _EXPOSURE_COLOR["exposed"], 3.0, 5.0, 5.6,
         f"Exposed road{within}", km.get("exposed_km", 0.0)),
    )
    handles = []
    for keys, color, lw, casing, z, text, class_km in styles:
        sel = np.isin(cls, keys)
        if not sel.any():
            continue
        sub = p.loc[sel]
        if casing:
            sub.plot(ax=ax, color=_EXPOSURE_CASING, lw=casing, zorder=z - 0.05,
                     capstyle="round")
        sub.plot(ax=ax, color=color, lw=lw, zorder=z, capstyle="round")
        cased = [patheffects.Stroke(linewidth=casing, foreground=_EXPOSURE_CASING),
                 patheffects.Normal()] if casing else None
        handles.insert(0, Line2D([], [], color=color, lw=lw, path_effects=cased,
                                 label=f"{text}: {fmt(max(class_km, 0.0), 1)} km"))
    exposed = p.geometry.values[cls == "exposed"]
    return handles, shapely.union_all(exposed) if len(exposed) else shapely.LineString()


def _draw_places(ax, places, crs, window) -> gpd.GeoDataFrame | None:
    """Town dots inside the window; returns them (in ``crs``, largest first) for labelling."""
    if places is None or not len(places) or "name" not in places.columns:
        return None
    p = places.to_crs(crs) if places.crs is not None else places.set_crs(crs)
    x0, y0, x1, y1 = window
    xy = shapely.get_coordinates(p.geometry.values)
    if len(xy) != len(p):  # not points: nothing to label
        return None
    inside = (xy[:, 0] > x0) & (xy[:, 0] < x1) & (xy[:, 1] > y0) & (xy[:, 1] < y1)
    p = p.loc[inside]
    if not len(p):
        return None
    pop = p["population"].astype(float) if "population" in p.columns else \
        pd.Series(np.nan, index=p.index)
    p = p.assign(_pop=pop.fillna(-1.0)).sort_values(["_pop", "name"], ascending=[False, True])
    ax.scatter(shapely.get_x(p.geometry.values), shapely.get_y(p.geometry.values), s=14,
               facecolor="white", edgecolor="#111", lw=0.9, zorder=12)
    return p


# --------------------------------------------------------------------------- legend, labels

_CORNERS = ("lower right", "lower left", "upper left", "upper right")


def _legend_corner(ax, box_frac: tuple[float, float], window, keep: shapely.Geometry) -> str:
    """The corner where a legend of ``box_frac`` (axes fractions) hides least of ``keep``
    (what must stay visible: corridors, the seam, towns), ties broken by the study area."""
    x0, y0, x1, y1 = window
    w, h = box_frac[0] * (x1 - x0), box_frac[1] * (y1 - y0)
    best, score = _CORNERS[0], math.inf
    for corner in _CORNERS:
        bx = x1 - w if "right" in corner else x0
        by = y0 if "lower" in corner else y1 - h
        box = shapely.box(bx, by, bx + w, by + h)
        s = shapely.intersection(keep, box).length if not keep.is_empty else 0.0
        if s < score - 1e-9:
            best, score = corner, s
    return best


def _draw_legend(fig, ax, handles: list, sm, illustrative: bool, window,
                 keep: shapely.Geometry) -> tuple[str, list]:
    """The legend (and the colour bar above or below it) inside the map, in the corner that
    hides least; returns the corner and the artists it occupies."""
    kw = dict(fontsize=7, framealpha=0.93, title="Illustrative data" if illustrative else None,
              title_fontsize=7.5, borderaxespad=0.6, edgecolor="#999")
    leg = ax.legend(handles=handles, loc="lower right", **kw)
    renderer = fig.canvas.get_renderer()
    bb = leg.get_window_extent(renderer).transformed(ax.transAxes.inverted())
    extra = 0.1 if sm is not None else 0.0
    corner = _legend_corner(ax, (bb.width, bb.height + extra), window, keep)
    leg.remove()
    leg = ax.legend(handles=handles, loc=corner, **kw)
    leg.set_zorder(30)
    used = [leg]
    if sm is not None:
        bb = leg.get_window_extent(renderer).transformed(ax.transAxes.inverted())
        cw, ch = max(bb.width, 0.22), 0.018
        cx = bb.x1 - cw if "right" in corner else bb.x0
        cy = bb.y1 + 0.045 if "lower" in corner else bb.y0 - 0.03 - ch
        cax = ax.inset_axes([cx, cy, cw, ch], zorder=31)
        cb = fig.colorbar(sm, cax=cax, orientation="horizontal")
        cb.set_label("Corridor length (km)", fontsize=7, labelpad=2)
        cb.ax.xaxis.set_label_position("top")
        cb.ax.tick_params(labelsize=6.5, length=2, pad=1)
        cb.outline.set_linewidth(0.5)
        used.append(cax)
    return corner, used


#: Label positions around a point, in the order cartographers prefer (upper right first).
_OFFSETS = ((4, 3, "left", "bottom"), (-4, 3, "right", "bottom"), (4, -3, "left", "top"),
            (-4, -3, "right", "top"), (6, 0, "left", "center"), (-6, 0, "right", "center"),
            (0, 5, "center", "bottom"), (0, -5, "center", "top"))


def _fits(bb, axbox, taken: list) -> bool:
    if bb.x0 < axbox.x0 or bb.x1 > axbox.x1 or bb.y0 < axbox.y0 or bb.y1 > axbox.y1:
        return False
    return not any(bb.overlaps(t) for t in taken)


def _place_label(ax, renderer, xy, text: str, taken: list, axbox, offsets=_OFFSETS,
                 **style):
    """Put ``text`` at the first position around ``xy`` where it overlaps nothing taken and
    stays inside the map; ``None`` (no label) when there is none."""
    for dx, dy, ha, va in offsets:
        t = ax.annotate(_plain(text), xy, xytext=(dx, dy), textcoords="offset points", ha=ha,
                        va=va, zorder=24, path_effects=[_halo()], **style)
        bb = t.get_window_extent(renderer).padded(1.5)
        if _fits(bb, axbox, taken):
            taken.append(bb)
            return t
        t.remove()
    return None


def _label_all(fig, ax, *, areas, places, analysis, occupied: list, sites=None,
               avoid: shapely.Geometry | None = None) -> dict[str, int]:
    """Label proposed posts, areas, towns (largest first) and the longest corridors without
    overlaps.

    A greedy placement: each label takes the first of eight positions around its point that
    overlaps no label, symbol or map furniture already placed, measured in display pixels;
    a label that fits nowhere is left out (smaller towns first, as they come last). This
    keeps every label next to its point, which displacement solvers (adjustText) do not
    promise, and it is deterministic.
    """
    from matplotlib.transforms import Bbox

    renderer = fig.canvas.get_renderer()
    axbox = ax.get_window_extent(renderer)
    taken = [a.get_window_extent(renderer) for a in occupied]
    counts = {"sites": 0, "areas": 0, "places": 0, "corridors": 0}
    lines: list = []
    if avoid is not None and not avoid.is_empty:
        # Lines labels should not cover (the exposed road): small boxes every 4 px along them.
        x0, x1 = ax.get_xlim()
        step = (x1 - x0) / max(axbox.width, 1.0) * 4.0
        pts = shapely.get_coordinates(shapely.segmentize(avoid, step))
        lines = [Bbox([[px - 2, py - 2], [px + 2, py + 2]])
                 for px, py in ax.transData.transform(pts)]
    # Symbols are taken before any label: a town dot is 8 px across, a post's star 14 px.
    for frame, half in ((places, 4), (sites, 7)):
        if frame is None:
            continue
        geoms = frame.geometry.values
        for x, y in zip(shapely.get_x(geoms), shapely.get_y(geoms)):
            px, py = ax.transData.transform((x, y))
            taken.append(Bbox([[px - half, py - half], [px + half, py + half]]))

    def place(xy, text, offsets=_OFFSETS, must: bool = False, **style):
        """A label clear of the lines too; one that must be shown may cover them."""
        both = taken + lines
        t = _place_label(ax, renderer, xy, text, both, axbox, offsets=offsets, **style)
        if t is not None:
            taken.append(both[-1])
        elif must and lines:
            t = _place_label(ax, renderer, xy, text, taken, axbox, offsets=offsets, **style)
        return t

    if sites is not None:
        # The proposed posts are what the page is for: labelled first, beside their star.
        far = tuple((1.8 * dx, 1.8 * dy, ha, va) for dx, dy, ha, va in _OFFSETS)
        for text, geom in zip(sites["_label"], sites.geometry.values):
            if not text:
                continue
            t = place((geom.x, geom.y), text, offsets=far + _OFFSETS, must=True, fontsize=7,
                      fontweight="bold", color=_SITE_COLOR)
            counts["sites"] += t is not None
    if areas is not None:
        for name, geom in zip(areas["name"].astype(str), areas.geometry.values):
            at = _label_point(geom, ax)
            if at is None:
                continue
            t = place(at, name.upper(),
                      offsets=((0, 0, "center", "center"), (0, 12, "center", "center"),
                               (0, -12, "center", "center")),
                      fontsize=7.5, color="#4d4d4d", style="italic")
            counts["areas"] += t is not None
    if places is not None:
        for name, pop, geom in zip(places["name"].astype(str), places["_pop"],
                                   places.geometry.values):
            size, weight = (8.5, "bold") if pop >= 500_000 else (7.5, "normal") \
                if pop >= 50_000 else (6.5, "normal")
            t = place((geom.x, geom.y), name, fontsize=size, fontweight=weight, color="#111")
            counts["places"] += t is not None
    cor = analysis.corridors
    if cor is not None and len(cor):
        for _, row in cor.nlargest(min(8, len(cor)), "length_km").iterrows():
            pt = row.geometry.interpolate(0.5, normalized=True)
            t = place((pt.x, pt.y), str(row["corridor_id"]), fontsize=7, color="#7f0000",
                      fontweight="bold")
            counts["corridors"] += t is not None
    return counts


def _label_point(geom: shapely.Geometry, ax) -> tuple[float, float] | None:
    """A point well inside the visible part of an area (pole of inaccessibility)."""
    from shapely.ops import polylabel

    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    part = shapely.intersection(geom, shapely.box(x0, y0, x1, y1))
    if part.is_empty or part.area <= 0:
        return None
    polys = getattr(part, "geoms", [part])
    big = max((g for g in polys if g.geom_type == "Polygon"), key=lambda g: g.area,
              default=None)
    if big is None:
        return None
    pt = polylabel(big, tolerance=max(math.sqrt(big.area) / 50, 1.0))
    return pt.x, pt.y


def _keep_visible(analysis, places, extra: Sequence[shapely.Geometry] = ()) -> shapely.Geometry:
    """What the legend must not hide: corridors, the seam, the towns (and ``extra`` lines,
    e.g. the exposed road)."""
    parts = [g for g in extra if g is not None and not g.is_empty]
    if analysis.corridors is not None and len(analysis.corridors):
        parts.append(shapely.union_all(analysis.corridors.geometry.values))
    if analysis.seam is not None and len(analysis.seam):
        parts.append(shapely.union_all(analysis.seam.geometry.values))
    if places is not None and len(places):
        # A town counts as 10 km of line: hiding one is as bad as hiding 10 km of seam.
        parts.append(shapely.union_all(shapely.boundary(shapely.buffer(places.geometry.values,
                                                                       1600))))
    return shapely.union_all(parts) if parts else shapely.LineString()


def plot_map(analysis, *, incidents: Any = None, placement: Any = None,
             title: str | None = None, figsize: tuple[float, float] | None = None,
             ax=None, legend: bool = True, places: gpd.GeoDataFrame | None = None,
             areas: gpd.GeoDataFrame | None = None, water: Any = None,
             sources: Sequence = (), width_in: float = 8.0, exposure: Any = None):
    """Static map of an analysis (matplotlib, no pyplot state).

    Parameters
    ----------
    analysis
        A :class:`gapmap.Analysis`.
    incidents
        Optional incidents (``Incidents``, ``IncidentMetrics`` or a point GeoDataFrame).
    placement
        Optional ``Placement`` (or GeoDataFrame of sites) to mark proposed new posts, each
        labelled with its name (a placement with places names its sites "near Daquq, 4 km
        NE").
    title
        Figure title; default "<side A> – <side B>: unguarded corridors".
    figsize
        Inches; by default ``width_in`` wide and as tall as the study area's shape needs.
        Refused (:class:`~gapmap.errors.InputError`) when not positive and finite or beyond
        :data:`MAX_PIXELS` at print resolution.
    ax
        Draw into this Axes instead of a new figure (no header or footer then).
    legend
        Add the legend and the corridor-length colour bar (inside the map frame).
    places
        Towns to mark and label: points with ``name`` (and ``population``: larger towns are
        labelled first and larger); see :func:`gapmap.places.load_places`.
    areas
        Named areas (``name`` column) to outline and label, e.g. the governorates from
        :func:`gapmap.style.named_areas`.
    water
        Rivers and lakes (an object with ``rivers`` and ``lakes`` GeoDataFrames), drawn when
        present.
    sources
        :class:`gapmap.sources.Source` of the inputs: listed in the footer with their
        licences, with the DEM's note when it says the terrain is modelled.
    width_in
        Page width when ``figsize`` is not given.
    exposure
        Road exposure: an :class:`gapmap.exposure.Exposure` or its pieces GeoDataFrame (as
        :func:`gapmap.exposure.read_exposure` returns). The exposed stretches are drawn in one
        strong colour, the rest of the roads muted; the legend gives the km of each.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_map(result, title="Disputed territories")  # doctest: +SKIP
    >>> save_figure(fig, "out/map.png")  # doctest: +SKIP
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    crs = analysis.crs
    frame = analysis.study_area if not analysis.study_area.is_empty else shapely.union_all(
        analysis.zones.geometry.values)
    inc = incident_frame(incidents)
    notes = illustrative_notes(analysis.zones, inc)
    if analysis.inputs and any(is_synthetic(v) for v in analysis.inputs.values()):
        notes.append("Terrain is synthetic.")
    own_page = ax is None
    if own_page:
        w = figsize[0] if figsize is not None else width_in
        check_size((w, w))
        header = _header_lines(analysis, title, notes, float(w))
        footer = _footer_lines(sources, crs, float(w))
        fig, ax = _page(frame, figsize, float(w), header, footer)
    else:
        fig = ax.figure
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    window = _set_window(ax, frame)
    handles = _draw_study_area(ax, analysis)
    shown_areas = _draw_areas(ax, areas, crs)
    handles += _draw_water(ax, water, crs) + _draw_gap(ax, analysis) \
        + _draw_zones(ax, analysis) + _draw_seam(ax, analysis)
    cor_handles, sm = _draw_corridors(ax, analysis)
    ex_handles, exposed = _draw_exposure(ax, exposure, crs)
    site_handles, sites = _draw_sites(ax, placement, crs)
    handles += cor_handles + ex_handles + _draw_posts(ax, analysis) \
        + _draw_incidents(ax, inc, crs) + site_handles
    towns = _draw_places(ax, places, crs, window)
    if towns is not None:
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], color="#111", marker="o", markerfacecolor="white",
                              ls="none", markersize=4, label="Towns"))
    ax.set_xlim(window[0], window[2])
    ax.set_ylim(window[1], window[3])
    ax.set_xlabel("")  # geopandas labels the axes with the CRS units: the footer names the CRS
    ax.set_ylabel("")
    corner, occupied = "lower right", []
    if legend:
        corner, occupied = _draw_legend(fig, ax, handles, sm, bool(notes), window,
                                        _keep_visible(analysis, towns, [exposed]))
    _draw_scale_bar(ax, crs, corner="right" if corner == "lower left" else "left")
    _draw_north_arrow(ax, crs, corner="left" if corner == "upper right" else "right")
    occupied += [t for t in ax.texts] + [c for c in ax.get_children()
                                         if c.__class__.__name__ == "Annotation"]
    occupied += [p for p in ax.patches if p.get_zorder() == 20]
    _label_all(fig, ax, areas=shown_areas, places=towns, analysis=analysis, occupied=occupied,
               sites=sites, avoid=exposed)
    if own_page:
        _draw_header(fig, ax, header)
        _draw_footer(fig, footer)
    else:
        ax.set_title(_plain(title or f"{analysis.side_a.name} – {analysis.side_b.name}: "
                            "unguarded corridors"), loc="left", fontsize=11)
        credits = attribution(sources)
        if credits:
            ax.text(0.99, 0.005, _plain(credits), transform=ax.transAxes, ha="right",
                    va="bottom", fontsize=5.5, color="#555", zorder=25)
    return fig


def save_figure(fig, path: str | os.PathLike, *, dpi: int = PRINT_DPI) -> Path:
    """Write a figure atomically (format from the suffix: .png, .pdf, .svg), ≥ 200 dpi.

    Examples
    --------
    >>> save_figure(plot_map(result), "out/map.png")  # doctest: +SKIP
    PosixPath('out/map.png')
    """
    target = Path(path)
    form = figure_format(target)
    if dpi < PRINT_DPI:
        log.warning("figure resolution raised from %d to %d dpi (print quality)", dpi, PRINT_DPI)
        dpi = PRINT_DPI
    check_size(fig.get_size_inches(), dpi, source=str(target))
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if fig.canvas is None or not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=dpi, format=form, metadata=None if form != "png" else
                    {"Software": "gapmap"})
    log.info("wrote %s", target)
    return target
