"""Knowledge distillation with privileged information, on top of `keras.distillation`.

Loss (Hinton et al. 2015, "Distilling the Knowledge in a Neural Network"; Lopez-Paz et al.
2016, "Unifying distillation and privileged information"):

    L = (1 - alpha) * CE(y, softmax(s)) + alpha * T^2 * KL(softmax(t / T) || softmax(s / T))

with teacher logits t, student logits s, temperature T; the T^2 keeps the soft term's
gradients on the scale of the hard term's as T grows.

Why subclass instead of using `keras.distillation.Distiller` as it is:
- it insists that teacher and student read inputs of the same shape, but here the teacher
  reads privileged columns (redshift) the student never sees, so only outputs are checked;
- in the default *offline* mode (the proposal's) the teacher's logits on the student-train
  rows are computed once and travel with the labels in `y`, so the teacher is not re-run
  every step; an online mode only needs to override `teacher_logits`;
- its `compute_loss` ignores `sample_weight`; this one honours it in both terms.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from .models import logits


@keras.saving.register_keras_serializable(package="sdss_distill")
class TemperatureKL(keras.distillation.DistillationLoss):
    """T^2 * KL(softmax(t/T) || softmax(s/T)) per row, averaged (optionally weighted)."""

    def __init__(self, temperature: float = 3.0):
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.temperature = float(temperature)

    def per_row(self, teacher_logits, student_logits):
        t = self.temperature
        log_p_teacher = ops.log_softmax(ops.divide(teacher_logits, t), axis=-1)
        log_p_student = ops.log_softmax(ops.divide(student_logits, t), axis=-1)
        kl = ops.sum(ops.exp(log_p_teacher) * (log_p_teacher - log_p_student), axis=-1)
        return (t * t) * kl

    def compute_loss(self, teacher_outputs, student_outputs, sample_weight=None, **kwargs):
        return _weighted_mean(self.per_row(teacher_outputs, student_outputs), sample_weight)

    def get_config(self):
        return {"temperature": self.temperature}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _weighted_mean(values, sample_weight=None):
    if sample_weight is None:
        return ops.mean(values)
    w = ops.cast(ops.reshape(sample_weight, ops.shape(values)), values.dtype)
    return ops.divide(ops.sum(values * w), ops.maximum(ops.sum(w), 1e-12))


class ViewDistiller(keras.distillation.Distiller):
    """A Distiller whose teacher and student read different columns (a different view)."""

    def __init__(self, teacher: keras.Model, student: keras.Model, *, temperature: float = 3.0,
                 alpha: float = 0.5, **kwargs):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")
        super().__init__(teacher=teacher, student=student,
                         distillation_losses=TemperatureKL(temperature),
                         student_loss_weight=1.0 - alpha, **kwargs)
        self.alpha = float(alpha)
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    def _validate_input_compatibility(self, teacher, student):
        """Inputs differ on purpose (privileged columns); outputs are still checked."""

    def compile(self, optimizer="adam", **kwargs):
        """Defaults the hard-label loss to per-row sparse cross-entropy on logits."""
        kwargs.setdefault("loss", keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction=None))
        super().compile(optimizer=optimizer, **kwargs)

    def teacher_logits(self, x, y):
        raise NotImplementedError

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y_pred is None:
            y_pred = self(x, training=training)
        labels = y["label"]
        hard = _weighted_mean(self._student_loss(labels, y_pred), sample_weight)
        soft = ops.zeros(())
        if self.alpha > 0:
            soft = self.distillation_losses[0].compute_loss(
                self.teacher_logits(x, y), y_pred, sample_weight=sample_weight)
        total = (1.0 - self.alpha) * hard + self.alpha * soft
        self.student_loss_tracker.update_state(hard)
        self.distillation_loss_tracker.update_state(soft)
        self.total_loss_tracker.update_state(total)
        self.accuracy_tracker.update_state(labels, y_pred, sample_weight=sample_weight)
        return total

    def reset_metrics(self):
        super().reset_metrics()
        self.accuracy_tracker.reset_state()


class OfflineDistiller(ViewDistiller):
    """The proposal's mode: the frozen teacher's logits are precomputed and passed in `y`.

    Train with `fit(x_student, {"label": y, "teacher_logits": soft_targets(teacher, x_t)})`.
    With alpha = 0 it is plain hard-label training of the student: the baseline.
    """

    def teacher_logits(self, x, y):
        return y["teacher_logits"]


def soft_targets(teacher: keras.Model, teacher_x: np.ndarray) -> np.ndarray:
    """The teacher's logits on its own view of the student-train rows, computed once."""
    return logits(teacher, teacher_x)


def _callbacks(patience: int) -> list:
    return [keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True),
            keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=max(1, patience // 3),
                                              min_lr=1e-4)]


def fit(model: keras.Model, x, y, validation, *, epochs: int, batch_size: int,
        patience: int, verbose: int = 0) -> int:
    """Train a compiled model with early stopping on `validation`; returns epochs run."""
    history = model.fit(x, y, validation_data=validation, epochs=epochs,
                        batch_size=batch_size, callbacks=_callbacks(patience), verbose=verbose)
    return len(history.history["loss"])


def train_teacher(teacher: keras.Model, x, y, validation, *, learning_rate: float,
                  **fit_kwargs) -> int:
    """Plain supervised training of the teacher on its own view of teacher-train rows."""
    teacher.compile(optimizer=keras.optimizers.Adam(learning_rate),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    metrics=["accuracy"], steps_per_execution=64)
    return fit(teacher, x, y, validation, **fit_kwargs)


def distil_student(teacher: keras.Model, student: keras.Model, x, y, teacher_logits,
                   validation, *, temperature: float, alpha: float, learning_rate: float,
                   **fit_kwargs) -> int:
    """Train `student` in place on (1 - alpha) hard + alpha soft loss; alpha = 0 is the baseline.

    `validation` is (x_val, y_val, teacher_logits_val).
    """
    distiller = OfflineDistiller(teacher, student, temperature=temperature, alpha=alpha)
    distiller.compile(optimizer=keras.optimizers.Adam(learning_rate), steps_per_execution=64)
    x_val, y_val, t_val = validation
    targets = {"label": y, "teacher_logits": teacher_logits}
    val = (x_val, {"label": y_val, "teacher_logits": t_val})
    return fit(distiller, x, targets, val, **fit_kwargs)
