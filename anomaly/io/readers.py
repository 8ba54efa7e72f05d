"""Read heartbeats from CSV files.

One heartbeat per row; numeric columns are the samples. A header row is detected
automatically, an optional label column is chosen by name, 0-based index, ``first`` or
``last``, and gzip-compressed files are recognised by their magic bytes. Files are read in
line-aligned blocks (:mod:`anomaly.io.blocks`) and each block is parsed by the layout
sniffed from the file's head (:mod:`anomaly.io.csv_parser`), so memory stays flat however
large the file, and every error names its line and column.

No TensorFlow here: this module is imported by commands that need no model.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import sys
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Iterator, Mapping

import numpy as np

from ..exceptions import InputError
from .beats import Beats
from .blocks import BLOCK_BYTES, LineTooLong, RawBlock, iter_blocks
from .layout import CsvLayout
from .csv_parser import (
    HEAD_BYTES,
    is_blank_block,
    layout_from_head,
    no_rows_message,
    parse_block,
)

if TYPE_CHECKING:
    from ..model.context import BeatContext

__all__ = ["STDIO", "Beats", "InputSource", "TrainingData", "check_readable", "input_stem",
           "iter_beats", "iter_parsed_range", "normal_rows", "open_input", "read_beats",
           "read_normal_beats"]

_GZIP_MAGIC = b"\x1f\x8b"
#: The name that means standard input (and, for outputs, standard output).
STDIO = "-"


def read_beats(
    path: str | os.PathLike,
    *,
    label_column: str | int | None = None,
    header: bool | None = None,
    normal_label: str | None = None,
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
    normal_label : str, optional
        With a label column, the label meaning normal: ``truth`` is then 0 where a row's
        label is it and 1 elsewhere. When it is a number, labels compare as numbers
        (``1`` equals ``1.0``) and a label that is not a number is a bad row.

    Returns
    -------
    Beats

    Raises
    ------
    InputError
        If the file is missing, unreadable, empty, or has a malformed row; the message
        names the file and, where it applies, the line and column.
    """
    chunks = list(iter_beats(path, label_column=label_column, header=header,
                             normal_label=normal_label))
    first = chunks[0]
    if len(chunks) == 1:
        return first

    def joined(name: str) -> np.ndarray | None:
        parts = [getattr(chunk, name) for chunk in chunks]
        return None if parts[0] is None else np.concatenate(parts)

    ids = {name: np.concatenate([chunk.ids[name] for chunk in chunks]) for name in first.ids}
    return Beats(joined("values"), joined("lines"), ids, joined("labels"), first.label_header,
                 joined("truth"), layout=first.layout)


def iter_beats(
    path: str | os.PathLike,
    *,
    label_column: str | int | None = None,
    header: bool | None = None,
    normal_label: str | None = None,
    block_size: int = BLOCK_BYTES,
) -> Iterator[Beats]:
    """Yield the heartbeats of a CSV file in chunks of about ``block_size`` bytes.

    Same parameters and errors as :func:`read_beats`; every chunk shares one layout.
    The whole file is validated as it streams, so a bad row late in the file raises
    only when its chunk is reached.
    """
    with open_input(path) as source:
        for chunk in source.iter_parsed(block_size, label_column=label_column,
                                        header=header, normal_label=normal_label):
            if len(chunk):
                yield chunk


@dataclass(frozen=True)
class TrainingData:
    """The normal beats of a training input and what was left out.

    ``n_read``: beats read; ``skipped``: which were left out (None when all are normal),
    for instance "rows without the normal label 'N' in column 'label'";
    ``settings``: the detector's parameters measured for beats chosen this way, which a fit
    uses unless told otherwise (a recording's dominant beats:
    :data:`anomaly.recordings.RECORDING_SETTINGS`; empty: the detector's defaults).
    ``context``: the names of the context columns after each beat's samples (empty
    without).
    """

    normal: np.ndarray
    n_read: int
    skipped: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    context: tuple[str, ...] = ()

    @property
    def n_skipped(self) -> int:
        return self.n_read - len(self.normal)

    @property
    def left_out(self) -> str:
        """``12 beats outside the dominant rhythm ...`` (``1 beat outside ...``): how many
        were left out, and which (empty when none was)."""
        if self.skipped is None:
            return ""
        skipped = self.skipped if self.n_skipped != 1 else re.sub(r"^(beat|row)s\b", r"\1",
                                                                  self.skipped)
        return f"{self.n_skipped} {skipped}"

    def among(self, n_read: int) -> "TrainingData":
        """These beats, chosen among the readable beats of ``n_read`` (see
        :attr:`anomaly.io.beats.Beats.readable`), saying that the others were left out
        too: "beats: 3 in unreadable stretches, 12 outside ..."."""
        unreadable = n_read - self.n_read
        if unreadable == 0:
            return self
        parts = [f"{unreadable} in unreadable stretches"]
        if self.skipped is not None:
            parts.append(self.left_out)
        return replace(self, n_read=n_read, skipped="beats: " + ", ".join(parts))


