"""A run's figures and report.md (sdss_distill/runs/figures.py, runs/report_md.py), drawn from
a report built from random logits: titles, units, legends off the data, percent everywhere,
SIMULATED in every title of a simulated run, a CSV behind every PNG."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sdss_distill.core.schema import LABELS
from tests.test_plots import _label_problems, _legend_problems, _title_problems, _zero_problems


def fake_report(simulated: bool = False, samples: bool = True) -> dict:
    """A report with every key runs.pipeline writes, from random (NOT real) logits."""
    from sdss_distill.distill.metrics import classification
    from sdss_distill.distill.population import Populations

    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame({"r": rng.uniform(15, 23, n)})
    for band, offset in zip("ugiz", (1.5, 0.5, -0.2, -0.3)):
        df[band] = df["r"] + offset + rng.normal(0, 0.1, n)
    if samples:
        df["sample"] = np.where(df["r"] > 19, "faint", "bright")
    y = rng.integers(0, 3, n)
    pops = Populations(df, df.iloc[: n // 2])
    models = {}
    for k, (name, role) in enumerate((("teacher", "teacher"), ("student", "student"),
                                      ("baseline", "baseline"), ("assistant", "assistant"))):
        logits = rng.normal(0, 1, (n, 3)) + 3 * np.eye(3)[y] * (1 - 0.2 * k)
        history = {"loss": [0.9, 0.5, 0.4], "val_loss": [0.8, 0.6, 0.5],
                   "val_accuracy": [0.8, 0.85, 0.9]}
        if role == "teacher":  # a crossfit teacher: the sum over folds and each fold
            history = {"loss": [1.8, 1.0], "loss_0": [0.9, 0.5], "loss_1": [0.9, 0.5],
                       "val_loss": [1.2, 0.9], "val_loss_0": [0.6, 0.45], "val_loss_1": [0.6, 0.45]}
        models[name] = {"role": role, "view": "photometric", "parameters": 900 + k,
                        **classification(y, logits), **pops.metrics(y, logits),
                        "history": history}
    report = {"simulated": simulated, "models": models, "evaluation": pops.summary()}
    if simulated:
        report["note"] = "SIMULATED data"
    return report


@pytest.fixture(scope="module")
def drawn():
    from sdss_distill.runs import figures
    out = {}
    for simulated in (False, True):
        report = fake_report(simulated)
        for name, (draw, _) in figures.FIGURES.items():
            fig, data = draw(report)
            fig.canvas.draw()
            out[name, simulated] = (fig, data)
    return out


@pytest.mark.parametrize("name", ["accuracy_by_r_mag", "confusion", "recall_by_class",
                                  "reliability", "training_curves"])
@pytest.mark.slow
def test_run_figure_has_titles_labels_and_clear_legends(drawn, name):
    fig, data = drawn[name, False]
    assert _title_problems(fig) + _label_problems(fig) + _legend_problems(fig) + _zero_problems(fig) == []
    assert len(data) > 0


@pytest.mark.parametrize("name", ["accuracy_by_r_mag", "recall_by_class", "reliability",
                                  "training_curves"])
def test_accuracy_is_a_percentage(drawn, name):
    fig, data = drawn[name, False]
    labels = " ".join(ax.get_ylabel() for ax in fig.axes)
    assert "(%)" in labels or "% of" in labels
    assert "fraction" not in labels
    pct = [c for c in data.columns if c.endswith("_pct")] or ["value"]
    if name == "training_curves":
        acc = data[data["key"] == "val_accuracy"]["value"]
        assert acc.between(50, 100).all()
    else:
        assert data[pct].max().max() > 1  # percent, not a fraction


def test_accuracy_by_r_mag_counts_rows_and_draws_every_model(drawn):
    fig, data = drawn["accuracy_by_r_mag", False]
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[0].startswith("r < 16\n") and ticks[-1].startswith("r >= 22\n")
    assert all("rows" in t for t in ticks)
    assert set(data["model"]) == {"teacher", "student", "baseline", "assistant"}
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["teacher", "student", "baseline", "assistant"]


def test_training_curves_average_a_crossfit_teachers_folds(drawn):
    _, data = drawn["training_curves", False]
    teacher = data[(data.model == "teacher") & (data.panel.str.contains("training rows"))]
    assert teacher["value"].tolist() == [0.9, 0.5]  # the folds' mean, not their sum (1.8, 1.0)


def test_simulated_run_says_so_in_every_figure_title(drawn):
    from sdss_distill.runs import figures
    for name in figures.FIGURES:
        fig, _ = drawn[name, True]
        assert fig.get_suptitle().startswith("SIMULATED"), name
        assert "SIMULATED" not in drawn[name, False][0].get_suptitle()


@pytest.mark.slow
def test_write_figures_puts_png_and_csv_under_the_layout(tmp_path):
    from sdss_distill.runs.figures import write_figures
    from sdss_distill.runs.rundir import Layout
    layout = Layout(tmp_path / "version")
    written = write_figures(fake_report(), layout)
    names = ("accuracy_by_r_mag", "confusion", "recall_by_class", "reliability", "training_curves")
    assert written == [f"reports/figures/{n}.{ext}" for n in names for ext in ("png", "csv")]
    for name in names:
        png, csv = layout.figure(name)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(pd.read_csv(csv)) > 0


@pytest.mark.slow
def test_a_streamed_report_draws_what_it_has(tmp_path):
    """No population or reliability tables: those figures are skipped, not drawn empty."""
    from sdss_distill.runs.figures import write_figures
    from sdss_distill.runs.rundir import Layout
    report = fake_report()
    for m in report["models"].values():
        for key in ("population", "domain", "reliability"):
            del m[key]
    written = write_figures(report, Layout(tmp_path / "v"))
    assert [w for w in written if w.endswith(".png")] == [
        "reports/figures/confusion.png", "reports/figures/recall_by_class.png",
        "reports/figures/training_curves.png"]


def test_report_markdown_tables_by_population():
    from sdss_distill.runs.report_md import population_markdown
    text = "\n".join(population_markdown(fake_report()))
    assert "## Scores by sample" in text and "| student | faint |" in text
    assert "## Scores by r magnitude" in text and "| baseline | r >= 22 |" in text
    assert "| student | flagged (out) |" in text
    for label in LABELS:
        assert f"recall {label} (rows)" in text


def test_report_markdown_without_samples_or_for_a_streamed_run():
    from sdss_distill.runs.report import STREAMED_NOTE
    from sdss_distill.runs.report_md import population_markdown
    text = "\n".join(population_markdown(fake_report(samples=False)))
    assert "Scores by sample" not in text and "Scores by r magnitude" in text
    streamed = "\n".join(population_markdown({"models": {}, "evaluation": {
        "not_available": STREAMED_NOTE}}))
    assert "not available for streamed runs" in streamed


def test_population_table_for_notebooks():
    from sdss_distill.viz.figures import population_table
    report = fake_report()
    by_r = population_table(report)
    assert by_r.loc[("student", "r < 16"), "rows"] == report["evaluation"]["r_mag_bins"]["r < 16"]
    assert by_r["accuracy (%)"].max() > 1  # percent
    assert set(population_table(report, "sample").index.get_level_values(1)) == {"bright", "faint"}
    dom = population_table(report, "domain")
    assert set(dom.index.get_level_values(1)) == {"in_domain", "out_of_domain"}
