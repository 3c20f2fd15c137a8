"""The functions recipes call, registered into the Rhai engine by theme (see docs/recipe.md).

    ctx = Context(prefix=..., build_dir=..., stage=...)
    engine = make_engine(ctx)       # helpers + PREFIX, BUILD_DIR, ARCH, NPROC constants

With `Context(..., dry=DryRun())` the helpers that would fetch, write or run record what they
would do instead (helpers/dry.py).
"""

from __future__ import annotations

from .context import Context, DryRun, HelperError


def make_engine(ctx: Context, *, module_root: str | None = None, cache_dir: str | None = None):
    """An engine whose scripts see the helpers bound to `ctx` (imported here: `recipe list`
    and friends never need the engine or the download and RPM code)."""
    from ..rhai import Engine, Limits
    from . import archive, checksum, env, fetch, fs, install, process, rpm
    engine = Engine(Limits.sandbox(), module_root=module_root, cache_dir=cache_dir,
                    on_print=ctx.log, on_debug=ctx.log)
    for theme in (fetch, checksum, archive, fs, process, install, env, rpm):
        theme.register(engine, ctx)
    if ctx.dry is not None:             # dry mode: the helpers that would act only record
        from . import dry
        dry.register(engine, ctx)
    engine.register_const("PREFIX", str(ctx.prefix))
    engine.register_const("BUILD_DIR", str(ctx.build_dir))
    engine.register_const("ARCH", ctx.arch)
    engine.register_const("NPROC", ctx.nproc)
    return engine


__all__ = ["Context", "DryRun", "HelperError", "make_engine"]
