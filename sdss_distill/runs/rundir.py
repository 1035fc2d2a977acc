"""A run directory written as a whole: versions, a manifest of SHA-256s, one atomic switch.

On disk, for `--out runs/seed3`:

    runs/seed3                    -> .seed3.runs/20261122T165301Z-3f9a1c   (a symlink)
    runs/.seed3.runs/<run_id>/    one complete version: models/, reports/, tflite/,
                                  run.json, split.json, manifest.json
    runs/.seed3.lock              flock'ed by the one writer at a time

A writer builds a new version in `.seed3.runs/<run_id>.staging/`, writes manifest.json
(every file's path, SHA-256 and size), renames the staging directory to `<run_id>/`, and
switches the run by replacing the symlink in one `os.replace` (atomic on POSIX). A reader
that resolves the symlink once sees one version whole. The version before the switch is
kept (a reader may still be reading it); older ones, and whatever a killed writer left, are
removed by the next writer. Stdlib only: the edge runtime and notebooks import it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from sdss_distill.core.cli import train_hint
from sdss_distill.core.errors import InputError, check_signals, sigterm_raises
from sdss_distill.core.io import read_json, sha256_file  # noqa: F401  (re-exported)
from sdss_distill.core.layout import (  # noqa: F401  (re-exported)
    LEGACY_FILES,
    MANIFEST,
    MARKER,
    STAGING,
    Layout,
    LegacyLayout,
)
from sdss_distill.core.safety import remove_file_within, remove_tree_within

LOCK_TIMEOUT_S = 600.0

def new_run_id() -> str:
    """Sortable and unique: UTC time to the microsecond plus 6 random hex digits."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


def legacy_strangers(path: Path) -> list[str] | None:
    """None if `path` does not look like a pre-manifest run at all; else the files in it that
    such a run never holds ([] for a genuine one)."""
    models = path / "models"
    if (path.is_symlink() or not (models / "run.json").is_file() or (path / MANIFEST).exists()
            or not (models / "split.json").is_file()):
        return None
    strangers = []
    for entry in sorted(path.rglob("*")):
        rel = entry.relative_to(path)
        parts = rel.parts
        if entry.is_symlink():
            strangers.append(rel.as_posix())
        elif len(parts) == 1 and parts[0] in LEGACY_FILES and entry.is_dir():
            continue
        elif not (len(parts) == 2 and parts[0] in LEGACY_FILES and entry.is_file()
                  and any(entry.match(pat) for pat in LEGACY_FILES[parts[0]])):
            strangers.append(rel.as_posix())
    return strangers


def _is_legacy_run(path: Path) -> bool:
    return legacy_strangers(path) == []


def build_manifest(root: Path, parent: str | None) -> dict:
    """Every regular file under `root` (not manifest.json, not hidden): SHA-256 and size."""
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_dir() or rel == MANIFEST or any(p.startswith(".") for p in rel.split("/")):
            continue
        files[rel] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    return {"format": MARKER, "run_id": root.name.removesuffix(STAGING),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "parent": parent, "files": files}


def verify_layout(layout: Layout, manifest: dict | None = None) -> None:
    """Refuse a version whose files differ from its manifest: missing, changed or unlisted."""
    if layout.legacy:
        return
    doc = manifest or layout.manifest()
    fix = "the run was modified after it was written; train it again (or restore the file)"
    for rel, entry in doc["files"].items():
        path = layout.root / rel
        if not path.is_file():
            raise InputError(f"{path}: listed in {MANIFEST} but missing; {fix}")
        if path.stat().st_size != entry["size"] or sha256_file(path) != entry["sha256"]:
            raise InputError(f"{path}: SHA-256 differs from {MANIFEST}; {fix}")
    if "reports/export.json" in doc["files"]:
        exported = read_json(layout.export_json, fix=fix).get("models") or {}
        for name, entry in exported.items():
            listed_model = doc["files"].get(f"models/{name}.keras", {})
            if entry.get("model_sha256") != listed_model.get("sha256"):
                raise InputError(f"{layout.export_json}: made from another {name}.keras than "
                                 f"this run's; export the run again")
    listed = set(doc["files"])
    for path in sorted(layout.root.rglob("*")):
        rel = path.relative_to(layout.root).as_posix()
        if (path.is_file() and rel not in listed and rel != MANIFEST
                and not any(p.startswith(".") for p in rel.split("/"))):
            raise InputError(f"{path}: not in the run's {MANIFEST} (written into the run by "
                             f"something else); remove it or train the run again")


def _sigterm_as_interrupt():
    """SIGTERM raises Terminated inside a write, unless a handler (run_cli's) is already set."""
    main = threading.current_thread() is threading.main_thread()
    if main and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        return sigterm_raises()
    return contextlib.nullcontext()


