"""Scenario files: the layers and parameters of a run in one TOML file.

Paths in the file are relative to the file itself.

.. code-block:: toml

    [layers]
    zones = "zones.geojson"
    force_field = "force"
    posts = "posts.geojson"
    study_area = "study_area.geojson"
    incidents = "incidents_ucdp_ged.csv"
    dem = "dem_synthetic.tif"

    [sides]
    a = "krg=peshmerga"
    b = "federal=isf,pmf"

    [parameters]
    reach_km = 2
    max_width_km = 150
    min_length_km = 1

    [sources.incidents]           # optional, one table per layer (see gapmap.sources)
    name = "UCDP GED"
    licence = "CC BY 4.0"

A series (``gapmap series --config``) lists dated snapshots instead of (or besides) one
``zones`` layer; a snapshot's ``posts`` replace ``[layers] posts`` on that date. Single-date
commands given such a file analyse ``[layers] zones``, or the last snapshot without one.

.. code-block:: toml

    [[snapshots]]
    date = 2017-06-15
    zones = "zones_2017-06.geojson"

    [[snapshots]]
    date = 2017-10-16
    zones = "zones_2017-10.geojson"
    posts = "posts_2017-10.geojson"
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError
from .settings import Settings, Side, parse_side

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["Scenario", "SnapshotFiles", "load_scenario", "run_scenario"]

log = logging.getLogger(__name__)

_LAYER_KEYS = {"zones", "zones_layer", "force_field", "posts", "posts_layer", "study_area",
               "study_area_layer", "incidents", "incidents_format", "incidents_lat",
               "incidents_lon", "date_format", "dem", "roads", "rivers", "lakes", "places",
               "places_name_field"}
_PATH_KEYS = {"zones", "posts", "study_area", "incidents", "dem", "roads", "rivers", "lakes",
              "places"}
_PARAM_KEYS = {f.name for f in dataclasses.fields(Settings)} | {
    "visibility", "margin_km", "since", "until", "types", "actors"}


@dataclass(frozen=True)
class SnapshotFiles:
    """One ``[[snapshots]]`` entry of a scenario: a date (``YYYY-MM-DD``) and its layers."""

    date: str
    zones: Path
    posts: Path | None = None


@dataclass(frozen=True)
class Scenario:
    """Everything one run needs: layer paths, sides and settings.

    Examples
    --------
    >>> sc = load_scenario("geodata/scenario.toml")  # doctest: +SKIP
    >>> result = run_scenario(sc)  # doctest: +SKIP
    """

    zones: Path
    side_a: Side
    side_b: Side
    force_field: str = "force"
    zones_layer: str | None = None
    posts: Path | None = None
    posts_layer: str | None = None
    study_area: Path | None = None
    study_area_layer: str | None = None
    incidents: Path | None = None
    incidents_format: str = "auto"
    incidents_lat: str | None = None
    incidents_lon: str | None = None
    date_format: str | None = None
    dem: Path | None = None
    roads: Path | None = None
    rivers: Path | None = None
    lakes: Path | None = None
    places: Path | None = None
    places_name_field: str | None = None
    settings: Settings = field(default_factory=Settings)
    visibility: bool = False
    margin_km: float = 5.0
    since: str | None = None
    until: str | None = None
    types: tuple[str, ...] = ()
    actors: tuple[str, ...] = ()
    source: Path | None = None
    snapshots: tuple[SnapshotFiles, ...] = ()
    #: The ``[sources.<layer>]`` tables (layer → fields), read by :mod:`gapmap.sources`.
    sources: dict = field(default_factory=dict, hash=False)

    def layer_files(self) -> dict[str, Path]:
        """The layer files this scenario names, layer → path, in a stable order."""
        order = [k for k in _LAYER_ORDER if k in _PATH_KEYS]
        order += sorted(_PATH_KEYS - set(order))
        return {k: getattr(self, k) for k in order if getattr(self, k, None) is not None}

    def read_incidents(self):
        """The scenario's incidents, read and filtered as it says (``None`` without any).

        Returns
        -------
        gapmap.incidents.Incidents or None
        """
        if self.incidents is None:
            return None
        from .incidents import read_incidents

        return read_incidents(self.incidents, format=self.incidents_format or "auto",
                              lat=self.incidents_lat, lon=self.incidents_lon,
                              since=self.since, until=self.until,
                              types=list(self.types) or None, actors=list(self.actors) or None,
                              date_format=self.date_format)

    def inputs(self) -> dict[str, Any]:
        """Input paths for the record (summary.json)."""
        keys = ("zones", "posts", "study_area", "incidents", "dem", "roads", "rivers", "lakes",
                "places")
        out = {k: str(getattr(self, k)) for k in keys if getattr(self, k) is not None}
        if self.source is not None:
            out["scenario"] = str(self.source)
        return out


#: The order in which layers (and their sources) are listed.
_LAYER_ORDER = ("zones", "study_area", "posts", "roads", "places", "rivers", "lakes",
                "incidents", "dem")

_TEXT_KEYS = {"force_field", "zones_layer", "posts_layer", "study_area_layer",
              "incidents_format", "incidents_lat", "incidents_lon", "places_name_field",
              "date_format"}
_NUMBER_KEYS = {f.name for f in dataclasses.fields(Settings)} - {"crs"} | {"margin_km"}
_DATE_KEYS = {"since", "until"}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"text ({value!r})"
    return f"{type(value).__name__} ({value!r})"


def _check_type(src, key: str, name: str, value: Any) -> Any:
    """A scenario value of the right TOML type for ``name``, or an InputError naming it."""
    if value is None:
        return value
    if name in _PATH_KEYS and isinstance(value, os.PathLike):
        return value
    if name in _PATH_KEYS or name in _TEXT_KEYS:
        if not isinstance(value, str) or not value.strip():
            raise InputError(src, key, f"must be text, got {_kind(value)}",
                             f'write it in quotes, e.g. {name} = "{_EXAMPLES.get(name, "...")}"')
    elif name in _NUMBER_KEYS:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(src, key, f"must be a number, got {_kind(value)}",
                             f"write a bare number, e.g. {name} = 2")
        if not math.isfinite(value):
            raise InputError(src, key, f"must be a finite number, got {value}",
                             f"write a finite number, e.g. {name} = 2")
    elif name == "visibility":
        if not isinstance(value, bool):
            raise InputError(src, key, f"must be a boolean, got {_kind(value)}",
                             "write visibility = true or visibility = false (no quotes)")
    elif name == "crs":
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise InputError(src, key, f"must be a CRS string, got {_kind(value)}",
                             'write e.g. crs = "EPSG:32638"')
    elif name in _DATE_KEYS:
        if isinstance(value, datetime.date):
            return value.isoformat()[:10]
        if not isinstance(value, str):
            raise InputError(src, key, f"must be a date, got {_kind(value)}",
                             f"write e.g. {name} = 2020-01-01")
    elif name in ("types", "actors"):
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(v, str) for v in items):
            raise InputError(src, key, f"must be text or a list of text, got {_kind(value)}",
                             f'write e.g. {name} = ["{_EXAMPLES[name]}"]')
    elif name in ("side_a", "side_b"):
        if not isinstance(value, (str, Side)):
            raise InputError(src, key, f"must be text, got {_kind(value)}",
                             'write it as NAME=force1,force2, e.g. a = "krg=peshmerga"')
    return value


_EXAMPLES = {"force_field": "force", "zones": "zones.geojson", "posts": "posts.geojson",
             "study_area": "study_area.geojson", "incidents": "incidents.csv",
             "dem": "dem.tif", "roads": "roads.geojson", "rivers": "rivers.geojson",
             "lakes": "lakes.geojson", "places": "places.geojson", "places_name_field": "name",
             "zones_layer": "zones",
             "posts_layer": "posts", "study_area_layer": "area", "incidents_format": "acled",
             "incidents_lat": "latitude", "incidents_lon": "longitude", "types": "Battles",
             "actors": "ISIS", "date_format": "%d/%m/%Y"}


def load_scenario(path: str | os.PathLike, **overrides: Any) -> Scenario:
    """Read a scenario TOML file; keyword overrides (e.g. from the CLI) win over the file.

    Every value must have its TOML type: text in quotes for paths, layer and field names;
    bare numbers for parameters; ``true``/``false`` for ``visibility``. A value of the wrong
    type is refused with the file and key named (``visibility = "false"`` is text, not false).
    """
    p = Path(path)
    if not p.exists():
        raise InputError(p, None, "scenario file not found", "check the --config path")
    if not p.is_file():
        raise InputError(p, None, "scenario is not a file", "give --config a TOML file")
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(p, None, f"not valid TOML: {exc}", "fix the syntax") from exc
    except OSError as exc:
        raise InputError(p, None, f"cannot read: {exc.strerror}", "check the --config path"
                         ) from exc
    unknown = set(doc) - {"layers", "sides", "parameters", "sources", "snapshots"}
    if unknown:
        raise InputError(p, sorted(unknown)[0], "unknown section",
                         "use [layers], [sides], [parameters], [sources.<layer>] and "
                         "[[snapshots]]")
    for section in ("layers", "sides", "parameters", "sources"):
        if not isinstance(doc.get(section, {}), dict):
            raise InputError(p, section, "must be a table", f"write it as [{section}]")
    values: dict[str, Any] = {}
    for k, v in doc.get("layers", {}).items():
        if k not in _LAYER_KEYS:
            raise InputError(p, f"layers.{k}", "unknown key",
                             f"use one of {', '.join(sorted(_LAYER_KEYS))}")
        _check_type(p, f"layers.{k}", k, v)
        values[k] = (p.parent / v) if k in _PATH_KEYS else v
    sides = doc.get("sides", {})
    for k, v in sides.items():
        if k not in ("a", "b"):
            raise InputError(p, f"sides.{k}", "unknown key", "use a and b")
        _check_type(p, f"sides.{k}", f"side_{k}", v)
        values[f"side_{k}"] = v
    for k, v in doc.get("parameters", {}).items():
        if k not in _PARAM_KEYS:
            raise InputError(p, f"parameters.{k}", "unknown parameter",
                             f"use one of {', '.join(sorted(_PARAM_KEYS))}")
        values[k] = _check_type(p, f"parameters.{k}", k, v)
    if "snapshots" in doc:
        values["snapshots"] = _snapshot_files(p, doc["snapshots"])
    given = {k: v for k, v in overrides.items() if v is not None}
    sources = dict(doc.get("sources", {}))
    for layer in list(sources):
        # A layer replaced on the command line is not the file its table describes.
        if layer in given and layer in _PATH_KEYS and layer in values \
                and Path(given[layer]).resolve() != Path(values[layer]).resolve():
            log.info("[sources.%s] of %s left out: the layer is replaced by %s", layer, p,
                     given[layer])
            del sources[layer]
    values.update(given)
    return make_scenario(source=p, sources=sources, **values)


_SNAPSHOT_KEYS = ("date", "zones", "posts")


def _snapshot_files(p: Path, entries: Any) -> tuple[SnapshotFiles, ...]:
    """The ``[[snapshots]]`` array of tables: date (TOML date or text), zones, optional posts."""
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InputError(p, "snapshots", "must be an array of tables",
                         'write each as [[snapshots]] with date = 2017-06-15 and zones = "..."')
    out = []
    for i, e in enumerate(entries, 1):
        key = f"snapshots[{i}]"
        extra = sorted(set(e) - set(_SNAPSHOT_KEYS))
        if extra:
            raise InputError(p, f"{key}.{extra[0]}", "unknown key",
                             f"use {', '.join(_SNAPSHOT_KEYS)}")
        day = e.get("date")
        if isinstance(day, datetime.date) and not isinstance(day, datetime.datetime):
            day = day.isoformat()
        try:
            day = datetime.date.fromisoformat(day).isoformat() if isinstance(day, str) else None
        except ValueError:
            day = None
        if day is None:
            raise InputError(p, f"{key}.date", f"not a date: {e.get('date')!r}",
                             "write date = 2017-06-15 (YYYY-MM-DD, no time)")
        for name in ("zones", "posts"):
            if name in e:
                _check_type(p, f"{key}.{name}", name, e[name])
        if "zones" not in e:
            raise InputError(p, f"{key}.zones", "missing",
                             f'name the zones of {day}, e.g. zones = "zones_{day}.geojson"')
        out.append(SnapshotFiles(day, p.parent / e["zones"],
                                 p.parent / e["posts"] if "posts" in e else None))
    return tuple(out)


def make_scenario(**values: Any) -> Scenario:
    """Build a :class:`Scenario` from loose values (strings for sides, numbers for settings).

    Examples
    --------
    >>> sc = make_scenario(zones="zones.geojson", side_a="krg=peshmerga", side_b="fed=isf",
    ...                    reach_km=3)
    >>> sc.settings.reach_a
    3.0
    >>> make_scenario(zones="z.geojson", side_a="a=x", side_b="b=y", reach_km="far")
    Traceback (most recent call last):
    ...
    gapmap.errors.InputError: reach_km: must be a number, got text ('far') — write a bare number, e.g. reach_km = 2
    """
    src = values.pop("source", None)
    sources = dict(values.pop("sources", None) or {})
    if values.get("zones") is None and values.get("snapshots"):
        values["zones"] = values["snapshots"][-1].zones  # the latest state, for one-date commands
    if values.get("zones") is None:
        raise InputError(src or "--zones", "zones", "no zones layer given",
                         "pass --zones FILE or set layers.zones in the scenario file")
    for k in list(values):
        values[k] = _check_type(src, k, k, values[k])
    for key, opt in (("side_a", "--side-a"), ("side_b", "--side-b")):
        v = values.get(key)
        if v is None:
            raise InputError(src or opt, key, "side not given",
                             f"pass {opt} NAME=force1,force2 or set it under [sides]")
        if isinstance(v, str):
            values[key] = parse_side(v, opt)
    setting_names = {f.name for f in dataclasses.fields(Settings)}
    sett = {k: values.pop(k) for k in list(values) if k in setting_names}
    for k, v in sett.items():
        if k != "crs" and v is not None:
            sett[k] = float(v)
    if sett.get("crs") is not None:
        from .crs import check_crs

        try:
            check_crs(sett["crs"])
        except InputError as exc:
            raise InputError(src or "--crs", "crs", exc.problem, exc.fix) from exc
    try:
        settings = Settings(**sett)
    except InputError as exc:
        if src is None:
            raise
        raise InputError(src, exc.field, exc.problem, exc.fix) from exc
    margin = values.get("margin_km")
    if margin is not None:
        if not 0 <= margin <= 1000:
            raise InputError(src or "--margin-km", "margin_km", f"out of range, got {margin:g}",
                             "give --margin-km (or margin_km in a scenario) a number from 0 "
                             "to 1,000 km")
        values["margin_km"] = float(margin)
    for k in _PATH_KEYS:
        if values.get(k) is not None:
            values[k] = Path(values[k])
    for k in ("types", "actors"):
        v = values.get(k)
        if v is not None:
            values[k] = (v,) if isinstance(v, str) else tuple(v)
    sc = Scenario(settings=settings, source=Path(src) if src else None, sources=sources,
                  **values)
    from .sources import read_sources

    read_sources(sources, sc.layer_files(), origin=src)  # bad tables or sidecars fail here
    return sc


def run_scenario(scenario: Scenario, *, progress=None):
    """Run the analysis of a scenario (with incidents when the scenario names them).

    The same as ``gapmap.Run(scenario).analysis``; keep the :class:`gapmap.Run` to draw maps,
    hot spots or placement from the same inputs without reading or computing them again.

    Returns
    -------
    gapmap.Analysis
    """
    from .run import Run

    return Run(scenario, progress=progress).analysis


def layer_source(path, layer, what, kind):
    """A path, or the named layer of it read now (multi-layer sources such as GeoPackage)."""
    if path is None or layer is None:
        return path
    from .io import read_layer

    return read_layer(path, layer, what=what, geom_types=(kind,))
