"""Child processes that die with their parent, stdlib only: the QAT/pruning child of export and
the sweep's worker processes must not outlive a parent killed by SIGKILL (issue 23)."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """In a child (a preexec_fn or a pool initializer): the kernel SIGKILLs this process when
    its parent dies, even by SIGKILL (Linux prctl; elsewhere a no-op). `parent` is the pid the
    child expects as its parent: if that one died before prctl took effect, exit at once."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)
