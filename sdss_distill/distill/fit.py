"""Fit a model with early stopping on a validation slice; train teachers and students.

One fit loop for arrays and streams (`fit`: arrays become cached tf.data pipelines, a
stream arrives as one). Plain MLPs on arrays (teachers, fold teachers, offline students,
baselines: the default method's every model) are fitted by the JAX engine instead
(`jax_fit.py`, `FitSettings.engine`); the models stay Keras (TensorFlow backend).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from sdss_distill.core.errors import InputError
from sdss_distill.distill.distillers import (
    STUDENT,
    TEACHER,
    CoTrainer,
    OfflineDistiller,
    ParallelTeachers,
)
from sdss_distill.distill.formula import ENGINES, check_alpha
from sdss_distill.distill.stopping import early_stopping_callbacks
from sdss_distill.distill.subclasses import SubclassDistiller

STEPS_PER_EXECUTION = 64
VALIDATION_BATCH = 4096


@dataclass(frozen=True)
class FitSettings:
    """How every model is fitted: an upper bound on epochs, early stopping, Adam."""

    epochs: int
    batch_size: int
    patience: int
    learning_rate: float
    seed: int = 0  # shuffling order
    engine: str = "jax"  # jax: plain MLPs on arrays by jax_fit; keras: always keras fit

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")


@dataclass
class Fitted:
    """What a fit did: epochs run, seconds, and the per-epoch curves Keras logged."""

    epochs: int
    seconds: float
    history: dict[str, list[float]] = field(default_factory=dict)


def datasets(x, y, validation, settings: FitSettings):
    """Cached tf.data pipelines: reshuffled every epoch (seeded), validation in large batches.

    Feeding numpy arrays makes Keras rebuild its input pipeline every epoch, which costs
    about five times an epoch's actual work for these models (measured: docs/results/speed.md).
    """
    train = (tf.data.Dataset.from_tensor_slices((x, y)).cache()
             .shuffle(len(np.asarray(y if not isinstance(y, dict) else next(iter(y.values())))),
                      seed=settings.seed, reshuffle_each_iteration=True)
             .batch(settings.batch_size).prefetch(2))
    val = tf.data.Dataset.from_tensor_slices(validation).batch(VALIDATION_BATCH).cache()
    return train, val


def fit(model: keras.Model, train, validation, settings: FitSettings, *, compile_kwargs=None,
        callbacks=(), verbose: int = 0) -> Fitted:
    """Compile with Adam, fit with early stopping: the one Keras fit loop.

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
    """compile() arguments for plain supervised training on integer labels."""
    return dict(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])


def _jax_ready(settings: FitSettings, models) -> bool:
    if settings.engine != "jax":
        return False
    try:
        from sdss_distill.distill import jax_fit
    except ImportError as e:
        raise ImportError(f"engine 'jax' needs JAX ({e}): pip install 'jax[cpu]', or set "
                          f"engine = \"keras\" in the run's TOML config") from e
    return jax_fit.supported(models)


def _fit_jax(models, x, y, train_mask, val_mask, settings, **kwargs) -> Fitted:
    from sdss_distill.distill import jax_fit
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
    if _jax_ready(settings, [teacher]):
        xs, ys, train, val = _stacked(x, x_val, (y, y_val))
        return _fit_jax([teacher], xs, ys, train, val, settings)
    return fit(teacher, (x, y), validation, settings, compile_kwargs=hard_labels())


def train_parallel(members: list[keras.Model], x: np.ndarray, labels: np.ndarray,
                   train_mask: np.ndarray, val_mask: np.ndarray, settings: FitSettings) -> Fitted:
    """Train K members at once, member k on the rows of `train_mask[:, k]`, early stopping on
    the rows of `val_mask[:, k]`; the members are updated in place.

    The JAX engine stops each member on its own validation loss; Keras stops them together
    on the sum.
    """
    if _jax_ready(settings, members):
        return _fit_jax(members, x, labels, train_mask, val_mask, settings)
    model = ParallelTeachers(members)
    y = {"label": labels, "mask": train_mask.astype("float32")}
    val = (x, {"label": labels, "mask": val_mask.astype("float32")})
    return fit(model, (x, y), val, settings)


def distil_offline(student: keras.Model, x, y, soft, validation, settings: FitSettings, *,
                   alpha: float, loss, per_class: int = 0, hint=None) -> Fitted:
    """Offline distillation: `soft` are teacher logits for the rows of x; alpha = 0 is the
    hard-label baseline. `validation` = (x_val, y_val, soft_val); `loss` a soft loss of
    losses.py (its temperature and kind). `per_class` > 0: the student and `soft` are
    subclass logits, per_class per class (subclass distillation, `jax_fit.Loss`). `hint` =
    (projection Dense layer, index of the student's Dense layer, weight): FitNets hints, the
    teacher's hidden features being the columns of `soft` after the logits (JAX engine only)."""
    x_val, y_val, soft_val = validation
    alpha = check_alpha(alpha)
    if _jax_ready(settings, [student]):
        from sdss_distill.distill.jax_fit import Loss
        xs, ys, ss, train, val = _stacked(x, x_val, (y, y_val), (soft, soft_val))
        layer, weight = (hint[1], hint[2]) if hint else (-1, 0.0)
        return _fit_jax([student], xs, ys, train, val, settings, soft=ss,
                        loss=Loss(alpha, loss.temperature, loss.kind, per_class, layer, weight),
                        projection=hint[0] if hint else None)
    if hint:
        raise InputError('method hints trains in the JAX engine only: set engine = "jax"')
    distiller = OfflineDistiller(student, alpha=alpha, losses=[loss])
    if per_class:
        distiller = SubclassDistiller(student, per_class, alpha=alpha, soft_loss=loss)
    return fit(distiller, ({"student": x, "soft": soft}, y),
               ({"student": x_val, "soft": soft_val}, y_val), settings)


def fit_distiller(distiller: keras.Model, x: dict, y, validation, settings: FitSettings) -> Fitted:
    """Fit any distiller whose inputs are a dict of views (online, hints, co-training)."""
    return fit(distiller, (x, y), validation, settings)


def cotrain(teacher, student, x: dict, y, validation, settings: FitSettings, *, alpha: float,
            loss) -> Fitted:
    """Teacher and student from scratch, together (see `CoTrainer`; in the JAX engine,
    `jax_cotrain`). `x` = {"student": ..., "teacher": ...}, `validation` the same pair."""
    alpha = check_alpha(alpha)
    if _jax_ready(settings, [teacher]) and _jax_ready(settings, [student]):
        from sdss_distill.distill import jax_cotrain
        from sdss_distill.distill.jax_fit import Loss
        x_val, y_val = validation
        xt, xs, ys, train, val = _stacked(x[TEACHER], x_val[TEACHER], (x[STUDENT], x_val[STUDENT]),
                                          (y, y_val))
        return Fitted(*jax_cotrain.fit_pair(teacher, student, xt, xs, ys, train[:, 0], val[:, 0],
                                            settings, loss=Loss(alpha, loss.temperature, loss.kind)))
    return fit(CoTrainer(teacher, student, alpha=alpha, soft_loss=loss), (x, y), validation,
               settings)
