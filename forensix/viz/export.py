"""Shareable offline export: an executed notebook as one self-contained HTML file.

:func:`export_notebook` draws every plotly figure (plotly.js inlined once), shows each explorer as
its static snapshot (its ``text/html`` fallback; offline there is no widget manager to draw widget
views) and fetches nothing from a CDN: the file opens anywhere, without a network or a kernel.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

from forensix.errors import ForensixError

__all__ = ["export_notebook"]

PLOTLY_MIME = "application/vnd.plotly.v1+json"
_EXTERNAL = re.compile(r'<(script|link)\b[^>]*\b(?:src|href)="(?:https?:)?//[^"]*"[^>]*>(?:\s*</script>)?', re.I)
_PLOTLYJS_BANNER = "* plotly.js v"


def _figure_html(spec: dict, div_id: str) -> str:
    import plotly.io as pio

    fig = pio.from_json(json.dumps(spec), skip_invalid=True)
    return pio.to_html(fig, include_plotlyjs=False, full_html=False, div_id=div_id, config={"displaylogo": False})


def _prepare(nb: Any) -> tuple[Any, int]:
    """A copy of ``nb`` whose plotly outputs carry static HTML; returns it and the number of figures."""
    nb = copy.deepcopy(nb)
    n = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data") if out.get("output_type") in ("display_data", "execute_result") else None
            if data and PLOTLY_MIME in data:
                n += 1
                spec = data[PLOTLY_MIME]
                data["text/html"] = _figure_html(dict(spec), f"forensix-figure-{n}")
                for key in list(data):  # the static HTML replaces the renderer-specific variants
                    if key not in ("text/html", "text/plain"):
                        del data[key]
    return nb, n


def export_notebook(path_in: str | Path, path_out: str | Path, *, template: str = "lab") -> Path:
    """Write the executed notebook ``path_in`` as one self-contained HTML file ``path_out``.

    Plotly figures (``application/vnd.plotly.v1+json`` outputs) are drawn from an inline plotly.js,
    included once; explorers and other widgets show their ``text/html`` snapshot; no ``<script>`` or
    ``<link>`` refers to another host. Returns ``path_out``.

    Example:
        >>> import nbformat, tempfile, os
        >>> import plotly.graph_objects as go
        >>> fig = go.Figure(go.Bar(y=[1, 3, 2]))
        >>> cell = nbformat.v4.new_code_cell("fig", outputs=[nbformat.v4.new_output(
        ...     "display_data", data={"application/vnd.plotly.v1+json": fig.to_plotly_json(), "text/plain": "Figure"})])
        >>> d = tempfile.mkdtemp(); src = os.path.join(d, "a.ipynb")
        >>> nbformat.write(nbformat.v4.new_notebook(cells=[cell]), src)
        >>> html = export_notebook(src, os.path.join(d, "a.html")).read_text()
        >>> html.count("* plotly.js v"), "forensix-figure-1" in html
        (1, True)
    """
    import nbformat
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    path_in, path_out = Path(path_in), Path(path_out)
    if not path_in.is_file():
        raise ForensixError(f"path_in={str(path_in)!r}: no such notebook")
    try:
        nb = nbformat.read(path_in, as_version=4)
    except Exception as err:
        raise ForensixError(f"path_in={str(path_in)!r}: not a readable notebook ({err})") from err
    nb, n_figures = _prepare(nb)

    config = Config()
    config.NbConvertBase.display_data_priority = ["text/html", "text/markdown", "image/svg+xml", "image/png", "image/jpeg", "text/plain"]
    for option in ("widget_renderer_url", "require_js_url", "mathjax_url"):
        setattr(config.HTMLExporter, option, "data:text/javascript,")  # nothing from a CDN
    body, _ = HTMLExporter(config=config, template_name=template).from_notebook_node(nb)
    body = _EXTERNAL.sub("", body)  # e.g. the MathJax script plotly's notebook renderer adds (LaTeX labels only)
    if n_figures and _PLOTLYJS_BANNER not in body:
        from plotly.offline import get_plotlyjs

        script = f'<script type="text/javascript">window.PlotlyConfig = {{MathJaxConfig: "local"}};</script>\n<script type="text/javascript">{get_plotlyjs()}</script>\n'
        body = body.replace("</head>", script + "</head>", 1) if "</head>" in body else script + body
    left = _EXTERNAL.findall(body)
    if left:
        raise ForensixError(f"export_notebook: the export still loads {len(left)} resources from other hosts")
    path_out.parent.mkdir(parents=True, exist_ok=True)
    path_out.write_text(body, encoding="utf-8")
    return path_out
