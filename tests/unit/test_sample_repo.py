"""The rules the sample repository is built by (tests/sample_repo/mapping.py, rpmspec.py): Debian
versions and relationships turned into RPM ones, merged-/usr paths, %files escaping. The version
checks use dpkg and rpm themselves as the oracle where they are installed."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.cheat_aware import cheat_aware
from tests.sample_repo.mapping import (Member, Rel, RpmEVR, deb_to_evr, debvercmp, merged_link_target,
                                       merged_usr, parse_relations, relations_to_rpm, satisfies)
from tests.sample_repo.rpmspec import files_path


@pytest.mark.parametrize("deb, evr", [
    ("2.36-9+deb12u14", RpmEVR(None, "2.36", "9+deb12u14")),
    ("1:5.44-3", RpmEVR(1, "5.44", "3")),
    ("10.0.0", RpmEVR(None, "10.0.0", "0")),                    # native: release "0"
    ("252.39-1~deb12u2", RpmEVR(None, "252.39", "1~deb12u2")),
    ("1:1.35.0-4+deb12u1+b1", RpmEVR(1, "1.35.0", "4+deb12u1+b1")),
    ("1.2-3-4", RpmEVR(None, "1.2_3", "4")),                     # '-' is not allowed in Version
    ("0:1.0", RpmEVR(None, "1.0", "0")),
])
def test_debian_version_to_evr(deb, evr):
    assert deb_to_evr(deb) == evr


def test_evr_string_keeps_epoch_and_release():
    assert str(deb_to_evr("1:5.44-3")) == "1:5.44-3"
    assert str(deb_to_evr("2.34")) == "2.34-0"


@cheat_aware(protects="dependencies carried from Debian keep their meaning as RPM requirements",
             cheats=["drop versions", "turn alternatives into separate hard Requires"],
             consequence="the sample set resolves differently from what apt proved consistent, so "
                         "resolver tests pass or fail for the wrong reasons")
def test_relations_become_rpm_requirements():
    field = ("libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, perl:any, libc-bin (>> 2.36),\n"
             " foo (<< 1:2.0-1~), bar (= 3.0-1), baz (<= 4), busybox (>= 1:1.22.0-17~) | busybox-static [amd64]")
    assert relations_to_rpm(field) == [
        "libc6 >= 2.34-0",
        "(debconf >= 0.5-0 or debconf-2.0)",
        "perl",
        "libc-bin > 2.36-0",
        "foo < 1:2.0-1~",
        "bar = 3.0-1",
        "baz <= 4-0",
        "(busybox >= 1:1.22.0-17~ or busybox-static)",
    ]
    assert relations_to_rpm("") == [] and relations_to_rpm(None) == []


def test_unparseable_relation_is_an_error():
    with pytest.raises(ValueError):
        parse_relations("foo (>= )")


PAIRS = [("2.36-9+deb12u14", "2.36"), ("1:5.44-3", "5.45"), ("1.0~rc1", "1.0"), ("1.0", "1.0-0"),
         ("0.142+deb12u3", "0.120+deb8u2"), ("2.0.12-1", "2.0.4-8~"), ("1.02.185-2", "1.02.185-2"),
         ("4.18.0+dfsg-1+deb12u1", "4.17.0+dfsg1"), ("6.1.192-2", "6.1.192-2~bpo"), ("1.9.13p3-1", "1.9.13-1"),
         ("252.39-1~deb12u2", "252.39-1"), ("1:1.35.0-4+deb12u1+b1", "1:1.22.0-17~"), ("3.11.2-6", "3.11.2-6+b1")]


@pytest.mark.skipif(not shutil.which("dpkg"), reason="needs dpkg as the oracle")
@pytest.mark.parametrize("a, b", PAIRS)
def test_debian_version_order_matches_dpkg(a, b):
    def dpkg(op):
        return subprocess.run(["dpkg", "--compare-versions", a, op, b]).returncode == 0
    c = debvercmp(a, b)
    assert (c < 0, c == 0, c > 0) == (dpkg("lt"), dpkg("eq"), dpkg("gt"))


@pytest.mark.skipif(not (shutil.which("dpkg") and shutil.which("rpm")), reason="needs dpkg and rpm")
def test_rpm_orders_mapped_versions_as_dpkg_orders_the_originals():
    """Where both sides are real package versions or requirement bounds from the set, the EVRs
    the builder writes must compare under rpm as the Debian versions compare under dpkg."""
    lua = "".join(f'print(rpm.vercmp("{deb_to_evr(a)}", "{deb_to_evr(b)}") .. " ");' for a, b in PAIRS)
    got = subprocess.run(["rpm", "--eval", "%{lua:" + lua + "}"], capture_output=True, text=True,
                         check=True).stdout.split()
    for (a, b), rpm_says in zip(PAIRS, got, strict=True):
        dpkg_lt = subprocess.run(["dpkg", "--compare-versions", a, "lt", b]).returncode == 0
        dpkg_gt = subprocess.run(["dpkg", "--compare-versions", a, "gt", b]).returncode == 0
        assert int(rpm_says) == (-1 if dpkg_lt else 1 if dpkg_gt else 0), (a, b)


def test_versioned_relation_needs_a_versioned_provides():
    unversioned = Member("mawk", "1.3.4-1", (Rel("awk"),))
    versioned = Member("perl-base", "5.36.0-7", (Rel("libscalar-list-utils-perl", "=", "1:1.62"),))
    assert satisfies(Rel("awk"), unversioned)
    assert not satisfies(Rel("awk", ">=", "1"), unversioned)
    assert satisfies(Rel("libscalar-list-utils-perl", ">=", "1:1.5"), versioned)
    assert not satisfies(Rel("libscalar-list-utils-perl", ">>", "1:1.62"), versioned)
    assert satisfies(Rel("perl-base", ">=", "5.36"), versioned)


@pytest.mark.parametrize("path, merged", [
    ("/bin/bash", "/usr/bin/bash"), ("/sbin/ip", "/usr/sbin/ip"), ("/lib", "/usr/lib"),
    ("/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6"),
    ("/lib64/ld-linux-x86-64.so.2", "/usr/lib64/ld-linux-x86-64.so.2"),
    ("/usr/bin/ls", "/usr/bin/ls"), ("/binaries/x", "/binaries/x"), ("/etc/lib/x", "/etc/lib/x"),
])
def test_merged_usr(path, merged):
    assert merged_usr(path) == merged


def test_symlink_targets_follow_the_merge():
    # relative link that crosses into /usr from /bin: must not become ../usr/bin/... under /usr/bin
    assert merged_link_target("/bin/x", "../usr/bin/y", "/usr/bin/x") == "y"
    # relative link inside a moved directory keeps working unchanged
    assert merged_link_target("/lib/x86_64-linux-gnu/libz.so.1", "libz.so.1.2.13",
                              "/usr/lib/x86_64-linux-gnu/libz.so.1") == "libz.so.1.2.13"
    # relative link from /usr into /lib
    assert merged_link_target("/usr/lib/x/libfoo.so", "../../../lib/x/libfoo.so.1",
                              "/usr/lib/x/libfoo.so") == "libfoo.so.1"
    # absolute targets are mapped too
    assert merged_link_target("/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                              "/usr/lib64/ld-linux-x86-64.so.2") == "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
    assert merged_link_target("/etc/os-release", "../usr/lib/os-release", "/etc/os-release") == "../usr/lib/os-release"


def test_files_paths_are_escaped_for_rpm():
    assert files_path("/usr/bin/[") == '"/usr/bin/[[]"'
    assert files_path("/usr/share/a b/c%d") == '"/usr/share/a b/c%%d"'
    assert files_path("/usr/lib/systemd/system/system-systemd\\x2dcryptsetup.slice") == \
        '"/usr/lib/systemd/system/system-systemd\\x2dcryptsetup.slice"'
    with pytest.raises(ValueError):
        files_path('/a"b')
