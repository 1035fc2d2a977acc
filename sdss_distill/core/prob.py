"""Probabilities from logits, in numpy: the one softmax of the edge runtime, the catalogue
scorer and the figures (float64, shifted by the row maximum so exp never overflows)."""

from __future__ import annotations

import math

import numpy as np


def softmax(z, axis: int = -1) -> np.ndarray:
    """exp(z) / sum exp(z) along `axis`, in float64."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(z, axis: int = -1) -> np.ndarray:
    """log(softmax(z)) along `axis`, in float64, without exp underflowing to log(0)."""
    z = np.asarray(z, dtype=np.float64)
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax_row(z) -> list[float]:
    """`softmax` of one row of logits in Python floats, the same formula: for a handful of
    numbers a numpy call costs more than the arithmetic (the edge runtime's one-row call)."""
    top = max(z)
    e = [math.exp(v - top) for v in z]
    total = sum(e)
    return [v / total for v in e]


def fractions(y: np.ndarray, k: int) -> np.ndarray:
    """Class fractions of integer labels 0..k-1."""
    counts = np.bincount(np.asarray(y), minlength=k).astype(np.float64)
    if counts.sum() == 0:
        raise ValueError("fractions: no labels given")
    return counts / counts.sum()
