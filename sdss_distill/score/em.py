"""`score --priors`: the model's training priors, the setting a run uses, EM on a documented
sample gathered over the Dask cluster, and OUTPUT/_priors.json (the numpy core is
sdss_distill.score.priors).

With `--priors em` the priors are estimated before any part is scored, from a deterministic
sample: at most `--em-rows` N rows (default EM_ROWS), taken as the first ceil(N / G) rows of
each of the catalogue's G row groups (`--em-sample F` keeps only a fraction F of each part's
row groups, spread evenly). Every part's share is read (u g r i z only) and classified on the
workers, in parallel; the client gathers the probabilities (12 bytes a row with three
classes) and runs EM on them in memory. A catalogue of at most N rows is used whole. The
scoring pass then runs once, with the estimated priors, as for a priors file: the EM costs
a fixed read of N rows, not a second pass over the catalogue.

Why N = 1,000,000 is enough: an estimated prior's sampling standard error is about
sqrt(pi (1 - pi) / N) <= 0.5 / sqrt(N) = 0.0005 (EM's de-mixing inflates it by roughly the
inverse of the classifier's accuracy, to <= 0.0006 at 90 %), twenty times below the 0.01-0.015
by which EM misses the true mix on real rows (the model's own error). Taking rows from every
row group spreads the sample over the whole catalogue (over the sky for a sky-ordered one);
a catalogue ordered *within* its row groups by something that tracks the class (magnitude,
say) would bias the heads of its row groups: give `--em-rows` at least its size there.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sdss_distill.core.bounded import load_json
from sdss_distill.core.errors import InputError, listing
from sdss_distill.core.io import sha256_bytes
from sdss_distill.data.table import labels as label_codes
from sdss_distill.runs.rows import load_run_rows
from sdss_distill.score import priors as core

MODES = ("training", "em")
EM_ROWS = 1_000_000
"""Default size of the EM sample (rows read; bad rows among them are left out)."""
RECORD = "_priors.json"  # "_": Parquet dataset readers (pyarrow, dask, pandas) skip it in OUTPUT


def training_priors(card: dict, labels) -> tuple[np.ndarray, str]:
    """The class fractions the model was trained on, and where they came from: the card's
    `priors` (export writes them), else the run's student-train rows (table + split)."""
    recorded = (card.get("priors") or {}).get("fractions") if isinstance(card, dict) else None
    if isinstance(recorded, dict):
        return core.vector(core.check_priors(recorded, labels, "model card 'priors'"), labels), "card"
    run = ((card.get("source") or {}) if isinstance(card, dict) else {}).get("run")
    if not run:
        raise InputError("the model card has no 'priors' and names no source run; export the "
                         "run again with this version (python -m sdss_distill.export --run DIR)")
    try:
        rows = load_run_rows(run)
    except InputError as e:
        raise InputError(f"the model card has no 'priors' (exported before they were recorded) "
                         f"and its run cannot give them: {e}") from None
    y = label_codes(rows.df.loc[rows.split.student_train])
    return core.fractions(y, len(labels)), f"run {run} (student_train rows)"


@dataclass(frozen=True)
class Setting:
    """What `--priors` asks for, resolved on the client before any part is scored."""

    mode: str  # "training", "em" or "file"
    labels: tuple[str, ...]
    training: tuple[float, ...] | None = None
    target: tuple[float, ...] | None = None  # the file's priors; EM's once estimated
    source: str | None = None  # where the training priors came from
    file: str | None = None
    em_sample: float = 1.0
    em_rows: int = EM_ROWS
    key: str | None = None  # recorded in every part's identity: a changed setting re-scores

    @property
    def weights(self) -> tuple[float, ...] | None:
        if self.target is None:
            return None
        return tuple(core.weights(np.array(self.target), np.array(self.training)).tolist())


def setting(spec: str, card: dict, labels, parts, em_sample: float = 1.0,
            em_rows: int = EM_ROWS) -> Setting:
    """Resolve `--priors training|em|FILE.json` for these parts (InputError on a bad value)."""
    labels = tuple(labels)
    if not 0 < em_sample <= 1:
        raise InputError(f"--em-sample must be in (0, 1], got {em_sample}")
    if em_rows < 1:
        raise InputError(f"--em-rows must be >= 1, got {em_rows}")
    if spec == "training":
        return Setting("training", labels)
    if spec != "em" and not spec.endswith(".json") and not Path(spec).is_file():
        raise InputError(f"--priors {spec}: give training, em or a JSON file of class priors "
                         f"(e.g. {{\"{labels[0]}\": 0.5, ...}})")
    target = (None if spec == "em" else tuple(core.vector(core.read_priors(Path(spec), labels),
                                                          labels).tolist()))
    training, source = training_priors(card, labels)
    what = {"mode": "em" if spec == "em" else "file", "training": training.tolist(),
            "target": target, "labels": labels}
    if spec == "em":  # the estimate depends on every input row: any changed input re-scores all
        what.update(sample=em_sample, em_rows=em_rows, tol=core.TOL, inputs=sorted(
            (p.source, p.size, p.mtime_ns, list(p.row_groups)) for p in parts))
    key = sha256_bytes(json.dumps(what, sort_keys=True))
    return Setting(what["mode"], labels, tuple(training.tolist()), target, source,
                   None if spec == "em" else str(Path(spec).resolve()), em_sample, em_rows, key)


