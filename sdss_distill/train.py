"""Train a teacher on photometry + spectra, distil a photometric student, compare to a baseline.

Usage:
    python -m sdss_distill.train --data ../shared/data/sdss_dr14_skyserver_10k.csv
    python -m sdss_distill.train --out runs/seed3 --seed 3 --quiet
    python -m sdss_distill.train --config run.toml --alpha 0.5 --temperature 4
    python -m sdss_distill.train --help

Data flow: load -> clean -> split -> teacher -> soft targets -> student and baseline ->
evaluate on the test rows -> save models, split and reports under --out (all or nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from . import __version__
from .config import Config, make_config
from .data import (
    clean,
    features,
    file_sha256,
    labels,
    load_table,
    read_column_map,
    resolve_data_path,
    split,
    validation_slice,
)
from .edge import machine
from .errors import InputError, run_cli
from .runtime import quiet_import
from .schema import STUDENT_VIEW, TEACHER_VIEWS, get_view

PROG = "python -m sdss_distill.train"


def parse_args(argv=None) -> argparse.Namespace:
    d = Config()
    p = argparse.ArgumentParser(
        prog=PROG, description=__doc__,
        epilog="Flags override the --config TOML file, which overrides the defaults shown. "
               "Writes OUT/models/{teacher,student,baseline}.keras, OUT/models/split.json, "
               "OUT/models/run.json and OUT/reports/report.{json,md}.",
        formatter_class=argparse.RawDescriptionHelpFormatter, argument_default=None)
    p.add_argument("--data", help="SDSS table (CSV or Parquet); default: $SDSS_DISTILL_DATA, "
                   "else data/sdss.csv")
    p.add_argument("--columns", metavar="MAP.toml",
                   help="TOML table {your column name = canonical name} for other tables")
    p.add_argument("--config", metavar="RUN.toml", help="TOML file with any of the settings below")
    p.add_argument("--out", metavar="DIR", help=f"run directory (default: {d.out!r})")
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
    p.add_argument("--epochs", type=int, help=f"max epochs; early stopping (default: {d.epochs})")
    p.add_argument("--patience", type=int, help=f"early-stopping patience (default: {d.patience})")
    p.add_argument("--batch-size", type=int, help=f"(default: {d.batch_size})")
    p.add_argument("--learning-rate", type=float, help=f"Adam step size (default: {d.learning_rate})")
    p.add_argument("--quiet", action="store_true", default=None, help="no progress output")
    p.add_argument("--export", action="store_true",
                   help="then export the student to TFLite (as python -m sdss_distill.export)")
    p.add_argument("--debug", action="store_true", help="show tracebacks for input errors")
    return p.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> Config:
    flags = {k: v for k, v in vars(args).items() if k not in ("config", "debug", "export")}
    return make_config(args.config, **flags)


def run(cfg: Config) -> dict:
    """The whole pipeline for one config; returns the report (also written under cfg.out)."""
    say = (lambda msg: None) if cfg.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    started = time.perf_counter()
    out = _check_out(Path(cfg.out))

    path = resolve_data_path(cfg.data)
    table = load_table(path, read_column_map(cfg.columns))
    teacher_view, student_view = get_view(cfg.teacher_view), get_view(STUDENT_VIEW)
    df, cleaning = clean(table, teacher_view)
    parts = split(df, cfg.split, cfg.seed)
    say(f"data: {path}: {cleaning.summary()}; split {len(parts.teacher_train)} teacher-train / "
        f"{len(parts.student_train)} student-train / {len(parts.test)} test")

    # Imported after the data checks, so bad input fails in a second, not after TF starts.
    quiet_import("keras")

    stages = Stages(cfg, df, say)
    teacher = stages.teacher(parts.teacher_train, teacher_view)
    students = stages.students(teacher, parts.student_train, teacher_view, student_view)

    test = df.loc[parts.test]
    models = {"teacher": (teacher, teacher_view),
              **{name: (model, student_view) for name, model in students.items()}}
    results = stages.evaluate(models, test)
    report = {
        "version": __version__, "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": cfg.to_dict(),
        "data": {"path": str(path.resolve()), "sha256": file_sha256(path),
                 "cleaning": cleaning.summary(),
                 "rows_read": cleaning.rows_read, "rows_kept": cleaning.rows_kept,
                 "dropped": cleaning.dropped,
                 "split_sizes": {k: len(v) for k, v in parts.subsets().items()}},
        "models": results,
        "latency_ratio_teacher_over_student": (
            results["teacher"]["latency"]["latency_us_median"]
            / results["student"]["latency"]["latency_us_median"]),
        "machine": machine(),
        "timing": {"train_s": round(sum(stages.seconds.values()), 2),
                   "total_s": round(time.perf_counter() - started, 2)},
    }
    _save(out, {name: model for name, (model, _) in models.items()}, parts, report)
    for name, m in results.items():
        say(f"{name:8s} test accuracy {m['test_accuracy']:.2%}  ({m['parameters']:,} parameters)")
    say(f"wrote {out / 'models'} and {out / 'reports'} in {time.perf_counter() - started:.1f} s")
    return report


class Stages:
    """The training stages of one run, sharing its config, cleaned table and bookkeeping."""

    def __init__(self, cfg: Config, df, say):
        self.cfg, self.df, self.say = cfg, df, say
        self.epochs: dict[str, int] = {}
        self.seconds: dict[str, float] = {}
        self.fit_args = dict(epochs=cfg.epochs, batch_size=cfg.batch_size, patience=cfg.patience,
                             learning_rate=cfg.learning_rate)

    def arrays(self, subset, view):
        """[(x_fit, y_fit), (x_val, y_val)]: the subset minus its early-stopping slice, and the slice."""
        fit_rows, val_rows = validation_slice(self.df, subset, self.cfg.validation_fraction,
                                              self.cfg.seed)
        return [(features(self.df.loc[r], view), labels(self.df.loc[r])) for r in (fit_rows, val_rows)]

    def _timed(self, name, train):
        t0 = time.perf_counter()
        self.epochs[name] = train()
        self.seconds[name] = time.perf_counter() - t0
        self.say(f"{name}: {self.epochs[name]} epochs in {self.seconds[name]:.1f} s")

    def teacher(self, rows, view):
        """The deep teacher, trained on its view of the teacher-train rows."""
        import keras

        from .distill import train_teacher
        from .models import build_mlp
        (x, y), val = self.arrays(rows, view)
        keras.utils.set_random_seed(self.cfg.seed)
        teacher = build_mlp(view, self.cfg.teacher_hidden, x, name="teacher",
                            dropout=self.cfg.teacher_dropout)
        self._timed("teacher", lambda: train_teacher(teacher, x, y, val, **self.fit_args))
        return teacher

    def students(self, teacher, rows, teacher_view, student_view) -> dict:
        """The distilled student and the baseline (alpha = 0): same rows, same initial weights."""
        import keras

        from .distill import distil_student, soft_targets
        from .models import build_mlp
        (x, y), (x_val, y_val) = self.arrays(rows, student_view)
        (xt, _), (xt_val, _) = self.arrays(rows, teacher_view)
        soft, soft_val = soft_targets(teacher, xt), soft_targets(teacher, xt_val)
        students = {}
        for name, alpha in (("student", self.cfg.alpha), ("baseline", 0.0)):
            keras.utils.set_random_seed(self.cfg.seed)
            model = students[name] = build_mlp(student_view, self.cfg.student_hidden, x, name=name)
            self._timed(name, lambda m=model, a=alpha: distil_student(
                teacher, m, x, y, soft, (x_val, y_val, soft_val),
                temperature=self.cfg.temperature, alpha=a, **self.fit_args))
        return students

    def evaluate(self, models: dict, test) -> dict:
        """Every model's test-row metrics; for students also KL and agreement with the teacher."""
        from . import evaluate
        from .models import logits
        y = labels(test)
        out_logits = {name: logits(model, features(test, view))
                      for name, (model, view) in models.items()}
        results = {}
        for name, (model, view) in models.items():
            versus_teacher = ({} if name == "teacher" else
                              evaluate.teacher_student(out_logits["teacher"], out_logits[name]))
            results[name] = {"view": view.name, "parameters": int(model.count_params()),
                             "epochs": self.epochs[name], "train_s": round(self.seconds[name], 2),
                             **evaluate.classification(y, out_logits[name]), **versus_teacher,
                             "latency": evaluate.keras_latency(model, features(test, view))}
        return results


