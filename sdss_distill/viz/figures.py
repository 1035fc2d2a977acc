"""Figures and tables for the notebooks (matplotlib only); sdss_distill.notebook finds the data
and the run.

Every plotting function takes data the pipeline already produced (a table, a report dict,
logits) and returns a matplotlib Figure; none of them trains or scores anything. Every
figure has a title and axis labels with units; legends sit outside the axes, so they cover
no data; an axis of a quantity that does not start at zero says so in its label.

    from sdss_distill.viz import figures as plots
    fig = plots.colour_colour(df)          # shows inline in a notebook
    fig.savefig("colours.png", dpi=150)    # or save it anywhere else
    fig, data = plots.accuracy_by_r_mag(report)   # a run's own figures (runs.figures), which
                                                  # every run also writes to reports/figures/
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from sdss_distill.core.interval import per_class_intervals, rate_intervals
from sdss_distill.core.prob import softmax
from sdss_distill.core.schema import ARMS, ASINH_SCALES, BANDS, LABELS, TARGET
from sdss_distill.runs.figures import (  # noqa: F401  (a run's own figures, for notebooks)
    accuracy_by_r_mag,
    recall_by_class,
    reliability,
    training_curves,
)

COLOURS = {"GALAXY": "#0072B2", "QSO": "#D55E00", "STAR": "#009E73"}  # Okabe-Ito, colour-blind safe
MARKERS = {"GALAXY": "o", "QSO": "^", "STAR": "s"}
DRAW_ORDER = ("GALAXY", "STAR", "QSO")  # the rare class last, so it stays visible
_MARKS = ("o", "s", "^", "D", "v", "P", "X", "*")


def metrics_table(report: dict) -> pd.DataFrame:
    """One row per model: parameters, accuracy, macro F1, agreement, KL, Keras latency."""
    rows = {name: {"view": m["view"], "parameters": m["parameters"],
                   "test accuracy": m["test_accuracy"], "macro F1": m["macro_f1"],
                   "log loss": m["test_log_loss"],
                   "agreement with teacher": m.get("agreement_with_teacher", np.nan),
                   "KL(teacher||model)": m.get("teacher_student_kl", np.nan),
                   "batch-1 latency (us)": m["latency"]["latency_us_median"]}
            for name, m in report["models"].items()}
    return pd.DataFrame.from_dict(rows, orient="index")


def variants_table(export: dict) -> pd.DataFrame:
    """export.json's TFLite variants, smallest first, with readable column names."""
    names = {"size_bytes": "size (B)", "test_accuracy": "test accuracy",
             "agreement": "agreement with Keras", "latency_us_median": "latency median (us)",
             "latency_us_p99": "latency p99 (us)", "throughput_rows_per_s": "batched rows/s"}
    v = pd.DataFrame.from_dict(export["variants"], orient="index")
    keep = [c for c in ("description", "source") if c in v] + list(names)
    return v[keep].rename(columns=names).sort_values("size (B)")


def per_class_table(report: dict) -> pd.DataFrame:
    """Precision / recall / F1 / support, indexed by (model, class)."""
    return pd.DataFrame({(name, c): m["per_class"][c] for name, m in report["models"].items()
                         for c in LABELS}).T


def _pct(v) -> float:
    return np.nan if v is None else 100 * v


def population_table(report: dict, by: str = "r_mag") -> pd.DataFrame:
    """Accuracy (%), log loss, ECE (%), recall (%) and rows per model and group, indexed by
    (model, group); `by` is "r_mag", "sample" or "domain" (runs' report.json, in-memory runs)."""
    rows = {}
    for name, m in report["models"].items():
        groups = (m.get("domain") if by == "domain"
                  else (m.get("population") or {}).get(f"by_{by}")) or {}
        for group, g in groups.items():
            rows[name, group] = {"rows": g["rows"], "accuracy (%)": _pct(g["accuracy"]),
                                 "log loss": g["log_loss"], "ECE (%)": _pct(g["ece"]),
                                 **{f"recall {c} (%)": _pct(g["recall"][c]) for c in LABELS}}
    return pd.DataFrame.from_dict(rows, orient="index")


# --- the table --------------------------------------------------------------------------

def _colour(df: pd.DataFrame, a: str, b: str) -> pd.Series:
    return df[a] - df[b]


