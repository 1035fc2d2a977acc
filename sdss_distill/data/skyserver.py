"""Download labelled SDSS objects from SkyServer's SQL search, in resumable chunks, to Parquet.

Usage:
    python -m sdss_distill.data fetch --rows 50000 --out data/dr17_bright.parquet --mag u 0 19.6 --mag g 0 20
    python -m sdss_distill.data fetch --rows 200000 --mag r 19 22 --out data/dr17_faint.parquet
    python -m sdss_distill.data fetch --rows 20000 --classes QSO --release 16 --out data/qso.parquet
    python -m sdss_distill.data fetch --rows 1000 --mag r 19 22 --dry-run

Only validated, typed values (whole numbers, magnitudes within 0-40, class names from
schema.LABELS) enter the SQL. Queries page through SpecObj by specobjid (`TOP n ... WHERE
s.specobjid > last ORDER BY s.specobjid`), one science-primary spectrum per object. Each
finished chunk is kept in `<out>.partial/`, so a killed fetch, re-run with the same arguments,
resumes where it stopped. The result is `<out>` plus `<out>.provenance.json`.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import csv

from sdss_distill import __version__
from sdss_distill.core.bounded import load_json
from sdss_distill.core.errors import InputError, listing
from sdss_distill.core.io import atomic_path, sha256_file, write_atomic
from sdss_distill.core.safety import remove_file_within
from sdss_distill.core.schema import BANDS, CANONICAL_COLUMNS, LABELS, MAGNITUDE_RANGE

BASE_URL_ENV = "SDSS_DISTILL_SKYSERVER"
RELEASES = range(12, 20)  # data releases whose SkyServer has the SqlSearch web service
MAX_ROWS_PER_QUERY = 500_000  # SkyServer's cap on one query's rows
MAX_ROWS = 50_000_000
EXIT_SERVER = 1


@dataclass(frozen=True)
class Settings:
    """Where and how to ask SkyServer; the one place for these defaults."""

    base_url: str = "https://skyserver.sdss.org"  # or $SDSS_DISTILL_SKYSERVER, --base-url
    data_release: int = 17
    timeout: float = 120.0  # seconds per HTTP reply, whole (not per read)
    retries: int = 4  # further attempts after a failed request
    backoff: float = 2.0  # seconds before the first retry, doubled for each next one

    @property
    def url(self) -> str:
        return f"{self.base_url.rstrip('/')}/dr{self.data_release}/SkyServerWS/SearchTools/SqlSearch"


SELECT: tuple[tuple[str, str], ...] = tuple(
    (c, {"class": "s.class", "redshift": "s.z", "specobjid": "s.specobjid", "plate": "s.plate",
         "mjd": "s.mjd", "fiberid": "s.fiberid"}.get(c, f"p.{c}")) for c in CANONICAL_COLUMNS)
"""(output column, SQL expression) in the shared DR14 table's order; `s.z AS redshift` keeps
the spectroscopic redshift apart from the z-band magnitude `p.z`."""

SQL_TEMPLATE = """SELECT TOP {top}
  {columns}
FROM PhotoObj AS p JOIN SpecObj AS s ON s.bestobjid = p.objid
WHERE s.sciencePrimary = 1 AND s.specobjid > {after}
  AND {magnitudes}{classes}
