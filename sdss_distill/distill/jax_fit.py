"""Fit plain MLPs in JAX: the one engine, behind `fit.train_teacher`, `train_parallel`,
`fit.distil` (every KD student, handed over with its loss by its `distillers` Distiller) and,
through `jax_cotrain`, `fit.cotrain_pair`.

The models stay Keras (TensorFlow backend, so export, QAT and LiteRT are unchanged): their
fixed front end (SkyFeatures, Normalization) is run once by Keras, the Dense stack's weights
are copied out, trained here with Adam, and copied back. Each epoch is one compiled call
(a `lax.scan` over its batches), and K members (fold teachers, an ensemble) are `vmap`ped
into the same call, each on its own rows, with its own early stopping and learning-rate
schedule: Keras's own callbacks (`stopping.early_stopping_callbacks`, one copy per member,
through `_Member`), and Adam from optax. Keras spends most of a tiny model's step on
overhead; here a whole default `train` takes about a third of the CPU time Keras's own fit on its
JAX backend takes (scripts/bench_engine.py). The 28k-parameter fold teachers are now compute-bound
(about 58 GFLOP/s on one core), so only fewer epochs or rows make them faster.

The loss terms are `formula.py`'s, given `jax.numpy` in place of `tf`. Adam is optax's
(`optax.adam` with Keras's defaults; optax adds epsilon to the bias-corrected second moment,
Keras to the raw one, a difference of order 1e-7 in the step).
"""

from __future__ import annotations

import dataclasses
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
import keras  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax.scipy.special import logsumexp  # noqa: E402

from sdss_distill.core.zphot import HEAD  # noqa: E402
from sdss_distill.distill import compile_cache, formula  # noqa: E402
from sdss_distill.distill.stopping import early_stopping_callbacks  # noqa: E402

compile_cache.enable()  # compiled epochs reused across runs, each entry verified

ADAM = dict(b1=0.9, b2=0.999, eps=1e-7)  # keras.optimizers.Adam's defaults


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
    per_class: int = 0
    """> 0: the model emits per_class subclass logits per class (subclass distillation); the
    hard term and accuracy are on the class logits (models.mlp.SubclassSum), the soft term on
    the subclasses."""
    hint_layer: int = -1
    """>= 0: FitNets hints on the output of the student's Dense layer of that index: the last
    entry of the weights is then a trainable projection (w, b), the soft targets' columns after
    the logits are the teacher's hidden features, and the soft term gains hint_weight * MSE
    (formula.hint_term), as `HintDistiller` weighs them."""
    hint_weight: float = 0.0
    z_weight: float = 0.0
    """> 0: a redshift head (models.mlp `z_head`): the last entry of the weights is the head's
    (w, b) on the last hidden layer's output, the last column of the soft targets is log(1 + z)
    (core.zphot.target), and the total gains z_weight * `z_term` (the class terms unchanged)."""

    def __post_init__(self):
        if self.z_weight > 0 and self.hint_layer >= 0:
            raise ValueError("a redshift head (z_weight > 0) and FitNets hints (hint_layer >= 0) "
                             "cannot train together: each uses the last entry of the weights")


def z_term(target, predicted):
    """Per-row regression term of the redshift head: Huber loss (delta `Z_DELTA`) on log(1 + z),
    quadratic near the target, linear beyond, so catastrophic QSO errors do not dominate."""
    a = jnp.abs(predicted - target)
    return jnp.where(a <= Z_DELTA, 0.5 * a * a, Z_DELTA * (a - 0.5 * Z_DELTA))


Z_DELTA = 0.1
"""Huber threshold on log(1 + z) error: about 0.1 (1 + z), near the 0.15 outlier line."""


def dense_stack(model):
    """(front end, [Dense layers], [dropout rate after each]) of a `build_mlp` model, or None
    when the model is anything else (then Keras fits it)."""
    names = [layer.name for layer in model.layers]
    if "normalize" not in names or not isinstance(model, keras.Model):
        return None
    rest = model.layers[names.index("normalize") + 1:]
    dense, rates = [], []
    for layer in rest:
        if layer.name == HEAD:  # the redshift head: fitted through Loss.z_weight
            continue
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


