"""The package's shape: no import cycles (imports inside functions count), layers point down,
no module over 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "sdss_distill"
MAX_LINES = 400
# Lower layers never import higher ones (a module may import its own layer and below).
LAYERS = ["core", "data", "models", "distill", "runs", "export", "edge", "score", "sweep", "viz"]
TOP = {"cli", "train", "experiment", "notebook", "api", "__main__"}
# Sideways imports that are allowed: edge is TensorFlow-free and sits on core only; score reads
# models through edge; export measures with edge's classifier.
ALLOWED = {("export", "edge"), ("score", "edge"), ("sweep", "export"), ("sweep", "edge"),
           ("viz", "sweep"), ("viz", "export"), ("viz", "edge"), ("runs", "edge")}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(name: str) -> set[str]:
    """Every sdss_distill module `name` imports, at any depth of its code."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                stem = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(stem + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                       for a in node.names]
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != name)
    return found


GRAPH = {name: imports(name) for name in MODULES}


def layer(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_no_import_cycles():
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)


def test_layers_point_down():
    wrong = []
    for name, targets in GRAPH.items():
        src = layer(name)
        for t in targets:
            dst = layer(t)
            if dst in ("__init__",) or src == dst or src in TOP:
                continue
            if dst in TOP:
                wrong.append(f"{name} -> {t}")
            elif src in LAYERS and dst in LAYERS and LAYERS.index(dst) > LAYERS.index(src) \
                    and (src, dst) not in ALLOWED:
                wrong.append(f"{name} -> {t}")
            elif (src, dst) in {("edge", d) for d in LAYERS if d != "core"} - {("edge", "edge")}:
                wrong.append(f"{name} -> {t} (edge is TensorFlow-free: core only)")
    assert not wrong, "imports that climb a layer: " + "; ".join(sorted(wrong))


def test_core_is_numpy_only():
    heavy = ("tensorflow", "keras", "pandas", "sklearn", "dask", "matplotlib", "tf_keras")
    bad = []
    for name, path in MODULES.items():
        if layer(name) != "core":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            mods = ([a.name for a in node.names] if isinstance(node, ast.Import)
                    else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad += [f"{name} imports {m}" for m in mods if m.split(".")[0] in heavy]
    assert not bad, bad


def test_no_module_over_400_lines():
    long = {name: n for name, p in MODULES.items()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_checks_can_fail(tmp_path):
    """The cycle finder sees a cycle closed by an import inside a function."""
    global GRAPH
    saved = GRAPH
    GRAPH = {"a": {"b"}, "b": {"a"}}
    try:
        with pytest.raises(pytest.fail.Exception, match="a -> b -> a"):
            test_no_import_cycles()
    finally:
        GRAPH = saved


def test_the_code_layout_page_lists_every_module():
    """docs/design/layout.md holds the tree scripts/layout_doc.py writes from the package."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("layout_doc", ROOT / "scripts" / "layout_doc.py")
    layout_doc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(layout_doc)
    assert layout_doc.block() in layout_doc.PAGE.read_text(), \
        "docs/design/layout.md is out of date: run python scripts/layout_doc.py --write"


def test_no_function_over_60_lines():
    long = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > 60:
                    long.append(f"{name}.{node.name} ({n} lines)")
    assert not long, f"functions over 60 lines: {long}"
