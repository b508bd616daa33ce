#!/usr/bin/env python
"""Build gapmap's sample scenario (``geodata/``) from the source data in ``geodata/sources``.

The sample is a scenario of Iraq's disputed territories between the Kurdistan Region and
federal Iraq. Boundaries, towns, conflict events, rivers and lakes and the 1 km relief are real
open data; the force layouts (zones and posts, before and after October 2017) are ILLUSTRATIVE,
grounded in the mid-2017 control points; the road links are schematic; the 90 m terrain follows
NOAA GLOBE at 1 km and its detail below 1 km is modelled. Every output says so.

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
        "force is actually deployed. Grounded in the mid-2017 control points of Wikipedia's "
        "'Module:Iraqi insurgency detailed map' (CC BY-SA 3.0).")
NOTE_ROADS = ("Schematic polyline links between real towns (GeoNames), through waypoints taken "
              "from the 2017 control points, following the known corridors; no open road data "
              "was available, so these are not surveyed road alignments.")
NOTE_WATER = ("Rivers and lakes: GSHHG (Wessel & Smith), WDBII full resolution, "
              "LGPL-3.0-or-later. crossing_hours is an assumption of gapmap's sample, not a "
              "measurement.")
NOTE_CONTROL = ("Grounded in the control points of Wikipedia's 'Module:Iraqi insurgency detailed "
                "map' (mid-2017), CC BY-SA 3.0.")
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
    Town("Baghdad", 98182, "isf", 12.0),
    # Kurdistan Region towns at the ends of the corridors into the belt (inside its zone)
    Town("Erbil", 95446, "peshmerga", 8.0),
    Town("Sulaymaniyah", 98463, "peshmerga", 6.0),
    Town("Chamchamal", 97417, "peshmerga", 3.0),
    Town("Kalar", 95005, "peshmerga", 4.0),
]

# Road links between the towns above (schematic): (from, to, waypoints, corridor). Waypoints
# are labels of the 2017 control points (control/wikipedia_iraq_control_points_2017.csv); the
# corridor names the known route a link belongs to.
LINKS = [
    ("Sinjar", "Tal Afar", (), ""), ("Tal Afar", "Mosul", (), ""),
    ("Mosul", "Tel Keppe", (), ""), ("Mosul", "Qaraqosh", (), ""),
    ("Mosul", "Qayyarah", (), "Mosul–Baghdad (Tigris)"),
    ("Qayyarah", "Shirqat", (), "Mosul–Baghdad (Tigris)"),
    ("Shirqat", "Baiji", (), "Mosul–Baghdad (Tigris)"),
    ("Baiji", "Tikrit", (), "Mosul–Baghdad (Tigris)"),
    ("Tikrit", "Samarra", (), "Mosul–Baghdad (Tigris)"),
    ("Qayyarah", "Makhmour", (), ""), ("Baiji", "Hawija", (), ""), ("Hawija", "Kirkuk", (), ""),
    ("Kirkuk", "Dibis", (), ""),
    ("Kirkuk", "Taza Khurmatu", (), "Kirkuk–Baghdad"),
    ("Taza Khurmatu", "Daquq", (), "Kirkuk–Baghdad"),
    ("Daquq", "Tuz Khurmatu", (), "Kirkuk–Baghdad"),
    # south of Tuz the road runs past Sulaiman Bek and through the Anjanah (Anjata) stretch
    # across Jebel Hamrin, then down the Adhaim valley to Khalis and Baqubah
    ("Tuz Khurmatu", "Baqubah", ("Sulaiman Bek", "Anjanah", "Adhaim Dam"), "Kirkuk–Baghdad"),
    ("Baqubah", "Baghdad", (), "Kirkuk–Baghdad"),
    ("Tikrit", "Kirkuk", ("Riyadh",), "Tikrit–Kirkuk"),
    ("Tuz Khurmatu", "Al-Alam", (), ""), ("Al-Alam", "Tikrit", (), ""),
    ("Tuz Khurmatu", "Kifri", (), ""), ("Kifri", "Jalawla", (), ""),
    ("Jalawla", "Khanaqin", (), ""), ("Jalawla", "Al-Muqdadiyah", (), ""),
    ("Al-Muqdadiyah", "Baqubah", (), ""), ("Khanaqin", "Mandali", (), ""),
    ("Mandali", "Baladruz", (), ""), ("Baladruz", "Baqubah", (), ""), ("Sinjar", "Al-Baaj", (), ""),
    # corridors between the Kurdistan Region and the belt
    ("Mosul", "Erbil", ("Bartella", "Kalak"), "Mosul–Erbil"),
    ("Erbil", "Kirkuk", ("Altun Kupri",), "Erbil–Kirkuk"),
    ("Erbil", "Makhmour", (), "Erbil–Makhmour"),
    ("Kirkuk", "Chamchamal", (), "Kirkuk–Sulaymaniyah"),
    ("Chamchamal", "Sulaymaniyah", (), "Kirkuk–Sulaymaniyah"),
    ("Kalar", "Khanaqin", (), "Kalar–Khanaqin"),
]
ROAD_BUFFER_KM = 1.5     # half-width of the federal road corridors
POST_SPACING_KM = 15.0   # checkpoint spacing along roads and the front lines
KRG_POST_INSET_KM = 2.0  # front-line posts sit this far inside their side's zone
ENTRY_KM = 0.5           # town-entry checkpoints: this far outside the town's radius
FRONT_KM = 30.0          # a zone edge within this of the other side's zones is a front line
RIDGE_POST_KM = 12.0     # posts along the ridge crests
POINT_RADIUS_KM = 3.0    # ground held around each control point of a side
CLOSE_KM = 4.0           # closing radius joining the ground around neighbouring points
# The two dated layouts; the Peshmerga withdrawals and the federal advance came on 16 Oct 2017.
BEFORE, AFTER = "2017-06-30", "2017-10-31"
WITHDRAWN_TO, ADVANCED_FROM = "2017-10-15", "2017-10-16"
# The daily patrol of the Anjata stretch of the Kirkuk–Baghdad road (illustrative): from the
# federal advance until its withdrawal, three stops along the Anjanah–Adhaim dam leg, seen as
# posts of 4 km range at 3 m (a vehicle's roof).
PATROL_WITHDRAWN = "2017-10-25"
PATROL_STOPS = (1 / 6, 1 / 2, 5 / 6)
PATROL_RANGE_KM, PATROL_HEIGHT_M = 4.0, 3.0
SIMPLIFY_M = 150.0       # boundary simplification tolerance
BELT_MARGIN_DEG = 0.5    # incidents: study-area bbox ± this margin

# --- terrain ----------------------------------------------------------------------------------
DEM_RES_M = 90.0
DEM_MARGIN_KM = 20.0
DEM_NODATA = -32768
BLEND_KM = 10.0          # GLOBE → ETOPO5 blend at GLOBE's western edge
SHARPEN_SIGMA_KM = 1.5   # scale of the curvature that is sharpened
SHARPEN_GAIN = 1.0       # how much of it is added back
SHARPEN_MAX_M = 60.0     # bound on the sharpening
FRACTAL_STD_M = 4.0      # std of the fractal detail (8 m would add 8 MB to the file)
FRACTAL_MAX_M = 15.0     # bound on it
FRACTAL_MAX_WAVE_KM = 2.0  # the fractal detail has no wavelengths above this
FRACTAL_BETA = 4.4       # power-spectrum slope: > 4 keeps slopes smooth (and compressible)
MODELLED = "terrain below 1 km is modelled"


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


#: The stretch of the Jebel Hamrin crest the demo's exposure walk starts from (lon range) and
#: the half-width of the band around it, km: the crest from west of Tuz's meridian to where
#: the Kirkuk–Baghdad road crosses the ridge south of the Anjata stretch.
HAMRIN_ORIGIN_LON = (44.10, 44.75)
HAMRIN_ORIGIN_HALF_WIDTH_KM = 2.5
NOTE_HAMRIN = ("ILLUSTRATIVE origin for `gapmap exposure`: a 5 km band along the Jebel Hamrin "
               "crest of the sample's relief (44.10–44.75° E); not the location of any cell.")


def build_hamrin_origin() -> gpd.GeoDataFrame:
    """An illustrative origin polygon: a band along the Jebel Hamrin crest of :data:`RIDGES`
    between the longitudes :data:`HAMRIN_ORIGIN_LON`, 2 × half-width wide."""
    ridge = next(r for r in RIDGES if r.name == "Jebel Hamrin")
    crest = shapely.LineString(ridge.crest)
    lo, hi = HAMRIN_ORIGIN_LON
    piece = crest.intersection(shapely.box(lo, -90.0, hi, 90.0))
    line = gpd.GeoSeries([piece], crs=WGS84).to_crs(METRIC)
    band = line.buffer(HAMRIN_ORIGIN_HALF_WIDTH_KM * 1e3, cap_style="flat").simplify(50.0)
    return gpd.GeoDataFrame({"name": ["Jebel Hamrin crest (illustrative)"],
                             "note": [NOTE_HAMRIN]}, geometry=band.values, crs=METRIC)


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


def build_krg(adm1: gpd.GeoDataFrame, adm2: gpd.GeoDataFrame, *,
              exclude: set[str] = KRG_EXCLUDE_ADM2) -> shapely.Geometry:
    """The Kurdistan Region's governorates dissolved, without the ``exclude`` districts."""
    krg1 = adm1.loc[adm1["ADM1_PCODE"].isin(KRG_ADM1)].to_crs(METRIC)
    krg = shapely.union_all(krg1.geometry.values)
    if exclude:
        drop = adm2.loc[adm2["ADM2_PCODE"].isin(exclude)].to_crs(METRIC)
        krg = krg.difference(shapely.union_all(drop.geometry.values))
    # drop the slivers the district cut leaves along the shared boundary
    krg = krg.buffer(-50).buffer(50)
    krg = shapely.simplify(krg, SIMPLIFY_M)
    return _parts(krg)


