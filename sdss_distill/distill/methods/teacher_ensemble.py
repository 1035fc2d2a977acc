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
    from sdss_distill.data.table import features
    from sdss_distill.distill.targets import ensemble_logits
    from sdss_distill.models.mlp import ensemble_members, logits
    teacher = ws.teacher_ensemble(cfg, settings.teachers)
    members = ensemble_members(teacher.model)
    soft = tuple(ensemble_logits([logits(m, features(ws.df.loc[rows], ws.teacher_view))
                                  for m in members], cfg.temperature)
                 for rows in ws.fit_rows("student_train"))
    return [teacher, ws.student(cfg, "student_train", soft), ws.baseline(cfg, "student_train")]
