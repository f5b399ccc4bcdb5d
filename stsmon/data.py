"""The MSRP corpus for users: fetch from the public SentEval mirror, validate, cache, locate.

The Microsoft Research Paraphrase Corpus is not part of the repository. This
module downloads its two files from the SentEval mirror (``BASE_URL``,
overridable), checks them (header, five tab-separated columns, 0/1 labels,
row counts 4076/1725 and the SHA-256 of the known files), and caches them
under ``$XDG_CACHE_HOME/stsmon/msrp`` (default ``~/.cache/stsmon/msrp``)
together with ``stsmsrpc.txt`` - train then test under one header - the single
input file of the training pipeline.

A download is staged in a temporary folder next to the cache and moved into
place only when every check passed, so a bad or interrupted download leaves
no cache (and an existing good cache untouched).

Checksums are taken over the text with a UTF-8 byte-order mark removed and
``\\r\\n`` turned into ``\\n`` (the files are cached in that form), so a mirror
serving the original Windows line endings validates too.

:func:`resolve_msrp` is what ``stsmon demo`` uses to find the corpus.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import StsmonError

#: The public SentEval mirror of the MSRP files.
BASE_URL = "https://dl.fbaipublicfiles.com/senteval/senteval_data"
#: Folder holding the MSRP files (tests, CI, offline machines).
MSRP_DIR_ENV = "STSMON_MSRP_DIR"

HEADER = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"
TRAIN_FILE = "msr_paraphrase_train.txt"
TEST_FILE = "msr_paraphrase_test.txt"
COMBINED_FILE = "stsmsrpc.txt"
#: Largest file accepted from the network (the real ones are about 1 MB).
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class KnownFile:
    name: str
    rows: int
    sha256: str


KNOWN_FILES = {
    TRAIN_FILE: KnownFile(TRAIN_FILE, 4076, "178c3d39a096a887a4afa2fdecc9089ad7d7f74c019a95ce8cdac2b4855ebf4a"),
    TEST_FILE: KnownFile(TEST_FILE, 1725, "0d1a876ed5b29dc9779ec212f0d7a1601caafbc5837cd1200e638f0b0a654562"),
    COMBINED_FILE: KnownFile(COMBINED_FILE, 5801, "25ae1917d7e357177236662848e24f3e4397e7cfdf7b0255f89d5dbaab7cc8f0"),
}


class MsrpError(StsmonError):
    """The corpus is missing, unreachable or not what it should be."""


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/stsmon/msrp``, else ``~/.cache/stsmon/msrp``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "stsmon" / "msrp"


def _normalize(data: bytes) -> bytes:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.replace(b"\r\n", b"\n")


def validate_msrp_text(data: bytes, where: str, known: KnownFile | None = None,
                       check_sha256: bool = True) -> int:
    """Check one MSRP file's bytes; returns its number of pairs. Raises :class:`MsrpError` naming the line."""
    data = _normalize(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise MsrpError(f"{where}:{line}: not UTF-8 text") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise MsrpError(f"{where}: file is empty")
    if lines[0] != HEADER:
        raise MsrpError(f"{where}:1: expected the MSRP header {HEADER!r}, got {lines[0][:80]!r}")
    for no, line in enumerate(lines[1:], 2):
        fields = line.split("\t")
        if len(fields) != 5:
            raise MsrpError(f"{where}:{no}: expected 5 tab-separated columns, got {len(fields)}")
        if fields[0] not in ("0", "1"):
            raise MsrpError(f"{where}:{no}: label {fields[0]!r} is not 0 or 1")
    rows = len(lines) - 1
    if known is not None:
        if rows != known.rows:
            raise MsrpError(f"{where}: {rows} sentence pairs, expected {known.rows} in {known.name}")
        if check_sha256:
            digest = hashlib.sha256(data).hexdigest()
            if digest != known.sha256:
                raise MsrpError(f"{where}: SHA-256 {digest} is not the known {known.name} ({known.sha256}); "
                                "the file was changed or is a different release")
    return rows


def validate_msrp_file(path: Path, known: KnownFile | None = None, check_sha256: bool = True) -> int:
    """:func:`validate_msrp_text` of a file (``known`` defaults to the entry for its name)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MsrpError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return validate_msrp_text(data, str(path), known or KNOWN_FILES.get(path.name), check_sha256)


def validate_msrp_dir(folder: Path, check_sha256: bool = True) -> dict[str, int]:
    """Validate the MSRP files in ``folder`` (train and test required, combined if present)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MsrpError(f"{folder}: no such folder")
    missing = [n for n in (TRAIN_FILE, TEST_FILE) if not (folder / n).is_file()]
    if missing and not (folder / COMBINED_FILE).is_file():
        raise MsrpError(f"{folder}: has neither {COMBINED_FILE} nor {' and '.join(missing)}")
    return {n: validate_msrp_file(folder / n, check_sha256=check_sha256)
            for n in (TRAIN_FILE, TEST_FILE, COMBINED_FILE) if (folder / n).is_file()}


def combine(train: bytes, test: bytes) -> bytes:
    """``stsmsrpc.txt``: the train file, then the test file's rows (one header)."""
    train, test = _normalize(train), _normalize(test)
    if not train.endswith(b"\n"):
        train += b"\n"
    return train + test.split(b"\n", 1)[1]


def _download(url: str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - https/http URL
            data = response.read(MAX_DOWNLOAD_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise MsrpError(f"download failed: {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise MsrpError(f"download failed: {url}: {reason}") from None
    if len(data) > MAX_DOWNLOAD_BYTES:
        raise MsrpError(f"download refused: {url} is larger than {MAX_DOWNLOAD_BYTES} bytes")
    return data


def fetch_msrp(base_url: str | None = None, dest: Path | None = None, *, force: bool = False,
               timeout: float = 60.0, check_sha256: bool = True) -> Path:
    """Download, validate and cache the corpus; returns the cached ``stsmsrpc.txt``.

    ``base_url`` defaults to :data:`BASE_URL`; ``dest`` to :func:`cache_dir`.
    A valid cache is reused unless ``force``. Nothing is written unless
    every file passed its checks.
    """
    dest = Path(dest) if dest is not None else cache_dir()
    if not force and _valid_cache(dest, check_sha256):
        return dest / COMBINED_FILE
    base = (base_url or BASE_URL).rstrip("/")
    files = {}
    for name in (TRAIN_FILE, TEST_FILE):
        url = f"{base}/{name}"
        data = _normalize(_download(url, timeout))
        validate_msrp_text(data, url, KNOWN_FILES[name], check_sha256)
        files[name] = data
    files[COMBINED_FILE] = combine(files[TRAIN_FILE], files[TEST_FILE])
    validate_msrp_text(files[COMBINED_FILE], COMBINED_FILE, KNOWN_FILES[COMBINED_FILE], check_sha256)
    _install(dest, files)
    return dest / COMBINED_FILE


def _valid_cache(folder: Path, check_sha256: bool = True) -> bool:
    try:
        validate_msrp_dir(folder, check_sha256)
    except MsrpError:
        return False
    return (folder / COMBINED_FILE).is_file()


def _install(dest: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` into a staging folder next to ``dest``, then swap it in."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.staging-", dir=dest.parent))
    try:
        for name, data in files.items():
            (staging / name).write_bytes(data)
        old = None
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
            os.replace(dest, old)
        os.replace(staging, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _corpus_in(folder: Path, where: str) -> Path:
    """The combined file for an MSRP folder, creating it in the cache from train+test if needed."""
    if (folder / COMBINED_FILE).is_file():
        validate_msrp_file(folder / COMBINED_FILE)
        return folder / COMBINED_FILE
    counts = validate_msrp_dir(folder)
    if TRAIN_FILE in counts and TEST_FILE in counts:
        files = {n: (folder / n).read_bytes() for n in (TRAIN_FILE, TEST_FILE)}
        files = {n: _normalize(d) for n, d in files.items()}
        files[COMBINED_FILE] = combine(files[TRAIN_FILE], files[TEST_FILE])
        _install(cache_dir(), files)
        return cache_dir() / COMBINED_FILE
    raise MsrpError(f"{where}: {folder} has no MSRP files")  # pragma: no cover - validate_msrp_dir raised


OFFLINE_HINT = (
    "Point at a local copy instead: --input-data PATH (an MSRP-layout file, or a folder with "
    f"{COMBINED_FILE} or {TRAIN_FILE} and {TEST_FILE}), or {MSRP_DIR_ENV}=FOLDER, or "
    "`stsmon data fetch --base-url URL` from a reachable mirror."
)


def resolve_msrp(input_data: str | None = None, *, base_url: str | None = None,
                 timeout: float = 60.0) -> Path:
    """The training input file for ``stsmon demo``, found in this order:

    1. ``input_data`` (``--input-data``): a file is used as it is (any data
       set in the MSRP layout, validated later by the pipeline); a folder
       with ``stsmsrpc.txt`` or the two MSRP files gives the combined file;
       any other folder is used as it is (a folder of MSRP-layout files);
    2. ``$STSMON_MSRP_DIR``: a folder with the MSRP files (checked);
    3. the cache (:func:`cache_dir`), when it holds a valid corpus;
    4. a download from the mirror into the cache.

    Raises :class:`MsrpError` with what was tried and how to point at a local
    copy when none of these works.
    """
    if input_data:
        path = Path(input_data).expanduser()
        if path.is_file():
            return path
        if path.is_dir():
            if any((path / n).is_file() for n in (COMBINED_FILE, TRAIN_FILE, TEST_FILE)):
                return _corpus_in(path, "--input-data")
            return path
        raise MsrpError(f"--input-data {input_data}: no such file or folder")
    env = os.environ.get(MSRP_DIR_ENV)
    if env:
        folder = Path(env).expanduser()
        if not folder.is_dir():
            raise MsrpError(f"{MSRP_DIR_ENV}={env}: no such folder")
        return _corpus_in(folder, MSRP_DIR_ENV)
    cached = cache_dir()
    if _valid_cache(cached):
        return cached / COMBINED_FILE
    try:
        return fetch_msrp(base_url, cached, timeout=timeout)
    except MsrpError as exc:
        raise MsrpError(f"the MSRP corpus is not available: no --input-data, no {MSRP_DIR_ENV}, no valid "
                        f"cache in {cached}, and {exc.message}. {OFFLINE_HINT}") from None
