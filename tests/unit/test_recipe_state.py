"""Recipe state written back into the file: only the state lines change, atomically."""

import os

from levitate.recipe.recipe import read_info
from levitate.recipe.state import update_source, write_state

SOURCE = """// ripgrep: comment kept
let name = "ripgrep";
let version = "14.1.1";   // trailing comment
let deps = [
    "pcre2 >= 10",   // regexes
    "zlib",
];
let installed = false;
let installed_files = [];

fn install() {
    let installed = "a local, not the state";
    install_bin("rg");
}
"""


def test_rewrites_only_state_lines_and_adds_missing_ones(tmp_path):
    new = update_source(SOURCE, {"installed": True, "installed_files": ["/usr/local/bin/rg"],
                                 "installed_version": "14.1.1", "installed_at": 1700000000})
    old_lines, new_lines = SOURCE.splitlines(), new.splitlines()
    assert [line for line in new_lines if not line.startswith("let installed")] == \
        [line for line in old_lines if not line.startswith("let installed")]
    assert 'let installed = true;' in new_lines
    assert 'let installed_files = ["/usr/local/bin/rg"];' in new_lines
    # missing declarations go right after the last state line, not at the end of the file
    i = new_lines.index('let installed_files = ["/usr/local/bin/rg"];')
    assert new_lines[i + 1:i + 3] == ['let installed_version = "14.1.1";', "let installed_at = 1700000000;"]
    assert '    let installed = "a local, not the state";' in new_lines


def test_write_state_round_trip_preserves_bytes(tmp_path):
    path = tmp_path / "ripgrep.rhai"
    crlf = SOURCE.replace("\n", "\r\n")
    path.write_bytes(crlf.encode())
    os.chmod(path, 0o640)
    state = {"installed": True, "installed_version": "14.1.1", "installed_at": 1,
             "installed_files": ["/p/bin/rg", "/p/share/man/man1/rg.1"], "installed_as_dep": False,
             "installed_prefix": "/p"}
    write_state(path, state)
    info = read_info(path)
    assert info.state == state
    assert [str(d) for d in info.deps] == ["pcre2 >= 10", "zlib"]
    data = path.read_bytes().decode()
    assert "\r\n    \"pcre2 >= 10\",   // regexes\r\n" in data
    assert os.stat(path).st_mode & 0o777 == 0o640
    write_state(path, {"installed": False, "installed_files": []})
    assert read_info(path).installed is False
    assert not [p for p in tmp_path.iterdir() if p.name != "ripgrep.rhai"]   # no temporaries left


def test_recipe_without_state_variables_and_pkg_shape(tmp_path):
    path = tmp_path / "x.rhai"
    path.write_text('let pkg = #{\n    name: "x",\n    version: "1.0",\n};\n\nfn install() {}\n')
    info = read_info(path)
    assert (info.name, info.version, info.shape) == ("x", "1.0", "pkg")
    write_state(path, {"installed": True, "installed_files": ["/a"]})
    text = path.read_text()
    assert text == ('let pkg = #{\n    name: "x",\n    version: "1.0",\n};\n'
                    'let installed = true;\nlet installed_files = ["/a"];\n\nfn install() {}\n')


def test_computed_values_fall_back_to_running_the_top_level(tmp_path):
    path = tmp_path / "y.rhai"
    path.write_text('let major = 2;\nlet name = "y";\nlet version = `${major}.0`;\nlet installed = false;\n'
                    'fn acquire() {}\nfn install() {}\n')
    assert read_info(path).version == "2.0"
