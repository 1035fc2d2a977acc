"""One record batch of a part, scored in Arrow and numpy (no pandas): value checks, the LiteRT
model on fixed-size chunks of a once-resized interpreter, softmax and class in place, and the
output columns.

Features are held as a (columns, rows) float32 array: each input column is cast into one
contiguous row of it, the value and domain tests run on contiguous memory, and each model
chunk is transposed into the interpreter's input buffer (cache-sized, so the transpose is
free). Bad rows are classified as zeros and masked afterwards, so no good-row subset is ever
copied out and scattered back.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from sdss_distill.core.domain import in_domain
from sdss_distill.core.quality import FLOAT32_MAX, REASONS, VALUE_RANGES, check_values
from sdss_distill.core.schema import ID_COLUMNS, SENTINEL, SIGNATURE
from sdss_distill.core.zphot import decode32
from sdss_distill.edge.classifier import interpreter
from sdss_distill.score import select
from sdss_distill.score.priors import best_class, reweight_columns

QUALITY = ("ok", *REASONS)
CHUNK = 8192
"""Rows per LiteRT invoke. XNNPACK on one core (Intel Xeon, int8 student): 4,096-8,192 rows a
call run at 19 M rows/CPU-second, 262,144 at 15 M (the activations leave the cache)."""


class Model:
    """The classifier's labels, columns and domain with its own LiteRT interpreter, resized
    once to CHUNK rows (a signature call would resize and re-allocate on every call)."""

    def __init__(self, clf, content: bytes):
        self.columns, self.labels, self.domain = clf.columns, clf.labels, clf.domain
        self.interpreter = interpreter(content, clf.path, 1)
        runner = self.interpreter.get_signature_runner(SIGNATURE)
        self._in = runner.get_input_details()[clf.input_name]["index"]
        self._out = runner.get_output_details()[clf.output_name]["index"]
        # a redshift head (core.zphot): its output, read beside the logits of every chunk
        self._z_out = None if clf.z_name is None else runner.get_output_details()[clf.z_name]["index"]
        self.z_scale, self.z = clf.z_scale, None
        del runner  # it holds the interpreter's internals, which resizing refuses
        self.interpreter.resize_tensor_input(self._in, [CHUNK, len(self.columns)])
        self.interpreter.allocate_tensors()

    def logits(self, xt: np.ndarray) -> np.ndarray:
        """(labels, n) float32 logits of (columns, n) float32 features."""
        n = xt.shape[1]
        out = np.empty((len(self.labels), n), np.float32)
        inp, res = self.interpreter.tensor(self._in), self.interpreter.tensor(self._out)
        self.z = None if self._z_out is None else np.empty(n, np.float32)
        for s in range(0, n, CHUNK):
            m = min(CHUNK, n - s)
            view = inp()
            view[:m] = xt[:, s:s + m].T
            if m < CHUNK:
                view[m:] = 0
            del view  # LiteRT refuses to invoke while a view of its buffers is alive
            self.interpreter.invoke()
            out[:, s:s + m] = res()[:m].T
            if self.z is not None:
                self.z[s:s + m] = self.interpreter.get_tensor(self._z_out)[:m, 0]
        return out


def check_rows(columns: list[np.ndarray], names) -> tuple[np.ndarray, np.ndarray]:
    """(reason, column) indices per row (into QUALITY and names) from quality.check_values.

    Only rows that could fail are checked: a row inside every column's VALUE_RANGES (which
    exclude NaN, the sentinel and float32 overflow) passes every check. Column by column, in
    each column's own dtype, as numpy reduces along contiguous memory far faster than across
    a row.
    """
    n = len(columns[0]) if columns else 0
    reason, column = np.zeros(n, np.int8), np.full(n, -1, np.int8)
    ranges = [VALUE_RANGES.get(c) for c in names]
    if all(r and r[0] > SENTINEL and r[1] <= FLOAT32_MAX for r in ranges):
        inside, tmp = np.ones(n, bool), np.empty(n, bool)
        with np.errstate(invalid="ignore"):
            for values, (lo, hi) in zip(columns, ranges):
                inside &= np.greater_equal(values, lo, out=tmp)
                inside &= np.less_equal(values, hi, out=tmp)
        suspect = np.flatnonzero(~inside)
    else:
        suspect = np.arange(n)
    if len(suspect):
        checked = check_values(np.column_stack([c[suspect] for c in columns]), names)
        bad = ~checked.ok
        codes = {c: k for k, c in enumerate(QUALITY)}
        pos = {c: k for k, c in enumerate(names)}
        reason[suspect[bad]] = [codes[c] for c in checked.reason[bad]]
        column[suspect[bad]] = [pos[c] for c in checked.column[bad]]
    return reason, column


def features(batch, sources: list[str], names) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(columns, n) float32 features of a batch (bad rows zeroed) and each row's (reason,
    column) indices; `sources` are the batch's column names in model order."""
    raw = [batch.column(s).to_numpy(zero_copy_only=False) for s in sources]
    reason, column = check_rows(raw, names)
    xt = np.empty((len(raw), batch.num_rows), np.float32)
    with np.errstate(over="ignore", invalid="ignore"):  # bad rows only; zeroed below
        for k, values in enumerate(raw):
            xt[k] = values
    bad = np.flatnonzero(reason)
    if len(bad):
        xt[:, bad] = 0
    return xt, reason, column


