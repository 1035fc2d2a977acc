"""The JAX compile cache cannot change a result (issue 23 case 6): planted, swapped and
truncated entries are replaced once, quietly; the folder is private; XDG_CACHE_HOME wins."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sdss_distill.distill import compile_cache

# One jitted program with the temperature compiled in, as jax_fit's epoch has it: T=2 and T=8
# are two entries. `plain` uses JAX's own cache (the behaviour the issue reported), else ours.
SCRIPT = """
import json, sys
from functools import partial
mode, t = sys.argv[1], float(sys.argv[2])
import jax
if mode == "plain":
    jax.config.update("jax_compilation_cache_dir", sys.argv[3])
else:
    from sdss_distill.distill import compile_cache
    compile_cache.enable()
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
import jax.numpy as jnp

@partial(jax.jit, static_argnums=1)
def tempered(x, t):
    return jax.nn.softmax(x / t)

print(json.dumps(tempered(jnp.array([1.0, 2.0, 4.0]), t).tolist()))
"""


def run(mode: str, t: float, env: dict, folder: Path | None = None):
    """(softmax output, stderr) of one fresh process."""
    argv = [sys.executable, "-c", SCRIPT, mode, str(t)] + ([str(folder)] if folder else [])
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


def environ(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CACHE_HOME", compile_cache.ENV)}
    return {**env, "PYTHONPATH": str(Path(__file__).parents[1]), **extra}


def entries(folder: Path, pattern: str) -> set[Path]:
    return set(folder.glob(pattern))


def valid(entry: Path) -> bool:
    """The entry is whole and names its own key (a recompiled entry need not be byte-identical:
    it records its compile time)."""
    key = entry.name.removesuffix(compile_cache.SUFFIX)
    return compile_cache.read_entry(entry, key, compile_cache._versions()) is not None


def plant(folder: Path, pattern: str, mode: str, env: dict):
    """Compile T=2 then T=8; copy T=8's entry over T=2's. Returns (T=2, T=8 outputs, T=2 file)."""
    two, _ = run(mode, 2, env, folder if mode == "plain" else None)
    (entry2,) = entries(folder, pattern)
    eight, _ = run(mode, 8, env, folder if mode == "plain" else None)
    (entry8,) = entries(folder, pattern) - {entry2}
    shutil.copyfile(entry8, entry2)
    assert two != eight
    return two, eight, entry2


@pytest.mark.slow
def test_jax_own_cache_runs_a_planted_entry(tmp_path):
    """The control: with JAX's plain cache the planted T=8 entry gives T=2 the T=8 result, so
    the next test can fail."""
    folder = tmp_path / "plain"
    two, eight, _ = plant(folder, "jit_tempered-*-cache", "plain", environ())
    assert run("plain", 2, environ(), folder)[0] == eight != two


@pytest.mark.slow
def test_planted_swapped_and_truncated_entries_are_replaced_once_quietly(tmp_path):
    folder = tmp_path / "cache"
    env = environ(**{compile_cache.ENV: str(folder)})
    two, eight, entry2 = plant(folder, "jit_tempered-*.entry", "ours", env)
    got, err = run("ours", 2, env)  # the whole T=8 file (its header names its own key)
    assert got == two != eight and err == "" and valid(entry2)
    fixed = entry2.read_bytes()
    assert run("ours", 2, env) == (two, "") and entry2.read_bytes() == fixed  # replaced once
    head, _, payload = fixed.partition(b"\n")
    (entry8,) = entries(folder, "jit_tempered-*.entry") - {entry2}
    _, _, payload8 = entry8.read_bytes().partition(b"\n")
    for bad in (payload[: len(payload) // 2], payload8):  # truncated; T=8's under T=2's header
        entry2.write_bytes(head + b"\n" + bad)
        assert run("ours", 2, env) == (two, "") and valid(entry2)
        fixed = entry2.read_bytes()
        assert run("ours", 2, env) == (two, "") and entry2.read_bytes() == fixed

@pytest.mark.slow
def test_xdg_cache_home_is_honoured(tmp_path):
    home = tmp_path / "xdg"
    run("ours", 2, environ(XDG_CACHE_HOME=str(home)))
    folder = home.joinpath(*compile_cache.FOLDER)
    assert entries(folder, "jit_tempered-*.entry") and (folder.stat().st_mode & 0o777) == 0o700


def test_default_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(compile_cache.ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compile_cache.default_folder() == tmp_path.joinpath(*compile_cache.FOLDER)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG spec: absolute only
    assert compile_cache.default_folder() == Path.home().joinpath(".cache", *compile_cache.FOLDER)
    monkeypatch.setenv(compile_cache.ENV, "")
    assert compile_cache.default_folder() is None


def test_only_a_private_folder_of_this_user_is_used(tmp_path):
    mine = tmp_path / "a" / "jax"
    assert compile_cache.private_folder(mine) is None
    assert mine.stat().st_mode & 0o777 == 0o700
    mine.chmod(0o777)
    assert "group or others may write it (mode 777" in compile_cache.private_folder(mine)
    link = tmp_path / "link"
    link.symlink_to(mine)
    mine.chmod(0o700)
    assert compile_cache.private_folder(link) == "it is a symlink or not a directory"


def test_an_entry_must_name_its_key_versions_and_digest(tmp_path):
    versions = {"jax": "1", "jaxlib": "1"}
    path = tmp_path / "k.entry"
    path.write_bytes(compile_cache.header("k", b"payload", versions) + b"payload")
    assert compile_cache.read_entry(path, "k", versions) == b"payload"
    assert compile_cache.read_entry(path, "other", versions) is None
    assert compile_cache.read_entry(path, "k", {"jax": "2", "jaxlib": "1"}) is None
    path.write_bytes(compile_cache.header("k", b"payload", versions) + b"payloaX")
    assert compile_cache.read_entry(path, "k", versions) is None
    path.write_bytes(b"no header at all")
    assert compile_cache.read_entry(path, "k", versions) is None
    target = tmp_path / "t.entry"
    target.write_bytes(compile_cache.header("k", b"p", versions) + b"p")
    path.unlink()
    path.symlink_to(target)  # a link is never followed, whatever it points at
    assert compile_cache.read_entry(path, "k", versions) is None
