"""Fit plain MLPs in JAX: the fast engine behind `fit.train_teacher`, `train_parallel` and
`distil_offline`.

The models stay Keras (TensorFlow backend, so export, QAT and LiteRT are unchanged): their
fixed front end (SkyFeatures, Normalization) is run once by Keras, the Dense stack's weights
are copied out, trained here with Adam, and copied back. Each epoch is one compiled call
(a `lax.scan` over its batches), and K members (fold teachers, an ensemble) are `vmap`ped
into the same call, each on its own rows, with its own early stopping and learning-rate
schedule. Keras spends most of a tiny model's step on overhead; here a whole default
`train` takes 0.40 of the CPU time it took with Keras fitting every model (scripts/
bench_train.py, lever `engine`). The 28k-parameter fold teachers are now compute-bound
(about 58 GFLOP/s on one core), so only fewer epochs or rows make them faster.

The loss terms are `formula.py`'s, given `jax.numpy` in place of `tf`; early stopping and
the learning-rate schedule follow `keras.callbacks.EarlyStopping(restore_best_weights=True)`
and `ReduceLROnPlateau` (see `fit.early_stopping_callbacks`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from functools import partial
from types import SimpleNamespace

# One XLA thread: the float reduction order, hence the trained models, must not depend on
# the machine's core count (as TF_NUM_INTRAOP_THREADS in sdss_distill/__init__.py). Read
# when JAX starts its CPU backend, so it is set before jax is imported.
if "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                               " intra_op_parallelism_threads=1").strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from sdss_distill.core.errors import check_signals
from sdss_distill.distill import compile_cache, formula  # noqa: E402

compile_cache.enable()  # compiled epochs reused across runs, each entry verified

ADAM = dict(beta_1=0.9, beta_2=0.999, epsilon=1e-7)  # keras.optimizers.Adam's defaults
LR_FACTOR, MIN_LR, LR_MIN_DELTA = 0.5, 1e-4, 1e-4  # as fit.early_stopping_callbacks


def _cross_entropy(labels, logits):
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(log_p, labels[..., None].astype(jnp.int32), axis=-1)[..., 0]


# formula.py's functions take the `tf` module; these are the names they use, in jax.numpy.
JNP = SimpleNamespace(
    nn=SimpleNamespace(log_softmax=jax.nn.log_softmax,
                       sparse_softmax_cross_entropy_with_logits=lambda labels, logits:
                       _cross_entropy(labels, logits)),
    exp=jnp.exp, reduce_sum=jnp.sum, reduce_mean=jnp.mean, square=jnp.square,
    cast=lambda x, dtype: jnp.asarray(x, dtype), int32=jnp.int32)


@dataclass(frozen=True)
class Loss:
    """(1 - alpha) * CE(y, s) + alpha * soft(t, s) at `temperature` (formula.total); alpha = 0
    is plain hard-label training. temperature and kind are compiled in; alpha is not."""

    alpha: float = 0.0
    temperature: float = 1.0
    kind: str = "kl"


def dense_stack(model):
    """(front end, [Dense layers], [dropout rate after each]) of a `build_mlp` model, or None
    when the model is anything else (then Keras fits it)."""
    import keras
    names = [layer.name for layer in model.layers]
    if "normalize" not in names or not isinstance(model, keras.Model):
        return None
    rest = model.layers[names.index("normalize") + 1:]
    dense, rates = [], []
    for layer in rest:
        if isinstance(layer, keras.layers.Dense) and layer.use_bias:
            dense.append(layer)
            rates.append(0.0)
        elif isinstance(layer, keras.layers.Dropout) and dense:
            rates[-1] = float(layer.rate)
        else:
            return None
    activations = [_activation(layer) for layer in dense]
    if not dense or activations[-1] != "linear" or any(a != "relu" for a in activations[:-1]):
        return None
    front = keras.Model(model.inputs[0], model.get_layer("normalize").output)
    return front, dense, tuple(rates)


def _activation(layer) -> str:
    return getattr(layer.activation, "__name__", str(layer.activation))


def supported(models) -> bool:
    stacks = [dense_stack(m) for m in models]
    if any(s is None for s in stacks):
        return False
    shapes = {tuple(tuple(w.shape) for layer in s[1] for w in layer.get_weights()) for s in stacks}
    return len(shapes) == 1 and len({s[2] for s in stacks}) == 1


def _forward(layers, z, rates, key, training):
    h = z
    for i, (w, b) in enumerate(layers):
        h = h @ w + b
        if i < len(layers) - 1:
            h = jax.nn.relu(h)
        if training and rates[i] > 0:
            key, sub = jax.random.split(key)
            keep = jax.random.bernoulli(sub, 1.0 - rates[i], h.shape)
            h = jnp.where(keep, h / (1.0 - rates[i]), 0.0)
    return h


def _terms(layers, z, y, soft, w, key, alpha, rates, loss: Loss, training):
    """One member's weighted (total, (hard, soft, accuracy)) over the rows of a batch."""
    s = _forward(layers, z, rates, key, training)
    n = jnp.maximum(w.sum(), 1.0)
    hard = (formula.hard_term(JNP, y, s) * w).sum() / n
    kd = (formula.soft_term(JNP, soft, s, loss.temperature, loss.kind) * w).sum() / n
    accuracy = ((jnp.argmax(s, axis=-1) == y) * w).sum() / n
    return (1.0 - alpha) * hard + alpha * kd, (hard, kd, accuracy)


