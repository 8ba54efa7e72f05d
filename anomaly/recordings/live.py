"""Beats of a lead that arrives as it is recorded, found online and each given twice.

A device sends one lead's samples in chunks as it records them (:meth:`LiveSegmenter.feed`)
and the beats come back as soon as they can be cut:

- **provisionally**, once a beat's window has arrived (``after`` seconds past its R peak,
  or past the wave it is centred on for a model that aligns beats, see :mod:`.alignment`):
  found and cut from the lead as far as it has arrived, followed by a guess of what comes
  next (:data:`MIRROR_SECONDS`). The band-pass filter runs forwards and backwards, so the
  last samples of a window, so near the end of what has arrived, are not yet those of the
  recorded file, and the beat's next RR interval is unknown (its ratio is then 1, a beat
  on time; see :mod:`.rhythm`). Found in the 23 s or so of lead the filter needs, not in
  :data:`HISTORY_SECONDS`: in a pause of many seconds, noise may be given as a beat that
  no final one confirms;
- **finally**, once :data:`FINAL_SECONDS` more have arrived, by which time the filter has
  settled on the beat, in the next final step (one every :data:`FINAL_EVERY_SECONDS`):
  found, cut, numbered and given its RR context as :class:`.segment.Segmenter` does on
  the recorded file (the same :func:`.segment.find_beats` and :class:`.segment.Rhythm`),
  in the last :data:`HISTORY_SECONDS` of the lead, and held until the next beat is final
  too (for its next RR interval). Its samples are then those of ``anomaly score`` on the
  recording to within the filter's settling; the beats themselves may differ in noise,
  as the R-peak detector and the readability tests adapt over the stretch of lead they
  see (the file's is a 5-minute chunk).

What a client waits for a beat is its window's ``after`` seconds plus the time a step takes
(a provisional result), or :data:`FINAL_SECONDS` more and up to
:data:`FINAL_EVERY_SECONDS` (the final one). Memory is flat in the stream's length: the
last :data:`HISTORY_SECONDS` of the lead are kept (at least what the filter needs to
settle on the first beat not yet final), and a chunk is looked at :data:`STEP_SECONDS` at
a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .filters import PAD_SECONDS
from .peaks import REFRACTORY_SECONDS
from .segment import (CONTEXT_SECONDS, BeatWindow, Chunk, Found, RecordingBeats, Rhythm,
                      SegmentCounts, find_beats, unreadable_counts)

#: How long after a beat's window its final result waits for the filter to settle: the
#: padding a recorded file's chunks are read with (:data:`.filters.PAD_SECONDS`). Less
#: would do nearly: over a window of MIT-BIH 208, the largest difference from a
#: whole-record pass, as a share of the lead's range, was 5e-6 at 5 s, 7e-8 at 6 s, 3e-10
#: at 8 s and 9e-12 at 10 s.
FINAL_SECONDS = PAD_SECONDS
#: The most new samples one step looks at: a chunk of a minute is looked at in six.
STEP_SECONDS = 10.0
#: The lead looked at in a step is followed by its last seconds mirrored, this long, as a
#: guess of what comes next: on MIT-BIH 100, 119 and 208 (5 minutes each, 0.1 s chunks),
#: the provisional windows' mean difference from the final ones (z-normalised) fell from
#: a median of 0.02-0.16 (90th centile up to 0.78) to 0.02-0.04 (90th centile at most
#: 0.12), and the last beat found once its window had arrived from 1.4 s after its R peak
#: to 0.55 s on 208 (the sign-flipped mirror sosfiltfilt pads with, and a constant, did
#: worse; 1 s and 3 s alike or worse).
MIRROR_SECONDS = 2.0
#: The lead a final step's R-peak detector and readability tests look at, up to the
#: newest sample. Both adapt to what they see (the detector's threshold is a share of its
#: median QRS height), so the stretch the filter alone needs (about 23 s) let a pause of
#: many seconds lower it to the noise's height. Over the first 10 minutes of MIT-BIH 105,
#: 201, 203 and 232 (1 s messages), the final beats found at the file's sample with the
#: file's RR context rose from 88.6% (23 s) to 94.7% (60 s), 96.8% (120 s) and 96.5%
#: (300 s); on 100, 119, 208, 210, 215 and 228 from 98.2% (60 s) to 98.5% (120 s).
HISTORY_SECONDS = 120.0
#: Beats are made final at most this often: a final step looks at :data:`HISTORY_SECONDS`
#: of lead (about 80 ms at 360 Hz), the provisional steps between at the 23 s or so the
#: filter needs (about 20 ms). MIT-BIH 100 streamed as fast as the service took it
#: (``scripts/benchmark_live.py``) took 119 s made final every second, 101 s every 2 s.
FINAL_EVERY_SECONDS = 2.0


@dataclass(frozen=True)
class LiveStep:
    """What one step gave: the beats given provisionally (None: none) and the chunk of
    final ones (beats and counts, as :meth:`.segment.Segmenter.chunks` gives them)."""

    provisional: RecordingBeats | None
    final: Chunk


class LiveSegmenter:
    """The beats of one lead at ``fs`` Hz, cut by ``window``, from samples fed as they
    arrive. :meth:`feed` each chunk, then :meth:`end` when the recording ends."""

    def __init__(self, fs: float, window: BeatWindow = BeatWindow()):
        self.fs, self.window = fs, window
        self.before, self.after = window.samples_at(fs, "the stream")
        self.template = window.lead_template(self.before, self.after)
        self.look_ahead = int(round(FINAL_SECONDS * fs))
        self.settle = int(round(PAD_SECONDS * fs))
        self.refractory = int(round(REFRACTORY_SECONDS * fs))
        self.hold = int(round(CONTEXT_SECONDS * fs))
        self.step = max(1, int(round(STEP_SECONDS * fs)))
        self.history = int(round(HISTORY_SECONDS * fs))
        self.final_every = max(1, int(round(FINAL_EVERY_SECONDS * fs)))
        self.rhythm = Rhythm(fs, window)
        self.buffer = np.empty(0, dtype=np.float64)
        #: The recording's sample ``buffer[0]`` is.
        self.first = 0
        #: Beats whose R peak lies before it are final.
        self.final_to = 0
        #: The last R peak given, provisionally or finally.
        self.last_given: int | None = None
        #: The last final beat, held until the next is final (for its next RR interval).
        self.held: Found | None = None

    @property
    def received(self) -> int:
        """Samples received so far."""
        return self.first + len(self.buffer)

    def feed(self, samples: np.ndarray) -> Iterator[LiveStep]:
        """Take the next samples of the lead (finite, checked by the caller), and give
        what they complete, a step of at most :data:`STEP_SECONDS` at a time."""
        samples = np.asarray(samples, dtype=np.float64)
        for start in range(0, len(samples), self.step):
            piece = samples[start:start + self.step]
            self.buffer = np.concatenate([self.buffer, piece])
            yield self._step(self.received - self.look_ahead - self.after, len(piece))

    def end(self) -> LiveStep:
        """The recording has ended: every beat left is final (a beat whose window runs off
        its end is dropped, as ``anomaly score`` drops it)."""
        return self._step(self.received, 0, ended=True)

    def _step(self, cut: int, new: int, *, ended: bool = False) -> LiveStep:
        """Beats before ``cut`` made final (at most every :data:`FINAL_EVERY_SECONDS`),
        and those after it whose windows have arrived given provisionally; ``new``
        samples arrived since the last step."""
        received = self.received
        read = SegmentCounts(samples_read=new, position=received)
        if len(self.buffer) < self.before + self.after:
            return LiveStep(None, Chunk(None, read))
        finishing = cut > self.final_to and (ended or cut - self.final_to >= self.final_every)
        # A final step looks at all the lead kept (HISTORY_SECONDS); the others only at
        # the filter's settling before the first beat not yet final.
        start = 0 if finishing else max(0, self._settled_from() - self.first)
        signal, first, guessed = self.buffer[start:], self.first + start, 0
        if not ended:
            # The lead to come, guessed as its last seconds mirrored: the filter's backward
            # pass then starts from a signal like the lead, not from its last sample alone.
            guessed = min(len(signal) - 1, int(round(MIRROR_SECONDS * self.fs)))
            signal = np.concatenate([signal, signal[-2:-guessed - 2:-1]])
        found, unreadable = find_beats(signal, first, self.fs, self.before, self.after,
                                       # A beat just before the cut may have been found
                                       # just after it by the last step: kept, or given.
                                       keep=(self.final_to - self.refractory, received),
                                       n_samples=received, guessed=guessed,
                                       template=self.template)
        held = self.held
        last = held.peak if held is not None else self.rhythm.last_peak
        found = [beat for beat in found if last is None or beat.peak - last >= self.refractory]
        chunk = Chunk(None, read)
        if finishing:
            final = ([held] if held is not None else []) + \
                [beat for beat in found if beat.peak < cut]
            # The last waits for the next beat to be final too, as Segmenter.chunks holds
            # it, for its next RR interval (a peak in the last seconds may yet move or go);
            # up to the context's length: after a longer pause it goes without one.
            self.held = None
            if not ended and final and cut - final[-1].peak < self.hold:
                self.held = final.pop()
            following = [beat.peak for beat in final[1:]] + \
                [self.held.peak if self.held is not None else None]
            chunk = self.rhythm.take(final, following[:len(final)], read + unreadable_counts(
                unreadable, first, self.final_to, cut))
            self.final_to = cut
            if final:
                self.last_given = max(self.last_given or 0, final[-1].peak)
        provisional = None if ended else self._provisional(
            [beat for beat in found if beat.peak >= self.final_to])
        # Kept: HISTORY_SECONDS of lead, and at least the filter's settling before the
        # first beat not yet final.
        drop = min(self._settled_from(), received - self.history) - self.first
        if drop > 0:
            self.buffer = self.buffer[drop:]
            self.first += drop
        return LiveStep(provisional, chunk)

    def _settled_from(self) -> int:
        """The first sample the filter needs to settle on the first beat not yet final."""
        return self.final_to - self.before - self.settle - self.refractory

    def _provisional(self, pending: list[Found]) -> RecordingBeats | None:
        """Of the beats not yet final, those not given before whose windows have arrived."""
        given = self.last_given
        beats = []
        for beat in pending:
            if beat.window is None or given is not None and beat.peak - given < self.refractory:
                continue
            beats.append(beat)
            given = beat.peak
        if not beats:
            return None
        previous = [self.last_given if self.last_given is not None else np.nan] + \
            [beat.peak for beat in beats[:-1]]
        sample = np.array([beat.peak for beat in beats], dtype=np.int64)
        rr = np.column_stack([(sample - np.array(previous, dtype=np.float64)) / self.fs,
                              np.full(len(beats), np.nan),
                              np.full(len(beats), self.rhythm.local_mean())])
        self.last_given = int(sample[-1])
        return self.rhythm.beats(sample, [beat.window for beat in beats], rr,
                                 np.array([beat.reason for beat in beats], dtype=np.int8),
                                 np.zeros(len(beats), dtype=np.int64))
