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