def _adam(params, grads, m, v, step, lr):
    """keras.optimizers.Adam's update, with a learning rate per member (lr has shape (K,))."""
    b1, b2, eps = ADAM["beta_1"], ADAM["beta_2"], ADAM["epsilon"]
    step = step + 1
    scale = lr * jnp.sqrt(1 - b2 ** step) / (1 - b1 ** step)
    m = jax.tree.map(lambda m_, g: b1 * m_ + (1 - b1) * g, m, grads)
    v = jax.tree.map(lambda v_, g: b2 * v_ + (1 - b2) * g * g, v, grads)
    params = jax.tree.map(lambda p, m_, v_: p - _per_member(scale, p) * m_ / (jnp.sqrt(v_) + eps),
                          params, m, v)
    return params, m, v, step


def _per_member(values, like):
    return values.reshape((-1,) + (1,) * (like.ndim - 1))


def _gather(z, idx):
    return jax.vmap(lambda zk, ik: zk[ik])(z, idx)


@partial(jax.jit, static_argnames=("rates", "loss"))
def _epoch(state, best_params, best_val, active, z, y, soft, idx, w, val_idx, val_w, lr, alpha,
           key, *, rates, loss: Loss):
    """One epoch in one call: a scan over the batches idx (steps, K, B) with row weights w,
    then the validation loss, and each active member's best weights kept."""
    member_grad = jax.vmap(jax.value_and_grad(
        lambda p, zb, yb, sb, wb, k: _terms(p, zb, yb, sb, wb, k, alpha, rates, loss, True),
        has_aux=True))

    def step(carry, batch):
        params, m, v, t, key = carry
        i, wb = batch
        key, sub = jax.random.split(key)
        (total, (hard, kd, acc)), grads = member_grad(params, _gather(z, i), y[i], soft[i], wb,
                                                      jax.random.split(sub, i.shape[0]))
        params, m, v, t = _adam(params, grads, m, v, t, lr)
        rows = wb.sum(axis=1)
        return (params, m, v, t, key), (total * rows, hard * rows, kd * rows, acc * rows, rows)

    carry, sums = jax.lax.scan(step, (*state, key), (idx, w))
    state = carry[:4]
    total, hard, kd, acc, rows = (s.sum(axis=0) for s in sums)
    rows = jnp.maximum(rows, 1.0)
    train = (total / rows, hard / rows, kd / rows, acc / rows)
    val_total, (val_hard, val_kd, val_acc) = jax.vmap(
        lambda p, zk, yk, sk, wk: _terms(p, zk, yk, sk, wk, None, alpha, rates, loss, False))(
        state[0], _gather(z, val_idx), y[val_idx], soft[val_idx], val_w)
    improved = active & (val_total < best_val)
    best_params = jax.tree.map(lambda b, p: jnp.where(_per_member(improved, p), p, b),
                               best_params, state[0])
    return state, best_params, improved, train, (val_total, val_hard, val_kd, val_acc)


def _padded(rows_of: list[np.ndarray], width: int) -> tuple[np.ndarray, np.ndarray]:
    """(K, width) row indices and 0/1 weights: member k's rows, padded with weight 0."""
    idx = np.zeros((len(rows_of), width), np.int32)
    w = np.zeros((len(rows_of), width), np.float32)
    for k, rows in enumerate(rows_of):
        idx[k, :len(rows)], w[k, :len(rows)] = rows, 1.0
    return idx, w


