"""Opening a recording and reading one of its leads, a chunk at a time.

Three kinds of recording, each read by its module:

- a **WFDB record** (PhysioNet, :mod:`.wfdb_record`): ``NAME.hea`` and the signal files it
  names; the record is given as ``NAME`` or ``NAME.hea``;
- an **EDF or EDF+** file (``.edf``, :mod:`.edf`);
- a **signal CSV** (:mod:`.signal_csv`): a column per lead, and a time column or ``--fs``.

:func:`open_lead` checks everything it can before any sample is read (every size the
header declares against the files and :mod:`.limits`, the lead exists, the sampling rate
is an ECG's) and returns a :class:`Lead`, whose :meth:`Lead.read` returns physical values
(millivolts for MIT-BIH). Reads must move forward: a read may start before the previous
one ended (chunks overlap), but never before the previous one started. That is what lets
a signal CSV stream.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..exceptions import InputError
from ..io.layout import parse_count
from .lead_names import default_lead, is_ecg_lead, listed, not_a_voltage
from .limits import MAX_ABS_VALUE, FileStamp
from .times import RecordingStart

#: The longest name a lead keeps (a model records its lead's name, at most this long) ...
MAX_LEAD_NAME = 64
#: ... of which a name given its lead's index (``#12``) leaves this many for the index.
INDEX_ROOM = 8
#: How many of a recording's other ECG leads check the beats of the lead read
#: (:func:`open_other_leads`): a Holter recorder's two or three channels; more would
#: cost two detectors' time each for little (a beat on none of two is on no lead).
MAX_OTHER_LEADS = 2


#: Voltage units as recordings declare them (lower case, micro as ``u``), in millivolts.
MILLIVOLTS_PER_UNIT = {"mv": 1.0, "uv": 1e-3, "v": 1e3, "nv": 1e-6, "millivolt": 1.0,
                       "millivolts": 1.0, "microvolt": 1e-3, "microvolts": 1e-3,
                       "volt": 1e3, "volts": 1e3}


def millivolts_per(unit: str) -> float | None:
    """What one ``unit`` (as a recording declares it: ``mV``, ``uV``, ``\u00b5V``...) is in
    millivolts; None for a unit that is not a voltage, or none."""
    # An EDF header is ASCII: its micro sign (Latin-1 0xB5, or UTF-8) is read as the
    # replacement character, the only one a voltage's unit holds before V.
    return MILLIVOLTS_PER_UNIT.get(re.sub("\ufffd+", "u", unit.strip()).replace("\u00b5", "u")
                                   .replace("\u03bc", "u").lower())


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
    files : tuple of FileStamp
        The recording's files as they were when opened (header, signal files): what is
        read of them, hashed, and checked unchanged after reading.
    leads : tuple of str
        Every lead of the recording, in its order (``name`` is one of them).
    unit : str or None
        The unit of its values as the recording declares it (``mV``, ``uV``...; None:
        not declared).
    started : RecordingStart or None
        When the recording began by the recorder's clock, as its header says (None: it
        does not).
    """

    path: str
    record: str
    name: str
    fs: float
    n_samples: int
    annotations_base: str | None = None
    values_per_sample: int = 1
    files: tuple[FileStamp, ...] = ()
    leads: tuple[str, ...] = ()
    unit: str | None = None
    started: RecordingStart | None = None
    _read: Callable[[int, int], np.ndarray] = field(repr=False, default=None)

    @property
    def duration(self) -> float:
        return self.n_samples / self.fs

    @property
    def millivolts_per_unit(self) -> float | None:
        """What one unit of the values is in millivolts (None: the unit is not declared
        or not a voltage), so that a strip can be drawn on ECG paper's 10 mm/mV."""
        return millivolts_per(self.unit or "")

    def describe(self, other_leads: tuple["Lead", ...] = ()) -> str:
        """``lead MLII (of MLII, V1; beats checked on V1)``: the lead read, those it was
        chosen from, and the ``other_leads`` that checked its beats
        (:func:`open_other_leads`)."""
        checked = (f"; beats checked on {listed([lead.name for lead in other_leads])}"
                   if other_leads else "")
        others = f" (of {listed(self.leads)}{checked})" if len(self.leads) > 1 else ""
        return f"lead {self.name}{others}"

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``start:stop`` (clipped to the lead) as float64 physical values, NaN
        where the recording has no valid sample (WFDB's invalid value: a lead off, a
        gap): :func:`held` fills them, and they are read as a stretch with no signal."""
        start, stop = max(0, start), min(self.n_samples, stop)
        if stop <= start:
            return np.empty(0)
        # A header's extreme gain or range makes the readers' arithmetic overflow: the
        # values are then infinite, and said so below in one line, not as numpy warnings.
        with np.errstate(all="ignore"):
            values = np.asarray(self._read(start, stop), dtype=np.float64).reshape(-1)
        if len(values) != stop - start:
            raise InputError(f"{self.path}: the signal ends at sample {start + len(values)}, "
                             f"before the {self.n_samples} samples it had when opened "
                             "(shortened while it was read?)")
        usable = np.isnan(values) | (np.abs(values) <= MAX_ABS_VALUE)  # Not infinities.
        if not usable.all():
            from .times import format_time

            at = int(np.argmin(usable))
            raise InputError(f"{self.path}: lead {self.name} holds {values[at]:g} at sample "
                             f"{start + at} ({format_time((start + at) / self.fs)}), "
                             f"not an ECG's value (at most {MAX_ABS_VALUE:g} in magnitude: "
                             "are its gain and range right?)")
        return values


class NoSuchLead(InputError):
    """A lead asked for that the recording does not have.

    ``path`` names the recording (its header for a WFDB record), ``lead`` is what was
    asked for and ``leads`` are the recording's leads: a caller that asked on someone
    else's behalf (a model's lead) can say so.
    """

    def __init__(self, path: str, lead: str, leads: list[str] | tuple[str, ...]):
        shown = lead if len(lead) <= MAX_LEAD_NAME else f"{lead[:MAX_LEAD_NAME]}..."
        super().__init__(f"{path}: no lead {shown!r} (its leads: {listed(leads)}; give a "
                         "name or a 0-based index)")
        self.path, self.lead, self.leads = path, lead, tuple(leads)


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
    from .wfdb_record import signal_file_names

    directory = os.path.dirname(base)
    files = [base + ".hea"] + [os.path.join(directory, name)
                               for name in signal_file_names(base)]
    if annotations is not None:
        files.append(f"{base}.{annotations}")
    return files


def locate_recording(spec: str) -> str:
    """Where the recording ``spec`` is read from.

    A path that exists here, or a WFDB record here (``NAME.hea`` beside it), is taken as
    given. A bare MIT-BIH record name (``208`` or ``208.hea``, no directory) that is
    neither is looked up in the MIT-BIH data on this machine, as
    :func:`anomaly.datasets.find_mitdb` finds it: ``$ANOMALY_DATA_DIR``, the download
    cache (its files checked against their pinned SHA-256 first, no link followed), then
    ``../shared/data``. Anything else is returned as given, for the caller to refuse as
    missing in its own words.

    Raises
    ------
    InputError
        ``spec`` is an MIT-BIH record name found nowhere (the message says where it was
        looked for and how to fetch it), or the cache holds a damaged or planted file of
        it.
    """
    if spec == "-" or os.path.exists(spec) or wfdb_base(spec) is not None:
        return spec
    name = spec[:-4] if spec.lower().endswith(".hea") else spec
    if os.path.dirname(name):
        return spec
    from ..datasets import (DATA_DIR_VARIABLE, DatasetName, dataset_places, find_mitdb,
                            mitdb_records)

    if name not in mitdb_records():
        return spec
    found = find_mitdb([name])
    if found is None:
        places = [str(place) for place in dataset_places(DatasetName.mitdb)]
        raise InputError(f"{spec}: no such file or WFDB record here, nor MIT-BIH record "
                         f"{name} in {', '.join(places[:-1])} or {places[-1]}; 'anomaly data "
                         f"fetch mitdb {name}' downloads it, or set {DATA_DIR_VARIABLE} to "
                         "a directory holding mitdb/")
    return str(found / name)


def wfdb_base(path: str) -> str | None:
    """A WFDB record's path without ``.hea``, or None when ``path`` is not one."""
    lower = path.lower()
    if lower.endswith(".hea"):
        return path[:-4]
    # exists, not isfile: a FIFO or a directory named NAME.hea is then refused as such.
    if not lower.endswith((".csv", ".csv.gz", ".edf", ".parquet")) and path != "-" and \
            os.path.exists(path + ".hea"):
        return path
    return None


def runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """The runs of true values of a boolean array, as ``(first, stop)`` index pairs."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], np.asarray(flags, dtype=np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def joined(stretches, gap: int, apart: int | None = None) -> list[tuple[int, int, int]]:
    """``stretches`` (``(first, end, code)``, in order) with those at most ``gap`` apart,
    from one's end to the next's first, made one, whose code is that of its longest
    part; one of code ``apart`` only with another of that code."""
    out: list[list[int]] = []
    longest: list[int] = []
    for first, end, code in stretches:
        if out and first - out[-1][1] <= gap and ((code == apart) == (out[-1][2] == apart)):
            out[-1][1] = end
            if end - first > longest[-1]:
                longest[-1], out[-1][2] = end - first, code
        else:
            out.append([first, end, code])
            longest.append(end - first)
    return [(first, end, code) for first, end, code in out]


def held(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``values`` with each missing sample (NaN) holding the last valid one before it (the
    first valid one, before any; 0 with none), and where they were missing. Held, a lead
    off reads as flat, never as the filters' NaN."""
    missing = np.isnan(values)
    if not missing.any():
        return values, missing
    valid = np.flatnonzero(~missing)
    if len(valid) == 0:
        return np.zeros_like(values), missing
    last = np.maximum.accumulate(np.where(missing, 0, np.arange(len(values))))
    filled = values[last]
    filled[:valid[0]] = values[valid[0]]
    return filled, missing


