"""Load an SDSS table, clean it, split it into teacher-train / student-train / test.

Rows keep their position in the file (0-based, header and comment lines not counted) as
the DataFrame index; splits store those positions, so every later stage and notebook can
find exactly the same rows again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from .config import read_toml
from .errors import InputError, listing
from .schema import (
    BANDS,
    CANONICAL_COLUMNS,
    ID_COLUMNS,
    LABELS,
    MAGNITUDE_RANGE,
    SENTINEL,
    STUDENT_VIEW,
    TARGET,
    View,
    canonical_name,
    get_view,
)

DEFAULT_DATA = Path("data") / "sdss.csv"
DATA_ENV = "SDSS_DISTILL_DATA"
SUBSETS = ("teacher_train", "student_train", "test")


def resolve_data_path(arg: str | None) -> Path:
    """`--data`, else $SDSS_DISTILL_DATA, else data/sdss.csv, else an error saying how."""
    chosen = arg or os.environ.get(DATA_ENV)
    if chosen:
        if not Path(chosen).is_file():
            source = "--data" if arg else f"${DATA_ENV}"
            raise InputError(f"{chosen}: no such file (from {source}); check the path")
        return Path(chosen)
    if DEFAULT_DATA.is_file():
        return DEFAULT_DATA
    raise InputError(f"no data file: pass --data FILE, set {DATA_ENV}, or put an SDSS table "
                     f"at {DEFAULT_DATA} (data/README.md says how to get one)")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_column_map(path: str | None) -> dict[str, str]:
    """A user's TOML mapping {their column name: canonical name} (flat or under [columns])."""
    if not path:
        return {}
    raw = read_toml(path)
    mapping = raw.get("columns", raw)
    bad = {k: v for k, v in mapping.items() if v not in CANONICAL_COLUMNS}
    if bad:
        k, v = next(iter(bad.items()))
        raise InputError(f"{path}: column {k!r} maps to {v!r}, which is not a known column; "
                         f"valid targets: {', '.join(CANONICAL_COLUMNS)}")
    return dict(mapping)


