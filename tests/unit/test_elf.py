"""ELF dependencies of a root tree without executing anything (leviso/elf.py).

Small trees are built in temporary directories from the host's own libc and dynamic linker plus
tiny programs compiled here with RUNPATH or RPATH. Where it can be, the expected answer is also
checked against glibc itself: the host's ld.so, run inside the tree with chroot and
LD_TRACE_LOADED_OBJECTS=1 (how `ldd` works), after `ldconfig -X -r TREE` has built the tree's
cache. The header reader is checked against `readelf`.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from levitate.leviso.elf import (ElfFormatError, ElfInfo, LibraryResolver, check_tree,
                                 copy_with_libraries, is_elf, read_elf, required_binaries_missing)
from levitate.util.errors import LevitateError
from tests.cheat_aware import cheat_aware

HOST = LibraryResolver(Path("/"))
INTERP = "/lib64/ld-linux-x86-64.so.2"

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root")

RESOLVE = dict(
    protects="the ELF check finds the libraries ld.so would load, and only those, inside the tree",
    cheats=["searching the host instead of the tree", "asking ldd or running the binary",
            "treating RUNPATH like RPATH (or the reverse)", "hard-coding library directories"],
    consequence="a base image whose binaries fail with 'error while loading shared libraries' "
                "passes the build, or a good one is refused",
    severity="CRITICAL")


# --------------------------------------------------------------------------------------------------
# helpers


def host_lib(soname: str) -> Path:
    """The real file of a host library, found by our resolver from the host's own ls."""
    libs, missing = HOST.resolve("/usr/bin/ls")
    assert not missing
    return Path(os.path.realpath(libs[soname]))


def host_interp() -> Path:
    return Path(os.path.realpath(INTERP))


def cc(out: Path, source: str, *flags: str) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    src = out.with_name(out.name.replace(".", "_") + ".c")
    src.write_text(source)
    subprocess.run(["gcc", "-O0", "-o", str(out), str(src), *flags], check=True,
                   capture_output=True)
    src.unlink()
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """libbar.so.1; libfoo.so.1 (needs libbar); programs that need libfoo, linked with RUNPATH,
    with RPATH, with nothing; libfoo with RUNPATH $ORIGIN; a library whose soname is a
    $ORIGIN path."""
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc")
    d = tmp_path_factory.mktemp("elfbuild")
    cc(d / "libbar.so.1", "int bar(void){return 2;}\n", "-shared", "-fPIC",
       "-Wl,-soname,libbar.so.1")
    foo = "int bar(void);\nint foo(void){return bar()+1;}\n"
    cc(d / "libfoo.so.1", foo, "-shared", "-fPIC", "-Wl,-soname,libfoo.so.1", f"-L{d}",
       "-l:libbar.so.1")
    cc(d / "origin" / "libfoo.so.1", foo, "-shared", "-fPIC", "-Wl,-soname,libfoo.so.1",
       f"-L{d}", "-l:libbar.so.1", "-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN")
    app = "int foo(void);\nint main(void){return foo()==3?0:1;}\n"
    common = [f"-L{d}", "-l:libfoo.so.1", f"-Wl,-rpath-link,{d}"]
    cc(d / "app-runpath", app, *common, "-Wl,--enable-new-dtags", "-Wl,-rpath,/opt/app/lib")
    cc(d / "app-rpath", app, *common, "-Wl,--disable-new-dtags", "-Wl,-rpath,/opt/app/lib")
    cc(d / "app-origin", app, *common, "-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib")
    cc(d / "app-plain", app, *common)
    cc(d / "libp.so.1", "int p(void){return 0;}\n", "-shared", "-fPIC",
       "-Wl,-soname,$ORIGIN/../lib/libp.so.1")
    cc(d / "app-dst", "int p(void);\nint main(void){return p();}\n", f"-L{d}", "-l:libp.so.1")
    cc(d / "static", "int main(void){return 0;}\n", "-static")
    return d


def make_root(path: Path, *, conf_dirs=("/usr/lib64",), libdir="/usr/lib64") -> Path:
    """A merged-/usr tree with the host's libc and dynamic linker in LIBDIR (Rocky's /usr/lib64
    by default) and /etc/ld.so.conf including ld.so.conf.d/*.conf, which lists CONF_DIRS."""
    for d in ("usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "etc/ld.so.conf.d", "opt", libdir[1:]):
        (path / d).mkdir(parents=True, exist_ok=True)
    for name, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib"),
                         ("lib64", "usr/lib64")):
        (path / name).symlink_to(target)
    shutil.copy2(host_lib("libc.so.6"), path / libdir[1:] / "libc.so.6")
    shutil.copy2(host_interp(), path / libdir[1:] / "ld-linux-x86-64.so.2")
    if libdir != "/usr/lib64":
        (path / "usr/lib64/ld-linux-x86-64.so.2").symlink_to(f"{libdir}/ld-linux-x86-64.so.2")
    (path / "etc/ld.so.conf").write_text("include ld.so.conf.d/*.conf\n")
    (path / "etc/ld.so.conf.d/base.conf").write_text("".join(f"{d}\n" for d in conf_dirs))
    return path


