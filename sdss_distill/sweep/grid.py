"""A grid of methods x temperature x alpha (x soft loss) over seeds, resumable and parallel.

Each (seed, cell) result is one small JSON file written atomically under OUT/cells/, so a
finished cell is never recomputed and a killed sweep resumes where it stopped. Within a
seed, teachers, fold teachers and baselines are trained once and shared by every cell (the
seed's `Workspace`). Seeds run in worker processes, one TensorFlow thread each: these
models are too small for intra-op threads to help, while two processes use both cores.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing as mp
import os
import signal
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from sdss_distill.core.children import die_with_parent
from sdss_distill.core.cli import program
from sdss_distill.core.cli import progress as progress_bar
from sdss_distill.core.errors import InputError
from sdss_distill.core.io import quiet_import, sha256_bytes, write_atomic
from sdss_distill.runs import pipeline
from sdss_distill.runs.config import Config
from sdss_distill.sweep.extras import extra_results

PROG = program("experiment")
CELLS_DIR = "cells"
UNSET_OMITTED = ("rows", "train_sample")
"""Config fields added after sweeps were run: left out of the fingerprint while unset, so a
sweep started before them still resumes."""


@dataclass(frozen=True)
class Cell:
    """One grid point: a method and its distillation settings."""

    method: str
    temperature: float
    alpha: float
    soft_loss: str
    n_rows: int | None = None  # --rows of this cell (learning curves); None: the base config's
    train_sample: str | None = None  # train on one sample of sdss (transfer); None: the base's

    @property
    def id(self) -> str:
        return (f"{self.method}_T{self.temperature:g}_a{self.alpha:g}_{self.soft_loss}"
                + (f"_n{self.n_rows}" if self.n_rows is not None else "")
                + (f"_on{self.train_sample}" if self.train_sample is not None else ""))

    def config(self, base: Config, seed: int) -> Config:
        return dataclasses.replace(
            base, method=self.method, temperature=self.temperature, alpha=self.alpha,
            soft_loss=self.soft_loss, seed=seed,
            rows=base.rows if self.n_rows is None else self.n_rows,
            train_sample=base.train_sample if self.train_sample is None else self.train_sample)

    def rows_key(self) -> tuple:
        """Cells with the same key train on the same rows, so they share one workspace."""
        return (self.n_rows, self.train_sample)


def grid(methods: Iterable[str], temperatures: Iterable[float], alphas: Iterable[float],
         soft_losses: Iterable[str], rows: Iterable[int | None] = (None,),
         train_samples: Iterable[str | None] = (None,)) -> list[Cell]:
    return [Cell(m, float(t), float(a), s, n, sample) for sample in train_samples for n in rows
            for m in methods for t in temperatures for a in alphas for s in soft_losses]


def fingerprint(base: Config, dev: bool, options: dict | None = None) -> str:
    """What makes a cell's numbers: every setting but the output, seed and cell fields (and
    the sweep's extra evaluations, when it asks for any)."""
    skip = {"out", "seed", "method", "temperature", "alpha", "soft_loss", "quiet"}
    doc = {k: v for k, v in base.to_dict().items() if k not in skip
           and not (k in UNSET_OMITTED and v is None)}
    doc = {**doc, "dev": dev, **({"options": options} if options else {})}
    return sha256_bytes(json.dumps(doc, sort_keys=True, default=str))[:16]


def cell_path(out: Path, seed: int, cell: Cell) -> Path:
    return Path(out) / CELLS_DIR / f"seed{seed}" / f"{cell.id}.json"


def done(out: Path, seed: int, cell: Cell, fp: str) -> bool:
    """True if this (seed, cell) was finished by a sweep with the same settings."""
    path = cell_path(out, seed, cell)
    try:
        return json.loads(path.read_text()).get("fingerprint") == fp
    except (OSError, ValueError):
        return False


