"""Incidents: ACLED / UCDP GED / CSV / point-layer readers, per-corridor figures and the
exploitation ratio.

Reading
    :func:`read_incidents` reads an ACLED export, a UCDP GED CSV (full releases with
    ``date_start``, the yearly files with ``year`` only, or the dated sample layout with
    ``date``), a generic CSV whose coordinate columns are found by name, or any point layer, and
    returns :class:`Incidents` with one normalised table. Rows that cannot be used are counted
    by reason in :attr:`Incidents.dropped` and reported with a warning; they are never dropped
    silently.

Assignment (docs/metrics.md, "Incidents")
    Each incident p is assigned to its nearest seam point q when
    ``|p − q| ≤ w(q)/2 + margin_km`` with ``w(q) = d_A(q) + d_B(q)``; an incident assigned to a
    point of corridor C counts for C.

Exploitation ratio
    Incident density (per km²) inside the gap region divided by the density in the rest of the
    study area, with an exact 95% interval: given ``n = n_gap + n_rest`` incidents, ``n_gap`` is
    binomial with ``p = r·A_gap / (r·A_gap + A_rest)``; the Clopper–Pearson interval on p is
    mapped to the ratio r (a monotone transform, so the interval stays exact).
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
import os
import re
import unicodedata
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Geod, Transformer
from scipy.stats import binomtest

from .crs import geodesic_area_km2, metric_crs
from .errors import DatePrecisionWarning, InputError, InputWarning

__all__ = [
    "Incidents",
    "IncidentMetrics",
    "read_incidents",
    "period_mask",
    "admin_mismatches",
    "place_similarity",
    "date_bounds",
    "format_dates",
    "format_date_columns",
    "DATE_PRECISION_COLUMNS",
    "PRECISIONS",
    "incident_metrics",
    "with_incidents",
    "exploitation_ratio",
    "INCIDENT_COLUMNS",
    "CORRIDOR_INCIDENT_COLUMNS",
    "DROP_REASONS",
]

log = logging.getLogger(__name__)

#: Normalised columns of :attr:`Incidents.gdf` (plus ``geometry``, EPSG:4326).
INCIDENT_COLUMNS = [
    "date", "date_precision", "type", "sub_type", "actor", "actor2", "fatalities", "coarse",
    "source_id", "notes", "admin1", "admin2", "location",
]
#: Fields added to each corridor by :func:`with_incidents`.
CORRIDOR_INCIDENT_COLUMNS = ["incidents", "fatalities", "incidents_per_100km", "first_date",
                             "last_date", "first_date_precision", "last_date_precision"]
#: Date columns and the column holding each one's precision (see :func:`format_date_columns`).
DATE_PRECISION_COLUMNS = {"date": "date_precision", "first_date": "first_date_precision",
                          "last_date": "last_date_precision"}
#: Reasons a row can be left out, as keys of :attr:`Incidents.dropped`.
DROP_REASONS = ("no_coordinates", "outside_world", "unreadable_date", "date_out_of_range",
                "duplicate_id", "imprecise_date", "filtered")
#: Years an incident date may have; rows dated outside are refused one by one.
YEARS = (1900, 2100)
#: Longest seam segment between exact evaluations of the width (m).
_W_STEP_M = 100.0

FORMATS = ("auto", "acled", "ucdp", "csv", "vector")
_VECTOR_SUFFIXES = {".geojson", ".json", ".gpkg", ".shp", ".fgb", ".parquet", ".geoparquet",
                    ".gml", ".kml", ".sqlite", ".zip"}
_LAT_NAMES = ("lat", "latitude", "y")
_LON_NAMES = ("lon", "lng", "long", "longitude", "x")
#: UCDP GED ``type_of_violence`` codes.
UCDP_TYPES = {1: "state-based", 2: "non-state", 3: "one-sided"}
#: ACLED ``time_precision``: 1 day known, 2 week, 3 month.
_ACLED_TIME_PREC = {1: "day", 2: "week", 3: "month"}
#: UCDP GED ``date_prec``: 1 exact day, 2 within 2–6 days, 3 within a week, 4 within a month,
#: 5 within a year.
_UCDP_DATE_PREC = {1: "day", 2: "week", 3: "week", 4: "month", 5: "year"}
#: Date layouts tried after ISO 8601, in order (ACLED's older exports write ``15 March 2019``).
_DATE_FORMATS = ("%d %B %Y", "%d-%B-%Y", "%d %b %Y", "%d-%b-%Y", "%Y/%m/%d", "%Y%m%d")
#: Layouts suggested (never applied unasked: 03/04/2019 reads both ways) for unread dates.
_GUESS_FORMATS = ("%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y", "%m-%d-%Y", "%d/%m/%y",
                  "%m/%d/%y", "%Y.%m.%d", "%d %m %Y")


# --------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class Incidents:
    """Incidents read from one source, in a normalised table.

    Attributes
    ----------
    gdf
        GeoDataFrame in EPSG:4326 with :data:`INCIDENT_COLUMNS`: ``date`` (datetime64; NaT when
        the source has no date), ``date_precision`` (``"day"``, ``"week"``, ``"month"``,
        ``"year"`` or ``None``), ``type``, ``sub_type``, ``actor``, ``actor2`` (strings or
        None), ``fatalities`` (float, NaN when unknown), ``coarse`` (bool: placed at a district
        or province centroid — ACLED ``geo_precision`` 3, UCDP ``where_prec`` ≥ 3),
        ``source_id`` and ``notes``.
    source_format
        ``"acled"``, ``"ucdp"``, ``"csv"`` or ``"vector"``.
    dropped
        Rows left out, by reason (:data:`DROP_REASONS`): ``no_coordinates``, ``outside_world``
        (latitude beyond ±90 or longitude beyond ±180), ``unreadable_date``,
        ``imprecise_date`` (dated only to a week, month or year that straddles the
        ``since``/``until`` window), ``filtered`` (by ``since``/``until``/``types``/``actors``).
    source
        The file read.
    rows_read
        Rows in the file before anything was left out.

    Examples
    --------
    >>> inc = read_incidents("geodata/incidents_ucdp_ged.csv")  # doctest: +SKIP
    >>> len(inc), inc.dropped  # doctest: +SKIP
    """

    gdf: gpd.GeoDataFrame
    source_format: str
    dropped: Mapping[str, int] = field(default_factory=dict)
    source: str | None = None
    rows_read: int = 0

    def __len__(self) -> int:
        return len(self.gdf)


@dataclass(frozen=True)
class IncidentMetrics:
    """Incidents measured against an :class:`~gapmap.Analysis`.

    Attributes
    ----------
    incidents
        One row per incident (EPSG:4326): the normalised columns plus ``corridor_id`` (the
        corridor — or ``m…`` minor stretch — holding the nearest seam point, NaN when
        unassigned or when that point is covered), ``distance_km`` (to the nearest seam point),
        ``width_km`` (w there), ``assigned`` (bool), ``in_study_area`` and ``in_gap`` (bool),
        ``used`` (bool: taken into assignment and ratio; False for coarse events by default).
    corridors
        One row per corridor of the analysis, in its order: ``corridor_id``, ``incidents``,
        ``fatalities``, ``incidents_per_100km``, ``first_date``, ``last_date``.
    minor
        The same for the minor (shorter) stretches.
    summary
        ``incidents_total`` (inside the study area: the events outside are one number,
        ``incidents_outside_study_area``), ``incidents_used``, ``incidents_coarse``,
        ``incidents_assigned``,
        ``incidents_in_corridors``, ``incidents_in_study_area``, ``incidents_in_gap``,
        ``incidents_in_rest``, ``rest_area_km2``, ``exploitation_ratio``,
        ``exploitation_ratio_low``, ``exploitation_ratio_high``, ``incident_margin_km``.
    margin_km, include_coarse
        Parameters used.
    """

    incidents: gpd.GeoDataFrame
    corridors: pd.DataFrame
    minor: pd.DataFrame
    summary: dict
    margin_km: float = 5.0
    include_coarse: bool = False


# --------------------------------------------------------------------------------------------
# dates and periods

#: Date precisions, finest first. An event's possible dates are the calendar unit of its
#: ``date`` at its precision: that day, ISO week (Monday–Sunday), calendar month or year.
PRECISIONS = ("day", "week", "month", "year")
_DAY = np.timedelta64(1, "D")


def _precision_array(precision, n: int) -> np.ndarray:
    """Per-event precision as an object array; None (unknown) means the date is the day."""
    if precision is None or isinstance(precision, str):
        prec = np.full(n, precision, dtype=object)
    else:
        prec = np.asarray(pd.Series(precision, dtype=object).to_numpy(), dtype=object)
        if len(prec) != n:
            raise ValueError(f"{len(prec)} precisions for {n} dates")
    prec = np.where(pd.isna(prec), "day", prec).astype(object)
    unknown = sorted(set(prec) - set(PRECISIONS))
    if unknown:
        raise InputError("date_precision", None, f"unknown precision {unknown[0]!r}",
                         f"use one of {', '.join(PRECISIONS)} or None")
    return prec


def _as_datetimes(dates) -> pd.Series:
    """Dates as a datetime64[ns] Series without time zone (strings read as ISO 8601)."""
    d = pd.Series(dates).reset_index(drop=True)
    if not pd.api.types.is_datetime64_any_dtype(d):
        d = pd.to_datetime(d.astype(object).where(d.notna(), None), format="ISO8601",
                           errors="coerce")
    if getattr(d.dt, "tz", None) is not None:
        d = d.dt.tz_convert(None)
    return d.astype("datetime64[ns]")


def date_bounds(dates, precision) -> tuple[np.ndarray, np.ndarray]:
    """The range of dates each event may have: ``[lo, hi)`` as datetime64[ns] arrays.

    Parameters
    ----------
    dates
        Dates (array-like of datetimes or strings; NaT for unknown).
    precision
        One of :data:`PRECISIONS` or None (the day), for all events or per event.

    Examples
    --------
    >>> lo, hi = date_bounds(["2017-07-01", "2019-03-15", "2020-02-12"],
    ...                      ["year", "month", "week"])
    >>> [str(d)[:10] for d in lo], [str(d)[:10] for d in hi]
    (['2017-01-01', '2019-03-01', '2020-02-10'], ['2018-01-01', '2019-04-01', '2020-02-17'])
    """
    d = _as_datetimes(dates).dt.normalize()
    prec = _precision_array(precision, len(d))
    lo = d.to_numpy().copy()
    hi = lo + _DAY
    week = prec == "week"
    if week.any():
        lo[week] = (d[week] - pd.to_timedelta(d[week].dt.weekday, unit="D")).to_numpy()
        hi[week] = lo[week] + 7 * _DAY
    for name, code in (("month", "M"), ("year", "Y")):
        sel = prec == name
        if sel.any():
            per = d[sel].dt.to_period(code)
            lo[sel] = per.dt.start_time.to_numpy()
            hi[sel] = (per + 1).dt.start_time.to_numpy()
    return lo, hi


def _as_bound(value) -> np.datetime64 | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert(None)
    return np.datetime64(ts.to_datetime64(), "ns")


def period_mask(dates, precision, start=None, end=None) -> tuple[np.ndarray, np.ndarray]:
    """Which events lie wholly inside the period ``[start, end)``, and which straddle it.

    An event's possible dates are ``[lo, hi)`` from :func:`date_bounds` (the day, ISO week,
    month or year of its ``date``). It is *inside* when ``start ≤ lo`` and ``hi ≤ end``, and
    *straddling* when its range overlaps the period without lying inside. Every date filter
    and every date window of gapmap uses this rule, so an event dated only to 2017 is kept by
    a window holding all of 2017 and by no narrower one.

    Parameters
    ----------
    dates
        Event dates (NaT when unknown).
    precision
        ``"day"``, ``"week"``, ``"month"``, ``"year"`` or None (the day), for all events or
        per event.
    start, end
        Start (inclusive) and end (exclusive) of the period; None leaves that side open.

    Returns
    -------
    (inside, straddling)
        Boolean arrays. An undated event (NaT) is inside only the fully open period and
        straddles every bounded one (its range is unknown).

    Examples
    --------
    >>> inside, straddling = period_mask(["2017-07-01", "2017-11-02"], ["year", "day"],
    ...                                  start="2017-10-16")
    >>> inside.tolist(), straddling.tolist()
    ([False, True], [True, False])
    >>> period_mask(["2017-07-01"], "year", "2017-01-01", "2018-01-01")[0].tolist()
    [True]
    """
    lo, hi = date_bounds(dates, precision)
    s, e = _as_bound(start), _as_bound(end)
    known = ~np.isnat(lo)
    inside = known.copy()
    overlap = known.copy()
    if s is not None:
        inside &= lo >= s
        overlap &= hi > s
    if e is not None:
        inside &= hi <= e
        overlap &= lo < e
    if s is None and e is None:
        return np.ones(len(lo), bool), np.zeros(len(lo), bool)
    return inside, (overlap & ~inside) | ~known


def format_dates(dates, precision) -> np.ndarray:
    """Dates as text at their precision: ``2017`` for a year, ``2017-03`` for a month, the
    day otherwise (a week-dated event shows the day given); ``""`` when unknown.

    Examples
    --------
    >>> format_dates(["2007-07-01", "2019-03-15", "2020-02-12", None],
    ...              ["year", "month", "day", None]).tolist()
    ['2007', '2019-03', '2020-02-12', '']
    """
    d = _as_datetimes(dates)
    prec = _precision_array(precision, len(d))
    text = d.dt.strftime("%Y-%m-%d").to_numpy(dtype=object)
    for name, fmt in (("month", "%Y-%m"), ("year", "%Y")):
        sel = prec == name
        if sel.any():
            text[sel] = d[sel].dt.strftime(fmt).to_numpy(dtype=object)
    return np.where(pd.isna(text), "", text).astype(object)


def format_date_columns(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``table`` whose date columns are text at their precision, ready to print.

    Each column of :data:`DATE_PRECISION_COLUMNS` (``date``, ``first_date``, ``last_date``)
    that holds datetimes becomes :func:`format_dates` text using its precision column
    (``date_precision``, …; the day when there is none): ``2016`` for an event dated only to
    2016, never ``2016-07-01``. ``first_date_precision`` and ``last_date_precision`` are then
    dropped (the text says it); ``date_precision`` stays (it describes each event). Every
    table gapmap writes as CSV or JSON and every drawing of such a table goes through this.

    Examples
    --------
    >>> t = pd.DataFrame({"corridor_id": ["1", "2"],
    ...                   "first_date": pd.to_datetime(["2016-01-01", "2019-03-05"]),
    ...                   "first_date_precision": ["year", "day"]})
    >>> format_date_columns(t).to_dict("list")
    {'corridor_id': ['1', '2'], 'first_date': ['2016', '2019-03-05']}
    """
    out = table.copy()
    for col, pcol in DATE_PRECISION_COLUMNS.items():
        if col in out.columns and pd.api.types.is_datetime64_any_dtype(out[col]):
            prec = out[pcol].to_numpy(dtype=object) if pcol in out.columns else None
            out[col] = pd.Series(format_dates(out[col].to_numpy(), prec), index=out.index,
                                 dtype=object)
    return out.drop(columns=[c for c in ("first_date_precision", "last_date_precision")
                             if c in out.columns])


