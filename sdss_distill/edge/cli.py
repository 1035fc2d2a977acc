"""Classify SDSS objects from u g r i z on a small device: numpy + ai_edge_litert only.

Usage:
    python -m sdss_distill.edge predict --model run/tflite/student_int8.tflite \
        --input objects.csv --output predictions.csv --keep ra,dec [--sets 0.9]
    python -m sdss_distill.edge bench --model run/tflite/student_int8.tflite --threads 1

`predict` streams: it reads and writes 65,536 rows at a time, so memory does not grow with
the file; the output file appears (atomically) only when complete. Each output row carries
`row` (the input's 1-based data row number), the id columns as written in the input, and
any `--keep` columns. Rows with values no model may see (quality.check_values: missing,
sentinel, non-finite, too large for float32, outside the physical range) are reported on
stderr with their line and skipped; the exit code is then 1 (see docs/guide/errors.md, "Errors and exit
codes").

A model ships with `labels.txt` and a model card `<model>.json` next to it (written by
`python -m sdss_distill.export`): its input columns, labels and the training domain.
Never imports TensorFlow, Keras, pandas or scikit-learn.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sdss_distill.core.cli import Parser, check_rows, check_threads
from sdss_distill.core.errors import InputError, run_cli
from sdss_distill.core.machine import machine
from sdss_distill.edge.bench import against_raw, benchmark
from sdss_distill.edge.classifier import PROG
from sdss_distill.edge.csvio import predict_csv


def parse_args(argv=None) -> argparse.Namespace:
    p = Parser(prog=PROG, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--debug", action="store_true", help="show tracebacks for input errors")
    sub = p.add_subparsers(dest="command", required=True)
    pr = sub.add_parser("predict", help="classify the rows of a CSV of u g r i z magnitudes")
    pr.add_argument("--model", required=True, help=".tflite file (its .json card next to it)")
    pr.add_argument("--input", required=True, help="CSV with u g r i z (SDSS aliases accepted)")
    pr.add_argument("--output", help="CSV to write, atomically when complete (default: "
                    "standard output, streamed)")
    pr.add_argument("--keep", default="", metavar="COLS",
                    help="comma-separated input columns to copy to the output (default: none; "
                    "id columns objid/specobjid are always copied)")
    pr.add_argument("--threads", type=int, default=1, help="interpreter threads (default: 1)")
    pr.add_argument("--sets", metavar="LEVEL", help="add a column `set`: the classes of the "
                    "row's conformal prediction set at LEVEL (e.g. 0.9), joined by '+'; '' for "
                    "an empty set (default: no column; needs a card exported with calibration)")
    be = sub.add_parser("bench", help="time batch-1 latency and batched throughput")
    be.add_argument("--model", required=True, help=".tflite file (its .json card next to it)")
    be.add_argument("--threads", type=int, default=1, help="interpreter threads (default: 1)")
    be.add_argument("--invokes", type=int, default=10_000, help="batch-1 calls (default: 10000)")
    be.add_argument("--batch", type=int, default=1024, help="rows per batched call (default: 1024)")
    be.add_argument("--json", action="store_true", help="print the result as JSON")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)

    def body() -> int:
        check_threads("--threads", args.threads)
        if args.command == "predict":
            keep = tuple(c.strip() for c in args.keep.split(",") if c.strip())
            return predict_csv(Path(args.model), Path(args.input), args.output, args.threads,
                               keep, sets=args.sets)
        if args.invokes < 1:
            raise InputError(f"--invokes must be >= 1, got {args.invokes}")
        check_rows("--batch", args.batch)
        timing = dict(threads=args.threads, invokes=args.invokes, batch=args.batch)
        result = {"model": str(args.model), **benchmark(args.model, **timing),
                  "classifier": against_raw(args.model, **timing), "machine": machine()}
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            print(_bench_text(args.model, result))
        return 0

    return run_cli(body, PROG, debug=args.debug,
                   output=getattr(args, "output", None) or "standard output")


def _bench_text(model, result: dict) -> str:
    """`edge bench`'s report: the raw LiteRT calls, then EdgeClassifier.predict against them."""
    c = result["classifier"]
    return (f"{model}: batch-1 latency median {result['latency_us_median']:.2f} us, "
            f"p99 {result['latency_us_p99']:.2f} us ({result['invokes']} invokes); batched "
            f"{result['throughput_rows_per_s']:,.0f} rows/s (batch {result['batch']}); "
            f"{result['threads']} thread(s) on {result['machine']['cpu']}\n"
            f"EdgeClassifier.predict against the raw calls, alternated in one run: one row "
            f"{c['one_row_us']['predict']:.2f} us vs {c['one_row_us']['raw']:.2f} us "
            f"({c['one_row_ratio']:.1f}x the raw time); batch of {c['batch']} "
            f"{c['batch_rows_per_s']['predict']:,.0f} vs {c['batch_rows_per_s']['raw']:,.0f} "
            f"rows/s ({c['batch_rate_ratio']:.2f} of the raw rate)")


if __name__ == "__main__":
    sys.exit(main())