def _parts(g: shapely.Geometry, min_m2: float = 1e6) -> shapely.Geometry:
    """Polygon parts above ``min_m2``, as one (Multi)Polygon."""
    parts = [p for p in shapely.get_parts(g) if p.area > min_m2]
    if not parts:
        return shapely.Polygon()
    return shapely.MultiPolygon(parts) if len(parts) > 1 else parts[0]


# --- control points (mid-2017) ------------------------------------------------------------------

def control_side(mark: str) -> str | None:
    """The side a control mark of the Wikipedia module shows (see sources/SOURCES.md §8).

    >>> [control_side(m) for m in ("gov", "SDF_base", "IS", "stable_gov_SDF", "gov_IS",
    ...                            "BSicon STRlf yellow.svg", "Trk_base", "pass_E")]
    ['federal', 'kurdish', 'is', 'mixed', 'contested', 'kurdish', None, None]
    """
    m = str(mark)
    if m.startswith("gov_IS"):
        return "contested"
    if m.startswith("stable_gov_SDF"):
        return "mixed"
    if m.startswith("gov"):
        return "federal"
    if m.startswith("SDF"):
        return "kurdish"
    if m.startswith("IS") or m == "4x4dot-black.svg":
        return "is"
    if m.startswith("BSicon"):
        return "federal" if "red" in m else "kurdish" if "yellow" in m else None
    return None  # Turkish bases, border-post icons: no side of this scenario


