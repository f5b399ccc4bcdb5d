"""``--target aws``: boto3 clients in the resolved region and profile (:func:`client`, what
:func:`stsmon.clients.make_clients` gives the commands), the region's resolution
(:mod:`.environment`), the account's preflight checks (:mod:`.preflight`) and what is not a
boto3 call (:mod:`.runtime`: ``cdk deploy``).

Clients are created only when a command runs with ``--target aws``; tests use
botocore's Stubber. Nothing here runs at import time.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from ..errors import StsmonError


@lru_cache(maxsize=8)
def _profile_session(profile: str) -> Any:
    import boto3

    return boto3.Session(profile_name=profile)


def client(service: str, region: str | None = None, *, profile: str | None = None) -> Any:
    """A boto3 client in ``region`` (the CLI passes the region it resolved, see
    ``stsmon/aws/environment.py``) with ``profile`` (None: botocore's default
    credential chain); a missing profile, credential or region becomes a clear error."""
    import boto3

    try:
        factory = _profile_session(profile).client if profile else boto3.client
        return factory(service, region_name=region)
    except Exception as exc:  # botocore raises several unrelated types here
        raise StsmonError(f"cannot create an AWS {service} client: {exc}") from None
