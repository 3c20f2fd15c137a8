"""One recipe file: what it declares (name, version, deps, state) and its compiled script.

Two ways in:
  * `read_info(path)` parses the file and reads its top-level literals (`let version = "1.2";`,
    `let installed_files = [...]`) without running anything: what `recipe list` and the
    dependency graph need, fast enough for thousands of recipes. A value that is not a literal
    (`let version = major + ".0";`) makes it run the top level in a bare engine instead.
  * `load(path, engine)` compiles it with the helpers registered, runs the top level and checks
    that what the lifecycle needs is there (`name`, `version`, `install()`, and `acquire()`
    unless the recipe uses the seed FAQ's `let pkg = #{name, version}` shape).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..util.errors import LevitateError
from .rhai import ast as A
from .rhai.parser import parse
from .scan import declarations
from .version import Requirement, VersionError, parse_requirement

STATE_VARS = ("installed", "installed_version", "installed_at", "installed_files",
              "installed_as_dep", "installed_prefix", "installed_config", "installed_rpms")


class RecipeError(LevitateError):
    """A recipe that cannot be used as it is (missing pieces, bad values)."""


_UNSET = object()


def _literal(node):
    """The Python value of a literal expression, or _UNSET when it is not one."""
    t = type(node)
    if t is A.Lit:
        return node.value
    if t is A.ArrayLit:
        out = [_literal(i) for i in node.items]
        return _UNSET if any(v is _UNSET for v in out) else out
    if t is A.MapLit:
        out = {k: _literal(v) for k, v in node.items}
        return _UNSET if any(v is _UNSET for v in out.values()) else out
    if t is A.Interp and all(isinstance(p, str) for p in node.parts):
        return "".join(node.parts)
    if t is A.Unary and node.op == "-" and type(node.operand) is A.Lit \
            and type(node.operand.value) in (int, float):
        return -node.operand.value
    return _UNSET


@dataclass
class RecipeInfo:
    """What a recipe declares, read without running it."""

    path: Path
    name: str
    version: str
    description: str = ""
    deps: list[Requirement] = field(default_factory=list)
    state: dict = field(default_factory=dict)
    shape: str = "vars"                 # "vars" (let name/version) or "pkg" (the FAQ's map)

    @property
    def installed(self) -> bool:
        return self.state.get("installed") is True

    @property
    def installed_version(self) -> str | None:
        v = self.state.get("installed_version")
        return None if v is None else str(v)

    @property
    def installed_files(self) -> list[str]:
        return [str(f) for f in self.state.get("installed_files") or []]

    @property
    def as_dep(self) -> bool:
        return self.state.get("installed_as_dep") is True

    @property
    def prefix(self) -> str | None:
        p = self.state.get("installed_prefix")
        return None if p is None else str(p)

    def digest(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def _read_source(path: Path) -> str:
    try:
        with open(path, encoding="utf-8", newline="") as f:
            return f.read()
    except OSError as e:
        raise RecipeError(f"cannot read recipe {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise RecipeError(f"recipe {path} is not valid UTF-8") from None


_FIRST_FN = re.compile(r"^(?:private\s+)?fn\s", re.M)
_LATE_TOP = re.compile(r"^(?:let|const|export)\b", re.M)


def read_info(path: str | Path, source: str | None = None) -> RecipeInfo:
    """Name, version, deps and state of a recipe, from its top-level literals. Recipes declare
    their variables before their functions: when no column-0 `let`/`const` follows the first
    column-0 `fn`, only the text before it is read, by the fast scanner; anything it is not
    sure about goes through the real parser."""
    path = Path(path)
    source = _read_source(path) if source is None else source
    m = _FIRST_FN.search(source)
    if m and not _LATE_TOP.search(source, m.start()):
        values = declarations(source[:m.start()])
        if values is not None:
            return info_from_values(path, values)
    values = {}
    computed = False
    for stmt in parse(source, str(path)).stmts:
        if type(stmt) is A.Let:
            v = _literal(stmt.value) if stmt.value is not None else None
            if v is _UNSET:
                computed = True
                values.pop(stmt.name, None)
            else:
                values[stmt.name] = v
    if computed:
        values = _run_top_level(path, source)
    return info_from_values(path, values)


def _run_top_level(path: Path, source: str) -> dict:
    from .rhai import Engine
    engine = Engine(module_root=str(path.parent))
    scope = engine.run(engine.compile(source, name=str(path), path=str(path.resolve())))
    from .rhai.values import from_rhai
    return {k: from_rhai(v) for k, v in scope.items()}


def info_from_values(path: Path, values: dict) -> RecipeInfo:
    """Check and convert the declared top-level values of a recipe."""
    shape = "vars"
    name, version, desc = values.get("name"), values.get("version"), values.get("description")
    pkg = values.get("pkg")
    if name is None and isinstance(pkg, dict):
        shape = "pkg"
        name, version = pkg.get("name"), pkg.get("version")
        desc = desc if desc is not None else pkg.get("description")
    for what, v in (("name", name), ("version", version)):
        if v is None:
            raise RecipeError(f"{path}: recipe has no `{what}`",
                              f'declare it at the top: let {what} = "...";')
        if not isinstance(v, (str, int, float)) or isinstance(v, bool):
            raise RecipeError(f"{path}: `{what}` must be a string")
    deps_raw = values.get("deps")
    if deps_raw is None and shape == "pkg":
        deps_raw = pkg.get("deps")
    deps: list[Requirement] = []
    if deps_raw is not None:
        if not isinstance(deps_raw, list):
            raise RecipeError(f"{path}: `deps` must be an array of strings",
                              'e.g. let deps = ["openssl >= 3.0", "zlib"];')
        try:
            deps = [parse_requirement(d) for d in deps_raw]
        except VersionError as e:
            raise RecipeError(f"{path}: {e.message}", e.hint) from None
    state = {k: values[k] for k in STATE_VARS if k in values}
    _check_state(path, state)
    return RecipeInfo(path, str(name), str(version), "" if desc is None else str(desc), deps, state,
                      shape)


_STRS = "an array of strings"
_STATE_TYPES = {   # variable -> (what it must be, test); () (None) is always accepted
    "installed": ("true or false", lambda v: isinstance(v, bool)),
    "installed_version": ("a string", lambda v: isinstance(v, (str, int, float)) and not isinstance(v, bool)),
    "installed_at": ("a number (seconds since 1970)", lambda v: type(v) is int),
    "installed_files": (_STRS, lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)),
    "installed_as_dep": ("true or false", lambda v: isinstance(v, bool)),
    "installed_prefix": ("a string", lambda v: isinstance(v, str)),
    "installed_config": ("a map of paths to sha256 strings", lambda v: isinstance(v, dict)
                         and all(isinstance(x, str) for x in v.values())),
    "installed_rpms": (_STRS, lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)),
}


def _check_state(path: Path, state: dict) -> None:
    """The state variables are recipe's own bookkeeping, but they live in a file users edit: a
    value of the wrong type is one clear error naming the file and the variable."""
    for k, v in state.items():
        what, ok = _STATE_TYPES[k]
        if v is not None and not ok(v):
            shown = repr(v) if len(repr(v)) <= 40 else repr(v)[:37] + "..."
            raise RecipeError(f"{path}: state variable `{k}` must be {what}, not {shown}",
                              f"fix that line of the recipe (a recipe that is not installed has "
                              f"`let {k} = ();`) or restore the file")


def _missing(info: RecipeInfo, has_fn) -> list[str]:
    missing = [] if has_fn("install") else ["install()"]
    if info.shape == "vars" and not has_fn("acquire"):
        missing.insert(0, "acquire()")
    return missing


def _reject(info: RecipeInfo, missing: list[str]) -> RecipeError:
    return RecipeError(f"{info.path}: recipe {info.name} has no {' and no '.join(missing)}",
                       "a recipe defines fn acquire() and fn install() (build() is optional)")


def validate(info: RecipeInfo) -> None:
    """Parse the whole recipe (the engine's syntax error, with line and column) and check its
    required functions, without running it: done for every recipe of a plan before any runs."""
    script = parse(_read_source(info.path), str(info.path))
    names = {f.name for f in script.functions if not f.params}
    missing = _missing(info, names.__contains__)
    if missing:
        raise _reject(info, missing)


@dataclass
class LoadedRecipe:
    """A compiled recipe with its top level run: ready for the lifecycle."""

    info: RecipeInfo
    engine: object
    ast: object
    scope: object

    def has(self, fn: str) -> bool:
        return self.ast.has_fn(fn, 0)

    def call(self, fn: str):
        return self.engine.call_fn(self.ast, fn, scope=self.scope)


def load(path: str | Path, engine) -> LoadedRecipe:
    """Compile and validate a recipe with the engine's helpers (raises RhaiError/RecipeError)."""
    path = Path(path)
    source = _read_source(path)
    ast = engine.compile(source, name=str(path), path=str(path.resolve()))
    scope = engine.run(ast)
    from .rhai.values import from_rhai
    info = info_from_values(path, {k: from_rhai(v) for k, v in scope.items()})
    missing = _missing(info, lambda fn: ast.has_fn(fn, 0))
    if missing:
        raise _reject(info, missing)
    return LoadedRecipe(info, engine, ast, scope)

