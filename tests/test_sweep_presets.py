"""The transfer and learning presets: their grids, and their tables and figures built from fake
cell results (the end-to-end sweeps are marked slow)."""

import json

import numpy as np
import pandas as pd
import pytest

from sdss_distill.core.errors import InputError
from sdss_distill.runs.config import make_config
from sdss_distill.sweep import cli, extras, learning, transfer
from sdss_distill.sweep.grid import Cell, grid

SAMPLES = {"all": 400, "bright": 100, "faint": 300}


def transfer_cell(seed, train_on, acc):
    """A fake cell document: accuracy `acc[model]` on every test part, + 0.01 per seed."""
    return {"seed": seed, "cell": {"method": "crossfit", "train_sample": train_on},
            "by_sample": {part: {m: {"rows": n, "test_accuracy": a + 0.01 * seed}
                                 for m, a in acc.items()} for part, n in SAMPLES.items()}}


def test_transfer_table_markdown_and_figure(tmp_path):
    acc = {"student": 0.95, "baseline": 0.94, "teacher": 0.99, "hgb": 0.96, "member_x": 0.5}
    cells = [transfer_cell(seed, on, acc) for seed in (0, 1) for on in ("faint", None, "bright")]
    df = transfer.table(cells)
    assert list(df.train_on.unique()) == ["bright", "faint", "sdss"]  # None = both samples
    assert list(df.test_on.unique()) == ["bright", "faint", "all"]
    assert set(df.model) == {"student", "baseline", "teacher", "hgb"}  # only the compared ones
    r = df[(df.train_on == "bright") & (df.test_on == "faint") & (df.model == "hgb")].iloc[0]
    assert r.accuracy_pct_mean == pytest.approx(96.5) and r.seeds == 2 and r.test_rows == 300
    assert r.accuracy_pct_ci95 == pytest.approx(12.706 * np.std([96, 97], ddof=1) / np.sqrt(2),
                                                rel=1e-3)
    md = transfer.markdown(df, "cmd")
    assert "## crossfit: HistGradientBoosting" in md and "test: faint (300 rows)" in md
    assert "| bright | 95.50 ± 6.35 |" in md and "same objects" in md
    paths = transfer.write(tmp_path, cells, "cmd")
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    assert len(pd.read_csv(tmp_path / "transfer.csv")) == 3 * 3 * 4
    with pytest.raises(ValueError, match="no cell has per-sample results"):
        transfer.table([{"seed": 0, "cell": {"method": "x"}}])


def test_transfer_figure_draws_dots_not_bars_on_its_truncated_axis():
    from matplotlib.patches import Rectangle
    acc = {"student": 0.95, "baseline": 0.94, "teacher": 0.99, "hgb": 0.96}
    cells = [transfer_cell(seed, on, acc) for seed in (0, 1) for on in ("faint", None, "bright")]
    fig = transfer.figure(transfer.table(cells))
    for ax in fig.axes:
        assert ax.get_ylim()[0] > 0  # the axis does not start at 0 ...
        assert not [p for p in ax.patches if isinstance(p, Rectangle)]  # ... so no bars
        assert len(ax.lines) >= 4  # a dot per model


def learning_cell(seed, method, n, student, baseline):
    return {"seed": seed, "cell": {"method": method, "n_rows": n},
            "train_rows": n or 8000,
            "arms": {"student": {"test_accuracy": student, "rows": "student_train"},
                     "baseline": {"test_accuracy": baseline, "rows": "student_train"},
                     "teacher": {"test_accuracy": 0.99, "rows": "teacher_train"}}}


def test_learning_table_pairs_seeds(tmp_path):
    cells = [learning_cell(s, m, n, 0.90 + 0.01 * s + gain, 0.90 + 0.01 * s)
             for s in range(3) for m, gain in (("offline", 0.02), ("crossfit", 0.0))
             for n in (None, 500, 2000)]
    cells[0]["arms"]["student"]["test_accuracy"] -= 0.03  # seed 0, offline, all: a loss
    df = learning.table(cells)
    assert list(df[df.method == "offline"].rows) == ["500", "2000", "all"]  # by training rows
    off = df[(df.method == "offline") & (df.rows == "500")].iloc[0]
    assert off.gain_pt == pytest.approx(2.0) and off.gain_ci95 == pytest.approx(0, abs=1e-9)
    assert (off.wins, off.ties, off.losses, off.seeds) == (3, 0, 0, 3)
    assert off.student_pct == pytest.approx(93.0)
    worst = df[(df.method == "offline") & (df.rows == "all")].iloc[0]
    assert (worst.wins, worst.losses) == (2, 1) and worst.gain_pt == pytest.approx(1.0)
    assert (df[df.method == "crossfit"].gain_pt.abs() < 1e-9).all()
    md = learning.markdown(df)
    assert "| offline | 500 | 500 | student_train | 3 |" in md and "+2.00 ± 0.00" in md
    assert "| 3/0/0 | too few seeds for a test (n=3) |" in md  # 3 seeds: p >= 0.25
    paths = learning.write(tmp_path, cells)
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)


