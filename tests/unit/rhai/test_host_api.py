"""The host API the recipe package manager uses: compile once, run, call entry functions,
read and write top-level variables, register functions and constants, convert values."""

import pytest

from levitate.recipe.rhai import AST, Char, Engine, FnPtr, RhaiError, Scope
from tests.cheat_aware import cheat_aware

RECIPE = '''//! name: ripgrep
//! version: 14.1.0
let name = "ripgrep";
let version = "14.1.0";
let deps = ["pcre2"];
let installed = false;
let installed_files = [];

/// Fetch the sources.
fn acquire() {
    download(`https://example.org/${name}-${version}.tar.gz`);
}

fn helper() { name }

fn uses_helper() { helper() }

fn install() {
    installed_files.push("/usr/bin/rg");
    installed = true;
    installed_files.len()
}
'''


@pytest.fixture
def recipe_engine():
    calls = []
    eng = Engine()
    eng.register_fn("download", lambda url: calls.append(url))
    eng.calls = calls
    return eng


def test_compile_once_run_many(recipe_engine):
    ast = recipe_engine.compile(RECIPE, name="rg.rhai")
    assert isinstance(ast, AST)
    s1 = recipe_engine.run(ast)
    s2 = recipe_engine.run(ast)
    assert s1["name"] == s2["name"] == "ripgrep"
    assert s1 is not s2


@cheat_aware(protects="entry functions called by the host see the recipe's top-level variables",
             cheats=["passing variables as arguments in the test", "making all functions "
                     "see globals"],
             consequence="original LevitateOS recipes (acquire() reading name/version) fail")
def test_entry_function_sees_top_level_variables(recipe_engine):
    ast = recipe_engine.compile(RECIPE, name="rg.rhai")
    scope = recipe_engine.run(ast)
    recipe_engine.call_fn(ast, "acquire", scope=scope)
    assert recipe_engine.calls == ["https://example.org/ripgrep-14.1.0.tar.gz"]


def test_nested_calls_follow_rhai_rule(recipe_engine):
    ast = recipe_engine.compile(RECIPE, name="rg.rhai")
    scope = recipe_engine.run(ast)
    assert recipe_engine.call_fn(ast, "helper", scope=scope) == "ripgrep"
    with pytest.raises(RhaiError) as info:
        recipe_engine.call_fn(ast, "uses_helper", scope=scope)
    assert info.value.kind == "ErrorVariableNotFound"
    assert info.value.call_stack == [("helper", 16, 20)]


def test_entry_function_changes_top_level_variables(recipe_engine):
    ast = recipe_engine.compile(RECIPE)
    scope = recipe_engine.run(ast)
    assert recipe_engine.call_fn(ast, "install", scope=scope) == 1
    assert scope["installed"] is True
    assert scope["installed_files"] == ["/usr/bin/rg"]
    assert scope.to_dict()["installed"] is True


def test_call_fn_without_scope_runs_the_top_level_first(recipe_engine):
    ast = recipe_engine.compile(RECIPE)
    recipe_engine.call_fn(ast, "acquire")
    assert recipe_engine.calls == ["https://example.org/ripgrep-14.1.0.tar.gz"]


def test_host_can_set_variables_before_calling(recipe_engine):
    ast = recipe_engine.compile(RECIPE)
    scope = recipe_engine.run(ast)
    scope["version"] = "15.0.0"
    recipe_engine.call_fn(ast, "acquire", scope=scope)
    assert recipe_engine.calls == ["https://example.org/ripgrep-15.0.0.tar.gz"]


def test_scope_given_to_run(engine):
    scope = Scope({"prefix": "/opt"})
    engine.run("let bin = prefix + \"/bin\";", scope)
    assert scope["bin"] == "/opt/bin" and scope["prefix"] == "/opt"
    assert engine.eval("prefix.len()", {"prefix": "abc"}) == 3


def test_scope_constants_cannot_be_changed(engine):
    scope = Scope(constants={"ARCH": "x86_64"})
    with pytest.raises(RhaiError) as info:
        engine.run('ARCH = "arm";', scope)
    assert info.value.kind == "ErrorAssignmentToConstant"


def test_call_fn_arguments_and_results_are_converted(engine):
    ast = engine.compile("fn f(a, b, c) { [a, b.x, c.len(), type_of(c)] }")
    assert engine.call_fn(ast, "f", 1, {"x": (1, 2)}, ("a",)) == [1, [1, 2], 1, "array"]


