"""Classify a whole photometric catalogue (Parquet) on Dask, part by part, in bounded memory.

Usage:
    python -m sdss_distill.score --model runs/default/tflite/student_int8.tflite \
        --input 'catalogue/*.parquet' --output scored/
    python -m sdss_distill.score --model student_int8.tflite --input 'catalogue/*.parquet' \
        --output scored/ --scheduler tcp://10.0.0.5:8786 --keep ra,dec,class

Without `--scheduler` a LocalCluster starts (processes, `--workers` workers, one thread each).
Each input file is cut into parts of whole row groups (about `--part-rows` rows); each part
becomes one output file `DIR/<input name>.partNNNNN.parquet`, written under a temporary name
and renamed when complete. A re-run skips parts already complete for the same model and the
same input file (size and mtime, recorded in each part's Parquet metadata).
Exit codes: 0 all rows scored; 1 some rows flagged bad (kept, with `quality` != "ok");
2 input errors (missing model or card, no input files, a file lacking u g r i z).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sdss_distill import __version__
from sdss_distill.core.errors import InputError, check_signals, deferred_signals, listing, run_cli
from sdss_distill.core.quality import FLOAT32_MAX, REASONS, VALUE_RANGES, check_values
from sdss_distill.core.schema import ID_COLUMNS, SENTINEL, canonical_name
from sdss_distill.data.synth import SIMULATED_KEY  # a simulated input's mark, copied into its output parts
from sdss_distill.score.guard import is_our_part, output_lock, raise_worker_errors, worker_call

PROG = "python -m sdss_distill.score"
EXIT_FLAGGED = 1
META_KEY = b"sdss_distill.score"
OUTPUT_COLUMNS = ("file", "row", "class", "in_domain", "quality", "quality_column")
"""Output columns besides the ids and p_<label>; a kept input column of the same name is
written as `input_<name>`."""
QUALITY = ("ok", *REASONS)


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


def model_bundle(model: Path) -> Bundle:
    """Read and validate the model, its card and labels on the client."""
    from sdss_distill.edge.classifier import LABELS_FILE, EdgeClassifier, card_path
    clf = EdgeClassifier(model)  # validates the file, its signature, card and labels here
    content = Path(model).read_bytes()
    labels = Path(model).parent / LABELS_FILE
    return Bundle(hashlib.sha256(content).hexdigest(), content, card_path(model).read_text(),
                  clf.columns, clf.labels, labels.read_text() if labels.is_file() else None)


_CLASSIFIERS: dict = {}
_LOCK = threading.Lock()


def classifier(bundle: Bundle):
    """This worker's EdgeClassifier for the bundle's model, built once per process and thread."""
    from sdss_distill.edge.classifier import LABELS_FILE, EdgeClassifier
    key = (bundle.sha256, threading.get_ident())
    with _LOCK:
        if key not in _CLASSIFIERS:
            with tempfile.TemporaryDirectory(prefix="sdss_distill_score_") as tmp:
                path = Path(tmp) / "model.tflite"
                path.write_bytes(bundle.content)
                path.with_suffix(".json").write_text(bundle.card)
                if bundle.labels_text is not None:
                    (Path(tmp) / LABELS_FILE).write_text(bundle.labels_text)
                _CLASSIFIERS[key] = EdgeClassifier(path, num_threads=1)
        return _CLASSIFIERS[key]


def check_rows(columns: list[np.ndarray], names) -> tuple[np.ndarray, np.ndarray]:
    """(reason, column) indices per row (into QUALITY and names) from quality.check_values.

    Only rows that could fail are checked: a row inside every column's VALUE_RANGES (which
    exclude NaN, the sentinel and float32 overflow) passes every check. Column by column,
    as numpy reduces along contiguous memory far faster than across a row.
    """
    n = len(columns[0]) if columns else 0
    reason, column = np.zeros(n, np.int8), np.full(n, -1, np.int8)
    ranges = [VALUE_RANGES.get(c) for c in names]
    if all(r and r[0] > SENTINEL and r[1] <= FLOAT32_MAX for r in ranges):
        inside = np.ones(n, bool)
        with np.errstate(invalid="ignore"):
            for values, (lo, hi) in zip(columns, ranges):
                inside &= (values >= lo) & (values <= hi)
        suspect = np.flatnonzero(~inside)
    else:
        suspect = np.arange(n)
    if len(suspect):
        checked = check_values(np.column_stack([c[suspect] for c in columns]), names)
        bad = ~checked.ok
        codes = {c: k for k, c in enumerate(QUALITY)}
        pos = {c: k for k, c in enumerate(names)}
        reason[suspect[bad]] = [codes[c] for c in checked.reason[bad]]
        column[suspect[bad]] = [pos[c] for c in checked.column[bad]]
    return reason, column


def _dictionary(indices: np.ndarray, values, null: int | None = None):
    import pyarrow as pa
    mask = indices == null if null is not None else None
    return pa.DictionaryArray.from_arrays(pa.array(indices, mask=mask), pa.array(values, pa.string()))


def classify(clf, x: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Per-class probability columns and the class index, as EdgeClassifier.predict computes
    them (softmax of the logits, first maximum wins), but column-wise for speed."""
    logits = clf.logits(x)
    cols = [logits[:, k] for k in range(logits.shape[1])]
    top = cols[0].copy()
    for c in cols[1:]:
        np.maximum(top, c, out=top)
    e = [np.exp(c - top) for c in cols]
    total = e[0].copy()
    for c in e[1:]:
        total += c
    p = [c / total for c in e]
    best, idx = p[0].copy(), np.zeros(len(x), np.int8)
    for k, c in enumerate(p[1:], 1):
        idx[c > best] = k
        np.maximum(best, c, out=best)
    return p, idx