def _warn_straddling(count: int, what: str) -> None:
    if count:
        warnings.warn(f"{count} incident(s) dated only to a week, month or year straddle "
                      f"{what}: counted apart", DatePrecisionWarning, stacklevel=3)


# --------------------------------------------------------------------------------------------
# reading


def _find(columns: Iterable, *names: str) -> str | None:
    """First column matching one of ``names`` (case-insensitive), in the order of ``names``."""
    lower = {}
    for c in columns:
        lower.setdefault(str(c).strip().lower(), c)
    for n in names:
        if n.lower() in lower:
            return lower[n.lower()]
    return None


def _read_csv(p: Path) -> pd.DataFrame:
    """Read a CSV as text columns (numbers are converted per field, so that one bad value
    costs one row, not the column)."""
    from .io import read_text_csv

    return read_text_csv(p, what="incident", row="incident", low_memory=False)


def _detect_schema(columns: Sequence[str]) -> str:
    """``"acled"``, ``"ucdp"`` or ``"csv"`` from the column names."""
    if _find(columns, "event_date") and (_find(columns, "event_id_cnty", "geo_precision",
                                                      "event_type")):
        return "acled"
    if _find(columns, "where_prec", "type_of_violence", "dyad_name", "date_start"):
        return "ucdp"
    return "csv"


def _parse_dates(values: pd.Series, date_format: str | None = None) -> pd.Series:
    """Parse dates written as ISO 8601 (``2019-03-15``) or the older ACLED ``15 March 2019``
    (``date_format``, a strftime layout, is tried first when given).

    Examples
    --------
    >>> d = _parse_dates(pd.Series(["2019-03-15", "15 March 2019", "1 Jan 2020", "soon"]))
    >>> d.dt.strftime("%Y-%m-%d").tolist()
    ['2019-03-15', '2019-03-15', '2020-01-01', nan]
    >>> _parse_dates(pd.Series(["03/15/2019"]), "%m/%d/%Y").dt.day.tolist()
    [15]
    """
    text = values.astype("string").str.strip()
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    layouts = ((date_format,) if date_format else ()) + ("ISO8601",) + _DATE_FORMATS
    for fmt in layouts:
        todo = out.isna() & text.notna()
        if not todo.any():
            break
        parsed = pd.to_datetime(text.where(todo), format=fmt, errors="coerce")
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_convert(None)
        # Years beyond what datetime64[ns] holds (9999-12-31) come back in seconds: such
        # rows are refused by _out_of_range, not here.
        year = parsed.dt.year
        parsed = parsed.where((year >= YEARS[0]) & (year <= YEARS[1]))
        out = out.where(~todo, parsed.astype("datetime64[ns]"))
    return out.astype("datetime64[ns]")


def _out_of_range(text: pd.Series | None, dates: pd.Series) -> np.ndarray:
    """Rows whose date lies outside :data:`YEARS` (parsed, or beyond what a datetime holds:
    ``9999-12-31`` does not parse, but its year says why)."""
    lo, hi = YEARS
    year = dates.dt.year.to_numpy(dtype=float)
    if text is not None:
        unparsed = dates.isna().to_numpy()
        digits = text.astype("string").str.extract(r"(?<!\d)(\d{4,})(?!\d)", expand=False)
        guess = pd.to_numeric(digits, errors="coerce").to_numpy(dtype=float)
        year = np.where(unparsed, guess, year)
    return np.isfinite(year) & ((year < lo) | (year > hi))


def _suggest_date_format(samples: Sequence[str]) -> str | None:
    """A layout of :data:`_GUESS_FORMATS` that reads every sample, if one does."""
    for fmt in _GUESS_FORMATS:
        if pd.to_datetime(pd.Series(list(samples)), format=fmt, errors="coerce").notna().all():
            return fmt
    return None


def _warn_unreadable_dates(p: Path, column: str, text: pd.Series, bad: np.ndarray,
                           date_format: str | None) -> None:
    """One warning naming the layouts tried, an example and, when one fits, a layout."""
    if not bad.any():
        return
    samples = text[bad].astype(str).head(20).tolist()
    tried = (f"--date-format {date_format}, " if date_format else "") + "ISO 8601 (YYYY-MM-DD)"
    fmt = _suggest_date_format(samples)
    hint = (f"; they read as --date-format '{fmt}'" if fmt else
            "; give their layout with --date-format (e.g. '%d.%m.%Y')")
    warnings.warn(f"{p}: {column}: {int(bad.sum())} date(s) in an unrecognised format, e.g. "
                  f"{samples[0]!r} (tried {tried} and ACLED's '15 March 2019'){hint}",
                  InputWarning, stacklevel=4)


def _numeric(values: pd.Series | None, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, np.nan)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)


def _text(values: pd.Series | None, n: int) -> np.ndarray:
    """Strings (stripped) with None for missing values."""
    if values is None:
        return np.full(n, None, dtype=object)
    s = values.astype("string").str.strip()
    s = s.where(s.notna() & (s != ""))
    return np.asarray(s.astype(object).where(s.notna(), None), dtype=object)


def _as_list(values: str | Iterable[str] | None) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = values.split(",") if "," in values else [values]
    return [str(v).strip() for v in values if str(v).strip()]


def _as_date(value, option: str) -> pd.Timestamp | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    ts = pd.to_datetime(pd.Series([str(value)]), format="ISO8601", errors="coerce").iloc[0]
    if pd.isna(ts) or not (YEARS[0] <= ts.year <= YEARS[1]):
        raise InputError(option, None, f"cannot read the date {value!r}",
                         f"write dates as YYYY-MM-DD between {YEARS[0]} and {YEARS[1]}")
    return pd.Timestamp(ts).tz_localize(None) if ts.tzinfo else pd.Timestamp(ts)


class _Columns:
    """Column lookup on one table, remembering which source column fed which field."""

    def __init__(self, df: pd.DataFrame) -> None:
        self.df, self.n, self.used = df, len(df), {}

    def get(self, field_name: str | None, *names: str) -> pd.Series | None:
        c = _find(self.df.columns, *names)
        if field_name is not None and c is not None:
            self.used.setdefault(field_name, c)
        return None if c is None else self.df[c]

    def text(self, field_name: str, *names: str) -> np.ndarray:
        return _text(self.get(field_name, *names), self.n)

    def number(self, field_name: str | None, *names: str) -> np.ndarray:
        return _numeric(self.get(field_name, *names), self.n)


