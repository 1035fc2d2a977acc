"""Train from Parquet tables larger than memory: `train --data DIR_OR_GLOB` streams them.

Usage:
    python -m sdss_distill.data synth --rows 5000000 --out data/sim/part-0.parquet
    python -m sdss_distill.train --data data/sim/ --method offline --out runs/sim --epochs 3 --batch-size 1024
    python -m sdss_distill.train --data 'data/faint/*.parquet' --method offline --out runs/faint

A single CSV or Parquet file keeps the in-memory path (train.py). A directory or glob of
Parquet files is never held: every pass reads it chunk by chunk (data/stream.py), cleans
each chunk with quality.check_values, and assigns rows to teacher-train / student-train /
test by a hash of the object id (data.stream.HashSplit). The passes:

1. statistics: cleaning counts, subset sizes, the normalisation mean and variance of each
   model's features over its fit rows (merged chunk by chunk), and the early-stopping rows
   (a hash-selected slice of each training subset, at most VALIDATION_ROWS, held in memory);
2. per epoch of each model, its fit rows in a seeded random row-group order through a
   bounded shuffle buffer into tf.data; the student's teacher logits are computed on the fly
   (the frozen teacher runs on each batch, reading its own view);
3. the test rows, scored batch by batch into the same report as the in-memory run.

Only `--method offline` is streamed. Memory is bounded by the shuffle buffer, the row group
being read and the early-stopping rows, not by the table (scripts/bench_stream.py).
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime

import numpy as np

from sdss_distill import __version__
from sdss_distill.core.errors import InputError
from sdss_distill.core.io import quiet_import
from sdss_distill.core.schema import STUDENT_VIEW, asinh_scales, colour_pairs, colours, get_view
from sdss_distill.data.stream import (
    PARTS,
    SUBSET_PARTS,
    Cleaning,
    Extremes,
    HashSplit,
    Moments,
    ParquetSource,
)
from sdss_distill.data.table import read_column_map
from sdss_distill.distill import registry
from sdss_distill.runs.report import STREAMED_NOTE, models_and_timing, save_run, simulated_fields
from sdss_distill.runs.rundir import Layout, RunDir

VALIDATION_ROWS = 50_000  # early-stopping rows per training subset, at most (about: hash-selected)
LATENCY_ROWS = 2000  # test rows kept for the Keras latency measurement (as many as the CSV run's)


def check_supported(cfg, *, export: bool = False) -> None:
    """One line before any work if the streaming path cannot do what was asked."""
    supported = registry.streaming()
    if cfg.method not in supported:
        raise InputError(f"--method {cfg.method}: training from a directory or glob of Parquet "
                         f"files supports {', '.join(supported)} only; use --method "
                         f"{supported[0]}, or pass one CSV/Parquet file for {cfg.method}")
    for name in ("rows", "train_sample"):
        if getattr(cfg, name) is not None:
            raise InputError(f"{name} = {getattr(cfg, name)!r}: not supported when streaming from "
                             f"a directory or glob; pass one CSV/Parquet file or a dataset name")
    if export:
        raise InputError("--export: a run streamed from a directory or glob cannot be exported "
                         "yet (export re-reads the table by row position); drop --export")


def validation_fractions(cfg, rows: int) -> tuple[float, float]:
    """Each training subset's early-stopping fraction: the config's, capped at VALIDATION_ROWS."""
    return tuple(min(cfg.validation_fraction, VALIDATION_ROWS / max(rows * f, 1.0))
                 for f in cfg.split[:2])


class Views:
    """Column positions of the teacher's and the student's views in the columns read."""

    def __init__(self, teacher_view: str):
        self.teacher, self.student = get_view(teacher_view), get_view(STUDENT_VIEW)
        self.columns = tuple(dict.fromkeys([*self.teacher.columns, *self.student.columns]))
        self.t = np.array([self.columns.index(c) for c in self.teacher.columns])
        self.s = np.array([self.columns.index(c) for c in self.student.columns])


class Stats:
    """What the first pass learns: cleaning, sizes, normalisation, early-stopping rows."""

    def __init__(self, views: Views):
        import keras

        from sdss_distill.models.mlp import SkyFeatures
        self.views, self.cleaning = views, Cleaning()
        self.sizes = dict.fromkeys(PARTS, 0)
        self.sky = {v.name: SkyFeatures(colour_pairs(v.columns), asinh_scales(v.columns))
                    for v in (views.teacher, views.student)}
        self.moments = {v.name: Moments(len(v.columns) + len(colour_pairs(v.columns)))
                        for v in (views.teacher, views.student)}
        self.domain = Extremes(len(views.student.columns)
                               + len(colour_pairs(views.student.columns)))
        self.val: dict[int, list] = {1: [], 3: []}
        self.latency_x: list = []
        self._keras = keras

    def features(self, view, x: np.ndarray) -> np.ndarray:
        """The model's own SkyFeatures output (float32), the input of its Normalization."""
        return self._keras.ops.convert_to_numpy(self.sky[view.name](x.astype("float32")))

    def add(self, chunk) -> None:
        self.cleaning.add(chunk)
        v = self.views
        for k, name in enumerate(PARTS):
            self.sizes[name] += int((chunk.part == k).sum())
        teacher_fit, student_fit = chunk.values[chunk.part == 0], chunk.values[chunk.part == 2]
        self.moments[v.teacher.name].add(self.features(v.teacher, teacher_fit[:, v.t]))
        student_x = chunk.values[np.isin(chunk.part, (2, 3))][:, v.s]
        self.moments[v.student.name].add(self.features(v.student, student_fit[:, v.s]))
        self.domain.add(np.column_stack([student_x, -np.diff(student_x, axis=1)]))
        for k in self.val:
            rows = chunk.part == k
            self.val[k].append((chunk.values[rows].astype("float32"), chunk.y[rows]))
        missing = LATENCY_ROWS - sum(map(len, self.latency_x))
        if missing > 0:
            self.latency_x.append(chunk.values[chunk.part == 4][:missing].astype("float32"))

    def normalisation(self, view) -> tuple[np.ndarray, np.ndarray]:
        m = self.moments[view.name]
        return m.mean.astype("float32"), m.variance.astype("float32")

    def validation(self, part: int) -> tuple[np.ndarray, np.ndarray]:
        x, y = zip(*self.val[part])
        return np.concatenate(x), np.concatenate(y)

    def domain_card(self) -> dict:
        cols = self.views.student.columns
        pairs = [f"{a}-{b}" for a, b in colours(cols)]
        span = [[float(lo), float(hi)] for lo, hi in zip(self.domain.lo, self.domain.hi)]
        return {"rows": "student_train", "n": self.sizes["student_fit"] + self.sizes["student_val"],
                "columns": dict(zip(cols, span)), "colours": dict(zip(pairs, span[len(cols):]))}