def put(src: Path, root: Path, path: str) -> Path:
    dest = root / path.lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)
    return dest


def glibc_trace(root: Path, binary: str) -> tuple[dict[str, str], set[str]]:
    """What the host's glibc loads for BINARY inside ROOT: (name -> path, names not found)."""
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    if not os.path.exists(ldconfig):
        pytest.skip("needs ldconfig to give the tree an ld.so.cache")
    subprocess.run([ldconfig, "-X", "-r", str(root)], capture_output=True)

    def enter():
        os.chroot(root)
        os.chdir("/")

    proc = subprocess.run([binary], preexec_fn=enter, env={"LD_TRACE_LOADED_OBJECTS": "1"},
                          capture_output=True, text=True, timeout=30)
    found, missing = {}, set()
    for line in proc.stdout.splitlines():
        m = re.match(r"\s*(\S+) => (.+?)(?: \(0x[0-9a-f]+\))?$", line)
        if m and m.group(2) == "not found":
            missing.add(m.group(1))
        elif m:
            found[m.group(1)] = m.group(2)
    for line in proc.stderr.splitlines():           # a missing lib of the executable itself
        m = re.search(r"error while loading shared libraries: (\S+?):", line)
        if m:
            missing.add(m.group(1))
    return found, missing


def run_in(root: Path, *argv: str) -> subprocess.CompletedProcess:
    def enter():
        os.chroot(root)
        os.chdir("/")
    return subprocess.run(list(argv), preexec_fn=enter, env={"PATH": "/usr/bin"},
                          capture_output=True, text=True, timeout=30)


def without_interp(libs: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in libs.items() if k != "ld-linux-x86-64.so.2"}


# A hand-made ELF writer: ELF32 and big-endian files the host compiler does not produce.

def make_elf(*, cls=64, big=False, machine=62, needed=(), soname=None, rpath=None, runpath=None,
             interp=None, base=0x400000) -> bytes:
    e = ">" if big else "<"
    ehsize, phentsize = (64, 56) if cls == 64 else (52, 32)
    strtab = bytearray(b"\0")

    def add(s: str) -> int:
        off = len(strtab)
        strtab.extend(s.encode() + b"\0")
        return off

    dyn = [(1, add(n)) for n in needed]
    if soname is not None:
        dyn.append((14, add(soname)))
    if rpath is not None:
        dyn.append((15, add(rpath)))
    if runpath is not None:
        dyn.append((29, add(runpath)))
    phnum = 2 + (interp is not None)
    off = ehsize + phnum * phentsize
    interp_b = interp.encode() + b"\0" if interp else b""
    interp_off = off
    off += len(interp_b)
    str_off = off
    off = (off + len(strtab) + 7) & ~7
    dyn_off = off
    dyn += [(5, base + str_off), (10, len(strtab)), (0, 0)]
    dyn_b = b"".join(struct.pack(e + ("qQ" if cls == 64 else "iI"), t, v) for t, v in dyn)
    total = dyn_off + len(dyn_b)

    def ph(p_type, offset, size):
        if cls == 64:
            return struct.pack(e + "IIQQQQQQ", p_type, 4, offset, base + offset, base + offset,
                               size, size, 8)
        return struct.pack(e + "IIIIIIII", p_type, offset, base + offset, base + offset, size,
                           size, 4, 4)

    phdrs = ph(1, 0, total) + ph(2, dyn_off, len(dyn_b))
    if interp:
        phdrs = ph(3, interp_off, len(interp_b)) + phdrs
    ident = b"\x7fELF" + bytes([2 if cls == 64 else 1, 2 if big else 1, 1, 0]) + bytes(8)
    if cls == 64:
        header = ident + struct.pack(e + "HHIQQQIHHHHHH", 3, machine, 1, 0, ehsize, 0, 0, ehsize,
                                     phentsize, phnum, 64, 0, 0)
    else:
        header = ident + struct.pack(e + "HHIIIIIHHHHHH", 3, machine, 1, 0, ehsize, 0, 0, ehsize,
                                     phentsize, phnum, 40, 0, 0)
    out = bytearray(header + phdrs + interp_b + strtab)
    out.extend(bytes(dyn_off - len(out)))
    return bytes(out + dyn_b)


def readelf(path: Path) -> dict:
    """What binutils' readelf says about the same fields."""
    out = subprocess.run(["readelf", "-h", "-l", "-d", "-W", str(path)], capture_output=True,
                         text=True, check=True).stdout
    return {
        "class": 2 if re.search(r"Class:\s+ELF64", out) else 1,
        "big": "big endian" in out,
        "interp": (m.group(1) if (m := re.search(r"Requesting program interpreter: (.*)\]", out))
                   else None),
        "needed": tuple(re.findall(r"\(NEEDED\)\s+Shared library: \[(.*)\]", out)),
        "soname": (m.group(1) if (m := re.search(r"\(SONAME\)\s+Library soname: \[(.*)\]", out))
                   else None),
        "rpath": (m.group(1) if (m := re.search(r"\(RPATH\)\s+Library rpath: \[(.*)\]", out))
                  else None),
        "runpath": (m.group(1) if (m := re.search(r"\(RUNPATH\)\s+Library runpath: \[(.*)\]", out))
                    else None),
    }


