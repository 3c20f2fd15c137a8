"""Dependency resolution: from a list of wanted names to a closed, conflict-free package set.

The resolver is a deterministic worklist, not a SAT solver. What it does, in order:

1. Wanted entries (`bash`, `openssl >= 3.0`, a provide such as `/usr/bin/python3`, a NEVRA, or a
   rich expression) are chosen first, so a requirement that a wanted package satisfies never
   pulls in an alternative.
2. Requirements of chosen packages are processed first in, first out. One that a chosen package
   already satisfies costs nothing. One with a single possible provider is satisfied at once.
   One with several (differently named) possible providers, and `(a or b)`-style rich deps, are
   DEFERRED until nothing unambiguous is left, so that forced choices land first and often make
   the ambiguous one moot.
3. Conditionals (`(a if b)`, `(a if b else c)`, `(a unless b)`, ...) are evaluated when the set
   is otherwise complete, and re-evaluated until a fixpoint: the set only grows, so `(a if b)`
   fires as soon as b gets in. An `else` branch chosen while its condition was false stays in
   the set if the condition later becomes true (the then-branch is added as well).
4. A file requirement that no package satisfies from primary data (which lists only `*bin/*` and
   `/etc/*` files) is looked up, in one batch, through `load_filelists(paths)`.
5. Weak dependencies (Recommends, Supplements) only when `weak_deps`: a Recommends that cannot
   be satisfied is skipped and noted, never an error.
6. Finally Conflicts and Obsoletes between chosen packages are checked.

Provider choice (when several packages could satisfy a requirement) applies these rules in
order, each one keeping the best candidates of the previous; the rule that leaves one candidate
is recorded (`Reason.rule`, `Resolution.choices`):

    1. "pinned by the profile": `pins[requirement]` (the requirement's name, or its full text,
       e.g. "/usr/bin/sh" or "(a or b)") names the package; a pin that cannot satisfy the
       requirement is an error, never silently ignored
    2. "avoids a conflict": candidates that conflict with, obsolete or are obsoleted by a chosen
       package are dropped, unless all are
    3. "named in the package list" (wanted packages are chosen before anything else, so a
       requirement they satisfy never reaches this point: that is the "already chosen" case)
    4. "name equals the requirement"
    5. "newest version" (EVR)
    6. "preferred architecture": the target arch, then noarch, then other compatible arches
       (x86_64_v2..v4); i686 and other multilib arches are never candidates on x86_64
    7. "first by name"
For `(a or b)` the first alternative that can be satisfied is taken ("first satisfiable
alternative"), unless a pin on the whole expression names a provider of a later one.

One package per name: the newest version matching every requirement seen on that name. When a
requirement needs another version than the one chosen (`foo < 2` after foo-2.0 was chosen), the
resolution restarts with that requirement as a constraint on foo, and records why.

Obsoletes: when a chosen package obsoletes another chosen one, the obsoleted package is DROPPED
(as dnf replaces it) and the resolution restarts without it, unless it is wanted: then it is an
error, like a conflict. Obsoletes match package names only, as in rpm.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..rpm.vercmp import EQ, GT, LT, evrcmp, ranges_overlap
from ..util.errors import LevitateError
from .deps import (AND, IF, OR, UNLESS, Dep, DepParseError, Expr, Rich, as_expr,
                   evaluate, parse_requirement, providers, terms)
from .repodata import Package, Repository, gc_paused

# Architectures a target can install, best first. Multilib (i686 on x86_64) is excluded.
ARCH_COMPAT: dict[str, tuple[str, ...]] = {
    "x86_64": ("x86_64", "noarch", "x86_64_v2", "x86_64_v3", "x86_64_v4"),
    "aarch64": ("aarch64", "noarch"),
    "ppc64le": ("ppc64le", "noarch"),
    "s390x": ("s390x", "noarch"),
    "riscv64": ("riscv64", "noarch"),
    "i686": ("i686", "noarch", "i586", "i486", "i386"),
    "noarch": ("noarch",),
}

RULE_ONLY = "only provider"
RULE_NO_CONFLICT = "avoids a conflict"
RULE_PIN = "pinned by the profile"
RULE_WANTED = "named in the package list"
RULE_NAME = "name equals the requirement"
RULE_EVR = "newest version"
RULE_ARCH = "preferred architecture"
RULE_ALPHA = "first by name"
RULE_FIRST_ALTERNATIVE = "first satisfiable alternative"

_SENSE = LT | GT | EQ
_MAX_RESTARTS = 200


class ResolutionError(LevitateError):
    """The wanted set cannot be resolved. `problems` lists each problem as one line."""

    exit_code = 6

    def __init__(self, message: str, hint: str | None = None, problems: Sequence[str] = ()):
        super().__init__(message, hint)
        self.problems = list(problems) or [message]


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a package is in the set."""

    kind: str                       # "wanted" | "required" | "recommended" | "supplements"
    by: str | None = None           # the package that pulled it in (None when wanted)
    requirement: str | None = None  # the requirement it satisfies
    rule: str | None = None         # the provider-choice rule that picked it
    within: str | None = None       # the rich dep `requirement` is part of, e.g. "(a or b)"

    def __str__(self) -> str:
        within = f" in '{self.within}'" if self.within else ""
        if self.kind == "wanted":
            return f"wanted (as provider of '{self.requirement}'{within})" if self.requirement else "wanted"
        verb = {"required": "required by", "recommended": "recommended by",
                "supplements": "supplements"}.get(self.kind, self.kind)
        text = f"{verb} {self.by}" if self.by else verb
        if self.requirement:
            text += f" for '{self.requirement}'{within}"
        if self.rule and self.rule != RULE_ONLY:
            text += f" (chosen: {self.rule})"
        return text


