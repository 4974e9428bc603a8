"""Wall time of every notebook and tutorial in full mode (``quick=False``), as a course runs them.

Each notebook runs with papermill in the project's ``forensix`` kernel, offline, from its own folder,
into a temporary copy (the stored notebooks stay clean). Results accumulate in
``benchmarks/results/notebooks.json``: a rerun with ``--only`` replaces those notebooks' rows and
keeps the others, so the long ones can run one at a time in the background.

    python -m benchmarks.notebooks                         # everything, full mode
    python -m benchmarks.notebooks --only tutorials/01_manipulations_and_traces.ipynb
    python -m benchmarks.notebooks --quick                 # quick mode (what the notebook tests run)

Example:
    >>> [p.split("/")[0] for p in notebook_paths()][:1]
    ['notebooks']
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import RESULTS, write_result

ROOT = Path(__file__).resolve().parents[1]
KERNEL = "forensix"
LIMIT_SECONDS = 600  # the budget per notebook in full mode


def notebook_paths() -> list[str]:
    """Every notebook and tutorial, relative to the repository root, in course order."""
    return [p.relative_to(ROOT).as_posix() for folder in ("notebooks", "tutorials") for p in sorted((ROOT / folder).glob("*.ipynb"))]


def _environment(quick: bool) -> dict[str, str]:
    own = str(Path(sys.prefix) / "share" / "jupyter")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "JUPYTER_PATH": os.pathsep.join(p for p in (own, os.environ.get("JUPYTER_PATH", "")) if p)}
    env.pop("FORENSIX_QUICK", None)
    if quick:
        env["FORENSIX_QUICK"] = "1"
    return env


def run_notebook(relative: str, *, quick: bool, timeout: int) -> dict[str, Any]:
    """Execute one notebook; returns its row: seconds, status (``ok`` / ``error`` / ``timeout``) and the error."""
    import papermill as pm

    path = ROOT / relative
    row: dict[str, Any] = {"notebook": relative, "quick": quick}
    old_env = dict(os.environ)
    os.environ.clear()
    os.environ.update(_environment(quick))
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            pm.execute_notebook(str(path), str(Path(tmp) / path.name), parameters={"quick": quick}, kernel_name=KERNEL,
                                cwd=str(path.parent), execution_timeout=timeout, progress_bar=False)
        row["status"] = "ok"
    except Exception as err:  # recorded in the result, not raised: the other notebooks still run
        timed_out = "timeout" in type(err).__name__.lower() or "timed out" in str(err).lower()
        row["status"] = "timeout" if timed_out else "error"
        row["error"] = f"{type(err).__name__}: {str(err).strip().splitlines()[-1][:300] if str(err).strip() else ''}"
    finally:
        os.environ.clear()
        os.environ.update(old_env)
    row["seconds"] = round(time.perf_counter() - started, 1)
    row["within_limit"] = row["status"] == "ok" and row["seconds"] <= LIMIT_SECONDS
    return row


def _previous_rows(name: str) -> dict[str, dict[str, Any]]:
    path = RESULTS / f"{name}.json"
    if not path.is_file():
        return {}
    return {row["notebook"]: row for row in json.loads(path.read_text()).get("notebooks", [])}


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", help="notebook paths (relative to the repository root) to run; default all")
    parser.add_argument("--quick", action="store_true", help="quick mode (quick=True), as the notebook tests")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell before papermill stops (default 1800)")
    args = parser.parse_args(argv)
    known = notebook_paths()
    chosen = args.only or known
    unknown = [p for p in chosen if p not in known]
    if unknown:
        parser.error(f"unknown notebooks {unknown}; choose from {known}")
    name = "notebooks_quick" if args.quick else "notebooks"
    rows = _previous_rows(name)
    path = RESULTS / f"{name}.json"
    for relative in chosen:
        rows[relative] = run_notebook(relative, quick=args.quick, timeout=args.timeout)
        ordered = [rows[p] for p in known if p in rows]
        path = write_result(name, {
            "mode": "quick" if args.quick else "full", "limit_seconds": LIMIT_SECONDS,
            "threads": os.environ.get("OMP_NUM_THREADS", "all cores"), "notebooks": ordered,
            # full mode reuses the stages `make demo` trained (runs/demo) where they exist
            "runs_demo_present": (ROOT / "runs" / "demo").is_dir(),
            "not_measured": [p for p in known if p not in rows],
        })
    return path


if __name__ == "__main__":
    print(main())
