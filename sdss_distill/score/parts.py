"""The worker side of catalogue scoring: plan parts of whole row groups, classify their rows
with the LiteRT model, and write each part as one Parquet file under a temporary name, renamed
when complete (a re-run skips parts complete for the same model and input)."""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sdss_distill import __version__
from sdss_distill.core.cli import program
from sdss_distill.core.errors import InputError, listing
from sdss_distill.core.io import find_parquet, sha256_bytes
from sdss_distill.core.quality import check_columns, header_positions
from sdss_distill.core.schema import ID_COLUMNS, SIMULATED_KEY
from sdss_distill.edge.classifier import LABELS_FILE, EdgeClassifier, card_path
from sdss_distill.score import hats as hats_io
from sdss_distill.score.batch import QUALITY, Model, check_rows, features, probabilities, score_batch

__all__ = ["QUALITY", "check_rows", "score_batch"]  # the batch arithmetic, re-exported

PROG = program("score")
EXIT_FLAGGED = 1
META_KEY = b"sdss_distill.score"
OUTPUT_COLUMNS = ("file", "row", "class", "in_domain", "quality", "quality_column", "z_phot",
                  "z_phot_err")
"""Output columns besides the ids and p_<label>; a kept input column of the same name is
written as `input_<name>`."""

@dataclass(frozen=True)
class Part:
    """Whole row groups of one input file, scored into one output file."""

    source: str  # absolute: a worker's working directory may differ from the client's
    name: str
    row_groups: tuple[int, ...]
    first_row: int
    rows: int
    size: int
    mtime_ns: int
    columns: dict  # output/model name -> input column name
    keep: dict  # output name -> input column name


@dataclass(frozen=True)
class Bundle:
    """Model bytes, card and labels, read once by the client and shipped to every worker
    (a cluster's workers may not see the client's files)."""

    sha256: str
    content: bytes
    card: str
    columns: tuple[str, ...]
    labels: tuple[str, ...]
    labels_text: str | None
    weights: tuple[float, ...] | None = None  # --priors em/FILE: p_k re-weighted by w_k
    priors_key: str | None = None  # score_priors.Setting.key, part of each part's identity
    set_q: tuple[float, ...] | None = None  # --sets: the card's conformal thresholds (select)
    selected: tuple = ()  # --purity: ((class index, threshold on p_class), ...)
    outputs_key: str | None = None  # select.key of --sets/--purity, part of the identity


def model_bundle(model: Path) -> Bundle:
    """Read and validate the model, its card and labels on the client."""
    clf = EdgeClassifier(model)  # validates the file, its signature, card and labels here
    content = Path(model).read_bytes()
    labels = Path(model).parent / LABELS_FILE
    return Bundle(sha256_bytes(content), content, card_path(model).read_text(),
                  clf.columns, clf.labels, labels.read_text() if labels.is_file() else None)


_CLASSIFIERS: dict = {}
_LOCK = threading.Lock()


def classifier(bundle: Bundle) -> Model:
    """This worker's model (validated as an EdgeClassifier, run by its own resized LiteRT
    interpreter), built once per process and thread."""
    key = (bundle.sha256, threading.get_ident())
    with _LOCK:
        if key not in _CLASSIFIERS:
            with tempfile.TemporaryDirectory(prefix="sdss_distill_score_") as tmp:
                path = Path(tmp) / "model.tflite"
                path.write_bytes(bundle.content)
                path.with_suffix(".json").write_text(bundle.card)
                if bundle.labels_text is not None:
                    (Path(tmp) / LABELS_FILE).write_text(bundle.labels_text)
                _CLASSIFIERS[key] = Model(EdgeClassifier(path, num_threads=1), bundle.content)
        return _CLASSIFIERS[key]


def part_identity(part: Part, bundle: Bundle) -> dict:
    """What makes a finished part reusable: the model and the input file as it was."""
    return {"model_sha256": bundle.sha256, "source": part.source, "size": part.size,
            "mtime_ns": part.mtime_ns, "row_groups": list(part.row_groups),
            "first_row": part.first_row, "rows": part.rows, "keep": part.keep,
            **({"priors": bundle.priors_key} if bundle.priors_key else {}),
            **({"outputs": bundle.outputs_key} if bundle.outputs_key else {})}


def completed(path: Path, identity: dict) -> dict | None:
    """The recorded stats of a finished part with this identity, else None."""
    try:
        meta = json.loads(pq.read_metadata(path).metadata[META_KEY])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return meta.get("stats") if meta.get("identity") == identity else None


def writer_options(schema, part: Part) -> dict:
    """Parquet settings for speed: dictionaries only for the label-like columns, delta encoding
    and statistics only for the integer id and row columns, zstd for all but the computed
    probabilities (statistics, dictionary attempts and compression on those floats cost about
    half the write time and save little space)."""
    ints = [f.name for f in schema if pa.types.is_integer(f.type)]
    computed = {f.name for f in schema if f.name.startswith("p_") and f.name not in part.keep}
    return {"compression": {f.name: "none" if f.name in computed else "zstd" for f in schema},
            "write_statistics": ints,
            "use_dictionary": [f.name for f in schema if pa.types.is_dictionary(f.type)
                               or f.name in part.keep],
            "column_encoding": {c: "DELTA_BINARY_PACKED" for c in ints if c not in part.keep}}


