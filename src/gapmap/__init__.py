"""gapmap: measure security gaps — the unguarded ground between forces that do not cooperate.

A small functional API on GeoDataFrames:

>>> import gapmap
>>> res = gapmap.analyze("geodata/zones.geojson", gapmap.parse_side("krg=peshmerga"),
...                      gapmap.parse_side("federal=isf,pmf"),
...                      posts="geodata/posts.geojson",
...                      study_area="geodata/study_area.geojson")  # doctest: +SKIP
>>> res.corridors[["corridor_id", "length_km", "width_mean_km"]]  # doctest: +SKIP
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
]
