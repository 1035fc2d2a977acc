"""Teacher and student networks: MLPs that take raw columns and return class logits.

Feature engineering (colours, asinh of redshift) and normalisation live inside the model,
so a deployed student takes raw u g r i z magnitudes and nothing else.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from sdss_distill.core.errors import InputError
from sdss_distill.core.io import quiet_native_stderr
from sdss_distill.core.schema import LABELS, View, asinh_scales, colour_pairs
from sdss_distill.core.zphot import HEAD


@keras.saving.register_keras_serializable(package="sdss_distill")
class SkyFeatures(keras.layers.Layer):
    """Raw columns -> features: asinh-scaled columns (e.g. redshift), then adjacent colours.

    Built from elementwise ops and one constant matmul, so it converts to TFLite builtins.
    """

    def __init__(self, colour_pairs: list[list[int]], asinh_scales: list[float], **kwargs):
        super().__init__(**kwargs)
        self.colour_pairs = [list(map(int, p)) for p in colour_pairs]
        self.asinh_scales = [float(s) for s in asinh_scales]
        self._diff = self.colour_matrix().astype("float32")
        self._scales = np.asarray(self.asinh_scales, "float32")

    def colour_matrix(self) -> np.ndarray:
        """D with x @ D = the colours: +1 / -1 at each pair's bands (float64)."""
        diff = np.zeros((len(self.asinh_scales), len(self.colour_pairs)))
        for k, (a, b) in enumerate(self.colour_pairs):
            diff[a, k], diff[b, k] = 1.0, -1.0
        return diff

    def call(self, x):
        parts = [x]
        if self._scales.any():
            scaled = x * np.where(self._scales > 0, self._scales, 1.0).astype("float32")
            # asinh(v) = sign(v) log(|v| + sqrt(v^2 + 1)), spelt out: TFLite has no ASINH op
            av = keras.ops.abs(scaled)
            asinh = keras.ops.sign(scaled) * keras.ops.log(av + keras.ops.sqrt(av * av + 1.0))
            parts = [keras.ops.where(self._scales > 0, asinh, x)]
        if self.colour_pairs:
            parts.append(keras.ops.matmul(x, self._diff))
        return keras.ops.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + len(self.colour_pairs))

    def get_config(self):
        return {**super().get_config(), "colour_pairs": self.colour_pairs,
                "asinh_scales": self.asinh_scales}


def build_mlp(view: View, hidden: tuple[int, ...], train_x: np.ndarray | None, *, name: str,
              dropout: float = 0.0, norm_stats: tuple[np.ndarray, np.ndarray] | None = None,
              outputs: int = len(LABELS), z_head: bool = False) -> keras.Model:
    """An MLP on `view`'s raw columns, its Normalization adapted on `train_x` (training rows).

    `outputs`: logits it returns, one per class by default (subclass distillation asks for
    one per subclass).

    `z_head`: a second output beside the class logits, a Dense(1) on the last hidden layer
    named `core.zphot.HEAD` that predicts log(1 + z) (the photometric redshift); the model
    then returns {"logits": ..., HEAD: ...} (see `logits` and `redshift`).

    `norm_stats`: the (mean, variance) of the features over the training rows, computed
    elsewhere (in a streaming pass over a table too large to hold); then `train_x` is unused.
    """
    inputs = keras.Input((len(view.columns),), name=view.name, dtype="float32")
    sky = SkyFeatures(colour_pairs(view.columns), asinh_scales(view.columns), name="features")
    norm = keras.layers.Normalization(name="normalize")
    if norm_stats is None:  # what Normalization.adapt computes, without its tf.data pass
        f = keras.ops.convert_to_numpy(sky(np.asarray(train_x, "float32"))).astype("float64")
        norm_stats = (f.mean(axis=0), f.var(axis=0))
    # the same variables as after adapt (mean, variance, count), so the same saved model
    norm.build((None, sky.compute_output_shape((None, len(view.columns)))[-1]))
    norm.set_weights([np.asarray(norm_stats[0], "float32"), np.asarray(norm_stats[1], "float32"),
                      np.asarray(0)])
    norm.finalize_state()
    x = norm(sky(inputs))
    for k, width in enumerate(hidden):
        x = keras.layers.Dense(width, activation="relu", name=f"dense_{k}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dropout_{k}")(x)
    logits = keras.layers.Dense(outputs, name="logits")(x)
    if z_head:
        z = keras.layers.Dense(1, name=HEAD)(x)
        return keras.Model(inputs, {"logits": logits, HEAD: z}, name=name)
    return keras.Model(inputs, logits, name=name)


