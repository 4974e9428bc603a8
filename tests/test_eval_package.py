"""forensix.eval: every exported name resolves to its module's object, and the package imports lazily."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import forensix.eval


@pytest.mark.parametrize("name", forensix.eval.__all__)
def test_every_export_is_its_modules_object(name):
    module = importlib.import_module(forensix.eval._EXPORTS[name])
    assert getattr(forensix.eval, name) is getattr(module, name)
    assert name in module.__all__


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_metric"):
        forensix.eval.no_such_metric  # noqa: B018


def test_importing_the_package_loads_no_torch():
    code = "import sys, forensix.eval; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
