"""Train a teacher on photometry + spectra, distil a photometric student, compare to a baseline.

Usage:
    python -m sdss_distill.train                       # the packaged sdss dataset (bright + faint)
    python -m sdss_distill.train --data faint --out runs/faint
    python -m sdss_distill.train --method crossfit --out runs/crossfit --seed 3 --quiet
    python -m sdss_distill.train --config run.toml --alpha 0.5 --temperature 4
    python -m sdss_distill.train --data 'data/sim/*.parquet' --method offline --out runs/sim  # streamed
    python -m sdss_distill.train --method crossfit --set crossfit.folds=10
    python -m sdss_distill.train --data faint --rows 1000 --method offline   # a learning-curve point
    python -m sdss_distill.train --method subclass --set subclass.bins=4
    python -m sdss_distill.train --help

Data flow: load -> clean -> split -> the method's teachers, students and hard-label baseline
-> evaluate every arm on the test rows -> save models, split and reports under --out (all or
nothing).
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import sys
import types
from pathlib import Path

from sdss_distill.core.cli import Parser, program
from sdss_distill.core.errors import run_cli
from sdss_distill.core.io import check_apart, read_toml
from sdss_distill.core.schema import TEACHER_VIEWS
from sdss_distill.data.datasets import NAMES_WIN, is_name
from sdss_distill.distill import registry
from sdss_distill.distill.formula import SOFT_LOSSES
from sdss_distill.runs.config import Config, make_config, parse_method_options

PROG = program("train")


SPLIT_HELP = ("fractions of the table: teacher-train, student-train, calibration, test (no "
              "model fits or stops on the calibration slice: it calibrates sets, selections and "
              "z_phot_err); three (teacher, student, test) train on those rows too and "
              "calibrate on the student's early-stopping rows (default: {})")


def parse_args(argv=None) -> argparse.Namespace:
    d = Config()
    p = Parser(
        prog=PROG, description=__doc__,
        epilog="Methods (--method):\n" + registry.describe() + "\n\n"
               "Flags override the --config TOML file, which overrides the defaults shown. "
               "Writes OUT/models/<arm>.keras (teacher, student, baseline and any other arm of "
               "the method), OUT/split.json, OUT/run.json, OUT/reports/report.{json,md} (scores "
               "per sample, r-magnitude bin and training domain too) and OUT/reports/figures/ "
               "(PNG + CSV); "
               "OUT is a symlink to the run's current version (see the docs, run directory).",
        formatter_class=argparse.RawDescriptionHelpFormatter, argument_default=None)
    p.add_argument("--data", help="a packaged dataset (bright: DR14 10k; faint: DR17 27k; sdss: "
                   "both), an SDSS table (CSV or Parquet), or a directory or quoted glob of Parquet "
                   f"files, streamed; {NAMES_WIN} (default: $SDSS_DISTILL_DATA, else sdss)")
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
    p.add_argument("--split", type=float, nargs="+", metavar="F", help=SPLIT_HELP.format(
        " ".join(map(str, d.split))))
    p.add_argument("--rows", type=int, metavar="N",
                   help="train on N of the non-test rows: a seeded sample stratified by class "
                        "(x sample), teacher-train and student-train shrunk in proportion; the "
                        "test rows stay the full run's (default: every row)")
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


def run(cfg: Config) -> dict:
    """The whole pipeline for one config (runs.pipeline.train); returns the report."""
    return trained(cfg).report


def trained(cfg: Config):
    """What the run of `cfg` leaves in memory (runs.pipeline.train: report, rows, models)."""
    from sdss_distill.runs import pipeline  # Keras, JAX, pandas: after the arguments are checked
    return pipeline.train(cfg)


def train(**settings):
    """Train a run as `sdss-distill train` does and return it (an `sdss_distill.api.Run`);
    `sd.train(...)` calls this.

    `settings` are exactly the config keys (`sdss_distill.runs.config.Config`: the command
    line's flags, `_` for `-`), with the same defaults: `data` (a packaged dataset: bright,
    faint, sdss; a CSV or Parquet table; or a directory or glob of Parquet files, streamed),
    `out` (default `runs/default`), `method`, `seed`, `epochs`, `quiet`, `methods`
    (per-method settings, e.g. `{"crossfit": {"folds": 5}}`) and the rest. An unknown key
    is an InputError listing the valid ones.

    Example:
        run = sd.train(data="bright", out="runs/bright", seed=1, quiet=True)
    """
    cfg = for_source(make_config(**settings), method_chosen="method" in settings)
    run(cfg)
    from sdss_distill.api import load  # the Python API's Run: not for `train --help`
    return load(cfg.out, quiet=cfg.quiet)


class _Callable(types.ModuleType):
    """This module, callable as its `train`: importing a submodule binds it as the package's
    attribute, so once anything imports `sdss_distill.train`, `sdss_distill.train` is this
    module, and `sd.train(data=...)` must still train."""

    def __call__(self, **settings):
        return train(**settings)


sys.modules[__name__].__class__ = _Callable


def for_source(cfg: Config, *, method_chosen: bool, export: bool = False) -> Config:
    """`cfg` as its data source allows: a streamed table (a directory or glob of Parquet
    files) trains the default method if it streams, else the first streaming method, unless
    one was chosen; a method or export
    that cannot stream is an InputError (runs.stream.check_supported). A run is never
    written inside its own input (issue 23 case 5)."""
    if cfg.data and not is_name(cfg.data) and not glob.has_magic(cfg.data):
        check_apart(cfg.out, "--out", [cfg.data])
    from sdss_distill.data.stream import is_stream_source
    if not is_stream_source(cfg.data):
        return cfg
    from sdss_distill.runs.stream import check_supported
    if not method_chosen and cfg.method not in registry.streaming():
        cfg = dataclasses.replace(cfg, method=registry.streaming()[0])
        if not cfg.quiet:
            print(f"{PROG}: streamed tables use --method {cfg.method}", file=sys.stderr)
    check_supported(cfg, export=export)
    return cfg


def config_from_args(args: argparse.Namespace) -> Config:
    skip = ("config", "debug", "export", "set_options")
    flags = {k: v for k, v in vars(args).items() if k not in skip}
    return make_config(args.config, methods=parse_method_options(args.set_options), **flags)


def main(argv=None) -> int:
    args = parse_args(argv)

    out = {"dir": args.out}

    def body() -> int:
        chosen = args.method is not None or "method" in (read_toml(args.config) if args.config
                                                          else {})
        cfg = for_source(config_from_args(args), method_chosen=chosen, export=args.export)
        out["dir"] = cfg.out
        if not args.export:
            run(cfg)
            return 0
        from sdss_distill.export.run import export_run
        export_run(Path(cfg.out), quiet=cfg.quiet,  # in memory: streamed tables were refused above
                   trained=trained(cfg))
        return 0

    return run_cli(body, PROG, debug=args.debug, output=lambda: out["dir"])


if __name__ == "__main__":
    from sdss_distill.core.cli import exit_quickly
    exit_quickly(main())
