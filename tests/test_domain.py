"""The training-domain test (core.domain) and the edge classifier's cheap checks built on it
and on quality.value_bounds: each fast form agrees with the plain one, boundaries included."""

import numpy as np
import pytest

from sdss_distill.core.domain import Domain, domain, in_domain
from sdss_distill.core.prob import softmax, softmax_row
from sdss_distill.core.quality import REASONS, check_values
from sdss_distill.core.schema import SENTINEL
from sdss_distill.edge.classifier import EdgeClassifier

COLUMNS = ("u", "g", "r", "i", "z")


def reference(x, columns, dom):
    """The plain per-column, per-colour formula the domain test is defined by."""
    ok = np.ones(len(x), bool)
    for k, c in enumerate(columns):
        lo, hi = dom.get("columns", {}).get(c, (-np.inf, np.inf))
        ok &= (x[:, k] >= lo) & (x[:, k] <= hi)
    pos = {c: k for k, c in enumerate(columns)}
    for name, (lo, hi) in dom.get("colours", {}).items():
        a, b = name.split("-")
        ok &= (x[:, pos[a]] - x[:, pos[b]] >= lo) & (x[:, pos[a]] - x[:, pos[b]] <= hi)
    return ok


@pytest.fixture(scope="module")
def rows_and_domain():
    """Float32 rows whose domain is taken from half of them, plus rows on and one float32
    step either side of every column and colour bound."""
    rng = np.random.default_rng(0)
    x = (rng.normal([20, 18.5, 17.5, 17, 16.8], [1.2, 1.0, 1.0, 1.0, 1.0], (4000, 5))
         .astype(np.float32))
    dom = domain(x[:100], COLUMNS)
    edges = []
    for k, c in enumerate(COLUMNS):
        for bound in dom["columns"][c]:
            for step in (-np.inf, 0, np.inf):
                row = x[0].copy()
                row[k] = np.nextafter(np.float32(bound), np.float32(step))
                edges.append(row)
    for j, name in enumerate(dom["colours"]):
        for bound in dom["colours"][name]:
            row = x[1].copy()  # colour a-b on its bound: b = a - bound, then nudged
            row[j + 1] = np.float32(row[j] - np.float32(bound))
            for step in (-np.inf, 0, np.inf):
                nudged = row.copy()
                nudged[j + 1] = np.nextafter(row[j + 1], np.float32(step))
                edges.append(nudged)
    return np.concatenate([x, np.array(edges, np.float32)]), dom


def test_domain_rows_equals_the_plain_formula_in_float32_and_float64(rows_and_domain):
    x, dom = rows_and_domain
    for xx in (x, x.astype(np.float64)):
        expected = reference(xx, COLUMNS, dom)
        assert 0.2 < expected.mean() < 0.9  # both verdicts are exercised
        assert (Domain(COLUMNS, dom).rows(xx) == expected).all()
        assert (in_domain(xx, COLUMNS, dom) == expected).all()


def test_domain_row_equals_rows_on_every_row_and_bound(rows_and_domain):
    x, dom = rows_and_domain
    d = Domain(COLUMNS, dom)
    assert [d.row(r) for r in x.tolist()] == d.rows(x).tolist()


def test_a_partial_domain_checks_only_what_it_names(rows_and_domain):
    x, dom = rows_and_domain
    part = {"columns": {"r": dom["columns"]["r"]}, "colours": {"u-g": dom["colours"]["u-g"]}}
    d = Domain(COLUMNS, part)
    assert (d.rows(x) == reference(x, COLUMNS, part)).all()
    assert [d.row(r) for r in x.tolist()] == reference(x, COLUMNS, part).tolist()


def checks_only(columns=COLUMNS, dom=None) -> EdgeClassifier:
    """An EdgeClassifier's per-call checks without a model file."""
    clf = object.__new__(EdgeClassifier)
    clf.setup(columns, ("GALAXY", "QSO", "STAR"), dom or {})
    return clf


