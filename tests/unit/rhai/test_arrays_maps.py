"""Arrays and object maps: value semantics, methods, indexing, property chains."""

import pytest


def test_value_semantics_on_assignment(ev):
    assert ev("let a = [1, 2]; let b = a; b.push(3); [a, b]") == [[1, 2], [1, 2, 3]]
    assert ev("let m = #{x: [1]}; let n = m; n.x.push(2); [m.x, n.x]") == [[1], [1, 2]]
    assert ev("let a = [[1]]; let b = a[0]; b.push(2); a") == [[1]]


def test_value_semantics_when_storing_into_containers(ev):
    assert ev("let a = [1]; let b = []; b.push(a); a.push(2); b") == [[1]]
    assert ev("let a = [1]; let m = #{k: a}; a.push(2); m.k") == [1]


@pytest.mark.parametrize("src, value", [
    ("let a = [1, 2]; a.push(3); a", [1, 2, 3]),
    ("let a = [1]; a.append([2, 3]); a", [1, 2, 3]),
    ("let a = [1]; a += [2, 3]; a += 4; a", [1, 2, 3, 4]),
    ("let a = [1, 2, 3]; a.insert(1, 9); a", [1, 9, 2, 3]),
    ("let a = [1, 2, 3]; a.insert(-1, 9); a", [1, 2, 9, 3]),
    ("let a = [1, 2, 3]; a.insert(10, 9); a", [1, 2, 3, 9]),
    ("let a = [1, 2, 3]; [a.pop(), a]", [3, [1, 2]]),
    ("let a = []; a.pop()", None),
    ("let a = [1, 2, 3]; [a.shift(), a]", [1, [2, 3]]),
    ("let a = [1, 2, 3]; [a.remove(1), a]", [2, [1, 3]]),
    ("let a = [1, 2, 3]; [a.remove(9), a]", [None, [1, 2, 3]]),
    ("let a = [1, 2, 3]; a.reverse(); a", [3, 2, 1]),
    ("let a = [3, 1, 2]; a.sort(); a", [1, 2, 3]),
    ('let a = ["b", "c", "a"]; a.sort(); a', ["a", "b", "c"]),
    ("let a = [3, 1, 2]; a.sort(|x, y| y - x); a", [3, 2, 1]),
    ("let a = [1, 2, 3]; a.truncate(1); a", [1]),
    ("let a = [1, 2, 3]; a.clear(); a", []),
    ("let a = [1]; a.pad(3, 0); a", [1, 0, 0]),
    ("let a = [1, 2, 3, 4, 5]; a.extract(1, 2)", [2, 3]),
    ("let a = [1, 2, 3, 4, 5]; a.extract(3)", [4, 5]),
    ("let a = [1, 2, 3, 4, 5]; a.extract(-2)", [4, 5]),
    ("let a = [1, 2, 3, 4, 5]; a.extract(1..3)", [2, 3]),
    ("let a = [1, 2, 3, 4, 5]; let b = a.split(2); [a, b]", [[1, 2], [3, 4, 5]]),
    ("let a = [1, 2, 3]; a.len()", 3), ("[].is_empty()", True), ("[1].len", 1),
    ("[1, 2, 3].contains(2)", True), ('[1, "a"].contains("a")', True),
    ("[1, 2, 3].index_of(3)", 2), ("[1, 2, 3].index_of(7)", -1),
    ("[5, 6, 7].index_of(|x| x > 5)", 1),
    ("[1, 2, 3].map(|x| x * 2)", [2, 4, 6]),
    ("[1, 2, 3, 4].filter(|x| x % 2 == 0)", [2, 4]),
    ("[1, 2, 3].reduce(|s, x| s + x, 10)", 16),
    ('[1, 2, 3].reduce(|s, x| if s == () { x } else { s + x })', 6),
    ("[1, 2, 3].reduce_rev(|s, x| s + x, \"\")", "321"),
    ("[1, 2, 3].some(|x| x > 2)", True), ("[1, 2, 3].all(|x| x > 2)", False),
    ('[1, "a", 2].join("-")', "1-a-2"), ('["x"].join(", ")', "x"),
    ("let a = [1, 1, 2, 1]; a.dedup(); a", [1, 2, 1]),
    ("let a = [1, 2, 3, 4]; let r = a.retain(|x| x > 2); [a, r]", [[3, 4], [1, 2]]),
    ("let a = [1, 2, 3, 4]; let r = a.drain(|x| x > 2); [a, r]", [[1, 2], [3, 4]]),
    ("let a = [1, 2, 3, 4]; a.splice(1, 2, [9]); a", [1, 9, 4]),
    ("[1, 2] + [3]", [1, 2, 3]),
])
def test_array_methods(ev, src, value):
    assert ev(src) == value