def test_call_fn_unknown_function(engine):
    ast = engine.compile("fn install() {}", name="r.rhai")
    with pytest.raises(RhaiError) as info:
        engine.call_fn(ast, "instal")
    assert info.value.kind == "ErrorFunctionNotFound"
    assert "did you mean 'install'" in info.value.message


def test_docs(recipe_engine):
    ast = recipe_engine.compile(RECIPE)
    assert ast.module_docs == [" name: ripgrep", " version: 14.1.0"]
    assert ast.fn_docs("acquire") == ["Fetch the sources."]
    assert ast.has_fn("install", 0) and not ast.has_fn("install", 1)
    assert [f.name for f in ast.functions] == ["acquire", "helper", "uses_helper", "install"]


def test_register_fn_with_several_arities(engine):
    engine.register_fn("mode", lambda path, mode=0o644: f"{path}:{mode:o}")
    assert engine.eval('[mode("a"), mode("b", 0o755)]') == ["a:644", "b:755"]


def test_registered_function_in_method_style(engine):
    engine.register_fn("shout", lambda s, n: s.upper() + "!" * n)
    assert engine.eval('"hi".shout(2)') == "HI!!"


def test_registered_function_overrides_builtin(engine):
    engine.register_fn("len", lambda x: -1)
    assert engine.eval('"abc".len()') == -1


def test_varargs_function(engine):
    engine.register_fn("join_all", lambda *parts: "/".join(map(str, parts)))
    assert engine.eval('join_all("a", "b", 3)') == "a/b/3"


def test_host_function_with_context_calls_closures(engine):
    def each(ctx, items, f):
        return [ctx.call(f, x) for x in items]
    engine.register_fn("each", each, context=True)
    assert engine.eval("let k = 10; each([1, 2], |x| x + k)") == [11, 12]


def test_register_const_visible_in_functions(engine):
    engine.register_const("ARCH", "x86_64")
    assert engine.eval("fn f() { ARCH } [ARCH, f(), global::ARCH]") == \
        ["x86_64", "x86_64", "x86_64"]
    with pytest.raises(RhaiError) as info:
        engine.eval("ARCH = 1;")
    assert info.value.kind == "ErrorAssignmentToConstant"


@pytest.mark.parametrize("py, rhai_type", [
    (None, "()"), (True, "bool"), (3, "i64"), (2.5, "f64"), ("s", "string"),
    ([1, 2], "array"), ((1, 2), "array"), ({"a": 1}, "map"), (range(3), "range"),
])
def test_python_values_become_rhai_values(engine, py, rhai_type):
    engine.register_fn("give", lambda: py)
    assert engine.eval("type_of(give())") == rhai_type


def test_big_python_int_is_rejected(engine):
    engine.register_fn("huge", lambda: 2 ** 70)
    with pytest.raises(RhaiError) as info:
        engine.eval("huge()")
    assert "64 bits" in info.value.message


def test_rhai_values_reaching_python(engine):
    seen = []
    engine.register_fn("take", lambda v: seen.append(v))
    engine.eval("take('c'); take(()); take(#{a: [1]}); take(|x| x);")
    assert seen[0] == "c" and type(seen[0]) is Char
    assert seen[1] is None
    assert seen[2] == {"a": [1]}
    assert isinstance(seen[3], FnPtr)


def test_method_style_host_function_mutates_array_in_place(engine):
    engine.register_fn("add_two", lambda arr: arr.extend([1, 2]))
    assert engine.eval("let a = []; a.add_two(); a") == [1, 2]


def test_function_pointer_callable_from_python(engine):
    f = engine.eval("let n = 5; |x| x * n")
    assert f(3) == 15


def test_getters_and_setters_for_host_types(engine):
    class Pkg:
        def __init__(self):
            self.name = "rg"
            self._secret = 1
    engine.register_fn("pkg", Pkg)
    engine.register_getter("upper_name", lambda p: p.name.upper(), Pkg)
    engine.register_setter("name", lambda p, v: setattr(p, "name", v), Pkg)
    assert engine.eval('let p = pkg(); [p.name, p.upper_name, type_of(p)]') == \
        ["rg", "RG", "Pkg"]
    assert engine.eval('let p = pkg(); p.name = "fd"; p.upper_name') == "FD"
    with pytest.raises(RhaiError):
        engine.eval("pkg()._secret")


