#!/usr/bin/env python
"""Build gapmap's sample scenario (``geodata/``) from the source data in ``geodata/sources``.

The sample is a scenario of Iraq's disputed territories between the Kurdistan Region and
federal Iraq. Boundaries, towns, conflict events and the coarse relief are real open data; the
force layout (zones and posts) is ILLUSTRATIVE, the road links are schematic and the 90 m
terrain is synthetic (real ETOPO5 relief plus modelled ridgelines). Every output says so.

The build is deterministic: fixed seeds, sorted rows, coordinates rounded to 6 decimals, so two
runs give byte-identical files.

Usage
-----
    python scripts/build_geodata.py                      # reads geodata/sources
    python scripts/build_geodata.py --src DIR --out DIR  # other source / output folders
    python scripts/build_geodata.py --no-dem             # vector and table layers only

Example
-------
>>> build(Path("geodata/sources"), Path("geodata"), dem=False)  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.ops
from pyproj import Transformer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from gapmap.io import atomic_path  # noqa: E402

log = logging.getLogger("build_geodata")

DEFAULT_SRC = Path(__file__).resolve().parents[1] / "geodata" / "sources"
METRIC = "EPSG:32638"  # UTM 38N: the belt lies within 41–46° E, close enough to 45° E
WGS84 = "EPSG:4326"
SEED = 20170916  # fixed seed of the terrain's fine detail

NOTE = ("ILLUSTRATIVE force layout for demonstrating gapmap; not an assessment of where any "
        "force is actually deployed.")
NOTE_ROADS = ("Schematic straight/polyline links between real towns (GeoNames); no open road "
              "data was available, so these are not surveyed road alignments.")
NOTE_PLACES = "Contains data from GeoNames (geonames.org), CC BY 4.0."
NOTE_STUDY = ("Administrative boundaries: Iraq Central Statistics Office / OCHA Iraq (COD-AB, "
              "2019), CC BY-IGO 3.0, via the Humanitarian Data Exchange. The selection of districts "
              "as a study area is illustrative.")
NOTE_UCDP = ("UCDP Georeferenced Event Dataset (Sundberg & Melander 2013), CC BY 4.0; "
             "clipped to the belt's bounding box.")

# --- districts --------------------------------------------------------------------------------
# The disputed districts (Article 140 territories as usually drawn) plus the neighbours that hold
# the federal towns facing them (Mosul/Qayyarah, Shirqat, Baiji).
STUDY_DISTRICTS = {
    "IQG15Q07": "Sinjar", "IQG15Q08": "Telafar", "IQG15Q09": "Tilkaef",
    "IQG15Q03": "Al-Hamdaniya", "IQG15Q06": "Al-Shikhan", "IQG15Q01": "Aqra",
    "IQG11Q04": "Makhmour", "IQG13Q04": "Kirkuk", "IQG13Q02": "Daquq",
    "IQG13Q01": "Al-Hawiga", "IQG13Q03": "Dibis", "IQG16Q07": "Tooz Khurmato",
    "IQG10Q05": "Khanaqin", "IQG10Q06": "Kifri",
    # neighbours
    "IQG15Q05": "Al-Mosul", "IQG16Q02": "Al-Shirqat", "IQG16Q03": "Beygee",
}
KRG_ADM1 = {"IQG09": "Duhok", "IQG11": "Erbil", "IQG06": "Al-Sulaymaniyah"}
# Makhmour (IQG11Q04) belongs to Erbil governorate in the CSO boundaries but is a disputed
# district held by federal forces since October 2017, so it is left out of the Peshmerga zone.
KRG_EXCLUDE_ADM2 = {"IQG11Q04"}
# Federal rear: these governorates' districts outside the study area, north of REAR_SOUTH_LAT.
REAR_ADM1 = {"IQG15": "Ninewa", "IQG16": "Salah Al-Din", "IQG10": "Diyala", "IQG13": "Kirkuk",
             "IQG01": "Al-Anbar", "IQG08": "Baghdad"}
# Inside the study area the federal side holds only its towns and road corridors.
REAR_SOUTH_LAT = 33.0


@dataclass(frozen=True)
class Town:
    """A federal-held town: GeoNames id (or an ADM3 PCODE when GeoNames lacks it)."""

    key: str
    geonameid: int | None
    force: str
    radius_km: float | None = None  # None: from population
    adm3_pcode: str | None = None


TOWNS = [
    Town("Sinjar", 448149, "pmf"),
    Town("Tal Afar", 90393, "pmf", 4.0),
    Town("Mosul", 99072, "isf", 12.0),
    Town("Qaraqosh", 92430, "pmf", 3.0),  # Al-Hamdaniya (Bakhdida)
    Town("Tel Keppe", 90353, "isf", 2.5),
    Town("Qayyarah", 99003, "isf", 3.0),
    Town("Shirqat", 91057, "isf"),
    Town("Makhmour", 93818, "isf", 3.0),
    Town("Hawija", 390188, "isf", 3.5),
    Town("Dibis", 97001, "isf", 2.5),
    Town("Kirkuk", 94787, "isf", 10.0),
    Town("Taza Khurmatu", 90199, "pmf", 2.5),
    Town("Daquq", 90220, "isf", 3.0),
    Town("Tuz Khurmatu", 90026, "pmf"),
    Town("Baiji", 97783, "isf"),
    Town("Al-Alam", 6871926, "pmf", 2.5),
    Town("Tikrit", 90150, "isf", 5.0),
    Town("Samarra", 91597, "isf"),
    Town("Kifri", 94298, "isf", 3.0),
    Town("Jalawla", None, "pmf", 3.5, adm3_pcode="IQG10Q05N04"),
    Town("Khanaqin", 94591, "isf"),
    Town("Al-Muqdadiyah", 99062, "isf"),
    Town("Mandali", 93709, "pmf", 3.0),
    Town("Baladruz", 98109, "isf", 2.5),
    Town("Baqubah", 97990, "isf"),
    Town("Al-Baaj", 99524, "isf", 2.5),
]

# Federal road links between the towns above (schematic, straight or via the listed towns).
LINKS = [
    ("Sinjar", "Tal Afar"), ("Tal Afar", "Mosul"), ("Mosul", "Tel Keppe"), ("Mosul", "Qaraqosh"),
    ("Mosul", "Qayyarah"), ("Qayyarah", "Shirqat"), ("Shirqat", "Baiji"), ("Baiji", "Tikrit"),
    ("Tikrit", "Samarra"), ("Qayyarah", "Makhmour"), ("Baiji", "Hawija"), ("Hawija", "Kirkuk"),
    ("Kirkuk", "Dibis"), ("Kirkuk", "Taza Khurmatu"), ("Taza Khurmatu", "Daquq"),
    ("Daquq", "Tuz Khurmatu"), ("Tuz Khurmatu", "Al-Alam"), ("Al-Alam", "Tikrit"),
    ("Tuz Khurmatu", "Kifri"), ("Kifri", "Jalawla"), ("Jalawla", "Khanaqin"),
    ("Jalawla", "Al-Muqdadiyah"), ("Al-Muqdadiyah", "Baqubah"), ("Khanaqin", "Mandali"),
    ("Mandali", "Baladruz"), ("Baladruz", "Baqubah"), ("Sinjar", "Al-Baaj"),
]
ROAD_BUFFER_KM = 1.5     # half-width of the federal road corridors
POST_SPACING_KM = 20.0   # checkpoint spacing along roads and the KRG line
KRG_POST_INSET_KM = 2.0  # KRG posts sit this far inside the KRG boundary
SIMPLIFY_M = 150.0       # boundary simplification tolerance
BELT_MARGIN_DEG = 0.5    # incidents: study-area bbox ± this margin

# --- terrain ----------------------------------------------------------------------------------
DEM_RES_M = 90.0
DEM_MARGIN_KM = 20.0
DEM_NODATA = -32768
FRACTAL_STD_M = 15.0     # std of the fine detail
FRACTAL_BETA = 4.4       # power-spectrum slope: > 4 keeps slopes smooth (and compressible)


@dataclass(frozen=True)
class Ridge:
    """An anticline ridge: crest polyline (lon, lat), relief above the plain, half-width."""

    name: str
    crest: tuple[tuple[float, float], ...]
    relief_m: float
    half_width_km: float


RIDGES = [
    # Jebel Sinjar: ~100 km WNW–ESE, crest up to ~1,460 m above sea level north of Sinjar town
    Ridge("Jebel Sinjar", ((41.38, 36.44), (41.62, 36.41), (41.88, 36.38), (42.10, 36.33),
                           (42.28, 36.27)), 950.0, 4.5),
    # Jebel Makhul: west of the Tigris, from south of Shirqat to the Fatha gorge near Baiji
    Ridge("Jebel Makhul", ((43.22, 35.38), (43.36, 35.24), (43.52, 35.09)), 330.0, 3.0),
    # Jebel Hamrin: from the Fatha gorge SE past Tuz and Lake Hamrin to near Jalawla/Khanaqin
    Ridge("Jebel Hamrin", ((43.57, 35.04), (43.85, 34.92), (44.18, 34.78), (44.48, 34.64),
                           (44.75, 34.46), (44.98, 34.30), (45.18, 34.13), (45.42, 33.93)),
          380.0, 3.5),
    # Qara Chauq (Qarachogh): NNW–SSE ridge east of Makhmour
    Ridge("Qara Chauq", ((43.52, 36.04), (43.63, 35.86), (43.76, 35.66), (43.88, 35.50)),
          480.0, 3.5),
    # Kirkuk and Bai Hassan anticlines NW of Kirkuk
    Ridge("Kirkuk anticline", ((44.08, 35.72), (44.30, 35.55), (44.55, 35.35)), 150.0, 2.5),
    Ridge("Bai Hassan anticline", ((43.78, 35.94), (43.96, 35.82), (44.14, 35.70)), 170.0, 2.5),
    # Zagros foothill folds NE of the line
    Ridge("Bekhair", ((42.62, 36.93), (42.90, 36.89), (43.18, 36.84)), 550.0, 4.0),
    Ridge("Maqlub", ((43.22, 36.60), (43.40, 36.52), (43.55, 36.45)), 450.0, 3.5),
    Ridge("Pirmam (Salahaddin)", ((44.02, 36.50), (44.22, 36.38), (44.42, 36.26)), 600.0, 4.5),
    Ridge("Bawa Shaswar", ((44.35, 36.00), (44.58, 35.84), (44.82, 35.66)), 450.0, 4.0),
    Ridge("Sagirma", ((44.68, 35.74), (44.92, 35.54), (45.15, 35.34)), 550.0, 4.5),
    Ridge("Qara Dagh", ((45.10, 35.48), (45.32, 35.28), (45.55, 35.08)), 700.0, 5.0),
    Ridge("Baranand", ((45.30, 35.66), (45.52, 35.48), (45.72, 35.30)), 650.0, 4.5),
]


# --- helpers ----------------------------------------------------------------------------------

def _write_geojson(gdf: gpd.GeoDataFrame, path: Path) -> None:
    """GeoJSON, EPSG:4326, 6 decimals, rows already sorted."""
    gdf = gdf.to_crs(WGS84)
    geoms = shapely.set_precision(gdf.geometry.values, 1e-6)  # exact 6-decimal vertices
    gdf = gdf.set_geometry(gpd.GeoSeries(geoms, index=gdf.index, crs=WGS84))
    with atomic_path(path) as tmp:
        tmp.unlink(missing_ok=True)
        gdf.to_file(tmp, driver="GeoJSON", engine="pyogrio", layer=path.stem,
                    COORDINATE_PRECISION=6)


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, lineterminator="\n")


def _interp_points(line: shapely.LineString, spacing_m: float) -> np.ndarray:
    """Points every ``spacing_m`` along ``line``, centred so both ends get half a spacing."""
    n = max(1, int(round(line.length / spacing_m)))
    d = (np.arange(n) + 0.5) * line.length / n
    return shapely.line_interpolate_point(line, d)


def _vary(i: np.ndarray, lo: float, hi: float, step: float, mult: int) -> np.ndarray:
    """Deterministic spread of values lo…hi (in ``step``) from integer ids."""
    k = int(round((hi - lo) / step)) + 1
    return lo + ((i * mult) % k) * step


# --- layers -----------------------------------------------------------------------------------

def read_sources(src: Path) -> dict:
    """Read the COD-AB boundaries (ADM0–3) and the GeoNames places from ``src``."""
    b = src / "boundaries"
    adm0 = gpd.read_file(b / "irq_admbnda_adm0_cso_itos_20190603.geojson").set_crs(WGS84, allow_override=True)
    adm1 = gpd.read_file(b / "irq_admbnda_adm1_cso_20190603.geojson").set_crs(WGS84, allow_override=True)
    adm2 = gpd.read_file(b / "irq_admbnda_adm2_cso_20190603.geojson").set_crs(WGS84, allow_override=True)
    adm3 = gpd.read_file(b / "irq_admbnda_adm3_cso_20190603.geojson").set_crs(WGS84, allow_override=True)
    places = pd.read_csv(src / "places" / "geonames_iraq_cities500.csv",
                         dtype={"admin1code": str})
    return {"adm0": adm0, "adm1": adm1, "adm2": adm2, "adm3": adm3, "places": places}


def build_study_area(adm2: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The STUDY_DISTRICTS, one feature each, simplified, in the metric CRS."""
    missing = set(STUDY_DISTRICTS) - set(adm2["ADM2_PCODE"])
    if missing:
        raise SystemExit(f"ADM2 districts not found: {sorted(missing)}")
    sa = adm2.loc[adm2["ADM2_PCODE"].isin(STUDY_DISTRICTS),
                  ["ADM2_EN", "ADM2_PCODE", "ADM1_EN", "ADM1_PCODE", "geometry"]].copy()
    sa = sa.to_crs(METRIC)
    sa["geometry"] = sa.geometry.simplify(SIMPLIFY_M)
    sa["note"] = NOTE_STUDY
    return sa.sort_values("ADM2_PCODE").reset_index(drop=True)