def same_as_readelf(info: ElfInfo, path: Path) -> None:
    theirs = readelf(path)
    assert info.elf_class == theirs["class"]
    assert info.big_endian == theirs["big"]
    assert info.interpreter == theirs["interp"]
    assert info.needed == theirs["needed"]
    assert info.soname == theirs["soname"]
    assert ":".join(info.rpath) == (theirs["rpath"] or "")
    assert ":".join(info.runpath) == (theirs["runpath"] or "")


# --------------------------------------------------------------------------------------------------
# reading headers


@cheat_aware(protects="DT_NEEDED, RUNPATH, RPATH, SONAME and PT_INTERP are read as readelf reads them",
             cheats=["parsing `ldd` or `readelf` output", "reading only the first DT_NEEDED"],
             consequence="libraries a binary needs are not checked or not copied into the initramfs")
@pytest.mark.skipif(shutil.which("readelf") is None, reason="needs readelf")
def test_read_elf_agrees_with_readelf_on_real_files(built):
    files = [Path("/usr/bin/ls"), host_lib("libc.so.6"), host_interp(),
             *[Path(os.path.realpath(p)) for p in ("/usr/bin/python3",) if os.path.exists(p)],
             built / "libfoo.so.1", built / "origin" / "libfoo.so.1", built / "app-runpath",
             built / "app-rpath", built / "app-dst"]
    for path in files:
        info = read_elf(path)
        assert info is not None, path
        assert (info.machine, info.path) == (62, str(path))
        same_as_readelf(info, path)
    assert read_elf(built / "app-runpath").runpath == ("/opt/app/lib",)
    assert read_elf(built / "app-runpath").rpath == ()
    assert read_elf(built / "app-rpath").rpath == ("/opt/app/lib",)
    assert read_elf(built / "app-rpath").runpath == ()
    assert read_elf(built / "libfoo.so.1").needed[0] == "libbar.so.1"
    assert read_elf(built / "libfoo.so.1").soname == "libfoo.so.1"
    assert read_elf(built / "app-plain").interpreter == INTERP


@pytest.mark.parametrize("cls,big,machine", [(32, False, 3), (32, True, 20), (64, True, 22),
                                             (64, False, 183)])
def test_read_elf_of_other_classes_and_byte_orders(tmp_path, cls, big, machine):
    path = tmp_path / "lib.so"
    path.write_bytes(make_elf(cls=cls, big=big, machine=machine, needed=("libc.so.6", "libx.so.2"),
                              soname="libq.so.1", rpath="/a:$ORIGIN/b", runpath="/r",
                              interp="/lib/ld.so.1"))
    info = read_elf(path)
    assert info == ElfInfo(str(path), machine, 2 if cls == 64 else 1, "/lib/ld.so.1",
                           ("libc.so.6", "libx.so.2"), ("/r",), ("/a", "$ORIGIN/b"), "libq.so.1",
                           big_endian=big)
    if shutil.which("readelf"):
        same_as_readelf(info, path)


def test_static_non_elf_and_corrupt_files(built, tmp_path):
    assert read_elf(built / "static") is None            # ELF, but nothing to resolve
    assert is_elf(built / "static")
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\necho hi\n")
    assert read_elf(script) is None and not is_elf(script)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert read_elf(empty) is None and not is_elf(empty)
    truncated = tmp_path / "truncated"
    truncated.write_bytes((built / "app-plain").read_bytes()[:200])
    with pytest.raises(ElfFormatError):
        read_elf(truncated)


# --------------------------------------------------------------------------------------------------
# resolving in a tree


def app_tree(tmp_path: Path, built: Path, app: str, *, libs=("libfoo.so.1", "libbar.so.1"),
             **kw) -> Path:
    root = make_root(tmp_path / "root", **kw)
    put(built / app, root, "/opt/app/bin/app")
    for lib in libs:
        put(built / lib, root, f"/opt/app/lib/{lib}")
    return root


@cheat_aware(**RESOLVE)
@needs_gcc
@needs_root
def test_runpath_is_not_inherited_by_dependencies(tmp_path, built):
    root = app_tree(tmp_path, built, "app-runpath")
    libs, missing = LibraryResolver(root).resolve("/opt/app/bin/app")
    assert libs == {"libfoo.so.1": "/opt/app/lib/libfoo.so.1", "libc.so.6": "/usr/lib64/libc.so.6",
                    "ld-linux-x86-64.so.2": INTERP}
    assert missing == ["libbar.so.1"]
    assert LibraryResolver(root).closure("/opt/app/bin/app").needed_by == {
        "libbar.so.1": "/opt/app/lib/libfoo.so.1"}
    # glibc agrees
    found, not_found = glibc_trace(root, "/opt/app/bin/app")
    assert not_found == {"libbar.so.1"}
    assert found == without_interp(libs)


