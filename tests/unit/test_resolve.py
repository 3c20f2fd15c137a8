"""Dependency resolution: closure, provider choice (each rule), versions, rich and file deps,
weak deps, conflicts, obsoletes, and the errors a user sees. Synthetic packages for the rules,
real createrepo_c repodata (see test_repo_rpms.py) for the end-to-end cases."""

from __future__ import annotations

import pytest

from levitate.repo.deps import parse_dep
from levitate.repo.repodata import Package, Repository
from levitate.repo.resolve import (RULE_ALPHA, RULE_ARCH, RULE_EVR, RULE_FIRST_ALTERNATIVE, RULE_NAME,
                                   RULE_NO_CONFLICT, RULE_PIN, ResolutionError, resolve)
from levitate.rpm.vercmp import EVR
from tests.cheat_aware import cheat_aware
from tests.unit.test_repo_rpms import real_repos  # noqa: F401 - session fixture


def pkg(nevra: str, *, provides=(), requires=(), conflicts=(), obsoletes=(), recommends=(), supplements=(),
        files=(), repo="BaseOS") -> Package:
    """pkg("name"), pkg("name-1.2-3"), pkg("name-1:1.2-3.noarch"); deps as rpm strings."""
    arch = "x86_64"
    head = nevra
    for a in ("x86_64", "noarch", "i686"):
        if nevra.endswith("." + a):
            head, arch = nevra[: -len(a) - 1], a
    parts = head.rsplit("-", 2)
    if len(parts) == 3 and parts[1][:1].isdigit():
        name, ver, rel = parts
    else:
        name, ver, rel = head, "1.0", "1.el10"
    evr = EVR.parse(f"{ver}-{rel}")
    deps = lambda items: tuple(parse_dep(i) for i in items)  # noqa: E731
    return Package(name, evr.epoch, evr.version, rel, arch, evr, size_package=1000,
                   location=f"Packages/{name}.rpm", checksum=("sha256", f"{hash(nevra) & 0xFFFFFFFF:064x}"),
                   repo=repo, provides=deps(provides), requires=deps(requires), conflicts=deps(conflicts),
                   obsoletes=deps(obsoletes), recommends=deps(recommends), supplements=deps(supplements),
                   files=tuple(files))


def repo(*pkgs: Package, name: str = "BaseOS") -> Repository:
    for p in pkgs:
        p.repo = name
    return Repository(name, None, list(pkgs))


def names(res) -> list[str]:
    return [p.name for p in res.packages]


# -- provider choice, rule by rule ---------------------------------------------------------------


@cheat_aware(protects="a pin in the profile decides which package provides a requirement",
             cheats=["ignoring pins when another rule would pick something else"],
             consequence="the user cannot choose between alternatives (e.g. which web server or shell)")
def test_rule_pin_beats_everything():
    r = repo(pkg("app", requires=["webserver"]),
             pkg("httpd-2.4-1", provides=["webserver"]), pkg("nginx-1.26-1", provides=["webserver"]),
             pkg("webserver-3.0-1"))
    res = resolve([r], ["app"], pins={"webserver": "nginx"})
    assert names(res) == ["app", "nginx"]
    assert res.reasons["nginx"].rule == RULE_PIN
    assert res.choices[0].chosen == "nginx-1.26-1.x86_64" and res.choices[0].rule == RULE_PIN
    with pytest.raises(ResolutionError, match="pins 'webserver' to 'app', but app cannot satisfy"):
        resolve([r], ["app"], pins={"webserver": "app"})
    with pytest.raises(ResolutionError, match=r"unknown package 'ngnix' \(did you mean: nginx\?\)"):
        resolve([r], ["app"], pins={"webserver": "ngnix"})


@cheat_aware(protects="a package named in the package list satisfies requirements before any alternative",
             cheats=["choosing by name or version before looking at the wanted list"],
             consequence="the user asks for nginx and also gets httpd (or a conflict between them)")
def test_rule_wanted_beats_name_and_version():
    r = repo(pkg("app", requires=["webserver"]),
             pkg("httpd-2.4-1", provides=["webserver"]), pkg("nginx-1.26-1", provides=["webserver"]),
             pkg("webserver-3.0-1"))
    res = resolve([r], ["app", "nginx"])
    assert names(res) == ["app", "nginx"]
    assert str(res.reasons["nginx"]) == "wanted"