def _coded_precision(codes: np.ndarray, table: Mapping[int, str]) -> np.ndarray:
    prec = np.full(len(codes), "day", dtype=object)  # no code: the day is known
    for k, v in table.items():
        prec[codes == k] = v
    return prec


def _acled_fields(c: _Columns, date_format: str | None) -> dict:
    """ACLED: event_date with time_precision, geo_precision, admin names."""
    dates = _parse_dates(c.get("date", "event_date"), date_format)
    return dict(
        date=dates, date_precision=_coded_precision(c.number(None, "time_precision"),
                                                    _ACLED_TIME_PREC),
        type=c.text("type", "event_type"), sub_type=c.text("sub_type", "sub_event_type"),
        actor=c.text("actor", "actor1"), actor2=c.text("actor2", "actor2"),
        fatalities=c.number("fatalities", "fatalities"),
        coarse=c.number(None, "geo_precision") >= 3,
        source_id=c.text("source_id", "event_id_cnty", "event_id_no_cnty", "data_id"),
        notes=c.text("notes", "notes"), admin1=c.text("admin1", "admin1"),
        admin2=c.text("admin2", "admin2"), location=c.text("location", "location"),
    )


def _widen_to_span(dates: pd.Series, ends: pd.Series, prec: np.ndarray) -> np.ndarray:
    """The finest precision whose calendar unit holds both the start and the end date.

    A span across a year's end keeps ``"year"`` (of its start): the rare event it misplaces
    lies within days of that year.
    """
    prec = prec.copy()
    span = (ends > dates).to_numpy()
    if not span.any():
        return prec
    rank = {p: i for i, p in enumerate(PRECISIONS)}
    s, e = dates[span], ends[span]
    need = np.where((s - pd.to_timedelta(s.dt.weekday, unit="D")).dt.normalize()
                    == (e - pd.to_timedelta(e.dt.weekday, unit="D")).dt.normalize(), 1,
                    np.where(s.dt.to_period("M") == e.dt.to_period("M"), 2, 3))
    have = np.array([rank[p] for p in prec[span]])
    prec[span] = np.array(PRECISIONS, dtype=object)[np.maximum(have, need)]
    return prec


def _ucdp_dates(c: _Columns, src: str, date_format: str | None) -> tuple[pd.Series, np.ndarray]:
    """UCDP GED dates: date_start (and date_end, date_prec), or only the year."""
    start = c.get("date", "date_start", "date")
    if start is not None:
        dates = _parse_dates(start, date_format)
        prec = _coded_precision(c.number(None, "date_prec"), _UCDP_DATE_PREC)
        end = c.get(None, "date_end")
        if end is not None:
            prec = _widen_to_span(dates, _parse_dates(end, date_format), prec)
        return dates, prec
    year_col = c.get("date", "year")
    if year_col is None:
        raise InputError(src, "date_start", "UCDP GED file without date_start, date or year",
                         "give the GED CSV as released (with date_start or year)")
    year = _numeric(year_col, c.n)
    ok = np.isfinite(year) & (year >= YEARS[0]) & (year <= YEARS[1]) & (year == np.round(year))
    # Yearly files: the event's day is unknown; mid-year (1 July) keeps the error of any date
    # arithmetic below half a year. Flagged date_precision="year" for period_mask.
    dates = pd.Series(pd.NaT, index=c.df.index, dtype="datetime64[ns]")
    if ok.any():
        dates[ok] = pd.to_datetime(pd.DataFrame({"year": year[ok].astype(int), "month": 7,
                                                 "day": 1}))
    return dates, np.full(c.n, "year", dtype=object)


def _ucdp_fields(c: _Columns, src: str, date_format: str | None) -> dict:
    """UCDP GED: dates, type_of_violence, best estimate of deaths, where_prec, adm names."""
    dates, prec = _ucdp_dates(c, src, date_format)
    tov = c.number(None, "type_of_violence")
    types = np.full(c.n, None, dtype=object)
    for k, v in UCDP_TYPES.items():
        types[tov == k] = v
    notes_src = "source_headline" if _find(c.df.columns, "source_headline") else "dyad_name"
    return dict(
        date=dates, date_precision=prec, type=types, sub_type=np.full(c.n, None, dtype=object),
        actor=c.text("actor", "side_a"), actor2=c.text("actor2", "side_b"),
        fatalities=c.number("fatalities", "best"), coarse=c.number(None, "where_prec") >= 3,
        source_id=c.text("source_id", "id"), notes=c.text("notes", notes_src),
        admin1=c.text("admin1", "adm_1"), admin2=c.text("admin2", "adm_2"),
        location=c.text("location", "where_coordinates"),
    )


def _csv_fields(c: _Columns, date_format: str | None) -> dict:
    """Any other table: fields found by their usual names."""
    col = c.get("date", "date", "event_date", "date_start", "datetime", "time")
    if col is not None:
        dates = _parse_dates(col, date_format)
        prec = np.full(c.n, "day", dtype=object)
    else:
        dates = pd.Series(pd.NaT, index=c.df.index, dtype="datetime64[ns]")
        prec = np.full(c.n, None, dtype=object)
    coarse = (c.number(None, "geo_precision") >= 3) | (c.number(None, "where_prec") >= 3)
    flag = c.get(None, "coarse")
    if flag is not None:
        coarse |= flag.astype("string").str.strip().str.lower().isin(
            ["1", "true", "yes", "y", "t"]).fillna(False).to_numpy(dtype=bool)
    return dict(
        date=dates, date_precision=prec,
        type=c.text("type", "type", "event_type", "category", "kind"),
        sub_type=c.text("sub_type", "sub_type", "sub_event_type", "subtype"),
        actor=c.text("actor", "actor", "actor1", "side_a", "perpetrator"),
        actor2=c.text("actor2", "actor2", "side_b", "target"),
        fatalities=c.number("fatalities", "fatalities", "deaths", "killed", "best"),
        coarse=coarse,
        source_id=c.text("source_id", "id", "event_id", "event_id_cnty", "source_id", "fid"),
        notes=c.text("notes", "notes", "description", "note", "comment", "comments"),
        admin1=c.text("admin1", "admin1", "adm_1", "governorate", "province"),
        admin2=c.text("admin2", "admin2", "adm_2", "district"),
        location=c.text("location", "location", "place", "town", "where_coordinates"),
    )


def _normalise(df: pd.DataFrame, schema: str, src: str, date_format: str | None = None
               ) -> tuple[dict, dict]:
    """Map a source table to the normalised fields (:data:`INCIDENT_COLUMNS`).

    Returns the fields and, for messages, the source column each came from (``used``; a
    ``source_id`` made of row numbers has no column).
    """
    c = _Columns(df)
    if schema == "acled":
        out = _acled_fields(c, date_format)
    elif schema == "ucdp":
        out = _ucdp_fields(c, src, date_format)
    else:
        out = _csv_fields(c, date_format)
    out["date"] = out["date"].reset_index(drop=True)
    out["date_precision"] = np.asarray(out["date_precision"], dtype=object)
    out["coarse"] = np.asarray(out["coarse"], dtype=bool)
    if pd.isna(out["source_id"]).all():
        out["source_id"] = np.arange(1, c.n + 1).astype(str).astype(object)  # row numbers
        c.used.pop("source_id", None)
    return out, c.used