def test_array_indexing_and_bounds(ev, err):
    assert ev("let a = [1, 2, 3]; [a[0], a[-1], a[-3]]") == [1, 3, 1]
    e = err("let a = [1, 2, 3];\nlet x = a[3];")
    assert e.kind == "ErrorArrayBounds"
    assert e.message == "Array index 3 out of bounds: only 3 elements in array"
    assert (e.line, e.column) == (2, 10)
    assert err("[][0]").message == "Array index 0 out of bounds: array is empty"


def test_indexing_with_wrong_type(err):
    e = err('let a = [1];\na["x"]')
    assert e.kind == "ErrorIndexingType"


def test_nested_index_and_property_assignment(ev):
    assert ev("let a = [1, [2, 3]]; a[1][0] = 9; a") == [1, [9, 3]]
    assert ev("let m = #{x: #{y: 1}}; m.x.y += 5; m.x.y") == 6
    src = 'let ctx = #{files: [#{name: "a"}, #{name: "b"}]}; ctx.files[1].name = "z"; ctx'
    assert ev(src) == {"files": [{"name": "a"}, {"name": "z"}]}
    assert ev("let a = [#{n: [0]}]; a[0].n[0] += 2; a[0].n[0]") == 2


def test_map_literal_access_and_missing_property(ev):
    assert ev('let m = #{a: 1, "b c": 2}; [m.a, m["b c"], m.zz, m["zz"]]') == [1, 2, None, None]


def test_map_methods(ev):
    assert ev("let m = #{b: 1, a: 2}; m.keys()") == ["a", "b"]
    assert ev("let m = #{b: 1, a: 2}; m.values()") == [2, 1]
    assert ev('let m = #{a: 1, b: 2}; [m.remove("a"), m]') == [1, {"b": 2}]
    assert ev('let m = #{a: 1}; m.remove("x")') is None
    assert ev('let m = #{a: 1}; [m.contains("a"), "a" in m, m.len()]') == [True, True, 1]
    # on an object map, a property is a key: `m.len` is the (missing) key "len"
    assert ev("let m = #{a: 1}; m.len") is None
    assert ev("let m = #{a: 1}; m.mixin(#{b: 2, a: 3}); m") == {"a": 3, "b": 2}
    assert ev("let m = #{a: 1}; m += #{c: 3}; m") == {"a": 1, "c": 3}
    assert ev("let m = #{a: 1}; m.fill_with(#{a: 5, d: 4}); m") == {"a": 1, "d": 4}
    assert ev("let m = #{a: 1, b: 2}; m.filter(|k, v| v > 1)") == {"b": 2}
    assert ev("let m = #{}; m.is_empty()") is True
    assert ev('let m = #{a: 1}; m.clear(); m') == {}


def test_map_to_json(ev):
    assert ev('#{b: [1, "x"], a: #{c: ()}}.to_json()') == '{"a":{"c":null},"b":[1,"x"]}'


def test_map_keys_must_be_strings(err):
    assert err("let m = #{}; m[1] = 2;").kind == "ErrorIndexingType"


def test_setting_property_on_non_map(err):
    e = err("let x = 5;\nx.name = 1;")
    assert e.kind == "ErrorDotExpr" and e.line == 2


def test_property_on_unit(err):
    assert err("let x = ();\nx.name").kind == "ErrorDotExpr"


def test_safe_navigation(ev):
    assert ev("let m = (); m?.a") is None
    assert ev("let m = #{a: #{b: 5}}; m?.a?.b") == 5
    assert ev("let a = (); a?[0]") is None
    assert ev("let s = (); s?.len()") is None


def test_map_method_property_holding_closure(ev):
    assert ev("let m = #{v: 1, get: || this.v * 10}; m.get()") == 10


def test_integer_bit_indexing(ev):
    assert ev("let x = 5; [x[0], x[1], x[2]]") == [True, False, True]
    assert ev("let x = 0; x[3] = true; x") == 8


def test_sort_mixed_types_is_an_error(err):
    assert err('let a = [1, "a"]; a.sort();').kind == "ErrorFunctionNotFound"


def test_array_equality_and_contains_use_rhai_equality(ev):
    assert ev("[1, 2.0] == [1.0, 2]") is True
    assert ev('["a"].contains(\'a\')') is True


def test_callbacks_can_be_function_names(ev):
    assert ev('fn sq(x) { x * x } [1, 2].map("sq")') == [1, 4]
    assert ev('fn big(x) { x > 1 } [1, 2, 3].filter("big")') == [2, 3]
    assert ev('[3, 1, 2].map(Fn("to_string"))') == ["3", "1", "2"]


def test_closures_in_entry_functions_see_top_level_variables(engine):
    ast = engine.compile('let prefix = "/usr"; let files = ["bin/a", "bin/b"];\n'
                         'fn install() { files.map(|f| `${prefix}/${f}`) }')
    scope = engine.run(ast)
    assert engine.call_fn(ast, "install", scope=scope) == ["/usr/bin/a", "/usr/bin/b"]


