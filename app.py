#!/usr/bin/env python3
"""The CDK app: read the configuration once, build the four stacks.

Configuration layers (later wins): defaults < cdk.json "context" < .env <
environment < ``cdk -c KEY=VALUE`` (see stscontracts/config.py and docs/aws.md).
Nothing below this file reads the environment or the CDK context.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks

from stacks import add_stacks
from stscontracts.config import ConfigError, cli_overrides, load_config, read_cdk_json_context

HERE = Path(__file__).resolve().parent


def main() -> None:
    # CDK's built-in template validation (a 3 s WebAssembly pass on every
    # synth) is off: cfn-lint, checkov and cdk-nag run on the same templates
    # in the test suite (tests/stacks/test_security_gates.py).
    try:
        cdk_json = read_cdk_json_context(HERE / "cdk.json")
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    # cdk.json's context again as app defaults, so `python app.py` without the
    # CLI synthesizes the same (CLI-provided context takes precedence).
    # No performance report: aws-cdk-lib writes cdk.out/performance-counters.json
    # (timings) when synth takes over 10 s a stack, so a loaded machine would
    # get a different assembly from the same inputs.
    app = cdk.App(builtin_cloud_formation_validation=False, context=cdk_json, performance_reporting=False)
    try:
        config = load_config(
            cli_overrides(app.node.get_all_context(), cdk_json),
            os.environ,
            HERE / ".env",
            cdk_json_context=cdk_json,
        )
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    add_stacks(app, config)
    # Every synth is a security gate: an unacknowledged finding fails it.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), NIST80053R5Checks(app))
    app.synth()


if __name__ == "__main__":
    main()
