"""Choose defaults without ever touching test rows: tune on a dev table of non-test rows.

For each seed, the default split's test rows are removed; the remaining rows are written to
a temporary "dev" table and the real pipeline (`sdss_distill.train.run`) is run on it, so its
"test" subset is dev-validation data carved from training rows only. Any config key can be
varied; the table reports dev accuracy mean ± std over seeds per setting.

    python scripts/tune_dev.py --data ../shared/data/sdss_dr14_skyserver_10k.csv \
        --seeds 0 1 2 3 4 --grid '{"alpha": [0.5, 0.7], "temperature": [2, 4]}'
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from sdss_distill.config import make_config
from sdss_distill.data import clean, load_table, split
from sdss_distill.runtime import quiet_import
from sdss_distill.schema import get_view
from sdss_distill.train import run


def dev_table(data: str, seed: int, folder: Path) -> Path:
    df, _ = clean(load_table(data), get_view("physical"))
    outer = split(df, seed=seed)
    path = folder / f"dev_seed{seed}.csv"
    raw = pd.read_csv(data, dtype=str)  # untouched text of the non-test rows
    raw.iloc[np.sort(np.concatenate([outer.teacher_train, outer.student_train]))].to_csv(path, index=False)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--grid", default="{}", help="JSON {config key: [values]}")
    args = p.parse_args()
    grid = json.loads(args.grid)
    settings = [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())] or [{}]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tables = {s: dev_table(args.data, s, Path(tmp)) for s in args.seeds}
        for setting in settings:
            accs = {"teacher": [], "student": [], "baseline": []}
            for seed in args.seeds:
                quiet_import("keras").backend.clear_session()
                report = run(make_config(data=str(tables[seed]), seed=seed, quiet=True,
                                         out=str(Path(tmp) / "run"), **setting))
                for m in accs:
                    accs[m].append(report["models"][m]["test_accuracy"])
            wins = sum(s > b for s, b in zip(accs["student"], accs["baseline"]))
            row = {"setting": setting, "student_wins": f"{wins}/{len(args.seeds)}",
                   **{m: f"{np.mean(v):.4f} ± {np.std(v, ddof=1):.4f}" for m, v in accs.items()}}
            print(json.dumps(row), flush=True)
            rows.append(row)


if __name__ == "__main__":
    main()
