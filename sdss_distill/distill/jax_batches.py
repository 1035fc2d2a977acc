"""The JAX engine on batches: the same members, optimizer, loss and stopping callbacks as
`jax_fit.fit_members`, over chunks of rows read one at a time (a table larger than memory).

`fit_members` holds every row on the device and permutes indices; here each epoch asks the
caller for an iterable of chunks (x, y, soft or None, train mask (rows, K)): member k trains
on the rows of its mask column. Rows pass through a bounded per-member shuffle buffer
(seeded per epoch: `data.stream.SHUFFLE_ROWS` rows, about 1.5x that held), leave it in whole
batches, and every `STEPS` batches are one compiled call (a `lax.scan`, the members
`vmap`ped). A member with no rows in a batch skips that step (its weights and Adam state do
not move), so padding never changes a member. The early-stopping rows are held in memory, as
they are a bounded sample; each member's callbacks (`jax_fit._Member`) see its own val_loss.

Numbers on arrays are `fit_members`'s, unchanged: this is a second entry, not a rewrite.
"""

from __future__ import annotations

import dataclasses
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sdss_distill.data.stream import SHUFFLE_ROWS
from sdss_distill.distill.jax_fit import (
    Loss,
    _log,
    _Member,
    _set_weights,
    _stacked_inputs,
    _terms,
    member_step,
    optimizer,
    with_learning_rates,
)

STEPS = 64  # batches per compiled call (the last call of an epoch is padded to a power of 2)


def _keep(active, new, old):
    """new where the member is active (leading axis K), else old: a skipped step."""
    return jax.tree.map(lambda n, o: jnp.where(active.reshape((-1,) + (1,) * (n.ndim - 1)), n, o),
                        new, old)


@partial(jax.jit, static_argnames=("rates", "loss"))
def _steps(params, opt_state, z, y, soft, w, alpha, key, *, rates, loss: Loss):
    """A scan over batches z (S, K, B, F), y and w (S, K, B), soft (S, K, B, C): each member's
    Adam step on its own batch; returns the summed (total, hard, kd, accuracy, rows) terms."""
    member_grad, update = member_step(alpha, rates, loss)

    def step(carry, batch):
        params, opt_state, key = carry
        zb, yb, sb, wb = batch
        key, sub = jax.random.split(key)
        (total, (hard, kd, acc)), grads = member_grad(params, zb, yb, sb, wb,
                                                      jax.random.split(sub, zb.shape[0]))
        updates, new_state = update(grads, opt_state, params)
        rows = wb.sum(axis=1)
        active = rows > 0
        params = _keep(active, optax.apply_updates(params, updates), params)
        opt_state = _keep(active, new_state, opt_state)
        return (params, opt_state, key), (total * rows, hard * rows, kd * rows, acc * rows, rows)

    (params, opt_state, key), sums = jax.lax.scan(step, (params, opt_state, key), (z, y, soft, w))
    return params, opt_state, key, tuple(s.sum(axis=0) for s in sums)


@partial(jax.jit, static_argnames=("rates", "loss"))
def _validate(params, z, y, soft, w, alpha, *, rates, loss: Loss):
    """Each member's (total, hard, kd, accuracy) on its early-stopping rows (weights w (K, n))."""
    total, (hard, kd, acc) = jax.vmap(
        lambda p, zk, wk: _terms(p, zk, y, soft, wk, None, alpha, rates, loss, False))(params, z, w)
    return total, hard, kd, acc


class _Pools:
    """Per-member shuffle buffers: rows in, whole shuffled batches out (a bounded memory)."""

    def __init__(self, k_members: int, batch: int, buffer_rows: int, rng):
        self.k, self.batch, self.buffer, self.rng = k_members, batch, buffer_rows, rng
        self.pool = [[] for _ in range(k_members)]  # lists of (z, y, soft) arrays
        self.ready = [[] for _ in range(k_members)]  # lists of whole batches (z, y, soft, w)

    def add(self, k: int, z, y, soft) -> None:
        self.pool[k].append((z, y, soft))
        if sum(len(p[1]) for p in self.pool[k]) >= self.buffer:
            self._emit(k, final=False)

    def _emit(self, k: int, final: bool) -> None:
        if not self.pool[k]:
            return
        z, y, soft = (np.concatenate(a) for a in zip(*self.pool[k]))
        perm = self.rng.permutation(len(y))
        z, y, soft = z[perm], y[perm], soft[perm]
        stop = len(y) if final else len(y) // 2 // self.batch * self.batch
        for a in range(0, stop, self.batch):
            b = min(a + self.batch, stop)
            w = np.zeros(self.batch, "float32")
            w[:b - a] = 1.0
            pad = self.batch - (b - a)
            self.ready[k].append((*(np.concatenate([v[a:b], np.zeros((pad, *v.shape[1:]), v.dtype)])
                                    for v in (z, y, soft)), w))
        self.pool[k] = [(z[stop:], y[stop:], soft[stop:])] if stop < len(y) else []

    def take(self, final: bool = False):
        """Stacked (S, K, B, ...) batches once every member has STEPS ready (all at the end)."""
        if final:
            for k in range(self.k):
                self._emit(k, final=True)
        have = max(len(r) for r in self.ready) if final else min(len(r) for r in self.ready)
        if have == 0 or (not final and have < STEPS):
            return None
        steps = min(STEPS, 1 << int(np.ceil(np.log2(have)))) if final else STEPS
        empty = tuple(np.zeros_like(a) for a in next(r[0] for r in self.ready if r))
        out = []
        for k in range(self.k):
            got, self.ready[k] = self.ready[k][:steps], self.ready[k][steps:]
            out.append(got + [empty] * (steps - len(got)))
        return [np.stack([np.stack([b[i] for b in member]) for member in out], axis=1)
                for i in range(4)]


