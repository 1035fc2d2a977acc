"""An arm: a named model (or combination of models) a method returns, with its role in the
comparison. Every arm is evaluated, reported and saved alike (runs/pipeline.py).

Its own module, below both the workspace and the toolbox that methods build arms with
(`distill/toolbox.py`), so neither imports the other for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np
import pandas as pd

from sdss_distill.core.schema import View
from sdss_distill.data.table import features
from sdss_distill.distill.fit import Fitted
from sdss_distill.models.mlp import logits


@dataclass
class Arm:
    """A named model a method produced, with its role in the comparison.

    role: teacher | student | baseline | assistant | member | combination. `model` is saved
    and can be exported; `combine` (for a majority vote) computes logits from other arms.
    """

    name: str
    role: str
    view: View
    rows: str
    model: keras.Model | None = None
    fitted: Fitted | None = None
    combine: Callable[[pd.DataFrame], np.ndarray] | None = None
    parameters: int | None = None
    notes: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.parameters is None and self.model is not None:
            self.parameters = int(self.model.count_params())

    def record(self) -> dict:
        """What a report says of the arm before its scores: role, view, rows, size, fit."""
        return {"role": self.role, "view": self.view.name, "rows": self.rows,
                "parameters": self.parameters,
                "epochs": self.fitted.epochs if self.fitted else None,
                "train_s": round(self.fitted.seconds, 2) if self.fitted else None}

    def logits(self, df: pd.DataFrame) -> np.ndarray:
        if self.combine is not None:
            return self.combine(df)
        return logits(self.model, features(df, self.view))
