"""The photo-z numbers of issue 24's Done-when, on the test rows of each seed's default run:
the default student with its redshift head, the same student without it (methods.mix.redshift
= 0: same seed, rows, teachers and initial weights, so the pair differs only by the head), and
the photo-z peers (sweep.peers.zphot_peers: HistGradientBoosting and kNN regressors of
log(1 + z) on the same non-test rows).

    python scripts/zphot_paired.py --data faint --seeds 0 1 2 3 4 --out runs/zphot-faint

Writes OUT/zphot_per_seed.csv (one row per seed x model x class) and OUT/zphot.json, and prints
the galaxy summary: mean over seeds, paired (head - HistGradientBoosting) and (with - without
head) accuracy differences.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from sdss_distill.core.io import write_atomic  # noqa: E402


def one_seed(data: str, seed: int, say) -> dict:
    from sdss_distill.runs import pipeline
    from sdss_distill.runs.config import make_config
    from sdss_distill.sweep.peers import check_rows, zphot_peers
    cfg = make_config(data=data, seed=seed, quiet=True)
    prepared = pipeline.prepare(cfg)
    ws = pipeline.workspace(prepared, cfg)
    test = prepared.df.loc[prepared.split.test]
    out = {"seed": seed, "redshift_weight": cfg.settings().redshift}
    for label, weight in (("with_head", cfg.settings().redshift), ("without_head", 0.0)):
        c = dataclasses.replace(cfg, methods={"mix": {"redshift": weight}})
        arms = [a for a in pipeline.run_method(ws, c) if a.name in ("teacher", "student")]
        r = pipeline.evaluate(arms, test, curves=False)["student"]
        out[label] = {"accuracy": r["test_accuracy"], "zphot": r.get("zphot")}
        say(f"seed {seed} student {label}: accuracy {r['test_accuracy']:.4%}")
    out["peers"] = zphot_peers(prepared.df, check_rows(prepared.df, prepared.split), seed, say)
    return out


def rows_of(result: dict) -> list[dict]:
    rows = []
    z = result["with_head"]["zphot"]
    models = {"student": {k: z[k] for k in ("all", "GALAXY", "QSO", "STAR")}}
    models.update({name: p["by_class"] for name, p in result["peers"].items()})
    for model, by_class in models.items():
        for cls, q in by_class.items():
            rows.append({"seed": result["seed"], "model": model, "class": cls, **q,
                         "coverage": z[cls]["coverage"] if model == "student" else ""})
    return rows


def summary(results: list[dict]) -> str:
    def col(f):
        return np.array([f(r) for r in results])
    g = col(lambda r: r["with_head"]["zphot"]["GALAXY"]["sigma_nmad"])
    o = col(lambda r: r["with_head"]["zphot"]["GALAXY"]["outliers"])
    cov = col(lambda r: r["with_head"]["zphot"]["GALAXY"]["coverage"])
    hg = col(lambda r: r["peers"]["hist_gradient_boosting"]["by_class"]["GALAXY"]["sigma_nmad"])
    ho = col(lambda r: r["peers"]["hist_gradient_boosting"]["by_class"]["GALAXY"]["outliers"])
    acc = col(lambda r: r["with_head"]["accuracy"]) - col(lambda r: r["without_head"]["accuracy"])
    return "\n".join([
        f"galaxies, seeds {[r['seed'] for r in results]}:",
        f"  student sigma_NMAD {g.mean():.4f} (per seed {np.round(g, 4).tolist()}), "
        f"HGB {hg.mean():.4f} ({np.round(hg, 4).tolist()}); student - HGB per seed "
        f"{np.round(g - hg, 4).tolist()}",
        f"  student outliers {o.mean():.2%} ({np.round(100 * o, 2).tolist()} %), HGB "
        f"{ho.mean():.2%} ({np.round(100 * ho, 2).tolist()} %)",
        f"  z_phot_err coverage {cov.mean():.1%} ({np.round(100 * cov, 1).tolist()} %)",
        f"  class accuracy with - without head: mean {100 * acc.mean():+.3f} pt, per seed "
        f"{np.round(100 * acc, 3).tolist()}"])


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    p.add_argument("--data", default="faint", help="dataset (default: faint)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                   help="seeds (default: 0 1 2 3 4)")
    p.add_argument("--out", type=Path, required=True,
                   help="directory for seed<S>.json (reused) and the tables")
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    results = []
    for seed in a.seeds:
        cached = a.out / f"seed{seed}.json"
        if cached.is_file():
            results.append(json.loads(cached.read_text()))
            continue
        results.append(one_seed(a.data, seed, say))
        write_atomic(cached, json.dumps(results[-1], indent=1))
    buf = io.StringIO()
    rows = [row for r in results for row in rows_of(r)]
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    write_atomic(a.out / "zphot_per_seed.csv", buf.getvalue())
    text = summary(results)
    write_atomic(a.out / "zphot_summary.txt", text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
