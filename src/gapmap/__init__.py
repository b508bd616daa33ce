"""gapmap: measure security gaps — the unguarded ground between forces that do not cooperate.

A small functional API on GeoDataFrames:

>>> import gapmap
>>> res = gapmap.analyze("geodata/zones.geojson", gapmap.parse_side("krg=peshmerga"),
...                      gapmap.parse_side("federal=isf,pmf"),
...                      posts="geodata/posts.geojson",
...                      study_area="geodata/study_area.geojson")  # doctest: +SKIP
>>> res.corridors[["corridor_id", "length_km", "width_mean_km"]]  # doctest: +SKIP

:class:`gapmap.Run` holds one run's inputs and products (analysis, DEM, incidents, hot spots,
hillshade, placement), each read or computed once on first use.
"""

from __future__ import annotations

import logging

from ._version import __version__
from .corridors import CORRIDOR_COLUMNS, SUMMARY_FIELDS, Analysis, analyze
from .crs import geodesic_area_km2, geodesic_length_km, metric_crs
from .errors import GapmapError, InputError
from .io import atomic_dir, atomic_path, load_posts, load_study_area, load_zones, read_layer
from .settings import Settings, Side, parse_side

logging.getLogger(__name__).addHandler(logging.NullHandler())

# The later stages pull in numba, folium, matplotlib and PySAL: load them on first use so that
# ``import gapmap`` (and every CLI start) stays fast.
_LAZY = {
    "read_dem": "terrain", "slope": "terrain", "tri": "terrain", "hillshade": "terrain",
    "build_dem": "terrain", "Dem": "terrain",
    "coverage": "viewshed", "visible_from_posts": "viewshed",
    "walking_routes": "routes", "corridor_terrain": "routes", "crossing_routes": "routes",
    "read_incidents": "incidents", "incident_metrics": "incidents",
    "with_incidents": "incidents", "exploitation_ratio": "incidents",
    "gi_star_hexes": "hotspots", "kernel_density": "hotspots", "monthly_counts": "hotspots",
    "place_posts": "placement", "max_coverage": "placement",
    "make_map": "maps", "save_map": "maps", "plot_map": "figures", "write_report": "report",
    "write_metrics": "outputs", "load_scenario": "scenario", "run_scenario": "scenario",
    "run_demo": "demo", "Run": "run", "simulate": "uncertainty", "breakdown": "by_area",
    "analyze_series": "series", "run_tasks": "engine",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gapmap' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
    "__version__",
    "Analysis",
    "analyze",
    "CORRIDOR_COLUMNS",
    "SUMMARY_FIELDS",
    "geodesic_area_km2",
    "geodesic_length_km",
    "metric_crs",
    "GapmapError",
    "InputError",
    "atomic_dir",
    "atomic_path",
    "load_posts",
    "load_study_area",
    "load_zones",
    "read_layer",
    "Settings",
    "Side",
    "parse_side",
    *sorted(_LAZY),
]
