"""What ``--target aws`` does that is not a boto3 call: ``cdk deploy``, the account's checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..clock import Clock
from ..state import StateDir

if TYPE_CHECKING:
    from stscontracts.config import Config
    from .environment import AwsEnvironment


@dataclass
class AwsRuntime:
    config: Config
    state: StateDir
    clock: Clock
    environment: AwsEnvironment | None = None

    name = "aws"

    def where(self) -> str:
        return f"on AWS ({self.config.region})"

    def deploy_hint(self, stacks: str = "") -> str:
        return f"run `npx cdk deploy {stacks or '--all'}`"
