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


# ------------------------------------------------------ declared constraints
def _classes():
    import genad
    from genad.data.base import ADAPTERS, _load_adapters

    _load_adapters()
    return [*genad.MODELS.values(), *ADAPTERS.values()]


@pytest.mark.parametrize("cls", _classes(), ids=lambda c: c.__name__)
def test_every_constructor_parameter_has_a_declared_constraint(cls):
    names = set(cls._get_param_names())
    declared = set(cls.parameter_constraints)
    assert names <= declared, f"no constraint for {sorted(names - declared)}"
    assert declared <= names, f"constraints for no parameter: {sorted(declared - names)}"


@pytest.mark.parametrize("cls", _classes(), ids=lambda c: c.__name__)
def test_the_defaults_satisfy_the_constraints(cls):
    from genad._params import validate_params

    validate_params(cls().get_params(deep=False), cls.parameter_constraints)


@pytest.mark.parametrize(
    "constraint,value,message",
    [
        ("Integer(1, high=5)", 6, "x must be an integer <= 5, got 6"),
        ("OneOf(('a', 'b', 'c'))", "d", "x must be 'a', 'b' or 'c', got 'd'"),
        ("IntegerList(1)", 3, "x must be a list of integers, got 3"),
        ("IntegerList(1)", [3, 0], r"x entries must be an integer >= 1, got 0"),
        ("StringList()", "a", "x must be a list of column names, got 'a'"),
        ("RATE", 1.0, r"x must be a number in \(0, 1\), got 1.0"),
        ("CountOrFraction()", 1.5, "x must be an integer >= 1, got 1.5"),
        ("Flag()", -1, "x must be an integer >= 0, got -1"),
        ("Device()", "gpu0", "unknown device 'gpu0'"),
        ("InstanceOf('genad.data.base:Adapter', 'an adapter')", 3, "x must be an adapter, got int"),
    ],
)
def test_each_constraint_names_the_parameter_and_the_rule(constraint, value, message):
    from genad import _params

    rule = eval(constraint, vars(_params))
    with pytest.raises(InvalidInputError, match=message):
        rule.check("x", value)


@pytest.mark.parametrize(
    "constraint,value",
    [("Integer(1, allow_none=True)", None), ("OneOf((True, False))", np.bool_(True)),
     ("CountOrFraction()", 0.5), ("CountOrFraction()", 3), ("Flag()", True),
     ("IntegerList(1)", (4, 2)), ("Real(0.0, allow_none=True)", None)],
)
def test_constraints_accept_what_they_describe(constraint, value):
    from genad import _params

    eval(constraint, vars(_params)).check("x", value)
