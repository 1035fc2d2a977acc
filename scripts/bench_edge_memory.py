"""Peak memory (RSS) of streamed `edge predict` against the number of rows: SIMULATED rows.

Usage:
    python scripts/bench_edge_memory.py --model RUN/tflite/student_int8.tflite
    python scripts/bench_edge_memory.py --model M.tflite --rows 100000 1000000 --keep

Writes a CSV of simulated u g r i z magnitudes (uniform 14-22 mag, ids as text) for each
size, runs `python -m sdss_distill.edge predict --output` on it in a fresh process, and
reports that process's peak resident set size (ru_maxrss) and wall time. A streamed
predict has a flat peak; a whole-file one grows by about 0.8 KB per row.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RUNNER = """
import resource, sys
from sdss_distill.edge import classifier as edge
from sdss_distill.edge import cli as edge_cli
code = edge_cli.main(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def write_rows(path: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        f.write("objid,ra,u,g,r,i,z\n")
        for start in range(0, n, 100_000):
            k = min(100_000, n - start)
            x = rng.uniform(14, 22, (k, 6))
            ids = np.arange(start, start + k) + 1237648720693755918
            f.writelines(f"{i},{r[0]:.5f},{r[1]:.4f},{r[2]:.4f},{r[3]:.4f},{r[4]:.4f},{r[5]:.4f}\n"
                         for i, r in zip(ids, x))


def cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help=".tflite file with its card")
    p.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000],
                   help="sizes to measure (default: 100000 1000000)")
    p.add_argument("--keep", action="store_true", help="also pass --keep ra")
    args = p.parse_args(argv)
    root = Path(__file__).resolve().parents[1]
    results = []
    with tempfile.TemporaryDirectory() as d:
        for n in args.rows:
            src, out = Path(d) / f"rows{n}.csv", Path(d) / f"pred{n}.csv"
            write_rows(src, n)
            cmd = [sys.executable, "-c", RUNNER, "predict", "--model", args.model, "--input",
                   str(src), "--output", str(out), *(["--keep", "ra"] if args.keep else [])]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return proc.returncode
            peak_kb = int(proc.stderr.strip().splitlines()[-1])
            results.append({"rows": n, "peak_rss_mb": round(peak_kb / 1024, 1),
                            "wall_s": round(wall, 1), "input_mb": round(src.stat().st_size / 2**20, 1),
                            "output_rows": sum(1 for _ in open(out)) - 1})
            src.unlink()
            out.unlink()
    print(json.dumps({"simulated": True, "cpu": cpu(), "cores": os.cpu_count(),
                      "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
