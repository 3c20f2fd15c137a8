"""Realistic recipes in the shape of the original LevitateOS ones (state variables, phase
functions reading top-level variables, helpers called with back-tick strings, `0o755` modes,
`//!` directives) run against Python stub helpers registered through the host API."""

import pytest

from levitate.recipe.rhai import Engine, Limits, RhaiError

RIPGREP = r'''//! recipe: ripgrep
//! homepage: https://github.com/BurntSushi/ripgrep
let name = "ripgrep";
let version = "14.1.0";
let description = "Fast line-oriented search tool";
let deps = [];

// state, written back by the package manager
let installed = false;          // Set to true after install
let installed_version = ();     // Version that was installed
let installed_at = ();          // Unix timestamp
let installed_files = [];       // List of installed file paths

fn is_installed() {
    installed && installed_version == version
}

fn acquire() {
    let url = `https://github.com/BurntSushi/ripgrep/releases/download/${version}/ripgrep-${version}-x86_64-unknown-linux-musl.tar.gz`;
    download(url);
    verify_sha256("4cf9f2741e6c465ffdb7c26f38056a59e2a2544b51f7cc128ef28337eeae4d8e");
}

fn build() {
    extract("tar.gz");
}

fn install() {
    let dir = `ripgrep-${version}-x86_64-unknown-linux-musl`;
    install_bin(`${dir}/rg`, 0o755);
    install_man(`${dir}/doc/rg.1`);
    for f in ["complete/rg.bash", "complete/_rg"] {
        install_file(`${dir}/${f}`, `/usr/share/rg/${f}`, 0o644);
    }
}
'''

SEED_STYLE = '''let pkg = #{
    name: "ripgrep",
    version: "14.1.0",
};

fn install() {
    let url = `https://github.com/.../ripgrep-${pkg.version}-x86_64-unknown-linux-musl.tar.gz`;
    download(url);
    extract("tar.gz");
    install_bin("rg");
}
'''

CONFIGURED = r'''//! recipe: hello
let name = "hello";
let version = "2.12.1";
let deps = ["gettext", "libiconv"];
let configure_flags = ["--prefix=/usr", "--disable-nls"];
let installed = false;
let installed_files = [];

fn acquire() {
    for dep in deps {
        require(dep);
    }
    download(`https://ftp.gnu.org/gnu/${name}/${name}-${version}.tar.gz`);
}

fn build() {
    extract("tar.gz");
    let src = `${name}-${version}`;
    let flags = configure_flags;
    if is_def_var("arch") { flags.push(`--host=${arch}`); }
    run(`cd ${src} && ./configure ${flags.join(" ")}`);
    let jobs = nproc();
    run(`make -C ${src} -j${jobs}`);
}

fn install() {
    run(`make -C ${name}-${version} DESTDIR=${destdir()} install`);
    let files = list_files(destdir());
    for f in files {
        if f.ends_with(".la") { continue; }
        installed_files.push(f);
    }
    installed = true;
}

fn remove() {
    for f in installed_files { rm(f); }
    installed_files = [];
    installed = false;
}
'''

WITH_HELPERS_AND_ERRORS = r'''//! recipe: fd
let name = "fd";
let version = "9.0.0";
let mirrors = ["https://a.example", "https://b.example"];
let installed = false;

fn artifact(base, v) { `${base}/fd-v${v}-x86_64-unknown-linux-gnu.tar.gz` }

fn acquire() {
    let ok = false;
    for m in mirrors {
        try {
            download(artifact(m, version));
            ok = true;
            break;
        } catch (err) {
            log(`mirror failed: ${m}: ${err}`);
        }
    }
    if !ok { throw `no mirror has ${name} ${version}`; }
}

fn install() {
    let target = switch arch() {
        "x86_64" => "/usr/bin/fd",
        "aarch64" => "/usr/local/bin/fd",
        _ => throw "unsupported architecture",
    };
    install_bin(target, 0o755);
    installed = true;
}
'''


class Helpers:
    """Stand-ins for the package manager's recipe helpers."""

    def __init__(self, fail_urls=()):
        self.calls = []
        self.fail_urls = set(fail_urls)

    def register(self, eng: Engine):
        def rec(name):
            def f(*args):
                self.calls.append((name,) + args)
            return f
        for n in ("extract", "install_man", "require", "run", "rm", "log", "verify_sha256"):
            eng.register_fn(n, rec(n))
        eng.register_fn("install_bin", lambda path, mode=0o755: self.calls.append(
            ("install_bin", path, oct(mode))))
        eng.register_fn("install_file", lambda src, dst, mode: self.calls.append(
            ("install_file", src, dst, oct(mode))))

        def download(url):
            if any(url.startswith(u) for u in self.fail_urls):
                raise ConnectionError(f"cannot reach {url}")
            self.calls.append(("download", url))
        eng.register_fn("download", download)
        eng.register_fn("nproc", lambda: 4)
        eng.register_fn("destdir", lambda: "/tmp/stage")
        eng.register_fn("list_files", lambda d: [f"{d}/usr/bin/hello", f"{d}/usr/lib/x.la"])
        eng.register_fn("arch", lambda: "x86_64")
        return eng


def lifecycle(eng, ast, scope):
    """What the package manager does: is_installed() -> acquire() -> build() -> install()."""
    if ast.has_fn("is_installed", 0) and eng.call_fn(ast, "is_installed", scope=scope):
        return "already installed"
    for phase in ("acquire", "build", "install"):
        if ast.has_fn(phase, 0):
            eng.call_fn(ast, phase, scope=scope)
    return "installed"


@pytest.fixture
def sandbox():
    h = Helpers()
    return h, h.register(Engine(Limits.sandbox()))


