"""Breakdowns by area: the summary figures per governorate, district or any study-area field.

:func:`breakdown` cuts the seam, the unguarded stretches and the gap region at the borders of
the areas (for this table only: the corridors of the analysis stay whole) and measures each
piece as the summary does (geodesic lengths and areas), so the rows add up to the totals of
``summary.json``. One row per value of the field (polygons sharing a value are merged).

Overlapping areas would count a piece of seam twice. :func:`load_areas` therefore refuses a
layer whose polygons overlap by more than :data:`OVERLAP_TOLERANCE` of the layer's area (a layer
of districts mixed with governorates, say) and gives the slivers that traced boundaries always
leave (measured on the sample's COD-AB districts: under 10⁻⁸ of the area) to the first polygon
in file order, so every point counts once.

>>> import geopandas as gpd, shapely
>>> from gapmap import analyze, parse_side
>>> zones = gpd.GeoDataFrame({"force": ["a", "b"]}, crs=32638,
...     geometry=[shapely.box(400e3, 3900e3, 410e3, 4000e3),
...               shapely.box(430e3, 3900e3, 440e3, 4000e3)])
>>> areas = gpd.GeoDataFrame({"ADM1_EN": ["north", "south"]}, crs=32638,
...     geometry=[shapely.box(380e3, 3960e3, 460e3, 4000e3),
...               shapely.box(380e3, 3900e3, 460e3, 3960e3)])
>>> res = analyze(zones, parse_side("A=a"), parse_side("B=b"), study_area=areas)
>>> table = breakdown(res, areas, "ADM1_EN")
>>> table[["ADM1_EN", "seam_length_km", "unguarded_share"]].round(1).to_string(index=False)
'ADM1_EN  seam_length_km  unguarded_share\\n  north            40.0              1.0\\n  south            60.0              1.0'
"""

from __future__ import annotations

import os

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from .corridors import _components
from .crs import geodesic_area_km2, geodesic_length_km
from .errors import InputError

__all__ = ["BY_AREA_COLUMNS", "OVERLAP_TOLERANCE", "breakdown", "load_areas", "check_field"]

#: Columns of ``by_area.csv`` after the field itself (see the contract, "Breakdowns by area").
BY_AREA_COLUMNS = ["seam_length_km", "unguarded_length_km", "unguarded_share",
                   "longest_corridor_km", "gap_area_km2", "incidents", "incidents_in_gap"]
#: Share of the layer's area two polygons may overlap before the layer is refused.
OVERLAP_TOLERANCE = 1e-4
#: Label of the row for what lies outside every area (only when there is any).
OUTSIDE = "(outside the areas)"


def check_field(areas: gpd.GeoDataFrame, field: str, source: str | None = None) -> None:
    """Raise :class:`InputError` unless ``areas`` has ``field`` (the message lists the fields).

    >>> import geopandas as gpd, shapely
    >>> check_field(gpd.GeoDataFrame({"ADM2_EN": ["x"]}, geometry=[shapely.box(0, 0, 1, 1)]),
    ...             "ADM1_EN")
    Traceback (most recent call last):
    ...
    gapmap.errors.InputError: study area: ADM1_EN: no such field — use one of: ADM2_EN
    """
    if field in areas.columns and field != areas.geometry.name:
        return
    names = [c for c in areas.columns if c != areas.geometry.name]
    src = source or areas.attrs.get("source") or "study area"
    raise InputError(src, field, "no such field",
                     f"use one of: {', '.join(map(str, names))}" if names
                     else "the study area has no attribute fields; add one (e.g. ADM1_EN)")