def test_print_and_debug_callbacks():
    printed, debugged = [], []
    eng = Engine(on_print=printed.append, on_debug=debugged.append)
    eng.run('print("hello"); debug("x");')
    assert printed == ["hello"] and debugged == ['"x"']


def test_compile_file_and_missing_file(tmp_path):
    p = tmp_path / "r.rhai"
    p.write_text("let x = 1;\nx + 1")
    eng = Engine()
    ast = eng.compile_file(p)
    assert eng.eval(ast) == 2
    with pytest.raises(RhaiError) as info:
        eng.compile_file(tmp_path / "missing.rhai")
    assert "cannot read" in info.value.message


def test_disk_cache_reuses_compiled_code(tmp_path):
    src = "fn f(x) { x * 2 } f(21)"
    e1 = Engine(cache_dir=str(tmp_path / "cache"))
    assert e1.eval(e1.compile(src, name="cached.rhai")) == 42
    files = list((tmp_path / "cache").iterdir())
    assert len(files) == 1
    from levitate.recipe.rhai import engine as engine_mod
    engine_mod._CACHE.clear()
    e2 = Engine(cache_dir=str(tmp_path / "cache"))
    assert e2.eval(e2.compile(src, name="cached.rhai")) == 42


def test_ast_is_reusable_across_engines():
    ast = Engine().compile("fn f() { helper() } ")
    e2 = Engine()
    e2.register_fn("helper", lambda: "from e2")
    assert e2.call_fn(ast, "f") == "from e2"


def test_host_constants_cannot_be_changed_by_scripts():
    # a constant array handed to every recipe must come out of each run unchanged
    eng = Engine(on_print=lambda s: None)
    eng.register_const("FLAGS", ["-O2"])
    with pytest.raises(RhaiError) as info:
        eng.eval('FLAGS.push("-g");')
    assert info.value.kind == "ErrorNonPureMethodCallOnConstant"
    assert eng.eval('let f = FLAGS; f.push("-g"); push(FLAGS, "-x"); [f, FLAGS]') == \
        [["-O2", "-g"], ["-O2"]]
    assert eng.eval('fn f() { let a = FLAGS; a += ["-s"]; a } f()') == ["-O2", "-s"]
    assert eng.eval("FLAGS") == ["-O2"]
    scope = Scope()
    scope.push_constant("DIRS", ["/usr"])
    with pytest.raises(RhaiError) as info:
        eng.eval('DIRS.push("/opt")', scope=scope)
    assert info.value.kind == "ErrorNonPureMethodCallOnConstant"
    assert scope["DIRS"] == ["/usr"]


def test_function_call_style_host_function_gets_the_variable(engine):
    engine.register_fn("add_file", lambda files, f: files.append(f))
    assert engine.eval('let fs = []; add_file(fs, "a"); fs.add_file("b"); fs') == ["a", "b"]


def test_compiled_code_is_not_shared_with_an_engine_that_overrides_a_method():
    # `s.trim()` compiles to a write-back only when `trim` is the standard (in-place) one
    src = 'let s = "  x  "; let r = s.trim(); [s, r]'
    host = Engine()
    host.register_fn("trim", lambda s: "host")
    assert host.eval(src) == ["  x  ", "host"]
    assert Engine().eval(src) == ["x", None]


def test_private_functions_are_not_entry_points(engine):
    # Rhai's call_fn does not reach `private fn` (tests/call_fn.rs)
    ast = engine.compile("private fn add(x, n) { x + n }\nfn add_one(x) { add(x, 1) }")
    with pytest.raises(RhaiError) as e:
        engine.call_fn(ast, "add", 40, 2)
    assert e.value.kind == "ErrorFunctionNotFound" and "private" in e.value.hint
    assert engine.call_fn(ast, "add_one", 41) == 42


def test_entry_function_changes_top_level_variables_in_function_call_style(engine):
    ast = engine.compile('let version = " 1.0 "; let files = [];\n'
                         'fn f() { trim(version); push(files, "a"); }')
    scope = engine.run(ast)
    engine.call_fn(ast, "f", scope=scope)
    assert (scope["version"], scope["files"]) == ("1.0", ["a"])
