"""Check that the model edge is about to run is the one its card (and run) describe.

A .tflite inside a run version (`<version>/tflite/<name>.tflite`, next to the version's
manifest.json): the file, its card and labels.txt must be listed in the manifest with the
same SHA-256, and the card must name that run. A loose .tflite (copied elsewhere): its card
must carry the file's SHA-256 and a run id, name a view of this package and list its input
columns in that view's order (a card naming no view, or another, is refused: nothing could
check the order), and hold a well-formed training domain. Stdlib only.
"""

from __future__ import annotations

import math
from pathlib import Path

from sdss_distill.core.errors import InputError
from sdss_distill.core.io import sha256_bytes
from sdss_distill.core.layout import Layout
from sdss_distill.core.schema import VIEWS

FIX = "re-export the model and copy the .tflite with its card"


def _pair(value) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                    for v in value) and value[0] <= value[1])


def check_card(card: dict, path: Path, n_inputs: int | None = None) -> None:
    """A card's input columns, domain, hash and run id, checked for a loose model."""
    columns = card["input"]["columns"]
    if len(set(columns)) != len(columns):
        raise InputError(f"{path}: 'input.columns' names a column twice; {FIX}")
    if n_inputs is not None and len(columns) != n_inputs:
        raise InputError(f"{path}: the card lists {len(columns)} input columns but the model "
                         f"takes {n_inputs}; {FIX}")
    view = card["input"].get("name")
    if view is not None and not isinstance(view, str):
        raise InputError(f"{path}: 'input.name' must be a view name (a string), got a "
                         f"{type(view).__name__}; {FIX}")
    if view not in VIEWS:  # no view: no order to check against
        said = "missing" if view is None else f"{view!r}, not a view of this package"
        raise InputError(f"{path}: 'input.name' is {said} ({', '.join(VIEWS)}), so the order of "
                         f"'input.columns' cannot be checked; {FIX}")
    if list(VIEWS[view].columns) != list(columns):
        raise InputError(f"{path}: 'input.columns' {', '.join(columns)} are not view {view!r}'s "
                         f"columns in its order ({', '.join(VIEWS[view].columns)}); {FIX}")
    domain = card.get("domain", {})
    for key in ("columns", "colours"):
        part = domain.get(key, {})
        if not isinstance(part, dict):
            raise InputError(f"{path}: 'domain.{key}' must be a mapping; {FIX}")
        for name, bounds in part.items():
            names = name.split("-") if key == "colours" else [name]
            if (key == "colours" and len(names) != 2) or not set(names) <= set(columns):
                raise InputError(f"{path}: 'domain.{key}' names {name!r}, not "
                                 f"{'a colour of ' if key == 'colours' else ''}an input column; {FIX}")
            if not _pair(bounds):
                raise InputError(f"{path}: 'domain.{key}.{name}' must be [min, max] finite numbers; "
                                 f"{FIX}")


def check_outputs(labels, path: Path, n_outputs: int | None) -> None:
    """The card's class labels are as many as the model's outputs (else every probability
    column would be misnamed, or an index would fail on the first row)."""
    if n_outputs is not None and len(labels) != n_outputs:
        raise InputError(f"{path}: the card lists {len(labels)} class labels but the model has "
                         f"{n_outputs} outputs; {FIX}")


def check_provenance(card: dict, card_path: Path, content: bytes) -> None:
    """The card's SHA-256 of the .tflite (required) and its run id (required)."""
    expected = card.get("sha256")
    if not isinstance(expected, str):
        raise InputError(f"{card_path}: the card has no 'sha256' of its model, so the model "
                         f"cannot be verified; {FIX}")
    if sha256_bytes(content) != expected:
        raise InputError(f"{card_path.with_suffix('.tflite')}: its SHA-256 differs from the one "
                         f"in its card {card_path.name}; the two come from different exports, "
                         f"copy both files from the same export")
    source = card.get("source")
    if not isinstance(source, dict) or not isinstance(source.get("run_id"), str):
        raise InputError(f"{card_path}: the card names no run ('source.run_id'); {FIX}")


def run_version(model: Path) -> Path | None:
    """The run version directory holding `model` (…/<version>/tflite/x.tflite), else None."""
    real = Path(model).resolve()
    version = real.parent.parent
    if real.parent.name == "tflite" and (version / "manifest.json").is_file():
        return version
    return None


def check_in_run(model: Path, content: bytes, card_bytes: bytes, card: dict,
                 labels: Path | None) -> None:
    """A model inside a run version: it, its card and labels.txt as the manifest lists them."""
    version = run_version(model)
    if version is None:
        return
    layout = Layout(version)
    manifest = layout.manifest()
    files = manifest["files"]
    name = Path(model).resolve().name
    fix = "it was copied or changed after export; export the run again"
    for rel, data in ((f"tflite/{name}", content),
                      (f"tflite/{Path(name).with_suffix('.json').name}", card_bytes),
                      *((("tflite/labels.txt", labels.read_bytes()),) if labels else ())):
        entry = files.get(rel)
        if entry is None:
            raise InputError(f"{version / rel}: not in the run's manifest.json; {fix}")
        if sha256_bytes(data) != entry["sha256"]:
            raise InputError(f"{version / rel}: SHA-256 differs from the run's manifest.json; {fix}")
    run_id = (card.get("source") or {}).get("run_id") if isinstance(card.get("source"), dict) else None
    if run_id != manifest["run_id"]:
        raise InputError(f"{version / 'tflite' / name}: its card names run {run_id!r}, the "
                         f"manifest {manifest['run_id']!r}; {fix}")
