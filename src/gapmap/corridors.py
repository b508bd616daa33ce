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
from .errors import InputError
from .frontier import SideDistance, clip_to_discs, seam_ridges, segment_pieces
from .io import check_layout, load_posts, load_study_area, load_zones
from .settings import Settings, Side

__all__ = ["Analysis", "analyze", "CORRIDOR_COLUMNS", "SUMMARY_FIELDS"]

log = logging.getLogger(__name__)

CORRIDOR_COLUMNS = [
    "corridor_id", "side_a", "side_b", "length_km", "width_min_km", "width_mean_km",
    "width_max_km", "start_lon", "start_lat", "end_lon", "end_lat",
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
        The DEM the terrain fields came from, if any.
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
        dd = ((free[:, None, :] - free[None, :, :]) ** 2).sum(-1)
        i, j = np.unravel_index(np.argmax(dd), dd.shape)
        a, b = free[i], free[j]
    # A stable orientation: start at the western (then southern) end.
    if (b[0], b[1]) < (a[0], a[1]):
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
                      f"{sorted(set(f[~ok]))}", stacklevel=3)
    return posts.loc[ok.to_numpy()].reset_index(drop=True)


def analyze(
    zones: gpd.GeoDataFrame | str | os.PathLike,
    side_a: Side,
    side_b: Side,
    *,
    posts: gpd.GeoDataFrame | str | os.PathLike | None = None,
    study_area: gpd.GeoDataFrame | str | os.PathLike | None = None,
    settings: Settings = Settings(),
    dem: str | os.PathLike | None = None,
    visibility: bool = False,
    roads: gpd.GeoDataFrame | str | os.PathLike | None = None,
    force_field: str = "force",
    sample_m: float | None = None,
    inputs: dict | None = None,
    progress: Callable[[str], None] | None = None,
) -> Analysis:
    """Seam, coverage, unguarded corridors and gap region between two sides.

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
        A DEM (GeoTIFF). With it, corridors gain terrain fields; with ``visibility=True`` a post
        covers only the seam points it can see.
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
    >>> import geopandas as gpd, shapely
    >>> from gapmap import analyze, parse_side
    >>> zones = gpd.GeoDataFrame({"force": ["a", "b"]}, crs=32638,
    ...     geometry=[shapely.box(400e3, 3900e3, 410e3, 4000e3),
    ...               shapely.box(430e3, 3900e3, 440e3, 4000e3)])
    >>> area = gpd.GeoDataFrame(geometry=[shapely.box(390e3, 3900e3, 450e3, 4000e3)],
    ...                         crs=32638)
    >>> res = analyze(zones, parse_side("A=a"), parse_side("B=b"), study_area=area)
    >>> round(res.summary["width_mean_km"], 3), res.summary["corridors"]
    (20.0, 1)

    Without a study area the seam runs on past the strips' ends while the sides are within
    ``max_width_km`` of each other, where it widens:

    >>> round(analyze(zones, parse_side("A=a"), parse_side("B=b")).summary["width_mean_km"])
    55
    """
    step = progress or (lambda name: None)
    if visibility and dem is None:
        raise InputError("--visibility", None, "visibility needs a DEM", "add --dem DEM.tif")
    step("reading layers")
    zones = _as_zones(zones, side_a, side_b, force_field, None)
    posts_gdf = None
    if posts is not None:
        posts_gdf = load_posts(posts, default_range_km=settings.post_range_km,
                               default_height_m=settings.post_height_m)
        posts_gdf = _pair_posts(posts_gdf, side_a, side_b)
    study_gdf = load_study_area(study_area) if study_area is not None else None
    check_layout(zones, study_gdf, posts=posts_gdf, max_width_km=settings.max_width_km)

    # The analysis happens in the study area: centre the projection there when there is one.
    crs = metric_crs(*((study_gdf,) if study_gdf is not None else (zones, posts_gdf)),
                     crs=settings.crs)
    log.info("analysis CRS: %s", crs.name)
    zones_m = zones.to_crs(crs).reset_index(drop=True)
    zones_m = zones_m.loc[~zones_m.geometry.is_empty].reset_index(drop=True)
    posts_m = posts_gdf.to_crs(crs) if posts_gdf is not None else None

    reach = np.where(zones_m["reach_km"].notna(), zones_m["reach_km"],
                     np.where(zones_m["side"] == "a", settings.reach_a,
                              np.where(zones_m["side"] == "b", settings.reach_b, 0.0)))
    reach_m = np.asarray(reach, dtype=float) * 1000.0
    geoms = zones_m.geometry.values
    ia = np.flatnonzero((zones_m["side"] == "a").to_numpy())
    ib = np.flatnonzero((zones_m["side"] == "b").to_numpy())
    union_a = shapely.union_all(geoms[ia])
    union_b = shapely.union_all(geoms[ib])
    all_zones = shapely.union_all(geoms)
    half_w = settings.max_width_km * 1000.0 / 2

    overlap = shapely.intersection(union_a, union_b)
    if overlap.area > 0:
        warnings.warn(f"zones of {side_a.name} and {side_b.name} overlap over "
                      f"{overlap.area / 1e6:.3f} km²; the overlap counts as held ground",
                      stacklevel=2)
    shared = _line_parts(shapely.intersection(union_a.boundary, union_b.boundary))
    shared_geom = shapely.union_all(shared) if len(shared) else shapely.LineString()

    if study_gdf is not None:
        study = shapely.union_all(study_gdf.to_crs(crs).geometry.values)
    else:
        tol = 100.0
        study = shapely.intersection(
            shapely.buffer(shapely.simplify(union_a, tol), 2 * half_w, quad_segs=16),
            shapely.buffer(shapely.simplify(union_b, tol), 2 * half_w, quad_segs=16))
    if study.is_empty:
        raise InputError(None, "study area", "the study area is empty (the sides are further "
                         f"apart than max_width_km={settings.max_width_km})",
                         "raise --max-width-km or give --study-area")
    shapely.prepare(study)

    dist_a = SideDistance(geoms[ia], ia)
    dist_b = SideDistance(geoms[ib], ib)

    step("seam")
    if sample_m is None:
        boundary_len = shapely.length(shapely.boundary(geoms[np.concatenate([ia, ib])])).sum()
        sample_m = float(np.clip(boundary_len / 100_000, 25.0, 100.0))
        sample_m = min(sample_m, max(settings.max_width_km * 1000 / 50, 1.0))
    ridges = seam_ridges(geoms[ia], ia, geoms[ib], ib, sample_m=sample_m, max_dist_m=half_w,
                         shared=shared_geom, keep_near=study)
    t0, t1 = clip_to_discs(ridges.seg, ridges.gen, np.full(len(ridges), half_w))
    inside = t0 < t1
    r = ridges.take(inside)
    t0, t1 = t0[inside], t1[inside]
    seam_seg = segment_pieces(r.seg, t0, t1)
    seam_lines = _clip_lines(_lines_from_segments(seam_seg), study, all_zones)
    shared_in = _clip_lines(shared, study, None) if len(shared) else shared
    seam_all = np.concatenate([seam_lines, shared_in])

    step("coverage")
    if not visibility:
        # Covered by reach: |p - a| ≤ max(reach of the two generating zones).
        rr = np.maximum(reach_m[r.zone_a], reach_m[r.zone_b])
        c0, c1 = clip_to_discs(seam_seg, r.gen, rr)
        # Parameters on the clipped segment: uncovered = [0, c0] ∪ [c1, 1] (or all of it).
        none_cov = c0 >= c1
        lo_a, lo_b = np.zeros(len(r)), np.where(none_cov, 1.0, c0)
        hi_a, hi_b = np.where(none_cov, 1.0, c1), np.ones(len(r))
        pieces = np.vstack([segment_pieces(seam_seg, lo_a, lo_b)[lo_b > lo_a],
                            segment_pieces(seam_seg, hi_a, hi_b)[(hi_b > hi_a) & ~none_cov]])
        remove = all_zones
        if posts_m is not None and len(posts_m):
            discs = shapely.buffer(posts_m.geometry.values, posts_m["range_km"].to_numpy() * 1000,
                                   quad_segs=64)
            remove = shapely.union_all(np.concatenate([[all_zones], discs]))
        # The shared border (d = 0) is held ground even with zero reach: it never enters here.
        unguarded_lines = _clip_lines(_lines_from_segments(pieces), study, remove)
    else:
        unguarded_lines = _visibility_unguarded(seam_lines, dist_a, dist_b, reach_m, posts_m,
                                                dem, settings, crs)

    step("corridors")
    transformer = Transformer.from_crs(crs, 4326, always_xy=True)
    seam_gdf = _line_table(_components(seam_all), crs, dist_a, dist_b, transformer, side_a,
                           side_b, id_prefix="S")
    stretch = _line_table(_components(unguarded_lines), crs, dist_a, dist_b, transformer,
                          side_a, side_b, id_prefix="C")
    is_major = stretch["length_km"] >= settings.min_length_km
    corridors = stretch.loc[is_major].sort_values("length_km", ascending=False)
    minor = stretch.loc[~is_major].sort_values("length_km", ascending=False)
    corridors = _renumber(corridors, "C")
    minor = _renumber(minor, "m")

    step("gap region")
    gap_geom = _gap_region(study, geoms, reach_m, ia, ib, half_w)
    gap_area = float(geodesic_area_km2([gap_geom], crs)[0]) if not gap_geom.is_empty else 0.0
    gap = gpd.GeoDataFrame({"side_a": [side_a.name], "side_b": [side_b.name],
                            "area_km2": [gap_area]}, geometry=[gap_geom], crs=crs)

    seam_len = float(seam_gdf["length_km"].sum())
    ung_len = float(stretch["length_km"].sum())
    if seam_len > 0:
        w_mean = float((seam_gdf["width_mean_km"] * seam_gdf["length_km"]).sum() / seam_len)
    else:
        w_mean = float("nan")
    summary = {
        "side_a": side_a.name,
        "side_b": side_b.name,
        "seam_length_km": seam_len,
        "unguarded_length_km": ung_len,
        "unguarded_share": ung_len / seam_len if seam_len > 0 else float("nan"),
        "corridors": int(len(corridors)),
        "minor_corridors": int(len(minor)),
        "longest_corridor_km": float(corridors["length_km"].max()) if len(corridors) else 0.0,
        "width_mean_km": w_mean,
        "gap_area_km2": gap_area,
    }
    result = Analysis(
        side_a=side_a, side_b=side_b, settings=settings, crs=crs, zones=zones_m,
        posts=posts_m, study_area=study, seam=seam_gdf, corridors=corridors, minor=minor,
        gap=gap, summary=summary, inputs=dict(inputs or {}), dem=dem,
        _dist_a=dist_a, _dist_b=dist_b,
    )
    if roads is not None:
        result = _with_roads(result, roads)
    if dem is not None:
        step("terrain")
        result = _with_terrain(result, dem)
    return result


