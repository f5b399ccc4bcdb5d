"""Custom::StsApprovedModelPackage - which model package to serve, resolved at deploy time.

The resource's logic is the contracts package's (``stscontracts.served_package``,
shipped in this Lambda's asset): properties, attributes, the physical id and
its lifecycle are documented there and in docs/CONTRACTS.md §3. The local
runtime calls the same module with its own clients. This file adds what only
the Lambda does: CloudFormation's response protocol (``cfn_response``), the
boto3 clients, and the refusal of a request as FAILED with the message.
"""

from __future__ import annotations

from typing import Any

import boto3

import cfn_response
from cfn_response import Request, UserFacingError
from stscontracts.served_package import Served, ServedPackageError, handle, package_attributes, selection_digest

__all__ = ["Served", "handle", "handle_request", "handler", "package_attributes", "selection_digest"]


def handler(event: dict, context: Any) -> None:
    cfn_response.run(event, context, handle_request)


def handle_request(request: Request, *, sagemaker: Any = None, s3: Any = None) -> tuple[str, dict]:
    try:
        return handle(request.request_type, request.properties, request.old_properties,
                      physical_id=request.physical_id,
                      sagemaker=sagemaker or boto3.client("sagemaker"), s3=s3 or boto3.client("s3"))
    except ServedPackageError as exc:
        raise UserFacingError(exc.message) from None
