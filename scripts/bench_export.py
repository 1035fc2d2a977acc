"""Wall time of `export` (and of `export --mcu` on the exported run) as a user runs it: a fresh
process, imports included, on a fresh copy of a trained run each time; one or more code
trees (PYTHONPATH) measured back to back, alternating, so load changes hit both alike.

Usage:
    python scripts/bench_export.py --run runs/default                      # this checkout
    python scripts/bench_export.py --run runs/default --code /work/main --code .  # before/after
    python scripts/bench_export.py --run runs/default --repeats 3 --mcu --args=--all

Prints one line per measurement, then the median per code tree, the ratios to the first
tree, the CPU and the load average before and after (a loaded machine slows everything).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CARRY = ("models", "run.json", "split.json", "reports/report.json", "reports/report.md",
         "reports/figures")
"""What a trained, not yet exported run holds (copied into each fresh run)."""


def fresh_copy(run: Path, dst: Path) -> Path:
    """A new run at `dst` with the trained files of `run`'s current version, no export."""
    from sdss_distill.runs.rundir import RunDir
    src = RunDir(run).current()
    with RunDir(dst).write() as layout:
        for rel in src.manifest()["files"]:
            if rel.startswith(CARRY):
                (layout.root / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src.root / rel, layout.root / rel)
    return dst


def timed(code: Path, argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system of it and its children) of `python -m
    sdss_distill ARGV` with PYTHONPATH=code; raises on failure. On a loaded machine the CPU
    seconds are the steadier figure: wall time waits for other processes' turns."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sdss_distill", *argv], env=env, cwd=code,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"{code}: {' '.join(argv)} failed ({proc.returncode}):\n"
                         f"{proc.stderr[-2000:]}")
    return seconds, cpu


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--run", required=True, type=Path, help="a trained run (train --out)")
    p.add_argument("--code", action="append", type=Path,
                   help="a code tree to import sdss_distill from; repeatable (default: this one)")
    p.add_argument("--repeats", type=int, default=3, help="runs per code tree (default: 3)")
    p.add_argument("--mcu", action="store_true",
                   help="also time `export --mcu` on each freshly exported run (default: off)")
    p.add_argument("--args", default="", help="extra export options, e.g. --args=--all (default: none)")
    args = p.parse_args(argv)
    from sdss_distill.core.machine import machine
    codes = [c.resolve() for c in (args.code or [ROOT])]
    extra = args.args.split()
    times = {(c, step): [] for c in codes for step in ("export", "export --mcu")}
    cpus = {key: [] for key in times}
    print(f"cpu: {machine()['cpu']} ({machine()['cores']} cores); load before: "
          f"{os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        for k in range(args.repeats):
            for code in codes:
                run = fresh_copy(args.run, Path(tmp) / f"run{k}-{codes.index(code)}")
                s, c = timed(code, ["export", "--run", str(run), "--quiet", *extra])
                times[code, "export"].append(round(s, 1))
                cpus[code, "export"].append(round(c, 1))
                line = f"repeat {k}: {code}: export {s:.1f} s (CPU {c:.1f} s)"
                if args.mcu:
                    m, c = timed(code, ["export", "--run", str(run), "--mcu", "--quiet", *extra])
                    times[code, "export --mcu"].append(round(m, 1))
                    cpus[code, "export --mcu"].append(round(c, 1))
                    line += f", then export --mcu {m:.1f} s (CPU {c:.1f} s)"
                print(line, f"(load {os.getloadavg()[0]:.2f})", flush=True)
    print(f"load after: {os.getloadavg()}")
    first = codes[0]
    for step in ("export", "export --mcu") if args.mcu else ("export",):
        for code in codes:
            med = statistics.median(times[code, step])
            ratio = med / statistics.median(times[first, step])
            cpu = statistics.median(cpus[code, step])
            cpu_ratio = cpu / statistics.median(cpus[first, step])
            print(f"{step:13s} {code}: wall median {med:.1f} s of {times[code, step]} "
                  f"({ratio:.2f}x of {first}); CPU median {cpu:.1f} s of {cpus[code, step]} "
                  f"({cpu_ratio:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
