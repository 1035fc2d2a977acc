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
        extra = {}
        if role == "teacher":  # crossfit teachers: the sum over folds and each fold, two sets
            history = {"loss": [1.8, 1.0], "loss_0": [0.9, 0.5], "loss_1": [0.9, 0.5],
                       "val_loss": [1.2, 0.9], "val_loss_0": [0.6, 0.45], "val_loss_1": [0.6, 0.45]}
            extra = {"folds": 2, "more_fold_teachers": [{
                "view": "photometric", "members": ["teacher_fold_0", "teacher_fold_1"],
                "history": {"loss": [2.0, 1.2], "loss_0": [1.1, 0.7], "loss_1": [0.9, 0.5],
                            "val_accuracy_0": [0.7, 0.8], "val_accuracy_1": [0.72, 0.81]}}]}
        models[name] = {"role": role, "view": "physical" if role == "teacher" else "photometric",
                        "parameters": 900 + k, **classification(y, logits),
                        **pops.metrics(y, logits), "history": history, **extra}
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


def test_training_curves_draw_every_fold_teacher_of_both_sets(drawn):
    fig, data = drawn["training_curves", False]
    train = data[data.panel.str.contains("training rows")]
    # each fold on its own, not their sum (1.8, 1.0)
    assert train[train.model == "teacher: physical fold 1"]["value"].tolist() == [0.9, 0.5]
    assert train[train.model == "teacher: photometric fold 0"]["value"].tolist() == [1.1, 0.7]
    folds = {f"teacher: {view} fold {k}" for view in ("physical", "photometric") for k in (0, 1)}
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert folds | {"student", "baseline"} <= set(legend) and "teacher" not in legend


def test_an_older_report_draws_a_crossfit_teacher_as_the_folds_mean():
    from sdss_distill.runs.figures import histories
    report = {"models": {"teacher": {"view": "physical", "folds": 3,
                                     "history": {"loss": [3.0, 1.5], "accuracy": [0.8, 0.9]}}}}
    ((label, history, _),) = histories(report, "teacher")
    assert label == "teacher (mean of 3 folds)"
    assert history == {"loss": [1.0, 0.5], "accuracy": [0.8, 0.9]}


def test_every_rate_drawn_has_an_interval_around_it_that_shrinks_with_rows(drawn):
    for name, column in (("accuracy_by_r_mag", "accuracy"), ("recall_by_class", "recall"),
                         ("reliability", "accuracy")):
        _, data = drawn[name, False]
        d = data.dropna(subset=[f"{column}_pct"])
        assert len(d) and (d[f"{column}_lo_pct"] <= d[f"{column}_pct"]).all()
        assert (d[f"{column}_pct"] <= d[f"{column}_hi_pct"]).all()
        inner = d[(d[f"{column}_pct"] > 5) & (d[f"{column}_pct"] < 95)]
        assert (inner[f"{column}_hi_pct"] > inner[f"{column}_lo_pct"]).all()
    _, data = drawn["confusion", False]
    assert ((data.share_lo_pct <= data.share_of_true_pct)
            & (data.share_of_true_pct <= data.share_hi_pct)).all()
    from sdss_distill.runs.figures import rate_pct
    _, lo, hi = rate_pct([0.8, 0.8, None], [312, 3120, 0])
    assert hi[0] - lo[0] > 2.5 * (hi[1] - lo[1]) and np.isnan(lo[2])


def test_recall_panels_zoom_to_the_intervals_and_reliability_starts_at_a_third(drawn):
    fig, data = drawn["recall_by_class", False]
    for ax, c in zip(fig.axes, LABELS):
        lo, hi = ax.get_ylim()
        d = data[data["class"] == c]
        assert lo > 0 and lo <= d["recall_lo_pct"].min() and d["recall_hi_pct"].max() <= hi
        assert "not 0" in ax.get_ylabel()
    fig, _ = drawn["reliability", False]
    top, bottom = fig.axes[:2]
    assert top.get_xlim()[0] == pytest.approx(100 / 3) == bottom.get_xlim()[0]
    assert len(bottom.patches) > 0 and not bottom.get_lines()  # counts as bars, not a line


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
