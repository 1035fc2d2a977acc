"""The numpy core of --priors: EM (Saerens et al. 2002) on synthetic calibrated posteriors,
re-weighting, and priors files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sdss_distill.core.errors import InputError
from sdss_distill.score import priors

LABELS = ("GALAXY", "QSO", "STAR")
MEANS = np.array([0.0, 1.5, 3.0])  # 1-D unit-variance Gaussians: overlapping classes


def posteriors(x: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """Exact Bayes posteriors p(k|x) for class priors pi."""
    lik = np.exp(-0.5 * (x[:, None] - MEANS) ** 2)
    q = lik * pi
    return q / q.sum(axis=1, keepdims=True)


def sample(pi: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.choice(len(pi), size=n, p=pi)
    return MEANS[y] + rng.standard_normal(n), y


TRAINING = np.array([0.5, 0.1, 0.4])
SHIFTED = np.array([0.15, 0.05, 0.8])


def test_em_recovers_shifted_priors_of_calibrated_posteriors():
    x, y = sample(SHIFTED, 200_000, seed=1)
    p = posteriors(x, TRAINING)  # what a model calibrated on the training mix outputs
    result = priors.estimate(p, TRAINING)
    assert result.converged and result.rows == len(x)
    truth = np.bincount(y, minlength=3) / len(y)
    np.testing.assert_allclose(result.priors, truth, atol=0.005)
    assert abs(result.priors.sum() - 1) < 1e-12
    # and re-weighting by the estimate gives (nearly) the Bayes posteriors of the new mix
    adapted = priors.reweight(p, priors.weights(result.priors, TRAINING))
    np.testing.assert_allclose(adapted, posteriors(x, SHIFTED), atol=0.01)
    assert (adapted.argmax(1) == y).mean() > (p.argmax(1) == y).mean() + 0.02


def test_em_on_training_mix_stays_put():
    x, _ = sample(TRAINING, 100_000, seed=2)
    result = priors.estimate(posteriors(x, TRAINING), TRAINING)
    np.testing.assert_allclose(result.priors, TRAINING, atol=0.01)


def test_e_step_is_additive_so_a_map_reduce_gives_the_same_estimate():
    x, _ = sample(SHIFTED, 30_000, seed=3)
    p = posteriors(x, TRAINING)
    chunks = np.array_split(p, 7)
    w = np.array([0.4, 0.7, 2.0])
    np.testing.assert_allclose(sum(priors.e_step(c, w) for c in chunks), priors.e_step(p, w),
                               rtol=1e-12)

    def sums(w):
        return np.sum([priors.e_step(c, w) for c in chunks], axis=0), len(p)

    split = priors.em(sums, TRAINING)
    whole = priors.estimate(p, TRAINING)
    np.testing.assert_allclose(split.priors, whole.priors, atol=1e-12)
    assert split.iterations == whole.iterations


def test_em_reports_non_convergence_and_empty_input():
    x, _ = sample(SHIFTED, 5_000, seed=4)
    result = priors.estimate(posteriors(x, TRAINING), TRAINING, max_iter=2)
    assert not result.converged and result.iterations == 2
    with pytest.raises(ValueError, match="no rows"):
        priors.estimate(np.empty((0, 3)), TRAINING)


def test_reweight_columns_matches_reweight_and_argmax():
    x, _ = sample(SHIFTED, 1_000, seed=5)
    p = posteriors(x, TRAINING).astype(np.float32)
    w = priors.weights(SHIFTED, TRAINING)
    cols, idx = priors.reweight_columns([p[:, k] for k in range(3)], w)
    expected = priors.reweight(p, w)
    np.testing.assert_allclose(np.column_stack(cols), expected, atol=1e-6)
    assert np.array_equal(idx, expected.argmax(1))
    assert cols[0].dtype == np.float32


def test_weights_need_positive_training_priors():
    with pytest.raises(ValueError, match="training priors must be > 0"):
        priors.weights(SHIFTED, np.array([0.5, 0.0, 0.5]))


def test_fractions():
    np.testing.assert_allclose(priors.fractions(np.array([0, 2, 2, 2]), 3), [0.25, 0, 0.75])


@pytest.mark.parametrize("doc, msg", [
    ([0.2, 0.3, 0.5], "must be a JSON object such as"),
    ({"GALAXY": 0.5, "STAR": 0.5}, "missing QSO"),
    ({"GALAXY": 0.5, "QSO": 0.1, "STAR": 0.3, "STARS": 0.1}, "unexpected STARS"),
    ({"GALAXY": 0.5, "QSO": -0.1, "STAR": 0.6}, r"prior of QSO must be a number > 0, got -0.1"),
    ({"GALAXY": 0.5, "QSO": "0.1", "STAR": 0.4}, r"prior of QSO must be a number > 0, got '0.1'"),
    ({"GALAXY": 0.5, "QSO": float("nan"), "STAR": 0.4}, "prior of QSO must be a number > 0"),
    ({"GALAXY": 0.5, "QSO": 0.2, "STAR": 0.4}, r"must sum to 1 \(within 0.01\), got 1.1"),
])
def test_bad_priors_file_is_one_line_naming_the_file(tmp_path, doc, msg):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=msg) as e:
        priors.read_priors(path, LABELS)
    assert str(e.value).startswith(f"--priors {path}: ") and "\n" not in str(e.value)


def test_priors_file_is_renormalised_and_a_score_record_is_accepted(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"GALAXY": 0.152, "QSO": 0.05, "STAR": 0.8}))
    got = priors.read_priors(path, LABELS)
    assert abs(sum(got.values()) - 1) < 1e-12 and got["STAR"] == pytest.approx(0.8 / 1.002)
    path.write_text(json.dumps({"training": {"GALAXY": 0.5, "QSO": 0.1, "STAR": 0.4},
                                "applied": {"GALAXY": 0.15, "QSO": 0.05, "STAR": 0.8}}))
    assert priors.read_priors(path, LABELS) == pytest.approx({"GALAXY": 0.15, "QSO": 0.05,
                                                              "STAR": 0.8})


def test_missing_or_broken_priors_file(tmp_path):
    with pytest.raises(InputError, match="no such file; give training, em or a JSON file"):
        priors.read_priors(tmp_path / "none.json", LABELS)
    bad = tmp_path / "bad.json"
    bad.write_text("{GALAXY: 1")
    with pytest.raises(InputError, match="--priors .*bad.json: corrupt JSON"):
        priors.read_priors(bad, LABELS)


def test_e_step_on_float32_matches_float64_elementwise_form():
    x, _ = sample(SHIFTED, 100_003, seed=6)
    p = posteriors(x, TRAINING)
    w = np.array([0.4, 0.7, 2.0])
    q = p * w
    expected = (q / q.sum(axis=1, keepdims=True)).sum(axis=0)
    np.testing.assert_allclose(priors.e_step(p, w), expected, rtol=1e-12)
    np.testing.assert_allclose(priors.e_step(p.astype(np.float32), w), expected, rtol=2e-6)
    assert np.array_equal(priors.e_step(np.empty((0, 3), np.float32), w), np.zeros(3))
