"""Choosing a metric CRS and measuring geodesically.

gapmap computes in a local metric CRS chosen for the data: the UTM zone when the data lies
within one zone (with a 1° margin), otherwise an azimuthal equidistant projection centred on the
data. Reported lengths and areas are geodesic (WGS84 ellipsoid, :class:`pyproj.Geod`), so they
do not depend on the projection's scale error.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from pyproj import CRS, Geod, Transformer

from .errors import InputError, ProjectionWarning

__all__ = ["metric_crs", "check_crs", "data_bounds", "geodesic_length_km", "geodesic_area_km2", "to_lonlat", "GEOD"]

GEOD = Geod(ellps="WGS84")


def metric_crs(*layers: gpd.GeoDataFrame | gpd.GeoSeries | None, crs: str | None = None) -> CRS:
    """Choose a metric CRS for the layers (or validate the one given).

    Data across the antimeridian is measured around it (longitudes taken modulo 360), so its
    CRS is centred on the data rather than on longitude 0.

    Parameters
    ----------
    *layers
        GeoDataFrames/GeoSeries with a CRS; ``None`` entries are skipped.
    crs
        An explicit CRS; must be projected with metre units, and its scale error over the
        data at most :data:`MAX_SCALE_ERROR` (a UTM zone far from the data distorts widths;
        refused with the error in per cent). Data outside the CRS's area of use but within
        that tolerance gives a :class:`~gapmap.errors.ProjectionWarning`.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> g = gpd.GeoSeries([shapely.Point(44.4, 35.5)], crs=4326)
    >>> metric_crs(g).to_epsg()
    32638
    >>> metric_crs(g, crs="EPSG:32618")
    Traceback (most recent call last):
    ...
    gapmap.errors.InputError: --crs: EPSG:32618 distorts distances over the data by up to 42% (more than 1%): its area of use is 78°W to 72°W, the data 44.4°E to 44.4°E — omit --crs (or crs in the scenario): a CRS centred on the data is chosen; or give one whose area of use covers the data
    """
    bounds = data_bounds(*layers)
    if crs is not None:
        return _checked_crs(crs, bounds)
    if bounds is None:
        raise InputError(None, None, "no data to choose a CRS from", "give non-empty layers")
    west, south, east, north = bounds
    lon0 = _wrap((west + east) / 2)
    lat0 = (south + north) / 2
    zone_w = math.floor((_wrap(west) + 180) / 6)
    zone_e = math.floor((_wrap(east) + 180) / 6)
    zone_c = math.floor((lon0 + 180) / 6) % 60 + 1
    if zone_w == zone_e and east - west < 6 and abs(lat0) < 80:
        epsg = (32600 if lat0 >= 0 else 32700) + zone_c
        return CRS.from_epsg(epsg)
    return CRS.from_proj4(f"+proj=aeqd +lat_0={lat0:.4f} +lon_0={lon0:.4f} +x_0=0 +y_0=0 "
                          "+datum=WGS84 +units=m +no_defs")


#: Largest scale error of a given ``crs`` over the data (1% of every width).
MAX_SCALE_ERROR = 0.01


def _wrap(lon: float) -> float:
    """Longitude into [-180, 180)."""
    return (lon + 180.0) % 360.0 - 180.0


def data_bounds(*layers) -> tuple[float, float, float, float] | None:
    """Lon/lat bounds (west, south, east, north) of the layers, ``None`` without data.

    ``east`` may exceed 180 when the data crosses the antimeridian: the bounds are the
    narrower of the two ways round.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> g = gpd.GeoSeries([shapely.Point(179.5, 0), shapely.Point(-179.5, 1)], crs=4326)
    >>> data_bounds(g)
    (179.5, 0.0, 180.5, 1.0)
    """
    boxes = []
    for layer in layers:
        if layer is None or len(layer) == 0:
            continue
        geo = layer.geometry if isinstance(layer, gpd.GeoDataFrame) else layer
        b = shapely.bounds(np.asarray(geo.to_crs(4326).values, dtype=object))
        b = b[np.all(np.isfinite(b), axis=1)]
        if len(b):
            boxes.append(b)
    if not boxes:
        return None
    b = np.concatenate(boxes)
    south, north = float(b[:, 1].min()), float(b[:, 3].max())
    west, east = float(b[:, 0].min()), float(b[:, 2].max())
    # The other way round: longitudes in [0, 360); narrower when the data spans the antimeridian.
    # A feature whose own box spans more than 180° crosses it in lon/lat terms too.
    lo = np.where(b[:, 0] < 0, b[:, 0] + 360, b[:, 0])
    hi = np.where(b[:, 2] < 0, b[:, 2] + 360, b[:, 2])
    wide = (b[:, 2] - b[:, 0]) > 180
    lo = np.where(wide, b[:, 2], lo)
    hi = np.where(wide, b[:, 0] + 360, hi)
    lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
    if (hi.max() - lo.min()) < (east - west) - 1e-9:
        west, east = float(lo.min()), float(hi.max())
        if west >= 180:
            west, east = west - 360, east - 360
    return west, south, east, north


def check_crs(crs) -> CRS:
    """The CRS ``crs`` names, if it is projected in metres (else an InputError).

    Examples
    --------
    >>> check_crs("EPSG:32638").name
    'WGS 84 / UTM zone 38N'
    """
    try:
        c = CRS.from_user_input(crs)
    except (pyproj.exceptions.CRSError, TypeError, ValueError) as exc:
        raise InputError("--crs", None, f"unknown CRS {crs!r}",
                         "give e.g. EPSG:32638, or omit --crs") from exc
    unit = c.axis_info[0].unit_name if c.axis_info else ""
    if not c.is_projected or unit not in ("metre", "meter"):
        raise InputError("--crs", None, f"{crs} is not a projected CRS in metres",
                         "give a projected metric CRS such as a UTM zone, or omit --crs")
    return c


def _checked_crs(crs, bounds) -> CRS:
    c = check_crs(crs)
    if bounds is None:
        return c
    err = _scale_error(c, bounds)
    aou = c.area_of_use
    where = ""
    if aou is not None:
        where = (f": its area of use is {_deg(aou.west, 'EW')} to {_deg(aou.east, 'EW')}, the "
                 f"data {_deg(bounds[0], 'EW')} to {_deg(bounds[2], 'EW')}")
    if not err <= MAX_SCALE_ERROR:
        pct = "over 1000" if not np.isfinite(err) or err > 10 else f"{100 * err:.0f}"
        raise InputError("--crs", None, f"{crs} distorts distances over the data by up to "
                         f"{pct}% (more than {100 * MAX_SCALE_ERROR:g}%){where}",
                         "omit --crs (or crs in the scenario): a CRS centred on the data is "
                         "chosen; or give one whose area of use covers the data")
    if aou is not None and not _inside(bounds, aou):
        warnings.warn(f"the data extends outside the area of use of {crs}{where}; distances "
                      f"are off by up to {100 * err:.2f}%", ProjectionWarning, stacklevel=3)
    return c


def _deg(lon: float, hemi: str) -> str:
    lon = _wrap(lon) if abs(lon) > 180 else lon
    return f"{abs(lon):.4g}°{hemi[0] if lon >= 0 else hemi[1]}"


def _inside(bounds, aou) -> bool:
    west, south, east, north = bounds
    a_w, a_e = aou.west, aou.east if aou.east >= aou.west else aou.east + 360
    w = west if west >= a_w - 1e-9 else west + 360
    return a_w - 1e-9 <= w and w + (east - west) <= a_e + 1e-9 and \
        aou.south - 1e-9 <= south and north <= aou.north + 1e-9


def _scale_error(c: CRS, bounds) -> float:
    """Largest scale error |k − 1| of ``c`` on a 5×5 grid over the bounds."""
    west, south, east, north = bounds
    lon, lat = np.meshgrid(np.linspace(west, east, 5), np.linspace(south, north, 5))
    lon, lat = _wrap_array(lon.ravel()), np.clip(lat.ravel(), -89.9, 89.9)
    try:
        f = pyproj.Proj(c).get_factors(lon, lat, errcheck=False)
        k = np.concatenate([np.asarray(f.meridional_scale), np.asarray(f.parallel_scale)])
    except Exception:  # a projection that cannot map the data at all (pyproj raises ProjError)
        return float("inf")
    if not np.all(np.isfinite(k)):
        return float("inf")
    return float(np.abs(k - 1).max())


def _wrap_array(lon: np.ndarray) -> np.ndarray:
    return (lon + 180.0) % 360.0 - 180.0


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
        geoms = _segmentize(geoms, densify_m)
    t = Transformer.from_crs(crs, 4326, always_xy=True)
    return shapely.transform(geoms, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def _lonlat(geoms, crs) -> np.ndarray:
    """Geometries in lon/lat, densified so that edges follow the ellipsoid closely enough."""
    if isinstance(geoms, gpd.GeoSeries):
        crs = geoms.crs if crs is None else crs
        geoms = geoms.values
    c = CRS.from_user_input(crs)
    arr = np.asarray(geoms, dtype=object)
    return _segmentize(arr, 0.01) if c.is_geographic else to_lonlat(arr, c)


def _segmentize(geoms: np.ndarray, step: float) -> np.ndarray:
    """shapely.segmentize, leaving alone lines of repeated points (GEOS refuses those)."""
    geoms = np.array(geoms, dtype=object)
    ok = ~shapely.is_missing(geoms)
    ok[ok] = shapely.length(geoms[ok]) > 0
    geoms[ok] = shapely.segmentize(geoms[ok], step)
    return geoms


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
