"""Score models on the test rows: accuracy, per-class metrics, agreement, latency."""

from __future__ import annotations

import time

import numpy as np

from sdss_distill.core.schema import LABELS

# scipy and scikit-learn are imported inside the functions that use them: `export --help`
# imports this module, and scikit-learn alone takes about a second to import.


def classification(y_true: np.ndarray, logits: np.ndarray) -> dict:
    """Test accuracy, log loss, per-class precision/recall/F1 and the confusion matrix."""
    from scipy.special import log_softmax
    from sklearn.metrics import accuracy_score, confusion_matrix, log_loss, precision_recall_fscore_support
    pred = logits.argmax(axis=1)
    k = list(range(len(LABELS)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, pred, labels=k, zero_division=0)
    return {
        "test_accuracy": float(accuracy_score(y_true, pred)),
        "test_log_loss": float(log_loss(y_true, np.exp(log_softmax(logits, axis=1)), labels=k)),
        "test_ece": expected_calibration_error(y_true, logits),
        "macro_f1": float(f1.mean()),
        "per_class": {label: {"precision": float(p), "recall": float(r), "f1": float(f),
                              "support": int(s)}
                      for label, p, r, f, s in zip(LABELS, precision, recall, f1, support)},
        "confusion_matrix": {"labels": list(LABELS),
                             "rows_true_cols_predicted": confusion_matrix(
                                 y_true, pred, labels=k).tolist()},
    }


def expected_calibration_error(y_true: np.ndarray, logits: np.ndarray, bins: int = 15) -> float:
    """ECE (Guo et al. 2017): the row-weighted mean |accuracy - confidence| over `bins` equal-width
    bins of the top-class probability."""
    from scipy.special import log_softmax
    p = np.exp(log_softmax(logits, axis=1))
    confidence, correct = p.max(axis=1), (p.argmax(axis=1) == y_true)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    gap = 0.0
    for b in np.unique(which):
        in_bin = which == b
        gap += in_bin.sum() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(gap / len(y_true))


def teacher_student(teacher_logits: np.ndarray, student_logits: np.ndarray) -> dict:
    """KL(teacher || student) at T = 1 (mean over rows) and the share of equal predictions."""
    from scipy.special import log_softmax
    log_t, log_s = log_softmax(teacher_logits, axis=1), log_softmax(student_logits, axis=1)
    kl = (np.exp(log_t) * (log_t - log_s)).sum(axis=1).mean()
    agree = (teacher_logits.argmax(1) == student_logits.argmax(1)).mean()
    return {"teacher_student_kl": float(kl), "agreement_with_teacher": float(agree)}


def keras_latency(model, x: np.ndarray, calls: int = 300, budget_s: float = 0.4) -> dict:
    """A Keras model called directly: batch-1 latency (median, p99) and batched rows/s.

    At most `calls` batch-1 calls, stopping early (after at least 30) once `budget_s` is
    spent: an eagerly called ensemble costs tens of milliseconds per call.
    """
    one = x[:1]
    for _ in range(5):
        model(one, training=False)
    times = []
    began = time.perf_counter()
    while len(times) < calls and (len(times) < 30 or time.perf_counter() - began < budget_s):
        start = time.perf_counter()
        model(one, training=False)
        times.append(time.perf_counter() - start)
    model(x, training=False)
    start, reps = time.perf_counter(), 0
    while reps < 3 or time.perf_counter() - start < 0.2:
        model(x, training=False)
        reps += 1
    return {"latency_us_median": float(np.median(times) * 1e6),
            "latency_us_p99": float(np.percentile(times, 99) * 1e6),
            "throughput_rows_per_s": float(reps * len(x) / (time.perf_counter() - start)),
            "invokes": len(times), "batch": int(len(x))}


def markdown(report: dict) -> str:
    """report.json as a short human-readable Markdown page."""
    def pct(v):
        return "" if v is None else f"{v:.2%}"

    def num(v, digits=0):
        return "" if v is None else f"{v:,.{digits}f}"

    rows = []
    for name, m in report["models"].items():
        lat = m.get("latency", {})
        rows.append(f"| {name} | {m['role']} | {m['view']} | {m['rows']} | {num(m['parameters'])} | "
                    f"{pct(m['test_accuracy'])} | {m['test_ece']:.4f} | {m['macro_f1']:.3f} | "
                    f"{pct(m.get('agreement_with_teacher'))} | {num(m['epochs'])} | "
                    f"{num(m['train_s'], 1)} | {num(lat.get('latency_us_median'))} | "
                    f"{num(lat.get('throughput_rows_per_s'))} |")
    per_class = []
    for name, m in report["models"].items():
        cells = " | ".join(f"{m['per_class'][c]['precision']:.3f} / {m['per_class'][c]['recall']:.3f}"
                           f" / {m['per_class'][c]['f1']:.3f}" for c in LABELS)
        per_class.append(f"| {name} | {cells} |")
    data, cfg, timing = report["data"], report["config"], report["timing"]
    return "\n".join([
        "# sdss-distill run report", "",
        f"Data: `{data['path']}` (sha256 {data['sha256'][:12]}...), {data['cleaning']}.",
        f"Split (seed {cfg['seed']}): " + ", ".join(
            f"{k} {v:,}" for k, v in data["split_sizes"].items()) + " rows.",
        f"Method `{report['method']}`: temperature {cfg['temperature']}, alpha {cfg['alpha']}, "
        f"soft loss {cfg['soft_loss']}; teacher view `{cfg['teacher_view']}`.", "",
        "| model | role | view | trained on | parameters | test accuracy | ECE | macro F1 "
        "| agreement with teacher | epochs | fit (s) | Keras batch-1 latency (us) "
        "| Keras batched (rows/s) |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|", *rows, "",
        "Per class, precision / recall / F1:", "",
        "| model | " + " | ".join(LABELS) + " |", "|---|" + "---|" * len(LABELS), *per_class, "",
        f"Timings on {report['machine']['cpu']} ({report['machine']['cores']} cores): fitting "
        f"{timing['fit_s']:.1f} s, the method with evaluation {timing['method_s']:.1f} s, the "
        f"whole command {timing['total_s']:.1f} s ({timing['definition']}). Keras latency: "
        f"a direct `model(x)` call, batch 1 (median); batched: all test rows per call.", "",
    ])
