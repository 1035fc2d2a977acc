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
    even = pu.curve(counts, 0, [0.5, 0.5], pseudo=0)  # raw rates
    # at t = 0.8: R_0 = 1, R_1 = 0.5 -> purity 0.5 / (0.5 + 0.25) = 2/3
    assert even["purity"][8] == pytest.approx(2 / 3)
    assert even["completeness"][8] == 1.0
    assert np.isnan(even["purity"][9])
    star_heavy = pu.curve(counts, 0, [0.2, 0.8], pseudo=0)
    assert star_heavy["purity"][8] == pytest.approx(0.2 / (0.2 + 0.4))
    jeffreys = pu.curve(counts, 0, [0.2, 0.8])  # (kept + 1/2) / (n + 1)
    r0, r1 = 10.5 / 11, 5.5 / 11
    assert jeffreys["purity"][8] == pytest.approx(0.2 * r0 / (0.2 * r0 + 0.8 * r1))
    assert jeffreys["completeness"][8] == 1.0  # the completeness stays the raw fraction


def test_threshold_for_is_the_most_complete_reaching_the_purity():
    counts = np.zeros((2, 2, 10), int)
    counts[0, 0, [5, 9]] = [200, 800]     # class 0: 20 % at 0.5, 80 % at 0.9
    counts[0, 1, [1, 5]] = [800, 200]     # class 1: 80 % at 0.1, 20 % at 0.5
    got = pu.threshold_for(counts, 0, [0.5, 0.5], 0.8)
    # t <= 0.5: purity about 1 / 1.2 = 0.833 with completeness 1 (t = 0.2..0.5 all equal);
    # lowest wins
    assert got["threshold"] == pytest.approx(0.2)
    assert got["completeness"] == 1.0
    assert got["purity"] == pytest.approx(1 / 1.2, abs=1e-3)
    strict = pu.threshold_for(counts, 0, [0.5, 0.5], 0.95)
    assert strict["threshold"] == pytest.approx(0.6) and strict["completeness"] == 0.8
    counts[0, 1, 9] = 100             # class-1 rows at the top: 0.95 is out of reach
    assert pu.threshold_for(counts, 0, [0.5, 0.5], 0.95) is None
    top = pu.highest(counts, 0, [0.5, 0.5])
    assert top["threshold"] == pytest.approx(0.6) and top["purity"] < 0.95


def test_an_empty_tail_does_not_promise_a_purity():
    # 80 % contaminants; above 0.9 no contaminant of the 300 calibration rows is left, so raw
    # counts promise purity 1 there, though a catalogue 27 times richer in them keeps some
    counts = np.zeros((2, 2, 10), int)
    counts[0, 0, [5, 9]] = [90, 10]    # the class: 10 of 100 rows score >= 0.9
    counts[0, 1, [1, 5]] = [270, 30]   # contaminants: 10 % at 0.5, none above
    mix = [0.05, 0.95]
    raw = pu.curve(counts, 0, mix, pseudo=0)
    assert raw["purity"][6] == raw["purity"][9] == 1.0
    got = pu.threshold_for(counts, 0, mix, 0.9)
    assert got is None  # Jeffreys: 0.05 * 10.5/101 / (... + 0.95 * 0.5/301) = 0.77
    top = pu.highest(counts, 0, mix)
    assert top["threshold"] == pytest.approx(0.6)  # the lowest of the equal highest
    assert top["completeness"] == pytest.approx(0.1)
    assert top["purity"] == pytest.approx(0.05 * 10.5 / 101 / (0.05 * 10.5 / 101
                                                               + 0.95 * 0.5 / 301))


def test_measured():
    m = pu.measured(np.array([1, 1, 0, 0], bool), np.array([0, 1, 0, 1]), 0)
    assert m == {"selected": 2, "purity": 0.5, "completeness": 0.5}
