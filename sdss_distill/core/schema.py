"""The SDSS table's vocabulary, declared once: column names, aliases, class labels, views.

Every other module asks this one which columns a view reads, what a column may be called
in a user's table, and in which order the classes come out of a model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LABELS: tuple[str, ...] = ("GALAXY", "QSO", "STAR")
"""Class labels in the fixed order of every model's outputs."""

BANDS: tuple[str, ...] = ("u", "g", "r", "i", "z")
"""SDSS model magnitudes, blue to red; adjacent pairs give the colours u-g, g-r, r-i, i-z."""

TARGET = "class"

SIMULATED_KEY = "sdss_distill.simulated"
"""Parquet metadata key marking a SIMULATED table (value "true"); copied into every output made
from it, so simulated rows are never taken for SDSS ones."""

SAMPLE = "sample"
"""Which packaged table a row of the combined `sdss` dataset comes from: bright or faint."""
SAMPLES: tuple[str, ...] = ("bright", "faint")
DEFAULT_SPLIT: tuple[float, ...] = (0.35, 0.35, 0.1, 0.2)
"""Fractions of the table: teacher-train, student-train, calibration, test (data.table.split).
No model fits or stops on the calibration slice: the run's temperature, conformal sets, purity
thresholds and z_phot_err come from it (runs.calibration)."""

ID_COLUMNS: tuple[str, ...] = ("objid", "specobjid")
"""Identifiers: kept as text (the DR14 export wrote them in float notation, so they are
not unique keys) and passed through to predictions; never model features."""

CANONICAL_COLUMNS: tuple[str, ...] = (
    "objid", "ra", "dec", *BANDS, "run", "rerun", "camcol", "field",
    "specobjid", TARGET, "redshift", "plate", "mjd", "fiberid",
)

SENTINEL = -9999.0
"""SDSS writes -9999 for a measurement that failed."""

MAGNITUDE_RANGE: tuple[float, float] = (0.0, 40.0)
"""Plausible SDSS asinh magnitudes; values outside are failed photometry."""

ASINH_SCALES: dict[str, float] = {
    "redshift": 1e4,  # resolves stellar velocities (|z| ~ 1e-4) as well as QSOs (z ~ 2-6)
    "objid": 1e-15,  # 64-bit ids (~1e18) into a float32-friendly range
    "specobjid": 1e-15,
}
"""Columns that enter a model through asinh(scale * x), a signed log."""

_ALIASES: dict[str, str] = {
    # Kaggle / SkyServer DR17 export names (keys are lower-case, underscores removed)
    "alpha": "ra", "delta": "dec", "runid": "run", "rerunid": "rerun", "camcol": "camcol",
    "fieldid": "field", "specobjid": "specobjid", "fiberid": "fiberid", "objid": "objid",
    # SkyServer SQL names for the same quantities
    **{f"modelmag{b}": b for b in BANDS},
    "bestobjid": "objid", "fiber": "fiberid",
}


@dataclass(frozen=True)
class View:
    """A named, ordered set of input columns for one model."""

    name: str
    columns: tuple[str, ...]
    description: str
    leaky: bool = False


VIEWS: dict[str, View] = {
    v.name: v
    for v in (
        View("photometric", BANDS,
             "u g r i z magnitudes; the model derives the colours u-g, g-r, r-i, i-z"),
        View("physical", (*BANDS, "redshift"),
             "photometry plus the spectroscopic redshift (default teacher view)"),
        View("paper17", tuple(c for c in CANONICAL_COLUMNS if c != TARGET),
             "all 17 columns as in the original proposal; LEAKY: plate, mjd and specobjid "
             "encode the survey program that targeted the object, so they reveal its class",
             leaky=True),
    )
}
STUDENT_VIEW = "photometric"
TEACHER_VIEWS: tuple[str, ...] = ("physical", "paper17")

TEACHER, STUDENT, BASELINE = "teacher", "student", "baseline"
ARMS: tuple[str, ...] = (TEACHER, STUDENT, BASELINE)
"""The arms every method yields (others, such as `assistant` or ensemble members, may join):
the teacher, the distilled student and the student-sized hard-label baseline on the same rows."""

SIGNATURE = "serving_default"
"""The one signature of every exported model: input named after its view, output `logits`."""


def get_view(name: str) -> View:
    """Look a view up by name; a bad name lists the valid ones."""
    try:
        return VIEWS[name]
    except KeyError:
        raise ValueError(
            f"unknown view {name!r}; choose one of: {', '.join(VIEWS)}"
        ) from None


def _key(name: str) -> str:
    return re.sub(r"[\s_]", "", str(name)).lower()


def canonical_name(name: str, mapping: dict[str, str] | None = None) -> str | None:
    """The canonical column a table's column name stands for, or None if it is unknown.

    A user `mapping` (their name -> canonical name) wins; then exact canonical names in any
    case; then the known DR14/DR17/SkyServer aliases.
    """
    if mapping and name in mapping:
        return mapping[name]
    key = _key(name)
    for canonical in CANONICAL_COLUMNS:
        if key == canonical:
            return canonical
    return _ALIASES.get(key)


def colours(columns: tuple[str, ...]) -> list[tuple[str, str]]:
    """The adjacent-band colours (a, b), giving a - b, that `columns` can form: the one
    definition of the colours a model derives, a card records and a domain checks."""
    return [(a, b) for a, b in zip(BANDS, BANDS[1:]) if a in columns and b in columns]


def colour_pairs(columns: tuple[str, ...]) -> list[list[int]]:
    """Index pairs (a, b) of adjacent bands in `columns`, giving colours a - b."""
    pos = {c: i for i, c in enumerate(columns)}
    return [[pos[a], pos[b]] for a, b in colours(columns)]


def asinh_scales(columns: tuple[str, ...]) -> list[float]:
    """Per-column asinh scale for a view (0 means the column passes through unchanged)."""
    return [ASINH_SCALES.get(c, 0.0) for c in columns]
