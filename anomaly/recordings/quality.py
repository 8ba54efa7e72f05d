"""Stretches of a lead that cannot be read: flat (a lead off, a dead channel), clipped at
the recorder's range, or so noisy that beats cannot be told from noise; and stretches of
ventricular flutter or fibrillation, whose waves are no beats.

A beat whose window touches such a stretch is not scored as an anomaly: a flat line, a
clipped QRS or a burst of electrode motion reconstructs badly, and would top the list of
anomalies (on MIT-BIH 208, the beats beside the stretches where lead MLII goes flat did).
They are counted as unreadable instead, and every output says how much of the recording
could be analysed.

Four tests, on :data:`WINDOW_SECONDS` windows of a chunk of the lead, against the lead's
usual peak-to-peak amplitude once band-passed (the chunk's 90th percentile over windows,
about a QRS complex):

- **flat**: the band-passed lead moves less than :data:`FLAT_FRACTION` of it, or the raw
  lead does not move at all (a pause moves more: its P waves and noise; on MIT-BIH 232,
  whose pauses last up to 6 s, at least 3% of it), or nothing but mains hum is on it
  (:func:`hum_only`: a lead off picks the hum up, and a chunk of nothing else has no
  QRS amplitude to be flat against; its "beats" were read). A quiet stretch (not one
  that does not move at all) between two beats at most :data:`MAX_PAUSE_SECONDS` apart,
  with no beat in it and the rhythm on either side of it (:data:`MIN_RHYTHM_WINDOWS`
  windows that move before the next quiet one), is a pause, not a lead off: the heart stopped
  beating while the lead read it (MIT-BIH 219's 2.6 s pause at 5:01, and an asystole
  with less noise than 232's). Set aside, the beats either side were unreadable and the
  pause was never reported. A lead that comes off for under 10 s and leaves its noise
  (not a flat line, a step or taps) between two beats reads as a pause too: its strip
  shows which (another lead of the recording, which the tool does not read, would);
- **off baseline**: the raw lead's median departs by more than :data:`JUMP_FRACTION` of it
  from the chunk's baseline (the median of the windows' medians) and from its own (the
  median of those within :data:`BASELINE_WINDOWS` of it): an electrode
  pulled, a lead off and the amplifier recovering (MIT-BIH 208 at 20:16 and 23:03), which
  the band-pass turns into waves the size of beats;
- **clipped or stuck**: the raw lead holds one value for :data:`STUCK_SECONDS` or more (an
  ECG sampled at 100 Hz or more never does: even its flattest stretch drifts by a
  quantisation step within that time);
- **noisy**: a second R-peak detector of another design (neurokit2's own method: gradient,
  not energy) confirms, within :data:`AGREEMENT_SECONDS`, fewer than :data:`MIN_AGREEMENT`
  of the tool's beats in a :data:`NOISE_WINDOW_SECONDS` window, unless those beats are
  alike, or each one it misses looks like one it confirms nearby (a ventricular
  bigeminy whose wide PVCs it counts only some of the time: :func:`missed_alike`). This
  is the bSQI of Li,
  Mark and Clifford (2008) made one-sided: where the second detector finds *more* beats (the
  P waves of a 2:1 block on MIT-BIH 231), the tool's beats are still real; where noise
  makes the tool find beats that are not there, the second detector, fooled elsewhere,
  does not confirm them. A single such beat is an artefact too (:func:`lone_artefacts`):
  one the second detector does not confirm, between two it confirms, that splits an
  interval of the rhythm
  (from the beat before it to the beat after it no longer than :data:`SPLIT_RATIO` of the
  usual RR interval) and is like neither of them is a spike between two beats, not an
  ectopic beat, which comes with its own QRS and resets or delays the next beat, nor the
  first beat of a ventricular run, like the run's next. (An interpolated ectopic beat, which
  delays nothing, is set aside too if the second detector misses it: rare.) And
  between two of the tool's beats a pause apart (:data:`PAUSE_SECONDS`), waves that its
  detector does not read as beats, as large as :data:`WAVES_FRACTION` of the usual amplitude
  (root mean square, away from the beats' QRS and T waves), are noise to the tool: the
  heart did not pause there (MIT-BIH 207's ventricular flutter, whose smooth waves both
  detectors partly miss, was listed as pauses of up to 4.1 s).

A fifth reason is the heart's, not the lead's: **ventricular flutter or fibrillation**
(:func:`flutter_waves`), where the band-passed lead is nearly a sine wave of flutter's
rate, whichever of the lead's reasons but noise it is not. Its waves are no beats to score
(both detectors count them at random: on MIT-BIH 207 the rest was read as slow
ventricular runs); its beats are set aside as the others' are, and each stretch is a
rhythm event (:mod:`anomaly.holter.events`). Measured with ``scripts/benchmark_rhythm.py``
(docs/benchmarks.md): MIT-BIH's only flutter is 207's, every episode found at 128 to
500 Hz and in noise, none elsewhere.

Before any of this, a detection is no beat at all where the recording's other ECG leads
deny it (:func:`unseen_elsewhere`, called by the segmenter): neither the second detector
nor any detector on them finds it while one of them reads the beats about it. Left out,
not set aside, it spoils no neighbour's RR interval.

Measured on the 44 MIT-BIH records (``scripts/benchmark_patient.py``, docs/benchmarks.md):
what is set aside, and how many real beats with it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .filters import PAD_SECONDS, band_pass, high_pass, without_mains
from .signals import joined, runs

if TYPE_CHECKING:
    from .segment import SegmentCounts
    from .times import RecordingStart

#: The windows of the flat and off-baseline tests, in seconds.
WINDOW_SECONDS = 1.0
#: A window moving less than this fraction of the lead's usual amplitude is flat.
FLAT_FRACTION = 0.02
#: A window whose rest (the peak-to-peak of the lead without its mains hum, band-passed)
#: is under this fraction of its hum (the peak-to-peak at the mains frequencies) holds
#: nothing but hum: a lead off. On the 48 MIT-BIH records' two leads (173,280 windows at
#: 360 Hz, 60 Hz mains), the least rest-to-hum ratio is 0.9 (201's V1; MLII's 1.5), under
#: 2 in 31 windows (``scripts/benchmark_lead_off.py`` gives MLII's at each rate and in
#: noise); a lead off with hum four times its noise's size reads 0.02 to 0.3 at 128 to
#: 1,000 Hz. Where the noise is as large as the hum it is noise, for the noise test.
HUM_FRACTION = 0.5
#: ... for this many windows in a row at least: a second of a slow rhythm may hold no QRS
#: complex, and under 0.3 mV of hum MIT-BIH 232's seconds between its beats (sinus
#: bradycardia) read as hum alone, one at a time. Hum alone is quiet, and a quiet stretch
#: with no beat in it between two beats at most :data:`MAX_PAUSE_SECONDS` apart is a
#: pause (see ``flat`` above): the heart's asystole on a lead with hum on it looks the same.
HUM_WINDOWS = 3
#: A window whose median departs this far from the baseline is off it ...
JUMP_FRACTION = 0.5
#: ... from the chunk's median level and from that of the windows this many either side
#: of it: a lead whose level steps or drifts (a DC-coupled recorder) has a baseline of its
#: own wherever it is, and only the step is off (against the chunk's alone, a step of 2 mV
#: set aside the minute before it; a drift of 0.5 mV a minute, 45% of 20 minutes). Against
#: its own alone, swings of the baseline with the electrode's motion were off too (MIT-BIH
#: 208 at 21:00 and 21:11, 3 s each).
BASELINE_WINDOWS = 10
#: The longest quiet stretch between two beats read as a pause rather than a lead off:
#: asystole longer than this is rare, and a lead off for longer, reported as a pause,
#: would be a false alarm of the gravest kind. No longer than the padding a chunk is read
#: with, so that a pause across a chunk's border is judged alike from both chunks.
MAX_PAUSE_SECONDS = PAD_SECONDS
#: The windows that must move between two quiet stretches for either to be a pause: taps
#: on a loose electrode, each found as a beat, cut a lead off into quiet pieces each
#: between two "beats" (3.2 s apart, they read as 13 pauses and a bradycardia).
MIN_RHYTHM_WINDOWS = 3
#: A window moving less than this fraction of the usual amplitude, next to windows off the
#: baseline, is the amplifier recovering from them (MIT-BIH 208 at 23:04-23:08): off too.
#: Alone it may be a pause (MIT-BIH 232's pauses move at least 3% of it).
RECOVERY_FRACTION = 0.1
#: One raw value held this long: the lead is clipped or stuck.
STUCK_SECONDS = 0.1

#: The windows of the noise test, the share of the tool's beats the second detector must
#: confirm in each, and how close a confirming beat must be.
NOISE_WINDOW_SECONDS = 3.0
MIN_AGREEMENT = 0.8
AGREEMENT_SECONDS = 0.15
#: A window's beats, where the second detector confirms too few, are noise only when they
#: are not alike: the median correlation of all the window's QRS complexes
#: (:data:`QRS_HALF_SECONDS` either side of the peak) with their median below
#: :data:`MIN_ALIKE`. Ventricular flutter, whose waves one detector counts and the other
#: does not, is a run of alike waves (MIT-BIH 207). Judged on the unconfirmed beats
#: alone, it set aside far more real beats (docs/benchmarks.md, "Label-free
#: patient-specific detection", changes not kept).
QRS_HALF_SECONDS = 0.1
MIN_ALIKE = 0.8
#: Nor are they noise when those the second detector misses look like beats it confirms,
#: or like each other, this many at least, within this many windows either side
#: (:func:`missed_alike`): a bigeminy's PVCs, which it counts only some of the time.
MIN_MISSED_ALIKE = 3
MISSED_REACH = 2
#: How alike they must be: more than the beats of a window (noise's false detections
#: may resemble a beat at 0.8, MIT-BIH 105 and 228).
MIN_TWIN_LIKENESS = 0.95
#: An unconfirmed beat whose neighbours are no further apart than this share of the
#: usual RR interval splits an interval of the rhythm: an artefact, set aside with
#: :data:`LONE_ARTEFACT_SECONDS` either side of it.
SPLIT_RATIO = 1.2
LONE_ARTEFACT_SECONDS = 0.05
#: ... unless its QRS complex correlates this much or more with a neighbour's: the first
#: beat of a ventricular run, like the run's next (one pair's correlation, where
#: :data:`MIN_ALIKE` is a window's median).
MIN_NEIGHBOUR_LIKENESS = 0.8
#: A detection the second detector misses is no beat where no other lead of the
#: recording has a QRS complex at it and one of them follows the rhythm about it: finds
#: :data:`MIN_AGREEMENT` of the beats, this many at least, that the second detector
#: confirms within :data:`NOISE_WINDOW_SECONDS` either side (:func:`unseen_elsewhere`).
MIN_FOLLOWED = 3
#: A pause: an RR interval this long or longer (the rhythm events' default,
#: :class:`anomaly.holter.events.EventLimits`). A gap between two of the tool's beats as
#: long is judged for waves between them: from :data:`T_WAVE_END_SECONDS` after the first
#: beat (its T wave; times the square root of the RR interval before it in seconds, where
#: that is over 1 s, as the QT interval grows: a sinus rhythm at 30 bpm, whose T waves end
#: 0.6 s after its R peaks, had a quarter of its beats set aside) to
#: :data:`QRS_START_SECONDS` before the second (its P wave, with a PR interval up to 0.2 s
#: and the QRS onset before the R peak; at 0.2 s, a slow rhythm's P waves were waves) ...
PAUSE_SECONDS = 2.0
T_WAVE_END_SECONDS = 0.45
QRS_START_SECONDS = 0.3
#: ... where a band-passed root mean square over this fraction of the usual amplitude is
#: waves, not a pause. On MIT-BIH (44 records, 145 such gaps) the gaps inside ventricular
#: flutter are at 0.10 to 0.23 of it but at its end (0.016); all the others, pauses,
#: lead-offs and noise, at 0.056 or less (232's pauses at 0.034 or less); chosen between,
#: on the one database here with ventricular flutter (1 record).
#: Each chunk judges with its own usual amplitude, and a gap longer than a chunk's padding
#: from one side only, as the flat test does.
WAVES_FRACTION = 0.08
#: The second detector's first and last seconds of a chunk, where it has not settled: the
#: beats there are not judged.
SETTLING_SECONDS = 2.0
#: The shortest stretch of lead the second detector is asked about.
SECOND_OPINION_SECONDS = 2.0
#: How far either side of a missing sample the lead is unreadable: the band-pass filter
#: rings from the step the held value makes.
MISSING_REACH_SECONDS = 1.0

#: Ventricular flutter or fibrillation: the heart's waves, not beats (see the module's
#: docstring; a stream's windows start with its buffer, a file's with its chunk, so the
#: edges of a stretch may differ by a second between them). The VF filter of Kuo and
#: Dillman (Computers in Cardiology 1978), as Amann, Tratnig and Unterkofler evaluate it
#: (BioMedical Engineering OnLine 4:60, 2005), on windows of the band-passed lead this
#: long, a step apart ...
FLUTTER_WINDOW_SECONDS = 8.0
FLUTTER_STEP_SECONDS = 1.0
#: ... a window's leakage under this limit (0 for a sine wave, near 1 for QRS complexes
#: on a flat line) ...
FLUTTER_LEAKAGE = 0.5
#: ... its waves this many a second (the filter's estimate, half a period a step of its
#: N samples; ventricular flutter runs at 150 to 300 a minute, fibrillation faster) ...
FLUTTER_HZ = (2.5, 10.0)
#: ... and as large as this fraction of the usual amplitude in three quarters of its
#: seconds (each second's peak-to-peak): not a mains hum's remnant on a lead off, nor a
#: window mostly flat (the asystole after flutter, where the flutter's waves alone make
#: the leakage) ...
FLUTTER_SIZE = 0.2
#: ... and smooth, its power above this frequency under this share of its power:
#: flutter's and fibrillation's waves are round, and QRS complexes going on through a
#: tremor, an atrial flutter's F waves or coarse f waves of AF put more there (MIT-BIH
#: 207's flutter windows: 0.1% to 1.1%; synthetic atrial flutter with sine-like F waves
#: and coarse AF read as flutter: 3% to 6%) ...
FLUTTER_SHARP_HZ = 15.0
FLUTTER_SHARP_SHARE = 0.02
#: ... unless the beats found in it are a rhythm (:func:`rhythm_through`): their RR
#: intervals' standard deviation under this fraction of their mean.
FLUTTER_RHYTHM_VARIATION = 0.15
#: The reasons a stretch is set aside, in the order they are tested; a sample's code is
#: its reason's place in this tuple plus one (0: readable). All but the last are the
#: lead's, unreadable; the last is the heart's, whose waves are no beats to score.
REASONS = ("flat", "off baseline", "clipped", "noisy", "ventricular flutter or fibrillation")
FLAT, OFF_BASELINE, CLIPPED, NOISY, FLUTTER = (REASONS.index(name) + 1 for name in REASONS)
#: The heart's reason, as outputs write it.
FLUTTER_REASON = REASONS[FLUTTER - 1]
#: How many of a recording's unreadable stretches, the longest, are kept and listed: a
#: recording's count of them is unbounded (a lead clipping every second for a day).
LISTED_STRETCHES = 20
#: And of ventricular flutter or fibrillation, each an event: rare, but a recording's count
#: of them is bounded too.
LISTED_FLUTTER = 200
#: Unreadable runs at most this far apart (a beat or two between them) are listed as one
#: stretch, within a chunk and across chunks: a lead clipping for 15 s leaves the rail
#: between its waves' peaks, and was listed as 20 to 30 pieces. (Only the list: the
#: samples between them still count as readable.)
JOIN_SECONDS = 2.0


@dataclass(frozen=True)
class Unreadable:
    """Where a chunk of a lead cannot be read: a reason code per sample (0: readable,
    ``i + 1``: ``REASONS[i]``; the first reason found); unreadable runs at most ``join``
    samples apart make one stretch (:data:`JOIN_SECONDS`)."""

    reason: np.ndarray
    join: int = 0

    def within(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """For each window ``[left, right)`` (sample indices, clipped to the chunk): the code
        of the first reason, in :data:`REASONS` order, found in it (0: all readable)."""
        left = np.clip(np.asarray(left, dtype=np.int64), 0, len(self.reason))
        right = np.clip(np.asarray(right, dtype=np.int64), 0, len(self.reason))
        found = np.zeros(len(left), dtype=np.int8)
        for code in range(len(REASONS), 0, -1):
            cumulative = np.concatenate([[0], np.cumsum(self.reason == code)])
            found[cumulative[right] - cumulative[left] > 0] = code
        return found

    def stretches(self, start: int, stop: int) -> list[tuple[int, int, int]]:
        """The unreadable stretches between samples ``start`` and ``stop``: ``(first,
        end, code)``, ``end`` excluded, one per run of unreadable samples, its code the
        reason of most of its samples (a lead off is flat, with a clipped edge); runs at
        most ``join`` samples apart are one (:func:`.signals.joined`), but ventricular
        flutter or fibrillation is one stretch of its own, the rhythm's event."""
        part = self.reason[start:stop]
        lead = [(start + a, start + b,
                 int(np.argmax(np.bincount(part[a:b], minlength=len(REASONS) + 1)[1:])) + 1)
                for a, b in runs((part > 0) & (part != FLUTTER))]
        heart = [(start + a, start + b, FLUTTER) for a, b in runs(part == FLUTTER)]
        return joined(sorted(lead + heart), self.join, apart=FLUTTER)

    def samples(self, start: int = 0, stop: int | None = None) -> tuple[int, ...]:
        """Samples of each reason (in :data:`REASONS` order) between ``start`` and ``stop``."""
        part = self.reason[start:stop]
        return tuple(int(np.sum(part == code)) for code in range(1, len(REASONS) + 1))


