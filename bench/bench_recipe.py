"""Benchmarks of the `recipe` package manager (figures quoted in docs/recipe.md).

1. `recipe list` over 1,000 generated recipes (a third of them installed, with file lists), as a
   user runs it: a fresh process, state read without running the scripts. Goal < 1 s.
2. The engine's overhead per install: a recipe whose phases only use local helpers (no download,
   no commands of its own) installed into a temporary prefix, in-process: planning, the lock,
   compiling and running the recipe, staging, the conflict check, the commit and the state
   write-back (fsynced). Goal < 50 ms. Measured twice: on the temporary directory's disk, and on
   tmpfs, to show how much of it is file-system latency (mkdir, rmdir, fsync) rather than
   Python.

    .venv/bin/python bench/bench_recipe.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPE = '''// {name}: generated for the benchmark
let name = "{name}";
let version = "{major}.{minor}.0";
let description = "benchmark package number {i}";
let deps = [{deps}];
let installed = {installed};
let installed_version = {iv};
let installed_files = [{files}];

fn acquire() {{
    download(`https://example.invalid/{name}-${{version}}.tar.gz`);
    verify_sha256("{sha}");
}}

fn build() {{
    extract("tar.gz");
    cd(`{name}-${{version}}`);
    run(`./configure --prefix=${{PREFIX}}`);
    run(`make -j${{NPROC}}`);
}}

fn install() {{
    run("make install");
}}
'''

LOCAL = '''let name = "local";
let version = "1.0";
let installed = false;

fn acquire() {
    write_file(`${BUILD_DIR}/src/one`, "#!/bin/sh\\necho one\\n");
    write_file(`${BUILD_DIR}/src/two`, "#!/bin/sh\\necho two\\n");
    write_file(`${BUILD_DIR}/src/local.1`, ".TH LOCAL 1\\n");
}

fn build() {
    cd("src");
}

fn install() {
    install_bin("one");
    install_bin("two");
    install_man("local.1");
}
'''


def make_recipes(d: Path, n: int = 1000) -> None:
    for i in range(n):
        installed = i % 3 == 0
        files = ", ".join(f'"/usr/local/share/pkg{i}/f{j}"' for j in range(20)) if installed else ""
        deps = ", ".join(f'"pkg{j} >= 1.0"' for j in (i // 2, i // 3) if j < i)
        (d / f"pkg{i}.rhai").write_text(RECIPE.format(
            name=f"pkg{i}", i=i, major=1 + i % 4, minor=i % 10, deps=deps,
            installed="true" if installed else "false",
            iv=f'"{1 + i % 4}.{i % 10}.0"' if installed else "()", files=files, sha="ab" * 32))


def bench_list() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        make_recipes(d)
        cmd = [sys.executable, "-m", "levitate.recipe.cli", "--recipes", str(d), "list"]
        times = []
        for _ in range(5):
            t = time.perf_counter()
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            times.append(time.perf_counter() - t)
        assert len(out.splitlines()) == 1000
        from levitate.recipe.registry import Registry
        inproc = []
        for _ in range(3):
            t = time.perf_counter()
            Registry([d]).all()
            inproc.append(time.perf_counter() - t)
        print(f"recipe list, 1,000 recipes: {statistics.median(times):.2f} s median of 5 "
              f"(fresh process), {min(inproc):.2f} s reading them in-process  [goal < 1 s]")


def bench_install(where: str | None, label: str) -> None:
    from levitate.recipe.manager import Manager
    from levitate.recipe.registry import Registry
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        root = Path(tmp)
        (root / "recipes").mkdir()
        (root / "recipes" / "local.rhai").write_text(LOCAL)
        mgr = Manager(Registry([root / "recipes"]), root / "prefix", root / "build",
                      out=lambda text: None)
        times = []
        for _ in range(21):
            mgr.registry.reload()
            t = time.perf_counter()
            mgr.install(["local"])
            times.append(time.perf_counter() - t)
            mgr.registry.reload()
            mgr.remove(["local"])
        assert not (root / "prefix" / "bin").exists()
        print(f"engine overhead per install ({label}): {statistics.median(times) * 1000:.1f} ms "
              f"median of 21 (first {times[0] * 1000:.1f} ms, imports and compile included)  "
              f"[goal < 50 ms]")


if __name__ == "__main__":
    bench_list()
    bench_install(None, f"prefix, build dir and recipe on {tempfile.gettempdir()}")
    if Path("/dev/shm").is_dir():
        bench_install("/dev/shm", "on tmpfs: without the disk's mkdir/rmdir/fsync latency")
