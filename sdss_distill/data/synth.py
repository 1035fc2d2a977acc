"""A SIMULATED SDSS-like catalogue for offline demos and scale tests (never for science claims).

Usage:
    python -m sdss_distill.data synth --rows 1000000 --out data/sim_1m.parquet
    python -m sdss_distill.data synth --rows 20000000 --out data/sim_20m.parquet --seed 1 --bad-fraction 0.001

    from sdss_distill.data.synth import write_catalogue
    provenance = write_catalogue("data/sim.parquet", 5_000_000, seed=0, bad_fraction=0.01)

Rows come from per-class Gaussian mixtures fitted to the real DR14 table by
scripts/fit_synth.py (parameters in synth_params.json, numpy only here). Rows are made in
fixed blocks of BLOCK rows, each from its own seeded stream, so a file is the same for a
given seed whatever its row-group size, and a smaller file is a prefix of a larger one.
Every file says it is simulated: Parquet key-value metadata and `<out>.provenance.json`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sdss_distill import __version__
from sdss_distill.core.cli import progress
from sdss_distill.core.errors import InputError
from sdss_distill.core.io import atomic_path, sha256_bytes, sha256_file, write_atomic
from sdss_distill.core.schema import BANDS, LABELS, SIMULATED_KEY, colour_pairs

PARAMS_FILE = Path(__file__).with_name("synth_params.json")
FEATURES = ("r", "u-g", "g-r", "r-i", "i-z", "asinh(1e4*redshift)")
REDSHIFT_SCALE = 1e4  # signed log of z that resolves stellar velocities and QSO redshifts alike
BLOCK = 16384  # rows per seeded stream; fixed, so files do not depend on --row-group
BAD_KINDS = ("sentinel", "missing", "out_of_range", "float32_overflow")
"""Injected bad values, named as quality.REASONS names them: -9999, NaN, outside the physical
range (magnitude 40.5-99 or redshift 8.5-20), and 1e39 (beyond float32)."""
SIMULATED_NOTE = ("SIMULATED data (sdss_distill.data.synth: Gaussian mixtures fitted to the real "
                  "table), not SDSS observations: never quote its numbers as results on real data")


def is_simulated(metadata: dict | None) -> bool:
    """True when Parquet key-value metadata (bytes or str keys) marks the file as simulated."""
    meta = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in (metadata or {}).items()}
    return meta.get(SIMULATED_KEY, "").lower() == "true"


OBJID_BASE = 1_237_000_000_000_000_000  # SDSS-like magnitude; + seed * 2**36 + row: unique
SPECOBJID_OFFSET = 2_000_000_000_000_000_000


@dataclass(frozen=True)
class ClassModel:
    share: float
    weights: np.ndarray
    means: np.ndarray
    chol: np.ndarray  # Cholesky factors of the components' covariances
    lo: np.ndarray  # observed range of u g r i z redshift in the real class
    hi: np.ndarray


def features_of(mags: np.ndarray, redshift: np.ndarray) -> np.ndarray:
    """(n, 5) u g r i z and (n,) redshift -> the (n, 6) FEATURES the mixtures model."""
    a, b = np.asarray(colour_pairs(BANDS)).T  # u-g, g-r, r-i, i-z as core.schema defines them
    return np.column_stack([mags[:, BANDS.index("r")], mags[:, a] - mags[:, b],
                            np.arcsinh(REDSHIFT_SCALE * redshift)])


def _from_features(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r = x[:, 0]
    g = r + x[:, 2]
    u = g + x[:, 1]
    i = r - x[:, 3]
    z = i - x[:, 4]
    return np.column_stack([u, g, r, i, z]), np.sinh(x[:, 5]) / REDSHIFT_SCALE


def load_model(path: Path = PARAMS_FILE) -> tuple[dict[str, ClassModel], dict]:
    """The fitted mixtures per class (in LABELS order) and the parameter file's document."""
    doc = json.loads(Path(path).read_text())
    models = {}
    for label in LABELS:
        c = doc["classes"][label]
        cols = (*BANDS, "redshift")
        models[label] = ClassModel(
            share=c["share"], weights=np.asarray(c["weights"]), means=np.asarray(c["means"]),
            chol=np.linalg.cholesky(np.asarray(c["covariances"])),
            lo=np.array([c["ranges"][k][0] for k in cols]),
            hi=np.array([c["ranges"][k][1] for k in cols]))
    return models, doc


