"""Cross-fitted soft labels: K fold teachers give every non-test row an out-of-fold soft label,
so the student learns from all labelled rows, never from a teacher that saw the row."""

from __future__ import annotations

from dataclasses import dataclass

from sdss_distill.distill.method import register


@dataclass(frozen=True)
class Settings:
    folds: int = 5  # fold teachers; each trains on (folds - 1) / folds of the non-test rows

    def __post_init__(self):
        if not 2 <= self.folds <= 20:
            raise ValueError(f"folds must be between 2 and 20, got {self.folds!r}")


@register("crossfit", "K fold teachers over all non-test rows; out-of-fold soft labels; student "
          "and baseline on all non-test rows", Settings)
def run(ws, cfg, settings: Settings):
    teacher, soft = ws.fold_teachers(cfg, settings.folds)
    student = ws.student(cfg, "non_test", soft)
    return [teacher, student, ws.baseline(cfg, "non_test")]
