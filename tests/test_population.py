"""Scores by population (sdss_distill/distill/population.py) against numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sdss_distill.core.schema import LABELS

# Seven test rows: (sample, r, true class, probabilities GALAXY QSO STAR). Confidences sit
# inside the 15 ECE bins (0.45 -> bin 6, 0.55 -> 8, 0.70 -> 10, 0.75 -> 11), never on an edge.
ROWS = [("bright", 15.5, 0, (0.75, 0.15, 0.10)),   # right, conf 0.75
        ("bright", 16.0, 1, (0.55, 0.35, 0.10)),   # wrong (GALAXY), conf 0.55
        ("bright", 16.5, 2, (0.10, 0.15, 0.75)),   # right, conf 0.75
        ("faint", 21.0, 0, (0.45, 0.30, 0.25)),    # right, conf 0.45
        ("faint", 21.9, 1, (0.20, 0.70, 0.10)),    # right, conf 0.70
        ("faint", 22.0, 2, (0.10, 0.55, 0.35)),    # wrong (QSO), conf 0.55
        ("faint", 23.5, 1, (0.30, 0.25, 0.45))]    # wrong (STAR), conf 0.45


def _frame():
    df = pd.DataFrame([{"sample": s, "r": r, "class": LABELS[y]} for s, r, y, _ in ROWS])
    for band, offset in zip("ugiz", (1.5, 0.5, -0.2, -0.3)):
        df[band] = df["r"] + offset
    y = np.array([row[2] for row in ROWS])
    logits = np.log(np.array([row[3] for row in ROWS]))
    return df, y, logits


def test_r_bins_are_half_open_and_named():
    from sdss_distill.distill.population import r_bin_labels, r_bins
    assert r_bin_labels() == ["r < 16", "16-17", "17-18", "18-19", "19-20", "20-21", "21-22",
                              "r >= 22"]
    assert r_bins(np.array([10.0, 15.999, 16.0, 21.999, 22.0, 30.0])).tolist() == [0, 0, 1, 6, 7, 7]


def test_per_sample_metrics_match_a_hand_computation():
    from sdss_distill.distill.population import by_population
    df, y, logits = _frame()
    out = by_population(y, logits, df["r"], df["sample"])["by_sample"]
    bright, faint = out["bright"], out["faint"]
    assert bright["rows"] == 3 and faint["rows"] == 4
    assert bright["accuracy"] == pytest.approx(2 / 3) and faint["accuracy"] == pytest.approx(0.5)
    # log loss: mean of -ln p(true class)
    assert bright["log_loss"] == pytest.approx(-(math.log(.75) + math.log(.35) + math.log(.75)) / 3)
    assert faint["log_loss"] == pytest.approx(-(math.log(.45) + math.log(.70) + math.log(.35)
                                                + math.log(.25)) / 4)
    # ECE, bright: bin 11 holds 2 right rows at 0.75 (gap 0.25 each), bin 8 one wrong at 0.55
    assert bright["ece"] == pytest.approx((2 * 0.25 + 0.55) / 3)
    # faint: bin 6 one right + one wrong at 0.45 (gap 0.05 x 2), bin 10 right at 0.70, bin 8 wrong
    assert faint["ece"] == pytest.approx((2 * 0.05 + 0.30 + 0.55) / 4)
    assert bright["recall"] == {"GALAXY": 1.0, "QSO": 0.0, "STAR": 1.0}
    assert faint["recall"] == {"GALAXY": 1.0, "QSO": 0.5, "STAR": 0.0}
    assert faint["support"] == {"GALAXY": 1, "QSO": 2, "STAR": 1}


def test_per_r_bin_metrics_match_a_hand_computation():
    from sdss_distill.distill.population import by_population
    df, y, logits = _frame()
    bins = by_population(y, logits, df["r"])["by_r_mag"]
    assert {b: g["rows"] for b, g in bins.items()} == {
        "r < 16": 1, "16-17": 2, "17-18": 0, "18-19": 0, "19-20": 0, "20-21": 0, "21-22": 2,
        "r >= 22": 2}
    assert bins["r < 16"]["accuracy"] == 1.0
    assert bins["16-17"]["accuracy"] == 0.5 and bins["21-22"]["accuracy"] == 1.0
    assert bins["r >= 22"]["accuracy"] == 0.0
    assert bins["16-17"]["recall"] == {"GALAXY": None, "QSO": 0.0, "STAR": 1.0}  # no GALAXY row
    assert bins["r >= 22"]["ece"] == pytest.approx((0.55 + 0.45) / 2)
    assert bins["21-22"]["log_loss"] == pytest.approx(-(math.log(.45) + math.log(.70)) / 2)
    empty = bins["18-19"]
    assert empty["accuracy"] is None and empty["ece"] is None and empty["log_loss"] is None
    assert empty["recall"] == dict.fromkeys(LABELS) and empty["support"] == dict.fromkeys(LABELS, 0)


def test_no_sample_column_no_sample_groups():
    from sdss_distill.distill.population import by_population
    df, y, logits = _frame()
    assert by_population(y, logits, df["r"])["by_sample"] is None


def test_reliability_table_gives_the_metrics_ece():
    from sdss_distill.distill.metrics import expected_calibration_error
    from sdss_distill.distill.population import reliability
    rng = np.random.default_rng(0)
    y, logits = rng.integers(0, 3, 500), rng.normal(0, 2, (500, 3))
    table = reliability(y, logits)
    assert len(table) == 15 and sum(b["rows"] for b in table) == 500
    gap = sum(b["rows"] * abs(b["accuracy"] - b["confidence"]) for b in table if b["rows"])
    assert gap / 500 == pytest.approx(expected_calibration_error(y, logits))
    _, y7, logits7 = _frame()
    bin11 = reliability(y7, logits7)[11]
    assert bin11["rows"] == 2 and bin11["accuracy"] == 1.0
    assert bin11["confidence"] == pytest.approx(0.75)


def test_domain_comes_from_the_student_train_rows():
    """A test row outside the student-train ranges (a magnitude or a colour) is flagged, as
    the model card's domain and the edge classifier would flag it; the scores split by it."""
    from sdss_distill.core.domain import domain, in_domain
    from sdss_distill.distill.population import Populations
    test, y, logits = _frame()
    train = test.iloc[[0, 1, 2, 3, 4]].copy()  # r from 15.5 to 21.9
    pops = Populations(test, train)
    # float32, as export computes the card's domain (data.table.features)
    assert pops.domain == domain(train[list("ugriz")].to_numpy("float32"), tuple("ugriz"))
    assert pops.inside.tolist() == [True] * 5 + [False, False]  # r 22.0 and 23.5 are beyond
    assert pops.inside.tolist() == in_domain(test[list("ugriz")].to_numpy("float32"), tuple("ugriz"),
                                             pops.domain).tolist()
    got = pops.metrics(y, logits)["domain"]
    assert got["in_domain"]["rows"] == 5 and got["in_domain"]["accuracy"] == pytest.approx(4 / 5)
    assert got["out_of_domain"]["rows"] == 2 and got["out_of_domain"]["accuracy"] == 0.0
    summary = pops.summary()
    assert summary["domain"]["test_rows_out_of_domain"] == 2 and summary["domain"]["n"] == 5
    assert summary["samples"] == {"bright": 3, "faint": 4}
    assert summary["r_mag_bins"]["r >= 22"] == 2


def test_a_colour_outside_the_domain_is_flagged():
    from sdss_distill.core.domain import domain, in_domain
    cols = tuple("ugriz")
    train = np.array([[19.0, 18.0, 17.0, 16.8, 16.7], [21.0, 19.0, 18.0, 17.7, 17.5]])
    dom = domain(train, cols)
    inside = np.array([[20.0, 18.5, 17.5, 17.2, 17.0]])  # every column and colour in range
    blue = np.array([[19.0, 19.0, 17.5, 17.2, 17.0]])  # each magnitude in range, u-g = 0 is not
    assert in_domain(inside, cols, dom).tolist() == [True]
    assert in_domain(blue, cols, dom).tolist() == [False]
