"""Proof that the configured loss settings reach the loss the JAX engine trains on.

The engine's own code path (`distillers.distil_offline` -> `OfflineDistiller.train` ->
`fit.distil` -> `jax_fit.fit_members`, the path of `Workspace.student`) is run with a
learning rate of 0, so the weights stay at their initial values and the validation terms it
logs after one epoch are the loss of a known model: they are compared with the terms computed
here by hand in numpy (temperature not 1, alpha not 0 or 1, both soft losses).
`scripts/mutation_check.py` breaks these on purpose and shows which test fails for each mutant.
"""

import dataclasses

import keras
import numpy as np
import pytest
from scipy.special import log_softmax, softmax

from sdss_distill.core.schema import get_view
from sdss_distill.distill import jax_fit
from sdss_distill.distill.distillers import HintDistiller, distil_offline
from sdss_distill.distill.fit import FitSettings
from sdss_distill.distill.losses import soft_loss
from sdss_distill.models import mlp as models

ROWS, VAL = 300, 100


def _data():
    rng = np.random.default_rng(3)
    x = rng.normal(18, 1, (ROWS + VAL, 5)).astype("float32")
    y = rng.integers(0, 3, ROWS + VAL).astype("int32")
    soft = rng.normal(0, 2, (ROWS + VAL, 3)).astype("float32")
    return x, y, soft


def hand_terms(logits, y, soft, temperature, kind):
    """Row means of CE(y, s) and T^2 {KL, CE}(softmax(t/T), softmax(s/T)), in numpy."""
    hard = -log_softmax(logits, axis=1)[np.arange(len(y)), y]
    p_t = softmax(soft / temperature, axis=1)
    cross = -(p_t * log_softmax(logits / temperature, axis=1)).sum(1)
    entropy = -(p_t * np.log(p_t)).sum(1)
    kd = temperature**2 * (cross - entropy if kind == "kl" else cross)
    return hard.mean(), kd.mean()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["kl", "ce"])
@pytest.mark.parametrize("alpha, temperature", [(0.3, 2.5), (0.7, 4.0)])
def test_engine_trains_on_the_configured_loss(kind, alpha, temperature):
    """The loss the engine computes (logged as val_loss, val_student_loss and
    val_distillation_loss) is (1 - alpha) CE + alpha T^2 soft, with this T, alpha and kind."""
    x, y, soft = _data()
    keras.utils.set_random_seed(0)
    net = models.build_mlp(get_view("photometric"), (8,), x[:ROWS], name="s")
    expected = hand_terms(models.logits(net, x[ROWS:]), y[ROWS:], soft[ROWS:], temperature, kind)
    fitted = distil_offline(net, x[:ROWS], y[:ROWS], soft[:ROWS],
                            (x[ROWS:], y[ROWS:], soft[ROWS:]), FitSettings(1, 64, 5, 0.0),
                            alpha=alpha, loss=soft_loss(kind, temperature))
    h = fitted.history
    assert h["val_student_loss"][0] == pytest.approx(expected[0], rel=1e-4)
    assert h["val_distillation_loss"][0] == pytest.approx(expected[1], rel=1e-4)
    assert h["val_loss"][0] == pytest.approx((1 - alpha) * expected[0] + alpha * expected[1],
                                             rel=1e-4)


@pytest.mark.slow
def test_engine_adds_the_hint_term_as_configured():
    """FitNets hints through `HintDistiller`: the engine's soft term is T^2 KL + weight *
    MSE(teacher's dense_0 features, projection of the student's dense_0 output), by hand."""
    from sdss_distill.distill.losses import FitNetsHint
    x, y, _ = _data()
    keras.utils.set_random_seed(0)
    teacher = models.build_mlp(get_view("photometric"), (4, 6), x[:ROWS], name="t")
    net = models.build_mlp(get_view("photometric"), (8,), x[:ROWS], name="s")
    hint = FitNetsHint("dense_0", "dense_0", teacher_units=4, student_units=8)
    feats = models.logits(keras.Model(teacher.inputs[0], teacher.get_layer("dense_0").output),
                          x[ROWS:])
    hidden = models.logits(keras.Model(net.inputs[0], net.get_layer("dense_0").output), x[ROWS:])
    w, b = hint.projection.get_weights()
    mse = ((feats - (hidden @ w + b)) ** 2).mean(axis=1).mean()
    _, kd = hand_terms(models.logits(net, x[ROWS:]), y[ROWS:], models.logits(teacher, x[ROWS:]),
                       3.0, "kl")
    distiller = HintDistiller(teacher, net, alpha=0.6, losses=[soft_loss("kl", 3.0), hint],
                              loss_weights=[1.0, 0.25])
    fitted = distiller.train({"student": x[:ROWS], "teacher": x[:ROWS]}, y[:ROWS],
                             ({"student": x[ROWS:], "teacher": x[ROWS:]}, y[ROWS:]),
                             FitSettings(1, 64, 5, 0.0))
    assert fitted.history["val_distillation_loss"][0] == pytest.approx(kd + 0.25 * mse, rel=1e-4)


