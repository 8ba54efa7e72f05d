"""Opening a recording and reading one of its leads, a chunk at a time.

Three kinds of recording:

- a **WFDB record** (PhysioNet): ``NAME.hea`` and the signal files it names, read with
  ``wfdb``; the record is given as ``NAME`` or ``NAME.hea``;
- an **EDF or EDF+** file (``.edf``), read lazily with ``edfio`` (EDF+D, a recording with
  gaps, is refused);
- a **signal CSV**: a header naming one column per lead, and optionally a time column in
  seconds (``time``, ``time_s``, ``t``, ``seconds`` or ``elapsed time``); a units row under
  the header, as PhysioNet's exports write, is skipped. Without a time column the sampling
  rate must be given (``--fs``).

:func:`open_lead` checks everything it can before any sample is read (the signal files are
there and long enough, the lead exists, the sampling rate is known) and returns a
:class:`Lead`, whose :meth:`Lead.read` returns physical values (millivolts for MIT-BIH).
Reads must move forward: a read may start before the previous one ended (chunks overlap),
but never before the previous one started. That is what lets a signal CSV stream.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..exceptions import InputError, first_line
from ..io.blocks import MAX_LINE_BYTES
from ..io.layout import parse_number
from ..io.readers import check_readable

#: The lead chosen when none is asked for and the recording has it.
DEFAULT_LEAD = "MLII"
#: Names of a signal CSV's time column (compared without case, quotes and spaces).
TIME_COLUMNS = ("time", "time_s", "t", "seconds", "elapsed time")
#: Rows a signal CSV is read in.
CSV_BATCH_BYTES = 1 << 22


@dataclass
class Lead:
    """One lead of a recording.

    Attributes
    ----------
    path : str
        The recording as given (named in messages).
    record : str
        The record's name (the ``record`` column of the beats).
    name : str
        The lead's name.
    fs : float
        Samples per second.
    n_samples : int
        The lead's length.
    annotations_base : str or None
        For a WFDB record, its path without extension (annotation files sit beside it).
    values_per_sample : int
        Values decoded to read one sample of the lead (a WFDB file holding many signals
        is decoded whole): chunks are sized by it.
    """

    path: str
    record: str
    name: str
    fs: float
    n_samples: int
    annotations_base: str | None = None
    values_per_sample: int = 1
    _read: Callable[[int, int], np.ndarray] = field(repr=False, default=None)

    @property
    def duration(self) -> float:
        return self.n_samples / self.fs

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``start:stop`` (clipped to the lead) as float64 physical values."""
        start, stop = max(0, start), min(self.n_samples, stop)
        if stop <= start:
            return np.empty(0)
        values = np.asarray(self._read(start, stop), dtype=np.float64).reshape(-1)
        if len(values) != stop - start:
            raise InputError(f"{self.path}: the signal ends at sample {start + len(values)}, "
                             f"before the {self.n_samples} samples its header declares")
        finite = np.isfinite(values)
        if not finite.all():
            from .times import format_time

            missing = start + int(np.argmin(finite))
            raise InputError(f"{self.path}: lead {self.name} has no valid sample at "
                             f"{missing} ({format_time(missing / self.fs)}): gaps in a "
                             "signal are not supported; choose a span without them "
                             "(--from/--to)")
        return values


def is_recording(path: str | os.PathLike, signal_csv: bool = False) -> bool:
    """Whether ``path`` names a WFDB record or an EDF file, or, with ``signal_csv``, a
    ``.csv`` file (read as samples per lead, not as beats: the command says which)."""
    text = str(path)
    lower = text.lower()
    return (lower.endswith(".edf") or wfdb_base(text) is not None
            or (signal_csv and lower.endswith(".csv")))


