"""Issue 15, edge cases 3, 4, 7, 9 and 10: every row accounted, bounded reads, verified models."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sdss_distill.edge import classifier as edge
from sdss_distill.edge import cli as edge_cli
from sdss_distill.edge.reader import parse_record

ROOT = Path(__file__).resolve().parents[1]
GOOD = "19.47406,17.0424,15.94699,15.50342,15.22531"

pytestmark = pytest.mark.slow


def _cli(*argv, stdin=None, timeout=120, input_bytes=None):
    return subprocess.run([sys.executable, "-m", "sdss_distill.edge", *argv], cwd=ROOT,
                          capture_output=True, timeout=timeout, stdin=stdin, input=input_bytes)


def _one_line(capsys, argv, message):
    code = edge_cli.main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err and len(lines[0]) <= 300, err
    assert message in lines[0], lines[0]
    return lines[0]


def test_parse_record_one_line_only():
    assert parse_record("a,b,c") == (["a", "b", "c"], "")
    assert parse_record('a,"b, c",d') == (["a", "b, c", "d"], "")
    assert parse_record('1,"19.4,17') == ([], "a quoted field that never closes")


def test_unclosed_quote_is_a_rejected_row_and_later_rows_are_classified(model, tmp_path, capsys):
    """Case 3: a field opening a quote that never closes no longer swallows the rows after it."""
    src = tmp_path / "q.csv"
    src.write_text("\n".join(["objid,u,g,r,i,z", f"1,{GOOD}", f'2,"19.4,{GOOD[6:]}',
                              f"3,{GOOD}", f"4,{GOOD},99", f"5,{GOOD}"]) + "\n")
    out = tmp_path / "p.csv"
    code = edge_cli.main(["predict", "--model", str(model), "--input", str(src), "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert "line 3: malformed CSV record (a quoted field that never closes)" in err
    assert "line 5: malformed CSV record (7 fields where the header has 6)" in err
    assert "read 5 rows: classified 3 rows" in err and "rejected 2 rows" in err
    rows = list(csv.reader(out.open()))[1:]
    assert [r[1] for r in rows] == ["1", "3", "5"]


def test_dev_zero_is_one_line_in_bounded_memory(model):
    """Case 4: a first 'line' that never ends: exit 2 after 1 MiB, no MemoryError traceback."""
    started = time.monotonic()
    proc = _cli("predict", "--model", str(model), "--input", "/dev/zero", timeout=60)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and "Traceback" not in err, err
    assert "line 1: longer than 1 MiB" in err and len(err.strip().splitlines()) == 1
    assert time.monotonic() - started < 60


@pytest.mark.parametrize("name", ["-", "/dev/stdin"])
def test_stdin_streams(model, name):
    """Case 4: standard input (a pipe) is read, never seeked: no io.UnsupportedOperation."""
    data = ("#Table1\nobjid,u,g,r,i,z\n" + "".join(f"{k},{GOOD}\n" for k in range(5))).encode()
    proc = _cli("predict", "--model", str(model), "--input", name, input_bytes=data)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().count("\n") == 6
    assert "read 5 rows: classified 5 rows" in proc.stderr.decode()


def test_fifo_input_streams(model, tmp_path):
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)

    def feed():
        with open(fifo, "w") as f:
            f.write("u,g,r,i,z\n" + f"{GOOD}\n" * 3)

    threading.Thread(target=feed, daemon=True).start()
    proc = _cli("predict", "--model", str(model), "--input", str(fifo))
    assert proc.returncode == 0 and proc.stdout.decode().count("\n") == 4, proc.stderr.decode()


def test_sigkilled_predict_temp_file_is_cleaned_by_the_next_run(model, tmp_path):
    """Case 10: a SIGKILLed `--output` leaves its hidden temp file; the next run removes it."""
    fifo, out = tmp_path / "in.fifo", tmp_path / "p.csv"
    os.mkfifo(fifo)
    proc = subprocess.Popen([sys.executable, "-m", "sdss_distill.edge", "predict", "--model",
                             str(model), "--input", str(fifo), "--output", str(out)], cwd=ROOT,
                            stderr=subprocess.PIPE)
    writer = open(fifo, "w")  # noqa: SIM115 - held open so the reader blocks mid-file
    try:
        writer.write("u,g,r,i,z\n" + f"{GOOD}\n" * 10)
        writer.flush()
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".p.csv.*")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert list(tmp_path.glob(".p.csv.*")), "no temp file appeared"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        writer.close()
    assert list(tmp_path.glob(".p.csv.*")) and not out.exists()
    src = tmp_path / "ok.csv"
    src.write_text(f"u,g,r,i,z\n{GOOD}\n")
    assert edge_cli.main(["predict", "--model", str(model), "--input", str(src), "--output",
                      str(out)]) == 0
    assert not list(tmp_path.glob(".p.csv.*")) and out.is_file()


@pytest.fixture
def loose(model, tmp_path):
    """The model, its card and labels.txt copied out of the run (a loose model)."""
    d = tmp_path / "m"
    d.mkdir()
    for f in (model, edge.card_path(model), model.parent / edge.LABELS_FILE):
        shutil.copy(f, d / f.name)
    return d / model.name


def _edit_card(m: Path, change) -> None:
    card = json.loads(edge.card_path(m).read_text())
    change(card)
    edge.card_path(m).write_text(json.dumps(card))


@pytest.mark.parametrize("change, message", [
    (lambda c: c["domain"]["columns"].update(u=5), "'domain.columns.u' must be [min, max]"),
    (lambda c: c["domain"]["colours"].update({"u-q": [0, 1]}), "'domain.colours' names 'u-q'"),
    (lambda c: c.update(domain={"columns": "x"}), "'domain.columns' must be a mapping"),
    (lambda c: c["input"]["columns"].append("redshift"), "u, g, r, i, z, redshift are not view"),
    (lambda c: c["input"].update(name="physical", columns=[*"ugriz", "redshift"]),
     "lists 6 input columns but the model takes 5"),
    (lambda c: c.update(input="ugriz"), "lacks 'input.columns'"),
    (lambda c: c.pop("sha256"), "the card has no 'sha256'"),
    (lambda c: c["input"].update(columns=["g", "u", "r", "i", "z"]), "not view 'photometric'"),
    (lambda c: c.update(source={"run_id": None}), "names no run"),
    # issue 23 case 8: no view, or an unknown one, and the columns reordered z i r g u
    (lambda c: (c["input"].pop("name"), c["input"].update(columns=[*"zirgu"])),
     "'input.name' is missing"),
    (lambda c: c["input"].update(name="mine", columns=[*"zirgu"]),
     "'input.name' is 'mine', not a view of this package"),
])
def test_malformed_or_unverifiable_card_is_one_line(loose, tmp_path, capsys, change, message):
    """Cases 7 and 9 with a loose model: malformed domain, sixth column, no hash, reordered
    columns, no run id: all refused in one line, in predict and in bench."""
    _edit_card(loose, change)
    src = tmp_path / "in.csv"
    src.write_text(f"u,g,r,i,z\n{GOOD}\n")
    _one_line(capsys, ["predict", "--model", str(loose), "--input", str(src)], message)
    if "sha256" not in message and "run" not in message:
        _one_line(capsys, ["bench", "--model", str(loose), "--invokes", "5", "--batch", "4"], "")


@pytest.fixture
def version_copy(model, tmp_path):
    """A copy of the exported run's current version (same directory name: same run id)."""
    real = model.resolve().parent.parent
    dst = tmp_path / "runs" / real.name
    shutil.copytree(real, dst)
    return dst