@cheat_aware(**RESOLVE)
@needs_gcc
@needs_root
def test_rpath_is_inherited_by_dependencies(tmp_path, built):
    root = app_tree(tmp_path, built, "app-rpath")
    libs, missing = LibraryResolver(root).resolve("/opt/app/bin/app")
    assert libs == {"libfoo.so.1": "/opt/app/lib/libfoo.so.1", "libc.so.6": "/usr/lib64/libc.so.6",
                    "libbar.so.1": "/opt/app/lib/libbar.so.1", "ld-linux-x86-64.so.2": INTERP}
    assert missing == []
    found, not_found = glibc_trace(root, "/opt/app/bin/app")
    assert (found, not_found) == (without_interp(libs), set())
    assert run_in(root, "/opt/app/bin/app").returncode == 0


@cheat_aware(**RESOLVE)
@needs_gcc
@needs_root
def test_origin_of_a_library_is_where_it_was_found(tmp_path, built):
    """libfoo (RUNPATH $ORIGIN) finds libbar beside it, reached through a directory link."""
    root = make_root(tmp_path / "root")
    put(built / "app-runpath", root, "/opt/app/bin/app")
    put(built / "origin" / "libfoo.so.1", root, "/opt/real/libfoo.so.1")
    put(built / "libbar.so.1", root, "/opt/real/libbar.so.1")
    (root / "opt/app/lib").symlink_to("/opt/real")          # absolute, inside the tree
    libs, missing = LibraryResolver(root).resolve("/opt/app/bin/app")
    assert missing == []
    assert libs["libfoo.so.1"] == "/opt/app/lib/libfoo.so.1"
    assert libs["libbar.so.1"] == "/opt/app/lib/libbar.so.1"
    found, not_found = glibc_trace(root, "/opt/app/bin/app")
    assert (found, not_found) == (without_interp(libs), set())


@cheat_aware(**RESOLVE)
@needs_gcc
def test_origin_of_the_executable_follows_links_and_dst_in_needed(tmp_path, built):
    root = app_tree(tmp_path, built, "app-origin")
    (root / "usr/bin/app").symlink_to("/opt/app/bin/app")  # $ORIGIN is /opt/app/bin, not /usr/bin
    libs, missing = LibraryResolver(root).resolve("/usr/bin/app")
    assert libs["libfoo.so.1"] == "/opt/app/bin/../lib/libfoo.so.1"
    assert missing == ["libbar.so.1"]                       # RUNPATH: not for libfoo's needs
    # a DT_NEEDED that is a path with $ORIGIN
    put(built / "app-dst", root, "/opt/app/bin/dst")
    put(built / "libp.so.1", root, "/opt/app/lib/libp.so.1")
    libs, missing = LibraryResolver(root).resolve("/opt/app/bin/dst")
    assert missing == []
    assert libs["$ORIGIN/../lib/libp.so.1"] == "/opt/app/bin/../lib/libp.so.1"
    (root / "opt/app/lib/libp.so.1").unlink()
    assert LibraryResolver(root).resolve("/opt/app/bin/dst")[1] == ["$ORIGIN/../lib/libp.so.1"]


@cheat_aware(**RESOLVE)
@needs_gcc
def test_search_order_rpath_runpath_conf_defaults(tmp_path, built):
    """RPATH and RUNPATH come before ld.so.conf, which comes before /lib64 and /usr/lib64."""
    root = make_root(tmp_path / "root", conf_dirs=("/opt/conf",))
    for d in ("/opt/app/lib", "/opt/conf", "/usr/lib64"):
        put(built / "libfoo.so.1", root, f"{d}/libfoo.so.1")
        put(built / "libbar.so.1", root, f"{d}/libbar.so.1")
    for app in ("app-rpath", "app-runpath", "app-plain"):
        put(built / app, root, f"/usr/bin/{app}")
    r = LibraryResolver(root)
    assert r.conf_dirs == ("/opt/conf",)
    libs, _ = r.resolve("/usr/bin/app-rpath")
    assert (libs["libfoo.so.1"], libs["libbar.so.1"]) == ("/opt/app/lib/libfoo.so.1",
                                                          "/opt/app/lib/libbar.so.1")
    libs, _ = r.resolve("/usr/bin/app-runpath")
    assert (libs["libfoo.so.1"], libs["libbar.so.1"]) == ("/opt/app/lib/libfoo.so.1",
                                                          "/opt/conf/libbar.so.1")
    libs, _ = r.resolve("/usr/bin/app-plain")
    assert (libs["libfoo.so.1"], libs["libbar.so.1"]) == ("/opt/conf/libfoo.so.1",
                                                          "/opt/conf/libbar.so.1")
    # without ld.so.conf: the default directories, /lib64 first (as Rocky's ldd shows)
    (root / "etc/ld.so.conf.d/base.conf").unlink()
    r = LibraryResolver(root)
    assert r.conf_dirs == ()
    libs, missing = r.resolve("/usr/bin/app-plain")
    assert missing == []
    assert libs == {"libfoo.so.1": "/lib64/libfoo.so.1", "libc.so.6": "/lib64/libc.so.6",
                    "libbar.so.1": "/lib64/libbar.so.1", "ld-linux-x86-64.so.2": INTERP}


