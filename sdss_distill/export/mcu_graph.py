"""A .tflite graph as the C generator and its numpy model read it, and TFLite's quantization
arithmetic done at export time (Q31 multipliers, activation ranges), as TFLite Micro's Prepare
does it. numpy and ai_edge_litert's flatbuffer schema only (no TensorFlow)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from sdss_distill.core.errors import InputError

ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}
INT_RANGES = {"INT8": (-128, 127), "INT16": (-32768, 32767)}
"""Quantized activation types the generator implements, with their value ranges."""
INT8_MIN, INT8_MAX = INT_RANGES["INT8"]
CTYPES = {"FLOAT32": ("float", "<f4"), "INT8": ("int8_t", "i1"), "INT16": ("int16_t", "<i2"),
          "INT32": ("int32_t", "<i4"), "INT64": ("int64_t", "<i8")}
"""Tensor types the generator reads: C type, numpy dtype (int64 only to refuse it by name)."""


def _schema():
    return schema


def round_half_away(x: float) -> int:
    """C's round(): to the nearest integer, halves away from zero (TfLiteRound)."""
    t = math.trunc(x)
    frac = x - t
    return t + (1 if frac >= 0.5 else -1 if frac <= -0.5 else 0)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: `real` as a Q31 multiplier and a power-of-two shift."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    fixed = round_half_away(q * (1 << 31))
    if fixed == 1 << 31:
        fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if not 0 <= fixed <= 2**31 - 1:
        raise InputError(f"requantization multiplier {real!r} out of range for int8 kernels")
    return fixed, shift


def quantized_activation_range(activation: int, scale: np.float32, zero_point: int,
                               ttype: str = "INT8") -> tuple[int, int]:
    """TFLite's CalculateActivationRangeQuantized for an int8 or int16 output (float32
    arithmetic)."""
    lo, hi = INT_RANGES[ttype]

    def q(f: float) -> int:
        return zero_point + round_half_away(float(np.float32(f) / scale))
    name = ACTIVATIONS.get(activation)
    if name == "NONE":
        return lo, hi
    if name == "RELU":
        return max(lo, q(0.0)), hi
    if name == "RELU6":
        return max(lo, q(0.0)), min(hi, q(6.0))
    if name == "RELU_N1_TO_1":
        return max(lo, q(-1.0)), min(hi, q(1.0))
    raise InputError(f"fused activation {activation} is not supported by the C generator; "
                     f"supported: {', '.join(ACTIVATIONS.values())}")


@dataclass
class Tensor:
    index: int
    name: str
    type: str
    shape: tuple[int, ...]
    data: np.ndarray | None
    scales: np.ndarray | None
    zero_points: np.ndarray | None

    @property
    def size(self) -> int:
        return int(np.prod([d for d in self.shape if d > 0] or [1]))

    @property
    def scale(self) -> np.float32:
        return np.float32(self.scales[0])

    @property
    def zero_point(self) -> int:
        return int(self.zero_points[0])


def read_graph(content: bytes) -> tuple[list[tuple[str, object]], dict[int, Tensor], list[int], list[int]]:
    """(operator name, OperatorT) in execution order, tensors, graph inputs and outputs."""
    schema = _schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    if len(model.subgraphs) != 1:
        raise InputError(f"the model has {len(model.subgraphs)} subgraphs; the C generator "
                         f"handles one")
    types = {v: k for k, v in vars(schema.TensorType).items() if k.isupper()}
    ops = {v: k for k, v in vars(schema.BuiltinOperator).items() if k.isupper()}
    g = model.subgraphs[0]
    tensors = {}
    for k, t in enumerate(g.tensors):
        ttype = types.get(t.type, str(t.type))
        buf = model.buffers[t.buffer] if t.buffer < len(model.buffers) else None
        data = None
        if buf is not None and buf.data is not None and len(buf.data):
            if ttype not in CTYPES:
                raise InputError(f"tensor {k} has constant data of type {ttype}; the C generator "
                                 f"handles {', '.join(CTYPES)}")
            data = np.frombuffer(bytes(bytearray(buf.data)), CTYPES[ttype][1])
        elif buf is not None and getattr(buf, "size", 0):
            raise InputError(f"tensor {k} keeps its data outside the flatbuffer; not supported")
        q = t.quantization
        scales = None if q is None or q.scale is None else np.asarray(q.scale, "float32")
        zps = None if q is None or q.zeroPoint is None else np.asarray(q.zeroPoint, "int64")
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
        tensors[k] = Tensor(k, (t.name or b"").decode(), ttype, shape, data, scales, zps)
    out = []
    for op in g.operators:
        oc = model.operatorCodes[op.opcodeIndex]
        name = ops.get(max(oc.builtinCode, oc.deprecatedBuiltinCode), f"CODE_{oc.builtinCode}")
        out.append((name, op))
    return out, tensors, [int(i) for i in g.inputs], [int(i) for i in g.outputs]


def output_names(content: bytes) -> dict[int, str]:
    """Graph output tensor index -> its name in the model's signature ('logits', 'z_phot'):
    outputs are matched by name, never by position."""
    model = _schema().ModelT.InitFromPackedBuf(bytearray(content), 0)
    return {int(t.tensorIndex): (t.name.decode() if isinstance(t.name, bytes) else str(t.name))
            for sig in (model.signatureDefs or []) for t in (sig.outputs or [])}


def fc_multipliers(x: Tensor, w: Tensor, y: Tensor) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A quantized FULLY_CONNECTED's multipliers and shifts, as TFLite Micro prepares them
    (the same for int8 and int16 activations)."""
    # double(input) * double(filter) / double(output), per channel or for the one scale of a
    # per-tensor filter (the redshift head's single unit). Not the float32 product of older
    # TFLite sources' GetQuantizedConvolutionMultipler: on the default student's head that
    # multiplier differs by 50 in Q31 and one test row in 2,000 came out one step off the
    # tflite-micro wheel; the double product matches it on every row.
    reals = [float(x.scale) * float(np.float32(s)) / float(y.scale) for s in w.scales]
    mult, shift = zip(*(quantize_multiplier(r) for r in reals))
    return mult, shift


def output_step(content: bytes) -> float:
    """One step of the graph's quantized class scores (the scale of the input of the DEQUANTIZE
    that writes them: the only output, or the one named 'logits' beside a redshift head),
    the unit in which TFLite Micro and LiteRT scores are compared."""
    ops, tensors, _, outputs = read_graph(content)
    if len(outputs) > 1:
        names = output_names(content)
        outputs = [k for k in outputs if names.get(k) == "logits"]
    for name, op in reversed(ops):
        if name == "DEQUANTIZE" and int(op.outputs[0]) in outputs:
            return float(tensors[int(op.inputs[0])].scale)
    raise InputError("the graph's output is not a DEQUANTIZE; it has no output step")
