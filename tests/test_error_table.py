"""Issue 23 cases 6, 9, 11 and 12 as one table: each row a command run as a user runs it (a
child process), with its setup, the exit code, the one stderr line and a target that must be
left untouched. docs/design/error-contract.md lists the same rows.

Rows that need the session's exported model (it is trained and converted once) or that train
are slow; the others run in about a second each.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINE_RE = re.compile(r"^python -m sdss_distill \w+( \w+)?: error: ")


@dataclass
class Row:
    """One case: `argv` after `python -m sdss_distill`, with {tmp} and {model} filled in."""

    id: str
    argv: list[str]
    code: int
    line: str | None  # regex the single stderr line must match; None: stderr must be empty
    target: str  # a path under tmp that the command must leave as it was
    setup: Callable[[Path], None] = lambda tmp: None
    model: bool = False  # needs the exported model (slow)
    slow: bool = False  # trains
    stdout: str = "pipe"  # "pipe": captured; "full": /dev/full; "head": closed after one line
    fsize: int | None = None  # RLIMIT_FSIZE of the child (bytes): a full disk
    extra: dict = field(default_factory=dict)


def nested_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def write(name: str, content: str | bytes) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return setup


def both(*setups) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        for s in setups:
            s(tmp)
    return setup


def link(name: str, to: str) -> Callable[[Path], None]:
    return lambda tmp: (tmp / name).symlink_to(to)


def fifo(name: str) -> Callable[[Path], None]:
    return lambda tmp: os.mkfifo(tmp / name)


def sparse(name: str, size: int) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        with open(tmp / name, "wb") as f:
            f.truncate(size)
    return setup


def fake_run(tmp: Path) -> None:
    """A run path whose version's manifest.json nests 100,000 deep."""
    version = tmp / ".run.runs" / "20260101T000000000000Z-abcdef"
    version.mkdir(parents=True)
    (version / "manifest.json").write_text('{"run_id": ' + nested_json(100_000) + "}")
    (tmp / "run").symlink_to(version.relative_to(tmp))


def photometry_csv(tmp: Path, rows: int = 5000) -> None:
    lines = ["u,g,r,i,z"] + [f"{19.4 + k % 7 * 0.01:.2f},17.0,15.9,15.5,15.2" for k in range(rows)]
    (tmp / "in.csv").write_text("\n".join(lines) + "\n")


