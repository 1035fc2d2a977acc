"""The edge classifier: a LiteRT model with its card and labels, numpy + ai_edge_litert only.

    from sdss_distill.edge.classifier import EdgeClassifier
    clf = EdgeClassifier("student_int8.tflite")
    result = clf.predict([[19.4, 17.0, 15.9, 15.5, 15.2]])   # or a DataFrame
    result.classes, result.probabilities, result.in_domain, result.ok, result.quality

A model ships with `labels.txt` and a model card `<model>.json` next to it (written by
`python -m sdss_distill.export`): its input columns, labels and the training domain.
Never imports TensorFlow, Keras, pandas or scikit-learn.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sdss_distill.core.bounded import decode_utf8, load_json, read_bounded
from sdss_distill.core.cli import program
from sdss_distill.core.domain import Domain
from sdss_distill.core.errors import InputError, listing
from sdss_distill.core.io import quiet_native_stderr
from sdss_distill.core.prob import softmax_row
from sdss_distill.core.quality import check_columns, check_values, header_positions, value_bounds
from sdss_distill.core.schema import LABELS, SENTINEL, SIGNATURE
from sdss_distill.core.zphot import HEAD, decode32, decode32_one
from sdss_distill.edge import verify

PROG = program("edge")

LABELS_FILE = "labels.txt"
_CHUNK = 4096
MAX_MODEL_BYTES = 256 << 20


def card_path(model: Path) -> Path:
    """The model card that travels with a model: same name, `.json`."""
    return Path(model).with_suffix(".json")


def interpreter(content: bytes, path: Path, threads: int | None):
    from ai_edge_litert.interpreter import Interpreter
    if len(content) < 8 or content[4:8] != b"TFL3":
        raise InputError(f"{path}: not a LiteRT/TFLite model (no TFL3 flatbuffer identifier); "
                         f"pass a .tflite file written by sdss_distill.export")
    try:
        with quiet_native_stderr(replay_on_error=False):  # "INFO: Created ... XNNPACK delegate"
            interpreter = Interpreter(model_content=content, num_threads=threads)
            interpreter.allocate_tensors()
        return interpreter
    except (ValueError, RuntimeError) as e:
        raise InputError(f"{path}: cannot load the model ({str(e).strip().splitlines()[0]}); "
                         f"the file may be truncated or corrupt, re-export it") from None


def logits_index(interp) -> int:
    """The tensor index of a LiteRT interpreter's class logits: its only output, or the one its
    signature names 'logits' (a student with a redshift head has two outputs, in no fixed order)."""
    details = interp.get_output_details()
    if len(details) == 1:
        return details[0]["index"]
    return interp.get_signature_runner(SIGNATURE).get_output_details()["logits"]["index"]


@dataclass
class Prediction:
    """Per-row results; `classes[k]` is the label with the highest probability.

    A row whose values no model may see (missing, sentinel, non-finite, too large for
    float32, outside the physical range) is not run through the model: `ok[k]` is False,
    `quality[k]` says why ("value 1e+39 ... in column 'u'"), `classes[k]` is "" and its
    probabilities and logits are NaN. `quality[k]` is "" for every good row.

    `classes` and `quality` are numpy string arrays, `probabilities` and `logits` float32
    (probabilities as `score` writes them: the softmax in float32).
    """

    classes: np.ndarray
    probabilities: np.ndarray
    logits: np.ndarray
    in_domain: np.ndarray
    labels: tuple[str, ...]
    quality: np.ndarray
    z_phot: np.ndarray | None = None
    """Photometric redshift per row (float32; NaN where not `ok`), or None for a model without
    a redshift head; `z_phot_err` its 68 % band half-width, k (1 + z_phot) (core.zphot)."""
    z_phot_err: np.ndarray | None = None

    @property
    def ok(self) -> np.ndarray:
        return self.quality == ""


class EdgeClassifier:
    """A LiteRT classifier with its labels, input columns and training domain.

    `predict` on one row costs a few times the LiteRT call itself (`edge bench` measures
    both): one good row takes a scalar path, and the input tensor is resized only when the
    number of rows changes. Not thread-safe (one interpreter): one per thread.
    """

    z_name: str | None = None
    """The redshift head's output (core.zphot.HEAD), None for a model without one."""
    z_scale: float = float("nan")
    """k of z_phot_err = k (1 + z_phot), from the card."""
    _z_out: int | None = None
    _z_last: list = []

    def __init__(self, path, *, num_threads: int | None = 1):
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such model file")
        if self.path.stat().st_size > MAX_MODEL_BYTES:
            raise InputError(f"{self.path}: {self.path.stat().st_size:,} bytes, larger than any "
                             f"model sdss_distill exports; pass the .tflite written by export")
        content = self.path.read_bytes()
        self.interpreter = interpreter(content, self.path, num_threads)
        signatures = self.interpreter.get_signature_list()
        if SIGNATURE not in signatures:
            raise InputError(f"{self.path}: no {SIGNATURE!r} signature (found "
                             f"{listing(signatures) or 'none'}); re-export the model")
        runner = self.interpreter.get_signature_runner(SIGNATURE)
        (self.input_name,) = signatures[SIGNATURE]["inputs"]
        self.output_name, self.z_name = _output_names(self.path, signatures[SIGNATURE]["outputs"])
        self.card = read_card(self.path)
        self.columns = tuple(self.card["input"]["columns"])
        shape = runner.get_input_details()[self.input_name]["shape"]
        verify.check_card(self.card, card_path(self.path), int(shape[-1]) if len(shape) else None)
        out_shape = runner.get_output_details()[self.output_name]["shape"]
        verify.check_outputs(self.card.get("labels", LABELS), card_path(self.path),
                             int(out_shape[-1]) if len(out_shape) else None)
        verify.check_provenance(self.card, card_path(self.path), content)
        labels_file = self.path.parent / LABELS_FILE
        verify.check_in_run(self.path, content, card_path(self.path).read_bytes(), self.card,
                            labels_file if labels_file.is_file() else None)
        self._tensors(runner)
        self.setup(self.columns, _read_labels(self.path, tuple(self.card.get("labels", LABELS))),
                   self.card.get("domain", {}))

    def setup(self, columns: tuple[str, ...], labels: tuple[str, ...], domain: dict) -> None:
        """What `predict` needs besides the model: input columns, labels, training domain,
        laid out once for the per-call checks (a subclass with another model calls this)."""
        self.columns, self.labels, self.domain = tuple(columns), tuple(labels), domain
        self._domain = Domain(self.columns, self.domain)
        self._lo, self._hi = value_bounds(self.columns)
        self._lo_col, self._hi_col = (np.array(v)[:, None] for v in (self._lo, self._hi))
        # one row takes the scalar path when every value passes check_values and lies where
        # Domain.row is exact (SENTINEL, far below, is then excluded too)
        fast = (max(max(self._lo), Domain.ROW_RANGE[0]), min(min(self._hi), Domain.ROW_RANGE[1]))
        self._fast = fast if fast[0] > SENTINEL else (np.inf, -np.inf)
        # the domain's float32 column bounds strictly inside bounds that are float32 numbers:
        # a row whose columns lie in the domain then passes check_values (rounding to float32
        # is monotone; NaN fails every comparison), and only the others are checked
        dom_lo, dom_hi = self._domain.column_bounds32()
        exact = all(float(np.float32(b)) == b for b in (*self._lo, *self._hi))
        self._inside_is_good = (exact and min(self._lo) > SENTINEL
                                and all(map(operator.lt, self._lo, dom_lo))
                                and all(map(operator.lt, dom_hi, self._hi)))
        self._names = np.array(self.labels, dtype=str)  # classes by indexing: no Python loop

    def _tensors(self, runner) -> None:
        """The signature's input and output tensor indices, set and read directly: the
        signature runner resizes and re-allocates the tensors on every call (most of a
        one-row call's time), here only when the number of rows changes."""
        details = self.interpreter.get_input_details()
        self._in = runner.get_input_details()[self.input_name]["index"]
        self._out = runner.get_output_details()[self.output_name]["index"]
        self._z_out = (None if self.z_name is None
                       else runner.get_output_details()[self.z_name]["index"])
        self._z_last: list[np.ndarray] = []
        self.z_scale = float((self.card.get("zphot") or {}).get("error_scale", float("nan")))
        if [d["index"] for d in details] != [self._in]:
            raise InputError(f"{self.path}: expected one input tensor in one subgraph, found "
                             f"{len(details)}; re-export the model with sdss_distill.export")
        self._shape = tuple(int(n) for n in details[0]["shape"])

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        """Logits of float32 rows (at most _CHUNK), resizing the input only for a new shape."""
        if x.shape != self._shape:
            self.interpreter.resize_tensor_input(self._in, list(x.shape))
            self.interpreter.allocate_tensors()
            self._shape = x.shape
        self.interpreter.set_tensor(self._in, x)
        self.interpreter.invoke()
        if self._z_out is not None:  # the redshift head's rows, read by `_attach_z`
            self._z_last.append(self.interpreter.get_tensor(self._z_out)[:, 0])
        return self.interpreter.get_tensor(self._out)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Raw model outputs for float rows in `self.columns` order."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        self._z_last = []
        if not len(x):
            return np.zeros((0, len(self.labels)), np.float32)
        if len(x) <= _CHUNK:
            return self._invoke(x)
        return np.concatenate([self._invoke(x[k:k + _CHUNK]) for k in range(0, len(x), _CHUNK)])

    def as_array(self, rows) -> np.ndarray:
        """Rows as a float64 (n, columns) array; a DataFrame's columns are matched by name
        (two names for one column are an InputError naming both)."""
        if hasattr(rows, "columns") and hasattr(rows, "to_numpy"):
            found = header_positions([str(c) for c in rows.columns], source="DataFrame")
            check_columns(found, self.columns, source="DataFrame", header=list(rows.columns))
            rows = _frame_values(rows, [found[c] for c in self.columns])
        try:
            x = np.asarray(rows, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise InputError(f"rows must be numbers ({' '.join(self.columns)}); "
                             f"{str(e).splitlines()[0]}") from None
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != len(self.columns):
            raise InputError(f"expected rows of {len(self.columns)} values "
                             f"({' '.join(self.columns)}), got an array of shape {x.shape}")
        return x

    def in_domain(self, x: np.ndarray) -> np.ndarray:
        """True where every column and colour lies inside the training rows' ranges."""
        return self._domain.rows(x)

    def good_rows(self, x: np.ndarray) -> np.ndarray:
        """True for the rows `check_values` passes (quality.value_bounds), in a few array
        operations on contiguous columns: the reasons are asked for only when a row fails."""
        xt = np.ascontiguousarray(x.T)
        with np.errstate(invalid="ignore"):
            return ((xt >= self._lo_col) & (xt <= self._hi_col) & (xt != SENTINEL)).all(axis=0)

    def predict(self, rows) -> Prediction:
        """Class, probabilities and in-domain flag for each row (array or DataFrame); rows
        with values no model may see are flagged (`ok`, `quality`), never classified.

        A batch is read once into float32 columns and colours (`Domain.layout`) for the
        domain flag; a row inside the domain passes the value checks too, so only the other
        rows are checked (`good_rows`), and `check_values` is asked why only when one fails."""
        x = self.as_array(rows)
        if len(x) == 1:
            r = x[0].tolist()  # finite sum: no NaN or inf, so min and max are well defined
            if math.isfinite(sum(r)) and self._fast[0] <= min(r) and max(r) <= self._fast[1]:
                return self._one(x)
        v = self._domain.layout(x)
        columns, inside = self._domain.test(v)
        if self._inside_is_good:  # a row with every column in the domain passes check_values
            ok = columns if not columns.all() else None
            if ok is not None:
                ok = ok.copy()
                ok[~columns] = self.good_rows(x[~columns])
        else:
            ok = self.good_rows(x)
        if ok is None or ok.all():
            return self._attach_z(Prediction(*self._classify(x, inside), self.labels,
                                             np.zeros(len(x), "U1")), None)
        checked = check_values(x, self.columns)
        reasons = [checked.message(k) for k in np.flatnonzero(~ok)]
        quality = np.zeros(len(x), f"U{max(map(len, reasons))}")
        quality[~ok] = reasons
        logits = np.full((len(x), len(self.labels)), np.nan, np.float32)
        p = np.full(logits.shape, np.nan, np.float32)
        classes = np.zeros(len(x), self._names.dtype)
        flags = np.zeros(len(x), bool)
        self._z_last = []
        if ok.any():
            classes[ok], p[ok], logits[ok], flags[ok] = self._classify(x[ok], inside[ok])
        return self._attach_z(Prediction(classes, p, logits, flags, self.labels, quality), ok)

    def _attach_z(self, pred: Prediction, ok: np.ndarray | None) -> Prediction:
        """`pred` with z_phot and z_phot_err from the rows the model just ran (`ok`: which rows
        of `pred` they are; None: all), NaN elsewhere; unchanged for a model without a head."""
        if self.z_name is None:
            return pred
        n = len(pred.classes)
        raw = np.concatenate(self._z_last) if self._z_last else np.zeros(0, np.float32)
        z, err = np.full(n, np.nan, np.float32), np.full(n, np.nan, np.float32)
        rows = slice(None) if ok is None else ok
        z[rows], err[rows] = decode32(raw, self.z_scale)
        pred.z_phot, pred.z_phot_err = z, err
        return pred

    def _classify(self, x: np.ndarray, inside: np.ndarray) -> tuple:
        """(classes, probabilities, logits, in-domain) of good rows and their in-domain flags.
        Softmax and argmax run in float32 on one row per class (numpy is slow along a short
        axis): softmax(z, axis=1) shifted by the row maximum, as score.batch.probabilities,
        and its argmax (the first of equal maxima); names by indexing an array of labels."""
        raw = self.logits(x)
        pt = np.array(raw.T, order="C")  # one contiguous row per class
        pt -= pt.max(axis=0)
        np.exp(pt, out=pt)
        pt /= pt.sum(axis=0)  # row by row, in class order
        if len(pt) == 1:
            return self._names.take(np.zeros(len(x), np.intp)), pt.T, raw, inside
        best = (pt[1] > pt[0]).astype(np.intp)
        if len(pt) > 2:
            top = np.maximum(pt[0], pt[1])
            for k in range(2, len(pt)):  # good rows: no NaN
                best = np.where(pt[k] > top, k, best)
                if k + 1 < len(pt):
                    np.maximum(top, pt[k], out=top)
        return self._names.take(best), pt.T, raw, inside

    def _one(self, x: np.ndarray) -> Prediction:
        """`predict` for one good row, in Python scalars where numpy calls would cost more
        than the arithmetic (the same formulas: a test compares the two paths)."""
        x32 = x.astype(np.float32)
        self._z_last = []
        raw = self._invoke(x32)  # get_tensor returns a copy
        p = softmax_row(raw[0].tolist())
        k = p.index(max(p))
        pred = Prediction(self._names[k:k + 1].copy(), np.array([p], np.float32), raw,
                          np.array([self._domain.row(x32[0].tolist())]), self.labels,
                          np.zeros(1, "U1"))
        if self._z_out is not None:
            z, err = decode32_one(self._z_last[0][0], self.z_scale)
            pred.z_phot, pred.z_phot_err = np.array([z]), np.array([err])
        return pred


def _output_names(path: Path, outputs) -> tuple[str, str | None]:
    """(class logits output, redshift head output or None) of the signature's outputs: one
    output is the logits; two are 'logits' and core.zphot.HEAD, matched by name."""
    outputs = list(outputs)
    if len(outputs) == 1:
        return outputs[0], None
    if sorted(outputs) != sorted(["logits", HEAD]):
        raise InputError(f"{path}: outputs {listing(outputs)}; expected 'logits' (and "
                         f"{HEAD!r}); re-export the model with sdss_distill.export")
    return "logits", HEAD


def _frame_values(frame, positions: list[int]) -> np.ndarray:
    """The DataFrame's columns at `positions` as float64; a column that is not numbers is an
    InputError naming it and its first bad value."""
    try:
        return frame.iloc[:, positions].to_numpy(dtype="float64")
    except (TypeError, ValueError):
        pass
    for k in positions:
        for value in frame.iloc[:, k].tolist():
            try:
                float(value)
            except (TypeError, ValueError):
                raise InputError(f"DataFrame column {str(frame.columns[k])!r}: value {value!r} "
                                 f"is not a number; pass magnitudes as numbers (NaN for "
                                 f"missing)") from None
    raise InputError(f"DataFrame columns {listing([frame.columns[k] for k in positions])}: "
                     f"cannot convert to float64; pass magnitudes as numbers")


def read_card(model: Path) -> dict:
    """The model card: JSON with `input.columns` (a list of names); errors name the file."""
    path = card_path(model)
    fix = "re-export the model (python -m sdss_distill.export) and copy both files"
    try:
        card = load_json(path, fix=fix)
    except FileNotFoundError:
        raise InputError(f"{path}: model card not found; copy it along with {model.name} "
                         f"(sdss_distill.export writes both)") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror})") from None
    ok = isinstance(card, dict) and isinstance(card.get("input"), dict)
    columns = card["input"].get("columns") if ok else None
    if not ok or columns is None:
        raise InputError(f"{path}: model card lacks 'input.columns'; {fix}")
    if (not isinstance(columns, list) or not columns
            or not all(isinstance(c, str) for c in columns)):
        raise InputError(f"{path}: 'input.columns' must be a list of column names; {fix}")
    labels = card.get("labels", list(LABELS))
    if not isinstance(labels, list) or not all(isinstance(c, str) for c in labels):
        raise InputError(f"{path}: 'labels' must be a list of class names; {fix}")
    if not isinstance(card.get("domain", {}), dict):
        raise InputError(f"{path}: 'domain' must be a mapping; {fix}")
    verify.check_card(card, path)
    return card


def _read_labels(model: Path, default: tuple[str, ...]) -> tuple[str, ...]:
    path = model.parent / LABELS_FILE
    if not path.is_file():
        return default
    fix = "re-export the model or save the file as UTF-8"
    text = decode_utf8(read_bounded(path, fix=fix), path, fix)
    labels = tuple(line.strip() for line in text.splitlines() if line.strip())
    if labels != default:
        raise InputError(f"{path}: labels {listing(labels)} differ from the model card's "
                         f"{listing(default)}; re-export the model")
    return labels