@dataclass(frozen=True, slots=True)
class Choice:
    """A requirement that several packages could satisfy, and which one was taken, by what rule."""

    requirement: str
    required_by: str | None
    candidates: tuple[str, ...]     # NEVRAs, in the order considered
    chosen: str                     # NEVRA
    rule: str

    def __str__(self) -> str:
        who = f"{self.required_by} requires" if self.required_by else "wanted"
        return (f"{who} '{self.requirement}': chose {self.chosen} among {', '.join(self.candidates)} "
                f"({self.rule})")


@dataclass(slots=True)
class Resolution:
    """The resolved set: packages sorted by name, why each is there, and the choices made."""

    packages: list[Package]
    reasons: dict[str, Reason]
    choices: list[Choice] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)   # weak deps that could not be satisfied
    notes: list[str] = field(default_factory=list)     # version constraints, dropped packages

    @property
    def by_name(self) -> dict[str, Package]:
        return {p.name: p for p in self.packages}

    def chain(self, name: str) -> list[str]:
        """Names from a wanted package down to `name`: ["bash", "coreutils", "libacl"]."""
        out: list[str] = []
        seen: set[str] = set()
        while name is not None and name not in seen:
            seen.add(name)
            out.append(name)
            reason = self.reasons.get(name)
            name = reason.by if reason else None    # type: ignore[assignment]
        return out[::-1]

    def why(self, name: str) -> str:
        reason = self.reasons.get(name)
        if reason is None:
            return f"{name} is not in the set"
        text = str(reason)
        chain = self.chain(name)
        if len(chain) > 2:
            text += f" (via {' -> '.join(chain)})"
        return text

    @property
    def size_package(self) -> int:
        return sum(p.size_package for p in self.packages)

    @property
    def size_installed(self) -> int:
        return sum(p.size_installed for p in self.packages)


LoadFilelists = Callable[[frozenset[str]], Mapping[str, Sequence[Package]]]


# --------------------------------------------------------------------------------------------
# The pool: every installable package, indexed


