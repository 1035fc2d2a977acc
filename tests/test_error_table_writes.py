"""Issue 23 cases 1-5, 7 and 8 ("Writes and rows" in docs/design/error-contract.md), one row
each: the command, its exit code, the one line it prints, and what must stay untouched.

Every row runs the command's own `main(argv)` in this process on tiny files made here; the
refusals come before any model is loaded or any request sent, so the rows are fast. (The
same cases with a real model, a real HATS catalogue and real predictions are in
tests/test_safety_edge.py, test_safety_score.py, test_safety_fetch.py and test_hats_io.py.)
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sdss_distill.core.io import OWNER_FILE
from sdss_distill.core.schema import BANDS
from sdss_distill.data import cli as data_cli
from sdss_distill.edge import cli as edge_cli
from sdss_distill.score import cli as score_cli
from sdss_distill.sweep.cli import main as experiment_main
from sdss_distill.train import main as train_main

ROOT = Path(__file__).resolve().parents[1]
NOWHERE = "http://127.0.0.1:9"  # nothing listens there: a row that sent a request would fail
CSV = "objid,u,g,r,i,z\n1,19.4,17.0,15.9,15.5,15.2\n"


def _parquet(path: Path, n: int = 20) -> Path:
    rng = np.random.default_rng(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({b: rng.uniform(15, 20, n) for b in BANDS}), path)
    return path


def _fingerprint(path: Path) -> dict:
    """What a refused command must leave as it was: every entry's kind and bytes."""
    if not path.is_dir():
        mode = os.lstat(path).st_mode
        return {".": (stat.S_IFMT(mode), path.read_bytes() if stat.S_ISREG(mode) else b"")}
    return {str(p.relative_to(path)): (stat.S_IFMT(os.lstat(p).st_mode),
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "")
            for p in sorted(path.rglob("*"))}


def _device(path: Path) -> Path:
    """A character device made here (a copy of /dev/null's numbers): only as root."""
    if os.geteuid() != 0:
        pytest.skip("mknod of a character device needs root; the FIFO rows cover non-root")
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    return path


@dataclass
class Row:
    case: str
    main: object
    exit: int
    line: str  # a substring of the one line printed on stderr


def edge_output_fifo(d):
    os.mkfifo(d / "out.csv")
    (d / "in.csv").write_text(CSV)
    return ["predict", "--model", str(d / "m.tflite"), "--input", str(d / "in.csv"),
            "--output", str(d / "out.csv")], d / "out.csv"


def edge_output_device(d):
    _device(d / "full")
    (d / "in.csv").write_text(CSV)
    return ["predict", "--model", str(d / "m.tflite"), "--input", str(d / "in.csv"),
            "--output", str(d / "full")], d / "full"


def edge_output_is_input(d):
    (d / "in.csv").write_text(CSV)
    return ["predict", "--model", str(d / "m.tflite"), "--input", str(d / "in.csv"),
            "--output", str(d / "in.csv")], d / "in.csv"


def edge_output_links_to_input(d):
    (d / "in.csv").write_text(CSV)
    (d / "link.csv").symlink_to(d / "in.csv")
    return ["predict", "--model", str(d / "m.tflite"), "--input", str(d / "in.csv"),
            "--output", str(d / "link.csv")], d / "in.csv"


def edge_output_symlink(d):
    (d / "in.csv").write_text(CSV)
    (d / "mine.csv").write_text("keep me\n")
    (d / "out.csv").symlink_to("mine.csv")
    return ["predict", "--model", str(d / "m.tflite"), "--input", str(d / "in.csv"),
            "--output", str(d / "out.csv")], d / "out.csv"


def _fetch(out: Path) -> list[str]:
    return ["fetch", "--rows", "10", "--base-url", NOWHERE, "--retries", "0", "--quiet",
            "--out", str(out)]


def fetch_out_fifo(d):
    os.mkfifo(d / "f.parquet")
    return _fetch(d / "f.parquet"), d / "f.parquet"


def fetch_out_device(d):
    return _fetch(_device(d / "full")), d / "full"


def fetch_users_partial(d):
    (d / "f.parquet.partial").mkdir()
    (d / "f.parquet.partial" / "notes.txt").write_text("mine\n")
    return _fetch(d / "f.parquet"), d / "f.parquet.partial"


def _score(d, src, out) -> list[str]:
    (d / "m.tflite").write_bytes(b"not read: the output is refused first")
    return ["--model", str(d / "m.tflite"), "--input", str(src), "--output", str(out),
            "--workers", "1", "--quiet"]


def score_onto_other_hats(d):
    other = d / "other_hats"
    (other / "dataset" / "Norder=0" / "Dir=0").mkdir(parents=True)
    (other / "hats.properties").write_text("dataset_type=object\n")
    _parquet(other / "dataset" / "Norder=0" / "Dir=0" / "Npix=4.parquet")
    return _score(d, _parquet(d / "in.parquet"), other), other


def score_output_is_input_dir(d):
    _parquet(d / "cat" / "a.parquet")
    return _score(d, d / "cat", d / "cat"), d / "cat"


