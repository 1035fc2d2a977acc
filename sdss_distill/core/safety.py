"""Guards that keep a user's data and the error contract safe: stdlib only.

- `shorten`: error lines capped at MESSAGE_LIMIT characters, long values cut in the middle.
- `remove_tree_within` / `remove_file_within`: deletions that resolve real paths and never
  follow a symlink out of the directory that owns them.
- `stale_temps`: temporary files of dead writers (their pid is in the name), safe to remove.
- `kind_of`: what a path is (regular file, FIFO, character device, ...), for one-line refusals.
- `is_parquet`: a file is Parquet by its magic bytes, whatever its suffix.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from pathlib import Path

MESSAGE_LIMIT = 300
"""Longest error line the command lines print (characters)."""
VALUE_LIMIT = 60
"""A single word (a value echoed back) longer than this is cut in the middle."""
PARQUET_MAGIC = b"PAR1"


def shorten(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """One line of at most `limit` characters: long words (values echoed back) are cut in
    the middle, down to VALUE_LIMIT characters only if the line is still too long, and only
    then is the middle of the line cut (its start names the file, its end the fix)."""
    message = " ".join(str(message).split())

    def cut_to(width: int):
        def cut(m: re.Match) -> str:
            word, keep = m.group(0), width // 2 - 2
            return f"{word[:keep]}...({len(word) - 2 * keep} chars)...{word[-keep:]}"
        return cut

    for width in (4 * VALUE_LIMIT, 2 * VALUE_LIMIT, VALUE_LIMIT):
        if len(message) <= limit:
            break
        message = re.sub(r"\S{" + str(width + 16) + ",}", cut_to(width), message)
    if len(message) > limit:  # keep the start (what failed) and the end (the fix)
        head = (limit - 5) * 3 // 5
        message = message[:head] + " ... " + message[-(limit - 5 - head):]
    return message


def _real_parent_is(path: Path, owner: Path) -> bool:
    return os.path.realpath(path.parent) == os.path.realpath(owner)


def remove_tree_within(path: Path, owner: Path) -> bool:
    """Remove directory `path` only if it is a real (not symlinked) child of real dir `owner`.

    Returns False (and removes nothing) for a symlink, a path whose real parent is not
    `owner`'s real path, or an `owner` that is itself a symlink.
    """
    path, owner = Path(path), Path(owner)
    if owner.is_symlink() or path.is_symlink() or not path.is_dir():
        return False
    if not _real_parent_is(path, owner):
        return False
    shutil.rmtree(path, ignore_errors=True)  # rmtree never follows symlinks inside the tree
    return True


def remove_file_within(path: Path, owner: Path) -> bool:
    """Unlink `path` (a file or a symlink itself, never its target) if it lives in `owner`."""
    path, owner = Path(path), Path(owner)
    if owner.is_symlink() or not _real_parent_is(path, owner):
        return False
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(mode):
        return False
    path.unlink(missing_ok=True)
    return True


def pid_alive(pid: int) -> bool:
    """True if a process with this id exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def temp_name(target: Path, tag: str = "tmp") -> Path:
    """`.NAME.<pid>.<random>.<tag>` beside `target`: hidden, and marked with its writer's pid."""
    target = Path(target)
    return target.parent / f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.{tag}"


def stale_temps(target: Path, tag: str = "tmp") -> list[Path]:
    """Temp files (from temp_name) for `target` whose writer process is gone: safe to remove."""
    target = Path(target)
    found = []
    pattern = re.compile(r"\." + re.escape(target.name) + r"\.(\d+)\.[0-9a-f]{8}\." + re.escape(tag))
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return []
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        if m and not entry.is_symlink() and entry.is_file() and not pid_alive(int(m.group(1))):
            found.append(entry)
    return found


def kind_of(path: Path) -> str:
    """'a regular file', 'a directory', 'a FIFO (named pipe)', 'a character device', ..."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "missing"
    except OSError as e:
        return f"unreadable ({e.strerror})"
    for test, name in ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def is_parquet(path: Path) -> bool:
    """True if the file starts with Parquet's magic bytes (and is a regular file)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(path, "rb") as f:
            return f.read(4) == PARQUET_MAGIC
    except OSError:
        return False
