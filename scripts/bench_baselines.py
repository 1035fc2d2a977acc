"""Side by side: the distilled student against what users pick instead, on the same rows.

Usage (needs the training extra: pip install '.[train]'; runs from any directory):
    python scripts/bench_baselines.py --data bright \
        --seeds 0 1 2 --out runs/bench
    python scripts/bench_baselines.py --data ... --seeds 0 --epochs 5 --invokes 200 --out /tmp/b

For each seed it trains a run with the package's own command line (`train`, then
`export --no-finetune`), reads that run's rows back (`sdss_distill.runs.rows.load_run_rows`:
the table cleaned and split exactly as the run did), and measures on its test rows:
the int8 and float32 students and the teacher through LiteRT, the Keras student called
directly, and scikit-learn HistGradientBoosting and RandomForest on u g r i z + the four
adjacent colours, trained on every non-test row. Every model is timed through the same
Python loop (one call per batch: batch-1 latency, then batched throughput), one thread
each. Writes OUT/bench.json and OUT/bench.md; no pickle file is ever written (the
scikit-learn models' size is `len(pickle.dumps(model))`, in memory).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from any directory, installed or not
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from sdss_distill.core.errors import InputError, run_cli  # noqa: E402
from sdss_distill.core.io import write_atomic  # noqa: E402

PROG = "python scripts/bench_baselines.py"
MODELS = ("student_int8", "student_float32", "teacher_float32", "keras_student",
          "hist_gradient_boosting", "random_forest")
ROW_SETS = {"student_train": "student-train rows (40 %)", "teacher_train": "teacher-train rows (40 %)",
            "non_test": "all non-test rows (teacher-train + student-train, 80 %)"}
TRAINED_ON = {
    "student_float32": "as student_int8 (the same Keras student, not quantized)",
    "keras_student": "as student_int8 (the Keras model the .tflite files come from)",
    "hist_gradient_boosting": ROW_SETS["non_test"],
    "random_forest": ROW_SETS["non_test"],
}
INPUTS = {"teacher_float32": "u g r i z + redshift",
          "hist_gradient_boosting": "u g r i z + u-g g-r r-i i-z",
          "random_forest": "u g r i z + u-g g-r r-i i-z"}


def time_calls(make, x: np.ndarray, *, invokes: int, batch: int, warmup: int = 50) -> dict:
    """Batch-1 latency (median, p99 over `invokes` calls) and rows/s at `batch` rows a call.

    `make(n)` returns a function that classifies an [n, k] float32 array; every model goes
    through this same loop, so the Python overhead per call is the same for all.
    """
    one = make(1)
    rows = [x[k % len(x)][None] for k in range(min(len(x), 256))]
    times = np.empty(invokes, np.int64)
    for k in range(warmup + invokes):
        start = time.perf_counter_ns()
        one(rows[k % len(rows)])
        if k >= warmup:
            times[k - warmup] = time.perf_counter_ns() - start
    xb = np.ascontiguousarray(np.resize(x, (batch, x.shape[1])), dtype=np.float32)
    many = make(batch)
    many(xb)
    reps, start = 0, time.perf_counter()
    while reps < 3 or time.perf_counter() - start < 1.0:
        many(xb)
        reps += 1
    return {"latency_us_median": float(np.median(times) / 1e3),
            "latency_us_p99": float(np.percentile(times, 99) / 1e3),
            "throughput_rows_per_s": float(reps * batch / (time.perf_counter() - start))}


def litert_caller(path: Path):
    """`make(n)` for a .tflite file: one interpreter (1 thread) resized to n rows."""
    from sdss_distill.edge.classifier import interpreter

    def make(n: int):
        interp = interpreter(path.read_bytes(), path, 1)
        inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
        interp.resize_tensor_input(inp["index"], [n, inp["shape"][1]])
        interp.allocate_tensors()

        def call(x):
            interp.set_tensor(inp["index"], x)
            interp.invoke()
            return interp.get_tensor(out["index"])
        return call
    return make


def sklearn_features(df) -> np.ndarray:
    """u g r i z and the four adjacent colours."""
    from sdss_distill.core.schema import BANDS
    mags = df[list(BANDS)].to_numpy("float32")
    return np.hstack([mags, mags[:, :-1] - mags[:, 1:]])


def train_run(run: Path, data: str, seed: int, epochs: int | None, invokes: int) -> float:
    """Train and export one run with the package's command line; returns its wall time (s)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    start = time.perf_counter()
    if not (run / "models" / "student.keras").is_file():
        train = [sys.executable, "-m", "sdss_distill.train", "--data", data, "--out", str(run),
                 "--seed", str(seed), "--quiet"] + (["--epochs", str(epochs)] if epochs else [])
        subprocess.run(train, check=True, env=env)
    if not (run / "tflite" / "student_int8.tflite").is_file():
        subprocess.run([sys.executable, "-m", "sdss_distill.export", "--run", str(run),
                        "--no-finetune", "--quiet", "--invokes", str(min(invokes, 1000))],
                       check=True, env=env)
    return time.perf_counter() - start


