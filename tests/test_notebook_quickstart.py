"""The quick-start notebook runs from top to bottom on the sample and shows what it says."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "01_quickstart.ipynb"


@pytest.mark.slow
def test_quickstart_notebook_runs(monkeypatch):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    shown = "\n".join(o.get("data", {}).get("text/plain", "") for o in outputs)
    assert "seam_length_km" in shown and "unguarded_share" in shown  # the summary
    assert "corridor_id" in shown and "C1" in shown  # the corridor table
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the map
    assert (ROOT / "out" / "notebook01" / "summary.json").exists()