def score_batch(clf, batch, part: Part, first_row: int):
    """One Arrow record batch in, the output table's batch out (bad rows flagged, not dropped)."""
    import pyarrow as pa
    n = batch.num_rows
    raw = [batch.column(part.columns[c]).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
           for c in clf.columns]
    reason, column = check_rows(raw, clf.columns)
    good = reason == 0
    n_good = int(good.sum())
    x = np.empty((n, len(raw)), np.float32)
    for k, values in enumerate(raw):
        with np.errstate(over="ignore", invalid="ignore"):  # bad rows only; never classified
            x[:, k] = values
    if n_good < n:
        x = x[good]
    pg, cg = classify(clf, x)
    dg = clf.in_domain(x)
    if n_good == n:
        p, cls, dom = pg, cg, dg
    else:
        p = [np.full(n, np.nan, np.float32) for _ in pg]
        cls, dom = np.full(n, -1, np.int8), np.zeros(n, bool)
        for full, part_good in zip(p, pg):
            full[good] = part_good
        cls[good], dom[good] = cg, dg
    cols = {c: batch.column(src) for c, src in part.columns.items() if c in ID_COLUMNS}
    cols["file"] = _dictionary(np.zeros(n, np.int32), [part.source])
    cols["row"] = pa.array(np.arange(first_row + 1, first_row + n + 1, dtype=np.int64))
    cols["class"] = _dictionary(cls, clf.labels, null=-1)
    cols.update({f"p_{label}": pa.array(p[k]) for k, label in enumerate(clf.labels)})
    cols["in_domain"] = pa.array(dom, mask=None if n_good == n else ~good)
    cols["quality"] = _dictionary(reason, QUALITY)
    cols["quality_column"] = _dictionary(column, clf.columns, null=-1)
    cols.update({out: batch.column(src) for out, src in part.keep.items()})
    counts = np.bincount(reason, minlength=len(QUALITY))
    stats = {"rows": n, "out_of_domain": int(len(dg) - dg.sum()),
             **{code: int(counts[k]) for k, code in enumerate(QUALITY) if k}}
    return pa.RecordBatch.from_arrays(list(cols.values()), names=list(cols)), stats


def _identity(part: Part, bundle: Bundle) -> dict:
    """What makes a finished part reusable: the model and the input file as it was."""
    return {"model_sha256": bundle.sha256, "source": part.source, "size": part.size,
            "mtime_ns": part.mtime_ns, "row_groups": list(part.row_groups),
            "first_row": part.first_row, "rows": part.rows, "keep": part.keep}


