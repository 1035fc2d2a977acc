"""The `learning` preset's report: learning curves, the gain of distillation against N.

Each cell trains on N non-test rows (`--rows N`: a seeded sample stratified by class x
sample, teacher-train and student-train shrunk in proportion) or on all of them; the test
rows are the full run's for every N. Per method and N, the gain is the student's test
accuracy minus its hard-label baseline's (same rows, same initial weights, same seed),
summarised over seeds with sweep.stats.paired: mean, 95 % t interval, wins/ties/losses and
the Wilcoxon p-value. Each method's baseline is its own: offline's student and baseline
train on student-train rows (about N/2), crossfit's on all N non-test rows.

Writes OUT/learning.csv, OUT/learning.md and OUT/learning.png.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sdss_distill.core.schema import BASELINE, STUDENT
from sdss_distill.sweep.figures import _plt, write_report
from sdss_distill.sweep.stats import describe, p_text, paired


def table(cells: list[dict]) -> pd.DataFrame:
    """Per method x N: student and baseline accuracy (%) and the paired gain, in points."""
    rows = []
    for doc in cells:
        arms = doc["arms"]
        if STUDENT not in arms or BASELINE not in arms:
            continue
        rows.append({"method": doc["cell"]["method"], "n_rows": doc["cell"].get("n_rows"),
                     "train_rows": doc.get("train_rows"), "seed": doc["seed"],
                     STUDENT: 100 * arms[STUDENT]["test_accuracy"],
                     BASELINE: 100 * arms[BASELINE]["test_accuracy"],
                     "student_rows": arms[STUDENT]["rows"]})
    if not rows:
        raise ValueError("no cell has a student and a baseline to compare")
    long = pd.DataFrame(rows)
    long["N"] = long.n_rows.fillna(-1).astype(int)
    out = []
    for (method, n), g in long.groupby(["method", "N"], sort=False):
        g = g.sort_values("seed")
        gain = paired(g.student, g.baseline)
        s, b = describe(g.student), describe(g.baseline)
        out.append({"method": method, "rows": "all" if n < 0 else str(n),
                    "train_rows": int(g.train_rows.iloc[0]), "student_rows": g.student_rows.iloc[0],
                    "seeds": gain["n"], "student_pct": s["mean"], "student_ci95": s["ci95"],
                    "baseline_pct": b["mean"], "baseline_ci95": b["ci95"],
                    "gain_pt": gain["mean_diff"], "gain_ci95": gain["ci95"],
                    "wins": gain["wins"], "ties": gain["ties"], "losses": gain["losses"],
                    "wilcoxon_p": gain["wilcoxon_p"]})
    return pd.DataFrame(out).sort_values(["method", "train_rows"], ignore_index=True)


def _ci(v: float) -> str:
    return f" ± {v:.2f}" if v == v else ""


def markdown(df: pd.DataFrame, command: str = "") -> str:
    lines = ["# Learning curves: what distillation adds as the training set grows", "",
             *([f"Command: `{command}`", ""] if command else []),
             __doc__.split("\n\n")[1].replace("\n", " "), "",
             "Accuracy in %, gain in percentage points: mean over seeds ± half-width of the "
             "95 % t interval (blank with one seed). W/T/L: seeds where the student wins, "
             "ties, loses against its baseline.", "",
             "| method | --rows | non-test rows used | student trained on | seeds | student | "
             "baseline | gain (pt) | W/T/L | Wilcoxon p |",
             "|---|---:|---:|---|---:|---:|---:|---:|---|---:|"]
    for r in df.itertuples():
        lines.append(f"| {r.method} | {r.rows} | {r.train_rows:,} | {r.student_rows} | {r.seeds} "
                     f"| {r.student_pct:.2f}{_ci(r.student_ci95)} "
                     f"| {r.baseline_pct:.2f}{_ci(r.baseline_ci95)} "
                     f"| {r.gain_pt:+.2f}{_ci(r.gain_ci95)} | {r.wins}/{r.ties}/{r.losses} "
                     f"| {p_text(r.wilcoxon_p, r.seeds)} |")
    return "\n".join(lines) + "\n"


def figure(df: pd.DataFrame):
    """Left: the paired gain (95 % CI) against training rows; right: the accuracies."""
    plt = _plt()
    fig, (gain_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    methods = list(dict.fromkeys(df.method))
    for k, (method, g) in enumerate(df.groupby("method", sort=False)):
        colour = f"C{k}"
        x = g.train_rows * 1.04 ** (k - (len(methods) - 1) / 2)  # dodged, so bars don't overlap
        ci = g.gain_ci95.fillna(0)
        gain_ax.errorbar(x, g.gain_pt, yerr=ci, marker="o", capsize=3, color=colour,
                         label=method)
        acc_ax.errorbar(x, g.student_pct, yerr=g.student_ci95.fillna(0), marker="o",
                        capsize=3, color=colour, label=f"{method} student")
        acc_ax.errorbar(x, g.baseline_pct, yerr=g.baseline_ci95.fillna(0), marker="s",
                        capsize=3, color=colour, linestyle="--", label=f"{method} baseline")
    gain_ax.axhline(0, color="grey", linewidth=0.8)
    ticks = sorted(set(df.train_rows))
    for ax in (gain_ax, acc_ax):
        ax.set_xscale("log")
        ax.set_xticks(ticks, [f"{t:,}" for t in ticks], fontsize=8)
        ax.minorticks_off()
        ax.set_xlabel("non-test rows used (teacher-train + student-train)")
        ax.grid(alpha=0.3)
    gain_ax.set_ylabel("student - baseline accuracy (percentage points)")
    gain_ax.set_title("Gain of distillation (mean, 95 % CI over seeds)", fontsize=10)
    acc_ax.set_ylabel("test accuracy (%)")
    acc_ax.set_title("Test accuracy (mean, 95 % CI over seeds)", fontsize=10)
    for ax in (gain_ax, acc_ax):
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False,
                  fontsize=8)
    fig.suptitle("Learning curves: distilled students vs hard-label baselines", fontsize=11)
    fig.tight_layout()
    return fig


def write(out: Path, cells: list[dict], command: str = "") -> list[Path]:
    """OUT/learning.csv, .md and .png from the sweep's cells."""
    df = table(cells)
    return write_report(Path(out), "learning", df, markdown(df, command), figure(df))
