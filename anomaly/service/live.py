"""Live ECG over a WebSocket: one lead's samples in, each beat's score out as it comes.

``ws://HOST:PORT/v2/models/{model}/stream?fs=HZ[&dtype=float32|float64]``: a device (or
a gateway beside it) opens the socket and sends the lead's samples, in its units (mV for
a lead as a WFDB record or EDF file holds it), as binary messages of little-endian
``dtype`` values (float32 unless told), in chunks of any length as it records them. Text
messages, JSON, steer the stream:

- ``{"flush": ID}``: answered ``{"flushed": ID, "samples": N}`` once everything sent
  before it has been looked at (``N`` samples so far): what a client waits on to know
  that no more results are due for what it sent;
- ``{"end": true}``: the recording has ended; the remaining beats are given, then the
  ``summary``, then the socket closes (1000).

The service answers in text messages, JSON: first ``{"start": {...}}`` (the model, the
rate, the beat window, when the final results come, warnings: see
:mod:`anomaly.scoring.fitted_kind`), then one message per beat, each given twice (see
:mod:`anomaly.recordings.live`): ``"final": false`` as soon as its window has arrived,
``"final": true`` once the filter has settled on it, numbered (``beat``) as
``anomaly score`` numbers the recording's beats and scored as it scores them. Both hold
``sample`` (its R peak, from the stream's first sample), ``time_s``, the RR context,
``unreadable``, ``score`` and ``is_anomaly``. A beat given provisionally that no final
beat confirms within 150 ms was not one. The ``summary`` holds the final beats' counts
and how much of the stream could be analysed.

A stream that cannot be taken is refused before the socket opens, with an HTTP status
and ``{"error": ...}``: 401 without the token, 404 for no such model, 400 for a bad
query, 503 (``Retry-After``) when ``max_streams`` streams are open. A stream that goes
wrong is told ``{"error": ...}`` and closed: 1007 for samples that are not numbers or a
message that is not understood, 1008 when nothing came for ``request_timeout`` seconds,
1011 for the service's own failure. A message is at most
:data:`anomaly.service.server.MAX_MESSAGE_BYTES`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..exceptions import InputError
from ..io.beats import Beats
from ..io.layout import parse_positive
from ..recordings.limits import MAX_ABS_VALUE, check_rate
from .protocol import RequestError, query_values

if TYPE_CHECKING:
    from ..recordings.segment import BeatWindow
    from .models import ServedModel

#: The sample types a stream may be sent in, as NumPy reads them.
DTYPES = {"float32": np.dtype("<f4"), "float64": np.dtype("<f8")}
#: WebSocket close codes (RFC 6455): the service is stopping (after the stream's last beats
#: and summary), the data cannot be taken, a policy (idle), the service's failure.
GOING_AWAY, INVALID_DATA, POLICY, INTERNAL = 1001, 1007, 1008, 1011


class StreamError(Exception):
    """What ends a stream, with the close code to end it with."""

    def __init__(self, message: str, code: int = INVALID_DATA):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class StreamOptions:
    """A stream's rate ``fs`` (Hz) and sample type ``dtype`` (see :data:`DTYPES`)."""

    fs: float
    dtype: str = "float32"

    @classmethod
    def from_query(cls, query: Any) -> "StreamOptions":
        """The options of the socket's query string; RequestError (400) for a value that
        cannot be one."""
        query = query_values(query, {"fs", "dtype"})
        given = query.get("fs")
        if given is None:
            raise RequestError("fs, the stream's sampling rate in Hz, is required (?fs=360)")
        fs = parse_positive(given)
        try:
            fs = check_rate("the stream", fs if fs is not None else given)
        except InputError as error:
            raise RequestError(str(error)) from None
        dtype = query.get("dtype", "float32")
        if dtype not in DTYPES:
            raise RequestError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype[:40]!r}")
        return cls(fs, dtype)