def _check_out(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a directory; pick a directory")
    return out


def _save(out: Path, models: dict, parts, report: dict) -> None:
    """Write everything to a temp dir under `out`, then move it into place."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".sdss-distill-", dir=out))
    try:
        (tmp / "models").mkdir()
        (tmp / "reports").mkdir()
        for name, model in models.items():
            model.save(tmp / "models" / f"{name}.keras")
        parts.save(tmp / "models" / "split.json", data_sha256=report["data"]["sha256"],
                   data_path=report["data"]["path"])
        run_info = {k: report[k] for k in ("version", "created", "config", "data")}
        (tmp / "models" / "run.json").write_text(json.dumps(run_info, indent=2))
        (tmp / "reports" / "report.json").write_text(json.dumps(report, indent=2))
        from .evaluate import markdown
        (tmp / "reports" / "report.md").write_text(markdown(report))
        for sub in ("models", "reports"):
            (out / sub).mkdir(exist_ok=True)
            for f in (tmp / sub).iterdir():
                os.replace(f, out / sub / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None) -> int:
    args = parse_args(argv)

    def body() -> int:
        cfg = config_from_args(args)
        run(cfg)
        if args.export:
            from .export import export_run
            export_run(Path(cfg.out), quiet=cfg.quiet)
        return 0

    return run_cli(body, PROG, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
