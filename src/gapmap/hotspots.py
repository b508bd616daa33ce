"""Where and when incidents cluster: kernel density, Gi* hot spots on hexagons, monthly counts.

- :func:`kernel_density`: a Gaussian kernel density surface (incidents per km²), computed as a
  count grid smoothed with :func:`scipy.ndimage.gaussian_filter`. This equals a Gaussian KDE
  with standard deviation ``bandwidth_km`` evaluated at the cell centres, with each incident
  moved to the centre of its cell (an error of at most half a cell, small when
  ``cell_m`` ≪ bandwidth), at the cost of one pass over the points and one FFT-free filter.
- :func:`gi_star_hexes`: a hexagonal grid over the study area, incidents counted per hexagon,
  Getis–Ord Gi* z-scores (binary weights of the six neighbours plus the hexagon itself), the
  two-sided normal p-value of z by default (optionally a Monte Carlo test under complete
  spatial randomness), controlled for the false discovery rate (Benjamini–Hochberg).
  Computed with numpy/scipy: the z-score is one sparse product, the neighbours one k-d tree
  query, the FDR :func:`scipy.stats.false_discovery_control`; esda and libpysal (with
  scikit-learn, requests, beautifulsoup4 behind them) are kept only as the tests' reference
  for the z-scores.
- :func:`monthly_counts` / :func:`plot_monthly`: incidents per month (or per year when the
  source gives only years) and per corridor.

Coarse locations (district or province centroids) are left out of the density and the hot
spots by default, as they are of the corridor metrics: they would plant false clusters on the
centroids. They stay in the counts over time, where their location does not matter.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from rasterio.transform import Affine, from_origin
from scipy import ndimage, sparse, stats
from scipy.spatial import cKDTree

from .crs import metric_crs
from .errors import DatePrecisionWarning, InputError, ResultWarning
from .io import atomic_dir, atomic_path, load_study_area

__all__ = ["kernel_density", "hex_grid", "hex_neighbours", "gi_star_z", "gi_star_hexes",
           "monthly_counts", "plot_monthly", "write_hotspots", "hotspot_products",
           "write_hotspot_products", "HotspotProducts", "MAX_CELLS", "INFERENCE",
           "MAX_PERMUTATIONS"]

log = logging.getLogger(__name__)

#: Largest density grid computed (cells); beyond it, ask for a coarser ``cell_m``.
MAX_CELLS = 25_000_000


def _incident_frame(incidents) -> gpd.GeoDataFrame:
    """A GeoDataFrame from Incidents, IncidentMetrics' table, or a GeoDataFrame."""
    gdf = getattr(incidents, "gdf", incidents)
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise TypeError(f"expected Incidents or a GeoDataFrame, got {type(incidents).__name__}")
    if gdf.crs is None:
        raise InputError(gdf.attrs.get("source", "incidents"), "crs",
                         "incidents have no coordinate reference system",
                         "set the CRS of the GeoDataFrame")
    return gdf


def _located(gdf: gpd.GeoDataFrame, include_coarse: bool) -> gpd.GeoDataFrame:
    if include_coarse or "coarse" not in gdf.columns:
        return gdf
    return gdf.loc[~gdf["coarse"].fillna(False).to_numpy(dtype=bool)]


def _xy(gdf: gpd.GeoDataFrame, crs: CRS) -> np.ndarray:
    if len(gdf) == 0:
        return np.empty((0, 2))
    g = gdf.geometry if CRS.from_user_input(gdf.crs) == crs else gdf.geometry.to_crs(crs)
    return shapely.get_coordinates(g.values)


