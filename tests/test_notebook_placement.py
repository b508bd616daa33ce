"""The placement notebook runs from top to bottom on the sample and says what it should."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "04_placement.ipynb"


@pytest.mark.slow
def test_placement_notebook_runs(monkeypatch):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "\n".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    # The three placements were printed, each with before/after figures and a statement.
    assert text.count("unguarded before") == 3 and text.count("unguarded after") == 3
    assert "proven optimal" in text
    # The map was drawn.
    assert any("image/png" in o.get("data", {}) for o in outputs)
    # What it saved matches what it printed.
    doc = json.loads((ROOT / "out" / "notebook04" / "placement.json").read_text())
    assert doc["sites_placed"] == 4 and doc["k"] == 4
    assert doc["unguarded_after_km"] < doc["unguarded_before_km"]
    assert f"{doc['unguarded_after_km']:10.1f} km" in text
