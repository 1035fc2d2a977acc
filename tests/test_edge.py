"""The TensorFlow-free edge runtime: predict on good and bad rows, errors, domain, imports."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sdss_distill.core.errors import EXIT_REJECTED
from sdss_distill.core.schema import LABELS
from sdss_distill.edge import classifier as edge
from sdss_distill.edge import cli as edge_cli
from sdss_distill.edge import csvio as edge_csv

ROOT = Path(__file__).resolve().parents[1]
GOOD = "19.47406,17.0424,15.94699,15.50342,15.22531"

pytestmark = pytest.mark.slow


def write(tmp_path, lines, name="objects.csv"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_predict_good_rows_writes_ids_classes_probabilities(model, tmp_path, capsys):
    src = write(tmp_path, ["objid,u,g,r,i,z,specobjid", f"11,{GOOD},21", f"12,{GOOD},22"])
    out = tmp_path / "out.csv"
    assert edge_cli.main(["predict", "--model", str(model), "--input", str(src),
                      "--output", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == ("row,objid,specobjid,class,p_GALAXY,p_QSO,p_STAR,in_domain,z_phot,"
                        "z_phot_err")  # the default student's redshift head
    rows = [line.split(",")[1:] for line in lines[1:]]
    assert [line.split(",")[0] for line in lines[1:]] == ["1", "2"]
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
    code = edge_cli.main(["predict", "--model", str(model), "--input", str(src)])
    out, err = capsys.readouterr()
    assert code == EXIT_REJECTED == 1
    assert [line.split(",")[:2] for line in out.splitlines()[1:]] == [["1", "1"], ["5", "5"]]
    assert "line 3: missing value in column 'u'" in err
    assert "line 4: sentinel -9999 (failed measurement) in column 'g'" in err
    assert "line 5: non-numeric value 'abc' in column 'g'" in err
    assert "line 7: malformed CSV record (3 fields where the header has 6)" in err
    assert "rejected 4 rows" in err


def test_missing_column_is_one_line_error(model, tmp_path, capsys):
    src = write(tmp_path, ["objid,u,g,r,i", "1,19,18,17,16"])
    assert edge_cli.main(["predict", "--model", str(model), "--input", str(src)]) == 2
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
    assert edge_cli.main(["predict", "--model", str(bad), "--input", str(src)]) == 2
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
    with pytest.raises(edge.InputError, match="expected rows of 5 values"):
        clf.predict([[1.0, 2.0]])


def test_training_rows_are_in_domain(model):
    from sdss_distill.export.source import RunData
    run = RunData(model.parent.parent)
    clf = edge.EdgeClassifier(model)
    assert clf.in_domain(run.x_train["photometric"]).all()
    assert clf.predict(run.x_test["photometric"]).in_domain.mean() > 0.95


def test_bench_command_runs(model, capsys):
    assert edge_cli.main(["bench", "--model", str(model), "--invokes", "50", "--batch", "64",
                      "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["invokes"] == 50 and result["threads"] == 1 and result["machine"]["cpu"]
    c = result["classifier"]  # predict against the raw calls: both measured, as ratios
    assert c["one_row_ratio"] == c["one_row_us"]["predict"] / c["one_row_us"]["raw"] > 0
    assert c["batch_rate_ratio"] == (c["batch_rows_per_s"]["predict"]
                                     / c["batch_rows_per_s"]["raw"]) > 0
    assert edge_cli.main(["bench", "--model", str(model), "--invokes", "50", "--batch", "64"]) == 0
    assert "x the raw time" in capsys.readouterr().out


def test_one_row_calls_equal_one_batch_call(model):
    """The one-row scalar path and the batch path give the same classes, logits, in-domain
    flags and (to rounding) probabilities, on training rows and on rows around the domain's
    bounds; a row count that changes between calls changes nothing."""
    from sdss_distill.export.source import RunData
    run = RunData(model.parent.parent)
    clf = edge.EdgeClassifier(model)
    x = run.x_test["photometric"][:300].astype(np.float64)
    lo, hi = (np.array([clf.domain["columns"][c][k] for c in clf.columns]) for k in (0, 1))
    near = np.concatenate([x[:40] + (hi - x[:40]) * 1.02, x[:40] - (x[:40] - lo) * 1.02])
    rows = np.concatenate([x, near, x[:5] * np.array([1, 1, 1, 1, 0])])  # z = 0: batch path
    batch = clf.predict(rows)
    kept = batch.logits.copy()  # later calls must not write into an earlier result
    assert 0 < batch.in_domain.mean() < 1 and batch.ok.all()
    assert list(batch.classes) == [LABELS[k] for k in batch.probabilities.argmax(axis=1)]
    assert (batch.in_domain == clf.in_domain(rows.astype(np.float32))).all()
    for k, row in enumerate(rows):
        one = clf.predict(row)
        assert one.classes[0] == batch.classes[k] and one.in_domain[0] == batch.in_domain[k]
        assert (one.logits[0] == batch.logits[k]).all()
        # float32 probabilities (as score's): the batch path's float32 exp(z - max) against
        # the one-row path's float64 rounded once, a few float32 ulps per unit of z - max
        assert np.allclose(one.probabilities[0], batch.probabilities[k], rtol=2e-6, atol=0)
        assert one.probabilities.dtype == batch.probabilities.dtype == np.float32
        assert one.quality[0] == "" and one.ok[0]
    assert (clf.predict(rows[:7]).logits == batch.logits[:7]).all()  # resized back and forth
    assert (batch.logits == kept).all()


def test_edge_never_imports_tensorflow_keras_pandas_sklearn(model, tmp_path):
    src = write(tmp_path, ["u,g,r,i,z", GOOD])
    code = (
        "import sys, json\n"
        "from sdss_distill.edge import EdgeClassifier, bench, cli\n"
        f"clf = EdgeClassifier({str(model)!r})\n"
        "clf.predict([[19.4, 17.0, 15.9, 15.5, 15.2]])\n"
        f"cli.main(['predict', '--model', {str(model)!r}, '--input', {str(src)!r}])\n"
        "bench.benchmark(clf.path, invokes=10, batch=8)\n"
        "heavy = ('tensorflow', 'keras', 'tf_keras', 'pandas', 'sklearn', 'scipy')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


# --- hostile values, join-back, streaming, and the error contract -------------------------

def test_hostile_values_are_flagged_not_classified(model):
    clf = edge.EdgeClassifier(model)
    good = [float(v) for v in GOOD.split(",")]
    x = np.array([good, [1e39, *good[1:]], [np.inf, *good[1:]], [np.nan, *good[1:]],
                  [-9999, *good[1:]], [45.0, *good[1:]], [1e308, *good[1:]]])
    result = clf.predict(x)
    assert result.ok.tolist() == [True] + [False] * 6
    assert list(result.quality[1:]) == [
        "value 1e+39 in column 'u' too large for float32", "non-finite value inf in column 'u'",
        "missing value in column 'u'", "sentinel -9999 (failed measurement) in column 'u'",
        "value 45 in column 'u' outside 0 to 40", "value 1e+308 in column 'u' too large for float32"]
    assert result.classes[0] in LABELS and set(result.classes[1:]) == {""}
    assert np.isfinite(result.probabilities[0]).all()
    assert np.isnan(result.probabilities[1:]).all() and not result.in_domain[1:].any()


def test_dataframe_with_two_names_for_one_column_is_refused(model):
    import pandas as pd
    clf = edge.EdgeClassifier(model)
    frame = pd.DataFrame([[19.0, 18.0, 17.0, 16.0, 15.0, 14.0]],
                         columns=["u", "g", "r", "i", "z", "U"])
    with pytest.raises(edge.InputError,
                       match=r"columns 'u' \(column 1\) and 'U' \(column 6\) both mean 'u'"):
        clf.predict(frame)


def _one_line_error(capsys, argv, message):
    code = edge_cli.main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert message in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("header, message", [
    ("objid,u,U,g,r,i,z", "columns 'u' (column 2) and 'U' (column 3) both mean 'u'"),
    ("objid,z,u,g,r,i,z", "columns 'z' (column 2) and 'z' (column 7) both mean 'z' "
                          "(if one is the redshift, rename it 'redshift')"),
    ("objid,modelMag_u,u,g,r,i,z", "columns 'modelMag_u' (column 2) and 'u' (column 3)"),
])
def test_ambiguous_columns_are_an_error_naming_both(model, tmp_path, capsys, header, message):
    src = write(tmp_path, [header, "1,0.1," + GOOD])
    out = tmp_path / "out.csv"
    _one_line_error(capsys, ["predict", "--model", str(model), "--input", str(src), "--output",
                             str(out)], message)
    assert not out.exists() and list(tmp_path.iterdir()) == [src]


def test_bom_and_skyserver_comment_line_are_read(model, tmp_path, capsys):
    src = tmp_path / "bom.csv"
    src.write_bytes(b"\xef\xbb\xbf#Table1\nobjid,u,g,r,i,z\n7," + GOOD.encode() + b"\n")
    assert edge_cli.main(["predict", "--model", str(model), "--input", str(src)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("row,objid,class") and out[1].startswith("1,7,")


def test_ids_pass_through_as_text_with_row_numbers_and_keep(model, tmp_path, capsys):
    src = write(tmp_path, ["objid,ra,u,g,r,i,z,specobjid,note",
                           f"1237648720693755918,183.53,{GOOD},3.72E+18,a",
                           "",
                           "0012,1.0,19,abc,17,16,15,x,b",
                           f'"00013",2.0,{GOOD},y,"c, d"'])
    out = tmp_path / "out.csv"
    assert edge_cli.main(["predict", "--model", str(model), "--input", str(src), "--output", str(out),
                      "--keep", "ra,note"]) == 1
    import csv
    rows = list(csv.reader(out.open()))
    assert rows[0][:5] == ["row", "objid", "specobjid", "ra", "note"]
    assert [r[:5] for r in rows[1:]] == [["1", "1237648720693755918", "3.72E+18", "183.53", "a"],
                                         ["3", "00013", "y", "2.0", "c, d"]]
    assert "line 4: non-numeric value 'abc' in column 'g'; row skipped" in capsys.readouterr().err


def test_streaming_in_small_chunks_gives_the_same_file(model, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(14, 22, (23, 5))
    lines = ["objid,u,g,r,i,z"] + [f"{k}," + ",".join(f"{v:.4f}" for v in r) for k, r in enumerate(x)]
    lines[7] = "6,,1,2,3,4"
    src = write(tmp_path, lines)
    outs = []
    for size in (3, 1000):
        out = tmp_path / f"out{size}.csv"
        assert edge_csv.predict_csv(model, src, out, chunk_rows=size) == 1
        outs.append(out.read_text())
    assert outs[0] == outs[1] and outs[0].count("\n") == 1 + 22


def test_output_mode_follows_umask(model, tmp_path):
    src = write(tmp_path, ["u,g,r,i,z", GOOD])
    old = os.umask(0o027)
    try:
        assert edge_cli.main(["predict", "--model", str(model), "--input", str(src), "--output",
                          str(tmp_path / "p.csv")]) == 0
    finally:
        os.umask(old)
    assert (tmp_path / "p.csv").stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("case, message", [
    ("missing_dir", "does not exist; create it first"),
    ("onto_dir", "is a directory; name a file"),
])
def test_unusable_output_is_refused_before_work(model, tmp_path, capsys, case, message):
    src = write(tmp_path, ["u,g,r,i,z", GOOD])
    target = tmp_path / "nowhere" / "p.csv" if case == "missing_dir" else tmp_path
    before = sorted(tmp_path.iterdir())
    _one_line_error(capsys, ["predict", "--model", str(model), "--input", str(src), "--output",
                             str(target)], message)
    assert sorted(tmp_path.iterdir()) == before


def test_bad_bytes_mid_file_leave_no_output(model, tmp_path, capsys):
    src = tmp_path / "latin1.csv"
    good = "\n".join(["u,g,r,i,z", *[GOOD] * 5]) + "\n"
    src.write_bytes(good.encode() + b"19,18,17,16,15 \xe9toile\n")
    out = tmp_path / "p.csv"
    _one_line_error(capsys, ["predict", "--model", str(model), "--input", str(src), "--output",
                             str(out)], "not UTF-8 text")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latin1.csv"]


def test_field_over_128_kib_is_one_line(model, tmp_path, capsys):
    src = write(tmp_path, ["objid,u,g,r,i,z", f"{'9' * 200_000},{GOOD}"])
    _one_line_error(capsys, ["predict", "--model", str(model), "--input", str(src)],
                    "line 2: a field longer than the csv limit of 128 KiB")


@pytest.fixture
def model_copy(model, tmp_path):
    """The model, its card and labels.txt in a directory a test may damage."""
    d = tmp_path / "m"
    d.mkdir()
    for f in (model, edge.card_path(model), model.parent / edge.LABELS_FILE):
        (d / f.name).write_bytes(f.read_bytes())
    return d / model.name


@pytest.mark.parametrize("damage, message", [
    (lambda m: (m.parent / "labels.txt").write_bytes(b"GALAXY\nQSO\n\xff\xfeSTAR\n"),
     "labels.txt: not UTF-8 text"),
    (lambda m: edge.card_path(m).write_text('{"labels": ["GALAXY", "QSO", "STAR"]}'),
     "model card lacks 'input.columns'"),
    (lambda m: edge.card_path(m).write_text('{"input": {"columns": "ugriz"}}'),
     "'input.columns' must be a list of column names"),
    (lambda m: edge.card_path(m).write_text('{"input": '), "student_int8.json: corrupt JSON (line 1"),
    (lambda m: m.write_bytes(m.read_bytes()[:-1] + b"\0"), "SHA-256 differs from the one in its card"),
])
def test_damaged_model_files_are_one_line(model_copy, tmp_path, capsys, damage, message):
    damage(model_copy)
    src = write(tmp_path, ["u,g,r,i,z", GOOD])
    line = _one_line_error(capsys, ["predict", "--model", str(model_copy), "--input", str(src)],
                           message)
    assert str(model_copy.parent) in line
