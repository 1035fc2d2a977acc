"""Run settings: one frozen dataclass of defaults, overridden by a TOML file, then by flags."""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields

from sdss_distill.core.errors import InputError
from sdss_distill.core.io import read_toml
from sdss_distill.core.schema import DEFAULT_SPLIT, SAMPLES, TEACHER_VIEWS
from sdss_distill.distill import registry
from sdss_distill.distill.formula import SOFT_LOSSES, check_alpha


@dataclass(frozen=True)
class Config:
    """Everything that decides a run's numbers; saved with every run."""

    data: str | None = None  # dataset name or table; else $SDSS_DISTILL_DATA, else sdss
    columns: str | None = None  # TOML file mapping the table's column names to ours
    out: str = "runs/default"  # run directory: models/, reports/ (and tflite/) under it
    # distillation method, chosen on dev rows (docs/results/levers.md): the redshift fold
    # teachers mixed with photometric fold MLPs; with the 48-48 student +0.5 pt over
    # crossfit 24-24 on faint dev rows (5 of 5 seeds)
    method: str = "mix"
    seed: int = 0  # one seed for the split, weight init and shuffling
    # teacher-train, student-train, calibration, test (data.table.DEFAULT_SPLIT); three
    # fractions: no calibration slice (sets and selections calibrate on stopping rows)
    split: tuple[float, ...] = DEFAULT_SPLIT
    rows: int | None = None  # train on N non-test rows (stratified, seeded); test rows unchanged
    train_sample: str | None = None  # train on one sample of --data sdss (bright or faint) only
    teacher_view: str = "physical"  # teacher's columns: physical or paper17 (leaky)
    teacher_hidden: tuple[int, ...] = (128, 128, 64, 32)  # deep MLP widths
    teacher_dropout: float = 0.0
    # shallow MLP widths: 2,998 parameters, a 7,088 B student_int8 (the widest square pair
    # under 8 KB; 56-56 is 8,360 B); on faint dev rows +0.1 pt over 24-24 (docs/results/levers.md)
    student_hidden: tuple[int, ...] = (48, 48)
    temperature: float = 1.0  # softens teacher and student logits in the KD term (dev-chosen)
    alpha: float = 0.9  # weight of the soft (teacher) term; 1 - alpha on the hard labels
    soft_loss: str = "kl"  # soft term: kl (T^2 KL) or ce (T^2 soft cross-entropy)
    epochs: int = 300  # upper bound; early stopping usually ends far sooner
    patience: int = 20  # epochs without val-loss improvement before a student stops
    # the same for teachers (fold teachers, ensembles), which take nearly all the training
    # time; dev-chosen (--dev, both tables, seeds 0-2): 10 stops the fold teachers after 36
    # epochs, not 55, at equal dev accuracy of teacher and student
    teacher_patience: int = 10
    batch_size: int = 128
    learning_rate: float = 1e-2
    validation_fraction: float = 0.15  # of each training subset, for early stopping
    quiet: bool = False  # no progress output
    methods: dict = field(default_factory=dict)  # per-method settings: {method: {key: value}}

    def __post_init__(self):
        _check(len(self.split) in (3, 4) and all(0 < f < 1 for f in self.split)
               and abs(sum(self.split) - 1) < 1e-6, "split",
               "four fractions (teacher, student, calibration, test; or three without "
               "calibration) in (0, 1) summing to 1", self.split)
        _check(self.rows is None or self.rows >= 1, "rows", ">= 1 (or unset: every row)",
               self.rows)
        _check(self.train_sample is None or self.train_sample in SAMPLES, "train_sample",
               f"one of {', '.join(SAMPLES)} (or unset: every sample)", self.train_sample)
        _check(self.teacher_view in TEACHER_VIEWS, "teacher_view",
               f"one of {', '.join(TEACHER_VIEWS)}", self.teacher_view)
        _check(self.temperature > 0, "temperature", "> 0", self.temperature)
        try:
            check_alpha(self.alpha)
        except ValueError as e:  # the one alpha rule (formula.check_alpha), as an InputError
            raise InputError(str(e)) from None
        _check(0 <= self.teacher_dropout < 1, "teacher_dropout", "in [0, 1)",
               self.teacher_dropout)
        _check(0 < self.validation_fraction < 0.5, "validation_fraction", "in (0, 0.5)",
               self.validation_fraction)
        for name in ("epochs", "patience", "teacher_patience", "batch_size"):
            _check(getattr(self, name) >= 1, name, ">= 1", getattr(self, name))
        _check(self.learning_rate > 0, "learning_rate", "> 0", self.learning_rate)
        _check(self.soft_loss in SOFT_LOSSES, "soft_loss", f"one of {', '.join(SOFT_LOSSES)}",
               self.soft_loss)
        registry.get(self.method)
        for name, table in self.methods.items():
            method_settings(name, table)
        for name in ("teacher_hidden", "student_hidden"):
            _check(len(getattr(self, name)) >= 1 and min(getattr(self, name)) >= 1, name,
                   "one or more positive layer widths", getattr(self, name))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def settings(self, method: str | None = None):
        """The resolved settings dataclass of `method` (default: this run's method)."""
        name = method or self.method
        return method_settings(name, self.methods.get(name, {}))