def require_readable(path: str | os.PathLike, readable: np.ndarray, where: str = "rows",
                     least: int = 2) -> None:
    """Refuse to train on fewer than ``least`` readable beats when some are marked
    unreadable (see :attr:`Beats.readable`; with none marked, the count of beats is checked
    where they are chosen), naming ``where`` they are ("rows", "beats between 00:00 and
    05:00 of lead MLII")."""
    if readable.sum() < least and not readable.all():
        raise InputError(f"{path}: {int(readable.sum())} of {len(readable)} {where} are "
                         f"readable (the others are marked unreadable); at least {least} are "
                         "needed to train")


def normal_rows(path: str | os.PathLike, values: np.ndarray, truth: np.ndarray | None,
                normal_label: str, label_name: str | None, *,
                unit: str = "rows") -> TrainingData:
    """The rows of ``values`` whose ``truth`` is 0 (all without truth), at least two; the
    label column's name and the normal label are for messages, which call the rows
    ``unit`` (a recording's are beats, labelled by its reference annotations: their
    ``label_name`` None)."""
    is_normal = np.ones(len(values), dtype=bool) if truth is None else truth == 0
    where = "in the reference annotations" if label_name is None else f"in column {label_name!r}"
    if is_normal.sum() < 2:
        which = (unit if truth is None else
                 f"{unit} with the normal label {normal_label!r} {where}")
        raise InputError(f"{path}: {int(is_normal.sum())} {which}; at least 2 are needed to "
                         "train")
    skipped = (None if truth is None else
               f"{unit} whose label {where} is not {normal_label!r}")
    return TrainingData(values[is_normal], len(values), skipped)


def read_normal_beats(
    path: str | os.PathLike,
    *,
    label_column: str | int | None = None,
    normal_label: str = "1",
    header: bool | None = None,
    context: BeatContext | None = None,
    context_required: bool = False,
) -> TrainingData:
    """Read a training file; with a label column keep only the rows labelled normal.

    Rows whose ``unreadable`` id is set (a recording's beat in an unreadable stretch, as
    ``anomaly beats`` writes it) are never trained on. With ``context``, each row's
    context follows its samples when the file has the id columns it is computed from
    (``TrainingData.context`` then names it); a file with none of them is read without,
    unless ``context_required``.

    Raises
    ------
    InputError
        As :func:`read_beats`; when fewer than 2 rows are left to train on; when the
        file has some of the context's columns but not all, or none of them and
        ``context_required``.
    """
    beats = read_beats(path, label_column=label_column, header=header,
                       normal_label=normal_label)
    readable = beats.readable
    require_readable(path, readable)
    truth = None if beats.truth is None else beats.truth[readable]
    context = _context_of(path, beats, context, context_required)
    values = beats.values if context is None else context.appended(beats.values, beats.ids,
                                                                    str(path))
    data = normal_rows(path, values[readable], truth, normal_label, beats.label_name)
    if context is not None:
        data = replace(data, context=context.names)
        for name, column in zip(context.names, data.normal[:, -len(context.names):].T):
            if np.ptp(column) == 0:
                raise InputError(f"{path}: the {context.description}'s {name} is "
                                 f"{column[0]:g} for every training beat, which teaches the "
                                 "model nothing (intervals empty, 0 or not finite read as a "
                                 "beat on time); fit with --no-rr-context to train on the "
                                 "beats' shape alone")
    return data.among(len(beats))


def _context_of(path: str | os.PathLike, beats: Beats, context: BeatContext | None,
                required: bool) -> BeatContext | None:
    """``context`` when ``beats`` have every id column it is computed from, None when they
    have none of them (unless ``required``); else an InputError saying what the file
    lacks."""
    missing = [] if context is None else context.missing(beats.ids)
    if not missing:
        return context
    if required or len(missing) < len(context.columns):
        headless = beats.layout is not None and not beats.layout.has_header
        found = "has no header row" if headless else f"lacks {', '.join(missing)}"
        raise InputError(f"{path}: the {context.description} needs the columns "
                         f"{', '.join(context.columns)} (as 'anomaly beats' writes them), "
                         f"and the file {found}; fit with --no-rr-context to train on the "
                         "beats' shape alone")
    return None


