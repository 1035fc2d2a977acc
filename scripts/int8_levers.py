"""Measure the int8 export's levers on trained runs, without training again.

For each run: load its float student once, build the int8 flatbuffer in several variants
(calibration rows, per-channel or per-tensor weights, which layers stay float32, int16
activations (TFLite 16x8), a fully int8 graph) and score each on the run's test rows through LiteRT:
accuracy, drop from the float Keras student, agreement with it, size. Output: a Markdown
table on stdout and OUT.json.

    python scripts/int8_levers.py --runs /tmp/runs/seed0 /tmp/runs/seed1 --out /tmp/levers
    python scripts/int8_levers.py --runs /tmp/runs/seed0 --variants all_rows clip_99.9
    python scripts/int8_levers.py --runs /tmp/runs/seed0 --variants clip_99.9 int16_act \
        --bench-rows 200000          # + LiteRT batched rows/s and batch-1 latency, as ratios
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from any directory, installed or not
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from sdss_distill.core.errors import run_cli  # noqa: E402
from sdss_distill.core.io import quiet_import, quiet_native_stderr, write_atomic  # noqa: E402

PROG = "scripts/int8_levers.py"

VARIANTS = {
    # name: (description, build options)
    "all_rows": ("export before the outlier rule: dense_0 float32, per-channel int8, "
                 "calibration on all student-train rows", {}),
    "calib_200": ("calibration on 200 random student-train rows", {"calibration_rows": 200}),
    "calib_1000": ("calibration on 1,000 random student-train rows", {"calibration_rows": 1000}),
    "clip_99.9": ("calibration rows whose largest hidden activation is at most the 99.9th "
                  "percentile of the student-train rows' (outliers no longer set the int8 "
                  "ranges); what export ships now (export.calibration_rows)",
                  {"clip_percentile": 99.9}),
    "clip_99.5": ("the same, 99.5th percentile", {"clip_percentile": 99.5}),
    "clip_99": ("the same, 99th percentile", {"clip_percentile": 99.0}),
    "clip_99.5_logits": ("99.5th percentile, clipping the logits' range too",
                         {"clip_percentile": 99.5, "clip_logits": True}),
    "per_tensor": ("per-tensor weight scales (converter flag, passed to the quantizer)",
                   {"per_channel": False, "clip_percentile": 99.9}),
    "int16_act": ("TFLite 16x8 after a float32 dense_0: int16 activations, int8 weights, int32 "
                  "biases; calibration rows <= the 99.9th percentile",
                  {"int16": True, "clip_percentile": 99.9}),
    "int16_act_all_rows": ("the same, calibration on all student-train rows", {"int16": True}),
    "int16_full": ("TFLite 16x8 on the whole graph, the input quantized float32 -> int16 "
                   "(dense_0 int8 weights too); all student-train rows",
                   {"int16": True, "float_layers": ()}),
    "int16_full_clip_99.9": ("the same, calibration rows <= the 99.9th percentile",
                             {"int16": True, "float_layers": (), "clip_percentile": 99.9}),
    "logits_float": ("dense_0 and the logits layer float32, dense_1 int8",
                     {"float_layers": ("dense_0", "logits")}),
    "all_int8": ("everything int8, the input magnitudes quantized too", {"float_layers": ()}),
}


def clipped_rows(student, x: np.ndarray, percentile: float, logits: bool = False) -> np.ndarray:
    """The rows whose largest activation in every hidden layer (and the logits' largest
    absolute value, with `logits`) is at most that layer's `percentile` over `x`."""
    from sdss_distill.export.fold import fold_student
    kernels, biases = fold_student(student)
    h, keep = np.asarray(x, "float64"), np.ones(len(x), bool)
    for k, (w, b) in enumerate(zip(kernels, biases)):
        h = h @ w + b
        last = k == len(kernels) - 1
        if not last:
            h = np.maximum(h, 0.0)
        if not last or logits:
            top = np.abs(h).max(axis=1)
            keep &= top <= np.percentile(top, percentile)
    return np.asarray(x)[keep]


