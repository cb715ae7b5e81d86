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


# ------------------------------------------------------- plain numbers in messages
@pytest.mark.parametrize(
    "check,value,shown",
    [
        (lambda v: check_number("learning_rate", v, low=0.0, low_open=True), np.float64(-2.69),
         "got -2.69"),
        (lambda v: check_int("epochs", v, low=1), np.float64(2.5), "got 2.5"),
        (lambda v: check_int("epochs", v, low=1), np.int64(0), "got 0"),
    ],
)
def test_messages_show_numpy_scalars_as_plain_numbers(check, value, shown):
    with pytest.raises(InvalidInputError) as info:
        check(value)
    assert str(info.value).endswith(shown)
    assert "np." not in str(info.value)


@pytest.mark.parametrize(
    "param,value,shown",
    [("target_fpr", np.float64(2.69), "got 2.69"), ("contamination", np.float32(1.5), "got 1.5"),
     ("hidden_sizes", np.int64(8), "got 8"), ("learning_rate", np.float64(-1.0), "got -1.0")],
)
def test_detector_parameter_errors_show_plain_numbers(param, value, shown):
    import genad

    with pytest.raises(InvalidInputError) as info:
        genad.AutoEncoder(verbose=0, **{param: value}).fit(np.zeros((20, 2)))
    assert str(info.value).endswith(shown)
    assert "np." not in str(info.value)


def test_plain():
    from genad._params import plain

    assert plain(np.float64(2.69)) == "2.69"
    assert plain((np.int64(1), "a")) == "(1, 'a')"
    assert plain(np.array([1.5, 2.0])) == "[1.5, 2.0]"
