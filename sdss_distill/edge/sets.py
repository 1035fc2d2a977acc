"""Prediction sets on the edge (issue 24): the conformal thresholds a model card stores for a
level, and each row's set as class names joined by `+`. numpy + core only, so a device, the
catalogue scorer and export apply the same thresholds (the C build's header holds the same
numbers for the export's level)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sdss_distill.core import conformal
from sdss_distill.core.errors import InputError
from sdss_distill.edge.classifier import interpreter


def thresholds(card: dict, where: Path | str, level, labels) -> np.ndarray:
    """Per class the threshold on 1 - p for `level`, from the card's calibration material;
    an InputError naming the card when the level is out of range or there is no material."""
    try:
        level = conformal.check_level(level)
    except ValueError as e:
        raise InputError(str(e)) from None
    cal = card.get("calibration")
    material = cal.get("conformal") if isinstance(cal, dict) else None
    if not isinstance(material, dict):
        raise InputError(f"{where}: the model card has no calibration material for --sets "
                         f"(student files exported by this version carry it); re-export the "
                         f"model (python -m sdss_distill.export --run RUN; a run trained "
                         f"before prediction sets must be trained again first)")
    try:
        return conformal.thresholds_from(material, level, labels)
    except ValueError as e:
        raise InputError(f"{where}: {e}") from None
    except (KeyError, TypeError, IndexError):
        raise InputError(f"{where}: corrupt calibration material in the model card; "
                         f"re-export the model") from None


def names(probabilities: np.ndarray, q: np.ndarray, labels) -> np.ndarray:
    """Each row's set: class names joined by `+` in label order; an empty set (or a row that
    was not classified) is an empty string."""
    return conformal.names(conformal.sets(probabilities, q), labels)


def logits_of(content: bytes, name: str, x: np.ndarray) -> np.ndarray:
    """A .tflite flatbuffer's outputs on float rows (every row in one call)."""
    interp = interpreter(content, Path(name), 1)
    inp, out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    interp.resize_tensor_input(inp, list(x.shape))
    interp.allocate_tensors()
    interp.set_tensor(inp, np.ascontiguousarray(x, np.float32))
    interp.invoke()
    return interp.get_tensor(out)
