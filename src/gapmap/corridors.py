"""Coverage of the seam, unguarded corridors, the gap region and the per-pair summary.

:func:`analyze` is the main entry point: zones (+ posts, study area, terrain) in, an
:class:`Analysis` out. Definitions follow docs/metrics.md:

- a seam point is *covered* when it lies within the reach of either side's zones, or within a
  post's range (and, with a DEM and visibility on, in its line of sight);
- an *unguarded corridor* is a maximal connected stretch of uncovered seam; its length is
  geodesic; corridors shorter than ``min_length_km`` are kept apart as *minor*;
- the *gap region* is the study area minus every zone grown by its reach, where
  ``d_A + d_B ≤ max_width_km``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from shapely.ops import substring

from ._version import __version__
from .crs import geodesic_area_km2, geodesic_length_km, metric_crs
from .errors import InputError, InputWarning
from .frontier import SideDistance, clip_to_discs, seam_ridges, segment_pieces
from .io import check_layout, load_posts, load_study_area, load_zones
from .settings import Settings, Side

__all__ = ["Analysis", "analyze", "analyze_inputs", "Layers", "Inputs", "Seam", "read_layers",
           "prepare_inputs", "seam_stage", "coverage_stage", "corridor_tables", "gap_stage",
           "summarize", "with_roads", "with_terrain", "CORRIDOR_COLUMNS", "SUMMARY_FIELDS",
           "TERRAIN_FIELDS"]

log = logging.getLogger(__name__)

CORRIDOR_COLUMNS = [
    "corridor_id", "side_a", "side_b", "length_km", "width_min_km", "width_mean_km",
    "width_max_km", "start_lon", "start_lat", "end_lon", "end_lat", "rank",
]
SUMMARY_FIELDS = [
    "side_a", "side_b", "seam_length_km", "unguarded_length_km", "unguarded_share", "corridors",
    "minor_corridors", "longest_corridor_km", "width_mean_km", "gap_area_km2",
]
#: Posts of these forces count for both sides (staffed jointly) or carry no force at all.
JOINT_FORCES = {"joint", "", "none", "nan"}


@dataclass(frozen=True)
class Analysis:
    """Result of :func:`analyze` for one pair of sides (all geometry in ``crs``).

    Attributes
    ----------
    side_a, side_b
        The two sides.
    settings
        Parameters used.
    crs
        The metric CRS of every layer here.
    zones
        Zones with ``force``, ``side`` (``"a"``, ``"b"`` or ``None``) and ``reach_km``.
    posts
        Posts that count for the pair (``range_km``, ``height_m``), or ``None``.
    study_area
        The study area polygon.
    seam
        Seam lines with ``length_km``, ``width_min_km``, ``width_mean_km``, ``width_max_km``.
    corridors
        Unguarded corridors of at least ``min_length_km`` (see :data:`CORRIDOR_COLUMNS`).
    minor
        The shorter unguarded stretches, same columns.
    gap
        The gap region, one row with ``area_km2``.
    summary
        The per-pair figures (see :data:`SUMMARY_FIELDS`).
    inputs
        Where the layers came from (paths), for the record.
    dem
        The :class:`gapmap.terrain.Dem` the visibility and terrain fields came from, if any
        (read once by the run).
    incidents
        With incidents: one row per event with its assignment (``corridor_id``,
        ``distance_km``, ``in_gap``, …), see :func:`gapmap.incidents.incident_metrics`.
    """

    side_a: Side
    side_b: Side
    settings: Settings
    crs: CRS
    zones: gpd.GeoDataFrame
    posts: gpd.GeoDataFrame | None
    study_area: shapely.Geometry
    seam: gpd.GeoDataFrame
    corridors: gpd.GeoDataFrame
    minor: gpd.GeoDataFrame
    gap: gpd.GeoDataFrame
    summary: dict
    inputs: dict = field(default_factory=dict)
    dem: Any = None
    incidents: gpd.GeoDataFrame | None = None
    _dist_a: SideDistance | None = field(default=None, repr=False, compare=False)
    _dist_b: SideDistance | None = field(default=None, repr=False, compare=False)

    def distances(self, points) -> tuple[np.ndarray, np.ndarray]:
        """Distances (km) from points to the nearest zone of side A and of side B.

        Parameters
        ----------
        points
            An (n, 2) array in :attr:`crs`, or a GeoSeries / array of shapely points (any CRS
            for a GeoSeries).

        Examples
        --------
        >>> d_a, d_b = result.distances(result.corridors.geometry.centroid)  # doctest: +SKIP
        """
        if isinstance(points, gpd.GeoSeries):
            if points.crs is not None and CRS.from_user_input(points.crs) != self.crs:
                points = points.to_crs(self.crs)
            xy = shapely.get_coordinates(points.values)
        else:
            arr = np.asarray(points)
            xy = shapely.get_coordinates(arr) if arr.dtype == object else arr.reshape(-1, 2)
        da, _ = self._dist_a(xy)
        db, _ = self._dist_b(xy)
        return da / 1000.0, db / 1000.0

    def to_dict(self) -> dict:
        """The summary document written as ``summary.json``."""
        params = self.settings.as_dict()
        params["side_a"] = {"name": self.side_a.name, "forces": list(self.side_a.forces)}
        params["side_b"] = {"name": self.side_b.name, "forces": list(self.side_b.forces)}
        params["crs"] = self.crs.to_string()
        return {"pairs": [_jsonable(self.summary)], "parameters": _jsonable(params),
                "inputs": _jsonable(self.inputs), "gapmap_version": __version__}


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return None if not np.isfinite(obj) else round(float(obj), 6)
    if isinstance(obj, (pd.Timestamp,)):
        return obj.isoformat()
    if isinstance(obj, os.PathLike):
        return str(obj)
    return obj


# --------------------------------------------------------------------------------------------
# geometry helpers


def _lines_from_segments(seg: np.ndarray) -> np.ndarray:
    if len(seg) == 0:
        return np.empty(0, dtype=object)
    return shapely.linestrings(seg.reshape(-1, 2, 2))


def _clip_lines(lines: np.ndarray, keep: shapely.Geometry | None,
                remove: shapely.Geometry | None) -> np.ndarray:
    """Intersect lines with ``keep`` and subtract ``remove``; one overlay per operation.

    Lines wholly inside ``keep`` and clear of ``remove`` pass untouched (most of them), so the
    costly overlays only see the few that cross a boundary.
    """
    lines = lines[~shapely.is_empty(lines)]
    if len(lines) == 0:
        return lines
    if keep is not None and not keep.is_empty:
        tree = shapely.STRtree(lines)
        hit = tree.query(keep, predicate="intersects")
        inside = tree.query(keep, predicate="contains")
        crossing = np.setdiff1d(hit, inside)
        parts = [lines[inside]]
        if len(crossing):
            cut = shapely.intersection(shapely.multilinestrings(lines[crossing]), keep)
            parts.append(_line_parts(cut))
        lines = np.concatenate(parts) if parts else lines[:0]
    if remove is not None and not remove.is_empty and len(lines):
        tree = shapely.STRtree(lines)
        hit = tree.query(remove, predicate="intersects")
        if len(hit):
            mask = np.ones(len(lines), bool)
            mask[hit] = False
            cut = shapely.difference(shapely.multilinestrings(lines[hit]), remove)
            lines = np.concatenate([lines[mask], _line_parts(cut)])
    return lines[~shapely.is_empty(lines)]


def _line_parts(geom) -> np.ndarray:
    parts = shapely.get_parts(geom)
    if len(parts) == 0:
        return parts
    kinds = shapely.get_type_id(parts)
    out = parts[kinds == 1]  # LineString
    nested = parts[(kinds == 5) | (kinds == 7)]
    if len(nested):
        out = np.concatenate([out, _line_parts(shapely.get_parts(nested))])
    return out[shapely.length(out) > 0]


def _union(geoms: np.ndarray) -> shapely.Geometry:
    """``shapely.union_all`` of polygons, each group of touching ones unioned alone.

    Many small zones are mostly apart: GEOS's cascaded union still merges them pairwise into
    ever larger multipolygons, which grows faster than linearly (10,000 squares 0.9 s, 30,000
    4.3 s); apart groups are simply collected here.
    """
    geoms = np.asarray(geoms, dtype=object)
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    kinds = shapely.get_type_id(geoms)
    if len(geoms) < 64 or not np.isin(kinds, (3, 6)).all():  # few, or not only polygons
        return shapely.union_all(geoms)
    i, j = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    n = len(geoms)
    ncomp, labels = connected_components(coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)),
                                         directed=False)
    if ncomp == 1:
        return shapely.union_all(geoms)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(ncomp + 1))
    sizes = np.diff(bounds)
    single = geoms[order[bounds[:-1][sizes == 1]]]
    groups = [shapely.union_all(geoms[order[bounds[c]:bounds[c + 1]]])
              for c in np.flatnonzero(sizes > 1)]
    parts = shapely.get_parts(np.concatenate([single, np.array(groups, dtype=object)]))
    parts = parts[(shapely.get_type_id(parts) == 3) & ~shapely.is_empty(parts)]
    return shapely.multipolygons(parts) if len(parts) != 1 else parts[0]


def _grow(geom: shapely.Geometry, dist_m: float, quad_segs: int) -> shapely.Geometry:
    """``geom`` grown by ``dist_m`` (> 0): each part buffered alone, then one union.

    The same region as buffering the whole (Multi)Polygon at once, but GEOS's buffer of a
    multipolygon nodes every part's offset curve against all the others: for 2,000 squares
    grown by 5 km it took 7.3 s against 0.15 s this way (the same 608 vertices).
    """
    parts = shapely.get_parts(geom)
    if len(parts) <= 1:
        return shapely.buffer(geom, dist_m, quad_segs=quad_segs)
    return shapely.union_all(shapely.buffer(parts, dist_m, quad_segs=quad_segs))


def _components(lines: np.ndarray, simplify_m: float = 0.5) -> list[shapely.Geometry]:
    """Group lines into connected components, each merged into (Multi)LineString.

    Voronoi ridges put a vertex every few tens of metres even where the seam is straight;
    dropping vertices that deviate less than ``simplify_m`` (far below the sampling error)
    keeps layers small and later steps fast.
    """
    if len(lines) == 0:
        return []
    merged = _line_parts(shapely.line_merge(shapely.multilinestrings(lines)))
    if simplify_m:
        merged = shapely.simplify(merged, simplify_m, preserve_topology=False)
    tree = shapely.STRtree(merged)
    i, j = tree.query(merged, predicate="intersects")
    n = len(merged)
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    ncomp, labels = connected_components(graph, directed=False)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(ncomp + 1))
    comps = []
    for c in range(ncomp):
        members = merged[order[bounds[c]:bounds[c + 1]]]
        geom = members[0] if len(members) == 1 else shapely.line_merge(
            shapely.multilinestrings(members))
        comps.append(geom)
    return comps


def _end_points(geom: shapely.Geometry) -> tuple[np.ndarray, np.ndarray]:
    """The two ends of a stretch: for a branched one, the two free ends furthest apart."""
    if geom.geom_type == "LineString":
        xy = shapely.get_coordinates(geom)
        a, b = xy[0], xy[-1]
    else:
        parts = shapely.get_parts(geom)
        ends = np.vstack([shapely.get_coordinates(shapely.get_point(parts, 0)),
                          shapely.get_coordinates(shapely.get_point(parts, -1))])
        key = np.round(ends, 3)
        uniq, counts = np.unique(key, axis=0, return_counts=True)
        free = uniq[counts == 1]
        if len(free) < 2:
            free = uniq
        if len(free) > 64:
            # The two points furthest apart are vertices of the hull: a seam of 10,000 zones
            # has tens of thousands of free ends, and all pairs of them took 24 GB.
            hull = shapely.get_coordinates(shapely.convex_hull(shapely.multipoints(free)))
            free = np.unique(np.round(hull, 3), axis=0) if len(hull) >= 2 else free[:2]
        dd = ((free[:, None, :] - free[None, :, :]) ** 2).sum(-1)
        i, j = np.unravel_index(np.argmax(dd), dd.shape)
        a, b = free[i], free[j]
    # A stable orientation: start at the western (then southern) end (to the millimetre, so
    # that a north-south line starts in the south whatever its rounding).
    if (round(b[0], 3), round(b[1], 3)) < (round(a[0], 3), round(a[1], 3)):
        a, b = b, a
    return a, b


# --------------------------------------------------------------------------------------------
# the analysis


def _as_zones(zones, side_a: Side, side_b: Side, force_field: str, layer: str | None):
    if isinstance(zones, gpd.GeoDataFrame) and {"side", "force"} <= set(zones.columns) \
            and "reach_km" in zones.columns:
        return zones
    return load_zones(zones, side_a, side_b, force_field=force_field, layer=layer)


def _pair_posts(posts: gpd.GeoDataFrame, side_a: Side, side_b: Side) -> gpd.GeoDataFrame:
    """Posts of either side (or joint / without a force); others are left out with a warning."""
    if "force" not in posts.columns or posts["force"].isna().all():
        return posts
    f = posts["force"].astype("string").fillna("").str.lower()
    ok = f.isin(set(side_a.forces) | set(side_b.forces) | JOINT_FORCES)
    if (~ok).any():
        warnings.warn(f"{int((~ok).sum())} post(s) of forces in neither side left out: "
                      f"{sorted(set(f[~ok]))}", InputWarning, stacklevel=3)
    return posts.loc[ok.to_numpy()].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# the stages: prepare inputs → seam → coverage → corridor tables → gap region → summary


@dataclass(frozen=True)
class Layers:
    """The layers of one run as read (each in its own CRS), before projection."""

    zones: gpd.GeoDataFrame
    posts: gpd.GeoDataFrame | None = None
    study_area: gpd.GeoDataFrame | None = None


def read_layers(zones, side_a: Side, side_b: Side, *, posts=None, study_area=None,
                settings: Settings = Settings(), force_field: str = "force",
                zones_layer: str | None = None) -> Layers:
    """Read (or take) the zones, the pair's posts and the study area.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> from gapmap import parse_side
    >>> z = gpd.GeoDataFrame({"force": ["a", "b"]}, crs=32638,
    ...     geometry=[shapely.box(0, 0, 1e3, 1e3), shapely.box(5e3, 0, 6e3, 1e3)])
    >>> read_layers(z, parse_side("A=a"), parse_side("B=b")).zones["side"].tolist()
    ['a', 'b']
    """
    zones_gdf = _as_zones(zones, side_a, side_b, force_field, zones_layer)
    posts_gdf = None
    if posts is not None:
        posts_gdf = load_posts(posts, default_range_km=settings.post_range_km,
                               default_height_m=settings.post_height_m)
        posts_gdf = _pair_posts(posts_gdf, side_a, side_b)
    study_gdf = load_study_area(study_area) if study_area is not None else None
    check_layout(zones_gdf, study_gdf, posts=posts_gdf, max_width_km=settings.max_width_km)
    return Layers(zones_gdf, posts_gdf, study_gdf)


@dataclass(frozen=True)
class Inputs:
    """Everything the stages share, in the analysis CRS (from :func:`prepare_inputs`).

    ``reach_m`` is each zone's reach; ``ia``/``ib`` the rows of side A's and B's zones;
    ``shared`` the border lines where A and B zones touch; ``dist_a``/``dist_b`` the distance
    to each side.
    """

    side_a: Side
    side_b: Side
    settings: Settings
    crs: CRS
    zones: gpd.GeoDataFrame
    posts: gpd.GeoDataFrame | None
    study: shapely.Geometry
    reach_m: np.ndarray
    ia: np.ndarray
    ib: np.ndarray
    all_zones: shapely.Geometry
    shared: np.ndarray
    shared_geom: shapely.Geometry
    dist_a: SideDistance
    dist_b: SideDistance

    @property
    def geoms(self) -> np.ndarray:
        """The zone polygons (rows as in :attr:`zones`)."""
        return self.zones.geometry.values

    @property
    def half_w(self) -> float:
        """Half the maximum width, m."""
        return self.settings.max_width_km * 1000.0 / 2


def _zone_reach_m(zones_m: gpd.GeoDataFrame, settings: Settings) -> np.ndarray:
    reach = np.where(zones_m["reach_km"].notna(), zones_m["reach_km"],
                     np.where(zones_m["side"] == "a", settings.reach_a,
                              np.where(zones_m["side"] == "b", settings.reach_b, 0.0)))
    return np.asarray(reach, dtype=float) * 1000.0


def _study_geometry(study_gdf, crs, union_a, union_b, settings: Settings) -> shapely.Geometry:
    """The study area given, or where both sides are within ``max_width_km``."""
    if study_gdf is not None:
        study = shapely.union_all(study_gdf.to_crs(crs).geometry.values)
    else:
        tol, grow = 100.0, settings.max_width_km * 1000.0
        study = shapely.intersection(_grow(shapely.simplify(union_a, tol), grow, 16),
                                     _grow(shapely.simplify(union_b, tol), grow, 16))
    if study.is_empty:
        raise InputError(None, "study area", "the study area is empty (the sides are further "
                         f"apart than max_width_km={settings.max_width_km})",
                         "raise --max-width-km or give --study-area")
    shapely.prepare(study)
    return study


def prepare_inputs(layers: Layers, side_a: Side, side_b: Side, crs: CRS,
                   settings: Settings = Settings()) -> Inputs:
    """Project the layers to ``crs`` and derive what every stage needs (stage 1)."""
    zones_m = layers.zones.to_crs(crs).reset_index(drop=True)
    zones_m = zones_m.loc[~zones_m.geometry.is_empty].reset_index(drop=True)
    posts_m = layers.posts.to_crs(crs) if layers.posts is not None else None
    geoms = zones_m.geometry.values
    ia = np.flatnonzero((zones_m["side"] == "a").to_numpy())
    ib = np.flatnonzero((zones_m["side"] == "b").to_numpy())
    union_a, union_b = _union(geoms[ia]), _union(geoms[ib])
    overlap = shapely.intersection(union_a, union_b)
    if overlap.area > 0:
        warnings.warn(f"zones of {side_a.name} and {side_b.name} overlap over "
                      f"{overlap.area / 1e6:.3f} km²; the overlap counts as held ground",
                      InputWarning, stacklevel=3)
    shared = _line_parts(shapely.intersection(union_a.boundary, union_b.boundary))
    return Inputs(
        side_a=side_a, side_b=side_b, settings=settings, crs=crs, zones=zones_m, posts=posts_m,
        study=_study_geometry(layers.study_area, crs, union_a, union_b, settings),
        reach_m=_zone_reach_m(zones_m, settings), ia=ia, ib=ib,
        all_zones=_union(geoms), shared=shared,
        shared_geom=shapely.union_all(shared) if len(shared) else shapely.LineString(),
        dist_a=SideDistance(geoms[ia], ia), dist_b=SideDistance(geoms[ib], ib))


@dataclass(frozen=True)
class Seam:
    """The seam as clipped ridge segments (with their ridges) and as lines (stage 2)."""

    seg: np.ndarray
    ridges: Any
    lines: np.ndarray
    all: np.ndarray


def default_sample_m(inp: Inputs) -> float:
    """Boundary sampling for the seam: ~100,000 samples, 25–100 m, ≤ max width / 50."""
    geoms = inp.geoms[np.concatenate([inp.ia, inp.ib])]
    boundary_len = shapely.length(shapely.boundary(geoms)).sum()
    sample_m = float(np.clip(boundary_len / 100_000, 25.0, 100.0))
    return min(sample_m, max(inp.settings.max_width_km * 1000 / 50, 1.0))


def seam_stage(inp: Inputs, sample_m: float | None = None) -> Seam:
    """The seam within the study area: Voronoi ridges clipped to ``w ≤ max_width_km``."""
    if sample_m is None:
        sample_m = default_sample_m(inp)
    geoms, ia, ib = inp.geoms, inp.ia, inp.ib
    ridges = seam_ridges(geoms[ia], ia, geoms[ib], ib, sample_m=sample_m,
                         max_dist_m=inp.half_w, shared=inp.shared_geom, keep_near=inp.study)
    t0, t1 = clip_to_discs(ridges.seg, ridges.gen, np.full(len(ridges), inp.half_w))
    inside = t0 < t1
    r = ridges.take(inside)
    seg = segment_pieces(r.seg, t0[inside], t1[inside])
    lines = _clip_lines(_lines_from_segments(seg), inp.study, inp.all_zones)
    shared_in = _clip_lines(inp.shared, inp.study, None) if len(inp.shared) else inp.shared
    return Seam(seg, r, lines, np.concatenate([lines, shared_in]))


def coverage_stage(inp: Inputs, seam: Seam, *, dem=None, visibility: bool = False
                   ) -> np.ndarray:
    """The uncovered seam as lines: beyond every reach and post range (or out of sight)."""
    if visibility:
        return _visibility_unguarded(seam.lines, inp.dist_a, inp.dist_b, inp.reach_m,
                                     inp.posts, dem, inp.settings, inp.crs)
    r, seg = seam.ridges, seam.seg
    # Covered by reach: |p - a| ≤ max(reach of the two generating zones).
    rr = np.maximum(inp.reach_m[r.zone_a], inp.reach_m[r.zone_b])
    c0, c1 = clip_to_discs(seg, r.gen, rr)
    # Parameters on the clipped segment: uncovered = [0, c0] ∪ [c1, 1] (or all of it).
    none_cov = c0 >= c1
    lo_a, lo_b = np.zeros(len(r)), np.where(none_cov, 1.0, c0)
    hi_a, hi_b = np.where(none_cov, 1.0, c1), np.ones(len(r))
    pieces = np.vstack([segment_pieces(seg, lo_a, lo_b)[lo_b > lo_a],
                        segment_pieces(seg, hi_a, hi_b)[(hi_b > hi_a) & ~none_cov]])
    remove = inp.all_zones
    posts = inp.posts
    if posts is not None and len(posts):
        discs = shapely.buffer(posts.geometry.values, posts["range_km"].to_numpy() * 1000,
                               quad_segs=64)
        remove = shapely.union_all(np.concatenate([[inp.all_zones], discs]))
    # The shared border (d = 0) is held ground even with zero reach: it never enters here.
    return _clip_lines(_lines_from_segments(pieces), inp.study, remove)


def corridor_tables(inp: Inputs, seam: Seam, unguarded: np.ndarray
                    ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Seam, corridor and minor-stretch tables (stage 4).

    Ids come from the position along the seam (see :func:`_number_along_seam`); ``rank``
    orders the corridors by length (1 = longest), which is also the order of the rows.
    """
    transformer = Transformer.from_crs(inp.crs, 4326, always_xy=True)
    args = (inp.crs, inp.dist_a, inp.dist_b, transformer, inp.side_a, inp.side_b)
    seam_gdf = _line_table(_components(seam.all), *args, id_prefix="S")
    seam_gdf = _number_along_seam(seam_gdf, None, "S")
    stretch = _line_table(_components(unguarded), *args, id_prefix="C")
    is_major = stretch["length_km"] >= inp.settings.min_length_km
    corridors = _number_along_seam(stretch.loc[is_major], seam_gdf, "C")
    minor = _number_along_seam(stretch.loc[~is_major], seam_gdf, "m")
    return seam_gdf, corridors, minor