def test_rule_name_equals_requirement_beats_newer():
    r = repo(pkg("app", requires=["webserver"]),
             pkg("httpd-2.4-1", provides=["webserver"]), pkg("webserver-1.0-1"))
    res = resolve([r], ["app"])
    assert names(res) == ["app", "webserver"] and res.reasons["webserver"].rule == RULE_NAME


def test_rule_newest_evr():
    r = repo(pkg("app", requires=["webserver"]),
             pkg("httpd-2.4-1", provides=["webserver"]), pkg("nginx-1.26-1", provides=["webserver"]),
             pkg("lighttpd-1:1.4-1", provides=["webserver"]))
    res = resolve([r], ["app"])
    assert names(res) == ["app", "lighttpd"] and res.reasons["lighttpd"].rule == RULE_EVR   # epoch 1 wins
    # Several versions of one name: the newest, unless something needs another.
    r2 = repo(pkg("foo-1.0-1"), pkg("foo-1.10-1"), pkg("foo-1.9-1"))
    assert resolve([r2], ["foo"]).packages[0].version == "1.10"


def test_rule_arch_and_multilib():
    r = repo(pkg("app", requires=["cap"]),
             pkg("impl-b-1.0-1.noarch", provides=["cap"]), pkg("impl-c-1.0-1.x86_64", provides=["cap"]),
             pkg("impl-a-1.0-1.i686", provides=["cap"]))
    res = resolve([r], ["app"])
    assert names(res) == ["app", "impl-c"] and res.reasons["impl-c"].rule == RULE_ARCH
    assert all(p.arch != "i686" for p in res.packages)
    only32 = repo(pkg("app", requires=["lib32"]), pkg("l32-1.0-1.i686", provides=["lib32"]))
    with pytest.raises(ResolutionError, match="only packages for other architectures provide it"):
        resolve([only32], ["app"])
    # The same name built for both: x86_64 over noarch.
    both = repo(pkg("tz-1.0-1.noarch"), pkg("tz-1.0-1.x86_64"))
    assert resolve([both], ["tz"]).packages[0].arch == "x86_64"


def test_rule_by_name_last():
    r = repo(pkg("app", requires=["cap"]), pkg("zeta", provides=["cap"]), pkg("alpha", provides=["cap"]))
    res = resolve([r], ["app"])
    assert names(res) == ["alpha", "app"] and res.reasons["alpha"].rule == RULE_ALPHA
    assert str(res.choices[0]) == ("app requires 'cap': chose alpha-1.0-1.el10.x86_64 among "
                                   "zeta-1.0-1.el10.x86_64, alpha-1.0-1.el10.x86_64 (first by name)")


def test_candidate_conflicting_with_the_set_is_avoided():
    r = repo(pkg("app", requires=["x", "cap"]), pkg("x", conflicts=["alpha"]),
             pkg("alpha", provides=["cap"]), pkg("beta", provides=["cap"]))
    res = resolve([r], ["app"])
    assert names(res) == ["app", "beta", "x"] and res.reasons["beta"].rule == RULE_NO_CONFLICT


def test_ambiguous_choices_wait_for_forced_ones():
    # `cap` could be p1 or p2; p2 arrives anyway through `other`: p1 must not be added too.
    r = repo(pkg("app", requires=["cap", "other"]), pkg("other", requires=["p2"]),
             pkg("p1-2.0-1", provides=["cap"]), pkg("p2-1.0-1", provides=["cap"]))
    assert names(resolve([r], ["app"])) == ["app", "other", "p2"]


@cheat_aware(protects="resolution is deterministic: the same inputs always give the same set and reasons",
             cheats=["iterating sets or dicts in hash order"],
             consequence="leviso.lock changes between identical runs; builds are not reproducible")
def test_deterministic():
    pkgs = [pkg(f"p{i}", provides=["cap"], requires=[f"dep{i % 3}"]) for i in range(8)]
    pkgs += [pkg(f"dep{i}") for i in range(3)] + [pkg("app", requires=["cap", "(p3 or p5)"])]
    runs = [resolve([repo(*pkgs)], ["app"]) for _ in range(3)]
    assert len({tuple(names(r)) for r in runs}) == 1
    assert len({tuple(map(str, r.choices)) for r in runs}) == 1


