"""Score models on the test rows: accuracy, per-class metrics, agreement, latency.

`Scores` is the one implementation (population.py scores its groups with it); the Markdown
of the report is written in runs/report_md.py."""

from __future__ import annotations

import time

import numpy as np

from sdss_distill.core.prob import log_softmax
from sdss_distill.core.schema import LABELS

ECE_BINS = 15


class Scores:
    """Classification metrics, and agreement with a teacher, accumulated batch by batch: the
    one implementation behind in-memory (`classification`) and streamed evaluation."""

    def __init__(self, bins: int = ECE_BINS):
        k = len(LABELS)
        self.confusion = np.zeros((k, k), np.int64)
        self.n, self.nll, self.kl, self.agree = 0, 0.0, 0.0, 0
        self.bins = np.zeros((3, bins))  # rows, correct, summed confidence per bin

    def add(self, y: np.ndarray, logits: np.ndarray, teacher_logits: np.ndarray | None = None
            ) -> None:
        y = np.asarray(y)
        log_p = log_softmax(logits, axis=1)  # core.prob: the one softmax
        pred = logits.argmax(axis=1)
        np.add.at(self.confusion, (y, pred), 1)
        # sklearn's log_loss clips p to [eps, 1 - eps], eps of the logits' float type
        eps = np.finfo(np.result_type(np.asarray(logits).dtype, np.float32)).eps
        p_true = np.clip(np.exp(log_p[np.arange(len(y)), y]), eps, 1 - eps)
        self.nll -= float(np.log(p_true.astype(np.float64)).sum())
        p = np.exp(log_p)
        confidence = p.max(axis=1)
        bins = self.bins.shape[1]
        which = np.minimum((confidence * bins).astype(int), bins - 1)
        for k, w in enumerate((None, pred == y, confidence)):
            self.bins[k] += np.bincount(which, weights=w, minlength=bins)
        if teacher_logits is not None:
            log_t = log_softmax(teacher_logits, axis=1)
            self.kl += float((np.exp(log_t) * (log_t - log_p)).sum(axis=1).astype(np.float64).sum())
            self.agree += int((teacher_logits.argmax(axis=1) == pred).sum())
        self.n += len(y)

    def result(self, *, with_teacher: bool) -> dict:
        """Test accuracy, log loss, ECE (Guo et al. 2017: the row-weighted mean |accuracy -
        confidence| over equal-width bins of the top-class probability), macro F1, per-class
        precision/recall/F1 and the confusion matrix; with_teacher adds KL(teacher || model)
        at T = 1 and the share of equal predictions."""
        cm = self.confusion
        tp, predicted, support = np.diag(cm), cm.sum(axis=0), cm.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(predicted > 0, tp / predicted, 0.0)
            recall = np.where(support > 0, tp / support, 0.0)
            f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        rows, correct, conf = self.bins
        out = {"test_accuracy": float(tp.sum() / self.n), "test_log_loss": self.nll / self.n,
               "test_ece": float(np.abs(correct - conf)[rows > 0].sum() / self.n),
               "macro_f1": float(f1.mean()),
               "per_class": {label: {"precision": float(p), "recall": float(r), "f1": float(f),
                                     "support": int(s)}
                             for label, p, r, f, s in zip(LABELS, precision, recall, f1, support)},
               "confusion_matrix": {"labels": list(LABELS),
                                    "rows_true_cols_predicted": cm.tolist()}}
        if with_teacher:
            out.update(teacher_student_kl=self.kl / self.n, agreement_with_teacher=self.agree / self.n)
        return out


def classification(y_true: np.ndarray, logits: np.ndarray) -> dict:
    """Test accuracy, log loss, ECE, macro F1, per-class precision/recall/F1 and the confusion
    matrix of one table's logits (`Scores` over a single batch)."""
    scores = Scores()
    scores.add(y_true, logits)
    return scores.result(with_teacher=False)


def expected_calibration_error(y_true: np.ndarray, logits: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE (Guo et al. 2017) over `bins` equal-width bins of the top-class probability."""
    scores = Scores(bins)
    scores.add(y_true, logits)
    return scores.result(with_teacher=False)["test_ece"]


def teacher_student(teacher_logits: np.ndarray, student_logits: np.ndarray) -> dict:
    """KL(teacher || student) at T = 1 (mean over rows) and the share of equal predictions."""
    scores = Scores()
    scores.add(teacher_logits.argmax(axis=1), student_logits, teacher_logits)
    out = scores.result(with_teacher=True)
    return {k: out[k] for k in ("teacher_student_kl", "agreement_with_teacher")}


def keras_latency(model, x: np.ndarray, calls: int = 300, budget_s: float = 0.05,
                  min_calls: int = 5) -> dict:
    """A Keras model called directly: batch-1 latency (median, p99) and batched rows/s.

    At most `calls` batch-1 calls, stopping early (after at least `min_calls`) once
    `budget_s` is spent: an eagerly called ensemble costs tens of milliseconds per call, and
    these timings are indicative (the TFLite benchmark in export is the measured one). The
    budget was 0.4 s, then 0.15 s per model; at 0.05 s and 5 calls the three arms' timings
    cost about 0.7 s of a default run instead of 2.9 s (docs/results/speed.md).
    """
    one = x[:1]
    model(one, training=False)
    times = []
    began = time.perf_counter()
    while len(times) < calls and (len(times) < min_calls or time.perf_counter() - began < budget_s):
        start = time.perf_counter()
        model(one, training=False)
        times.append(time.perf_counter() - start)
    model(x, training=False)
    start, reps = time.perf_counter(), 0
    while reps < 1 or time.perf_counter() - start < budget_s / 2:
        model(x, training=False)
        reps += 1
    return {"latency_us_median": float(np.median(times) * 1e6),
            "latency_us_p99": float(np.percentile(times, 99) * 1e6),
            "throughput_rows_per_s": float(reps * len(x) / (time.perf_counter() - start)),
            "invokes": len(times), "batch": int(len(x))}
