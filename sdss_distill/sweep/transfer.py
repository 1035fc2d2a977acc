"""The `transfer` preset's report: train on bright, faint or both; test on each sample.

What is compared: each seed splits the combined dataset (`sdss`) once, stratified by class x
sample, so both samples are in every subset in their proportions. Training "on bright" keeps
only the bright rows of that split's teacher-train and student-train subsets ("on faint"
likewise, "on sdss" all of them); the test rows never change. Every training set is therefore
scored on the very same objects: the test rows of the bright sample, of the faint sample,
and of both. (A `--data bright` run splits bright alone, so its test rows are other objects
and its numbers are not comparable cell for cell.) Models: the method's student, its
hard-label baseline (same rows), its teacher, and a HistGradientBoostingClassifier on
u g r i z + 4 colours fitted on the student's training rows (sweep.extras). The two
samples share no objid or specobjid, but 26 bright rows lie within 0.4 arcsec of a faint
row (checked on the packaged tables): a handful of test objects may have a twin among the
other sample's training rows.

Writes OUT/transfer.csv (one row per training set x test sample x model: mean accuracy, its
95 % CI over seeds, seeds, test rows), OUT/transfer.md and OUT/transfer.png.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sdss_distill.core.schema import BASELINE, STUDENT, TEACHER
from sdss_distill.sweep.extras import REFERENCE
from sdss_distill.sweep.figures import _plt, write_report
from sdss_distill.sweep.stats import describe

MODELS = (STUDENT, BASELINE, TEACHER, REFERENCE)
MODEL_NAMES = {"student": "student (distilled)", BASELINE: "baseline (hard labels)",
               TEACHER: "teacher (photometry + redshift)", REFERENCE: "HistGradientBoosting"}
TRAIN_SETS = ("bright", "faint", "sdss")
TEST_SETS = ("bright", "faint", "all")


def table(cells: list[dict]) -> pd.DataFrame:
    """Per method x training set x test sample x model: accuracy (%) over seeds."""
    rows = []
    for doc in cells:
        train_on = doc["cell"].get("train_sample") or "sdss"
        for test_on, models in doc.get("by_sample", {}).items():
            for model, m in models.items():
                if model in MODELS:
                    rows.append({"method": doc["cell"]["method"], "train_on": train_on,
                                 "test_on": test_on, "model": model, "seed": doc["seed"],
                                 "accuracy": 100 * m["test_accuracy"], "test_rows": m["rows"]})
    if not rows:
        raise ValueError("no cell has per-sample results (run the sweep with --preset transfer)")
    long = pd.DataFrame(rows)
    out = []
    for key, g in long.groupby(["method", "train_on", "test_on", "model"], sort=False):
        d = describe(g["accuracy"])
        out.append({**dict(zip(["method", "train_on", "test_on", "model"], key)),
                    "accuracy_pct_mean": d["mean"], "accuracy_pct_ci95": d["ci95"],
                    "seeds": d["n"], "test_rows": int(g["test_rows"].iloc[0])})
    df = pd.DataFrame(out)
    order = {c: {v: k for k, v in enumerate(vals)} for c, vals in
             (("train_on", TRAIN_SETS), ("test_on", TEST_SETS), ("model", MODELS))}
    return df.sort_values(["method", *order], ignore_index=True,
                          key=lambda s: s.map(order[s.name]) if s.name in order else s)


def markdown(df: pd.DataFrame, command: str = "") -> str:
    """One accuracy matrix (training set x test sample) per method and model."""
    lines = ["# Transfer between samples", "", *([f"Command: `{command}`", ""] if command else []),
             __doc__.split("\n\n")[1].replace("\n", " "), "",
             "Test accuracy in %: mean over seeds ± half-width of the 95 % t interval "
             "(blank with one seed).", ""]
    for method, g in df.groupby("method", sort=False):
        for model in [m for m in MODELS if m in set(g.model)]:
            sub = g[g.model == model]
            tests = [t for t in TEST_SETS if t in set(sub.test_on)]
            lines += [f"## {method}: {MODEL_NAMES[model]}", "",
                      "| trained on | " + " | ".join(f"test: {t} ({_rows(sub, t)} rows)"
                                                    for t in tests) + " |",
                      "|---|" + "---:|" * len(tests)]
            for train_on in [t for t in TRAIN_SETS if t in set(sub.train_on)]:
                cells = [_pm(sub[(sub.train_on == train_on) & (sub.test_on == t)]) for t in tests]
                lines.append(f"| {train_on} | " + " | ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines)


def _rows(sub: pd.DataFrame, test_on: str) -> int:
    return int(sub[sub.test_on == test_on].test_rows.iloc[0])


def _pm(r: pd.DataFrame) -> str:
    if r.empty:
        return ""
    mean, ci = r.accuracy_pct_mean.iloc[0], r.accuracy_pct_ci95.iloc[0]
    return f"{mean:.2f}" + (f" ± {ci:.2f}" if ci == ci else "")


def figure(df: pd.DataFrame):
    """One panel per test sample, training sets on x, one dot per model with its 95 % CI:
    dots, not bars, because the axis starts near the lowest accuracy, not at 0, and a
    truncated bar would exaggerate the differences."""
    plt = _plt()
    method = df.method.iloc[0]
    df = df[df.method == method]
    tests = [t for t in TEST_SETS if t in set(df.test_on)]
    models = [m for m in MODELS if m in set(df.model)]
    trains = [t for t in TRAIN_SETS if t in set(df.train_on)]
    fig, axes = plt.subplots(1, len(tests), figsize=(4.2 * len(tests), 4), sharey=True,
                             squeeze=False)
    width = 0.8 / len(models)
    low = max(0.0, (df.accuracy_pct_mean - df.accuracy_pct_ci95.fillna(0)).min() - 2)  # whole whiskers
    for ax, test_on in zip(axes[0], tests):
        for k, model in enumerate(models):
            sub = df[(df.test_on == test_on) & (df.model == model)].set_index("train_on")
            means = [sub.accuracy_pct_mean.get(t, float("nan")) for t in trains]
            cis = [sub.accuracy_pct_ci95.get(t, float("nan")) for t in trains]
            ax.errorbar([j + (k - (len(models) - 1) / 2) * width for j in range(len(trains))],
                        means, yerr=[c if c == c else 0 for c in cis], fmt="o", capsize=3,
                        label=MODEL_NAMES[model])
        ax.set_xticks(range(len(trains)), [f"on {t}" for t in trains])
        ax.set_title(f"test rows: {test_on}")
        ax.set_ylim(low, 100)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (%)")
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=len(models), frameon=False,
               bbox_to_anchor=(0.5, -0.06))
    fig.suptitle(f"Transfer between SDSS samples ({method}): trained on one sample or both, "
                 f"tested on each (dots: mean, whiskers: 95 % CI over seeds)", fontsize=10)
    fig.tight_layout()
    return fig


def write(out: Path, cells: list[dict], command: str = "") -> list[Path]:
    """OUT/transfer.csv, .md and .png from the sweep's cells."""
    df = table(cells)
    return write_report(Path(out), "transfer", df, markdown(df, command), figure(df))
