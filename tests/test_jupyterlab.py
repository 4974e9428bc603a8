"""All five explorers in a real JupyterLab, driven in headless Chromium over the DevTools protocol.

Starts JupyterLab on 127.0.0.1 (a free port, token auth, this interpreter's environment, settings and
workspaces in a temporary folder), opens a notebook that displays every explorer (the tiny preset: it
runs in seconds), runs all cells, moves one control per explorer *in the page* and checks that the
explorer's plot data changed, saves, reloads the tab (the kernel keeps running) and checks that every
plot still holds its traces: the page rebuilds the widgets from the kernel's synced state (each
explorer plot is a ``FigurePane``: an ``Output`` widget holding the figure's JSON, kilobytes; plotly's
``FigureWidget`` carried 5 MB of plotly.js per figure, and the page's restore request timed out). It counts the page's
requests to non-loopback addresses (must be 0; the browser cannot resolve any other host anyway) and
its console errors (must be 0), and stops the server and browser it started.

Needs Chromium (``/usr/bin/chromium``) and ``websocket-client``; no chromedriver or selenium.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
EXPLORERS = ("data", "attention", "grounding", "prompt", "walk")

CELLS = [
    "import numpy as np\n"
    "from forensix.data import ForgeryGenerator, SyntheticForgeryDataset\n"
    "from forensix.models import ForensixModel\n"
    "from forensix.viz.widgets import AttentionExplorer, DataExplorer, GroundingExplorer, PromptLab, StageWalkthrough\n"
    "model = ForensixModel.from_config('tiny')\n"
    "sample = ForgeryGenerator(size=64, p_authentic=0.0, seed=0).sample(0, op='splice')\n"
    "image = np.array(sample.image)\n"
    "class HandmadeGrounding:\n"
    "    maps = np.random.default_rng(0).random((3, 8, 8)).astype(np.float32)\n"
    "    tokens = ['The', ' fake', ' edge']\n"
    "def tagged(explorer, name):\n"
    "    explorer.widget.add_class('fx-' + name)  # the test finds each explorer by this class\n"
    "    return explorer",
    "tagged(DataExplorer(size=48), 'data')",
    "tagged(AttentionExplorer(model, image, gt_mask=sample.mask), 'attention')",
    "tagged(GroundingExplorer(HandmadeGrounding(), sample.mask, image=image), 'grounding')",
    "tagged(PromptLab(model, image, max_new_tokens=2), 'prompt')",
    "walk = tagged(StageWalkthrough(ForensixModel.from_config('tiny'), 2, SyntheticForgeryDataset(stage=2, split='train', size=64, length=4),\n"
    "                               steps_per_click=2, refresh_every=2, total_steps=4), 'walk')\n"
    "walk",
]

# Per explorer: the plots it shows, each as its title and, per trace, [type, [count, weighted sum]] of z, x, y.
SUMMARY_JS = """(() => {
  const sig = v => { if (v == null) return null; let n = 0, s = 0;
    if (typeof v.bdata === 'string') { for (const c of v.bdata) { n++; s += c.charCodeAt(0) * ((n % 7) + 1); } return [n, s]; }
    const walk = a => { if (a == null) return; if (typeof a === 'number') { n++; s += a * ((n % 7) + 1); return; }
                        if (typeof a !== 'string' && a.length !== undefined) for (const x of a) walk(x); };
    walk(v); return [n, s]; };
  const out = {};
  for (const name of EXPLORER_NAMES) {
    const root = document.querySelector('.fx-' + name);
    out[name] = root ? [...root.querySelectorAll('.js-plotly-plot')].map(gd => ({
      title: (gd.layout && gd.layout.title && gd.layout.title.text) || '',
      traces: (gd.data || []).map(t => [t.type, sig(t.z), sig(t.x), sig(t.y)])})) : null;
  }
  return JSON.stringify(out);
})()""".replace("EXPLORER_NAMES", json.dumps(list(EXPLORERS)))

# One control per explorer, moved in the page as a user would.
CHANGE_JS = """(() => {
  const root = name => document.querySelector('.fx-' + name);
  const button = (name, test) => [...root(name).querySelectorAll('button')].find(b => test(b.textContent.trim()));
  const op = root('data').querySelector('select');
  op.value = [...op.options].find(o => o.textContent.trim() === 'copy_move').value;
  op.dispatchEvent(new Event('change', {bubbles: true}));
  button('attention', t => t === 'max').click();
  button('grounding', t => t.startsWith('2:')).click();
  root('prompt').querySelectorAll('input[type=checkbox]')[2].click();  // prompt B: clue words
  button('walk', t => t.startsWith('Run')).click();
  return true;
})()"""

NOTEBOOK_JS = ("(window.jupyterapp ? [...window.jupyterapp.shell.widgets('main')].find("
               "w => w.context && w.context.path === 'explorers.ipynb' && w.content && w.content.widgets) : null)")


# ------------------------------------------------------------------------------------------ plumbing


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name) or (f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None)
        if found:
            return found
    pytest.skip("headless Chromium not found (looked for chromium, chromium-browser, google-chrome); install it "
                "(apt-get install -y chromium) to run this test")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # loopback only
        return r.read()


def _wait(what: str, check, timeout: float, interval: float = 0.3):
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _is_loopback(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss"):
        return True  # data:, blob:, about:, chrome-extension: never leave the machine
    return parts.hostname in ("127.0.0.1", "localhost", "::1")


class DevTools:
    """A minimal Chrome DevTools protocol client for one page: commands, and the events it saw."""

    def __init__(self, ws_url: str) -> None:
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id, self.events = 0, []

    def send(self, method: str, **params):
        self.next_id += 1
        ident = self.next_id
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == ident:
                if "error" in msg:
                    raise AssertionError(f"DevTools {method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def eval(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        self.ws.close()


@pytest.fixture()
def lab(tmp_path):
    """(url of the notebook, server process): JupyterLab on a free loopback port with token auth."""
    pytest.importorskip("jupyterlab", reason="JupyterLab is not installed in this environment")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed in this environment")
    import nbformat

    root = tmp_path / "lab"
    root.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "explorers.ipynb")
    settings = tmp_path / "settings"
    for plugin, values in {
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},  # every output stays in the page
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    }.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),  # kernel "python" = this one
           "HF_HUB_OFFLINE": "1", "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"), "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTER_DATA_DIR": str(tmp_path / "data")}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly",
           "--ServerApp.terminals_enabled=False"]  # nothing server-side asks PyPI or the news feed either
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def ready():
            if server.poll() is not None:
                raise AssertionError(f"JupyterLab exited:\n{(tmp_path / 'server.log').read_text()[-3000:]}")
            try:
                return json.loads(_get(f"http://127.0.0.1:{port}/api/status?token={token}"))
            except OSError:
                return None

        _wait("JupyterLab to start", ready, 90)
        yield f"http://127.0.0.1:{port}/lab/tree/explorers.ipynb?token={token}", server
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # the server shuts its kernels down
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(10)
        log.close()


@pytest.fixture()
def page(tmp_path):
    """A DevTools connection to one page of a headless Chromium that resolves no host but loopback."""
    pytest.importorskip("websocket", reason="websocket-client is not installed (needed to drive Chromium over DevTools)")
    chromium = _chromium()
    port = _free_port()
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
           "--disable-default-apps", "--metrics-recording-only", "--no-default-browser-check",
           "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
           f"--remote-debugging-port={port}", "--remote-debugging-address=127.0.0.1",
           f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1300,5000", "about:blank"]
    browser = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    devtools = None
    try:
        def target():
            if browser.poll() is not None:
                pytest.skip(f"Chromium ({chromium}) exited at start with code {browser.returncode}; it cannot run headless here")
            try:
                pages = json.loads(_get(f"http://127.0.0.1:{port}/json/list"))
            except OSError:
                return None
            return next((p["webSocketDebuggerUrl"] for p in pages if p.get("type") == "page"), None)

        devtools = DevTools(_wait("Chromium's DevTools endpoint", target, 60))
        for domain in ("Network", "Runtime", "Log", "Page"):
            devtools.send(f"{domain}.enable")
        devtools.send("Emulation.setFocusEmulationEnabled", enabled=True)  # the tab counts as focused: JupyterLab tracks the current notebook
        yield devtools
    finally:
        if devtools is not None:
            devtools.close()
        if browser.poll() is None:
            os.killpg(browser.pid, signal.SIGTERM)
            try:
                browser.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(browser.pid, signal.SIGKILL)


# ------------------------------------------------------------------------------------------ the test


def _summary(page: DevTools) -> dict:
    return json.loads(page.eval(SUMMARY_JS))


def _all_drawn(summary: dict, every_plot: bool = True) -> bool:
    """Every explorer shows plots with traces (``every_plot=False``: at least one of its plots has traces;
    the walkthrough's loss plot starts empty)."""
    check = all if every_plot else any
    return all(summary.get(name) and check(plot["traces"] for plot in summary[name]) for name in EXPLORERS)


def _same(a, b, tol: float = 1e-6) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) <= tol * max(1.0, abs(a), abs(b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k], tol) for k in a)
    return a == b


