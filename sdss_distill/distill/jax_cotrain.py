"""Co-training in the JAX engine: teacher and student trained together from scratch, one loss.

    loss = CE(y, t) + (1 - alpha) * CE(y, s) + alpha * soft(stop_gradient(t), s)

as `distillers.CoTrainer` computes it: the teacher learns from the labels only, the student
from the labels and the teacher as it learns. The two networks read different views (the
teacher's privileged columns) and step together on the same batches, each with its own Adam
(optax), and each stops and halves its learning rate on its own validation loss through the
same Keras callbacks as every other fit (`stopping.py`, via `jax_fit._Member`): a member that
has stopped is frozen (learning rate 0) while the other goes on; both end on their best
epoch's weights.

The student is stepped by the same code as any student (`jax_fit._terms`, vmapped over one
member, its batch order and random keys drawn as `jax_fit.fit_members` draws them), the
teacher's current logits being its soft targets. So with alpha = 0 the teacher cannot reach
the student: the student is, to the bit, the hard-label baseline of the same rows, initial
weights and seed (`tests/test_methods.py`).
"""

from __future__ import annotations

import dataclasses
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
    _gather,
    _Member,
    _padded,
    _terms,
    dense_stack,
    optimizer,
    with_learning_rates,
)

NAMES = ("loss", "teacher_loss", "student_loss", "distillation_loss", "accuracy")


def _teacher_terms(params, z, y, w, key, rates, training):
    """The teacher's weighted CE over a batch, and its logits (the student's soft targets)."""
    t, _ = _forward(params, z, rates, key, training)
    return (formula.hard_term(JNP, y, t) * w).sum() / jnp.maximum(w.sum(), 1.0), t


@partial(jax.jit, static_argnames=("rates", "loss"))
def _epoch(params, opt_state, zt, zs, y, idx, w, val_idx, val_w, alpha, key, *, rates,
           loss: Loss):
    """One epoch: a scan over the batches idx (steps, 1, B), weights w; params and opt_state
    are (teacher's, student's stacked as one member). Then both validation terms."""
    teacher_grad = jax.value_and_grad(lambda p, zb, yb, wb, k: _teacher_terms(
        p, zb, yb, wb, k, rates[0], True), has_aux=True)
    student_grad = jax.vmap(jax.value_and_grad(
        lambda p, zb, yb, sb, wb, k: _terms(p, zb, yb, sb, wb, k, alpha, rates[1], loss, True),
        has_aux=True))
    updates = (optimizer().update, jax.vmap(optimizer().update))

    def step(carry, batch):
        (tp, sp), (to, so), key = carry
        i, wb = batch
        key, sub = jax.random.split(key)  # the student's keys as fit_members draws them
        (t_ce, t), tg = teacher_grad(tp, zt[i[0]], y[i[0]], wb[0], jax.random.fold_in(sub, 7))
        (total, (hard, kd, acc)), sg = student_grad(
            sp, _gather(zs, i), y[i], jax.lax.stop_gradient(t)[None], wb,
            jax.random.split(sub, 1))
        tu, to = updates[0](tg, to, tp)
        su, so = updates[1](sg, so, sp)
        rows = wb.sum()
        sums = jnp.stack([t_ce + total[0], t_ce, hard[0], kd[0], acc[0]]) * rows
        return ((optax.apply_updates(tp, tu), optax.apply_updates(sp, su)), (to, so), key), (
            sums, rows)

    (params, opt_state, _), (sums, rows) = jax.lax.scan(step, (params, opt_state, key), (idx, w))
    train = sums.sum(axis=0) / jnp.maximum(rows.sum(), 1.0)
    t_ce, t = _teacher_terms(params[0], zt[val_idx[0]], y[val_idx[0]], val_w[0], None,
                             rates[0], False)
    total, (hard, kd, acc) = jax.vmap(
        lambda p, zk, yk, sk, wk: _terms(p, zk, yk, sk, wk, None, alpha, rates[1], loss, False))(
        params[1], _gather(zs, val_idx), y[val_idx], t[None], val_w)
    # NAMES, then the student's own loss (what its early stopping reads, as fit_members')
    return params, opt_state, train, jnp.stack([t_ce + total[0], t_ce, hard[0], kd[0], acc[0],
                                                total[0]])


def _inputs(stacks, x_teacher, x_student):
    """The fronts' features of each view (the student's stacked as one member) and weights."""
    zt, zs = (np.asarray(front(np.asarray(x, "float32"), training=False))
              for (front, _, _), x in zip(stacks, (x_teacher, x_student)))
    teacher = [tuple(layer.get_weights()) for layer in stacks[0][1]]
    student = [tuple(w[None] for w in layer.get_weights()) for layer in stacks[1][1]]
    return jnp.asarray(zt), jnp.asarray(zs[None]), (teacher, student)


def fit_pair(teacher, student, x_teacher, x_student, y, train, val, settings, *, loss: Loss):
    """Co-train `teacher` (on x_teacher) and `student` (on x_student) on the rows where `train`
    is True, each stopping on its own loss over the rows where `val` is; their Keras weights
    are updated in place. Returns (epochs, seconds, history) as `jax_fit.fit_members`."""
    start = time.perf_counter()
    stacks = [dense_stack(teacher), dense_stack(student)]
    zt, zs, params = _inputs(stacks, x_teacher, x_student)
    rates = (stacks[0][2], stacks[1][2])
    rows, val_rows = np.flatnonzero(train), np.flatnonzero(val)
    val_idx, val_w = (jnp.asarray(a) for a in _padded([val_rows], len(val_rows)))
    steps, batch = -(-len(rows) // settings.batch_size), settings.batch_size
    rng = np.random.default_rng(settings.seed)  # drawn in fit_members' order: keys, then rows
    keys = rng.integers(0, 2**31, size=(settings.epochs, 2), dtype=np.uint32)
    members = [_Member(k, settings.learning_rate, settings.patience) for k in (None, 0)]
    opt_state = (optimizer().init(params[0]), jax.vmap(optimizer().init)(params[1]))
    y_dev, alpha, history = jnp.asarray(np.asarray(y, "int32")), np.float32(loss.alpha), {}
    static, epochs = dataclasses.replace(loss, alpha=0.0), 0
    for epoch in range(settings.epochs):
        idx, w = _padded([rng.permutation(rows)], steps * batch)
        lr = [0.0 if m.stop_training else m.optimizer.learning_rate for m in members]
        params, opt_state, train_stats, val_stats = _epoch(
            params, (with_learning_rates(opt_state[0], lr[0]),
                     with_learning_rates(opt_state[1], lr[1:])), zt, zs, y_dev,
            idx.reshape(1, steps, batch).transpose(1, 0, 2),
            w.reshape(1, steps, batch).transpose(1, 0, 2), val_idx, val_w, alpha, keys[epoch],
            rates=rates, loss=static)
        for prefix, stats in (("", train_stats), ("val_", val_stats)):
            for name, value in zip(NAMES, np.asarray(stats, "float64")):
                history.setdefault(prefix + name, []).append(float(value))
        epochs = epoch + 1
        own = np.asarray(val_stats, "float64")[[1, 5]]  # teacher CE, student's total
        for m, p, value in zip(members, params, own):
            if not m.stop_training:
                m.epoch_end(epoch, p, float(value))
        if all(m.stop_training for m in members):
            break
    for m, p, stack in zip(members, params, stacks):
        weights = m.final_weights(p)
        for i, layer in enumerate(stack[1]):
            layer.set_weights(weights[2 * i:2 * i + 2])
    return epochs, time.perf_counter() - start, history