def read_control(src: Path) -> gpd.GeoDataFrame:
    """The 2017 control points with their side, in the metric CRS (file order kept)."""
    df = pd.read_csv(src / "control" / "wikipedia_iraq_control_points_2017.csv",
                     usecols=["lat", "lon", "mark", "label"])
    df["side"] = df["mark"].map(control_side)
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df["lon"], df["lat"]),
                            crs=WGS84).to_crs(METRIC)


def waypoint(control: gpd.GeoDataFrame, towns: gpd.GeoDataFrame, label: str) -> shapely.Point:
    """A road waypoint: a town of TOWNS, else the first control point with that label."""
    t = towns.loc[towns["name"] == label]
    if len(t):
        return t.to_crs(METRIC).geometry.iloc[0]
    c = control.loc[control["label"] == label]
    if not len(c):
        raise SystemExit(f"waypoint {label!r} is neither a town nor a control-point label")
    return c.geometry.iloc[0]


def town_sides(towns: gpd.GeoDataFrame, control: gpd.GeoDataFrame) -> dict[str, str | None]:
    """Each town's side in mid-2017: the side of the nearest control point within 5 km
    (``None`` without one, or when it is IS-held)."""
    tm = towns.to_crs(METRIC)
    ctl = control.loc[control["side"].notna()]
    tree = shapely.STRtree(ctl.geometry.values)
    out = {}
    for name, g in zip(tm["name"], tm.geometry):
        i = tree.nearest(g)
        d = shapely.distance(g, ctl.geometry.values[i])
        out[name] = ctl["side"].iloc[i] if d <= 5e3 else None
    return out


def town_force(t: Town, date: str, side_2017: str | None) -> str | None:
    """The force holding town ``t`` on ``date``: after October 2017 the TOWNS force; before
    it, Peshmerga where the control points mark the town Kurdish, nobody where IS held it."""
    if date == AFTER or t.force == "peshmerga":
        return t.force
    if side_2017 == "kurdish":
        return "peshmerga"
    if side_2017 == "is":
        return None
    return t.force


# --- roads ---------------------------------------------------------------------------------------

def road_name(a: str, b: str, corridor: str) -> str:
    """A link's name: its corridor and ends ("Kirkuk–Baghdad road (Tuz Khurmatu–Baqubah)"),
    so that `gapmap exposure --road-name Kirkuk–Baghdad` finds every link of that road."""
    ends = f"{a}–{b}"
    return f"{corridor} road ({ends})" if corridor and corridor != ends else f"{ends} road"


