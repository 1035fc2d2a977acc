"""Tables larger than memory: Parquet files read chunk by chunk, cleaned, and split by id hash.

The split cannot be drawn from the whole table (it is never held), so each row's subset
comes from a hash of its object id:

    key = splitmix64(id XOR splitmix64(seed))           64-bit ids (objid, else specobjid)
    u   = (key >> 11) / 2**53                           uniform in [0, 1)
    subset = teacher_train if u < f_teacher, student_train if u < f_teacher + f_student,
             else test                                  (fractions from the config's `split`)
    v   = (splitmix64(key) >> 11) / 2**53               a second, independent uniform
    early-stopping row of a training subset if v < its validation fraction
    w   = (splitmix64(splitmix64(key)) >> 11) / 2**53  a third: fold floor(w * K) of K folds

splitmix64 is the finaliser of Steele, Lea and Flood's SplitMix generator (OOPSLA 2014;
`java.util.SplittableRandom`): a bijection on 64-bit integers whose output bits all depend
on all input bits. A row's subset depends only on its id, the seed and the fractions: not
on file order, chunk size or the other rows; repeated ids fall in the same subset. Unlike
the in-memory split it is not stratified (class shares per subset agree to sampling noise).
numpy and pyarrow only; pyarrow is imported where a file is read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sdss_distill.core.errors import InputError, listing
from sdss_distill.core.io import PARQUET_SUFFIXES, find_parquet, sha256_bytes, sha256_file, write_atomic  # noqa: F401  (re-exported)
from sdss_distill.core.quality import REASONS, check_columns, check_values, header_positions
from sdss_distill.core.safety import is_parquet
from sdss_distill.core.schema import ID_COLUMNS, LABELS, STUDENT_VIEW, TARGET, get_view
from sdss_distill.data.datasets import is_name
from sdss_distill.data.synth import is_simulated
from sdss_distill.data.table import CleaningReport

CHUNK_ROWS = 65_536  # rows per record batch read; with one row group, what is held per file
PARTS = ("teacher_fit", "teacher_val", "student_fit", "student_val", "test", "calibration")
"""Row part codes 0-5 (-1: dropped); *_val rows are the early-stopping slice of a subset;
calibration rows (a four-fraction split) are held out of every fit and are not test rows."""
SUBSET_PARTS = {"teacher_train": (0, 1), "student_train": (2, 3), "test": (4,),
                "calibration": (5,)}
MISSING_ID = "missing id"
HASH_RULE = ("subset by u = (splitmix64(id ^ splitmix64(seed)) >> 11) / 2**53 against the "
             "cumulative split fractions; early-stopping rows by v = (splitmix64(key) >> 11) / 2**53 "
             "< the subset's validation fraction")

SHUFFLE_ROWS = 1 << 19
"""Bounded shuffle buffer of a streamed fit, rows per member (distill.jax_batches): when it is
full, it is permuted and half leaves in whole batches, so about 1.5x this many are held."""


STREAM_FILE_BYTES = 256 << 20
"""A single Parquet file larger than this is streamed like a directory, never loaded whole."""


def is_stream_source(data: str | None) -> bool:
    """True for a directory, a glob pattern or one Parquet file (known by its magic bytes,
    whatever its name) larger than STREAM_FILE_BYTES: train streams it. False for other files
    and for a dataset name, even where a folder of that name exists (datasets.NAMES_WIN)."""
    if not data or is_name(data):
        return False
    if Path(data).is_file():
        return Path(data).stat().st_size > STREAM_FILE_BYTES and is_parquet(Path(data))
    return Path(data).is_dir() or any(ch in str(data) for ch in "*?[")


# -- the hash split -------------------------------------------------------------------------

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def splitmix64(x) -> np.ndarray:
    """The SplitMix64 finaliser on a uint64 array (arithmetic modulo 2**64)."""
    x = np.atleast_1d(np.asarray(x, dtype=np.uint64)) + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def _unit(h: np.ndarray) -> np.ndarray:
    return (h >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


@dataclass(frozen=True)
class HashSplit:
    """The streaming split: a rule on ids, not row positions (saved as the run's split.json)."""

    seed: int
    fractions: tuple[float, ...]  # data.table.split's: three, or four with calibration
    validation: tuple[float, float]  # early-stopping fraction of teacher-train, student-train
    id_column: str = "objid"
    sizes: dict = field(default_factory=dict)

    def parts(self, ids: np.ndarray) -> np.ndarray:
        """Part code (index into PARTS) of each id."""
        key = splitmix64(np.asarray(ids, np.uint64) ^ splitmix64(self.seed)[0])
        u, v = _unit(key), _unit(splitmix64(key))
        teacher_f, student_f, *cal_f, _ = self.fractions
        edges = np.cumsum([teacher_f, student_f, *cal_f])
        subset = np.searchsorted(edges, u, side="right")  # 0, 1, (2 calibration,) last test
        val = v < np.where(subset == 0, self.validation[0], self.validation[1])
        code = np.where(subset == len(edges), 4, np.where(subset == 2, 5, 2 * subset + val))
        return code.astype(np.int8)

    def folds(self, ids: np.ndarray, folds: int) -> np.ndarray:
        """Each id's fold in [0, folds) for cross-fitting: floor(w * folds), w a third uniform
        of the id's key, independent of its subset and early-stopping draws (u, v)."""
        key = splitmix64(np.asarray(ids, np.uint64) ^ splitmix64(self.seed)[0])
        w = _unit(splitmix64(splitmix64(key)))
        return np.minimum((w * folds).astype(np.int64), folds - 1)

    def save(self, path: Path, **provenance) -> None:
        doc = {"kind": "hash", "rule": HASH_RULE, "hash": "splitmix64 (Steele et al. 2014)",
               "id_column": self.id_column, "seed": self.seed, "fractions": list(self.fractions),
               "validation_fraction": dict(zip(("teacher_train", "student_train"), self.validation)),
               "sizes": self.sizes, **provenance}
        write_atomic(path, json.dumps(doc, indent=2))


# -- reading --------------------------------------------------------------------------------

class Views:
    """Column positions of the teacher's and the student's views in the columns read."""

    def __init__(self, teacher_view: str):
        self.teacher, self.student = get_view(teacher_view), get_view(STUDENT_VIEW)
        self.columns = tuple(dict.fromkeys([*self.teacher.columns, *self.student.columns]))

    def of(self, view) -> np.ndarray:
        return np.array([self.columns.index(c) for c in view.columns])


@dataclass
class Chunk:
    """One record batch, cleaned: values of `columns` (float64), labels, and part codes."""

    values: np.ndarray
    y: np.ndarray
    ids: np.ndarray  # uint64 object ids (0 where missing)
    part: np.ndarray  # PARTS index, -1 for a dropped row
    reason: np.ndarray  # '' for a kept row, else the drop reason (CleaningReport wording)
    where: tuple[Path, int]  # file and the chunk's first row position in it
    message: list  # (row in chunk, text) of the first drop per reason


class ParquetSource:
    """A set of Parquet files with the needed columns, read in chunks, never whole."""

    def __init__(self, data: str, columns: tuple[str, ...], column_map: dict | None = None):
        self.data, self.columns = data, tuple(columns)
        self.files = find_parquet(data)
        self.names: list[dict[str, str]] = []  # per file: canonical -> the file's column name
        self.row_groups: list[tuple[int, int]] = []  # (file index, row group) read units
        self.rows = 0
        self.simulated = False
        """True when any file's metadata says it is simulated (data.synth)."""
        for k, path in enumerate(self.files):
            try:
                with pq.ParquetFile(path) as pf:
                    schema, meta = pf.schema_arrow, pf.metadata
            except Exception as e:  # pyarrow raises ArrowInvalid / OSError subclasses
                raise InputError(f"{path}: not a readable Parquet file ({str(e).splitlines()[0]}); "
                                 f"remove it from --data or rewrite it") from None
            self.names.append(self._check_schema(path, schema, column_map))
            self.simulated |= is_simulated(schema.metadata)
            self.row_groups += [(k, g) for g in range(meta.num_row_groups)]
            self.rows += meta.num_rows
        ids = {n.get("__id__") for n in self.names}
        if len(ids) > 1:
            raise InputError(f"--data {data}: some files have objid, others only specobjid; "
                             f"the hash split needs one id column in every file")
        self.id_column = ids.pop()
        self.stamps = [self._stamp(p) for p in self.files]
        self.sha256s = [sha256_file(p) for p in self.files]
        lines = "".join(f"{s}  {p.name}\n" for s, p in zip(self.sha256s, self.files))
        self.sha256 = sha256_bytes(lines)
        """SHA-256 of the `sha256sum`-style listing "<sha>  <file name>" of the sorted files."""

    @staticmethod
    def _stamp(path: Path) -> tuple[int, int]:
        st = path.stat()
        return st.st_size, st.st_mtime_ns

    def check_unchanged(self) -> None:
        """Refuse to record a run whose files changed (size or mtime) while it trained."""
        for path, stamp in zip(self.files, self.stamps):
            if not path.is_file() or self._stamp(path) != stamp:
                raise InputError(f"{path}: changed while training read it; its hash would not "
                                 f"describe the rows used; train again on a table not being written")

    def _check_schema(self, path: Path, schema, column_map) -> dict[str, str]:
        found = header_positions(schema.names, column_map, source=str(path))
        names = {c: schema.names[k] for c, k in found.items()}
        check_columns(names, (*self.columns, TARGET), source=str(path), header=schema.names,
                      needed_by="training", fix="Rename them or pass --columns map.toml")
        for c in self.columns:
            t = schema.field(names[c]).type
            if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
                    or pa.types.is_null(t)):
                raise InputError(f"{path}: column {names[c]!r} has Parquet type {t}, not a number; "
                                 f"write it as float64")
        id_col = next((c for c in ID_COLUMNS if c in names), None)
        if id_col is None:
            raise InputError(f"{path}: no objid or specobjid column; the streaming split hashes "
                             f"the object id (add one, or train on one CSV/Parquet file)")
        t = schema.field(names[id_col]).type
        if not pa.types.is_integer(t):
            raise InputError(f"{path}: column {names[id_col]!r} has Parquet type {t}; the hash "
                             f"split needs 64-bit integer ids (write it as uint64 or int64)")
        return {**names, "__id__": id_col}

    def chunks(self, split: HashSplit, order_seed=None) -> Iterator[Chunk]:
        """Every chunk, cleaned and split; row groups in a seeded random order if asked."""
        units = list(self.row_groups)
        if order_seed is not None:
            units = [units[k] for k in np.random.default_rng(order_seed).permutation(len(units))]
        for fi, group in units:
            path, names = self.files[fi], self.names[fi]
            wanted = list(dict.fromkeys([names[names["__id__"]], names[TARGET],
                                         *(names[c] for c in self.columns)]))
            with pq.ParquetFile(path) as pf:
                offset = sum(pf.metadata.row_group(g).num_rows for g in range(group))
                for batch in pf.iter_batches(batch_size=CHUNK_ROWS, row_groups=[group],
                                             columns=wanted, use_threads=False):
                    yield self._clean(batch, names, split, (path, offset))
                    offset += batch.num_rows

    def _clean(self, batch, names, split: HashSplit, where) -> Chunk:
        """quality.check_values on the chunk, the same drop reasons as data.clean, then the split."""
        ids = batch.column(names[names["__id__"]])
        no_id = ids.is_null().to_numpy(zero_copy_only=False)
        id_values = pc.fill_null(ids, 0).cast(pa.uint64(), safe=False).to_numpy(zero_copy_only=False)
        labels = pc.utf8_upper(pc.utf8_trim_whitespace(batch.column(names[TARGET]).cast(pa.string())))
        no_class = pc.fill_null(pc.equal(labels, ""), True).to_numpy(zero_copy_only=False)
        code = pc.fill_null(pc.index_in(labels, value_set=pa.array(LABELS)), -1).to_numpy(
            zero_copy_only=False).astype(np.int32)
        if (bad := (code < 0) & ~no_class).any():
            found = sorted(set(labels.filter(pa.array(bad)).to_pylist()))
            raise InputError(f"{where[0]}: unknown class label(s) {listing(found)}; expected "
                             f"{', '.join(LABELS)}")
        values = np.column_stack([pc.cast(batch.column(names[c]), pa.float64())
                                  .to_numpy(zero_copy_only=False) for c in self.columns])
        checked = check_values(values, self.columns)
        reason = np.full(len(values), "", dtype=object)
        reason[no_class] = "missing class"
        quality_bad = ~checked.ok & ~no_class
        reason[quality_bad] = [REASONS[c] for c in checked.reason[quality_bad]]
        reason[no_id & (reason == "")] = MISSING_ID
        message = []
        for why in dict.fromkeys(reason[reason != ""]):
            k = int(np.flatnonzero(reason == why)[0])
            text = checked.message(k) if why in REASONS.values() else why
            message.append((k, why, text))
        part = np.where(reason == "", split.parts(id_values), -1).astype(np.int8)
        return Chunk(values, code, id_values, part, reason, where, message)


