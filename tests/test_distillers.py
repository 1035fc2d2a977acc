"""Each `Distiller` subclass hands the JAX engine the loss its own Keras `compute_loss` computes.

Per class, on a batch of real `faint` rows: the value of the distiller's Keras `compute_loss`
(the stock `keras.distillation.Distiller` combination, our overrides) is compared with the
value the engine computes on the same weights and rows, reached through the distiller's own
`train` (learning rate 0 and one epoch, so the weights stay the initial ones, and the batch
is the early-stopping rows whose loss the engine logs as `val_loss`). Temperature not 1,
alpha not 0 or 1, each soft loss kind. `scripts/mutation_check.py` breaks the hand-over
(temperature or alpha not passed on) and shows these tests failing.
"""

import keras
import numpy as np
import pytest

from sdss_distill.core.schema import get_view
from sdss_distill.data.table import features, labels
from sdss_distill.distill import distillers, subclasses
from sdss_distill.distill.fit import FitSettings
from sdss_distill.distill.losses import FitNetsHint, soft_loss
from sdss_distill.models import mlp as models

FIT, BATCH = 256, 128
ALPHA, TEMPERATURE = 0.35, 2.5
FROZEN = FitSettings(1, 64, 5, 0.0)  # learning rate 0: the weights stay the initial ones
KINDS = pytest.mark.parametrize("kind", ["kl", "ce"])


def faint_rows():
    """FIT + BATCH real rows of the packaged `faint` table: (student x, teacher x, labels)."""
    from sdss_distill.data.datasets import load_dataset
    df = load_dataset("faint")
    df = df.loc[np.sort(np.random.default_rng(0).choice(df.index, FIT + BATCH, replace=False))]
    return (features(df, get_view("photometric")), features(df, get_view("physical")),
            labels(df).astype("int32"))


@pytest.fixture(scope="module")
def rows():
    return faint_rows()


def _nets(rows, student_outputs=3):
    xs, xt, _ = rows
    keras.utils.set_random_seed(0)
    teacher = models.build_mlp(get_view("physical"), (16, 8), xt[:FIT], name="teacher")
    student = models.build_mlp(get_view("photometric"), (12, 12), xs[:FIT], name="student",
                               outputs=student_outputs)
    return teacher, student


def _split(a):
    return a[:FIT], a[FIT:]


def _keras_loss(d, x: dict, y) -> float:
    d.compile()
    return float(d.compute_loss(x=x, y=y, y_pred=d.student(x["student"], training=False),
                                training=False))


@pytest.mark.slow
@KINDS
def test_offline_distiller(rows, kind):
    xs, xt, y = rows
    teacher, student = _nets(rows)
    soft = models.logits(teacher, xt)
    d = distillers.OfflineDistiller(student, alpha=ALPHA, losses=[soft_loss(kind, TEMPERATURE)])
    want = _keras_loss(d, {"student": xs[FIT:], "soft": soft[FIT:]}, y[FIT:])
    (x, xv), (yf, yv), (s, sv) = _split(xs), _split(y), _split(soft)
    got = d.train(x, yf, s, (xv, yv, sv), FROZEN).history["val_loss"][0]
    assert got == pytest.approx(want, rel=2e-5)


def _keras_equals_engine_on_views(d, rows):
    """`d`'s Keras compute_loss on the early-stopping rows (student and teacher views) equals
    the engine's validation loss after a frozen epoch on the fit rows."""
    xs, xt, y = rows
    want = _keras_loss(d, {"student": xs[FIT:], "teacher": xt[FIT:]}, y[FIT:])
    got = d.train({"student": xs[:FIT], "teacher": xt[:FIT]}, y[:FIT],
                  ({"student": xs[FIT:], "teacher": xt[FIT:]}, y[FIT:]), FROZEN)
    assert got.history["val_loss"][0] == pytest.approx(want, rel=2e-5)


@pytest.mark.slow
@KINDS
def test_online_distiller(rows, kind):
    teacher, student = _nets(rows)
    d = distillers.OnlineDistiller(teacher, student, alpha=ALPHA,
                                   losses=[soft_loss(kind, TEMPERATURE)])
    _keras_equals_engine_on_views(d, rows)


@pytest.mark.slow
@KINDS
def test_hint_distiller(rows, kind):
    """Soft term and FitNets hint (teacher dense_1 -> student dense_0, weight 0.3)."""
    teacher, student = _nets(rows)
    hint = FitNetsHint("dense_1", "dense_0", teacher_units=8, student_units=12)
    d = distillers.HintDistiller(teacher, student, alpha=ALPHA,
                                 losses=[soft_loss(kind, TEMPERATURE), hint],
                                 loss_weights=[1.0, 0.3])
    _keras_equals_engine_on_views(d, rows)
    assert d.engine_loss().hint_weight == 0.3 and d.engine_loss().hint_layer == 0


@pytest.mark.slow
@KINDS
def test_cotrainer(rows, kind):
    """Teacher CE + (1 - alpha) student CE + alpha soft(stop_gradient(teacher), student)."""
    teacher, student = _nets(rows)
    d = distillers.CoTrainer(teacher, student, alpha=ALPHA, soft_loss=soft_loss(kind, TEMPERATURE))
    _keras_equals_engine_on_views(d, rows)


@pytest.mark.slow
@KINDS
def test_subclass_distiller(rows, kind):
    """Hard term on the summed subclass probabilities, soft term on 3 x 4 subclass logits."""
    xs, xt, y = rows
    bins = 4
    teacher, student = _nets(rows, student_outputs=3 * bins)
    keras.utils.set_random_seed(1)
    subclass_teacher = models.build_mlp(get_view("physical"), (16,), xt[:FIT], name="t",
                                        outputs=3 * bins)
    soft = models.logits(subclass_teacher, xt)
    d = subclasses.SubclassDistiller(student, bins, alpha=ALPHA,
                                     soft_loss=soft_loss(kind, TEMPERATURE))
    want = _keras_loss(d, {"student": xs[FIT:], "soft": soft[FIT:]}, y[FIT:])
    (x, xv), (yf, yv), (s, sv) = _split(xs), _split(y), _split(soft)
    got = d.train(x, yf, s, (xv, yv, sv), FROZEN).history["val_loss"][0]
    assert got == pytest.approx(want, rel=2e-5)
    assert d.engine_loss().per_class == bins


def test_engine_loss_is_read_from_the_distillers_attributes():
    """Alpha, temperature and kind come from the distiller; an unrepresentable mix is refused."""
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).uniform(15, 20, (32, 5)).astype("float32")
    student = models.build_mlp(get_view("photometric"), (4,), x, name="s")
    d = distillers.OfflineDistiller(student, alpha=0.2, losses=[soft_loss("ce", 3.0)])
    loss = d.engine_loss()
    assert (loss.alpha, loss.temperature, loss.kind, loss.per_class) == (0.2, 3.0, "ce", 0)
    d.distillation_losses[0].temperature = 5.0
    assert d.engine_loss().temperature == 5.0
    two = distillers.OfflineDistiller(student, alpha=0.2, losses=[soft_loss("kl", 1.0)],
                                      loss_weights=[0.5])
    with pytest.raises(ValueError, match="one soft loss of weight 1"):
        two.engine_loss()
