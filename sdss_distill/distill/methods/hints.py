"""FitNets hints: a teacher hidden layer is taught to a student hidden layer through a learned
projection, on top of the logit loss (Romero et al. 2015).

The teacher is frozen, so `HintDistiller` computes its logits and its hidden layer's output
once per row; the student and the projection train together in the one engine on the loss the
distiller hands over: (1 - alpha) * CE + alpha * (soft + weight * MSE(teacher features,
projection(student features))), as its `compute_loss` weighs them.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    tools = ws.tools
    teacher = ws.teacher(cfg)
    (x, y), val = ws.paired_arrays("student_train")
    model = ws.new_model(ws.student_view, cfg.student_hidden, x[STUDENT], name=STUDENT)
    distiller = tools.HintDistiller(teacher.model, model, alpha=cfg.alpha,
                                    losses=[tools.soft_loss(cfg),
                                            _hint(tools, teacher.model, model, settings)],
                                    loss_weights=[1.0, settings.weight])
    fitted = ws.timed(STUDENT, distiller.train(x, y, val, tools.fit_settings(cfg)))
    student = tools.Arm(STUDENT, STUDENT, ws.student_view, "student_train", model, fitted,
                        notes={"hint": f"teacher {settings.teacher_layer} -> student "
                                       f"{settings.student_layer}, weight {settings.weight}"})
    return [teacher, student, ws.baseline(cfg, "student_train")]


def _hint(tools, teacher, student, settings: Settings):
    """The FitNetsHint (its projection, checked against both models' layers)."""
    units = {name: m.get_layer(layer).units for name, m, layer in (
        (TEACHER, teacher, settings.teacher_layer), (STUDENT, student, settings.student_layer))}
    hint = tools.FitNetsHint(settings.teacher_layer, settings.student_layer,
                                   teacher_units=units[TEACHER], student_units=units[STUDENT])
    hint.validate_model_compatibility(teacher, student)
    return hint
