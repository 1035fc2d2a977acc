"""Train a teacher on photometry + spectra, distil a photometric student, compare to a baseline.

Usage:
    python -m sdss_distill.train --data ../shared/data/sdss_dr14_skyserver_10k.csv
    python -m sdss_distill.train --method crossfit --out runs/crossfit --seed 3 --quiet
    python -m sdss_distill.train --config run.toml --alpha 0.5 --temperature 4
    python -m sdss_distill.train --data 'data/sim/*.parquet' --method offline --out runs/sim  # streamed
    python -m sdss_distill.train --method crossfit --set crossfit.folds=10
    python -m sdss_distill.train --help

Data flow: load -> clean -> split -> the method's teachers, students and hard-label baseline
-> evaluate every arm on the test rows -> save models, split and reports under --out (all or
nothing).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sdss_distill import __version__
from sdss_distill.core.errors import run_cli
from sdss_distill.core.io import quiet_import, write_atomic
from sdss_distill.core.schema import TEACHER_VIEWS
from sdss_distill.distill import registry
from sdss_distill.distill.formula import SOFT_LOSSES
from sdss_distill.runs.config import Config, make_config, parse_method_options, read_toml
from sdss_distill.runs.rundir import RunDir

PROG = "python -m sdss_distill.train"


def parse_args(argv=None) -> argparse.Namespace:
    d = Config()
    p = argparse.ArgumentParser(
        prog=PROG, description=__doc__,
        epilog="Methods (--method):\n" + registry.describe() + "\n\n"
               "Flags override the --config TOML file, which overrides the defaults shown. "
               "Writes OUT/models/<arm>.keras (teacher, student, baseline and any other arm of "
               "the method), OUT/models/split.json, OUT/models/run.json and "
               "OUT/reports/report.{json,md}.",
        formatter_class=argparse.RawDescriptionHelpFormatter, argument_default=None)
    p.add_argument("--data", help="SDSS table (CSV or Parquet), or a directory or quoted glob of "
                   "Parquet files, streamed (default: $SDSS_DISTILL_DATA, else data/sdss.csv)")
    p.add_argument("--columns", metavar="MAP.toml",
                   help="TOML table {your column name = canonical name} for other tables "
                        "(default: none)")
    p.add_argument("--config", metavar="RUN.toml",
                   help="TOML file with any of the settings below (default: none)")
    p.add_argument("--out", metavar="DIR", help=f"run directory (default: {d.out})")
    p.add_argument("--method", metavar="NAME",
                   help=f"distillation method, listed below (default: {d.method})")
    p.add_argument("--set", dest="set_options", action="append", metavar="METHOD.KEY=VALUE",
                   help="a method setting, e.g. crossfit.folds=10; repeatable (default: the "
                        "method's own defaults)")
    p.add_argument("--seed", type=int, help=f"split, init and shuffle seed (default: {d.seed})")
    p.add_argument("--split", type=float, nargs=3, metavar=("TEACHER", "STUDENT", "TEST"),
                   help=f"row fractions (default: {' '.join(map(str, d.split))})")
    p.add_argument("--teacher-view", choices=TEACHER_VIEWS,
                   help=f"teacher's columns; paper17 is leaky (default: {d.teacher_view})")
    p.add_argument("--teacher-hidden", type=int, nargs="+", metavar="N",
                   help=f"teacher layer widths (default: {' '.join(map(str, d.teacher_hidden))})")
    p.add_argument("--student-hidden", type=int, nargs="+", metavar="N",
                   help=f"student layer widths (default: {' '.join(map(str, d.student_hidden))})")
    p.add_argument("--temperature", type=float, help=f"softening T (default: {d.temperature})")
    p.add_argument("--alpha", type=float,
                   help=f"weight of the teacher's soft term, 0-1 (default: {d.alpha})")
    p.add_argument("--soft-loss", choices=SOFT_LOSSES,
                   help=f"soft term: T^2 KL or T^2 soft cross-entropy (default: {d.soft_loss})")
    p.add_argument("--epochs", type=int, help=f"max epochs; early stopping (default: {d.epochs})")
    p.add_argument("--patience", type=int, help=f"early-stopping patience (default: {d.patience})")
    p.add_argument("--batch-size", type=int, help=f"rows per step (default: {d.batch_size})")
    p.add_argument("--learning-rate", type=float,
                   help=f"Adam step size (default: {d.learning_rate})")
    p.add_argument("--quiet", action="store_true", default=None,
                   help="no progress output (default: off)")
    p.add_argument("--export", action="store_true",
                   help="then export the student to TFLite, as python -m sdss_distill.export "
                        "(default: off)")
    p.add_argument("--debug", action="store_true",
                   help="show tracebacks for input errors (default: off)")
    return p.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> Config:
    skip = ("config", "debug", "export", "set_options")
    flags = {k: v for k, v in vars(args).items() if k not in skip}
    return make_config(args.config, methods=parse_method_options(args.set_options), **flags)


def run(cfg: Config) -> dict:
    """The whole pipeline for one config; returns the report (also written under cfg.out)."""
    from sdss_distill.data.stream import is_stream_source
    if is_stream_source(cfg.data):  # a directory or glob of Parquet files: never held whole
        from sdss_distill.runs.stream import run as run_streamed
        return run_streamed(cfg)
    from sdss_distill.runs.pipeline import prepare, timed_run
    say = (lambda msg: None) if cfg.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    started = time.perf_counter()
    out = RunDir(cfg.out)
    out.check_writable()  # before any work: an --out that cannot hold a run fails now

    prepared = prepare(cfg)
    parts = prepared.split
    say(f"data: {prepared.path}: {prepared.cleaning.summary()}; split "
        f"{len(parts.teacher_train)} teacher-train / {len(parts.student_train)} student-train / "
        f"{len(parts.test)} test")

    # Imported after the data checks, so bad input fails in a second, not after TF starts.
    quiet_import("keras")
    say(f"method: {cfg.method} ({registry.get(cfg.method).summary})")
    arms, results, seconds = timed_run(cfg, prepared, say, latency=True)

    report = build_report(cfg, prepared, results, started, seconds)
    _save(out, {arm.name: arm.model for arm in arms if arm.model is not None}, parts, report)
    layout = out.current()
    for name, m in results.items():
        say(f"{name:16s} test accuracy {m['test_accuracy']:.2%}  ({m['parameters']:,} parameters)")
    say(f"wrote run {layout.run_id} to {cfg.out} in {time.perf_counter() - started:.1f} s")
    return report


def build_report(cfg: Config, prepared, results: dict, started: float, seconds: float) -> dict:
    parts, cleaning = prepared.split, prepared.cleaning
    train_s = sum(m["train_s"] or 0 for m in results.values() if m["role"] != "combination")
    return {
        "version": __version__, "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": cfg.to_dict(), "method": cfg.method,
        "method_settings": dataclasses.asdict(cfg.settings()),
        "data": {"path": str(prepared.path.resolve()), "sha256": prepared.sha256,
                 "cleaning": cleaning.summary(), "rows_read": cleaning.rows_read,
                 "rows_kept": cleaning.rows_kept, "dropped": cleaning.dropped,
                 "split_sizes": {k: len(v) for k, v in parts.subsets().items()}},
        **models_and_timing(results, train_s, seconds, started),
    }


def models_and_timing(results: dict, fit_s: float, method_s: float, started: float) -> dict:
    """The report's models, teacher/student latency ratio, machine and timings (one definition
    for in-memory and streamed runs)."""
    from sdss_distill.edge.classifier import machine
    return {
        "models": results,
        "latency_ratio_teacher_over_student": (
            results["teacher"]["latency"]["latency_us_median"]
            / results["student"]["latency"]["latency_us_median"]),
        "machine": machine(),
        "timing": {"definition": "fit_s: summed wall time of every model.fit of the run; "
                                 "method_s: the method including evaluation on the test rows; "
                                 "total_s: the whole command up to writing the files, "
                                 "TensorFlow import included",
                   "fit_s": round(fit_s, 2), "method_s": round(method_s, 2),
                   "total_s": round(time.perf_counter() - started, 2)},
    }


def _save(rundir: RunDir, models: dict, parts, report: dict) -> None:
    """Write the run as a new version and switch to it in one step (all or nothing).

    Nothing is carried over: a retrained run has no stale tflite/ or export report.
    """
    from sdss_distill.distill.metrics import markdown
    with rundir.write() as layout:
        report["run_id"] = layout.run_id
        for name, model in models.items():
            model.save(layout.model(name))
        parts.save(layout.split_json, data_sha256=report["data"]["sha256"],
                   data_path=report["data"]["path"])
        run_info = {k: report[k] for k in ("version", "created", "config", "data", "run_id")}
        write_atomic(layout.run_json, json.dumps(run_info, indent=2))
        write_atomic(layout.report_json, json.dumps(report, indent=2))
        write_atomic(layout.report_md, markdown(report))


def main(argv=None) -> int:
    args = parse_args(argv)

    def body() -> int:
        cfg = config_from_args(args)
        from sdss_distill.data.stream import is_stream_source
        if is_stream_source(cfg.data):
            from sdss_distill.runs.stream import check_supported
            if args.method is None and "method" not in (read_toml(args.config) if args.config
                                                         else {}):
                cfg = dataclasses.replace(cfg, method="offline")  # streaming's only method
                if not cfg.quiet:
                    print(f"{PROG}: streamed tables use --method offline", file=sys.stderr)
            check_supported(cfg, export=args.export)
        run(cfg)
        if args.export:
            from sdss_distill.export.convert import export_run
            export_run(Path(cfg.out), quiet=cfg.quiet)
        return 0

    return run_cli(body, PROG, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