def _limits(values: pd.Series, pad: float = 0.1) -> tuple[float, float]:
    lo, hi = np.nanpercentile(values, [0.5, 99.5])  # a few failed magnitudes would stretch axes
    return lo - pad, hi + pad


def _legend_outside(ax, **kwargs):
    """The axes' legend just right of it (outside the data area), top-aligned."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                     fontsize=8, **kwargs)


def _figure_legend(fig, handles, labels, **kwargs):
    """One legend for all panels, right of the figure (drawn after tight_layout)."""
    return fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8,
                      **kwargs)


def _note_offset(ax, axis: str = "y") -> None:
    """Append "(axis starts at X, not 0)" to a linear axis' label when it does not start at 0."""
    lo = (ax.get_ylim() if axis == "y" else ax.get_xlim())[0]
    scale = ax.get_yscale() if axis == "y" else ax.get_xscale()
    if scale == "linear" and lo > 0:
        label = ax.get_ylabel() if axis == "y" else ax.get_xlabel()
        (ax.set_ylabel if axis == "y" else ax.set_xlabel)(f"{label}\n(axis starts at {lo:.3g}, not 0)")


def class_balance(df: pd.DataFrame, ax=None):
    """Bar chart of objects per class, with counts and shares."""
    fig, ax = _axes(ax, (4.5, 3))
    counts = df[TARGET].value_counts().reindex(LABELS, fill_value=0)
    bars = ax.bar(counts.index, counts.values, color=[COLOURS[c] for c in counts.index])
    for bar, n in zip(bars, counts.values):
        ax.annotate(f"{n:,}\n{n / counts.sum():.1%}", (bar.get_x() + bar.get_width() / 2, n),
                    ha="center", va="bottom", fontsize=8)
    ax.set(xlabel="spectroscopic class", ylabel="objects (count)")
    ax.set_ylim(0, counts.max() * 1.25)
    ax.set_title(f"class balance ({counts.sum():,} objects)")
    fig.tight_layout()
    return fig