def probabilities(model: Model, xt: np.ndarray) -> np.ndarray:
    """(labels, n) float32 softmax of the model's logits, in place (as EdgeClassifier.predict,
    shifted by the row maximum, within float32 rounding of its float64)."""
    p = model.logits(xt)
    top = p[0].copy()
    for row in p[1:]:
        np.maximum(top, row, out=top)
    p -= top
    np.exp(p, out=p)
    total = p[0].copy()
    for row in p[1:]:
        total += row
    p /= total
    return p


def _dictionary(indices: np.ndarray, values, null: int | None = None):
    mask = indices == null if null is not None else None
    return pa.DictionaryArray.from_arrays(pa.array(indices, mask=mask), pa.array(values, pa.string()))


def score_batch(model: Model, batch, part, first_row: int, weights=None, sets=None,
                selected=()):
    """One Arrow record batch of `part` in, the output batch and its stats out (bad rows
    flagged, not dropped). With `weights` (--priors), p_<label> and class are the re-weighted
    ones and p_<label>_model the model's own. `sets` and `selected` (score.select) add the
    `set` and `selected_<label>` columns from the model's own probabilities."""
    n = batch.num_rows
    xt, reason, column = features(batch, [part.columns[c] for c in model.columns], model.columns)
    bad = np.flatnonzero(reason)
    pm = probabilities(model, xt)
    p, cls = (pm, best_class(pm)) if weights is None else reweight_columns(pm, weights)
    dom = in_domain(xt.T, model.columns, model.domain)  # column views: contiguous
    mask = None
    if len(bad):
        for row in (*p, *pm):
            row[bad] = np.nan
        cls[bad], dom[bad] = -1, False
        mask = reason != 0
    cols = {c: batch.column(src) for c, src in part.columns.items() if c in ID_COLUMNS}
    cols["file"] = _dictionary(np.zeros(n, np.int32), [part.source])
    cols["row"] = pa.array(np.arange(first_row + 1, first_row + n + 1, dtype=np.int64))
    cols["class"] = _dictionary(cls, model.labels, null=-1)
    cols.update({f"p_{label}": pa.array(p[k]) for k, label in enumerate(model.labels)})
    if weights is not None:
        cols.update({f"p_{label}_model": pa.array(pm[k]) for k, label in enumerate(model.labels)})
    cols["in_domain"] = pa.array(dom, mask=mask)
    if model.z is not None:  # z_phot, z_phot_err (core.zphot.decode32), null for bad rows
        for name, values in zip(("z_phot", "z_phot_err"), decode32(model.z, model.z_scale)):
            cols[name] = pa.array(values, mask=mask)
    cols["quality"] = _dictionary(reason, QUALITY)
    cols["quality_column"] = _dictionary(column, model.columns, null=-1)
    if sets is not None or selected:
        cols.update(select.columns(pm, model.labels, sets, selected, bad))
    cols.update({out: batch.column(src) for out, src in part.keep.items()})
    counts = np.bincount(reason[bad], minlength=len(QUALITY))  # the bad rows' reasons
    stats = {"rows": n, "out_of_domain": int(n - len(bad) - np.count_nonzero(dom)),
             **{code: int(counts[k]) for k, code in enumerate(QUALITY) if k}}
    return pa.RecordBatch.from_arrays(list(cols.values()), names=list(cols)), stats