def kernel_density(incidents, *, bandwidth_km: float, cell_m: float,
                   bounds: tuple[float, float, float, float], crs,
                   include_coarse: bool = False) -> tuple[np.ndarray, Affine]:
    """Gaussian kernel density of incidents, in incidents per km².

    Parameters
    ----------
    incidents
        :class:`~gapmap.incidents.Incidents` or a point GeoDataFrame (any CRS).
    bandwidth_km
        Standard deviation of the Gaussian kernel, km.
    cell_m
        Cell size of the output grid, m (a fifth of the bandwidth or finer keeps the snapping
        error negligible).
    bounds
        ``(xmin, ymin, xmax, ymax)`` of the grid in ``crs``.
    crs
        A metric CRS (the grid's).
    include_coarse
        Also use incidents with coarse locations.

    Returns
    -------
    (density, transform)
        ``float32`` array (row 0 to the north) and its affine transform. Incidents outside
        ``bounds`` but within four bandwidths of them still contribute, so the surface has no
        edge dip; the kernel is truncated at four standard deviations.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> pts = gpd.GeoDataFrame(geometry=[shapely.Point(500e3, 3900e3)], crs=32638)
    >>> dens, tr = kernel_density(pts, bandwidth_km=5, cell_m=500,
    ...                           bounds=(480e3, 3880e3, 520e3, 3920e3), crs=32638)
    >>> dens.shape, round(float(dens.sum()) * 0.25, 3)   # integrates to one incident
    ((80, 80), 1.0)
    """
    if not (bandwidth_km > 0):
        raise InputError("--bandwidth-km", None, f"must be > 0, got {bandwidth_km!r}",
                         "give a positive bandwidth in km")
    if not (cell_m > 0):
        raise InputError("--cell-m", None, f"must be > 0, got {cell_m!r}",
                         "give a positive cell size in m")
    crs = CRS.from_user_input(crs)
    xmin, ymin, xmax, ymax = map(float, bounds)
    if not (xmax > xmin and ymax > ymin):
        raise InputError("bounds", None, f"empty bounds {bounds!r}",
                         "give xmin < xmax and ymin < ymax")
    width = max(int(math.ceil((xmax - xmin) / cell_m)), 1)
    height = max(int(math.ceil((ymax - ymin) / cell_m)), 1)
    if width * height > MAX_CELLS:
        raise InputError("--cell-m", None, f"a {width}×{height} grid is too large",
                         f"give a cell size of at least "
                         f"{cell_m * math.sqrt(width * height / MAX_CELLS):.0f} m")
    sigma = bandwidth_km * 1000.0 / cell_m
    pad = int(math.ceil(4.0 * sigma))  # the kernel's reach in cells (truncated at 4σ)
    transform = from_origin(xmin, ymin + height * cell_m, cell_m, cell_m)
    gdf = _located(_incident_frame(incidents), include_coarse)
    xy = _xy(gdf, crs)
    col = np.floor((xy[:, 0] - xmin) / cell_m).astype(np.int64) + pad
    row = np.floor((ymin + height * cell_m - xy[:, 1]) / cell_m).astype(np.int64) + pad
    H, W = height + 2 * pad, width + 2 * pad
    ok = (col >= 0) & (col < W) & (row >= 0) & (row < H)
    counts = np.bincount(row[ok] * W + col[ok], minlength=H * W).reshape(H, W).astype(np.float64)
    smooth = ndimage.gaussian_filter(counts, sigma=sigma, mode="constant", cval=0.0,
                                     truncate=4.0)
    cell_km2 = (cell_m / 1000.0) ** 2
    density = smooth[pad:pad + height, pad:pad + width] / cell_km2
    return density.astype(np.float32), transform


def hex_grid(study_area: shapely.Geometry, hex_km: float) -> gpd.GeoSeries:
    """Flat-topped hexagons covering ``study_area`` (metric CRS), neighbours ``hex_km`` apart.

    ``hex_km`` is the distance between the centres of neighbouring hexagons (= the width
    across flats); each hexagon covers ``√3/2 · hex_km²`` km². Hexagons that touch the study
    area are kept whole (not clipped), so all have the same area.

    Examples
    --------
    >>> import shapely
    >>> h = hex_grid(shapely.box(0, 0, 30e3, 30e3), 10)
    >>> round(float(h.area.iloc[0]) / 1e6, 2)
    86.6
    """
    if not (hex_km > 0):
        raise InputError("--hex-km", None, f"must be > 0, got {hex_km!r}",
                         "give a positive hexagon size in km")
    if study_area is None or study_area.is_empty:
        return gpd.GeoSeries([], dtype="geometry")
    spacing = hex_km * 1000.0
    r = spacing / math.sqrt(3.0)  # circumradius
    xmin, ymin, xmax, ymax = shapely.bounds(study_area)
    ncol = int(math.ceil((xmax - xmin) / (1.5 * r))) + 3
    nrow = int(math.ceil((ymax - ymin) / spacing)) + 3
    if ncol * nrow > 5_000_000:
        raise InputError("--hex-km", None, f"{ncol * nrow:,} hexagons are too many",
                         "give a larger hexagon size")
    i, j = np.meshgrid(np.arange(ncol), np.arange(nrow), indexing="ij")
    cx = xmin - r + i.ravel() * 1.5 * r
    cy = ymin - spacing + j.ravel() * spacing + (i.ravel() % 2) * spacing / 2.0
    ang = np.deg2rad(np.arange(0, 360, 60))
    vx = cx[:, None] + r * np.cos(ang)[None, :]
    vy = cy[:, None] + r * np.sin(ang)[None, :]
    ring = np.stack([vx, vy], axis=-1)
    ring = np.concatenate([ring, ring[:, :1]], axis=1)
    hexes = shapely.polygons(ring)
    shapely.prepare(study_area)
    keep = shapely.intersects(study_area, hexes)
    return gpd.GeoSeries(hexes[keep])


