"""A run's calibration section: which rows calibrate, the temperature fitted on them, ECE per
r-magnitude bin before and after it, the conformal and purity material stored once (report and
model card) and the coverage of 90 % prediction sets on the test rows.

Calibration rows are the split's calibration slice (`data.table.split`): drawn from the
non-test rows by the same stratified, seeded split as the test rows, and fitted or stopped on
by no model (teacher or student), so the student's outputs on them are exchangeable with its
outputs on test rows, the condition of the conformal guarantee. A run split without the slice
(three fractions, every run before it) calibrates on the student's early-stopping rows, which
also chose its stopping epoch and so look slightly easier than test rows.
"""

from __future__ import annotations

import numpy as np

from sdss_distill.core import conformal, purity, temperature
from sdss_distill.core.errors import InputError
from sdss_distill.core.io import sha256_bytes
from sdss_distill.core.prob import fractions, softmax
from sdss_distill.core.schema import LABELS, SAMPLE
from sdss_distill.data.table import labels, validation_slice
from sdss_distill.distill.population import r_bin_labels, r_bins

DEFINITION = {
    "calibration": ("the split's calibration slice (seeded, stratified, non-test): no model "
                    "was fitted or stopped on it"),
    "stopping": ("the student's early-stopping rows: the validation_fraction slice (seeded, "
                 "stratified) of the row set it trained on; its weights were never fitted on "
                 "them (they chose its stopping epoch) and they are not test rows")}
STUDENT_ROW_SETS = ("non_test", "teacher_train", "student_train")
TEMPERATURE_RULE = ("T fitted by the mean NLL on the calibration rows (logits / T, argmax "
                    "unchanged); applied only when it helps on rows it was not fitted on: "
                    "fitted on each half of the calibration rows, it must lower the NLL of "
                    "the other half, both ways")


def calibration_rows(df, split, row_set: str, fraction: float, seed: int) -> np.ndarray:
    """The calibration rows (table positions): the split's calibration slice (`row_set`
    "calibration"), else the stopping slice of the student's `row_set` (runs before it)."""
    if row_set == "calibration":
        return split.calibration
    if row_set not in STUDENT_ROW_SETS:
        raise InputError(f"calibration: the student's row set {row_set!r} is not one of "
                         f"calibration, {', '.join(STUDENT_ROW_SETS)}")
    return validation_slice(df, split.rows(row_set), fraction, seed)[1]


def rows_record(row_set: str, fraction: float, seed: int, positions: np.ndarray) -> dict:
    """How the calibration rows were drawn, and a digest of them (export re-draws and checks)."""
    digest = sha256_bytes(np.asarray(positions, "int64").tobytes())
    kind = "calibration" if row_set == "calibration" else "stopping"
    return {"definition": DEFINITION[kind], "row_set": row_set, "fraction": fraction,
            "seed": seed, "n": int(len(positions)), "positions_sha256": digest}


def check_rows(record: dict, positions: np.ndarray, where) -> None:
    """An InputError when re-drawn rows differ from the ones the run calibrated on."""
    again = rows_record(record["row_set"], record["fraction"], record["seed"], positions)
    if again["positions_sha256"] != record.get("positions_sha256"):
        raise InputError(f"{where}: the calibration rows drawn again differ from the run's "
                         f"({again['n']} rows vs {record.get('n')}); train the run again")


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> dict:
    """{temperature, applied, nll_before, nll_after, rule} on calibration rows."""
    t = temperature.fit(logits, y)
    before, after = temperature.nll(logits, y), temperature.nll(logits, y, t)
    gains = temperature.held_out_gains(logits, y)
    applied = after < before and min(gains) > 0
    return {"temperature": t if applied else 1.0, "fitted": t, "applied": bool(applied),
            "nll_before": before, "nll_after": after if applied else before,
            "held_out_nll_gains": gains, "rule": TEMPERATURE_RULE}


def material(probabilities: np.ndarray, y: np.ndarray, labels, temp: dict, record: dict) -> dict:
    """What the report and every student card store: the rows, the temperature, the conformal
    material and the purity histograms, all from calibration-row probabilities."""
    return {"rows": record, "temperature": temp,
            "conformal": conformal.material(probabilities, y, labels),
            "purity": purity.histogram_text(purity.histograms(probabilities, y, len(labels)),
                                             labels)}


def _pct(v):
    return None if v is None else 100 * v


def ece_by_r(p: np.ndarray, y: np.ndarray, which: np.ndarray, bin_labels) -> dict:
    """ECE (percent) per group (`which`: each row's index into `bin_labels`, an r bin or a
    sample; None for an empty group)."""
    return {lab: _pct(temperature.ece(p[which == k], y[which == k]))
            for k, lab in enumerate(bin_labels)}


