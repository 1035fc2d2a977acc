"""Read and tidy LiteRT (.tflite) flatbuffers without TensorFlow: ops, tensor names, size.

Uses the flatbuffer schema bundled with `ai_edge_litert`, so export, tests and the QAT
subprocess can list a model's operators and shrink it without loading a converter.
"""

from __future__ import annotations

import re
from pathlib import Path

import flatbuffers
from ai_edge_litert import schema_py_generated as schema

IDENTIFIER = b"TFL3"


def _schema():
    return schema


def is_tflite(content: bytes) -> bool:
    """True when the bytes carry the TFLite flatbuffer file identifier."""
    return len(content) >= 8 and content[4:8] == IDENTIFIER


def _op_names() -> dict[int, str]:
    ops = _schema().BuiltinOperator
    return {v: k for k, v in vars(ops).items() if k.isupper() and isinstance(v, int)}


def operators(content: bytes) -> list[str]:
    """Operator names in execution order; custom ops (incl. Flex) as `CUSTOM:<code>`."""
    schema = _schema()
    model = schema.Model.GetRootAs(content, 0)
    names = _op_names()
    codes = []
    for k in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(k)
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        if code == schema.BuiltinOperator.CUSTOM:
            codes.append("CUSTOM:" + (oc.CustomCode() or b"").decode())
        else:
            codes.append(names.get(code, f"UNKNOWN_{code}"))
    out = []
    for s in range(model.SubgraphsLength()):
        g = model.Subgraphs(s)
        out += [codes[g.Operators(i).OpcodeIndex()] for i in range(g.OperatorsLength())]
    return out


def non_builtin(content: bytes) -> list[str]:
    """Operators that are not TFLite builtins (custom or Flex/SELECT_TF_OPS)."""
    return [op for op in operators(content) if op.startswith(("CUSTOM", "UNKNOWN", "Flex"))]


def op_output_names(content: bytes) -> list[tuple[str, str]]:
    """(operator, name of its first output tensor) for subgraph 0, in execution order."""
    schema = _schema()
    model = schema.Model.GetRootAs(content, 0)
    g = model.Subgraphs(0)
    ops = operators(content)
    return [(ops[i], g.Tensors(g.Operators(i).Outputs(0)).Name().decode())
            for i in range(g.OperatorsLength())]


def front_nodes(content: bytes, layers: str | list[str]) -> list[str]:
    """Output names of the ops that read the raw input: the first op from each Keras layer in
    `layers` (e.g. every ensemble member's first dense layer) and every op before the first
    of them (for one layer: all ops up to and including it).

    These stay float in selective int8 quantization, so the first quantized tensors are those
    layers' (ReLU) outputs instead of the raw magnitudes.
    """
    names = [name for _, name in op_output_names(content)]
    found = []
    for layer in [layers] if isinstance(layers, str) else layers:
        pattern = re.compile(rf"(^|/){re.escape(layer)}(_\d+)?/")
        k = next((k for k, name in enumerate(names) if pattern.search(name)), None)
        if k is None:
            raise ValueError(f"no operator from layer {layer!r} in the model; op outputs: "
                             f"{names[:8]}")
        found.append(k)
    return names[:min(found)] + [names[k] for k in sorted(set(found))]


def shrink(content: bytes, metadata: dict[str, bytes] | None = None) -> bytes:
    """Replace internal tensor names with short ones and add metadata entries; ops unchanged.

    The converter names tensors after the TF graph (long ';'-joined paths), which is a large
    part of a 1,000-parameter model's file; signatures map their own names to tensor indices.
    """
    schema = _schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    for s, g in enumerate(model.subgraphs):
        keep = {}
        for sig in model.signatureDefs or []:
            if sig.subgraphIndex == s:
                keep.update({t.tensorIndex: t.name for t in (*sig.inputs, *sig.outputs)})
        for k, t in enumerate(g.tensors):
            t.name = keep.get(k, f"t{k}")
    for name, blob in (metadata or {}).items():
        buf = schema.BufferT()
        buf.data = list(blob)
        model.buffers.append(buf)
        entry = schema.MetadataT()
        entry.name, entry.buffer = name, len(model.buffers) - 1
        model.metadata = [*(model.metadata or []), entry]
    builder = flatbuffers.Builder(len(content))
    builder.Finish(model.Pack(builder), file_identifier=IDENTIFIER)
    return bytes(builder.Output())


def metadata(content: bytes) -> dict[str, bytes]:
    """The model's metadata entries (name -> bytes)."""
    schema = _schema()
    model = schema.Model.GetRootAs(content, 0)
    out = {}
    for k in range(model.MetadataLength()):
        m = model.Metadata(k)
        buf = model.Buffers(m.Buffer())
        out[m.Name().decode()] = buf.DataAsNumpy().tobytes() if buf.DataLength() else b""
    return out


def read(path: Path) -> bytes:
    return Path(path).read_bytes()


def weight_types(content: bytes) -> dict[str, int]:
    """How many constant (weight) tensors of each type, e.g. {'FLOAT32': 6, 'INT8': 2}."""
    schema = _schema()
    model = schema.Model.GetRootAs(content, 0)
    names = {v: k for k, v in vars(schema.TensorType).items() if k.isupper()}
    counts: dict[str, int] = {}
    for s in range(model.SubgraphsLength()):
        g = model.Subgraphs(s)
        for k in range(g.TensorsLength()):
            t = g.Tensors(k)
            if t.Buffer() and model.Buffers(t.Buffer()).DataLength():
                name = names.get(t.Type(), str(t.Type()))
                counts[name] = counts.get(name, 0) + 1
    return counts