def load_areas(path: str | os.PathLike | gpd.GeoDataFrame, field: str, *,
               layer: str | None = None) -> gpd.GeoDataFrame:
    """Read the study-area layer for a breakdown by ``field``: disjoint polygons, one per row.

    Parameters
    ----------
    path
        The study-area layer (or a GeoDataFrame).
    field
        The attribute to break down by.
    layer
        Layer name in a multi-layer source.

    Raises
    ------
    InputError
        When the field is missing, or polygons overlap by more than :data:`OVERLAP_TOLERANCE`
        of the layer's area.
    """
    from .io import read_layer

    if isinstance(path, gpd.GeoDataFrame):
        gdf, src = path, path.attrs.get("source", "study area")
    else:
        gdf, src = read_layer(path, layer, what="study area", geom_types=("Polygon",)), str(path)
    check_field(gdf, field, src)
    gdf = gdf[[field, gdf.geometry.name]].reset_index(drop=True)
    gdf.attrs["source"] = src
    return _disjoint(gdf, field, src)


def _disjoint(gdf: gpd.GeoDataFrame, field: str, src: str) -> gpd.GeoDataFrame:
    """Refuse real overlaps; give slivers to the first polygon in file order."""
    geoms = shapely.make_valid(gdf.geometry.values)
    total = float(shapely.area(shapely.union_all(geoms)))
    tree = shapely.STRtree(geoms)
    i, j = tree.query(geoms, predicate="intersects")
    pairs = i < j
    i, j = i[pairs], j[pairs]
    out = geoms.copy()
    if len(i):
        over = shapely.area(shapely.intersection(geoms[i], geoms[j]))
        worst = int(np.argmax(over))
        if total > 0 and over[worst] > OVERLAP_TOLERANCE * total:
            a, b = gdf[field].iloc[i[worst]], gdf[field].iloc[j[worst]]
            raise InputError(src, field, f"areas {a!r} and {b!r} overlap over "
                             f"{over[worst] / total:.2%} of the layer (a point would count "
                             "twice)", "give a layer of non-overlapping polygons (e.g. only "
                             "districts, or only governorates)")
        for k in np.unique(j[over > 0]):
            earlier = i[(j == k) & (over > 0)]
            out[k] = shapely.difference(out[k], shapely.union_all(geoms[earlier]))
    return gpd.GeoDataFrame({field: gdf[field].to_numpy()}, geometry=out, crs=gdf.crs)


def _cut_lengths(lines: np.ndarray, area: shapely.Geometry, crs: CRS) -> float:
    if len(lines) == 0 or area.is_empty:
        return 0.0
    pieces = shapely.intersection(lines, area)
    return float(np.nansum(geodesic_length_km(pieces, crs)))


def _longest_piece(corridors: np.ndarray, area: shapely.Geometry, crs: CRS) -> float:
    """Longest connected piece of any one corridor inside ``area`` (km)."""
    best = 0.0
    if len(corridors) == 0 or area.is_empty:
        return best
    cut = shapely.intersection(corridors, area)
    for geom in cut[~shapely.is_empty(cut)]:  # per corridor crossing the area (few)
        lines = shapely.get_parts(geom)
        lines = lines[np.isin(shapely.get_type_id(lines), (1, 5))]
        comps = _components(lines, simplify_m=0)
        if comps:
            best = max(best, float(np.max(geodesic_length_km(np.array(comps, dtype=object),
                                                             crs))))
    return best


def _incident_counts(analysis, groups: list[shapely.Geometry]) -> tuple[np.ndarray, np.ndarray]:
    inc = analysis.incidents
    n = len(groups)
    if inc is None or not len(inc):
        empty = np.full(n, np.nan) if inc is None else np.zeros(n)
        return empty, empty.copy()
    pts = inc.to_crs(analysis.crs) if inc.crs is not None else inc
    used = pts["used"].to_numpy(bool) if "used" in pts.columns else np.ones(len(pts), bool)
    in_gap = pts["in_gap"].to_numpy(bool) if "in_gap" in pts.columns else np.zeros(len(pts), bool)
    in_study = (pts["in_study_area"].to_numpy(bool) if "in_study_area" in pts.columns
                else np.ones(len(pts), bool))
    xy = shapely.get_coordinates(pts.geometry.values)
    keep = used & in_study
    counts, gaps = np.zeros(n), np.zeros(n)
    for k, g in enumerate(groups):
        inside = shapely.contains_xy(g, xy[:, 0], xy[:, 1]) & keep if not g.is_empty \
            else np.zeros(len(xy), bool)
        counts[k] = inside.sum()
        gaps[k] = (inside & in_gap).sum()
    return counts, gaps


