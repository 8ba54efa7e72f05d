"""A recording's beats in one call: for training (all at once) and for ``anomaly beats``."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from .limits import FileStamp, stamps_sha256
from .segment import BeatWindow, RecordingBeats, SegmentCounts, Segmenter, SegmentOptions
from .signals import Lead, open_lead

if TYPE_CHECKING:
    from ..io.readers import TrainingData
    from ..model.context import BeatContext


def segmenter_for(path: str | os.PathLike, options: SegmentOptions) -> Segmenter:
    """The segmenter of a recording's lead; checks the recording and the span, reads no
    sample."""
    return Segmenter(open_lead(path, lead=options.lead, fs=options.fs), options)


@dataclass
class RecordingRead:
    """Every beat of a recording's span, and what segmenting counted; ``span`` says the
    span for messages (``00:00 and 05:00``); ``files`` are the files read, as they were
    when opened; ``window`` is how the beats were cut; ``other_leads`` the recording's
    other leads that checked its beats."""

    lead: Lead
    beats: RecordingBeats
    counts: SegmentCounts
    span: str
    files: tuple[FileStamp, ...]
    window: BeatWindow
    other_leads: tuple[Lead, ...] = ()

    def sha256(self) -> str:
        """The SHA-256 of the files read (see :func:`.limits.stamps_sha256`)."""
        return stamps_sha256(self.files)


def read_recording(path: str | os.PathLike, options: SegmentOptions) -> RecordingRead:
    """All beats of a recording's span in memory (a training set is minutes, not days)."""
    segmenter = segmenter_for(path, options)
    chunks = list(segmenter.chunks())
    blocks = [chunk.beats for chunk in chunks if chunk.beats is not None]
    labels = None if blocks[0].labels is None else np.concatenate([b.labels for b in blocks])
    joined = RecordingBeats(
        *(np.concatenate([getattr(b, name) for b in blocks]) for name in
          ("values", "sample", "beat", "rr_prev", "rr_next", "rr_local_mean")),
        labels, segmenter.lead.fs, np.concatenate([b.unreadable for b in blocks]))
    counts = sum((chunk.counts for chunk in chunks), SegmentCounts())
    return RecordingRead(segmenter.lead, joined, counts, segmenter.span, segmenter.files,
                         options.window, segmenter.other_leads)


def read_normal_recording_beats(path: str | os.PathLike, options: SegmentOptions, *,
                                label_column: str | None = None, normal_label: str = "N",
                                context: "BeatContext | None" = None,
                                every_beat: bool = False
                                ) -> tuple["TrainingData", RecordingRead]:
    """A recording's beats to train on: with a label column (its annotations' ``label``),
    only the beats whose AAMI class is ``normal_label``; without, only the beats of the
    dominant rhythm and shape (:mod:`.patient`, with the k of the threshold measured for
    them), or every beat with ``every_beat``. Never a beat in an unreadable stretch
    (:mod:`.quality`). With a ``context`` (see :mod:`anomaly.model.context`), each beat's
    samples are followed by its context.

    Unless ``options.window`` has a template, the beats are cut twice: once to find the
    dominant beat (:func:`.patient.dominant_template`), then aligned on it
    (:mod:`.alignment`); the read's ``window`` holds the template, for the model to keep.

    Raises
    ------
    InputError
        ``every_beat`` with a label column (which chooses the beats), fewer than
        :data:`~anomaly.recordings.MIN_RECORDING_BEATS` beats to train on, and as
        :func:`read_recording`.
    """
    from ..exceptions import InputError
    from ..io.readers import TrainingData, normal_rows, require_readable
    from . import MIN_RECORDING_BEATS, RECORDING_SETTINGS
    from .patient import dominant_beats, dominant_template

    if every_beat and label_column is not None:
        raise InputError(f"{path}: --every-beat trains on every beat and --label-column on "
                         "the normal ones: give one")
    recording = read_recording(path, options)
    if options.window.template is None:
        window = options.window.aligned_on(dominant_template(recording.beats))
        recording = read_recording(path, replace(options, window=window))
    beats = recording.beats
    readable = beats.readable
    require_readable(path, readable, f"beats between {recording.span} of lead "
                                     f"{recording.lead.name}", least=MIN_RECORDING_BEATS)
    values = beats.values if context is None else context.appended(
        beats.values, beats.ids(recording.lead.record), str(path))
    if label_column is not None:
        labels = labels_for(path, beats.labels, label_column)
        truth = (labels != normal_label).astype(np.int8)
        data = normal_rows(path, values[readable], truth[readable], normal_label, None,
                           unit="beats")
    elif every_beat:
        data = normal_rows(path, values[readable], None, normal_label, None, unit="beats")
    else:
        dominant = dominant_beats(beats.values[readable], beats.rr_prev[readable],
                                  beats.rr_next[readable], beats.rr_local_mean[readable])
        data = TrainingData(values[readable][dominant.kept], int(readable.sum()),
                            dominant.describe(), settings=RECORDING_SETTINGS)
    data = data.among(len(beats))
    if context is not None:
        data = replace(data, context=context.names)
    if len(data.normal) < MIN_RECORDING_BEATS:
        # Labels or every beat choose among the readable beats: no help without 30 of them.
        advice = ("a longer span or another lead (--lead)"
                  if label_column or every_beat or readable.sum() < MIN_RECORDING_BEATS
                  else "a longer span, another lead (--lead), labels, or --every-beat")
        skipped = f" (skipped {data.left_out})" if data.left_out else ""
        lead = recording.lead.describe(recording.other_leads)
        raise InputError(f"{path}: {len(data.normal)} of the {len(beats)} beats of {lead} "
                         f"between {recording.span} can be trained on{skipped}; at least "
                         f"{MIN_RECORDING_BEATS} are needed: fit {advice}")
    return data, recording


