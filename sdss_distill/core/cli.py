"""What every command line shares: an argparse parser whose errors are one line, progress
bars that stay readable in a log file (one line per update, not carriage returns), and a
quick exit for commands that loaded TensorFlow and JAX."""

from __future__ import annotations

import argparse
import atexit
import os
import sys
from pathlib import Path

from sdss_distill.core.errors import EXIT_USAGE, InputError


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


# --- Option range checks against the machine (issue 23 case 9) ------------------------------
# LiteRT segfaults (exit 139, nothing on stderr) with --threads 100000, and numpy raises a
# MemoryError traceback for a batch that cannot fit: both are refused before any work.

ROW_BYTES = 1024
"""Generous memory per row of a batch (inputs, every layer's activations, outputs, copies)."""


def available_memory() -> int | None:
    """Bytes of memory available to new work (Linux MemAvailable), None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_threads(option: str, value: int) -> None:
    """InputError unless 1 <= value <= os.cpu_count() (more threads than cores only thrash)."""
    cores = os.cpu_count() or 1
    if not 1 <= value <= cores:
        raise InputError(f"{option} must be between 1 and this machine's {cores} CPU core(s), "
                         f"got {value}")


def check_rows(option: str, value: int, row_bytes: int = ROW_BYTES) -> None:
    """InputError unless 1 <= value and `value` rows of `row_bytes` fit in half the memory
    available now (the rest is the interpreter's, the OS's and other programs')."""
    if value < 1:
        raise InputError(f"{option} must be >= 1, got {value}")
    free = available_memory()
    if free is not None and value * row_bytes > free // 2:
        most = max(1, free // 2 // row_bytes)
        raise InputError(f"{option} {value:,} rows need about {value * row_bytes / 2**30:,.1f} "
                         f"GiB, more than half the {free / 2**30:,.1f} GiB available; give at "
                         f"most {most:,}")
