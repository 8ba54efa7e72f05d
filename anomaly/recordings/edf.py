"""An EDF or EDF+ file, read lazily with ``edfio`` once its header's declared sizes have
been checked against the file (see :mod:`.limits`). EDF+D, a recording with gaps, is
refused."""

from __future__ import annotations

import datetime
import math
from pathlib import Path

import numpy as np

from ..exceptions import InputError, first_line
from ..io.layout import parse_count, parse_positive
from .limits import (MAX_HEADER_BYTES, MAX_SIGNALS, FileStamp, check_duration,
                     check_given_rate, check_rate, check_values_per_second)
from .times import RecordingStart

#: The fixed part of an EDF header, and each signal's part of the rest.
FIXED_HEADER_BYTES = 256
SIGNAL_HEADER_BYTES = 256
#: Where the signals' samples per data record start in the signal headers, in bytes per
#: signal: after the label (16), transducer (80), unit (8), four ranges (4 x 8) and
#: prefiltering (80).
SAMPLES_FIELD_OFFSET = 216
#: The label of an EDF+ file's annotation signals.
ANNOTATIONS_LABEL = "EDF Annotations"
#: The most bytes of annotation signals read (edfio reads them whole): a day of 1 s data
#: records with 60 annotation samples each (EDF+'s usual) is 10 MiB.
MAX_EDF_ANNOTATION_BYTES = 64 << 20
#: The start date EDF writes where the date is not known (and anonymising tools write):
#: not a date to show.
PLACEHOLDER_DATE = datetime.date(1985, 1, 1)