def _duration(seconds: float) -> str:
    """``0.1 s`` under 10 s, ``45 s`` under two minutes, ``3.5 min`` from there."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def keep_listed(stretches: tuple) -> tuple:
    """``stretches`` (in time order) bounded: the first, the last (which a later chunk's
    may continue), the :data:`LISTED_STRETCHES` longest of the lead's and the
    :data:`LISTED_FLUTTER` longest of ventricular flutter or fibrillation (each an event
    the rhythm lists), in time order."""
    if len(stretches) <= LISTED_STRETCHES + 2:
        return stretches
    inner = sorted(stretches[1:-1], key=lambda stretch: stretch[0] - stretch[1])
    lead = [stretch for stretch in inner if stretch[2] != FLUTTER][:LISTED_STRETCHES]
    heart = [stretch for stretch in inner if stretch[2] == FLUTTER][:LISTED_FLUTTER]
    return (stretches[0],) + tuple(sorted(lead + heart)) + (stretches[-1],)


@dataclass(frozen=True)
class Analysable:
    """How much of a recording's span could be read: its seconds, the unreadable seconds
    per reason (:data:`REASONS` order) and the beats set aside in them; and, what every
    output's account of the recording gives with it, when the recording began."""

    span_seconds: float
    unreadable_seconds: tuple[float, ...]
    unreadable_beats: int = 0
    #: The longest unreadable stretches (and the first and last): ``(from, to, reason)``,
    #: seconds from the recording's start; ``n_stretches`` counts them all.
    stretches: tuple[tuple[float, float, str], ...] = ()
    n_stretches: int = 0
    #: When the recording began, as its header says (None: it does not say).
    started: "RecordingStart | None" = None

    @classmethod
    def of(cls, counts: "SegmentCounts", fs: float,
           started: "RecordingStart | None" = None) -> "Analysable":
        return cls(counts.span_samples / fs, tuple(n / fs for n in counts.unreadable),
                   counts.unreadable_beats,
                   tuple((first / fs, end / fs, REASONS[code - 1])
                         for first, end, code in counts.stretches), counts.n_stretches,
                   started)

    @property
    def flutter(self) -> tuple[tuple[float, float], ...]:
        """The stretches of ventricular flutter or fibrillation: from and to, seconds."""
        return tuple((first, end) for first, end, reason in self.stretches
                     if reason == FLUTTER_REASON)

    @property
    def lead_stretches(self) -> tuple[tuple[float, float], ...]:
        """The listed stretches the lead could not be read in (not the heart's flutter):
        from and to, seconds."""
        return tuple((first, end) for first, end, reason in self.stretches
                     if reason != FLUTTER_REASON)

    def longest(self, count: int = LISTED_STRETCHES) -> list[tuple[float, float, str]]:
        """The ``count`` longest stretches, in time order."""
        ranked = sorted(self.stretches, key=lambda stretch: stretch[1] - stretch[0],
                        reverse=True)[:count]
        return sorted(ranked)

    @property
    def seconds(self) -> float:
        return max(0.0, self.span_seconds - sum(self.unreadable_seconds))

    @property
    def share(self) -> float:
        return self.seconds / self.span_seconds if self.span_seconds else 1.0

    def headline(self) -> str:
        """``28.5 of 30.0 min analysable (95%)``."""
        # A share just short of 1 is not written 100%.
        share = f"{self.share:.1%}" if 0.995 <= self.share < 1 else f"{self.share:.0%}"
        return (f"{self.seconds / 60:.1f} of {self.span_seconds / 60:.1f} min analysable "
                f"({share})")

    def describe(self) -> str:
        """``28.5 of 30.0 min analysable (95%); 90 s unreadable (noisy 72 s, flat 18 s):
        its 14 beats set aside, never flagged``; with ventricular flutter or fibrillation,
        ``...; 90 s unreadable (noisy 72 s, flat 18 s) and 45 s of ventricular flutter or
        fibrillation: their 14 beats set aside, never flagged``."""
        text = self.headline()
        lead = dict(zip(REASONS, self.unreadable_seconds))
        heart = lead.pop(FLUTTER_REASON, 0.0)
        unreadable = sum(lead.values())
        parts = []
        if unreadable > 0:
            reasons = [f"{name} {_duration(seconds)}" for name, seconds in lead.items()
                       if seconds > 0]
            parts.append(f"{_duration(unreadable)} unreadable ({', '.join(reasons)})")
        if heart > 0:
            parts.append(f"{_duration(heart)} of {FLUTTER_REASON}")
        if parts:
            text += (f"; {' and '.join(parts)}: {'their' if len(parts) > 1 else 'its'} "
                     f"{self.unreadable_beats} beats set aside, never flagged")
        return text

    def as_json(self) -> dict[str, Any]:
        from .times import format_time

        return {"span_minutes": round(self.span_seconds / 60, 3),
                "span_s": self.span_seconds,
                "analysable_minutes": round(self.seconds / 60, 3),
                "analysable_share": round(self.share, 4),
                "unreadable_minutes": {name: round(seconds / 60, 3) for name, seconds in
                                       zip(REASONS, self.unreadable_seconds)},
                "unreadable_s": dict(zip(REASONS, self.unreadable_seconds)),
                "unreadable_beats": self.unreadable_beats,
                "unreadable_stretches": self.n_stretches,
                "longest_unreadable_stretches": [
                    {"from": format_time(first), "to": format_time(end), "from_s": first,
                     "to_s": end, "seconds": round(end - first, 2), "reason": reason}
                    for first, end, reason in self.longest()],
                "started": None if self.started is None else self.started.as_json()}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> "Analysable":
        """What :meth:`as_json` wrote (its seconds, not its rounded minutes); the
        stretches kept are the longest it listed."""
        from .times import RecordingStart

        # A report written before the start was kept has none.
        started = value.get("started")
        # A report written before ventricular flutter was set aside has none of it.
        return cls(value["span_s"],
                   tuple(value["unreadable_s"].get(name, 0.0) for name in REASONS),
                   value["unreadable_beats"],
                   tuple((item["from_s"], item["to_s"], item["reason"])
                         for item in value["longest_unreadable_stretches"]),
                   value["unreadable_stretches"],
                   None if started is None else RecordingStart.from_json(started))


