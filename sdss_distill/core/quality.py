"""Value checks for model inputs, declared once: which values a model may see, and why not.

Train's cleaning, the edge runtime and the catalogue scorer all ask this module, so a row
refused in one place is refused, for the same named reason, everywhere. numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sdss_distill.core.errors import InputError, listing
from sdss_distill.core.schema import BANDS, MAGNITUDE_RANGE, SENTINEL, canonical_name

FLOAT32_MAX = float(np.finfo(np.float32).max)

REDSHIFT_RANGE: tuple[float, float] = (-0.05, 8.0)
"""Physical spectroscopic redshifts: stellar blueshifts (> -0.05) up to the farthest SDSS
quasars (z ~ 7); anything outside is a failed fit or a unit mistake."""

VALUE_RANGES: dict[str, tuple[float, float]] = {
    **{b: MAGNITUDE_RANGE for b in BANDS},
    "redshift": REDSHIFT_RANGE,
}
"""Columns with a physical range; other columns need only be finite in float32."""

REASONS: dict[str, str] = {
    "missing": "missing value",
    "sentinel": f"sentinel {SENTINEL:g} (failed measurement)",
    "non_finite": "non-finite value",
    "float32_overflow": "value too large for float32",
    "out_of_range": "value outside its physical range",
}
"""Reason codes, in the order they are tested (the first that applies is reported)."""


@dataclass(frozen=True)
class Checked:
    """Per-row verdict: `reason[k]` is '' for a good row, else a REASONS key; `column[k]` names
    the first offending column."""

    reason: np.ndarray
    column: np.ndarray
    value: np.ndarray

    @property
    def ok(self) -> np.ndarray:
        return self.reason == ""

    def message(self, k: int) -> str:
        """Why row k (which must be bad) was refused, e.g. "value 45 in column 'z' outside 0 to 40"."""
        code, col, v = self.reason[k], self.column[k], self.value[k]
        if code == "out_of_range":
            lo, hi = VALUE_RANGES[col]
            return f"value {v:g} in column {col!r} outside {lo:g} to {hi:g}"
        if code == "missing":
            return f"missing value in column {col!r}"
        if code == "sentinel":
            return f"{REASONS[code]} in column {col!r}"
        if code == "float32_overflow":
            return f"value {v:g} in column {col!r} too large for float32"
        return f"{REASONS[code]} {v:g} in column {col!r}"

    def counts(self) -> dict[str, int]:
        """Rows per reason code (every code listed, zeros included)."""
        return {code: int((self.reason == code).sum()) for code in REASONS}


def check_values(values, columns: Sequence[str]) -> Checked:
    """Check an (n, len(columns)) array of float64 values row by row (NaN means missing)."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(columns):
        raise ValueError(f"expected an array of shape (n, {len(columns)}), got {x.shape}")
    n = len(x)
    reason = np.full(n, "", dtype=object)
    column = np.full(n, "", dtype=object)
    value = np.full(n, np.nan)
    lo = np.array([VALUE_RANGES.get(c, (-np.inf, np.inf))[0] for c in columns])
    hi = np.array([VALUE_RANGES.get(c, (-np.inf, np.inf))[1] for c in columns])
    with np.errstate(invalid="ignore"):
        tests = {
            "missing": np.isnan(x),
            "sentinel": x == SENTINEL,  # exactly; -inf is non-finite, -1e5 out of range
            "non_finite": np.isinf(x),
            "float32_overflow": np.abs(x) > FLOAT32_MAX,
            "out_of_range": (x < lo) | (x > hi),
        }
    for code, hit in tests.items():
        rows = np.flatnonzero(hit.any(axis=1) & (reason == ""))
        if not len(rows):
            continue
        first = hit[rows].argmax(axis=1)
        reason[rows] = code
        column[rows] = np.asarray(columns, dtype=object)[first]
        value[rows] = x[rows, first]
    return Checked(reason, column, value)


COMMENT = "#"


def is_preamble(line: str) -> bool:
    """A line above the header that is no part of the table: blank, or a comment starting with
    `#` (SkyServer's `#Table1`). The one rule for train's and edge's CSV readers."""
    text = line.strip()
    return not text or text.startswith(COMMENT)


def check_columns(found, needed: Sequence[str], *, source: str, header: Sequence[str],
                  needed_by: str = "the model", fix: str = "") -> None:
    """The one "missing column" error: `source` lacks some of `needed` (canonical names, looked
    up in `found`); names them, what needs them, the header found and the fix."""
    missing = [c for c in needed if c not in found]
    if missing:
        raise InputError(f"{source}: missing column(s) {listing(missing)} needed by "
                         f"{needed_by}; found {listing([str(h) for h in header], 20)}"
                         + (f". {fix}" if fix else ""))


def header_positions(header: Sequence[str], column_map: dict[str, str] | None = None, *,
                     source: str = "table") -> dict[str, int]:
    """Canonical column -> its index in `header`; unknown names are left out.

    Two names for one column (`u` and `U`, or SkyServer's `objid,z,u,g,r,i,z` whose first
    `z` is the redshift) are an InputError naming both: taking either silently would feed
    a model the wrong numbers.
    """
    seen: dict[str, int] = {}
    for k, name in enumerate(header):
        canon = canonical_name(str(name).strip(), column_map)
        if canon is None:
            continue
        if canon in seen:
            j = seen[canon]
            hint = (" (if one is the redshift, rename it 'redshift')" if canon == "z" else "")
            raise InputError(f"{source}: columns {header[j]!r} (column {j + 1}) and {name!r} "
                             f"(column {k + 1}) both mean {canon!r}{hint}; rename or drop one")
        seen[canon] = k
    return seen


def value_bounds(columns: Sequence[str]) -> tuple[list[float], list[float]]:
    """Per-column [lo, hi] such that a value passes `check_values` exactly when
    `lo <= v <= hi and v != SENTINEL` (NaN fails both comparisons, +-inf and float32 overflow
    fall outside): the edge runtime's cheap test of a call's rows, before it asks
    `check_values` why a row failed."""
    lo = [max(VALUE_RANGES.get(c, (-np.inf, np.inf))[0], -FLOAT32_MAX) for c in columns]
    hi = [min(VALUE_RANGES.get(c, (-np.inf, np.inf))[1], FLOAT32_MAX) for c in columns]
    return lo, hi
