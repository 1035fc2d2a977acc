"""Packaged datasets and the --data resolver: names, hashes, counts, paths, errors (no TensorFlow)."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sdss_distill.core.errors import InputError
from sdss_distill.data import cli as data_cli
from sdss_distill.data import datasets
from tests.conftest import ROOT

PKG = ROOT / "datapkg" / "sdss_distill_data"
SHARED = ROOT.parent / "shared" / "data"
CSVS = {"bright": "sdss_dr14_skyserver_10k.csv", "faint": "sdss_dr17_faint_27k.csv"}
COUNTS = {"bright": (10_000, {"GALAXY": 4998, "STAR": 4152, "QSO": 850}),
          "faint": (26_999, {"GALAXY": 15851, "STAR": 5892, "QSO": 5256})}
CANONICAL = ["objid", "ra", "dec", "u", "g", "r", "i", "z", "run", "rerun", "camcol", "field",
             "specobjid", "class", "redshift", "plate", "mjd", "fiberid"]


@pytest.fixture(autouse=True)
def clone_layout(monkeypatch):
    """No $SDSS_DISTILL_DATA, and sdss_distill_data not importable (CI installs ./datapkg):
    every test reads this clone's datapkg/, as a fresh clone would."""
    monkeypatch.delenv(datasets.DATA_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "sdss_distill_data", None)


@pytest.fixture(scope="module")
def loaded() -> dict[str, pd.DataFrame]:
    with pytest.MonkeyPatch.context() as mp:  # the clone's datapkg/, as clone_layout does
        mp.setitem(sys.modules, "sdss_distill_data", None)
        return {name: datasets.load_dataset(name) for name in ("bright", "faint", "sdss")}