def build_roads(towns: gpd.GeoDataFrame, control: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Schematic links between the towns of LINKS through their waypoints."""
    pts = towns.to_crs(METRIC).set_index("name").geometry
    centroid = {t.key for t in TOWNS if t.geonameid is None}
    rows = []
    for a, b, via, corridor in LINKS:
        verts = [pts[a]] + [waypoint(control, towns, v) for v in via] + [pts[b]]
        note = NOTE_ROADS + "".join(f" {k} is placed at its ADM3 sub-district centroid "
                                    "(not in GeoNames)." for k in (a, b) if k in centroid)
        if via:
            note += " Waypoints (2017 control points): " + ", ".join(via) + "."
        rows.append({"name": road_name(a, b, corridor), "from": a, "to": b,
                     "corridor": corridor, "kind": "schematic", "note": note,
                     "geometry": shapely.LineString(verts)})
    roads = gpd.GeoDataFrame(rows, crs=METRIC).to_crs(WGS84)
    return roads.sort_values(["from", "to"]).reset_index(drop=True)


# --- zones ---------------------------------------------------------------------------------------

def _held(points: np.ndarray) -> shapely.Geometry:
    """Ground held around control points: POINT_RADIUS_KM discs, closed by CLOSE_KM so
    neighbouring places join into one stretch of ground."""
    if len(points) == 0:
        return shapely.Polygon()
    g = shapely.union_all(shapely.buffer(points, POINT_RADIUS_KM * 1e3, quad_segs=8))
    g = g.buffer(CLOSE_KM * 1e3, quad_segs=8).buffer(-CLOSE_KM * 1e3, quad_segs=8)
    return shapely.simplify(g, 100.0)


def _rear(adm2: gpd.GeoDataFrame, study_u: shapely.Geometry) -> shapely.Geometry:
    """Federal Iraq behind the belt: REAR_ADM1 districts outside the study area, north of
    REAR_SOUTH_LAT."""
    rear_d = adm2.loc[adm2["ADM1_PCODE"].isin(REAR_ADM1) & ~adm2["ADM2_PCODE"].isin(STUDY_DISTRICTS)]
    rear = shapely.union_all(rear_d.to_crs(METRIC).geometry.values)
    south = shapely.segmentize(shapely.box(38.0, REAR_SOUTH_LAT, 49.0, 38.0), 0.05)
    south = gpd.GeoSeries([south], crs=WGS84).to_crs(METRIC).iloc[0]
    rear = rear.intersection(south).difference(study_u)
    return shapely.simplify(rear.buffer(-50).buffer(50), 500.0)


def link_force(a: str | None, b: str | None) -> str | None:
    """Who holds a road link: the side of both ends (PMF only when both ends are PMF);
    ``None`` when the ends are held by different sides or by nobody (the link crosses a front)."""
    if a is None or b is None:
        return None
    if (a == "peshmerga") != (b == "peshmerga"):
        return None
    return a if a == b else "isf"


def build_layout(date: str, sources: dict, study: gpd.GeoDataFrame, towns: gpd.GeoDataFrame,
                 roads: gpd.GeoDataFrame, control: gpd.GeoDataFrame, sides: dict
                 ) -> tuple[gpd.GeoDataFrame, shapely.Geometry, dict]:
    """The zones of one date: (zones, Peshmerga ground, force of each town)."""
    adm1, adm2 = sources["adm1"], sources["adm2"]
    study_u = shapely.union_all(study.geometry.values)
    force = {t.key: town_force(t, date, sides[t.key]) for t in TOWNS}
    tm = towns.to_crs(METRIC).set_index("name")
    if date == BEFORE:
        # Peshmerga: the three governorates (Makhmour district included) and the ground around
        # every Kurdish-marked place; federal: the ground around government-marked places.
        krg = build_krg(adm1, adm2, exclude=set())
        kurd = control.loc[control["side"] == "kurdish"].geometry.values
        pesh = shapely.union_all([krg, _held(kurd)])
        fed_pts = control.loc[control["side"].isin(["federal", "mixed"])].geometry.values
    else:
        # Peshmerga back to the governorates without Makhmour; federal forces hold every place
        # of the belt the control points mark (Kurdish-, IS- and government-held alike).
        krg = build_krg(adm1, adm2)
        pesh = krg
        fed_pts = control.loc[control["side"].notna()].geometry.values
    town_rows = []
    for t in TOWNS:
        f = force[t.key]
        if f is None or (f == "peshmerga" and t.force == "peshmerga"):
            continue
        rad = town_radius_km(t, tm.loc[t.key, "population"])
        where = "; point = ADM3 centroid, not in GeoNames" if t.geonameid is None else ""
        town_rows.append({"force": f, "name": f"{t.key} (town, {rad:g} km{where})",
                          "geometry": tm.loc[t.key].geometry.buffer(rad * 1e3, quad_segs=16)})
    pesh_towns = [r["geometry"] for r in town_rows if r["force"] == "peshmerga"]
    pesh = _parts(shapely.simplify(shapely.union_all([pesh, *pesh_towns]), SIMPLIFY_M))
    rows = [r for r in town_rows if r["force"] != "peshmerga"]
    rm = roads.to_crs(METRIC)
    for _, r in rm.iterrows():
        f = link_force(force[r["from"]], force[r["to"]])
        if f is None or f == "peshmerga":
            continue
        rows.append({"force": f, "name": f"{r['from']}–{r['to']} road corridor",
                     "geometry": r.geometry.buffer(ROAD_BUFFER_KM * 1e3, quad_segs=8)})
    held = _held(np.asarray(fed_pts)[~shapely.within(np.asarray(fed_pts), pesh)])
    rows.append({"force": "isf", "name": "Federal-held places (2017 control points, "
                 f"{POINT_RADIUS_KM:g} km, joined within {2 * CLOSE_KM:g} km)", "geometry": held})
    rows.append({"force": "isf", "name": "Federal Iraq south of the belt",
                 "geometry": _rear(adm2, study_u)})
    fed = gpd.GeoDataFrame(rows, crs=METRIC)
    # buffers carry many vertices; 20 m is far below any distance the analysis resolves
    fed["geometry"] = shapely.simplify(fed.geometry.values, 20.0)
    # federal zones never overlap the Peshmerga zone (subtracted last, after simplifying)
    fed["geometry"] = fed.geometry.difference(pesh)
    fed = fed.loc[~fed.geometry.is_empty & (fed.geometry.area > 1e4)]
    what = ("Kurdistan Region (Duhok, Erbil, Sulaymaniyah incl. Halabja district) and the ground "
            "around the Kurdish-held places of mid-2017" if date == BEFORE else
            "Kurdistan Region (Duhok, Erbil, Sulaymaniyah incl. Halabja district; without "
            "Makhmour district)")
    krg_row = gpd.GeoDataFrame([{"force": "peshmerga", "name": what, "geometry": pesh}], crs=METRIC)
    zones = gpd.GeoDataFrame(pd.concat([krg_row, fed], ignore_index=True), geometry="geometry",
                             crs=METRIC)
    zones["geometry"] = shapely.make_valid(zones.geometry.values)
    zones["note"] = NOTE
    order = {"peshmerga": 0, "isf": 1, "pmf": 2}
    zones = zones.assign(_o=zones["force"].map(order)).sort_values(["_o", "name"]).drop(columns="_o")
    return zones[["force", "name", "note", "geometry"]].reset_index(drop=True), pesh, force


# --- posts ---------------------------------------------------------------------------------------

def _front(zone: shapely.Geometry, other: shapely.Geometry, study_u: shapely.Geometry
           ) -> list[shapely.LineString]:
    """The edge of ``zone``, inset KRG_POST_INSET_KM, where it faces ``other`` across the belt."""
    inner = zone.buffer(-KRG_POST_INSET_KM * 1e3)
    near = other.buffer(FRONT_KM * 1e3).intersection(study_u.buffer(5e3))
    facing = shapely.line_merge(shapely.intersection(inner.boundary, near))
    return sorted((g for g in shapely.get_parts(facing) if g.length > 8e3),
                  key=lambda g: (round(g.centroid.y, -2), round(g.centroid.x, -2)))


def _crest_points(src: Path) -> list[tuple[str, shapely.Point]]:
    """Posts on the ridge crests: every RIDGE_POST_KM along each belt ridge, moved to the
    highest GLOBE cell within 1.5 km."""
    import rasterio

    tr = Transformer.from_crs(WGS84, METRIC, always_xy=True)
    back = Transformer.from_crs(METRIC, WGS84, always_xy=True)
    out = []
    with rasterio.open(src / "dem" / "globe30s_north_iraq.tif") as ds:
        z = ds.read(1)
        inv = ~ds.transform
        for rg in RIDGES:
            xs, ys = tr.transform(*np.array(rg.crest).T)
            for i, p in enumerate(_interp_points(shapely.LineString(np.c_[xs, ys]),
                                                 RIDGE_POST_KM * 1e3)):
                lon, lat = back.transform(p.x, p.y)
                c, r = inv * (lon, lat)
                r0, c0 = int(r), int(c)
                win = z[max(r0 - 2, 0):r0 + 3, max(c0 - 2, 0):c0 + 3]
                dr, dc = np.unravel_index(int(np.argmax(win)), win.shape)
                lon2, lat2 = ds.transform * (max(c0 - 2, 0) + dc + 0.5, max(r0 - 2, 0) + dr + 0.5)
                out.append((f"{rg.name} crest {i + 1}",
                            shapely.Point(*tr.transform(lon2, lat2))))
    return out


def _layout_posts(date: str, src: Path, zones: gpd.GeoDataFrame, pesh: shapely.Geometry,
                  study: gpd.GeoDataFrame, roads: gpd.GeoDataFrame, towns: gpd.GeoDataFrame,
                  force: dict) -> list[dict]:
    """The checkpoints of one date, in the metric CRS (see geodata/README.md, Posts)."""
    study_u = shapely.union_all(study.geometry.values)
    fed = shapely.union_all(zones.loc[zones.force != "peshmerga"].geometry.values)
    rad_of = {t.key: town_radius_km(t, p) for t, p in zip(TOWNS, towns["population"])}
    rows = []
    for _, r in roads.to_crs(METRIC).iterrows():
        line, fa, fb = r.geometry, force[r["from"]], force[r["to"]]
        a, b = rad_of[r["from"]] * 1e3, rad_of[r["to"]] * 1e3
        link = f"{r['from']}–{r['to']}"
        # town entries: where the road leaves a held town towards the belt
        for end, f, d in ((r["from"], fa, a + ENTRY_KM * 1e3),
                          (r["to"], fb, line.length - b - ENTRY_KM * 1e3)):
            p = line.interpolate(d)
            if f is not None and 0 < d < line.length and p.distance(study_u) < 10e3:
                rows.append({"name": f"{link} {end} entry", "force": f, "kind": "town entry",
                             "geometry": p})
        f = link_force(fa, fb)
        if line.length - a - b >= 5e3 and f is not None:
            seg = shapely.ops.substring(line, a, line.length - b)
            for i, p in enumerate(_interp_points(seg, POST_SPACING_KM * 1e3)):
                if p.distance(study_u) < 10e3 and (f == "peshmerga") == pesh.contains(p):
                    rows.append({"name": f"{link} CP{i + 1}", "force": f, "kind": "road",
                                 "geometry": p})
        # where the link crosses into the Peshmerga zone: a checkpoint on each side of the line
        cross = shapely.get_parts(line.intersection(pesh.boundary))
        for j, c in enumerate(cross):
            if c.geom_type != "Point" or c.distance(study_u) > 10e3:
                continue
            d = line.project(c)
            for side, dd in (("peshmerga", 1e3), ("isf", -1e3)):
                q = line.interpolate(d + dd)
                if (side == "peshmerga") != pesh.contains(q):
                    q = line.interpolate(d - dd)
                if (side == "peshmerga") == pesh.contains(q):
                    rows.append({"name": f"{link} line crossing {j + 1} ({side})", "force": side,
                                 "kind": "line crossing", "geometry": q})
    # both sides' front lines: their zone's edge where it faces the other side, inset
    held = shapely.union_all(zones.loc[zones["name"].str.startswith("Federal-held places")
                                       ].geometry.values)
    for who, zone, other in (("Peshmerga", pesh, fed), ("Federal", held, pesh)):
        for j, line in enumerate(_front(zone, other, study_u)):
            for i, p in enumerate(_interp_points(line, POST_SPACING_KM * 1e3)):
                rows.append({"name": f"{who} line {j + 1} CP{i + 1}",
                             "force": "peshmerga" if who == "Peshmerga" else "isf",
                             "kind": "front line", "geometry": p})
    for name, p in _crest_points(src):
        if p.distance(study_u) > 5e3:
            continue
        dp, df = p.distance(pesh), p.distance(fed)
        if min(dp, df) > 20e3:
            continue
        rows.append({"name": name, "force": "peshmerga" if dp <= df else "isf",
                     "kind": "ridge crest", "geometry": p})
    return rows


def _spread(name: str, lo: float, hi: float, step: float, salt: str) -> float:
    """A deterministic value lo…hi (in ``step``) from a post's name."""
    k = int(round((hi - lo) / step)) + 1
    return lo + (int(hashlib.sha256((salt + name).encode()).hexdigest(), 16) % k) * step


def build_posts(layouts: dict, src: Path, study: gpd.GeoDataFrame, roads: gpd.GeoDataFrame,
                towns: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Posts of both dates: a post of one date only gets active_to (before) or active_from
    (after); ``range_km`` and ``height_m`` follow from its name."""
    by_date = {}
    for date, (zones, pesh, force) in layouts.items():
        rows = _layout_posts(date, src, zones, pesh, study, roads, towns, force)
        for r in rows:
            r["geometry"] = gpd.GeoSeries([r["geometry"]], crs=METRIC).to_crs(WGS84).iloc[0]
            r["geometry"] = shapely.set_precision(r["geometry"], 1e-6)
        by_date[date] = {(r["name"], r["force"], r["geometry"].wkb): r for r in rows}
    before, after = by_date[BEFORE], by_date[AFTER]
    rows = []
    for key in sorted(set(before) | set(after), key=lambda k: (k[1], k[0], k[2])):
        r = dict(before.get(key) or after[key])
        r["active_from"] = None if key in before else ADVANCED_FROM
        r["active_to"] = None if key in after else WITHDRAWN_TO
        rows.append(r)
    rows += anjata_patrol(roads)
    posts = gpd.GeoDataFrame(rows, crs=WGS84)
    # a name used twice (a post that moved between the dates) gets its date in the name
    dup = posts["name"].duplicated(keep=False)
    posts.loc[dup, "name"] = posts.loc[dup, "name"] + np.where(
        posts.loc[dup, "active_to"].notna(), " (to Oct 2017)", " (from Oct 2017)")
    fixed_range = {"ridge crest": 8.0, "patrol": PATROL_RANGE_KM}
    fixed_height = {"ridge crest": 10.0, "patrol": PATROL_HEIGHT_M}
    posts["range_km"] = [fixed_range.get(k, _spread(n, 3.0, 8.0, 0.5, "r"))
                         for n, k in zip(posts["name"], posts["kind"])]
    posts["height_m"] = [fixed_height.get(k, _spread(n, 5.0, 20.0, 1.0, "h"))
                         for n, k in zip(posts["name"], posts["kind"])]
    posts["note"] = NOTE
    posts = posts.sort_values(["force", "name"]).reset_index(drop=True)
    return posts[["name", "force", "kind", "range_km", "height_m", "active_from", "active_to",
                  "note", "geometry"]]


def anjata_patrol(roads: gpd.GeoDataFrame) -> list[dict]:
    """The withdrawn daily patrol of the Anjata stretch (illustrative): stops at
    :data:`PATROL_STOPS` of the Tuz–Baqubah link's leg from the Anjanah waypoint to the Adhaim
    dam, active from the federal advance to :data:`PATROL_WITHDRAWN`."""
    link = roads.loc[(roads["from"] == "Tuz Khurmatu") & (roads["to"] == "Baqubah")]
    coords = list(link.geometry.iloc[0].coords)  # Tuz, Sulaiman Bek, Anjanah, Adhaim Dam, …
    leg = gpd.GeoSeries([shapely.LineString(coords[2:4])], crs=WGS84).to_crs(METRIC).iloc[0]
    rows = []
    for i, f in enumerate(PATROL_STOPS):
        p = gpd.GeoSeries([leg.interpolate(f, normalized=True)], crs=METRIC).to_crs(WGS84)
        rows.append({"name": f"Anjata daily patrol stop {i + 1} (withdrawn)", "force": "isf",
                     "kind": "patrol", "geometry": shapely.set_precision(p.iloc[0], 1e-6),
                     "active_from": ADVANCED_FROM, "active_to": PATROL_WITHDRAWN})
    return rows


def posts_on(posts: gpd.GeoDataFrame, date: str) -> gpd.GeoDataFrame:
    """The posts active on ``date`` (ISO text compares as dates)."""
    lo = posts["active_from"].isna() | (posts["active_from"] <= date)
    hi = posts["active_to"].isna() | (date <= posts["active_to"])
    return posts.loc[lo & hi].reset_index(drop=True)


# --- water ---------------------------------------------------------------------------------------

#: Extra hours to cross a river away from a road, by WDBII level (an assumption; README).
CROSSING_HOURS = {0: 2.0, 1: 4.0, 3: 1.0, 4: 0.5, 6: 0.25, 7: 0.25}


def build_water(src: Path, box: shapely.Polygon) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """GSHHG rivers (with ``crossing_hours`` by level) and lakes inside ``box`` (lon/lat)."""
    w = src / "water"
    rivers = gpd.read_file(w / "gshhg_rivers_full_north_iraq.geojson").set_crs(WGS84, allow_override=True)
    lakes = gpd.read_file(w / "gshhg_lakes_full_north_iraq.geojson").set_crs(WGS84, allow_override=True)
    rivers["geometry"] = rivers.geometry.intersection(box)
    rivers = rivers.explode(index_parts=False)
    rivers = rivers.loc[rivers.geom_type == "LineString"].copy()
    rivers["crossing_hours"] = rivers["wdbii_level"].map(CROSSING_HOURS).astype(float)
    rivers["length_km"] = (rivers.to_crs(METRIC).length / 1e3).round(2)
    rivers = rivers.loc[rivers["length_km"] > 0.5]
    rivers["note"] = NOTE_WATER
    rivers = rivers.sort_values(["wdbii_level", "length_km"], ascending=[True, False])
    rivers = rivers[["wdbii_level", "level_name", "crossing_hours", "length_km", "note", "geometry"]]
    # the double-lined Tigris (a river-lake outline ~1.5 km wide, far wider than the channel)
    # stays a river to cross, not a lake: its two bank lines are in the rivers layer
    lakes = lakes.loc[lakes["kind"] == "lake"].copy()
    lakes["geometry"] = lakes.geometry.intersection(box)
    lakes = lakes.loc[~lakes.geometry.is_empty & lakes.geom_type.isin(["Polygon", "MultiPolygon"])]
    lakes["area_km2"] = (lakes.to_crs(METRIC).area / 1e6).round(1)
    lakes = lakes.rename(columns={"name_hint": "name"})
    lakes["note"] = NOTE_WATER + " Names added by hand (GSHHG has none)."
    lakes = lakes.sort_values("name")[["name", "kind", "area_km2", "note", "geometry"]]
    return rivers.reset_index(drop=True), lakes.reset_index(drop=True)


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


def _warp(path: Path, x0: float, y1: float, w: int, h: int) -> np.ndarray:
    """A lon/lat relief file resampled onto the 90 m grid by cubic spline (GDAL warp);
    NaN outside the file."""
    import rasterio
    from affine import Affine
    from rasterio.warp import Resampling, reproject

    out = np.full((h, w), np.nan, "f4")
    with rasterio.open(path) as ds:
        reproject(ds.read(1).astype("f4"), out, src_transform=ds.transform, src_crs=ds.crs,
                  src_nodata=np.nan, dst_transform=Affine(DEM_RES_M, 0.0, x0, 0.0, -DEM_RES_M, y1),
                  dst_crs=METRIC, dst_nodata=np.nan, resampling=Resampling.cubic_spline,
                  num_threads=1)
    return out


def _base_relief(src: Path, x0: float, y1: float, w: int, h: int) -> np.ndarray:
    """GLOBE 30" on the 90 m grid; beyond GLOBE's box (west of 41.5° E) ETOPO5, blended over
    BLEND_KM so no step is left at the edge."""
    from scipy.ndimage import distance_transform_edt

    globe = _warp(src / "dem" / "globe30s_north_iraq.tif", x0, y1, w, h)
    # the outermost 2 cells of a warp interpolate towards nodata: trust GLOBE only inside them
    inside = np.isfinite(globe)
    if inside.all():
        return globe
    etopo = _warp(src / "dem" / "etopo5_iraq_region.tif", x0, y1, w, h)
    d = distance_transform_edt(inside, sampling=DEM_RES_M).astype("f4")
    wgt = np.clip((d - 2 * DEM_RES_M) / (BLEND_KM * 1e3), 0.0, 1.0)
    return np.where(inside, wgt * np.nan_to_num(globe) + (1 - wgt) * etopo, etopo).astype("f4")


def _sharpen(z: np.ndarray) -> np.ndarray:
    """Detail below 1 km, part 1: the relief's own curvature at 1–3 km scale, sharpened.

    GLOBE's 1 km cells flatten narrow crests (Jebel Hamrin is 1–3 km wide). Adding back
    SHARPEN_GAIN × (z − Gaussian(z, SHARPEN_SIGMA_KM)) raises crests and deepens valleys where
    GLOBE already shows them, without moving them; bounded to ±SHARPEN_MAX_M."""
    from scipy.ndimage import gaussian_filter

    hp = z - gaussian_filter(z, SHARPEN_SIGMA_KM * 1e3 / DEM_RES_M, mode="nearest")
    return (SHARPEN_MAX_M * np.tanh(SHARPEN_GAIN * hp / SHARPEN_MAX_M)).astype("f4")


def _fractal(h: int, w: int, seed: int) -> np.ndarray:
    """Detail below 1 km, part 2: Gaussian noise with a 1/f^beta spectrum, only wavelengths
    below FRACTAL_MAX_WAVE_KM, std FRACTAL_STD_M, bounded to ±FRACTAL_MAX_M."""
    from scipy import fft

    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((h, w), dtype="f4")
    spec = fft.rfft2(noise, workers=1)
    del noise
    fy = fft.fftfreq(h).astype("f4")[:, None]
    fx = fft.rfftfreq(w).astype("f4")[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    # cycles per cell; a wavelength of L km is DEM_RES_M / (L · 1000) cycles per cell
    f_cut = DEM_RES_M / (FRACTAL_MAX_WAVE_KM * 1e3)
    filt = f ** (-FRACTAL_BETA / 2) * (1 - np.exp(-(f / f_cut) ** 4))
    filt[0, 0] = 0.0
    spec *= filt
    del f, filt
    out = fft.irfft2(spec, s=(h, w), workers=1).astype("f4")
    out *= FRACTAL_STD_M / out.std()
    return (FRACTAL_MAX_M * np.tanh(out / FRACTAL_MAX_M)).astype("f4")


def build_dem(src: Path, study: gpd.GeoDataFrame, path: Path) -> dict:
    import rasterio
    from affine import Affine

    x0, y1, w, h = _dem_grid(study)
    z = _base_relief(src, x0, y1, w, h)
    z += _sharpen(z)
    z += _fractal(h, w, SEED)
    dem = np.rint(z).astype("int16")
    del z
    desc = ("gapmap sample terrain, 90 m. At 1 km it follows NOAA GLOBE 30-arc-second relief "
            "(doi:10.7289/V52R3PMS; ETOPO5 west of 41.5 E). " + MODELLED + ": GLOBE resampled "
            f"by cubic spline, its 1-3 km curvature sharpened (at most {SHARPEN_MAX_M:g} m) and "
            f"fractal detail added (std {FRACTAL_STD_M:g} m, at most {FRACTAL_MAX_M:g} m, seed "
            f"{SEED}). Not a survey DEM: use SRTM/Copernicus for line-of-sight work that matters.")
    profile = dict(driver="COG", width=w, height=h, count=1, dtype="int16", crs=METRIC,
                   transform=Affine(DEM_RES_M, 0.0, x0, 0.0, -DEM_RES_M, y1), nodata=DEM_NODATA,
                   compress="DEFLATE", predictor=2, level=9, blocksize=512,
                   overview_resampling="average", BIGTIFF="NO")
    with atomic_path(path) as tmp:
        tmp.unlink(missing_ok=True)
        with rasterio.open(tmp, "w", **profile) as ds:
            ds.write(dem, 1)
            ds.update_tags(TIFFTAG_IMAGEDESCRIPTION=desc, MODELLED_BELOW_M="1000",
                           LABEL=MODELLED,
                           SOURCE="NOAA GLOBE v1 30 arc-second (public, unrestricted); ETOPO5 "
                                  "(NOAA NGDC, public domain) west of 41.5 E",
                           NOTE=MODELLED + "; see geodata/README.md")
            ds.set_band_description(1, "elevation (m); " + MODELLED)
            ds.update_tags(1, UNITS="m")
    return {"width": w, "height": h, "min_m": int(dem.min()), "max_m": int(dem.max())}


# --- main -------------------------------------------------------------------------------------

def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


SCENARIO_TOML = """\
# gapmap sample scenario: Iraq's disputed territories, the layout from late October 2017
# (ILLUSTRATIVE force layout). Paths are relative to this file. See README.md for sources and
# licences; zones_2017-06-30.geojson / zones_2017-10-31.geojson with posts_dated.geojson are
# the two dated layouts for `gapmap series`.
[layers]
zones = "zones.geojson"
force_field = "force"
posts = "posts.geojson"
study_area = "study_area.geojson"
incidents = "incidents_ucdp_ged.csv"
dem = "dem_synthetic.tif"
roads = "roads.geojson"
places = "places.geojson"
rivers = "rivers.geojson"
lakes = "lakes.geojson"

[sides]
a = "krg=peshmerga"
b = "federal=isf,pmf"

[parameters]
reach_km = 2
max_width_km = 150
min_length_km = 1
"""


def _scenario_text(out: Path) -> str:
    """SCENARIO_TOML, followed by the ``[sources...]`` tables of an existing scenario file
    (they credit the layers and are kept as they are)."""
    old = out / "scenario.toml"
    if not old.exists():
        return SCENARIO_TOML
    text = old.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if ln.startswith("[sources")), None)
    if start is None:
        return SCENARIO_TOML
    # keep the comment lines directly above the first [sources] table with it
    while start > 0 and lines[start - 1].startswith("#"):
        start -= 1
    return SCENARIO_TOML + "\n" + "".join(lines[start:])


def dem_box(study: gpd.GeoDataFrame) -> shapely.Polygon:
    """The DEM's extent in lon/lat (a little larger: the metric grid's box reprojected)."""
    x0, y1, w, h = _dem_grid(study)
    box = shapely.segmentize(shapely.box(x0, y1 - h * DEM_RES_M, x0 + w * DEM_RES_M, y1), 5e3)
    return gpd.GeoSeries([box], crs=METRIC).to_crs(WGS84).iloc[0].envelope


def build(src: Path, out: Path, *, dem: bool = True) -> dict:
    """Build every sample file into ``out``; return counts and figures for the README/report."""
    out.mkdir(parents=True, exist_ok=True)
    sources = read_sources(src)
    control = read_control(src)
    study = build_study_area(sources["adm2"])
    towns = build_towns(sources)
    roads = build_roads(towns, control)
    sides = town_sides(towns, control)
    layouts = {d: build_layout(d, sources, study, towns, roads, control, sides)
               for d in (BEFORE, AFTER)}
    posts = build_posts(layouts, src, study, roads, towns)
    rivers, lakes = build_water(src, dem_box(study))

    _write_geojson(study, out / "study_area.geojson")
    for d, (zones, _, _) in layouts.items():
        _write_geojson(zones, out / f"zones_{d}.geojson")
    _write_geojson(layouts[AFTER][0], out / "zones.geojson")
    _write_geojson(posts, out / "posts_dated.geojson")
    _write_geojson(posts_on(posts, AFTER), out / "posts.geojson")
    _write_geojson(roads, out / "roads.geojson")
    _write_geojson(rivers, out / "rivers.geojson")
    _write_geojson(lakes, out / "lakes.geojson")
    _write_geojson(build_hamrin_origin(), out / "hamrin_origin.geojson")
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
    text = _scenario_text(out)
    with atomic_path(out / "scenario.toml") as tmp:
        tmp.write_text(text, encoding="utf-8", newline="\n")

    info = {"bbox": bbox, "posts": len(posts), "roads": len(roads), "rivers": len(rivers),
            "lakes": len(lakes), "places": len(places), "districts": len(study),
            "events": len(yearly), "events_dated": len(dated),
            "town_sides_2017": {k: v for k, v in sorted(sides.items())}}
    for d, (zones, _, _) in layouts.items():
        info[f"zones_{d}"] = zones["force"].value_counts().sort_index().to_dict()
        info[f"posts_{d}"] = posts_on(posts, d)["force"].value_counts().sort_index().to_dict()
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
