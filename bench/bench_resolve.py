"""Benchmark: parse + resolve a synthetic repository the size of Rocky 10 BaseOS + AppStream.

    .venv/bin/python bench/bench_resolve.py [--packages 6000] [--wanted 300] [--runs 5]
                                            [--compress zst|gz|xz] [--keep DIR]

Generates, deterministically, two repositories as real repodata (repomd.xml + primary +
filelists, written in the format createrepo_c produces; writing the XML directly is much faster
than running createrepo_c over 6,000 RPMs): about 6,000 packages and 60,000 provides, with
realistic requires (sonames `libfoo.so.1()(64bit)` with symbol versions, `/usr/bin/sh`-style file
deps, versioned and arch-qualified subpackage deps, rich deps such as `(a if b)` and
`(a or b)`), some packages in two versions and some i686 multilib packages. Then times, per run,
everything a build does before downloading: verify the primary checksums, parse both primaries
and resolve a ~300-package wanted list. Prints the median. Goal: under 2 s.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import lzma
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from levitate.repo.repodata import parse_repomd, read_local_repository  # noqa: E402
from levitate.repo.resolve import resolve  # noqa: E402

SYLLABLES = ("ab", "ac", "al", "an", "ar", "ba", "be", "bi", "bo", "ca", "ce", "co", "cu", "da", "de",
             "di", "do", "fa", "fe", "fi", "ga", "ge", "go", "ha", "he", "hi", "ka", "ke", "ki", "la",
             "le", "li", "lo", "lu", "ma", "me", "mi", "mo", "na", "ne", "ni", "no", "pa", "pe", "pi",
             "po", "ra", "re", "ri", "ro", "sa", "se", "si", "so", "ta", "te", "ti", "to", "va", "ve",
             "vi", "xa", "xe", "za", "ze", "zo")
SUBPACKAGES = ("", "-libs", "-devel", "-tools", "-doc", "-common", "-data")
WORDS = ("library", "tools", "daemon", "utilities", "support", "bindings", "plugin", "server",
         "client", "documentation", "files", "runtime", "headers", "module", "framework")


class Pkg:
    __slots__ = ("name", "arch", "epoch", "ver", "rel", "provides", "requires", "conflicts",
                 "obsoletes", "recommends", "supplements", "files", "allfiles", "summary",
                 "description", "size", "sonames", "pkgid")

    def __init__(self, name, arch, ver, rel, epoch=0):
        self.name, self.arch, self.ver, self.rel, self.epoch = name, arch, ver, rel, epoch
        self.provides: list[tuple] = []
        self.requires: list[tuple] = []
        self.conflicts: list[tuple] = []
        self.obsoletes: list[tuple] = []
        self.recommends: list[tuple] = []
        self.supplements: list[tuple] = []
        self.files: list[str] = []
        self.allfiles: list[str] = []
        self.sonames: list[str] = []
        self.summary = self.description = ""
        self.size = 0
        self.pkgid = ""


def _entry(dep: tuple) -> str:
    """(name,) or (name, flags, epoch, ver, rel) -> <rpm:entry .../>."""
    if len(dep) == 1:
        return f"      <rpm:entry name={quoteattr(dep[0])}/>\n"
    name, flags, epoch, ver, rel = dep
    rel_attr = f" rel={quoteattr(rel)}" if rel else ""
    return (f"      <rpm:entry name={quoteattr(name)} flags=\"{flags}\" epoch=\"{epoch}\" "
            f"ver={quoteattr(ver)}{rel_attr}/>\n")


def generate_packages(n_packages: int, seed: int) -> tuple[list[Pkg], list[Pkg], list[str]]:
    """(baseos, appstream, wanted names). Dependencies only point at earlier packages, so the
    repository is closed; a quarter of the soname requirements go to a small 'core' set."""
    rng = random.Random(seed)
    names: set[str] = set()
    packages: list[Pkg] = []
    providers_pool: list[Pkg] = []          # packages with sonames, in creation order
    binaries: list[str] = []                # files in *bin/ dirs (primary lists them)

    def fresh_name() -> str:
        while True:
            name = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
            if name not in names:
                names.add(name)
                return name

    # glibc and bash first: everything needs them.
    glibc = Pkg("glibc", "x86_64", "2.39", "17.el10")
    glibc.sonames = ["libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "ld-linux-x86-64.so.2"]
    for so in glibc.sonames:
        glibc.provides.append((f"{so}()(64bit)",))
        for v in ("2.2.5", "2.14", "2.17", "2.28", "2.34", "2.38"):
            glibc.provides.append((f"{so}(GLIBC_{v})(64bit)",))
    glibc.provides.append(("rtld(GNU_HASH)",))
    bash = Pkg("bash", "x86_64", "5.2.26", "6.el10")
    bash.provides += [("/bin/sh",), ("/bin/bash",)]
    bash.files = ["/usr/bin/bash", "/usr/bin/sh"]
    bash.requires += [("libc.so.6()(64bit)",), ("libc.so.6(GLIBC_2.34)(64bit)",), ("rtld(GNU_HASH)",)]
    for p in (glibc, bash):
        names.add(p.name)
        packages.append(p)
    providers_pool.append(glibc)
    binaries += bash.files

    while len(packages) < n_packages:
        base = fresh_name()
        ver = f"{rng.randint(0, 12)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}"
        rel = f"{rng.randint(1, 9)}.el10"
        epoch = 1 if rng.random() < 0.05 else 0
        n_sub = rng.choice((1, 1, 1, 2, 2, 3, 4))
        family = []
        for sub in SUBPACKAGES[:n_sub]:
            name = base + sub
            names.add(name)
            arch = "noarch" if sub in ("-doc", "-data", "-common") or rng.random() < 0.15 else "x86_64"
            family.append(Pkg(name, arch, ver, rel, epoch))
        main = family[0]
        lib_holder = next((p for p in family if p.name.endswith("-libs")), main)
        # sonames
        if lib_holder.arch == "x86_64" and rng.random() < 0.7:
            for i in range(rng.choice((1, 1, 1, 2, 3))):
                so = f"lib{base}{'' if i == 0 else i}.so.{rng.randint(0, 9)}"
                lib_holder.sonames.append(so)
                lib_holder.provides.append((f"{so}()(64bit)",))
                for v in range(rng.randint(3, 22)):
                    lib_holder.provides.append((f"{so}({base.upper()}_{v}.0)(64bit)",))
        for p in family:
            p.provides.insert(0, (p.name, "EQ", str(epoch), ver, rel))
            if p.arch == "x86_64":
                p.provides.insert(1, (f"{p.name}(x86-64)", "EQ", str(epoch), ver, rel))
            if rng.random() < 0.2:
                p.provides.append((f"config({p.name})", "EQ", str(epoch), ver, rel))
            if rng.random() < 0.15:
                lang = rng.choice(("python3.12dist", "perl", "rubygem", "golang"))
                for k in range(rng.randint(2, 20)):
                    p.provides.append((f"{lang}({p.name}::mod{k})", "EQ", "0", ver, None))
            if rng.random() < 0.05:
                p.provides.append((f"bundled({fresh_name()})", "EQ", "0", "1.0", None))
            p.summary = f"The {base} {rng.choice(WORDS)}"
            p.description = " ".join(rng.choice(WORDS) for _ in range(rng.randint(30, 110))).capitalize() + "."
            p.size = rng.randint(8_000, 4_000_000)
            # files
            if p is main or p.name.endswith("-tools"):
                for i in range(rng.choice((0, 1, 1, 2, 4))):
                    path = f"/usr/{rng.choice(('bin', 'bin', 'sbin'))}/{p.name}{'' if i == 0 else i}"
                    p.files.append(path)
                    binaries.append(path)
                if rng.random() < 0.3:
                    p.files.append(f"/etc/{base}/{base}.conf")
            p.allfiles = p.files + [f"/usr/share/{base}/{p.name}-{k}.dat" for k in range(rng.randint(1, 8))]
            for so in p.sonames:
                p.allfiles.append(f"/usr/lib64/{so}")
            # requires
            if p.arch == "x86_64":
                p.requires += [("libc.so.6()(64bit)",), ("libc.so.6(GLIBC_2.34)(64bit)",), ("rtld(GNU_HASH)",)]
                for _ in range(rng.choice((1, 2, 3, 4, 5, 6, 8))):
                    if len(providers_pool) < 2:
                        break
                    # a quarter of sonames come from an early "core" set, the rest from anywhere
                    pool = providers_pool[:60] if rng.random() < 0.25 else providers_pool
                    target = rng.choice(pool)
                    if target.sonames:
                        so = rng.choice(target.sonames)
                        dep = (f"{so}()(64bit)",)
                        if dep not in p.requires:
                            p.requires.append(dep)
                            ver_provides = [d for d in target.provides if d[0].startswith(so + "(")]
                            if ver_provides and rng.random() < 0.5:
                                p.requires.append(rng.choice(ver_provides))
            if rng.random() < 0.15 and binaries:
                p.requires.append(("/usr/bin/sh",) if rng.random() < 0.5 else ("/bin/sh",))
            if rng.random() < 0.1 and len(binaries) > 10:
                p.requires.append((rng.choice(binaries[:-5]),))
            if p is not main and p is not lib_holder:
                flags_dep = (f"{main.name}(x86-64)" if main.arch == "x86_64" else main.name,
                             "EQ", str(epoch), ver, rel)
                p.requires.append(flags_dep)
            elif p is main and lib_holder is not main:
                p.requires.append((f"{lib_holder.name}(x86-64)" if lib_holder.arch == "x86_64" else lib_holder.name,
                                   "EQ", str(epoch), ver, rel))
            if rng.random() < 0.2 and len(packages) > 50:
                target = rng.choice(packages[:len(packages) - 5])
                p.requires.append((target.name, "GE", str(target.epoch), target.ver.split(".")[0], None))
            if rng.random() < 0.03 and len(packages) > 50:
                a, b = rng.sample(packages[:len(packages) - 5], 2)
                p.requires.append((f"({a.name} if {b.name})",))
            if rng.random() < 0.03 and len(packages) > 50:
                a, b = rng.sample(packages[:len(packages) - 5], 2)
                p.requires.append((f"({a.name} >= {a.ver} or {b.name})",))
            if rng.random() < 0.02:
                p.conflicts.append((f"{base}-compat", "LT", "0", "1.0", None))
            if rng.random() < 0.02:
                p.obsoletes.append((f"{base}-old", "LT", str(epoch), ver, rel))
            if rng.random() < 0.1 and len(packages) > 50:
                p.recommends.append((rng.choice(packages[:len(packages) - 5]).name,))
        packages.extend(family)
        if lib_holder.sonames:
            providers_pool.append(lib_holder)
        # An older version kept alongside (module streams, compat): 4% of families' main package.
        if rng.random() < 0.04:
            old = Pkg(main.name, main.arch, f"{int(ver.split('.')[0]) - 1 if ver[0] != '0' else 0}.9", "1.el10", epoch)
            old.provides = [(old.name, "EQ", str(epoch), old.ver, old.rel)] + list(main.provides[1:])
            old.requires = [d for d in main.requires if not d[0].startswith(base)]
            old.files, old.allfiles, old.summary, old.description = main.files, main.allfiles, main.summary, main.description
            old.size = main.size
            packages.append(old)
        # Multilib: an i686 build of some libraries (excluded on x86_64).
        if lib_holder.sonames and rng.random() < 0.1:
            m = Pkg(lib_holder.name, "i686", ver, rel, epoch)
            m.provides = [(m.name, "EQ", str(epoch), ver, rel), (f"{m.name}(x86-32)", "EQ", str(epoch), ver, rel)]
            m.provides += [(f"{so}",) for so in lib_holder.sonames]
            m.requires = [("libc.so.6",)]
            m.summary, m.description, m.size = lib_holder.summary, lib_holder.description, lib_holder.size
            packages.append(m)

    for p in packages:
        p.pkgid = hashlib.sha256(f"{p.name}-{p.epoch}:{p.ver}-{p.rel}.{p.arch}".encode()).hexdigest()
    split = len(packages) // 5
    baseos, appstream = packages[:split], packages[split:]
    x86 = sorted({p.name for p in packages if p.arch != "i686"})
    wanted = rng.sample(x86, min(300, len(x86)))
    return baseos, appstream, wanted


def primary_xml(packages: list[Pkg]) -> bytes:
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n<metadata xmlns="http://linux.duke.edu/metadata/common" '
           f'xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="{len(packages)}">\n']
    for p in packages:
        href = f"Packages/{p.name[0]}/{p.name}-{p.ver}-{p.rel}.{p.arch}.rpm"
        out.append(
            f'<package type="rpm">\n  <name>{escape(p.name)}</name>\n  <arch>{p.arch}</arch>\n'
            f'  <version epoch="{p.epoch}" ver="{p.ver}" rel="{p.rel}"/>\n'
            f'  <checksum type="sha256" pkgid="YES">{p.pkgid}</checksum>\n'
            f'  <summary>{escape(p.summary)}</summary>\n  <description>{escape(p.description)}</description>\n'
            f'  <packager>Rocky Linux Build System (Peridot) &lt;releng@rockylinux.org&gt;</packager>\n'
            f'  <url>https://example.org/{p.name}</url>\n'
            f'  <time file="1718000000" build="1717000000"/>\n'
            f'  <size package="{p.size}" installed="{p.size * 3}" archive="{p.size * 3 + 512}"/>\n'
            f'  <location href="{href}"/>\n  <format>\n'
            f'    <rpm:license>MIT</rpm:license>\n    <rpm:vendor>Rocky Enterprise Software Foundation</rpm:vendor>\n'
            f'    <rpm:group>Unspecified</rpm:group>\n    <rpm:buildhost>pb-00000000-0000</rpm:buildhost>\n'
            f'    <rpm:sourcerpm>{escape(p.name)}-{p.ver}-{p.rel}.src.rpm</rpm:sourcerpm>\n'
            f'    <rpm:header-range start="4504" end="{4504 + 40 * len(p.provides) + 2000}"/>\n')
        for kind in ("provides", "requires", "conflicts", "obsoletes", "recommends", "supplements"):
            deps = getattr(p, kind)
            if deps:
                out.append(f"    <rpm:{kind}>\n")
                out.extend(_entry(d) for d in deps)
                out.append(f"    </rpm:{kind}>\n")
        out.extend(f"    <file>{escape(f)}</file>\n" for f in p.files)
        out.append("  </format>\n</package>\n")
    out.append("</metadata>\n")
    return "".join(out).encode()


def filelists_xml(packages: list[Pkg]) -> bytes:
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n<filelists xmlns="http://linux.duke.edu/metadata/filelists" '
           f'packages="{len(packages)}">\n']
    for p in packages:
        out.append(f'<package pkgid="{p.pkgid}" name="{escape(p.name)}" arch="{p.arch}">\n'
                   f'  <version epoch="{p.epoch}" ver="{p.ver}" rel="{p.rel}"/>\n')
        out.extend(f"  <file>{escape(f)}</file>\n" for f in p.allfiles)
        out.append("</package>\n")
    out.append("</filelists>\n")
    return "".join(out).encode()


def compress(data: bytes, kind: str) -> bytes:
    if kind == "gz":
        return gzip.compress(data, 6, mtime=0)
    if kind == "xz":
        return lzma.compress(data, preset=2)
    if kind == "zst":
        import zstandard
        return zstandard.ZstdCompressor(level=10).compress(data)
    return data


def write_repo(root: Path, packages: list[Pkg], kind: str = "zst") -> None:
    """root/repodata/{repomd.xml, HASH-primary.xml.KIND, HASH-filelists.xml.KIND}."""
    repodata = root / "repodata"
    repodata.mkdir(parents=True, exist_ok=True)
    records = []
    for mdtype, content in (("primary", primary_xml(packages)), ("filelists", filelists_xml(packages))):
        packed = compress(content, kind)
        digest = hashlib.sha256(packed).hexdigest()
        name = f"{digest}-{mdtype}.xml" + (f".{kind}" if kind != "none" else "")
        (repodata / name).write_bytes(packed)
        records.append(
            f'  <data type="{mdtype}">\n    <checksum type="sha256">{digest}</checksum>\n'
            f'    <open-checksum type="sha256">{hashlib.sha256(content).hexdigest()}</open-checksum>\n'
            f'    <location href="repodata/{name}"/>\n    <timestamp>1718000000</timestamp>\n'
            f'    <size>{len(packed)}</size>\n    <open-size>{len(content)}</open-size>\n  </data>\n')
    (repodata / "repomd.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<repomd xmlns="http://linux.duke.edu/metadata/repo" '
        'xmlns:rpm="http://linux.duke.edu/metadata/rpm">\n  <revision>1718000000</revision>\n'
        + "".join(records) + "</repomd>\n")


def generate(outdir: Path, n_packages: int = 6000, seed: int = 10, kind: str = "zst") -> list[str]:
    baseos, appstream, wanted = generate_packages(n_packages, seed)
    write_repo(outdir / "BaseOS", baseos, kind)
    write_repo(outdir / "AppStream", appstream, kind)
    return wanted


def parse_and_resolve(outdir: Path, wanted: list[str]):
    repos = [read_local_repository("BaseOS", outdir / "BaseOS"),
             read_local_repository("AppStream", outdir / "AppStream")]
    return repos, resolve(repos, wanted)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packages", type=int, default=6000)
    ap.add_argument("--wanted", type=int, default=300)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--compress", choices=("zst", "gz", "xz", "none"), default="zst")
    ap.add_argument("--seed", type=int, default=10)
    ap.add_argument("--keep", type=Path, help="write the repositories here and keep them")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of one run")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-resolve-") as tmp:
        outdir = args.keep or Path(tmp)
        start = time.perf_counter()
        wanted = generate(outdir, args.packages, args.seed, args.compress)[:args.wanted]
        print(f"generated in {time.perf_counter() - start:.1f} s")
        repos, res = parse_and_resolve(outdir, wanted)
        n_pkgs = sum(len(r.packages) for r in repos)
        n_prov = sum(len(p.provides) for r in repos for p in r.packages)
        n_req = sum(len(p.requires) for r in repos for p in r.packages)
        size = open_size = 0
        for r in repos:
            record = parse_repomd(outdir / r.name / "repodata" / "repomd.xml").records["primary"]
            size += record.size or 0
            open_size += record.open_size or 0
        print(f"repository: {n_pkgs} packages, {n_prov} provides, {n_req} requires, primary "
              f"{size / 1e6:.1f} MB {args.compress}, {open_size / 1e6:.1f} MB of XML")
        print(f"wanted {len(wanted)} -> resolved {len(res.packages)} packages, {len(res.choices)} choices")
        if args.profile:
            import cProfile
            import pstats
            profile = cProfile.Profile()
            profile.runctx("parse_and_resolve(outdir, wanted)", globals(), locals())
            pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
        parse_times, resolve_times, totals, cpu = [], [], [], []
        for _ in range(args.runs):
            c0 = time.process_time()
            t0 = time.perf_counter()
            repos = [read_local_repository("BaseOS", outdir / "BaseOS"),
                     read_local_repository("AppStream", outdir / "AppStream")]
            t1 = time.perf_counter()
            resolve(repos, wanted)
            t2 = time.perf_counter()
            cpu.append(time.process_time() - c0)
            parse_times.append(t1 - t0)
            resolve_times.append(t2 - t1)
            totals.append(t2 - t0)
        med = statistics.median(totals)
        print(f"parse (verify + primary): median {statistics.median(parse_times):.2f} s")
        print(f"resolve:                  median {statistics.median(resolve_times):.2f} s")
        print(f"parse + resolve:          median {med:.2f} s over {args.runs} runs "
              f"(min {min(totals):.2f}, max {max(totals):.2f}); goal < 2 s: {'OK' if med < 2 else 'MISSED'}")
        print(f"CPU time of parse + resolve: median {statistics.median(cpu):.2f} s "
              "(less disturbed by other load on the machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
