"""Where a model's training beats came from, as its model directory records it.

A model fitted on a file records the file and its SHA-256, how many beats it read and how
many it left out; one fitted on a recording also records the lead, the span and the beat
window its beats were cut by, so that scoring cuts a recording's beats the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..recordings.limits import MAX_FS, MAX_RECORDING_SECONDS, MIN_FS
from ..recordings.segment import BeatWindow
from ..recordings.signals import MAX_LEAD_NAME
from ..json_values import is_count, is_number, is_sha256, known


@dataclass(frozen=True)
class RecordingOrigin:
    """How a model's training beats were cut from a recording: the ``lead``, the
    ``window`` around each R peak (scoring cuts beats the same way), the span, the beats
    dropped at its edges and the recording's sampling rate ``fs`` (None for a model
    fitted before it was recorded), by which scoring tells a recording at another rate.
    And what the span's rhythm was: its seconds that could be read (``analysable_s``)
    and those in atrial fibrillation (``in_af_s``), as the rhythm analysis found them
    (None: not analysed), by which a report says the model learned AF as the patient's
    normal rhythm."""

    window: BeatWindow
    lead: str | None = None
    from_s: float | None = None
    to_s: float | None = None
    dropped_at_edges: int | None = None
    fs: float | None = None
    analysable_s: float | None = None
    in_af_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``provenance.recording`` section (unknown values left out)."""
        data = {"beat_window": self.window.to_metadata(), "lead": self.lead,
                "from_s": self.from_s, "to_s": self.to_s,
                "dropped_at_edges": self.dropped_at_edges, "fs": self.fs,
                "analysable_s": self.analysable_s, "in_af_s": self.in_af_s}
        return known(data)

    @classmethod
    def from_json(cls, data: Any) -> "RecordingOrigin":
        """The origin :meth:`to_json` wrote; ValueError naming what is malformed."""
        if not isinstance(data, dict):
            raise ValueError("'provenance.recording' must be an object")
        try:
            window = BeatWindow.from_metadata(data.get("beat_window"))
        except ValueError as error:
            raise ValueError(f"bad beat_window ({error})") from None
        lead = data.get("lead")
        if lead is not None and not (isinstance(lead, str) and 0 < len(lead) <= MAX_LEAD_NAME
                                     and lead.isprintable()):
            raise ValueError(f"bad recording lead (a name of 1 to {MAX_LEAD_NAME} printable "
                             "characters)")
        span = [data.get(key) for key in ("from_s", "to_s")]
        if not all(value is None or is_number(value) for value in span):
            raise ValueError("'provenance.recording' span must be numbers")
        dropped = data.get("dropped_at_edges")
        if dropped is not None and not is_count(dropped, least=0):
            raise ValueError("'provenance.recording.dropped_at_edges' must be a count")
        fs = data.get("fs")
        if fs is not None and not (is_number(fs) and MIN_FS <= fs <= MAX_FS):
            raise ValueError(f"'provenance.recording.fs' must be an ECG's sampling rate "
                             f"({MIN_FS:g} to {MAX_FS:,} Hz)")
        rhythm = [data.get(key) for key in ("analysable_s", "in_af_s")]
        if rhythm != [None, None] and not (
                all(is_number(value) and 0 <= value <= MAX_RECORDING_SECONDS
                    for value in rhythm)
                and rhythm[1] <= rhythm[0]):
            raise ValueError("'provenance.recording' analysable_s and in_af_s must be "
                             "seconds of a recording, both or neither, in_af_s at most "
                             "analysable_s")
        return cls(window, lead, *(None if value is None else float(value) for value in span),
                   dropped, None if fs is None else float(fs),
                   *(None if value is None else float(value) for value in rhythm))


@dataclass(frozen=True)
class Provenance:
    """Where a model's training beats came from.

    Attributes
    ----------
    file : str or None
        The training file as given (None for beats handed to ``fit`` in memory).
    file_sha256 : str or None
        Its SHA-256 when it was read.
    rows_read, rows_skipped : int or None
        Beats read from it, and those left out of training (labelled abnormal).
    data : str or None
        Words on the data (the demo's "ECG5000 from ...").
    recording : RecordingOrigin or None
        For a model fitted on a recording: its lead, span and beat window.
    """

    file: str | None = None
    file_sha256: str | None = None
    rows_read: int | None = None
    rows_skipped: int | None = None
    data: str | None = None
    recording: RecordingOrigin | None = None

    @classmethod
    def of_file(cls, path: str | os.PathLike, **details: Any) -> "Provenance":
        """The provenance of beats read from the file ``path`` (hashed now)."""
        from ..io.writers import file_sha256

        return cls(str(path), file_sha256(path), **details)

    def to_json(self) -> dict[str, Any]:
        """The ``provenance`` section of a model directory's metadata (unknown values left
        out)."""
        data = {"file": self.file, "file_sha256": self.file_sha256,
                "rows_read": self.rows_read, "rows_skipped": self.rows_skipped,
                "data": self.data,
                "recording": None if self.recording is None else self.recording.to_json()}
        return known(data)

    @classmethod
    def from_json(cls, data: Any) -> "Provenance":
        """The provenance :meth:`to_json` wrote; ValueError naming what is malformed."""
        if not isinstance(data, dict):
            raise ValueError("'provenance' must be an object")
        for key in ("file", "data"):
            if not isinstance(data.get(key, ""), str):
                raise ValueError(f"'provenance.{key}' must be text")
        digest = data.get("file_sha256")
        if digest is not None and not is_sha256(digest):
            raise ValueError("'provenance.file_sha256' is not a SHA-256 hex digest")
        for key in ("rows_read", "rows_skipped"):
            if data.get(key) is not None and not is_count(data[key], least=0):
                raise ValueError(f"'provenance.{key}' must be a count")
        recording = data.get("recording")
        return cls(data.get("file"), digest, data.get("rows_read"), data.get("rows_skipped"),
                   data.get("data"),
                   None if recording is None else RecordingOrigin.from_json(recording))

