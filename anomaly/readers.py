"""Read heartbeats from CSV files.

One heartbeat per row; numeric columns are the samples. A header row is detected
automatically, an optional label column is chosen by name, 0-based index, ``first`` or
``last``, and gzip-compressed files are recognised by their magic bytes. Parsing runs on
pyarrow's CSV reader, block by block (see :mod:`anomaly.blocks`); when it rejects a block,
a plain-Python scan of that block finds the first bad line and column so the error can say
exactly where the problem is.

No TensorFlow here: this module is imported by commands that need no model.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable, Iterator

import numpy as np

from .blocks import (
    BLOCK_BYTES,
    UTF8_BOM,
    RawBlock,
    column_description,
    describe_csv_error,
    is_blank,
    iter_blocks,
    parse_block,
    parse_number,
)
from .exceptions import InputError

__all__ = ["Beats", "CsvLayout", "InputSource", "anomaly_truth", "iter_beats",
           "iter_parsed_range", "layout_from_head", "no_rows_message", "open_input",
           "parse_blocks", "parse_number", "read_beats", "sniff_layout"]

#: Delimiters recognised when sniffing the first line, in order of preference.
DELIMITERS = (",", ";", "\t")
_GZIP_MAGIC = b"\x1f\x8b"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_HEAD_BYTES = 1 << 20


@dataclass(frozen=True)
class CsvLayout:
    """What sniffing the head of a CSV file found.

    ``header_line`` is the header's line number in the file (after any leading blank
    lines), 0 without a header. ``numeric_labels``: every label must be a number (the
    normal label is one), so a row with a text label is a bad row.
    """

    delimiter: str
    has_header: bool
    column_names: tuple[str, ...]
    label_index: int | None
    header_line: int = 0
    numeric_labels: bool = False

    @property
    def n_columns(self) -> int:
        return len(self.column_names)

    @property
    def sample_indices(self) -> tuple[int, ...]:
        return tuple(i for i in range(self.n_columns) if i != self.label_index)

    @property
    def first_data_line(self) -> int:
        """The line counted as row 1: the line after the header, or line 1 without one."""
        return self.header_line + 1


@dataclass(frozen=True)
class Beats:
    """Heartbeats read from one file.

    Attributes
    ----------
    path : str
        The file the beats came from, as given.
    values : ndarray of shape (n_beats, n_samples), float64
        The samples, exactly as written in the file.
    labels : ndarray of shape (n_beats,), object, or None
        The label column's text, when a label column was chosen.
    layout : CsvLayout
        Delimiter, header and column names of the file.
    lines : ndarray of shape (n_beats,), int64, or None
        The 1-based physical line number of each beat in the file.
    """

    path: str
    values: np.ndarray
    labels: np.ndarray | None
    layout: CsvLayout
    lines: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.values)

    @property
    def n_samples(self) -> int:
        return self.values.shape[1]

    @property
    def label_name(self) -> str | None:
        index = self.layout.label_index
        return None if index is None else self.layout.column_names[index]


def read_beats(
    path: str | os.PathLike,
    *,
    label_column: str | int | None = None,
    header: bool | None = None,
) -> Beats:
    """Read every heartbeat of a CSV (or ``.csv.gz``) file.

    Parameters
    ----------
    path : str or path-like
        The file to read.
    label_column : str or int, optional
        The label column: a header name, a 0-based index (int or digits), ``"first"`` or
        ``"last"``. Default: no label column, every column is a sample.
    header : bool, optional
        Whether the first row is a header. Default: detected (a first row holding no
        numbers, or whose numbers are exactly ``0, 1, ..., m-1`` as pandas writes, is a
        header).

    Returns
    -------
    Beats

    Raises
    ------
    InputError
        If the file is missing, unreadable, empty, or has a malformed row; the message
        names the file and, where it applies, the line and column.
    """
    chunks = list(iter_beats(path, label_column=label_column, header=header))
    first = chunks[0]
    if len(chunks) == 1:
        return first
    labels = None if first.labels is None else np.concatenate([c.labels for c in chunks])
    values = np.concatenate([c.values for c in chunks])
    lines = np.concatenate([c.lines for c in chunks])
    return Beats(first.path, values, labels, first.layout, lines)


def iter_beats(
    path: str | os.PathLike,
    *,
    label_column: str | int | None = None,
    header: bool | None = None,
    block_size: int = BLOCK_BYTES,
) -> Iterator[Beats]:
    """Yield the heartbeats of a CSV file in chunks of about ``block_size`` bytes.

    Same parameters and errors as :func:`read_beats`; every chunk shares one layout.
    The whole file is validated as it streams, so a bad row late in the file raises
    only when its chunk is reached.
    """
    with open_input(path) as source:
        for chunk, _ in source.iter_parsed(block_size, label_column=label_column, header=header):
            if len(chunk):
                yield chunk


class InputSource:
    """A CSV input opened for streaming: a file, a ``.gz`` file or ``-`` (stdin).

    Reads the raw bytes once, hashing them on the way (``sha256`` once read to the end),
    and yields :class:`Beats` per block. Use as a context manager.
    """

    def __init__(self, path: str | os.PathLike):
        self.name = "<stdin>" if str(path) == "-" else str(path)
        self.path = path
        self.size: int | None = None
        self.layout: CsvLayout | None = None
        if str(path) == "-":
            raw = sys.stdin.buffer
            self._close = False
        else:
            file = _check_readable(path)
            try:
                raw = open(file, "rb")
            except OSError as error:
                raise InputError(f"{path}: {error.strerror or error}") from error
            self.size = os.fstat(raw.fileno()).st_size
            self._close = True
        self._raw = raw
        self._counted = _HashingReader(raw)
        magic = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
        #: Whether the input is gzip-compressed (recognised by its magic bytes).
        self.compressed = magic == _GZIP_MAGIC
        self._stream: IO[bytes] = (
            gzip.GzipFile(fileobj=self._counted, mode="rb") if self.compressed
            else self._counted
        )

    def __enter__(self) -> "InputSource":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._counted.close()
        if self._close:
            self._raw.close()

    @property
    def sha256(self) -> str:
        """SHA-256 of the raw (possibly compressed) bytes read so far: the file's, at the end."""
        return self._counted.hexdigest()

    @property
    def bytes_read(self) -> int:
        """Raw (possibly compressed) bytes read so far, for progress against ``size``."""
        return self._counted.bytes_read

    def read_head(self) -> bytes:
        """The first (decompressed) bytes, enough to sniff the layout; consumes them."""
        try:
            return self._stream.read(_HEAD_BYTES)
        except (OSError, EOFError, zlib.error) as error:
            raise InputError(f"{self.name}: {_describe_read_error(error)}") from error

    def iter_parsed(self, block_size: int = BLOCK_BYTES, *, label_column=None, header=None,
                    normal_label: str | None = None,
                    keep_rejects: bool = False) -> Iterator[tuple[Beats, list]]:
        """Yield ``(beats, rejects)`` per block; see :func:`anomaly.blocks.parse_block`.

        With a label column and a numeric ``normal_label``, a row whose label is not a
        number is a bad row (see :attr:`CsvLayout.numeric_labels`).
        """
        name = self.name
        n_rows = 0
        any_bytes = False
        try:
            for block in iter_blocks(self._stream, block_size):
                any_bytes = True
                if self.layout is None:
                    if _is_blank_block(block.data, block.first_line):
                        continue  # Leading blank lines: the layout comes from the first text.
                    self.layout = layout_from_head(
                        name, block.data, label_column=label_column, header=header,
                        normal_label=normal_label, first_line=block.first_line)
                beats, rejects = _parse(name, block, self.layout, keep_rejects)
                n_rows += len(beats) + len(rejects)
                yield beats, rejects
            self._drain()
        except (OSError, EOFError, zlib.error) as error:
            raise InputError(f"{name}: {_describe_read_error(error)}") from error
        if self.layout is None:
            raise InputError(f"{name}: the file is empty" + ("" if not any_bytes else
                             " (only blank lines)"))
        if n_rows == 0:
            raise InputError(no_rows_message(name, self.layout))

    def _drain(self) -> None:
        # A gzip reader may stop before the raw end; hash every byte of the file.
        while self._counted.read(1 << 20):
            pass


