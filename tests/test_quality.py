"""quality.check_values and header_positions: the one place values and headers are judged."""

import numpy as np
import pytest

from sdss_distill.core.errors import InputError
from sdss_distill.core.quality import FLOAT32_MAX, REASONS, check_values, header_positions

COLS = ("u", "g", "redshift", "ra")


def test_each_reason_first_column_and_value():
    x = np.array([
        [19, 18, 0.1, 180],         # good
        [np.nan, 18, 0.1, 180],     # missing
        [19, -9999, 0.1, 180],      # sentinel
        [19, 18, np.inf, 180],      # non-finite
        [19, 18, 1e308, 180],       # too large for float32, though finite in float64
        [19, 18, 0.1, 1e39],        # ra has no range, but must fit float32
        [45, 18, 0.1, 180],         # magnitude out of range
        [19, 18, 9.5, 180],         # redshift out of range
        [19, -1e5, 0.1, 180],       # below the sentinel: out of range, not "sentinel"
        [19, 18, -np.inf, 180],     # -inf: non-finite
    ])
    c = check_values(x, COLS)
    assert list(c.reason) == ["", "missing", "sentinel", "non_finite", "float32_overflow",
                              "float32_overflow", "out_of_range", "out_of_range", "out_of_range",
                              "non_finite"]
    assert list(c.column[1:]) == ["u", "g", "redshift", "redshift", "ra", "u", "redshift", "g",
                                  "redshift"]
    assert c.ok.tolist() == [True] + [False] * 9
    assert c.message(4) == "value 1e+308 in column 'redshift' too large for float32"
    assert c.message(7) == "value 9.5 in column 'redshift' outside -0.05 to 8"
    assert c.message(2) == "sentinel -9999 (failed measurement) in column 'g'"
    assert c.counts() == {"missing": 1, "sentinel": 1, "non_finite": 2, "float32_overflow": 2,
                          "out_of_range": 3}
    assert set(c.counts()) == set(REASONS)


def test_float32_limit_is_exact():
    c = check_values([[FLOAT32_MAX], [np.nextafter(FLOAT32_MAX, np.inf)]], ["ra"])
    assert list(c.reason) == ["", "float32_overflow"]


def test_shape_is_checked():
    with pytest.raises(ValueError, match=r"expected an array of shape \(n, 2\), got \(3,\)"):
        check_values([1, 2, 3], ["u", "g"])


def test_header_positions_map_aliases_and_refuse_two_names():
    assert header_positions(["objid", "modelMag_u", "note", "g"]) == {"objid": 0, "u": 1, "g": 3}
    assert header_positions([" U ", "g"], {"U": "u"}) == {"u": 0, "g": 1}
    with pytest.raises(InputError, match=r"t\.csv: columns 'u' \(column 1\) and 'U' \(column 2\) "
                                         r"both mean 'u'; rename or drop one"):
        header_positions(["u", "U"], source="t.csv")