class Pool:
    """Installable packages of `repos` for `arch`, minus exclusions, with provides/file indexes.
    The same NEVRA in two repositories is kept once (from the first)."""

    def __init__(self, repos: Sequence[Repository], arch: str = "x86_64", exclude: Iterable[str] = ()):
        with gc_paused():
            self._build(repos, arch, exclude)

    def _build(self, repos: Sequence[Repository], arch: str, exclude: Iterable[str]) -> None:
        self.repos = list(repos)
        self.arch = arch
        compat = ARCH_COMPAT.get(arch, (arch, "noarch"))
        self.arch_rank = {a: i for i, a in enumerate(compat)}
        patterns = [e for e in exclude if any(c in e for c in "*?[")]
        plain = {e for e in exclude if e not in patterns}
        self.exclude_plain = plain
        self.exclude_patterns = patterns
        self.excluded_names: set[str] = set()
        packages: list[Package] = []
        seen: set[tuple] = set()
        arch_rank = self.arch_rank
        for repo in self.repos:
            for p in repo.packages:
                if p.arch not in arch_rank:
                    continue
                if p.name in plain or (patterns and any(fnmatch.fnmatchcase(p.name, pat) for pat in patterns)):
                    self.excluded_names.add(p.name)
                    continue
                key = (p.name, p.evr, p.arch)
                if key in seen:
                    continue
                seen.add(key)
                packages.append(p)
        self.packages = packages
        self.order = {p: i for i, p in enumerate(packages)}
        by_name: dict[str, list[Package]] = {}
        provides: dict[str, list[tuple[Package, Dep]]] = {}
        for p in packages:
            by_name.setdefault(p.name, []).append(p)
            name = p.name
            has_self = False
            for d in p.provides:
                entry = provides.get(d.name)
                if entry is None:
                    provides[d.name] = [(p, d)]
                else:
                    entry.append((p, d))
                if d.name == name and d.flags == EQ:
                    has_self = True
            if not has_self:
                provides.setdefault(name, []).append((p, Dep(name, EQ, p.evr)))
        cmp = functools.cmp_to_key(self.compare)
        for name, pkgs in by_name.items():
            if len(pkgs) > 1:
                pkgs.sort(key=cmp)
        self.by_name = by_name
        self.provides = provides
        self._files: dict[str, list[Package]] | None = None
        self._cache: dict[Dep, list[Package]] = {}
        self.filelists_loaded: set[str] = set()

    def compare(self, a: Package, b: Package) -> int:
        """Best first: newest EVR, then preferred arch, then repository order (stable sort)."""
        c = evrcmp(b.evr, a.evr)
        if c:
            return c
        return self.arch_rank[a.arch] - self.arch_rank[b.arch]

    @property
    def files(self) -> dict[str, list[Package]]:
        if self._files is None:
            files: dict[str, list[Package]] = {}
            for p in self.packages:
                for f in p.files:
                    entry = files.get(f)
                    if entry is None:
                        files[f] = [p]
                    elif entry[-1] is not p:
                        entry.append(p)
            self._files = files
        return self._files

    def add_files(self, mapping: Mapping[str, Sequence[Package]]) -> None:
        """Merge file owners found in filelists (packages outside the pool are ignored)."""
        members = self.order
        files = self.files
        for path, pkgs in mapping.items():
            entry = files.setdefault(path, [])
            for p in pkgs:
                if p in members and p not in entry:
                    entry.append(p)
        self._cache = {d: v for d, v in self._cache.items() if not d.name.startswith("/")}

    def what_provides(self, dep: Dep) -> list[Package]:
        """Packages of the pool satisfying a simple dep (provides, plus file lists for paths)."""
        cached = self._cache.get(dep)
        if cached is not None:
            return cached
        entries = self.provides.get(dep.name, ())
        if dep.flags & _SENSE and dep.evr is not None:
            flags, evr = dep.flags, dep.evr
            found = dict.fromkeys(p for p, d in entries if ranges_overlap(flags, evr, d.flags, d.evr))
        else:
            found = dict.fromkeys(p for p, _ in entries)
        if dep.name.startswith("/"):
            found.update(dict.fromkeys(self.files.get(dep.name, ())))
        out = list(found)
        self._cache[dep] = out
        return out


    def satisfies(self, pkg: Package, expr: Expr) -> bool:
        """Does `pkg` alone satisfy `expr`?"""
        return evaluate(expr, lambda dep: [pkg] if pkg in self.what_provides(dep) else [])


# --------------------------------------------------------------------------------------------
# The resolver


@dataclass(slots=True, eq=False)
class _Item:
    expr: Expr
    requirer: Package | None
    text: str
    weak: bool = False
    pin: str | None = None          # a pin inherited from an enclosing rich dep
    origin: str | None = None       # the whole rich dep this item is a part of

    def part(self, expr: Expr, pin: str | None = None) -> "_Item":
        return _Item(expr, self.requirer, str(expr), self.weak, pin or self.pin, self.origin or self.text)


class _Restart(Exception):
    def __init__(self, *, constraint: tuple[str, Expr, str, str | None] | None = None,
                 drop: tuple[str, str] | None = None):
        self.constraint = constraint   # (name, expr, text, requirer name)
        self.drop = drop               # (name, note)


@functools.lru_cache(maxsize=65536)
def _expr_of(dep: Dep) -> Expr:
    return as_expr(dep)


