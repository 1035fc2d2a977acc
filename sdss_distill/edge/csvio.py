"""Streamed CSV in and out for `python -m sdss_distill.edge predict`: numpy + stdlib only.

Reads CSV_CHUNK_ROWS rows at a time and writes each chunk's predictions before reading the
next, so memory does not grow with the file; an --output file is written to a temporary
name and renamed into place only when complete.
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sdss_distill.core.errors import EXIT_REJECTED, InputError, listing
from sdss_distill.core.io import atomic_path, check_file_target
from sdss_distill.core.quality import check_columns, header_positions, is_preamble
from sdss_distill.core.safety import remove_file_within, shorten, stale_temps
from sdss_distill.core.schema import ID_COLUMNS
from sdss_distill.edge import sets as edge_sets
from sdss_distill.edge.classifier import PROG, EdgeClassifier, card_path
from sdss_distill.edge.reader import MAX_RECORD_LINES, STDIN, UNCLOSED, LineReader, parse_record

CSV_CHUNK_ROWS = 65_536
MAX_REPORTED = 20
"""Rejected rows named one by one on stderr; beyond this, only their count."""


@dataclass
class Chunk:
    """Up to CSV_CHUNK_ROWS data rows of a CSV: numbers, pass-through text and parse errors."""

    rows: np.ndarray        # 1-based data row numbers (blank lines not counted)
    lines: np.ndarray       # file line numbers, for messages
    x: np.ndarray           # (n, columns) float64; NaN where a value is missing or unparsable
    text: list[list[str]]   # id and --keep columns, as written in the input
    errors: list[str]       # "" or why a value could not be parsed (non-numeric)


class CsvInput:
    """A CSV of magnitudes read in chunks: header checked once (BOM, SkyServer `#Table1`
    line and aliases accepted; two names for one column refused), then rows streamed.

    One record per line (edge.reader): a line with a quote that never closes or with another
    number of fields than the header is a rejected row naming its line, never merged with
    the next; `-` (or a FIFO) is read as a stream, never seeked."""

    def __init__(self, path, columns: tuple[str, ...], keep: tuple[str, ...] = ()):
        self.path, self.columns = Path(path), tuple(columns)
        self._lines = LineReader(path)
        self.path = Path(self._lines.name)
        try:
            self._start(keep)
        except BaseException:
            self._lines.close()
            raise

    def _start(self, keep) -> None:
        first = self._lines.readline()
        while first is not None and is_preamble(first):  # SkyServer's '#Table1', blank lines
            first = self._lines.readline()
        if first is None:
            raise InputError(f"{self.path}: " + ("empty file" if self._lines.line_num == 0 else
                             f"no header line: its {self._lines.line_num} line(s) are all blank "
                             f"or comments (#)") + f"; expected a header line with "
                             f"{' '.join(self.columns)}")
        header, why = parse_record(first)
        if why:
            raise InputError(f"{self.path} line {self._lines.line_num}: the header is not a CSV "
                             f"line ({'a field over 128 KiB' if why == 'field-limit' else why}); "
                             f"check the file")
        header = [h.strip() for h in header]
        self._width = len(header)
        pos = header_positions(header, source=str(self.path))
        check_columns(pos, self.columns, source=str(self.path), header=header)
        unknown = [k for k in keep if k not in header]
        if unknown:
            raise InputError(f"--keep {','.join(keep)}: no column(s) {listing(unknown)} in "
                             f"{self.path}; found {listing(header, 20)}")
        self.id_columns = [c for c in ID_COLUMNS if c in pos]
        self.text_columns = [*self.id_columns, *keep]
        self._x_pos = [pos[c] for c in self.columns]
        self._text_pos = [pos[c] for c in self.id_columns] + [header.index(k) for k in keep]
        self._row = 0
        self.blank_lines: list[int] = []  # counted and named in the summary, never a row

    def chunks(self, size: int = CSV_CHUNK_ROWS) -> Iterator[Chunk]:
        """The data rows, `size` at a time."""
        try:
            while True:
                records = self._take(size)
                if not records:
                    return
                chunk = self._parse(records)
                records = None  # one chunk alive at a time: memory independent of the file
                yield chunk
                chunk = None
        finally:
            self._lines.close()

    def _take(self, size: int) -> list[tuple[int, list[str], str]]:
        """Up to `size` (line number, fields, why malformed) for the non-blank lines."""
        out = []
        while len(out) < size:
            line = self._lines.readline()
            if line is None:
                break
            start = self._lines.line_num
            if not line.strip():
                self.blank_lines.append(start)
                continue
            fields, why = parse_record(line)
            if why == UNCLOSED:
                fields, why = self._quoted_newlines(line, fields, why)
            if why == "field-limit":
                raise InputError(f"{self.path} line {start}: a field longer than "
                                 f"the csv limit of 128 KiB; this is not a table of magnitudes "
                                 f"there, check the file")
            if not why and len(fields) != self._width:
                why = f"{len(fields)} fields where the header has {self._width}"
            if why:
                why = f"malformed CSV record ({why})"
            out.append((start, fields, why))
        return out

    def _quoted_newlines(self, line: str, fields, why):
        """A record whose quoted field holds line breaks: joined with the lines that close it
        (at most MAX_RECORD_LINES, and only if the record then has the header's field count);
        else the look-ahead is given back and this line alone is the malformed record."""
        ahead, quotes = [], line.count('"')
        while len(ahead) < MAX_RECORD_LINES:
            more = self._lines.readline()
            if more is None:
                break
            ahead.append(more)
            quotes += more.count('"')
            if quotes % 2 == 0:  # the quote may close here: parse once (linear in the lines)
                joined, joined_why = parse_record("\n".join([line, *ahead]))
                if not joined_why and len(joined) == self._width:
                    return joined, ""
                break
        self._lines.unread(ahead)
        return fields, why

    def _parse(self, records) -> Chunk:
        n, k = len(records), len(self.columns)
        raw = [[r[p] if p < len(r) else "" for p in self._x_pos] for _, r, _ in records]
        try:
            x = np.asarray(raw, dtype=np.float64).reshape(n, k)  # fast path: all numeric
            errors = [""] * n
        except ValueError:
            x, errors = np.full((n, k), np.nan), []
            for i, values in enumerate(raw):
                why = records[i][2]
                for j, v in enumerate(values):
                    try:
                        x[i, j] = float(v) if v.strip() else np.nan
                    except ValueError:
                        why = why or f"non-numeric value {v.strip()!r} in column {self.columns[j]!r}"
                errors.append(why)
        text = [[r[p] if p < len(r) else "" for p in self._text_pos] for _, r, _ in records]
        rows = np.arange(self._row + 1, self._row + n + 1)
        self._row += n
        malformed = [i for i, (_, _, why) in enumerate(records) if why]
        for i in malformed:  # never classified, even if its first fields parse
            x[i] = np.nan
            errors[i] = records[i][2]
        return Chunk(rows, np.array([line for line, _, _ in records]), x, text, errors)


def _output_check(output: Path, input_csv) -> None:
    """Refuse an --output that cannot be written or must not be replaced, before any work."""
    if output.is_dir():
        raise InputError(f"--output {output}: is a directory; name a file, e.g. "
                         f"{output / 'predictions.csv'}")
    source = "/dev/stdin" if str(input_csv) == STDIN else input_csv  # `< output.csv` too
    check_file_target(output, "--output", [source],
                      fix="name a new file (or leave --output out to stream to standard output)")
    parent = output.parent
    if not parent.is_dir():
        raise InputError(f"--output {output}: directory {parent} does not exist; create it "
                         f"first (mkdir -p {parent})")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"--output {output}: cannot write in {parent}; pick a writable directory")


Z_COLUMNS = ("z_phot", "z_phot_err")
"""Columns a model with a redshift head adds (core.zphot): photometric redshift, 68 % band."""


def predict_csv(model: Path, input_csv: Path, output: Path | None, threads: int = 1,
                keep: tuple[str, ...] = (), chunk_rows: int = CSV_CHUNK_ROWS,
                sets: float | str | None = None) -> int:
    """The `predict` command, streamed; exit code 1 if any row was rejected, else 0. `sets`
    (a level in (0, 1)) adds the column `set`: the classes of the row's conformal prediction
    set joined by `+` (edge.sets), "" for an empty set."""
    if output:
        output = Path(output)
        _output_check(output, input_csv)
    clf = EdgeClassifier(model, num_threads=threads)
    q = None if sets is None else edge_sets.thresholds(clf.card, card_path(model), sets, clf.labels)
    source = CsvInput(input_csv, clf.columns, tuple(keep))
    z_columns = list(Z_COLUMNS) if clf.z_name else []  # a model with a redshift head
    clash = set(keep) & {"row", "class", "in_domain", "set", *(f"p_{c}" for c in clf.labels),
                         *z_columns}
    if clash:
        raise InputError(f"--keep: {listing(sorted(clash))} would clash with an output column; "
                         f"rename it in the input")
    header = ["row", *source.text_columns, "class", *(f"p_{c}" for c in clf.labels), "in_domain",
              *z_columns, *(["set"] if q is not None else [])]
    counts = {"classified": 0, "outside": 0, "rejected": 0}
    if output is None:
        _write_predictions(sys.stdout, header, clf, source, source.path, chunk_rows, counts, q)
    else:
        for stale in stale_temps(output):  # left by a SIGKILLed predict (its pid is gone)
            remove_file_within(stale, output.parent)
        with atomic_path(output) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
            _write_predictions(f, header, clf, source, source.path, chunk_rows, counts, q)
    read, blank = counts["classified"] + counts["rejected"], source.blank_lines
    print(f"{PROG}: read {read} rows: classified {counts['classified']} rows, {counts['outside']} "
          f"outside the training domain; rejected {counts['rejected']} rows"
          + (f"; skipped {len(blank)} blank line(s) ({listing(blank)})" if blank else "")
          + (f"; wrote {output}" if output else ""), file=sys.stderr)
    return EXIT_REJECTED if counts["rejected"] else 0


def _write_predictions(f, header, clf, source, input_csv, chunk_rows, counts, q=None) -> None:
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(header)
    for chunk in source.chunks(chunk_rows):
        result = clf.predict(chunk.x)
        probs = np.char.mod("%.6f", np.nan_to_num(result.probabilities))
        domain = np.where(result.in_domain, "true", "false")
        z = ([] if result.z_phot is None else
             np.char.mod("%.5f", np.column_stack([result.z_phot, result.z_phot_err])))
        extra = ([[v] for v in edge_sets.names(result.probabilities, q, clf.labels)]
                 if q is not None else [[]] * len(chunk.rows))
        for i in range(len(chunk.rows)):
            why = chunk.errors[i] or result.quality[i]
            if why:
                if counts["rejected"] < MAX_REPORTED:
                    print(shorten(f"{PROG}: {input_csv} line {chunk.lines[i]}: {why}; row "
                                  f"skipped"), file=sys.stderr)
                counts["rejected"] += 1
                continue
            writer.writerow([chunk.rows[i], *chunk.text[i], result.classes[i], *probs[i],
                             domain[i], *(z[i] if len(z) else ()), *extra[i]])
            counts["classified"] += 1
            counts["outside"] += int(not result.in_domain[i])
        del chunk, result, probs, domain, extra  # freed before the next chunk is read
    if counts["rejected"] > MAX_REPORTED:
        print(f"{PROG}: ... and {counts['rejected'] - MAX_REPORTED} more rejected rows",
              file=sys.stderr)
