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


@pytest.mark.slow
def test_mix_with_hgb_fold_models_trains_on_every_non_test_row(real_table):
    """The HistGradientBoosting source: out-of-fold log-probabilities for exactly the rows the
    student fits and early-stops on; the method returns the usual three arms."""
    import dataclasses

    from scipy.special import logsumexp

    from sdss_distill.data.table import split
    from sdss_distill.distill.methods.mix import hgb_out_of_fold
    from sdss_distill.runs import pipeline
    from sdss_distill.runs.config import make_config
    cfg = make_config(data=str(real_table), epochs=2, patience=2, teacher_hidden=(8,),
                      student_hidden=(6, 6), methods={"mix": {"photometric": "hgb"}})
    prepared = pipeline.prepare(cfg)
    keep = np.sort(np.random.default_rng(0).choice(prepared.df.index, 900, replace=False))
    prepared.df = prepared.df.loc[keep]
    prepared.split = split(prepared.df, cfg.split, cfg.seed)
    ws = pipeline.workspace(prepared, cfg)
    fit, val = hgb_out_of_fold(ws, 3)
    assert (len(fit), len(val)) == tuple(len(r) for r in ws.fit_rows("non_test"))
    np.testing.assert_allclose(logsumexp(fit, axis=1), 0, atol=1e-4)
    arms, results, _ = pipeline.timed_run(dataclasses.replace(cfg, method="mix"), prepared, ws=ws)
    assert set(results) == {"teacher", "student", "baseline"}
    assert results["student"]["rows"] == "non_test"
