"""Dated control layers: snapshots, one analysis per date, corridors followed across dates.

A *series* is the zones as they change (docs/series.md, the contract's "Dated control layers"):

- one file per date, the date in the file name (``zones_20171016.geojson`` or
  ``zones_2017-10-16.gpkg``), given as a folder or a glob;
- one layer with a date field (one row per zone per date, as frontline trackers publish);
- a mapping ``{date: layer}`` (what a scenario file's ``[snapshots]`` table gives).

Posts may carry ``active_from`` / ``active_to``: a post counts on date t when
``active_from <= t <= active_to`` (a missing bound is open). Every date is analysed in ONE
analysis CRS (from the study area, or from the union of every snapshot, or ``crs``), so lengths
and change geometry compare between dates. The dates are independent tasks run by
:func:`gapmap.engine.run_tasks` (in-process, on a local Dask cluster, or on a scheduler).

What is computed once for the whole series and shipped to every worker once: the CRS, the
study area (read, dissolved and projected), the posts (read and validated), the incidents
(read once, windowed per date). Each task gets only its own zones.

>>> import datetime
>>> snapshot_date("front_2017-10-16.geojson")
datetime.date(2017, 10, 16)
>>> snapshot_date("zones_20171016_v2.gpkg")
datetime.date(2017, 10, 16)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import glob
import logging
import os
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from .corridors import SUMMARY_FIELDS, Analysis
from .crs import metric_crs
from .errors import DatePrecisionWarning, InputError, ResultWarning
from .io import load_posts, load_study_area, read_layer
from .settings import Settings, Side

__all__ = ["Snapshot", "Series", "DateResult", "snapshot_date", "read_snapshots",
           "posts_active", "analyze_series", "match_corridors", "SERIES_FIELDS",
           "Comparison", "compare", "by_area_series"]

log = logging.getLogger(__name__)

#: File types read from a folder of snapshots.
VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".fgb", ".parquet", ".geoparquet")
_NAME_DATE = re.compile(r"(?<!\d)(\d{4})(-?)(\d{2})\2(\d{2})(?!\d)")
#: Columns of series.csv, in order (incident fields follow when incidents are given).
SERIES_FIELDS = ["date", "side_a", "side_b"] + [f for f in SUMMARY_FIELDS
                                                if f not in ("side_a", "side_b")]
_DATE_FORMATS = {  # name → (regex on the text, strptime format)
    "YYYY-MM-DD": (re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2})?)?$"), "%Y-%m-%d"),
    "YYYYMMDD": (re.compile(r"^\d{8}$"), "%Y%m%d"),
}


# --------------------------------------------------------------------------------------------
# dates


def snapshot_date(name: str | os.PathLike) -> dt.date | None:
    """The date in a file name (``YYYYMMDD`` or ``YYYY-MM-DD``; the last one), or ``None``.

    >>> snapshot_date("zones.geojson") is None
    True
    """
    found = None
    for m in _NAME_DATE.finditer(Path(name).name):
        try:
            found = dt.date(int(m.group(1)), int(m.group(3)), int(m.group(4)))
        except ValueError:
            continue
    return found


def _parse_date_values(values: pd.Series, source: str, fieldname: str) -> pd.Series:
    """Dates of a date field, all in one format (ISO or YYYYMMDD) or a datetime column."""
    if pd.api.types.is_datetime64_any_dtype(values):
        if values.isna().any():
            row = values.index[values.isna()][0]
            raise InputError(source, fieldname, f"row {row} has no date",
                             "give every zone a date, or drop the rows without one")
        return values.dt.tz_localize(None).dt.date if values.dt.tz else values.dt.date
    text = values.astype("string").str.strip()
    if text.isna().any() or (text == "").any():
        row = values.index[(text.isna() | (text == "")).to_numpy()][0]
        raise InputError(source, fieldname, f"row {row} has no date",
                         "give every zone a date, or drop the rows without one")
    text = text.str.replace(r"\.0$", "", regex=True)  # integers read as floats
    kinds = pd.Series(None, index=text.index, dtype=object)
    for kind, (rx, _) in _DATE_FORMATS.items():
        kinds[text.str.match(rx).fillna(False).to_numpy() & kinds.isna().to_numpy()] = kind
    if kinds.isna().any():
        bad = text[kinds.isna()].iloc[0]
        raise InputError(source, fieldname, f"cannot read the date {bad!r}",
                         "write dates as YYYY-MM-DD (or YYYYMMDD), one format for the field")
    used = sorted(set(kinds))
    if len(used) > 1:
        examples = ", ".join(f"{text[kinds == k].iloc[0]!r} ({k})" for k in used)
        raise InputError(source, fieldname, f"dates in mixed formats: {examples}",
                         "write every date in one format, YYYY-MM-DD")
    fmt = _DATE_FORMATS[used[0]][1]
    try:
        parsed = pd.to_datetime(text.str.slice(0, 10 if fmt == "%Y-%m-%d" else 8), format=fmt)
    except (ValueError, OverflowError) as exc:
        raise InputError(source, fieldname, f"not a calendar date: {exc}",
                         "fix the date (month 01–12, day within the month)") from None
    return parsed.dt.date


def _as_day(value: Any, source: str, fieldname: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return _parse_date_values(pd.Series([value]), source, fieldname).iloc[0]


# --------------------------------------------------------------------------------------------
# snapshots


@dataclass(frozen=True)
class Snapshot:
    """The zones valid on one date.

    Attributes
    ----------
    date
        The snapshot's date.
    source
        Where its zones came from (a file, or ``file[field=date]``).
    zones
        The zones (any CRS), as read.
    posts
        This date's own posts (a scenario's ``[[snapshots]] posts``), replacing the series'
        posts on this date; ``None``: the series' posts.
    """

    date: dt.date
    source: str
    zones: gpd.GeoDataFrame = field(repr=False)
    posts: gpd.GeoDataFrame | None = field(default=None, repr=False)


def _files_of(zones: str | os.PathLike) -> list[Path] | None:
    """The files a folder or glob names; ``None`` for one plain file."""
    text = str(zones)
    p = Path(text)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in VECTOR_SUFFIXES)
        if not files:
            raise InputError(p, None, "the folder holds no vector files "
                             f"({', '.join(VECTOR_SUFFIXES)})",
                             "point --zones at a folder of dated files, e.g. zones_20171016.geojson")
        return files
    if glob.has_magic(text):
        files = sorted(Path(f) for f in glob.glob(text) if Path(f).is_file())
        if not files:
            raise InputError(text, None, "the pattern matches no file",
                             "check the folder and the pattern (quote it so the shell leaves it "
                             "alone), e.g. --zones 'fronts/zones_*.geojson'")
        return files
    return None


def read_snapshots(zones: Any, *, date_field: str | None = None, layer: str | None = None,
                   settings: Settings = Settings()) -> list[Snapshot]:
    """The snapshots of a series, in date order.

    Parameters
    ----------
    zones
        A folder or glob of one file per date (date in the name), one layer (path or
        GeoDataFrame) with ``date_field``, a mapping ``{date: path or GeoDataFrame}`` (or
        ``{date: {"zones": ..., "posts": ...}}``), or a scenario's ``snapshots``
        (:class:`gapmap.scenario.SnapshotFiles`).
    date_field
        Field holding each zone's date (one layer of every date).
    layer
        Layer name in multi-layer files.
    settings
        Default post range and height for a snapshot's own posts.

    Raises
    ------
    InputError
        No file matched, a file name or date value without a date, two snapshots with one
        date, or dates in mixed formats.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> layer = gpd.GeoDataFrame({"force": ["a", "b", "a", "b"],
    ...     "day": ["2024-01-02", "2024-01-02", "2024-01-01", "2024-01-01"]},
    ...     geometry=[shapely.box(0, 0, 1, 1)] * 4, crs=4326)
    >>> [(s.date.isoformat(), len(s.zones)) for s in read_snapshots(layer, date_field="day")]
    [('2024-01-01', 2), ('2024-01-02', 2)]
    """
    if isinstance(zones, (list, tuple)) and zones and all(
            hasattr(z, "date") and hasattr(z, "zones") for z in zones):
        # A scenario's [[snapshots]] (gapmap.scenario.SnapshotFiles).
        zones = {z.date: {"zones": z.zones, "posts": getattr(z, "posts", None)} for z in zones} \
            if len({z.date for z in zones}) == len(zones) else _duplicate(zones)
    if isinstance(zones, Mapping):
        snaps = []
        for key, value in zones.items():
            day = _as_day(key, "snapshots", "date")
            posts = None
            if isinstance(value, Mapping):
                value, posts = value["zones"], value.get("posts")
            src = str(value) if not isinstance(value, gpd.GeoDataFrame) else \
                value.attrs.get("source", f"snapshot {day}")
            gdf = value if isinstance(value, gpd.GeoDataFrame) else read_layer(
                value, layer, what="zones", geom_types=("Polygon",))
            snaps.append(Snapshot(day, src, gdf,
                                  None if posts is None else _read_posts(posts, settings)))
        return _checked(snaps)
    files = None if isinstance(zones, gpd.GeoDataFrame) else _files_of(zones)
    if files is None:
        gdf = zones if isinstance(zones, gpd.GeoDataFrame) else read_layer(
            zones, layer, what="zones", geom_types=("Polygon",))
        src = gdf.attrs.get("source", str(zones) if not isinstance(zones, gpd.GeoDataFrame)
                            else "zones")
        if date_field is None:
            raise InputError(src, None, "one zones layer but no date field",
                             "name the field holding each zone's date with --date-field, or "
                             "give a folder or glob of dated files")
        return _split_by_date(gdf, src, date_field)
    snaps = []
    for f in files:
        day = snapshot_date(f)
        if day is None and date_field is None:
            raise InputError(f, "file name", "no date (YYYYMMDD or YYYY-MM-DD) in the name",
                             "rename it like zones_20171016.geojson, or pass --date-field")
        gdf = read_layer(f, layer, what="zones", geom_types=("Polygon",))
        if date_field is not None:
            snaps.extend(_split_by_date(gdf, str(f), date_field))
        else:
            snaps.append(Snapshot(day, str(f), gdf))
    return _checked(snaps)


def _duplicate(entries) -> None:
    seen: dict = {}
    for z in entries:
        if z.date in seen:
            raise InputError(z.zones, "date", f"same date {z.date} as {seen[z.date]}",
                             "keep one snapshot per date (remove one [[snapshots]] entry or "
                             "fix its date)")
        seen[z.date] = z.zones


def _read_posts(posts: Any, settings: Settings = Settings()) -> gpd.GeoDataFrame:
    """Posts read and validated once, ``active_from`` / ``active_to`` parsed."""
    if isinstance(posts, gpd.GeoDataFrame) and "active_from" in posts.columns \
            and posts.attrs.get("dated"):
        return posts
    out = _dated_posts(load_posts(posts, default_range_km=settings.post_range_km,
                                  default_height_m=settings.post_height_m))
    out.attrs["dated"] = True
    return out


def _split_by_date(gdf: gpd.GeoDataFrame, src: str, date_field: str) -> list[Snapshot]:
    col = next((c for c in gdf.columns if str(c).lower() == date_field.lower()), None)
    if col is None:
        raise InputError(src, date_field, "date field not found (fields: "
                         f"{', '.join(map(str, gdf.columns.drop(gdf.geometry.name)))})",
                         "name the field that holds the dates with --date-field")
    days = _parse_date_values(gdf[col], src, col)
    out = []
    for day in sorted(set(days)):
        rows = gdf.loc[(days == day).to_numpy()]
        out.append(Snapshot(day, f"{src}[{col}={day.isoformat()}]", rows))
    return out


def _checked(snaps: list[Snapshot]) -> list[Snapshot]:
    snaps = sorted(snaps, key=lambda s: s.date)
    for prev, cur in zip(snaps[:-1], snaps[1:]):
        if prev.date == cur.date:
            raise InputError(cur.source, "date", f"same date {cur.date.isoformat()} as "
                             f"{prev.source}", "keep one snapshot per date (remove or rename "
                             "one of them)")
    return snaps


# --------------------------------------------------------------------------------------------
# posts that come and go


def _dated_posts(posts: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Posts with ``active_from`` / ``active_to`` parsed to dates (missing = open)."""
    src = posts.attrs.get("source", "posts")
    out = posts.copy()
    for name in ("active_from", "active_to"):
        col = next((c for c in posts.columns if str(c).lower() == name), None)
        if col is None:
            out[name] = None
            continue
        vals = posts[col]
        have = vals.notna() & (vals.astype("string").str.strip() != "")
        parsed = pd.Series([None] * len(posts), index=posts.index, dtype=object)
        if have.any():
            parsed[have] = list(_parse_date_values(vals[have], src, col))
        out[name] = parsed
    both = out["active_from"].notna() & out["active_to"].notna()
    if both.any():
        bad = both & (out["active_from"].where(both, dt.date.min)
                      > out["active_to"].where(both, dt.date.max))
        if bad.any():
            i = bad.to_numpy().nonzero()[0][0]
            ident = posts["post_id"].iloc[i] if "post_id" in posts.columns else f"row {i}"
            raise InputError(src, "active_from", f"post {ident}: active_from "
                             f"{out['active_from'].iloc[i]} is after active_to "
                             f"{out['active_to'].iloc[i]}", "swap the two dates or fix one")
    out.attrs["source"] = src
    return out