def _copy_package(tmp_path):
    copy = tmp_path / "sdss_distill_data"
    shutil.copytree(PKG, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


@pytest.fixture
def pkg_copy(tmp_path, monkeypatch):
    """A copy of the data package that package_dir() returns (for damaging it)."""
    copy = _copy_package(tmp_path)
    monkeypatch.setattr(datasets, "package_dir", lambda: copy)
    return copy


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- names and the data package --------------------------------------------------------------

def test_clone_without_install_finds_datapkg():
    assert datasets.package_dir() == PKG
    assert datasets.names() == ("bright", "faint", "sdss")


@pytest.mark.parametrize("name, tables", [("bright", ["bright"]), ("faint", ["faint"]),
                                          ("sdss", ["bright", "faint"]), ("SDSS", ["bright", "faint"])])
def test_names_resolve_to_their_parquet_files(name, tables):
    src = datasets.resolve(name)
    assert (src.kind, src.name, src.origin) == ("dataset", name.lower(), "--data")
    assert src.files == tuple(PKG / f"{t}.parquet" for t in tables)
    assert src.sha256 == datasets.dataset_digest(name)


def test_default_is_sdss_and_env_overrides(monkeypatch, tmp_path):
    src = datasets.resolve(None)
    assert (src.name, src.origin) == ("sdss", "default")
    monkeypatch.setenv(datasets.DATA_ENV, "faint")
    src = datasets.resolve(None)
    assert (src.name, src.origin) == ("faint", "$SDSS_DISTILL_DATA")
    assert datasets.resolve("bright").name == "bright"  # --data beats the environment
    table = tmp_path / "t.csv"
    table.write_text("u,g\n1,2\n")
    monkeypatch.setenv(datasets.DATA_ENV, str(table))
    assert (datasets.resolve(None).kind, datasets.resolve(None).path) == ("file", table)


def test_installed_package_is_preferred_to_the_clone(tmp_path, monkeypatch):
    installed = _copy_package(tmp_path)
    fake = types.ModuleType("sdss_distill_data")
    fake.__file__ = str(installed / "__init__.py")
    monkeypatch.setitem(sys.modules, "sdss_distill_data", fake)
    assert datasets.package_dir() == installed
    assert datasets.resolve("faint").files == (installed / "faint.parquet",)


def test_an_installed_data_package_matches_this_clone(monkeypatch):
    monkeypatch.delitem(sys.modules, "sdss_distill_data")
    found = importlib.util.find_spec("sdss_distill_data")
    if found is None:
        pytest.skip("sdss-distill-data is not installed (a clone reads datapkg/ directly)")
    installed = json.loads((Path(found.origin).parent / "provenance.json").read_text())
    assert installed == json.loads((PKG / "provenance.json").read_text()), (
        f"the installed {found.origin} is stale: pip install --force-reinstall ./datapkg")


def test_provenance_hashes_and_sizes_match_the_files():
    doc = json.loads((PKG / "provenance.json").read_text())
    assert list(doc["tables"]) == ["bright", "faint"]
    for name, t in doc["tables"].items():
        path = PKG / t["file"]
        assert (_sha(path), path.stat().st_size) == (t["sha256"], t["bytes"])
        assert (t["rows"], t["class_counts"]) == COUNTS[name]
        assert len(t["columns"]) == 18 and len(t["source_sha256"]) == 64
    assert doc["acknowledgement"].startswith("Funding for the Sloan Digital Sky Survey IV has been")
    assert "public domain" in doc["licence"]
    assert "bestobjid" in doc["tables"]["bright"]["selection"]


def test_package_api_imports_no_pandas_or_pyarrow():
    code = ("import sys, sdss_distill_data as d; f = d.files(); p = d.provenance(); "
            "assert sorted(f) == ['bright', 'faint'] and all(x.is_file() for x in f.values()); "
            "assert p['version'] == d.__version__; "
            "print(sorted(m for m in ('pandas', 'pyarrow', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "datapkg", capture_output=True,
                         text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


# -- loading ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["bright", "faint"])
def test_row_and_class_counts(loaded, name):
    df = loaded[name]
    rows, classes = COUNTS[name]
    assert len(df) == rows
    assert df["class"].value_counts().to_dict() == classes
    assert list(df.columns) == [*CANONICAL, "sample"]
    assert set(df["sample"]) == {name}
    assert str(df["objid"].dtype) == "string" and str(df["specobjid"].dtype) == "string"
    assert df.index.equals(pd.RangeIndex(rows, name="row"))


def test_sdss_is_bright_then_faint_with_a_sample_column(loaded):
    sdss, bright, faint = loaded["sdss"], loaded["bright"], loaded["faint"]
    assert len(sdss) == 36_999 and sdss.index.equals(pd.RangeIndex(36_999, name="row"))
    assert sdss["sample"].iloc[9999] == "bright" and sdss["sample"].iloc[10_000] == "faint"
    assert sdss.groupby("sample").size().to_dict() == {"bright": 10_000, "faint": 26_999}
    pd.testing.assert_frame_equal(sdss.iloc[:10_000], bright)
    pd.testing.assert_frame_equal(sdss.iloc[10_000:].reset_index(drop=True),
                                  faint.reset_index(drop=True))
    assert sdss.attrs["sha256"] == datasets.dataset_digest("sdss")
    assert sdss.attrs["files"] == {t: str(PKG / f"{t}.parquet") for t in ("bright", "faint")}


def test_faint_columns_get_canonical_names():
    raw = pq.read_schema(PKG / "faint.parquet").names
    assert raw[:3] == ["obj_ID", "alpha", "delta"] and "MJD" in raw and "fiber_ID" in raw
    assert list(datasets.canonicalise(pd.DataFrame(columns=raw), "t").columns) == CANONICAL


def test_two_names_for_one_column_are_an_error():
    with pytest.raises(InputError, match=r"t: columns 'u' \(column 1\) and 'U' \(column 2\) both mean 'u'"):
        datasets.canonicalise(pd.DataFrame({"u": [1.0], "U": [2.0]}), "t")


# -- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("call", [datasets.resolve, datasets.load_dataset])
def test_bad_name_lists_the_valid_names(call):
    with pytest.raises(InputError, match=r"valid names: bright, faint, sdss"):
        call("brigth")


def test_a_changed_parquet_file_is_refused_with_the_fix(pkg_copy):
    path = pkg_copy / "faint.parquet"
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    msg = (rf"{path}: SHA-256 [0-9a-f]{{12}}\.\.\. does not match provenance.json \([0-9a-f]{{12}}"
           rf"\.\.\.\).*pip install --force-reinstall ./datapkg")
    for call in (datasets.resolve, datasets.load_dataset):
        with pytest.raises(InputError, match=msg):
            call("sdss")
    assert datasets.resolve("bright").files == (pkg_copy / "bright.parquet",)


def test_unreadable_provenance_is_refused_with_the_fix(pkg_copy):
    (pkg_copy / "provenance.json").write_text("{")
    with pytest.raises(InputError, match=r"provenance\.json: unreadable \(JSONDecodeError: .*\); "
                                         r"reinstall sdss-distill-data"):
        datasets.resolve("sdss")


def test_missing_package_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(datasets, "package_dir", lambda: None)
    with pytest.raises(InputError, match=r"\(sdss-distill-data\) are not installed: pip install "
                                         r"\./datapkg"):
        datasets.resolve(None)
    table = tmp_path / "t.csv"
    table.write_text("u,g\n1,2\n")
    assert datasets.resolve(str(table)).kind == "file"
    with pytest.raises(InputError, match="valid names: bright, faint, sdss"):
        datasets.resolve("nope")


# -- paths, directories and globs ------------------------------------------------------------

def test_paths_directories_and_globs_still_work(tmp_path, monkeypatch):
    for k in range(2):
        pq.write_table(pa.table({"u": [1.0]}), tmp_path / f"part{k}.parquet")
    (tmp_path / "notes.txt").write_text("x")
    one = tmp_path / "part0.parquet"
    assert (datasets.resolve(str(one)).kind, datasets.resolve(str(one)).path) == ("file", one)
    parts = (tmp_path / "part0.parquet", tmp_path / "part1.parquet")
    assert datasets.resolve(str(tmp_path)).files == parts
    src = datasets.resolve(str(tmp_path / "part*.parquet"))
    assert (src.kind, src.files) == ("stream", parts)
    with pytest.raises(InputError, match=r"matches .*notes\.txt, not Parquet"):
        datasets.resolve(str(tmp_path / "*"))
    with pytest.raises(InputError, match=r"no such file \(from --data\); check the path"):
        datasets.resolve(str(tmp_path / "missing.csv"))
    with pytest.raises(InputError, match=r"sdss \(from --data\): 2 files; this command reads one table"):
        _ = datasets.resolve("sdss").path
    # a bare dataset name wins over a file of that name; ./name reads the file
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bright").write_text("u,g\n1,2\n")
    assert datasets.resolve("bright").kind == "dataset"
    assert datasets.resolve("./bright").kind == "file"


# -- the original CSVs -----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["bright", "faint"])
def test_parquet_holds_every_original_csv_value(name):
    source = SHARED / CSVS[name]
    if not source.is_file():
        pytest.skip(f"{source} not here (CI has it): the round trip is checked against the CSV")
    doc = json.loads((PKG / "provenance.json").read_text())["tables"][name]
    assert _sha(source) == doc["source_sha256"]
    with open(source, newline="", encoding="utf-8-sig") as f:
        header, *rows = list(csv.reader(f))
    table = pq.read_table(PKG / f"{name}.parquet")
    assert table.column_names == header and table.num_rows == len(rows)
    for k, col in enumerate(header):
        kind = table.schema.field(col).type
        parse = str if kind == pa.string() else int if kind == pa.int64() else float
        assert table.column(col).to_pylist() == [parse(r[k]) for r in rows], col
    assert {c: str(table.schema.field(c).type) for c in header if "obj" in c.lower()} == {
        c: "string" for c in header if "obj" in c.lower()}


@pytest.mark.slow
def test_build_script_reproduces_the_package_byte_for_byte(capsys):
    if not all((SHARED / f).is_file() for f in CSVS.values()):
        pytest.skip(f"the source CSVs are not in {SHARED} (CI has them)")
    spec = importlib.util.spec_from_file_location("build_datasets", ROOT / "scripts" / "build_datasets.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert build.main(["--check", "--source-dir", str(SHARED)]) == 0
    assert "matches a fresh build byte for byte" in capsys.readouterr().out


# -- listing and packaging -------------------------------------------------------------------

def test_listing_names_every_dataset_and_the_acknowledgement(capsys, monkeypatch):
    assert data_cli.main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "sdss     36999 rows" in out and "(default)" in out
    assert "Funding for the Sloan Digital Sky Survey IV" in out
    assert data_cli.main(["datasets", "--json"]) == 0
    rows = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    assert rows["sdss"]["class_counts"] == {"GALAXY": 20849, "STAR": 10044, "QSO": 6106}
    monkeypatch.setattr(datasets, "package_dir", lambda: None)
    assert data_cli.main(["datasets"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not installed: pip install ./datapkg" in err[0]


@pytest.mark.slow
def test_data_wheel_holds_the_tables_and_the_main_package_does_not(tmp_path):
    import tomllib

    from setuptools import find_packages

    src = tmp_path / "datapkg"
    shutil.copytree(ROOT / "datapkg", src, ignore=shutil.ignore_patterns("__pycache__", "build",
                                                                         "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", str(src), "-w", str(tmp_path / "dist")], check=True,
                   capture_output=True, timeout=120)
    (whl,) = (tmp_path / "dist").glob("sdss_distill_data-0.1.0-*.whl")
    names = set(zipfile.ZipFile(whl).namelist())
    assert {f"sdss_distill_data/{f}" for f in ("__init__.py", "bright.parquet", "faint.parquet",
                                               "provenance.json", "README.md")} <= names
    main = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = find_packages(where=str(ROOT), include=main["packages"]["find"]["include"])
    assert "sdss_distill" in found and not any(p.startswith("sdss_distill_data") for p in found)