class InputSource:
    """A CSV input opened for streaming: a file, a ``.gz`` file or ``-`` (stdin).

    Reads the raw bytes once, hashing them on the way (``sha256`` once read to the end),
    and yields :class:`~anomaly.io.beats.Beats` per block. ``name`` names it in messages (default: the path
    as given). Use as a context manager.
    """

    def __init__(self, path: str | os.PathLike, *, name: str | None = None):
        stdin = str(path) == STDIO
        #: The input's name in messages: as given, or ``<stdin>``.
        self.name = name or ("<stdin>" if stdin else str(path))
        self.path = path
        self.size: int | None = None
        self.layout: CsvLayout | None = None
        if stdin:
            raw = sys.stdin.buffer
            self._close = False
        else:
            file = check_readable(path)
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
            return self._stream.read(HEAD_BYTES)
        except (OSError, EOFError, zlib.error) as error:
            raise InputError(f"{self.name}: {_describe_read_error(error)}") from error

    def iter_parsed(self, block_size: int = BLOCK_BYTES, *, label_column=None, header=None,
                    normal_label: str | None = None, limits=None,
                    keep_rejects: bool = False) -> Iterator[Beats]:
        """Yield the beats of each block (or piece of one), with the rows it rejected; see
        :func:`anomaly.io.csv_parser.parse_block`.

        The layout is sniffed from the first block that is not blank. With a label column
        and ``normal_label``, each row's label is decided as it is parsed (``truth``).
        ``limits`` (samples per beat and their range, as
        :class:`anomaly.scoring.base.ModelLimits` has them) are checked as the layout is
        sniffed and as rows are parsed.
        """
        name = self.name
        n_rows = 0
        any_bytes = False
        try:
            for block in iter_blocks(self._stream, block_size):
                any_bytes = True
                if self.layout is None:
                    if is_blank_block(block.data, block.first_line):
                        continue  # Leading blank lines: the layout comes from the first text.
                    self.layout = layout_from_head(
                        name, block.data, label_column=label_column, header=header,
                        normal_label=normal_label, first_line=block.first_line,
                        **({} if limits is None else {"samples": limits.samples,
                                                      "value_range": limits.value_range}))
                for beats in _parse(name, block, self.layout, keep_rejects):
                    n_rows += len(beats) + len(beats.rejects)
                    yield beats
            self._drain()
        except LineTooLong as error:
            raise InputError(f"{name} {error}") from None
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


def _parse(name: str, block: RawBlock, layout: CsvLayout, keep_rejects: bool) -> Iterator[Beats]:
    return parse_block(name, block, layout, keep_rejects=keep_rejects,
                       skip_header=block.first_line <= layout.header_line)


def iter_parsed_range(path: str | os.PathLike, layout: CsvLayout, start: int, stop: int, *,
                      first_line: int, block_size: int = BLOCK_BYTES, keep_rejects: bool = False,
                      name: str | None = None) -> Iterator[Beats]:
    """Parse bytes ``start:stop`` of an uncompressed CSV file, cut into the same blocks as
    :meth:`InputSource.iter_parsed` cuts; both ends must be block boundaries (see
    :func:`anomaly.io.blocks.block_start`) and ``first_line`` the line number at ``start``."""
    name = str(path) if name is None else name
    try:
        with open(path, "rb") as stream:
            stream.seek(start)
            for block in iter_blocks(stream, block_size, first_line=first_line, start=start,
                                     stop=stop):
                yield from _parse(name, block, layout, keep_rejects)
    except LineTooLong as error:
        raise InputError(f"{name} {error}") from None
    except OSError as error:
        raise InputError(f"{name}: {_describe_read_error(error)}") from error


def open_input(path: str | os.PathLike) -> InputSource:
    """Open a CSV file, ``.csv.gz`` file or ``-`` (stdin) for streaming; see InputSource."""
    return InputSource(path)


def _describe_read_error(error: BaseException) -> str:
    if (isinstance(error, (EOFError, zlib.error, gzip.BadGzipFile))
            or "gzip" in str(error).lower()):
        return "the gzip data is corrupt or truncated"
    return str(error)


def input_stem(input_name: str) -> str:
    """An input's name without its directory and data endings, the stem of the files
    named after it: ``in/day1.csv.gz`` -> ``day1``, ``mitdb/208.hea`` -> ``208``."""
    base = "stdin" if input_name == STDIO else Path(input_name).name
    for ending in (".gz", ".csv", ".txt", ".hea", ".edf"):
        base = base.removesuffix(ending)
    return base


def check_readable(path: str | os.PathLike, expected: str = "a CSV file") -> Path:
    """``path`` as a Path, or an InputError unless it is an existing, readable file.

    A device (``/dev/zero``, a disk, a terminal) is refused: it may never end. A FIFO
    is read like standard input.
    """
    file = Path(path)
    if not file.exists():
        raise InputError(f"{path}: no such file")
    if file.is_dir():
        raise InputError(f"{path}: is a directory, expected {expected}")
    if file.is_char_device() or file.is_block_device():
        raise InputError(f"{path}: is a device, not a file (a device may never end)")
    if not os.access(file, os.R_OK):
        raise InputError(f"{path}: permission denied")
    return file
