"""The beats CSV format: its layout (:class:`anomaly.io.layout.CsvLayout`), sniffed from the
head of a file, and the parse of blocks of lines by that layout.

A layout says what sniffing the first lines found: the delimiter, whether there is a
header, the column names, the label column and the normal label. Blocks (see
:mod:`anomaly.io.blocks`) are parsed with pyarrow; when pyarrow rejects anything, a
line-by-line scan in plain Python, the reference, finds the first bad line and column so
the error can say exactly where the problem is. Labels are decided here, once: with a
normal label, each row's label is checked and turned into 0 (normal) or 1 (anomaly).

Blank lines (empty or only spaces and tabs) are not beats: they are skipped but keep their
line numbers. No TensorFlow here.
"""

from __future__ import annotations

import csv
import io
import math
import re
from typing import Iterator

import numpy as np

from ..exceptions import InputError, length_mismatch
from .beats import Beats, Reject
from .layout import (BEATS_LABEL_COLUMN, ID_COLUMN_TYPES, ID_COLUMNS, LABEL_LIKE_COLUMNS,
                     PADDING, CsvLayout, parse_count, parse_number)
from .blocks import MAX_LINE_BYTES, LineTooLong, RawBlock

#: Delimiters recognised when sniffing the first line, in order of preference.
DELIMITERS = (",", ";", "\t")
#: The UTF-8 byte-order mark some editors (Excel among them) write at the start of a file.
UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
#: Bytes of the head that sniffing looks at: enough to see a first line over the limit.
HEAD_BYTES = MAX_LINE_BYTES + 1
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
#: Lines read per piece when a block is read line by line.
SCAN_LINES = 1 << 16
#: The most fields a line is split into: a beat has hundreds of samples, not millions.
MAX_FIELDS = 1 << 16
#: A beats file of at most this many sample columns, scored by a model of more, is more
#: likely a recording's samples per lead (a time column and 12 leads) than beats: the
#: error says how to read it so.
SIGNAL_LIKE_COLUMNS = 16
# -- the layout -------------------------------------------------------------------------

def layout_from_head(
    name: str,
    head: bytes,
    *,
    label_column: str | int | None = None,
    header: bool | None = None,
    normal_label: str | None = None,
    samples: int | None = None,
    value_range: tuple[float, float] | None = None,
    first_line: int = 1,
) -> CsvLayout:
    """Sniff the layout from the first bytes of a (decompressed) CSV file.

    ``head`` starts at line ``first_line`` of the file (1 unless leading blank lines were
    skipped); the layout comes from its first non-blank line. ``label_column`` and
    ``header`` are as for :func:`anomaly.io.readers.read_beats`; ``normal_label`` is kept in
    the layout, for the parser to decide each row's label. ``samples``: the samples per
    beat the rows must hold (the model's input length), checked on the first line, before
    any block is parsed; ``value_range``: see :class:`CsvLayout`.

    Raises
    ------
    InputError
        The head is empty or not UTF-8 text, its first line is longer than
        :data:`~anomaly.io.blocks.MAX_LINE_BYTES` or splits into more than
        :data:`MAX_FIELDS` fields, the label column is not in the file, or the samples
        are not ``samples``.
    """
    found = first_text_line(name, head, first_line)
    if found is None:
        raise InputError(f"{name}: the file is empty")
    line_number, line = found
    delimiter = _sniff_delimiter(line)
    if line.count(delimiter) >= MAX_FIELDS:
        raise InputError(f"{name} line {line_number}: more than {MAX_FIELDS:,} fields (a beat "
                         "has hundreds of samples; is this a CSV file of beats?)")
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
    id_indices = tuple(i for i, column in enumerate(column_names)
                       if has_header and column in ID_COLUMNS and i != label_index)
    id_names = [column_names[i] for i in id_indices]
    repeated = next((column for column in id_names if id_names.count(column) > 1), None)
    if repeated is not None:
        raise InputError(f"{name} line {line_number}: the header names column {repeated!r} "
                         f"{id_names.count(repeated)} times; which is the beat's is unclear: "
                         "keep one")
    if label_column is None and id_indices and BEATS_LABEL_COLUMN in column_names:
        # A beats file's labels are carried as they are; --label-column decides them.
        label_index, normal_label = column_names.index(BEATS_LABEL_COLUMN), None
    if label_column is None and has_header:
        _refuse_label_like_samples(name, column_names, id_indices, label_index)
    n_samples = len(column_names) - (label_index is not None) - len(id_indices)
    if n_samples < 1:
        raise InputError(f"{name}: no sample columns (only the label column)")
    if samples is not None and n_samples != samples:
        # One column too many, and none named the label: most often the label (the
        # demo's heldout.csv ends in one).
        hint = ("; one more than the model's: a label column not named as one?"
                if n_samples == samples + 1 and label_index is None else
                "; a few columns a line, as a recording's samples per lead are: read it as "
                "a recording with --signal (and --fs)"
                if n_samples <= SIGNAL_LIKE_COLUMNS < samples else "")
        raise InputError(f"{name} line {line_number}: {length_mismatch(samples, n_samples)}"
                         f"{hint}")
    return CsvLayout(delimiter, has_header, column_names, label_index,
                     header_line=line_number if has_header else 0, normal_label=normal_label,
                     value_range=value_range, id_indices=id_indices)


