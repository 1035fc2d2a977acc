"""Where a workspace's rows come from: a cleaned table held in memory (this module) or Parquet
files read chunk by chunk (`stream_source.StreamData`), behind one interface.

The workspace's arm builders (teacher, fold teachers, student, baseline) ask their data for
what differs between the two: a fresh model normalised on a row set's fit rows (`build`),
a fit on a row set (`fit`), soft labels of a teacher on a row set (`logits`, `map_soft`), and
cross-fitted fold teachers (`fold_teachers`). In memory these are the array calls
(`fit.train_teacher`, `distillers.distil_offline` through an `OfflineDistiller`,
`fit.train_parallel`); a stream runs the same models, loss (from the same `OfflineDistiller`)
and stopping on the JAX engine over batches (`jax_batches`). Row sets: teacher_train,
student_train, and non_test (both).
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

from sdss_distill.data.table import Split, features, labels, validation_slice
from sdss_distill.distill import targets
from sdss_distill.distill.distillers import distil_offline
from sdss_distill.distill.fit import train_parallel, train_teacher
from sdss_distill.models.mlp import build_mlp, logits

ROWS = ("teacher_train", "student_train", "non_test")
"""Training row sets a method may use; non_test = teacher_train + student_train."""


class MemoryData:
    """A cleaned table and its split, held in memory: row sets as arrays."""

    streamed = False

    def __init__(self, df: pd.DataFrame, split: Split, seed: int, validation_fraction: float,
                 once):
        self.df, self.split, self.seed = df, split, seed
        self.validation_fraction = validation_fraction
        self._once = once  # the workspace cache's `once`: fit rows made once per row set

    def rows(self, name: str) -> np.ndarray:
        if name != "non_test" and name not in ROWS:
            raise ValueError(f"unknown row set {name!r}; choose one of: {', '.join(ROWS)}")
        return self.split.rows(name)

    def fit_rows(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(fit rows, early-stopping rows) of a row set; made once so every arm uses the same."""
        return self._once(("fit_rows", name), lambda: validation_slice(
            self.df, self.rows(name), self.validation_fraction, self.seed))

    def arrays(self, name: str, view):
        """((x_fit, y_fit), (x_val, y_val)) of a row set in a view."""
        fit, val = self.fit_rows(name)
        return [(features(self.df.loc[r], view), labels(self.df.loc[r])) for r in (fit, val)]

    def build(self, view, hidden, rows: str, *, name: str, dropout: float = 0.0,
              init_seed: int) -> keras.Model:
        """A fresh MLP normalised on the fit rows of `rows`; the same `init_seed` and
        architecture give the same initial weights."""
        x = self.arrays(rows, view)[0][0]
        keras.utils.set_random_seed(init_seed)
        return build_mlp(view, tuple(hidden), x, name=name, dropout=dropout)

    def fit(self, model, view, rows: str, settings, *, soft=None, alpha: float = 0.0,
            loss=None, say=None):
        """Fit one model on a row set: hard labels, or distilled from `soft` (fit part,
        early-stopping part) at `alpha` with the soft `loss`."""
        (x, y), (x_val, y_val) = self.arrays(rows, view)
        if soft is None:
            return train_teacher(model, x, y, (x_val, y_val), settings)
        return distil_offline(model, x, y, soft[0], (x_val, y_val, soft[1]), settings,
                              alpha=alpha, loss=loss)

    def logits(self, model, view, rows: str) -> tuple[np.ndarray, np.ndarray]:
        """A model's logits on (fit rows, early-stopping rows) of a row set."""
        return tuple(logits(model, features(self.df.loc[r], view)) for r in self.fit_rows(rows))

    @staticmethod
    def map_soft(fn, *softs):
        """Soft labels combined part by part: fn(a_fit, b_fit, ...), fn(a_val, b_val, ...)."""
        return tuple(fn(*parts) for parts in zip(*softs))

    def fold_teachers(self, view, hidden, folds: int, settings, *, dropout: float = 0.0,
                      say=None):
        """K teachers, teacher k on the non-test rows outside stratified fold k, trained at once.
        Returns (nets, fitted, out-of-fold logits of the non-test (fit, early-stopping) rows)."""
        rows = self.rows("non_test")
        x, y = features(self.df.loc[rows], view), labels(self.df.loc[rows])
        fold = targets.fold_ids(y, folds, self.seed)
        train, val = targets.fold_masks(fold, y, folds, self.validation_fraction, self.seed)
        keras.utils.set_random_seed(self.seed + 2000)
        nets = [build_mlp(view, hidden, x[train[:, k]], name=f"teacher_fold_{k}", dropout=dropout)
                for k in range(folds)]
        fitted = train_parallel(nets, x, y, train, val, settings)
        stacked = np.stack([logits(m, x) for m in nets], axis=1)
        oof = pd.DataFrame(targets.out_of_fold(stacked, fold, train, val), index=rows)
        fit_rows, val_rows = self.fit_rows("non_test")
        return nets, fitted, (oof.loc[fit_rows].to_numpy("float32"),
                              oof.loc[val_rows].to_numpy("float32"))
