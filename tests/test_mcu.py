"""`sdss_distill.export.mcu`: student_int8 (int8 weights, int16 activations) as C99, bit-exact with
TFLite Micro on the host and on a Cortex-M3 and a Cortex-M4F under QEMU; TFLite Micro against
LiteRT; rejected inputs and graphs; sizes and instructions.

Tests that need a tool (gcc, make, arm-none-eabi-gcc with newlib, qemu-system-arm, the
tflite-micro wheel) skip locally when it is missing and FAIL when CI=true.
Set SDSS_MCU_REPORT=FILE.json to keep the Cortex-M figures (flash, RAM, instructions).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from sdss_distill.core.errors import InputError
from sdss_distill.core.schema import LABELS
from sdss_distill.export import mcu, mcu_sim

CI = os.environ.get("CI", "").lower() == "true"
RDIMON = Path("/usr/lib/arm-none-eabi/newlib/rdimon.specs")
CLOCKS_MHZ = (64, 120)


def need(*tools: str) -> None:
    """Skip (locally) or fail (CI=true) when a build tool is missing."""
    missing = [t for t in tools if shutil.which(t) is None]
    if "arm-none-eabi-gcc" in tools and not RDIMON.is_file():
        missing.append(f"newlib ({RDIMON})")
    if missing:
        msg = (f"missing {', '.join(missing)}; install gcc make gcc-arm-none-eabi "
               f"libnewlib-arm-none-eabi qemu-system-arm")
        if CI:
            pytest.fail(msg + " (CI=true: these tests must run)")
        pytest.skip(msg)


def tflm_runtime():
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        msg = "tflite-micro is not installed (pip install -r requirements.txt)"
        if CI:
            pytest.fail(msg + " (CI=true: these tests must run)")
        pytest.skip(msg)
    return runtime


# --- fast: the arithmetic helpers --------------------------------------------------------

@pytest.mark.parametrize("x, expected", [(2.5, 3), (-2.5, -3), (2.49, 2), (-0.5, -1), (0.4, 0)])
def test_round_half_away_from_zero_like_c_round(x, expected):
    assert mcu.round_half_away(x) == expected


@pytest.mark.parametrize("real, expected", [
    (0.5, (1 << 30, 0)), (1.0, (1 << 30, 1)), (0.0, (0, 0)), (0.75, (3 << 29, 0)),
    (2.0 ** -40, (0, 0)),  # shift < -31: TFLite zeroes the multiplier
])
def test_quantize_multiplier_matches_tflite(real, expected):
    assert mcu.quantize_multiplier(real) == expected


def test_a_per_tensor_filter_gets_tflite_micros_double_multiplier():
    """The redshift head's Dense(1) has one filter scale (per-tensor): TFLite Micro computes its
    multiplier in double, as per channel. The scales are the seed-0 faint default run's head;
    1466918418 is the multiplier with which the numpy model of the C code gives TFLite Micro's
    z_phot on all 5,400 test rows (the float32 product of the scales, 1466918464, misses one)."""
    from sdss_distill.export.mcu_graph import Tensor, fc_multipliers

    def t(scales):
        return Tensor(0, "t", "INT16", (1,), None, np.float32(scales), np.zeros(len(scales), int))
    x, y = t([0.0006588136]), t([9.900246e-05])
    assert fc_multipliers(x, t([0.0064156335]), y) == ((1466918418,), (-4,))
    per_channel = fc_multipliers(x, t([0.0064156335] * 2), y)
    assert per_channel == ((1466918418,) * 2, (-4,) * 2)


def test_a_missing_toolchain_skips_locally_and_fails_under_ci(monkeypatch):
    import sys
    monkeypatch.setattr(shutil, "which", lambda tool: None)
    monkeypatch.setattr(sys.modules[__name__], "CI", True)
    with pytest.raises(pytest.fail.Exception, match=r"missing qemu-system-arm.*CI=true"):
        need("qemu-system-arm")
    monkeypatch.setattr(sys.modules[__name__], "CI", False)
    with pytest.raises(pytest.skip.Exception, match="missing qemu-system-arm"):
        need("qemu-system-arm")


def test_exact_c_literals():
    assert mcu.c_float(0.1) == float(np.float32(0.1)).hex() + "f"
    with pytest.raises(InputError, match="non-finite constant"):
        mcu.c_float(float("inf"))


def test_float32_dequantize_equals_tflite_micros_double_product():
    """The C DEQUANTIZE multiplies in float32 where TFLite Micro computes
    (float)(double(scale) * (q - zero_point)): the same bits for every int16 difference
    (|q - zero_point| <= 65535) and float32 scales from subnormal to overflowing results."""
    rng = np.random.default_rng(0)
    scales = np.concatenate([
        np.float32([1.0, 2 ** -12, 1e-3, 0.1, 3.4e38, 1.5e-45, 1e-40, 2.5e-38]),
        (2.0 ** rng.uniform(-40, 20, 56) * rng.uniform(1, 2, 56)).astype(np.float32)])
    diff = np.arange(-65535, 65536, dtype=np.int32)
    with np.errstate(over="ignore"):
        for scale in scales:
            tflm = (np.float64(scale) * diff.astype(np.float64)).astype(np.float32)
            c = diff.astype(np.float32) * scale
            assert (c.view(np.uint32) == tflm.view(np.uint32)).all(), scale
    code = re.sub(r"/\*.*?\*/", "", mcu.kernel_sections({"dequantize_s8_f32",
                                                          "dequantize_s16_f32"}), flags=re.S)
    assert "(float)((int32_t)in[k] - zero_point) * scale" in code
    assert "double" not in code  # so a Cortex-M links no soft-float double routines

# --- on a small real run -----------------------------------------------------------------

def _clone(run_dir: Path, dst: Path) -> Path:
    from sdss_distill.runs.rundir import RunDir
    src = RunDir(run_dir).current()
    with RunDir(dst).write() as layout:
        for rel in src.manifest()["files"]:
            (layout.root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src.root / rel, layout.root / rel)
    return dst


@pytest.fixture(scope="module")
def mcu_run(exported_run, tmp_path_factory) -> Path:
    """A copy of the session's exported run, exported again with --mcu."""
    from sdss_distill.export import cli as export_cli
    run = _clone(exported_run, tmp_path_factory.mktemp("mcu") / "run")
    assert export_cli.main(["--run", str(run), "--mcu", "--no-finetune", "--invokes", "20",
                        "--quiet"]) == 0
    return run


