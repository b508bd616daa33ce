"""Helpers shared by the benchmarks: best-of-N timing and peak memory as the OS reports it.

Every ``bench_*.py`` runs as a script from ``bench/`` (``make bench`` runs them in turn), so
this module is imported as ``_util``. Importing it also puts the repository root on
``sys.path``, so benchmarks build their scenes with the tests' builders (``tests/scenes.py``)
instead of typing them out again.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

__all__ = ["ROOT", "best_of", "best_run", "own_peak_mb", "peak_rss_mb"]


def best_run(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Run ``fn`` ``repeat`` times; return the fastest wall time (s) and the last result.

    The minimum is the least disturbed by other load on a shared machine.

    Examples
    --------
    >>> seconds, out = best_run(lambda: sum(range(1000)), 3)
    >>> out, seconds >= 0
    (499500, True)
    """
    best, out = float("inf"), None
    for _ in range(max(int(repeat), 1)):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def best_of(fn: Callable[[], Any], repeat: int) -> float:
    """The fastest wall time (s) of ``repeat`` runs of ``fn``."""
    return best_run(fn, repeat)[0]


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident memory (MB) of this process, or of its waited-for children, from the OS.

    ``getrusage``'s ``ru_maxrss`` is in KiB on Linux. It never decreases, so a figure belongs to
    one measurement only when that measurement runs in its own process.
    """
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024.0


def vm_kb(field_name: str = "VmHWM") -> int:
    """``VmHWM`` (peak) or ``VmRSS`` (now) of this process, in KiB, from /proc/self/status."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return -1


def own_peak_mb() -> float:
    """This process's own peak RSS (``VmHWM`` of /proc/self/status, MB). ``ru_maxrss`` of a
    child keeps the peak of the parent it was forked from (one that built a large DEM, say),
    so it would report the parent's figure; that is the fallback where /proc is missing."""
    try:
        kb = vm_kb("VmHWM")
    except OSError:
        kb = -1
    return kb / 1024.0 if kb >= 0 else peak_rss_mb()