def _refuse_label_like_samples(name: str, column_names: tuple[str, ...],
                               id_indices: tuple[int, ...], label_index: int | None) -> None:
    """Refuse a sample column whose header name says it holds labels (``label``,
    ``class``, ``target``, ...: :data:`~anomaly.io.layout.LABEL_LIKE_COLUMNS`), when no
    label column was chosen: read as a sample, the label would be trained on and scored as
    one more point of the beat. Refused rather than taken as the labels, because which
    value is normal must be said too (``--normal-label``)."""
    for index, column in enumerate(column_names):
        if index != label_index and index not in id_indices and \
                column.lower() in LABEL_LIKE_COLUMNS:
            raise InputError(f"{name}: column {column!r} looks like labels, not samples; give "
                             f"--label-column {column} to read it as the labels (and "
                             "--normal-label for the normal one), or rename it")


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
    index = parse_count(spec, signed=True)
    if index is not None:
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


def no_rows_message(name: str, layout: CsvLayout) -> str:
    what = "only a header row" if layout.has_header else "no rows"
    return f"{name}: no heartbeats in the file ({what})"


def is_blank_block(data: bytes, first_line: int) -> bool:
    """Whether a block holds only blank lines (a byte-order mark on line 1 aside)."""
    if first_line == 1 and data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM):]
    return is_blank(data)


def first_text_line(name: str, head: bytes, first_line: int = 1) -> tuple[int, str] | None:
    """``(line number, text)`` of the first non-blank line of the head, or None.

    Only this line decides the layout, so only it must be text: a bad byte further down is
    reported with its own line and column, like any other bad row.
    """
    if first_line == 1:
        refuse_utf16(name, head)
    if first_line == 1 and head.startswith(UTF8_BOM):
        head = head[len(UTF8_BOM):]
    if b"\n" not in head[:HEAD_BYTES] and b"\r" in head[:HEAD_BYTES].rstrip(b"\r"):
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
    if len(raw) > MAX_LINE_BYTES:
        raise InputError(f"{name} {LineTooLong(line_number)}")
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


def refuse_utf16(name: str, head: bytes) -> None:
    """An InputError naming ``name`` when a file's first bytes (``head``) are UTF-16 text,
    with a byte-order mark or without (every other byte of its first line zero)."""
    if head.startswith(_UTF16_BOMS):
        raise InputError(f"{name}: looks like UTF-16 text (it starts with a UTF-16 "
                         "byte-order mark); save it as UTF-8")
    if _looks_like_utf16(head.split(b"\n", 1)[0]):
        raise InputError(f"{name}: looks like UTF-16 text (every other byte of line 1 is "
                         "zero); save it as UTF-8")