class _HashingReader(io.RawIOBase):
    """Pass reads through, counting the raw bytes and hashing them.

    The hash is updated in a helper thread, in order (hashlib releases the GIL), so that
    hashing is off the critical path of the thread that reads and parses.
    """

    def __init__(self, raw: IO[bytes]):
        import hashlib

        self._raw = raw
        self._hash = hashlib.sha256()
        self._hasher = None
        self._last_update = None
        self.bytes_read = 0

    def hexdigest(self) -> str:
        """SHA-256 of every byte read so far."""
        if self._last_update is not None:
            self._last_update.result()
        return self._hash.hexdigest()

    def close(self) -> None:
        if self._hasher is not None:
            self._hasher.shutdown(wait=True)
        super().close()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._seen(self._raw.read(size))

    def readline(self, size: int = -1) -> bytes:
        return self._seen(self._raw.readline(size))

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _seen(self, data: bytes) -> bytes:
        if data:
            if self._hasher is None:
                from concurrent.futures import ThreadPoolExecutor

                self._hasher = ThreadPoolExecutor(1, thread_name_prefix="anomaly-sha256")
            self._last_update = self._hasher.submit(self._hash.update, data)
        self.bytes_read += len(data)
        return data


def parse_blocks(name: str, blocks: Iterable[RawBlock], layout: CsvLayout, *,
                 keep_rejects: bool = False) -> Iterator[tuple[Beats, list]]:
    """Parse raw blocks of one file into ``(beats, rejects)``; see :func:`parse_block`."""
    for block in blocks:
        yield _parse(name, block, layout, keep_rejects)


