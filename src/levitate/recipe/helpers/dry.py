"""Dry mode: the helpers as `recipe install --dry-run` runs them.

When a Context carries a `DryRun` recorder (context.py), make_engine registers the functions
below over the real ones (the one place that decides "dry"). They record what the recipe would
fetch and do, and touch nothing:

* download, copy, git_clone: recorded (URL or source, the file name in BUILD_DIR); nothing is
  fetched or copied. The would-be file still becomes the *last download*, so
  `verify_sha256(hex)` after it records the pinned checksum next to it.
* rpm_install: the requested names; the closure and the RPMs' URLs are resolved from the
  repositories' metadata (repomd.xml and its signature, primary; cached like a real install's)
  when that works, else the names with the reason. No RPM is fetched.
* http_get, github_latest_release, github_latest_tag: done for real (small reads whose answer
  the script needs to know what it would fetch), and listed.
* extract, the file writers, run and friends, install_*: recorded and skipped (`run_output`
  returns "", `run_status` 0). `cd` only sets the current directory (recorded too).
* The reading helpers (READ_ONLY) are the real ones.

A recipe whose later steps need the content of a real download (`read_file` of an extracted
file, a `cd` it then checks) fails in dry mode; the caller reports what was recorded up to then.
"""

from __future__ import annotations

from pathlib import Path

from ...util.errors import LevitateError
from . import checksum, fetch, fs, rpm
from .context import Context

# the real helpers a dry run uses as they are: they only read (or change the Context)
READ_ONLY = frozenset({
    "exists", "file_exists", "dir_exists", "read_file", "glob_list", "basename", "dirname",
    "join_path", "pwd", "env", "set_env", "log", "warn", "parse_version"})

# recorded and skipped: name -> (arities, what the recipe gets back)
SKIPPED = {
    "extract": ((1, 2), None), "mkdir": ((1,), None), "rm": ((1,), None), "mv": ((2,), None),
    "ln": ((2,), None), "chmod": ((2,), None), "write_file": ((2,), None),
    "run": ((1,), None), "shell": ((1,), None), "shell_in": ((2,), None),
    "run_output": ((1,), ""), "shell_output": ((1,), ""),
    "run_status": ((1,), 0), "shell_status": ((1,), 0),
    "exec": ((1, 2), 0), "exec_output": ((1, 2), ""),
    "install_bin": ((1, 2), None), "install_lib": ((1, 2), None), "install_man": ((1,), None),
    "install_to_dir": ((2, 3), None)}


def _fetch(ctx: Context, kind: str, source: str, target: Path, *, last: bool = True) -> str:
    entry = {"kind": kind, "url": source, "dest": target.name, "checksum": {}}
    ctx.dry.fetches.append(entry)
    ctx.dry.by_target[target] = entry
    if last:
        ctx.last_download = target
    return str(target)


def _verify(ctx: Context, algo: str, args: tuple) -> None:
    """The checksum of a would-be download is recorded; a real file is checked for real."""
    path = ctx.last_download if len(args) == 1 else ctx.read_path(args[0])
    entry = ctx.dry.by_target.get(path)
    if entry is None:
        checksum.verify(ctx, algo, args)
    else:
        entry["checksum"][algo] = str(args[-1]).strip().lower()


def _cd(ctx: Context, d: str) -> None:
    """The directory an extract would have made does not exist: only remember it."""
    ctx.dry.actions.append(f"cd({d})")
    ctx.cwd = fs.cd_target(ctx, d)


def _read(ctx: Context, what: str, fn, *args):
    ctx.dry.reads.append(what)
    return fn(ctx, *args)


def _rpm_install(ctx: Context, names) -> list[str]:
    entry = {"names": rpm.name_list(names), "packages": None, "note": None}
    ctx.dry.rpms.append(entry)
    try:
        pkgs = rpm.dry_plan(ctx, entry["names"])
    except (LevitateError, OSError) as e:
        entry["note"] = "closure not resolved: " + (e.message if isinstance(e, LevitateError)
                                                    else str(e))
        return []
    entry["packages"] = [p["nevra"] for p in pkgs]
    for p in pkgs:
        ctx.dry.fetches.append({"kind": "rpm", "url": p["url"], "dest": p["dest"],
                                "checksum": p["checksum"]})
    ctx.rpms_installed.extend(p["name"] for p in pkgs)
    return entry["packages"]


def _skip(ctx: Context, name: str, result):
    def skipped(*args):
        ctx.dry.actions.append(f"{name}({', '.join(map(str, args))})")
        return result
    return skipped


def register(engine, ctx: Context) -> None:
    r = engine.register_fn
    r("download", lambda url, dest=None: _fetch(ctx, "download", str(url),
                                                fetch.download_target(ctx, str(url), dest)))
    r("copy", lambda pattern, dest=None: [_fetch(ctx, "copy", src, t)
                                          for src, t in fetch.copy_targets(ctx, pattern, dest)])
    r("git_clone", lambda url, dest=None: _fetch(ctx, "git", str(url),
                                                 fetch.clone_target(ctx, url, dest), last=False))
    r("http_get", lambda url: _read(ctx, str(url), fetch.http_get, url))
    r("github_latest_release", lambda repo: _read(ctx, f"GitHub: latest release of {repo}",
                                                  fetch.github_latest_release, repo))
    r("github_latest_tag", lambda repo: _read(ctx, f"GitHub: newest tag of {repo}",
                                              fetch.github_latest_tag, repo))
    for algo in checksum.ALGORITHMS:
        for n in (1, 2):
            r(f"verify_{algo}", lambda *a, _algo=algo: _verify(ctx, _algo, a), arity=n)
    r("cd", lambda d: _cd(ctx, d))
    r("rpm_install", lambda names: _rpm_install(ctx, names))
    for name, (arities, result) in SKIPPED.items():
        for n in arities:
            r(name, _skip(ctx, name, result), arity=n)

