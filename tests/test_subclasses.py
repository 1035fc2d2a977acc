"""Subclass distillation: bin edges from teacher-train rows only, the SubclassSum head (sums,
round trip, export), the distiller's loss against a hand computation."""

import json

import keras
import numpy as np
import pytest
from scipy.special import log_softmax, logsumexp, softmax

from sdss_distill.core.schema import LABELS, get_view
from sdss_distill.data.table import labels
from sdss_distill.distill import subclasses
from sdss_distill.distill.losses import TemperatureKL
from sdss_distill.models import mlp as models
from sdss_distill.runs import pipeline
from sdss_distill.runs.config import make_config

BINS = 4


@pytest.fixture(scope="module")
def prepared(real_table):
    return pipeline.prepare(make_config(data=str(real_table)))


def test_edges_and_targets_depend_only_on_teacher_train_rows(prepared):
    df, parts = prepared.df.copy(), prepared.split
    edges = subclasses.redshift_edges(df, parts.teacher_train, BINS)
    targets = subclasses.subclass_labels(df.loc[parts.teacher_train], edges)
    changed = df.copy()
    rng = np.random.default_rng(1)
    for rows in (parts.test, parts.student_train):  # neither may move an edge or a target
        changed.loc[rows, "redshift"] = rng.uniform(-1, 7, len(rows))
    np.testing.assert_array_equal(subclasses.redshift_edges(changed, parts.teacher_train, BINS),
                                  edges)
    np.testing.assert_array_equal(
        subclasses.subclass_labels(changed.loc[parts.teacher_train], edges), targets)
    # ... while the teacher-train rows' redshifts do move them (the check above can fail)
    changed.loc[parts.teacher_train, "redshift"] *= 1.5
    assert not np.allclose(subclasses.redshift_edges(changed, parts.teacher_train, BINS), edges)


def test_subclasses_are_class_major_quantile_bins(prepared):
    df, rows = prepared.df, prepared.split.teacher_train
    edges = subclasses.redshift_edges(df, rows, BINS)
    assert edges.shape == (len(LABELS), BINS - 1) and (np.diff(edges, axis=1) > 0).all()
    sub = subclasses.subclass_labels(df.loc[rows], edges)
    np.testing.assert_array_equal(sub // BINS, labels(df.loc[rows]))
    counts = np.bincount(sub, minlength=len(LABELS) * BINS).reshape(len(LABELS), BINS)
    share = counts / counts.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(share, 1 / BINS, atol=0.02)  # quantile bins: equal shares
    assert json.dumps(subclasses.describe_bins(edges))  # the report records them as JSON


def test_subclass_sum_is_log_of_summed_probabilities():
    s = np.random.default_rng(0).normal(0, 3, (6, 3 * BINS)).astype("float32")
    got = keras.ops.convert_to_numpy(models.SubclassSum(BINS)(s))
    want = np.log(softmax(s.astype("float64"), axis=1).reshape(6, 3, BINS).sum(axis=2))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    one = keras.ops.convert_to_numpy(models.SubclassSum(1)(s[:, :3]))
    np.testing.assert_allclose(one, log_softmax(s[:, :3], axis=1), atol=1e-5)
    with pytest.raises(ValueError, match="per_class must be >= 1, got 0"):
        models.SubclassSum(0)


def test_subclass_model_round_trips_in_safe_mode(tmp_path):
    view = get_view("photometric")
    x = np.random.default_rng(2).uniform(15, 21, (32, 5)).astype("float32")
    keras.utils.set_random_seed(3)
    inner = models.build_mlp(view, (4,), x, name="student", outputs=3 * BINS)
    model = models.subclass_model(inner, BINS, name="student")
    assert model.output.shape[-1] == 3 and models.subclass_head(model).per_class == BINS
    assert models.subclass_head(inner) is None and not models.ensemble_members(model)
    np.testing.assert_allclose(models.logits(model, x), logsumexp(
        log_softmax(models.logits(inner, x), axis=1).reshape(-1, 3, BINS), axis=2), atol=1e-5)
    config = json.loads(json.dumps(models.SubclassSum(BINS, name="h").get_config()))
    assert models.SubclassSum.from_config(config).per_class == BINS
    model.save(tmp_path / "m.keras")
    back = models.load(tmp_path / "m.keras")
    np.testing.assert_allclose(models.logits(back, x), models.logits(model, x), rtol=1e-6)


def test_distiller_loss_matches_hand_computation():
    rng = np.random.default_rng(4)
    t, s = (rng.normal(0, 2, (5, 3 * BINS)).astype("float32") for _ in range(2))
    y = np.array([0, 1, 2, 1, 0], "int32")
    student = keras.Sequential([keras.Input((3 * BINS,)), keras.layers.Identity()])
    d = subclasses.SubclassDistiller(student, BINS, alpha=0.3, soft_loss=TemperatureKL(2.0))
    d.compile()
    got = float(d.compute_loss(x={"student": s, "soft": t}, y=y, y_pred=s))
    class_log_p = np.log(softmax(s, 1).reshape(5, 3, BINS).sum(2))
    ce = -class_log_p[np.arange(5), y].mean()
    pt = softmax(t / 2, 1)
    kl = 4 * (pt * (np.log(pt) - log_softmax(s / 2, 1))).sum(1).mean()
    assert got == pytest.approx(0.7 * ce + 0.3 * kl, rel=1e-4)


@pytest.mark.slow
def test_subclass_run_exports_a_three_class_student(real_table, tmp_path):
    """A tiny subclass run on 1,500 rows, trained and exported: every file gives 3 logits and
    the int8 student agrees with Keras."""
    import pandas as pd

    from sdss_distill.data.datasets import load_dataset
    from sdss_distill.edge.classifier import EdgeClassifier
    from sdss_distill.export.run import export_run
    from sdss_distill.train import main
    data = tmp_path / "small.csv"
    load_dataset("bright").sample(1500, random_state=0).to_csv(data, index=False)
    out = tmp_path / "run"
    assert main(["--data", str(data), "--method", "subclass", "--set", "subclass.bins=3",
                 "--epochs", "3", "--teacher-hidden", "16", "8", "--out", str(out),
                 "--quiet"]) == 0
    report = json.loads((out / "reports" / "report.json").read_text())
    assert report["method_settings"] == {"bins": 3}
    assert len(report["models"]["teacher"]["redshift_edges"]["QSO"]) == 2
    exported = export_run(out, quiet=True, invokes=50)
    assert "student_qat_int8" in exported["skipped"]
    assert exported["variants"]["student_int8"]["agreement"] > 0.9
    x = pd.read_csv(data)[list("ugriz")].to_numpy("float32")[:10]
    for stem in ("student_int8", "student_float32"):
        assert EdgeClassifier(out / "tflite" / f"{stem}.tflite").logits(x).shape == (10, 3)


def test_sweep_int8_sizes_know_the_subclass_student():
    from sdss_distill.distill.method import Architecture
    from sdss_distill.sweep import int8
    base = make_config()
    arch = Architecture((48, 48), subclass_bins=4)
    assert arch in int8.architectures(base, {"offline", "subclass"})
    model, _ = int8._build(arch)
    assert model.output.shape[-1] == 3 and models.subclass_head(model).per_class == 4
