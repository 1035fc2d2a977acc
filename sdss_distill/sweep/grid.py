"""A grid of methods x temperature x alpha (x soft loss) over seeds, resumable and parallel.

Each (seed, cell) result is one small JSON file written atomically under OUT/cells/, so a
finished cell is never recomputed and a killed sweep resumes where it stopped. Within a
seed, teachers, fold teachers and baselines are trained once and shared by every cell (the
seed's `Workspace`). Seeds run in worker processes, one TensorFlow thread each: these
models are too small for intra-op threads to help, while two processes use both cores.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from sdss_distill.core.io import write_atomic
from sdss_distill.runs.config import Config

CELLS_DIR = "cells"


@dataclass(frozen=True)
class Cell:
    """One grid point: a method and its distillation settings."""

    method: str
    temperature: float
    alpha: float
    soft_loss: str

    @property
    def id(self) -> str:
        return f"{self.method}_T{self.temperature:g}_a{self.alpha:g}_{self.soft_loss}"

    def config(self, base: Config, seed: int) -> Config:
        return dataclasses.replace(base, method=self.method, temperature=self.temperature,
                                   alpha=self.alpha, soft_loss=self.soft_loss, seed=seed)


def grid(methods: Iterable[str], temperatures: Iterable[float], alphas: Iterable[float],
         soft_losses: Iterable[str]) -> list[Cell]:
    return [Cell(m, float(t), float(a), s) for m in methods for t in temperatures
            for a in alphas for s in soft_losses]


def fingerprint(base: Config, dev: bool) -> str:
    """What makes a cell's numbers: every setting but the output, seed and cell fields."""
    skip = {"out", "seed", "method", "temperature", "alpha", "soft_loss", "quiet"}
    doc = {k: v for k, v in base.to_dict().items() if k not in skip}
    return hashlib.sha256(json.dumps({**doc, "dev": dev}, sort_keys=True, default=str)
                          .encode()).hexdigest()[:16]


def cell_path(out: Path, seed: int, cell: Cell) -> Path:
    return Path(out) / CELLS_DIR / f"seed{seed}" / f"{cell.id}.json"


def done(out: Path, seed: int, cell: Cell, fp: str) -> bool:
    """True if this (seed, cell) was finished by a sweep with the same settings."""
    path = cell_path(out, seed, cell)
    try:
        return json.loads(path.read_text()).get("fingerprint") == fp
    except (OSError, ValueError):
        return False


def run_seed(base: Config, seed: int, cells: list[Cell], out: Path, *, dev: bool,
             on_cell: Callable[[Cell, float], None] = lambda cell, seconds: None) -> None:
    """Every unfinished cell of one seed, sharing one workspace (teachers trained once)."""
    from sdss_distill.core.io import quiet_import
    from sdss_distill.runs.pipeline import prepare, timed_run, workspace
    fp = fingerprint(base, dev)
    todo = [c for c in cells if not done(out, seed, c, fp)]
    if not todo:
        return
    keras = quiet_import("keras")
    seed_cfg = dataclasses.replace(base, seed=seed)
    prepared = prepare(seed_cfg, dev=dev)
    ws = workspace(prepared, seed_cfg)
    for cell in todo:
        cfg = cell.config(base, seed)
        arms, results, seconds = timed_run(cfg, prepared, ws=ws)
        doc = {"fingerprint": fp, "seed": seed, "dev": dev, "cell": dataclasses.asdict(cell),
               "cell_id": cell.id, "method_settings": dataclasses.asdict(cfg.settings()),
               "seconds": round(seconds, 2), "test_rows": len(prepared.split.test),
               "arms": results}
        path = cell_path(out, seed, cell)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(doc, default=_jsonable))
        on_cell(cell, seconds)
        del arms
    keras.backend.clear_session()


def _jsonable(v):
    if hasattr(v, "tolist"):
        return v.tolist()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def _worker_init() -> None:
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group: the parent decides
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    from sdss_distill.core.io import quiet_import
    tf = quiet_import("tensorflow")
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def _worker(base: Config, seed: int, cells: list[Cell], out: str, dev: bool, queue) -> int:
    run_seed(base, seed, cells, Path(out), dev=dev,
             on_cell=lambda cell, seconds: queue.put((seed, cell.id, seconds)))
    return seed


def run_sweep(base: Config, cells: list[Cell], seeds: list[int], out: Path, *, dev: bool,
              workers: int, progress: bool = True) -> None:
    """Run every unfinished (seed, cell), `workers` seeds at a time, with a progress bar."""
    from tqdm import tqdm
    fp = fingerprint(base, dev)
    total = len(cells) * len(seeds)
    finished = sum(done(out, s, c, fp) for s in seeds for c in cells)
    bar = tqdm(total=total, initial=finished, unit="cell", disable=not progress,
               desc="sweep", dynamic_ncols=True)
    todo = [s for s in seeds if any(not done(out, s, c, fp) for c in cells)]
    try:
        if workers <= 1 or len(todo) <= 1:
            for seed in todo:
                run_seed(base, seed, cells, out, dev=dev,
                         on_cell=lambda cell, sec, s=seed: _tick(bar, s, cell.id))
            return
        _run_parallel(base, cells, todo, out, dev, workers, bar)
    finally:
        bar.close()


def _tick(bar, seed, cell_id) -> None:
    bar.set_postfix_str(f"seed {seed} {cell_id}", refresh=False)
    bar.update(1)


def _run_parallel(base, cells, seeds, out, dev, workers, bar) -> None:
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        queue = manager.Queue()
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                 initializer=_worker_init) as pool:
            pending = {pool.submit(_worker, base, s, cells, str(out), dev, queue) for s in seeds}
            try:
                while pending:
                    finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                    while not queue.empty():
                        seed, cell_id, _ = queue.get()
                        _tick(bar, seed, cell_id)
                    for f in finished:
                        f.result()  # re-raise a worker's error here
            except BaseException:
                _stop_pool(pool)  # SIGINT/SIGTERM or an error: never wait for the other seeds
                raise
            while not queue.empty():
                seed, cell_id, _ = queue.get()
                _tick(bar, seed, cell_id)


def _stop_pool(pool) -> None:
    """Cancel queued seeds and terminate the running ones (their cells are written atomically,
    so a stopped seed leaves only whole cells); the executor has no public kill."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        proc.terminate()
    for proc in processes:
        proc.join(10)


def load_cells(out: Path) -> list[dict]:
    """Every finished cell document under OUT/cells/."""
    return [json.loads(p.read_text()) for p in sorted((Path(out) / CELLS_DIR).glob("seed*/*.json"))]
