"""The example objects in the README quick start and the Python API guide are real: each row's
coordinates and magnitudes belong to one object of the packaged tables."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.conftest import ROOT

BANDS = ["u", "g", "r", "i", "z"]


@pytest.fixture(scope="module")
def packaged():
    from sdss_distill.data import datasets
    return datasets.load("sdss")[1]


def readme_rows() -> list[list[float]]:
    """The ra,dec,u,g,r,i,z rows of the README's objects.csv heredoc."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"cat > data/objects.csv <<'EOF'\nra,dec,u,g,r,i,z\n(.*?)\nEOF", text, re.S)
    assert block, "README: the objects.csv example is gone"
    return [[float(v) for v in line.split(",")] for line in block.group(1).splitlines()]


def guide_rows() -> list[list[float]]:
    """The ra, dec and modelMag columns of the DataFrame in docs/guide/python-api.md."""
    text = (ROOT / "docs" / "guide" / "python-api.md").read_text()
    cols = {name: [float(v) for v in values.split(",")]
            for name, values in re.findall(r'"(ra|dec|modelMag_[ugriz])": \[([^\]]+)\]', text)}
    assert len(cols) == 7, cols
    return np.array([cols[c] for c in ["ra", "dec", *(f"modelMag_{b}" for b in BANDS)]]).T.tolist()


@pytest.mark.parametrize("rows", [readme_rows, guide_rows], ids=["README", "python-api"])
def test_each_example_row_is_one_packaged_object(packaged, rows):
    for ra, dec, *mags in rows():
        near = packaged[(abs(packaged["ra"] - ra) < 1e-4) & (abs(packaged["dec"] - dec) < 1e-4)]
        assert len(near) == 1, f"no single object at {ra} {dec:+}"
        assert np.allclose(near[BANDS].to_numpy()[0], mags, atol=1e-5, rtol=0), \
            f"the magnitudes given for {ra} {dec:+} are another object's"


def test_every_docs_page_the_code_cites_exists():
    """Help texts and messages that point at docs/...md point at a page that is there."""
    cited = {}
    for path in sorted((ROOT / "sdss_distill").rglob("*.py")):
        for page in re.findall(r"docs/[\w/.-]+?\.md", path.read_text()):
            cited.setdefault(page, path.relative_to(ROOT).as_posix())
    assert "docs/guide/scoring-priors.md" in cited
    missing = {page: where for page, where in cited.items() if not (ROOT / page).is_file()}
    assert not missing, f"pages cited but not there: {missing}"


def test_the_home_page_results_table_is_the_readmes():
    """docs/index.md repeats the README's results table: the same rows, so they cannot drift."""
    def rows(path):
        return [line for line in path.read_text().splitlines() if line.startswith("| `")]
    readme, home = rows(ROOT / "README.md"), rows(ROOT / "docs" / "index.md")
    assert len(readme) == 3 and home == readme


def test_make_run_prints_the_real_path_of_the_run():
    """`runs/default` is a symlink (find and du see only the link): make run names its target."""
    import subprocess
    out = subprocess.run(["make", "-n", "run", "RUN_OUT=runs/x"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert "readlink -f runs/x" in out and "run-directory.md" in out


def test_the_site_works_opened_from_disk_and_has_the_api_reference():
    """site/index.html opened as a file: links must name page.html, not a directory (which a
    browser shows as a listing); the API reference is generated in the strict build."""
    config = (ROOT / "mkdocs.yml").read_text()
    assert re.search(r"^use_directory_urls: false$", config, re.M)
    assert re.search(r"^  - mkdocstrings:$", config, re.M) and "reference/api.md" in config
    assert "::: sdss_distill.api" in (ROOT / "docs" / "reference" / "api.md").read_text()


NUMBERS = {w: n for n, w in enumerate(["zero", "one", "two", "three", "four", "five", "six",
                                       "seven", "eight", "nine", "ten", "eleven", "twelve"])}


def test_the_readme_counts_the_registrys_methods_and_controls():
    """Issue 21 item 7: "N distillation methods ... plus M controls" in the README is the
    registry's list (a control's summary starts with "control:")."""
    from sdss_distill.distill import registry
    text = " ".join((ROOT / "README.md").read_text().split())
    found = re.search(r"(\w+) distillation methods are built in .*?plus (\w+) controls", text)
    assert found, "README: the sentence counting the methods is gone"
    methods, controls = (NUMBERS.get(w.lower(), w) for w in found.groups())
    summaries = [registry.get(name).summary for name in registry.names()]
    want_controls = sum(s.startswith("control:") for s in summaries)
    assert (methods, controls) == (len(summaries) - want_controls, want_controls)


def test_docs_and_docstrings_name_only_files_that_exist():
    """Issue 21 item 7: no `stream_data.py`-style reference to a module that is gone, in the
    README, the docs or the package's own docstrings and comments."""
    known = {p.name for d in ("sdss_distill", "scripts", "tests", "notebooks", "datapkg")
             for p in (ROOT / d).rglob("*.py")}
    texts = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"),
             *(ROOT / "sdss_distill").rglob("*.py")]
    gone = sorted({f"{path.relative_to(ROOT)}: {name}" for path in texts
                   for name in re.findall(r"\b([A-Za-z_]\w*\.py)\b", path.read_text())
                   if name not in known})
    assert not gone, f"references to files that do not exist: {gone}"


def test_package_docstrings_name_only_their_own_modules():
    """A subpackage's docstring that names `module` in backticks names one of its modules
    (issue 21: distill/__init__.py named a `training` module that did not exist)."""
    import ast
    wrong = []
    for init in sorted((ROOT / "sdss_distill").glob("*/**/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        wrong += [f"{init.relative_to(ROOT)}: `{name}`"
                  for name in re.findall(r"`([a-z_][a-z0-9_]*)`", doc)
                  if not (init.parent / f"{name}.py").exists() and not (init.parent / name).is_dir()]
    assert not wrong, wrong
