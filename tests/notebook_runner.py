"""Execute a notebook of notebooks/ in a scratch folder and collect what it showed.

The notebooks read ``geodata/…`` and write ``out/…`` relative to the working directory. They run
in a temporary folder holding only a link to the repository's ``geodata/``, so what a test
reads back was written by this run, never left over by an earlier one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]

_NUMBER = r"[-+]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?"


@dataclass(frozen=True)
class Ran:
    outputs: list
    text: str  # printed (stream) output
    shown: str  # text/plain of displayed values
    images: int  # PNG figures shown
    cwd: Path  # the folder it ran in (its out/ is there)

    def number(self, pattern: str, source: str = "text") -> float:
        """The number captured where ``{}`` stands in ``pattern`` (a regular expression).

        Fails when the pattern is not found: the notebook stopped saying what it measured.
        """
        where = getattr(self, source)
        m = re.search(pattern.replace("{}", f"({_NUMBER})"), where)
        assert m, f"{pattern!r} not found in the notebook's {source}"
        return float(m.group(1).replace(",", ""))

    def numbers(self, pattern: str, source: str = "text") -> list[float]:
        """Every number captured where each ``{}`` stands in ``pattern``."""
        where = getattr(self, source)
        m = re.search(pattern.replace("{}", f"({_NUMBER})"), where)
        assert m, f"{pattern!r} not found in the notebook's {source}"
        return [float(g.replace(",", "")) for g in m.groups()]


def run_notebook(name: str, monkeypatch, cwd: Path, timeout_s: int = 600) -> Ran:
    """Run ``notebooks/<name>`` top to bottom in ``cwd``; fail on any cell error."""
    monkeypatch.setenv("MPLBACKEND", "Agg")
    cwd = Path(cwd)
    (cwd / "geodata").symlink_to(ROOT / "geodata", target_is_directory=True)
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    NotebookClient(nb, timeout=timeout_s, kernel_name="python3",
                   resources={"metadata": {"path": str(cwd)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, errors[0].get("evalue")
    return Ran(
        outputs=outputs,
        text="\n".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream"),
        shown="\n".join(o.get("data", {}).get("text/plain", "") for o in outputs),
        images=sum("image/png" in o.get("data", {}) for o in outputs),
        cwd=cwd,
    )
