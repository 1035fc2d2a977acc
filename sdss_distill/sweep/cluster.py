"""A sweep on a Dask cluster (`experiment --scheduler ADDRESS`): the same engine `score` uses
(score.catalogue.start_client), one task per seed.

A task is one seed's unfinished cells, run in a fresh child process of the worker exactly as
a local sweep's pool process runs them (seed_task says why a child): the seed's teachers are
trained once and shared by its cells, so the numbers are the local sweep's. The worker
returns the cell documents and the client writes each one into OUT/cells/ (workers need no
shared file system); a seed is written when its task ends, so a stopped client keeps every
finished seed and re-runs the others. A worker lost mid-task (killed, out of memory) makes
Dask run its seed again on another worker (the scheduler's
`distributed.scheduler.allowed-failures`, 3 by default). Workers must import this package
(same version) and should run one thread each (`dask worker ADDRESS --nthreads 1`); they
start their processes by spawn (Dask's default), and each seed's child is a new process
too, never a fork after JAX.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import dask
from dask.distributed import as_completed

from sdss_distill.core.children import child_env, die_with_parent
from sdss_distill.core.errors import InputError, check_signals, deferred_signals
from sdss_distill.core.io import sha256_bytes, write_atomic
from sdss_distill.runs.config import make_config
from sdss_distill.score.catalogue import _close, start_client
from sdss_distill.sweep.grid import Cell, one_thread, run_seed, write_cell


def _allowed() -> int:
    """Times the scheduler re-runs a task whose worker died (then KilledWorker)."""
    return int(dask.config.get("distributed.scheduler.allowed-failures"))


def seed_task(base: dict, seed: int, cells: list[dict], dev: bool, options: dict | None) -> list:
    """On a worker: one seed's cells in a fresh child process; their documents.

    The child is what a local sweep's pool worker is: a spawned process whose main thread
    alone draws from Python's global `random` (Keras seeds its initialisers from it after
    `set_random_seed`); in the Dask worker process its event-loop thread draws too, at
    moments of its own, and the same seed trained other models there. The child dies with
    the worker (PR_SET_PDEATHSIG); settings and documents travel as JSON."""
    with tempfile.TemporaryDirectory(prefix="sdss-sweep-seed-") as tmp:
        job, result = Path(tmp) / "job.json", Path(tmp) / "cells.json"
        job.write_text(json.dumps({"base": base, "seed": seed, "cells": cells, "dev": dev,
                                   "options": options}))
        proc = subprocess.run([sys.executable, "-m", "sdss_distill.sweep.cluster", str(job),
                               str(result)], capture_output=True, text=True, env=child_env())
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            raise RuntimeError(f"seed {seed}: the sweep child failed (exit {proc.returncode}):"
                               f"\n{tail}")
        return json.loads(result.read_text())


def _child(job: Path, result: Path) -> int:
    """`python -m sdss_distill.sweep.cluster JOB RESULT`: run one seed's cells (JOB, JSON),
    write their documents to RESULT."""
    die_with_parent()
    one_thread()
    doc = json.loads(Path(job).read_text())
    docs = []
    run_seed(make_config(**doc["base"]), doc["seed"], [Cell(**c) for c in doc["cells"]], None,
             dev=doc["dev"], options=doc["options"], on_doc=lambda cell, d: docs.append(d))
    write_atomic(Path(result), json.dumps(docs))
    return 0


def run_on_dask(scheduler: str, base, todo: dict[int, list[Cell]], out: Path, dev: bool,
                options: dict | None, tick) -> None:
    """Every seed of `todo` ({seed: its unfinished cells}) as a task on the cluster at
    `scheduler`; each finished seed's cells are written to OUT/cells/ as it arrives."""
    with deferred_signals(check=False):  # a client stopped half-started prints tracebacks
        client, _ = start_client(scheduler, 0, 1)
    try:
        check_signals()
        workers = len(client.scheduler_info()["workers"])
        if not workers:
            raise InputError(f"--scheduler {scheduler}: no workers; start some with "
                             f"`dask worker {scheduler} --nthreads 1`")
        futures = [client.submit(seed_task, json.loads(json.dumps(base.to_dict(), default=str)),
                                 seed, [dataclasses.asdict(c) for c in seed_cells], dev, options,
                                 key=f"sweep-seed{seed}-{_token(base, seed_cells)}",
                                 pure=False)
                   for seed, seed_cells in todo.items()]
        for future in as_completed(futures):
            for doc in _result(future, scheduler):
                cell = Cell(**doc["cell"])
                write_cell(out, doc["seed"], cell, doc)
                tick(doc["seed"], cell.id)
    finally:
        with deferred_signals(check=False):
            _close(client, None)


def _token(base, cells: list[Cell]) -> str:
    return sha256_bytes(json.dumps([base.to_dict(), [c.id for c in cells]], default=str))[:12]


def _result(future, scheduler: str) -> list:
    """A finished task's cells; a worker that died on every retry as one line."""
    try:
        return future.result()
    except Exception as e:  # noqa: BLE001 - Dask re-raises whatever the worker raised
        if type(e).__name__ != "KilledWorker":
            raise
        raise InputError(f"--scheduler {scheduler}: a seed's worker died {_allowed() + 1} times "
                         f"({str(e)[:120]}); check the workers' memory and logs, then re-run "
                         f"(finished seeds are kept)") from None


if __name__ == "__main__":
    sys.exit(_child(Path(sys.argv[1]), Path(sys.argv[2])))
