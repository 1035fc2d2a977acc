"""The run's photometric-redshift figure and report.md section, drawn from report.json alone
(the student's `zphot` entry, distill/zphot.py): z_spec against z_phot on the test rows, one
panel per class, with sigma_NMAD, bias, outlier fraction and z_phot_err coverage in each
legend. QSOs are drawn and reported like the others: five magnitudes say little about a
quasar's redshift, and the numbers show it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm

from sdss_distill.core.schema import LABELS
from sdss_distill.core.zphot import OUTLIER
from sdss_distill.runs.figures import _figure, title, write_figures


def _entry(report: dict) -> tuple[str, dict] | None:
    for name, m in report["models"].items():
        if m.get("zphot"):
            return name, m["zphot"]
    return None


def legend(q: dict) -> str:
    """One panel's numbers: rows, sigma_NMAD, bias, outliers (a percentage), coverage."""
    return (f"n = {q['n']:,}\nsigma_NMAD = {q['sigma_nmad']:.3f}\nbias = {q['bias']:+.3f}\n"
            f"outliers (|dz|/(1+z) > {OUTLIER}) = {100 * q['outliers']:.1f} %\n"
            f"z_phot_err covers {100 * q['coverage']:.1f} %")


def draw(report: dict):
    """(figure, its CSV: the histogram cells per class and each class's numbers)."""
    name, z = _entry(report)
    fig = _figure((13, 4.6))
    axes = fig.subplots(1, len(LABELS))
    rows = []
    for ax, cls in zip(axes, LABELS):
        h, q = z["histogram"][cls], z[cls]
        top, bins = h["top"], h["bins"]
        counts = np.zeros((bins, bins))
        for i, j, c in h["cells"]:
            counts[i, j] = c
            rows.append({"class": cls, "z_spec_bin": i, "z_phot_bin": j, "count": c,
                         "bin_width": top / bins})
        edges = np.linspace(0, top, bins + 1)
        if counts.any():
            mesh = ax.pcolormesh(edges, edges, counts.T, cmap="viridis",
                                 norm=LogNorm(vmin=1, vmax=max(counts.max(), 2)))
            fig.colorbar(mesh, ax=ax, label="test rows per cell")
        line = np.linspace(0, top, 50)
        ax.plot(line, line, color="#333333", lw=1)
        for sign in (-1, 1):
            ax.plot(line, line + sign * OUTLIER * (1 + line), color="#333333", lw=0.8, ls="--")
        ax.set(xlim=(0, top), ylim=(0, top), xlabel="z_spec (spectroscopic)",
               ylabel="z_phot (student)", title=cls, facecolor="#f0f0f0")
        ax.text(0.03, 0.97, legend(q), transform=ax.transAxes, va="top", fontsize=8,
                bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"})
        rows.append({"class": cls, **{k: q[k] for k in ("n", "sigma_nmad", "bias", "outliers",
                                                        "coverage")}})
    fig.suptitle(title(report, f"Photometric redshift of the {name} on the test rows "
                               f"(dashed: the outlier line, |dz| = {OUTLIER} (1 + z))"))
    return fig, pd.DataFrame(rows)


FIGURE = {"zphot": (draw, "zphot")}
"""As runs.figures.FIGURES: drawn for a run whose student has a redshift head."""


def write(report: dict, layout) -> list[str]:
    """reports/figures/zphot.{png,csv} when a model has a redshift head (runs.figures'
    writer); the paths written."""
    return write_figures(report, layout, FIGURE)


def markdown(report: dict) -> list[str]:
    """report.md's photometric-redshift section ([] for a run without a redshift head)."""
    found = _entry(report)
    if found is None:
        return []
    name, z = found
    lines = ["## Photometric redshift", "",
             f"The {name}'s redshift head on the test rows: e = (z_phot - z_spec) / (1 + z_spec), "
             f"sigma_NMAD = 1.4826 median(|e - median(e)|), bias = median(e), outliers "
             f"|e| > {OUTLIER}; z_phot_err = {z['error_scale']:.4f} (1 + z_phot), fitted to cover "
             f"68 % of the early-stopping rows' galaxies. QSO redshifts from five magnitudes are "
             f"poor; they are reported, not hidden.", "",
             "| class | rows | sigma_NMAD | bias | outliers | z_phot_err coverage |",
             "|---|---:|---:|---:|---:|---:|"]
    for cls in (*LABELS, "all"):
        q = z[cls]
        lines.append(f"| {cls} | {q['n']:,} | {q['sigma_nmad']:.4f} | {q['bias']:+.4f} | "
                     f"{100 * q['outliers']:.1f} % | {100 * q['coverage']:.1f} % |")
    return lines + [""]
