"""Control: crossfit whose fold teachers saw the redshift shuffled across the training rows.

The same student, rows, loss, alpha and temperature as `crossfit`; only the teachers' redshift
is a permutation of the non-test rows' redshifts, so it carries no information about the row.
crossfit's student minus this one is the part of the gain that comes from the redshift
(`experiment --preset controls`; Provodin et al. 2024 on controls for privileged information).
"""

from __future__ import annotations

import numpy as np

from sdss_distill.distill.method import register
from sdss_distill.distill.methods.crossfit import Settings

PRIVILEGED = "redshift"


def shuffled(df, rows: np.ndarray, column: str, seed: int):
    """A copy of `df` with `column` permuted across `rows` (other rows untouched)."""
    out = df.copy()
    order = np.random.default_rng(seed).permutation(len(rows))
    out.loc[rows, column] = df.loc[rows, column].to_numpy()[order]
    return out


@register("shuffled-z", "control: crossfit, its fold teachers trained on the redshift shuffled "
          "across rows (no information in it)", Settings,
          baseline_rows=lambda settings: "non_test",
          teacher_about="teacher saw the redshift shuffled across rows", control_of="crossfit",
          isolates=("redshift", "shuffled-redshift"))
def run(ws, cfg, settings: Settings):
    if PRIVILEGED not in ws.teacher_view.columns:
        raise ValueError(f"shuffled-z needs a teacher view with {PRIVILEGED!r}; "
                         f"{ws.teacher_view.name} has {', '.join(ws.teacher_view.columns)}")
    rows = ws.rows("non_test")
    noise = ws.on_table(shuffled(ws.df, rows, PRIVILEGED, ws.seed + 3000))
    teacher, soft = noise.fold_teachers(cfg, settings.folds)
    teacher.notes["control"] = "redshift shuffled across the non-test rows"
    student = ws.student(cfg, "non_test", soft)
    return [teacher, student, ws.baseline(cfg, "non_test")]