@cheat_aware(**RESOLVE)
def test_runpath_hides_rpath_of_the_same_object_and_rpath_climbs_loaders(tmp_path):
    """Hand-made objects: lib A has both RPATH and RUNPATH (RPATH ignored); the executable's
    RPATH serves a grandchild, except below an object with RUNPATH."""
    root = make_root(tmp_path / "root", conf_dirs=())
    files = {
        "/usr/bin/exe": make_elf(needed=("liba.so.1", "libc2.so.1"), rpath="/opt/exe"),
        "/opt/exe/liba.so.1": make_elf(needed=("libb.so.1",), soname="liba.so.1",
                                       rpath="/opt/a-rpath", runpath="/opt/a-runpath"),
        "/opt/a-rpath/libb.so.1": make_elf(soname="libb.so.1"),
        "/opt/a-runpath/libb.so.1": make_elf(needed=("libd.so.1",), soname="libb.so.1"),
        "/opt/exe/libd.so.1": make_elf(soname="libd.so.1"),
        "/opt/exe/libc2.so.1": make_elf(needed=("libe.so.1",), runpath="/nowhere"),
        "/opt/exe/libe.so.1": make_elf(),
    }
    for path, data in files.items():
        (root / path[1:]).parent.mkdir(parents=True, exist_ok=True)
        (root / path[1:]).write_bytes(data)
    libs, missing = LibraryResolver(root).resolve("/usr/bin/exe")
    assert libs == {"liba.so.1": "/opt/exe/liba.so.1", "libc2.so.1": "/opt/exe/libc2.so.1",
                    "libb.so.1": "/opt/a-runpath/libb.so.1",   # RUNPATH wins, RPATH ignored
                    "libd.so.1": "/opt/exe/libd.so.1"}         # exe's RPATH, through liba
    assert missing == ["libe.so.1"]       # libc2 has RUNPATH: no RPATH of its loaders


@cheat_aware(**RESOLVE)
@needs_gcc
def test_ld_so_conf_includes(tmp_path, built):
    root = make_root(tmp_path / "root", conf_dirs=("/opt/one",))
    (root / "etc/ld.so.conf").write_text(
        "# comment\ninclude ld.so.conf.d/*.conf\n/opt/top # trailing comment\n"
        "include /etc/more/*.conf /etc/extra.conf\nhwcap 0 nosegneg\n")
    (root / "etc/ld.so.conf.d/zz.conf").write_text("/opt/two/\ninclude ../nested.conf\n")
    (root / "etc/ld.so.conf.d/not-conf.txt").write_text("/opt/never\n")
    (root / "etc/nested.conf").write_text("/opt/nested\n")
    (root / "etc/more").mkdir()
    (root / "etc/more/a.conf").write_text("/opt/more\n")
    (root / "etc/extra.conf").write_text("/opt/extra=libc6\n")
    r = LibraryResolver(root)
    assert r.conf_dirs == ("/opt/one", "/opt/two", "/opt/nested", "/opt/top", "/opt/more",
                           "/opt/extra")
    put(built / "libfoo.so.1", root, "/opt/nested/libfoo.so.1")
    put(built / "libbar.so.1", root, "/opt/extra/libbar.so.1")
    put(built / "app-plain", root, "/usr/bin/app")
    libs, missing = r.resolve("/usr/bin/app")
    assert missing == []
    assert (libs["libfoo.so.1"], libs["libbar.so.1"]) == ("/opt/nested/libfoo.so.1",
                                                          "/opt/extra/libbar.so.1")


@cheat_aware(protects="a library of another ELF class or machine is skipped, as ld.so skips it",
             cheats=["matching on file name only"],
             consequence="a 64-bit binary is said to be fine because a 32-bit library has the "
                         "right name; it fails to start on the live system",
             severity="CRITICAL")
@needs_gcc
def test_class_and_machine_mismatch_is_skipped(tmp_path, built):
    root = make_root(tmp_path / "root", conf_dirs=("/opt/lib32", "/opt/arm", "/opt/lib"))
    put(built / "app-plain", root, "/usr/bin/app")
    (root / "opt/lib32").mkdir()
    (root / "opt/lib32/libfoo.so.1").write_bytes(make_elf(cls=32, machine=3, soname="libfoo.so.1"))
    (root / "opt/arm").mkdir()
    (root / "opt/arm/libfoo.so.1").write_bytes(make_elf(machine=183, soname="libfoo.so.1"))
    (root / "opt/arm/libbar.so.1").write_bytes(make_elf(big=True, machine=62))
    put(built / "libfoo.so.1", root, "/opt/lib/libfoo.so.1")
    put(built / "libbar.so.1", root, "/opt/lib/libbar.so.1")
    libs, missing = LibraryResolver(root).resolve("/usr/bin/app")
    assert (libs["libfoo.so.1"], libs["libbar.so.1"], missing) == (
        "/opt/lib/libfoo.so.1", "/opt/lib/libbar.so.1", [])
    (root / "opt/lib/libfoo.so.1").unlink()
    assert LibraryResolver(root).resolve("/usr/bin/app")[1] == ["libfoo.so.1"]
    # and a 32-bit object is served from the 32-bit default directories
    (root / "usr/lib/libz32.so.1").write_bytes(make_elf(cls=32, machine=3))
    (root / "usr/lib64/libz32.so.1").write_bytes(make_elf(cls=64, machine=62))
    (root / "usr/bin/app32").write_bytes(make_elf(cls=32, machine=3, needed=("libz32.so.1",)))
    assert LibraryResolver(root).resolve("/usr/bin/app32") == (
        {"libz32.so.1": "/lib/libz32.so.1"}, [])


