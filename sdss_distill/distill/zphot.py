"""The student's redshift head (issue 24 item 1): the spectroscopic redshift, the teacher's
privileged column, as a second target of the default student, trained beside its class head in
the JAX engine (`jax_fit.Loss.z_weight`), and its scores on a run's rows.

The class part of the loss is unchanged; the head is a Dense(1) on the last hidden layer
predicting log(1 + z) (core.zphot). `z_phot_err = k (1 + z_phot)`: k is fitted on the
split's calibration slice (no model fitted or stopped on it; the student's early-stopping rows
for a split without one), galaxies only, so that about 68 % of them fall within it; the arm's
notes carry k, and the model card too.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pandas as pd

from sdss_distill.core import zphot
from sdss_distill.core.schema import LABELS, STUDENT
from sdss_distill.data.table import features, labels
from sdss_distill.distill import jax_fit
from sdss_distill.distill.arm import Arm
from sdss_distill.distill.cache import fit_settings
from sdss_distill.distill.distillers import OfflineDistiller
from sdss_distill.distill.fit import Fitted
from sdss_distill.distill.losses import soft_loss
from sdss_distill.models.mlp import build_mlp, has_z_head, redshift

Z_COLUMN = "redshift"
"""The table's spectroscopic redshift: the head's target (and the teacher's privileged input)."""

FIT_CLASS = "GALAXY"
"""The class whose rows z_phot_err is fitted on (and the Done-when's sigma_NMAD is quoted for)."""


def student(ws, cfg, rows: str, soft: tuple[np.ndarray, np.ndarray], weight: float):
    """A student with a redshift head, offline-distilled on `rows` from `soft` (fit part,
    early-stopping part) as `Workspace.student` does, plus alpha * `weight` * the head's Huber
    loss: the redshift is privileged information as the soft labels are, so both terms sit
    under alpha (jax_fit._terms), and alpha = 0 trains the class head as the baseline. Same
    initial weights as the head-less student for every shared layer (the head is built
    last). Returns its Arm, with notes {"zphot": {"weight", "error_scale"}}."""
    settings = fit_settings(cfg)
    (x, y), (x_val, y_val) = ws.arrays(rows, ws.student_view)
    fit_rows, val_rows = ws.fit_rows(rows)
    keras.utils.set_random_seed(ws.seed)  # as Workspace.new_model: the same initial weights
    model = build_mlp(ws.student_view, tuple(cfg.student_hidden), x, name=STUDENT, z_head=True)
    z_fit, z_val = (zphot.target(ws.df.loc[r, Z_COLUMN]) for r in (fit_rows, val_rows))
    xs = np.concatenate([x, x_val])
    ys = np.concatenate([y, y_val])
    ss = np.concatenate([np.column_stack([soft[0], z_fit]), np.column_stack([soft[1], z_val])])
    train = (np.arange(len(xs)) < len(x))[:, None]
    # the loss the student's OfflineDistiller holds, plus the head's term (under alpha)
    distiller = OfflineDistiller(model, alpha=cfg.alpha,
                                 losses=[soft_loss(cfg.soft_loss, cfg.temperature)])
    loss = dataclasses.replace(distiller.engine_loss(), z_weight=float(weight))
    epochs, seconds, history = jax_fit.fit_members(
        [model], xs, ys, train, ~train, settings, loss=loss, soft=ss.astype("float32"),
        projection=model.get_layer(zphot.HEAD))
    fitted = ws.timed(f"{STUDENT} (+ redshift head)", Fitted(epochs, seconds, history))
    k = error_scale(model, ws.df.loc[ws.split.calibrating(val_rows)], ws.student_view)
    return Arm(STUDENT, STUDENT, ws.student_view, rows, model, fitted,
               notes={"zphot": {"weight": float(weight), "error_scale": k}})


def _galaxies(df: pd.DataFrame) -> pd.DataFrame:
    return df[labels(df) == LABELS.index(FIT_CLASS)]


def error_scale(model, df: pd.DataFrame, view) -> float:
    """k of z_phot_err = k (1 + z_phot), fitted on the galaxies of `df` (core.zphot.error_scale)."""
    gal = _galaxies(df)
    z_phot = zphot.from_output(redshift(model, features(gal, view)))
    return zphot.error_scale(z_phot, gal[Z_COLUMN].to_numpy("float64"))


def scores(model, df: pd.DataFrame, view, k: float) -> dict | None:
    """The head's quality on `df` (a run's test rows): per class and overall {n, sigma_nmad,
    bias, outliers, coverage of z_phot_err}; None for a model without a redshift head."""
    if model is None or not has_z_head(model):
        return None
    z_phot = zphot.from_output(redshift(model, features(df, view)))
    z_spec = df[Z_COLUMN].to_numpy("float64")
    y = labels(df)
    out = {"error_scale": float(k)}
    for name, mask in [("all", np.ones(len(df), bool))] + [(c, y == i) for i, c in enumerate(LABELS)]:
        q = zphot.quality(z_phot[mask], z_spec[mask])
        q["coverage"] = (float(zphot.covered(z_phot[mask], z_spec[mask], k).mean())
                         if mask.any() else float("nan"))
        out[name] = q
    out["histogram"] = histogram(z_spec, z_phot, y)
    return out


HISTOGRAM_BINS = 60
HISTOGRAM_RANGE = {"GALAXY": 1.0, "QSO": 5.0, "STAR": 0.5}
"""Upper z of each class's z_spec x z_phot histogram (report.json; the run's zphot figure)."""


def histogram(z_spec, z_phot, y) -> dict:
    """Per class, the 2-D histogram of (z_spec, z_phot) on [0, top]^2 in HISTOGRAM_BINS bins
    a side, sparse: {"top", "bins", "cells": [[i_spec, j_phot, count], ...]} (values beyond
    `top` fall in the last bin), so the figure is drawn from the report alone."""
    out = {}
    for i, name in enumerate(LABELS):
        top = HISTOGRAM_RANGE[name]
        zs, zp = (np.clip(np.asarray(a)[y == i], 0, top * (1 - 1e-9)) for a in (z_spec, z_phot))
        counts, _, _ = np.histogram2d(zs, zp, bins=HISTOGRAM_BINS, range=[[0, top], [0, top]])
        cells = np.argwhere(counts > 0)
        out[name] = {"top": top, "bins": HISTOGRAM_BINS,
                     "cells": [[int(a), int(b), int(counts[a, b])] for a, b in cells]}
    return out


def predictions(model, df: pd.DataFrame, view) -> np.ndarray:
    """z_phot of every row of `df` (for the per-run figure's CSV)."""
    return zphot.from_output(redshift(model, features(df, view)))
