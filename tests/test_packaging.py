"""The wheel: contents (subpackages, *.json package data), dependencies, entry point (~3 s).

Builds from a copy of the sources with the installed setuptools (no build isolation, no
network). The full check, a fresh venv installing the wheel from PyPI, is
scripts/check_install.sh (about a minute; not a test).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser

import pytest

from tests.conftest import ROOT

SOURCES = ("pyproject.toml", "README.md", "sdss_distill")


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _lines(path) -> list[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def _local_projects(path) -> set[str]:
    """Distribution names of the local-path lines (`./datapkg`), read from their pyproject."""
    import tomllib

    return {tomllib.loads((ROOT / line / "pyproject.toml").read_text())["project"]["name"]
            for line in _lines(path) if line.startswith((".", "/"))}


def _requirements(path) -> set[str]:
    return {_name(line) for line in _lines(path) if not line.startswith((".", "/"))} | \
        _local_projects(path)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, src / name)
    # a future subpackage with its own data file must be picked up without editing pyproject
    (src / "sdss_distill" / "_probe_pkg").mkdir()
    (src / "sdss_distill" / "_probe_pkg" / "__init__.py").write_text("")
    (src / "sdss_distill" / "_probe_pkg" / "params.json").write_text("{}")
    (src / "sdss_distill" / "probe_params.json").write_text("{}")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", str(src), "-w", str(out)], check=True, capture_output=True,
                   timeout=120)
    (path,) = out.glob("sdss_distill-*.whl")
    return zipfile.ZipFile(path)


def _metadata(wheel):
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return Parser().parsestr(wheel.read(name).decode())


@pytest.mark.slow
def test_wheel_holds_every_module_subpackage_and_json(wheel):
    names = set(wheel.namelist())
    modules = {f"sdss_distill/{p.name}" for p in (ROOT / "sdss_distill").glob("*.py")}
    assert {"sdss_distill/cli.py", "sdss_distill/__main__.py"} <= modules
    assert modules <= names
    assert {"sdss_distill/_probe_pkg/__init__.py", "sdss_distill/_probe_pkg/params.json",
            "sdss_distill/probe_params.json"} <= names
    assert not any(n.startswith(("tests/", "scripts/", "notebooks/", "data/")) for n in names)


def test_console_script(wheel):
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(name).decode()
    assert "[console_scripts]" in text
    assert re.search(r"^sdss-distill = sdss_distill\.cli:run$", text, re.M), text


def test_base_install_is_the_edge_runtime_and_extras_cover_requirements(wheel):
    meta = _metadata(wheel)
    base, extras = set(), {}
    for req in meta.get_all("Requires-Dist"):
        m = re.search(r"""extra\s*==\s*["']([^"']+)["']""", req)
        (extras.setdefault(m.group(1), set()) if m else base).add(_name(req))
    assert base == _requirements(ROOT / "requirements-edge.txt") == {"numpy", "ai-edge-litert"}
    assert {"train", "scale", "dev", "all"} <= set(meta.get_all("Provides-Extra"))
    assert {"tensorflow", "keras", "scikit-learn"} <= extras["train"]
    assert {"dask", "distributed", "requests"} <= extras["scale"]
    assert {"pytest", "ruff", "nbclient"} <= extras["dev"]
    assert {"catboost", "lightgbm", "xgboost"} == extras["bench"]
    # requirements.txt (the pinned CI set) and the extras name the same packages, except
    # [bench]: the peer benchmark's libraries, which no test needs (CI does not install them)
    declared = base | set().union(*(v for k, v in extras.items() if k not in ("all", "bench")))
    # local packages of this repo (datapkg/: sdss-distill-data) may not be on PyPI, so an
    # extra need not name them yet
    assert _requirements(ROOT / "requirements.txt") == declared | _local_projects(ROOT / "requirements.txt")
