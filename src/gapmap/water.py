"""Rivers and lakes, and what they do to walking time.

Water enters every walking-time search — the corridors' crossing time and routes
(:mod:`gapmap.routes`) and the road exposure walk (:mod:`gapmap.exposure`), all through
:func:`gapmap.routes.cost_distance` — in two ways:

- **lakes are impassable**: a cell whose centre lies in a lake polygon cannot be entered, so
  routes go round (a move is refused when any cell it passes over is blocked, see routes.py);
- **rivers are crossed at a cost**: every cell a river line touches adds ``crossing_hours``
  (the river's own value in a ``crossing_hours`` field, else :data:`DEFAULT_CROSSING_HOURS`)
  to a walk straight across it on flat ground — the time to find a ford or a boat, wade, or
  wait for dark. Where a road (``bridges``) crosses the river, within :data:`BRIDGE_RADIUS_M`
  of the road line, the crossing is free: roads cross rivers on bridges.

The searches take a time *multiplier* per cell (that is how a visibility penalty enters them),
so the extra hours are turned into one: a cell of width ``w`` metres walked on the flat at
:data:`gapmap.routes.TOBLER_FLAT_KMH` takes ``w / v`` hours, and the multiplier
``1 + h · v / w`` adds ``h`` hours to that. A route that crosses a river line at right angles
on the grid's axes passes one river cell and pays ``h`` exactly; the cells ``all_touched``
rasterising marks form a 4-connected chain, so a crossing at a slant over the grid passes one
or two of them and pays ``h`` to ``2·h``, and no move can slip between two of its cells.

Examples
--------
>>> import geopandas as gpd, numpy as np, shapely
>>> from affine import Affine
>>> from gapmap.terrain import Dem
>>> dem = Dem(np.zeros((20, 20), np.float32), Affine(100, 0, 0, 0, -100, 2000), 32638)
>>> lake = gpd.GeoDataFrame(geometry=[shapely.box(500, 500, 1500, 1500)], crs=32638)
>>> walkable, extra = walk_masks(Water(None, lake), dem)
>>> int((~walkable).sum()), extra is None   # 10 × 10 cells of lake, no river
(100, True)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio.features
import shapely

from .errors import InputError

__all__ = ["Water", "read_water", "walk_masks", "crossing_penalty", "DEFAULT_CROSSING_HOURS",
           "BRIDGE_RADIUS_M"]

log = logging.getLogger(__name__)

#: Extra hours to cross a river line without a bridge, when the layer gives none.
DEFAULT_CROSSING_HOURS = 1.0

#: A road within this distance of a river cell's crossing makes it free (a bridge), metres.
BRIDGE_RADIUS_M = 150.0



@dataclass(frozen=True)
class Water:
    """Rivers (lines) and lakes (polygons) in one CRS; either may be ``None``.

    Attributes
    ----------
    rivers
        River lines; an optional numeric ``crossing_hours`` field gives each river's cost.
    lakes
        Lake polygons: impassable on foot.
    bridges
        Lines (roads) where rivers are crossed for free; ``None``: no bridges.

    Examples
    --------
    >>> Water(None, None).empty
    True
    """

    rivers: gpd.GeoDataFrame | None
    lakes: gpd.GeoDataFrame | None
    bridges: gpd.GeoDataFrame | None = None

    @property
    def empty(self) -> bool:
        """True when there is neither a river nor a lake."""
        return all(g is None or len(g) == 0 for g in (self.rivers, self.lakes))

    def to_crs(self, crs: Any) -> Water:
        """The same water in ``crs``."""
        def go(g):
            return None if g is None else g.to_crs(crs)
        return Water(go(self.rivers), go(self.lakes), go(self.bridges))


def _crossing_hours(rivers: gpd.GeoDataFrame, source: Any) -> np.ndarray:
    if "crossing_hours" not in rivers.columns:
        return np.full(len(rivers), DEFAULT_CROSSING_HOURS)
    h = np.asarray(rivers["crossing_hours"].to_numpy(), dtype=float)
    bad = ~np.isfinite(h) | (h < 0)
    if bad.any():
        raise InputError(source, "crossing_hours", f"{int(bad.sum())} river(s) have a missing "
                         "or negative crossing time", "give hours ≥ 0 for every river")
    return h


def read_water(rivers=None, lakes=None, *, crs: Any = None, bridges=None) -> Water | None:
    """Read rivers and lakes (paths or GeoDataFrames), optionally into ``crs``.

    Parameters
    ----------
    rivers, lakes
        Line and polygon layers (anything :func:`gapmap.io.read_layer` reads), or ``None``.
    crs
        Bring every layer to this CRS (the analysis CRS).
    bridges
        Road lines where rivers cross for free.

    Returns
    -------
    Water or None
        ``None`` when neither layer is given.

    Examples
    --------
    >>> read_water(None, None) is None
    True
    """
    if rivers is None and lakes is None:
        return None
    from .io import read_layer

    def read(layer, what, kinds):
        if layer is None:
            return None
        gdf = layer if isinstance(layer, gpd.GeoDataFrame) else read_layer(
            layer, what=what, geom_types=kinds)
        return gdf.to_crs(crs) if crs is not None else gdf

    r = read(rivers, "rivers", ("LineString",))
    if r is not None:
        _crossing_hours(r, rivers if not isinstance(rivers, gpd.GeoDataFrame) else "rivers")
    water = Water(r, read(lakes, "lakes", ("Polygon",)), read(bridges, "roads", None))
    return water


def walk_masks(water: Water | None, dem) -> tuple[np.ndarray, np.ndarray | None]:
    """Where a walker may go, and the extra hours of crossing each river cell.

    Parameters
    ----------
    water
        A :class:`Water` (any CRS: it is brought to the DEM's), or ``None``.
    dem
        A :class:`gapmap.terrain.Dem` (or anything with ``array``, ``transform``, ``crs``).

    Returns
    -------
    walkable : numpy.ndarray
        bool on the DEM grid: False in lakes (cell centre inside) and where the DEM has no data.
    extra_hours : numpy.ndarray or None
        float32 on the DEM grid: hours added to a crossing of each river cell (0 elsewhere and
        where a bridge crosses); ``None`` without rivers. :func:`crossing_penalty` turns it
        into the multiplier the searches take.

    Examples
    --------
    >>> import geopandas as gpd, numpy as np, shapely
    >>> from affine import Affine
    >>> from gapmap.terrain import Dem
    >>> dem = Dem(np.zeros((10, 10), np.float32), Affine(100, 0, 0, 0, -100, 1000), 32638)
    >>> river = gpd.GeoDataFrame({"crossing_hours": [2.0]},
    ...                          geometry=[shapely.LineString([(450, 0), (450, 1000)])], crs=32638)
    >>> walkable, extra = walk_masks(Water(river, None), dem)
    >>> bool(walkable.all()), float(extra.sum()), extra[:, 4].tolist() == [2.0] * 10
    (True, 20.0, True)
    """
    z = np.asarray(dem.array)
    walkable = np.isfinite(z)
    if water is None or water.empty:
        return walkable, None
    if dem.crs is not None:
        water = water.to_crs(dem.crs)
    shape, tr = z.shape, dem.transform
    if water.lakes is not None and len(water.lakes):
        lake = rasterio.features.rasterize(((g, 1) for g in water.lakes.geometry.values
                                            if g is not None and not g.is_empty),
                                           out_shape=shape, transform=tr, fill=0, dtype="uint8")
        walkable &= lake == 0
    extra = None
    if water.rivers is not None and len(water.rivers):
        hours = _crossing_hours(water.rivers, "rivers")
        shapes = [(g, float(h)) for g, h in zip(water.rivers.geometry.values, hours)
                  if g is not None and not g.is_empty and h > 0]
        extra = np.zeros(shape, np.float32)
        if shapes:
            # Burnt cheapest first, so the dearest river wins where two touch the same cell.
            shapes.sort(key=lambda s: s[1])
            extra = rasterio.features.rasterize(shapes, out_shape=shape, transform=tr, fill=0.0,
                                                dtype="float32", all_touched=True)
        if water.bridges is not None and len(water.bridges):
            near = shapely.buffer(water.bridges.geometry.values, BRIDGE_RADIUS_M)
            bridge = rasterio.features.rasterize(((g, 1) for g in near if not g.is_empty),
                                                 out_shape=shape, transform=tr, fill=0,
                                                 dtype="uint8", all_touched=True)
            extra[bridge == 1] = 0.0
        extra[~walkable] = 0.0
    return walkable, extra


def crossing_penalty(extra_hours: np.ndarray | None, dem) -> np.ndarray | None:
    """The time multiplier per cell that adds ``extra_hours`` to a flat walk across it.

    ``1 + h · v / w`` with ``v`` the flat walking speed (5.04 km/h) and ``w`` the cell size:
    crossing one cell of width ``w`` at right angles takes ``w / v`` hours, times the
    multiplier that is ``w / v + h``. ``None`` when there is nothing to add.

    Examples
    --------
    >>> import numpy as np
    >>> from affine import Affine
    >>> from gapmap.terrain import Dem
    >>> dem = Dem(np.zeros((2, 2), np.float32), Affine(100, 0, 0, 0, -100, 200), 32638)
    >>> m = crossing_penalty(np.array([[0, 1], [0, 0]], np.float32), dem)
    >>> float(m[0, 0]), round(float(m[0, 1]), 1)   # 1 h over a 100 m cell at 5.04 km/h
    (1.0, 51.4)
    """
    if extra_hours is None or not np.any(extra_hours > 0):
        return None
    # the searches' own flat speed, imported here: only the searches call this, and reading
    # the layers (read_water) need not load gapmap.routes and numba
    from .routes import TOBLER_FLAT_KMH

    t = dem.transform
    cell_m = 0.5 * (abs(t.a) + abs(t.e))
    return (1.0 + np.asarray(extra_hours, np.float64) * TOBLER_FLAT_KMH * 1000.0 / cell_m
            ).astype(np.float32)