def open_lead(path: str | os.PathLike, *, lead: str | None = None, fs: float | None = None,
              signal_csv: bool = True) -> Lead:
    """Open a recording and choose its lead.

    Parameters
    ----------
    path : str or path-like
        A WFDB record (with or without ``.hea``), an ``.edf`` file or a signal CSV.
    lead : str, optional
        A lead's name, or its 0-based index; default
        :func:`~anomaly.recordings.lead_names.default_lead`'s choice
        (MLII or II when the recording has it, else its first lead that may be ECG).
    fs : float, optional
        The sampling rate of a signal CSV without a time column; for any other recording
        (a time column, a WFDB or EDF header states its rate) a check: a rate other than
        the stated one is refused.

    Raises
    ------
    InputError
        Naming the file: it is missing, unreadable or malformed, its signal file is
        missing or shorter than the header says, the lead does not exist (a
        :class:`NoSuchLead`), the rate is unknown or not the one ``fs`` gives.
    """
    text = str(path)
    opener = _opener(text, signal_csv)
    if opener is not None:
        opened = opener(text, lead, fs)
        if lead is not None and not_a_voltage(opened.unit):  # Never chosen unasked.
            from .. import logs

            logs.warning_once(f"Warning: {text}: lead {opened.name} is in "
                              f"{logs.printable(opened.unit)}, not a voltage: read as ECG "
                              "as asked")
        return opened
    if not os.path.exists(text):
        raise InputError(f"{text}: no such file or WFDB record (no {text}.hea either)")
    raise InputError(f"{text}: not a recording (expected a WFDB record, an .edf file or a "
                     "signal .csv file)")


def _opener(text: str, signal_csv: bool) -> Callable[..., Lead] | None:
    """The function that opens a recording of this name's kind (None: not a recording's
    name)."""
    lower = text.lower()
    if lower.endswith(".edf"):
        from .edf import open_edf as opener
    elif wfdb_base(text) is not None or lower.endswith(".hea"):
        from .wfdb_record import open_wfdb as opener
    elif lower.endswith(".csv") and signal_csv:
        from .signal_csv import open_signal_csv as opener
    else:
        opener = None
    return opener


def open_other_leads(lead: Lead, most: int = MAX_OTHER_LEADS) -> tuple[Lead, ...]:
    """The recording's other ECG leads that check ``lead``'s beats: the first ``most`` of
    the others that are ECG leads by name and unit
    (:func:`~anomaly.recordings.lead_names.is_ecg_lead`: a pulse wave or a respiration
    signal follows the heart too, but not its QRS complexes' instants), sampled as it is
    (the same rate and length). A detection that neither the second detector nor any
    detector on them finds, where one of them reads the beats about it, is no beat
    (:func:`~anomaly.recordings.quality.unseen_elsewhere`). A lead that cannot be opened
    so (its header refused, another rate or length) is left out, said once
    (:func:`not_checking`)."""
    opener = _opener(lead.path, signal_csv=True)
    if opener is None:
        return ()
    opened = []
    for name in lead.leads:
        if len(opened) == most:
            break
        if name == lead.name or not is_ecg_lead(name):
            continue
        try:
            other = opener(lead.path, LeadName(name), lead.fs)
        except (InputError, ValueError) as error:  # edfio: a header field out of range.
            not_checking(lead, name, str(error))
            continue
        if (other.fs, other.n_samples) != (lead.fs, lead.n_samples):
            not_checking(lead, name, f"{other.n_samples:,} samples at {other.fs:g} Hz, not "
                                     f"{lead.n_samples:,} at {lead.fs:g} Hz")
        elif is_ecg_lead(other.name, other.unit):
            opened.append(other)
    return tuple(opened)


