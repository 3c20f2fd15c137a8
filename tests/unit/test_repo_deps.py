"""Dependency strings: plain, versioned, file paths and RPM rich/boolean dependencies."""

from __future__ import annotations

import pytest

from levitate.repo.deps import (AND, IF, OR, UNLESS, WITH, WITHOUT, Dep, DepParseError, Rich, evaluate,
                                parse_dep, parse_requirement, providers, terms)
from levitate.rpm.vercmp import EQ, EVR, GT, LT
from tests.cheat_aware import cheat_aware


def test_plain_versioned_and_file_deps():
    assert parse_requirement("bash") == Dep("bash")
    assert parse_requirement("  bash  ") == Dep("bash")
    assert parse_requirement("openssl >= 1:3.0-2.el10") == Dep("openssl", GT | EQ, EVR(1, "3.0", "2.el10"))
    assert parse_requirement("foo < 2") == Dep("foo", LT, EVR(0, "2", None))
    assert parse_requirement("foo = 1.0~rc1") == Dep("foo", EQ, EVR(0, "1.0~rc1", None))
    assert parse_requirement("/usr/bin/sh") == Dep("/usr/bin/sh")
    assert parse_requirement("/usr/bin/sh").is_file
    # Parentheses inside a name balance, as rpm reads them.
    assert parse_requirement("libc.so.6(GLIBC_2.34)(64bit)") == Dep("libc.so.6(GLIBC_2.34)(64bit)")
    assert str(Dep("openssl", GT | EQ, EVR(1, "3.0", "2"))) == "openssl >= 1:3.0-2"


@cheat_aware(protects="every rich-dependency form Rocky packages use is understood, nested and versioned",
             cheats=["treating a rich dep as one opaque name", "only handling 'or'",
                     "ignoring the version inside a rich term"],
             consequence="packages with (a if b) or (a or b) requirements resolve to a broken or bloated set")
def test_rich_forms():
    a, b, c = Dep("a"), Dep("b"), Dep("c")
    assert parse_requirement("(a or b)") == Rich(OR, (a, b))
    assert parse_requirement("(a or b or c)") == Rich(OR, (a, b, c))
    assert parse_requirement("(a and b)") == Rich(AND, (a, b))
    assert parse_requirement("(a if b)") == Rich(IF, (a, b))
    assert parse_requirement("(a if b else c)") == Rich(IF, (a, b, c))
    assert parse_requirement("(a unless b)") == Rich(UNLESS, (a, b))
    assert parse_requirement("(a unless b else c)") == Rich(UNLESS, (a, b, c))
    assert parse_requirement("(a with b)") == Rich(WITH, (a, b))
    assert parse_requirement("(a without b)") == Rich(WITHOUT, (a, b))
    foo = Dep("foo", GT | EQ, EVR(0, "1.0", None))
    assert parse_requirement("(foo >= 1.0 or bar)") == Rich(OR, (foo, Dep("bar")))
    nested = parse_requirement("((a and b) or (c if d else (e with f)))")
    assert nested == Rich(OR, (Rich(AND, (a, b)), Rich(IF, (c, Dep("d"), Rich(WITH, (Dep("e"), Dep("f")))))))
    assert parse_requirement("(libfoo.so.1()(64bit) or /usr/bin/foo)") == \
        Rich(OR, (Dep("libfoo.so.1()(64bit)"), Dep("/usr/bin/foo")))
    assert parse_requirement("(foo)") == Dep("foo")
    # A rich dep read from repodata stays whole in Dep.name until needed.
    assert parse_dep("(a or b)") == Dep("(a or b)")
    assert [t.name for t in terms(nested)] == ["a", "b", "c", "d", "e", "f"]
    assert str(parse_requirement("(foo >= 1.0 or (b if c else d))")) == "(foo >= 1.0 or (b if c else d))"


@pytest.mark.parametrize("text,fragment", [
    ("(a or b", "missing ')'"),
    ("(a or b) c", "unexpected text"),
    ("(a or b and c)", "cannot chain"),
    ("(a if b if c)", "cannot be chained"),
    ("(a else b)", "'else' only follows"),
    ("(a or)", "expected a name"),
    ("(a xor b)", "expected an operator"),
    ("foo >=", "without a version"),
    ("foo >= :", "bad version"),
    ("", "empty dependency"),
    ("(a with (b if c))", "not allowed inside"),
    ("(or)", "expected a name"),
])
@cheat_aware(protects="malformed dependency strings fail with a clear message naming the input",
             cheats=["silently treating malformed text as a package name"],
             consequence="a typo in packages.txt or a broken package leads to a confusing 'nothing provides' "
                         "or a traceback", severity="MEDIUM")
def test_malformed(text, fragment):
    with pytest.raises(DepParseError) as err:
        parse_requirement(text)
    assert fragment in err.value.message
    if text:
        assert repr(text.strip()) in err.value.message


def _oracle(world: dict[str, set[str]]):
    """world: package -> names it provides (unversioned)."""
    def what_provides(dep: Dep):
        return [pkg for pkg, provs in world.items() if dep.name in provs]
    return what_provides


def test_evaluate_semantics():
    world = _oracle({"A": {"a", "x"}, "B": {"b"}, "C": {"c", "x"}})
    ev = lambda s: evaluate(parse_requirement(s), world)   # noqa: E731
    assert ev("(a or z)") and not ev("(z or y)")
    assert ev("(a and b)") and not ev("(a and z)")
    assert ev("(a if b)") and ev("(z if y)") and not ev("(z if a)")       # true when the condition is false
    assert ev("(a if z else c)") and not ev("(a if z else q)")
    assert ev("(z unless a)") and ev("(a unless z)") and not ev("(z unless y)")
    assert ev("(z unless a else b)") and not ev("(a unless b else z)") and not ev("(z unless y else a)")
    assert ev("(a with x)") and not ev("(a with c)")                       # one package must do both
    assert ev("(x without c)") and not ev("(c without x)")
    assert providers(parse_requirement("(x without a)"), world) == {"C"}
    assert providers(parse_requirement("(x with (a or c))"), world) == {"A", "C"}
