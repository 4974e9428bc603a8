"""Render a notebook with a plotly figure and a DataExplorer in headless Chromium, offline.

The notebook runs with nbconvert (widget state stored) and is exported to HTML. Offline there is
no ``@jupyter-widgets/html-manager`` bundle (nbconvert loads it from a CDN and nothing in the venv
ships it), so widget *views* cannot render; the export instead shows each explorer's static
snapshot (its ``text/html`` fallback) while the widget state stays embedded. Plotly renders from
the inline plotly.js of the ``notebook`` renderer. The test asserts the plot drew, the snapshot
images loaded, nothing is fetched from the network, and the console has no JavaScript errors.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.browser

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def _chromium() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name) or (f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None)
        if found:
            return found
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        try:
            subprocess.run(["apt-get", "update"], check=True, timeout=180, capture_output=True, env=env)
            subprocess.run(["apt-get", "install", "-y", "chromium"], check=True, timeout=600, capture_output=True, env=env)
        except (subprocess.SubprocessError, OSError) as err:
            pytest.skip(f"headless Chromium missing and 'apt-get install -y chromium' failed ({err}); install chromium to run this test")
        if os.path.exists("/usr/bin/chromium"):
            return "/usr/bin/chromium"
    pytest.skip("headless Chromium not found at /usr/bin/chromium; install it (apt-get install -y chromium) to run this test")


CELLS = [
    "import plotly.io as pio, plotly.graph_objects as go\n"
    "pio.renderers.default = 'notebook'  # inline plotly.js: works offline\n"
    "fig = go.Figure(go.Bar(x=['a', 'b', 'c'], y=[3, 5, 4], marker_color='rgb(255,0,0)'))\n"
    "fig.update_layout(title='offline plotly', xaxis_title='x', yaxis_title='y', width=600, height=380)\n"
    "fig",
    "from forensix.viz.widgets import DataExplorer\nDataExplorer(size=64)",
]


def _run_notebook(tmp_path: Path) -> Path:
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import ExecutePreprocessor
    from traitlets.config import Config

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    env_path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    old = os.environ.get("PATH")
    os.environ["PATH"] = env_path  # the kernel's "python" is this interpreter
    try:
        ExecutePreprocessor(timeout=300, kernel_name="python3", store_widget_state=True).preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    finally:
        os.environ["PATH"] = old or ""
    assert "application/vnd.jupyter.widget-state+json" in nb.metadata.get("widgets", {})
    widget_out = nb.cells[1].outputs[-1]["data"]
    assert "application/vnd.jupyter.widget-view+json" in widget_out and "text/html" in widget_out

    config = Config()
    # Offline: no widget view (text/html snapshot instead), and empty scripts instead of CDN ones.
    config.NbConvertBase.display_data_priority = ["text/html", "text/markdown", "image/svg+xml", "image/png", "image/jpeg", "text/plain"]
    for option in ("widget_renderer_url", "require_js_url", "mathjax_url"):
        setattr(config.HTMLExporter, option, "data:text/javascript,")
    body, _ = HTMLExporter(config=config, template_name="lab").from_notebook_node(nb)
    assert "application/vnd.jupyter.widget-state+json" in body  # state embedded for a future manager
    external = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?://[^"]+)"', body)
    # plotly's notebook renderer always adds MathJax from a CDN (only needed for LaTeX labels).
    external = [url for url in external if "/mathjax/" not in url]
    assert not external, f"the export fetches {external}; it must render offline"
    path = tmp_path / "notebook.html"
    path.write_text(body)
    return path


def test_notebook_renders_offline_in_chromium(tmp_path):
    chromium = _chromium()
    html_path = _run_notebook(tmp_path)
    shot = tmp_path / "shot.png"
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
           "--virtual-time-budget=8000", "--hide-scrollbars", f"--screenshot={shot}", "--window-size=1100,1500",
           html_path.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert shot.exists(), f"no screenshot; chromium said:\n{proc.stderr[-3000:]}"
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    errors = [line for line in console if re.search(r"Uncaught|Error|error", line)]
    assert not errors, "JavaScript errors:\n" + "\n".join(errors)

    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)
    assert red.sum() > 2000, f"the plotly bars did not draw ({red.sum()} red pixels)"
    ys = np.nonzero(red)[0]
    below = pixels[ys.max() + 40 :]
    colourful = (below.max(-1) - below.min(-1)) > 60  # the snapshot photos
    assert colourful.sum() > 2000, "the DataExplorer snapshot images did not render"
    if os.environ.get("FORENSIX_KEEP_SHOT"):
        shutil.copy(shot, os.environ["FORENSIX_KEEP_SHOT"])


@pytest.mark.notebook
@pytest.mark.slow
def test_notebook_08_exports_to_one_offline_file_under_5_mb_that_draws_in_chromium(tmp_path, monkeypatch):
    """What a teacher shares: notebook 08 executed (quick), exported with ``export_notebook``, opened in Chromium
    with no host but loopback: every plotly figure draws and every inline image is in the page."""
    import papermill as pm
    from test_notebooks import KERNEL, ROOT, _use_own_kernel

    from forensix.viz import export_notebook

    chromium = _chromium()
    _use_own_kernel(monkeypatch)
    source = ROOT / "notebooks" / "08_grounding.ipynb"
    executed = tmp_path / source.name
    pm.execute_notebook(str(source), str(executed), parameters={"quick": True}, kernel_name=KERNEL, cwd=str(source.parent),
                        execution_timeout=240, progress_bar=False)
    html_path = export_notebook(executed, tmp_path / "08_grounding.html")
    html = html_path.read_text()
    assert html_path.stat().st_size < 5_000_000, f"{html_path.stat().st_size / 1e6:.1f} MB"
    figures = re.findall(r'id="(forensix-figure-\d+)"', html)
    images = html.count('src="data:image/png;base64,')
    assert html.count("* plotly.js v") == (1 if figures else 0) and images > 0
    assert not re.findall(r'<(?:script|link)\b[^>]*(?:src|href)=["\'](?:https?:)?//', html)

    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={tmp_path / 'profile'}",
           "--virtual-time-budget=15000", "--dump-dom", html_path.as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=180).stdout
    parts = re.split(r'id="forensix-figure-\d+"', dom)[1:]
    drawn = sum("main-svg" in part.split('id="forensix-figure-')[0] for part in parts)
    assert len(parts) == len(set(figures)) and drawn == len(parts), f"{drawn} of {len(parts)} figures drawn"
    assert dom.count('src="data:image/png;base64,') >= images, "inline images missing from the rendered page"
