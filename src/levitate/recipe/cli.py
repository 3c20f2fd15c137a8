"""`recipe`: the LevitateOS package manager's command line (see docs/recipe.md).

Errors end in one line (what, then a hint) and a non-zero exit; `--debug` shows tracebacks.
`--json` prints machine-readable results on stdout; messages always go to stderr.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import time
from pathlib import Path

from ..util.errors import LevitateError
from . import graph
from .helpers.checksum import file_hashes
from .lock import LOCK_NAME, LockError, differences, read_lock, write_lock
from .manager import Manager, default_build_root
from .registry import Registry, search_path
from .rhai.errors import RhaiError


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

    def cmd(name, help_, *args):
        c = sub.add_parser(name, help=help_, parents=[common])
        for a in args:
            a(c)
        return c

    pkgs = lambda c: c.add_argument("packages", nargs="+", metavar="PKG")     # noqa: E731
    opt_pkgs = lambda c: c.add_argument("packages", nargs="*", metavar="PKG")  # noqa: E731
    one = lambda c: c.add_argument("package", metavar="PKG")                  # noqa: E731
    c = cmd("install", "install packages (and their dependencies)", pkgs)
    c.add_argument("--dry-run", action="store_true",
                   help="show what would be fetched and installed, in order; change nothing")
    c.add_argument("--no-deps", action="store_true", help="do not install dependencies")
    c.add_argument("--locked", action="store_true", help="fail unless versions match recipe.lock")
    c.add_argument("--reinstall", action="store_true", help="install again even if up to date")
    c = cmd("remove", "remove packages", pkgs)
    c.add_argument("--force", action="store_true", help="remove even if others depend on it")
    cmd("update", "run check_update() and rewrite the recipes' versions", opt_pkgs)
    c = cmd("upgrade", "install the new version of updated packages", opt_pkgs)
    c.add_argument("--dry-run", action="store_true",
                   help="show what would be fetched and upgraded; change nothing")
    c = cmd("list", "list recipes")
    c.add_argument("--installed", action="store_true", help="only installed ones")
    cmd("search", "find recipes by name or description",
        lambda c: c.add_argument("pattern"))
    cmd("info", "show a recipe", one)
    cmd("deps", "direct dependencies of a recipe", one)
    cmd("tree", "dependency tree of a recipe", one)
    cmd("why", "installed packages that depend on PKG", one)
    cmd("impact", "everything that depends on PKG, transitively", one)
    cmd("orphans", "packages installed as dependencies that nothing needs")
    c = cmd("autoremove", "remove orphans")
    c.add_argument("--dry-run", action="store_true")
    cmd("hash", "sha256, sha512 and blake3 of a file", lambda c: c.add_argument("file"))
    c = cmd("lock", "recipe.lock: update, show or verify")
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


def run(args) -> int:
    g = lambda k, d=None: getattr(args, k, d)   # noqa: E731
    if args.command == "hash":
        path = Path(args.file)
        if not path.is_file():
            raise LevitateError(f"{path}: no such file")
        h = file_hashes(path)
        _emit(args, h, [f"{a}  {v}" for a, v in h.items()])
        return 0
    registry = Registry(search_path(g("recipes")))
    mgr = Manager(registry, Path(g("prefix", "/usr/local")),
                  Path(g("build_dir")) if g("build_dir") else default_build_root())
    recipes = registry.all()
    for problem in registry.broken if args.command in ("list", "search") else ():
        print(f"recipe: warning: skipped {problem}", file=sys.stderr)
    c = args.command
    if c == "install":
        steps = mgr.plan(args.packages, no_deps=args.no_deps, locked=args.locked,
                         reinstall=args.reinstall)
        if args.dry_run:
            return _dry_run(args, mgr, steps, "nothing to do")
        steps = mgr.install(args.packages, no_deps=args.no_deps, locked=args.locked,
                            reinstall=args.reinstall)
        _emit(args, [_step_dict(s) for s in steps], [])
    elif c == "remove":
        order = mgr.remove(args.packages, force=args.force)
        _emit(args, order, [])
    elif c == "update":
        changed = mgr.update(args.packages or None)
        _emit(args, changed, [] if changed else ["no updates found"])
        if mgr.failed_updates:
            raise LevitateError(f"could not check {', '.join(mgr.failed_updates)} for updates",
                                "see the warnings above; the other recipes were checked")
    elif c == "upgrade":
        if args.dry_run:
            return _dry_run(args, mgr, mgr.upgrade_plan(args.packages or None),
                            "everything is up to date")
        steps = mgr.upgrade(args.packages or None)
        _emit(args, [_step_dict(s) for s in steps], [])
    elif c == "list":
        rs = [r for _, r in sorted(recipes.items()) if r.installed or not args.installed]
        _emit(args, [_info_dict(r) for r in rs],
              [f"{r.name} {r.version}" + (f" [installed {r.installed_version}"
                                          f"{', dependency' if r.as_dep else ''}]" if r.installed else "")
               for r in rs])
    elif c == "search":
        pat = args.pattern.lower()
        glob = any(ch in pat for ch in "*?[")
        rs = [r for _, r in sorted(recipes.items())
              if (fnmatch.fnmatch(r.name.lower(), pat) if glob
                  else pat in r.name.lower() or pat in r.description.lower())]
        _emit(args, [_info_dict(r) for r in rs],
              [f"{r.name} {r.version}  {r.description}".rstrip() for r in rs] or
              [f"no recipe matches '{args.pattern}'"])
        return 0 if rs else 1
    elif c == "info":
        r = registry.get(args.package)
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
    elif c == "deps":
        r = registry.get(args.package)
        _emit(args, [str(d) for d in r.deps], [str(d) for d in r.deps] or ["(no dependencies)"])
    elif c == "tree":
        registry.get(args.package)
        lines = graph.tree(args.package, recipes)
        _emit(args, lines, lines)
    elif c in ("why", "impact"):
        registry.get(args.package)
        names = graph.dependents(args.package, recipes) if c == "why" \
            else graph.impact(args.package, recipes)
        _emit(args, names, names or [f"nothing installed depends on {args.package}"])
    elif c == "orphans":
        names = graph.orphans(recipes)
        _emit(args, names, names or ["no orphans"])
    elif c == "autoremove":
        names = mgr.autoremove(dry_run=args.dry_run)
        _emit(args, names, ([f"would remove {n}" for n in names] if args.dry_run else [])
              or (["no orphans"] if not names else []))
    elif c == "lock":
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
    args = build_parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    try:
        return run(args)
    except LevitateError as exc:                       # RhaiError too: its headline has file:line:col
        if debug:
            raise
        print(f"recipe: error: {exc.headline() if isinstance(exc, RhaiError) else exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"recipe: hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        if debug:
            raise
        print(f"recipe: error: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""),
              file=sys.stderr)
        print("recipe: hint: check the paths and permissions (rerun with --debug for details)",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if debug:
            raise
        print("recipe: interrupted; the operation in progress was rolled back", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
