"""Catalogue scoring on a 2-worker LocalCluster: schema, ids, rows, bad rows, resume, atomicity."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sdss_distill.core.errors import InputError
from sdss_distill.core.io import mark_dir
from sdss_distill.core.quality import REASONS, check_values
from sdss_distill.core.schema import BANDS
from sdss_distill.data.synth import write_catalogue
from sdss_distill.edge.classifier import EdgeClassifier
from sdss_distill.score import cli as score_cli
from sdss_distill.score import parts as score_parts

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory) -> Path:
    """Two small SIMULATED files (3 row groups each) with 3 % bad rows."""
    d = tmp_path_factory.mktemp("catalogue")
    for k, rows in enumerate((2500, 2000)):
        write_catalogue(d / f"sim{k}.parquet", rows, seed=k, bad_fraction=0.03, row_group=900)
    return d


def run(capsys, *args) -> tuple[int, str]:
    code = score_cli.main([*args])
    return code, capsys.readouterr().err


def read_parts(out: Path):
    return pq.ParquetDataset(sorted(out.glob("*.parquet"))).read()


@pytest.fixture(scope="module")
def scored(catalogue, model, scheduler, tmp_path_factory):
    out = tmp_path_factory.mktemp("scored")
    code = score_cli.main(["--model", str(model), "--input", str(catalogue / "*.parquet"),
                       "--output", str(out), "--scheduler", scheduler, "--part-rows", "1000",
                       "--keep", "class,ra", "--quiet"])
    return code, out


def test_output_schema_rows_and_ids(catalogue, scored):
    code, out = scored
    assert code == 1  # the catalogue has bad rows
    assert sorted(p.name for p in out.glob("*.parquet")) == [
        "sim0.part00000.parquet", "sim0.part00001.parquet", "sim1.part00000.parquet",
        "sim1.part00001.parquet"]
    table = read_parts(out)
    types = {f.name: f.type for f in table.schema}
    assert list(types) == ["objid", "specobjid", "file", "row", "class", "p_GALAXY", "p_QSO",
                           "p_STAR", "in_domain", "z_phot", "z_phot_err", "quality",
                           "quality_column", "input_class", "ra"]  # z_phot: the redshift head
    assert types["z_phot"] == types["z_phot_err"] == pa.float32()
    assert types["objid"] == pa.uint64() and types["specobjid"] == pa.uint64()  # as stored
    assert types["row"] == pa.int64() and types["in_domain"] == pa.bool_()
    assert all(types[f"p_{c}"] == pa.float32() for c in ("GALAXY", "QSO", "STAR"))
    assert types["class"] == pa.dictionary(pa.int8(), pa.string())
    assert types["input_class"] == pa.string() and types["ra"] == pa.float64()
    for name in ("sim0", "sim1"):
        source = pq.read_table(catalogue / f"{name}.parquet")
        mine = table.filter(pa.compute.equal(table["file"].cast(pa.string()),
                                             str(catalogue / f"{name}.parquet")))
        rows = mine["row"].to_numpy()
        assert len(mine) == len(source)  # nothing dropped
        assert np.array_equal(np.sort(rows), np.arange(1, len(source) + 1))
        order = rows - 1
        assert np.array_equal(mine["objid"].to_numpy(), source["objid"].to_numpy()[order])
        assert mine["input_class"].to_pylist() == np.asarray(source["class"])[order].tolist()
    meta = pq.read_metadata(next(out.glob("*.parquet"))).metadata
    assert meta[b"sdss_distill.simulated"] == b"true"


def test_bad_rows_flagged_counted_and_results_match_edge(catalogue, scored, model):
    _, out = scored
    table = read_parts(out)
    source = pq.read_table(catalogue / "sim0.parquet")
    mine = table.filter(pa.compute.equal(table["file"].cast(pa.string()),
                                         str(catalogue / "sim0.parquet")))
    mine = mine.take(np.argsort(mine["row"].to_numpy()))
    x = np.column_stack([source[b].to_numpy() for b in BANDS])
    expected = check_values(x, BANDS)
    quality = np.asarray(mine["quality"].cast(pa.string()).to_pylist(), dtype=object)
    assert (~expected.ok).sum() > 20
    assert np.array_equal(quality, np.where(expected.ok, "ok", expected.reason))
    column = mine["quality_column"].cast(pa.string()).to_pylist()
    assert column == [c or None for c in expected.column]
    bad = ~expected.ok
    assert mine["class"].null_count == bad.sum() and mine["in_domain"].null_count == bad.sum()
    assert np.isnan(mine["p_QSO"].to_numpy()[bad]).all()
    clf = EdgeClassifier(model)
    reference = clf.predict(x[~bad])
    assert mine["class"].cast(pa.string()).to_numpy(zero_copy_only=False)[~bad].tolist() == \
        reference.classes.tolist()
    p = np.column_stack([mine[f"p_{c}"].to_numpy()[~bad] for c in clf.labels])
    # score stores float32 probabilities: equal to edge's up to float32 rounding (ulp 6e-8 at 1)
    np.testing.assert_allclose(p, reference.probabilities.astype("float32"), rtol=0, atol=2e-7)
    assert np.array_equal(np.asarray(mine["in_domain"].to_pylist())[~bad].astype(bool),
                          reference.in_domain)


def test_ids_exact_reasons_and_summary(model, scheduler, tmp_path, capsys):
    ids = np.array([1237657070094000001 + 3 * k for k in range(6)], np.int64)  # > 2**53
    rows = [(19.4, 17.0, 15.9, 15.5, 15.2), (np.nan, 17, 16, 15.5, 15.2),
            (19.4, -9999, 16, 15.5, 15.2), (19.4, 17, 1e39, 15.5, 15.2),
            (19.4, 17, 16, 45, 15.2), (23.5, 21.0, 20.5, 20.3, 20.2)]
    x = np.array(rows)
    pq.write_table(pa.table({"bestObjID": ids, "specobjid": [f"29{k}7" for k in range(6)],
                             **{f"modelMag_{b}": x[:, j] for j, b in enumerate(BANDS)}}),
                   tmp_path / "objects.parquet")
    out = tmp_path / "out"
    code, err = run(capsys, "--model", str(model), "--input", str(tmp_path / "objects.parquet"),
                    "--output", str(out), "--scheduler", scheduler)
    assert code == 1
    t = pq.read_table(out / "objects.part00000.parquet")
    assert t["objid"].type == pa.int64() and t["objid"].to_pylist() == ids.tolist()
    assert t["specobjid"].to_pylist() == [f"29{k}7" for k in range(6)]
    assert t["row"].to_pylist() == [1, 2, 3, 4, 5, 6]
    assert t["quality"].cast(pa.string()).to_pylist() == [
        "ok", "missing", "sentinel", "float32_overflow", "out_of_range", "ok"]
    assert t["quality_column"].cast(pa.string()).to_pylist() == [None, "u", "g", "r", "i", None]
    assert t["in_domain"].to_pylist() == [True, None, None, None, None, False]
    summary = err.strip().splitlines()[-1]
    assert "scored 6 rows in 1 parts; bad rows 4 (missing 1, sentinel 1, float32_overflow 1, " \
           "out_of_range 1); 1 out of domain" in summary
    assert "dask: 2 workers at tcp://127.0.0.1" in err


def test_resume_skips_complete_parts(catalogue, model, scheduler, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("sim0.parquet", "sim1.parquet"):
        (src / name).write_bytes((catalogue / name).read_bytes())
    args = ["--model", str(model), "--input", str(src), "--output", str(tmp_path / "out"),
            "--scheduler", scheduler, "--part-rows", "1000", "--quiet"]
    assert run(capsys, *args)[0] == 1
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").glob("*.parquet")}
    code, err = run(capsys, *args)
    assert code == 1  # the skipped parts' bad rows still count
    assert "scored 0 rows in 0 parts; 4 parts (4,500 rows) already complete, skipped" in err
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").glob("*.parquet")} == before
    os.utime(src / "sim1.parquet", ns=(1, 1))  # input changed: its parts are redone
    code, err = run(capsys, *args)
    assert "scored 2,000 rows in 2 parts; 2 parts (2,500 rows) already complete" in err
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").glob("*.parquet")}
    assert [n for n in after if after[n] != before[n]] == ["sim1.part00000.parquet",
                                                            "sim1.part00001.parquet"]


def test_failed_part_leaves_nothing(catalogue, model, tmp_path, monkeypatch):
    bundle = score_parts.model_bundle(model)
    parts = score_parts.plan([catalogue / "sim0.parquet"], bundle.columns, bundle.labels, [], 10_000)
    calls = []

    def fail(self, batch, *a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(self, batch, *a, **k)

    real = pq.ParquetWriter.write_batch
    monkeypatch.setattr(pq.ParquetWriter, "write_batch", fail)
    with pytest.raises(OSError, match="disk full"):
        score_parts.score_part(parts[0], bundle, str(tmp_path), batch_rows=1000)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kill", ["write_batch", "replace"])
def test_killed_part_leaves_no_partial_file(catalogue, model, scheduler, tmp_path, kill):
    """The process dies (os._exit) mid-write or just before the rename: no part appears."""
    out = tmp_path / "out"
    out.mkdir()
    mark_dir(out, "score")  # as the score run whose worker died had marked it
    script = textwrap.dedent(f"""
        import os
        from pathlib import Path
        import pyarrow.parquet as pq
        from sdss_distill.score import parts as score_parts
        bundle = score_parts.model_bundle(Path({str(model)!r}))
        parts = score_parts.plan([Path({str(catalogue / 'sim0.parquet')!r})], bundle.columns,
                           bundle.labels, [], 10_000)
        if {kill!r} == "replace":
            os.replace = lambda *a: os._exit(3)
        else:
            real, calls = pq.ParquetWriter.write_batch, []
            def write_batch(self, *a, **k):
                calls.append(1)
                if len(calls) == 2:
                    os._exit(3)
                return real(self, *a, **k)
            pq.ParquetWriter.write_batch = write_batch
        score_parts.score_part(parts[0], bundle, {str(out)!r}, batch_rows=1000)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert list(out.glob("*.parquet")) == [] and len(list(out.glob(".*.tmp"))) == 1
    # a re-run clears the leftover and writes the part whole
    code = score_cli.main(["--model", str(model), "--input", str(catalogue / "sim0.parquet"),
                       "--output", str(out), "--scheduler", scheduler, "--quiet"])
    assert code == 1 and list(out.glob(".*.tmp")) == []
    assert pq.read_table(out / "sim0.part00000.parquet").num_rows == 2500


