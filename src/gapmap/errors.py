"""Errors raised for bad input.

Every problem a user can fix by changing their input raises :class:`InputError`, whose message is
one line naming the file, the field and the fix. The CLI turns it into exit code 2.
"""

from __future__ import annotations

from os import PathLike

__all__ = ["GapmapError", "InputError"]


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