# -- versions -------------------------------------------------------------------------------------


@cheat_aware(protects="versioned requirements pick a matching version, and one version per package name",
             cheats=["ignoring the version of a requirement", "installing two versions of one package"],
             consequence="a package gets a library version it cannot run with, or the rootfs holds two of one")
def test_versions_real_repos(real_repos):
    repos = real_repos.load("gz")
    res = resolve(repos, ["app"])
    assert res.by_name["tool"].version == "2.0" and res.by_name["app"].epoch == 1
    res = resolve(repos, ["tool", "legacy"])            # legacy needs tool < 2: the wanted tool follows
    assert res.by_name["tool"].version == "1.0" and res.by_name["helper"].version == "2.1"
    assert any("tool: limited to versions satisfying 'tool < 2'" in n and "legacy" in n for n in res.notes)
    assert resolve(repos, ["tool < 2"]).by_name["tool"].version == "1.0"
    assert resolve(repos, ["tool-1.0-1.el10.x86_64"]).by_name["tool"].version == "1.0"
    with pytest.raises(ResolutionError) as err:
        resolve(repos, ["app", "legacy"])
    msg = str(err.value)
    assert "no single version of tool" in msg and "tool < 2" in msg and "tool >= 2.0" in msg, msg
    with pytest.raises(ResolutionError, match=r"no package matches 'tool >= 3' \(available: tool-2.0-1.el10.x86_64"):
        resolve(repos, ["tool >= 3"])


def test_version_conflict_between_requirements():
    r = repo(pkg("a", requires=["lib >= 2"]), pkg("b", requires=["lib < 2"]),
             pkg("lib-1.0-1"), pkg("lib-2.0-1"))
    with pytest.raises(ResolutionError, match="no single version of lib satisfies every requirement"):
        resolve([r], ["a", "b"])
    assert resolve([r], ["b"]).by_name["lib"].version == "1.0"


# -- rich, file and weak deps -----------------------------------------------------------------------


@cheat_aware(protects="rich deps resolve as rpm means them: or takes the first possible, if only when the "
                      "condition is in the set, with needs ONE package providing both",
             cheats=["installing every alternative", "always installing the 'if' branch",
                     "satisfying 'with' by two packages"],
             consequence="bloated or broken root filesystems on every build")
def test_rich_deps_real_repos(real_repos):
    repos = real_repos.load("zst")
    res = resolve(repos, ["tool"])
    assert "helper" in names(res) and "althelper" not in names(res)
    assert any(c.rule == RULE_FIRST_ALTERNATIVE and c.chosen == "helper >= 2.0" for c in res.choices)
    assert "extra" not in names(res)                    # (extra if bash): bash is not in the set
    res = resolve(repos, ["tool", "bash"])
    assert "extra" in names(res) and res.reasons["extra"].by == "tool"
    res = resolve(repos, ["tool"], exclude=["helper"])
    assert "althelper" in names(res) and "helper" not in names(res)
    res = resolve(repos, ["withpkg"])
    assert "multi" in names(res) and "onlya" not in names(res) and "onlyb" not in names(res)


def test_conditionals_reach_a_fixpoint():
    # (x if y): y arrives only after the main pass, through a chain; x must follow.
    r = repo(pkg("app", requires=["(x if y)", "(p or q)"]), pkg("p", requires=["y"]), pkg("q"),
             pkg("y"), pkg("x"), pkg("u", requires=["(v unless w)", "(m unless app else n)"]),
             pkg("v"), pkg("w"), pkg("m"), pkg("n"))
    assert names(resolve([r], ["app"])) == ["app", "p", "x", "y"]
    assert names(resolve([r], ["u"])) == ["m", "u", "v"]
    assert names(resolve([r], ["u", "app", "w"])) == ["app", "n", "p", "u", "w", "x", "y"]


@cheat_aware(protects="file requirements outside primary are found through filelists, loaded only when needed",
             cheats=["always loading filelists", "treating unknown paths as satisfied"],
             consequence="every build downloads and parses the huge filelists, or packages miss files they need")
