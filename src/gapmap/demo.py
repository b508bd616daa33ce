"""The demo run on the shipped sample (``geodata/``): every stage, every output."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .corridors import Analysis
from .errors import InputError
from .outputs import write_metrics
from .scenario import load_scenario, run_scenario

__all__ = ["DemoResult", "run_demo", "sample_data_dir"]

log = logging.getLogger(__name__)


def sample_data_dir() -> Path:
    """The ``geodata/`` folder of the source tree (or ``$GAPMAP_DATA``)."""
    env = os.environ.get("GAPMAP_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "geodata"


@dataclass(frozen=True)
class DemoResult:
    analysis: Analysis
    files: dict = field(default_factory=dict)


def run_demo(out_dir: str | os.PathLike, *, data_dir: str | os.PathLike | None = None,
             quick: bool = False, progress: Callable[[str], None] | None = None) -> DemoResult:
    """Run the sample scenario and write all outputs into ``out_dir``.

    Examples
    --------
    >>> res = run_demo("out/demo")  # doctest: +SKIP
    >>> sorted(res.files)[:3]  # doctest: +SKIP
    """
    data = Path(data_dir) if data_dir is not None else sample_data_dir()
    scenario_file = data / "scenario.toml"
    if not scenario_file.exists():
        raise InputError(scenario_file, None, "sample scenario not found",
                         "run from a gapmap source checkout or pass --data DIR")
    out = Path(out_dir)
    step = progress or (lambda name: None)
    overrides = {"dem": None} if quick else {}
    sc = load_scenario(scenario_file)
    if quick:
        import dataclasses

        sc = dataclasses.replace(sc, dem=None, visibility=False)
    result = run_scenario(sc, progress=step)
    step("writing")
    files = {k: v for k, v in write_metrics(result, out).items()}
    del overrides
    return DemoResult(result, files)