def build_towns(sources: dict) -> gpd.GeoDataFrame:
    """The TOWNS as points (GeoNames, or an ADM3 centroid where GeoNames lacks the town)."""
    places = sources["places"].set_index("geonameid")
    adm3 = sources["adm3"]
    rows = []
    for t in TOWNS:
        if t.geonameid is not None:
            p = places.loc[t.geonameid]
            rows.append({"name": t.key, "geonames_name": p["name"], "geonameid": int(t.geonameid),
                         "population": int(p["population"]), "lon": float(p["longitude"]),
                         "lat": float(p["latitude"]), "location_source": "GeoNames"})
        else:
            poly = adm3.loc[adm3["ADM3_PCODE"] == t.adm3_pcode]
            # Jalawla is absent from the GeoNames cities500 extract: use the centroid of its ADM3
            # sub-district polygon (computed in the metric CRS), and say so in the layer.
            c = poly.to_crs(METRIC).geometry.centroid.to_crs(WGS84).iloc[0]
            rows.append({"name": t.key, "geonames_name": None, "geonameid": None,
                         "population": None, "lon": c.x, "lat": c.y,
                         "location_source": f"centroid of COD-AB ADM3 polygon {t.adm3_pcode} "
                                            f"({poly['ADM3_EN'].iloc[0]}); not a town location"})
    df = pd.DataFrame(rows)
    df["lon"], df["lat"] = df["lon"].round(6), df["lat"].round(6)
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df.lon, df.lat), crs=WGS84)


