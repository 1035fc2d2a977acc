"""Temperature scaling in numpy (Guo et al. 2017): one scalar T divides the class logits, so
the argmax never changes; T is fitted by the mean negative log-likelihood on calibration rows
(a golden-section search over log T, the NLL being convex in 1/T)."""

from __future__ import annotations

import math

import numpy as np

T_RANGE = (0.05, 20.0)
"""The temperatures searched; a fit at an end of the range says the logits are degenerate."""


def nll(logits: np.ndarray, y: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true classes at temperature T (float64)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(y)), np.asarray(y)].mean())


def fit(logits: np.ndarray, y: np.ndarray, t_range=T_RANGE, iterations: int = 80) -> float:
    """The T in `t_range` minimising `nll` on (logits, y)."""
    if not len(y):
        raise ValueError("temperature: no calibration rows")
    a, b = math.log(t_range[0]), math.log(t_range[1])
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = nll(logits, y, math.exp(c)), nll(logits, y, math.exp(d))
    for _ in range(iterations):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = nll(logits, y, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = nll(logits, y, math.exp(d))
    return float(math.exp((a + b) / 2))


def held_out_gains(logits: np.ndarray, y: np.ndarray, seed: int = 0) -> list[float]:
    """NLL gain (at T = 1 minus at the fitted T) on each half of the rows, T fitted on the
    other half (halves drawn with `seed`): a temperature that only fits noise loses here."""
    order = np.random.default_rng(seed).permutation(len(y))
    halves = (order[: len(y) // 2], order[len(y) // 2:])
    gains = []
    for fit_on, judge in (halves, halves[::-1]):
        if not len(fit_on) or not len(judge):
            return [0.0, 0.0]
        t = fit(logits[fit_on], y[fit_on])
        gains.append(nll(logits[judge], y[judge]) - nll(logits[judge], y[judge], t))
    return gains


def ece(probabilities: np.ndarray, y: np.ndarray, bins: int = 15) -> float | None:
    """Expected calibration error of the top-class probability over `bins` equal-width bins,
    as a fraction (the same binning as distill.metrics; None for no rows)."""
    p = np.asarray(probabilities, dtype=np.float64)
    if not len(p):
        return None
    conf, pred = p.max(axis=1), p.argmax(axis=1)
    right = (pred == np.asarray(y)).astype(np.float64)
    which = np.minimum((conf * bins).astype(np.int64), bins - 1)
    rows = np.bincount(which, minlength=bins)
    gap = np.abs(np.bincount(which, right, bins) - np.bincount(which, conf, bins))
    return float(gap.sum() / rows.sum())