class _Run:
    """One resolution attempt with a fixed set of constraints and dropped names."""

    def __init__(self, resolver: "Resolver", constraints, dropped: set[str]):
        self.r = resolver
        self.pool = resolver.pool
        self.constraints: dict[str, list[tuple[Expr, str, str | None]]] = constraints
        self.dropped = dropped
        self.chosen: dict[str, Package] = {}
        self.reasons: dict[str, Reason] = {}
        self.choices: list[Choice] = []
        self.skipped: list[str] = []
        self.queue: deque[_Item] = deque()
        self.deferred: deque[_Item] = deque()
        self.rich_items: list[_Item] = []
        self.rich_seen: set[int] = set()
        self.file_waits: list[_Item] = []
        self.satisfied_cache: set[Dep] = set()
        # name -> [(package, dep)] of chosen packages' conflicts and obsoletes, for quick checks
        self.conflict_index: dict[str, list[tuple[Package, Dep]]] = {}
        self.obsolete_index: dict[str, list[tuple[Package, Dep]]] = {}

    # -- queries over the chosen set -----------------------------------------------------------

    def is_chosen(self, p: Package) -> bool:
        return self.chosen.get(p.name) is p

    def chosen_providers(self, dep: Dep) -> list[Package]:
        return [p for p in self.pool.what_provides(dep) if self.chosen.get(p.name) is p]

    def satisfied(self, dep: Dep) -> bool:
        if dep in self.satisfied_cache:
            return True
        chosen = self.chosen
        for p in self.pool.what_provides(dep):
            if chosen.get(p.name) is p:
                self.satisfied_cache.add(dep)
                return True
        return False

    def true_now(self, expr: Expr) -> bool:
        if isinstance(expr, Dep):
            return self.satisfied(expr)
        return evaluate(expr, self.chosen_providers)

    def allowed(self, p: Package) -> bool:
        """May `p` join the set? (one version per name, constraints, dropped names)"""
        current = self.chosen.get(p.name)
        if current is not None:
            return current is p
        if p.name in self.dropped:
            return False
        cons = self.constraints.get(p.name)
        if cons and not all(self.pool.satisfies(p, expr) for expr, _, _ in cons):
            return False
        return True

    def candidates(self, dep: Dep) -> list[Package]:
        return [p for p in self.pool.what_provides(dep) if self.allowed(p)]

    def possible(self, expr: Expr) -> bool:
        return evaluate(expr, self.candidates)

    def clashes(self, p: Package) -> bool:
        """Would `p` conflict with, obsolete, or be obsoleted by a chosen package?"""
        chosen = self.chosen
        for d in p.conflicts:
            for q in self.chosen_providers(d) if not d.is_rich else ():
                if q is not p and q.name != p.name:
                    return True
        for d in p.obsoletes:
            q = chosen.get(d.name)
            if q is not None and q.name != p.name and ranges_overlap(d.flags, d.evr, EQ, q.evr):
                return True
        for d in (p.self_provide, *p.provides):
            for q, c in self.conflict_index.get(d.name, ()):
                if q.name != p.name and ranges_overlap(c.flags, c.evr, d.flags, d.evr):
                    return True
        for q, o in self.obsolete_index.get(p.name, ()):
            if q.name != p.name and ranges_overlap(o.flags, o.evr, EQ, p.evr):
                return True
        return False

    # -- adding ----------------------------------------------------------------------------------

    def add(self, p: Package, reason: Reason) -> None:
        self.chosen[p.name] = p
        self.reasons[p.name] = reason
        queue = self.queue
        for d in p.requires:
            if d.name.startswith("rpmlib("):
                continue
            queue.append(_Item(_expr_of(d), p, str(d)))
        if self.r.weak_deps:
            for d in p.recommends:
                queue.append(_Item(_expr_of(d), p, str(d), weak=True))
        for d in p.conflicts:
            if not d.is_rich:
                self.conflict_index.setdefault(d.name, []).append((p, d))
        for d in p.obsoletes:
            self.obsolete_index.setdefault(d.name, []).append((p, d))

    # -- choosing --------------------------------------------------------------------------------

    def choose(self, cands: list[Package], req_name: str, item: _Item) -> tuple[Package, str]:
        """Apply the provider-choice rules; record the choice when there was one to make."""
        pin = item.pin or self.r.pins.get(item.text) or self.r.pins.get(req_name)
        rule = RULE_ONLY if len(cands) == 1 else RULE_ALPHA
        current = cands
        if pin is not None:
            current = [p for p in cands if p.name == pin]
            if not current:
                names = ", ".join(sorted({p.name for p in cands}))
                raise ResolutionError(
                    f"the profile pins '{req_name}' to '{pin}', but {pin} cannot satisfy "
                    f"'{item.text}' (possible providers: {names})",
                    "fix the pin in profile.toml (resolve.pins) or remove it")
            if len(current) == 1 and len(cands) > 1:
                rule = RULE_PIN
        wanted = self.r.wanted_names
        steps: tuple[tuple[str, Callable[[list[Package]], list[Package]]], ...] = (
            (RULE_NO_CONFLICT, lambda ps: [p for p in ps if not self.clashes(p)]),
            (RULE_WANTED, lambda ps: [p for p in ps if p.name in wanted]),
            (RULE_NAME, lambda ps: [p for p in ps if p.name == req_name]),
            (RULE_EVR, self._newest),
            (RULE_ARCH, self._best_arch),
            (RULE_ALPHA, lambda ps: [min(ps, key=lambda p: p.name)]),
        )
        for name, step in steps:
            if len(current) == 1:
                break
            kept = step(current)
            if kept and len(kept) < len(current):
                current = kept
                if len(current) == 1:
                    rule = name
        chosen = current[0]
        if len(cands) > 1:
            self.choices.append(Choice(item.text, item.requirer.name if item.requirer else None,
                                       tuple(p.nevra for p in cands), chosen.nevra, rule))
        return chosen, rule

    @staticmethod
    def _newest(ps: list[Package]) -> list[Package]:
        best = ps[0]
        for p in ps[1:]:
            if evrcmp(p.evr, best.evr) > 0:
                best = p
        return [p for p in ps if evrcmp(p.evr, best.evr) == 0]

    def _best_arch(self, ps: list[Package]) -> list[Package]:
        rank = self.pool.arch_rank
        best = min(rank[p.arch] for p in ps)
        return [p for p in ps if rank[p.arch] == best]

    # -- requirements ----------------------------------------------------------------------------

    def process(self, item: _Item, decide: bool) -> None:
        """Make `item` true, or defer it (when not `decide` and the choice is ambiguous)."""
        expr = item.expr
        if isinstance(expr, Dep):
            if self.satisfied(expr):
                return
            cands = self.candidates(expr)
            if not cands:
                self.missing(item, expr)
                return
            if not decide and len(cands) > 1 and len({p.name for p in cands}) > 1:
                self.deferred.append(item)
                return
            self.take(cands, expr.name, item)
            return
        op = expr.op
        if op == AND:
            for arg in expr.args:
                self.process(item.part(arg), decide)
            return
        if id(item) not in self.rich_seen:
            # Rich deps are re-checked once the set is otherwise complete: a condition may have
            # become true since.
            self.rich_seen.add(id(item))
            self.rich_items.append(item)
        if op in (IF, UNLESS):
            # Conditionals are decided when the set is otherwise complete (see the module doc).
            if decide:
                self.decide_conditional(item)
            return
        if self.true_now(expr):
            return
        if not decide:
            self.deferred.append(item)
            return
        if op == OR:
            pin = item.pin or self.r.pins.get(item.text)
            for alt in expr.args:
                if pin is not None and pin not in {p.name for t in terms(alt) for p in self.candidates(t)}:
                    continue
                if self.possible(alt):
                    if len(expr.args) > 1:
                        self.choices.append(Choice(item.text, item.requirer.name if item.requirer else None,
                                                   tuple(str(a) for a in expr.args), str(alt),
                                                   RULE_PIN if pin else RULE_FIRST_ALTERNATIVE))
                    self.process(item.part(alt, pin), True)
                    return
            self.missing(item, expr)
            return
        # with / without: one package must satisfy the whole expression.
        order = self.pool.order
        cands = sorted(providers(expr, self.candidates), key=order.__getitem__)
        if not cands:
            self.missing(item, expr)
            return
        self.take(cands, terms(expr)[0].name, item)

    def decide_conditional(self, item: _Item) -> None:
        expr = item.expr
        assert isinstance(expr, Rich)
        if evaluate(expr, self.chosen_providers):
            return
        cond = self.true_now(expr.args[1])
        if expr.op == UNLESS:
            cond = not cond
        branch = expr.args[0] if cond else expr.args[2]
        self.process(item.part(branch), True)

    def take(self, cands: list[Package], req_name: str, item: _Item) -> None:
        chosen, rule = self.choose(cands, req_name, item)
        kind = "recommended" if item.weak else "required"
        if item.requirer is None:
            self.add(chosen, Reason("wanted", None, item.text, rule, item.origin))
        else:
            self.add(chosen, Reason(kind, item.requirer.name, item.text, rule, item.origin))

    def missing(self, item: _Item, expr: Expr) -> None:
        """Nothing allowed satisfies `expr`: wait for filelists, restart with a constraint,
        skip (weak) or fail with the chain."""
        if isinstance(expr, Dep):
            if (expr.name.startswith("/") and self.r.load_filelists is not None
                    and expr.name not in self.pool.filelists_loaded):
                self.file_waits.append(item)
                return
            blocked = [p for p in self.pool.what_provides(expr) if not self.allowed(p)]
            if blocked and not item.weak:
                self.version_clash(item, expr, blocked)
        if item.weak:
            by = item.requirer.name if item.requirer else "?"
            self.skipped.append(f"{by} recommends {item.text}: {self.r.nothing_provides(expr)}")
            return
        raise self.r.unresolvable(item, expr, self)

    def version_clash(self, item: _Item, dep: Dep, blocked: list[Package]) -> None:
        """Some package could satisfy `dep` but another version of it (or a dropped/constrained
        name) is in the way: restart with a constraint, or explain why that cannot work."""
        requirer = item.requirer.name if item.requirer else None
        for p in blocked:
            current = self.chosen.get(p.name)
            if p.name in self.dropped:
                continue
            known = [t for _, t, _ in self.constraints.get(p.name, ())]
            if current is not None and item.text not in known:
                raise _Restart(constraint=(p.name, dep, item.text, requirer))
        # Every blocker is excluded by constraints already recorded: they contradict each other.
        name = blocked[0].name
        if name in self.dropped:
            return
        others = "; ".join(f"{by or 'the package list'} requires '{text}'"
                           for _, text, by in self.constraints.get(name, ()))
        current = self.chosen.get(name)
        if current is not None and not others:
            others = f"{current.nevra} was chosen: {self.reasons[name]}"
        who = f"{requirer} requires" if requirer else "wanted"
        raise ResolutionError(
            f"{who} '{item.text}', but no single version of {name} satisfies every requirement "
            f"({others})" + self.r.needed_by(self, item.requirer),
            "the repositories hold incompatible packages; exclude one of them or pin another provider")

    # -- the loop --------------------------------------------------------------------------------

    def run(self) -> None:
        r = self.r
        # Plain names first, so that provides and rich entries see every named package chosen.
        items = r.wanted_items
        for item in [i for i in items if isinstance(i.expr, Dep) and i.expr.name in self.pool.by_name] + \
                [i for i in items if not (isinstance(i.expr, Dep) and i.expr.name in self.pool.by_name)]:
            self.add_wanted(item)
        while True:
            while self.queue:
                self.process(self.queue.popleft(), decide=False)
            if self.deferred:
                self.process(self.deferred.popleft(), decide=True)
                continue
            if self.file_waits:
                waits, self.file_waits = self.file_waits, []
                r.load_files({w.expr.name for w in waits})      # type: ignore[union-attr]
                self.queue.extend(waits)
                continue
            acted = False
            for item in list(self.rich_items):
                if item.requirer is not None and not self.is_chosen(item.requirer):
                    continue
                if not evaluate(item.expr, self.chosen_providers):
                    before = len(self.chosen)
                    self.process(item, decide=True)
                    acted = acted or len(self.chosen) != before or bool(self.queue)
            if acted or self.queue or self.deferred:
                continue
            if r.weak_deps and self.add_supplements():
                continue
            break
        self.check_conflicts()

    def add_wanted(self, item: _Item) -> None:
        expr = item.expr
        if isinstance(expr, Dep):
            named = self.pool.by_name.get(expr.name)
            if named:
                cands = [p for p in named if self.allowed(p)
                         and ranges_overlap(expr.flags, expr.evr, EQ, p.evr)]
                if not cands:
                    current = self.chosen.get(expr.name)
                    if current is not None and ranges_overlap(expr.flags, expr.evr, EQ, current.evr):
                        return
                    self.version_clash_wanted(item, expr, named)
                if self.chosen.get(expr.name) is not None:
                    return
                chosen, _ = self.choose(cands, expr.name, item)
                self.add(chosen, Reason("wanted", None, None, None))
                return
            nevra = self.r.nevra_index().get(expr.name)
            if nevra is not None and self.allowed(nevra):
                if not self.is_chosen(nevra):
                    self.add(nevra, Reason("wanted", None, None, None))
                return
        self.process(item, decide=True)

    def version_clash_wanted(self, item: _Item, dep: Dep, named: list[Package]) -> None:
        matching = [p for p in named if ranges_overlap(dep.flags, dep.evr, EQ, p.evr)]
        if not matching:
            available = ", ".join(p.nevra for p in named[:5])
            raise ResolutionError(f"no package matches '{item.text}' (available: {available})",
                                  "relax the version in the package list")
        self.version_clash(item, dep, matching)

    def add_supplements(self) -> bool:
        added = False
        for name in self.r.supplementers:
            if name in self.chosen:
                continue
            for p in self.pool.by_name[name]:
                if not self.allowed(p) or not p.supplements:
                    continue
                for d in p.supplements:
                    if evaluate(_expr_of(d), self.chosen_providers):
                        by = [q.name for t in terms(_expr_of(d)) for q in self.chosen_providers(t)]
                        self.add(p, Reason("supplements", by[0] if by else None, str(d), None))
                        added = True
                        break
                break           # only the best allowed version of each name
        return added

    def check_conflicts(self) -> None:
        problems: list[str] = []
        chosen = self.chosen
        for name in sorted(chosen):
            p = chosen[name]
            for d in p.obsoletes:
                q = chosen.get(d.name)
                if q is None or q.name == p.name or not ranges_overlap(d.flags, d.evr, EQ, q.evr):
                    continue
                if q.name in self.r.wanted_names:
                    problems.append(
                        f"{p.nevra} obsoletes {q.nevra} ('{d}'), but both are needed: "
                        f"{self.r.describe(self, p)}; {self.r.describe(self, q)}")
                else:
                    raise _Restart(drop=(q.name, f"dropped {q.nevra}: obsoleted by {p.nevra} ('{d}')"))
            for d in p.conflicts:
                expr = _expr_of(d)
                if isinstance(expr, Dep):
                    hits = [q for q in self.chosen_providers(expr) if q is not p and q.name != p.name]
                else:
                    hits = [q for t in terms(expr) for q in self.chosen_providers(t)
                            if q is not p] if evaluate(expr, self.chosen_providers) else []
                for q in hits:
                    problems.append(
                        f"{p.nevra} conflicts with {q.nevra} ('{d}'): "
                        f"{self.r.describe(self, p)}; {self.r.describe(self, q)}")
        if problems:
            raise ResolutionError(
                f"conflict: {problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
                "exclude one of the two packages, pin another provider, or remove what pulls it in",
                problems)


