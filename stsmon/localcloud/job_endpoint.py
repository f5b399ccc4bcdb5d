"""The AWS endpoint a locally run job's boto3 talks to (S3 reads, CloudWatch PutMetricData).

On AWS a SageMaker job's container reaches S3 and CloudWatch through boto3's
ordinary configuration: the credentials of the execution role come from the
container's credential endpoint, the regional service endpoints from the
region. Locally the executor starts one :class:`JobEndpoint` per pipeline
execution (loopback, a free port) and gives every job the same kind of
configuration in its environment (:meth:`JobEndpoint.environment`):
``AWS_ENDPOINT_URL_S3`` (boto3's per-service endpoint setting) and
credentials. The job's code is not told it runs locally: the calls it makes
are the ones it makes on AWS, and botocore serializes and parses them with
its service models, so a malformed call fails here as it would there.

Served, over the state folder's buckets (``{state}/s3/{bucket}/{key}``):

- S3 ``ListObjectsV2`` (prefix, delimiter, pagination with continuation
  tokens, ``max-keys``, ``start-after``, ``encoding-type=url``),
  ``GetObject`` and ``HeadObject`` (whole objects), path-style addressing
  (what botocore uses for an IP endpoint). A listing walks only the folder
  of the prefix, as S3 answers from the keys under the prefix.
- CloudWatch ``PutMetricData`` (the JSON protocol botocore uses for
  CloudWatch, ``X-Amz-Target: GraniteServiceVersion20100801.PutMetricData``):
  the data points go to the local metrics store
  (:class:`stsmon.monitoring.metrics.MetricStore`, the local CloudWatch),
  tagged with the execution (``Source``). A call signed for another region
  is refused with the reason: on AWS it would succeed in that region, where
  no alarm of this app watches it - the class of fault a missing or wrong
  ``region_name`` causes.
- Anything else answers ``501 NotImplemented`` naming the operation: a job
  that needs more fails loudly here instead of working differently.

Files whose name starts with ``.`` are not objects (they are the local
runtime's in-progress temporary files). Every request is counted
(:attr:`JobEndpoint.requests`) so tests can check what a job read.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
from collections import Counter
from datetime import UTC, datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit
from xml.sax.saxutils import escape

from ..state import StateDir

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
MAX_KEYS = 1000
#: How often the serving thread looks for a stop request (socketserver's default is 0.5 s): ``stop()``
#: waits for it, and the executor stops the endpoint when a pipeline execution ends.
SHUTDOWN_POLL_SECONDS = 0.02
#: Credentials the local jobs sign with (nothing checks them; boto3 needs some to sign).
LOCAL_ACCESS_KEY = "STSMONLOCALJOBKEY"
LOCAL_SECRET_KEY = "stsmon-local-job-secret"
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _etag(path: Path, stat: os.stat_result) -> str:
    """A stable entity tag from the file's identity (S3's is an MD5 for simple uploads; clients only compare it)."""
    digest = hashlib.md5(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode(), usedforsecurity=False).hexdigest()
    return f'"{digest}"'


def _iso(mtime: float) -> str:
    return datetime.fromtimestamp(mtime, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class LocalBuckets:
    """The state folder's buckets as S3 sees them: keys, listings, objects."""

    def __init__(self, state: StateDir) -> None:
        self.root = state.s3_root

    def bucket_path(self, bucket: str) -> Path | None:
        if not _BUCKET.match(bucket):
            return None
        path = self.root / bucket
        return path if path.is_dir() else None

    def object_path(self, bucket: str, key: str) -> Path | None:
        base = self.bucket_path(bucket)
        parts = key.split("/")
        if base is None or not key or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
            return None
        path = base.joinpath(*parts)
        return path if path.is_file() else None

    def keys(self, bucket: str, prefix: str) -> list[str]:
        """Every key that starts with ``prefix``, in S3's order (UTF-8 bytes).

        Only the folder of the prefix (up to its last ``/``) is walked.
        """
        base = self.bucket_path(bucket)
        if base is None:
            return []
        folder_part = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        parts = [p for p in folder_part.split("/") if p]
        if any(p in (".", "..") for p in parts):
            return []
        folder = base.joinpath(*parts)
        if not folder.is_dir():
            return []
        found = []
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = Path(dirpath).relative_to(base).as_posix()
            head = "" if rel == "." else rel + "/"
            for name in filenames:
                if name.startswith("."):
                    continue
                key = head + name
                if key.startswith(prefix):
                    found.append(key)
        found.sort(key=lambda k: k.encode("utf-8"))
        return found

    def list_page(self, bucket: str, prefix: str, delimiter: str, max_keys: int, after: str
                  ) -> tuple[list[tuple[str, str]], bool, str]:
        """One ListObjectsV2 page: (entries, truncated, last), entries ``("key" | "prefix", value)``
        in S3's order after ``after``; ``last`` is what the next page starts after."""
        entries: list[tuple[str, str]] = []
        seen_prefixes: set[str] = set()
        last = ""
        truncated = False
        for key in self.keys(bucket, prefix):
            if after and key.encode() <= after.encode():
                continue
            if delimiter:
                cut = key.find(delimiter, len(prefix))
                if cut >= 0:
                    common = key[: cut + len(delimiter)]
                    if common in seen_prefixes or (after and common.encode() <= after.encode()):
                        continue
                    if len(entries) >= max_keys:
                        truncated = True
                        break
                    seen_prefixes.add(common)
                    entries.append(("prefix", common))
                    # a common prefix rolls up every key below it: resume after its last key
                    last = common + "\U0010ffff"
                    continue
            if len(entries) >= max_keys:
                truncated = True
                break
            entries.append(("key", key))
            last = key
        return entries, truncated, last


