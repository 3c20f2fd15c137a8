"""The dependency graph of recipes: install order, cycles, constraints, reverse dependencies.

Everything here works on `RecipeInfo`s (read without running scripts), so a missing dependency,
an unsatisfiable constraint or a cycle is reported before anything is downloaded, with the chain
that leads to it (`myapp -> dev-tools -> zlib >= 2`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..util.errors import LevitateError
from .recipe import RecipeInfo


class GraphError(LevitateError):
    """A dependency problem: missing recipe, unsatisfiable constraint, cycle."""


@dataclass(frozen=True)
class Step:
    """One recipe to install: why (`explicit` or as a dependency) and whether it replaces an
    installed version."""

    info: RecipeInfo
    explicit: bool
    upgrade: bool = False


def _chain(path: list[str], last: str) -> str:
    return " -> ".join([*path, last])


def install_plan(requested: list[str], recipes: Mapping[str, RecipeInfo], *,
                 with_deps: bool = True, reinstall: bool = False) -> list[Step]:
    """The recipes to install for `requested`, dependencies first (topological order).

    Installed dependencies whose installed version still meets every constraint are left alone;
    one that does not but whose recipe does is upgraded. `reinstall` puts the requested ones in
    the plan even when installed."""
    order: list[Step] = []
    placed: dict[str, Step | None] = {}      # None: installed and left alone
    visiting: list[str] = []
    requested_set = set(requested)

    def visit(name: str, path: list[str], req) -> None:
        info = recipes.get(name)
        if info is None:
            where = f" (needed by {_chain(path, str(req))})" if path else ""
            raise GraphError(f"no recipe named '{name}'{where}",
                             "check the name with `recipe search`, or add the recipe to a "
                             "recipes directory (--recipes, $RECIPE_PATH)")
        if name in visiting:
            cycle = visiting[visiting.index(name):] + [name]
            raise GraphError(f"dependency cycle: {' -> '.join(cycle)}",
                             "remove one of these dependencies from its recipe")
        keeps = info.installed and (req is None or req.allows(info.installed_version or ""))
        if name in placed:
            if placed[name] is None and not keeps:      # a later requirer wants a newer one
                placed[name] = Step(info, False, upgrade=True)
                order.append(placed[name])
            return
        visiting.append(name)
        for dep in info.deps if with_deps else ():
            target = recipes.get(dep.name)
            if target is not None and not dep.allows(target.version) and not (
                    target.installed and dep.allows(target.installed_version or "")):
                raise GraphError(
                    f"unsatisfiable constraint: {_chain([*path, name], str(dep))}, but recipe "
                    f"{dep.name} has version {target.version}",
                    f"update the {dep.name} recipe or relax the constraint in {info.path.name}")
            visit(dep.name, [*path, name], dep)
        visiting.pop()
        explicit = name in requested_set
        if explicit:
            skip = info.installed and info.installed_version == info.version and not reinstall
        else:
            skip = keeps
        if skip:
            placed[name] = None
            return
        placed[name] = Step(info, explicit, upgrade=info.installed)
        order.append(placed[name])

    for name in requested:
        visit(name, [], None)
    return order


def dependents(name: str, recipes: Mapping[str, RecipeInfo], *, installed_only: bool = True) -> list[str]:
    """Recipes that depend on `name` directly (installed ones only, by default)."""
    return sorted(n for n, r in recipes.items()
                  if (r.installed or not installed_only) and any(d.name == name for d in r.deps))


def impact(name: str, recipes: Mapping[str, RecipeInfo]) -> list[str]:
    """Every installed recipe that depends on `name`, directly or not (nearest first)."""
    seen: list[str] = []
    queue = [name]
    while queue:
        for d in dependents(queue.pop(0), recipes):
            if d not in seen and d != name:
                seen.append(d)
                queue.append(d)
    return seen


def orphans(recipes: Mapping[str, RecipeInfo]) -> list[str]:
    """Installed recipes pulled in as dependencies that no explicitly installed recipe needs,
    directly or through others."""
    needed: set[str] = set()
    stack = [n for n, r in recipes.items() if r.installed and not r.as_dep]
    while stack:
        n = stack.pop()
        if n in needed:
            continue
        needed.add(n)
        r = recipes.get(n)
        if r is not None:
            stack.extend(d.name for d in r.deps if d.name in recipes)
    return sorted(n for n, r in recipes.items() if r.installed and r.as_dep and n not in needed)


def tree(name: str, recipes: Mapping[str, RecipeInfo]) -> list[str]:
    """The dependency tree as indented lines (a dependency seen before is marked `(*)`)."""
    lines: list[str] = []
    seen: set[str] = set()

    def walk(n: str, text: str, depth: int, stack: tuple) -> None:
        r = recipes.get(n)
        label = text if r is None else f"{text} ({r.version}{', installed' if r.installed else ''})"
        if r is None:
            label += " [missing]"
        elif n in stack:
            label += " [cycle]"
        elif n in seen and r.deps:
            label += " (*)"
        lines.append("  " * depth + label)
        if r is None or n in stack or n in seen:
            return
        seen.add(n)
        for d in r.deps:
            walk(d.name, str(d), depth + 1, stack + (n,))

    walk(name, name, 0, ())
    return lines


def removal_order(names: list[str], recipes: Mapping[str, RecipeInfo]) -> list[str]:
    """`names` ordered so that a recipe is removed before the ones it depends on."""
    out: list[str] = []
    want = set(names)

    def visit(n: str, stack: tuple) -> None:
        if n in out or n in stack:
            return
        for d in dependents(n, recipes):
            if d in want:
                visit(d, stack + (n,))
        out.append(n)

    for n in names:
        visit(n, ())
    return out
