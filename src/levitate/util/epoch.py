"""SOURCE_DATE_EPOCH (https://reproducible-builds.org/specs/source-date-epoch/), read by one rule.

Unset or empty: no fixed time. Otherwise ASCII digits only, at most 2**32-1 (the newc cpio
header and the FAT volume serial hold 32 bits); anything else is refused, as the specification
asks ("the build process SHOULD exit with a non-zero error code" on a malformed value), rather than
silently ignored or read as an Arabic-Indic digit string that int() would accept.
"""

from __future__ import annotations

import os
import re

from .errors import LevitateError

_DIGITS = re.compile(r"[0-9]+")
MAX_EPOCH = 2**32 - 1


def source_date_epoch() -> int | None:
    """The timestamp every output should carry, or None when SOURCE_DATE_EPOCH is unset or empty."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    if value == "":
        return None
    if not _DIGITS.fullmatch(value) or int(value) > MAX_EPOCH:
        raise LevitateError(f"SOURCE_DATE_EPOCH={value!r} is not a number of seconds since 1970 "
                            f"(0 to {MAX_EPOCH})", "unset it, or set it to e.g. `git log -1 --format=%ct`")
    return int(value)
