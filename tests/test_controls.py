"""The controls preset: its three control methods' targets and the report (sweep/controls.py)."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax

from sdss_distill.distill.methods.shuffled_z import shuffled
from sdss_distill.distill.methods.smoothing import Settings, smoothed_logits, true_class_probability
from sdss_distill.sweep import controls
from sdss_distill.sweep.cli import PRESETS


def test_shuffle_permutes_only_the_given_rows():
    df = pd.DataFrame({"redshift": np.arange(10.0), "u": np.arange(10.0)}, index=np.arange(10) * 3)
    rows = df.index[:6]
    out = shuffled(df, rows, "redshift", seed=1)
    assert sorted(out.loc[rows, "redshift"]) == sorted(df.loc[rows, "redshift"])
    assert (out.loc[rows, "redshift"] != df.loc[rows, "redshift"]).any()
    pd.testing.assert_frame_equal(out.drop(rows), df.drop(rows))
    assert (out.u == df.u).all() and (df.redshift == np.arange(10.0)).all()  # input untouched


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_smoothed_targets_put_the_confidence_on_the_true_class(temperature):
    y = np.array([0, 2, 1, 2])
    p = softmax(smoothed_logits(y, 0.9, temperature) / temperature, axis=1)
    np.testing.assert_allclose(p[np.arange(4), y], 0.9, atol=1e-5)
    np.testing.assert_allclose(p.sum(axis=1) - p[np.arange(4), y], 0.1, atol=1e-5)
    assert true_class_probability(smoothed_logits(y, 0.8, temperature), y, temperature) == \
        pytest.approx(0.8, abs=1e-5)


@pytest.mark.parametrize("bad", [0.2, 1.5, -0.1])
def test_smoothing_confidence_is_checked(bad):
    with pytest.raises(ValueError, match="confidence must be 0"):
        Settings(confidence=bad)


def _cells(gains: dict[str, list[float]]) -> list[dict]:
    """Fake sweep cells: baseline 88 % on every seed, each method's student 88 % + gain."""
    return [{"seed": s, "cell": {"method": m},
             "arms": {"student": {"test_accuracy": 0.88 + g / 100},
                      "baseline": {"test_accuracy": 0.88}}}
            for m, gs in gains.items() for s, g in enumerate(gs)]


def test_report_splits_the_gain_into_the_redshift_part():
    cells = _cells({"crossfit": [0.4, 0.3, 0.5, 0.2, 0.4, 0.3],
                    "shuffled-z": [0.1, 0.0, 0.2, -0.1, 0.1, 0.0],
                    "smoothing": [0.0] * 6, "photo-teacher": [0.2] * 6})
    df = controls.table(cells)
    assert list(df.method) == ["crossfit", "shuffled-z", "smoothing", "photo-teacher"]
    row = df.set_index("method").loc["shuffled-z"]
    assert row.real_minus_this_pt == pytest.approx(0.3)
    assert row.real_minus_this_wtl == "6/0/0"
    assert row.real_minus_this_p == pytest.approx(0.03125)
    assert df.set_index("method").loc["crossfit"].gain_pt == pytest.approx(0.35)
    text = controls.markdown(df)
    assert "real-teacher student minus shuffled-redshift student): +0.30 pt (6/0/0" in text


def test_preset_lists_the_controls():
    assert PRESETS["controls"]["methods"] == list(controls.ABOUT)
    assert PRESETS["controls"]["report"] == "controls"