def _read_vector(p: Path, layer: str | None) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Attributes, lon and lat (NaN for missing/empty geometries) of a point layer."""
    try:
        if p.suffix.lower() in {".parquet", ".geoparquet"}:
            gdf = gpd.read_parquet(p)
        else:
            gdf = gpd.read_file(p, **({"layer": layer} if layer is not None else {}))
    except Exception as exc:  # the driver's message is the useful one
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(p, layer, f"cannot read the incident layer: {first}",
                         "check the file, or name the layer") from exc
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry is None:
        raise InputError(p, "geometry", "the incident layer has no geometry",
                         "give a point layer, or a CSV with latitude/longitude columns")
    if gdf.crs is None:
        raise InputError(p, "crs", "the incident layer has no coordinate reference system",
                         "declare its CRS (GeoJSON is lon/lat, EPSG:4326)")
    geom = gdf.geometry.values
    missing = shapely.is_missing(geom) | shapely.is_empty(geom)
    kinds = shapely.get_type_id(geom)
    bad = ~missing & ~np.isin(kinds, [0, 4])  # Point, MultiPoint
    if bad.any():
        found = sorted(set(gdf.geometry.geom_type[bad]))
        raise InputError(p, "geometry", f"incidents must be points, found {found}",
                         "give a point layer (one point per incident)")
    gdf = gdf.explode(index_parts=False, ignore_index=True) if (kinds == 4).any() else gdf
    gdf = gdf.reset_index(drop=True)
    geom = gdf.geometry.values
    missing = shapely.is_missing(geom) | shapely.is_empty(geom)
    lonlat = np.full((len(gdf), 2), np.nan)
    if (~missing).any():
        ll = gpd.GeoSeries(geom[~missing], crs=gdf.crs).to_crs(4326)
        lonlat[~missing] = shapely.get_coordinates(ll.values)
    attrs = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    return attrs, lonlat[:, 0], lonlat[:, 1]


@dataclass(frozen=True)
class _Rows:
    """A source read: its attribute table, lon/lat of each row, and where they came from."""

    df: pd.DataFrame
    x: np.ndarray
    y: np.ndarray
    schema: str
    source_format: str
    coords: str  # the coordinate columns, for messages ("latitude/longitude", "geometry")


def _check_request(p: Path, format: str | None, since, until  # noqa: A002
                   ) -> tuple[str, pd.Timestamp | None, pd.Timestamp | None]:
    """The format and the date window, checked before anything is read."""
    fmt = str(format or "auto").lower()
    if fmt not in FORMATS:
        raise InputError("--incidents-format", None, f"unknown format {format!r}",
                         f"use one of {', '.join(FORMATS)}")
    if not p.exists():
        raise InputError(p, None, "incident file not found", "check the path")
    if p.is_dir() and p.suffix.lower() != ".gdb":
        raise InputError(p, None, "the incident path is a folder", "give a file")
    since_ts, until_ts = _as_date(since, "--since"), _as_date(until, "--until")
    if since_ts is not None and until_ts is not None and since_ts > until_ts:
        raise InputError("--since", None, f"{since} is after --until {until}",
                         "give a start date on or before the end date")
    return fmt, since_ts, until_ts


def _coordinate_columns(p: Path, df: pd.DataFrame, lat: str | None, lon: str | None
                        ) -> tuple[str, str]:
    """The latitude and longitude columns of a table (given, or found by name)."""
    lat_col = _find(df.columns, lat) if lat else _find(df.columns, *_LAT_NAMES)
    lon_col = _find(df.columns, lon) if lon else _find(df.columns, *_LON_NAMES)
    if lat_col is not None and lon_col is not None:
        return lat_col, lon_col
    which = "/".join(k for k, c in (("lat", lat_col), ("lon", lon_col)) if c is None)
    given = lat if lat_col is None and lat else lon if lon_col is None and lon else None
    listed = ", ".join(map(str, df.columns[:12])) + (", …" if len(df.columns) > 12 else "")
    problem = (f"column {given!r} not found" if given else
               f"no {which} column found (columns: {listed})")
    raise InputError(p, given or "latitude/longitude", problem,
                     "name the coordinate columns latitude and longitude (or lat/lon), "
                     "or give their names with --incidents-lat/--incidents-lon")


def _read_rows(p: Path, fmt: str, layer: str | None, lat: str | None, lon: str | None
               ) -> _Rows:
    """Step 1–2: read the file and detect its schema (ACLED, UCDP GED, generic)."""
    if fmt == "vector" or (fmt == "auto" and p.suffix.lower() in _VECTOR_SUFFIXES):
        df, x, y = _read_vector(p, layer)
        rows = _Rows(df, x, y, _detect_schema(df.columns), "vector", "geometry")
    else:
        df = _read_csv(p)
        schema = _detect_schema(df.columns) if fmt == "auto" else fmt
        if schema == "acled" and _find(df.columns, "event_date") is None:
            raise InputError(p, "event_date", "column not found in an ACLED export",
                             "give the ACLED export as downloaded, or use --incidents-format csv")
        if schema == "ucdp" and _find(df.columns, "date_start", "date", "year") is None:
            raise InputError(p, "date_start", "column not found in a UCDP GED file",
                             "give the GED CSV as released, or use --incidents-format csv")
        lat_col, lon_col = _coordinate_columns(p, df, lat, lon)

        def number(c: str) -> np.ndarray:
            return pd.to_numeric(df[c].astype("string").str.strip(), errors="coerce"
                                 ).to_numpy(dtype=float)

        rows = _Rows(df, number(lon_col), number(lat_col), schema, schema,
                     f"{lat_col}/{lon_col}")
    if len(rows.df) == 0:
        raise InputError(p, None, "the incident file has no rows", "give at least one incident")
    return rows


def _check_values(p: Path, rows: _Rows, fields: dict, used: dict) -> None:
    """Refuse what no row-by-row repair can fix: negative deaths, swapped coordinates."""
    fat = fields["fatalities"]
    if (fat < 0).any():
        k = int(np.flatnonzero(fat < 0)[0])
        raise InputError(p, used.get("fatalities", "fatalities"),
                         f"{int((fat < 0).sum())} negative fatality count(s) "
                         f"(first: {fat[k]:g} in row {k + 1})",
                         "give counts ≥ 0 (leave the field empty when unknown)")
    x, y = rows.x, rows.y
    finite = np.isfinite(x) & np.isfinite(y)
    bad_lat = finite & (np.abs(y) > 90)
    swapped_ok = bad_lat & (np.abs(x) <= 90) & (np.abs(y) <= 180)
    if finite.any() and swapped_ok.sum() > finite.sum() / 2:
        raise InputError(p, rows.coords, f"latitude and longitude look swapped: "
                         f"{int(bad_lat.sum())} of {int(finite.sum())} latitudes beyond ±90",
                         "name the columns with --incidents-lat/--incidents-lon (or swap them)")


def _row_drops(p: Path, rows: _Rows, fields: dict, used: dict, date_format: str | None
               ) -> tuple[np.ndarray, dict]:
    """Step 5: rows that cannot be used, by reason; the usable ones."""
    x, y, dates = rows.x, rows.y, fields["date"]
    no_xy = ~(np.isfinite(x) & np.isfinite(y))
    outside = ~no_xy & ((np.abs(y) > 90) | (np.abs(x) > 180))
    located = ~no_xy & ~outside
    date_col = used.get("date")
    bad_range = np.zeros(len(x), bool)
    bad_date = np.zeros(len(x), bool)
    if date_col is not None:
        text = rows.df[date_col].reset_index(drop=True)
        bad_range = located & _out_of_range(text, dates)
        bad_date = located & ~bad_range & dates.isna().to_numpy() & text.notna().to_numpy()
        bad_date |= located & dates.isna().to_numpy() & text.isna().to_numpy()
        _warn_unreadable_dates(p, date_col, text.astype("string"),
                               bad_date & text.notna().to_numpy(), date_format)
        fields["date"] = dates.where(~pd.Series(bad_range), pd.NaT)
    dropped = {"no_coordinates": int(no_xy.sum()), "outside_world": int(outside.sum()),
               "unreadable_date": int(bad_date.sum()), "date_out_of_range": int(bad_range.sum())}
    usable = located & ~bad_date & ~bad_range
    if not usable.any():
        reason = max(dropped, key=lambda k: dropped[k])
        dated = reason in ("unreadable_date", "date_out_of_range")
        fix = (f"write dates as YYYY-MM-DD between {YEARS[0]} and {YEARS[1]} (or give "
               "--date-format)" if dated else "give decimal degrees (WGS84 latitude/longitude)")
        raise InputError(p, date_col if dated else rows.coords,
                         f"no usable incident in {len(x)} row(s) ({_describe_drops(dropped)})",
                         fix)
    return usable, dropped


def _deduplicate(p: Path, fields: dict, used: dict, usable: np.ndarray) -> np.ndarray:
    """Step 5: keep the first of the usable rows sharing an event id (warned)."""
    if "source_id" not in used:  # ids are row numbers
        return np.zeros(len(usable), bool)
    ids = pd.Series(fields["source_id"], dtype=object)
    dup = usable & ids.notna().to_numpy() & ids.where(usable).duplicated().to_numpy()
    if dup.any():
        warnings.warn(f"{p}: {used['source_id']}: {int(dup.sum())} duplicate event id(s) "
                      f"(e.g. {ids[dup].iloc[0]!r}): kept the first of each",
                      InputWarning, stacklevel=3)
    return dup


def _type_mask(p: Path, fields: dict, usable: np.ndarray, types) -> np.ndarray:
    """Rows whose type or sub-type is one of ``types``; a type matching nothing is named
    with the values present."""
    wanted = [t.lower() for t in _as_list(types)]
    t1 = pd.Series(fields["type"], dtype="string").str.lower()
    t2 = pd.Series(fields["sub_type"], dtype="string").str.lower()
    codes = {str(k): v for k, v in UCDP_TYPES.items()}
    keep = np.zeros(len(usable), bool)
    missing = []
    for t in wanted:
        names = {t, codes.get(t, t)}
        hit = (t1.isin(names) | t2.isin(names)).fillna(False).to_numpy(dtype=bool) & usable
        if not hit.any():
            missing.append(t)
        keep |= hit
    if missing:
        present = sorted(set(pd.Series(fields["type"][usable]).dropna()) |
                         set(pd.Series(fields["sub_type"][usable]).dropna()))
        listed = ", ".join(present[:20]) + (", …" if len(present) > 20 else "") or "none"
        msg = f"no incident has type {', '.join(map(repr, missing))}; types present: {listed}"
        if not keep.any():
            raise InputError(p, "--type", msg, "give one of the types present")
        warnings.warn(f"{p}: --type: {msg}", InputWarning, stacklevel=3)
    return keep


def _actor_mask(fields: dict, actors) -> np.ndarray:
    """Rows where one of ``actors`` occurs as a whole word or phrase in either actor."""
    wanted = [a.lower() for a in _as_list(actors)]
    a1 = pd.Series(fields["actor"], dtype="string").str.lower()
    a2 = pd.Series(fields["actor2"], dtype="string").str.lower()
    # Whole words only: "IS" must not match "Kurdistan".
    pattern = "|".join(rf"(?<!\w){re.escape(a)}(?!\w)" for a in wanted)
    hit = a1.str.contains(pattern, regex=True) | a2.str.contains(pattern, regex=True)
    return hit.fillna(False).to_numpy(dtype=bool)


def _filter(p: Path, fields: dict, used: dict, usable: np.ndarray, since_ts, until_ts,
            types, actors) -> tuple[np.ndarray, int]:
    """Step 5: the date window (by :func:`period_mask`), types and actors; returns the rows
    kept and how many straddle the window."""
    keep = usable.copy()
    straddle = 0
    if since_ts is not None or until_ts is not None:
        if used.get("date") is None:
            raise InputError(p, "date", "cannot filter by date: the file has no date column",
                             "drop --since/--until, or add a date column (YYYY-MM-DD)")
        end = None if until_ts is None else until_ts.normalize() + pd.Timedelta(days=1)
        inside, straddling = period_mask(fields["date"], fields["date_precision"], since_ts, end)
        straddle = int((keep & straddling).sum())
        lo = since_ts.date() if since_ts is not None else "…"
        hi = until_ts.date() if until_ts is not None else "…"
        _warn_straddling(straddle, f"the window {lo} – {hi}")
        keep &= inside
    if _as_list(types):
        keep &= _type_mask(p, fields, keep, types)
    if _as_list(actors):
        keep &= _actor_mask(fields, actors)
    return keep, straddle


def _incident_table(p: Path, rows: _Rows, fields: dict, keep: np.ndarray) -> gpd.GeoDataFrame:
    """Step 6: the normalised GeoDataFrame of the rows kept."""
    idx = np.flatnonzero(keep)
    data = {k: (v.iloc[idx].reset_index(drop=True) if isinstance(v, pd.Series) else v[idx])
            for k, v in fields.items()}
    table = pd.DataFrame({c: data[c] for c in INCIDENT_COLUMNS})
    table["date"] = table["date"].astype("datetime64[ns]")
    table["fatalities"] = table["fatalities"].astype(float)
    table["coarse"] = table["coarse"].astype(bool)
    gdf = gpd.GeoDataFrame(table, geometry=shapely.points(rows.x[idx], rows.y[idx]), crs=4326)
    gdf.attrs["source"] = str(p)
    return gdf


def _report_drops(p: Path, n: int, dropped: dict, keep: np.ndarray, has_date: bool) -> None:
    """One warning for the rows that could not be used; the filtered ones are logged."""
    unusable = {k: v for k, v in dropped.items() if k not in ("filtered", "imprecise_date")}
    if any(unusable.values()):
        warnings.warn(f"{p}: {sum(unusable.values())} of {n} incident rows left out "
                      f"({_describe_drops(unusable)})", InputWarning, stacklevel=3)
    if dropped["filtered"]:
        log.info("%s: %d incident(s) outside the filters", p, dropped["filtered"])
    if not keep.any():
        warnings.warn(f"{p}: no incident matches the filters", InputWarning, stacklevel=3)
    if not has_date:
        log.info("%s: no date column; incidents have no dates", p)


def read_incidents(
    path: str | os.PathLike,
    *,
    format: str = "auto",  # noqa: A002 — the name users know from the CLI (--incidents-format)
    lat: str | None = None,
    lon: str | None = None,
    since: str | pd.Timestamp | None = None,
    until: str | pd.Timestamp | None = None,
    types: str | Iterable[str] | None = None,
    actors: str | Iterable[str] | None = None,
    layer: str | None = None,
    date_format: str | None = None,
) -> Incidents:
    """Read incidents from an ACLED export, a UCDP GED CSV, a CSV with coordinates, or a point
    layer.

    Parameters
    ----------
    path
        The file.
    format
        ``"auto"`` (from the extension and the column names), ``"acled"``, ``"ucdp"``, ``"csv"``
        or ``"vector"``.
    lat, lon
        Names of the coordinate columns of a CSV; found by name when omitted (``lat``,
        ``latitude``, ``y`` / ``lon``, ``lng``, ``long``, ``longitude``, ``x``).
    since, until
        Keep incidents on or after / on or before these dates (``YYYY-MM-DD``, inclusive).
        Events known only to a week, month or year are kept only when that whole week, month
        or year lies in the window; those that straddle it are counted apart
        (``dropped["imprecise_date"]``, one :class:`~gapmap.errors.DatePrecisionWarning`).
    types
        Keep incidents whose type (ACLED ``event_type`` or ``sub_event_type``; UCDP
        ``type_of_violence`` as ``state-based``/``non-state``/``one-sided`` or ``1``/``2``/``3``)
        equals one of these, case-insensitively. A type that matches nothing is named with the
        types present (an error when no type matches, a warning otherwise).
    actors
        Keep incidents where one of these names occurs as a whole word or phrase
        (case-insensitive) in either actor (ACLED ``actor1``/``actor2``, UCDP
        ``side_a``/``side_b``).
    layer
        Layer name in a multi-layer vector source.
    date_format
        strftime layout of the dates (e.g. ``"%d/%m/%Y"``), tried before ISO 8601 and
        ACLED's ``15 March 2019``. Dates no layout reads are counted and warned, with a
        layout that reads them when one of the usual ones does.

    Returns
    -------
    Incidents

    Notes
    -----
    The steps: read the rows (:func:`_read_rows`), detect the schema, normalise the fields
    and parse the dates (:func:`_normalise`), refuse impossible values (negative fatalities,
    swapped coordinates), count the unusable rows by reason, drop duplicate event ids, and
    filter. UCDP GED yearly files carry only ``year``: their date is set to 1 July of that
    year and ``date_precision`` to ``"year"``. Coarse locations (ACLED ``geo_precision`` 3,
    UCDP GED ``where_prec`` ≥ 3) are kept and flagged in ``coarse``; the metrics leave them
    out by default. Dates outside 1900–2100 are refused per row.

    Raises
    ------
    InputError
        Missing file, unknown format, no coordinate columns, negative fatalities, swapped
        coordinates, a ``types`` filter matching nothing, or no usable row.

    Examples
    --------
    >>> inc = read_incidents("acled_iraq.csv", since="2017-10-16",
    ...                      types=["Explosions/Remote violence"])  # doctest: +SKIP
    >>> inc.gdf[["date", "type", "fatalities", "coarse"]].head()  # doctest: +SKIP
    """
    p = Path(path)
    fmt, since_ts, until_ts = _check_request(p, format, since, until)
    rows = _read_rows(p, fmt, layer, lat, lon)
    fields, used = _normalise(rows.df.reset_index(drop=True), rows.schema, str(p), date_format)
    _check_values(p, rows, fields, used)
    usable, dropped = _row_drops(p, rows, fields, used, date_format)
    dup = _deduplicate(p, fields, used, usable)
    dropped["duplicate_id"] = int(dup.sum())
    usable &= ~dup
    keep, straddle = _filter(p, fields, used, usable, since_ts, until_ts, types, actors)
    dropped["imprecise_date"] = straddle
    dropped["filtered"] = int((usable & ~keep).sum()) - straddle
    _report_drops(p, len(rows.df), dropped, keep, used.get("date") is not None)
    gdf = _incident_table(p, rows, fields, keep)
    dropped = {k: dropped[k] for k in DROP_REASONS}
    return Incidents(gdf=gdf, source_format=rows.source_format, dropped=dropped, source=str(p),
                     rows_read=len(rows.df))


def _describe_drops(dropped: Mapping[str, int]) -> str:
    words = {"no_coordinates": "without coordinates", "outside_world": "outside ±90/±180",
             "unreadable_date": "with unreadable dates",
             "date_out_of_range": f"dated outside {YEARS[0]}–{YEARS[1]}",
             "duplicate_id": "duplicate event ids",
             "imprecise_date": "dated too coarsely for the window", "filtered": "filtered out"}
    parts = [f"{v} {words[k]}" for k, v in dropped.items() if v]
    return ", ".join(parts) if parts else "none"


# --------------------------------------------------------------------------------------------
# stated places

#: Words dropped before place names are compared ("al-Hawija district" ~ "Hawija").
_PLACE_WORDS = {"al", "el", "an", "ad", "as", "ar", "at", "az", "ash", "district", "governorate",
                "province", "qadha", "qada", "qadaa", "kaza", "nahiya", "nahia", "subdistrict",
                "sub", "city", "town", "muhafazat", "markaz", "center", "centre", "of", "the"}
#: Transliteration variants folded together (Tooz ~ Tuz, Khurmatu ~ Kurmatu).
_FOLDS = (("ou", "u"), ("oo", "u"), ("o", "u"), ("ee", "i"), ("e", "i"), ("y", "i"),
          ("kh", "k"), ("gh", "g"), ("q", "k"), ("dh", "d"), ("th", "t"), ("sh", "s"),
          ("ph", "f"), ("w", "u"), ("v", "u"))


def place_key(name) -> tuple[str, ...]:
    """A name folded for tolerant comparison: accents, case, punctuation, common words
    (``al-``, ``district`` …) and transliteration variants removed, as tokens.

    Examples
    --------
    >>> place_key("Tooz"), place_key("Tuz Khurmatu District")
    (('tuz',), ('tuz', 'kurmatu'))
    >>> place_key("Salah al-Din")
    ('salah', 'din')
    """
    if name is None or (isinstance(name, float) and math.isnan(name)):
        return ()
    text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"[^a-z]+", " ", text.replace("'", "").replace("`", ""))
    tokens = []
    for tok in text.split():
        if tok in _PLACE_WORDS:
            continue
        for a, b in _FOLDS:
            tok = tok.replace(a, b)
        tokens.append(re.sub(r"(.)\1+", r"\1", tok))  # doubled letters: Hawijja ~ Hawija
    return tuple(t for t in tokens if t)


def place_similarity(a, b) -> float:
    """How alike two place names are, 0–1: 1 when their folded keys are equal or one key's
    tokens begin the other's (``Tooz`` ~ ``Tuz Khurmatu``), else the
    :class:`difflib.SequenceMatcher` ratio of the joined keys.

    Examples
    --------
    >>> place_similarity("Tooz", "Tuz Khurmatu"), round(place_similarity("Kirkuk", "Diyala"), 2)
    (1.0, 0.18)
    >>> round(place_similarity("Salah al-Din", "Salahuddin"), 2)
    0.94
    """
    ka, kb = place_key(a), place_key(b)
    if not ka or not kb:
        return 0.0
    short, long_ = sorted((ka, kb), key=len)
    if long_[:len(short)] == short:
        return 1.0
    return difflib.SequenceMatcher(None, "".join(ka), "".join(kb)).ratio()


def _best_area(stated: str, names: Sequence[str], min_similarity: float) -> str | None:
    scores = [place_similarity(stated, n) for n in names]
    k = int(np.argmax(scores)) if scores else -1
    return names[k] if k >= 0 and scores[k] >= min_similarity else None


def admin_mismatches(incidents, areas: gpd.GeoDataFrame, field: str, *,
                     min_similarity: float = 0.8) -> pd.DataFrame:
    """Events whose stated admin area (as the source gave it) is not the area holding their
    point.

    Parameters
    ----------
    incidents
        :class:`Incidents` (with ``admin1``/``admin2``) or a point GeoDataFrame with them.
    areas
        Polygons with a name ``field`` (e.g. the study area's governorates or districts).
    field
        The name field of ``areas``. The incident level compared (``admin1`` or ``admin2``)
        is the one whose names match the most area names.
    min_similarity
        Names at least this alike (:func:`place_similarity`) are the same place; a stated name
        is taken as the area name it is most alike.

    Returns
    -------
    pandas.DataFrame
        One row per mismatch: ``event_id``, ``stated`` (the source's name), ``found`` (the
        area holding the point), ``distance_km`` (from the point to the stated area, in a
        local metric CRS). Coarse locations (centroids), events outside every area and
        stated names like no area's are left out.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> areas = gpd.GeoDataFrame({"ADM2_EN": ["Tuz Khurmatu", "Kirkuk"]},
    ...     geometry=[shapely.box(44.0, 34.6, 44.8, 35.0), shapely.box(44.0, 35.0, 44.8, 35.6)],
    ...     crs=4326)
    >>> inc = gpd.GeoDataFrame({"source_id": ["a", "b"], "admin2": ["Tooz", "Tooz"],
    ...     "coarse": [False, False]}, geometry=shapely.points([(44.5, 34.8), (44.5, 35.2)]),
    ...     crs=4326)
    >>> admin_mismatches(inc, areas, "ADM2_EN").round(1).to_dict("records")
    [{'event_id': 'b', 'stated': 'Tooz', 'found': 'Kirkuk', 'distance_km': 22.1}]
    """
    gdf = _as_gdf(incidents)
    if field not in areas.columns:
        raise InputError(areas.attrs.get("source", "study area"), field, "field not found",
                         f"use one of {', '.join(c for c in areas.columns if c != 'geometry')}")
    cols = ["event_id", "stated", "found", "distance_km"]
    levels = [c for c in ("admin1", "admin2") if c in gdf.columns]
    located = gdf.loc[~gdf["coarse"].fillna(False).to_numpy(dtype=bool)]
    names = sorted(set(areas[field].dropna().astype(str)))
    if not levels or len(located) == 0 or not names:
        return pd.DataFrame({c: pd.Series(dtype=float if c == "distance_km" else object)
                             for c in cols})
    known = {n: _best_area(n, names, min_similarity)
             for lv in levels for n in set(located[lv].dropna().astype(str))}
    level = max(levels, key=lambda lv: located[lv].map(known).notna().sum())
    crs = metric_crs(areas)
    polys = areas.to_crs(crs)
    pts = located.geometry.to_crs(crs).values
    pi, ai = shapely.STRtree(polys.geometry.values).query(pts, predicate="within")
    found = pd.Series(None, index=range(len(pts)), dtype=object)
    found.iloc[pi] = polys[field].astype(str).to_numpy()[ai]
    stated = located[level].astype(object).to_numpy()
    matched = pd.Series(stated).map(lambda v: known.get(str(v)) if pd.notna(v) else None)
    wrong = (matched.notna() & found.notna() & (matched != found)).to_numpy()
    by_name = polys.dissolve(by=field).geometry
    rows = np.flatnonzero(wrong)
    # Nearest point found in the metric CRS, its length measured on the ellipsoid.
    ends = shapely.get_coordinates(shapely.shortest_line(
        pts[rows], by_name.loc[matched.iloc[rows].to_numpy()].values)).reshape(-1, 2, 2)
    ll = Transformer.from_crs(crs, 4326, always_xy=True)
    lon, lat = ll.transform(ends[..., 0], ends[..., 1])
    dist = Geod(ellps="WGS84").inv(lon[:, 0], lat[:, 0], lon[:, 1], lat[:, 1])[2] / 1000.0
    return pd.DataFrame({"event_id": located["source_id"].to_numpy()[rows]
                         if "source_id" in located.columns else located.index.to_numpy()[rows],
                         "stated": stated[rows], "found": found.to_numpy()[rows],
                         "distance_km": np.asarray(dist, dtype=float)})[cols]


# --------------------------------------------------------------------------------------------
# assignment


def _segments(geoms: np.ndarray, max_len_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Line geometries as (n, 4) segments, long edges split so tree boxes stay small, with the
    index of the geometry each segment came from."""
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 0:
        return np.empty((0, 4)), np.empty(0, int)
    dense = shapely.segmentize(geoms, max_len_m)
    parts, owner = shapely.get_parts(dense, return_index=True)
    xy, idx = shapely.get_coordinates(parts, return_index=True)
    same = idx[:-1] == idx[1:]
    seg = np.column_stack([xy[:-1][same], xy[1:][same]])
    return seg, owner[idx[:-1][same]]


