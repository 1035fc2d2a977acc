"""Issue 15, cases 10 and 11 (train): too few classes refused before training, long values
cut in error lines, non-regular --data named as such, Parquet known by its magic bytes, one
large Parquet file streamed."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from sdss_distill.core.errors import InputError
from sdss_distill.data import stream
from sdss_distill.data.datasets import resolve
from sdss_distill.data.table import load_table
from sdss_distill.train import main as train_main
from tests.conftest import row


def _one_line(capsys, argv, message):
    code = train_main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err and len(lines[0]) <= 300, err
    assert message in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("rows, message", [
    ([row("STAR", u=19 + k / 100) for k in range(60)], "need at least 10 rows of each class"),
    ([row(c, u=19 + k / 100) for k in range(30) for c in ("STAR", "GALAXY")]
     + [row("QSO", u=19 + k / 100) for k in range(4)], "'QSO': 4"),
])
def test_too_few_classes_refused_before_training(write_csv, tmp_path, capsys, rows, message):
    """Case 10: a one-class table (or a class too small to split) writes no run, exit 2."""
    src = write_csv(rows)
    out = tmp_path / "run"
    _one_line(capsys, ["--data", str(src), "--out", str(out), "--quiet"], message)
    assert not out.exists() and not (tmp_path / ".run.runs").exists()


def test_huge_value_is_cut_in_the_error_line(write_csv, tmp_path, capsys):
    """Case 10: a 200 KB value is not echoed whole: the line stays under 300 characters."""
    src = write_csv([row(u="x" * 200_000)] + [row()] * 5)
    line = _one_line(capsys, ["--data", str(src), "--out", str(tmp_path / "run"), "--quiet"],
                     "non-numeric value")
    assert "chars)..." in line and str(src) in line


def test_fifo_and_device_data_are_named_not_missing(tmp_path, capsys):
    """Case 10: --data a FIFO or /dev/zero says what it is, not 'no such file'."""
    fifo = tmp_path / "table.fifo"
    os.mkfifo(fifo)
    _one_line(capsys, ["--data", str(fifo), "--out", str(tmp_path / "run"), "--quiet"],
              "a FIFO (named pipe), not a regular file")
    with pytest.raises(InputError, match="a character device, not a regular file"):
        resolve("/dev/zero")


def test_parquet_without_suffix_is_read_as_parquet(tmp_path, real_table):
    """Case 11: a Parquet file is known by its magic bytes, not its name."""
    df = load_table(real_table).head(50)
    path = tmp_path / "table.dat"
    df.to_parquet(path)
    back = load_table(path)
    assert len(back) == 50 and list(back["u"]) == list(df["u"])


def test_single_large_parquet_streams(tmp_path, real_table, monkeypatch):
    """Case 11: one Parquet file above the threshold is streamed like a directory."""
    df = pd.read_parquet(real_table)
    for c in ("objid", "specobjid"):  # the hash split needs integer ids (the table has text)
        df[c] = df[c].astype("float64").astype("uint64")
    path = tmp_path / "big.bin"  # any name
    df.to_parquet(path, row_group_size=1000)
    assert not stream.is_stream_source(str(path))  # small: loaded whole
    monkeypatch.setattr(stream, "STREAM_FILE_BYTES", 1000)
    assert stream.is_stream_source(str(path))
    assert stream.find_parquet(str(path)) == [path]
    source = stream.ParquetSource(str(path), ("u", "g", "r", "i", "z"))
    assert source.rows == len(df) and len(source.row_groups) == 10
    csv_copy = tmp_path / "big.csv"
    df.to_csv(csv_copy, index=False)
    assert not stream.is_stream_source(str(csv_copy))  # a large CSV is not Parquet


def _folder_named(tmp_path, name: str, rows: int = 300):
    """./NAME/ holding one Parquet table of SIMULATED rows, as a user's folder might."""
    from sdss_distill.data.synth import write_catalogue
    (tmp_path / name).mkdir()
    write_catalogue(tmp_path / name / "part.parquet", rows, seed=1)


