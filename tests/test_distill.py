"""Losses against hand computations, the Distiller's own combination of them, the teachers'
training helpers and the out-of-fold soft labels."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.special import log_softmax, softmax

from sdss_distill.core.errors import InputError
from sdss_distill.core.schema import get_view
from sdss_distill.distill import distillers, formula, losses, registry, targets
from sdss_distill.distill import fit as training
from sdss_distill.models import mlp as models

TEACHER = np.array([[4.0, 1.0, -2.0], [0.5, 0.2, 3.0], [-1.0, 2.0, 0.0]], "float32")
STUDENT = np.array([[2.0, 0.5, -1.0], [1.0, 1.0, 1.0], [0.0, 0.3, -0.4]], "float32")
LABELS = np.array([0, 2, 1], "int32")


def hand_soft(temp, kind):
    pt = softmax(TEACHER / temp, axis=1)
    cross = -(pt * log_softmax(STUDENT / temp, axis=1)).sum(1)
    entropy = -(pt * np.log(pt)).sum(1)
    return temp**2 * (cross - entropy if kind == "kl" else cross)


def hand_total(alpha, temp, kind="kl"):
    """(1 - alpha) CE(y, s) + alpha T^2 {KL or CE}(softmax(t/T), softmax(s/T)), row mean."""
    ce = -log_softmax(STUDENT, axis=1)[np.arange(3), LABELS]
    return ((1 - alpha) * ce + alpha * hand_soft(temp, kind)).mean()


@pytest.mark.parametrize("kind", ["kl", "ce"])
@pytest.mark.parametrize("temp", [1.0, 2.0, 7.5])
def test_soft_losses_match_hand_computation(kind, temp):
    loss = losses.soft_loss(kind, temp)
    assert float(loss.compute_loss(TEACHER, STUDENT)) == pytest.approx(
        hand_soft(temp, kind).mean(), rel=1e-5)


def test_kl_and_ce_differ_by_the_teacher_entropy_only():
    kl, ce = losses.soft_loss("kl", 2.0), losses.soft_loss("ce", 2.0)
    s = tf.Variable(STUDENT)
    grads = []
    for loss in (kl, ce):
        with tf.GradientTape() as tape:
            value = loss.compute_loss(TEACHER, s)
        grads.append(tape.gradient(value, s).numpy())
    np.testing.assert_allclose(grads[0], grads[1], atol=1e-6)
    assert float(ce.compute_loss(TEACHER, STUDENT)) > float(kl.compute_loss(TEACHER, STUDENT))


def test_hint_loss_is_mse_of_the_projection():
    hint = losses.FitNetsHint("t", "s", teacher_units=4, student_units=2)
    w, b = np.arange(8, dtype="float32").reshape(2, 4) / 10, np.array([0.1, 0, 0, -0.1], "float32")
    hint.projection.set_weights([w, b])
    teacher = np.array([[1.0, 0.0, 2.0, 0.5], [0.0, 1.0, 0.0, 3.0]], "float32")
    student = np.array([[0.5, -1.0], [2.0, 1.0]], "float32")
    expected = ((teacher - (student @ w + b)) ** 2).mean()
    assert float(hint.compute_loss(teacher, student)) == pytest.approx(expected, rel=1e-5)


def test_unknown_soft_loss_and_bad_temperature():
    with pytest.raises(ValueError, match="unknown soft loss 'mse'; choose one of: kl, ce"):
        losses.soft_loss("mse", 2.0)
    with pytest.raises(ValueError, match="temperature must be > 0, got 0"):
        losses.TemperatureKL(0)


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    teacher = models.build_mlp(get_view("physical"), (8,), rng.random((16, 6), "float32"),
                               name="teacher")
    student = models.build_mlp(get_view("photometric"), (4,), rng.random((16, 5), "float32"),
                               name="student")
    return teacher, student


@pytest.mark.parametrize("alpha, temp, kind", [(0.0, 1.0, "kl"), (0.5, 2.0, "kl"),
                                               (0.7, 3.0, "ce"), (1.0, 4.0, "kl")])
def test_distiller_combines_losses_as_the_formula_says(pair, alpha, temp, kind):
    """The stock Distiller.compute_loss does the combining; its result is the hand formula."""
    d = distillers.OfflineDistiller(pair[1], alpha=alpha, losses=[losses.soft_loss(kind, temp)])
    d.compile()
    got = float(d.compute_loss(x={"student": None, "soft": TEACHER}, y=LABELS, y_pred=STUDENT))
    assert got == pytest.approx(hand_total(alpha, temp, kind), rel=1e-5)
    tf_total = formula.total(tf, LABELS, TEACHER, STUDENT, temperature=temp, alpha=alpha, kind=kind)
    assert float(tf.reduce_mean(tf_total)) == pytest.approx(got, rel=1e-5)


def test_distiller_refuses_sample_weight(pair):
    d = distillers.OfflineDistiller(pair[1], alpha=0.5, losses=[losses.soft_loss("kl", 1.0)])
    d.compile()
    with pytest.raises(ValueError, match="sample_weight is not supported"):
        d.compute_loss(x={"soft": TEACHER}, y=LABELS, y_pred=STUDENT, sample_weight=np.ones(3))


def test_teacher_may_read_other_columns_and_is_frozen(pair):
    teacher, student = pair
    assert teacher.input_shape != student.input_shape
    d = distillers.OnlineDistiller(teacher, student, alpha=0.5, losses=[losses.soft_loss("kl", 1.0)])
    assert d.teacher is teacher and not teacher.trainable
    with pytest.raises(ValueError, match="alpha must be between 0 and 1, got 1.5"):
        distillers.OnlineDistiller(teacher, student, alpha=1.5, losses=[losses.soft_loss("kl", 1.0)])
    teacher.trainable = True


def test_qat_uses_the_same_formula():
    from sdss_distill.export import finetune as qat
    y_true = np.concatenate([LABELS[:, None].astype("float32"), TEACHER], axis=1)
    got = float(tf.reduce_mean(qat.kd_loss(tf, 3.0, 0.7, "ce")(y_true, STUDENT)))
    assert got == pytest.approx(hand_total(0.7, 3.0, "ce"), rel=1e-5)


def test_ensemble_logits_average_tempered_probabilities():
    members = [TEACHER, STUDENT]
    for temp in (1.0, 4.0):
        got = targets.ensemble_logits(members, temp)
        mean_p = (softmax(TEACHER / temp, 1) + softmax(STUDENT / temp, 1)) / 2
        np.testing.assert_allclose(softmax(got / temp, 1), mean_p, rtol=1e-5)


def test_out_of_fold_labels_never_come_from_a_teacher_that_saw_the_row():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 300)
    fold = targets.fold_ids(y, 5, seed=1)
    train, val = targets.fold_masks(fold, y, 5, 0.15, seed=1)
    assert np.bincount(fold).min() >= 59
    for k in range(5):
        assert not (train[:, k] & (fold == k)).any() and not (val[:, k] & (fold == k)).any()
        assert not (train[:, k] & val[:, k]).any()
    logits = rng.normal(size=(300, 5, 3))
    oof = targets.out_of_fold(logits, fold, train, val)
    np.testing.assert_array_equal(oof, logits[np.arange(300), fold])
    train[7, fold[7]] = True
    with pytest.raises(ValueError, match="1 rows would get a soft label from a teacher that "
                                         "trained on them .first: row 7."):
        targets.out_of_fold(logits, fold, train, val)


@pytest.mark.slow
def test_parallel_teachers_learn_only_their_rows():
    """Member 0 sees only rows labelled 0, member 1 only rows labelled 1: each learns its class."""
    rng = np.random.default_rng(0)
    x = rng.normal(18, 1, (600, 5)).astype("float32")
    y = rng.integers(0, 2, 600).astype("int32")
    keras.utils.set_random_seed(0)
    nets = [models.build_mlp(get_view("photometric"), (4,), x, name=f"m{k}") for k in range(2)]
    mask = np.stack([y == 0, y == 1], axis=1)
    training.train_parallel(nets, x, y, mask, mask,
                            training.FitSettings(30, 64, 30, 1e-2))
    assert (models.logits(nets[0], x).argmax(1) == 0).mean() > 0.95
    assert (models.logits(nets[1], x).argmax(1) == 1).mean() > 0.95


def test_cotrainer_loss_is_teacher_ce_plus_distillation(pair):
    teacher, student = pair
    teacher.trainable = True
    ct = distillers.CoTrainer(teacher, student, alpha=0.7, soft_loss=losses.soft_loss("kl", 2.0))
    ct.compile()  # a Distiller: its student loss is set by compile
    rng = np.random.default_rng(1)
    xt, xs = rng.random((3, 6), "float32") + 18, rng.random((3, 5), "float32") + 18
    t = models.logits(teacher, xt)
    s = models.logits(student, xs)
    got = float(ct.compute_loss(x={"teacher": xt, "student": xs}, y=LABELS, y_pred=s))
    ce_t = -log_softmax(t, 1)[np.arange(3), LABELS].mean()
    ce_s = -log_softmax(s, 1)[np.arange(3), LABELS].mean()
    pt = softmax(t / 2, 1)
    kl = 4 * (pt * (np.log(pt) - log_softmax(s / 2, 1))).sum(1).mean()
    assert got == pytest.approx(ce_t + 0.3 * ce_s + 0.7 * kl, rel=1e-4)


def test_registry_lists_choices_for_an_unknown_name():
    assert registry.names()[:2] == ["offline", "crossfit"]
    assert len(registry.names()) == 13
    with pytest.raises(InputError, match="unknown method 'cross-fit'; choose one of: offline, "
                                         "crossfit, online, cotrain, teacher-ensemble, "
                                         "student-ensemble, hints, assistant, subclass, "
                                         "shuffled-z, smoothing, photo-teacher, mix"):
        registry.get("cross-fit")
    assert registry.streaming() == ["offline", "crossfit", "mix"]
    assert all(registry.get(n).summary for n in registry.names())


def test_ensemble_model_averages_probabilities_and_round_trips(pair, tmp_path):
    _, student = pair
    keras.utils.set_random_seed(5)
    other = models.build_mlp(get_view("photometric"), (3,), np.random.default_rng(2).random(
        (16, 5), "float32"), name="other")
    ens = models.ensemble_model([student, other], get_view("photometric"), name="ens")
    x = np.random.default_rng(4).random((7, 5), "float32") + 17
    mean_p = (softmax(models.logits(student, x), 1) + softmax(models.logits(other, x), 1)) / 2
    np.testing.assert_allclose(softmax(models.logits(ens, x), 1), mean_p, rtol=1e-5)
    ens.save(tmp_path / "ens.keras")
    back = models.load(tmp_path / "ens.keras")
    np.testing.assert_allclose(models.logits(back, x), models.logits(ens, x), rtol=1e-6)
    assert [m.name for m in models.ensemble_members(back)] == ["student", "other"]


def test_jax_engine_is_deterministic_and_keeps_the_best_epoch():
    """Two JAX fits from the same weights and seed give identical weights; the weights kept
    are the best epoch's (early stopping restores them), not the last."""
    from sdss_distill.distill import jax_fit
    rng = np.random.default_rng(1)
    x = rng.normal(18, 1, (500, 5)).astype("float32")
    y = (x[:, 0] > 18).astype("int32")
    train = (np.arange(500) < 400)[:, None]
    weights = []
    for _ in range(2):
        keras.utils.set_random_seed(0)
        net = models.build_mlp(get_view("photometric"), (6,), x[:400], name="m")
        epochs, _, history = jax_fit.fit_members([net], x, y, train, ~train,
                                                 training.FitSettings(12, 32, 3, 1e-2))
        weights.append(net.get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(*weights))
    best = int(np.argmin(history["val_loss"]))
    logits = models.logits(net, x[400:])
    ce = -np.log(np.exp(logits - logits.max(1, keepdims=True))[np.arange(100), y[400:]]
                 / np.exp(logits - logits.max(1, keepdims=True)).sum(1))
    assert ce.mean() == pytest.approx(history["val_loss"][best], rel=1e-4)
    assert len(history["val_loss"]) == epochs