def _epoch_pass(chunks, stacks, params, opt_state, key, classes, pools: _Pools, step):
    """One epoch over the chunks: each member's rows through its fronts into its shuffle
    buffer, whole batches stepped as they are ready. Returns (params, opt_state, summed
    terms, rows seen)."""
    sums, rows_seen = None, 0

    def run(params, opt_state, key, sums, batches):
        params, opt_state, key, got = step(params, opt_state, key, batches)
        return params, opt_state, key, got if sums is None else tuple(
            a + b for a, b in zip(sums, got))

    for x, y, soft, mask in chunks:
        x = np.asarray(x, "float32")
        soft = np.zeros((len(x), classes), "float32") if soft is None else soft
        for k, (front, _, _) in enumerate(stacks):
            rows = np.flatnonzero(mask[:, k])
            if len(rows):
                pools.add(k, np.asarray(front(x[rows], training=False)),
                          np.asarray(y[rows], "int32"), np.asarray(soft[rows], "float32"))
                rows_seen += len(rows)
        while (batches := pools.take()) is not None:
            params, opt_state, key, sums = run(params, opt_state, key, sums, batches)
    while (batches := pools.take(final=True)) is not None:
        params, opt_state, key, sums = run(params, opt_state, key, sums, batches)
    if sums is None:
        raise ValueError("no training rows in the stream: every member's mask is empty")
    return params, opt_state, sums, rows_seen


def fit_members_batches(models, epoch_chunks, validation, settings, *, loss: Loss | None = None,
                        say=None, buffer_rows: int = SHUFFLE_ROWS):
    """Train K `build_mlp` models over streamed chunks; their Keras weights updated in place.

    `epoch_chunks(epoch)`: an iterable of (x, y, soft or None, train_mask (rows, K) bool) for
    that epoch (the caller decides the chunk order, seeded per epoch). `validation`: (x, y,
    soft or None, val_mask (rows, K)) in memory. Returns (epochs, seconds, history) as
    `jax_fit.fit_members` does.
    """
    start = time.perf_counter()
    loss = loss or Loss()
    x_val, y_val, soft_val, val_mask = validation
    stacks, params, z_val, y_dev, soft_dev = _stacked_inputs(models, x_val, y_val, soft_val)
    k_members, rates = len(models), stacks[0][2]
    classes = soft_dev.shape[-1]
    val_w = jnp.asarray(np.asarray(val_mask, "float32").T)
    members = [_Member(k, settings.learning_rate, settings.patience) for k in range(k_members)]
    opt_state = jax.vmap(optimizer().init)(params)
    history: dict[str, list[float]] = {}
    alpha, static = np.float32(loss.alpha), dataclasses.replace(loss, alpha=0.0)
    epochs = 0
    for epoch in range(settings.epochs):
        began = time.perf_counter()
        rng = np.random.default_rng([settings.seed, epoch])
        key = jax.random.PRNGKey(int(rng.integers(0, 2**31)))
        lr = [0.0 if m.stop_training else m.optimizer.learning_rate for m in members]
        opt_state = with_learning_rates(opt_state, lr)
        params, opt_state, sums, rows_seen = _epoch_pass(
            epoch_chunks(epoch), stacks, params, opt_state, key, classes,
            _Pools(k_members, settings.batch_size, buffer_rows, rng),
            lambda p, o, k, b: _steps(p, o, *b, alpha, k, rates=rates, loss=static))
        n = jnp.maximum(sums[4], 1.0)
        train_stats = [np.asarray(s / n, "float64") for s in sums[:4]]
        val_stats = [np.asarray(v, "float64") for v in _validate(
            params, z_val, y_dev, soft_dev, val_w, alpha, rates=rates, loss=static)]
        epochs = epoch + 1
        _log(history, "", train_stats, loss)
        _log(history, "val_", val_stats, loss)
        for m in members:
            if not m.stop_training:
                m.epoch_end(epoch, params, float(val_stats[0][m.k]))
        if say:
            s = time.perf_counter() - began
            say(f"epoch {epochs}/{settings.epochs}: {rows_seen:,} rows in {s:.1f} s "
                f"({rows_seen / max(s, 1e-9):,.0f} rows/s), loss {history['loss'][-1]:.4f}, "
                f"val_loss {history['val_loss'][-1]:.4f}")
        if all(m.stop_training for m in members):
            break
    _set_weights(stacks, [m.final_weights(params) for m in members])
    return epochs, time.perf_counter() - start, history
