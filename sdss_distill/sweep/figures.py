"""Figures of a sweep, each saved as PNG with the CSV behind it (OUT/plots/<name>.{png,csv}).

- accuracy vs temperature and vs alpha;
- per-class accuracy of teacher and students at each alpha (one zoomed panel per class), and
  their confusion matrices;
- accuracy vs parameter count (and int8 bytes) for every model of the sweep;
- per-epoch training curves: hard-label loss, teacher-student loss, validation accuracy.

Every mean over seeds is drawn with its 95 % bootstrap interval (core.interval.mean_interval,
the helper the run figures use), in the CSV too; with a few seeds that interval is narrow, so
each figure says how many seeds a point has. summary.md's CI column is the t interval.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from sdss_distill.core.interval import mean_interval
from sdss_distill.core.io import atomic_path, write_atomic
from sdss_distill.core.schema import BASELINE, LABELS, STUDENT, TEACHER
from sdss_distill.sweep.grid import load_cells
from sdss_distill.sweep.stats import describe
from sdss_distill.sweep.summary import tidy

PLOTS_DIR = "plots"
INTERVAL = "95 % bootstrap interval of the mean over seeds"


def _interval_pct(values) -> tuple[float, float]:
    """`mean_interval` of fractions, in %."""
    lo, hi = mean_interval(values)
    return 100 * lo, 100 * hi


def _yerr(mean, lo, hi) -> np.ndarray:
    """errorbar's yerr from interval ends (0 where a point has one seed)."""
    mean, lo, hi = (np.asarray(v, float) for v in (mean, lo, hi))
    return np.nan_to_num(np.array([mean - lo, hi - mean])).clip(min=0)


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


SIMULATED_TITLE = "SIMULATED data (not SDSS): "


def _save(fig, data: pd.DataFrame, out: Path, name: str, simulated: bool = False) -> Path:
    """The figure as PNG with its CSV; a sweep on simulated rows says so in the title."""
    if simulated:
        fig.suptitle(SIMULATED_TITLE + fig.get_suptitle())
    out.mkdir(parents=True, exist_ok=True)
    data.to_csv(out / f"{name}.csv", index=False)
    fig.savefig(out / f"{name}.png", dpi=120, bbox_inches="tight")
    _plt().close(fig)
    return out / f"{name}.png"


def accuracy_vs(df: pd.DataFrame, param: str, *, arms=(STUDENT, BASELINE)):
    """Mean test accuracy (95 % CI bars) against `param` (temperature or alpha), per method."""
    plt = _plt()
    rows = []
    for (method, arm, value), g in df[df.arm.isin(arms)].groupby(["method", "arm", param]):
        s = describe(g["accuracy"])
        lo, hi = _interval_pct(g["accuracy"])
        rows.append({"method": method, "arm": arm, param: value, "accuracy_mean": s["mean"],
                     "ci95": s["ci95"], "runs": s["n"], "seeds": g["seed"].nunique(),
                     "accuracy_mean_pct": 100 * s["mean"], "ci95_pct": 100 * s["ci95"],
                     "accuracy_lo_pct": lo, "accuracy_hi_pct": hi})
    data = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(7.5, 4.4), layout="constrained")
    for (method, arm), g in data.groupby(["method", "arm"]):
        g = g.sort_values(param)
        ax.errorbar(g[param], g["accuracy_mean_pct"],
                    yerr=_yerr(g["accuracy_mean_pct"], g["accuracy_lo_pct"], g["accuracy_hi_pct"]),
                    marker="o" if arm == STUDENT else "s", capsize=3,
                    linestyle="-" if arm == STUDENT else "--", label=f"{method}: {arm}")
    if param == "temperature":
        ax.set_xscale("log")
        ax.set_xticks(sorted(data[param].unique()), [f"{v:g}" for v in sorted(data[param].unique())])
        ax.set_xticks([], minor=True)  # no "2 x 10^0" minor labels between the values run
    ax.set_xlabel("temperature T (log scale)" if param == "temperature"
                  else "alpha (weight of the soft term)")
    ax.set_ylabel("test accuracy (%), axis not from zero")
    n = int(data["seeds"].max()) if len(data) else 0
    runs = int(data["runs"].max()) if len(data) else 0
    other = "" if runs == n else f"; {runs} runs per point, over the other settings too"
    fig.suptitle(f"Student accuracy vs {param}\n(mean of {n} seeds{other};\nbars: {INTERVAL})")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.grid(alpha=0.3)
    return fig, data