def build(student, x_train: np.ndarray, *, calibration_rows: int | None = None,
          per_channel: bool = True, float_layers=("dense_0",), int16: bool = False,
          clip_percentile: float | None = None, clip_logits: bool = False,
          seed: int = 0) -> bytes:
    """One int8 variant of the student (front folded into dense_0, float32 in and out)."""
    from sdss_distill.core import tflite_file
    from sdss_distill.core.schema import STUDENT_VIEW, get_view
    from sdss_distill.export import convert as export
    tf = quiet_import("tensorflow")
    view = get_view(STUDENT_VIEW)
    x = np.asarray(x_train, "float32")
    if calibration_rows:
        x = x[np.random.default_rng(seed).permutation(len(x))[:calibration_rows]]
    if clip_percentile is not None:
        x = clipped_rows(student, x, clip_percentile, clip_logits)
    with tempfile.TemporaryDirectory(prefix="sdss-levers-") as tmp, quiet_native_stderr():
        folded, _ = export.folded_student(student, x)
        sm = export.saved_model(folded, view, Path(tmp) / "sm")
        c = tf.lite.TFLiteConverter.from_saved_model(str(sm), signature_keys=["serving_default"])
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.representative_dataset = export.calibration(x, view.name)
        c.inference_input_type = c.inference_output_type = tf.float32
        c._experimental_disable_per_channel_quantization_for_dense_layers = not per_channel
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if not float_layers:  # the whole graph quantized, the input included
            c.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
                if int16 else tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            return tflite_file.shrink(c.convert())
        float_bytes = export.convert(sm, "float32")
        front = tflite_file.front_nodes(float_bytes, [f for f in float_layers if f != "logits"])
        if "logits" in float_layers:  # the last op's output is named after the signature
            front.append(tflite_file.op_output_names(float_bytes)[-1][1])
        return tflite_file.shrink(export.quantize_selective(
            c, c.representative_dataset, front, activations="int16" if int16 else "int8"))