#: Gi* inference methods: the z-score test (normal approximation) or a Monte Carlo test
#: under complete spatial randomness.
INFERENCE = ("normal", "permutation")
#: Most permutations accepted, and most random placements (permutations × events) per run.
MAX_PERMUTATIONS = 1_000_000
MAX_PLACEMENTS = 5e9
#: Random placements (events + 8 per hexagon) per second on one core, for the refusal
#: message: measured 3.7e7 (bench/bench_incidents.py --hotspots: 20,480 hexagons, 20,000
#: events, 999 permutations in 5.0 s, 583 MB peak RSS); 3e7 keeps the estimate on the safe side.
_PLACEMENTS_PER_S = 3e7


def hex_neighbours(hexes) -> sparse.csr_matrix:
    """Binary contiguity of a hexagonal grid (the six neighbours, no self-weight) as a CSR
    matrix: centres closer than 1.01 × the spacing, found with a k-d tree.

    Examples
    --------
    >>> import shapely
    >>> w = hex_neighbours(hex_grid(shapely.box(0, 0, 50e3, 50e3), 10).values)
    >>> int(w.sum(axis=1).max())
    6
    """
    hexes = np.asarray(hexes, dtype=object)
    n = len(hexes)
    if n < 2:
        return sparse.csr_matrix((n, n))
    centres = shapely.get_coordinates(shapely.centroid(hexes))
    # Neighbouring centres are one spacing apart; the next ring is √3 spacings away.
    spacing = float(np.sqrt(3.0)) * shapely.length(hexes[0]) / 6.0
    pairs = cKDTree(centres).query_pairs(r=spacing * 1.01, output_type="ndarray")
    i = np.concatenate([pairs[:, 0], pairs[:, 1]])
    j = np.concatenate([pairs[:, 1], pairs[:, 0]])
    return sparse.csr_matrix((np.ones(len(i)), (i, j)), shape=(n, n))


def gi_star_z(counts: np.ndarray, neighbours) -> np.ndarray:
    """Getis–Ord Gi* z-scores with binary weights that include the site itself.

    ``z_i = (Σ_j w_ij y_j − ȳ W_i) / (s √(W_i (n − W_i) / (n − 1)))`` with ``W_i`` the
    neighbours plus one and ``s`` the population standard deviation of ``y`` (Ord & Getis
    1995; the same as :class:`esda.G_Local` with ``star=True``, checked in the tests).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import sparse
    >>> chain = np.array([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]])
    >>> np.round(gi_star_z(np.array([4.0, 1.0, 1.0, 0.0]), sparse.csr_matrix(chain)), 3).tolist()
    [1.155, 1.0, -1.667, -1.155]
    """
    y = np.asarray(counts, dtype=float)
    n = len(y)
    star = neighbours + sparse.identity(n, format="csr")
    W = np.asarray(star.sum(axis=1)).ravel()
    mean, sd = y.mean(), y.std()
    with np.errstate(invalid="ignore", divide="ignore"):
        return (star @ y - mean * W) / (sd * np.sqrt(W * (n - W) / (n - 1)))


def _check_hotspot_options(alpha: float, inference: str, permutations: int) -> str:
    if not (0 < alpha < 1):
        raise InputError("--alpha", None, f"must be between 0 and 1, got {alpha!r}",
                         "give e.g. 0.05")
    method = str(inference).lower()
    if method not in INFERENCE:
        raise InputError("--inference", None, f"unknown method {inference!r}",
                         f"use one of {', '.join(INFERENCE)}")
    # Checked whatever the method: an absurd count is a mistake even where it is not used.
    if not (1 <= int(permutations) <= MAX_PERMUTATIONS):
        raise InputError("--permutations", None,
                         f"must be between 1 and {MAX_PERMUTATIONS:,}, got {permutations:,}",
                         "give e.g. 9999")
    return method


def _hex_counts(hexes: np.ndarray, xy: np.ndarray) -> np.ndarray:
    counts = np.zeros(len(hexes), dtype=np.int64)
    if len(hexes) and len(xy):
        pi, hi = shapely.STRtree(hexes).query(shapely.points(xy), predicate="intersects")
        _, first = np.unique(pi, return_index=True)  # a point on a shared edge counts once
        counts = np.bincount(hi[first], minlength=len(hexes))
    return counts


