"""The filter every beat, strip and R-peak refinement sees: the lead band-passed 0.5-40 Hz.

The band removes baseline wander below it and mains hum and muscle noise above it. The
filter runs forwards and backwards (zero phase), so a stretch read from the middle of a
recording is read with :data:`PAD_SECONDS` of signal on either side, in which the filter
settles: the samples kept are then those of a whole-record pass.
"""

from __future__ import annotations

import numpy as np

#: The band kept, in Hz.
BAND_HZ = (0.5, 40.0)
#: Signal read on either side of a stretch, for the filter to settle (and, for a chunk of
#: a recording, the R-peak detector's context).
PAD_SECONDS = 10.0


def band_pass(signal: np.ndarray, fs: float) -> np.ndarray:
    """The signal band-pass filtered to :data:`BAND_HZ` (zero phase, Butterworth)."""
    from scipy.signal import butter, sosfiltfilt

    low, high = BAND_HZ
    sos = butter(2, [low, min(high, 0.45 * fs)], btype="bandpass", fs=fs, output="sos")
    if len(signal) <= 3 * (2 * len(sos) + 1):
        return signal - signal.mean() if len(signal) else signal
    return sosfiltfilt(sos, signal)