def posts_active(posts: gpd.GeoDataFrame, day: dt.date) -> gpd.GeoDataFrame:
    """The posts that count on ``day``: ``active_from <= day <= active_to`` (missing bound open).

    >>> import geopandas as gpd, shapely, datetime
    >>> p = gpd.GeoDataFrame({"active_from": ["2024-01-05", None], "active_to": [None, None]},
    ...                      geometry=[shapely.Point(0, 0)] * 2, crs=4326)
    >>> len(posts_active(_dated_posts(p), datetime.date(2024, 1, 4)))
    1
    """
    if "active_from" not in posts.columns:
        posts = _dated_posts(posts)
    lo = posts["active_from"].map(lambda d: d is None or pd.isna(d) or d <= day)
    hi = posts["active_to"].map(lambda d: d is None or pd.isna(d) or day <= d)
    return posts.loc[(lo & hi).to_numpy()].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# one date


@dataclass(frozen=True)
class DateResult:
    """What one date's task returns: small, picklable, enough for the tables and changes.

    Attributes
    ----------
    date
        The snapshot's date.
    summary
        The summary fields of :class:`gapmap.Analysis` (plus incident fields).
    seam
        Seam lines (analysis CRS).
    unguarded
        Every unguarded stretch, corridors and minor ones (``corridor_id``, ``length_km``,
        the per-corridor fields).
    warnings
        ``(category name, message)`` of the warnings the analysis gave.
    tiles_computed
        Keys of the seam tiles this task had to compute itself (none when the tiles came
        from the series' tile round).
    """

    date: dt.date
    summary: dict
    seam: gpd.GeoDataFrame = field(repr=False)
    unguarded: gpd.GeoDataFrame = field(repr=False)
    warnings: tuple = ()
    tiles_computed: tuple = ()


