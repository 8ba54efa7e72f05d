"""Cut a CSV byte stream into line-aligned blocks and parse each block with pyarrow.

Block boundaries depend only on the file's bytes and the block size: block ``k`` starts at
the first line start at or after byte ``k * block_bytes``. A reader streaming the file from
the top and a worker seeking to a byte range therefore cut exactly the same blocks, which is
what makes the Dask engine's output byte-identical to the local engine's.

Each block knows the line number of its first line, so every row and every error can be
named by its physical line in the file. Blank lines (empty or only spaces and tabs) are not
beats: they are skipped but keep their line numbers.

No TensorFlow here.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from typing import IO, Iterator

import numpy as np

from .exceptions import InputError

#: Default block size: large enough for pyarrow's threads, small enough for flat memory.
BLOCK_BYTES = 8 << 20


@dataclass(frozen=True)
class RawBlock:
    """Whole lines of a CSV file: ``data`` starts at line ``first_line`` (1-based) and
    holds ``newlines`` line feeds (counted once, when the block is cut)."""

    first_line: int
    data: bytes
    offset: int = 0
    newlines: int | None = None


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
        newlines = data.count(b"\n")
        yield RawBlock(line, data, position, newlines)
        position += len(data)
        line += newlines


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

    pyarrow parses the block; when it rejects anything, or might disagree with the
    line-by-line reading (blank lines aside), the block is read again line by line in
    Python, which is the reference: it finds the first bad line and column, and its values
    are the ones returned. Either way a row gets the same values and the same verdict.

    Parameters
    ----------
    name : str
        The file's name, for error messages.
    block : RawBlock
    layout : CsvLayout
        Delimiter, column count, header line and label column, from
        :func:`anomaly.readers.layout_from_head`.
    keep_rejects : bool, default False
        False: the first bad row raises InputError naming its line and column. True: bad
        rows are returned in ``rejects`` and the good rows are parsed.
    skip_header : bool, default False
        Whether the block holds the header (line ``layout.header_line``): the lines up to
        and including it are dropped.

    Raises
    ------
    InputError
        On the first bad row, unless ``keep_rejects``.
    """
    data = block.data
    first_line = block.first_line
    if first_line == 1 and data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM):]
    if skip_header:
        data, first_line = _drop_lines_through(data, first_line, layout.header_line)
    parsed = _parse_fast(data, layout)
    if parsed is not None:
        values, labels = parsed
        newlines = block.newlines if data is block.data else None
        lines = _row_lines(data, first_line, len(values), newlines)
        if lines is not None:
            return ParsedBlock(lines, values, labels, [])
    return _scan(name, data, first_line, layout, keep_rejects)


#: The UTF-8 byte-order mark some editors (Excel among them) write at the start of a file.
UTF8_BOM = b"\xef\xbb\xbf"
#: What may surround a number in a cell, as pyarrow allows it.
_PADDING = " \t"
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}


def parse_number(text: str) -> float | None:
    """Parse a CSV cell as pyarrow does for float64 columns, or return None.

    Spaces and tabs around the number are allowed; the number itself must be plain ASCII.
    Python's ``float`` alone would also take underscores (``1_0``), other whitespace and
    non-ASCII digits (``٢``), all of which pyarrow rejects.
    """
    text = text.strip(_PADDING)
    if not text or not text.isascii() or "_" in text or any(c.isspace() for c in text):
        return None
    try:
        return float(text)
    except ValueError:
        return None


def is_blank(line: str | bytes) -> bool:
    """A blank line (empty or only spaces, tabs and line endings) is not a beat.

    Also used on whole blocks: a search stops at the first other character, where
    stripping would copy the block.
    """
    return (_NOT_BLANK_TEXT if isinstance(line, str) else _NOT_BLANK_BYTES).search(line) is None


_NOT_BLANK_TEXT = re.compile(r"[^ \t\r\n]")
_NOT_BLANK_BYTES = re.compile(rb"[^ \t\r\n]")


def _drop_lines_through(data: bytes, first_line: int, last_dropped: int) -> tuple[bytes, int]:
    """Drop the lines of ``data`` numbered up to ``last_dropped`` (the header line)."""
    position = 0
    while first_line <= last_dropped and position < len(data):
        end = data.find(b"\n", position)
        position = len(data) if end < 0 else end + 1
        first_line += 1
    return data[position:], first_line


