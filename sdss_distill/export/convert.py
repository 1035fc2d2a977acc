"""Keras -> LiteRT flatbuffers: a SavedModel with one signature, the TFLite converter per variant
(float32, float16, dynamic, int8 or 16x8 with a float32 front, fully int8), one calibration
generator.

Shipped student_int8: int8 weights, int16 activations (TFLite 16x8). Quantizing the raw
magnitudes (~11-28 mag) to int8 steps of ~0.07 mag wipes out the colours, and int8 weights
on them do too (the folded first layer's weights nearly cancel), so the student's front
(colours, normalisation, first dense layer) stays float32 and the first quantized tensor is
that layer's ReLU output, in int16.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from sdss_distill.core import tflite_file
from sdss_distill.core.errors import check_signals
from sdss_distill.core.io import quiet_import, quiet_native_stderr
from sdss_distill.core.schema import SIGNATURE, STUDENT_VIEW, get_view
from sdss_distill.core.zphot import HEAD
from sdss_distill.export.fold import FRONT_LAYER, fold_head, fold_student


def saved_model(model, view, directory: Path) -> Path:
    """A SavedModel with one `serving_default` signature: input named after the view, 'logits'."""
    tf = quiet_import("tensorflow")
    keras = quiet_import("keras")
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        SIGNATURE, lambda x: _named(model(x, training=False)),
        input_signature=[tf.TensorSpec([None, len(view.columns)], tf.float32, name=view.name)])
    archive.write_out(str(directory), verbose=False)
    return directory


def _named(out) -> dict:
    """The signature's outputs: 'logits', and the redshift head's (core.zphot.HEAD) if any."""
    return dict(out) if isinstance(out, dict) else {"logits": out}


def calibration(x: np.ndarray, name: str):
    """The representative dataset for int8 calibration: `x` in batches of 50 rows, as the
    converter asks for it (the one calibration generator: export and the QAT child use it)."""
    def gen():
        for k in range(0, len(x), 50):
            yield {name: x[k:k + 50]}
    return gen


def convert(sm_dir: Path, kind: str, calibration=None, front: list[str] | None = None) -> bytes:
    """SavedModel -> TFLite flatbuffer for one variant kind (builtin ops only)."""
    check_signals()
    tf = quiet_import("tensorflow")
    with warnings.catch_warnings(), quiet_native_stderr():  # quantizer prints its options
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        content = _convert(tf, sm_dir, kind, calibration, front)
    check_signals()  # a SIGTERM dropped in a converter __del__ stops export here, not 65 s on
    return content


def _convert(tf, sm_dir, kind, calibration, front):
    c = tf.lite.TFLiteConverter.from_saved_model(str(sm_dir), signature_keys=[SIGNATURE])
    c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if kind != "float32":
        c.optimizations = [tf.lite.Optimize.DEFAULT]
    if kind == "float16":
        c.target_spec.supported_types = [tf.float16]
    if kind in ("int8", "int16", "int8_full"):
        c.representative_dataset = calibration
        c.inference_input_type = c.inference_output_type = tf.float32
    if kind == "int8_full":
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if kind in ("int8", "int16"):  # int16: int8 weights, int16 activations (TFLite 16x8)
        return quantize_selective(c, calibration, front or [], activations=kind)
    return c.convert()


def quantize_selective(converter, calibration, float_nodes: list[str],
                       activations: str = "int8") -> bytes:
    """PTQ of every op except those producing `float_nodes`, which stay float32: int8 weights,
    `activations` "int8" (int32 biases) or "int16" (TFLite 16x8: int16 activations, int8
    weights, int32 biases from this quantizer).

    The debugger calibrates; the MLIR quantizer is then called directly, because the
    debugger's own quantize step drops the converter's 16x8 ops set and per-tensor flag."""
    return quantize_calibrated(converter, calibration, float_nodes, (activations,))[activations]


def quantize_calibrated(converter, calibration, float_nodes: list[str],
                        activations=("int16", "int8")) -> dict[str, bytes]:
    """{activation type: flatbuffer} for each of `activations`, from ONE calibration pass
    (the debugger's calibrated model holds the ranges; only the quantizer's inference type
    differs), so a second candidate costs a quantizer call, not a second calibration."""
    tf = quiet_import("tensorflow")
    from tensorflow.compiler.mlir.lite import types_pb2
    from tensorflow.lite.python import convert as tflite_convert
    bad = [a for a in activations if a not in ("int8", "int16")]
    if bad:
        raise ValueError(f"activations must be 'int8' or 'int16', got {bad[0]!r}")
    options = tf.lite.experimental.QuantizationDebugOptions(
        denylisted_nodes=float_nodes, fully_quantize=False)
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=calibration, debug_options=options)
    per_tensor = getattr(converter, "_experimental_disable_per_channel_quantization_for_dense_layers",
                         False)
    out = {}
    for kind in activations:
        inference = types_pb2.QUANTIZED_INT16 if kind == "int16" else types_pb2.QUANTIZED_INT8
        content = tflite_convert.mlir_quantize(
            debugger.calibrated_model, fully_quantize=False, inference_type=inference,
            denylisted_nodes=float_nodes, disable_per_channel_for_dense_layers=per_tensor)
        out[kind] = int16_zero_points(content) if kind == "int16" else content
    return out


def int16_zero_points(content: bytes) -> bytes:
    """Set every int16 activation's zero point to 0, as TFLite's 16x8 spec requires (LiteRT
    refuses to prepare a FULLY_CONNECTED whose int16 input has another).

    The MLIR quantizer centres a symmetric int16 range on [-32768, 32767], so the zero point
    is round(-0.5 +- float error): 0 or -1 by chance (seed 0, 99.9th-percentile rows: -1 on
    two of three tensors). The kernel writing a tensor adds its zero point and every reader
    subtracts it, so with 0 the stored integers move by one and the values they stand for do
    not; only the clamp at the range's ends moves by one step (~1e-3)."""
    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    for g in model.subgraphs:
        for t in g.tensors:
            q = t.quantization
            if t.type != schema.TensorType.INT16 or q is None or q.zeroPoint is None:
                continue
            if any(abs(int(z)) > 1 for z in q.zeroPoint):
                raise RuntimeError(f"int16 tensor {t.name!r} has zero points {list(q.zeroPoint)}; "
                                   f"expected 0 or +-1 from the symmetric 16x8 quantizer")
            q.zeroPoint = [0] * len(q.zeroPoint)
    builder = flatbuffers.Builder(len(content))
    builder.Finish(model.Pack(builder), file_identifier=tflite_file.IDENTIFIER)
    return bytes(builder.Output())


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
        redshift,
        subclass_head,
    )
    members = ensemble_members(student)
    x = inputs = keras.Input((len(get_view(STUDENT_VIEW).columns),), name=STUDENT_VIEW)
    outputs = []
    for k, member in enumerate(members or [student]):
        prefix = f"m{k}_" if members else ""
        h = hidden = x
        kernels, biases = fold_student(member)
        for j, (w, b) in enumerate(zip(kernels, biases)):
            last = j == len(kernels) - 1
            layer = keras.layers.Dense(w.shape[1], activation=None if last else "relu",
                                       name=prefix + ("logits" if last else f"dense_{j}"))
            hidden, h = h, layer(h)
            layer.set_weights([w, b])
        outputs.append(h)
    out = MeanProbability(name="mean_probability")(outputs) if members else outputs[0]
    head = subclass_head(student)
    if head is not None:  # subclass logits -> class logits, as in the student
        out = SubclassSum(head.per_class, name=head.name)(out)
    z_head = None if members else fold_head(student)
    if z_head is not None:  # the redshift head on the last hidden layer, as in the student
        layer = keras.layers.Dense(1, name=HEAD)
        out = {"logits": out, HEAD: layer(hidden)}
        layer.set_weights(list(z_head))
    model = keras.Model(inputs, out, name="student_folded")
    error = np.abs(logits(model, x_check) - logits(student, x_check)).max()
    if z_head is not None:
        error = max(error, np.abs(redshift(model, x_check) - redshift(student, x_check)).max())
    if error > 1e-3:
        raise RuntimeError(f"folding the student's front changed its outputs by {error:.2g}")
    fronts = [f"m{k}_{FRONT_LAYER}" for k in range(len(members))] if members else [FRONT_LAYER]
    return model, fronts


