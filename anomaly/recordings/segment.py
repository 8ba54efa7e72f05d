"""Beats cut from a recording around their R peaks, with their RR context, streamed.

A beat is the window ``before`` seconds before its R peak to ``after`` seconds after it,
taken from the lead band-pass filtered 0.5-40 Hz (which removes baseline wander and mains
hum), resampled to ``samples`` values and z-normalised (unless amplitudes are kept), as
ECG5000's beats are. A beat whose window runs off the recording is dropped and counted.

The lead is read in chunks of ``chunk_seconds`` on a grid from the recording's first
sample, each with :data:`PAD_SECONDS` of signal on either side; a chunk keeps the peaks
of its own span (and :data:`REFRACTORY_SECONDS` beyond, a beat both neighbours find
being kept once). The filter settles within the padding, so the windows are those of a
whole-record read; the detector adapts its thresholds as it goes, so near a border it
may find a beat a whole-record read would not (or the reverse). The grid does not move
with ``--from``/``--to``: every command and every span sees the same beats. Memory is
flat in the recording's length.

RR context, in seconds: ``rr_prev_s`` (from the previous R peak), ``rr_next_s`` (to the
next) and ``rr_local_mean_s`` (the mean of the last :data:`LOCAL_RR_BEATS` RR intervals up
to this beat between two readable beats), empty (NaN) where there is no such beat.

A beat is unreadable (``unreadable``: why; see :mod:`.quality`) when its window or either
of its RR intervals touches an unreadable stretch of the lead: after a lead-off, the first
beat's interval from the last beat before it is not the heart's. Peaks up to
:data:`CONTEXT_SECONDS` outside ``--from``/``--to`` are detected to give the first and
last beats their context.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..exceptions import InputError
from .filters import PAD_SECONDS, band_pass
from .peaks import REFRACTORY_SECONDS
from .quality import REASONS, keep_listed
from .signals import Lead
from .times import format_time

#: The most samples a beat window may span before resampling, and the most values a
#: chunk may decode: they bound the memory of a chunk whatever the recording.
MAX_WINDOW_SAMPLES = 8192
MAX_CHUNK_VALUES = 1 << 24
#: How far outside ``--from``/``--to`` peaks are detected for the RR context.
CONTEXT_SECONDS = 20.0
#: RR intervals averaged into ``rr_local_mean_s``.
LOCAL_RR_BEATS = 10


@dataclass(frozen=True)
class BeatWindow:
    """How a beat is cut: ``before``/``after`` its R peak (seconds), resampled to
    ``samples`` values, z-normalised unless ``keep_amplitude``. A model fitted on a
    recording keeps its window, so that scoring cuts beats the same way."""

    before: float = 0.25
    after: float = 0.45
    samples: int = 140
    keep_amplitude: bool = False

    def __post_init__(self) -> None:
        if not (0 <= self.before < 10 and 0 < self.after < 10 and self.before + self.after > 0.05):
            raise ValueError(f"a beat window of {self.before:g} s before and {self.after:g} s "
                             "after the R peak (each up to 10 s, together at least 0.05 s)")
        if not 8 <= self.samples <= 10_000:
            raise ValueError(f"{self.samples} samples per beat (8 to 10,000)")

    def to_metadata(self) -> dict:
        return {"before_s": self.before, "after_s": self.after, "samples": self.samples,
                "keep_amplitude": self.keep_amplitude}

    @classmethod
    def from_metadata(cls, value) -> "BeatWindow":
        """The window recorded in a model's metadata; ValueError when it is malformed."""
        if not isinstance(value, dict) or set(value) != {"before_s", "after_s", "samples",
                                                          "keep_amplitude"}:
            raise ValueError("beat_window must hold before_s, after_s, samples, keep_amplitude")
        before, after, samples, keep = (value[key] for key in
                                        ("before_s", "after_s", "samples", "keep_amplitude"))
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and
                   math.isfinite(x) for x in (before, after)) or \
                not isinstance(samples, int) or isinstance(samples, bool) or \
                not isinstance(keep, bool):
            raise ValueError("beat_window holds values of the wrong type")
        return cls(float(before), float(after), samples, keep)


@dataclass(frozen=True)
class SegmentOptions:
    """How beats are found in a recording.

    ``start``/``stop``: the span, in seconds (``stop`` None: to the end); a beat belongs
    to it when its R peak does. ``annotations``: the extension of a WFDB annotation file
    whose reference beats label the beats (AAMI classes). ``fs``: the sampling rate of a
    signal CSV without a time column.
    """

    lead: str | None = None
    start: float = 0.0
    stop: float | None = None
    fs: float | None = None
    annotations: str | None = None
    window: BeatWindow = BeatWindow()
    chunk_seconds: float = 300.0


