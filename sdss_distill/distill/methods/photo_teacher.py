"""Control: crossfit with photometric fold teachers of the teacher's size (no redshift).

The same student, rows, loss, alpha and temperature as `crossfit`; the teachers have the deep
teacher's widths but see only u g r i z, as the student does. What this student gains over
its baseline is what a bigger photometric model's soft labels give without any privileged
information (`experiment --preset controls`).
"""

from __future__ import annotations

from sdss_distill.core.schema import STUDENT_VIEW
from sdss_distill.distill.method import register
from sdss_distill.distill.methods.crossfit import Settings


@register("photo-teacher", "control: crossfit with photometric fold teachers of the teacher's "
          "size (no redshift)", Settings,
          baseline_rows=lambda settings: "non_test",
          teacher_about="photometric teacher of the teacher's size (no redshift)",
          control_of="crossfit")
def run(ws, cfg, settings: Settings):
    photometric = ws.with_teacher_view(STUDENT_VIEW)
    teacher, soft = photometric.fold_teachers(cfg, settings.folds)
    teacher.notes["control"] = "photometric teacher (u g r i z only)"
    student = ws.student(cfg, "non_test", soft)
    return [teacher, student, ws.baseline(cfg, "non_test")]
