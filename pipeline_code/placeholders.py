"""Literal stand-ins for deploy-time values in a pipeline definition.

The SDK validates S3 URLs and ARNs, so a CDK token (``${Token[...]}``)
cannot go where a bucket name or an ARN goes. Definitions are built with
these literals, which the SDK accepts, and :func:`substitute` swaps them for
the real values (CDK tokens, in the stacks) before the definition is
serialized. Each placeholder is unlikely enough that it never occurs by
accident, and :func:`find_leftovers` lets tests prove none survive.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_TAG = "stsmon0placeholder"

BUCKET = f"{_TAG}-bucket"
ROLE_ARN = f"arn:aws:iam::000000000000:role/{_TAG}-role"
KMS_KEY_ARN = f"arn:aws:kms:us-east-1:000000000000:key/{_TAG}-key"
BASELINE_URI = f"s3://{_TAG}-bucket/{_TAG}-baseline"
DATA_QUALITY_BASELINE_URI = f"s3://{_TAG}-bucket/{_TAG}-dq-baseline"
#: The stack's region (``AWS::Region``): the monitor makes its clients there.
REGION = f"{_TAG}-region"

ALL = (BASELINE_URI, DATA_QUALITY_BASELINE_URI, BUCKET, ROLE_ARN, KMS_KEY_ARN, REGION)


def substitute(value: Any, replacements: Mapping[str, str]) -> Any:
    """``value`` (JSON-like) with every placeholder inside its strings replaced.

    Longer placeholders are replaced first, so ``BASELINE_URI`` (which
    contains ``BUCKET``) is swapped whole.
    """
    order = sorted(replacements, key=len, reverse=True)

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            for placeholder in order:
                if placeholder in item:
                    item = item.replace(placeholder, replacements[placeholder])
            return item
        if isinstance(item, dict):
            return {walk(k): walk(v) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v) for v in item]
        return item

    return walk(value)


def find_leftovers(text: str) -> list[str]:
    """Placeholders still present in ``text`` (a serialized definition)."""
    return [p for p in ALL if p in text] or ([_TAG] if _TAG in text else [])