def not_checking(lead: Lead, other: str, why: str) -> None:
    """Say, once, that the recording's lead ``other``, which would check ``lead``'s beats
    (:func:`open_other_leads`), does not (``why``: an error's text, the recording's name
    before it left out): a lead the user did not ask for never fails a run."""
    from .. import logs

    why = why.removeprefix(f"{lead.path}: ")
    logs.warning_once(f"Warning: {lead.path}: lead {other} does not check the beats of lead "
                      f"{lead.name}: {why}")


class LeadName(str):
    """A lead asked for by its name only, never read as an index: the lead a model was
    fitted on (a model fitted on the lead named ``1`` must not read another recording's
    second lead)."""


def distinct_names(names: list[str | None]) -> list[str]:
    """The leads' names, as a lead is named in messages, by ``--lead`` and in a model
    fitted on it: each one lead's, printable, at most :data:`MAX_LEAD_NAME` characters,
    and none that reads as a 0-based index. A longer name is cut and ends in a digest of
    the whole (``...~1a2b3c4d``: the same lead in every recording, wherever it is); a
    name that several leads share (some EDF and WFDB files name two signals ``ECG``) or
    that is a number becomes the name and the lead's index, ``ECG#0`` and ``ECG#1``; a
    lead without a name is its index, ``#0``; control characters become ``?``. Where a
    name so made is another lead's own (leads ECG, ECG and ECG#0), both are given their
    index again (``ECG#0#0``, ``ECG#0#2``): a name ending in ``#k`` made here is lead k's,
    so this ends (within as many rounds as leads: a recording has at most
    :data:`~anomaly.recordings.limits.MAX_SIGNALS`)."""
    import hashlib
    from collections import Counter

    def indexed(name: str, index: int) -> str:
        return f"{name[:MAX_LEAD_NAME - INDEX_ROOM]}#{index}"

    def cut(name: str) -> str:
        if len(name) <= MAX_LEAD_NAME:
            return name
        digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
        return f"{name[:MAX_LEAD_NAME - len(digest) - 1]}~{digest}"

    clean = [cut("".join(c if c.isprintable() else "?" for c in (name or "")).strip())
             for name in names]
    counts = Counter(clean)
    named = [indexed(name, index) if not name or counts[name] > 1
             or parse_count(name) is not None else name
             for index, name in enumerate(clean)]
    while len(set(named)) < len(named):
        counts = Counter(named)
        named = [indexed(name, index) if counts[name] > 1 else name
                 for index, name in enumerate(named)]
    return named


def choose_lead(path: str, names: list[str], lead: str | None,
                units: list[str | None] | None = None) -> int:
    """The index of the lead asked for (a name, or a 0-based index; a :class:`LeadName`
    by its name only), or of the default. ``names`` are :func:`distinct_names`: a name
    several leads share is no lead's, and no name reads as an index. A model's lead that
    is none of them is the one lead whose name it became, if there is one (a model
    fitted, before names were told apart, on the lead named ``1``, now ``1#0``). ``units``
    are the leads' declared units where the recording has them:
    :func:`~anomaly.recordings.lead_names.default_lead` reads them."""
    if lead is None:
        return default_lead(path, names, units)
    spec = lead.strip()
    if spec in names:
        return names.index(spec)
    if isinstance(lead, LeadName):
        became = [index for index, name in enumerate(names) if name == f"{spec}#{index}"]
        if len(became) == 1:
            return became[0]
        raise NoSuchLead(path, lead, names)
    index = parse_count(spec)
    if index is not None and index < len(names):
        return index
    raise NoSuchLead(path, lead, names)

