"""`experiment --scheduler`: a sweep on a real Dask scheduler with two workers on 127.0.0.1,
started by the test, gives the local sweep's numbers; a worker killed mid-task is replaced and
its seed re-run."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from sdss_distill.sweep import cli as experiment
from tests.conftest import ROOT

pytestmark = pytest.mark.slow
TIMING = ("seconds", "train_s")
"""Columns that hold wall times: the only ones allowed to differ between the two sweeps."""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """`dask scheduler` and two `dask worker` processes (one process, one thread each) on
    127.0.0.1; yields (address, the worker processes); every process killed at the end."""
    tmp = tmp_path_factory.mktemp("dask")
    file = tmp / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    common = dict(cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                  start_new_session=True)
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    procs = [subprocess.Popen([*dask, "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(file)], **common)]
    try:
        deadline = time.monotonic() + 120
        while not file.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(file.read_text())["address"]
        for _ in range(2):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "1",
                 "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"], **common))
        from dask.distributed import Client
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address, procs[1:]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=30)


def argv(real_table, tmp_path, out):
    config = tmp_path / "tiny.toml"
    config.write_text("teacher_hidden = [16, 8]\nstudent_hidden = [6, 6]\n")
    return ["--data", str(real_table), "--config", str(config), "--methods", "offline",
            "--alphas", "0", "0.5", "--seeds", "0", "1", "--epochs", "3", "--out", str(out),
            "--quiet", "--no-plots"]


def results(out):
    df = pd.read_csv(out / "results.csv")
    return df.drop(columns=[c for c in df.columns if c in TIMING]).sort_values(
        ["seed", "cell_id", "arm"]).reset_index(drop=True)


def summary(out):
    df = pd.read_csv(out / "summary.csv")
    return df.drop(columns=[c for c in df.columns if "train_s" in c or "seconds" in c])


def test_a_sweep_on_dask_equals_the_local_sweep(cluster, real_table, tmp_path, capsys):
    address, _ = cluster
    local, remote = tmp_path / "local", tmp_path / "remote"
    assert experiment.main([*argv(real_table, tmp_path, local), "--workers", "2"]) == 0
    assert experiment.main([*argv(real_table, tmp_path, remote), "--scheduler", address]) == 0
    pd.testing.assert_frame_equal(results(local), results(remote))
    pd.testing.assert_frame_equal(summary(local), summary(remote))
    assert len(results(remote)) == 2 * 2 * 3  # seeds x cells x arms
    first = {p: p.stat().st_mtime_ns for p in (remote / "cells").rglob("*.json")}
    assert len(first) == 4
    assert experiment.main([*argv(real_table, tmp_path, remote), "--scheduler", address]) == 0
    assert first == {p: p.stat().st_mtime_ns for p in (remote / "cells").rglob("*.json")}


def test_a_worker_killed_mid_task_is_replaced_and_its_seed_re_run(cluster, real_table, tmp_path):
    from dask.distributed import Client
    address, _ = cluster
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "sdss_distill.experiment",
                             *argv(real_table, tmp_path, out), "--epochs", "40",
                             "--scheduler", address], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        with Client(address, timeout="30s") as client:
            busy, deadline = None, time.monotonic() + 300
            while busy is None and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.5)
                busy = next((w for w, keys in client.processing().items()
                             if any("sweep-seed" in str(k) for k in keys)), None)
            assert busy is not None, "no seed ever started on a worker"
            time.sleep(3)  # well into the seed's training
            assert not list(out.glob("cells/seed*/*.json")), "the sweep ended before the kill"
            pid = client.run(os.getpid, workers=[busy])[busy]
            os.kill(pid, signal.SIGKILL)
        err = proc.communicate(timeout=900)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert len(list(out.glob("cells/seed*/*.json"))) == 4
    assert len(results(out)) == 12
