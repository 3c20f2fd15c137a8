"""Set-wide decisions: turning the unpacked Debian packages into RPM package descriptions.

What needs the whole set rather than one package: paths two packages ship after merging /usr,
Conflicts that members of the set would violate, the dependency sanity check, and the split
into BaseOS and AppStream.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from .mapping import Member, Rel, deb_to_evr, group_to_rpm, merged_usr, parse_relations, satisfies
from .repack import Unpacked
from .rpmspec import RpmPackage

# AppStream holds what only these need (python3 and its libraries, less, sudo); BaseOS the
# rest, so resolving the sample profile crosses repositories (python3 -> libc6).
APPSTREAM_ROOTS = ("python3", "less", "sudo")

# Script interpreters turned into requirements (rpm's script dependency generator does this).
# Only the shells: python3 or perl script dependencies would drag AppStream into BaseOS.
SHEBANG_REQUIRES = {"/bin/sh": "/bin/sh", "/usr/bin/sh": "/bin/sh",
                    "/bin/bash": "/usr/bin/bash", "/usr/bin/bash": "/usr/bin/bash"}


@dataclass
class Issues:
    """Oddities found while mapping, logged as one summary line each."""

    collisions: list[str]
    dropped_conflicts: list[str]
    unsatisfied: list[str]


def _members(unpacked: list[Unpacked]) -> dict[str, Member]:
    members = {}
    for u in unpacked:
        provides = tuple(r for g in parse_relations(u.control.fields.get("Provides")) for r in g)
        members[u.control.name] = Member(u.control.name, u.control.version, provides)
    return members


class _Index:
    """Which members a relation's name can refer to (own name or Provides)."""

    def __init__(self, members: dict[str, Member]):
        self.by_name: dict[str, list[Member]] = defaultdict(list)
        for m in members.values():
            self.by_name[m.name].append(m)
            for p in m.provides:
                self.by_name[p.name].append(m)

    def matching(self, rel: Rel) -> list[Member]:
        return [m for m in self.by_name.get(rel.name, ()) if satisfies(rel, m)]


def resolve_collisions(unpacked: list[Unpacked]) -> list[str]:
    """A path shipped by two packages (after merging /usr) stays in one of them: the one that
    had it at that very path, else the first by name. The other loses the entry and the file."""
    owners: dict[str, list[Unpacked]] = defaultdict(list)
    for u in sorted(unpacked, key=lambda u: u.control.name):
        for path, e in u.entries.items():
            if e.kind != "dir":
                owners[path].append(u)
    notes = []
    for path, us in owners.items():
        if len(us) < 2:
            continue
        keep = next((u for u in us if u.entries[path].orig == path), us[0])
        for u in us:
            if u is not keep:
                del u.entries[path]
                (u.tree / path[1:]).unlink()
                notes.append(f"{path}: shipped by {keep.control.name} and {u.control.name}, "
                             f"kept in {keep.control.name}")
    # A directory in one package must not be a file or link in another (rpm calls that a file
    # conflict): keep the non-directory, drop the directory entry. (Bookworm's set has no such
    # case; should one appear, the files below it would land through the other's link.)
    dirs = {p for u in unpacked for p, e in u.entries.items() if e.kind == "dir"}
    for path in dirs & owners.keys():
        for u in unpacked:
            e = u.entries.get(path)
            if e is not None and e.kind == "dir":
                del u.entries[path]
                other = owners[path][0].control.name
                notes.append(f"{path}: a directory in {u.control.name} but not in {other}")
    return notes


def _description(fields: dict[str, str]) -> tuple[str, str]:
    summary, _, body = fields.get("Description", "").partition("\n")
    lines = []
    for line in body.splitlines():
        line = line[1:] if line.startswith(" ") else line
        lines.append("" if line.strip() == "." else line)
    return summary.strip(), "\n".join(lines).strip()


