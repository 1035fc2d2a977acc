"""`python -m sdss_distill.data datasets|fetch|synth`: the packaged tables, and more, real
(SkyServer) or SIMULATED."""

from __future__ import annotations

import argparse
import importlib
import sys

from sdss_distill.core.cli import Parser, program
from sdss_distill.core.errors import run_cli


def main(argv=None) -> int:
    """`python -m sdss_distill.data datasets|fetch|synth ...`: list the packaged tables, or get
    more (real or SIMULATED) ones.

    Usage:
        python -m sdss_distill.data datasets          # bright, faint, sdss; provenance
        python -m sdss_distill.data fetch --rows 100000 --mag r 19 22 --out data/faint.parquet
        python -m sdss_distill.data synth --rows 1000000 --out data/sim_1m.parquet --seed 0
    """
    prog = program("data")
    commands = {"datasets": ("datasets", "list the packaged real SDSS tables (bright, faint, sdss)"),
                "fetch": ("fetch", "download labelled objects from SDSS SkyServer's SQL search"),
                "synth": ("synth", "write a SIMULATED SDSS-like catalogue (Parquet)")}
    p = Parser(prog=prog, description=main.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--debug", action="store_true", help="show tracebacks for input errors")
    sub = p.add_subparsers(dest="command", required=True, metavar="{datasets,fetch,synth}")
    modules = {}
    for name, (module, summary) in commands.items():
        modules[name] = importlib.import_module(f"sdss_distill.data.{module}")
        modules[name].add_arguments(sub.add_parser(
            name, help=summary, description=modules[name].__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter))
    args = p.parse_args(argv)
    return run_cli(lambda: modules[args.command].run(args), f"{prog} {args.command}",
                   debug=args.debug, output=getattr(args, "out", None))


if __name__ == "__main__":
    sys.exit(main())
