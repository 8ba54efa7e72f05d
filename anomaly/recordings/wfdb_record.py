"""A WFDB record (PhysioNet): ``NAME.hea`` and the signal files it names, read with
``wfdb`` once every size the header declares has been checked (see :mod:`.limits`)."""

from __future__ import annotations

import math
import os
import re

import numpy as np

from ..exceptions import InputError, first_line
from ..io.layout import MAX_COUNT_DIGITS, parse_count
from .limits import (
    MAX_HEADER_BYTES,
    MAX_SIGNALS,
    MAX_SKEW_SECONDS,
    FileStamp,
    check_duration,
    check_given_rate,
    check_rate,
    check_values_per_second,
)
from .times import RecordingStart

#: WFDB's FLAC-compressed formats: their decoded size cannot be checked against the file
#: before decoding it whole, so they are not read.
COMPRESSED_FORMATS = ("508", "516", "524")
#: The sampling-rate field of a header's record line: ``360``, ``360/1000`` or ``360(0)``.
_RATE_FIELD = re.compile(r"^([^/(]*)")
#: A signal line's format field (``212``, ``16x4``, ``212:3``, ``16+512``), and its gain
#: field (``200``, ``200.5(-12)/mV``), as wfdb reads them (``wfdb.io.header.rx_signal``:
#: a lower-case exponent, a baseline without a plus sign), and the characters of a unit
#: it reads (it takes the rest of a unit such as ``a.u.`` for the signal's name).
_FORMAT_FIELD = re.compile(r"[0-9]+(x[0-9]+)?(:[0-9]+)?(\+[0-9]+)?")
_GAIN_FIELD = re.compile(r"(-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[-+]?[0-9]+)?)"
                         r"(\(-?[0-9]+\))?(/\S*)?")
_UNIT = re.compile(r"[\w^\-?%/]*")
#: The fields of a signal line after its gain, before the description: integers, and
#: whether wfdb reads them with a sign (it reads a negative resolution as the next field).
_INTEGER_FIELDS = (("ADC resolution", False), ("ADC zero", True), ("initial value", True),
                   ("checksum", True), ("block size", False))
#: The largest baseline (ADC units) a signal line may give: a sample is at most 32 bits.
MAX_BASELINE = 2**31 - 1
#: The smallest ADC gain a signal is scaled by (units per adu): a smaller one makes every
#: sample an overflow.
MIN_GAIN = 1e-9


def read_header(base: str):
    """The header of the record ``base`` (its path without ``.hea``), and its stamp.

    The header file is checked (a regular file of at most :data:`MAX_HEADER_BYTES`) and
    its record line read before wfdb parses it: a record of more than :data:`MAX_SIGNALS`
    signals, a multi-segment record, and a sampling rate that is not a positive number
    are refused (wfdb would read ``-360`` as its default, 250 Hz).

    Raises
    ------
    InputError
        Naming the header file.
    """
    import wfdb

    header_path = base + ".hea"
    stamp = FileStamp.of(header_path, "a WFDB header", max_bytes=MAX_HEADER_BYTES)
    text = stamp.read_head(stamp.size).decode("latin-1")
    lines = _header_lines(text)
    record_line = lines[0] if lines else None
    if record_line is None:
        raise InputError(f"{header_path}: not a WFDB header (no record line)")
    fields = record_line.split()
    n_signals = parse_count(fields[1]) if len(fields) > 1 else None
    if n_signals is None:
        raise InputError(f"{header_path}: not a WFDB header (its record line "
                         f"{record_line[:40]!r} is not 'NAME SIGNALS [RATE [SAMPLES]]')")
    if "/" in fields[0]:
        segments = [line.split()[0] for line in lines[1:]]
        segments = [name for name in segments if name != "~" and not name.endswith("_layout")]
        shown = ", ".join(segments[:3]) + (", ..." if len(segments) > 3 else "")
        raise InputError(f"{header_path}: a multi-segment record (segments {shown}), which "
                         "is not read whole: give its segments' headers one by one")
    if n_signals > MAX_SIGNALS:
        raise InputError(f"{header_path}: declares {n_signals:,} signals; at most "
                         f"{MAX_SIGNALS} are read")
    if len(fields) > 2:
        check_rate(header_path, _RATE_FIELD.match(fields[2]).group(1))
    _check_signal_lines(header_path, lines, n_signals)
    try:
        header = wfdb.rdheader(base)
    except Exception as error:  # wfdb raises many kinds for a header that does not parse
        raise InputError(f"{header_path}: not a WFDB header ({first_line(error)})") from None
    return header, stamp


