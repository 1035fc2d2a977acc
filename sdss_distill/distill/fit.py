"""Fit a model with early stopping on a validation slice; train teachers and students.

Every in-memory model (teachers, fold teachers, ensemble members, students, baselines,
assistants, co-trained pairs) is fitted by the one JAX engine (`jax_fit.py`, and
`jax_cotrain.py` for a co-trained pair); the models stay Keras (TensorFlow backend). There is
no other engine to choose. `fit`, `datasets`, `hard_labels` and `VALIDATION_BATCH` are the
Keras fit loop of the streamed run only (`stream_fit.py`), removed with the stream path.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import keras
import numpy as np

from sdss_distill.core.schema import STUDENT, TEACHER
from sdss_distill.distill import jax_cotrain, jax_fit
from sdss_distill.distill.stopping import early_stopping_callbacks

STEPS_PER_EXECUTION = 64  # streams only, removed with the stream path
VALIDATION_BATCH = 4096  # streams only, removed with the stream path


@dataclass(frozen=True)
class FitSettings:
    """How every model is fitted: an upper bound on epochs, early stopping, Adam."""

    epochs: int
    batch_size: int
    patience: int
    learning_rate: float
    seed: int = 0  # shuffling order


@dataclass
class Fitted:
    """What a fit did: epochs run, seconds, and the per-epoch curves Keras logged."""

    epochs: int
    seconds: float
    history: dict[str, list[float]] = field(default_factory=dict)


def datasets(x, y, validation, settings: FitSettings):
    """Cached tf.data pipelines: reshuffled every epoch (seeded), validation in large batches.
    Streams only, removed with the stream path.

    Feeding numpy arrays makes Keras rebuild its input pipeline every epoch, which costs
    about five times an epoch's actual work for these models (measured: docs/results/speed.md).
    """
    import tensorflow as tf
    train = (tf.data.Dataset.from_tensor_slices((x, y)).cache()
             .shuffle(len(np.asarray(y if not isinstance(y, dict) else next(iter(y.values())))),
                      seed=settings.seed, reshuffle_each_iteration=True)
             .batch(settings.batch_size).prefetch(2))
    val = tf.data.Dataset.from_tensor_slices(validation).batch(VALIDATION_BATCH).cache()
    return train, val


def fit(model: keras.Model, train, validation, settings: FitSettings, *, compile_kwargs=None,
        callbacks=(), verbose: int = 0) -> Fitted:
    """Compile with Adam, fit with early stopping: the Keras fit loop of the streamed run
    (streams only, removed with the stream path; every in-memory model trains in the engine).

    `train` is (x, y) arrays with `validation` = (x_val, y_val), or (streamed) a
    `tf.data.Dataset` of batches with `validation` another.
    """
    model.compile(optimizer=keras.optimizers.Adam(settings.learning_rate),
                  steps_per_execution=STEPS_PER_EXECUTION, **(compile_kwargs or {}))
    if isinstance(train, tuple):
        train, validation = datasets(*train, validation, settings)
    start = time.perf_counter()
    history = model.fit(train, validation_data=validation, epochs=settings.epochs,
                        callbacks=[*early_stopping_callbacks(settings.patience), *callbacks],
                        shuffle=False, verbose=verbose)
    curves = {k: [float(v) for v in values] for k, values in history.history.items()
              if k != "learning_rate"}
    return Fitted(len(history.history["loss"]), time.perf_counter() - start, curves)


def hard_labels() -> dict:
    """compile() arguments for plain supervised training on integer labels (streams only,
    removed with the stream path)."""
    return dict(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])


def _fit_jax(models, x, y, train_mask, val_mask, settings, **kwargs) -> Fitted:
    """The one engine: `jax_fit.fit_members` on plain `build_mlp` networks (anything else is
    a programming error, named)."""
    if not jax_fit.supported(models):
        raise ValueError(f"the JAX engine fits plain build_mlp networks of one shape; got "
                         f"{', '.join(m.name for m in models)}")
    epochs, seconds, history = jax_fit.fit_members(models, x, y, train_mask, val_mask, settings,
                                                   **kwargs)
    return Fitted(epochs, seconds, history)


def _stacked(x, x_val, *extra):
    """Fit and early-stopping rows as one table with (rows, 1) masks, for the JAX engine."""
    train = (np.arange(len(x) + len(x_val)) < len(x))[:, None]
    return (np.concatenate([x, x_val]), *(np.concatenate(pair) for pair in extra), train, ~train)


def train_teacher(teacher: keras.Model, x, y, validation, settings: FitSettings) -> Fitted:
    """Plain supervised training on hard labels (the teacher, or a hard-label student)."""
    x_val, y_val = validation
    xs, ys, train, val = _stacked(x, x_val, (y, y_val))
    return _fit_jax([teacher], xs, ys, train, val, settings)


def train_parallel(members: list[keras.Model], x: np.ndarray, labels: np.ndarray,
                   train_mask: np.ndarray, val_mask: np.ndarray, settings: FitSettings) -> Fitted:
    """Train K members at once, member k on the rows of `train_mask[:, k]`, early stopping on
    the rows of `val_mask[:, k]` (each member on its own validation loss); the members are
    updated in place."""
    return _fit_jax(members, x, labels, train_mask, val_mask, settings)


def distil(student: keras.Model, x, y, soft, validation, settings: FitSettings, *,
           loss: jax_fit.Loss, projection=None) -> Fitted:
    """Fit `student` on the loss a distiller hands over (`distillers.*.train`: the distiller
    is the one place alpha, temperature, soft-loss kind, subclass bins and hints are set).
    `soft` are the targets of the rows of x (teacher logits, then hint features if any);
    `validation` = (x_val, y_val, soft_val); `projection` a FitNets hint's Dense layer."""
    x_val, y_val, soft_val = validation
    xs, ys, ss, train, val = _stacked(x, x_val, (y, y_val), (soft, soft_val))
    return _fit_jax([student], xs, ys, train, val, settings, soft=ss, loss=loss,
                    projection=projection)


def cotrain_pair(teacher, student, x: dict, y, validation, settings: FitSettings, *,
                 loss: jax_fit.Loss) -> Fitted:
    """Teacher and student from scratch, together (`jax_cotrain`), on the loss
    `distillers.CoTrainer` hands over. `x` = {"student": ..., "teacher": ...}, `validation`
    the same pair and labels."""
    if not jax_fit.supported([teacher]) or not jax_fit.supported([student]):
        raise ValueError("co-training fits plain build_mlp networks only")
    x_val, y_val = validation
    xt, xs, ys, train, val = _stacked(x[TEACHER], x_val[TEACHER], (x[STUDENT], x_val[STUDENT]),
                                      (y, y_val))
    return Fitted(*jax_cotrain.fit_pair(teacher, student, xt, xs, ys, train[:, 0], val[:, 0],
                                        settings, loss=loss))
