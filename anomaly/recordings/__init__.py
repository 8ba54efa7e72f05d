"""ECG recordings: from a continuous recording to scored, time-stamped beats.

- :mod:`~anomaly.recordings.signals`: opening a recording (a WFDB record, an EDF/EDF+ file,
  or a CSV of samples per lead), choosing its lead and reading it in chunks;
- :mod:`~anomaly.recordings.times`: ``--from``/``--to`` times (seconds or ``[hh:]mm:ss``);
- :mod:`~anomaly.recordings.filters`: the 0.5-40 Hz band-pass every beat and strip sees;
- :mod:`~anomaly.recordings.peaks`: the R-peak detector, chosen by measurement on MIT-BIH;
- :mod:`~anomaly.recordings.quality`: the stretches of a lead that cannot be read (flat,
  off baseline, clipped, noisy), whose beats are never flagged;
- :mod:`~anomaly.recordings.segment`: beats cut around their R peaks, with their RR
  context, streamed chunk by chunk;
- :mod:`~anomaly.recordings.annotations`: the reference labels of a WFDB annotation file,
  as AAMI classes matched to the detected beats;
- :mod:`~anomaly.recordings.patient`: the beats an unlabelled fit trains on.

No TensorFlow here; wfdb, edfio and the detector are imported when a recording is read.
"""

from types import MappingProxyType

#: The k of the threshold (mean + k x std of the calibration errors) of a model fitted
#: without labels on a recording's dominant beats (:mod:`.patient`), unless
#: ``--threshold-k`` says otherwise; other training beats keep the tutorial's 1. Chosen
#: label-free on the 22 MIT-BIH records of DS1 (the largest k keeping V sensitivity >=
#: 0.95 and S sensitivity >= 0.70 there, a V beat of an unreadable stretch counting as
#: missed) and checked on the 22 of DS2, which had no say: ``scripts/benchmark_patient.py``,
#: figures in docs/benchmarks.md.
RECORDING_THRESHOLD_K = 2.0
#: The ``code_distance`` of such a model unless ``--code-distance`` says otherwise: the
#: error alone, on which the k above was chosen. With the code's distance the same rule
#: chose k = 4, where the S sensitivity of DS2, held out, fell from 0.63 to 0.40; at
#: k = 2 it flagged 832 normal beats an hour against 689 (docs/benchmarks.md, issue 25).
RECORDING_CODE_DISTANCE = "off"
#: The ``threshold_source`` of such a model unless ``--threshold-source`` says otherwise:
#: one held-out fifth's scores, on which the k above was chosen (other training beats get
#: the detector's default, every fold's).
RECORDING_THRESHOLD_SOURCE = "heldout-refit"
#: The three, as the detector's parameters (read only).
RECORDING_SETTINGS = MappingProxyType({"threshold_k": RECORDING_THRESHOLD_K,
                                       "code_distance": RECORDING_CODE_DISTANCE,
                                       "threshold_source": RECORDING_THRESHOLD_SOURCE})
#: The fewest beats ``anomaly fit`` trains a model of a recording on. A span of a few
#: minutes gives hundreds; fewer than this is a span mostly unreadable or of another
#: lead's signal (a device attached late, an EEG read as ECG), on which a model flagged
#: nearly every later beat (2 training beats: 98%).
MIN_RECORDING_BEATS = 30
#: A recording of which more than this share of beats is flagged is said to be read
#: otherwise than the model knows it (:func:`flagged_share_note`).
MOST_FLAGGED = 0.5
#: A beats file of which more than this share of the readable rows is flagged is said to
#: be of beats the model does not know (:func:`too_many_flagged_note`)...
NEARLY_ALL_FLAGGED = 0.9
#: ... when it has at least this many readable rows.
NEARLY_ALL_ROWS = 30


def too_many_flagged_note(flagged: int, scored: int, unreadable: int, *,
                          recording: bool) -> str | None:
    """What a reader should know when too many of an input's beats are flagged (None
    otherwise): for a recording, more than half (:func:`flagged_share_note`); for a beats
    file, of at least :data:`NEARLY_ALL_ROWS` readable rows, more than
    :data:`NEARLY_ALL_FLAGGED` of them. A model fitted on ECG5000 flags every readable beat
    of MIT-BIH 100 and 208 (docs/benchmarks.md, "ECG5000's models on MIT-BIH's beats"),
    cut as ECG5000's are but of another recorder, lead and patients; a file of abnormal
    beats alone is flagged so too, hence "unless"."""
    if recording:
        return flagged_share_note(flagged, scored)
    readable = scored - unreadable
    if readable < NEARLY_ALL_ROWS or flagged <= NEARLY_ALL_FLAGGED * readable:
        return None
    return (f"{flagged:,} of the {readable:,} readable rows scored are flagged, nearly all: "
            "unless they are all abnormal beats, the model does not know these beats (of "
            "another database, recorder, lead or patient than it was fitted on); fit on "
            "beats like them")


def flagged_share_note(flagged: int, beats: int) -> str | None:
    """What a reader should know when more than :data:`MOST_FLAGGED` of a recording's
    beats are flagged (None otherwise): the patient model then does not know this
    patient's usual beats, and its flags say little. On MIT-BIH that is atrial
    fibrillation and flutter (202, 203 and 222 flag 2,000 to 3,300 normal beats an
    hour) and the paced records (104: 59%), which the tool does not support; or a
    recording whose beats are mostly ectopic (208: 46% V, S or F beats, 1,442 of 2,431
    flagged)."""
    if beats <= 0 or flagged <= MOST_FLAGGED * beats:
        return None
    return (f"{flagged:,} of its {beats:,} beats are flagged, more than half: the model does "
            "not know this recording's usual beats (a model of another stretch or patient "
            "meeting atrial fibrillation, another rhythm, a paced rhythm, which is not "
            "supported), or most of them are ectopic (the rhythm counts them); read the "
            "rhythm and the families rather than the flags")