def bench_seed(run: Path, seed: int, *, invokes: int, batch: int, say) -> dict:
    """Every model of one seed: test accuracy, size, latency, throughput, training rows."""
    import keras
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from threadpoolctl import threadpool_limits

    from sdss_distill.core.schema import STUDENT_VIEW, get_view
    from sdss_distill.data.table import features, labels, split
    from sdss_distill.models.mlp import load
    from sdss_distill.runs.rows import load_run_rows

    rows = load_run_rows(run)
    df, sp = rows.df, rows.split
    again = split(df, rows.config["split"], seed)  # the pipeline's split for this seed
    if not all(np.array_equal(a, b) for a, b in zip(again.subsets().values(), sp.subsets().values())):
        raise RuntimeError(f"{run}: the saved split differs from data.split(seed={seed})")
    test, non_test = df.loc[sp.test], df.loc[np.concatenate([sp.teacher_train, sp.student_train])]
    y_test = labels(test)
    sv, tv = get_view(STUDENT_VIEW), get_view(rows.config["teacher_view"])
    x_student, x_teacher = features(test, sv), features(test, tv)
    out = {}

    def record(name, size, n_train, make, x):
        pred = make(len(x))(np.ascontiguousarray(x, dtype=np.float32)).argmax(axis=1)
        with threadpool_limits(1):
            timing = time_calls(make, x, invokes=invokes, batch=batch)
        out[name] = {"test_accuracy": float((pred == y_test).mean()), "size_bytes": int(size),
                     "train_rows": int(n_train), **timing}
        say(f"seed {seed} {name}: {out[name]['test_accuracy']:.2%}, {size:,} B, "
            f"{timing['latency_us_median']:.1f} us, {timing['throughput_rows_per_s']:,.0f} rows/s")

    report = json.loads(rows.layout.report_json.read_text())
    sizes = {"student_train": len(sp.student_train), "teacher_train": len(sp.teacher_train),
             "non_test": len(sp.student_train) + len(sp.teacher_train)}
    trained = {arm: report["models"][arm]["rows"] for arm in ("student", "teacher")}
    TRAINED_ON["student_int8"] = (f"{ROW_SETS[trained['student']]}, 15 % of them held out for "
                                  f"early stopping; soft labels from the teacher "
                                  f"(method {report['method']})")
    TRAINED_ON["teacher_float32"] = (f"{ROW_SETS[trained['teacher']]}, 15 % held out for early "
                                     f"stopping (method {report['method']})")
    n_student, n_teacher = sizes[trained["student"]], sizes[trained["teacher"]]
    for stem, x, n in (("student_int8", x_student, n_student),
                       ("student_float32", x_student, n_student),
                       ("teacher_float32", x_teacher, n_teacher)):
        path = run / "tflite" / f"{stem}.tflite"
        record(stem, path.stat().st_size, n, litert_caller(path), x)

    keras_path = run / "models" / "student.keras"
    student = load(keras_path)
    record("keras_student", keras_path.stat().st_size, n_student,
           lambda n: lambda x: keras.ops.convert_to_numpy(student(x, training=False)), x_student)

    x_fit, y_fit = sklearn_features(non_test), labels(non_test)
    x_sk = sklearn_features(test)
    for name, model in (("hist_gradient_boosting", HistGradientBoostingClassifier(random_state=seed)),
                        ("random_forest", RandomForestClassifier(random_state=seed, n_jobs=1))):
        model.fit(x_fit, y_fit)
        record(name, len(pickle.dumps(model)), len(x_fit),
               lambda n, m=model: m.predict_proba, x_sk)
    return out


