"""The workspace's cache: one key per everything that changes a fit (distill/cache.py)."""

from __future__ import annotations

import dataclasses

import pytest

from sdss_distill.distill.cache import FitCache, fit_key
from sdss_distill.distill.fit import FitSettings
from sdss_distill.runs.config import make_config


def _made(cache, cfg, **where):
    calls = []
    cache.model("teacher", cfg, lambda: calls.append(1) or len(calls), **where)
    return calls


@pytest.mark.parametrize("change", [
    *({f.name: None} for f in dataclasses.fields(FitSettings)),  # every FitSettings field
    {"teacher_patience": None}, {"validation_fraction": 0.2}, {"teacher_dropout": 0.1}])
def test_every_fit_setting_is_in_the_key(change):
    cfg = make_config()
    name, value = next(iter(change.items()))
    if name not in {f.name for f in dataclasses.fields(cfg)}:
        pytest.fail(f"FitSettings.{name} has no run setting: fit_settings cannot fill it")
    if value is None:
        old = getattr(cfg, name)
        value = {int: lambda: old + 1, float: lambda: old * 0.5,
                 str: lambda: "keras" if old == "jax" else "jax"}[type(old)]()
    other = dataclasses.replace(cfg, **{name: value})
    assert fit_key(cfg) != fit_key(other)
    cache = FitCache()
    assert _made(cache, cfg, view="physical") == [1]
    assert _made(cache, cfg, view="physical") == []  # reused
    assert _made(cache, other, view="physical") == [1]  # retrained


def test_view_widths_rows_and_parts_are_in_the_key():
    cfg, cache = make_config(), FitCache()
    base = dict(view="physical", hidden=(8,), rows="teacher_train", parts=(3,))
    assert _made(cache, cfg, **base) == [1]
    for k, v in dict(view="photometric", hidden=(9,), rows="non_test", parts=(4,)).items():
        assert _made(cache, cfg, **{**base, k: v}) == [1], k


def test_a_streamed_workspace_refuses_in_memory_access_in_one_line():
    """A method that asks a streamed workspace for its table or arrays (not an arm builder)
    gets an InputError (one line, exit 2 from the CLI), never an AttributeError."""
    from sdss_distill.core.errors import InputError
    from sdss_distill.distill.stream_source import StreamData
    from sdss_distill.distill.workspace import Workspace

    data = StreamData.__new__(StreamData)  # no files needed: only `streamed` is read
    ws = Workspace(seed=0, teacher_view="physical", validation_fraction=0.15, data=data)
    assert ws.streamed and ws.with_teacher_view("photometric").streamed
    for ask in (lambda: ws.df, lambda: ws.split, lambda: ws.rows("non_test"),
                lambda: ws.arrays("student_train", ws.student_view)):
        with pytest.raises(InputError, match="needs the table in memory"):
            ask()
