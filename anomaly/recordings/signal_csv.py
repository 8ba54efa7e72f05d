"""A signal CSV: a header naming one column per lead, and optionally a time column
(``time``, ``t``, ``elapsed``, ``elapsed time`` or ``seconds``, in seconds or in the unit its
name gives, s or ms: ``Time (s)``, ``time_ms``; :func:`time_scale`); a units row under
the header, as PhysioNet's exports write, is skipped. Without a time column the sampling
rate must be given (``--fs``).

A gap is never closed silently: a blank line, an empty cell, or a time column that jumps
ahead or goes back is an error naming the line. The file is read to the length it had when
it was opened, so a file a recorder is still appending to is read as it was then (and
refused if its last line was then half-written).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np

from ..exceptions import InputError, first_line
from ..io.blocks import MAX_LINE_BYTES
from ..io.layout import parse_number
from .limits import (MAX_FS, MAX_SIGNALS, MIN_FS, FileStamp, check_duration, check_given_rate,
                     check_rate)

#: Names of a signal CSV's time column (compared without case, quotes and spaces), in
#: seconds unless a unit of :data:`TIME_UNITS` follows in brackets or after an underscore
#: (``Time (s)``, ``time [ms]``, ``time_ms``); ``seconds`` alone is one too.
TIME_COLUMNS = ("time", "t", "elapsed time", "elapsed")
#: The units a time column's name may give, in seconds.
TIME_UNITS = {"s": 1.0, "sec": 1.0, "secs": 1.0, "seconds": 1.0, "ms": 1e-3, "msec": 1e-3,
              "milliseconds": 1e-3}
#: Bytes a signal CSV is read in.
CSV_BATCH_BYTES = 1 << 22
#: Rows of the time column the sampling rate is measured on.
RATE_ROWS = 1000
#: Largest step of the time column, in sample intervals: more is a gap in the signal.
#: Above 1, for times rounded to fewer digits than the rate needs (360 Hz in ms).
MAX_TIME_STEP = 1.5
#: How far the rate over the whole time column may be from the rate of its first rows.
RATE_TOLERANCE = 1e-2


def time_scale(name: str) -> float | None:
    """Seconds per unit of the times in a column named ``name`` when it is a time column
    (:data:`TIME_COLUMNS`), None when it is not; ValueError, naming the unit, for a time
    column in a unit not among :data:`TIME_UNITS` (``Time (min)``)."""
    lowered = " ".join(name.lower().split())
    if lowered == "seconds":
        return 1.0
    found = re.fullmatch(r"(.+?) ?(?:[(\[] ?([a-z]+) ?[)\]]|_([a-z]+))?", lowered)
    if found is None or found.group(1) not in TIME_COLUMNS:
        return None
    unit = found.group(2) or found.group(3)
    if unit is not None and unit not in TIME_UNITS:
        raise ValueError(unit)
    return 1.0 if unit is None else TIME_UNITS[unit]


def open_signal_csv(text: str, lead: str | None, fs: float | None):
    """The lead ``lead`` of the signal CSV ``text``, at ``fs`` or its time column's rate.

    The whole file is read once here, to count its samples and check every time step.
    """
    from .signals import Lead, choose_lead, distinct_names

    stamp = FileStamp.of(text, "a signal CSV file", text=True)
    names, units = _csv_header(stamp)
    skip_units = units is not None
    clean = [name.strip().strip("'\"").strip() for name in names]
    try:
        scales = [time_scale(name) for name in clean]
    except ValueError as unit:
        raise InputError(f"{text}: its time column is in {unit}, a unit not read (s or ms: "
                         "'Time (s)', 'time_ms'); convert it, or leave it out and give "
                         "--fs") from None
    times = [i for i, scale in enumerate(scales) if scale is not None]
    if len(times) > 1:
        raise InputError(f"{text}: {len(times)} time columns "
                         f"({', '.join(clean[i] for i in times)}): a signal CSV has one")
    time_index = times[0] if times else None
    lead_columns = [i for i in range(len(clean)) if i != time_index]
    if len(lead_columns) > MAX_SIGNALS:
        raise InputError(f"{text}: {len(lead_columns):,} lead columns; at most {MAX_SIGNALS} "
                         "are read")
    if not lead_columns:
        raise InputError(f"{text}: no lead columns (only a time column)")
    lead_names = distinct_names([clean[i] for i in lead_columns])
    lead_units = [_unit(units, i) for i in lead_columns]
    chosen = choose_lead(text, lead_names, lead, lead_units)
    column = _CsvColumn(stamp, names, lead_columns[chosen], skip_units, time_index,
                        scales[time_index] if time_index is not None else 1.0)
    if time_index is not None:
        found = column.head_rate()
        if found < MIN_FS <= found * 1000 <= MAX_FS:
            raise InputError(f"{text}: its time column ({clean[time_index]}) steps by "
                             f"{1 / found:.4g} at a time, a rate of {found:g} Hz if they are "
                             "seconds: are they milliseconds, or sample numbers? Name a "
                             "column of milliseconds 'time_ms' or 'Time (ms)' (or leave the "
                             "column out and give --fs)")
        check_given_rate(text, fs, found, "its time column")
        fs = fs if fs is not None else found
    if fs is None:
        raise InputError(f"{text}: no time column, so the sampling rate is unknown: give "
                         "--fs (samples per second)")
    fs = check_rate(text, fs)
    column.fs = fs
    n_samples = check_duration(text, column.count(), fs)
    return Lead(text, Path(text).stem, lead_names[chosen], fs, n_samples, files=(stamp,),
                leads=tuple(lead_names), unit=lead_units[chosen], _read=column.read)


def _unit(units: list[str] | None, column: int) -> str | None:
    """The unit the units row gives column ``column`` (None: no units row, or no unit
    there)."""
    if units is None or column >= len(units):
        return None
    unit = units[column].strip().strip("'\"()[]").strip()
    return None if not unit or _is_missing(unit.lower()) else unit


def _csv_header(stamp: FileStamp) -> tuple[list[str], list[str] | None]:
    """The header's names, and the units row (not numbers) under it, if there is one."""
    import csv

    from ..io.csv_parser import refuse_utf16

    text = stamp.path
    head = stamp.read_head(2 * (MAX_LINE_BYTES + 1))
    refuse_utf16(text, head)  # Read as UTF-8 it has no time column, nor any lead.
    lines = head.split(b"\n")[:2]
    if any(len(line) > MAX_LINE_BYTES for line in lines):
        raise InputError(f"{text}: a line of its first two is longer than "
                         f"{MAX_LINE_BYTES:,} bytes (is this a signal CSV?)")
    try:
        # utf-8-sig: a byte-order mark (Excel's "CSV UTF-8") is not part of the first name.
        rows = csv.reader(line.decode("utf-8-sig", errors="replace") for line in lines if line)
        header = next(rows, None)
        second = next(rows, None)
    except csv.Error as error:
        raise InputError(f"{text}: malformed CSV header ({error})") from None
    if not header:
        raise InputError(f"{text}: the file is empty")
    if all(parse_number(cell) is not None for cell in header):
        raise InputError(f"{text}: a signal CSV needs a header naming its leads (a first "
                         "line such as 'time,MLII' or 'ECG')")
    return header, second if second is not None and _is_units_row(second) else None


