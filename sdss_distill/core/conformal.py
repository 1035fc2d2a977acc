"""Mondrian (per true class) split-conformal prediction sets, in numpy: thresholds from
calibration rows, the set of each row, coverage and set size, and the bounded material a model
card stores so the edge runtime, the catalogue scorer and the C build apply the same thresholds.

Nonconformity of a row for class c: s = 1 - p_c (p: the model's probabilities). On the n_c
calibration rows of true class c, the threshold for a level L is the k-th smallest s with
k = ceil((n_c + 1) L) (infinite when k > n_c: the class is always in the set). A row's set is
every class whose s is at most its threshold. For rows exchangeable with the calibration rows,
a set holds the true class with probability at least L for each true class (marginal over
those rows; not per magnitude bin nor per any other subgroup).
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_LEVEL = 0.9
"""The level export writes into the C header, and the reports' set coverage level."""
LEVEL_RANGE = (0.5, 0.99)
"""The levels a model card's material answers (any level inside, exactly or conservatively)."""
MAX_POINTS = 512
"""At most this many stored order statistics per class (a card stays small)."""
SEPARATOR = "+"
"""Between class names in a set column: `GALAXY+QSO`; an empty set is an empty string."""


def check_level(level) -> float:
    """`level` as a float in (0, 1), or a ValueError saying so."""
    try:
        value = float(level)
    except (TypeError, ValueError):
        raise ValueError(f"--sets: the level must be a number in (0, 1), got {level!r}") from None
    if not 0 < value < 1 or not math.isfinite(value):
        raise ValueError(f"--sets: the level must be in (0, 1) (0.9 for 90 % sets), got {level!r}")
    return value


def rank(n: int, level: float) -> int:
    """The finite-sample rank ceil((n + 1) level) (1-based) of the conformal quantile."""
    return int(math.ceil((n + 1) * level - 1e-12))


def nonconformity(probabilities: np.ndarray) -> np.ndarray:
    """1 - p for every row and class (float64)."""
    return 1.0 - np.asarray(probabilities, dtype=np.float64)


def thresholds(probabilities: np.ndarray, y: np.ndarray, level: float,
               n_classes: int | None = None) -> np.ndarray:
    """Per class c, the conformal threshold on 1 - p_c from the calibration rows of true class c
    (inf when the class has too few rows for the level)."""
    s = nonconformity(probabilities)
    y = np.asarray(y)
    n_classes = n_classes or s.shape[1]
    out = np.full(n_classes, np.inf)
    for c in range(n_classes):
        own = np.sort(s[y == c, c])
        k = rank(len(own), level)
        if 1 <= k <= len(own):
            out[c] = own[k - 1]
    return out


def sets(probabilities: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Boolean (rows, classes): class c is in a row's set when 1 - p_c <= q_c. NaN rows get
    an empty set."""
    s = nonconformity(probabilities)
    with np.errstate(invalid="ignore"):
        return s <= np.asarray(q, dtype=np.float64)[None, :]


def bitmask(members: np.ndarray) -> np.ndarray:
    """A set as an integer, bit c for class c (what the C build's sdss_set returns)."""
    members = np.asarray(members, bool)
    return (members * (1 << np.arange(members.shape[1]))).sum(axis=1).astype(np.int64)


def names(members: np.ndarray, labels) -> np.ndarray:
    """Each row's set as class names joined by SEPARATOR (labels order); empty set: ""."""
    members = np.asarray(members, bool)
    table = {}
    out = []
    for code in bitmask(members):
        if code not in table:
            table[code] = SEPARATOR.join(lab for c, lab in enumerate(labels) if code >> c & 1)
        out.append(table[code])
    return np.asarray(out, dtype=object)


def coverage(members: np.ndarray, y: np.ndarray, labels) -> dict:
    """Per true class the fraction of its rows whose set holds it (None with no rows), the rows
    counted, and the mean set size over all rows."""
    members, y = np.asarray(members, bool), np.asarray(y)
    per = {}
    for c, lab in enumerate(labels):
        own = members[y == c, c]
        per[lab] = {"rows": int(len(own)), "coverage": float(own.mean()) if len(own) else None}
    return {"per_class": per, "rows": int(len(y)),
            "mean_set_size": float(members.sum(1).mean()) if len(y) else None,
            "empty_sets": float((members.sum(1) == 0).mean()) if len(y) else None}


def material(probabilities: np.ndarray, y: np.ndarray, labels, *,
             level_range=LEVEL_RANGE, max_points: int = MAX_POINTS) -> dict:
    """What a card stores: per class, its calibration row count and the sorted nonconformity
    scores at the ranks the levels in `level_range` need (every rank, or `max_points` of them
    evenly spaced when there are more: then a level between two stored ranks uses the higher,
    so its sets are at least as large as the exact ones)."""
    s = nonconformity(probabilities)
    y = np.asarray(y)
    classes = {}
    for c, lab in enumerate(labels):
        own = np.sort(s[y == c, c])
        n = len(own)
        lo, hi = rank(n, level_range[0]), min(rank(n, level_range[1]), n)
        ranks = np.arange(lo, hi + 1) if hi >= lo else np.zeros(0, int)
        if len(ranks) > max_points:
            ranks = np.unique(np.round(np.linspace(lo, hi, max_points)).astype(int))
        classes[lab] = {"n": int(n), "ranks": ranks.tolist(),
                        "scores": [float(own[k - 1]) for k in ranks]}
    return {"nonconformity": "1 - p_class", "mondrian": "per true class",
            "level_range": list(level_range), "classes": classes}


def thresholds_from(material_doc: dict, level: float, labels) -> np.ndarray:
    """Per class the threshold for `level` from a card's material (see `material`): exact when
    the rank is stored, else the next stored rank up; inf when the class has too few rows."""
    lo, hi = material_doc["level_range"]
    if not lo <= level <= hi:
        raise ValueError(f"--sets: the model card's calibration covers levels {lo}-{hi}, "
                         f"got {level}")
    out = np.full(len(labels), np.inf)
    for c, lab in enumerate(labels):
        entry = material_doc["classes"][lab]
        k = rank(int(entry["n"]), level)
        ranks = np.asarray(entry["ranks"], dtype=np.int64)
        if k > int(entry["n"]) or not len(ranks):
            continue
        at = int(np.searchsorted(ranks, k))
        if at < len(ranks):
            out[c] = float(entry["scores"][at])
    return out
