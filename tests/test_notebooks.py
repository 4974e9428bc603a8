"""Execute every notebook and tutorial in quick mode (papermill), and check the marked cells (nbval).

* ``test_notebook_runs``: papermill runs each notebook with ``quick=True`` (tiny preset, a few steps)
  on the ``forensix`` kernel, in the notebook's own folder, writing the executed copy to ``tmp_path``.
* ``test_every_notebook_is_tested``: a notebook must be collected or listed in ``SKIPPED`` with a reason.
* ``test_nbval_marked_cells``: ``pytest --nbval-lax`` re-runs the notebooks that store outputs for
  cells marked ``# NBVAL_CHECK_OUTPUT`` and compares those outputs (floats, ids and temp paths
  sanitized by ``tests/nbval_sanitize.cfg``). Run in a subprocess so ``make test`` stays plain pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted([*ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("tutorials/*.ipynb")])
#: notebooks not executed here, with the reason (relative path -> reason)
SKIPPED: dict[str, str] = {}
TIMEOUT = 240  # seconds per notebook in quick mode
KERNEL = "forensix"
NBVAL_MARK = "# NBVAL_CHECK_OUTPUT"


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _quick_env() -> dict[str, str]:
    """Quick mode, offline, and this environment's kernels first (a ``forensix`` kernel installed for the
    user by another checkout must not shadow the one in this checkout's ``.venv``)."""
    own = str(Path(sys.prefix) / "share" / "jupyter")
    jupyter_path = os.pathsep.join(p for p in (own, os.environ.get("JUPYTER_PATH", "")) if p)
    return {**os.environ, "FORENSIX_QUICK": "1", "HF_HUB_OFFLINE": "1", "JUPYTER_PATH": jupyter_path}


def _use_own_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Set the quick environment; skip without a ``forensix`` kernel, fail if it runs another interpreter."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    for key, value in _quick_env().items():
        monkeypatch.setenv(key, value)
    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        pytest.skip(f"Jupyter kernel {KERNEL!r} missing: run `make setup` (or "
                    f"`.venv/bin/python -m ipykernel install --sys-prefix --name {KERNEL}`)")
    python = spec.argv[0]
    assert os.path.abspath(python) == os.path.abspath(sys.executable), (
        f"kernel {KERNEL!r} ({spec.resource_dir}) runs {python}, not this interpreter {sys.executable}; "
        "reinstall it with `make setup`"
    )


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.timeout(TIMEOUT + 60)
@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if _rel(p) not in SKIPPED], ids=_rel)
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import papermill as pm

    _use_own_kernel(monkeypatch)
    out = tmp_path / path.name
    started = time.perf_counter()
    pm.execute_notebook(str(path), str(out), parameters={"quick": True}, kernel_name=KERNEL, cwd=str(path.parent),
                        execution_timeout=TIMEOUT, progress_bar=False)
    seconds = time.perf_counter() - started
    print(f"{_rel(path)}: {seconds:.1f} s")
    executed = nbformat.read(out, as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, f"{_rel(path)}: {errors[0].ename}: {errors[0].evalue}"


def test_notebook_temp_folders_stay_under_pytest_basetemp(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Quick-mode notebooks write their runs with ``tempfile.mkdtemp``; kernels inherit ``TMPDIR`` (root conftest)."""
    import tempfile

    base = tmp_path_factory.getbasetemp().resolve()
    for folder in (tempfile.gettempdir(), _quick_env()["TMPDIR"]):
        assert base in Path(folder).resolve().parents, f"{folder} is not under pytest's base temp {base}"


def test_every_notebook_is_tested() -> None:
    assert NOTEBOOKS, "no notebooks found under notebooks/ or tutorials/"
    stale = sorted(set(SKIPPED) - {_rel(p) for p in NOTEBOOKS})
    assert not stale, f"SKIPPED lists notebooks that do not exist: {stale}"
    for name, reason in SKIPPED.items():
        assert reason.strip(), f"SKIPPED[{name!r}] needs a reason"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_rel)
def test_notebook_is_clean_and_parametrized(path: Path) -> None:
    """Stored clean (outputs only on nbval-marked cells); first code cell tagged ``parameters`` with ``quick``."""
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    assert cells and "parameters" in cells[0].metadata.get("tags", []), f"{_rel(path)}: first code cell must be tagged 'parameters'"
    assert "quick =" in cells[0].source and "FORENSIX_QUICK" in cells[0].source, f"{_rel(path)}: parameters cell must set quick"
    missing = [i for i, c in enumerate(json.loads(path.read_text())["cells"]) if "id" not in c]  # nbformat.read adds them
    assert not missing, f"{_rel(path)}: cells {missing} have no id (nbformat 4.5); run nbformat's normalize on it"
    dirty = [i for i, c in enumerate(cells) if c.get("outputs") and NBVAL_MARK not in c.source]
    assert not dirty, f"{_rel(path)}: code cells {dirty} hold outputs; strip them (only {NBVAL_MARK} cells keep theirs)"


def _nbval_notebooks() -> list[Path]:
    return [p for p in NOTEBOOKS if any(NBVAL_MARK in c.source and c.get("outputs")
                                        for c in nbformat.read(p, as_version=4).cells if c.cell_type == "code")]


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_nbval_marked_cells(monkeypatch: pytest.MonkeyPatch) -> None:
    _use_own_kernel(monkeypatch)
    marked = _nbval_notebooks()
    assert marked, f"no notebook stores outputs for {NBVAL_MARK} cells"
    cfg = ROOT / "tests" / "nbval_sanitize.cfg"
    for path in marked:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "--nbval-lax", "--sanitize-with", str(cfg), "--nbval-kernel-name", KERNEL,
             "-p", "no:cacheprovider", "-q", "--rootdir", str(path.parent), str(path)],
            cwd=path.parent, env=_quick_env(), capture_output=True, text=True, timeout=TIMEOUT + 120,
        )
        assert proc.returncode == 0, f"nbval failed on {_rel(path)}:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