def per_class(df: pd.DataFrame):
    """Per-class accuracy (recall) of the teacher and of each method's students at each alpha
    (mean over seeds and temperatures, with its 95 % bootstrap interval), one panel per class
    zoomed to its intervals."""
    plt = _plt()
    several = df["method"].nunique() > 1
    groups = [(f"{method}: teacher" if several else TEACHER, g)
              for method, g in df[df.arm == TEACHER].groupby("method")]
    groups += [(f"{method}: student, alpha {alpha:g}" if several else f"student, alpha {alpha:g}",
                g) for (method, alpha), g in df[df.arm == STUDENT].groupby(["method", "alpha"])]
    rows = []
    for name, g in groups:
        for label in LABELS:
            lo, hi = _interval_pct(g[f"recall_{label}"])
            rows.append({"model": name, "class": label, "recall": g[f"recall_{label}"].mean(),
                         "recall_pct": 100 * g[f"recall_{label}"].mean(), "recall_lo_pct": lo,
                         "recall_hi_pct": hi, "seeds": g["seed"].nunique()})
    data = pd.DataFrame(rows)
    models = list(dict.fromkeys(data["model"]))
    fig, axes = plt.subplots(1, len(LABELS), figsize=(11, 4.2), layout="constrained")
    for ax, label in zip(axes, LABELS):
        for k, model in enumerate(models):
            d = data[(data.model == model) & (data["class"] == label)]
            ax.errorbar([k], d["recall_pct"], yerr=_yerr(d["recall_pct"], d["recall_lo_pct"],
                                                         d["recall_hi_pct"]),
                        fmt="o", capsize=4, color=plt.cm.tab10(k % 10), label=model)
        ax.set_xticks(range(len(models)), [str(k + 1) for k in range(len(models))])
        ax.set_xlim(-0.6, len(models) - 0.4)
        ax.margins(y=0.15)
        ax.set(title=label, xlabel="model (numbered as in the legend)",
               ylabel="recall (%), axis not from zero")
        ax.grid(alpha=0.3, axis="y")
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, [f"{k + 1}: {n}" for k, n in enumerate(names)], loc="outside right upper",
               fontsize=8)
    fig.suptitle(f"Per-class accuracy, mean over {df.seed.nunique()} seeds"
                 + (" and the temperatures" if df["temperature"].nunique() > 1 else "")
                 + f"\n(bars: {INTERVAL}; each panel has its own y range)")
    return fig, data


def confusions(cells: list[dict], seed: int):
    """Confusion matrices of the teacher and each student (by alpha) of one seed, side by side:
    the first method and temperature of the sweep (one panel per alpha, not per cell)."""
    plt = _plt()
    panels = []
    first = sorted(cells, key=lambda c: (c["cell"]["method"], c["cell"]["temperature"]))[0]["cell"]
    mine = [c for c in cells if c["seed"] == seed and c["cell"]["method"] == first["method"]
            and c["cell"]["temperature"] == first["temperature"]]
    for doc in sorted(mine, key=lambda c: c["cell"]["alpha"]):
        if not panels:
            panels.append((TEACHER, doc["arms"][TEACHER]))
        panels.append((f"student, alpha {doc['cell']['alpha']:g}", doc["arms"][STUDENT]))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 3.6), squeeze=False,
                             layout="constrained")
    rows = []
    for ax, (title, m) in zip(axes[0], panels):
        cm = np.asarray(m["confusion_matrix"]["rows_true_cols_predicted"])
        ax.imshow(cm / cm.sum(axis=1, keepdims=True), cmap="Blues", vmin=0, vmax=1)
        for i in range(len(LABELS)):
            for j in range(len(LABELS)):
                ax.text(j, i, f"{cm[i, j]}", ha="center", va="center", fontsize=9)
                rows.append({"model": title, "true": LABELS[i], "predicted": LABELS[j],
                             "count": int(cm[i, j])})
        ax.set_xticks(range(len(LABELS)), LABELS, fontsize=8)
        ax.set_yticks(range(len(LABELS)), LABELS, fontsize=8)
        ax.set_xlabel("predicted class")
        ax.set_title(title, fontsize=9)
    axes[0][0].set_ylabel("true class")
    fig.suptitle(f"Confusion matrices on the test rows ({first['method']}, T {first['temperature']:g}, "
                 f"seed {seed}; counts, colour = share of the true class, 0-100 %)")
    return fig, pd.DataFrame(rows)


