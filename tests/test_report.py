"""A run's report (sdss_distill/runs/report.py): simulated rows say so everywhere; every model
is scored by population; figures and CSVs are written into the run's version."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def synth_table(tmp_path_factory):
    from sdss_distill.data.synth import write_catalogue
    path = tmp_path_factory.mktemp("synth") / "sim.parquet"
    write_catalogue(path, 1200, seed=0)
    return path


def test_a_synth_table_is_flagged_simulated_when_loaded(synth_table, real_table, write_csv):
    from sdss_distill.data.table import load_table
    from tests.conftest import row
    assert load_table(synth_table).attrs["simulated"] is True
    assert load_table(real_table).attrs["simulated"] is False
    assert load_table(write_csv([row()])).attrs["simulated"] is False


def test_prepare_keeps_the_simulated_flag(synth_table):
    from sdss_distill.runs.config import make_config
    from sdss_distill.runs.pipeline import prepare
    assert prepare(make_config(data=str(synth_table))).simulated is True
    assert prepare(make_config(data="bright")).simulated is False


def test_simulated_fields():
    from sdss_distill.runs.report import simulated_fields
    assert simulated_fields(False) == {"simulated": False}
    sim = simulated_fields(True)
    assert sim["simulated"] is True and sim["note"].startswith("SIMULATED data")


def test_report_markdown_opens_with_simulated():
    from sdss_distill.runs.report_md import report_markdown
    from tests.test_run_figures import fake_report
    report = fake_report(simulated=True)
    report.update(note="SIMULATED data (test)", data={"path": "sim.parquet", "sha256": "0" * 64,
                  "cleaning": "kept all", "split_sizes": {"test": 400}},
                  config={"seed": 0, "temperature": 1, "alpha": 0.5, "soft_loss": "kl",
                          "teacher_view": "physical"}, method="offline",
                  machine={"cpu": "test", "cores": 1},
                  timing={"fit_s": 1, "method_s": 1, "total_s": 1, "definition": "test"})
    for m in report["models"].values():
        m.update(rows=100, epochs=1, train_s=1.0)
    text = report_markdown(report)
    assert text.splitlines()[0].startswith("**SIMULATED DATA.**")
    assert "## Scores by r magnitude" in text
    assert not report_markdown({**report, "simulated": False}).startswith("**SIMULATED")


@pytest.mark.slow
def test_a_run_on_simulated_rows_says_so_everywhere(synth_table, tmp_path, capsys):
    """Console, report.json, report.md and every figure title (one tiny run)."""
    from sdss_distill.runs.config import make_config
    from sdss_distill.runs.rundir import RunDir
    from sdss_distill.train import run
    out = tmp_path / "run"
    report = run(make_config(data=str(synth_table), out=str(out), epochs=1, method="offline",
                             teacher_hidden=[8], student_hidden=[4]))
    err = capsys.readouterr().err
    assert err.splitlines()[0].startswith("SIMULATED data")
    assert "SIMULATED" in err.splitlines()[-1]
    layout = RunDir(out).current()
    saved = json.loads(layout.report_json.read_text())
    assert saved["simulated"] is True and "SIMULATED" in saved["note"]
    assert json.loads(layout.run_json.read_text())["simulated"] is True
    assert layout.report_md.read_text().startswith("**SIMULATED DATA.**")
    assert report["evaluation"]["samples"] is None  # a synth table has no `sample` column
    for name in ("teacher", "student", "baseline"):
        m = saved["models"][name]
        assert set(m["population"]["by_r_mag"]) >= {"r < 16", "r >= 22"}
        assert m["domain"]["in_domain"]["rows"] + m["domain"]["out_of_domain"]["rows"] == \
            saved["data"]["split_sizes"]["test"]
        assert len(m["reliability"]) == 15
    pngs = sorted(p.name for p in layout.figures.glob("*.png"))
    assert pngs == ["accuracy_by_r_mag.png", "confusion.png", "purity_completeness.png",
                    "recall_by_class.png", "reliability.png", "training_curves.png"]
    assert all((layout.figures / f"{p[:-4]}.csv").is_file() for p in pngs)
    assert "reports/figures/reliability.png" in layout.manifest()["files"]
    from sdss_distill.runs import figures
    for name, (draw, _) in figures.FIGURES.items():
        assert draw(saved)[0].get_suptitle().startswith("SIMULATED"), name
    from sdss_distill.runs import sets_figures
    assert sets_figures.draw(saved)[0].get_suptitle().startswith("SIMULATED")
