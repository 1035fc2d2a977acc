"""Repeat the training run over several seeds and summarise it as mean ± std.

Usage:
    python -m sdss_distill.experiment --data ../shared/data/sdss_dr14_skyserver_10k.csv
    python -m sdss_distill.experiment --seeds 0 1 2 3 4 --out runs/seeds --alpha 0.5

Each seed gets its own run directory (OUT/seed<N>/) with models, split and report; the
summary goes to OUT/reports/seeds.json and OUT/reports/seeds.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .errors import run_cli
from .runtime import write_atomic

PROG = "python -m sdss_distill.experiment"
MODELS = ("teacher", "student", "baseline")


def parse_args(argv=None) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Any other flag of `python -m sdss_distill.train` "
                                       "(--alpha, --temperature, --epochs, ...) applies to "
                                       "every seed.")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                   help="seeds to run (default: 0 1 2 3 4)")
    p.add_argument("--out", default="runs/seeds", help="parent directory (default: runs/seeds)")
    p.add_argument("--debug", action="store_true", help="show tracebacks for input errors")
    return p.parse_known_args(argv)


def summarise(reports: list[dict]) -> dict:
    """Mean, std (ddof=1) and per-seed test accuracy per model; student-vs-baseline wins."""
    acc = {m: [r["models"][m]["test_accuracy"] for r in reports] for m in MODELS}
    wins = sum(s > b for s, b in zip(acc["student"], acc["baseline"]))
    ties = sum(s == b for s, b in zip(acc["student"], acc["baseline"]))
    spread = lambda v: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0  # noqa: E731
    return {
        "seeds": [r["config"]["seed"] for r in reports],
        "test_accuracy": {m: {"mean": float(np.mean(v)), "std": spread(v), "per_seed": v}
                          for m, v in acc.items()},
        "agreement_with_teacher": {
            m: float(np.mean([r["models"][m]["agreement_with_teacher"] for r in reports]))
            for m in ("student", "baseline")},
        "student_beats_baseline": {"wins": wins, "ties": ties, "of": len(reports)},
        "latency_ratio_teacher_over_student": float(np.mean(
            [r["latency_ratio_teacher_over_student"] for r in reports])),
        "run_seconds": {"mean": float(np.mean([r["timing"]["total_s"] for r in reports])),
                        "max": float(np.max([r["timing"]["total_s"] for r in reports]))},
        "config": {k: v for k, v in reports[0]["config"].items() if k not in ("seed", "out")},
        "machine": reports[0]["machine"],
    }


def markdown(summary: dict) -> str:
    rows = [f"| {m} | {s['mean']:.2%} ± {s['std']:.2%} | "
            + " / ".join(f"{a:.2%}" for a in s["per_seed"]) + " |"
            for m, s in summary["test_accuracy"].items()]
    w = summary["student_beats_baseline"]
    return "\n".join([
        f"# Test accuracy over seeds {', '.join(map(str, summary['seeds']))}", "",
        "| model | mean ± std | per seed |", "|---|---:|---|", *rows, "",
        f"Distilled student beats the baseline in {w['wins']} of {w['of']} seeds "
        f"({w['ties']} ties).", ""])


def main(argv=None) -> int:
    args, train_argv = parse_args(argv)
    from .train import config_from_args, run
    from .train import parse_args as train_parse

    def body() -> int:
        out = Path(args.out)
        reports = []
        for seed in args.seeds:
            targs = train_parse([*train_argv, "--seed", str(seed), "--out", str(out / f"seed{seed}")])
            cfg = config_from_args(targs)
            print(f"seed {seed}:", file=sys.stderr, flush=True)
            reports.append(run(cfg))
            import keras
            keras.backend.clear_session()
        summary = summarise(reports)
        (out / "reports").mkdir(parents=True, exist_ok=True)
        write_atomic(out / "reports" / "seeds.json", json.dumps(summary, indent=2))
        write_atomic(out / "reports" / "seeds.md", markdown(summary))
        print(markdown(summary))
        return 0

    return run_cli(body, PROG, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