def _number_along_seam(table: gpd.GeoDataFrame, seam: gpd.GeoDataFrame | None, prefix: str
                       ) -> gpd.GeoDataFrame:
    """Number stretches by their place along the seam; rows ordered by length (``rank``).

    A stretch's place is (the seam part it lies on, the distance along that part to the
    stretch's start), the seam parts themselves ordered by their start (west, then south). So a
    corridor keeps its id when another one grows or shrinks; ``rank`` (1 = longest) is a
    separate column.
    """
    table = table.reset_index(drop=True)
    n = len(table)
    starts = table[["start_lon", "start_lat"]].to_numpy(float) if n else np.empty((0, 2))
    if seam is None or n == 0 or len(seam) == 0:
        order = np.lexsort((starts[:, 1], starts[:, 0])) if n else np.arange(0)
    else:
        ends = np.array([np.concatenate(_end_points(g)) for g in table.geometry.values])
        pts_a, pts_b = shapely.points(ends[:, :2]), shapely.points(ends[:, 2:])
        part = shapely.STRtree(seam.geometry.values).query_nearest(pts_a, all_matches=False)[1]
        part_no = seam["corridor_id"].str[1:].astype(int).to_numpy()[part]
        parts = seam.geometry.values[part]
        # Measured from the seam part's start (its western, then southern, end), to the
        # stretch's nearer end.
        first = shapely.get_coordinates(shapely.get_point(shapely.get_geometry(parts, 0), 0))
        # Each seam part's start once, not once per stretch on it: a seam that is one long
        # network would otherwise cost (stretches × its vertices).
        uniq, inv = np.unique(part, return_inverse=True)
        s_start = np.array([_end_points(g)[0] for g in seam.geometry.values[uniq]]
                           ).reshape(-1, 2)[inv.ravel()]
        flip = np.hypot(*(first - s_start).T) > 1e-3
        length = shapely.length(parts)
        along = [np.where(flip, length - d, d) for d in
                 (shapely.line_locate_point(parts, pts_a), shapely.line_locate_point(parts, pts_b))]
        along = np.minimum(*along)
        order = np.lexsort((np.round(along, 3), part_no))
    ids = np.empty(n, dtype=object)
    ids[order] = [f"{prefix}{i + 1}" for i in range(n)]
    table["corridor_id"] = ids
    by_length = np.argsort(-table["length_km"].to_numpy(float), kind="stable")
    table = table.iloc[by_length].reset_index(drop=True)
    if prefix != "S":
        table["rank"] = np.arange(1, n + 1, dtype=np.int64)
    return table