def run_seed(base: Config, seed: int, cells: list[Cell], out: Path | None, *, dev: bool,
             on_cell: Callable[[Cell, float], None] = lambda cell, seconds: None,
             options: dict | None = None,
             on_doc: Callable[[Cell, dict], None] | None = None) -> None:
    """Every unfinished cell of one seed; cells on the same rows share one workspace (teachers
    trained once). `options`: extra evaluations (sweep.extras) recorded in each cell. Each
    finished cell's document is written to OUT/cells/ (or handed to `on_doc`, and `out` may be
    None: a Dask worker returns them to the client, sweep.cluster)."""
    fp = fingerprint(base, dev, options)
    todo = [c for c in cells if out is None or not done(out, seed, c, fp)]
    if not todo:
        return
    keras = quiet_import("keras")
    for key in dict.fromkeys(c.rows_key() for c in todo):
        group = [c for c in todo if c.rows_key() == key]
        seed_cfg = dataclasses.replace(group[0].config(base, seed), method=base.method)
        prepared = pipeline.prepare(seed_cfg, dev=dev)
        ws = pipeline.workspace(prepared, seed_cfg)
        for cell in group:
            cfg = cell.config(base, seed)
            arms, results, seconds = pipeline.timed_run(cfg, prepared, ws=ws)
            parts = prepared.split
            doc = {"fingerprint": fp, "seed": seed, "dev": dev, "cell": dataclasses.asdict(cell),
                   "cell_id": cell.id, "method_settings": dataclasses.asdict(cfg.settings()),
                   "seconds": round(seconds, 2), "test_rows": len(parts.test),
                   "train_rows": len(parts.teacher_train) + len(parts.student_train),
                   "simulated": bool(getattr(prepared, "simulated", False)),
                   "arms": results, **extra_results(options or {}, ws, arms, prepared)}
            doc = json.loads(json.dumps(doc, default=_jsonable))  # plain JSON types
            if on_doc is None:
                write_cell(out, seed, cell, doc)
            else:
                on_doc(cell, doc)
            on_cell(cell, seconds)
            del arms
        keras.backend.clear_session()


def write_cell(out: Path, seed: int, cell: Cell, doc: dict) -> None:
    """One finished cell, written atomically: a killed sweep leaves whole cells only."""
    path = cell_path(out, seed, cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(doc))


def _jsonable(v):
    if hasattr(v, "tolist"):
        return v.tolist()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


_QUEUE = None
"""A pool worker's progress queue (set by _worker_init: a Queue passes only at start-up)."""


def _worker_init(queue=None, parent: int | None = None) -> None:
    """A pool worker: dies with the sweep (even a SIGKILLed one, issue 23), leaves Ctrl-C to
    the parent, and runs TensorFlow on one thread."""
    global _QUEUE
    if parent is not None:
        die_with_parent(parent)
    _QUEUE = queue
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group: the parent decides
    one_thread()


def one_thread() -> None:
    """TensorFlow on one thread in this process (a sweep runs one seed per core)."""
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    tf = quiet_import("tensorflow")
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def _worker(base: Config, seed: int, cells: list[Cell], out: str, dev: bool,
            options: dict | None = None) -> int:
    run_seed(base, seed, cells, Path(out), dev=dev, options=options,
             on_cell=lambda cell, seconds: _QUEUE.put((seed, cell.id, seconds)))
    return seed


def run_sweep(base: Config, cells: list[Cell], seeds: list[int], out: Path, *, dev: bool,
              workers: int, progress: bool = True, options: dict | None = None,
              runner: Callable | None = None) -> None:
    """Run every unfinished (seed, cell), `workers` seeds at a time, with a progress bar; or
    by `runner(base, {seed: unfinished cells}, out, dev, options, tick)` (sweep.cluster's
    run_on_dask for `--scheduler`)."""
    check_settings(out, base, dev, options)
    fp = fingerprint(base, dev, options)
    total = len(cells) * len(seeds)
    finished = sum(done(out, s, c, fp) for s in seeds for c in cells)
    bar = progress_bar(total=total, initial=finished, unit="cell", disable=not progress,
                       desc="sweep")
    todo = [s for s in seeds if any(not done(out, s, c, fp) for c in cells)]
    try:
        if runner is not None:
            runner(base, {s: [c for c in cells if not done(out, s, c, fp)] for s in todo},
                   Path(out), dev, options, lambda seed, cell_id: _tick(bar, seed, cell_id))
            return
        if workers <= 1 or len(todo) <= 1:
            for seed in todo:
                run_seed(base, seed, cells, out, dev=dev, options=options,
                         on_cell=lambda cell, sec, s=seed: _tick(bar, s, cell.id))
            return
        _run_parallel(base, cells, todo, out, dev, workers, bar, options)
    finally:
        bar.close()


def _tick(bar, seed, cell_id) -> None:
    bar.set_postfix_str(f"seed {seed} {cell_id}", refresh=False)
    bar.update(1)


