"""A sweep's tidy table (one row per seed x cell x arm) and its Markdown summary."""

from __future__ import annotations

from math import nan

import pandas as pd

from sdss_distill.core.schema import BASELINE, LABELS, STUDENT
from sdss_distill.sweep.stats import describe, p_text, paired

KEYS = ["seed", "cell_id", "method", "temperature", "alpha", "soft_loss", "dev", "arm", "role",
        "view", "rows"]
METRICS = {"test_accuracy": "accuracy", "test_log_loss": "log_loss", "test_ece": "ece",
           "macro_f1": "macro_f1", "agreement_with_teacher": "agreement_with_teacher",
           "teacher_student_kl": "kl_to_teacher", "parameters": "parameters",
           "int8_bytes": "int8_bytes", "train_s": "train_s", "epochs": "epochs"}
COMPARED_ROLES = (STUDENT, "member", "combination", "assistant")


def tidy(cells: list[dict], int8_bytes: dict[int, int] | None = None) -> pd.DataFrame:
    """One row per seed x cell x arm with every scalar metric and per-class P/R/F1;
    `int8_bytes` ({parameters: bytes}) fills the int8 file size of photometric models."""
    rows = []
    for doc in cells:
        for arm, m in doc["arms"].items():
            row = {"seed": doc["seed"], "cell_id": doc["cell_id"], **doc["cell"], "dev": doc["dev"],
                   "arm": arm, "role": m["role"], "view": m["view"], "rows": m["rows"]}
            row.update({name: m.get(key) for key, name in METRICS.items()})
            if int8_bytes and m["view"] == "photometric" and m["role"] != "combination":
                row["int8_bytes"] = int8_bytes.get(m["parameters"])
            for label in LABELS:
                for k in ("precision", "recall", "f1"):
                    row[f"{k}_{label}"] = m["per_class"][label][k]
            rows.append(row)
    return pd.DataFrame(rows)


def comparisons(df: pd.DataFrame) -> pd.DataFrame:
    """Per cell and arm: accuracy over seeds, and the paired difference to the cell's baseline
    on the same seeds (same rows, same initial weights)."""
    out = []
    for (cell_id, arm), g in df.groupby(["cell_id", "arm"], sort=False):
        acc = describe(g["accuracy"])
        row = {"cell_id": cell_id, "method": g["method"].iloc[0], "temperature": g["temperature"].iloc[0],
               "alpha": g["alpha"].iloc[0], "soft_loss": g["soft_loss"].iloc[0], "arm": arm,
               "role": g["role"].iloc[0], "rows": g["rows"].iloc[0], "seeds": acc["n"],
               "accuracy_mean": acc["mean"], "accuracy_std": acc["std"], "accuracy_ci95": acc["ci95"],
               "ece_mean": g["ece"].mean(), "log_loss_mean": g["log_loss"].mean(),
               "parameters": g["parameters"].iloc[0], "int8_bytes": g["int8_bytes"].iloc[0],
               "train_s_mean": g["train_s"].mean(),
               "agreement_mean": g["agreement_with_teacher"].mean()}
        if row["role"] in COMPARED_ROLES:
            base = df[(df.cell_id == cell_id) & (df.arm == BASELINE)].set_index("seed")["accuracy"]
            mine = g.set_index("seed")["accuracy"]
            seeds = mine.index.intersection(base.index)
            row.update({f"vs_baseline_{k}": v for k, v in
                        paired(mine.loc[seeds], base.loc[seeds]).items()})
        out.append(row)
    return pd.DataFrame(out)


def _pm(mean, std, ci=None) -> str:
    return f"{mean:.2%} ± {std:.2%}" + ("" if ci is None or ci != ci else f" (CI ± {ci:.2%})")


