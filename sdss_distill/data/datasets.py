"""The one resolver for `--data`: a packaged dataset name, a file, a directory or a glob.

Packaged datasets (the sdss-distill-data distribution: `pip install ./datapkg`; a clone
finds `datapkg/sdss_distill_data/` without installing it):

    bright   10,000 DR14 objects from SkyServer (u < 19.6, g < 20)
    faint    26,999 DR17 objects, a subset of Kaggle's "Stellar Classification - SDSS17"
    sdss     both: bright rows 0-9999, then faint rows 10000-36998, and a `sample` column
             (bright / faint); the default when neither --data nor $SDSS_DISTILL_DATA is set

    python -m sdss_distill.data datasets                 # list them, with the SDSS acknowledgement

    >>> resolve("faint").files                      # (.../faint.parquet,), SHA-256 checked
    >>> resolve("runs/cat/*.parquet").kind          # 'stream'
    >>> load_dataset("sdss")                        # canonical column names + `sample`

Ids are not keys (written in float notation, rounded): a row's key is its position, the
DataFrame index. Each Parquet file is checked against the SHA-256 in provenance.json once
per process. pandas and pyarrow are imported only when a table is read.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from sdss_distill.core.errors import InputError, listing
from sdss_distill.core.io import find_parquet, sha256_bytes, sha256_file
from sdss_distill.core.quality import header_positions
from sdss_distill.core.safety import kind_of
from sdss_distill.core.schema import ID_COLUMNS, SAMPLE

DATA_ENV = "SDSS_DISTILL_DATA"
DEFAULT = "sdss"
PACKAGE = "sdss_distill_data"
DISTRIBUTION = "sdss-distill-data"
COMBINED: dict[str, tuple[str, ...]] = {"sdss": ("bright", "faint")}
"""Datasets made of packaged tables, concatenated in this order."""
KNOWN_TABLES = ("bright", "faint")
"""The tables of sdss-distill-data 0.1 (named in errors even when it is not installed)."""
INSTALL_HINT = (f"pip install ./datapkg (in a clone), or pip install {DISTRIBUTION}, "
                f"or pass --data FILE")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_verified: dict[tuple[str, int, int], str] = {}
"""(path, size, mtime_ns) -> SHA-256 already checked against provenance in this process."""


@dataclass(frozen=True)
class Source:
    """What `--data` named: a packaged dataset, one table file, or Parquet files to stream."""

    kind: str
    """'dataset', 'file' or 'stream' (a directory or glob of Parquet files)."""
    spec: str
    """The text given (a name, path or pattern)."""
    origin: str
    """Where it came from: '--data', '$SDSS_DISTILL_DATA' or 'default'."""
    files: tuple[Path, ...]
    name: str | None = None
    """The dataset name, for kind 'dataset'."""
    sha256: str | None = None
    """For a dataset: its digest (dataset_digest), its files already checked."""

    @property
    def path(self) -> Path:
        """The one file of a 'file' or single-table source."""
        if len(self.files) != 1:
            raise InputError(f"{self.spec} (from {self.origin}): {len(self.files)} files; this "
                             f"command reads one table (pass one file or a single-table dataset)")
        return self.files[0]

    @property
    def record(self) -> str:
        """What a run records to find its table again: the dataset name, or the absolute path."""
        return self.name if self.kind == "dataset" else str(self.path.resolve())

    def describe(self) -> str:
        what = f"dataset {self.name!r}" if self.kind == "dataset" else self.kind
        files = listing([str(p) for p in self.files], 3)
        return f"{what} from {self.origin}: {files}"


# -- the data package -----------------------------------------------------------------------

def package_dir() -> Path | None:
    """The sdss_distill_data directory: the installed package, else `datapkg/` in a clone."""
    try:
        import sdss_distill_data
    except ImportError:
        installed = None
    else:
        installed = getattr(sdss_distill_data, "__file__", None)  # None: a stray namespace dir
    if installed:
        return Path(installed).resolve().parent
    for parent in Path(__file__).resolve().parents[:3]:
        candidate = parent / "datapkg" / PACKAGE
        if (candidate / "provenance.json").is_file():
            return candidate
    return None


def provenance() -> dict:
    """The data package's provenance.json (sources, counts, hashes, acknowledgement)."""
    where = package_dir()
    if where is None:
        raise InputError(f"the packaged SDSS datasets ({DISTRIBUTION}) are not installed: "
                         f"{INSTALL_HINT}")
    path = where / "provenance.json"
    fix = f"reinstall {DISTRIBUTION} (pip install --force-reinstall ./datapkg)"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: unreadable ({type(e).__name__}: {e}); {fix}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("tables"), dict):
        raise InputError(f"{path}: no 'tables' object; {fix}")
    return doc


