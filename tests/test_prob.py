"""core.prob: the one softmax (and its log) of the package, in numpy float64."""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax as scipy_log_softmax

from sdss_distill.core.prob import log_softmax, softmax, softmax_row


def test_log_softmax_matches_scipy_and_the_softmax():
    z = np.random.default_rng(0).normal(0, 5, (50, 3)).astype("float32")
    got = log_softmax(z, axis=1)
    assert got.dtype == np.float64
    assert np.allclose(got, scipy_log_softmax(z.astype("float64"), axis=1), rtol=0, atol=1e-12)
    assert np.allclose(np.exp(got), softmax(z, axis=1), rtol=0, atol=1e-15)
    assert np.allclose(softmax_row(z[0].tolist()), softmax(z[:1], axis=1)[0], rtol=0, atol=1e-15)


def test_log_softmax_of_extreme_logits_stays_finite():
    """A class 2000 logits behind the leader: its log probability is -2000, not log(0)."""
    got = log_softmax(np.array([[0.0, -2000.0, 1000.0]]), axis=1)
    assert np.isfinite(got).all()
    assert np.allclose(got, [[-1000.0, -3000.0, 0.0]])
