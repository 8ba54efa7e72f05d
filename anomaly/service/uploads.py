"""A recording or beats CSV sent over HTTP, scored as ``anomaly score`` scores a file, the
scores streamed back as they come.

The body is written to a private temporary directory, named as the client names it
(``name=rec.edf``, in safe characters; ``upload`` without) with the suffix of its format
(``.edf``; ``.csv`` for samples per lead, ``format=signal-csv``, and for a beats CSV,
``format=beats-csv``); a WFDB record (``format=wfdb``) comes as multipart/form-data, each
of its files a part written under its own name (:class:`RecordParts`). Within the upload
limit, it is then read by the scoring pipeline's own sources
(:func:`anomaly.scoring.sources.source_for`), checked against the model as the command
line checks a file (:mod:`anomaly.scoring.fitted_kind`), and scored by
:func:`anomaly.scoring.pipeline.score_source` into a sink that hands each block's rows to
the response: newline-delimited JSON, one object per beat, then one ``summary`` object.
A bounded queue between the two keeps memory flat in the upload's length. The directory
is removed when the response ends.
"""

from __future__ import annotations

import contextlib
import json
import math
import queue
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from ..exceptions import AnomalyError, first_line
from ..io.layout import parse_positive
from .protocol import Failure, RequestError, query_values

#: ``format`` values, and the suffix each upload is read with (a WFDB record: its
#: header's, the record being its files sent as multipart/form-data).
FORMATS = {"edf": ".edf", "signal-csv": ".csv", "beats-csv": ".csv", "wfdb": ".hea"}
#: The most files a WFDB record may be sent as (its header, signal and annotation files).
MAX_WFDB_FILES = 8
#: The longest multipart boundary (RFC 2046: 1 to 70 characters).
MAX_BOUNDARY = 70
#: What the name an upload is given (``name=``) may keep: the rest becomes ``_``.
NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9_.-]")
#: Blocks of scores waiting for the client: the most memory a slow reader can hold up.
QUEUE_BLOCKS = 4
_END = object()


@dataclass(frozen=True)
class UploadOptions:
    """How an upload is read: its ``format`` (see :data:`FORMATS`), and for a recording its
    ``lead``, sampling rate ``fs`` (a signal CSV without a time column) and span
    (``start``/``stop``, as ``--from``/``--to``)."""

    format: str
    lead: str | None = None
    fs: float | None = None
    start: str | None = None
    stop: str | None = None
    name: str = "upload"

    @property
    def file_name(self) -> str:
        """The name the upload is read as, in messages and reports: its ``name`` in safe
        characters (a client's file name, ``rec.edf``), with the format's suffix."""
        return safe_name(self.name, FORMATS[self.format])

    @classmethod
    def from_query(cls, query: Any) -> "UploadOptions":
        """The options of a request's query string; RequestError (400) for a value that
        cannot be one."""
        query = query_values(query, {"format", "lead", "fs", "from", "to", "name"})
        format_ = query.get("format")
        if format_ is None:
            raise RequestError(f"format, how the upload is read, is required (one of "
                               f"{', '.join(FORMATS)}: ?format=edf)")
        if format_ not in FORMATS:
            raise RequestError(f"format must be one of {', '.join(FORMATS)}, got "
                               f"{format_[:40]!r}")
        fs = query.get("fs")
        if fs is not None and (fs := parse_positive(fs)) is None:
            raise RequestError(f"fs must be a positive number of Hz, got "
                               f"{query.get('fs')[:40]!r}")
        if format_ == "beats-csv" and any(query.get(key) for key in ("lead", "fs", "from", "to")):
            raise RequestError("lead, fs, from and to apply to recordings, not to a beats CSV")
        return cls(format_, query.get("lead"), fs, query.get("from"), query.get("to"),
                   query.get("name") or "upload")


def safe_name(name: str, suffix: str = "") -> str:
    """A client's file name as one file name of safe characters (no directory, not
    hidden, at most 100 characters), ending in ``suffix``."""
    stem = NAME_CHARACTERS.sub("_", Path(name).name)[:100].lstrip(".") or "upload"
    return stem if stem.lower().endswith(suffix) else stem + suffix


