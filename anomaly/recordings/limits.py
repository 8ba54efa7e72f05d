"""What a recording may declare, checked before a byte of its signal is decoded.

A recording's header says how much there is to read: signals, samples, samples per frame,
skews, byte offsets, records and their duration. A hostile header (a few bytes) can
declare terabytes, and the libraries that read recordings allocate what it declares. So
each declared size is checked here against the file's real size and against limits no
ECG recording comes near, and a recording's files are stamped when opened (:class:`FileStamp`):
a file that grows while it is read is read to the length it had, and that length is what
is hashed; a file rewritten meanwhile is refused.
"""

from __future__ import annotations

import hashlib
import math
import os
import stat
from dataclasses import dataclass

from ..exceptions import InputError

#: Sampling rates of an ECG, in Hz (per signal, frames times samples per frame).
MIN_FS, MAX_FS = 50.0, 20_000
#: Longest recording read: 31 days (patch monitors record up to 14-30 days).
MAX_RECORDING_SECONDS = 31 * 24 * 3600
#: Most signals in a recording (a 12-lead ECG has 12; polysomnography a few dozen).
MAX_SIGNALS = 256
#: Largest WFDB header, or EDF header, read (MIT-BIH's are 150-400 bytes).
MAX_HEADER_BYTES = 1 << 20
#: Values decoded per second of a recording (every signal of the files a lead is read
#: from): a chunk of 2^24 values then holds more than a minute with its filter padding.
MAX_VALUES_PER_SECOND = 200_000
#: Largest magnitude of a sample, in the recording's units: no ECG lead in any unit (V,
#: mV, uV, nV) comes near it, and the filters' arithmetic stays far from overflowing.
MAX_ABS_VALUE = 1e9
#: Largest WFDB skew, in seconds: skew aligns signals by a few samples, not by hours.
MAX_SKEW_SECONDS = 10.0
#: Largest annotation file read (wfdb decodes one in about 130 bytes of memory per byte):
#: 4 MiB holds two million beats, two weeks at 100 beats per minute.
MAX_ANNOTATION_BYTES = 4 << 20
#: Bytes an annotation file may take per second of its record, beyond
#: :data:`ANNOTATION_SLACK_BYTES`: a beat is one 2-byte annotation, so 16 bytes a second is
#: eight annotations a second (480 beats per minute, with room for rhythm and notes).
ANNOTATION_BYTES_PER_SECOND = 16
ANNOTATION_SLACK_BYTES = 64 << 10
#: Bytes at the end of a file hashed when it is stamped, and again when its reading is
#: done: a file rewritten (longer or not) while it was read is told from one appended to.
TAIL_BYTES = 64 << 10


def check_rate(path: str, fs: float | str, what: str = "has a sampling rate") -> float:
    """``fs`` as a float, or an InputError naming ``path`` when it is not an ECG's rate
    (not a number, not positive, or outside :data:`MIN_FS` to :data:`MAX_FS`)."""
    try:
        rate = float(fs)
    except (TypeError, ValueError):
        raise InputError(f"{path}: {what} of {fs!r}, which is not a number") from None
    if not MIN_FS <= rate <= MAX_FS:  # False for NaN too.
        raise InputError(f"{path}: {what} of {rate:g} Hz, not one of an ECG "
                         f"({MIN_FS:g} to {MAX_FS:,} Hz)")
    return rate


#: Two sampling rates within this fraction of each other are the same rate.
SAME_RATE_TOLERANCE = 1e-3


def check_given_rate(path: str, given: float | None, stated: float, source: str) -> None:
    """An InputError naming ``path`` when a rate given with ``--fs`` is not the one the
    recording states (``source``: ``its header``, ``its time column``), within 0.1%.

    ``--fs`` gives the rate of a signal CSV without a time column; elsewhere it is a
    check: a rate within 0.1% of the stated one is accepted (a signal CSV is then read at
    the ``--fs`` given), any other refused.
    """
    if given is not None and abs(stated - given) > SAME_RATE_TOLERANCE * given:
        raise InputError(f"{path}: --fs {given:g} but {source} says {stated:.6g} Hz (--fs "
                         "is for a signal CSV without a time column)")


def check_duration(path: str, n_samples: int, fs: float) -> int:
    """``n_samples`` when it is a positive count lasting at most
    :data:`MAX_RECORDING_SECONDS` at ``fs``, else an InputError naming ``path``."""
    if n_samples <= 0:
        raise InputError(f"{path}: declares {n_samples:,} samples; a recording has at "
                         "least one")
    if n_samples / fs > MAX_RECORDING_SECONDS:
        raise InputError(f"{path}: declares {n_samples:,} samples at {fs:g} Hz, "
                         f"{n_samples / fs / 86400:,.0f} days; at most "
                         f"{MAX_RECORDING_SECONDS // 86400} days are read")
    return int(n_samples)