def town_radius_km(t: Town, population: float | None) -> float:
    """Radius held around a town: given, or 2 km + 2 km per decade of population above 10,000
    (GeoNames population 0 = unknown, read as 20,000), at most 6 km, in 0.5 km steps."""
    if t.radius_km is not None:
        return t.radius_km
    pop = 20_000.0 if population is None or not population or pd.isna(population) else population
    r = float(np.clip(2.0 + 2.0 * np.log10(max(pop, 10_000.0) / 10_000.0), 2.0, 6.0))
    return round(r * 2) / 2  # half-kilometre steps


def build_krg(adm1: gpd.GeoDataFrame, adm2: gpd.GeoDataFrame) -> shapely.Geometry:
    """The Peshmerga zone: the KRG governorates dissolved, without KRG_EXCLUDE_ADM2."""
    krg1 = adm1.loc[adm1["ADM1_PCODE"].isin(KRG_ADM1)].to_crs(METRIC)
    drop = adm2.loc[adm2["ADM2_PCODE"].isin(KRG_EXCLUDE_ADM2)].to_crs(METRIC)
    krg = shapely.union_all(krg1.geometry.values)
    krg = krg.difference(shapely.union_all(drop.geometry.values))
    # drop the slivers the district cut leaves along the shared boundary
    krg = krg.buffer(-50).buffer(50)
    krg = shapely.simplify(krg, SIMPLIFY_M)
    parts = [p for p in shapely.get_parts(krg) if p.area > 1e6]
    return shapely.MultiPolygon(parts) if len(parts) > 1 else parts[0]


