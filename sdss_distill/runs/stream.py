"""Train from Parquet tables larger than memory: `train --data DIR_OR_GLOB` streams them.

Usage:
    python -m sdss_distill.data synth --rows 5000000 --out data/sim/part-0.parquet
    python -m sdss_distill.train --data data/sim/ --out runs/sim --epochs 3 --batch-size 1024
    python -m sdss_distill.train --data 'data/faint/*.parquet' --method offline --out runs/faint

A single CSV or Parquet file keeps the in-memory path. A directory or glob of Parquet files
is never held: every pass reads it chunk by chunk (data/stream.py), cleans each chunk with
quality.check_values, and assigns rows to teacher-train / student-train / test by a hash of
the object id (data.stream.HashSplit). This module is the streamed half of
`pipeline.prepare` and `pipeline.evaluate`: the first pass (cleaning counts, subset sizes,
the student-train domain and the early-stopping rows, a hash-selected slice of each training
subset, at most VALIDATION_ROWS, held in memory), and the test rows scored chunk by chunk.
Between the two the method runs through the registry on a streamed workspace
(distill/stream_source.py: every model on the JAX engine over batches), and the run is
reported and saved by the same code as an in-memory run (`pipeline.train`).

Methods stream when their registry entry says so (`Method.streams`). Memory is bounded by
the shuffle buffers, the row group being read and the early-stopping rows, not by the table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from sdss_distill.core.domain import Domain
from sdss_distill.core.errors import InputError
from sdss_distill.core.schema import ARMS, TEACHER
from sdss_distill.data.stream import PARTS, SUBSET_PARTS, HashSplit, ParquetSource, Views
from sdss_distill.data.table import CleaningReport, read_column_map
from sdss_distill.distill import metrics as ev
from sdss_distill.distill import registry
from sdss_distill.distill.population import StreamedPopulations

VALIDATION_ROWS = 50_000  # early-stopping rows per training subset, at most (about: hash-selected)


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
                 for f in stream_fractions(cfg.split)[:2])


@dataclass
class StreamPrepared:
    """A streamed table after its first pass: what `pipeline.Prepared` is for one in memory."""

    path: str
    sha256: str
    cleaning: CleaningReport
    split: HashSplit
    source: ParquetSource
    stats: object  # distill.stream_source.Stats
    simulated: bool = False
    dev: bool = False
    streamed = True

    def split_sizes(self) -> dict:
        return {s: sum(self.stats.sizes[PARTS[k]] for k in ks) for s, ks in SUBSET_PARTS.items()}

    def describe(self) -> str:
        sizes = self.split_sizes()
        cal = f"{sizes['calibration']:,} calibration (held out) / " if sizes["calibration"] else ""
        return (f"{self.cleaning.summary()}; split {sizes['teacher_train']:,} teacher-train / "
                f"{sizes['student_train']:,} student-train / {cal}{sizes['test']:,} test (early "
                f"stopping on {self.stats.sizes['teacher_val']:,} / "
                f"{self.stats.sizes['student_val']:,}; hash of {self.split.id_column})")

    def data_fields(self) -> dict:
        """The streamed run's extra report["data"] fields: files, the hash split, the domain."""
        return {"path": os.path.abspath(self.path), "streamed": True,
                "drop_examples": self.cleaning.examples,
                "files": [{"path": os.path.abspath(p), "sha256": s}
                          for p, s in zip(self.source.files, self.source.sha256s)],
                "split": {"kind": "hash", "id_column": self.split.id_column,
                          "fractions": list(self.split.fractions),
                          "validation_fraction": list(self.split.validation),
                          "parts": self.stats.sizes},
                "domain": self.stats.domain_card()}


def stream_fractions(split) -> tuple[float, ...]:
    """The hash split's fractions: a streamed run calibrates nothing yet (its report has no
    calibration section), so a calibration fraction goes back to teacher- and student-train
    in proportion rather than being held out for nothing; three fractions stay as given."""
    if len(split) == 3:
        return tuple(split)
    teacher, student, cal, test = split
    return (teacher + cal * teacher / (teacher + student),
            student + cal * student / (teacher + student), test)


