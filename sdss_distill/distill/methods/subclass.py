"""Subclass distillation (Mueller et al. 2020): the teacher learns class x redshift-bin
subclasses; the student distils the subclass distribution and sums it to three classes."""

from __future__ import annotations

from dataclasses import dataclass

from sdss_distill.core.schema import STUDENT, TEACHER
from sdss_distill.distill.method import Architecture, register


@dataclass(frozen=True)
class Settings:
    bins: int = 4  # redshift bins per class (quantiles over the teacher-train rows): 12 subclasses

    def __post_init__(self):
        if not 1 <= self.bins <= 16:
            raise ValueError(f"bins must be between 1 and 16, got {self.bins!r}")


def architectures(cfg, settings: Settings) -> list[Architecture]:
    """One logit per subclass, summed to 3 classes."""
    return [Architecture(tuple(cfg.student_hidden), subclass_bins=settings.bins)]


@register("subclass", "teacher on class x redshift-bin subclasses; the student distils the "
          "subclass distribution and sums it to 3 classes", Settings, architectures=architectures,
          exports_plain=False, no_finetune="QAT/pruning is not done for subclass students: the "
                                           "tf_keras fine-tuning distils 3 class logits, the "
                                           "student emits subclass logits")
def run(ws, cfg, settings: Settings):
    teacher, inner, _ = subclass_teacher(ws, cfg, settings.bins)
    student = subclass_student(ws, cfg, inner, settings.bins)
    student.notes.update(teacher.notes)
    return [teacher, student, ws.baseline(cfg, "student_train")]


def subclass_teacher(ws, cfg, bins: int):
    """(teacher arm with 3 class logits, its subclass-logit model, bin edges), trained once per
    workspace and settings on the teacher-train rows' subclass labels."""
    tools = ws.tools

    def make():
        edges = tools.redshift_edges(ws.rows("teacher_train"), bins)
        fit, val = ws.fit_rows("teacher_train")
        x, x_val = (tools.features(r, ws.teacher_view) for r in (fit, val))
        y, y_val = (tools.subclass_labels(r, edges) for r in (fit, val))
        inner = ws.new_model(ws.teacher_view, cfg.teacher_hidden, x, name=TEACHER,
                             dropout=cfg.teacher_dropout, init_seed=ws.seed + 4000,
                             outputs=3 * bins)
        fitted = ws.timed("subclass teacher", tools.train_teacher(
            inner, x, y, (x_val, y_val), tools.fit_settings(cfg)))
        model = tools.subclass_model(inner, bins, name=TEACHER)
        arm = tools.Arm(TEACHER, TEACHER, ws.teacher_view, "teacher_train", model, fitted,
                        notes={"subclasses": f"{bins} redshift bins per class",
                               "redshift_edges": tools.describe_bins(edges)})
        return arm, inner, edges
    return ws.cached("subclass_teacher", cfg,
                     (bins, tuple(cfg.teacher_hidden), cfg.teacher_dropout), make)


def subclass_student(ws, cfg, teacher_subclasses, bins: int):
    """The photometric student distilled on the student-train rows from the teacher's subclass
    logits; saved with a `SubclassSum` head, so it returns 3 class logits."""
    tools = ws.tools
    (x, y), (x_val, y_val) = ws.arrays("student_train", ws.student_view)
    soft = [tools.logits(teacher_subclasses, tools.features(r, ws.teacher_view))
            for r in ws.fit_rows("student_train")]
    inner = ws.new_model(ws.student_view, cfg.student_hidden, x, name=STUDENT, outputs=3 * bins)
    distiller = tools.SubclassDistiller(inner, bins, alpha=cfg.alpha,
                                        soft_loss=tools.soft_loss(cfg))
    fitted = ws.timed(STUDENT, distiller.train(x, y, soft[0], (x_val, y_val, soft[1]),
                                               tools.fit_settings(cfg)))
    model = tools.subclass_model(inner, bins, name=STUDENT)
    return tools.Arm(STUDENT, STUDENT, ws.student_view, "student_train", model, fitted)
