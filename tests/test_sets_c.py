"""The C build's sdss_set() against the edge runtime: the header holds the card's thresholds
for the export's level, and the bitmask is the edge's set on every test row's scores."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from sdss_distill.core import conformal
from sdss_distill.core.prob import softmax
from sdss_distill.core.schema import LABELS, STUDENT_VIEW, get_view
from sdss_distill.data.table import features
from sdss_distill.edge import sets as edge_sets
from sdss_distill.edge.classifier import EdgeClassifier, card_path
from sdss_distill.export import mcu
from sdss_distill.export.run import mcu_sets
from sdss_distill.runs.rows import load_run_rows
from tests.test_mcu import need

MAIN = r"""
#include <stdio.h>
#include "sdss_student.h"
int main(void) {
    float s[SDSS_N_CLASSES];
    while (scanf("%a %a %a", &s[0], &s[1], &s[2]) == 3) {
        printf("%u\n", sdss_set(s));
    }
    return 0;
}
"""


def test_sdss_set_matches_the_edge_runtime(model, tmp_path):
    need("gcc")
    sets = mcu_sets(model)
    clf = EdgeClassifier(model)
    q = edge_sets.thresholds(clf.card, card_path(model), conformal.DEFAULT_LEVEL, LABELS)
    assert sets == (conformal.DEFAULT_LEVEL, q.tolist())
    files = mcu.generate(Path(model).read_bytes(), run_id="test", sets=sets,
                         z_error_scale=(clf.card.get("zphot") or {}).get("error_scale"))
    for name in ("sdss_student.h", "sdss_student.c"):
        (tmp_path / name).write_bytes(files[name])
    assert b"#define SDSS_SET_CALIBRATED 1" in files["sdss_student.h"]
    (tmp_path / "main.c").write_text(MAIN)
    exe = tmp_path / "sets"
    subprocess.run(["gcc", "-std=c99", "-O2", "-ffp-contract=off", "-o", str(exe),
                    str(tmp_path / "main.c"), str(tmp_path / "sdss_student.c")], check=True,
                   capture_output=True)
    rows = load_run_rows(Path(model).parents[1])
    scores = clf.logits(features(rows.df.loc[rows.split.test], get_view(STUDENT_VIEW)))
    extreme = np.array([[40.0, -40.0, 0.0], [0.0, 0.0, 0.0], [np.nan, 1.0, 2.0]], np.float32)
    scores = np.concatenate([scores, extreme]).astype(np.float32)
    text = "\n".join(" ".join(float(v).hex() for v in row) for row in scores) + "\n"
    out = subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=True)
    got = np.array(out.stdout.split(), dtype=np.int64)
    expected = conformal.bitmask(conformal.sets(softmax(scores), q))
    assert len(got) == len(scores)
    assert (got == expected).all(), f"{(got != expected).sum()} rows differ"
    assert got[-1] == 0  # a NaN score: the empty set


def test_without_material_every_class_is_always_in():
    fields = mcu.set_fields(None, 3)
    assert fields["set_calibrated"] == 0 and fields["set_thresholds"] == "2.0, 2.0, 2.0"
    fields = mcu.set_fields((0.9, [0.25, float("inf"), 0.5]), 3)
    assert fields["set_thresholds"] == "0x1.0000000000000p-2, 2.0, 0x1.0000000000000p-1"
