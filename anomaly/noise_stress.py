"""A noise stress test for beat detectors, after the MIT-BIH Noise Stress Test (Moody,
Muldrow and Mark, 1984), for benchmarks and tests.

The MIT-BIH NST adds recorded ambulatory noise of three kinds to clean records: baseline
wander (``bw``), muscle artefact (``ma``) and electrode motion (``em``, the hardest: it
looks like beats). Those noise records are not among the data here, so each kind is
generated from a model, reproducibly (a seed), with neurokit2's ``signal_distort`` at
:data:`NOISE_FS` and resampled to the record's rate:

- ``bw``: Gaussian noise drawn at 0.3 and 1 Hz, spline-interpolated (amplitudes 1 and
  0.3): a slow wander of the respiration band and below;
- ``ma``: Laplacian noise drawn at 50 and 150 Hz (amplitudes 1 and 0.7): broadband
  muscle noise over and above the QRS band;
- ``em``: Laplacian noise drawn at 2, 6 and 15 Hz (amplitudes 1, 0.6 and 0.4), plus
  bursts (one a minute, each 0.1-1% of the record, 2.5 times as large, drawn at 15 Hz):
  baseline jumps and beat-like transients inside the QRS band.

The figures are therefore not those of the published NST records, only of this model of
them. As ``nst`` does, noise is added by the standard protocol (a clean first
:data:`CLEAN_SECONDS`, then :data:`SEGMENT_SECONDS` of noise and as many clean,
alternately), and the signal-to-noise ratio is that of the noisy segments: S is the QRS
complexes' power, (peak-to-peak amplitude)^2 / 8 with the amplitude the mean over the
reference beats less the largest and smallest 5%, and N the noise's mean square.
"""

from __future__ import annotations

import numpy as np

from .recordings.filters import resample, resampling_ratio

#: The rate noise is generated at before being resampled to the record's.
NOISE_FS = 1000.0
KINDS = ("bw", "ma", "em")
#: The clean start, then the length of each noisy (and each clean) segment, as nst's.
CLEAN_SECONDS = 300.0
SEGMENT_SECONDS = 120.0
#: Half the window around a reference beat where its peak-to-peak amplitude is measured.
QRS_HALF_WIDTH_SECONDS = 0.05

_MODELS = {
    "bw": {"noise_shape": "gaussian", "noise_amplitude": [1.0, 0.3],
           "noise_frequency": [0.3, 1.0]},
    "ma": {"noise_shape": "laplace", "noise_amplitude": [1.0, 0.7],
           "noise_frequency": [50.0, 150.0]},
    "em": {"noise_shape": "laplace", "noise_amplitude": [1.0, 0.6, 0.4],
           "noise_frequency": [2.0, 6.0, 15.0], "artifacts_amplitude": 2.5,
           "artifacts_frequency": 15.0},
}


def stress_noise(kind: str, n_samples: int, fs: float, seed: int) -> np.ndarray:
    """``n_samples`` of noise of ``kind`` (:data:`KINDS`) at ``fs`` Hz: zero mean, mean
    square 1."""
    import neurokit2

    if kind not in _MODELS:
        raise ValueError(f"noise kind {kind!r} (one of {', '.join(KINDS)})")
    ratio = resampling_ratio(NOISE_FS, fs)
    length = int(np.ceil(n_samples / ratio)) + 1
    model = dict(_MODELS[kind])
    if "artifacts_amplitude" in model:
        model["artifacts_number"] = max(1, round(length / NOISE_FS / 60))
    # Distorting zeros gives the noise itself, at the amplitudes given (not relative).
    noise = neurokit2.signal_distort(np.zeros(length), sampling_rate=NOISE_FS,
                                     random_state=seed, silent=True, **model)
    noise = resample(noise, ratio)[:n_samples]
    noise = noise - noise.mean()
    return noise / np.sqrt(np.mean(noise ** 2))


def noisy_segments(n_samples: int, fs: float) -> np.ndarray:
    """Whether each sample lies in a noisy segment of the standard protocol."""
    seconds = np.arange(n_samples) / fs - CLEAN_SECONDS
    return (seconds >= 0) & (np.floor(seconds / SEGMENT_SECONDS) % 2 == 0)


def qrs_power(signal: np.ndarray, beats: np.ndarray, fs: float) -> float:
    """S: (the trimmed mean peak-to-peak amplitude of the QRS complexes at ``beats``)^2 / 8."""
    half = max(1, int(round(QRS_HALF_WIDTH_SECONDS * fs)))
    beats = beats[(beats >= half) & (beats + half < len(signal))]
    if len(beats) == 0:
        raise ValueError("no reference beat to measure the signal's amplitude on")
    windows = signal[beats[:, None] + np.arange(-half, half + 1)]
    amplitudes = np.sort(np.ptp(windows, axis=1))
    trim = len(amplitudes) // 20
    amplitude = amplitudes[trim:len(amplitudes) - trim].mean()
    return float(amplitude ** 2 / 8)


def add_noise(signal: np.ndarray, fs: float, beats: np.ndarray, kind: str, snr_db: float,
              seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``signal`` with noise of ``kind`` at ``snr_db`` in the noisy segments of the
    standard protocol, and those segments (a boolean per sample). ``beats``: the
    reference beats' samples, where the signal's amplitude is measured."""
    noisy = noisy_segments(len(signal), fs)
    noise = stress_noise(kind, len(signal), fs, seed)
    power = np.mean(noise[noisy] ** 2) if noisy.any() else 1.0
    gain = np.sqrt(qrs_power(signal, beats, fs) / (power * 10 ** (snr_db / 10)))
    return signal + np.where(noisy, gain * noise, 0.0), noisy
