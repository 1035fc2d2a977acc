"""Class priors of a catalogue: EM estimation, re-weighting of posteriors, priors files (numpy only).

A classifier trained where the classes have priors pi_t gives posteriors p_t(k|x). If a
catalogue differs from the training set only in its class mix (prior shift: p(x|k) is the
same), its posteriors are p_t(k|x) re-weighted by w_k = pi_k / pi_t_k and renormalised, and
its priors pi can be estimated from the model's posteriors alone by EM (Saerens, Latinne &
Decaestecker 2002, "Adjusting the outputs of a classifier to new a priori probabilities: a
simple procedure", Neural Computation 14(1), eq. 2.9-2.10):

    E-step  p_s(k|x_i) = w_k p_t(k|x_i) / sum_j w_j p_t(j|x_i),  w = pi_s / pi_t
    M-step  pi_{s+1,k} = (1/N) sum_i p_s(k|x_i)

The E-step's sums are additive over rows, so on a cluster each iteration is one map-reduce
over the partitions (`em` takes the sum as a function). When the class-conditional
distributions differ too (covariate shift, e.g. a bright-trained model on faint objects),
the estimate is biased: see docs/guide/scoring-priors.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sdss_distill.core.bounded import load_json
from sdss_distill.core.errors import InputError, listing
from sdss_distill.core.prob import fractions  # noqa: F401  (re-exported)

TOL = 1e-6
"""EM stops when no prior moves by more than this between iterations."""
MAX_ITER = 1000
SUM_TOL = 0.01
"""A priors file's values must sum to 1 within this (they are then renormalised)."""


def vector(priors: dict, labels: Sequence[str]) -> np.ndarray:
    """A {label: prior} dict as a float64 vector in `labels` order."""
    return np.array([float(priors[label]) for label in labels], np.float64)


def as_dict(values, labels: Sequence[str]) -> dict[str, float]:
    return {label: float(v) for label, v in zip(labels, values)}


def weights(target: np.ndarray, training: np.ndarray) -> np.ndarray:
    """w_k = target_k / training_k, the factor a posterior of class k is multiplied by."""
    training = np.asarray(training, np.float64)
    if (training <= 0).any():
        raise ValueError(f"weights: training priors must be > 0, got {training.tolist()}")
    return np.asarray(target, np.float64) / training