@cheat_aware(protects="symlinks in the tree are resolved inside the tree, absolute ones too",
             cheats=["os.path.realpath / Path.resolve on the host", "following absolute links "
                     "to the host's /usr/lib"],
             consequence="libraries present only on the build host are taken for present in the "
                         "image (or the build reads host files)",
             severity="CRITICAL")
@needs_gcc
def test_absolute_symlinks_resolve_inside_the_root(tmp_path, built):
    root = make_root(tmp_path / "root", conf_dirs=())
    put(built / "app-plain", root, "/usr/bin/app")
    put(built / "libfoo.so.1", root, "/usr/lib64/libfoo.so.1.0.0")
    (root / "usr/lib64/libfoo.so.1").symlink_to("/usr/lib64/libfoo.so.1.0.0")
    # these exist on the host, not in the tree: following them on the host would "find" them
    (root / "usr/lib64/libbar.so.1").symlink_to(str(host_lib("libc.so.6")))
    r = LibraryResolver(root)
    libs, missing = r.resolve("/usr/bin/app")
    assert libs["libfoo.so.1"] == "/lib64/libfoo.so.1"
    assert missing == ["libbar.so.1"]
    (root / "usr/lib64/libbar.so.1").unlink()
    (root / "usr/lib64/libbar.so.1").symlink_to("../" * 12 + str(host_lib("libc.so.6"))[1:])
    assert LibraryResolver(root).resolve("/usr/bin/app")[1] == ["libbar.so.1"]
    # an absolute directory link, and the binary asked for through /bin -> usr/bin
    (root / "lib64").unlink()
    (root / "lib64").symlink_to("/usr/lib64")
    put(built / "libbar.so.1", root, "/usr/lib64/libbar.so.1.0")
    (root / "usr/lib64/libbar.so.1").unlink()
    (root / "usr/lib64/libbar.so.1").symlink_to("libbar.so.1.0")
    assert LibraryResolver(root).resolve("/bin/app") == (
        {"libfoo.so.1": "/lib64/libfoo.so.1", "libc.so.6": "/lib64/libc.so.6",
         "libbar.so.1": "/lib64/libbar.so.1", "ld-linux-x86-64.so.2": INTERP}, [])
    # the interpreter is looked for in the tree too
    (root / "usr/lib64/ld-linux-x86-64.so.2").unlink()
    (root / "usr/lib64/ld-linux-x86-64.so.2").symlink_to(str(host_interp()))
    assert LibraryResolver(root).resolve("/bin/app")[1] == [INTERP, "ld-linux-x86-64.so.2"]


@cheat_aware(**RESOLVE)
def test_host_resolution_matches_ldd(tmp_path):
    """On the host's own root our answer is ldd's (ldd is only the oracle here)."""
    if shutil.which("ldd") is None:
        pytest.skip("needs ldd")
    binaries = [b for b in ("/usr/bin/ls", "/usr/bin/python3", "/usr/bin/ssh", "/usr/bin/gpg",
                            "/usr/bin/curl", "/usr/lib/systemd/systemd") if os.path.exists(b)]
    assert len(binaries) >= 2
    for b in binaries:
        out = subprocess.run(["ldd", b], capture_output=True, text=True, check=True).stdout
        theirs = dict(re.findall(r"^\s*(\S+) => (\S+)", out, re.M))
        libs, missing = HOST.resolve(b)
        assert missing == []
        assert without_interp(libs) == theirs, b


# --------------------------------------------------------------------------------------------------
# the whole tree


@cheat_aware(protects="every ELF file of the tree is checked and a missing library is reported "
                      "with the binary that needs it; a listed binary's fails the build",
             cheats=["checking only /usr/bin", "reporting only direct needs", "warning instead "
                     "of failing for a binary the profile lists"],
             consequence="the live system boots into a shell whose tools do not start",
             severity="CRITICAL")