def test_cells_carry_rows_and_train_sample():
    cells = grid(["offline", "crossfit"], [1.0], [0.9], ["kl"], rows=[500, None],
                 train_samples=[None])
    assert [c.id for c in cells] == ["offline_T1_a0.9_kl_n500", "crossfit_T1_a0.9_kl_n500",
                                     "offline_T1_a0.9_kl", "crossfit_T1_a0.9_kl"]
    base = make_config(rows=3000)
    assert cells[0].config(base, 2).rows == 500 and cells[2].config(base, 2).rows == 3000
    assert len({c.rows_key() for c in cells}) == 2  # two workspaces per seed
    on = Cell("crossfit", 1.0, 0.9, "kl", train_sample="faint")
    assert on.id.endswith("_onfaint") and on.config(base, 0).train_sample == "faint"


def test_presets_plan_their_grids():
    base, cells, seeds = cli.plan(cli.parse_args(["--preset", "transfer", "--seeds", "0"]))
    assert base.data == "sdss" and [c.train_sample for c in cells] == ["bright", "faint", None]
    _, cells, _ = cli.plan(cli.parse_args(["--preset", "learning", "--data", "faint"]))
    assert sorted({str(c.n_rows) for c in cells}) == ["1000", "2000", "4000", "500", "None"]
    assert len(cells) == 10
    with pytest.raises(InputError, match="--rows: the learning preset sets the rows"):
        cli.plan(cli.parse_args(["--preset", "learning", "--rows", "100"]))
    with pytest.raises(InputError, match="--data faint: the transfer preset needs --data sdss"):
        cli.plan(cli.parse_args(["--preset", "transfer", "--data", "faint"]))
    base, _, _ = cli.plan(cli.parse_args(["--rows", "700", "--seeds", "0"]))
    assert base.rows == 700


def test_reference_features_and_test_parts():
    df = pd.DataFrame({"u": [20.0, 19.0], "g": [19.0, 18.5], "r": [18.0, 18.0], "i": [17.5, 17.9],
                       "z": [17.0, 17.8], "sample": ["bright", "faint"]})
    x = extras.photometric_features(df)
    assert x.shape == (2, 9) and x[0, 5:].tolist() == [1.0, 1.0, 0.5, 0.5]
    assert list(extras.test_parts(df)) == ["all", "bright", "faint"]
    assert list(extras.test_parts(df.drop(columns="sample"))) == ["all"]
    with pytest.raises(ValueError, match="unknown sweep option"):
        extras.extra_results({"bogus": True}, None, [], None)
    assert json.dumps(cli.PRESETS["transfer"]["options"])


@pytest.mark.slow
def test_learning_preset_runs_end_to_end(tmp_path):
    """Two N of the learning preset, one seed, tiny networks: the tables and figure appear."""
    config = tmp_path / "small.toml"
    config.write_text("teacher_hidden = [16, 8]\nstudent_hidden = [6, 6]\n")
    preset = dict(cli.PRESETS["learning"], rows=[500, None])
    cli.PRESETS["small-learning"] = preset
    try:
        assert cli.main(["--preset", "small-learning", "--data", "bright", "--seeds", "0",
                         "--epochs", "2", "--config", str(config), "--methods", "offline",
                         "--workers", "1", "--out", str(tmp_path / "out"), "--quiet",
                         "--no-plots"]) == 0
    finally:
        del cli.PRESETS["small-learning"]
    df = pd.read_csv(tmp_path / "out" / "learning.csv")
    assert list(df.rows.astype(str)) == ["500", "all"] and (tmp_path / "out" / "learning.png").is_file()


@pytest.mark.slow
def test_transfer_preset_runs_end_to_end(tmp_path):
    """The transfer preset with tiny offline networks, one seed: every training set is scored
    on the same test rows of each sample, the reference included."""
    config = tmp_path / "small.toml"
    config.write_text("teacher_hidden = [16, 8]\nstudent_hidden = [6, 6]\n")
    out = tmp_path / "out"
    assert cli.main(["--preset", "transfer", "--seeds", "0", "--epochs", "1", "--config",
                     str(config), "--methods", "offline", "--workers", "1", "--out", str(out),
                     "--quiet", "--no-plots"]) == 0
    df = pd.read_csv(out / "transfer.csv")
    assert len(df) == 3 * 3 * 4 and (out / "transfer.png").is_file()
    rows = df.groupby("test_on").test_rows.nunique()
    assert (rows == 1).all()  # each test sample: the same objects for every training set
    assert 50 < df[df.model == "hgb"].accuracy_pct_mean.min() <= 100


def test_fingerprint_of_an_older_sweep_is_unchanged():
    """Unset rows / train_sample leave the fingerprint as before they existed (resume works)."""
    import hashlib

    from sdss_distill.sweep.grid import fingerprint
    base = make_config()
    skip = {"out", "seed", "method", "temperature", "alpha", "soft_loss", "quiet", "rows",
            "train_sample"}
    doc = {k: v for k, v in base.to_dict().items() if k not in skip}
    old = hashlib.sha256(json.dumps({**doc, "dev": False}, sort_keys=True, default=str)
                         .encode()).hexdigest()[:16]
    assert fingerprint(base, False) == old
    assert fingerprint(make_config(rows=500), False) != old
    assert fingerprint(base, False, {"by_sample": True}) != old
