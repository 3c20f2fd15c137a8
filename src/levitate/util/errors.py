"""User-facing errors: one clear line saying what went wrong and a hint of what to do.

Code raises `LevitateError` for anything a user can cause (bad input, a missing host tool, a
failed download, a bad signature); the command-line entry points turn it into that one line and a
non-zero exit, with a traceback only under `--debug`.
"""

from __future__ import annotations


class LevitateError(Exception):
    """An error the user can act on. `hint` says what to do about it."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None, *, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def headline(self) -> str:
        """What went wrong, on one line (a script error puts its file:line:col in front)."""
        return self.message

    def __str__(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message


class VerificationError(LevitateError):
    """A checksum or signature did not match: the input must not be used."""

    exit_code = 3


class DownloadError(LevitateError):
    """A file could not be fetched."""

    exit_code = 4


class MissingToolError(LevitateError):
    """A host tool the requested work needs is not installed."""

    exit_code = 5

