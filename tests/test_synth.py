"""The simulated catalogue: deterministic, streamed in row groups, labelled simulated, realistic."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from sdss_distill.core.io import sha256_file
from sdss_distill.core.quality import check_values
from sdss_distill.core.schema import BANDS, LABELS, get_view
from sdss_distill.data.cli import main
from sdss_distill.data.synth import (
    BAD_KINDS,
    BLOCK,
    SIMULATED_KEY,
    provenance_path,
    write_catalogue,
)
from sdss_distill.data.table import clean, load_table

VALUE_COLUMNS = [*BANDS, "redshift"]
COLOUR_TOLERANCE = 0.05  # mag; the fitted mixtures reproduce each class's median colours within it
SHARE_TOLERANCE = 0.02


def test_same_seed_same_bytes_other_seed_other_rows(tmp_path):
    a = write_catalogue(tmp_path / "a.parquet", 3000, seed=7, bad_fraction=0.05)
    b = write_catalogue(tmp_path / "b.parquet", 3000, seed=7, bad_fraction=0.05)
    c = write_catalogue(tmp_path / "c.parquet", 3000, seed=8, bad_fraction=0.05)
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    assert a["sha256"] == b["sha256"] != c["sha256"]
    assert not np.allclose(pd.read_parquet(tmp_path / "a.parquet")["r"],
                           pd.read_parquet(tmp_path / "c.parquet")["r"])


def test_row_groups_stream_the_same_rows(tmp_path):
    rows = BLOCK + 1500  # spans two seeded blocks
    write_catalogue(tmp_path / "one.parquet", rows, seed=1, row_group=rows)
    prov = write_catalogue(tmp_path / "many.parquet", rows, seed=1, row_group=4000)
    meta = pq.ParquetFile(tmp_path / "many.parquet").metadata
    assert meta.num_row_groups == prov["row_groups"] == -(-rows // 4000)
    assert max(meta.row_group(k).num_rows for k in range(meta.num_row_groups)) == 4000
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "one.parquet"),
                                  pd.read_parquet(tmp_path / "many.parquet"))
    small = pd.read_parquet(write_catalogue(tmp_path / "s.parquet", 100, seed=1)["path"])
    pd.testing.assert_frame_equal(small, pd.read_parquet(tmp_path / "one.parquet").head(100))


def test_bad_rows_are_injected_and_counted(tmp_path):
    out = tmp_path / "bad.parquet"
    prov = write_catalogue(out, 20_000, seed=3, bad_fraction=0.1, row_group=6000)
    df = pd.read_parquet(out)
    counts = check_values(df[VALUE_COLUMNS].to_numpy(), VALUE_COLUMNS).counts()
    assert {k: counts[k] for k in BAD_KINDS} == prov["bad_rows"]
    assert counts["non_finite"] == 0
    assert all(n > 300 for n in prov["bad_rows"].values())  # each kind ~500 expected
    assert abs(prov["bad_rows_total"] - 2000) < 5 * np.sqrt(20_000 * 0.1 * 0.9)
    assert (df[VALUE_COLUMNS] == -9999).to_numpy().any() and (df[VALUE_COLUMNS] == 1e39).to_numpy().any()
    footer = pq.ParquetFile(out).metadata.metadata
    assert json.loads(footer[b"sdss_distill.bad_rows"]) == prov["bad_rows"]


def test_clean_catalogue_passes_every_check_and_ids_are_unique(tmp_path):
    df = pd.read_parquet(write_catalogue(tmp_path / "ok.parquet", 5000, seed=0)["path"])
    assert check_values(df[VALUE_COLUMNS].to_numpy(), VALUE_COLUMNS).ok.all()
    assert df["objid"].dtype == np.uint64 and df["specobjid"].dtype == np.uint64
    assert df["objid"].is_unique and df["specobjid"].is_unique
    assert set(df["class"]) == set(LABELS)


def test_every_file_says_simulated(tmp_path):
    out = tmp_path / "sim.parquet"
    prov = write_catalogue(out, 500, seed=0)
    assert pq.read_schema(out).metadata[SIMULATED_KEY.encode()] == b"true"
    saved = json.loads(provenance_path(out).read_text())
    assert saved["simulated"] is True and saved == prov
    assert saved["sha256"] == sha256_file(out)


def test_colours_match_the_real_table(real_table, tmp_path):
    real, _ = clean(load_table(real_table), get_view("physical"))
    sim = pd.read_parquet(write_catalogue(tmp_path / "m.parquet", 30_000, seed=0)["path"])

    def colours(df):
        c = pd.DataFrame({f"{a}-{b}": df[a] - df[b] for a, b in zip(BANDS, BANDS[1:])})
        return c.groupby(df["class"].to_numpy()).median()

    diff = (colours(sim) - colours(real)).abs()
    assert (diff.to_numpy() < COLOUR_TOLERANCE).all(), diff
    shares = sim["class"].value_counts(normalize=True) - real["class"].value_counts(normalize=True)
    assert (shares.abs() < SHARE_TOLERANCE).all(), shares


@pytest.mark.parametrize("args, message", [
    (["--rows", "0"], "--rows must be a whole number >= 1, got 0"),
    (["--rows", "10", "--bad-fraction", "1.5"], "--bad-fraction must be between 0 and 1, got 1.5"),
    (["--rows", "10", "--bad-fraction", "nan"], "--bad-fraction must be between 0 and 1, got nan"),
    (["--rows", "10", "--row-group", "0"], "--row-group must be a whole number >= 1, got 0"),
    (["--rows", "10", "--seed", "-1"], "--seed must be a whole number >= 0, got -1"),
])
def test_bad_options_one_line_exit_2_nothing_written(tmp_path, capsys, args, message):
    out = tmp_path / "x.parquet"
    assert main(["synth", "--out", str(out), "--quiet", *args]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"python -m sdss_distill.data synth: error: {message}"]
    assert list(tmp_path.iterdir()) == []


def test_cli_writes_a_labelled_file(tmp_path, capsys):
    out = tmp_path / "cli.parquet"
    assert main(["synth", "--rows", "1000", "--out", str(out), "--seed", "2", "--quiet"]) == 0
    assert "1,000 SIMULATED rows" in capsys.readouterr().out
    assert pq.ParquetFile(out).metadata.num_rows == 1000 and provenance_path(out).is_file()
