"""Co-training in the JAX engine: the loss it trains on, by hand (lr = 0: the weights stay
initial, so the logged validation terms are those of known models)."""

import keras
import numpy as np
import pytest
from scipy.special import log_softmax

from sdss_distill.core.schema import get_view
from sdss_distill.distill.distillers import CoTrainer
from sdss_distill.distill.fit import FitSettings
from sdss_distill.distill.losses import soft_loss
from sdss_distill.models import mlp as models
from tests.test_jax_fit import hand_terms


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["kl", "ce"])
def test_cotrain_trains_on_the_configured_loss(kind):
    """loss = CE(y, t) + (1 - alpha) CE(y, s) + alpha T^2 soft(t, s), with this T, alpha, kind."""
    rng = np.random.default_rng(2)
    xs = rng.normal(18, 1, (200, 5)).astype("float32")
    xt = np.concatenate([xs, rng.uniform(0, 2, (200, 1)).astype("float32")], axis=1)
    y = rng.integers(0, 3, 200).astype("int32")
    keras.utils.set_random_seed(0)
    teacher = models.build_mlp(get_view("physical"), (8, 4), xt[:150], name="teacher")
    student = models.build_mlp(get_view("photometric"), (6,), xs[:150], name="student")
    t, s = models.logits(teacher, xt[150:]), models.logits(student, xs[150:])
    teacher_ce = -log_softmax(t, axis=1)[np.arange(50), y[150:]].mean()
    student_ce, soft = hand_terms(s, y[150:], t, 2.0, kind)
    fitted = CoTrainer(teacher, student, alpha=0.4, soft_loss=soft_loss(kind, 2.0)).train(
        {"teacher": xt[:150], "student": xs[:150]}, y[:150],
        ({"teacher": xt[150:], "student": xs[150:]}, y[150:]), FitSettings(1, 32, 5, 0.0))
    h = fitted.history
    assert h["val_teacher_loss"][0] == pytest.approx(teacher_ce, rel=1e-4)
    assert h["val_student_loss"][0] == pytest.approx(student_ce, rel=1e-4)
    assert h["val_distillation_loss"][0] == pytest.approx(soft, rel=1e-4)
    assert h["val_loss"][0] == pytest.approx(teacher_ce + 0.6 * student_ce + 0.4 * soft, rel=1e-4)


@pytest.mark.slow
def test_alpha_zero_student_is_its_baseline_through_early_stopping():
    """Each of the pair stops and cuts its learning rate on its own validation loss, and the
    student is stepped as any student: with alpha = 0 it ends with exactly the weights of the
    hard-label baseline of the same rows, initial weights and seed, though early stopping and
    the learning-rate cuts ran (real faint rows); with alpha = 0.5 it does not."""
    from sdss_distill.distill.fit import train_teacher
    from tests.test_distillers import FIT, faint_rows
    xs, xt, y = faint_rows()
    settings = FitSettings(60, 32, 3, 5e-2)
    students = []
    for alpha in (0.0, 0.5):
        keras.utils.set_random_seed(0)
        teacher = models.build_mlp(get_view("physical"), (16, 8), xt[:FIT], name="teacher")
        keras.utils.set_random_seed(1)
        student = models.build_mlp(get_view("photometric"), (6,), xs[:FIT], name="student")
        CoTrainer(teacher, student, alpha=alpha, soft_loss=soft_loss("kl", 4.0)).train(
            {"teacher": xt[:FIT], "student": xs[:FIT]}, y[:FIT],
            ({"teacher": xt[FIT:], "student": xs[FIT:]}, y[FIT:]), settings)
        students.append(student.get_weights())
    keras.utils.set_random_seed(1)
    baseline = models.build_mlp(get_view("photometric"), (6,), xs[:FIT], name="baseline")
    fitted = train_teacher(baseline, xs[:FIT], y[:FIT], (xs[FIT:], y[FIT:]), settings)
    assert fitted.epochs < settings.epochs  # early stopping ran
    for a, b in zip(students[0], baseline.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert max(np.abs(a - b).max() for a, b in zip(students[1], baseline.get_weights())) > 1e-4
