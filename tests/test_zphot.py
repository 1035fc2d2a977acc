"""Photometric redshift definitions (core/zphot.py): the quality measures and z_phot_err."""

import numpy as np
import pytest

from sdss_distill.core import zphot


def test_quality_by_hand():
    z_spec = np.array([0.1, 0.2, 0.3, 0.4, 1.0])
    z_phot = np.array([0.1, 0.224, 0.3, 0.372, 2.0])  # e = 0, 0.02, 0, -0.02, 0.5
    q = zphot.quality(z_phot, z_spec)
    assert q["n"] == 5
    assert q["bias"] == pytest.approx(0.0)
    # |e - 0| = 0, 0.02, 0, 0.02, 0.5 -> median 0.02
    assert q["sigma_nmad"] == pytest.approx(1.4826 * 0.02)
    assert q["outliers"] == pytest.approx(0.2)


def test_quality_of_nothing_is_nan():
    q = zphot.quality([], [])
    assert q["n"] == 0 and np.isnan(q["sigma_nmad"])


def test_shapes_must_match():
    with pytest.raises(ValueError, match="same shape"):
        zphot.normalised_error([0.1, 0.2], [0.1])


@pytest.mark.parametrize("transform", zphot.TRANSFORMS)
def test_target_round_trip_and_clip(transform):
    z = np.array([-1e-4, 0.0, 0.5, 3.0])
    back = zphot.from_output(zphot.target(z, transform), transform)
    np.testing.assert_allclose(back, [0, 0, 0.5, 3.0], rtol=1e-6)
    with pytest.raises(ValueError, match="transform"):
        zphot.target(z, "sqrt")


def test_error_scale_covers_the_asked_fraction():
    rng = np.random.default_rng(1)
    z_spec = rng.uniform(0.02, 0.6, 20000)
    z_phot = z_spec + rng.normal(0, 0.03, z_spec.size) * (1 + z_spec)
    k = zphot.error_scale(z_phot, z_spec)
    assert zphot.covered(z_phot, z_spec, k).mean() == pytest.approx(0.68, abs=0.002)
    fresh = z_spec + rng.normal(0, 0.03, z_spec.size) * (1 + z_spec)
    assert zphot.covered(fresh, z_spec, k).mean() == pytest.approx(0.68, abs=0.015)
    np.testing.assert_allclose(zphot.error([0.0, 1.0], k), [k, 2 * k])


def test_error_scale_checks():
    with pytest.raises(ValueError, match="no rows"):
        zphot.error_scale([], [])
    with pytest.raises(ValueError, match="coverage"):
        zphot.error_scale([0.1], [0.1], coverage=1.5)


# --- the redshift head: model, JAX loss term, settings -------------------------------------

@pytest.mark.slow
def test_model_with_a_redshift_head_round_trips_safely(tmp_path):
    """build_mlp(z_head=True): two named outputs; saved and loaded with safe_mode=True, the
    same logits and redshift; the JAX engine's dense stack leaves the head out."""
    import keras

    from sdss_distill.core.schema import get_view
    from sdss_distill.distill.jax_fit import dense_stack
    from sdss_distill.models import mlp
    x = np.random.default_rng(0).normal(18, 1, (40, 5)).astype("float32")
    keras.utils.set_random_seed(0)
    net = mlp.build_mlp(get_view("photometric"), (6, 6), x, name="s", z_head=True)
    assert mlp.has_z_head(net) and mlp.logits(net, x).shape == (40, 3)
    assert mlp.redshift(net, x).shape == (40,)
    net.save(tmp_path / "s.keras")
    back = mlp.load(tmp_path / "s.keras")
    np.testing.assert_array_equal(mlp.logits(back, x), mlp.logits(net, x))
    np.testing.assert_array_equal(mlp.redshift(back, x), mlp.redshift(net, x))
    assert [d.name for d in dense_stack(net)[1]] == ["dense_0", "dense_1", "logits"]
    plain = mlp.build_mlp(get_view("photometric"), (6, 6), x, name="p")
    assert not mlp.has_z_head(plain) and mlp.redshift(plain, x) is None


def test_mix_redshift_setting_is_checked():
    from sdss_distill.distill.methods.mix import Settings
    assert Settings().redshift > 0  # the default student has the head
    with pytest.raises(ValueError, match="redshift"):
        Settings(redshift=-1)


def _huber(a, delta):
    a = np.abs(a)
    return np.where(a <= delta, 0.5 * a * a, delta * (a - 0.5 * delta))


@pytest.mark.slow
def test_engine_adds_the_redshift_term_and_leaves_the_class_terms_unchanged():
    """At learning rate 0 (weights stay initial), the logged validation terms after one epoch:
    student and distillation terms as without a head, total = (1 - a) CE + a KD + w Huber(z)."""
    import keras

    from sdss_distill.core.schema import get_view
    from sdss_distill.distill import jax_fit
    from sdss_distill.distill.fit import FitSettings
    from sdss_distill.models import mlp
    rng = np.random.default_rng(3)
    x = rng.normal(18, 1, (400, 5)).astype("float32")
    y = rng.integers(0, 3, 400).astype("int32")
    soft = rng.normal(0, 2, (400, 3)).astype("float32")
    z = rng.uniform(0, 2, 400).astype("float32")
    train = (np.arange(400) < 300)[:, None]
    runs = {}
    for head in (False, True):
        keras.utils.set_random_seed(0)
        net = mlp.build_mlp(get_view("photometric"), (8,), x[:300], name="s", z_head=head)
        loss = jax_fit.Loss(0.6, 2.0, "kl", z_weight=5.0 if head else 0.0)
        s = np.column_stack([soft, z]) if head else soft
        _, _, h = jax_fit.fit_members(
            [net], x, y, train, ~train, FitSettings(1, 64, 5, 0.0), loss=loss, soft=s,
            projection=net.get_layer(zphot.HEAD) if head else None)
        runs[head] = (net, h)
    (_, plain), (net, h) = runs[False], runs[True]
    assert h["val_student_loss"][0] == pytest.approx(plain["val_student_loss"][0], rel=1e-5)
    assert h["val_distillation_loss"][0] == pytest.approx(plain["val_distillation_loss"][0],
                                                          rel=1e-5)
    reg = _huber(mlp.redshift(net, x[300:]) - z[300:], jax_fit.Z_DELTA).mean()
    assert reg > 0.01  # an untrained head is far off: the term is not vacuous
    # under alpha, as the soft term: (1 - a) CE + a (soft + w Huber)
    assert h["val_loss"][0] == pytest.approx(plain["val_loss"][0] + 0.6 * 5.0 * reg, rel=1e-4)