@pytest.fixture(scope="module")
def layout(mcu_run):
    from sdss_distill.runs.rundir import RunDir
    return RunDir(mcu_run).current()


@pytest.fixture(scope="module")
def model(layout) -> bytes:
    return layout.tflite_file("student_int8").read_bytes()


@pytest.fixture(scope="module")
def x_test(layout) -> np.ndarray:
    """The run's test rows of the real table, u g r i z as float32."""
    from sdss_distill.core.schema import STUDENT_VIEW, get_view
    from sdss_distill.data.table import features
    from sdss_distill.runs.rows import load_run_rows
    rows = load_run_rows(layout, None)
    return features(rows.df.loc[rows.split.test], get_view(STUDENT_VIEW)).astype("float32")


@pytest.fixture(scope="module")
def tflm_both(model, x_test) -> tuple[np.ndarray, np.ndarray | None]:
    return tflm_outputs(model, x_test, with_z=True)


@pytest.fixture(scope="module")
def tflm_scores(tflm_both) -> np.ndarray:
    return tflm_both[0]


def output_positions(model: bytes) -> dict[str, int]:
    """Signature output name -> its position among the graph's outputs (TFLite Micro's
    get_output index): outputs are matched by name, never assumed in order."""
    from sdss_distill.export.mcu_graph import output_names, read_graph
    outputs = read_graph(model)[3]
    names = output_names(model)
    if len(outputs) == 1:
        return {"logits": 0}
    return {names[t]: k for k, t in enumerate(outputs)}


