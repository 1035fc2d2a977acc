"""One small module per distillation method; importing this package registers them all."""

from sdss_distill.distill.methods import (  # noqa: F401
    assistant,
    cotrain,
    crossfit,
    hints,
    offline,
    online,
    student_ensemble,
    teacher_ensemble,
)

ORDER = ("offline", "crossfit", "online", "cotrain", "teacher-ensemble", "student-ensemble",
         "hints", "assistant")
"""The order in which help texts, reports and sweeps list the methods."""
