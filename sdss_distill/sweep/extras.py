"""Extra evaluations a sweep can ask of every cell (`run_sweep(..., options=...)`):

- `by_sample`: every arm scored on the test rows of each sample of the combined dataset
  (bright, faint) as well as on all of them;
- `reference`: a scikit-learn HistGradientBoostingClassifier on u g r i z and the four
  adjacent colours, fitted on the rows the cell's student trained on (its fit and
  early-stopping rows together), scored on the same test rows: a strong non-neural
  photometric reference, not distilled.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from sdss_distill.core.schema import BANDS, SAMPLE, STUDENT, colour_pairs
from sdss_distill.data.table import labels
from sdss_distill.distill.metrics import classification

OPTIONS = ("by_sample", "reference")
REFERENCE = "hgb"
KEPT = ("test_accuracy", "test_log_loss", "test_ece", "macro_f1")


def photometric_features(df: pd.DataFrame) -> np.ndarray:
    """u g r i z and the colours u-g, g-r, r-i, i-z."""
    mags = df[list(BANDS)].to_numpy("float64")
    a, b = np.asarray(colour_pairs(BANDS)).T  # core.schema: the one definition of the colours
    return np.concatenate([mags, mags[:, a] - mags[:, b]], axis=1)


def fit_reference(df: pd.DataFrame, rows: np.ndarray, seed: int):
    """The HistGradientBoostingClassifier reference, fitted on `rows` (scikit-learn defaults)."""
    model = HistGradientBoostingClassifier(random_state=seed)
    return model.fit(photometric_features(df.loc[rows]), labels(df.loc[rows]))


def reference_logits(model, df: pd.DataFrame) -> np.ndarray:
    """Log-probabilities in LABELS order (a class the model never saw gets ~0 probability)."""
    p = np.full((len(df), 3), 1e-9)
    p[:, model.classes_] = model.predict_proba(photometric_features(df))
    return np.log(p / p.sum(axis=1, keepdims=True)).astype("float32")


def test_parts(test: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """{'all': test rows, and per sample when the table has several: bright, faint}."""
    parts = {"all": test}
    if SAMPLE in test.columns and test[SAMPLE].nunique() > 1:
        for sample, rows in test.groupby(test[SAMPLE].astype(str), sort=True):
            parts[sample] = rows
    return parts


def extra_results(options: dict, ws, arms: list, prepared) -> dict:
    """What the options ask for, as keys of the cell's JSON document ({} for none)."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"unknown sweep option(s) {', '.join(unknown)}; valid: {', '.join(OPTIONS)}")
    if not any(options.values()):
        return {}
    test = prepared.df.loc[prepared.split.test]
    scorers = {arm.name: arm.logits for arm in arms}
    out = {}
    if options.get("reference"):
        student = next(a for a in arms if a.name == STUDENT)
        model = ws.cache.once((REFERENCE, student.rows),
                         lambda: fit_reference(ws.df, ws.rows(student.rows), ws.seed))
        scorers[REFERENCE] = lambda df: reference_logits(model, df)
        out["reference"] = {"model": "sklearn HistGradientBoostingClassifier (defaults)",
                            "features": [*BANDS, "u-g", "g-r", "r-i", "i-z"],
                            "rows": student.rows, "train_rows": int(len(ws.rows(student.rows)))}
    parts = test_parts(test) if options.get("by_sample") else {"all": test}
    out["by_sample"] = {name: {model: _scores(classification(labels(df), score(df)), len(df))
                               for model, score in scorers.items()}
                        for name, df in parts.items()}
    return out


def _scores(metrics: dict, rows: int) -> dict:
    return {"rows": int(rows), **{k: metrics[k] for k in KEPT}}
