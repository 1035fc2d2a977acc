"""The teacher mix (distill/methods/mix.py): its targets and settings."""

import numpy as np
import pytest
from scipy.special import softmax

from sdss_distill.distill.methods.mix import Settings, mixed_logits

RNG = np.random.default_rng(0)
TEACHER, PHOTO = RNG.normal(size=(50, 3)) * 3, RNG.normal(size=(50, 3))


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_mix_is_the_weighted_mean_probability(temperature):
    for w in (0.0, 0.3, 1.0):
        p = softmax(mixed_logits(TEACHER, PHOTO, w, temperature) / temperature, axis=1)
        want = w * softmax(TEACHER / temperature, axis=1) + (1 - w) * softmax(PHOTO / temperature,
                                                                              axis=1)
        np.testing.assert_allclose(p, want, atol=1e-5)


def test_sharpness_sharpens_and_softens():
    def entropy(logits):
        p = softmax(logits, axis=1)
        return float(-(p * np.log(p)).sum(axis=1).mean())
    plain = entropy(mixed_logits(TEACHER, PHOTO, 0.5, 1.0))
    assert entropy(mixed_logits(TEACHER, PHOTO, 0.5, 1.0, sharpness=2.0)) < plain
    assert entropy(mixed_logits(TEACHER, PHOTO, 0.5, 1.0, sharpness=0.5)) > plain


@pytest.mark.parametrize("kwargs, match", [({"weight": 1.2}, "weight"),
                                           ({"photometric": "knn"}, "photometric"),
                                           ({"hidden": ()}, "hidden"),
                                           ({"sharpness": 0}, "sharpness"),
                                           ({"folds": 1}, "folds")])
def test_settings_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Settings(**kwargs)
