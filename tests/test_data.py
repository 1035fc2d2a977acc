import json

import numpy as np
import pandas as pd
import pytest

from sdss_distill.core.errors import InputError
from sdss_distill.core.schema import LABELS, get_view
from sdss_distill.data import table as data
from sdss_distill.runs import rows

from .conftest import row

PHYSICAL = get_view("physical")


def test_real_table_loads_with_canonical_columns(real_table):
    df = data.load_table(real_table)
    assert len(df) == 10_000
    assert list(df.columns[:8]) == ["objid", "ra", "dec", "u", "g", "r", "i", "z"]
    assert df["objid"].dtype == "string"  # float-notation ids stay text, never a key
    assert df.index.name == "row" and df.index[0] == 0


def test_real_table_cleans_to_known_counts(real_table):
    df, report = data.clean(data.load_table(real_table), PHYSICAL)
    assert report.rows_read == report.rows_kept == 10_000
    counts = pd.Series(data.labels(df)).value_counts().sort_index().tolist()
    assert counts == [4998, 850, 4152]  # GALAXY, QSO, STAR: the provenance record in datapkg/


def test_skyserver_comment_line(write_csv):
    path = write_csv([row(), row("GALAXY", redshift=0.1)], prefix="#Table1\n")
    df = data.load_table(path)
    assert len(df) == 2 and df.attrs["first_line"] == 3


def test_dr17_names(write_csv):
    header = ("obj_ID,alpha,delta,u,g,r,i,z,run_ID,rerun_ID,cam_col,field_ID,spec_obj_ID,class,"
              "redshift,plate,MJD,fiber_ID")
    df = data.load_table(write_csv([row()], header=header))
    assert {"objid", "ra", "dec", "run", "camcol", "specobjid", "mjd", "fiberid"} <= set(df)


def test_user_mapping(write_csv, tmp_path):
    header = "umag,gmag,rmag,imag,zmag,cls,zspec"
    path = write_csv(["19,18,17,16.5,16.2,star,0.0001"], header=header)
    mapping = tmp_path / "map.toml"
    mapping.write_text('[columns]\numag="u"\ngmag="g"\nrmag="r"\nimag="i"\nzmag="z"\n'
                       'cls="class"\nzspec="redshift"\n')
    df, _ = data.clean(data.load_table(path, data.read_column_map(str(mapping))), PHYSICAL)
    assert df["class"].tolist() == ["STAR"]


def test_mapping_to_unknown_column(tmp_path):
    mapping = tmp_path / "map.toml"
    mapping.write_text('umag = "U_band"\n')
    with pytest.raises(InputError, match="'umag' maps to 'U_band', which is not a known column"):
        data.read_column_map(str(mapping))


def test_parquet(tmp_path, write_csv):
    df = pd.read_csv(write_csv([row(), row("QSO", redshift=2.1)]))
    df.to_parquet(tmp_path / "t.parquet")
    assert data.load_table(tmp_path / "t.parquet")["class"].tolist() == ["STAR", "QSO"]


def test_cleaning_counts_each_reason_once(write_csv):
    rows = [row(), row(u=-9999), row(g="nan"), row(r="inf"), row(z=45), row(u=-9999, z=45),
            row(cls="")]
    df, report = data.clean(data.load_table(write_csv(rows)), PHYSICAL)
    assert report.rows_kept == 1 and len(df) == 1
    assert report.dropped == {"missing class": 1, "missing value": 1,
                              "sentinel -9999 (failed measurement)": 2, "non-finite value": 1,
                              "value too large for float32": 0,
                              "value outside its physical range": 1}
    assert "kept 1 of 7 rows" in report.summary()
    assert report.examples["value outside its physical range"].endswith(
        "/table.csv line 6: value 45 in column 'z' outside 0 to 40")


def test_unknown_class_is_an_error(write_csv):
    path = write_csv([row(), row("PLANET"), row("comet")])
    with pytest.raises(InputError, match="unknown class label.* COMET, PLANET; expected GALAXY"):
        data.clean(data.load_table(path), PHYSICAL)


def test_non_numeric_names_line_and_column(write_csv):
    path = write_csv([row(), row(g="bright")])
    with pytest.raises(InputError, match=r"table.csv line 3: column 'g' has non-numeric value 'bright'"):
        data.clean(data.load_table(path), PHYSICAL)


def test_missing_column_lists_it(write_csv):
    path = write_csv(["19,18,STAR"], header="u,g,class")
    with pytest.raises(InputError, match=r"missing column\(s\) r, i, z needed by the photometric"):
        data.clean(data.load_table(path), PHYSICAL)


def test_split_disjoint_stratified_reproducible(real_table):
    df, _ = data.clean(data.load_table(real_table), PHYSICAL)
    a, b = data.split(df, seed=7), data.split(df, seed=7)
    sets = [set(v) for v in a.subsets().values()]
    assert sum(map(len, sets)) == len(df) and len(set.union(*sets)) == len(df)
    assert [len(s) for s in sets] == [3500, 3500, 2000, 1000]  # teacher, student, test, cal
    for k in a.subsets():
        np.testing.assert_array_equal(a.subsets()[k], b.subsets()[k])
    assert not np.array_equal(a.test, data.split(df, seed=8).test)
    qso_share = (data.labels(df.loc[a.test]) == LABELS.index("QSO")).mean()
    assert qso_share == pytest.approx(850 / 10_000, abs=0.002)