def _forward(layers, z, rates, key, training, keep: int = -1):
    """(logits, output of Dense layer `keep` (before its dropout), or None)."""
    h, kept = z, None
    for i, (w, b) in enumerate(layers):
        h = h @ w + b
        if i < len(layers) - 1:
            h = jax.nn.relu(h)
        if i == keep:
            kept = h
        if training and rates[i] > 0:
            key, sub = jax.random.split(key)
            mask = jax.random.bernoulli(sub, 1.0 - rates[i], h.shape)
            h = jnp.where(mask, h / (1.0 - rates[i]), 0.0)
    return h, kept


def class_logits(s, per_class: int):
    """Subclass logits -> log of each class's summed subclass probability (as SubclassSum)."""
    if not per_class:
        return s
    log_p = jax.nn.log_softmax(s, axis=-1)
    return logsumexp(log_p.reshape(*s.shape[:-1], -1, per_class), axis=-1)


def _terms(layers, z, y, soft, w, key, alpha, rates, loss: Loss, training):
    """One member's weighted (total, (hard, soft, accuracy)) over the rows of a batch."""
    hinted, z_head = loss.hint_layer >= 0, loss.z_weight > 0
    core = layers[:-1] if hinted or z_head else layers
    s, kept = _forward(core, z, rates, key, training,
                       len(core) - 2 if z_head else loss.hint_layer)
    c = class_logits(s, loss.per_class)
    n = jnp.maximum(w.sum(), 1.0)
    hard = (formula.hard_term(JNP, y, c) * w).sum() / n
    reg = 0.0
    if z_head:  # beside the class terms, which it leaves unchanged
        head_w, head_b = layers[-1]
        reg = loss.z_weight * (z_term(soft[:, -1], (kept @ head_w + head_b)[:, 0]) * w).sum() / n
    per_row = formula.soft_term(JNP, soft[:, :s.shape[-1]], s, loss.temperature, loss.kind)
    if hinted:
        projection_w, projection_b = layers[-1]
        per_row = per_row + loss.hint_weight * formula.hint_term(
            JNP, soft[:, s.shape[-1]:], kept @ projection_w + projection_b)
    kd = (per_row * w).sum() / n
    accuracy = ((jnp.argmax(c, axis=-1) == y) * w).sum() / n
    # the redshift head is privileged information as the soft labels are: under alpha too
    return (1.0 - alpha) * hard + alpha * (kd + reg), (hard, kd, accuracy)


def member_step(alpha, rates, loss: Loss):
    """(each member's (total, terms) and gradients on its own batch, the members' Adam update),
    vmapped over members: the training step of this engine and of jax_batches."""
    member_grad = jax.vmap(jax.value_and_grad(
        lambda p, zb, yb, sb, wb, k: _terms(p, zb, yb, sb, wb, k, alpha, rates, loss, True),
        has_aux=True))
    return member_grad, jax.vmap(optimizer().update)


def optimizer():
    """Adam with the learning rate held in its state, so each member's can be set per epoch."""
    return optax.inject_hyperparams(optax.adam)(learning_rate=0.0, **ADAM)


def with_learning_rates(opt_state, lr):
    """The members' optimizer state with learning rates `lr` (shape (K,)); 0 freezes one."""
    return opt_state._replace(hyperparams={**opt_state.hyperparams,
                                           "learning_rate": jnp.asarray(lr, jnp.float32)})


def _gather(z, idx):
    return jax.vmap(lambda zk, ik: zk[ik])(z, idx)


