import keras
import numpy as np
import pytest
from scipy.special import log_softmax, softmax

from sdss_distill import distill, models
from sdss_distill.schema import get_view

TEACHER = np.array([[4.0, 1.0, -2.0], [0.5, 0.2, 3.0], [-1.0, 2.0, 0.0]], "float32")
STUDENT = np.array([[2.0, 0.5, -1.0], [1.0, 1.0, 1.0], [0.0, 0.3, -0.4]], "float32")
LABELS = np.array([0, 2, 1], "int32")


def hand_loss(alpha, temp, weights=None):
    """(1 - alpha) CE(y, s) + alpha T^2 KL(softmax(t/T) || softmax(s/T)), row by row."""
    ce = -log_softmax(STUDENT, axis=1)[np.arange(3), LABELS]
    pt = softmax(TEACHER / temp, axis=1)
    kl = (pt * (np.log(pt) - log_softmax(STUDENT / temp, axis=1))).sum(1)
    w = np.ones(3) if weights is None else np.asarray(weights, float)
    mean = lambda v: (v * w).sum() / w.sum()  # noqa: E731
    return (1 - alpha) * mean(ce) + alpha * temp**2 * mean(kl)


@pytest.fixture(scope="module")
def distiller():
    rng = np.random.default_rng(0)
    teacher = models.build_mlp(get_view("physical"), (8,), rng.random((16, 6), "float32"),
                               name="teacher")
    student = models.build_mlp(get_view("photometric"), (4,), rng.random((16, 5), "float32"),
                               name="student")
    return teacher, student


@pytest.mark.parametrize("alpha, temp", [(0.0, 1.0), (0.5, 2.0), (0.7, 3.0), (1.0, 4.0)])
def test_loss_matches_hand_computation(distiller, alpha, temp):
    d = distill.OfflineDistiller(*distiller, temperature=temp, alpha=alpha)
    d.compile()
    y = {"label": LABELS, "teacher_logits": TEACHER}
    got = float(d.compute_loss(y=y, y_pred=STUDENT))
    assert got == pytest.approx(hand_loss(alpha, temp), rel=1e-5)


def test_sample_weight_is_honoured(distiller):
    d = distill.OfflineDistiller(*distiller, temperature=2.0, alpha=0.5)
    d.compile()
    w = np.array([1.0, 0.0, 3.0], "float32")
    got = float(d.compute_loss(y={"label": LABELS, "teacher_logits": TEACHER}, y_pred=STUDENT,
                               sample_weight=w))
    assert got == pytest.approx(hand_loss(0.5, 2.0, w), rel=1e-5)
    assert got != pytest.approx(hand_loss(0.5, 2.0), rel=1e-3)


def test_temperature_scaling_changes_the_soft_term():
    kl = distill.TemperatureKL
    low, high = (float(kl(t).compute_loss(TEACHER, STUDENT)) for t in (1.0, 5.0))
    assert low != pytest.approx(high, rel=1e-2)


def test_bad_arguments(distiller):
    with pytest.raises(ValueError, match="alpha must be between 0 and 1, got 1.5"):
        distill.OfflineDistiller(*distiller, alpha=1.5)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        distill.TemperatureKL(0)


def test_teacher_and_student_may_read_different_columns(distiller):
    teacher, student = distiller
    assert teacher.input_shape != student.input_shape
    d = distill.OfflineDistiller(teacher, student, alpha=0.5)
    assert d.teacher is teacher and not teacher.trainable


def test_distillation_moves_student_towards_teacher():
    rng = np.random.default_rng(1)
    xt = rng.normal(18, 1, (400, 6)).astype("float32")
    y = (xt[:, 0] > 18).astype("int32")
    keras.utils.set_random_seed(0)
    teacher = models.build_mlp(get_view("physical"), (16,), xt, name="teacher")
    student = models.build_mlp(get_view("photometric"), (8,), xt[:, :5], name="student")
    logits = rng.normal(0, 3, (400, 3)).astype("float32")
    before = float(distill.TemperatureKL(1.0).compute_loss(logits, student.predict(xt[:, :5], verbose=0)))
    distill.distil_student(teacher, student, xt[:, :5], y, logits,
                           (xt[:50, :5], y[:50], logits[:50]), temperature=1.0, alpha=1.0,
                           learning_rate=1e-2, epochs=30, batch_size=64, patience=30)
    after = float(distill.TemperatureKL(1.0).compute_loss(logits, student.predict(xt[:, :5], verbose=0)))
    assert after < 0.8 * before
