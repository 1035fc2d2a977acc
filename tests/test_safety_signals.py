"""Issue 15, build item 5: SIGTERM/SIGINT stop train, experiment and fetch with 143/130,
leaving no new run version, no partial cell and no output file (export: test_safety_export,
score: test_safety_score)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sdss_distill.core.io import OWNER_FILE
from tests.test_safety_fetch import Hostile, trickle

ROOT = Path(__file__).resolve().parents[1]


def _start(argv: list[str]):
    proc = subprocess.Popen([sys.executable, "-m", *argv], cwd=ROOT, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    return proc, lines, reader


def _signal_when(proc, lines, ready, sig, *, timeout=300.0, after=1.0):
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
        time.sleep(0.1)
    time.sleep(after)
    proc.send_signal(sig)
    sent = time.monotonic()
    proc.wait(timeout=120)
    return time.monotonic() - sent


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_train_without_a_run(real_table, tmp_path, sig, code):
    out = tmp_path / "run"
    proc, lines, reader = _start(["sdss_distill.train", "--data", str(real_table), "--out", str(out),
                                  "--epochs", "200", "--patience", "200"])
    _signal_when(proc, lines, lambda: any(line.startswith("method:") for line in lines), sig,
                 after=3.0)
    reader.join(10)
    err = "".join(lines)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert not out.exists() and not out.is_symlink()
    versions = tmp_path / ".run.runs"
    assert not versions.exists() or not any(versions.iterdir())


SWALLOWED_IN_FIT = """
import os, signal, sys, time


class Collected:
    def __del__(self):  # as TensorFlow's objects are collected during fit
        os.kill(os.getpid(), SIG)
        for _ in range(200):  # the handler runs here: its exception is dropped
            time.sleep(0.001)
        print("__del__ finished", file=sys.stderr)


# the one engine logs each epoch through jax_fit._log
from sdss_distill.distill import jax_fit
real_log, seen = jax_fit._log, [0]


def log(*args, **kwargs):
    real_log(*args, **kwargs)
    seen[0] += 1
    if seen[0] == 2:  # after the first epoch's train and validation lines
        obj = Collected()
        del obj


jax_fit._log = log
from sdss_distill.train import main
sys.exit(main(["--data", DATA, "--out", OUT, "--epochs", "20", "--quiet"]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_swallowed_during_fit_still_stops_train(real_table, tmp_path, sig, code):
    """The signal's exception is dropped inside a __del__ during training: train used to go
    on and write the run (exit 0); now the next step stops it, and no run is written."""
    out = tmp_path / "run"
    script = (SWALLOWED_IN_FIT.replace("SIG)", f"{int(sig)})")
              .replace("DATA", repr(str(real_table))).replace("OUT", repr(str(out))))
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert "__del__ finished" not in proc.stderr  # the signal cut the __del__, Python dropped it
    assert proc.returncode == code, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not out.exists() and not out.is_symlink()


@pytest.mark.slow
def test_sigterm_stops_a_parallel_experiment_promptly(real_table, tmp_path):
    """The parent no longer waits for its worker processes to finish their seeds."""
    out = tmp_path / "sweep"
    proc, lines, reader = _start(["sdss_distill.experiment", "--data", str(real_table), "--methods",
                                  "offline", "--seeds", "0", "1", "--workers", "2", "--epochs",
                                  "300", "--patience", "300", "--out", str(out), "--quiet",
                                  "--no-plots"])
    took = _signal_when(proc, lines, lambda: (out / "sweep.json").exists(), signal.SIGTERM,
                        after=8.0)
    reader.join(10)
    err = "".join(lines)
    assert proc.returncode == 143, err
    assert took < 60, f"took {took:.0f} s to stop"
    assert not [p for p in out.rglob("*")  # no temp file; the owner mark is the app's own
                if p.name.startswith(".") and p.is_file() and p.name != OWNER_FILE]
    try:  # no worker left behind in the process group
        os.killpg(proc.pid, 0)
        time.sleep(2)
        os.killpg(proc.pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive, "worker processes outlived the experiment"


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_fetch_without_output(tmp_path, sig, code):
    out = tmp_path / "sky.parquet"
    with Hostile(trickle) as server:
        proc, lines, reader = _start(["sdss_distill.data", "fetch", "--base-url", server.url,
                                      "--rows", "5", "--timeout", "60", "--out", str(out),
                                      "--quiet"])
        _signal_when(proc, lines, lambda: server.requests > 0, sig, timeout=60)
        reader.join(10)
    err = "".join(lines)
    assert proc.returncode == code, err
    assert "Traceback" not in err and not out.exists()
    assert [p.name for p in tmp_path.iterdir()] in ([], ["sky.parquet.partial"])
