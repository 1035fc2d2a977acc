"""The notebooks: outputs stripped in git, the package imported, no logic copied in, and
every notebook executed top to bottom (nbclient) against a small exported run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
EXPECTED = ("01_sdss_data.ipynb", "02_distillation.ipynb", "03_edge.ipynb", "04_methods.ipynb")
MAX_CELL_LINES = 25  # glue and plotting calls; anything longer belongs in the package
TF_NOISE = ("INFO:tensorflow", "WARNING:tensorflow", "W0000", "retracing")  # see logs.py

# Code that would mean a notebook re-implements the package instead of calling it.
COPIED_LOGIC = {
    r"^\s*(async\s+)?def\s": "defines a function; put it in sdss_distill/ (plots.py for figures)",
    r"^\s*class\s": "defines a class; put it in sdss_distill/",
    r"\blambda\b": "defines a lambda; put the logic in sdss_distill/",
    r"\.fit\(|\.compile\(|\bbuild_mlp\(": "trains or builds a model; call sdss_distill.train.run",
    r"\bkeras\.(layers|Sequential|Model\()": "builds a Keras model; use sdss_distill.models",
    r"\bkeras\.(saving\.)?load_model\(": "loads a model unsafely; use sdss_distill.models.load",
    r"\bread_csv\(|\bread_parquet\(": "reads the table directly; use data.load_table (row positions)",
    r"\btrain_test_split\(": "splits rows itself; use the run's models/split.json (data.Split)",
    r"\bInterpreter\(|\btf\.lite\b|\bTFLiteConverter\b": "runs TFLite itself; use sdss_distill.edge",
}
PACKAGE_IMPORT = re.compile(r"^\s*(from\s+sdss_distill[\s.]|import\s+sdss_distill\b)", re.M)


def notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def code_cells(path: Path) -> list[tuple[int, str]]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return [(k, "".join(c["source"]) if isinstance(c["source"], list) else c["source"])
            for k, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]


def test_the_numbered_notebooks_exist():
    names = [p.name for p in notebooks()]
    assert set(EXPECTED) <= set(names), f"missing {sorted(set(EXPECTED) - set(names))}"
    unnumbered = [n for n in names if not re.match(r"\d\d_[a-z0-9_]+\.ipynb$", n)]
    assert not unnumbered, f"notebooks are named NN_topic.ipynb; rename {unnumbered}"


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_outputs_are_stripped(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4
    dirty = [k for k, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, (f"{path.name}: cells {dirty} keep outputs or execution counts; "
                       f"clear them (Jupyter: Edit > Clear Outputs of All Cells, or "
                       f"the nbformat snippet in notebooks/README.md) and save")


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_imports_the_package(path):
    sources = "\n".join(src for _, src in code_cells(path))
    assert PACKAGE_IMPORT.search(sources), f"{path.name} never imports sdss_distill"


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_no_logic_copied_into_cells(path):
    problems = []
    for k, src in code_cells(path):
        lines = src.splitlines()
        if len(lines) > MAX_CELL_LINES:
            problems.append(f"cell {k}: {len(lines)} lines (max {MAX_CELL_LINES})")
        for pattern, why in COPIED_LOGIC.items():
            for line in lines:
                if re.search(pattern, line):
                    problems.append(f"cell {k}: {why}: {line.strip()!r}")
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("source, expected", [
    ("def helper(x):\n    return x", "defines a function"),
    ("model.fit(x, y)", "trains or builds a model"),
    ("df = pd.read_csv('sdss.csv')", "reads the table directly"),
    ("from ai_edge_litert.interpreter import Interpreter\nInterpreter(model_path=p)",
     "runs TFLite itself"),
])
def test_the_copied_logic_check_fires(tmp_path, source, expected):
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
          "cells": [{"cell_type": "code", "source": source, "metadata": {}, "outputs": [],
                     "execution_count": None}]}
    path = tmp_path / "99_bad.ipynb"
    path.write_text(json.dumps(nb))
    with pytest.raises(AssertionError, match=expected):
        test_no_logic_copied_into_cells(path)


def test_the_stripped_outputs_check_fires(tmp_path):
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
          "cells": [{"cell_type": "code", "source": "1 + 1", "metadata": {}, "execution_count": 3,
                     "outputs": [{"output_type": "execute_result", "execution_count": 3,
                                  "data": {"text/plain": "2"}, "metadata": {}}]}]}
    path = tmp_path / "99_dirty.ipynb"
    path.write_text(json.dumps(nb))
    with pytest.raises(AssertionError, match=r"cells \[0\] keep outputs"):
        test_outputs_are_stripped(path)


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_runs_top_to_bottom(name, exported_run, small_sweep, real_table, monkeypatch):
    """A cell that raises fails this test; outputs are not written back to the file."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("SDSS_DISTILL_RUN", str(exported_run))
    monkeypatch.setenv("SDSS_DISTILL_SWEEP", str(small_sweep[0]))
    monkeypatch.setenv("SDSS_DISTILL_DATA", str(real_table))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    streams = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []) if o.get("output_type") == "stream")
    noise = [line for line in streams.splitlines() if any(n in line for n in TF_NOISE)]
    assert noise == [], f"{name} prints TensorFlow log lines: {noise[:3]}"
