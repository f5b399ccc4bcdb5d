"""Run the SageMaker Python SDK (v3) offline, to build definitions only.

The SDK was written to talk to AWS: it looks up regions, validates roles,
resolves default buckets and sends telemetry. Building a pipeline definition
needs none of that. :func:`offline_sdk` is the one place in the app that
touches ``os.environ`` below ``app.py``: it sets what the SDK reads while it
is imported and used, turns telemetry off, and restores the environment on
exit. :class:`OfflinePipelineSession` answers ``default_bucket()`` with the
configured bucket instead of calling S3.

Facts measured with sagemaker 3.27 (see docs/aws.md):

- the region must be in the environment before the SDK is imported;
- ``SAGEMAKER_VALIDATE_ROLE=false`` stops the role lookup (an IAM call);
- the telemetry decorator starts a thread that sends an HTTP request; opting
  out through the SDK config file costs 5-10 s of config loading, so the
  sender is replaced by a no-op instead;
- ``AWS_EC2_METADATA_DISABLED=true`` stops botocore probing the instance
  metadata service for credentials;
- an S3 URL whose bucket is a CDK token makes the SDK raise, so definitions
  are built with literal placeholders (``pipeline_code.placeholders``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import warnings
from collections.abc import Iterator
from typing import Any

_ENV = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "SAGEMAKER_VALIDATE_ROLE": "false",
}


@contextlib.contextmanager
def offline_sdk(region: str) -> Iterator[None]:
    """Set up the process for offline SDK use while the block runs.

    Environment variables, log levels and warning filters are restored on
    exit. The telemetry sender stays disabled for the rest of the process (it
    is only ever used to build definitions here).
    """
    with _env_lock:
        saved = {key: os.environ.get(key) for key in (*_ENV, "AWS_DEFAULT_REGION")}
        # The SDK logs at DEBUG..WARNING for every step it builds ("Popping out
        # 'ProcessingJobName' ...", "Running within a PipelineSession ...") and
        # some of its loggers set their own levels; none of it is actionable
        # for a definition built at synth, so it is muted while we build.
        saved_disable = logging.root.manager.disable
        logging.disable(logging.WARNING)
        os.environ.update(_ENV)
        os.environ["AWS_DEFAULT_REGION"] = region
        try:
            with warnings.catch_warnings(), _one_botocore_session():
                warnings.simplefilter("ignore")
                _disable_telemetry()
                with _no_local_mode_clients():
                    yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            logging.disable(saved_disable)


_env_lock = threading.RLock()


#: The shared loaders (by search path), kept for the process: building the
#: second definition reuses what the first parsed.
_LOADERS: dict[Any, Any] = {}


@contextlib.contextmanager
def _one_botocore_session() -> Iterator[None]:
    """Let every botocore loader the SDK asks for be one data loader.

    Building the two definitions makes the SDK create 25 clients in 6 sessions
    of its own, and ``image_uris.retrieve`` asks ``botocore.loaders.create_loader()``
    for a new loader on every call (7 here) to read ``endpoints.json``; each new
    loader parses its JSON again (several MB for SageMaker's model and the
    endpoints). One loader (its cache is per instance) parses each file once.
    No AWS call is made either way.
    """
    import botocore.loaders
    import botocore.session

    original = botocore.loaders.create_loader

    def create_loader(search_path_string: Any = None) -> Any:
        if search_path_string not in _LOADERS:
            _LOADERS[search_path_string] = original(search_path_string)
        return _LOADERS[search_path_string]

    # botocore.session imported the name (sessions call that binding); the
    # SDK's endpoint resolvers call botocore.loaders.create_loader.
    botocore.session.create_loader = create_loader
    botocore.loaders.create_loader = create_loader
    try:
        yield
    finally:
        botocore.session.create_loader = original
        botocore.loaders.create_loader = original


@contextlib.contextmanager
def _no_local_mode_clients() -> Iterator[None]:
    """ProcessingStep and TransformStep build a LocalSagemakerClient (a local-mode
    session with two S3 clients) only to read the *name* of one of its methods
    when they check ``step_args``. While definitions are built, a stand-in with
    those method names answers instead; nothing else of local mode is used.
    """
    from sagemaker.mlops.workflow import steps

    class NameOnlyLocalClient:
        def create_processing_job(self, *args: Any, **kwargs: Any) -> None:
            raise NotImplementedError("SageMaker local mode is not used to build definitions")

        def create_transform_job(self, *args: Any, **kwargs: Any) -> None:
            raise NotImplementedError("SageMaker local mode is not used to build definitions")

    original = steps.LocalSagemakerClient
    steps.LocalSagemakerClient = NameOnlyLocalClient
    try:
        yield
    finally:
        steps.LocalSagemakerClient = original


def _disable_telemetry() -> None:
    from sagemaker.core.telemetry import telemetry_logging

    def _no_telemetry(*args: Any, **kwargs: Any) -> None:
        return None

    telemetry_logging._send_telemetry_request = _no_telemetry  # noqa: SLF001 - the SDK has no switch
    telemetry_logging._send_telemetry_request_sync = _no_telemetry  # noqa: SLF001


def pipeline_session(region: str, bucket: str) -> Any:
    """A PipelineSession that never calls AWS: fixed region, bucket, empty SDK config."""
    import boto3
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    class OfflinePipelineSession(PipelineSession):
        def default_bucket(self) -> str:  # no s3:CreateBucket / sts:GetCallerIdentity
            return bucket

    boto_session = boto3.Session(region_name=region)
    return OfflinePipelineSession(boto_session=boto_session, default_bucket=bucket, sagemaker_config={})
