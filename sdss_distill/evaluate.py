"""Score models on the test rows: accuracy, per-class metrics, agreement, latency."""

from __future__ import annotations

import time

import numpy as np

from .schema import LABELS

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
        "macro_f1": float(f1.mean()),
        "per_class": {label: {"precision": float(p), "recall": float(r), "f1": float(f),
                              "support": int(s)}
                      for label, p, r, f, s in zip(LABELS, precision, recall, f1, support)},
        "confusion_matrix": {"labels": list(LABELS),
                             "rows_true_cols_predicted": confusion_matrix(
                                 y_true, pred, labels=k).tolist()},
    }


def teacher_student(teacher_logits: np.ndarray, student_logits: np.ndarray) -> dict:
    """KL(teacher || student) at T = 1 (mean over rows) and the share of equal predictions."""
    from scipy.special import log_softmax
    log_t, log_s = log_softmax(teacher_logits, axis=1), log_softmax(student_logits, axis=1)
    kl = (np.exp(log_t) * (log_t - log_s)).sum(axis=1).mean()
    agree = (teacher_logits.argmax(1) == student_logits.argmax(1)).mean()
    return {"teacher_student_kl": float(kl), "agreement_with_teacher": float(agree)}


def keras_latency(model, x: np.ndarray, calls: int = 300) -> dict:
    """A Keras model called directly: batch-1 latency (median, p99) and batched rows/s."""
    one = x[:1]
    for _ in range(20):
        model(one, training=False)
    times = np.empty(calls)
    for k in range(calls):
        start = time.perf_counter()
        model(one, training=False)
        times[k] = time.perf_counter() - start
    model(x, training=False)
    start, reps = time.perf_counter(), 0
    while reps < 5 or time.perf_counter() - start < 0.2:
        model(x, training=False)
        reps += 1
    return {"latency_us_median": float(np.median(times) * 1e6),
            "latency_us_p99": float(np.percentile(times, 99) * 1e6),
            "throughput_rows_per_s": float(reps * len(x) / (time.perf_counter() - start)),
            "invokes": calls, "batch": int(len(x))}


def markdown(report: dict) -> str:
    """report.json as a short human-readable Markdown page."""
    rows = []
    for name, m in report["models"].items():
        agree = m.get("agreement_with_teacher")
        rows.append(f"| {name} | {m['view']} | {m['parameters']:,} | {m['test_accuracy']:.2%} | "
                    f"{m['macro_f1']:.3f} | "
                    f"{'' if agree is None else f'{agree:.2%}'} | "
                    f"{m['latency']['latency_us_median']:.0f} | "
                    f"{m['latency']['throughput_rows_per_s']:,.0f} |")
    per_class = []
    for name, m in report["models"].items():
        cells = " | ".join(f"{m['per_class'][c]['precision']:.3f} / {m['per_class'][c]['recall']:.3f}"
                           f" / {m['per_class'][c]['f1']:.3f}" for c in LABELS)
        per_class.append(f"| {name} | {cells} |")
    data = report["data"]
    return "\n".join([
        "# sdss-distill run report", "",
        f"Data: `{data['path']}` (sha256 {data['sha256'][:12]}...), {data['cleaning']}.",
        f"Split (seed {report['config']['seed']}): " + ", ".join(
            f"{k} {v}" for k, v in data["split_sizes"].items()) + " rows.",
        f"Distillation: temperature {report['config']['temperature']}, "
        f"alpha {report['config']['alpha']}; teacher view `{report['config']['teacher_view']}`.",
        "",
        "| model | view | parameters | test accuracy | macro F1 | agreement with teacher "
        "| Keras batch-1 latency (us) | Keras batched (rows/s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|", *rows, "",
        "Per class, precision / recall / F1:", "",
        "| model | " + " | ".join(LABELS) + " |", "|---|" + "---|" * len(LABELS), *per_class, "",
        f"Timings on {report['machine']['cpu']} ({report['machine']['cores']} cores); "
        f"training took {report['timing']['train_s']:.1f} s.", "",
    ])
