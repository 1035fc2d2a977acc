"""Online distillation as stock `keras.distillation` does it: the frozen teacher labels each
batch as it is drawn. A frozen teacher in inference mode gives a row the same logits at every
step, so the one engine computes them once per row (as `offline` does) and trains the student
on the student-train rows through the same loss: the same student as `offline`, which is
what the method shows (docs/results/methods.md: "offline computed the expensive way")."""

from __future__ import annotations

from sdss_distill.distill.method import register


@register("online", "the frozen teacher's logits at every training step (computed once per "
          "row: a frozen teacher gives the same each step)")
def run(ws, cfg, settings):
    teacher = ws.teacher(cfg)
    student = ws.student(cfg, "student_train", ws.teacher_logits(teacher, "student_train"))
    return [teacher, student, ws.baseline(cfg, "student_train")]