class Upload:
    """A private directory holding one uploaded file, or a WFDB record's files; removed on
    :meth:`close`. ``path`` is what is read: the file, or the record (its header's path
    without ``.hea``) once :meth:`finish` has found it."""

    def __init__(self, options: UploadOptions, content_type: str = ""):
        self.options = options
        self.directory = Path(tempfile.mkdtemp(prefix="anomaly-upload-"))
        self.file = None
        self.parts = None
        try:
            if options.format == "wfdb":
                self.parts = RecordParts(self.directory, content_type)
                self.path = self.directory / "upload"
            else:
                self.path = self.directory / options.file_name
                self.file = open(self.path, "xb")
        except BaseException:
            shutil.rmtree(self.directory, ignore_errors=True)
            raise

    def write(self, chunk: bytes) -> None:
        if self.parts is not None:
            self.parts.write(chunk)
        else:
            self.file.write(chunk)

    def finish(self) -> None:
        """The body has all come: close what was written (RequestError for a WFDB record
        whose parts do not make one)."""
        if self.parts is not None:
            self.path = self.parts.finish()
        else:
            self.file.close()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.parts is not None:
            self.parts.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def unnamed(self, text: str) -> str:
        """``text`` naming the upload's files without their temporary directory."""
        return text.replace(f"{self.directory}/", "")

    def message(self, error: BaseException) -> str:
        """An error's first line, naming the upload rather than its temporary path."""
        return self.unnamed(first_line(error))


class RecordParts:
    """A WFDB record sent as multipart/form-data, one part per file (its header, its signal
    files, an annotation file), each written to ``directory`` under its own file name in
    safe characters as it arrives: memory holds no more than the parser's buffer."""

    def __init__(self, directory: Path, content_type: str):
        from python_multipart.multipart import MultipartParser, parse_options_header

        kind, parameters = parse_options_header(content_type)
        boundary = parameters.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise RequestError("a WFDB record is sent as multipart/form-data, one part per "
                               "file (its .hea header, its signal files)", 415)
        if len(boundary) > MAX_BOUNDARY:
            raise RequestError(f"the multipart boundary is {len(boundary):,} bytes; at most "
                               f"{MAX_BOUNDARY} (RFC 2046)")
        self.directory = directory
        self.names: list[str] = []
        self.file = None
        self._header_field = b""
        self._headers: dict[bytes, bytes] = {}
        callbacks = {"on_part_begin": self._begin, "on_header_field": self._field,
                     "on_header_value": self._value, "on_header_end": self._header_end,
                     "on_headers_finished": self._open,
                     "on_part_data": self._data, "on_part_end": self._end}
        self.parser = MultipartParser(boundary, callbacks)

    def write(self, chunk: bytes) -> None:
        from python_multipart.exceptions import FormParserError

        try:
            self.parser.write(chunk)
        except FormParserError as error:
            raise RequestError(f"the multipart body is malformed ({first_line(error)[:80]})")

    def _begin(self) -> None:
        self._headers, self._header_field = {}, b""

    def _field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _header_end(self) -> None:
        self._header_field = b""

    def _value(self, data: bytes, start: int, end: int) -> None:
        field = self._header_field.lower()
        self._headers[field] = self._headers.get(field, b"") + data[start:end]
        if len(self._headers[field]) > 1024:
            raise RequestError("a part's header is over 1024 bytes")

    def _open(self) -> None:
        from python_multipart.multipart import parse_options_header

        self._header_field = b""
        _, parameters = parse_options_header(self._headers.get(b"content-disposition", b""))
        filename = parameters.get(b"filename")
        if not filename:
            raise RequestError("each part of a WFDB record is a file with a filename")
        name = safe_name(filename.decode("utf-8", "replace"))
        if name in self.names:
            raise RequestError(f"the file {name!r} is sent twice")
        if len(self.names) == MAX_WFDB_FILES:
            raise RequestError(f"a WFDB record is at most {MAX_WFDB_FILES} files")
        self.names.append(name)
        self.file = open(self.directory / name, "xb")

    def _data(self, data: bytes, start: int, end: int) -> None:
        self.file.write(data[start:end])

    def _end(self) -> None:
        self.file.close()
        self.file = None

    def finish(self) -> Path:
        """The record (its header's path without ``.hea``); RequestError unless the parts
        were complete and held exactly one header."""
        self.parser.finalize()
        if self.file is not None:
            raise RequestError("the multipart body ends inside a part")
        headers = [name for name in self.names if name.lower().endswith(".hea")]
        if len(headers) != 1:
            raise RequestError(f"a WFDB record is sent with one .hea header file; got "
                               f"{len(headers)} among {', '.join(self.names) or 'no file'}")
        from ..recordings.wfdb_record import signal_file_names

        record = self.directory / headers[0][:-len(".hea")]
        missing = [name for name in signal_file_names(str(record)) if name not in self.names]
        if missing:
            raise RequestError(f"the header {headers[0]} names the signal file "
                               f"{missing[0][:80]!r}, which was not sent")
        return record

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