def _looks_like_utf16(line: bytes) -> bool:
    """UTF-16 without a byte-order mark: ASCII text with every other byte zero."""
    sample = line[:64]
    return len(sample) >= 4 and any(
        not any(sample[parity::2]) and all(sample[1 - parity::2]) for parity in (0, 1))



# -- parsing blocks ---------------------------------------------------------------------

def parse_block(name: str, block: RawBlock, layout: CsvLayout, *, keep_rejects: bool = False,
                skip_header: bool = False) -> Iterator[Beats]:
    """Parse one block into float64 samples (and labels), exactly as written: one
    :class:`~anomaly.io.beats.Beats`, or several pieces of it when it is read line by
    line.

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
        Delimiter, column count, header line, label column and normal label, from
        :func:`layout_from_head`.
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
        values, labels, truth, ids = parsed
        newlines = block.newlines if data is block.data else None
        lines = _row_lines(data, first_line, len(values), newlines)
        if lines is not None:
            yield _beats(layout, lines, values, labels, truth, [], ids)
            return
    yield from _scan(name, data, first_line, layout, keep_rejects)


def _beats(layout: CsvLayout, lines: np.ndarray, values: np.ndarray,
           labels: np.ndarray | None, truth: np.ndarray | None, rejects: list[Reject],
           ids: dict[str, np.ndarray]) -> Beats:
    return Beats(values, lines, ids, labels, layout.label_header, truth, rejects,
                 layout=layout)


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


def _parse_fast(data: bytes, layout: CsvLayout):
    """``(values, labels, truth, ids)`` by pyarrow's parse of whole lines; None if any row
    is bad or pyarrow objects at all."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv

    if is_blank(data):
        return _empty(layout)
    names = [f"c{i}" for i in range(layout.n_columns)]
    types = {names[i]: pa.float64() for i in layout.sample_indices}
    # Integer ids are read as text, and checked below by the row-by-row read's rule.
    arrow_types = {"text": pa.string(), "integer": pa.string(), "number": pa.float64()}
    for index in layout.id_indices:
        types[names[index]] = arrow_types[ID_COLUMN_TYPES[layout.column_names[index]]]
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
    if layout.value_range is not None and len(values):
        low, high = layout.value_range
        if values.min() < low or values.max() > high:
            return None
    ids = {}
    for index in layout.id_indices:
        name, column = layout.column_names[index], table.column(index)
        kind = ID_COLUMN_TYPES[name]
        if kind == "text":
            texts = [(text or "").strip(PADDING) for text in column.to_pylist()]
            if any(_undecodable(text) for text in texts):
                return None
            ids[name] = np.array(texts, dtype=object)
        elif kind == "integer":
            # Read as text and checked by the row-by-row rule (INTEGER_CELL), then cast: a
            # column that breaks it is left to the row-by-row read, which names the row.
            trimmed = pc.utf8_trim(column, PADDING)
            if column.null_count or not pc.all(pc.match_substring_regex(
                    trimmed, f"^{INTEGER_CELL.pattern}$")).as_py():
                return None
            try:
                ids[name] = pc.cast(trimmed, pa.int64()).to_numpy(zero_copy_only=False)
            except pa.ArrowInvalid:  # Beyond int64.
                return None
        else:
            ids[name] = column.to_numpy(zero_copy_only=False)
    if layout.label_index is None:
        return values, None, None, ids
    column = table.column(layout.label_index)
    if column.null_count:
        return None
    reader = _LabelReader(layout)
    verdicts = [reader.read(text) for text in column.to_pylist()]
    if any(problem is not None for problem, _, _ in verdicts):
        return None
    return (values, *reader.arrays([label for _, label, _ in verdicts],
                                   [anomaly for _, _, anomaly in verdicts]), ids)


def _empty(layout: CsvLayout):
    values = np.empty((0, len(layout.sample_indices)))
    ids = {name: np.empty(0, dtype=_ID_DTYPES[ID_COLUMN_TYPES[name]]) for name in layout.id_names}
    if layout.label_index is None:
        return values, None, None, ids
    return values, *_LabelReader(layout).arrays([], []), ids


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


