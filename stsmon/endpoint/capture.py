"""SageMaker data capture on disk: the settings, the durable writer, a reader.

The record itself (SageMaker's JSON Lines shape, built and parsed) is
:mod:`stsmon.endpoint.capture_record`. This module decides where records go
and that they survive: one file per hour and writer under
``{destination}/{endpoint}/{variant}/yyyy/mm/dd/hh/{mm}-{ss}-{mmm}-{uuid}.jsonl``
(UTC; the hour folder is the record's ``inferenceTime`` hour, the file name
the time of its first record; docs/CONTRACTS.md §2).

The request path only appends a small :class:`CaptureEvent` to an in-memory
queue (:meth:`CaptureWriter.submit`); a writer thread encodes the records and
appends them to the hour's file every ``flush_interval`` seconds (default 1)
with one ``write`` per flush, then ``fdatasync``. So:

- a clean stop (:meth:`CaptureWriter.close`, run on SIGTERM) writes every
  submitted record and closes the files;
- a hard crash loses at most the records of the last flush interval; each
  flush writes whole lines, so at worst the last line of an open file is
  incomplete (readers skip it and count it: :func:`scan_capture`);
- a write error (full disk, quota) truncates the file back to its last whole
  line, drops that flush's records and counts them (``dropped``); serving
  goes on and the next flush tries again.
"""

from __future__ import annotations

import collections
import errno
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from stscontracts import names

from .capture_record import CaptureEvent, CaptureRecordError, RecordEncoder, parse_line

log = logging.getLogger("stsmon.endpoint.capture")

#: What the CONTRACTS say a capture uses when the endpoint config does not
#: declare ``CaptureContentTypeHeader`` for the standalone server.
DEFAULT_CSV_TYPES = ("text/csv",)
DEFAULT_JSON_TYPES = ("application/json", "application/jsonlines")
#: Records kept in memory when the disk cannot keep up; more are dropped and counted.
MAX_PENDING = 200_000


