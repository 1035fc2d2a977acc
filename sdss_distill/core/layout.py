"""The files of one run version and its manifest, read without writing anything (stdlib only):
export, the edge runtime and the notebooks verify a run with it; runs/rundir.py writes runs."""

from __future__ import annotations

from pathlib import Path

from sdss_distill.core.errors import InputError
from sdss_distill.core.io import read_json

MANIFEST = "manifest.json"
MARKER = "sdss_distill.run"
"""manifest.json's `format`: this package wrote the version (older manifests lack it)."""
STAGING = ".staging"


class Layout:
    """The files of ONE run version, rooted at a real directory."""

    def __init__(self, root):
        self.root = Path(root)
        self.run_id = self.root.name.removesuffix(STAGING)
        self.models, self.reports, self.tflite = (self.root / d for d in ("models", "reports", "tflite"))
        self.run_json, self.split_json = self.root / "run.json", self.root / "split.json"
        self.manifest_json = self.root / MANIFEST
        self.report_json, self.report_md = self.reports / "report.json", self.reports / "report.md"
        self.export_json, self.export_md = self.reports / "export.json", self.reports / "export.md"
        self.figures = self.reports / "figures"

    FIGURE_DIR = "reports/figures"
    """The run's figures (PNG) and the CSV behind each, relative to a version's root."""

    legacy = False

    def model(self, name: str) -> Path:
        return self.models / f"{name}.keras"

    def tflite_file(self, stem: str) -> Path:
        return self.tflite / f"{stem}.tflite"

    def figure(self, name: str) -> tuple[Path, Path]:
        """(PNG, CSV) of the run figure `name`: the picture and the numbers drawn in it."""
        return self.figures / f"{name}.png", self.figures / f"{name}.csv"

    def manifest(self) -> dict:
        """manifest.json, parsed; an InputError naming the file if it is missing or corrupt."""
        fix = "the run cannot be verified, train it again"
        doc = read_json(self.manifest_json, keys=("run_id", "files"), fix=fix)
        if not isinstance(doc["files"], dict):
            raise InputError(f"{self.manifest_json}: corrupt ('files' is not a mapping); {fix}")
        for rel, entry in doc["files"].items():
            if not (isinstance(entry, dict) and _is_sha256(entry.get("sha256"))
                    and type(entry.get("size")) is int and entry["size"] >= 0):
                raise InputError(f"{self.manifest_json}: corrupt entry for {rel!r} (needs "
                                 f"'sha256' hex and 'size' >= 0); {fix}")
            if rel.startswith("/") or ".." in rel.split("/"):
                raise InputError(f"{self.manifest_json}: entry {rel!r} points outside the run; "
                                 f"{fix}")
        if doc.get("format", MARKER) != MARKER or not isinstance(doc["run_id"], str):
            raise InputError(f"{self.manifest_json}: not an sdss_distill run manifest; {fix}")
        if doc["run_id"] != self.run_id:
            raise InputError(f"{self.manifest_json}: names run {doc['run_id']!r} but lies in "
                             f"{self.root.name!r} (copied from another run?); {fix}")
        return doc

    def source(self, rel: str) -> Path:
        """Where relative path `rel` (as a current-layout name) lives in this version."""
        return self.root / rel

    def __repr__(self) -> str:
        return f"Layout({str(self.root)!r})"


class LegacyLayout(Layout):
    """A run written before manifests (run.json and split.json under models/), unverified."""

    legacy = True

    def __init__(self, root):
        super().__init__(root)
        self.run_id = None
        self.run_json, self.split_json = self.models / "run.json", self.models / "split.json"

    def manifest(self) -> dict:
        return {"run_id": None, "files": {}, "legacy": True}

    def source(self, rel: str) -> Path:
        return {"run.json": self.run_json, "split.json": self.split_json}.get(rel, self.root / rel)


def _is_sha256(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


LEGACY_FILES = {"models": ("*.keras", "run.json", "split.json"),
                "reports": ("report.json", "report.md", "export.json", "export.md"),
                "tflite": ("*.tflite", "*.json", "labels.txt")}
"""The only files a run written before manifests holds (models/run.json and split.json at
least): a directory holding anything else is not such a run."""