def _parse(name: str, block: RawBlock, layout: CsvLayout,
           keep_rejects: bool) -> tuple[Beats, list]:
    parsed = parse_block(name, block, layout, keep_rejects=keep_rejects,
                         skip_header=block.first_line <= layout.header_line)
    return Beats(name, parsed.values, parsed.labels, layout, parsed.lines), parsed.rejects


def iter_parsed_range(path: str | os.PathLike, layout: CsvLayout, start: int, stop: int, *,
                      first_line: int, block_size: int = BLOCK_BYTES, keep_rejects: bool = False,
                      name: str | None = None) -> Iterator[tuple[Beats, list]]:
    """Parse bytes ``start:stop`` of an uncompressed CSV file, cut into the same blocks as
    :meth:`InputSource.iter_parsed` cuts; both ends must be block boundaries (see
    :func:`anomaly.blocks.block_start`) and ``first_line`` the line number at ``start``."""
    name = str(path) if name is None else name
    try:
        with open(path, "rb") as stream:
            stream.seek(start)
            blocks = iter_blocks(stream, block_size, first_line=first_line, start=start, stop=stop)
            yield from parse_blocks(name, blocks, layout, keep_rejects=keep_rejects)
    except OSError as error:
        raise InputError(f"{name}: {_describe_read_error(error)}") from error


def no_rows_message(name: str, layout: CsvLayout) -> str:
    what = "only a header row" if layout.has_header else "no rows"
    return f"{name}: no heartbeats in the file ({what})"


def open_input(path: str | os.PathLike) -> InputSource:
    """Open a CSV file, ``.csv.gz`` file or ``-`` (stdin) for streaming; see InputSource."""
    return InputSource(path)


def sniff_layout(
    path: str | os.PathLike,
    *,
    label_column: str | int | None = None,
    header: bool | None = None,
    normal_label: str | None = None,
) -> CsvLayout:
    """Find the delimiter, header and label column of a CSV file from its first lines."""
    with open_input(path) as source:
        head = source.read_head()
    return layout_from_head(str(path), head, label_column=label_column, header=header,
                            normal_label=normal_label)


