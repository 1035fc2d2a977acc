"""File and process helpers every stage shares, stdlib only: the one rule for every path the app
writes (`check_file_target`, `check_dir_target`, `mark_dir`), atomic writes, SHA-256, finding
Parquet files, JSON and TOML read with one-line errors, quiet native stderr.

TensorFlow's C++ runtime prints CUDA probes and oneDNN notices before its logging is set
up, so TF_CPP_MIN_LOG_LEVEL cannot hide them, and LiteRT announces its XNNPACK delegate;
we park file descriptor 2 while they run.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import importlib
import json
import os
import sys
import tempfile
import tomllib
from collections.abc import Iterable
from pathlib import Path

from sdss_distill.core.bounded import decode_utf8, load_json, parse, read_bounded
from sdss_distill.core.errors import InputError, listing
from sdss_distill.core.safety import kind_of, temp_name

PARQUET_SUFFIXES = (".parquet", ".pq")
OWNER_FILE = ".sdss_distill.json"
"""The mark left in every output directory the app creates (a score output, a HATS output):
only a directory holding it (or a legacy mark) is the app's to write into and clean."""
OWNER_FORMAT = "sdss_distill.output"
HATS_PROPERTIES = ("hats.properties", "properties", "collection.properties")


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
    check_file_target(path, "output", links=True)  # never a device, FIFO or directory
    tmp = temp_name(path)  # hidden, with this pid: stale_temps finds a killed writer's
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
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


# -- the one rule for every path the app writes (issue 23) ----------------------------------

def _real(path) -> Path:
    return Path(os.path.realpath(path))


def _same_file(a, b) -> bool:
    """True if a and b name one file (same inode, or the same real path)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return _real(a) == _real(b)


def _inside(child, parent) -> bool:
    """True if child is parent or lies under it (real paths: symlinks followed)."""
    child, parent = _real(child), _real(parent)
    return child == parent or parent in child.parents


def check_file_target(path, option: str, inputs: Iterable = (), *,
                      fix: str = "name a new file", links: bool = False) -> None:
    """Refuse, before any work, an output file the app may not replace: one of this command's
    inputs (same inode or same real path), anything but a regular file or a new name (a
    device, FIFO, socket or directory), and, unless `links`, a symbolic link (the rename would
    replace the link itself: `/dev/stdout` is one)."""
    path = Path(path)
    kind = kind_of(path)
    for source in inputs:
        if kind == "a regular file" and _same_file(path, source):
            raise InputError(f"{option} {path}: is this command's input {source}; write the "
                             f"output to another file")
    if kind == "a directory":
        raise InputError(f"{option} {path}: is a directory; name a file inside it")
    if kind not in ("missing", "a regular file"):
        raise InputError(f"{option} {path}: {kind}, not a regular file; the app replaces only "
                         f"regular files, {fix}")
    if path.is_symlink() and not links:
        raise InputError(f"{option} {path}: a symbolic link (to {os.readlink(path)}); the app "
                         f"replaces only regular files, {fix}")


def owner_mark(path) -> dict | None:
    """The app's mark in directory `path` (OWNER_FILE's JSON), or None if it is not there."""
    mark = Path(path) / OWNER_FILE
    if mark.is_symlink() or not mark.is_file():
        return None
    try:
        doc = load_json(mark, fix="")  # bounded: a mark is the app's small JSON file
    except (OSError, InputError):
        return None
    return doc if isinstance(doc, dict) and doc.get("format") == OWNER_FORMAT else None


def mark_dir(path, kind: str, **extra) -> None:
    """Mark directory `path` as the app's own `kind` of output (atomically; extra keys kept)."""
    doc = {"format": OWNER_FORMAT, "kind": kind, **extra}
    write_atomic(Path(path) / OWNER_FILE, json.dumps(doc, indent=1) + "\n")


def check_apart(path, option: str, inputs: Iterable = ()) -> None:
    """Refuse an output directory that is one of the command's inputs, lies inside one, or
    holds one (real paths: a symlink does not hide it)."""
    for source in inputs:
        if _inside(path, source) or (Path(path).is_dir() and _inside(source, path)):
            raise InputError(f"{option} {path}: overlaps this command's input {source}; write "
                             f"the output to a directory outside the input")


