"""Reading vector layers and writing outputs atomically.

Layers come from any format geopandas reads (GeoJSON, GeoPackage, Shapefile, FlatGeobuf,
GeoParquet). Invalid geometries are repaired with a warning; a layer with no CRS is an error.
Outputs are written to a temporary path beside the target and renamed into place only when
complete, so a failed run never leaves half-written files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .errors import InputError
from .settings import Side

__all__ = [
    "read_layer",
    "load_zones",
    "load_posts",
    "load_study_area",
    "atomic_path",
    "atomic_dir",
]

log = logging.getLogger(__name__)

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
        fix = "name the layer with --layer" if layer is None else "check the layer name"
        raise InputError(p, layer, f"cannot read {what}: {msg}", fix) from exc
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry is None:
        raise InputError(p, "geometry", f"{what} has no geometry column", "give a vector layer")
    if gdf.crs is None:
        raise InputError(p, "crs", f"{what} has no coordinate reference system", _CRS_FIX)
    empty = gdf.geometry.isna() | gdf.geometry.is_empty
    if empty.any():
        warnings.warn(f"{p}: {int(empty.sum())} {what} feature(s) without geometry ignored",
                      stacklevel=2)
        gdf = gdf.loc[~empty].copy()
    if geom_types is not None and len(gdf):
        kinds = gdf.geometry.geom_type.str.replace("Multi", "", regex=False)
        bad = ~kinds.isin(geom_types)
        if bad.any():
            raise InputError(p, "geometry",
                             f"{what} must be {'/'.join(geom_types)}, found {sorted(set(gdf.geometry.geom_type[bad]))}",
                             f"give a {'/'.join(geom_types).lower()} layer for {what}")
    invalid = ~gdf.geometry.is_valid
    if invalid.any():
        warnings.warn(f"{p}: repaired {int(invalid.sum())} invalid {what} geometr"
                      f"{'y' if invalid.sum() == 1 else 'ies'}", stacklevel=2)
        gdf = gdf.copy()
        fixed = shapely.make_valid(gdf.geometry.values[invalid.values])
        if geom_types is not None and "Polygon" in geom_types:
            # make_valid may return collections with slivers of lines; keep the areal part
            fixed = np.array([_polygonal(g) for g in fixed], dtype=object)
        gdf.loc[invalid, gdf.geometry.name] = fixed
    gdf.attrs["source"] = str(p)
    return gdf


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
    out["reach_km"] = pd.to_numeric(gdf[rcol], errors="coerce") if rcol else np.nan
    if rcol and (out["reach_km"] < 0).any():
        raise InputError(src, rcol, "negative reach_km", "use a reach ≥ 0 km or leave it empty")
    out.attrs["source"] = src
    return out


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
        vals = pd.to_numeric(gdf[col], errors="coerce")
        bad = gdf[col].notna() & vals.isna()
        if bad.any():
            raise InputError(src, col, f"{int(bad.sum())} value(s) are not numbers",
                             f"give {name} as a number or leave it empty")
        if (vals < 0).any():
            raise InputError(src, col, "negative values", f"give {name} ≥ 0")
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


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place if the block succeeds.

    Examples
    --------
    >>> with atomic_path("out/summary.json") as tmp:  # doctest: +SKIP
    ...     tmp.write_text("{}")
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix or ".tmp",
                               dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.unlink()  # writers such as GDAL want to create the file themselves
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh staging folder; on success move its files into ``path``.

    Files already in ``path`` that the run did not write are left alone; files it wrote replace
    their old versions one by one with :func:`os.replace`. On failure nothing in ``path`` changes.
    """
    target = Path(path)
    target.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".gapmap-", dir=target))
    try:
        yield stage
        for item in sorted(stage.rglob("*")):
            rel = item.relative_to(stage)
            dest = target / rel
            if item.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(item, dest)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
