"""core.interval: the bootstrap intervals every figure draws. The rate form (binomial draws
from k of n) is the row bootstrap without the rows: it matches resampling the rows."""

import numpy as np
import pytest

from sdss_distill.core.interval import mean_interval, rate_interval, rate_intervals


def test_a_rate_interval_holds_the_rate_and_shrinks_with_rows():
    widths = []
    for n in (100, 312, 1000, 10_000):
        lo, hi = rate_interval(0.8 * n, n)
        assert lo < 0.8 < hi
        widths.append(hi - lo)
    assert widths == sorted(widths, reverse=True)
    # 1.96 sqrt(p (1 - p) / n) each side for a binomial rate: the faint r >= 22 bin's size
    assert widths[1] == pytest.approx(2 * 1.96 * np.sqrt(0.16 / 312), rel=0.1)


def test_binomial_draws_equal_resampling_the_rows():
    rng = np.random.default_rng(5)
    outcomes = (rng.random(312) < 0.77).astype(float)
    means = outcomes[rng.integers(0, 312, (4000, 312))].mean(axis=1)
    rows_lo, rows_hi = np.percentile(means, [2.5, 97.5])
    lo, hi = rate_interval(outcomes.sum(), 312, reps=4000)
    assert lo == pytest.approx(rows_lo, abs=0.01) and hi == pytest.approx(rows_hi, abs=0.01)


def test_rate_intervals_are_seeded_and_vectorised_and_nan_without_rows():
    lo, hi = rate_intervals([30, 0, 50], [40, 0, 50])
    again = rate_intervals([30, 0, 50], [40, 0, 50])
    assert np.array_equal(lo, again[0], equal_nan=True)
    assert np.isnan(lo[1]) and np.isnan(hi[1])
    assert lo[2] == hi[2] == 1.0  # every resample of all-correct rows is all correct
    with pytest.raises(ValueError, match="successes must be counts"):
        rate_intervals([5], [4])
    with pytest.raises(ValueError, match="level"):
        rate_intervals([1], [4], level=95)


def test_mean_interval_over_seeds():
    lo, hi = mean_interval([0.95, 0.96, 0.97, 0.955, 0.965])
    assert lo < 0.96 < hi and hi - lo < 0.02
    assert np.isnan(mean_interval([0.9])[0])
    narrow = mean_interval(np.full(50, 0.96) + np.linspace(-0.01, 0.01, 50))
    assert narrow[1] - narrow[0] < hi - lo


def test_per_class_intervals_resample_the_rows_behind_a_confusion_matrix():
    from sdss_distill.core.interval import per_class_intervals
    cm = np.array([[900, 60, 40], [50, 250, 0], [10, 0, 690]])
    ends = per_class_intervals(cm)
    recall = np.diag(cm) / cm.sum(axis=1)
    precision = np.diag(cm) / cm.sum(axis=0)
    f1 = 2 * precision * recall / (precision + recall)
    for name, value in (("recall", recall), ("precision", precision), ("f1", f1)):
        lo, hi = ends[name]
        assert (lo < value).all() and (value < hi).all()
    # recall of one class is a rate on its rows: as wide as rate_interval's
    lo, hi = rate_interval(250, 300)
    assert ends["recall"][1][1] - ends["recall"][0][1] == pytest.approx(hi - lo, rel=0.15)
    wide = per_class_intervals(cm // 10)
    assert ((wide["f1"][1] - wide["f1"][0]) > (ends["f1"][1] - ends["f1"][0])).all()
