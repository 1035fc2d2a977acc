"""Load an SDSS table, clean it, split it into teacher-train / student-train / calibration /
test.

Rows keep their position in the file (0-based, header and comment lines not counted) as
the DataFrame index; splits store those positions, so every later stage and notebook can
find exactly the same rows again.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from sdss_distill.core.errors import InputError, listing
from sdss_distill.core.io import read_json, read_toml, sha256_bytes
from sdss_distill.core.quality import (
    REASONS,
    check_columns,
    check_values,
    header_positions,
    is_preamble,
)
from sdss_distill.core.safety import PARQUET_MAGIC, kind_of
from sdss_distill.core.schema import (
    CANONICAL_COLUMNS,
    DEFAULT_SPLIT,
    ID_COLUMNS,
    LABELS,
    SAMPLE,
    STUDENT_VIEW,
    TARGET,
    View,
    canonical_name,
    get_view,
)
from sdss_distill.data.synth import is_simulated

SUBSETS = ("teacher_train", "student_train", "test", "calibration")
"""A split's row sets; "calibration" is absent from splits saved before it existed (empty)."""

LONE_CR = re.compile(rb"\r(?!\n)")
BLANK = "blank line or empty record"
MIN_CLASS_ROWS = 10
"""Fewest rows of a class that the stratified splits (test, student, teacher, validation)
can share out: each needs two or more of every class."""


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
    """Read CSV (SkyServer `#Table1` first line and a UTF-8 BOM allowed) or Parquet.

    Columns get canonical names (two names for one column are an error naming both);
    unknown columns keep their own names; id columns are read as text. The file's bytes are
    read once, and `df.attrs["sha256"]` is the SHA-256 of exactly the bytes parsed.
    """
    return load_table_with_hash(path, column_map)[0]


def load_table_with_hash(path: Path, column_map: dict[str, str] | None = None
                         ) -> tuple[pd.DataFrame, str]:
    """(table, SHA-256 of the bytes it was parsed from): record this hash with a run."""
    raw, sha = read_bytes_hashed(path)
    return parse_table(Path(path), raw, column_map, sha), sha


def read_bytes_hashed(path: Path) -> tuple[bytes, str]:
    """A table file's bytes, read once, and their SHA-256."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise InputError(f"{path}: {kind_of(path)}, not a regular file; save the table to a file")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror}); check its permissions") from None
    return raw, sha256_bytes(raw)


def parse_table(path: Path, raw: bytes, column_map: dict[str, str] | None = None,
                sha256: str | None = None) -> pd.DataFrame:
    """The table in `raw` (the bytes of `path`), with canonical column names."""
    sha = sha256 or sha256_bytes(raw)
    try:
        if path.suffix.lower() in (".parquet", ".pq") or raw[:4] == PARQUET_MAGIC:  # any name
            df = pd.read_parquet(io.BytesIO(raw))
            header, first_line = [str(c) for c in df.columns], None
            simulated = _parquet_simulated(raw)
        else:
            df, header, first_line = _read_csv(path, raw, column_map)
            simulated = False
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty; expected a header line and data rows") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset "
                         f"{e.start}); save it as UTF-8") from None
    except (pd.errors.ParserError, OSError, ValueError, csv.Error) as e:
        raise InputError(f"{path}: cannot read it as a table ({str(e).splitlines()[0]})") from None
    names = [str(h) for h in header]
    for canon, k in header_positions(header, column_map, source=str(path)).items():
        names[k] = canon
    df.columns = names
    if df.empty:
        raise InputError(f"{path}: no data rows below the header")
    for c in ID_COLUMNS:
        if c in df:
            df[c] = df[c].astype("string")
    df.index = pd.RangeIndex(len(df), name="row")
    df.attrs.update(source=str(path), first_line=first_line, sha256=sha, simulated=simulated)
    return df


def _parquet_simulated(raw: bytes) -> bool:
    """True when the Parquet file's key-value metadata says its rows are simulated (synth)."""
    return is_simulated(pq.read_schema(io.BytesIO(raw)).metadata)