@partial(jax.jit, static_argnames=("rates", "loss"))
def _epoch(params, opt_state, z, y, soft, idx, w, val_idx, val_w, alpha, key, *, rates,
           loss: Loss):
    """One epoch in one call: a scan over the batches idx (steps, K, B) with row weights w,
    each member's Adam step (optax, vmapped), then the members' validation terms."""
    member_grad, update = member_step(alpha, rates, loss)

    def step(carry, batch):
        params, opt_state, key = carry
        i, wb = batch
        key, sub = jax.random.split(key)
        (total, (hard, kd, acc)), grads = member_grad(params, _gather(z, i), y[i], soft[i], wb,
                                                      jax.random.split(sub, i.shape[0]))
        updates, opt_state = update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        rows = wb.sum(axis=1)
        return (params, opt_state, key), (total * rows, hard * rows, kd * rows, acc * rows, rows)

    (params, opt_state, _), sums = jax.lax.scan(step, (params, opt_state, key), (idx, w))
    total, hard, kd, acc, rows = (s.sum(axis=0) for s in sums)
    rows = jnp.maximum(rows, 1.0)
    train = (total / rows, hard / rows, kd / rows, acc / rows)
    val_total, (val_hard, val_kd, val_acc) = jax.vmap(
        lambda p, zk, yk, sk, wk: _terms(p, zk, yk, sk, wk, None, alpha, rates, loss, False))(
        params, _gather(z, val_idx), y[val_idx], soft[val_idx], val_w)
    return params, opt_state, train, (val_total, val_hard, val_kd, val_acc)


def _padded(rows_of: list[np.ndarray], width: int) -> tuple[np.ndarray, np.ndarray]:
    """(K, width) row indices and 0/1 weights: member k's rows, padded with weight 0."""
    idx = np.zeros((len(rows_of), width), np.int32)
    w = np.zeros((len(rows_of), width), np.float32)
    for k, rows in enumerate(rows_of):
        idx[k, :len(rows)], w[k, :len(rows)] = rows, 1.0
    return idx, w


class _Member:
    """Member k of the stacked weights, as the model Keras's callbacks see: `get_weights` /
    `set_weights` (EarlyStopping keeps and restores the best epoch's), `optimizer.learning_rate`
    (ReduceLROnPlateau cuts it) and `stop_training`."""

    def __init__(self, k: int, learning_rate: float, patience: int):
        self.k, self.metrics, self.stop_training = k, [], False
        self.optimizer = SimpleNamespace(learning_rate=float(learning_rate))
        self.params = None  # the stacked weights (all members) at the epoch's end, on device
        self.restored: list[np.ndarray] | None = None
        self.callbacks = early_stopping_callbacks(patience)
        for callback in self.callbacks:
            callback.set_model(self)
            callback.on_train_begin()

    def get_weights(self) -> list[np.ndarray]:
        """This member's weights, copied to the host (only when EarlyStopping keeps them);
        k = None: the weights are one model's, not stacked."""
        return [np.array(a if self.k is None else a[self.k])
                for layer in jax.device_get(self.params) for a in layer]

    def set_weights(self, weights) -> None:
        self.restored = list(weights)

    def epoch_end(self, epoch: int, params, val_loss: float) -> None:
        """Run the callbacks on this epoch (`params`: every member's weights after it)."""
        self.params = params
        for callback in self.callbacks:
            callback.on_epoch_end(epoch, {"val_loss": val_loss})

    def final_weights(self, params) -> list[np.ndarray]:
        """The weights the callbacks leave at the end of training (the best epoch's)."""
        self.params = params
        for callback in self.callbacks:
            callback.on_train_end()
        return self.restored if self.restored is not None else self.get_weights()


def _stacked_inputs(models, x, y, soft):
    """The members' Keras pieces, their fronts' features of x, stacked weights and labels."""
    stacks = [dense_stack(m) for m in models]
    x = np.asarray(x, "float32")
    z = np.stack([np.asarray(front(x, training=False)) for front, _, _ in stacks])
    params = [tuple(np.stack([s[1][i].get_weights()[j] for s in stacks]) for j in (0, 1))
              for i in range(len(stacks[0][1]))]
    outputs = params[-1][1].shape[-1]  # the logits (soft may carry hint features after them)
    soft = np.zeros((len(x), outputs), "float32") if soft is None else soft
    z, y_dev, soft_dev = (jnp.asarray(a) for a in (z, np.asarray(y, "int32"),
                                                   np.asarray(soft, "float32")))
    return stacks, params, z, y_dev, soft_dev


