"""Notebook glue: load the SDSS table and find a run (training and exporting a quick one if none is
there), and read a run back verified. The figures are in sdss_distill.viz.figures.

    from sdss_distill import notebook as nb
    RUN = nb.find_run(ROOT)
    report, df, split = nb.load_run(RUN)
"""

from __future__ import annotations

import os
from pathlib import Path

from sdss_distill.core.cli import program
from sdss_distill.core.errors import InputError
from sdss_distill.core.io import quiet_import, read_json
from sdss_distill.data import datasets
from sdss_distill.runs.config import make_config
from sdss_distill.runs.rows import load_run_rows
from sdss_distill.sweep import cli as experiment
from sdss_distill.sweep.grid import load_cells
from sdss_distill.sweep.summary import comparisons, tidy
from sdss_distill.train import run as train_run

RUN_ENV = "SDSS_DISTILL_RUN"


def _env_path(name: str, root: Path) -> Path | None:
    """An env path; a relative one is taken from the repo root (a kernel starts in notebooks/)."""
    value = os.environ.get(name)
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() or path.exists() else Path(root) / path


def load_data(spec: str | None = None):
    """The table `spec` names (a packaged dataset: bright, faint, sdss; or a file), else
    $SDSS_DISTILL_DATA, else the packaged `sdss` dataset: (what it is, DataFrame)."""
    source, table = datasets.load(spec)
    return source.describe(), table


def find_run(root: Path, *, export: bool = False, epochs: int = 40) -> Path:
    """$SDSS_DISTILL_RUN if set; else ROOT/runs/notebook, trained (and exported) if missing.

    The fallback is a quick run (`epochs` at most), so its numbers trail a full run's.
    """
    chosen = _env_path(RUN_ENV, root)
    run = chosen or Path(root) / "runs" / "notebook"
    if chosen and not (run / "reports" / "report.json").is_file():
        raise InputError(f"${RUN_ENV}={chosen}: no reports/report.json there; point it at a "
                         f"directory written by `{program('train')} --out DIR` or sd.train(out=DIR)")
    if not (run / "reports" / "report.json").is_file():
        print(f"training a quick run ({epochs} epochs max) into {run} ...")
        train_run(make_config(out=str(run), epochs=epochs, quiet=True))
    if export and not (run / "reports" / "export.json").is_file():
        print(f"exporting TFLite variants into {run / 'tflite'} ...")
        quiet_import("keras")  # its native start-up lines, before export.run imports it
        from sdss_distill.export.run import export_run  # TensorFlow, only when exporting

        export_run(run, quiet=True, everything=True)  # the notebooks compare every variant
    return run.resolve()


def load_run(run: Path, data: str | None = None):
    """(report, cleaned table, split) of a run, read from ONE verified version (rundir.RunDir);
    its table is the one it recorded (or `data`, if that moved), refused if it changed."""
    rows = load_run_rows(run, data)
    return read_json(rows.layout.report_json, keys=("models",)), rows.df, rows.split


SWEEP_ENV = "SDSS_DISTILL_SWEEP"
NOTEBOOK_GRID = ["--methods", "offline", "--temperatures", "1", "2", "4", "--alphas", "0", "0.5",
                 "1", "--seeds", "0", "1", "--quiet"]


def find_sweep(root: Path) -> Path:
    """$SDSS_DISTILL_SWEEP, else ROOT/runs/notebook-sweep (run the small grid there if missing:
    offline students, T in 1 2 4, alpha in 0 0.5 1, seeds 0 1; a few minutes on 2 cores)."""
    chosen = os.environ.get(SWEEP_ENV)
    if chosen:
        return Path(chosen)
    out = Path(root) / "runs" / "notebook-sweep"
    if not (out / "summary.csv").is_file():
        if experiment.main([*NOTEBOOK_GRID, "--out", str(out), "--no-plots"]) != 0:
            raise RuntimeError(f"the notebook's sweep into {out} failed; see the message above")
    return out


def load_sweep(out: Path) -> tuple:
    """(cell documents, tidy table, per cell x arm summary) of a finished sweep."""
    cells = load_cells(out)
    df = tidy(cells)
    return cells, df, comparisons(df)
