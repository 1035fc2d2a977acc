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
  seed), scored with the training mix and with `--priors em`. When score refuses a purity as
  out of reach (exit 2, naming the highest the calibration rows reach), that is recorded and
  the selection is made again at the purity it suggests;
- each selection's purity twice: counted in the catalogue (a few dozen selected objects in a
  star-heavy one), and on every test row reweighted to the catalogue's true mix (the purity
  a catalogue of that mix drawn from the test population would have at that threshold);
- per class and seed, the chance that exchangeable rows put the set coverage in 88-92 %
  (`sweep.stats.coverage_band_probability` with the run's calibration and test counts).
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sdss_distill.core.errors import run_cli  # noqa: E402
from sdss_distill.core.io import atomic_path, read_json, write_atomic  # noqa: E402

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


def score(model: Path, table: pd.DataFrame, work: Path, priors: str, purity: str = "0.9"):
    """`score --purity QSO=P` on `table`: (summary, scored table) or, when score refuses P as out
    of reach, ({"refused": its message, "at_most": the purity it suggests}, None)."""
    src, out = work / "catalogue.parquet", work / f"scored-{priors}-{purity}"
    work.mkdir(parents=True, exist_ok=True)
    table.to_parquet(src, index=False)
    proc = subprocess.run([sys.executable, "-m", "sdss_distill.score", "--model", str(model),
                           "--input", str(src), "--output", str(out), "--priors", priors,
                           "--purity", f"QSO={purity}", "--workers", "1", "--quiet"],
                          capture_output=True, text=True)
    if proc.returncode == 2 and "ask for at most " in proc.stderr:
        return {"refused": proc.stderr.strip(),
                "at_most": proc.stderr.split("ask for at most ")[1].split()[0]}, None
    if proc.returncode not in (0, 1):
        raise RuntimeError(proc.stderr)
    scored = pd.read_parquet(out)
    truth = table["class"].to_numpy()[scored["row"].to_numpy() - 1] == "QSO"
    sel = scored["selected_QSO"].fillna(False).to_numpy(bool)
    threshold = float(proc.stderr.split("selected_QSO: p_QSO >= ")[1].split()[0])
    return {"purity_asked": float(purity), "rows": int(len(table)), "qso_rows": int(truth.sum()),
            "selected": int(sel.sum()), "true_selected": int(truth[sel].sum()),
            "threshold": threshold,
            "expected_completeness": float(proc.stderr.split("expected completeness ")[1]
                                           .split()[0]) / 100,
            "purity": float(truth[sel].mean()) if sel.any() else None,
            "completeness": float(sel[truth].mean()) if truth.any() else None}, scored


def reweighted(test_scored: pd.DataFrame, test: pd.DataFrame, threshold: float, mix: dict):
    """Purity of p_QSO >= threshold on every test row, each class weighted to `mix`."""
    y = test["class"].to_numpy()[test_scored["row"].to_numpy() - 1]
    kept = test_scored["p_QSO"].to_numpy() >= threshold  # --priors training: the model's own
    rate = {c: kept[y == c].mean() for c in mix}
    return float(mix["QSO"] * rate["QSO"] / sum(mix[c] * rate[c] for c in mix))


def select(model, table, work, priors, test_scored, test, mix) -> dict:
    """A QSO=0.9 selection (or, refused, the one at the purity score suggests), with its
    reweighted test-row purity."""
    got, _ = score(model, table, work, priors)
    if "refused" in got:
        again, _ = score(model, table, work, priors, got["at_most"])
        got = {**again, "refused_0.9": got["refused"]}
    got["purity_reweighted_test"] = reweighted(test_scored, test, got["threshold"], mix)
    return got


def counts(report: dict, export: dict) -> dict:
    """Per class: its calibration rows (the card's conformal material) and its test rows."""
    return {c: {"calibration": v["n"], "test": export["sets"]["test"]["per_class"][c]["rows"]}
            for c, v in report["calibration"]["conformal"]["classes"].items()}


def band(n: dict) -> dict:
    """Per class: P(88 % <= coverage <= 92 %) for exchangeable rows at this run's counts."""
    from sdss_distill.sweep.stats import coverage_band_probability
    return {c: coverage_band_probability(v["calibration"], v["test"], 0.9, 0.88, 0.92)
            for c, v in n.items()}


def figure(result: dict, path: Path) -> None:
    """Each run's int8 coverage per class against the 88-92 % band and the 90 % interval
    exchangeable rows give at that run's counts (PNG, with the CSV of what it draws)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from sdss_distill.sweep.stats import coverage_interval
    tables = list(dict.fromkeys(k.rsplit("-", 1)[0] for k in result))
    classes = list(next(iter(result.values()))["coverage_int8"])
    fig = Figure(figsize=(11, 3.2 * len(tables)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(tables), len(classes), sharey=True, squeeze=False)
    rows = []
    for i, data in enumerate(tables):
        runs = {int(k.rsplit("-", 1)[1]): r for k, r in result.items() if k.startswith(data + "-")}
        for j, c in enumerate(classes):
            ax = axes[i][j]
            ax.axhspan(88, 92, color="#999999", alpha=0.2, lw=0, label="88-92 % (Done-when)")
            for s, r in sorted(runs.items()):
                n = r["counts"][c]
                low, high = coverage_interval(n["calibration"], n["test"], 0.9, 0.9)
                cov = 100 * r["coverage_int8"][c]
                rows.append(f"{data},{s},{c},{cov:.3f},{100 * low:.3f},{100 * high:.3f}")
                ax.plot([s, s], [100 * low, 100 * high], color="#0072B2", lw=3, alpha=0.5,
                        label="90 % of runs, exchangeable rows" if s == min(runs) else None)
                ax.plot(s, cov, "o", color="#D55E00",
                        label="student_int8, test rows" if s == min(runs) else None)
            ax.axhline(90, color="black", lw=0.8)
            ax.set_title(f"{data}: {c}")
            ax.set_xlabel("seed")
            ax.set_xticks(sorted(runs))
            if j == 0:
                ax.set_ylabel("coverage of 90 % sets (%)")
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.suptitle("Prediction-set coverage per class and seed, against the spread chance gives")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    write_atomic(path.with_suffix(".csv"), "table,seed,class,coverage_percent,chance_low_percent,"
                                        "chance_high_percent\n" + "\n".join(rows) + "\n")


def one(run: Path, seed: int, work: Path) -> dict:
    report = json.loads((run / "reports" / "report.json").read_text())
    export = json.loads((run / "reports" / "export.json").read_text())
    cov = {c: g["coverage"] for c, g in report["calibration"]["sets"]["test"]["per_class"].items()}
    cov8 = {c: g["coverage"] for c, g in export["sets"]["test"]["per_class"].items()}
    model = run / "tflite" / "student_int8.tflite"
    test = test_rows(run)
    heavy = star_heavy(test, seed)
    on_test, test_scored = score(model, test, work / "test", "training")
    training = fractions(test)
    on_test["purity_reweighted_test"] = reweighted(test_scored, test, on_test["threshold"],
                                                   training)
    return {"calibration_rows": report["calibration"]["rows"]["definition"],
            "coverage_keras": cov, "coverage_int8": cov8, "counts": counts(report, export),
            "band_probability": band(counts(report, export)),
            "mean_set_size_int8": export["sets"]["test"]["mean_set_size"],
            "by_r_int8": export["sets"]["test_by_r"],
            "temperature": report["calibration"]["temperature"]["temperature"],
            "qso_0.9_training_mix": on_test,
            "qso_0.9_star_heavy_training_mix": select(model, heavy, work / "heavy", "training",
                                                      test_scored, test, HEAVY),
            "qso_0.9_star_heavy_em": select(model, heavy, work / "heavy", "em", test_scored,
                                            test, HEAVY)}


def fractions(table: pd.DataFrame) -> dict:
    return table["class"].value_counts(normalize=True).to_dict()


def pct(v) -> str:
    return "" if v is None else f"{100 * v:.1f}"


def coverage_tables(result: dict) -> list[str]:
    """Markdown: coverage per run, then per table and class over seed ranges, against chance."""
    classes = list(next(iter(result.values()))["coverage_int8"])
    lines = ["| run | T | " + " | ".join(f"Keras {c}" for c in classes) + " | "
             + " | ".join(f"int8 {c}" for c in classes) + " | int8 mean set size |",
             "|---|---:|" + "---:|" * (2 * len(classes) + 1)]
    for run, r in result.items():
        lines.append(f"| {run} | {r['temperature']:.3f} | "
                     + " | ".join(pct(r["coverage_keras"][c]) for c in classes) + " | "
                     + " | ".join(pct(r["coverage_int8"][c]) for c in classes)
                     + f" | {r['mean_set_size_int8']:.3f} |")
    lines += ["", "| table | seeds | class | mean int8 coverage (min-max) | pairs in 88-92 % | "
              "expected by chance (exchangeable rows) |", "|---|---|---|---:|---:|---:|"]
    for data in dict.fromkeys(k.rsplit("-", 1)[0] for k in result):
        runs = {int(k.rsplit("-", 1)[1]): r for k, r in result.items() if k.startswith(data + "-")}
        for seeds in (sorted(s for s in runs if s < 5), sorted(runs)):
            for c in classes:
                cov = np.array([runs[s]["coverage_int8"][c] for s in seeds])
                chance = sum(runs[s]["band_probability"][c] for s in seeds)
                inside = int(((cov >= 0.88 - 1e-9) & (cov <= 0.92 + 1e-9)).sum())
                lines.append(f"| {data} | {seeds[0]}-{seeds[-1]} | {c} | {pct(cov.mean())} "
                             f"({pct(cov.min())}-{pct(cov.max())}) | {inside} of {len(seeds)} | "
                             f"{chance:.1f} |")
    return lines


def r_tables(result: dict) -> list[str]:
    """Markdown: int8 coverage per r bin and class, rows pooled over every seed of a table."""
    lines = []
    for data in dict.fromkeys(k.rsplit("-", 1)[0] for k in result):
        runs = [r for k, r in result.items() if k.startswith(data + "-")]
        bins = list(runs[0]["by_r_int8"])
        classes = list(runs[0]["coverage_int8"])
        lines += [f"`{data}`, seeds pooled ({len(runs)} runs; student_int8, test rows):", "",
                  "| r bin | " + " | ".join(classes) + " | mean set size |",
                  "|---|" + "---:|" * (len(classes) + 1)]
        for b in bins:
            cells = []
            for c in classes:
                g = [r["by_r_int8"][b]["per_class"][c] for r in runs]
                n = sum(x["rows"] for x in g)
                hit = sum(x["rows"] * (x["coverage"] or 0) for x in g)
                cells.append(f"{100 * hit / n:.1f} % ({n})" if n else "-")
            rows = sum(r["by_r_int8"][b]["rows"] for r in runs)
            size = sum(r["by_r_int8"][b]["rows"] * (r["by_r_int8"][b]["mean_set_size"] or 0)
                       for r in runs) / max(rows, 1)
            lines.append(f"| {b} | " + " | ".join(cells) + f" | {size:.2f} |")
        lines.append("")
    return lines


def purity_tables(result: dict) -> list[str]:
    """Markdown: each QSO selection per run, then pooled per table and case."""
    cases = {"qso_0.9_training_mix": "test rows, training mix",
             "qso_0.9_star_heavy_training_mix": "star-heavy, training mix",
             "qso_0.9_star_heavy_em": "star-heavy, --priors em"}
    lines = ["| run | case | purity asked | threshold | selected | purity in the catalogue | "
             "purity, every test row reweighted | expected completeness | completeness |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for run, r in result.items():
        for key, name in cases.items():
            g = r[key]
            asked = f"{g['purity_asked']:.2f}" + (" (0.9 refused)" if "refused_0.9" in g else "")
            lines.append(f"| {run} | {name} | {asked} | {g['threshold']:.3f} | {g['selected']} | "
                         f"{pct(g['purity'])} | {pct(g['purity_reweighted_test'])} | "
                         f"{pct(g['expected_completeness'])} | {pct(g['completeness'])} |")
    lines += ["", "| table | seeds | case | runs asked 0.9 (refused) | pooled purity in the "
              "catalogues | mean reweighted purity | reweighted minus asked, every run: mean "
              "(min to max) |", "|---|---|---|---:|---:|---:|---:|"]
    for data in dict.fromkeys(k.rsplit("-", 1)[0] for k in result):
        runs = {int(k.rsplit("-", 1)[1]): r for k, r in result.items() if k.startswith(data + "-")}
        for seeds in (sorted(s for s in runs if s < 5), sorted(runs)):
            for key, name in cases.items():
                gs = [runs[s][key] for s in seeds]
                kept = [g for g in gs if "refused_0.9" not in g]
                pooled = (sum(g["true_selected"] for g in kept) / sum(g["selected"] for g in kept)
                          if kept and sum(g["selected"] for g in kept) else None)
                rw = np.mean([g["purity_reweighted_test"] for g in kept]) if kept else None
                off = np.array([g["purity_reweighted_test"] - g["purity_asked"] for g in gs])
                lines.append(f"| {data} | {seeds[0]}-{seeds[-1]} | {name} | {len(kept)} "
                             f"({len(gs) - len(kept)}) | {pct(pooled)} | {pct(rw)} | "
                             f"{100 * off.mean():+.1f} ({100 * off.min():+.1f} to "
                             f"{100 * off.max():+.1f}) |")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=Path, help="directory of the runs (trained "
                   "and exported there when missing)")
    p.add_argument("--data", nargs="+", default=["faint", "sdss"],
                   help="packaged tables (default: faint sdss)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4],
                   help="seeds (default: 0 1 2 3 4)")
    p.add_argument("--out", type=Path, help="JSON file for the numbers (default: print)")
    p.add_argument("--tables", type=Path, help="read the numbers from this JSON (an earlier "
                   "--out) and print the Markdown tables of docs/results/sets.md; no run")
    p.add_argument("--figure", type=Path, help="with --tables: also draw the coverage figure "
                   "to this PNG (and its CSV beside it)")
    args = p.parse_args(argv)
    if args.tables is None and args.runs is None:
        p.error("--runs is required (unless --tables)")
    return run_cli(lambda: body(args), "python scripts/sets_numbers.py")


def body(args) -> int:
    """Print the tables (and draw the figure) of an earlier JSON, or make the runs' numbers."""
    if args.tables:
        result = read_json(args.tables, fix="pass a JSON this script wrote with --out")
        print("\n".join(coverage_tables(result) + [""] + r_tables(result) + purity_tables(result)))
        if args.figure:
            figure(result, args.figure)
        return 0
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
        write_atomic(args.out, text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