def test_ripgrep_recipe_lifecycle(sandbox):
    helpers, eng = sandbox
    ast = eng.compile(RIPGREP, name="recipes/ripgrep.rhai")
    assert ast.module_docs[0] == " recipe: ripgrep"
    scope = eng.run(ast)
    assert scope["installed_version"] is None and scope["installed_files"] == []
    assert lifecycle(eng, ast, scope) == "installed"
    d = "ripgrep-14.1.0-x86_64-unknown-linux-musl"
    assert helpers.calls == [
        ("download", "https://github.com/BurntSushi/ripgrep/releases/download/14.1.0/"
                     "ripgrep-14.1.0-x86_64-unknown-linux-musl.tar.gz"),
        ("verify_sha256", "4cf9f2741e6c465ffdb7c26f38056a59e2a2544b51f7cc128ef28337eeae4d8e"),
        ("extract", "tar.gz"),
        ("install_bin", f"{d}/rg", "0o755"),
        ("install_man", f"{d}/doc/rg.1"),
        ("install_file", f"{d}/complete/rg.bash", "/usr/share/rg/complete/rg.bash", "0o644"),
        ("install_file", f"{d}/complete/_rg", "/usr/share/rg/complete/_rg", "0o644"),
    ]


def test_state_variables_decide_is_installed(sandbox):
    helpers, eng = sandbox
    ast = eng.compile(RIPGREP)
    scope = eng.run(ast)
    scope["installed"] = True
    scope["installed_version"] = "14.1.0"
    assert lifecycle(eng, ast, scope) == "already installed"
    scope["installed_version"] = "13.0.0"
    assert lifecycle(eng, ast, scope) == "installed"


def test_seed_faq_recipe_shape(sandbox):
    helpers, eng = sandbox
    ast = eng.compile(SEED_STYLE)
    eng.call_fn(ast, "install")
    assert helpers.calls == [
        ("download", "https://github.com/.../ripgrep-14.1.0-x86_64-unknown-linux-musl.tar.gz"),
        ("extract", "tar.gz"), ("install_bin", "rg", "0o755")]


def test_configure_make_recipe_updates_its_state(sandbox):
    helpers, eng = sandbox
    ast = eng.compile(CONFIGURED, name="hello.rhai")
    scope = eng.run(ast)
    lifecycle(eng, ast, scope)
    runs = [c[1] for c in helpers.calls if c[0] == "run"]
    assert runs == ["cd hello-2.12.1 && ./configure --prefix=/usr --disable-nls",
                    "make -C hello-2.12.1 -j4",
                    "make -C hello-2.12.1 DESTDIR=/tmp/stage install"]
    assert [c for c in helpers.calls if c[0] == "require"] == [("require", "gettext"),
                                                              ("require", "libiconv")]
    assert scope["installed"] is True
    assert scope["installed_files"] == ["/tmp/stage/usr/bin/hello"]
    # a copied array: the recipe's flags variable is unchanged by the local push
    assert scope["configure_flags"] == ["--prefix=/usr", "--disable-nls"]
    eng.call_fn(ast, "remove", scope=scope)
    assert scope["installed"] is False and scope["installed_files"] == []
    assert ("rm", "/tmp/stage/usr/bin/hello") in helpers.calls


def test_host_variables_visible_to_entry_functions(sandbox):
    helpers, eng = sandbox
    ast = eng.compile(CONFIGURED)
    scope = eng.run(ast)
    scope["arch"] = "aarch64-linux-gnu"
    eng.call_fn(ast, "build", scope=scope)
    assert helpers.calls[1] == ("run", "cd hello-2.12.1 && ./configure --prefix=/usr "
                                       "--disable-nls --host=aarch64-linux-gnu")


def test_mirror_fallback_with_try_catch():
    h = Helpers(fail_urls=["https://a.example"])
    eng = h.register(Engine(Limits.sandbox()))
    ast = eng.compile(WITH_HELPERS_AND_ERRORS, name="fd.rhai")
    scope = eng.run(ast)
    lifecycle(eng, ast, scope)
    assert h.calls[0] == ("log", "mirror failed: https://a.example: cannot reach "
                                 "https://a.example/fd-v9.0.0-x86_64-unknown-linux-gnu.tar.gz")
    assert h.calls[1] == ("download", "https://b.example/fd-v9.0.0-x86_64-unknown-linux-gnu."
                                      "tar.gz")
    assert h.calls[2] == ("install_bin", "/usr/bin/fd", "0o755")
    assert scope["installed"] is True


def test_all_mirrors_failing_reports_the_recipe_error():
    h = Helpers(fail_urls=["https://"])
    eng = h.register(Engine(Limits.sandbox()))
    ast = eng.compile(WITH_HELPERS_AND_ERRORS, name="recipes/fd.rhai")
    scope = eng.run(ast)
    with pytest.raises(RhaiError) as info:
        eng.call_fn(ast, "acquire", scope=scope)
    e = info.value
    assert e.kind == "ErrorRuntime" and e.value == "no mirror has fd 9.0.0"
    assert e.source_name == "recipes/fd.rhai" and e.line == 20
    assert str(e).startswith("recipes/fd.rhai:20:14: Runtime error: no mirror has fd 9.0.0")


def test_typo_in_a_recipe_helper_name_is_reported_with_a_suggestion(sandbox):
    helpers, eng = sandbox
    ast = eng.compile(RIPGREP.replace("install_man(", "instal_man("), name="ripgrep.rhai")
    scope = eng.run(ast)
    with pytest.raises(RhaiError) as info:
        lifecycle(eng, ast, scope)
    e = info.value
    assert e.message == ("Function not found: instal_man (string); "
                         "did you mean 'install_man'?")
    assert (e.line, e.column) == (31, 5)
    assert "  31 |     instal_man(`${dir}/doc/rg.1`);" in str(e)
