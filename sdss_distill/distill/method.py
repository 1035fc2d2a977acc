"""What a distillation method is: a `run(workspace, cfg, settings) -> list[Arm]` function with
a name, a one-line summary, a frozen dataclass of its settings, and what the rest of the
package needs to know about it (its student's architecture, whether that exports and
fine-tunes as a plain MLP, whether it streams, which baseline it is compared with), so no
module outside `distill/methods/` tests a method's name. The registry collects them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class NoSettings:
    """A method without settings of its own."""


@dataclass(frozen=True)
class Architecture:
    """A photometric model a method builds: an MLP of `hidden` widths; with `members`, a
    mean-probability ensemble of MLPs of those widths; with `subclass_bins`, an MLP with one
    logit per class x bin, summed back to 3 classes."""

    hidden: tuple[int, ...] = ()
    members: tuple[tuple[int, ...], ...] = ()
    subclass_bins: int = 0
    z_head: bool = False
    """The MLP also has the redshift head (models.mlp `z_head`; the default `mix` student)."""


def plain_student(cfg, settings) -> list[Architecture]:
    """The default: the run's `student_hidden` MLP (and its baseline, the same network)."""
    return [Architecture(tuple(cfg.student_hidden))]


def student_train_rows(settings) -> str:
    return "student_train"


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    run: Callable
    settings: type = NoSettings
    streams: bool = False
    """Whether the method trains from tables larger than memory (Parquet streamed in chunks)."""
    architectures: Callable = plain_student
    """(cfg, settings) -> every photometric model it builds (students, members, assistant)."""
    exports_plain: bool = True
    """Its student is one plain MLP with 3 class logits (an MCU port, QAT and pruning apply)."""
    baseline_rows: Callable = student_train_rows
    """settings -> the row set of the hard-label baseline its student is compared with."""
    no_finetune: str = ""
    """Why `export` cannot fine-tune (QAT, pruning) its student: required when it does not
    export as a plain MLP, empty otherwise."""
    teacher_about: str = ""
    """What teaches its student, in a few words (the `controls` report's teacher column)."""
    control_of: str = ""
    """A control: the method whose real teacher this one's replaces (`experiment --preset
    controls` compares their students)."""
    isolates: tuple[str, ...] = ()
    """A control whose teacher lacks exactly one piece of information: (that information,
    how the report names this student), e.g. ("redshift", "shuffled-redshift")."""

    def __post_init__(self):
        if self.exports_plain == bool(self.no_finetune):
            raise ValueError(f"method {self.name}: a student that exports as a plain MLP "
                             f"fine-tunes; any other must say why not (no_finetune)")

    def setting_names(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self.settings)]


def register(name: str, summary: str, settings: type = NoSettings, **declared):
    """Decorator: declare `run` as method `name` (`declared`: the other `Method` fields);
    registry.py lists the modules to collect."""
    def wrap(run):
        run.method = Method(name, summary, run, settings, **declared)
        return run
    return wrap