def layout_from_head(
    name: str,
    head: bytes,
    *,
    label_column: str | int | None = None,
    header: bool | None = None,
    normal_label: str | None = None,
    first_line: int = 1,
) -> CsvLayout:
    """Sniff the layout from the first bytes of a (decompressed) CSV file.

    ``head`` starts at line ``first_line`` of the file (1 unless leading blank lines were
    skipped); the layout comes from its first non-blank line.
    """
    found = _first_text_line(name, head, first_line)
    if found is None:
        raise InputError(f"{name}: the file is empty")
    line_number, line = found
    delimiter = _sniff_delimiter(line)
    try:
        first_fields = next(csv.reader([line], delimiter=delimiter, strict=True))
    except csv.Error as error:
        raise InputError(f"{name} line {line_number}: {describe_csv_error(error)}") from None
    has_header = _looks_like_header(first_fields) if header is None else header
    if has_header:
        column_names = tuple(field.strip() for field in first_fields)
        if column_names[0] == "" and len(column_names) > 1:
            raise InputError(
                f"{name} line {line_number} column 1: the header's first name is empty, as "
                "pandas writes for its index column; an index is not a sample (write the "
                "file with index=False)")
    else:
        column_names = tuple(str(i) for i in range(len(first_fields)))
    label_index = _resolve_label_column(name, label_column, column_names, has_header)
    if len(column_names) - (label_index is not None) < 1:
        raise InputError(f"{name}: no sample columns (only the label column)")
    numeric_labels = (label_index is not None and normal_label is not None
                      and parse_number(normal_label) is not None)
    return CsvLayout(delimiter, has_header, column_names, label_index,
                     header_line=line_number if has_header else 0,
                     numeric_labels=numeric_labels)


def _looks_like_header(fields: list[str]) -> bool:
    """A header row holds no numbers, or its numbers are exactly ``0, 1, ..., m-1``.

    pandas names the columns of a frame built from an array ``0, 1, ...``; beside them may
    stand a label column's name and the empty name of pandas' index column. A first row
    mixing other numbers and text (``1,,3`` or ``1,2,N`` with a text label) is data: it is
    parsed, and rejected with its line and column if malformed, never skipped.
    """
    stripped = [field.strip() for field in fields]
    numbers = [field for field in stripped if parse_number(field) is not None]
    if not numbers:
        return any(stripped)
    names = len(stripped) - len(numbers)
    return names <= 2 and numbers == [str(i) for i in range(len(numbers))]


def _sniff_delimiter(line: str) -> str:
    counts = {delimiter: line.count(delimiter) for delimiter in DELIMITERS}
    if counts[","] == 0 and max(counts.values()) > 0:
        return max(counts, key=counts.get)
    return ","


def _resolve_label_column(
    name: str, label_column: str | int | None, column_names: tuple[str, ...], has_header: bool
) -> int | None:
    if label_column is None:
        return None
    n_columns = len(column_names)
    spec = str(label_column).strip()
    if spec == "first":
        return 0
    if spec == "last":
        return n_columns - 1
    if has_header and spec in column_names:
        matches = [index for index, column in enumerate(column_names) if column == spec]
        if len(matches) > 1:
            raise InputError(
                f"{name}: label column {spec!r} is ambiguous: the header names "
                f"{len(matches)} columns so ({', '.join(str(i) for i in matches)}, 0-based); "
                "give its 0-based index")
        return matches[0]
    if spec.lstrip("-").isdigit():
        index = int(spec)
        if not 0 <= index < n_columns:
            raise InputError(
                f"{name}: label column index {index} is out of range "
                f"(the file has {n_columns} columns, indices 0 to {n_columns - 1})"
            )
        return index
    if not has_header:
        raise InputError(
            f"{name}: label column {spec!r} not found: the file has no header row "
            "(use a 0-based index, 'first' or 'last')"
        )
    raise InputError(f"{name}: label column {spec!r} not found in the header")


