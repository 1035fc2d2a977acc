"""A run's figures, drawn from its report alone and written as PNG with the CSV behind each
(rundir.Layout.figure: reports/figures/<name>.{png,csv}).

- accuracy_by_r_mag: test accuracy of every model per r-magnitude bin, counts under each bin;
- confusion: row-normalised confusion matrices with counts;
- recall_by_class: per-class recall (the accuracy on each true class);
- reliability: accuracy against confidence in the ECE's 15 bins, and rows per bin;
- training_curves: hard-label loss on the training and validation rows, validation accuracy.

Accuracy, recall and confidence are percentages in every figure. Titles start with
"SIMULATED data" when the run's rows are simulated. matplotlib's object interface with the
Agg canvas: no pyplot, so drawing here never changes a notebook's backend.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sdss_distill.core.schema import ARMS, BASELINE, LABELS, STUDENT, TEACHER

ROLE_STYLE = {"teacher": ("#000000", "^"), STUDENT: ("#D55E00", "o"),
              BASELINE: ("#0072B2", "s")}
OTHER_COLOURS = ("#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#999999")
SHOWN_ROLES = (TEACHER, STUDENT, BASELINE, "assistant", "combination")
"""Roles drawn (an ensemble's members would crowd every panel; the report lists them)."""


def _figure(size, **kwargs):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=size, layout="constrained", **kwargs)
    FigureCanvasAgg(fig)
    return fig


def title(report: dict, text: str) -> str:
    """A figure's title, prefixed with SIMULATED when the run's rows are simulated."""
    return f"SIMULATED data (not SDSS)\n{text}" if report.get("simulated") else text


def models(report: dict, key: str | None = None) -> list[str]:
    """Models drawn: teacher, student, baseline first, then other arms; those with `key`."""
    names = [n for n, m in report["models"].items()
             if m["role"] in SHOWN_ROLES and (key is None or m.get(key))]
    first = [n for n in ARMS if n in names]
    return first + [n for n in names if n not in first]


def style(report: dict, name: str) -> tuple[str, str]:
    """(colour, marker) of a model: fixed for teacher, student and baseline (Okabe-Ito)."""
    if name in ROLE_STYLE:
        return ROLE_STYLE[name]
    others = [n for n in report["models"] if n not in ROLE_STYLE]
    k = others.index(name) if name in others else 0
    return OTHER_COLOURS[k % len(OTHER_COLOURS)], "DvPX*"[k % 5]


def _pct(v) -> float:
    return np.nan if v is None else 100.0 * v


def _legend(fig, ax, **kwargs):
    """The legend outside the panels (right of the figure), so it covers no data."""
    handles, labels = ax.get_legend_handles_labels()
    return fig.legend(handles, labels, loc="outside right upper", fontsize=8, **kwargs)


def _note_offset(ax) -> None:
    lo = ax.get_ylim()[0]
    if ax.get_yscale() == "linear" and lo > 0:
        ax.set_ylabel(f"{ax.get_ylabel()}\n(axis starts at {lo:.3g}, not 0)")


def accuracy_by_r_mag(report: dict):
    """Test accuracy (%) per r-magnitude bin, one line per model; bins' row counts on the x axis."""
    names = models(report, "population")
    bins = list(report["models"][names[0]]["population"]["by_r_mag"])
    counts = [report["models"][names[0]]["population"]["by_r_mag"][b]["rows"] for b in bins]
    fig = _figure((8.5, 4.2))
    ax = fig.add_subplot()
    rows = []
    for name in names:
        groups = report["models"][name]["population"]["by_r_mag"]
        acc = [_pct(groups[b]["accuracy"]) for b in bins]
        colour, marker = style(report, name)
        ax.plot(range(len(bins)), acc, marker=marker, color=colour, label=name)
        rows += [{"model": name, "r_bin": b, "rows": groups[b]["rows"], "accuracy_pct": a}
                 for b, a in zip(bins, acc)]
    ax.set_xticks(range(len(bins)), [f"{b}\n{n:,} rows" for b, n in zip(bins, counts)], fontsize=8)
    ax.set_xlim(-0.5, len(bins) - 0.5)
    ax.set(xlabel="r model magnitude bin (mag), with test rows per bin",
           ylabel="test accuracy (%)")
    _note_offset(ax)
    ax.grid(alpha=0.3)
    _legend(fig, ax, title="model")
    fig.suptitle(title(report, "test accuracy against r magnitude\n(a bin without rows has no "
                               "point)"))
    return fig, pd.DataFrame(rows)


