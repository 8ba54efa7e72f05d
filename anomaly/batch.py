"""Batch scoring for scheduled jobs: stream each input, write one output per input.

Each input is read block by block (see :mod:`anomaly.blocks`); the model runs on each
whole block, the scores of each block are appended to a temporary output file, and the
output is renamed into place only when the input has been read to its end. Memory stays
flat in the file size: what is kept per row is only its score (and its label flag), for the
run's metrics and histogram.

Block boundaries depend only on the bytes (see :mod:`anomaly.blocks`), so the same input
always yields the same blocks, the same scores and byte-identical outputs.
"""

from __future__ import annotations

import contextlib
import glob
import heapq
import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .blocks import BLOCK_BYTES
from .exceptions import InputError
from .readers import Beats, anomaly_truth, open_input

#: Input file names picked up from a directory given as input.
INPUT_SUFFIXES = (".csv", ".csv.gz")
#: How many of the most anomalous beats a run keeps for its plots and HTML report.
TOP_BEATS = 6
#: How many beats called normal are kept as candidates for the "typical normal beat".
NORMAL_SAMPLE = 512


@dataclass(frozen=True)
class ScoreOptions:
    """How inputs are read and what happens to bad rows."""

    label_column: str | int | None = None
    normal_label: str = "1"
    header: bool | None = None
    on_bad_row: str = "fail"
    block_bytes: int = BLOCK_BYTES

    def __post_init__(self) -> None:
        if self.on_bad_row not in ("fail", "skip"):
            raise ValueError(f"on_bad_row must be 'fail' or 'skip', got {self.on_bad_row!r}")


@dataclass
class Beat:
    """One beat kept for pictures: where it came from, its samples and its score."""

    input: str
    line: int
    score: float
    values: np.ndarray
    label: str | None = None


@dataclass
class InputResult:
    """What scoring one input did."""

    input: str
    output: str | None
    sha256: str | None = None
    rows_read: int = 0
    rows_scored: int = 0
    rows_rejected: int = 0
    anomalies: int = 0
    seconds: float = 0.0
    rejects_file: str | None = None
    skipped: str | None = None
    metrics: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        data = {key: value for key, value in self.__dict__.items() if value is not None}
        data["seconds"] = round(self.seconds, 3)
        if self.skipped is None:
            data["rows_per_second"] = round(self.rows_scored / self.seconds, 1) if self.seconds else None
        return data


