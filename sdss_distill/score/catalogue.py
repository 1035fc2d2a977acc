"""Classify a whole photometric catalogue (Parquet) on Dask, part by part, in bounded memory.

Command line: sdss_distill.score.cli (`python -m sdss_distill.score --help`).

Without `--scheduler` a LocalCluster starts (processes, `--workers` workers, one thread each).
Each input file is cut into parts of whole row groups (about `--part-rows` rows); each part
becomes one output file `DIR/<input name>.partNNNNN.parquet`, written under a temporary name
and renamed when complete. A re-run skips parts already complete for the same model and the
same input file (size and mtime, recorded in each part's Parquet metadata).
`--priors em` or `--priors FILE.json` adapts the probabilities to the catalogue's class mix
(score.em, docs/guide/scoring-priors.md); a HATS catalogue in gives a HATS catalogue out
(score.hats, docs/guide/scoring-hats.md).
Exit codes: 0 all rows scored; 1 some rows flagged bad (kept, with `quality` != "ok");
2 input errors (missing model or card, no input files, a file lacking u g r i z).
"""

from __future__ import annotations

import functools
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from sdss_distill.core.cli import progress
from sdss_distill.core.errors import InputError, check_signals, deferred_signals
from sdss_distill.core.io import check_dir_target, mark_dir, owner_mark, write_atomic
from sdss_distill.core.quality import REASONS
from sdss_distill.edge.classifier import card_path
from sdss_distill.score import em as score_priors
from sdss_distill.score import hats as hats_io
from sdss_distill.score import priors as class_priors
from sdss_distill.score import select
from sdss_distill.score.guard import (
    DASK_LOGS,
    LOCK_NAME,
    is_our_part,
    output_lock,
    quiet_after_signal,
    raise_worker_errors,
    worker_call,
)
from sdss_distill.score.parts import (
    META_KEY,
    PROG,
    Bundle,
    Part,
    completed,
    input_files,
    model_bundle,
    part_identity,
    part_probabilities,
    plan,
    score_part,
)

OUTPUT_KIND = "score"
LEGACY_MARKS = (LOCK_NAME, f"parts/{LOCK_NAME}")
"""A directory scored into by a version before the OWNER_FILE mark holds its lock file."""


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
    # Workers are spawned, never forked: a fork after JAX (or LiteRT) started threads may
    # deadlock (issue 21 item 6). "spawn" is distributed's default; said here so it stays.
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
                          "distributed.worker.profile.enabled": False,
                          "distributed.worker.multiprocessing-method": "spawn"}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True,
                               dashboard_address=":0", silence_logs=DASK_LOGS)
    return Client(cluster), cluster


def score_parts(parts: list[Part], bundle: Bundle, output: Path, *, scheduler, workers, threads,
                batch_rows, quiet, prepare=None) -> tuple[list[dict], float]:
    """Run score_part for every part on a Dask cluster, with a progress bar; (stats, seconds).
    `prepare(client, bundle) -> bundle` runs first on the same cluster (--priors em)."""
    from dask.distributed import as_completed
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
        if prepare is not None:
            bundle = prepare(client, bundle)
        shipped = client.scatter(bundle, broadcast=True)
        futures = client.map(functools.partial(worker_call, score_part), parts, bundle=shipped,
                             out_dir=str(output), batch_rows=batch_rows, pure=False)
        results = []
        with progress(total=len(parts), unit="part", disable=quiet) as bar:
            for future in as_completed(futures):
                results.append(part_result(future))
                bar.update()
        return results, time.perf_counter() - t0
    finally:
        with deferred_signals(check=False):  # checked by run_cli: exit 130/143
            quiet_after_signal()
            _close(client, cluster)


