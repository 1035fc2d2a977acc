"""The Python API: train, load, predict with and export a run from Python, as the commands do.

    import sdss_distill as sd
    run = sd.train(data="faint", out="runs/faint", seed=0)   # as `sdss-distill train`
    run = sd.load("runs/faint")                               # any run directory
    run.report                                                # reports/report.json, a dict
    df = run.predict(table)     # DataFrame (columns matched by name) or array of u g r i z
    run.export(mcu=True)        # as `sdss-distill export --mcu`

Nothing here is a second pipeline: `sd.train` (sdss_distill.train.train) resolves its
settings with the command line's `make_config` and runs `sdss_distill.train.run`; `export` is
`export_run`; `predict` is the edge runtime's `EdgeClassifier` (the exported student_int8),
or the same checks around the Keras student when the run has not been exported. Errors are
`InputError`s (a `ValueError`) whose message is one line naming the value and the fix.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sdss_distill.core.errors import InputError
from sdss_distill.core.io import quiet_import, read_json
from sdss_distill.core.schema import STUDENT
from sdss_distill.edge import sets as edge_sets
from sdss_distill.edge.classifier import EdgeClassifier, card_path
from sdss_distill.runs.rundir import RunDir

SHIPPED = "student_int8"
"""The exported file `predict` uses when the run has one (tflite/student_int8.tflite)."""


def load(path, *, quiet: bool = False) -> Run:
    """The run at `path` (a run directory from `train`, the command line or the notebooks),
    verified against its manifest. `quiet`: no line saying which model `predict` uses."""
    return Run(path, quiet=quiet)


class Run:
    """A trained run: its report, config and models, a `predict` and an `export`.

    Every property reads the version the run path names at that moment, verified, so a run
    exported (or trained again) since `load` is seen as it is now.
    """

    def __init__(self, path, *, quiet: bool = False):
        self.path = Path(path)
        self.quiet = quiet
        self.predict_source: str | None = None
        """Which model `predict` used: 'tflite/student_int8.tflite' or 'models/student.keras'
        (None before the first call)."""
        self._predictor = None
        self._predictor_id = None
        self.layout()  # fails now, with one line, if `path` is not a run

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def layout(self):
        """The run's current version (runs.rundir.Layout), verified against its manifest."""
        return RunDir(self.path).current()

    @property
    def report(self) -> dict:
        """reports/report.json: every arm's test metrics, the config, the data, timings."""
        return read_json(self.layout().report_json, keys=("models",))

    @property
    def config(self) -> dict:
        """The resolved settings the run was trained with (run.json's `config`)."""
        return read_json(self.layout().run_json, keys=("config",))["config"]

    @property
    def export_report(self) -> dict | None:
        """reports/export.json after an export (every file's size, accuracy, latency), else None."""
        path = self.layout().export_json
        return read_json(path) if path.is_file() else None

    def export(self, *, mcu: bool = False, finetune: bool = True, quiet: bool | None = None,
               **options) -> dict:
        """Convert the run to LiteRT as `sdss-distill export` does (a new version of the run);
        `mcu`: also the C99 sources. `options` go to `export.run.export_run` (`invokes`,
        `threads`, `data`). Returns export.json's content."""
        quiet_import("keras")  # its native start-up lines, before export.run imports it
        from sdss_distill.export.run import export_run
        quiet = self.quiet if quiet is None else quiet
        report = export_run(self.path, quiet=quiet, finetune=finetune, mcu=mcu, **options)
        self._predictor = None  # the next predict picks the exported student
        return report

    def predict(self, table, sets=None):
        """Classify rows of u g r i z: a pandas DataFrame (columns matched by name, as the
        command lines match them: SDSS aliases such as `psfMag_r` too) or an (n, 5) array.

        Returns a DataFrame with one row per input row (the DataFrame's index kept): `class`,
        `p_GALAXY`, `p_QSO`, `p_STAR`, `in_domain` (inside the training rows' magnitude and
        colour ranges) and `quality` ('' for a good row; else why the row was not classified,
        its class '' and probabilities NaN); with the default student's redshift head also
        `z_phot` and `z_phot_err` (NaN for a row not classified). Uses
        tflite/student_int8.tflite when the run was exported, else models/student.keras;
        `predict_source` says which. `sets=LEVEL` (e.g. 0.9) adds `set`: the row's conformal
        prediction set, class names joined by '+' ('' for an empty set), from the exported
        file's card (an unexported run cannot: export it).
        """
        import pandas as pd
        clf = self._classifier()
        q = None
        if sets is not None:
            card = getattr(clf, "card", None) if isinstance(clf, EdgeClassifier) else None
            if card is None:
                raise InputError(f"{self.path}: sets come from the exported student's card; "
                                 f"export the run first (run.export())")
            q = edge_sets.thresholds(card, card_path(clf.path), sets, clf.labels)
        result = clf.predict(table)
        index = table.index if isinstance(table, pd.DataFrame) else None
        columns = {"class": result.classes,
                   **{f"p_{label}": result.probabilities[:, k]
                      for k, label in enumerate(result.labels)},
                   "in_domain": result.in_domain, "quality": result.quality}
        if result.z_phot is not None:
            columns.update(z_phot=result.z_phot, z_phot_err=result.z_phot_err)
        if q is not None:
            columns["set"] = edge_sets.names(result.probabilities, q, result.labels)
        return pd.DataFrame(columns, index=index)

    def _classifier(self) -> EdgeClassifier:
        """The exported student if there is one, else the Keras student; built (and the version
        verified) once per version: a call reads only where the run path points, so a loop of
        one-row calls does not hash the run's files each time."""
        key = os.readlink(self.path) if self.path.is_symlink() else None
        if self._predictor is not None and self._predictor_id == key:
            return self._predictor
        layout = self.layout()
        shipped = layout.tflite_file(SHIPPED)
        if shipped.is_file():
            self._predictor = EdgeClassifier(shipped)
            source = f"tflite/{shipped.name}"
        else:
            quiet_import("keras")  # its native start-up lines, before models.mlp imports it
            from sdss_distill.runs.keras_student import KerasStudent
            self._predictor = KerasStudent(layout)
            source = f"models/{STUDENT}.keras"
        self._predictor_id = key
        if source != self.predict_source and not self.quiet:
            why = "the exported student" if shipped.is_file() else "not exported yet"
            print(f"sdss_distill: {self.path}: predicting with {source} ({why})", file=sys.stderr)
        self.predict_source = source
        return self._predictor


