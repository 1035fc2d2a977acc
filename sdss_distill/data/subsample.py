"""Fewer training rows, test rows untouched: `--rows N` (learning curves) and training on one
sample of the combined dataset (transfer between samples).

Both act on a split that was already made, so the test rows are exactly the full run's for
the same seed: results with and without them are scored on the same objects.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from sdss_distill.core.errors import InputError
from sdss_distill.core.schema import SAMPLE
from sdss_distill.data.table import Split, strata

MIN_PER_STRATUM = 2
"""Rows kept of every stratum present (when it has them), so that the early-stopping slice,
itself stratified, can still be carved from each training subset."""


def stratified_take(df: pd.DataFrame, rows: np.ndarray, n: int, seed: int) -> np.ndarray:
    """`n` of `rows`, stratified by class (x sample): each stratum keeps its share (largest
    remainders, at least MIN_PER_STRATUM when it has them). Each stratum's rows are taken in
    one seeded order, so for a fixed seed a smaller `n` keeps (up to rounding) a subset of the
    rows a larger `n` keeps: learning-curve points are nested."""
    rows = np.sort(np.asarray(rows))
    if n >= len(rows):
        return rows
    key = strata(df.loc[rows])
    groups = [rows[key == k] for k in np.unique(key)]
    sizes = np.array([len(g) for g in groups])
    want = n * sizes / sizes.sum()
    take = np.minimum(np.maximum(np.floor(want).astype(int), MIN_PER_STRATUM), sizes)
    order = np.argsort(-(want - np.floor(want)))  # largest remainders first
    while take.sum() < n:
        for k in order:
            if take.sum() < n and take[k] < sizes[k]:
                take[k] += 1
    while take.sum() > n:  # the minimum per stratum overshot: trim the largest strata
        k = int(np.argmax(take - MIN_PER_STRATUM))
        if take[k] <= MIN_PER_STRATUM:
            raise ValueError(f"{n} rows cannot hold {len(groups)} class x sample strata of "
                             f"{MIN_PER_STRATUM} rows each")
        take[k] -= 1
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([rng.permutation(g)[:t] for g, t in zip(groups, take)]))


def subsample(df: pd.DataFrame, parts: Split, n: int, seed: int) -> Split:
    """`parts` with `n` non-test rows: teacher-train and student-train shrink in proportion
    (each stratified); the test rows are unchanged. `n` larger than the non-test rows is an
    InputError; equal to it, the split is returned as is."""
    total = len(parts.teacher_train) + len(parts.student_train)
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise InputError(f"rows must be a positive integer, got {n!r}")
    if n > total:
        raise InputError(f"--rows {n}: only {total} non-test rows to train on (teacher-train "
                         f"{len(parts.teacher_train)} + student-train {len(parts.student_train)}"
                         f"); pass at most {total}, or drop --rows")
    n_teacher = int(round(n * len(parts.teacher_train) / total))
    try:
        return dataclasses.replace(
            parts, teacher_train=stratified_take(df, parts.teacher_train, n_teacher, seed),
            student_train=stratified_take(df, parts.student_train, n - n_teacher, seed + 1))
    except ValueError as e:
        raise InputError(f"--rows {n} is too small: teacher-train and student-train each get "
                         f"about half, and {e}; pass a larger N") from None


def only_sample(df: pd.DataFrame, parts: Split, sample: str) -> Split:
    """`parts` with the training rows of one sample (`bright` or `faint`) of the combined
    dataset; the test rows (of every sample) are unchanged."""
    if SAMPLE not in df.columns:
        raise InputError(f"train_sample = {sample!r} needs the combined dataset (--data sdss), "
                         f"whose rows carry a {SAMPLE!r} column; this table has none")
    present = sorted(df[SAMPLE].astype(str).unique())
    if sample not in present:
        raise InputError(f"train_sample must be one of {', '.join(present)}, got {sample!r}")
    is_sample = df[SAMPLE].astype(str) == sample

    def keep(rows):
        return rows[is_sample.loc[rows].to_numpy()]
    return dataclasses.replace(parts, teacher_train=keep(parts.teacher_train),
                               student_train=keep(parts.student_train))