def check_values_per_second(path: str, values_per_sample: int, fs: float,
                            what: str | None = None) -> None:
    """An InputError naming ``path`` (and saying ``what`` it declares) when reading a lead
    decodes more than :data:`MAX_VALUES_PER_SECOND` values a second: ``values_per_sample``
    at ``fs`` samples a second."""
    if values_per_sample * fs > MAX_VALUES_PER_SECOND:
        what = what or (f"reading one lead decodes {values_per_sample:,} values per sample "
                        f"at {fs:g} Hz")
        raise InputError(f"{path}: {what}, {values_per_sample * fs:,.6g} a second; at most "
                         f"{MAX_VALUES_PER_SECOND:,} values a second are read")


def annotation_limit(duration_seconds: float) -> int:
    """The largest annotation file read for a record of ``duration_seconds``."""
    return min(MAX_ANNOTATION_BYTES, ANNOTATION_SLACK_BYTES
               + math.ceil(ANNOTATION_BYTES_PER_SECOND * duration_seconds))


@dataclass(frozen=True)
class FileStamp:
    """A file of a recording as it was when opened: its path, size and identity.

    Readers read at most ``size`` bytes, and :meth:`check_unchanged` tells, once the
    reading is done, whether the file is still the one that was read (it may have grown:
    a recorder appending to it). ``line_ended`` is None for a binary file, and for a text
    file whether its last byte was a line end: if not, and it grew, its last line was read
    half-written.
    """

    path: str
    size: int
    device: int
    inode: int
    modified_ns: int
    line_ended: bool | None = None
    tail_sha256: str = ""

    @classmethod
    def of(cls, path: str | os.PathLike, what: str, *, max_bytes: int | None = None,
           limit_reason: str = "", text: bool = False) -> "FileStamp":
        """Stamp ``path``: an InputError unless it is an existing, readable regular file
        (a FIFO or a device may never end, and reading one blocks) of at most
        ``max_bytes``; ``text`` for a file read in lines."""
        path = str(path)
        try:
            info = os.stat(path)
        except FileNotFoundError:
            raise InputError(f"{path}: no such file") from None
        except OSError as error:
            raise InputError(f"{path}: cannot be read ({error.strerror or error})") from None
        if stat.S_ISDIR(info.st_mode):
            raise InputError(f"{path}: is a directory, expected {what}")
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{path}: is not a regular file (a FIFO, socket or device), "
                             f"expected {what}")
        if not os.access(path, os.R_OK):
            raise InputError(f"{path}: permission denied")
        if max_bytes is not None and info.st_size > max_bytes:
            raise InputError(f"{path}: {info.st_size:,} bytes; {what} of at most "
                             f"{max_bytes:,} bytes is read{limit_reason}")
        tail = _tail(path, info.st_size)
        line_ended = (not tail or tail.endswith(b"\n")) if text else None
        return cls(path, info.st_size, info.st_dev, info.st_ino, info.st_mtime_ns,
                   line_ended, hashlib.sha256(tail).hexdigest())

    def check_unchanged(self) -> None:
        """An InputError unless the file is still this one, grown or not: the same inode,
        at least as long, and, when as long, not modified since."""
        try:
            info = os.stat(self.path)
        except OSError:
            info = None
        same = (info is not None and (info.st_dev, info.st_ino) == (self.device, self.inode)
                and (info.st_size > self.size
                     or (info.st_size == self.size and info.st_mtime_ns == self.modified_ns))
                # A file rewritten longer: the bytes that ended it when opened are not there.
                and hashlib.sha256(_tail(self.path, self.size)).hexdigest() == self.tail_sha256)
        if not same:
            raise InputError(f"{self.path}: replaced, shortened or rewritten while it was "
                             "read; nothing was written, run again on the finished file")
        if info.st_size > self.size and self.line_ended is False:
            raise InputError(f"{self.path}: grew while it was read, and its last line was "
                             "still being written when it was opened; nothing was written, "
                             "run again")

    def read_head(self, n: int) -> bytes:
        """The file's first ``n`` bytes (at most its stamped size)."""
        with open(self.path, "rb") as file:
            return file.read(min(n, self.size))


def _tail(path: str, size: int) -> bytes:
    """The last :data:`TAIL_BYTES` of the file's first ``size`` bytes."""
    with open(path, "rb") as file:
        file.seek(max(0, size - TAIL_BYTES))
        return file.read(min(size, TAIL_BYTES))


def stamps_sha256(stamps) -> str:
    """SHA-256 of the stamped files' bytes, each read to its stamped size, one after the
    other: what was read, even of a file that has grown since. An InputError when one was
    replaced or rewritten (see :meth:`FileStamp.check_unchanged`)."""
    from ..io.writers import files_sha256

    for stamp in stamps:
        stamp.check_unchanged()
    return files_sha256([stamp.path for stamp in stamps], [stamp.size for stamp in stamps])
