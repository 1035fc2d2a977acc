"""One seed's data and teachers, shared by every method (and every cell of a sweep).

A method asks the workspace for the teacher, fold teachers, a distilled student or a
hard-label baseline (the arm builders here); each is trained once per seed and settings
(`cache.FitCache`), then reused. The rows come from the workspace's data: a table in memory
or Parquet files streamed chunk by chunk (`sources.py`, `stream_source.py`), so a method that
uses only these builders runs unchanged on either. Arms (`arm.py`) are what a method returns.

What else a method builds with (the distillers, losses, MLP builders, row features and
labels) it reaches through `ws.tools` (`toolbox.py`), so a method module imports only light
modules at its top: the registry imports every method for `train --help`, which loads no
Keras, JAX or pandas.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import keras
import numpy as np
import pandas as pd

from sdss_distill.core.errors import InputError
from sdss_distill.core.schema import BASELINE, LABELS, STUDENT, STUDENT_VIEW, TEACHER, View, get_view
from sdss_distill.data.table import Split
from sdss_distill.distill.arm import Arm
from sdss_distill.distill.cache import FitCache, fit_settings
from sdss_distill.distill.fit import Fitted, train_parallel
from sdss_distill.distill.losses import soft_loss
from sdss_distill.distill.sources import ROWS, MemoryData  # noqa: F401  (ROWS re-exported)
from sdss_distill.distill.toolbox import Toolbox
from sdss_distill.models.mlp import build_mlp, ensemble_model


class Workspace:
    """One seed's data (`data`: in memory or streamed, sources.py), the arms built on it, and a
    cache of what was trained (`cache`: cache.FitCache), so every method asked of the seed
    reuses its teachers."""

    def __init__(self, df: pd.DataFrame | None = None, split: Split | None = None, *, seed: int,
                 teacher_view: str, validation_fraction: float,
                 say: Callable[[str], None] | None = None, data=None, cache: FitCache | None = None):
        self.cache = cache or FitCache()
        self.data = data or MemoryData(df, split, seed, validation_fraction, self.cache.once)
        self.seed = seed
        self.teacher_view, self.student_view = get_view(teacher_view), get_view(STUDENT_VIEW)
        self.validation_fraction = validation_fraction
        self.say = say or (lambda msg: None)

    def with_teacher_view(self, view: str) -> Workspace:
        """The same data and seed with another teacher view (its own cache of models)."""
        return Workspace(seed=self.seed, teacher_view=view,
                         validation_fraction=self.validation_fraction, say=self.say, data=self.data)

    def on_table(self, df: pd.DataFrame, teacher_view: str | None = None) -> Workspace:
        """A workspace on `df` (this one's table, or a control's altered copy of it) with this
        one's split, seed and settings, and its own data and cache of models."""
        return Workspace(df, self.split, seed=self.seed,
                         teacher_view=teacher_view or self.teacher_view.name,
                         validation_fraction=self.validation_fraction, say=self.say)

    @property
    def tools(self) -> Toolbox:
        """What a method builds with beyond the arm builders (toolbox.py), bound to this
        workspace's rows and seed."""
        return Toolbox(self)

    # -- rows and arrays (in memory) ------------------------------------------------------
    @property
    def streamed(self) -> bool:
        return self.data.streamed

    @property
    def df(self) -> pd.DataFrame:
        return self._memory().df

    @property
    def split(self) -> Split:
        return self._memory().split

    def _memory(self):
        if self.data.streamed:
            raise InputError(self.data.cannot_stream())
        return self.data

    def rows(self, name: str) -> np.ndarray:
        return self._memory().rows(name)

    def fit_rows(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(fit rows, early-stopping rows) of a row set; cached so every arm uses the same."""
        return self._memory().fit_rows(name)

    def arrays(self, name: str, view: View):
        """((x_fit, y_fit), (x_val, y_val)) of a row set in a view."""
        return self._memory().arrays(name, view)

    def paired_arrays(self, name: str):
        """((x, y), (x_val, y_val)) with x = {"student": ..., TEACHER: ...}: both views of the
        same rows, for distillers that run the teacher themselves."""
        (xs, y), (xs_val, y_val) = self.arrays(name, self.student_view)
        (xt, _), (xt_val, _) = self.arrays(name, self.teacher_view)
        return ({"student": xs, TEACHER: xt}, y), ({"student": xs_val, TEACHER: xt_val}, y_val)

    def cached(self, name: str, cfg, parts: tuple, make):
        """What `make()` returns, made once per `name`, `parts` and every fit setting of `cfg`
        (for a method's own models: the key cannot leave a setting out)."""
        return self.cache.model(name, cfg, make, view=self.teacher_view.name, parts=parts)

    def timed(self, name: str, fitted: Fitted) -> Fitted:
        self.say(f"{name}: {fitted.epochs} epochs in {fitted.seconds:.1f} s")
        return fitted

    def progress(self, name: str):
        """Per-epoch progress lines of a streamed fit (in memory, fits are quick and silent)."""
        return (lambda msg: self.say(f"{name} {msg}")) if self.data.streamed else None

    # -- models ---------------------------------------------------------------------------
    def new_model(self, view: View, hidden, x_fit: np.ndarray, *, name: str, dropout: float = 0.0,
                  init_seed: int | None = None, outputs: int = len(LABELS)) -> keras.Model:
        """A fresh MLP (`outputs` logits: one per class, or per subclass); the same
        `init_seed` and architecture give the same initial weights."""
        keras.utils.set_random_seed(self.seed if init_seed is None else init_seed)
        return build_mlp(view, tuple(hidden), x_fit, name=name, dropout=dropout, outputs=outputs)

    def teacher(self, cfg) -> Arm:
        """The deep teacher on teacher-train rows (trained once per settings)."""
        def make():
            model = self.data.build(self.teacher_view, cfg.teacher_hidden, "teacher_train",
                                    name=TEACHER, dropout=cfg.teacher_dropout, init_seed=self.seed)
            fitted = self.timed(TEACHER, self.data.fit(
                model, self.teacher_view, "teacher_train", fit_settings(cfg, teacher=True),
                say=self.progress(TEACHER)))
            return Arm(TEACHER, TEACHER, self.teacher_view, "teacher_train", model, fitted)
        return self.cache.model(TEACHER, cfg, make, view=self.teacher_view.name,
                                hidden=cfg.teacher_hidden, rows="teacher_train")

    def teacher_logits(self, arm: Arm, rows: str):
        """A teacher arm's logits on (fit rows, early-stopping rows) of a row set (streamed:
        soft labels computed chunk by chunk)."""
        def make():  # keeps `arm` alive, so its id cannot be reused by another arm
            return arm, self.data.logits(arm.model, arm.view, rows)
        return self.cache.once(("logits", id(arm), rows), make)[1]

    def teacher_ensemble(self, cfg, members: int) -> Arm:
        """`members` teachers (different initial weights) on teacher-train rows, trained at once;
        the arm's model averages their probabilities."""
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
        return self.cache.model("teacher_ensemble", cfg, make, view=self.teacher_view.name,
                                hidden=cfg.teacher_hidden, rows="teacher_train", parts=(members,))

    def fold_teachers(self, cfg, folds: int):
        """K teachers, teacher k on the non-test rows outside fold k, trained at once.

        Returns (teacher arm: the K teachers' mean probability; out-of-fold soft labels for the
        non-test rows' (fit, early-stopping) parts, each row scored by the teacher that never
        saw it).
        """
        label = f"{folds} fold teachers ({self.teacher_view.name})"

        def make():
            nets, fitted, soft = self.data.fold_teachers(
                self.teacher_view, tuple(cfg.teacher_hidden), folds,
                fit_settings(cfg, teacher=True), dropout=cfg.teacher_dropout,
                say=self.progress(label))
            model = ensemble_model(nets, self.teacher_view, name="teacher_folds")
            arm = Arm(TEACHER, TEACHER, self.teacher_view, "non_test", model,
                      self.timed(label, fitted),
                      notes={"folds": folds, "members": [m.name for m in nets]})
            return arm, soft
        return self.cache.model("fold_teachers", cfg, make, view=self.teacher_view.name,
                                hidden=cfg.teacher_hidden, rows="non_test", parts=(folds,))

    def baseline(self, cfg, rows: str, hidden=None) -> Arm:
        """The hard-label student on `rows`: same rows and initial weights as the distilled
        students compared with it (alpha = 0 of the same loss)."""
        hidden = tuple(hidden or cfg.student_hidden)

        def make():
            model = self.data.build(self.student_view, hidden, rows, name=BASELINE,
                                    init_seed=self.seed)
            fitted = self.timed(BASELINE, self.data.fit(
                model, self.student_view, rows, fit_settings(cfg), say=self.progress(BASELINE)))
            return Arm(BASELINE, BASELINE, self.student_view, rows, model, fitted)
        return self.cache.model(BASELINE, cfg, make, view=self.student_view.name, hidden=hidden,
                                rows=rows)

    def student(self, cfg, rows: str, soft, *, name=STUDENT, hidden=None, role=STUDENT) -> Arm:
        """A student offline-distilled on `rows` from soft labels (fit part, early-stopping part)."""
        model = self.data.build(self.student_view, hidden or cfg.student_hidden, rows, name=name,
                                init_seed=self.seed)
        fitted = self.timed(name, self.data.fit(
            model, self.student_view, rows, fit_settings(cfg), soft=soft, alpha=cfg.alpha,
            loss=soft_loss(cfg.soft_loss, cfg.temperature), say=self.progress(name)))
        return Arm(name, role, self.student_view, rows, model, fitted)

    def map_soft(self, fn, *softs):
        """Soft labels combined row by row (`fn` on logits arrays), in memory or streamed."""
        return self.data.map_soft(fn, *softs)


def say_to_stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
