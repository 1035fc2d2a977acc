"""Which distillation method helps? A grid of methods x temperature x alpha over seeds.

Usage:
    python -m sdss_distill.experiment --preset quick
    python -m sdss_distill.experiment --preset methods --seeds 0 1 2 3 4 5 6 7 8 9 --out runs/methods
    python -m sdss_distill.experiment --preset hinton --out runs/hinton
    python -m sdss_distill.experiment --preset temperature --out runs/temperature
    python -m sdss_distill.experiment --methods offline crossfit --alphas 0.5 0.9 --temperatures 1 2
    python -m sdss_distill.experiment --preset methods --dev --out runs/dev   # never reads test rows
    python -m sdss_distill.experiment --preset transfer --out runs/transfer   # bright <-> faint
    python -m sdss_distill.experiment --preset learning --data faint --out runs/learning
    python -m sdss_distill.experiment --preset controls --data faint --out runs/controls-faint

Writes OUT/results.csv (one row per seed x cell x arm), OUT/summary.csv (per cell x arm:
mean, std and 95 % CI over seeds, and the paired difference to the cell's hard-label
baseline with wins/ties/losses and a Wilcoxon p-value), OUT/summary.md, and figures with the
CSV behind each under OUT/plots/. A killed sweep resumes: re-run the same command.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import functools
import json
import os
import sys
import time
from pathlib import Path

from sdss_distill.core.cli import Parser, program
from sdss_distill.core.errors import InputError, run_cli
from sdss_distill.core.io import check_dir_target, mark_dir, write_atomic
from sdss_distill.core.machine import machine
from sdss_distill.data.datasets import NAMES_WIN, resolve
from sdss_distill.distill import registry
from sdss_distill.distill.formula import SOFT_LOSSES
from sdss_distill.runs.config import Config, make_config, parse_method_options

PROG = program("experiment")
PRESETS: dict[str, dict] = {
    "quick": {"methods": ["offline", "crossfit"], "seeds": [0, 1],
              "overrides": {"epochs": 25, "patience": 5},
              "about": "CI-sized: offline and crossfit, 2 seeds, at most 25 epochs"},
    "hinton": {"alphas": [0.0, 0.5, 1.0], "methods": ["offline"],
               "about": "alpha 0 / 0.5 / 1: hard-label, mixed and soft-label students"},
    "temperature": {"temperatures": [1, 2, 4, 8, 10, 20], "methods": ["offline"],
                    "about": "T in 1, 2, 4, 8, 10, 20"},
    "methods": {"methods": None, "about": "every method at its defaults"},
    "transfer": {"methods": ["crossfit"], "data": "sdss", "train_samples": ["bright", "faint", None],
                 "options": {"by_sample": True, "reference": True}, "report": "transfer",
                 "about": "train on bright, faint or both (one sdss split per seed); test on "
                          "each sample; + a HistGradientBoosting reference: transfer.{csv,md,png}"},
    "learning": {"methods": ["offline", "crossfit"], "rows": [500, 1000, 2000, 4000, None],
                 "report": "learning",
                 "about": "--rows 500 1000 2000 4000 all: the paired gain of distillation over "
                          "the baseline against N: learning.{csv,md,png}"},
    "controls": {"methods": ["crossfit", "shuffled-z", "smoothing", "photo-teacher"],
                 "report": "controls",
                 "about": "the same student taught by the real teacher, a shuffled-redshift "
                          "teacher, label smoothing and a photometric teacher: controls.{csv,md,png}"},
}


def parse_args(argv=None) -> argparse.Namespace:
    d = Config()
    p = Parser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Presets (--preset):\n" + "\n".join(f"  {k:12s} {v['about']}"
                                                   for k, v in PRESETS.items())
        + "\n\nMethods:\n" + registry.describe())
    p.add_argument("--data", help="a packaged dataset (bright, faint, sdss) or an SDSS table; "
                   f"{NAMES_WIN} (default: $SDSS_DISTILL_DATA, else sdss)")
    p.add_argument("--preset", choices=PRESETS, help="a ready-made grid (default: none; without "
                   "it the grid is --methods x --temperatures x --alphas)")
    p.add_argument("--methods", nargs="+", metavar="NAME",
                   help=f"methods to compare (default: the preset's, else {d.method})")
    p.add_argument("--temperatures", type=float, nargs="+", metavar="T",
                   help=f"temperatures (default: the preset's, else {d.temperature})")
    p.add_argument("--alphas", type=float, nargs="+", metavar="A",
                   help=f"soft-term weights (default: the preset's, else {d.alpha})")
    p.add_argument("--soft-losses", nargs="+", choices=SOFT_LOSSES,
                   help=f"soft terms (default: {d.soft_loss})")
    p.add_argument("--rows", type=int, metavar="N",
                   help="train every cell on N non-test rows (stratified, seeded; test rows "
                        "unchanged) (default: every row; the learning preset sets its own)")
    p.add_argument("--seeds", type=int, nargs="+",
                   help="seeds (default: the preset's, else 0 1 2 3 4 5 6 7 8 9)")
    p.add_argument("--dev", action="store_true",
                   help="score on dev-test rows carved from the non-test rows; test rows are "
                        "never read (for choosing settings) (default: off)")
    p.add_argument("--out", help="sweep directory (default: runs/sweep-<preset>)")
    p.add_argument("--workers", type=int, default=2,
                   help="seeds trained at once, in separate processes (default: 2)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the seeds as tasks on this Dask cluster (tcp://HOST:8786; workers "
                        "started with `dask worker ADDRESS --nthreads 1`) instead of local "
                        "processes; --workers is then unused (default: local processes)")
    p.add_argument("--config", metavar="RUN.toml",
                   help="TOML file with base settings, as for train (default: none)")
    p.add_argument("--set", dest="set_options", action="append", metavar="METHOD.KEY=VALUE",
                   help="a method setting, e.g. crossfit.folds=10; repeatable (default: none)")
    p.add_argument("--epochs", type=int, help=f"max epochs (default: the preset's, else {d.epochs})")
    p.add_argument("--patience", type=int,
                   help=f"early-stopping patience (default: the preset's, else {d.patience})")
    p.add_argument("--no-plots", action="store_true", help="skip the figures (default: off)")
    p.add_argument("--quiet", action="store_true", help="no progress bar (default: off)")
    p.add_argument("--debug", action="store_true",
                   help="show tracebacks for input errors (default: off)")
    return p.parse_args(argv)


def plan(args: argparse.Namespace) -> tuple[Config, list, list[int]]:
    """Base config, grid cells and seeds from the flags; all checked before any training."""
    from sdss_distill.sweep.grid import grid
    preset = PRESETS.get(args.preset, {})
    overrides = {**preset.get("overrides", {}),
                 **{k: v for k, v in (("epochs", args.epochs), ("patience", args.patience),
                                      ("rows", args.rows)) if v is not None}}
    if args.rows is not None and "rows" in preset:
        raise InputError(f"--rows: the {args.preset} preset sets the rows of each cell itself; "
                         f"drop --rows")
    if args.data is not None and "data" in preset and args.data != preset["data"]:
        raise InputError(f"--data {args.data}: the {args.preset} preset needs --data "
                         f"{preset['data']} (one split of both samples); drop --data")
    base = make_config(args.config, data=args.data or preset.get("data"), quiet=True,
                       methods=parse_method_options(args.set_options), **overrides)
    base = dataclasses.replace(base, data=resolve(base.data).record)
    methods = args.methods or preset.get("methods", [base.method]) or registry.names()
    for name in methods:
        registry.get(name)
    seeds = args.seeds if args.seeds is not None else preset.get("seeds", list(range(10)))
    temperatures = args.temperatures or preset.get("temperatures", [base.temperature])
    alphas = args.alphas if args.alphas is not None else preset.get("alphas", [base.alpha])
    cells = grid(methods, temperatures, alphas, args.soft_losses or [base.soft_loss],
                 rows=preset.get("rows", [None]), train_samples=preset.get("train_samples", [None]))
    for cell in cells:  # validates every temperature / alpha before training anything
        cell.config(base, 0).__post_init__()
    if args.workers < 1:
        raise InputError(f"--workers must be >= 1, got {args.workers}")
    if len(set(seeds)) != len(seeds):
        raise InputError(f"--seeds lists a seed twice: {seeds}")
    return base, cells, seeds


def int8_bytes(out: Path, cells: list[dict]) -> dict[int, int]:
    """{parameters: int8 file bytes} of the sweep's photometric architectures (cached)."""
    from sdss_distill.sweep import int8
    if not (out / "sweep.json").is_file():  # cells written by run_sweep alone: no base config
        return {}
    base = make_config(**{k: v for k, v in json.loads((out / "sweep.json").read_text())
                          ["base_config"].items()})
    return int8.sizes(out, base, {c["cell"]["method"] for c in cells})


