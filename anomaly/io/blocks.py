"""Cut a byte stream into line-aligned blocks.

Block boundaries depend only on the bytes and the block size: block ``k`` starts at the
first line start at or after byte ``k * block_bytes``. A reader streaming a file from the
top and a worker seeking to a byte range therefore cut exactly the same blocks, which is
what makes the Dask engine's output byte-identical to the local engine's.

Each block knows the line number of its first line, so every row and every error can be
named by its physical line in the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Iterator

#: Default block size: large enough for pyarrow's threads, small enough for flat memory.
BLOCK_BYTES = 8 << 20
#: The longest line read: a beat's row is a few kilobytes, so a longer line is not data,
#: and reading on to its end could take any amount of memory.
MAX_LINE_BYTES = 1 << 20


class LineTooLong(Exception):
    """A line runs on past :data:`MAX_LINE_BYTES`; ``line`` is its number."""

    def __init__(self, line: int):
        super().__init__(f"line {line}: longer than {MAX_LINE_BYTES:,} bytes (a beat's row "
                         "is a few kilobytes; is this a CSV file of beats?)")
        self.line = line


@dataclass(frozen=True)
class RawBlock:
    """Whole lines of a file: ``data`` starts at line ``first_line`` (1-based) and byte
    ``offset``, and holds ``newlines`` line feeds (counted once, when the block is cut)."""

    first_line: int
    data: bytes
    offset: int = 0
    newlines: int | None = None


def iter_blocks(stream: IO[bytes], block_bytes: int = BLOCK_BYTES, *, first_line: int = 1,
                start: int = 0, stop: int | None = None) -> Iterator[RawBlock]:
    """Yield line-aligned blocks of ``stream``, whose current position is byte ``start``.

    ``start`` must be a block boundary (0, or what :func:`block_start` returned) and
    ``first_line`` the line number there. With ``stop`` (also a block boundary), reading ends
    there; otherwise at the end of the stream. A block is at most ``block_bytes`` plus one
    line of at most :data:`MAX_LINE_BYTES`.

    Raises
    ------
    LineTooLong
        When a line runs on past :data:`MAX_LINE_BYTES`: the line that ends a block, or
        any line inside one.
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
            rest = _read_to_line_end(stream, data)
            if len(rest) > MAX_LINE_BYTES:
                raise LineTooLong(line + data.count(b"\n"))
            data += rest
        if not data:
            return
        newlines = _check_line_lengths(data, line)
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


def count_newlines(path: str, start: int, stop: int) -> int:
    """How many line ends bytes ``start:stop`` of a file hold."""
    count = 0
    with open(path, "rb") as stream:
        stream.seek(start)
        remaining = stop - start
        while remaining > 0:
            chunk = stream.read(min(remaining, 16 << 20))
            if not chunk:
                break
            count += chunk.count(b"\n")
            remaining -= len(chunk)
    return count


def _check_line_lengths(data: bytes, first_line: int) -> int:
    """The line ends in ``data`` (lines from ``first_line``); LineTooLong at the first line
    longer than :data:`MAX_LINE_BYTES`, wherever it is in the block, so that the limit does
    not depend on where block edges fall."""
    if len(data) <= MAX_LINE_BYTES:
        return data.count(b"\n")
    import numpy as np

    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n"))
    lengths = np.diff(ends, prepend=-1)  # Each line with its line end.
    if len(ends) < 1 or ends[-1] != len(data) - 1:
        lengths = np.append(lengths, len(data) - 1 - (ends[-1] if len(ends) else -1))
    too_long = np.flatnonzero(lengths > MAX_LINE_BYTES)
    if len(too_long):
        raise LineTooLong(first_line + int(too_long[0]))
    return len(ends)


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
    """The bytes after ``data`` up to and including the next newline (or EOF), but never
    much more than :data:`MAX_LINE_BYTES` of them."""
    if data.endswith(b"\n"):
        return b""
    parts, size = [], 0
    while size <= MAX_LINE_BYTES:
        chunk = stream.readline(1 << 16)
        parts.append(chunk)
        size += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            break
    return b"".join(parts)