@dataclass
class RunSummary:
    """Scores, flags and a few beats of a whole run, for metrics, plots and reports."""

    threshold: float
    scores: list[np.ndarray] = field(default_factory=list)
    truth: list[np.ndarray] = field(default_factory=list)
    has_labels: bool = True
    top: list[tuple[float, int, int, Beat]] = field(default_factory=list)
    normals: list[Beat] = field(default_factory=list)

    def add(self, input_name: str, beats: Beats, scores: np.ndarray, truth: np.ndarray | None,
            *, input_index: int = 0) -> None:
        """Record one scored block of the run's input number ``input_index``."""
        self.scores.append(scores)
        if truth is None:
            self.has_labels = False
        else:
            self.truth.append(truth)
        for row in np.argsort(scores)[::-1][:TOP_BEATS]:
            self._keep_top((float(scores[row]), -input_index, -int(beats.lines[row]),
                            self._beat(input_name, beats, scores, row)))
        missing = NORMAL_SAMPLE - len(self.normals)
        if missing > 0:
            for row in np.flatnonzero(scores <= self.threshold)[:missing]:
                self.normals.append(self._beat(input_name, beats, scores, row))

    def merge(self, other: "RunSummary") -> None:
        """Add a summary of the blocks that follow this one's (a Dask partition's)."""
        self.scores += other.scores
        self.truth += other.truth
        self.has_labels = self.has_labels and other.has_labels
        for entry in other.top:
            self._keep_top(entry)
        self.normals += other.normals[:NORMAL_SAMPLE - len(self.normals)]

    def _keep_top(self, entry: tuple) -> None:
        # Ties in score go to the earlier beat (by input, then line), so the kept beats
        # do not depend on the order in which blocks are added.
        if len(self.top) < TOP_BEATS:
            heapq.heappush(self.top, entry)
        elif entry[:3] > self.top[0][:3]:
            heapq.heapreplace(self.top, entry)

    @staticmethod
    def _beat(input_name: str, beats: Beats, scores: np.ndarray, row: int) -> Beat:
        label = None if beats.labels is None else str(beats.labels[row])
        return Beat(input_name, int(beats.lines[row]), float(scores[row]),
                    beats.values[row].copy(), label)

    @property
    def all_scores(self) -> np.ndarray:
        return np.concatenate(self.scores) if self.scores else np.empty(0)

    @property
    def all_truth(self) -> np.ndarray | None:
        if not self.has_labels or not self.truth:
            return None
        return np.concatenate(self.truth)

    def most_anomalous(self) -> list[Beat]:
        """The kept beats with the highest scores, highest first."""
        return [entry[-1] for entry in sorted(self.top, key=lambda entry: entry[:3], reverse=True)]

    def typical_normal(self) -> Beat | None:
        """The beat with the median score among the kept beats called normal."""
        if not self.normals:
            return None
        ordered = sorted(self.normals, key=lambda beat: beat.score)
        return ordered[len(ordered) // 2]

    def metrics(self) -> dict[str, Any] | None:
        """Detection metrics over every labelled row of the run (anomaly = positive)."""
        from .metrics import detection_report

        truth = self.all_truth
        if truth is None:
            return None
        scores = self.all_scores
        return detection_report(truth, scores, scores > self.threshold)


def expand_inputs(specs: list[str]) -> list[str]:
    """Files, globs, directories (their ``*.csv`` and ``*.csv.gz``) and ``-``, in order.

    Raises InputError for a path that does not exist, a glob or directory that matches no
    file, or the same file named twice.
    """
    inputs: list[str] = []
    for spec in specs:
        if spec == "-":
            inputs.append(spec)
        elif Path(spec).is_dir():
            found = sorted(str(path) for path in Path(spec).iterdir()
                           if path.is_file() and path.name.endswith(INPUT_SUFFIXES))
            if not found:
                raise InputError(f"{spec}: directory holds no {' or '.join(INPUT_SUFFIXES)} files")
            inputs += found
        elif glob.has_magic(spec):
            found = sorted(path for path in glob.glob(spec) if Path(path).is_file())
            if not found:
                raise InputError(f"{spec}: no file matches this pattern")
            inputs += found
        elif Path(spec).exists():
            inputs.append(spec)
        else:
            raise InputError(f"{spec}: no such file (it does not exist)")
    seen: dict[str, str] = {}
    for name in inputs:
        key = name if name == "-" else os.path.realpath(name)
        if key in seen:
            raise InputError(f"{name}: given twice (also as {seen[key]})")
        seen[key] = name
    return inputs


def output_name(input_name: str, suffix: str = ".csv") -> str:
    """``day1.csv.gz`` -> ``day1.scores.csv`` (``-`` -> ``stdin.scores.csv``)."""
    base = "stdin" if input_name == "-" else Path(input_name).name
    for ending in (".gz", ".csv", ".txt"):
        base = base.removesuffix(ending)
    return f"{base}.scores{suffix}"


def is_up_to_date(output: Path, input_name: str, model_dir: Path) -> bool:
    """Whether ``output`` exists and is newer than the input and the model's files."""
    if input_name == "-" or not output.is_file():
        return False
    newest_source = max([os.stat(input_name).st_mtime_ns] +
                        [path.stat().st_mtime_ns for path in model_dir.iterdir() if path.is_file()])
    return output.stat().st_mtime_ns > newest_source


def score_block(detector, beats: Beats, normal_label: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Scores, 0/1 flags and (with labels) 0/1 truth for one block of beats."""
    if beats.n_samples != detector.n_features_in_:
        raise InputError(
            f"{beats.path} line {int(beats.lines[0])}: expected {detector.n_features_in_} "
            f"samples per beat (the model's input length), got {beats.n_samples}"
        )
    scores = detector.score(beats.values)
    flags = (scores > detector.threshold_).astype(np.int8)
    truth = anomaly_truth(beats, normal_label) if beats.labels is not None else None
    return scores, flags, truth


def score_table(beats: Beats, scores: np.ndarray, flags: np.ndarray):
    """The output rows of one block as a pyarrow table: row, score, is_anomaly[, label]."""
    import pyarrow as pa

    first_data_line = beats.layout.first_data_line
    columns = {
        "row": pa.array(beats.lines - (first_data_line - 1), pa.int64()),
        "score": pa.array(scores, pa.float64()),
        "is_anomaly": pa.array(flags, pa.int8()),
    }
    if beats.labels is not None:
        columns[label_header(beats)] = pa.array(beats.labels.tolist(), pa.string())
    return pa.table(columns)


def label_header(beats: Beats) -> str:
    """The label column's name in the output: its header name, or ``label``."""
    return beats.label_name if beats.layout.has_header else "label"


class ScoresWriter:
    """Append score tables to CSV or Parquet; ``format`` is ``csv`` or ``parquet``."""

    def __init__(self, file, format: str):
        self.file, self.format = file, format
        self._parquet = None
        self._header_written = False

    def write(self, table) -> None:
        if self.file is None:
            return
        if self.format == "parquet":
            import pyarrow.parquet as pq

            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.file, table.schema)
            self._parquet.write_table(table)
            return
        if not self._header_written:
            import csv

            text = io.StringIO()
            csv.writer(text, lineterminator="\n").writerow(table.column_names)
            self.file.write(text.getvalue().encode())
            self._header_written = True
        self.file.write(_csv_bytes(table))

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()


def _csv_bytes(table) -> bytes:
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    buffer = io.BytesIO()
    try:
        pa_csv.write_csv(table, buffer, pa_csv.WriteOptions(include_header=False,
                                                            quoting_style="none"))
    except pa.ArrowInvalid:  # A label holds a delimiter or a quote: quote the text.
        buffer = io.BytesIO()
        pa_csv.write_csv(table, buffer, pa_csv.WriteOptions(include_header=False,
                                                            quoting_style="needed"))
    return buffer.getvalue()


def write_scores(path: str | os.PathLike, beats: Beats, scores: np.ndarray,
                 flags: np.ndarray) -> None:
    """Write the scores of beats held in memory, atomically, as ``score`` writes them."""
    from .writers import atomic_write

    with atomic_write(path, "wb") as file:
        writer = ScoresWriter(file, output_format(path))
        writer.write(score_table(beats, scores, flags))
        writer.close()


def output_format(path: Path | str) -> str:
    return "parquet" if str(path).endswith(".parquet") else "csv"


def score_input(
    detector,
    input_name: str,
    output: Path | None,
    options: ScoreOptions,
    summary: RunSummary,
    *,
    input_index: int = 0,
    progress: Callable[[int, int | None, int], None] | None = None,
    stdout=None,
) -> InputResult:
    """Score one input into ``output`` (or ``stdout``; neither: scores are only summarised).

    With ``options.on_bad_row == "skip"`` the rejected rows go, verbatim with their line
    number and reason, to ``<output>.rejects.csv``, written even when empty (skipping
    needs a file output). ``progress(bytes_read, bytes_total, rows)`` is called per block.
    ``input_index`` is the input's place in the run (it orders ties among the top beats).
    """
    if output is None and options.on_bad_row == "skip":
        raise InputError(f"{input_name}: --on-bad-row skip needs an output file for its "
                         "rejects file, not stdout")
    from .writers import atomic_write

    started = time.perf_counter()
    result = InputResult(input=input_name, output=None if output is None else str(output))
    skip = options.on_bad_row == "skip"
    format = "csv" if output is None else output_format(output)
    with contextlib.ExitStack() as stack:
        source = stack.enter_context(open_input(input_name))
        if output is None:
            file = stdout
        else:
            file = stack.enter_context(atomic_write(output, "wb"))
        writer = ScoresWriter(file, format)
        blocks = stack.enter_context(contextlib.closing(prefetched(source.iter_parsed(
            options.block_bytes, label_column=options.label_column,
            header=options.header, normal_label=options.normal_label, keep_rejects=skip))))
        on_block = None if progress is None else (
            lambda rows: progress(source.bytes_read, source.size, rows))
        rejects = score_blocks(detector, source.name, blocks, writer, summary, result,
                               options.normal_label, input_index=input_index, on_block=on_block)
        finish_input(source.name, output, writer, rejects, result, skip)
        result.sha256 = source.sha256
    result.seconds = time.perf_counter() - started
    return result


def score_blocks(detector, input_name: str, blocks, writer, summary: RunSummary,
                 result: InputResult, normal_label: str, *, input_index: int = 0,
                 on_block: Callable[[int], None] | None = None) -> list[tuple[int, str, str]]:
    """Score ``(beats, rejects)`` blocks into ``writer`` and ``summary``; count them in
    ``result``; return the rejected rows. ``on_block(rows)`` is called after each block."""
    rejects: list[tuple[int, str, str]] = []
    for beats, block_rejects in blocks:
        rejects += block_rejects
        result.rows_rejected += len(block_rejects)
        if len(beats):
            scores, flags, truth = score_block(detector, beats, normal_label)
            writer.write(score_table(beats, scores, flags))
            summary.add(input_name, beats, scores, truth, input_index=input_index)
            result.rows_scored += len(beats)
            result.anomalies += int(flags.sum())
        if on_block is not None:
            on_block(len(beats) + len(block_rejects))
    result.rows_read = result.rows_scored + result.rows_rejected
    return rejects


def finish_input(input_name: str, output: Path | None, writer, rejects: list,
                 result: InputResult, skip: bool) -> None:
    """Refuse an input whose every row was rejected; close the writer; write the rejects
    file (skip mode). Runs before the output is committed."""
    if result.rows_scored == 0 and rejects:
        line, reason, _ = rejects[0]
        raise InputError(f"{input_name}: all {len(rejects)} rows were rejected "
                         f"(the first, line {line}: {reason})")
    writer.close()
    if skip and output is not None:
        rejects_path = rejects_file_for(output)
        write_rejects(rejects_path, rejects)
        result.rejects_file = str(rejects_path)


def rejects_file_for(output: Path) -> Path:
    """``scores.csv`` -> ``scores.rejects.csv``, beside it."""
    stem = output.name.removesuffix(".parquet").removesuffix(".csv")
    return output.with_name(f"{stem}.rejects.csv")


def write_rejects(path: Path, rejects: list[tuple[int, str, str]]) -> None:
    """Write ``line,reason,text`` rows atomically (the text exactly as it was read).

    A line that was not valid UTF-8 carries its bad bytes as surrogates: they are written
    back as the very bytes that were read.
    """
    import csv

    from .writers import atomic_write

    text = io.StringIO()
    plain = csv.writer(text, lineterminator="\n")
    # The csv module quotes a carriage return only when it ends lines itself: quote it here.
    quoted = csv.writer(text, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
    plain.writerow(["line", "reason", "text"])
    for reject in rejects:
        (quoted if "\r" in reject[2] else plain).writerow(reject)
    with atomic_write(path, "wb") as file:
        file.write(text.getvalue().encode("utf-8", errors="surrogateescape"))


_END = object()


def prefetched(iterable) -> Iterator:
    """Iterate ``iterable`` one item ahead in a thread: parse the next block while
    the model scores this one (pyarrow and TensorFlow both release the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    iterator = iter(iterable)
    with ThreadPoolExecutor(1, thread_name_prefix="anomaly-read") as pool:
        pending = pool.submit(next, iterator, _END)
        while True:
            item = pending.result()
            if item is _END:
                return
            pending = pool.submit(next, iterator, _END)
            yield item