def _read_csv(path: Path, raw: bytes, column_map) -> tuple[pd.DataFrame, list[str], int]:
    """Parse CSV bytes as edge reads them: lines above the header that are blank or comments
    are skipped (quality.is_preamble), records end at LF or CRLF (a lone CR is data), and every
    data line is a row (a blank one too: cleaning counts it), so row k is at file line
    `first_line + k` unless a quoted field spans lines (then `attrs["lines"]` lists each
    row's line). The header is read with the csv module, unmangled (pandas renames a repeated
    `z` to `z.1`, which would hide a SkyServer redshift column called `z`)."""
    raw.decode("utf-8")  # a UnicodeDecodeError here names the byte's offset in the file
    if b"\r" in raw and LONE_CR.search(raw):
        raw = LONE_CR.sub(b" ", raw)  # one record, as edge.reader reads it
    offset, line, header = 3 if raw.startswith(b"\xef\xbb\xbf") else 0, 0, None
    while offset < len(raw) and header is None:
        end = raw.find(b"\n", offset)
        end = len(raw) if end < 0 else end + 1
        text, offset, line = raw[offset:end].decode("utf-8"), end, line + 1
        if not is_preamble(text):
            header = [h.strip() for h in next(csv.reader([text.rstrip("\r\n")]))]
    if not header:
        raise pd.errors.EmptyDataError("no header")
    as_text = {k: "string" for k, c in enumerate(header)
               if canonical_name(c, column_map) in ID_COLUMNS}
    body = raw[offset:]
    if not body.strip():
        return pd.DataFrame(columns=range(len(header))), header, line + 1
    try:
        df = pd.read_csv(io.BytesIO(body), header=None, names=range(len(header)), dtype=as_text,
                         encoding="utf-8", skip_blank_lines=False)
    except pd.errors.ParserError as e:  # its line numbers count from the first data line
        msg = re.sub(r"line (\d+)", lambda m: f"line {int(m.group(1)) + line}", str(e))
        raise pd.errors.ParserError(msg) from None
    if b'"' in body:
        starts = _record_lines(body)
        if starts[-1:] != [len(starts)] and len(starts) == len(df):
            df.attrs["lines"] = [line + k for k in starts]
    return df, header, line + 1  # file line number of data row 0


def _record_lines(body: bytes) -> list[int]:
    """The line (1-based, within `body`) where each CSV record starts."""
    reader, starts, done = csv.reader(io.StringIO(body.decode("utf-8"), newline="")), [], 0
    for _ in reader:
        starts.append(done + 1)
        done = reader.line_num
    return starts


def where(df: pd.DataFrame, row: int) -> str:
    """'file.csv line 12' for a row, to point a user at a bad value."""
    lines, first = df.attrs.get("lines"), df.attrs.get("first_line")
    at = (f"line {lines[row]}" if lines else f"line {first + row}" if first is not None
          else f"row {row}")
    return f"{df.attrs.get('source', 'table')} {at}"


def check_frame(df: pd.DataFrame, view: View, *, with_labels: bool) -> pd.DataFrame:
    """Check a table has the view's columns (and `class`), all numeric; return it converted.

    Missing columns and non-numeric values are InputErrors that name them.
    """
    needed = [*view.columns, *([TARGET] if with_labels else [])]
    check_columns(set(df.columns), needed, source=df.attrs.get("source", "table"),
                  header=list(df.columns), needed_by=f"the {view.name} view",
                  fix="Rename them or pass --columns map.toml")
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
    examples: dict[str, str] = field(default_factory=dict)
    """The first dropped row for each reason, named by file line, column and value."""

    def summary(self) -> str:
        reasons = ", ".join(f"{n} {why}" for why, n in self.dropped.items() if n) or "none"
        return f"kept {self.rows_kept} of {self.rows_read} rows (dropped: {reasons})"


