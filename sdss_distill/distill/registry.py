"""Distillation methods by name: `train --method NAME` and the experiment grid look them up here.

A method is a function `run(workspace, cfg, settings) -> list[Arm]` plus a frozen dataclass
of its own settings (a `[methods.NAME]` table in the config). Registering is a decorator, so a
new method never touches the trainer. Importing this module stays light (no TensorFlow): the
command lines validate names and settings before anything heavy starts.
"""

from __future__ import annotations

import importlib
from functools import cache

from sdss_distill.core.errors import InputError
from sdss_distill.distill.method import Method, NoSettings  # noqa: F401  (re-exported)

ORDER: tuple[str, ...] = ("offline", "crossfit", "online", "cotrain", "teacher-ensemble",
                          "student-ensemble", "hints", "assistant", "subclass", "shuffled-z",
                          "smoothing", "photo-teacher", "mix")
"""Every method, in the order help texts, reports and sweeps list them: the one method list."""


@cache
def _load() -> dict[str, Method]:
    methods = {}
    for name in ORDER:
        module = importlib.import_module(f"sdss_distill.distill.methods.{name.replace('-', '_')}")
        method = module.run.method
        if method.name != name:
            raise ValueError(f"{module.__name__} declares method {method.name!r}, listed as {name!r}")
        methods[name] = method
    return methods


def names() -> list[str]:
    return list(ORDER)


def streaming() -> list[str]:
    """The methods that can train from tables larger than memory."""
    return [name for name, m in _load().items() if m.streams]


def get(name: str) -> Method:
    """The method called `name`; an unknown name lists the choices."""
    methods = _load()
    try:
        return methods[name]
    except KeyError:
        raise InputError(f"unknown method {name!r}; choose one of: {', '.join(methods)}") from None


def describe() -> str:
    """One line per method, for --help."""
    return "\n".join(f"  {m.name:17s} {m.summary}" for m in _load().values())
