"""Rebuild the sdss-distill-data package (datapkg/) from the two shared SDSS CSV tables.

Writes datapkg/sdss_distill_data/{bright,faint}.parquet and provenance.json. Every original
column keeps its name and its values: the id columns (objid, specobjid, obj_ID, spec_obj_ID,
written in float notation, so not keys) and `class` as the original text, integer columns
as int64, the others as float64 parsed by Python's correctly rounded float(). Row order is
the file's. Each table is built twice and the bytes compared (the build is reproducible for
a given pyarrow version, which provenance.json records); every cell is checked against the
CSV text and the row and class counts against the shared README's.

    python scripts/build_datasets.py                     # CSVs from ../shared/data
    python scripts/build_datasets.py --source-dir DIR    # or --bright FILE --faint FILE
    python scripts/build_datasets.py --check             # rebuild in memory, compare with datapkg/
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import re
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from any directory, installed or not
    sys.path.insert(0, str(REPO))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from sdss_distill.core.errors import InputError, run_cli  # noqa: E402
from sdss_distill.core.io import write_atomic  # noqa: E402

PROG = "scripts/build_datasets.py"
OUT = REPO / "datapkg" / "sdss_distill_data"
SHARED = REPO.parent / "shared" / "data"
COMPRESSION, LEVEL = "zstd", 19  # zstd's highest ordinary level; 22 buys < 1 % here
TEXT_COLUMNS = ("objid", "specobjid", "obj_ID", "spec_obj_ID", "class")
INT_TEXT = re.compile(r"-?\d+")

ACKNOWLEDGEMENT = (
    "Funding for the Sloan Digital Sky Survey IV has been provided by the Alfred P. Sloan "
    "Foundation, the U.S. Department of Energy Office of Science, and the Participating "
    "Institutions. SDSS-IV acknowledges support and resources from the Center for High "
    "Performance Computing at the University of Utah. The SDSS website is www.sdss4.org.")
ACKNOWLEDGEMENT_NOTE = (
    "The standard short form of the SDSS-IV acknowledgement (DR13-DR17). The full form adds "
    "the sentence 'SDSS-IV is managed by the Astrophysical Research Consortium for the "
    "Participating Institutions of the SDSS Collaboration including ...' with the list of "
    "institutions: copy it from https://www.sdss4.org/collaboration/citing-sdss/ for a "
    "publication.")
LICENCE = (
    "SDSS data are public: 'All SDSS data released in our public data releases is considered "
    "in the public domain' (https://www.sdss4.org/collaboration/#image-use). SDSS asks that "
    "publications using its data carry the acknowledgement and cite the data release paper.")

TABLES = {
    "bright": {
        "csv": "sdss_dr14_skyserver_10k.csv",
        "rows": 10_000,
        "class_counts": {"GALAXY": 4998, "STAR": 4152, "QSO": 850},
        "source": ("SDSS SkyServer SQL search, Data Release 14, exported as CSV (the widely used "
                   "'Sloan Digital Sky Survey DR14' table)"),
        "release": "DR14 (SDSS-IV)",
        "selection": (
            "SELECT TOP 10000\n"
            "  p.objid, p.ra, p.dec, p.u, p.g, p.r, p.i, p.z,\n"
            "  p.run, p.rerun, p.camcol, p.field,\n"
            "  s.specobjid, s.class, s.z AS redshift, s.plate, s.mjd, s.fiberid\n"
            "FROM PhotoObj AS p JOIN SpecObj AS s ON s.bestobjid = p.objid\n"
            "WHERE p.u BETWEEN 0 AND 19.6 AND p.g BETWEEN 0 AND 20"),
        "selection_note": (
            "The table matches this query run against DR14; TOP without ORDER BY is not "
            "deterministic, so a re-run returns other rows of the same kind."),
        "citation": ("Abolfathi, B., et al. 2018, ApJS, 235, 42: The Fourteenth Data Release of "
                     "the Sloan Digital Sky Survey (arXiv:1707.09322)"),
        "notes": [
            "objid and specobjid were written in float notation (objid has 3,530 distinct "
            "values): kept as the original text; never a key, use the row position.",
            "specobjid, plate and mjd encode the survey program that targeted the object and "
            "leak its class.",
        ],
    },
    "faint": {
        "csv": "sdss_dr17_faint_27k.csv",
        "rows": 26_999,
        "class_counts": {"GALAXY": 15851, "STAR": 5892, "QSO": 5256},
        "source": ("A subset of the Kaggle 'Stellar Classification Dataset - SDSS17' "
                   "(fedesoriano, January 2022; 100,000 objects from SDSS DR17)"),
        "release": "DR17 (SDSS-IV)",
        "selection": (
            "26,999 spectroscopically classified objects, a subset of the 100,000-object "
            "'Stellar Classification Dataset - SDSS17' table, in that table's column names; "
            "further rows of the same source table are withheld for independent evaluation "
            "and are not in this file."),
        "selection_note": (
            "A much fainter population than the DR14 table (median u g r i z = 22.2 / 21.1 / "
            "20.1 / 19.4 / 19.0); alpha/delta are ra/dec. Some magnitudes are implausible (u "
            "up to 30.7, g up to 31.6): real catalogue values for faint or missing detections, "
            "not file damage."),
        "citation": ("Abdurro'uf, et al. 2022, ApJS, 259, 35: The Seventeenth Data Release of "
                     "the Sloan Digital Sky Surveys (arXiv:2112.02026); fedesoriano 2022, "
                     "Stellar Classification Dataset - SDSS17, Kaggle, https://www.kaggle.com/"
                     "datasets/fedesoriano/stellar-classification-dataset-sdss17"),
        "notes": [
            "obj_ID and spec_obj_ID were rounded to 6 significant digits in this copy: kept as "
            "the original text; never a key, use the row position.",
            "spec_obj_ID, plate, MJD and fiber_ID leak the survey program.",
        ],
    },
}


def sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def read_csv_text(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a CSV file, every cell as its original text."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot read it ({e.strerror}); pass --source-dir DIR or "
                         f"--bright/--faint FILE") from None
    reader = csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline=""))
    header, *rows = list(reader)
    bad = [k for k, r in enumerate(rows) if len(r) != len(header)]
    if bad:
        raise InputError(f"{path}: data row {bad[0]} has {len(rows[bad[0]])} fields, the header "
                         f"{len(header)} ({len(bad)} such rows)")
    return header, rows


def column_type(name: str, cells: list[str]) -> pa.DataType:
    if name in TEXT_COLUMNS:
        return pa.string()
    if all(INT_TEXT.fullmatch(c) for c in cells if c != ""):
        return pa.int64()
    return pa.float64()


def convert(name: str, cells: list[str], kind: pa.DataType) -> pa.Array:
    if kind == pa.string():
        return pa.array(cells, type=kind)
    parse = int if kind == pa.int64() else float
    try:
        return pa.array([parse(c) if c != "" else None for c in cells], type=kind)
    except ValueError as e:
        raise InputError(f"column {name!r}: {e}; expected numbers") from None


def arrow_table(header: list[str], rows: list[list[str]], meta: dict[str, str]) -> pa.Table:
    columns = list(zip(*rows))
    arrays, fields = [], []
    for name, cells in zip(header, columns):
        kind = column_type(name, list(cells))
        arrays.append(convert(name, list(cells), kind))
        fields.append(pa.field(name, kind))
    schema = pa.schema(fields, metadata={k.encode(): v.encode() for k, v in meta.items()})
    return pa.Table.from_arrays(arrays, schema=schema)


def parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression=COMPRESSION, compression_level=LEVEL,
                   row_group_size=max(table.num_rows, 1), write_statistics=True,
                   use_dictionary=False)  # plain + zstd: 23 % smaller than dictionary pages here
    return buf.getvalue()


def verify(name: str, raw: bytes, header: list[str], rows: list[list[str]], spec: dict) -> None:
    """Every cell read back from the Parquet bytes equals the CSV's (text, int or float)."""
    back = pq.read_table(io.BytesIO(raw))
    if back.column_names != header or back.num_rows != len(rows):
        raise InputError(f"{name}: the Parquet file does not read back as the CSV's shape")
    for k, col in enumerate(header):
        values = back.column(col).to_pylist()
        kind = back.schema.field(col).type
        parse = str if kind == pa.string() else int if kind == pa.int64() else float
        for j, (v, text) in enumerate(zip(values, (r[k] for r in rows))):
            want = None if (text == "" and parse is not str) else parse(text)
            if v != want:
                raise InputError(f"{name}: row {j} column {col!r} reads back {v!r}, CSV has {text!r}")
    counts = Counter(r[header.index("class")] for r in rows)
    if len(rows) != spec["rows"] or dict(counts) != spec["class_counts"]:
        raise InputError(f"{name}: {len(rows)} rows, classes {dict(counts)}; expected "
                         f"{spec['rows']} rows, classes {spec['class_counts']} (wrong CSV?)")