def section(cal_logits, y_cal, test_logits, y_test, r_test, labels, record: dict, priors,
            level: float = conformal.DEFAULT_LEVEL, sample=None) -> dict:
    """The report's `calibration` section for the student (see the module docstring);
    `sample`: the test rows' sample (bright/faint) when the table has one."""
    y_cal, y_test = np.asarray(y_cal), np.asarray(y_test)
    temp = fit_temperature(cal_logits, y_cal)
    t = temp["temperature"]
    raw = {"cal": softmax(cal_logits), "test": softmax(test_logits)}
    cal = {"cal": softmax(np.asarray(cal_logits, float) / t),
           "test": softmax(np.asarray(test_logits, float) / t)}
    which, bins = r_bins(r_test), r_bin_labels()
    temp["ece_percent"] = {
        f"{rows}_{when}": _pct(temperature.ece(probs[rows], y_cal if rows == "cal" else y_test))
        for when, probs in (("before", raw), ("after", cal)) for rows in ("cal", "test")}
    temp["ece_percent_by_r_test"] = {"before": ece_by_r(raw["test"], y_test, which, bins),
                                     "after": ece_by_r(cal["test"], y_test, which, bins)}
    if sample is not None:
        groups = sorted(set(np.asarray(sample).astype(str)))
        code = np.searchsorted(groups, np.asarray(sample).astype(str))
        temp["ece_percent_by_sample_test"] = {
            when: ece_by_r(probs["test"], y_test, code, groups)
            for when, probs in (("before", raw), ("after", cal))}
    stored = material(cal["cal"], y_cal, labels, temp, record)
    q = conformal.thresholds_from(stored["conformal"], level, labels)
    members = conformal.sets(cal["test"], q)
    sets = {"level": level, "thresholds": dict(zip(labels, q.tolist())),
            "test": conformal.coverage(members, y_test, labels),
            "test_by_r": {lab: conformal.coverage(members[which == k], y_test[which == k], labels)
                          for k, lab in enumerate(bins)},
            "scope": "marginal per true class over rows exchangeable with the calibration rows; "
                     "not guaranteed per r bin"}
    counts = purity.histograms(cal["test"], y_test, len(labels))
    selections = selection_points(stored, counts, labels, priors, cal["test"], y_test)
    return {**stored, "sets": sets, "selections": selections}


def selection_points(stored: dict, test_counts, labels, priors, p_test, y_test,
                     targets=(0.8, 0.9, 0.95)) -> dict:
    """Per class and target purity: the threshold chosen on calibration rows under `priors`
    (the training mix), its expected completeness, and what it gives on the test rows; plus
    the class's test-row curve (every 10th threshold) for the figure."""
    cal_counts = purity.histogram_counts(stored["purity"], labels)
    out = {}
    for c, lab in enumerate(labels):
        points = []
        for target in targets:
            got = purity.threshold_for(cal_counts, c, priors, target)
            if got is None:
                points.append({"target": target, "threshold": None})
                continue
            test = purity.measured(p_test[:, c] >= got["threshold"], y_test, c)
            points.append({"target": target, **got, "test_purity": test["purity"],
                           "test_completeness": test["completeness"]})
        cv = purity.curve(test_counts, c, np.bincount(y_test, minlength=len(labels)) / len(y_test),
                          pseudo=0)  # measured: the test rows' own rates
        step = slice(0, None, 10)
        out[lab] = {"points": points, "test_curve": {
            "threshold": cv["threshold"][step].tolist(),
            "completeness": cv["completeness"][step].tolist(),
            "purity": [None if np.isnan(v) else float(v) for v in cv["purity"][step]]}}
    return out


def run_section(df, split, cfg, arm) -> dict:
    """The calibration section of an in-memory run's report for its student arm."""
    if arm.rows not in STUDENT_ROW_SETS:
        return {"not_available": f"the student trained on {arm.rows!r} rows"}
    row_set = "calibration" if len(split.calibration) else arm.rows
    fraction = split.fractions[2] if len(split.calibration) else cfg.validation_fraction
    positions = calibration_rows(df, split, row_set, fraction, cfg.seed)
    record = rows_record(row_set, fraction, cfg.seed, positions)
    cal, test = df.loc[positions], df.loc[split.test]
    priors = fractions(labels(df.loc[split.student_train]), len(LABELS))
    return section(arm.logits(cal), labels(cal), arm.logits(test), labels(test),
                   test["r"].to_numpy(float), LABELS, record, priors,
                   sample=test[SAMPLE].to_numpy() if SAMPLE in test.columns else None)
