"""Import TensorFlow/Keras without its native start-up chatter on stderr.

TensorFlow's C++ runtime prints CUDA probes and oneDNN notices before its logging is set
up, so TF_CPP_MIN_LOG_LEVEL cannot hide them; we park file descriptor 2 during the import
and replay what it printed only if the import fails.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile


def quiet_import(module: str = "keras"):
    """`importlib.import_module(module)` with native stderr silenced for the duration."""
    if module in sys.modules:
        return sys.modules[module]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            return importlib.import_module(module)
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