@dataclass(frozen=True)
class _Shared:
    side_a: Side
    side_b: Side
    settings: Settings
    study_area: gpd.GeoDataFrame | None
    posts: gpd.GeoDataFrame | None
    incidents: Any
    force_field: str
    dem: Any
    visibility: bool
    margin_km: float | None
    roads: gpd.GeoDataFrame | None = None
    sample_m: float | None = None


def _side_counts(zones: gpd.GeoDataFrame, shared: _Shared) -> tuple[int, int]:
    return _side_counts_of(zones, shared.side_a, shared.side_b, shared.force_field)


def _side_counts_of(zones: gpd.GeoDataFrame, side_a: Side, side_b: Side, force_field: str
                    ) -> tuple[int, int]:
    col = next((c for c in zones.columns if str(c).lower() == force_field.lower()), None)
    if col is None:
        return 0, 0
    f = zones[col].astype("string").str.strip().str.lower()
    return int(f.isin(side_a.forces).sum()), int(f.isin(side_b.forces).sum())


def _empty_summary(shared: _Shared) -> dict:
    out = {k: 0.0 for k in SUMMARY_FIELDS}
    out.update(side_a=shared.side_a.name, side_b=shared.side_b.name, corridors=0,
               minor_corridors=0, unguarded_share=float("nan"), width_mean_km=float("nan"))
    return out


def _date_run(shared: _Shared, snap: Snapshot):
    """The :class:`gapmap.Run` of one date (nothing computed yet)."""
    from .run import Run

    own = snap.posts if snap.posts is not None else shared.posts
    posts = posts_active(own, snap.date) if own is not None else None
    if posts is not None:
        posts = posts.drop(columns=["active_from", "active_to"])
        posts.attrs["source"] = own.attrs.get("source", "posts")
    # As gapmap.analyze (= Run.from_layers(...).analysis), so a date's figures are those of
    # `gapmap metrics` on the same layers.
    return Run.from_layers(snap.zones, shared.side_a, shared.side_b, posts=posts,
                           study_area=shared.study_area, settings=shared.settings,
                           dem=shared.dem, visibility=shared.visibility, roads=shared.roads,
                           force_field=shared.force_field, sample_m=shared.sample_m,
                           inputs={"zones": snap.source})


def _finish(shared: _Shared, run, window: tuple | None) -> Analysis:
    result = run.analysis
    if shared.incidents is not None and window is not None:
        from .incidents import incident_metrics, with_incidents

        kw = {} if shared.margin_km is None else {"margin_km": shared.margin_km}
        result = with_incidents(result, incident_metrics(result, window[0], **kw))
    return result


def _analyze_one(shared: _Shared, snap: Snapshot, window: tuple | None = None) -> Analysis:
    return _finish(shared, _date_run(shared, snap), window)


def _date_tiles(run) -> list:
    """The seam tiles of one date's run, as its seam stage will ask for them."""
    from .corridors import default_sample_m
    from .frontier import seam_samples, seam_tiles, series_tile_m

    inp = run.prepared
    geoms, ia, ib = inp.geoms, inp.ia, inp.ib
    sample_m = run.sample_m if run.sample_m is not None else default_sample_m(inp)
    pts, side, zone = seam_samples(geoms[ia], ia, geoms[ib], ib, sample_m=sample_m,
                                   max_dist_m=inp.half_w, shared=inp.shared_geom,
                                   keep_near=inp.study)
    return seam_tiles(pts, side, zone, max_dist_m=inp.half_w, tile_m=series_tile_m(inp.half_w))


#: What a worker process keeps between the rounds of a series: (series, date) → the date's
#: run (its layers read and projected), seam tiles and warnings. A few chunks' worth at most.
_KEPT: dict = {}
_KEPT_MAX = 64


def _keep(key: tuple, value: tuple) -> None:
    while len(_KEPT) >= _KEPT_MAX:
        _KEPT.pop(next(iter(_KEPT)))
    _KEPT[key] = value


def _planned(shared: _Shared, token: str, i: int, snap: Snapshot, pop: bool = False):
    """This date's (run, tiles, warnings): kept from the plan round, or made again (another
    worker, or a worker restarted since)."""
    kept = _KEPT.pop((token, i), None) if pop else _KEPT.get((token, i))
    if kept is not None:
        return kept
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = _date_run(shared, snap)
        tiles = _date_tiles(run)
    kept = (run, tiles, tuple((w.category.__name__, str(w.message)) for w in caught))
    if not pop:
        _keep((token, i), kept)
    return kept


def _plan_date(shared: _Shared, item: tuple) -> list[str]:
    """Round 1: read and project one date's layers; the keys of its seam tiles."""
    token, i, snap = item
    if 0 in _side_counts(snap.zones, shared):
        return []
    _, tiles, _ = _planned(shared, token, i, snap)
    return [t.key for t in tiles]


def _tile_date(shared: _Shared, item: tuple) -> dict:
    """Round 2: the ridges of the tiles (of this date) that no date computed before."""
    from .frontier import tile_ridges

    token, i, snap, wanted = item
    _, tiles, _ = _planned(shared, token, i, snap)
    wanted = set(wanted)
    return {t.key: tile_ridges(t) for t in tiles if t.key in wanted}


