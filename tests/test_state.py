
import pytest

from stsmon.errors import UsageError
from stsmon.state import StateDir


def test_s3_uri_round_trips_through_local_path(tmp_path):
    state = StateDir(tmp_path)
    path = state.s3_path("s3://bucket-a/sts/datacapture/x.jsonl")
    assert path == tmp_path / "s3" / "bucket-a" / "sts" / "datacapture" / "x.jsonl"
    assert state.s3_uri(path) == "s3://bucket-a/sts/datacapture/x.jsonl"


@pytest.mark.parametrize("uri", ["http://bucket/key", "s3:///key", "bucket/key", "s3://b/../../etc/passwd"])
def test_bad_uris_are_refused(tmp_path, uri):
    with pytest.raises(UsageError):
        StateDir(tmp_path).s3_path(uri)