def confusion(report: dict):
    """Row-normalised confusion matrices (colour, %), with counts, one panel per model."""
    names = models(report, "confusion_matrix")
    fig = _figure((3.4 * len(names), 4.0))
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    rows = []
    for ax, name in zip(axes, names):
        cm = np.asarray(report["models"][name]["confusion_matrix"]["rows_true_cols_predicted"])
        share = 100 * cm / cm.sum(axis=1, keepdims=True).clip(min=1)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=100)
        for (i, j), n in np.ndenumerate(cm):
            ax.text(j, i, f"{n:,}\n{share[i, j]:.1f} %", ha="center", va="center", fontsize=8,
                    color="white" if share[i, j] > 60 else "black")
            rows.append({"model": name, "true": LABELS[i], "predicted": LABELS[j],
                         "count": int(n), "share_of_true_pct": float(share[i, j])})
        ax.set_xticks(range(len(LABELS)), LABELS, fontsize=8)
        ax.set_yticks(range(len(LABELS)), LABELS, fontsize=8)
        ax.set(xlabel="predicted class", ylabel="true class",
               title=f"{name}: {100 * report['models'][name]['test_accuracy']:.1f} % accurate")
    fig.suptitle(title(report, "confusion matrices on the test rows\n(count; share of the true "
                               "class in %, also the colour, 0-100 %)"), fontsize=10)
    return fig, pd.DataFrame(rows)


def recall_by_class(report: dict):
    """Per-class recall (%) of every model, grouped by class; bars start at 0."""
    names = models(report, "per_class")
    fig = _figure((8, 4))
    ax = fig.add_subplot()
    width = 0.8 / len(names)
    rows = []
    for k, name in enumerate(names):
        per = report["models"][name]["per_class"]
        recall = [100 * per[c]["recall"] for c in LABELS]
        ax.bar(np.arange(len(LABELS)) + (k - (len(names) - 1) / 2) * width, recall, width,
               color=style(report, name)[0], label=name)
        rows += [{"model": name, "class": c, "recall_pct": r, "support": per[c]["support"]}
                 for c, r in zip(LABELS, recall)]
    support = report["models"][names[0]]["per_class"]
    ax.set_xticks(range(len(LABELS)), [f"{c}\n{support[c]['support']:,} rows" for c in LABELS])
    ax.set_ylim(0, 100)
    ax.set(xlabel="true class, with test rows", ylabel="recall (% of the class found)")
    ax.grid(alpha=0.3, axis="y")
    _legend(fig, ax, title="model")
    fig.suptitle(title(report, "per-class recall on the test rows"))
    return fig, pd.DataFrame(rows)


def reliability(report: dict):
    """Reliability diagram: accuracy (%) against mean confidence (%) per bin of the top-class
    probability (the ECE's bins), and the rows in each bin (log scale)."""
    names = models(report, "reliability")
    fig = _figure((7.5, 6.2))
    top, bottom = fig.subplots(2, 1, height_ratios=(3, 1.4))
    top.plot([0, 100], [0, 100], ls="--", color="0.5", lw=1, label="perfect calibration")
    rows = []
    for name in names:
        table = report["models"][name]["reliability"]
        conf = np.array([_pct(b["confidence"]) for b in table])
        acc = np.array([_pct(b["accuracy"]) for b in table])
        centre = np.array([50 * (b["lo"] + b["hi"]) for b in table])
        n = np.array([b["rows"] for b in table], float)
        colour, marker = style(report, name)
        ece = report["models"][name]["test_ece"]
        top.plot(conf, acc, marker=marker, color=colour, label=f"{name} (ECE {100 * ece:.2f} %)")
        bottom.plot(centre, np.where(n > 0, n, np.nan), marker=marker, color=colour, ms=4)
        rows += [{"model": name, "bin_lo_pct": 100 * b["lo"], "bin_hi_pct": 100 * b["hi"],
                  "rows": b["rows"], "confidence_pct": c, "accuracy_pct": a}
                 for b, c, a in zip(table, conf, acc)]
    top.set(xlim=(0, 100), ylim=(0, 102), ylabel="accuracy in the bin (%)",
            xlabel="mean confidence in the bin: top-class probability (%)",
            title="accuracy against confidence (15 equal-width bins)")
    bottom.set_yscale("log")
    bottom.set(xlim=(0, 100), xlabel="confidence bin, centre (%)", ylabel="rows per bin (log)",
               title="rows in each bin")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    _legend(fig, top, title="model (ECE)")
    fig.suptitle(title(report, "reliability diagram on the test rows"))
    return fig, pd.DataFrame(rows)


