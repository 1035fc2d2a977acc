"""Every registered method trains, yields its arms and is evaluated, on a small slice of the
real table (a few epochs: these tests check wiring and contracts, not accuracy)."""

import dataclasses

import numpy as np
import pytest

from sdss_distill.distill import registry
from sdss_distill.runs import pipeline
from sdss_distill.runs.config import make_config

SMALL = dict(epochs=2, patience=2, teacher_hidden=(16, 8), student_hidden=(6, 6),
             methods={"student-ensemble": {"widths": [[4], [6, 6]]},
                      "teacher-ensemble": {"teachers": 2}, "crossfit": {"folds": 3},
                      "assistant": {"hidden": [8]}, "hints": {"teacher_layer": "dense_0"}})


@pytest.fixture(scope="module")
def slice_ws(real_table):
    """1,500 rows of the real table, split as train would; one workspace shared by all methods."""
    from sdss_distill.data.table import split
    cfg = make_config(data=str(real_table), **SMALL)
    prepared = pipeline.prepare(cfg)
    keep = np.sort(np.random.default_rng(0).choice(prepared.df.index, 1500, replace=False))
    prepared.df = prepared.df.loc[keep]
    prepared.split = split(prepared.df, cfg.split, cfg.seed)
    return cfg, prepared, pipeline.workspace(prepared, cfg)


EXPECTED_ARMS = {
    "offline": {"teacher", "student", "baseline"},
    "crossfit": {"teacher", "student", "baseline"},
    "online": {"teacher", "student", "baseline"},
    "cotrain": {"teacher", "student", "baseline"},
    "teacher-ensemble": {"teacher", "student", "baseline"},
    "student-ensemble": {"teacher", "member_4", "member_6x6", "student", "student_vote", "baseline"},
    "hints": {"teacher", "student", "baseline"},
    "assistant": {"teacher", "assistant", "student", "baseline"},
    "subclass": {"teacher", "student", "baseline"},
    "shuffled-z": {"teacher", "student", "baseline"},
    "smoothing": {"teacher", "student", "baseline"},
    "photo-teacher": {"teacher", "student", "baseline"},
    "mix": {"teacher", "student", "baseline"},
}


def test_every_method_is_covered():
    assert set(EXPECTED_ARMS) == set(registry.names())


def method_name_tests(source: str) -> list[str]:
    """Comparisons (==, !=, in) with a method's name in `source`: as a literal, or through a
    module-level constant bound to one (`REAL = "crossfit"` ... `method == REAL`)."""
    import ast
    names = set(registry.names())
    tree = ast.parse(source)
    aliases = {t.id for node in tree.body if isinstance(node, ast.Assign)
               and isinstance(node.value, ast.Constant) and node.value.value in names
               for t in node.targets if isinstance(t, ast.Name)}
    return [f"{node.lineno}: {ast.unparse(node)}" for node in ast.walk(tree)
            if isinstance(node, ast.Compare) and any(
                (isinstance(n, ast.Constant) and n.value in names)
                or (isinstance(n, ast.Name) and n.id in aliases) for n in ast.walk(node))]


def test_no_method_name_is_tested_outside_the_methods():
    """Method knowledge lives in its registry entry: no comparison with a method's name
    anywhere in the package outside distill/methods/ (and the registry's list)."""
    from tests.conftest import ROOT
    found = [f"{path.relative_to(ROOT)}:{hit}"
             for path in sorted((ROOT / "sdss_distill").rglob("*.py"))
             if "methods" not in path.parts for hit in method_name_tests(path.read_text())]
    assert not found, found


def test_the_check_above_sees_a_method_name_comparison():
    assert len(method_name_tests('if "subclass" in methods or arch[0] == "offline": pass')) == 2
    assert len(method_name_tests('REAL = "crossfit"\nok = df.method == REAL\n')) == 1
    assert not method_name_tests('REAL = registry.get(name).control_of\nok = m == REAL\n')


def test_methods_declare_their_export_and_control_roles():
    """A student that is not a plain MLP says why it is not fine-tuned; a control names a
    registered method and says what teaches its student."""
    for name in registry.names():
        m = registry.get(name)
        assert m.exports_plain != bool(m.no_finetune), name
        if m.control_of:
            assert m.control_of in registry.names() and m.teacher_about, name
            assert registry.get(m.control_of).teacher_about, name


@pytest.mark.slow
@pytest.mark.parametrize("method", list(EXPECTED_ARMS))
def test_method_trains_and_reports(slice_ws, method):
    cfg, prepared, ws = slice_ws
    cfg = dataclasses.replace(cfg, method=method)
    arms, results, _ = pipeline.timed_run(cfg, prepared, ws=ws)
    assert set(results) == EXPECTED_ARMS[method]
    test_rows = len(prepared.split.test)
    teacher_acc = results["teacher"]["test_accuracy"]
    for name, m in results.items():
        cm = np.asarray(m["confusion_matrix"]["rows_true_cols_predicted"])
        assert cm.sum() == test_rows
        # The reported accuracy is the confusion matrix's (two-epoch nets: wiring, not skill).
        assert m["test_accuracy"] == pytest.approx(np.trace(cm) / test_rows), name
        assert 0 <= m["test_ece"] <= 1 and m["parameters"] > 0
        if m["role"] != "teacher":
            # Two models that agree on a share a of the rows differ in accuracy by <= 1 - a.
            gap = abs(m["test_accuracy"] - teacher_acc)
            assert gap <= 1 - m["agreement_with_teacher"] + 1e-9, (name, gap)
    by_name = {a.name: a for a in arms}
    student, baseline = by_name["student"], by_name["baseline"]
    assert student.rows == baseline.rows  # the baseline sees the student's rows
    # ... the rows the registry declares for the method; and its export kind is declared too
    declared = registry.get(method)
    assert baseline.rows == declared.baseline_rows(cfg.settings(method))
    from sdss_distill.models.mlp import ensemble_members, subclass_head
    plain = not ensemble_members(student.model) and subclass_head(student.model) is None
    assert declared.exports_plain == plain, method
    assert student.view.name == "photometric"  # the photo-teacher control's teacher is too
    assert by_name["teacher"].view.name == ("photometric" if method == "photo-teacher"
                                            else "physical")
    if method == "student-ensemble":
        members = [a for a in arms if a.role == "member"]
        assert student.parameters == sum(m.parameters for m in members)
    if method == "crossfit":
        assert by_name["teacher"].notes["folds"] == 3 and student.rows == "non_test"


