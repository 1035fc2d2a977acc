"""The plotting and glue helpers the notebooks call (sdss_distill/plots.py)."""

from __future__ import annotations

import json

import pytest


def test_pareto_front_keeps_the_undominated():
    from sdss_distill.viz.figures import pareto_front
    # (cost, score): the 3rd is beaten by the 2nd; equal points do not beat each other
    front = pareto_front([1.0, 2.0, 3.0, 2.0], [0.90, 0.95, 0.94, 0.95])
    assert front.tolist() == [True, True, False, True]


def test_find_run_names_a_bad_run_dir(tmp_path, monkeypatch):
    from sdss_distill.core.errors import InputError
    from sdss_distill.notebook import find_run
    monkeypatch.setenv("SDSS_DISTILL_RUN", str(tmp_path))
    with pytest.raises(InputError, match=r"SDSS_DISTILL_RUN=.*no reports/report.json"):
        find_run(tmp_path)


def test_load_run_refuses_another_table(tmp_path, write_csv):
    from sdss_distill.core.errors import InputError
    from sdss_distill.notebook import load_run
    run = tmp_path / "run"  # a pre-manifest run holds its own files only, not the table
    (run / "models").mkdir(parents=True)
    (run / "models" / "run.json").write_text(json.dumps(
        {"data": {"path": "other.csv"}, "config": {"teacher_view": "physical"}}))
    (run / "models" / "split.json").write_text(json.dumps({"data_sha256": "0" * 64}))
    with pytest.raises(InputError, match="not the table run"):
        load_run(run, write_csv([]))


# --- every figure: title, labelled axes with units, legends off the data, honest axes ------

def _simulated():
    """SIMULATED rows and report numbers, only to exercise the drawing code."""
    import numpy as np
    import pandas as pd

    from sdss_distill.core.schema import LABELS

    rng = np.random.default_rng(0)
    n = 60
    df = pd.DataFrame(rng.normal(18, 1, (n, 5)), columns=list("ugriz"))
    df["class"] = np.resize(LABELS, n)
    df["redshift"] = np.where(df["class"] == "STAR", rng.normal(0, 1e-4, n), rng.uniform(0.01, 3, n))
    cm = {"labels": list(LABELS), "rows_true_cols_predicted": [[5, 1, 0], [0, 4, 1], [1, 0, 6]]}
    per_class = {c: {"precision": p, "recall": 0.8, "f1": 0.85, "support": 10}
                 for c, p in zip(LABELS, (0.97, 0.84, 0.99))}
    model = {"view": "photometric", "parameters": 934, "test_accuracy": 0.9, "macro_f1": 0.85,
             "test_log_loss": 0.3, "per_class": per_class, "confusion_matrix": cm,
             "latency": {"latency_us_median": 1500.0}}
    report = {"models": {"teacher": model, "student": {**model, "agreement_with_teacher": 0.95,
                                                       "teacher_student_kl": 0.1}, "baseline": model}}
    variants = {s: {"size_bytes": b, "test_accuracy": a, "agreement": 0.99, "latency_us_median": t,
                    "latency_us_p99": 2.0, "throughput_rows_per_s": 1e7}
                for s, b, a, t in (("student_int8", 4048, 0.96, 1.3), ("student_float32", 6152, 0.962, 1.4),
                                   ("student_qat_int8", 3456, 0.955, 1.3))}
    return rng, df, report, variants


@pytest.fixture(scope="module")
def figures():
    import matplotlib
    matplotlib.use("Agg")
    from sdss_distill.viz import figures as plots

    rng, df, report, variants = _simulated()
    pred = rng.integers(0, 3, (2, len(df)))
    figs = {"class_balance": plots.class_balance(df), "colour_colour": plots.colour_colour(df),
            "redshift_hist": plots.redshift_hist(df),
            "magnitude_ranges": plots.magnitude_ranges(df, {"u": 19.6, "g": 20.0}),
            "colour_vs_redshift": plots.colour_vs_redshift(df),
            "confusion_matrices": plots.confusion_matrices(report),
            "per_class_bars": plots.per_class_bars(report),
            "soft_labels": plots.soft_labels(rng.normal(0, 3, (2, 3)), titles=["a", "b"]),
            "disagreements": plots.disagreements(df, pred[0], pred[1]),
            "pareto": plots.pareto(variants, {"Keras": 0.96})}
    for fig in figs.values():
        fig.canvas.draw()
    yield figs
    matplotlib.pyplot.close("all")


FIGURES = ("class_balance", "colour_colour", "redshift_hist", "magnitude_ranges", "colour_vs_redshift",
           "confusion_matrices", "per_class_bars", "soft_labels", "disagreements", "pareto")
UNITS = {"colour_colour": "(mag)", "magnitude_ranges": "(mag", "colour_vs_redshift": "(mag)",
         "disagreements": "(mag)", "class_balance": "(count)", "redshift_hist": "dimensionless"}


def _title_problems(fig) -> list[str]:
    if fig.get_suptitle().strip():
        return []
    return [f"axes {k} has no title and the figure no suptitle"
            for k, ax in enumerate(fig.axes) if not ax.get_title().strip()]


def _label_problems(fig) -> list[str]:
    problems = []
    for k, ax in enumerate(fig.axes):
        if not ax.get_xlabel().strip():
            problems.append(f"axes {k}: no x label")
        if not any(a.get_ylabel().strip() for a in ax.get_shared_y_axes().get_siblings(ax)):
            problems.append(f"axes {k}: no y label")
    return problems


