"""What a distillation method is: a `run(workspace, cfg, settings) -> list[Arm]` function with
a name, a one-line summary and a frozen dataclass of its settings. The registry collects them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class NoSettings:
    """A method without settings of its own."""


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    run: Callable
    settings: type = NoSettings
    streams: bool = False
    """Whether the method trains from tables larger than memory (Parquet streamed in chunks)."""

    def setting_names(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self.settings)]


def register(name: str, summary: str, settings: type = NoSettings, *, streams: bool = False):
    """Decorator: declare `run` as method `name`; registry.py lists the modules to collect."""
    def wrap(run):
        run.method = Method(name, summary, run, settings, streams)
        return run
    return wrap