def _run_parallel(base, cells, seeds, out, dev, workers, bar, options=None) -> None:
    """Seeds in `workers` spawned processes (never forked after JAX), which die with this one;
    progress comes back through one Queue (no Manager process to outlive a killed sweep)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()

    def drain() -> None:
        while not queue.empty():
            seed, cell_id, _ = queue.get()
            _tick(bar, seed, cell_id)

    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init,
                             initargs=(queue, os.getpid())) as pool:
        pending = {pool.submit(_worker, base, s, cells, str(out), dev, options) for s in seeds}
        try:
            while pending:
                finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                drain()
                for f in finished:
                    f.result()  # re-raise a worker's error here
        except BaseException:
            _stop_pool(pool)  # SIGINT/SIGTERM or an error: never wait for the other seeds
            raise
        drain()


def _stop_pool(pool) -> None:
    """Cancel queued seeds and terminate the running ones (their cells are written atomically,
    so a stopped seed leaves only whole cells); the executor has no public kill."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        proc.terminate()
    for proc in processes:
        proc.join(10)


CELL_KEYS = ("fingerprint", "seed", "cell", "cell_id", "arms")
_WARNED: set[str] = set()


def load_cells(out: Path) -> list[dict]:
    """Every finished cell document under OUT/cells/. A file there that is not one (bad JSON,
    another tool's file) is skipped with one warning line naming it, once per process: the
    sweep's own cells are written whole (write_atomic), so it is not ours."""
    cells = []
    for path in sorted((Path(out) / CELLS_DIR).glob("seed*/*.json")):
        doc, why = read_cell(path)
        if doc is not None:
            cells.append(doc)
        elif str(path) not in _WARNED:
            _WARNED.add(str(path))
            print(f"{PROG}: warning: skipped {path}: {why}; not a cell of this sweep, move it "
                  f"out of {CELLS_DIR}/", file=sys.stderr)
    return cells


def read_cell(path: Path) -> tuple[dict | None, str]:
    """(the cell document, "") or (None, why it is not one)."""
    try:
        if path.stat().st_size > MAX_CELL_BYTES:
            return None, f"{path.stat().st_size:,} bytes, a cell has under {MAX_CELL_BYTES:,}"
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as e:
        return None, f"unreadable ({type(e).__name__})"
    if not isinstance(doc, dict) or not all(k in doc for k in CELL_KEYS):
        return None, f"lacks {', '.join(k for k in CELL_KEYS if not isinstance(doc, dict) or k not in doc)}"
    if not isinstance(doc["arms"], dict) or not isinstance(doc["cell"], dict):
        return None, "its 'arms' or 'cell' is not an object"
    return doc, ""


MAX_CELL_BYTES = 16 * 2**20
"""A cell document is tens of kB (histories included); anything past 16 MB is not one."""


SETTINGS_FILE = "settings.json"
"""OUT/settings.json: what every cell of the sweep was computed with (fingerprint's input)."""


def settings(base: Config, dev: bool, options: dict | None = None) -> dict:
    """The settings that make a cell's numbers (fingerprint hashes this), as JSON values."""
    skip = {"out", "seed", "method", "temperature", "alpha", "soft_loss", "quiet"}
    doc = {k: v for k, v in base.to_dict().items() if k not in skip
           and not (k in UNSET_OMITTED and v is None)}
    return json.loads(json.dumps({**doc, "dev": dev, **({"options": options} if options else {})},
                                 sort_keys=True, default=str))


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 32 else text[:14] + "..." + text[-14:]


def check_settings(out: Path, base: Config, dev: bool, options: dict | None = None) -> None:
    """Refuse to resume a sweep in OUT with other settings (its summary would mix both): one
    line naming what differs and the fix; record the settings of a new sweep."""
    new, path = settings(base, dev, options), Path(out) / SETTINGS_FILE
    fp = fingerprint(base, dev, options)
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError, RecursionError):
            raise InputError(f"{path}: unreadable; it records the sweep's settings, use a new "
                             f"--out") from None
        if not isinstance(old, dict):
            raise InputError(f"{path}: not a settings object; use a new --out") from None
        diff = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        if diff:
            shown = "; ".join(f"{k}: {_short(old.get(k, 'unset'))} there, "
                              f"{_short(new.get(k, 'unset'))} now"
                              for k in diff[:2]) + ("; ..." if len(diff) > 2 else "")
            raise InputError(f"{out}: a sweep with other settings ({shown}); its cells would "
                             f"mix with these in one summary; use a new --out, or the same "
                             f"settings to resume it")
        return
    other = {c.get("fingerprint") for c in load_cells(out)} - {fp}
    if other:
        raise InputError(f"{out}: holds cells computed with other settings (fingerprint "
                         f"{sorted(other)[0]}, now {fp}); use a new --out")
    Path(out).mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(new, indent=2, sort_keys=True) + "\n")
