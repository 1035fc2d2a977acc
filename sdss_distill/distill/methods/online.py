"""Online distillation as stock `keras.distillation` does it: the frozen teacher labels the
rows the student reads (`distillers.OnlineDistiller`, the teacher on its own view). A frozen
teacher in inference mode gives a row the same logits at every step, so the distiller computes
them once per row and the one engine trains the student on the student-train rows through the
same loss: the same student as `offline`, which is what the method shows
(docs/results/methods.md: "offline computed the expensive way")."""

from __future__ import annotations

from sdss_distill.core.schema import STUDENT
from sdss_distill.distill.method import register


@register("online", "the frozen teacher's logits at every training step (computed once per "
          "row: a frozen teacher gives the same each step)")
def run(ws, cfg, settings):
    from sdss_distill.distill.distillers import OnlineDistiller
    from sdss_distill.distill.losses import soft_loss
    from sdss_distill.distill.workspace import Arm, fit_settings
    teacher = ws.teacher(cfg)
    (x, y), val = ws.paired_arrays("student_train")
    model = ws.new_model(ws.student_view, cfg.student_hidden, x[STUDENT], name=STUDENT)
    distiller = OnlineDistiller(teacher.model, model, alpha=cfg.alpha,
                                losses=[soft_loss(cfg.soft_loss, cfg.temperature)])
    fitted = ws.timed(STUDENT, distiller.train(x, y, val, fit_settings(cfg)))
    student = Arm(STUDENT, STUDENT, ws.student_view, "student_train", model, fitted)
    return [teacher, student, ws.baseline(cfg, "student_train")]
