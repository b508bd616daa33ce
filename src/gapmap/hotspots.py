"""Where and when incidents cluster: kernel density, Gi* hot spots on hexagons, monthly counts.

- :func:`kernel_density`: a Gaussian kernel density surface (incidents per km²), computed as a
  count grid smoothed with :func:`scipy.ndimage.gaussian_filter`. This equals a Gaussian KDE
  with standard deviation ``bandwidth_km`` evaluated at the cell centres, with each incident
  moved to the centre of its cell (an error of at most half a cell, small when
  ``cell_m`` ≪ bandwidth), at the cost of one pass over the points and one FFT-free filter.
- :func:`gi_star_hexes`: a hexagonal grid over the study area, incidents counted per hexagon,
  Getis–Ord Gi* (:class:`esda.G_Local` with ``star=True``, binary weights of the six
  neighbours from :class:`libpysal.weights.DistanceBand`), permutation p-values controlled for
  the false discovery rate with :func:`esda.fdr`.
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
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from rasterio.transform import Affine, from_origin
from scipy import ndimage

from .crs import metric_crs
from .errors import InputError
from .io import atomic_dir, atomic_path, load_study_area

__all__ = ["kernel_density", "hex_grid", "gi_star_hexes", "monthly_counts", "plot_monthly",
           "write_hotspots", "MAX_CELLS"]

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


def gi_star_hexes(incidents, study_area, *, hex_km: float = 10.0, permutations: int = 999,
                  alpha: float = 0.05, crs=None, seed: int | None = 0,
                  include_coarse: bool = False) -> gpd.GeoDataFrame:
    """Getis–Ord Gi* hot and cold spots of incident counts on a hexagonal grid.

    Parameters
    ----------
    incidents
        :class:`~gapmap.incidents.Incidents` or a point GeoDataFrame.
    study_area
        Polygon(s): a shapely geometry in ``crs``, or a GeoDataFrame / GeoSeries / path.
    hex_km
        Distance between neighbouring hexagon centres, km (see :func:`hex_grid`).
    permutations
        Conditional permutations for the pseudo p-values. The smallest attainable p-value is
        ``1 / (permutations + 1)``; with many hexagons, FDR control needs more permutations
        than hexagons ÷ alpha to find isolated hot spots (a warning says so).
    alpha
        False discovery rate (Benjamini–Hochberg, :func:`esda.fdr`).
    crs
        Metric CRS of the grid; chosen from the data when omitted.
    seed
        Seed of the permutations (results are reproducible by default).
    include_coarse
        Also count incidents with coarse locations.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per hexagon in ``crs``: ``hex_id``, ``count``, ``gi_z`` (standardised Gi*),
        ``p_sim`` (permutation p-value, one-sided towards the observed extreme), ``hot``,
        ``cold`` (bool: significant after FDR control, with positive / negative ``gi_z``).
        ``p_sim`` is the smaller of the two one-sided permutation p-values, ties counted in
        both tails (see :func:`_gi_star_permutations`).
        ``attrs["fdr_p"]`` holds the p-value cut-off.

    Examples
    --------
    >>> hexes = gi_star_hexes(inc, "geodata/study_area.geojson", hex_km=10)  # doctest: +SKIP
    >>> hexes.loc[hexes.hot, ["hex_id", "count", "gi_z"]]  # doctest: +SKIP
    """
    import esda
    from libpysal.weights import DistanceBand

    if not (0 < alpha < 1):
        raise InputError("--alpha", None, f"must be between 0 and 1, got {alpha!r}",
                         "give e.g. 0.05")
    if int(permutations) < 1:
        raise InputError("--permutations", None, "must be at least 1", "give e.g. 999")
    gdf = _located(_incident_frame(incidents), include_coarse)
    area_geom, crs = _study_geometry(study_area, crs, gdf)
    hexes = hex_grid(area_geom, hex_km).values
    out = gpd.GeoDataFrame({"hex_id": np.arange(1, len(hexes) + 1)}, geometry=hexes, crs=crs)
    n = len(hexes)
    counts = np.zeros(n, dtype=np.int64)
    xy = _xy(gdf, crs)
    if n and len(xy):
        tree = shapely.STRtree(hexes)
        pi, hi = tree.query(shapely.points(xy), predicate="intersects")
        _, first = np.unique(pi, return_index=True)  # a point on a shared edge counts once
        counts = np.bincount(hi[first], minlength=n)
    out["count"] = counts
    out["gi_z"] = np.nan
    out["p_sim"] = np.nan
    out["hot"] = False
    out["cold"] = False
    out.attrs["fdr_p"] = float("nan")
    if n < 2 or np.all(counts == counts[0]):
        log.warning("Gi*: %d hexagon(s), %s; no hot spots computed", n,
                    "all with the same count" if n else "no study area")
        return out
    centres = shapely.get_coordinates(shapely.centroid(hexes))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # islands (isolated hexagons) are expected at edges
        w = DistanceBand.from_array(centres, threshold=hex_km * 1000.0 * 1.01, binary=True,
                                    silence_warnings=True)
        neighbours = w.sparse.tocsr()  # the six neighbours, no self-weight
        g = esda.G_Local(counts.astype(float), w, transform="B", star=True, permutations=0)
    if (permutations + 1) * alpha < n:
        # The smallest permutation p-value, 1/(permutations + 1), cannot pass the
        # Benjamini–Hochberg cut-off for a single hot spot (alpha / n).
        log.warning("Gi*: %d permutations are too few for %d hexagons at FDR %.2g (a lone hot "
                    "spot needs p < %.2g); use at least %d", permutations, n, alpha, alpha / n,
                    int(math.ceil(n / alpha)))
    z = np.asarray(g.Zs, dtype=float)
    sims = _gi_star_permutations(counts.astype(float), neighbours, int(permutations), seed)
    observed = np.asarray(g.Gs, dtype=float)[:, None]
    eps = 1e-12 * max(float(observed.max()), 1.0)  # equal sums must count as ties
    p_high = ((sims >= observed - eps).sum(axis=1) + 1.0) / (permutations + 1.0)
    p_low = ((sims <= observed + eps).sum(axis=1) + 1.0) / (permutations + 1.0)
    p = np.minimum(np.minimum(p_high, p_low), 1.0)
    cut = float(esda.fdr(p, alpha))
    sig = p < cut
    out["gi_z"] = z
    out["p_sim"] = p
    out["hot"] = sig & (z > 0) & (p_high < p_low)
    out["cold"] = sig & (z < 0) & (p_low < p_high)
    out.attrs["fdr_p"] = cut
    log.info("Gi*: %d hexagons, %d hot, %d cold (FDR %.2g, p < %.3g)", n,
             int(out["hot"].sum()), int(out["cold"].sum()), alpha, cut)
    return out


def _gi_star_permutations(y: np.ndarray, neighbours, permutations: int,
                          seed: int | None) -> np.ndarray:
    """Gi* of each site under conditional randomisation, shape (n, permutations).

    The site keeps its own value; its neighbours' values are drawn without replacement from
    the other n − 1 sites (Anselin 1995), one draw of ids shared by all sites as in esda.
    Binary weights with self-weight 1: ``G*_i = (y_i + Σ_neighbours y) / Σ y``.

    esda's compiled version of this loop costs about half a minute of compilation in every
    new process; in numpy it runs in a second for thousands of hexagons. Its folded p-value
    also counts ties with the upper tail only, which makes an empty hexagon amid empty
    neighbours a significant cold spot when most hexagons are empty; the caller counts ties
    in both tails.
    """
    n = len(y)
    card = np.diff(neighbours.indptr)
    kmax = int(card.max()) if n else 0
    rng = np.random.default_rng(seed)
    total = float(y.sum())
    if kmax == 0 or permutations == 0:
        return np.repeat((y / total)[:, None], max(permutations, 0), axis=1)
    # One set of draws from range(n − 1) (per permutation, without replacement); for site i,
    # id j ≥ i stands for j + 1, which skips the site itself.
    ids = np.stack([rng.choice(n - 1, size=kmax, replace=False) for _ in range(permutations)])
    take = np.arange(kmax)[None, None, :]
    out = np.empty((n, permutations))
    chunk = max(1, 4_000_000 // (permutations * kmax))
    for start in range(0, n, chunk):  # bounded memory: a few million draws at a time
        i = np.arange(start, min(start + chunk, n))
        j = ids[None, :, :] + (ids[None, :, :] >= i[:, None, None])
        vals = np.where(take < card[i][:, None, None], y[j], 0.0)
        out[i] = (y[i][:, None] + vals.sum(axis=2)) / total
    return out


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


def monthly_counts(table, *, freq: str = "auto", by: str = "corridor_id") -> pd.DataFrame:
    """Incidents per month (or year) and per corridor.

    Parameters
    ----------
    table
        The per-incident table of :class:`~gapmap.incidents.IncidentMetrics` (with
        ``corridor_id``), :class:`~gapmap.incidents.Incidents`, or any frame with ``date``.
    freq
        ``"month"``, ``"year"`` or ``"auto"``: monthly, unless some dates are known only to
        the year (UCDP GED yearly files), where monthly counts would pile a year's events on
        1 July — then yearly, with a warning.
    by
        Column naming the corridor of each incident (NaN outside corridors).

    Returns
    -------
    pandas.DataFrame
        Index: the first day of each period from the first to the last (named ``month`` or
        ``year``, every period present, zeros included). Columns: one per corridor (in
        corridor order), ``not_in_corridor``, then ``total``; just ``total`` without
        corridors. Incidents without a date are not counted (logged).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"date": pd.to_datetime(["2020-01-05", "2020-03-01", "2020-03-09"]),
    ...                   "corridor_id": ["C1", None, "C1"]})
    >>> monthly_counts(t).to_dict("list")
    {'C1': [1, 0, 1], 'not_in_corridor': [0, 0, 1], 'total': [1, 0, 2]}
    """
    df = getattr(table, "gdf", table)
    if "date" not in df.columns:
        raise InputError(getattr(df, "attrs", {}).get("source", "incidents"), "date",
                         "incidents have no date column", "give incidents with dates")
    f = str(freq).lower()
    if f not in ("auto", "month", "year", "m", "y", "ms", "ys"):
        raise InputError("freq", None, f"unknown frequency {freq!r}", "use month, year or auto")
    yearly = "date_precision" in df.columns and (df["date_precision"] == "year").any()
    if f == "auto":
        f = "year" if yearly else "month"
        if yearly:
            log.warning("some incident dates are known only to the year: counting per year")
    f = "year" if f in ("year", "y", "ys") else "month"
    dates = pd.to_datetime(df["date"])
    has = dates.notna().to_numpy()
    if (~has).any():
        log.info("%d incident(s) without a date left out of the counts", int((~has).sum()))
    dates = dates[has]
    period = dates.dt.to_period("M" if f == "month" else "Y").dt.start_time
    corr = df.loc[has, by] if by in df.columns else None
    if len(period) == 0:
        idx = pd.DatetimeIndex([], name=f)
        return pd.DataFrame({"total": pd.Series(dtype=int)}, index=idx)
    full = pd.date_range(period.min(), period.max(), freq="MS" if f == "month" else "YS",
                         name=f)
    out = pd.DataFrame(index=full)
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


def write_hotspots(incidents, out_dir: str | os.PathLike, *, study_area=None,
                   hex_km: float = 10.0, bandwidth_km: float = 10.0, cell_m: float | None = None,
                   permutations: int = 999, alpha: float = 0.05, include_coarse: bool = False,
                   seed: int | None = 0, crs=None,
                   progress: Callable[[str], None] | None = None,
                   hexes: gpd.GeoDataFrame | None = None,
                   monthly: pd.DataFrame | None = None) -> dict[str, Path]:
    """Density surface, Gi* hot spots and counts over time, written into ``out_dir``.

    Writes ``density.tif`` (incidents per km², float32 GeoTIFF in the metric CRS),
    ``hotspots.geojson`` (hexagons with count, gi_z, p_sim, hot, cold; lon/lat),
    ``monthly.csv`` and ``monthly.png``, all at once (nothing is written if a step fails).

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
    hexes, monthly
        The Gi* hexagons and the counts over time when already computed (by
        :class:`gapmap.Run`): written as they are instead of computed again.

    Returns
    -------
    dict
        File name → path.

    Examples
    --------
    >>> inc = read_incidents("geodata/incidents_ucdp_ged.csv")  # doctest: +SKIP
    >>> write_hotspots(inc, "out/hot", study_area="geodata/study_area.geojson")  # doctest: +SKIP
    """
    step = progress or (lambda name: None)
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
    if hexes is None:
        hexes = gi_star_hexes(located, area_geom, hex_km=hex_km, permutations=permutations,
                              alpha=alpha, crs=crs, seed=seed, include_coarse=True)
    step("counts over time")
    counts = monthly
    if counts is None:
        counts = monthly_counts(gdf) if gdf["date"].notna().any() else None
    step("writing")
    import rasterio

    names = []
    with atomic_dir(out_dir) as stage:
        with rasterio.open(stage / "density.tif", "w", driver="GTiff", width=dens.shape[1],
                           height=dens.shape[0], count=1, dtype="float32", crs=crs.to_wkt(),
                           transform=transform, compress="deflate", nodata=None) as dst:
            dst.write(dens, 1)
            dst.update_tags(units="incidents per km2", bandwidth_km=str(bandwidth_km),
                            kernel="gaussian")
        hx = hexes.to_crs(4326)
        hx.to_file(stage / "hotspots.geojson", driver="GeoJSON")
        if counts is not None:
            table = counts.copy()
            table.index = table.index.strftime("%Y-%m" if table.index.name == "month" else "%Y")
            table.to_csv(stage / "monthly.csv")
            plot_monthly(counts, stage / "monthly.png")
        else:
            log.warning("incidents have no dates: monthly.csv and monthly.png not written")
        names = sorted(p.name for p in stage.iterdir())
    return {n: Path(out_dir) / n for n in names}