def _run_date(shared: _Shared, item: tuple) -> DateResult:
    """Round 3 (or the only one, without reuse): one snapshot's analysis, reduced to what
    the series needs. ``item`` is ``(snapshot, window)`` or ``(snapshot, window, token,
    index, tiles)`` with the ridges of the date's seam tiles by key."""
    snap, window = item[:2]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if 0 in _side_counts(snap.zones, shared):
            side = shared.side_a if _side_counts(snap.zones, shared)[0] == 0 else shared.side_b
            warnings.warn(f"{snap.date.isoformat()}: no zone of side {side.name} in "
                          f"{snap.source}; that date is reported with seam_length_km 0",
                          ResultWarning)
            crs = CRS.from_user_input(shared.settings.crs)
            empty = gpd.GeoDataFrame({"corridor_id": [], "length_km": []},
                                     geometry=gpd.GeoSeries([], crs=crs), crs=crs)
            summary = _empty_summary(shared)
            if window is not None:
                summary.update(incidents_total=0, incidents_in_gap=0)
            return DateResult(snap.date, summary, empty, empty,
                              tuple((w.category.__name__, str(w.message)) for w in caught))
        computed: tuple = ()
        planned: tuple = ()
        if len(item) == 2:
            result = _analyze_one(shared, snap, window)
        else:
            from .frontier import TileCache, seam_tile_cache

            token, i, tiles = item[2:]
            run, date_tiles, planned = _planned(shared, token, i, snap, pop=True)
            keep = _with_memo(run, token)
            # The tiles round 1 cut for this run: its seam does not sample the boundary again.
            with seam_tile_cache(TileCache(tiles, planned=date_tiles)) as cache:
                result = _finish(shared, run, window)
            keep()
            computed = tuple(cache.computed)
    ung = pd.concat([result.corridors.assign(kind="corridor"),
                     result.minor.assign(kind="minor")], ignore_index=True)
    ung = gpd.GeoDataFrame(ung, geometry=result.corridors.geometry.name, crs=result.crs)
    seam = result.seam[["length_km", result.seam.geometry.name]].reset_index(drop=True)
    return DateResult(snap.date, dict(result.summary), seam, ung,
                      planned + tuple((w.category.__name__, str(w.message)) for w in caught),
                      computed)


