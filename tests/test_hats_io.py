"""score on a HATS catalogue (built here with LSDB from SIMULATED rows): the output is a HATS
catalogue with the input's partitioning that lsdb.read_hats opens."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sdss_distill.core.io import OWNER_FILE
from sdss_distill.data.synth import write_catalogue
from sdss_distill.score import cli as score_cli
from sdss_distill.score import hats as hats_io

pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword")  # lsdb 0.11 on pandas 3.1
lsdb = pytest.importorskip("lsdb", reason="the [hats] extra (lsdb) is not installed")


@pytest.fixture(scope="module")
def hats_catalogue(tmp_path_factory) -> tuple[Path, object]:
    """A HATS collection (catalogue + margin, as lsdb writes it) of 6,000 SIMULATED rows
    with 1 % bad values, in several HEALPix partitions of orders 0-2."""
    d = tmp_path_factory.mktemp("hats_in")
    write_catalogue(d / "sim.parquet", 6000, seed=3, bad_fraction=0.01, row_group=2000)
    df = pq.read_table(d / "sim.parquet").to_pandas()
    cat = lsdb.from_dataframe(df, ra_column="ra", dec_column="dec", catalog_name="sim",
                              lowest_order=0, highest_order=2, partition_rows=1500)
    cat.write_catalog(d / "sim_hats")
    return d / "sim_hats", df


@pytest.fixture(scope="module")
def scored_hats(hats_catalogue, model, tmp_path_factory):
    path, _ = hats_catalogue
    out = tmp_path_factory.mktemp("hats_out") / "scored"
    code = score_cli.main(["--model", str(model), "--input", str(path), "--output", str(out),
                       "--workers", "1", "--keep", "objid", "--quiet"])
    return code, out


@pytest.mark.slow
def test_detects_hats_directories(hats_catalogue, tmp_path):
    path, _ = hats_catalogue
    assert hats_io.is_hats(path) and hats_io.is_hats(path / "sim")
    assert not hats_io.is_hats(tmp_path) and not hats_io.is_hats(path / "collection.properties")


@pytest.mark.slow  # the hats_catalogue fixture takes about 13 s
def test_primary_catalogue_only_margins_not_scored(hats_catalogue):
    path, df = hats_catalogue
    source = hats_io.open_input(path)
    assert source.spatial == ("ra", "dec", "_healpix_29")
    assert all("Npix=" in f.name and "margin" not in str(f) and "5arcs" not in str(f)
               for f in source.files)
    assert sum(pq.read_metadata(f).num_rows for f in source.files) == len(df)


@pytest.mark.slow  # the hats_catalogue fixture takes about 13 s
def test_output_is_a_hats_catalogue_with_the_input_partitioning(hats_catalogue, scored_hats):
    path, df = hats_catalogue
    code, out = scored_hats
    assert code == 1  # 1 % of rows have bad values: flagged, kept
    result = lsdb.read_hats(out)
    source = lsdb.read_hats(path)
    assert result.get_healpix_pixels() == source.get_healpix_pixels()
    assert result.hc_structure.catalog_info.total_rows == len(df)
    frame = result.compute()
    assert len(frame) == len(df)
    for col in ("class", "p_GALAXY", "p_QSO", "p_STAR", "quality", "ra", "dec", "objid"):
        assert col in frame.columns
    assert np.array_equal(np.sort(frame["objid"].to_numpy()), np.sort(df["objid"].to_numpy()))
    # every partition holds exactly the input partition's objects, in the same order
    for pixel in source.get_healpix_pixels():
        a = source.get_partition(pixel.order, pixel.pixel).compute()
        b = result.get_partition(pixel.order, pixel.pixel).compute()
        assert np.array_equal(a["objid"].to_numpy(), b["objid"].to_numpy())
        assert np.array_equal(a.index.to_numpy(), b.index.to_numpy())  # _healpix_29
    bad = frame["quality"].astype(str) != "ok"
    assert 0 < bad.sum() < 0.05 * len(df) and frame.loc[bad, "class"].isna().all()
    # a spatial query through LSDB works on the output
    cone = result.cone_search(ra=180.0, dec=30.0, radius_arcsec=20 * 3600).compute()
    assert 0 < len(cone) < len(frame)


@pytest.mark.slow  # the hats_catalogue fixture takes about 13 s
def test_rerun_skips_finished_partitions(hats_catalogue, scored_hats, model, capsys):
    path, df = hats_catalogue
    _, out = scored_hats
    code = score_cli.main(["--model", str(model), "--input", str(path), "--output", str(out),
                       "--workers", "1", "--keep", "objid"])
    err = capsys.readouterr().err
    assert code == 1 and "already complete" in err and "scored 0 rows" in err
    assert len(lsdb.read_hats(out).compute()) == len(df)
    assert not list(out.rglob(".*.tmp"))  # issue 23 case 12: no `.Npix=*.tmp` left behind


def _digests(path: Path) -> dict:
    return {str(f.relative_to(path)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(path.rglob("*")) if f.is_file()}


@pytest.mark.parametrize("where", [".", "sim"])
def test_score_onto_its_own_hats_input_is_refused(hats_catalogue, model, capsys, where):
    """Issue 23 case 1: `--input CAT --output CAT` (or the collection's catalogue inside it)
    is refused before any work; not one input partition changes."""
    path, _ = hats_catalogue
    before = _digests(path)
    code = score_cli.main(["--model", str(model), "--input", str(path), "--output",
                           str(path / where), "--workers", "1", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "overlaps this command's input" in err
    assert _digests(path) == before


def test_earlier_output_keeps_a_users_file(hats_catalogue, scored_hats, model):
    """Issue 23 case 1: re-scoring into our own HATS output replaces only the partitions its
    mark lists; a file the user put there stays."""
    path, _ = hats_catalogue
    _, out = scored_hats
    theirs = out / "notes.txt"  # (hats reads every file under dataset/ as Parquet)
    theirs.write_bytes(b"the user's")
    try:
        code = score_cli.main(["--model", str(model), "--input", str(path), "--output",
                               str(out), "--workers", "1", "--keep", "objid", "--quiet"])
        assert code == 1 and theirs.read_bytes() == b"the user's"
        assert json.loads((out / OWNER_FILE).read_text())["partitions"]
    finally:
        theirs.unlink()


@pytest.mark.slow  # the hats_catalogue fixture takes about 13 s
def test_em_priors_on_hats(hats_catalogue, model, tmp_path):
    path, df = hats_catalogue
    out = tmp_path / "em"
    code = score_cli.main(["--model", str(model), "--input", str(path), "--output", str(out),
                       "--workers", "1", "--priors", "em", "--quiet"])
    assert code == 1
    frame = lsdb.read_hats(out).compute()
    assert {"p_STAR", "p_STAR_model"} <= set(frame.columns)
    assert (out / "_priors.json").is_file()


def test_hats_output_needs_hats_input(tmp_path, model, capsys):
    write_catalogue(tmp_path / "a.parquet", 100, seed=0)
    code = score_cli.main(["--model", str(model), "--input", str(tmp_path / "a.parquet"),
                       "--output", str(tmp_path / "o"), "--output-format", "hats"])
    err = capsys.readouterr().err
    assert code == 2 and "--output-format hats needs a HATS catalogue as --input" in err


@pytest.mark.slow  # the hats_catalogue fixture takes about 13 s
def test_parquet_output_from_hats_input(hats_catalogue, model, tmp_path):
    path, df = hats_catalogue
    out = tmp_path / "flat"
    code = score_cli.main(["--model", str(model), "--input", str(path), "--output", str(out),
                       "--workers", "1", "--output-format", "parquet", "--quiet"])
    assert code == 1 and not (out / "hats.properties").exists()
    table = pa.concat_tables(pq.read_table(f) for f in sorted(out.glob("*.parquet")))
    assert len(table) == len(df)
