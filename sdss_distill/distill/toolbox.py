"""What a method builds with, beyond the workspace's arm builders: reached as `ws.tools`.

The registry imports every method module to list names, summaries and settings for
`train --help` and the config checks, so a method module imports only light modules at its
top (core, `distill.method`, numpy) and takes the engine from here when it runs: the arm
class, fit settings and the soft loss of a config, the distillers, the MLP builders (plain,
subclass, ensemble), a row set's features and labels, fold ids, the redshift-head student,
HistGradientBoosting. Each entry is the package's own function or class, not a copy: a
method's numbers are what they were when it imported them itself.

A `Toolbox` is bound to one workspace (`Workspace.tools`), whose table, views and seed the
row-set helpers read; the classes are the package's own, so a test that patches one (say
`CoTrainer.__init__`) sees every method's use of it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from sdss_distill.core.schema import View
from sdss_distill.data import table
from sdss_distill.distill import subclasses, targets, zphot
from sdss_distill.distill.arm import Arm
from sdss_distill.distill.cache import fit_settings
from sdss_distill.distill.distillers import CoTrainer, HintDistiller, OnlineDistiller
from sdss_distill.distill.fit import FitSettings, Fitted, train_teacher
from sdss_distill.distill.losses import FitNetsHint, soft_loss
from sdss_distill.models import mlp


class Toolbox:
    """The engine's pieces for one workspace's methods (`ws.tools`)."""

    # classes a method instantiates with its own arguments
    Arm = Arm
    Fitted = Fitted
    CoTrainer = CoTrainer
    OnlineDistiller = OnlineDistiller
    HintDistiller = HintDistiller
    FitNetsHint = FitNetsHint
    SubclassDistiller = subclasses.SubclassDistiller

    def __init__(self, ws):
        self.ws = ws

    # -- a config's training settings -------------------------------------------------------
    @staticmethod
    def fit_settings(cfg, *, teacher: bool = False) -> FitSettings:
        """The fit loop's settings of `cfg` (cache.fit_settings)."""
        return fit_settings(cfg, teacher=teacher)

    @staticmethod
    def soft_loss(cfg):
        """The soft term `cfg` asks for (`soft_loss`: kl or ce) at its temperature."""
        return soft_loss(cfg.soft_loss, cfg.temperature)

    @staticmethod
    def train_teacher(model, x, y, validation, settings: FitSettings) -> Fitted:
        """Hard-label training of one model (fit.train_teacher)."""
        return train_teacher(model, x, y, validation, settings)

    # -- models -----------------------------------------------------------------------------
    @staticmethod
    def logits(model, x: np.ndarray) -> np.ndarray:
        return mlp.logits(model, x)

    @staticmethod
    def ensemble_model(members: list, view: View, *, name: str):
        """One model averaging `members`' probabilities (models.mlp.ensemble_model)."""
        return mlp.ensemble_model(members, view, name=name)

    @staticmethod
    def ensemble_members(model) -> list:
        return mlp.ensemble_members(model)

    @staticmethod
    def subclass_model(subclass_mlp, per_class: int, *, name: str):
        """A subclass-logit MLP with the head summing it to class logits."""
        return mlp.subclass_model(subclass_mlp, per_class, name=name)

    @staticmethod
    def ensemble_logits(member_logits, temperature: float) -> np.ndarray:
        """The members' tempered mean probability, as logits (targets.ensemble_logits)."""
        return targets.ensemble_logits(member_logits, temperature)

    def zphot_student(self, cfg, rows: str, soft, weight: float) -> Arm:
        """A student with the redshift head (distill/zphot.py), distilled on `rows`."""
        return zphot.student(self.ws, cfg, rows, soft, weight)

    # -- rows of the workspace's table (in memory) ------------------------------------------
    def features(self, rows: np.ndarray, view: View) -> np.ndarray:
        """`view`'s columns of the table's rows `rows` (index labels)."""
        return table.features(self.ws.df.loc[rows], view)

    def labels(self, rows: np.ndarray) -> np.ndarray:
        """The class index of the table's rows `rows`."""
        return table.labels(self.ws.df.loc[rows])

    def fold_ids(self, y: np.ndarray, folds: int) -> np.ndarray:
        """A stratified fold in [0, folds) per row, on the workspace's seed: the folds its
        fold teachers use for the same rows."""
        return targets.fold_ids(y, folds, self.ws.seed)

    def by_parts(self, values: np.ndarray, rows: np.ndarray, name: str) -> tuple:
        """`values` (one per row of `rows`) split as row set `name`'s (fit rows,
        early-stopping rows) are."""
        frame = pd.DataFrame(values, index=rows)
        return tuple(frame.loc[r].to_numpy(values.dtype) for r in self.ws.fit_rows(name))

    # -- subclass labels (distill/subclasses.py) --------------------------------------------
    def redshift_edges(self, rows: np.ndarray, bins: int) -> np.ndarray:
        """Per class, `bins` redshift quantile bins of the rows `rows` (inner edges)."""
        return subclasses.redshift_edges(self.ws.df, rows, bins)

    def subclass_labels(self, rows: np.ndarray, edges: np.ndarray) -> np.ndarray:
        return subclasses.subclass_labels(self.ws.df.loc[rows], edges)

    @staticmethod
    def describe_bins(edges: np.ndarray) -> dict:
        return subclasses.describe_bins(edges)

    # -- scikit-learn models ----------------------------------------------------------------
    @staticmethod
    def gradient_boosting(seed: int) -> HistGradientBoostingClassifier:
        """scikit-learn's HistGradientBoostingClassifier at its defaults."""
        return HistGradientBoostingClassifier(random_state=seed)

    @staticmethod
    def one_thread():
        """A context of one OpenMP thread, as every model of a run has: on a busy machine
        HistGradientBoosting's threads spin-wait (11 s instead of 0.2 s for a 600-row fit on
        the shared 2-core machine)."""
        return threadpool_limits(limits=1, user_api="openmp")