#: Cells that say a value is missing, not what its unit is (and a spreadsheet's errors,
#: ``#N/A``, ``#VALUE!``: any cell starting with ``#``).
MISSING_CELLS = ("na", "n/a", "nan", "null", "none", "-", "--", "?")


def _is_units_row(cells: list[str]) -> bool:
    """Whether the row under the header names units (``s, mV``; ``'(mV)'``; ``s, mV, -``
    for a lead without one): no cell of it a number, and at least one a unit, not a
    missing value. A row with a number in it, or only missing values, is the first row
    of samples, and a bad cell there an error, not a row skipped."""
    words = [cell.strip().strip("'\"").strip().lower() for cell in cells]
    return not any(parse_number(word) is not None for word in words if word) and any(
        word and not _is_missing(word) for word in words)


def _is_missing(word: str) -> bool:
    """Whether a cell (lower case, unquoted) says a value is missing: no unit either."""
    return word in MISSING_CELLS or word.startswith("#")


class _Prefix(io.RawIOBase):
    """The first ``size`` bytes of a file: what pyarrow reads of one that may be growing."""

    def __init__(self, path: str, size: int):
        self._file = open(path, "rb")
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        wanted = min(len(buffer), self._left)
        got = self._file.readinto(memoryview(buffer)[:wanted]) if wanted else 0
        self._left -= got
        return got

    def close(self) -> None:
        self._file.close()
        super().close()