def _student(alpha, temperature, kind="kl", epochs=8):
    x, y, soft = _data()
    keras.utils.set_random_seed(0)
    net = models.build_mlp(get_view("photometric"), (8,), x[:ROWS], name="s")
    distil_offline(net, x[:ROWS], y[:ROWS], soft[:ROWS], (x[ROWS:], y[ROWS:], soft[ROWS:]),
                   FitSettings(epochs, 64, epochs, 1e-2), alpha=alpha,
                   loss=soft_loss(kind, temperature))
    return models.logits(net, x)


@pytest.mark.slow
def test_alpha_zero_is_the_hard_label_fit_and_temperature_changes_the_student():
    """alpha = 0 ignores the soft labels (any T, kind: the same student); alpha > 0 at T = 4
    differs from T = 1, and KL from soft cross-entropy only by the constant (same student)."""
    np.testing.assert_array_equal(_student(0.0, 1.0), _student(0.0, 4.0, "ce"))
    assert np.abs(_student(0.5, 4.0) - _student(0.5, 1.0)).max() > 1e-3
    np.testing.assert_allclose(_student(0.5, 2.0, "kl"), _student(0.5, 2.0, "ce"), atol=1e-4)


@pytest.mark.slow
def test_engine_keeps_the_best_epochs_weights_not_the_last():
    """Noise labels, so the validation loss rises as the net overfits: the best epoch is not the
    last (checked, so this test can fail), and the weights kept are the best epoch's."""
    rng = np.random.default_rng(5)
    x = rng.normal(18, 1, (160, 5)).astype("float32")
    y = rng.integers(0, 3, 160).astype("int32")
    keras.utils.set_random_seed(0)
    net = models.build_mlp(get_view("photometric"), (32,), x[:100], name="s")
    fitted = distil_offline(net, x[:100], y[:100], np.zeros((100, 3), "float32"),
                            (x[100:], y[100:], np.zeros((60, 3), "float32")),
                            FitSettings(25, 20, 25, 5e-2), alpha=0.0, loss=soft_loss("kl", 1.0))
    val = fitted.history["val_loss"]
    best = int(np.argmin(val))
    assert fitted.epochs == 25 and best < 20 and val[-1] > val[best] * 1.05, val
    kept, _ = hand_terms(models.logits(net, x[100:]), y[100:], np.zeros((60, 3)), 1.0, "kl")
    assert kept == pytest.approx(val[best], rel=1e-4)


def _loss_mutant(change):
    real = jax_fit.Loss

    def mutant(*args, **kwargs):
        loss = real(*args, **kwargs)
        return dataclasses.replace(loss, **change(loss))
    return mutant


MUTANTS = {  # the same mutants as scripts/mutation_check.py, which prints the report
    "temperature_ignored": ("Loss", lambda loss: {"temperature": 1.0}),
    "alpha_ignored": ("Loss", lambda loss: {"alpha": 0.9}),
    "soft_loss_swapped": ("Loss", lambda loss: {"kind": {"kl": "ce", "ce": "kl"}[loss.kind]}),
    "last_weights": ("final_weights", None),
    "handover_temperature": ("engine_loss", lambda loss: {"temperature": 1.0}),
    "handover_alpha": ("engine_loss", lambda loss: {"alpha": 0.9}),
}


@pytest.mark.slow
@pytest.mark.parametrize("mutant", list(MUTANTS))
def test_each_mutant_fails_a_test(mutant, monkeypatch):
    """Break one setting on purpose: the test written for it must fail."""
    target, change = MUTANTS[mutant]
    if target == "Loss":
        monkeypatch.setattr(jax_fit, "Loss", _loss_mutant(change))
        with pytest.raises(AssertionError):
            test_engine_trains_on_the_configured_loss("kl", 0.3, 2.5)
    elif target == "engine_loss":  # the distiller -> engine hand-over
        from sdss_distill.distill import distillers
        from tests import test_distillers
        real = distillers.ViewDistiller.engine_loss
        monkeypatch.setattr(distillers.ViewDistiller, "engine_loss",
                            lambda self: dataclasses.replace(real(self), **change(real(self))))
        with pytest.raises(AssertionError):
            test_distillers.test_offline_distiller(test_distillers.faint_rows(), "kl")
    else:
        monkeypatch.setattr(jax_fit._Member, "final_weights",
                            lambda self, params: [np.asarray(a[self.k]) for layer in params for a in layer])
        with pytest.raises(AssertionError):
            test_engine_keeps_the_best_epochs_weights_not_the_last()