class Cleaning:
    """Rows read, kept and dropped per reason over a pass: a data.CleaningReport at the end."""

    def __init__(self):
        self.read = self.kept = 0
        self.dropped = {"missing class": 0, **{why: 0 for why in REASONS.values()}, MISSING_ID: 0}
        self.examples: dict[str, str] = {}

    def add(self, chunk: Chunk) -> None:
        self.read += len(chunk.y)
        self.kept += int((chunk.reason == "").sum())
        for why, n in zip(*np.unique(chunk.reason[chunk.reason != ""], return_counts=True)):
            self.dropped[why] += int(n)
        for k, why, text in chunk.message:
            self.examples.setdefault(why, f"{chunk.where[0]} row {chunk.where[1] + k}: {text}")

    def report(self, source: str):
        """The pass's data.CleaningReport; every row dropped is an InputError."""
        out = CleaningReport(self.read, self.kept, dict(self.dropped), dict(self.examples))
        if out.rows_kept == 0:
            raise InputError(f"{source}: cleaning dropped every row ({out.summary()}); check the "
                             f"table holds valid SDSS photometry")
        return out


class Moments:
    """Per-column count, mean and population variance, merged chunk by chunk in float64
    (Chan, Golub and LeVeque 1979), as Normalization.adapt computes them on an array."""

    def __init__(self, width: int):
        self.n, self.mean, self.m2 = 0, np.zeros(width), np.zeros(width)

    def add(self, x: np.ndarray) -> None:
        if not len(x):
            return
        x = np.asarray(x, np.float64)
        n_b, mean_b = len(x), x.mean(axis=0)
        m2_b = ((x - mean_b) ** 2).sum(axis=0)
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * n_b / n
        self.m2 = self.m2 + m2_b + delta ** 2 * self.n * n_b / n
        self.n = n

    @property
    def variance(self) -> np.ndarray:
        return self.m2 / max(self.n, 1)
