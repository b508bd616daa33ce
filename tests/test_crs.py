"""Metric CRS choice and geodesic measures."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Geod

from gapmap import InputError, geodesic_area_km2, geodesic_length_km, metric_crs


def test_utm_zone_for_data_in_one_zone():
    g = gpd.GeoSeries([shapely.Point(44.4, 35.5), shapely.Point(45.0, 36.0)], crs=4326)
    assert metric_crs(g).to_epsg() == 32638


def test_local_equidistant_when_data_spans_zones():
    g = gpd.GeoSeries([shapely.Point(41.5, 36.3), shapely.Point(45.4, 34.3)], crs=4326)
    c = metric_crs(g)
    assert c.to_epsg() is None and c.coordinate_operation.method_name.startswith("Azimuthal")
    assert c.is_projected


def test_southern_hemisphere_zone():
    g = gpd.GeoSeries([shapely.Point(-63.5, -20.0)], crs=4326)
    assert metric_crs(g).to_epsg() == 32720


def test_explicit_crs_must_be_metric():
    assert metric_crs(crs="EPSG:32638").to_epsg() == 32638
    with pytest.raises(InputError, match="projected"):
        metric_crs(crs="EPSG:4326")
    with pytest.raises(InputError, match="unknown CRS"):
        metric_crs(crs="EPSG:999999")


def test_length_matches_geod_in_any_projection():
    geod = Geod(ellps="WGS84")
    line = shapely.LineString([(41.8, 36.3), (44.4, 35.5), (45.4, 34.3)])
    ref = geod.geometry_length(shapely.segmentize(line, 0.001)) / 1000
    for crs in (4326, 32638, 32637):
        g = gpd.GeoSeries([line], crs=4326).to_crs(crs)
        # Projected straight segments are not geodesics; densify before projecting.
        g = gpd.GeoSeries([shapely.segmentize(line, 0.001)], crs=4326).to_crs(crs)
        assert geodesic_length_km(g)[0] == pytest.approx(ref, rel=1e-4)


def test_area_matches_geod():
    geod = Geod(ellps="WGS84")
    poly = shapely.segmentize(shapely.box(43, 34, 44, 35), 0.001)
    ref = abs(geod.geometry_area_perimeter(poly)[0]) / 1e6
    g = gpd.GeoSeries([poly], crs=4326).to_crs(32638)
    assert geodesic_area_km2(g)[0] == pytest.approx(ref, rel=1e-4)
    assert np.isclose(geodesic_area_km2(gpd.GeoSeries([poly], crs=4326))[0], ref, rtol=1e-6)