def test_the_calibration_slice_leaves_the_test_rows_and_is_stratified(real_table):
    df, _ = data.clean(data.load_table(real_table), PHYSICAL)
    four, three = data.split(df, seed=3), data.split(df, fractions=(0.4, 0.4, 0.2), seed=3)
    np.testing.assert_array_equal(four.test, three.test)  # comparable with runs before it
    assert len(three.calibration) == 0 and len(four.calibration) == 1000
    qso = (data.labels(df.loc[four.calibration]) == LABELS.index("QSO")).mean()
    assert qso == pytest.approx(850 / 10_000, abs=0.002)
    rows = np.arange(5)
    np.testing.assert_array_equal(three.calibrating(rows), rows)  # old runs: the stopping rows
    np.testing.assert_array_equal(four.calibrating(rows), four.calibration)


def test_a_split_saved_before_the_calibration_slice_loads(tmp_path, real_table):
    df, _ = data.clean(data.load_table(real_table), PHYSICAL)
    s = data.split(df, fractions=(0.4, 0.4, 0.2), seed=1)
    s.save(tmp_path / "split.json")
    doc = json.loads((tmp_path / "split.json").read_text())
    del doc["calibration"]
    (tmp_path / "split.json").write_text(json.dumps(doc))
    back = data.Split.load(tmp_path / "split.json")
    assert len(back.calibration) == 0
    np.testing.assert_array_equal(back.test, s.test)


def test_split_round_trip(tmp_path, real_table):
    df, _ = data.clean(data.load_table(real_table), PHYSICAL)
    s = data.split(df, fractions=(0.3, 0.4, 0.1, 0.2), seed=1)
    s.save(tmp_path / "split.json", data_sha256="abc")
    back = data.Split.load(tmp_path / "split.json")
    for name in data.SUBSETS:
        np.testing.assert_array_equal(back.subsets()[name], s.subsets()[name])
    assert back.fractions == (0.3, 0.4, 0.1, 0.2) and back.seed == 1


def test_hostile_values_are_dropped_with_named_reasons(write_csv):
    rows = [row(), row(redshift="1e308"), row(u="1e39"), row(redshift=9.5), row(g="-inf")]
    df, report = data.clean(data.load_table(write_csv(rows)), PHYSICAL)
    assert len(df) == 1 and report.rows_kept == 1
    assert report.dropped["value too large for float32"] == 2
    assert report.dropped["value outside its physical range"] == 1
    assert report.dropped["non-finite value"] == 1
    assert report.examples["value too large for float32"].endswith(
        "/table.csv line 3: value 1e+308 in column 'redshift' too large for float32")
    assert "dropped: 1 non-finite value, 2 value too large for float32" in report.summary()


def test_hash_is_of_the_bytes_parsed(write_csv):
    import hashlib
    path = write_csv([row(), row("QSO", redshift=2.1)])
    df, sha = data.load_table_with_hash(path)
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest() == df.attrs["sha256"]


def test_hash_does_not_see_a_later_change(write_csv, monkeypatch):
    """The file is read once: a change after the read cannot slip into the recorded hash."""
    import hashlib
    from pathlib import Path
    path = write_csv([row(), row("QSO", redshift=2.1)])
    original = path.read_bytes()
    real = Path.read_bytes

    def read_then_change(self):
        content = real(self)
        if self == path:
            path.write_bytes(original.replace(b"QSO", b"STAR"))  # changed during "training"
        return content

    monkeypatch.setattr(Path, "read_bytes", read_then_change)
    df, sha = data.load_table_with_hash(path)
    assert df["class"].tolist() == ["STAR", "QSO"]
    assert sha == hashlib.sha256(original).hexdigest() != hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("header, message", [
    ("objid,z,u,g,r,i,z,class", r"columns 'z' \(column 2\) and 'z' \(column 7\) both mean 'z' "
                                r"\(if one is the redshift, rename it 'redshift'\)"),
    ("u,U,g,r,i,z,class,redshift", r"columns 'u' \(column 1\) and 'U' \(column 2\) both mean 'u'"),
    ("modelMag_u,u,g,r,i,z,class,redshift", r"columns 'modelMag_u' \(column 1\) and 'u'"),
])
def test_two_names_for_one_column_is_an_error_naming_both(write_csv, header, message):
    path = write_csv(["1,2,19,18,17,16,15,STAR"], header=header)
    with pytest.raises(InputError, match=message):
        data.load_table(path)


def test_bom_is_read(write_csv, tmp_path):
    path = write_csv([row()])
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert list(data.load_table(bom).columns) == list(data.load_table(path).columns)
    bom.write_bytes(b"\xef\xbb\xbf#Table1\n" + path.read_bytes())
    df = data.load_table(bom)
    assert df.attrs["first_line"] == 3 and df["u"].tolist() == [19.4]


def test_non_utf8_table_is_one_line(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("u,g,r,i,z,class,redshift\n19,18,17,16,15,ÉTOILE,0\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin1.csv: not UTF-8 text \(byte 0xc9 at offset 40\)"):
        data.load_table(path)


def test_run_rows_refuse_corrupt_run_files(tmp_path):
    from sdss_distill.runs.rundir import RunDir
    out = tmp_path / "run"
    for split_text, message in [("{", r"split\.json: corrupt JSON \(line 1"),
                                ('{"seed": 0}', r"split\.json: missing key\(s\) 'data_sha256'")]:
        with RunDir(out).write() as layout:
            layout.run_json.write_text(json.dumps({"config": {"teacher_view": "physical"}}))
            layout.split_json.write_text(split_text)
        with pytest.raises(InputError, match=message):
            rows.load_run_rows(out)
    with RunDir(out).write(keep=["split.json"]) as layout:
        layout.run_json.write_bytes(b"\xff{}")
    with pytest.raises(InputError, match=r"run\.json: not UTF-8 text .*; train the run again"):
        rows.load_run_rows(out)