@dataclass(frozen=True)
class CaptureSettings:
    """Where and what to capture (the local meaning of a ``DataCaptureConfig``).

    ``folder`` is the local folder of the destination URI (``destination_uri``,
    kept for records and messages); files go under ``folder/{endpoint}/{variant}/``.
    ``sampling_percentage``: 0–100, each request is captured with this
    probability. ``capture_input``/``capture_output``: the ``CaptureOptions``
    modes. ``csv_content_types``/``json_content_types``: the
    ``CaptureContentTypeHeader`` lists — a body whose content type is in them is
    stored as text with encoding ``CSV``/``JSON``, anything else as ``BASE64``.
    """

    folder: Path
    destination_uri: str = ""
    sampling_percentage: float = 100.0
    capture_input: bool = True
    capture_output: bool = True
    csv_content_types: tuple[str, ...] = DEFAULT_CSV_TYPES
    json_content_types: tuple[str, ...] = DEFAULT_JSON_TYPES
    flush_interval: float = 1.0
    variant: str = names.VARIANT

    def __post_init__(self) -> None:
        if not 0 <= float(self.sampling_percentage) <= 100:
            raise ValueError(f"sampling percentage must be 0-100, got {self.sampling_percentage!r}")
        if not self.capture_input and not self.capture_output:
            raise ValueError("capture needs at least one of input and output")
        if not 0 < float(self.flush_interval) <= 1.0:
            raise ValueError(f"capture flush interval must be in (0, 1] seconds, got {self.flush_interval!r}")

    def endpoint_folder(self, endpoint_name: str) -> Path:
        return self.folder / endpoint_name / self.variant

    def to_json(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "destination_uri": self.destination_uri,
            "sampling_percentage": self.sampling_percentage,
            "capture_input": self.capture_input,
            "capture_output": self.capture_output,
            "csv_content_types": list(self.csv_content_types),
            "json_content_types": list(self.json_content_types),
            "flush_interval": self.flush_interval,
            "variant": self.variant,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CaptureSettings:
        return cls(
            folder=Path(data["folder"]),
            destination_uri=data.get("destination_uri", ""),
            sampling_percentage=float(data.get("sampling_percentage", 100.0)),
            capture_input=bool(data.get("capture_input", True)),
            capture_output=bool(data.get("capture_output", True)),
            csv_content_types=tuple(data.get("csv_content_types", DEFAULT_CSV_TYPES)),
            json_content_types=tuple(data.get("json_content_types", DEFAULT_JSON_TYPES)),
            flush_interval=float(data.get("flush_interval", 1.0)),
            variant=data.get("variant", names.VARIANT),
        )

    def with_changes(self, **changes: Any) -> CaptureSettings:
        return replace(self, **changes)


def settings_from_data_capture_config(
    config: Mapping[str, Any], folder_of_uri, *, variant: str = names.VARIANT
) -> CaptureSettings | None:
    """The settings of a SageMaker ``DataCaptureConfig`` (None when capture is off).

    ``folder_of_uri`` maps ``DestinationS3Uri`` to a local folder (locally:
    ``StateDir.s3_path``). Semantics kept from SageMaker: ``EnableCapture``
    defaults to true; ``CaptureOptions`` modes ``Input``/``Output``; without a
    ``CaptureContentTypeHeader`` every body is stored base64-encoded. Values may
    be CloudFormation strings (``"true"``, ``"20"``). ``KmsKeyId`` has no local
    meaning (files are plain).
    """
    enabled = _cfn_bool(config.get("EnableCapture", True))
    if not enabled:
        return None
    uri = config.get("DestinationS3Uri")
    if not uri:
        raise ValueError("DataCaptureConfig has no DestinationS3Uri")
    pct = float(config.get("InitialSamplingPercentage", 100))
    modes = {str(o.get("CaptureMode", "")).lower() for o in config.get("CaptureOptions") or []}
    if not modes:
        modes = {"input", "output"}
    bad = modes - {"input", "output", "inputandoutput"}
    if bad:
        raise ValueError(f"DataCaptureConfig.CaptureOptions has unknown CaptureMode {sorted(bad)}")
    header = config.get("CaptureContentTypeHeader")
    if header is None:
        csv_types: tuple[str, ...] = ()
        json_types: tuple[str, ...] = ()
    else:
        csv_types = tuple(header.get("CsvContentTypes") or ())
        json_types = tuple(header.get("JsonContentTypes") or ())
    return CaptureSettings(
        folder=Path(folder_of_uri(uri)),
        destination_uri=uri,
        sampling_percentage=pct,
        capture_input=bool(modes & {"input", "inputandoutput"}),
        capture_output=bool(modes & {"output", "inputandoutput"}),
        csv_content_types=csv_types,
        json_content_types=json_types,
        variant=variant,
    )


def _cfn_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"not a boolean: {value!r}")


# -- writer ----------------------------------------------------------------


@dataclass
class CaptureStats:
    """Counters of one writer (one server worker)."""

    submitted: int = 0
    written: int = 0
    dropped: int = 0
    files: int = 0
    last_error: str | None = None
    drop_reasons: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "submitted": self.submitted,
            "written": self.written,
            "dropped": self.dropped,
            "files": self.files,
            "last_error": self.last_error,
            "drop_reasons": dict(self.drop_reasons),
        }


class _OpenFile:
    __slots__ = ("path", "fd", "offset", "hour")

    def __init__(self, path: Path, fd: int, hour: tuple[int, int, int, int]) -> None:
        self.path = path
        self.fd = fd
        self.offset = 0
        self.hour = hour


