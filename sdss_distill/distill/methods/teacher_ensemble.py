"""An ensemble of teachers: soft labels are the mean of their tempered probabilities
(the proposal's third technique)."""

from __future__ import annotations

from dataclasses import dataclass

from sdss_distill.distill.method import register


@dataclass(frozen=True)
class Settings:
    teachers: int = 3  # teachers with different initial weights, trained on teacher-train rows

    def __post_init__(self):
        if not 2 <= self.teachers <= 16:
            raise ValueError(f"teachers must be between 2 and 16, got {self.teachers!r}")


@register("teacher-ensemble", "N teachers; soft labels = mean of their tempered probabilities",
          Settings)
def run(ws, cfg, settings: Settings):
    tools = ws.tools
    teacher = ws.teacher_ensemble(cfg, settings.teachers)
    members = tools.ensemble_members(teacher.model)
    soft = tuple(tools.ensemble_logits([tools.logits(m, tools.features(rows, ws.teacher_view))
                                        for m in members], cfg.temperature)
                 for rows in ws.fit_rows("student_train"))
    return [teacher, ws.student(cfg, "student_train", soft), ws.baseline(cfg, "student_train")]