class Resolver:
    """Holds the inputs of one `resolve()` call; attempts are `_Run`s."""

    def __init__(self, repos, wanted, *, pins, weak_deps, exclude, arch, load_filelists, pool=None):
        self.repos = list(repos)
        self.pins = dict(pins)
        self.weak_deps = weak_deps
        self.arch = arch
        self.load_filelists = load_filelists
        self.pool = pool if pool is not None else Pool(self.repos, arch, exclude)
        self._nevra_index: dict[str, Package] | None = None
        self.wanted_items: list[_Item] = []
        self.wanted_names: set[str] = set()
        self._parse_wanted(wanted)
        self._check_pins()
        self.supplementers = sorted(n for n, ps in self.pool.by_name.items()
                                    if any(p.supplements for p in ps)) if weak_deps else []

    def _parse_wanted(self, wanted: Sequence[str]) -> None:
        unknown: list[str] = []
        excluded: list[str] = []
        for entry in wanted:
            try:
                expr = parse_requirement(entry)
            except DepParseError as exc:
                raise ResolutionError(f"package list entry {entry!r}: {exc.message}", exc.hint) from None
            if isinstance(expr, Dep):
                name = expr.name
                if name in self.pool.by_name:
                    self.wanted_names.add(name)
                elif self._is_excluded(name):
                    excluded.append(name)
                    continue
                elif self.pool.what_provides(expr) or self.pool.what_provides(Dep(name)):
                    pass
                elif name.startswith("/") and self.load_filelists is not None:
                    pass                    # a path only the full file lists may know
                elif name in self.nevra_index():
                    self.wanted_names.add(self.nevra_index()[name].name)
                else:
                    unknown.append(name)
                    continue
            self.wanted_items.append(_Item(expr, None, entry.strip()))
        if excluded:
            raise ResolutionError(
                f"wanted but excluded: {', '.join(excluded)}",
                "remove them from the package list or from resolve.exclude")
        if unknown:
            parts = []
            for name in unknown:
                close = self.suggest(name)
                parts.append(f"'{name}'" + (f" (did you mean: {', '.join(close)}?)" if close else ""))
            noun = "package" if len(unknown) == 1 else "packages"
            arch_only = [n for n in unknown if self._other_arch_only(n)]
            hint = (f"{', '.join(arch_only)} exist only for other architectures than {self.arch}"
                    if arch_only else "check the spelling in the package list; names are case-sensitive")
            raise ResolutionError(f"unknown {noun} {', '.join(parts)}", hint)

    def _is_excluded(self, name: str) -> bool:
        return name in self.pool.excluded_names

    def _other_arch_only(self, name: str) -> bool:
        return any(p.name == name for repo in self.repos for p in repo.packages)

    def _check_pins(self) -> None:
        for req, name in self.pins.items():
            if name not in self.pool.by_name:
                if name in self.pool.excluded_names:
                    raise ResolutionError(f"the profile pins '{req}' to '{name}', which is excluded",
                                          "remove the pin or the exclusion in profile.toml")
                close = difflib.get_close_matches(name, list(self.pool.by_name), n=3)
                extra = f" (did you mean: {', '.join(close)}?)" if close else ""
                raise ResolutionError(f"the profile pins '{req}' to unknown package '{name}'{extra}",
                                      "fix resolve.pins in profile.toml")

    def nevra_index(self) -> dict[str, Package]:
        if self._nevra_index is None:
            index: dict[str, Package] = {}
            for p in self.pool.packages:
                for key in (p.nevra, p.nvra, f"{p.name}-{p.version}-{p.release}"):
                    index.setdefault(key, p)
            self._nevra_index = index
        return self._nevra_index

    def suggest(self, name: str) -> list[str]:
        names = set(self.pool.by_name) | self.pool.excluded_names
        words = set(names)
        for prov in self.pool.provides:
            head = prov.split("(", 1)[0]
            if prov.endswith(")") and head in names:
                continue            # foo(x86-64) adds nothing over foo
            words.add(prov)
        close = difflib.get_close_matches(name, sorted(words), n=5, cutoff=0.6)
        if not close:
            lowered = {w.lower(): w for w in names}
            close = [lowered[w] for w in difflib.get_close_matches(name.lower(), sorted(lowered), n=5)]
        return close

    def load_files(self, paths: set[str]) -> None:
        paths = paths - self.pool.filelists_loaded
        if not paths:
            return
        self.pool.filelists_loaded |= paths
        mapping = self.load_filelists(frozenset(paths))     # type: ignore[misc]
        self.pool.add_files(mapping)

    # -- messages --------------------------------------------------------------------------------

    def needed_by(self, run: _Run, requirer: Package | None) -> str:
        if requirer is None:
            return ""
        chain = Resolution([], run.reasons).chain(requirer.name)
        return f" (needed by: {' -> '.join(chain)})"

    def describe(self, run: _Run, p: Package) -> str:
        reason = run.reasons.get(p.name)
        chain = Resolution([], run.reasons).chain(p.name)
        text = f"{p.name} is {reason}" if reason else p.name
        if len(chain) > 2:
            text += f" (via {' -> '.join(chain)})"
        return text

    def nothing_provides(self, expr: Expr, run: _Run | None = None) -> str:
        """Why nothing in the pool satisfies `expr`, as precisely as the data says."""
        deps = terms(expr)
        every = [p for repo in self.repos for p in repo.packages]
        for dep in deps:
            provs = self.pool.what_provides(dep)
            if provs and run is not None:
                dropped = sorted({p.name for p in provs if p.name in run.dropped})
                if dropped and len(dropped) == len({p.name for p in provs}):
                    return (f"only {', '.join(dropped)} provide(s) it, dropped as obsoleted "
                            f"by another chosen package")
            if provs:
                continue
            named = [p for p in every if dep.name in (p.name, *(d.name for d in p.provides))
                     or (dep.name.startswith("/") and dep.name in p.files)]
            if not named:
                continue
            excluded = sorted({p.name for p in named if p.name in self.pool.excluded_names})
            if excluded:
                return f"only excluded packages provide it ({', '.join(excluded)})"
            other_arch = sorted({p.nevra for p in named if p.arch not in self.pool.arch_rank})
            if other_arch and len(other_arch) == len(named):
                return f"only packages for other architectures provide it ({', '.join(other_arch[:3])})"
            if dep.flags & _SENSE:
                versions = []
                for p in named:
                    for d in (p.self_provide, *p.provides):
                        if d.name == dep.name and str(d) not in versions:
                            versions.append(str(d))
                return f"nothing provides it (available: {', '.join(versions[:4])})"
        return "nothing provides it"

    def unresolvable(self, item: _Item, expr: Expr, run: _Run) -> ResolutionError:
        why = self.nothing_provides(expr, run)
        within = f" (in '{item.origin}')" if item.origin else ""
        if item.requirer is None:
            msg = f"nothing satisfies the wanted '{item.text}'{within}: {why}"
        else:
            msg = f"{item.requirer.name} requires {item.text}{within}: {why}{self.needed_by(run, item.requirer)}"
        if why.startswith("only excluded"):
            hint = "remove the package from resolve.exclude, or exclude what requires it too"
        else:
            hint = ("the repositories may be incomplete (are BaseOS and AppStream both enabled?) "
                    "or the requiring package belongs to another release")
        return ResolutionError(msg, hint)