def test_model_inside_a_run_is_checked_against_the_manifest(version_copy, loose, tmp_path, capsys):
    """Case 9: another run's .tflite (and card) copied into a run; a card edited in place."""
    src = tmp_path / "in.csv"
    src.write_text(f"u,g,r,i,z\n{GOOD}\n")
    target = version_copy / "tflite" / "student_int8.tflite"
    assert edge_cli.main(["predict", "--model", str(target), "--input", str(src)]) == 0
    capsys.readouterr()
    other = version_copy / "tflite" / "student_float32.tflite"
    for f in (other, edge.card_path(other)):  # another model, with ITS card, under this name
        os.chmod(f.with_name(f.name.replace("student_float32", "student_int8")), 0o644)
        shutil.copy(f, f.with_name(f.name.replace("student_float32", "student_int8")))
    _one_line(capsys, ["predict", "--model", str(target), "--input", str(src)],
              "SHA-256 differs from the run's manifest.json")
    shutil.copy(loose, target)
    _edit_card(target, lambda c: c["input"].update(columns=["g", "u", "r", "i", "z"]))
    _one_line(capsys, ["predict", "--model", str(target), "--input", str(src)], "")
    stray = version_copy / "tflite" / "extra.tflite"
    shutil.copy(loose, stray)
    shutil.copy(edge.card_path(loose), edge.card_path(stray))
    _one_line(capsys, ["predict", "--model", str(stray), "--input", str(src)],
              "not in the run's manifest.json")


def test_every_line_accounted_for(model, tmp_path, capsys):
    """Issue 23 case 7: `,,,` lines are rejected rows with their line number, never skipped
    silently; a blank line is counted and named; a lone CR and a quoted newline are one record
    each (numbered by their first line), so later line numbers stay right."""
    from tests.test_error_table_writes import ROWS_7
    src, out = tmp_path / "in.csv", tmp_path / "p.csv"
    src.write_bytes("\n".join(ROWS_7).encode() + b"\n")
    code = edge_cli.main(["predict", "--model", str(model), "--input", str(src), "--output",
                          str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert "line 3: missing value in column 'u'" in err
    assert "line 4: malformed CSV record (4 fields where the header has 6)" in err
    assert "line 7: malformed CSV record (5 fields where the header has 6)" in err
    assert "read 7 rows: classified 4 rows" in err
    assert "rejected 3 rows; skipped 1 blank line(s) (5)" in err
    assert [r[1] for r in list(csv.reader(out.open()))[1:]] == ["1", "5", "7", "8"]


def test_makefile_is_not_an_empty_file(model, capsys):
    """Issue 23 case 12: a `#` line then a blank line, then text: the missing columns are
    named, not "empty file"."""
    _one_line(capsys, ["predict", "--model", str(model), "--input", str(ROOT / "Makefile")],
              "missing column(s) u, g, r, i, z needed by the model")