def _sample_class(m: ClassModel, rng: np.random.Generator, n: int) -> np.ndarray:
    """n rows (u g r i z redshift) of one class, rejecting draws outside the real class's range."""
    out = np.empty((n, 6))
    got = 0
    for _ in range(100):  # acceptance is ~0.8, so this ends after a few rounds
        if got == n:
            return out
        k = int((n - got) * 1.3) + 16
        comp = rng.choice(len(m.weights), size=k, p=m.weights)
        x = np.empty((k, 6))
        normal = rng.standard_normal((k, 6))
        for j in range(len(m.weights)):
            sel = comp == j
            x[sel] = m.means[j] + normal[sel] @ m.chol[j].T
        mags, z = _from_features(x)
        rows = np.column_stack([mags, z])
        keep = rows[((rows >= m.lo) & (rows <= m.hi)).all(axis=1)][: n - got]
        out[got:got + len(keep)] = keep
        got += len(keep)
    raise RuntimeError("synth: rejection sampling did not converge; refit synth_params.json")


def _block(models: dict[str, ClassModel], seed: int, block: int, bad_fraction: float) -> dict:
    """Rows [block * BLOCK, (block + 1) * BLOCK) of the catalogue for `seed`."""
    sample_ss, bad_ss, sky_ss = np.random.SeedSequence([seed, block]).spawn(3)
    rng = np.random.default_rng(sample_ss)
    shares = np.array([models[label].share for label in LABELS])
    cls = rng.choice(len(LABELS), size=BLOCK, p=shares / shares.sum()).astype(np.int8)
    values = np.empty((BLOCK, 6))
    for c, label in enumerate(LABELS):
        idx = np.flatnonzero(cls == c)
        values[idx] = _sample_class(models[label], rng, len(idx))
    kind = np.full(BLOCK, -1, dtype=np.int8)
    if bad_fraction > 0:
        kind = _inject_bad(values, np.random.default_rng(bad_ss), bad_fraction)
    sky = np.random.default_rng(sky_ss)
    lo, hi = np.sin(np.radians([-10.0, 70.0]))  # a rough SDSS-like declination band
    row = np.arange(block * BLOCK, (block + 1) * BLOCK, dtype=np.uint64)
    objid = np.uint64(OBJID_BASE + (seed % 2**20) * 2**36) + row
    return {"objid": objid, "specobjid": objid + np.uint64(SPECOBJID_OFFSET),
            "ra": sky.uniform(0.0, 360.0, BLOCK), "dec": np.degrees(np.arcsin(sky.uniform(lo, hi, BLOCK))),
            "values": values, "class": cls, "kind": kind}


def _inject_bad(values: np.ndarray, rng: np.random.Generator, fraction: float) -> np.ndarray:
    """Spoil one value in a `fraction` of rows in place; return each row's BAD_KINDS index or -1."""
    n = len(values)
    bad = rng.random(n) < fraction
    kind = rng.integers(0, len(BAD_KINDS), n).astype(np.int8)
    col = rng.integers(0, values.shape[1], n)
    is_z = col == values.shape[1] - 1
    out_of_range = np.where(is_z, rng.uniform(8.5, 20.0, n), rng.uniform(40.5, 99.0, n))
    new = np.choose(kind, [np.full(n, -9999.0), np.full(n, np.nan), out_of_range, np.full(n, 1e39)])
    rows = np.flatnonzero(bad)
    values[rows, col[rows]] = new[rows]
    return np.where(bad, kind, -1).astype(np.int8)


def _schema(metadata: dict[str, str]):
    fields = [pa.field("objid", pa.uint64()), pa.field("specobjid", pa.uint64()),
              pa.field("ra", pa.float64()), pa.field("dec", pa.float64()),
              *(pa.field(b, pa.float64()) for b in BANDS), pa.field("redshift", pa.float64()),
              pa.field("class", pa.string())]
    return pa.schema(fields, metadata=metadata)


def _table(models, seed: int, bad_fraction: float, start: int, stop: int, schema):
    """Rows [start, stop) as a pyarrow Table, plus their bad-kind and class codes."""
    first, last = start // BLOCK, (stop - 1) // BLOCK
    parts = [_block(models, seed, b, bad_fraction) for b in range(first, last + 1)]
    lo = start - first * BLOCK
    cat = {k: np.concatenate([p[k] for p in parts])[lo:lo + stop - start] for k in parts[0]}
    values = cat["values"]
    cols = {"objid": cat["objid"], "specobjid": cat["specobjid"], "ra": cat["ra"], "dec": cat["dec"],
            **{b: values[:, j] for j, b in enumerate(BANDS)}, "redshift": values[:, 5]}
    arrays = [pa.array(cols[f.name]) for f in schema if f.name != "class"]
    labels = pa.DictionaryArray.from_arrays(pa.array(cat["class"]), pa.array(LABELS)).cast(pa.string())
    return pa.Table.from_arrays([*arrays, labels], schema=schema), cat["kind"], cat["class"]


