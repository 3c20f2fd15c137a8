"""Writing a recipe's state back into its file, atomically, touching only the state lines.

The state variables (`installed`, `installed_version`, `installed_at`, `installed_files`,
`installed_as_dep`, `installed_prefix`, `installed_config`) are rewritten in place by
`rhai.rewrite.set_variables`; one a recipe does not declare yet is added as its own
`let NAME = VALUE;` line after the last state line (or after `version`/`pkg`), so recipes that
declare only `let installed = false;` (as the original LevitateOS ones do) work unchanged. Every
other byte of the file stays as it was. The new text goes to a temporary file in the same
directory, is synced, and renamed over the recipe (its mode kept).
"""

from __future__ import annotations

import errno
from pathlib import Path

from ..util.files import write_atomic
from .recipe import STATE_VARS, RecipeError, _read_source
from .rhai.rewrite import rhai_literal, set_variables, top_level_variables


def _line_end_after(source: str, pos: int) -> int:
    """Offset just after the end of the line holding the statement that ends at `pos`."""
    semi = source.find(";", pos)
    if semi == -1:
        return len(source)
    nl = source.find("\n", semi)
    return len(source) if nl == -1 else nl + 1


def update_source(source: str, values: dict, name: str = "<recipe>") -> str:
    """`source` with the given top-level variables set (added when not declared)."""
    lets = top_level_variables(source, name)
    present = {k: v for k, v in values.items() if k in lets}
    absent = {k: v for k, v in values.items() if k not in lets}
    new = set_variables(source, present, source_name=name) if present else source
    if not absent:
        return new
    lets = top_level_variables(new, name)
    anchors = [n for n in STATE_VARS if n in lets] or \
        [n for n in ("version", "pkg", "name") if n in lets]
    if anchors:
        node = max((lets[n] for n in anchors), key=lambda n: n.value_span[1] if n.value_span
                   else n.name_end)
        at = _line_end_after(new, node.value_span[1] if node.value_span else node.name_end)
    else:
        at = 0
    text = "".join(f"let {k} = {rhai_literal(v)};\n" for k, v in absent.items())
    if at > 0 and not new[:at].endswith("\n"):
        text = "\n" + text
    return new[:at] + text + new[at:]


def state_source(path: Path, values: dict, *, extra: dict | None = None) -> str:
    """The recipe file's text with state variables (and `extra` ones such as `version`) set."""
    unknown = [k for k in values if k not in STATE_VARS]
    if unknown:
        raise ValueError(f"not state variables: {unknown}")
    return update_source(_read_source(Path(path)), {**values, **(extra or {})}, str(path))


def write_state(path: Path, values: dict, *, extra: dict | None = None) -> None:
    """Set state variables (and `extra` ones) in the recipe file, atomically."""
    path = Path(path)
    new = state_source(path, values, extra=extra)
    if new != _read_source(path):
        write_text_atomic(path, new)


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` (UTF-8, newlines as given) via a synced temporary file."""
    try:
        write_atomic(path, text, perm=path.stat().st_mode & 0o7777, sync_dir=True)
    except OSError as e:
        raise _state_error(path, e) from None


def _state_error(path: Path, e: OSError) -> RecipeError:
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return RecipeError(f"cannot write the state of {path}: no space left on {path.parent}",
                           "free space on that file system and retry")
    return RecipeError(f"cannot write the state of {path}: {e.strerror}",
                       "the recipes directory must be writable (choose one with --recipes)")
