import numpy as np
import pytest

from genad._params import check_int, check_number
from genad.errors import InvalidInputError


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "3", None])
def test_check_int_rejects_non_integers_and_values_below_low(value):
    with pytest.raises(InvalidInputError, match="epochs must be an integer >= 1"):
        check_int("epochs", value, low=1)


def test_check_int_accepts_numpy_integers_and_none_when_allowed():
    check_int("epochs", np.int64(3), low=1)
    check_int("epochs", None, low=1, allow_none=True)


@pytest.mark.parametrize(
    "value,kwargs,interval",
    [
        (0.0, {"low": 0.0, "low_open": True}, r"\(0, inf\)"),
        (1.0, {"low": 0.0, "high": 1.0, "high_open": True}, r"\[0, 1\)"),
        (float("nan"), {}, r"\(-inf, inf\)"),
        (True, {}, r"\(-inf, inf\)"),
    ],
)
def test_check_number_names_the_interval(value, kwargs, interval):
    with pytest.raises(InvalidInputError, match=f"rate must be a number in {interval}"):
        check_number("rate", value, **kwargs)


def test_check_number_accepts_closed_bounds():
    check_number("w", 0.0, low=0.0, high=1.0)
    check_number("w", 1.0, low=0.0, high=1.0)
