"""Is the DEM fine enough for the question? The checks a careful analyst wants to see.

Two scales decide whether terrain says anything:

- **Line of sight**: a post that sees 5 km over 1 km cells sees across five cells; whether a
  ridge hides a valley is then decided by cell averages, not by the ridge. Visibility is taken
  as meaningless when a cell is wider than a tenth of the posts' median range
  (:data:`MIN_RANGE_CELLS` cells per range).
- **Corridors**: slope, ruggedness (TRI) and crossing time of a corridor are read from the
  cells between the two sides; a corridor narrower than :data:`MIN_CELLS_ACROSS` cells rests on
  its edge cells only.

Each problem is told once per DEM (the grid a run reads once): the viewsheds of many posts,
the copies of an uncertainty run or a placement over the same grid do not repeat it. The
notices are :class:`gapmap.errors.ResolutionWarning` (a :class:`~gapmap.errors.ResultWarning`).

Examples
--------
>>> print(posts_problem(900.0, [5000.0, 5000.0]))
cells of 900 m are more than a tenth of the posts' median range (5 km): visibility is meaningless at that scale; use a finer DEM
>>> posts_problem(30.0, [5000.0]) is None
True
>>> corridors_problem(900.0, [1.5, 10.0])
'1 of 2 corridors narrower than 3 cells of 900 m (2.7 km; the median corridor is 5.75 km wide, 6.4 cells): their slope, ruggedness and crossing time rest on a few cells; use a finer DEM'
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Sequence

import numpy as np

from .errors import ResolutionWarning

__all__ = ["MIN_RANGE_CELLS", "MIN_CELLS_ACROSS", "posts_problem", "corridors_problem",
           "warn_posts", "check_resolution"]

#: Cells a post's (median) range must span for line of sight to mean something.
MIN_RANGE_CELLS = 10
#: Cells a corridor must span across (its mean width) for its terrain fields to mean something.
MIN_CELLS_ACROSS = 3

# Messages already given, per DEM grid (keyed by its root array; forgotten with the grid).
_SPOKEN: dict[int, set[str]] = {}


def posts_problem(cell_m: float, ranges_m: Sequence[float] | np.ndarray) -> str | None:
    """The notice for cells wider than a tenth of the median range (``None`` when fine)."""
    r = np.asarray(ranges_m, dtype=float)
    r = r[np.isfinite(r)]
    if len(r) == 0 or not cell_m > 0:
        return None
    median_m = float(np.median(r))
    if median_m > 0 and cell_m * MIN_RANGE_CELLS > median_m:
        return (f"cells of {cell_m:,.0f} m are more than a tenth of the posts' median range "
                f"({median_m / 1000:g} km): visibility is meaningless at that scale; use a "
                "finer DEM")
    return None


def corridors_problem(cell_m: float, widths_km: Sequence[float] | np.ndarray) -> str | None:
    """The notice for corridors narrower than :data:`MIN_CELLS_ACROSS` cells (or ``None``)."""
    w = np.asarray(widths_km, dtype=float)
    w = w[np.isfinite(w)]
    if len(w) == 0 or not cell_m > 0:
        return None
    limit_km = MIN_CELLS_ACROSS * cell_m / 1000.0
    narrow = int((w < limit_km).sum())
    if narrow == 0:
        return None
    median_km = float(np.median(w))
    # The median says whether the DEM fails the analysis as a whole or a few narrow corridors.
    return (f"{narrow} of {len(w)} corridors narrower than {MIN_CELLS_ACROSS} cells of "
            f"{cell_m:,.0f} m ({limit_km:g} km; the median corridor is {median_km:.3g} km wide, "
            f"{median_km * 1000.0 / cell_m:.1f} cells): their slope, ruggedness and crossing "
            "time rest on a few cells; use a finer DEM")


def _root(array: np.ndarray) -> np.ndarray:
    while isinstance(getattr(array, "base", None), np.ndarray):
        array = array.base
    return array


def _tell_once(dem, message: str, source: str | None) -> bool:
    """Warn with ``message`` unless it was already given for this DEM grid."""
    root = _root(dem.array)
    key = id(root)
    spoken = _SPOKEN.get(key)
    if spoken is None:
        spoken = _SPOKEN[key] = set()
        weakref.finalize(root, _SPOKEN.pop, key, None)
    if message in spoken:
        return False
    spoken.add(message)
    warnings.warn(f"{source or dem.source or 'DEM'}: {message}", ResolutionWarning,
                  stacklevel=4)
    return True


def warn_posts(dem, ranges_m: Sequence[float] | np.ndarray, source: str | None = None) -> bool:
    """Warn (once per DEM grid) when its cells are too coarse for posts of these ranges (m).

    Returns whether a warning was given now.
    """
    message = posts_problem(float(dem.res_m), ranges_m)
    return message is not None and _tell_once(dem, message, source)


def check_resolution(analysis, dem=None, *, visibility: bool = False) -> list[str]:
    """Warn about a DEM too coarse for the analysis' posts (when ``visibility``) or corridors.

    Parameters
    ----------
    analysis
        A :class:`gapmap.Analysis`.
    dem
        The run's :class:`gapmap.terrain.Dem` [``analysis.dem``]; nothing to check without one.
    visibility
        Whether the posts cover by line of sight (the posts' check applies only then).

    Returns
    -------
    list of str
        The notices that apply (each also warned, once per DEM grid, as
        :class:`gapmap.errors.ResolutionWarning`).
    """
    dem = dem if dem is not None else getattr(analysis, "dem", None)
    if dem is None:
        return []
    cell_m = float(dem.res_m)
    found = []
    posts = analysis.posts
    if visibility and posts is not None and len(posts) and "range_km" in posts.columns:
        message = posts_problem(cell_m, posts["range_km"].to_numpy(float) * 1000.0)
        if message is not None:
            found.append(message)
            _tell_once(dem, message, None)
    corridors = analysis.corridors
    if corridors is not None and len(corridors) and "width_mean_km" in corridors.columns:
        message = corridors_problem(cell_m, corridors["width_mean_km"].to_numpy(float))
        if message is not None:
            found.append(message)
            _tell_once(dem, message, None)
    return found