def _parse_fast(data: bytes, layout):
    """pyarrow's parse of whole lines; None if any row is bad or pyarrow objects at all."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    if is_blank(data):
        return _empty(layout)
    names = [f"c{i}" for i in range(layout.n_columns)]
    types = {names[i]: pa.float64() for i in layout.sample_indices}
    if layout.label_index is not None:
        types[names[layout.label_index]] = pa.string()
    try:
        table = pa_csv.read_csv(
            io.BytesIO(data),
            read_options=pa_csv.ReadOptions(column_names=names, block_size=2 << 20),
            parse_options=pa_csv.ParseOptions(delimiter=layout.delimiter),
            # Only truly empty cells become nulls, so that they are reported rather than
            # read as NaN; "nan" and "inf" parse as floats and fail the finiteness check.
            convert_options=pa_csv.ConvertOptions(
                column_types=types, null_values=[""], strings_can_be_null=True,
                quoted_strings_can_be_null=True),
        )
    except (pa.ArrowException, UnicodeDecodeError):
        # Whatever pyarrow objects to, the line-by-line scan finds and words it.
        return None
    columns = [table.column(i) for i in layout.sample_indices]
    if any(column.null_count for column in columns):
        return None
    # Filled a column per row of the transpose (contiguous writes), then made row-major:
    # about a third faster than writing each column down a row-major array.
    by_column = np.empty((len(columns), table.num_rows), dtype=np.float64)
    for j, column in enumerate(columns):
        by_column[j] = column.to_numpy()
    values = np.ascontiguousarray(by_column.T)
    if not np.isfinite(values).all():
        return None
    labels = None
    if layout.label_index is not None:
        column = table.column(layout.label_index)
        if column.null_count:
            return None
        labels = np.array([_label_problem(text, layout)[1] for text in column.to_pylist()],
                          dtype=object)
        if any(label is None for label in labels):
            return None
    return values, labels


def _empty(layout):
    labels = None if layout.label_index is None else np.empty(0, dtype=object)
    return np.empty((0, len(layout.sample_indices))), labels


def _row_lines(data: bytes, first_line: int, n_rows: int,
               newlines: int | None = None) -> np.ndarray | None:
    """Line numbers of the rows pyarrow read, or None when they cannot be matched to lines.

    pyarrow skips empty lines, as the scan skips blank ones (a line of only spaces makes
    pyarrow fail, so the scan sees it). pyarrow also ends a line at a lone carriage return,
    which the scan reports as an error: a block with a lone CR goes to the scan.
    """
    if b"\r" in data and data.count(b"\r") != data.count(b"\r\n") + data.endswith(b"\r"):
        return None
    if newlines is None:
        newlines = data.count(b"\n")
    n_lines = newlines + (not data.endswith(b"\n"))
    if n_lines == n_rows:
        return np.arange(first_line, first_line + n_rows, dtype=np.int64)
    ends = np.flatnonzero(np.frombuffer(data, np.uint8) == ord("\n"))
    starts = np.concatenate(([0], ends + 1))
    stops = np.concatenate((ends, [len(data)]))
    if data.endswith(b"\n"):
        starts, stops = starts[:-1], stops[:-1]
    lengths = stops - starts
    empty = lengths == 0
    with_cr = np.flatnonzero(lengths == 1)
    empty[with_cr] = np.frombuffer(data, np.uint8)[starts[with_cr]] == ord("\r")
    numbers = np.flatnonzero(~empty)
    if len(numbers) != n_rows:
        return None
    return numbers.astype(np.int64) + first_line


def _scan(name: str, data: bytes, first_line: int, layout, keep_rejects: bool) -> ParsedBlock:
    """Read every line in Python: the reference for what is a good row and its values."""
    lines: list[int] = []
    rows: list[list[float]] = []
    labels: list[str] = []
    rejects: list[tuple[int, str, str]] = []
    pieces = data.split(b"\n")
    if pieces[-1] == b"":
        pieces.pop()
    for offset, piece in enumerate(pieces):
        line = first_line + offset
        # Undecodable bytes survive as surrogates: reported by field, and a rejected line
        # is written back byte for byte.
        text = piece.decode("utf-8", errors="surrogateescape")
        if text.endswith("\r"):
            text = text[:-1]
        if is_blank(text):
            continue
        problem, values, label = _parse_row(text, layout)
        if problem is None:
            lines.append(line)
            rows.append(values)
            labels.append(label)
        elif keep_rejects:
            rejects.append((line, problem.lstrip(": "), text))
        else:
            raise InputError(f"{name} line {line}{problem}")
    n_samples = len(layout.sample_indices)
    values = np.array(rows, dtype=np.float64).reshape(len(rows), n_samples)
    label_array = None if layout.label_index is None else np.array(labels, dtype=object)
    return ParsedBlock(np.array(lines, dtype=np.int64), values, label_array, rejects)


def _parse_row(line: str, layout) -> tuple[str | None, list[float] | None, str | None]:
    """``(problem, samples, label)`` of one line (without its line ending)."""
    try:
        fields = next(csv.reader([line], delimiter=layout.delimiter, strict=True))
    except csv.Error as error:
        return f": {describe_csv_error(error)}", None, None
    if len(fields) != layout.n_columns:
        hint = _delimiter_hint(line, layout) if len(fields) == 1 else ""
        return f": expected {layout.n_columns} fields, got {len(fields)}{hint}", None, None
    values = []
    for index in layout.sample_indices:
        text = fields[index]
        where = column_description(index, layout)
        undecodable = _undecodable(text)
        if undecodable:
            return f"{where}: {undecodable}", None, None
        if not text.strip(_PADDING):
            return f"{where}: empty cell (expected a number)", None, None
        number = parse_number(text)
        if number is None:
            hint = _delimiter_hint(text, layout)
            return f"{where}: expected a number, got {text[:40]!r}{hint}", None, None
        if not math.isfinite(number):
            word = text.strip(_PADDING).lstrip("+-").lower()
            why = ("is not a finite number" if word in ("nan", "inf", "infinity")
                   else "is too large for a 64-bit float")
            return f"{where}: {text.strip(_PADDING)!r} {why}", None, None
        values.append(number)
    label = None
    if layout.label_index is not None:
        problem, label = _label_problem(fields[layout.label_index], layout)
        if problem is not None:
            return f"{column_description(layout.label_index, layout)}: {problem}", None, None
    return None, values, label


def _label_problem(text: str, layout) -> tuple[str | None, str | None]:
    """``(problem, label)``: the label without surrounding spaces, or what is wrong with it."""
    undecodable = _undecodable(text)
    if undecodable:
        return undecodable, None
    label = text.strip(_PADDING)
    if not label:
        return "empty label", None
    if layout.numeric_labels:
        number = parse_number(label)
        if number is None or not math.isfinite(number):
            return (f"expected a numeric label (the normal label is a number), "
                    f"got {label[:40]!r}"), None
    return None, label


def column_description(index: int, layout) -> str:
    """`` column N`` (1-based), with the header's name for the column when there is one."""
    where = f" column {index + 1}"
    if layout.has_header:
        where += f" ({layout.column_names[index]!r})"
    return where


