"""Static map of an analysis for print: zones, seam, corridors by length, gap region, posts.

:func:`plot_map` draws in the analysis's metric CRS with a legend, a colour bar for corridor
length, a scale bar whose length is true on the ground at the map's centre (the projection's
scale factor is taken into account), a north arrow pointing to true north (rotated by the
meridian convergence) and a note when the data are illustrative or synthetic.
:func:`save_figure` writes it at print quality (≥ 200 dpi), atomically.
"""

from __future__ import annotations

import logging
import math
import os
import textwrap
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS, Proj, Transformer

from .errors import InputError
from .io import atomic_path
from .style import (CORRIDOR_CMAP, PALETTE_OTHER, crs_label, fmt, force_colors,
                    illustrative_notes, incident_frame, is_synthetic, side_label, sites_frame)

__all__ = ["plot_map", "save_figure", "scale_bar_km", "check_size", "figure_format",
           "PRINT_DPI", "MAX_PIXELS", "FORMATS"]

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


def _draw_scale_bar(ax, crs: CRS, length_km: float | None = None) -> float:
    """Draw a two-part scale bar true to the ground at the map centre; returns its km."""
    from matplotlib.patches import Rectangle

    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    k, _ = _map_factors(crs, (x0 + x1) / 2, (y0 + y1) / 2)
    km = length_km or scale_bar_km(x1 - x0, k)
    length = km * 1000.0 * k  # projected metres for km on the ground
    bx, by = x0 + 0.05 * (x1 - x0), y0 + 0.05 * (y1 - y0)
    h = 0.012 * (y1 - y0)
    for i in range(2):  # two alternating halves, as on printed maps
        ax.add_patch(Rectangle(
            (bx + i * length / 2, by), length / 2, h, facecolor="black" if i == 0 else "white",
            edgecolor="black", lw=0.8, zorder=20))
    label = f"{km:g} km"
    ax.text(bx, by + 1.8 * h, "0", ha="center", va="bottom", fontsize=7, zorder=20)
    ax.text(bx + length, by + 1.8 * h, label, ha="center", va="bottom", fontsize=7, zorder=20)
    return km


def _draw_north_arrow(ax, crs: CRS) -> float:
    """Draw an arrow to true north; returns the meridian convergence used (degrees)."""
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    _, conv = _map_factors(crs, (x0 + x1) / 2, (y0 + y1) / 2)
    # Grid north is up; true north is rotated from it by the meridian convergence.
    ang = math.radians(-conv)
    cx, cy = 0.93, 0.84
    dx, dy = 0.05 * math.sin(ang), 0.05 * math.cos(ang)
    ax.annotate("", xy=(cx + dx, cy + dy), xytext=(cx - dx * 0.2, cy - dy * 0.2),
                xycoords="axes fraction",
                arrowprops=dict(facecolor="black", width=3, headwidth=9, headlength=9), zorder=20)
    ax.text(cx + dx * 1.35, cy + dy * 1.35, "N", transform=ax.transAxes, ha="center",
            va="center", fontsize=9, fontweight="bold", zorder=20)
    return conv


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


def _auto_figsize(geom: shapely.Geometry, width_in: float) -> tuple[float, float]:
    """Figure size whose height follows the map's aspect (within 0.6–1.4 of the width)."""
    x0, y0, x1, y1 = geom.bounds
    ratio = (y1 - y0) / (x1 - x0) if x1 > x0 else 1.0
    return width_in, width_in * float(np.clip(ratio, 0.6, 1.4)) * 0.82 + 0.9


