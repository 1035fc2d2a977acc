"""Scores by population: per sample (bright, faint), per r-magnitude bin, inside and outside
the training domain, and the reliability table behind a reliability diagram.

Every group gets the same metrics as the whole test set, from the same code (`metrics.Scores`):
accuracy, log loss, ECE (equal-width bins of the top-class probability, metrics.ECE_BINS) and
per-class recall, with row and per-class counts. A metric a group cannot have (no rows, or no
row of a class for its recall) is None, never 0.
"""

from __future__ import annotations

import numpy as np

from sdss_distill.core.domain import domain, in_domain
from sdss_distill.core.schema import LABELS, SAMPLE, STUDENT_VIEW, get_view
from sdss_distill.data.table import features
from sdss_distill.distill.metrics import ECE_BINS, Scores

R_EDGES: tuple[float, ...] = (16.0, 17.0, 18.0, 19.0, 20.0, 21.0, 22.0)
"""Edges of the r-magnitude bins: [lo, hi) each, open-ended below the first and above the last."""


def r_bin_labels(edges=R_EDGES) -> list[str]:
    """'r < 16', '16-17', ..., '21-22', 'r >= 22'."""
    inner = [f"{a:g}-{b:g}" for a, b in zip(edges, edges[1:])]
    return [f"r < {edges[0]:g}", *inner, f"r >= {edges[-1]:g}"]


def r_bins(r: np.ndarray, edges=R_EDGES) -> np.ndarray:
    """Bin index of each r magnitude: 0 for r < edges[0], k for edges[k-1] <= r < edges[k]."""
    return np.digitize(np.asarray(r, float), edges)


def group(y: np.ndarray, logits: np.ndarray) -> dict:
    """Rows, accuracy, log loss, ECE, per-class recall and support of one group of rows."""
    scores = Scores()
    if len(y):
        scores.add(np.asarray(y), np.asarray(logits))
    return group_result(scores)


def group_result(scores: Scores) -> dict:
    """`group`'s entry from a group's accumulated Scores (in memory: one batch; streamed: the
    group's rows of every chunk)."""
    support = scores.confusion.sum(axis=1)
    out = {"rows": int(scores.n), "accuracy": None, "log_loss": None, "ece": None,
           "recall": dict.fromkeys(LABELS), "support": dict(zip(LABELS, support.tolist()))}
    if not scores.n:
        return out
    m = scores.result(with_teacher=False)
    out.update(accuracy=m["test_accuracy"], log_loss=m["test_log_loss"], ece=m["test_ece"],
               recall={c: (m["per_class"][c]["recall"] if n else None)
                       for c, n in zip(LABELS, support)})
    return out


def by_population(y: np.ndarray, logits: np.ndarray, r: np.ndarray,
                  sample: np.ndarray | None = None) -> dict:
    """`group` per sample (when the table has one) and per r-magnitude bin (every bin listed,
    empty ones with rows 0)."""
    y, logits = np.asarray(y), np.asarray(logits)
    out = {"by_sample": None, "by_r_mag": {}, "r_edges": list(R_EDGES)}
    if sample is not None:
        sample = np.asarray(sample).astype(str)
        out["by_sample"] = {s: group(y[sample == s], logits[sample == s])
                            for s in sorted(set(sample))}
    which = r_bins(r)
    for k, label in enumerate(r_bin_labels()):
        out["by_r_mag"][label] = group(y[which == k], logits[which == k])
    return out


def by_domain(y: np.ndarray, logits: np.ndarray, inside: np.ndarray) -> dict:
    """`group` for the rows inside the training domain and for those flagged outside it."""
    inside = np.asarray(inside, bool)
    return {"in_domain": group(y[inside], logits[inside]),
            "out_of_domain": group(y[~inside], logits[~inside])}


