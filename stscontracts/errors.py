"""The one error type of the contracts: a value or document that breaks one.

It is deliberately not :class:`stsmon.errors.StsmonError` (this package
imports nothing of the app); the CLI turns it into its message and
``exit_code`` the same way.
"""

from __future__ import annotations


class ContractError(Exception):
    """A value or document breaks a contract; ``message`` names it and where (exit code 2)."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
