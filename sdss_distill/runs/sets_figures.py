"""The run's purity-completeness figure (issue 24): per class, the student's curve on the test
rows (probability threshold swept in steps of 0.01), with the thresholds chosen on the
calibration rows for purities 80, 90 and 95 % marked where they land on the test rows.
Percent on both axes; drawn from report.json alone, with the CSV behind it."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from sdss_distill.runs.figures import _figure, title

NAME = "purity_completeness"
Y_LOW = 60.0
"""The purity axis starts here: selections below 60 % purity are not what the figure is for
(the CSV holds the whole curve)."""


def draw(report: dict):
    """(figure, its data) from the report's calibration.selections."""
    sel = report["calibration"]["selections"]
    fig = _figure((4.0 * len(sel), 3.8))
    axes = fig.subplots(1, len(sel), squeeze=False)[0]
    rows = []
    for ax, (cls, s) in zip(axes, sel.items()):
        cv = s["test_curve"]
        comp = 100 * np.asarray(cv["completeness"], float)
        pur = 100 * np.array([np.nan if v is None else v for v in cv["purity"]], float)
        ax.plot(comp, pur, color="#D55E00", lw=1.5, label="test rows")
        rows += [{"class": cls, "kind": "test_curve", "threshold": t, "completeness_pct": c,
                  "purity_pct": p} for t, c, p in zip(cv["threshold"], comp, pur)]
        for point in s["points"]:
            if point["threshold"] is None:
                continue
            c, p = 100 * point["test_completeness"], 100 * point["test_purity"]
            ax.plot(c, p, "o", color="#0072B2", ms=6)
            ax.axhline(100 * point["target"], color="#999999", lw=0.6, ls=":")
            ax.annotate(f"{100 * point['target']:.0f}", (c, p), textcoords="offset points",
                        xytext=(-14, -3), fontsize=7, color="#0072B2")
            rows.append({"class": cls, "kind": f"chosen_for_{point['target']:g}",
                         "threshold": point["threshold"], "completeness_pct": c,
                         "purity_pct": p})
        ax.set_title(f"{cls}")
        ax.set_xlabel("completeness on test rows (%)")
        ax.set_ylabel("purity on test rows (%)")
        shown = comp[np.isfinite(pur) & (pur >= Y_LOW)]
        ax.set_ylim(Y_LOW, 100.5)
        ax.set_xlim(max(0.0, float(shown.min()) - 3) if len(shown) else 0.0, 100.5)
        ax.grid(alpha=0.3)
    # legend proxies: a class may have no chosen point
    axes[0].legend(loc="lower left", fontsize=8, handles=[
        Line2D([], [], color="#D55E00", lw=1.5, label="test rows (threshold swept)"),
        Line2D([], [], color="#0072B2", marker="o", ls="",
               label="chosen on calibration rows for 80 / 90 / 95 %")])
    fig.suptitle(title(report, "Student: purity against completeness (thresholds chosen on "
                               "calibration rows, training mix)"), fontsize=10)
    return fig, pd.DataFrame(rows)


def write(report: dict, layout) -> list[str]:
    """The figure and its CSV under layout.figures (nothing without a calibration section)."""
    cal = report.get("calibration") or {}
    if "selections" not in cal:
        return []
    layout.figures.mkdir(parents=True, exist_ok=True)
    fig, data = draw(report)
    png, csv = layout.figure(NAME)
    data.to_csv(csv, index=False)
    fig.savefig(png, dpi=120, bbox_inches="tight")
    return [p.relative_to(layout.root).as_posix() for p in (png, csv)]
