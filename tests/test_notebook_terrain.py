"""The terrain notebook (notebooks/02_terrain.ipynb) runs from top to bottom on the sample."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "02_terrain.ipynb"


@pytest.mark.slow
def test_terrain_notebook_runs(monkeypatch):
    assert (ROOT / "geodata" / "dem_synthetic.tif").exists(), "sample data missing: geodata/"
    nb = nbformat.read(NOTEBOOK, as_version=4)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "\n".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    # The steps printed what they measured: visibility, hidden seam, posts' seen share.
    assert "of the window is seen" in text
    assert "Seam the posts reach but cannot see" in text
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) >= 4
