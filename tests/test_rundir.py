"""RunDir: one atomic switch per version, checked by killing writers at every step (as SQLite does).

Each writer here writes a run whose every file carries the writer's tag; after any kill the
run must verify against its manifest and carry ONE tag throughout (old or new), and the
next write must succeed and leave no staging directory or temporary link behind.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sdss_distill.core.errors import InputError
from sdss_distill.runs.rundir import MANIFEST, RunDir

ROOT = Path(__file__).resolve().parents[1]

WRITER = textwrap.dedent("""
    import os, shutil, sys, time
    from pathlib import Path
    from sdss_distill.runs.rundir import RunDir

    root, tag, kill_at, keep, pause = sys.argv[1:6]
    kill_at, pause = int(kill_at), float(pause)
    if kill_at:
        calls = [0]
        def patch(mod, name):
            real = getattr(mod, name)
            def wrapper(*a, **k):
                calls[0] += 1
                if calls[0] == kill_at:
                    os._exit(9)
                return real(*a, **k)
            setattr(mod, name, wrapper)
        for name in ("replace", "rename", "link", "symlink", "unlink", "rmdir", "mkdir", "fsync"):
            patch(os, name)
        patch(shutil, "copy2")
    with RunDir(root, lock_timeout=60).write(keep=keep.split(",") if keep else ()) as layout:
        layout.run_json.write_text(tag)
        layout.split_json.write_text(tag)
        for name in ("teacher", "student", "baseline"):
            layout.model(name).write_text(tag)
        layout.report_json.write_text(tag)
        layout.report_md.write_text(tag)
        time.sleep(pause)
        layout.tflite_file("student_int8").write_text(tag)
    """)


def write_run(root: Path, tag: str, *, kill_at: int = 0, keep: str = "", pause: float = 0.0,
              wait: bool = True):
    cmd = [sys.executable, "-c", WRITER, str(root), tag, str(kill_at), keep, str(pause)]
    if not wait:
        return subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)


def write_inline(root: Path, tag: str) -> None:
    """The same write as WRITER, in this process (for the recovery writes: faster)."""
    with RunDir(root, lock_timeout=60).write() as layout:
        for path in (layout.run_json, layout.split_json, layout.report_json, layout.report_md,
                     *(layout.model(n) for n in ("teacher", "student", "baseline")),
                     layout.tflite_file("student_int8")):
            path.write_text(tag)


def tags(root: Path) -> set[str]:
    """The tags found in a verified run (one tag means the run is whole)."""
    layout = RunDir(root).current()
    files = layout.manifest()["files"]
    assert set(files) >= {"run.json", "split.json", "models/student.keras", "reports/report.json"}
    return {(layout.root / rel).read_text() for rel in files}


def leftovers(root: Path) -> list[str]:
    versions = root.parent / f".{root.name}.runs"
    junk = [p.name for p in versions.iterdir() if p.name.endswith(".staging")]
    return junk + [p.name for p in root.parent.glob(f".{root.name}.*.link")]


@pytest.mark.slow
@pytest.mark.parametrize("start", ["none", "version", "legacy"])
def test_kill_at_every_file_operation_leaves_old_or_new_run_whole(tmp_path, start):
    root = tmp_path / "run"
    if start == "version":
        assert write_run(root, "old").returncode == 0
    elif start == "legacy":  # a run written before manifests: run.json under models/
        (root / "models").mkdir(parents=True)
        for f in ("run.json", "split.json", "teacher.keras", "student.keras"):
            (root / "models" / f).write_text("old")
    n, completed, kills_after_switch = 0, False, 0
    while not completed:
        n += 1
        assert n < 200, "the write never completed"
        proc = write_run(root, f"new{n}", kill_at=n, keep="models" if start == "legacy" else "")
        completed = proc.returncode == 0
        assert proc.returncode in (0, 9), proc.stderr
        if not (root.exists() or root.is_symlink()):
            found = {"absent"}
        elif start == "legacy" and not root.is_symlink():
            found = {(root / "models" / "run.json").read_text()}
        else:
            found = tags(root)
        before = {"absent"} if start == "none" and n == 1 else {"old"}
        # killed before the switch: the old run; killed after it (while pruning): the new one
        assert found in (({f"new{n}"},) if completed else (before, {f"new{n}"})), \
            f"kill at call {n}: {found}"
        switched_before_exit = not completed and found == {f"new{n}"}
        kills_after_switch += switched_before_exit
        # the next writer succeeds and cleans whatever the killed one left
        write_inline(root, "old")
        assert tags(root) == {"old"} and leftovers(root) == []
    assert n > 8 and n - kills_after_switch > 5  # kills before and after the switch were tried
    versions = list((tmp_path / ".run.runs").iterdir())
    assert len(versions) <= 2  # the current version and its parent


@pytest.mark.slow
def test_sigkill_at_random_moments(tmp_path):
    root = tmp_path / "run"
    assert write_run(root, "old").returncode == 0
    rng = random.Random(7)
    for k in range(5):
        proc = write_run(root, f"new{k}", pause=0.05, wait=False)
        time.sleep(rng.uniform(0.02, 0.4))
        proc.kill()
        proc.wait(timeout=30)
        found = tags(root)
        assert len(found) == 1 and found <= {"old", f"new{k}"} | {f"new{j}" for j in range(k)}
    assert write_run(root, "last").returncode == 0
    assert tags(root) == {"last"} and leftovers(root) == []


@pytest.mark.slow
def test_two_concurrent_writers_both_finish_one_wins_whole(tmp_path):
    root = tmp_path / "run"
    a = write_run(root, "A", pause=0.5, wait=False)
    time.sleep(0.2)
    b = write_run(root, "B", pause=0.0, wait=False)
    assert a.wait(timeout=60) == 0 and b.wait(timeout=60) == 0
    err = a.stderr.read() + b.stderr.read()
    assert "waiting for" in err and ".run.lock" in err
    assert tags(root) in ({"A"}, {"B"})
    assert tags(root) == {"B"}  # B waited for A's lock, so it switched last


@pytest.mark.slow
def test_lock_timeout_is_one_line_naming_the_lock(tmp_path):
    root = tmp_path / "run"
    holder = write_run(root, "A", pause=3.0, wait=False)
    time.sleep(1.0)
    with pytest.raises(InputError, match=r"\.run\.lock: another writer still holds"):
        with RunDir(root, lock_timeout=0.2).write():
            pass
    assert holder.wait(timeout=60) == 0
    assert tags(root) == {"A"}


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_cleans_up_like_sigint(tmp_path, sig, code):
    root = tmp_path / "run"
    assert write_run(root, "old").returncode == 0
    script = textwrap.dedent(f"""
        import sys, time
        from sdss_distill.core.errors import run_cli
        from sdss_distill.runs.rundir import RunDir
        def body():
            with RunDir({str(root)!r}).write() as layout:
                layout.run_json.write_text("new")
                print("ready", flush=True)
                time.sleep(30)
            return 0
        sys.exit(run_cli(body, "prog"))
        """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == code
    assert proc.stderr.read().strip() == ("prog: terminated" if code == 143 else "prog: interrupted")
    assert tags(root) == {"old"} and leftovers(root) == []


def test_exception_in_block_keeps_old_run(tmp_path):
    root = tmp_path / "run"
    assert write_run(root, "old").returncode == 0
    with pytest.raises(RuntimeError):
        with RunDir(root).write() as layout:
            layout.run_json.write_text("new")
            raise RuntimeError("training failed")
    assert tags(root) == {"old"} and leftovers(root) == []


def test_keep_copies_and_records_parent(tmp_path):
    root = tmp_path / "run"
    assert write_run(root, "old").returncode == 0
    first = RunDir(root).current()
    with RunDir(root).write(keep=["models", "run.json"]) as layout:
        layout.report_json.write_text("export")
    now = RunDir(root).current()
    doc = now.manifest()
    assert doc["parent"] == first.run_id and doc["run_id"] == now.run_id != first.run_id
    assert not os.path.samefile(first.model("student"), now.model("student"))
    assert now.model("student").read_text() == "old"
    assert now.run_json.read_text() == "old" and not now.split_json.exists()
    assert json.loads(now.manifest_json.read_text())["files"]["run.json"]["size"] == 3


def test_stale_base_is_refused(tmp_path):
    root = tmp_path / "run"
    assert write_run(root, "old").returncode == 0
    seen = RunDir(root).current()
    assert write_run(root, "other").returncode == 0
    with pytest.raises(InputError, match="changed while this command read it"):
        with RunDir(root).write(base=seen):
            pass
    assert tags(root) == {"other"}


@pytest.mark.parametrize("damage, message", [
    (lambda L: L.model("student").write_text("changed"), r"student\.keras: SHA-256 differs"),
    (lambda L: L.split_json.unlink(), r"split\.json: listed in manifest\.json but missing"),
    (lambda L: L.model("extra").write_text("x"), r"extra\.keras: not in the run's manifest"),
    (lambda L: L.manifest_json.write_text("{"), r"manifest\.json: corrupt"),
    (lambda L: L.manifest_json.unlink(), r"manifest\.json: missing"),
])
def test_current_refuses_a_changed_run(tmp_path, damage, message):
    root = tmp_path / "run"
    assert write_run(root, "old").returncode == 0
    damage(RunDir(root).current())
    with pytest.raises(InputError, match=message):
        RunDir(root).current()
    RunDir(root).current(verify=False)  # still resolvable for repair


def test_current_on_non_runs(tmp_path):
    with pytest.raises(InputError, match="no such run directory; train one"):
        RunDir(tmp_path / "nothing").current()
    with pytest.raises(InputError, match=r"not a training run \(no manifest\.json"):
        RunDir(tmp_path).current()
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    with pytest.raises(InputError, match="dangling symlink"):
        RunDir(tmp_path / "dangling").current()


def _file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    return path


def _ro_parent(tmp_path: Path) -> Path:
    """A directory this process cannot create files in (root ignores modes: use /proc)."""
    if os.geteuid() == 0:
        return Path("/proc/self")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    return ro


@pytest.mark.parametrize("make, message", [
    (lambda t: ".", "name a new directory for the run"),
    (lambda t: _file(t / "f") / "run", r"/f is a file, not a directory"),
    (lambda t: _file(t / "f"), "exists and is not a directory"),
    (lambda t: _file(t / "d" / "x").parent, "an existing directory that is not a run"),
    (lambda t: (t / "l").symlink_to(t / "gone") or t / "l", "a dangling symlink"),
    (lambda t: (t / "l").symlink_to(t) or t / "l", "not a run version of this directory"),
    (lambda t: _ro_parent(t) / "run", "cannot write in"),
])
def test_check_writable_refuses_with_one_line(tmp_path, make, message):
    target = make(tmp_path)
    with pytest.raises(InputError, match=message) as e:
        RunDir(target).check_writable()
    assert "\n" not in str(e.value)


def test_check_writable_accepts_new_empty_and_nested(tmp_path):
    (tmp_path / "empty").mkdir()
    for target in (tmp_path / "new", tmp_path / "empty", tmp_path / "a" / "b" / "c"):
        RunDir(target).check_writable()
    with RunDir(tmp_path / "empty").write() as layout:
        layout.run_json.write_text("{}")
    assert (tmp_path / "empty").is_symlink() and RunDir(tmp_path / "empty").current().run_json.is_file()
    assert not (tmp_path / "a").exists()  # checking creates nothing


def test_manifest_lists_every_file_with_hash(tmp_path):
    root = tmp_path / "run"
    assert write_run(root, "old").returncode == 0
    layout = RunDir(root).current()
    files = layout.manifest()["files"]
    assert MANIFEST not in files and "tflite/student_int8.tflite" in files
    import hashlib
    assert files["run.json"]["sha256"] == hashlib.sha256(b"old").hexdigest()


def test_a_converted_pre_manifest_run_is_kept_as_the_previous_version(tmp_path):
    """Issue 23 case 12: the docs keep the version before a switch; a legacy run is one too."""
    root = tmp_path / "run"
    (root / "models").mkdir(parents=True)
    for f in ("run.json", "split.json", "teacher.keras", "student.keras"):
        (root / "models" / f).write_text("old")
    write_inline(root, "new")
    layout = RunDir(root).current()
    parent = layout.manifest()["parent"]
    kept = tmp_path / ".run.runs" / parent
    assert tags(root) == {"new"} and parent == f"legacy-{layout.run_id}"
    assert (kept / "models" / "student.keras").read_text() == "old"
    write_inline(root, "newer")  # one switch later it is the grandparent: removed
    assert not kept.exists() and len(list((tmp_path / ".run.runs").iterdir())) == 2