ROLE_MARKERS = {"teacher": "^", STUDENT: "o", BASELINE: "s", "member": ".", "assistant": "D",
                "combination": "P"}


def _dodge(x: pd.Series, step: float = 1.2) -> np.ndarray:
    """Points at one x (e.g. every ~930-parameter student) spread sideways on a log axis, so
    none hides another; the offsets are symmetric around the true value."""
    out = x.to_numpy(float).copy()
    for value in x.dropna().unique():
        at = np.flatnonzero(x.to_numpy() == value)
        out[at] = value * step ** (np.arange(len(at)) - (len(at) - 1) / 2)
    return out


def size_vs_accuracy(df: pd.DataFrame):
    """Accuracy against parameters (and int8 bytes, where measured) for every arm of the sweep;
    colour = method, marker = role, and the legend names every point (method: arm)."""
    plt = _plt()
    data = (df[df.role != "combination"].groupby(["method", "arm", "role"], as_index=False)
            .agg(parameters=("parameters", "first"), int8_bytes=("int8_bytes", "first"),
                 accuracy_mean=("accuracy", "mean"), accuracy_std=("accuracy", "std"),
                 seeds=("seed", "nunique")))
    data["accuracy_mean_pct"] = data["accuracy_mean"] * 100
    data["accuracy_std_pct"] = data["accuracy_std"] * 100
    ends = [_interval_pct(g["accuracy"]) for _, g in df[df.role != "combination"].groupby(
        ["method", "arm", "role"])]  # the same groups, in the same (sorted) order
    data["accuracy_lo_pct"], data["accuracy_hi_pct"] = zip(*ends) if ends else ((), ())
    has_bytes = data["int8_bytes"].notna().any()
    fig, axes = plt.subplots(1, 2 if has_bytes else 1, figsize=(13 if has_bytes else 8.5, 4.8),
                             squeeze=False, layout="constrained")
    methods = list(dict.fromkeys(data["method"]))
    colours = {m: plt.cm.tab10(k % 10) for k, m in enumerate(methods)}
    for ax, x, label in zip(axes[0], ("parameters", "int8_bytes"),
                            ("parameters (log scale)", "int8 TFLite file (bytes, log scale)")):
        xs = _dodge(data[x])
        for (_, r), xv in zip(data.iterrows(), xs):
            if r[x] != r[x]:  # NaN: no int8 size measured for this arm
                continue
            ax.errorbar(xv, r["accuracy_mean_pct"],
                        yerr=_yerr([r["accuracy_mean_pct"]], [r["accuracy_lo_pct"]],
                                   [r["accuracy_hi_pct"]]),
                        fmt=ROLE_MARKERS.get(r["role"], "x"), color=colours[r["method"]],
                        capsize=2, ms=7,
                        label=f"{r['method']}: {r['arm']} ({r['parameters']:,.0f} parameters)")
        ax.set_xscale("log")
        ax.set_xlabel(f"{label}; points of one size dodged sideways")
        ax.set_ylabel("test accuracy (%), mean and 95 % bootstrap interval,\naxis not from zero")
        ax.grid(alpha=0.3)
    n = int(data["seeds"].max()) if len(data) else 0
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="outside right center", fontsize=8,
               title="method: arm\n(colour: method,\nmarker: role)")
    fig.suptitle(f"Accuracy vs model size, every method's models (mean of {n} seed{'s' * (n != 1)})")
    return fig, data


