"""`python -m sdss_distill.data fetch`: its options, checked, and the run that downloads a
table from SkyServer (sdss_distill.data.skyserver does the querying)."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from urllib.parse import urlparse

from sdss_distill.core.errors import InputError
from sdss_distill.core.io import check_file_target, exclusive
from sdss_distill.core.safety import kind_of, shorten
from sdss_distill.core.schema import LABELS
from sdss_distill.data.skyserver import (
    BASE_URL_ENV,
    EXIT_SERVER,
    MAX_ROWS_PER_QUERY,
    RELEASES,
    STATE_FILE,
    Settings,
    SkyServerError,
    build_sql,
    fetch,
    make_query,
    partial_dir,
    provenance_path,
)


def add_arguments(p) -> None:
    """The `fetch` subcommand's options (python -m sdss_distill.data fetch)."""
    d = Settings()
    p.add_argument("--release", type=int, default=d.data_release,
                   help=f"SDSS data release, {RELEASES.start}-{RELEASES.stop - 1} "
                        f"(default: {d.data_release})")
    p.add_argument("--rows", type=int, default=10_000, help="objects to fetch (default: 10000)")
    p.add_argument("--mag", nargs=3, action="append", default=[], metavar=("BAND", "MIN", "MAX"),
                   help="keep MIN <= BAND <= MAX for one of u g r i z; repeat for more bands "
                        "(default: every band within 0-40, which excludes -9999 sentinels)")
    p.add_argument("--classes", nargs="+", metavar="CLASS",
                   help=f"only these classes, of {' '.join(LABELS)} (default: all)")
    p.add_argument("--chunk", type=int, default=50_000,
                   help=f"rows per query, at most {MAX_ROWS_PER_QUERY} (default: 50000)")
    p.add_argument("--out", type=Path, metavar="PATH.parquet",
                   help="Parquet to write (default: data/skyserver_dr<RELEASE>.parquet)")
    p.add_argument("--dry-run", action="store_true", help="print the SQL and send nothing (default: off)")
    p.add_argument("--base-url", help=f"SkyServer address (default: ${BASE_URL_ENV}, else {d.base_url})")
    p.add_argument("--timeout", type=float, default=d.timeout,
                   help=f"seconds for each whole reply, from request to last byte (default: "
                        f"{d.timeout:g})")
    p.add_argument("--retries", type=int, default=d.retries,
                   help=f"further attempts after a failed query (default: {d.retries})")
    p.add_argument("--backoff", type=float, default=d.backoff,
                   help=f"seconds before the first retry, doubling after (default: {d.backoff:g})")
    p.add_argument("--quiet", action="store_true", help="no progress bar (default: off)")


def settings_from(args) -> Settings:
    """Validated Settings from the command line (and $SDSS_DISTILL_SKYSERVER)."""
    base = args.base_url or os.environ.get(BASE_URL_ENV) or Settings.base_url
    parsed = urlparse(base)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.query:
        raise InputError(f"--base-url / ${BASE_URL_ENV} must be an http(s) address like "
                         f"{Settings.base_url}, got {base!r}")
    if args.release not in RELEASES:
        raise InputError(f"--release must be from {RELEASES.start} to {RELEASES.stop - 1}, "
                         f"got {args.release}")
    if not (math.isfinite(args.timeout) and 0 < args.timeout <= 3600):
        raise InputError(f"--timeout must be more than 0 and at most 3600 seconds, got {args.timeout}")
    if not 0 <= args.retries <= 20:
        raise InputError(f"--retries must be from 0 to 20, got {args.retries}")
    if not (math.isfinite(args.backoff) and 0 <= args.backoff <= 600):
        raise InputError(f"--backoff must be from 0 to 600 seconds, got {args.backoff}")
    return Settings(base, args.release, args.timeout, args.retries, args.backoff)


def check_targets(out: Path) -> None:
    """Before anything is sent: `--out` and its provenance file are regular files or new names
    (core.io.check_file_target), and `<out>.partial/` is new, empty or the app's own (it holds
    the `state.json` a fetch writes): a user's folder of that name is never used or deleted."""
    for path, what in ((out, "--out"), (provenance_path(out), "its provenance file")):
        if path.is_dir():
            raise InputError(f"--out {out}: {what} {path} is a directory; name a new .parquet "
                             f"file (nothing was downloaded)")
        check_file_target(path, "--out" if path == out else f"--out {out}: {what}")
    part = partial_dir(out)
    if (part.exists() or part.is_symlink()) and (part.is_symlink() or not part.is_dir()):
        raise InputError(f"--out {out}: {part} (where chunks are kept) is {kind_of(part)}, not "
                         f"a directory the app made; remove it or choose another --out")
    if part.is_dir() and any(part.iterdir()) and not (part / STATE_FILE).is_file():
        raise InputError(f"--out {out}: {part} exists without the {STATE_FILE} a fetch writes, "
                         f"so it is not the app's; move it away or choose another --out "
                         f"(nothing was downloaded)")


def run(args) -> int:
    """Body of `python -m sdss_distill.data fetch`."""
    settings = settings_from(args)
    query = make_query(args.rows, args.mag, args.classes)
    if not 1 <= args.chunk <= MAX_ROWS_PER_QUERY:
        raise InputError(f"--chunk must be from 1 to {MAX_ROWS_PER_QUERY}, got {args.chunk}")
    out = args.out or Path("data") / f"skyserver_dr{settings.data_release}.parquet"
    check_targets(out)
    if args.dry_run:
        print(build_sql(query, top=min(args.chunk, query.rows)))
        print(f"-- then TOP min({args.chunk}, rows left) with s.specobjid > the previous chunk's last "
              f"specobjid, until {query.rows} rows; to {settings.url} (nothing sent: --dry-run)")
        return 0
    lock = out.with_name(f".{out.name}.lock")  # one fetch per --out: chunks would interleave
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with exclusive(lock, f"--out {out}: another fetch is writing there (it holds {lock.name}); "
                       f"wait for it to finish or choose another --out"):
            prov = fetch(out, query, settings, chunk=args.chunk, quiet=args.quiet)
    except SkyServerError as e:
        print(shorten(f"python -m sdss_distill.data fetch: error: {e}"), file=sys.stderr)
        return EXIT_SERVER
    short = "" if prov["rows"] == query.rows else f" (only {prov['rows']} objects match; asked {query.rows})"
    print(f"wrote {prov['rows']:,} rows from SkyServer DR{settings.data_release} to {out}{short}; "
          f"provenance in {provenance_path(out)}")
    return 0

