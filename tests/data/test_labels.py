"""check_labels: the one validation of anomaly labels (fit, calibrate, metrics)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genad.data.labels import check_labels
from genad.errors import InvalidInputError


@pytest.mark.parametrize(
    "y,expected",
    [([0, 1, 1, 0], [0, 1, 1, 0]), ([True, False], [1, 0]), ([0.0, 1.0], [0, 1]),
     (["0", "1", "1.0"], [0, 1, 1]), (["true", "False"], [1, 0]),
     (pd.Series([1, 0], index=[10, 20]), [1, 0]), (np.array([[0], [1]]), [0, 1])],
)
def test_accepted_label_forms(y, expected):
    out = check_labels(y)
    assert out.dtype == np.int8
    assert out.tolist() == expected


@pytest.mark.parametrize(
    "y,row,value",
    [([0, 1, 2], 2, "2"), (["normal", "attack"], 0, "'normal'"), ([0, np.nan], 1, "nan"),
     ([0, -1], 1, "-1"), ([0.0, 0.5], 1, "0.5"), ([1, None], 1, "None")],
)
def test_bad_labels_name_the_row_and_value(y, row, value):
    with pytest.raises(InvalidInputError, match=rf"0 \(normal\) or 1 \(anomaly\); row {row} "
                       rf"holds {value}"):
        check_labels(y)


def test_length_must_match_and_empty_is_refused():
    with pytest.raises(InvalidInputError, match=r"y has 3 values but X has 4 rows"):
        check_labels([0, 1, 0], n=4, what="y")
    with pytest.raises(InvalidInputError, match="empty"):
        check_labels([])