def breakdown(analysis, areas: gpd.GeoDataFrame, field: str) -> pd.DataFrame:
    """The summary figures per value of ``field`` of ``areas`` (``by_area.csv``).

    Parameters
    ----------
    analysis
        A :class:`gapmap.Analysis` (with incidents for the incident columns).
    areas
        Polygons carrying ``field``, usually the study-area layer (see :func:`load_areas`).
    field
        The attribute whose values make the rows, e.g. ``ADM1_EN`` (governorates).

    Returns
    -------
    pandas.DataFrame
        One row per value of ``field``: ``field`` then :data:`BY_AREA_COLUMNS`. The lengths and
        areas of the rows add up to the summary's totals; a last row
        ``"(outside the areas)"`` holds what lies outside every area, when anything does.
        ``incidents`` and ``incidents_in_gap`` count the events used for the analysis (coarse
        locations left out as in the summary); they are empty without incidents.
    """
    check_field(areas, field)
    crs = CRS.from_user_input(analysis.crs)
    areas_m = areas.to_crs(crs) if areas.crs is not None else areas.set_crs(crs)
    values = areas_m[field].astype(object).where(areas_m[field].notna(), "(none)")
    names = list(pd.unique(values))
    groups = [shapely.make_valid(shapely.union_all(areas_m.geometry.values[(values == v).to_numpy()]))
              for v in names]
    covered = shapely.union_all(groups)
    seam = analysis.seam.geometry.values
    unguarded = np.concatenate([analysis.corridors.geometry.values,
                                analysis.minor.geometry.values])
    corridors = analysis.corridors.geometry.values
    gap = analysis.gap.geometry.values[0] if len(analysis.gap) else shapely.Polygon()
    outside = shapely.difference(analysis.study_area, covered)
    rows = [_row(g, seam, unguarded, corridors, gap, crs) for g in groups]
    out_row = _row(outside, seam, unguarded, corridors, gap, crs)
    inc, inc_gap = _incident_counts(analysis, groups + [outside])
    if out_row["seam_length_km"] > 1e-9 or out_row["gap_area_km2"] > 1e-9 \
            or (np.nan_to_num(inc[-1]) > 0):
        names.append(OUTSIDE)
        rows.append(out_row)
    else:
        inc, inc_gap = inc[:-1], inc_gap[:-1]
    table = pd.DataFrame(rows)
    table.insert(0, field, names)
    table["incidents"] = pd.array(inc, dtype="Int64") if np.isfinite(inc).all() \
        else pd.array([pd.NA] * len(inc), dtype="Int64")
    table["incidents_in_gap"] = pd.array(inc_gap, dtype="Int64") if np.isfinite(inc_gap).all() \
        else pd.array([pd.NA] * len(inc_gap), dtype="Int64")
    return table[[field] + BY_AREA_COLUMNS]


def _row(area, seam, unguarded, corridors, gap, crs) -> dict:
    if not area.is_empty:
        shapely.prepare(area)
    seam_km = _cut_lengths(seam, area, crs)
    ung_km = _cut_lengths(unguarded, area, crs)
    gap_piece = shapely.intersection(gap, area) if not (gap.is_empty or area.is_empty) \
        else shapely.Polygon()
    return {
        "seam_length_km": seam_km,
        "unguarded_length_km": ung_km,
        "unguarded_share": ung_km / seam_km if seam_km > 0 else np.nan,
        "longest_corridor_km": _longest_piece(corridors, area, crs),
        "gap_area_km2": float(geodesic_area_km2([gap_piece], crs)[0])
        if not gap_piece.is_empty else 0.0,
    }
