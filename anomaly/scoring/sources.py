"""Beat sources (see :class:`anomaly.scoring.base.BeatSource`), and the one place that
chooses the source of an input (:func:`source_for`).

- :class:`CsvSource`: a whole CSV file, ``.csv.gz`` file or stdin, streamed and hashed;
- :class:`CsvRangeSource`: bytes ``start:stop`` of an uncompressed CSV file, cut into the
  very blocks a :class:`CsvSource` would cut there (a Dask partition);
- :class:`RecordingSource`: a recording (WFDB, EDF, signal CSV), its beats found and cut
  chunk by chunk.

A CSV beat's ids in the scores output are its ``row`` (its line number minus the
header's) and the file's id columns; a recording's beat's are ``record``, ``beat``,
``sample`` (its R peak), ``time_s`` and its RR context.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterator

import numpy as np

from ..io.beats import Beats
from ..io.layout import CsvLayout
from ..io.readers import InputSource, iter_parsed_range
from .base import BeatSource, ModelLimits
from .plan import Job, ScoreOptions


def source_for(job: Job, *, limits: ModelLimits | None = None,
               path: str | None = None) -> BeatSource:
    """The source of a job's input, whose beats must be within the model's ``limits``;
    read from ``path`` when given (the same file under another name, as a Dask worker
    sees it)."""
    if job.options.is_recording(job.input):
        return RecordingSource(job.input, job.options, limits=limits)
    return CsvSource(path or job.input, job.options, name=job.input if path else None,
                     limits=limits)


class CsvSource:
    """A CSV file, ``.csv.gz`` file or ``-`` (stdin), read block by block.

    ``name`` names it in messages (default: the path as given, ``<stdin>`` for ``-``).
    With ``limits``, a first line that does not hold the model's samples is refused before
    any block is parsed, and a sample the model cannot score makes a bad row.
    """

    row_unit = "line"

    def __init__(self, path: str, options: ScoreOptions, *, name: str | None = None,
                 limits: ModelLimits | None = None):
        self._input = InputSource(path, name=name)
        self.name = self._input.name
        self.options, self.limits = options, limits

    def __enter__(self) -> "CsvSource":
        return self

    def __exit__(self, *exc_info) -> None:
        self._input.close()

    def blocks(self) -> Iterator[Beats]:
        options = self.options
        parsed = self._input.iter_parsed(options.block_bytes, label_column=options.label_column,
                                         header=options.header, normal_label=options.normal_label,
                                         limits=self.limits, keep_rejects=options.keep_rejects)
        return (with_row_ids(beats) for beats in parsed)

    def progress(self) -> tuple[int, int | None]:
        return self._input.bytes_read, self._input.size

    def analysable(self) -> None:
        return None

    @property
    def sha256(self) -> str:
        return self._input.sha256


class CsvRangeSource:
    """Bytes ``start:stop`` of an uncompressed CSV file whose layout is known.

    Both ends must be block boundaries (:func:`anomaly.io.blocks.block_start`) and
    ``first_line`` the line number at ``start``. It does not hash what it reads, and its
    progress moves in one step, when the range is done.
    """

    sha256 = None
    row_unit = "line"

    def __init__(self, path: str, layout: CsvLayout, start: int, stop: int, *, first_line: int,
                 options: ScoreOptions, name: str | None = None):
        self.path, self.layout = path, layout
        self.start, self.stop, self.first_line = start, stop, first_line
        self.options = options
        self.name = path if name is None else name
        self._done = 0

    def __enter__(self) -> "CsvRangeSource":
        return self

    def __exit__(self, *exc_info) -> None:
        pass

    def blocks(self) -> Iterator[Beats]:
        for beats in iter_parsed_range(
                self.path, self.layout, self.start, self.stop, first_line=self.first_line,
                block_size=self.options.block_bytes, keep_rejects=self.options.keep_rejects,
                name=self.name):
            yield with_row_ids(beats)
        self._done = self.stop - self.start

    def progress(self) -> tuple[int, int | None]:
        return self._done, self.stop - self.start

    def analysable(self) -> None:
        return None


class RecordingSource:
    """A recording's beats, cut by the model's beat window when it records one (else the
    default window, resampled to the model's length). Its SHA-256 is that of its files
    (header, signal files, annotation file) read one after the other, each to the length
    it had when opened."""

    sha256 = None
    row_unit = "beat"

    def __init__(self, path: str, options: ScoreOptions, *, limits: ModelLimits | None = None):
        from ..recordings.reading import segmenter_for
        from ..recordings.segment import SegmentCounts

        self.name, self.options = path, options
        self.segmenter = segmenter_for(path, recording_segment(options, limits))
        self._position = 0
        self.counts = SegmentCounts()

    def __enter__(self) -> "RecordingSource":
        return self

    def __exit__(self, *exc_info) -> None:
        pass

    def blocks(self) -> Iterator[Beats]:
        from ..recordings.limits import stamps_sha256
        from ..recordings.reading import labels_for

        options, record = self.options, self.segmenter.lead.record
        for chunk in self.segmenter.chunks():
            self._position = max(self._position, chunk.counts.position)
            self.counts += chunk.counts
            beats = chunk.beats
            if beats is None:
                continue
            labels = truth = None
            if options.label_column is not None:
                labels = labels_for(self.name, beats.labels, options.label_column)
                truth = (labels != options.normal_label).astype(np.int8)
            elif beats.labels is not None:
                labels = beats.labels
            yield Beats(beats.values, beats.beat, beats.ids(record), labels,
                        None if labels is None else "label", truth, positions=beats.sample)
        # What was read: each file to the length it had when opened (a recorder may have
        # appended since), refused if it was rewritten meanwhile.
        self.sha256 = stamps_sha256(self.segmenter.files)

    def analysable(self):
        """How much of the span could be read (:class:`anomaly.recordings.quality.Analysable`),
        once :meth:`blocks` is exhausted."""
        from ..recordings.quality import Analysable

        return Analysable.of(self.counts, self.segmenter.lead.fs, self.segmenter.lead.started)

    def progress(self) -> tuple[int, int | None]:
        """Samples of the span segmented, of the span's."""
        segmenter = self.segmenter
        span = segmenter.stop - segmenter.start
        return min(max(self._position - segmenter.start, 0), span), span


def recording_segment(options: ScoreOptions, limits: ModelLimits | None = None):
    """How a recording's beats are found for a model: the options' lead (else the lead the
    model was fitted on, by its name), span and annotations, and the model's beat window
    (aligned on its dominant beat only in the lead it was fitted on)."""
    from ..recordings.segment import SegmentOptions
    from ..recordings.signals import LeadName

    segment = options.segment or SegmentOptions()
    if limits is None:
        return segment
    lead = segment.lead
    if lead is None and limits.lead is not None:
        lead = LeadName(limits.lead)
    return replace(segment, window=limits.beat_window(), template_lead=limits.lead, lead=lead)


def with_row_ids(beats: Beats) -> Beats:
    """A CSV block's beats as a block to score: ``row`` (the data line's number) first
    among its ids, the file's id columns after it."""
    return replace(beats, ids={"row": beats.lines - beats.layout.header_line, **beats.ids})
