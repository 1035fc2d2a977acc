"""What export reads: one verified version of a run (its Keras models, config and rows), and
the model card written next to every .tflite file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sdss_distill import __version__
from sdss_distill.core import zphot
from sdss_distill.core.bounded import load_json
from sdss_distill.core.cli import program
from sdss_distill.core.domain import domain
from sdss_distill.core.errors import InputError
from sdss_distill.core.io import sha256_bytes, sha256_file
from sdss_distill.core.prob import fractions
from sdss_distill.core.schema import LABELS, SIGNATURE, STUDENT, STUDENT_VIEW, TEACHER, get_view
from sdss_distill.core.zphot import HEAD
from sdss_distill.data.table import features, labels, validation_slice
from sdss_distill.edge.classifier import EdgeClassifier, interpreter
from sdss_distill.export.mcu_graph import output_names
from sdss_distill.models.mlp import has_z_head, load_run_model
from sdss_distill.runs import rows as run_rows
from sdss_distill.runs.rundir import Layout


class RunData:
    """One verified version of a run: its models (with their SHA-256), config and rows
    (student-train and test) in each model's view."""

    def __init__(self, run, data: str | None = None, *, rows=None, models: dict | None = None):
        """`rows` (a runs.rows.RunRows) and `models` (name -> Keras model), when the caller has
        just trained and saved them (`train --export`), are used instead of reading them back;
        the saved model files are still hashed for the cards."""
        rows = rows if rows is not None else run_rows.load_run_rows(run, data)
        self.layout: Layout = rows.layout
        self.dir = self.layout.root if isinstance(run, Layout) else Path(run)
        self.run_id = self.layout.run_id
        self.config, self.data_path, self.data_sha256 = rows.config, rows.path, rows.sha256
        self.student_view = get_view(STUDENT_VIEW)
        self.teacher_view = get_view(self.config["teacher_view"])
        df, split = rows.df, rows.split
        train, test = df.loc[split.student_train], df.loc[split.test]
        self.x_train = {v.name: features(train, v) for v in (self.student_view, self.teacher_view)}
        self.x_test = {v.name: features(test, v) for v in (self.student_view, self.teacher_view)}
        self.y_train, self.y_test = labels(train), labels(test)
        dev = df.loc[split.rows("non_test")]
        self.x_dev, self.y_dev = features(dev, self.student_view), labels(dev)
        """The non-test rows in the student's view: what export chooses student_int8 on."""
        self.rows = rows
        """The run's rows (runs.rows.RunRows): export.calibrate draws the calibration rows."""
        self.model_sha256 = {}
        self.student, self.teacher = (self._load(name, (models or {}).get(name))
                                      for name in (STUDENT, TEACHER))
        self.zphot = _zphot(self.layout, self.student, split)
        """The student's redshift head for its cards ({output, target, error_scale, ...}), or
        None for a student without one."""
        self.z_dev = _z_dev(df, split, self.config, self.zphot) if self.zphot else None
        """(x, z_spec) of the galaxies k of z_phot_err is fitted on (`_z_dev`): each file's
        own k is fitted on them (`file_zphot`)."""

    def _load(self, name: str, model=None):
        path = self.layout.model(name)
        if not path.is_file():
            raise InputError(f"{path}: missing; not a complete training run, train it again "
                             f"with {program('train')} --out DIR")
        self.model_sha256[name] = sha256_file(path)
        return model if model is not None else load_run_model(path)

    def source(self, name: str) -> dict:
        """What a card or export.json records about the Keras model a file was converted from."""
        return {"model": f"models/{name}.keras", "model_sha256": self.model_sha256[name]}


def model_card(run: RunData, stem: str, view, description: str, extra: dict | None = None, *,
               run_id: str | None = None, content: bytes | None = None) -> dict:
    """The JSON card shipped next to a .tflite file: input, labels, domain and provenance
    (run id, SHA-256 of the Keras model converted and of the .tflite file itself)."""
    source = TEACHER if stem.startswith(TEACHER) else STUDENT
    return {"model": f"{stem}.tflite", "variant": description, "signature": SIGNATURE,
            **({"sha256": sha256_bytes(content)} if content is not None else {}),
            "input": {"name": view.name, "columns": list(view.columns), "dtype": "float32",
                      "units": "SDSS model magnitudes (raw, not normalised)"},
            "output": {"name": "logits", "labels": list(LABELS),
                       "note": "logits; softmax gives class probabilities"},
            "labels": list(LABELS), "domain": domain(run.x_train[view.name], view.columns),
            # class fractions the model learnt (stratified split: the same in every subset);
            # score --priors em/FILE re-weights by target / these
            "priors": {"rows": "student_train", "n": int(len(run.y_train)), "fractions": dict(
                zip(LABELS, fractions(run.y_train, len(LABELS)).tolist()))},
            "source": {"run": str(run.dir), "run_id": run_id, **run.source(source),
                       "data_sha256": run.data_sha256, "sdss_distill": __version__},
            **({"zphot": file_zphot(run, content)} if run.zphot and source == STUDENT
               and _has_z(content) else {}),
            **(extra or {})}