ACTIVATIONS = "int16"
"""The shipped student_int8's activations after its float32 first layer: TFLite 16x8 (int16
activations, int8 weights). On the default dataset, seeds 0-4, int8 activations missed the
bar (agreement 99.26-99.54 % with the float student, drop up to 0.31 points; the 99.9th
percentile calibration rule of the bright table did not carry over); 16x8 on all
student-train rows gives 99.77-99.93 %, drop -0.09..+0.08 points, 4,040 B
(scripts/int8_levers.py, docs/guide/microcontroller.md)."""


HEAD_ACTIVATIONS = "int8"
"""Ensemble and subclass students keep int8 activations in student_int8: the MLIR quantizer's
16x8 mode fails on their log-sum-exp heads (mean probability, subclass sum): "'tfl.equal' op
failed to verify that comparison op operands have same element type"."""


def student_activations(student) -> str:
    """The activation type of `student`'s shipped student_int8: ACTIVATIONS for a plain MLP,
    HEAD_ACTIVATIONS for an ensemble or a subclass student."""
    from sdss_distill.models.mlp import ensemble_members, subclass_head
    plain = not ensemble_members(student) and subclass_head(student) is None
    return ACTIVATIONS if plain else HEAD_ACTIVATIONS


def int8_student_bytes(student, x_calibration: np.ndarray, activations: str | None = None) -> bytes:
    """A student (plain MLP or ensemble) as its shipped `student_int8` flatbuffer: fronts
    folded and kept float32 (float32 in and out), the rest int8 weights with `activations`
    "int16" (TFLite 16x8) or "int8" (default: `student_activations`), calibrated on
    `x_calibration` (raw magnitudes, the student-train rows); built in a temp dir, native
    logs silenced."""
    kind = activations or student_activations(student)
    return int8_candidates(student, x_calibration, (kind,))[kind]