def test_function_call_style_passes_a_variable_by_reference(ev):
    # Rhai: `push(a, x)` is `a.push(x)`; a constant or a non-variable is copied
    assert ev("let a = [1]; push(a, 2); a") == [1, 2]
    assert ev('let m = #{a: 1, b: 2}; remove(m, "a"); m') == {"b": 2}
    assert ev('let s = " x "; trim(s); s') == "x"
    assert ev("const C = [1]; push(C, 2); C") == [1]
    assert ev('let m = #{s: " x "}; trim(m.s); m.s') == " x "
    assert ev("fn f(v) { push(v, 9); v } let a = [1]; [f(a), a]") == [[1, 9], [1]]


def test_values_handed_out_are_copies(ev):
    # `get`, callbacks and block values never alias the array or map they came from
    assert ev("let a = [[1]]; let x = a.get(0); x.push(2); a") == [[1]]
    assert ev('let m = #{k: [1]}; let g = m.get("k"); g.push(2); m') == {"k": [1]}
    assert ev("let a = [[1]]; let u = a.map(|v| v); u[0].push(2); a") == [[1]]
    assert ev("let a = [[1]]; let z = a.reduce(|s, v| v); z.push(2); a") == [[1]]
    assert ev("let a = [[1]]; let f = a.find_map(|v| v); f.push(2); a") == [[1]]
    assert ev("let a = [[1]]; a.filter(|v| { v.push(2); true }); a") == [[1]]
    assert ev("let a = [[1]]; let b = { a }; b.push(2); a") == [[1]]
    assert ev("let a = [[1]]; let b = a ?? []; b.push(2); a") == [[1]]


def test_non_pure_method_on_a_constant_is_an_error(err, ev):
    e = err("const C = [1]; C.push(2);")
    assert e.kind == "ErrorNonPureMethodCallOnConstant" and "'push'" in e.message
    assert err('const M = #{a: 1}; M.remove("a");').kind == "ErrorNonPureMethodCallOnConstant"
    assert err('const S = " a "; S.trim();').kind == "ErrorNonPureMethodCallOnConstant"
    assert ev("const C = [1, 2]; [C.len(), C.contains(2), C.map(|x| x + 1)]") == [2, True, [2, 3]]
    assert ev("const C = [1]; let d = C; d.push(2); [C, d]") == [[1], [1, 2]]


def test_script_function_name_is_a_function_pointer(ev, err):
    # the Rhai book's short-hand: `array.filter(is_even)` is `array.filter(Fn("is_even"))`
    assert ev("fn is_even(n) { n % 2 == 0 } [1, 2, 3, 4].filter(is_even)") == [2, 4]
    assert ev("fn dbl(n) { n * 2 } let f = dbl; [type_of(f), f.call(4), f.name]") == \
        ["Fn", 8, "dbl"]
    assert ev("fn f() { 1 } let f = 5; f") == 5
    assert err("let g = nothere;").kind == "ErrorVariableNotFound"


def test_callbacks_without_parameters_get_the_element_as_this(ev, err):
    # Rhai's array methods bind `this` to the element when the function has no parameters
    assert ev("[1, 2, 3].map(|| this * 2)") == [2, 4, 6]
    assert ev("[1, 2, 3, 4].filter(|| this % 2 == 0)") == [2, 4]
    assert ev("[1, 2, 3].index_of(|| this == 2)") == 1
    assert ev("let x = [#{a: 1}, #{b: 2}]; [x.find_map(|| this.b), x.find(|| \"a\" in this)]") \
        == [2, {"a": 1}]
    assert ev("fn dbl() { this * 2 } [1, 2].map(dbl)") == [2, 4]


def test_for_each_binds_this_and_passes_the_index(ev, err):
    # Rhai's for_each: `this` is the element (changes are kept), the parameter is the index
    assert ev("let x = [1, 2, 3, 4, 5]; x.for_each(|| this *= this); x") == [1, 4, 9, 16, 25]
    assert ev("let x = [1, 4, 9]; x.for_each(|i| this *= i); x") == [0, 4, 18]
    assert ev("let a = [[1]]; a.for_each(|| this.push(2)); a") == [[1, 2]]
    assert err("const C = [1]; C.for_each(|| this += 1);").kind == \
        "ErrorNonPureMethodCallOnConstant"


def test_to_json_writes_function_pointers_as_names(ev):
    # Rhai's tests/maps.rs
    assert ev('#{a: [#{b: 42}]}.to_json()') == '{"a":[{"b":42}]}'
    assert ev('#{a: [Fn("abc")]}.to_json()') == '{"a":["abc"]}'
    assert ev('#{a: [Fn("abc").curry(42).curry(123)]}.to_json()') == '{"a":[["abc",42,123]]}'
