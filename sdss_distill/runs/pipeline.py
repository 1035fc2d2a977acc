"""One run, top to bottom: load -> clean -> split -> method (teachers, students, baselines) ->
evaluate every arm on the held-out rows -> report -> save. `train` and the sweep runner both
go through here; `run` decides once whether the table is held in memory or streamed.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sdss_distill.core.io import quiet_import
from sdss_distill.core.schema import ARMS, STUDENT, TEACHER, get_view
from sdss_distill.data import datasets, subsample
from sdss_distill.data.stream import is_stream_source
from sdss_distill.data.table import (
    CleaningReport,
    Split,
    clean,
    features,
    labels,
    read_column_map,
    split,
)
from sdss_distill.distill import metrics as ev
from sdss_distill.distill import registry
from sdss_distill.distill.population import Populations
from sdss_distill.runs import stream
from sdss_distill.runs.calibration import run_section
from sdss_distill.runs.config import Config
from sdss_distill.runs.report import build_report, save_run
from sdss_distill.runs.rows import RunRows
from sdss_distill.runs.rundir import Layout, RunDir

LATENCY_ROLES = ARMS


@dataclass
class Prepared:
    """A cleaned table and its split. With `dev`, the split's test rows are gone and the rest
    is split again, so "test" is dev-test: carved from training rows only."""

    path: str
    """The dataset name or the table's absolute path (what the run records)."""
    sha256: str
    df: pd.DataFrame
    cleaning: CleaningReport
    split: Split
    dev: bool = False
    simulated: bool = False
    """True for a table that says it is SIMULATED (data.synth's Parquet metadata)."""
    streamed = False

    def split_sizes(self) -> dict:
        return {k: len(v) for k, v in self.split.subsets().items()}

    def describe(self) -> str:
        parts = self.split
        cal = f"{len(parts.calibration)} calibration / " if len(parts.calibration) else ""
        return (f"{self.cleaning.summary()}; split {len(parts.teacher_train)} teacher-train / "
                f"{len(parts.student_train)} student-train / {cal}{len(parts.test)} test")

def prepare(cfg: Config, *, dev: bool = False) -> Prepared:
    source, table = datasets.load(cfg.data, read_column_map(cfg.columns))
    path, sha256 = source.record, table.attrs["sha256"]
    df, cleaning = clean(table, get_view(cfg.teacher_view))
    parts = split(df, cfg.split, cfg.seed)
    if dev:
        df = df.loc[parts.rows("non_test")]
        parts = split(df, cfg.split, cfg.seed)
    if cfg.train_sample is not None:  # after splitting: the test rows stay the full run's
        parts = subsample.only_sample(df, parts, cfg.train_sample)
    if cfg.rows is not None:
        parts = subsample.subsample(df, parts, cfg.rows, cfg.seed)
    return Prepared(path, sha256, df, cleaning, parts, dev, bool(table.attrs.get("simulated")))

def workspace(prepared: Prepared, cfg: Config, say=None):
    """The seed's workspace (teachers trained in it are reused by every method asked of it)."""
    from sdss_distill.distill.workspace import Workspace
    return Workspace(prepared.df, prepared.split, seed=cfg.seed, teacher_view=cfg.teacher_view,
                     validation_fraction=cfg.validation_fraction, say=say)

def run_method(ws, cfg: Config) -> list:
    """The arms of `cfg.method` on the workspace's seed."""
    arms = registry.get(cfg.method).run(ws, cfg, cfg.settings())
    names = [a.name for a in arms]
    missing = set(ARMS) - set(names)
    if missing or len(set(names)) != len(names):
        raise RuntimeError(f"method {cfg.method} returned arms {names}; each name once, "
                           f"including teacher, student and baseline")
    return arms