def resolve(
    repos: Sequence[Repository],
    wanted: Sequence[str],
    *,
    pins: Mapping[str, str] | None = None,
    weak_deps: bool = False,
    exclude: Iterable[str] = (),
    arch: str = "x86_64",
    load_filelists: LoadFilelists | None = None,
    pool: Pool | None = None,
) -> Resolution:
    """Resolve `wanted` (names, `name >= ver`, provides, NEVRAs or rich expressions) against
    `repos` into a closed set. Raises ResolutionError (one clear line) when it cannot.

    `pins` maps a requirement (its name or full text) to the package name that must provide it.
    `exclude` names (or fnmatch patterns) are never chosen. `load_filelists(paths)` returns, for
    each path it can find in the full file lists, the packages owning it; it is called only when
    a file requirement is not satisfied from primary. When None, repositories whose `filelists`
    callback is set are searched. `pool` reuses indexes across calls with the same inputs.
    """
    if load_filelists is None and any(r.filelists is not None for r in repos):
        load_filelists = filelists_loader(repos)
    with gc_paused():
        return _resolve(repos, wanted, pins=pins, weak_deps=weak_deps, exclude=exclude, arch=arch,
                        load_filelists=load_filelists, pool=pool)


def _resolve(repos, wanted, *, pins, weak_deps, exclude, arch, load_filelists, pool) -> Resolution:
    resolver = Resolver(repos, wanted, pins=pins or {}, weak_deps=weak_deps, exclude=tuple(exclude),
                        arch=arch, load_filelists=load_filelists, pool=pool)
    constraints: dict[str, list[tuple[Expr, str, str | None]]] = {}
    dropped: set[str] = set()
    notes: list[str] = []
    for _ in range(_MAX_RESTARTS):
        run = _Run(resolver, constraints, dropped)
        try:
            run.run()
        except _Restart as restart:
            if restart.constraint:
                name, expr, text, by = restart.constraint
                constraints.setdefault(name, []).append((expr, text, by))
                notes.append(f"{name}: limited to versions satisfying '{text}' "
                             f"(required by {by or 'the package list'})")
            if restart.drop:
                dropped.add(restart.drop[0])
                notes.append(restart.drop[1])
            continue
        packages = sorted(run.chosen.values(), key=lambda p: p.name)
        return Resolution(packages, {p.name: run.reasons[p.name] for p in packages},
                          run.choices, list(dict.fromkeys(run.skipped)), notes)
    raise ResolutionError("resolution did not settle after many version adjustments",
                          "pin the packages involved in profile.toml; see the notes with --debug")


def filelists_loader(repos: Sequence[Repository]) -> LoadFilelists:
    """A `load_filelists` for `resolve` that streams each repository's filelists (through its
    `filelists` callback) looking only for the requested paths."""
    from .repodata import lookup_files

    def load(paths: frozenset[str]) -> dict[str, list[Package]]:
        found: dict[str, list[Package]] = {}
        for repo in repos:
            if repo.filelists is None:
                continue
            for path, pkgs in lookup_files(repo, repo.filelists(), paths).items():
                found.setdefault(path, []).extend(pkgs)
        return found

    return load
