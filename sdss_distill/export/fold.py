"""A student's affine front (colours, normalisation) folded into its first Dense layer: plain
Dense kernels and biases on raw magnitudes, in numpy. Export and the QAT child both start here."""

from __future__ import annotations

import numpy as np

from sdss_distill.core.zphot import HEAD

FRONT_LAYER = "dense_0"
"""The first Dense layer of a folded student: it reads raw magnitudes and stays float32 in int8
files (magnitudes quantized to int8 steps of ~0.07 mag would wipe out the colours)."""


def fold_student(student) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Dense kernels and biases of an equivalent plain MLP on raw magnitudes (float64 algebra).

    SkyFeatures (x -> [x, x @ D]) and Normalization ((f - mean) / std) are affine, so they
    fold into dense_0: W' = F diag(1/std) W0, b' = b0 - (mean / std) W0 with F = [I | D].
    """
    features = student.get_layer("features")
    if any(features.asinh_scales):
        raise ValueError("the student's features use asinh (non-linear); cannot fold them")
    norm = student.get_layer("normalize")
    mean = np.asarray(norm.mean, "float64").reshape(-1)
    std = np.maximum(np.sqrt(np.asarray(norm.variance, "float64").reshape(-1)), 1e-7)
    diff = features.colour_matrix()
    f = np.concatenate([np.eye(len(diff)), diff], axis=1)
    dense = [layer for layer in student.layers
             if layer.__class__.__name__ == "Dense" and layer.name != HEAD]
    kernels = [np.asarray(d.kernel, "float64") for d in dense]
    biases = [np.asarray(d.bias, "float64") for d in dense]
    kernels[0], biases[0] = (f / std) @ kernels[0], biases[0] - (mean / std) @ kernels[0]
    return [k.astype("float32") for k in kernels], [b.astype("float32") for b in biases]


def fold_head(student) -> tuple[np.ndarray, np.ndarray] | None:
    """The redshift head's (kernel, bias) as float32 (it reads the last hidden layer, so
    folding the front leaves it unchanged), or None for a student without one."""
    heads = [layer for layer in student.layers if layer.name == HEAD]
    if not heads:
        return None
    return (np.asarray(heads[0].kernel, "float32"), np.asarray(heads[0].bias, "float32"))


def mlp_logits(kernels, biases, x: np.ndarray) -> np.ndarray:
    """The folded MLP in numpy (ReLU between layers), to check the folding."""
    h = np.asarray(x, "float64")
    for k, (w, b) in enumerate(zip(kernels, biases)):
        h = h @ w + b
        if k < len(kernels) - 1:
            h = np.maximum(h, 0.0)
    return h