ORDER BY s.specobjid"""


class SkyServerError(RuntimeError):
    """SkyServer refused the query or gave no valid reply after every retry."""


class BadReply(ValueError):
    """A reply that is not SkyServer CSV of the expected columns (HTML page, truncated, garbled)."""


@dataclass(frozen=True)
class Query:
    """What to fetch, validated: every value here has its type and range checked."""

    rows: int
    magnitudes: tuple[tuple[str, float, float], ...]  # (band, min, max) for every band
    classes: tuple[str, ...]  # members of LABELS, in LABELS order

    def params(self) -> dict:
        return {"rows": self.rows, "magnitudes": {b: [lo, hi] for b, lo, hi in self.magnitudes},
                "classes": list(self.classes)}


def make_query(rows, magnitudes=(), classes=None) -> Query:
    """Check the user's values; `magnitudes` is [(band, min, max), ...] as text or numbers."""
    if isinstance(rows, bool) or not isinstance(rows, int) or not 1 <= rows <= MAX_ROWS:
        raise InputError(f"--rows must be a whole number from 1 to {MAX_ROWS}, got {rows!r}")
    lo_all, hi_all = MAGNITUDE_RANGE
    limits = {b: (lo_all, hi_all) for b in BANDS}
    seen = set()
    for band, lo, hi in magnitudes:
        if band not in BANDS:
            raise InputError(f"--mag: unknown band {band!r}; choose one of {', '.join(BANDS)}")
        if band in seen:
            raise InputError(f"--mag: band {band!r} given twice; give each band once")
        seen.add(band)
        try:
            lo, hi = float(lo), float(hi)
        except ValueError:
            raise InputError(f"--mag {band}: limits must be numbers, got {lo!r} {hi!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and lo_all <= lo <= hi <= hi_all):
            raise InputError(f"--mag {band}: need {lo_all:g} <= MIN <= MAX <= {hi_all:g}, got "
                             f"{lo!r} {hi!r}")
        limits[band] = (lo, hi)
    chosen = tuple(LABELS)
    if classes:
        wanted = {str(c).strip().upper() for c in classes}
        unknown = sorted(wanted - set(LABELS))
        if unknown:
            raise InputError(f"--classes: unknown class(es) {listing(unknown)}; choose from "
                             f"{', '.join(LABELS)}")
        chosen = tuple(label for label in LABELS if label in wanted)
    return Query(rows, tuple((b, *limits[b]) for b in BANDS), chosen)


def build_sql(query: Query, *, after: int = 0, top: int | None = None) -> str:
    """The SQL for one chunk: at most `top` rows whose specobjid is greater than `after`."""
    top = query.rows if top is None else top
    if not (isinstance(after, int) and after >= 0 and isinstance(top, int) and top >= 1):
        raise ValueError(f"after must be an int >= 0 and top an int >= 1, got {after!r}, {top!r}")
    if any(b not in BANDS for b, _, _ in query.magnitudes) or not set(query.classes) <= set(LABELS):
        raise ValueError(f"query has unknown bands or classes: {query}; build it with make_query")
    mags = "\n  AND ".join(f"p.{b} BETWEEN {float(lo)!r} AND {float(hi)!r}"
                           for b, lo, hi in query.magnitudes)
    classes = ""
    if set(query.classes) != set(LABELS):
        classes = "\n  AND s.class IN (" + ", ".join(f"'{c}'" for c in query.classes) + ")"
    columns = ", ".join(expr if expr.endswith(f".{name}") else f"{expr} AS {name}" for name, expr in SELECT)
    return SQL_TEMPLATE.format(top=int(top), columns=columns, after=int(after), magnitudes=mags,
                               classes=classes)


def _schema():
    kinds = {"objid": pa.uint64(), "specobjid": pa.uint64(), "class": pa.string(),
             **{c: pa.int64() for c in ("run", "rerun", "camcol", "field", "plate", "mjd", "fiberid")}}
    return pa.schema([(c, kinds.get(c, pa.float64())) for c in CANONICAL_COLUMNS])


def parse_reply(content: bytes):
    """SkyServer CSV (`#Table1`, header, rows) -> a pyarrow Table of the expected schema.

    Ids are parsed as unsigned 64-bit integers straight from the text, never through float.
    Raises BadReply for an HTML page, a wrong header, a truncated or garbled body.
    """
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise BadReply(f"reply is not UTF-8 text ({e.reason} at byte {e.start})") from None
    head = text.lstrip()[:512].lower()
    if head.startswith("<") or "<html" in head:
        title = re.search(r"<title>(.*?)</title>", text, re.I | re.S)
        raise BadReply("reply is an HTML page, not CSV" + (f" ({title.group(1).strip()[:80]})"
                                                            if title else ""))
    lines = text.split("\n", 2)
    if lines[0].strip() != "#Table1":
        raise BadReply(f"reply does not start with '#Table1' (got {lines[0].strip()[:60]!r})")
    if len(lines) < 2 or not lines[1].strip():
        return _schema().empty_table()
    header = [h.strip().lower() for h in lines[1].strip().split(",")]
    if header != list(CANONICAL_COLUMNS):
        raise BadReply(f"reply has columns {listing(header, 20)}; expected {', '.join(CANONICAL_COLUMNS)}")
    schema = _schema()
    try:
        table = csv.read_csv(
            io.BytesIO(lines[2].encode() if len(lines) > 2 else b""),
            read_options=csv.ReadOptions(column_names=list(CANONICAL_COLUMNS)),
            convert_options=csv.ConvertOptions(column_types=schema, strings_can_be_null=False))
    except pa.ArrowInvalid as e:
        if "Empty CSV file" in str(e):
            return schema.empty_table()
        raise BadReply(f"truncated or garbled CSV ({str(e).splitlines()[0][:160]})") from None
    for name in table.column_names:
        if table[name].null_count:
            raise BadReply(f"truncated or garbled CSV (empty value in column {name!r})")
    cls = pc.utf8_upper(pc.utf8_trim_whitespace(table["class"]))
    if not pc.all(pc.is_in(cls, value_set=pa.array(LABELS))).as_py():
        raise BadReply(f"unexpected class value(s) {listing(set(cls.to_pylist()) - set(LABELS))}")
    return table.set_column(table.schema.get_field_index("class"), "class", cls).cast(schema)


MAX_REDIRECTS = 5
REPLY_BYTES_PER_ROW = 2048  # a DR17 row is ~250 bytes of CSV; 8x headroom
REPLY_BYTES_BASE = 1 << 20  # header, '#Table1', an error page


def reply_cap(top: int) -> int:
    """Most bytes (after decompression) a reply for `top` rows may have."""
    return REPLY_BYTES_BASE + top * REPLY_BYTES_PER_ROW


def _why(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else ""
    reason = re.search(r"(\[Errno [^\]]*\][^')]*|Read timed out|Connection refused)", text)
    return f"{type(e).__name__}: {(reason.group(0) if reason else text)[:100]}"


class _Transient(Exception):
    """A reply that failed in transit (timeout, cut short, undecodable): worth a retry."""


def _download(session, settings: Settings, sql: str, cap: int) -> tuple[int, bytes]:
    """(status, body) of one request: at most `cap` bytes after decompression and at most
    settings.timeout seconds for the whole reply (not per read), else _Transient or
    SkyServerError."""
    import requests
    import urllib3

    deadline = time.monotonic() + settings.timeout
    try:
        reply = session.get(settings.url, params={"cmd": sql, "format": "csv"},
                            timeout=settings.timeout, stream=True)
    except requests.TooManyRedirects:
        raise SkyServerError(f"{settings.url}: redirected more than {MAX_REDIRECTS} times (a "
                             f"redirect loop?); check --base-url") from None
    except (requests.Timeout, requests.ConnectionError) as e:
        raise _Transient(_why(e)) from None
    with reply:
        declared = reply.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise SkyServerError(f"{settings.url}: reply of {int(declared):,} bytes, more than "
                                 f"the {cap:,} a query for these rows can need; check --base-url")
        blocks, size = [], 0
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _Transient(f"Timeout: the reply took more than {settings.timeout:g} s "
                                     f"(--timeout) in all")
                sock = getattr(getattr(reply.raw, "connection", None), "sock", None)
                if sock is not None:
                    sock.settimeout(max(0.01, min(left, settings.timeout)))
                block = reply.raw.read1(16384, decode_content=True)
                if not block:
                    break
                size += len(block)
                if size > cap:
                    raise SkyServerError(f"{settings.url}: reply larger than the {cap:,} bytes a "
                                         f"query for these rows can need (decompressed); check "
                                         f"--base-url")
                blocks.append(block)
        except urllib3.exceptions.DecodeError:
            raise _Transient(f"undecodable reply ({reply.headers.get('Content-Encoding')} "
                             f"declared, the body is not)") from None
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise _Transient(_why(e)) from None
        return reply.status_code, b"".join(blocks)


def run_query(session, settings: Settings, sql: str, *, sleep=time.sleep, top: int | None = None):
    """Send one query; retry 5xx, timeouts, dropped connections and bad replies with backoff."""
    problem = ""
    top = top if top is not None else int(re.search(r"TOP (\d+)", sql).group(1))
    session.max_redirects = MAX_REDIRECTS
    for attempt in range(settings.retries + 1):
        if attempt:
            sleep(settings.backoff * 2 ** (attempt - 1))
        try:
            status, content = _download(session, settings, sql, reply_cap(top))
        except _Transient as e:
            problem = str(e)
            continue
        if status >= 500:
            problem = f"HTTP {status} ({_snippet(content)})"
            continue
        if status != 200:
            raise SkyServerError(f"{settings.url}: HTTP {status} "
                                 f"({_snippet(content)}); the server refused the query")
        try:
            table = parse_reply(content)
        except BadReply as e:
            problem = str(e)
            continue
        if table.num_rows > top:
            raise SkyServerError(f"{settings.url}: {table.num_rows} rows for a query of TOP {top}; "
                                 f"the server did not run the expected query, check --base-url")
        return table
    raise SkyServerError(f"{settings.url}: no valid reply after {settings.retries + 1} attempt(s), last: "
                         f"{problem}; try again later, raise --retries/--timeout or check --base-url")


def _snippet(content: bytes) -> str:
    return re.sub(r"<[^>]+>|\s+", " ", content.decode("utf-8", "replace")).strip()[:120] or "empty reply"


STATE_FILE = "state.json"  # the resume state in <out>.partial/, and the mark that it is ours


def partial_dir(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


def provenance_path(out: Path) -> Path:
    return out.with_name(out.name + ".provenance.json")


def fetch(out, query: Query, settings: Settings, *, chunk: int = 50_000, quiet: bool = False,
          sleep=time.sleep) -> dict:
    """Fetch `query` in chunks into Parquet `out`, resuming from `<out>.partial/`; return provenance."""
    import requests
    from tqdm import tqdm

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    part = partial_dir(out)
    wanted = {"release": settings.data_release, "query": query.params()}
    state = _load_state(part, wanted)
    done = sum(c["rows"] for c in state["chunks"])
    after = state["chunks"][-1]["last_specobjid"] if state["chunks"] else 0
    with requests.Session() as session, tqdm(total=query.rows, initial=done, unit="rows", disable=quiet,
                                             desc=f"SkyServer DR{settings.data_release}") as bar:
        session.headers["User-Agent"] = f"sdss-distill/{__version__} (+requests)"
        while done < query.rows:
            top = min(chunk, query.rows - done)
            table = run_query(session, settings, build_sql(query, after=after, top=top),
                              sleep=sleep, top=top)
            if table.num_rows == 0:
                break  # no more objects match; a short chunk alone may be a cut-off reply
            ids = table["specobjid"].to_pylist()
            if ids[0] <= after or any(a >= b for a, b in zip(ids, ids[1:])):
                raise SkyServerError(f"{settings.url}: reply rows are not in increasing specobjid "
                                     f"order after {after}; the server did not run the expected query")
            name = f"chunk-{len(state['chunks']):05d}.parquet"
            buf = io.BytesIO()
            pq.write_table(table, buf)
            part.mkdir(exist_ok=True)
            write_atomic(part / name, buf.getvalue())
            after, done = ids[-1], done + table.num_rows
            state["chunks"].append({"file": name, "rows": table.num_rows, "last_specobjid": after})
            write_atomic(part / STATE_FILE, json.dumps(state, indent=1))
            bar.update(table.num_rows)
    if done == 0:
        raise InputError(f"SkyServer DR{settings.data_release} has no objects matching {query.params()}; "
                         f"loosen --mag or --classes")
    return _assemble(out, part, state, query, settings, chunk)


def _load_state(part: Path, wanted: dict) -> dict:
    path = part / STATE_FILE
    if not path.is_file():
        return {**wanted, "chunks": []}
    fix = f"delete {part} to start over"
    state = load_json(path, fix=fix)
    if not isinstance(state, dict) or not isinstance(state.get("query", {}), dict):
        raise InputError(f"{path}: not a fetch's resume state (a JSON {type(state).__name__}); {fix}")
    if {k: state.get(k) for k in wanted} != wanted:
        differ = [k for k in ("release",) if state.get(k) != wanted[k]] + [
            k for k in wanted["query"] if state.get("query", {}).get(k) != wanted["query"][k]]
        raise InputError(f"{part}: an unfinished fetch with other arguments is there (differs in: "
                         f"{', '.join(differ) or 'format'}); re-run it with the same arguments to "
                         f"resume, choose another --out, or delete that directory to start over")
    return state


def _assemble(out: Path, part: Path, state: dict, query: Query, settings: Settings, chunk: int) -> dict:
    """Join the chunks into `out` (atomically), write its provenance, drop the partial directory."""
    schema = _schema().with_metadata({"sdss_distill.simulated": "false", "sdss_distill.source":
                                      json.dumps({"release": settings.data_release, **query.params()})})
    rows = 0
    with atomic_path(out) as tmp:
        with pq.ParquetWriter(tmp, schema) as writer:
            for c in state["chunks"]:
                table = pq.read_table(part / c["file"])
                writer.write_table(table.replace_schema_metadata(schema.metadata))
                rows += table.num_rows
    provenance = {
        "source": "SDSS SkyServer SQL search", "simulated": False,
        "release": settings.data_release, "base_url": settings.base_url, "url": settings.url,
        "sql_template": SQL_TEMPLATE, "parameters": {**query.params(), "chunk": chunk},
        "paging": "TOP min(chunk, rows left), s.specobjid > the previous chunk's last specobjid",
        "example_sql": build_sql(query, top=min(chunk, query.rows)),
        "queries_saved": len(state["chunks"]), "rows": rows, "requested_rows": query.rows,
        "columns": list(CANONICAL_COLUMNS), "created_utc": datetime.now(UTC).isoformat(),
        "sdss_distill": __version__, "path": str(out), "sha256": sha256_file(out),
    }
    write_atomic(provenance_path(out), json.dumps(provenance, indent=2) + "\n")
    for name in [c["file"] for c in state["chunks"]] + [STATE_FILE]:  # only what fetch wrote
        remove_file_within(part / name, part)
    with contextlib.suppress(OSError):
        part.rmdir()  # kept if anything else was put there meanwhile
    return provenance
