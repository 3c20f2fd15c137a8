"""Modules: `import "path" as name` relative to the script's directory, `export`, private
functions, sub-modules, sandboxing of paths, the module-count limit."""

import pytest

from levitate.recipe.rhai import Engine, Limits, RhaiError


@pytest.fixture
def recipes(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "helpers.rhai").write_text('''
const PREFIX = "/usr";
export const VERSION = "1.0";
let hidden = 5;
export let answer = hidden * 8 + 2;
let counter = 0;
counter += 1;
export counter as times_loaded;
fn bin_path(name) { `${global::PREFIX}/bin/${name}` }
fn twice(x) { double(x) }
fn double(x) { x * 2 }
private fn secret() { 1 }
''')
    (tmp_path / "lib" / "outer.rhai").write_text('import "inner" as inner;\nfn f() { 1 }\n')
    (tmp_path / "lib" / "inner.rhai").write_text('export let deep = "yes";\n')
    (tmp_path / "lib" / "broken.rhai").write_text('let x = 1;\nx / 0;\n')
    (tmp_path / "lib" / "bad_syntax.rhai").write_text('let x = ;\n')
    (tmp_path / "cycle_a.rhai").write_text('import "cycle_b" as b;\n')
    (tmp_path / "cycle_b.rhai").write_text('import "cycle_a" as a;\n')
    return tmp_path


def run(engine, root, src, name="main.rhai"):
    path = root / name
    path.write_text(src)
    return engine.eval(engine.compile_file(path))


def test_import_exported_variables_and_functions(recipes):
    eng = Engine(on_print=lambda s: None)
    src = 'import "lib/helpers" as h;\n[h::bin_path("rg"), h::answer, h::VERSION, h::twice(21)]'
    assert run(eng, recipes, src) == ["/usr/bin/rg", 42, "1.0", 42]


def test_export_alias_uses_final_value(recipes):
    assert run(Engine(), recipes, 'import "lib/helpers" as h; h::times_loaded') == 1


def test_unexported_variable_is_hidden(recipes):
    with pytest.raises(RhaiError) as e:
        run(Engine(), recipes, 'import "lib/helpers" as h;\nh::hidden')
    assert e.value.kind == "ErrorVariableNotFound"
    assert e.value.message == "Variable not found: h::hidden"  # as the script wrote it
    assert (e.value.line, e.value.column) == (2, 1)


def test_private_function_is_hidden(recipes):
    with pytest.raises(RhaiError) as e:
        run(Engine(), recipes, 'import "lib/helpers" as h;\nh::secret()')
    assert e.value.kind == "ErrorFunctionNotFound"
    assert e.value.message == "Function not found: h::secret ()"


def test_module_functions_are_not_reachable_without_namespace(recipes):
    with pytest.raises(RhaiError) as e:
        run(Engine(), recipes, 'import "lib/helpers" as h;\nbin_path("x")')
    assert e.value.kind == "ErrorFunctionNotFound"


def test_submodules(recipes):
    assert run(Engine(), recipes, 'import "lib/outer" as o; o::inner::deep') == "yes"


def test_import_inside_a_function(recipes):
    src = 'fn use_it() { import "lib/helpers" as hh; hh::double(4) }\nuse_it()'
    assert run(Engine(), recipes, src) == 8


def test_module_is_loaded_once_per_run(recipes):
    src = 'import "lib/helpers" as a; import "lib/helpers" as b; a::times_loaded + b::times_loaded'
    assert run(Engine(), recipes, src) == 2


def test_missing_module(recipes):
    with pytest.raises(RhaiError) as e:
        run(Engine(), recipes, 'let x = 1;\nimport "lib/nope" as n;')
    assert e.value.kind == "ErrorModuleNotFound"
    assert e.value.message == "Module not found: lib/nope"
    assert (e.value.line, e.value.column) == (2, 8)


@pytest.mark.parametrize("path", ["../outside", "/etc/passwd", "lib/../../x"])
def test_imports_cannot_leave_the_recipes_directory(recipes, path):
    (recipes.parent / "outside.rhai").write_text("export let x = 1;")
    with pytest.raises(RhaiError) as e:
        run(Engine(), recipes, f'import "{path}" as m;')
    assert e.value.kind == "ErrorModuleNotFound"


