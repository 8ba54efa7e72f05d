"""Synthetic heartbeats for the offline demo and for tests.

A normal beat is a sum of Gaussian waves (P, Q, R, S, T) with small random changes in
timing, height and width, plus noise, z-normalised per beat as in ECG5000. Abnormal beats
change the shape the way common arrhythmias do: a wide QRS with no P wave and an inverted
T (premature ventricular contraction), an elevated ST segment, or a missing P wave with an
early, tall R. Labels follow ECG5000: 1 normal, 0 abnormal.
"""

from __future__ import annotations

import numpy as np

# (centre as a fraction of the beat, height, width as a fraction of the beat)
_WAVES = {
    "P": (0.20, 0.15, 0.035),
    "Q": (0.36, -0.12, 0.012),
    "R": (0.40, 1.00, 0.014),
    "S": (0.44, -0.25, 0.014),
    "T": (0.68, 0.30, 0.060),
}
ABNORMAL_KINDS = ("pvc", "st_elevation", "no_p_wave")


def _beat(rng: np.random.Generator, length: int, kind: str | None) -> np.ndarray:
    t = np.linspace(0.0, 1.0, length)
    waves = {name: list(params) for name, params in _WAVES.items()}
    for params in waves.values():
        params[0] += rng.normal(0, 0.006)
        params[1] *= rng.normal(1, 0.08)
        params[2] *= rng.normal(1, 0.06)
    beat = np.zeros(length)
    if kind == "pvc":
        waves.pop("P")
        for name in ("Q", "R", "S"):
            waves[name][2] *= 3.0
        waves["T"][1] *= -1.5
    elif kind == "st_elevation":
        beat += 0.25 * ((t > 0.46) & (t < 0.66))
    elif kind == "no_p_wave":
        waves.pop("P")
        waves["R"][0] -= 0.05
        waves["R"][1] *= 1.4
    for centre, height, width in waves.values():
        beat += height * np.exp(-0.5 * ((t - centre) / width) ** 2)
    # Baseline wander and noise vary from beat to beat, as in real recordings.
    wander = 0.1 * rng.lognormal(0.0, 0.5)
    beat += wander * np.sin(2 * np.pi * (t * rng.uniform(0.3, 1.0) + rng.uniform()))
    beat += rng.normal(0, 0.02 * rng.lognormal(0.0, 0.6), length)
    return (beat - beat.mean()) / beat.std()


def synthetic_beats(
    n_normal: int = 1000, n_abnormal: int = 600, *, length: int = 140, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Generate beats and their labels, shuffled.

    Returns
    -------
    values : ndarray of shape (n_normal + n_abnormal, length)
    labels : ndarray of shape (n_normal + n_abnormal,), int: 1 normal, 0 abnormal
    """
    if length < 20:
        raise ValueError(f"length must be at least 20 samples, got {length}")
    rng = np.random.default_rng(seed)
    kinds = [None] * n_normal + [ABNORMAL_KINDS[i % len(ABNORMAL_KINDS)] for i in range(n_abnormal)]
    values = np.stack([_beat(rng, length, kind) for kind in kinds]) if kinds else np.empty((0, length))
    labels = np.array([1] * n_normal + [0] * n_abnormal, dtype=int)
    order = rng.permutation(len(labels))
    return values[order], labels[order]


def write_beats_csv(path, values: np.ndarray, labels: np.ndarray | None = None, *,
                    header: bool = False, label_name: str = "label",
                    significant_digits: int | None = 8) -> None:
    """Write beats (and labels as the last column) as CSV, atomically.

    8 significant digits by default, as ECG5000 is written; None writes each number in
    the fewest digits that read back exactly.
    """
    from .io.writers import atomic_write

    with atomic_write(path) as file:
        if header:
            names = [f"t{i}" for i in range(values.shape[1])] + ([label_name] if labels is not None else [])
            file.write(",".join(names) + "\n")
        for row, trace in enumerate(values):
            fields = [repr(float(v)) if significant_digits is None
                      else f"{v:.{significant_digits}g}" for v in trace]
            if labels is not None:
                fields.append(str(labels[row]))
            file.write(",".join(fields) + "\n")
