"""TFLite Micro against LiteRT on exported runs' student_int8 files (int8 or 16x8), and why
they differ.

For each run: TFLite Micro's scores (the tflite-micro wheel, one invoke per test row), the
numpy model of the C classifier's arithmetic (`mcu.simulate`, double rounding), and LiteRT
with its default path (AUTO, XNNPACK), its optimized kernels without delegates and its
reference kernels, each compared with TFLite Micro (class agreement, rows with any score
different, largest difference in output steps) and with the single-rounding model; and
the same split by whether LiteRT's int16 QUANTIZE output (read without delegates, one row
per invoke as the scores) equals TFLite Micro's: `*_same_int16_input` covers those rows
(for AUTO an approximation: XNNPACK sums the float first layer in its own order).

    python scripts/tflm_vs_litert.py --runs /tmp/mcu_runs/seed0 /tmp/mcu_runs/seed1

Output steps: units of the scale of the quantized output (the last DEQUANTIZE's input).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from any directory, installed or not
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

PATHS = ("BUILTIN_WITHOUT_DEFAULT_DELEGATES", "AUTO", "BUILTIN_REF")


def compare(run: Path) -> dict:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    from tflite_micro.python.tflite_micro import runtime

    from sdss_distill.core.schema import STUDENT_VIEW, get_view
    from sdss_distill.data.table import features
    from sdss_distill.export import mcu, mcu_sim
    from sdss_distill.export.mcu_graph import output_step
    from sdss_distill.runs.rows import load_run_rows
    from sdss_distill.runs.rundir import RunDir
    layout = RunDir(run).current()
    rows = load_run_rows(layout, None)
    x = features(rows.df.loc[rows.split.test], get_view(STUDENT_VIEW)).astype("float32")
    model = layout.tflite_file("student_int8").read_bytes()
    tflm = runtime.Interpreter.from_bytes(model)
    micro = np.empty((len(x), 3), np.float32)
    for k, row in enumerate(x):
        tflm.set_input(row[None, :], 0)
        tflm.invoke()
        micro[k] = tflm.get_output(0).reshape(-1)
    double, single = (mcu_sim.simulate(model, x, rounding=r) for r in ("double", "single"))
    step = output_step(model)
    ops, _, _, _ = mcu.read_graph(model)
    quantized = next(int(op.outputs[0]) for name, op in ops if name == "QUANTIZE")
    trace = {}
    mcu_sim.simulate(model, x, trace=trace)
    out = {"run": str(run), "rows": int(len(x)), "output_step": step,
           "double_rounding_model_equals_tflm": int((double.view("u4") == micro.view("u4")).all(1).sum())}
    same = None  # rows whose int16 QUANTIZE output (no delegates, batch 1) is TFLite Micro's
    for path in PATHS:
        keep = path == "BUILTIN_WITHOUT_DEFAULT_DELEGATES"  # the only path whose tensors can be read
        interpreter = Interpreter(model_content=model, num_threads=1,
                                  experimental_preserve_all_tensors=keep,
                                  experimental_op_resolver_type=getattr(OpResolverType, path))
        runner = interpreter.get_signature_runner("serving_default")
        lite, q = [], []
        for row in x:
            lite.append(runner(photometric=row[None, :])["logits"])
            if keep:
                q.append(interpreter.get_tensor(quantized)[0])
        lite = np.concatenate(lite)
        if keep:
            same = (np.stack(q) == trace[quantized]).all(axis=1)
            out["rows_same_int16_input"] = int(same.sum())
        steps = np.rint(np.abs(lite.astype(np.float64) - micro) / step).astype(int)
        out[path] = {"class_agreement": float((lite.argmax(1) == micro.argmax(1)).mean()),
                     "rows_differing": int((steps > 0).any(1).sum()),
                     "max_output_steps": int(steps.max()),
                     **({"max_output_steps_same_int16_input": int(steps[same].max())}
                        if same is not None else {}),
                     "max_abs_difference": float(np.abs(lite.astype(np.float64) - micro).max()),
                     "rows_equal_to_single_rounding_model":
                         int((lite.view("u4") == single.view("u4")).all(1).sum())}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="+", required=True, help="exported run directories")
    args = p.parse_args(argv)
    for run in args.runs:
        print(json.dumps(compare(Path(run))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
