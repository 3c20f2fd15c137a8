"""`python -m levitate.recipe.rhai FILE [ARGS]`: the same as `rhai-run`."""

import sys

from .cli import main

sys.exit(main())