@pytest.mark.parametrize("columns", [COLUMNS, ("u", "g", "r", "i", "redshift"), ("a", "b")])
def test_good_rows_agrees_with_check_values_on_every_reason(columns):
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 41, (3000, len(columns)))
    hostile = [np.nan, np.inf, -np.inf, SENTINEL, 1e39, -1e39, 0.0, 40.0, -0.05, 8.0, 45.0,
               np.nextafter(40.0, 41.0), np.nextafter(0.0, -1.0), 3.4028234663852886e38]
    x[rng.integers(0, len(x), 1500), rng.integers(0, len(columns), 1500)] = rng.choice(
        hostile, 1500)
    checked = check_values(x, columns)
    assert set(checked.reason) >= set(REASONS) - ({"out_of_range"} if columns == ("a", "b")
                                                  else set())
    assert (checks_only(columns).good_rows(x) == checked.ok).all()


def test_a_batch_inside_the_domain_skips_no_bad_row(rows_and_domain):
    """A batch's rows whose columns lie in the domain are not value-checked (inside implies
    good): the flags still equal check_values', on hostile float64 values and on values a
    float64 step outside a bound (float32 rounds them onto it), and in_domain equals
    Domain.rows of the float32 rows for the good ones."""
    x32, dom = rows_and_domain
    clf = checks_only(dom=dom)
    assert clf._inside_is_good
    clf.logits = lambda x: np.tile(np.float32([0.5, -1.0, 2.0]), (len(x), 1))  # no model
    x = x32.astype(np.float64)
    rng = np.random.default_rng(4)
    hostile = [np.nan, np.inf, SENTINEL, 1e39, 41.0, np.nextafter(40.0, 41.0), -0.5]
    picks = rng.integers(10, len(x), 300)
    x[picks, rng.integers(0, 5, 300)] = rng.choice(hostile, 300)
    for k, c in enumerate(COLUMNS):
        lo, hi = dom["columns"][c]
        x[k, k], x[k + 5, k] = np.nextafter(lo, -1.0), np.nextafter(hi, 99.0)
    result = clf.predict(x)
    checked = check_values(x, COLUMNS)
    assert 0.8 < checked.ok.mean() < 1 and (result.ok == checked.ok).all()
    with np.errstate(over="ignore"):
        inside = Domain(COLUMNS, dom).rows(x.astype(np.float32))
    assert (result.in_domain == (inside & checked.ok)).all() and inside.mean() > 0.2
    assert result.ok[:10].all()  # a float64 step outside the domain: good, and checked
    assert set(result.classes[checked.ok]) == {"STAR"} and set(result.classes[~checked.ok]) == {""}
    assert np.isnan(result.probabilities[~checked.ok]).all()


def test_one_bad_row_is_flagged_on_its_own_without_a_model():
    """A single bad row never takes the one-row model path: it is flagged, not classified."""
    clf = checks_only()
    for bad in (np.nan, SENTINEL, 41.0, np.inf, -np.inf, 1e39):
        row = np.array([[19.0, 18.0, 17.0, 16.5, bad]])
        result = clf.predict(row)
        assert not result.ok[0] and "column 'z'" in result.quality[0]
        assert result.classes[0] == "" and np.isnan(result.probabilities[0]).all()


def test_softmax_row_equals_softmax():
    rng = np.random.default_rng(2)
    for z in rng.normal(0, 8, (500, 3)):
        assert np.allclose(softmax_row(z.tolist()), softmax(z[None], axis=1)[0], rtol=1e-14,
                           atol=0)
    assert softmax_row([1000.0, 0.0, -1000.0])[0] == 1.0  # shifted: no overflow


def test_domain_row_rounds_a_colour_to_float32_as_numpy_does():
    """A colour of a bright and a faint value is not exact in float32: on a bound that is the
    rounded difference, the verdict depends on doing numpy's float32 arithmetic."""
    rng = np.random.default_rng(3)
    x = np.stack([rng.uniform(20, 30, 2000), rng.uniform(0.01, 0.5, 2000),
                  *rng.uniform(15, 20, (3, 2000))], axis=1).astype(np.float32)
    rounded = x[:, 0] - x[:, 1]  # float32
    exact = x[:, 0].astype(np.float64) - x[:, 1]
    assert (rounded != exact).mean() > 0.3  # the rounding is exercised
    for k in range(0, 2000, 50):
        dom = {"colours": {"u-g": [float(rounded[k]), float(rounded[k]) + 1]}}
        d = Domain(COLUMNS, dom)
        assert [d.row(r) for r in x.tolist()] == d.rows(x).tolist()