def sample_groups(row_groups, fraction: float) -> tuple[int, ...]:
    """About `fraction` of the row groups, at least one, spread evenly over the part."""
    groups = tuple(row_groups)
    k = max(1, round(len(groups) * fraction))
    return tuple(int(groups[i]) for i in np.linspace(0, len(groups) - 1, k).round().astype(int))


def sample_plan(parts, st: Setting) -> tuple[list[tuple[int, ...]], int]:
    """Each part's sampled row groups and the rows read from the head of each: ceil(N / G)."""
    groups = [sample_groups(p.row_groups, st.em_sample) for p in parts]
    return groups, max(1, -(-st.em_rows // max(1, sum(map(len, groups)))))


def sampled(probabilities, part, bundle, batch_rows: int, row_groups, head: int):
    """A part's share of the sample: its probabilities and the worker CPU-seconds they took."""
    cpu = time.process_time()
    p = probabilities(part, bundle, batch_rows, row_groups, head)
    return p, time.process_time() - cpu


def estimate_on_cluster(client, parts, bundle, probabilities, st: Setting, batch_rows: int,
                        say=lambda msg: None) -> tuple[core.EMResult, float]:
    """EM on the sample (module docstring): the parts' shares classified on the workers, EM
    on the client. `probabilities(part, bundle, batch_rows, row_groups, head)` returns a
    part's good rows' (n, K) float32 probabilities. Returns the result and the CPU-seconds
    it took (workers' and the client's EM)."""
    groups, head = sample_plan(parts, st)
    n = len(parts)
    shipped = client.scatter(bundle, broadcast=True)  # once to every worker, not once a part
    futures = client.map(sampled, [probabilities] * n, parts, [shipped] * n, [batch_rows] * n,
                         groups, [head] * n, pure=False)
    shares = client.gather(futures)  # a part's error is raised here, with its message
    cpu = time.process_time()
    p = np.concatenate([s for s, _ in shares]) if shares else np.empty((0, len(st.labels)))
    if not len(p):
        raise InputError("--priors em: the EM sample holds no good rows; every sampled row "
                         "has a bad value (raise --em-rows or --em-sample)")
    result = core.estimate(p, np.array(st.training))
    cpu = time.process_time() - cpu + sum(c for _, c in shares)
    say(f"priors: EM over a sample of {result.rows:,} rows ({head:,} from the head of each of "
        f"{sum(map(len, groups)):,} row groups), {result.iterations} iterations"
        + ("" if result.converged else " (NOT converged)") + ": "
        + ", ".join(f"{c} {t:.4f} -> {e:.4f}" for c, t, e in zip(st.labels, st.training,
                                                                  result.priors)))
    return result, cpu


def record(st: Setting, result: core.EMResult | None = None) -> dict:
    """OUTPUT/_priors.json's content."""
    doc = {"method": st.mode, "labels": list(st.labels),
           "training": core.as_dict(st.training, st.labels), "training_source": st.source}
    if result is not None:
        doc.update(estimated=core.as_dict(result.priors, st.labels), iterations=result.iterations,
                   converged=result.converged, rows=result.rows, em_sample=st.em_sample,
                   em_rows=st.em_rows, tol=core.TOL)
    if st.file:
        doc["file"] = st.file
    doc.update(applied=core.as_dict(st.target, st.labels), key=st.key)
    return doc


def previous_record(output: Path, st: Setting) -> dict | None:
    """An earlier run's _priors.json for the same setting (same key), so a resumed run applies
    the very priors its finished parts were scored with instead of estimating them again."""
    try:
        doc = load_json(Path(output) / RECORD, fix="")
    except (OSError, ValueError):  # InputError too: a bad record is ignored, priors re-estimated
        return None
    if not isinstance(doc, dict) or doc.get("key") != st.key or not isinstance(doc.get("applied"), dict):
        return None
    try:
        core.check_priors(doc["applied"], st.labels, RECORD)
    except InputError:
        return None
    return doc


SHIFT_WARNING = 0.10
"""Out-of-domain share above which an EM estimate is flagged: those rows are unlike the
training set (covariate shift), which EM cannot tell from a change of class mix."""


def shift_note(total: dict) -> str:
    """A warning for the summary when --priors em ran on many out-of-domain rows, else ''."""
    doc, rows = total.get("priors") or {}, total["rows"] + total["skipped_rows"]
    share = total["out_of_domain"] / rows if rows else 0.0
    if doc.get("method") != "em" or share <= SHIFT_WARNING:
        return ""
    return (f"; WARNING: {share:.0%} of rows are outside the model's training domain: a "
            f"covariate shift, not a change of class mix, so the EM priors are not to be trusted "
            f"(docs/guide/scoring-priors.md)")


def check_mode(spec: str) -> None:
    """Reject an obviously wrong --priors before any work (a file is checked later)."""
    if spec.lower() in MODES and spec not in MODES:
        raise InputError(f"--priors {spec}: the modes are {listing(MODES)} (lower case)")