@needs_gcc
def test_check_tree_reports_missing_with_the_binary(tmp_path, built):
    root = make_root(tmp_path / "root", conf_dirs=("/usr/lib64", "/opt/app/lib"))
    put(built / "app-plain", root, "/usr/bin/good")
    put(built / "app-plain", root, "/usr/libexec/thing/bad")
    put(built / "libfoo.so.1", root, "/opt/app/lib/libfoo.so.1")
    put(built / "libbar.so.1", root, "/opt/app/lib/libbar.so.1")
    put(built / "app-runpath", root, "/opt/other/bin/uses-runpath")
    put(built / "libfoo.so.1", root, "/opt/private/libfoo.so.1")   # not on any search path
    put(built / "app-plain", root, "/usr/lib/firmware/blob")       # firmware: not looked at
    put(built / "app-plain", root, "/usr/lib/modules/6.1/kernel/x.ko")
    (root / "usr/share/doc").mkdir(parents=True)
    (root / "usr/share/doc/README").write_text("not ELF")
    (root / "usr/bin/sh").symlink_to("good")                       # links are not files
    put(built / "static", root, "/usr/sbin/static")
    put(built / "app-plain", root, "/usr/bin/bad2")
    # libbar leaves every search path:
    (root / "opt/app/lib/libbar.so.1").rename(root / "opt/app/libbar.so.1")
    report = check_tree(root)
    assert report.missing == {
        "/usr/bin/good": ["libbar.so.1"], "/usr/bin/bad2": ["libbar.so.1"],
        "/usr/libexec/thing/bad": ["libbar.so.1"], "/opt/app/lib/libfoo.so.1": ["libbar.so.1"],
        "/opt/private/libfoo.so.1": ["libbar.so.1"], "/opt/other/bin/uses-runpath": ["libbar.so.1"],
    }
    assert report.needed_by["/usr/bin/good"] == {"libbar.so.1": "/opt/app/lib/libfoo.so.1"}
    # ELF files: good, bad, bad2, uses-runpath, static, 2 libfoo, the moved libbar, libc, ld.so
    assert (report.checked, report.dynamic) == (10, 9)
    assert ("/usr/bin/good needs libbar.so.1 (not found in "
            f"{root}, through /opt/app/lib/libfoo.so.1)") in report.warnings()
    with pytest.raises(LevitateError) as err:
        check_tree(root, required=["/usr/sbin/static", "good", "/usr/bin/sh"])
    msg = str(err.value)
    assert msg.startswith("a binary the profile lists misses libraries: /usr/bin/good needs "
                          f"libbar.so.1 (not found in {root}, through /opt/app/lib/libfoo.so.1)")
    assert "/usr/bin/sh needs libbar.so.1" in msg and "/usr/sbin/static" not in msg
    assert required_binaries_missing(report, ["nonesuch"]) == [f"nonesuch is not in {root}"]
    # put it back: nothing missing, nothing raised
    (root / "opt/app/libbar.so.1").rename(root / "opt/app/lib/libbar.so.1")
    report = check_tree(root, required=["good", "/usr/libexec/thing/bad"])
    assert report.missing == {}         # uses-runpath: libfoo finds libbar through ld.so.conf


@needs_gcc
def test_private_library_that_loads_in_context_is_not_a_warning(tmp_path, built):
    """libfoo, in the executable's RUNPATH directory with libbar beside it but without a RUNPATH
    of its own, misses libbar when loaded alone; where it is used (by the executable, which needs
    libbar too) all is found. Like systemd's libsystemd-core and libsystemd-shared."""
    root = make_root(tmp_path / "root")
    cc(tmp_path / "b" / "app", "int foo(void); int bar(void);\nint main(void){return foo()+bar();}\n",
       f"-L{built}", "-l:libfoo.so.1", "-l:libbar.so.1", "-Wl,--enable-new-dtags",
       "-Wl,-rpath,/usr/lib64/private")
    put(tmp_path / "b" / "app", root, "/usr/bin/app")
    put(built / "libfoo.so.1", root, "/usr/lib64/private/libfoo.so.1")
    put(built / "libbar.so.1", root, "/usr/lib64/private/libbar.so.1")
    report = check_tree(root)
    assert report.missing == {}
    assert report.loads_in_context == {"/usr/lib64/private/libfoo.so.1": ["libbar.so.1"]}


# --------------------------------------------------------------------------------------------------
# copying


@cheat_aware(protects="a binary copied with its libraries runs in the destination tree",
             cheats=["copying only the DT_NEEDED of the binary itself", "dereferencing links so "
                     "soname links are lost", "writing through absolute links onto the host"],
             consequence="the initramfs tool fails with 'not found' at boot, or the build "
                         "overwrites host libraries",
             severity="CRITICAL")
@needs_root
def test_copy_with_libraries_runs_in_the_copy(tmp_path):
    """A Debian-like source (as the sample tree): libraries in /usr/lib/x86_64-linux-gnu, listed
    in ld.so.conf through /lib, and /usr/lib64/ld-linux-x86-64.so.2 an absolute link."""
    src = make_root(tmp_path / "src", conf_dirs=("/lib/x86_64-linux-gnu",),
                    libdir="/usr/lib/x86_64-linux-gnu")
    put(Path("/usr/bin/ls"), src, "/usr/bin/ls")
    libs, missing = HOST.resolve("/usr/bin/ls")
    assert missing == []
    for name, path in without_interp(libs).items():
        if name != "libc.so.6":
            real = Path(os.path.realpath(path))
            put(real, src, f"/usr/lib/x86_64-linux-gnu/{real.name}")
            if real.name != name:
                (src / f"usr/lib/x86_64-linux-gnu/{name}").symlink_to(real.name)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "lib64").symlink_to("/usr/lib64")    # the destination's own absolute link
    copied = copy_with_libraries(src, "/bin/ls", dest)
    expected = {"/bin/ls", INTERP, "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"}
    for name in without_interp(libs):
        expected.add(f"/lib/x86_64-linux-gnu/{name}")
        if (src / f"usr/lib/x86_64-linux-gnu/{name}").is_symlink():
            expected.add(f"/usr/lib/x86_64-linux-gnu/{os.readlink(src / f'usr/lib/x86_64-linux-gnu/{name}')}")
    assert set(copied) == expected
    assert os.readlink(dest / "bin") == "usr/bin" and os.readlink(dest / "lib") == "usr/lib"
    assert os.readlink(dest / "usr/lib64/ld-linux-x86-64.so.2") == \
        "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
    for name in without_interp(libs):
        link = src / f"usr/lib/x86_64-linux-gnu/{name}"
        if link.is_symlink():
            assert os.readlink(dest / f"usr/lib/x86_64-linux-gnu/{name}") == os.readlink(link)
    assert not (dest / "usr/lib64/libc.so.6").exists()
    proc = run_in(dest, "/bin/ls", "/usr/lib/x86_64-linux-gnu")
    assert proc.returncode == 0, proc.stderr
    assert "libc.so.6" in proc.stdout.split()
    # again: nothing changes, same answer
    assert sorted(copy_with_libraries(src, "/bin/ls", dest)) == sorted(copied)


