"""Bootstrap 95 % intervals (numpy only): the one helper every figure and report uses to show
how far a rate or a mean could move with other test rows or other seeds.

- `rate_intervals(successes, rows)`: a rate k / n measured on n rows (an accuracy, a recall,
  a reliability bin's accuracy). Resampling the n rows with replacement draws the number of
  successes from Binomial(n, k / n), so the percentile bootstrap needs only (k, n): the
  report's counts, not its rows.
- `mean_interval(values)`: the mean of a few values (one per seed), by resampling them.
- `per_class_intervals(confusion)`: per-class precision, recall and F1 from a confusion
  matrix, resampling the rows behind it (a multinomial draw over its cells).

Both are percentile intervals from `REPS` resamples with a fixed seed, so a figure drawn twice
is drawn the same. A rate of 0 or 1 gets a zero-width interval (every resample is the same):
read such a bin's row count, not its bar.
"""

from __future__ import annotations

import numpy as np

LEVEL = 0.95
REPS = 2000
SEED = 0


def _ends(draws: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    tail = 50 * (1 - level)
    lo, hi = np.percentile(draws, [tail, 100 - tail], axis=-1)
    return lo, hi


def rate_intervals(successes, rows, *, level: float = LEVEL, reps: int = REPS,
                   seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) percentile bootstrap interval of each rate successes[i] / rows[i], as fractions;
    NaN where a group has no rows. `successes` may be a rate times rows (rounded here)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level!r}")
    n = np.atleast_1d(np.asarray(rows, dtype=np.int64))
    k = np.rint(np.atleast_1d(np.asarray(successes, dtype=np.float64))).astype(np.int64)
    if k.shape != n.shape or (k < 0).any() or (k > n).any():
        raise ValueError(f"successes must be counts between 0 and rows, got {k.tolist()} of "
                         f"{n.tolist()}")
    rng = np.random.default_rng(seed)
    has = n > 0
    p = np.where(has, k / np.maximum(n, 1), 0.0)
    draws = rng.binomial(n[:, None], p[:, None], size=(len(n), reps)) / np.maximum(n, 1)[:, None]
    lo, hi = _ends(draws, level)
    return np.where(has, lo, np.nan), np.where(has, hi, np.nan)


def rate_interval(successes: float, rows: int, **kwargs) -> tuple[float, float]:
    """`rate_intervals` of one rate."""
    lo, hi = rate_intervals([successes], [rows], **kwargs)
    return float(lo[0]), float(hi[0])


def mean_interval(values, *, level: float = LEVEL, reps: int = REPS,
                  seed: int = SEED) -> tuple[float, float]:
    """(lo, hi) percentile bootstrap interval of the mean of `values` (NaN ignored); NaN for
    fewer than two values. With a handful of values (seeds) the percentile interval is too
    narrow rather than too wide: a figure says how many values each point has."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if len(v) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(reps, len(v)))].mean(axis=1)
    lo, hi = _ends(means, level)
    return float(lo), float(hi)


def per_class_intervals(confusion, *, level: float = LEVEL, reps: int = REPS,
                        seed: int = SEED) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"precision" | "recall" | "f1": (lo, hi) per class, as fractions} from a confusion
    matrix (rows true, columns predicted): each resample redraws its n rows over the cells
    (Multinomial(n, cells / n)) and recomputes the three scores; a score undefined in a
    resample (no row of the class, none predicted) is left out of that class's percentiles."""
    cm = np.asarray(confusion, dtype=np.int64)
    n = int(cm.sum())
    if n == 0:
        nan = np.full(len(cm), np.nan)
        return {m: (nan, nan) for m in ("precision", "recall", "f1")}
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, (cm / n).ravel(), size=reps).reshape(reps, *cm.shape)
    hit = np.diagonal(draws, axis1=1, axis2=2).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = hit / draws.sum(axis=1)
        recall = hit / draws.sum(axis=2)
        f1 = 2 * precision * recall / (precision + recall)
    tail = 50 * (1 - level)
    out = {}
    for name, score in (("precision", precision), ("recall", recall), ("f1", f1)):
        lo, hi = np.nanpercentile(score, [tail, 100 - tail], axis=0)
        out[name] = (lo, hi)
    return out
