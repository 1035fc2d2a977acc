"""A saved run's rows: the table it was trained on, checked by SHA-256, cleaned as the run
cleaned it, with the run's split and config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sdss_distill.core.errors import InputError
from sdss_distill.core.io import read_json
from sdss_distill.core.schema import get_view
from sdss_distill.data import datasets
from sdss_distill.data.table import Split, clean, parse_table, read_bytes_hashed, read_column_map
from sdss_distill.runs.rundir import Layout, RunDir


@dataclass
class RunRows:
    """A saved run's table, cleaned as the run cleaned it, with the run's split and config."""

    path: Path | str
    """The table's path, or the packaged dataset's name."""
    sha256: str
    df: pd.DataFrame
    split: Split
    config: dict
    layout: object = None
    """The run version (rundir.Layout) the rows were read for."""


def load_run_rows(run, data: str | Path | None = None) -> RunRows:
    """The table a run was trained on (or `data`, if it moved), checked by SHA-256, and its split.

    `run` is a run directory (resolved and verified through RunDir) or a rundir.Layout.
    The split stores row positions, so any other table would silently select other objects;
    the hash is of the bytes parsed here, so a file changed since is refused.
    """
    layout = run if isinstance(run, Layout) else RunDir(run).current()
    info = read_json(layout.run_json, keys=("config",))
    split_doc = read_json(layout.split_json, keys=("data_sha256",))
    cfg = info["config"]
    if not isinstance(cfg, dict) or "teacher_view" not in cfg:
        raise InputError(f"{layout.run_json}: 'config' lacks 'teacher_view'; train the run again")
    recorded = data or split_doc.get("data_path") or (info.get("data") or {}).get("path")
    if not recorded:
        raise InputError(f"{layout.split_json}: no data path recorded; pass the run's table "
                         f"(--data FILE)")
    if str(recorded).lower() in datasets.names():
        path, table = str(recorded), datasets.load_dataset(str(recorded))
        sha = table.attrs["sha256"]
    else:
        path = Path(recorded)
        if not path.is_file():
            raise InputError(f"{path}: the run's data file is not there; pass the table it used "
                             f"(--data FILE or a dataset name)")
        raw, sha = read_bytes_hashed(path)
        table = None
    if sha != split_doc["data_sha256"]:
        raise InputError(f"{path} is not the table run {layout.root} was trained on (sha256 "
                         f"{sha[:12]}... != {str(split_doc['data_sha256'])[:12]}...); its split "
                         f"rows would point at other objects")
    if table is None:
        table = parse_table(path, raw, read_column_map(cfg.get("columns")), sha)
    try:
        view = get_view(cfg["teacher_view"])
    except ValueError as e:
        raise InputError(f"{layout.run_json}: {e}") from None
    df, _ = clean(table, view)
    return RunRows(path, sha, df, Split.load(layout.split_json), cfg, layout)
