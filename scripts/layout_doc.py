"""Write the code-layout tree of docs/design/layout.md from the package itself: one line per
module, its docstring's first sentence. tests/test_layout.py checks the page is current.

Usage:
    python scripts/layout_doc.py           # print the tree
    python scripts/layout_doc.py --write   # rewrite the tree in docs/design/layout.md
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "design" / "layout.md"
BEGIN, END = "<!-- layout:begin -->", "<!-- layout:end -->"


def summary(path: Path) -> str:
    """The first sentence of a module's docstring (or its first line), trimmed."""
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    first = " ".join(doc.strip().split("\n\n")[0].split())
    first = re.split(r"(?<=\.)\s", first)[0].rstrip(".")
    return first if len(first) <= 110 else first[:107].rsplit(" ", 1)[0] + " ..."


def tree() -> str:
    """The package, a line per module, grouped by subpackage, in layer order."""
    package = ROOT / "sdss_distill"
    lines = ["sdss_distill/"]
    for path in sorted(package.glob("*.py")):
        lines.append(f"  {path.name:<22} {summary(path)}")
    for sub in sorted(p for p in package.iterdir() if (p / "__init__.py").is_file()):
        lines.append(f"  {sub.name}/{'':<{21 - len(sub.name)}}{summary(sub / '__init__.py')}")
        for path in sorted(sub.rglob("*.py")):
            if path.name == "__init__.py" and path.parent == sub:
                continue
            rel = path.relative_to(sub).as_posix()
            lines.append(f"    {rel:<20} {summary(path)}")
    return "\n".join(lines)


def block() -> str:
    return f"{BEGIN}\n```\n{tree()}\n```\n{END}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    p.add_argument("--write", action="store_true", help=f"rewrite the tree in {PAGE.name}")
    args = p.parse_args(argv)
    if not args.write:
        print(tree())
        return 0
    text = PAGE.read_text()
    if BEGIN not in text or END not in text:
        print(f"{PAGE}: no {BEGIN} ... {END} markers; add them where the tree goes",
              file=sys.stderr)
        return 2
    head, rest = text.split(BEGIN, 1)
    PAGE.write_text(head + block() + rest.split(END, 1)[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
