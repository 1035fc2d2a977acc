"""One seed's data and teachers, shared by every method (and every cell of a sweep).

A method asks the workspace for training arrays, the teacher, fold teachers or a hard-label
baseline; each is trained once per seed and settings, then reused. Arms are what a method
returns: named models (or combinations of models) evaluated, reported and saved alike.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np
import pandas as pd

from sdss_distill.core.schema import BASELINE, STUDENT, STUDENT_VIEW, TEACHER, View, get_view
from sdss_distill.data.table import Split, features, labels, validation_slice
from sdss_distill.distill import targets
from sdss_distill.distill.fit import FitSettings, Fitted, distil_offline, train_parallel, train_teacher
from sdss_distill.distill.losses import soft_loss
from sdss_distill.models.mlp import build_mlp, ensemble_model, logits

ROWS = ("teacher_train", "student_train", "non_test")
"""Training row sets a method may use; non_test = teacher_train + student_train."""


@dataclass
class Arm:
    """A named model a method produced, with its role in the comparison.

    role: teacher | student | baseline | assistant | member | combination. `model` is saved
    and can be exported; `combine` (for a majority vote) computes logits from other arms.
    """

    name: str
    role: str
    view: View
    rows: str
    model: keras.Model | None = None
    fitted: Fitted | None = None
    combine: Callable[[pd.DataFrame], np.ndarray] | None = None
    parameters: int | None = None
    notes: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.parameters is None and self.model is not None:
            self.parameters = int(self.model.count_params())

    def logits(self, df: pd.DataFrame) -> np.ndarray:
        if self.combine is not None:
            return self.combine(df)
        return logits(self.model, features(df, self.view))


class Workspace:
    """Cleaned table, split and views of one seed, plus a cache of what was trained on them."""

    def __init__(self, df: pd.DataFrame, split: Split, *, seed: int, teacher_view: str,
                 validation_fraction: float, say: Callable[[str], None] | None = None):
        self.df, self.split, self.seed = df, split, seed
        self.teacher_view, self.student_view = get_view(teacher_view), get_view(STUDENT_VIEW)
        self.validation_fraction = validation_fraction
        self.say = say or (lambda msg: None)
        self._cache: dict = {}

    # -- rows and arrays ------------------------------------------------------------------
    def rows(self, name: str) -> np.ndarray:
        if name == "non_test":
            return np.sort(np.concatenate([self.split.teacher_train, self.split.student_train]))
        if name not in ROWS:
            raise ValueError(f"unknown row set {name!r}; choose one of: {', '.join(ROWS)}")
        return getattr(self.split, name)

    def fit_rows(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(fit rows, early-stopping rows) of a row set; cached so every arm uses the same."""
        return self._once(("fit_rows", name), lambda: validation_slice(
            self.df, self.rows(name), self.validation_fraction, self.seed))

    def arrays(self, name: str, view: View):
        """((x_fit, y_fit), (x_val, y_val)) of a row set in a view."""
        fit, val = self.fit_rows(name)
        return [(features(self.df.loc[r], view), labels(self.df.loc[r])) for r in (fit, val)]

    def paired_arrays(self, name: str):
        """((x, y), (x_val, y_val)) with x = {"student": ..., TEACHER: ...}: both views of the
        same rows, for distillers that run the teacher themselves."""
        (xs, y), (xs_val, y_val) = self.arrays(name, self.student_view)
        (xt, _), (xt_val, _) = self.arrays(name, self.teacher_view)
        return ({"student": xs, TEACHER: xt}, y), ({"student": xs_val, TEACHER: xt_val}, y_val)

    def _once(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def cached(self, name: str, cfg, parts: tuple, make):
        """What `make()` returns, made once per `name`, `parts` and every fit setting of `cfg`
        (for a method's own models: the key cannot leave a setting out)."""
        return self._once((name, *parts, _fit_key(cfg)), make)

    def timed(self, name: str, fitted: Fitted) -> Fitted:
        self.say(f"{name}: {fitted.epochs} epochs in {fitted.seconds:.1f} s")
        return fitted

    # -- models ---------------------------------------------------------------------------
    def new_model(self, view: View, hidden, x_fit: np.ndarray, *, name: str, dropout: float = 0.0,
                  init_seed: int | None = None) -> keras.Model:
        """A fresh MLP; the same `init_seed` and architecture give the same initial weights."""
        keras.utils.set_random_seed(self.seed if init_seed is None else init_seed)
        return build_mlp(view, tuple(hidden), x_fit, name=name, dropout=dropout)

    def teacher(self, cfg) -> Arm:
        """The deep teacher on teacher-train rows (trained once per settings)."""
        key = (TEACHER, tuple(cfg.teacher_hidden), cfg.teacher_dropout, _fit_key(cfg))

        def make():
            (x, y), val = self.arrays("teacher_train", self.teacher_view)
            model = self.new_model(self.teacher_view, cfg.teacher_hidden, x, name=TEACHER,
                                   dropout=cfg.teacher_dropout)
            fitted = self.timed(TEACHER, train_teacher(model, x, y, val,
                                                         fit_settings(cfg, teacher=True)))
            return Arm(TEACHER, TEACHER, self.teacher_view, "teacher_train", model, fitted)
        return self._once(key, make)

    def teacher_logits(self, arm: Arm, rows: str) -> tuple[np.ndarray, np.ndarray]:
        """A teacher arm's logits on (fit rows, early-stopping rows) of a row set."""
        def make():  # keeps `arm` alive, so its id cannot be reused by another arm
            fit, val = self.fit_rows(rows)
            return arm, (arm.logits(self.df.loc[fit]), arm.logits(self.df.loc[val]))
        return self._once(("logits", id(arm), rows), make)[1]

    def teacher_ensemble(self, cfg, members: int) -> Arm:
        """`members` teachers (different initial weights) on teacher-train rows, trained at once;
        the arm's model averages their probabilities."""
        key = ("teacher_ensemble", members, tuple(cfg.teacher_hidden), _fit_key(cfg))

        def make():
            (x, y), (x_val, y_val) = self.arrays("teacher_train", self.teacher_view)
            keras.utils.set_random_seed(self.seed + 1000)
            nets = [build_mlp(self.teacher_view, cfg.teacher_hidden, x, name=f"teacher_{k}",
                              dropout=cfg.teacher_dropout) for k in range(members)]
            xs, ys = np.concatenate([x, x_val]), np.concatenate([y, y_val])
            train = np.repeat(np.arange(len(xs))[:, None] < len(x), members, axis=1)
            fitted = self.timed(f"{members} ensemble teachers", train_parallel(
                nets, xs, ys, train, ~train, fit_settings(cfg, teacher=True)))
            model = ensemble_model(nets, self.teacher_view, name="teacher_ensemble")
            return Arm(TEACHER, TEACHER, self.teacher_view, "teacher_train", model, fitted,
                       notes={"members": [m.name for m in nets]})
        return self._once(key, make)

    def fold_teachers(self, cfg, folds: int):
        """K teachers, teacher k on the non-test rows outside fold k, trained at once.

        Returns (teacher arm: the K teachers' mean probability; out-of-fold logits for the
        non-test rows' (fit, early-stopping) parts, each row scored by the teacher that never
        saw it).
        """
        key = ("fold_teachers", folds, tuple(cfg.teacher_hidden), _fit_key(cfg))

        def make():
            rows = self.rows("non_test")
            x = features(self.df.loc[rows], self.teacher_view)
            y = labels(self.df.loc[rows])
            fold = targets.fold_ids(y, folds, self.seed)
            train, val = targets.fold_masks(fold, y, folds, self.validation_fraction, self.seed)
            keras.utils.set_random_seed(self.seed + 2000)
            nets = [build_mlp(self.teacher_view, cfg.teacher_hidden, x[train[:, k]],
                              name=f"teacher_fold_{k}", dropout=cfg.teacher_dropout)
                    for k in range(folds)]
            fitted = self.timed(f"{folds} fold teachers ({self.teacher_view.name})", train_parallel(
                nets, x, y, train, val, fit_settings(cfg, teacher=True)))
            stacked = np.stack([logits(m, x) for m in nets], axis=1)
            oof = pd.DataFrame(targets.out_of_fold(stacked, fold, train, val), index=rows)
            fit_rows, val_rows = self.fit_rows("non_test")
            model = ensemble_model(nets, self.teacher_view, name="teacher_folds")
            arm = Arm(TEACHER, TEACHER, self.teacher_view, "non_test", model, fitted,
                      notes={"folds": folds, "members": [m.name for m in nets]})
            return arm, (oof.loc[fit_rows].to_numpy("float32"), oof.loc[val_rows].to_numpy("float32"))
        return self._once(key, make)

    def baseline(self, cfg, rows: str, hidden=None) -> Arm:
        """The hard-label student on `rows`: same rows and initial weights as the distilled
        students compared with it (alpha = 0 of the same loss)."""
        hidden = tuple(hidden or cfg.student_hidden)
        key = (BASELINE, rows, hidden, _fit_key(cfg))

        def make():
            (x, y), val = self.arrays(rows, self.student_view)
            model = self.new_model(self.student_view, hidden, x, name=BASELINE)
            fitted = self.timed(BASELINE, train_teacher(model, x, y, val, fit_settings(cfg)))
            return Arm(BASELINE, BASELINE, self.student_view, rows, model, fitted)
        return self._once(key, make)

    def student(self, cfg, rows: str, soft: tuple[np.ndarray, np.ndarray], *, name=STUDENT,
                hidden=None, role=STUDENT) -> Arm:
        """A student offline-distilled on `rows` from soft labels (fit part, early-stopping part)."""
        (x, y), (x_val, y_val) = self.arrays(rows, self.student_view)
        model = self.new_model(self.student_view, hidden or cfg.student_hidden, x, name=name)
        fitted = self.timed(name, distil_offline(
            model, x, y, soft[0], (x_val, y_val, soft[1]), fit_settings(cfg), alpha=cfg.alpha,
            loss=soft_loss(cfg.soft_loss, cfg.temperature)))
        return Arm(name, role, self.student_view, rows, model, fitted)


def fit_settings(cfg, *, teacher: bool = False) -> FitSettings:
    """The run's fit settings; teachers stop on `teacher_patience` (they cost nearly all the
    training time), students and baselines on `patience`."""
    return FitSettings(cfg.epochs, cfg.batch_size, cfg.teacher_patience if teacher else cfg.patience,
                       cfg.learning_rate, cfg.seed, cfg.engine)


def _fit_key(cfg) -> tuple:
    return (cfg.epochs, cfg.batch_size, cfg.patience, cfg.teacher_patience, cfg.learning_rate,
            cfg.validation_fraction, cfg.engine)


def say_to_stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
