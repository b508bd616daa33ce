"""The ``gapmap`` command."""
from ._common import main

__all__ = ["main"]