def markdown(df: pd.DataFrame, comp: pd.DataFrame, *, title: str, machine: dict,
             command: str) -> str:
    """summary.md: one table row per cell x arm, then the ranking of distilled students."""
    lines = [f"# {title}", "",
             f"Command: `{command}`", "",
             f"Seeds: {', '.join(map(str, sorted(df.seed.unique())))}; "
             + ("scored on dev-test rows carved from non-test rows (`--dev`): no test row read."
                if df.dev.any() else "scored on each seed's held-out test rows.")
             + f" Machine: {machine['cpu']} ({machine['cores']} cores).", "",
             "Accuracy: mean ± std over seeds (CI: half-width of the 95 % t interval). Paired: "
             "the arm minus the cell's hard-label baseline on the same seeds and rows; "
             "W/T/L = wins/ties/losses; p = two-sided Wilcoxon signed-rank.", "",
             "| cell | arm | role | trained on | parameters | accuracy | ECE | paired gain "
             "| W/T/L | p | fit s |",
             "|---|---|---|---|---:|---:|---:|---:|---|---:|---:|"]
    for _, r in comp.iterrows():
        gain = wtl = p = ""
        if "vs_baseline_mean_diff" in r and r.get("vs_baseline_n", 0) == r.get("vs_baseline_n", 0) \
                and r["role"] in COMPARED_ROLES:
            gain = f"{r['vs_baseline_mean_diff'] * 100:+.2f} pt"
            wtl = f"{r['vs_baseline_wins']:.0f}/{r['vs_baseline_ties']:.0f}/{r['vs_baseline_losses']:.0f}"
            p = p_text(r["vs_baseline_wilcoxon_p"], r["vs_baseline_n"])
        accuracy = _pm(r["accuracy_mean"], r["accuracy_std"], r["accuracy_ci95"])
        lines.append(f"| {r['cell_id']} | {r['arm']} | {r['role']} | {r['rows']} | "
                     f"{r['parameters']:,.0f} | {accuracy} | {100 * r['ece_mean']:.2f} % | {gain} | {wtl} "
                     f"| {p} | {r['train_s_mean']:.1f} |")
    students = comp[comp.arm == STUDENT].sort_values("accuracy_mean", ascending=False)
    if len(students):
        best = students.iloc[0]
        lines += ["", "Distilled students, best first: " + ", ".join(
            f"{r.cell_id} {r.accuracy_mean:.2%}" for r in students.itertuples()) + ".",
            f"Best: `{best.cell_id}`, {_pm(best.accuracy_mean, best.accuracy_std)}, paired gain "
            f"{best.get('vs_baseline_mean_diff', float('nan')) * 100:+.2f} pt, Wilcoxon p "
            f"{p_text(best.get('vs_baseline_wilcoxon_p', nan), best.get('vs_baseline_n', nan))}.",
            ""]
    return "\n".join(lines)


def early_epochs(cells: list[dict], cell_id: str, epochs=(1, 2, 3, 5, 10),
                 curve: str = "val_accuracy") -> pd.DataFrame:
    """Does the distilled student learn faster at first? Its per-epoch validation accuracy
    against the baseline's, per epoch, paired over the seeds that reached that epoch."""
    rows = []
    docs = [c for c in cells if c["cell_id"] == cell_id]
    for epoch in epochs:
        pairs = [(c["arms"][STUDENT]["history"][curve][epoch - 1],
                  c["arms"][BASELINE]["history"][curve][epoch - 1]) for c in docs
                 if min(len(c["arms"][a].get("history", {}).get(curve, []))
                        for a in (STUDENT, BASELINE)) >= epoch]
        if not pairs:
            continue
        student, baseline = map(list, zip(*pairs))
        rows.append({"epoch": epoch, "seeds": len(pairs), STUDENT: describe(student)["mean"],
                     BASELINE: describe(baseline)["mean"],
                     **{f"paired_{k}": v for k, v in paired(student, baseline).items()
                        if k in ("mean_diff", "wins", "losses", "wilcoxon_p")}})
    return pd.DataFrame(rows)