def names() -> tuple[str, ...]:
    """Valid dataset names: the packaged tables, then the combinations (bright, faint, sdss)."""
    tables = tuple(provenance()["tables"]) if package_dir() else KNOWN_TABLES
    return (*tables, *(c for c, parts in COMBINED.items() if set(parts) <= set(tables)))


def members(name: str) -> tuple[str, ...]:
    """The packaged tables a dataset is made of, in row order."""
    return COMBINED.get(name, (name,))


NAMES_WIN = "a dataset name wins over a file or folder of that name: write ./faint for the folder"
"""Said in every --help whose option takes dataset names (issue 23 case 4)."""


def is_name(spec: str | None) -> bool:
    """True if `spec` is a dataset name: then it means the packaged table, even where a local
    file or folder has the same name (`./faint` names the folder)."""
    return bool(spec) and _NAME.fullmatch(str(spec)) is not None and str(spec).lower() in names()


def _check_name(name: str) -> str:
    key = str(name).strip().lower()
    valid = names()
    if key not in valid:
        raise InputError(f"unknown dataset {name!r}; valid names: {', '.join(valid)} (or pass a "
                         f"file, directory or glob)")
    return key


def _stat_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path), st.st_size, st.st_mtime_ns


def _mismatch(path: Path, got: str, want: str) -> InputError:
    return InputError(f"{path}: SHA-256 {got[:12]}... does not match provenance.json "
                      f"({want[:12]}...): the packaged table was changed or damaged; reinstall "
                      f"{DISTRIBUTION} (pip install --force-reinstall ./datapkg), or in a clone "
                      f"run `git checkout datapkg/` or scripts/build_datasets.py")


def table_file(table: str, *, verify: bool = True) -> Path:
    """A packaged table's Parquet file; its SHA-256 checked against provenance (once)."""
    doc = provenance()
    entry = doc["tables"].get(table)
    if entry is None:
        raise InputError(f"{DISTRIBUTION} has no table {table!r}; it has "
                         f"{', '.join(doc['tables'])}")
    path = package_dir() / entry["file"]
    if not path.is_file():
        raise InputError(f"{path}: missing from {DISTRIBUTION}; {INSTALL_HINT}")
    if verify:
        key = _stat_key(path)
        if _verified.get(key) != entry["sha256"]:
            got = sha256_file(path)
            if got != entry["sha256"]:
                raise _mismatch(path, got, entry["sha256"])
            _verified[key] = got
    return path


def dataset_digest(name: str) -> str:
    """A dataset's SHA-256: its Parquet file's for one table; for a combination, the SHA-256
    of its tables' `name sha256` lines (record this with a run)."""
    key = _check_name(name)
    tables = provenance()["tables"]
    parts = members(key)
    if len(parts) == 1:
        return tables[key]["sha256"]
    lines = "".join(f"{t} {tables[t]['sha256']}\n" for t in parts)
    return sha256_bytes(lines)


# -- resolving --data -----------------------------------------------------------------------

def resolve(arg: str | None = None) -> Source:
    """`--data` (a dataset name, file, directory or glob), else $SDSS_DISTILL_DATA, else 'sdss'.

    A bare name that is a dataset wins over a file of that name (write `./bright` for the
    file). A dataset's files are checked against their SHA-256 in provenance.json.
    """
    env = os.environ.get(DATA_ENV)
    spec, origin = (arg, "--data") if arg else (env, f"${DATA_ENV}") if env else (DEFAULT, "default")
    bare = _NAME.fullmatch(spec) is not None
    valid = names()
    if is_name(spec):
        key = _check_name(spec)
        files = tuple(table_file(t) for t in members(key))
        return Source("dataset", spec, origin, files, key, dataset_digest(key))
    path = Path(spec)
    if path.is_file():
        return Source("file", spec, origin, (path,))
    if path.exists() and not path.is_dir():
        raise InputError(f"{spec}: {kind_of(path)}, not a regular file (from {origin}); save "
                         f"the table to a file first")
    if path.is_dir() or any(ch in spec for ch in "*?["):
        return Source("stream", spec, origin, tuple(find_parquet(spec)))
    if bare:
        raise InputError(f"{spec}: not a dataset name or a file (from {origin}); valid names: "
                         f"{', '.join(valid)}; or pass a file, directory or glob")
    raise InputError(f"{spec}: no such file (from {origin}); check the path, or name a "
                     f"packaged dataset ({', '.join(valid)})")


