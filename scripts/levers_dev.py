"""Accuracy levers of the student, on dev rows only: each against the current default, paired.

Usage (training extra; never reads a test row: every seed is prepared with `dev=True`, the
split's test rows dropped and the rest split again, as `experiment --dev` does):
    python scripts/levers_dev.py --data faint --seeds 0 1 2 3 4 --out runs/levers-dev
    python scripts/levers_dev.py --data faint --seeds 0 --only default mix-48 --out /tmp/l

Per seed, one workspace trains the fold teachers (and the photometric fold models) once and
every lever's student reuses them; each student is scored on the seed's dev-test rows.
Writes OUT/levers.csv (one row per seed x lever, appended as each finishes, so a killed run
resumes) and OUT/levers.md: per lever the mean dev accuracy and the paired difference to
`default` (mean, W/T/L, two-sided Wilcoxon p over the seeds).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

TEACHER_SIZE = (128, 128, 64, 32)
"""The photometric fold MLPs' widths in the mix levers below (the deep teacher's); the default
`mix` has 64-64 since the `mix-48-ph64` lever."""


def _mix(hidden=(48, 48), **settings) -> dict:
    """A `mix` lever: the student's widths, then mix settings over the measured ones."""
    overrides = {k: settings.pop(k) for k in ("temperature", "alpha") if k in settings}
    return {"method": "mix", "student_hidden": hidden, **overrides,
            "methods": {"mix": {"hidden": TEACHER_SIZE, **settings}}}


LEVERS: dict[str, dict] = {
    # name: Config overrides (method settings under "methods")
    "default": {"method": "crossfit", "student_hidden": (24, 24)},  # the previous release's
    "crossfit-32": {"method": "crossfit", "student_hidden": (32, 32)},
    "crossfit-48": {"method": "crossfit", "student_hidden": (48, 48)},
    "crossfit-64": {"method": "crossfit", "student_hidden": (64, 64)},  # over 8 KB: reference
    "crossfit-24x3": {"method": "crossfit", "student_hidden": (24, 24, 24)},
    "mix-24": _mix((24, 24)),
    "mix-48": _mix(),
    "mix-48-w0.3": _mix(weight=0.3),
    "mix-48-w0.7": _mix(weight=0.7),
    "photo-48": _mix(weight=0.0),
    "mix-48-hgb": _mix(photometric="hgb"),
    "mix-48-T2": _mix(temperature=2.0),
    "mix-48-a1": _mix(alpha=1.0),
    "mix-48-a0.7": _mix(alpha=0.7),
    "mix-48-sharp0.5": _mix(sharpness=0.5),
    "mix-48-ph64": {**_mix(), "methods": {"mix": {"hidden": (64, 64)}}},  # the new default
    "mix-48-sharp2": _mix(sharpness=2.0),
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--data", default="faint", help="packaged dataset or table (default: faint)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                   help="seeds, each its own split (default: 0 1 2 3 4)")
    p.add_argument("--only", nargs="+", choices=LEVERS, help="levers to run (default: all)")
    p.add_argument("--out", required=True, help="directory of levers.csv and levers.md")
    return p.parse_args(argv)


def one_seed(data: str, seed: int, levers: list[str], done: set):
    """Yield one result row per lever not yet done on this seed (dev rows only)."""
    from sdss_distill.data.table import labels
    from sdss_distill.runs.config import make_config
    from sdss_distill.runs.pipeline import prepare, run_method, workspace
    base = make_config(data=data, seed=seed, quiet=True)
    prepared = prepare(base, dev=True)
    assert prepared.dev
    ws = workspace(prepared, base)
    dev = prepared.df.loc[prepared.split.test]
    rows = []
    for name in levers:
        if (seed, name) in done:
            continue
        cfg = dataclasses.replace(base, **LEVERS[name])
        arms = {a.name: a for a in run_method(ws, cfg)}
        student = arms["student"]
        acc = float((student.logits(dev).argmax(1) == labels(dev)).mean())
        base_acc = float((arms["baseline"].logits(dev).argmax(1) == labels(dev)).mean())
        rows.append({"seed": seed, "lever": name, "dev_accuracy": acc,
                     "own_baseline_accuracy": base_acc, "parameters": student.parameters,
                     "student_s": round(student.fitted.seconds, 2), "dev_rows": len(dev)})
        print(f"seed {seed} {name:18s} {acc:.4%} (own baseline {base_acc:.4%})", file=sys.stderr,
              flush=True)
        yield rows[-1]


def summary(df, data: str) -> str:
    from sdss_distill.sweep.stats import paired
    ref = df[df.lever == "default"].set_index("seed").dev_accuracy
    lines = [f"# Levers on `{data}` dev rows (no test row read)", "",
             "Paired: the lever's student minus `default`, the previous release's default "
             "student (crossfit 24-24, T 1, alpha 0.9), on the same seeds and dev-test rows; "
             "W/T/L = wins/ties/losses; p = two-sided Wilcoxon.", "",
             "| lever | seeds | parameters | dev accuracy | vs default | W/T/L | p | vs own baseline |",
             "|---|---:|---:|---:|---:|---|---:|---:|"]
    for name in dict.fromkeys(df.lever):
        g = df[df.lever == name].set_index("seed")
        seeds = g.index.intersection(ref.index)
        d = paired(100 * g.dev_accuracy.loc[seeds], 100 * ref.loc[seeds])
        own = 100 * (g.dev_accuracy - g.own_baseline_accuracy).mean()
        lines.append(f"| {name} | {len(g)} | {g.parameters.iloc[0]:,} | "
                     f"{100 * g.dev_accuracy.mean():.2f} | {d['mean_diff']:+.2f} | "
                     f"{d['wins']}/{d['ties']}/{d['losses']} | {d['wilcoxon_p']:.3f} | {own:+.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    import pandas as pd
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv = out / "levers.csv"
    old = pd.read_csv(csv) if csv.is_file() else pd.DataFrame(columns=["seed", "lever"])
    done = set(zip(old.seed, old.lever))
    levers = args.only or list(LEVERS)
    for seed in args.seeds:
        for row in one_seed(args.data, seed, levers, done):
            old = pd.concat([old, pd.DataFrame([row])], ignore_index=True)
            old.to_csv(csv, index=False)
    (out / "levers.md").write_text(summary(old, args.data))
    print((out / "levers.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