def _drawn_points(ax):
    """Display coordinates of the data an axes draws (inside its own area)."""
    import numpy as np
    from matplotlib.collections import LineCollection, PathCollection

    pts = []
    for line in ax.get_lines():
        xy = line.get_xydata()
        if len(xy):
            pts.append(line.get_transform().transform(xy))
    for coll in ax.collections:
        if isinstance(coll, PathCollection) and len(coll.get_offsets()):
            pts.append(coll.get_offset_transform().transform(coll.get_offsets()))
        elif isinstance(coll, LineCollection):
            segs = [s for s in coll.get_segments() if len(s)]
            if segs:
                pts.append(coll.get_transform().transform(np.concatenate(segs)))
    pts = np.concatenate(pts) if pts else np.empty((0, 2))
    pts = pts[np.isfinite(pts).all(axis=1)]
    inside = ax.bbox
    return pts[(pts[:, 0] >= inside.x0) & (pts[:, 0] <= inside.x1)
               & (pts[:, 1] >= inside.y0) & (pts[:, 1] <= inside.y1)]


def _legend_problems(fig) -> list[str]:
    from matplotlib.transforms import Bbox

    renderer = fig.canvas.get_renderer()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)
    problems = []
    for leg in legends:
        box = leg.get_window_extent(renderer)
        for k, ax in enumerate(fig.axes):
            for patch in ax.patches:
                ext = Bbox.intersection(patch.get_window_extent(renderer), ax.bbox)
                if ext is not None and ext.width > 0 and ext.height > 0 and box.overlaps(ext):
                    problems.append(f"legend covers a bar/box of axes {k}")
            pts = _drawn_points(ax)
            hit = (pts[:, 0] > box.x0) & (pts[:, 0] < box.x1) & (pts[:, 1] > box.y0) & (pts[:, 1] < box.y1)
            if hit.any():
                problems.append(f"legend covers {int(hit.sum())} data points of axes {k}")
    return problems


def _zero_problems(fig) -> list[str]:
    """Bar charts start at 0 on their value axis, or their label says they don't."""
    from matplotlib.patches import Rectangle

    problems = []
    for k, ax in enumerate(fig.axes):
        bars = [p for p in ax.patches if isinstance(p, Rectangle)]
        if bars and ax.get_yscale() == "linear" and ax.get_ylim()[0] > 0 \
                and "not 0" not in ax.get_ylabel() + ax.get_title():
            problems.append(f"axes {k}: bars start at {ax.get_ylim()[0]:.3g} without saying so")
    return problems


@pytest.mark.parametrize("name", FIGURES)
def test_figure_has_titles_labels_units_and_clear_legends(figures, name):
    fig = figures[name]
    assert _title_problems(fig) + _label_problems(fig) + _legend_problems(fig) + _zero_problems(fig) == []
    if name in UNITS:
        labels = " ".join(ax.get_xlabel() + " " + ax.get_ylabel() for ax in fig.axes)
        assert UNITS[name] in labels, labels


def test_per_class_bars_say_where_the_axis_starts(figures):
    for ax in figures["per_class_bars"].axes:
        lo = ax.get_ylim()[0]
        assert lo == 0 or f"axis starts at {lo:.3g}, not 0" in ax.get_ylabel()
    assert any(ax.get_ylim()[0] > 0 for ax in figures["per_class_bars"].axes)  # zoomed here


def test_pareto_cost_axes_start_at_zero_and_front_is_filled(figures):
    fig = figures["pareto"]
    size_ax, latency_ax = fig.axes
    assert size_ax.get_xlim()[0] == 0 and latency_ax.get_xlim()[0] == 0
    assert "kB" in size_ax.get_xlabel() and "us" in latency_ax.get_xlabel()
    assert "not 0" in size_ax.get_ylabel()  # accuracy axis is zoomed, and says so
    # size: int8 (4048 B, 0.96) is beaten by nothing; qat (3456 B, 0.955) and float32 (6152 B,
    # 0.962) too, so all three are filled; the title counts them
    assert "3 of 3 on the front" in size_ax.get_title()
    filled = [c.get_facecolor()[0][3] > 0 for c in size_ax.collections if len(c.get_offsets()) == 1]
    assert filled == [True, True, True]
    assert "Pareto front (filled markers)" in [t.get_text() for t in fig.legends[0].get_texts()]


def test_the_figure_checks_fire():
    """Control: a figure with the faults the checks look for fails each of them."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.bar([0, 1, 2], [0.9, 0.95, 0.97], label="model")
    ax.set_ylim(0.85, 1.0)
    ax.legend(loc="lower left")
    fig.canvas.draw()
    assert _title_problems(fig) == ["axes 0 has no title and the figure no suptitle"]
    assert _label_problems(fig) == ["axes 0: no x label", "axes 0: no y label"]
    assert any("legend covers" in p for p in _legend_problems(fig))
    assert _zero_problems(fig) == ["axes 0: bars start at 0.85 without saying so"]
    plt.close(fig)


def test_tables():
    from sdss_distill.viz import figures as plots

    _, _, report, variants = _simulated()
    table = plots.metrics_table(report)
    for name, m in report["models"].items():
        assert table.loc[name, "test accuracy"] == m["test_accuracy"]
        assert table.loc[name, "batch-1 latency (us)"] == m["latency"]["latency_us_median"]
    sizes = plots.variants_table({"variants": variants})["size (B)"]
    assert list(sizes) == sorted(v["size_bytes"] for v in variants.values())
