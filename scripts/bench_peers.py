"""The default student against the models a user would run instead, on exactly each run's rows.

Usage (needs the training extra; CatBoost, LightGBM and XGBoost come with pip install '.[bench]'):
    python scripts/bench_peers.py --data faint --seeds 0 1 2 3 4 5 6 7 8 9 --out runs/bench/faint
    python scripts/bench_peers.py --data sdss --seeds 0 1 --out /tmp/peers --peers knn mlp
    python scripts/bench_peers.py --peer-rows all --runs runs/bench/faint --out runs/bench/faint-all
    make bench                                   # faint and sdss, seeds 0-9

For each seed it trains and exports the default run with the package's own commands (`train
--data D --seed S`, then `export --no-finetune`) into RUNS/seed<S>/ (--runs, default OUT)
unless it is already there, reads the run's table and split back (`runs.rows.load_run_rows`:
the table's SHA-256 checked, the split re-derived and compared row by row), trains each peer of
`sweep.peers.PEERS` (u g r i z + the four colours; defaults, kNN's k chosen on dev rows) on the
rows --peer-rows names (`sweep.peers.PEER_ROWS`): "fit", teacher-train + student-train, the
rows the student learns from; "all", those and the calibration slice, every labelled non-test
row (the third example: what a user who needs no calibrated sets would do, on the same runs),
and scores the int8 and float students and every peer on the run's test rows, overall, per sample
and per r-magnitude bin. One-row latency: median of up to --invokes calls from Python in this
process, beside the raw LiteRT call on student_int8. Paired Wilcoxon tests (scipy) of each
student against each peer over the seeds. A seed's result is kept in OUT/seed<S>.peers.json
and reused while its run, peers and peer rows are unchanged (--fresh to redo). Writes
OUT/peers.md, OUT/peers.json, OUT/peers_summary.csv, OUT/peers_per_seed.csv, OUT/peers_population.csv and
OUT/peers.png (accuracy against size and against latency, log x axes). With the default
student's redshift head, peers.md also compares its z_phot (the shipped file's) with
HistGradientBoosting and kNN regressors of z on the same rows (sweep.peers.zphot_peers).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from any directory, installed or not
    sys.path.insert(0, str(REPO))

from sdss_distill.core.errors import InputError, run_cli  # noqa: E402
from sdss_distill.core.io import read_json, write_atomic  # noqa: E402

PROG = "python scripts/bench_peers.py"


def commit() -> str:
    """The repository's commit (with '+dirty' when tracked files differ), or 'unknown'."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "-uno"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def train_run(run: Path, data: str, seed: int, say) -> None:
    """Train and export the default run of one seed with the package's commands, if missing."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    start = time.perf_counter()
    if not (run / "models" / "student.keras").is_file():
        say(f"training {run} (python -m sdss_distill.train --data {data} --seed {seed})")
        subprocess.run([sys.executable, "-m", "sdss_distill.train", "--data", data, "--out",
                        str(run), "--seed", str(seed), "--quiet"], check=True, env=env)
    if not (run / "tflite" / "student_int8.tflite").is_file():
        subprocess.run([sys.executable, "-m", "sdss_distill.export", "--run", str(run),
                        "--no-finetune", "--quiet", "--invokes", "1000"], check=True, env=env)
    say(f"seed {seed}: run ready in {time.perf_counter() - start:.0f} s")


def students(layout) -> dict:
    """The run's int8 and float students as raw one-thread LiteRT calls on their files."""
    from sdss_distill.core.schema import STUDENT_VIEW, get_view
    from sdss_distill.data.table import features
    from sdss_distill.sweep.peers import STUDENTS, litert
    view = get_view(STUDENT_VIEW)
    out = {}
    for stem in STUDENTS:
        path = layout.tflite_file(stem)
        if not path.is_file():
            raise InputError(f"{path}: missing; export the run (python -m sdss_distill.export "
                             f"--run {layout.root} --no-finetune)")
        out[stem] = (litert(path), lambda t: features(t, view), path.stat().st_size,
                     ".tflite file")
    return out


def bench_seed(run: Path, data: str, args, peers, say) -> dict:
    """One seed's results, from OUT/seed<S>.peers.json when its run, peers and peer rows are
    unchanged."""
    from sdss_distill.runs.rows import load_run_rows
    from sdss_distill.sweep.peers import score_seed
    rows = load_run_rows(run)
    if str(rows.path) != str(data):
        raise InputError(f"{run} was trained on {rows.path}, not {data}; pass --data "
                         f"{rows.path} or another --out")
    report = read_json(rows.layout.report_json)
    key = {"run_id": rows.layout.run_id, "peers": [p.name for p in peers],
           "invokes": args.invokes, "peer_rows": args.peer_rows}
    cache = Path(args.out) / f"{run.name}.peers.json"
    if cache.is_file() and not args.fresh:
        old = read_json(cache)
        if old.get("key") == key:
            say(f"{cache}: reused")
            return old
    try:
        res = score_seed(rows.df, rows.split, peers, students(rows.layout), invokes=args.invokes,
                         budget_s=args.budget, peer_rows=args.peer_rows, say=say)
    except ValueError as e:
        raise InputError(f"{run}: {e}") from None
    res["zphot"] = zphot_seed(rows, report, args.peer_rows, say)
    res.update(key=key, run=str(run), run_id=rows.layout.run_id, method=report.get("method"),
               student_rows=report["models"]["student"].get("rows"),
               student_hidden=rows.config.get("student_hidden"), data=str(rows.path))
    write_atomic(cache, json.dumps(res, indent=1) + "\n")
    return res