def tflm_outputs(model: bytes, rows: np.ndarray, with_z: bool = False):
    """TFLite Micro's class scores, one invoke per row (its interpreter takes batch 1); with
    `with_z`, (scores, the redshift head's output or None)."""
    from sdss_distill.core.zphot import HEAD
    interpreter = tflm_runtime().Interpreter.from_bytes(model)
    pos = output_positions(model)
    out = np.empty((len(rows), 3), np.float32)
    z = np.empty(len(rows), np.float32) if HEAD in pos else None
    for k, row in enumerate(rows):
        interpreter.set_input(row[None, :], 0)
        interpreter.invoke()
        out[k] = interpreter.get_output(pos["logits"]).reshape(-1)
        if z is not None:
            z[k] = interpreter.get_output(pos[HEAD]).reshape(-1)[0]
    return (out, z) if with_z else out


@pytest.fixture(scope="module")
def build_dir(layout, tmp_path_factory) -> Path:
    """RUN/mcu copied out of the run (builds must not add files to a run version)."""
    dst = tmp_path_factory.mktemp("mcu_build") / "mcu"
    shutil.copytree(layout.root / mcu.MCU_DIR, dst)
    return dst


def activation_bits(model: bytes) -> int:
    """16 for a 16x8 student_int8, 8 for int8 activations (the QAT or int8 PTQ candidate)."""
    from sdss_distill.export.mcu_graph import read_graph
    _, tensors, _, _ = read_graph(model)
    return 16 if any(t.type == "INT16" for t in tensors.values()) else 8


def rows_text(x: np.ndarray) -> str:
    """Rows as exact float bit patterns (x + 8 hex digits), one per line."""
    bits = np.ascontiguousarray(x, np.float32).view(np.uint32)
    return "".join(" ".join(f"x{v:08x}" for v in row) + "\n" for row in bits)


