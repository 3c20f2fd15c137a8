"""The recipe dependency graph: order, cycles, constraints, reverse dependencies, orphans."""

from pathlib import Path

import pytest

from levitate.recipe.graph import (GraphError, dependents, impact, install_plan, orphans,
                                   removal_order, tree)
from levitate.recipe.recipe import info_from_values


def world(**specs):
    out = {}
    for name, spec in specs.items():
        version, deps, *state = spec
        values = {"name": name, "version": version, "deps": deps}
        if state:
            values.update(installed=True, installed_version=state[0], installed_as_dep=state[1])
        out[name] = info_from_values(Path(f"/r/{name}.rhai"), values)
    return out


def names(steps):
    return [s.info.name for s in steps]


def test_topological_order_diamond():
    w = world(app=("1", ["tools", "core"]), tools=("1", ["core"]), core=("1", []))
    assert names(install_plan(["app"], w)) == ["core", "tools", "app"]
    assert names(install_plan(["app"], w, with_deps=False)) == ["app"]
    steps = install_plan(["app"], w)
    assert [s.explicit for s in steps] == [False, False, True]


def test_installed_dependencies_are_kept_or_upgraded_by_constraint():
    w = world(app=("1", ["lib >= 2"]), lib=("2.1", [], "1.5", True))
    steps = install_plan(["app"], w)
    assert names(steps) == ["lib", "app"] and steps[0].upgrade
    w = world(app=("1", ["lib >= 1"]), lib=("2.1", [], "1.5", True))
    assert names(install_plan(["app"], w)) == ["app"]


def test_cycle_missing_and_unsatisfiable():
    with pytest.raises(GraphError, match=r"dependency cycle: b -> c -> b"):
        install_plan(["a"], world(a=("1", ["b"]), b=("1", ["c"]), c=("1", ["b"])))
    with pytest.raises(GraphError, match=r"no recipe named 'z' \(needed by a -> b -> z\)"):
        install_plan(["a"], world(a=("1", ["b"]), b=("1", ["z"])))
    with pytest.raises(GraphError, match=r"a -> b -> c \^2.0, but recipe c has version 1.4"):
        install_plan(["a"], world(a=("1", ["b"]), b=("1", ["c ^2.0"]), c=("1.4", [])))


def test_reverse_queries():
    w = world(app=("1", ["tools"], "1", False), tools=("1", ["core"], "1", True),
              core=("1", [], "1", True), stray=("1", [], "1", True), other=("1", ["core"]))
    assert dependents("core", w) == ["tools"]
    assert dependents("core", w, installed_only=False) == ["other", "tools"]
    assert impact("core", w) == ["tools", "app"]
    assert orphans(w) == ["stray"]
    assert removal_order(["core", "tools", "app"], w) == ["app", "tools", "core"]
    assert tree("app", w) == ["app (1, installed)", "  tools (1, installed)", "    core (1, installed)"]
