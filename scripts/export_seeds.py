"""The edge figures of one method over several seeds: train, export, and tabulate the int8 file.

For each seed: `python -m sdss_distill.train --method M --seed S --out OUT/seedS`, then
`python -m sdss_distill.export --run OUT/seedS --no-finetune`; then the int8 student's size,
test accuracy and agreement with its Keras model, mean ± std over seeds, next to the Keras
student's accuracy. Output: OUT/export_seeds.{json,md}.

    python scripts/export_seeds.py --data bright \
        --method crossfit --seeds 0 1 2 3 4 5 6 7 8 9 --out runs/export-seeds
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

from sdss_distill.core.errors import InputError, run_cli  # noqa: E402
from sdss_distill.core.io import write_atomic  # noqa: E402

PROG = "scripts/export_seeds.py"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(allow_abbrev=False, prog=PROG, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="SDSS table (default: $SDSS_DISTILL_DATA, else data/sdss.csv)")
    p.add_argument("--method", default="offline", help="distillation method (default: offline)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                   help="seeds (default: 0 1 2)")
    p.add_argument("--out", default="runs/export-seeds", help="parent of the runs "
                   "(default: runs/export-seeds)")
    p.add_argument("--debug", action="store_true", help="show tracebacks (default: off)")
    return p.parse_args(argv)


def one_seed(args, seed: int) -> dict:
    from sdss_distill import train
    from sdss_distill.export import cli as export_cli
    from sdss_distill.runs.rundir import RunDir
    run = Path(args.out) / f"seed{seed}"
    flags = ["--method", args.method, "--seed", str(seed), "--out", str(run), "--quiet"]
    if train.main([*(["--data", args.data] if args.data else []), *flags]) != 0:
        raise InputError(f"training seed {seed} failed (see above)")
    if export_cli.main(["--run", str(run), "--no-finetune", "--invokes", "2000", "--quiet"]) != 0:
        raise InputError(f"exporting seed {seed} failed (see above)")
    layout = RunDir(run).current()
    report = json.loads(layout.report_json.read_text())
    variant = json.loads(layout.export_json.read_text())["variants"]["student_int8"]
    return {"seed": seed, "run_id": layout.run_id,
            "keras_student_accuracy": report["models"]["student"]["test_accuracy"],
            "int8_accuracy": variant["test_accuracy"], "int8_agreement": variant["agreement"],
            "int8_bytes": variant["size_bytes"], "int8_latency_us": variant["latency_us_median"]}


def markdown(rows: list[dict], args, machine: dict) -> str:
    def pm(key, scale=100, unit=" %"):
        v = np.array([r[key] for r in rows], float) * scale
        return f"{v.mean():.2f} ± {v.std(ddof=1) if len(v) > 1 else 0:.2f}{unit}"
    lines = [f"# int8 student of `{args.method}` over seeds {', '.join(str(r['seed']) for r in rows)}",
             "", f"Machine: {machine['cpu']} ({machine['cores']} cores).", "",
             "| seed | Keras student accuracy | int8 accuracy | int8 agreement | int8 bytes |",
             "|---:|---:|---:|---:|---:|",
             *[f"| {r['seed']} | {r['keras_student_accuracy']:.2%} | {r['int8_accuracy']:.2%} | "
               f"{r['int8_agreement']:.2%} | {r['int8_bytes']:,} |" for r in rows],
             f"| mean ± std | {pm('keras_student_accuracy')} | {pm('int8_accuracy')} | "
             f"{pm('int8_agreement')} | {pm('int8_bytes', 1, ' B')} |", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)

    def body() -> int:
        from sdss_distill.core.machine import machine
        rows = [one_seed(args, seed) for seed in args.seeds]
        out = Path(args.out)
        doc = {"method": args.method, "seeds": args.seeds, "rows": rows, "machine": machine()}
        write_atomic(out / "export_seeds.json", json.dumps(doc, indent=2))
        write_atomic(out / "export_seeds.md", markdown(rows, args, doc["machine"]))
        print((out / "export_seeds.md").read_text())
        return 0

    return run_cli(body, PROG, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