def evaluate(arms: list, test: pd.DataFrame, *, latency: bool = False,
             curves: bool = True, populations=None) -> dict:
    """Every arm's metrics on `test`; non-teacher arms also against the teacher arm;
    with `populations` (population.Populations of `test`), also per sample, r-magnitude bin
    and training domain, and the reliability table."""
    y = labels(test)
    out_logits = {arm.name: arm.logits(test) for arm in arms}
    results = {}
    for arm in arms:
        m = {**arm.record(), **ev.classification(y, out_logits[arm.name]), **arm.notes}
        if arm.role != TEACHER:
            m.update(ev.teacher_student(out_logits[TEACHER], out_logits[arm.name]))
        if latency and arm.role in LATENCY_ROLES and arm.model is not None:
            m["latency"] = ev.keras_latency(arm.model, features(test, arm.view))
        if curves and arm.fitted:
            m["history"] = arm.fitted.history
        if populations is not None:
            m.update(populations.metrics(y, out_logits[arm.name]))
        if "zphot" in arm.notes:  # a redshift head (distill/zphot.py): its test-row quality
            from sdss_distill.distill.zphot import scores
            m["zphot"] = {**arm.notes["zphot"], **scores(arm.model, test, arm.view,
                                                         arm.notes["zphot"]["error_scale"])}
        results[arm.name] = m
    return results

def timed_run(cfg: Config, prepared: Prepared, say=None, ws=None, **evaluate_kwargs):
    """(arms, results, seconds): the method on a prepared table, evaluated on its test rows."""
    start = time.perf_counter()
    ws = ws or workspace(prepared, cfg, say)
    arms = run_method(ws, cfg)
    results = evaluate(arms, prepared.df.loc[prepared.split.test], **evaluate_kwargs)
    return arms, results, time.perf_counter() - start


def run(cfg: Config) -> dict:
    """The whole pipeline for one config; returns the report (also written under cfg.out)."""
    return train(cfg).report


STREAMED_CALIBRATION = ("a streamed run keeps no calibration rows in memory: prediction sets, "
                        "the temperature and purity selections need an in-memory run")


@dataclass
class Trained:
    """What a run leaves in memory: its report, its rows as saved (the run version, split and
    cleaned table; None when streamed) and its models, so `train --export` need not read them
    back."""

    report: dict
    rows: RunRows | None
    models: dict


def train(cfg: Config) -> Trained:
    """Prepare (in memory, or a first pass over streamed Parquet files), run the method,
    evaluate, report and save one run: the same steps and report for both."""
    say = (lambda msg: None) if cfg.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    started = time.perf_counter()
    out = RunDir(cfg.out)
    out.check_writable()  # before any work: an --out that cannot hold a run fails now

    streamed = is_stream_source(cfg.data)
    prepared = stream.prepare(cfg, say) if streamed else prepare(cfg)
    tag = "SIMULATED data, not SDSS: " if prepared.simulated else ""
    say(f"{tag}data: {prepared.path}: {prepared.describe()}")

    # Imported after the data checks, so bad input fails in a second, not after TF starts.
    quiet_import("keras")
    say(f"method: {cfg.method} ({registry.get(cfg.method).summary})")
    arms, results, seconds, evaluation = _method(cfg, prepared, say)

    report = build_report(cfg, prepared, results, started, seconds, evaluation)
    if streamed:
        report["data"].update(prepared.data_fields())
        report["calibration"] = {"not_available": STREAMED_CALIBRATION}
    else:
        report["calibration"] = run_section(prepared.df, prepared.split, cfg,
                                            next(a for a in arms if a.name == STUDENT))
    models = {arm.name: arm.model for arm in arms if arm.model is not None}
    save_run(out, models, prepared.split, report)
    layout = out.current()
    for name, m in results.items():
        say(f"{name:16s} test accuracy {m['test_accuracy']:.2%}  "
            f"({m['parameters']:,} parameters)")
    say(f"{tag}wrote run {layout.run_id} to {cfg.out} in {time.perf_counter() - started:.1f} s "
        f"(figures in {Path(cfg.out) / Layout.FIGURE_DIR})")
    rows = None if streamed else RunRows(prepared.path, prepared.sha256, prepared.df, prepared.split,
                                         cfg.to_dict(), layout)
    return Trained(report, rows, models)


def _method(cfg: Config, prepared, say):
    """(arms, results, seconds, evaluation summary) of the method on a prepared table."""
    if prepared.streamed:
        start = time.perf_counter()
        arms = run_method(stream.workspace(prepared, cfg, say), cfg)
        results, evaluation = stream.evaluate(arms, prepared)
        return arms, results, time.perf_counter() - start, evaluation
    parts = prepared.split
    pops = Populations(prepared.df.loc[parts.test], prepared.df.loc[parts.student_train])
    arms, results, seconds = timed_run(cfg, prepared, say, latency=True, populations=pops)
    return arms, results, seconds, pops.summary()
