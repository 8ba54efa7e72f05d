"""The R-peak detector: neurokit2's implementation of the UNSW detector (Khamis et al.,
2016) on the raw lead, each peak then moved to the largest magnitude of the band-passed
lead within 25 ms, so that every beat's window is centred on its R wave whichever its
polarity.

Chosen by measurement on the 44 non-paced MIT-BIH records against the cardiologists'
beats, among sleepecg's detector, wfdb's XQRS and neurokit2's methods, with and without
pre-filtering and refinement (``scripts/benchmark_mitdb.py --parts peaks``, table in
docs/benchmarks.md): the best balance of sensitivity and positive predictivity, at about
3 s per half-hour record on one core.
"""

from __future__ import annotations

import numpy as np

#: How far a detected peak may move to the largest magnitude of the band-passed lead.
REFINE_SECONDS = 0.025


def detect_r_peaks(signal: np.ndarray, fs: float, filtered: np.ndarray) -> np.ndarray:
    """Sample indices (int64, increasing, unique) of the R peaks of one lead of ECG.

    ``signal`` is the raw lead, which the detector reads; ``filtered`` the same lead
    band-passed (:func:`anomaly.recordings.filters.band_pass`), where each peak is moved to
    its largest magnitude. A lead too short or flat to hold a beat has none.
    """
    import neurokit2

    if len(signal) < 2 * fs or not np.ptp(signal) > 0:
        return np.empty(0, dtype=np.int64)
    _, info = neurokit2.ecg_peaks(signal, sampling_rate=fs, method="khamis2016")
    peaks = np.unique(np.asarray(info["ECG_R_Peaks"], dtype=np.int64))
    peaks = peaks[(peaks >= 0) & (peaks < len(signal))]
    if len(peaks) == 0:
        return peaks
    radius = int(round(REFINE_SECONDS * fs))
    around = np.clip(peaks[:, None] + np.arange(-radius, radius + 1), 0, len(signal) - 1)
    moved = around[np.arange(len(peaks)), np.argmax(np.abs(filtered[around]), axis=1)]
    return np.unique(moved)
