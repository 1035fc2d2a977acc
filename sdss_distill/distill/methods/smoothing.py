"""Control: label smoothing in place of the teacher, with the same alpha and temperature.

Each row's soft label is `confidence` on its own class and the rest shared equally by the
others: soft labels that carry no knowledge about the row (Yuan et al. 2020, "a virtual
teacher"). By default the confidence is matched to the crossfit teachers' mean out-of-fold
probability of the true class at the run's temperature, so this student differs from
crossfit's only in what the teacher knows about each row (`experiment --preset controls`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdss_distill.core.schema import LABELS
from sdss_distill.distill.method import register


@dataclass(frozen=True)
class Settings:
    # probability of the true class; 0 = matched to the crossfit fold teachers (trained
    # once per seed and shared with crossfit in a sweep)
    confidence: float = 0.0
    folds: int = 3  # fold teachers that set the matched confidence (as crossfit.folds)

    def __post_init__(self):
        if not (self.confidence == 0 or 1 / len(LABELS) < self.confidence <= 1):
            raise ValueError(f"confidence must be 0 (matched to the teacher) or in "
                             f"(1/{len(LABELS)}, 1], got {self.confidence!r}")
        if not 2 <= self.folds <= 20:
            raise ValueError(f"folds must be between 2 and 20, got {self.folds!r}")


def smoothed_logits(y: np.ndarray, confidence: float, temperature: float) -> np.ndarray:
    """Logits whose softmax at `temperature` is `confidence` on class y, the rest equal."""
    k = len(LABELS)
    p = np.full((len(y), k), (1 - confidence) / (k - 1))
    p[np.arange(len(y)), y] = confidence
    return (temperature * np.log(np.clip(p, 1e-7, 1))).astype("float32")


def true_class_probability(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    """Mean tempered probability of the true class: how confident the teacher is."""
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return float(p[np.arange(len(y)), y].mean())


@register("smoothing", "control: label smoothing, confidence matched to the crossfit teachers, "
          "same alpha and temperature (no teacher knowledge)", Settings,
          baseline_rows=lambda settings: "non_test",
          teacher_about="label smoothing, confidence of the real teacher (no teacher)",
          control_of="crossfit")
def run(ws, cfg, settings: Settings):
    teacher, teacher_soft = ws.fold_teachers(cfg, settings.folds)
    ys = [ws.tools.labels(rows) for rows in ws.fit_rows("non_test")]
    confidence = settings.confidence or true_class_probability(
        np.concatenate(teacher_soft), np.concatenate(ys), cfg.temperature)
    soft = tuple(smoothed_logits(y, confidence, cfg.temperature) for y in ys)
    student = ws.student(cfg, "non_test", soft)
    student.notes["smoothing_confidence"] = round(confidence, 4)
    return [teacher, student, ws.baseline(cfg, "non_test")]
