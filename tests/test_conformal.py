"""core.conformal: Mondrian split-conformal thresholds, sets, coverage and card material,
checked on hand-made numbers."""

import numpy as np
import pytest

from sdss_distill.core import conformal as cf

LABELS = ("A", "B", "C")


def _probs(p_true, y, k=3):
    """Rows whose true-class probability is p_true, the rest spread evenly."""
    p = np.tile((1 - np.asarray(p_true))[:, None] / (k - 1), (1, k))
    p[np.arange(len(y)), y] = p_true
    return p


def test_rank_is_the_finite_sample_quantile():
    assert cf.rank(9, 0.9) == 9          # ceil(10 * 0.9)
    assert cf.rank(10, 0.9) == 10        # ceil(9.9)
    assert cf.rank(19, 0.9) == 18        # ceil(18.0), not 19
    assert cf.rank(5, 0.9) == 6          # > n: the class is always in the set


def test_thresholds_pick_the_kth_smallest_nonconformity():
    y = np.array([0] * 9 + [1] * 4)
    p_true = np.r_[np.linspace(0.9, 0.1, 9), [0.8, 0.7, 0.6, 0.5]]
    q = cf.thresholds(_probs(p_true, y), y, 0.8)
    # class 0: s = 0.1 .. 0.9 (9 rows), k = ceil(10 * 0.8) = 8 -> s = 0.8
    assert q[0] == pytest.approx(0.8)
    # class 1: 4 rows, k = ceil(5 * 0.8) = 4 -> the largest, s = 0.5
    assert q[1] == pytest.approx(0.5)
    assert np.isinf(q[2])  # no rows of class 2


def test_sets_coverage_and_names():
    p = np.array([[0.7, 0.2, 0.1], [0.45, 0.45, 0.1], [0.1, 0.1, 0.8], [np.nan] * 3])
    members = cf.sets(p, np.array([0.6, 0.6, 0.25]))
    assert members.tolist() == [[True, False, False], [True, True, False],
                                [False, False, True], [False, False, False]]
    assert cf.names(members, LABELS).tolist() == ["A", "A+B", "C", ""]
    assert cf.bitmask(members).tolist() == [1, 3, 4, 0]
    cov = cf.coverage(members[:3], np.array([0, 1, 0]), LABELS)
    assert cov["per_class"]["A"] == {"rows": 2, "coverage": 0.5}
    assert cov["per_class"]["B"]["coverage"] == 1.0
    assert cov["per_class"]["C"]["coverage"] is None
    assert cov["mean_set_size"] == pytest.approx(4 / 3)


def test_coverage_holds_on_exchangeable_rows():
    rng = np.random.default_rng(0)
    n = 4000
    y = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3)) + 1.5 * np.eye(3)[y]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    q = cf.thresholds(p[:2000], y[:2000], 0.9)
    cov = cf.coverage(cf.sets(p[2000:], q), y[2000:], LABELS)
    for c in LABELS:
        assert 0.87 <= cov["per_class"][c]["coverage"] <= 0.93


def test_material_reproduces_the_thresholds_exactly_when_dense():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 600)
    p = rng.dirichlet(np.ones(3), 600)
    doc = cf.material(p, y, LABELS)
    for level in (0.5, 0.8, 0.9, 0.95, 0.99):
        assert np.array_equal(cf.thresholds_from(doc, level, LABELS), cf.thresholds(p, y, level))
    with pytest.raises(ValueError, match="0.5-0.99"):
        cf.thresholds_from(doc, 0.3, LABELS)


def test_thinned_material_is_conservative():
    rng = np.random.default_rng(2)
    y = np.zeros(5000, int)
    p = rng.dirichlet(np.ones(3), 5000)
    doc = cf.material(p, y, LABELS, max_points=50)
    assert len(doc["classes"]["A"]["ranks"]) <= 50
    for level in (0.61, 0.9, 0.937):
        exact = cf.thresholds(p, y, level)[0]
        stored = cf.thresholds_from(doc, level, LABELS)[0]
        assert stored >= exact
        assert stored - exact < 0.05


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, "x", float("nan")])
def test_check_level_names_the_rule(bad):
    with pytest.raises(ValueError, match=r"--sets: the level must"):
        cf.check_level(bad)
