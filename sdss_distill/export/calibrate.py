"""Calibration in an export (issue 24): the run's temperature folded into the student's
class-logit layer before conversion, each student file's calibration material (conformal
scores and purity histograms from THAT file's outputs on the run's calibration rows) in its
card, and export.json's prediction-set coverage of student_int8 on the test rows.

The calibration rows and T come from the run's report (runs.calibration): the rows are drawn
again from the run's table and split and checked against the report's digest, so the card's
material is from the same rows the run report describes, and never from test rows.
"""

from __future__ import annotations

import numpy as np

from sdss_distill.core import conformal
from sdss_distill.core.io import read_json
from sdss_distill.core.prob import softmax
from sdss_distill.core.schema import LABELS, STUDENT, STUDENT_VIEW, get_view
from sdss_distill.data.table import features, labels
from sdss_distill.distill.population import r_bin_labels, r_bins
from sdss_distill.models.mlp import load_run_model
from sdss_distill.runs import calibration as cb

NO_MATERIAL = ("the run's report has no calibration section (a streamed run, or one trained "
               "before prediction sets existed): no sets or purity selections from this file")


def fold_temperature(student, t: float) -> str | None:
    """Divide a plain-MLP student's class-logit layer ("logits": kernel and bias) by T in
    place, so its logits become the old ones / T; any other layer (a redshift head) is
    untouched. Returns why it cannot be folded, or None. (Pass a fresh copy: keras's
    clone_model does not carry the student's custom front over intact.)"""
    if "logits" not in [layer.name for layer in student.layers]:
        return "the student has no single 'logits' Dense layer (ensemble or subclass)"
    layer = student.get_layer("logits")
    if not any(out is layer.output for out in student.outputs):
        return "its 'logits' layer is not a model output (subclass logits are summed after it)"
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel / np.float32(t), bias / np.float32(t)])
    return None


class ExportCalibration:
    """The run's calibration rows and temperature, ready for an export."""

    def __init__(self, run):
        report = read_json(run.layout.report_json, fix="train the run again")
        section = report.get("calibration") if isinstance(report, dict) else None
        self.reason = NO_MATERIAL if not section or "rows" not in section else None
        if self.reason:
            return
        rows = run.rows
        record = section["rows"]
        positions = cb.calibration_rows(rows.df, rows.split, record["row_set"],
                                        float(record["fraction"]), int(record["seed"]))
        cb.check_rows(record, positions, run.layout.report_json)
        cal = rows.df.loc[positions]
        self.x, self.y, self.record = features(cal, run.student_view), labels(cal), record
        self.temperature = dict(section["temperature"])
        self.folded = None

    def fold(self, run) -> None:
        """Replace run.student by its temperature-scaled copy (when T was applied)."""
        if self.reason or not self.temperature.get("applied"):
            return
        fresh = load_run_model(run.layout.model(STUDENT))  # the caller's model stays as trained
        why = fold_temperature(fresh, float(self.temperature["temperature"]))
        if why is None:
            run.student = fresh
        self.folded = why is None
        self.temperature["folded"] = ("into the class-logit layer's kernel and bias before "
                                      "conversion" if why is None else f"not folded: {why}")

    def card(self, logits_of) -> dict:
        """A student card's `calibration`: the material from the file's own outputs on the
        calibration rows (`logits_of(x)`), or why there is none."""
        if self.reason:
            return {"not_available": self.reason}
        p = softmax(logits_of(self.x))
        return cb.material(p, self.y, LABELS, self.temperature, self.record)


def set_coverage(card_calibration: dict, logits: np.ndarray, y: np.ndarray, r: np.ndarray,
                 level: float = conformal.DEFAULT_LEVEL) -> dict:
    """export.json's `sets`: coverage per class, per r bin and mean set size of a file's sets
    (its card's thresholds) on the test rows."""
    if "conformal" not in card_calibration:
        return {"not_available": card_calibration.get("not_available")}
    q = conformal.thresholds_from(card_calibration["conformal"], level, LABELS)
    members = conformal.sets(softmax(logits), q)
    which = r_bins(r)
    return {"level": level, "thresholds": dict(zip(LABELS, q.tolist())),
            "test": conformal.coverage(members, y, LABELS),
            "test_by_r": {lab: conformal.coverage(members[which == k], y[which == k], LABELS)
                          for k, lab in enumerate(r_bin_labels())},
            "temperature": card_calibration["temperature"]}


def r_of(x: np.ndarray) -> np.ndarray:
    """The r magnitude column of rows in the student's view."""
    return x[:, list(get_view(STUDENT_VIEW).columns).index("r")]