def _close(client, cluster) -> None:
    """Stop the client and a local cluster; a slow shutdown (a loaded machine) is not an error
    of the run, whose own outcome (done, or stopped by a signal) stands."""
    for closer in (client, cluster):
        if closer is None:
            continue
        try:
            closer.close(timeout=30)
        except (TimeoutError, OSError, RuntimeError):
            pass


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
          part_rows: int = 1_000_000, keep=(), quiet: bool = False, priors: str = "training",
          em_sample: float = 1.0, em_rows: int = score_priors.EM_ROWS,
          output_format: str | None = None, sets=None, purity=()) -> dict:
    """Score every part not yet complete; returns the run's totals (rows, per reason, time).
    `priors`: training, em or a JSON file (score_priors); `output_format`: parquet or hats
    (default: hats for HATS in); `sets`, `purity`: the set/selected_ columns (score.select)."""
    started = time.perf_counter()
    say = (lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    _check_args(model, priors)
    hats_in, fmt = _formats(pattern, output_format)
    files = check_output(Path(output), pattern, hats_in)
    bundle, outputs = _outputs(model_bundle(Path(model)), Path(model), sets, purity)
    if fmt == "hats":  # one part a partition, which keeps its sky position columns
        keep, part_rows = [*keep, *(c for c in hats_in.spatial if c not in keep)], 2**62
    parts = plan(files, bundle.columns, bundle.labels, list(keep), part_rows)
    st = score_priors.setting(priors, outputs["card"], bundle.labels, parts, em_sample, em_rows)
    bundle = replace(bundle, weights=st.weights, priors_key=st.key)
    final, output = output, (output / "parts" if fmt == "hats" else output)
    _claim(final)
    with output_lock(output):  # one writer; dead writers' temp files removed
        previous = _resume(output, parts, bundle, say, len(files))
        todo = [p for p in parts if previous[p.name] is None]
        record = score_priors.previous_record(final, st) if st.mode == "em" else None
        if record:  # a resumed em run applies the priors its finished parts were scored with
            st = replace(st, target=tuple(class_priors.vector(record["applied"], st.labels).tolist()))
            bundle = replace(bundle, weights=st.weights)
        elif st.mode == "file":
            record = score_priors.record(st)
            write_atomic(final / score_priors.RECORD, json.dumps(record, indent=2) + "\n")
        em = {"cpu_s": 0.0, "record": record}
        bundle = _selections(bundle, outputs, st) if st.mode != "em" or record else bundle

        def estimate(client, bundle: Bundle) -> Bundle:  # on the scoring cluster, before parts
            nonlocal st
            result, em["cpu_s"] = score_priors.estimate_on_cluster(
                client, parts, bundle, part_probabilities, st, batch_rows, say)
            st = replace(st, target=tuple(result.priors.tolist()))
            em["record"] = score_priors.record(st, result)
            write_atomic(final / score_priors.RECORD, json.dumps(em["record"], indent=2) + "\n")
            return _selections(replace(bundle, weights=st.weights), outputs, st)

        results, elapsed = (score_parts(todo, bundle, output, scheduler=scheduler,
                                        workers=workers, threads=threads, batch_rows=batch_rows,
                                        quiet=quiet,
                                        prepare=estimate if st.mode == "em" and not record else None)
                            if todo else ([], 0.0))
        read, expected = sum(r["rows"] for r in results), sum(p.rows for p in todo)
        if read != expected:  # every row of every part is written, bad ones flagged
            raise InputError(f"--input {pattern}: scored {read:,} rows where the files' metadata "
                             f"list {expected:,}; an input file changed while scoring, run again")
        total = _totals(results, previous, parts, elapsed, started, em["cpu_s"])
        total["priors"] = em["record"]
        total.update(outputs["report"])
        if fmt == "hats":
            hats_io.write_output(final, output, parts, hats_in, sum(p.rows for p in parts))
            total["hats"] = str(final)
    return total


def _check_args(model, priors: str) -> None:
    if not Path(model).is_file():
        raise InputError(f"--model {model}: no such model file")
    score_priors.check_mode(priors)


def _outputs(bundle: Bundle, model: Path, sets, purity) -> tuple[Bundle, dict]:
    """--sets and --purity checked against the card before any work: the bundle with the set
    thresholds and the parts' identity key, and what _selections needs later."""
    card, where = json.loads(bundle.card), card_path(model)
    wanted = select.parse_purity(purity, bundle.labels)
    q = select.set_thresholds(card, where, sets, bundle.labels)
    report = {"sets": {"level": float(sets), "thresholds": dict(zip(bundle.labels, q))}} if q else {}
    return (replace(bundle, set_q=q, outputs_key=select.key(q, wanted)),
            {"card": card, "where": where, "wanted": wanted, "report": report})


def _selections(bundle: Bundle, outputs: dict, st) -> Bundle:
    """--purity's thresholds under the mix the catalogue is scored with (the EM estimate or a
    file's priors: st.target; else the model's training mix), into the bundle and the report."""
    if not outputs["wanted"]:
        return bundle
    card, labels = outputs["card"], bundle.labels
    mix = st.target if st.target is not None else score_priors.training_priors(card, labels)[0]
    chosen = select.choose(card, outputs["where"], outputs["wanted"], labels, mix)
    outputs["report"]["selections"] = chosen
    return replace(bundle, selected=tuple((labels.index(k), v["threshold"])
                                          for k, v in chosen.items()))


def check_output(output: Path, pattern: str, hats_in) -> list[Path]:
    """The input files, once the write rule (core.io.check_dir_target) passed for --output,
    before any work: new, empty or an earlier score output; never the input, inside it,
    holding it, or another program's HATS catalogue."""
    files = hats_in.files if hats_in else input_files(pattern)
    inputs = [*files, *([Path(pattern)] if Path(pattern).is_dir() else []),
              *((hats_in.path, hats_in.base) if hats_in else ())]
    check_dir_target(output, "--output", inputs, kind=OUTPUT_KIND, legacy=LEGACY_MARKS)
    return files


def _claim(output: Path) -> None:
    """Create --output and mark it as a score output (core.io.mark_dir), once."""
    output.mkdir(parents=True, exist_ok=True)
    if owner_mark(output) is None:
        mark_dir(output, OUTPUT_KIND)


def _formats(pattern: str, output_format: str | None):
    """(the HATS catalogue --input names, or None; the output format: parquet or hats)."""
    hats_in = hats_io.open_input(pattern) if hats_io.is_hats(pattern) else None
    fmt = output_format or ("hats" if hats_in else "parquet")
    if fmt == "hats" and hats_in is None:
        raise InputError(f"--output-format hats needs a HATS catalogue as --input (its "
                         f"partitioning is kept), got {pattern}")
    return hats_in, fmt


def _resume(output: Path, parts: list[Part], bundle: Bundle, say, n_files: int) -> dict:
    """{part name: its recorded stats if already complete, else None}; parts this package
    wrote for an earlier, longer version of an input file are removed."""
    planned = {p.name for p in parts}
    stems = {p.name.rsplit(".part", 1)[0] for p in parts}
    stale = [f for f in output.glob("*.part?????.parquet")
             if f.name.rsplit(".part", 1)[0] in stems and f.name not in planned
             and is_our_part(f, META_KEY)]
    for f in stale:
        f.unlink()
    previous = {p.name: completed(output / p.name, part_identity(p, bundle)) for p in parts}
    done = sum(v is not None for v in previous.values())
    say(f"{len(parts)} parts from {n_files} files; " + (
        f"{done} already complete (same model, same input size and mtime), skipped" if done
        else "none complete yet") + (f"; removed {len(stale)} stale parts" if stale else ""))
    return previous


def _totals(results: list[dict], previous: dict, parts: list[Part], elapsed: float,
            started: float, em_cpu: float) -> dict:
    """The run's totals: rows, bad rows per reason, memory, CPU and time."""
    reused = [v for v in previous.values() if v is not None]
    every = results + reused
    total = {"parts": len(parts), "skipped_parts": len(reused),
             "rows": sum(r["rows"] for r in results),
             "skipped_rows": sum(r["rows"] for r in reused),
             "bad": {c: sum(r[c] for r in every) for c in REASONS},
             "out_of_domain": sum(r["out_of_domain"] for r in every),
             "worker_max_rss_mb": {r["worker"]: r["max_rss_mb"] for r in sorted(
                 results, key=lambda r: r["max_rss_mb"])},
             "cpu_s": sum(r["cpu_s"] for r in results) + em_cpu,  # EM's pass included
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
            f"{total['rows_per_s']:,.0f} rows/s while scoring"
            + (f"; priors {total['priors']['method']}: " + ", ".join(
                f"{c} {v:.3f}" for c, v in total["priors"]["applied"].items())
               if total.get("priors") else "") + score_priors.shift_note(total)
            + _selection_note(total)
            + f"; read {total['rows']:,} rows, wrote {total['rows']:,}, rejected 0 (bad rows are "
            f"kept, flagged); wrote {output}")


def _selection_note(total: dict) -> str:
    """The summary's words on --sets and --purity: the level, each threshold and the expected
    completeness under the mix used."""
    out = ""
    if total.get("sets"):
        out += f"; sets at {total['sets']['level']:g} in column `set`"
    for name, v in (total.get("selections") or {}).items():
        out += (f"; selected_{name}: p_{name} >= {v['threshold']:.3f} for purity "
                f"{v['purity']:g} (expected completeness {100 * v['expected_completeness']:.1f} "
                f"%, purity {100 * v['expected_purity']:.1f} % under the mix " + ", ".join(
                    f"{k} {m:.3f}" for k, m in v["mix"].items()) + ")")
    return out
