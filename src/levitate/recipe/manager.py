"""The recipe operations: install, remove, update, upgrade, autoremove, over one prefix.

Install of one recipe, the lifecycle:
  1. a fresh build directory (BUILD_DIR) and an empty staging root;
  2. `is_installed()` (if defined) may say there is nothing to do;
  3. `acquire()`, `build()` (optional), `install()`, all with the same helper context (the `cd`
     directory and the last download carry over between phases);
  4. `pre_install()`, then the transaction: conflicts checked, staged files moved into PREFIX,
     rolled back on any failure or Ctrl-C;
  5. the state written back into the recipe file; `post_install()`.
A failure before the commit leaves the prefix and the recipe file untouched (the build directory
is kept for inspection). The whole command holds the prefix lock.

`dry_run(steps)` (install/upgrade --dry-run) runs acquire/build/install with the helpers in dry
mode (helpers/dry.py) in a temporary directory, without the lock: what each would fetch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..util.errors import LevitateError
from . import graph
from .config import Config
from .entrylock import EntryLock
from .helpers import Context, DryRun, make_engine
from .lock import LOCK_NAME, LockError, differences, read_lock
from .recipe import RecipeError, RecipeInfo, load, read_info, validate
from .registry import Registry
from .rhai.errors import RhaiError
from .state import state_source, write_state
from .transaction import PrefixLock, Transaction, state_dir

log = logging.getLogger("levitate")


class PhaseError(LevitateError):
    """A recipe function failed."""


@dataclass
class Manager:
    registry: Registry
    prefix: Path
    build_root: Path | None = None                   # None: the config's
    arch: str = "x86_64"
    out: Callable[[str], None] = lambda text: print(text, file=sys.stderr, flush=True)
    on_step: Callable[[int], None] | None = None     # test hook for the commit (see Transaction)
    failed_updates: list[str] = field(default_factory=list)
    config: Config = field(default_factory=Config.load)     # settings from the environment

    def __post_init__(self):
        self.prefix = Path(os.path.abspath(self.prefix))
        self.build_root = Path(os.path.abspath(self.build_root or self.config.build_root))
        self.cache = self.config.cache

    # -- queries -------------------------------------------------------------------------------
    def recipes(self) -> dict[str, RecipeInfo]:
        return self.registry.all()

    def owners(self, exclude: str | None = None) -> dict[str, str]:
        """Installed file -> recipe name, for recipes installed into this prefix."""
        out = {}
        for name, r in self.recipes().items():
            if r.installed and name != exclude and (r.prefix in (None, str(self.prefix))):
                for f in r.installed_files:
                    out[f] = name
        return out

    def provided(self, exclude: str | None = None) -> set[str]:
        """Package names installed recipes provide: their own and the Rocky packages they
        installed (for rpm_install's closure)."""
        out = set()
        for n, r in self.recipes().items():
            if r.installed and n != exclude:
                out.add(n)
                out.update(str(x) for x in r.state.get("installed_rpms") or [])
        return out

    def _own_files(self, info: RecipeInfo) -> list[str]:
        """The recorded files of `info` that an upgrade or removal may replace or delete. The
        state lives in a file users edit and recipes are shared, so a path is skipped, with a
        warning, unless it is absolute, normalised and under the recorded prefix once its
        directory's symlinks are resolved (and not in recipe's own state directory); a
        packaged file the user has since replaced by a real directory is theirs now: kept."""
        prefix = Path(info.prefix or self.prefix)
        real_prefix = os.path.realpath(prefix)
        keep_out = os.path.realpath(state_dir(prefix))
        out = []
        for f in info.installed_files:
            parent = os.path.realpath(os.path.dirname(f)) if os.path.isabs(f) else ""
            inside = os.path.isabs(f) and os.path.normpath(f) == f and \
                Path(f).is_relative_to(prefix) and Path(f) != prefix and \
                Path(parent).is_relative_to(real_prefix) and \
                not Path(parent, os.path.basename(f)).is_relative_to(keep_out)
            if not inside:
                self.out(f"    warning: not removing {f}: not a path under the prefix {prefix} "
                         f"(the state of {info.path} names it)")
            elif os.path.isdir(f) and not os.path.islink(f):
                self.out(f"    warning: {f} is no longer the file {info.name} installed (it is "
                         "a directory): kept")
            else:
                out.append(f)
        return out

    # -- install -------------------------------------------------------------------------------
    def plan(self, names: list[str], *, no_deps: bool = False, locked: bool = False,
             reinstall: bool = False) -> list[graph.Step]:
        recipes = self.recipes()
        for n in names:
            self.registry.get(n)
        steps = graph.install_plan(names, recipes, with_deps=not no_deps, reinstall=reinstall)
        for s in steps:
            self._check_prefix(s.info)
            validate(s.info)
        if locked:
            path = self.registry.main_dir / LOCK_NAME
            diff = differences(read_lock(path), recipes,
                               [s.info.name for s in steps] + list(names))
            if diff:
                raise LockError(f"--locked: {diff[0]}" + (f" (and {len(diff) - 1} more)" if len(diff) > 1 else ""),
                                f"run `recipe lock update` to accept the recipes' versions, or "
                                f"restore the recipes that match {path.name}")
        return steps

    def _check_prefix(self, info: RecipeInfo) -> None:
        if info.installed and info.prefix and info.prefix != str(self.prefix):
            raise RecipeError(f"{info.name} is installed in {info.prefix}, not in {self.prefix}",
                              f"remove it first (recipe --prefix {info.prefix} remove {info.name}) "
                              "or use that prefix")
        if not os.access(info.path.parent, os.W_OK) or not os.access(info.path, os.W_OK):
            raise RecipeError(f"cannot record state in {info.path}: not writable",
                              "copy the recipes to a directory you can write and pass --recipes")

    def install(self, names: list[str], *, no_deps: bool = False, locked: bool = False,
                reinstall: bool = False) -> list[graph.Step]:
        steps = self.plan(names, no_deps=no_deps, locked=locked, reinstall=reinstall)
        if not steps:
            self.out("nothing to do: " + ", ".join(names) + " already installed")
            return steps
        return self.run_steps(steps)

    def run_steps(self, steps: list[graph.Step]) -> list[graph.Step]:
        with PrefixLock(self.prefix):
            for step in steps:
                with self._busy(step.info) as info:
                    self.install_one(graph.Step(info, step.explicit, step.upgrade))
                self.registry.reload()
        return steps

    @contextlib.contextmanager
    def _busy(self, info: RecipeInfo, *, entry: bool = True):
        """Hold the recipe file (unless `entry` is false) and its build directory against other
        recipe operations, whatever their prefix (entrylock.py); yields the recipe's state as
        read once the lock is held, its recorded prefix checked again (the plan was made
        before)."""
        stack = contextlib.ExitStack()
        with stack:
            if entry:
                stack.enter_context(EntryLock(info.path.with_name(f".{info.path.name}.lock"),
                                              f"recipe {info.name} ({info.path})"))
                info = read_info(info.path)
                self._check_prefix(info)
            try:
                self.build_root.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise LevitateError(f"cannot prepare the build directory {self.build_root}: "
                                    f"{e.strerror}", "choose a writable one with --build-dir") from None
            build = self.build_root / f"{info.name}-{info.version}"
            stack.enter_context(EntryLock(build.with_name(build.name + ".lock"),
                                          f"the build directory {build}"))
            yield info

    def _context(self, info: RecipeInfo, *, root: Path | None = None, dry: DryRun | None = None,
                 provided: Callable[[], set[str]] | None = None) -> Context:
        root = root or self.build_root
        build = root / f"{info.name}-{info.version}"
        stage = root / f"{info.name}-{info.version}.stage"
        try:
            root.mkdir(parents=True, exist_ok=True)
            for d in (build, stage):
                if d.exists():
                    shutil.rmtree(d)
            build.mkdir()
            stage.mkdir()
        except OSError as e:
            raise LevitateError(f"cannot prepare the build directory {build}: {e.strerror}",
                                "choose a writable one with --build-dir") from None
        rocky = self.config.rocky(self.registry.main_dir)
        return Context(prefix=self.prefix, build_dir=build, stage=stage, arch=self.arch,
                       github_api=self.config.github_api,
                       download_retries=self.config.download_retries,
                       download_speed=self.config.download_speed,
                       download_cache=self.cache / "downloads",
                       rocky=rocky, provided=provided or (lambda: self.provided(exclude=info.name)),
                       out=self.out, dry=dry)

    def _call(self, loaded, name: str, fn: str):
        try:
            return loaded.call(fn)
        except RhaiError as e:
            cause = e.__cause__ if isinstance(e.__cause__, LevitateError) else None
            raise PhaseError(f"{name}: {fn}() failed: {e.headline()}",
                             e.hint or f"fix the recipe ({loaded.info.path}) or its inputs",
                             exit_code=cause.exit_code if cause else None) from e

    def install_one(self, step: graph.Step) -> None:
        info = step.info
        self.out(f"==> {'upgrading' if step.upgrade else 'installing'} {info.name} {info.version}"
                 + ("" if step.explicit else " (dependency)"))
        started = time.monotonic()
        ctx = self._context(info)
        ok = False
        try:
            loaded = load(info.path, make_engine(ctx, module_root=str(info.path.parent)))
            info = loaded.info
            if not step.upgrade and loaded.has("is_installed") and \
                    self._call(loaded, info.name, "is_installed") is True:
                self.out(f"    {info.name}: is_installed() says it is already there; nothing done")
                ok = True
                return
            for fn in ("acquire", "build", "install"):
                if loaded.has(fn):
                    self._call(loaded, info.name, fn)
            if loaded.has("pre_install"):
                self._call(loaded, info.name, "pre_install")
            # the shared Info index is regenerated, not owned (makepkg drops it too)
            ctx.staged(self.prefix / "share" / "info" / "dir").unlink(missing_ok=True)
            tx = Transaction(self.prefix, ctx.stage, name=info.name,
                             owners=self.owners(exclude=info.name),
                             own_files=self._own_files(info) if info.installed else [],
                             own_config=info.state.get("installed_config") or {},
                             on_step=self.on_step)

            def new_state(outcome, info=info):
                # asked for by name: explicit; an upgrade keeps the reason; else a dependency
                as_dep = False if step.explicit else (info.as_dep if info.installed else True)
                state = {"installed": True, "installed_version": info.version,
                         "installed_at": int(time.time()), "installed_files": sorted(outcome.files),
                         "installed_as_dep": as_dep,
                         "installed_prefix": str(self.prefix)}
                if outcome.config or "installed_config" in info.state:
                    state["installed_config"] = outcome.config
                if ctx.rpms_installed or "installed_rpms" in info.state:
                    state["installed_rpms"] = sorted(set(ctx.rpms_installed))
                return info.path, state_source(info.path, state)

            # files and state are one unit: the state is the commit's last journaled step
            outcome = tx.commit(new_state)
            for note in outcome.notes:
                self.out(f"    warning: {note}")
            ok = True
            if loaded.has("post_install"):
                try:
                    self._call(loaded, info.name, "post_install")
                except PhaseError as e:
                    self.out(f"    warning: {e.message} (the files are installed)")
            self.out(f"    {info.name} {info.version}: {len(outcome.files)} files in "
                     f"{time.monotonic() - started:.1f} s")
        finally:
            shutil.rmtree(ctx.stage, ignore_errors=True)
            if ok:
                shutil.rmtree(ctx.build_dir, ignore_errors=True)
            else:
                self.out(f"    build directory kept for inspection: {ctx.build_dir}")

    # -- dry run -------------------------------------------------------------------------------
    def dry_run(self, steps: list[graph.Step]) -> list[DryRun]:
        """Run acquire(), build() and install() of each step in dry mode (helpers/dry.py), in a
        throwaway directory: what each would fetch and do. Nothing is written to the prefix,
        the recipes, the lock or the build directory. A recipe that cannot be dry-run (it needs
        a real download's content) gets a note; the others are still run."""
        planned: set[str] = set()      # what the earlier steps would install (for rpm_install)
        out = []
        for step in steps:
            rec = DryRun()
            with tempfile.TemporaryDirectory(prefix="recipe-dry-") as tmp:
                info = step.info
                ctx = self._context(info, root=Path(tmp), dry=rec,
                                    provided=lambda n=info.name: self.provided(exclude=n) | planned)
                phase = None
                try:
                    loaded = load(info.path, make_engine(ctx, module_root=str(info.path.parent)))
                    for phase in ("acquire", "build", "install"):
                        if loaded.has(phase):
                            loaded.call(phase)
                except (LevitateError, RhaiError) as e:
                    why = e.headline() if isinstance(e, RhaiError) else e.message
                    rec.note = f"{phase}() cannot be dry-run: {why}" if phase \
                        else f"the recipe cannot be loaded: {why}"
            planned.add(info.name)
            planned.update(ctx.rpms_installed)
            out.append(rec)
        return out

    # -- remove --------------------------------------------------------------------------------
    def remove(self, names: list[str], *, force: bool = False) -> list[str]:
        recipes = self.recipes()
        for n in names:
            info = self.registry.get(n)
            if not info.installed:
                raise RecipeError(f"{n} is not installed", "`recipe list --installed` shows what is")
            self._check_prefix(info)
            users = [d for d in graph.dependents(n, recipes) if d not in names]
            if users and not force:
                raise RecipeError(f"cannot remove {n}: {', '.join(users)} depend"
                                  f"{'s' if len(users) == 1 else ''} on it",
                                  "remove those first, or pass --force")
        order = graph.removal_order(names, recipes)
        with PrefixLock(self.prefix):
            for n in order:
                with self._busy(self.recipes()[n]) as info:
                    if not info.installed:
                        raise RecipeError(f"{n} is not installed (any more)",
                                          "another recipe operation removed it meanwhile")
                    self.remove_one(info)
                self.registry.reload()
        return order

    def remove_one(self, info: RecipeInfo) -> None:
        self.out(f"==> removing {info.name}"
                 + (f" {info.installed_version}" if info.installed_version else ""))
        ctx = self._context(info)
        try:
            try:
                loaded = load(info.path, make_engine(ctx, module_root=str(info.path.parent)))
            except (RhaiError, RecipeError) as e:
                self.out(f"    warning: cannot load the recipe, removing its files without "
                         f"hooks: {e.headline() if isinstance(e, RhaiError) else e.message}")
                loaded = None
            hooks = [f for f in ("pre_remove", "remove") if loaded and loaded.has(f)]
            for fn in hooks:
                self._call(loaded, info.name, fn)
            tx = Transaction(self.prefix, ctx.stage, name=info.name, owners={},
                             own_files=self._own_files(info),
                             own_config=info.state.get("installed_config") or {},
                             on_step=self.on_step)
            outcome = tx.remove()
            for note in outcome.notes:
                self.out(f"    warning: {note}")
            state = {"installed": False, "installed_version": None, "installed_at": None,
                     "installed_files": [], "installed_as_dep": False, "installed_prefix": None}
            for k in ("installed_config", "installed_rpms"):
                if k in info.state:
                    state[k] = {} if k == "installed_config" else []
            write_state(info.path, {k: v for k, v in state.items()
                                    if k in info.state or k in ("installed", "installed_files")})
            if loaded and loaded.has("post_remove"):
                try:
                    self._call(loaded, info.name, "post_remove")
                except PhaseError as e:
                    self.out(f"    warning: {e.message}")
        finally:
            shutil.rmtree(ctx.stage, ignore_errors=True)
            shutil.rmtree(ctx.build_dir, ignore_errors=True)

    # -- update / upgrade / autoremove -----------------------------------------------------------
    def update(self, names: list[str] | None = None) -> dict[str, str]:
        """Run check_update() of the recipes (all, or `names`); rewrite `version` where it
        returns a newer one. Returns name -> new version."""
        from .version import compare
        targets = [self.registry.get(n) for n in names] if names else list(self.recipes().values())
        changed = {}
        for info in targets:
            try:
                with self._busy(info, entry=False):
                    new, loaded = self._check_update(info)
            except (LevitateError, RhaiError) as e:
                if names:                                   # asked for by name: an error
                    raise
                self.failed_updates.append(info.name)       # checking all: report, go on
                self.out(f"warning: {info.name}: cannot check for updates: "
                         f"{e.headline() if isinstance(e, RhaiError) else e.message}")
                continue
            if isinstance(new, str) and new and compare(new, info.version) > 0:
                write_state(info.path, {}, extra={"version": new} if loaded.info.shape == "vars"
                            else {"pkg": {**loaded.scope["pkg"], "version": new}})
                changed[info.name] = new
                self.out(f"{info.name}: {info.version} -> {new}")
        self.registry.reload()
        return changed

    def _check_update(self, info: RecipeInfo):
        """(what check_update() returns or None, the loaded recipe)."""
        ctx = self._context(info)
        try:
            loaded = load(info.path, make_engine(ctx, module_root=str(info.path.parent)))
            if not loaded.has("check_update"):
                return None, loaded
            return self._call(loaded, info.name, "check_update"), loaded
        finally:
            shutil.rmtree(ctx.build_dir, ignore_errors=True)
            shutil.rmtree(ctx.stage, ignore_errors=True)

    def upgradable(self, names: list[str] | None = None) -> list[str]:
        from .version import compare
        recipes = self.recipes()
        pool = names or sorted(recipes)
        return [n for n in pool if recipes[n].installed and recipes[n].installed_version
                and compare(recipes[n].version, recipes[n].installed_version) != 0]

    def upgrade_plan(self, names: list[str] | None = None) -> list[graph.Step]:
        for n in names or []:
            if not self.registry.get(n).installed:
                raise RecipeError(f"{n} is not installed", f"install it: recipe install {n}")
        todo = self.upgradable(names)
        # an upgrade does not change why a package is installed: explicit stays explicit
        return [graph.Step(s.info, s.upgrade and not s.info.as_dep, s.upgrade)
                for s in self.plan(todo)] if todo else []

    def upgrade(self, names: list[str] | None = None) -> list[graph.Step]:
        steps = self.upgrade_plan(names)
        if not steps:
            self.out("everything is up to date")
            return []
        return self.run_steps(steps)

    def autoremove(self, *, dry_run: bool = False) -> list[str]:
        orphans = graph.orphans(self.recipes())
        if orphans and not dry_run:
            self.remove(orphans)
        return orphans


__all__ = ["Manager", "PhaseError"]