def test_dataset_name_wins_over_a_folder_of_that_name(tmp_path, monkeypatch):
    """Issue 23 case 4: with a folder ./faint/ of Parquet files in the working directory,
    `faint` still names the packaged dataset (never streamed), and `./faint` the folder."""
    monkeypatch.chdir(tmp_path)
    _folder_named(tmp_path, "faint")
    assert not stream.is_stream_source("faint") and resolve("faint").kind == "dataset"
    assert stream.is_stream_source("./faint") and resolve("./faint").kind == "stream"


@pytest.mark.slow
def test_train_on_a_dataset_name_beside_a_folder_of_that_name(tmp_path, monkeypatch, capsys):
    """Issue 23 case 4, end to end: `train --data bright` with ./bright/ present trains on the
    packaged table (its digest recorded), not on the folder's 300 rows."""
    from sdss_distill.data.datasets import dataset_digest
    monkeypatch.chdir(tmp_path)
    _folder_named(tmp_path, "bright")
    assert train_main(["--data", "bright", "--rows", "1000", "--epochs", "1", "--out", "run",
                       "--quiet"]) == 0
    report = json.loads((tmp_path / "run" / "reports" / "report.json").read_text())
    assert report["data"]["sha256"] == dataset_digest("bright")
    assert "streamed" not in capsys.readouterr().err


def test_train_and_score_read_the_same_parquet_files(tmp_path):
    """Issue 21 item 4: one discovery rule for `train --data DIR/` and `score --input DIR/`:
    recursive, .parquet and .pq, hidden entries (temp files, `_metadata`) and the app's own
    score outputs skipped."""
    from sdss_distill.core.io import mark_dir
    from sdss_distill.data.synth import write_catalogue
    from sdss_distill.score.parts import input_files
    d = tmp_path / "cat"
    for rel in ("a.parquet", "b.pq", "year=2020/c.parquet", ".tmp/d.parquet", "_meta/e.parquet",
                ".f.parquet.123.deadbeef.tmp"):
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        write_catalogue(d / rel, 20, seed=0)
    (d / "notes.txt").write_text("not a table")
    write_catalogue(d / "scored" / "a.part00000.parquet", 20, seed=0)  # a score output in it
    mark_dir(d / "scored", "score")
    want = [d / "a.parquet", d / "b.pq", d / "year=2020" / "c.parquet"]
    assert stream.find_parquet(str(d)) == want == input_files(str(d))
    assert resolve(str(d)).files == tuple(want)


@pytest.mark.slow
def test_train_and_score_commands_read_a_directory_alike(tmp_path, model, capsys):
    """Issue 21 item 4, through the commands: `train --data D/` and `score --input D/` read
    the same three files of D (a .parquet, a .pq, a nested Hive-style part), and neither
    reads the hidden file or the text file beside them."""
    import pyarrow.parquet as pq

    from sdss_distill.data.synth import write_catalogue
    from sdss_distill.score.cli import main as score_main
    d = tmp_path / "cat"
    for k, rel in enumerate(("a.parquet", "b.pq", "year=2020/c.parquet", ".hidden.parquet")):
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        write_catalogue(d / rel, 1000, seed=k)
    (d / "notes.txt").write_text("not a table")
    assert train_main(["--data", f"{d}/", "--method", "offline", "--epochs", "1",
                       "--out", str(tmp_path / "run")]) == 0
    assert "3 Parquet file(s), 3,000 rows" in capsys.readouterr().err
    out = tmp_path / "scored"
    assert score_main(["--model", str(model), "--input", f"{d}/", "--output", str(out),
                       "--workers", "1", "--quiet"]) in (0, 1)  # 1: some SIMULATED rows flagged
    parts = sorted(out.rglob("*.parquet"))
    assert sum(pq.read_metadata(p).num_rows for p in parts) == 3000
    assert {p.name.split(".part")[0] for p in parts} == {"a", "b", "year=2020__c"}