def _scan(name: str, data: bytes, first_line: int, layout: CsvLayout,
          keep_rejects: bool) -> Iterator[Beats]:
    """Read every line in Python: the reference for what is a good row and its values.

    Yields the rows in pieces of at most :data:`SCAN_LINES` lines, so that a block of
    short bad lines, each a reject, takes bounded memory.
    """
    reader = _LabelReader(layout)
    n_samples = len(layout.sample_indices)
    lines: list[int] = []
    rows: list[list[float]] = []
    labels: list[str] = []
    anomalies: list[bool] = []
    rejects: list[Reject] = []
    ids: list[list[str]] = []

    def piece() -> Beats:
        values = np.array(rows, dtype=np.float64).reshape(len(rows), n_samples)
        label_array, truth = (reader.arrays(labels, anomalies) if layout.label_index is not None
                              else (None, None))
        id_arrays = {name: np.array([row[j] for row in ids],
                                    dtype=_ID_DTYPES[ID_COLUMN_TYPES[name]])
                     for j, name in enumerate(layout.id_names)}
        return _beats(layout, np.array(lines, dtype=np.int64), values, label_array, truth,
                      list(rejects), id_arrays)

    for offset, raw in enumerate(io.BytesIO(data)):
        line = first_line + offset
        if offset and offset % SCAN_LINES == 0:
            yield piece()
            for kept in (lines, rows, labels, anomalies, rejects, ids):
                kept.clear()
        if len(raw) > MAX_LINE_BYTES:
            raise InputError(f"{name} {LineTooLong(line)}")
        # Undecodable bytes survive as surrogates: reported by field, and a rejected line
        # is written back byte for byte.
        text = raw.removesuffix(b"\n").decode("utf-8", errors="surrogateescape")
        if text.endswith("\r"):
            text = text[:-1]
        if is_blank(text):
            continue
        problem, values, label, anomaly, id_texts = _parse_row(text, layout, reader)
        if problem is None:
            lines.append(line)
            rows.append(values)
            ids.append(id_texts)
            labels.append(label)
            anomalies.append(anomaly)
        elif keep_rejects:
            rejects.append((line, problem.lstrip(": "), text))
        else:
            raise InputError(f"{name} line {line}{problem}")
    yield piece()


_NOT_PARSED = (None, None, None, None)


def _parse_row(line: str, layout: CsvLayout, labels: _LabelReader
               ) -> tuple[str | None, list[float] | None, str | None, bool | None,
                          list[str] | None]:
    """``(problem, samples, label, anomaly, ids)`` of one line (without its line ending)."""
    try:
        fields = next(csv.reader([line], delimiter=layout.delimiter, strict=True))
    except csv.Error as error:
        return f": {describe_csv_error(error)}", *_NOT_PARSED
    if len(fields) != layout.n_columns:
        hint = _delimiter_hint(line, layout) if len(fields) == 1 else ""
        return f": expected {layout.n_columns} fields, got {len(fields)}{hint}", *_NOT_PARSED
    values = []
    for index in layout.sample_indices:
        text = fields[index]
        where = column_description(index, layout)
        undecodable = _undecodable(text)
        if undecodable:
            return f"{where}: {undecodable}", *_NOT_PARSED
        if not text.strip(PADDING):
            return f"{where}: empty cell (expected a number)", *_NOT_PARSED
        number = parse_number(text)
        if number is None:
            hint = _delimiter_hint(text, layout)
            return f"{where}: expected a number, got {text[:40]!r}{hint}", *_NOT_PARSED
        if not math.isfinite(number):
            word = text.strip(PADDING).lstrip("+-").lower()
            why = ("is not a finite number" if word in ("nan", "inf", "infinity")
                   else "is too large for a 64-bit float")
            return f"{where}: {text.strip(PADDING)!r} {why}", *_NOT_PARSED
        if layout.value_range is not None and not (
                layout.value_range[0] <= number <= layout.value_range[1]):
            low, high = layout.value_range
            return (f"{where}: {text.strip(PADDING)!r} is outside what the model can score "
                    f"({low:.6g} to {high:.6g})"), *_NOT_PARSED
        values.append(number)
    ids = []
    for index in layout.id_indices:
        problem, value = _read_id(fields[index], ID_COLUMN_TYPES[layout.column_names[index]])
        if problem is not None:
            return f"{column_description(index, layout)}: {problem}", *_NOT_PARSED
        ids.append(value)
    if layout.label_index is None:
        return None, values, None, None, ids
    problem, label, anomaly = labels.read(fields[layout.label_index])
    if problem is not None:
        return f"{column_description(layout.label_index, layout)}: {problem}", *_NOT_PARSED
    return None, values, label, anomaly, ids


