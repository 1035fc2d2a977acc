"""JAX's persistent compile cache, made unable to change a result (issue 23 case 6).

Compiling an epoch costs about a second of CPU per model shape, more than training a
student, so compiled programs are kept on disk and reused by later runs. JAX trusts that
folder blindly: it looks an entry up by the file name and runs whatever native code the file
holds, so an epoch compiled for `--temperature 8` copied over the entry for T=2 made a T=2
`train` reproduce the T=8 student (exit 0, run.json saying T=2); two swapped entries gave a
traceback on every later run; a truncated one warned on every run and was never replaced.

Both safeguards the issue offers, together:

- **Each entry carries its key.** An entry is one file, `KEY.entry`: a JSON header (JAX's
  cache key, which hashes the program, its shapes, the compile options and the backend; the
  jax and jaxlib versions; the SHA-256 of the payload), a newline, then JAX's payload. On
  every read the header must name the key asked for and the running versions, and the
  payload must hash to the recorded digest; anything else (a swapped, truncated, foreign or
  old-format entry) is deleted and reported as a miss, so JAX compiles again and the entry
  is replaced once, quietly. Written atomically (core/io.py), so a killed run leaves the
  old entry or the new one.
- **The folder is private.** `$XDG_CACHE_HOME/sdss_distill/jax-verified` (default
  `~/.cache/...`), created 0700; used only if it is a real directory (not a symlink) owned
  by this user that neither group nor others may write. Otherwise this run compiles without
  a cache and says so in one line. `SDSS_DISTILL_JAX_CACHE=DIR` picks another folder (same
  checks); an empty value turns the cache off.

The digest detects damage and swaps, not a forger who can already write the user's
private folder (that forger can already change the user's code). JAX's own
`jax_compilation_cache_check_contents` was rejected: it recompiles every entry once per
process, which is the whole cost the cache saves. The hook is JAX's `CacheInterface`
(jax._src, not public API): if that moves in a later JAX, `enable` runs without a cache
rather than with an unchecked one.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from pathlib import Path

import jax
import jaxlib

from sdss_distill.core.io import sha256_bytes, write_atomic

ENV = "SDSS_DISTILL_JAX_CACHE"
FOLDER = ("sdss_distill", "jax-verified")
SUFFIX = ".entry"
MIN_COMPILE_S = 0.1
"""Programs that compile faster than this are not worth a file (JAX's threshold setting)."""
MAX_ENTRY_BYTES = 256 << 20
_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,200}")

_state: dict = {"enabled": None, "folder": None, "replaced": 0}


def default_folder() -> Path | None:
    """The folder `enable` uses: $SDSS_DISTILL_JAX_CACHE, else the XDG cache home's; None if
    the variable is set but empty (cache off)."""
    chosen = os.environ.get(ENV)
    if chosen is not None:
        return Path(chosen).expanduser() if chosen.strip() else None
    home = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(home) if home and os.path.isabs(home) else Path.home() / ".cache"
    return base.joinpath(*FOLDER)


def private_folder(folder: Path) -> str | None:
    """Create `folder` (0700) if missing; None if it is safe to use, else why not."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(folder)
    except OSError as e:
        return f"cannot create it ({e.strerror})"
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        return "it is a symlink or not a directory"
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return f"it belongs to user id {st.st_uid}, not this user"
    if st.st_mode & 0o022:
        return f"group or others may write it (mode {stat.S_IMODE(st.st_mode):o}; chmod 700 it)"
    return None


def _versions() -> dict:
    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__}


def _cache_class():
    """A jax CacheInterface that verifies every entry it returns (built lazily: imports jax)."""
    from jax._src.compilation_cache_interface import CacheInterface

    class VerifiedCache(CacheInterface):
        def __init__(self, path: Path):
            self._path = path
            self._versions = _versions()

        def _file(self, key: str) -> Path | None:
            return self._path / f"{key}{SUFFIX}" if _KEY.fullmatch(key) else None

        def get(self, key: str) -> bytes | None:
            path = self._file(key)
            if path is None:
                return None
            payload = read_entry(path, key, self._versions)
            if payload is None and os.path.lexists(path):
                discard(path)
            return payload

        def put(self, key: str, value: bytes) -> None:
            path = self._file(key)
            if path is not None:
                try:
                    write_atomic(path, header(key, value, self._versions) + value)
                except OSError:  # a full disk or a read-only folder: run without this entry
                    pass

    return VerifiedCache


def header(key: str, payload: bytes, versions: dict) -> bytes:
    """The first line of an entry: what it is for and the digest of what follows."""
    doc = {"key": key, **versions, "sha256": sha256_bytes(payload)}
    return json.dumps(doc, sort_keys=True).encode() + b"\n"


def read_entry(path: Path, key: str, versions: dict) -> bytes | None:
    """The payload of entry `path` if it is a regular file whose header names `key` and these
    versions and whose payload matches its digest; else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_ENTRY_BYTES:
            return None
        data = f.read()
    head, sep, payload = data.partition(b"\n")
    try:
        doc = json.loads(head) if sep else None
    except ValueError:
        return None
    want = json.loads(header(key, payload, versions))
    return payload if doc == want else None


def discard(path: Path) -> None:
    """Delete a bad entry (the file or link itself, inside our private folder), counted."""
    try:
        path.unlink()
        _state["replaced"] += 1
    except OSError:
        pass


def enable(folder: Path | None = None) -> Path | None:
    """Point JAX's persistent compile cache at a verified private folder, once per process;
    returns the folder, or None when the cache is off (then JAX compiles every program)."""
    if _state["enabled"] is not None:
        return _state["folder"]
    _state["enabled"] = True
    folder = default_folder() if folder is None else Path(folder)
    if folder is None:
        return None
    why = private_folder(folder)
    if why is not None:
        print(f"sdss-distill: not using the compile cache {folder}: {why}; compiling instead",
              file=sys.stderr)
        return None
    try:
        from jax._src import compilation_cache as cc
        cache = _cache_class()(folder)
    except (ImportError, AttributeError, TypeError):  # JAX's internals moved: no cache at all
        return None
    # Only JAX's cache object is set, not jax_compilation_cache_dir: should anything reset
    # JAX's cache, it finds no folder and compiles, rather than reading ours unchecked.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_S)
    with cc._cache_initialized_mutex:
        cc._cache, cc._cache_initialized = cache, True
    _state["folder"] = folder
    return folder


def replaced() -> int:
    """Bad entries deleted by this process (each then compiled and written again)."""
    return _state["replaced"]
