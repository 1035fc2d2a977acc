"""Process-level helpers every stage shares, TensorFlow-free: quiet native stderr, atomic writes.

TensorFlow's C++ runtime prints CUDA probes and oneDNN notices before its logging is set
up, so TF_CPP_MIN_LOG_LEVEL cannot hide them, and LiteRT announces its XNNPACK delegate;
we park file descriptor 2 while they run.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import tempfile
from pathlib import Path


@contextlib.contextmanager
def quiet_native_stderr(*, replay_on_error: bool = True):
    """Silence fd 2 inside the block; if it raises, replay what was printed (when asked)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            if replay_on_error:
                sink.seek(0)
                sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def umask() -> int:
    """The process umask, read without changing it where Linux allows (/proc), else set+reset."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path` to write; on a clean exit it replaces `path` in one
    step with the mode any tool would give it (0666 minus the umask, not mkstemp's 0600); on
    any error it is removed and `path` is untouched."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~umask())
        os.close(fd)
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path, content: str | bytes) -> None:
    """Write a file so that readers see the old file or the whole new one, never a part."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(content.encode() if isinstance(content, str) else content)


def quiet_import(module: str = "keras"):
    """`importlib.import_module(module)` with native stderr silenced for the duration."""
    if module in sys.modules:
        return sys.modules[module]
    with quiet_native_stderr():
        return importlib.import_module(module)