def test_check_rows_agrees_with_quality():
    rng = np.random.default_rng(1)
    x = rng.uniform(10, 25, (500, 5))
    for k, v in enumerate([np.nan, -9999, np.inf, -np.inf, 1e39, -1e39, 45, -0.1, 40.0, 0.0]):
        x[rng.integers(0, 500, 15), k % 5] = v
    reason, column = score_parts.check_rows([x[:, j] for j in range(5)], BANDS)
    expected = check_values(x, BANDS)
    assert np.array_equal(np.asarray(score_parts.QUALITY, object)[reason],
                          np.where(expected.ok, "ok", expected.reason))
    assert [BANDS[c] if c >= 0 else "" for c in column] == expected.column.tolist()
    assert set(expected.reason) - {""} == set(REASONS)


@pytest.mark.parametrize("case, message", [
    ("no_model", "--model {tmp}/none.tflite: no such model file"),
    ("no_card", "student_int8.json: model card not found"),
    ("no_match", "--input {tmp}/nothing/*.parquet: no Parquet files match"),
    ("no_column", "{tmp}/noz.parquet: missing column(s) z needed by the model"),
    ("bad_keep", "{tmp}/noz.parquet: --keep column(s) dec not found"),
    ("text_column", "{tmp}/noz.parquet: column(s) g hold string values, not numbers"),
])
def test_bad_input_one_line_exit_2(model, tmp_path, capsys, case, message):
    pq.write_table(pa.table({b: [15.0] for b in BANDS if b != "z"}), tmp_path / "noz.parquet")
    pq.write_table(pa.table({b: [15.0] for b in BANDS}), tmp_path / "ok.parquet")
    args = {"model": str(model), "input": str(tmp_path / "ok.parquet"), "keep": ""}
    if case == "no_model":
        args["model"] = str(tmp_path / "none.tflite")
    elif case == "no_card":
        (tmp_path / "m").mkdir()
        args["model"] = str(tmp_path / "m" / "student_int8.tflite")
        Path(args["model"]).write_bytes(model.read_bytes())
    elif case == "no_match":
        args["input"] = str(tmp_path / "nothing" / "*.parquet")
    else:
        args["input"] = str(tmp_path / "noz.parquet")
        args["keep"] = "dec" if case == "bad_keep" else ""
        if case in ("bad_keep", "text_column"):
            pq.write_table(pa.table({b: ["15"] if (b == "g" and case == "text_column") else [15.0]
                                     for b in BANDS}), tmp_path / "noz.parquet")
    code, err = run(capsys, "--model", args["model"], "--input", args["input"], "--output",
                    str(tmp_path / "out"), "--keep", args["keep"], "--quiet")
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert message.format(tmp=tmp_path) in err
    assert not (tmp_path / "out").exists()