def score_output_inside_input_dir(d):
    _parquet(d / "cat" / "a.parquet")
    return _score(d, d / "cat", d / "cat" / "scored"), d / "cat"


def score_output_holds_input(d):
    _parquet(d / "out" / "a.parquet")
    return _score(d, d / "out" / "a.parquet", d / "out"), d / "out"


def score_output_users_dir(d):
    (d / "mine").mkdir()
    (d / "mine" / "notes.txt").write_text("mine\n")
    return _score(d, _parquet(d / "in.parquet"), d / "mine"), d / "mine"


def train_out_fifo(d):
    os.mkfifo(d / "run")
    return ["--data", "bright", "--out", str(d / "run"), "--quiet"], d / "run"


def train_out_inside_data(d):
    _parquet(d / "cat" / "a.parquet")
    return ["--data", str(d / "cat"), "--out", str(d / "cat" / "run"), "--quiet"], d / "cat"


def experiment_out_fifo(d):
    os.mkfifo(d / "sweep")
    return ["--preset", "hinton", "--out", str(d / "sweep"), "--quiet"], d / "sweep"


def experiment_out_users_dir(d):
    (d / "mine").mkdir()
    (d / "mine" / "summary.md").write_text("my notes\n")
    return ["--preset", "hinton", "--out", str(d / "mine"), "--quiet"], d / "mine"


ROWS = {
    "1 score --output another HATS catalogue": (
        Row("1", score_cli.main, 2, "a HATS catalogue the app did not write"),
        score_onto_other_hats),
    "2 edge predict --output FIFO": (
        Row("2", edge_cli.main, 2, "a FIFO (named pipe), not a regular file"), edge_output_fifo),
    "2 edge predict --output char device": (
        Row("2", edge_cli.main, 2, "a character device, not a regular file"), edge_output_device),
    "2 edge predict --output a symlink (as /dev/stdout is)": (
        Row("2", edge_cli.main, 2, "a symbolic link (to mine.csv)"), edge_output_symlink),
    "2 data fetch --out FIFO": (
        Row("2", data_cli.main, 2, "a FIFO (named pipe), not a regular file"), fetch_out_fifo),
    "2 data fetch --out char device": (
        Row("2", data_cli.main, 2, "a character device, not a regular file"), fetch_out_device),
    "3 data fetch --out with a user's .partial/": (
        Row("3", data_cli.main, 2, "exists without the state.json a fetch writes"),
        fetch_users_partial),
    "5 edge predict --output = --input": (
        Row("5", edge_cli.main, 2, "is this command's input"), edge_output_is_input),
    "5 edge predict --output links to --input": (
        Row("5", edge_cli.main, 2, "is this command's input"), edge_output_links_to_input),
    "5 score --output = Parquet input dir": (
        Row("5", score_cli.main, 2, "overlaps this command's input"), score_output_is_input_dir),
    "5 score --output inside the input dir": (
        Row("5", score_cli.main, 2, "overlaps this command's input"),
        score_output_inside_input_dir),
    "5 score --output holds the input": (
        Row("5", score_cli.main, 2, "overlaps this command's input"), score_output_holds_input),
    "1 score --output a user's directory": (
        Row("1", score_cli.main, 2, f"the app did not create (no {OWNER_FILE})"),
        score_output_users_dir),
    "2 train --out FIFO": (Row("2", train_main, 2, "exists and is not a directory"),
                           train_out_fifo),
    "5 train --out inside its --data directory": (
        Row("5", train_main, 2, "overlaps this command's input"), train_out_inside_data),
    "2 experiment --out FIFO": (Row("2", experiment_main, 2, "a FIFO (named pipe), not a "
                                    "directory"), experiment_out_fifo),
    "1 experiment --out a user's directory": (
        Row("1", experiment_main, 2, f"the app did not create (no {OWNER_FILE})"),
        experiment_out_users_dir),
}


@pytest.mark.parametrize("name", list(ROWS))
def test_case(name, tmp_path, capsys, monkeypatch):
    row, make = ROWS[name]
    monkeypatch.chdir(tmp_path)  # relative paths: lines short enough to hold every word
    argv, target = make(Path("."))
    before = _fingerprint(target)
    code = row.main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == row.exit, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert row.line in lines[0], lines[0]
    assert _fingerprint(target) == before  # the target is untouched


# -- case 7: every input line accounted for, numbered as the CSV dialect reads it -------------

ROWS_7 = [
    "objid,u,g,r,i,z",                      # line 1
    "1,19.4,17.0,15.9,15.5,15.2",           # 2: a row
    ",,,,,",                                # 3: an empty record: a row of missing values
    ",,,",                                  # 4: wrong field count: rejected
    "",                                     # 5: blank: counted and named
    '5,"19.4",17.0,15.9,15.5,15.2\r',       # 6: CRLF ending
    "6,19.4,17.0\r15.9,15.5,15.2",          # 7: a lone CR is data: one malformed record
    '7,"19.4\n",17.0,15.9,15.5,15.2',       # 8-9: a quoted newline: one record
    "8,19.4,17.0,15.9,15.5,15.2",           # 10
]


