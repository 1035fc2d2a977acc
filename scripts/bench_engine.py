"""Per-epoch time of the default teacher and student MLPs under each candidate fit engine.

Usage:
    python scripts/bench_engine.py                    # sdss teacher-train rows, 3 rounds
    python scripts/bench_engine.py --rounds 1 --epochs 10 --data bright

Engines, each in its own child process (Keras fixes its backend at import), run
alternately (a b c a b c ...) in this one script run so ratios compare runs under the same
load:
  jax_fit     the hand-written JAX engine (`distill/jax_fit.py`), if this tree still has it;
  keras_jax   Keras 3 `Model.fit` on the JAX backend (KERAS_BACKEND=jax before import);
  keras_tf    Keras 3 `Model.fit` on TensorFlow (tf.data input, as distill/fit.py fed it).
Every child uses one thread (as the package does). A child first fits one epoch (compile),
then `--epochs` epochs with no early stopping; the per-epoch time is the second fit's
seconds / epochs. Rows: the default split's teacher-train fit rows of `--data`.

Measured 2026-12-06 10:05 UTC, Intel(R) Xeon(R) Processor (2 cores, shared: load average 1.4
rising to 5.2), `--rounds 1 --epochs 5`, sdss (12,579 rows), ms per epoch, teacher /
student: jax_fit (hand-written Adam then) 44.6 / 7.7; keras_jax 58.4 / 25.4 (1.3x / 3.3x);
keras_tf 116.7 / 93.2 (2.6x / 12x). A whole default `train --data sdss` with every model on
Keras `fit` on the JAX backend (engine = "keras", KERAS_BACKEND=jax, numpy input) took 45.5 s
user CPU against 14.7 s for the JAX engine (load 11-13, wall times meaningless): so the
package keeps one JAX engine (jax_fit.py), with optax's Adam and Keras's callbacks.
Again at 11:22 UTC (load 1.4-2.1), after that change, `--rounds 3 --epochs 10`, medians:
jax_fit 39.1 / 4.7; keras_jax 46.8 / 13.4 (1.2x / 2.9x); keras_tf 101.7 / 62.7 (2.6x / 13x).
Per epoch the gap is small for the teacher: most of the whole-run difference is Keras's
per-fit overhead (compiling each model's train and test steps, validation, callbacks).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("jax_fit", "keras_jax", "keras_tf")
MODELS = {"teacher": ("physical", (128, 128, 64, 32)), "student": ("photometric", (24, 24))}


def rows(data: str):
    """(x by view name, y) of the default split's teacher-train fit rows."""
    from sdss_distill.core.schema import get_view
    from sdss_distill.data import datasets
    from sdss_distill.data.table import clean, features, labels, split, validation_slice
    _, table = datasets.load(data)
    df, _ = clean(table, get_view("physical"))
    fit, _ = validation_slice(df, split(df, (0.4, 0.4, 0.2), 0).teacher_train, 0.15, 0)
    part = df.loc[fit]
    return {v: features(part, get_view(v)) for v, _ in MODELS.values()}, labels(part)


def child(engine: str, data: str, epochs: int, batch: int) -> dict:
    """Time one engine on both models in this process; returns seconds per epoch."""
    import keras

    from sdss_distill.core.schema import get_view
    from sdss_distill.models.mlp import build_mlp
    xs, y = rows(data)
    out = {"backend": keras.backend.backend(), "rows": int(len(y))}
    for name, (view, hidden) in MODELS.items():
        x = xs[view]
        keras.utils.set_random_seed(0)
        model = build_mlp(get_view(view), hidden, x, name=name)
        fit_once = _fitter(engine, model, x, y, batch)
        fit_once(1)  # compile
        start = time.perf_counter()
        fit_once(epochs)
        out[name] = (time.perf_counter() - start) / epochs
    return out


def _fitter(engine: str, model, x, y, batch: int):
    import numpy as np
    if engine == "jax_fit":
        from sdss_distill.distill import jax_fit
        from sdss_distill.distill.fit import FitSettings
        mask = np.ones((len(y), 1), bool)
        val_mask = (np.arange(len(y)) < 256)[:, None]

        def fit_jax(epochs):
            settings = FitSettings(epochs, batch, epochs + 1, 1e-2)
            jax_fit.fit_members([model], x, y, mask, val_mask, settings)
        return fit_jax
    import keras
    model.compile(optimizer=keras.optimizers.Adam(1e-2), steps_per_execution=64,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    val = (x[:256], y[:256])
    if engine == "keras_tf":
        import tensorflow as tf
        train = (tf.data.Dataset.from_tensor_slices((x, y)).cache().shuffle(len(y), seed=0)
                 .batch(batch).prefetch(2))
        val_ds = tf.data.Dataset.from_tensor_slices(val).batch(4096).cache()
        return lambda epochs: model.fit(train, validation_data=val_ds, epochs=epochs, verbose=0)
    return lambda epochs: model.fit(x, y, batch_size=batch, validation_data=val,
                                    validation_batch_size=4096, epochs=epochs, verbose=0)


def run_child(engine: str, args) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), KERAS_BACKEND="tensorflow"
               if engine == "keras_tf" else "jax")
    cmd = [sys.executable, __file__, "--child", engine, "--data", args.data,
           "--epochs", str(args.epochs), "--batch", str(args.batch)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    p.add_argument("--data", default="sdss", help="packaged dataset or table (default: sdss)")
    p.add_argument("--epochs", type=int, default=20, help="epochs per fit (default: 20)")
    p.add_argument("--batch", type=int, default=128, help="batch size (default: 128)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (default: 3)")
    p.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES,
                   help="engines to time (default: all)")
    p.add_argument("--child", choices=ENGINES, help="internal: time one engine in this process")
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.data, args.epochs, args.batch)))
        return 0
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    results = {e: [] for e in args.engines}
    for r in range(args.rounds):
        for engine in args.engines:
            got = run_child(engine, args)
            results[engine].append(got)
            print(f"round {r} {engine}: {json.dumps(got)}", flush=True)
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    for engine, runs in results.items():
        ok = [g for g in runs if "error" not in g]
        if ok:
            print(f"{engine:10s} median ms/epoch: " + ", ".join(
                f"{m} {1000 * statistics.median(g[m] for g in ok):.1f}" for m in MODELS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