def litert_logits(content: bytes, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter
    with quiet_native_stderr(replay_on_error=False):
        it = Interpreter(model_content=content, num_threads=1)
    runner = it.get_signature_runner("serving_default")
    return runner(photometric=np.ascontiguousarray(x, "float32"))["logits"]


def timing(files: dict[str, bytes], x: np.ndarray, rows: int, rounds: int = 5,
           invokes: int = 2000) -> dict:
    """LiteRT (default resolver, one thread) per file: batched rows/s over `rows` rows in one
    resized batch, and batch-1 latency (median of `invokes` calls); the files take turns in
    each of `rounds` rounds and the medians over rounds are reported (a shared machine)."""
    import time

    from ai_edge_litert.interpreter import Interpreter
    batch = np.ascontiguousarray(np.resize(x, (rows, x.shape[1])), "float32")
    runners = {}
    for name, content in files.items():
        with quiet_native_stderr(replay_on_error=False):
            big, one = (Interpreter(model_content=content, num_threads=1) for _ in range(2))
        big.resize_tensor_input(big.get_input_details()[0]["index"], list(batch.shape))
        big.allocate_tensors()
        one.allocate_tensors()
        runners[name] = (big, one)
    rates, lat = {n: [] for n in files}, {n: [] for n in files}
    for _ in range(rounds):
        for name, (big, one) in runners.items():
            big.set_tensor(big.get_input_details()[0]["index"], batch)
            start = time.perf_counter()
            big.invoke()
            rates[name].append(rows / (time.perf_counter() - start))
            idx, ts = one.get_input_details()[0]["index"], np.empty(invokes)
            for k in range(invokes):
                t0 = time.perf_counter_ns()
                one.set_tensor(idx, batch[k % rows][None])
                one.invoke()
                ts[k] = time.perf_counter_ns() - t0
            lat[name].append(float(np.median(ts)) / 1e3)
    return {name: {"batched_rows_per_s": float(np.median(rates[name])),
                   "latency_us_median": float(np.median(lat[name])), "rows": rows,
                   "rounds": rounds, "invokes": invokes} for name in files}


def measure(run_path: Path, names: list[str], bench_rows: int = 0) -> dict:
    from sdss_distill.core import tflite_file
    from sdss_distill.export.source import RunData
    from sdss_distill.models.mlp import logits
    from sdss_distill.runs.rundir import RunDir
    run = RunData(RunDir(run_path).current())
    x_test, y = run.x_test["photometric"], run.y_test
    ref = logits(run.student, x_test).argmax(1)
    out = {"run": str(run_path), "seed": run.config["seed"],
           "keras_accuracy": float((ref == y).mean()), "variants": {}}
    files = {}
    for name in names:
        description, options = VARIANTS[name]
        try:
            content = build(run.student, run.x_train["photometric"], **options)
            pred = litert_logits(content, x_test).argmax(1)
        except Exception as e:  # noqa: BLE001 - a file the converter or LiteRT refuses is a result too
            out["variants"][name] = {"description": description, "error": str(e)[:200]}
            continue
        files[name] = content
        acc = float((pred == y).mean())
        out["variants"][name] = {
            "description": description, "size_bytes": len(content),
            "operators": tflite_file.operators(content), "test_accuracy": acc,
            "drop_points": 100 * (out["keras_accuracy"] - acc),
            "agreement": float((pred == ref).mean())}
        print(f"seed {out['seed']} {name:13s} {len(content):5d} B acc {acc:.2%} "
              f"drop {out['variants'][name]['drop_points']:+.2f} pt agree "
              f"{out['variants'][name]['agreement']:.2%}", file=sys.stderr, flush=True)
    if bench_rows:
        out["timing"] = timing(files, x_test, bench_rows)
        print(f"seed {out['seed']} timing {json.dumps(out['timing'])}", file=sys.stderr, flush=True)
    return out


def markdown(results: list[dict]) -> str:
    lines = ["| seed | variant | size (B) | accuracy | drop (points) | agreement |",
             "|---:|---|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['seed']} | Keras float student | | {r['keras_accuracy']:.2%} | | |")
        for name, v in r["variants"].items():
            if "error" in v:
                lines.append(f"| {r['seed']} | {name} | failed: {v['error']} | | | |")
                continue
            lines.append(f"| {r['seed']} | {name} | {v['size_bytes']:,} | {v['test_accuracy']:.2%} "
                         f"| {v['drop_points']:+.2f} | {v['agreement']:.2%} |")
    for r in results:
        if "timing" not in r:
            continue
        base = r["timing"].get("clip_99.9") or next(iter(r["timing"].values()))
        lines += ["", f"Seed {r['seed']}, LiteRT timing (ratios to clip_99.9, the int8 file):", "",
                  "| variant | batched rows/s | ratio | batch-1 latency (us) | ratio |",
                  "|---|---:|---:|---:|---:|"]
        for name, t in r["timing"].items():
            lines.append(f"| {name} | {t['batched_rows_per_s']:,.0f} | "
                         f"{t['batched_rows_per_s'] / base['batched_rows_per_s']:.2f} | "
                         f"{t['latency_us_median']:.2f} | "
                         f"{t['latency_us_median'] / base['latency_us_median']:.2f} |")
    return "\n".join(lines) + "\n"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(allow_abbrev=False, prog=PROG, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="+", required=True, help="trained run directories")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                   help="variants to build (default: all)")
    p.add_argument("--out", help="write OUT.json and OUT.md (default: stdout only)")
    p.add_argument("--bench-rows", type=int, default=0, metavar="N",
                   help="also time the variants with LiteRT: N rows in one batch and batch-1 "
                        "latency (default: 0, no timing)")
    p.add_argument("--debug", action="store_true", help="show tracebacks (default: off)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)

    def body() -> int:
        results = [measure(Path(r), args.variants, args.bench_rows) for r in args.runs]
        md = markdown(results)
        print(md)
        if args.out:
            write_atomic(Path(args.out + ".json"), json.dumps(results, indent=2) + "\n")
            write_atomic(Path(args.out + ".md"), md.encode())
        return 0

    return run_cli(body, PROG, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