class ClientGone(Exception):
    """The client left: the scoring of its upload stops."""


class Lines:
    """The bounded queue of JSON lines between the scoring thread and the response. A
    client that stops reading holds the scoring for ``stall_seconds`` at most: then it is
    taken as gone (its connection stays, holding no place, no thread, no file)."""

    def __init__(self, stall_seconds: float = 30.0) -> None:
        self.queue: queue.Queue = queue.Queue(QUEUE_BLOCKS)
        self.gone = threading.Event()
        self.stall_seconds = stall_seconds

    def put(self, item) -> None:
        """Wait for room; ClientGone once the response has ended, or when the client has
        read nothing for ``stall_seconds``."""
        deadline = time.monotonic() + self.stall_seconds
        while not self.gone.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                if time.monotonic() > deadline:
                    self.gone.set()
        raise ClientGone()

    def get(self, worker: threading.Thread):
        """The next item; :data:`_END` once the worker has stopped without one (gone)."""
        while True:
            try:
                return self.queue.get(timeout=0.1)
            except queue.Empty:
                if not worker.is_alive() and self.queue.empty():
                    return _END


class QueueSink:
    """A score sink handing each block's rows, as JSON lines, to the response."""

    def __init__(self, lines: Lines):
        self.lines = lines

    def __enter__(self) -> "QueueSink":
        return self

    def __exit__(self, *exc_info) -> None:
        pass

    def write(self, table) -> None:
        self.lines.put(b"".join(json.dumps(json_row(row)).encode() + b"\n"
                                for row in table.to_pylist()))

    def reject(self, rows) -> None:
        pass  # Bad rows fail the upload (on_bad_row "fail"): none reaches here.


def score_options(options: UploadOptions):
    """How the pipeline reads an upload (:class:`anomaly.scoring.plan.ScoreOptions`), as
    ``anomaly score`` reads a file given the same options; RequestError (400) for a span
    that is not a time."""
    from ..recordings.segment import SegmentOptions
    from ..recordings.times import parse_time
    from ..scoring.plan import ScoreOptions

    segment = None
    if options.format != "beats-csv":
        times = {}
        for name, text in (("from", options.start), ("to", options.stop)):
            try:
                times[name] = parse_time(text) if text else None
            except ValueError as error:
                raise RequestError(f"{name}: {first_line(error)}") from None
        segment = SegmentOptions(lead=options.lead, fs=options.fs,
                                 start=times["from"] or 0.0, stop=times["to"])
    return ScoreOptions(segment=segment, signal_csv=options.format == "signal-csv")


def prepare(model, upload: Upload):
    """The source, the job's warnings and the options of an uploaded file, checked against
    the model before anything is scored; RequestError (400) naming the upload otherwise."""
    from ..scoring.base import ModelLimits
    from ..scoring.fitted_kind import fitted_kind_warnings
    from ..scoring.plan import Job
    from ..scoring.sources import source_for

    options = score_options(upload.options)
    try:
        job = Job(str(upload.path), options=options)
        warnings = fitted_kind_warnings(job, model.detector, model.label)
        source = source_for(job, limits=ModelLimits.of(model.detector))
    except AnomalyError as error:
        raise RequestError(upload.message(error)) from None
    return source, [upload.unnamed(message) for message in warnings]


def html_report(model, upload: Upload) -> bytes:
    """The HTML report ``anomaly score UPLOAD --html`` writes (summary, score histogram,
    the recording's timeline and strips, the most anomalous beats), made by the same run;
    RequestError (400) naming the upload for one the model cannot score."""
    from ..scoring.plan import plan_run
    from ..scoring.run import execute

    html = upload.directory / ".report.html"  # A name no part can have (safe_name).
    options = score_options(upload.options)
    try:
        plan = plan_run([str(upload.path)], model.directory, html=html, options=options,
                        keep_scores=False, expand=False, runtime="onnx")
        # The served detector, not the directory read again; figures are drawn without
        # pyplot, so reports in several threads do not meet.
        execute(plan, detector=model.detector, model_label=model.label)
    except AnomalyError as error:
        raise RequestError(upload.message(error)) from None
    if not html.exists():  # No beat was scored: a run writes no report of nothing.
        raise RequestError(f"{upload.path.name}: no beat to score")
    return upload.unnamed(html.read_text()).encode()


