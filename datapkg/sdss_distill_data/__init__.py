"""The SDSS tables sdss-distill trains on, as Parquet files with their provenance.

    >>> import sdss_distill_data
    >>> sdss_distill_data.files()["bright"]            # a pathlib.Path
    >>> sdss_distill_data.provenance()["acknowledgement"]

Only the standard library is imported here; read the files with pyarrow or pandas, or
through `sdss_distill.datasets.load_dataset(name)` (canonical column names, hash checked).
"""

from __future__ import annotations

import json
from pathlib import Path

__version__ = "0.1.0"

HERE = Path(__file__).resolve().parent
PROVENANCE = HERE / "provenance.json"


def provenance() -> dict:
    """provenance.json: per table its source, selection, release, counts, columns, SHA-256s;
    and the SDSS acknowledgement, licence note and citations."""
    return json.loads(PROVENANCE.read_text(encoding="utf-8"))


def files() -> dict[str, Path]:
    """Table name -> path of its Parquet file, in provenance order (bright, faint)."""
    return {name: HERE / t["file"] for name, t in provenance()["tables"].items()}
