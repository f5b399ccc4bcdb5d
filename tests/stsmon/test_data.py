"""stsmon.data and `stsmon data`: fetch from a loopback mirror, validate, cache atomically, resolve."""

from __future__ import annotations

import functools
import hashlib
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from stsmon import cli as cli_module
from stsmon import data as corpus


class Mirror:
    """A loopback HTTP server serving one folder, counting requests."""

    def __init__(self, folder: Path) -> None:
        self.requests: list[str] = []
        mirror = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                mirror.requests.append(self.path)
                super().do_GET()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
        # close() waits for serve_forever to look for the stop request: every 20 ms, not socketserver's 0.5 s
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirror(msrp):
    m = Mirror(msrp)
    yield m
    m.close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(corpus.MSRP_DIR_ENV, raising=False)
    return tmp_path / "xdg" / "stsmon" / "msrp"


def test_cache_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert corpus.cache_dir() == tmp_path / "stsmon" / "msrp"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert corpus.cache_dir() == Path.home() / ".cache" / "stsmon" / "msrp"


def test_fetch_downloads_validates_and_writes_the_combined_file(mirror, cache, msrp):
    combined = corpus.fetch_msrp(mirror.url, cache)
    assert combined == cache / "stsmsrpc.txt"
    # train then test under one header: byte for byte the known combined file
    assert hashlib.sha256(combined.read_bytes()).hexdigest() == corpus.KNOWN_FILES["stsmsrpc.txt"].sha256
    assert (cache / "msr_paraphrase_train.txt").read_bytes() == (msrp / "msr_paraphrase_train.txt").read_bytes()
    assert sorted(mirror.requests) == ["/msr_paraphrase_test.txt", "/msr_paraphrase_train.txt"]
    # A valid cache is reused; --force downloads again.
    corpus.fetch_msrp(mirror.url, cache)
    assert len(mirror.requests) == 2
    corpus.fetch_msrp(mirror.url, cache, force=True)
    assert len(mirror.requests) == 4
    assert not [p for p in cache.parent.iterdir() if p.name.startswith(".")]  # no staging left over


def test_windows_line_endings_and_bom_validate(tmp_path, cache, msrp):
    folder = tmp_path / "crlf"
    folder.mkdir()
    for name in ("msr_paraphrase_train.txt", "msr_paraphrase_test.txt"):
        data = (msrp / name).read_bytes().replace(b"\n", b"\r\n")
        (folder / name).write_bytes(b"\xef\xbb\xbf" + data)
    m = Mirror(folder)
    try:
        combined = corpus.fetch_msrp(m.url, cache)
    finally:
        m.close()
    assert hashlib.sha256(combined.read_bytes()).hexdigest() == corpus.KNOWN_FILES["stsmsrpc.txt"].sha256


def corrupt(folder: Path, msrp: Path, name: str, transform) -> None:
    folder.mkdir(exist_ok=True)
    for n in ("msr_paraphrase_train.txt", "msr_paraphrase_test.txt"):
        shutil.copy(msrp / n, folder / n)
    path = folder / name
    path.write_bytes(transform(path.read_bytes()))


@pytest.mark.parametrize("name, transform, message", [
    ("msr_paraphrase_test.txt", lambda d: d.rsplit(b"\n", 2)[0] + b"\n", "1724 sentence pairs, expected 1725"),
    ("msr_paraphrase_train.txt", lambda d: d.replace(b"\n1\t", b"\n2\t", 1), ":2: label '2' is not 0 or 1"),
    ("msr_paraphrase_train.txt", lambda d: d.replace(b"Quality", b"Label", 1), ":1: expected the MSRP header"),
    ("msr_paraphrase_test.txt", lambda d: d.replace(b"\t", b" ", 1), ":1: expected the MSRP header"),
    ("msr_paraphrase_test.txt", lambda d: d.replace(b" the ", b" teh ", 1), "SHA-256"),
    ("msr_paraphrase_train.txt", lambda d: d.replace(b"\t702977\t", b"\t702977 "), ":2: expected 5 tab-separated"),
])
def test_a_bad_download_leaves_no_cache_and_keeps_a_good_one(tmp_path, mirror, cache, msrp, name, transform,
                                                            message):
    bad = tmp_path / "bad"
    corrupt(bad, msrp, name, transform)
    m = Mirror(bad)
    try:
        with pytest.raises(corpus.MsrpError) as info:
            corpus.fetch_msrp(m.url, cache)
        assert message in info.value.message
        assert not cache.exists()
        # With a good cache in place, a failed forced download changes nothing.
        corpus.fetch_msrp(mirror.url, cache)
        before = {p.name: p.read_bytes() for p in cache.iterdir()}
        with pytest.raises(corpus.MsrpError):
            corpus.fetch_msrp(m.url, cache, force=True)
        assert {p.name: p.read_bytes() for p in cache.iterdir()} == before
        assert sorted(p.name for p in cache.parent.iterdir()) == ["msrp"]
    finally:
        m.close()