def method_settings(name: str, table: dict):
    """A method's settings dataclass from a `[methods.NAME]` table; bad keys or values are
    InputErrors naming them and the valid keys."""
    method = registry.get(name)
    if not isinstance(table, dict):
        raise InputError(f"methods.{name} must be a table of settings, got {table!r}")
    valid = method.setting_names()
    unknown = sorted(set(table) - set(valid))
    if unknown:
        raise InputError(f"unknown setting(s) {', '.join(f'methods.{name}.{k}' for k in unknown)}; "
                         f"valid: {', '.join(valid) or f'none ({name} has no settings)'}")
    hints = typing.get_type_hints(method.settings)
    try:
        return method.settings(**{k: _coerce(f"methods.{name}.{k}", hints[k], v)
                                  for k, v in table.items()})
    except ValueError as e:
        if isinstance(e, InputError):
            raise
        raise InputError(f"methods.{name}: {e}") from None


def _check(ok: bool, name: str, rule: str, value) -> None:
    if not ok:
        raise InputError(f"{name} must be {rule}, got {value!r}")


def _coerce(name: str, hint, value):
    """Convert a TOML/CLI value to the field's type, or raise naming the key."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):  # X | None
        if value is None:
            return None
        return _coerce(name, next(a for a in args if a is not type(None)), value)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise InputError(f"{name} must be a list, got {value!r}")
        return tuple(_coerce(name, args[0], v) for v in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise InputError(f"{name} must be true or false, got {value!r}")
        return value
    if hint is int and isinstance(value, bool) or hint is int and isinstance(value, float):
        raise InputError(f"{name} must be an integer, got {value!r}")
    try:
        return hint(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be {hint.__name__}, got {value!r}") from None


REMOVED = {"engine": "every model trains on the one JAX engine (distill/jax_fit.py)"}
"""Keys earlier releases accepted, with why they went: named in the error, not just unknown."""


def make_config(toml_path: str | None = None, **overrides) -> Config:
    """Defaults, then the TOML file's keys, then non-None `overrides` (the CLI flags)."""
    values: dict = {}
    if toml_path:
        values.update(read_toml(toml_path))
    methods = _merge_methods(values.pop("methods", {}), overrides.pop("methods", None))
    values.update({k: v for k, v in overrides.items() if v is not None})
    if methods:
        values["methods"] = methods
    hints = typing.get_type_hints(Config)
    valid = [f.name for f in fields(Config)]
    unknown = sorted(set(values) - set(valid))
    for key in sorted(set(unknown) & set(REMOVED)):
        raise InputError(f"config key {key!r} is gone: {REMOVED[key]}; delete it")
    if unknown:
        raise InputError(f"unknown config key(s) {', '.join(unknown)}; valid keys: "
                         f"{', '.join(valid)}")
    return Config(**{k: _coerce(k, hints[k], v) for k, v in values.items()})


def _merge_methods(base, extra) -> dict:
    """[methods.*] tables from the TOML file, then per-setting overrides from the flags."""
    if not isinstance(base, dict):
        raise InputError(f"methods must be a table of [methods.NAME] tables, got {base!r}")
    merged = {name: dict(table) if isinstance(table, dict) else table
              for name, table in base.items()}
    for name, table in (extra or {}).items():
        merged.setdefault(name, {}).update(table)
    return merged


def parse_method_options(options: list[str] | None) -> dict:
    """`--set crossfit.folds=3` flags -> {"crossfit": {"folds": 3}} (values parsed as TOML)."""
    out: dict = {}
    for option in options or []:
        key, sep, raw = option.partition("=")
        name, dot, setting = key.strip().partition(".")
        if not (sep and dot and name and setting):
            raise InputError(f"--set {option!r}: expected METHOD.SETTING=VALUE, e.g. "
                             f"crossfit.folds=3")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()  # a bare word, e.g. rows=student_train
        out.setdefault(name, {})[setting] = value
    return out