def load_table(path: Path, column_map: dict[str, str] | None = None) -> pd.DataFrame:
    """Read CSV (SkyServer `#Table1` first line allowed) or Parquet, with canonical names.

    Columns we do not know are kept under their own names; id columns are read as text.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            df = pd.read_parquet(path)
            first_line = None
        else:
            df, first_line = _read_csv(path, column_map)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty; expected a header line and data rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as e:
        raise InputError(f"{path}: cannot read it as a table ({str(e).splitlines()[0]})") from e
    df = df.rename(columns=_rename_map(path, df.columns, column_map))
    if df.empty:
        raise InputError(f"{path}: no data rows below the header")
    for c in ID_COLUMNS:
        if c in df:
            df[c] = df[c].astype("string")
    df.index = pd.RangeIndex(len(df), name="row")
    df.attrs.update(source=str(path), first_line=first_line)
    return df


def _read_csv(path: Path, column_map) -> tuple[pd.DataFrame, int]:
    with open(path, encoding="utf-8") as f:
        first = f.readline()
    skip = 1 if first.startswith("#") else 0
    header = pd.read_csv(path, skiprows=skip, nrows=0).columns
    as_text = {c: "string" for c in header if canonical_name(c, column_map) in ID_COLUMNS}
    df = pd.read_csv(path, skiprows=skip, dtype=as_text)
    return df, skip + 2  # file line number of data row 0


def _rename_map(path, columns, column_map) -> dict[str, str]:
    renames, seen = {}, {}
    for c in columns:
        canon = canonical_name(c, column_map)
        if canon is None:
            continue
        if canon in seen:
            raise InputError(f"{path}: columns {seen[canon]!r} and {c!r} both mean {canon!r}; "
                             f"drop one or map them with --columns")
        seen[canon] = c
        renames[c] = canon
    return renames


def where(df: pd.DataFrame, row: int) -> str:
    """'file.csv line 12' for a row, to point a user at a bad value."""
    first = df.attrs.get("first_line")
    at = f"line {first + row}" if first is not None else f"row {row}"
    return f"{df.attrs.get('source', 'table')} {at}"


def check_frame(df: pd.DataFrame, view: View, *, with_labels: bool) -> pd.DataFrame:
    """Check a table has the view's columns (and `class`), all numeric; return it converted.

    Missing columns and non-numeric values are InputErrors that name them.
    """
    needed = [*view.columns, *([TARGET] if with_labels else [])]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise InputError(
            f"{df.attrs.get('source', 'table')}: missing column(s) {listing(missing)} needed by "
            f"the {view.name} view; found {listing(df.columns, 20)}. Rename them or pass "
            f"--columns map.toml")
    out = df.copy()
    for c in view.columns:
        col = out[c]
        numeric = pd.to_numeric(col, errors="coerce")
        bad = numeric.isna() & col.notna() & (col.astype("string").str.strip() != "")
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"{where(df, row)}: column {c!r} has non-numeric value "
                             f"{col.iloc[row]!r} ({int(bad.sum())} such rows); fix or remove them")
        out[c] = numeric.astype("float64")
    if with_labels:
        out[TARGET] = out[TARGET].astype("string").str.strip().str.upper()
        unknown = sorted(set(out[TARGET].dropna()) - set(LABELS) - {""})
        if unknown:
            raise InputError(f"{df.attrs.get('source', 'table')}: unknown class label(s) "
                             f"{listing(unknown)}; expected {', '.join(LABELS)}")
    return out


@dataclass
class CleaningReport:
    """How many rows were read, kept, and dropped for each reason (first reason wins)."""

    rows_read: int
    rows_kept: int
    dropped: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        reasons = ", ".join(f"{n} {why}" for why, n in self.dropped.items() if n) or "none"
        return f"kept {self.rows_kept} of {self.rows_read} rows (dropped: {reasons})"


def clean(df: pd.DataFrame, view: View) -> tuple[pd.DataFrame, CleaningReport]:
    """Drop rows unusable for `view` + photometry: sentinels, NaN/inf, impossible magnitudes."""
    cols = list(dict.fromkeys([*view.columns, *get_view(STUDENT_VIEW).columns]))
    df = check_frame(df, get_view(STUDENT_VIEW), with_labels=True)
    df = check_frame(df, view, with_labels=False)
    values = df[cols].to_numpy("float64")
    bands = [c for c in cols if c in BANDS]
    mags = df[bands].to_numpy("float64")
    lo, hi = MAGNITUDE_RANGE
    tests = {
        "missing class": df[TARGET].isna().to_numpy() | (df[TARGET] == "").fillna(True).to_numpy(),
        "missing value": np.isnan(values).any(axis=1),
        "sentinel -9999": (values <= SENTINEL).any(axis=1),
        "infinite value": np.isinf(values).any(axis=1),
        f"magnitude outside {lo:g}-{hi:g}": ((mags < lo) | (mags > hi)).any(axis=1),
    }
    drop = np.zeros(len(df), bool)
    dropped = {}
    for reason, hit in tests.items():
        dropped[reason] = int((hit & ~drop).sum())
        drop |= hit
    report = CleaningReport(len(df), int((~drop).sum()), dropped)
    if report.rows_kept == 0:
        raise InputError(f"{df.attrs.get('source', 'table')}: cleaning dropped every row "
                         f"({report.summary()}); check the table holds valid SDSS photometry")
    kept = df.loc[~drop]
    kept.attrs.update(df.attrs)
    return kept, report


def labels(df: pd.DataFrame) -> np.ndarray:
    """Class indices in LABELS order."""
    return pd.Categorical(df[TARGET], categories=LABELS).codes.astype("int32")


def features(df: pd.DataFrame, view: View) -> np.ndarray:
    """The view's columns, in its order, as a float32 array for Keras."""
    return df[list(view.columns)].to_numpy("float32")


@dataclass
class Split:
    """Row positions (the table's index) of each subset; disjoint, seeded, stratified."""

    teacher_train: np.ndarray
    student_train: np.ndarray
    test: np.ndarray
    seed: int
    fractions: tuple[float, float, float]

    def subsets(self) -> dict[str, np.ndarray]:
        return {s: getattr(self, s) for s in SUBSETS}

    def save(self, path: Path, **provenance) -> None:
        doc = {"seed": self.seed, "fractions": list(self.fractions), **provenance,
               **{k: v.tolist() for k, v in self.subsets().items()}}
        Path(path).write_text(json.dumps(doc))

    @classmethod
    def load(cls, path: Path) -> Split:
        doc = json.loads(Path(path).read_text())
        return cls(*(np.asarray(doc[s], dtype="int64") for s in SUBSETS),
                   seed=doc["seed"], fractions=tuple(doc["fractions"]))