def gap_stage(inp: Inputs) -> gpd.GeoDataFrame:
    """The gap region with its geodesic area (stage 5)."""
    gap_geom = _gap_region(inp.study, inp.geoms, inp.reach_m, inp.ia, inp.ib, inp.half_w)
    gap_area = float(geodesic_area_km2([gap_geom], inp.crs)[0]) if not gap_geom.is_empty \
        else 0.0
    return gpd.GeoDataFrame({"side_a": [inp.side_a.name], "side_b": [inp.side_b.name],
                             "area_km2": [gap_area]}, geometry=[gap_geom], crs=inp.crs)


def summarize(inp: Inputs, seam_gdf, corridors, minor, gap) -> dict:
    """The per-pair figures of :data:`SUMMARY_FIELDS` (stage 6)."""
    seam_len = float(seam_gdf["length_km"].sum())
    ung_len = float(corridors["length_km"].sum() + minor["length_km"].sum()) \
        if len(corridors) + len(minor) else 0.0
    if seam_len > 0:
        w_mean = float((seam_gdf["width_mean_km"] * seam_gdf["length_km"]).sum() / seam_len)
    else:
        w_mean = float("nan")
    return {
        "side_a": inp.side_a.name,
        "side_b": inp.side_b.name,
        "seam_length_km": seam_len,
        "unguarded_length_km": ung_len,
        "unguarded_share": ung_len / seam_len if seam_len > 0 else float("nan"),
        "corridors": int(len(corridors)),
        "minor_corridors": int(len(minor)),
        "longest_corridor_km": float(corridors["length_km"].max()) if len(corridors) else 0.0,
        "width_mean_km": w_mean,
        "gap_area_km2": float(gap["area_km2"].iloc[0]),
    }