def prepare(cfg, say) -> StreamPrepared:
    """Open the files and make the first pass (cleaning, sizes, domain, early-stopping rows)."""
    views = Views(cfg.teacher_view)
    source = ParquetSource(cfg.data, views.columns, read_column_map(cfg.columns))
    split = HashSplit(cfg.seed, stream_fractions(cfg.split), validation_fractions(cfg, source.rows),
                      source.id_column)
    tag = "SIMULATED data, not SDSS: " if source.simulated else ""
    say(f"{tag}data: {cfg.data}: {len(source.files)} Parquet file(s), {source.rows:,} rows, "
        f"streamed; split by a hash of {source.id_column}")
    from sdss_distill.distill.stream_source import Stats  # Keras: after the files' checks
    stats = Stats(views)
    for chunk in source.chunks(split):
        stats.add(chunk)
    cleaning = stats.cleaning.report(cfg.data)
    for name, n in stats.sizes.items():
        if n == 0 and name != "calibration":
            raise InputError(f"--data {cfg.data}: no rows fall in {name} ({cleaning.summary()}); "
                             f"the table is too small to split by id hash; add rows or pass one file")
    prepared = StreamPrepared(cfg.data, source.sha256, cleaning, split, source, stats,
                              source.simulated)
    prepared.split = HashSplit(split.seed, split.fractions, split.validation, split.id_column,
                               {**prepared.split_sizes(), **stats.sizes})
    return prepared


def workspace(prepared: StreamPrepared, cfg, say=None):
    """The seed's streamed workspace: the methods' arm builders on the Parquet files."""
    from sdss_distill.distill.stream_source import StreamData
    from sdss_distill.distill.workspace import Workspace
    data = StreamData(prepared.source, prepared.split, prepared.stats, cfg.seed, say)
    return Workspace(seed=cfg.seed, teacher_view=cfg.teacher_view,
                     validation_fraction=cfg.validation_fraction, say=say, data=data)


def evaluate(arms: list, prepared: StreamPrepared, *, latency: bool = True, curves: bool = True
             ) -> tuple[dict, dict]:
    """Every arm on the test rows, read chunk by chunk: (`pipeline.evaluate`'s results, with
    the same population, domain and reliability entries; the groups' summary)."""
    from sdss_distill.models.mlp import logits
    views = prepared.stats.views
    if any(arm.model is None for arm in arms):
        raise InputError("a streamed run scores models only; this method combines arms in memory")
    cols = {arm.name: views.of(arm.view) for arm in arms}
    student = views.of(views.student)
    r_col = views.columns.index("r")
    inside_domain = Domain(views.student.columns, prepared.stats.domain_card()).rows
    pops = StreamedPopulations(prepared.stats.domain_card())
    scores = {arm.name: ev.Scores() for arm in arms}
    for chunk in prepared.source.chunks(prepared.split):
        rows = chunk.part == 4
        if rows.any():
            x, y = chunk.values[rows].astype("float32"), chunk.y[rows]
            r, inside = chunk.values[rows, r_col], inside_domain(chunk.values[rows][:, student])
            pops.add_rows(r, inside)
            out = {arm.name: logits(arm.model, x[:, cols[arm.name]]) for arm in arms}
            for arm in arms:
                scores[arm.name].add(y, out[arm.name], out[TEACHER])
                pops.add(arm.name, y, out[arm.name], r, inside)
    prepared.source.check_unchanged()
    latency_x = np.concatenate(prepared.stats.latency_x)
    results = {}
    for arm in arms:
        m = {**arm.record(), **scores[arm.name].result(with_teacher=arm.role != TEACHER),
             **arm.notes}
        if latency and arm.role in ARMS:
            m["latency"] = ev.keras_latency(arm.model, latency_x[:, cols[arm.name]])
        if curves and arm.fitted:
            m["history"] = arm.fitted.history
        results[arm.name] = {**m, **pops.metrics(arm.name)}
    return results, pops.summary()
