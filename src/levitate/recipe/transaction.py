"""Atomic changes to a prefix: a staged install moved into place, or a removal, all or nothing.

A recipe installs into a staging root (`stage/<PREFIX>/...`, DESTDIR style). Before anything in
the prefix changes, `check()` reports conflicts: a staged file whose path exists on disk or
belongs to another installed recipe. `commit()` then moves directories, files and symlinks into
place one step at a time, writing each step to a journal first; a file it replaces (the
package's previous version) is moved to a backup directory, not deleted. If anything fails, or
Ctrl-C arrives, the journal is replayed backwards and the prefix is as it was. A journal left by
a crash is rolled back by the next operation on that prefix (`recover`).

The state written back into the recipe file is the last step of the same unit: the journal
names the recipe file and a digest of its new state variables before the file is replaced, and
is dropped only after. Recovery finds either the recipe file with that state (the commit is
finished: the backups are dropped) or without it (the files are rolled back), so a crash at any
point ends in the old or the new state. The digest covers the state variables only, so an edit
of other lines in between (`recipe update`) does not change the outcome. Recovery acts only on
paths under the prefix outside recipe's own state directory (backups inside it); a journal
naming anything else is refused, and a package may not install anything into that directory.

Configuration files (under PREFIX/etc) are handled as pacman does with .pacnew/.pacsave: on an
upgrade, a file the user changed is kept and the new one is set beside it as `NAME.recipenew`;
on removal, a changed file is kept as `NAME.recipesave`.

One operation at a time per prefix: `PrefixLock` (flock on PREFIX/var/lib/recipe/lock) refuses a
second caller with a clear message.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..util.errors import LevitateError
from ..util.files import atomic_output
from .helpers.checksum import file_digest
from .recipe import read_info
from .state import write_text_atomic

STATE_DIR = Path("var/lib/recipe")


class ConflictError(LevitateError):
    """Files a recipe would install are already there."""

    exit_code = 7


class LockedError(LevitateError):
    """Another recipe operation holds the prefix."""

    exit_code = 8


def state_dir(prefix: Path) -> Path:
    return Path(prefix) / STATE_DIR


def flock_or_refuse(fd: int, busy: str, hint: str) -> None:
    """An exclusive flock on the lock file `fd` at once, then this process's pid written into it
    for the next caller's message; if another holds it, close `fd` and raise LockedError saying
    `busy (pid N)`."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise LockedError(f"{busy} (pid {holder})", hint) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)


class PrefixLock:
    """Exclusive use of a prefix for one recipe operation (released when the process ends)."""

    def __init__(self, prefix: Path):
        self.prefix = Path(prefix)
        self.path = state_dir(self.prefix) / "lock"
        self.fd: int | None = None

    def __enter__(self) -> "PrefixLock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise LevitateError(f"cannot lock {self.prefix}: {e.strerror}",
                                "run as a user who may write to the prefix, or pick another "
                                "with --prefix") from None
        flock_or_refuse(fd, f"another recipe operation is running on {self.prefix}",
                        "wait for it to finish; one operation per prefix at a time")
        self.fd = fd
        recover(self.prefix)
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)
            self.fd = None


def _move(src: Path, dst: Path) -> None:
    """Rename, or copy then rename when src and dst are on different file systems."""
    try:
        os.rename(src, dst)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        with atomic_output(dst) as tmp:          # a half copy must not keep the disk full
            if src.is_symlink():
                os.symlink(os.readlink(src), tmp)
            else:
                shutil.copy2(src, tmp)
        os.unlink(src)


class Journal:
    """Write-ahead record of the steps of one commit, in memory and on disk."""

    def __init__(self, prefix: Path):
        self.dir = state_dir(prefix)
        self.path = self.dir / "journal"
        self.backup = self.dir / f"backup-{os.getpid()}"
        self.steps: list[list[str]] = []
        self._file = None
        self._n = 0

    def open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o644)
        self._file = os.fdopen(fd, "w", encoding="utf-8")
        self.record("begin", str(self.backup))

    def record(self, kind: str, *paths: str) -> None:
        step = [kind, *paths]
        self.steps.append(step)
        self._file.write(json.dumps(step) + "\n")
        self._file.flush()

    def backup_path(self) -> Path:
        self.backup.mkdir(parents=True, exist_ok=True)
        self._n += 1
        return self.backup / str(self._n)

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = None
        self.path.unlink(missing_ok=True)
        shutil.rmtree(self.backup, ignore_errors=True)


