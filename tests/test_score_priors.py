"""score --priors on REAL rows: a star-heavy mix (80/15/5 STAR/GALAXY/QSO) of the DR14 test
rows of a run trained on the real table, scored with that run's int8 student."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sdss_distill.core.errors import InputError
from sdss_distill.core.schema import BANDS, LABELS
from sdss_distill.data.table import labels as label_codes
from sdss_distill.runs.rows import load_run_rows
from sdss_distill.score import cli as score_cli
from sdss_distill.score import em as score_priors
from sdss_distill.score.priors import fractions

pytestmark = pytest.mark.slow  # trains and exports a run on the real table (session fixture)
MIX = {"STAR": 0.80, "GALAXY": 0.15, "QSO": 0.05}


@pytest.fixture(scope="module")
def mix(exported_run, tmp_path_factory) -> tuple[Path, np.ndarray]:
    """Every STAR of the run's real test rows, plus GALAXY and QSO test rows drawn (seeded)
    to make an 80/15/5 mix; Parquet in row groups of 200. Returns (file, true classes)."""
    rows = load_run_rows(exported_run)
    test = rows.df.loc[rows.split.test]
    rng = np.random.default_rng(0)
    stars = test.index[test["class"] == "STAR"].to_numpy()
    n = len(stars) / MIX["STAR"]
    picked = [stars] + [rng.choice(test.index[test["class"] == c].to_numpy(),
                                   round(n * MIX[c]), replace=False) for c in ("GALAXY", "QSO")]
    index = rng.permutation(np.concatenate(picked))
    df = test.loc[index]
    table = pa.table({"objid": pa.array(index.astype(np.int64)),
                      **{b: pa.array(df[b].to_numpy(np.float64)) for b in BANDS},
                      "class": pa.array(df["class"].astype(str).to_numpy())})
    path = tmp_path_factory.mktemp("mix") / "mix.parquet"
    pq.write_table(table, path, row_group_size=200)
    return path, df["class"].astype(str).to_numpy()


def run_score(model, path, out, scheduler, *extra) -> int:
    return score_cli.main(["--model", str(model), "--input", str(path), "--output", str(out),
                       "--scheduler", scheduler, "--part-rows", "400", "--quiet", *extra])


def read(out: Path):
    table = pq.read_table(out)  # _priors.json is skipped by Parquet dataset discovery
    return table.take(np.argsort(table["row"].to_numpy()))


def accuracy(classes, truth) -> float:
    return float((np.asarray(classes, dtype=object) == truth).mean())


@pytest.fixture(scope="module")
def baseline(mix, model, scheduler, tmp_path_factory):
    out = tmp_path_factory.mktemp("training")
    assert run_score(model, mix[0], out, scheduler) == 0
    return read(out)


@pytest.fixture(scope="module")
def adapted(mix, model, scheduler, tmp_path_factory):
    out = tmp_path_factory.mktemp("em")
    assert run_score(model, mix[0], out, scheduler, "--priors", "em") == 0
    return out, read(out)


def test_card_records_training_priors_of_the_split(exported_run, model):
    card = json.loads(model.with_suffix(".json").read_text())
    rows = load_run_rows(exported_run)
    expected = fractions(label_codes(rows.df.loc[rows.split.student_train]), len(LABELS))
    assert card["priors"]["rows"] == "student_train"
    assert card["priors"]["n"] == len(rows.split.student_train)
    np.testing.assert_allclose([card["priors"]["fractions"][c] for c in LABELS], expected)


def test_em_recovers_the_mix_and_raises_accuracy(mix, adapted, baseline, model):
    path, truth = mix
    out, table = adapted
    doc = json.loads((out / "_priors.json").read_text())
    true_mix = {c: float((truth == c).mean()) for c in LABELS}
    assert doc["method"] == "em" and doc["converged"] and doc["rows"] == len(truth)
    for c in LABELS:
        assert abs(doc["estimated"][c] - true_mix[c]) < 0.02, (c, doc["estimated"], true_mix)
    card = json.loads(model.with_suffix(".json").read_text())
    assert doc["training"] == pytest.approx(card["priors"]["fractions"])
    assert doc["training_source"] == "card" and doc["applied"] == doc["estimated"]
    before = accuracy(baseline["class"].cast(pa.string()).to_pylist(), truth)
    after = accuracy(table["class"].cast(pa.string()).to_pylist(), truth)
    assert after > before, (before, after)
    # the model's own probabilities are kept, identical to a --priors training run's
    for c in LABELS:
        assert np.array_equal(table[f"p_{c}_model"].to_numpy(), baseline[f"p_{c}"].to_numpy())
    p = np.column_stack([table[f"p_{c}"].to_numpy() for c in LABELS])
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-5)
    assert table["class"].cast(pa.string()).to_pylist() == [LABELS[k] for k in p.argmax(1)]
    assert "p_STAR_model" not in baseline.column_names


def test_priors_file_applies_given_priors(mix, model, scheduler, baseline, tmp_path):
    path, truth = mix
    given = tmp_path / "mix.json"
    given.write_text(json.dumps(MIX))
    out = tmp_path / "file"
    assert run_score(model, path, out, scheduler, "--priors", str(given)) == 0
    doc = json.loads((out / "_priors.json").read_text())
    assert doc["method"] == "file" and doc["file"] == str(given.resolve())
    assert doc["applied"] == pytest.approx(MIX) and "estimated" not in doc
    after = accuracy(read(out)["class"].cast(pa.string()).to_pylist(), truth)
    assert after > accuracy(baseline["class"].cast(pa.string()).to_pylist(), truth)


def test_resumed_em_run_reuses_its_priors_and_a_changed_setting_rescores(
        mix, model, scheduler, adapted, tmp_path, capsys):
    out = tmp_path / "resume"
    shutil.copytree(adapted[0], out)
    before = (out / "_priors.json").read_text()
    score_cli.main(["--model", str(model), "--input", str(mix[0]), "--output", str(out),
                "--scheduler", scheduler, "--part-rows", "400", "--priors", "em"])
    err = capsys.readouterr().err
    assert "already complete" in err and "scored 0 rows" in err and "priors: EM" not in err
    assert (out / "_priors.json").read_text() == before
    score_cli.main(["--model", str(model), "--input", str(mix[0]), "--output", str(out),
                "--scheduler", scheduler, "--part-rows", "400", "--priors", "training"])
    err = capsys.readouterr().err
    assert "none complete yet" in err  # parts scored with other priors are not reused
    assert "p_STAR_model" not in read(out).column_names


def test_training_priors_fall_back_to_the_run_when_the_card_lacks_them(exported_run, model):
    card = json.loads(model.with_suffix(".json").read_text())
    recorded = np.array([card["priors"]["fractions"][c] for c in LABELS])
    del card["priors"]
    values, source = score_priors.training_priors(card, LABELS)
    np.testing.assert_allclose(values, recorded, rtol=1e-12)
    assert source.startswith(f"run {exported_run}")
    card["source"]["run"] = str(exported_run / "moved")
    with pytest.raises(InputError, match="the model card has no 'priors'"):
        score_priors.training_priors(card, LABELS)


@pytest.mark.parametrize("spec, msg", [
    ("Em", "--priors Em: the modes are training, em"),
    ("uniform", "--priors uniform: give training, em or a JSON file of class priors"),
    ("missing.json", "missing.json: no such file"),
])
def test_bad_priors_is_one_line(spec, msg, mix, model, tmp_path, capsys):
    code = score_cli.main(["--model", str(model), "--input", str(mix[0]), "--output",
                       str(tmp_path / "o"), "--priors", spec])
    err = capsys.readouterr().err
    assert code == 2 and msg in err and len(err.strip().splitlines()) == 1


def test_em_sample_reads_a_spread_of_row_groups():
    assert score_priors.sample_groups(range(10), 0.3) == (0, 4, 9)
    assert score_priors.sample_groups([7], 0.01) == (7,)
    assert score_priors.sample_groups(range(4), 1.0) == (0, 1, 2, 3)


def test_shift_note_only_for_em_with_many_out_of_domain_rows():
    total = {"rows": 900, "skipped_rows": 100, "out_of_domain": 300, "priors": {"method": "em"}}
    assert "30% of rows are outside the model's training domain" in score_priors.shift_note(total)
    assert score_priors.shift_note({**total, "out_of_domain": 50}) == ""
    assert score_priors.shift_note({**total, "priors": {"method": "file"}}) == ""
    assert score_priors.shift_note({**total, "priors": None}) == ""


def test_faint_dr17_rows_are_a_covariate_shift_and_say_so(model, scheduler, real_table, tmp_path,
                                                          capsys):
    """The bright-trained model on REAL faint DR17 objects: most rows are out of its domain,
    EM's estimate is far from the true mix, and the summary warns."""
    from sdss_distill.data import datasets
    df = datasets.load_dataset("faint").head(5000)
    path = tmp_path / "faint.parquet"
    pq.write_table(pa.table({b: df[b].to_numpy(np.float64) for b in BANDS}), path)
    code = score_cli.main(["--model", str(model), "--input", str(path), "--output",
                       str(tmp_path / "o"), "--scheduler", scheduler, "--priors", "em"])
    err = capsys.readouterr().err
    assert code in (0, 1) and "outside the model's training domain" in err
    doc = json.loads((tmp_path / "o" / "_priors.json").read_text())
    true_galaxy = float((df["class"] == "GALAXY").mean())
    assert abs(doc["estimated"]["GALAXY"] - true_galaxy) > 0.1  # not a prior shift: EM is off
