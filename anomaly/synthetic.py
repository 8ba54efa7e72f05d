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


#: The waves of a synthetic recording's beats by kind: (offset from the R peak in
#: seconds, width in seconds, height in mV).
_HOLTER_WAVES = {"sinus": ((-0.2, 0.025, 0.15), (0.0, 0.012, 1.2), (0.28, 0.05, 0.3)),
                 "af": ((0.0, 0.012, 1.2), (0.28, 0.05, 0.3)),
                 "v": ((0.0, 0.04, -1.4), (0.3, 0.06, 0.5))}


def synthetic_holter(duration_s: float, fs: float, *, seed: int = 0,
                     af: tuple[float, float] | None = None, pvc_every: int = 9,
                     bigeminy: tuple[float, float] | None = None,
                     trigeminy: tuple[float, float] | None = None, runs: tuple[float, ...] = (),
                     pauses: tuple[float, ...] = (),
                     pause_s: float = 2.6) -> tuple[np.ndarray, list]:
    """A one-lead ambulatory recording in millivolts, with known beats.

    Sinus rhythm near 75 bpm with a little variability; a premature ventricular beat
    (early, wide, inverted, no P wave, a compensatory pause after it) every
    ``pvc_every``-th beat; atrial fibrillation from ``af[0]`` to ``af[1]`` seconds
    (intervals drawn from 0.45 to 1.1 s, no P waves, fibrillatory waves); ventricular
    bigeminy (every other beat a PVC) in the ``bigeminy`` stretch and trigeminy (every
    third) in the ``trigeminy`` one; a run of five PVCs at
    150 bpm at each of ``runs``; and a sinus pause of ``pause_s`` at each of ``pauses``.
    Baseline wander and noise throughout.

    Returns
    -------
    signal : ndarray, shape (round(duration_s * fs),)
    beats : list of (float, str)
        Each beat's R peak (seconds) and kind: ``sinus``, ``v`` or ``af``.
    """
    rng = np.random.default_rng(seed)
    pending_runs, pending_pauses = sorted(runs), sorted(pauses)
    beats, now, index = [], 1.0, 0
    while now < duration_s - 1.5:
        in_af = af is not None and af[0] <= now < af[1]
        if pending_runs and now >= pending_runs[0]:
            pending_runs.pop(0)
            for _ in range(5):
                beats.append((now, "v"))
                now += 0.4
            now += 0.7
            continue
        # Every ``every``-th beat a PVC (a bigeminy: every other), coming early after the
        # beat before it; where the bigeminy and trigeminy stretches overlap, bigeminy.
        every = (2 if bigeminy is not None and bigeminy[0] <= now < bigeminy[1] else
                 3 if trigeminy is not None and trigeminy[0] <= now < trigeminy[1] else
                 pvc_every)
        ventricular = not in_af and index % every == every - 1
        beats.append((now, "af" if in_af else "v" if ventricular else "sinus"))
        if in_af:
            now += rng.uniform(0.45, 1.1)
        elif ventricular:
            now += 1.1  # the compensatory pause
        elif index % every == every - 2:
            now += 0.5  # the next beat comes early
        elif pending_pauses and now >= pending_pauses[0]:
            pending_pauses.pop(0)
            now += pause_s
        else:
            now += 0.8 + 0.03 * np.sin(now / 5.0) + rng.normal(0, 0.01)
        index += 1
    t = np.arange(int(round(duration_s * fs))) / fs
    signal = 0.1 * np.sin(2 * np.pi * 0.15 * t) + rng.normal(0, 0.01, len(t))
    if af is not None:
        fibrillating = (t >= af[0]) & (t < af[1])
        signal += fibrillating * 0.05 * (np.sin(2 * np.pi * 5.7 * t)
                                         + np.sin(2 * np.pi * 7.3 * t + 1))
    for time, kind in beats:
        near = slice(int((time - 0.5) * fs), int((time + 0.6) * fs))
        for offset, width, height in _HOLTER_WAVES[kind]:
            signal[near] += height * np.exp(-0.5 * ((t[near] - time - offset) / width) ** 2)
    return signal, beats