def parse_scores(lines: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(class indices, scores as float32, extra fields per row) from the harness's output,
    `<class name> logits <3 decimals> bits <3 x 8 hex digits> [ticks]`; the name and the
    decimals are checked against the bits."""
    rows = [line.split() for line in lines]
    assert all(r[1] == "logits" and r[5] == "bits" for r in rows), rows[:3]
    classes = np.array([LABELS.index(r[0]) if r[0] != "none" else -1 for r in rows])
    scores = np.array([[int(v, 16) for v in r[6:9]] for r in rows], np.uint32).view(np.float32)
    decimals = np.array([[float(v) for v in r[2:5]] for r in rows])
    assert np.allclose(decimals, scores, rtol=0, atol=5.1e-7, equal_nan=True), \
        "decimal logits differ from their bits"
    named = classes >= 0  # the name printed is the top score's ("none": refused, scores NaN)
    assert (classes[named] == scores[named].argmax(axis=1)).all()
    assert not any("mismatch" in r for r in rows), "sdss_classify_z differs from sdss_classify"
    return classes, scores, [r[9:] for r in rows]


def parse_z(extra: list[list[str]]) -> np.ndarray | None:
    """[n, 2] float32 (z_phot, z_phot_err) from the harness's `z <bits> <bits>` fields, or
    None when the build has no redshift head."""
    if not extra or "z" not in extra[0]:
        return None
    at = extra[0].index("z")
    return np.array([[int(v, 16) for v in e[at + 1:at + 3]] for e in extra],
                    np.uint32).view(np.float32)


@pytest.fixture(scope="module")
def host(build_dir) -> Path:
    need("gcc", "make")
    proc = subprocess.run(["make", "-C", str(build_dir), "host", "CC=gcc"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "-std=c99" in proc.stdout and "-Wall -Wextra -Werror" in proc.stdout
    return build_dir / "sdss_host"


def run_host(host: Path, text: str) -> list[str]:
    proc = subprocess.run([str(host)], input=text, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()



@pytest.mark.slow
def test_export_writes_the_mcu_folder_into_the_run(layout, model):
    files = {p.name for p in (layout.root / mcu.MCU_DIR).iterdir()}
    assert files == {"sdss_student.h", "sdss_student.c", "sdss_student_model.c",
                     "sdss_harness.c", "startup_mps2.c", "mps2_an385.ld", "Makefile", "README.md"}
    listed = layout.manifest()["files"]
    assert all(f"{mcu.MCU_DIR}/{name}" in listed for name in files)
    header = (layout.root / mcu.MCU_DIR / "sdss_student.h").read_text()
    assert "#define SDSS_N_INPUTS 5" in header and "#define SDSS_N_CLASSES 3" in header
    assert ("int sdss_classify(const float mags[SDSS_N_INPUTS], float scores[SDSS_N_CLASSES]);"
            in header)
    source = (layout.root / mcu.MCU_DIR / "sdss_student.c").read_text()
    assert '{"GALAXY", "QSO", "STAR"}' in source
    kernels = set(re.findall(r"^static \w+ (\w+)\(", source, flags=re.M))
    bits = activation_bits(model)  # student_int8 is the candidate export chose: 16x8 or int8
    assert kernels == {"magnitudes_ok", "sdss_run", "round_away", "doubling_high_mul",
                       "rounding_divide_by_pot", "multiply_by_quantized_multiplier",
                       "requantize", "quantize", "fully_connected_f32", f"quantize_f32_s{bits}",
                       f"fully_connected_s{bits}", f"dequantize_s{bits}_f32",
                       "sdss_exp"}  # sdss_set's exp (prediction sets, issue 24)
    array = (layout.root / mcu.MCU_DIR / "sdss_student_model.c").read_text()
    assert "__attribute__((aligned(16)))" in array and f"[{len(model)}]" in array
    report = json.loads(layout.export_json.read_text())
    assert set(report["mcu"]) >= {"test_accuracy", "accuracy_drop_points", "agreement",
                                  "agreement_with_litert"}
    assert report["mcu"]["agreement_with_litert"] >= 0.999
    assert "`mcu/` (student_int8 as C99" in layout.export_md.read_text()


@pytest.mark.slow
def test_mcu_on_an_exported_run_writes_only_mcu(exported_run, layout):
    """`export --mcu` on a run exported from the same student: every .tflite file and every
    measurement carried over byte for byte; the cards name the new version; mcu/ added."""
    from sdss_distill.edge.classifier import EdgeClassifier
    from sdss_distill.runs.rundir import RunDir
    src = RunDir(exported_run).current()
    files = sorted(p.name for p in src.tflite.glob("*.tflite"))
    assert files == sorted(p.name for p in layout.tflite.glob("*.tflite"))
    for name in files:
        assert (layout.tflite / name).read_bytes() == (src.tflite / name).read_bytes()
        EdgeClassifier(layout.tflite / name)  # its card names this version: verified
    old, new = (json.loads(p.read_text()) for p in (src.export_json, layout.export_json))
    assert new["variants"] == old["variants"] and "mcu" not in old and "mcu" in new
    assert new["run_id"] == layout.run_id and new["parent_run_id"] == layout.manifest()["parent"]


@pytest.mark.slow
def test_host_build_is_bit_identical_to_tflite_micro(host, layout, x_test, tflm_both):
    """sdss_classify's scores and, with the default student's redshift head, sdss_classify_z's
    z_phot and z_phot_err, bit for bit, on every test row."""
    from sdss_distill.core.zphot import decode32
    tflm_scores, tflm_z = tflm_both
    classes, scores, extra = parse_scores(run_host(host, rows_text(x_test)))
    assert len(classes) == len(x_test) == 2000
    same = (scores.view(np.uint32) == tflm_scores.view(np.uint32)).all(axis=1)
    assert same.all(), f"{(~same).sum()} rows differ, e.g. row {np.flatnonzero(~same)[0]}"
    assert (classes == tflm_scores.argmax(axis=1)).all()
    z = parse_z(extra)
    assert tflm_z is not None and z is not None  # the default student has the head
    card = json.loads(layout.tflite_file("student_int8").with_suffix(".json").read_text())
    want = np.column_stack(decode32(tflm_z, card["zphot"]["error_scale"]))
    same = (z.view(np.uint32) == want.view(np.uint32)).all(axis=1)
    assert same.all(), f"{(~same).sum()} rows' z differ, e.g. row {np.flatnonzero(~same)[0]}"
    header = (layout.root / mcu.MCU_DIR / "sdss_student.h").read_text()
    assert ("int sdss_classify_z(const float mags[SDSS_N_INPUTS], float scores[SDSS_N_CLASSES],"
            in header)


@pytest.mark.slow
def test_out_of_range_and_non_finite_inputs_return_minus_one(host):
    good = [19.47, 17.04, 15.95, 15.50, 15.23]
    bad = [float("nan"), float("inf"), float("-inf"), -9999.0, 40.5, -0.01, 1e30]
    rows = [good] + [[v if k == j else good[k] for k in range(5)] for v in bad for j in (0, 4)]
    rows += [[0.0] * 5, [40.0] * 5]  # the range's ends are accepted
    classes, scores, _ = parse_scores(run_host(host, rows_text(np.array(rows, np.float32))))
    assert classes[0] >= 0 and classes[-1] >= 0 and classes[-2] >= 0
    assert (classes[1:-2] == -1).all()
    assert np.isnan(scores[1:-2]).all() and np.isfinite(scores[[0, -2, -1]]).all()


@pytest.mark.slow
def test_unsupported_operator_is_refused(layout):
    content = layout.tflite_file("student_float32").read_bytes()
    from sdss_distill.core import tflite_file
    ops = set(tflite_file.operators(content)) - set(mcu.SUPPORTED)
    assert ops, "student_float32 was expected to hold operators the generator lacks"
    with pytest.raises(InputError, match=r"operator \d+ is [A-Z_]+, which the C generator does "
                                         r"not implement; supported: FULLY_CONNECTED"):
        mcu.generate(content)


@pytest.mark.slow
def test_int64_biases_are_refused_in_one_line(model):
    """The converter's whole-graph 16x8 files carry int64 biases (TFLite Micro then takes
    another accumulator path); the generator does not implement it and says so."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema
    tree = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    g = tree.subgraphs[0]
    bias = g.tensors[g.operators[2].inputs[2]]
    data = np.frombuffer(bytes(bytearray(tree.buffers[bias.buffer].data)), "<i4")
    tree.buffers[bias.buffer].data = list(data.astype("<i8").tobytes())
    bias.type = schema.TensorType.INT64
    builder = flatbuffers.Builder(len(model))
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    bits = activation_bits(model)
    with pytest.raises(InputError, match=rf"^FULLY_CONNECTED with INT{bits} input, INT8 weights, "
                                         rf"INT64 bias, INT{bits} output is not supported \(float32; "
                                         r"int8 or int16 activations with int8 weights and "
                                         r"int32 bias\)$"):
        mcu.generate(bytes(builder.Output()))