def summarise(out: Path, command: str) -> dict:
    """Rebuild results.csv, summary.csv, summary.md (and plots) from the finished cells."""
    from sdss_distill.sweep import summary as report
    from sdss_distill.sweep.grid import load_cells
    cells = load_cells(out)
    if not cells:
        raise InputError(f"{out}: no finished cells to summarise")
    df = report.tidy(cells, int8_bytes(out, cells))
    comp = report.comparisons(df)
    write_atomic(out / "results.csv", df.to_csv(index=False))
    write_atomic(out / "summary.csv", comp.to_csv(index=False))
    write_atomic(out / "summary.md", report.markdown(df, comp, title=f"Sweep {out.name}",
                                                     machine=machine(), command=command))
    return {"cells": len(cells), "rows": len(df)}


def preset_report(out: Path, name: str, command: str) -> str:
    """Write a preset's own tables and figure (sweep.transfer or sweep.learning); return its
    Markdown."""
    from sdss_distill.sweep import controls, learning, transfer
    from sdss_distill.sweep.grid import load_cells
    module = {"transfer": transfer, "learning": learning, "controls": controls}[name]
    module.write(out, load_cells(out), command)
    return (out / f"{name}.md").read_text()


def _dask_runner(scheduler: str | None):
    """run_sweep's runner for `--scheduler` (sweep.cluster), or None: local processes."""
    if not scheduler:
        return None

    from sdss_distill.sweep.cluster import run_on_dask
    return functools.partial(run_on_dask, scheduler)


