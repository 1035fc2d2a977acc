"""Choose the redshift head's weight on dev rows (never the test rows): for each seed, the
`mix` student with methods.mix.redshift = each weight (0: no head), scored on dev-test rows
carved from the non-test rows (`pipeline.prepare(dev=True)`); the teachers are trained once per
seed and shared. Prints one CSV line per seed x weight.

    python scripts/zphot_dev.py --data faint --seeds 0 1 2 --weights 0 0.3 1 3 --transform log1p
    python scripts/zphot_dev.py --data faint --seeds 0 1 2 --weights 1 3 10 --transform z
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from any directory, installed or not
    sys.path.insert(0, str(REPO))

from sdss_distill.core import zphot  # noqa: E402
from sdss_distill.runs import pipeline  # noqa: E402
from sdss_distill.runs.config import make_config  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    p.add_argument("--data", default="faint", help="dataset (default: faint)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                   help="seeds (default: 0 1 2)")
    p.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.3, 1.0, 3.0],
                   help="methods.mix.redshift values, 0 = no head (default: 0 0.3 1 3)")
    p.add_argument("--transform", choices=zphot.TRANSFORMS, default=zphot.TRANSFORM,
                   help=f"what the head predicts (default: {zphot.TRANSFORM})")
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse_args(argv)
    zphot.TRANSFORM = a.transform
    print("transform,seed,weight,dev_accuracy,galaxy_sigma_nmad,galaxy_outliers,galaxy_coverage,"
          "qso_sigma_nmad,qso_outliers", flush=True)
    for seed in a.seeds:
        cfg = make_config(data=a.data, seed=seed, quiet=True)
        prepared = pipeline.prepare(cfg, dev=True)
        ws = pipeline.workspace(prepared, cfg)
        for w in a.weights:
            c = dataclasses.replace(cfg, methods={"mix": {"redshift": w}})
            arms = pipeline.run_method(ws, c)
            r = pipeline.evaluate([x for x in arms if x.name in ("teacher", "student")],
                                  prepared.df.loc[prepared.split.test], curves=False)["student"]
            z = r.get("zphot") or {}
            g, q = z.get("GALAXY", {}), z.get("QSO", {})
            print(f"{a.transform},{seed},{w},{r['test_accuracy']:.5f},"
                  f"{g.get('sigma_nmad', float('nan')):.5f},"
                  f"{g.get('outliers', float('nan')):.5f},{g.get('coverage', float('nan')):.4f},"
                  f"{q.get('sigma_nmad', float('nan')):.4f},{q.get('outliers', float('nan')):.4f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
