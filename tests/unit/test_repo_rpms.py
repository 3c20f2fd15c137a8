"""Repodata from REAL RPMs (rpmbuild) and REAL createrepo_c output: repomd.xml, primary and
filelists in every compression, checksums, and corrupt or truncated files.

The session fixture `real_repos` (also used by test_resolve.py) builds a small two-repository
world with Provides/Requires incl. rich, versioned and file deps, Conflicts and Obsoletes.
createrepo_c 0.17 on Debian 12 cannot write zstd (`--general-compress-type` picks the XML
compression; `--compress-type` only the sqlite files), so the zstd variant is createrepo_c's output
recompressed with zstandard, with repomd.xml rewritten to match (what Fedora-style repos hold).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from levitate.repo.deps import Dep
from levitate.repo.repodata import (Package, compression_of, iter_filelists, iter_primary, lookup_files,
                                    parse_repomd, read_local_repository, read_primary, verify_file)
from levitate.rpm.vercmp import EQ, EVR, GT, LT
from levitate.util.errors import LevitateError, VerificationError
from tests.cheat_aware import cheat_aware

TOOLS = ("rpmbuild", "createrepo_c")
needs_tools = pytest.mark.skipif(not all(shutil.which(t) for t in TOOLS),
                                 reason="needs rpmbuild and createrepo_c (apt install rpm createrepo-c)")


@dataclass
class Spec:
    name: str
    version: str = "1.0"
    release: str = "1.el10"
    arch: str = "x86_64"
    repo: str = "AppStream"
    epoch: int = 0
    provides: list[str] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)
    requires_pre: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    obsoletes: list[str] = field(default_factory=list)
    recommends: list[str] = field(default_factory=list)
    supplements: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def text(self) -> str:
        tags = [f"Name: {self.name}", f"Version: {self.version}", f"Release: {self.release}",
                f"Summary: The {self.name} test package", "License: MIT", f"BuildArch: {self.arch}",
                "AutoReqProv: no"]
        if self.epoch:
            tags.append(f"Epoch: {self.epoch}")
        for tag, values in (("Provides", self.provides), ("Requires", self.requires),
                            ("Requires(pre)", self.requires_pre), ("Conflicts", self.conflicts),
                            ("Obsoletes", self.obsoletes), ("Recommends", self.recommends),
                            ("Supplements", self.supplements)):
            tags += [f"{tag}: {v}" for v in values]
        install = "\n".join(f'mkdir -p "%{{buildroot}}{os.path.dirname(f)}" && echo {self.name} > "%{{buildroot}}{f}"'
                            for f in self.files)
        files = "\n".join(f'"{f}"' for f in self.files)
        body = ["", "%description", f"{self.name}: a package built for the repodata tests & <checks>.", "",
                "%install", install, "", "%files", files, ""]
        return "\n".join(tags + body)


# The world. BaseOS: the base layer; AppStream: the rest. Names tell what each one is for.
SPECS = [
    Spec("corelib", "2.1", repo="BaseOS", provides=["libcore.so.1()(64bit)"], files=["/usr/lib64/libcore.so.1"]),
    Spec("bash", "5.2.26", repo="BaseOS", provides=["/bin/sh"], requires=["libcore.so.1()(64bit)"],
         files=["/usr/bin/bash", "/usr/bin/sh"]),
    Spec("coreutils", "9.5", "3.el10", repo="BaseOS", requires=["libcore.so.1()(64bit)", "/usr/bin/sh"],
         requires_pre=["bash"], conflicts=["coreutils-single"], files=["/usr/bin/ls", "/etc/coreutils.conf"]),
    Spec("coreutils-single", "9.5", "3.el10", repo="BaseOS", provides=["coreutils = 9.5-3.el10"],
         conflicts=["coreutils"], files=["/usr/bin/coreutils"]),
    Spec("datapkg", "1.0", arch="noarch", repo="BaseOS",
         files=["/usr/share/data/shared.dat", "/usr/share/data/R&D <ü>.txt"]),
    Spec("tool", "2.0", requires=["(helper >= 2.0 or althelper)", "(extra if bash)",
                                  "/usr/share/data/shared.dat"],
         recommends=["docs"], obsoletes=["oldtool < 2.0"], files=["/usr/bin/tool"]),
    Spec("tool", "1.0", requires=["helper"], files=["/usr/bin/tool"]),
    Spec("helper", "2.1", files=["/usr/libexec/helper"]),
    Spec("althelper", "1.0", files=["/usr/libexec/althelper"]),
    Spec("extra", "1.0", arch="noarch", files=["/usr/share/extra/readme"]),
    Spec("docs", "1.0", arch="noarch", files=["/usr/share/doc/tool/README"]),
    Spec("oldtool", "1.5", files=["/usr/bin/oldtool"]),
    Spec("app", "3.0", epoch=1, requires=["tool >= 2.0", "libcore.so.1()(64bit)"], files=["/usr/bin/app"]),
    Spec("legacy", "0.9", requires=["tool < 2"], files=["/usr/bin/legacy"]),
    Spec("broken", "1.0", requires=["libmissing.so.1()(64bit)"], files=["/usr/bin/broken"]),
    Spec("brokenparent", "1.0", requires=["broken"], files=["/usr/bin/brokenparent"]),
    Spec("withpkg", "1.0", requires=["(capa with capb)"], files=["/usr/bin/withpkg"]),
    Spec("multi", "1.0", provides=["capa", "capb"], files=["/usr/share/multi/x"]),
    Spec("onlya", "1.0", provides=["capa"], files=["/usr/share/onlya/x"]),
    Spec("onlyb", "1.0", provides=["capb"], files=["/usr/share/onlyb/x"]),
    Spec("langpack", "1.0", arch="noarch", supplements=["(tool and extra)"], files=["/usr/share/langpack/x"]),
]


@dataclass
class RealRepos:
    root: Path
    rpms: dict[str, Path]                     # nvra -> built rpm
    by_compression: dict[str, Path]           # "gz" | "xz" | "bz2" | "zst" -> dir with BaseOS/, AppStream/

    def repo_dir(self, compression: str, name: str) -> Path:
        return self.by_compression[compression] / name

    def load(self, compression: str = "gz"):
        return [read_local_repository(name, self.repo_dir(compression, name)) for name in ("BaseOS", "AppStream")]

    def primary(self, compression: str, name: str) -> Path:
        repomd = parse_repomd(self.repo_dir(compression, name) / "repodata" / "repomd.xml")
        return self.repo_dir(compression, name) / repomd.records["primary"].location


def _rpmbuild(topdir: Path, spec: Spec, outdir: Path) -> None:
    specfile = topdir / f"{spec.name}-{spec.version}.spec"
    specfile.write_text(spec.text())
    subprocess.run(
        ["rpmbuild", "-bb", "--nodeps", "--quiet", "--define", f"_topdir {topdir / (spec.name + spec.version)}",
         "--define", f"_rpmdir {outdir}", "--define", "_build_id_links none",
         "--define", "__os_install_post %{nil}", "--define", "_source_payload w9.gzdio",
         "--define", "_binary_payload w9.gzdio", str(specfile)],
        check=True, capture_output=True)


def _to_zstd(repo: Path) -> None:
    """Recompress primary/filelists/other to zstd and rewrite repomd.xml to match."""
    import zstandard

    repomd_path = repo / "repodata" / "repomd.xml"
    text = repomd_path.read_text()
    for old in sorted((repo / "repodata").glob("*.xml.gz")):
        data = gzip.decompress(old.read_bytes())
        packed = zstandard.ZstdCompressor(level=3).compress(data)
        digest = hashlib.sha256(packed).hexdigest()
        kind = old.name.split("-", 1)[1].replace(".xml.gz", "")
        new = repo / "repodata" / f"{digest}-{kind}.xml.zst"
        new.write_bytes(packed)
        old_digest = old.name.split("-", 1)[0]
        text = text.replace(f"repodata/{old.name}", f"repodata/{new.name}")
        text = text.replace(f">{old_digest}<", f">{digest}<")
        text = re.sub(rf'(<location href="repodata/{new.name}"/>\s*<timestamp>\d+</timestamp>\s*<size>)\d+',
                      rf"\g<1>{len(packed)}", text)
        old.unlink()
    repomd_path.write_text(text)


_BUILT: dict[str, RealRepos] = {}


def build_real_repos(base: Path) -> RealRepos:
    if "repos" in _BUILT:
        return _BUILT["repos"]
    rpmroot = base / "rpms"
    top = base / "top"
    top.mkdir(parents=True)
    for repo in ("BaseOS", "AppStream"):
        (rpmroot / repo).mkdir(parents=True)
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda s: _rpmbuild(top, s, rpmroot / s.repo), SPECS))
    rpms = {p.name[:-len(".rpm")]: p for p in rpmroot.rglob("*.rpm")}
    assert len(rpms) == len(SPECS), sorted(rpms)
    by_compression: dict[str, Path] = {}
    jobs = []
    for kind in ("gz", "xz", "bz2", "zst"):
        dest = base / "repos" / kind
        for repo in ("BaseOS", "AppStream"):
            shutil.copytree(rpmroot / repo, dest / repo, copy_function=os.link)
            ctype = "gz" if kind == "zst" else kind
            jobs.append((kind, dest / repo, ["createrepo_c", "--quiet", "--no-database", "--general-compress-type", ctype,
                                             "--revision", "42", str(dest / repo)]))
        by_compression[kind] = dest
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda job: subprocess.run(job[2], check=True, capture_output=True), jobs))
    for kind, path, _ in jobs:
        if kind == "zst":
            _to_zstd(path)
    _BUILT["repos"] = RealRepos(base, rpms, by_compression)
    return _BUILT["repos"]


@pytest.fixture(scope="session")
def real_repos(tmp_path_factory) -> RealRepos:
    if not all(shutil.which(t) for t in TOOLS):
        pytest.skip("needs rpmbuild and createrepo_c (apt install rpm createrepo-c)")
    return build_real_repos(tmp_path_factory.mktemp("real-repos"))


# --------------------------------------------------------------------------------------------


@needs_tools
def test_repomd_from_createrepo_c(real_repos):
    repomd = parse_repomd(real_repos.repo_dir("gz", "BaseOS") / "repodata" / "repomd.xml")
    assert repomd.revision == "42"
    assert {"primary", "filelists", "other"} <= set(repomd.records)
    rec = repomd.records["primary"]
    path = real_repos.repo_dir("gz", "BaseOS") / rec.location
    assert rec.location.startswith("repodata/") and rec.location.endswith("-primary.xml.gz")
    assert rec.checksum == ("sha256", hashlib.sha256(path.read_bytes()).hexdigest())
    assert rec.open_checksum == ("sha256", hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest())
    assert rec.size == path.stat().st_size and rec.timestamp and rec.open_size
    # Bytes work as well as a path.
    assert parse_repomd((real_repos.repo_dir("gz", "BaseOS") / "repodata" / "repomd.xml").read_bytes()) == repomd


@needs_tools
@pytest.mark.parametrize("compression,magic", [("gz", "gzip"), ("xz", "xz"), ("bz2", "bzip2"), ("zst", "zstd")])
@cheat_aware(protects="primary.xml is read the same whatever its compression (Rocky ships gz, xz or zst)",
             cheats=["trusting the file extension", "supporting only gzip"],
             consequence="a mirror switching compression breaks every build")
def test_primary_in_every_compression(real_repos, compression, magic):
    path = real_repos.primary(compression, "AppStream")
    with open(path, "rb") as f:
        assert compression_of(f.read(6)) == magic
    # Rename away the extension: detection is by magic bytes only.
    renamed = path.with_name("primary-without-extension")
    shutil.copyfile(path, renamed)
    names = sorted(p.nevra for p in iter_primary(renamed, repo="AppStream"))
    reference = sorted(p.nevra for p in iter_primary(real_repos.primary("gz", "AppStream"), repo="AppStream"))
    assert names == reference and "tool-2.0-1.el10.x86_64" in names
    renamed.unlink()


@needs_tools
@cheat_aware(protects="every field the resolver, downloader and lock need is read from real createrepo_c output",
             cheats=["parsing only names and versions", "keeping pre='1' as a separate dependency kind",
                     "dropping versions from dependency entries"],
             consequence="wrong dependency closure, unverifiable downloads or a lock that pins nothing")
def test_primary_fields_from_real_rpms(real_repos):
    repos = real_repos.load("zst")
    pkgs = {p.nevra: p for r in repos for p in r.packages}
    tool = pkgs["tool-2.0-1.el10.x86_64"]
    assert (tool.name, tool.epoch, tool.version, tool.release, tool.arch) == ("tool", 0, "2.0", "1.el10", "x86_64")
    assert tool.evr == EVR(0, "2.0", "1.el10") and tool.repo == "AppStream"
    assert tool.summary == "The tool test package" and "& <checks>" in tool.description
    rpm = real_repos.rpms["tool-2.0-1.el10.x86_64"]
    assert tool.checksum == ("sha256", hashlib.sha256(rpm.read_bytes()).hexdigest())
    assert tool.size_package == rpm.stat().st_size and tool.size_installed > 0
    assert (real_repos.repo_dir("zst", "AppStream") / tool.location).resolve() == \
        (real_repos.repo_dir("zst", "AppStream") / "x86_64" / rpm.name).resolve()
    assert Dep("tool", EQ, EVR(0, "2.0", "1.el10")) in tool.provides
    assert Dep("tool(x86-64)", EQ, EVR(0, "2.0", "1.el10")) in tool.provides
    assert Dep("(helper >= 2.0 or althelper)") in tool.requires
    assert Dep("(extra if bash)") in tool.requires
    assert Dep("/usr/share/data/shared.dat") in tool.requires
    assert tool.recommends == (Dep("docs"),)
    assert tool.obsoletes == (Dep("oldtool", LT, EVR(0, "2.0", None)),)
    assert tool.files == ("/usr/bin/tool",)
    assert tool.nevra == "tool-2.0-1.el10.x86_64"
    app = pkgs["app-1:3.0-1.el10.x86_64"]
    assert app.epoch == 1 and Dep("tool", GT | EQ, EVR(0, "2.0", None)) in app.requires
    coreutils = pkgs["coreutils-9.5-3.el10.x86_64"]
    assert Dep("bash") in coreutils.requires                         # Requires(pre): pre="1" ignored
    assert coreutils.conflicts == (Dep("coreutils-single"),)
    # primary lists only bin/ and /etc files; filelists has everything.
    assert set(coreutils.files) == {"/usr/bin/ls", "/etc/coreutils.conf"}
    datapkg = pkgs["datapkg-1.0-1.el10.noarch"]
    assert datapkg.files == () and datapkg.arch == "noarch"
    assert pkgs["langpack-1.0-1.el10.noarch"].supplements == (Dep("(tool and extra)"),)
    # Dependency objects repeat across packages: they are shared, not copied.
    bash = pkgs["bash-5.2.26-1.el10.x86_64"]
    assert [d for d in bash.requires if d.name == "libcore.so.1()(64bit)"][0] is \
        [d for d in coreutils.requires if d.name == "libcore.so.1()(64bit)"][0]


@needs_tools
@cheat_aware(protects="filelists lookups find the owner of any path, whether the fast byte scan or the full "
                      "parse answers",
             cheats=["matching path prefixes", "skipping paths that need XML escaping"],
             consequence="a file requirement outside primary is reported unresolvable, or satisfied by the "
                         "wrong package")
@pytest.mark.parametrize("compression", ["xz", "zst"])
def test_filelists_lists_every_file(real_repos, compression):
    repomd = parse_repomd(real_repos.repo_dir(compression, "BaseOS") / "repodata" / "repomd.xml")
    path = real_repos.repo_dir(compression, "BaseOS") / repomd.records["filelists"].location
    entries = {e.name: e for e in iter_filelists(path, repo="BaseOS")}
    assert "/usr/share/data/shared.dat" in entries["datapkg"].files
    assert "/usr/share/data/R&D <ü>.txt" in entries["datapkg"].files
    repo = read_local_repository("BaseOS", real_repos.repo_dir(compression, "BaseOS"))
    datapkg = next(p for p in repo.packages if p.name == "datapkg")
    bash = next(p for p in repo.packages if p.name == "bash")
    plain = lookup_files(repo, path, {"/usr/share/data/shared.dat", "/usr/bin/sh", "/usr/bin/s", "/usr/share/data"})
    assert plain == {"/usr/share/data/shared.dat": [datapkg], "/usr/bin/sh": [bash]}
    odd = lookup_files(repo, path, {"/usr/share/data/R&D <ü>.txt", "/usr/share/data/shared.dat"})
    assert odd == {"/usr/share/data/R&D <ü>.txt": [datapkg], "/usr/share/data/shared.dat": [datapkg]}
    assert entries["datapkg"].evr == EVR(0, "1.0", "1.el10") and entries["datapkg"].arch == "noarch"
    primary = {p.name: p for p in read_primary(real_repos.primary("xz", "BaseOS"))}
    assert entries["datapkg"].pkgid == primary["datapkg"].checksum[1]


# -- bad input ------------------------------------------------------------------------------------


def _corrupt_variants(good: Path, tmp: Path) -> dict[str, Path]:
    data = good.read_bytes()
    out = {}
    for label, content in (("truncated", data[: len(data) // 2]), ("garbage-tail", data[:-40] + b"\0" * 40),
                           ("empty", b"")):
        p = tmp / f"{'0' * 64}-primary.xml{good.suffix}.{label}"
        p.write_bytes(content)
        out[label] = p
    return out


@needs_tools
@pytest.mark.parametrize("compression", ["gz", "xz", "zst", "bz2"])
@cheat_aware(protects="corrupt or truncated repodata stops with one line naming the file and repository",
             cheats=["catching everything and returning no packages", "letting a zlib/lzma/zstd traceback through"],
             consequence="a half-downloaded primary silently yields a partial package set, or a traceback "
                         "the user cannot act on")
def test_corrupt_or_truncated_primary(real_repos, tmp_path, compression):
    good = real_repos.primary(compression, "BaseOS")
    for label, path in _corrupt_variants(good, tmp_path).items():
        with pytest.raises(LevitateError) as err:
            list(iter_primary(path, repo="BaseOS"))
        message = str(err.value)
        assert message.startswith(f"repodata primary.xml{good.suffix}.{label} of BaseOS is corrupt: "), message
        assert "\n" not in message and err.value.hint
        assert err.value.__cause__ is None and err.value.__suppress_context__


def test_broken_xml_and_wrong_file(tmp_path):
    plain = tmp_path / "primary.xml"
    plain.write_text('<?xml version="1.0"?><metadata xmlns="http://linux.duke.edu/metadata/common" '
                     'packages="1"><package type="rpm"><name>x</name>')
    with pytest.raises(LevitateError, match=r"^repodata primary.xml of AppStream is corrupt: no element found"):
        list(iter_primary(plain, repo="AppStream"))
    plain.write_text('<filelists xmlns="http://linux.duke.edu/metadata/filelists" packages="0"></filelists>')
    with pytest.raises(LevitateError, match="not a primary.xml"):
        list(iter_primary(plain, repo="AppStream"))
    plain.write_text('<metadata xmlns="http://linux.duke.edu/metadata/common" packages="2">'
                     '<package type="rpm"><name>x</name><arch>noarch</arch><version epoch="0" ver="1" rel="1"/>'
                     '</package></metadata>')
    with pytest.raises(LevitateError, match="announces 2 packages but holds 1"):
        list(iter_primary(plain, repo="AppStream"))
    plain.write_text('<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm">'
                     '<package type="rpm"><name>x</name><arch>noarch</arch><version epoch="0" ver="1" rel="1"/>'
                     '<format><rpm:requires><rpm:entry name="y" flags="XX" ver="1"/></rpm:requires></format>'
                     '</package></metadata>')
    with pytest.raises(LevitateError, match="unknown dependency flags 'XX'"):
        list(iter_primary(plain, repo="AppStream"))
    with pytest.raises(LevitateError, match="is missing"):
        list(iter_primary(tmp_path / "nope.xml.gz", repo="AppStream"))
    with pytest.raises(LevitateError, match="repomd.xml of BaseOS is corrupt"):
        parse_repomd(b"<repomd", repo="BaseOS")
    with pytest.raises(LevitateError, match="repomd.xml of BaseOS is missing"):
        parse_repomd(tmp_path / "repomd.xml", repo="BaseOS")


@needs_tools
@cheat_aware(protects="a repodata file whose checksum differs from repomd.xml is refused, with both digests shown",
             cheats=["skipping verification", "comparing only the size"],
             consequence="a tampered or mid-sync primary is trusted and the wrong packages get installed")
def test_checksum_mismatch(real_repos, tmp_path):
    repo = tmp_path / "BaseOS"
    shutil.copytree(real_repos.repo_dir("gz", "BaseOS"), repo)
    repomd = parse_repomd(repo / "repodata" / "repomd.xml")
    primary = repo / repomd.records["primary"].location
    verify_file(primary, *repomd.records["primary"].checksum)       # the real one passes
    data = bytearray(primary.read_bytes())
    data[len(data) // 2] ^= 0xFF
    primary.write_bytes(bytes(data))
    got = hashlib.sha256(bytes(data)).hexdigest()
    with pytest.raises(VerificationError) as err:
        read_local_repository("BaseOS", repo)
    message = str(err.value)
    assert "primary.xml.gz of BaseOS" in message
    assert repomd.records["primary"].checksum[1] in message and got in message
    assert "mid-sync" in err.value.hint
    assert err.value.exit_code == 3


@needs_tools
def test_local_repository_reads_filelists_lazily_and_verifies_them(real_repos, tmp_path):
    repo_dir = tmp_path / "AppStream"
    shutil.copytree(real_repos.repo_dir("gz", "AppStream"), repo_dir)
    repo = read_local_repository("AppStream", repo_dir, base="https://mirror.example/AppStream/")
    assert repo.base == "https://mirror.example/AppStream/" and repo.revision == "42"
    assert all(isinstance(p, Package) and p.repo == "AppStream" for p in repo.packages)
    assert repo.filelists is not None
    filelists = Path(repo.filelists())
    filelists.write_bytes(filelists.read_bytes()[:-10])
    with pytest.raises(VerificationError, match="filelists.xml.gz of AppStream"):
        read_local_repository("AppStream", repo_dir).filelists()


@needs_tools
def test_corrupt_filelists_fast_path_and_full_parse(real_repos, tmp_path):
    repo = read_local_repository("BaseOS", real_repos.repo_dir("zst", "BaseOS"))
    good = Path(repo.filelists())
    bad = tmp_path / good.name
    bad.write_bytes(good.read_bytes()[:-30])
    for paths in ({"/usr/share/data/shared.dat"}, {"/usr/share/data/R&D <ü>.txt"}):     # fast scan, full parse
        with pytest.raises(LevitateError, match=r"^repodata filelists.xml.zst of BaseOS is corrupt: "):
            lookup_files(repo, bad, paths)
    wrong = tmp_path / "primary-as-filelists.xml"
    wrong.write_bytes(b'<metadata xmlns="http://linux.duke.edu/metadata/common" packages="0"></metadata>')
    for paths in ({"/x"}, {"/x&y"}):
        with pytest.raises(LevitateError, match="not a filelists.xml"):
            lookup_files(repo, wrong, paths)
