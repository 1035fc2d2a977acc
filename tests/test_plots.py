"""The plotting and glue helpers the notebooks call (sdss_distill/plots.py)."""

from __future__ import annotations

import json

import pytest


def test_pareto_front_keeps_the_undominated():
    from sdss_distill.plots import pareto_front
    # (cost, score): the 3rd is beaten by the 2nd; equal points do not beat each other
    front = pareto_front([1.0, 2.0, 3.0, 2.0], [0.90, 0.95, 0.94, 0.95])
    assert front.tolist() == [True, True, False, True]


def test_find_run_names_a_bad_run_dir(tmp_path, monkeypatch):
    from sdss_distill.errors import InputError
    from sdss_distill.plots import find_run
    monkeypatch.setenv("SDSS_DISTILL_RUN", str(tmp_path))
    with pytest.raises(InputError, match=r"SDSS_DISTILL_RUN=.*no reports/report.json"):
        find_run(tmp_path)


def test_load_run_refuses_another_table(tmp_path, write_csv):
    from sdss_distill.errors import InputError
    from sdss_distill.plots import load_run
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "run.json").write_text(json.dumps(
        {"data": {"path": "other.csv"}, "config": {"teacher_view": "physical"}}))
    (tmp_path / "models" / "split.json").write_text(json.dumps({"data_sha256": "0" * 64}))
    with pytest.raises(InputError, match="not the table run"):
        load_run(tmp_path, write_csv([]))


def test_every_figure_draws():
    import matplotlib
    matplotlib.use("Agg")
    import numpy as np
    import pandas as pd

    from sdss_distill import plots
    from sdss_distill.schema import LABELS

    rng = np.random.default_rng(0)  # SIMULATED rows, only to exercise the drawing code
    n = 60
    df = pd.DataFrame(rng.normal(18, 1, (n, 5)), columns=list("ugriz"))
    df["class"] = np.resize(LABELS, n)
    df["redshift"] = np.where(df["class"] == "STAR", rng.normal(0, 1e-4, n), rng.uniform(0.01, 3, n))
    cm = {"labels": list(LABELS), "rows_true_cols_predicted": [[5, 1, 0], [0, 4, 1], [1, 0, 6]]}
    per_class = {c: {"precision": 0.9, "recall": 0.8, "f1": 0.85, "support": 10} for c in LABELS}
    model = {"view": "photometric", "parameters": 934, "test_accuracy": 0.9, "macro_f1": 0.85,
             "test_log_loss": 0.3, "per_class": per_class, "confusion_matrix": cm,
             "latency": {"latency_us_median": 1500.0}}
    report = {"models": {"teacher": model, "student": {**model, "agreement_with_teacher": 0.95,
                                                       "teacher_student_kl": 0.1}, "baseline": model}}
    variants = {s: {"size_bytes": b, "test_accuracy": a, "agreement": 0.99, "latency_us_median": 1.3,
                    "latency_us_p99": 2.0, "throughput_rows_per_s": 1e7}
                for s, b, a in (("student_int8", 4048, 0.96), ("student_float32", 6152, 0.962))}
    pred = rng.integers(0, 3, (2, n))
    figures = [plots.class_balance(df), plots.colour_colour(df), plots.redshift_hist(df),
               plots.magnitude_ranges(df, {"u": 19.6}), plots.colour_vs_redshift(df),
               plots.confusion_matrices(report), plots.per_class_bars(report),
               plots.soft_labels(rng.normal(0, 3, (2, 3)), titles=["a", "b"]),
               plots.disagreements(df, pred[0], pred[1]), plots.pareto(variants, {"Keras": 0.96})]
    assert all(f.axes for f in figures)
    assert list(plots.metrics_table(report).index) == ["teacher", "student", "baseline"]
    assert plots.variants_table({"variants": variants}).index[0] == "student_int8"
    matplotlib.pyplot.close("all")
