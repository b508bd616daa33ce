"""The extra layers a scenario names, computed for drawing: incidents, hillshade, coverage,
hot spots.

Drawing only draws (:mod:`gapmap.maps`, :mod:`gapmap.figures` and :mod:`gapmap.report` take
these results as they are); this module computes them from a scenario and its analysis.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import shapely

__all__ = ["scenario_layers", "shade"]

log = logging.getLogger(__name__)

def shade(dem):
    """Hillshade of an elevation :class:`~gapmap.terrain.Dem` as a Dem of shade values 1–255
    (NaN where gdaldem gives 0: edges and no data), the DEM's source kept.

    Examples
    --------
    >>> import numpy as np
    >>> from affine import Affine
    >>> from gapmap.terrain import Dem
    >>> flat = Dem(np.zeros((3, 3), np.float32), Affine(10, 0, 0, 0, -10, 30), 32638, "x.tif")
    >>> s = shade(flat)
    >>> float(s.array[1, 1]), bool(np.isnan(s.array[0, 0])), s.source
    (181.0, True, 'x.tif')
    """
    from .terrain import Dem, hillshade

    sh = hillshade(dem).astype(np.float32)
    sh[sh == 0] = np.nan
    return Dem(sh, dem.transform, dem.crs, dem.source)


def _read_dem_window(scenario, analysis, fine: bool):
    from .terrain import read_dem

    area = analysis.study_area if not analysis.study_area.is_empty else shapely.union_all(
        analysis.zones.geometry.values)
    w, so, e, n = area.bounds
    margin = 0.05 * max(e - w, n - so)
    # The overlay is drawn at most ~2000 px wide, so a finer grid would only cost time.
    res = max(e - w, n - so) / 2000.0
    return read_dem(scenario.dem, bounds=(w - margin, so - margin, e + margin, n + margin),
                    bounds_crs=analysis.crs, dst_crs=analysis.crs,
                    resolution_m=None if fine else res)


def scenario_layers(scenario, analysis, *, hillshade: bool = True, coverage: bool = False,
                    hotspots: bool = False, hex_km: float = 10.0) -> dict[str, Any]:
    """The extra layers a scenario names, ready for :func:`gapmap.maps.make_map`,
    :func:`gapmap.figures.plot_map` and :func:`gapmap.report.write_report`.

    Parameters
    ----------
    scenario
        A :class:`gapmap.scenario.Scenario`.
    analysis
        The analysis of that scenario (gives the CRS and the study area).
    hillshade
        Shade the scenario's DEM (when it has one).
    coverage
        Compute which cells the posts see over the DEM (needs a DEM and posts).
    hotspots
        Compute Gi* hot spots of the incidents on ``hex_km`` hexagons, with the defaults of
        ``gapmap hotspots``.

    Returns
    -------
    dict
        Keys among ``incidents`` (:class:`~gapmap.incidents.Incidents`), ``hillshade`` (a Dem
        of shade values), ``coverage`` (:class:`~gapmap.viewshed.Coverage`), ``hotspots``
        (hexagons).

    Examples
    --------
    >>> layers = scenario_layers(sc, result)  # doctest: +SKIP
    >>> save_map(make_map(result, **layers), "out/map.html")  # doctest: +SKIP
    """
    out: dict[str, Any] = {}
    if scenario.incidents is not None:
        out["incidents"] = scenario.read_incidents()
    dem = None
    if scenario.dem is not None and (hillshade or coverage):
        dem = _read_dem_window(scenario, analysis, fine=bool(coverage))
        if hillshade:
            out["hillshade"] = shade(dem)
    if coverage and dem is not None and analysis.posts is not None and len(analysis.posts):
        from .viewshed import coverage as visibility_coverage

        st = analysis.settings
        out["coverage"] = visibility_coverage(dem, analysis.posts, range_km=st.post_range_km,
                                              height_m=st.post_height_m,
                                              target_height_m=st.target_height_m)
    elif coverage:
        log.warning("coverage needs a DEM and posts; not drawn")
    if hotspots and "incidents" in out and len(out["incidents"]):
        from .hotspots import gi_star_hexes

        # gi_star_hexes's own defaults (inference, alpha, permutations, seed) are those of
        # `gapmap hotspots`, so the map and the command agree on the same events.
        out["hotspots"] = gi_star_hexes(out["incidents"], analysis.study_area, hex_km=hex_km,
                                        crs=analysis.crs)
    return out