# -- loading --------------------------------------------------------------------------------

def canonicalise(df, source: str):
    """Columns renamed to canonical names (schema.canonical_name), id columns as text.

    Two names for one column are an InputError naming both; unknown columns keep their names.
    """
    header = [str(c) for c in df.columns]
    rename = {header[k]: canon for canon, k in header_positions(header, source=source).items()}
    df = df.rename(columns=rename)
    for c in ID_COLUMNS:
        if c in df:
            df[c] = df[c].astype("string")
    return df


def load_dataset(name: str):
    """A packaged dataset as a pandas DataFrame: canonical column names, `sample` (the table
    each row comes from), index `row` = position (tables concatenated in `members` order).

    The bytes parsed are the bytes hashed; attrs: source, dataset, sha256 (dataset_digest),
    files {table: path}.
    """
    import pandas as pd

    key = _check_name(name)
    tables = provenance()["tables"]
    parts = []
    for table in members(key):
        path = table_file(table, verify=False)
        raw = path.read_bytes()
        got, want = sha256_bytes(raw), tables[table]["sha256"]
        if got != want:
            raise _mismatch(path, got, want)
        _verified[_stat_key(path)] = got
        df = canonicalise(pd.read_parquet(io.BytesIO(raw)), str(path))
        df[SAMPLE] = table
        parts.append(df)
    columns = [list(p.columns) for p in parts]
    if any(c != columns[0] for c in columns):
        raise InputError(f"dataset {key!r}: its tables have different columns after renaming "
                         f"({' vs '.join(listing(c, 20) for c in columns)}); rebuild the package")
    df = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    df.index = pd.RangeIndex(len(df), name="row")
    df.attrs.update(source=f"dataset {key}", dataset=key, first_line=None,
                    sha256=dataset_digest(key),
                    files={t: str(package_dir() / tables[t]["file"]) for t in members(key)})
    return df


def load(spec: str | None, column_map: dict[str, str] | None = None):
    """The table `--data` names, held in memory: (Source, DataFrame); `df.attrs["sha256"]` is
    the hash of the bytes parsed (a dataset's digest). A directory or glob is streamed instead."""
    source = resolve(spec)
    if source.kind == "stream":
        raise InputError(f"{spec}: a directory or glob of Parquet files is streamed, not loaded; "
                         f"train it with --method offline, or pass one file or a dataset name")
    if source.kind == "dataset":
        return source, load_dataset(source.name)
    from sdss_distill.data.table import load_table_with_hash
    return source, load_table_with_hash(source.path, column_map)[0]


# -- listing --------------------------------------------------------------------------------

def describe_datasets() -> list[dict]:
    """One dict per dataset name: rows, class counts, releases, files, digest."""
    doc = provenance()
    tables = doc["tables"]
    out = []
    for name in names():
        parts = members(name)
        counts: dict[str, int] = {}
        for t in parts:
            for cls, n in tables[t]["class_counts"].items():
                counts[cls] = counts.get(cls, 0) + n
        out.append({"name": name, "tables": list(parts),
                    "rows": sum(tables[t]["rows"] for t in parts), "class_counts": counts,
                    "release": " + ".join(tables[t]["release"] for t in parts),
                    "files": [str(package_dir() / tables[t]["file"]) for t in parts],
                    "bytes": sum(tables[t]["bytes"] for t in parts),
                    "sha256": dataset_digest(name), "default": name == DEFAULT})
    return out


def format_datasets() -> str:
    """The `datasets` listing: a line per name, the package location, the acknowledgement."""
    lines = []
    for d in describe_datasets():
        classes = " ".join(f"{c} {n}" for c, n in d["class_counts"].items())
        default = "  (default)" if d["default"] else ""
        lines.append(f"{d['name']:<7} {d['rows']:>6} rows  {d['release']:<31} {classes}{default}")
    doc = provenance()
    lines += ["", f"from {package_dir()} ({doc.get('distribution', DISTRIBUTION)} "
                  f"{doc.get('version', '?')})",
              f"--data NAME, or ${DATA_ENV}; a file, directory or glob also works",
              "", "Acknowledgement (when publishing results): " + doc.get("acknowledgement", "")]
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The `datasets` subcommand's options (for a `data datasets` command)."""
    p.add_argument("--json", action="store_true", help="print the descriptions as JSON")


def run(args: argparse.Namespace) -> int:
    print(json.dumps(describe_datasets(), indent=2) if args.json else format_datasets())
    return 0