def test_an_unknown_kernel_is_refused():
    with pytest.raises(InputError, match="no C kernel for fully_connected_s4"):
        mcu.kernel_sections({"fully_connected_f32", "fully_connected_s4"})
    assert "fully_connected_s8" not in mcu.kernel_sections({"fully_connected_f32"})


def litert_scores(model: bytes, x: np.ndarray, resolver: str) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    interpreter = Interpreter(model_content=model, num_threads=1,
                              experimental_op_resolver_type=getattr(OpResolverType, resolver))
    runner = interpreter.get_signature_runner("serving_default")
    return np.concatenate([runner(photometric=row[None, :])["logits"] for row in x])


def output_steps(model: bytes, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| in steps of the quantized output's scale (rounded: dequantized values carry
    float32 rounding)."""
    from sdss_distill.export.mcu_graph import output_step
    return np.rint(np.abs(a.astype(np.float64) - b) / output_step(model)).astype(int)


def litert_tensors(model: bytes, x: np.ndarray, indices: list[int]) -> list[np.ndarray]:
    """LiteRT's (no delegate) values of tensors `indices`, one invoke per row."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    interpreter = Interpreter(model_content=model, num_threads=1,
                              experimental_op_resolver_type=(
                                  OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES),
                              experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]["index"]
    out = [[] for _ in indices]
    for row in x:
        interpreter.set_tensor(inp, row[None, :])
        interpreter.invoke()
        for values, k in zip(out, indices):
            values.append(interpreter.get_tensor(k).reshape(-1).copy())
    return [np.array(v) for v in out]


