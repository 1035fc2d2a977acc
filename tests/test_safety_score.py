"""Issue 15, case 5 (score): corrupt or odd Parquet is one line, one writer per --output,
temp files of dead writers cleaned, SIGTERM/SIGINT stop it with 143/130."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sdss_distill.core.schema import BANDS
from sdss_distill.score import catalogue as score
from sdss_distill.score import cli as score_cli
from sdss_distill.score.guard import LOCK_NAME

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _table(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({b: rng.uniform(15, 20, n) for b in BANDS})


def _score(capsys, model, src, out, *extra):
    code = score_cli.main(["--model", str(model), "--input", str(src), "--output", str(out),
                       "--workers", "1", "--quiet", *extra])
    return code, capsys.readouterr().err


def _one_line(err: str, message: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err and len(lines[0]) <= 300, err
    assert message in lines[0], lines[0]


def test_corrupt_data_page_is_one_line(model, tmp_path, capsys):
    path = tmp_path / "corrupt.parquet"
    pq.write_table(_table(20_000), path, compression="none", row_group_size=5000)
    raw = bytearray(path.read_bytes())
    raw[4:200] = b"\x7f" * 196  # the first page header: the footer still reads
    path.write_bytes(bytes(raw))
    code, err = _score(capsys, model, path, tmp_path / "out")
    assert code == 2
    _one_line(err, f"{path}: cannot read row groups 0")
    assert not list((tmp_path / "out").glob("*.parquet")) and not list((tmp_path / "out").glob(".*.tmp"))


def test_column_present_twice_is_one_line(model, tmp_path, capsys):
    t = _table(10)
    t = t.append_column("u", t["u"])
    pq.write_table(t, tmp_path / "dup.parquet")
    code, err = _score(capsys, model, tmp_path / "dup.parquet", tmp_path / "out")
    assert code == 2
    _one_line(err, "column(s) u present more than once")


def test_zero_row_file_is_skipped_without_dask_traceback(model, tmp_path, capsys):
    d = tmp_path / "in"
    d.mkdir()
    pq.write_table(_table(0), d / "empty.parquet")
    pq.write_table(_table(100), d / "full.parquet")
    code, err = _score(capsys, model, d, tmp_path / "out")
    assert code == 0 and "Traceback" not in err and "Compute Failed" not in err, err
    assert "empty.parquet: 0 rows, nothing to score; skipped" in err
    assert "read 100 rows, wrote 100, rejected 0" in err
    assert pq.read_table(tmp_path / "out" / "full.part00000.parquet").num_rows == 100


def test_second_writer_is_refused_and_first_writers_temp_file_kept(model, tmp_path, capsys):
    """Two `score` runs into one --output: the second no longer deletes the first's temp file."""
    pq.write_table(_table(100), tmp_path / "a.parquet")
    out = tmp_path / "out"
    out.mkdir()
    theirs = out / ".a.part00000.parquet.0123abcd.tmp"
    theirs.write_text("being written by the first run")
    fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the first run, still scoring
        code, err = _score(capsys, model, tmp_path / "a.parquet", out)
        assert code == 2
        _one_line(err, "another score is writing there")
        assert theirs.read_text() == "being written by the first run"
    finally:
        os.close(fd)
    code, err = _score(capsys, model, tmp_path / "a.parquet", out)  # the first one is gone
    assert code == 0 and not theirs.exists()


def test_temp_file_of_a_worker_killed_during_the_run_is_removed_at_its_end(model, tmp_path,
                                                                           capsys, monkeypatch):
    """A worker killed mid-part leaves `.NAME.<uuid>.tmp`; Dask reruns the part elsewhere; the
    run removes the leftover when it ends instead of leaving it for the next run."""
    pq.write_table(_table(100), tmp_path / "a.parquet")
    out = tmp_path / "out"
    real = score.score_parts

    def killed_worker_then_real(parts, bundle, output, **kw):
        (output / f".{parts[0].name}.deadbeef.tmp").write_text("partial")
        return real(parts, bundle, output, **kw)

    monkeypatch.setattr(score, "score_parts", killed_worker_then_real)
    code, err = _score(capsys, model, tmp_path / "a.parquet", out)
    assert code == 0, err
    assert not list(out.glob(".*.tmp")) and (out / "a.part00000.parquet").is_file()


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("big")
    for k in range(4):
        pq.write_table(_table(300_000, k), d / f"c{k}.parquet", row_group_size=50_000)
    return d


