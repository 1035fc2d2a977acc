"""C sources for microcontrollers: student_int8 (int8 weights, int16 activations) as dependency-free C99,
bit-exact with TFLite Micro.

    from sdss_distill.export import mcu
    mcu.write_mcu(Path("RUN/mcu"), Path("RUN/tflite/student_int8.tflite").read_bytes(),
                  run_id="...")       # or: python -m sdss_distill.export --run RUN --mcu

Reads the .tflite flatbuffer generically (every operator of subgraph 0, in execution order)
and emits straight-line C: weights and biases as const arrays, the fixed-point multipliers
and shifts computed here exactly as TFLite Micro computes them when it prepares the model,
and one call per operator to small kernels that follow TFLite Micro's reference kernels'
arithmetic; only the kernels the graph uses are written (mcu_templates/kernels.c).
Supported: FULLY_CONNECTED (float32; int8 weights, per-tensor or per-channel, with int8 or
int16 activations (TFLite 16x8) and int32 biases), QUANTIZE (float32 -> int8 or int16),
DEQUANTIZE (int8 or int16 -> float32); any other operator or type (int64 biases included) is
refused with a one-line InputError naming it. numpy and the flatbuffer schema of
ai_edge_litert only (no TensorFlow).

RUN/mcu/ gets sdss_student.h/.c (the classifier), sdss_student_model.c (the .tflite bytes,
16-byte aligned, for TFLite Micro users), sdss_harness.c, a Makefile (host and QEMU
Cortex-M3 builds), startup_mps2.c and mps2_an385.ld (the QEMU board) and README.md.
"""

from __future__ import annotations

import math
import re
from importlib import resources
from pathlib import Path
from string import Template

import numpy as np

from sdss_distill.core.errors import InputError
from sdss_distill.core.io import sha256_bytes, write_atomic
from sdss_distill.core.quality import VALUE_RANGES
from sdss_distill.core.schema import BANDS, LABELS, SENTINEL
from sdss_distill.core.zphot import HEAD, TRANSFORM
from sdss_distill.export.mcu_graph import (  # noqa: F401 - re-exported for mcu_sim and tests
    ACTIVATIONS,
    CTYPES,
    INT8_MAX,
    INT8_MIN,
    INT_RANGES,
    Tensor,
    fc_multipliers,
    output_names,
    quantize_multiplier,
    quantized_activation_range,
    read_graph,
    round_half_away,
)

MCU_DIR = "mcu"
SUPPORTED = ("FULLY_CONNECTED", "QUANTIZE", "DEQUANTIZE")
COPIED = ("sdss_harness.c", "startup_mps2.c", "mps2_an385.ld", "Makefile", "README.md")
"""Template files written as they are."""
KERNEL_SUFFIX = {"INT8": "s8", "INT16": "s16"}


def _template(name: str) -> str:
    return resources.files("sdss_distill.export").joinpath("mcu_templates", name).read_text()


def float_activation_range(activation: int) -> tuple[str, str]:
    """C expressions for TFLite's CalculateActivationRange (float)."""
    ranges = {"NONE": ("-FLT_MAX", "FLT_MAX"), "RELU": ("0.0f", "FLT_MAX"),
              "RELU6": ("0.0f", "6.0f"), "RELU_N1_TO_1": ("-1.0f", "1.0f")}
    name = ACTIVATIONS.get(activation)
    if name is None:
        raise InputError(f"fused activation {activation} is not supported by the C generator; "
                         f"supported: {', '.join(ACTIVATIONS.values())}")
    return ranges[name]


def c_float(v) -> str:
    """An exact C literal for a float32 value (hexadecimal floating constant)."""
    v = float(np.float32(v))
    if not math.isfinite(v):
        raise InputError(f"non-finite constant {v} in the model; cannot write it as C")
    return v.hex() + "f"


def c_double(v: float) -> str:
    return float(v).hex()


def c_array(ctype: str, name: str, values: np.ndarray, per_line: int = 12) -> str:
    fmt = c_float if ctype == "float" else (lambda v: str(int(v)))
    items = [fmt(v) for v in np.asarray(values).reshape(-1)]
    lines = [", ".join(items[k:k + per_line]) for k in range(0, len(items), per_line)]
    body = ",\n    ".join(lines)
    return f"static const {ctype} {name}[{len(items)}] = {{\n    {body}\n}};\n"


