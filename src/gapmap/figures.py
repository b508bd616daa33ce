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
import re
import textwrap
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS, Proj, Transformer

from .errors import InputError
from .io import atomic_path
from .maps import force_colors, illustrative_notes, incident_frame

__all__ = ["plot_map", "save_figure", "scale_bar_km", "PRINT_DPI"]

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


def _crs_label(crs: CRS) -> str:
    """A short readable name of the CRS for the figure's footer."""
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


def _auto_figsize(geom: shapely.Geometry, width_in: float) -> tuple[float, float]:
    """Figure size whose height follows the map's aspect (within 0.6–1.4 of the width)."""
    x0, y0, x1, y1 = geom.bounds
    ratio = (y1 - y0) / (x1 - x0) if x1 > x0 else 1.0
    return width_in, width_in * float(np.clip(ratio, 0.6, 1.4)) * 0.82 + 0.9


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
        Inches; by default 8 wide and as tall as the study area's shape needs.
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
    import matplotlib.colors as mcolors
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    crs = analysis.crs
    frame = analysis.study_area if not analysis.study_area.is_empty else shapely.union_all(
        analysis.zones.geometry.values)
    side = None
    if ax is None:
        size = figsize or _auto_figsize(frame, 8.0)
        fig = Figure(figsize=size, layout="constrained")
        # Map on the left, a narrow column on the right for colour bar and legend, so the
        # legend hides none of the map (small figures keep the legend on the map).
        gs = fig.add_gridspec(1, 2, width_ratios=[4.0, 1.0]) if legend and size[0] >= 5.5 \
            else None
        ax = fig.add_subplot(gs[0, 0] if gs is not None else 111)
        if gs is not None:
            side = fig.add_subplot(gs[0, 1])
            side.axis("off")
    else:
        fig = ax.figure
    handles: list = []
    zones = analysis.zones
    colors = force_colors(zones)
    side_names = {"a": analysis.side_a.name, "b": analysis.side_b.name}
    study = gpd.GeoSeries([analysis.study_area], crs=crs)
    if not analysis.study_area.is_empty:
        study.plot(ax=ax, facecolor="none", edgecolor="#666", lw=0.8, ls=":", zorder=1)
        handles.append(Line2D([], [], color="#666", lw=0.8, ls=":", label="Study area"))
    gap = analysis.gap
    if gap is not None and len(gap) and not gap.geometry.iloc[0].is_empty:
        gap.plot(ax=ax, facecolor="#fdb863", alpha=0.35, edgecolor="#7f3b08", lw=0.4, zorder=2)
        handles.append(Patch(facecolor="#fdb863", alpha=0.5, edgecolor="#7f3b08",
                             label="Gap region"))
    if len(zones):
        fc = zones["force"].astype(str).map(colors).fillna("#737373")
        zones.plot(ax=ax, color=fc.tolist(), alpha=0.55, edgecolor="#333", lw=0.3, zorder=3)
        for force, col in colors.items():
            sides = zones.loc[zones["force"].astype(str) == force, "side"]
            sname = side_names.get(sides.iloc[0], "neither side") if len(sides) else ""
            handles.append(Patch(facecolor=col, alpha=0.7, edgecolor="#333",
                                 label=_plain(f"{force} ({sname})")))
    seam = analysis.seam
    if seam is not None and len(seam):
        seam.plot(ax=ax, color="#252525", lw=0.8, ls="--", zorder=4)
        handles.append(Line2D([], [], color="#252525", lw=0.8, ls="--",
                              label="Seam (median line)"))
    cor = analysis.corridors
    sm = None
    if cor is not None and len(cor):
        lengths = cor["length_km"].to_numpy(float)
        norm = mcolors.Normalize(vmin=float(np.nanmin(lengths)), vmax=float(np.nanmax(lengths))
                                 if np.nanmax(lengths) > np.nanmin(lengths) else
                                 float(np.nanmin(lengths)) + 1.0)
        base = colormaps["YlOrRd"]
        cmap = mcolors.ListedColormap(base(np.linspace(0.25, 1.0, 256)))
        cor.plot(ax=ax, column="length_km", cmap=cmap, norm=norm, lw=2.6, zorder=5)
        sm = ScalarMappable(norm=norm, cmap=cmap)
        handles.append(Line2D([], [], color=cmap(0.7), lw=2.6, label="Unguarded corridor"))
        # Label the longest few so the table and the map can be read together.
        for _, row in cor.nlargest(min(8, len(cor)), "length_km").iterrows():
            pt = row.geometry.interpolate(0.5, normalized=True)
            ax.annotate(_plain(row["corridor_id"]), (pt.x, pt.y), xytext=(4, 4),
                        textcoords="offset points", fontsize=7, zorder=21,
                        bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8))
    posts = analysis.posts
    if posts is not None and len(posts):
        rng = posts["range_km"].to_numpy(float) if "range_km" in posts.columns else 5.0
        discs = gpd.GeoSeries(shapely.buffer(posts.geometry.values, np.asarray(rng) * 1000,
                                             quad_segs=16), crs=crs)
        discs.plot(ax=ax, facecolor="#1a9850", alpha=0.12, edgecolor="#1a9850", lw=0.4, zorder=6)
        posts.plot(ax=ax, color="#111", markersize=8, marker="^", zorder=7)
        handles.append(Line2D([], [], color="#111", marker="^", ls="none", markersize=5,
                              label="Posts and ranges"))
    inc = incident_frame(incidents)
    if inc is not None and len(inc):
        pts = inc.to_crs(crs)
        pts.plot(ax=ax, color="#dd3497", markersize=4 if len(inc) < 2000 else 1, alpha=0.7,
                 zorder=8, edgecolor="none")
        handles.append(Line2D([], [], color="#dd3497", marker="o", ls="none", markersize=4,
                              label=f"Incidents ({len(inc):,})"))
    if placement is not None:
        from .maps import _sites_frame

        sites = _sites_frame(placement)
        if sites is not None and len(sites):
            sites.to_crs(crs).plot(ax=ax, color="#00429d", marker="*", markersize=90,
                                   edgecolor="white", lw=0.6, zorder=9)
            handles.append(Line2D([], [], color="#00429d", marker="*", ls="none", markersize=10,
                                  label="Proposed new posts"))

    # Frame: the study area (or everything drawn), with a small margin.
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

    s = analysis.summary or {}
    if title is None:
        title = f"{analysis.side_a.name} – {analysis.side_b.name}: unguarded corridors"
    ax.set_title(_plain(title), fontsize=12, fontweight="bold", loc="left", pad=16)
    share = s.get("unguarded_share")
    sub = (f"Unguarded {s.get('unguarded_length_km', float('nan')):,.1f} km"
           + (f" ({100 * share:.1f}% of the seam)" if share is not None and np.isfinite(share)
              else "")
           + f"; longest corridor {s.get('longest_corridor_km', float('nan')):,.1f} km")
    if s.get("exploitation_ratio") is not None and "exploitation_ratio" in s:
        sub += f"; exploitation ratio {s['exploitation_ratio']:.3g}"
    ax.text(0, 1.005, sub, transform=ax.transAxes, fontsize=8, va="bottom", color="#333")

    notes = illustrative_notes(zones, inc)
    if analysis.inputs and any(re.search(r"synthetic", str(v), re.I)
                               for v in analysis.inputs.values()):
        notes.append("Terrain is synthetic.")
    if notes:
        note = textwrap.fill(" · ".join(notes)[:300], width=90)
        ax.text(0.5, 0.985, _plain(note), transform=ax.transAxes, ha="center",
                va="top", fontsize=7.5, style="italic", color="#8a4b00", zorder=22,
                bbox=dict(boxstyle="round,pad=0.3", fc="#fff7e6", ec="#d9a25f", lw=0.6))
    if legend:
        host = side if side is not None else ax
        if sm is not None:
            cax = (side.inset_axes([0.02, 0.66, 0.12, 0.32]) if side is not None
                   else ax.inset_axes([0.02, 0.45, 0.025, 0.3]))
            cb = fig.colorbar(sm, cax=cax)
            cb.set_label("Corridor length (km)", fontsize=7.5)
            cb.ax.tick_params(labelsize=7)
        leg = host.legend(handles=handles, loc="lower left" if side is not None else
                          "lower right", fontsize=7, framealpha=0.92,
                          title="Illustrative data" if notes else None, title_fontsize=7.5,
                          borderaxespad=0.0 if side is not None else 0.5)
        leg.set_zorder(30)
    fig.text(0.005, 0.002, f"CRS: {_crs_label(crs)}", fontsize=5.5, color="#777", ha="left",
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
    fmt = target.suffix.lower().lstrip(".") or "png"
    if fmt not in ("png", "pdf", "svg", "jpg", "jpeg", "tif", "tiff"):
        raise InputError(target, None, f"unknown figure format .{fmt}",
                         "name the output .png, .pdf or .svg")
    if dpi < PRINT_DPI:
        log.warning("figure resolution raised from %d to %d dpi (print quality)", dpi, PRINT_DPI)
        dpi = PRINT_DPI
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if fig.canvas is None or not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=dpi, format=fmt, metadata=None if fmt != "png" else
                    {"Software": "gapmap"})
    log.info("wrote %s", target)
    return target
