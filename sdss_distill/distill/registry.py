"""Distillation methods by name: `train --method NAME` and the experiment grid look them up here.

A method is a function `run(workspace, cfg, settings) -> list[Arm]` plus a frozen dataclass
of its own settings (a `[methods.NAME]` table in the config). Registering is a decorator, so a
new method never touches the trainer. Importing this module stays light (no TensorFlow): the
command lines validate names and settings before anything heavy starts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from sdss_distill.core.errors import InputError


@dataclass(frozen=True)
class NoSettings:
    """A method without settings of its own."""


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    run: Callable
    settings: type = NoSettings

    def setting_names(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self.settings)]


METHODS: dict[str, Method] = {}


def register(name: str, summary: str, settings: type = NoSettings):
    """Decorator: register `run` as method `name` with its settings dataclass."""
    def wrap(run):
        if name in METHODS:
            raise ValueError(f"method {name!r} is registered twice")
        METHODS[name] = Method(name, summary, run, settings)
        return run
    return wrap


def _load() -> dict[str, Method]:
    from sdss_distill.distill.methods import ORDER  # importing the package registers every method module
    return {name: METHODS[name] for name in sorted(METHODS, key=ORDER.index)}


def names() -> list[str]:
    return list(_load())


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
