"""The sweep's figures (sdss_distill/sweep/figures.py) on a stub sweep: percent everywhere,
panels that do not run into each other, every point of size_vs_accuracy named by method."""

from __future__ import annotations

import pytest

from sdss_distill.runs.config import make_config
from sdss_distill.sweep import grid as sweep
from tests.test_experiment import fake_arm, fake_training  # noqa: F401  (fixture)
from tests.test_plots import _label_problems, _legend_problems, _title_problems


@pytest.fixture
def stub_sweep(fake_training, tmp_path):  # noqa: F811
    """Two methods whose students have the same size (934 parameters), three alphas."""
    cells = sweep.grid(["offline", "crossfit"], [1.0], [0.0, 0.5, 1.0], ["kl"])
    sweep.run_sweep(make_config(data="x.csv"), cells, [0, 1], tmp_path, dev=False, workers=1,
                    progress=False)
    from sdss_distill.sweep.grid import load_cells
    from sdss_distill.sweep.summary import tidy
    cells = load_cells(tmp_path)
    return tmp_path, cells, tidy(cells)


def _draw(fig):
    fig.canvas.draw()
    return fig


@pytest.mark.slow
def test_size_vs_accuracy_names_every_point_by_method(stub_sweep):
    from sdss_distill.sweep.figures import size_vs_accuracy
    _, _, df = stub_sweep
    fig, data = size_vs_accuracy(df)
    _draw(fig)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(labels) == len(data) == 6  # 2 methods x teacher, student, baseline
    assert "offline: student (934 parameters)" in labels
    assert "crossfit: student (934 parameters)" in labels
    ax = fig.axes[0]
    xs = {line.get_xdata()[0] for line in ax.get_lines() if len(line.get_xdata()) == 1}
    assert len(xs) == 6  # the stub's six 934-parameter models dodged apart, none hidden
    assert "%" in ax.get_ylabel() and data["accuracy_mean_pct"].max() > 90
    assert _title_problems(fig) + _label_problems(fig) + _legend_problems(fig) == []


@pytest.mark.slow
def test_training_curves_in_percent_with_separate_labels(stub_sweep):
    from sdss_distill.sweep.figures import training_curves
    _, cells, _ = stub_sweep
    fig, data = training_curves(cells, 0)
    _draw(fig)
    renderer = fig.canvas.get_renderer()
    axes = fig.axes
    assert "accuracy (%)" in axes[2].get_ylabel()
    assert data[data.curve == "val_accuracy"]["value"].min() > 50  # percent, not a fraction
    for left, right in zip(axes, axes[1:]):  # no y label runs into the panel to its left
        label = right.yaxis.label.get_window_extent(renderer)
        assert label.x0 > left.get_window_extent(renderer).x1
    assert _title_problems(fig) + _label_problems(fig) + _legend_problems(fig) == []


@pytest.mark.slow
def test_every_sweep_figure_in_percent_and_simulated_says_so(stub_sweep):
    import json

    from sdss_distill.sweep.figures import sweep_figures
    out, _, _ = stub_sweep
    for path in (out / "cells").rglob("*.json"):
        doc = json.loads(path.read_text())
        path.write_text(json.dumps({**doc, "simulated": True}))
    written = sweep_figures(out)
    assert {p.stem for p in written} >= {"accuracy_vs_alpha", "per_class_by_alpha",
                                         "size_vs_accuracy", "training_curves"}
    import matplotlib.image
    import matplotlib.pyplot as plt
    import pandas as pd

    from sdss_distill.sweep.figures import SIMULATED_TITLE, _save
    for png in written:  # written, readable
        assert matplotlib.image.imread(png).shape[0] > 100
    fig, _ = plt.subplots()
    fig.suptitle("x")
    _save(fig, pd.DataFrame({"a": [1]}), out / "t", "t", simulated=True)
    assert fig.get_suptitle() == SIMULATED_TITLE + "x"


@pytest.mark.slow
def test_sweep_means_carry_their_bootstrap_interval(stub_sweep):
    from sdss_distill.sweep.figures import accuracy_vs, per_class, size_vs_accuracy
    _, _, df = stub_sweep
    for (fig, data), mean in ((per_class(df), "recall_pct"),
                              (size_vs_accuracy(df), "accuracy_mean_pct"),
                              (accuracy_vs(df, "alpha"), "accuracy_mean_pct")):
        lo, hi = data.filter(like="_lo_pct").iloc[:, 0], data.filter(like="_hi_pct").iloc[:, 0]
        assert len(data) and (lo <= data[mean] + 1e-9).all() and (data[mean] <= hi + 1e-9).all()
        assert "bootstrap" in fig.get_suptitle() + " ".join(ax.get_ylabel() for ax in fig.axes)
