"""Test-run hygiene for everything pytest collects: unit tests, notebooks and the docstring examples in ``forensix/``.

Every temporary file of a run (``tempfile.mkdtemp`` in doctests, the quick-mode run folders of the notebook
kernels, subprocesses) goes under pytest's own base temp folder, which pytest prunes to the last three runs.
Without this, each ``make test`` left about 0.5 GB of notebook run folders in the system temp folder.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _temporary_files_under_pytest_basetemp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    folder = str(tmp_path_factory.mktemp("tmp"))  # the base temp is fixed first, under the real temp folder
    patch = pytest.MonkeyPatch()
    patch.setenv("TMPDIR", folder)  # inherited by notebook kernels and subprocesses
    patch.setattr(tempfile, "tempdir", folder)  # this process caches the temp folder on first use
    yield
    patch.undo()
