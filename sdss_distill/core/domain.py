"""A model's training domain: per-column and adjacent-colour [min, max] over its training rows,
and the test of a row against it (numpy only: export writes it into the model card, the edge
classifier flags rows outside it, and a run's report scores the student inside and outside it).
"""

from __future__ import annotations

import operator
from array import array

import numpy as np

from sdss_distill.core.schema import colours


def domain(x: np.ndarray, columns: tuple[str, ...]) -> dict:
    """Per-column and adjacent-colour [min, max] over the training rows."""
    cols = {c: [float(x[:, k].min()), float(x[:, k].max())] for k, c in enumerate(columns)}
    pos = {c: k for k, c in enumerate(columns)}
    spans = {}
    for a, b in colours(columns):
        d = x[:, pos[a]] - x[:, pos[b]]
        spans[f"{a}-{b}"] = [float(d.min()), float(d.max())]
    return {"rows": "student_train", "n": int(len(x)), "columns": cols, "colours": spans}


def in_domain(x: np.ndarray, columns: tuple[str, ...], dom: dict) -> np.ndarray:
    """True where every column and colour of `x` lies inside `dom`'s ranges (ends included);
    a column or colour `dom` does not name is not checked."""
    return Domain(columns, dom).rows(x)


class Domain:
    """`dom`'s ranges laid out once for a model's `columns`, so a test costs only arithmetic:
    the edge runtime tests every call's rows, one row at a time in a loop on a device."""

    ROW_RANGE = (2.0 ** -20, 2.0 ** 8)
    """Values for which `row` is exact: the difference of two float32 values in this range
    needs at most 53 bits, so a float64 difference rounded once to float32 is numpy's float32
    difference. Magnitudes lie inside; a caller sends other rows to `rows`."""

    def __init__(self, columns: tuple[str, ...], dom: dict):
        pos = {c: k for k, c in enumerate(columns)}
        spans = [dom.get("columns", {}).get(c, (-np.inf, np.inf)) for c in columns]
        pairs = []
        for name, span in dom.get("colours", {}).items():
            a, b = name.split("-")
            pairs.append((pos[a], pos[b]))
            spans.append(span)
        self.pairs = pairs
        """(a, b) column positions of each colour a - b tested, after the columns."""
        self._adjacent = pairs == [(k, k + 1) for k in range(len(columns) - 1)]
        with np.errstate(over="ignore"):
            # numpy compares a float32 array with a float bound in float32: so do these
            self._bounds = {dt: np.asarray(spans, dt).T[:, :, None] for dt in (np.float32,
                                                                               np.float64)}
        self._lo32, self._hi32 = (b[:, 0].tolist() for b in self._bounds[np.float32])

    def rows(self, x: np.ndarray) -> np.ndarray:
        """True where every column and colour of the rows of `x` is inside (ends included)."""
        x = np.asarray(x)
        xt = np.ascontiguousarray(x.T)  # one row per column: every test below is contiguous
        lo, hi = self._bounds[np.float32 if x.dtype == np.float32 else np.float64]
        k = len(xt)
        ok = ((xt >= lo[:k]) & (xt <= hi[:k])).all(axis=0)
        if self.pairs:
            if self._adjacent:  # u-g, g-r, ...: two slices, no gather
                colour = xt[:-1] - xt[1:]
            else:
                a, b = (list(ends) for ends in zip(*self.pairs))
                colour = xt[a] - xt[b]
            ok &= ((colour >= lo[k:]) & (colour <= hi[k:])).all(axis=0)
        return ok

    def row(self, r: list[float]) -> bool:
        """`rows` of one float32 row given as Python floats (`x32[0].tolist()`), its values in
        ROW_RANGE: the same float32 arithmetic and comparisons in a few scalar calls."""
        values = r + array("f", [r[a] - r[b] for a, b in self.pairs]).tolist()
        return all(map(operator.le, self._lo32, values)) and all(map(operator.le, values,
                                                                      self._hi32))
