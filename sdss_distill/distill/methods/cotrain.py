"""Co-training: teacher and student learn together from scratch with one combined loss
(the proposal's "simultaneous" training)."""

from __future__ import annotations

from dataclasses import dataclass

from sdss_distill.core.schema import STUDENT, TEACHER
from sdss_distill.distill.method import register

ROWS = ("student_train", "non_test")


@dataclass(frozen=True)
class Settings:
    rows: str = "non_test"  # rows both train on: non_test (all labelled rows) or student_train

    def __post_init__(self):
        if self.rows not in ROWS:
            raise ValueError(f"rows must be one of {', '.join(ROWS)}, got {self.rows!r}")


@register("cotrain", "teacher and student trained together from scratch, one combined loss",
          Settings, baseline_rows=lambda settings: settings.rows)
def run(ws, cfg, settings: Settings):
    tools = ws.tools
    (x, y), val = ws.paired_arrays(settings.rows)
    teacher = ws.new_model(ws.teacher_view, cfg.teacher_hidden, x[TEACHER], name=TEACHER,
                           dropout=cfg.teacher_dropout, init_seed=ws.seed + 3000)
    student = ws.new_model(ws.student_view, cfg.student_hidden, x[STUDENT], name=STUDENT)
    distiller = tools.CoTrainer(teacher, student, alpha=cfg.alpha, soft_loss=tools.soft_loss(cfg))
    fitted = ws.timed("teacher + student", distiller.train(x, y, val, tools.fit_settings(cfg)))
    return [tools.Arm(TEACHER, TEACHER, ws.teacher_view, settings.rows, teacher, fitted),
            tools.Arm(STUDENT, STUDENT, ws.student_view, settings.rows, student, fitted),
            ws.baseline(cfg, settings.rows)]