def recording_files(path: str | os.PathLike, annotations: str | None = None) -> list[str]:
    """The files a recording is read from: a WFDB record's header, the signal files it
    names (and the annotation file), or the one file."""
    text = str(path)
    base = wfdb_base(text)
    if base is None:
        return [text]
    files = [base + ".hea"]
    try:
        import wfdb

        names = wfdb.rdheader(base).file_name or []
    except Exception:  # A header that does not parse is reported when the record opens.
        names = []
    directory = os.path.dirname(base)
    files += [os.path.join(directory, name) for name in dict.fromkeys(names)]
    if annotations is not None:
        files.append(f"{base}.{annotations}")
    return files


def wfdb_base(path: str) -> str | None:
    """A WFDB record's path without ``.hea``, or None when ``path`` is not one."""
    lower = path.lower()
    if lower.endswith(".hea"):
        return path[:-4]
    if not lower.endswith((".csv", ".csv.gz", ".edf", ".parquet")) and path != "-" and \
            os.path.isfile(path + ".hea"):
        return path
    return None


def open_lead(path: str | os.PathLike, *, lead: str | None = None, fs: float | None = None,
              signal_csv: bool = True) -> Lead:
    """Open a recording and choose its lead.

    Parameters
    ----------
    path : str or path-like
        A WFDB record (with or without ``.hea``), an ``.edf`` file or a signal CSV.
    lead : str, optional
        A lead's name, or its 0-based index; default :data:`DEFAULT_LEAD` when the
        recording has it, else its first lead.
    fs : float, optional
        The sampling rate of a signal CSV without a time column (and a check of one with).

    Raises
    ------
    InputError
        Naming the file: it is missing, unreadable or malformed, its signal file is
        missing or shorter than the header says, the lead does not exist, the rate is
        unknown.
    """
    text = str(path)
    lower = text.lower()
    if lower.endswith(".edf"):
        return _open_edf(text, lead)
    if wfdb_base(text) is not None or lower.endswith(".hea"):
        return _open_wfdb(text, lead)
    if lower.endswith(".csv") and signal_csv:
        return _open_signal_csv(text, lead, fs)
    if not os.path.exists(text):
        raise InputError(f"{text}: no such file or WFDB record (no {text}.hea either)")
    raise InputError(f"{text}: not a recording (expected a WFDB record, an .edf file or a "
                     "signal .csv file)")


def choose_lead(path: str, names: list[str], lead: str | None) -> int:
    """The index of the lead asked for (a name, or a 0-based index), or of the default."""
    if lead is None:
        return names.index(DEFAULT_LEAD) if DEFAULT_LEAD in names else 0
    spec = lead.strip()
    if spec in names:
        return names.index(spec)
    if spec.isdigit() and int(spec) < len(names):
        return int(spec)
    raise InputError(f"{path}: no lead {lead!r} (its leads: {', '.join(names)}; give a name "
                     "or a 0-based index)")


# -- WFDB -------------------------------------------------------------------------------