class Emitter:
    """Walks the graph and writes the constants, local buffers and kernel calls."""

    def __init__(self, content: bytes):
        self.ops, self.tensors, self.inputs, self.outputs = read_graph(content)
        if len(self.inputs) != 1 or len(self.outputs) not in (1, 2):
            raise InputError(f"the model has {len(self.inputs)} inputs and {len(self.outputs)} "
                             f"outputs; the C generator needs one input, and the class scores "
                             f"(plus '{HEAD}' with a redshift head)")
        self.input = self.tensors[self.inputs[0]]
        self.output, self.z_output = self._outputs(content)
        for t, role in ((self.input, "input"), (self.output, "output"),
                        (self.z_output or self.output, HEAD)):
            if t.type != "FLOAT32":
                raise InputError(f"the model's {role} is {t.type}; the C API passes float32")
        self.constants: list[str] = []
        self.locals: list[str] = []
        self.local_bytes = 0
        self.body: list[str] = []
        self.kernels: set[str] = set()

    def _outputs(self, content: bytes) -> tuple[Tensor, Tensor | None]:
        """(class scores, redshift head or None), matched by their signature names."""
        if len(self.outputs) == 1:
            return self.tensors[self.outputs[0]], None
        names = output_names(content)
        by_name = {names.get(k): k for k in self.outputs}
        if set(by_name) != {"logits", HEAD}:
            raise InputError(f"the model's outputs are named {sorted(map(str, by_name))}; the "
                             f"C generator needs 'logits' and '{HEAD}'")
        if TRANSFORM != "z":
            raise InputError(f"the redshift head predicts {TRANSFORM}; the C API needs z itself")
        return self.tensors[by_name["logits"]], self.tensors[by_name[HEAD]]

    def ref(self, k: int) -> str:
        """The C expression for tensor k: the API arrays, a constant, or a local buffer."""
        t = self.tensors[k]
        if k == self.input.index:
            return "mags"
        if k == self.output.index:
            return "scores"
        if self.z_output is not None and k == self.z_output.index:
            return "z_out"
        if t.data is not None:
            name = f"c{k}"
            if not any(f" {name}[" in c for c in self.constants):
                self.constants.append(c_array(CTYPES[t.type][0], name, t.data))
            return name
        name = f"t{k}"
        if not any(f" {name}[" in line for line in self.locals):
            if t.type not in CTYPES:
                raise InputError(f"tensor {k} ({t.name}) is {t.type}; the C generator handles "
                                 f"{', '.join(CTYPES)}")
            self.locals.append(f"    {CTYPES[t.type][0]} {name}[{t.size}];")
            self.local_bytes += t.size * np.dtype(CTYPES[t.type][1]).itemsize
        return name

    def emit(self) -> None:
        for position, (name, op) in enumerate(self.ops):
            handler = getattr(self, f"_op_{name.lower()}", None)
            if name not in SUPPORTED or handler is None:
                raise InputError(f"operator {position} is {name}, which the C generator does not "
                                 f"implement; supported: {', '.join(SUPPORTED)}")
            self.body.append(f"    /* {position}: {name} */")
            handler(op)

    def _io(self, op) -> tuple[list[Tensor | None], Tensor]:
        ins = [self.tensors[int(i)] if int(i) >= 0 else None for i in op.inputs]
        return ins, self.tensors[int(op.outputs[0])]

    def _op_fully_connected(self, op) -> None:
        (x, w, *rest), y = self._io(op)
        b = rest[0] if rest else None
        opts = op.builtinOptions
        if w.data is None or (b is not None and b.data is None):
            raise InputError("FULLY_CONNECTED with non-constant weights or bias is not supported")
        if getattr(opts, "weightsFormat", 0) != 0:
            raise InputError("FULLY_CONNECTED with shuffled weights is not supported")
        units, depth = w.shape[-2], w.shape[-1]
        if x.size != depth or y.size != units:
            raise InputError(f"FULLY_CONNECTED shapes {x.shape} x {w.shape} -> {y.shape}: only "
                             f"one row (batch 1) is supported")
        act = getattr(opts, "fusedActivationFunction", 0)
        bias = self.ref(b.index) if b is not None else "0"
        if (x.type, w.type, y.type) == ("FLOAT32", "FLOAT32", "FLOAT32"):
            lo, hi = float_activation_range(act)
            self.call("fully_connected_f32", f"{self.ref(x.index)}, {depth}, {self.ref(w.index)}, "
                      f"{bias}, {units}, {lo}, {hi}, {self.ref(y.index)}")
            return
        if (x.type != y.type or x.type not in KERNEL_SUFFIX or w.type != "INT8"
                or (b is not None and b.type != "INT32")):
            raise InputError(f"FULLY_CONNECTED with {x.type} input, {w.type} weights, "
                             f"{b.type if b is not None else 'no'} bias, {y.type} output is not "
                             f"supported (float32; int8 or int16 activations with int8 weights "
                             f"and int32 bias)")
        if np.any(w.zero_points != 0):
            raise InputError("quantized FULLY_CONNECTED weights with a non-zero zero point "
                             "(TFLite Micro requires symmetric weights)")
        k = w.index
        mult, shift = fc_multipliers(x, w, y)
        self.constants.append(c_array("int32_t", f"m{k}", np.array(mult)))
        self.constants.append(c_array("int8_t", f"s{k}", np.array(shift)))
        lo, hi = quantized_activation_range(act, y.scale, y.zero_point, y.type)
        self.call(f"fully_connected_{KERNEL_SUFFIX[x.type]}",
                  f"{self.ref(x.index)}, {depth}, {-x.zero_point}, {self.ref(w.index)}, 0, "
                  f"{bias}, {units}, m{k}, s{k}, {len(mult)}, {y.zero_point}, {lo}, {hi}, "
                  f"{self.ref(y.index)}")

    def _op_quantize(self, op) -> None:
        (x,), y = self._io(op)
        if x.type != "FLOAT32" or y.type not in KERNEL_SUFFIX or len(y.scales) != 1:
            raise InputError(f"QUANTIZE from {x.type} to {y.type} is not supported (float32 -> "
                             f"per-tensor int8 or int16 only)")
        self.call(f"quantize_f32_{KERNEL_SUFFIX[y.type]}", f"{self.ref(x.index)}, {x.size}, "
                  f"{c_float(y.scale)}, {y.zero_point}, {self.ref(y.index)}")

    def _op_dequantize(self, op) -> None:
        (x,), y = self._io(op)
        if x.type not in KERNEL_SUFFIX or y.type != "FLOAT32" or len(x.scales) != 1:
            raise InputError(f"DEQUANTIZE from {x.type} to {y.type} is not supported (per-tensor "
                             f"int8 or int16 -> float32 only)")
        self.call(f"dequantize_{KERNEL_SUFFIX[x.type]}_f32", f"{self.ref(x.index)}, {x.size}, "
                  f"{c_float(x.scale)}, {x.zero_point}, {self.ref(y.index)}")

    def call(self, kernel: str, args: str) -> None:
        """One kernel call in sdss_classify(); the kernel's C section is then written."""
        self.kernels.add(kernel)
        self.body.append(f"    {kernel}({args});")


