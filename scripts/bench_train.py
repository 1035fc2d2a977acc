"""How long does the default `train` take, and what does each speed lever buy?

Usage:
    python scripts/bench_train.py                          # 3 repeats on bright and sdss, all levers
    python scripts/bench_train.py --repeats 1 --levers cache batch
    python scripts/bench_train.py --tables bright --levers none --json out.json

Each timing is a whole `python -m sdss_distill.train` process (imports included): wall
seconds, and CPU seconds (user + sys of the child), which the other jobs sharing the
machine disturb far less than wall time. A lever is a pair of settings run alternately
(A B A B ...) in this one script run, so the reported ratio B / A compares runs made under
the same load; the levers of `fold_teachers` and `latency` are measured in this process.
The tables are the packaged datasets: `bright` (10,000 rows) and `sdss` (both, 36,999).

Measured 2026-11-30 05:04 UTC on an Intel(R) Xeon(R) Processor (lscpu; 2 cores, idle, load
average 0.7), compiled epochs cached, `--tables bright sdss --repeats 3 --levers folds
latency --lever-repeats 2`: default train on bright 6.49 / 6.41 / 6.41 s wall (CPU 6.8-6.9
s), on sdss 11.72 / 11.53 / 11.45 s (CPU 13.7-14.0 s). Levers (B / A): 3 fold teachers / 5
0.80 CPU, 0.81 wall on sdss; Keras latency budget 0.05 s / 0.15 s 0.35 of the latency
time. Earlier levers (previous session, loaded machine): engine jax / keras 0.40 CPU (the
`engine` setting is gone: one JAX engine);
cached / cold compile 0.82; fold teachers vmapped / five fits 0.54 cold, 0.89 cached; batch
512 / 128 1.14; teacher patience 10 / 20 0.87 (docs/results/speed.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BRIGHT, BOTH = "bright", "sdss"  # the packaged datasets: DR14 10,000 rows; both tables, 37,000
LEVERS = ("cache", "batch", "teacher_patience", "folds", "fold_teachers", "latency")


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or platform.machine()


def toml_text(settings: dict) -> str:
    """Run settings as TOML: plain keys, then any {"methods": {NAME: {...}}} as tables."""
    plain = "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items() if k != "methods")
    tables = "".join(f"[methods.{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n"
                                                      for k, v in table.items())
                     for name, table in settings.get("methods", {}).items())
    return plain + tables


def train_once(data: str, tmp: Path, settings: dict | None = None, env: dict | None = None) -> dict:
    """One default train process (plus `settings` in a TOML config): wall and CPU seconds."""
    out = Path(tempfile.mkdtemp(dir=tmp))
    argv = [sys.executable, "-m", "sdss_distill.train", "--data", data, "--out",
            str(out / "run"), "--quiet"]
    if settings:
        config = out / "run.toml"
        config.write_text(toml_text(settings))
        argv += ["--config", str(config)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, check=True, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = json.loads((out / "run" / "reports" / "report.json").read_text())
    shutil.rmtree(out)
    models = report["models"]
    return {"wall_s": wall, "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "fit_s": report["timing"]["fit_s"] if "fit_s" in report["timing"] else None,
            "epochs": {k: v["epochs"] for k, v in models.items()},
            "test_accuracy": {k: v["test_accuracy"] for k, v in models.items()}}


def summary(runs: list[dict]) -> dict:
    def stat(key):
        values = [r[key] for r in runs]
        return {"mean": statistics.mean(values), "min": min(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0, "runs": values}
    return {"wall_s": stat("wall_s"), "cpu_s": stat("cpu_s"), "epochs": runs[-1]["epochs"]}


def lever(name: str, data: str, tmp: Path, a: dict, b: dict, repeats: int, say) -> dict:
    """Settings a and b (each {"settings": ..., "env": ...}) run alternately; ratio b / a."""
    runs = {"a": [], "b": []}
    for _ in range(repeats):
        for key, arm in (("a", a), ("b", b)):
            if arm.get("before"):
                arm["before"]()
            runs[key].append(train_once(data, tmp, arm.get("settings"), arm.get("env")))
    out = {"lever": name, "table": data, "a": a["label"], "b": b["label"],
           **{k: summary(v) for k, v in runs.items()}}
    for unit in ("wall_s", "cpu_s"):
        out[f"ratio_{unit}"] = out["b"][unit]["mean"] / out["a"][unit]["mean"]
    say(f"{name} on {data}: {b['label']} / {a['label']} = {out['ratio_cpu_s']:.2f} CPU, "
        f"{out['ratio_wall_s']:.2f} wall")
    return out


def fold_teacher_lever(data: str, repeats: int, say) -> dict:
    """Five fold teachers vmapped into one compiled epoch vs five separate JAX fits (same rows)."""
    import numpy as np

    from sdss_distill.distill import jax_fit, targets
    from sdss_distill.distill.fit import FitSettings
    from sdss_distill.runs.config import Config
    from sdss_distill.runs.pipeline import prepare, workspace
    cfg = Config(data=data)
    ws = workspace(prepare(cfg), cfg)
    from sdss_distill.data.table import features, labels
    rows = ws.rows("non_test")
    x, y = features(ws.df.loc[rows], ws.teacher_view), labels(ws.df.loc[rows])
    fold = targets.fold_ids(y, 5, 0)
    train, val = targets.fold_masks(fold, y, 5, cfg.validation_fraction, 0)
    settings = FitSettings(10, cfg.batch_size, 10**6, cfg.learning_rate)  # 10 epochs each

    def nets():
        import keras

        from sdss_distill.models.mlp import build_mlp
        keras.utils.set_random_seed(0)
        return [build_mlp(ws.teacher_view, cfg.teacher_hidden, x[train[:, k]], name=f"t{k}")
                for k in range(5)]
    together, apart = [], []
    for _ in range(repeats):
        models = nets()
        start = time.process_time()
        jax_fit.fit_members(models, x, y, train, val, settings)
        together.append(time.process_time() - start)
        models = nets()
        start = time.process_time()
        for k, m in enumerate(models):
            jax_fit.fit_members([m], x, y, train[:, k:k + 1], val[:, k:k + 1], settings)
        apart.append(time.process_time() - start)
    ratio = statistics.mean(together) / statistics.mean(apart)
    say(f"fold_teachers on {data}: one vmapped fit / five fits = {ratio:.2f} CPU "
        f"(10 epochs, compiled epochs cached)")
    del np
    return {"lever": "fold_teachers", "table": data, "a": "five separate fits",
            "b": "one vmapped fit", "a_cpu_s": apart, "b_cpu_s": together, "ratio_cpu_s": ratio}


def latency_lever(repeats: int, say) -> dict:
    """metrics.keras_latency at the old budget (0.15 s, >= 20 calls, 3 warm-up calls; batched
    >= 2 calls) vs the new (0.05 s, >= 5 calls, 1 warm-up; batched >= 1 call)."""
    import numpy as np

    from sdss_distill.core.schema import get_view
    from sdss_distill.distill.metrics import keras_latency
    from sdss_distill.models.mlp import build_mlp, ensemble_model
    view = get_view("physical")
    x = np.random.default_rng(0).normal(18, 1, (2000, len(view.columns))).astype("float32")
    nets = [build_mlp(view, (128, 128, 64, 32), x, name=f"t{k}") for k in range(5)]
    models = [ensemble_model(nets, view, name="teacher"), nets[0]]
    old, new = [], []
    for _ in range(repeats):
        start = time.process_time()
        for m in models:
            keras_latency(m, x, budget_s=0.15, min_calls=20)
        old.append(time.process_time() - start)
        start = time.process_time()
        for m in models:
            keras_latency(m, x)
        new.append(time.process_time() - start)
    ratio = statistics.mean(new) / statistics.mean(old)
    say(f"latency: new budget / old = {ratio:.2f} CPU (an ensemble teacher and one MLP)")
    return {"lever": "latency", "a": "budget 0.15 s, >= 20 calls", "b": "budget 0.05 s, >= 5 calls",
            "a_cpu_s": old, "b_cpu_s": new, "ratio_cpu_s": ratio}


def parse_args(argv=None):
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3, help="runs per timing (default: 3)")
    p.add_argument("--tables", nargs="+", choices=(BRIGHT, BOTH), default=[BRIGHT, BOTH],
                   help="packaged datasets for the default train time (default: bright sdss)")
    p.add_argument("--levers", nargs="+", choices=(*LEVERS, "none"), default=list(LEVERS),
                   help="levers to measure (default: all)")
    p.add_argument("--lever-repeats", type=int, default=2, help="runs per lever arm (default: 2)")
    p.add_argument("--json", help="also write the results here (default: stdout only)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))

    def say(msg):
        print(msg, file=sys.stderr, flush=True)
    result = {"machine": {"cpu": cpu_name(), "cores": os.cpu_count(),
                          "load_average_at_start": os.getloadavg()},
              "default": {}, "levers": []}
    say(f"machine: {result['machine']}")
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        train_once(BRIGHT, tmp)  # warm the compiled-epoch cache and the file cache
        for name in args.tables:
            runs = [train_once(name, tmp) for _ in range(args.repeats)]
            result["default"][name] = summary(runs)
            s = result["default"][name]
            say(f"default train on {name}: wall {s['wall_s']['mean']:.1f} s (min "
                f"{s['wall_s']['min']:.1f}), CPU {s['cpu_s']['mean']:.1f} s over {args.repeats} runs")
        r = args.lever_repeats
        if "cache" in args.levers:
            cold = tmp / "cold-cache"

            def clear():
                shutil.rmtree(cold, ignore_errors=True)
            result["levers"].append(lever("cache", BRIGHT, tmp, {
                "label": "cold compile", "env": {"SDSS_DISTILL_JAX_CACHE": str(cold)},
                "before": clear}, {"label": "cached compile"}, r, say))
        if "batch" in args.levers:
            for batch in (512,):
                result["levers"].append(lever("batch", BOTH, tmp,
                                              {"label": "batch 128", "settings": {"batch_size": 128}},
                                              {"label": f"batch {batch}",
                                               "settings": {"batch_size": batch}}, r, say))
        if "teacher_patience" in args.levers:
            result["levers"].append(lever("teacher_patience", BOTH, tmp,
                                          {"label": "teacher patience 20",
                                           "settings": {"teacher_patience": 20}},
                                          {"label": "teacher patience 10",
                                           "settings": {"teacher_patience": 10}}, r, say))
        if "folds" in args.levers:
            result["levers"].append(lever("folds", BOTH, tmp, {
                "label": "5 fold teachers", "settings": {"methods": {"crossfit": {"folds": 5}}}},
                {"label": "3 fold teachers", "settings": {"methods": {"crossfit": {"folds": 3}}}},
                r, say))
        if "fold_teachers" in args.levers:
            result["levers"].append(fold_teacher_lever(BRIGHT, r, say))
        if "latency" in args.levers:
            result["levers"].append(latency_lever(r, say))
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
