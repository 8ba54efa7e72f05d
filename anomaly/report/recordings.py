"""The pictures of a scored recording: the score of every beat over the recording's time
(the heart rate under it), and ECG strips on ECG paper (read again from the recording)
around its most anomalous beats, its rhythm events and its families, for the HTML report
and ``--plot-dir``."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..holter.events import (FLUTTER, MIN_NN_INTERVALS, NORMAL, PATTERNS, READING_ORDER,
                             VENTRICULAR,
                             most_telling, rate_words, reading_rank)
from ..holter.heart_rate import nn_pairs
from ..io.beats import is_anomaly
from .paper import BeatMark, PaperStrip, paper_scale, plot_paper_strips
from .plots import (TREND_AFTER_S, TREND_BIN_S, clock_axis, plot_heart_rate,
                    plot_score_trend, plot_timeline, recording_plot_names, save_figure,
                    time_scale)

if TYPE_CHECKING:
    from ..recordings.segment import SegmentOptions

#: ECG strips drawn per recording around its most anomalous beats.
STRIPS = 4
#: Families that get a strip of their own (the dominant one and those of ectopic shape).
FAMILY_STRIPS = 6
#: Seconds of signal a strip shows, its beat in the middle (200 mm of ECG paper).
STRIP_SECONDS = 8.0
#: How far inside a strip's edges a beat must lie to be shown on it (its QRS complex whole).
EDGE_SECONDS = 0.5
#: Seconds read before a beat cut again for its picture: its RR context's ten intervals.
_CONTEXT_S = 15.0
#: The other high-scoring beats a strip's caption names (a run of them is counted).
STRIP_TITLE_BEATS = 2


def strip_beats(peaks: np.ndarray, scores: np.ndarray, reach: float,
                count: int = STRIPS) -> list[tuple[int, list[int]]]:
    """Which beats get a strip: the ``count`` highest-scoring beats that no higher-scoring
    beat's strip already shows, in time order.

    Two beats flagged a few hundred milliseconds apart (a beat and a false detection on
    it, a couplet) would otherwise give two strips of the same few seconds. So the beats
    are taken from the highest score down; a beat within ``reach`` of a beat already
    chosen (closer than half a strip: it is in that strip) gets no strip of its own and
    is named in that strip's title instead. No two strips then show the same beat in
    their middle, and every beat ranked above the last strip's is in a strip.

    Parameters
    ----------
    peaks : ndarray, shape (n,)
        The beats' R peaks (samples), in increasing order.
    scores : ndarray, shape (n,)
    reach : float
        Half a strip, in samples.
    count : int, default STRIPS

    Returns
    -------
    list of (int, list of int)
        Per strip, in time order: the index of its beat, and the indices of the beats
        ranked above the last strip's that it also shows (highest score first).
    """
    chosen: list[tuple[int, list[int]]] = []
    for index in np.argsort(-scores, kind="stable"):
        if len(chosen) == count:
            break
        shown_in = next((also for beat, also in chosen
                         if abs(int(peaks[index]) - int(peaks[beat])) < reach), None)
        if shown_in is None:
            chosen.append((int(index), []))
        else:
            shown_in.append(int(index))
    return sorted(chosen)


@dataclass
class StripChoice:
    """A strip to draw: the sample it is read around, what it shows (the gravest first,
    then what else of note falls in it) and its place among the strips (the
    gravest of what it shows: an event's kind's place in
    :data:`anomaly.holter.events.READING_ORDER`, or :data:`AF_RANK` and after)."""

    centre: int
    reasons: list[str]
    rank: float


#: Where a strip of the longest AF episode's onset, of a family's typical beat and of one
#: of the most anomalous beats come among the strips, beside the events' kinds
#: (:data:`anomaly.holter.events.READING_ORDER`: 0 for ventricular tachycardia on).
AF_RANK = list(READING_ORDER).index("supraventricular tachycardia") + 0.5
FAMILY_RANK = len(READING_ORDER) + 1
ANOMALOUS_RANK = len(READING_ORDER) + 2


def strip_choices(peaks: np.ndarray, scores: np.ndarray, readable: np.ndarray, fs: float,
                  rhythm=None, threshold: float | None = None) -> list[StripChoice]:
    """The strips of a recording's report, in the order a reader looks for them (the
    events by kind as the events table lists them, the longest AF episode's onset among
    them after supraventricular tachycardia, the families, the most anomalous beats; a
    strip showing several of these where the gravest puts it; in time order within a
    place): around its most anomalous beats (:func:`strip_beats`), then, with its ``rhythm``
    (:class:`anomaly.holter.summary.RecordingRhythm`), one per kind of rhythm event (its
    most telling, :func:`anomaly.holter.events.most_telling`), one for the longest
    atrial fibrillation episode's onset and
    one per family of ectopic shape and for the dominant family (their most typical
    beat), up to :data:`FAMILY_STRIPS`, chosen in that order, the rhythm's the gravest
    first. Something a strip already chosen shows whole (a
    beat, or an event's first and last beats, :data:`EDGE_SECONDS` inside its edges) is
    named in that strip's caption instead of getting its own, a beat with its time from
    the strip's own: no two strips show the same window. With the ``threshold``, a beat of
    the highest scores that is not above it is said to be so (a recording with few
    flags has strips of beats the model did not flag)."""
    from ..recordings.times import format_time

    reach = STRIP_SECONDS * fs / 2
    # A beat of an unreadable stretch gets no strip of its own: its score says nothing.
    ranked = np.where(readable, scores, -np.inf)
    flagged = readable if threshold is None else is_anomaly(scores, threshold, readable)
    chosen = []
    for beat, also in strip_beats(peaks, ranked, reach=reach):
        if not readable[beat]:
            continue
        why = ("among the most anomalous beats" if flagged[beat]
               else f"among the highest scores, not flagged (threshold {threshold:.4f})")
        named = [f"{why}: {format_time(peaks[beat] / fs)}, score {scores[beat]:.4f}"]
        for other in also[:STRIP_TITLE_BEATS]:
            named.append(f"beat at {(int(peaks[other]) - int(peaks[beat])) / fs:+.2f} s: "
                         f"score {scores[other]:.4f}")
        if len(also) > STRIP_TITLE_BEATS:  # A run of flagged beats: the caption stays a line.
            named.append(f"and {len(also) - STRIP_TITLE_BEATS} more flagged beats")
        chosen.append(StripChoice(int(peaks[beat]), ["; ".join(named)], ANOMALOUS_RANK))
    if rhythm is not None:
        inside = reach - EDGE_SECONDS * fs
        # The gravest first, so that it is what a strip is placed for and the lesser
        # events it shows are named in its caption (207's supraventricular tachycardia
        # was named in the strip of the couplet before it, its onset at the strip's edge).
        for centre, reason, (first, last), beat_words, rank in sorted(
                _rhythm_candidates(rhythm, fs), key=lambda item: item[4]):
            near = next((choice for choice in chosen if choice.centre - inside <= first
                         and last <= choice.centre + inside), None)
            if near is None:
                chosen.append(StripChoice(centre, [reason], rank))
                continue
            if beat_words and centre != near.centre:
                # A beat named in another beat's strip: which one (the triangle is not it).
                reason += f": {beat_words} at {(centre - near.centre) / fs:+.2f} s"
            if reason in near.reasons:
                continue
            # The gravest reason first: what puts the strip where it is in the order.
            near.reasons.insert(0 if rank < near.rank else len(near.reasons), reason)
            near.rank = min(near.rank, rank)
    return sorted(chosen, key=lambda choice: (choice.rank, choice.centre))


def _rhythm_candidates(rhythm, fs: float
                       ) -> list[tuple[int, str, tuple[int, int], str | None, float]]:
    """Where the strips of a recording's rhythm are (a sample), what each shows (the most
    telling event of each kind, the longest AF episode, the families), the first and last
    samples it must show (a pause's beats either side; a beat's own sample), the words
    for the beat it is centred on, where another strip that shows it must say which
    (a family's most typical beat, a bigeminy's or trigeminy's ventricular beat; None:
    no beat in particular), and its rank among the strips."""
    from ..recordings.times import format_duration, format_time

    samples, times = rhythm.samples, rhythm.times_s
    candidates = []

    def beat_at(seconds: float) -> int:
        index = int(np.clip(np.searchsorted(times, seconds), 0, len(times) - 1))
        if index and abs(times[index - 1] - seconds) < abs(times[index] - seconds):
            index -= 1
        return int(samples[index])

    def sample_at(seconds: float) -> int:
        return int(round(np.interp(seconds, times, samples)))

    def pattern_beat(event, seconds: float) -> int:
        """The last ventricular beat of a bigeminy or trigeminy at or before ``seconds``
        (its first when none is): the strip marks a beat of the pattern, not a normal one
        between (MIT-BIH 221), and keeps a long one's onset. A pattern holds ventricular
        beats by its definition."""
        inside = np.flatnonzero((times >= event.start_s) & (times <= event.end_s)
                                & (rhythm.analysis.kinds == VENTRICULAR))
        before = inside[times[inside] <= seconds]
        return int(samples[before[-1] if len(before) else inside[0]])

    def centre_of(event) -> tuple[int, tuple[int, int]]:
        start, end = sample_at(event.start_s), sample_at(event.end_s)
        if event.kind in ("bradycardia", "tachycardia"):
            centre = beat_at(_telling_stretch(times, rhythm.analysis.kinds, event))
            return centre, (centre, centre)
        if event.kind == "pause" and event.duration_s <= STRIP_SECONDS - 2 * EDGE_SECONDS:
            # The whole pause, the beats either side of it too: its middle is no beat.
            return sample_at((event.start_s + event.end_s) / 2), (start, end)
        # A short event in the strip's middle; a long one from its onset, a second in.
        short = event.duration_s <= STRIP_SECONDS - 2
        seconds = ((event.start_s + event.end_s) / 2 if short else
                   event.start_s + STRIP_SECONDS / 2 - 1)
        centre = pattern_beat(event, seconds) if event.kind in PATTERNS else beat_at(seconds)
        return centre, (start, end) if short else (start, start)

    events = rhythm.analysis.events
    for event in sorted(most_telling(events, 1), key=lambda item: item.start_s):
        kind = event.kind
        count = sum(other.kind == kind for other in events)
        words = rate_words(event)
        rate = f" {words}" if words else ""
        # A pause's and flutter's length; flutter has no beats (they are set aside).
        what = (f"{kind} of {event.duration_s:.1f} s" if kind in ("pause", FLUTTER) else
                f"{kind}: {beats_counted(event.beats)}{rate}")
        centre, shows = centre_of(event)
        candidates.append((centre,
                           f"{what}, {format_time(event.start_s)}-{format_time(event.end_s)}"
                           + (f" (the {READING_ORDER.get(kind, 'longest')} of {count})"
                              if count > 1 else ""), shows,
                           "its ventricular beat" if kind in PATTERNS else None,
                           reading_rank(kind)))
    episodes = rhythm.analysis.atrial_fibrillation.episodes
    if episodes:
        episode = max(episodes, key=lambda item: item.duration_s)
        onset = beat_at(episode.start_s + STRIP_SECONDS / 2 - 1)
        candidates.append((onset,
                           f"atrial fibrillation from {format_time(episode.start_s)} to "
                           f"{format_time(episode.end_s)}, "
                           f"{format_duration(episode.duration_s)}",
                           (sample_at(episode.start_s), sample_at(episode.start_s)), None,
                           AF_RANK))
    shown = [item for item in rhythm.families if item.dominant or not item.normal_shape]
    for item in shown[:FAMILY_STRIPS]:
        typical = int(samples[item.representative])
        candidates.append((typical,
                           f"family {item.family} ({item.kind}, {beats_counted(item.beats)}): "
                           "its most typical beat", (typical, typical), "the beat",
                           FAMILY_RANK))
    return candidates


def _telling_stretch(times: np.ndarray, kinds: np.ndarray, event) -> float:
    """The middle (seconds) of the stretch of a bradycardia (or tachycardia) ``event``
    that a strip shows at its slowest (fastest): of the beats from ``times`` (of
    ``kinds``) inside the event, the run spanning at most a strip less a second either
    side with the longest (shortest) mean NN interval, as the event's rate is read
    (:data:`.events.MIN_NN_INTERVALS` at least): a strip from its onset may show a rate
    the event's name belies, and one by every beat's rate showed a ventricular run
    inside a tachycardia. (Its slowest, or fastest, 8 intervals, the event's rate, lie
    in or near that run: a strip holds 20 to 40 beats.)"""
    inside = (times >= event.start_s) & (times <= event.end_s)
    times, normal = times[inside], kinds[inside] == NORMAL
    ends = np.searchsorted(times, times + STRIP_SECONDS - 2, side="right") - 1
    pairs = nn_pairs(times, normal)
    # NN intervals and their seconds from the first beat, as cumulative sums.
    count = np.concatenate([[0], np.cumsum(pairs)])
    seconds = np.concatenate([[0.0], np.cumsum(np.where(pairs, np.diff(times), 0.0))])
    beats = np.arange(len(times))
    nn = count[ends] - count[beats]
    spans = (ends > beats) & (nn >= MIN_NN_INTERVALS)
    if not spans.any():
        return (event.start_s + event.end_s) / 2
    first = np.flatnonzero(spans)
    mean_interval = (seconds[ends[first]] - seconds[first]) / nn[first]
    pick = first[np.argmax(mean_interval) if event.kind == "bradycardia"
                 else np.argmin(mean_interval)]
    return float(times[pick] + times[ends[pick]]) / 2


def recording_name(input_name: str) -> str:
    """How a report names a recording: its file's name, a WFDB record's without
    ``.hea`` (``mitdb/208`` and ``mitdb/208.hea`` are both ``208``)."""
    return Path(input_name).name.removesuffix(".hea")


def beats_counted(count: int) -> str:
    """``1 beat``, ``1,204 beats``."""
    return f"{count:,} beat{'' if count == 1 else 's'}"


def recording_pictures(summary, input_name: str, segment: "SegmentOptions", rhythm=None):
    """The timeline of one scored recording, as a figure, and its strips on ECG paper
    (:class:`.paper.PaperStrip`, where :func:`strip_choices` puts them); ``segment`` is
    how its beats were found (its lead, beat window and annotations), by which the strips
    are read again. With the recording's ``rhythm``
    (:class:`anomaly.holter.summary.RecordingRhythm`), its heart rate is drawn under the
    timeline, on the same time axis, and each beat on a strip is marked with its kind."""
    from ..recordings.reading import read_strips
    from ..recordings.signals import open_lead

    peaks, scores, readable = summary.timeline(input_name)
    lead = open_lead(input_name, lead=segment.lead, fs=segment.fs)
    fs = lead.fs
    choices = strip_choices(peaks, scores, readable, fs, rhythm, summary.threshold)
    strips = read_strips(input_name, segment, np.array([item.centre for item in choices],
                                                       dtype=np.int64),
                         seconds=STRIP_SECONDS)
    name = recording_name(input_name)
    analysable = summary.analysable.get(input_name)
    timeline = _timeline(name, peaks / fs, scores, readable, summary.threshold, analysable,
                         rhythm, lead.started)
    marks = _Marks(peaks, scores, readable, summary.threshold, rhythm,
                   _reference(lead, segment), lead.started)
    return timeline, [marks.paper(strip, choice.reasons) for strip, choice in
                      zip(strips, choices)]


def model_beats_at(input_name: str, segment: "SegmentOptions", detector,
                   samples) -> list[np.ndarray | None]:
    """The beats of a recording whose R peaks are at ``samples``, as the model scored
    them (cut by ``segment``, then their RR context: the model's input), or None where
    no beat is found within 150 ms. Each is found again in the seconds before it (its
    RR context needs the last ten intervals): the segmenter reads the chunks those
    seconds fall in (as scoring read them, so the same peaks), once for the samples of
    one chunk, not the whole recording.
    """
    from ..model.context import beat_context
    from ..recordings.annotations import MATCH_SECONDS
    from ..recordings.reading import segmenter_for
    from ..recordings.signals import open_lead

    lead = open_lead(input_name, lead=segment.lead, fs=segment.fs)
    context = beat_context(detector.scaling_.context)
    samples = [int(sample) for sample in samples]
    found: list[np.ndarray | None] = [None] * len(samples)
    # The samples of one chunk are found again in one reading of it, not one each.
    chunk = segment.chunk_seconds * lead.fs
    groups: dict[int, list[int]] = {}
    for order, sample in enumerate(samples):
        groups.setdefault(int(sample // chunk), []).append(order)
    for orders in groups.values():
        first, last = min(samples[o] for o in orders), max(samples[o] for o in orders)
        span = replace(segment, annotations=None,
                       start=max(0.0, first / lead.fs - _CONTEXT_S),
                       stop=min(lead.duration, last / lead.fs + 1.0))
        candidates = [part.beats for part in segmenter_for(input_name, span).chunks()
                      if part.beats is not None]
        for order in orders:
            found[order] = _beat_found_again(candidates, samples[order],
                                             MATCH_SECONDS * lead.fs, context, input_name)
    return found


def _beat_found_again(candidates, sample: int, reach: float, context, input_name: str):
    """The beat of ``candidates`` (RecordingBeats) nearest ``sample``, within ``reach``
    samples, as the model's input; None when there is none. Found again in a span rather
    than in the chunk scoring read, a peak may move by a sample or two."""
    best = min(((abs(int(peak) - sample), part, index) for part in candidates
                for index, peak in enumerate(part.sample)), default=None,
               key=lambda item: item[0])
    if best is None or best[0] > reach:
        return None
    _, read, nearest = best
    where = [nearest]
    ids = {name: values[where] for name, values in read.ids("").items()}
    values = read.values[where]
    return (values if context is None else context.appended(values, ids, input_name))[0]


def beats_at(input_name: str, segment: "SegmentOptions", detector,
             samples) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """:func:`model_beats_at`, each beat's samples (without its context) with the
    model's reconstruction of them."""
    found = []
    for values in model_beats_at(input_name, segment, detector, samples):
        if values is None:
            found.append(None)
            continue
        scaling = detector.scaling_
        found.append((scaling.samples(values[None, :])[0],
                      scaling.samples(detector.reconstruct(values[None, :]))[0]))
    return found


def _timeline(name: str, times: np.ndarray, scores: np.ndarray, readable: np.ndarray,
              threshold: float, analysable, rhythm, started=None):
    """Every beat's score over the recording's time (per 5 minutes past two hours: see
    :func:`.plots.plot_score_trend`), the heart rate of each minute under it with the
    rhythm, all on one time axis; the time of day along the top where the recording
    says when it ``started`` (:func:`.plots.clock_axis`)."""
    from matplotlib.figure import Figure

    long = len(times) and times[-1] - times[0] > TREND_AFTER_S
    rows = (2 if long else 1) + (rhythm is not None)
    heights = ((3.0, 1.6) if long else (3.5,)) + ((2.1,) if rhythm is not None else ())
    figure = Figure(figsize=(12, 1.6 * sum(heights)), layout="constrained")
    axes = figure.subplots(rows, 1, sharex=True, height_ratios=heights, squeeze=False)[:, 0]
    title = f"{name}: anomaly score of every beat" + (
        "" if analysable is None else f" ({analysable.headline()})")
    unreadable = () if analysable is None else analysable.longest()
    if long:
        plot_score_trend(times, scores, threshold, readable=readable, unreadable=unreadable,
                         title=title.replace("of every beat", f"of every {TREND_BIN_S // 60} "
                                                             "minutes"), axes=axes[:2])
    else:
        plot_timeline(times, scores, threshold, readable=readable, unreadable=unreadable,
                      title=title, ax=axes[0])
    if rhythm is not None:
        rate = rhythm.analysis.heart_rate
        plot_heart_rate(rate.minute_start_s, rate.nn.per_minute_bpm,
                        episodes=rhythm.analysis.atrial_fibrillation.episodes,
                        every_beat_bpm=rate.every_beat.per_minute_bpm,
                        span_s=times[-1] if len(times) else None, ax=axes[-1],
                        title=f"{name}: heart rate of each minute")
    for ax in axes:  # Times under every panel, not the last one alone.
        ax.tick_params(labelbottom=True)
    if started is not None:
        clock_axis(axes[0], started, time_scale(times[-1] if len(times) else 0.0)[0])
    return figure


def recording_figures(summary, input_name: str, segment: "SegmentOptions", rhythm=None):
    """:func:`recording_pictures` as two figures: the timeline, and every strip on one
    sheet of ECG paper."""
    timeline, strips = recording_pictures(summary, input_name, segment, rhythm)
    calibrated = all(strip.calibrated for strip in strips)
    return timeline, plot_paper_strips(
        strips, title=f"{recording_name(input_name)}: ECG strips at {paper_scale(calibrated)}")


def _reference(lead, segment) -> tuple[np.ndarray, np.ndarray] | None:
    """The reference beats' samples and classes, when the recording was scored with
    annotations."""
    if segment.annotations is None or lead.annotations_base is None:
        return None
    from ..recordings.annotations import read_reference_beats

    reference = read_reference_beats(lead.annotations_base, segment.annotations,
                                     n_samples=lead.n_samples, fs=lead.fs)
    return reference.samples, reference.classes


class _Marks:
    """What a strip says of its beats: kind (from the rhythm), flag, reference label, and
    the marked beat's time of day where the recording says when it started."""

    def __init__(self, peaks, scores, readable, threshold, rhythm, reference, started=None):
        self.peaks, self.scores, self.readable = peaks, scores, readable
        self.flagged = is_anomaly(scores, threshold, readable)
        self.rhythm, self.reference, self.started = rhythm, reference, started

    def paper(self, strip, reasons: list[str]) -> PaperStrip:
        inside = np.flatnonzero((self.peaks >= strip.start)
                                & (self.peaks < strip.start + len(strip.values)))
        labels = self._labels(self.peaks[inside], strip.fs)
        marks = tuple(BeatMark(int(self.peaks[index]), self._kind(int(self.peaks[index])),
                               "unreadable" if not self.readable[index] else
                               "anomaly" if self.flagged[index] else "normal", label)
                      for index, label in zip(inside, labels))
        caption = "; ".join(reasons)
        own = self._describe(strip.centre, strip.fs, dict(zip(self.peaks[inside], labels)))
        if own:
            caption += "\n" + own
        if not strip.calibrated:
            caption += f" (amplitude not calibrated: {strip.uncalibrated})"
        return PaperStrip(strip.start, strip.values, strip.fs, strip.centre, marks, caption,
                          strip.calibrated)

    def _kind(self, sample: int) -> str:
        index = self._rhythm_index(sample)
        return "" if index is None else str(self.rhythm.analysis.kinds[index])

    def _rhythm_index(self, sample: int) -> int | None:
        if self.rhythm is None:
            return None
        samples = self.rhythm.samples
        index = int(np.searchsorted(samples, sample))
        return index if index < len(samples) and samples[index] == sample else None

    def _labels(self, peaks: np.ndarray, fs: float) -> list[str | None]:
        """The reference label of each beat (matched as the beats CSV's are), None for
        one no reference beat matches or without a reference."""
        if self.reference is None:
            return [None] * len(peaks)
        from ..recordings.annotations import MATCH_SECONDS, UNMATCHED, match_labels

        samples, classes = self.reference
        reach = int(MATCH_SECONDS * fs) + 1
        near = slice(np.searchsorted(samples, peaks[0] - reach) if len(peaks) else 0,
                     np.searchsorted(samples, peaks[-1] + reach, side="right")
                     if len(peaks) else 0)
        return [None if label == UNMATCHED else str(label)
                for label in match_labels(peaks, samples[near], classes[near], fs)]

    def _describe(self, sample: int, fs: float, labels: dict) -> str:
        """The marked beat: kind, family, score and reference label, as far as known
        (empty when only its score is, which the first line gives, or when the strip is
        centred on no beat: a pause's middle)."""
        from ..recordings.times import format_time

        index = self._rhythm_index(sample)
        scored = int(np.searchsorted(self.peaks, sample))
        is_beat = scored < len(self.peaks) and self.peaks[scored] == sample
        if index is None and (self.reference is None or not is_beat):
            return ""
        parts = []
        if index is not None:
            kind = self.rhythm.analysis.kinds[index]
            family = int(self.rhythm.analysis.families.family[index])
            parts.append(_KIND_NAMES.get(str(kind), str(kind)))
            if family >= 0:
                parts.append(f"family {family} ({self.rhythm.families[family].kind})")
        if is_beat:
            flag = ("unreadable, not flagged" if not self.readable[scored] else
                    "anomaly" if self.flagged[scored] else "normal")
            parts.append(f"score {self.scores[scored]:.4f} ({flag})")
        if self.reference is not None:
            label = labels.get(sample)
            parts.append("no reference beat here" if label is None else f"reference {label}")
        clock = "" if self.started is None else f" ({self.started.clock(sample / fs)} by " \
            "the clock)"
        return f"marked beat at {format_time(sample / fs)}{clock}: " + ", ".join(parts)


#: A beat's kind letter as a strip's caption says it.
_KIND_NAMES = {"N": "normal", "S": "supraventricular ectopic", "V": "ventricular ectopic",
               "?": "unreadable"}


def save_recording_plots(summary, recordings: dict[str, "SegmentOptions"],
                         directory: str | os.PathLike, rhythms=None) -> list[Path]:
    """For every recording of the run (its name and how its beats were found):
    ``NAME.timeline.png`` (with the heart rate under it when ``rhythms``, by name, hold
    the recording's) and ``NAME.strips.png``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for input_name, segment in recordings.items():
        figures = recording_figures(summary, input_name, segment,
                                    (rhythms or {}).get(input_name))
        for figure, name in zip(figures, recording_plot_names(input_name)):
            written.append(save_figure(figure, directory / name))
    return written