def test_hats_directory_without_lsdb(tmp_path, model, capsys, monkeypatch):
    (tmp_path / "hats.properties").write_text("obs_collection=test\n")
    monkeypatch.setitem(sys.modules, "lsdb", None)  # as if not installed
    code, err = run(capsys, "--model", str(model), "--input", str(tmp_path), "--output",
                    str(tmp_path / "out"))
    assert code == 2 and "a HATS catalogue needs LSDB; pip install lsdb" in err


def test_help_shows_defaults():
    text = subprocess.run([sys.executable, "-m", "sdss_distill.score", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60).stdout
    for option in ("--workers", "--threads-per-worker", "--batch", "--part-rows", "--keep"):
        assert option in text
    assert text.count("(default:") >= 6


@pytest.mark.parametrize("names", [("u", "modelMag_u"), ("z", "Z")])
def test_two_columns_for_one_band_are_refused_naming_both(tmp_path, names):
    """The scorer uses the one column matcher: it never picks one of two columns silently."""
    cols = [*names, *(b for b in BANDS if b != names[0])]
    table = pa.Table.from_arrays([pa.array([18.0, 19.0]) for _ in cols], names=cols)
    path = tmp_path / "two.parquet"
    pq.write_table(table, path)
    with pytest.raises(InputError, match=rf"columns '{names[0]}' \(column 1\) and "
                                         rf"'{names[1]}' \(column 2\) both mean"):
        score_parts.plan([path], BANDS, ["GALAXY", "QSO", "STAR"], [], 10_000)
