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
