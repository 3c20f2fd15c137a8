"""Writing a spec for a prebuilt build root and running `rpmbuild -bb` on it.

The tree is used in place (`--buildroot TREE --noclean`, no %install), and every %files line
carries its own %attr, so modes and owners come from the Debian metadata, not from the disk.
Payload: zstd level 3 (the kernel's modules are ~400 MB unpacked; higher levels cost minutes).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from levitate.util.run import run

from .mapping import RpmEVR
from .repack import Entry

# Everything rpmbuild would do beyond packing the tree is switched off: no debuginfo, no
# stripping or brp scripts, no build-id links, no dependency generators, no clean-up of the
# tree before %install (there is none) or after the build (we remove it ourselves).
_PREAMBLE = """\
%define _binary_payload w3.zstdio
%define _build_id_links none
%define debug_package %{nil}
%define __os_install_post %{nil}
%define __spec_install_pre %{___build_pre}
%define _unpackaged_files_terminate_build 0
%define _missing_doc_files_terminate_build 0
%define __check_files %{nil}
%define _buildhost sample.levitateos.invalid
%define _build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm
"""


@dataclass
class RpmPackage:
    """Everything a binary RPM of the sample set is made from."""

    name: str
    evr: RpmEVR
    arch: str                      # "x86_64" or "noarch"
    summary: str
    description: str
    tree: Path
    entries: list[Entry]
    config: set[str] = field(default_factory=set)   # paths marked %config(noreplace)
    url: str = ""
    license: str = ""
    requires: list[str] = field(default_factory=list)
    requires_pre: list[str] = field(default_factory=list)     # Requires(pre): install order
    provides: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    recommends: list[str] = field(default_factory=list)
    supplements: list[str] = field(default_factory=list)
    ghost: dict[str, str] = field(default_factory=dict)  # %ghost path -> its other directives (%config...)
    scripts: dict[str, str] = field(default_factory=dict)  # "post -p <lua>" -> body, as the spec has it
    repo: str = "BaseOS"

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.evr.version}-{self.evr.release}.{self.arch}.rpm"


def _text(s: str) -> str:
    """Free text in a spec: '%' would start a macro."""
    return s.replace("%", "%%")


_GLOB = re.compile(r"([*?\[{])")


def files_path(path: str) -> str:
    """A path as a %files line needs it: quoted (spaces), '%' doubled, glob characters as
    one-character classes (rpm globs a %files path that has any; `/usr/bin/[` exists). A
    backslash is literal only in a path rpm does not glob (systemd's `\x2d` unit names)."""
    if '"' in path or "\n" in path or ("\\" in path and _GLOB.search(path)):
        raise ValueError(f"cannot list {path!r} in %files")
    return '"' + _GLOB.sub(r"[\1]", path.replace("%", "%%")) + '"'


def files_line(entry: Entry, config: bool, users: set[str], groups: set[str], ghost: str | None = None) -> str:
    """`ghost`: None, or the directives a %ghost line carries besides %ghost ("" for none)."""
    user = entry.user if entry.user in users else "root"
    group = entry.group if entry.group in groups else "root"
    prefix = "" if ghost is None else " ".join(["%ghost", *ghost.split()]) + " "
    if entry.kind == "link":
        return f"{prefix}%attr(-,{user},{group}) {files_path(entry.path)}"
    attr = f"%attr({entry.mode:04o},{user},{group})"
    if entry.kind == "dir":
        return f"%dir {attr} {files_path(entry.path)}"
    if ghost is not None:
        return f"{prefix}{attr} {files_path(entry.path)}"
    return f"{'%config(noreplace) ' if config else ''}{attr} {files_path(entry.path)}"


def spec_text(pkg: RpmPackage, users: set[str], groups: set[str]) -> str:
    lines = [_PREAMBLE, f"Name: {pkg.name}"]
    if pkg.evr.epoch is not None:
        lines.append(f"Epoch: {pkg.evr.epoch}")
    lines += [f"Version: {pkg.evr.version}", f"Release: {pkg.evr.release}",
              f"Summary: {_text(pkg.summary) or pkg.name}",
              f"License: {_text(pkg.license) or 'see /usr/share/doc/' + pkg.name + '/copyright'}"]
    if pkg.url:
        lines.append(f"URL: {_text(pkg.url)}")
    if pkg.arch == "noarch":
        lines.append("BuildArch: noarch")
    lines.append("AutoReqProv: no")
    for tag, values in (("Requires(pre)", pkg.requires_pre), ("Requires", pkg.requires),
                        ("Provides", pkg.provides), ("Conflicts", pkg.conflicts),
                        ("Recommends", pkg.recommends), ("Supplements", pkg.supplements)):
        lines += [f"{tag}: {v}" for v in values]
    lines += ["", "%description", _text(pkg.description) or pkg.name, "", "%files"]
    lines += [files_line(e, e.path in pkg.config, users, groups, pkg.ghost.get(e.path)) for e in pkg.entries]
    for head, body in pkg.scripts.items():
        lines += ["", f"%{head}", body.replace("%", "%%").rstrip("\n")]
    return "\n".join(lines) + "\n"


# rpmbuild classifies every file with libmagic (for FILECLASS/FILECOLORS), which costs more
# than packing: ~3 ms a file, a third of the whole build. With AutoReqProv off only ELF colors
# matter, so a two-rule magic database (libmagic reads $MAGIC) keeps those and skips the rest.
_MAGIC = """\
0\tstring\t\\x7fELF
>4\tbyte\t1\tELF 32-bit LSB
>4\tbyte\t2\tELF 64-bit LSB
"""


def rpmbuild(pkg: RpmPackage, workdir: Path, outdir: Path, users: set[str], groups: set[str]) -> Path:
    """Build `pkg` from its tree; returns the .rpm written into `outdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    magic = workdir / "elf.magic"
    magic.write_text(_MAGIC)
    spec = workdir / f"{pkg.name}.spec"
    spec.write_text(spec_text(pkg, users, groups))
    outdir.mkdir(parents=True, exist_ok=True)
    run(["rpmbuild", "-bb", "--quiet", "--noclean", "--buildroot", pkg.tree,
         "--target", pkg.arch if pkg.arch != "noarch" else "x86_64",
         "--define", f"_topdir {workdir / 'top'}", "--define", f"_rpmdir {outdir}", spec],
        env={**os.environ, "MAGIC": str(magic)}, what=f"rpmbuild {pkg.name}")
    rpm = outdir / pkg.filename
    if not rpm.is_file():
        raise RuntimeError(f"rpmbuild {pkg.name}: expected {rpm}, not found")
    return rpm
