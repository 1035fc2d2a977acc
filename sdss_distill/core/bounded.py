"""Bounded reads of files the app reads whole (model cards, manifests, priors, configs, fetch
state): a link to /dev/zero would otherwise grow to gigabytes, a FIFO would hang, and a deeply
nested document would end in a RecursionError traceback (issue 23 cases 9 and 11)."""

from __future__ import annotations

import json
import os
import stat

from sdss_distill.core.errors import InputError
from sdss_distill.core.safety import kind_of

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


def too_deep(path, fix: str) -> InputError:
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
                    raise too_deep(path, fix)
                stack.append((child, depth + 1))


def parse(text: str, path, fix: str, loads, bad: type[Exception], say) -> object:
    """`loads(text)` with its nesting capped: a parse error `bad` is one InputError worded by
    `say(error)`, a RecursionError or nesting deeper than MAX_DEPTH another (JSON and TOML)."""
    try:
        doc = loads(text)
    except bad as e:
        raise InputError(say(e)) from None
    except RecursionError:
        raise too_deep(path, fix) from None
    check_depth(doc, path, fix)
    return doc


def load_json(path, *, fix: str, cap: int = MAX_DOC_BYTES):
    """Any JSON document from a bounded regular file, UTF-8, nesting capped; every fault but a
    missing or unreadable file (OSError, for the caller's own words) is one InputError."""
    text = decode_utf8(read_bounded(path, fix=fix, cap=cap), path, fix)
    return parse(text, path, fix, json.loads, json.JSONDecodeError,
                 lambda e: f"{path}: corrupt JSON (line {e.lineno}: {e.msg}); {fix}")