class CaptureWriter:
    """Appends capture records to hourly files from a background thread.

    :meth:`submit` is cheap and never blocks or raises (it is called on the
    request path). :meth:`start` starts the thread; :meth:`close` writes what
    is left, closes the files and stops the thread. ``stats_path``: a JSON file
    rewritten after each flush that changed the counters (atomic rename).
    """

    def __init__(
        self,
        settings: CaptureSettings,
        endpoint_name: str,
        *,
        stats_path: Path | None = None,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.settings = settings
        self.root = settings.endpoint_folder(endpoint_name)
        self.encoder = RecordEncoder(settings)
        self.stats = CaptureStats()
        self._stats_path = stats_path
        self._stats_written: dict[str, Any] | None = None
        self._max_pending = max_pending
        self._queue: collections.deque[CaptureEvent] = collections.deque()
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._files: dict[tuple[int, int, int, int], _OpenFile] = {}
        self._flush_lock = threading.Lock()
        self._overflow = 0
        self._overflow_lock = threading.Lock()
        self._last_warning = 0.0

    # request path ------------------------------------------------------

    def submit(self, event: CaptureEvent) -> None:
        """Queue one record (never blocks; drops and counts when memory is full)."""
        if len(self._queue) >= self._max_pending:
            with self._overflow_lock:
                self._overflow += 1
            return
        self._queue.append(event)

    # lifecycle ---------------------------------------------------------

    def start(self) -> CaptureWriter:
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout: float | None = 30.0) -> CaptureStats:
        """Write every queued record, close the files (fsync), stop the thread."""
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.flush()
        with self._flush_lock:
            for hour in list(self._files):
                self._close_file(hour)
        self._write_stats(force=True)
        return self.stats

    def _run(self) -> None:
        interval = float(self.settings.flush_interval)
        while not self._stop:
            self._wake.wait(interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # a bug here must not kill capture silently
                log.exception("capture writer failed; records of this flush are counted as dropped")

    # writing -----------------------------------------------------------

    def flush(self) -> None:
        """Write every queued record now (thread-safe)."""
        with self._flush_lock:
            events: list[CaptureEvent] = []
            queue = self._queue
            while queue:
                events.append(queue.popleft())
            if self._overflow:
                with self._overflow_lock:
                    n, self._overflow = self._overflow, 0
                self._drop(n, "buffer full", None)
            if events:
                self.stats.submitted += len(events)
                self._write_events(events)
                self._close_stale_files(events[-1].time)
            self._write_stats()

    def _write_events(self, events: list[CaptureEvent]) -> None:
        by_hour: dict[tuple[int, int, int, int], list[CaptureEvent]] = {}
        for ev in events:
            g = time.gmtime(ev.time)
            by_hour.setdefault((g.tm_year, g.tm_mon, g.tm_mday, g.tm_hour), []).append(ev)
        for hour, group in by_hour.items():
            lines = []
            for ev in group:
                try:
                    lines.append(self.encoder.line(ev))
                except Exception as exc:  # an unencodable record is one drop, not a dead writer
                    self._drop(1, "encoding error", exc)
            if lines:
                self._append(hour, group[0].time, lines)

    def _append(self, hour, first_time: float, lines: list[bytes]) -> None:
        """Append whole lines: one write for all; after a failure (full disk),
        line by line, so what fits is kept and only the rest is dropped."""
        try:
            f = self._files.get(hour) or self._open(hour, first_time)
        except OSError as exc:
            self._drop(len(lines), _reason(exc), exc)
            return
        error = self._write(f, b"".join(lines))
        if error is None:
            self.stats.written += len(lines)
            return
        if len(lines) > 1 and hour in self._files:
            for i, line in enumerate(lines):
                error = self._write(f, line)
                if error is not None:
                    self._drop(len(lines) - i, _reason(error), error)
                    return
                self.stats.written += 1
            return
        self._drop(len(lines), _reason(error), error)

    def _write(self, f: _OpenFile, chunk: bytes) -> OSError | None:
        """Write ``chunk`` at the end of ``f`` (all of it, then fdatasync) or
        take it back; the error if it failed."""
        view = memoryview(chunk)
        written = 0
        try:
            while written < len(chunk):
                written += os.write(f.fd, view[written:])
            os.fdatasync(f.fd)
        except OSError as exc:
            # Take the partial chunk back so the file keeps whole lines only.
            try:
                os.ftruncate(f.fd, f.offset)
                os.lseek(f.fd, f.offset, os.SEEK_SET)
            except OSError:
                # Cannot repair: close it; a reader skips its incomplete last line.
                self._close_file(f.hour)
            return exc
        f.offset += len(chunk)
        return None

    def _open(self, hour, first_time: float) -> _OpenFile:
        yyyy, mm, dd, hh = hour
        folder = self.root / f"{yyyy:04d}" / f"{mm:02d}" / f"{dd:02d}" / f"{hh:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        g = time.gmtime(first_time)
        ms = int(first_time * 1000) % 1000
        path = folder / f"{g.tm_min:02d}-{g.tm_sec:02d}-{ms:03d}-{uuid.uuid4()}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
        f = _OpenFile(path, fd, hour)
        self._files[hour] = f
        self.stats.files += 1
        return f

    def _close_file(self, hour) -> None:
        f = self._files.pop(hour, None)
        if f is None:
            return
        try:
            os.fsync(f.fd)
        except OSError as exc:
            log.warning("capture: fsync of %s failed: %s", f.path, exc)
        finally:
            os.close(f.fd)

    def _close_stale_files(self, latest: float) -> None:
        """Close the files of hours that ended more than 10 s before ``latest``
        (a late record of the previous hour still finds its file)."""
        for hour in list(self._files):
            end = _hour_start(hour) + 3600
            if latest - end > 10:
                self._close_file(hour)

    def _drop(self, n: int, reason: str, exc: BaseException | None) -> None:
        self.stats.dropped += n
        self.stats.drop_reasons[reason] = self.stats.drop_reasons.get(reason, 0) + n
        if exc is not None:
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
        now = time.monotonic()
        if now - self._last_warning > 10:  # one warning per 10 s, with the running total
            self._last_warning = now
            log.warning("capture: dropped %d record(s) (%s), %d dropped so far: %s",
                        n, reason, self.stats.dropped, self.stats.last_error or "")

    def _write_stats(self, force: bool = False) -> None:
        if self._stats_path is None:
            return
        data = self.stats.to_json()
        if not force and data == self._stats_written:
            return
        tmp = self._stats_path.with_name(self._stats_path.name + ".tmp")
        try:
            self._stats_path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data, indent=1) + "\n")
            os.replace(tmp, self._stats_path)
            self._stats_written = data
        except OSError as exc:  # stats are a convenience; the log has the drops
            log.debug("capture: cannot write stats %s: %s", self._stats_path, exc)


