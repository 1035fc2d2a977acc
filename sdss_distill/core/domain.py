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
        self.width = len(spans)
        self._wide = (-1, None, None)  # test's bounds at the last batch's shape
        """Rows of a `layout`: the columns, then the colours."""

    def column_bounds32(self) -> tuple[list[float], list[float]]:
        """Each column's [min, max] as float32 numbers (the bounds `rows` compares with)."""
        k = self.width - len(self.pairs)
        return self._lo32[:k], self._hi32[:k]

    def rows(self, x: np.ndarray) -> np.ndarray:
        """True where every column and colour of the rows of `x` is inside (ends included)."""
        x = np.asarray(x)
        if x.dtype == np.float32 and x.ndim == 2 and x.shape[1] == self.width - len(self.pairs):
            return self.test(self.layout(x))[1]
        xt = np.ascontiguousarray(x.T)  # one row per column: every test below is contiguous
        lo, hi = self._bounds[np.float32 if x.dtype == np.float32 else np.float64]
        k = len(xt)
        ok = ((xt >= lo[:k]) & (xt <= hi[:k])).all(axis=0)
        if self.pairs:
            colour = self._colours(xt)
            ok &= ((colour >= lo[k:]) & (colour <= hi[k:])).all(axis=0)
        return ok

    def _colours(self, xt: np.ndarray) -> np.ndarray:
        if self._adjacent:  # u-g, g-r, ...: two slices, no gather
            return xt[:-1] - xt[1:]
        a, b = (list(ends) for ends in zip(*self.pairs))
        return xt[a] - xt[b]

    def layout(self, x: np.ndarray) -> np.ndarray:
        """The float32 values `rows` tests, one row per column then one per colour, shape
        (columns + colours, n): made in one pass over `x` (any float dtype, rounded to
        float32 as the model sees it), so a caller can test it and feed the model from it."""
        k = x.shape[1]
        v = np.empty((k + len(self.pairs), len(x)), np.float32)
        with np.errstate(over="ignore", invalid="ignore"):  # 1e39 -> inf, inf - inf -> nan
            v[:k] = x.T
            if self._adjacent:
                np.subtract(v[:k - 1], v[1:k], out=v[k:])
            elif self.pairs:
                a, b = (list(ends) for ends in zip(*self.pairs))
                np.subtract(v[a], v[b], out=v[k:])
        return v

    def test(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`rows` of a `layout` `v`: (True where every column is inside, True where every
        column and colour is inside). The bounds are laid out at `v`'s full shape once per
        number of rows: numpy compares against a (rows, 1) bound at half the speed."""
        if self._wide[0] != v.shape[1]:
            lo, hi = self._bounds[np.float32]
            self._wide = (v.shape[1], *(np.ascontiguousarray(np.broadcast_to(b, v.shape))
                                        for b in (lo, hi)))
        ok = v >= self._wide[1]
        ok &= v <= self._wide[2]
        k = len(v) - len(self.pairs)
        columns = ok[:k].all(axis=0)
        return columns, (columns & ok[k:].all(axis=0)) if self.pairs else columns

    def row(self, r: list[float]) -> bool:
        """`rows` of one float32 row given as Python floats (`x32[0].tolist()`), its values in
        ROW_RANGE: the same float32 arithmetic and comparisons in a few scalar calls."""
        values = r + array("f", [r[a] - r[b] for a, b in self.pairs]).tolist()
        return all(map(operator.le, self._lo32, values)) and all(map(operator.le, values,
                                                                      self._hi32))