def colour_colour(df: pd.DataFrame, pairs=(("u", "g", "g", "r"), ("g", "r", "r", "i")),
                  s: float = 3, alpha: float = 0.35):
    """Colour-colour diagrams (x = a-b, y = c-d) with one point per object, coloured by class."""
    fig, axes = plt.subplots(1, len(pairs), figsize=(5.2 * len(pairs), 4.3), squeeze=False)
    for ax, (a, b, c, d) in zip(axes[0], pairs):
        x, y = _colour(df, a, b), _colour(df, c, d)
        for cls in DRAW_ORDER:
            m = df[TARGET] == cls
            ax.scatter(x[m], y[m], s=s, alpha=alpha, color=COLOURS[cls], lw=0,
                       label=f"{cls} ({m.sum():,})", rasterized=True)
        ax.set(xlabel=f"{a} - {b} (mag)", ylabel=f"{c} - {d} (mag)", xlim=_limits(x), ylim=_limits(y),
               title=f"{c} - {d} against {a} - {b}")
    _legend_outside(axes[0][-1], markerscale=4, title="class (objects)")
    fig.suptitle("colour-colour diagrams by class (axes clipped at the 0.5-99.5 percentiles)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def redshift_hist(df: pd.DataFrame, bins: int = 80, ax=None):
    """Spectroscopic redshift per class on a symmetric-log axis (stars scatter around z = 0)."""
    fig, ax = _axes(ax, (7, 3.5))
    scale = ASINH_SCALES["redshift"]  # the same signed-log the teacher's input uses
    z = df["redshift"].to_numpy()
    edges = np.sinh(np.linspace(np.arcsinh(scale * z.min()), np.arcsinh(scale * z.max()),
                                bins + 1)) / scale
    for cls in LABELS:
        ax.hist(df.loc[df[TARGET] == cls, "redshift"], bins=edges, histtype="step", lw=1.5,
                color=COLOURS[cls], label=cls)
    ax.set_xscale("symlog", linthresh=1 / scale)
    ax.set_yscale("log")
    ax.axvline(0, color="k", lw=0.5)
    ax.set(xlabel=f"spectroscopic redshift z (dimensionless; symlog, linear within |z| < "
                  f"{1 / scale:g})", ylabel="objects per bin (log scale)",
           title="redshift by class")
    _legend_outside(ax)
    fig.tight_layout()
    return fig


def magnitude_ranges(df: pd.DataFrame, cuts: dict[str, float] | None = None, ax=None):
    """Box plots of each band's magnitude by class (whiskers 1-99 %); dashed lines = query cuts."""
    fig, ax = _axes(ax, (8, 3.8))
    width = 0.8 / len(LABELS)
    for k, cls in enumerate(LABELS):
        sub = df.loc[df[TARGET] == cls, list(BANDS)]
        pos = np.arange(len(BANDS)) + (k - 1) * width
        ax.boxplot([sub[b] for b in BANDS], positions=pos, widths=width * 0.85, whis=(1, 99),
                   patch_artist=True, flierprops={"markersize": 1.5, "alpha": 0.4},
                   boxprops={"facecolor": COLOURS[cls], "alpha": 0.6},
                   medianprops={"color": "k"})
        ax.plot([], [], "s", color=COLOURS[cls], label=cls)
    for k, (band, cut) in enumerate((cuts or {}).items()):
        i = BANDS.index(band)
        ax.hlines(cut, i - 0.45, i + 0.45, colors="k", linestyles="--", lw=1,
                  label="query cut" if k == 0 else None)
    ax.set_xticks(range(len(BANDS)), BANDS)
    ax.invert_yaxis()  # astronomers' convention: brighter is up
    ax.set(xlabel="SDSS band", ylabel="model magnitude (mag; brighter up)",
           title="magnitudes by class (boxes: quartiles; whiskers: 1-99 %)")
    _legend_outside(ax)
    fig.tight_layout()
    return fig


def colour_vs_redshift(df: pd.DataFrame, colours=(("u", "g"), ("g", "r"))):
    """QSO colours against redshift, over the 5-95 % band of stellar colours (grey)."""
    fig, axes = plt.subplots(1, len(colours), figsize=(5.2 * len(colours), 3.6), squeeze=False)
    qso, star = df[df[TARGET] == "QSO"], df[df[TARGET] == "STAR"]
    for ax, (a, b) in zip(axes[0], colours):
        lo, hi = np.percentile(_colour(star, a, b), [5, 95])
        ax.axhspan(lo, hi, color="0.85", label="stars, 5-95 %")
        ax.scatter(qso["redshift"], _colour(qso, a, b), s=5, color=COLOURS["QSO"], alpha=0.6,
                   label="QSO")
        ax.set(xlabel="QSO redshift z (dimensionless)", ylabel=f"{a} - {b} (mag)",
               ylim=_limits(_colour(df, a, b)), title=f"{a} - {b} of QSOs")
    _legend_outside(axes[0][-1])
    fig.suptitle("QSO colours against redshift, over the stellar colour range", fontsize=10)
    fig.tight_layout()
    return fig


# --- distillation -----------------------------------------------------------------------

def confusion_matrices(report: dict, names=ARMS):
    """Row-normalised confusion matrices (colour) with counts, one panel per model."""
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        cm = np.asarray(report["models"][name]["confusion_matrix"]["rows_true_cols_predicted"])
        share = cm / cm.sum(axis=1, keepdims=True).clip(min=1)
        lo, hi = (e.reshape(cm.shape) for e in rate_intervals(
            cm.ravel(), np.repeat(cm.sum(axis=1), cm.shape[1])))
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for (i, j), n in np.ndenumerate(cm):
            ax.text(j, i, f"{n}\n{share[i, j]:.1%}\n({lo[i, j]:.1%}-{hi[i, j]:.1%})",
                    ha="center", va="center", fontsize=7,
                    color="white" if share[i, j] > 0.6 else "black")
        ax.set_xticks(range(len(LABELS)), LABELS, fontsize=8)
        ax.set_yticks(range(len(LABELS)), LABELS, fontsize=8)
        ax.set(xlabel="predicted class", ylabel="true class",
               title=f"{name}: {report['models'][name]['test_accuracy']:.2%} accurate")
    fig.suptitle("confusion matrices on the test rows (count, share of the true class, its 95 % "
                 "bootstrap interval)", fontsize=10)
    fig.tight_layout()
    return fig


def per_class_bars(report: dict, names=ARMS,
                   metrics=("precision", "recall", "f1")):
    """Per-class precision / recall / F1 with 95 % bootstrap intervals (the test rows behind
    the confusion matrix resampled), one bar per model; the y-axis is zoomed and says so."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.4), squeeze=False)
    width = 0.8 / len(names)
    shades = dict(zip(names, ("0.25", "#CC79A7", "0.7", "#56B4E9")))
    ends = {n: per_class_intervals(report["models"][n]["confusion_matrix"]
                                   ["rows_true_cols_predicted"]) for n in names}
    for ax, metric in zip(axes[0], metrics):
        values = 100 * np.array([[report["models"][n]["per_class"][c][metric] for c in LABELS]
                                 for n in names])
        lows = 100 * np.array([ends[n][metric][0] for n in names])
        for k, name in enumerate(names):
            highs = 100 * ends[name][metric][1]
            ax.bar(np.arange(len(LABELS)) + (k - (len(names) - 1) / 2) * width, values[k],
                   width, label=name, color=shades[name],
                   yerr=np.nan_to_num([values[k] - lows[k], highs - values[k]]).clip(min=0),
                   capsize=2, error_kw={"lw": 0.8})
        ax.set_xticks(range(len(LABELS)), LABELS)
        ax.set_ylim(max(0.0, np.floor((np.nanmin([values.min(), lows.min()]) - 3) / 2) * 2),
                    100.0)
        ax.set(xlabel="class", ylabel=f"{metric} (%)", title=metric)
        _note_offset(ax)
    fig.suptitle("per-class metrics on the test rows (bars: 95 % bootstrap intervals)",
                 fontsize=10)
    fig.tight_layout()
    _figure_legend(fig, *axes[0][0].get_legend_handles_labels(), title="model")
    return fig


def soft_labels(logits: np.ndarray, temperatures=(1.0, 3.0, 10.0), titles=None):
    """softmax(logits / T) per object (one panel each), one bar per temperature, log y-axis."""
    logits = np.atleast_2d(logits)
    fig, axes = plt.subplots(1, len(logits), figsize=(3.3 * len(logits), 3.2), squeeze=False,
                             sharey=True)
    width = 0.8 / len(temperatures)
    lowest = min(softmax(logits / t, axis=1).min() for t in temperatures)
    for k, (ax, row) in enumerate(zip(axes[0], logits)):
        for j, t in enumerate(temperatures):
            p = softmax(row / t)
            ax.bar(np.arange(len(LABELS)) + (j - (len(temperatures) - 1) / 2) * width, p, width,
                   label=f"T = {t:g}", color=plt.cm.viridis(j / max(1, len(temperatures) - 1)))
        ax.set_yscale("log")
        ax.set_ylim(min(1e-3, lowest / 3), 1.5)
        ax.set_xticks(range(len(LABELS)), LABELS, fontsize=8)
        ax.set_xlabel("class")
        ax.set_title(titles[k] if titles is not None else f"object {k}", fontsize=9)
    axes[0][0].set_ylabel("teacher probability (log scale)")
    fig.suptitle("the teacher's soft labels, softmax(logits / T)", fontsize=10)
    fig.tight_layout()
    _figure_legend(fig, *axes[0][0].get_legend_handles_labels(), title="temperature")
    return fig


def disagreements(df: pd.DataFrame, teacher_pred, student_pred,
                  pairs=(("u", "g", "g", "r"), ("g", "r", "r", "i"))):
    """Colour-colour diagrams of all rows (grey) with the rows where the models disagree
    marked: colour = teacher's class, marker = student's class."""
    teacher_pred, student_pred = np.asarray(teacher_pred), np.asarray(student_pred)
    differ = teacher_pred != student_pred
    fig, axes = plt.subplots(1, len(pairs), figsize=(5.2 * len(pairs), 4.3), squeeze=False)
    for ax, (a, b, c, d) in zip(axes[0], pairs):
        x, y = _colour(df, a, b).to_numpy(), _colour(df, c, d).to_numpy()
        ax.scatter(x, y, s=2, color="0.8", lw=0, rasterized=True, label="models agree")
        for ti, tc in enumerate(LABELS):
            for si, sc in enumerate(LABELS):
                m = differ & (teacher_pred == ti) & (student_pred == si)
                if m.any():
                    ax.scatter(x[m], y[m], s=22, marker=MARKERS[sc], facecolor="none",
                               edgecolor=COLOURS[tc], lw=1.1,
                               label=f"teacher {tc}, student {sc} ({m.sum()})")
        ax.set(xlabel=f"{a} - {b} (mag)", ylabel=f"{c} - {d} (mag)", xlim=_limits(pd.Series(x)),
               ylim=_limits(pd.Series(y)), title=f"{c} - {d} against {a} - {b}")
    _legend_outside(axes[0][-1], title="colour: teacher, marker: student")
    fig.suptitle(f"{differ.sum()} of {len(differ)} test objects where student and teacher differ",
                 fontsize=10)
    fig.tight_layout()
    return fig


# --- edge -------------------------------------------------------------------------------

def pareto_front(cost, score) -> np.ndarray:
    """Mask of points no other point beats on both (lower cost, higher score)."""
    cost, score = np.asarray(cost, float), np.asarray(score, float)
    return np.array([not ((cost <= c) & (score >= s) & ((cost < c) | (score > s))).any()
                     for c, s in zip(cost, score)])


def pareto(variants: dict, references: dict[str, float] | None = None):
    """Accuracy against file size and against batch-1 latency (median, bar to p99), one colour
    and marker per TFLite variant (legend: agreement with Keras). Markers on the Pareto front
    are filled and joined by a grey line; the others are hollow. Cost axes start at 0.

    `references` draws horizontal lines, e.g. {"Keras student": 0.96} (fractions, drawn as %).
    """
    names = list(variants)
    acc = 100 * np.array([variants[n]["test_accuracy"] for n in names])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), squeeze=False)
    specs = (("size_bytes", "file size (kB)", 1e-3, "size"),
             ("latency_us_median", "batch-1 latency (us, median; bar to p99)", 1.0, "latency"))
    for ax, (key, label, scale, what) in zip(axes[0], specs):
        cost = np.array([variants[n][key] for n in names], float) * scale
        front = pareto_front(cost, acc)
        order = np.argsort(cost[front])
        ax.plot(cost[front][order], acc[front][order], "-", color="0.5", lw=1, zorder=1)
        if key == "latency_us_median":
            p99 = np.array([variants[n].get("latency_us_p99", np.nan) for n in names]) * scale
            ax.errorbar(cost, acc, xerr=[np.zeros_like(cost), np.clip(p99 - cost, 0, None)],
                        fmt="none", ecolor="0.7", lw=0.8, zorder=1)
        for k in range(len(names)):  # distinct markers keep coincident files visible
            colour = plt.cm.tab10(k % 10)
            ax.scatter(cost[k], acc[k], s=70, marker=_MARKS[k % len(_MARKS)], lw=1.5, zorder=2,
                       facecolor=colour if front[k] else "none", edgecolor=colour)
        for k, value in enumerate((references or {}).values()):
            ax.axhline(100 * value, ls=("--", ":", "-.")[k % 3], color="k", lw=0.8)
        ax.margins(y=0.3)
        ax.set_xlim(0, max(cost.max(), np.nanmax(p99) if key == "latency_us_median" else 0) * 1.15)
        ax.set(xlabel=label, ylabel="test accuracy (%)",
               title=f"accuracy against {what} ({int(front.sum())} of {len(names)} on the front)")
        _note_offset(ax)
    handles = [plt.Line2D([], [], ls="", marker=_MARKS[k % len(_MARKS)], mfc="none", mew=1.5,
                          color=plt.cm.tab10(k % 10)) for k in range(len(names))]
    tags = [f"{n} (agreement {variants[n]['agreement']:.1%})" if "agreement" in variants[n] else n
            for n in names]
    handles += [plt.Line2D([], [], color="0.5", lw=1),
                plt.Line2D([], [], color="0.7", lw=0.8, marker="|", ls="-")]
    tags += ["Pareto front (filled markers)", "latency median to p99"]
    for k, name in enumerate(references or {}):
        handles.append(plt.Line2D([], [], ls=("--", ":", "-.")[k % 3], color="k", lw=0.8))
        tags.append(name)
    fig.suptitle("TFLite files: test accuracy against file size and batch-1 latency", fontsize=10)
    fig.tight_layout()
    _figure_legend(fig, handles, tags)
    return fig


def _axes(ax, size):
    if ax is None:
        fig, ax = plt.subplots(figsize=size)
        return fig, ax
    return ax.figure, ax