def gi_star_hexes(incidents, study_area, *, hex_km: float = 10.0, alpha: float = 0.05,
                  inference: str = "normal", permutations: int = 9999, crs=None,
                  seed: int | None = 0, include_coarse: bool = False) -> gpd.GeoDataFrame:
    """Getis–Ord Gi* hot and cold spots of incident counts on a hexagonal grid.

    Parameters
    ----------
    incidents
        :class:`~gapmap.incidents.Incidents` or a point GeoDataFrame.
    study_area
        Polygon(s): a shapely geometry in ``crs``, or a GeoDataFrame / GeoSeries / path.
    hex_km
        Distance between neighbouring hexagon centres, km (see :func:`hex_grid`).
    alpha
        False discovery rate (Benjamini–Hochberg,
        :func:`scipy.stats.false_discovery_control`).
    inference
        ``"normal"`` (default): two-sided p-value of the Gi* z-score, the test of the
        hot-spot tools analysts know. ``"permutation"``: a Monte Carlo test under complete
        spatial randomness — the same number of events placed at random over the hexagons,
        ``permutations`` times. Unlike the conditional permutation, which holds a hexagon's
        own count fixed and so can never flag a lone peak, both tests flag a hexagon of
        1,200 events amid empty ground. Against random placement, the empty ground around
        such a peak is also emptier than chance: expect cold spots there.
    permutations
        Random placements for ``inference="permutation"`` (the smallest p-value is
        ``2 / (permutations + 1)``); refused beyond :data:`MAX_PERMUTATIONS` or when
        permutations × events exceeds :data:`MAX_PLACEMENTS`.
    crs
        Metric CRS of the grid; chosen from the data when omitted.
    seed
        Seed of the permutations (results are reproducible by default).
    include_coarse
        Also count incidents with coarse locations.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per hexagon in ``crs``: ``hex_id``, ``count``, ``gi_z`` (Gi* z-score),
        ``p_value`` (two-sided, of the method used), ``hot``, ``cold`` (bool: significant
        after FDR control, with positive / negative ``gi_z``); with permutations also
        ``p_sim``. ``attrs``: ``fdr_p`` (the largest significant p-value, or alpha / n when
        none is), ``inference``, ``alpha``, ``n_hot``, ``n_cold``.

    Examples
    --------
    >>> import geopandas as gpd, numpy as np, shapely
    >>> rng = np.random.default_rng(0)
    >>> xy = np.vstack([rng.uniform(0, 100e3, (100, 2)), rng.normal(50e3, 2e3, (200, 2))])
    >>> pts = gpd.GeoDataFrame(geometry=shapely.points(xy), crs=32638)
    >>> hexes = gi_star_hexes(pts, shapely.box(0, 0, 100e3, 100e3), hex_km=10, crs=32638)
    >>> bool(hexes.loc[hexes["count"].idxmax(), "hot"]), int(hexes["cold"].sum())
    (True, 0)
    """
    method = _check_hotspot_options(alpha, inference, permutations)
    gdf = _located(_incident_frame(incidents), include_coarse)
    area_geom, crs = _study_geometry(study_area, crs, gdf)
    hexes = hex_grid(area_geom, hex_km).values
    n = len(hexes)
    counts = _hex_counts(hexes, _xy(gdf, crs))
    out = gpd.GeoDataFrame({"hex_id": np.arange(1, n + 1), "count": counts,
                            "gi_z": np.nan, "p_value": np.nan, "hot": False, "cold": False},
                           geometry=hexes, crs=crs)
    out.attrs.update(fdr_p=float("nan"), inference=method, alpha=float(alpha), n_hot=0,
                     n_cold=0)
    if n < 2 or np.all(counts == counts[0]):
        warnings.warn(f"Gi*: {n} hexagon(s), " + ("all with the same count" if n else
                      "no study area") + "; no hot spots computed", ResultWarning,
                      stacklevel=2)
        return out
    w = hex_neighbours(hexes)
    z = gi_star_z(counts, w)
    if method == "normal":
        p = np.minimum(2.0 * stats.norm.sf(np.abs(z)), 1.0)
        high = z > 0
    else:
        p_high, p_low = _placement_p_values(counts, w, int(permutations), seed)
        p = np.minimum(2.0 * np.minimum(p_high, p_low), 1.0)
        high = p_high < p_low
        out["p_sim"] = p
    sig = stats.false_discovery_control(p, method="bh") <= alpha
    out["gi_z"], out["p_value"] = z, p
    out["hot"], out["cold"] = sig & high & (z > 0), sig & ~high & (z < 0)
    n_hot, n_cold = int(out["hot"].sum()), int(out["cold"].sum())
    out.attrs.update(fdr_p=float(p[sig].max()) if sig.any() else alpha / n, n_hot=n_hot,
                     n_cold=n_cold)
    log.info("Gi* (%s): %d hexagons, %d hot, %d cold (FDR %.2g)", method, n, n_hot, n_cold,
             alpha)
    if not sig.any():
        warnings.warn(f"Gi*: no hot or cold spot among {n} hexagons at FDR {alpha:g}",
                      ResultWarning, stacklevel=2)
    return out


