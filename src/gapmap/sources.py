"""Where each input comes from: its source, licence and date, for every page that shows it.

A layer's provenance is read from two places, the scenario winning field by field:

* a sidecar file next to the layer, named after it with ``.source.json`` appended
  (``dem.tif`` → ``dem.tif.source.json``)::

      {"name": "SRTM 1 arc-second", "licence": "public domain", "date": "2000-02"}

* a ``[sources.<layer>]`` table in the scenario, for any layer the scenario names:

  .. code-block:: toml

      [sources.incidents]
      name = "UCDP GED"
      licence = "CC BY 4.0"
      url = "https://ucdp.uu.se/downloads/"
      date = "2003/2019"
      note = "year only"

Keys are ``name`` (required), ``licence`` (``license`` is accepted too), ``url``, ``date``
and ``note``; all text (a TOML date is taken as its ISO text). A table for a layer the run does
not have is refused: the credit would be for data that is not there.

The maps, the figure and the report show each :meth:`Source.credit`; :func:`attribution` joins
them into one line, each distinct credit once.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError

__all__ = ["Source", "read_sources", "attribution", "sidecar_path", "modelled_terrain",
           "SOURCE_KEYS"]

log = logging.getLogger(__name__)

#: The keys a source table or sidecar file may hold.
SOURCE_KEYS = ("name", "licence", "url", "date", "note")
_ALIASES = {"license": "licence"}

#: Sidecar files are small; anything larger is not one.
_MAX_SIDECAR_BYTES = 64_000


@dataclass(frozen=True)
class Source:
    """The provenance of one input layer.

    Examples
    --------
    >>> s = Source("incidents", "UCDP GED", "CC BY 4.0", date="2003/2019")
    >>> s.credit()
    'UCDP GED (CC BY 4.0)'
    >>> Source("dem", "Synthetic terrain").credit()
    'Synthetic terrain'
    """

    layer: str
    name: str
    licence: str = ""
    url: str = ""
    date: str = ""
    note: str = ""

    def credit(self) -> str:
        """The short credit: the name, and the licence in brackets when there is one."""
        return f"{self.name} ({self.licence})" if self.licence else self.name


def sidecar_path(path: str | os.PathLike) -> Path:
    """The sidecar metadata file of a layer file.

    >>> sidecar_path("geodata/dem.tif").name
    'dem.tif.source.json'
    """
    p = Path(path)
    return p.with_name(p.name + ".source.json")


def _text(value: Any, src, key: str) -> str:
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()[:10]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InputError(src, key, f"must be text, got {type(value).__name__}",
                         f'write it in quotes, e.g. {key.rsplit(".", 1)[-1]} = "..."')
    return " ".join(str(value).split())  # one line: a credit never breaks a page's layout


def _fields(entry: Any, src, prefix: str) -> dict[str, str]:
    """The checked source fields of one table or sidecar document."""
    if not isinstance(entry, Mapping):
        raise InputError(src, prefix.rstrip("."), "must be a table of source fields",
                         f"write it as [{prefix.rstrip('.')}] with name = \"...\", "
                         "licence = \"...\"")
    out: dict[str, str] = {}
    for k, v in entry.items():
        key = _ALIASES.get(k, k)
        if key not in SOURCE_KEYS:
            raise InputError(src, f"{prefix}{k}", "unknown key",
                             f"use {', '.join(SOURCE_KEYS)}")
        out[key] = _text(v, src, f"{prefix}{k}")
    return out


def _read_sidecar(path: Path) -> dict[str, str]:
    side = sidecar_path(path)
    if not side.is_file():
        return {}
    try:
        if side.stat().st_size > _MAX_SIDECAR_BYTES:
            raise InputError(side, None, "too large for a source file",
                             "keep only name, licence, url, date and note in it")
        doc = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(side, None, f"not readable as JSON ({exc})",
                         'write it as {"name": "...", "licence": "..."}') from exc
    return _fields(doc, side, "")


def read_sources(table: Mapping[str, Any] | None,
                 layer_paths: Mapping[str, str | os.PathLike | None], *,
                 origin: str | os.PathLike | None = None) -> tuple[Source, ...]:
    """The sources of a run's layers, in the order of ``layer_paths``.

    Parameters
    ----------
    table
        The scenario's ``[sources]`` table: layer name → fields (or ``None``).
    layer_paths
        Every layer the run has, name → file (``None`` for a layer given in memory: it has
        no sidecar, but ``table`` may credit it). A layer the run does not have is absent.
    origin
        The file ``table`` came from, for error messages.

    Raises
    ------
    InputError
        For a table naming a layer that the run does not have, an unknown key, a value that
        is not text or a source without a name.

    Examples
    --------
    >>> read_sources({"incidents": {"name": "UCDP GED", "license": "CC BY 4.0"}},
    ...              {"zones": None, "incidents": "no/such/file.csv"})
    (Source(layer='incidents', name='UCDP GED', licence='CC BY 4.0', url='', date='', note=''),)
    >>> read_sources({"rivers": {"name": "HydroRIVERS"}}, {"zones": "z.geojson"})
    Traceback (most recent call last):
    ...
    gapmap.errors.InputError: sources.rivers: names a layer this run does not have (it has zones) — remove [sources.rivers] or add the layer under [layers]
    """
    table = dict(table or {})
    for layer in table:
        if layer not in layer_paths:
            raise InputError(origin, f"sources.{layer}",
                             f"names a layer this run does not have (it has "
                             f"{', '.join(layer_paths) or 'no layers'})",
                             f"remove [sources.{layer}] or add the layer under [layers]")
    out = []
    for layer, path in layer_paths.items():
        fields: dict[str, str] = {}
        if path is not None:
            fields.update(_read_sidecar(Path(path)))
        if layer in table:
            fields.update(_fields(table[layer], origin, f"sources.{layer}."))
        if not fields:
            continue
        if not fields.get("name"):
            where = f"sources.{layer}.name" if layer in table else "name"
            raise InputError(origin if layer in table else sidecar_path(path), where,
                             "a source needs a name",
                             'add name = "..." (who made the data, e.g. "UCDP GED")')
        out.append(Source(layer=layer, **fields))
    return tuple(out)


def attribution(sources: Iterable[Source]) -> str:
    """One line of credits, each distinct credit once, joined by " · ".

    Examples
    --------
    >>> attribution([Source("zones", "OCHA COD-AB", "CC BY-IGO 3.0"),
    ...              Source("study_area", "OCHA COD-AB", "CC BY-IGO 3.0"),
    ...              Source("incidents", "UCDP GED", "CC BY 4.0")])
    'OCHA COD-AB (CC BY-IGO 3.0) · UCDP GED (CC BY 4.0)'
    >>> attribution([])
    ''
    """
    seen: list[str] = []
    for s in sources:
        c = s.credit()
        if c and c not in seen:
            seen.append(c)
    return " · ".join(seen)


def modelled_terrain(sources: Iterable[Source]) -> str:
    """The DEM source's note when it says the terrain is (partly) modelled, else ``""`` —
    the figure and the report repeat it next to any map drawn over that terrain.

    >>> modelled_terrain([Source("dem", "Synthetic", note="terrain below 1 km is modelled")])
    'terrain below 1 km is modelled'
    >>> modelled_terrain([Source("dem", "SRTM", "public domain")])
    ''
    """
    for s in sources:
        if s.layer == "dem" and ("modelled" in s.note.lower() or "synthetic" in s.note.lower()):
            return s.note
    return ""