def analyze_inputs(inp: Inputs, *, dem=None, visibility: bool = False,
                   sample_m: float | None = None, inputs: dict | None = None,
                   progress: Callable[[str], None] | None = None) -> Analysis:
    """Seam → coverage → corridor tables → gap region → summary, on prepared inputs.

    ``dem`` (a :class:`gapmap.terrain.Dem`) is used only for visibility; terrain fields are
    added by the run (:class:`gapmap.Run`).
    """
    step = progress or (lambda name: None)
    step("seam")
    seam = seam_stage(inp, sample_m)
    step("coverage")
    unguarded = coverage_stage(inp, seam, dem=dem, visibility=visibility)
    step("corridors")
    seam_gdf, corridors, minor = corridor_tables(inp, seam, unguarded)
    step("gap region")
    gap = gap_stage(inp)
    return Analysis(
        side_a=inp.side_a, side_b=inp.side_b, settings=inp.settings, crs=inp.crs,
        zones=inp.zones, posts=inp.posts, study_area=inp.study, seam=seam_gdf,
        corridors=corridors, minor=minor, gap=gap,
        summary=summarize(inp, seam_gdf, corridors, minor, gap), inputs=dict(inputs or {}),
        dem=dem, _dist_a=inp.dist_a, _dist_b=inp.dist_b)


