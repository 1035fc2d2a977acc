"""Issue 15, cases 1, 2 and 7 (run side): nothing outside a run is ever deleted or moved.

Every test plants a canary file outside the run that must survive the command.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sdss_distill.core.errors import InputError
from sdss_distill.runs.rundir import RunDir, verify_layout
from sdss_distill.train import main as train_main


def _write(root: Path, tag: str = "x") -> None:
    with RunDir(root, lock_timeout=5).write() as layout:
        for path in (layout.run_json, layout.split_json, layout.model("student")):
            path.write_text(tag)


def _tree(path: Path) -> dict:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


def test_user_dir_with_models_run_json_is_not_taken_for_a_legacy_run(tmp_path, real_table, capsys):
    """Case 1: a user's directory holding models/run.json ({}) is refused whole, untouched."""
    user = tmp_path / "thesis"
    (user / "models").mkdir(parents=True)
    (user / "models" / "run.json").write_text("{}")
    (user / "src").mkdir()
    (user / "src" / "thesis.tex").write_text("\\chapter{Years of work}")
    before = _tree(user)
    assert train_main(["--data", str(real_table), "--out", str(user), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a run" in err and len(err) <= 300
    assert _tree(user) == before and not (tmp_path / ".thesis.runs").exists()


def test_legacy_run_with_extra_files_is_refused_naming_them(tmp_path, capsys):
    """Case 1: a genuine pre-manifest run plus a user's file: conversion refused, all kept."""
    root = tmp_path / "run"
    (root / "models").mkdir(parents=True)
    for f in ("run.json", "split.json", "student.keras", "teacher.keras"):
        (root / "models" / f).write_text("old")
    (root / "notes.txt").write_text("mine")
    before = _tree(root)
    with pytest.raises(InputError, match=r"holds files a run never has \(notes\.txt\)"):
        _write(root)
    with pytest.raises(InputError, match=r"holds files a run never has \(notes\.txt\); move"):
        RunDir(root).current()  # what export reads first
    assert _tree(root) == before
    (root / "notes.txt").unlink()  # the exact old file set converts
    _write(root, "new")
    assert root.is_symlink() and RunDir(root).current().run_json.read_text() == "new"


def test_versions_dir_that_is_a_symlink_is_refused(tmp_path, real_table, capsys):
    """Case 2: `.NAME.runs` -> elsewhere: refused, the target's subdirectories survive."""
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "precious").mkdir(parents=True)
    (elsewhere / "precious" / "canary.txt").write_text("alive")
    (tmp_path / ".run.runs").symlink_to(elsewhere)
    assert train_main(["--data", str(real_table), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "is a symlink" in err and "nothing was deleted" in err
    with pytest.raises(InputError, match="is a symlink"):
        _write(tmp_path / "run")
    assert (elsewhere / "precious" / "canary.txt").read_text() == "alive"


def test_run_link_to_an_absolute_versions_dir_elsewhere_is_refused(tmp_path):
    """Case 2: run -> /elsewhere/.run.runs/x is not ours; our real versions are kept."""
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir()
    _write(here / "run", "v1")
    _write(here / "run", "v2")
    versions = sorted(p.name for p in (here / ".run.runs").iterdir())
    (elsewhere / ".run.runs" / "x").mkdir(parents=True)
    (elsewhere / ".run.runs" / "x" / "canary.txt").write_text("alive")
    (here / "run").unlink()
    (here / "run").symlink_to(elsewhere / ".run.runs" / "x")
    with pytest.raises(InputError, match="not a run version of this directory"):
        _write(here / "run", "v3")
    with pytest.raises(InputError, match="not a training run"):
        RunDir(here / "run").current()
    assert sorted(p.name for p in (here / ".run.runs").iterdir()) == versions
    assert (elsewhere / ".run.runs" / "x" / "canary.txt").read_text() == "alive"


def test_symlink_entry_in_versions_dir_is_never_followed(tmp_path):
    """Case 2: cleaning `.run.runs` removes our stale versions, never a link's target."""
    _write(tmp_path / "run", "v1")
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "sub" / "canary.txt").write_text("alive")
    (tmp_path / ".run.runs" / "20200101T000000000000Z-abcdef").symlink_to(outside)
    (tmp_path / ".run.runs" / "junk.staging").symlink_to(outside / "sub")
    _write(tmp_path / "run", "v2")
    _write(tmp_path / "run", "v3")
    assert (outside / "sub" / "canary.txt").read_text() == "alive"
    assert RunDir(tmp_path / "run").current().run_json.read_text() == "v3"


@pytest.mark.parametrize("entry", [{"sha256": "0" * 64}, "a string", {"sha256": 5, "size": 1},
                                   {"sha256": "0" * 64, "size": "12"}])
def test_malformed_manifest_entry_is_one_line(tmp_path, entry):
    """Case 7: a manifest entry without size, or not a mapping: InputError, no traceback."""
    _write(tmp_path / "run")
    layout = RunDir(tmp_path / "run").current()
    doc = json.loads(layout.manifest_json.read_text())
    doc["files"]["run.json"] = entry
    os.chmod(layout.manifest_json, 0o644)
    layout.manifest_json.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="corrupt entry for 'run.json'"):
        verify_layout(layout)
    with pytest.raises(InputError, match="corrupt entry"):
        RunDir(tmp_path / "run").current()


def test_manifest_that_is_not_an_object_is_one_line(tmp_path):
    _write(tmp_path / "run")
    layout = RunDir(tmp_path / "run").current()
    layout.manifest_json.write_text('"just a string"')
    with pytest.raises(InputError, match="not an object"):
        RunDir(tmp_path / "run").current()
