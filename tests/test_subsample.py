"""`--rows N` and `train_sample`: fewer training rows, stratified and seeded; test rows never move."""

import dataclasses

import numpy as np
import pytest

from sdss_distill.core.errors import InputError
from sdss_distill.data import subsample
from sdss_distill.data.table import strata
from sdss_distill.runs import pipeline
from sdss_distill.runs.config import make_config
from sdss_distill.train import config_from_args, parse_args


@pytest.fixture(scope="module")
def full():
    """The combined dataset (class x sample strata), prepared as train would, without --rows."""
    return pipeline.prepare(make_config(data="sdss", seed=3))


def shares(df, rows):
    key = strata(df.loc[rows])
    return np.bincount(key, minlength=6) / len(key)


@pytest.mark.slow
@pytest.mark.parametrize("n", [500, 2000])
def test_rows_keeps_test_rows_and_strata(full, n):
    cfg = make_config(data="sdss", seed=3, rows=n)
    small = pipeline.prepare(cfg)
    np.testing.assert_array_equal(small.split.test, full.split.test)  # the same objects
    t, s = small.split.teacher_train, small.split.student_train
    assert len(t) + len(s) == n and len(t) == round(n / 2)  # 40 / 40: halves
    assert set(t) <= set(full.split.teacher_train) and set(s) <= set(full.split.student_train)
    for mine, theirs in ((t, full.split.teacher_train), (s, full.split.student_train)):
        np.testing.assert_allclose(shares(full.df, mine), shares(full.df, theirs), atol=0.01)
    again = pipeline.prepare(cfg)  # seeded
    np.testing.assert_array_equal(again.split.teacher_train, t)


def test_rows_are_nested_and_depend_on_the_seed(full):
    df, parts = full.df, full.split
    small, large = (subsample.subsample(df, parts, n, 3) for n in (1000, 4000))
    kept = set(small.teacher_train) - set(large.teacher_train)
    assert len(kept) <= 6  # nested up to rounding within each stratum
    other = subsample.subsample(df, parts, 1000, 4)
    assert set(other.teacher_train) != set(small.teacher_train)


def test_rows_errors_name_the_limit(full):
    total = len(full.split.teacher_train) + len(full.split.student_train)
    with pytest.raises(InputError, match=rf"--rows {total + 1}: only {total} non-test rows"):
        subsample.subsample(full.df, full.split, total + 1, 0)
    with pytest.raises(InputError, match="--rows 6 is too small: .* 3 rows cannot hold 6 class x sample"):
        subsample.subsample(full.df, full.split, 6, 0)
    with pytest.raises(InputError, match=r"rows must be >= 1 \(or unset: every row\), got 0"):
        make_config(rows=0)
    assert subsample.subsample(full.df, full.split, total, 0) is not None


def test_train_sample_keeps_test_rows_of_every_sample(full):
    bright = subsample.only_sample(full.df, full.split, "bright")
    np.testing.assert_array_equal(bright.test, full.split.test)
    assert set(full.df.loc[bright.teacher_train, "sample"]) == {"bright"}
    assert set(full.df.loc[bright.test, "sample"]) == {"bright", "faint"}
    with pytest.raises(InputError, match="train_sample must be one of bright, faint"):
        make_config(train_sample="dim")
    single = dataclasses.replace(full, df=full.df.drop(columns="sample"))
    with pytest.raises(InputError, match="needs the combined dataset"):
        subsample.only_sample(single.df, full.split, "faint")


def test_rows_flag_reaches_the_config():
    cfg = config_from_args(parse_args(["--rows", "800", "--data", "faint"]))
    assert cfg.rows == 800 and cfg.to_dict()["rows"] == 800  # recorded with the run
