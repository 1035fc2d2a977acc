import pytest

from sdss_distill.core import schema


def test_labels_fixed_order():
    assert schema.LABELS == ("GALAXY", "QSO", "STAR")


@pytest.mark.parametrize("name, canonical", [
    ("u", "u"), ("U", "u"), ("obj_ID", "objid"), ("alpha", "ra"), ("delta", "dec"),
    ("run_ID", "run"), ("rerun_ID", "rerun"), ("cam_col", "camcol"), ("field_ID", "field"),
    ("spec_obj_ID", "specobjid"), ("MJD", "mjd"), ("fiber_ID", "fiberid"), ("CLASS", "class"),
    ("Redshift", "redshift"), ("modelMag_r", "r"), ("unknown_col", None),
])
def test_aliases_any_case(name, canonical):
    assert schema.canonical_name(name) == canonical


def test_user_mapping_wins():
    assert schema.canonical_name("rmag", {"rmag": "r"}) == "r"


def test_views():
    assert schema.get_view("photometric").columns == ("u", "g", "r", "i", "z")
    assert schema.get_view("physical").columns == ("u", "g", "r", "i", "z", "redshift")
    paper = schema.get_view("paper17")
    assert len(paper.columns) == 17 and "class" not in paper.columns and paper.leaky


def test_bad_view_lists_choices():
    with pytest.raises(ValueError, match="choose one of: photometric, physical, paper17"):
        schema.get_view("spectral")


def test_colour_pairs_and_scales():
    cols = schema.get_view("physical").columns
    assert schema.colour_pairs(cols) == [[0, 1], [1, 2], [2, 3], [3, 4]]
    assert schema.asinh_scales(cols) == [0, 0, 0, 0, 0, 1e4]
