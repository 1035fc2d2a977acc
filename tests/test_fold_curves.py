"""Every fold teacher's training curve reaches the report (runs.figures draws each): the
physical fold teachers' per-member keys from jax_fit, and mix's photometric fold teachers."""

import dataclasses

import numpy as np
import pytest


@pytest.mark.slow
def test_mix_reports_each_fold_teacher_of_both_sets(real_table):
    from sdss_distill.data.table import split
    from sdss_distill.runs import pipeline
    from sdss_distill.runs.config import make_config
    from sdss_distill.runs.figures import histories
    cfg = make_config(data=str(real_table), epochs=3, patience=3, teacher_hidden=(8,),
                      student_hidden=(6, 6), methods={"mix": {"hidden": [6]}})
    prepared = pipeline.prepare(cfg)
    keep = np.sort(np.random.default_rng(0).choice(prepared.df.index, 900, replace=False))
    prepared.df = prepared.df.loc[keep]
    prepared.split = split(prepared.df, cfg.split, cfg.seed)
    _, results, _ = pipeline.timed_run(dataclasses.replace(cfg, method="mix"), prepared)
    teacher = results["teacher"]
    (photometric,) = teacher["more_fold_teachers"]
    assert photometric["view"] == "photometric" and len(photometric["members"]) == 3
    for h in (teacher["history"], photometric["history"]):
        for key in ("loss", "val_loss"):
            each = np.array([h[f"{key}_{k}"] for k in range(3)])
            np.testing.assert_allclose(each.sum(axis=0), h[key], rtol=1e-6)  # the logged sum
        assert "loss_3" not in h
    assert "loss_0" not in results["student"]["history"]  # one member: its own keys only
    labels = [label for label, _, _ in histories({"models": results}, "teacher")]
    assert labels == [f"teacher: {v} fold {k}" for v in ("physical", "photometric")
                      for k in range(3)]