def fit_members(models, x: np.ndarray, y: np.ndarray, train_mask: np.ndarray,
                val_mask: np.ndarray, settings, *, loss: Loss = Loss(), soft=None, say=None,
                projection=None):
    """Train K `build_mlp` models at once, member k on the rows of `train_mask[:, k]`, early
    stopping on `val_mask[:, k]`; their Keras weights are updated in place.

    `projection`: the Keras Dense layer of a FitNets hint (`loss.hint_layer`), one member
    only; trained with the member and its weights updated in place too.

    Returns (epochs run, seconds, history): history has the members' summed `loss`,
    `val_loss` and mean `accuracy`, `val_accuracy` per epoch, as Keras logged them, plus
    `student_loss` and `distillation_loss` when alpha > 0; with several members, each one's
    `loss_k`, `accuracy_k`, `val_loss_k`, `val_accuracy_k` as well.
    """
    start = time.perf_counter()
    k_members = len(models)
    stacks, params, z, y_dev, soft_dev = _stacked_inputs(models, x, y, soft)
    if projection is not None:
        params.append(tuple(a[None] for a in projection.get_weights()))
    rates = stacks[0][2]
    train_rows = [np.flatnonzero(train_mask[:, k]) for k in range(k_members)]
    val_idx, val_w = (jnp.asarray(a) for a in _padded(
        [np.flatnonzero(val_mask[:, k]) for k in range(k_members)],
        int(val_mask.sum(axis=0).max())))
    batch = settings.batch_size
    steps = -(-max(len(r) for r in train_rows) // batch)
    rng = np.random.default_rng(settings.seed)
    keys = rng.integers(0, 2**31, size=(settings.epochs, 2), dtype=np.uint32)
    members = [_Member(k, settings.learning_rate, settings.patience) for k in range(k_members)]
    opt_state = jax.vmap(optimizer().init)(params)
    history: dict[str, list[float]] = {}
    epochs, alpha = 0, np.float32(loss.alpha)
    # alpha is an argument: one compile for all
    static = dataclasses.replace(loss, alpha=0.0)
    for epoch in range(settings.epochs):
        idx, w = _padded([rng.permutation(rows) for rows in train_rows], steps * batch)
        idx = idx.reshape(k_members, steps, batch).transpose(1, 0, 2)
        w = w.reshape(k_members, steps, batch).transpose(1, 0, 2)
        lr = [0.0 if m.stop_training else m.optimizer.learning_rate for m in members]
        params, opt_state, train_stats, val_stats = _epoch(
            params, with_learning_rates(opt_state, lr), z, y_dev, soft_dev, idx, w, val_idx,
            val_w, alpha, keys[epoch], rates=rates, loss=static)
        val_stats = [np.asarray(v, "float64") for v in val_stats]
        epochs = epoch + 1
        _log(history, "", [np.asarray(v, "float64") for v in train_stats], loss)
        _log(history, "val_", val_stats, loss)
        for m in members:
            if not m.stop_training:
                m.epoch_end(epoch, params, float(val_stats[0][m.k]))
        if say:
            say(f"epoch {epochs}: loss {history['loss'][-1]:.4f}, "
                f"val_loss {history['val_loss'][-1]:.4f}")
        if all(m.stop_training for m in members):
            break
    final = [m.final_weights(params) for m in members]
    _set_weights(stacks, final)
    if projection is not None:
        projection.set_weights(final[0][-2:])
    return epochs, time.perf_counter() - start, history


def _set_weights(stacks, member_weights) -> None:
    """Member k's flat [w0, b0, w1, b1, ...] into its Keras Dense layers."""
    for (_, dense, _), weights in zip(stacks, member_weights):
        for i, layer in enumerate(dense):
            layer.set_weights([weights[2 * i], weights[2 * i + 1]])


def _log(history: dict, prefix: str, stats, loss: Loss) -> None:
    total, hard, kd, acc = stats
    history.setdefault(f"{prefix}loss", []).append(float(total.sum()))
    history.setdefault(f"{prefix}accuracy", []).append(float(acc.mean()))
    if len(total) > 1:  # each member's own curve too (fold teachers: runs.figures draws each)
        for k in range(len(total)):
            history.setdefault(f"{prefix}loss_{k}", []).append(float(total[k]))
            history.setdefault(f"{prefix}accuracy_{k}", []).append(float(acc[k]))
    if loss.alpha > 0:
        history.setdefault(f"{prefix}student_loss", []).append(float(hard.sum()))
        history.setdefault(f"{prefix}distillation_loss", []).append(float(kd.sum()))