@needs_gcc
def test_copy_never_writes_through_absolute_links_onto_the_host(tmp_path, built):
    src = make_root(tmp_path / "src", conf_dirs=("/opt/zz-levitate-test/lib",))
    put(built / "app-plain", src, "/usr/bin/app")
    put(built / "libfoo.so.1", src, "/opt/zz-levitate-test/lib/libfoo.so.1")
    put(built / "libbar.so.1", src, "/opt/zz-levitate-test/lib/libbar.so.1")
    dest = tmp_path / "dest"
    (dest / "elsewhere").mkdir(parents=True)
    (dest / "opt").symlink_to("/elsewhere")                 # absolute: must stay inside dest
    host_opt = Path("/elsewhere")
    assert not host_opt.exists()
    copied = copy_with_libraries(src, "/usr/bin/app", dest)
    assert not host_opt.exists()
    assert (dest / "elsewhere/zz-levitate-test/lib/libfoo.so.1").is_file()
    assert sorted(copied) == sorted(["/usr/bin/app", INTERP, "/lib64/libc.so.6",
                                     "/opt/zz-levitate-test/lib/libfoo.so.1",
                                     "/opt/zz-levitate-test/lib/libbar.so.1"])
    # a closure with a hole is refused, naming what is missing and who needs it
    (src / "opt/zz-levitate-test/lib/libbar.so.1").unlink()
    with pytest.raises(LevitateError, match=r"libbar\.so\.1 \(needed by "
                                            r"/opt/zz-levitate-test/lib/libfoo\.so\.1\)"):
        copy_with_libraries(src, "/usr/bin/app", tmp_path / "dest2")


def test_copy_takes_the_interpreter_even_when_no_library_names_it(tmp_path):
    """glibc's libc lists ld-linux in DT_NEEDED; other C libraries' do not (musl)."""
    src = make_root(tmp_path / "src", conf_dirs=())
    (src / "usr/bin/exe").write_bytes(make_elf(interp="/lib/ld-test.so.1", needed=("libq.so.1",)))
    (src / "usr/lib/ld-test.so.1").write_bytes(make_elf(soname="ld-test.so.1"))
    (src / "usr/lib64/libq.so.1").write_bytes(make_elf(soname="libq.so.1"))
    copied = copy_with_libraries(src, "/usr/bin/exe", tmp_path / "dest")
    assert copied == ["/usr/bin/exe", "/lib/ld-test.so.1", "/lib64/libq.so.1"]
    assert os.readlink(tmp_path / "dest/lib") == "usr/lib"
    assert (tmp_path / "dest/usr/lib/ld-test.so.1").read_bytes() == \
        (src / "usr/lib/ld-test.so.1").read_bytes()


# --------------------------------------------------------------------------------------------------
# the sample tree (slow)


@pytest.mark.slow
@cheat_aware(protects="the base tree's shell, init and python find all their libraries",
             cheats=["skipping the check when the tree is large", "excluding systemd's private "
                     "library directory"],
             consequence="the live ISO drops to a kernel panic or a broken shell",
             severity="CRITICAL")
def test_sample_tree_has_no_missing_libraries_for_core_binaries(sample_build):
    rootfs = sample_build.rootfs
    pythons = sorted(p.name for p in (rootfs / "usr/bin").glob("python3.*")
                     if re.fullmatch(r"python3\.\d+", p.name))
    assert pythons
    required = ["/usr/bin/bash", "/usr/lib/systemd/systemd", *(f"/usr/bin/{p}" for p in pythons)]
    report = check_tree(rootfs, required=required)
    print(f"\ncheck_tree: {report.checked} ELF files ({report.dynamic} dynamic) in "
          f"{report.seconds:.2f}s; warnings: {report.warnings()}")
    assert report.checked > 500
    r = LibraryResolver(rootfs)
    for binary in required:
        libs, missing = r.resolve(binary)
        assert missing == [], binary
        assert "libc.so.6" in libs
    libs, _ = r.resolve("/usr/lib/systemd/systemd")
    assert any(name.startswith("libsystemd-shared") for name in libs)

