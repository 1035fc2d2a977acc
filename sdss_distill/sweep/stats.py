"""Summaries over seeds: mean, spread and 95 % intervals; paired comparisons on the same rows."""

from __future__ import annotations

import numpy as np
from scipy import stats

from sdss_distill.core import conformal


def describe(values) -> dict:
    """n, mean, sample std and the half-width of a t-based 95 % confidence interval."""
    v = np.asarray(values, dtype=float)
    n = len(v)
    std = float(v.std(ddof=1)) if n > 1 else 0.0
    half = float(stats.t.ppf(0.975, n - 1) * std / np.sqrt(n)) if n > 1 else float("nan")
    return {"n": n, "mean": float(v.mean()) if n else float("nan"), "std": std, "ci95": half}


def paired(a, b, *, tie: float = 1e-12) -> dict:
    """a - b over matched seeds: mean, std and 95 % CI of the difference, wins/ties/losses of a,
    and the two-sided Wilcoxon signed-rank p-value (zero differences dropped, as Wilcoxon did;
    1.0 when every difference is zero)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length: {a.shape} vs {b.shape}")
    d = a - b
    nonzero = np.abs(d) > tie
    p = float(stats.wilcoxon(d[nonzero]).pvalue) if nonzero.sum() >= 1 else 1.0
    summary = describe(d)
    return {"n": summary["n"], "mean_diff": summary["mean"], "std_diff": summary["std"],
            "ci95": summary["ci95"], "wins": int((d > tie).sum()), "ties": int((~nonzero).sum()),
            "losses": int((d < -tie).sum()), "wilcoxon_p": p}


ALPHA = 0.05
"""The level a p-value is read against in the summaries."""


def p_text(p: float, n: int) -> str:
    """A Wilcoxon p for a summary, or why there is none: with n paired seeds the smallest
    two-sided p the signed-rank test can give is 2 / 2**n (every difference the same sign),
    0.5 for two seeds, so with n <= 5 no result can reach ALPHA and the p says nothing."""
    if n != n or n < 1 or 2.0 ** (1 - n) > ALPHA:
        return f"too few seeds for a test (n={0 if n != n else int(n)})"
    return f"{p:.3f}"


def coverage_law(n_cal: int, n_test: int, level: float):
    """The law of a split-conformal set's covered count on `n_test` rows when calibration and
    test rows are exchangeable (continuous scores): given its n_cal calibration rows,
    coverage is Beta(k, n_cal + 1 - k) with k = core.conformal.rank (Vovk 2012; Angelopoulos &
    Bates 2021), so the count is beta-binomial; None when k > n_cal (coverage is 1)."""
    k = conformal.rank(n_cal, level)
    return None if k > n_cal else stats.betabinom(n_test, k, n_cal + 1 - k)


def coverage_band_probability(n_cal: int, n_test: int, level: float, low: float,
                              high: float) -> float:
    """The chance that one run's measured coverage falls in [low, high] (`coverage_law`): what
    chance alone leaves of a per-seed band."""
    law = coverage_law(n_cal, n_test, level)
    if law is None:
        return float(low <= 1.0 <= high)
    m = np.arange(n_test + 1)
    inside = (m >= np.ceil(low * n_test - 1e-9)) & (m <= np.floor(high * n_test + 1e-9))
    return float(law.pmf(m[inside]).sum())


def coverage_interval(n_cal: int, n_test: int, level: float, mass: float = 0.9) -> tuple:
    """The central `mass` interval of `coverage_law` (fractions): where one run's measured
    coverage falls `mass` of the time for exchangeable rows."""
    law = coverage_law(n_cal, n_test, level)
    if law is None:
        return 1.0, 1.0
    tail = (1 - mass) / 2
    return float(law.ppf(tail) / n_test), float(law.ppf(1 - tail) / n_test)