@pytest.mark.slow
def test_baseline_is_shared_and_matches_an_alpha_zero_student(slice_ws):
    """Alpha = 0 is hard-label training: same rows, same initial weights -> the baseline."""
    cfg, prepared, ws = slice_ws
    cfg = dataclasses.replace(cfg, method="offline", alpha=0.0)
    arms, results, _ = pipeline.timed_run(cfg, prepared, ws=ws)
    by_name = {a.name: a for a in arms}
    assert by_name["baseline"] is ws.baseline(cfg, "student_train")
    test = prepared.df.loc[prepared.split.test]
    np.testing.assert_allclose(by_name["student"].logits(test), by_name["baseline"].logits(test),
                               atol=1e-4)


@pytest.mark.slow
def test_configured_temperature_and_alpha_reach_every_methods_loss(slice_ws, monkeypatch):
    """Each method's distilled student is trained with the config's T and alpha, not a default."""
    from sdss_distill.distill import distillers, jax_cotrain, jax_fit, subclasses

    seen = []

    def spy(cls):
        original = cls.__init__

        def init(self, *args, **kwargs):
            original(self, *args, **kwargs)
            losses = list(getattr(self, "distillation_losses", None) or [])
            if getattr(self, "soft_loss", None) is not None:
                losses.append(self.soft_loss)
            seen.append((float(self.alpha), [getattr(loss, "temperature", None) for loss in losses]))

        monkeypatch.setattr(cls, "__init__", init)

    for cls in (distillers.OfflineDistiller, distillers.OnlineDistiller,
                distillers.HintDistiller, distillers.CoTrainer, subclasses.SubclassDistiller):
        spy(cls)
    def engine(real):  # what the JAX engine trains on
        def fit(*args, loss=None, **kwargs):
            loss = loss or jax_fit.Loss()
            seen.append((float(loss.alpha), [loss.temperature]))
            return real(*args, loss=loss, **kwargs)
        return fit

    monkeypatch.setattr(jax_fit, "fit_members", engine(jax_fit.fit_members))
    monkeypatch.setattr(jax_cotrain, "fit_pair", engine(jax_cotrain.fit_pair))
    cfg, prepared, ws = slice_ws
    for method in EXPECTED_ARMS:
        seen.clear()
        run_cfg = dataclasses.replace(cfg, method=method, temperature=3.5, alpha=0.35, epochs=1)
        pipeline.timed_run(run_cfg, prepared, ws=ws)
        # alpha 0: the hard-label baseline; every distiller's engine Loss is spied too (the
        # distiller hands it over: tests/test_distillers.py)
        distilled = [(a, ts) for a, ts in seen if a != 0.0]
        assert distilled, (method, seen)
        assert all(a == 0.35 and 3.5 in ts for a, ts in distilled), (method, distilled)


# The arm of each KD method that is "its student" for the alpha = 0 check: with student-ensemble
# the member of the baseline's widths; subclass's student emits 3 x bins logits, a different
# network from its 3-logit baseline, so alpha = 0 cannot make them equal.
ALPHA0_ARM = {"offline": "student", "crossfit": "student", "online": "student",
              "teacher-ensemble": "student", "assistant": "student",
              "student-ensemble": "member_6x6", "hints": "student", "cotrain": "student",
              "mix": "student", "shuffled-z": "student", "smoothing": "student",
              "photo-teacher": "student"}


def test_every_kd_method_has_the_alpha_zero_check():
    """Every method but subclass (another network than its baseline, see above) is checked."""
    assert set(ALPHA0_ARM) | {"subclass"} == set(registry.names())


@pytest.mark.slow
@pytest.mark.parametrize("method", list(ALPHA0_ARM))
def test_alpha_zero_student_is_its_baseline(slice_ws, method):
    """alpha = 0: the student (same rows, initial weights, batch order) predicts exactly what
    its baseline predicts on every test row."""
    cfg, prepared, ws = slice_ws
    cfg = dataclasses.replace(cfg, method=method, alpha=0.0)
    arms = {a.name: a for a in pipeline.timed_run(cfg, prepared, ws=ws)[0]}
    test = prepared.df.loc[prepared.split.test]
    np.testing.assert_array_equal(arms[ALPHA0_ARM[method]].logits(test),
                                  arms["baseline"].logits(test))


@pytest.mark.slow
@pytest.mark.parametrize("method", [*ALPHA0_ARM, "subclass"])
def test_temperature_changes_the_student(slice_ws, method):
    """alpha = 0.5: T = 4 and T = 1 train different students."""
    cfg, prepared, ws = slice_ws
    test = prepared.df.loc[prepared.split.test]
    out = []
    for temperature in (1.0, 4.0):
        run_cfg = dataclasses.replace(cfg, method=method, alpha=0.5, temperature=temperature)
        arms = {a.name: a for a in pipeline.timed_run(run_cfg, prepared, ws=ws)[0]}
        out.append(arms[ALPHA0_ARM.get(method, "student")].logits(test))
    assert np.abs(out[0] - out[1]).max() > 1e-4