def build_table(name: str, csv_path: Path) -> tuple[bytes, dict]:
    """(Parquet bytes, provenance entry) for one table, built twice and verified."""
    spec = TABLES[name]
    csv_raw = csv_path.read_bytes()
    header, rows = read_csv_text(csv_path)
    meta = {"sdss_distill_data.table": name, "source_file": spec["csv"],
            "source_sha256": sha256(csv_raw), "release": spec["release"]}
    first = parquet_bytes(arrow_table(header, rows, meta))
    second = parquet_bytes(arrow_table(header, rows, meta))
    if first != second:
        raise InputError(f"{name}: two builds gave different bytes; the build is not reproducible "
                         f"with pyarrow {pa.__version__}")
    verify(name, first, header, rows, spec)
    schema = pq.read_schema(io.BytesIO(first))
    counts = Counter(r[header.index("class")] for r in rows)
    entry = {
        "file": f"{name}.parquet",
        "sha256": sha256(first),
        "bytes": len(first),
        "rows": len(rows),
        "class_counts": {c: counts[c] for c in sorted(counts, key=lambda c: -counts[c])},
        "columns": {f.name: str(f.type) for f in schema},
        "source": spec["source"],
        "release": spec["release"],
        "selection": spec["selection"],
        "selection_note": spec["selection_note"],
        "source_file": spec["csv"],
        "source_sha256": sha256(csv_raw),
        "source_bytes": len(csv_raw),
        "citation": spec["citation"],
        "notes": spec["notes"],
    }
    return first, entry


