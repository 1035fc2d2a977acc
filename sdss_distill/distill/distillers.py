"""`keras.distillation.Distiller` subclasses, and the two models that need a class of their own.

The stock `Distiller` assumes the teacher and student read the same input and runs the
frozen teacher every step. Here the teacher may read privileged columns (redshift), so the
input is a dict: `{"student": x_student, "teacher": x_teacher}` for an online teacher, or
`{"student": x_student, "soft": logits}` when the soft labels were computed beforehand (an
identity "teacher" then passes them through). The losses are combined by the Distiller's own
`compute_loss`: (1 - alpha) * CE(y, s) + alpha * sum(weight_i * loss_i).

`CoTrainer` trains teacher and student together (the stock Distiller freezes the teacher).
"""

from __future__ import annotations

import keras
from keras import ops

from sdss_distill.core.schema import LABELS
from sdss_distill.distill import formula
from sdss_distill.distill.losses import OPS, FitNetsHint, TemperatureKL

STUDENT, TEACHER, SOFT = "student", "teacher", "soft"


def precomputed_teacher() -> keras.Model:
    """An identity model over precomputed teacher logits: the 'teacher' of offline distillation."""
    logits = keras.Input((len(LABELS),), name=SOFT, dtype="float32")
    return keras.Model(logits, keras.layers.Identity(name="logits")(logits), name="soft_labels")


def _hard_loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


class ViewDistiller(keras.distillation.Distiller):
    """A Distiller whose teacher reads `x[teacher_input]` and whose student reads `x["student"]`."""

    teacher_input = TEACHER

    def __init__(self, teacher: keras.Model, student: keras.Model, *, alpha: float,
                 losses: list, loss_weights: list[float] | None = None, **kwargs):
        alpha = formula.check_alpha(alpha)
        super().__init__(teacher=teacher, student=student, distillation_losses=losses,
                         distillation_loss_weights=loss_weights or [1.0] * len(losses),
                         student_loss_weight=1.0 - alpha, **kwargs)
        self.alpha = alpha

    def _validate_input_compatibility(self, teacher, student):
        """Inputs differ on purpose (privileged columns, or precomputed logits)."""

    def compile(self, optimizer="adam", **kwargs):
        kwargs.setdefault("loss", _hard_loss())
        kwargs.setdefault("metrics", [keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
        super().compile(optimizer=optimizer, **kwargs)

    def call(self, inputs, training=None):
        return self.student(inputs[STUDENT], training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if sample_weight is not None:  # the stock compute_loss would silently drop it
            raise ValueError("sample_weight is not supported by keras.distillation.Distiller")
        return super().compute_loss(x=x, y=y, y_pred=y_pred, training=training)

    def _extract_all_teacher_features(self, x):
        teacher_x = x[self.teacher_input]
        if self._teacher_feature_extractor is not None:
            return self._teacher_feature_extractor(teacher_x, training=False)
        return {"final_output": self.teacher(teacher_x, training=False)}

    def _extract_all_student_features(self, x, y_pred):
        if self._student_feature_extractor is not None:
            return self._student_feature_extractor(x[STUDENT], training=True)
        return {"final_output": y_pred}


class OfflineDistiller(ViewDistiller):
    """The proposal's mode: soft labels computed once, passed as `x["soft"]`.

    With alpha = 0 it is plain hard-label training of the student: the baseline.
    """

    teacher_input = SOFT

    def __init__(self, student: keras.Model, **kwargs):
        super().__init__(precomputed_teacher(), student, **kwargs)


class OnlineDistiller(ViewDistiller):
    """Stock `keras.distillation` behaviour: the frozen teacher runs on its view every step."""


class HintDistiller(OnlineDistiller):
    """Online distillation plus FitNets hints; trains the hints' projections with the student."""

    def __init__(self, teacher, student, *, alpha: float, losses: list, **kwargs):
        super().__init__(teacher, student, alpha=alpha, losses=losses, **kwargs)
        self.hint_projections = [loss.projection for loss in losses
                                 if isinstance(loss, FitNetsHint)]


class CoTrainer(keras.Model):
    """Teacher and student trained together from scratch with one combined loss.

    loss = CE(y, t) + (1 - alpha) * CE(y, s) + alpha * soft(stop_gradient(t), s): the teacher
    learns from the labels only, the student from labels and the teacher as it learns (the
    proposal's "simultaneous" training).
    """

    def __init__(self, teacher: keras.Model, student: keras.Model, *, alpha: float,
                 soft_loss: TemperatureKL, **kwargs):
        super().__init__(**kwargs)
        alpha = formula.check_alpha(alpha)
        self.teacher, self.student, self.alpha, self.soft_loss = teacher, student, alpha, soft_loss
        self.trackers = {name: keras.metrics.Mean(name=name) for name in
                         ("teacher_loss", "student_loss", "distillation_loss")}
        self.accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    def call(self, inputs, training=None):
        return self.student(inputs[STUDENT], training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        t = self.teacher(x[TEACHER], training=training)
        s = y_pred if y_pred is not None else self(x, training=training)
        parts = {"teacher_loss": ops.mean(formula.hard_term(OPS, y, t)),
                 "student_loss": ops.mean(formula.hard_term(OPS, y, s)),
                 "distillation_loss": self.soft_loss.compute_loss(ops.stop_gradient(t), s)}
        for name, value in parts.items():
            self.trackers[name].update_state(value)
        self.accuracy.update_state(y, s)
        return (parts["teacher_loss"] + (1 - self.alpha) * parts["student_loss"]
                + self.alpha * parts["distillation_loss"])

    @property
    def metrics(self):
        return [*super().metrics, *self.trackers.values(), self.accuracy]
