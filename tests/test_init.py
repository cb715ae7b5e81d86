"""The top-level ``genad`` namespace: lazy imports of the torch-backed names."""

from __future__ import annotations

import subprocess
import sys

import pytest

import genad


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
    from genad.bundle import load
    from genad.estimators import MODELS, AutoEncoder

    assert genad.load is load
    assert genad.AutoEncoder is AutoEncoder
    assert genad.MODELS is MODELS


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        genad.no_such_name  # noqa: B018
