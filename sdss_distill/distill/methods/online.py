"""Online distillation as stock `keras.distillation` does it: the frozen teacher runs every step."""

from __future__ import annotations

from sdss_distill.core.schema import STUDENT
from sdss_distill.distill.method import register


@register("online", "the frozen teacher runs on its view at every training step")
def run(ws, cfg, settings):
    from sdss_distill.distill.distillers import OnlineDistiller
    from sdss_distill.distill.fit import fit_distiller
    from sdss_distill.distill.losses import soft_loss
    from sdss_distill.distill.workspace import Arm, fit_settings
    teacher = ws.teacher(cfg)
    (x, y), val = ws.paired_arrays("student_train")
    model = ws.new_model(ws.student_view, cfg.student_hidden, x[STUDENT], name=STUDENT)
    distiller = OnlineDistiller(teacher.model, model, alpha=cfg.alpha,
                                losses=[soft_loss(cfg.soft_loss, cfg.temperature)])
    fitted = ws.timed(STUDENT, fit_distiller(distiller, x, y, val, fit_settings(cfg)))
    student = Arm(STUDENT, STUDENT, ws.student_view, "student_train", model, fitted)
    return [teacher, student, ws.baseline(cfg, "student_train")]
