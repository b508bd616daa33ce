"""Choosing a metric CRS and measuring geodesically.

gapmap computes in a local metric CRS chosen for the data: the UTM zone when the data lies
within one zone (with a 1° margin), otherwise an azimuthal equidistant projection centred on the
data. Reported lengths and areas are geodesic (WGS84 ellipsoid, :class:`pyproj.Geod`), so they
do not depend on the projection's scale error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from pyproj import CRS, Geod, Transformer

from .errors import InputError

__all__ = ["metric_crs", "geodesic_length_km", "geodesic_area_km2", "to_lonlat", "GEOD"]

GEOD = Geod(ellps="WGS84")


def metric_crs(*layers: gpd.GeoDataFrame | gpd.GeoSeries | None, crs: str | None = None) -> CRS:
    """Choose a metric CRS for the layers (or validate the one given).

    Parameters
    ----------
    *layers
        GeoDataFrames/GeoSeries with a CRS; ``None`` entries are skipped.
    crs
        An explicit CRS; must be projected with metre units.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> g = gpd.GeoSeries([shapely.Point(44.4, 35.5)], crs=4326)
    >>> metric_crs(g).to_epsg()
    32638
    """
    if crs is not None:
        try:
            c = CRS.from_user_input(crs)
        except pyproj.exceptions.CRSError as exc:
            raise InputError("--crs", None, f"unknown CRS {crs!r}", "give e.g. EPSG:32638") from exc
        unit = c.axis_info[0].unit_name if c.axis_info else ""
        if not c.is_projected or unit not in ("metre", "meter"):
            raise InputError("--crs", None, f"{crs} is not a projected CRS in metres",
                             "give a projected metric CRS such as a UTM zone, or omit --crs")
        return c
    bounds = []
    for layer in layers:
        if layer is None or len(layer) == 0:
            continue
        b = layer.to_crs(4326).total_bounds
        if np.all(np.isfinite(b)):
            bounds.append(b)
    if not bounds:
        raise InputError(None, None, "no data to choose a CRS from", "give non-empty layers")
    b = np.array(bounds)
    west, south, east, north = b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()
    lon0, lat0 = (west + east) / 2, (south + north) / 2
    zone_w = math.floor((west + 180) / 6)
    zone_e = math.floor((east + 180) / 6)
    zone_c = math.floor((lon0 + 180) / 6) + 1
    if zone_w == zone_e and abs(lat0) < 80:
        epsg = (32600 if lat0 >= 0 else 32700) + zone_c
        return CRS.from_epsg(epsg)
    return CRS.from_proj4(f"+proj=aeqd +lat_0={lat0:.4f} +lon_0={lon0:.4f} +x_0=0 +y_0=0 "
                          "+datum=WGS84 +units=m +no_defs")


def to_lonlat(geoms, crs: CRS, densify_m: float = 1000.0) -> np.ndarray:
    """Transform projected geometries to lon/lat, densifying first so edges follow the
    projection's curves.

    Examples
    --------
    >>> import shapely
    >>> from pyproj import CRS
    >>> line = shapely.LineString([(500_000, 3_900_000), (500_000, 3_905_000)])
    >>> ll = to_lonlat([line], CRS.from_epsg(32638))[0]
    >>> len(ll.coords), [round(v, 4) for v in ll.coords[0]]
    (6, [45.0, 35.2431])
    """
    geoms = np.asarray(geoms, dtype=object)
    if densify_m:
        geoms = shapely.segmentize(geoms, densify_m)
    t = Transformer.from_crs(crs, 4326, always_xy=True)
    return shapely.transform(geoms, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def _lonlat(geoms, crs) -> np.ndarray:
    """Geometries in lon/lat, densified so that edges follow the ellipsoid closely enough."""
    if isinstance(geoms, gpd.GeoSeries):
        crs = geoms.crs if crs is None else crs
        geoms = geoms.values
    c = CRS.from_user_input(crs)
    arr = np.asarray(geoms, dtype=object)
    return shapely.segmentize(arr, 0.01) if c.is_geographic else to_lonlat(arr, c)


def geodesic_length_km(geoms: Iterable | gpd.GeoSeries, crs: CRS | None = None) -> np.ndarray:
    """Geodesic length (km) of projected or lon/lat line geometries.

    Projected geometries are densified every km and brought to lon/lat first, so each edge
    follows the projection's curve; the length is then measured on the WGS84 ellipsoid.

    Parameters
    ----------
    geoms
        Line geometries (a GeoSeries carries its CRS; otherwise give ``crs``). Empty or
        missing geometries measure 0.
    crs
        The geometries' CRS, when ``geoms`` is not a GeoSeries.

    Examples
    --------
    One degree of latitude along the meridian 44° E, as :class:`pyproj.Geod` measures it:

    >>> import shapely
    >>> round(float(geodesic_length_km([shapely.LineString([(44, 34), (44, 35)])], 4326)[0]), 2)
    110.93
    >>> round(GEOD.inv(44, 34, 44, 35)[2] / 1000, 2)
    110.93

    The same line in UTM 38N (grid scale ≈ 0.9996 there) measures the same:

    >>> import geopandas as gpd
    >>> utm = gpd.GeoSeries([shapely.LineString([(44, 34), (44, 35)])], crs=4326).to_crs(32638)
    >>> round(float(geodesic_length_km(utm)[0]), 2)
    110.93
    >>> geodesic_length_km([None, shapely.LineString()], 4326).tolist()
    [0.0, 0.0]
    """
    return np.array([GEOD.geometry_length(g) / 1000.0 if g is not None and not g.is_empty else 0.0
                     for g in _lonlat(geoms, crs)])


def geodesic_area_km2(geoms: Iterable | gpd.GeoSeries, crs: CRS | None = None) -> np.ndarray:
    """Geodesic area (km²) of projected or lon/lat polygons.

    Examples
    --------
    A 1° × 1° cell at 34–35° N, against :class:`pyproj.Geod` on the densified cell, and the
    same cell in Web Mercator, whose grid area is about 1.48 times larger there:

    >>> import geopandas as gpd, shapely
    >>> cell = gpd.GeoSeries([shapely.box(44, 34, 45, 35)], crs=4326)
    >>> round(float(geodesic_area_km2(cell)[0]), 1)
    10187.8
    >>> ref = GEOD.geometry_area_perimeter(shapely.segmentize(shapely.box(44, 34, 45, 35), 0.001))
    >>> round(abs(ref[0]) / 1e6, 1)
    10187.8
    >>> merc = cell.to_crs(3857)
    >>> round(float(geodesic_area_km2(merc)[0]), 1), round(float(merc.area.iloc[0] / 1e6))
    (10187.8, 15037)
    """
    return np.array([abs(GEOD.geometry_area_perimeter(g)[0]) / 1e6
                     if g is not None and not g.is_empty else 0.0 for g in _lonlat(geoms, crs)])
