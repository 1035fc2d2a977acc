"""Keras -> LiteRT flatbuffers: a SavedModel with one signature, the TFLite converter per variant
(float32, float16, dynamic, int8 with a float32 front, fully int8), one calibration generator.

Int8 student: quantizing the raw magnitudes (~11-28 mag) to int8 steps of ~0.07 mag wipes
out the colours, so the student's front (colours, normalisation, first dense layer) stays
float32 and the first int8 tensor is that layer's ReLU output.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np

from sdss_distill.core import tflite_file
from sdss_distill.core.io import quiet_import, quiet_native_stderr
from sdss_distill.core.schema import SIGNATURE, STUDENT_VIEW, get_view
from sdss_distill.export.fold import FRONT_LAYER, fold_student


def saved_model(model, view, directory: Path) -> Path:
    """A SavedModel with one `serving_default` signature: input named after the view, 'logits'."""
    tf = quiet_import("tensorflow")
    keras = quiet_import("keras")
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        SIGNATURE, lambda x: {"logits": model(x, training=False)},
        input_signature=[tf.TensorSpec([None, len(view.columns)], tf.float32, name=view.name)])
    archive.write_out(str(directory), verbose=False)
    return directory


def calibration(x: np.ndarray, name: str):
    """The representative dataset for int8 calibration: `x` in batches of 50 rows, as the
    converter asks for it (the one calibration generator: export and the QAT child use it)."""
    def gen():
        for k in range(0, len(x), 50):
            yield {name: x[k:k + 50]}
    return gen


def convert(sm_dir: Path, kind: str, calibration=None, front: list[str] | None = None) -> bytes:
    """SavedModel -> TFLite flatbuffer for one variant kind (builtin ops only)."""
    tf = quiet_import("tensorflow")
    with warnings.catch_warnings(), quiet_native_stderr():  # quantizer prints its options
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        return _convert(tf, sm_dir, kind, calibration, front)


def _convert(tf, sm_dir, kind, calibration, front):
    c = tf.lite.TFLiteConverter.from_saved_model(str(sm_dir), signature_keys=[SIGNATURE])
    c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if kind != "float32":
        c.optimizations = [tf.lite.Optimize.DEFAULT]
    if kind == "float16":
        c.target_spec.supported_types = [tf.float16]
    if kind in ("int8", "int8_full"):
        c.representative_dataset = calibration
        c.inference_input_type = c.inference_output_type = tf.float32
    if kind == "int8_full":
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if kind == "int8":
        return quantize_selective(c, calibration, front or [])
    return c.convert()


def quantize_selective(converter, calibration, float_nodes: list[str]) -> bytes:
    """Full-int8 PTQ except the ops producing `float_nodes`, which stay float32."""
    tf = quiet_import("tensorflow")
    options = tf.lite.experimental.QuantizationDebugOptions(
        denylisted_nodes=float_nodes, fully_quantize=False)
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=calibration, debug_options=options)
    return debugger.get_nondebug_quantized_model()


def folded_student(student, x_check: np.ndarray):
    """The student as plain Keras Dense layers on raw magnitudes: each MLP's front (colours,
    normalisation) folded into its first Dense layer; an ensemble's members side by side
    (layers `m<k>_dense_<j>`) under its `MeanProbability`; a subclass student keeps its
    `SubclassSum` head (subclass logits -> 3 class logits). Returns the model and the names of
    its first Dense layers (the ones that read raw magnitudes)."""
    keras = quiet_import("keras")
    from sdss_distill.models.mlp import (
        MeanProbability,
        SubclassSum,
        ensemble_members,
        logits,
        subclass_head,
    )
    members = ensemble_members(student)
    x = inputs = keras.Input((len(get_view(STUDENT_VIEW).columns),), name=STUDENT_VIEW)
    outputs = []
    for k, member in enumerate(members or [student]):
        prefix = f"m{k}_" if members else ""
        h = x
        kernels, biases = fold_student(member)
        for j, (w, b) in enumerate(zip(kernels, biases)):
            last = j == len(kernels) - 1
            layer = keras.layers.Dense(w.shape[1], activation=None if last else "relu",
                                       name=prefix + ("logits" if last else f"dense_{j}"))
            h = layer(h)
            layer.set_weights([w, b])
        outputs.append(h)
    out = MeanProbability(name="mean_probability")(outputs) if members else outputs[0]
    head = subclass_head(student)
    if head is not None:  # subclass logits -> class logits, as in the student
        out = SubclassSum(head.per_class, name=head.name)(out)
    model = keras.Model(inputs, out, name="student_folded")
    error = np.abs(logits(model, x_check) - logits(student, x_check)).max()
    if error > 1e-3:
        raise RuntimeError(f"folding the student's front changed its logits by {error:.2g}")
    fronts = [f"m{k}_{FRONT_LAYER}" for k in range(len(members))] if members else [FRONT_LAYER]
    return model, fronts


CALIBRATION_PERCENTILE = 99.9
"""int8 calibration leaves out the 0.1 % of rows with the largest activation in any hidden
layer: the converter sets each int8 range to the calibration maximum, and those few rows
stretched it (a coarser step for every row). Seeds 0-4: drop -0.15..+0.35 -> -0.05..+0.05 points,
agreement 99.30-99.65 % -> 99.85-100 % (scripts/int8_levers.py, docs/microcontroller.md)."""


def calibration_rows(student, x: np.ndarray, percentile: float = CALIBRATION_PERCENTILE) -> np.ndarray:
    """The rows of `x` whose largest activation in every hidden layer of every member (the
    front folded in, float64) is at most that layer's `percentile` over `x`."""
    from sdss_distill.models.mlp import ensemble_members
    keep = np.ones(len(x), bool)
    for member in ensemble_members(student) or [student]:
        kernels, biases = fold_student(member)
        h = np.asarray(x, "float64")
        for w, b in zip(kernels[:-1], biases[:-1]):
            h = np.maximum(h @ w + b, 0.0)
            top = h.max(axis=1)
            keep &= top <= np.percentile(top, percentile)
    return np.asarray(x)[keep]


def int8_student_bytes(student, x_calibration: np.ndarray) -> bytes:
    """A student (plain MLP or ensemble) as its shipped int8 flatbuffer: fronts folded and kept
    float32 (float32 in and out), the rest int8, calibrated on `calibration_rows` of
    `x_calibration` (raw magnitudes, the student-train rows); built in a temp dir, native
    logs silenced."""
    quiet_import("tensorflow")
    view = get_view(STUDENT_VIEW)
    x = calibration_rows(student, np.asarray(x_calibration, "float32"))
    with tempfile.TemporaryDirectory(prefix="sdss-int8-") as tmp, quiet_native_stderr():
        folded, fronts = folded_student(student, x)
        sm = saved_model(folded, view, Path(tmp) / "folded_sm")
        front = tflite_file.front_nodes(convert(sm, "float32"), fronts)
        return tflite_file.shrink(convert(sm, "int8", calibration(x, view.name), front))
