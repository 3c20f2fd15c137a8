"""Benchmark the Rhai engine against CPython running the equivalent Python programs.

    .venv/bin/python bench/bench_rhai.py [--repeat N] [--sandbox]

Programs (issue 5): recursive fib(25); a 1,000,000-iteration loop with arithmetic; string
building; array and map churn; loading (parse + compile) a 300-line recipe, cold (nothing
cached) and warm (the compiled-code cache keyed by the source's hash). Each program runs as a
Rhai script and as the equivalent Python function in the same process; the figure is the best
of N runs, the ratio is Rhai time / CPython time (goal: within 5x; loading under 10 ms).
`--sandbox` runs the scripts under `Limits.sandbox()` (operation counting and size checks on).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from levitate.recipe.rhai import Engine, Limits  # noqa: E402
from levitate.recipe.rhai import engine as engine_mod  # noqa: E402

# --- the programs ------------------------------------------------------------------------

FIB_RHAI = """
fn fib(n) { if n < 2 { n } else { fib(n - 1) + fib(n - 2) } }
fib(25)
"""


def fib_py():
    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)
    return fib(25)


LOOP_RHAI = """
fn work() {
    let total = 0;
    for i in 0..1000000 {
        total += i % 7 * 3 - 1;
    }
    total
}
work()
"""


def loop_py():
    total = 0
    for i in range(1000000):
        total += i % 7 * 3 - 1
    return total


STRINGS_RHAI = """
fn build() {
    let s = "";
    for i in 0..100000 {
        s += `item ${i},`;
    }
    let parts = s.split(",");
    let out = "";
    for p in parts {
        if p.len() > 9 { out += p.sub_string(5); }
    }
    out.len()
}
build()
"""


def strings_py():
    s = ""
    for i in range(100000):
        s += f"item {i},"
    parts = s.split(",")
    out = ""
    for p in parts:
        if len(p) > 9:
            out += p[5:]
    return len(out)


CHURN_RHAI = """
fn churn() {
    let a = [];
    for i in 0..100000 { a.push(i * 2); }
    let m = #{};
    for i in 0..50000 { m[`k${i % 1000}`] = a[i]; }
    let total = 0;
    for x in a { if x % 3 == 0 { total += x; } }
    for k in m.keys() { total += m[k]; }
    let b = a.filter(|x| x % 10 == 0).map(|x| x / 2);
    while b.len() > 0 { b.pop(); }
    total
}
churn()
"""


def churn_py():
    a = []
    for i in range(100000):
        a.append(i * 2)
    m = {}
    for i in range(50000):
        m[f"k{i % 1000}"] = a[i]
    total = 0
    for x in a:
        if x % 3 == 0:
            total += x
    for k in sorted(m):
        total += m[k]
    b = [x // 2 for x in a if x % 10 == 0]
    while len(b) > 0:
        b.pop()
    return total


def recipe_300() -> str:
    """A 300-line recipe in the style of the original LevitateOS recipes."""
    head = '''//! recipe: sample-tool
//! description: a realistic recipe used to measure loading time
let name = "sample-tool";
let version = "2.4.1";
let release = 3;
let deps = ["zlib", "openssl", "pcre2"];
let installed = false;
let installed_version = ();
let installed_at = ();
let installed_files = [];
const BASE_URL = "https://example.org/releases";
let sources = #{
    main: `${BASE_URL}/${name}-${version}.tar.gz`,
    sha256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
};
'''
    parts = [head]
    i = 0
    while sum(p.count("\n") for p in parts) < 288:
        i += 1
        parts.append(f'''
/// helper number {i}
fn helper_{i}(x, y) {{
    let total = 0;
    for item in x {{
        if item.len() > {i % 7} && !item.starts_with("#") {{
            total += item.len() * {i};
        }} else if item == "skip" {{
            continue;
        }}
    }}
    let label = switch y {{ 1 => "one", 2 | 3 => "few", _ => `many-${{y}}` }};
    `${{label}}:${{total}}`
}}
''')
    parts.append('''
fn acquire() {
    download(sources.main);
    verify_sha256(sources.sha256);
}
fn build() { extract("tar.gz"); }
fn install() {
    install_bin(name, 0o755);
    installed_files.push(`/usr/bin/${name}`);
    installed = true;
}
''')
    return "".join(parts)


PROGRAMS = [
    ("fib(25)", FIB_RHAI, fib_py),
    ("loop 1e6", LOOP_RHAI, loop_py),
    ("strings", STRINGS_RHAI, strings_py),
    ("array/map churn", CHURN_RHAI, churn_py),
]


def best(fn, repeat):
    times = []
    result = None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def best_pair(fn_a, fn_b, repeat):
    """Best times of two programs run alternately, so that both see the same machine load."""
    ta, tb, ra, rb = [], [], None, None
    for _ in range(repeat):
        t = time.perf_counter()
        ra = fn_a()
        ta.append(time.perf_counter() - t)
        t = time.perf_counter()
        rb = fn_b()
        tb.append(time.perf_counter() - t)
    return (min(ta), ra), (min(tb), rb)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--sandbox", action="store_true", help="run under Limits.sandbox()")
    ns = ap.parse_args(argv)
    limits = Limits.sandbox() if ns.sandbox else Limits()
    eng = Engine(limits)
    print(f"Rhai engine vs CPython {sys.version.split()[0]}  (best of {ns.repeat}"
          f"{', sandbox limits' if ns.sandbox else ''})")
    print(f"{'program':<18}{'rhai ms':>10}{'python ms':>11}{'ratio':>8}")
    worst = 0.0
    for name, src, py in PROGRAMS:
        ast = eng.compile(src, name=name)
        (t_r, r_r), (t_p, r_p) = best_pair(lambda: eng.eval(ast), py, ns.repeat)
        if r_r != r_p:
            print(f"  MISMATCH {name}: rhai {r_r!r} != python {r_p!r}")
            return 1
        ratio = t_r / t_p
        worst = max(worst, ratio)
        print(f"{name:<18}{t_r * 1000:>10.1f}{t_p * 1000:>11.1f}{ratio:>7.1f}x")

    src = recipe_300()
    lines = src.count("\n")

    def cold():
        engine_mod._CACHE.clear()
        return eng.compile(src, name="recipe.rhai")

    def warm():
        return eng.compile(src, name="recipe.rhai")

    t_cold, _ = best(cold, ns.repeat)
    warm()
    t_warm, _ = best(warm, ns.repeat * 20)
    print(f"load {lines}-line recipe: cold {t_cold * 1000:.1f} ms, warm (cached) "
          f"{t_warm * 1000:.3f} ms  (goal < 10 ms)")
    print(f"worst ratio: {worst:.1f}x (goal < 5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
