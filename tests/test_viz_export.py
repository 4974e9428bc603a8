"""export_notebook: one offline HTML file, plotly.js once, figures drawn, explorer snapshots, no CDN."""

from __future__ import annotations

import re

import nbformat
import numpy as np
import pytest

from forensix.errors import ForensixError
from forensix.viz import export_notebook


def _output(bundle: dict) -> dict:
    return nbformat.v4.new_output("display_data", data=bundle)


def _notebook(tmp_path):
    import plotly.graph_objects as go

    from forensix.viz.widgets import DataExplorer

    figs = [go.Figure(go.Bar(y=[1, 3, 2])), go.Figure(go.Heatmap(z=np.eye(3)))]
    ex = DataExplorer(size=32)
    cells = [nbformat.v4.new_markdown_cell("# Export"),
             *[nbformat.v4.new_code_cell("fig", outputs=[_output({"application/vnd.plotly.v1+json": f.to_plotly_json(),
                                                                   "text/html": "<script src='https://cdn.plot.ly/x.js'></script>",
                                                                   "text/plain": "Figure()"})]) for f in figs],
             nbformat.v4.new_code_cell("DataExplorer(size=32)", outputs=[_output(ex._repr_mimebundle_())])]
    nb = nbformat.v4.new_notebook(cells=cells)
    path = tmp_path / "executed.ipynb"
    nbformat.write(nb, path)
    return path


def test_export_is_self_contained(tmp_path):
    html = export_notebook(_notebook(tmp_path), tmp_path / "out" / "shared.html").read_text()
    assert html.count("* plotly.js v") == 1  # inline, once
    assert "forensix-figure-1" in html and "forensix-figure-2" in html and html.count("Plotly.newPlot") >= 2
    assert 'class="forensix-snapshot"' in html and "data:image/png;base64" in html  # the explorer's snapshot
    external = re.findall(r'<(?:script|link)\b[^>]*(?:src|href)=["\'](?:https?:)?//', html)
    assert not external and "cdn.plot.ly/x.js" not in html  # (plotly.js itself names cdn.plot.ly for geo maps only)


def test_export_rejects_missing_and_broken_notebooks(tmp_path):
    with pytest.raises(ForensixError, match="no such notebook"):
        export_notebook(tmp_path / "nope.ipynb", tmp_path / "x.html")
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json")
    with pytest.raises(ForensixError, match="not a readable notebook"):
        export_notebook(bad, tmp_path / "x.html")