def test_http_errors_and_unreachable_mirrors(tmp_path, cache):
    m = Mirror(tmp_path)  # serves an empty folder: 404
    try:
        with pytest.raises(corpus.MsrpError, match="HTTP 404"):
            corpus.fetch_msrp(m.url, cache)
    finally:
        m.close()
    with pytest.raises(corpus.MsrpError, match="download failed: http://127.0.0.1:9/"):
        corpus.fetch_msrp("http://127.0.0.1:9", cache, timeout=5)
    assert not cache.exists()


def test_validate_rejects_an_oversized_label_set(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text(corpus.HEADER + "\n0.5\t1\t2\ta\tb\n")
    with pytest.raises(corpus.MsrpError, match=r"mine.txt:2: label '0.5' is not 0 or 1"):
        corpus.validate_msrp_file(path)
    path.write_text(corpus.HEADER + "\n1\t1\t2\ta\tb\n")
    assert corpus.validate_msrp_file(path) == 1  # an unknown name: format checks only


def test_resolve_order(tmp_path, cache, msrp, mirror, monkeypatch):
    own = tmp_path / "own.txt"
    own.write_text(corpus.HEADER + "\n1\t1\t2\ta\tb\n")
    # 1. --input-data: a file as it is, an MSRP folder gives its combined file, another folder as it is.
    assert corpus.resolve_msrp(str(own)) == own
    assert corpus.resolve_msrp(str(msrp)) == msrp / "stsmsrpc.txt"
    assert corpus.resolve_msrp(str(tmp_path)) == tmp_path
    with pytest.raises(corpus.MsrpError, match="--input-data .*nope: no such file or folder"):
        corpus.resolve_msrp(str(tmp_path / "nope"))
    # 2. $STSMON_MSRP_DIR, also with only the two original files (combined into the cache).
    monkeypatch.setenv(corpus.MSRP_DIR_ENV, str(msrp))
    assert corpus.resolve_msrp(None) == msrp / "stsmsrpc.txt"
    two = tmp_path / "two"
    two.mkdir()
    for n in ("msr_paraphrase_train.txt", "msr_paraphrase_test.txt"):
        shutil.copy(msrp / n, two / n)
    monkeypatch.setenv(corpus.MSRP_DIR_ENV, str(two))
    assert corpus.resolve_msrp(None) == cache / "stsmsrpc.txt"
    assert hashlib.sha256((cache / "stsmsrpc.txt").read_bytes()).hexdigest() == \
        corpus.KNOWN_FILES["stsmsrpc.txt"].sha256
    monkeypatch.setenv(corpus.MSRP_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(corpus.MsrpError, match="STSMON_MSRP_DIR=.*missing: no such folder"):
        corpus.resolve_msrp(None)
    # 3. the cache, 4. a download - never used when the cache is valid.
    monkeypatch.delenv(corpus.MSRP_DIR_ENV)
    assert corpus.resolve_msrp(None, base_url=mirror.url) == cache / "stsmsrpc.txt"
    assert mirror.requests == []
    shutil.rmtree(cache)
    assert corpus.resolve_msrp(None, base_url=mirror.url) == cache / "stsmsrpc.txt"
    assert len(mirror.requests) == 2


def test_resolve_says_how_to_point_at_a_local_copy_when_everything_fails(cache):
    with pytest.raises(corpus.MsrpError) as info:
        corpus.resolve_msrp(None, base_url="http://127.0.0.1:9", timeout=5)
    message = info.value.message
    assert "download failed" in message and "--input-data PATH" in message and "STSMON_MSRP_DIR=FOLDER" in message
    assert not cache.exists()


def test_cli_fetch_validate_and_path(mirror, cache, msrp, tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli_module.cli, ["data", "fetch", "--base-url", mirror.url])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == str(cache / "stsmsrpc.txt")
    assert "train 4076 pairs, test 1725 pairs" in result.output
    result = runner.invoke(cli_module.cli, ["data", "validate"])
    assert result.exit_code == 0 and result.output.count("ok  ") == 3
    result = runner.invoke(cli_module.cli, ["data", "path"])
    assert result.exit_code == 0 and result.output.strip() == str(cache / "stsmsrpc.txt")


def test_cli_errors_have_no_traceback(tmp_path, cache, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("nope\n")
    assert cli_module.main(["data", "validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"Error: {bad}:1: expected the MSRP header") and "Traceback" not in err
    assert cli_module.main(["data", "fetch", "--base-url", "http://127.0.0.1:9", "--timeout", "5"]) == 1
    err = capsys.readouterr().err
    assert "download failed" in err and "STSMON_MSRP_DIR" in err
