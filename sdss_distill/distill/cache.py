"""What a workspace trained, kept per seed and per everything that changes a fit.

A sweep asks one workspace for the same teacher many times (one cell per student setting);
each model is trained once and reused. The key of a trained model is built here, in one
place, from every field of the `FitSettings` its fit uses (students' and teachers': so
`patience` and `teacher_patience`, and any field added later), the early-stopping fraction,
the view, the hidden widths and the rows: a method cannot leave one out by hand.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from sdss_distill.distill.fit import FitSettings


class FitCache:
    """Models (and anything derived from them) made once per key."""

    def __init__(self):
        self._store: dict = {}

    def once(self, key, make: Callable):
        """What `make()` returns, made once per `key` (for what is not a fit: the key is the
        caller's; for a fit use `model`)."""
        if key not in self._store:
            self._store[key] = make()
        return self._store[key]

    def model(self, name: str, cfg, make: Callable, *, view: str, hidden=(), rows: str = "",
              parts: tuple = ()):
        """What `make()` returns for model `name`, made once per view, hidden widths, rows,
        `parts` (a method's own settings) and every fit setting of `cfg` (`fit_key`)."""
        key = (name, view, tuple(hidden), rows, tuple(parts), fit_key(cfg))
        return self.once(key, make)


def fit_settings(cfg, *, teacher: bool = False) -> FitSettings:
    """The run's fit settings; teachers stop on `teacher_patience` (they cost nearly all the
    training time), students and baselines on `patience`."""
    return FitSettings(cfg.epochs, cfg.batch_size, cfg.teacher_patience if teacher else cfg.patience,
                       cfg.learning_rate, cfg.seed)


def fit_key(cfg) -> tuple:
    """Every setting of `cfg` that changes a fit: each field of the students' and the teachers'
    `FitSettings` (`fit_settings`), the early-stopping fraction and teacher dropout."""
    return (*(dataclasses.astuple(fit_settings(cfg, teacher=t)) for t in (False, True)),
            cfg.validation_fraction, cfg.teacher_dropout)
