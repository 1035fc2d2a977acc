"""A sweep's student against the peer benchmark's models, paired by seed on the same test rows.

Usage:
    python scripts/peers_vs_sweep.py --sweep runs/final-faint/results.csv \
        --peers runs/bench/faint/peers_per_seed.csv [--arm student] [--out table.md]

The split is a function of the table and the seed only (`data.table.split`), so the sweep's
seed S and the peer benchmark's seed S score the same test rows; a seed missing on either side
is left out and named. Prints one Markdown table: each model's mean ± std over the seeds and
the arm minus the model (mean, W/T/L, two-sided Wilcoxon p; `sweep.stats.paired`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sdss_distill.sweep.stats import p_text, paired  # noqa: E402


def table(sweep: pd.DataFrame, peers: pd.DataFrame, arm: str) -> str:
    """The Markdown table: one row per peer model, best mean first."""
    ours = sweep[sweep["arm"] == arm].set_index("seed")["accuracy"]
    models = peers.pivot(index="seed", columns="model", values="accuracy")
    seeds = sorted(set(ours.index) & set(models.index))
    lost = sorted(set(ours.index) ^ set(models.index))
    if lost:
        print(f"seeds on one side only, left out: {lost}", file=sys.stderr)
    lines = [f"| model | accuracy, seeds {seeds[0]}-{seeds[-1]} | {arm} minus model | W/T/L | p |",
             "|---|---:|---:|---|---:|",
             f"| **{arm}** (sweep) | **{ours[seeds].mean():.2%} ± {ours[seeds].std():.2%}** | | | |"]
    order = models.loc[seeds].mean().sort_values(ascending=False).index
    for name in order:
        theirs = models.loc[seeds, name]
        d = paired(ours[seeds].to_numpy(), theirs.to_numpy())
        lines.append(f"| {name} | {theirs.mean():.2%} ± {theirs.std():.2%} | "
                     f"{100 * d['mean_diff']:+.2f} pt | {d['wins']}/{d['ties']}/{d['losses']} | "
                     f"{p_text(d['wilcoxon_p'], d['n'])} |")
    return "\n".join(lines).replace("%", " %") + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--sweep", required=True, help="a sweep's results.csv (experiment --out DIR)")
    p.add_argument("--peers", required=True, help="the peer benchmark's peers_per_seed.csv")
    p.add_argument("--arm", default="student", help="the sweep arm to compare (default: student)")
    p.add_argument("--out", help="also write the table to this file (default: print only)")
    args = p.parse_args(argv)
    text = table(pd.read_csv(args.sweep), pd.read_csv(args.peers), args.arm)
    print(text, end="")
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
