"""The peer benchmark over seeds: a summary per model, paired Wilcoxon tests of the students
against each peer on the same seeds, per-population accuracy, Markdown, CSV and the figure.

Pairs are matched by seed (never by list position), so a seed missing from one side drops out
of that comparison instead of shifting every pair.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sdss_distill.core.io import atomic_path
from sdss_distill.sweep.figures import _plt
from sdss_distill.sweep.peers import PEERS, STUDENTS
from sdss_distill.sweep.stats import describe, paired

REFERENCE = STUDENTS[0]
"""The shipped student file every ratio is taken against (student_int8)."""
COLUMNS: tuple[str, ...] = (
    "model", "seeds", "accuracy_mean", "accuracy_std", "log_loss_mean", "size_bytes",
    "size_ratio", "latency_us", "latency_ratio", *(
        f"{s}_minus_model_{k}" for s in STUDENTS for k in ("mean", "wins", "ties", "losses", "p")))
"""Columns of peers_summary.csv (one row per model); the paired columns are the student minus
the model over matched seeds, in accuracy (W/T/L counted for the student)."""


def accuracies(per_seed: list[dict], model: str) -> dict[int, float]:
    """{seed: test accuracy} of `model` in the seeds that have it."""
    return {int(s["seed"]): s["models"][model]["accuracy"] for s in per_seed if model in s["models"]}


def paired_by_seed(per_seed: list[dict], a: str, b: str) -> dict:
    """`stats.paired` of a's accuracy minus b's over the seeds both have, matched by seed."""
    acc_a, acc_b = accuracies(per_seed, a), accuracies(per_seed, b)
    seeds = sorted(set(acc_a) & set(acc_b))
    out = paired([acc_a[s] for s in seeds], [acc_b[s] for s in seeds])
    return {**out, "seeds": seeds}


def model_names(per_seed: list[dict]) -> list[str]:
    """Students first, then peers in PEERS order (any other name last), as they appear."""
    seen = {m for s in per_seed for m in s["models"]}
    order = [*STUDENTS, *(p.name for p in PEERS)]
    return [m for m in order if m in seen] + sorted(seen - set(order))


def _ratio(per_seed, model, key) -> float:
    vals = [s["models"][model][key] / s["models"][REFERENCE][key] for s in per_seed
            if model in s["models"] and REFERENCE in s["models"]]
    return float(np.mean(vals)) if vals else float("nan")


def _mean(per_seed, model, key) -> float:
    return float(np.mean([s["models"][model][key] for s in per_seed if model in s["models"]]))


def summarise(per_seed: list[dict]) -> pd.DataFrame:
    """One row per model with COLUMNS: mean ± std accuracy over seeds, log loss, size and
    latency with their ratios to student_int8, and each student minus the model (paired)."""
    rows = []
    for model in model_names(per_seed):
        acc = describe(list(accuracies(per_seed, model).values()))
        row = {"model": model, "seeds": acc["n"], "accuracy_mean": acc["mean"],
               "accuracy_std": acc["std"], "log_loss_mean": _mean(per_seed, model, "log_loss"),
               "size_bytes": _mean(per_seed, model, "size_bytes"),
               "size_ratio": _ratio(per_seed, model, "size_bytes"),
               "latency_us": _mean(per_seed, model, "latency_us"),
               "latency_ratio": _ratio(per_seed, model, "latency_us")}
        for s in STUDENTS:
            have = s != model and accuracies(per_seed, s)
            p = paired_by_seed(per_seed, s, model) if have else None
            row.update({f"{s}_minus_model_mean": p["mean_diff"] if p else np.nan,
                        f"{s}_minus_model_wins": p["wins"] if p else np.nan,
                        f"{s}_minus_model_ties": p["ties"] if p else np.nan,
                        f"{s}_minus_model_losses": p["losses"] if p else np.nan,
                        f"{s}_minus_model_p": p["wilcoxon_p"] if p else np.nan})
        rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def long_table(per_seed: list[dict]) -> pd.DataFrame:
    """One row per seed and model: accuracy, log loss, size, latency (peers_per_seed.csv)."""
    keys = ("accuracy", "log_loss", "size_bytes", "latency_us", "latency_calls")
    return pd.DataFrame([{"seed": s["seed"], "model": m, **{k: v.get(k) for k in keys}}
                         for s in per_seed for m, v in s["models"].items()])


def population(per_seed: list[dict], models: list[str]) -> pd.DataFrame:
    """Mean accuracy over seeds per sample and per r-magnitude bin (rows) for `models`."""
    out = {}
    for model in models:
        col = {}
        for s in per_seed:
            m = s["models"].get(model)
            groups = {**({f"sample {k}": g for k, g in (m["by_sample"] or {}).items()} if m else {}),
                      **({f"r {k}" if not k.startswith("r") else k: g
                          for k, g in m["by_r_mag"].items()} if m else {})}
            for k, g in groups.items():
                if g["accuracy"] is not None:
                    col.setdefault(k, []).append(g["accuracy"])
        out[model] = {k: float(np.mean(v)) for k, v in col.items()}
    rows_of = {}
    for s in per_seed[:1]:
        m = s["models"][models[0]]
        rows_of = {**{f"sample {k}": g["rows"] for k, g in (m["by_sample"] or {}).items()},
                   **{(f"r {k}" if not k.startswith("r") else k): g["rows"]
                      for k, g in m["by_r_mag"].items()}}
    df = pd.DataFrame(out)
    df.insert(0, "test_rows_seed0", pd.Series(rows_of))
    return df


def best_peers(summary: pd.DataFrame, n: int = 3) -> list[str]:
    """The n peers with the highest mean accuracy."""
    peers = summary[~summary.model.isin(STUDENTS)]
    return peers.sort_values("accuracy_mean", ascending=False).model.head(n).tolist()


def _p(v) -> str:
    return "" if pd.isna(v) else f"{v:.3f}"


def markdown(summary: pd.DataFrame, pop: pd.DataFrame, head: list[str]) -> str:
    """The tables as Markdown: per model, then per population; `head` lines go first."""
    lines = [*head, "", "| model | test accuracy | log loss | size, B (x int8 student) | one-row "
             "latency, us (x raw LiteRT int8 student) | int8 student - model, points | W/T/L | p "
             "| float student - model | p |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for _, r in summary.iterrows():
        i8, f32 = (f"{STUDENTS[0]}_minus_model", f"{STUDENTS[1]}_minus_model")
        wtl = ("" if pd.isna(r[f"{i8}_wins"]) else
               f"{r[f'{i8}_wins']:.0f}/{r[f'{i8}_ties']:.0f}/{r[f'{i8}_losses']:.0f}")
        d8 = "" if pd.isna(r[f"{i8}_mean"]) else f"{100 * r[f'{i8}_mean']:+.2f}"
        d32 = "" if pd.isna(r[f"{f32}_mean"]) else f"{100 * r[f'{f32}_mean']:+.2f}"
        lines.append(
            f"| {r.model} | {100 * r.accuracy_mean:.2f} ± {100 * r.accuracy_std:.2f} % | "
            f"{r.log_loss_mean:.3f} | {r.size_bytes:,.0f} ({r.size_ratio:,.1f}x) | "
            f"{r.latency_us:,.1f} ({r.latency_ratio:,.1f}x) | {d8} | {wtl} | "
            f"{_p(r[f'{i8}_p'])} | {d32} | {_p(r[f'{f32}_p'])} |")
    cols = [c for c in pop.columns if c != "test_rows_seed0"]
    lines += ["", "Accuracy per population (mean over seeds, %):", "",
              "| rows | test rows (seed 0) | " + " | ".join(cols) + " |",
              "|---|---:|" + "---:|" * len(cols)]
    for k, r in pop.iterrows():
        vals = " | ".join("" if pd.isna(r[c]) else f"{100 * r[c]:.2f}" for c in cols)
        n = "" if pd.isna(r.test_rows_seed0) else f"{r.test_rows_seed0:,.0f}"
        lines.append(f"| {k} | {n} | {vals} |")
    return "\n".join(lines) + "\n"


def zphot_markdown(per_seed: list[dict]) -> str:
    """The photo-z table of peers.md: per model, galaxy and QSO sigma_NMAD and outlier fraction
    (mean and range over seeds, test rows); '' when no seed has a redshift head."""
    seeds = [r["zphot"] for r in per_seed if r.get("zphot")]
    if not seeds:
        return ""
    lines = ["", f"Photometric redshift on the test rows ({len(seeds)} seeds; mean, min-max):",
             "", "| model | galaxy sigma_NMAD | galaxy outliers | QSO sigma_NMAD | QSO outliers |",
             "|---|---:|---:|---:|---:|"]
    for model in seeds[0]:
        cells = []
        for cls in ("GALAXY", "QSO"):
            for key, scale, fmt in (("sigma_nmad", 1, ".4f"), ("outliers", 100, ".1f")):
                v = np.array([s[model]["by_class"][cls][key] for s in seeds]) * scale
                cells.append(f"{v.mean():{fmt}} ({v.min():{fmt}}-{v.max():{fmt}})"
                             + (" %" if scale == 100 else ""))
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def figure(summary: pd.DataFrame, title: str, out: Path) -> None:
    """Accuracy (mean ± std over seeds) against size and against one-row latency, log x axes,
    every point named; PNG written through core.io.atomic_path."""
    plt = _plt()

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True)
    for ax, key, label in ((axes[0], "size_bytes", "serialized size, bytes (log)"),
                           (axes[1], "latency_us", "one-row call from Python, us (log)")):
        for _, r in summary.iterrows():
            student = r.model in STUDENTS
            ax.errorbar(r[key], 100 * r.accuracy_mean, yerr=100 * r.accuracy_std, capsize=3,
                        marker="*" if student else "o", markersize=11 if student else 6,
                        color="C3" if student else "C0")
            below = r.model == STUDENTS[1]  # the two students sit on top of each other
            ax.annotate(r.model, (r[key], 100 * r.accuracy_mean), textcoords="offset points",
                        xytext=(5, -11 if below else 4), fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("test accuracy, % (mean ± std over seeds)")
    fig.suptitle(title)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
