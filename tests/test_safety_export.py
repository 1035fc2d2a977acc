"""Issue 15, cases 7 and 8 (export): a malformed manifest is one line; SIGTERM/SIGINT during
the TFLite conversion always stop export with 143/130 and never switch to a new version."""

from __future__ import annotations

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

from sdss_distill.export.cli import main as export_main

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture
def run_copy(exported_run, tmp_path) -> Path:
    """A private copy of the exported run: tmp/run -> .run.runs/<its version>."""
    real = exported_run.resolve()
    versions = tmp_path / ".run.runs"
    versions.mkdir()
    shutil.copytree(real, versions / real.name)
    (tmp_path / "run").symlink_to(Path(".run.runs") / real.name)
    return tmp_path / "run"


@pytest.mark.parametrize("entry", [{"sha256": "0" * 64}, "a string"])
def test_malformed_manifest_entry_is_one_line_in_export(run_copy, capsys, entry):
    manifest = run_copy.resolve() / "manifest.json"
    doc = json.loads(manifest.read_text())
    doc["files"]["run.json"] = entry
    os.chmod(manifest, 0o644)
    manifest.write_text(json.dumps(doc))
    assert export_main(["--run", str(run_copy), "--quiet", "--no-finetune"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "manifest.json: corrupt entry for 'run.json'" in err


SWALLOWED = """
import os, signal, sys, time
from sdss_distill.export import cli as c
from sdss_distill.export import variants as r  # the default export's conversions

real, calls = r.convert, [0]


class Collected:
    def __del__(self):  # as TFLite's converter objects are collected, mid-conversion
        os.kill(os.getpid(), SIG)
        for _ in range(200):  # the handler runs here, inside __del__: its exception is dropped
            time.sleep(0.001)
        print("__del__ finished", file=sys.stderr)  # never: the signal's exception cut it


def convert(*a, **k):
    calls[0] += 1
    if calls[0] == 2:
        obj = Collected()
        del obj
    return real(*a, **k)


r.convert = convert
sys.exit(c.main(["--run", RUN, "--no-finetune", "--invokes", "20", "--quiet"]))
"""


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_swallowed_in_a_del_still_stops_export(run_copy, sig, code):
    """Case 8, deterministic: the signal's exception is raised inside a __del__ during the
    conversion, where Python prints "Exception ignored" and drops it. Before the fix export
    went on: exit 0 and a new version."""
    before = os.readlink(run_copy)
    script = SWALLOWED.replace("SIG)", f"{int(sig)})").replace("RUN", repr(str(run_copy)))
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert "__del__ finished" not in proc.stderr  # raised inside __del__, and dropped there
    assert proc.returncode == code, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    assert os.readlink(run_copy) == before
    assert [p.name for p in (run_copy.parent / ".run.runs").iterdir()] == [Path(before).name]


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143)])
def test_signal_during_conversion_always_stops_export(run_copy, sig, code):
    """The signal lands while TFLite converts (where a __del__ may swallow its exception):
    exit 143/130, the run still names its old version, no staging directory left."""
    before = os.readlink(run_copy)
    proc = subprocess.Popen([sys.executable, "-m", "sdss_distill.export", "--run", str(run_copy),
                             "--no-finetune", "--invokes", "50"], cwd=ROOT,
                            stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    deadline = time.monotonic() + 300
    while not any("converted student_float32" in line for line in lines):
        assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
        time.sleep(0.05)
    proc.send_signal(sig)
    proc.wait(timeout=300)
    reader.join(10)
    err = "".join(lines)
    assert proc.returncode == code, err
    assert os.readlink(run_copy) == before
    versions = run_copy.parent / ".run.runs"
    assert [p.name for p in versions.iterdir()] == [Path(before).name]


def test_a_swallowed_sigterm_stops_export_within_seconds(run_copy):
    """Issue 23 case 12: one export took 65 s to stop after SIGTERM. The signal's exception was
    dropped in a __del__ during a conversion, and only the check before the switch saw it, so
    every later conversion, QAT in its child and the benchmarks ran first. Now every
    conversion and every variant is a safe point."""
    stamp = "        print('signal at', time.time(), file=sys.stderr, flush=True)\n"
    script = (SWALLOWED.replace("SIG)", f"{int(signal.SIGTERM)})").replace("RUN", repr(str(run_copy)))
              .replace('"--no-finetune", "--invokes", "20"', '"--invokes", "2000"')
              .replace("        os.kill(", stamp + "        os.kill("))
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    ended = time.time()
    sent = float(next(line for line in proc.stderr.splitlines() if line.startswith("signal at"))
                 .split()[-1])
    assert proc.returncode == 143, proc.stderr[-2000:]
    assert ended - sent < 30, f"{ended - sent:.1f} s from SIGTERM to exit"  # was 65-98 s