@dataclass
class RecordingBeats:
    """Consecutive beats of one recording: their samples, where they are, their context."""

    values: np.ndarray
    sample: np.ndarray
    beat: np.ndarray
    rr_prev: np.ndarray
    rr_next: np.ndarray
    rr_local_mean: np.ndarray
    labels: np.ndarray | None
    fs: float
    #: Per beat, the code of why its window cannot be read (0: readable; else
    #: ``quality.REASONS[code - 1]``, see :mod:`anomaly.recordings.quality`).
    unreadable: np.ndarray

    def __len__(self) -> int:
        return len(self.values)

    @property
    def time_s(self) -> np.ndarray:
        return self.sample / self.fs

    @property
    def readable(self) -> np.ndarray:
        return self.unreadable == 0

    def unreadable_reasons(self) -> np.ndarray:
        """Per beat, why its window cannot be read ("" when it can), as text."""
        from .quality import REASONS

        return np.array(("",) + REASONS, dtype=object)[self.unreadable]

    def ids(self, record: str) -> dict[str, np.ndarray]:
        """The id columns of these beats (:data:`anomaly.io.layout.ID_COLUMNS`)."""
        return {"record": np.full(len(self), record, dtype=object), "beat": self.beat,
                "sample": self.sample, "time_s": np.round(self.time_s, 4),
                "rr_prev_s": self.rr_prev, "rr_next_s": self.rr_next,
                "rr_local_mean_s": self.rr_local_mean, "unreadable": self.unreadable_reasons()}


@dataclass(frozen=True)
class SegmentCounts:
    """What segmenting found: the beats kept (``unreadable_beats`` of them in unreadable
    stretches), those dropped at the recording's ends, the samples read, the sample up to
    which the lead has been segmented (``position``), the samples of the span looked at
    (``span_samples``) and, of those, the unreadable ones per reason (``unreadable``, in
    :data:`anomaly.recordings.quality.REASONS` order), and the unreadable stretches
    (``n_stretches`` of them; ``stretches`` keeps the longest, see
    :func:`anomaly.recordings.quality.keep_listed`). The counts of consecutive chunks add
    up, a stretch that runs from one into the next counting once."""

    beats: int = 0
    dropped_at_edges: int = 0
    samples_read: int = 0
    position: int = 0
    span_samples: int = 0
    unreadable: tuple[int, ...] = (0,) * len(REASONS)
    #: The unreadable stretches kept, ``(first, end, code)`` in samples (``end`` excluded;
    #: the code as in :class:`anomaly.recordings.quality.Unreadable`), in time order.
    stretches: tuple[tuple[int, int, int], ...] = ()
    n_stretches: int = 0
    unreadable_beats: int = 0

    def __add__(self, later: "SegmentCounts") -> "SegmentCounts":
        stretches = self.stretches + later.stretches
        n_stretches = self.n_stretches + later.n_stretches
        if self.stretches and later.stretches and \
                self.stretches[-1][1] == later.stretches[0][0]:
            last, first = self.stretches[-1], later.stretches[0]
            # One stretch across the border: its reason, that of its longer part.
            code = last[2] if last[1] - last[0] >= first[1] - first[0] else first[2]
            stretches = self.stretches[:-1] + ((last[0], first[1], code),) + later.stretches[1:]
            n_stretches -= 1
        return SegmentCounts(self.beats + later.beats,
                             self.dropped_at_edges + later.dropped_at_edges,
                             self.samples_read + later.samples_read,
                             max(self.position, later.position),
                             self.span_samples + later.span_samples,
                             tuple(a + b for a, b in zip(self.unreadable, later.unreadable)),
                             keep_listed(stretches), n_stretches,
                             self.unreadable_beats + later.unreadable_beats)

    @property
    def unreadable_samples(self) -> int:
        return sum(self.unreadable)


@dataclass(frozen=True)
class Chunk:
    """One chunk of a lead, segmented: its beats (None when it holds none) and its counts."""

    beats: RecordingBeats | None
    counts: SegmentCounts


