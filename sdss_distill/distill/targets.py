"""Where soft labels come from: one teacher, an ensemble of teachers, or out-of-fold teachers.

Every source yields teacher *logits* for the rows a student trains on. An ensemble's
tempered mean probability p is returned as T * log(p), whose softmax at temperature T is p
again, so every loss takes logits whatever the source.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp
from sklearn.model_selection import StratifiedKFold, train_test_split

from sdss_distill.core.prob import log_softmax


def ensemble_logits(member_logits: list[np.ndarray] | np.ndarray, temperature: float) -> np.ndarray:
    """T * log(mean_k softmax(l_k / T)): the members' tempered mean probability, as logits."""
    stacked = np.stack(list(member_logits), axis=0).astype("float64")
    log_p = log_softmax(stacked / temperature, axis=-1)
    mean_log_p = logsumexp(log_p, axis=0) - np.log(len(stacked))
    return (temperature * mean_log_p).astype("float32")


def fold_ids(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """A stratified fold number in [0, folds) for each row."""
    ids = np.empty(len(labels), "int64")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (_, held_out) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        ids[held_out] = k
    return ids


def fold_masks(fold: np.ndarray, labels: np.ndarray, folds: int, validation_fraction: float,
               seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) masks of shape (rows, folds): teacher k never sees fold k.

    Teacher k's rows are the other folds, less a stratified validation slice of them used
    only for early stopping.
    """
    train = np.zeros((len(fold), folds), bool)
    val = np.zeros((len(fold), folds), bool)
    for k in range(folds):
        rows = np.flatnonzero(fold != k)
        fit, held = train_test_split(rows, test_size=validation_fraction, stratify=labels[rows],
                                     random_state=seed + k)
        train[fit, k] = True
        val[held, k] = True
    return train, val


def out_of_fold(fold_logits: np.ndarray, fold: np.ndarray, train_mask: np.ndarray,
                val_mask: np.ndarray) -> np.ndarray:
    """Row i's soft label from teacher fold[i], which neither trained nor early-stopped on it.

    `fold_logits` is (rows, folds, classes). Raises if any row's teacher saw that row.
    """
    rows = np.arange(len(fold))
    seen = train_mask[rows, fold] | val_mask[rows, fold]
    if seen.any():
        raise ValueError(f"{int(seen.sum())} rows would get a soft label from a teacher that "
                         f"trained on them (first: row {int(np.flatnonzero(seen)[0])})")
    return fold_logits[rows, fold]