def reweight(p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(n, K) posteriors re-weighted by w and renormalised (rows stay on the simplex)."""
    q = np.asarray(p, np.float64) * np.asarray(w, np.float64)
    return q / q.sum(axis=1, keepdims=True)


def best_class(p) -> np.ndarray:
    """int8 index of the largest of the K rows of p (a (K, n) array or K columns) at every
    position, the first of equal ones (as numpy argmax), without (n, K) temporaries."""
    if len(p) == 1:
        return np.zeros(len(p[0]), np.int8)
    idx = np.greater(p[1], p[0]).view(np.int8)  # 0 or 1
    best = np.maximum(p[0], p[1])
    more = np.empty(len(idx), bool)
    for k in range(2, len(p)):
        np.greater(p[k], best, out=more)
        np.copyto(idx, np.int8(k), where=more)
        if k < len(p) - 1:
            np.maximum(best, p[k], out=best)
    return idx


def reweight_columns(cols, w) -> tuple[list[np.ndarray], np.ndarray]:
    """Per-class probability columns (a list, or the scorer's (K, n) array) re-weighted by w
    and renormalised, and the new class index (best_class)."""
    q = [c * np.float32(wk) for c, wk in zip(cols, w)]
    idx = best_class(q)
    total = q[0].copy()
    for c in q[1:]:
        total += c
    for c in q:
        c /= total
    return q, idx


CHUNK = 16_384
"""Rows per BLAS call in e_step: float32 partial sums stay short, their total is float64."""


def e_step(p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Sum over rows of the re-weighted posteriors (K,): additive over partitions.

    sum_i w_k p_ik / (p_i . w) = w_k * sum_i p_ik / d_i: two matrix-vector products per chunk
    in p's own dtype (no (n, K) temporaries; 20x faster than the elementwise form on float32
    probabilities), chunk sums added in float64 (relative error ~1e-7 for float32 input).
    """
    w = np.asarray(w, np.float64)
    p = np.asarray(p)
    if not np.issubdtype(p.dtype, np.floating):
        p = p.astype(np.float64)
    wt = w.astype(p.dtype)
    total = np.zeros(len(w))
    for k in range(0, len(p), CHUNK):
        c = p[k:k + CHUNK]
        total += (np.reciprocal(c @ wt) @ c).astype(np.float64)
    return total * w


@dataclass(frozen=True)
class EMResult:
    priors: np.ndarray
    iterations: int
    converged: bool
    rows: int


def em(sums: Callable[[np.ndarray], tuple[np.ndarray, int]], training: np.ndarray, *,
       tol: float = TOL, max_iter: int = MAX_ITER) -> EMResult:
    """Saerens-Latinne-Decaestecker EM with the E-step given as `sums(w) -> (sum of re-weighted
    posteriors, rows)`, so that it can run anywhere (in memory, or a map-reduce over a
    cluster's partitions). Starts from the training priors."""
    training = np.asarray(training, np.float64)
    current = training.copy()
    n = 0
    for iteration in range(1, max_iter + 1):
        total, n = sums(weights(current, training))
        if n == 0:
            raise ValueError("em: no rows to estimate priors from")
        new = np.asarray(total, np.float64) / n
        new = np.clip(new, 1e-12, None)  # a class may vanish; keep weights finite
        new /= new.sum()
        moved = float(np.abs(new - current).max())
        current = new
        if moved < tol:
            return EMResult(current, iteration, True, n)
    return EMResult(current, max_iter, False, n)


def estimate(p: np.ndarray, training: np.ndarray, **kwargs) -> EMResult:
    """EM priors of in-memory (n, K) posteriors."""
    p = np.asarray(p, np.float64)
    return em(lambda w: (e_step(p, w), len(p)), training, **kwargs)


def check_priors(doc, labels: Sequence[str], where: str) -> dict[str, float]:
    """{label: prior} validated against the model's labels (each > 0, summing to 1 within
    SUM_TOL), renormalised; InputError naming `where` otherwise."""
    if not isinstance(doc, dict):
        raise InputError(f"{where}: priors must be a JSON object such as "
                         f"{json.dumps(dict.fromkeys(labels, round(1 / len(labels), 3)))}, "
                         f"got {type(doc).__name__}")
    missing = [c for c in labels if c not in doc]
    unexpected = [c for c in doc if c not in labels]
    if missing or unexpected:
        raise InputError(f"{where}: priors need exactly the model's classes {listing(labels)}"
                         + (f"; missing {listing(missing)}" if missing else "")
                         + (f"; unexpected {listing(unexpected)}" if unexpected else ""))
    values = {}
    for label in labels:
        v = doc[label]
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
            raise InputError(f"{where}: prior of {label} must be a number > 0, got {v!r}")
        values[label] = float(v)
    total = sum(values.values())
    if abs(total - 1) > SUM_TOL:
        raise InputError(f"{where}: priors must sum to 1 (within {SUM_TOL}), got {total:.4g}")
    return {label: v / total for label, v in values.items()}


def read_priors(path: Path, labels: Sequence[str]) -> dict[str, float]:
    """A priors JSON file: {"GALAXY": 0.2, "QSO": 0.05, "STAR": 0.75}, or a score run's
    _priors.json (its "applied" priors are used)."""
    path = Path(path)
    try:
        doc = load_json(path, fix="give training, em or a small JSON file of class priors")
    except FileNotFoundError:
        raise InputError(f"--priors {path}: no such file; give training, em or a JSON file of "
                         f"class priors") from None
    except InputError as e:
        raise InputError(f"--priors {e}") from None
    except OSError as e:
        raise InputError(f"--priors {path}: not a readable JSON file ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''})") from None
    if isinstance(doc, dict) and isinstance(doc.get("applied"), dict):
        doc = doc["applied"]
    return check_priors(doc, labels, f"--priors {path}")