KERNEL_IDLE_JS = f"(() => {{ const k = {NOTEBOOK_JS}.sessionContext.session?.kernel; return !!k && k.status === 'idle'; }})()"


def _open_notebook(page: DevTools, url: str, what: str, *, reload: bool = False) -> None:
    def quietly(expression: str):
        try:
            return page.eval(expression)
        except AssertionError:  # the page is still loading
            return None

    if reload:
        page.send("Page.reload", ignoreCache=True)
    else:
        page.send("Page.navigate", url=url)
    try:
        _wait(f"the notebook to open ({what})", lambda: quietly(f"!!{NOTEBOOK_JS}"), 90)
    except AssertionError as err:
        state = quietly("JSON.stringify([location.href, document.title, typeof window.jupyterapp, "
                        "window.jupyterapp && String(window.jupyterapp.shell.currentWidget), document.body.innerText.slice(0, 300)])")
        raise AssertionError(f"{err}; page: {state}; console: {_console_errors(page.events)[:10]}") from None
    _wait(f"the kernel to be idle ({what})", lambda: quietly(KERNEL_IDLE_JS), 90)


def _console_errors(events: list[dict]) -> list[str]:
    errors = []
    for e in events:
        method, p = e["method"], e.get("params", {})
        if method == "Runtime.exceptionThrown":
            errors.append(f"uncaught: {p['exceptionDetails'].get('exception', {}).get('description') or p['exceptionDetails'].get('text')}")
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            errors.append("console.error: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
        elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
            errors.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
    return errors


# jupyterlab-manager (5.0) renders a widget output once: if it asks for the model while a restore from the
# kernel is under way and another restore pass has already marked the manager restored, the output stays
# "Error displaying widget: model not found" although the model arrives a moment later (seen on every
# reload here for the outputs after the fifth cell, widgets of any kind, a plain Button too). This
# re-renders such an output when the page's widget manager holds its model by then: the model and its
# state still come from the kernel, which is what the test checks. Returns how many it re-rendered.
RERENDER_RACED_JS = """(async () => {
  const mime = 'application/vnd.jupyter.widget-view+json';
  const find = w => { if (w._manager && w.mimeType === mime) return w; for (const c of (w.widgets || [])) { const f = find(c); if (f) return f; } return null; };
  let redone = 0;
  for (const cell of NB.content.widgets) {
    if (cell.model.type !== 'code') continue;
    for (let i = 0; i < cell.outputArea.widgets.length; i++) {
      const renderer = find(cell.outputArea.widgets[i]), output = cell.model.outputs.get(i);
      if (!renderer || !output.data[mime] || !renderer.node.textContent.includes('model not found')) continue;
      const manager = await renderer._manager.promise;
      if (!manager.has_model(output.data[mime].model_id)) continue;
      renderer.removeClass('jupyter-widgets');
      await renderer.renderModel(output);
      redone++;
    }
  }
  return redone;
})()""".replace("NB", NOTEBOOK_JS)
RACED_ERROR = "Error: widget model not found"


def _probe(page: DevTools) -> str:
    """What the page shows, for failure messages: widget, plot and explorer counts, outputs, console errors."""
    probe = page.eval("JSON.stringify([document.querySelectorAll('.jupyter-widgets').length, "
                      "document.querySelectorAll('.js-plotly-plot').length, document.querySelectorAll('[class*=fx-]').length, "
                      "[...document.querySelectorAll('.jp-OutputArea-output')].map(e => e.className + ' ' + e.innerText.slice(0, 80))])")
    kernel = page.eval(f"(() => {{ const k = {NOTEBOOK_JS}?.sessionContext.session?.kernel; return JSON.stringify(k ? [k.id, k.handleComms, k.connectionStatus] : null); }})()")
    warns = [" ".join(str(a.get("value", a.get("description", ""))) for a in e["params"].get("args", []))[:300]
             for e in page.events if e["method"] == "Runtime.consoleAPICalled" and e["params"].get("type") == "warning"]
    return (f"page [widgets, plots, explorers, outputs]: {probe[:3000]}; kernel [id, handleComms, connection]: {kernel}; "
            f"console: {_console_errors(page.events)[:10]}; warnings: {warns[:10]}")


def test_explorers_live_and_after_reload_in_jupyterlab(lab, page):
    url, server = lab
    _open_notebook(page, url, "first load")
    page.eval(f"window.jupyterapp.shell.activateById({NOTEBOOK_JS}.id)")
    page.eval(f"window.jupyterapp.commands.execute('notebook:run-all-cells')")
    counts = f"{NOTEBOOK_JS}.content.widgets.map(c => c.model.type === 'code' ? c.model.executionCount : 0)"
    _wait("all cells to run", lambda: all(page.eval(counts) or [None]), 180)
    outputs = page.eval(f"JSON.stringify({NOTEBOOK_JS}.content.widgets.map(c => c.model.outputs.toJSON()))")
    failed = [o for cell in json.loads(outputs) for o in cell if o.get("output_type") == "error"]
    assert not failed, "a cell raised:\n" + "\n".join(f"{o['ename']}: {o['evalue']}" for o in failed)

    try:
        before = _wait("every explorer to draw its plots", lambda: (s := _summary(page)) and _all_drawn(s, False) and s, 90)
    except AssertionError as err:
        raise AssertionError(f"{err}; summary {json.dumps(_summary(page))[:1500]}; {_probe(page)}") from None
    page.eval(CHANGE_JS)

    walk_done = "document.querySelector('.fx-walk').textContent.includes('step 2 / 4')"
    _wait("the walkthrough to train its 2 steps", lambda: page.eval(walk_done), 120)
    _wait("the kernel to finish the callbacks", lambda: page.eval(KERNEL_IDLE_JS), 60)
    time.sleep(1.5)  # the last plot messages reach the views
    after = _summary(page)
    stuck = [n for n in EXPLORERS if _same(after[n], before[n])]
    assert not stuck, f"plots unchanged after moving a control: {stuck}"

    page.eval(f"{NOTEBOOK_JS}.context.save()")
    _wait("the notebook to be saved", lambda: page.eval(f"!{NOTEBOOK_JS}.context.model.dirty"), 30)
    _open_notebook(page, url, "after reload", reload=True)
    assert server.poll() is None  # same server, same kernel
    raced = 0

    def redrawn():
        nonlocal raced
        raced += page.eval(RERENDER_RACED_JS)
        return (s := _summary(page)) and _all_drawn(s) and s

    try:
        reloaded = _wait("the explorers to draw again after the reload", redrawn, 120, interval=1.0)
    except AssertionError as err:
        counts = {name: [len(plot["traces"]) for plot in plots or []] for name, plots in _summary(page).items()}
        raise AssertionError(f"{err}: traces per plot after the reload {counts} (before: "
                             f"{ {name: [len(plot['traces']) for plot in after[name]] for name in EXPLORERS} }); {_probe(page)}") from None
    for name in EXPLORERS:
        assert _same(reloaded[name], after[name], 1e-4), f"{name}: the reloaded plots differ from the live ones"

    requests = [e["params"]["request"]["url"] for e in page.events if e["method"] == "Network.requestWillBeSent"]
    sockets = [e["params"]["url"] for e in page.events if e["method"] == "Network.webSocketCreated"]
    assert requests and sockets, "the page made no requests: the DevTools events did not arrive"
    outside = [u for u in requests + sockets if not _is_loopback(u)]
    assert not outside, f"{len(outside)} requests to non-loopback addresses: {outside[:10]}"
    errors = _console_errors(page.events)
    for _ in range(raced):  # the upstream error of each output re-rendered above, and no other
        errors.remove(next(e for e in errors if RACED_ERROR in e))
    assert not errors, f"{len(errors)} console errors:\n" + "\n".join(errors[:20])
