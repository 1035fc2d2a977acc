"""core.purity: purity-completeness curves under a class mix, on hand-made numbers."""

import numpy as np
import pytest

from sdss_distill.core import purity as pu


def test_histograms_count_each_true_class():
    p = np.array([[0.95, 0.05], [0.55, 0.45], [0.15, 0.85]])
    counts = pu.histograms(p, np.array([0, 1, 1]), bins=10)
    assert counts[0, 0].tolist() == [0] * 9 + [1]
    assert counts[0, 1].tolist() == [0, 1, 0, 0, 0, 1, 0, 0, 0, 0]
    assert counts.sum() == 6


def test_curve_reweights_by_the_mix():
    # class 0's score: its own rows all at 0.85, class-1 rows half at 0.25, half at 0.85
    counts = np.zeros((2, 2, 10), int)
    counts[0, 0, 8] = 10
    counts[0, 1, 2], counts[0, 1, 8] = 5, 5
    even = pu.curve(counts, 0, [0.5, 0.5])
    # at t = 0.8: R_0 = 1, R_1 = 0.5 -> purity 0.5 / (0.5 + 0.25) = 2/3
    assert even["purity"][8] == pytest.approx(2 / 3)
    assert even["completeness"][8] == 1.0
    assert np.isnan(even["purity"][9])
    star_heavy = pu.curve(counts, 0, [0.2, 0.8])
    assert star_heavy["purity"][8] == pytest.approx(0.2 / (0.2 + 0.4))


def test_threshold_for_is_the_most_complete_reaching_the_purity():
    counts = np.zeros((2, 2, 10), int)
    counts[0, 0, [5, 9]] = [2, 8]     # class 0: 20 % at 0.5, 80 % at 0.9
    counts[0, 1, [1, 5]] = [8, 2]     # class 1: 80 % at 0.1, 20 % at 0.5
    got = pu.threshold_for(counts, 0, [0.5, 0.5], 0.8)
    # t <= 0.5: purity 1 / 1.2 = 0.833 with completeness 1 (t = 0.2..0.5 all equal); lowest wins
    assert got["threshold"] == pytest.approx(0.2)
    assert got["completeness"] == 1.0
    assert got["purity"] == pytest.approx(1 / 1.2)
    strict = pu.threshold_for(counts, 0, [0.5, 0.5], 0.95)
    assert strict["threshold"] == pytest.approx(0.6) and strict["completeness"] == 0.8
    counts[0, 1, 9] = 1               # a class-1 row at the top: 0.95 is out of reach
    assert pu.threshold_for(counts, 0, [0.5, 0.5], 0.95) is None


def test_measured():
    m = pu.measured(np.array([1, 1, 0, 0], bool), np.array([0, 1, 0, 1]), 0)
    assert m == {"selected": 2, "purity": 0.5, "completeness": 0.5}