def _undecodable(text: str) -> str | None:
    """Say where the first byte that was not UTF-8 is in ``text``, if any."""
    for position, character in enumerate(text):
        if "\udc80" <= character <= "\udcff":
            byte = ord(character) - 0xDC00
            return f"byte 0x{byte:02x} at character {position + 1} is not UTF-8 text"
    return None


def describe_csv_error(error: csv.Error) -> str:
    """Python's csv module's complaint, in this project's words."""
    message = str(error)
    if message.startswith("new-line character"):
        return ("a carriage return (CR) inside the line (lines must end in LF or CRLF; "
                "a file with old Mac CR-only line endings must be saved again)")
    if message.startswith("unexpected end of data"):
        return "a quoted field is not closed on this line (a field cannot span lines)"
    if "expected after" in message:
        return "text after the closing quote of a quoted field"
    return f"malformed CSV ({message})"


def _delimiter_hint(text: str, layout) -> str:
    """A hint when a cell looks like another delimiter or a decimal comma is at work."""
    if layout.delimiter != "," and "," in text and parse_number(text.replace(",", ".")) is not None:
        return " (a decimal comma: numbers must use a decimal point)"
    for delimiter, delimiter_name in _DELIMITER_NAMES.items():
        if delimiter != layout.delimiter and delimiter in text:
            return (f" (read as {_DELIMITER_NAMES[layout.delimiter]}-separated, from the "
                    f"first line, but this holds a {delimiter_name})")
    return ""