class _MemoDistance:
    """The distance to one side on one date, from the distances of the date before where
    they still hold: exactly what :class:`gapmap.frontier.SideDistance` gives, cheaper.

    Per date, the widths (``d_A + d_B`` along the seam and the corridors) take a
    nearest-segment search for a few thousand points against the side's 20,000 boundary
    segments; on the benchmark's jagged front that is 80 µs a point, 2 s of a date's 8 s.
    Between two dates most of both are the same (there 86–94% of the points, 91–93% of the
    segments). The distance at a point p is ``min`` over the segments S_t of the date; if
    the nearest segment of the date before is still in S_t, the minimum over the segments
    both dates have is that same distance, so ``d_t(p) = min(d_prev(p), min over the added
    segments)``: only the added segments are searched (within ``d_prev(p)``). Otherwise, or
    for a point not seen the date before, the full search runs. Distances come from GEOS's
    point-to-segment distance either way, so they are bit for bit those of the full search
    (``tests/test_series.py::test_memo_distance_equals_the_full_search``). The zone returned
    is that of a nearest segment: where two zones are exactly as near, either may be named
    (the series uses only the distances: it is not used with visibility).

    ``prev`` is ``(segment keys, {point key: (distance, segment key)})`` of a date before
    (any: the rule needs only that the distances were those of its segments).
    """

    def __init__(self, side, prev: tuple | None) -> None:
        self.side = side
        segs = np.ascontiguousarray(side._segs, dtype=float)
        raw = segs.tobytes()
        self.keys = [raw[i * 32:(i + 1) * 32] for i in range(len(segs))]
        self.index = {k: i for i, k in enumerate(self.keys)}
        self.memo: dict = {}
        self.prev_keys, self.prev_memo = prev if prev is not None else (frozenset(), {})
        self._added = None

    def state(self) -> tuple:
        return frozenset(self.keys), self.memo

    def _added_tree(self):
        if self._added is None:
            idx = np.array([i for i, k in enumerate(self.keys) if k not in self.prev_keys],
                           dtype=np.int64)
            lines = shapely.linestrings(self.side._segs[idx].reshape(-1, 2, 2)) if len(idx) \
                else np.empty(0, dtype=object)
            self._added = (idx, lines, shapely.STRtree(lines))
        return self._added

    def __call__(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sd = self.side
        xy = np.ascontiguousarray(np.asarray(xy, dtype=float).reshape(-1, 2))
        n = len(xy)
        dist = np.full(n, np.inf)
        zone = np.full(n, -1, dtype=np.int64)
        if n == 0 or len(sd._segs) == 0:
            return dist, zone
        raw = xy.tobytes()
        pkeys = [raw[i * 16:(i + 1) * 16] for i in range(n)]
        seg = np.full(n, -1, dtype=np.int64)
        carried = np.zeros(n, bool)
        for i, k in enumerate(pkeys):
            hit = self.memo.get(k)
            if hit is None:
                hit = self.prev_memo.get(k)
                if hit is None or hit[1] not in self.index:
                    continue
                carried[i] = True
            dist[i], seg[i] = hit[0], self.index[hit[1]]
        pts = shapely.points(xy)
        # Points the date before saw: only the segments added since can be nearer.
        c = np.flatnonzero(carried)
        idx, lines, tree = self._added_tree()
        if len(c) and len(idx):
            qi, li = tree.query(pts[c], predicate="dwithin", distance=dist[c])
            if len(qi):
                dd = shapely.distance(pts[c][qi], lines[li])
                order = np.lexsort((dd, qi))
                first = np.r_[True, qi[order][1:] != qi[order][:-1]]
                q, best, s = qi[order][first], dd[order][first], idx[li[order][first]]
                nearer = best < dist[c][q]
                dist[c[q[nearer]]], seg[c[q[nearer]]] = best[nearer], s[nearer]
        miss = np.flatnonzero(seg < 0)
        if len(miss):
            (qi, si), d = sd._tree.query_nearest(pts[miss], return_distance=True,
                                                 all_matches=False)
            dist[miss[qi]], seg[miss[qi]] = d, si
        for i in np.flatnonzero(seg >= 0):
            self.memo[pkeys[i]] = (float(dist[i]), self.keys[seg[i]])
        zone[seg >= 0] = sd.zone_ids[sd._seg_zone[seg[seg >= 0]]]
        # Inside a zone: 0, as SideDistance (the polygons as the query side, prepared once).
        zi, pi = shapely.STRtree(pts).query(sd.polys, predicate="intersects")
        dist[pi] = 0.0
        zone[pi] = sd.zone_ids[zi]
        return dist, zone


#: Per process: the latest date's distances to each side, by series (see _MemoDistance).
_DIST_MEMO: dict = {}


def _with_memo(run, token: str) -> Callable[[], None]:
    """Give this date's run distances memoised from the date before on this process (the
    figures do not change: see :class:`_MemoDistance`); returns what keeps them for the next
    date once the date is done."""
    inp = run.prepared
    if run.visibility:
        return lambda: None  # visibility uses the nearest zone of every point: full search
    for key in [k for k in _DIST_MEMO if k[0] != token]:
        del _DIST_MEMO[key]  # one series at a time
    da = _MemoDistance(inp.dist_a, _DIST_MEMO.get((token, "a")))
    db = _MemoDistance(inp.dist_b, _DIST_MEMO.get((token, "b")))
    run.__dict__["prepared"] = dataclasses.replace(inp, dist_a=da, dist_b=db)

    def keep() -> None:
        _DIST_MEMO[(token, "a")], _DIST_MEMO[(token, "b")] = da.state(), db.state()
    return keep


#: Dates per worker planned, tiled and finished together: bounds what each worker keeps
#: (:data:`_KEPT`) and what this process holds of the tiles.
_CHUNK_PER_WORKER = 8


def _share_tiles(keys: list[list[str]], known: set, workers: int) -> dict[int, list[str]]:
    """Which date of a chunk computes each tile no date computed before: among the dates
    that have it, one on the worker with the fewest tiles so far (date p runs on worker
    ``p % workers``), the earliest on a tie. By the first date alone, the first chunk's
    first date would compute every tile of the front (18 on the benchmark, 10 s) while the
    other workers wait.

    >>> _share_tiles([["t1", "t2", "t3"], ["t2", "t3"]], {"t1"}, 2)
    {0: ['t2'], 1: ['t3']}
    """
    holders: dict[str, list[int]] = {}
    for pos, ks in enumerate(keys):
        for key in ks:
            if key not in known:
                holders.setdefault(key, []).append(pos)
    load = [0] * max(workers, 1)
    need: dict[int, list[str]] = {}
    for key, dates in holders.items():
        pos = min(dates, key=lambda p: (load[p % len(load)], p))
        load[pos % len(load)] += 1
        need.setdefault(pos, []).append(key)
    return dict(sorted(need.items()))


def _run_with_tiles(pool, shared: _Shared, snaps: list[Snapshot], windows: list,
                    progress) -> tuple[list[DateResult], dict]:
    """Every date, its seam built from tiles each computed once (docs/series.md, "Reuse").

    By chunks of dates: (1) plan: each date's layers read and projected, the keys of its
    seam tiles; (2) the tiles no date computed before, each once, by the first date that has
    it; (3) each date's analysis with its tiles. A date runs on the same worker in the three
    rounds, so round 1's work is not repeated. Tiles are kept while the latest date uses
    them.
    """
    import uuid

    token = uuid.uuid4().hex
    n = len(snaps)
    chunk = max(_CHUNK_PER_WORKER * pool.worker_count(), 1)
    known: dict = {}
    results: list[DateResult] = []
    computed = used = 0
    for c0 in range(0, n, chunk):
        idx = list(range(c0, min(n, c0 + chunk)))
        keys = pool.map(_plan_date, [(token, i, snaps[i]) for i in idx], shared=shared,
                        pin=lambda k: k)
        need = _share_tiles(keys, set(known), pool.worker_count())
        positions = sorted(need)
        got = pool.map(_tile_date, [(token, idx[p], snaps[idx[p]], need[p]) for p in positions],
                       shared=shared, pin=lambda j: positions[j])
        for d in got:
            known.update(d)
            computed += len(d)
        tick = None if progress is None else (lambda d, _n, c0=c0: progress(c0 + d, n))
        out = pool.map(_run_date, [(snaps[i], windows[i], token, i, {k: known[k] for k in ks})
                                   for i, ks in zip(idx, keys)],
                       shared=shared, progress=tick, pin=lambda k: k)
        for r, ks in zip(out, keys):
            computed += len(r.tiles_computed)
            used += len(ks)
        results.extend(out)
        last = set(keys[-1])
        known = {k: v for k, v in known.items() if k in last}
    stats = {"tiles_used": used, "tiles_computed": computed}
    log.info("seam tiles: %d computed for %d used by the %d dates", computed, used, n)
    return results, stats


# --------------------------------------------------------------------------------------------
# corridors across dates


def match_corridors(prev: gpd.GeoDataFrame, cur: gpd.GeoDataFrame, *, match_km: float = 1.0,
                    step_m: float = 100.0) -> dict[int, int]:
    """Which corridor of ``prev`` each corridor of ``cur`` continues (positions → positions).

    A corridor of ``cur`` continues the one of ``prev`` that lies within ``match_km`` of the
    largest share of its length (sampled every ``step_m``); each corridor of ``prev`` is
    continued by at most one (the one overlapping it most), so a corridor that splits keeps its
    identity in its longest piece.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> a = gpd.GeoSeries([shapely.LineString([(0, 0), (0, 5000)]),
    ...                    shapely.LineString([(0, 9000), (0, 12000)])], crs=32638)
    >>> b = gpd.GeoSeries([shapely.LineString([(0, 9500), (0, 12500)]),
    ...                    shapely.LineString([(200, 0), (200, 4000)])], crs=32638)
    >>> match_corridors(gpd.GeoDataFrame(geometry=a), gpd.GeoDataFrame(geometry=b))
    {0: 1, 1: 0}
    """
    if len(prev) == 0 or len(cur) == 0:
        return {}
    cg = cur.geometry.values
    lengths = shapely.length(cg)
    counts = np.maximum(np.ceil(lengths / step_m).astype(int), 1)
    owner = np.repeat(np.arange(len(cg)), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    k = np.arange(counts.sum()) - np.repeat(starts, counts)
    pts = shapely.line_interpolate_point(cg[owner], (k + 0.5) / counts[owner], normalized=True)
    tree = shapely.STRtree(prev.geometry.values)
    qi, pi = tree.query(pts, predicate="dwithin", distance=match_km * 1000.0)
    if len(qi) == 0:
        return {}
    # Each sample votes for its nearest corridor of prev among those within match_km.
    d = shapely.distance(pts[qi], prev.geometry.values[pi])
    order = np.lexsort((d, qi))
    first = np.r_[True, qi[order][1:] != qi[order][:-1]]
    votes_q, votes_p = qi[order][first], pi[order][first]
    w = (lengths / counts)[owner[votes_q]]
    overlap: dict[tuple[int, int], float] = {}
    for c, p, ww in zip(owner[votes_q], votes_p, w):
        overlap[(int(c), int(p))] = overlap.get((int(c), int(p)), 0.0) + float(ww)
    out: dict[int, int] = {}
    used: set[int] = set()
    for (c, p), _ in sorted(overlap.items(), key=lambda kv: (-kv[1], kv[0])):
        if c in out or p in used:
            continue
        out[c] = p
        used.add(p)
    return dict(sorted(out.items()))


def _assign_uids(results: list[DateResult], match_km: float) -> list[np.ndarray]:
    """A ``corridor_uid`` for each corridor of each date (``U1``, ``U2`` … in order of first
    appearance): a corridor continuing one of the previous date keeps its uid."""
    next_uid = 1
    out: list[np.ndarray] = []
    prev_tab, prev_uids = None, None
    for r in results:
        tab = r.unguarded.loc[r.unguarded["kind"] == "corridor"] if len(r.unguarded) else \
            r.unguarded
        uids = np.empty(len(tab), dtype=object)
        links = match_corridors(prev_tab, tab, match_km=match_km) if prev_tab is not None else {}
        for i in range(len(tab)):
            if i in links:
                uids[i] = prev_uids[links[i]]
            else:
                uids[i] = f"U{next_uid}"
                next_uid += 1
        out.append(uids)
        prev_tab, prev_uids = tab, uids
    return out


# --------------------------------------------------------------------------------------------
# the series


@dataclass(frozen=True)
class Series:
    """Result of :func:`analyze_series`.

    Attributes
    ----------
    table
        One row per date × pair: ``date``, ``side_a``, ``side_b``, the summary fields,
        ``opened_km``, ``closed_km`` (NaN on the first date). This is ``series.csv``.
    corridors
        One row per corridor per date: ``corridor_uid``, ``date``, the per-corridor fields,
        ``first_seen``, ``last_seen`` (``corridors.csv``; geometry in ``crs``).
    opened, closed
        Newly unguarded / newly guarded stretches between consecutive dates (lines with
        ``date_from``, ``date_to``, ``length_km``).
    seam
        The seam of every date (``date``, ``length_km``).
    crs
        The one analysis CRS of every date.
    snapshots
        The snapshots analysed.
    reuse
        What was computed once for several dates: ``tiles_used`` (seam tiles the dates
        asked for) and ``tiles_computed`` (distinct tiles computed); empty without reuse.
    """

    table: pd.DataFrame
    corridors: gpd.GeoDataFrame
    opened: gpd.GeoDataFrame
    closed: gpd.GeoDataFrame
    seam: gpd.GeoDataFrame
    crs: CRS
    snapshots: tuple
    reuse: dict = field(default_factory=dict, compare=False)
    _shared: Any = field(default=None, repr=False, compare=False)
    _windows: tuple = field(default=(), repr=False, compare=False)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def dates(self) -> list[dt.date]:
        """The dates, in order."""
        return [s.date for s in self.snapshots]

    def analysis(self, date: dt.date | str) -> Analysis:
        """The full :class:`gapmap.Analysis` of one date, computed on first use (in-process).

        >>> series.analysis("2017-10-16").corridors  # doctest: +SKIP
        """
        day = _as_day(date, "analysis", "date")
        if day not in self.dates:
            raise InputError("analysis", "date", f"no snapshot on {day.isoformat()}",
                             f"use one of the series' dates ({self.dates[0]} … {self.dates[-1]})")
        i = self.dates.index(day)
        if i not in self._cache:
            if len(self._cache) >= 8:  # a few at a time: a 700-date series would not fit
                self._cache.pop(next(iter(self._cache)))
            self._cache[i] = _analyze_one(self._shared, self.snapshots[i], self._windows[i])
        return self._cache[i]


def _series_crs(snaps: list[Snapshot], study: gpd.GeoDataFrame | None, crs: str | None) -> CRS:
    if crs is not None or study is not None:
        return metric_crs(study, crs=crs)
    # The union of every snapshot: the box of their boxes is enough to choose a projection.
    boxes = [gpd.GeoSeries([shapely.box(*s.zones.to_crs(4326).total_bounds)], crs=4326)
             for s in snaps if len(s.zones)]
    return metric_crs(*boxes)


def _windows(snaps: list[Snapshot], incidents: Any, until: Any) -> list:
    """Each snapshot's validity period [date, next date) and the incidents inside it."""
    if incidents is None:
        return [None] * len(snaps)
    from .incidents import period_mask

    events = incidents.gdf if hasattr(incidents, "gdf") else incidents
    dates = pd.to_datetime(events["date"]) if "date" in events.columns else \
        pd.Series(pd.NaT, index=events.index)
    precision = events["date_precision"] if "date_precision" in events.columns else None
    ends = [pd.Timestamp(s.date) for s in snaps[1:]]
    last_end = pd.Timestamp(_as_day(until, "--until", None)) + pd.Timedelta(days=1) \
        if until is not None else None
    ends.append(last_end)
    out, counted = [], np.zeros(len(events), bool)
    straddle = np.zeros(len(events), bool)
    for s, end in zip(snaps, ends):
        inside, straddling = period_mask(dates, precision, pd.Timestamp(s.date), end)
        inside, straddling = np.asarray(inside, bool), np.asarray(straddling, bool)
        counted |= inside
        straddle |= straddling
        out.append((events.loc[inside], int(straddling.sum())))
    undated = int((straddle & ~counted).sum())
    if undated:
        warnings.warn(f"{undated} incident(s) dated too coarsely (year or month only) for the "
                      "snapshots' periods were counted apart as incidents_undated",
                      DatePrecisionWarning, stacklevel=3)
    return out


def analyze_series(
    zones: Any,
    side_a: Side,
    side_b: Side,
    *,
    date_field: str | None = None,
    zones_layer: str | None = None,
    posts: Any = None,
    study_area: Any = None,
    settings: Settings = Settings(),
    incidents: Any = None,
    until: Any = None,
    margin_km: float | None = None,
    dem: Any = None,
    visibility: bool = False,
    roads: Any = None,
    force_field: str = "force",
    match_km: float = 1.0,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    reuse: bool = True,
) -> Series:
    """Analyse every date of a series and what changed between consecutive dates.

    Parameters
    ----------
    zones
        A folder or glob of dated files, one layer with ``date_field``, or ``{date: layer}``.
    side_a, side_b
        The two sides.
    date_field
        Field of each zone's date (one layer of every date).
    posts
        Posts, optionally with ``active_from`` / ``active_to``.
    study_area, settings, dem, visibility, roads, force_field
        As for :func:`gapmap.analyze`; ``settings.crs`` pins the analysis CRS. The roads
        and, with a study area, the DEM's window are read once for every date.
    incidents
        Incidents (:class:`gapmap.incidents.Incidents` or point GeoDataFrame): each counts for
        the snapshot whose period holds its whole possible date range.
    until
        End of the last snapshot's period (inclusive) for incidents; open without it.
    match_km
        How far the seam may move and still be the same seam (opened/closed, corridor uids).
    workers, scheduler, progress
        How the dates run (see :func:`gapmap.engine.run_tasks`).
    reuse
        Build each date's seam from tiles computed once for the whole series (the parts of
        the boundary that did not move are not computed again); ``False`` analyses every
        date whole. The results are the same (docs/series.md, "Reuse between dates").

    Returns
    -------
    Series

    Examples
    --------
    >>> import geopandas as gpd, shapely, gapmap
    >>> a, b = shapely.box(400e3, 3900e3, 410e3, 4000e3), shapely.box(430e3, 3900e3, 440e3, 4000e3)
    >>> b2 = shapely.box(426e3, 3900e3, 440e3, 4000e3)
    >>> zones = gpd.GeoDataFrame({"force": ["a", "b", "a", "b"],
    ...     "day": ["2024-01-01", "2024-01-01", "2024-02-01", "2024-02-01"]},
    ...     geometry=[a, b, a, b2], crs=32638)
    >>> area = gpd.GeoDataFrame(geometry=[shapely.box(405e3, 3910e3, 435e3, 3990e3)], crs=32638)
    >>> s = gapmap.analyze_series(zones, gapmap.parse_side("A=a"), gapmap.parse_side("B=b"),
    ...                           date_field="day", study_area=area,
    ...                           settings=gapmap.Settings(reach_km=9), workers=1)
    >>> s.table[["date", "unguarded_length_km", "closed_km"]].round(1).to_dict("list")
    {'date': ['2024-01-01', '2024-02-01'], 'unguarded_length_km': [80.0, 0.0], 'closed_km': [nan, 80.0]}
    """
    from .changes import change_layers
    from .engine import Pool

    snaps = read_snapshots(zones, date_field=date_field, layer=zones_layer, settings=settings)
    study = load_study_area(study_area) if study_area is not None else None
    crs = _series_crs(snaps, study, settings.crs)
    log.info("series of %d dates, analysis CRS %s", len(snaps), crs.name)
    settings = dataclasses.replace(settings, crs=crs.to_wkt())
    posts_gdf = _read_posts(posts, settings) if posts is not None else None
    windows = _windows(snaps, incidents, until)
    if visibility and dem is None:
        raise InputError("--visibility", None, "visibility needs a DEM", "add --dem DEM.tif")
    roads_gdf = _read_roads(roads) if roads is not None else None
    study_m = study.to_crs(crs) if study is not None else None
    dem = _series_dem(dem, snaps, side_a, side_b, study_m, settings, force_field)
    shared = _Shared(side_a, side_b, settings, study_m, posts_gdf, incidents, force_field, dem,
                     visibility, margin_km, roads_gdf)
    # One boundary sampling for every date (that of the first, as gapmap metrics would choose
    # it): the default follows the boundary's length, so a front that moves would otherwise
    # be sampled anew, everywhere, on every date, and no part of its seam could be reused.
    shared = dataclasses.replace(shared, sample_m=_series_sample_m(shared, snaps))
    stats: dict = {}
    with Pool(workers=workers, scheduler=scheduler, tasks=len(snaps)) as pool:
        if reuse:
            results, stats = _run_with_tiles(pool, shared, snaps, windows, progress)
        else:
            results = pool.map(_run_date, list(zip(snaps, windows)), shared=shared,
                               progress=progress)
    _replay_warnings(results)
    opened, closed, km = change_layers([r.seam for r in results],
                                       [r.unguarded for r in results],
                                       [r.date for r in results], crs, match_km=match_km)
    table = _table(results, km, windows)
    corridors = _corridor_table(results, _assign_uids(results, match_km), crs)
    seam = _dated(results, "seam", crs)
    return Series(table=table, corridors=corridors, opened=opened, closed=closed, seam=seam,
                  crs=crs, snapshots=tuple(snaps), reuse=stats, _shared=shared,
                  _windows=tuple(windows))


def _series_sample_m(shared: _Shared, snaps: list[Snapshot]) -> float | None:
    """The boundary sampling of every date: ``gapmap metrics``' choice on the first date
    with both sides."""
    from .corridors import default_sample_m

    first = next((s for s in snaps if 0 not in _side_counts(s.zones, shared)), None)
    if first is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the date's own task gives them
        return float(default_sample_m(_date_run(shared, first).prepared))


def _read_roads(roads: Any) -> gpd.GeoDataFrame:
    """The road lines, read once for every date."""
    if isinstance(roads, gpd.GeoDataFrame):
        if roads.crs is None:
            raise InputError(roads.attrs.get("source", "roads"), "crs",
                             "roads have no coordinate reference system", "set the layer's CRS")
        return roads
    return read_layer(roads, what="roads", geom_types=("LineString",))


def _series_dem(dem: Any, snaps: list[Snapshot], side_a: Side, side_b: Side,
                study: gpd.GeoDataFrame | None, settings: Settings, force_field: str) -> Any:
    """A DEM file read once for every date: the window a run of the first date reads (the
    study area plus max width + 6 km, in the series' CRS). Without a study area each date's
    window depends on its zones, so each date reads its own."""
    if dem is None or study is None or not isinstance(dem, (str, os.PathLike)):
        return dem
    from .run import Run

    first = next((s for s in snaps if 0 not in _side_counts_of(s.zones, side_a, side_b,
                                                               force_field)), None)
    if first is None:
        return dem
    run = Run.from_layers(first.zones, side_a, side_b, study_area=study, settings=settings,
                          dem=dem, force_field=force_field)
    return run.dem


def by_area_series(series: Series, areas: gpd.GeoDataFrame, field: str) -> pd.DataFrame:
    """The breakdown by area of every date (``by_area.csv`` of ``gapmap series --by``).

    Each date's full analysis (:meth:`Series.analysis`, computed again in this process) is cut
    at the borders of ``areas`` by :func:`gapmap.by_area.breakdown`, so each date's rows add up
    to that date's row of ``series.table``. A date on which one side has no zone (seam 0) has
    no rows.

    Parameters
    ----------
    series
        The result of :func:`analyze_series`.
    areas
        Disjoint polygons carrying ``field`` (:func:`gapmap.by_area.load_areas`).
    field
        The attribute whose values make the rows, e.g. ``ADM1_EN``.

    Returns
    -------
    pandas.DataFrame
        ``date`` (``YYYY-MM-DD``), ``field``, then :data:`gapmap.by_area.BY_AREA_COLUMNS`; one
        row per date and area, dates in order.

    Examples
    --------
    >>> import geopandas as gpd, shapely, gapmap
    >>> a, b = shapely.box(400e3, 3900e3, 410e3, 4000e3), shapely.box(430e3, 3900e3, 440e3, 4000e3)
    >>> zones = gpd.GeoDataFrame({"force": ["a", "b"] * 2, "day": ["2024-01-01"] * 2 +
    ...     ["2024-02-01"] * 2}, geometry=[a, b, a, b], crs=32638)
    >>> areas = gpd.GeoDataFrame({"gov": ["north", "south"]}, crs=32638,
    ...     geometry=[shapely.box(405e3, 3950e3, 435e3, 3990e3),
    ...               shapely.box(405e3, 3910e3, 435e3, 3950e3)])
    >>> s = gapmap.analyze_series(zones, gapmap.parse_side("A=a"), gapmap.parse_side("B=b"),
    ...                           date_field="day", study_area=areas, workers=1)
    >>> t = by_area_series(s, areas, "gov")
    >>> t[["date", "gov", "unguarded_length_km"]].round(1).values.tolist()
    [['2024-01-01', 'north', 40.0], ['2024-01-01', 'south', 40.0], ['2024-02-01', 'north', 40.0], ['2024-02-01', 'south', 40.0]]
    """
    from .by_area import BY_AREA_COLUMNS, breakdown, check_field

    check_field(areas, field)
    tables = []
    for snap in series.snapshots:
        if 0 in _side_counts(snap.zones, series._shared):
            continue  # no seam that date: nothing to break down (series.csv says 0)
        table = breakdown(series.analysis(snap.date), areas, field)
        table.insert(0, "date", snap.date.isoformat())
        tables.append(table)
    if not tables:
        return pd.DataFrame(columns=["date", field, *BY_AREA_COLUMNS])
    return pd.concat(tables, ignore_index=True)


def _replay_warnings(results: list[DateResult]) -> None:
    """The workers' warnings, each distinct one once, in this process (where the CLI shows them)."""
    from . import errors

    seen = set()
    for r in results:
        for cat, msg in r.warnings:
            if (cat, msg) in seen:
                continue
            seen.add((cat, msg))
            warnings.warn(msg, getattr(errors, cat, UserWarning), stacklevel=3)


def _table(results: list[DateResult], km: pd.DataFrame, windows: list) -> pd.DataFrame:
    rows = []
    for r, w in zip(results, windows):
        row = {"date": r.date.isoformat(), **r.summary}
        if w is not None:
            row["incidents_undated"] = w[1]
        rows.append(row)
    table = pd.DataFrame(rows)
    lead = [c for c in SERIES_FIELDS if c in table.columns]
    table = table[lead + [c for c in table.columns if c not in lead]]
    table["opened_km"] = km["opened_km"].to_numpy()
    table["closed_km"] = km["closed_km"].to_numpy()
    return table


def _dated(results: list[DateResult], attr: str, crs: CRS) -> gpd.GeoDataFrame:
    parts = [getattr(r, attr).assign(date=r.date.isoformat()) for r in results
             if len(getattr(r, attr))]
    if not parts:
        return gpd.GeoDataFrame({"date": [], "length_km": []},
                                geometry=gpd.GeoSeries([], crs=crs), crs=crs)
    out = pd.concat(parts, ignore_index=True)
    cols = ["date"] + [c for c in out.columns if c != "date"]
    return gpd.GeoDataFrame(out[cols], geometry=parts[0].geometry.name, crs=crs)


def _corridor_table(results: list[DateResult], uids: list[np.ndarray], crs: CRS
                    ) -> gpd.GeoDataFrame:
    parts = []
    for r, u in zip(results, uids):
        if not len(r.unguarded):
            continue
        tab = r.unguarded.loc[r.unguarded["kind"] == "corridor"].drop(columns="kind")
        parts.append(tab.assign(corridor_uid=u, date=r.date.isoformat()))
    if not parts:
        return gpd.GeoDataFrame({"corridor_uid": [], "date": [], "first_seen": [],
                                 "last_seen": []}, geometry=gpd.GeoSeries([], crs=crs), crs=crs)
    out = pd.concat(parts, ignore_index=True)
    span = out.groupby("corridor_uid")["date"].agg(["min", "max"])
    out["first_seen"] = out["corridor_uid"].map(span["min"])
    out["last_seen"] = out["corridor_uid"].map(span["max"])
    geom = parts[0].geometry.name
    lead = ["corridor_uid", "date"]
    cols = lead + [c for c in out.columns if c not in lead and c != geom] + [geom]
    return gpd.GeoDataFrame(out[cols], geometry=geom, crs=crs)


# --------------------------------------------------------------------------------------------
# two dates


@dataclass(frozen=True)
class Comparison:
    """Result of :func:`compare`.

    Attributes
    ----------
    table
        One row per summary field: ``field``, ``before``, ``after``, ``change`` (compare.csv).
    opened, closed
        The stretches opened and closed between the two (``date_from``, ``date_to``,
        ``length_km``; the dates are the labels of the two layers).
    labels
        The two layers' labels: their dates when the file names carry one, else
        ``"before"`` / ``"after"``.
    series
        The two-date :class:`Series` behind it.
    """

    table: pd.DataFrame
    opened: gpd.GeoDataFrame
    closed: gpd.GeoDataFrame
    labels: tuple
    series: Series = field(repr=False)


def compare(before: Any, after: Any, side_a: Side, side_b: Side, **kw: Any) -> Comparison:
    """The two-date case of :func:`analyze_series`: what changed from ``before`` to ``after``.

    Parameters
    ----------
    before, after
        Zones layers (paths or GeoDataFrames).
    **kw
        As for :func:`analyze_series` (posts, study_area, settings, match_km, workers …).

    Examples
    --------
    >>> c = compare("zones_2017-09-01.geojson", "zones_2017-11-01.geojson",
    ...             parse_side("krg=peshmerga"), parse_side("federal=isf,pmf"))  # doctest: +SKIP
    >>> c.table.set_index("field").loc["unguarded_length_km"]  # doctest: +SKIP
    """
    d0, d1 = (snapshot_date(x) if not isinstance(x, gpd.GeoDataFrame) else None
              for x in (before, after))
    if d0 is None or d1 is None or d0 >= d1:
        labels = ("before", "after")
        d0, d1 = dt.date(2000, 1, 1), dt.date(2000, 1, 2)  # placeholders, relabelled below
    else:
        labels = (d0.isoformat(), d1.isoformat())
    kw.setdefault("workers", 1)  # two dates: a cluster would cost more than it saves
    series = analyze_series({d0: before, d1: after}, side_a, side_b, **kw)
    rows = []
    t = series.table
    for name in t.columns:
        if name in ("date", "side_a", "side_b", "opened_km", "closed_km"):
            continue
        b, a = t[name].iloc[0], t[name].iloc[1]
        change = a - b if isinstance(a, (int, float, np.number)) else None
        rows.append({"field": name, "before": b, "after": a, "change": change})
    for name in ("opened_km", "closed_km"):
        rows.append({"field": name, "before": None, "after": None, "change": t[name].iloc[1]})
    relabel = {d0.isoformat(): labels[0], d1.isoformat(): labels[1]}

    def lab(gdf):
        return gdf.assign(date_from=gdf["date_from"].map(relabel),
                          date_to=gdf["date_to"].map(relabel))

    return Comparison(table=pd.DataFrame(rows), opened=lab(series.opened),
                      closed=lab(series.closed), labels=labels, series=series)