def _placement_p_values(counts: np.ndarray, neighbours, permutations: int,
                        seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """One-sided Monte Carlo p-values of Gi* under complete spatial randomness.

    Each permutation places the N observed events independently and uniformly on the n
    hexagons (equal areas) and takes every hexagon's neighbourhood sum (itself and its six
    neighbours: the Gi* numerator; the denominator Σy = N is fixed). ``p_high`` counts sums
    ≥ the observed one, ``p_low`` sums ≤ it (ties in both tails), each plus one over
    permutations plus one. Permutations run in chunks of about 4 million hexagon values, so
    memory stays bounded (100,000 hexagons × 9,999 permutations at once would be 8 GB).
    """
    n, total = len(counts), int(counts.sum())
    work = float(permutations) * (total + 8 * n)
    if work > MAX_PLACEMENTS:
        raise InputError("--permutations", None,
                         f"{permutations:,} permutations of {total:,} events on {n:,} "
                         f"hexagons would take about {work / _PLACEMENTS_PER_S / 60:,.0f} min",
                         f"give at most {int(MAX_PLACEMENTS / (total + 8 * n)):,}, or use "
                         "--inference normal")
    star = (neighbours + sparse.identity(n, format="csr")).tocsr()
    observed = star @ counts.astype(float)
    rng = np.random.default_rng(seed)
    above = np.zeros(n)
    below = np.zeros(n)
    chunk = max(1, min(permutations, 4_000_000 // max(n, total, 1)))
    for start in range(0, permutations, chunk):
        m = min(chunk, permutations - start)
        cells = rng.integers(0, n, size=(m, total)) + (np.arange(m) * n)[:, None]
        sims = np.bincount(cells.ravel(), minlength=m * n).reshape(m, n).astype(float)
        sums = (star @ sims.T)  # (n, m)
        above += (sums >= observed[:, None]).sum(axis=1)
        below += (sums <= observed[:, None]).sum(axis=1)
    return (above + 1.0) / (permutations + 1.0), (below + 1.0) / (permutations + 1.0)


def _study_geometry(study_area, crs, gdf: gpd.GeoDataFrame
                    ) -> tuple[shapely.Geometry, CRS]:
    """The study area as one geometry in a metric CRS (chosen from the data if not given)."""
    if isinstance(study_area, (str, os.PathLike)):
        study_area = load_study_area(study_area)
    if isinstance(study_area, (gpd.GeoDataFrame, gpd.GeoSeries)):
        if study_area.crs is None:
            raise InputError(study_area.attrs.get("source", "study area"), "crs",
                             "study area has no coordinate reference system",
                             "declare its CRS")
        if crs is None:
            crs = metric_crs(study_area)
        crs = CRS.from_user_input(crs)
        geom = shapely.union_all(study_area.to_crs(crs).geometry.values)
        return geom, crs
    if crs is None:
        if len(gdf) == 0:
            raise InputError("crs", None, "cannot choose a CRS without data",
                             "pass crs= with a shapely study area")
        crs = metric_crs(gdf)
    return study_area, CRS.from_user_input(crs)


def monthly_counts(table, *, freq: str = "auto", by: str = "corridor_id",
                   study_area_only: bool = True) -> pd.DataFrame:
    """Incidents per month (or year) and per corridor.

    Parameters
    ----------
    table
        The per-incident table of :class:`~gapmap.incidents.IncidentMetrics` (with
        ``corridor_id`` and ``in_study_area``), :class:`~gapmap.incidents.Incidents`, or any
        frame with ``date`` (and ``date_precision``).
    freq
        ``"month"``, ``"year"`` or ``"auto"``: monthly, unless some dates are known only to
        the year (UCDP GED yearly files), where monthly counts would pile a year's events on
        1 July — then yearly (logged).
    by
        Column naming the corridor of each incident (NaN outside corridors).
    study_area_only
        Count only incidents inside the study area when the table says which are
        (``in_study_area``); the others are one number, ``attrs["incidents_outside_study_area"]``.

    Returns
    -------
    pandas.DataFrame
        Index: the first day of each period from the first to the last (named ``month`` or
        ``year``, every period present, zeros included). Columns: one per corridor (in
        corridor order), ``not_in_corridor``, then ``total``; just ``total`` without
        corridors. An incident counts in a period only when its whole possible date range
        lies in it (:func:`gapmap.incidents.period_mask`): a week-dated event across a month's
        end, or a year-dated one in monthly counts, is counted apart in
        ``attrs["incidents_undated"]`` with one
        :class:`~gapmap.errors.DatePrecisionWarning`. Incidents without a date are not counted
        (logged).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"date": pd.to_datetime(["2020-01-05", "2020-03-01", "2020-03-09"]),
    ...                   "corridor_id": ["C1", None, "C1"]})
    >>> monthly_counts(t).to_dict("list")
    {'C1': [1, 0, 1], 'not_in_corridor': [0, 0, 1], 'total': [1, 0, 2]}
    """
    from .incidents import date_bounds

    df = getattr(table, "gdf", table)
    if "date" not in df.columns:
        raise InputError(getattr(df, "attrs", {}).get("source", "incidents"), "date",
                         "incidents have no date column", "give incidents with dates")
    f = _frequency(df, freq)
    outside = 0
    if study_area_only and "in_study_area" in df.columns:
        inside_area = df["in_study_area"].fillna(False).to_numpy(dtype=bool)
        outside = int((~inside_area).sum())
        df = df.loc[inside_area]
    prec = df["date_precision"] if "date_precision" in df.columns else None
    lo, hi = date_bounds(df["date"].to_numpy(), prec)
    has = ~np.isnat(lo)
    if (~has).any():
        log.info("%d incident(s) without a date left out of the counts", int((~has).sum()))
    code = "M" if f == "month" else "Y"
    first = pd.Series(lo[has]).dt.to_period(code)
    last = pd.Series(hi[has] - np.timedelta64(1, "ns")).dt.to_period(code)
    # Calendar periods tile time, so "the whole range inside one period" is this test; it
    # agrees with period_mask on each period (tested).
    whole = (first == last).to_numpy()
    undated = int((~whole).sum())
    if undated:
        warnings.warn(f"{undated} incident(s) dated only to a week, month or year straddle "
                      f"the {f}s counted: counted apart", DatePrecisionWarning, stacklevel=2)
    period = first[whole].dt.start_time
    corr = df.loc[has, by].iloc[np.flatnonzero(whole)] if by in df.columns else None
    out = _period_table(period, corr, f)
    out.attrs["incidents_undated"] = undated
    out.attrs["incidents_outside_study_area"] = outside
    return out


def _frequency(df: pd.DataFrame, freq: str) -> str:
    """``"month"`` or ``"year"``; ``"auto"`` is yearly when some dates are only years."""
    f = str(freq).lower()
    if f not in ("auto", "month", "year", "m", "y", "ms", "ys"):
        raise InputError("freq", None, f"unknown frequency {freq!r}", "use month, year or auto")
    if f == "auto":
        yearly = "date_precision" in df.columns and (df["date_precision"] == "year").any()
        if yearly:
            log.info("some incident dates are known only to the year: counting per year")
        return "year" if yearly else "month"
    return "year" if f in ("year", "y", "ys") else "month"


def _period_table(period: pd.Series, corr: pd.Series | None, f: str) -> pd.DataFrame:
    """Counts per period (every period from the first to the last) and corridor."""
    if len(period) == 0:
        idx = pd.DatetimeIndex([], name=f)
        return pd.DataFrame({"total": pd.Series(dtype=int)}, index=idx)
    period = period.reset_index(drop=True)
    full = pd.date_range(period.min(), period.max(), freq="MS" if f == "month" else "YS",
                         name=f)
    out = pd.DataFrame(index=full)
    if corr is not None:
        corr = corr.reset_index(drop=True)
    if corr is not None and corr.notna().any():
        key = corr.astype(object).where(corr.notna(), "not_in_corridor").astype(str)
        tab = pd.crosstab(period.to_numpy(), key.to_numpy())
        ids = sorted((c for c in tab.columns if c != "not_in_corridor"), key=_natural)
        for c in ids + ["not_in_corridor"]:
            out[c] = tab[c].reindex(full).fillna(0).astype(int).to_numpy() if c in tab else 0
    elif corr is not None:
        out["not_in_corridor"] = period.value_counts().reindex(full).fillna(0).astype(int)
    out["total"] = period.value_counts().reindex(full).fillna(0).astype(int).to_numpy()
    out.index.name = f
    return out


def _natural(name: str):
    """Sort C2 before C10."""
    head = name.rstrip("0123456789")
    tail = name[len(head):]
    return head, int(tail) if tail else -1


def plot_monthly(counts: pd.DataFrame, path: str | os.PathLike | None = None, *,
                 title: str | None = None, top: int = 8):
    """Stacked bars of incidents per period: the ``top`` busiest corridors, the other
    corridors together, and incidents outside corridors.

    Parameters
    ----------
    counts
        From :func:`monthly_counts`.
    path
        PNG to write (atomically); without it the matplotlib Figure is returned.
    title
        Figure title.
    top
        Corridors shown individually.

    Returns
    -------
    pathlib.Path or matplotlib.figure.Figure

    Examples
    --------
    >>> plot_monthly(monthly_counts(metrics.incidents), "out/monthly.png")  # doctest: +SKIP
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    corridors = [c for c in counts.columns if c not in ("total", "not_in_corridor")]
    series: dict[str, np.ndarray] = {}
    if corridors:
        ranked = sorted(corridors, key=lambda c: -counts[c].sum())
        for c in ranked[:top]:
            series[c] = counts[c].to_numpy()
        if len(ranked) > top:
            series["other corridors"] = counts[ranked[top:]].sum(axis=1).to_numpy()
    if "not_in_corridor" in counts.columns:
        series["not in a corridor"] = counts["not_in_corridor"].to_numpy()
    if not series:
        series["incidents"] = counts["total"].to_numpy() if "total" in counts else np.zeros(
            len(counts))
    fig = Figure(figsize=(9, 4), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    yearly = counts.index.name == "year"
    x = counts.index
    width = 300 if yearly else 25  # days
    bottom = np.zeros(len(counts))
    colors = [f"C{i}" for i in range(10)]
    for k, (name, vals) in enumerate(series.items()):
        color = "0.6" if name in ("not in a corridor", "other corridors") and k else colors[k % 10]
        ax.bar(x, vals, width=width, bottom=bottom, label=name, color=color, align="edge",
               linewidth=0)
        bottom = bottom + vals
    ax.set_ylabel("incidents per " + ("year" if yearly else "month"))
    ax.set_title(title or f"Incidents per {'year' if yearly else 'month'}")
    ax.grid(axis="y", alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8, ncol=2, frameon=False)
    fig.autofmt_xdate()
    fig.tight_layout()
    if path is None:
        return fig
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)


@dataclass(frozen=True)
class HotspotProducts:
    """What :func:`hotspot_products` computes: the density surface (incidents per km², its
    transform and CRS), the Gi* hexagons and the counts over time (None without dates)."""

    density: np.ndarray
    transform: Affine
    crs: CRS
    hexes: gpd.GeoDataFrame
    counts: pd.DataFrame | None
    bandwidth_km: float


def hotspot_products(incidents, *, study_area=None, hex_km: float = 10.0,
                     bandwidth_km: float = 10.0, cell_m: float | None = None,
                     alpha: float = 0.05, inference: str = "normal", permutations: int = 9999,
                     include_coarse: bool = False, seed: int | None = 0, crs=None,
                     progress: Callable[[str], None] | None = None) -> HotspotProducts:
    """Density surface, Gi* hot spots and counts over time (see :func:`write_hotspots`).

    The counts over time hold the incidents inside the study area when one is given
    (``counts.attrs["incidents_outside_study_area"]`` says how many are not).
    """
    step = progress or (lambda name: None)
    _check_hotspot_options(alpha, inference, permutations)
    gdf = _incident_frame(incidents)
    located = _located(gdf, include_coarse)
    if len(located) == 0:
        raise InputError(getattr(incidents, "source", None) or "incidents", "coarse",
                         "no incident with a precise location",
                         "use --include-coarse to map coarse locations too")
    step("study area")
    if study_area is None:
        crs = CRS.from_user_input(crs) if crs is not None else metric_crs(located)
        hull = shapely.convex_hull(shapely.multipoints(_xy(located, crs)))
        area_geom = shapely.buffer(hull, hex_km * 1000.0)
    else:
        area_geom, crs = _study_geometry(study_area, crs, located)
    xmin, ymin, xmax, ymax = shapely.bounds(area_geom)
    if cell_m is None:
        cell_m = max(bandwidth_km * 1000.0 / 5.0, 100.0)
        cell_m = max(cell_m, math.sqrt((xmax - xmin) * (ymax - ymin) / MAX_CELLS))
    step("density")
    dens, transform = kernel_density(located, bandwidth_km=bandwidth_km, cell_m=cell_m,
                                     bounds=(xmin, ymin, xmax, ymax), crs=crs,
                                     include_coarse=True)
    step("hot spots")
    hexes = gi_star_hexes(located, area_geom, hex_km=hex_km, alpha=alpha, inference=inference,
                          permutations=permutations, crs=crs, seed=seed, include_coarse=True)
    step("counts over time")
    counts = None
    if gdf["date"].notna().any():
        table = gdf
        if study_area is not None and "in_study_area" not in gdf.columns:
            xy = _xy(gdf, crs)
            shapely.prepare(area_geom)
            table = gdf.assign(in_study_area=shapely.contains_xy(area_geom, xy[:, 0], xy[:, 1]))
        counts = monthly_counts(table, study_area_only=study_area is not None)
        if counts.attrs.get("incidents_outside_study_area"):
            log.info("%d incident(s) outside the study area left out of the counts over time",
                     counts.attrs["incidents_outside_study_area"])
    return HotspotProducts(dens, transform, crs, hexes, counts, float(bandwidth_km))


def write_hotspot_products(products: HotspotProducts, out_dir: str | os.PathLike
                           ) -> dict[str, Path]:
    """Write ``density.tif``, ``hotspots.geojson``, ``monthly.csv`` and ``monthly.png`` into
    ``out_dir`` at once (nothing is written if a step fails)."""
    import rasterio

    dens, counts = products.density, products.counts
    with atomic_dir(out_dir) as stage:
        with rasterio.open(stage / "density.tif", "w", driver="GTiff", width=dens.shape[1],
                           height=dens.shape[0], count=1, dtype="float32",
                           crs=products.crs.to_wkt(), transform=products.transform,
                           compress="deflate", nodata=None) as dst:
            dst.write(dens, 1)
            dst.update_tags(units="incidents per km2", bandwidth_km=str(products.bandwidth_km),
                            kernel="gaussian")
        products.hexes.to_crs(4326).to_file(stage / "hotspots.geojson", driver="GeoJSON")
        if counts is not None:
            table = counts.copy()
            # A yearly table prints years ("2007"), never the 1 July a year-only date sits on.
            table.index = table.index.strftime("%Y-%m" if table.index.name == "month" else "%Y")
            table.to_csv(stage / "monthly.csv")
            plot_monthly(counts, stage / "monthly.png")
        else:
            log.warning("incidents have no dates: monthly.csv and monthly.png not written")
        names = sorted(p.name for p in stage.iterdir())
    return {n: Path(out_dir) / n for n in names}


def write_hotspots(incidents, out_dir: str | os.PathLike, *, study_area=None,
                   hex_km: float = 10.0, bandwidth_km: float = 10.0, cell_m: float | None = None,
                   alpha: float = 0.05, inference: str = "normal", permutations: int = 9999,
                   include_coarse: bool = False, seed: int | None = 0, crs=None,
                   progress: Callable[[str], None] | None = None) -> dict[str, Path]:
    """Density surface, Gi* hot spots and counts over time, written into ``out_dir``.

    Writes ``density.tif`` (incidents per km², float32 GeoTIFF in the metric CRS),
    ``hotspots.geojson`` (hexagons with count, gi_z, p_value, hot, cold; lon/lat),
    ``monthly.csv`` and ``monthly.png`` (incidents inside the study area when one is given),
    all at once (nothing is written if a step fails). :func:`hotspot_products` computes,
    :func:`write_hotspot_products` writes.

    Parameters
    ----------
    incidents
        :class:`~gapmap.incidents.Incidents` (or the per-incident table of
        :class:`~gapmap.incidents.IncidentMetrics`, which adds per-corridor columns to the
        counts over time).
    study_area
        Polygon(s) (path, GeoDataFrame); without one, the convex hull of the incidents grown
        by one hexagon.
    cell_m
        Density cell size; default a fifth of the bandwidth (at least 100 m, coarser if the
        grid would exceed :data:`MAX_CELLS`).
    alpha, inference, permutations
        As in :func:`gi_star_hexes`.

    Returns
    -------
    dict
        File name → path.

    Examples
    --------
    >>> inc = read_incidents("geodata/incidents_ucdp_ged.csv")  # doctest: +SKIP
    >>> write_hotspots(inc, "out/hot", study_area="geodata/study_area.geojson")  # doctest: +SKIP
    """
    products = hotspot_products(incidents, study_area=study_area, hex_km=hex_km,
                                bandwidth_km=bandwidth_km, cell_m=cell_m, alpha=alpha,
                                inference=inference, permutations=permutations,
                                include_coarse=include_coarse, seed=seed, crs=crs,
                                progress=progress)
    (progress or (lambda name: None))("writing")
    return write_hotspot_products(products, out_dir)