def undo(steps: list[list[str]]) -> list[str]:
    """Reverse journal steps; returns the problems met (an empty list when all went back)."""
    problems = []
    for step in reversed(steps):
        kind, *paths = step
        try:
            if kind == "place":
                if os.path.lexists(paths[0]):
                    os.unlink(paths[0])
            elif kind in ("backup", "rename"):      # [original, moved-to]
                if os.path.lexists(paths[1]):
                    Path(paths[0]).parent.mkdir(parents=True, exist_ok=True)
                    if os.path.lexists(paths[0]) and not os.path.isdir(paths[0]):
                        os.unlink(paths[0])
                    _move(Path(paths[1]), Path(paths[0]))
            elif kind == "mkdir":
                with_contents = os.listdir(paths[0]) if os.path.isdir(paths[0]) else None
                if with_contents == []:
                    os.rmdir(paths[0])
            elif kind == "begin":
                shutil.rmtree(paths[0], ignore_errors=True)
        except OSError as e:
            problems.append(f"{kind} {paths}: {e.strerror}")
    return problems


def state_digest(path: Path, source: str | None = None) -> str:
    """sha256 of a recipe's state variables (from `source`, or the file as it is now)."""
    state = read_info(path, source).state
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()


def state_written(steps: list[list[str]]) -> bool:
    """Whether the journal's state step reached the recipe file (the commit is then done)."""
    for kind, *args in steps:
        if kind == "state":
            try:
                return state_digest(Path(args[0])) == args[1]
            except LevitateError:
                return False
    return False


def finish(steps: list[list[str]]) -> None:
    """Complete a commit whose state was written: drop the backups of what it replaced."""
    for kind, *args in steps:
        if kind == "begin":
            shutil.rmtree(args[0], ignore_errors=True)


def foreign_step(prefix: Path, steps: list) -> str | None:
    """The first step that names anything recipe would not have written for this prefix:
    targets are under the prefix and outside its state directory, backups are in a backup-N
    directory of the state directory, the state step names a recipe file (only read)."""
    prefix, sd = Path(prefix), state_dir(prefix)

    def clean(p) -> bool:
        return isinstance(p, str) and os.path.isabs(p) and os.path.normpath(p) == p

    def target(p) -> bool:
        return clean(p) and prefix in Path(p).parents and sd not in (Path(p), *Path(p).parents)

    def backup(p, top=False) -> bool:
        rel = Path(p).relative_to(sd).parts if clean(p) and sd in Path(p).parents else ()
        return bool(rel) and rel[0].startswith("backup-") and rel[0][7:].isdigit() and \
            (len(rel) == 1) == top

    shapes = {"begin": lambda a: len(a) == 1 and backup(a[0], top=True),
              "mkdir": lambda a: len(a) == 1 and target(a[0]),
              "place": lambda a: len(a) == 1 and target(a[0]),
              "backup": lambda a: len(a) == 2 and target(a[0]) and backup(a[1]),
              "rename": lambda a: len(a) == 2 and target(a[0]) and target(a[1]),
              "state": lambda a: len(a) == 2 and clean(a[0]) and a[0].endswith(".rhai")
              and isinstance(a[1], str) and len(a[1]) == 64}
    for step in steps:
        if not (isinstance(step, list) and step and isinstance(step[0], str) and step[0] in shapes
                and shapes[step[0]](step[1:])):
            return json.dumps(step)
    return None


def recover(prefix: Path) -> bool:
    """Finish or roll back a commit a crash left half done (its journal is still there)."""
    path = state_dir(prefix) / "journal"
    if not os.path.lexists(path):
        return False
    steps = []
    try:
        if path.is_symlink() or not path.is_file():
            raise ValueError
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                steps.append(json.loads(line))
            except ValueError:
                break                                # the step being written when it stopped
    except (OSError, ValueError):
        steps = [None]
    bad = foreign_step(prefix, steps)
    if bad is not None:
        raise LevitateError(f"the journal {path} names {bad}, which recipe does not write for "
                            f"{prefix}: not written by recipe, nothing was done",
                            "inspect it; remove the file if it is not from an interrupted "
                            "recipe operation on this prefix") from None
    if state_written(steps):
        finish(steps)
        path.unlink()
        return True
    problems = undo(steps)
    if problems:
        raise LevitateError(f"could not roll back an interrupted operation on {prefix}: "
                            f"{problems[0]}", f"the journal is {path}; fix the cause and rerun")
    path.unlink()
    return True


@dataclass
class Outcome:
    """What a committed install left in the prefix."""

    files: list[str] = field(default_factory=list)         # files and symlinks, absolute
    config: dict[str, str] = field(default_factory=dict)   # config path -> sha256 of the new one
    notes: list[str] = field(default_factory=list)         # .recipenew / .recipesave messages


