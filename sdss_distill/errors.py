"""User-facing errors and the one place the command lines turn them into exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Callable

EXIT_USAGE = 2


class InputError(ValueError):
    """Bad input from the user (file, column, value or option): shown as one line, exit 2."""


def listing(items, cap: int = 5) -> str:
    """`a, b, c, d, e, ...`: a short list for an error message."""
    items = [str(i) for i in items]
    return ", ".join(items[:cap]) + (", ..." if len(items) > cap else "")


def run_cli(main: Callable[[], int], prog: str, debug: bool = False) -> int:
    """Run a command's body; an InputError becomes one line on stderr and exit code 2."""
    try:
        return main()
    except InputError as e:
        if debug:
            raise
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
