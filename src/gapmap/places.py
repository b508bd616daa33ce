"""Named places: towns and villages that maps, sites and reports are described by.

A places layer is points with a name (GeoNames extracts, OSM ``place=*`` nodes, a gazetteer
CSV turned into a layer …) and, when known, a population. :func:`describe_locations` names any
point by its nearest place and where it lies from it — "near Daquq, 4 km NE" — which is how a
proposed post is read out on a radio net or in a briefing.

Distances and bearings are geodesic (WGS84, :class:`pyproj.Geod`). The nearest place is found
among the 8 nearest on the unit sphere (a k-d tree on 3-D unit vectors, where chord length
orders points as great-circle distance does) and then chosen by geodesic distance, so a layer
of tens of thousands of places costs a tree query, not a distance matrix.
"""

from __future__ import annotations

import os

import geopandas as gpd
import numpy as np
import pandas as pd

from .errors import InputError

__all__ = ["load_places", "describe_locations", "NAME_FIELDS", "COMPASS"]

#: Name fields looked for, in this order, when none is given (case-insensitive; then any
#: ``ADM<n>_EN`` field of an administrative layer).
NAME_FIELDS = ("name", "asciiname", "geonames_name")

#: The 8-point compass, clockwise from north.
COMPASS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")

#: Closer than this (km) a point is "at" the place rather than "near" it.
AT_KM = 1.0

#: Candidates checked geodesically after the spherical k-d tree query.
_CANDIDATES = 8


def _name_column(gdf: gpd.GeoDataFrame, src, name_field: str | None) -> str:
    cols = [c for c in gdf.columns if c != gdf.geometry.name]
    fields = ", ".join(map(str, cols)) or "none"
    if name_field is not None:
        for c in cols:
            if str(c) == name_field:
                return c
        for c in cols:
            if str(c).lower() == name_field.lower():
                return c
        raise InputError(src, name_field, f"name field not found in places (fields: {fields})",
                         "name the field that holds the place names with places_name_field "
                         "(scenario) or name_field=")
    for want in NAME_FIELDS:
        for c in cols:
            if str(c).lower() == want:
                return c
    for c in cols:
        s = str(c).upper()
        if s.startswith("ADM") and s.endswith("_EN"):
            return c
    raise InputError(src, "name", f"places have no name field (fields: {fields})",
                     "add a 'name' field, or say which field holds the names with "
                     "places_name_field in the scenario")


def load_places(src: str | os.PathLike | gpd.GeoDataFrame, *,
                name_field: str | None = None) -> gpd.GeoDataFrame:
    """Read a places layer: columns ``name`` (str), ``population`` (float, NaN unknown).

    Parameters
    ----------
    src
        A vector layer of points (any format :func:`gapmap.io.read_layer` reads), or a
        GeoDataFrame. Polygons (e.g. districts) are reduced to a point inside each.
    name_field
        The field holding the names; found by name when omitted (``name``, ``NAME``,
        ``Name``, ``asciiname``, ``geonames_name``, then ``ADM*_EN``).

    Returns
    -------
    geopandas.GeoDataFrame
        The places in their own CRS; rows without a name are dropped.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> raw = gpd.GeoDataFrame({"NAME": ["Daquq", None], "pop": [1, 2]}, crs=4326,
    ...                        geometry=[shapely.Point(44.45, 35.14), shapely.Point(44, 35)])
    >>> load_places(raw)[["name", "population"]].to_dict("records")
    [{'name': 'Daquq', 'population': nan}]
    >>> load_places(raw.drop(columns="NAME"))
    Traceback (most recent call last):
    ...
    gapmap.errors.InputError: places: name: places have no name field (fields: pop) — add a 'name' field, or say which field holds the names with places_name_field in the scenario
    """
    from .io import check_coordinates, read_layer

    if isinstance(src, gpd.GeoDataFrame):
        source = src.attrs.get("source", "places")
        if src.crs is None:
            raise InputError(source, "crs", "places have no coordinate reference system",
                             "set the layer's CRS")
        check_coordinates(src, source, "places")
        gdf = src
    else:
        source = str(src)
        gdf = read_layer(src, what="places", geom_types=("Point", "Polygon"))
    col = _name_column(gdf, source, name_field)
    names = gdf[col].astype("string").str.strip()
    keep = (names.notna() & (names != "")).to_numpy()
    geom = gdf.geometry
    if len(gdf) and not geom.geom_type.isin(["Point"]).all():
        geom = geom.representative_point()
    pop_col = next((c for c in gdf.columns if str(c).lower() == "population"), None)
    pop = (pd.to_numeric(gdf[pop_col], errors="coerce").astype(float) if pop_col is not None
           else pd.Series(np.nan, index=gdf.index))
    out = gpd.GeoDataFrame({"name": names[keep].astype(str).to_numpy(),
                            "population": pop[keep].to_numpy(float)},
                           geometry=geom[keep].to_numpy(), crs=gdf.crs)
    out.attrs["source"] = str(source)
    return out


