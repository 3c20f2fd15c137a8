"""The package layers: each package under src/levitate imports only from the layers below it, so
the installed system's tools (install, recipe, boot) never drag in the ISO builder (leviso)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import levitate
from tests.cheat_aware import cheat_aware

SRC = Path(levitate.__file__).resolve().parent.parent
# Lowest first. A package may import its own layer's package and those of lower layers; packages of
# one layer import nothing from each other.
LAYERS = (
    ("util",),
    ("rpm",),
    ("repo", "boot"),
    ("leviso", "install", "recipe"),          # the programs: the ISO builder, the installer, recipe
)


def imported_modules(path: Path, src_root: Path) -> set[str]:
    """Absolute names of what `path` imports, anywhere in it (in functions too), relative imports
    resolved; `from X import a` counts as X and X.a (a may be a submodule)."""
    parts = path.relative_to(src_root).with_suffix("").parts
    package = parts[:-1]                        # a module's package; for __init__.py, itself
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ((node.module,) if node.module else ()))
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return found


def layer_violations(src_root: Path) -> list[str]:
    layer_of = {name: index for index, layer in enumerate(LAYERS) for name in layer}
    problems = []
    for path in sorted((src_root / "levitate").rglob("*.py")):
        parts = path.relative_to(src_root).parts
        if len(parts) < 3:
            continue                            # levitate/__init__.py
        own = parts[1]
        if own not in layer_of:
            problems.append(f"levitate.{own} is in no layer: add it to LAYERS in {__name__}")
            continue
        others = {name.split(".")[1] for name in imported_modules(path, src_root) if name.startswith("levitate.")}
        for other in sorted(others - {own}):
            if layer_of.get(other, len(LAYERS)) >= layer_of[own]:
                problems.append(f"{path.relative_to(src_root)} imports levitate.{other}")
    return problems


@cheat_aware(protects="recboot, recstrap, recipe and the boot layer import nothing from leviso (nor boot from "
                      "install or recipe): the layers util -> rpm -> repo, boot -> leviso | install | recipe",
             cheats=["import lazily inside a function (it is checked too)", "add a compatibility re-export in a "
                     "lower package that imports leviso", "put the new package into no layer and skip it"],
             consequence="the installed system's tools break or grow with the ISO builder; a cycle makes one "
                         "change ripple through every program")
def test_packages_import_only_lower_layers():
    assert layer_violations(SRC) == []


def test_the_check_sees_relative_absolute_and_lazy_imports(tmp_path):
    """Each way of importing leviso from a lower package is found (else the rule above cannot fail)."""
    pkg = tmp_path / "levitate"
    for name in ("leviso", "boot", "install", "recipe/helpers"):
        (pkg / name).mkdir(parents=True)
        (pkg / name / "__init__.py").write_text("")
    (pkg / "boot/a.py").write_text("from ..leviso import stages\n")
    (pkg / "install/b.py").write_text("def f():\n    import levitate.leviso.cli\n")
    (pkg / "recipe/helpers/c.py").write_text("from ... import leviso\n")
    (pkg / "recipe/__init__.py").write_text("from ..install import b\n")
    (pkg / "leviso/d.py").write_text("from ..boot import a\n")                   # downward: fine
    assert layer_violations(tmp_path) == [
        "levitate/boot/a.py imports levitate.leviso",
        "levitate/install/b.py imports levitate.leviso",
        "levitate/recipe/__init__.py imports levitate.install",
        "levitate/recipe/helpers/c.py imports levitate.leviso",
    ]


def readme_layout() -> dict[str, set[str]]:
    """The README's Layout block: for each `  pkg/` line (and its continuation lines), the words."""
    readme = (SRC.parent / "README.md").read_text()
    block = readme.split("## Layout", 1)[1].split("```")[1]
    sections: dict[str, set[str]] = {}
    current = None
    for line in block.splitlines():
        head = line[2:].split(maxsplit=1) if line.startswith("  ") and not line.startswith("   ") else []
        if head and head[0].endswith("/"):
            current = head[0].rstrip("/")
            sections[current] = set()
            line = head[1] if len(head) > 1 else ""
        elif not line.startswith("  "):
            current = None
        if current:
            sections[current] |= set(re.findall(r"[\w.]+/?", line))
    return sections


@cheat_aware(protects="the README's layout section names every package and module under src/levitate, "
                      "so a newcomer finds the stage they need by its file name",
             cheats=["listing directories only", "a test that reads the tree instead of the README"],
             consequence="the map in the README sends readers to modules that moved or no longer exist, "
                         "and new modules are nowhere on it")
def test_readme_layout_matches_the_tree():
    sections = readme_layout()
    packages = {p.name for p in (SRC / "levitate").iterdir() if (p / "__init__.py").is_file()}
    assert set(sections) == packages, "README Layout lists other packages than src/levitate has"
    missing = []
    for package in sorted(packages):
        for entry in sorted((SRC / "levitate" / package).iterdir()):
            if entry.name.startswith(("_", ".")):
                continue
            name = f"{entry.name}/" if (entry / "__init__.py").is_file() else entry.stem
            if entry.is_dir() and not name.endswith("/"):
                continue                                  # __pycache__ and the like
            if name not in sections[package] and entry.name not in sections[package]:
                missing.append(f"{package}/{entry.name}")
    assert missing == [], f"README Layout does not name: {missing}"
