"""core.temperature: the fitted T undoes a known over-confidence; ECE as distill.metrics."""

import numpy as np
import pytest

from sdss_distill.core import temperature as tm
from sdss_distill.distill.metrics import expected_calibration_error


def _data(n=6000, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 3)) + 2.0 * np.eye(3)[y]
    return 2.0 * x, y  # the true log-posterior of these Gaussians: 2x + const


def test_fit_recovers_the_scale_of_overconfident_logits():
    logits, y = _data()
    assert tm.fit(logits, y) == pytest.approx(1.0, abs=0.08)
    assert tm.fit(3 * logits, y) == pytest.approx(3.0, rel=0.08)
    assert tm.nll(3 * logits, y, tm.fit(3 * logits, y)) < tm.nll(3 * logits, y)


def test_ece_matches_the_metrics_module():
    logits, y = _data(500, 1)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert tm.ece(p, y) == pytest.approx(expected_calibration_error(y, logits), abs=1e-9)
    assert tm.ece(p[:0], y[:0]) is None


def test_held_out_gains_keep_a_real_temperature_and_refuse_noise():
    logits, y = _data()
    assert min(tm.held_out_gains(3 * logits, y)) > 0.01  # over-confident by 3: a real gain
    # calibrated logits: a fitted T near 1 only fits noise; at least one half says no
    gains = [tm.held_out_gains(logits[:800], y[:800], seed=s) for s in range(5)]
    assert any(min(g) <= 0 for g in gains)


def test_run_rule_applies_only_a_temperature_that_helps_held_out_rows():
    from sdss_distill.runs.calibration import fit_temperature
    logits, y = _data()
    assert fit_temperature(3 * logits, y)["applied"]
    assert fit_temperature(3 * logits, y)["temperature"] == pytest.approx(3.0, rel=0.08)
    flat = fit_temperature(logits[:800], y[:800])
    assert flat["applied"] == (min(flat["held_out_nll_gains"]) > 0)
