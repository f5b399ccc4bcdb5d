"""Errors meant for people.

Raise :class:`StsmonError` for anything a user can fix (bad data path, no
deployment, no approved package ...). The CLI prints its message without a
traceback and exits with its ``exit_code``.
"""

from __future__ import annotations


class StsmonError(Exception):
    """A user-facing error: ``message`` says what was wrong and what to do."""

    exit_code = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class UsageError(StsmonError):
    """Bad option or argument value (exit code 2, like click's usage errors)."""

    exit_code = 2


class NotDeployedError(StsmonError):
    """The command needs something that is not deployed (exit code 3)."""

    exit_code = 3
