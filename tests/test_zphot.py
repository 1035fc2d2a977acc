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
