"""A sweep on a Dask cluster (`experiment --scheduler ADDRESS`): the same engine `score` uses
(score.catalogue.start_client), one task per seed.

A task is one seed's unfinished cells, as a local worker process runs them: the seed's
teachers are trained once and shared by its cells, so the numbers are the local sweep's. The
worker returns the cell documents and the client writes each one into OUT/cells/ (workers
need no shared file system); a seed is written when its task ends, so a stopped client
keeps every finished seed and re-runs the others. A worker lost mid-task (killed, out of
memory) makes Dask run its seed again on another worker (the scheduler's
`distributed.scheduler.allowed-failures`, 3 by default). Workers must import
this package (same version) and should run one thread each (`dask worker ADDRESS --nthreads
1`); they start their processes by spawn (Dask's default), never by fork after JAX.
"""

from __future__ import annotations

from pathlib import Path

from sdss_distill.core.errors import InputError, check_signals, deferred_signals
from sdss_distill.sweep.grid import Cell, run_seed, write_cell


def _allowed() -> int:
    """Times the scheduler re-runs a task whose worker died (then KilledWorker)."""
    import dask
    return int(dask.config.get("distributed.scheduler.allowed-failures"))


def seed_task(base, seed: int, cells: list[Cell], dev: bool, options: dict | None) -> list:
    """On a worker: one seed's cells on one TensorFlow thread; [(cell, document), ...]."""
    from sdss_distill.sweep.grid import one_thread
    one_thread()
    docs = []
    run_seed(base, seed, cells, None, dev=dev, options=options,
             on_doc=lambda cell, doc: docs.append((cell, doc)))
    return docs


def run_on_dask(scheduler: str, base, todo: dict[int, list[Cell]], out: Path, dev: bool,
                options: dict | None, tick) -> None:
    """Every seed of `todo` ({seed: its unfinished cells}) as a task on the cluster at
    `scheduler`; each finished seed's cells are written to OUT/cells/ as it arrives."""
    from dask.distributed import as_completed

    from sdss_distill.score.catalogue import _close, start_client
    with deferred_signals(check=False):  # a client stopped half-started prints tracebacks
        client, _ = start_client(scheduler, 0, 1)
    try:
        check_signals()
        workers = len(client.scheduler_info()["workers"])
        if not workers:
            raise InputError(f"--scheduler {scheduler}: no workers; start some with "
                             f"`dask worker {scheduler} --nthreads 1`")
        futures = [client.submit(seed_task, base, seed, seed_cells, dev, options,
                                 key=f"sweep-seed{seed}-{_token(base, seed_cells)}",
                                 pure=False)
                   for seed, seed_cells in todo.items()]
        for future in as_completed(futures):
            for cell, doc in _result(future, scheduler):
                write_cell(out, doc["seed"], cell, doc)
                tick(doc["seed"], cell.id)
    finally:
        with deferred_signals(check=False):
            _close(client, None)


def _token(base, cells: list[Cell]) -> str:
    import hashlib
    import json
    return hashlib.sha256(json.dumps([base.to_dict(), [c.id for c in cells]], default=str)
                          .encode()).hexdigest()[:12]


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
