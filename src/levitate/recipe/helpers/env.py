"""Environment and messages: env (\"\" when unset), set_env (seen by later commands), log, warn."""

from __future__ import annotations

import os

from .context import Context


def register(engine, ctx: Context) -> None:
    r = engine.register_fn
    r("env", lambda name: ctx.env.get(str(name), os.environ.get(str(name), "")))
    r("set_env", lambda name, value: ctx.env.__setitem__(str(name), str(value)))
    r("log", lambda msg: ctx.log(f"  {msg}"))
    r("warn", lambda msg: ctx.log(f"  warning: {msg}"))