def completed(path: Path, identity: dict) -> dict | None:
    """The recorded stats of a finished part with this identity, else None."""
    import pyarrow.parquet as pq
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
    import pyarrow as pa
    ints = [f.name for f in schema if pa.types.is_integer(f.type)]
    computed = {f.name for f in schema if f.name.startswith("p_") and f.name not in part.keep}
    return {"compression": {f.name: "none" if f.name in computed else "zstd" for f in schema},
            "write_statistics": ints,
            "use_dictionary": [f.name for f in schema if pa.types.is_dictionary(f.type)
                               or f.name in part.keep],
            "column_encoding": {c: "DELTA_BINARY_PACKED" for c in ints if c not in part.keep}}


def score_part(part: Part, bundle: Bundle, out_dir: str, batch_rows: int) -> dict:
    """Score one part into DIR/<name> atomically (temporary name, then rename); its stats."""
    import resource

    import pyarrow.parquet as pq
    cpu = time.process_time()
    out = Path(out_dir) / part.name
    identity = _identity(part, bundle)
    clf = classifier(bundle)
    source = pq.ParquetFile(part.source)
    read = [*part.columns.values(), *part.keep.values()]
    totals: dict = {}
    tmp = out.parent / f".{part.name}.{uuid.uuid4().hex}.tmp"  # hidden, never *.parquet
    try:
        writer, first_row = None, part.first_row
        for batch in source.iter_batches(batch_size=batch_rows, row_groups=list(part.row_groups),
                                         columns=list(dict.fromkeys(read))):
            table, stats = score_batch(clf, batch, part, first_row)
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


def plan(paths: list[Path], columns, labels, keep: list[str], part_rows: int) -> list[Part]:
    """Parts of whole row groups (about part_rows rows each) for every input file."""
    import pyarrow as pa
    import pyarrow.parquet as pq
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
        found = {}
        for name in names:
            found.setdefault(canonical_name(name), name)
        missing = [c for c in columns if c not in found]
        if missing:
            raise InputError(f"{path}: missing column(s) {listing(missing)} needed by the model; "
                             f"found {listing(names, 20)}")
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
        taken = {*OUTPUT_COLUMNS, *ID_COLUMNS, *(f"p_{label}" for label in labels)}
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
    """The Parquet files a glob, a file or a directory names (a HATS catalogue needs lsdb)."""
    import glob
    path = Path(pattern)
    if path.is_dir():
        if (path / "hats.properties").is_file() or (path / "properties").is_file():
            return hats_files(path)
        files = sorted(path.rglob("*.parquet"))
    else:
        files = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
    if not files:
        raise InputError(f"--input {pattern}: no Parquet files match; give a file, a directory or "
                         f"a quoted glob such as 'catalogue/*.parquet'")
    return files


def hats_files(path: Path) -> list[Path]:
    """A HATS catalogue's partition files: LSDB (an optional extra) opens the catalogue and
    says how many HEALPix partitions it has; their Parquet files are then scored like any
    others. Not tested against a real LSDB install (see the README)."""
    try:
        import lsdb
    except ImportError:
        raise InputError(f"--input {path}: a HATS catalogue needs LSDB; pip install lsdb, or pass "
                         f"its Parquet files as a glob ('{path}/dataset/**/*.parquet')") from None
    pixels = lsdb.read_hats(path).get_healpix_pixels()
    files = sorted(f for f in path.rglob("*.parquet") if "Npix=" in f.as_posix())
    if len({f.as_posix().split("Npix=")[1].split("/")[0] for f in files}) != len(pixels):
        raise InputError(f"--input {path}: LSDB lists {len(pixels)} partitions but {len(files)} "
                         f"Npix=*.parquet files were found; pass the files as a glob instead")
    return files