def _has_z(content: bytes | None) -> bool:
    """Whether a .tflite file outputs the redshift head (by its signature's output names);
    the QAT and pruned files, built from the class head alone, do not."""
    return content is not None and HEAD in output_names(content).values()


def _zphot(layout: Layout, student, split) -> dict | None:
    """The card's `zphot` entry: the head's output name and target, and z_phot_err's k as the
    run fitted it (report.json; on `split.calibrating`'s galaxies); None without a head."""
    if not has_z_head(student):
        return None
    fix = "train the run again"
    report = load_json(layout.report_json, fix=fix)
    try:
        k = float(report["models"][STUDENT]["zphot"]["error_scale"])
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{layout.report_json}: the student has a redshift head but the report "
                         f"has no models.student.zphot.error_scale; {fix}") from None
    return {"output": zphot.HEAD, "target": zphot.TRANSFORM, "error_scale": k,
            "error_rule": "z_phot_err = error_scale * (1 + z_phot)",
            "error_coverage": zphot.COVERAGE, "rows": report["models"][STUDENT]["rows"],
            "fitted_on": fitted_on(split)}


def fitted_on(split) -> str:
    """Which rows k of z_phot_err is fitted on, for the cards (as Split.calibrating picks)."""
    return ("the split's calibration slice, galaxies" if len(split.calibration)
            else "the student's early-stopping rows (non-test), galaxies")


def _z_dev(df, split, config: dict, entry: dict) -> tuple[np.ndarray, np.ndarray]:
    """The galaxies k of z_phot_err was fitted on (Split.calibrating: the calibration
    slice, else the student's early-stopping rows as Workspace.fit_rows drew them): inputs,
    z_spec."""
    _, val = validation_slice(df, split.rows(entry["rows"]), config["validation_fraction"],
                              config["seed"])
    gal = df.loc[split.calibrating(val)]
    gal = gal[labels(gal) == LABELS.index("GALAXY")]
    return features(gal, get_view(STUDENT_VIEW)), gal["redshift"].to_numpy("float64")


def file_zphot(run: RunData, content: bytes) -> dict:
    """A file's card entry: the run's, with k refitted on this file's own z_phot (quantization
    moves it) over the same galaxies (`_z_dev`: the calibration slice's, else the
    early-stopping rows'), so the band covers 68 % of them for the file that ships;
    `keras_error_scale` is the run's k, for the Keras student."""
    x, z_spec = run.z_dev
    runner = interpreter(content, "student", 1).get_signature_runner(SIGNATURE)
    z, _ = zphot.decode32(runner(**{STUDENT_VIEW: x})[zphot.HEAD][:, 0], 0.0)
    entry = {k: v for k, v in run.zphot.items() if k != "rows"}
    return {**entry, "error_scale": zphot.error_scale(z.astype("float64"), z_spec),
            "keras_error_scale": run.zphot["error_scale"],
            "fitted_on": f"this file's z_phot on {run.zphot['fitted_on']}"}


def shipped_zphot(run: RunData, path: Path) -> dict | None:
    """A file's photometric redshift on the run's test rows as a user gets it (the edge
    runtime's z_phot and z_phot_err, with the k of its card): per class {n, sigma_nmad, bias,
    outliers, coverage}; None for a file without a redshift head. Export reports
    student_int8's, so the shipped file's coverage is measured, not assumed from its k."""
    clf = EdgeClassifier(path)
    if clf.z_name is None:
        return None
    p = clf.predict(run.x_test[run.student_view.name])
    z_spec = run.rows.df.loc[run.rows.split.test, "redshift"].to_numpy("float64")
    out = {"file": path.stem, "error_scale": clf.z_scale,
           "fitted_on": clf.card["zphot"]["fitted_on"]}
    for i, name in enumerate(LABELS):
        m = (run.y_test == i) & p.ok
        z = p.z_phot[m].astype("float64")
        q = zphot.quality(z, z_spec[m])
        q["coverage"] = float((np.abs(z - z_spec[m]) <= p.z_phot_err[m]).mean()) if m.any() \
            else float("nan")
        out[name] = q
    return out
