"""The TensorFlow-free edge runtime: predict on good and bad rows, errors, domain, imports."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sdss_distill import edge
from sdss_distill.schema import LABELS

ROOT = Path(__file__).resolve().parents[1]
GOOD = "19.47406,17.0424,15.94699,15.50342,15.22531"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model(exported_run):
    return exported_run / "tflite" / "student_int8.tflite"


def write(tmp_path, lines, name="objects.csv"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_predict_good_rows_writes_ids_classes_probabilities(model, tmp_path, capsys):
    src = write(tmp_path, ["objid,u,g,r,i,z,specobjid", f"11,{GOOD},21", f"12,{GOOD},22"])
    out = tmp_path / "out.csv"
    assert edge.main(["predict", "--model", str(model), "--input", str(src),
                      "--output", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "objid,specobjid,class,p_GALAXY,p_QSO,p_STAR,in_domain"
    rows = [line.split(",") for line in lines[1:]]
    assert [r[:2] for r in rows] == [["11", "21"], ["12", "22"]]
    for r in rows:
        p = np.array(r[3:6], float)
        assert r[2] == LABELS[int(p.argmax())] and p.sum() == pytest.approx(1, abs=1e-5)
        assert r[6] == "true"
    assert "classified 2 rows, 0 outside the training domain; rejected 0" in capsys.readouterr().err


def test_bad_rows_are_reported_by_line_and_skipped(model, tmp_path, capsys):
    src = write(tmp_path, ["objid,modelMag_u,g,r,i,z", f"1,{GOOD}", "2,,17,16,15.5,15.2",
                           "3,18.5,-9999,16,15.5,15.2", "4,18.5,abc,16,15.5,15.2", f"5,{GOOD}",
                           "6,18.5,17"])
    code = edge.main(["predict", "--model", str(model), "--input", str(src)])
    out, err = capsys.readouterr()
    assert code == edge.EXIT_REJECTED == 1
    assert [line.split(",")[0] for line in out.splitlines()[1:]] == ["1", "5"]
    assert "line 3: missing value in column 'u'" in err
    assert "line 4: sentinel -9999 (failed measurement) in column 'g'" in err
    assert "line 5: non-numeric value 'abc' in column 'g'" in err
    assert "line 7: missing value in column 'r'" in err
    assert "rejected 4 rows" in err


def test_missing_column_is_one_line_error(model, tmp_path, capsys):
    src = write(tmp_path, ["objid,u,g,r,i", "1,19,18,17,16"])
    assert edge.main(["predict", "--model", str(model), "--input", str(src)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing column(s) z" in err[0]


@pytest.mark.parametrize("content", [b"not a model at all", b"", "truncate", "scramble"])
def test_corrupt_model_is_one_line_error(model, tmp_path, capsys, content):
    good = model.read_bytes()
    if content == "truncate":
        content = good[: len(good) // 2]
    elif content == "scramble":
        content = bytearray(good)
        content[8:] = bytes((b * 7 + 13) % 256 for b in content[8:])
        content = bytes(content)
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(content)
    (tmp_path / "bad.json").write_text(edge.card_path(model).read_text())
    src = write(tmp_path, ["u,g,r,i,z", GOOD])
    assert edge.main(["predict", "--model", str(bad), "--input", str(src)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.tflite" in err[0] and "Traceback" not in err[0]


def test_missing_card_is_an_error(model, tmp_path):
    lone = tmp_path / "lone.tflite"
    lone.write_bytes(model.read_bytes())
    with pytest.raises(edge.InputError, match="model card not found"):
        edge.EdgeClassifier(lone)


def test_predict_api_array_dataframe_and_domain(model):
    import pandas as pd
    clf = edge.EdgeClassifier(model)
    card = json.loads(edge.card_path(model).read_text())
    x = np.array([[float(v) for v in GOOD.split(",")], [35.0, 10.0, 19.0, 18.7, 18.5]])
    result = clf.predict(x)
    assert list(result.in_domain) == [True, False]
    frame = pd.DataFrame(x[:, ::-1], columns=["z", "i", "r", "g", "modelMag_u"])
    same = clf.predict(frame)
    np.testing.assert_allclose(same.probabilities, result.probabilities)
    # rows at the edges of the recorded ranges are inside; beyond them outside
    lo = [card["domain"]["columns"][c][0] for c in clf.columns]
    assert clf.in_domain(np.array([lo]) - 0.5).tolist() == [False]
    with pytest.raises(edge.InputError, match=r"row\(s\) 0 have missing"):
        clf.predict([[np.nan, 1, 2, 3, 4]])
    with pytest.raises(edge.InputError, match="expected rows of 5 values"):
        clf.predict([[1.0, 2.0]])


def test_training_rows_are_in_domain(model):
    from sdss_distill.export import RunData
    run = RunData(model.parent.parent)
    clf = edge.EdgeClassifier(model)
    assert clf.in_domain(run.x_train["photometric"]).all()
    assert clf.predict(run.x_test["photometric"]).in_domain.mean() > 0.95


def test_bench_command_runs(model, capsys):
    assert edge.main(["bench", "--model", str(model), "--invokes", "50", "--batch", "64",
                      "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["invokes"] == 50 and result["threads"] == 1 and result["machine"]["cpu"]


def test_edge_never_imports_tensorflow_keras_pandas_sklearn(model, tmp_path):
    src = write(tmp_path, ["u,g,r,i,z", GOOD])
    code = (
        "import sys, json\n"
        "import sdss_distill.edge as e\n"
        f"clf = e.EdgeClassifier({str(model)!r})\n"
        "clf.predict([[19.4, 17.0, 15.9, 15.5, 15.2]])\n"
        f"e.main(['predict', '--model', {str(model)!r}, '--input', {str(src)!r}])\n"
        "e.benchmark(clf.path, invokes=10, batch=8)\n"
        "heavy = ('tensorflow', 'keras', 'tf_keras', 'pandas', 'sklearn', 'scipy')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
