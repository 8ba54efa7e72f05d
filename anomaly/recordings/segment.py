"""Beats cut from a recording around their R peaks, with their RR context, streamed.

A beat is the window ``before`` seconds before its R peak to ``after`` seconds after it,
taken from the lead band-pass filtered 0.5-40 Hz (which removes baseline wander and mains
hum), resampled to ``samples`` values and z-normalised (unless amplitudes are kept), as
ECG5000's beats are. A beat whose window runs off the recording is dropped and counted.
With the ``template`` of a model fitted on a recording, the window is centred instead on
the wave of its QRS complex that matches the template best (:mod:`.alignment`), in the
lead the template is of (:meth:`SegmentOptions.aligns`).

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

import functools
import math
from collections import deque
from dataclasses import dataclass, replace
from typing import Iterator

import numpy as np

from ..exceptions import InputError
from ..json_values import is_count, is_number
from .filters import PAD_SECONDS, band_pass
from .limits import MAX_ABS_VALUE
from .peaks import REFRACTORY_SECONDS
from .quality import FLUTTER, REASONS, Unreadable, keep_listed
from .signals import Lead, LeadName, joined, not_checking, open_other_leads, runs
from .times import format_time

#: The most samples a beat window may span before resampling, and the most values a
#: chunk may decode: they bound the memory of a chunk whatever the recording.
MAX_WINDOW_SAMPLES = 8192
MAX_CHUNK_VALUES = 1 << 24
#: How far outside ``--from``/``--to`` peaks are detected for the RR context.
CONTEXT_SECONDS = 20.0
#: RR intervals averaged into ``rr_local_mean_s``.
LOCAL_RR_BEATS = 10


#: The largest magnitude of a template's values: a recording's samples are at most
#: :data:`~.limits.MAX_ABS_VALUE`, and band-passing overshoots them by a few times (kept
#: amplitudes; z-normalised beats are within the square root of their length): a
#: thousand times leaves a model written by ``fit`` loadable, and squares far from
#: overflowing.
MAX_TEMPLATE_VALUE = 1000 * MAX_ABS_VALUE


@dataclass(frozen=True)
class BeatWindow:
    """How a beat is cut: ``before``/``after`` its R peak (seconds), resampled to
    ``samples`` values, z-normalised unless ``keep_amplitude``, and, with a ``template``
    (the patient's dominant beat, ``samples`` values as the model takes beats), centred
    on the wave of its QRS complex that matches the template's best (see
    :mod:`.alignment`). A model fitted on a recording keeps its window, so that scoring
    cuts beats the same way."""

    before: float = 0.25
    after: float = 0.45
    samples: int = 140
    keep_amplitude: bool = False
    template: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not (0 <= self.before < 10 and 0 < self.after < 10 and self.before + self.after > 0.05):
            raise ValueError(f"a beat window of {self.before:g} s before and {self.after:g} s "
                             "after the R peak (each up to 10 s, together at least 0.05 s)")
        if not 8 <= self.samples <= 10_000:
            raise ValueError(f"{self.samples} samples per beat (8 to 10,000)")
        if self.template is not None and not (
                len(self.template) == self.samples and
                all(isinstance(x, float) and math.isfinite(x) for x in self.template)):
            raise ValueError(f"a beat template must be {self.samples} finite numbers (the "
                             f"window's samples), got {len(self.template)} values")

    def lead_template(self, before: int, after: int) -> np.ndarray | None:
        """The template brought to a window of ``before`` + ``after`` samples of a lead
        (:func:`.alignment.template_at`); None without one."""
        from .alignment import template_at

        return None if self.template is None else template_at(self.template, before, after)

    def aligned_on(self, template: np.ndarray) -> "BeatWindow":
        """This window with beats centred on ``template`` (a beat of ``samples`` values)."""
        return replace(self, template=tuple(float(x) for x in np.asarray(template)))

    def samples_at(self, fs: float, where: object) -> tuple[int, int]:
        """The samples before and after the R peak at ``fs`` Hz; an InputError naming
        ``where`` when they span more than :data:`MAX_WINDOW_SAMPLES`."""
        before, after = int(round(self.before * fs)), int(round(self.after * fs))
        if before + after > MAX_WINDOW_SAMPLES:
            raise InputError(f"{where}: a beat window of {self.before + self.after:g} s at "
                             f"{fs:g} Hz is {before + after:,} samples (at most "
                             f"{MAX_WINDOW_SAMPLES:,})")
        return before, after

    def to_metadata(self) -> dict:
        window = {"before_s": self.before, "after_s": self.after, "samples": self.samples,
                  "keep_amplitude": self.keep_amplitude}
        if self.template is not None:
            window["template"] = list(self.template)
        return window

    @classmethod
    def from_metadata(cls, value) -> "BeatWindow":
        """The window recorded in a model's metadata; ValueError when it is malformed. A
        model fitted before beats were aligned has no ``template``."""
        keys = {"before_s", "after_s", "samples", "keep_amplitude"}
        if not isinstance(value, dict) or not keys <= set(value) <= keys | {"template"}:
            raise ValueError("beat_window must hold before_s, after_s, samples, "
                             "keep_amplitude (and may hold template)")
        before, after, samples, keep = (value[key] for key in
                                        ("before_s", "after_s", "samples", "keep_amplitude"))
        if not all(is_number(x) for x in (before, after)) or not is_count(samples) or \
                not isinstance(keep, bool):
            raise ValueError("beat_window holds values of the wrong type")
        if "template" not in value:
            return cls(float(before), float(after), samples, keep)
        template = value["template"]
        if not isinstance(template, list) or len(template) != samples:
            raise ValueError(f"a beat template must be a list of {samples} numbers (the "
                             f"window's samples), got "
                             f"{len(template) if isinstance(template, list) else 'no list'}")
        if not all(is_number(x) and abs(x) <= MAX_TEMPLATE_VALUE for x in template):
            raise ValueError(f"a beat template must hold finite numbers of at most "
                             f"{MAX_TEMPLATE_VALUE:g} in magnitude")
        return cls(float(before), float(after), samples, keep,
                   tuple(float(x) for x in template))


@dataclass(frozen=True)
class SegmentOptions:
    """How beats are found in a recording.

    ``start``/``stop``: the span, in seconds (``stop`` None: to the end); a beat belongs
    to it when its R peak does. ``annotations``: the extension of a WFDB annotation file
    whose reference beats label the beats (AAMI classes). ``fs``: the sampling rate of a
    signal CSV without a time column. ``template_lead``: the lead the window's template is
    the dominant beat of (a model's; None: any lead's).
    """

    lead: str | None = None
    start: float = 0.0
    stop: float | None = None
    fs: float | None = None
    annotations: str | None = None
    window: BeatWindow = BeatWindow()
    chunk_seconds: float = 300.0
    template_lead: str | None = None

    def aligns(self, lead: str | None) -> bool:
        """Whether the beats of ``lead`` (its name) are centred on the window's template:
        those of the template's own lead only, since another lead's beats have another
        shape (they are cut around their R peaks). The lead read as the model's lead is
        that lead, whatever it is named now (see :func:`.signals.choose_lead`)."""
        model_lead = isinstance(self.lead, LeadName) and self.lead == self.template_lead
        return self.window.template is not None and (
            model_lead or self.template_lead in (None, lead))


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
    #: Unreadable stretches at most this many samples apart are one (see
    #: :class:`anomaly.recordings.quality.Unreadable`).
    join: int = 0

    def __add__(self, later: "SegmentCounts") -> "SegmentCounts":
        join = max(self.join, later.join)
        # A stretch that runs on into the next chunk, or starts soon after, is one: only
        # across the border (each side's own are joined already; joined again after
        # keep_listed dropped a short one between, two of flutter kept apart by it merged).
        stretches = self.stretches[:-1] + tuple(
            joined(self.stretches[-1:] + later.stretches, join, apart=FLUTTER))
        n_stretches = self.n_stretches + later.n_stretches - (
            len(self.stretches) + len(later.stretches) - len(stretches))
        return SegmentCounts(self.beats + later.beats,
                             self.dropped_at_edges + later.dropped_at_edges,
                             self.samples_read + later.samples_read,
                             max(self.position, later.position),
                             self.span_samples + later.span_samples,
                             tuple(a + b for a, b in zip(self.unreadable, later.unreadable)),
                             keep_listed(stretches), n_stretches,
                             self.unreadable_beats + later.unreadable_beats, join)

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
        self.before, self.after = window.samples_at(fs, lead.path)
        self.template = (window.lead_template(self.before, self.after)
                         if options.aligns(lead.name) else None)
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

    @functools.cached_property
    def other_leads(self) -> tuple[Lead, ...]:
        """The recording's other ECG leads that check the lead's beats
        (:func:`.signals.open_other_leads`), opened when the lead is first read."""
        return open_other_leads(self.lead)

    @property
    def span(self) -> str:
        """``00:00 and 05:00``: the span, for messages."""
        return f"{format_time(self.start / self.lead.fs)} and {format_time(self.stop / self.lead.fs)}"

    def chunks(self) -> Iterator[Chunk]:
        """The lead's span, a chunk at a time: each chunk's beats and counts (add the
        counts up for the recording's). Raises InputError at the end when no beat was
        found."""
        rhythm = Rhythm(self.lead.fs, self.options.window, self.start, self.stop,
                        self._reference)
        held: Found | None = None
        refractory = int(round(REFRACTORY_SECONDS * self.lead.fs))
        read = SegmentCounts()
        for found, read in self._found():
            # Chunks overlap by the refractory period: a beat found by both is kept once.
            last = held.peak if held is not None else rhythm.last_peak
            pending = ([held] if held is not None else []) + \
                [beat for beat in found if last is None or beat.peak - last >= refractory]
            held = pending.pop() if pending else None
            following = [beat.peak for beat in pending[1:]] + ([held.peak] if held else [])
            yield rhythm.take(pending, following, read)
        if held is not None:
            # The last beat, held for its next peak that never came: no more was read.
            yield rhythm.take([held], [None], SegmentCounts(position=read.position))
        if rhythm.number == 0:
            raise InputError(f"{self.lead.path}: no beats detected in lead {self.lead.name} "
                             f"between {self.span}")

    def _found(self) -> Iterator[tuple[list["Found"], SegmentCounts]]:
        """Each chunk's beats (:func:`find_beats`) and what reading it counted, over the
        span and its context."""
        lead, fs = self.lead, self.lead.fs
        context = int(round(CONTEXT_SECONDS * fs))
        low, high = max(0, self.start - context), min(lead.n_samples, self.stop + context)
        pad = int(round(PAD_SECONDS * fs))
        refractory = int(round(REFRACTORY_SECONDS * fs))
        # Chunks lie on a grid from the recording's first sample, whatever the span, so
        # that every command (and every span) sees the same peaks.
        # Each lead read decodes its values again (a WFDB file's every signal).
        budget = MAX_CHUNK_VALUES // (lead.values_per_sample * (1 + len(self.other_leads))) \
            - 2 * pad
        chunk = max(pad, min(int(round(self.options.chunk_seconds * fs)), budget))
        for begin in range(low - low % chunk, high, chunk):
            end = min(begin + chunk, lead.n_samples)
            first = max(0, begin - pad)
            last = min(lead.n_samples, end + pad)
            signal = lead.read(first, last)
            found, unreadable = find_beats(
                signal, first, fs, self.before, self.after,
                keep=(begin - refractory, end + refractory), n_samples=lead.n_samples,
                template=self.template,
                other_leads=tuple(_read_other(other, self.lead, first, last)
                                  for other in self.other_leads))
            # The span's own samples in this chunk: what is analysable is told of those.
            own = max(begin, self.start), min(end, self.stop)
            yield found, SegmentCounts(samples_read=len(signal), position=end) + \
                unreadable_counts(unreadable, first, *own)


def _read_other(other: Lead, lead: Lead, first: int, last: int) -> np.ndarray:
    """Samples ``first:last`` of ``other``, a lead that checks ``lead``'s beats; where they
    cannot be read (a value no ECG holds), missing (NaN: no verdict there), said once."""
    try:
        return other.read(first, last)
    except InputError as error:
        not_checking(lead, other.name, f"{error} (its samples there left out)")
        return np.full(last - first, np.nan)


@dataclass(frozen=True)
class Found:
    """A beat found in a stretch of a lead: its R ``peak`` (a sample of the recording),
    its band-passed ``window`` (None when it runs off the recording) and ``reason``, the
    code of why it cannot be read (0: it can)."""

    peak: int
    window: np.ndarray | None
    reason: int


def _present(missing: np.ndarray) -> list[tuple[int, int]]:
    """The stretches ``(first, stop)`` of a chunk whose samples are not ``missing``."""
    return runs(~missing)


def find_beats(signal: np.ndarray, first: int, fs: float, before: int, after: int, *,
               keep: tuple[int, int], n_samples: int, guessed: int = 0,
               template: np.ndarray | None = None,
               other_leads: tuple[np.ndarray, ...] = ()) -> tuple[list[Found], Unreadable]:
    """The beats of a stretch of a lead whose R peaks lie in ``keep`` (recording samples,
    the end excluded), and where the stretch cannot be read.

    ``signal`` holds samples ``first`` to ``first + len(signal)`` of a lead of
    ``n_samples`` (so far); a beat's window is ``before`` samples before its peak to
    ``after`` after it. A beat is unreadable when its window is, or the RR intervals
    either side of it (its context) cross an unreadable stretch; without a neighbour in
    the stretch (a long pause, or a stretch longer than the padding), up to its end.

    Missing samples (NaN: a lead off, a gap) are held at the nearest valid value and read
    as a flat stretch (:func:`.quality.no_signal`).

    The last ``guessed`` samples of ``signal`` are not the lead's but a guess of what comes
    next (a live stream's, see :mod:`.live`): they are filtered with it, but no beat is
    found in them and their readability is not judged.

    With a ``template`` (a beat window's, at the lead's rate: :func:`.alignment.template_at`),
    each window is centred on the wave of the beat's QRS complex that matches it best
    (:func:`.alignment.aligned_centres`); the beat's peak stays its R peak.

    ``other_leads`` are the same samples of the recording's other ECG leads
    (:func:`.signals.open_other_leads`): a detection that neither the second detector nor
    any detector on them finds, where one of them reads the beats about it, is no beat
    (:func:`.quality.unseen_elsewhere`). A live stream, one lead, has none.
    """
    from .alignment import aligned_centres
    from .peaks import detect_r_peaks
    from .quality import (hum_only, no_signal, other_leads_opinion, second_opinion,
                          unreadable_stretches, unseen_elsewhere)
    from .signals import held

    if guessed and other_leads:
        raise ValueError("find_beats: a live stream's guess of what comes next has no "
                         "other leads")
    signal, missing = held(signal)
    filtered = band_pass(signal, fs)
    # Hum alone in the lead itself, not in a live step's guess of what comes next (mirrored
    # hum made 2.5 s of it at a stream's end 4.5 s, read as hum where a file's was not).
    hum = np.concatenate([hum_only(signal[:len(signal) - guessed], fs),
                          np.zeros(guessed, dtype=bool)])
    if missing.any() or hum.any():
        # Each stretch the recording has, on its own, and not a lead off's mains hum: over
        # a held stretch too, the detector's adaptive thresholds fell, and T waves were
        # beats everywhere (over hum, on MIT-BIH 232 40 s before it in its chunk).
        found = np.concatenate([np.empty(0, np.int64)] + [
            start + detect_r_peaks(signal[start:stop], fs, band_pass(signal[start:stop], fs))
            for start, stop in _present(missing | hum)])
    else:
        found = detect_r_peaks(signal, fs, filtered)
    if guessed:
        signal, filtered, missing, hum = (signal[:-guessed], filtered[:-guessed],
                                          missing[:-guessed], hum[:-guessed])
        found = found[found < len(signal)]
    second = second_opinion(signal, fs)
    if other_leads:
        def opinions() -> tuple[np.ndarray, ...]:
            return other_leads_opinion(tuple(held(lead)[0] for lead in other_leads), fs)

        # A detection that neither the second detector nor the other leads see, where
        # one of them reads the beats about it, is no beat: left out before beats are cut
        # and their RR intervals measured (set aside, it spoilt its neighbours' intervals).
        found = found[~unseen_elsewhere(found, second, opinions, fs, len(signal))]
    unreadable = no_signal(unreadable_stretches(signal, filtered, fs, found, second,
                                                missing, hum),
                           missing, fs)
    peaks = found + first
    peaks = peaks[(peaks >= keep[0]) & (peaks < keep[1])]
    local = peaks - first
    centres = local if template is None else aligned_centres(filtered, local, template,
                                                             before, fs)
    at = np.searchsorted(found, local)
    previous = np.where(at > 0, found[np.maximum(at - 1, 0)], 0)
    following = np.where(at + 1 < len(found), found[np.minimum(at + 1, len(found) - 1)],
                         len(signal) - 1)
    reasons = unreadable.within(np.minimum(centres - before, previous),
                                np.maximum(centres + after, following + 1))
    beats = []
    for peak, at, reason in zip(peaks.tolist(), centres.tolist(), reasons.tolist()):
        # Within the recording so far, and within the stretch read (a window longer than
        # the padding may not be).
        inside = first + at - before >= 0 and first + at + after <= n_samples and \
            at - before >= 0 and at + after <= len(filtered)
        beats.append(Found(peak, filtered[at - before:at + after] if inside else None, reason))
    return beats, unreadable


def unreadable_counts(unreadable: Unreadable, first: int, start: int, stop: int
                      ) -> SegmentCounts:
    """The counts of samples ``start`` to ``stop`` (of the recording) of a stretch read
    from ``first``: how many were looked at, how many unreadable and where."""
    if stop <= start:
        return SegmentCounts()
    stretches = tuple((a + first, b + first, code) for a, b, code in
                      unreadable.stretches(start - first, stop - first))
    return SegmentCounts(span_samples=stop - start,
                         unreadable=unreadable.samples(start - first, stop - first),
                         stretches=keep_listed(stretches), n_stretches=len(stretches),
                         join=unreadable.join)


class Rhythm:
    """Beats of one lead as they are found, in order: numbered from 1, given their RR
    context (see the module's docstring) and shaped as the model takes them. Only those
    whose peak lies in ``start`` to ``stop`` (samples; None: no end) are kept; the others
    give their neighbours context. ``reference``: the reference beats' samples and classes
    that label the beats."""

    def __init__(self, fs: float, window: BeatWindow, start: int = 0, stop: int | None = None,
                 reference: tuple[np.ndarray, np.ndarray] | None = None):
        self.fs, self.window, self.start, self.stop = fs, window, start, stop
        self.reference = reference
        # The last peak and whether it was readable, and the last RR intervals between
        # readable beats (an interval across an unreadable stretch is not the rhythm's).
        self._last: tuple[int, bool] | None = None
        self.intervals: deque[float] = deque(maxlen=LOCAL_RR_BEATS)
        self.number = 0

    @property
    def last_peak(self) -> int | None:
        """The last R peak taken (kept or not; None before the first)."""
        return None if self._last is None else self._last[0]

    def local_mean(self) -> float:
        """The mean of the last RR intervals between readable beats (NaN: none yet)."""
        return float(np.mean(self.intervals)) if self.intervals else np.nan

    def take(self, beats: list[Found], following: list, read: SegmentCounts) -> Chunk:
        """The beats of the span among ``beats``, with their RR context, and the chunk's
        counts (``read``: its reading's); ``following`` holds each one's next peak (None
        at the end)."""
        fs = self.fs
        kept, values, rr, unreadable = [], [], [], []
        dropped = 0
        for beat, next_peak in zip(beats, following):
            previous, readable = self._last if self._last is not None else (None, False)
            if readable and beat.reason == 0:
                self.intervals.append((beat.peak - previous) / fs)
            self._last = beat.peak, beat.reason == 0
            if beat.peak < self.start or self.stop is not None and beat.peak >= self.stop:
                continue
            if beat.window is None:
                dropped += 1
                continue
            kept.append(beat.peak)
            values.append(beat.window)
            unreadable.append(beat.reason)
            rr.append(((beat.peak - previous) / fs if previous is not None else np.nan,
                       (next_peak - beat.peak) / fs if next_peak is not None else np.nan,
                       self.local_mean()))
        counts = read + SegmentCounts(beats=len(kept), dropped_at_edges=dropped,
                                      unreadable_beats=int(np.count_nonzero(unreadable)))
        if not kept:
            return Chunk(None, counts)
        made = self.beats(np.array(kept, dtype=np.int64), values,
                            np.array(rr, dtype=np.float64).reshape(-1, 3),
                            np.array(unreadable, dtype=np.int8),
                            np.arange(self.number + 1, self.number + 1 + len(kept),
                                      dtype=np.int64))
        self.number += len(kept)
        return Chunk(made, counts)

    def beats(self, sample: np.ndarray, windows: list[np.ndarray], rr: np.ndarray,
              unreadable: np.ndarray, number: np.ndarray) -> RecordingBeats:
        """Beats at ``sample`` cut as ``windows``, with their RR context ``rr`` (columns
        previous, next, local mean; seconds), reasons and numbers, labelled by the
        reference beats when there are some."""
        labels = None
        if self.reference is not None:
            from .annotations import MATCH_SECONDS, match_labels

            # Only the reference beats near this block: matching stays cheap in a long record.
            reference, classes = self.reference
            reach = int(round(MATCH_SECONDS * self.fs))
            near = slice(np.searchsorted(reference, sample[0] - reach),
                         np.searchsorted(reference, sample[-1] + reach, side="right"))
            labels = match_labels(sample, reference[near], classes[near], self.fs)
        return RecordingBeats(self.shape(np.stack(windows)), sample, number,
                              *np.round(rr, 4).T, labels, self.fs, unreadable)

    def shape(self, windows: np.ndarray) -> np.ndarray:
        """Windows resampled to the window's ``samples`` values and, unless amplitudes are
        kept, z-normalised per beat."""
        from scipy.signal import resample_poly

        beats = resample_poly(windows, self.window.samples, windows.shape[1], axis=1)
        if not self.window.keep_amplitude:
            beats = beats - beats.mean(axis=1, keepdims=True)
            scale = beats.std(axis=1, keepdims=True)
            beats = beats / np.where(scale > 0, scale, 1.0)
        return beats