def _windows(values: np.ndarray, size: int) -> np.ndarray:
    """``values`` in rows of ``size``; a short last row is the last ``size`` values (its
    verdict then stands for its own samples), or, with fewer values than a row, padded
    with the last value."""
    rows = -(-len(values) // size)
    if len(values) < size:
        return np.concatenate([values, np.full(size - len(values), values[-1])])[None, :]
    whole = values[:(rows - 1) * size].reshape(rows - 1, size)
    return np.vstack([whole, values[-size:][None, :]])


def rest_to_hum(raw: np.ndarray, fs: float, size: int) -> np.ndarray:
    """Per window of ``size`` samples of ``raw``: the peak-to-peak of the lead without its
    mains hum, band-passed, over that of the hum (inf where there is no hum, or no mains
    frequency lies under the Nyquist frequency)."""
    notched = without_mains(raw, fs)
    return _rest_to_hum(raw, notched, band_pass(notched, fs), size)


def _rest_to_hum(raw: np.ndarray, notched: np.ndarray, rest: np.ndarray,
                 size: int) -> np.ndarray:
    hum_size = np.ptp(_windows(raw - notched, size), axis=1)
    rest_size = np.ptp(_windows(rest, size), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(hum_size > 0, rest_size / hum_size, np.inf)


def hum_only(raw: np.ndarray, fs: float) -> np.ndarray:
    """Which samples of ``raw`` lie in windows (of :data:`WINDOW_SECONDS`) that hold nothing
    but mains hum: the rest of them under :data:`HUM_FRACTION` of their hum
    (:func:`rest_to_hum`), in runs of :data:`HUM_WINDOWS` or more, unless the second
    detector finds beats all through the run on the lead without its hum (none more than
    :data:`MAX_PAUSE_SECONDS` apart, nor from its ends), :func:`alike` ones (3 at least):
    a low-voltage ECG under hum larger than its QRS complexes, not a lead off, in whose
    noise it finds few beats and of no one shape (three in 80 s of a lead off planted in
    MIT-BIH 221 correlated at 0.82)."""
    found = np.zeros(len(raw), dtype=bool)
    if len(raw) == 0:
        return found
    size = max(1, int(round(WINDOW_SECONDS * fs)))
    notched = without_mains(raw, fs)
    filtered = band_pass(notched, fs)
    hum = _rest_to_hum(raw, notched, filtered, size) < HUM_FRACTION
    if not hum.any():
        return found
    beats, half = second_opinion(notched, fs), int(round(QRS_HALF_SECONDS * fs))
    # The last window is the last ``size`` samples: a run to the end covers them.
    for first, stop in runs(hum):
        inside = beats[(beats >= first * size) & (beats < stop * size)]
        gaps = np.diff(np.concatenate([[first * size], inside, [stop * size]]))
        beating = gaps.max() <= MAX_PAUSE_SECONDS * fs and \
            alike(filtered, inside, half) >= MIN_ALIKE
        if stop - first >= HUM_WINDOWS and not beating:
            found[first * size:stop * size] = True
    return found


def _baseline(levels: np.ndarray, signal: np.ndarray) -> np.ndarray:
    """Each window's baseline: the median level of the windows with ``signal`` within
    :data:`BASELINE_WINDOWS` of it (where none is, the next window's that has one, or
    the last's)."""
    known = np.where(signal, levels, np.nan)
    padded = np.pad(known, BASELINE_WINDOWS, constant_values=np.nan)
    around = sliding_window_view(padded, 2 * BASELINE_WINDOWS + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # All NaN: no signal near.
        baseline = np.nanmedian(around, axis=1)
    missing = np.isnan(baseline)
    if missing.any():
        near = np.flatnonzero(~missing)
        nearest = near[np.clip(np.searchsorted(near, np.flatnonzero(missing)), 0, len(near) - 1)]
        baseline[missing] = baseline[nearest]
    return baseline


def _recovering(off: np.ndarray, quiet: np.ndarray) -> np.ndarray:
    """``off`` (windows off the baseline) grown into the ``quiet`` windows that follow or
    precede it without a break (an amplifier recovering from an electrode's pop), then by
    one window either side (where the band-pass filter settles after the step)."""
    grown = off.copy()
    for order in (slice(None), slice(None, None, -1)):
        run = False
        for index in np.arange(len(off))[order]:
            run = grown[index] or (run and quiet[index])
            grown[index] = run
    spread = grown.copy()
    spread[1:] |= grown[:-1]
    spread[:-1] |= grown[1:]
    return spread


def _pauses(quiet: np.ndarray, peaks: np.ndarray, size: int, fs: float) -> np.ndarray:
    """Which of the ``quiet`` windows (of ``size`` samples) lie in a pause: a run of them
    with no beat of ``peaks`` in it, between two beats at most :data:`MAX_PAUSE_SECONDS`
    apart, at least :data:`MIN_RHYTHM_WINDOWS` from the runs before and after it. Runs
    with no beat between them are one: a lead's noise about the quiet limit makes pieces
    of one asystole (an 8 s one with 10 uV of noise read as flat, with 5 or 20 uV as a
    pause)."""
    pause = np.zeros(len(quiet), dtype=bool)
    stretches = []
    for first, stop in runs(quiet):
        if stretches and np.searchsorted(peaks, stretches[-1][1] * size) \
                == np.searchsorted(peaks, first * size):
            stretches[-1] = (stretches[-1][0], stop)
        else:
            stretches.append((first, stop))
    for index, (first, stop) in enumerate(stretches):
        after_last = stretches[index - 1][1] if index else -MIN_RHYTHM_WINDOWS
        next_first = (stretches[index + 1][0] if index + 1 < len(stretches)
                      else len(quiet) + MIN_RHYTHM_WINDOWS)
        if first - after_last < MIN_RHYTHM_WINDOWS or next_first - stop < MIN_RHYTHM_WINDOWS:
            continue
        start, end = first * size, stop * size
        before, after = np.searchsorted(peaks, start), np.searchsorted(peaks, end)
        if before == after and 0 < before < len(peaks) and \
                peaks[before] - peaks[before - 1] <= MAX_PAUSE_SECONDS * fs:
            pause[first:stop] = True
    return pause


def _stuck(raw: np.ndarray, run: int) -> np.ndarray:
    """Samples inside runs of at least ``run`` equal consecutive values."""
    change = np.flatnonzero(np.diff(raw) != 0) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [len(raw)]])
    long = (stops - starts) >= run
    marked = np.zeros(len(raw) + 1, dtype=np.int64)
    np.add.at(marked, starts[long], 1)
    np.add.at(marked, stops[long], -1)
    return np.cumsum(marked[:-1]) > 0


def confirmed(peaks: np.ndarray, other: np.ndarray, tolerance: int) -> np.ndarray:
    """Whether each of ``peaks`` has one of ``other`` within ``tolerance`` samples. Both
    increasing."""
    if len(other) == 0:
        return np.zeros(len(peaks), dtype=bool)
    nearest = np.searchsorted(other, peaks)
    before = np.abs(peaks - other[np.clip(nearest - 1, 0, len(other) - 1)])
    after = np.abs(peaks - other[np.clip(nearest, 0, len(other) - 1)])
    return np.minimum(before, after) <= tolerance


def confirmed_share(peaks: np.ndarray, other: np.ndarray, tolerance: int) -> float:
    """The share of ``peaks`` :func:`confirmed` by ``other`` (1 when there are no
    ``peaks``)."""
    return float(confirmed(peaks, other, tolerance).mean()) if len(peaks) else 1.0


def no_signal(unreadable: Unreadable, missing: np.ndarray, fs: float) -> Unreadable:
    """``unreadable`` with the samples a recording does not have (``missing``: WFDB's
    invalid value) and :data:`MISSING_REACH_SECONDS` either side, where the band-pass
    filter rings from the held value's step, read as flat: a lead off, whatever the
    detectors made of it."""
    if not missing.any():
        return unreadable
    reach = int(round(MISSING_REACH_SECONDS * fs))
    # Missing samples within ``reach`` of each sample, counted by cumulative sums.
    count = np.concatenate([[0], np.cumsum(missing, dtype=np.int64)])
    position = np.arange(len(missing))
    near = count[np.minimum(position + reach + 1, len(missing))] > \
        count[np.maximum(position - reach, 0)]
    reason = unreadable.reason.copy()
    reason[near] = FLAT
    return Unreadable(reason, unreadable.join)


def unreadable_stretches(raw: np.ndarray, filtered: np.ndarray, fs: float,
                         peaks: np.ndarray, other_peaks: np.ndarray,
                         missing: np.ndarray | None = None,
                         hum: np.ndarray | None = None) -> Unreadable:
    """Where a chunk of a lead cannot be read. ``raw``/``filtered``: the chunk, as read and
    band-passed; ``peaks``: the tool's R peaks in it, ``other_peaks`` the second detector's
    (:func:`second_opinion`), sample indices into the chunk; ``missing``: its samples the
    recording does not have (held, see :func:`no_signal`), left out of the lead's usual
    amplitude and baseline (a lead off most of a chunk made the ECG around it read as off
    baseline); ``hum``: its samples of nothing but mains hum (:func:`hum_only`; None:
    none), quiet and left out likewise."""
    reason = np.zeros(len(raw), dtype=np.int8)
    join = int(round(JOIN_SECONDS * fs))
    if len(raw) == 0:
        return Unreadable(reason, join)
    size = max(1, int(round(WINDOW_SECONDS * fs)))
    windows = _windows(raw, size)
    moves = np.ptp(_windows(filtered, size), axis=1)
    hum_windows = (np.zeros(len(moves), bool) if hum is None else
                   _windows(hum, size).all(axis=1))
    # The lead's usual amplitude and baseline are those of the ECG on it: not of samples
    # the recording does not have, nor of a lead off's hum.
    signal = ~hum_windows if missing is None else \
        ~_windows(missing, size).any(axis=1) & ~hum_windows
    if not signal.any():
        return no_signal(Unreadable(reason, join), np.ones(len(raw), bool), fs)
    usual = np.percentile(moves[signal], 90)
    levels = np.median(windows, axis=1)
    jump = JUMP_FRACTION * usual
    off = _recovering((np.abs(levels - np.median(levels[signal])) > jump)
                      & (np.abs(levels - _baseline(levels, signal)) > jump),
                      moves < RECOVERY_FRACTION * usual)
    quiet = (moves < FLAT_FRACTION * usual) | hum_windows
    flat = (np.ptp(windows, axis=1) == 0) | (quiet & ~_pauses(quiet, peaks, size, fs))
    for code, found in ((FLAT, flat), (OFF_BASELINE, off)):
        per_sample = np.repeat(found, size)[:len(raw)]
        reason[(reason == 0) & per_sample] = code
    reason[(reason == 0) & _stuck(raw, max(2, int(round(STUCK_SECONDS * fs))))] = CLIPPED
    for first, stop in waves_between_beats(filtered, peaks, fs, usual):
        stretch = reason[first:stop]
        stretch[stretch == 0] = NOISY
    # The heart's waves, where the lead is neither flat, off baseline nor clipped: noisy
    # as its beats read (both detectors miss waves or find them at random), they are not.
    flutter = flutter_waves(filtered, fs, usual, peaks, other_peaks)
    if len(raw) < SECOND_OPINION_SECONDS * fs:
        # Too short for the second detector: no opinion. Over a longer chunk, finding no
        # beat at all is its opinion: a lead off with nothing but the amplifier's noise on
        # it, in which the tool's detector found "beats", was read.
        return Unreadable(_with_flutter(reason, flutter), join)
    noise_window = int(round(NOISE_WINDOW_SECONDS * fs))
    tolerance = int(round(AGREEMENT_SECONDS * fs))
    around = int(round(LONE_ARTEFACT_SECONDS * fs))
    half_qrs = int(round(QRS_HALF_SECONDS * fs))
    # The second detector settles over its first seconds: beats there are not judged.
    edge = int(round(SETTLING_SECONDS * fs))
    peaks = peaks[(peaks >= edge) & (peaks < len(raw) - edge)]
    for peak in peaks[lone_artefacts(peaks, other_peaks, tolerance, filtered=filtered,
                                     half=half_qrs)]:
        stretch = reason[max(0, peak - around):peak + around + 1]
        stretch[stretch == 0] = NOISY
    for start in range(0, len(raw), noise_window):
        stop = min(start + noise_window, len(raw))
        if stop - start < noise_window // 2 and start > 0:
            start = max(0, stop - noise_window)  # A short last window: judged with the one before.
        inside = [p[(p >= start) & (p < stop)] for p in (peaks, other_peaks)]
        # Fewer than three beats give no verdict: two beats are always alike or not by chance.
        if len(inside[0]) >= 3 and confirmed_share(*inside, tolerance) < MIN_AGREEMENT and \
                alike(filtered, inside[0], half_qrs) < MIN_ALIKE and \
                not missed_alike(filtered, peaks, other_peaks, start, stop, tolerance, half_qrs):
            stretch = reason[start:stop]
            stretch[stretch == 0] = NOISY
    return Unreadable(_with_flutter(reason, flutter), join)


def _with_flutter(reason: np.ndarray, flutter: np.ndarray) -> np.ndarray:
    """``reason`` with the samples of ``flutter`` that are readable or noisy given
    :data:`FLUTTER`, and the noisy stretches that touch them too: the flutter's edges,
    whose waves the two detectors took for beats differently (only the middle second of
    a window mostly of flutter is flutter)."""
    marked = np.where(flutter & ((reason == 0) | (reason == NOISY)), np.int8(FLUTTER), reason)
    for first, stop in runs(marked == NOISY):
        if (first > 0 and marked[first - 1] == FLUTTER) or \
                (stop < len(marked) and marked[stop] == FLUTTER):
            marked[first:stop] = FLUTTER
    return marked


def vf_leakage(values: np.ndarray) -> tuple[float, int]:
    """The VF filter's leakage of a stretch of band-passed lead, and the half period it
    takes (samples): N, the stretch's mean magnitude over its mean step times pi, rounded,
    and the leakage, sum |v[i] + v[i - N]| over sum |v[i]| + |v[i - N]|. A sine wave of
    that half period leaks nothing (0); QRS complexes on a flat line nearly all (1). A
    stretch that does not move, or whose half period is no shorter than it, leaks all."""
    steps = np.abs(np.diff(values)).sum()
    if not steps > 0:
        return 1.0, 0
    half = int(np.floor(np.pi * np.abs(values[1:]).sum() / steps + 0.5))
    if half < 1 or half >= len(values):
        return 1.0, half
    total = (np.abs(values[half:]) + np.abs(values[:-half])).sum()
    return float(np.abs(values[half:] + values[:-half]).sum() / total), half


def flutter_waves(filtered: np.ndarray, fs: float, usual: float,
                  peaks: np.ndarray | None = None,
                  other_peaks: np.ndarray | None = None) -> np.ndarray:
    """Which samples of a band-passed chunk lie in ventricular flutter or fibrillation:
    the middle :data:`FLUTTER_STEP_SECONDS` of each window of :data:`FLUTTER_WINDOW_SECONDS`
    whose VF filter (:func:`vf_leakage`) leaks under :data:`FLUTTER_LEAKAGE`, at
    :data:`FLUTTER_HZ`, with waves of :data:`FLUTTER_SIZE` of the ``usual`` amplitude in
    three quarters of its seconds (the 25th percentile of their peak-to-peaks), smooth
    (:data:`FLUTTER_SHARP_SHARE`); but not where a rhythm of QRS complexes goes on through
    the waves (:func:`rhythm_through`, from the tool's ``peaks`` and the second detector's
    ``other_peaks``, sample indices into the chunk). Only middles are marked: the first
    and last 3.5 s of a chunk never are, nor any of a chunk shorter than a window."""
    found = np.zeros(len(filtered), bool)
    size = int(round(FLUTTER_WINDOW_SECONDS * fs))
    step = max(1, int(round(FLUTTER_STEP_SECONDS * fs)))
    second = max(1, int(round(WINDOW_SECONDS * fs)))
    if len(filtered) < size or not usual > 0:
        return found
    tolerance = int(round(AGREEMENT_SECONDS * fs))
    sharp = np.square(high_pass(filtered, fs, FLUTTER_SHARP_HZ))
    for start in range(0, len(filtered) - size + 1, step):
        values = filtered[start:start + size]
        leakage, half = vf_leakage(values)
        if leakage >= FLUTTER_LEAKAGE or not FLUTTER_HZ[0] <= fs / (2 * half) <= FLUTTER_HZ[1]:
            continue
        if np.percentile(np.ptp(_windows(values, second), axis=1), 25) < FLUTTER_SIZE * usual:
            continue
        if sharp[start:start + size].sum() >= FLUTTER_SHARP_SHARE * np.square(values).sum():
            continue
        if peaks is not None and other_peaks is not None and rhythm_through(
                *(p[(p >= start) & (p < start + size)] for p in (peaks, other_peaks)),
                tolerance):
            continue
        middle = start + (size - step) // 2
        found[middle:middle + step] = True
    return found


def rhythm_through(peaks: np.ndarray, other_peaks: np.ndarray, tolerance: int) -> bool:
    """Whether the beats of a window (``peaks``, increasing) are a rhythm going on: at
    least 3, the second detector confirming :data:`MIN_AGREEMENT` of them (within
    ``tolerance`` samples), their RR intervals varying by under
    :data:`FLUTTER_RHYTHM_VARIATION` of their mean. In flutter both detectors take waves
    for beats at random (MIT-BIH 207: the second confirms a quarter of the tool's, at the
    median of its flutter windows; their intervals vary by 0.26 of their mean or more in
    9 windows of 10); through a tremor, an atrial flutter's F waves or a wide complex
    tachycardia, whose waves the filter finds as sine-like, the QRS complexes go on."""
    if len(peaks) < 3:
        return False
    intervals = np.diff(peaks)
    return (confirmed_share(peaks, other_peaks, tolerance) >= MIN_AGREEMENT
            and intervals.std() < FLUTTER_RHYTHM_VARIATION * intervals.mean())


def waves_between_beats(filtered: np.ndarray, peaks: np.ndarray, fs: float,
                        usual: float) -> list[tuple[int, int]]:
    """The stretches (first and stop sample) between two of ``peaks`` (increasing) at
    least :data:`PAUSE_SECONDS` apart, less their QRS and T waves, where the band-passed
    lead's root mean square is over :data:`WAVES_FRACTION` of the ``usual`` amplitude
    (none where that is 0: a lead with no usual amplitude is judged by the flat test)."""
    if not usual > 0:
        return []
    before = int(round(QRS_START_SECONDS * fs))
    intervals = np.diff(peaks)
    gaps = np.flatnonzero(intervals >= PAUSE_SECONDS * fs)
    # The T wave ends later after a slower beat (Bazett: the QT interval grows as the
    # square root of the RR interval before it; the gap's own where there is none).
    previous = np.where(gaps > 0, intervals[np.maximum(gaps - 1, 0)], intervals[gaps]) / fs
    # Within 1 s and a pause's interval: the QT stops growing (and an interval across a
    # lead off is no RR interval).
    previous = np.clip(previous, 1.0, PAUSE_SECONDS)
    after = np.round(T_WAVE_END_SECONDS * np.sqrt(previous) * fs).astype(int)
    stretches = [(int(peaks[index]) + int(reach), int(peaks[index + 1]) - before)
                 for index, reach in zip(gaps, after)]
    stretches = [(first, stop) for first, stop in stretches if first < stop]
    return [(first, stop) for first, stop in stretches
            if np.sqrt(np.mean(np.square(filtered[first:stop], dtype=np.float64)))
            > WAVES_FRACTION * usual]


def alike(filtered: np.ndarray, peaks: np.ndarray, half: int) -> float:
    """How alike the QRS complexes at ``peaks`` are: the median correlation of each
    (``half`` samples either side of its peak in the band-passed lead) with their median."""
    peaks = peaks[(peaks >= half) & (peaks + half < len(filtered))]
    if len(peaks) < 3:
        return 0.0
    from .patient import correlation

    complexes = qrs_complexes(filtered, peaks, half)
    return float(np.median(correlation(complexes, np.median(complexes, axis=0))))


def qrs_complexes(filtered: np.ndarray, peaks: np.ndarray, half: int) -> np.ndarray:
    """The QRS complexes at ``peaks``: ``half`` samples either side of each, one a row."""
    return filtered[peaks[:, None] + np.arange(-half, half + 1)]


def missed_alike(filtered: np.ndarray, peaks: np.ndarray, other_peaks: np.ndarray,
                 start: int, stop: int, tolerance: int, half: int) -> bool:
    """Whether the beats of ``peaks`` in the window ``start:stop`` that the second
    detector misses are beats of a shape it counts only some of the time (the wide PVCs
    of a ventricular bigeminy), not noise: each looks like a beat it confirms (QRS
    complexes correlated at :data:`MIN_TWIN_LIKENESS` or more), or they and those it
    misses around them, :data:`MIN_MISSED_ALIKE` or more, are as alike (:func:`alike`: a stretch of
    bigeminy whose PVCs it misses one after the other). Around the window is
    :data:`MISSED_REACH` windows either side of it. Noise's false detections look like
    no beat and not like each other."""
    reach = MISSED_REACH * (stop - start)
    near = peaks[(peaks >= max(start - reach, half)) & (peaks < min(stop + reach,
                                                                 len(filtered) - half))]
    found = confirmed(near, other_peaks, tolerance)
    inside = (near >= start) & (near < stop)
    missed = near[~found & inside]
    if len(missed) == 0:
        return False
    unconfirmed = near[~found]
    if len(unconfirmed) >= MIN_MISSED_ALIKE and \
            alike(filtered, unconfirmed, half) >= MIN_TWIN_LIKENESS:
        return True
    twins = near[found]
    if len(twins) == 0:
        return False
    from .patient import unit_rows

    likeness = unit_rows(qrs_complexes(filtered, missed, half)) @ \
        unit_rows(qrs_complexes(filtered, twins, half)).T
    return bool(np.all(likeness.max(axis=1) >= MIN_TWIN_LIKENESS))


def lone_artefacts(peaks: np.ndarray, other_peaks: np.ndarray, tolerance: int, *,
                   filtered: np.ndarray | None = None, half: int | None = None) -> np.ndarray:
    """Which of ``peaks`` (increasing) are lone artefacts: not within ``tolerance`` samples
    of one of ``other_peaks`` while the beats either side are, and those beats no further
    apart than :data:`SPLIT_RATIO` of the median RR interval of ``peaks``; with the
    band-passed lead ``filtered``, only if its QRS complex (``half`` samples either side,
    given with it) is like neither neighbour's (correlated under
    :data:`MIN_NEIGHBOUR_LIKENESS`): the first beat of a ventricular tachycardia the
    second detector misses splits the interval from the sinus beat before it to the
    run's next beat, and is like that beat (MIT-BIH 210 at 7:01 and 18:03, whose runs
    were cut short)."""
    if filtered is not None and not half:
        raise ValueError("lone_artefacts: the QRS complexes' half width (half) is needed "
                         "with the band-passed lead (filtered)")
    lone = np.zeros(len(peaks), dtype=bool)
    if len(peaks) < 3:
        return lone
    unconfirmed = ~confirmed(peaks, other_peaks, tolerance)
    around = peaks[2:] - peaks[:-2]
    # Its neighbours confirmed: a run of beats the second detector misses (the wide
    # complexes of a ventricular tachycardia, MIT-BIH 205 and 203) is not lone.
    lone[1:-1] = (unconfirmed[1:-1] & ~unconfirmed[:-2] & ~unconfirmed[2:]
                  & (around <= SPLIT_RATIO * np.median(np.diff(peaks))))
    if filtered is None:
        return lone
    from .patient import unit_rows

    for index in np.flatnonzero(lone):
        trio = peaks[index - 1:index + 2]
        if trio[0] < half or trio[-1] + half >= len(filtered):
            continue
        complexes = unit_rows(qrs_complexes(filtered, trio, half))
        lone[index] = bool(np.all(complexes[[0, 2]] @ complexes[1] < MIN_NEIGHBOUR_LIKENESS))
    return lone


def unseen_elsewhere(peaks: np.ndarray, other_peaks: np.ndarray,
                     opinions: Callable[[], tuple[np.ndarray, ...]], fs: float,
                     n_samples: int) -> np.ndarray:
    """Which of ``peaks`` (increasing sample indices into a chunk of ``n_samples``) no
    other detection confirms within :data:`AGREEMENT_SECONDS`, neither the second
    detector on the lead (``other_peaks``) nor any on the recording's other leads
    (``opinions()``: each lead's beats, :func:`other_leads_opinion`; asked for only when
    the second detector leaves a peak unconfirmed), where one of those leads follows the
    rhythm about it: of the beats within :data:`NOISE_WINDOW_SECONDS` either side that
    the second detector confirms, :data:`MIN_FOLLOWED` at least, it confirms
    :data:`MIN_AGREEMENT`. Peaks within :data:`SETTLING_SECONDS` of the chunk's ends are
    not judged.

    A QRS complex is the heart's and shows on every lead, an ectopic beat's too; a spike
    of electrode motion or muscle noise seldom reaches two leads at one instant (MIT-BIH
    228's false beats among its 10 highest scores, at 6:03 and 24:59, show on its lead
    V1 to neither detector). A lead that does not follow the rhythm there (off, flat, as
    noisy, or its QRS complexes too small for the detectors) says nothing.
    """
    denied = np.zeros(len(peaks), dtype=bool)
    tolerance, reach, edge = (int(round(seconds * fs)) for seconds in (
        AGREEMENT_SECONDS, NOISE_WINDOW_SECONDS, SETTLING_SECONDS))
    seconded = confirmed(peaks, other_peaks, tolerance)
    judged = (peaks >= edge) & (peaks < n_samples - edge)
    # The other leads' detectors cost as much as the lead's own: run only for a doubt.
    if not (judged & ~seconded).any() or not (leads := opinions()):
        return denied
    seen_on = [confirmed(peaks, other, tolerance) for other in leads]
    sure = np.flatnonzero(seconded)
    sure_peaks = peaks[sure]
    for index in np.flatnonzero(judged & ~seconded & ~np.any(seen_on, axis=0)):
        low, high = np.searchsorted(sure_peaks, [peaks[index] - reach,
                                                 peaks[index] + reach + 1])
        around = sure[low:high]
        denied[index] = len(around) >= MIN_FOLLOWED and any(
            seen[around].mean() >= MIN_AGREEMENT for seen in seen_on)
    return denied


def other_leads_opinion(leads: tuple[np.ndarray, ...], fs: float) -> tuple[np.ndarray, ...]:
    """The beats found on each of the recording's other leads (``leads``: raw, held where
    the recording has no sample, :func:`~anomaly.recordings.signals.held`), both
    detectors' together, the tool's and the second one's: a QRS complex either finds
    confirms a beat."""
    from .peaks import detect_r_peaks

    return tuple(np.union1d(detect_r_peaks(lead, fs, band_pass(lead, fs)),
                            second_opinion(lead, fs)) for lead in leads)


def second_opinion(raw: np.ndarray, fs: float) -> np.ndarray:
    """The second detector's R peaks: neurokit2's own method, on the raw lead; where it
    finds none at all, on the lead without its mains hum, whose steep slopes it reads
    (under 0.3 mV of 60 Hz hum it found no beat in minutes of MIT-BIH records). On the
    lead without its hum everywhere, its verdicts moved on MIT-BIH (docs/benchmarks.md,
    "A lead off that leaves mains hum")."""
    if len(raw) < SECOND_OPINION_SECONDS * fs or not np.ptp(raw) > 0:
        return np.empty(0, dtype=np.int64)
    peaks = neurokit_peaks(raw, fs)
    return peaks if len(peaks) else neurokit_peaks(without_mains(raw, fs), fs)


def neurokit_peaks(lead: np.ndarray, fs: float) -> np.ndarray:
    """neurokit2's own R-peak method on ``lead`` as given (sample indices, increasing)."""
    import neurokit2

    from .. import logs

    # On a nearly flat lead it averages empty slices: its warnings say nothing to a user.
    with logs.set_aside_warnings(), np.errstate(all="ignore"):
        _, info = neurokit2.ecg_peaks(lead, sampling_rate=fs, method="neurokit")
    return np.unique(np.asarray(info["ECG_R_Peaks"], dtype=np.int64))
