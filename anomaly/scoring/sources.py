"""Beat sources (see :class:`anomaly.scoring.base.BeatSource`), and the one place that
chooses the source of an input (:func:`source_for`).

- :class:`CsvSource`: a whole CSV file, ``.csv.gz`` file or stdin, streamed and hashed;
- :class:`CsvRangeSource`: bytes ``start:stop`` of an uncompressed CSV file, cut into the
  very blocks a :class:`CsvSource` would cut there (a Dask partition).

Each beat's id in the scores output is its ``row``: its line number minus the header's.
"""

from __future__ import annotations

from typing import Iterator

from ..io.csv_parser import CsvLayout
from ..io.readers import Beats, InputSource, iter_parsed_range
from .base import BeatBlock, BeatSource, ModelLimits, Reject
from .plan import Job, ScoreOptions


def source_for(job: Job, *, limits: ModelLimits | None = None,
               path: str | None = None) -> BeatSource:
    """The source of a job's input, whose beats must be within the model's ``limits``;
    read from ``path`` when given (the same file under another name, as a Dask worker
    sees it)."""
    return CsvSource(path or job.input, job.options, name=job.input if path else None,
                     limits=limits)


class CsvSource:
    """A CSV file, ``.csv.gz`` file or ``-`` (stdin), read block by block.

    ``name`` names it in messages (default: the path as given, ``<stdin>`` for ``-``).
    With ``limits``, a first line that does not hold the model's samples is refused before
    any block is parsed, and a sample the model cannot score makes a bad row.
    """

    def __init__(self, path: str, options: ScoreOptions, *, name: str | None = None,
                 limits: ModelLimits | None = None):
        self._input = InputSource(path, name=name)
        self.name = self._input.name
        self.options, self.limits = options, limits

    def __enter__(self) -> "CsvSource":
        return self

    def __exit__(self, *exc_info) -> None:
        self._input.close()

    def blocks(self) -> Iterator[BeatBlock]:
        options = self.options
        parsed = self._input.iter_parsed(options.block_bytes, label_column=options.label_column,
                                         header=options.header, normal_label=options.normal_label,
                                         limits=self.limits, keep_rejects=options.keep_rejects)
        return (beat_block(beats, rejects) for beats, rejects in parsed)

    def progress(self) -> tuple[int, int | None]:
        return self._input.bytes_read, self._input.size

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

    def blocks(self) -> Iterator[BeatBlock]:
        for beats, rejects in iter_parsed_range(
                self.path, self.layout, self.start, self.stop, first_line=self.first_line,
                block_size=self.options.block_bytes, keep_rejects=self.options.keep_rejects,
                name=self.name):
            yield beat_block(beats, rejects)
        self._done = self.stop - self.start

    def progress(self) -> tuple[int, int | None]:
        return self._done, self.stop - self.start


def beat_block(beats: Beats, rejects: list[Reject]) -> BeatBlock:
    """The parsed rows of a CSV block as a block to score; ``row`` counts data lines."""
    layout = beats.layout
    return BeatBlock(beats.values, beats.lines, {"row": beats.lines - layout.header_line},
                     beats.labels, layout.label_header, beats.truth, rejects)