def training_curves(cells: list[dict], seed: int, cell_id: str | None = None):
    """Per-epoch curves of one cell and seed: hard-label loss, teacher-student loss, validation
    accuracy (%), for the distilled student and the hard-label baseline."""
    plt = _plt()
    doc = next(c for c in cells if c["seed"] == seed and (cell_id is None or c["cell_id"] == cell_id))
    panels = (("student_loss", "loss", "hard-label loss (cross-entropy, training rows)",
               "loss (nats)"),
              ("distillation_loss", None, "teacher-student loss (soft term, training rows)",
               "loss (nats)"),
              ("val_accuracy", "val_accuracy", "validation accuracy", "accuracy (%)"))
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), layout="constrained")
    rows = []
    for arm, colour in ((STUDENT, "#D55E00"), (BASELINE, "#0072B2")):
        h = doc["arms"][arm].get("history", {})
        for ax, (key, baseline_key, _, _) in zip(axes, panels):
            values = h.get(key) or (h.get(baseline_key) if arm == BASELINE and baseline_key else None)
            if not values:
                continue
            values = np.asarray(values, float) * (100 if "accuracy" in key else 1)
            ax.plot(np.arange(1, len(values) + 1), values, marker="o", ms=3, color=colour, label=arm)
            rows += [{"arm": arm, "curve": key, "epoch": e + 1, "value": v,
                      "unit": "%" if "accuracy" in key else "nats"} for e, v in enumerate(values)]
    for ax, (_, _, title, ylabel) in zip(axes, panels):
        ax.set_title(title, fontsize=9)
        ax.set(xlabel="epoch", ylabel=ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if "loss" in ylabel:
            ax.set_ylim(bottom=0)
        elif ax.get_ylim()[0] > 0:
            ax.set_ylabel(f"{ylabel}, axis not from zero")
        ax.grid(alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper", fontsize=8,
               title="model")
    fig.suptitle(f"Training curves, {doc['cell_id']}, seed {seed}")
    return fig, pd.DataFrame(rows)


def sweep_figures(out: Path) -> list[Path]:
    """Every figure the sweep's grid supports, under OUT/plots/."""
    out = Path(out)
    cells = load_cells(out)
    df = tidy(cells)
    target = out / PLOTS_DIR
    simulated = any(c.get("simulated") for c in cells)
    written = []

    def save(fig_data, name):
        written.append(_save(*fig_data, target, name, simulated))

    for param in ("temperature", "alpha"):
        if df[param].nunique() > 1:
            save(accuracy_vs(df, param), f"accuracy_vs_{param}")
    if df.alpha.nunique() > 1:
        save(per_class(df), "per_class_by_alpha")
        seed = int(sorted(df.seed.unique())[0])
        save(confusions(cells, seed), "confusion_by_alpha")
    save(size_vs_accuracy(df), "size_vs_accuracy")
    first = sorted(cells, key=lambda c: (c["seed"], c["cell_id"]))[0]
    save(training_curves(cells, first["seed"], first["cell_id"]), "training_curves")
    return written


def write_report(out: Path, name: str, df, markdown_text: str, fig) -> list[Path]:
    """OUT/<name>.csv, .md and .png, each written atomically: a preset's table, its summary
    and its figure."""
    out = Path(out)
    write_atomic(out / f"{name}.csv", df.to_csv(index=False))
    write_atomic(out / f"{name}.md", markdown_text)
    with atomic_path(out / f"{name}.png") as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    _plt().close(fig)
    return [out / f"{name}.{ext}" for ext in ("csv", "md", "png")]