def analyze(
    zones: gpd.GeoDataFrame | str | os.PathLike,
    side_a: Side,
    side_b: Side,
    *,
    posts: gpd.GeoDataFrame | str | os.PathLike | None = None,
    study_area: gpd.GeoDataFrame | str | os.PathLike | None = None,
    settings: Settings = Settings(),
    dem: Any = None,
    visibility: bool = False,
    roads: gpd.GeoDataFrame | str | os.PathLike | None = None,
    force_field: str = "force",
    sample_m: float | None = None,
    inputs: dict | None = None,
    progress: Callable[[str], None] | None = None,
) -> Analysis:
    """Seam, coverage, unguarded corridors and gap region between two sides.

    The one-call form of :class:`gapmap.Run` (which also holds incidents, hot spots,
    hillshade and placement): each input is read once, the DEM once.

    Parameters
    ----------
    zones
        Force-control polygons (GeoDataFrame or path) with a force field.
    side_a, side_b
        The two sides (see :func:`gapmap.parse_side`).
    posts
        Posts (points) with optional ``range_km`` and ``height_m``.
    study_area
        Polygon(s) to clip to. Without one, the study area is where both sides are within
        ``max_width_km``.
    settings
        Reach, maximum width, minimum corridor length, spacing, CRS.
    dem
        A DEM (GeoTIFF path or :class:`gapmap.terrain.Dem`). With it, corridors gain terrain
        fields; with ``visibility=True`` a post covers only the seam points it can see.
    visibility
        Require line of sight from posts (needs ``dem``).
    roads
        Road lines: each corridor then counts the times roads cross it (``roads_crossed``).
    force_field
        Zone field holding the force.
    sample_m
        Boundary sampling interval for the seam; default chosen from the data (≤ 100 m).
    inputs
        Paths of the inputs, recorded in the summary.
    progress
        Called with the name of each stage as it starts (the CLI draws a bar with it).

    Returns
    -------
    Analysis

    Examples
    --------
    Two strips 20 km apart, each side guarding 2 km beyond its zone: the seam runs midway,
    100 km long and 20 km wide, and all of it is unguarded.

    >>> import geopandas as gpd, shapely
    >>> from gapmap import analyze, parse_side
    >>> zones = gpd.GeoDataFrame({"force": ["a", "b"]}, crs=32638,
    ...     geometry=[shapely.box(400e3, 3900e3, 410e3, 4000e3),
    ...               shapely.box(430e3, 3900e3, 440e3, 4000e3)])
    >>> study = gpd.GeoDataFrame(geometry=[shapely.box(380e3, 3900e3, 460e3, 4000e3)],
    ...                          crs=32638)
    >>> res = analyze(zones, parse_side("A=a"), parse_side("B=b"), study_area=study)
    >>> round(res.summary["width_mean_km"], 3), round(res.summary["seam_length_km"], 1)
    (20.0, 100.0)
    >>> res.corridors[["corridor_id", "rank"]].values.tolist()
    [['C1', 1]]
    """
    from .run import Run

    run = Run.from_layers(zones, side_a, side_b, posts=posts, study_area=study_area,
                          settings=settings, dem=dem, visibility=visibility, roads=roads,
                          force_field=force_field, sample_m=sample_m, inputs=inputs,
                          progress=progress)
    return run.analysis


