"""CSV records read one line at a time in bounded memory, from a file, a FIFO or stdin.

Why not `csv.reader` over the file: a quote that never closes makes it swallow every later
line into one field (silently, up to its 128 KiB field limit), and a file with no newline
(`/dev/zero`) is read whole into memory. Here lines are read one at a time: a line longer
than MAX_LINE_BYTES is an error naming it; a quoted field may span lines (CSV's quoted
newline: one record, numbered by its first line) only if its quote closes within
MAX_RECORD_LINES lines and the record then has the header's field count, else the line is a
malformed record (rejected with its line number, never merged with the next); nothing is ever
seeked, so `-`, `/dev/stdin` and named pipes stream like files. Lines end at LF (or CRLF);
a lone CR is part of its line, as in RFC 4180. Stdlib only.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from sdss_distill.core.errors import InputError
from sdss_distill.core.safety import kind_of

MAX_LINE_BYTES = 1 << 20
"""Longest line accepted (1 MiB): a table of magnitudes has lines of ~100 bytes."""
MAX_FIELD_CHARS = 128 * 1024
UNCLOSED = "a quoted field that never closes"
MAX_RECORD_LINES = 64
"""A quoted field may hold line breaks, up to this many lines for one record: a quote that
never closes costs a bounded look-ahead, then only its own line is rejected."""
BLOCK_BYTES = 1 << 20
STDIN = "-"


class LineReader:
    """Decoded lines of a file, FIFO or stdin (`-`), each at most MAX_LINE_BYTES."""

    def __init__(self, path):
        self.name = "<stdin>" if str(path) == STDIN else str(path)
        self.line_num = 0
        self._pending: list[str] = []  # decoded lines not yet returned, last first
        self._rest, self._eof, self._started = b"", False, False
        if str(path) == STDIN:
            self._f, self._owned = sys.stdin.buffer, False
            return
        path = Path(path)
        try:
            self._f, self._owned = open(path, "rb"), True
        except IsADirectoryError:
            raise InputError(f"{path}: is a directory; pass a CSV file") from None
        except FileNotFoundError:
            raise InputError(f"{path}: no such file; check the path") from None
        except OSError as e:
            raise InputError(f"{path}: cannot open ({e.strerror}); it is {kind_of(path)}, "
                             f"pass a readable CSV file or - for standard input") from None

    def readline(self) -> str | None:
        """The next line without its line ending; None at the end of the input."""
        if not self._pending:
            self._fill()
            if not self._pending:
                return None
        self.line_num += 1
        return self._pending.pop()

    def _fill(self) -> None:
        """Read about BLOCK_BYTES, decode the whole lines in it at once (the file's hot path)."""
        while not self._pending and not self._eof:
            try:
                block = self._f.read1(BLOCK_BYTES) if hasattr(self._f, "read1") else self._f.read(BLOCK_BYTES)
            except OSError as e:
                raise InputError(f"{self.name}: cannot read ({e.strerror}); pass a regular CSV "
                                 f"file, a pipe or - for standard input") from None
            if not block:
                self._eof = True
                lines = _split(self._rest + b"\n") if self._rest else []
                self._rest = b""
            else:
                data = self._rest + block
                cut = data.rfind(b"\n") + 1
                lines, self._rest = _split(data[:cut]), data[cut:]
                if not cut and len(self._rest) <= MAX_LINE_BYTES:
                    continue
            self._check_length(lines)
            self._pending = self._decode(lines)[::-1]

    def _check_length(self, lines: list[bytes]) -> None:
        for k, line in enumerate(lines):
            if len(line) > MAX_LINE_BYTES:
                raise InputError(f"{self.name} line {self.line_num + k + 1}: longer than "
                                 f"{MAX_LINE_BYTES >> 20} MiB; this is not a table of magnitudes, "
                                 f"check the file")
        if len(self._rest) > MAX_LINE_BYTES:
            raise InputError(f"{self.name} line {self.line_num + len(lines) + 1}: longer than "
                             f"{MAX_LINE_BYTES >> 20} MiB; this is not a table of magnitudes, "
                             f"check the file")

    def _decode(self, lines: list[bytes]) -> list[str]:
        first = self.line_num == 0 and not self._started
        self._started = True
        if first and lines and lines[0].startswith(b"\xef\xbb\xbf"):
            lines[0] = lines[0][3:]
        try:
            return b"\n".join(lines).decode("utf-8").split("\n") if lines else []
        except UnicodeDecodeError:
            for k, line in enumerate(lines):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise InputError(f"{self.name}: not UTF-8 text near line {self.line_num + k + 1} "
                                     f"(byte {e.object[e.start]:#04x}); save the file as UTF-8") from None
            raise

    def unread(self, lines: list[str]) -> None:
        """Give back `lines` (read last, in reading order): the next readline returns them."""
        self._pending.extend(reversed(lines))
        self.line_num -= len(lines)

    def close(self) -> None:
        if self._owned:
            self._f.close()


def _split(data: bytes) -> list[bytes]:
    """The lines of `data` (which ends with LF), without their LF or CRLF: records end at a
    line feed only, so a lone CR stays inside its line (one record, one line number)."""
    if not data:
        return []
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")  # a lone CR is left in its line
    return data[:-1].split(b"\n")


def parse_record(line: str) -> tuple[list[str], str]:
    """(fields, "") for a well-formed one-line CSV record, else ([], why it is malformed)."""
    if '"' not in line:
        fields = line.split(",")
    else:
        try:
            fields = next(csv.reader([line], strict=True))
        except csv.Error as e:
            why = (UNCLOSED if "unexpected end of data" in str(e)
                   else f"malformed quoting ({e})")
            return [], why
    if len(line) > MAX_FIELD_CHARS and max(map(len, fields)) > MAX_FIELD_CHARS:
        return fields, "field-limit"
    return fields, ""
