"""The sweep runner: grid, resume after a kill, statistics, summary, figures and CLI errors."""

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from sdss_distill.core.errors import InputError
from sdss_distill.runs.config import make_config
from sdss_distill.sweep import cli as experiment
from sdss_distill.sweep import grid as sweep
from sdss_distill.sweep import stats


def test_describe_and_paired_on_known_inputs():
    d = stats.describe([1.0, 2.0, 3.0])
    assert (d["n"], d["mean"], d["std"]) == (3, 2.0, 1.0)
    assert d["ci95"] == pytest.approx(4.302653 / np.sqrt(3))  # t(0.975, 2) * s / sqrt(n)
    p = stats.paired([1, 2, 3, 4, 5, 6], [0, 1, 2, 3, 4, 5])
    assert (p["wins"], p["ties"], p["losses"], p["mean_diff"]) == (6, 0, 0, 1.0)
    assert p["wilcoxon_p"] == pytest.approx(2 / 2**6)  # exact: all six signs positive
    p = stats.paired([0.5, 0.7, 0.9], [0.5, 0.6, 1.0])
    assert (p["wins"], p["ties"], p["losses"]) == (1, 1, 1)
    assert stats.paired([1, 2], [1, 2])["wilcoxon_p"] == 1.0
    with pytest.raises(ValueError, match="paired samples differ in length"):
        stats.paired([1, 2], [1])


@pytest.mark.parametrize("n, text", [(2, "too few seeds for a test (n=2)"),
                                     (5, "too few seeds for a test (n=5)"),
                                     (6, "0.031"), (10, "0.031")])
def test_a_p_value_is_shown_only_where_the_seeds_allow_a_test(n, text):
    """With n seeds the smallest two-sided Wilcoxon p is 2 / 2**n: 0.0625 at 5, 0.03125 at 6."""
    ones = [1.0] * n
    p = stats.paired(ones, [0.0] * n)["wilcoxon_p"]
    assert p == pytest.approx(2.0 ** (1 - n))
    assert stats.p_text(0.03125, n) == text


def fake_arm(acc, role):
    per_class = {c: {"precision": acc, "recall": acc, "f1": acc, "support": 1}
                 for c in ("GALAXY", "QSO", "STAR")}
    return {"role": role, "view": "photometric", "rows": "student_train", "parameters": 934,
            "epochs": 3, "train_s": 1.0, "test_accuracy": acc, "test_log_loss": 0.1,
            "test_ece": 0.01, "macro_f1": acc, "per_class": per_class,
            "confusion_matrix": {"rows_true_cols_predicted": [[5, 1, 0], [0, 6, 0], [0, 0, 6]]},
            "history": {"loss": [1.0, 0.5], "student_loss": [1.0, 0.6],
                        "distillation_loss": [0.3, 0.2], "val_accuracy": [0.9, 0.95]}}


@pytest.fixture
def fake_training(monkeypatch):
    """Replace data preparation and training by stubs that record which cells ran."""
    from sdss_distill.runs import pipeline
    calls = []

    def prepare(cfg, dev=False):
        return SimpleNamespace(split=SimpleNamespace(test=np.arange(20), teacher_train=np.arange(40),
                                                     student_train=np.arange(40)))

    def timed_run(cfg, prepared, ws=None, **kw):
        calls.append((cfg.seed, cfg.method, cfg.alpha))
        bump = 0.01 * cfg.alpha + 0.001 * cfg.seed
        return [], {"teacher": fake_arm(0.99, "teacher"),
                    "student": {**fake_arm(0.95 + bump, "student"), "agreement_with_teacher": 0.9,
                                "teacher_student_kl": 0.1},
                    "baseline": {**fake_arm(0.95, "baseline"), "agreement_with_teacher": 0.9,
                                 "teacher_student_kl": 0.1}}, 0.1

    monkeypatch.setattr(pipeline, "prepare", prepare)
    monkeypatch.setattr(pipeline, "timed_run", timed_run)
    monkeypatch.setattr(pipeline, "workspace", lambda prepared, cfg: None)
    return calls


