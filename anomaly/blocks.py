"""Cut a CSV byte stream into line-aligned blocks and parse each block with pyarrow.

Block boundaries depend only on the file's bytes and the block size: block ``k`` starts at
the first line start at or after byte ``k * block_bytes``. A reader streaming the file from
the top and a worker seeking to a byte range therefore cut exactly the same blocks, which is
what makes the Dask engine's output byte-identical to the local engine's.

Each block knows the line number of its first line, so every row and every error can be
named by its line in the file. Blank lines are skipped but keep their line numbers.

No TensorFlow here.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import IO, Iterator

import numpy as np

from .exceptions import InputError

#: Default block size: large enough for pyarrow's threads, small enough for flat memory.
BLOCK_BYTES = 8 << 20


@dataclass(frozen=True)
class RawBlock:
    """Whole lines of a CSV file: ``data`` starts at line ``first_line`` (1-based)."""

    first_line: int
    data: bytes
    offset: int = 0


@dataclass(frozen=True)
class ParsedBlock:
    """The rows of one block that parsed, and the rows rejected with their reasons.

    ``lines`` holds the 1-based line number of each row of ``values``; ``rejects`` holds
    ``(line, reason, text)`` for each rejected row (only when rejects are allowed).
    """

    lines: np.ndarray
    values: np.ndarray
    labels: np.ndarray | None
    rejects: list[tuple[int, str, str]]

    def __len__(self) -> int:
        return len(self.values)


def iter_blocks(stream: IO[bytes], block_bytes: int = BLOCK_BYTES, *, first_line: int = 1,
                start: int = 0, stop: int | None = None) -> Iterator[RawBlock]:
    """Yield line-aligned blocks of ``stream``, whose current position is byte ``start``.

    ``start`` must be a block boundary (0, or what :func:`block_start` returned) and
    ``first_line`` the line number there. With ``stop`` (also a block boundary), reading ends
    there; otherwise at the end of the stream.
    """
    if block_bytes < 1:
        raise ValueError(f"block_bytes must be positive, got {block_bytes}")
    position, line = start, first_line
    while stop is None or position < stop:
        target = (position // block_bytes + 1) * block_bytes
        if stop is not None:
            target = min(target, stop)
        data = _read_exactly(stream, target - position)
        if len(data) == target - position and (stop is None or target < stop):
            data += _read_to_line_end(stream, data)
        if not data:
            return
        yield RawBlock(line, data, position)
        position += len(data)
        line += data.count(b"\n")


def block_start(stream: IO[bytes], nominal: int) -> int:
    """The first line start at or after byte ``nominal`` of a seekable stream (or EOF)."""
    if nominal <= 0:
        return 0
    stream.seek(nominal - 1)
    if stream.read(1) == b"\n":
        return nominal
    position = nominal
    while True:
        chunk = stream.read(1 << 16)
        if not chunk:
            return position
        newline = chunk.find(b"\n")
        if newline >= 0:
            return position + newline + 1
        position += len(chunk)


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    """``size`` bytes, fewer only at the end of the stream (pipes return short reads)."""
    parts, missing = [], size
    while missing > 0:
        chunk = stream.read(missing)
        if not chunk:
            break
        parts.append(chunk)
        missing -= len(chunk)
    return b"".join(parts)


def _read_to_line_end(stream: IO[bytes], data: bytes) -> bytes:
    """The bytes after ``data`` up to and including the next newline (or EOF)."""
    if data.endswith(b"\n"):
        return b""
    parts = []
    while True:
        chunk = stream.readline(1 << 16)
        parts.append(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return b"".join(parts)


def parse_block(name: str, block: RawBlock, layout, *, keep_rejects: bool = False,
                skip_header: bool = False) -> ParsedBlock:
    """Parse one block into float64 samples (and label text), exactly as written.

    Parameters
    ----------
    name : str
        The file's name, for error messages.
    block : RawBlock
    layout : CsvLayout
        Delimiter, column count and label column, from :func:`anomaly.readers.sniff_layout`.
    keep_rejects : bool, default False
        False: the first bad row raises InputError naming its line and column. True: bad
        rows are returned in ``rejects`` and the good rows are parsed.
    skip_header : bool, default False
        Whether the block's first line is the header (block 0 of a file with a header).

    Raises
    ------
    InputError
        On the first bad row, unless ``keep_rejects``.
    """
    data = block.data
    first_line = block.first_line
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if skip_header:
        data, first_line = _drop_header(data, first_line)
    parsed = _parse_fast(data, layout)
    if parsed is not None:
        values, labels = parsed
        lines = _row_lines(data, first_line, len(values))
        if lines is not None:
            return ParsedBlock(lines, values, labels, [])
    good, rejects = _scan(name, data, first_line, layout, keep_rejects)
    lines = np.fromiter((line for line, _ in good), np.int64, len(good))
    kept = b"".join(text for _, text in good)
    values, labels = _parse_fast(kept, layout) if good else _empty(layout)
    return ParsedBlock(lines, values, labels, rejects)


def _drop_header(data: bytes, first_line: int) -> tuple[bytes, int]:
    """Drop blank lines and then the header line from the top of the first block."""
    position = 0
    while True:
        end = data.find(b"\n", position)
        end = len(data) if end < 0 else end + 1
        line = data[position:end]
        position, first_line = end, first_line + 1
        if line.strip() or position >= len(data):
            return data[position:], first_line


def _parse_fast(data: bytes, layout):
    """pyarrow's parse of whole lines; None if any row is malformed or non-finite."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    if not data.strip():
        return _empty(layout)
    names = [f"c{i}" for i in range(layout.n_columns)]
    types = {names[i]: pa.float64() for i in layout.sample_indices}
    if layout.label_index is not None:
        types[names[layout.label_index]] = pa.string()
    try:
        table = pa_csv.read_csv(
            io.BytesIO(data),
            read_options=pa_csv.ReadOptions(column_names=names, block_size=1 << 20),
            parse_options=pa_csv.ParseOptions(delimiter=layout.delimiter),
            # Only truly empty cells become nulls, so that they are reported rather than
            # read as NaN; "nan" and "inf" parse as floats and fail the finiteness check.
            convert_options=pa_csv.ConvertOptions(
                column_types=types, null_values=[""], strings_can_be_null=True,
                quoted_strings_can_be_null=True),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None
    columns = [table.column(i) for i in layout.sample_indices]
    if any(column.null_count for column in columns):
        return None
    values = np.empty((table.num_rows, len(columns)), dtype=np.float64)
    for j, column in enumerate(columns):
        values[:, j] = column.to_numpy()
    if not np.isfinite(values).all():
        return None
    labels = None
    if layout.label_index is not None:
        column = table.column(layout.label_index)
        if column.null_count:
            return None
        labels = np.asarray(column.to_pylist(), dtype=object)
    return values, labels


def _empty(layout):
    labels = None if layout.label_index is None else np.empty(0, dtype=object)
    return np.empty((0, len(layout.sample_indices))), labels


def _row_lines(data: bytes, first_line: int, n_rows: int) -> np.ndarray | None:
    """Line numbers of the rows when the block has no blank lines, else None."""
    n_lines = data.count(b"\n") + (not data.endswith(b"\n"))
    if n_lines != n_rows:
        return None
    return np.arange(first_line, first_line + n_rows, dtype=np.int64)


def _scan(name: str, data: bytes, first_line: int, layout, keep_rejects: bool):
    """Check every line in Python: (good lines with their numbers, rejects)."""
    good: list[tuple[int, bytes]] = []
    rejects: list[tuple[int, str, str]] = []
    pieces = data.split(b"\n")
    if pieces[-1] == b"":
        pieces.pop()
    for offset, piece in enumerate(pieces):
        line, raw = first_line + offset, piece + b"\n"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            problem = f"undecodable byte at offset {error.start} of the line (not UTF-8 text)"
            text = raw.decode("utf-8", errors="replace")
        else:
            stripped = text.rstrip("\r\n")
            if not stripped:
                continue
            problem = row_problem(stripped, layout)
        if problem is None:
            good.append((line, raw))
            continue
        if not keep_rejects:
            raise InputError(f"{name} line {line}{problem}")
        rejects.append((line, problem.lstrip(": ").strip(), text.rstrip("\r\n")))
    return good, rejects


def row_problem(line: str, layout) -> str | None:
    """What is wrong with one line of text, as ``" column N: ..."``, or None."""
    from .readers import parse_number

    try:
        fields = next(csv.reader([line], delimiter=layout.delimiter, strict=True))
    except csv.Error as error:
        return f": {error}"
    if len(fields) != layout.n_columns:
        return f": expected {layout.n_columns} fields, got {len(fields)}"
    for index in layout.sample_indices:
        text = fields[index]
        where = f" column {index + 1}"
        if layout.has_header:
            where += f" ({layout.column_names[index]!r})"
        if not text:
            return f"{where}: empty cell (expected a number)"
        number = parse_number(text)
        if number is None:
            return f"{where}: expected a number, got {text[:40]!r}"
        if not math.isfinite(number):
            return f"{where}: {text!r} is not a finite number"
    if layout.label_index is not None and not fields[layout.label_index]:
        return f" column {layout.label_index + 1}: empty label"
    return None
