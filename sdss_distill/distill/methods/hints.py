"""FitNets hints: a teacher hidden layer is taught to a student hidden layer through a learned
projection, on top of the logit loss (Romero et al. 2015).

The teacher is frozen, so its logits and its hidden layer's output are computed once per row;
the student and the projection train together in the one engine (`fit.distil_offline` with a
hint): (1 - alpha) * CE + alpha * (soft + weight * MSE(teacher features, projection(student
features))), as `HintDistiller` weighs them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdss_distill.core.schema import STUDENT, TEACHER
from sdss_distill.distill.method import register


@dataclass(frozen=True)
class Settings:
    teacher_layer: str = "dense_1"  # hidden layer of the teacher giving the hint
    student_layer: str = "dense_0"  # hidden layer of the student guided by it
    weight: float = 0.1  # weight of the hint term next to the soft term (both times alpha)

    def __post_init__(self):
        if not self.weight >= 0:
            raise ValueError(f"weight must be >= 0, got {self.weight!r}")


@register("hints", "FitNets: teacher hidden layer -> student hidden layer through a learned "
          "projection, plus the logit loss", Settings)
def run(ws, cfg, settings: Settings):
    from sdss_distill.distill.workspace import Arm, fit_settings
    teacher = ws.teacher(cfg)
    (x, y), (x_val, y_val) = ws.arrays("student_train", ws.student_view)
    model = ws.new_model(ws.student_view, cfg.student_hidden, x, name=STUDENT)
    hint = _hint(teacher.model, model, settings)
    soft = _targets(ws, teacher, settings.teacher_layer)
    fitted = ws.timed(STUDENT, _fit(model, hint, settings, x, y, (x_val, y_val), soft, cfg,
                                    fit_settings(cfg)))
    student = Arm(STUDENT, STUDENT, ws.student_view, "student_train", model, fitted,
                  notes={"hint": f"teacher {settings.teacher_layer} -> student "
                                 f"{settings.student_layer}, weight {settings.weight}"})
    return [teacher, student, ws.baseline(cfg, "student_train")]


def _hint(teacher, student, settings: Settings):
    """The FitNetsHint (its projection, checked against both models' layers)."""
    from sdss_distill.distill.losses import FitNetsHint
    units = {name: m.get_layer(layer).units for name, m, layer in (
        (TEACHER, teacher, settings.teacher_layer), (STUDENT, student, settings.student_layer))}
    hint = FitNetsHint(settings.teacher_layer, settings.student_layer,
                       teacher_units=units[TEACHER], student_units=units[STUDENT])
    hint.validate_model_compatibility(teacher, student)
    return hint


def _targets(ws, teacher, layer: str) -> list[np.ndarray]:
    """[fit rows, early-stopping rows] of the student-train rows: the teacher's logits, then its
    `layer` output, side by side."""
    import keras

    from sdss_distill.data.table import features
    from sdss_distill.models.mlp import logits
    inner = keras.Model(teacher.model.inputs[0], teacher.model.get_layer(layer).output)
    hidden = [logits(inner, features(ws.df.loc[r], ws.teacher_view))
              for r in ws.fit_rows("student_train")]
    return [np.concatenate([t, h], axis=1).astype("float32")
            for t, h in zip(ws.teacher_logits(teacher, "student_train"), hidden)]


def _fit(model, hint, settings: Settings, x, y, validation, soft, cfg, fit_settings):
    import keras

    from sdss_distill.distill.fit import distil_offline
    from sdss_distill.distill.losses import soft_loss
    dense = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    return distil_offline(model, x, y, soft[0], (*validation, soft[1]), fit_settings,
                          alpha=cfg.alpha, loss=soft_loss(cfg.soft_loss, cfg.temperature),
                          hint=(hint.projection, dense.index(settings.student_layer),
                                settings.weight))