@pytest.mark.slow
def test_numpy_model_of_the_c_arithmetic_is_tflite_micro(model, x_test, tflm_scores):
    sim = mcu_sim.simulate(model, x_test, rounding="double")
    assert (sim.view(np.uint32) == tflm_scores.view(np.uint32)).all()


@pytest.mark.slow
def test_tflite_micro_against_litert(model, x_test, tflm_scores, capsys):
    """student_int8 (int8 weights, int16 activations) in TFLite Micro (= the C code) and in
    LiteRT, measured:
    - LiteRT's optimized kernels add the float32 first layer's products in another order
      (float32 differences ~1e-5), which moves the int16 QUANTIZE of its output across a
      rounding boundary on ~1-2 % of rows (the 16-bit grid is 256x finer than int8's);
    - given the same int16 input, LiteRT's first int16 FULLY_CONNECTED (ReLU) is TFLite
      Micro's bit for bit (double-rounding requantization); its logits layer is one step
      higher on ~1.5 % of values (neither the single- nor the double-rounding model);
    - a one-step change in a hidden activation moves the logits by several output steps, so
      score differences are not bounded by one step; LiteRT's reference kernels
      (BUILTIN_REF) do not compute this file's int16 layers as TFLite Micro does (reported,
      not asserted: the app never uses them).
    Asserted: class agreement >= 99.9 % on the default path (AUTO) and without delegates;
    the first int16 layer equal wherever its input is; and without delegates, no score more
    than one output step from TFLite Micro's on every row whose int16 input is the same
    (the issue's bound, on the rows the float first layer's summation order leaves alone;
    with XNNPACK, the default, that layer sums in a third order inside the delegate, whose
    tensors cannot be read, so its rows cannot be told apart)."""
    figures, steps_of = {}, {}
    for resolver in ("AUTO", "BUILTIN_WITHOUT_DEFAULT_DELEGATES", "BUILTIN_REF"):
        scores = litert_scores(model, x_test, resolver)
        steps = steps_of[resolver] = output_steps(model, scores, tflm_scores)
        figures[resolver] = {
            "class_agreement": float((scores.argmax(1) == tflm_scores.argmax(1)).mean()),
            "rows_differing": int((steps > 0).any(axis=1).sum()),
            "max_output_steps": int(steps.max())}
    for resolver in ("AUTO", "BUILTIN_WITHOUT_DEFAULT_DELEGATES"):
        assert figures[resolver]["class_agreement"] >= 0.999, figures
    ops, _, _, _ = mcu.read_graph(model)
    (quantized, hidden), trace = [int(op.outputs[0]) for _, op in ops[1:3]], {}
    mcu_sim.simulate(model, x_test, trace=trace)
    lite_q, lite_h = litert_tensors(model, x_test, [quantized, hidden])
    same = (lite_q == trace[quantized]).all(axis=1)
    figures["rows_with_the_same_int16_input"] = int(same.sum())
    assert same.mean() >= 0.9 and (lite_h[same] == trace[hidden][same]).all(), figures
    within = int(steps_of["BUILTIN_WITHOUT_DEFAULT_DELEGATES"][same].max())
    figures["max_output_steps_given_the_same_int16_input_no_delegate"] = within
    assert within <= 1, figures
    reference = figures.pop("BUILTIN_REF")  # reported, not asserted: the app never uses it
    with capsys.disabled():
        print(f"\nTFLite Micro vs LiteRT on {len(x_test)} test rows (asserted): "
              f"{json.dumps(figures)}\nNote, expected and not a failure: LiteRT's reference "
              f"kernels (BUILTIN_REF), which the app never uses, do not compute int16 layers as "
              f"TFLite Micro does (docs/guide/microcontroller.md): class agreement "
              f"{reference['class_agreement']:.1%}, {reference['rows_differing']} rows differ")