def _with_roads(result: Analysis, roads) -> Analysis:
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


def _renumber(gdf: gpd.GeoDataFrame, prefix: str) -> gpd.GeoDataFrame:
    gdf = gdf.reset_index(drop=True)
    gdf["corridor_id"] = [f"{prefix}{i + 1}" for i in range(len(gdf))]
    return gdf


def _line_table(geoms: list, crs: CRS, dist_a: SideDistance, dist_b: SideDistance,
                transformer: Transformer, side_a: Side, side_b: Side, id_prefix: str
                ) -> gpd.GeoDataFrame:
    """Per-stretch table: geodesic length, widths, ends."""
    geoms_arr = np.array(geoms, dtype=object)
    if len(geoms_arr) == 0:
        empty = {c: pd.Series(dtype=float) for c in CORRIDOR_COLUMNS}
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
        merged = shapely.union_all(shapely.clip_by_rect(geoms[reach_m == r],
                                                        *shapely.bounds(env)))
        if merged.is_empty:
            continue
        # Growing smooths away detail finer than the reach, so a light simplification changes
        # the grown area by < 0.01% (measured on jagged borders) and speeds the buffer ~20×.
        merged = shapely.simplify(merged, min(50.0, max(r / 40, 0.1)))
        grow_parts.append(shapely.buffer(merged, r, quad_segs=8) if r > 0 else merged)
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


def _with_terrain(result: Analysis, dem) -> Analysis:
    """Add slope, ruggedness and crossing time per corridor (terrain stage).

    Corridors and minor stretches go through one call, so the DEM window is read once.
    """
    from .routes import corridor_terrain

    cols = ["slope_mean_deg", "tri_mean_m", "crossing_hours"]
    both = pd.concat([result.corridors, result.minor], ignore_index=True)
    if len(both):
        terr = corridor_terrain(dataclasses.replace(result, corridors=both), dem)
    else:
        terr = pd.DataFrame(columns=cols, dtype=float)
    out = {}
    for name in ("corridors", "minor"):
        table = getattr(result, name)
        out[name] = table.merge(terr[cols], left_on="corridor_id", right_index=True, how="left")
    return dataclasses.replace(result, **out)