def kernel_sections(used: set[str]) -> str:
    """The C of the `used` kernels and their helpers, in kernels.c's order (an unused static
    function would break -Wall -Werror builds)."""
    parts = re.split(r"^/\* @@ (\w+):([\w ]*)\*/\n", _template("kernels.c"), flags=re.M)
    sections = {name: (deps.split(), code) for name, deps, code in
                zip(parts[1::3], parts[2::3], parts[3::3])}
    missing = used - set(sections)
    if missing:
        raise InputError(f"no C kernel for {', '.join(sorted(missing))}")
    needed, todo = set(), list(used)
    while todo:  # a kernel's helpers, their helpers, ...
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo += sections[name][0]
    return "".join(code for name, (_, code) in sections.items() if name in needed).rstrip() + "\n"


def _c_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


Z_DECL = """
#define SDSS_HAS_Z 1
#define SDSS_Z_ERR_SCALE {k}  /* k of z_phot_err = k (1 + z_phot), fitted on dev galaxies */

/* As sdss_classify(), and the photometric redshift: *z_phot = the redshift head's output
   clipped at 0, *z_phot_err = SDSS_Z_ERR_SCALE * (1 + *z_phot) (about 68 % of galaxies lie
   within it); both NaN when the class is -1. */
int sdss_classify_z(const float mags[SDSS_N_INPUTS], float scores[SDSS_N_CLASSES],
                    float *z_phot, float *z_phot_err);
"""

Z_API = """
int sdss_classify_z(const float mags[SDSS_N_INPUTS], float scores[SDSS_N_CLASSES],
                    float *z_phot, float *z_phot_err)
{
    float z_out[1];
    int best = sdss_run(mags, scores, z_out);
    float z = z_out[0] > 0.0f ? z_out[0] : 0.0f;
    if (best < 0) {
        z = z_out[0];    /* NaN */
    }
    *z_phot = z;
    *z_phot_err = SDSS_Z_ERR_SCALE * (1.0f + z);
    return best;
}
"""


