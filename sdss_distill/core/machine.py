"""The machine a timing was taken on: every timing the app reports names it."""

from __future__ import annotations

import os
import platform


def machine() -> dict:
    """CPU model, cores and platform, read without third-party packages."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "machine": platform.machine(),
            "platform": platform.platform(), "python": platform.python_version()}
