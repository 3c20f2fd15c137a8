"""Unpacking one .deb into a merged-/usr build root, recording each path's Debian metadata.

The build root becomes rpmbuild's --buildroot as it is (no copy); the recorded entries become the
spec's %files list, with modes and owners from data.tar (not from the disk, so it also works for
a non-root user). The kernel image and config move to where Rocky's kernel puts them.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .debpkg import Control, open_data, read_control
from .mapping import merged_link_target, merged_usr


@dataclass
class Entry:
    """One path of a package's payload, after merging /usr."""

    path: str     # absolute, e.g. /usr/bin/ls
    kind: str     # "dir", "file" or "link"
    mode: int     # permission bits, set-id bits included
    user: str
    group: str
    orig: str     # the path in the .deb (before merging /usr)


@dataclass
class Unpacked:
    control: Control
    deb: Path
    tree: Path
    entries: dict[str, Entry]
    kernel_version: str | None = None
    interpreters: set[str] = field(default_factory=set)  # #! lines of its executable scripts
    notes: list[str] = field(default_factory=list)   # things worth a log line


def _clean(name: str) -> str:
    """'./usr/bin/x' -> '/usr/bin/x'; refuses anything that would leave the tree."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or ".." in parts:
        raise ValueError(f"unsafe path in data.tar: {name!r}")
    return "/" + "/".join(parts)


def _through_link(path: str, links: set[str]) -> bool:
    """Would writing `path` follow a symlink this package created (possibly out of the tree)?"""
    parent = posixpath.dirname(path)
    while parent != "/":
        if parent in links:
            return True
        parent = posixpath.dirname(parent)
    return False


def unpack(deb: Path, tree: Path) -> Unpacked:
    """Extract `deb` into `tree` (merged /usr) and return its entries."""
    tree = Path(os.path.abspath(tree))
    control = read_control(deb)
    result = Unpacked(control, deb, tree, {})
    entries = result.entries
    tree.mkdir(parents=True, exist_ok=True)
    dir_times: list[tuple[Path, int]] = []
    links: set[str] = set()
    with open_data(deb) as tar:
        for m in tar:
            orig = _clean(m.name)
            if orig == "/":
                continue
            path = merged_usr(orig)
            if _through_link(path, links):
                raise ValueError(f"{deb.name}: {orig} lies below a symlink of the same package")
            dest = tree / path[1:]
            if tree not in dest.parents:
                raise ValueError(f"{deb.name}: {orig} escapes the build root")
            kind = ("dir" if m.isdir() else "link" if m.issym()
                    else "file" if m.isreg() or m.islnk() else None)
            if kind is None:
                result.notes.append(f"skipped special file {orig}")
                continue
            entry = Entry(path, kind, m.mode & 0o7777, m.uname or "root", m.gname or "root", orig)
            old = entries.get(path)
            if old is not None:
                if kind == "dir" and old.kind == "dir":
                    continue                      # /lib/x/ and /usr/lib/x/ both: one directory
                # Two paths of one package meet after merging: keep the one that was already
                # under /usr (where a merged-/usr Debian system keeps it too).
                if old.orig == path or orig != path or old.kind == "dir" or kind == "dir":
                    result.notes.append(f"{orig} collides with {old.orig} after merging /usr: "
                                        f"kept {old.orig}")
                    continue
                result.notes.append(f"{old.orig} collides with {orig} after merging /usr: kept {orig}")
                dest.unlink()
                links.discard(path)
            if kind == "dir":
                dest.mkdir(parents=True, exist_ok=True)
                os.chmod(dest, entry.mode | 0o700)
                dir_times.append((dest, int(m.mtime)))
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                if m.issym():
                    os.symlink(merged_link_target(orig, m.linkname, path), dest)
                elif m.islnk():
                    target = merged_usr(_clean(m.linkname))
                    if target in entries and entries[target].kind == "file":
                        os.link(tree / target[1:], dest)
                    else:                         # its first name was dropped as a collision
                        raise ValueError(f"{deb.name}: hard link {orig} to a missing {m.linkname}")
                else:
                    src = tar.extractfile(m)
                    head = src.read(256)
                    if entry.mode & 0o111 and head.startswith(b"#!"):
                        interpreter = head[2:].split(b"\n", 1)[0].split()
                        if interpreter:
                            result.interpreters.add(interpreter[0].decode(errors="replace"))
                    with open(dest, "wb") as out:
                        out.write(head)
                        shutil.copyfileobj(src, out, 1 << 20)
                    os.chmod(dest, entry.mode | 0o400)
                os.utime(dest, (m.mtime, m.mtime), follow_symlinks=False)
            entries[path] = entry
            if kind == "link":
                links.add(path)
    _place_kernel(result)
    for dest, mtime in reversed(dir_times):
        if dest.is_dir():
            os.utime(dest, (mtime, mtime))
    return result


_BOOT_FILE = re.compile(r"/boot/(vmlinuz|config|System\.map)-(.+)")


def _place_kernel(u: Unpacked) -> None:
    """Debian keeps /boot/vmlinuz-KVER; Rocky ships it as /usr/lib/modules/KVER/vmlinuz (and
    config, System.map beside it) and lets kernel-install copy it to /boot. Move, don't copy."""
    for path in list(u.entries):
        m = _BOOT_FILE.fullmatch(path)
        if not m or f"/usr/lib/modules/{m[2]}" not in u.entries:
            continue
        kver = m[2]
        new = f"/usr/lib/modules/{kver}/{m[1]}"
        os.rename(u.tree / path[1:], u.tree / new[1:])
        entry = u.entries.pop(path)
        entry.path = new
        u.entries[new] = entry
        u.kernel_version = kver
    if u.kernel_version and "/boot" in u.entries and not any(p.startswith("/boot/") for p in u.entries):
        del u.entries["/boot"]        # the `filesystem` package owns /boot, as on Rocky
        (u.tree / "boot").rmdir()
