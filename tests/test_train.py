"""End-to-end `python -m sdss_distill.train` on the real table, and its bad-input errors."""

import json
import re

import pytest

from sdss_distill import train
from sdss_distill.data.table import Split
from sdss_distill.models.mlp import load

from .conftest import HEADER, row


@pytest.fixture(scope="module")
def quick_run(real_table, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    code = train.main(["--data", str(real_table), "--out", str(out), "--epochs", "8", "--seed", "1",
                       "--quiet"])
    return code, out


@pytest.mark.slow
def test_train_writes_models_split_and_reports(quick_run):
    code, out = quick_run
    assert code == 0
    for name in ("teacher", "student", "baseline"):
        assert (out / "models" / f"{name}.keras").is_file()
    report = json.loads((out / "reports" / "report.json").read_text())
    models = report["models"]
    assert set(models) == {"teacher", "student", "baseline"}
    # Eight epochs are enough to be far above chance (~50 %) on the real table.
    assert models["teacher"]["test_accuracy"] > 0.9
    assert models["student"]["test_accuracy"] > 0.8
    assert models["student"]["view"] == "photometric" and models["teacher"]["view"] == "physical"
    # Two models agreeing on a share a of the rows differ in accuracy by at most 1 - a.
    gap = models["teacher"]["test_accuracy"] - models["student"]["test_accuracy"]
    assert 0.8 < models["student"]["agreement_with_teacher"] <= 1 - abs(gap) + 1e-9
    assert models["student"]["parameters"] < models["teacher"]["parameters"] / 10
    assert sum(map(sum, models["baseline"]["confusion_matrix"]["rows_true_cols_predicted"])) == 2000
    assert report["config"]["seed"] == 1 and report["data"]["rows_kept"] == 10_000
    assert "| student | photometric |" in (out / "reports" / "report.md").read_text()
    # No staging directory or temp file of the run's writes is left beside it.
    versions = out.parent / f".{out.name}.runs"
    leftovers = [p.name for p in versions.rglob("*") if ".staging" in p.name
                 or (p.name.startswith(".") and p.name.count(".") >= 2 and p.is_file())]
    assert versions.is_dir() and len(list(versions.iterdir())) == 1
    assert leftovers == []


@pytest.mark.slow
def test_saved_split_and_student_reproduce_the_report(quick_run, real_table):
    _, out = quick_run
    from sdss_distill.core.schema import get_view
    from sdss_distill.data.table import clean, features, labels, load_table

    split = Split.load(out / "split.json")
    df, _ = clean(load_table(real_table), get_view("physical"))
    test = df.loc[split.test]
    from sdss_distill.core import zphot
    from sdss_distill.models.mlp import logits, redshift
    student = load(out / "models" / "student.keras")
    x = features(test, get_view("photometric"))
    acc = (logits(student, x).argmax(1) == labels(test)).mean()
    report = json.loads((out / "reports" / "report.json").read_text())
    assert acc == pytest.approx(report["models"]["student"]["test_accuracy"], abs=1e-9)
    # the default student's redshift head reproduces the report's photo-z too
    galaxy = labels(test) == 0
    q = zphot.quality(zphot.from_output(redshift(student, x))[galaxy],
                      test["redshift"].to_numpy()[galaxy])
    want = {k: v for k, v in report["models"]["student"]["zphot"]["GALAXY"].items()
            if k != "coverage"}
    assert q == pytest.approx(want, abs=1e-9)


def _fails(args, capsys, out):
    code = train.main([*args, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())  # nothing half-written
    return err


@pytest.mark.parametrize("rows, header, message", [
    (None, None, "no such file"),
    ([], "", "the file is empty"),
    ([], HEADER, "no data rows below the header"),
    (["19,18,17,16,15,STAR"], "u,g,r,i,z,class", r"missing column\(s\) redshift needed by the physical view"),
    ([row(), row(r="faint")], HEADER, "line 3: column 'r' has non-numeric value 'faint'"),
    ([row(), row("ALIEN")], HEADER, r"unknown class label\(s\) ALIEN; expected GALAXY, QSO, STAR"),
    ([row(u=-9999), row(g=99)], HEADER, "cleaning dropped every row"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, write_csv, rows, header, message):
    path = tmp_path / "missing.csv" if rows is None else write_csv(rows, header=header)
    if header == "":
        path.write_text("")
    err = _fails(["--data", str(path)], capsys, tmp_path / "out")
    assert err.startswith("python -m sdss_distill.train: error: ")
    assert re.search(message, err), err


def test_bad_option_values(tmp_path, capsys, real_table):
    err = _fails(["--data", str(real_table), "--alpha", "2"], capsys, tmp_path / "out")
    assert "alpha must be between 0 and 1, got 2.0" in err
    err = _fails(["--data", str(real_table), "--config", str(tmp_path / "no.toml")], capsys,
                 tmp_path / "out")
    assert "no.toml: no such file" in err


def test_help_explains_options(capsys):
    with pytest.raises(SystemExit) as e:
        train.main(["--help"])
    text = capsys.readouterr().out
    assert e.value.code == 0
    for flag in ("--data", "--out", "--seed", "--epochs", "--temperature", "--alpha",
                 "--teacher-view", "--quiet", "--config", "--columns"):
        assert flag in text


HEAVY = ("keras", "tensorflow", "jax", "pandas", "sklearn")


def imported_packages(importtime_stderr: str) -> set[str]:
    """Top-level packages named in `python -X importtime` output (`... | cumulative | name`)."""
    return {line.rsplit("|", 1)[1].strip().split(".")[0]
            for line in importtime_stderr.splitlines() if line.startswith("import time:")}


def test_train_help_loads_no_training_stack():
    """`sdss-distill train --help` lists every method (the registry imports each method module)
    without Keras, TensorFlow, JAX, pandas or scikit-learn: methods take them from the
    workspace's toolbox when they run (distill/toolbox.py)."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "sdss_distill", "train",
                          "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "photo-teacher" in out.stdout and "student-ensemble" in out.stdout
    loaded = imported_packages(out.stderr)
    assert "sdss_distill" in loaded and "argparse" in loaded  # the parse sees the imports
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_imported_packages_sees_a_heavy_import():
    """Control for the test above: a line naming keras.src.x counts as keras."""
    text = ("import time: self [us] | cumulative | imported package\n"
            "import time:       120 |        120 |   keras.src.x\n")
    assert imported_packages(text) & set(HEAVY) == {"keras"}


@pytest.mark.slow
def test_same_seed_same_numbers(quick_run, real_table, tmp_path):
    _, out = quick_run
    again = tmp_path / "again"
    assert train.main(["--data", str(real_table), "--out", str(again), "--epochs", "8", "--seed", "1",
                       "--quiet"]) == 0
    first, second = (json.loads((d / "reports" / "report.json").read_text())["models"]
                     for d in (out, again))
    for name in first:
        assert first[name]["test_accuracy"] == second[name]["test_accuracy"]
        assert first[name]["test_log_loss"] == second[name]["test_log_loss"]
    assert (out / "split.json").read_bytes() == (again / "split.json").read_bytes()


@pytest.mark.slow
def test_train_export_converts_the_models_it_trained_without_reading_the_table(
        real_table, tmp_path, monkeypatch):
    from sdss_distill.core.io import sha256_file
    from sdss_distill.runs import rows

    def no_reread(*args, **kwargs):
        raise AssertionError("train --export read the run's table back")

    monkeypatch.setattr(rows, "load_run_rows", no_reread)
    out = tmp_path / "run"
    assert train.main(["--data", str(real_table), "--out", str(out), "--epochs", "3", "--seed",
                       "2", "--method", "offline", "--export", "--quiet"]) == 0
    export = json.loads((out / "reports" / "export.json").read_text())
    for name in ("student", "teacher"):
        assert export["models"][name]["model_sha256"] == sha256_file(out / "models" / f"{name}.keras")
    assert (out / "tflite" / "student_int8.tflite").is_file()
