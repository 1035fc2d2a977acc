"""The C classifier's arithmetic in numpy: what sdss_student.c computes (TFLite Micro's double
rounding) or a single-rounding requantization (LiteRT's), for int8 or int16 (16x8)
activations; for tests, diagnosis and export.json."""

from __future__ import annotations

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from sdss_distill.core.errors import InputError
from sdss_distill.core.io import quiet_native_stderr
from sdss_distill.core.schema import SIGNATURE, STUDENT_VIEW
from sdss_distill.export.mcu import MCU_DIR, Emitter
from sdss_distill.export.mcu_graph import (
    ACTIVATIONS,
    INT_RANGES,
    fc_multipliers,
    quantized_activation_range,
)

NP_INT = {"INT8": np.int8, "INT16": np.int16}


def _requantize(acc: np.ndarray, mult: np.ndarray, shift: np.ndarray, rounding: str) -> np.ndarray:
    """int64 accumulators times Q31 multipliers: TFLite Micro's double rounding (gemmlowp) or
    the single rounding of TFLite builds with TFLITE_SINGLE_ROUNDING (LiteRT's wheel)."""
    if rounding == "single":
        total = 31 - shift
        return (acc * mult + (np.int64(1) << (total - 1))) >> total
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    ab = (acc << left) * mult
    v = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    high = np.where(v >= 0, v // (1 << 31), -((-v) // (1 << 31)))  # C division truncates
    mask = (np.int64(1) << right) - 1
    threshold = (mask >> 1) + (high < 0)
    return (high >> right) + ((high & mask) > threshold)


def simulate(content: bytes, x: np.ndarray, *, rounding: str = "double",
             trace: dict | None = None) -> np.ndarray:
    """The graph's outputs for rows `x`, in numpy with the C kernels' arithmetic: float32
    products and sums in the same order, the same multipliers; `rounding` "double" (TFLite
    Micro, the C code) or "single" (LiteRT's int8 requantization). `trace`, a dict, receives
    every tensor's value by tensor index. For tests and diagnosis."""
    em = Emitter(content)
    values = {em.input.index: np.asarray(x, np.float32)}
    for name, op in em.ops:
        ins, y = em._io(op)
        a = values[ins[0].index] if ins[0].data is None else ins[0].data
        if name == "QUANTIZE":
            v = np.clip(a / y.scale, -131072, 131072)
            q = np.trunc(v)
            q = q + ((v - q) >= 0.5) - ((v - q) <= -0.5) + y.zero_point
            out = np.clip(q, *INT_RANGES[y.type]).astype(NP_INT[y.type])
        elif name == "DEQUANTIZE":
            out = (float(ins[0].scale) * (a.astype(np.float64) - ins[0].zero_point)).astype(np.float32)
        elif name == "FULLY_CONNECTED" and y.type == "FLOAT32":
            w, b = ins[1].data.reshape(y.shape[-1], -1), (ins[2:] or [None])[0]
            acc = np.zeros((len(a), w.shape[0]), np.float32)
            for d in range(w.shape[1]):
                acc = acc + a[:, d:d + 1] * w[None, :, d]
            acc = acc + (b.data if b is not None else np.float32(0))
            lo, hi = {"NONE": (-np.inf, np.inf), "RELU": (0, np.inf), "RELU6": (0, 6),
                      "RELU_N1_TO_1": (-1, 1)}[ACTIVATIONS[op.builtinOptions.fusedActivationFunction]]
            out = np.clip(acc, np.float32(lo), np.float32(hi)).astype(np.float32)
        elif name == "FULLY_CONNECTED":
            w, b = ins[1], (ins[2:] or [None])[0]
            weights = w.data.reshape(y.shape[-1], -1).T.astype(np.int64)
            acc = (a.astype(np.int64) - ins[0].zero_point) @ weights
            acc = acc + (b.data.astype(np.int64) if b is not None else 0)
            mult, shift = (np.array(v, np.int64) for v in fc_multipliers(ins[0], w, y))
            lo, hi = quantized_activation_range(op.builtinOptions.fusedActivationFunction, y.scale,
                                                y.zero_point, y.type)
            q = _requantize(acc, mult, shift, rounding) + y.zero_point
            out = np.clip(q, lo, hi).astype(NP_INT[y.type])
        else:
            raise InputError(f"simulate: operator {name} is not supported")
        values[y.index] = out
    if trace is not None:  # every tensor's value, by tensor index (for diagnosis)
        trace.update(values)
    return values[em.output.index]


def evaluate(content: bytes, x: np.ndarray, y: np.ndarray, keras_logits: np.ndarray) -> dict:
    """What export.json records about the C classifier: its scores (TFLite Micro's, through
    `simulate`) scored on the test rows against the labels, the Keras model and LiteRT."""
    scores = simulate(content, x)
    pred, keras = scores.argmax(1), keras_logits.argmax(1)
    with quiet_native_stderr(replay_on_error=False):
        runner = Interpreter(model_content=content, num_threads=1).get_signature_runner(SIGNATURE)
    litert = runner(**{STUDENT_VIEW: np.asarray(x, np.float32)})["logits"].argmax(1)
    return {"files": f"{MCU_DIR}/", "source": "tflite/student_int8.tflite",
            "arithmetic": "TFLite Micro reference kernels (double-rounding requantization)",
            "test_accuracy": float((pred == y).mean()),
            "accuracy_drop_points": 100 * float((keras == y).mean() - (pred == y).mean()),
            "agreement": float((pred == keras).mean()),
            "agreement_with_litert": float((pred == litert).mean())}