def _describe_read_error(error: BaseException) -> str:
    if (isinstance(error, (EOFError, zlib.error, gzip.BadGzipFile))
            or "gzip" in str(error).lower()):
        return "the gzip data is corrupt or truncated"
    return str(error)


def _check_readable(path: str | os.PathLike) -> Path:
    file = Path(path)
    if not file.exists():
        raise InputError(f"{path}: no such file")
    if file.is_dir():
        raise InputError(f"{path}: is a directory, expected a CSV file")
    if not os.access(file, os.R_OK):
        raise InputError(f"{path}: permission denied")
    return file


def _is_blank_block(data: bytes, first_line: int) -> bool:
    if first_line == 1 and data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM):]
    return is_blank(data)


def _first_text_line(name: str, head: bytes, first_line: int = 1) -> tuple[int, str] | None:
    """``(line number, text)`` of the first non-blank line of the head, or None.

    Only this line decides the layout, so only it must be text: a bad byte further down is
    reported with its own line and column, like any other bad row.
    """
    if first_line == 1 and head.startswith(_UTF16_BOMS):
        raise InputError(f"{name}: looks like UTF-16 text (it starts with a UTF-16 "
                         "byte-order mark); save it as UTF-8")
    if first_line == 1 and head.startswith(UTF8_BOM):
        head = head[len(UTF8_BOM):]
    if b"\n" not in head[:_HEAD_BYTES] and b"\r" in head[:_HEAD_BYTES].rstrip(b"\r"):
        raise InputError(f"{name}: lines end in CR only (old Mac line endings); "
                         "save it with LF or CRLF line endings")
    line_number, position = first_line, 0
    while position < len(head):
        end = head.find(b"\n", position)
        end = len(head) if end < 0 else end
        raw = head[position:end].removesuffix(b"\r")
        if not is_blank(raw):
            break
        line_number, position = line_number + 1, end + 1
    else:
        return None
    if _looks_like_utf16(raw):
        raise InputError(f"{name}: looks like UTF-16 text (every other byte of line "
                         f"{line_number} is zero); save it as UTF-8")
    if b"\x00" in raw:
        raise InputError(f"{name}: not a text CSV file (binary data: a NUL byte on line "
                         f"{line_number})")
    try:
        return line_number, raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(
            f"{name}: not a text CSV file (line {line_number}: byte 0x{raw[error.start]:02x} "
            f"at offset {error.start} is not UTF-8)") from None


def _looks_like_utf16(line: bytes) -> bool:
    """UTF-16 without a byte-order mark: ASCII text with every other byte zero."""
    sample = line[:64]
    return len(sample) >= 4 and any(
        not any(sample[parity::2]) and all(sample[1 - parity::2]) for parity in (0, 1))


def anomaly_truth(beats: Beats, normal_label: str = "1") -> np.ndarray:
    """Turn a file's labels into 0 (normal) / 1 (anomaly) using ``normal_label``.

    When ``normal_label`` is a number, labels are compared as numbers (``1`` equals
    ``1.0``) and every label must be numeric; otherwise they are compared as text.

    Raises
    ------
    InputError
        If the beats carry no labels, or a label is not numeric where numbers are expected.
    """
    if beats.labels is None:
        raise InputError(f"{beats.path}: no label column was chosen")
    labels = [str(label).strip() for label in beats.labels]
    normal_number = parse_number(normal_label.strip())
    if normal_number is None:
        return np.fromiter((label != normal_label.strip() for label in labels), np.int8, len(labels))
    truth = np.empty(len(labels), dtype=np.int8)
    for row, label in enumerate(labels):
        number = parse_number(label)
        if number is None or not np.isfinite(number):
            where = f"line {beats.lines[row]}" if beats.lines is not None else f"row {row + 1}"
            raise InputError(
                f"{beats.path} {where}{column_description(beats.layout.label_index, beats.layout)}"
                f": expected a numeric label (the normal label {normal_label!r} is a number), "
                f"got {label[:40]!r}"
            )
        truth[row] = number != normal_number
    return truth