def photometry_parquet(tmp: Path) -> None:
    """100,000 rows of varied magnitudes: their scored part is far larger than 100 KiB."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    rng = np.random.default_rng(0)
    cols = {b: pa.array(v + rng.normal(0, 0.5, 100_000))
            for b, v in zip("ugriz", (19.4, 17.0, 15.9, 15.5, 15.2))}
    pq.write_table(pa.table(cols), tmp / "in.parquet")


def loose_card(change: Callable[[dict], None]) -> Callable[[Path], None]:
    """A copy of the exported model whose card is edited by `change`."""
    def setup(tmp: Path) -> None:
        import json
        import shutil
        model = Path(os.environ["TABLE_MODEL"])
        (tmp / "m").mkdir()
        shutil.copy(model, tmp / "m" / model.name)
        card = json.loads(model.with_suffix(".json").read_text())
        change(card)
        (tmp / "m" / model.with_suffix(".json").name).write_text(json.dumps(card))
        photometry_csv(tmp, 10)
    return setup


def nested_card(tmp: Path) -> None:
    loose_card(lambda c: None)(tmp)
    card = next((tmp / "m").glob("*.json"))
    card.write_text('{"input": ' + nested_json(5000) + "}")


FETCH = ["data", "fetch", "--rows", "10", "--retries", "0", "--base-url", "http://127.0.0.1:9",
         "--quiet"]
DEEP_TOML = "a = " + nested_json(5000) + "\n"

ROWS = [
    # case 9: unbounded reads and options
    Row("9 priors link to /dev/zero",
        ["score", "--model", "{model}", "--input", "{tmp}/in.parquet", "--output", "{tmp}/out",
         "--priors", "{tmp}/z.json"], 2,
        r"--priors .*z\.json: a character device, not a regular file", "out",
        both(link("z.json", "/dev/zero"), photometry_parquet), model=True),
    Row("9 priors FIFO",
        ["score", "--model", "{model}", "--input", "{tmp}/in.parquet", "--output", "{tmp}/out",
         "--priors", "{tmp}/p.json"], 2,
        r"--priors .*p\.json: a FIFO \(named pipe\), not a regular file", "out",
        both(fifo("p.json"), photometry_parquet), model=True),
    Row("9 config over the size cap", ["train", "--config", "{tmp}/big.toml", "--out", "{tmp}/run"],
        2, r"big\.toml: 17,000,000 bytes, more than the 16,777,216-byte cap", "run",
        sparse("big.toml", 17_000_000)),
    Row("9 edge bench --batch 1e9", ["edge", "bench", "--model", "{tmp}/none.tflite", "--batch",
        "1000000000"], 2, r"--batch 1,000,000,000 rows need about .* GiB, more than half", "none.tflite"),
    Row("9 edge predict --threads 100000", ["edge", "predict", "--model", "{tmp}/none.tflite",
        "--input", "{tmp}/none.csv", "--threads", "100000"], 2,
        r"--threads must be between 1 and this machine's \d+ CPU core\(s\), got 100000", "none.csv"),
    Row("9 export --threads 100000", ["export", "--run", "{tmp}/run", "--threads", "100000"], 2,
        r"--threads must be between 1 and this machine's \d+ CPU core\(s\), got 100000", "run"),
    # case 11: tracebacks that are now one line
    Row("11 non-UTF-8 --config", ["train", "--config", "{tmp}/bad.toml", "--out", "{tmp}/run"], 2,
        r"bad\.toml: not UTF-8 text \(byte 0xff at offset 5\)", "run",
        write("bad.toml", b'a = "\xff"\n')),
    Row("11 deeply nested --config", ["train", "--config", "{tmp}/deep.toml", "--out", "{tmp}/run"],
        2, r"deep\.toml: nested deeper than 64 levels", "run", write("deep.toml", DEEP_TOML)),
    Row("11 deeply nested --columns", ["train", "--columns", "{tmp}/deep.toml", "--out",
        "{tmp}/run"], 2, r"deep\.toml: nested deeper than 64 levels", "run",
        write("deep.toml", DEEP_TOML)),
    Row("11 deeply nested manifest.json", ["export", "--run", "{tmp}/run"], 2,
        r"manifest\.json: nested deeper than 64 levels; the run cannot be verified", "run", fake_run),
    Row("11 deeply nested priors file",
        ["score", "--model", "{model}", "--input", "{tmp}/in.parquet", "--output", "{tmp}/out",
         "--priors", "{tmp}/p.json"], 2, r"--priors .*p\.json: nested deeper than 64 levels",
        "out", both(write("p.json", nested_json(5000)), photometry_parquet), model=True),
    Row("11 deeply nested model card", ["edge", "predict", "--model", "{tmp}/m/student_int8.tflite",
        "--input", "{tmp}/in.csv"], 2, r"student_int8\.json: nested deeper than 64 levels", "m",
        nested_card, model=True),
    Row("11 card input.name a list", ["edge", "predict", "--model", "{tmp}/m/student_int8.tflite",
        "--input", "{tmp}/in.csv"], 2, r"'input\.name' must be a view name \(a string\), got a list",
        "m", loose_card(lambda c: c["input"].update(name=["photo"])), model=True),
    Row("11 card labels differ from outputs", ["edge", "predict", "--model",
        "{tmp}/m/student_int8.tflite", "--input", "{tmp}/in.csv"], 2,
        r"the card lists 4 class labels but the model has 3 outputs", "m",
        loose_card(lambda c: c.update(labels=["GALAXY", "QSO", "STAR", "OTHER"])), model=True),
    Row("11 full disk, edge --output", ["edge", "predict", "--model", "{model}", "--input",
        "{tmp}/in.csv", "--output", "{tmp}/out.csv"], 2,
        r"disk full / file size limit writing .*out\.csv \(File too large\)", "out.csv",
        both(photometry_csv, write("out.csv", "old\n")), model=True, fsize=64 << 10),
    Row("11 full disk, train --out", ["train", "--data", "bright", "--epochs", "1", "--out",
        "{tmp}/run", "--quiet"], 2,
        r"disk full / file size limit writing .*run \(File too large\)", "run", slow=True,
        fsize=30 << 10),
    Row("11 stdout is /dev/full", ["edge", "predict", "--model", "{model}", "--input",
        "{tmp}/in.csv"], 2, r"disk full / file size limit writing standard output", "in.csv",
        photometry_csv, model=True, stdout="full"),
    Row("11 stdout closed early (| head -1)", ["edge", "predict", "--model", "{model}", "--input",
        "{tmp}/in.csv"], 141, None, "in.csv", photometry_csv, model=True, stdout="head"),
    Row("11 fetch state.json a JSON list", [*FETCH, "--out", "{tmp}/sky.parquet"], 2,
        r"state\.json: not a fetch's resume state \(a JSON list\); delete", "sky.parquet.partial",
        write("sky.parquet.partial/state.json", "[1, 2]")),
    Row("11 two fetches into one --out", [*FETCH, "--out", "{tmp}/sky.parquet"], 2,
        r"--out .*sky\.parquet: another fetch is writing there", "sky.parquet",
        extra={"hold": ".sky.parquet.lock"}),
    # case 12: the right cause
    Row("12 score with a full output disk", ["score", "--model", "{model}", "--input",
        "{tmp}/in.parquet", "--output", "{tmp}/out", "--quiet"], 2,
        r"disk full / file size limit writing --output .*out \(.*File too large\)", "in.parquet",
        photometry_parquet, model=True, fsize=100 << 10),
]


def snapshot(path: Path):
    """What a path is and holds, without following a symlink: equal before and after means
    untouched."""
    if not os.path.lexists(path):
        return None
    if path.is_symlink():
        return ("link", os.readlink(path))
    if path.is_dir():
        return {p.name: snapshot(p) for p in sorted(path.iterdir())}
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return ("special", path.lstat().st_mode)


LAUNCH = ("import resource, runpy, sys; n = int(sys.argv.pop(1)); "
          "resource.setrlimit(resource.RLIMIT_FSIZE, (n, n)); "
          "runpy.run_module('sdss_distill', run_name='__main__', alter_sys=True)")
"""`python -m sdss_distill` with RLIMIT_FSIZE set first (no preexec_fn: the test process may
run JAX's threads, and a fork between them can deadlock)."""


def run_row(row: Row, tmp: Path, model: Path | None):
    argv = [a.format(tmp=tmp, model=model) for a in row.argv]
    cmd = ([sys.executable, "-m", "sdss_distill"] if row.fsize is None
           else [sys.executable, "-c", LAUNCH, str(row.fsize)]) + argv
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if row.stdout == "head":
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                cwd=tmp)
        proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read().decode()
        return proc.wait(timeout=300), err
    with open("/dev/full", "wb") if row.stdout == "full" else open(os.devnull, "wb") as out:
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.PIPE, env=env, cwd=tmp,
                              timeout=600)
    return done.returncode, done.stderr.decode()


def params():
    for row in ROWS:
        marks = [pytest.mark.slow] if row.model or row.slow else []
        yield pytest.param(row, id=row.id, marks=marks)


@pytest.mark.parametrize("row", params())
def test_error_table(row: Row, tmp_path, request, monkeypatch):
    model = None
    if row.model:
        model = request.getfixturevalue("model")
        monkeypatch.setenv("TABLE_MODEL", str(model))
    row.setup(tmp_path)
    target = tmp_path / row.target
    before = snapshot(target)
    hold = row.extra.get("hold")
    if hold:  # another fetch holds the lock for the whole run
        from sdss_distill.core.io import exclusive
        with exclusive(tmp_path / hold, "held by the test"):
            code, err = run_row(row, tmp_path, model)
    else:
        code, err = run_row(row, tmp_path, model)
    lines = err.splitlines()
    assert code == row.code, err
    if row.line is None:
        assert err == ""
    else:
        assert len(lines) == 1 and LINE_RE.match(lines[0]), err
        assert re.search(row.line, lines[0]), lines[0]
    assert snapshot(target) == before