# --- Cortex-M3 under QEMU ----------------------------------------------------------------

TARGETS = {
    # name: (make variables, QEMU board, QEMU cpu); the Makefile's default is the Cortex-M3
    "cortex-m3": ([], "mps2-an385", "cortex-m3"),
    "cortex-m4f": (["ARM_CPU=-mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard"],
                   "mps2-an386", "cortex-m4"),
}
FLAGS = {"cortex-m3": "-mcpu=cortex-m3 -mthumb (soft float)",
         "cortex-m4f": "-mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard",
}


@pytest.fixture(scope="module", params=list(TARGETS))
def cortex_m(request, build_dir) -> tuple[str, Path]:
    """(target, the QEMU ELF) built in its own copy of the folder, with `make size` output."""
    need("make", "arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm")
    target = request.param
    work = build_dir.parent / f"{build_dir.name}-{target}"
    if not work.exists():
        shutil.copytree(build_dir, work, ignore=shutil.ignore_patterns("sdss_host"))
    proc = subprocess.run(["make", "-C", str(work), "qemu", "size", *TARGETS[target][0]],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (work / "size.txt").write_text(proc.stdout)
    return target, work / "sdss_qemu.elf"


def berkeley_size(text: str, elf: str) -> dict:
    line = next(line for line in text.splitlines() if line.split()[-1:] == [elf]
                and line.split()[0].isdigit())
    text_b, data, bss = (int(v) for v in line.split()[:3])
    return {"text_and_rodata": text_b, "data": data, "bss": bss}


@pytest.mark.slow
def test_cortex_m_under_qemu_matches_the_host_bit_for_bit(cortex_m, host, x_test, tflm_scores,
                                                         capsys):
    target, elf = cortex_m
    _, board, cpu = TARGETS[target]
    rows = np.concatenate([x_test, x_test[:16] + np.float32(0.25)])  # >= 2,000 rows
    text = rows_text(rows)
    qemu = ["qemu-system-arm", "-M", board, "-cpu", cpu, "-display", "none",
            "-monitor", "none", "-serial", "none", "-semihosting-config",
            "enable=on,target=native", "-icount", "shift=0", "-kernel", str(elf)]
    proc = subprocess.run(qemu, input=text, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    calibration = next(line.split() for line in lines if line.startswith("calibration"))
    overhead = next(line.split() for line in lines if line.startswith("overhead"))
    stack = int(next(line.split()[1] for line in lines if line.startswith("stack")))
    classes, scores, extra = parse_scores(
        [line for line in lines if "bits" in line.split()])
    h_classes, h_scores, _ = parse_scores(run_host(host, text))
    assert len(classes) == len(rows) >= 2000
    assert (scores.view(np.uint32) == h_scores.view(np.uint32)).all()
    assert (classes == h_classes).all()
    assert (scores[:len(x_test)].view(np.uint32) == tflm_scores.view(np.uint32)).all()

    # -icount shift=0: one instruction per ns of virtual time; SysTick runs at the board's
    # 25 MHz, so a tick is 40 instructions. The calibration loop checks that ratio.
    per_tick = int(calibration[1]) / int(calibration[2])
    assert 39.0 <= per_tick <= 41.0, calibration
    ticks = np.array([int(e[0]) for e in extra], float)
    timing = float(overhead[1]) / float(overhead[2])
    instructions = (ticks - timing) * per_tick
    size_txt = (elf.parent / "size.txt").read_text()
    size = berkeley_size(size_txt, "sdss_size.elf")
    size_z = berkeley_size(size_txt, "sdss_size_z.elf")  # the default student has the head
    report = {
        "rows": int(len(rows)), "bit_identical_to_host": True,
        "target": target, "qemu": f"qemu-system-arm -M {board} -cpu {cpu} -icount shift=0",
        "compiler": f"arm-none-eabi-gcc -std=c99 -Os {FLAGS[target]}",
        "flash_bytes": size["text_and_rodata"] + size["data"],
        "flash_bytes_sdss_classify_z": size_z["text_and_rodata"] + size_z["data"],
        "ram_bytes": size["data"] + size["bss"] + stack,
        "stack_bytes_measured": stack, **{f"classifier_{k}": v for k, v in size.items()},
        "instructions_per_classification": {
            "mean": float(instructions.mean()), "min": float(instructions.min()),
            "max": float(instructions.max()),
            "resolution": f"one SysTick tick = {per_tick:.1f} instructions per row"},
        "latency_us_estimate": {f"{mhz}MHz": float(instructions.mean()) / mhz for mhz in CLOCKS_MHZ},
        "latency_note": "ESTIMATES: instructions / clock, i.e. one cycle per instruction; "
                        "wait states, multi-cycle loads and branches make real time longer",
    }
    # issue 24's budget for the shipped student: 8 KB of flash, 2 KB of RAM, on both targets
    assert report["flash_bytes_sdss_classify_z"] <= 8192 and report["ram_bytes"] <= 2048
    assert report["flash_bytes"] <= report["flash_bytes_sdss_classify_z"]
    assert 1000 < report["instructions_per_classification"]["mean"] < 200_000
    out = os.environ.get("SDSS_MCU_REPORT")
    if out:  # one entry per target
        doc = json.loads(Path(out).read_text()) if Path(out).is_file() else {}
        Path(out).write_text(json.dumps({**doc, target: report}, indent=2) + "\n")
    with capsys.disabled():
        print(f"\n{target} figures: {json.dumps(report, indent=2)}")


@pytest.mark.slow
def test_mcu_refuses_an_ensemble_student_before_converting(mcu_run, monkeypatch, capsys):
    from sdss_distill.export import cli as export_cli
    from sdss_distill.export import run as export_run
    monkeypatch.setattr(export_run, "ensemble_info", lambda student: {"members": [{}, {}]})
    assert export_cli.main(["--run", str(mcu_run), "--mcu", "--no-finetune", "--quiet"]) == 2
    assert "--mcu: the C generator is made and tested for a single-MLP student; this run's " \
           "student is an ensemble of 2 members" in capsys.readouterr().err


@pytest.fixture(scope="module")
def ptq_candidates(layout, x_test) -> dict[str, bytes]:
    """Both PTQ candidates export compares (16x8 and int8 activations) for the run's student,
    whichever ships: the C kernels of each stay covered when export picks the other (or QAT)."""
    from sdss_distill.export.convert import int8_candidates
    from sdss_distill.models.mlp import load
    return int8_candidates(load(layout.model("student")), x_test[:1000])


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["int16", "int8"])
def test_every_ptq_candidate_builds_bit_identical_to_tflite_micro(ptq_candidates, activation,
                                                                  x_test, tmp_path):
    need("gcc", "make")
    content = ptq_candidates[activation]
    assert activation_bits(content) == (16 if activation == "int16" else 8)
    rows = x_test[:500]
    expected = tflm_outputs(content, rows)
    sim = mcu_sim.simulate(content, rows, rounding="double")
    assert (sim.view(np.uint32) == expected.view(np.uint32)).all()
    mcu.write_mcu(tmp_path / "mcu", content, z_error_scale=0.05)  # the default student's head
    proc = subprocess.run(["make", "-C", str(tmp_path / "mcu"), "host", "CC=gcc"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _, scores, _ = parse_scores(run_host(tmp_path / "mcu" / "sdss_host", rows_text(rows)))
    assert (scores.view(np.uint32) == expected.view(np.uint32)).all()
