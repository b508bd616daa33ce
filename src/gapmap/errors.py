"""Errors raised for bad input.

Every problem a user can fix by changing their input raises :class:`InputError`, whose message is
one line naming the file, the field and the fix. The CLI turns it into exit code 2. A failure to
write outputs (disk full, read-only folder, permission) raises :class:`OutputError`: exit code 1,
one line, the previous result left as it was.

Notices go through :class:`GapmapWarning` and its subclasses, one channel a user can filter:

>>> import warnings
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     warnings.warn("3 events dated only to their year", DatePrecisionWarning)
>>> issubclass(caught[0].category, GapmapWarning)
True
"""

from __future__ import annotations

from os import PathLike

__all__ = [
    "GapmapError", "InputError", "OutputError",
    "GapmapWarning", "InputWarning", "DatePrecisionWarning", "ProjectionWarning",
    "ResultWarning", "ResolutionWarning",
]


class GapmapError(Exception):
    """Base class of gapmap's own errors."""


class InputError(GapmapError, ValueError):
    """Bad input: a file, a field or a parameter that gapmap cannot use.

    Parameters
    ----------
    source
        The file (or option) that holds the problem.
    field
        The field, column, band or option at fault; ``None`` when the file as a whole is at fault.
    problem
        What is wrong, in a few words.
    fix
        What the user should do about it.

    Examples
    --------
    >>> str(InputError("zones.geojson", "force", "column not found", "pass --force-field NAME"))
    'zones.geojson: force: column not found — pass --force-field NAME'
    """

    def __init__(
        self,
        source: str | PathLike | None,
        field: str | None,
        problem: str,
        fix: str | None = None,
    ) -> None:
        self.source = None if source is None else str(source)
        self.field = field
        self.problem = problem
        self.fix = fix
        super().__init__(self._message())

    def _message(self) -> str:
        parts = [p for p in (self.source, self.field) if p]
        head = ": ".join(parts + [self.problem])
        text = f"{head} — {self.fix}" if self.fix else head
        return " ".join(text.split())  # always one line


class OutputError(GapmapError, OSError):
    """Outputs could not be written (disk full, read-only, permission, not a folder).

    The message is one line naming the path and what to do; the CLI exits with code 1 and the
    previous result in ``--out`` is left untouched.

    Examples
    --------
    >>> str(OutputError("out/run1", "no space left on device", "free some space"))
    'out/run1: no space left on device — free some space'
    """

    def __init__(self, path: str | PathLike | None, problem: str, fix: str | None = None) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        self.fix = fix
        head = ": ".join(p for p in (self.path, problem) if p)
        text = f"{head} — {fix}" if fix else head
        super().__init__(" ".join(text.split()))


class GapmapWarning(UserWarning):
    """Base class of every notice gapmap gives (filter them all with this class)."""


class InputWarning(GapmapWarning):
    """Input that gapmap uses but that looks wrong or was partly left out (repaired
    geometries, posts of third forces, duplicate event ids, swapped coordinates …)."""


class DatePrecisionWarning(GapmapWarning):
    """Events whose date is known only coarser than a period asked for were counted apart."""


class ProjectionWarning(GapmapWarning):
    """The analysis CRS or a layer's CRS may distort the figures."""


class ResultWarning(GapmapWarning):
    """A figure that may not mean what it seems (no seam, nothing significant, too coarse)."""


class ResolutionWarning(ResultWarning):
    """The DEM is too coarse for what is asked of it: cells wider than a tenth of the posts'
    range (line of sight meaningless) or corridors only a few cells across (terrain fields
    rest on a handful of cells). See :mod:`gapmap.resolution`."""
