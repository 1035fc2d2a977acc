"""Issue 23's experiment cases: stray files in cells/, a resume with other settings, stdout
that is full or closed, and worker processes that must die with a SIGKILLed sweep."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from sdss_distill.core.errors import InputError
from sdss_distill.core.io import mark_dir
from sdss_distill.runs.config import make_config
from sdss_distill.sweep import cli as experiment
from sdss_distill.sweep import grid as sweep
from tests.conftest import ROOT


def a_cell(seed=0, fp="f" * 16):
    return {"fingerprint": fp, "seed": seed, "cell": {"method": "offline"},
            "cell_id": "offline_T2_a0.5_kl", "arms": {"student": {}}}


@pytest.mark.parametrize("content, why", [
    (b"{}", "lacks fingerprint, seed, cell, cell_id, arms"),
    (b"[1, 2]", "lacks fingerprint"),
    (b"not json", "unreadable (JSONDecodeError)"),
    (b"[" * 100_000 + b"]" * 100_000, "unreadable (RecursionError)"),
])
def test_a_stray_file_in_cells_is_skipped_with_one_warning(tmp_path, capsys, content, why):
    (tmp_path / "cells" / "seed0").mkdir(parents=True)
    (tmp_path / "cells" / "seed0" / "offline_T2_a0.5_kl.json").write_text(json.dumps(a_cell()))
    stray = tmp_path / "cells" / "seed0" / "notes.json"
    stray.write_bytes(content)
    assert [c["cell_id"] for c in sweep.load_cells(tmp_path)] == ["offline_T2_a0.5_kl"]
    assert len(sweep.load_cells(tmp_path)) == 1  # again: no second warning
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"skipped {stray}: {why}" in err[0] and "move it out" in err[0]


def test_a_resume_with_other_settings_is_refused_naming_them(tmp_path):
    base = make_config(data="x.csv", epochs=5)
    sweep.check_settings(tmp_path, base, False)
    sweep.check_settings(tmp_path, base, False)  # the same settings resume
    with pytest.raises(InputError, match=r"epochs: 5 there, 9 now.*use a new --out"):
        sweep.check_settings(tmp_path, make_config(data="x.csv", epochs=9), False)
    with pytest.raises(InputError, match="dev: False there, True now"):
        sweep.check_settings(tmp_path, base, True)


def test_cells_of_other_settings_without_a_record_are_refused(tmp_path):
    (tmp_path / "cells" / "seed0").mkdir(parents=True)
    (tmp_path / "cells" / "seed0" / "c.json").write_text(json.dumps(a_cell(fp="0" * 16)))
    with pytest.raises(InputError, match="holds cells computed with other settings"):
        sweep.check_settings(tmp_path, make_config(data="x.csv"), False)


def test_the_command_refuses_before_touching_sweep_json(real_table, tmp_path, capsys):
    out = tmp_path / "sweep"
    from sdss_distill.data.datasets import resolve
    sweep.check_settings(out, make_config(data=resolve(str(real_table)).record, epochs=5), False)
    mark_dir(out, "experiment")  # as the earlier sweep's command left it
    code = experiment.main(["--data", str(real_table), "--out", str(out), "--epochs", "9",
                            "--seeds", "0", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "a sweep with other settings (" in err[0]
    assert "epochs: 5 there, 9 now" in err[0] and not (out / "sweep.json").exists()


def _experiment(argv, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "sdss_distill.experiment", *argv], cwd=ROOT,
                            env=env, stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.slow
def test_stdout_full_is_one_line_and_a_closed_pipe_is_quiet(small_sweep):
    out, argv = small_sweep
    with open("/dev/full", "w") as full:
        proc = _experiment([*argv, "--no-plots"], stdout=full)
        err = proc.communicate(timeout=600)[1].strip().splitlines()
    assert proc.returncode == 2 and len(err) == 1
    assert "error: stdout: no space left on device" in err[0] and str(out) in err[0]
    proc = _experiment([*argv, "--no-plots"], stdout=subprocess.PIPE)
    assert proc.stdout.readline()  # `| head -1`: one line read, then the pipe closes
    proc.stdout.close()
    err = proc.communicate(timeout=600)[1]
    # 141 (128 + SIGPIPE) when the reader left before the summary ended; 0 when the whole
    # summary fitted in the pipe before it closed
    assert proc.returncode in (0, 141) and "Traceback" not in err and "Broken pipe" not in err


@pytest.mark.slow
def test_sigkill_of_the_sweep_takes_its_worker_processes_down(real_table, tmp_path):
    psutil = pytest.importorskip("psutil")
    config = tmp_path / "tiny.toml"
    config.write_text("teacher_hidden = [8]\nstudent_hidden = [4]\n")
    proc = _experiment(["--data", str(real_table), "--config", str(config), "--methods",
                        "offline", "--seeds", "0", "1", "--epochs", "200", "--patience", "200",
                        "--workers", "2", "--out", str(tmp_path / "sweep"), "--quiet",
                        "--no-plots"], stdout=subprocess.DEVNULL)
    try:
        deadline, kids = time.monotonic() + 300, []
        while len(kids) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            kids = [c for c in psutil.Process(proc.pid).children(recursive=True)
                    if "spawn_main" in " ".join(c.cmdline())]
        assert len(kids) >= 2, "the two worker processes never started"
        everyone = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        _, alive = psutil.wait_procs(everyone, timeout=30)
        assert not alive, f"outlived the killed sweep: {[p.cmdline()[-2:] for p in alive]}"
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_an_unreachable_scheduler_is_one_line(real_table, tmp_path, capsys):
    import socket
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = experiment.main(["--data", str(real_table), "--methods", "offline", "--seeds", "0",
                            "--epochs", "1", "--out", str(tmp_path / "sweep"), "--quiet",
                            "--no-plots", "--scheduler", f"tcp://127.0.0.1:{port}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert f"--scheduler tcp://127.0.0.1:{port}: cannot connect" in err[0]
    assert "dask scheduler" in err[0] and not list((tmp_path / "sweep").glob("cells/*/*.json"))
