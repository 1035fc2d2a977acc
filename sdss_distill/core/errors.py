"""User-facing errors and the one place the command lines turn them into exit codes.

The contract (docs/guide/errors.md): 0 success; 1 success with rejected rows
(edge/score only); 2 an input, artifact or environment error, shown as one line naming the
file and the fix, no traceback (`--debug` shows it); 130 interrupted (SIGINT), 143
terminated (SIGTERM), both after the same cleanup; 141 quietly when stdout's reader has gone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import threading
from collections.abc import Callable

from sdss_distill.core.safety import shorten

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class InputError(ValueError):
    """Bad input from the user (file, column, value or option): shown as one line, exit 2."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every `finally` and `except` cleanup runs."""


def listing(items, cap: int = 5) -> str:
    """`a, b, c, d, e, ...`: a short list for an error message."""
    items = [str(i) for i in items]
    return ", ".join(items[:cap]) + (", ..." if len(items) > cap else "")


_RECEIVED: list[int] = []
"""Signals received inside sigterm_raises: kept even where the exception they raised was
dropped (Python ignores an exception raised in a __del__ during garbage collection, which
TFLite's converter triggers), so check_signals() at a safe point still stops the command."""


def _raise_terminated(signum, frame):
    _RECEIVED.append(signum)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(f"signal {signum}")


def signal_received() -> int | None:
    """The first SIGINT/SIGTERM received inside sigterm_raises, else None."""
    return _RECEIVED[0] if _RECEIVED else None


def check_signals() -> None:
    """A safe point (e.g. before switching a run to a new version): raise for a signal whose
    exception was lost, as if it had been raised when it came."""
    signum = signal_received()
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    if signum is not None:
        raise Terminated(f"signal {signum}")


@contextlib.contextmanager
def sigterm_raises():
    """Inside the block SIGTERM raises Terminated and SIGINT KeyboardInterrupt, both recorded
    for check_signals (main thread only; the previous handlers are restored afterwards)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _RECEIVED.clear()
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    previous_int = signal.getsignal(signal.SIGINT)
    if previous_int is signal.default_int_handler:
        signal.signal(signal.SIGINT, _raise_terminated)
    previous_hook = sys.unraisablehook

    def unraisable(info):  # a signal raised in a __del__: recorded already, no traceback
        if not (isinstance(info.exc_value, KeyboardInterrupt) and _RECEIVED):
            previous_hook(info)

    sys.unraisablehook = unraisable
    try:
        yield
    finally:
        _RECEIVED.clear()
        sys.unraisablehook = previous_hook
        signal.signal(signal.SIGTERM, previous)
        if previous_int is signal.default_int_handler:
            signal.signal(signal.SIGINT, previous_int)


@contextlib.contextmanager
def deferred_signals(*, check: bool = True):
    """Inside the block SIGINT and SIGTERM are only recorded, for work that must not be torn
    half-way (starting or stopping a Dask cluster); with `check`, raised at the block's end,
    else left for the next check_signals (run_cli checks once more before it returns)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, lambda signum, frame: _RECEIVED.append(signum))
                for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if check:
        check_signals()


def os_error_line(e: OSError) -> str | None:
    """'FILE: Permission denied; check ...' for an OSError that names its file, else None."""
    if not getattr(e, "filename", None):
        return None
    what = e.strerror or type(e).__name__
    return f"{e.filename}: {what}; check the path, its permissions and free space"


EXIT_BROKEN_PIPE = 141
"""A reader that stopped reading (`| head -1`): 128 + SIGPIPE, as a Unix tool killed by it."""
_FULL = {getattr(errno, n) for n in ("ENOSPC", "EFBIG", "EDQUOT") if hasattr(errno, n)}
_FULL_TEXT = ("no space left on device", "file too large", "disk quota exceeded")


def is_disk_full(e: BaseException) -> bool:
    """True for a write that failed for space: a full disk, RLIMIT_FSIZE or a quota (also from
    pyarrow, whose IOError carries the text rather than the errno)."""
    if isinstance(e, OSError) and e.errno in _FULL:
        return True
    return isinstance(e, OSError) and any(t in str(e).lower() for t in _FULL_TEXT)


def disk_full_line(path, e: OSError) -> str:
    """The one line for a write that failed for space: the output's fault, never the input's."""
    why = e.strerror or (str(e).strip().splitlines() or [type(e).__name__])[-1]
    return (f"disk full / file size limit writing {path} ({why}); free space there or "
            f"choose another output")


def _quiet_stdout() -> None:
    """Point fd 1 at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _body(main: Callable[[], int]) -> int:
    with sigterm_raises():
        code = main()
        check_signals()  # a signal whose exception was dropped still stops the command
        sys.stdout.flush()  # a full or closed stdout fails here, under the contract
        return code


def run_cli(main: Callable[[], int], prog: str, debug: bool = False, output=None) -> int:
    """Run a command's body under the error contract; returns the exit code.

    InputError, and any OSError that still names its file, become one line and exit 2; a
    write that fails for space names `output` (the command's output, or a function giving
    it; else the file, else standard output); a closed stdout ends quietly (141); SIGINT
    and SIGTERM unwind (temp files are removed by their owners) and exit 130 / 143.
    """
    try:
        return _body(main)
    except InputError as e:
        if debug:
            raise
        print(shorten(f"{prog}: error: {e}"), file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as e:
        full = is_disk_full(e)
        target = output() if callable(output) else output
        line = (disk_full_line(target or e.filename or "standard output", e) if full
                else os_error_line(e))
        if debug or line is None:
            raise
        if full and not (target or e.filename):
            _quiet_stdout()
        print(shorten(f"{prog}: error: {line}"), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as e:
        terminated = isinstance(e, Terminated)
        print(f"{prog}: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
