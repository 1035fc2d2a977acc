"""Child processes that die with their parent, stdlib only: export's QAT/pruning child, a
cluster sweep's seed child and the sweep's pool workers must not outlive a parent killed by
SIGKILL (issue 23 case 10). No subprocess `preexec_fn`: it makes Python fork with its at-fork
hooks, and JAX's hook warns that os.fork() was called after JAX started threads (issue 21
item 6). A command passes its pid in PARENT_ENV (`child_env`); the child calls
`die_with_parent()` first thing."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PARENT_ENV = "SDSS_DISTILL_PARENT_PID"
"""Set by a command for a child process it starts: the child calls die_with_parent first."""
PR_SET_PDEATHSIG = 1


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child started with subprocess: this one, plus PARENT_ENV."""
    return {**os.environ, **extra, PARENT_ENV: str(os.getpid())}


def die_with_parent(parent: int | None = None) -> None:
    """The kernel SIGKILLs this process when its parent dies, even by SIGKILL (Linux prctl;
    elsewhere a no-op). `parent`: the pid expected as parent (default: PARENT_ENV, and nothing
    to do without it); if that one died before prctl took effect, exit at once."""
    if parent is None:
        parent = int(os.environ.get(PARENT_ENV) or 0) or None
    if parent is None or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)
