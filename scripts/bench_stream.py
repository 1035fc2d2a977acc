"""Benchmark streaming training (`train --data DIR`) on SIMULATED catalogues of growing size.

Usage:
    nice -n 10 python scripts/bench_stream.py                       # 1 M and 5 M rows, 3 epochs
    nice -n 10 python scripts/bench_stream.py --rows 1000000 5000000 --epochs 3 --batch-size 1024
    python scripts/bench_stream.py --help

For each size it writes (once, reused later) SIMULATED Parquet files of 1,000,000 rows each
under --data-dir (synth seeds 0, 1, ...; 0.1 % bad rows), links the first N / 1 M of them
into a directory, runs `python -m sdss_distill.train --data THAT_DIR` in a subprocess and
samples the resident memory (RSS) of the process and its children every 0.1 s (psutil).
Reported per size: peak RSS, wall time, rows/s and the models' accuracy on the simulated
test rows, with the CPU model, core count and load average (other work on the machine).
Results go to OUT/bench_stream.json and OUT/bench_stream.md. Everything is SIMULATED data.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FILE_ROWS = 1_000_000


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000],
                   help="catalogue sizes, multiples of 1,000,000 (default: 1000000 5000000)")
    p.add_argument("--epochs", type=int, default=3, help="max epochs per model (default: 3)")
    p.add_argument("--batch-size", type=int, default=1024, help="rows per step (default: 1024)")
    p.add_argument("--data-dir", default="/tmp/sim_stream",
                   help="where the SIMULATED Parquet files are written and reused "
                        "(default: /tmp/sim_stream)")
    p.add_argument("--out", default="runs/bench_stream",
                   help="directory for the runs and bench_stream.{json,md} (default: runs/bench_stream)")
    return p.parse_args(argv)


def simulated_dir(data_dir: Path, rows: int) -> Path:
    """A directory holding links to the first rows / 1 M simulated files (written if missing)."""
    from sdss_distill.data.synth import write_catalogue
    if rows % FILE_ROWS:
        raise SystemExit(f"--rows {rows}: use a multiple of {FILE_ROWS:,}")
    files = data_dir / "files"
    target = data_dir / f"sim_{rows // FILE_ROWS}m"
    target.mkdir(parents=True, exist_ok=True)
    for k in range(rows // FILE_ROWS):
        path = files / f"part-{k}.parquet"
        if not path.is_file():
            print(f"writing SIMULATED {path} ({FILE_ROWS:,} rows)", file=sys.stderr, flush=True)
            write_catalogue(path, FILE_ROWS, seed=k, bad_fraction=0.001)
        link = target / path.name
        if not link.exists():
            link.symlink_to(path)
    return target


def run_sampled(cmd: list[str]) -> tuple[int, float, int, str]:
    """(exit code, wall s, peak RSS bytes of the process tree, stderr) of a command."""
    import psutil
    start = time.perf_counter()
    with open(os.devnull, "w") as devnull:
        proc = subprocess.Popen(cmd, stdout=devnull, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    ps, peak = psutil.Process(proc.pid), 0
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
    reader.start()
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.1)
    reader.join()
    return proc.returncode, time.perf_counter() - start, peak, "".join(err)


def main(argv=None) -> int:
    args = parse_args(argv)
    from sdss_distill.core.machine import machine
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for rows in args.rows:
        data = simulated_dir(Path(args.data_dir), rows)
        run_dir = out / f"run_{rows // FILE_ROWS}m"
        load_before = os.getloadavg()
        cmd = [sys.executable, "-m", "sdss_distill.train", "--data", str(data), "--method", "offline",
               "--out", str(run_dir), "--epochs", str(args.epochs), "--batch-size", str(args.batch_size)]
        print(f"SIMULATED {rows:,} rows: {' '.join(cmd)}", file=sys.stderr, flush=True)
        code, wall, peak, err = run_sampled(cmd)
        if code != 0:
            print(err, file=sys.stderr)
            return code
        report = json.loads((run_dir / "reports" / "report.json").read_text())
        parts = report["data"]["split"]["parts"]
        fit_rows = {"teacher": parts["teacher_fit"], "student": parts["student_fit"],
                    "baseline": parts["student_fit"]}
        models = report["models"]
        train_rate = {n: round(fit_rows[n] * m["epochs"] / m["train_s"]) for n, m in models.items()}
        results.append({
            "simulated": True, "rows": rows, "rows_kept": report["data"]["rows_kept"],
            "split_sizes": report["data"]["split_sizes"], "peak_rss_mb": round(peak / 2**20, 1),
            "wall_s": round(wall, 1), "rows_per_s_end_to_end": round(rows / wall),
            "train_rows_per_s": train_rate, "epochs": {n: m["epochs"] for n, m in models.items()},
            "test_accuracy": {n: m["test_accuracy"] for n, m in models.items()},
            "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
            "epoch_lines": [line for line in err.splitlines() if " epoch " in line]})
        r = results[-1]
        print(f"SIMULATED {rows:,} rows: peak RSS {r['peak_rss_mb']} MB, wall {r['wall_s']} s, "
              f"test accuracy {r['test_accuracy']}", file=sys.stderr, flush=True)
    doc = {"simulated": True, "machine": machine(), "epochs": args.epochs,
           "batch_size": args.batch_size, "results": results,
           "definitions": {"peak_rss_mb": "max over 0.1 s samples of the RSS of the train process "
                                          "and its children (MiB)",
                           "rows_per_s_end_to_end": "catalogue rows / wall time of the whole "
                                                    "command (TensorFlow import, every pass, writing)",
                           "train_rows_per_s": "fit rows x epochs / model.fit wall time "
                                               "(per model; validation included)"}}
    (out / "bench_stream.json").write_text(json.dumps(doc, indent=2) + "\n")
    md = markdown(doc)
    (out / "bench_stream.md").write_text(md)
    print(md)
    return 0


def markdown(doc: dict) -> str:
    m = doc["machine"]
    lines = [f"Streaming training on SIMULATED rows: {m['cpu']}, {m['cores']} cores, "
             f"{doc['epochs']} epochs max, batch {doc['batch_size']}", "",
             "| SIMULATED rows | peak RSS | wall | rows/s end to end | fit rows/s teacher / student / "
             "baseline | test accuracy teacher / student / baseline | load avg before / after |",
             "|---:|---:|---:|---:|---|---|---|"]
    for r in doc["results"]:
        acc, rate = r["test_accuracy"], r["train_rows_per_s"]
        lines.append(f"| {r['rows']:,} | {r['peak_rss_mb']:,.0f} MB | {r['wall_s']:.0f} s | "
                     f"{r['rows_per_s_end_to_end']:,} | {rate['teacher']:,} / {rate['student']:,} / "
                     f"{rate['baseline']:,} | {acc['teacher']:.2%} / {acc['student']:.2%} / "
                     f"{acc['baseline']:.2%} | {r['load_average_before_after'][0]} / "
                     f"{r['load_average_before_after'][1]} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
