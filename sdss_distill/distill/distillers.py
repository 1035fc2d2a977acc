"""`keras.distillation.Distiller` subclasses: every KD method's student trains through one.

The stock `Distiller` assumes the teacher and student read the same input and runs the
frozen teacher every step. Here the teacher may read privileged columns (redshift), so the
input is a dict: `{"student": x_student, "teacher": x_teacher}` for an online teacher, or
`{"student": x_student, "soft": logits}` when the soft labels were computed beforehand (an
identity "teacher" then passes them through). The losses are combined by the Distiller's own
`compute_loss`: (1 - alpha) * CE(y, s) + alpha * sum(weight_i * loss_i).

The distiller is the one place a student's loss settings live: alpha, each distillation
loss's temperature and kind, a FitNets hint's layers and weight (and, in `subclasses.py`,
the subclass bins). Its `train` hands exactly those to the one engine (`engine_loss` ->
`jax_fit.Loss`, through `fit.distil` or `fit.cotrain_pair`); Keras's own `fit` is never
called on these objects (it could not keep the time: docs/results/speed.md).
`tests/test_distillers.py` proves, per class, that the Keras `compute_loss` and the engine's
loss agree on the same weights and batch.

`CoTrainer` trains teacher and student together (the stock Distiller freezes the teacher).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from sdss_distill.core.schema import LABELS, STUDENT, TEACHER
from sdss_distill.distill import fit, formula, jax_fit
from sdss_distill.distill.losses import OPS, FitNetsHint, TemperatureKL

SOFT = "soft"


def precomputed_teacher(width: int = len(LABELS)) -> keras.Model:
    """An identity model over `width` precomputed teacher logits: offline distillation's
    'teacher'."""
    logits = keras.Input((width,), name=SOFT, dtype="float32")
    return keras.Model(logits, keras.layers.Identity(name="logits")(logits), name="soft_labels")


def _hard_loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def dense_index(model: keras.Model, layer_name: str) -> int:
    """Index of the Dense layer `layer_name` among `model`'s Dense layers (the engine's
    numbering of a `build_mlp` network's layers)."""
    return [layer.name for layer in model.layers
            if isinstance(layer, keras.layers.Dense)].index(layer_name)


class ViewDistiller(keras.distillation.Distiller):
    """A Distiller whose teacher reads `x[teacher_input]` and whose student reads `x["student"]`."""

    teacher_input = TEACHER
    per_class = 0  # > 0: the student emits per_class subclass logits per class (subclasses.py)

    def __init__(self, teacher: keras.Model, student: keras.Model, *, alpha: float,
                 losses: list, loss_weights: list[float] | None = None, **kwargs):
        alpha = formula.check_alpha(alpha)
        super().__init__(teacher=teacher, student=student, distillation_losses=losses,
                         distillation_loss_weights=loss_weights or [1.0] * len(losses),
                         student_loss_weight=1.0 - alpha, **kwargs)
        self.alpha = alpha

    def _validate_input_compatibility(self, teacher, student):
        """Inputs differ on purpose (privileged columns, or precomputed logits)."""

    def _validate_models(self, teacher, student):
        """A student with a redshift head (distill/zphot.py) has a second output: its class
        logits (the `logits` layer) face the teacher's; the head has its own term."""
        if len(getattr(student, "outputs", None) or ()) > 1:
            student = keras.Model(student.inputs, student.get_layer("logits").output)
        super()._validate_models(teacher, student)

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
        """The stock extractors take the model's input list (one input here)."""
        teacher_x = x[self.teacher_input]
        if self._teacher_feature_extractor is not None:
            return self._teacher_feature_extractor([teacher_x], training=False)
        return {"final_output": self.teacher(teacher_x, training=False)}

    def _extract_all_student_features(self, x, y_pred):
        if self._student_feature_extractor is not None:
            return self._student_feature_extractor([x[STUDENT]], training=True)
        return {"final_output": y_pred}

    def _losses_of(self, kind) -> list:
        return [(loss, float(w)) for loss, w in zip(self.distillation_losses,
                                                    self.distillation_loss_weights)
                if isinstance(loss, kind)]

    def engine_loss(self) -> jax_fit.Loss:
        """The loss the JAX engine trains on, read from this distiller's own attributes: alpha,
        the soft loss's temperature and kind, the hint's student layer and weight, the
        subclass bins. The engine weighs one soft loss at 1 and a hint next to it, as
        `compute_loss` does; any other combination is refused, not approximated."""
        soft, hints = self._losses_of(TemperatureKL), self._losses_of(FitNetsHint)
        if (len(soft) != 1 or soft[0][1] != 1.0 or len(hints) > 1
                or len(soft) + len(hints) != len(self.distillation_losses)):
            raise ValueError("the engine trains one soft loss of weight 1 and at most one "
                             f"FitNets hint; got {self.distillation_losses!r} weighted "
                             f"{self.distillation_loss_weights!r}")
        (kd, _), = soft
        layer, weight = -1, 0.0
        if hints:
            layer, weight = dense_index(self.student, hints[0][0].student_layer_name), hints[0][1]
        return jax_fit.Loss(self.alpha, kd.temperature, kd.kind, self.per_class, layer, weight)