def check_dir_target(path, option: str, inputs: Iterable = (), *, kind: str,
                     legacy: Iterable[str] = ()) -> None:
    """Refuse, before any work, an output directory the app may not write into: it must be new,
    empty, or marked as the app's own output of this `kind` (OWNER_FILE, or one of the `legacy`
    marks left by earlier versions); it must not be, hold or lie inside one of this command's
    inputs; another program's HATS catalogue and other things than directories are refused."""
    path = Path(path)
    what = kind_of(path)
    if what == "missing" and path.is_symlink():
        raise InputError(f"{option} {path}: a dangling symlink; remove it or pick another path")
    if what not in ("missing", "a directory"):
        raise InputError(f"{option} {path}: {what}, not a directory; name a new directory")
    check_apart(path, option, inputs)
    if what == "missing" or not any(Path(path).iterdir()):
        return
    mark = owner_mark(path)
    if (mark and mark.get("kind") == kind) or any((path / m).exists() for m in legacy):
        return
    hats = [m for m in HATS_PROPERTIES if (path / m).exists()]
    whose = (f"a HATS catalogue the app did not write (it has {hats[0]} but no {OWNER_FILE})"
             if hats else f"an existing directory the app did not create (no {OWNER_FILE})")
    raise InputError(f"{option} {path}: {whose}; name a new or empty directory")


def quiet_import(module: str = "keras"):
    """`importlib.import_module(module)` with native stderr silenced for the duration."""
    if module in sys.modules:
        return sys.modules[module]
    with quiet_native_stderr():
        return importlib.import_module(module)


def sha256_bytes(data: bytes | str) -> str:
    """SHA-256 (hex) of bytes, or of a str's UTF-8: the one hash of the package's records."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


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
    return parse(text, path, fix, tomllib.loads, tomllib.TOMLDecodeError,
                 lambda e: f"{path}: not valid TOML ({e})")


def _visible(path: Path, root: Path) -> bool:
    """No part of `path` below `root` is hidden (`.name`: temp files, `_name`: metadata)."""
    return not any(part.startswith((".", "_")) for part in path.relative_to(root).parts)


def find_parquet(data: str, option: str = "--data") -> list[Path]:
    """The Parquet files `train --data` and `score --input` read, sorted by path: one file
    (any name), or every *.parquet / *.pq file under a directory, recursively (Hive-style
    `key=value/` folders included), skipping hidden entries (`.x`, `_x`) and the app's own
    outputs inside it (a score output: a folder holding OWNER_FILE), or the files a glob
    matches (`**` recursive), which must all be Parquet by suffix."""
    if Path(data).is_file():
        return [Path(data)]
    if Path(data).is_dir():
        root = Path(data)
        outputs = {m.parent for m in root.rglob(OWNER_FILE) if m.parent != root}
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in PARQUET_SUFFIXES
                       and _visible(p, root) and p.is_file()
                       and not any(d in p.parents for d in outputs))
        if not files:
            raise InputError(f"{option} {data}: a directory with no .parquet files (searched "
                             f"recursively); convert the table to Parquet, or pass one file")
        return files
    files = sorted(Path(p) for p in glob.glob(data, recursive=True) if Path(p).is_file())
    if not files:
        raise InputError(f"{option} {data}: no Parquet files match; give a file, a directory or "
                         f"a quoted glob such as 'catalogue/*.parquet' (quoted, so the shell "
                         f"does not expand it)")
    other = [str(p) for p in files if p.suffix.lower() not in PARQUET_SUFFIXES]
    if other:
        raise InputError(f"{option} {data}: matches {listing(other)}, not Parquet; only .parquet "
                         f"and .pq files are read (narrow the pattern)")
    return files


@contextlib.contextmanager
def exclusive(lock: Path, busy: str):
    """Hold an flock on file `lock` for the block; a second holder gets InputError(`busy`) at
    once, never a wait. The file is removed when the block ends, while still held; a waiter
    that had opened the removed file sees that its path now names another file (or none)
    and tries again, so two holders never overlap. Issue 23 case 11: two fetches, one --out."""
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