def with_roads(result: Analysis, roads) -> Analysis:
    """Add ``roads_crossed``: how many times road lines cross each corridor."""
    from .io import read_layer

    if not isinstance(roads, gpd.GeoDataFrame):
        roads = read_layer(roads, what="roads", geom_types=("LineString",))
    elif roads.crs is None:
        raise InputError(roads.attrs.get("source", "roads"), "crs",
                         "roads have no coordinate reference system", "set the layer's CRS")
    lines = shapely.segmentize(roads.to_crs(result.crs).geometry.values, 1000.0)
    out = {}
    for name in ("corridors", "minor"):
        table = getattr(result, name)
        counts = np.zeros(len(table), dtype=int)
        if len(table) and len(lines):
            ci, ri = shapely.STRtree(lines).query(table.geometry.values, predicate="intersects")
            if len(ci):
                # Each crossing is a point of the intersection (a road running along a corridor
                # would give a line: it counts once).
                hits = shapely.intersection(table.geometry.values[ci], lines[ri])
                np.add.at(counts, ci, shapely.get_num_geometries(hits))
        out[name] = table.assign(roads_crossed=counts)
    return dataclasses.replace(result, **out)


def _line_table(geoms: list, crs: CRS, dist_a: SideDistance, dist_b: SideDistance,
                transformer: Transformer, side_a: Side, side_b: Side, id_prefix: str
                ) -> gpd.GeoDataFrame:
    """Per-stretch table: geodesic length, widths, ends."""
    geoms_arr = np.array(geoms, dtype=object)
    if len(geoms_arr) == 0:
        empty = {c: pd.Series(dtype=float) for c in CORRIDOR_COLUMNS if c != "rank"}
        empty["corridor_id"] = pd.Series(dtype=object)
        empty["side_a"] = pd.Series(dtype=object)
        empty["side_b"] = pd.Series(dtype=object)
        return gpd.GeoDataFrame(empty, geometry=gpd.GeoSeries([], crs=crs), crs=crs)
    length = geodesic_length_km(geoms_arr, crs)
    wmin, wmean, wmax = _width_stats(geoms_arr, dist_a, dist_b)
    ends = np.array([np.concatenate(_end_points(g)) for g in geoms_arr])
    slon, slat = transformer.transform(ends[:, 0], ends[:, 1])
    elon, elat = transformer.transform(ends[:, 2], ends[:, 3])
    return gpd.GeoDataFrame({
        "corridor_id": [f"{id_prefix}{i + 1}" for i in range(len(geoms_arr))],
        "side_a": side_a.name, "side_b": side_b.name,
        "length_km": length, "width_min_km": wmin, "width_mean_km": wmean,
        "width_max_km": wmax,
        "start_lon": slon, "start_lat": slat, "end_lon": elon, "end_lat": elat,
    }, geometry=geoms_arr, crs=crs)


