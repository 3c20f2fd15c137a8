"""Closures: capture by sharing (Rhai's automatic currying), per-iteration variables."""


def test_closure_sees_later_changes_of_captured_variable(ev):
    assert ev("let x = 1; let f = |y| x + y; x = 40; f.call(2)") == 42


def test_closure_changes_captured_variable(ev):
    assert ev("let count = 0; let inc = || count += 1; inc.call(); inc.call(); count") == 2


def test_loop_variable_is_one_shared_variable(ev):
    # the Rhai book: every closure captures the same `i`
    assert ev("let fs = []; for i in 0..3 { fs.push(|| i); } fs.map(|f| f.call())") == [2, 2, 2]


def test_let_inside_a_loop_is_a_fresh_variable_each_iteration(ev):
    assert ev("let fs = []; for i in 0..3 { let j = i; fs.push(|| j); } "
              "fs.map(|f| f.call())") == [0, 1, 2]


def test_closure_captures_outlive_their_scope(ev):
    src = "fn make() { let n = 10; |x| { n += x; n } } let f = make(); f.call(1); f.call(1)"
    assert ev(src) == 12


def test_closure_params_shadow_outer_variables(ev):
    assert ev("let x = 1; let f = |x| x * 10; [f.call(5), x]") == [50, 1]


def test_nested_closures_capture_through(ev):
    assert ev("let a = 1; let f = || { let b = 2; || a + b }; let g = f.call(); a = 10; "
              "g.call()") == 12


def test_closure_type_and_anonymity(ev):
    assert ev("let f = |x| x; [type_of(f), f.is_anonymous]") == ["Fn", True]


def test_closure_as_argument_to_array_methods(ev):
    assert ev("let k = 3; [1, 2, 3].map(|x| x * k)") == [3, 6, 9]
    assert ev("[1, 2, 3].map(|x, i| x * i)") == [0, 2, 6]
    # for_each binds the element to `this`; its parameter is the index (Rhai's for_each)
    assert ev("let seen = []; [4, 5].for_each(|| seen.push(this)); seen") == [4, 5]
    assert ev("let seen = []; [4, 5].for_each(|i| seen.push(i)); seen") == [0, 1]


def test_closure_wrong_number_of_arguments(err):
    e = err("let f = |a, b| a + b;\nf.call(1)")
    assert e.kind == "ErrorFunctionNotFound"
    assert e.line == 2


def test_closure_this_binding_via_object_map_method(ev):
    assert ev("let obj = #{ data: 40, add: |x| this.data += x }; obj.add(2); obj.data") == 42


def test_closure_in_function_cannot_see_script_variables(err):
    e = err("let top = 1;\nfn f() { let g = || top; g.call() }\nf()")
    assert e.kind == "ErrorVariableNotFound"


def test_closure_captured_parameter(ev):
    assert ev("fn adder(n) { |x| x + n } let a5 = adder(5); a5.call(1)") == 6


def test_closure_captures_catch_variable(ev):
    assert ev('let f = (); try { throw "e1"; } catch (e) { f = || e; } f.call()') == "e1"


def test_recursive_closure_via_fn_pointer(ev):
    src = "fn fact(n) { if n <= 1 { 1 } else { n * fact(n - 1) } } let f = Fn(\"fact\"); " \
          "[1, 2, 5].map(|x| f.call(x))"
    assert ev(src) == [1, 2, 120]
