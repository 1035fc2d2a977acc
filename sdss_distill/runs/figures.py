"""A run's figures, drawn from its report alone and written as PNG with the CSV behind each
(rundir.Layout.figure: reports/figures/<name>.{png,csv}).

- accuracy_by_r_mag: test accuracy of every model per r-magnitude bin, counts under each bin;
- confusion: row-normalised confusion matrices with counts;
- recall_by_class: per-class recall (the accuracy on each true class), one panel per class;
- reliability: accuracy against confidence in the ECE's 15 bins (from 1/3 up: the top of three
  probabilities is at least 1/3), and rows per bin as bars;
- training_curves: hard-label loss on the training and validation rows, validation accuracy,
  for every fold teacher (both sets of a `mix` run), the student and the baseline.

Every rate drawn (accuracy, recall, a reliability bin's accuracy) carries its 95 % bootstrap
interval (core.interval, from the rows behind it), also in the CSV; axes zoom to the data and
the intervals and say where they start. Accuracy, recall, confidence and ECE are percentages
in every figure, as in report.md (report.json keeps fractions, `units` says so). Titles start with
"SIMULATED data" when the run's rows are simulated. matplotlib's object interface with the
Agg canvas: no pyplot, so drawing here never changes a notebook's backend.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from sdss_distill.core.interval import LEVEL, REPS, rate_intervals
from sdss_distill.core.schema import ARMS, BASELINE, LABELS, STUDENT, TEACHER

ROLE_STYLE = {"teacher": ("#000000", "^"), STUDENT: ("#D55E00", "o"),
              BASELINE: ("#0072B2", "s")}
OTHER_COLOURS = ("#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#999999")
SHOWN_ROLES = (TEACHER, STUDENT, BASELINE, "assistant", "combination")
"""Roles drawn (an ensemble's members would crowd every panel; the report lists them)."""


def _figure(size, **kwargs):
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


INTERVALS = f"bars: {100 * LEVEL:.0f} % bootstrap intervals ({REPS:,} resamples)"


def rate_pct(rates, rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rate, lo, hi) in %, from rates as fractions (None: no rows) and their row counts."""
    rate = np.array([np.nan if r is None else r for r in rates], float)
    n = np.asarray(rows, np.int64)
    lo, hi = rate_intervals(np.nan_to_num(rate) * n, n)
    return 100 * rate, 100 * lo, 100 * hi


def _bars(values, lo, hi) -> np.ndarray:
    """errorbar's yerr: distances below and above each value (0 where there is none)."""
    return np.nan_to_num(np.array([values - lo, hi - values])).clip(min=0)


def _dodge(k: int, n: int, step: float = 0.12) -> float:
    """Sideways offset of the k-th of n models at one x, so no interval hides another."""
    return (k - (n - 1) / 2) * step


def _legend(fig, ax, **kwargs):
    """The legend outside the panels (right of the figure), so it covers no data."""
    handles, labels = ax.get_legend_handles_labels()
    return fig.legend(handles, labels, loc="outside right upper", fontsize=8, **kwargs)


def _note_offset(ax) -> None:
    lo = ax.get_ylim()[0]
    if ax.get_yscale() == "linear" and lo > 0:
        ax.set_ylabel(f"{ax.get_ylabel()}\n(axis starts at {lo:.3g}, not 0)")


def accuracy_by_r_mag(report: dict):
    """Test accuracy (%) per r-magnitude bin with 95 % bootstrap intervals, one line per model;
    bins' row counts on the x axis."""
    names = models(report, "population")
    bins = list(report["models"][names[0]]["population"]["by_r_mag"])
    counts = [report["models"][names[0]]["population"]["by_r_mag"][b]["rows"] for b in bins]
    fig = _figure((8.5, 4.4))
    ax = fig.add_subplot()
    rows = []
    for k, name in enumerate(names):
        groups = report["models"][name]["population"]["by_r_mag"]
        n = [groups[b]["rows"] for b in bins]
        acc, lo, hi = rate_pct([groups[b]["accuracy"] for b in bins], n)
        colour, marker = style(report, name)
        ax.errorbar(np.arange(len(bins)) + _dodge(k, len(names)), acc, yerr=_bars(acc, lo, hi),
                    marker=marker, color=colour, capsize=2, ms=5, lw=1.2, label=name)
        rows += [{"model": name, "r_bin": b, "rows": m, "accuracy_pct": a, "accuracy_lo_pct": a_lo,
                  "accuracy_hi_pct": a_hi} for b, m, a, a_lo, a_hi in zip(bins, n, acc, lo, hi)]
    ax.set_xticks(range(len(bins)), [f"{b}\n{n:,} rows" for b, n in zip(bins, counts)], fontsize=8)
    ax.set_xlim(-0.5, len(bins) - 0.5)
    ax.set(xlabel="r model magnitude bin (mag), with test rows per bin",
           ylabel="test accuracy (%)")
    _note_offset(ax)
    ax.grid(alpha=0.3)
    _legend(fig, ax, title="model")
    fig.suptitle(title(report, f"test accuracy against r magnitude\n({INTERVALS};\na bin "
                               f"without rows has no point)"))
    return fig, pd.DataFrame(rows)


def confusion(report: dict):
    """Row-normalised confusion matrices (colour, %) with counts and each share's 95 %
    bootstrap interval, one panel per model."""
    names = models(report, "confusion_matrix")
    fig = _figure((3.6 * len(names), 4.2))
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    rows = []
    for ax, name in zip(axes, names):
        cm = np.asarray(report["models"][name]["confusion_matrix"]["rows_true_cols_predicted"])
        total = np.repeat(cm.sum(axis=1), cm.shape[1])
        share, lo, hi = (v.reshape(cm.shape) for v in rate_pct(
            (cm.ravel() / np.maximum(total, 1)).tolist(), total))
        ax.imshow(np.nan_to_num(share), cmap="Blues", vmin=0, vmax=100)
        for (i, j), n in np.ndenumerate(cm):
            ax.text(j, i, f"{n:,}\n{share[i, j]:.1f} %\n({lo[i, j]:.1f}-{hi[i, j]:.1f})",
                    ha="center", va="center", fontsize=7,
                    color="white" if share[i, j] > 60 else "black")
            rows.append({"model": name, "true": LABELS[i], "predicted": LABELS[j],
                         "count": int(n), "share_of_true_pct": float(share[i, j]),
                         "share_lo_pct": float(lo[i, j]), "share_hi_pct": float(hi[i, j])})
        ax.set_xticks(range(len(LABELS)), LABELS, fontsize=8)
        ax.set_yticks(range(len(LABELS)), LABELS, fontsize=8)
        ax.set(xlabel="predicted class", ylabel="true class",
               title=f"{name}: {100 * report['models'][name]['test_accuracy']:.1f} % accurate")
    fig.suptitle(title(report, "confusion matrices on the test rows\n(count; share of the true "
                               "class in %, also the colour, 0-100 %;\nin brackets its 95 % "
                               "bootstrap interval)"), fontsize=10)
    return fig, pd.DataFrame(rows)


def recall_by_class(report: dict):
    """Per-class recall (%) of every model with 95 % bootstrap intervals, one panel per class,
    each zoomed to its models' intervals (the differences between models are a few points)."""
    names = models(report, "per_class")
    fig = _figure((10, 4))
    axes = fig.subplots(1, len(LABELS))
    rows = []
    for ax, c in zip(axes, LABELS):
        per = [report["models"][name]["per_class"][c] for name in names]
        recall, lo, hi = rate_pct([p["recall"] for p in per], [p["support"] for p in per])
        for k, name in enumerate(names):
            colour, marker = style(report, name)
            ax.errorbar([k], recall[k:k + 1], yerr=_bars(recall[k:k + 1], lo[k:k + 1],
                                                         hi[k:k + 1]),
                        fmt=marker, color=colour, capsize=4, ms=7, label=name)
        rows += [{"model": name, "class": c, "recall_pct": r, "recall_lo_pct": a,
                  "recall_hi_pct": b, "support": p["support"]}
                 for name, p, r, a, b in zip(names, per, recall, lo, hi)]
        ax.set_xticks(range(len(names)), names, fontsize=8, rotation=20)
        ax.set_xlim(-0.6, len(names) - 0.4)
        ax.margins(y=0.15)
        ax.set(title=f"{c} ({per[0]['support']:,} test rows)", xlabel="model",
               ylabel="recall (% of the class found)")
        _note_offset(ax)
        ax.grid(alpha=0.3, axis="y")
    _legend(fig, axes[0], title="model")
    fig.suptitle(title(report, f"per-class recall on the test rows\n({INTERVALS};\neach panel "
                               f"has its own y range)"))
    return fig, pd.DataFrame(rows)


def reliability(report: dict):
    """Reliability diagram: accuracy (%, 95 % bootstrap intervals) against mean confidence (%)
    per bin of the top-class probability (the ECE's bins), from 1/3 (the least a top-class
    probability can be), and the rows in each bin as bars (log scale)."""
    names = models(report, "reliability")
    floor = 100 / len(LABELS)
    fig = _figure((7.5, 6.4))
    top, bottom = fig.subplots(2, 1, height_ratios=(3, 1.4))
    top.plot([floor, 100], [floor, 100], ls="--", color="0.5", lw=1, label="perfect calibration")
    rows = []
    for k, name in enumerate(names):
        table = report["models"][name]["reliability"]
        conf = np.array([_pct(b["confidence"]) for b in table])
        n = np.array([b["rows"] for b in table])
        acc, lo, hi = rate_pct([b["accuracy"] for b in table], n)
        colour, marker = style(report, name)
        ece = report["models"][name]["test_ece"]
        top.errorbar(conf, acc, yerr=_bars(acc, lo, hi), marker=marker, color=colour, capsize=2,
                     ms=5, lw=1.2, label=f"{name} (ECE {100 * ece:.2f} %)")
        width = np.array([100 * (b["hi"] - b["lo"]) for b in table]) / (len(names) + 1)
        left = np.array([100 * b["lo"] for b in table]) + (k + 0.5) * width
        bottom.bar(left, np.where(n > 0, n, np.nan), width, align="edge", color=colour)
        rows += [{"model": name, "bin_lo_pct": 100 * b["lo"], "bin_hi_pct": 100 * b["hi"],
                  "rows": b["rows"], "confidence_pct": c, "accuracy_pct": a,
                  "accuracy_lo_pct": a_lo, "accuracy_hi_pct": a_hi}
                 for b, c, a, a_lo, a_hi in zip(table, conf, acc, lo, hi)]
    top.set(xlim=(floor, 100), ylabel="accuracy in the bin (%)",
            xlabel=f"mean confidence in the bin: top-class probability (%), from {floor:.1f} %",
            title=f"accuracy against confidence (15 equal-width bins)\n{INTERVALS}")
    top.set_ylim(top=101)
    _note_offset(top)
    bottom.set_yscale("log")
    bottom.set(xlim=(floor, 100), xlabel="confidence bin (%): one bar per model",
               ylabel="rows per bin (log)", title="rows in each bin")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    _legend(fig, top, title="model (ECE, %)")
    fig.suptitle(title(report, f"reliability diagram on the test rows\n(a top-class "
                               f"probability is at least 1/{len(LABELS)}:\nthe x axes start "
                               f"at {floor:.1f} %)"))
    return fig, pd.DataFrame(rows)


CURVES = (("hard-label loss, training rows", "cross-entropy (nats)", ("student_loss", "loss")),
          ("hard-label loss, validation rows", "cross-entropy (nats)",
           ("val_student_loss", "val_loss")),
          ("validation accuracy (where recorded)", "accuracy (%)", ("val_accuracy",)))
"""Panels: title, y label, history keys (the first a model has; a distilled student's
`student_loss` is its hard-label term, its `loss` the weighted total)."""


def curve(history: dict, keys: tuple[str, ...]) -> tuple[str | None, np.ndarray]:
    """(key, values) of the first of `keys` the history has."""
    for key in keys:
        if history.get(key):
            return key, np.asarray(history[key], float)
    return None, np.array([])


def members(history: dict) -> int:
    """How many members a history logs one by one (`loss_0`, `loss_1`, ...: fold teachers)."""
    k = 0
    while history.get(f"loss_{k}"):
        k += 1
    return k


def histories(report: dict, name: str) -> list[tuple[str, dict, float]]:
    """(label, history, line width) of every curve of a model: one per fold teacher (both sets
    of a `mix` run, named by view: 'physical', 'photometric'), else the model's own. A
    history of several members without per-member keys (an older run) is drawn as one line:
    their summed loss divided by their number, their mean accuracy."""
    m = report["models"][name]
    sets = [(m.get("view", ""), m["history"])] + [(s["view"], s["history"])
                                                   for s in m.get("more_fold_teachers", [])]
    out = []
    for view, h in sets:
        k = members(h)
        for j in range(k):
            mine = {key[:-len(f"_{j}")]: v for key, v in h.items() if key.endswith(f"_{j}")}
            out.append((f"{name}: {view} fold {j}", mine, 0.9))
        if not k and m.get("folds") and view == m.get("view"):
            n = m["folds"]
            out.append((f"{name} (mean of {n} folds)", {
                key: [x / n for x in v] if "loss" in key else v for key, v in h.items()}, 1.5))
        elif not k:
            out.append((name, h, 1.5))
    return out


def _curve_style(report: dict, name: str, label: str) -> dict:
    """Fold teachers: the teacher's colour for the physical set, green for the photometric
    one, a line style per fold; other models their own colour and marker."""
    colour, marker = style(report, name)
    if " fold " not in label:
        return {"color": colour, "marker": marker, "ms": 3}
    fold = int(label.rsplit(" ", 1)[1])
    other = "photometric" in label
    return {"color": "#009E73" if other else colour, "ls": ("-", "--", ":", "-.")[fold % 4],
            "marker": "v" if other else marker, "ms": 2.5}


def training_curves(report: dict):
    """Per-epoch hard-label loss (training and validation rows) and validation accuracy (%):
    every fold teacher, the student and the baseline."""
    names = models(report, "history")
    fig = _figure((13.5, 4.0))
    axes = fig.subplots(1, len(CURVES))
    rows = []
    for ax, (panel, ylabel, keys) in zip(axes, CURVES):
        for name in names:
            for label, history, width in histories(report, name):
                key, values = curve(history, keys)
                if key is None:
                    continue
                values = values * (100 if "accuracy" in key else 1)
                ax.plot(np.arange(1, len(values) + 1), values, lw=width, label=label,
                        markevery=max(1, len(values) // 15), **_curve_style(report, name, label))
                rows += [{"model": label, "panel": panel, "key": key, "epoch": e + 1,
                          "value": v} for e, v in enumerate(values)]
        ax.set(title=panel, xlabel="epoch", ylabel=ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if "loss" in panel:
            ax.set_ylim(bottom=0)  # a loss is >= 0: its axis starts there
        _note_offset(ax)
        ax.grid(alpha=0.3)
    _legend(fig, axes[0], title="model")
    fig.suptitle(title(report, "training curves, every fold teacher\n(early stopping keeps the "
                               "best epoch's weights)"))
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
