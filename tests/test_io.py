"""core/io.py's bounded readers and lock (issue 23 cases 9 and 11): a device, FIFO, oversized,
non-UTF-8 or deeply nested file is one InputError naming it; one holder per lock."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from sdss_distill.core import bounded, io
from sdss_distill.core.errors import InputError
from sdss_distill.core.schema import LABELS


def test_a_fifo_or_device_is_refused_without_reading_it(tmp_path):
    os.mkfifo(tmp_path / "p.json")  # no writer: a blocking open would hang here
    with pytest.raises(InputError, match=r"p\.json: a FIFO \(named pipe\), not a regular file; fix"):
        bounded.read_bounded(tmp_path / "p.json", fix="fix")
    (tmp_path / "z.json").symlink_to("/dev/zero")
    with pytest.raises(InputError, match=r"z\.json: a character device, not a regular file"):
        bounded.load_json(tmp_path / "z.json", fix="fix")


def test_files_past_the_cap_are_refused(tmp_path):
    path = tmp_path / "big.json"
    path.write_text("[" + "0," * 50 + "0]")
    assert len(bounded.load_json(path, fix="fix")) == 51
    with pytest.raises(InputError, match=r"big\.json: 103 bytes, more than the 100-byte cap"):
        bounded.read_bounded(path, fix="fix", cap=100)


@pytest.mark.parametrize("depth, ok", [(bounded.MAX_DEPTH, True), (bounded.MAX_DEPTH + 1, False),
                                       (100_000, False)])
def test_json_nesting_is_capped(tmp_path, depth, ok):
    path = tmp_path / "deep.json"
    path.write_text("[" * depth + "]" * depth)
    if ok:
        bounded.load_json(path, fix="fix")
    else:
        with pytest.raises(InputError, match=rf"deep\.json: nested deeper than {bounded.MAX_DEPTH} levels"):
            bounded.load_json(path, fix="fix")


@pytest.mark.parametrize("content, message", [
    (b'a = "\xff"\n', r"not UTF-8 text \(byte 0xff at offset 5\)"),
    ("a = " + "[" * 5000 + "]" * 5000 + "\n", r"nested deeper than 64 levels"),
    ("a = " + "{b = " * 100 + "1" + "}" * 100 + "\n", r"nested deeper than 64 levels"),
    ("a = [1,\n", r"not valid TOML"),
])
def test_toml_faults_are_one_line(tmp_path, content, message):
    path = tmp_path / "c.toml"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(InputError, match=rf"c\.toml: {message}"):
        io.read_toml(path)


def test_read_json_keeps_its_messages(tmp_path):
    with pytest.raises(InputError, match=r"none\.json: missing; train the run again"):
        io.read_json(tmp_path / "none.json")
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(InputError, match=r"a JSON list, not an object"):
        io.read_json(tmp_path / "list.json")


def test_a_nested_priors_record_is_ignored_not_a_traceback(tmp_path):
    from sdss_distill.score import em
    (tmp_path / em.RECORD).write_text("[" * 100_000 + "]" * 100_000)
    assert em.previous_record(tmp_path, SimpleNamespace(key="k", labels=LABELS)) is None


def test_one_holder_per_lock_and_the_lock_file_goes(tmp_path):
    lock = tmp_path / ".out.lock"
    with io.exclusive(lock, "busy"):
        with pytest.raises(InputError, match="busy"):
            with io.exclusive(lock, "busy"):
                pass
    assert not lock.exists()
    with io.exclusive(lock, "busy"):  # free again
        assert lock.exists()