def provenance_path(out) -> Path:
    return Path(f"{out}.provenance.json")


def write_catalogue(out, rows: int, *, seed: int = 0, bad_fraction: float = 0.0,
                    row_group: int = 1_000_000, quiet: bool = True) -> dict:
    """Write a SIMULATED catalogue of `rows` rows to Parquet `out`, one row group at a time.

    Returns the provenance dict, also written to `<out>.provenance.json`. Same arguments,
    same file bytes. Raises InputError for a bad argument.
    """
    _check(rows, seed, bad_fraction, row_group)
    models, doc = load_model()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    params_sha = sha256_bytes(PARAMS_FILE.read_bytes())
    settings = {"generator": "sdss_distill.synth", "version": __version__, "rows": rows, "seed": seed,
                "bad_fraction": bad_fraction, "params_sha256": params_sha}
    schema = _schema({SIMULATED_KEY: "true", "sdss_distill.synth": json.dumps(settings)})
    bad = dict.fromkeys(BAD_KINDS, 0)
    classes = np.zeros(len(LABELS), dtype=np.int64)
    with atomic_path(out) as tmp:
        with pq.ParquetWriter(tmp, schema) as writer, \
                progress(total=rows, unit="rows", disable=quiet, desc="synth (simulated)") as bar:
            for start in range(0, rows, row_group):
                stop = min(start + row_group, rows)
                table, kind, cls = _table(models, seed, bad_fraction, start, stop, schema)
                writer.write_table(table, row_group_size=row_group)
                for k, name in enumerate(BAD_KINDS):
                    bad[name] += int((kind == k).sum())
                classes += np.bincount(cls, minlength=len(LABELS))
                bar.update(stop - start)
            writer.add_key_value_metadata({"sdss_distill.bad_rows": json.dumps(bad)})
    provenance = {
        "simulated": True, **settings, "row_group": row_group,
        "row_groups": -(-rows // row_group), "bad_rows": bad, "bad_rows_total": sum(bad.values()),
        "class_counts": dict(zip(LABELS, classes.tolist())),
        "model": f"per-class Gaussian mixtures over {', '.join(FEATURES)}, fitted to "
                 f"{doc['source']} ({doc['source_rows']} rows); see docs/guide/data.md",
        "numpy": np.__version__, "path": str(out), "created_utc": datetime.now(UTC).isoformat(),
        "sha256": sha256_file(out),
    }
    write_atomic(provenance_path(out), json.dumps(provenance, indent=2) + "\n")
    return provenance


def _check(rows, seed, bad_fraction, row_group) -> None:
    if not isinstance(rows, int) or rows < 1:
        raise InputError(f"--rows must be a whole number >= 1, got {rows!r}")
    if not isinstance(seed, int) or seed < 0:
        raise InputError(f"--seed must be a whole number >= 0, got {seed!r}")
    if not (isinstance(bad_fraction, int | float) and 0.0 <= bad_fraction <= 1.0):
        raise InputError(f"--bad-fraction must be between 0 and 1, got {bad_fraction!r}")
    if not isinstance(row_group, int) or row_group < 1:
        raise InputError(f"--row-group must be a whole number >= 1, got {row_group!r}")


def add_arguments(p) -> None:
    """The `synth` subcommand's options (python -m sdss_distill.data synth)."""
    p.add_argument("--rows", type=int, required=True, help="rows to write (required)")
    p.add_argument("--out", required=True, metavar="PATH.parquet",
                   help="Parquet file to write; provenance goes to PATH.parquet.provenance.json")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same file (default: 0)")
    p.add_argument("--bad-fraction", type=float, default=0.0, metavar="F",
                   help="share of rows given one bad value: -9999, NaN, out of range or 1e39 "
                        "(default: 0.0)")
    p.add_argument("--row-group", type=int, default=1_000_000, metavar="R",
                   help="rows per Parquet row group, and the most held in memory (default: 1000000)")
    p.add_argument("--quiet", action="store_true", help="no progress bar (default: off)")


def run(args) -> int:
    """Body of `python -m sdss_distill.data synth`."""
    prov = write_catalogue(args.out, args.rows, seed=args.seed, bad_fraction=args.bad_fraction,
                           row_group=args.row_group, quiet=args.quiet)
    print(f"wrote {prov['rows']:,} SIMULATED rows to {args.out} ({prov['bad_rows_total']:,} bad rows "
          f"injected: {prov['bad_rows']}); provenance in {provenance_path(args.out)}")
    return 0