def _open_wfdb(text: str, lead: str | None) -> Lead:
    import wfdb
    # wfdb's own table of bytes per sample of each format (it has no public name).
    from wfdb.io._signal import BYTES_PER_SAMPLE

    base = text[:-4] if text.lower().endswith(".hea") else text
    header_path = base + ".hea"
    check_readable(header_path, "a WFDB header")
    try:
        header = wfdb.rdheader(base)
    except Exception as error:  # wfdb raises many kinds for a header that does not parse
        raise InputError(f"{header_path}: not a WFDB header ({first_line(error)})") from None
    names = list(header.sig_name or [])
    if not names or not header.fs or not header.sig_len:
        raise InputError(f"{header_path}: a WFDB header without signals, sampling rate or "
                         "length (a multi-segment record is not supported)")
    index = choose_lead(header_path, names, lead)
    directory = os.path.dirname(base)
    frames = header.samps_per_frame or [1] * len(names)
    # Bytes per frame of each signal file: wfdb decodes every signal of a file it reads.
    frame_bytes: dict[str, float] = {}
    for file_name, fmt, per_frame in zip(header.file_name, header.fmt, frames):
        frame_bytes[file_name] = (frame_bytes.get(file_name, 0)
                                  + per_frame * BYTES_PER_SAMPLE.get(str(fmt), 0))
    for number, file_name in enumerate(header.file_name):
        if number and header.file_name[number - 1] == file_name:
            continue
        signal_path = os.path.join(directory, file_name)
        if not os.path.isfile(signal_path):
            raise InputError(f"{header_path}: its signal file {signal_path} is missing")
        offset = (header.byte_offset or [0] * len(names))[number] or 0
        needed = offset + math.ceil(header.sig_len * frame_bytes[file_name])
        size = os.path.getsize(signal_path)
        if size < needed:
            raise InputError(f"{signal_path}: truncated ({size:,} bytes; the header "
                             f"{header_path} declares {header.sig_len:,} samples, "
                             f"{needed:,} bytes)")

    def read(start: int, stop: int) -> np.ndarray:
        try:
            record = wfdb.rdrecord(base, sampfrom=start, sampto=stop, channels=[index])
        except Exception as error:
            raise InputError(f"{header_path}: cannot read samples {start}-{stop} "
                             f"({first_line(error)})") from None
        return record.p_signal[:, 0]

    decoded = sum(per_frame for name, per_frame in zip(header.file_name, frames)
                  if name == header.file_name[index])
    return Lead(text, os.path.basename(base), names[index], float(header.fs),
                int(header.sig_len), annotations_base=base, values_per_sample=decoded,
                _read=read)


# -- EDF --------------------------------------------------------------------------------

def _open_edf(text: str, lead: str | None) -> Lead:
    import edfio

    check_readable(text, "an EDF file")
    try:
        edf = edfio.read_edf(text, lazy_load_data=True)
    except Exception as error:  # edfio raises ValueError and others for a bad header
        raise InputError(f"{text}: not an EDF file ({first_line(error)})") from None
    if not getattr(edf, "is_continuous", True):
        raise InputError(f"{text}: an EDF+D recording with gaps is not supported")
    signals = list(edf.signals)
    if not signals:
        raise InputError(f"{text}: an EDF file without signals")
    names = [signal.label.strip() for signal in signals]
    signal = signals[choose_lead(text, names, lead)]
    fs = float(signal.sampling_frequency)
    n_samples = int(round(edf.duration * fs))

    def read(start: int, stop: int) -> np.ndarray:
        try:
            return signal.get_data_slice(start / fs, stop / fs)
        except Exception as error:
            raise InputError(f"{text}: cannot read samples {start}-{stop} "
                             f"({first_line(error)})") from None

    return Lead(text, Path(text).stem, signal.label.strip(), fs, n_samples, _read=read)


# -- signal CSV -------------------------------------------------------------------------

def _open_signal_csv(text: str, lead: str | None, fs: float | None) -> Lead:
    check_readable(text, "a signal CSV file")
    names, skip_units = _csv_header(text)
    clean = [name.strip().strip("'\"").strip() for name in names]
    time_index = next((i for i, name in enumerate(clean) if name.lower() in TIME_COLUMNS), None)
    lead_columns = [i for i in range(len(clean)) if i != time_index]
    if not lead_columns:
        raise InputError(f"{text}: no lead columns (only a time column)")
    lead_names = [clean[i] for i in lead_columns]
    chosen = choose_lead(text, lead_names, lead)
    reader = _CsvColumn(text, names, lead_columns[chosen], skip_units)
    if time_index is not None:
        times = _CsvColumn(text, names, time_index, skip_units).head(1000)
        steps = np.diff(times)
        if len(steps) == 0 or not np.all(steps > 0):
            raise InputError(f"{text}: the time column {clean[time_index]!r} does not hold "
                             "increasing seconds; give --fs instead")
        found = (len(times) - 1) / float(times[-1] - times[0])
        if fs is not None and abs(found - fs) > 1e-3 * fs:
            raise InputError(f"{text}: --fs {fs:g} but its time column says {found:.6g} Hz")
        fs = fs if fs is not None else found
    if fs is None:
        raise InputError(f"{text}: no time column, so the sampling rate is unknown: give "
                         "--fs (samples per second)")
    return Lead(text, Path(text).stem, lead_names[chosen], float(fs), reader.count(),
                _read=reader.read)