class RunDir:
    """The run directory a user names with --out (or --run): every version, the lock, the switch."""

    def __init__(self, root, *, lock_timeout: float = LOCK_TIMEOUT_S):
        self.given = str(root)
        self.root = Path(os.path.abspath(root))
        self.lock_timeout = lock_timeout
        self.versions = self.root.parent / f".{self.root.name}.runs"
        self.lock_path = self.root.parent / f".{self.root.name}.lock"

    # --- checks --------------------------------------------------------------------------

    def check_writable(self) -> None:
        """Before any training: an InputError (one line, with the fix) if a run cannot go here."""
        arg = self.given
        name = Path(arg).name
        if arg.strip() in ("", ".", "..") or name in ("", ".", "..") or self.root == self.root.parent:
            raise InputError(f"--out {arg!r}: name a new directory for the run (e.g. runs/seed0), "
                             f"not {arg!r}; the run path becomes a symlink to its current version")
        ancestor = self.root.parent
        while not ancestor.exists():
            if ancestor.is_symlink():
                raise InputError(f"--out {arg}: {ancestor} is a dangling symlink; remove it or "
                                 f"pick another path")
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise InputError(f"--out {arg}: {ancestor} is a file, not a directory; pick a path "
                             f"outside it")
        try:
            with tempfile.TemporaryFile(dir=ancestor):
                pass
        except OSError as e:
            raise InputError(f"--out {arg}: cannot write in {ancestor} ({e.strerror}); pick a "
                             f"writable directory") from None
        root = self.root
        if root.is_symlink():
            if not root.exists():
                raise InputError(f"--out {arg}: a dangling symlink (to {os.readlink(root)}); "
                                 f"remove it or pick another path")
            if not self._ours(root):
                raise InputError(f"--out {arg}: a symlink to {os.readlink(root)}, which is not "
                                 f"a run version of this directory; remove it or pick another path")
        elif root.exists():
            if not root.is_dir():
                raise InputError(f"--out {arg}: exists and is not a directory; pick a new path")
            if (root / MANIFEST).is_file():
                raise InputError(f"--out {arg}: one version of a run, not the run itself; pass "
                                 f"the run path (the symlink to it)")
            strangers = legacy_strangers(root)
            if strangers:
                raise InputError(f"--out {arg}: looks like a run written before manifests but "
                                 f"holds files a run never has ({', '.join(strangers[:3])}"
                                 f"{', ...' if len(strangers) > 3 else ''}); move them out or "
                                 f"pick a new path (nothing was changed)")
            if any(root.iterdir()) and strangers is None:
                raise InputError(f"--out {arg}: an existing directory that is not a run; pick a "
                                 f"new path (the run path becomes a symlink to its version)")
        self._check_versions_dir()

    def _check_versions_dir(self) -> None:
        """`.NAME.runs` must be a real directory (or absent): its entries get deleted."""
        v = self.versions
        if v.is_symlink():
            raise InputError(f"--out {self.given}: {v.name} beside it is a symlink, nothing "
                             f"was deleted; a run keeps its versions in a real directory, remove "
                             f"the link or pick another path")
        if v.exists() and not v.is_dir():
            raise InputError(f"--out {self.given}: {v} is not a directory; remove it or pick "
                             f"another path")

    def _ours(self, link: Path) -> bool:
        """A symlink to `.NAME.runs/<version>` beside it (relative, no detour), whose real
        path is a directory directly inside this run's own real `.NAME.runs`."""
        target = os.readlink(link)
        parts = Path(target).parts
        if (os.path.isabs(target) or len(parts) != 2 or parts[0] != self.versions.name
                or parts[1] in ("", ".", "..") or self.versions.is_symlink()):
            return False
        real = Path(os.path.realpath(link))
        return real.is_dir() and real.parent == Path(os.path.realpath(self.versions))

    # --- reading -------------------------------------------------------------------------

    def current(self, *, verify: bool = True) -> Layout:
        """The version the run path names now, resolved once; verified against its manifest."""
        root = self.root
        if root.is_symlink() and self._ours(root):
            layout = Layout(root.resolve())
            if verify:
                verify_layout(layout)
            return layout
        if root.is_dir() and _is_legacy_run(root):
            return LegacyLayout(root)
        if root.is_dir() and not root.is_symlink() and (root / MANIFEST).is_file():
            layout = Layout(root)  # one version, named directly (e.g. a resolved run path)
            if verify:
                verify_layout(layout)
            return layout
        if root.is_symlink() and not root.exists():
            raise InputError(f"{self.given}: dangling symlink (to {os.readlink(root)}); the run's "
                             f"version is gone, {train_hint()}")
        if not root.exists():
            raise InputError(f"{self.given}: no such run directory; {train_hint()}")
        strangers = legacy_strangers(root)
        if strangers:
            raise InputError(f"{self.given}: looks like a run written before manifests but holds "
                             f"files a run never has ({', '.join(strangers[:3])}"
                             f"{', ...' if len(strangers) > 3 else ''}); move them out of it")
        raise InputError(f"{self.given}: not a training run (no {MANIFEST} and no models/run.json); "
                         f"{train_hint()}")

    def _current_or_none(self) -> Layout | None:
        try:
            return self.current(verify=False)
        except InputError:
            return None

    # --- writing -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            deadline, told = time.monotonic() + self.lock_timeout, False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise InputError(f"{self.lock_path}: another writer still holds the run's "
                                         f"lock after {self.lock_timeout:g} s; wait for it to "
                                         f"finish (or stop it) and try again") from None
                    if not told:
                        print(f"waiting for {self.lock_path}: another train/export is writing "
                              f"{self.given}", file=sys.stderr, flush=True)
                        told = True
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)  # releases the flock

    def _switch(self, version: Path) -> None:
        """Point the run path at `version` in one atomic rename of a fresh symlink."""
        link = self.root.parent / f".{self.root.name}.{version.name}.link"
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        os.symlink(os.path.join(self.versions.name, version.name), link)
        if self.root.is_dir() and not self.root.is_symlink():
            if _is_legacy_run(self.root):  # kept as a version: the new one's parent (write)
                os.rename(self.root, self.versions / f"legacy-{version.name}")
            else:
                self.root.rmdir()  # empty: check_writable refused anything else
        os.replace(link, self.root)
        _fsync_dir(self.root.parent)

    def _clean(self, keep: set[str]) -> None:
        """Remove versions not in `keep`, staging dirs and temp links a killed writer left;
        only real directories directly inside the real `.NAME.runs`, never through a link."""
        if self.versions.is_dir() and not self.versions.is_symlink():
            for entry in self.versions.iterdir():
                if entry.name not in keep:
                    remove_tree_within(entry, self.versions)
        for link in self.root.parent.glob(f".{self.root.name}.*.link"):
            if link.is_symlink():
                remove_file_within(link, self.root.parent)

    def _live(self) -> set[str]:
        """Names under versions/ still in use: the current version and its parent."""
        if not (self.root.is_symlink() and self._ours(self.root)):
            return {e.name for e in self.versions.glob("legacy-*")} if not self.root.exists() else set()
        current = Path(os.readlink(self.root)).name
        names = {current}
        with contextlib.suppress(InputError):
            parent = Layout(self.versions / current).manifest().get("parent")
            if parent:
                names.add(parent)
        return names

    def _recover_legacy(self) -> None:
        """A writer killed between moving a legacy run aside and the symlink: move it back."""
        if not self.root.exists() and not self.root.is_symlink():
            moved = sorted(self.versions.glob("legacy-*")) if self.versions.is_dir() else []
            if moved:
                os.rename(moved[-1], self.root)

    @contextlib.contextmanager
    def write(self, *, keep: Iterable[str] = (), base: Layout | None = None) -> Iterator[Layout]:
        """A new version to fill; switched in whole on a clean exit, removed on any error.

        `keep`: relative paths (files or directories) copied from the current version (a
        path it lacks is skipped).
        `base`: the version the caller read; if another writer switched the run since, the
        write is refused instead of mixing the two.
        """
        self.check_writable()
        with _sigterm_as_interrupt(), self._lock():
            self._check_versions_dir()
            self._recover_legacy()
            old = self._current_or_none()
            if base is not None and (old is None or old.root != base.root):
                raise InputError(f"{self.given}: changed while this command read it (another "
                                 f"train or export switched it); run the command again")
            self.versions.mkdir(parents=True, exist_ok=True)
            self._clean(self._live())
            staging = self.versions / (new_run_id() + STAGING)
            staging.mkdir()
            try:
                layout = Layout(staging)
                for d in (layout.models, layout.reports, layout.tflite):
                    d.mkdir()
                for rel in keep:
                    if old is not None:
                        _carry(old, rel, staging)
                yield layout
                parent = None if old is None else f"legacy-{layout.run_id}" if old.legacy else old.run_id
                manifest = build_manifest(staging, parent)
                _write_synced(layout.manifest_json, json.dumps(manifest, indent=2) + "\n")
                for rel in manifest["files"]:
                    _fsync_path(staging / rel)
                check_signals()  # a SIGINT/SIGTERM whose exception got lost: no new version
                final = self.versions / layout.run_id
                os.rename(staging, final)
                _fsync_dir(self.versions)
                self._switch(final)
            except BaseException:
                remove_tree_within(staging, self.versions)
                raise
            self._clean(self._live())


def _carry(old: Layout, rel: str, staging: Path) -> None:
    """Copy `rel` (file or directory) from the old version into the staging one."""
    src = old.source(rel)
    if not src.exists():
        return
    dst = staging / rel
    if src.is_dir():
        for path in sorted(src.rglob("*")):
            if path.is_file() and not (old.legacy and path in (old.run_json, old.split_json)):
                _copy(path, dst / path.relative_to(src))
    else:
        _copy(src, dst)


def _copy(src: Path, dst: Path) -> None:
    """Copied, not hard-linked: an in-place write into a kept file (e.g. a Keras save over
    it) would otherwise change the previous version too, which readers may still hold."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        _fsync_path(path)
