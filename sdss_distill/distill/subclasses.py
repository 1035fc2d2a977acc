"""Subclass distillation (Mueller, Kornblith & Hinton 2020, "Subclass distillation"): the
teacher learns finer classes than the task's, and the student distils the distribution over
those subclasses, which carries more information per example than three class probabilities.

Here the subclasses are known, not discovered: class x redshift bin, the bins being quantiles
of the redshift within each class over the teacher-train rows only. The teacher reads the
redshift, so its subclass distribution passes on what the redshift says (Lopez-Paz et al.
2016's privileged information) in more detail than the class alone. Either model predicts a
class by summing its subclass probabilities (`models.mlp.SubclassSum`). The student's loss is

    (1 - alpha) * CE(y, log sum_j softmax(s)_cj) + alpha * T^2 * KL(softmax(t/T) || softmax(s/T))

with s, t the student's and teacher's subclass logits (the KL over all 3 x bins subclasses).
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

from sdss_distill.core.schema import LABELS
from sdss_distill.data.table import labels
from sdss_distill.distill import formula
from sdss_distill.distill.distillers import OfflineDistiller
from sdss_distill.distill.losses import OPS, TemperatureKL
from sdss_distill.models.mlp import SubclassSum

REDSHIFT = "redshift"


def redshift_edges(df: pd.DataFrame, rows: np.ndarray, bins: int) -> np.ndarray:
    """(classes, bins - 1) inner bin edges: per class, the redshift quantiles 1/bins, 2/bins,
    ... of `rows` (pass the teacher-train rows, never test rows). A class absent from `rows`
    gets edges at +inf (every row in bin 0)."""
    sub = df.loc[rows]
    y, z = labels(sub), sub[REDSHIFT].to_numpy("float64")
    edges = np.full((len(LABELS), bins - 1), np.inf)
    for c in range(len(LABELS)):
        if (y == c).any() and bins > 1:
            edges[c] = np.quantile(z[y == c], np.arange(1, bins) / bins)
    return edges


def subclass_labels(df: pd.DataFrame, edges: np.ndarray) -> np.ndarray:
    """Subclass index class * bins + bin of every row of `df` (bin j: edges[j-1] <= z <
    edges[j]); class-major, as `SubclassSum` groups them."""
    y, z = labels(df), df[REDSHIFT].to_numpy("float64")
    bins = edges.shape[1] + 1
    which = np.zeros(len(y), "int32")
    for c in range(len(LABELS)):
        which[y == c] = np.searchsorted(edges[c], z[y == c], side="right")
    return (y * bins + which).astype("int32")


def describe_bins(edges: np.ndarray) -> dict:
    """The edges as the report records them: {class: [edges]}."""
    return {label: [float(e) for e in row] for label, row in zip(LABELS, edges)}


class SubclassDistiller(OfflineDistiller):
    """Trains a student that emits subclass logits: the hard term on the class logits (summed
    subclass probabilities, `SubclassSum`), the soft term on the subclasses against
    precomputed teacher subclass logits `x["soft"]`. alpha = 0 is hard-label training through
    the sum. An `OfflineDistiller` whose student loss reads the class logits; `train` hands
    the engine the same loss with its `per_class`."""

    def __init__(self, student: keras.Model, per_class: int, *, alpha: float,
                 soft_loss: TemperatureKL, **kwargs):
        super().__init__(student, alpha=alpha, losses=[soft_loss], **kwargs)
        self.per_class = int(per_class)
        self.head = SubclassSum(per_class)
        self.head.build((None, len(LABELS) * per_class))  # weightless; built, so fit need not

    def class_loss(self, y, subclass_logits):
        """CE of the labels under the summed subclass probabilities (the hard term)."""
        return keras.ops.mean(formula.hard_term(OPS, y, self.head(subclass_logits)))

    def compile(self, optimizer="adam", **kwargs):
        kwargs.setdefault("loss", self.class_loss)
        kwargs.setdefault("metrics", [])  # accuracy is on class logits: see the engine's history
        super().compile(optimizer=optimizer, **kwargs)