def labels_for(path, labels: np.ndarray | None, label_column: str | int) -> np.ndarray:
    """A recording's labels, when ``--label-column`` asks for them: they are the
    annotations' AAMI classes, in the column ``label``."""
    from ..exceptions import InputError

    if str(label_column) != "label":
        raise InputError(f"{path}: a recording's labels are its annotations' AAMI classes, "
                         f"in column 'label' (got --label-column {label_column})")
    if labels is None:
        raise InputError(f"{path}: --label-column label needs the reference labels: give "
                         "--annotations EXT (atr for MIT-BIH)")
    return labels


@dataclass
class Strip:
    """A few seconds of a lead around a beat: band-pass filtered samples from ``start``;
    ``centre`` is the R peak (sample) of the beat it was read around. Near the recording's
    ends the strip is cut short, so the beat is then not in its middle. The values are in
    millivolts unless ``uncalibrated`` says why not; then in heights of the strip's
    largest wave (its range from the 0.5% to the 99.5% quantile)."""

    start: int
    values: np.ndarray
    fs: float
    centre: int
    uncalibrated: str = ""

    @property
    def calibrated(self) -> bool:
        return not self.uncalibrated


#: The largest wave of an ECG lead, in millivolts, at most (a QRS complex measures a few):
#: a lead whose strips measure more, in the unit the recording declares, holds values of
#: another unit (microvolts declared as millivolts), and is drawn as one without a
#: voltage unit.
MOST_PLAUSIBLE_MV = 20.0


def read_strips(path: str | os.PathLike, options: SegmentOptions, centres: np.ndarray, *,
                seconds: float) -> list[Strip]:
    """Strips of ``seconds`` of the lead centred on each of ``centres`` (samples, in
    increasing order), filtered as the beats are; in millivolts when the recording
    declares a voltage unit and its strips' waves measure at most
    :data:`MOST_PLAUSIBLE_MV` in it (otherwise a warning says so)."""
    from .. import logs
    from .filters import PAD_SECONDS, band_pass
    from .signals import held

    lead = open_lead(path, lead=options.lead, fs=options.fs)
    half, pad = int(seconds * lead.fs / 2), int(PAD_SECONDS * lead.fs)
    parts = []
    for centre in centres:
        first = max(0, int(centre) - half - pad)
        filtered = band_pass(held(lead.read(first, int(centre) + half + pad))[0], lead.fs)
        start = max(0, int(centre) - half)
        parts.append((start, filtered[start - first:start - first + 2 * half], int(centre)))
    heights = [float(np.subtract(*np.quantile(values, [0.995, 0.005]))) if len(values) else 0.0
               for _, values, _ in parts]
    to_millivolts = lead.millivolts_per_unit
    unit = logs.printable(lead.unit or "")
    why = ("" if to_millivolts is not None else
           f"its unit, {unit}, is not a voltage unit it knows" if unit else
           "no voltage unit declared")
    if to_millivolts is not None and heights and \
            np.median(heights) * to_millivolts > MOST_PLAUSIBLE_MV:
        measured = f"{np.median(heights) * to_millivolts:,.0f} mV"
        logs.warning_once(f"Warning: {path}: lead {lead.name}'s waves measure {measured} as "
                          f"it declares its unit ({unit}), more than an ECG's: are its values "
                          "in another unit? Its strips are drawn at the height of their "
                          "largest wave, not in mV")
        to_millivolts = None
        why = f"its waves measure {measured} in its declared unit, {unit}: another unit?"
    strips = []
    for (start, values, centre), height in zip(parts, heights):
        if to_millivolts is not None:
            values = values * to_millivolts
        elif len(values):
            values = values / (height if height > 0 else 1.0)
        strips.append(Strip(start, values, lead.fs, centre, why))
    return strips