class LiveStream:
    """One stream's beats found and scored by ``model`` as its samples arrive: each call
    returns the messages to send, in order (called from one thread at a time).
    ``window``: the model's beat window, as :meth:`checked_window` gives it."""

    def __init__(self, model, options: StreamOptions, window: BeatWindow):
        from ..model.context import beat_context
        from ..recordings.live import FINAL_EVERY_SECONDS, FINAL_SECONDS, LiveSegmenter
        from ..recordings.segment import SegmentCounts
        from ..scoring.fitted_kind import lead_differences

        self.model, self.options = model, options
        detector = model.detector
        self.window = window
        self.segmenter = LiveSegmenter(options.fs, self.window)
        self.context = beat_context(detector.scaling_.context)
        self.dtype = DTYPES[options.dtype]
        self.counts = SegmentCounts()
        self.scored = self.anomalies = self.unreadable = 0
        self.warnings = lead_differences(detector, model.label, options.fs)
        self.final_after = self.window.after + FINAL_SECONDS + FINAL_EVERY_SECONDS

    @staticmethod
    def checked_window(model: ServedModel, options: StreamOptions) -> BeatWindow:
        """``model``'s beat window, once it is known to be cut at the stream's rate;
        RequestError (400) for a rate it cannot be cut at (its window too long in
        samples). Cheap: a stream is checked before it takes a place."""
        from ..scoring.base import ModelLimits

        window = ModelLimits.of(model.detector).beat_window()
        try:
            window.samples_at(options.fs, "the stream")
        except InputError as error:
            raise RequestError(str(error), 400) from None
        return window

    def start(self) -> dict[str, Any]:
        # The window without its template's values: whether beats are aligned is enough.
        window = {**replace(self.window, template=None).to_metadata(),
                  "aligned": self.window.template is not None}
        return {"start": {"model": self.model.name, "fs": self.options.fs,
                          "dtype": self.options.dtype, "beat_window": window,
                          "threshold": float(self.model.detector.threshold_),
                          "final_after_s": self.final_after, "warnings": self.warnings}}

    def samples(self, data: bytes) -> list[dict[str, Any]]:
        """The messages the samples in ``data`` give. StreamError for bytes that are not
        whole samples, or samples that are not an ECG's values."""
        size = self.dtype.itemsize
        if len(data) % size:
            raise StreamError(f"a binary message of {len(data)} bytes is not a whole number "
                              f"of {self.options.dtype} samples ({size} bytes each)")
        values = np.frombuffer(data, dtype=self.dtype).astype(np.float64)
        bad = ~(np.abs(values) <= MAX_ABS_VALUE)  # True for NaN and infinities too.
        if bad.any():
            at = self.segmenter.received + int(np.argmax(bad))
            raise StreamError(f"sample {at} is {float(values[np.argmax(bad)])!r}, not an ECG's value "
                              f"(a finite number at most {MAX_ABS_VALUE:g} in magnitude)")
        messages: list[dict[str, Any]] = []
        for step in self.segmenter.feed(values):
            messages += self._scored(step)
        return messages

    def end(self) -> list[dict[str, Any]]:
        """The last beats and the summary."""
        from ..recordings.quality import Analysable

        from ..recordings import flagged_share_note

        messages = self._scored(self.segmenter.end())
        received = self.segmenter.received
        analysable = Analysable.of(self.counts, self.options.fs)
        note = flagged_share_note(self.anomalies, self.scored)
        if note is not None:
            self.warnings.append(note)
        messages.append({"summary": {
            "model": self.model.name, "samples": received,
            "duration_s": round(received / self.options.fs, 3),
            "beats_scored": self.scored, "anomalies": self.anomalies,
            "beats_unreadable": self.unreadable,
            "beats_dropped_at_edges": self.counts.dropped_at_edges,
            "threshold": float(self.model.detector.threshold_),
            "analysable": analysable.as_json(), "warnings": self.warnings}})
        return messages

    def _scored(self, step) -> list[dict[str, Any]]:
        self.counts += step.final.counts
        messages = []
        if step.provisional is not None:
            messages += self._score(step.provisional, final=False)
        if step.final.beats is not None:
            messages += self._score(step.final.beats, final=True)
        return messages

    def _score(self, beats, *, final: bool) -> list[dict[str, Any]]:
        """The messages of scored ``beats``: each the scores row ``/score`` streams for it
        (:func:`.uploads.json_row`), without the record's name, and whether it is final
        (a provisional beat has no number yet)."""
        from ..scoring.pipeline import score_block, score_table, with_context
        from .uploads import json_row

        block = with_context(Beats(beats.values, beats.beat, beats.ids(self.model.name),
                                   positions=beats.sample), self.context, "the stream")
        scores, flags = score_block(self.model.detector, block, "the stream's beat")
        if final:
            self.scored += len(scores)
            self.anomalies += int(flags.sum())
            self.unreadable += int((~beats.readable).sum())
        messages = []
        for row in score_table(block, scores, flags.astype(np.int8)).to_pylist():
            message = json_row(row)
            del message["record"]
            if not final:
                message["beat"] = None
            messages.append({**message, "final": final})
        return messages


def control(text: str) -> tuple[str, Any]:
    """A text message as ``("flush", ID)`` or ``("end", None)``; StreamError otherwise."""
    try:
        message = json.loads(text) if len(text) <= 1000 else None
    except ValueError:
        message = None
    if isinstance(message, dict) and set(message) == {"flush"} and \
            isinstance(message["flush"], (int, str)) and len(str(message["flush"])) <= 100:
        return "flush", message["flush"]
    if message == {"end": True}:
        return "end", None
    raise StreamError(f"a text message must be {{\"flush\": ID}} or {{\"end\": true}}, got "
                      f"{text[:60]!r}")