def run(cfg) -> dict:
    """The offline method streamed: teacher, distilled student and baseline; returns the report."""
    say = (lambda msg: None) if cfg.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    started = time.perf_counter()
    check_supported(cfg)
    out = RunDir(cfg.out)
    out.check_writable()
    views = Views(cfg.teacher_view)
    source = ParquetSource(cfg.data, views.columns, read_column_map(cfg.columns))
    split = HashSplit(cfg.seed, tuple(cfg.split), validation_fractions(cfg, source.rows),
                      source.id_column)
    tag = "SIMULATED data, not SDSS: " if source.simulated else ""
    say(f"{tag}data: {cfg.data}: {len(source.files)} Parquet file(s), {source.rows:,} rows, streamed; "
        f"split by a hash of {source.id_column}")
    quiet_import("keras")
    quiet_import("tensorflow")
    from sdss_distill.distill.fit import FitSettings

    stats = Stats(views)
    for chunk in source.chunks(split):
        stats.add(chunk)
    cleaning = stats.cleaning.report(cfg.data)
    sizes = {s: sum(stats.sizes[PARTS[k]] for k in ks) for s, ks in SUBSET_PARTS.items()}
    split = HashSplit(split.seed, split.fractions, split.validation, split.id_column,
                      {**sizes, **stats.sizes})
    for name, n in stats.sizes.items():
        if n == 0:
            raise InputError(f"--data {cfg.data}: no rows fall in {name} ({cleaning.summary()}); "
                             f"the table is too small to split by id hash; add rows or pass one file")
    say(f"data: {cleaning.summary()}; split {sizes['teacher_train']:,} teacher-train / "
        f"{sizes['student_train']:,} student-train / {sizes['test']:,} test "
        f"(early stopping on {stats.sizes['teacher_val']:,} / {stats.sizes['student_val']:,})")

    from sdss_distill.distill.stream_fit import evaluate, train_models
    settings = FitSettings(cfg.epochs, cfg.batch_size, cfg.patience, cfg.learning_rate, cfg.seed)
    fit_started = time.perf_counter()
    arms = train_models(cfg, source, split, stats, settings, say)
    results = evaluate(arms, source, split, stats)
    seconds = time.perf_counter() - fit_started
    source.check_unchanged()

    report = build_report(cfg, source, split, cleaning, sizes, results, stats, started, seconds)
    save_run(out, {name: arm.model for name, arm in arms.items()}, split, report)
    layout = out.current()
    for name, m in results.items():
        say(f"{name:16s} test accuracy {m['test_accuracy']:.2%}  ({m['parameters']:,} parameters)")
    say(f"{tag}wrote run {layout.run_id} to {cfg.out} in {time.perf_counter() - started:.1f} s "
        f"(figures in {os.path.join(cfg.out, Layout.FIGURE_DIR)}; by population: {STREAMED_NOTE})")
    return report


def build_report(cfg, source, split, cleaning, sizes, results, stats, started, seconds) -> dict:
    """report.build_report's keys, with the files' hashes and the hash split for row positions."""
    fit_s = sum(m["train_s"] or 0 for m in results.values())
    return {
        **simulated_fields(source.simulated),
        "version": __version__, "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": cfg.to_dict(), "method": cfg.method, "method_settings": {},
        "data": {"path": os.path.abspath(cfg.data),  # the directory or glob, made absolute
                 "sha256": source.sha256, "cleaning": cleaning.summary(),
                 "rows_read": cleaning.rows_read, "rows_kept": cleaning.rows_kept,
                 "dropped": cleaning.dropped, "drop_examples": cleaning.examples,
                 "split_sizes": sizes, "streamed": True,
                 "files": [{"path": os.path.abspath(p), "sha256": s}
                           for p, s in zip(source.files, source.sha256s)],
                 "split": {"kind": "hash", "id_column": split.id_column,
                           "fractions": list(split.fractions),
                           "validation_fraction": list(split.validation), "parts": stats.sizes},
                 "domain": stats.domain_card()},
        "evaluation": {"not_available": STREAMED_NOTE},
        **models_and_timing(results, fit_s, seconds, started),
    }