def clean(df: pd.DataFrame, view: View) -> tuple[pd.DataFrame, CleaningReport]:
    """Drop rows unusable for `view` + photometry, for the reasons quality.check_values names
    (missing, sentinel, non-finite, too large for float32, outside the physical range)."""
    cols = list(dict.fromkeys([*view.columns, *get_view(STUDENT_VIEW).columns]))
    df = check_frame(df, get_view(STUDENT_VIEW), with_labels=True)
    df = check_frame(df, view, with_labels=False)
    checked = check_values(df[cols].to_numpy("float64"), cols)
    blank = df.drop(columns=[SAMPLE], errors="ignore").isna().all(axis=1).to_numpy()
    no_class = df[TARGET].isna().to_numpy() | (df[TARGET] == "").fillna(True).to_numpy()
    dropped, examples = {"missing class": int((no_class & ~blank).sum())}, {}
    if blank.any():  # every line of the file is accounted for, a blank one too
        dropped = {BLANK: int(blank.sum()), **dropped}
        examples[BLANK] = where(df, int(np.flatnonzero(blank)[0]))
    for code, why in REASONS.items():
        hit = (checked.reason == code) & ~no_class
        dropped[why] = int(hit.sum())
        if hit.any():
            k = int(np.flatnonzero(hit)[0])
            examples[why] = f"{where(df, k)}: {checked.message(k)}"
    drop = no_class | ~checked.ok
    report = CleaningReport(len(df), int((~drop).sum()), dropped, examples)
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
    fractions: tuple[float, ...]
    calibration: np.ndarray = field(default_factory=lambda: np.zeros(0, "int64"))

    def subsets(self) -> dict[str, np.ndarray]:
        return {s: getattr(self, s) for s in SUBSETS}

    def rows(self, name: str) -> np.ndarray:
        """A subset's positions, or "non_test": teacher-train + student-train, sorted (the
        rows the default student and the peers learn from)."""
        if name == "non_test":
            return np.sort(np.concatenate([self.teacher_train, self.student_train]))
        return getattr(self, name)

    def calibrating(self, stopping_rows: np.ndarray) -> np.ndarray:
        """The rows a run calibrates on: its calibration slice, else (a split saved without
        one) the student's early-stopping rows."""
        return self.calibration if len(self.calibration) else stopping_rows

    def save(self, path: Path, **provenance) -> None:
        doc = {"seed": self.seed, "fractions": list(self.fractions), **provenance,
               **{k: v.tolist() for k, v in self.subsets().items()}}
        Path(path).write_text(json.dumps(doc))

    @classmethod
    def load(cls, path: Path) -> Split:
        """A saved split; a corrupt or incomplete file is an InputError naming it."""
        doc = read_json(path, keys=(*SUBSETS[:3], "seed", "fractions"))
        try:
            return cls(*(np.asarray(doc[s], dtype="int64") for s in SUBSETS[:3]),
                       seed=int(doc["seed"]), fractions=tuple(doc["fractions"]),
                       calibration=np.asarray(doc.get("calibration", []), dtype="int64"))
        except (TypeError, ValueError) as e:
            raise InputError(f"{path}: corrupt split ({e}); train the run again") from None


def strata(df: pd.DataFrame) -> np.ndarray:
    """The stratification key: the class, or class x sample for a combined dataset (`sdss`), so
    that every subset holds both samples in their proportions."""
    y = labels(df)
    if SAMPLE not in df.columns:
        return y
    s = pd.Categorical(df[SAMPLE]).codes.astype("int32")
    return y * (int(s.max()) + 1) + s


def split(df: pd.DataFrame, fractions=DEFAULT_SPLIT, seed: int = 0) -> Split:
    """Stratified (class, and sample when there is one), seeded teacher-train / student-train /
    calibration / test split of a cleaned table. `fractions`: four, or three (teacher, student,
    test: no calibration slice, as runs before it). The test rows are drawn first and depend
    only on the test fraction and seed, so they are the same with or without the slice."""
    rows, y = df.index.to_numpy(), labels(df)
    teacher_f, student_f, *cal_f, test_f = fractions
    counts = np.bincount(y, minlength=len(LABELS))
    if (counts < MIN_CLASS_ROWS).any():  # a model of fewer classes is no SDSS classifier
        raise InputError(f"{df.attrs.get('source', 'table')}: need at least {MIN_CLASS_ROWS} "
                         f"rows of each class {', '.join(LABELS)} after cleaning, got "
                         f"{dict(zip(LABELS, counts.tolist()))}; use a table with every class")
    train, test = _stratified(rows, test_f, strata(df), seed)
    cal = np.zeros(0, "int64")
    if cal_f and cal_f[0] > 0:
        train, cal = _stratified(train, cal_f[0] / (1 - test_f), strata(df.loc[train]), seed)
    teacher, student = _stratified(train, student_f / (teacher_f + student_f),
                                   strata(df.loc[train]), seed)
    return Split(np.sort(teacher), np.sort(student), np.sort(test), seed, tuple(fractions),
                 np.sort(cal))


def validation_slice(df: pd.DataFrame, rows: np.ndarray, fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split training rows into (fit, validation) for early stopping; test rows never enter."""
    fit, val = _stratified(rows, fraction, strata(df.loc[rows]), seed)
    return np.sort(fit), np.sort(val)


def _stratified(rows: np.ndarray, fraction: float, stratify: np.ndarray,
                seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rest, `fraction` of `rows`): scikit-learn's seeded split, stratified by `stratify`
    (the rows' `strata`)."""
    from sklearn.model_selection import train_test_split  # ~1 s to import: only when splitting
    return train_test_split(rows, test_size=fraction, stratify=stratify, random_state=seed)