class OfflineDistiller(ViewDistiller):
    """The proposal's mode: soft labels computed once, passed as `x["soft"]`.

    With alpha = 0 it is plain hard-label training of the student: the baseline.
    """

    teacher_input = SOFT

    def __init__(self, student: keras.Model, **kwargs):
        super().__init__(precomputed_teacher(int(student.outputs[0].shape[-1])), student,
                         **kwargs)

    def train(self, x, y, soft, validation, settings: fit.FitSettings) -> fit.Fitted:
        """Fit the student on rows x (labels y, teacher logits soft), early stopping on
        `validation` = (x_val, y_val, soft_val), with this distiller's loss."""
        return fit.distil(self.student, x, y, soft, validation, settings,
                          loss=self.engine_loss())


class OnlineDistiller(ViewDistiller):
    """Stock `keras.distillation` behaviour: the frozen teacher labels each row it reads.

    A frozen teacher in inference mode gives a row the same outputs at every step, so `train`
    computes them once per row (logits, then any hint layer's features) and the engine
    trains the student on them: the loss `compute_loss` computes batch by batch."""

    def teacher_targets(self, x_teacher) -> np.ndarray:
        """The frozen teacher's logits on `x_teacher`, then each hint layer's output."""
        out = self._extract_all_teacher_features({self.teacher_input: np.asarray(
            x_teacher, "float32")})
        names = ["final_output", *(loss.teacher_layer_name
                                   for loss, _ in self._losses_of(FitNetsHint))]
        return np.concatenate([keras.ops.convert_to_numpy(out[n]) for n in names],
                              axis=1).astype("float32")

    def train(self, x: dict, y, validation, settings: fit.FitSettings) -> fit.Fitted:
        """Fit the student on x = {"student": ..., "teacher": ...} and labels y, early stopping
        on `validation` = (x_val, y_val) of the same form."""
        x_val, y_val = validation
        hints = self._losses_of(FitNetsHint)
        return fit.distil(self.student, x[STUDENT], y, self.teacher_targets(x[TEACHER]),
                          (x_val[STUDENT], y_val, self.teacher_targets(x_val[TEACHER])),
                          settings, loss=self.engine_loss(),
                          projection=hints[0][0].projection if hints else None)


class HintDistiller(OnlineDistiller):
    """Online distillation plus FitNets hints; trains the hints' projections with the student."""

    def __init__(self, teacher, student, *, alpha: float, losses: list, **kwargs):
        super().__init__(teacher, student, alpha=alpha, losses=losses, **kwargs)
        self.hint_projections = [loss.projection for loss in losses
                                 if isinstance(loss, FitNetsHint)]


class CoTrainer(ViewDistiller):
    """Teacher and student trained together from scratch with one combined loss.

    loss = CE(y, t) + (1 - alpha) * CE(y, s) + alpha * soft(stop_gradient(t), s): the teacher
    learns from the labels only, the student from labels and the teacher as it learns (the
    proposal's "simultaneous" training). The stock Distiller freezes its teacher; this one
    unfreezes it and adds the teacher's own term to the stock `compute_loss`.
    """

    def __init__(self, teacher: keras.Model, student: keras.Model, *, alpha: float,
                 soft_loss: TemperatureKL, **kwargs):
        super().__init__(teacher, student, alpha=alpha, losses=[soft_loss], **kwargs)
        self.teacher.trainable = True
        self.teacher_loss_tracker = keras.metrics.Mean(name="teacher_loss")
        self._teacher_logits = None

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        t = self.teacher(x[TEACHER], training=training)
        self._teacher_logits = ops.stop_gradient(t)  # what the soft term sees of the teacher
        teacher_loss = ops.mean(formula.hard_term(OPS, y, t))
        self.teacher_loss_tracker.update_state(teacher_loss)
        return teacher_loss + super().compute_loss(x=x, y=y, y_pred=y_pred,
                                                   sample_weight=sample_weight,
                                                   training=training)

    def _extract_all_teacher_features(self, x):
        return {"final_output": self._teacher_logits}

    def train(self, x: dict, y, validation, settings: fit.FitSettings) -> fit.Fitted:
        """Co-train on x = {"student": ..., "teacher": ...}, early stopping on `validation`."""
        return fit.cotrain_pair(self.teacher, self.student, x, y, validation, settings,
                                loss=self.engine_loss())


def distil_offline(student: keras.Model, x, y, soft, validation, settings: fit.FitSettings, *,
                   alpha: float, loss: TemperatureKL) -> fit.Fitted:
    """Offline distillation through an `OfflineDistiller`: `soft` are teacher logits for the
    rows of x, `validation` = (x_val, y_val, soft_val); alpha = 0 is the hard-label baseline."""
    return OfflineDistiller(student, alpha=alpha, losses=[loss]).train(x, y, soft, validation,
                                                                       settings)
