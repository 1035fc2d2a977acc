"""Teacher-assistant distillation: teacher -> mid-size photometric assistant -> student
(Mirzadeh et al. 2020), bridging the gap in both capacity and inputs."""

from __future__ import annotations

from dataclasses import dataclass

from sdss_distill.distill.method import Architecture, plain_student, register


@dataclass(frozen=True)
class Settings:
    hidden: tuple[int, ...] = (64, 64)  # the assistant's layer widths (photometry only)

    def __post_init__(self):
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden must be one or more positive widths, got {self.hidden!r}")


def architectures(cfg, settings: Settings) -> list[Architecture]:
    return [*plain_student(cfg, settings), Architecture(tuple(settings.hidden))]


@register("assistant", "teacher -> mid-size photometric assistant -> student", Settings,
          architectures=architectures)
def run(ws, cfg, settings: Settings):
    teacher = ws.teacher(cfg)
    assistant = ws.student(cfg, "student_train", ws.teacher_logits(teacher, "student_train"),
                           name="assistant", hidden=settings.hidden, role="assistant")
    student = ws.student(cfg, "student_train", ws.teacher_logits(assistant, "student_train"))
    return [teacher, assistant, student, ws.baseline(cfg, "student_train")]