def _csv_header(text: str) -> tuple[list[str], bool]:
    """The header's names, and whether a units row (not numbers) follows it."""
    import csv

    with open(text, "rb") as file:
        lines = [file.readline(MAX_LINE_BYTES + 1) for _ in range(2)]
    if any(len(line) > MAX_LINE_BYTES for line in lines):
        raise InputError(f"{text}: a line of its first two is longer than "
                         f"{MAX_LINE_BYTES:,} bytes (is this a signal CSV?)")
    try:
        rows = csv.reader(line.decode("utf-8", errors="replace") for line in lines if line)
        header = next(rows, None)
        second = next(rows, None)
    except csv.Error as error:
        raise InputError(f"{text}: malformed CSV header ({error})") from None
    if not header:
        raise InputError(f"{text}: the file is empty")
    if all(parse_number(cell) is not None for cell in header):
        raise InputError(f"{text}: a signal CSV needs a header naming its leads")
    units = second is not None and not all(parse_number(cell) is not None
                                           for cell in second if cell.strip())
    return header, units


class _CsvColumn:
    """One column of a signal CSV, streamed forward with pyarrow: ``_buffer`` holds rows
    ``_buffer_start`` onwards, and the reader's next batch starts at ``_next_row``."""

    def __init__(self, path: str, names: list[str], index: int, skip_units: bool):
        self.path, self.names, self.index, self.skip_units = path, names, index, skip_units
        self._reader = None
        self._buffer = np.empty(0)
        self._buffer_start = self._next_row = 0

    def _batches(self):
        """The column's values, batch by batch; InputError on anything pyarrow refuses (a
        text cell, a missing field) or an empty or non-finite value."""
        import pyarrow as pa
        import pyarrow.csv as pa_csv

        column = f"c{self.index}"
        try:
            reader = pa_csv.open_csv(
                self.path,
                read_options=pa_csv.ReadOptions(
                    column_names=[f"c{i}" for i in range(len(self.names))],
                    skip_rows=1 + self.skip_units, block_size=CSV_BATCH_BYTES),
                convert_options=pa_csv.ConvertOptions(column_types={column: pa.float64()},
                                                      include_columns=[column]))
            for batch in reader:
                values = batch.column(0).to_numpy(zero_copy_only=False)
                if batch.column(0).null_count or not np.isfinite(values).all():
                    raise InputError(f"{self.path}: column {self.names[self.index]!r} holds "
                                     "an empty or non-finite value")
                yield values
        except pa.ArrowInvalid as error:
            raise InputError(f"{self.path}: {first_line(error)}") from None

    def head(self, n: int) -> np.ndarray:
        for values in self._batches():
            return values[:n]
        return np.empty(0)

    def count(self) -> int:
        return sum(len(values) for values in self._batches())

    def read(self, start: int, stop: int) -> np.ndarray:
        if start < self._buffer_start:  # Only forward: start over.
            self._reader, self._buffer = None, np.empty(0)
            self._buffer_start = self._next_row = 0
        if self._reader is None:
            self._reader = self._batches()
        self._drop_before(start)
        while self._next_row < stop:
            values = next(self._reader, None)
            if values is None:
                break
            self._buffer = np.concatenate((self._buffer, values))
            self._next_row += len(values)
            self._drop_before(start)
        return self._buffer[start - self._buffer_start:stop - self._buffer_start].copy()

    def _drop_before(self, start: int) -> None:
        drop = min(max(0, start - self._buffer_start), len(self._buffer))
        self._buffer = self._buffer[drop:]
        self._buffer_start += drop




