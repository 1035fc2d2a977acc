"""score/guard.py: no Dask traceback when a signal stops `score` (issue 23 case 11)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from sdss_distill.core import errors
from sdss_distill.score import guard

ROOT = Path(__file__).resolve().parents[1]

# What a worker logs when the scheduler goes away mid-heartbeat (the 30 lines).
HEARTBEAT = """
import logging, sys
import sdss_distill.score.catalogue as c
c.DASK_LOGS = int(sys.argv[1])
client, cluster = c.start_client(None, 1, 1)

def heartbeat_fails():
    try:
        raise OSError("Timed out trying to connect to tcp://127.0.0.1:1")
    except OSError:
        logging.getLogger("distributed.worker").exception(
            "Failed to communicate with scheduler during heartbeat.")

client.run(heartbeat_fails)
client.close()
cluster.close()
print("done")
"""


@pytest.mark.slow
@pytest.mark.parametrize("level, shown", [(logging.ERROR, True), (guard.DASK_LOGS, False)])
def test_a_worker_error_log_reaches_stderr_only_at_the_old_level(level, shown):
    proc = subprocess.run([sys.executable, "-c", HEARTBEAT, str(level)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.stdout.strip() == "done", proc.stderr[-2000:]
    assert ("Failed to communicate with scheduler" in proc.stderr) is shown, proc.stderr[-2000:]
    assert ("Traceback" in proc.stderr) is shown


def test_loggers_are_silenced_only_after_a_signal(monkeypatch):
    names = ("distributed", "tornado", "asyncio")
    for name in names:
        monkeypatch.setattr(logging.getLogger(name), "level", logging.WARNING)
    monkeypatch.setattr(errors, "_RECEIVED", [])
    guard.quiet_after_signal()
    assert {logging.getLogger(n).level for n in names} == {logging.WARNING}
    monkeypatch.setattr(errors, "_RECEIVED", [15])
    guard.quiet_after_signal()
    assert {logging.getLogger(n).level for n in names} == {logging.CRITICAL + 1}
