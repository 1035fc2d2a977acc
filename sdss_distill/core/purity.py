"""Selections at a chosen purity, in numpy: the purity-completeness curve of a class from its
calibration rows under a class mix, and the threshold that reaches a purity.

A selection of class c keeps the rows with p_c >= t. From calibration rows, per true class k,
the fraction of k's rows kept at t is R_k(t) (R_c is the completeness). Under a class mix pi
(the training mix, or a catalogue's own mix estimated by EM), the expected purity is
    purity(t) = pi_c R_c(t) / sum_k pi_k R_k(t),
which reweights the per-class score distributions, so a catalogue with more stars than the
training rows gets a higher threshold for the same purity. The scores are binned (BINS
equal-width bins of p_c in [0, 1]) so a model card stores the curves in bounded size; the
thresholds are the bins' lower edges.

In the purity, each R_k(t) is the Jeffreys estimate (kept + 1/2) / (n_k + 1), not kept / n_k:
when a contaminating class is weighted up (80 % stars), the few calibration rows in its tail
decide the threshold, and a raw count of zero would promise a purity of 100 % that a catalogue
does not keep (the lowest threshold reaching the target is then picked where the count
happened to run out). The completeness reported is the raw fraction kept.
"""

from __future__ import annotations

import numpy as np

BINS = 1000
"""Equal-width bins of a class probability in [0, 1]: thresholds every 0.001."""
PSEUDO = 0.5
"""Jeffreys pseudo-count added to each class's kept count (and twice to its rows) in the
purity's rates."""


def histograms(probabilities: np.ndarray, y: np.ndarray, n_classes: int | None = None,
               bins: int = BINS) -> np.ndarray:
    """counts[c, k, b]: calibration rows of true class k whose p_c falls in bin b."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(y)
    n_classes = n_classes or p.shape[1]
    which = np.clip((p * bins).astype(np.int64), 0, bins - 1)
    out = np.zeros((n_classes, n_classes, bins), dtype=np.int64)
    for c in range(n_classes):
        for k in range(n_classes):
            out[c, k] = np.bincount(which[y == k, c], minlength=bins)
    return out


def histogram_text(counts: np.ndarray, labels) -> dict:
    """purity.histograms' counts as {score class: {true class: "n0 n1 ..."}} (short JSON)."""
    return {"bins": int(counts.shape[2]), "score": "p_class, equal-width bins in [0, 1]",
            "counts": {a: {b: " ".join(map(str, counts[i, j].tolist()))
                           for j, b in enumerate(labels)} for i, a in enumerate(labels)}}


def histogram_counts(doc: dict, labels) -> np.ndarray:
    """`histogram_text` read back: counts[c, k, b] (KeyError, TypeError, ValueError or
    AttributeError on a corrupt document)."""
    return np.array([[np.array(doc["counts"][a][b].split(), dtype=np.int64) for b in labels]
                     for a in labels])


def curve(counts: np.ndarray, c: int, priors, pseudo: float = PSEUDO) -> dict:
    """Class c's curve from `histograms`' counts under the mix `priors`: per threshold (each
    bin's lower edge), the completeness R_c (raw) and the expected purity (Jeffreys rates;
    `pseudo` 0: the raw rates, as measured on rows that chose nothing, NaN where none is kept)."""
    counts = np.asarray(counts, dtype=np.float64)[c]  # (true class, bin)
    pi = np.asarray(priors, dtype=np.float64)
    n = counts.sum(axis=1)
    if n[c] == 0:
        raise ValueError(f"no calibration rows of class {c}: no purity curve")
    kept = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1]
    rate = (kept + pseudo) / np.maximum(n + 2 * pseudo, 1e-300)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        purity = pi[c] * rate[c] / (pi[:, None] * rate).sum(axis=0)
    bins = counts.shape[1]
    return {"threshold": np.arange(bins) / bins, "completeness": kept[c] / n[c],
            "purity": purity}


def threshold_for(counts: np.ndarray, c: int, priors, purity: float) -> dict | None:
    """The most complete selection of class c whose expected purity is at least `purity`:
    {threshold, completeness, purity}, or None when no threshold reaches it."""
    cv = curve(counts, c, priors)
    ok = np.flatnonzero(np.nan_to_num(cv["purity"], nan=-1.0) >= purity)
    if not len(ok):
        return None
    return _point(cv, int(ok[0]))  # the lowest threshold reaching the purity keeps the most


def highest(counts: np.ndarray, c: int, priors) -> dict:
    """The threshold of the highest expected purity of class c under `priors` (what to ask
    for when a purity is out of reach): {threshold, completeness, purity}."""
    cv = curve(counts, c, priors)
    return _point(cv, int(np.nanargmax(cv["purity"])))


def _point(cv: dict, b: int) -> dict:
    return {"threshold": float(cv["threshold"][b]), "completeness": float(cv["completeness"][b]),
            "purity": float(cv["purity"][b])}


def measured(selected: np.ndarray, y: np.ndarray, c: int) -> dict:
    """Purity and completeness of a boolean selection of class c against true labels."""
    selected, y = np.asarray(selected, bool), np.asarray(y)
    true = y == c
    return {"selected": int(selected.sum()),
            "purity": float(true[selected].mean()) if selected.any() else None,
            "completeness": float(selected[true].mean()) if true.any() else None}