def _unit_vectors(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lo, la = np.radians(lon), np.radians(lat)
    return np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])


def _lonlat(gdf: gpd.GeoSeries | gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    geom = gdf.geometry if isinstance(gdf, gpd.GeoDataFrame) else gdf
    if geom.crs is None:
        raise InputError(getattr(gdf, "attrs", {}).get("source"), "crs",
                         "layer has no coordinate reference system", "set its CRS")
    if len(geom) and not geom.geom_type.isin(["Point"]).all():
        geom = geom.representative_point()
    ll = geom.to_crs(4326)
    return ll.x.to_numpy(float), ll.y.to_numpy(float)


def compass(azimuth_deg: float) -> str:
    """The 8-point compass direction of an azimuth (degrees clockwise from north).

    >>> compass(0), compass(44), compass(-90), compass(337.6)
    ('N', 'NE', 'W', 'N')
    """
    return COMPASS[int(np.floor(((azimuth_deg % 360) + 22.5) / 45.0)) % 8]


def describe_locations(points: gpd.GeoDataFrame | gpd.GeoSeries,
                       places: gpd.GeoDataFrame) -> pd.Series:
    """Name each point by its nearest place: ``"near Daquq, 4 km NE"`` or ``"at Daquq"``.

    The distance (rounded to whole km) and the 8-point bearing are geodesic, from the place
    to the point; within 1 km a point is "at" the place. Non-point geometries are described
    by a point inside them.

    Parameters
    ----------
    points
        Any layer with a CRS.
    places
        As :func:`load_places` returns (a ``name`` column).

    Returns
    -------
    pandas.Series
        Aligned to ``points``' index; empty strings when ``places`` is empty.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> towns = gpd.GeoDataFrame({"name": ["Daquq", "Tuz"]}, crs=4326,
    ...     geometry=[shapely.Point(44.45, 35.14), shapely.Point(44.65, 34.88)])
    >>> sites = gpd.GeoDataFrame(geometry=[shapely.Point(44.48, 35.165),
    ...     shapely.Point(44.651, 34.88), shapely.Point(44.65, 34.80)], crs=4326,
    ...     index=[7, 8, 9])
    >>> describe_locations(sites, towns).to_dict()
    {7: 'near Daquq, 4 km NE', 8: 'at Tuz', 9: 'near Tuz, 9 km S'}
    """
    from scipy.spatial import cKDTree

    from .crs import GEOD

    index = points.index
    if not len(points) or places is None or not len(places):
        return pd.Series([""] * len(points), index=index, dtype=object)
    plon, plat = _lonlat(places)
    lon, lat = _lonlat(points)
    k = min(_CANDIDATES, len(places))
    _, idx = cKDTree(_unit_vectors(plon, plat)).query(_unit_vectors(lon, lat), k=k)
    idx = np.asarray(idx).reshape(len(lon), k)
    az, _, dist = GEOD.inv(plon[idx].ravel(), plat[idx].ravel(),
                           np.repeat(lon, k), np.repeat(lat, k))
    dist = np.asarray(dist).reshape(len(lon), k)
    az = np.asarray(az).reshape(len(lon), k)
    best = np.argmin(dist, axis=1)
    rows = np.arange(len(lon))
    names = places["name"].astype(str).to_numpy()[idx[rows, best]]
    km = dist[rows, best] / 1000.0
    out = [f"at {n}" if d < AT_KM else f"near {n}, {int(round(d))} km {compass(a)}"
           for n, d, a in zip(names, km, az[rows, best])]
    return pd.Series(out, index=index, dtype=object)
