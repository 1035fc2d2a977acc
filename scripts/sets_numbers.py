"""Reproduce issue 24's Done-when numbers for prediction sets and selections at a purity.

    python scripts/sets_numbers.py --runs /tmp/sets-runs --data faint sdss --seeds 0 1 2 3 4 \
        --out docs/results/sets.json

For each table and seed: the default run (`python -m sdss_distill.train --data D --seed S`)
and its export, trained and exported into RUNS/D-S when not there yet. Then, from the files
the app writes:
- `--sets 0.9` coverage per class on the test rows, for the Keras student (report.json) and for
  the shipped student_int8 file (export.json: its card's thresholds);
- `score --purity QSO=0.9` on a catalogue of the run's test rows (written to Parquet with their
  true class): the measured purity and completeness of `selected_QSO`, with the training mix;
- the same on a star-heavy resample of the test rows (80 / 15 / 5 % STAR / GALAXY / QSO: every
  STAR test row, and GALAXY and QSO test rows drawn without replacement, seed = the run's
  seed), scored with the training mix and with `--priors em`.
Nothing here chooses a setting: the thresholds come from the calibration rows in the card.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HEAVY = {"STAR": 0.80, "GALAXY": 0.15, "QSO": 0.05}


def ensure_run(runs: Path, data: str, seed: int) -> Path:
    out = runs / f"{data}-{seed}"
    if not (out / "reports" / "report.json").is_file():
        subprocess.run([sys.executable, "-m", "sdss_distill.train", "--data", data, "--seed",
                        str(seed), "--out", str(out), "--quiet"], check=True)
    if not (out / "reports" / "export.json").is_file():
        subprocess.run([sys.executable, "-m", "sdss_distill.export", "--run", str(out),
                        "--quiet"], check=True)
    return out


def test_rows(run: Path) -> pd.DataFrame:
    from sdss_distill.runs.rows import load_run_rows
    rows = load_run_rows(run)
    return rows.df.loc[rows.split.test, ["u", "g", "r", "i", "z", "class"]].reset_index(drop=True)


def star_heavy(test: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Every STAR test row, with GALAXY and QSO test rows drawn (without replacement) so the
    mix is HEAVY."""
    rng = np.random.default_rng(seed)
    stars = test[test["class"] == "STAR"]
    n = len(stars) / HEAVY["STAR"]
    parts = [stars] + [test[test["class"] == c].sample(int(round(n * HEAVY[c])), random_state=rng)
                       for c in ("GALAXY", "QSO")]
    return pd.concat(parts).sample(frac=1, random_state=rng).reset_index(drop=True)


def score(model: Path, table: pd.DataFrame, work: Path, priors: str) -> dict:
    """`score --purity QSO=0.9` on `table`; the measured purity/completeness of selected_QSO."""
    src, out = work / "catalogue.parquet", work / f"scored-{priors}"
    work.mkdir(parents=True, exist_ok=True)
    table.to_parquet(src, index=False)
    proc = subprocess.run([sys.executable, "-m", "sdss_distill.score", "--model", str(model),
                           "--input", str(src), "--output", str(out), "--priors", priors,
                           "--purity", "QSO=0.9", "--workers", "1", "--quiet"],
                          capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        raise RuntimeError(proc.stderr)
    scored = pd.read_parquet(out)
    truth = table["class"].to_numpy()[scored["row"].to_numpy() - 1] == "QSO"
    sel = scored["selected_QSO"].fillna(False).to_numpy(bool)
    threshold = float(proc.stderr.split("selected_QSO: p_QSO >= ")[1].split()[0])
    return {"rows": int(len(table)), "qso_rows": int(truth.sum()), "selected": int(sel.sum()),
            "threshold": threshold,
            "expected_completeness": float(proc.stderr.split("expected completeness ")[1]
                                           .split()[0]) / 100,
            "purity": float(truth[sel].mean()) if sel.any() else None,
            "completeness": float(sel[truth].mean()) if truth.any() else None}


def one(run: Path, seed: int, work: Path) -> dict:
    report = json.loads((run / "reports" / "report.json").read_text())
    export = json.loads((run / "reports" / "export.json").read_text())
    cov = {c: g["coverage"] for c, g in report["calibration"]["sets"]["test"]["per_class"].items()}
    cov8 = {c: g["coverage"] for c, g in export["sets"]["test"]["per_class"].items()}
    model = run / "tflite" / "student_int8.tflite"
    test = test_rows(run)
    heavy = star_heavy(test, seed)
    return {"coverage_keras": cov, "coverage_int8": cov8,
            "mean_set_size_int8": export["sets"]["test"]["mean_set_size"],
            "temperature": report["calibration"]["temperature"]["temperature"],
            "qso_0.9_training_mix": score(model, test, work / "test", "training"),
            "qso_0.9_star_heavy_training_mix": score(model, heavy, work / "heavy", "training"),
            "qso_0.9_star_heavy_em": score(model, heavy, work / "heavy", "em")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=Path, required=True, help="directory of the runs (trained "
                   "and exported there when missing)")
    p.add_argument("--data", nargs="+", default=["faint", "sdss"],
                   help="packaged tables (default: faint sdss)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4],
                   help="seeds (default: 0 1 2 3 4)")
    p.add_argument("--out", type=Path, help="JSON file for the numbers (default: print)")
    args = p.parse_args(argv)
    result = {}
    for data in args.data:
        for seed in args.seeds:
            run = ensure_run(args.runs, data, seed)
            work = args.runs / "_sets_numbers" / f"{data}-{seed}"  # never inside a run
            result[f"{data}-{seed}"] = one(run, seed, work)
            r = result[f"{data}-{seed}"]
            print(f"{data} seed {seed}: int8 coverage " + ", ".join(
                f"{c} {100 * v:.1f}" for c, v in r["coverage_int8"].items())
                + "; QSO@0.9 purity: test {:.3f}, heavy/training {:.3f}, heavy/em {:.3f}".format(
                    *(r[k]["purity"] or float("nan") for k in (
                        "qso_0.9_training_mix", "qso_0.9_star_heavy_training_mix",
                        "qso_0.9_star_heavy_em"))), flush=True)
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