class _CsvColumn:
    """One lead of a signal CSV, streamed forward with pyarrow, its time column (when it
    has one) checked step by step: ``_buffer`` holds rows ``_buffer_start`` onwards, and the
    reader's next batch starts at ``_next_row``."""

    def __init__(self, stamp: FileStamp, names: list[str], index: int, skip_units: bool,
                 time_index: int | None, seconds_per_unit: float = 1.0):
        self.stamp, self.path, self.names = stamp, stamp.path, names
        self.index, self.time_index, self.skip_units = index, time_index, skip_units
        self.seconds_per_unit = seconds_per_unit
        self.fs: float | None = None
        self._reader = None
        self._buffer = np.empty(0)
        self._buffer_start = self._next_row = 0

    def _first_line(self) -> int:
        """The file's line number of the first data row."""
        return 2 + self.skip_units

    def _batches(self):
        """``(values, times)`` batch by batch (``times`` None without a time column);
        InputError on anything pyarrow refuses (a text cell, a missing field), an empty
        or non-finite value, or a time step that is a gap."""
        import pyarrow as pa
        import pyarrow.csv as pa_csv

        indices = [self.index] + ([] if self.time_index is None else [self.time_index])
        columns = [f"c{i}" for i in indices]
        row = 0
        last_time = None
        try:
            reader = pa_csv.open_csv(
                _Prefix(self.path, self.stamp.size),
                read_options=pa_csv.ReadOptions(
                    column_names=[f"c{i}" for i in range(len(self.names))],
                    skip_rows=1 + self.skip_units, block_size=CSV_BATCH_BYTES),
                # A blank line is a gap in the signal: read it, to refuse it.
                parse_options=pa_csv.ParseOptions(ignore_empty_lines=False),
                convert_options=pa_csv.ConvertOptions(
                    column_types={name: pa.float64() for name in columns},
                    include_columns=columns))
            for batch in reader:
                arrays = [batch.column(i) for i in range(len(columns))]
                for position, array in enumerate(arrays):
                    values = array.to_numpy(zero_copy_only=False)
                    bad = ~np.isfinite(values)
                    if bad.any():
                        line = self._first_line() + row + int(np.argmax(bad))
                        name = self.names[indices[position]].strip()
                        raise InputError(f"{self.path}: line {line:,} has no number in column "
                                         f"{name!r} (a blank line or an empty or "
                                         "non-finite cell): a gap in a signal is not "
                                         "supported; split the file at the gap")
                values = arrays[0].to_numpy(zero_copy_only=False)
                times = None
                if len(arrays) > 1:
                    times = arrays[1].to_numpy(zero_copy_only=False) * self.seconds_per_unit
                    if self.fs is not None:
                        self._check_steps(times, last_time, row)
                    last_time = times[-1] if len(times) else last_time
                row += len(values)
                yield values, times
        except pa.ArrowInvalid as error:
            # pyarrow's words: "In CSV column #0: CSV conversion error to double: invalid
            # value ''0:00.000''". Matched without backtracking over the cell, whose length
            # a client chooses (a pattern with two .* took seconds on a long one).
            clock = re.match(r"In CSV column #(\d+): CSV conversion error to double: "
                             r"invalid value '('[0-9:.]{1,40}')'$", first_line(error)[:200])
            if clock and int(clock.group(1)) == self.time_index and ":" in clock.group(2):
                raise InputError(f"{self.path}: its time column holds clock times "
                                 f"({clock.group(2)}), not seconds: export it in seconds "
                                 "(PhysioNet's 'rdsamp -p -v'), or leave the column out "
                                 "and give --fs") from None
            said = first_line(error)  # It quotes the cell, whose length a client chooses.
            raise InputError(f"{self.path}: {said[:300]}{'...' if len(said) > 300 else ''}"
                             ) from None

    def _check_steps(self, times: np.ndarray, last_time: float | None, row: int) -> None:
        """An InputError at the first step of ``times`` (rows ``row`` onwards, after
        ``last_time``) that goes back, stands still or jumps a gap."""
        series = times if last_time is None else np.concatenate(([last_time], times))
        steps = np.diff(series)
        bad = (steps <= 0) | (steps > MAX_TIME_STEP / self.fs)
        if not bad.any():
            return
        at = int(np.argmax(bad))
        line = self._first_line() + row + at + (last_time is None)
        before, after = series[at], series[at + 1]
        what = "goes back" if steps[at] < 0 else "stands still" if steps[at] == 0 else "jumps"
        raise InputError(f"{self.path}: line {line:,}: the time column {what} from "
                         f"{before:.6g} s to {after:.6g} s (samples are {1 / self.fs:.3g} s "
                         "apart): a gap in a signal is not supported; split the file at "
                         "the gap")

    def head_rate(self) -> float:
        """The sampling rate of the time column's first :data:`RATE_ROWS` rows."""
        rows = 0
        for _, times in self._batches():
            rows = len(times)
            times = times[:RATE_ROWS]
            steps = np.diff(times)
            if len(steps) == 0 or not np.all(steps > 0):
                break
            return (len(times) - 1) / float(times[-1] - times[0])
        if rows < 2:
            raise InputError(f"{self.path}: {'no' if rows == 0 else 'one'} row of samples "
                             "under its header: no signal to read")
        raise InputError(f"{self.path}: the time column does not hold increasing seconds; "
                         "give --fs instead")

    def count(self) -> int:
        """The column's samples; with a time column, every step checked, and the rate over
        the whole file checked against :attr:`fs`."""
        total, first, last = 0, None, None
        for values, times in self._batches():
            total += len(values)
            if times is not None and len(times):
                first = times[0] if first is None else first
                last = times[-1]
        if first is not None and total > 1:
            rate = (total - 1) / float(last - first)
            if abs(rate - self.fs) > RATE_TOLERANCE * self.fs:
                raise InputError(f"{self.path}: its time column says {rate:.6g} Hz over the "
                                 f"whole file but {self.fs:.6g} Hz in its first rows")
        return total

    def read(self, start: int, stop: int) -> np.ndarray:
        if start < self._buffer_start:  # Only forward: start over.
            self._reader, self._buffer = None, np.empty(0)
            self._buffer_start = self._next_row = 0
        if self._reader is None:
            self._reader = self._batches()
        self._drop_before(start)
        while self._next_row < stop:
            batch = next(self._reader, None)
            if batch is None:
                break
            values = batch[0]
            self._buffer = np.concatenate((self._buffer, values))
            self._next_row += len(values)
            self._drop_before(start)
        return self._buffer[start - self._buffer_start:stop - self._buffer_start].copy()

    def _drop_before(self, start: int) -> None:
        drop = min(max(0, start - self._buffer_start), len(self._buffer))
        self._buffer = self._buffer[drop:]
        self._buffer_start += drop