_ID_DTYPES = {"text": object, "integer": np.int64, "number": np.float64}
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
#: An integer id cell, once its padding is stripped: ASCII digits, an optional minus, at
#: most 20 digits (pyarrow alone would also read ``0x1F`` and any number of leading zeros).
INTEGER_CELL = re.compile(r"-?[0-9]{1,20}")


def _read_id(text: str, kind: str) -> tuple[str | None, object]:
    """``(problem, value)`` of an id cell read as ``kind`` (see :data:`ID_COLUMN_TYPES`)."""
    undecodable = _undecodable(text)
    if undecodable:
        return undecodable, None
    text = text.strip(PADDING)
    if kind == "text":
        return None, text
    if kind == "integer":
        # The same rule as the fast path's (INTEGER_CELL, then int64's range), so a cell
        # reads the same whether or not another row of its block is bad.
        value = int(text) if INTEGER_CELL.fullmatch(text) else None
        if value is None or not INT64_MIN <= value <= INT64_MAX:
            return f"expected a 64-bit integer, got {text[:40]!r}", None
        return None, value
    if not text:
        return None, math.nan
    number = parse_number(text)
    if number is None:
        return f"expected a number, got {text[:40]!r}", None
    return None, number


class _LabelReader:
    """Reads label cells by a layout: the label text and, when the layout decides labels,
    whether it marks an anomaly. The one place where a label is judged."""

    def __init__(self, layout: CsvLayout):
        self.decides = layout.decides_labels
        self.normal_text = layout.normal_label.strip() if self.decides else None
        self.normal_number = layout.normal_number

    def read(self, text: str) -> tuple[str | None, str | None, bool | None]:
        """``(problem, label, anomaly)``: the label without surrounding spaces and, with a
        normal label, whether it differs from it; or what is wrong with the cell."""
        undecodable = _undecodable(text)
        if undecodable:
            return undecodable, None, None
        label = text.strip(PADDING)
        if not label:
            return "empty label", None, None
        if not self.decides:
            return None, label, None
        if self.normal_number is None:
            return None, label, label.strip() != self.normal_text
        number = parse_number(label)
        if number is None or not math.isfinite(number):
            return (f"expected a numeric label (the normal label is a number), "
                    f"got {label[:40]!r}"), None, None
        return None, label, number != self.normal_number

    def arrays(self, labels: list[str], anomalies: list[bool | None]
               ) -> tuple[np.ndarray, np.ndarray | None]:
        """The labels as an object array, and 0/1 truth (int8) when labels are decided."""
        truth = np.array(anomalies, dtype=np.int8) if self.decides else None
        return np.array(labels, dtype=object), truth


def column_description(index: int, layout: CsvLayout) -> str:
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


def _delimiter_hint(text: str, layout: CsvLayout) -> str:
    """A hint when a cell looks like another delimiter or a decimal comma is at work."""
    if layout.delimiter != "," and "," in text and parse_number(text.replace(",", ".")) is not None:
        return " (a decimal comma: numbers must use a decimal point)"
    for delimiter, delimiter_name in _DELIMITER_NAMES.items():
        if delimiter != layout.delimiter and delimiter in text:
            return (f" (read as {_DELIMITER_NAMES[layout.delimiter]}-separated, from the "
                    f"first line, but this holds a {delimiter_name})")
    return ""