def test_case_7_edge_accounts_for_every_line(tmp_path):
    from sdss_distill.edge.csvio import CsvInput
    src = tmp_path / "in.csv"
    src.write_bytes("\n".join(ROWS_7).encode() + b"\n")
    source = CsvInput(src, tuple(BANDS))
    records = [(int(line), err) for c in source.chunks() for line, err in zip(c.lines, c.errors)]
    assert [line for line, _ in records] == [2, 3, 4, 6, 7, 8, 10]
    why = dict(records)
    assert why[2] == why[6] == why[8] == why[10] == ""
    assert why[3] == ""  # the header's 6 fields, all empty: predict rejects it as missing values
    assert why[4] == "malformed CSV record (4 fields where the header has 6)"
    assert why[7] == "malformed CSV record (5 fields where the header has 6)"
    assert source.blank_lines == [5]


def test_case_7_edge_empty_record_is_a_rejected_row(tmp_path):
    from sdss_distill.edge.csvio import CsvInput
    src = tmp_path / "in.csv"
    src.write_text("u,g,r,i,z\n,,,,\n19.4,17.0,15.9,15.5,15.2\n")
    (chunk,) = CsvInput(src, tuple(BANDS)).chunks()
    assert list(chunk.lines) == [2, 3] and np.isnan(chunk.x[0]).all()


def test_case_7_unclosed_quote_still_rejects_only_its_line(tmp_path):
    from sdss_distill.edge.csvio import CsvInput
    src = tmp_path / "in.csv"
    src.write_text("u,g,r,i,z\n" + '"19.4,17.0,15.9,15.5,15.2\n' + "19.4,17.0,15.9,15.5,15.2\n" * 3)
    records = [(int(line), err) for c in CsvInput(src, tuple(BANDS)).chunks()
               for line, err in zip(c.lines, c.errors)]
    assert records[0] == (2, "malformed CSV record (a quoted field that never closes)")
    assert [line for line, err in records[1:] if not err] == [3, 4, 5]


def test_case_7_train_accounts_for_every_line(tmp_path):
    from sdss_distill.core.schema import get_view
    from sdss_distill.data.table import clean, load_table, where
    from tests.conftest import HEADER, row
    rows = [row(), ",,,", "", row("GALAXY", redshift=0.1), f'{row()[:-3]}"4\n91"',
            row("QSO", u="x" + "\r" + "19")]
    src = tmp_path / "t.csv"
    src.write_text("#Table1\n\n" + HEADER + "\n" + "\n".join(rows) + "\n")
    df = load_table(src)
    assert len(df) == 6  # six records below the header on lines 4-10
    assert [where(df, k).rsplit(" ", 1)[1] for k in range(6)] == ["4", "5", "6", "7", "8", "10"]
    with pytest.raises(Exception, match=r"line 10: column 'u' has non-numeric value"):
        clean(df, get_view("photometric"))
    _, report = clean(df.iloc[:5], get_view("photometric"))
    assert report.rows_read == 5 and report.rows_kept == 3
    assert report.dropped["blank line or empty record"] == 2
    assert report.examples["blank line or empty record"].endswith("t.csv line 5")


def test_case_7_train_names_the_file_line_of_a_long_record(tmp_path):
    """A record with more fields than the header stops train (exit 2) naming its file line,
    counted from the top of the file (comment and header lines included)."""
    from sdss_distill.core.errors import InputError
    from sdss_distill.data.table import load_table
    from tests.conftest import HEADER, row
    src = tmp_path / "t.csv"
    src.write_text("#Table1\n\n" + HEADER + "\n" + row() + "\n" + row() + ",1,2\n")
    with pytest.raises(InputError, match=r"Expected 18 fields in line 5, saw 20"):
        load_table(src)


# -- case 12 (edge): a `#` line then a blank line is not "an empty file" -----------------------

def test_case_12_makefile_names_the_real_problem(tmp_path):
    from sdss_distill.core.errors import InputError
    from sdss_distill.edge.csvio import CsvInput
    src = tmp_path / "Makefile"
    src.write_text("# build\n\nall:\n\tpython -m build\n")
    with pytest.raises(InputError, match=r"Makefile: missing column\(s\) u, g, r, i, z needed "
                                         r"by the model; found all:"):
        CsvInput(src, tuple(BANDS))
    src.write_text("# only a comment\n\n")
    with pytest.raises(InputError, match=r"no header line: its 2 line\(s\) are all blank or "
                                         r"comments"):
        CsvInput(src, tuple(BANDS))


# -- case 8: a loose card must name a view, so its column order can be checked ----------------

@pytest.mark.parametrize("name, message", [
    (None, "'input.name' is missing"),
    ("mine", "'input.name' is 'mine', not a view of this package"),
    ("photometric", "are not view 'photometric''s columns in its order"),
])
def test_case_8_card_column_order_checked_for_every_view(name, message):
    from sdss_distill.core.errors import InputError
    from sdss_distill.edge.verify import check_card
    card = {"input": {"columns": list("zirgu"), **({"name": name} if name else {})}}
    with pytest.raises(InputError, match=message):
        check_card(card, Path("m.json"), 5)
