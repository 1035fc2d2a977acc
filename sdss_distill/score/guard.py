"""One writer per score output directory, its temp files cleaned, worker errors as one line.

- `output_lock`: `DIR/.score.lock`, flock'ed (non-blocking) for the whole run: a second
  `score` into the same --output is refused at once instead of deleting the first's
  temporary files; under the lock every `.*.parquet.*.tmp` there is a dead writer's and is
  removed, at the start and at the end (a killed worker's partial file included).
- `worker_call`: runs a part on a worker and returns an input error as data ({"error": ...})
  instead of raising it there, so Dask prints no "Compute Failed ... Traceback:" block.
- `DASK_LOGS`, `quiet_after_signal`: no Dask traceback when a signal stops a run.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq

from sdss_distill.core.errors import InputError, disk_full_line, is_disk_full, signal_received
from sdss_distill.core.safety import remove_file_within

LOCK_NAME = ".score.lock"
TEMP_GLOB = ".*.parquet.*.tmp"


@contextlib.contextmanager
def output_lock(output: Path) -> Iterator[None]:
    """Hold DIR/.score.lock for the block; an InputError if another score holds it."""
    output = Path(output)
    if output.is_symlink() and not output.is_dir():
        raise InputError(f"--output {output}: a dangling symlink; remove it or pick another path")
    if output.exists() and not output.is_dir():
        raise InputError(f"--output {output}: exists and is not a directory; name a directory "
                         f"for the parts")
    output.mkdir(parents=True, exist_ok=True)
    fd = os.open(output / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"--output {output}: another score is writing there (it holds "
                             f"{LOCK_NAME}); wait for it to finish or pick another --output") from None
        clean_temps(output)
        try:
            yield
        finally:
            clean_temps(output)
    finally:
        os.close(fd)


def clean_temps(output: Path) -> int:
    """Remove the hidden temp files of earlier (dead) writers; only call under the lock."""
    removed = 0
    for stale in Path(output).glob(TEMP_GLOB):  # never a part: parts are not hidden
        removed += remove_file_within(stale, output)
    return removed


def is_our_part(path: Path, key: bytes) -> bool:
    """True only for a Parquet file a score run wrote (its metadata carries `key`): a stale
    part may be removed, a user's file of a similar name never."""
    try:
        return key in (pq.read_metadata(path).metadata or {})
    except (OSError, ValueError):
        return False


READ_ERRORS = (OSError, ValueError, KeyError, EOFError)
"""What pyarrow raises for a corrupt page, a bad footer or a missing column (ArrowInvalid
is a ValueError, ArrowIOError an OSError)."""


def worker_call(func, part, *args, **kwargs) -> dict:
    """`func(part, ...)` on a worker; an input or read error comes back as {"error": line}."""
    try:
        return func(part, *args, **kwargs)
    except InputError as e:
        return {"error": str(e)}
    except OSError as e:
        if not is_disk_full(e):  # a full output disk is the output's fault, not the input's
            return read_error(part, e)
        return {"error": disk_full_line(f"--output {kwargs.get('out_dir', '?')}", e)}
    except READ_ERRORS as e:
        return read_error(part, e)


def read_error(part, e: BaseException) -> dict:
    """A part that cannot be read, as data: its file, row groups and the first line of why."""
    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
    return {"error": f"{part.source}: cannot read row groups "
                     f"{', '.join(map(str, part.row_groups[:5]))} ({first}); the file is "
                     f"corrupt or changed while scoring, re-create it or leave it out"}


def raise_worker_errors(results: list[dict]) -> None:
    """The first part error, as the InputError it was on the worker."""
    for r in results:
        if "error" in r:
            raise InputError(r["error"])


DASK_LOGS = logging.CRITICAL
"""Level of the LocalCluster's log lines (scheduler, nanny and worker processes). Every fault
of a part reaches the client (worker_call's errors, KilledWorker) and becomes one line, so
Dask's own ERROR lines only add tracebacks, such as a worker's "Failed to communicate with
scheduler during heartbeat" when a signal stops the run while a heartbeat is in flight
(issue 23 case 11: once in 14 signals, 30 lines)."""


def quiet_after_signal() -> None:
    """After SIGINT/SIGTERM, silence this process's Dask and Tornado loggers for the shutdown:
    the run already ends with one line (130/143), whatever the cluster says while stopping."""
    if signal_received() is None:
        return
    for name in ("distributed", "tornado", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
