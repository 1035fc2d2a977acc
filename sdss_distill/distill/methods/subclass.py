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
    import keras

    from sdss_distill.data.table import features
    from sdss_distill.distill import subclasses
    from sdss_distill.distill.fit import train_teacher
    from sdss_distill.distill.workspace import Arm, fit_settings
    from sdss_distill.models.mlp import build_mlp, subclass_model

    def make():
        edges = subclasses.redshift_edges(ws.df, ws.rows("teacher_train"), bins)
        fit, val = ws.fit_rows("teacher_train")
        x, x_val = (features(ws.df.loc[r], ws.teacher_view) for r in (fit, val))
        y, y_val = (subclasses.subclass_labels(ws.df.loc[r], edges) for r in (fit, val))
        keras.utils.set_random_seed(ws.seed + 4000)
        inner = build_mlp(ws.teacher_view, tuple(cfg.teacher_hidden), x, name=TEACHER,
                          dropout=cfg.teacher_dropout, outputs=3 * bins)
        fitted = ws.timed("subclass teacher", train_teacher(inner, x, y, (x_val, y_val),
                                                             fit_settings(cfg)))
        model = subclass_model(inner, bins, name=TEACHER)
        arm = Arm(TEACHER, TEACHER, ws.teacher_view, "teacher_train", model, fitted,
                  notes={"subclasses": f"{bins} redshift bins per class",
                         "redshift_edges": subclasses.describe_bins(edges)})
        return arm, inner, edges
    return ws.cached("subclass_teacher", cfg,
                     (bins, tuple(cfg.teacher_hidden), cfg.teacher_dropout), make)


def subclass_student(ws, cfg, teacher_subclasses, bins: int):
    """The photometric student distilled on the student-train rows from the teacher's subclass
    logits; saved with a `SubclassSum` head, so it returns 3 class logits."""
    import keras

    from sdss_distill.data.table import features
    from sdss_distill.distill.losses import soft_loss
    from sdss_distill.distill.subclasses import SubclassDistiller
    from sdss_distill.distill.workspace import Arm, fit_settings
    from sdss_distill.models.mlp import build_mlp, logits, subclass_model
    (x, y), (x_val, y_val) = ws.arrays("student_train", ws.student_view)
    soft = [logits(teacher_subclasses, features(ws.df.loc[r], ws.teacher_view))
            for r in ws.fit_rows("student_train")]
    keras.utils.set_random_seed(ws.seed)
    inner = build_mlp(ws.student_view, tuple(cfg.student_hidden), x, name=STUDENT,
                      outputs=3 * bins)
    distiller = SubclassDistiller(inner, bins, alpha=cfg.alpha,
                                  soft_loss=soft_loss(cfg.soft_loss, cfg.temperature))
    fitted = ws.timed(STUDENT, distiller.train(x, y, soft[0], (x_val, y_val, soft[1]),
                                               fit_settings(cfg)))
    model = subclass_model(inner, bins, name=STUDENT)
    return Arm(STUDENT, STUDENT, ws.student_view, "student_train", model, fitted)
