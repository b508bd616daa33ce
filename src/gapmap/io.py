"""Reading vector layers and writing outputs atomically.

Layers come from any format geopandas reads (GeoJSON, GeoPackage, Shapefile, FlatGeobuf,
GeoParquet). Invalid geometries are repaired with a warning; a layer with no CRS is an error.
Outputs are written to a temporary path beside the target and renamed into place only when
complete, so a failed run never leaves half-written files.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import logging
import os
import shutil
import signal
import stat
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from .errors import GapmapError, InputError, InputWarning, OutputError, ResultWarning
from .settings import Side

__all__ = [
    "read_layer",
    "read_point_table",
    "read_text_csv",
    "load_zones",
    "load_posts",
    "load_study_area",
    "atomic_path",
    "atomic_dir",
    "check_coordinates",
    "check_layout",
]

log = logging.getLogger(__name__)

#: The option that names the layer of each kind of input (for messages).
_LAYER_OPTIONS = {"zones": "--zones-layer", "posts": "--posts-layer",
                  "study area": "--study-area-layer"}

#: Tables of points read from their latitude/longitude columns (found by these names).
_TABLE_SUFFIXES = {".csv", ".tsv", ".txt"}
_LAT_NAMES = ("lat", "latitude", "y")
_LON_NAMES = ("lon", "lng", "long", "longitude", "x")

_CRS_FIX = ("declare its CRS: GeoJSON must be lon/lat (EPSG:4326); for other formats add a .prj "
            "or set it with ogr2ogr -a_srs EPSG:XXXX")


def read_layer(path: str | os.PathLike, layer: str | None = None, *, what: str = "layer",
               geom_types: tuple[str, ...] | None = None) -> gpd.GeoDataFrame:
    """Read one vector layer, check its CRS and repair invalid geometries.

    Parameters
    ----------
    path
        Any file geopandas can read; ``.parquet``/``.geoparquet`` are read as GeoParquet.
    layer
        Layer name for multi-layer sources such as GeoPackage.
    what
        What the layer is for (used in messages), e.g. ``"zones"``.
    geom_types
        Accepted geometry families, e.g. ``("Polygon",)`` also accepts MultiPolygon.

    Returns
    -------
    geopandas.GeoDataFrame
        Rows with empty or missing geometry removed (with a warning).

    Examples
    --------
    >>> zones = read_layer("geodata/zones.geojson", what="zones")  # doctest: +SKIP
    """
    p = Path(path)
    if not p.exists():
        raise InputError(p, None, f"{what} file not found", "check the path")
    if p.suffix.lower() in _TABLE_SUFFIXES and (geom_types is None or "Point" in geom_types):
        return read_point_table(p, what=what)
    try:
        if p.suffix.lower() in {".parquet", ".geoparquet"}:
            gdf = gpd.read_parquet(p)
        else:
            kwargs = {"layer": layer} if layer is not None else {}
            gdf = gpd.read_file(p, **kwargs)
    except InputError:
        raise
    except Exception as exc:  # the driver's own message is the most useful one here
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        opt = _LAYER_OPTIONS.get(what)
        if layer is not None:
            fix = "check the layer name (ogrinfo -so FILE lists them)"
        elif opt:
            fix = f"check the file, or name its layer with {opt} (ogrinfo -so FILE lists them)"
        else:
            fix = "check the file is a vector layer that GDAL reads (ogrinfo FILE)"
        raise InputError(p, layer, f"cannot read {what}: {msg}", fix) from exc
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry is None:
        raise InputError(p, "geometry", f"{what} has no geometry column", "give a vector layer")
    if gdf.crs is None:
        raise InputError(p, "crs", f"{what} has no coordinate reference system", _CRS_FIX)
    empty = gdf.geometry.isna() | gdf.geometry.is_empty
    if empty.any():
        warnings.warn(f"{p}: {int(empty.sum())} {what} feature(s) without geometry ignored",
                      InputWarning, stacklevel=2)
        gdf = gdf.loc[~empty].copy()
    if geom_types is not None and len(gdf):
        kinds = gdf.geometry.geom_type.str.replace("Multi", "", regex=False)
        bad = ~kinds.isin(geom_types)
        if bad.any():
            raise InputError(p, "geometry",
                             f"{what} must be {'/'.join(geom_types)}, found {sorted(set(gdf.geometry.geom_type[bad]))}",
                             f"give a {'/'.join(geom_types).lower()} layer for {what}")
    check_coordinates(gdf, p, what)
    invalid = ~gdf.geometry.is_valid
    if invalid.any():
        warnings.warn(f"{p}: repaired {int(invalid.sum())} invalid {what} geometr"
                      f"{'y' if invalid.sum() == 1 else 'ies'}", InputWarning, stacklevel=2)
        gdf = gdf.copy()
        fixed = shapely.make_valid(gdf.geometry.values[invalid.values])
        if geom_types is not None and "Polygon" in geom_types:
            # make_valid may return collections with slivers of lines; keep the areal part
            fixed = np.array([_polygonal(g) for g in fixed], dtype=object)
        gdf.loc[invalid, gdf.geometry.name] = fixed
    gdf.attrs["source"] = str(p)
    return gdf


def read_text_csv(p: Path, *, what: str, row: str, sep: str = ",", **kw) -> pd.DataFrame:
    """Read a CSV as text columns, header names stripped: UTF-8 (with or without BOM) or
    Latin-1, ``sep`` or semicolon-separated. Numbers are converted per field by the callers,
    so that one bad value costs one row, not the column. An empty or unreadable file is an
    :class:`InputError` naming ``what`` (e.g. ``"incident"``) and ``row`` (``"incident"``).

    Examples
    --------
    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = f.write_text("a;b\\n1;x\\n", encoding="utf-8")
    >>> read_text_csv(f, what="posts", row="point").to_dict("list")
    {'a': ['1'], 'b': ['x']}
    """
    kw = dict(dtype=str, keep_default_na=False, na_values=[""], **kw)
    try:
        try:
            df = pd.read_csv(p, encoding="utf-8-sig", sep=sep, **kw)
        except UnicodeDecodeError:
            df = pd.read_csv(p, encoding="latin-1", sep=sep, **kw)
        if df.shape[1] == 1 and ";" in str(df.columns[0]):
            df = pd.read_csv(p, encoding="utf-8-sig", sep=";", **kw)
    except pd.errors.EmptyDataError as exc:
        raise InputError(p, None, f"the {what} file is empty",
                         f"give a CSV with a header row and one row per {row}") from exc
    except (pd.errors.ParserError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(p, None, f"cannot read the {what} CSV: {first}",
                         "check that the file is a comma-separated table") from exc
    df.columns = [str(c).strip() for c in df.columns]
    return df


def read_point_table(path: str | os.PathLike, *, what: str = "points", lat: str | None = None,
                     lon: str | None = None) -> gpd.GeoDataFrame:
    """Read a CSV of points (posts, checkpoints, candidate sites, places) in WGS84 lon/lat.

    The coordinate columns are found by name as for incident CSVs (``lat``/``latitude``/``y``
    and ``lon``/``lng``/``long``/``longitude``/``x``, any case) unless given; UTF-8 (with or
    without BOM) or Latin-1, comma- or semicolon-separated. Other columns are kept as text
    (numbers such as ``range_km`` are converted by the reader of each layer). A row without
    usable coordinates is refused with its row number: a post cannot be guessed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "posts.csv"
    >>> _ = f.write_text("name,Latitude,Longitude,range_km\\nK1,35.47,44.39,4\\n")
    >>> g = read_point_table(f, what="posts")
    >>> g.crs.to_epsg(), g.geometry.iloc[0].coords[0], g["range_km"].iloc[0]
    (4326, (44.39, 35.47), '4')
    """
    from .style import find_column

    p = Path(path)
    sep = "\t" if p.suffix.lower() == ".tsv" else ","
    df = read_text_csv(p, what=what, row="point", sep=sep)
    lat_col = find_column(df, lat) if lat else find_column(df, *_LAT_NAMES)
    lon_col = find_column(df, lon) if lon else find_column(df, *_LON_NAMES)
    if lat_col is None or lon_col is None:
        which = "/".join(k for k, c in (("latitude", lat_col), ("longitude", lon_col))
                         if c is None)
        raise InputError(p, which, f"no {which} column in the {what} CSV (columns: "
                         f"{', '.join(df.columns) or 'none'})",
                         "name the coordinate columns latitude and longitude (or lat/lon)")
    y = pd.to_numeric(df[lat_col].str.strip(), errors="coerce").to_numpy(float)
    x = pd.to_numeric(df[lon_col].str.strip(), errors="coerce").to_numpy(float)
    bad = ~(np.isfinite(x) & np.isfinite(y) & (np.abs(y) <= 90) & (np.abs(x) <= 180))
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise InputError(p, f"{lat_col}/{lon_col}", f"{int(bad.sum())} row(s) without usable "
                         f"coordinates (first: row {k + 2}: {df[lat_col].iloc[k]!r}, "
                         f"{df[lon_col].iloc[k]!r})",
                         "give decimal degrees (WGS84 latitude from -90 to 90, longitude "
                         "from -180 to 180) in every row")
    gdf = gpd.GeoDataFrame(df.drop(columns=[lat_col, lon_col]),
                           geometry=gpd.points_from_xy(x, y), crs=4326)
    gdf.attrs["source"] = str(p)
    return gdf


def check_coordinates(gdf: gpd.GeoDataFrame, source, what: str = "layer") -> None:
    """Refuse coordinates that are not finite or cannot be in the layer's CRS.

    A layer that says it is lon/lat (EPSG:4326 …) but holds numbers beyond ±180/±90 — UTM
    metres, typically — is refused with "looks like metres"; a projected layer whose
    coordinates do not map to the Earth is refused too.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> utm = gpd.GeoDataFrame(geometry=[shapely.Point(440000, 3930000)], crs=4326)
    >>> check_coordinates(utm, "posts.geojson", "posts")
    Traceback (most recent call last):
    ...
    gapmap.errors.InputError: posts.geojson: geometry: posts coordinates reach 3930000, which cannot be degrees although the layer's CRS is WGS 84: looks like metres — declare the layer's CRS (GeoJSON is always lon/lat: convert with ogr2ogr -s_srs EPSG:XXXX -t_srs EPSG:4326; other formats: ogr2ogr -a_srs EPSG:XXXX)
    """
    xy = shapely.get_coordinates(np.asarray(gdf.geometry.values, dtype=object))
    if not len(xy):
        return
    bad = ~np.isfinite(xy).all(axis=1)
    if bad.any():
        raise InputError(source, "geometry", f"{int(bad.sum())} {what} coordinate(s) are not "
                         "finite (NaN or infinity)", "fix or remove those features")
    crs = gdf.crs
    if crs is None:
        return
    if crs.is_geographic:
        lon_bad = np.abs(xy[:, 0]) > 180
        lat_bad = np.abs(xy[:, 1]) > 90
        if not (lon_bad | lat_bad).any():
            return
        top = float(np.abs(xy).max())
        if top > 1000:
            raise InputError(source, "geometry",
                             f"{what} coordinates reach {top:.0f}, which cannot be degrees "
                             f"although the layer's CRS is {crs.name}: looks like metres",
                             "declare the layer's CRS (GeoJSON is always lon/lat: convert "
                             "with ogr2ogr -s_srs EPSG:XXXX -t_srs EPSG:4326; other formats: "
                             "ogr2ogr -a_srs EPSG:XXXX)")
        axis = "longitude" if lon_bad.any() else "latitude"
        raise InputError(source, "geometry", f"{int((lon_bad | lat_bad).sum())} {what} "
                         f"coordinate(s) out of range ({axis} up to "
                         f"{float(np.abs(xy[:, 0 if axis == 'longitude' else 1]).max()):g})",
                         "give longitudes from -180 to 180 and latitudes from -90 to 90")
    t = Transformer.from_crs(crs, 4326, always_xy=True)
    with np.errstate(all="ignore"):
        lon, lat = t.transform(xy[:, 0], xy[:, 1], errcheck=False)
    off = ~(np.isfinite(lon) & np.isfinite(lat) & (np.abs(lat) <= 90))
    if off.any():
        raise InputError(source, "geometry", f"{int(off.sum())} {what} coordinate(s) do not "
                         f"map to the Earth in the layer's CRS ({crs.name})",
                         "check the layer's CRS and its coordinates (ogrinfo -al -so FILE)")


def _polygonal(geom):
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    polys = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(polys) if polys else shapely.Polygon()


def _layer_or_path(path, layer: str | None, what: str, kind: str
                   ) -> tuple[gpd.GeoDataFrame, str]:
    """A layer given as a GeoDataFrame (copied, CRS checked) or read from a path."""
    if isinstance(path, gpd.GeoDataFrame):
        src = path.attrs.get("source", what)
        if path.crs is None:
            raise InputError(src, "crs", f"{what} has no coordinate reference system", _CRS_FIX)
        check_coordinates(path, src, what)
        return path.copy(), src
    return read_layer(path, layer, what=what, geom_types=(kind,)), str(path)


def _find_field(gdf: gpd.GeoDataFrame, name: str) -> str | None:
    """Case-insensitive column lookup."""
    for col in gdf.columns:
        if str(col).lower() == name.lower():
            return col
    return None


def load_zones(path: str | os.PathLike | gpd.GeoDataFrame, side_a: Side, side_b: Side, *,
               force_field: str = "force", layer: str | None = None) -> gpd.GeoDataFrame:
    """Read force-control zones and tag each with its side.

    Returns a GeoDataFrame with columns ``force`` (lower case), ``side`` (``"a"``, ``"b"`` or
    ``None`` for forces in neither side) and ``reach_km`` (per-zone override or NaN).

    Examples
    --------
    >>> from gapmap import parse_side
    >>> zones = load_zones("geodata/zones.geojson", parse_side("krg=peshmerga"),
    ...                    parse_side("federal=isf,pmf"))  # doctest: +SKIP
    """
    gdf, src = _layer_or_path(path, layer, "zones", "Polygon")
    col = _find_field(gdf, force_field)
    if col is None:
        raise InputError(src, force_field, "force field not found in zones "
                         f"(fields: {', '.join(map(str, gdf.columns.drop(gdf.geometry.name)))})",
                         "name the field that holds the force with --force-field")
    overlap = set(side_a.forces) & set(side_b.forces)
    if overlap:
        raise InputError(src, force_field, f"force(s) {sorted(overlap)} are on both sides",
                         "give each force to one side only")
    forces = gdf[col].astype("string").str.strip().str.lower()
    side = pd.Series([None] * len(gdf), index=gdf.index, dtype=object)
    side[forces.isin(side_a.forces).fillna(False).to_numpy()] = "a"
    side[forces.isin(side_b.forces).fillna(False).to_numpy()] = "b"
    for s, tag in ((side_a, "a"), (side_b, "b")):
        if not (side == tag).any():
            found = sorted(set(forces.dropna()))
            raise InputError(src, col, f"no zone belongs to side {s.name} ({', '.join(s.forces)}); "
                             f"forces found: {', '.join(found) or 'none'}",
                             "check --side-a/--side-b against the zones' force values")
    out = gdf.copy()
    out["force"] = forces.astype(object)
    out["side"] = side
    rcol = _find_field(gdf, "reach_km")
    out["reach_km"] = _numbers(gdf, rcol, src, "reach_km", 1000.0) if rcol else np.nan
    _refuse_zero_area(out, src)
    out.attrs["source"] = src
    return out


def _numbers(gdf: gpd.GeoDataFrame, col: str, src, name: str, high: float) -> pd.Series:
    """A numeric per-feature field: empty cells are NaN; text, infinity, <0 or >high refused."""
    raw = gdf[col]
    if pd.api.types.is_bool_dtype(raw):
        raise InputError(src, col, "values are true/false, not numbers",
                         f"give {name} as a number or leave it empty")
    vals = pd.to_numeric(raw, errors="coerce").astype(float)
    bad = raw.notna() & vals.isna()
    if bad.any():
        example = raw[bad].iloc[0]
        raise InputError(src, col, f"{int(bad.sum())} value(s) are not numbers (e.g. "
                         f"{str(example)[:40]!r})", f"give {name} as a number or leave it empty")
    given = vals.dropna()
    if not np.isfinite(given).all() or (given < 0).any() or (given > high).any():
        worst = given[~np.isfinite(given) | (given < 0) | (given > high)].iloc[0]
        unit = name.rsplit("_", 1)[-1]
        raise InputError(src, col, f"value {worst:g} out of range",
                         f"give {name} from 0 to {high:,g} {unit} or leave it empty")
    return vals


def _refuse_zero_area(zones: gpd.GeoDataFrame, src) -> None:
    area = shapely.area(np.asarray(zones.geometry.values, dtype=object))
    zero = ~(area > 0)
    if zero.any():
        rows = ", ".join(map(str, zones.index[zero][:5].tolist()))
        raise InputError(src, "geometry", f"{int(zero.sum())} zone(s) have zero area "
                         f"(rows {rows}{', …' if zero.sum() > 5 else ''})",
                         "remove them or give their real outline")


def load_posts(path: str | os.PathLike | gpd.GeoDataFrame, *, layer: str | None = None,
               force_field: str = "force", default_range_km: float = 5.0,
               default_height_m: float = 10.0) -> gpd.GeoDataFrame:
    """Read posts (points) with ``range_km`` and ``height_m`` filled from defaults where missing.

    Examples
    --------
    >>> posts = load_posts("geodata/posts.geojson")  # doctest: +SKIP
    >>> posts[["range_km", "height_m"]].dtypes.tolist()  # doctest: +SKIP
    [dtype('float64'), dtype('float64')]
    """
    gdf, src = _layer_or_path(path, layer, "posts", "Point")
    gdf = gdf.explode(index_parts=False) if len(gdf) else gdf
    out = gdf.copy()
    for name, default in (("range_km", default_range_km), ("height_m", default_height_m)):
        col = _find_field(gdf, name)
        if col is None:
            out[name] = float(default)
            continue
        vals = _numbers(gdf, col, src, name, 1000.0 if name == "range_km" else 10_000.0)
        out[name] = vals.fillna(default).astype(float)
    fcol = _find_field(gdf, force_field)
    out["force"] = (gdf[fcol].astype("string").str.strip().str.lower().astype(object)
                    if fcol else None)
    out.attrs["source"] = src
    return out.reset_index(drop=True)


def load_study_area(path: str | os.PathLike | gpd.GeoDataFrame, *, layer: str | None = None
                    ) -> gpd.GeoDataFrame:
    """Read the study area (polygons), dissolved into one feature."""
    gdf, src = _layer_or_path(path, layer, "study area", "Polygon")
    if not len(gdf):
        raise InputError(src, None, "study area has no polygons", "give at least one polygon")
    out = gpd.GeoDataFrame(geometry=[shapely.union_all(gdf.geometry.values)], crs=gdf.crs)
    out.attrs["source"] = src
    return out


def check_layout(zones: gpd.GeoDataFrame, study_area: gpd.GeoDataFrame | None, *,
                 posts: gpd.GeoDataFrame | None = None, max_width_km: float = 150.0) -> None:
    """Check where the layers lie relative to the study area; warn or refuse what is wrong.

    * A study area further than ``max_width_km`` from every zone cannot hold any seam:
      refused (:class:`InputError`).
    * No zone within the study area: :class:`~gapmap.errors.ResultWarning`.
    * Most features of a layer outside the study area, and inside it once latitude and
      longitude are swapped: :class:`InputWarning` (their columns look swapped).

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> area = gpd.GeoDataFrame(geometry=[shapely.box(44, 35, 45, 36)], crs=4326)
    >>> swapped = gpd.GeoDataFrame(geometry=[shapely.box(35.2, 44.2, 35.4, 44.4)], crs=4326)
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     check_layout(swapped, area, max_width_km=2000)
    >>> sorted(type(x.message).__name__ for x in w)
    ['InputWarning', 'ResultWarning']
    """
    if study_area is None or not len(study_area) or zones is None or not len(zones):
        return
    from .crs import data_bounds

    bounds = data_bounds(study_area)
    if bounds is None:
        return
    lon0 = ((bounds[0] + bounds[2]) / 2 + 180) % 360 - 180
    lat0 = (bounds[1] + bounds[3]) / 2
    local = (f"+proj=aeqd +lat_0={lat0:.5f} +lon_0={lon0:.5f} +datum=WGS84 +units=m +no_defs")
    area_src = study_area.attrs.get("source", "study area")
    area = shapely.union_all(study_area.to_crs(local).geometry.values)
    zones_local = zones.to_crs(local).geometry.values
    dist_km = shapely.distance(area, zones_local) / 1000.0
    nearest = float(np.nanmin(dist_km)) if len(dist_km) else float("inf")
    if nearest > max_width_km:
        raise InputError(area_src, None, f"the study area is {nearest:,.0f} km from the nearest "
                         f"zone, beyond max_width_km={max_width_km:g}: no seam can lie in it",
                         "check --study-area (and its CRS) against the zones")
    if nearest > 0:
        warnings.warn(f"{area_src}: no zones within the study area (the nearest is "
                      f"{nearest:,.1f} km away)", ResultWarning, stacklevel=2)
    for layer, what in ((zones, "zones"), (posts, "posts")):
        if layer is not None and len(layer):
            _warn_if_swapped(layer, study_area, what)


def _warn_if_swapped(layer: gpd.GeoDataFrame, study_area: gpd.GeoDataFrame, what: str) -> None:
    pts = layer.geometry.to_crs(4326).representative_point()
    area = shapely.union_all(study_area.to_crs(4326).geometry.values)
    shapely.prepare(area)
    xy = shapely.get_coordinates(pts.values)
    inside = shapely.contains_xy(area, xy[:, 0], xy[:, 1])
    outside = ~inside
    if outside.sum() * 2 <= len(xy):
        return
    sw = xy[outside][:, ::-1]
    ok = np.abs(sw[:, 1]) <= 90
    swapped_in = shapely.contains_xy(area, sw[ok, 0], sw[ok, 1]).sum() if ok.any() else 0
    if swapped_in * 2 > outside.sum():
        src = layer.attrs.get("source", what)
        warnings.warn(f"{src}: {int(outside.sum())} of {len(xy)} {what} lie outside the study "
                      f"area and {int(swapped_in)} of them inside it with latitude and longitude "
                      "swapped: the coordinates look swapped (x must be longitude)",
                      InputWarning, stacklevel=3)


# --- Atomic outputs -------------------------------------------------------------------------
#
# A result is staged beside its target (``.NAME.gapmap-PID-XXXX``) and renamed into place only
# when complete. Every staging path is registered so that SIGINT, SIGTERM, an error or an
# ordinary exit removes it; one left by SIGKILL carries a dead PID and is removed by the next
# run into the same target. The commit itself runs with SIGINT/SIGTERM blocked, so a signal
# lands before or after it, never between the renames.

#: Seconds to pause before committing a staged result (test hook for interrupt tests).
SLOW_WRITE_ENV = "GAPMAP_TEST_SLOW_WRITE_S"

_STAGING: set[Path] = set()
_HANDLED = (signal.SIGINT, signal.SIGTERM)
_previous_handlers: dict[int, Any] = {}


def _cleanup_staging() -> None:
    for path in list(_STAGING):
        _remove(path)
        _STAGING.discard(path)


def _on_signal(signum, frame):  # noqa: ARG001 - signal handler signature
    _cleanup_staging()
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


atexit.register(_cleanup_staging)


def _register(path: Path) -> None:
    if not _STAGING and threading.current_thread() is threading.main_thread():
        for sig in _HANDLED:
            with contextlib.suppress(ValueError, OSError):
                _previous_handlers[sig] = signal.signal(sig, _on_signal)
    _STAGING.add(path)


def _unregister(path: Path) -> None:
    _STAGING.discard(path)
    if not _STAGING and threading.current_thread() is threading.main_thread():
        for sig, handler in list(_previous_handlers.items()):
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(sig, handler)
            _previous_handlers.pop(sig, None)


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _HANDLED)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()


def _pause_for_tests() -> None:
    delay = os.environ.get(SLOW_WRITE_ENV)
    if delay:
        with contextlib.suppress(ValueError):
            time.sleep(float(delay))


def _staging_prefix(target: Path) -> str:
    return f".{target.name}.gapmap-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but is not ours
        return True
    return True


def _clean_stale(target: Path) -> None:
    """Remove staging left beside ``target`` by a killed run (its PID no longer alive)."""
    prefix = _staging_prefix(target)
    with contextlib.suppress(OSError):
        for entry in target.parent.iterdir():
            if not entry.name.startswith(prefix):
                continue
            pid = entry.name[len(prefix):].split("-", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
                log.info("removing stale staging %s", entry)
                _remove(entry)
    # staging folders of earlier gapmap versions lived inside the output folder
    if target.is_dir() and not target.is_symlink():
        with contextlib.suppress(OSError):
            for entry in target.iterdir():
                if entry.name.startswith(".gapmap-") and entry.is_dir():
                    _remove(entry)


def _kind(st: os.stat_result) -> str:
    for test, name in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a folder"), (stat.S_ISREG, "a regular file")):
        if test(st.st_mode):
            return name
    return "not a regular file"


def _check_target(target: Path, want_dir: bool) -> Path:
    """The path to replace (symlinks to a file or folder followed); refuse anything else."""
    try:
        st = os.stat(target)  # follows symlinks: a link to a device is a device
    except FileNotFoundError:
        if target.is_symlink():
            raise InputError(target, None, "is a dangling symbolic link",
                             "give --out a new path or remove the link") from None
        return target
    except OSError as exc:
        raise _output_error(exc, target) from exc
    real = Path(os.path.realpath(target)) if target.is_symlink() else target
    if want_dir and not stat.S_ISDIR(st.st_mode):
        raise InputError(target, None, f"--out is {_kind(st)}, not a folder",
                         "give --out a folder (new or from an earlier run)")
    if not want_dir and not stat.S_ISREG(st.st_mode):
        raise InputError(target, None, f"--out is {_kind(st)}, not a regular file",
                         "give --out the path of a new or existing regular file")
    return real


_ERRNO_TEXT = {
    errno.ENOSPC: ("no space left on device", "free some space or choose another --out"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or choose another --out"),
    errno.EROFS: ("read-only file system", "choose an --out on a writable file system"),
    errno.EACCES: ("permission denied", "choose an --out you can write to"),
    errno.EPERM: ("operation not permitted", "choose an --out you can write to"),
    errno.ENOTDIR: ("a component of the path is a file, not a folder",
                    "choose an --out whose parent folders are folders"),
    errno.EEXIST: ("a component of the path is a file, not a folder",
                   "choose an --out whose parent folders are folders"),
    errno.EISDIR: ("is a folder where a file is written", "move the folder away or choose "
                   "another --out"),
}


def _output_error(exc: BaseException, path: Path) -> OutputError:
    """An OutputError naming ``path`` for an OS-level or driver-level write failure."""
    if isinstance(exc, OSError) and exc.errno in _ERRNO_TEXT:
        problem, fix = _ERRNO_TEXT[exc.errno]
        where = exc.filename if exc.filename else path
        return OutputError(where, f"cannot write: {problem}", fix)
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    low = text.lower()
    for words, code in (("no space", errno.ENOSPC), ("read-only", errno.EROFS),
                        ("permission denied", errno.EACCES), ("not a directory", errno.ENOTDIR)):
        if words in low:
            problem, fix = _ERRNO_TEXT[code]
            return OutputError(path, f"cannot write: {problem}", fix)
    return OutputError(path, f"cannot write: {text}", "check the folder and free space")


def _disk_full(path: Path) -> bool:
    with contextlib.suppress(OSError):
        st = os.statvfs(path)
        return st.f_bavail * st.f_frsize < 64 * 1024
    return False


def _write_failure(exc: BaseException, path: Path, stage: Path) -> OutputError | None:
    """The OutputError for ``exc`` if it is a failure to write (else None: re-raise as is)."""
    if isinstance(exc, (GapmapError, KeyboardInterrupt, SystemExit, GeneratorExit)):
        return None
    if isinstance(exc, OSError):
        return _output_error(exc, path)
    module = type(exc).__module__.split(".")[0]
    if _disk_full(stage.parent):
        return _output_error(OSError(errno.ENOSPC, "no space"), path)
    if module in ("pyogrio", "fiona", "rasterio", "sqlite3"):
        return _output_error(exc, path)
    return None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place if the block succeeds.

    ``path`` must be new or a regular file (a symbolic link to one is followed); a folder,
    device, FIFO or socket is refused with :class:`~gapmap.errors.InputError`. A failure to
    write (disk full, read-only, permission) raises :class:`~gapmap.errors.OutputError` and
    leaves ``path`` as it was; the temporary file is removed on errors and on SIGINT/SIGTERM.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "summary.json"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("{}")
    >>> target.read_text()
    '{}'
    """
    target = _check_target(Path(path), want_dir=False)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _clean_stale(target)
        fd, tmp = tempfile.mkstemp(prefix=f"{_staging_prefix(target)}{os.getpid()}-",
                                   suffix=target.suffix or ".tmp", dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise _output_error(exc, target) from exc
    tmp_path = Path(tmp)
    _register(tmp_path)
    try:
        tmp_path.unlink()  # writers such as GDAL want to create the file themselves
        try:
            yield tmp_path
        except BaseException as exc:
            err = _write_failure(exc, target, tmp_path)
            if err is not None:
                raise err from exc
            raise
        _pause_for_tests()
        if not tmp_path.is_file():
            raise OutputError(target, "the writer produced no file", "report this as a bug")
        with _signals_blocked():
            try:
                _check_target(target, want_dir=False)
                os.replace(tmp_path, target)
            except OSError as exc:
                raise _output_error(exc, target) from exc
    finally:
        _remove(tmp_path)
        _unregister(tmp_path)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh staging folder; on success it replaces ``path`` as one unit.

    The staging folder lies beside ``path``. On success the previous folder is renamed away,
    the staging folder renamed in its place and the previous one removed, so a reader finds
    either the old result or the new one, never a mix. Entries of the previous folder that the
    run did not write (a user's own files) are carried over as hard links. On any failure,
    SIGINT or SIGTERM the staging folder is removed and ``path`` is left byte-identical;
    failures to write raise :class:`~gapmap.errors.OutputError`. ``path`` must be new or a
    folder (a file, device, FIFO or socket is refused with :class:`~gapmap.errors.InputError`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "run1"
    >>> with atomic_dir(out) as stage:
    ...     _ = (stage / "summary.json").write_text("{}")
    >>> sorted(p.name for p in out.iterdir())
    ['summary.json']
    """
    target = _check_target(Path(path), want_dir=True)
    target = Path(os.path.abspath(target))
    mount = target.is_dir() and os.path.ismount(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _clean_stale(target)
        where = target if mount else target.parent  # a mount point cannot be renamed
        if mount:
            target.mkdir(exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f"{_staging_prefix(target)}{os.getpid()}-",
                                      dir=where))
    except OSError as exc:
        raise _output_error(exc, target) from exc
    _register(stage)
    try:
        try:
            yield stage
        except BaseException as exc:
            err = _write_failure(exc, target, stage)
            if err is not None:
                raise err from exc
            raise
        _pause_for_tests()
        try:
            if target.exists():
                _check_replaceable(target, stage)
                if not mount:
                    _carry_over(target, stage)
            with _signals_blocked():
                (_merge_into if mount else _swap_in)(stage, target)
        except OSError as exc:
            raise _output_error(exc, target) from exc
    finally:
        _remove(stage)
        _unregister(stage)


def _check_replaceable(old: Path, new: Path) -> None:
    """Refuse to replace an entry of the previous result by one of another kind."""
    for item in new.rglob("*"):
        rel = item.relative_to(new)
        prev = old / rel
        if not os.path.lexists(prev):
            continue
        st = os.lstat(prev)
        same = stat.S_ISDIR(st.st_mode) if item.is_dir() else stat.S_ISREG(st.st_mode)
        if not same:
            raise OutputError(prev, f"is {_kind(st)} where this run writes "
                              f"{'a folder' if item.is_dir() else 'a file'}",
                              "move it away or choose another --out")


def _carry_over(old: Path, new: Path) -> None:
    """Hard-link (or copy) into ``new`` what ``old`` holds and ``new`` does not."""
    for entry in old.iterdir():
        if entry.name.startswith(".") and ".gapmap-" in entry.name:
            continue  # staging of an interrupted earlier run, not a result
        dest = new / entry.name
        if entry.is_dir() and not entry.is_symlink():
            if dest.is_dir():
                _carry_over(entry, dest)
            elif not os.path.lexists(dest):
                shutil.copytree(entry, dest, symlinks=True, copy_function=_link_or_copy)
        elif not os.path.lexists(dest):
            _link_or_copy(entry, dest)


def _link_or_copy(src, dst) -> None:
    if os.path.islink(src) or not os.path.isfile(src):
        shutil.copy2(src, dst, follow_symlinks=False)
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _swap_in(stage: Path, target: Path) -> None:
    """Rename ``stage`` to ``target``, the previous ``target`` away and then removed."""
    if not os.path.lexists(target):
        os.rename(stage, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f"{_staging_prefix(target)}{os.getpid()}-old-",
                                dir=target.parent))
    _register(old)
    try:
        os.rmdir(old)
        os.rename(target, old)
        try:
            os.rename(stage, target)
        except OSError:
            os.rename(old, target)
            raise
    finally:
        _remove(old)
        _unregister(old)


def _merge_into(stage: Path, target: Path) -> None:
    """For a mount point (which cannot be renamed): replace its entries one by one."""
    for entry in stage.iterdir():
        dest = target / entry.name
        if entry.is_dir() and os.path.isdir(dest) and not os.path.islink(dest):
            shutil.rmtree(dest)
        os.replace(entry, dest)
