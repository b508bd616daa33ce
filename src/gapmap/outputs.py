"""Writing an analysis: corridor table, layers, summary, GeoPackage.

Everything goes through :func:`gapmap.io.atomic_dir`, so a run that fails half-way leaves the
output folder as it was.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from .corridors import CORRIDOR_COLUMNS, Analysis
from .incidents import format_date_columns
from .io import atomic_dir

__all__ = ["write_metrics", "format_summary", "corridor_table", "safe_cells"]

log = logging.getLogger(__name__)

#: First characters that make a spreadsheet read a cell as a formula (OWASP CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cells(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells cannot run as spreadsheet formulas.

    Text that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a single
    quote in front (the OWASP rule for CSV injection), so ``=HYPERLINK(…)`` in a force name
    shows as text when ``corridors.csv`` is opened in a spreadsheet. Numbers, including
    negative ones, and the geometry are left as they are. Every table writer here uses it.

    Examples
    --------
    >>> df = pd.DataFrame({"force": ["=1+2", "isf", "-x"], "dz": [-1.5, 0.0, 2.0]})
    >>> safe_cells(df).to_dict("list")
    {'force': ["'=1+2", 'isf', "'-x"], 'dz': [-1.5, 0.0, 2.0]}
    """
    out = df.copy()
    geom = out.geometry.name if isinstance(out, gpd.GeoDataFrame) else None
    for c in out.columns:
        if c == geom or not (out[c].dtype == object or pd.api.types.is_string_dtype(out[c])):
            continue
        out[c] = out[c].map(_safe_text)
    return out


def _safe_text(value):
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value

def corridor_table(analysis: Analysis) -> pd.DataFrame:
    """The corridor table as written to ``corridors.csv`` (no geometry), rounded sensibly.

    ``first_date`` and ``last_date`` are text at the precision of their events
    (:func:`gapmap.incidents.format_date_columns`): ``2016`` for an event dated only to its
    year. The report and the terminal summary print this table as it is.
    """
    df = format_date_columns(
        pd.DataFrame(analysis.corridors.drop(columns=analysis.corridors.geometry.name)))
    first = [c for c in CORRIDOR_COLUMNS if c in df.columns]
    rest = [c for c in df.columns if c not in first]
    df = df[first + rest]
    for c in df.columns:
        if c.endswith(("_lon", "_lat")):
            df[c] = df[c].round(6)
        elif pd.api.types.is_float_dtype(df[c]):
            df[c] = df[c].round(4)
    return df


def _to_wgs84(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    out = format_date_columns(gdf.to_crs(4326))
    for c in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[c]):
            out[c] = out[c].dt.strftime("%Y-%m-%d")
    return out


def _layers(analysis: Analysis) -> dict[str, gpd.GeoDataFrame]:
    layers = {
        "corridors": analysis.corridors,
        "minor_corridors": analysis.minor,
        "seam": analysis.seam,
        "gap": analysis.gap,
        "zones": analysis.zones,
        "study_area": gpd.GeoDataFrame(geometry=[analysis.study_area], crs=analysis.crs),
    }
    if analysis.posts is not None:
        layers["posts"] = analysis.posts
    if isinstance(analysis.incidents, gpd.GeoDataFrame):
        layers["incidents"] = analysis.incidents
    return layers


def write_metrics(analysis: Analysis, out_dir: str | os.PathLike,
                  extra_layers: dict[str, gpd.GeoDataFrame] | None = None,
                  tables: Mapping[str, pd.DataFrame | None] | None = None) -> dict[str, Path]:
    """Write ``corridors.csv``, ``corridors.geojson``, ``seam.geojson``, ``gap.geojson``,
    ``summary.json`` and ``gapmap.gpkg`` (every layer) into ``out_dir``, atomically.

    ``tables`` (file name → table, e.g. ``{"by_area.csv": breakdown(...)}``; ``None`` values
    are skipped) are written as CSV in the same folder and the same atomic step: a run that
    fails while writing any of them leaves the whole previous folder as it was.

    Returns the written paths by name.

    Examples
    --------
    >>> paths = write_metrics(result, "out/run1")  # doctest: +SKIP
    >>> sorted(paths)  # doctest: +SKIP
    ['corridors.csv', 'corridors.geojson', 'gap.geojson', 'gapmap.gpkg', 'seam.geojson', 'summary.json']
    """
    out = Path(out_dir)
    written = {}
    layers = _layers(analysis)
    layers.update(extra_layers or {})
    with atomic_dir(out) as stage:
        safe_cells(corridor_table(analysis)).to_csv(stage / "corridors.csv", index=False)
        for name, frame in (tables or {}).items():
            if frame is not None:
                safe_cells(frame.round(4)).to_csv(stage / name, index=False)
        for name in ("corridors", "seam", "gap"):
            _to_wgs84(layers[name]).to_file(stage / f"{name}.geojson", driver="GeoJSON")
        (stage / "summary.json").write_text(json.dumps(analysis.to_dict(), indent=2,
                                                       ensure_ascii=False) + "\n")
        gpkg = stage / "gapmap.gpkg"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for name, layer in layers.items():
                if layer is None:
                    continue
                lay = safe_cells(layer)
                for c in lay.columns:
                    if c != lay.geometry.name and lay[c].dtype == object:
                        lay[c] = lay[c].astype("string")
                lay.to_file(gpkg, layer=name, driver="GPKG")
        names = [p.name for p in stage.iterdir()]
    for n in names:
        written[n] = out / n
    log.info("wrote %s", ", ".join(sorted(written)))
    return written


def format_summary(analysis: Analysis) -> str:
    """A readable plain-text summary and corridor table for the terminal."""
    s = analysis.summary
    lines = [
        f"gapmap — {s['side_a']} vs {s['side_b']}",
        f"  seam length          {s['seam_length_km']:10.1f} km",
        f"  unguarded            {s['unguarded_length_km']:10.1f} km "
        f"({100 * (s['unguarded_share'] if np.isfinite(s['unguarded_share']) else 0):.1f}%)",
        f"  corridors            {s['corridors']:10d}   (+{s['minor_corridors']} shorter than "
        f"{analysis.settings.min_length_km:g} km)",
        f"  longest corridor     {s['longest_corridor_km']:10.1f} km",
        f"  mean seam width      {s['width_mean_km']:10.1f} km",
        f"  gap area             {s['gap_area_km2']:10.0f} km²",
    ]
    if "exploitation_ratio" in s:
        r = s["exploitation_ratio"]
        lines.append(f"  incidents            {s.get('incidents_total', 0):10d}   "
                     f"({s.get('incidents_in_gap', 0)} in the gap)")
        lines.append(f"  exploitation ratio   {r:10.3g}   (95% CI {s['exploitation_ratio_low']:.3g}"
                     f"–{s['exploitation_ratio_high']:.3g})")
    table = corridor_table(analysis)
    if len(table):
        cols = [c for c in ("corridor_id", "length_km", "width_min_km", "width_mean_km",
                            "width_max_km", "slope_mean_deg", "crossing_hours", "incidents")
                if c in table.columns]
        lines.append("")
        lines.append(table[cols].head(20).to_string(index=False, float_format=lambda v: f"{v:.1f}"))
        if len(table) > 20:
            lines.append(f"  … {len(table) - 20} more in corridors.csv")
    return "\n".join(lines)