def zphot_seed(rows, report: dict, peer_rows: str, say) -> dict | None:
    """The photo-z of the run's shipped student_int8 on its test rows and of the regressor peers
    (sweep.peers.zphot_peers) on the same rows, per class; None for a student without a head."""
    import numpy as np

    from sdss_distill.core.schema import STUDENT_VIEW, get_view
    from sdss_distill.data.table import features, labels
    from sdss_distill.edge.classifier import EdgeClassifier
    from sdss_distill.sweep.peers import check_rows, zphot_by_class, zphot_peers
    if not report["models"]["student"].get("zphot"):
        return None
    test = rows.df.loc[rows.split.test]
    clf = EdgeClassifier(rows.layout.tflite_file("student_int8"))
    z = clf.predict(features(test, get_view(STUDENT_VIEW))).z_phot
    out = {"student_int8": {"by_class": zphot_by_class(z.astype(np.float64), test["redshift"],
                                                        labels(test))}}
    out.update(zphot_peers(rows.df, check_rows(rows.df, rows.split, peer_rows), rows.split.seed,
                           say))
    return out


def write_results(out: Path, per_seed: list[dict], head: list[str], title: str) -> str:
    """OUT/peers.{md,json,png} and the CSVs; returns the Markdown."""
    from sdss_distill.sweep import peer_table
    summary = peer_table.summarise(per_seed)
    best = peer_table.best_peers(summary)
    pop = peer_table.population(per_seed, [*peer_table.STUDENTS, *best])
    md = peer_table.markdown(summary, pop, head) + peer_table.zphot_markdown(per_seed)
    write_atomic(out / "peers_summary.csv", summary.to_csv(index=False))
    write_atomic(out / "peers_per_seed.csv", peer_table.long_table(per_seed).to_csv(index=False))
    write_atomic(out / "peers_population.csv", pop.to_csv(index_label="rows"))
    write_atomic(out / "peers.json", json.dumps({"head": head, "summary": summary.to_dict(
        "records"), "per_seed": per_seed}, indent=1, default=float) + "\n")
    peer_table.figure(summary, title, out / "peers.png")
    write_atomic(out / "peers.md", md)
    return md


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, allow_abbrev=False, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--data", default="faint", help="packaged dataset or table (default: faint)")
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(10)), help="(default: 0-9)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="results (OUT/peers.*, OUT/seed<N>.peers.json); runs too unless --runs")
    p.add_argument("--runs", metavar="DIR", help="where the default runs are, or are trained "
                   "(RUNS/seed<N>/), so both --peer-rows share one set of runs (default: OUT)")
    p.add_argument("--peer-rows", default="fit", metavar="fit|all",
                   help="the peers' training rows: fit = teacher-train + student-train, the "
                   "rows the student learns from; all = those and the calibration slice, every "
                   "labelled non-test row (default: fit)")
    p.add_argument("--peers", nargs="+", metavar="NAME", help="a subset of the peers (default: all)")
    p.add_argument("--invokes", type=int, default=2000, help="one-row calls timed (default: 2000)")
    p.add_argument("--budget", type=float, default=5.0,
                   help="seconds of one-row calls per model at most, >= 20 calls (default: 5)")
    p.add_argument("--fresh", action="store_true", help="ignore OUT/seed<S>.peers.json (default: off)")
    p.add_argument("--quiet", action="store_true", help="no progress lines (default: off)")
    p.add_argument("--debug", action="store_true", help="show tracebacks for input errors (default: off)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    say = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))

    def body() -> int:
        from sdss_distill.core.machine import machine
        from sdss_distill.data.datasets import resolve
        from sdss_distill.sweep.peers import PEER_ROWS, select, skipped_line
        if args.peer_rows not in PEER_ROWS:
            raise InputError(f"--peer-rows {args.peer_rows}: expected one of "
                             f"{', '.join(PEER_ROWS)}")
        if args.invokes < 20 or args.budget <= 0:
            raise InputError(f"--invokes must be >= 20 and --budget > 0, got {args.invokes}, "
                             f"{args.budget}")
        try:
            peers, skipped = select(args.peers)
        except ValueError as e:
            raise InputError(f"--peers: {e}") from None
        if skipped:
            print(skipped_line(skipped), file=sys.stderr)
        data = resolve(args.data).record
        out = Path(args.out)
        runs = Path(args.runs) if args.runs else out
        out.mkdir(parents=True, exist_ok=True)
        per_seed = []
        for seed in args.seeds:
            run = runs / f"seed{seed}"
            train_run(run, data, seed, say)
            per_seed.append(bench_seed(run, data, args, peers, say))
        m, methods = machine(), sorted({str(s.get("method")) for s in per_seed})
        seeds = ", ".join(map(str, args.seeds))
        head = [f"Data `{data}`, seeds {seeds}; runs: method {', '.join(methods)}, student "
                f"{per_seed[0].get('student_hidden')}, trained on {per_seed[0].get('student_rows')} "
                f"rows; commit {commit()}; {m['cpu']}, {m['cores']} cores, Python {m['python']}.",
                f"Peers trained on {PEER_ROWS[args.peer_rows]}: --peer-rows {args.peer_rows}, "
                f"{per_seed[0]['rows']['non_test_rows']:,} rows on seed {args.seeds[0]}.",
                f"Command: `{PROG} {shlex.join(argv if argv is not None else sys.argv[1:])}`."]
        if skipped:
            head.append(f"Not run: {skipped_line(skipped)}.")
        print(write_results(out, per_seed, head, f"{data}: student vs peers, seeds {seeds}"))
        return 0

    return run_cli(body, PROG, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
