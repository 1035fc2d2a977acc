"""A run's Keras student behind the edge classifier's checks, for `Run.predict` (api.py) on a
run that has not been exported.

Its own module because it needs Keras and pandas: the API imports it on first use, after
`quiet_import("keras")` silences TensorFlow's start-up lines, so `import sdss_distill` and
`sd.load` stay light (tests/test_api.py).
"""

from __future__ import annotations

import numpy as np

from sdss_distill.core.bounded import load_json
from sdss_distill.core.domain import domain
from sdss_distill.core.errors import InputError
from sdss_distill.core.schema import LABELS, STUDENT, STUDENT_VIEW, get_view
from sdss_distill.core.zphot import HEAD
from sdss_distill.data.table import features
from sdss_distill.edge.classifier import EdgeClassifier
from sdss_distill.models.mlp import has_z_head, load_run_model, logits, redshift
from sdss_distill.runs.rows import load_run_rows

CHUNK = 65_536
"""Rows per Keras call when predicting."""


class KerasStudent(EdgeClassifier):
    """A run's Keras student behind the edge classifier's checks: the same column matching,
    value checks, in-domain flag (the training rows' ranges, as an export's model card
    records them) and probabilities; only the model call differs."""

    def __init__(self, layout):
        self.path = layout.model(STUDENT)
        self.model = load_run_model(self.path)  # safe_mode; errors name the file
        try:  # the run's own table, checked by SHA-256: its student-train rows give the domain
            rows = load_run_rows(layout)
        except InputError as e:
            raise InputError(f"predict with the Keras student (the run is not exported) needs "
                             f"the run's table for its training domain: {e}") from None
        view = get_view(STUDENT_VIEW)
        train_x = features(rows.df.loc[rows.split.student_train], view)
        self.setup(view.columns, LABELS, domain(train_x, view.columns))
        self._z_last: list[np.ndarray] = []
        self.z_name, self.z_scale = _keras_z(layout, self.model)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """The Keras student's logits, `CHUNK` rows per call (its redshift head's output kept
        for `_attach_z`)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        self._z_last = []
        if not len(x):
            return np.zeros((0, len(self.labels)), np.float32)
        chunks = [x[k:k + CHUNK] for k in range(0, len(x), CHUNK)]
        if self.z_name is not None:
            self._z_last = [redshift(self.model, c).astype(np.float32) for c in chunks]
        return np.concatenate([logits(self.model, c) for c in chunks])

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        return self.logits(x)


def _keras_z(layout, model) -> tuple[str | None, float]:
    """(the redshift head's name or None, z_phot_err's k from the run's report)."""
    if not has_z_head(model):
        return None, float("nan")
    report = load_json(layout.report_json, fix="train the run again")
    return HEAD, float(report["models"][STUDENT]["zphot"]["error_scale"])