class ScoreStream:
    """The scores of an upload as JSON lines, as the pipeline makes them (in a thread
    :meth:`start` starts), then a ``summary`` line; an error once lines have gone out ends
    the stream with an ``error`` line (the status, 200, went with the first).

    :meth:`close` (idempotent; the response calls it when it ends, whether the client read
    everything, left midway, or never started reading) stops the scoring at its next block,
    removes the upload and calls ``on_close``; a client that stops reading for
    ``stall_seconds`` has the same done by the scoring thread.
    """

    def __init__(self, model, upload: Upload, source, warnings: list[str],
                 on_close: Callable[[], None], stall_seconds: float = 30.0):
        self.model, self.upload, self.source, self.warnings = model, upload, source, warnings
        self.on_close = on_close
        self.lines = Lines(stall_seconds)
        self.worker: threading.Thread | None = None
        self.first: Any = None
        self.summary: dict[str, Any] | None = None
        self._closed = threading.Lock()
        self.closed = False

    def start(self) -> None:
        """Start the scoring, and wait for its first rows: RequestError (400, or 500 for
        the server's own failure) when the upload fails before any beat is scored (a
        header the model cannot read, beats of another length, a lead the recording
        lacks), so that it gets its status, not a 200."""
        self.worker = threading.Thread(target=self._produce, name="anomaly-upload",
                                       daemon=True)
        self.worker.start()
        self.first = self.lines.get(self.worker)
        if isinstance(self.first, Failure):
            self.close()
            raise RequestError(self.first.message, self.first.status)

    def __iter__(self) -> Iterator[bytes]:
        try:
            for warning in self.warnings:
                yield json.dumps({"warning": warning}).encode() + b"\n"
            item = self.first
            while item is not _END:
                yield item.line() if isinstance(item, Failure) else item
                item = self.lines.get(self.worker)
        finally:
            self.close()

    def _produce(self) -> None:
        from .. import logs
        from ..scoring.pipeline import score_source

        try:
            with self.source:
                scored = score_source(self.model.detector, self.source, QueueSink(self.lines))
            self.summary = _summary(self.model, self.upload, scored, self.source,
                                    self.warnings)
            self.lines.put(json.dumps({"summary": self.summary}).encode() + b"\n")
            self.lines.put(_END)
        except ClientGone:
            # Gone or stalled: what the upload held is given back now, not when the
            # response ends (a client that stops reading may keep it open).
            self._release()
        except Exception as error:  # Said to the client as the stream's last line.
            if isinstance(error, AnomalyError):
                failure = Failure(400, self.upload.message(error))
            else:
                logs.error(f"scoring an upload: {type(error).__name__}: {first_line(error)}",
                           event="error")
                failure = Failure(500, f"internal error ({type(error).__name__}: "
                                       f"{self.upload.message(error)})")
            with contextlib.suppress(ClientGone):
                self.lines.put(failure)
                self.lines.put(_END)

    def close(self) -> None:
        """Stop the scoring, wait for it, give back what the upload held (idempotent)."""
        self.lines.gone.set()
        if self.worker is not None and self.worker is not threading.current_thread():
            self.worker.join()
        self._release()

    def _release(self) -> None:
        with self._closed:
            if self.closed:
                return
            self.closed = True
        self.upload.close()
        self.on_close()


def _summary(model, upload: Upload, scored, source, warnings: list[str]) -> dict[str, Any]:
    counts = scored.counts
    analysable = source.analysable()
    summary = {"model": model.name, "input": upload.path.name, "format": upload.options.format,
               "beats_scored": counts.rows_scored, "anomalies": counts.anomalies,
               "beats_unreadable": counts.rows_unreadable,
               "threshold": float(model.detector.threshold_), "sha256": scored.sha256,
               "warnings": warnings}
    if analysable is not None:
        summary["analysable"] = analysable.as_json()
    from ..recordings import too_many_flagged_note

    note = too_many_flagged_note(counts.anomalies, counts.rows_scored, counts.rows_unreadable,
                                 recording=analysable is not None)
    if note is not None:
        warnings.append(note)
    return summary


def json_row(row: dict[str, Any]) -> dict[str, Any]:
    """A scores row as JSON: NaN (an unknown RR interval) as null, flags as booleans."""
    out = {}
    for name, value in row.items():
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        elif name == "is_anomaly":
            value = bool(value)
        out[name] = value
    return out