@dataclass(frozen=True)
class SeamIndex:
    """The seam as vertices at most ``step_m`` apart, for exact nearest-point queries.

    The nearest seam point of p lies on a segment one of whose ends is within
    ``r = sqrt(d² + step_m²/4)`` of p, where d is the distance to the best segment found so
    far. A k-d tree (:class:`scipy.spatial.cKDTree`) gives each point its ``k`` nearest
    vertices; the segments on both sides of each are measured exactly with numpy, and the
    answer is *certified* when the k-th vertex lies beyond r (then no other segment can be
    closer). Points that fail the test (rare: seams with many branches close together) are
    answered by GEOS (``STRtree.query_nearest``) instead. For far points r − d ≈ step²/8d, so a
    handful of vertices suffices; this avoids the per-point cost of a tree of line segments.

    Attributes
    ----------
    xy
        (m, 2) vertices; vertex v and v + 1 form segment v when ``link[v]``.
    link
        Whether vertex v joins vertex v + 1 (same seam part).
    step_m
        Longest segment (1 km by default: longer segments weaken the test above, shorter
        ones make the k-d search slower for points far from the seam).
    w_km, pieces, offset, sample_m
        Width w = d_A + d_B (km), when built with ``distances``: segment v is cut into
        ``pieces[v]`` equal pieces of at most ``sample_m``, whose ends have the widths
        ``w_km[offset[v]:offset[v] + pieces[v] + 1]``.
    """

    xy: np.ndarray
    link: np.ndarray
    step_m: float
    w_km: np.ndarray | None = None
    pieces: np.ndarray | None = None
    offset: np.ndarray | None = None
    sample_m: float = 100.0
    _kd: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def build(cls, seam_geoms, *, step_m: float = 1000.0, distances=None,
              sample_m: float = 100.0) -> SeamIndex:
        """Vertices of the seam at most ``step_m`` apart; with ``distances`` (the Analysis
        method), the width every ``sample_m`` or closer along every segment."""
        from scipy.spatial import cKDTree

        geoms = np.asarray(seam_geoms, dtype=object)
        if len(geoms):
            parts = shapely.get_parts(shapely.segmentize(geoms, step_m))
            xy, part = shapely.get_coordinates(parts, return_index=True)
        else:
            xy, part = np.empty((0, 2)), np.empty(0, int)
        link = np.zeros(len(xy), bool)
        if len(xy) > 1:
            link[:-1] = part[:-1] == part[1:]
        w = pieces = offset = None
        if distances is not None and len(xy):
            # Segment v (from vertex v) is cut into pieces[v] equal pieces; the width at their
            # pieces[v] + 1 ends is w[offset[v]:offset[v] + pieces[v] + 1].
            nxt = np.vstack([xy[1:], xy[-1:]])
            length = np.where(link, np.hypot(*(nxt - xy).T), 0.0)
            pieces = np.maximum(np.ceil(length / sample_m).astype(np.int64), 1)
            offset = np.concatenate([[0], np.cumsum(pieces + 1)[:-1]])
            owner = np.repeat(np.arange(len(xy)), pieces + 1)
            frac = (np.arange(int((pieces + 1).sum())) - offset[owner]) / pieces[owner]
            pts = xy[owner] + frac[:, None] * (nxt[owner] - xy[owner])
            da, db = distances(pts)
            w = np.asarray(da, dtype=float) + np.asarray(db, dtype=float)
        kd = cKDTree(xy) if len(xy) else None
        return cls(xy, link, float(step_m), w, pieces, offset, float(sample_m), kd)

    def nearest(self, xy: np.ndarray, *, k: int = 6, chunk: int = 100_000
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Nearest seam point q, distance (CRS units), segment (its first vertex) and position
        t ∈ [0, 1] along it, for each point of an (n, 2) array (NaN / inf / −1 without a
        seam)."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        n = len(xy)
        q = np.full((n, 2), np.nan)
        d = np.full(n, np.inf)
        seg_v = np.full(n, -1, dtype=np.int64)
        t_all = np.full(n, np.nan)
        m = len(self.xy)
        if n == 0 or m == 0 or not self.link.any():
            if m == 1 and n:  # a seam of one point
                q[:] = self.xy[0]
                d[:] = np.hypot(*(xy - self.xy[0]).T)
                t_all[:] = 0.0
            return q, d, seg_v, t_all
        k = int(min(k, m))
        half2 = (self.step_m / 2.0) ** 2
        for s0 in range(0, n, chunk):  # bounded memory
            p = xy[s0:s0 + chunk]
            dd, vv = self._kd.query(p, k=k)
            dd, vv = dd.reshape(len(p), k), vv.reshape(len(p), k)
            # Candidate segments: the one starting at each vertex and the one ending there.
            cand = np.concatenate([vv, vv - 1], axis=1)
            ok = (cand >= 0) & (cand < m - 1)
            cand = np.where(ok, cand, 0)
            ok &= self.link[cand]
            a = self.xy[cand]
            ab = self.xy[cand + 1] - a
            ap = p[:, None, :] - a
            denom = np.einsum("ijk,ijk->ij", ab, ab)
            with np.errstate(invalid="ignore", divide="ignore"):
                t = np.einsum("ijk,ijk->ij", ap, ab) / denom
            t = np.clip(np.nan_to_num(t, nan=0.0), 0.0, 1.0)
            foot = a + t[..., None] * ab
            dist2 = ((p[:, None, :] - foot) ** 2).sum(-1)
            dist2 = np.where(ok, dist2, np.inf)
            best = np.argmin(dist2, axis=1)
            rows = np.arange(len(p))
            b2 = dist2[rows, best]
            sl = slice(s0, s0 + len(p))
            q[sl] = foot[rows, best]
            d[sl] = np.sqrt(b2)
            seg_v[sl] = cand[rows, best]
            t_all[sl] = t[rows, best]
            # Certified when every vertex not looked at lies beyond sqrt(d² + step²/4).
            unsure = ~(dd[:, -1] ** 2 > b2 + half2) if k < m else np.zeros(len(p), bool)
            unsure |= ~np.isfinite(b2)
            if unsure.any():
                self._exact(p[unsure], np.flatnonzero(unsure) + s0, q, d, seg_v, t_all)
        return q, d, seg_v, t_all

    def _exact(self, p, where, q, d, seg_v, t_all) -> None:
        """GEOS nearest segment for the points the k-d test could not certify."""
        starts = np.flatnonzero(self.link)
        lines = shapely.linestrings(np.stack([self.xy[starts], self.xy[starts + 1]], axis=1))
        tree = shapely.STRtree(lines)
        (qi, li), _ = tree.query_nearest(shapely.points(p), return_distance=True,
                                         all_matches=False)
        v = starts[li]
        a, ab = self.xy[v], self.xy[v + 1] - self.xy[v]
        denom = np.einsum("ij,ij->i", ab, ab)
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.einsum("ij,ij->i", p[qi] - a, ab) / denom
        t = np.clip(np.nan_to_num(t, nan=0.0), 0.0, 1.0)
        foot = a + t[:, None] * ab
        idx = where[qi]
        q[idx] = foot
        d[idx] = np.hypot(*(p[qi] - foot).T)
        seg_v[idx] = v
        t_all[idx] = t

    def width_at(self, seg_v: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Width (km) at position t along segments ``seg_v``, interpolated between the two
        nearest samples (w is 2-Lipschitz along the seam, so the error is at most
        ``sample_m``)."""
        v = np.maximum(seg_v, 0)  # −1: a seam of a single point
        m = self.pieces[v]
        u = np.nan_to_num(t, nan=0.0) * m
        k = np.minimum(np.floor(u).astype(np.int64), m - 1)
        u = u - k
        base = self.offset[v] + k
        return self.w_km[base] * (1.0 - u) + self.w_km[base + 1] * u

    def segment_labels(self, tables: Sequence[gpd.GeoDataFrame], tol_m: float
                       ) -> tuple[np.ndarray, np.ndarray]:
        """Corridor id of every segment, and whether the segment is on it throughout.

        The id is looked up at every width sample (≤ ``sample_m`` apart); a segment whose
        samples disagree crosses a corridor's end (its incidents are looked up one by one).
        """
        owner = np.repeat(np.arange(len(self.xy)), self.pieces + 1)
        frac = (np.arange(len(owner)) - self.offset[owner]) / self.pieces[owner]
        nxt = np.vstack([self.xy[1:], self.xy[-1:]])
        pts = self.xy[owner] + frac[:, None] * (nxt[owner] - self.xy[owner])
        lab = _corridor_of(pts, tables, tol_m)
        first = lab[self.offset]
        codes = pd.factorize(pd.Series(lab, dtype=object), use_na_sentinel=True)[0]
        lo = np.minimum.reduceat(codes, self.offset)
        hi = np.maximum.reduceat(codes, self.offset)
        return first, lo == hi


def nearest_seam_points(seam_geoms, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest seam point and distance (CRS units) for each point of an (n, 2) array.

    Exact; see :class:`SeamIndex` for the method.

    Examples
    --------
    >>> import shapely, numpy as np
    >>> q, d = nearest_seam_points([shapely.LineString([(0, 0), (0, 10)])], np.array([[3.0, 4]]))
    >>> q.tolist(), d.tolist()
    ([[0.0, 4.0]], [3.0])
    """
    q, d, _, _ = SeamIndex.build(seam_geoms).nearest(xy)
    return q, d


def _corridor_of(q: np.ndarray, tables: Sequence[gpd.GeoDataFrame], tol_m: float) -> np.ndarray:
    """Id of the corridor (or minor stretch) within ``tol_m`` of each seam point, else None.

    Corridors are parts of the seam, so a seam point on one lies on it up to the few tenths of
    a metre by which the lines were simplified; ``tol_m`` absorbs that.
    """
    out = np.full(len(q), None, dtype=object)
    geoms = np.concatenate([np.asarray(t.geometry.values, dtype=object) for t in tables])
    ids = np.concatenate([t["corridor_id"].astype(str).to_numpy(dtype=object) for t in tables])
    if len(geoms) == 0 or len(q) == 0:
        return out
    seg, owner = _segments(geoms, 1000.0)
    if len(seg) == 0:
        return out
    tree = shapely.STRtree(shapely.linestrings(seg.reshape(-1, 2, 2)))
    (qi, si), _ = tree.query_nearest(shapely.points(q), max_distance=tol_m,
                                     return_distance=True, all_matches=False)
    out[qi] = ids[owner[si]]
    return out


def _projected_points(gdf: gpd.GeoDataFrame, crs: CRS) -> np.ndarray:
    if len(gdf) == 0:
        return np.empty((0, 2))
    if gdf.crs is not None and CRS.from_user_input(gdf.crs) == crs:
        return shapely.get_coordinates(gdf.geometry.values)
    return shapely.get_coordinates(gdf.geometry.to_crs(crs).values)


def _as_gdf(incidents: Incidents | gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if isinstance(incidents, Incidents):
        return incidents.gdf
    if isinstance(incidents, gpd.GeoDataFrame):
        gdf = incidents
        if gdf.crs is None:
            raise InputError(gdf.attrs.get("source", "incidents"), "crs",
                             "incidents have no coordinate reference system",
                             "set the CRS of the GeoDataFrame")
        gdf = gdf.copy()
        if "coarse" not in gdf.columns:
            gdf["coarse"] = False
        if "fatalities" not in gdf.columns:
            gdf["fatalities"] = np.nan
        if "date" not in gdf.columns:
            gdf["date"] = pd.NaT
        return gdf
    raise TypeError(f"expected Incidents or a GeoDataFrame, got {type(incidents).__name__}")


def _check_extent(gdf: gpd.GeoDataFrame, crs: CRS, study, in_study: np.ndarray) -> None:
    """Warn when no incident lies in the study area, and when most lie outside it but would
    lie inside with latitude and longitude exchanged (swapped columns)."""
    n = len(gdf)
    if n == 0 or study is None or study.is_empty or in_study.sum() * 2 >= n:
        return
    source = gdf.attrs.get("source", "incidents")
    swapped = 0
    if gdf.crs is not None and CRS.from_user_input(gdf.crs).is_geographic:
        lon, lat = shapely.get_coordinates(gdf.geometry.values).T
        ok = np.abs(lon) <= 90
        if ok.any():
            pts = gpd.GeoSeries(shapely.points(lat[ok], lon[ok]), crs=gdf.crs).to_crs(crs)
            xy = shapely.get_coordinates(pts.values)
            swapped = int(shapely.contains_xy(study, xy[:, 0], xy[:, 1]).sum())
    if swapped * 2 > n and swapped > 2 * in_study.sum():
        warnings.warn(f"{source}: latitude and longitude look swapped: {n - int(in_study.sum())}"
                      f" of {n} incidents lie outside the study area, {swapped} would lie "
                      "inside with the two exchanged — name the columns with "
                      "--incidents-lat/--incidents-lon", InputWarning, stacklevel=3)
    elif not in_study.any():
        warnings.warn(f"{source}: none of the {n} incidents lies in the study area",
                      InputWarning, stacklevel=3)


def exploitation_ratio(n_gap: int, n_rest: int, area_gap_km2: float, area_rest_km2: float,
                       confidence: float = 0.95) -> tuple[float, float, float]:
    """Ratio of incident densities (gap ÷ rest) with an exact conditional interval.

    Given ``n = n_gap + n_rest``, ``n_gap ~ Binomial(n, p)`` with
    ``p = r·A_gap / (r·A_gap + A_rest)``. The Clopper–Pearson interval on p maps to r through
    ``r = p/(1−p) · A_rest/A_gap``, which is increasing in p, so the interval stays exact.

    Returns
    -------
    (ratio, low, high)
        NaN when there are no incidents or an area is zero; ``high`` (and ``ratio``) is
        infinite when ``n_rest`` is 0.

    Examples
    --------
    >>> r, lo, hi = exploitation_ratio(30, 10, 100.0, 100.0)
    >>> round(r, 2), round(lo, 2), round(hi, 2)
    (3.0, 1.43, 6.88)
    """
    n = int(n_gap) + int(n_rest)
    if n == 0 or not (area_gap_km2 > 0) or not (area_rest_km2 > 0):
        return math.nan, math.nan, math.nan
    scale = area_rest_km2 / area_gap_km2

    def to_ratio(p: float) -> float:
        return math.inf if p >= 1.0 else p / (1.0 - p) * scale

    ci = binomtest(int(n_gap), n).proportion_ci(confidence_level=confidence, method="exact")
    ratio = to_ratio(n_gap / n)
    return ratio, to_ratio(ci.low), to_ratio(ci.high)


class _Assigner:
    """Everything assigning one event needs, built once per analysis: the seam index (nearest
    point, width samples), the corridor label of every seam segment, the distance functions,
    the study area and the gap region. Picklable, so that a Dask worker receives it once and
    measures any number of partitions with it (:func:`_assign_partition`); every result is per
    event, so a partitioned run gives the same numbers as one call on all events."""

    def __init__(self, analysis, margin_km: float, with_labels: bool = True) -> None:
        self.crs = CRS.from_user_input(analysis.crs)
        self.margin_km = float(margin_km)
        # Without the DEM and the incidents: a worker needs the distance functions only.
        lean = (dataclasses.replace(analysis, dem=None, incidents=None)
                if dataclasses.is_dataclass(analysis) else analysis)
        self.distances = lean.distances
        # w is exact at samples at most _W_STEP_M apart along the seam, interpolated between.
        self.index = SeamIndex.build(analysis.seam.geometry.values, distances=self.distances,
                                     sample_m=_W_STEP_M)
        self.tables = [tb[["corridor_id", tb.geometry.name]]
                       for tb in (analysis.corridors, analysis.minor) if tb is not None and len(tb)]
        self.labels = (self.index.segment_labels(self.tables, tol_m=10.0)
                       if self.tables and with_labels else None)
        self.study = analysis.study_area
        self.gap = analysis.gap.geometry.values[0] if len(analysis.gap) else shapely.Polygon()

    def __call__(self, xy: np.ndarray, used: np.ndarray) -> dict[str, np.ndarray]:
        """Per event: ``distance_km``, ``width_km``, ``assigned``, ``corridor_id``,
        ``in_study_area``, ``in_gap`` (``xy`` in the analysis CRS)."""
        n = len(xy)
        dist_km = np.full(n, np.nan)
        width_km = np.full(n, np.nan)
        assigned = np.zeros(n, bool)
        corridor = np.full(n, None, dtype=object)
        ui = np.flatnonzero(used)
        q, d_m, sv, t = self.index.nearest(xy[used])
        has_q = np.isfinite(d_m)
        if has_q.any():
            idx = ui[has_q]
            q, sv, t = q[has_q], sv[has_q], t[has_q]
            dk = d_m[has_q] / 1000.0
            w = self.index.width_at(sv, t)
            # w is 2-Lipschitz along the seam, so the interpolation errs by at most _W_STEP_M
            # in w: incidents whose test lies that close to the threshold get the exact w(q),
            # so every assignment decision is exact.
            slack = dk - (w / 2.0 + self.margin_km)
            close = np.abs(slack) <= _W_STEP_M / 2000.0 + 1e-3
            if close.any():
                da, db = self.distances(q[close])
                w[close] = np.asarray(da) + np.asarray(db)
            ok = dk <= w / 2.0 + self.margin_km
            dist_km[idx] = dk
            width_km[idx] = w
            assigned[idx] = ok
            if self.tables and ok.any():
                # Segments whose width samples all lie on one corridor (or on none) take its
                # id; incidents on segments across a corridor's end are looked up one by one.
                seg_lab, uniform = self.labels if self.labels is not None else \
                    self.index.segment_labels(self.tables, tol_m=10.0)
                s_ok = np.maximum(sv[ok], 0)
                lab = seg_lab[s_ok].copy()
                mixed = ~uniform[s_ok]
                if mixed.any():
                    lab[mixed] = _corridor_of(q[ok][mixed], self.tables, tol_m=10.0)
                corridor[idx[ok]] = lab

        # Gap region vs rest of the study area.
        in_study = np.zeros(n, bool)
        in_gap = np.zeros(n, bool)
        if n:
            shapely.prepare(self.study)
            if not self.study.is_empty:
                in_study = shapely.contains_xy(self.study, xy[:, 0], xy[:, 1])
            if not self.gap.is_empty:
                shapely.prepare(self.gap)
                in_gap = in_study & shapely.contains_xy(self.gap, xy[:, 0], xy[:, 1])
        return {"corridor_id": corridor, "distance_km": dist_km, "width_km": width_km,
                "assigned": assigned, "in_study_area": in_study, "in_gap": in_gap}


#: Columns (and dtypes) of a partition's result.
_ASSIGN_META = pd.DataFrame({"corridor_id": pd.Series(dtype=object),
                             "distance_km": pd.Series(dtype=float),
                             "width_km": pd.Series(dtype=float),
                             "assigned": pd.Series(dtype=bool),
                             "in_study_area": pd.Series(dtype=bool),
                             "in_gap": pd.Series(dtype=bool)})


def _assign_partition(part: gpd.GeoDataFrame, assigner: _Assigner) -> pd.DataFrame:
    """One partition's events measured (on a Dask worker): projected there, then assigned."""
    cols = assigner(_projected_points(part, assigner.crs), part["used"].to_numpy(dtype=bool))
    frame = pd.DataFrame(cols, index=part.index)
    return frame.astype(_ASSIGN_META.dtypes.to_dict())


def incident_metrics(analysis, incidents: Incidents | gpd.GeoDataFrame, *,
                     margin_km: float = 5.0, include_coarse: bool = False,
                     workers: int | None = 1, scheduler: str | None = None,
                     partition_events: int | None = None) -> IncidentMetrics:
    """Assign incidents to corridors and compute the exploitation ratio.

    Parameters
    ----------
    analysis
        A :class:`gapmap.Analysis`.
    incidents
        From :func:`read_incidents` (or a point GeoDataFrame with ``date``, ``fatalities`` and
        ``coarse`` columns where known).
    margin_km
        Incidents up to ``w(q)/2 + margin_km`` from their nearest seam point q are assigned.
    include_coarse
        Also use coarse locations (district or province centroids) for assignment and ratio.
    workers, scheduler
        With more than one worker or a Dask scheduler (as for ``gapmap series``), and more
        incidents than one partition holds, the events are measured in partitions of
        ``partition_events`` on Dask workers (:mod:`gapmap.partitions`); the figures are the
        same as in process. ``workers=1`` (the default) runs here.
    partition_events
        Events per partition [:data:`gapmap.partitions.PARTITION_EVENTS`, 500,000].

    Returns
    -------
    IncidentMetrics

    Notes
    -----
    Assignment does not depend on the study area (the criterion is geometric); the ratio
    counts only incidents inside the study area: ``n_gap`` inside the gap region,
    ``n_rest`` in the rest of the study area (its geodesic area is the study area's minus the
    gap's). A seam point within 10 m of a corridor counts as on it (the corridor lines are
    simplified by under a metre).

    The nearest seam point is exact (:class:`SeamIndex`). The width w(q) is evaluated exactly
    every 100 m along the seam and interpolated in between (w changes by at most 2 m per m
    along the seam, so the interpolation errs by at most 100 m); incidents whose test is
    within that error of the threshold get the exact w(q), so every assignment is exact.
    Distances are measured in the analysis CRS (a local UTM zone or azimuthal equidistant
    projection, whose scale error over a gap's width is far below the 5 km margin).

    Examples
    --------
    >>> m = incident_metrics(result, read_incidents("incidents.csv"))  # doctest: +SKIP
    >>> m.corridors[["corridor_id", "incidents", "incidents_per_100km"]]  # doctest: +SKIP
    >>> m.summary["exploitation_ratio"]  # doctest: +SKIP
    """
    from .partitions import PARTITION_EVENTS, map_partitions, use_partitions

    if not (margin_km >= 0):
        raise InputError("--margin-km", None, f"must be ≥ 0, got {margin_km!r}",
                         "give a non-negative margin in km")
    gdf = _as_gdf(incidents)
    crs = CRS.from_user_input(analysis.crs)
    n = len(gdf)
    coarse = gdf["coarse"].fillna(False).to_numpy(dtype=bool)
    used = np.ones(n, bool) if include_coarse else ~coarse
    size = PARTITION_EVENTS if partition_events is None else int(partition_events)

    if use_partitions(n, workers, scheduler, size):
        # The corridor labels of the seam's segments are computed here once and shipped.
        assigner = _Assigner(analysis, margin_km)
        part = gpd.GeoDataFrame({"used": used}, geometry=gdf.geometry.values, crs=gdf.crs)
        cols = map_partitions(part, _assign_partition, assigner, _ASSIGN_META, workers=workers,
                              scheduler=scheduler, partition_events=size)
        cols = {c: cols[c].to_numpy() for c in _ASSIGN_META.columns}
    else:
        assigner = _Assigner(analysis, margin_km, with_labels=False)
        cols = assigner(_projected_points(gdf, crs), used)
    corridor = cols["corridor_id"]
    dist_km, width_km, assigned = cols["distance_km"], cols["width_km"], cols["assigned"]
    in_study, in_gap = cols["in_study_area"], cols["in_gap"]
    study = analysis.study_area
    _check_extent(gdf, crs, study, in_study)
    area_gap = float(analysis.gap["area_km2"].iloc[0]) if len(analysis.gap) else 0.0
    area_study = float(geodesic_area_km2([study], crs)[0]) if not study.is_empty else 0.0
    area_rest = max(area_study - area_gap, 0.0)
    n_gap = int((in_gap & used).sum())
    n_rest = int((in_study & ~in_gap & used).sum())
    ratio, low, high = exploitation_ratio(n_gap, n_rest, area_gap, area_rest)

    table = gdf.copy()
    table["corridor_id"] = pd.Series(corridor, index=table.index, dtype=object).where(
        pd.notna(corridor), np.nan)
    table["distance_km"] = dist_km
    table["width_km"] = width_km
    table["assigned"] = assigned
    table["in_study_area"] = in_study
    table["in_gap"] = in_gap
    table["used"] = used

    per_major = _per_corridor(table, analysis.corridors)
    per_minor = _per_corridor(table, analysis.minor)
    summary = {
        "incidents_total": int(in_study.sum()),
        "incidents_outside_study_area": int(n - in_study.sum()),
        "incidents_used": int(used.sum()),
        "incidents_coarse": int(coarse.sum()),
        "incidents_assigned": int(assigned.sum()),
        "incidents_in_corridors": int(pd.notna(corridor).sum()),
        "incidents_in_study_area": int((in_study & used).sum()),
        "incidents_in_gap": n_gap,
        "incidents_in_rest": n_rest,
        "rest_area_km2": area_rest,
        "exploitation_ratio": ratio,
        "exploitation_ratio_low": low,
        "exploitation_ratio_high": high,
        "incident_margin_km": float(margin_km),
    }
    log.info("incidents: %d total, %d assigned, %d in the gap, ratio %.3g [%.3g, %.3g]",
             n, int(assigned.sum()), n_gap, ratio, low, high)
    return IncidentMetrics(incidents=table, corridors=per_major, minor=per_minor,
                           summary=summary, margin_km=float(margin_km),
                           include_coarse=bool(include_coarse))


def _per_corridor(table: pd.DataFrame, corridors: gpd.GeoDataFrame | None) -> pd.DataFrame:
    """Incidents, fatalities, incidents per 100 km and first/last date per corridor."""
    cols = ["corridor_id"] + CORRIDOR_INCIDENT_COLUMNS
    if corridors is None or len(corridors) == 0:
        return pd.DataFrame({"corridor_id": pd.Series(dtype=object),
                             "incidents": pd.Series(dtype=int),
                             "fatalities": pd.Series(dtype=float),
                             "incidents_per_100km": pd.Series(dtype=float),
                             "first_date": pd.Series(dtype="datetime64[ns]"),
                             "last_date": pd.Series(dtype="datetime64[ns]"),
                             "first_date_precision": pd.Series(dtype=object),
                             "last_date_precision": pd.Series(dtype=object)})[cols]
    ids = corridors["corridor_id"].astype(str).to_numpy(dtype=object)
    hit = table.loc[table["corridor_id"].notna()]
    g = hit.groupby("corridor_id")
    counts = g.size()
    fat = g["fatalities"].sum(min_count=0)
    first, last = _date_span(hit)
    out = pd.DataFrame({"corridor_id": ids})
    out["incidents"] = counts.reindex(ids).fillna(0).astype(int).to_numpy()
    out["fatalities"] = fat.reindex(ids).fillna(0.0).astype(float).to_numpy()
    length = corridors["length_km"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["incidents_per_100km"] = np.where(length > 0, out["incidents"] / length * 100.0,
                                              np.nan)
    for name, span in (("first", first), ("last", last)):
        span = span.reindex(ids)
        out[f"{name}_date"] = pd.to_datetime(span["date"].to_numpy()).astype("datetime64[ns]")
        out[f"{name}_date_precision"] = span["precision"].astype(object).where(
            span["precision"].notna(), None).to_numpy()
    return out[cols]


def _date_span(hit: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per corridor, the earliest and the latest date its events may have, with the
    precision of the event that gives it: an event dated only to 2016 starts on 2016-01-01
    and ends on 2016-12-31, so the span is printed "2016" (:func:`format_date_columns`)."""
    prec = hit["date_precision"].to_numpy(dtype=object) if "date_precision" in hit.columns \
        else None
    lo, hi = date_bounds(hit["date"].to_numpy(), prec)
    rank = {p: i for i, p in enumerate(PRECISIONS)}
    frame = pd.DataFrame({"corridor_id": hit["corridor_id"].to_numpy(), "lo": lo,
                          "end": hi - _DAY, "precision": _precision_array(prec, len(lo))})
    frame["rank"] = frame["precision"].map(rank)
    frame = frame[~np.isnat(lo)]
    # ties go to the finer date: 2016-01-01 (a day) rather than 2016 (a year)
    first = frame.sort_values(["lo", "rank"], kind="stable").groupby("corridor_id").first()
    last = frame.sort_values(["end", "rank"], ascending=[True, False],
                             kind="stable").groupby("corridor_id").last()
    return (first.rename(columns={"lo": "date"})[["date", "precision"]],
            last.rename(columns={"end": "date"})[["date", "precision"]])


def with_incidents(analysis, metrics: IncidentMetrics):
    """A new Analysis whose corridors (and minor stretches) carry the incident fields and whose
    summary carries the incident figures.

    Examples
    --------
    >>> result = with_incidents(result, incident_metrics(result, inc))  # doctest: +SKIP
    >>> result.corridors[["corridor_id", "incidents", "first_date"]]  # doctest: +SKIP
    """
    out = {}
    for name, per in (("corridors", metrics.corridors), ("minor", metrics.minor)):
        table = getattr(analysis, name)
        if table is None:
            continue
        ids = table["corridor_id"].astype(str)
        missing = set(ids) - set(per["corridor_id"].astype(str))
        if missing:
            raise ValueError(f"incident metrics do not match this analysis: no figures for "
                             f"{sorted(missing)[:5]}; compute them with incident_metrics on "
                             "the same analysis")
        keyed = per.set_index(per["corridor_id"].astype(str))
        table = table.drop(columns=[c for c in CORRIDOR_INCIDENT_COLUMNS if c in table.columns])
        table = table.assign(**{c: keyed[c].reindex(ids.to_numpy()).to_numpy()
                                for c in CORRIDOR_INCIDENT_COLUMNS})
        out[name] = table
    summary = {**analysis.summary, **metrics.summary}
    return dataclasses.replace(analysis, summary=summary, incidents=metrics.incidents, **out)
