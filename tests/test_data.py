import numpy as np
import pandas as pd
import pytest

from sdss_distill import data
from sdss_distill.errors import InputError
from sdss_distill.schema import LABELS, get_view

from .conftest import row

PHYSICAL = get_view("physical")


def test_real_table_loads_with_canonical_columns(real_csv):
    df = data.load_table(real_csv)
    assert len(df) == 10_000
    assert list(df.columns[:8]) == ["objid", "ra", "dec", "u", "g", "r", "i", "z"]
    assert df["objid"].dtype == "string"  # float-notation ids stay text, never a key
    assert df.index.name == "row" and df.index[0] == 0


def test_real_table_cleans_to_known_counts(real_csv):
    df, report = data.clean(data.load_table(real_csv), PHYSICAL)
    assert report.rows_read == report.rows_kept == 10_000
    counts = pd.Series(data.labels(df)).value_counts().sort_index().tolist()
    assert counts == [4998, 850, 4152]  # GALAXY, QSO, STAR as in shared/data/README.md


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
    assert report.dropped == {"missing class": 1, "missing value": 1, "sentinel -9999": 2,
                              "infinite value": 1, "magnitude outside 0-40": 1}
    assert "kept 1 of 7 rows" in report.summary()


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


def test_split_disjoint_stratified_reproducible(real_csv):
    df, _ = data.clean(data.load_table(real_csv), PHYSICAL)
    a, b = data.split(df, seed=7), data.split(df, seed=7)
    sets = [set(v) for v in a.subsets().values()]
    assert sum(map(len, sets)) == len(df) and len(set.union(*sets)) == len(df)
    assert [len(s) for s in sets] == [4000, 4000, 2000]
    for k in a.subsets():
        np.testing.assert_array_equal(a.subsets()[k], b.subsets()[k])
    assert not np.array_equal(a.test, data.split(df, seed=8).test)
    qso_share = (data.labels(df.loc[a.test]) == LABELS.index("QSO")).mean()
    assert qso_share == pytest.approx(850 / 10_000, abs=0.002)


def test_split_round_trip(tmp_path, real_csv):
    df, _ = data.clean(data.load_table(real_csv), PHYSICAL)
    s = data.split(df, fractions=(0.3, 0.5, 0.2), seed=1)
    s.save(tmp_path / "split.json", data_sha256="abc")
    back = data.Split.load(tmp_path / "split.json")
    np.testing.assert_array_equal(back.student_train, s.student_train)
    assert back.fractions == (0.3, 0.5, 0.2) and back.seed == 1


def test_resolve_data_path(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SDSS_DISTILL_DATA", raising=False)
    with pytest.raises(InputError, match="no data file: pass --data FILE, set SDSS_DISTILL_DATA"):
        data.resolve_data_path(None)
    monkeypatch.setenv("SDSS_DISTILL_DATA", "nowhere.csv")
    with pytest.raises(InputError, match=r"nowhere.csv: no such file \(from \$SDSS_DISTILL_DATA\)"):
        data.resolve_data_path(None)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "sdss.csv").write_text("u\n1\n")
    monkeypatch.delenv("SDSS_DISTILL_DATA")
    assert data.resolve_data_path(None).as_posix() == "data/sdss.csv"
