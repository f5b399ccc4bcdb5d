"""What the local target does that has no AWS API: deploying the assembly, tearing down, this machine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...clock import Clock
from ...state import StateDir

if TYPE_CHECKING:
    from ...clients.validation import CallLog
    from stscontracts.config import Config


@dataclass
class LocalRuntime:
    config: Config
    state: StateDir
    clock: Clock
    call_log: CallLog | None = None

    name = "local"

    def where(self) -> str:
        return f"locally ({self.state.root})"

    def deploy_hint(self, stacks: str = "") -> str:
        return "run `stsmon deploy` first"