def _header_lines(text: str) -> list[str]:
    """A header's record line and the lines after it, without blank and comment lines."""
    return [line for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def _check_signal_lines(header_path: str, lines: list[str], n_signals: int) -> None:
    """Refuse more or fewer signal lines than the record line declares, signal lines whose format
    or gain field wfdb's lenient reading would take for something else (``212:-5``, a
    negative skew, reads as format 212 with gain -5 and shifts every later field), gains
    or baselines no signal could be scaled by, and integer fields that are not integers
    (wfdb would read them, and every field after them, as the signal's name). ``lines``
    are the header's (:func:`_header_lines`), the record line first."""
    if len(lines) - 1 != n_signals:
        raise InputError(f"{header_path}: declares {n_signals} signal"
                         f"{'' if n_signals == 1 else 's'} but has "
                         f"{len(lines) - 1} signal line{'' if len(lines) == 2 else 's'}")
    for number, line in enumerate(lines[1:n_signals + 1], start=1):
        fields = line.split()
        if len(fields) > 1 and not _FORMAT_FIELD.fullmatch(fields[1]):
            raise InputError(f"{header_path}: signal line {number}: format field "
                             f"{fields[1][:40]!r} is not FORMAT[xSAMPLES][:SKIP][+OFFSET]")
        if len(fields) > 2:
            gain = _GAIN_FIELD.fullmatch(fields[2])
            value = float(gain.group(1)) if gain else math.nan
            if not math.isfinite(value) or (value != 0 and abs(value) < MIN_GAIN):
                raise InputError(f"{header_path}: signal line {number}: gain field "
                                 f"{fields[2][:40]!r} is not a usable ADC gain (a number "
                                 f"of at least {MIN_GAIN:g}, or 0 for 200, with an optional "
                                 "(BASELINE) and /UNITS)")
            unit = gain.group(3)[1:] if gain and gain.group(3) else ""
            if not _UNIT.fullmatch(unit):
                raise InputError(f"{header_path}: signal line {number}: unit {unit[:40]!r} "
                                 "holds characters wfdb does not read in a unit (letters, "
                                 "digits and ^-?%/)")
            baseline = gain.group(2)[1:-1] if gain and gain.group(2) else None
            if baseline is not None:
                value = parse_count(baseline, signed=True)
                if value is None or abs(value) > MAX_BASELINE:
                    raise InputError(f"{header_path}: signal line {number}: baseline "
                                     f"{baseline[:40]} is not one a sample can have (at most "
                                     f"{MAX_BASELINE:,} in magnitude)")
        for (name, signed), field in zip(_INTEGER_FIELDS, fields[3:8]):
            if parse_count(field, signed=signed) is None:
                raise InputError(f"{header_path}: signal line {number}: {name} field "
                                 f"{field[:40]!r} is not {'an integer' if signed else 'a count'} "
                                 f"of at most {MAX_COUNT_DIGITS} digits")


def signal_file_names(base: str) -> list[str]:
    """The signal files a record's header names (none when it cannot be read: that is
    reported when the record opens)."""
    try:
        header, _ = read_header(base)
    except InputError:
        return []
    return list(dict.fromkeys(header.file_name or []))


def open_wfdb(text: str, lead: str | None, fs: float | None = None):
    """The lead ``lead`` of the WFDB record ``text`` (with or without ``.hea``); ``fs``,
    when given, must be the rate its header states."""
    import wfdb
    # wfdb's own table of bytes per sample of each format (it has no public name).
    from wfdb.io._signal import BYTES_PER_SAMPLE

    from .signals import Lead, choose_lead, distinct_names

    base = text[:-4] if text.lower().endswith(".hea") else text
    header_path = base + ".hea"
    header, header_stamp = read_header(base)
    names = distinct_names(list(header.sig_name or []))
    if not names:
        raise InputError(f"{header_path}: a WFDB header without signals")
    if not header.sig_len:
        layout = " (a multi-segment record's layout header)" if base.endswith("_layout") \
            else ""
        raise InputError(f"{header_path}: declares no samples{layout}: no signal to read")
    given, fs = fs, check_rate(header_path, header.fs)
    check_given_rate(header_path, given, fs, "its header")
    n_samples = check_duration(header_path, int(header.sig_len), fs)
    index = choose_lead(header_path, names, lead, list(header.units or []))
    n = len(names)
    frames = _per_signal(header.samps_per_frame, n, 1)
    skews = _per_signal(header.skew, n, 0)
    offsets = _per_signal(header.byte_offset, n, 0)
    # Bytes per frame of each signal file, and its largest skew: wfdb decodes every signal
    # of a file it reads, and reads a skewed signal's samples that many frames on.
    read_formats = set(BYTES_PER_SAMPLE) - set(COMPRESSED_FORMATS)
    frame_bytes: dict[str, float] = {}
    values: dict[str, int] = {}
    file_skew: dict[str, int] = {}
    for number, (file_name, fmt) in enumerate(zip(header.file_name, header.fmt)):
        if str(fmt) in COMPRESSED_FORMATS:
            raise InputError(f"{header_path}: signal {names[number]} has format {fmt} (FLAC), "
                             "which is not read: convert the record to format 16 or 212 "
                             "(wfdb.wrsamp)")
        if str(fmt) not in BYTES_PER_SAMPLE:
            raise InputError(f"{header_path}: signal {names[number]} has format {fmt}, "
                             "which is not read (formats: "
                             f"{', '.join(sorted(read_formats, key=int))})")
        if frames[number] < 1 or skews[number] < 0 or offsets[number] < 0:
            raise InputError(f"{header_path}: signal {names[number]} declares "
                             f"{frames[number]} samples per frame, skew {skews[number]} and "
                             f"byte offset {offsets[number]}; none may be negative")
        check_rate(header_path, fs * frames[number],
                   f"signal {names[number]}, {frames[number]} samples per frame, has a rate")
        if skews[number] > MAX_SKEW_SECONDS * fs:
            raise InputError(f"{header_path}: signal {names[number]} declares a skew of "
                             f"{skews[number]:,} samples; at most {MAX_SKEW_SECONDS:g} s "
                             "are read")
        frame_bytes[file_name] = (frame_bytes.get(file_name, 0)
                                  + frames[number] * BYTES_PER_SAMPLE[str(fmt)])
        values[file_name] = values.get(file_name, 0) + frames[number]
        file_skew[file_name] = max(file_skew.get(file_name, 0), skews[number])
    decoded = values[header.file_name[index]]
    check_values_per_second(header_path, decoded, fs)
    if frames[index] > 1:
        from .. import logs

        logs.warning_once(f"Warning: {header_path}: signal {names[index]} has "
                          f"{frames[index]} samples per frame: read as wfdb reads it, "
                          f"averaged over each frame, at {fs:g} Hz, not its own "
                          f"{fs * frames[index]:g} Hz")
    stamps = [header_stamp]
    directory = os.path.dirname(base)
    for number, file_name in enumerate(header.file_name):
        if number and header.file_name[number - 1] == file_name:
            continue
        signal_path = os.path.join(directory, file_name)
        if not os.path.exists(signal_path):
            raise InputError(f"{header_path}: its signal file {signal_path} is missing")
        stamp = FileStamp.of(signal_path, "a WFDB signal file")
        needed = offsets[number] + math.ceil((n_samples + file_skew[file_name])
                                             * frame_bytes[file_name])
        if stamp.size < needed:
            raise InputError(f"{signal_path}: truncated ({stamp.size:,} bytes; the header "
                             f"{header_path} declares {n_samples:,} samples, "
                             f"{needed:,} bytes)")
        stamps.append(stamp)

    def read(start: int, stop: int) -> np.ndarray:
        try:
            record = wfdb.rdrecord(base, sampfrom=start, sampto=stop, channels=[index])
        except Exception as error:
            raise InputError(f"{header_path}: cannot read samples {start}-{stop} "
                             f"({first_line(error)})") from None
        return record.p_signal[:, 0]

    return Lead(text, os.path.basename(base), names[index], fs, n_samples,
                annotations_base=base, values_per_sample=decoded, files=tuple(stamps),
                leads=tuple(names), unit=(header.units or [None] * n)[index],
                started=(None if header.base_time is None else
                         RecordingStart(header.base_time, header.base_date)),
                _read=read)


def _per_signal(values, n: int, default: int) -> list[int]:
    """A header's per-signal field, with wfdb's None for an absent value as ``default``."""
    values = list(values) if values is not None else []
    values += [None] * (n - len(values))
    return [default if value is None else int(value) for value in values[:n]]