@pytest.mark.slow
def test_a_killed_sweep_resumes_without_recomputing(fake_training, tmp_path):
    base = make_config(data="x.csv")
    cells = sweep.grid(["offline"], [2.0], [0.0, 0.5, 1.0], ["kl"])
    done = []

    def die_after_two(cell, seconds):
        done.append(cell.id)
        if len(done) == 2:
            raise KeyboardInterrupt  # the sweep is killed after two cells were written

    with pytest.raises(KeyboardInterrupt):
        sweep.run_seed(base, 0, cells, tmp_path, dev=False, on_cell=die_after_two)
    assert len(fake_training) == 2
    sweep.run_sweep(base, cells, [0, 1], tmp_path, dev=False, workers=1, progress=False)
    assert len(fake_training) == 2 + 1 + 3  # seed 0's last cell, then all of seed 1
    sweep.run_sweep(base, cells, [0, 1], tmp_path, dev=False, workers=1, progress=False)
    assert len(fake_training) == 6  # nothing left to do
    changed = make_config(data="x.csv", epochs=7)  # other settings: refused, nothing mixed
    with pytest.raises(InputError, match="epochs: 300 there, 7 now"):
        sweep.run_sweep(changed, cells, [0], tmp_path, dev=False, workers=1, progress=False)
    assert len(fake_training) == 6
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob(".*.json.*"))


@pytest.mark.slow
def test_tidy_table_summary_and_figures(fake_training, tmp_path):
    base = make_config(data="x.csv")
    cells = sweep.grid(["offline"], [1.0, 4.0], [0.0, 0.5, 1.0], ["kl"])
    sweep.run_sweep(base, cells, [0, 1, 2], tmp_path, dev=False, workers=1, progress=False)
    experiment.summarise(tmp_path, "python -m sdss_distill.experiment ...")
    df = pd.read_csv(tmp_path / "results.csv")
    assert len(df) == 3 * 6 * 3  # seeds x cells x arms
    assert {"accuracy", "ece", "log_loss", "recall_QSO", "agreement_with_teacher",
            "parameters", "train_s", "epochs"} <= set(df.columns)
    summary = pd.read_csv(tmp_path / "summary.csv")
    row = summary[(summary.cell_id == "offline_T1_a1_kl") & (summary.arm == "student")].iloc[0]
    assert row["vs_baseline_wins"] == 3 and row["vs_baseline_mean_diff"] == pytest.approx(0.011)
    assert row["vs_baseline_wilcoxon_p"] == pytest.approx(0.25)  # 3 of 3 positive, exact
    md = (tmp_path / "summary.md").read_text()
    assert "| offline_T1_a1_kl | student | student |" in md  # 3 seeds: p >= 0.25, no test
    assert "+1.10 pt | 3/0/0 | too few seeds for a test (n=3) |" in md
    assert "Wilcoxon p too few seeds for a test (n=3)." in md and "0.250" not in md
    from sdss_distill.sweep.grid import load_cells
    from sdss_distill.sweep.summary import early_epochs
    early = early_epochs(load_cells(tmp_path), "offline_T1_a1_kl", epochs=(1, 2, 3))
    assert early.epoch.tolist() == [1, 2] and (early.seeds == 3).all()  # histories: 2 epochs
    assert early.student.tolist() == pytest.approx([0.9, 0.95]) and (early.paired_mean_diff == 0).all()
    from sdss_distill.sweep.figures import sweep_figures
    written = sweep_figures(tmp_path)
    names = {p.stem for p in written}
    assert {"accuracy_vs_temperature", "accuracy_vs_alpha", "per_class_by_alpha",
            "confusion_by_alpha", "size_vs_accuracy", "training_curves"} == names
    for png in written:
        assert png.stat().st_size > 10_000 and png.with_suffix(".csv").stat().st_size > 50