def build_roads(towns: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Schematic straight links between the towns of LINKS."""
    pts = towns.set_index("name").geometry
    centroid = {t.key for t in TOWNS if t.geonameid is None}
    rows = [{"from": a, "to": b, "kind": "schematic",
             "note": NOTE_ROADS + ("".join(f" {k} is placed at its ADM3 sub-district centroid "
                                           "(not in GeoNames)." for k in (a, b) if k in centroid)),
             "geometry": shapely.LineString([pts[a], pts[b]])} for a, b in LINKS]
    return gpd.GeoDataFrame(rows, crs=WGS84).sort_values(["from", "to"]).reset_index(drop=True)


def build_zones(sources: dict, study: gpd.GeoDataFrame, towns: gpd.GeoDataFrame,
                roads: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, shapely.Geometry]:
    """Peshmerga zone, federal towns, road corridors and federal rear (illustrative layout)."""
    adm1, adm2 = sources["adm1"], sources["adm2"]
    krg = build_krg(adm1, adm2)
    study_u = shapely.union_all(study.geometry.values)

    # federal rear: districts of REAR_ADM1 outside the study area, north of REAR_SOUTH_LAT
    rear_d = adm2.loc[adm2["ADM1_PCODE"].isin(REAR_ADM1) & ~adm2["ADM2_PCODE"].isin(STUDY_DISTRICTS)]
    rear = shapely.union_all(rear_d.to_crs(METRIC).geometry.values)
    south = gpd.GeoSeries([shapely.box(38.0, REAR_SOUTH_LAT, 49.0, 38.0)], crs=WGS84)
    south = shapely.segmentize(south.iloc[0], 0.05)
    south = gpd.GeoSeries([south], crs=WGS84).to_crs(METRIC).iloc[0]
    rear = rear.intersection(south).difference(study_u)
    rear = shapely.simplify(rear.buffer(-50).buffer(50), 500.0)

    tm = towns.to_crs(METRIC)
    rows = []
    for t, (_, r) in zip(TOWNS, tm.iterrows()):
        rad = town_radius_km(t, r["population"])
        where = "; point = ADM3 centroid, not in GeoNames" if t.geonameid is None else ""
        rows.append({"force": t.force, "name": f"{t.key} (town, {rad:g} km{where})",
                     "geometry": r.geometry.buffer(rad * 1e3, quad_segs=16)})
    rm = roads.to_crs(METRIC)
    force_of = {t.key: t.force for t in TOWNS}
    for _, r in rm.iterrows():
        # a corridor between two towns of one force is theirs; mixed links are ISF-held
        f = force_of[r["from"]] if force_of[r["from"]] == force_of[r["to"]] else "isf"
        rows.append({"force": f, "name": f"{r['from']}–{r['to']} road corridor",
                     "geometry": r.geometry.buffer(ROAD_BUFFER_KM * 1e3, quad_segs=8)})
    rows.append({"force": "isf", "name": "Federal Iraq south of the belt", "geometry": rear})
    fed = gpd.GeoDataFrame(rows, crs=METRIC)
    # buffers carry many vertices; 20 m is far below any distance the analysis resolves
    fed["geometry"] = shapely.simplify(fed.geometry.values, 20.0)
    # federal zones never overlap the Peshmerga zone (subtracted last, after simplifying)
    fed["geometry"] = fed.geometry.difference(krg)
    fed = fed.loc[~fed.geometry.is_empty & (fed.geometry.area > 1e4)]
    krg_row = gpd.GeoDataFrame([{"force": "peshmerga", "name": "Kurdistan Region (Duhok, Erbil, "
                                 "Sulaymaniyah incl. Halabja district; without Makhmour district)",
                                 "geometry": krg}], crs=METRIC)
    zones = pd.concat([krg_row, fed], ignore_index=True)
    zones = gpd.GeoDataFrame(zones, geometry="geometry", crs=METRIC)
    zones["geometry"] = shapely.make_valid(zones.geometry.values)
    zones["note"] = NOTE
    order = {"peshmerga": 0, "isf": 1, "pmf": 2}
    zones = zones.assign(_o=zones["force"].map(order)).sort_values(["_o", "name"]).drop(columns="_o")
    return zones[["force", "name", "note", "geometry"]].reset_index(drop=True), krg


def build_posts(krg: shapely.Geometry, study: gpd.GeoDataFrame, roads: gpd.GeoDataFrame,
                towns: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Checkpoints along the federal road links and just inside the KRG line facing the belt."""
    force_of = {t.key: t.force for t in TOWNS}
    rad_of = {t.key: town_radius_km(t, p) for t, p in zip(TOWNS, towns["population"])}
    rows = []
    rm = roads.to_crs(METRIC)
    for _, r in rm.iterrows():
        line = r.geometry
        # checkpoints on the open stretch of road, outside the two towns
        a, b = rad_of[r["from"]] * 1e3, rad_of[r["to"]] * 1e3
        if line.length - a - b < 5e3:
            continue
        seg = shapely.ops.substring(line, a, line.length - b)
        f = force_of[r["from"]] if force_of[r["from"]] == force_of[r["to"]] else "isf"
        for i, p in enumerate(_interp_points(seg, POST_SPACING_KM * 1e3)):
            rows.append({"name": f"{r['from']}–{r['to']} CP{i + 1}", "force": f, "geometry": p})
    # KRG line facing the belt: the KRG boundary, inset, where it faces the study area
    inner = krg.buffer(-KRG_POST_INSET_KM * 1e3)
    study_u = shapely.union_all(study.geometry.values)
    facing = shapely.intersection(inner.boundary, study_u.buffer(KRG_POST_INSET_KM * 1e3 + 3e3))
    facing = shapely.line_merge(facing)
    lines = sorted((g for g in shapely.get_parts(facing) if g.length > 8e3),
                   key=lambda g: (round(g.centroid.y, -2), round(g.centroid.x, -2)))
    for j, line in enumerate(lines):
        for i, p in enumerate(_interp_points(line, POST_SPACING_KM * 1e3)):
            rows.append({"name": f"KRG line {j + 1} CP{i + 1}", "force": "peshmerga", "geometry": p})
    posts = gpd.GeoDataFrame(rows, crs=METRIC).to_crs(WGS84)
    posts["geometry"] = shapely.set_precision(posts.geometry.values, 1e-6)
    posts = posts.sort_values(["force", "name"]).reset_index(drop=True)
    i = np.arange(len(posts))
    posts["kind"] = "checkpoint"
    posts["range_km"] = _vary(i, 3.0, 8.0, 0.5, 7).round(1)
    posts["height_m"] = _vary(i, 5.0, 20.0, 1.0, 11).round(0)
    posts["note"] = NOTE
    return posts[["name", "force", "kind", "range_km", "height_m", "note", "geometry"]]


def belt_bbox(study: gpd.GeoDataFrame) -> tuple[float, float, float, float]:
    """The study area's lon/lat bounding box plus BELT_MARGIN_DEG on every side."""
    w, s, e, n = study.to_crs(WGS84).total_bounds
    m = BELT_MARGIN_DEG
    return (round(w - m, 3), round(s - m, 3), round(e + m, 3), round(n + m, 3))


def clip_events(path: Path, bbox: tuple[float, float, float, float], sort: list[str]) -> pd.DataFrame:
    """Rows of a GED CSV inside ``bbox``, every value kept as text exactly as it comes."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)  # keep every value as it comes
    lon, lat = pd.to_numeric(df["longitude"]), pd.to_numeric(df["latitude"])
    w, s, e, n = bbox
    keep = (lon >= w) & (lon <= e) & (lat >= s) & (lat <= n)
    out = df.loc[keep]
    key = [pd.to_numeric(out[c]) if c in ("id", "year") else out[c] for c in sort]
    order = np.lexsort([np.asarray(k) for k in key[::-1]])
    return out.iloc[order].reset_index(drop=True)


# --- terrain ----------------------------------------------------------------------------------

def _dem_grid(study: gpd.GeoDataFrame) -> tuple[float, float, int, int]:
    """Origin (west, north) and size of the 90 m grid: study-area box plus DEM_MARGIN_KM."""
    x0, y0, x1, y1 = study.to_crs(METRIC).total_bounds
    m = DEM_MARGIN_KM * 1e3
    x0 = np.floor((x0 - m) / 1e3) * 1e3
    y1 = np.ceil((y1 + m) / 1e3) * 1e3
    w = int(np.ceil((x1 + m - x0) / DEM_RES_M))
    h = int(np.ceil((y1 - (y0 - m)) / DEM_RES_M))
    return x0, y1, w, h


def _base_relief(src: Path, x0: float, y1: float, w: int, h: int) -> np.ndarray:
    """ETOPO5 resampled onto the 90 m grid by cubic spline (GDAL warp)."""
    import rasterio
    from affine import Affine
    from rasterio.warp import Resampling, reproject

    out = np.zeros((h, w), "f4")
    with rasterio.open(src / "dem" / "etopo5_iraq_region.tif") as ds:
        reproject(ds.read(1).astype("f4"), out, src_transform=ds.transform, src_crs=ds.crs,
                  dst_transform=Affine(DEM_RES_M, 0.0, x0, 0.0, -DEM_RES_M, y1), dst_crs=METRIC,
                  resampling=Resampling.cubic_spline, num_threads=1)
    return out


def _ridges(x0: float, y1: float, w: int, h: int) -> np.ndarray:
    """Anticline relief: a smooth dome profile around each crest, tapering towards its ends."""
    from scipy.ndimage import distance_transform_edt

    tr = Transformer.from_crs(WGS84, METRIC, always_xy=True)
    crest_h = np.zeros((h, w), "f4")
    crest_w = np.zeros((h, w), "f4")
    mask = np.ones((h, w), bool)
    for k, rg in enumerate(RIDGES):
        xs, ys = tr.transform(*np.array(rg.crest).T)
        line = shapely.LineString(np.c_[xs, ys])
        d = np.arange(0.0, line.length, DEM_RES_M / 2)
        pts = shapely.get_coordinates(shapely.line_interpolate_point(line, d))
        t = d / line.length
        # along-crest relief: tapered ends, and gentle saddles so crests are not flat
        taper = np.sin(np.pi * np.clip(t, 0, 1)) ** 0.5
        wav = 0.88 + 0.12 * np.cos(2 * np.pi * t * (1.5 + 0.5 * (k % 3)) + k)
        c = ((pts[:, 0] - x0) / DEM_RES_M).astype(int)
        r = ((y1 - pts[:, 1]) / DEM_RES_M).astype(int)
        ok = (c >= 0) & (c < w) & (r >= 0) & (r < h)
        crest_h[r[ok], c[ok]] = np.maximum(crest_h[r[ok], c[ok]], (rg.relief_m * taper * wav)[ok])
        crest_w[r[ok], c[ok]] = rg.half_width_km * 1e3 * (0.6 + 0.4 * taper[ok])
        mask[r[ok], c[ok]] = False
    dist, (ir, ic) = distance_transform_edt(mask, sampling=DEM_RES_M, return_indices=True)
    del mask
    hw = crest_w[ir, ic]
    hh = crest_h[ir, ic]
    del ir, ic, crest_w, crest_h
    u = np.minimum(dist.astype("f4") / np.maximum(hw, 1.0), 3.0)
    # smooth flank profile, zero beyond 3 half-widths
    prof = np.where(u < 3.0, np.exp(-0.5 * (u * 1.2) ** 2) - np.exp(-0.5 * 3.6 ** 2), 0.0)
    return (hh * np.maximum(prof, 0) / (1 - np.exp(-0.5 * 3.6 ** 2))).astype("f4")


def _fractal(h: int, w: int, seed: int) -> np.ndarray:
    """Fractal fine detail: Gaussian noise with a 1/f^beta power spectrum, std FRACTAL_STD_M."""
    from scipy import fft

    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((h, w), dtype="f4")
    spec = fft.rfft2(noise, workers=1)
    del noise
    fy = fft.fftfreq(h).astype("f4")[:, None]
    fx = fft.rfftfreq(w).astype("f4")[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    # keep only fine and middle scales (wavelengths below ~10 km): the broad shape is ETOPO's
    filt = f ** (-FRACTAL_BETA / 2) * (1 - np.exp(-(f * 110.0) ** 2))
    filt[0, 0] = 0.0
    spec *= filt
    del f, filt
    out = fft.irfft2(spec, s=(h, w), workers=1).astype("f4")
    out *= FRACTAL_STD_M / out.std()
    return out


def build_dem(src: Path, study: gpd.GeoDataFrame, path: Path) -> dict:
    import rasterio
    from affine import Affine

    x0, y1, w, h = _dem_grid(study)
    z = _base_relief(src, x0, y1, w, h)
    z += _ridges(x0, y1, w, h)
    z += _fractal(h, w, SEED)
    dem = np.rint(z).astype("int16")
    del z
    desc = ("SYNTHETIC terrain for the gapmap sample: ETOPO5 5-arc-minute relief (NOAA, public "
            "domain) upsampled by cubic spline to 90 m, plus modelled anticline ridges (Jebel "
            "Sinjar, Makhul, Hamrin, Qara Chauq, Kirkuk/Bai Hassan, Zagros foothill folds) and "
            f"fractal detail (seed {SEED}). Not a survey DEM: replace with SRTM/Copernicus for "
            "real line-of-sight work.")
    profile = dict(driver="COG", width=w, height=h, count=1, dtype="int16", crs=METRIC,
                   transform=Affine(DEM_RES_M, 0.0, x0, 0.0, -DEM_RES_M, y1), nodata=DEM_NODATA,
                   compress="DEFLATE", predictor=2, level=6, blocksize=512,
                   overview_resampling="average", BIGTIFF="NO")
    with atomic_path(path) as tmp:
        tmp.unlink(missing_ok=True)
        with rasterio.open(tmp, "w", **profile) as ds:
            ds.write(dem, 1)
            ds.update_tags(TIFFTAG_IMAGEDESCRIPTION=desc, SYNTHETIC="yes",
                           SOURCE="ETOPO5 (NOAA NGDC, public domain) + modelled ridgelines",
                           NOTE="Synthetic terrain; see geodata/README.md")
            ds.set_band_description(1, "synthetic elevation (m)")
            ds.update_tags(1, UNITS="m")
    return {"width": w, "height": h, "min_m": int(dem.min()), "max_m": int(dem.max())}


# --- main -------------------------------------------------------------------------------------

def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


SCENARIO_TOML = """\
# gapmap sample scenario: Iraq's disputed territories (ILLUSTRATIVE force layout).
# Paths are relative to this file. See README.md for sources and licences.
[layers]
zones = "zones.geojson"
force_field = "force"
posts = "posts.geojson"
study_area = "study_area.geojson"
incidents = "incidents_ucdp_ged.csv"
dem = "dem_synthetic.tif"
roads = "roads.geojson"

[sides]
a = "krg=peshmerga"
b = "federal=isf,pmf"

[parameters]
reach_km = 2
max_width_km = 150
min_length_km = 1
"""


# Provenance of each layer, shown on every map, figure and report (gapmap.sources). Kept as its
# own block, appended after the scenario proper: it follows README.md "Sources, licences and
# attribution" and must change with it (a new layer needs its table here too).
SOURCES_TOML = """\

# --- sources: what each layer is, who made it, under which licence --------------------------
[sources.zones]
name = "OCHA COD-AB"
licence = "CC BY-IGO 3.0"
url = "https://data.humdata.org/dataset/cod-ab-irq"
date = "2019-06-03"
note = "ILLUSTRATIVE force layout on COD-AB boundaries and GeoNames towns; not an assessment of any deployment"

[sources.study_area]
name = "OCHA COD-AB"
licence = "CC BY-IGO 3.0"
url = "https://data.humdata.org/dataset/cod-ab-irq"
date = "2019-06-03"
note = "Iraq Central Statistics Office / OCHA Iraq, via the Humanitarian Data Exchange"

[sources.posts]
name = "Illustrative checkpoints"
note = "placed by rule along the schematic roads and the KRG line; ranges and heights not measured"

[sources.roads]
name = "GeoNames"
licence = "CC BY 4.0"
url = "https://www.geonames.org/"
note = "schematic straight links between GeoNames towns, not surveyed roads"

[sources.incidents]
name = "UCDP GED"
licence = "CC BY 4.0"
url = "https://ucdp.uu.se/downloads/"
date = "2003/2019"
note = "Uppsala Conflict Data Program; research subset, GED version not stated; year only"

[sources.dem]
name = "Synthetic terrain on NOAA ETOPO5"
licence = "public domain"
date = "1988"
note = "SYNTHETIC: 5-arc-minute relief plus modelled ridges and detail; terrain below 9 km is modelled"
"""


def build(src: Path, out: Path, *, dem: bool = True) -> dict:
    """Build every sample file into ``out``; return counts and figures for the README/report."""
    out.mkdir(parents=True, exist_ok=True)
    sources = read_sources(src)
    study = build_study_area(sources["adm2"])
    towns = build_towns(sources)
    roads = build_roads(towns)
    zones, krg = build_zones(sources, study, towns, roads)
    posts = build_posts(krg, study, roads, towns)

    _write_geojson(study, out / "study_area.geojson")
    _write_geojson(zones, out / "zones.geojson")
    _write_geojson(posts, out / "posts.geojson")
    _write_geojson(roads, out / "roads.geojson")
    places = towns.assign(note=NOTE_PLACES).sort_values("name").reset_index(drop=True)
    places["geonameid"] = places["geonameid"].astype("Int64")
    places["population"] = places["population"].astype("Int64")
    places = places[["name", "geonames_name", "geonameid", "population", "location_source",
                     "note", "geometry"]]
    _write_geojson(places, out / "places.geojson")

    bbox = belt_bbox(study)
    yearly = clip_events(src / "conflict" / "ucdp_ged_iraq_2003_2019_yearly.csv", bbox, ["year", "id"])
    dated = clip_events(src / "conflict" / "ucdp_ged_iraq_sample_dated_1991_2024.csv", bbox,
                        ["date", "id"])
    _write_csv(yearly, out / "incidents_ucdp_ged.csv")
    _write_csv(dated, out / "incidents_ucdp_ged_dated.csv")
    with atomic_path(out / "scenario.toml") as tmp:
        tmp.write_text(SCENARIO_TOML + SOURCES_TOML, encoding="utf-8", newline="\n")

    info = {"bbox": bbox, "zones": len(zones), "posts": len(posts), "roads": len(roads),
            "places": len(places), "districts": len(study), "events": len(yearly),
            "events_dated": len(dated),
            "zones_by_force": zones["force"].value_counts().sort_index().to_dict(),
            "posts_by_force": posts["force"].value_counts().sort_index().to_dict()}
    if dem:
        info["dem"] = build_dem(src, study, out / "dem_synthetic.tif")
    update_readme(out)
    return info


def update_readme(out: Path) -> None:
    """Refresh the size/checksum block of ``out/README.md`` (when there is one)."""
    readme = out / "README.md"
    if not readme.exists():
        return
    files = sorted(p for p in out.iterdir() if p.is_file() and p.name != "README.md"
                   and not p.name.startswith("."))
    total = sum(p.stat().st_size for p in files)
    lines = ["```"] + [f"{sha256(p)}  {p.name}  ({p.stat().st_size:,} B)" for p in files]
    lines += ["```", "", f"Total (without this README): {total:,} B ({total / 2**20:.1f} MiB)."]
    text = readme.read_text(encoding="utf-8")
    head, rest = text.split("<!-- sha256 -->", 1)
    _, tail = rest.split("<!-- /sha256 -->", 1)
    with atomic_path(readme) as tmp:
        tmp.write_text(head + "<!-- sha256 -->\n" + "\n".join(lines) + "\n<!-- /sha256 -->" + tail,
                       encoding="utf-8", newline="\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", type=Path, default=DEFAULT_SRC, help="reference data folder")
    ap.add_argument("--out", type=Path, default=ROOT / "geodata", help="output folder")
    ap.add_argument("--no-dem", action="store_true", help="skip the synthetic terrain")
    ap.add_argument("--sha256", action="store_true", help="print sha256 of every output file")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("pyogrio").setLevel(logging.WARNING)
    info = build(args.src, args.out, dem=not args.no_dem)
    log.info(json.dumps(info, indent=1, default=str))
    if args.sha256:
        for p in sorted(args.out.iterdir()):
            if p.is_file() and p.name != "README.md":
                print(f"{sha256(p)}  {p.name}  ({p.stat().st_size:,} B)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