def _is_config(prefix: Path, path: Path) -> bool:
    etc = prefix / "etc"
    return etc in path.parents


class Transaction:
    """One recipe's change to the prefix. `owners` maps paths to the installed recipe that owns
    them; `own_files`/`own_config` are this recipe's current state (for upgrades and removal)."""

    def __init__(self, prefix: Path, stage: Path, *, name: str, owners: Mapping[str, str],
                 own_files: list[str] = (), own_config: Mapping[str, str] | None = None,
                 on_step: Callable[[int], None] | None = None):
        self.prefix = Path(prefix)
        self.stage = Path(stage)
        self.name = name
        self.owners = owners
        self.own_files = set(own_files)
        self.own_config = dict(own_config or {})
        self.on_step = on_step              # test hook: called before each step (may raise)
        self._count = 0

    # -- what is staged ----------------------------------------------------------------------
    def staged(self) -> tuple[list[Path], list[Path]]:
        """(directories, files and symlinks) as target paths, parents first."""
        root = self.stage / self.prefix.relative_to("/")
        dirs: list[Path] = []
        files: list[Path] = []
        if self.stage.exists():
            outside = [p for p in self._walk(self.stage) if not (
                p == root or root in p.parents or p in root.parents)]
            if outside:
                raise LevitateError(
                    f"{self.name} installed {'/' + str(outside[0].relative_to(self.stage))} "
                    f"outside the prefix {self.prefix}",
                    "a recipe installs under PREFIX only (configure --prefix=$PREFIX)")
        if not root.is_dir():
            return dirs, files
        sd = state_dir(self.prefix)
        for p in self._walk(root):
            target = self.prefix / p.relative_to(root)
            self._check_utf8(target)
            is_dir = p.is_dir() and not p.is_symlink()
            if sd in target.parents or (target == sd and not is_dir):
                raise LevitateError(
                    f"{self.name} installs {target}, inside recipe's own state directory {sd}",
                    "a package may not ship recipe's journal, lock or backups; nothing was "
                    "changed")
            if is_dir:
                dirs.append(target)
            else:
                files.append(target)
        return dirs, files

    def _check_utf8(self, target: Path) -> None:
        """The state and the journal store names as UTF-8 text: refuse any other name before the
        commit (os.walk hands such names over with surrogate escapes)."""
        try:
            str(target).encode("utf-8")
        except UnicodeEncodeError:
            shown = os.fsencode(target).decode("utf-8", "backslashreplace")
            raise LevitateError(f"{self.name} installs {shown}, a file name that is not valid UTF-8",
                                "rename it in install(); nothing was changed") from None

    @staticmethod
    def _walk(top: Path):
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            for d in dirnames:
                yield Path(dirpath) / d
            for f in sorted(filenames):
                yield Path(dirpath) / f

    def _src(self, target: Path) -> Path:
        return self.stage / target.relative_to("/")

    def check(self) -> tuple[list[Path], list[Path]]:
        """Raise ConflictError listing every staged path that would clobber something."""
        dirs, files = self.staged()
        problems = []
        for d in dirs:
            if os.path.lexists(d) and not d.is_dir():
                problems.append(f"{d} exists and is not a directory")
        for f in files:
            key = str(f)
            if key in self.own_files:
                continue
            owner = self.owners.get(key)
            if owner and owner != self.name:
                problems.append(f"{f} is owned by recipe {owner}")
            elif os.path.lexists(f):
                if f.is_dir() and not f.is_symlink():
                    problems.append(f"{f} exists and is a directory")
                elif not f.name.endswith(".recipenew"):
                    problems.append(f"{f} exists on disk")
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise ConflictError(f"{self.name}: file conflict: {problems[0]}{more}",
                                "remove or move the file, or remove the recipe that owns it; "
                                "nothing was changed")
        return dirs, files

    # -- committing --------------------------------------------------------------------------
    def _step(self) -> None:
        self._count += 1
        if self.on_step is not None:
            self.on_step(self._count)

    def commit(self, state: Callable[[Outcome], tuple[Path, str]] | None = None) -> Outcome:
        """Move the staged tree into the prefix and retire this recipe's files the new version
        no longer has; then `state(outcome)` gives the recipe file and its new text, written as
        the last step. All or nothing."""
        dirs, files = self.check()
        out = Outcome()
        journal = Journal(self.prefix)
        try:
            journal.open()
            for d in dirs:
                if not d.is_dir():
                    self._step()
                    journal.record("mkdir", str(d))
                    d.mkdir()
            for f in files:
                self._place(journal, f, out)
            new = {str(f) for f in files}
            for old in sorted(self.own_files - new, reverse=True):
                self._retire(journal, Path(old), out)
            self._step()
            self._write_state(journal, state, out)
        except BaseException as e:
            if state_written(journal.steps):      # the new state is on disk: the commit is done
                journal.close()
                raise
            self._rollback(journal, e, "install")
        journal.close()
        prune(self.prefix, [Path(p) for p in self.own_files - set(out.files)])
        return out

    def _write_state(self, journal: Journal, state, out: Outcome) -> None:
        """The state step: recorded with the digest of the new text, then written."""
        if state is None:
            return
        path, text = state(out)
        journal.record("state", str(path), state_digest(Path(path), text))
        self._step()
        write_text_atomic(Path(path), text)
        self._step()

    def _rollback(self, journal: Journal, exc: BaseException, what: str):
        """Undo the journal, then re-raise (an OSError as a one-line error)."""
        problems = undo(journal.steps)
        if problems:
            raise LevitateError(f"rollback of {self.name} incomplete: {problems[0]}",
                                f"the journal is kept in {journal.path}") from None
        journal.close()
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise LevitateError(f"{self.name}: no space left on {self.prefix}; everything was "
                                "rolled back", f"free space there (df {self.prefix}) and "
                                "retry") from None
        if isinstance(exc, OSError):
            where = f" {exc.filename}" if exc.filename else ""
            raise LevitateError(f"{self.name}: cannot {what}{where}: {exc.strerror or exc}; "
                                "everything was rolled back",
                                "check permissions and attributes (lsattr) in the prefix") from None
        raise exc

    def _place(self, journal: Journal, target: Path, out: Outcome) -> None:
        src = self._src(target)
        key = str(target)
        if _is_config(self.prefix, target) and src.is_file() and not src.is_symlink():
            new = out.config[key] = file_digest(src, "sha256")
            if key in self.own_files and target.is_file() and not target.is_symlink():
                current, before = file_digest(target, "sha256"), self.own_config.get(key)
                if current == new:
                    out.files.append(key)
                    return
                if before is not None and current != before:     # changed by the user
                    side = target.with_name(target.name + ".recipenew")
                    self._step()
                    if os.path.lexists(side):
                        bak = journal.backup_path()
                        journal.record("backup", str(side), str(bak))
                        _move(side, bak)
                    journal.record("place", str(side))
                    _move(src, side)
                    out.files.append(key)
                    out.notes.append(f"{target} was changed locally: kept it, the new version "
                                     f"is {side.name}")
                    return
        self._step()
        if os.path.lexists(target):
            bak = journal.backup_path()
            journal.record("backup", key, str(bak))
            _move(target, bak)
        journal.record("place", key)
        _move(src, target)
        out.files.append(key)

    def _retire(self, journal: Journal, path: Path, out: Outcome) -> None:
        if not os.path.lexists(path):
            return
        self._step()
        key = str(path)
        if _is_config(self.prefix, path) and path.is_file() and not path.is_symlink() and \
                key in self.own_config and file_digest(path, "sha256") != self.own_config[key]:
            save = path.with_name(path.name + ".recipesave")
            if os.path.lexists(save):
                bak = journal.backup_path()
                journal.record("backup", str(save), str(bak))
                _move(save, bak)
            journal.record("rename", key, str(save))
            _move(path, save)
            out.notes.append(f"{path} was changed locally: kept as {save.name}")
            return
        bak = journal.backup_path()
        journal.record("backup", key, str(bak))
        _move(path, bak)

    def remove(self) -> Outcome:
        """Delete this recipe's files (changed config files kept as .recipesave). All or
        nothing."""
        out = Outcome()
        journal = Journal(self.prefix)
        try:
            journal.open()
            for f in sorted(self.own_files, reverse=True):
                self._retire(journal, Path(f), out)
            self._step()
        except BaseException as e:
            self._rollback(journal, e, "remove")
        journal.close()
        prune(self.prefix, [Path(p) for p in self.own_files])
        return out


def prune(prefix: Path, removed: list[Path]) -> None:
    """Remove directories that the removal of `removed` left empty, up to (not including) the
    prefix and never the recipe state directory."""
    keep = {Path(prefix), state_dir(prefix), state_dir(prefix).parent, state_dir(prefix).parent.parent}
    dirs = sorted({d for p in removed for d in Path(p).parents
                   if Path(prefix) in d.parents and d not in keep},
                  key=lambda d: len(d.parts), reverse=True)
    for d in dirs:
        try:
            d.rmdir()
        except OSError:
            pass