def _hour_start(hour: tuple[int, int, int, int]) -> float:
    import calendar

    return float(calendar.timegm((hour[0], hour[1], hour[2], hour[3], 0, 0)))


def _reason(exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "disk full"
    return errno.errorcode.get(exc.errno or 0, "write error")


# -- reading ---------------------------------------------------------------


@dataclass
class CaptureScan:
    """What :func:`scan_capture` found: valid records and what it skipped."""

    records: list[dict[str, Any]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    bad_lines: int = 0
    incomplete_last_lines: int = 0
    problems: list[str] = field(default_factory=list)


def iter_capture_files(root: Path) -> Iterator[Path]:
    """Every ``*.jsonl`` under ``root`` (an endpoint/variant folder or above), sorted."""
    if not root.exists():
        return iter(())
    return iter(sorted(root.rglob("*.jsonl")))


def scan_capture(root: Path, files: Iterable[Path] | None = None) -> CaptureScan:
    """Read every capture file under ``root``: valid records, bad lines counted.

    An incomplete last line (no newline: the file was being written when its
    process died) is skipped and counted in ``incomplete_last_lines``; any
    other unparsable or invalid line in ``bad_lines`` with a note in
    ``problems``.
    """
    scan = CaptureScan()
    for path in files if files is not None else iter_capture_files(root):
        scan.files.append(path)
        raw = path.read_bytes()
        lines = raw.split(b"\n")
        tail = lines.pop()  # b"" when the file ends with a newline
        if tail:
            scan.incomplete_last_lines += 1
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                scan.records.append(parse_line(line))
            except CaptureRecordError as exc:
                scan.bad_lines += 1
                scan.problems.append(f"{path}:{n}: {'; '.join(exc.problems)}")
    return scan