def int8_candidates(student, x_calibration: np.ndarray, activations=None) -> dict[str, bytes]:
    """{activation type: flatbuffer} of the student's PTQ files with a float32 front, from one
    folded SavedModel and one calibration pass. Default `activations`: both int16 (16x8) and
    int8 for a plain MLP; int8 alone for an ensemble or subclass student (HEAD_ACTIVATIONS)."""
    quiet_import("tensorflow")
    view = get_view(STUDENT_VIEW)
    x = np.asarray(x_calibration, "float32")
    kinds = tuple(activations or (("int16", "int8") if student_activations(student) == ACTIVATIONS
                                  else (HEAD_ACTIVATIONS,)))
    if any(k not in ("int8", "int16") for k in kinds):
        raise ValueError(f"activations must be 'int8' or 'int16', got {activations!r}")
    tf = quiet_import("tensorflow")
    with tempfile.TemporaryDirectory(prefix="sdss-int8-") as tmp, quiet_native_stderr():
        folded, fronts = folded_student(student, x)
        sm = saved_model(folded, view, Path(tmp) / "folded_sm")
        front = tflite_file.front_nodes(convert(sm, "float32"), fronts)
        c = tf.lite.TFLiteConverter.from_saved_model(str(sm), signature_keys=[SIGNATURE])
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.representative_dataset = calibration(x, view.name)
        c.inference_input_type = c.inference_output_type = tf.float32
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
            files = quantize_calibrated(c, c.representative_dataset, front, kinds)
        return {k: tflite_file.shrink(v) for k, v in files.items()}