def _width_stats(geoms: np.ndarray, dist_a: SideDistance, dist_b: SideDistance,
                 step_m: float = 250.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min, length-weighted mean and max of w = d_A + d_B along each geometry (km).

    Each line is cut into pieces of at most ``step_m`` (finer for short lines); w is evaluated
    at every vertex and every piece's midpoint, the mean weighted by piece length.
    """
    lengths = shapely.length(geoms)
    step = np.clip(lengths / 50, 1.0, step_m)  # ≥ 50 pieces per line, at most step_m long
    dense = shapely.segmentize(geoms, step)
    parts = shapely.get_parts(dense)
    part_geom = np.repeat(np.arange(len(geoms)), shapely.get_num_geometries(dense))
    xy, idx = shapely.get_coordinates(parts, return_index=True)
    same = idx[:-1] == idx[1:]
    a, b = xy[:-1][same], xy[1:][same]
    seg_geom = part_geom[idx[:-1][same]]
    mid = (a + b) / 2
    seg_len = np.hypot(*(b - a).T)
    pts = np.vstack([mid, xy])
    w = (dist_a(pts)[0] + dist_b(pts)[0]) / 1000.0
    w_mid, w_vert = w[: len(mid)], w[len(mid):]
    n = len(geoms)
    wsum = np.bincount(seg_geom, weights=w_mid * seg_len, minlength=n)
    lsum = np.bincount(seg_geom, weights=seg_len, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        wmean = wsum / lsum
    vert_geom = part_geom[idx]
    allw = np.concatenate([w_mid, w_vert])
    allg = np.concatenate([seg_geom, vert_geom])
    wmin = np.full(n, np.inf)
    wmax = np.full(n, -np.inf)
    np.minimum.at(wmin, allg, allw)
    np.maximum.at(wmax, allg, allw)
    return wmin, wmean, wmax


def _gap_region(study, geoms, reach_m, ia, ib, half_w) -> shapely.Geometry:
    """Study area minus every zone grown by its reach, where d_A + d_B ≤ max width.

    Growing large jagged zones is the slowest step, so zones are grown once per distinct reach
    (merged first), only where they are near the study area, after a light simplification.
    """
    env = shapely.buffer(shapely.envelope(study), float(np.max(reach_m, initial=0)) + 1000)
    grow_parts = []
    for r in np.unique(reach_m):  # one buffer per distinct reach (usually one)
        merged = _union(shapely.clip_by_rect(geoms[reach_m == r], *shapely.bounds(env)))
        if merged.is_empty:
            continue
        # Growing smooths away detail finer than the reach, so a light simplification (r/20,
        # at most 100 m) changes the gap area by < 0.01% and speeds the buffer: on the
        # benchmark's jagged 50k-vertex zones (r = 2 km) 8× faster than r/40 for a change of
        # 0.0055% in the gap area (r/10 would be 36× faster but change it by 0.045%).
        merged = shapely.simplify(merged, min(100.0, max(r / 20, 0.1)))
        grow_parts.append(_grow(merged, r, 8) if r > 0 else merged)
    grown = shapely.union_all(grow_parts) if grow_parts else shapely.Polygon()
    gap = shapely.difference(study, grown)
    if gap.is_empty:
        return gap
    limit = _width_limit_region(gap, geoms[ia], geoms[ib], 2 * half_w)
    if limit is not None:
        gap = shapely.intersection(gap, limit)
    return shapely.make_valid(gap)


def _width_limit_region(gap, polys_a, polys_b, max_width_m: float, cells: int = 1500):
    """Polygon where d_A + d_B ≤ max width, over the gap's extent; ``None`` if it holds
    everywhere there.

    Distances come from Euclidean distance transforms of the rasterised zones on a grid of
    about ``cells`` × ``cells`` (the zones within ``max_width`` of the gap are included), so
    the limit is placed to within about one cell (e.g. ~0.5 km for a 700 km wide extent).
    The limit matters only for gap ground far from both sides, where this precision is ample.
    """
    from rasterio import features
    from affine import Affine
    from scipy import ndimage

    x0, y0, x1, y1 = shapely.bounds(gap)
    x0, y0, x1, y1 = x0 - max_width_m, y0 - max_width_m, x1 + max_width_m, y1 + max_width_m
    cell = max((x1 - x0) / cells, (y1 - y0) / cells, 1.0)
    w, h = int(np.ceil((x1 - x0) / cell)), int(np.ceil((y1 - y0) / cell))
    transform = Affine(cell, 0.0, x0, 0.0, -cell, y1)
    field = np.zeros((h, w))
    for polys in (polys_a, polys_b):
        mask = features.rasterize(((g, 1) for g in polys), out_shape=(h, w), transform=transform,
                                  fill=0, all_touched=True, dtype="uint8")
        if not mask.any():
            return None
        field += ndimage.distance_transform_edt(mask == 0, sampling=cell)
    inside = features.rasterize([(gap, 1)], out_shape=(h, w), transform=transform, fill=0,
                                all_touched=True, dtype="uint8").astype(bool)
    ok = field <= max_width_m
    if ok[inside].all():
        return None
    shapes = [shapely.geometry.shape(geom) for geom, val in
              features.shapes(ok.astype("uint8"), mask=ok, transform=transform) if val == 1]
    return shapely.union_all(shapes) if shapes else shapely.Polygon()


def _visibility_unguarded(seam_lines, dist_a, dist_b, reach_m, posts_m, dem, settings, crs):
    """Uncovered seam with line of sight: sample every spacing_m, split changes midway."""
    from .viewshed import visible_from_posts  # terrain stage; imported only when used

    comps = _components(seam_lines)
    parts = np.array([p for c in comps for p in shapely.get_parts(c)], dtype=object)
    if len(parts) == 0:
        return parts
    spacing = settings.spacing_m
    lengths = shapely.length(parts)
    counts = np.maximum(np.ceil(lengths / spacing).astype(int), 1) + 1
    owner = np.repeat(np.arange(len(parts)), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    k = np.arange(counts.sum()) - np.repeat(starts, counts)
    dist_along = np.minimum(k * spacing, lengths[owner])
    pts = shapely.line_interpolate_point(parts[owner], dist_along)
    xy = shapely.get_coordinates(pts)
    da, za = dist_a(xy)
    db, zb = dist_b(xy)
    covered = (da <= reach_m[za]) | (db <= reach_m[zb])
    if posts_m is not None and len(posts_m):
        need = ~covered
        if need.any():
            seen = visible_from_posts(dem, posts_m, gpd.GeoSeries(pts[need], crs=crs),
                                      range_km=settings.post_range_km,
                                      height_m=settings.post_height_m,
                                      target_height_m=settings.target_height_m)
            covered[np.flatnonzero(need)[np.asarray(seen, bool)]] = True
    out = []
    for p in range(len(parts)):  # per seam part (tens), intervals found with numpy
        sl = slice(starts[p], starts[p] + counts[p])
        cov, dd = covered[sl], dist_along[sl]
        change = np.flatnonzero(cov[1:] != cov[:-1])
        cuts = np.concatenate([[0.0], (dd[change] + dd[change + 1]) / 2, [lengths[p]]])
        states = np.concatenate([[cov[0]], cov[change + 1]])
        for s, e, c in zip(cuts[:-1], cuts[1:], states):
            if not c and e > s:
                out.append(substring(parts[p], s, e))
    return np.array(out, dtype=object)


#: Terrain fields a run adds to corridors and minor stretches.
TERRAIN_FIELDS = ["slope_mean_deg", "tri_mean_m", "crossing_hours"]


def with_terrain(result: Analysis, fields: pd.DataFrame) -> Analysis:
    """A new Analysis whose corridors and minor stretches carry the terrain ``fields``
    (a table indexed by ``corridor_id``, e.g. ``Crossings.fields``)."""
    cols = [c for c in TERRAIN_FIELDS if c in fields.columns]
    out = {}
    for name in ("corridors", "minor"):
        table = getattr(result, name)
        out[name] = table.merge(fields[cols], left_on="corridor_id", right_index=True,
                                how="left")
    return dataclasses.replace(result, **out)
