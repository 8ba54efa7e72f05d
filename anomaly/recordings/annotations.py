"""Reference labels: a WFDB annotation file's beats, as AAMI classes matched to the beats
the detector found.

The AAMI EC57 classes group the MIT-BIH beat symbols: N (normal and bundle branch block
beats), S (supraventricular ectopic), V (ventricular ectopic), F (fusion), Q (paced and
unclassifiable). Beat symbols outside the standard's table (``B``, ``n``, ``r``) are Q.
Rhythm, noise and other non-beat annotations are not beats and are left out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..exceptions import InputError, first_line
from .limits import FileStamp, annotation_limit
from .times import format_time

#: AAMI EC57 class of each MIT-BIH beat symbol.
AAMI_CLASSES = {
    **dict.fromkeys("NLRej", "N"),
    **dict.fromkeys("AaJS", "S"),
    **dict.fromkeys("VE", "V"),
    "F": "F",
    **dict.fromkeys("/fQ", "Q"),
    **dict.fromkeys("Bnr", "Q"),
}
#: The label of a detected beat that no reference beat matches.
UNMATCHED = "-"
#: How far a detected beat may be from the reference beat it matches, in seconds.
MATCH_SECONDS = 0.150
#: The annotation files beside a record a message names at most.
SHOWN_BESIDE = 8


@dataclass(frozen=True)
class ReferenceBeats:
    """The reference beats of an annotation file: their samples, in order, their AAMI
    classes, and the file as it was read."""

    samples: np.ndarray
    classes: np.ndarray
    stamp: FileStamp


def read_reference_beats(base: str, extension: str, *, n_samples: int, fs: float,
                         start: int = 0, stop: int | None = None) -> ReferenceBeats:
    """The reference beats of ``base.extension`` in ``start:stop``, for a record of
    ``n_samples`` at ``fs``.

    The file's size is checked first (:func:`.limits.annotation_limit`: wfdb decodes a
    file whole, in about 130 bytes of memory per byte), and its content after: a file
    without beat annotations, or with annotations past the record's end, is not this
    record's annotations.

    Raises InputError when the file does not exist, is too large or does not parse.
    """
    import wfdb

    path = f"{base}.{extension}"
    if not os.path.exists(path):
        raise InputError(f"{path}: no such annotation file (--annotations {extension}"
                         f"{_others_beside(base)})")
    stamp = FileStamp.of(path, "an annotation file", max_bytes=annotation_limit(n_samples / fs),
                         limit_reason=f" for a record of {format_time(n_samples / fs)}")
    try:
        annotation = wfdb.rdann(base, extension)
    except Exception as error:  # wfdb raises many kinds for a file that does not parse
        raise InputError(f"{path}: not a WFDB annotation file ({first_line(error)})") from None
    symbols = np.asarray(annotation.symbol, dtype=object)
    samples = np.asarray(annotation.sample, dtype=np.int64)
    is_beat = np.array([symbol in AAMI_CLASSES for symbol in symbols], dtype=bool)
    if not is_beat.any():
        raise InputError(f"{path}: holds no beat annotations ({len(samples):,} annotations "
                         "in all): not a record's reference beats")
    outside = samples[(samples < 0) | (samples >= n_samples)]
    if len(outside):
        raise InputError(f"{path}: has an annotation at sample {outside[0]:,}, outside its "
                         f"record (samples 0 to {n_samples - 1:,}): not this record's "
                         "annotations")
    inside = is_beat & (samples >= start) & (samples < (n_samples if stop is None else stop))
    classes = np.array([AAMI_CLASSES[symbol] for symbol in symbols[inside]], dtype=object)
    order = np.argsort(samples[inside], kind="stable")
    return ReferenceBeats(samples[inside][order], classes[order], stamp)


def match_labels(peaks: np.ndarray, reference: np.ndarray, classes: np.ndarray,
                 fs: float) -> np.ndarray:
    """The class of the reference beat matched to each detected peak (one to one, within
    :data:`MATCH_SECONDS`, by wfdb's comparator, as the R-peak benchmark matches them),
    else :data:`UNMATCHED`."""
    from wfdb.processing import compare_annotations

    labels = np.full(len(peaks), UNMATCHED, dtype=object)
    if len(reference) == 0 or len(peaks) == 0:
        return labels
    comparison = compare_annotations(np.asarray(reference), np.asarray(peaks),
                                     int(round(MATCH_SECONDS * fs)))
    matched = comparison.matching_sample_nums
    found = matched >= 0
    labels[matched[found]] = classes[found]
    return labels


def _others_beside(base: str) -> str:
    """``; beside it: qrs, ecg``: the extensions of the files beside a record that may be
    its annotations (not its header nor the signal files it names), for a message; empty
    if none. At most :data:`SHOWN_BESIDE`, then ``...``."""
    import glob

    from .signals import recording_files

    own = {os.path.realpath(path) for path in recording_files(base)}
    stem = os.path.basename(base)
    found = sorted(os.path.basename(path)[len(stem) + 1:] for path in
                   glob.glob(glob.escape(base) + ".*")
                   if os.path.isfile(path) and os.path.realpath(path) not in own)
    shown = [repr(ext) if not ext.isprintable() else ext for ext in found[:SHOWN_BESIDE]]
    more = ", ..." if len(found) > SHOWN_BESIDE else ""
    return f"; beside it: {', '.join(shown)}{more}" if shown else ""