def provenance(entries: dict[str, dict]) -> dict:
    return {
        "distribution": "sdss-distill-data",
        "version": "0.1.0",
        "tables": entries,
        "row_order": "the source CSV's; the row position is the only key",
        "built_with": {"pyarrow": pa.__version__, "compression": COMPRESSION,
                       "compression_level": LEVEL, "dictionary_encoding": False,
                       "row_groups": 1, "script": PROG},
        "acknowledgement": ACKNOWLEDGEMENT,
        "acknowledgement_note": ACKNOWLEDGEMENT_NOTE,
        "licence": LICENCE,
        "citations": [
            "Blanton, M. R., et al. 2017, AJ, 154, 28: Sloan Digital Sky Survey IV: Mapping the "
            "Milky Way, Nearby Galaxies, and the Distant Universe",
            *(spec["citation"] for spec in TABLES.values()),
        ],
    }


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(allow_abbrev=False, prog=PROG, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source-dir", default=str(SHARED),
                   help=f"directory holding the two CSVs (default: {SHARED})")
    p.add_argument("--bright", help=f"the DR14 CSV (default: SOURCE_DIR/{TABLES['bright']['csv']})")
    p.add_argument("--faint", help=f"the DR17 CSV (default: SOURCE_DIR/{TABLES['faint']['csv']})")
    p.add_argument("--out", default=str(OUT), help=f"package directory (default: {OUT})")
    p.add_argument("--check", action="store_true",
                   help="build in memory and compare with the files in --out; write nothing")
    p.add_argument("--debug", action="store_true", help="show tracebacks (default: off)")
    return p.parse_args(argv)


def build(args: argparse.Namespace) -> int:
    out = Path(args.out)
    files, entries = {}, {}
    for name, spec in TABLES.items():
        path = Path(getattr(args, name) or Path(args.source_dir) / spec["csv"])
        if not path.is_file():
            raise InputError(f"{path}: no such file; pass --source-dir DIR or --{name} FILE")
        files[f"{name}.parquet"], entries[name] = build_table(name, path)
        e = entries[name]
        print(f"{name}: {path} -> {e['file']} {e['rows']} rows {e['class_counts']} "
              f"{e['source_bytes']} -> {e['bytes']} bytes sha256 {e['sha256']}")
    files["provenance.json"] = (json.dumps(provenance(entries), indent=2, ensure_ascii=False)
                                + "\n").encode()
    if args.check:
        stale = [n for n, raw in files.items()
                 if not (out / n).is_file() or (out / n).read_bytes() != raw]
        if stale:
            raise InputError(f"{out}: {', '.join(stale)} differ from a fresh build; run {PROG} "
                             f"(without --check) and commit the result")
        print(f"OK: {out} matches a fresh build byte for byte")
        return 0
    if not out.is_dir():
        raise InputError(f"--out {out}: no such directory (it should hold the package's __init__.py)")
    for n, raw in files.items():
        write_atomic(out / n, raw)
    print(f"wrote {', '.join(files)} to {out}")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: build(args), PROG, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
