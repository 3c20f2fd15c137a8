"""Stage stamps: a stage records a digest of its inputs beside its output, written last; the next
run skips the stage when the digest is unchanged and the output exists."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from ..util.download import file_digest
from ..util.files import write_atomic


class Inputs:
    """Accumulates what a stage's result depends on."""

    def __init__(self, stage: str, version: str = "1"):
        self._digest = hashlib.sha256(f"{stage}\0{version}\0".encode())

    def add(self, label: str, value) -> "Inputs":
        self._digest.update(f"{label}\0{value!r}\0".encode())
        return self

    def add_file(self, label: str, path: Path | None) -> "Inputs":
        if path is not None and path.is_file():
            self._digest.update(f"{label}\0".encode() + file_digest(path, "sha256").encode())
        else:
            self.add(label, None)
        return self

    def add_tree(self, label: str, path: Path, skip: tuple[str, ...] = ()) -> "Inputs":
        return self.add(label, tree_digest(path, skip))

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def tree_digest(root: Path, skip: tuple[str, ...] = ()) -> str:
    """Names, types, modes, link targets and contents of everything under root ('-' if absent),
    leaving out directories named in `skip` (e.g. __pycache__)."""
    if not root.is_dir():
        return "-"
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in skip)
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            st = path.lstat()
            digest.update(f"{rel}\0{st.st_mode:o}\0".encode())
            if path.is_symlink():
                digest.update(os.readlink(path).encode())
            elif path.is_file():
                digest.update(file_digest(path, "sha256").encode())
    return digest.hexdigest()


class Stamp:
    """`OUTPUT.stamp` beside a stage's output(s)."""

    def __init__(self, path: Path, outputs: Iterable[Path]):
        self.path = path
        self.outputs = tuple(outputs)

    def current(self, inputs: Inputs) -> bool:
        if not all(o.exists() for o in self.outputs) or not self.path.is_file():
            return False
        try:
            return json.loads(self.path.read_text()).get("inputs") == inputs.hexdigest()
        except (OSError, ValueError):
            return False

    def invalidate(self) -> None:
        self.path.unlink(missing_ok=True)

    def write(self, inputs: Inputs, **facts) -> None:
        write_atomic(self.path, json.dumps({"inputs": inputs.hexdigest(), **facts}, indent=1))

    def facts(self) -> dict:
        return json.loads(self.path.read_text()) if self.path.is_file() else {}