def has_z_head(model: keras.Model) -> bool:
    """Whether a model has the redshift head (`build_mlp(..., z_head=True)`)."""
    return isinstance(model.output, dict) and HEAD in model.output


@keras.saving.register_keras_serializable(package="sdss_distill")
class MeanProbability(keras.layers.Layer):
    """Members' logits -> log of their mean softmax: the logits of the averaged probabilities."""

    def call(self, inputs):
        log_p = keras.ops.log_softmax(keras.ops.stack(inputs, axis=1), axis=-1)
        return keras.ops.logsumexp(log_p, axis=1) - float(np.log(len(inputs)))

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]


@keras.saving.register_keras_serializable(package="sdss_distill")
class SubclassSum(keras.layers.Layer):
    """Subclass logits (class-major: subclass j of class c at c * per_class + j) -> log of each
    class's summed subclass probability: the logits of the class distribution (Mueller et al.
    2020, "Subclass distillation"). Log-sum-exp, not log(sum(softmax)), so no probability
    underflows to log(0)."""

    def __init__(self, per_class: int, **kwargs):
        super().__init__(**kwargs)
        if int(per_class) < 1:
            raise ValueError(f"per_class must be >= 1, got {per_class!r}")
        self.per_class = int(per_class)

    def call(self, inputs):
        log_p = keras.ops.log_softmax(inputs, axis=-1)
        grouped = keras.ops.reshape(log_p, (-1, len(LABELS), self.per_class))
        return keras.ops.logsumexp(grouped, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], len(LABELS))

    def get_config(self):
        return {**super().get_config(), "per_class": self.per_class}


def subclass_model(subclass_mlp: keras.Model, per_class: int, *, name: str) -> keras.Model:
    """The same layers as `subclass_mlp` (one logit per subclass), plus `SubclassSum`: a flat
    model with 3 class logits, saved, evaluated and exported like any other MLP."""
    out = SubclassSum(per_class, name="class_logits")(subclass_mlp.output)
    return keras.Model(subclass_mlp.input, out, name=name)


def subclass_head(model: keras.Model) -> SubclassSum | None:
    """A model's `SubclassSum` output layer (None for a plain MLP or an ensemble)."""
    heads = [layer for layer in model.layers if isinstance(layer, SubclassSum)]
    return heads[0] if heads else None


def ensemble_model(members: list[keras.Model], view: View, *, name: str) -> keras.Model:
    """One model holding `members` (same input view), averaging their probabilities."""
    inputs = keras.Input((len(view.columns),), name=view.name, dtype="float32")
    out = MeanProbability(name="mean_probability")([m(inputs) for m in members])
    return keras.Model(inputs, out, name=name)


def ensemble_members(model: keras.Model) -> list[keras.Model]:
    """The member models of an `ensemble_model` (empty for a plain MLP)."""
    return [layer for layer in model.layers if isinstance(layer, keras.Model)]


def logits(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """One direct forward pass (no `predict` loop: cheaper for small tables, and no retracing):
    the class logits (of a model with a redshift head too)."""
    out = model(np.asarray(x, "float32"), training=False)
    return keras.ops.convert_to_numpy(out["logits"] if isinstance(out, dict) else out)


def redshift(model: keras.Model, x: np.ndarray) -> np.ndarray | None:
    """The redshift head's output log(1 + z) per row (core.zphot.from_output gives z_phot),
    or None for a model without the head."""
    if not has_z_head(model):
        return None
    out = model(np.asarray(x, "float32"), training=False)
    return keras.ops.convert_to_numpy(out[HEAD])[:, 0]


def load(path, **kwargs) -> keras.Model:
    """Load a saved model safely (no arbitrary code: `safe_mode=True`)."""
    return keras.saving.load_model(path, safe_mode=True, compile=False, **kwargs)


def load_run_model(path) -> keras.Model:
    """A run's saved model, loaded safely; a missing or unloadable file is one InputError
    naming it (Keras raises many kinds of exception for a bad archive)."""
    if not Path(path).is_file():
        raise InputError(f"{path}: missing; not a complete training run, train it again")
    try:
        with quiet_native_stderr(replay_on_error=False):
            return load(path)
    except Exception as e:  # noqa: BLE001 - Keras raises many kinds for a bad archive
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise InputError(f"{path}: cannot load the Keras model ({first}); the file is corrupt "
                         f"or not from sdss_distill, train the run again") from None