def start_client(scheduler: str | None, workers: int, threads: int):
    """A dask.distributed Client: to an existing scheduler, or on a new LocalCluster."""
    from dask.distributed import Client, LocalCluster
    if scheduler:
        try:
            return Client(scheduler, timeout="10s"), None
        except OSError as e:
            raise InputError(f"--scheduler {scheduler}: cannot connect ({e}); start one with "
                             f"`dask scheduler` and `dask worker ADDRESS`") from None
    import dask
    # Dask's MALLOC_TRIM_THRESHOLD_ pins glibc's mmap threshold, so every batch-sized array is
    # a fresh mmap with page faults (13 % more worker CPU here); its sampling profiler costs
    # another few %. Both serve long-lived mixed workloads, not this bounded streaming.
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
                          "distributed.worker.profile.enabled": False}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True,
                               dashboard_address=":0", silence_logs=40)
    return Client(cluster), cluster


def score_parts(parts: list[Part], bundle: Bundle, output: Path, *, scheduler, workers, threads,
                batch_rows, quiet) -> tuple[list[dict], float]:
    """Run score_part for every part on a Dask cluster, with a progress bar; (stats, seconds)."""
    from dask.distributed import as_completed
    from tqdm import tqdm
    say = (lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    with deferred_signals(check=False):  # a cluster stopped half-started prints tracebacks
        client, cluster = start_client(scheduler, workers, threads)
    try:
        check_signals()
        info = client.scheduler_info()
        link = client.dashboard_link if "dashboard" in info.get("services", {}) else None
        say(f"dask: {len(info['workers'])} workers at {client.scheduler.address}; "
            + (f"dashboard {link}" if link else "no dashboard (pip install bokeh for one)"))
        t0 = time.perf_counter()
        shipped = client.scatter(bundle, broadcast=True)
        futures = client.map(functools.partial(worker_call, score_part), parts, bundle=shipped,
                             out_dir=str(output), batch_rows=batch_rows, pure=False)
        results = []
        with tqdm(total=len(parts), unit="part", disable=quiet, file=sys.stderr) as bar:
            for future in as_completed(futures):
                results.append(part_result(future))
                bar.update()
        return results, time.perf_counter() - t0
    finally:
        with deferred_signals(check=False):  # checked by run_cli: exit 130/143
            client.close()
            if cluster is not None:
                cluster.close()


def part_result(future) -> dict:
    """A finished part's stats; its error, or a dead worker, as one InputError line."""
    try:
        result = future.result()
    except Exception as e:  # noqa: BLE001 - Dask re-raises whatever the worker raised
        if type(e).__name__ != "KilledWorker":
            raise
        raise InputError(f"a Dask worker died while scoring ({str(e)[:120]}); it may have run "
                         f"out of memory, lower --batch or --part-rows") from None
    raise_worker_errors([result])
    return result


def score(model: Path, pattern: str, output: Path, *, scheduler: str | None = None,
          workers: int = 2, threads: int = 1, batch_rows: int = 262_144,
          part_rows: int = 1_000_000, keep=(), quiet: bool = False) -> dict:
    """Score every part not yet complete; returns the run's totals (rows, per reason, time)."""
    started = time.perf_counter()
    say = (lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    if not Path(model).is_file():
        raise InputError(f"--model {model}: no such model file")
    files = input_files(pattern)
    bundle = model_bundle(Path(model))
    parts = plan(files, bundle.columns, bundle.labels, list(keep), part_rows)
    with output_lock(output):  # one writer; dead writers' temp files removed
        planned = {p.name for p in parts}
        stems = {p.name.rsplit(".part", 1)[0] for p in parts}
        stale = [f for f in output.glob("*.part?????.parquet")
                 if f.name.rsplit(".part", 1)[0] in stems and f.name not in planned
                 and is_our_part(f, META_KEY)]
        for f in stale:  # parts of an earlier version of an input file that has fewer parts now
            f.unlink()
        previous = {p.name: completed(output / p.name, _identity(p, bundle)) for p in parts}
        todo = [p for p in parts if previous[p.name] is None]
        say(f"{len(parts)} parts from {len(files)} files; " + (
            f"{len(parts) - len(todo)} already complete (same model, same input size and mtime), "
            f"skipped" if len(todo) < len(parts) else "none complete yet")
            + (f"; removed {len(stale)} stale parts" if stale else ""))
        results, elapsed = (score_parts(todo, bundle, output, scheduler=scheduler, workers=workers,
                                        threads=threads, batch_rows=batch_rows, quiet=quiet)
                            if todo else ([], 0.0))
        read, expected = sum(r["rows"] for r in results), sum(p.rows for p in todo)
        if read != expected:  # every row of every part is written, bad ones flagged
            raise InputError(f"--input {pattern}: scored {read:,} rows where the files' metadata "
                             f"list {expected:,}; an input file changed while scoring, run again")
        reused = [v for v in previous.values() if v is not None]
        every = results + reused
        total = {"parts": len(parts), "skipped_parts": len(reused),
                 "rows": sum(r["rows"] for r in results),
                 "skipped_rows": sum(r["rows"] for r in reused),
                 "bad": {c: sum(r[c] for r in every) for c in REASONS},
                 "out_of_domain": sum(r["out_of_domain"] for r in every),
                 "worker_max_rss_mb": {r["worker"]: r["max_rss_mb"] for r in sorted(
                     results, key=lambda r: r["max_rss_mb"])},
                 "cpu_s": sum(r["cpu_s"] for r in results),
                 "scoring_s": elapsed, "wall_s": time.perf_counter() - started}
    total["rows_per_s"] = total["rows"] / elapsed if elapsed else 0.0
    return total


def summary(total: dict, output: Path) -> str:
    """The one-line report at the end of a run."""
    bad = {c: n for c, n in total["bad"].items() if n}
    skipped = (f"; {total['skipped_parts']} parts ({total['skipped_rows']:,} rows) already complete, "
               f"skipped" if total["skipped_parts"] else "")
    return (f"{PROG}: scored {total['rows']:,} rows in {total['parts'] - total['skipped_parts']} "
            f"parts{skipped}; bad rows {sum(bad.values()):,}"
            + (f" ({', '.join(f'{c} {n:,}' for c, n in bad.items())})" if bad else "")
            + f"; {total['out_of_domain']:,} out of domain; {total['wall_s']:.1f} s wall, "
            f"{total['rows_per_s']:,.0f} rows/s while scoring; read {total['rows']:,} rows, wrote "
            f"{total['rows']:,}, rejected 0 (bad rows are kept, flagged); wrote {output}")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help=".tflite file (its .json card next to it)")
    p.add_argument("--input", required=True, help="Parquet file, directory or quoted glob")
    p.add_argument("--output", required=True, help="directory for the output parts")
    p.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. "
                   "tcp://host:8786 (default: start a LocalCluster)")
    p.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes "
                   "(default: 2)")
    p.add_argument("--threads-per-worker", type=int, default=1,
                   help="LocalCluster threads per worker (default: 1)")
    p.add_argument("--batch", type=int, default=262_144, help="rows read and classified at a "
                   "time (default: 262144)")
    p.add_argument("--part-rows", type=int, default=1_000_000, help="rows per output part, "
                   "in whole input row groups (default: 1000000)")
    p.add_argument("--keep", default="", help="comma-separated input columns to pass through "
                   "(default: none); one named like an output column gets an input_ prefix")
    p.add_argument("--quiet", action="store_true", help="no progress output (default: off)")
    p.add_argument("--debug", action="store_true", help="show tracebacks for input errors")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)

    def body() -> int:
        for name in ("workers", "threads_per_worker", "batch", "part_rows"):
            if getattr(args, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be >= 1, got "
                                 f"{getattr(args, name)}")
        keep = [c.strip() for c in args.keep.split(",") if c.strip()]
        total = score(Path(args.model), args.input, Path(args.output), scheduler=args.scheduler,
                      workers=args.workers, threads=args.threads_per_worker, batch_rows=args.batch,
                      part_rows=args.part_rows, keep=keep, quiet=args.quiet)
        print(summary(total, Path(args.output)), file=sys.stderr)
        return EXIT_FLAGGED if sum(total["bad"].values()) else 0

    return run_cli(body, PROG, debug=args.debug)


if __name__ == "__main__":
    # `-m` runs this file as __main__, whose functions Dask would pickle by value (with their
    # module globals); the imported module's are pickled by name, as workers expect.
    from sdss_distill.score.catalogue import main as _main
    sys.exit(_main())
