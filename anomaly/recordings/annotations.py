"""Reference labels: a WFDB annotation file's beats, as AAMI classes matched to the beats
the detector found.

The AAMI EC57 classes group the MIT-BIH beat symbols: N (normal and bundle branch block
beats), S (supraventricular ectopic), V (ventricular ectopic), F (fusion), Q (paced and
unclassifiable). Beat symbols outside the standard's table (``B``, ``n``, ``r``) are Q.
Rhythm, noise and other non-beat annotations are not beats and are left out.
"""

from __future__ import annotations

import os

import numpy as np

from ..exceptions import InputError, first_line

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


def read_reference_beats(base: str, extension: str, *, start: int = 0,
                         stop: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(samples, classes)`` of the reference beats of ``base.extension`` in
    ``start:stop``, in order; classes are AAMI letters.

    Raises InputError when the file does not exist or does not parse.
    """
    import wfdb

    path = f"{base}.{extension}"
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such annotation file (--annotations {extension})")
    try:
        annotation = wfdb.rdann(base, extension, sampfrom=start, sampto=stop)
    except Exception as error:  # wfdb raises many kinds for a file that does not parse
        raise InputError(f"{path}: not a WFDB annotation file ({first_line(error)})") from None
    symbols = np.asarray(annotation.symbol, dtype=object)
    samples = np.asarray(annotation.sample, dtype=np.int64)
    is_beat = np.array([symbol in AAMI_CLASSES for symbol in symbols], dtype=bool)
    classes = np.array([AAMI_CLASSES[symbol] for symbol in symbols[is_beat]], dtype=object)
    order = np.argsort(samples[is_beat], kind="stable")
    return samples[is_beat][order], classes[order]


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
