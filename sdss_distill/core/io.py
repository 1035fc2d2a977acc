"""File and process helpers every stage shares, stdlib only: atomic writes, SHA-256, JSON and
TOML read with one-line errors, quiet native stderr.

TensorFlow's C++ runtime prints CUDA probes and oneDNN notices before its logging is set
up, so TF_CPP_MIN_LOG_LEVEL cannot hide them, and LiteRT announces its XNNPACK delegate;
we park file descriptor 2 while they run.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import importlib
import json
import os
import stat
import sys
import tempfile
import tomllib
from collections.abc import Iterable
from pathlib import Path

from sdss_distill.core.errors import InputError, listing
from sdss_distill.core.safety import kind_of

PARQUET_SUFFIXES = (".parquet", ".pq")


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


def sha256_file(path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_json(path, *, keys: Iterable[str] = (), fix: str = "train the run again") -> dict:
    """A JSON object from `path` with `keys` present; else an InputError naming the file.
    Read through read_bounded, so a device, FIFO, oversized or deeply nested file is one line."""
    path = Path(path)
    try:
        doc = load_json(path, fix=fix)
    except FileNotFoundError:
        raise InputError(f"{path}: missing; {fix}") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror}); {fix}") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: corrupt (a JSON {type(doc).__name__}, not an object); {fix}")
    missing = [k for k in keys if k not in doc]
    if missing:
        raise InputError(f"{path}: missing key(s) {', '.join(map(repr, missing))}; {fix}")
    return doc


def read_toml(path: str) -> dict:
    """A TOML file as a dict; a missing, non-regular, oversized, non-UTF-8, malformed or deeply
    nested file is an InputError naming it."""
    fix = "give a small UTF-8 TOML file of settings"
    try:
        text = decode_utf8(read_bounded(path, fix=fix), path, fix)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror}); {fix}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path}: not valid TOML ({e})") from None
    except RecursionError:
        raise _too_deep(path, fix) from None
    check_depth(doc, path, fix)
    return doc


def find_parquet(data: str) -> list[Path]:
    """The Parquet files of a directory (its *.parquet / *.pq), a glob, or one large Parquet
    file (any name: streamed by size), sorted by path."""
    if Path(data).is_file():
        return [Path(data)]
    if Path(data).is_dir():
        files = sorted(p for p in Path(data).iterdir()
                       if p.is_file() and p.suffix.lower() in PARQUET_SUFFIXES)
        if not files:
            raise InputError(f"--data {data}: a directory with no .parquet files; streaming "
                             f"training reads Parquet (convert the table, or pass one CSV file)")
        return files
    files = sorted(Path(p) for p in glob.glob(data) if Path(p).is_file())
    if not files:
        raise InputError(f"--data {data}: no file matches the pattern; check the path (quote "
                         f"the pattern so the shell does not expand it)")
    other = [str(p) for p in files if p.suffix.lower() not in PARQUET_SUFFIXES]
    if other:
        raise InputError(f"--data {data}: matches {listing(other)}, not Parquet; streaming "
                         f"training reads only .parquet files (narrow the pattern)")
    return files


# --- Bounded reads (issue 23 cases 9 and 11) ------------------------------------------------
# Every file the app reads whole (model cards, manifests, priors, configs, fetch state) goes
# through read_bounded: a link to /dev/zero would otherwise grow to gigabytes and a FIFO
# would hang, and a deeply nested document would end in a RecursionError traceback.

MAX_DOC_BYTES = 16 << 20
"""Largest file read whole (bytes): the app's own JSON and TOML files are kilobytes."""
MAX_DEPTH = 64
"""Deepest nesting of lists and objects accepted in a JSON or TOML document."""


def read_bounded(path, *, fix: str, cap: int = MAX_DOC_BYTES) -> bytes:
    """The bytes of a regular file of at most `cap` bytes. A FIFO, device or directory, or a
    larger file, is an InputError naming it (opened non-blocking, so a FIFO never hangs);
    FileNotFoundError and other OSErrors pass to the caller, which knows what to suggest."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{path}: {kind_of(path)}, not a regular file; {fix}")
        if st.st_size > cap:
            raise InputError(f"{path}: {st.st_size:,} bytes, more than the {cap:,}-byte cap for "
                             f"a file read whole; {fix}")
        os.set_blocking(fd, True)
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(cap + 1)
    finally:
        os.close(fd)
    if len(data) > cap:
        raise InputError(f"{path}: grew past the {cap:,}-byte cap while read; {fix}")
    return data


def decode_utf8(data: bytes, path, fix: str) -> str:
    """`data` as UTF-8 text (a leading BOM dropped); else an InputError naming the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset "
                         f"{e.start}); {fix}") from None


def _too_deep(path, fix: str) -> InputError:
    return InputError(f"{path}: nested deeper than {MAX_DEPTH} levels; {fix}")


def check_depth(doc, path, fix: str) -> None:
    """InputError if lists/objects in `doc` nest deeper than MAX_DEPTH (walked without recursion)."""
    stack = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > MAX_DEPTH:
                    raise _too_deep(path, fix)
                stack.append((child, depth + 1))


def load_json(path, *, fix: str, cap: int = MAX_DOC_BYTES):
    """Any JSON document from a bounded regular file, UTF-8, nesting capped; every fault but a
    missing or unreadable file (OSError, for the caller's own words) is one InputError."""
    text = decode_utf8(read_bounded(path, fix=fix, cap=cap), path, fix)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: corrupt JSON (line {e.lineno}: {e.msg}); {fix}") from None
    except RecursionError:
        raise _too_deep(path, fix) from None
    check_depth(doc, path, fix)
    return doc


@contextlib.contextmanager
def exclusive(lock: Path, busy: str):
    """Hold an flock on file `lock` for the block; a second holder gets InputError(`busy`) at
    once, never a wait. The file is removed when the block ends, while still held; a waiter
    that had opened the removed file sees that its path now names another file (or none)
    and tries again, so two holders never overlap. Issue 23 case 11: two fetches, one --out."""
    import fcntl

    for _ in range(5):
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666 & ~umask())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InputError(busy) from None
        mine = os.fstat(fd)
        try:
            now = os.stat(lock)
        except FileNotFoundError:
            now = None
        if now is not None and (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino):
            break
        os.close(fd)  # the holder before us removed this file: lock the new one
    else:
        raise InputError(busy)
    try:
        yield
    finally:
        Path(lock).unlink(missing_ok=True)
        os.close(fd)
