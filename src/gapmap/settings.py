"""Settings and sides: the parameters of an analysis, as frozen dataclasses."""

from __future__ import annotations

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

    Examples
    --------
    A per-side reach overrides the common one for that side only:

    >>> s = Settings(reach_km=2, reach_b_km=5)
    >>> s.reach_a, s.reach_b
    (2, 5)

    Settings are checked when made:

    >>> Settings(max_width_km=-1)
    Traceback (most recent call last):
    ...
    gapmap.errors.InputError: max_width_km: must be a number ≥ 0, got -1 — give --max-width-km a non-negative value
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
        for name in ("reach_km", "max_width_km", "min_length_km", "post_range_km",
                     "post_height_m", "target_height_m"):
            value = getattr(self, name)
            if value is None or not (float(value) >= 0):
                raise InputError(None, name, f"must be a number ≥ 0, got {value!r}",
                                 f"give --{name.replace('_', '-')} a non-negative value")
        if not self.spacing_m > 0:
            raise InputError(None, "spacing_m", f"must be > 0, got {self.spacing_m!r}",
                             "give --spacing-m a positive value")
        if not self.max_width_km > 0:
            raise InputError(None, "max_width_km", "must be > 0", "give --max-width-km a positive value")

    @property
    def reach_a(self) -> float:
        return self.reach_km if self.reach_a_km is None else self.reach_a_km

    @property
    def reach_b(self) -> float:
        return self.reach_km if self.reach_b_km is None else self.reach_b_km

    def as_dict(self) -> dict:
        return asdict(self)
