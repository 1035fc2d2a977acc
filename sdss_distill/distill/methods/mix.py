"""A teacher mix: the privileged fold teachers' soft labels averaged with those of cross-fitted
photometric models, so the student compresses the best photometric models as well as the
redshift teacher (issue 22).

Both sets of models are cross-fitted on the same stratified folds of the non-test rows: row
i's soft label comes from the redshift teacher and the photometric model that never trained
(nor early-stopped) on fold(i), so no row is labelled by a model that saw it. The mixture is
in probability space at the run's temperature T, p = w p_teacher + (1 - w) p_photometric,
handed to the loss as logits `sharpness * T * log p` (sharpness < 1 softens the targets,
> 1 sharpens them: the teacher's sharpness of Yang et al. 2022). The student and its
baseline train on every non-test row, as crossfit's do.
"""

from __future__ import annotations

import dataclasses
import weakref
from dataclasses import dataclass

import numpy as np

from sdss_distill.core.errors import InputError
from sdss_distill.core.prob import softmax
from sdss_distill.core.schema import STUDENT_VIEW
from sdss_distill.distill.method import Architecture, register

SOURCES = ("mlp", "hgb")
"""Photometric fold models: an MLP of `hidden` widths on u g r i z (trained by the fit loop),
or scikit-learn's HistGradientBoostingClassifier at its defaults."""

_PER_SEED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""Per workspace (one seed): its photometric workspace and HistGradientBoosting labels, made
once and shared by every `mix` cell of a sweep, as the workspace shares its teachers."""


def _once(ws, key, make):
    cache = _PER_SEED.setdefault(ws, {})
    if key not in cache:
        cache[key] = make()
    return cache[key]


@dataclass(frozen=True)
class Settings:
    weight: float = 0.5  # of the redshift teacher's probabilities; 1 - weight photometric
    photometric: str = "mlp"  # one of SOURCES
    # widths of the photometric MLPs: 64-64, not the teacher's 128-128-64-32: the student
    # scored the same on faint dev rows (+0.04 pt, seeds 0-4) and they train in about half
    # the time (docs/results/levers.md)
    hidden: tuple[int, ...] = (64, 64)
    sharpness: float = 1.0  # multiplies the mixed targets' logits
    folds: int = 3  # as crossfit.folds; both model sets share the folds
    # weight of the student's redshift head beside the soft-label term, both under alpha:
    # (1 - alpha) CE + alpha (soft + redshift * Huber(z)), distill/zphot.py; so alpha = 0
    # is the labels-only baseline. 0: no head, the run writes no z_phot. Chosen on dev rows
    # (docs/results/photo-z.md)
    redshift: float = 10.0

    def __post_init__(self):
        if not 0 <= self.weight <= 1:
            raise ValueError(f"weight must be in [0, 1], got {self.weight!r}")
        if self.photometric not in SOURCES:
            raise ValueError(f"photometric must be one of {', '.join(SOURCES)}, "
                             f"got {self.photometric!r}")
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden must be one or more positive widths, got {self.hidden!r}")
        if not 0 < self.sharpness <= 10:
            raise ValueError(f"sharpness must be in (0, 10], got {self.sharpness!r}")
        if not 2 <= self.folds <= 20:
            raise ValueError(f"folds must be between 2 and 20, got {self.folds!r}")
        if not 0 <= self.redshift <= 100:
            raise ValueError(f"redshift must be in [0, 100] (0: no redshift head), "
                             f"got {self.redshift!r}")


def mixed_logits(teacher: np.ndarray, photometric: np.ndarray, weight: float,
                 temperature: float, sharpness: float = 1.0) -> np.ndarray:
    """sharpness * T * log(w softmax(teacher / T) + (1 - w) softmax(photometric / T))."""
    p = (weight * softmax(np.asarray(teacher, "float64") / temperature, axis=-1)
         + (1 - weight) * softmax(np.asarray(photometric, "float64") / temperature, axis=-1))
    return (sharpness * temperature * np.log(np.clip(p, 1e-12, 1))).astype("float32")


def hgb_out_of_fold(ws, folds: int) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold log-probabilities of HistGradientBoosting fold models for the non-test rows'
    (fit, early-stopping) parts, on the folds the fold teachers use."""
    tools = ws.tools
    rows = ws.rows("non_test")
    x, y = tools.features(rows, ws.student_view), tools.labels(rows)
    fold = tools.fold_ids(y, folds)
    out = np.zeros((len(rows), int(y.max()) + 1), "float64")
    with tools.one_thread():  # as every model of a run (see Toolbox.one_thread)
        for k in range(folds):
            model = tools.gradient_boosting(ws.seed + k)
            model.fit(x[fold != k], y[fold != k])
            out[fold == k] = np.log(np.clip(model.predict_proba(x[fold == k]), 1e-12, 1))
    return tools.by_parts(out.astype("float32"), rows, "non_test")


def photometric_soft(ws, cfg, settings: Settings) -> tuple[np.ndarray, np.ndarray]:
    """The photometric models' out-of-fold logits (fit part, early-stopping part)."""
    if settings.photometric == "hgb":
        return _once(ws, ("hgb", settings.folds), lambda: hgb_out_of_fold(ws, settings.folds))
    photo = _once(ws, "photometric", lambda: ws.with_teacher_view(STUDENT_VIEW))
    return photo.fold_teachers(dataclasses.replace(cfg, teacher_hidden=settings.hidden),
                               settings.folds)[1]


def photometric_teachers(ws, cfg, settings: Settings) -> list[dict]:
    """The photometric fold teachers' curves for the report (runs.figures draws every fold
    teacher): [] when the photometric models are HistGradientBoosting (no epochs)."""
    if settings.photometric == "hgb":
        return []
    arm = _once(ws, "photometric", None).fold_teachers(  # made by photometric_soft
        dataclasses.replace(cfg, teacher_hidden=settings.hidden), settings.folds)[0]  # cached
    return [{"view": arm.view.name, "members": arm.notes["members"],
             "history": arm.fitted.history}]


def architectures(cfg, settings: Settings) -> list[Architecture]:
    """The student (with its redshift head unless `redshift` is 0) and its head-less baseline."""
    hidden = tuple(cfg.student_hidden)
    return [Architecture(hidden, z_head=settings.redshift > 0), Architecture(hidden)]


@register("mix", "crossfit with soft labels mixed from the redshift fold teachers and "
          "cross-fitted photometric models (MLP or HistGradientBoosting)", Settings,
          baseline_rows=lambda settings: "non_test", streams=True,
          architectures=architectures)
def run(ws, cfg, settings: Settings):
    if ws.streamed and settings.photometric == "hgb":
        raise InputError("mix.photometric = hgb fits HistGradientBoosting on rows in memory; a "
                         "streamed table needs mix.photometric = mlp (the default)")
    teacher, soft = ws.fold_teachers(cfg, settings.folds)
    photo = photometric_soft(ws, cfg, settings)
    mixed = ws.map_soft(lambda t, p: mixed_logits(t, p, settings.weight, cfg.temperature,
                                                  settings.sharpness), soft, photo)
    if settings.redshift > 0 and not ws.streamed:
        student = ws.tools.zphot_student(cfg, "non_test", mixed, settings.redshift)
    else:  # a stream has no redshift head yet: its target would need the rows in memory
        student = ws.student(cfg, "non_test", mixed)
    student.notes["mix"] = dataclasses.asdict(settings)
    teacher.notes["more_fold_teachers"] = photometric_teachers(ws, cfg, settings)
    return [teacher, student, ws.baseline(cfg, "non_test")]
