"""The top-level ``genad`` namespace: lazy imports of the torch-backed names."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import genad
from genad import registry


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)
    return done.stdout.strip()


def test_import_does_not_import_torch():
    assert _run("import sys, genad; print('torch' in sys.modules)") == "False"


def test_cli_module_does_not_import_torch():
    assert _run("import sys, genad.cli; print('torch' in sys.modules)") == "False"


def test_import_and_cli_start_up_do_not_import_sklearn():
    # scikit-learn was ~97 % of the CLI's start-up time (errors.py imported it eagerly)
    code = "import sys, genad, genad.errors, genad.cli; print('sklearn' in sys.modules)"
    assert _run(code) == "False"


def test_not_fitted_error_resolves_lazily_to_sklearns_subclass():
    code = (
        "import sys, genad; cls = genad.NotFittedError; import sklearn.exceptions as se; "
        "from genad.errors import NotFittedError; "
        "print(issubclass(cls, se.NotFittedError), cls is NotFittedError)"
    )
    assert _run(code) == "True True"


@pytest.mark.parametrize("name", sorted(set(genad.__all__) - {"__version__"}))
def test_every_public_name_resolves(name):
    assert getattr(genad, name) is not None
    assert name in dir(genad)


def test_lazy_names_are_the_defining_objects():
    from genad.detector import Detector
    from genad.estimators import MODELS, AutoEncoder

    assert genad.load == Detector.load  # the classmethod, bound to the base class
    assert genad.AutoEncoder is AutoEncoder
    assert genad.MODELS is MODELS


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        genad.no_such_name  # noqa: B018


def test_lazy_preset_names_follow_the_registry():
    for p in registry.PRESETS.values():
        assert genad._LAZY[p.class_name] == p.module
        assert p.class_name in genad.__all__


def test_type_checking_imports_match_the_registry():
    # the TYPE_CHECKING block spells the presets out for type checkers; keep it in step
    tree = ast.parse(Path(genad.__file__).read_text("utf-8"))
    block = next(node for node in tree.body if isinstance(node, ast.If)
                 and getattr(node.test, "id", None) == "TYPE_CHECKING")
    imported = {alias.name: node.module for node in block.body
                if isinstance(node, ast.ImportFrom) for alias in node.names}
    aliases = {target.id for node in block.body if isinstance(node, ast.Assign)
               for target in node.targets}  # load = Detector.load
    for p in registry.PRESETS.values():
        assert imported.get(p.class_name) == p.module, p.name
    assert set(imported) | aliases == set(genad._LAZY)
    assert aliases == set(genad._ATTRIBUTES)