@pytest.mark.parametrize("argv, message", [
    (["--methods", "nope"], "unknown method 'nope'; choose one of: offline, crossfit"),
    (["--alphas", "0.5", "1.5"], "alpha must be between 0 and 1, got 1.5"),
    (["--workers", "0"], "--workers must be >= 1, got 0"),
    (["--seeds", "1", "1"], "--seeds lists a seed twice"),
    (["--set", "crossfit.folds=1"], "methods.crossfit: folds must be between 2 and 20"),
])
def test_bad_sweeps_fail_before_training(real_table, tmp_path, capsys, argv, message):
    out = tmp_path / "sweep"
    code = experiment.main(["--data", str(real_table), "--out", str(out), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0] and not out.exists()


@pytest.mark.slow
def test_a_small_real_sweep_end_to_end(small_sweep):
    out, argv = small_sweep
    df = pd.read_csv(out / "results.csv")
    assert len(df) == 2 * 6 * 3 and set(df.seed) == {0, 1}  # seeds x cells x arms
    assert (df.accuracy > 0.5).all()
    first = {p: p.stat().st_mtime_ns for p in (out / "cells").rglob("*.json")}
    assert experiment.main(argv) == 0  # resumes: nothing recomputed
    assert first == {p: p.stat().st_mtime_ns for p in (out / "cells").rglob("*.json")}
    assert json.loads((out / "sweep.json").read_text())["seeds"] == [0, 1]
    for name in ("accuracy_vs_alpha", "accuracy_vs_temperature", "training_curves"):
        assert (out / "plots" / f"{name}.png").stat().st_size > 10_000


@pytest.mark.slow
def test_int8_size_of_an_architecture_matches_the_shipped_file(exported_run, tmp_path):
    """The sweep's int8 bytes come from an untrained model of the same architecture: equal to
    the size of export's 16x8 candidate for a trained one (student_int8 is that candidate or
    another one chosen on dev rows)."""
    from sdss_distill.distill.method import Architecture
    from sdss_distill.runs.rundir import RunDir
    from sdss_distill.sweep import int8
    base = make_config(data="x.csv")
    assert int8.architectures(base, {"offline", "student-ensemble"})[:2] == [
        Architecture((48, 48)), Architecture((12, 12))]
    # mix (the session run's method): its student has the redshift head (49 parameters more),
    # its baseline has not
    sizes = int8.sizes(tmp_path, base, {"mix"})
    layout = RunDir(exported_run).current()
    shipped = json.loads(layout.export_json.read_text())["student_int8_choice"]["candidates"][
        "ptq_16x8"]["size_bytes"]
    assert set(sizes) == {2998, 3047} and sizes[3047] == shipped > sizes[2998]
    assert json.loads((tmp_path / int8.CACHE).read_text()) == {str(k): v for k, v in sizes.items()}


def test_coverage_band_probability_matches_a_simulated_conformal_split():
    from sdss_distill.core import conformal
    rng = np.random.default_rng(0)
    n_cal, n_test, reps = 300, 600, 3000
    inside = 0
    for _ in range(reps):  # exchangeable rows: i.i.d. scores for calibration and test
        cal, test = rng.random(n_cal), rng.random(n_test)
        q = np.sort(cal)[conformal.rank(n_cal, 0.9) - 1]
        inside += 0.88 <= (test <= q).mean() <= 0.92
    p = stats.coverage_band_probability(n_cal, n_test, 0.9, 0.88, 0.92)
    assert abs(inside / reps - p) < 4 * np.sqrt(p * (1 - p) / reps)  # 4 sd of the simulation
    assert 0.5 < p < 0.9  # the band is far from sure at these sizes
    assert stats.coverage_band_probability(5, 100, 0.9, 0.88, 0.92) == 0.0  # k > n: coverage 1
    assert stats.coverage_band_probability(10**6, 10**6, 0.9, 0.88, 0.92) > 0.999
    low, high = stats.coverage_interval(n_cal, n_test, 0.9, 0.9)
    assert low < 0.9 < high and high - low < 0.1
    assert stats.coverage_band_probability(n_cal, n_test, 0.9, low, high) >= 0.9