def _new_axes(size: tuple[float, float], legend: bool):
    """A figure with the map on the left and, when wide enough, a narrow column on the right
    for the colour bar and legend, so the legend hides none of the map."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    gs = fig.add_gridspec(1, 2, width_ratios=[4.0, 1.0]) if legend and size[0] >= 5.5 else None
    ax = fig.add_subplot(gs[0, 0] if gs is not None else 111)
    side = None
    if gs is not None:
        side = fig.add_subplot(gs[0, 1])
        side.axis("off")
    return fig, ax, side


def _draw_study_area(ax, analysis) -> list:
    from matplotlib.lines import Line2D

    if analysis.study_area.is_empty:
        return []
    gpd.GeoSeries([analysis.study_area], crs=analysis.crs).plot(
        ax=ax, facecolor="none", edgecolor="#666", lw=0.8, ls=":", zorder=1)
    return [Line2D([], [], color="#666", lw=0.8, ls=":", label="Study area")]


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
    zones.plot(ax=ax, color=fc.tolist(), alpha=0.55, edgecolor="#333", lw=0.3, zorder=3)
    return [Patch(facecolor=col, alpha=0.7, edgecolor="#333",
                  label=_plain(side_label(analysis, force))) for force, col in colors.items()]


def _draw_seam(ax, analysis) -> list:
    from matplotlib.lines import Line2D

    seam = analysis.seam
    if seam is None or not len(seam):
        return []
    seam.plot(ax=ax, color="#252525", lw=0.8, ls="--", zorder=4)
    return [Line2D([], [], color="#252525", lw=0.8, ls="--", label="Seam (median line)")]


def _draw_corridors(ax, analysis) -> tuple[list, Any]:
    """Corridors coloured by length, the longest few labelled; (handles, colour mappable)."""
    import matplotlib.colors as mcolors
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.lines import Line2D

    cor = analysis.corridors
    if cor is None or not len(cor):
        return [], None
    lengths = cor["length_km"].to_numpy(float)
    lo, hi = float(np.nanmin(lengths)), float(np.nanmax(lengths))
    norm = mcolors.Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1.0)
    # From 0.25 of the colour map: the palest yellows vanish on a light background.
    cmap = mcolors.ListedColormap(colormaps[CORRIDOR_CMAP](np.linspace(0.25, 1.0, 256)))
    cor.plot(ax=ax, column="length_km", cmap=cmap, norm=norm, lw=2.6, zorder=5)
    # Label the longest few so the table and the map can be read together.
    for _, row in cor.nlargest(min(8, len(cor)), "length_km").iterrows():
        pt = row.geometry.interpolate(0.5, normalized=True)
        ax.annotate(_plain(row["corridor_id"]), (pt.x, pt.y), xytext=(4, 4),
                    textcoords="offset points", fontsize=7, zorder=21,
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8))
    handle = Line2D([], [], color=cmap(0.7), lw=2.6, label="Unguarded corridor")
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
    inc.to_crs(crs).plot(ax=ax, color="#dd3497", markersize=4 if len(inc) < 2000 else 1,
                         alpha=0.7, zorder=8, edgecolor="none")
    return [Line2D([], [], color="#dd3497", marker="o", ls="none", markersize=4,
                   label=f"Incidents ({fmt(len(inc))})")]


def _draw_sites(ax, placement, crs) -> list:
    from matplotlib.lines import Line2D

    sites = sites_frame(placement)
    if sites is None or not len(sites):
        return []
    sites.to_crs(crs).plot(ax=ax, color="#00429d", marker="*", markersize=90,
                           edgecolor="white", lw=0.6, zorder=9)
    return [Line2D([], [], color="#00429d", marker="*", ls="none", markersize=10,
                   label="Proposed new posts")]


def _frame(ax, frame: shapely.Geometry, crs: CRS) -> None:
    """Frame the study area (or everything drawn) with a small margin; scale bar and arrow."""
    x0, y0, x1, y1 = frame.bounds
    pad = 0.04 * max(x1 - x0, y1 - y0, 1.0)
    ax.set_xlim(x0 - pad, x1 + pad)
    ax.set_ylim(y0 - pad, y1 + pad)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")
    for sp in ax.spines.values():
        sp.set_linewidth(0.6)
    _draw_scale_bar(ax, crs)
    _draw_north_arrow(ax, crs)


def _draw_titles(ax, analysis, title: str | None) -> None:
    s = analysis.summary or {}
    if title is None:
        title = f"{analysis.side_a.name} – {analysis.side_b.name}: unguarded corridors"
    ax.set_title(_plain(title), fontsize=12, fontweight="bold", loc="left", pad=16)
    share = s.get("unguarded_share")
    sub = (f"Unguarded {fmt(s.get('unguarded_length_km', float('nan')), 1)} km"
           + (f" ({fmt(100 * share, 1)}% of the seam)" if share is not None
              and np.isfinite(share) else "")
           + f"; longest corridor {fmt(s.get('longest_corridor_km', float('nan')), 1)} km")
    if s.get("exploitation_ratio") is not None:
        sub += f"; exploitation ratio {fmt(s['exploitation_ratio'], sig=3)}"
    ax.text(0, 1.005, _plain(sub), transform=ax.transAxes, fontsize=8, va="bottom",
            color="#333")


def _draw_notes(ax, analysis, inc) -> list[str]:
    """The illustrative-data note over the map; returns the notes."""
    notes = illustrative_notes(analysis.zones, inc)
    if analysis.inputs and any(is_synthetic(v) for v in analysis.inputs.values()):
        notes.append("Terrain is synthetic.")
    if notes:
        note = textwrap.fill(" · ".join(notes)[:300], width=90)
        ax.text(0.5, 0.985, _plain(note), transform=ax.transAxes, ha="center",
                va="top", fontsize=7.5, style="italic", color="#8a4b00", zorder=22,
                bbox=dict(boxstyle="round,pad=0.3", fc="#fff7e6", ec="#d9a25f", lw=0.6))
    return notes


def _draw_legend(fig, ax, side, handles: list, sm, illustrative: bool) -> None:
    host = side if side is not None else ax
    if sm is not None:
        cax = (side.inset_axes([0.02, 0.66, 0.12, 0.32]) if side is not None
               else ax.inset_axes([0.02, 0.45, 0.025, 0.3]))
        cb = fig.colorbar(sm, cax=cax)
        cb.set_label("Corridor length (km)", fontsize=7.5)
        cb.ax.tick_params(labelsize=7)
    leg = host.legend(handles=handles, loc="lower left" if side is not None else "lower right",
                      fontsize=7, framealpha=0.92,
                      title="Illustrative data" if illustrative else None, title_fontsize=7.5,
                      borderaxespad=0.0 if side is not None else 0.5)
    leg.set_zorder(30)


def plot_map(analysis, *, incidents: Any = None, placement: Any = None,
             title: str | None = None, figsize: tuple[float, float] | None = None,
             ax=None, legend: bool = True):
    """Static map of an analysis (matplotlib, no pyplot state).

    Parameters
    ----------
    analysis
        A :class:`gapmap.Analysis`.
    incidents
        Optional incidents (``Incidents``, ``IncidentMetrics`` or a point GeoDataFrame).
    placement
        Optional ``Placement`` (or GeoDataFrame of sites) to mark proposed new posts.
    title
        Figure title; default "<side A> – <side B>: unguarded corridors".
    figsize
        Inches; by default 8 wide and as tall as the study area's shape needs. Refused
        (:class:`~gapmap.errors.InputError`) when not positive and finite or beyond
        :data:`MAX_PIXELS` at print resolution.
    ax
        Draw into this Axes instead of a new figure.
    legend
        Add the legend and the corridor-length colour bar.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_map(result, title="Disputed territories")  # doctest: +SKIP
    >>> save_figure(fig, "out/map.png")  # doctest: +SKIP
    """
    crs = analysis.crs
    frame = analysis.study_area if not analysis.study_area.is_empty else shapely.union_all(
        analysis.zones.geometry.values)
    side = None
    if ax is None:
        size = check_size(figsize) if figsize is not None else _auto_figsize(frame, 8.0)
        fig, ax, side = _new_axes(size, legend)
    else:
        fig = ax.figure
    inc = incident_frame(incidents)
    handles = _draw_study_area(ax, analysis) + _draw_gap(ax, analysis) \
        + _draw_zones(ax, analysis) + _draw_seam(ax, analysis)
    cor_handles, sm = _draw_corridors(ax, analysis)
    handles += cor_handles + _draw_posts(ax, analysis) + _draw_incidents(ax, inc, crs) \
        + _draw_sites(ax, placement, crs)
    _frame(ax, frame, crs)
    _draw_titles(ax, analysis, title)
    notes = _draw_notes(ax, analysis, inc)
    if legend:
        _draw_legend(fig, ax, side, handles, sm, bool(notes))
    fig.text(0.005, 0.002, f"CRS: {crs_label(crs)}", fontsize=5.5, color="#777", ha="left",
             va="bottom")
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
