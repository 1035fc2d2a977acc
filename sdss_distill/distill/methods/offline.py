"""The proposal's method: a teacher on teacher-train rows labels the student-train rows once."""

from __future__ import annotations

from sdss_distill.distill.method import register


@register("offline", "teacher on teacher-train rows; its soft labels on student-train rows, "
          "computed once (the proposal)", streams=True)
def run(ws, cfg, settings):
    teacher = ws.teacher(cfg)
    student = ws.student(cfg, "student_train", ws.teacher_logits(teacher, "student_train"))
    return [teacher, student, ws.baseline(cfg, "student_train")]