def make_packages(unpacked: list[Unpacked], requested: list[str]) -> tuple[list[RpmPackage], Issues]:
    """RPM descriptions of the repacked Debian packages (without `setup` and `filesystem`)."""
    issues = Issues(resolve_collisions(unpacked), [], [])
    members = _members(unpacked)
    index = _Index(members)
    packages = []
    for u in sorted(unpacked, key=lambda u: u.control.name):
        f = u.control.fields
        depends = parse_relations(f.get("Pre-Depends")) + parse_relations(f.get("Depends"))
        for group in depends:
            if not any(index.matching(r) for r in group):
                issues.unsatisfied.append(f"{u.control.name}: {' | '.join(map(str, group))}")
        requires = []
        # Every package sits on the merged-/usr skeleton. Shell dependencies as rpmbuild makes
        # them: scriptlets (here: Debian maintainer scripts) Require /bin/sh, and scripts shipped
        # Require their #! interpreter (for bash: /usr/bin/bash, a file dependency that
        # primary.xml's file list resolves; /bin/sh is a Provides of `setup`).
        shells = sorted({SHEBANG_REQUIRES[i] for i in u.interpreters if i in SHEBANG_REQUIRES})
        if u.control.scripts and "/bin/sh" not in shells:
            shells.insert(0, "/bin/sh")
        for req in ["filesystem", *shells, *map(group_to_rpm, depends)]:
            if req not in requires:
                requires.append(req)
        provides = [r.to_rpm() for g in parse_relations(f.get("Provides")) for r in g]
        conflicts = []
        for group in parse_relations(f.get("Conflicts")):
            for rel in group:
                inside = index.matching(rel)
                if inside:
                    # apt accepted this set, so such a Conflicts names the package itself (the
                    # Debian idiom "Provides: x, Conflicts: x" for one-provider-only virtuals,
                    # which dpkg ignores for the package itself). RPM resolvers need not know
                    # that idiom: carrying it would make the set conflict with itself.
                    issues.dropped_conflicts.append(
                        f"{u.control.name}: Conflicts {rel} (matches {', '.join(m.name for m in inside)})")
                else:
                    conflicts.append(rel.to_rpm())
        # Breaks are dropped on purpose: they are upgrade-ordering hints, too noisy as Conflicts.
        summary, description = _description(f)
        packages.append(RpmPackage(
            name=u.control.name, evr=deb_to_evr(u.control.version),
            arch="noarch" if u.control.arch == "all" else "x86_64",
            summary=summary, description=description, tree=u.tree,
            entries=sorted(u.entries.values(), key=lambda e: e.path),
            config={merged_usr(c) for c in u.control.conffiles} & u.entries.keys(),
            url=f.get("Homepage", ""), license=f"see /usr/share/doc/{u.control.name}/copyright",
            requires=requires, provides=provides, conflicts=conflicts,
            recommends=[group_to_rpm(g) for g in parse_relations(f.get("Recommends"))],
        ))
    relations = {u.control.name: parse_relations(u.control.fields.get("Pre-Depends")) +
                 parse_relations(u.control.fields.get("Depends")) for u in unpacked}
    _split_repos(packages, relations, index, requested)
    return packages, issues


def _split_repos(packages: list[RpmPackage], relations: dict[str, list[list[Rel]]], index: _Index,
                 requested: list[str]) -> None:
    """AppStream: what only APPSTREAM_ROOTS reach; BaseOS: everything else."""
    deps = {name: {m.name for group in groups for rel in group for m in index.by_name.get(rel.name, ())}
            for name, groups in relations.items()}

    def closure(roots):
        seen, todo = set(), [r for r in roots if r in deps]
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo.extend(deps[n] - seen)
        return seen

    base = closure([r for r in requested if r not in APPSTREAM_ROOTS])
    app = closure(APPSTREAM_ROOTS) - base
    for p in packages:
        p.repo = "AppStream" if p.name in app else "BaseOS"
