"""Photometric redshift, declared once (numpy only): the target the student's redshift head
learns, its inverse, the quality measures every report and benchmark quotes, and the rule for
`z_phot_err`.

With e = (z_phot - z_spec) / (1 + z_spec) (the normalised error, as photo-z papers quote it):
- sigma_NMAD = 1.4826 * median(|e - median(e)|), a robust width that outliers do not inflate;
- bias = median(e);
- outlier fraction = mean(|e| > 0.15), the catastrophic failures sigma_NMAD leaves out.

`z_phot_err = k * (1 + z_phot)`: k is the 68th percentile of |e| on dev galaxies, so about 68 %
of galaxies fall within it (a 1-sigma-like band that assumes nothing about the error's shape).
k is stored in the model card; QSOs and stars get the same rule (their errors are larger: a
report says how often the band covers them, never hides it).
"""

from __future__ import annotations

import numpy as np

NMAD = 1.4826
"""Scales the median absolute deviation to a Gaussian's sigma."""

OUTLIER = 0.15
"""|e| above which a photo-z is an outlier (catastrophic failure)."""

COVERAGE = 0.68
"""Fraction of dev galaxies that z_phot_err is fitted to cover."""

HEAD = "z_phot"
"""Name of the redshift head's output (the layer and the exported tensor)."""

TRANSFORMS = ("z", "log1p")
TRANSFORM = "z"
"""What the head predicts: z itself, or log(1 + z). "z": on faint dev rows (seeds 0-2) it
scored as log(1 + z) did (scripts/zphot_dev.py, docs/results/photo-z.md), and z_phot is then
the head's output clipped at 0, which a microcontroller computes without libm."""


def target(z_spec, transform: str | None = None) -> np.ndarray:
    """What the redshift head learns (float32), from z clipped at z >= 0 (stars' small
    negative velocities are z = 0)."""
    z = np.clip(np.asarray(z_spec, "float64"), 0.0, None)
    return (np.log1p(z) if _checked(transform) == "log1p" else z).astype("float32")


def from_output(out, transform: str | None = None) -> np.ndarray:
    """The head's output -> z_phot (>= 0), float64."""
    out = np.asarray(out, "float64")
    return np.clip(np.expm1(out) if _checked(transform) == "log1p" else out, 0.0, None)


def _checked(transform: str | None) -> str:
    transform = TRANSFORM if transform is None else transform
    if transform not in TRANSFORMS:
        raise ValueError(f"transform must be one of {', '.join(TRANSFORMS)}, got {transform!r}")
    return transform


def decode32(out, k: float) -> tuple[np.ndarray, np.ndarray]:
    """(z_phot, z_phot_err) as float32 from the head's float32 output, in the float32 steps the
    C function sdss_classify_z takes (export/mcu_templates): z = max(out, 0) (NaN stays NaN),
    err = k * (1 + z); the edge runtime and the catalogue scorer use this same arithmetic."""
    out = np.asarray(out, np.float32)
    if _checked(None) == "log1p":
        z = np.expm1(out.astype(np.float64)).astype(np.float32)
    else:
        z = out.copy()
    z = np.where(z > 0, z, np.where(np.isnan(z), z, np.float32(0))).astype(np.float32)
    return z, (np.float32(k) * (np.float32(1) + z)).astype(np.float32)


def decode32_one(out, k: float) -> tuple:
    """`decode32` of one output value, in numpy float32 scalars (a one-row call costs less than
    the arrays would; tests/test_zphot.py checks both agree bit for bit)."""
    if _checked(None) == "log1p":
        z, err = decode32(np.float32(out).reshape(1), k)
        return z[0], err[0]
    z = np.float32(out)
    z = z if (z > 0 or z != z) else np.float32(0)
    return z, np.float32(k) * (np.float32(1) + z)


def normalised_error(z_phot, z_spec) -> np.ndarray:
    """e = (z_phot - z_spec) / (1 + z_spec)."""
    z_phot, z_spec = np.asarray(z_phot, "float64"), np.asarray(z_spec, "float64")
    if z_phot.shape != z_spec.shape:
        raise ValueError(f"z_phot and z_spec must have the same shape, got {z_phot.shape} "
                         f"and {z_spec.shape}")
    return (z_phot - z_spec) / (1.0 + np.clip(z_spec, 0.0, None))


def quality(z_phot, z_spec) -> dict:
    """{n, sigma_nmad, bias, outliers (a fraction)} of z_phot against z_spec; NaN when empty."""
    e = normalised_error(z_phot, z_spec)
    if e.size == 0:
        return {"n": 0, "sigma_nmad": float("nan"), "bias": float("nan"),
                "outliers": float("nan")}
    median = float(np.median(e))
    return {"n": int(e.size), "sigma_nmad": float(NMAD * np.median(np.abs(e - median))),
            "bias": median, "outliers": float(np.mean(np.abs(e) > OUTLIER))}


def error_scale(z_phot, z_spec, coverage: float = COVERAGE) -> float:
    """k of `z_phot_err = k * (1 + z_phot)`: the `coverage` quantile of |e| with e taken
    relative to (1 + z_phot), so that |z_phot - z_spec| <= k (1 + z_phot) on that fraction of
    the rows given (dev galaxies)."""
    z_phot, z_spec = np.asarray(z_phot, "float64"), np.asarray(z_spec, "float64")
    if z_phot.size == 0:
        raise ValueError("error_scale: no rows to fit z_phot_err on")
    if not 0 < coverage < 1:
        raise ValueError(f"coverage must be in (0, 1), got {coverage!r}")
    return float(np.quantile(np.abs(z_phot - z_spec) / (1.0 + z_phot), coverage))


def error(z_phot, k: float) -> np.ndarray:
    """z_phot_err = k * (1 + z_phot)."""
    return float(k) * (1.0 + np.asarray(z_phot, "float64"))


def covered(z_phot, z_spec, k: float) -> np.ndarray:
    """Whether each z_spec lies within z_phot +- z_phot_err (boolean array)."""
    return np.abs(np.asarray(z_phot, "float64") - np.asarray(z_spec, "float64")) <= error(z_phot, k)