def emit(text: str, out: Path) -> None:
    """Print to stdout. A full device (`> /dev/full`) is one line naming stdout and where the
    sweep's files are, exit 2; a reader that went away (`| head -1`) ends quietly with 141
    (128 + SIGPIPE), as every command does (core.errors.run_cli)."""
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        raise InputError(f"stdout: no space left on device; the sweep's files are written in "
                         f"{out} (summary.md), send stdout elsewhere") from None


def main(argv=None) -> int:
    args = parse_args(argv)

    def body() -> int:
        base, cells, seeds = plan(args)
        out = Path(args.out or f"runs/sweep-{args.preset or 'custom'}")
        check_dir_target(out, "--out", kind="experiment", legacy=("sweep.json",))  # issue 23
        out.mkdir(parents=True, exist_ok=True)
        mark_dir(out, "experiment")
        preset = PRESETS.get(args.preset, {})
        from sdss_distill.sweep.grid import check_settings, run_sweep
        check_settings(out, base, args.dev, preset.get("options"))  # before sweep.json changes
        command = " ".join([PROG, *(argv or sys.argv[1:])])
        write_atomic(out / "sweep.json", json.dumps(
            {"command": command, "seeds": seeds, "cells": [c.id for c in cells],
             "base_config": base.to_dict(), "dev": args.dev}, indent=2, default=str))
        started = time.perf_counter()
        run_sweep(base, cells, seeds, out, dev=args.dev, workers=args.workers,
                  progress=not args.quiet, options=preset.get("options"),
                  runner=_dask_runner(args.scheduler))
        summarise(out, command)
        if not args.no_plots:
            from sdss_distill.sweep.figures import sweep_figures
            sweep_figures(out)
        emit((out / "summary.md").read_text(), out)
        if preset.get("report"):
            emit(preset_report(out, preset["report"], command), out)
        print(f"{PROG}: {len(cells)} cells x {len(seeds)} seeds in "
              f"{time.perf_counter() - started:.0f} s; wrote {out}", file=sys.stderr)
        return 0

    return run_cli(body, PROG, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