@pytest.mark.parametrize("when", ["starting", "scoring"])
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_score_with_its_code_and_no_partial_files(model, big, tmp_path, sig, code,
                                                               when):
    """While the cluster starts or while parts are scored: exit 143/130, no traceback (Dask's
    included), no temp file, every finished part whole."""
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "sdss_distill.score", "--model", str(model),
                             "--input", str(big / "c*.parquet"), "--output", str(out),
                             "--workers", "1", "--part-rows", "50000", "--batch", "10000"],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    deadline = time.monotonic() + 90
    ready = (lambda: (out / LOCK_NAME).exists()) if when == "starting" else (
        lambda: any(line.startswith("dask:") for line in lines))
    while not ready() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(sig)
    proc.wait(timeout=120)
    reader.join(10)
    err = "".join(lines)
    assert proc.returncode == code, err
    assert "Traceback" not in err and "Error" not in err, err
    assert not list(out.glob(".*.tmp"))
    for part in out.glob("*.parquet"):  # whatever finished is whole
        assert pq.read_metadata(part).num_rows > 0


def test_stale_parts_are_removed_only_if_score_wrote_them(model, tmp_path, capsys):
    """A user's file named like a part survives; a stale part of ours is removed."""
    pq.write_table(_table(100), tmp_path / "a.parquet")
    out = tmp_path / "out"
    assert _score(capsys, model, tmp_path / "a.parquet", out)[0] == 0
    (out / "a.part00003.parquet").write_bytes((out / "a.part00000.parquet").read_bytes())
    pq.write_table(_table(5), out / "a.part00007.parquet")  # the user's own file
    code, err = _score(capsys, model, tmp_path / "a.parquet", out)
    assert code == 0, err
    assert not (out / "a.part00003.parquet").exists()
    assert pq.read_table(out / "a.part00007.parquet").num_rows == 5


NO_FORK_SCRIPT = """
import sys
from sdss_distill.data.synth import write_catalogue
from sdss_distill.score.cli import main as score
from sdss_distill.sweep.cli import main as experiment
from sdss_distill.train import main as train
out = sys.argv[1]
assert train(["--data", "bright", "--rows", "2000", "--epochs", "2", "--out", out + "/run",
              "--export", "--quiet"]) == 0
write_catalogue(out + "/cat.parquet", 500, seed=0)
assert score(["--model", out + "/run/tflite/student_int8.tflite", "--input",
              out + "/cat.parquet", "--output", out + "/scored", "--workers", "1",
              "--quiet"]) in (0, 1)
sys.exit(experiment(["--data", "bright", "--methods", "offline", "--temperatures", "2",
                     "--alphas", "0.5", "--seeds", "0", "1", "--rows", "1000", "--epochs", "2",
                     "--workers", "2", "--no-plots", "--out", out + "/sweep", "--quiet"]))
"""


def test_no_fork_after_jax(tmp_path):
    """Issue 21 item 6: a short `train --export` (JAX, then the QAT child), a short `score`
    (a Dask LocalCluster) and a 2-worker `experiment` cell (a process pool) in one process,
    as `make run` does: no "os.fork() was called" warning (the export child used to start
    with a preexec_fn, i.e. a fork with Python's at-fork hooks, where JAX's hook warns)."""
    proc = subprocess.run([sys.executable, "-W", "default", "-c", NO_FORK_SCRIPT, str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "os.fork() was called" not in proc.stderr, proc.stderr[-3000:]
    assert (tmp_path / "scored").is_dir()
    assert (tmp_path / "sweep" / "results.csv").is_file()


FORK_TEST = """
import multiprocessing


def _nothing():
    pass


def test_fork_after_jax():
    import jax.numpy as jnp
    jnp.ones(3).block_until_ready()  # JAX's threads are running
    child = multiprocessing.get_context("fork").Process(target=_nothing)
    child.start()
    child.join()
"""


def test_pytest_fails_a_test_that_forks_after_jax(tmp_path):
    """Issue 21 item 6: the suite's own pytest settings turn JAX's os.fork() warning into a
    failure (it is raised inside an at-fork hook, where Python only reports it)."""
    (tmp_path / "test_fork.py").write_text(FORK_TEST)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-c", str(ROOT / "pyproject.toml"), str(tmp_path / "test_fork.py")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert "1 failed" in proc.stdout and "os.fork() was called" in proc.stdout, proc.stdout[-2000:]
