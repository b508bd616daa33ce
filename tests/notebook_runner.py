"""Execute a notebook of notebooks/ from the repository root and collect what it showed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Ran:
    outputs: list
    text: str  # printed (stream) output
    shown: str  # text/plain of displayed values
    images: int  # PNG figures shown


def run_notebook(name: str, monkeypatch, timeout_s: int = 600) -> Ran:
    """Run ``notebooks/<name>`` top to bottom; fail on any cell error."""
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    NotebookClient(nb, timeout=timeout_s, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, errors[0].get("evalue")
    return Ran(
        outputs=outputs,
        text="\n".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream"),
        shown="\n".join(o.get("data", {}).get("text/plain", "") for o in outputs),
        images=sum("image/png" in o.get("data", {}) for o in outputs),
    )