class _Stopping:
    """Per-member early stopping (best val_loss, patience) and learning-rate cuts on plateaus,
    as Keras' EarlyStopping and ReduceLROnPlateau do it, for K members at once."""

    def __init__(self, k_members: int, settings):
        self.lr = np.full(k_members, settings.learning_rate, np.float32)
        self.best = np.full(k_members, np.inf, np.float32)
        self.lr_best = np.full(k_members, np.inf)
        self.wait = np.zeros(k_members, int)
        self.lr_wait = np.zeros(k_members, int)
        self.active = np.ones(k_members, bool)
        self.patience, self.lr_patience = settings.patience, max(1, settings.patience // 3)

    def update(self, improved: np.ndarray, val_loss: np.ndarray) -> None:
        self.best = np.where(improved, val_loss, self.best).astype("float32")
        self.wait = np.where(improved, 0, self.wait + 1)
        lr_improved = val_loss < self.lr_best - LR_MIN_DELTA
        self.lr_best = np.where(lr_improved, val_loss, self.lr_best)
        self.lr_wait = np.where(lr_improved, 0, self.lr_wait + 1)
        cut = self.active & (self.lr_wait >= self.lr_patience) & (self.lr > MIN_LR)
        self.lr = np.where(cut, np.maximum(self.lr * LR_FACTOR, MIN_LR), self.lr).astype("float32")
        self.lr_wait = np.where(cut, 0, self.lr_wait)
        self.active &= self.wait < self.patience


def _stacked_inputs(models, x, y, soft):
    """The members' Keras pieces, their fronts' features of x, stacked weights and labels."""
    stacks = [dense_stack(m) for m in models]
    x = np.asarray(x, "float32")
    z = np.stack([np.asarray(front(x, training=False)) for front, _, _ in stacks])
    params = [tuple(np.stack([s[1][i].get_weights()[j] for s in stacks]) for j in (0, 1))
              for i in range(len(stacks[0][1]))]
    classes = params[-1][1].shape[-1]
    soft = np.zeros((len(x), classes), "float32") if soft is None else soft
    z, y_dev, soft_dev = (jnp.asarray(a) for a in (z, np.asarray(y, "int32"),
                                                   np.asarray(soft, "float32")))
    return stacks, params, z, y_dev, soft_dev


def fit_members(models, x: np.ndarray, y: np.ndarray, train_mask: np.ndarray,
                val_mask: np.ndarray, settings, *, loss: Loss = Loss(), soft=None, say=None):
    """Train K `build_mlp` models at once, member k on the rows of `train_mask[:, k]`, early
    stopping on `val_mask[:, k]`; their Keras weights are updated in place.

    Returns (epochs run, seconds, history): history has the members' summed `loss`,
    `val_loss` and mean `accuracy`, `val_accuracy` per epoch, as Keras logged them, plus
    `student_loss` and `distillation_loss` when alpha > 0.
    """
    start = time.perf_counter()
    k_members = len(models)
    stacks, params, z, y_dev, soft_dev = _stacked_inputs(models, x, y, soft)
    rates = stacks[0][2]
    train_rows = [np.flatnonzero(train_mask[:, k]) for k in range(k_members)]
    val_idx, val_w = (jnp.asarray(a) for a in _padded(
        [np.flatnonzero(val_mask[:, k]) for k in range(k_members)],
        int(val_mask.sum(axis=0).max())))
    batch = settings.batch_size
    steps = -(-max(len(r) for r in train_rows) // batch)
    rng = np.random.default_rng(settings.seed)
    keys = rng.integers(0, 2**31, size=(settings.epochs, 2), dtype=np.uint32)
    zeros = [tuple(np.zeros_like(a) for a in layer) for layer in params]
    state = (params, zeros, [tuple(np.zeros_like(a) for a in layer) for layer in params],
             np.zeros((), np.int32))
    best_params, alpha, stop = params, np.float32(loss.alpha), _Stopping(k_members, settings)
    history: dict[str, list[float]] = {}
    epochs = 0
    static = Loss(0.0, loss.temperature, loss.kind)  # alpha is an argument: one compile for all
    for epoch in range(settings.epochs):
        check_signals()  # a SIGINT/SIGTERM whose exception was dropped stops here, per epoch
        idx, w = _padded([rng.permutation(rows) for rows in train_rows], steps * batch)
        idx = idx.reshape(k_members, steps, batch).transpose(1, 0, 2)
        w = w.reshape(k_members, steps, batch).transpose(1, 0, 2)
        state, best_params, improved, train_stats, val_stats = _epoch(
            state, best_params, stop.best, stop.active, z, y_dev, soft_dev, idx, w, val_idx,
            val_w, np.where(stop.active, stop.lr, 0.0).astype("float32"), alpha, keys[epoch],
            rates=rates, loss=static)
        val_stats = [np.asarray(v, "float64") for v in val_stats]
        epochs = epoch + 1
        _log(history, "", [np.asarray(v, "float64") for v in train_stats], loss)
        _log(history, "val_", val_stats, loss)
        stop.update(np.asarray(improved), val_stats[0])
        if say:
            say(f"epoch {epochs}: loss {history['loss'][-1]:.4f}, "
                f"val_loss {history['val_loss'][-1]:.4f}")
        if not stop.active.any():
            break
    for i in range(len(params)):
        weights = [np.asarray(a) for a in best_params[i]]
        for k, (_, dense, _) in enumerate(stacks):
            dense[i].set_weights([weights[0][k], weights[1][k]])
    return epochs, time.perf_counter() - start, history


def _log(history: dict, prefix: str, stats, loss: Loss) -> None:
    total, hard, kd, acc = stats
    history.setdefault(f"{prefix}loss", []).append(float(total.sum()))
    history.setdefault(f"{prefix}accuracy", []).append(float(acc.mean()))
    if loss.alpha > 0:
        history.setdefault(f"{prefix}student_loss", []).append(float(hard.sum()))
        history.setdefault(f"{prefix}distillation_loss", []).append(float(kd.sum()))
