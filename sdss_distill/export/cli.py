"""Convert a run's student (and teacher) to LiteRT flatbuffers and measure them on its test rows.

Usage:
    python -m sdss_distill.export --run runs/default
    python -m sdss_distill.export --run runs/default --all   # + float16, dynamic, QAT, pruned
    python -m sdss_distill.export --run runs/default --mcu   # + RUN/mcu/: C99 for microcontrollers

Writes RUN/tflite/{student_float32,student_int8,teacher_float32}.tflite (with --all also
student_float16, student_dynamic, student_qat_int8, student_pruned_int8), each with a model
card `<name>.json` and `labels.txt`, plus RUN/reports/export.{json,md}, as a NEW version of
the run (sdss_distill.runs.rundir), switched to in one step: a killed export leaves the old
run whole. student_int8 is the int8 candidate with the most dev rows right (non-test rows)
within 8 KB; export.json says which and why. `--mcu` on a run already exported from this
student adds RUN/mcu/ only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sdss_distill.core.cli import Parser, check_threads, program
from sdss_distill.core.errors import InputError, run_cli
from sdss_distill.core.io import quiet_import

PROG = program("export")


def parse_args(argv=None) -> argparse.Namespace:
    p = Parser(prog=PROG, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, metavar="DIR",
                   help="run path from train --out (the symlink to its current version)")
    p.add_argument("--data", help="the run's table, if its recorded path does not resolve here "
                   "(default: the path in split.json)")
    p.add_argument("--all", dest="everything", action="store_true",
                   help="every variant: + student_float16, student_dynamic, the fully int8 "
                   "diagnostic, and QAT and pruning in a tf_keras child (default: float32, "
                   "int8 and the teacher only)")
    p.add_argument("--no-finetune", action="store_true",
                   help="with --all, skip QAT and pruning; without --all they are skipped anyway. "
                   "Keeps existing fine-tuned files made from this run's student, drops others "
                   "(default: fine-tune with --all)")
    p.add_argument("--invokes", type=int, default=10_000,
                   help="batch-1 calls timed per file (default: 10000)")
    p.add_argument("--threads", type=int, default=1, help="LiteRT interpreter threads (default: 1)")
    p.add_argument("--mcu", action="store_true", help="also write RUN/mcu/: student_int8 as "
                   "dependency-free C99 with a Makefile (default: off)")
    p.add_argument("--quiet", action="store_true", help="no progress output (default: off)")
    p.add_argument("--debug", action="store_true",
                   help="show tracebacks for input errors (default: off)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)

    def body() -> int:
        if args.invokes < 1:
            raise InputError(f"--invokes must be >= 1, got {args.invokes}")
        check_threads("--threads", args.threads)
        quiet_import("tensorflow")  # its native start-up lines, before export.run imports it
        quiet_import("keras")
        from sdss_distill.export.run import export_run  # the command boundary: TensorFlow

        export_run(Path(args.run), quiet=args.quiet, data=args.data,
                   finetune=args.everything and not args.no_finetune, invokes=args.invokes,
                   threads=args.threads, mcu=args.mcu, everything=args.everything)
        return 0

    return run_cli(body, PROG, debug=args.debug, output=args.run)


if __name__ == "__main__":
    sys.exit(main())
