"""Small synthetic scenes whose answers can be computed by hand: plain builder functions.

Tests (through the fixtures in ``conftest.py``) and benchmarks (``bench/``) build their scenes
here, so a scene is typed out once. Every builder returns new GeoDataFrames; nothing is cached.

The two-strip scene, in UTM 38N near Kirkuk::

    x (km from X0):   0 ── 10          30 ── 40
                      | A  |   seam   |  B  |      100 km long (y from Y0 to Y0 + 100 km)
                      |    |  x = 20  |     |

The seam is the line x = X0 + 20 km, 100 km long (projected), width 20 km everywhere.
"""

from __future__ import annotations

import geopandas as gpd
import shapely

UTM38 = 32638
X0, Y0 = 400_000.0, 3_900_000.0  # a spot near Kirkuk in UTM 38N


def strips(forces: tuple[str, str] = ("peshmerga", "isf"), *, gap_km: float = 20.0,
           length_km: float = 100.0, width_km: float = 10.0, x0: float = X0, y0: float = Y0,
           crs=UTM38) -> gpd.GeoDataFrame:
    """Two parallel strips ``gap_km`` apart, side A (``forces[0]``) west of side B.

    The seam is the line ``x = x0 + width_km + gap_km / 2`` (in km), of width ``gap_km``.

    Examples
    --------
    >>> z = strips()
    >>> z["force"].tolist(), z.total_bounds.tolist()
    (['peshmerga', 'isf'], [400000.0, 3900000.0, 440000.0, 4000000.0])
    """
    w, g, n = width_km * 1e3, gap_km * 1e3, length_km * 1e3
    return gpd.GeoDataFrame(
        {"force": list(forces), "name": ["north", "south"]},
        geometry=[shapely.box(x0, y0, x0 + w, y0 + n),
                  shapely.box(x0 + w + g, y0, x0 + 2 * w + g, y0 + n)],
        crs=crs)


def strips_area(*, length_km: float = 100.0, x0: float = X0, y0: float = Y0,
                crs=UTM38) -> gpd.GeoDataFrame:
    """A study area spanning the strips' length only, 20 km beyond them east and west."""
    return gpd.GeoDataFrame(geometry=[shapely.box(x0 - 20e3, y0, x0 + 60e3, y0 + length_km * 1e3)],
                            crs=crs)


def posts(points_km: list[tuple[float, float]], *, range_km: float = 5.0,
          forces: list[str] | None = None, x0: float = X0, y0: float = Y0,
          crs=UTM38) -> gpd.GeoDataFrame:
    """Posts at ``(dx, dy)`` km from ``(x0, y0)``, each with ``range_km``.

    Examples
    --------
    >>> p = posts([(20, 50)], forces=["isf"])
    >>> p.geometry.iloc[0].x - X0, p["range_km"].tolist(), p["force"].tolist()
    (20000.0, [5.0], ['isf'])
    """
    cols = {"range_km": [float(range_km)] * len(points_km)}
    if forces is not None:
        cols = {"force": list(forces), **cols}
    return gpd.GeoDataFrame(cols, geometry=[shapely.Point(x0 + dx * 1e3, y0 + dy * 1e3)
                                            for dx, dy in points_km], crs=crs)


def two_posts(**kw) -> gpd.GeoDataFrame:
    """The strips' usual pair of posts: one on the seam at 50 km, one 4 km off it at 20 km.

    With 5 km ranges they leave unguarded stretches [0, 17], [23, 45] and [55, 100] km.
    """
    return posts([(20, 50), (24, 20)], **kw)
