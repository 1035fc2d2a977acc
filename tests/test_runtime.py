"""runtime.write_atomic: whole files only, with the user's umask (not mkstemp's 0600)."""

import os

import pytest

from sdss_distill.core.io import umask, write_atomic


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_write_atomic_follows_the_umask(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        assert umask() == mask
        write_atomic(tmp_path / "f.json", "{}")
        write_atomic(tmp_path / "f.json", b"[]")  # replacing keeps the rule
    finally:
        os.umask(old)
    assert (tmp_path / "f.json").stat().st_mode & 0o777 == mode
    assert (tmp_path / "f.json").read_text() == "[]"


def test_write_atomic_leaves_nothing_on_failure(tmp_path):
    with pytest.raises(TypeError):
        write_atomic(tmp_path / "f", 3)
    assert list(tmp_path.iterdir()) == []
