"""Co-training in the JAX engine: teacher and student trained together from scratch, one loss.

    loss = CE(y, t) + (1 - alpha) * CE(y, s) + alpha * soft(stop_gradient(t), s)

as `distillers.CoTrainer` computes it: the teacher learns from the labels only, the student
from the labels and the teacher as it learns. The two networks read different views (the
teacher's privileged columns), step together on the same batches with one Adam (optax), and
stop together on the summed validation loss through the same Keras callbacks as every other
fit (`stopping.py`, via `jax_fit._Member`): they are one model, as CoTrainer is.
"""

from __future__ import annotations

import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sdss_distill.distill import formula
from sdss_distill.distill.jax_fit import (
    JNP,
    Loss,
    _forward,
    _Member,
    _padded,
    dense_stack,
    optimizer,
    with_learning_rates,
)

NAMES = ("loss", "teacher_loss", "student_loss", "distillation_loss", "accuracy")


def _terms(params, zt, zs, y, w, key, alpha, n_teacher, rates, loss: Loss, training):
    """Weighted (total, (teacher CE, student CE, soft, student accuracy)) over a batch."""
    kt, ks = (None, None) if key is None else jax.random.split(key)
    t, _ = _forward(params[:n_teacher], zt, rates[0], kt, training)
    s, _ = _forward(params[n_teacher:], zs, rates[1], ks, training)
    n = jnp.maximum(w.sum(), 1.0)
    parts = [(formula.hard_term(JNP, y, t) * w).sum() / n,
             (formula.hard_term(JNP, y, s) * w).sum() / n,
             (formula.soft_term(JNP, jax.lax.stop_gradient(t), s, loss.temperature, loss.kind)
              * w).sum() / n,
             ((jnp.argmax(s, axis=-1) == y) * w).sum() / n]
    return parts[0] + (1.0 - alpha) * parts[1] + alpha * parts[2], tuple(parts)


@partial(jax.jit, static_argnames=("n_teacher", "rates", "loss"))
def _epoch(params, opt_state, zt, zs, y, idx, w, val_idx, alpha, key, *, n_teacher, rates,
           loss: Loss):
    """One epoch (a scan over the batches idx (steps, B), weights w), then the validation terms."""
    grad = jax.value_and_grad(lambda p, i, wb, k: _terms(
        p, zt[i], zs[i], y[i], wb, k, alpha, n_teacher, rates, loss, True), has_aux=True)
    update = optimizer().update

    def step(carry, batch):
        params, opt_state, key = carry
        key, sub = jax.random.split(key)
        (total, parts), g = grad(params, *batch, sub)
        updates, opt_state = update(g, opt_state, params)
        rows = batch[1].sum()
        return (optax.apply_updates(params, updates), opt_state, key), (
            jnp.stack([total, *parts]) * rows, rows)

    (params, opt_state, _), (sums, rows) = jax.lax.scan(step, (params, opt_state, key), (idx, w))
    train = sums.sum(axis=0) / jnp.maximum(rows.sum(), 1.0)
    val_total, val_parts = _terms(params, zt[val_idx], zs[val_idx], y[val_idx],
                                  jnp.ones(val_idx.shape), None, alpha, n_teacher, rates, loss,
                                  False)
    return params, opt_state, train, jnp.stack([val_total, *val_parts])


def fit_pair(teacher, student, x_teacher, x_student, y, train, val, settings, *, loss: Loss):
    """Co-train `teacher` (on x_teacher) and `student` (on x_student) on the rows where `train`
    is True, stopping on the rows where `val` is; their Keras weights are updated in place.
    Returns (epochs, seconds, history) as `jax_fit.fit_members`."""
    start = time.perf_counter()
    stacks = [dense_stack(teacher), dense_stack(student)]
    zt, zs = (jnp.asarray(np.asarray(front(np.asarray(x, "float32"), training=False)))
              for (front, _, _), x in zip(stacks, (x_teacher, x_student)))
    params = [tuple(layer.get_weights()) for s in stacks for layer in s[1]]
    n_teacher, rates = len(stacks[0][1]), (stacks[0][2], stacks[1][2])
    rows, val_idx = np.flatnonzero(train), jnp.asarray(np.flatnonzero(val))
    steps, batch = -(-len(rows) // settings.batch_size), settings.batch_size
    rng = np.random.default_rng(settings.seed)
    keys = rng.integers(0, 2**31, size=(settings.epochs, 2), dtype=np.uint32)
    member, opt_state = _Member(None, settings.learning_rate, settings.patience), \
        optimizer().init(params)
    y_dev, alpha, history, epochs = jnp.asarray(np.asarray(y, "int32")), np.float32(loss.alpha), \
        {}, 0
    static = Loss(0.0, loss.temperature, loss.kind)
    for epoch in range(settings.epochs):
        idx, w = _padded([rng.permutation(rows)], steps * batch)
        params, opt_state, train_stats, val_stats = _epoch(
            params, with_learning_rates(opt_state, member.optimizer.learning_rate), zt, zs,
            y_dev, idx.reshape(steps, batch), w.reshape(steps, batch), val_idx, alpha,
            keys[epoch], n_teacher=n_teacher, rates=rates, loss=static)
        for prefix, stats in (("", train_stats), ("val_", val_stats)):
            for name, value in zip(NAMES, np.asarray(stats, "float64")):
                history.setdefault(prefix + name, []).append(float(value))
        epochs = epoch + 1
        member.epoch_end(epoch, params, history["val_loss"][-1])
        if member.stop_training:
            break
    weights = member.final_weights(params)
    for i, layer in enumerate([*stacks[0][1], *stacks[1][1]]):
        layer.set_weights(weights[2 * i:2 * i + 2])
    return epochs, time.perf_counter() - start, history
