"""Fit the simulated catalogue's model to a real SDSS table and write sdss_distill/synth_params.json.

Usage:
    python scripts/fit_synth.py --data bright
    python scripts/fit_synth.py --data data/sdss.csv --out sdss_distill/synth_params.json --max-components 8

Per class: a full-covariance Gaussian mixture (scikit-learn, components chosen by BIC) over
r, the colours u-g, g-r, r-i, i-z and a signed log of the redshift, asinh(1e4 z); plus the
class share and each class's observed range of every band and of the redshift, which
sampling keeps to (the simulated catalogue never leaves the real sample's domain).
Sampling (sdss_distill/synth.py) needs only numpy.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sdss_distill.core.io import sha256_file, write_atomic  # noqa: E402
from sdss_distill.core.schema import BANDS, LABELS, get_view  # noqa: E402
from sdss_distill.data.synth import FEATURES, REDSHIFT_SCALE, features_of  # noqa: E402
from sdss_distill.data.table import clean, load_table  # noqa: E402


def fit(data: Path, max_components: int, seed: int) -> dict:
    from sklearn.mixture import GaussianMixture

    df, report = clean(load_table(data), get_view("physical"))
    doc = {
        "description": "Per-class Gaussian mixtures fitted by scripts/fit_synth.py; see docs/guide/data.md",
        "source": data.name, "source_sha256": sha256_file(data), "source_rows": report.rows_kept,
        "features": list(FEATURES), "redshift_scale": REDSHIFT_SCALE, "seed": seed, "classes": {},
    }
    for label in LABELS:
        part = df[df["class"] == label]
        x = features_of(part[list(BANDS)].to_numpy("float64"), part["redshift"].to_numpy("float64"))
        fits = [GaussianMixture(k, covariance_type="full", random_state=seed, reg_covar=1e-6).fit(x)
                for k in range(1, max_components + 1)]
        best = min(fits, key=lambda g: g.bic(x))
        ranges = {c: [float(part[c].min()), float(part[c].max())] for c in (*BANDS, "redshift")}
        doc["classes"][label] = {
            "share": len(part) / len(df), "rows": len(part), "components": best.n_components,
            "weights": best.weights_.tolist(), "means": best.means_.tolist(),
            "covariances": best.covariances_.tolist(), "ranges": ranges,
        }
        print(f"{label}: {len(part)} rows, {best.n_components} components (BIC {best.bic(x):.0f})")
    return doc


def main(argv=None) -> int:
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path, help="real SDSS table (CSV or Parquet)")
    p.add_argument("--out", type=Path, default=ROOT / "sdss_distill" / "synth_params.json",
                   help="parameters file (default: sdss_distill/synth_params.json)")
    p.add_argument("--max-components", type=int, default=8,
                   help="largest mixture tried per class (default: 8)")
    p.add_argument("--seed", type=int, default=0, help="mixture initialisation seed (default: 0)")
    args = p.parse_args(argv)
    doc = fit(args.data, args.max_components, args.seed)
    write_atomic(args.out, json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
