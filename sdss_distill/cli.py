"""One command for every stage: `sdss-distill SUBCOMMAND [options]`.

Usage:
    sdss-distill train --out runs/default --export          # the packaged sdss dataset
    sdss-distill edge predict --model runs/default/tflite/student_int8.tflite --input objects.csv
    sdss-distill SUBCOMMAND --help
    python -m sdss_distill            # the same; lists the subcommands

Each subcommand is `python -m sdss_distill.<name>`: its module is imported only when asked
for, so the edge install (numpy + ai-edge-litert) runs `edge` without the training stack.
"""

from __future__ import annotations

import importlib
import sys

from sdss_distill import __version__
from sdss_distill.core.errors import EXIT_USAGE

PROG = "sdss-distill"

# name: (one-line summary, the pip extra its module needs (None = the base install), module)
COMMANDS: dict[str, tuple[str, str | None, str]] = {
    "train": ("train teacher, distilled student and baseline on an SDSS table", "train",
              "sdss_distill.train"),
    "export": ("convert a run's models to LiteRT flatbuffers and measure them", "train",
               "sdss_distill.export.cli"),
    "experiment": ("repeat training over several seeds; mean ± std", "train",
                   "sdss_distill.sweep.cli"),
    "edge": ("classify a CSV of u g r i z or time a .tflite file (numpy + LiteRT only)", None,
             "sdss_distill.edge.cli"),
    "data": ("fetch real (SkyServer) or write SIMULATED SDSS tables", "train",
             "sdss_distill.data.cli"),
    "score": ("score a large catalogue with a LiteRT model on Dask", "scale",
              "sdss_distill.score.cli"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"usage: {PROG} {{{','.join(COMMANDS)}}} [options]", "",
             "Subcommands (each has --help):"]
    lines += [f"  {name:<{width}}  {summary}" for name, (summary, _, _) in COMMANDS.items()]
    lines += ["", f"Also: python -m sdss_distill.<subcommand> ...; {PROG} --version"]
    return "\n".join(lines)


def _missing_extra(name: str, extra: str | None, err: ModuleNotFoundError) -> int:
    """One line naming what is missing and the pip command that adds it."""
    if err.name and err.name.split(".")[0] == "sdss_distill":
        print(f"{PROG}: error: subcommand {name!r} is not available in this version "
              f"({err.name} missing); update the package", file=sys.stderr)
        return EXIT_USAGE
    hint = (f"pip install 'sdss-distill[{extra}]' (from a clone: pip install '.[{extra}]')"
            if extra else "pip install sdss-distill (from a clone: pip install .)")
    print(f"{PROG}: error: {name!r} needs the Python package {err.name!r}, which is not "
          f"installed; run: {hint}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    """Dispatch `argv[0]` to `sdss_distill.<argv[0]>.main(argv[1:])`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] == "--version":
        print(f"{PROG} {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"{PROG}: error: unknown subcommand {name!r}; choose from {', '.join(COMMANDS)}",
              file=sys.stderr)
        return EXIT_USAGE
    _, extra, module_name = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        return _missing_extra(name, extra, e)
    if not callable(getattr(module, "main", None)):
        print(f"{PROG}: error: subcommand {name!r} is not available in this version "
              f"({module_name} has no command line); update the package", file=sys.stderr)
        return EXIT_USAGE
    try:
        return int(module.main(rest) or 0)
    except ModuleNotFoundError as e:  # an optional dependency imported lazily inside main
        if not e.name or e.name.split(".")[0] == "sdss_distill":
            raise
        return _missing_extra(name, extra, e)


QUICK_EXIT = ("train",)
"""Subcommands that end without the interpreter's teardown (core.cli.exit_quickly): they
leave no child process running."""


def run() -> None:
    """The `sdss-distill` program: `main`, then exit (quickly after `train`)."""
    code = main()
    if sys.argv[1:2] and sys.argv[1] in QUICK_EXIT:
        from sdss_distill.core.cli import exit_quickly  # argparse & co: not for a bare --help
        exit_quickly(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
