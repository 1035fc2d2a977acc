"""runs.calibration: the calibration rows are the student's early-stopping rows (never test
rows, never the rows its weights were fitted on), and the report section built from them."""

import numpy as np
import pandas as pd
import pytest

from sdss_distill.core import purity
from sdss_distill.core.errors import InputError
from sdss_distill.core.schema import DEFAULT_SPLIT, LABELS
from sdss_distill.data.table import split, validation_slice
from sdss_distill.runs import calibration as cb
from sdss_distill.runs.report_sets import calibration_markdown


def _table(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    df = pd.DataFrame({"class": np.asarray(LABELS)[y], "r": rng.uniform(15, 23, n)})
    return df, y


class _Arm:
    rows = "non_test"

    def __init__(self, y_all, seed=0):
        rng = np.random.default_rng(seed)
        self.z = rng.normal(size=(len(y_all), 3)) + 2.5 * np.eye(3)[y_all]

    def logits(self, df):
        return 7.5 * self.z[df.index.to_numpy()]  # true logits are 2.5 z: T near 3


def test_calibration_rows_are_the_students_early_stopping_rows():
    df, _ = _table()
    parts = split(df, (0.4, 0.4, 0.2), 3)
    rows = cb.calibration_rows(df, parts, "non_test", 0.15, 3)
    non_test = np.sort(np.concatenate([parts.teacher_train, parts.student_train]))
    assert np.array_equal(rows, validation_slice(df, non_test, 0.15, 3)[1])
    assert not set(rows) & set(parts.test)
    assert len(rows) == pytest.approx(0.15 * len(non_test), abs=2)
    record = cb.rows_record("non_test", 0.15, 3, rows)
    cb.check_rows(record, rows, "run")
    with pytest.raises(InputError, match="differ from the run's"):
        cb.check_rows(record, rows[1:], "run")


def test_a_split_with_a_calibration_slice_calibrates_on_it_alone():
    df, y = _table(3000)
    parts = split(df, DEFAULT_SPLIT, 0)

    class Cfg:
        validation_fraction, seed = 0.15, 0

    sec = cb.run_section(df, parts, Cfg, _Arm(y))
    record = sec["rows"]
    assert record["row_set"] == "calibration" and record["n"] == len(parts.calibration) == 300
    rows = cb.calibration_rows(df, parts, "calibration", 0.1, 0)
    assert np.array_equal(rows, parts.calibration)
    fitted = np.concatenate([parts.teacher_train, parts.student_train, parts.test])
    assert not set(rows) & set(fitted)  # no model fitted, stopped or was scored on them
    cb.check_rows(record, rows, "run")


def test_run_section_fits_t_and_reports_sets_and_selections():
    df, y = _table(3000)
    parts = split(df, (0.4, 0.4, 0.2), 0)

    class Cfg:
        validation_fraction, seed = 0.3, 0

    sec = cb.run_section(df, parts, Cfg, _Arm(y))
    t = sec["temperature"]
    assert t["applied"] and 2.0 < t["temperature"] < 4.0
    assert t["nll_after"] < t["nll_before"]
    assert t["ece_percent"]["cal_after"] < t["ece_percent"]["cal_before"]
    cov = sec["sets"]["test"]["per_class"]
    assert all(0.8 < cov[c]["coverage"] <= 1 for c in LABELS)
    assert sum(g["rows"] for g in sec["sets"]["test_by_r"].values()) == len(parts.test)
    assert set(sec["selections"]) == set(LABELS)
    counts = purity.histogram_counts(sec["purity"], LABELS)
    assert counts.sum() == 3 * sec["rows"]["n"]
    md = "\n".join(calibration_markdown({"calibration": sec}))
    assert "## Prediction sets at 0.9" in md and "ECE per r bin" in md
    assert "not available" not in md.lower()


def test_purity_figure_is_drawn_from_the_report(tmp_path):
    from sdss_distill.runs import sets_figures
    df, y = _table(3000)
    parts = split(df, (0.4, 0.4, 0.2), 0)

    class Cfg:
        validation_fraction, seed = 0.3, 0

    report = {"calibration": cb.run_section(df, parts, Cfg, _Arm(y))}

    class Layout:
        root, figures = tmp_path, tmp_path / "figures"

        @staticmethod
        def figure(name):
            return tmp_path / "figures" / f"{name}.png", tmp_path / "figures" / f"{name}.csv"

    written = sets_figures.write(report, Layout)
    assert written == ["figures/purity_completeness.png", "figures/purity_completeness.csv"]
    data = pd.read_csv(tmp_path / "figures" / "purity_completeness.csv")
    assert set(data["class"]) == set(LABELS)
    assert sets_figures.write({"calibration": {"not_available": "x"}}, Layout) == []


def test_ece_per_sample_when_the_table_has_samples():
    df, y = _table(2000)
    df["sample"] = np.where(np.arange(len(df)) % 2, "bright", "faint")
    parts = split(df, (0.4, 0.4, 0.2), 0)

    class Cfg:
        validation_fraction, seed = 0.3, 0

    sec = cb.run_section(df, parts, Cfg, _Arm(y))
    by_s = sec["temperature"]["ece_percent_by_sample_test"]
    assert set(by_s["before"]) == {"bright", "faint"}
    md = "\n".join(calibration_markdown({"calibration": sec}))
    assert "ECE per sample on the test rows" in md