class Segmenter:
    """Beats of one lead between ``options.start`` and ``options.stop``, chunk by chunk.

    Checks the span before reading anything (InputError naming the recording); raises
    InputError at the end when no beat was found.
    """

    def __init__(self, lead: Lead, options: SegmentOptions):
        self.lead, self.options = lead, options
        fs = lead.fs  # An ECG's rate: checked when the lead was opened (see .limits).
        self.start = int(round(options.start * fs))
        self.stop = lead.n_samples if options.stop is None else int(round(options.stop * fs))
        end = format_time(lead.duration)
        if self.start >= lead.n_samples:
            raise InputError(f"{lead.path}: --from {format_time(options.start)} is past the "
                             f"end of the recording ({end})")
        if self.stop > lead.n_samples:
            raise InputError(f"{lead.path}: --to {format_time(options.stop)} is past the end "
                             f"of the recording ({end})")
        if self.stop <= self.start:
            raise InputError(f"{lead.path}: --from {format_time(options.start)} is not before "
                             f"--to {format_time(self.stop / fs)}")
        window = options.window
        self.before = int(round(window.before * fs))
        self.after = int(round(window.after * fs))
        if self.before + self.after > MAX_WINDOW_SAMPLES:
            raise InputError(f"{lead.path}: a beat window of {window.before + window.after:g} s "
                             f"at {fs:g} Hz is {self.before + self.after:,} samples (at most "
                             f"{MAX_WINDOW_SAMPLES:,})")
        if lead.n_samples < self.before + self.after:
            raise InputError(f"{lead.path}: the recording ({lead.duration:.3g} s) is shorter "
                             f"than one beat window ({window.before + window.after:g} s)")
        self._reference = None
        # The files read (the lead's, and the annotation file), as they were when opened.
        self.files = lead.files
        if options.annotations is not None:
            if lead.annotations_base is None:
                raise InputError(f"{lead.path}: --annotations needs a WFDB record "
                                 "(annotation files sit beside its .hea)")
            from .annotations import read_reference_beats

            reference = read_reference_beats(lead.annotations_base, options.annotations,
                                             n_samples=lead.n_samples, fs=fs)
            self._reference = reference.samples, reference.classes
            self.files = lead.files + (reference.stamp,)

    @property
    def span(self) -> str:
        """``00:00 and 05:00``: the span, for messages."""
        return f"{format_time(self.start / self.lead.fs)} and {format_time(self.stop / self.lead.fs)}"

    def chunks(self) -> Iterator[Chunk]:
        """The lead's span, a chunk at a time: each chunk's beats and counts (add the
        counts up for the recording's). Raises InputError at the end when no beat was
        found."""
        # The last peak and whether it was readable, and the last RR intervals between
        # readable beats (an interval across an unreadable stretch is not the rhythm's).
        history: deque[tuple[int, bool]] = deque(maxlen=1)
        intervals: deque[float] = deque(maxlen=LOCAL_RR_BEATS)
        held: tuple[int, np.ndarray | None] | None = None
        number = 0
        refractory = int(round(REFRACTORY_SECONDS * self.lead.fs))
        read = SegmentCounts()
        for peaks, windows, reasons, read in self._peaks_and_windows():
            # Chunks overlap by the refractory period: a beat found by both is kept once.
            last = held[0] if held is not None else (history[-1][0] if history else None)
            found = [beat for beat in zip(peaks, windows, reasons)
                     if last is None or beat[0] - last >= refractory]
            pending = ([held] if held is not None else []) + found
            held = pending.pop() if pending else None
            following = [beat[0] for beat in pending[1:]] + ([held[0]] if held else [])
            chunk = self._context(pending, following, history, intervals, number, read)
            number += chunk.counts.beats
            yield chunk
        if held is not None:
            # The last beat, held for its next peak that never came: no more was read.
            chunk = self._context([held], [None], history, intervals, number,
                                  SegmentCounts(position=read.position))
            number += chunk.counts.beats
            yield chunk
        if number == 0:
            raise InputError(f"{self.lead.path}: no beats detected in lead {self.lead.name} "
                             f"between {self.span}")

    def _peaks_and_windows(self) -> Iterator[tuple[np.ndarray, list[np.ndarray | None],
                                                   np.ndarray, SegmentCounts]]:
        """Each chunk's R peaks (recording samples), their filtered windows (None when the
        window runs off the recording), the code of why each window cannot be read (0: it
        can) and what reading it counted, over the span and its context."""
        from .peaks import detect_r_peaks
        from .quality import second_opinion, unreadable_stretches

        lead, fs = self.lead, self.lead.fs
        context = int(round(CONTEXT_SECONDS * fs))
        low, high = max(0, self.start - context), min(lead.n_samples, self.stop + context)
        pad = int(round(PAD_SECONDS * fs))
        refractory = int(round(REFRACTORY_SECONDS * fs))
        # Chunks lie on a grid from the recording's first sample, whatever the span, so
        # that every command (and every span) sees the same peaks.
        budget = MAX_CHUNK_VALUES // lead.values_per_sample - 2 * pad
        chunk = max(pad, min(int(round(self.options.chunk_seconds * fs)), budget))
        for begin in range(low - low % chunk, high, chunk):
            end = min(begin + chunk, lead.n_samples)
            first = max(0, begin - pad)
            signal = lead.read(first, min(lead.n_samples, end + pad))
            filtered = band_pass(signal, fs)
            found = detect_r_peaks(signal, fs, filtered)
            unreadable = unreadable_stretches(signal, filtered, fs, found,
                                              second_opinion(signal, fs))
            peaks = found + first
            peaks = peaks[(peaks >= begin - refractory) & (peaks < end + refractory)]
            windows = []
            for peak in peaks:
                left, right = peak - self.before, peak + self.after
                inside = left >= 0 and right <= lead.n_samples
                windows.append(filtered[left - first:right - first] if inside else None)
            # A beat is unreadable when its window is, or the RR intervals either side of it
            # (its context) cross an unreadable stretch; without a neighbour in the chunk
            # (a long pause, or a stretch longer than the padding), up to the chunk's end.
            local = peaks - first
            at = np.searchsorted(found, local)
            previous = np.where(at > 0, found[np.maximum(at - 1, 0)], 0)
            following = np.where(at + 1 < len(found), found[np.minimum(at + 1, len(found) - 1)],
                                 len(signal) - 1)
            reasons = unreadable.within(np.minimum(local - self.before, previous),
                                        np.maximum(local + self.after, following + 1))
            # The span's own samples in this chunk: what is analysable is told of those.
            own = max(begin, self.start) - first, min(end, self.stop) - first
            stretches = tuple((a + first, b + first, code) for a, b, code in
                              unreadable.stretches(*own)) if own[1] > own[0] else ()
            yield peaks, windows, reasons, SegmentCounts(
                samples_read=len(signal), position=end, span_samples=max(0, own[1] - own[0]),
                unreadable=unreadable.samples(*own) if own[1] > own[0] else (0,) * len(REASONS),
                stretches=keep_listed(stretches), n_stretches=len(stretches))

    def _context(self, beats: list[tuple[int, np.ndarray | None]], following: list,
                 history: deque, intervals: deque, number: int, read: SegmentCounts) -> Chunk:
        """The beats of the span among ``beats``, with their RR context, numbered from
        ``number + 1``, and the chunk's counts (``read``: its reading's); ``following``
        holds each one's next peak (None at the end)."""
        fs = self.lead.fs
        kept, values, rr, unreadable = [], [], [], []
        dropped = 0
        for (peak, window, reason), next_peak in zip(beats, following):
            previous, readable = history[-1] if history else (None, False)
            if readable and reason == 0:
                intervals.append((peak - previous) / fs)
            history.append((peak, reason == 0))
            if not self.start <= peak < self.stop:
                continue
            if window is None:
                dropped += 1
                continue
            kept.append(peak)
            values.append(window)
            unreadable.append(reason)
            rr.append(((peak - previous) / fs if previous is not None else np.nan,
                       (next_peak - peak) / fs if next_peak is not None else np.nan,
                       np.mean(intervals) if intervals else np.nan))
        counts = read + SegmentCounts(beats=len(kept), dropped_at_edges=dropped,
                                      unreadable_beats=int(np.count_nonzero(unreadable)))
        if not kept:
            return Chunk(None, counts)
        sample = np.array(kept, dtype=np.int64)
        rr = np.array(rr, dtype=np.float64).reshape(-1, 3)
        labels = None
        if self._reference is not None:
            from .annotations import MATCH_SECONDS, match_labels

            # Only the reference beats near this block: matching stays cheap in a long record.
            reference, classes = self._reference
            reach = int(round(MATCH_SECONDS * fs))
            near = slice(np.searchsorted(reference, sample[0] - reach),
                         np.searchsorted(reference, sample[-1] + reach, side="right"))
            labels = match_labels(sample, reference[near], classes[near], fs)
        beats = RecordingBeats(self._shape(np.stack(values)), sample,
                               np.arange(number + 1, number + 1 + len(sample), dtype=np.int64),
                               *np.round(rr, 4).T, labels, fs,
                               np.array(unreadable, dtype=np.int8))
        return Chunk(beats, counts)

    def _shape(self, windows: np.ndarray) -> np.ndarray:
        """Windows resampled to ``samples`` values and, unless amplitudes are kept,
        z-normalised per beat."""
        from scipy.signal import resample_poly

        beats = resample_poly(windows, self.options.window.samples, windows.shape[1], axis=1)
        if not self.options.window.keep_amplitude:
            beats = beats - beats.mean(axis=1, keepdims=True)
            scale = beats.std(axis=1, keepdims=True)
            beats = beats / np.where(scale > 0, scale, 1.0)
        return beats