CURVES = (("hard-label loss, training rows", "cross-entropy (nats)", ("student_loss", "loss")),
          ("hard-label loss, validation rows", "cross-entropy (nats)",
           ("val_student_loss", "val_loss")),
          ("validation accuracy (where recorded)", "accuracy (%)", ("val_accuracy",)))
"""Panels: title, y label, history keys (the first a model has; a distilled student's
`student_loss` is its hard-label term, its `loss` the weighted total)."""


def curve(history: dict, keys: tuple[str, ...]) -> tuple[str | None, np.ndarray]:
    """(key, values) of the first of `keys` the history has. A multi-output model (a crossfit
    teacher's folds) logs `key` as the sum over its outputs and `key_0`, `key_1`, ... for each:
    their mean is one member's curve, comparable with a single model's."""
    for key in keys:
        members = [history[f"{key}_{k}"] for k in range(len(history))
                   if history.get(f"{key}_{k}")]
        if members:
            return f"{key}_k (mean of {len(members)})", np.mean(np.asarray(members, float), axis=0)
        if history.get(key):
            return key, np.asarray(history[key], float)
    return None, np.array([])


def training_curves(report: dict):
    """Per-epoch hard-label loss (training and validation rows) and validation accuracy (%)."""
    from matplotlib.ticker import MaxNLocator
    names = models(report, "history")
    fig = _figure((13, 3.8))
    axes = fig.subplots(1, len(CURVES))
    rows = []
    for ax, (panel, ylabel, keys) in zip(axes, CURVES):
        for name in names:
            key, values = curve(report["models"][name]["history"], keys)
            if key is None:
                continue
            values = values * (100 if "accuracy" in key else 1)
            colour, marker = style(report, name)
            ax.plot(np.arange(1, len(values) + 1), values, marker=marker, ms=3, color=colour,
                    label=name)
            rows += [{"model": name, "panel": panel, "key": key, "epoch": e + 1, "value": v}
                     for e, v in enumerate(values)]
        ax.set(title=panel, xlabel="epoch", ylabel=ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if "loss" in panel:
            ax.set_ylim(bottom=0)  # a loss is >= 0: its axis starts there
        _note_offset(ax)
        ax.grid(alpha=0.3)
    _legend(fig, axes[0], title="model")
    fig.suptitle(title(report, "training curves\n(early stopping keeps the best epoch's weights)"))
    return fig, pd.DataFrame(rows)


FIGURES = {"accuracy_by_r_mag": (accuracy_by_r_mag, "population"),
           "confusion": (confusion, "confusion_matrix"),
           "recall_by_class": (recall_by_class, "per_class"),
           "reliability": (reliability, "reliability"),
           "training_curves": (training_curves, "history")}
"""name -> (drawing function, the report key it needs in at least one model)."""


def write_figures(report: dict, layout, which: dict | None = None) -> list[str]:
    """Every figure of `which` (default FIGURES) the report supports, under layout.figures;
    their paths relative to the version's root (a streamed run has no population or
    reliability tables to draw)."""
    layout.figures.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (draw, needs) in (which or FIGURES).items():
        if not models(report, needs):
            continue
        fig, data = draw(report)
        png, csv = layout.figure(name)
        data.to_csv(csv, index=False)
        fig.savefig(png, dpi=120, bbox_inches="tight")
        written += [p.relative_to(layout.root).as_posix() for p in (png, csv)]
    return written
