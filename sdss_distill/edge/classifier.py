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

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sdss_distill.core.bounded import load_json, read_bounded
from sdss_distill.core.cli import program
from sdss_distill.core.domain import in_domain
from sdss_distill.core.errors import InputError, listing
from sdss_distill.core.io import quiet_native_stderr
from sdss_distill.core.prob import softmax
from sdss_distill.core.quality import check_columns, check_values, header_positions
from sdss_distill.core.schema import LABELS, SIGNATURE
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


@dataclass
class Prediction:
    """Per-row results; `classes[k]` is the label with the highest probability.

    A row whose values no model may see (missing, sentinel, non-finite, too large for
    float32, outside the physical range) is not run through the model: `ok[k]` is False,
    `quality[k]` says why ("value 1e+39 ... in column 'u'"), `classes[k]` is "" and its
    probabilities and logits are NaN. `quality[k]` is "" for every good row.
    """

    classes: np.ndarray
    probabilities: np.ndarray
    logits: np.ndarray
    in_domain: np.ndarray
    labels: tuple[str, ...]
    quality: np.ndarray

    @property
    def ok(self) -> np.ndarray:
        return self.quality == ""


class EdgeClassifier:
    """A LiteRT classifier with its labels, input columns and training domain."""

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
        self._runner = self.interpreter.get_signature_runner(SIGNATURE)
        (self.input_name,) = signatures[SIGNATURE]["inputs"]
        (self.output_name,) = signatures[SIGNATURE]["outputs"]
        self.card = read_card(self.path)
        self.columns = tuple(self.card["input"]["columns"])
        shape = self._runner.get_input_details()[self.input_name]["shape"]
        verify.check_card(self.card, card_path(self.path), int(shape[-1]) if len(shape) else None)
        out_shape = self._runner.get_output_details()[self.output_name]["shape"]
        verify.check_outputs(self.card.get("labels", LABELS), card_path(self.path),
                             int(out_shape[-1]) if len(out_shape) else None)
        verify.check_provenance(self.card, card_path(self.path), content)
        labels_file = self.path.parent / LABELS_FILE
        verify.check_in_run(self.path, content, card_path(self.path).read_bytes(), self.card,
                            labels_file if labels_file.is_file() else None)
        self.labels = _read_labels(self.path, tuple(self.card.get("labels", LABELS)))
        self.domain = self.card.get("domain", {})

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Raw model outputs for float rows in `self.columns` order."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if not len(x):
            return np.zeros((0, len(self.labels)), np.float32)
        return np.concatenate([self._runner(**{self.input_name: x[k:k + _CHUNK]})[self.output_name]
                               for k in range(0, len(x), _CHUNK)])

    def as_array(self, rows) -> np.ndarray:
        """Rows as a float64 (n, columns) array; a DataFrame's columns are matched by name
        (two names for one column are an InputError naming both)."""
        if hasattr(rows, "columns") and hasattr(rows, "to_numpy"):
            found = header_positions([str(c) for c in rows.columns], source="DataFrame")
            check_columns(found, self.columns, source="DataFrame", header=list(rows.columns))
            rows = rows.iloc[:, [found[c] for c in self.columns]].to_numpy(dtype="float64")
        x = np.asarray(rows, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != len(self.columns):
            raise InputError(f"expected rows of {len(self.columns)} values "
                             f"({' '.join(self.columns)}), got an array of shape {x.shape}")
        return x

    def in_domain(self, x: np.ndarray) -> np.ndarray:
        """True where every column and colour lies inside the training rows' ranges."""
        return in_domain(x, self.columns, self.domain)

    def predict(self, rows) -> Prediction:
        """Class, probabilities and in-domain flag for each row (array or DataFrame); rows
        with values no model may see are flagged (`ok`, `quality`), never classified."""
        x = self.as_array(rows)
        checked = check_values(x, self.columns)
        ok = checked.ok
        quality = np.array([checked.message(k) if not ok[k] else "" for k in range(len(x))],
                           dtype=object)
        logits = np.full((len(x), len(self.labels)), np.nan, np.float32)
        p = np.full(logits.shape, np.nan)
        classes = np.full(len(x), "", dtype=object)
        in_domain = np.zeros(len(x), bool)
        if ok.any():
            good = x[ok].astype(np.float32)
            raw = self.logits(good)
            logits[ok], p[ok] = raw, softmax(raw, axis=1)
            classes[ok] = np.asarray(self.labels, dtype=object)[p[ok].argmax(axis=1)]
            in_domain[ok] = self.in_domain(good)
        return Prediction(classes, p, logits, in_domain, self.labels, quality)


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
    try:
        text = read_bounded(path, fix="re-export the model").decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset "
                         f"{e.start}); re-export the model or save the file as UTF-8") from None
    labels = tuple(line.strip() for line in text.splitlines() if line.strip())
    if labels != default:
        raise InputError(f"{path}: labels {listing(labels)} differ from the model card's "
                         f"{listing(default)}; re-export the model")
    return labels
