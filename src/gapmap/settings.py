"""Settings and sides: the parameters of an analysis, as frozen dataclasses."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from .errors import InputError

__all__ = ["Side", "Settings", "parse_side"]


@dataclass(frozen=True)
class Side:
    """A named group of forces that cooperate.

    Examples
    --------
    >>> Side("federal", ("isf", "pmf")).forces
    ('isf', 'pmf')
    """

    name: str
    forces: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.name or not self.forces:
            raise InputError(None, "side", f"side {self.name!r} has no name or no forces",
                             "write sides as NAME=force1,force2")
        object.__setattr__(self, "forces", tuple(str(f).strip().lower() for f in self.forces))


def parse_side(text: str, option: str = "--side") -> Side:
    """Parse ``NAME=force1,force2`` into a :class:`Side`.

    Examples
    --------
    >>> parse_side("federal=isf,pmf")
    Side(name='federal', forces=('isf', 'pmf'))
    """
    name, sep, forces = str(text).partition("=")
    items = tuple(f.strip() for f in forces.split(",") if f.strip())
    if not sep or not name.strip() or not items:
        raise InputError(option, None, f"cannot read side {text!r}",
                         "write it as NAME=force1,force2, e.g. krg=peshmerga")
    return Side(name.strip(), items)


#: Accepted range of each numeric setting: (low, high, low excluded).
LIMITS: dict[str, tuple[float, float, bool]] = {
    "reach_km": (0.0, 1000.0, False),
    "reach_a_km": (0.0, 1000.0, False),
    "reach_b_km": (0.0, 1000.0, False),
    "max_width_km": (0.0, 5000.0, True),
    "min_length_km": (0.0, 5000.0, False),
    "spacing_m": (1.0, 100_000.0, False),
    "post_range_km": (0.0, 1000.0, False),
    "post_height_m": (0.0, 10_000.0, False),
    "target_height_m": (0.0, 10_000.0, False),
}


#: Settings that the analysis commands take as options (the others come from scenario files).
_CLI_OPTIONS = {"reach_km", "max_width_km", "min_length_km", "spacing_m"}


def _check_limit(name: str, value, low: float, high: float, low_open: bool) -> None:
    unit = name.rsplit("_", 1)[-1]
    rng = f"{'above' if low_open else 'from'} {low:g} {'and up' if low_open else ''} to {high:,g}"
    rng = f"{' '.join(rng.split())} {unit}"
    if name in _CLI_OPTIONS:
        fix = f"give --{name.replace('_', '-')} (or {name} in a scenario) a number {rng}"
    else:
        fix = f"set {name} under [parameters] in the scenario to a number {rng}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(None, name, f"must be a number, got {value!r}", fix)
    if not math.isfinite(value):
        raise InputError(None, name, f"must be a finite number, got {value}", fix)
    if value < low or (low_open and value == low) or value > high:
        raise InputError(None, name, f"out of range, got {value:g}", fix)


@dataclass(frozen=True)
class Settings:
    """Parameters of the seam and corridor metrics (see docs/metrics.md).

    Parameters
    ----------
    reach_km
        How far from its zone edge each side guards (both sides), km.
    reach_a_km, reach_b_km
        Per-side reach, overriding ``reach_km`` when given.
    max_width_km
        Seam points where the two sides are further apart than this are not seam.
    min_length_km
        Corridors shorter than this are dropped from the table but counted.
    spacing_m
        Sampling interval along the seam when visibility is on, m.
    post_range_km, post_height_m
        Defaults for posts that carry no ``range_km`` / ``height_m``.
    target_height_m
        Height above ground of what a post must see, m.
    crs
        Analysis CRS (anything pyproj accepts); ``None`` chooses a metric CRS automatically.

    Every number must be finite and within :data:`LIMITS` (an :class:`InputError` names the
    parameter otherwise): reaches and post ranges up to 1,000 km (beyond the horizon of any
    post and of the local metric CRS), widths and lengths up to 5,000 km, heights up to
    10,000 m, seam spacing from 1 m to 100 km.

    Examples
    --------
    >>> Settings(reach_km=3.0).reach_b
    3.0

    A per-side reach overrides the common one for that side only:

    >>> s = Settings(reach_km=2, reach_b_km=5)
    >>> s.reach_a, s.reach_b
    (2, 5)

    >>> Settings(reach_km=float("inf"))
    Traceback (most recent call last):
    ...
    gapmap.errors.InputError: reach_km: must be a finite number, got inf — give --reach-km (or reach_km in a scenario) a number from 0 to 1,000 km
    """

    reach_km: float = 2.0
    reach_a_km: float | None = None
    reach_b_km: float | None = None
    max_width_km: float = 150.0
    min_length_km: float = 1.0
    spacing_m: float = 250.0
    post_range_km: float = 5.0
    post_height_m: float = 10.0
    target_height_m: float = 2.0
    crs: str | None = None

    def __post_init__(self) -> None:
        for name, (low, high, low_open) in LIMITS.items():
            value = getattr(self, name)
            if value is None and name in ("reach_a_km", "reach_b_km"):
                continue
            _check_limit(name, value, low, high, low_open)
        if self.crs is not None and not isinstance(self.crs, (str, int)):
            raise InputError(None, "crs", f"must be text such as 'EPSG:32638', got {self.crs!r}",
                             "give --crs a CRS string, e.g. EPSG:32638")

    @property
    def reach_a(self) -> float:
        return self.reach_km if self.reach_a_km is None else self.reach_a_km

    @property
    def reach_b(self) -> float:
        return self.reach_km if self.reach_b_km is None else self.reach_b_km

    def as_dict(self) -> dict:
        return asdict(self)