def score_part(part: Part, bundle: Bundle, out_dir: str, batch_rows: int) -> dict:
    """Score one part into DIR/<name> atomically (temporary name, then rename); its stats."""
    cpu = time.process_time()
    out = Path(out_dir) / part.name
    identity = part_identity(part, bundle)
    clf = classifier(bundle)
    source = pq.ParquetFile(part.source)
    read = [*part.columns.values(), *part.keep.values()]
    totals: dict = {}
    tmp = out.parent / f".{part.name}.{uuid.uuid4().hex}.tmp"  # hidden, never *.parquet
    try:
        writer, first_row = None, part.first_row
        for batch in source.iter_batches(batch_size=batch_rows, row_groups=list(part.row_groups),
                                         columns=list(dict.fromkeys(read)), use_threads=False):
            table, stats = score_batch(clf, batch, part, first_row, bundle.weights,
                                       bundle.set_q, bundle.selected)
            first_row += batch.num_rows
            for k, v in stats.items():
                totals[k] = totals.get(k, 0) + v
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema, **writer_options(table.schema, part))
            writer.write_batch(table)
        if writer is None:
            raise InputError(f"{part.source}: row groups {listing(part.row_groups)} are empty")
        simulated = (source.schema_arrow.metadata or {}).get(SIMULATED_KEY.encode())
        writer.add_key_value_metadata({META_KEY: json.dumps(
            {"identity": identity, "stats": totals, "sdss_distill": __version__}),
            **({SIMULATED_KEY: simulated} if simulated else {})})
        writer.close()
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # this worker process's peak RSS so far (Linux: KiB), for the memory-per-worker figure
    return {**totals, "worker": f"{os.uname().nodename}:{os.getpid()}",
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "cpu_s": time.process_time() - cpu}


def part_probabilities(part: Part, bundle: Bundle, batch_rows: int, row_groups=None,
                       head: int | None = None) -> np.ndarray:
    """The model's (n, K) float32 probabilities of the good rows among `row_groups` of a part
    (default: all of them), or among the first `head` rows of each (--priors em's sample)."""
    model, out = classifier(bundle), []
    source, names = pq.ParquetFile(part.source), [part.columns[c] for c in model.columns]
    for group in row_groups or part.row_groups:
        left = head or source.metadata.row_group(group).num_rows
        for batch in source.iter_batches(batch_size=min(batch_rows, left), row_groups=[group],
                                         columns=names, use_threads=False):
            batch = batch.slice(0, left)
            xt, reason, _ = features(batch, names, model.columns)
            out.append(probabilities(model, xt)[:, reason == 0].T)
            left -= batch.num_rows
            if left <= 0:
                break
    return np.concatenate(out) if out else np.empty((0, len(model.labels)), np.float32)


def plan(paths: list[Path], columns, labels, keep: list[str], part_rows: int) -> list[Part]:
    """Parts of whole row groups (about part_rows rows each) for every input file."""
    common = Path(os.path.commonpath([p.resolve().parent for p in paths]))
    parts = []
    for path in paths:
        try:
            meta = pq.ParquetFile(path).metadata
        except (OSError, ValueError) as e:  # ArrowInvalid is a ValueError
            raise InputError(f"{path}: not a readable Parquet file ({e})") from None
        schema = meta.schema.to_arrow_schema()
        names = schema.names
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise InputError(f"{path}: column(s) {listing(twice)} present more than once; write "
                             f"the file with unique column names")
        if meta.num_rows == 0:
            print(f"{PROG}: {path}: 0 rows, nothing to score; skipped", file=sys.stderr)
            continue
        found = {canon: names[k] for canon, k in header_positions(names, source=str(path)).items()}
        check_columns(found, columns, source=str(path), header=names)
        absent = [c for c in keep if c not in names]
        if absent:
            raise InputError(f"{path}: --keep column(s) {listing(absent)} not found; found "
                             f"{listing(names, 20)}")
        text = [found[c] for c in columns if not (pa.types.is_integer(schema.field(found[c]).type)
                                                  or pa.types.is_floating(schema.field(found[c]).type))]
        if text:
            raise InputError(f"{path}: column(s) {listing(text)} hold "
                             f"{schema.field(text[0]).type} values, not numbers; store "
                             f"magnitudes as float")
        cols = {c: found[c] for c in (*ID_COLUMNS, *columns) if c in found}
        taken = {*OUTPUT_COLUMNS, *ID_COLUMNS, *(f"p_{label}{s}" for label in labels
                                                 for s in ("", "_model"))}
        kept = {(f"input_{c}" if c in taken else c): c for c in keep}
        stem = path.resolve().with_suffix("").relative_to(common).as_posix().replace("/", "__")
        stat = path.stat()
        groups, start, rows, k = [], 0, 0, 0
        for g in range(meta.num_row_groups):
            groups.append(g)
            rows += meta.row_group(g).num_rows
            if rows >= part_rows or g == meta.num_row_groups - 1:
                parts.append(Part(str(path.resolve()), f"{stem}.part{k:05d}.parquet", tuple(groups), start,
                                  rows, stat.st_size, stat.st_mtime_ns, cols, kept))
                groups, start, rows, k = [], start + rows, 0, k + 1
    names = [p.name for p in parts]
    if len(set(names)) != len(names):
        raise InputError("two input files map to the same output name; give distinct file names")
    return parts


def input_files(pattern: str) -> list[Path]:
    """The Parquet files a glob, a file or a directory names (core.io.find_parquet, as train
    reads them); a HATS catalogue's partitions (it needs lsdb)."""
    if hats_io.is_hats(pattern):
        return hats_io.open_input(pattern).files
    return find_parquet(pattern, "--input")
