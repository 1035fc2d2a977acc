"""`score --sets LEVEL` and `score --purity CLASS=P` (issue 24): the conformal set column and the
boolean selections, from the calibration material in the model card.

Both act on the MODEL's probabilities (`p_<class>` with `--priors training`, `p_<class>_model`
otherwise), never on prior-reweighted ones. Sets: the card's Mondrian thresholds (per-class
coverage holds under a change of class mix, as each class's own scores do not change).
Selections: the threshold on p_class that reaches purity P under the catalogue's class mix
(the training mix, a file's priors, or the EM estimate with `--priors em`), from the card's
per-true-class score histograms of the calibration rows (core.purity); the expected
completeness comes with it.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from sdss_distill.core import conformal, purity
from sdss_distill.core.errors import InputError, listing
from sdss_distill.core.io import sha256_bytes
from sdss_distill.edge import sets as edge_sets

NO_MATERIAL = ("the model card has no calibration material for --purity (student files "
               "exported by this version carry it); re-export the model (python -m "
               "sdss_distill.export --run RUN)")


def parse_purity(specs, labels) -> list[tuple[str, float]]:
    """`--purity CLASS=P` values as [(class, P)], each class once; InputError naming the fix."""
    out = {}
    for spec in specs or ():
        name, sep, value = str(spec).partition("=")
        if not sep or name.strip() not in labels:
            raise InputError(f"--purity {spec!r}: give CLASS=P with CLASS one of "
                             f"{listing(labels)}, e.g. --purity QSO=0.9")
        try:
            p = float(value)
        except ValueError:
            p = float("nan")
        if not 0 < p < 1:
            raise InputError(f"--purity {spec!r}: the purity must be a number in (0, 1), "
                             f"e.g. QSO=0.9")
        if name.strip() in out:
            raise InputError(f"--purity: class {name.strip()} given twice; give each class once")
        out[name.strip()] = p
    return list(out.items())


def set_thresholds(card: dict, where, level, labels) -> tuple[float, ...] | None:
    """The card's conformal thresholds for `level` (None without --sets)."""
    if level is None:
        return None
    return tuple(edge_sets.thresholds(card, where, level, labels).tolist())


def choose(card: dict, where, wanted: list[tuple[str, float]], labels, mix) -> dict:
    """{class: {purity, threshold, expected_completeness, expected_purity, mix}} for every
    `--purity` asked, under the class mix `mix` (a vector in labels order)."""
    if not wanted:
        return {}
    cal = card.get("calibration")
    doc = cal.get("purity") if isinstance(cal, dict) else None
    if not isinstance(doc, dict):
        raise InputError(f"{where}: {NO_MATERIAL}")
    try:
        counts = purity.histogram_counts(doc, labels)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise InputError(f"{where}: corrupt purity histograms in the model card; re-export "
                         f"the model") from None
    mix = np.asarray(mix, dtype=np.float64)
    out = {}
    for name, target in wanted:
        c = list(labels).index(name)
        got = purity.threshold_for(counts, c, mix, target)
        if got is None:
            top = purity.highest(counts, c, mix)
            raise InputError(
                f"--purity {name}={target}: out of reach under the class mix "
                f"{', '.join(f'{k} {v:.3f}' for k, v in zip(labels, mix))}: on the model's "
                f"calibration rows the highest expected purity is {top['purity']:.3f} (p_{name} "
                f">= {top['threshold']:.3f}, completeness {100 * top['completeness']:.1f} %); "
                f"ask for at most {np.floor(top['purity'] * 100) / 100:.2f}")
        out[name] = {"purity": target, "threshold": got["threshold"],
                     "expected_completeness": got["completeness"],
                     "expected_purity": got["purity"],
                     "mix": dict(zip(labels, mix.tolist())),
                     "rows": "calibration rows of the model card (never test rows)"}
    return out


def key(q, wanted: list[tuple[str, float]]) -> str | None:
    """What --sets/--purity add to each part's identity (a changed setting re-scores; the
    thresholds follow from the card and the mix, which the priors key covers)."""
    if q is None and not wanted:
        return None
    what = {"sets": q, "purity": sorted(wanted)}
    return sha256_bytes(json.dumps(what, sort_keys=True))


def columns(pm: np.ndarray, labels, q, selected: tuple, bad: np.ndarray) -> dict:
    """The `set` and `selected_<class>` Arrow columns of a batch from the model's (labels, n)
    probabilities; bad rows are null. `selected`: ((class index, threshold), ...)."""
    mask = None
    if len(bad):
        mask = np.zeros(pm.shape[1], bool)
        mask[bad] = True
    out = {}
    if q is not None:
        members = conformal.sets(pm.T, np.asarray(q))
        code = conformal.bitmask(members).astype(np.int32)
        names = [conformal.SEPARATOR.join(lab for c, lab in enumerate(labels) if k >> c & 1)
                 for k in range(1 << len(labels))]
        out["set"] = pa.DictionaryArray.from_arrays(pa.array(code, mask=mask),
                                                    pa.array(names, pa.string()))
    for c, threshold in selected:
        out[f"selected_{labels[c]}"] = pa.array(pm[c] >= threshold, mask=mask)
    return out