def generate(content: bytes, *, labels: tuple[str, ...] = LABELS, run_id: str | None = None,
             model_file: str = "student_int8.tflite", sets=None,
             z_error_scale: float | None = None) -> dict[str, bytes]:
    """File name -> content of every file of the MCU folder, for one .tflite flatbuffer.
    `sets`: (level, per-class thresholds on 1 - p) of the prediction sets (set_fields);
    `z_error_scale`: k of z_phot_err (the card's zphot.error_scale), needed with a redshift
    head, which then adds sdss_classify_z() to the C API."""
    em = Emitter(content)
    em.emit()
    if em.z_output is not None and z_error_scale is None:
        raise InputError(f"the model has a redshift head ('{HEAD}'): pass z_error_scale, the "
                         f"model card's zphot.error_scale")
    n_in, n_out = em.input.size, em.output.size
    if n_in != len(BANDS) or n_out != len(labels):
        raise InputError(f"the model maps {n_in} inputs to {n_out} outputs; the C API expects "
                         f"{len(BANDS)} magnitudes and {len(labels)} classes")
    ranges = {VALUE_RANGES[b] for b in BANDS}
    if len(ranges) != 1:
        raise InputError(f"the bands have different value ranges {sorted(ranges)}; the C "
                         f"check assumes one")
    (lo, hi), = ranges
    fields = {
        "model_file": model_file, "model_sha256": sha256_bytes(content),
        "run_id": run_id or "unknown", "n_inputs": n_in, "n_classes": n_out,
        "mag_min": c_float(lo), "mag_max": c_float(hi), "sentinel": c_float(SENTINEL),
        "activation_bytes": em.local_bytes, "class_names": ", ".join(_c_string(s) for s in labels),
        "op_list": " -> ".join(name for name, _ in em.ops),
        "constants": "\n".join(em.constants), "locals": "\n".join(em.locals),
        "body": "\n".join(em.body), "kernels": kernel_sections(em.kernels),
        **set_fields(sets, len(labels)),
        "z_decl": Z_DECL.format(k=c_float(z_error_scale)) if em.z_output is not None else "",
        "z_api": Z_API if em.z_output is not None else "",
        "z_unused": "" if em.z_output is not None else "    (void)z_out;\n",
    }
    files = {name: Template(_template(name + ".in")).substitute(fields).encode()
             for name in ("sdss_student.h", "sdss_student.c")}
    files["sdss_student_model.c"] = model_array(content, fields)
    files.update({name: _template(name).encode() for name in COPIED})
    return files


def model_array(content: bytes, fields: dict) -> bytes:
    """sdss_student_model.c: the .tflite bytes as a 16-byte aligned const array."""
    rows = [", ".join(f"0x{b:02x}" for b in content[k:k + 16]) for k in range(0, len(content), 16)]
    body = ",\n    ".join(rows)
    return (f"/* sdss_student_model.c: {fields['model_file']} (SHA-256 {fields['model_sha256']}, "
            f"run {fields['run_id']}),\n"
            " * the flatbuffer TFLite Micro's MicroInterpreter reads. Generated; do not edit. */\n"
            '#include "sdss_student.h"\n\n'
            "#if defined(__GNUC__) || defined(__clang__)\n"
            "#define SDSS_ALIGNED __attribute__((aligned(16)))\n"
            "#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L\n"
            "#define SDSS_ALIGNED _Alignas(16)\n"
            "#else\n#define SDSS_ALIGNED\n#endif\n\n"
            f"const unsigned char sdss_student_model[{len(content)}] SDSS_ALIGNED = {{\n"
            f"    {body}\n}};\n"
            f"const unsigned int sdss_student_model_len = {len(content)}u;\n").encode()


def set_fields(sets, n_classes: int) -> dict:
    """The header's prediction-set fields: the level and thresholds as exact C doubles (an
    infinite threshold, a class always in the set, is 2.0: 1 - p never exceeds it); without
    `sets`, SDSS_SET_CALIBRATED 0 and every threshold 2.0."""
    level, q = sets if sets is not None else (0.0, [float("inf")] * n_classes)
    return {"set_level": repr(float(level)), "set_calibrated": int(sets is not None),
            "set_thresholds": ", ".join(c_double(v) if np.isfinite(v) else "2.0" for v in q)}


def write_mcu(out: Path, content: bytes, *, labels: tuple[str, ...] = LABELS,
              run_id: str | None = None, model_file: str = "student_int8.tflite",
              sets=None, z_error_scale: float | None = None) -> list[Path]:
    """Write the MCU folder for `content` (a .tflite flatbuffer) into `out`; returns the paths."""
    files = generate(content, labels=labels, run_id=run_id, model_file=model_file, sets=sets,
                     z_error_scale=z_error_scale)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in files.items():
        write_atomic(out / name, data)
        paths.append(out / name)
    return paths
