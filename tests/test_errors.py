"""The exception hierarchy: one base class for the CLI, standard bases for callers."""

from __future__ import annotations

import pickle
import warnings

import pytest
import sklearn.exceptions

import genad
from genad import errors


@pytest.mark.parametrize(
    "cls",
    [errors.InvalidInputError, errors.ModelFormatError, errors.TrainingDivergedError,
     errors.NotFittedError],
)
def test_every_error_derives_from_genad_error(cls):
    assert issubclass(cls, errors.GenadError)
    assert issubclass(cls, Exception)
    with pytest.raises(errors.GenadError, match="boom"):
        raise cls("boom")


def test_not_fitted_error_is_sklearn_not_fitted_error():
    assert issubclass(errors.NotFittedError, sklearn.exceptions.NotFittedError)
    # sklearn's NotFittedError is itself a ValueError and AttributeError
    with pytest.raises(sklearn.exceptions.NotFittedError):
        raise errors.NotFittedError("not fitted")


def test_not_fitted_error_is_one_picklable_class():
    err = pickle.loads(pickle.dumps(errors.NotFittedError("not fitted")))
    assert type(err) is errors.NotFittedError
    assert errors.NotFittedError.__module__ == "genad.errors"


def test_standard_bases_let_callers_catch_generic_errors():
    assert issubclass(errors.InvalidInputError, ValueError)
    assert issubclass(errors.TrainingDivergedError, RuntimeError)
    assert not issubclass(errors.ModelFormatError, ValueError)


def test_warnings_hierarchy():
    assert issubclass(errors.GenadWarning, UserWarning)
    assert issubclass(errors.CalibrationWarning, errors.GenadWarning)
    with pytest.warns(errors.GenadWarning):
        warnings.warn("calibration", errors.CalibrationWarning, stacklevel=1)


def test_public_api_reexports_the_errors():
    for name in ("GenadError", "InvalidInputError", "ModelFormatError", "NotFittedError",
                 "TrainingDivergedError"):
        assert getattr(genad, name) is getattr(errors, name)
        assert name in genad.__all__


def test_unfitted_detector_raises_genad_not_fitted_error(table):
    det = genad.AutoEncoder()
    with pytest.raises(errors.NotFittedError, match="fit"):
        det.anomaly_score(table)
    # and callers catching scikit-learn's class still catch it
    with pytest.raises(sklearn.exceptions.NotFittedError):
        det.predict(table)
