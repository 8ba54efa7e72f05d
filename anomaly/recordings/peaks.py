"""The R-peak detector.

PROVISIONAL: sleepecg's detector on the raw lead, until the MIT-BIH measurement in
scripts/benchmark_mitdb.py (part ``peaks``) chooses.
"""

from __future__ import annotations

import numpy as np


def detect_r_peaks(signal: np.ndarray, fs: float) -> np.ndarray:
    """Sample indices (int64, increasing) of the R peaks of one lead of ECG."""
    import sleepecg

    if len(signal) < 2 * fs or not np.ptp(signal) > 0:
        return np.empty(0, dtype=np.int64)
    return np.unique(np.asarray(sleepecg.detect_heartbeats(signal, fs), dtype=np.int64))