def check_edf_header(path: str, stamp: FileStamp) -> None:
    """Check what the header declares before edfio reads it: the number of signals (at
    most :data:`MAX_SIGNALS`, their headers inside the file), the number of data records
    (a count, or -1 while recording), their duration (a positive number of seconds) and
    size (positive samples per record; one record at least inside the file; at most
    :data:`~.limits.MAX_VALUES_PER_SECOND` values a second over all signals), and the
    annotation signals' bytes over the file (at most :data:`MAX_EDF_ANNOTATION_BYTES`).

    Raises
    ------
    InputError
        Naming the file and the field.
    """
    fixed = stamp.read_head(FIXED_HEADER_BYTES)
    if len(fixed) < FIXED_HEADER_BYTES:
        raise InputError(f"{path}: not an EDF file ({len(fixed)} bytes; its header alone "
                         f"is {FIXED_HEADER_BYTES})")
    field = fixed.decode("latin-1")
    # EDF+D (discontinuous) says so in its reserved field; edfio's is_continuous would
    # parse every annotation, in time that grows with the square of a record's.
    if field[192:197] == "EDF+D":
        raise InputError(f"{path}: an EDF+D recording with gaps is not supported")
    records, duration, signals = field[236:244].strip(), field[244:252].strip(), \
        field[252:256].strip()
    n = parse_count(signals)
    if n is None or not 1 <= n <= MAX_SIGNALS:
        raise InputError(f"{path}: not an EDF file, or one of too many signals (it declares "
                         f"{signals!r}; 1 to {MAX_SIGNALS} are read)")
    header_bytes = FIXED_HEADER_BYTES + SIGNAL_HEADER_BYTES * n
    if header_bytes > min(stamp.size, MAX_HEADER_BYTES):
        raise InputError(f"{path}: declares {n} signals, a header of "
                         f"{header_bytes:,} bytes, but the file has {stamp.size:,}")
    if parse_count(field[184:192].strip()) != header_bytes:
        raise InputError(f"{path}: its header declares {field[184:192].strip()!r} bytes; "
                         f"a header of {n} signals has {header_bytes}")
    if parse_count(records) is None and records != "-1":
        raise InputError(f"{path}: its number of data records {records!r} is not a count")
    if parse_positive(duration) is None:
        raise InputError(f"{path}: its data records' duration {duration!r} is not a "
                         "positive number of seconds")
    header = stamp.read_head(header_bytes).decode("latin-1")
    start = FIXED_HEADER_BYTES + SAMPLES_FIELD_OFFSET * n
    fields = [header[start + 8 * i:start + 8 * (i + 1)].strip() for i in range(n)]
    counts = [parse_count(field) for field in fields]
    if not all(count is not None and count > 0 for count in counts):
        raise InputError(f"{path}: its samples per data record ({', '.join(fields)[:60]}) "
                         "are not positive counts")
    record_bytes = 2 * sum(counts)
    if records != "0" and header_bytes + record_bytes > stamp.size:
        raise InputError(f"{path}: declares data records of {record_bytes:,} bytes, but the "
                         f"file holds {stamp.size - header_bytes:,} after its header")
    seconds = parse_positive(duration)
    labels = [header[FIXED_HEADER_BYTES + 16 * i:FIXED_HEADER_BYTES + 16 * (i + 1)].strip()
              for i in range(n)]
    check_values_per_second(path, sum(counts), 1.0 / seconds,
                            f"declares {sum(counts):,} values a data record of {seconds:g} s")
    # edfio reads the annotation signals whole, whatever the span asked for, and as many
    # records as the file holds whatever the header declares.
    n_records = max(parse_count(records) if records != "-1" else 0,
                    (stamp.size - header_bytes) // record_bytes)
    annotation_bytes = n_records * 2 * sum(count for label, count in zip(labels, counts)
                                           if label == ANNOTATIONS_LABEL)
    if annotation_bytes > MAX_EDF_ANNOTATION_BYTES:
        raise InputError(f"{path}: declares {annotation_bytes:,} bytes of annotations; at "
                         f"most {MAX_EDF_ANNOTATION_BYTES:,} are read")


def open_edf(text: str, lead: str | None, fs: float | None = None):
    """The lead ``lead`` of the EDF file ``text``; ``fs``, when given, must be the rate its
    header states for that lead.

    A header that declares more data records than the file holds is read as the file is
    (edfio's recovery), with one warning line naming the file.
    """
    import edfio

    from .. import logs
    from .signals import Lead, choose_lead, distinct_names

    stamp = FileStamp.of(text, "an EDF file")
    check_edf_header(text, stamp)
    try:
        with logs.set_aside_warnings(record=True) as caught:
            edf = edfio.read_edf(text, lazy_load_data=True)
    except Exception as error:  # edfio raises ValueError and others for a bad header
        raise InputError(f"{text}: not an EDF file ({first_line(error)[:200]})") from None
    for warning in caught:
        logs.warning_once(f"Warning: {text}: {first_line(warning.message)[:200]}")
    signals = list(edf.signals)
    if not signals:
        raise InputError(f"{text}: an EDF file without signals")
    names = distinct_names([signal.label.strip() for signal in signals])
    chosen = choose_lead(text, names, lead,
                         [signal.physical_dimension for signal in signals])
    signal = signals[chosen]
    for kind, (low, high) in (("physical", signal.physical_range),
                              ("digital", signal.digital_range)):
        if not (math.isfinite(low) and math.isfinite(high) and low != high):
            raise InputError(f"{text}: signal {names[chosen]}'s {kind} range {low:g} "
                             f"to {high:g} is not one its samples can be scaled by")
    given, fs = fs, check_rate(text, signal.sampling_frequency)
    check_given_rate(text, given, fs, "its header")
    n_samples = check_duration(text, int(round(edf.duration * fs)), fs)

    def read(start: int, stop: int) -> np.ndarray:
        try:
            return signal.get_data_slice(start / fs, stop / fs)
        except Exception as error:
            raise InputError(f"{text}: cannot read samples {start}-{stop} "
                             f"({first_line(error)})") from None

    return Lead(text, Path(text).stem, names[chosen], fs, n_samples,
                files=(stamp,), leads=tuple(names), unit=signal.physical_dimension.strip() or None,
                started=edf_start(text, edf, stamp), _read=read)


def edf_start(path: str, edf, stamp: FileStamp) -> RecordingStart | None:
    """When an EDF file's recording began, from its header alone: the start time field
    (``hh.mm.ss``) and the date, EDF+'s (``Startdate 06-DEC-2026`` in the recording
    field, ``X`` where it is not known) or else the start date field (``dd.mm.yy``, years
    85 to 99 in the 1900s). Not the fraction of a second EDF+ keeps in its first
    annotation: edfio would read every annotation of the file for it.

    A date not known, or :data:`PLACEHOLDER_DATE`, is left out; without a date, a start at
    midnight is the writer's placeholder (edfio's default) and there is no start (None),
    as for a time field that is not a time (with a warning naming the file)."""
    import edfio

    from .. import logs

    field = stamp.read_head(FIXED_HEADER_BYTES).decode("latin-1")
    try:
        time = datetime.datetime.strptime(field[176:184], "%H.%M.%S").time()
    except ValueError:
        logs.warning_once(f"Warning: {path}: its start time {field[176:184]!r} is not a time "
                          "(hh.mm.ss): its times are given from its start only")
        return None
    try:
        date = edf.recording.startdate
    except edfio.AnonymizedDateError:
        date = None
    except ValueError:  # Not an EDF+ recording field: EDF's own start date field.
        date = _start_date_field(field[168:176])
    else:
        if date.year < PLACEHOLDER_DATE.year:  # An EDF+ year of two digits: '06-DEC-26'.
            date = _start_date_field(field[168:176])
    if date == PLACEHOLDER_DATE:
        date = None
    if date is None and time == datetime.time(0, 0):
        return None
    return RecordingStart(time, date)


def _start_date_field(text: str) -> datetime.date | None:
    """EDF's start date field, ``dd.mm.yy``: years 85 to 99 in the 1900s, the others in
    the 2000s (None: not a date)."""
    try:
        date = datetime.datetime.strptime(text, "%d.%m.%y").date()
    except ValueError:
        return None
    # Python's two-digit years turn at 69, EDF's at 85.
    return date.replace(year=date.year + 100) if date.year < PLACEHOLDER_DATE.year else date
