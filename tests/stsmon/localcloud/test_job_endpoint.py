"""The local job endpoint answers S3 reads as S3 does (checked against moto), through plain boto3.

A job reaches it the way a SageMaker container reaches AWS: boto3's own
configuration from the environment (``AWS_ENDPOINT_URL_S3``, credentials,
region); nothing in the job's code knows it runs locally.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import boto3
import pytest

from stsmon.localcloud.job_endpoint import JobEndpoint
from stsmon.state import StateDir

KEYS = [
    "sts/datacapture/ep/AllTraffic/2033/05/17/12/00-01-000-a.jsonl",
    "sts/datacapture/ep/AllTraffic/2033/05/17/12/30-00-000-b.jsonl",
    "sts/datacapture/ep/AllTraffic/2033/05/17/13/00-00-000-c.jsonl",
    "sts/datacapture/ep/Shadow/2033/05/17/12/00-00-000-d.jsonl",
    "sts/datacapture/ep-other/AllTraffic/2033/05/17/12/00-00-000-e.jsonl",
    "sts/ground-truth/2033/05/17/12/labels a+b.jsonl",
    "sts/ground-truth/2033/05/17/13/labels.jsonl",
    "sts/readme.txt",
]
LISTINGS = [
    {"Prefix": "sts/datacapture/ep/"},
    {"Prefix": "sts/datacapture/ep/", "Delimiter": "/"},
    {"Prefix": "sts/datacapture/ep"},  # ep and ep-other
    {"Prefix": "sts/datacapture/ep", "Delimiter": "/"},
    {"Prefix": "sts/datacapture/ep/AllTraffic/2033/05/17/12/"},
    {"Prefix": "sts/ground-truth/2033/05/17/12/"},
    {"Prefix": "sts/nothing/"},
    {"Prefix": "", "Delimiter": "/"},
    {"Prefix": "sts/", "StartAfter": "sts/datacapture/ep/Shadow"},
]


def _listing(s3, bucket: str, page_size: int, **params) -> list:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": page_size}, **params)
    out = []
    for page in pages:
        out.append(([c["Key"] for c in page.get("Contents", [])], [p["Prefix"] for p in page.get("CommonPrefixes", [])],
                    page["KeyCount"], page["IsTruncated"]))
    return out


@pytest.fixture
def local(tmp_path, monkeypatch):
    state = StateDir(tmp_path / "state")
    for key in KEYS:
        path = state.s3_path(f"s3://sts-artifacts/{key}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"body of {key}\n")
    (state.s3_path("s3://sts-artifacts/sts/ground-truth/2033/05/17/12/") / ".labels.jsonl.x1.tmp").write_text("partial")
    with JobEndpoint(state, region="eu-west-1") as endpoint:
        for name, value in endpoint.environment().items():
            monkeypatch.setenv(name, value)
        yield endpoint


@pytest.fixture
def moto_s3(monkeypatch):
    import moto

    with moto.mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1", aws_access_key_id="t", aws_secret_access_key="t",
                          endpoint_url="https://s3.eu-west-1.amazonaws.com")
        s3.create_bucket(Bucket="sts-artifacts", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        for key in KEYS:
            s3.put_object(Bucket="sts-artifacts", Key=key, Body=f"body of {key}\n".encode())
        yield s3


@pytest.mark.parametrize("page_size", [1000, 2, 1])
def test_listings_and_pages_match_moto(local, moto_s3, page_size):
    s3 = boto3.client("s3", region_name="eu-west-1")  # configured by the environment only
    assert s3.meta.endpoint_url == local.url
    for params in LISTINGS:
        assert _listing(s3, "sts-artifacts", page_size, **params) == _listing(moto_s3, "sts-artifacts", page_size, **params), params


def test_objects_match_moto_and_errors_name_the_problem(local, moto_s3):
    s3 = boto3.client("s3", region_name="eu-west-1")
    for key in KEYS:
        assert s3.get_object(Bucket="sts-artifacts", Key=key)["Body"].read() == \
            moto_s3.get_object(Bucket="sts-artifacts", Key=key)["Body"].read()
        assert s3.head_object(Bucket="sts-artifacts", Key=key)["ContentLength"] == len(f"body of {key}\n")
    for call, code in ((lambda c: c.get_object(Bucket="sts-artifacts", Key="sts/none"), "NoSuchKey"),
                       (lambda c: c.list_objects_v2(Bucket="sts-missing"), "NoSuchBucket")):
        for client in (s3, moto_s3):
            with pytest.raises(client.exceptions.ClientError) as err:
                call(client)
            assert err.value.response["Error"]["Code"] == code
    with pytest.raises(s3.exceptions.ClientError) as err:
        s3.put_object(Bucket="sts-artifacts", Key="sts/x", Body=b"x")
    assert err.value.response["Error"]["Code"] == "NotImplemented"
    assert "ListObjectsV2, GetObject and HeadObject only" in err.value.response["Error"]["Message"]
    assert local.requests["s3:GetObject"] == len(KEYS)


def test_requests_on_a_kept_alive_connection_do_not_wait_for_delayed_acks(local):
    """A monitoring job reads every capture and label file through the endpoint, one request each on one
    connection. Each answer went out as two writes (headers, body) with Nagle's algorithm on, so the body
    waited for the client's delayed ACK: ~45 ms a request (these 80 GetObject: 3.6 s). With TCP_NODELAY,
    ~2 ms each (0.2 s); the bound leaves a loaded machine 10x that."""
    import time

    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.head_object(Bucket="sts-artifacts", Key=KEYS[0])  # the connection is open
    started = time.perf_counter()
    for _ in range(10):
        for key in KEYS:
            s3.get_object(Bucket="sts-artifacts", Key=key)["Body"].read()
    took = time.perf_counter() - started
    assert took < 2.0, f"80 GetObject took {took:.2f} s"
    assert local.requests["s3:GetObject"] == 10 * len(KEYS)


def test_a_job_process_reaches_it_through_its_environment_alone(local, tmp_path, subprocess_env):
    """The way the executor runs a step: a separate process, boto3 configured by the environment."""
    env = dict(subprocess_env, **local.environment(), AWS_REGION="eu-west-1")
    program = textwrap.dedent("""
        import boto3
        s3 = boto3.client("s3", region_name="eu-west-1")
        page = s3.list_objects_v2(Bucket="sts-artifacts", Prefix="sts/ground-truth/2033/05/17/13/")
        print([c["Key"] for c in page["Contents"]])
    """)
    out = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['sts/ground-truth/2033/05/17/13/labels.jsonl']"


def test_put_metric_data_reaches_the_local_cloudwatch_in_the_stacks_region_only(local):
    """PutMetricData, serialized by botocore (CloudWatch's JSON protocol), lands in the local metrics store
    tagged with the execution. Signed for another region it is refused with the reason: on AWS it would
    succeed there, where no alarm of the app watches it."""
    from datetime import datetime, timezone

    from stsmon.monitoring.metrics import MetricStore

    cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
    assert cloudwatch.meta.endpoint_url == local.url
    stamp = datetime(2033, 5, 17, 13, tzinfo=timezone.utc)
    datum = {"MetricName": "monitoring_failed", "Value": 1.0, "Unit": "Count", "Timestamp": stamp,
             "Dimensions": [{"Name": "Endpoint", "Value": "ep"}, {"Name": "MonitoringSchedule", "Value": "sch"}]}
    cloudwatch.put_metric_data(Namespace="stsmodelmonitor", MetricData=[datum])
    cloudwatch.put_metric_data(Namespace="stsmodelmonitor", MetricData=[dict(datum, MetricName="captured_records", Value=0.0)])
    published = MetricStore(local.state).published_by(f"{local.source}#")
    assert [(p.metric, p.value, p.timestamp, p.dimensions) for p in published["stsmodelmonitor"]] == [
        ("monitoring_failed", 1.0, stamp, {"Endpoint": "ep", "MonitoringSchedule": "sch"}),
        ("captured_records", 0.0, stamp, {"Endpoint": "ep", "MonitoringSchedule": "sch"})]
    elsewhere = boto3.client("cloudwatch", region_name="us-east-1")
    with pytest.raises(elsewhere.exceptions.ClientError) as err:
        elsewhere.put_metric_data(Namespace="stsmodelmonitor", MetricData=[datum])
    assert err.value.response["Error"]["Code"] == "WrongRegion"
    assert "where no alarm of this app watches them" in err.value.response["Error"]["Message"]
    with pytest.raises(cloudwatch.exceptions.ClientError) as err:
        cloudwatch.describe_alarms()
    assert err.value.response["Error"]["Code"] == "NotImplemented"
    assert len(MetricStore(local.state).published_by("")["stsmodelmonitor"]) == 2
