"""export.calibrate and edge.sets: the temperature folded into the class-logit layer divides
the logits by T (and nothing else); a card's material gives the edge the run's thresholds;
cards without material or levels out of range are one-line errors."""

import numpy as np
import pytest

from sdss_distill.core import conformal
from sdss_distill.core.errors import InputError
from sdss_distill.core.schema import LABELS, get_view
from sdss_distill.edge import sets as edge_sets
from sdss_distill.export.calibrate import fold_temperature, set_coverage


def test_fold_temperature_divides_the_logits_only():
    from sdss_distill.models import mlp
    rng = np.random.default_rng(0)
    x = (18 + rng.normal(size=(64, 5))).astype("float32")
    view = get_view("photometric")
    model = mlp.build_mlp(view, (6,), x, name="student")
    before = mlp.logits(model, x)
    assert fold_temperature(model, 2.5) is None
    np.testing.assert_allclose(mlp.logits(model, x), before / 2.5, rtol=1e-5, atol=1e-6)
    assert (mlp.logits(model, x).argmax(1) == before.argmax(1)).all()


def _card(seed=0, n=900):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    p = rng.dirichlet(np.ones(3), n)
    return {"calibration": {"conformal": conformal.material(p, y, LABELS),
                            "temperature": {"temperature": 1.0, "applied": False}}}, p, y


def test_edge_thresholds_are_the_material_thresholds():
    card, p, y = _card()
    q = edge_sets.thresholds(card, "m.json", "0.9", LABELS)
    assert np.array_equal(q, conformal.thresholds(p, y, 0.9))
    got = edge_sets.names(np.array([[0.98, 0.01, 0.01], [np.nan] * 3]), q, LABELS)
    assert got[1] == "" and got[0].startswith("GALAXY")


@pytest.mark.parametrize("level,match", [("1.2", r"--sets: the level must be in \(0, 1\)"),
                                         ("abc", "--sets: the level must be a number"),
                                         ("0.3", "covers levels 0.5-0.99")])
def test_edge_thresholds_bad_levels(level, match):
    card, _, _ = _card()
    with pytest.raises(InputError, match=match):
        edge_sets.thresholds(card, "m.json", level, LABELS)


def test_a_card_without_material_says_to_re_export():
    with pytest.raises(InputError, match=r"m.json: the model card has no calibration .*re-export"):
        edge_sets.thresholds({"labels": list(LABELS)}, "m.json", 0.9, LABELS)


def test_set_coverage_on_rows():
    card, p, y = _card(1)
    out = set_coverage(card["calibration"], np.log(p), y, np.full(len(y), 20.5))
    assert out["test"]["rows"] == len(y)
    assert out["test_by_r"]["20-21"]["rows"] == len(y)
    assert set_coverage({"not_available": "x"}, np.log(p), y, y)["not_available"] == "x"


def test_a_subclass_student_is_not_folded():
    from sdss_distill.models import mlp
    x = (18 + np.random.default_rng(1).normal(size=(32, 5))).astype("float32")
    sub = mlp.build_mlp(get_view("photometric"), (4,), x, name="sub", outputs=6)
    model = mlp.subclass_model(sub, 2, name="student")
    before = mlp.logits(model, x)
    assert "not a model output" in fold_temperature(model, 2.0)
    np.testing.assert_array_equal(mlp.logits(model, x), before)
