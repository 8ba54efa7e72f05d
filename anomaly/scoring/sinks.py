"""Score sinks (see :class:`anomaly.scoring.base.ScoreSink`).

- :class:`ScoresFile`: a scores file, CSV or Parquet by its name, and in skip mode the
  rejects file beside it; both are written to temporary files and renamed into place
  only when the input is complete;
- :class:`ScoresToStdout`: CSV on standard output;
- :class:`NoScores`: nothing (``anomaly plot`` needs only the run's summary);
- :class:`PartFile`: one Dask partition's scores, as an Arrow IPC file, and its rejects.

Every CSV is written by one writer, so a scores file has the same bytes whichever sink
and engine produced it.
"""

from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path
from typing import IO, Sequence

from ..choices import OutputFormat
from ..io.tables import TableWriter
from ..io.writers import StandardOutput, atomic_write
from ..io.beats import Reject
from .plan import Job, output_format


class ScoresFile:
    """Scores into ``path`` and rejected rows into ``rejects`` (skip mode), atomically."""

    def __init__(self, path: Path, rejects: Path | None = None):
        self.path, self.rejects_path = path, rejects
        self._files = contextlib.ExitStack()
        self._scores: TableWriter | None = None
        self._rejects: _RejectsWriter | None = None

    def __enter__(self) -> "ScoresFile":
        with self._files as files:
            self._scores = TableWriter(files.enter_context(atomic_write(self.path, "wb")),
                                        output_format(self.path))
            if self.rejects_path is not None:
                # Entered last, so committed first: a scores file never appears without
                # its rejects file.
                self._rejects = _RejectsWriter(files.enter_context(
                    atomic_write(self.rejects_path, "wb")))
            self._files = files.pop_all()
        return self

    def write(self, table) -> None:
        self._scores.write(table)

    def reject(self, rows: Sequence[Reject]) -> None:
        if rows:
            if self._rejects is None:
                raise ValueError(f"{self.path}: rejected rows, but no rejects file to hold them")
            self._rejects.write(rows)

    def __exit__(self, *exc_info) -> None:
        try:
            if exc_info[0] is None:
                self._scores.close()  # Parquet's footer, before the files are committed.
        except BaseException as error:
            self._files.__exit__(type(error), error, error.__traceback__)
            raise
        self._files.__exit__(*exc_info)


class ScoresToStdout:
    """Scores as CSV on standard output (rows cannot be rejected: skip mode needs a file)."""

    def __init__(self, stream: IO[bytes] | None = None):
        self._stream = stream or StandardOutput()
        self._scores = TableWriter(self._stream, OutputFormat.csv.value)

    def __enter__(self) -> "ScoresToStdout":
        return self

    def write(self, table) -> None:
        self._scores.write(table)

    def reject(self, rows: Sequence[Reject]) -> None:
        if rows:
            raise ValueError("rejected rows need a rejects file; stdout has none")

    def __exit__(self, *exc_info) -> None:
        self._scores.close()
        if exc_info[0] is None:
            self._stream.flush()  # A failure to write the last rows is the run's.


class NoScores:
    """Keeps nothing: for runs that need only the summary (plots)."""

    def __enter__(self) -> "NoScores":
        return self

    def write(self, table) -> None:
        pass

    def reject(self, rows: Sequence[Reject]) -> None:
        pass

    def __exit__(self, *exc_info) -> None:
        pass


class PartFile:
    """One Dask partition's scores, as an Arrow IPC file (one record batch per block), and
    its rejected rows as CSV rows in ``PATH.rejects``, for the client to commit in order.
    Both stream to disk: a partition of bad rows takes no more memory than a good one."""

    def __init__(self, path: str):
        self.path = path
        self.rejects_path = f"{path}.rejects"
        self._writer = None
        self._rejects: _RejectsWriter | None = None
        self._files = contextlib.ExitStack()

    def __enter__(self) -> "PartFile":
        return self

    def write(self, table) -> None:
        import pyarrow as pa

        if self._writer is None:
            self._writer = pa.ipc.new_file(self.path, table.schema)
        for batch in table.to_batches():
            self._writer.write_batch(batch)

    def reject(self, rows: Sequence[Reject]) -> None:
        if rows:
            if self._rejects is None:
                file = self._files.enter_context(open(self.rejects_path, "xb"))
                self._rejects = _RejectsWriter(file, header=False)
            self._rejects.write(rows)

    def __exit__(self, *exc_info) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
        finally:
            self._files.close()

    @property
    def written(self) -> tuple[str | None, str | None]:
        """The paths of the scores and rejects written (None for what was not)."""
        return (None if self._writer is None else self.path,
                None if self._rejects is None else self.rejects_path)


def read_part(path: str):
    """The tables of a part file, in order."""
    import pyarrow as pa

    with pa.memory_map(path) as source:
        reader = pa.ipc.open_file(source)
        for index in range(reader.num_record_batches):
            yield pa.Table.from_batches([reader.get_batch(index)])


def read_part_rejects(path: str, chunk: int = 1 << 14):
    """The rejected rows of a part file, in lists of at most ``chunk``."""
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as file:
        rows: list[Reject] = []
        for line, reason, text in csv.reader(file):
            rows.append((int(line), reason, text))
            if len(rows) == chunk:
                yield rows
                rows = []
        if rows:
            yield rows


def sink_for(job: Job):
    """The sink of a job: its scores file, stdout, or nothing."""
    if job.output is not None:
        return ScoresFile(job.output, job.rejects)
    return ScoresToStdout() if job.to_stdout else NoScores()


class _RejectsWriter:
    """Rejected rows as CSV, ``line,reason,text``, the text exactly as it was read.

    A line that was not valid UTF-8 carries its bad bytes as surrogates: they are written
    back as the very bytes that were read.
    """

    def __init__(self, file: IO[bytes], *, header: bool = True):
        self.file = file
        if header:
            self._write_rows([("line", "reason", "text")])

    def write(self, rows: Sequence[Reject]) -> None:
        self._write_rows(rows)

    def _write_rows(self, rows) -> None:
        text = io.StringIO()
        plain = csv.writer(text, lineterminator="\n")
        # The csv module quotes a carriage return only when it ends lines itself: quote it.
        quoted = csv.writer(text, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
        for row in rows:
            (quoted if "\r" in row[2] else plain).writerow(row)
        self.file.write(text.getvalue().encode("utf-8", errors="surrogateescape"))
