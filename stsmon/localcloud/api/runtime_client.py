"""``sagemaker-runtime`` for the local endpoints: ``invoke_endpoint`` by endpoint name, as on AWS.

Each local endpoint is its own HTTP server (``endpoints/{name}/endpoint.json``
has its URL) speaking SageMaker's runtime API, so the call goes through a real
boto3 ``sagemaker-runtime`` client pointed at that server (dummy credentials;
botocore serializes the request and parses the answer as it does on AWS).
An endpoint that does not run answers as SageMaker does for an unknown one:
``ValidationError`` "Endpoint NAME of account ACCOUNT not found.".
"""

from __future__ import annotations

import threading
from typing import Any

from ...clients.errors import client_error
from ...state import StateDir


class LocalSageMakerRuntime:
    def __init__(self, state: StateDir, region: str, *, concurrency: int = 10) -> None:
        self.state = state
        self.region = region
        self.concurrency = concurrency
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _client(self, url: str) -> Any:
        import boto3
        from botocore.config import Config

        with self._lock:
            if url not in self._clients:
                config = Config(retries={"max_attempts": 3, "mode": "standard"},
                                max_pool_connections=max(10, self.concurrency), read_timeout=70, connect_timeout=10)
                self._clients[url] = boto3.client("sagemaker-runtime", region_name=self.region, endpoint_url=url,
                                                  config=config, aws_access_key_id="local", aws_secret_access_key="local")
            return self._clients[url]

    def url(self, name: str) -> str | None:
        from ...endpoint.process import read_record

        record = read_record(self.state, name)
        return record.get("url") if record and record.get("running") else None

    def invoke_endpoint(self, *, EndpointName: str, **params: Any) -> dict[str, Any]:  # noqa: N803
        from ...endpoint.process import read_record

        record = read_record(self.state, EndpointName) or {}
        if not record.get("running") or not record.get("url"):
            raise client_error("InvokeEndpoint", "ValidationError",
                               f"Endpoint {EndpointName} of account {record.get('account', '000000000000')} not found.")
        return self._client(record["url"]).invoke_endpoint(EndpointName=EndpointName, **params)