def test_file_deps_and_lazy_filelists(real_repos):
    repos = real_repos.load("gz")
    calls = []

    def spy(paths):
        calls.append(set(paths))
        return loader(paths)

    from levitate.repo.resolve import filelists_loader
    loader = filelists_loader(repos)
    res = resolve(repos, ["coreutils"], load_filelists=spy)     # /usr/bin/sh is in primary (bash)
    assert calls == [] and "bash" in names(res)
    assert res.why("bash").startswith("required by coreutils")
    res = resolve(repos, ["tool"], load_filelists=spy)
    assert calls == [{"/usr/share/data/shared.dat"}]
    assert res.by_name["datapkg"].repo == "BaseOS"
    assert res.reasons["datapkg"].requirement == "/usr/share/data/shared.dat"
    # The default loader uses each repository's verified filelists.
    assert "datapkg" in names(resolve(repos, ["tool"]))
    # No filelists at all: a clear error, not a silent pass.
    bare = [Repository(r.name, r.base, r.packages) for r in repos]
    with pytest.raises(ResolutionError, match=r"^tool requires /usr/share/data/shared.dat: nothing provides it"):
        resolve(bare, ["tool"])


def test_weak_deps_switch(real_repos):
    repos = real_repos.load("gz")
    assert "docs" not in names(resolve(repos, ["tool", "bash"]))
    res = resolve(repos, ["tool", "bash"], weak_deps=True)
    assert "docs" in names(res) and str(res.reasons["docs"]).startswith("recommended by tool")
    assert "langpack" in names(res) and res.reasons["langpack"].kind == "supplements"
    r = repo(pkg("app", recommends=["missing-thing"]))
    res = resolve([r], ["app"], weak_deps=True)
    assert names(res) == ["app"] and res.skipped == ["app recommends missing-thing: nothing provides it"]


# -- conflicts and obsoletes ------------------------------------------------------------------------


@cheat_aware(protects="two chosen packages that conflict stop the build, naming both, the conflict and why each is there",
             cheats=["ignoring Conflicts", "reporting only one side"],
             consequence="a rootfs with clashing files or a broken package the user cannot trace back")
def test_conflicts_reported(real_repos):
    repos = real_repos.load("gz")
    with pytest.raises(ResolutionError) as err:
        resolve(repos, ["coreutils", "coreutils-single"])
    msg = err.value.message
    assert msg.startswith("conflict: coreutils-9.5-3.el10.x86_64 conflicts with coreutils-single-9.5-3.el10.x86_64 "
                          "('coreutils-single')"), msg
    assert "coreutils is wanted" in msg and "coreutils-single is wanted" in msg
    assert len(err.value.problems) == 2          # each side declares the conflict
    r = repo(pkg("app", requires=["mid"]), pkg("mid", requires=["x"]), pkg("x", conflicts=["y < 2"]), pkg("y-1.5-1"))
    with pytest.raises(ResolutionError) as err:
        resolve([r], ["app", "y"])
    assert "x-1.0-1.el10.x86_64 conflicts with y-1.5-1.x86_64 ('y < 2')" in str(err.value)
    assert "via app -> mid -> x" in str(err.value) and "y is wanted" in str(err.value)
    # Outside the range, no conflict.
    r2 = repo(pkg("x", conflicts=["y < 2"]), pkg("y-2.0-1"))
    assert names(resolve([r2], ["x", "y"])) == ["x", "y"]


def test_obsoleted_package_is_dropped_unless_wanted():
    r = repo(pkg("app", requires=["foo", "(foo2 or zzz)"]), pkg("foo-1.0-1"),
             pkg("foo2-2.0-1", provides=["foo = 2.0"], obsoletes=["foo < 2"]), pkg("zzz"))
    res = resolve([r], ["app"])
    assert names(res) == ["app", "foo2"]
    assert any(n.startswith("dropped foo-1.0-1.x86_64: obsoleted by foo2-2.0-1.x86_64") for n in res.notes)
    with pytest.raises(ResolutionError, match="foo2-2.0-1.x86_64 obsoletes foo-1.0-1.x86_64"):
        resolve([r], ["foo", "foo2"])
    # Dropping it leaves a requirement only it could meet: say so.
    r2 = repo(pkg("app", requires=["foo < 2", "(foo2 or zzz)"]), pkg("foo-1.0-1"),
              pkg("foo2-2.0-1", provides=["foo = 2.0"], obsoletes=["foo < 2"]), pkg("zzz"))
    with pytest.raises(ResolutionError, match="dropped as obsoleted"):
        resolve([r2], ["app"])