def reliability(y: np.ndarray, logits: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """Per equal-width bin of the top-class probability: its edges, rows, mean confidence and
    accuracy (None for an empty bin). The same bins as the ECE: sum(rows * |accuracy -
    confidence|) / total rows equals metrics.expected_calibration_error."""
    scores = Scores(bins)  # its bins are the ECE's: one binning
    scores.add(np.asarray(y), np.asarray(logits))
    return reliability_result(scores)


def reliability_result(scores: Scores) -> list[dict]:
    """`reliability`'s table from accumulated Scores."""
    rows, correct, confidence = scores.bins
    bins = len(rows)
    return [{"lo": b / bins, "hi": (b + 1) / bins, "rows": int(rows[b]),
             "confidence": float(confidence[b] / rows[b]) if rows[b] else None,
             "accuracy": float(correct[b] / rows[b]) if rows[b] else None}
            for b in range(bins)]


DOMAIN_DEFINITION = ("a test row is in the domain when each of its magnitudes and adjacent colours "
                     "lies within the [min, max] of the student-train rows (the model card's "
                     "domain; the edge classifier's in_domain flag)")


class Populations:
    """The test rows' r magnitude, sample and in-domain flag (the domain of the student-train
    rows in the student's view, as export writes into the model card), computed once per run
    and applied to every model's logits."""

    def __init__(self, test, train):
        view = get_view(STUDENT_VIEW)
        self.r = test["r"].to_numpy(float)
        self.sample = test[SAMPLE].to_numpy() if SAMPLE in test.columns else None
        self.domain = domain(features(train, view).astype(float), view.columns)
        self.inside = in_domain(features(test, view).astype(float), view.columns, self.domain)

    def metrics(self, y: np.ndarray, logits: np.ndarray) -> dict:
        """One model's population, domain and reliability entries of the report."""
        return {"population": by_population(y, logits, self.r, self.sample),
                "domain": by_domain(y, logits, self.inside),
                "reliability": reliability(y, logits)}

    def summary(self) -> dict:
        """The report's description of the groups (top level, shared by every model)."""
        which = r_bins(self.r)
        return {
            "r_mag_bins": {label: int((which == k).sum())
                           for k, label in enumerate(r_bin_labels())},
            "r_mag_definition": "SDSS r model magnitude; bins [lo, hi), open-ended at both ends",
            "samples": (None if self.sample is None else
                        {s: int((self.sample.astype(str) == s).sum())
                         for s in sorted(set(self.sample.astype(str)))}),
            "ece_bins": f"{ECE_BINS} equal-width bins of the top-class probability",
            "domain": {**self.domain, "test_rows_in_domain": int(self.inside.sum()),
                       "test_rows_out_of_domain": int((~self.inside).sum()),
                       "definition": DOMAIN_DEFINITION},
        }


class StreamedPopulations:
    """`Populations` accumulated chunk by chunk, for test rows never held together: the same
    groups (r-magnitude bins, in and out of the student-train domain, reliability bins) and
    the same entries, from per-group `Scores`. No sample groups: a streamed table reads only
    the views' columns."""

    def __init__(self, domain: dict):
        self.domain = domain
        self.bin_rows = np.zeros(len(R_EDGES) + 1, np.int64)
        self.inside_rows = self.rows = 0
        self.models: dict[str, dict] = {}

    def add_rows(self, r: np.ndarray, inside: np.ndarray) -> None:
        """Count one chunk's test rows per group (once per chunk, not per model)."""
        self.bin_rows += np.bincount(r_bins(r), minlength=len(self.bin_rows))
        self.inside_rows += int(np.sum(inside))
        self.rows += len(r)

    def add(self, name: str, y: np.ndarray, logits: np.ndarray, r: np.ndarray,
            inside: np.ndarray) -> None:
        """One model's logits on one chunk's test rows."""
        s = self.models.setdefault(name, {"r": [Scores() for _ in self.bin_rows],
                                          "in": Scores(), "out": Scores(), "all": Scores()})
        which, inside = r_bins(r), np.asarray(inside, bool)
        for k in np.unique(which):
            s["r"][k].add(y[which == k], logits[which == k])
        for key, rows in (("in", inside), ("out", ~inside)):
            if rows.any():
                s[key].add(y[rows], logits[rows])
        s["all"].add(y, logits)

    def metrics(self, name: str) -> dict:
        s = self.models[name]
        return {"population": {"by_sample": None, "r_edges": list(R_EDGES),
                               "by_r_mag": {label: group_result(s["r"][k])
                                            for k, label in enumerate(r_bin_labels())}},
                "domain": {"in_domain": group_result(s["in"]),
                           "out_of_domain": group_result(s["out"])},
                "reliability": reliability_result(s["all"])}

    def summary(self) -> dict:
        return {
            "r_mag_bins": {label: int(self.bin_rows[k]) for k, label in enumerate(r_bin_labels())},
            "r_mag_definition": "SDSS r model magnitude; bins [lo, hi), open-ended at both ends",
            "samples": None,
            "ece_bins": f"{ECE_BINS} equal-width bins of the top-class probability",
            "domain": {**self.domain, "test_rows_in_domain": self.inside_rows,
                       "test_rows_out_of_domain": self.rows - self.inside_rows,
                       "definition": DOMAIN_DEFINITION},
        }