def split(df: pd.DataFrame, fractions=(0.4, 0.4, 0.2), seed: int = 0) -> Split:
    """Stratified, seeded teacher-train / student-train / test split of a cleaned table."""
    rows, y = df.index.to_numpy(), labels(df)
    teacher_f, student_f, test_f = fractions
    counts = np.bincount(y, minlength=len(LABELS))
    if (counts[counts > 0] < 3).any():
        raise InputError(f"{df.attrs.get('source', 'table')}: need at least 3 rows of each "
                         f"class present to split, got {dict(zip(LABELS, counts.tolist()))}")
    train, test = train_test_split(rows, test_size=test_f, stratify=y, random_state=seed)
    teacher, student = train_test_split(train, test_size=student_f / (teacher_f + student_f),
                                        stratify=labels(df.loc[train]), random_state=seed)
    return Split(np.sort(teacher), np.sort(student), np.sort(test), seed, tuple(fractions))


def validation_slice(df: pd.DataFrame, rows: np.ndarray, fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split training rows into (fit, validation) for early stopping; test rows never enter."""
    fit, val = train_test_split(rows, test_size=fraction, stratify=labels(df.loc[rows]),
                                random_state=seed)
    return np.sort(fit), np.sort(val)


@dataclass
class RunRows:
    """A saved run's table, cleaned as the run cleaned it, with the run's split and config."""

    path: Path
    sha256: str
    df: pd.DataFrame
    split: Split
    config: dict


def load_run_rows(run_dir, data: str | Path | None = None) -> RunRows:
    """The table a run was trained on (or `data`, if it moved), checked by SHA-256, and its split.

    The split stores row positions, so any other table would silently select other objects.
    """
    models = Path(run_dir) / "models"
    missing = [str(models / f) for f in ("run.json", "split.json") if not (models / f).is_file()]
    if missing:
        raise InputError(f"{run_dir}: not a training run (missing {', '.join(missing)}); train "
                         f"one with python -m sdss_distill.train --out DIR")
    info = json.loads((models / "run.json").read_text())
    split_doc = json.loads((models / "split.json").read_text())
    path = Path(data or split_doc.get("data_path") or info["data"]["path"])
    if not path.is_file():
        raise InputError(f"{path}: the run's data file is not there; pass the table it used "
                         f"(--data FILE)")
    sha = file_sha256(path)
    if sha != split_doc["data_sha256"]:
        raise InputError(f"{path} is not the table run {run_dir} was trained on (sha256 "
                         f"{sha[:12]}... != {split_doc['data_sha256'][:12]}...); its split rows "
                         f"would point at other objects")
    cfg = info["config"]
    df, _ = clean(load_table(path, read_column_map(cfg.get("columns"))), get_view(cfg["teacher_view"]))
    return RunRows(path, sha, df, Split.load(models / "split.json"), cfg)


def main(argv=None) -> int:
    """`python -m sdss_distill.data fetch|synth ...`: get more (real or SIMULATED) tables.

    Usage:
        python -m sdss_distill.data fetch --rows 100000 --mag r 19 22 --out data/faint.parquet
        python -m sdss_distill.data synth --rows 1000000 --out data/sim_1m.parquet --seed 0
    """
    import argparse
    import importlib

    from .errors import run_cli

    prog = "python -m sdss_distill.data"
    commands = {"fetch": ("skyserver", "download labelled objects from SDSS SkyServer's SQL search"),
                "synth": ("synth", "write a SIMULATED SDSS-like catalogue (Parquet)")}
    p = argparse.ArgumentParser(prog=prog, description=main.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--debug", action="store_true", help="show tracebacks for input errors")
    sub = p.add_subparsers(dest="command", required=True, metavar="{fetch,synth}")
    modules = {}
    for name, (module, summary) in commands.items():
        modules[name] = importlib.import_module(f".{module}", __package__)
        modules[name].add_arguments(sub.add_parser(name, help=summary, description=summary))
    args = p.parse_args(argv)
    return run_cli(lambda: modules[args.command].run(args), f"{prog} {args.command}", debug=args.debug)


if __name__ == "__main__":
    import sys

    sys.exit(main())
