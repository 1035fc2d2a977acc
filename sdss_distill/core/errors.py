"""User-facing errors and the one place the command lines turn them into exit codes.

The contract (docs/guide/errors.md): 0 success; 1 success with rejected rows
(edge/score only); 2 an input, artifact or environment error, shown as one line naming the
file and the fix, no traceback (`--debug` shows it); 130 interrupted (SIGINT), 143
terminated (SIGTERM), both after the same cleanup.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable

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


def _raise_terminated(signum, frame):
    raise Terminated(f"signal {signum}")


@contextlib.contextmanager
def sigterm_raises():
    """Inside the block SIGTERM raises Terminated (main thread only; restored afterwards)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def os_error_line(e: OSError) -> str | None:
    """'FILE: Permission denied; check ...' for an OSError that names its file, else None."""
    if not getattr(e, "filename", None):
        return None
    what = e.strerror or type(e).__name__
    return f"{e.filename}: {what}; check the path, its permissions and free space"


def run_cli(main: Callable[[], int], prog: str, debug: bool = False) -> int:
    """Run a command's body under the error contract; returns the exit code.

    InputError, and any OSError that still names its file, become one line and exit 2;
    SIGINT and SIGTERM unwind (temp files are removed by their owners) and exit 130 / 143.
    """
    try:
        with sigterm_raises():
            return main()
    except InputError as e:
        if debug:
            raise
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:
        line = os_error_line(e)
        if debug or line is None:
            raise
        print(f"{prog}: error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as e:
        terminated = isinstance(e, Terminated)
        print(f"{prog}: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
