"""A model's training domain: per-column and adjacent-colour [min, max] over its training rows,
and the test of a row against it (numpy only: export writes it into the model card, the edge
classifier flags rows outside it, and a run's report scores the student inside and outside it).
"""

from __future__ import annotations

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
    ok = np.ones(len(x), bool)
    for k, c in enumerate(columns):
        lo, hi = dom.get("columns", {}).get(c, (-np.inf, np.inf))
        ok &= (x[:, k] >= lo) & (x[:, k] <= hi)
    pos = {c: k for k, c in enumerate(columns)}
    for name, (lo, hi) in dom.get("colours", {}).items():
        a, b = name.split("-")
        colour = x[:, pos[a]] - x[:, pos[b]]
        ok &= (colour >= lo) & (colour <= hi)
    return ok
