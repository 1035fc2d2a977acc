"""The Python API (sdss_distill.api, `sd.train` = sdss_distill.train): train, load, predict,
export, as the command lines do; the examples of docs/guide/python-api.md run as written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import sdss_distill as sd
from sdss_distill.core.errors import InputError
from sdss_distill.edge.classifier import EdgeClassifier
from tests.conftest import ROOT

GUIDE = ROOT / "docs" / "guide" / "python-api.md"
ROWS = [[19.47406, 17.0424, 15.94699, 15.50342, 15.22531],
        [18.73832, 18.60962, 18.39696, 18.31174, 17.97663]]


def test_import_is_light_and_the_api_is_there():
    """`import sdss_distill` and `sd.load` bring no TensorFlow, Keras or pandas (the edge
    install has neither); `sd.train` stays callable once its module is imported."""
    code = ("import sys, json, sdss_distill as sd\n"
            "names = (sd.load, sd.Run)\n"
            "heavy = [m for m in ('tensorflow', 'keras', 'pandas', 'jax') if m in sys.modules]\n"
            "import sdss_distill.train\n"
            "print(json.dumps({'heavy': heavy, 'callable': callable(sd.train)}))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=ROOT, check=True).stdout
    assert json.loads(out) == {"heavy": [], "callable": True}
    assert "train" in dir(sd) and "load" in dir(sd)
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        sd.trian  # noqa: B018


def test_train_takes_exactly_the_config_keys():
    with pytest.raises(InputError, match=r"unknown config key\(s\) epoch; valid keys: data, "
                                         r"columns, out, .*epochs"):
        sd.train(epoch=5, out="never-written")
    with pytest.raises(InputError, match="alpha"):
        sd.train(alpha=2.0, out="never-written")
    assert not (ROOT / "never-written").exists()


def test_load_of_something_else_is_one_line(tmp_path):
    with pytest.raises(InputError, match=r"no such run directory") as e:
        sd.load(tmp_path / "missing")
    assert "\n" not in str(e.value)
    (tmp_path / "plain").mkdir()
    with pytest.raises(InputError, match="not a training run"):
        sd.load(tmp_path / "plain")


@pytest.mark.slow
def test_predict_uses_the_exported_student_and_matches_columns_by_name(exported_run, capsys):
    run = sd.load(exported_run)
    assert run.report["models"]["student"]["test_accuracy"] > 0.5
    assert run.config["epochs"] == 20 and run.export_report["variants"]  # the fixture's run
    table = pd.DataFrame({"objid": [7, 8], **{f"modelMag_{b}": [r[k] for r in ROWS]
                                               for k, b in enumerate("zirgu"[::-1])}},
                         index=[10, 20])[["objid", "modelMag_z", "modelMag_u", "modelMag_r",
                                          "modelMag_g", "modelMag_i"]]
    df = run.predict(table)
    assert run.predict_source == "tflite/student_int8.tflite"
    expected = EdgeClassifier(exported_run / "tflite" / "student_int8.tflite").predict(ROWS)
    assert list(df.columns) == ["class", "p_GALAXY", "p_QSO", "p_STAR", "in_domain", "quality",
                                "z_phot", "z_phot_err"]  # the default student's redshift head
    np.testing.assert_array_equal(df["z_phot"], expected.z_phot)
    assert (df["z_phot"] >= 0).all() and (df["z_phot_err"] > 0).all()
    assert list(df.index) == [10, 20] and list(df["class"]) == list(expected.classes)
    assert np.allclose(df[["p_GALAXY", "p_QSO", "p_STAR"]], expected.probabilities)
    run.predict(np.array(ROWS))
    err = capsys.readouterr().err
    assert err.count("predicting with tflite/student_int8.tflite") == 1  # once per run version
    bad = run.predict(np.array([ROWS[0], [np.nan, 17, 16, 15, 15]]))
    assert list(bad["quality"]) == ["", "missing value in column 'u'"]
    assert bad["class"].iloc[1] == "" and bad[["p_GALAXY", "p_QSO", "p_STAR"]].iloc[1].isna().all()
    with pytest.raises(InputError, match=r"missing column\(s\) i, z"):
        run.predict(table[["modelMag_u", "modelMag_g", "modelMag_r"]])
    with pytest.raises(InputError, match=r"column 'modelMag_u': value 'n/a' is not a number"):
        run.predict(table.assign(modelMag_u=["n/a", "19"]))


@pytest.mark.slow
def test_an_unexported_run_predicts_with_its_keras_student(real_table, tmp_path):
    from sdss_distill.models.mlp import load, logits
    run = sd.train(data=str(real_table), out=str(tmp_path / "run"), method="offline",
                   epochs=2, teacher_hidden=[16], student_hidden=[8], rows=1500, quiet=True)
    assert run.export_report is None
    df = run.predict(np.array(ROWS))
    assert run.predict_source == "models/student.keras"
    z = logits(load(run.layout().model("student")), np.array(ROWS, np.float32))
    assert list(df["class"]) == [("GALAXY", "QSO", "STAR")[k] for k in z.argmax(axis=1)]
    assert df["in_domain"].dtype == bool and (df["quality"] == "").all()


def python_blocks(page) -> list[str]:
    """The ```python blocks of a docs page, in order."""
    return re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)


@pytest.mark.slow
def test_the_guide_examples_run_as_written(tmp_path, monkeypatch):
    """Every python block of docs/guide/python-api.md, in order, in one namespace, from a
    scratch directory; training is cut to 3 epochs and export skips QAT and pruning, as the
    page says."""
    from sdss_distill import train as command
    blocks = python_blocks(GUIDE)
    assert len(blocks) >= 3 and "sd.train(" in "".join(blocks)
    said = " ".join(GUIDE.read_text().split())
    assert "runs the examples on this page" in said and "cut to 3 epochs" in said
    assert "QAT and pruning skipped" in said
    real, export = command.train, sd.Run.export
    monkeypatch.setattr(command, "train", lambda **s: real(**{**s, "epochs": 3}))
    monkeypatch.setattr(sd.Run, "export", lambda self, **k: export(self, **{**k, "finetune": False}))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(GUIDE), "exec"), namespace)  # noqa: S102 - our own docs
    assert (tmp_path / "runs" / "faint" / "tflite" / "student_int8.tflite").is_file()
