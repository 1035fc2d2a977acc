"""`edge predict --sets`, `score --sets/--purity` and `run.predict(sets=)` on the session's
exported run: the same thresholds everywhere (the card's), one-line errors for bad values."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from sdss_distill.core.quality import check_values
from sdss_distill.core.schema import BANDS, LABELS
from sdss_distill.data.synth import write_catalogue
from sdss_distill.edge import cli as edge_cli
from sdss_distill.edge import sets as edge_sets
from sdss_distill.edge.classifier import EdgeClassifier, card_path
from sdss_distill.score import cli as score_cli


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    path = tmp_path_factory.mktemp("sets_cat") / "sim.parquet"
    write_catalogue(path, 1500, seed=3, bad_fraction=0.02, row_group=800)
    return path


def test_edge_predict_sets_column_is_the_cards_sets(model, tmp_path, catalogue, capsys):
    table = pq.read_table(catalogue).to_pandas()
    good = table[list(BANDS)]
    good = good[check_values(good.to_numpy(float), BANDS).ok].head(400)  # no rejected rows
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    good.to_csv(src, index=False)
    assert edge_cli.main(["predict", "--model", str(model), "--input", str(src), "--output",
                          str(out), "--sets", "0.9"]) == 0
    lines = out.read_text().splitlines()
    assert lines[0].endswith(",in_domain,z_phot,z_phot_err,set")  # the default's redshift head
    clf = EdgeClassifier(model)
    q = edge_sets.thresholds(clf.card, card_path(model), 0.9, clf.labels)
    p = clf.predict(good.to_numpy()).probabilities
    expected = edge_sets.names(p, q, clf.labels)
    got = [line.rsplit(",", 1)[1] for line in lines[1:]]
    assert got == list(expected)
    assert all(s == "" or set(s.split("+")) <= set(LABELS) for s in got)


@pytest.mark.parametrize("level,message", [("1.5", "--sets: the level must be in (0, 1)"),
                                           ("0.2", "covers levels 0.5-0.99")])
def test_edge_bad_level_is_one_line_exit_2(model, tmp_path, capsys, level, message):
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text("u,g,r,i,z\n19.4,17.0,15.9,15.5,15.2\n")
    assert edge_cli.main(["predict", "--model", str(model), "--input", str(src), "--output",
                          str(out), "--sets", level]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not out.exists()


def test_teacher_card_has_no_material(model, tmp_path, capsys):
    src = tmp_path / "in.csv"
    src.write_text("u,g,r,i,z\n19.4,17.0,15.9,15.5,15.2\n")
    teacher = model.parent / "teacher_float32.tflite"
    assert edge_cli.main(["predict", "--model", str(teacher), "--input", str(src), "--sets",
                          "0.9"]) == 2
    assert "no calibration material" in capsys.readouterr().err


@pytest.mark.parametrize("priors", ["training", "em"])
def test_score_sets_and_purity_columns(model, catalogue, scheduler, tmp_path, capsys, priors):
    out = tmp_path / "scored"
    code = score_cli.main(["--model", str(model), "--input", str(catalogue), "--output",
                           str(out), "--scheduler", scheduler, "--sets", "0.9",
                           "--purity", "QSO=0.8", "--priors", priors, "--quiet"])
    err = capsys.readouterr().err
    assert code in (0, 1)
    t = pq.ParquetDataset(sorted(out.glob("*.parquet"))).read().to_pandas()
    ok = t["quality"] == "ok"
    clf = EdgeClassifier(model)
    q = edge_sets.thresholds(clf.card, card_path(model), 0.9, clf.labels)
    own = [f"p_{c}" if priors == "training" else f"p_{c}_model" for c in LABELS]
    p = t.loc[ok, own].to_numpy(np.float64)  # the model's own probabilities, never reweighted
    agree = (t.loc[ok, "set"].astype(str).to_numpy() == edge_sets.names(p, q, LABELS)).mean()
    assert agree > 0.995  # float32 probabilities against float64 at a threshold's edge
    assert t.loc[~ok, "set"].isna().all() and t.loc[~ok, "selected_QSO"].isna().all()
    assert "selected_QSO: p_QSO >= " in err and "expected completeness" in err
    threshold = float(err.split("selected_QSO: p_QSO >= ")[1].split()[0])
    sel = t.loc[ok, "selected_QSO"].astype(bool).to_numpy()
    assert ((t.loc[ok, own[1]].to_numpy() >= threshold) == sel).mean() > 0.995
    mix = err.split("under the mix ")[1]
    if priors == "em":  # the EM estimate, not the card's training mix
        card = json.loads(card_path(model).read_text())
        assert f"QSO {card['priors']['fractions']['QSO']:.3f}" not in mix


@pytest.mark.parametrize("spec,message", [("FOO=0.9", "give CLASS=P with CLASS one of"),
                                          ("QSO=1.5", "the purity must be a number in (0, 1)"),
                                          ("QSO=0.9999", "highest expected purity is")])
def test_score_bad_purity_is_one_line_exit_2(model, catalogue, tmp_path, capsys, spec, message):
    out = tmp_path / "scored"
    assert score_cli.main(["--model", str(model), "--input", str(catalogue), "--output",
                           str(out), "--purity", spec, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not list(out.glob("*.parquet")) if out.exists() else True


def test_card_material_is_bounded(model):
    card = json.loads(card_path(model).read_text())
    cal = card["calibration"]
    assert cal["rows"]["n"] > 0
    assert all(len(v["scores"]) <= 512 for v in cal["conformal"]["classes"].values())
    assert len(card_path(model).read_bytes()) < 200_000
