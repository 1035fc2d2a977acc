"""What every command line shares: an argparse parser whose errors are one line, progress
bars that stay readable in a log file (one line per update, not carriage returns), and a
quick exit for commands that loaded TensorFlow and JAX."""

from __future__ import annotations

import argparse
import atexit
import os
import sys
from pathlib import Path

from sdss_distill.core.errors import EXIT_USAGE


def program(command: str) -> str:
    """How a command names itself in messages and --help, as the user started it:
    `sdss-distill COMMAND`, `python -m sdss_distill COMMAND`, else `python -m
    sdss_distill.COMMAND` (each command module is imported after argv is set)."""
    started = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    if started.name == "sdss-distill":
        return f"sdss-distill {command}"
    if started.name == "__main__.py" and started.parent.name == "sdss_distill":
        return f"python -m sdss_distill {command}"
    return f"python -m sdss_distill.{command}"


def train_hint() -> str:
    """How to make a run, in the words the user started this command with: `train one with
    sdss-distill train --out DIR` (or `python -m sdss_distill train`, ...)."""
    return f"train one with {program('train')} --out DIR"


LOG_INTERVAL_S = 15.0
"""Seconds between progress lines when stderr is not a terminal (a log file or a CI job)."""


class Parser(argparse.ArgumentParser):
    """argparse with the error contract: a bad option is one line on stderr and exit 2 (argparse
    would print the whole usage first). No abbreviations: `--epoch 5` is an unknown option,
    not `--epochs 5` (a prefix that one day matches two options, or the wrong one, would
    silently change a run). Subcommand parsers are built by this class too."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


class _Lines:
    """A file for tqdm that turns each carriage-return refresh into its own line."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        text = text.replace("\r", "").strip()
        if text:
            self.stream.write(text + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress(**kwargs):
    """A tqdm bar on stderr: live on a terminal; elsewhere a line every LOG_INTERVAL_S."""
    from tqdm import tqdm
    if sys.stderr.isatty():
        return tqdm(file=sys.stderr, **kwargs)
    kwargs.setdefault("mininterval", LOG_INTERVAL_S)
    return tqdm(file=_Lines(sys.stderr), ascii=True, ncols=100, **kwargs)


def exit_quickly(code: int):
    """End the process with `code` after the atexit handlers and a flush of stdout/stderr, but
    without the interpreter's teardown: unloading TensorFlow, JAX and their native libraries
    takes about 1.4 s after a `train` (docs/results/speed.md). Only for a command run as a
    program whose files are closed and whose child processes have ended."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more to write
            pass
    os._exit(code)
