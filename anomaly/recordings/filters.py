"""The filter every beat, strip and R-peak refinement sees (the lead band-passed 0.5-40 Hz),
and the resampling that brings a lead to the rate a detector was made for.

The band removes baseline wander below it and mains hum and muscle noise above it. The
filter runs forwards and backwards (zero phase), so a stretch read from the middle of a
recording is read with :data:`PAD_SECONDS` of signal on either side, in which the filter
settles: the samples kept are then those of a whole-record pass.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

#: The band kept, in Hz.
BAND_HZ = (0.5, 40.0)
#: Signal read on either side of a stretch, for the filter to settle (and, for a chunk of
#: a recording, the R-peak detector's context).
PAD_SECONDS = 10.0
#: Mains frequencies, in Hz (Europe's and Asia's, the Americas'), and the quality factor of
#: the notch that takes each out: a band f0 / Q wide (1.7 Hz at 50 Hz; a grid's frequency
#: drifts by a few tenths of a hertz).
MAINS_HZ = (50.0, 60.0)
MAINS_Q = 30.0
#: The largest denominator of a resampling ratio: the rate reached is within 1/2,000,000
#: of the one asked (relative), and exact for the usual rates.
MAX_RESAMPLING_FACTOR = 1000


def band_pass(signal: np.ndarray, fs: float) -> np.ndarray:
    """The signal band-pass filtered to :data:`BAND_HZ` (zero phase, Butterworth)."""
    from scipy.signal import butter, sosfiltfilt

    low, high = BAND_HZ
    sos = butter(2, [low, min(high, 0.45 * fs)], btype="bandpass", fs=fs, output="sos")
    if len(signal) <= 3 * (2 * len(sos) + 1):
        return signal - signal.mean() if len(signal) else signal
    return sosfiltfilt(sos, signal)


def high_pass(signal: np.ndarray, fs: float, hz: float) -> np.ndarray:
    """The signal above ``hz`` (zero phase, Butterworth); all of it where ``hz`` is not
    under the Nyquist frequency, or the signal is too short to filter."""
    from scipy.signal import butter, sosfiltfilt

    if not hz < 0.45 * fs:
        return signal
    sos = butter(2, hz, btype="highpass", fs=fs, output="sos")
    return sosfiltfilt(sos, signal) if len(signal) > 3 * (2 * len(sos) + 1) else signal


def without_mains(signal: np.ndarray, fs: float) -> np.ndarray:
    """The signal with each of :data:`MAINS_HZ` notched out (zero phase) whose notch lies
    under the Nyquist frequency (at 100 Hz neither: a recorder's anti-aliasing filter
    took the hum out before sampling, or it aliased to where no notch finds it)."""
    from scipy.signal import filtfilt, iirnotch

    for hz in MAINS_HZ:
        # The notch and its band (f0 / Q wide) under the Nyquist frequency.
        if hz * (1 + 0.5 / MAINS_Q) < fs / 2:
            b, a = iirnotch(hz, MAINS_Q, fs)
            if len(signal) > 3 * max(len(a), len(b)):  # filtfilt's padding
                signal = filtfilt(b, a, signal)
    return signal


def resampling_ratio(fs: float, rate: float) -> Fraction:
    """``up / down``, the rational ratio nearest ``rate / fs`` whose ``down`` is at most
    :data:`MAX_RESAMPLING_FACTOR`: resampled by it, a signal of ``fs`` Hz has
    ``fs * ratio`` Hz (exactly ``rate`` for the usual rates)."""
    return Fraction(rate / fs).limit_denominator(MAX_RESAMPLING_FACTOR)


def resample(signal: np.ndarray, ratio: Fraction) -> np.ndarray:
    """``signal`` resampled by ``ratio`` (polyphase, with scipy's anti-aliasing filter):
    sample ``i`` of the result lies at sample ``i / ratio`` of the input. The signal is
    extended past its ends along a line, not with zeros, so that a lead's offset does not
    become a step at either end."""
    from scipy.signal import resample_poly

    if ratio == 1:
        return signal
    return resample_poly(signal, ratio.numerator, ratio.denominator, padtype="line")
