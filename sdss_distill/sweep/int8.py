"""The int8 file size of every student architecture in a sweep, without saving any model.

An int8 flatbuffer's size depends on the architecture only (layer shapes and quantization
parameters, not the weights' values), so each distinct photometric architecture of the
sweep is built once untrained, converted as `export` ships it (`export.int8_student_bytes`),
and its size is recorded by parameter count (distinct in every grid here: checked).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sdss_distill.core.io import quiet_import, write_atomic
from sdss_distill.core.schema import STUDENT, STUDENT_VIEW, get_view
from sdss_distill.distill import registry
from sdss_distill.distill.method import Architecture
from sdss_distill.export.convert import int8_student_bytes

CACHE = "int8_bytes.json"


def architectures(base, methods) -> list[Architecture]:
    """Every photometric model the methods build (each method declares its own, in the
    registry), the run's plain student first, in registry order, each once."""
    found = [Architecture(tuple(base.student_hidden))]
    for name in (m for m in registry.names() if m in methods):
        found += registry.get(name).architectures(base, base.settings(name))
    return list(dict.fromkeys(found))


def _build(arch: Architecture):
    """An untrained model of `arch` with random (non-zero, all distinct) weights: the converter
    shares identical constant buffers, so zero-initialised biases would shrink the file."""
    from sdss_distill.models.mlp import build_mlp, ensemble_model, subclass_model
    view = get_view(STUDENT_VIEW)
    rng = np.random.default_rng(0)
    x = rng.uniform(14, 22, (512, len(view.columns))).astype("float32")
    if arch.subclass_bins:
        bins = arch.subclass_bins
        model = subclass_model(build_mlp(view, arch.hidden, x, name=STUDENT, outputs=3 * bins),
                               bins, name=STUDENT)
    elif arch.members:
        members = [build_mlp(view, w, x, name=f"member_{k}") for k, w in enumerate(arch.members)]
        model = ensemble_model(members, view, name=STUDENT)
    else:
        model = build_mlp(view, arch.hidden, x, name=STUDENT, z_head=arch.z_head)
    for layer in model._flatten_layers():
        if layer.__class__.__name__ == "Dense":
            layer.set_weights([rng.normal(0, 0.3, w.shape).astype("float32")
                               for w in layer.get_weights()])
    return model, x


def sizes(out: Path, base, methods) -> dict[int, int]:
    """{parameters: int8 bytes} for the sweep's photometric architectures, cached in OUT."""
    path = Path(out) / CACHE
    cached = {int(k): v for k, v in json.loads(path.read_text()).items()} if path.is_file() else {}
    todo = architectures(base, methods)
    quiet_import("keras")
    for arch in todo:
        model, x = _build(arch)
        params = int(model.count_params())
        if params not in cached:
            cached[params] = len(int8_student_bytes(model, x))
    write_atomic(path, json.dumps({str(k): v for k, v in sorted(cached.items())}, indent=2))
    return cached