# -- what the user sees when it fails ---------------------------------------------------------------


@cheat_aware(protects="an unresolvable requirement names the requirement and the chain that needed it",
             cheats=["a generic 'dependency problem' message", "omitting the chain"],
             consequence="the user cannot find which package of their list drags in the broken dependency")
def test_unresolvable_chain(real_repos):
    repos = real_repos.load("gz")
    with pytest.raises(ResolutionError) as err:
        resolve(repos, ["brokenparent"])
    assert err.value.message == ("broken requires libmissing.so.1()(64bit): nothing provides it "
                                 "(needed by: brokenparent -> broken)")
    assert err.value.hint and "\n" not in str(err.value)
    r = repo(pkg("bash", requires=["coreutils"]), pkg("coreutils", requires=["libacl.so.1()(64bit)"]),
             pkg("libacl-2.3-1", provides=["libacl.so.1()(64bit)"]))
    with pytest.raises(ResolutionError) as err:
        resolve([r], ["bash"], exclude=["libacl"])
    assert err.value.message == ("coreutils requires libacl.so.1()(64bit): only excluded packages provide it "
                                 "(libacl) (needed by: bash -> coreutils)")
    r = repo(pkg("app", requires=["(tool and libmissing >= 2)"]), pkg("tool"), pkg("libmissing-1.0-1"))
    with pytest.raises(ResolutionError) as err:
        resolve([r], ["app"])
    assert err.value.message == ("app requires libmissing >= 2 (in '(tool and libmissing >= 2)'): nothing provides "
                                 "it (available: libmissing = 1.0-1) (needed by: app)")


@cheat_aware(protects="a misspelled package name fails with the nearest existing names (packages and provides)",
             cheats=["a bare 'not found'", "suggesting from package names only"],
             consequence="the user has to search the repository by hand for the right spelling")
def test_misspelled_names():
    r = repo(pkg("kernel"), pkg("kernel-core"), pkg("kernel-modules"), pkg("bash"),
             pkg("httpd", provides=["webserver"]))
    with pytest.raises(ResolutionError) as err:
        resolve([r], ["bash", "kernell"])
    assert err.value.message.startswith("unknown package 'kernell' (did you mean: kernel, ")
    assert "kernel-core" in err.value.message and "bash" not in err.value.message
    with pytest.raises(ResolutionError, match=r"'webservr' \(did you mean: webserver\?\)"):
        resolve([r], ["webservr"])
    with pytest.raises(ResolutionError, match=r"unknown packages 'bsh' \(did you mean: bash\?\), 'zzzzzz'"):
        resolve([r], ["bsh", "zzzzzz"])
    with pytest.raises(ResolutionError, match="wanted but excluded: bash"):
        resolve([r], ["bash"], exclude=["ba*"])
    with pytest.raises(ResolutionError, match=r"package list entry '\(bash or': malformed dependency"):
        resolve([r], ["(bash or"])


def test_wanted_provides_and_why(real_repos):
    repos = real_repos.load("gz")
    res = resolve(repos, ["capa", "/usr/bin/ls"])
    assert "multi" in names(res) and "coreutils" in names(res)
    assert str(res.reasons["multi"]).startswith("wanted (as provider of 'capa')")
    res = resolve(repos, ["app"])
    assert res.chain("corelib") == ["app", "corelib"]
    assert res.why("corelib") == "required by app for 'libcore.so.1()(64bit)'"
    assert res.why("helper").startswith("required by tool for 'helper >= 2.0' in '(helper >= 2.0 or althelper)'")
    assert "via app -> tool -> helper" in res.why("helper")
    assert res.size_package == sum(p.size_package for p in res.packages)
    assert [p.name for p in res.packages] == sorted(p.name for p in res.packages)
