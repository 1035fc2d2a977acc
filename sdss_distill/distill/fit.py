"""Fit a model with early stopping on a validation slice; train teachers and students.

Every in-memory model (teachers, fold teachers, ensemble members, students, baselines,
assistants, co-trained pairs) is fitted by the one JAX engine (`jax_fit.py`, and
`jax_cotrain.py` for a co-trained pair; `jax_batches.py` runs the same engine over streamed
chunks); the models stay Keras. There is no other engine to choose.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np

from sdss_distill.core.schema import STUDENT, TEACHER
from sdss_distill.distill import jax_cotrain, jax_fit


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
