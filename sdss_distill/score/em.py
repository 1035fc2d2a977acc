"""`score --priors`: the model's training priors, the setting a run uses, EM over a Dask cluster
and OUTPUT/_priors.json (the numpy core is sdss_distill.score.priors).

With `--priors em` every part's good rows are classified once (reading only u g r i z) and
their probabilities stay in the workers' memory as Dask futures (12 bytes a row with three
classes, spread over the workers; Dask spills to disk past its memory limit). Each EM
iteration is then one map-reduce: every part sums its re-weighted posteriors, the client adds
the sums. `--em-sample F` classifies only a fraction F of each part's row groups (at least
one, spread evenly) to bound that memory and the extra pass on very large catalogues.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sdss_distill.core.errors import InputError, listing
from sdss_distill.score import priors as core

MODES = ("training", "em")
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
    from sdss_distill.data.table import labels as label_codes
    from sdss_distill.runs.rows import load_run_rows
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
    key: str | None = None  # recorded in every part's identity: a changed setting re-scores

    @property
    def weights(self) -> tuple[float, ...] | None:
        if self.target is None:
            return None
        return tuple(core.weights(np.array(self.target), np.array(self.training)).tolist())


def setting(spec: str, card: dict, labels, parts, em_sample: float = 1.0) -> Setting:
    """Resolve `--priors training|em|FILE.json` for these parts (InputError on a bad value)."""
    labels = tuple(labels)
    if not 0 < em_sample <= 1:
        raise InputError(f"--em-sample must be in (0, 1], got {em_sample}")
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
        what.update(sample=em_sample, tol=core.TOL, inputs=sorted(
            (p.source, p.size, p.mtime_ns, list(p.row_groups)) for p in parts))
    key = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()
    return Setting(what["mode"], labels, tuple(training.tolist()), target, source,
                   None if spec == "em" else str(Path(spec).resolve()), em_sample, key)


def sample_groups(row_groups, fraction: float) -> tuple[int, ...]:
    """About `fraction` of the row groups, at least one, spread evenly over the part."""
    groups = tuple(row_groups)
    k = max(1, round(len(groups) * fraction))
    return tuple(int(groups[i]) for i in np.linspace(0, len(groups) - 1, k).round().astype(int))


def classified(probabilities, part, bundle, batch_rows: int, row_groups) -> tuple[np.ndarray, float]:
    """A part's probabilities (kept on its worker) and the worker CPU-seconds they took."""
    cpu = time.process_time()
    p = probabilities(part, bundle, batch_rows, row_groups)
    return p, time.process_time() - cpu


def cpu_of(held) -> float:
    return held[1]


def part_sums(held, w) -> tuple[np.ndarray, int, float]:
    """One part's E-step sums (runs on a worker, next to the part's probabilities)."""
    cpu = time.process_time()
    p = held[0]
    return core.e_step(p, np.asarray(w)), len(p), time.process_time() - cpu


def estimate_on_cluster(client, parts, bundle, probabilities, st: Setting, batch_rows: int,
                        say=lambda msg: None) -> tuple[core.EMResult, float]:
    """EM over the whole catalogue (or its sample): one classification pass whose results stay
    on the workers, then one map-reduce per iteration. `probabilities(part, bundle, batch_rows,
    row_groups)` returns a part's good rows' (n, K) float32 probabilities. Returns the result
    and the worker CPU-seconds it took."""
    from dask.distributed import wait
    groups = [sample_groups(p.row_groups, st.em_sample) for p in parts]
    shipped = client.scatter(bundle, broadcast=True)
    n = len(parts)
    held = client.map(classified, [probabilities] * n, parts, [shipped] * n, [batch_rows] * n,
                      groups, pure=False)
    cpu = [0.0]
    try:
        wait(held)
        for f in held:
            f.result()  # raise a part's error here, with its message
        cpu[0] = sum(client.gather(client.map(cpu_of, held, pure=False)))

        def sums(w):
            out = client.gather(client.map(part_sums, held, w=tuple(w.tolist()), pure=False))
            cpu[0] += sum(c for _, _, c in out)
            return np.sum([s for s, _, _ in out], axis=0), sum(n for _, n, _ in out)
        result = core.em(sums, np.array(st.training))
    finally:
        client.cancel(held)
    say(f"priors: EM over {result.rows:,} rows, {result.iterations} iterations"
        + ("" if result.converged else " (NOT converged)") + ": "
        + ", ".join(f"{c} {t:.4f} -> {e:.4f}" for c, t, e in zip(st.labels, st.training,
                                                                  result.priors)))
    return result, cpu[0]


def record(st: Setting, result: core.EMResult | None = None) -> dict:
    """OUTPUT/_priors.json's content."""
    doc = {"method": st.mode, "labels": list(st.labels),
           "training": core.as_dict(st.training, st.labels), "training_source": st.source}
    if result is not None:
        doc.update(estimated=core.as_dict(result.priors, st.labels), iterations=result.iterations,
                   converged=result.converged, rows=result.rows, em_sample=st.em_sample,
                   tol=core.TOL)
    if st.file:
        doc["file"] = st.file
    doc.update(applied=core.as_dict(st.target, st.labels), key=st.key)
    return doc


def previous_record(output: Path, st: Setting) -> dict | None:
    """An earlier run's _priors.json for the same setting (same key), so a resumed run applies
    the very priors its finished parts were scored with instead of estimating them again."""
    try:
        doc = json.loads((Path(output) / RECORD).read_text())
    except (OSError, ValueError):
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
            f"(docs/scoring-priors.md)")


def check_mode(spec: str) -> None:
    """Reject an obviously wrong --priors before any work (a file is checked later)."""
    if spec.lower() in MODES and spec not in MODES:
        raise InputError(f"--priors {spec}: the modes are {listing(MODES)} (lower case)")
