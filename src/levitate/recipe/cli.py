"""`recipe`: the LevitateOS package manager's command line (see docs/recipe.md).

Errors end in one line (`recipe: error: WHAT (hint: ...)`, util/cli.py) and a non-zero exit;
`--debug` adds the traceback. Each command is one `cmd_*` function, chosen by the parser.
`--json` prints machine-readable results on stdout; messages always go to stderr.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import time
from pathlib import Path

from ..util.cli import run_command
from ..util.errors import LevitateError
from . import graph
from .config import Config
from .helpers.checksum import file_hashes
from .lock import LOCK_NAME, LockError, differences, read_lock, write_lock
from .manager import Manager
from .registry import Registry


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("global options")
    g.add_argument("--recipes", metavar="DIR", default=argparse.SUPPRESS,
                   help="recipes directory searched first (then $RECIPE_PATH, the XDG data dir, "
                        "the system's)")
    g.add_argument("--prefix", metavar="DIR", default=argparse.SUPPRESS,
                   help="where packages go (default /usr/local)")
    g.add_argument("--build-dir", metavar="DIR", default=argparse.SUPPRESS,
                   help="where recipes build (default ~/.cache/recipe/build)")
    g.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                   help="machine-readable output on stdout")
    g.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show tracebacks")
    p = argparse.ArgumentParser(prog="recipe", parents=[common],
                                description="LevitateOS package manager: recipes are Rhai scripts")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def cmd(name, func, help_, *args):
        c = sub.add_parser(name, help=help_, parents=[common])
        c.set_defaults(func=func)
        for a in args:
            a(c)
        return c

    pkgs = lambda c: c.add_argument("packages", nargs="+", metavar="PKG")     # noqa: E731
    opt_pkgs = lambda c: c.add_argument("packages", nargs="*", metavar="PKG")  # noqa: E731
    one = lambda c: c.add_argument("package", metavar="PKG")                  # noqa: E731
    c = cmd("install", cmd_install, "install packages (and their dependencies)", pkgs)
    c.add_argument("--dry-run", action="store_true",
                   help="show what would be fetched and installed, in order; change nothing")
    c.add_argument("--no-deps", action="store_true", help="do not install dependencies")
    c.add_argument("--locked", action="store_true", help="fail unless versions match recipe.lock")
    c.add_argument("--reinstall", action="store_true", help="install again even if up to date")
    c = cmd("remove", cmd_remove, "remove packages", pkgs)
    c.add_argument("--force", action="store_true", help="remove even if others depend on it")
    cmd("update", cmd_update, "run check_update() and rewrite the recipes' versions", opt_pkgs)
    c = cmd("upgrade", cmd_upgrade, "install the new version of updated packages", opt_pkgs)
    c.add_argument("--dry-run", action="store_true",
                   help="show what would be fetched and upgraded; change nothing")
    c = cmd("list", cmd_list, "list recipes")
    c.add_argument("--installed", action="store_true", help="only installed ones")
    cmd("search", cmd_search, "find recipes by name or description",
        lambda c: c.add_argument("pattern"))
    cmd("info", cmd_info, "show a recipe", one)
    cmd("deps", cmd_deps, "direct dependencies of a recipe", one)
    cmd("tree", cmd_tree, "dependency tree of a recipe", one)
    cmd("why", cmd_dependents, "installed packages that depend on PKG", one)
    cmd("impact", cmd_dependents, "everything that depends on PKG, transitively", one)
    cmd("orphans", cmd_orphans, "packages installed as dependencies that nothing needs")
    c = cmd("autoremove", cmd_autoremove, "remove orphans")
    c.add_argument("--dry-run", action="store_true")
    cmd("hash", cmd_hash, "sha256, sha512 and blake3 of a file", lambda c: c.add_argument("file"))
    c = cmd("lock", cmd_lock, "recipe.lock: update, show or verify")
    c.add_argument("action", choices=["update", "show", "verify"])
    return p


def _emit(args, data, text: str | list[str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        lines = text if isinstance(text, list) else [text]
        if lines:
            print("\n".join(lines))


def _info_dict(r) -> dict:
    return {"name": r.name, "version": r.version, "description": r.description,
            "deps": [str(d) for d in r.deps], "path": str(r.path), "installed": r.installed,
            "installed_version": r.installed_version, "installed_as_dep": r.as_dep,
            "installed_at": r.state.get("installed_at"), "installed_prefix": r.prefix,
            "installed_files": r.installed_files}


def _step_dict(s: graph.Step) -> dict:
    return {"name": s.info.name, "version": s.info.version, "explicit": s.explicit,
            "upgrade": s.upgrade, "from": s.info.installed_version if s.upgrade else None}


def _dry_run(args, mgr: Manager, steps: list[graph.Step], nothing: str) -> int:
    """Print each step with what its recipe would fetch (Manager.dry_run; changes nothing)."""
    recs = mgr.dry_run(steps)
    data, lines = [], []
    for i, (s, rec) in enumerate(zip(steps, recs), 1):
        data.append({**_step_dict(s), "recipe": str(s.info.path), "fetch": rec.fetches,
                     "reads": rec.reads, "rpm": rec.rpms, "skipped": rec.actions,
                     "note": rec.note})
        what = f"upgrade {s.info.installed_version} -> {s.info.version}" if s.upgrade \
            else f"install {s.info.version}"
        lines.append(f"{i}. {s.info.name}: {what}{'' if s.explicit else ' (dependency)'}")
        for url in rec.reads:
            lines.append(f"     read {url} (metadata, read now)")
        for r in rec.rpms:
            lines.append(f"     rocky packages: {', '.join(r['names'])}"
                         + (f" -> {', '.join(r['packages']) or 'all already provided'}"
                            if r["packages"] is not None else f" ({r['note']})"))
        for f in rec.fetches:
            sums = " ".join(f"{a} {h}" for a, h in f["checksum"].items()) or "no checksum verified"
            verb = {"download": "fetch", "rpm": "fetch", "git": "clone", "copy": "copy"}[f["kind"]]
            lines.append(f"     {verb} {f['url']} -> {f['dest']}"
                         + ("" if f["kind"] == "git" else f"  ({sums})"))
        if not rec.fetches and not rec.rpms and not rec.note:
            lines.append("     fetches nothing")
        if rec.note:
            lines.append(f"     note: {rec.note}; what it would do after that is unknown "
                         "(nothing is downloaded in a dry run)")
    _emit(args, data, lines or [nothing])
    return 0


def _manager(args) -> Manager:
    """The manager of this command, configured once (recipe.config) from the options given."""
    config = Config.load(getattr(args, "recipes", None), getattr(args, "prefix", None),
                         getattr(args, "build_dir", None))
    return Manager(Registry(config.recipe_dirs), config.prefix, config.build_root, config=config)


def _recipes_warning_broken(mgr: Manager) -> dict:
    """All recipes; the ones that cannot be read are named on stderr (list and search)."""
    recipes = mgr.registry.all()
    for problem in mgr.registry.broken:
        print(f"recipe: warning: skipped {problem}", file=sys.stderr)
    return recipes


def cmd_hash(args) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise LevitateError(f"{path}: no such file")
    h = file_hashes(path)
    _emit(args, h, [f"{a}  {v}" for a, v in h.items()])
    return 0


def cmd_install(args) -> int:
    mgr = _manager(args)
    steps = mgr.plan(args.packages, no_deps=args.no_deps, locked=args.locked, reinstall=args.reinstall)
    if args.dry_run:
        return _dry_run(args, mgr, steps, "nothing to do")
    steps = mgr.install(args.packages, no_deps=args.no_deps, locked=args.locked, reinstall=args.reinstall)
    _emit(args, [_step_dict(s) for s in steps], [])
    return 0


def cmd_remove(args) -> int:
    _emit(args, _manager(args).remove(args.packages, force=args.force), [])
    return 0


def cmd_update(args) -> int:
    mgr = _manager(args)
    changed = mgr.update(args.packages or None)
    _emit(args, changed, [] if changed else ["no updates found"])
    if mgr.failed_updates:
        raise LevitateError(f"could not check {', '.join(mgr.failed_updates)} for updates",
                            "see the warnings above; the other recipes were checked")
    return 0


def cmd_upgrade(args) -> int:
    mgr = _manager(args)
    if args.dry_run:
        return _dry_run(args, mgr, mgr.upgrade_plan(args.packages or None), "everything is up to date")
    steps = mgr.upgrade(args.packages or None)
    _emit(args, [_step_dict(s) for s in steps], [])
    return 0


def cmd_list(args) -> int:
    recipes = _recipes_warning_broken(_manager(args))
    rs = [r for _, r in sorted(recipes.items()) if r.installed or not args.installed]
    _emit(args, [_info_dict(r) for r in rs],
          [f"{r.name} {r.version}" + (f" [installed {r.installed_version}"
                                      f"{', dependency' if r.as_dep else ''}]" if r.installed else "")
           for r in rs])
    return 0


def cmd_search(args) -> int:
    recipes = _recipes_warning_broken(_manager(args))
    pat = args.pattern.lower()
    glob = any(ch in pat for ch in "*?[")
    rs = [r for _, r in sorted(recipes.items())
          if (fnmatch.fnmatch(r.name.lower(), pat) if glob
              else pat in r.name.lower() or pat in r.description.lower())]
    _emit(args, [_info_dict(r) for r in rs],
          [f"{r.name} {r.version}  {r.description}".rstrip() for r in rs] or
          [f"no recipe matches '{args.pattern}'"])
    return 0 if rs else 1


def cmd_info(args) -> int:
    r = _manager(args).registry.get(args.package)
    d = _info_dict(r)
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(d["installed_at"])) \
        if isinstance(d["installed_at"], int) else "-"
    rows = [("name", r.name), ("version", r.version), ("description", r.description),
            ("deps", ", ".join(d["deps"]) or "-"), ("recipe", r.path),
            ("installed", (f"yes, {r.installed_version}" if r.installed else "no")
             + (" (as a dependency)" if r.as_dep else "")),
            ("prefix", r.prefix or "-"), ("installed at", when),
            ("files", len(r.installed_files))]
    _emit(args, d, [f"{k + ':':<14}{v}" for k, v in rows])
    return 0


def cmd_deps(args) -> int:
    r = _manager(args).registry.get(args.package)
    _emit(args, [str(d) for d in r.deps], [str(d) for d in r.deps] or ["(no dependencies)"])
    return 0


def cmd_tree(args) -> int:
    registry = _manager(args).registry
    registry.get(args.package)
    lines = graph.tree(args.package, registry.all())
    _emit(args, lines, lines)
    return 0


def cmd_dependents(args) -> int:
    registry = _manager(args).registry
    registry.get(args.package)
    find = graph.dependents if args.command == "why" else graph.impact
    names = find(args.package, registry.all())
    _emit(args, names, names or [f"nothing installed depends on {args.package}"])
    return 0


def cmd_orphans(args) -> int:
    names = graph.orphans(_manager(args).registry.all())
    _emit(args, names, names or ["no orphans"])
    return 0


def cmd_autoremove(args) -> int:
    names = _manager(args).autoremove(dry_run=args.dry_run)
    _emit(args, names, ([f"would remove {n}" for n in names] if args.dry_run else [])
          or (["no orphans"] if not names else []))
    return 0


def cmd_lock(args) -> int:
    registry = _manager(args).registry
    recipes = registry.all()
    path = registry.main_dir / LOCK_NAME
    if args.action == "update":
        write_lock(path, [r for r in recipes.values() if r.path.parent == registry.main_dir
                          or r.path.parent.parent == registry.main_dir])
        _emit(args, {"written": str(path)}, [f"wrote {path}"])
    elif args.action == "show":
        lock = read_lock(path)
        _emit(args, lock, [f"{n} {e['version']}" for n, e in sorted(lock.items())])
    else:
        diff = differences(read_lock(path), recipes)
        if diff:
            raise LockError(f"{path.name} disagrees with the recipes: {diff[0]}"
                            + (f" (and {len(diff) - 1} more)" if len(diff) > 1 else ""),
                            "run `recipe lock update` to accept the recipes' versions")
        _emit(args, {"ok": True}, [f"{path.name} matches the recipes"])
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command("recipe", build_parser().parse_args(argv),
                       interrupted="interrupted; the operation in progress was rolled back")


if __name__ == "__main__":
    sys.exit(main())
