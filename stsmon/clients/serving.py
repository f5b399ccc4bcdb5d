"""The serving options of a deploy: what `stsmon deploy` passes to either target's runtime client.

They live with the clients because both implementations take them (the local runtime shapes its
endpoint server with them; the AWS one reads ``package_arn``/``unpin``, which on AWS change the
synthesized templates) and the commands build them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServingOptions:
    """The ``stsmon deploy`` flags that the serving handlers honour.

    ``capture``: False with ``--no-capture`` (serve without data capture, even if
    the endpoint config declares it). ``package_arn``: ``--package-arn`` pins the
    model package instead of the latest approved one (the pin is kept for later
    deploys until ``unpin``: ``--unpin``). ``foreground``: serve in
    this process until Ctrl-C instead of a background server. ``host``/``port``:
    where the local endpoint listens (``port=None``: the handler's default).
    ``stop``: stop the local endpoint server (its record stays deployed).
    """

    capture: bool = True
    package_arn: str | None = None
    unpin: bool = False
    foreground: bool = False
    host: str = "127.0.0.1"
    port: int | None = None
    stop: bool = False
