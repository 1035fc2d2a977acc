"""`python -m sdss_distill.score`: classify a whole photometric catalogue (Parquet or HATS) on Dask.

Usage:
    python -m sdss_distill.score --model runs/default/tflite/student_int8.tflite \
        --input 'catalogue/*.parquet' --output scored/
    python -m sdss_distill.score --model student_int8.tflite --input 'catalogue/*.parquet' \
        --output scored/ --scheduler tcp://10.0.0.5:8786 --keep ra,dec,class
    python -m sdss_distill.score --model student_int8.tflite --input hats_catalogue/ \
        --output scored_hats/ --priors em
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sdss_distill.core.cli import Parser, check_rows, check_threads, program
from sdss_distill.core.errors import InputError, run_cli

PROG = program("score")


def parse_args(argv=None) -> argparse.Namespace:
    p = Parser(prog=PROG, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help=".tflite file (its .json card next to it)")
    p.add_argument("--input", required=True, help="Parquet file, directory or quoted glob")
    p.add_argument("--output", required=True, help="directory for the output parts")
    p.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. "
                   "tcp://host:8786 (default: start a LocalCluster)")
    p.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes "
                   "(default: 2)")
    p.add_argument("--threads-per-worker", type=int, default=1,
                   help="LocalCluster threads per worker (default: 1)")
    p.add_argument("--batch", type=int, default=262_144, help="rows read and classified at a "
                   "time (default: 262144)")
    p.add_argument("--part-rows", type=int, default=1_000_000, help="rows per output part, "
                   "in whole input row groups (default: 1000000)")
    p.add_argument("--keep", default="", help="comma-separated input columns to pass through "
                   "(default: none); one named like an output column gets an input_ prefix")
    p.add_argument("--priors", default="training", help="training: the model's posteriors; em: "
                   "estimate the catalogue's class priors (EM) and re-weight; FILE.json: apply "
                   "these priors; see docs/guide/scoring-priors.md (default: training)")
    p.add_argument("--em-rows", type=int, default=1_000_000, help="with --priors em: rows EM "
                   "reads, the head of every row group (default: 1000000; a smaller catalogue "
                   "is read whole)")
    p.add_argument("--em-sample", type=float, default=1.0, help="with --priors em: fraction of "
                   "each part's row groups the EM sample comes from (default: 1, all of them)")
    p.add_argument("--output-format", choices=("parquet", "hats"), help="parquet parts, or a "
                   "HATS catalogue with the input's partitioning (default: hats for a HATS "
                   "input, else parquet)")
    p.add_argument("--sets", metavar="LEVEL", help="add a column `set`: each row's conformal "
                   "prediction set at LEVEL (e.g. 0.9), class names joined by '+', '' for an "
                   "empty set (default: no column; needs a card exported with calibration)")
    p.add_argument("--purity", action="append", default=[], metavar="CLASS=P",
                   help="add a boolean column selected_CLASS: the most complete selection "
                   "expected to reach purity P under the catalogue's class mix (the training "
                   "mix, or the --priors estimate); repeatable (default: none)")
    p.add_argument("--quiet", action="store_true", help="no progress output (default: off)")
    p.add_argument("--debug", action="store_true", help="show tracebacks for input errors")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)

    def body() -> int:
        for name in ("workers", "part_rows", "em_rows"):
            if getattr(args, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be >= 1, got "
                                 f"{getattr(args, name)}")
        check_threads("--threads-per-worker", args.threads_per_worker)
        check_rows("--batch", args.batch)
        keep = [c.strip() for c in args.keep.split(",") if c.strip()]
        # the command boundary: pyarrow, pandas and Dask load once the arguments are checked
        from sdss_distill.score.catalogue import score, summary
        from sdss_distill.score.parts import EXIT_FLAGGED

        total = score(Path(args.model), args.input, Path(args.output), scheduler=args.scheduler,
                      workers=args.workers, threads=args.threads_per_worker, batch_rows=args.batch,
                      part_rows=args.part_rows, keep=keep, quiet=args.quiet,
                      priors=args.priors, em_sample=args.em_sample, em_rows=args.em_rows,
                      output_format=args.output_format, sets=args.sets,
                      purity=args.purity)
        print(summary(total, Path(args.output)), file=sys.stderr)
        return EXIT_FLAGGED if sum(total["bad"].values()) else 0

    return run_cli(body, PROG, debug=args.debug, output=args.output)