@pytest.mark.slow
def test_the_head_learns_a_redshift():
    """Trained on rows whose z is a function of the colours, the head predicts it: sigma_NMAD
    far below an untrained head's."""
    import keras

    from sdss_distill.core.schema import get_view
    from sdss_distill.distill import jax_fit
    from sdss_distill.distill.fit import FitSettings
    from sdss_distill.models import mlp
    rng = np.random.default_rng(4)
    x = rng.normal(18, 1, (1200, 5)).astype("float32")
    z = np.clip(0.3 + 0.2 * (x[:, 1] - x[:, 2]), 0, None).astype("float32")
    y = (x[:, 0] > x[:, 4]).astype("int32")
    train = (np.arange(1200) < 1000)[:, None]
    keras.utils.set_random_seed(0)
    net = mlp.build_mlp(get_view("photometric"), (16,), x[:1000], name="s", z_head=True)
    before = zphot.quality(zphot.from_output(mlp.redshift(net, x[1000:])), z[1000:])
    jax_fit.fit_members([net], x, y, train, ~train, FitSettings(60, 64, 60, 1e-2),
                        loss=jax_fit.Loss(1.0, 1.0, "kl", z_weight=10.0),
                        soft=np.column_stack([np.zeros((1200, 3)), z]).astype("float32"),
                        projection=net.get_layer(zphot.HEAD))
    after = zphot.quality(zphot.from_output(mlp.redshift(net, x[1000:])), z[1000:])
    assert after["sigma_nmad"] < 0.02 < before["sigma_nmad"], (before, after)


def test_decode32_is_the_c_arithmetic():
    out = np.array([-0.5, 0.0, 0.25, np.nan, 3.0], np.float32)
    z, err = zphot.decode32(out, 0.05)
    np.testing.assert_array_equal(z[[0, 1, 2, 4]], np.float32([0, 0, 0.25, 3.0]))
    assert np.isnan(z[3]) and np.isnan(err[3]) and z.dtype == err.dtype == np.float32
    np.testing.assert_array_equal(err[[0, 2]], np.float32(0.05) * (np.float32(1) + z[[0, 2]]))


def test_one_value_decodes_as_the_array_path_bit_for_bit():
    from sdss_distill.core.zphot import decode32, decode32_one
    out = np.array([-1.5, -0.0, 0.0, 1e-8, 0.0773, 0.694, 3.2, np.nan, np.inf],
                   np.float32)
    z, err = decode32(out, 0.0385)
    for k, v in enumerate(out):
        z1, e1 = decode32_one(v, 0.0385)
        assert z1.dtype == e1.dtype == np.float32
        np.testing.assert_array_equal([z1, e1], [z[k], err[k]])


# --- export's refit of k (export/source.py): the rows it fits on -----------------------------

def _table(n=600, seed=5):
    import pandas as pd

    from sdss_distill.core.schema import LABELS
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(19, 1, (n, 5)), columns=list("ugriz"))
    df["class"] = np.array(LABELS)[rng.integers(0, len(LABELS), n)]
    df["redshift"] = rng.uniform(0, 1, n)
    return df


@pytest.mark.parametrize("fractions", [(0.35, 0.35, 0.1, 0.2), (0.4, 0.4, 0.2)])
def test_export_refits_k_on_the_calibration_galaxies(fractions):
    """export's z_dev (each file's k of z_phot_err) is the calibration slice's galaxies, as
    training's k (Split.calibrating); a split without a slice (runs before it) keeps the
    student's early-stopping galaxies. The cards name the rows they were fitted on."""
    from sdss_distill.data.table import split, validation_slice
    from sdss_distill.export.source import _z_dev, fitted_on
    df = _table()
    s = split(df, fractions=fractions, seed=2)
    cfg = {"validation_fraction": 0.15, "seed": 2}
    x, z = _z_dev(df, s, cfg, {"rows": "student_train"})
    if len(fractions) == 4:
        want = s.calibration
        assert fitted_on(s) == "the split's calibration slice, galaxies"
    else:
        want = validation_slice(df, s.student_train, 0.15, 2)[1]
        assert fitted_on(s) == "the student's early-stopping rows (non-test), galaxies"
    gal = df.loc[want][df.loc[want, "class"] == "GALAXY"]
    assert 0 < len(gal) < len(want)  # the other classes are left out, and some remain
    np.testing.assert_array_equal(z, gal["redshift"].to_numpy())
    np.testing.assert_array_equal(x, gal[list("ugriz")].to_numpy("float32"))
    fitted = set(s.test) | (set(s.student_train) | set(s.teacher_train) if len(fractions) == 4
                            else set())
    assert not set(gal.index) & fitted  # never a test row; no model's training row either
