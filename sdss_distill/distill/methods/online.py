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
    tools = ws.tools
    teacher = ws.teacher(cfg)
    (x, y), val = ws.paired_arrays("student_train")
    model = ws.new_model(ws.student_view, cfg.student_hidden, x[STUDENT], name=STUDENT)
    distiller = tools.OnlineDistiller(teacher.model, model, alpha=cfg.alpha,
                                      losses=[tools.soft_loss(cfg)])
    fitted = ws.timed(STUDENT, distiller.train(x, y, val, tools.fit_settings(cfg)))
    student = tools.Arm(STUDENT, STUDENT, ws.student_view, "student_train", model, fitted)
    return [teacher, student, ws.baseline(cfg, "student_train")]
