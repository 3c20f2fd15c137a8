"""Fixtures for the Rhai engine tests: an engine that records `print`/`debug` output."""

from __future__ import annotations

import pytest

from levitate.recipe.rhai import Engine, Limits, RhaiError


class Recorder:
    def __init__(self):
        self.printed: list[str] = []
        self.debugged: list[str] = []


@pytest.fixture
def out():
    return Recorder()


@pytest.fixture
def engine(out):
    return Engine(on_print=out.printed.append, on_debug=out.debugged.append)


@pytest.fixture
def ev(engine):
    """Evaluate a script and return the value of its last statement."""
    def run(src, **kw):
        return engine.eval(engine.compile(src, name="test.rhai"), **kw)
    return run


@pytest.fixture
def err(engine):
    """Run a script that must fail; return the RhaiError."""
    def run(src, eng=None):
        eng = eng or engine
        with pytest.raises(RhaiError) as info:
            eng.eval(eng.compile(src, name="test.rhai"))
        return info.value
    return run


def fails(src: str, limits: Limits | None = None) -> RhaiError:
    eng = Engine(limits, on_print=lambda s: None, on_debug=lambda s: None)
    with pytest.raises(RhaiError) as info:
        eng.eval(eng.compile(src, name="test.rhai"))
    return info.value