def summarise(per_seed: dict[int, dict], machine: dict, args) -> dict:
    """Mean ± std over seeds, and each model's ratios to the int8 student of the same seed."""
    models = {}
    for name in MODELS:
        vals = [per_seed[s][name] for s in per_seed]
        ref = [per_seed[s]["student_int8"] for s in per_seed]

        def mean(key, vs=vals):
            return float(np.mean([v[key] for v in vs]))

        def ratio(key, vs=vals, rs=ref):
            return float(np.mean([v[key] / r[key] for v, r in zip(vs, rs)]))

        acc = [v["test_accuracy"] for v in vals]
        models[name] = {
            "inputs": INPUTS.get(name, "u g r i z"), "trained_on": TRAINED_ON[name],
            "train_rows": int(vals[0]["train_rows"]),
            "test_accuracy_mean": float(np.mean(acc)), "test_accuracy_std": float(np.std(acc, ddof=1))
            if len(acc) > 1 else 0.0,
            "size_bytes": mean("size_bytes"), "latency_us_median": mean("latency_us_median"),
            "latency_us_p99": mean("latency_us_p99"), "throughput_rows_per_s": mean("throughput_rows_per_s"),
            "size_ratio": ratio("size_bytes"), "latency_ratio": ratio("latency_us_median"),
            "throughput_ratio": ratio("throughput_rows_per_s"),
        }
    return {"data": args.data, "seeds": list(per_seed), "machine": machine,
            "invokes": args.invokes, "batch": args.batch, "epochs": args.epochs,
            "threads": 1, "per_seed": {str(s): v for s, v in per_seed.items()}, "models": models}


def markdown(summary: dict) -> str:
    m = summary["machine"]
    rows = []
    for name, v in summary["models"].items():
        rows.append(
            f"| {name} | {v['inputs']} | {v['train_rows']:,} | {v['test_accuracy_mean'] * 100:.2f} % ± "
            f"{v['test_accuracy_std'] * 100:.2f} | {v['size_bytes']:,.0f} ({v['size_ratio']:,.1f}x) | "
            f"{v['latency_us_median']:,.1f} / {v['latency_us_p99']:,.1f} ({v['latency_ratio']:,.1f}x) | "
            f"{v['throughput_rows_per_s'] / 1e6:,.3f} M ({v['throughput_ratio']:,.3f}x) |")
    seeds = " ".join(map(str, summary["seeds"]))
    return "\n".join([
        "# Distilled student vs. what users pick instead", "",
        f"Data `{summary['data']}`, seeds {seeds} (the pipeline's stratified split of each seed; "
        f"accuracy on its test rows, mean ± std in points over seeds). Ratios in brackets: "
        f"model / student_int8 of the same seed, averaged over seeds. Latency: batch 1, median / "
        f"p99 of {summary['invokes']:,} calls; throughput: batches of {summary['batch']:,} rows; "
        f"every model through the same Python loop, 1 thread (LiteRT interpreter threads, "
        f"threadpoolctl for scikit-learn and TensorFlow's pools). Size: .tflite or .keras file; "
        f"scikit-learn: `len(pickle.dumps(model))`. Machine: {m['cpu']}, {m['cores']} cores, "
        f"Python {m['python']}.", "",
        "| model | inputs | training rows¹ | test accuracy | size, B | latency median / p99, us "
        "| throughput, rows/s |",
        "|---|---|---:|---:|---:|---:|---:|", *rows, "",
        "¹ Training rows:", *(f"- {k}: {v['trained_on']}" for k, v in summary["models"].items()), "",
    ])


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(allow_abbrev=False, prog=PROG, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--data", help="SDSS table (default: $SDSS_DISTILL_DATA, else data/sdss.csv)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="(default: 0 1 2)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="runs (OUT/seed<N>/) and results (OUT/bench.json, OUT/bench.md)")
    p.add_argument("--epochs", type=int, help="max epochs for train (default: train's default)")
    p.add_argument("--invokes", type=int, default=2000, help="batch-1 calls timed (default: 2000)")
    p.add_argument("--batch", type=int, default=1024, help="rows per batched call (default: 1024)")
    p.add_argument("--quiet", action="store_true", help="no progress lines (default: off)")
    p.add_argument("--debug", action="store_true", help="show tracebacks for input errors (default: off)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    say = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))

    def body() -> int:
        from sdss_distill.core.machine import machine
        from sdss_distill.data.datasets import resolve
        if args.invokes < 1 or args.batch < 1:
            raise InputError(f"--invokes and --batch must be >= 1, got {args.invokes}, {args.batch}")
        args.data = resolve(args.data).record
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        from sdss_distill.core.io import quiet_import
        tf = quiet_import("tensorflow")
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        per_seed = {}
        for seed in args.seeds:
            run = out / f"seed{seed}"
            say(f"seed {seed}: train + export {run} ...")
            secs = train_run(run, args.data, seed, args.epochs, args.invokes)
            say(f"seed {seed}: run ready in {secs:.0f} s")
            per_seed[seed] = bench_seed(run, seed, invokes=args.invokes, batch=args.batch, say=say)
        summary = summarise(per_seed, machine(), args)
        write_atomic(out / "bench.json", json.dumps(summary, indent=2) + "\n")
        write_atomic(out / "bench.md", markdown(summary))
        print(markdown(summary))
        return 0

    return run_cli(body, PROG, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
