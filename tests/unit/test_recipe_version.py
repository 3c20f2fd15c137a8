"""Recipe versions and dependency constraints (semver where it parses, rpmvercmp otherwise)."""

import pytest

from levitate.recipe.version import VersionError, compare, parse_constraints, parse_requirement


@pytest.mark.parametrize("a, b, expected", [
    ("1.0.0", "1.0.0", 0), ("1.0", "1.0.0", 0), ("v1.2.3", "1.2.3", 0), ("1.2.3+build5", "1.2.3", 0),
    ("1.10.0", "1.9.9", 1), ("2.0.0", "10.0.0", -1),
    ("1.0.0-alpha", "1.0.0", -1), ("1.0.0-alpha", "1.0.0-alpha.1", -1), ("1.0.0-alpha.2", "1.0.0-alpha.10", -1),
    ("1.0.0-beta", "1.0.0-alpha.9", 1), ("1.0.0-rc.1", "1.0.0", -1),
    ("1.1.1w", "1.1.1v", 1), ("1.1.1w", "1.1.1", 1), ("1.1.1a", "1.1.2", -1),
    ("2024.01", "2024.02", -1), ("2024.10", "2024.9", 1), ("2024.01a", "2024.01", 1),
])
def test_compare(a, b, expected):
    assert compare(a, b) == expected
    assert compare(b, a) == -expected


@pytest.mark.parametrize("constraint, yes, no", [
    (">= 3.0", ["3.0", "3.0.1", "10"], ["2.9.9", "3.0.0-rc1"]),
    ("> 1.2", ["1.2.1"], ["1.2", "1.0"]),
    ("<= 1.2", ["1.2", "1.1"], ["1.2.1"]),
    ("< 2", ["1.99"], ["2.0.0"]),
    ("= 1.2.3", ["1.2.3", "v1.2.3"], ["1.2.4"]),
    ("1.2.3", ["1.2.3"], ["1.2"]),
    ("^1.2.3", ["1.2.3", "1.9.0"], ["2.0.0", "1.2.2"]),
    ("^0.2.3", ["0.2.9"], ["0.3.0"]),
    ("^0.0.3", ["0.0.3"], ["0.0.4"]),
    ("~1.2.3", ["1.2.9"], ["1.3.0"]),
    ("~1", ["1.9"], ["2.0"]),
    (">= 1.1.1, < 1.1.2", ["1.1.1w"], ["1.1.2", "1.1.0"]),
    ("^2024.01", ["2024.05"], ["2025.01"]),
])
def test_constraints(constraint, yes, no):
    cs = parse_constraints(constraint)
    for v in yes:
        assert all(c.allows(v) for c in cs), (constraint, v)
    for v in no:
        assert not all(c.allows(v) for c in cs), (constraint, v)


def test_requirements():
    r = parse_requirement("openssl >= 3.0")
    assert r.name == "openssl" and r.allows("3.1") and not r.allows("1.1.1w")
    assert str(r) == "openssl >= 3.0"
    assert parse_requirement("zlib").allows("anything")
    assert parse_requirement("python3.11").name == "python3.11"
    assert parse_requirement("foo^1.2").allows("1.5")
    assert parse_requirement("bar >=1, <2").allows("1.5")
    with pytest.raises(VersionError):
        parse_requirement("openssl 3.0")
    with pytest.raises(VersionError):
        parse_requirement(">= 3")
    with pytest.raises(VersionError):
        parse_constraints(">=")