def test_error_inside_module_names_the_module(recipes):
    with pytest.raises(RhaiError) as e:
        run(Engine(), recipes, 'import "lib/broken" as b;')
    err = e.value
    assert err.kind == "ErrorArithmetic"
    assert err.line == 2 and err.source_name.endswith("broken.rhai")
    assert err.module_stack == ["lib/broken"]


def test_syntax_error_inside_module(recipes):
    with pytest.raises(RhaiError) as e:
        run(Engine(), recipes, 'import "lib/bad_syntax" as b;')
    assert e.value.kind == "ErrorParsing"
    assert e.value.source_name.endswith("bad_syntax.rhai")


def test_cyclic_import(recipes):
    with pytest.raises(RhaiError) as e:
        run(Engine(), recipes, 'import "cycle_a" as a;')
    assert "cyclic" in e.value.message


def test_module_limit(recipes):
    eng = Engine(Limits(max_modules=1))
    with pytest.raises(RhaiError) as e:
        run(eng, recipes, 'import "lib/helpers" as a;\nimport "lib/inner" as b;')
    assert e.value.kind == "ErrorTooManyModules" and e.value.line == 2
    assert not e.value.catchable


def test_export_only_at_global_level(err):
    assert err("{ let x = 1; export x; }").kind == "ErrorParsing"
    assert err("fn f() { export let y = 1; }").kind == "ErrorParsing"
    assert err("export nope;").kind == "ErrorParsing"


def test_host_module(engine):
    engine.register_module("sys", {"arch": lambda: "x86_64", "PAGE": 4096,
                                   "join": lambda a, b: f"{a}/{b}"})
    assert engine.eval('[sys::arch(), sys::PAGE, sys::join("a", "b")]') == \
        ["x86_64", 4096, "a/b"]


def test_unknown_namespace(err):
    assert err("nope::f()").kind == "ErrorModuleNotFound"


def test_global_imports_are_visible_inside_functions(recipes):
    src = ('import "lib/helpers" as h;\n'
           'fn path_of(name) { h::bin_path(name) }\n'
           'path_of("fd")')
    assert run(Engine(), recipes, src) == "/usr/bin/fd"


def test_global_imports_are_visible_to_entry_functions(recipes):
    (recipes / "r.rhai").write_text('import "lib/helpers" as h;\nfn install() { h::answer }\n')
    eng = Engine()
    ast = eng.compile_file(recipes / "r.rhai")
    assert eng.call_fn(ast, "install", scope=eng.run(ast)) == 42


def test_block_imports_are_not_global(recipes):
    src = '{ import "lib/helpers" as h; }\nfn f() { h::answer }\nf()'
    with pytest.raises(RhaiError) as e:
        run(Engine(), recipes, src)
    assert e.value.kind == "ErrorModuleNotFound"


def test_module_functions_do_not_see_the_importers_variables(recipes):
    (recipes / "lib" / "uses_prefix.rhai").write_text("fn where() { `${PREFIX}/bin` }\n")
    src = 'import "lib/uses_prefix" as u;\nfn install() { u::where() }\n'
    (recipes / "r.rhai").write_text(src)
    from levitate.recipe.rhai import Scope
    eng = Engine()
    ast = eng.compile_file(recipes / "r.rhai")
    scope = eng.run(ast, Scope(constants={"PREFIX": "/usr"}))
    with pytest.raises(RhaiError) as e:
        eng.call_fn(ast, "install", scope=scope)
    err = e.value
    assert err.kind == "ErrorVariableNotFound" and err.source_name.endswith("uses_prefix.rhai")
    assert "register_const" in err.hint
    assert "r.rhai line 2, position 16" in str(err)
    # a host constant is visible everywhere, also in modules
    eng2 = Engine()
    eng2.register_const("PREFIX", "/opt")
    ast2 = eng2.compile_file(recipes / "r.rhai")
    assert eng2.call_fn(ast2, "install") == "/opt/bin"
