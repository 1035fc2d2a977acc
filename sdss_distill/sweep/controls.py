"""The `controls` preset's report: how much of the student's gain comes from the redshift?

The same student (rows, initial weights, loss, alpha, temperature) is taught four ways: by
the real fold teachers (`crossfit`, photometry + redshift), by fold teachers that saw the
redshift shuffled across rows (`shuffled-z`), by label smoothing with the teachers' mean
confidence (`smoothing`) and by photometric fold teachers of the teacher's size
(`photo-teacher`); each beside the same hard-label baseline. The redshift's part of the
gain is crossfit's student minus shuffled-z's, paired over seeds (Wilcoxon); soft labels
as such are shuffled-z's or smoothing's student minus the baseline.

Writes OUT/controls.csv, OUT/controls.md and OUT/controls.png.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sdss_distill.core.schema import BASELINE, STUDENT
from sdss_distill.distill import registry
from sdss_distill.sweep.figures import _plt, write_report
from sdss_distill.sweep.stats import describe, paired


def _about() -> tuple[str, dict[str, str]]:
    """(the real teacher's method, {method: its teacher in a few words}: that method, then its
    controls in registry order), as the methods declare them (`Method.control_of`)."""
    controls = [m for m in map(registry.get, registry.names()) if m.control_of]
    (real,) = {m.control_of for m in controls}
    return real, {name: registry.get(name).teacher_about
                  for name in [real, *(m.name for m in controls)]}


REAL, ABOUT = _about()


def accuracies(cells: list[dict]) -> pd.DataFrame:
    """One row per seed x method: student and baseline test accuracy in %."""
    rows = [{"method": d["cell"]["method"], "seed": d["seed"],
             STUDENT: 100 * d["arms"][STUDENT]["test_accuracy"],
             BASELINE: 100 * d["arms"][BASELINE]["test_accuracy"]}
            for d in cells if STUDENT in d["arms"] and BASELINE in d["arms"]]
    if not rows:
        raise ValueError("no cell has a student and a baseline to compare")
    return pd.DataFrame(rows).sort_values(["method", "seed"], ignore_index=True)


def table(cells: list[dict]) -> pd.DataFrame:
    """Per method: student and baseline accuracy, gain over the baseline, and the real
    teacher's student minus this one (paired over the seeds both ran)."""
    long = accuracies(cells)
    real = long[long.method == REAL].set_index("seed")[STUDENT]
    out = []
    for method, g in long.groupby("method", sort=False):
        g = g.set_index("seed")
        gain, s, b = paired(g[STUDENT], g[BASELINE]), describe(g[STUDENT]), describe(g[BASELINE])
        row = {"method": method, "teacher": ABOUT.get(method, method), "seeds": gain["n"],
               "student_pct": s["mean"], "student_std": s["std"], "baseline_pct": b["mean"],
               "gain_pt": gain["mean_diff"], "gain_ci95": gain["ci95"],
               "gain_wtl": f"{gain['wins']}/{gain['ties']}/{gain['losses']}",
               "gain_p": gain["wilcoxon_p"]}
        seeds = g.index.intersection(real.index)
        if method != REAL and len(seeds):
            vs = paired(real.loc[seeds], g.loc[seeds, STUDENT])
            row.update({"real_minus_this_pt": vs["mean_diff"], "real_minus_this_ci95": vs["ci95"],
                        "real_minus_this_wtl": f"{vs['wins']}/{vs['ties']}/{vs['losses']}",
                        "real_minus_this_p": vs["wilcoxon_p"]})
        out.append(row)
    order = {m: k for k, m in enumerate(ABOUT)}
    return pd.DataFrame(out).sort_values("method", key=lambda m: m.map(order).fillna(99),
                                         ignore_index=True)


def _f(v, fmt: str) -> str:
    return "" if v != v else format(v, fmt)


def markdown(df: pd.DataFrame, command: str = "") -> str:
    lines = ["# Controls: where the student's gain comes from", "",
             *([f"Command: `{command}`", ""] if command else []),
             __doc__.split("\n\n")[1].replace("\n", " "), "",
             "Accuracy in %, differences in percentage points (mean over seeds, ± half-width of "
             "the 95 % t interval); W/T/L = seeds won/tied/lost; p = two-sided Wilcoxon.", "",
             "| teacher | method | seeds | student | baseline | student - baseline | W/T/L | p "
             "| real-teacher student - this | W/T/L | p |",
             "|---|---|---:|---:|---:|---:|---|---:|---:|---|---:|"]
    for r in df.to_dict("records"):
        vs = r.get("real_minus_this_pt", float("nan"))
        lines.append(
            f"| {r['teacher']} | {r['method']} | {r['seeds']} | {r['student_pct']:.2f} ± "
            f"{r['student_std']:.2f} | {r['baseline_pct']:.2f} | {r['gain_pt']:+.2f} ± "
            f"{_f(r['gain_ci95'], '.2f')} | {r['gain_wtl']} | {r['gain_p']:.3f} | "
            f"{_f(vs, '+.2f')}{'' if vs != vs else ' ± ' + _f(r['real_minus_this_ci95'], '.2f')} "
            f"| {r.get('real_minus_this_wtl', '') if vs == vs else ''} "
            f"| {_f(r.get('real_minus_this_p', float('nan')), '.3f')} |")
    for r in df.itertuples():
        isolates = registry.get(r.method).isolates if r.method in registry.names() else ()
        if isolates and (df.method == REAL).any():
            lines += ["", f"The {isolates[0]}'s part of the gain (real-teacher student minus "
                          f"{isolates[1]} student): {r.real_minus_this_pt:+.2f} pt "
                          f"({r.real_minus_this_wtl}, Wilcoxon p = {r.real_minus_this_p:.3f})."]
    return "\n".join(lines) + "\n"


def figure(df: pd.DataFrame):
    """Each teacher's student minus the baseline (95 % CI)."""
    fig, ax = _plt().subplots(figsize=(7, 3.5))
    y = range(len(df))
    ax.errorbar(df.gain_pt, list(y), xerr=df.gain_ci95.fillna(0), fmt="o", capsize=3)
    ax.set_yticks(list(y), [f"{m}\n{a}" for m, a in zip(df.method, df.teacher)], fontsize=7)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("student - hard-label baseline (percentage points, 95 % CI over seeds)")
    ax.set_title("Same student, four teachers", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def write(out: Path, cells: list[dict], command: str = "") -> list[Path]:
    """OUT/controls.csv, .md and .png from the sweep's cells."""
    df = table(cells)
    return write_report(Path(out), "controls", df, markdown(df, command), figure(df))
