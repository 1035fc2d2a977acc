"""Shared fixtures: the real DR14 table shipped in datapkg/ (never skipped) and tiny tables."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def real_table() -> Path:
    """The real DR14 table as the package ships it (the `bright` dataset's Parquet file,
    SHA-256 checked): tests about real data run on a fresh clone, never skipped."""
    from sdss_distill.data import datasets
    return datasets.table_file("bright")


@pytest.fixture(scope="session")
def exported_run(real_table, tmp_path_factory) -> Path:
    """One small run on the real table (20 epochs), trained and exported (`--all`: every
    variant, QAT and pruning included) once per session.

    20, not 5: the default `mix` student after 5 epochs is too raw for class-prior
    adjustment to raise its accuracy on a shifted sample (test_score_priors)."""
    from sdss_distill.export.run import export_run
    from sdss_distill.runs.config import make_config
    from sdss_distill.train import run

    out = tmp_path_factory.mktemp("exported_run")
    run(make_config(data=str(real_table), out=str(out), epochs=20, quiet=True))
    export_run(out, quiet=True, invokes=200, everything=True)
    return out


@pytest.fixture(scope="module")
def model(exported_run) -> Path:
    """The session run's shipped int8 student (its card and labels beside it)."""
    return exported_run / "tflite" / "student_int8.tflite"


@pytest.fixture(scope="module")
def scheduler():
    """One LocalCluster (2 worker processes, 1 thread each) shared by a module's runs."""
    import dask
    from dask.distributed import LocalCluster
    with dask.config.set({"distributed.worker.multiprocessing-method": "spawn"}):  # no fork
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=40)
    yield cluster.scheduler_address
    cluster.close()


HEADER = "objid,ra,dec,u,g,r,i,z,run,rerun,camcol,field,specobjid,class,redshift,plate,mjd,fiberid"


def row(cls="STAR", u=19.4, g=17.0, r=15.9, i=15.5, z=15.2, redshift=0.0001, objid="1.23E+18"):
    return (f"{objid},183.5,0.09,{u},{g},{r},{i},{z},752,301,4,267,3.7E+18,{cls},{redshift},"
            f"3306,54922,491")


@pytest.fixture
def write_csv(tmp_path):
    """Write a small table (header + rows) and return its path."""

    def write(rows, header=HEADER, name="table.csv", prefix=""):
        path = tmp_path / name
        path.write_text(prefix + header + "\n" + "\n".join(rows) + ("\n" if rows else ""))
        return path

    return write


@pytest.fixture(scope="session")
def small_sweep(real_table, tmp_path_factory) -> tuple[Path, list[str]]:
    """A small real sweep (offline students, T 1 and 2, alpha 0 / 0.5 / 1, seeds 0 and 1, tiny
    networks, 2 epochs), run once per session: (its directory, the experiment argv)."""
    from sdss_distill.sweep import cli as experiment

    root = tmp_path_factory.mktemp("sweep")
    config = root / "small.toml"
    config.write_text("teacher_hidden = [16, 8]\nstudent_hidden = [6, 6]\n")
    out = root / "sweep"
    argv = ["--data", str(real_table), "--config", str(config), "--methods", "offline",
            "--temperatures", "1", "2", "--alphas", "0", "0.5", "1", "--seeds", "0", "1",
            "--epochs", "2", "--workers", "2", "--out", str(out), "--quiet"]
    assert experiment.main(argv) == 0
    return out, argv


HEAVY_FIXTURES = {"exported_run", "small_sweep", "quick_run", "slice_ws", "scheduler",
                  "streamed_run", "run_dir", "hats_catalogue"}
"""Fixtures that train a full model, convert to TFLite or start a Dask cluster."""


def pytest_collection_modifyitems(items):
    """Every test that needs a heavy fixture is slow: `pytest -m "not slow"` stays under a minute."""
    for item in items:
        if HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