class JobEndpoint:
    """A loopback HTTP endpoint speaking the AWS APIs a local job uses. Use as a context manager."""

    def __init__(self, state: StateDir, *, region: str, source: str = "job") -> None:
        self.state = state
        self.region = region
        self.source = source  # tags the metric data points published through it (the execution id)
        self._puts = 0
        self.buckets = LocalBuckets(state)
        self.requests: Counter[str] = Counter()
        self.bytes_served = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> JobEndpoint:
        endpoint = self

        class Handler(_Handler):
            owner = endpoint

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(SHUTDOWN_POLL_SECONDS,),
                                        name="stsmon-job-endpoint", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> JobEndpoint:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the job endpoint is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def environment(self) -> dict[str, str]:
        """What a job's process gets, in the place of the container's role credentials and AWS endpoints."""
        return {
            "AWS_ENDPOINT_URL_S3": self.url,
            "AWS_ENDPOINT_URL_CLOUDWATCH": self.url,
            "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET_KEY,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def count(self, operation: str, served: int = 0) -> None:
        with self._lock:
            self.requests[operation] += 1
            self.bytes_served += served

    def put_metric_data(self, namespace: str, data: list[dict[str, Any]]) -> int:
        """Store PutMetricData's data points in the local CloudWatch; each call is its own Source."""
        from ..monitoring.metrics import MetricStore  # the local CloudWatch store

        with self._lock:
            self._puts += 1
            source = f"{self.source}#{self._puts}"
        return MetricStore(self.state).put(namespace, data, source=source)


class _Handler(BaseHTTPRequestHandler):
    owner: JobEndpoint
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY: a response goes out as two writes (headers, then body); with Nagle's algorithm on, the body
    # waited for the client's delayed ACK of the headers, ~40 ms a request on a kept-alive connection
    # (50 GetObject took 2.3 s, 45 ms each).
    disable_nagle_algorithm = True
    server_version = "stsmon-local-aws"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        return None  # the job's own logs say what it did

    # -- dispatch ----------------------------------------------------------------------

    def _scope(self) -> tuple[str, str]:
        """(region, service) of the request's SigV4 credential scope."""
        match = _SCOPE.search(self.headers.get("Authorization", ""))
        return (match.group(1), match.group(2)) if match else ("", "")

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self._dispatch(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch(head=True)

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch(head=False)

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch(head=False)

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch(head=False)

    def _dispatch(self, *, head: bool) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        region, service = self._scope()
        if service == "s3":
            self._s3(head=head, body=body)
        elif service == "monitoring":
            self._cloudwatch(region, body)
        else:
            self._error(501, "NotImplemented",
                        f"the local job endpoint serves S3 reads and CloudWatch PutMetricData only; "
                        f"{self.command} {self.path} signed for {service or 'no service'} is not implemented locally")

    # -- CloudWatch (JSON 1.0 protocol) -------------------------------------------------------

    def _cloudwatch(self, region: str, body: bytes) -> None:
        target = self.headers.get("X-Amz-Target", "")
        content_type = self.headers.get("Content-Type", "")
        if self.command != "POST" or not content_type.startswith("application/x-amz-json-1.0"):
            return self._json_error(501, "NotImplemented",
                                    f"the local CloudWatch speaks the JSON 1.0 protocol only (got {self.command} "
                                    f"{content_type or 'no Content-Type'})")
        operation = target.rpartition(".")[2]
        if operation != "PutMetricData":
            return self._json_error(501, "NotImplemented",
                                    f"the local CloudWatch serves PutMetricData only, not {operation or target!r}")
        if region != self.owner.region:
            return self._json_error(400, "WrongRegion",
                                    f"PutMetricData signed for region {region!r}, but this app is deployed in "
                                    f"{self.owner.region!r}: on AWS the data points would go to {region}'s "
                                    f"CloudWatch, where no alarm of this app watches them. Make the client in the "
                                    f"stack's region")
        try:
            request = json.loads(body or b"{}")
            namespace = request["Namespace"]
            data = []
            for datum in request.get("MetricData") or []:
                stamp = datum.get("Timestamp")
                if isinstance(stamp, (int, float)):
                    stamp = datetime.fromtimestamp(stamp, UTC).isoformat()
                data.append({**datum, "Timestamp": stamp})
        except (ValueError, KeyError, TypeError) as exc:
            return self._json_error(400, "InvalidParameterValue", f"unreadable PutMetricData request: {exc}")
        if any(not d.get("Timestamp") for d in data):
            return self._json_error(400, "MissingParameter", "every data point needs a Timestamp locally")
        self.owner.put_metric_data(namespace, data)
        self.owner.count("cloudwatch:PutMetricData")
        self._send(200, b"{}", "application/x-amz-json-1.0")

    def _json_error(self, status: int, code: str, message: str) -> None:
        self.owner.count(f"error:{code}")
        body = json.dumps({"__type": code, "message": message}).encode()
        self._send(status, body, "application/x-amz-json-1.0", headers={"x-amzn-query-error": f"{code};Sender"})

    # -- S3 ------------------------------------------------------------------------------

    def _s3(self, *, head: bool, body: bytes) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        bucket, _, key = unquote(url.path).lstrip("/").partition("/")
        if self.command in ("GET", "HEAD") and bucket and not key and query.get("list-type") == "2":
            return self._list_v2(bucket, query)
        if self.command in ("GET", "HEAD") and bucket and key and not (set(query) - {"partNumber"}):
            if "Range" in self.headers or query.get("partNumber"):
                return self._error(501, "NotImplemented", "ranged GetObject is not implemented locally", head=head)
            return self._get_object(bucket, key, head=head)
        operation = f"{self.command} /{bucket}{'/' + key if key else ''}" + (f"?{url.query}" if url.query else "")
        self._error(501, "NotImplemented",
                    f"the local S3 endpoint serves ListObjectsV2, GetObject and HeadObject only, not {operation}",
                    head=head)

    def _list_v2(self, bucket: str, query: dict[str, str]) -> None:
        owner = self.owner
        if owner.buckets.bucket_path(bucket) is None:
            return self._error(404, "NoSuchBucket", "The specified bucket does not exist", resource=bucket)
        prefix = query.get("prefix", "")
        delimiter = query.get("delimiter", "")
        url_encode = query.get("encoding-type") == "url"
        try:
            max_keys = max(0, min(MAX_KEYS, int(query.get("max-keys", MAX_KEYS))))
        except ValueError:
            return self._error(400, "InvalidArgument", "max-keys must be an integer")
        token = query.get("continuation-token")
        after = query.get("start-after", "")
        if token is not None:
            try:
                after = base64.urlsafe_b64decode(token.encode()).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                return self._error(400, "InvalidArgument", "The continuation token provided is incorrect")
        entries, truncated, last = owner.buckets.list_page(bucket, prefix, delimiter, max_keys, after)
        enc = (lambda v: quote(v, safe="/")) if url_encode else (lambda v: v)
        parts = [f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="{S3_NS}">',
                 f"<Name>{escape(bucket)}</Name>", f"<Prefix>{escape(enc(prefix))}</Prefix>"]
        if delimiter:
            parts.append(f"<Delimiter>{escape(enc(delimiter))}</Delimiter>")
        parts += [f"<MaxKeys>{max_keys}</MaxKeys>", f"<KeyCount>{len(entries)}</KeyCount>",
                  f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"]
        if token is not None:
            parts.append(f"<ContinuationToken>{escape(token)}</ContinuationToken>")
        if truncated:
            next_token = base64.urlsafe_b64encode(last.encode("utf-8")).decode()
            parts.append(f"<NextContinuationToken>{next_token}</NextContinuationToken>")
        if query.get("start-after"):
            parts.append(f"<StartAfter>{escape(enc(query['start-after']))}</StartAfter>")
        if url_encode:
            parts.append("<EncodingType>url</EncodingType>")
        base = owner.buckets.bucket_path(bucket)
        for kind, value in entries:
            if kind == "prefix":
                parts.append(f"<CommonPrefixes><Prefix>{escape(enc(value))}</Prefix></CommonPrefixes>")
                continue
            path = base.joinpath(*value.split("/"))
            try:
                stat = path.stat()
            except OSError:
                continue  # removed meanwhile: S3 would not list it either
            parts.append(f"<Contents><Key>{escape(enc(value))}</Key><LastModified>{_iso(stat.st_mtime)}</LastModified>"
                         f"<ETag>{escape(_etag(path, stat))}</ETag><Size>{stat.st_size}</Size>"
                         f"<StorageClass>STANDARD</StorageClass></Contents>")
        parts.append("</ListBucketResult>")
        owner.count("s3:ListObjectsV2")
        self._send(200, "".join(parts).encode("utf-8"), "application/xml")

    def _get_object(self, bucket: str, key: str, *, head: bool) -> None:
        owner = self.owner
        if owner.buckets.bucket_path(bucket) is None:
            return self._error(404, "NoSuchBucket", "The specified bucket does not exist", resource=bucket, head=head)
        path = owner.buckets.object_path(bucket, key)
        if path is None:
            return self._error(404, "NoSuchKey", "The specified key does not exist.", resource=key, head=head)
        try:
            data = path.read_bytes()
            stat = path.stat()
        except OSError:
            return self._error(404, "NoSuchKey", "The specified key does not exist.", resource=key, head=head)
        owner.count("s3:HeadObject" if head else "s3:GetObject", 0 if head else len(data))
        headers = {"ETag": _etag(path, stat), "Last-Modified": formatdate(stat.st_mtime, usegmt=True),
                   "Accept-Ranges": "bytes"}
        self._send(200, data, "application/octet-stream", headers=headers, head=head)

    # -- responses ---------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str, *, headers: dict[str, str] | None = None,
              head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amz-request-id", hashlib.sha1(self.path.encode(), usedforsecurity=False).hexdigest()[:16].upper())
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str, *, resource: str = "", head: bool = False) -> None:
        self.owner.count(f"error:{code}")
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(code)}</Code>'
                f"<Message>{escape(message)}</Message><Resource>{escape(resource)}</Resource></Error>").encode()
        self._send(status, body, "application/xml", head=head)
