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

from sdss_distill.core.schema import STUDENT

CACHE = "int8_bytes.json"


def architectures(base, methods) -> list[tuple]:
    """Hidden widths of every photometric model the methods build: plain MLPs as (w, ...),
    an ensemble as a tuple of member widths."""
    found = [tuple(base.student_hidden)]
    if "student-ensemble" in methods:
        widths = tuple(tuple(w) for w in base.settings("student-ensemble").widths)
        found += [*widths, widths]
    if "assistant" in methods:
        found.append(tuple(base.settings("assistant").hidden))
    if "subclass" in methods:  # one logit per subclass, summed to 3 classes: ("subclass", bins, w)
        found.append(("subclass", base.settings("subclass").bins, tuple(base.student_hidden)))
    return list(dict.fromkeys(found))


def _build(arch):
    """An untrained model of `arch` with random (non-zero, all distinct) weights: the converter
    shares identical constant buffers, so zero-initialised biases would shrink the file."""
    from sdss_distill.core.schema import STUDENT_VIEW, get_view
    from sdss_distill.models.mlp import build_mlp, ensemble_model, subclass_model
    view = get_view(STUDENT_VIEW)
    rng = np.random.default_rng(0)
    x = rng.uniform(14, 22, (512, len(view.columns))).astype("float32")
    if arch and arch[0] == "subclass":
        _, bins, hidden = arch
        model = subclass_model(build_mlp(view, hidden, x, name=STUDENT, outputs=3 * bins), bins,
                               name=STUDENT)
    elif arch and isinstance(arch[0], tuple):
        members = [build_mlp(view, w, x, name=f"member_{k}") for k, w in enumerate(arch)]
        model = ensemble_model(members, view, name=STUDENT)
    else:
        model = build_mlp(view, arch, x, name=STUDENT)
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
    from sdss_distill.core.io import quiet_import, write_atomic
    quiet_import("keras")
    from sdss_distill.export.convert import int8_student_bytes
    for arch in todo:
        model, x = _build(arch)
        params = int(model.count_params())
        if params not in cached:
            cached[params] = len(int8_student_bytes(model, x))
    write_atomic(path, json.dumps({str(k): v for k, v in sorted(cached.items())}, indent=2))
    return cached
