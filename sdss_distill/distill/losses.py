"""The soft and hint terms as `keras.distillation.DistillationLoss` subclasses.

A `Distiller` combines them with the hard-label term through its own list of losses and
weights: total = (1 - alpha) * CE + alpha * sum(weight_i * loss_i). The formulas live in
`formula.py`, shared with the QAT process.
"""

from __future__ import annotations

from types import SimpleNamespace

import keras

from sdss_distill.distill import formula

# formula.py's functions take the `tf` module; these are the names they use, in keras.ops,
# so the losses (and distillers.py) run on any Keras backend: TensorFlow, or JAX.
OPS = SimpleNamespace(
    nn=SimpleNamespace(
        log_softmax=lambda x, axis=-1: keras.ops.log_softmax(x, axis=axis),
        sparse_softmax_cross_entropy_with_logits=lambda labels, logits:
        keras.ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)),
    exp=keras.ops.exp, reduce_sum=keras.ops.sum, reduce_mean=keras.ops.mean,
    square=keras.ops.square, cast=keras.ops.cast, int32="int32")


def _check_temperature(temperature) -> float:
    if not float(temperature) > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    return float(temperature)


@keras.saving.register_keras_serializable(package="sdss_distill")
class TemperatureKL(keras.distillation.DistillationLoss):
    """T^2 * KL(softmax(t/T) || softmax(s/T)), averaged over rows (Hinton et al. 2015).

    Unlike the stock `LogitsDistillation(loss="kl_divergence")`, the temperature applies. No
    default temperature here: the run's (runs/config.py) is the one default.
    """

    kind = "kl"

    def __init__(self, temperature: float):
        self.temperature = _check_temperature(temperature)

    def per_row(self, teacher_logits, student_logits):
        return formula.soft_term(OPS, teacher_logits, student_logits, self.temperature, self.kind)

    def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
        return keras.ops.mean(self.per_row(teacher_outputs, student_outputs))

    def get_config(self):
        return {"temperature": self.temperature}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="sdss_distill")
class SoftCrossEntropy(TemperatureKL):
    """T^2 * H(softmax(t/T), softmax(s/T)): the KL plus the teacher's entropy (same gradient)."""

    kind = "ce"


SOFT_LOSSES = {"kl": TemperatureKL, "ce": SoftCrossEntropy}


def soft_loss(kind: str, temperature: float) -> TemperatureKL:
    """The soft term named `kind` ('kl' or 'ce') at `temperature`."""
    try:
        return SOFT_LOSSES[kind](temperature)
    except KeyError:
        raise ValueError(f"unknown soft loss {kind!r}; choose one of: "
                         f"{', '.join(SOFT_LOSSES)}") from None


@keras.saving.register_keras_serializable(package="sdss_distill")
class FitNetsHint(keras.distillation.DistillationLoss):
    """FitNets hint (Romero et al. 2015): MSE between a teacher hidden layer and a learned
    linear projection of a student hidden layer.

    `teacher_layer_name`/`student_layer_name` are the attributes the stock Distiller reads to
    extract hidden features. The projection is trainable; the distiller trains it with the
    student (`HintDistiller` tracks it).
    """

    def __init__(self, teacher_layer_name: str, student_layer_name: str, *, teacher_units: int,
                 student_units: int):
        self.teacher_layer_name = teacher_layer_name
        self.student_layer_name = student_layer_name
        self.teacher_units, self.student_units = int(teacher_units), int(student_units)
        self.projection = keras.layers.Dense(self.teacher_units, name="hint_projection")
        self.projection.build((None, self.student_units))

    def validate_model_compatibility(self, teacher, student):
        for model, name, units in ((teacher, self.teacher_layer_name, self.teacher_units),
                                   (student, self.student_layer_name, self.student_units)):
            names = [layer.name for layer in model.layers]
            if name not in names:
                raise ValueError(f"{model.name} has no layer {name!r}; its layers: "
                                 f"{', '.join(names)}")
            got = model.get_layer(name).output.shape[-1]
            if got != units:
                raise ValueError(f"{model.name} layer {name!r} has {got} units, expected {units}")

    def per_row(self, teacher_features, student_features):
        return formula.hint_term(OPS, teacher_features, self.projection(student_features))

    def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
        return keras.ops.mean(self.per_row(teacher_outputs, student_outputs))

    def get_config(self):
        return {"teacher_layer_name": self.teacher_layer_name,
                "student_layer_name": self.student_layer_name,
                "teacher_units": self.teacher_units, "student_units": self.student_units}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
