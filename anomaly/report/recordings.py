"""The pictures of a scored recording: the score of every beat over the recording's time,
and ECG strips around its most anomalous beats (read again from the recording), for the
HTML report and ``--plot-dir``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .plots import (plot_ecg_strips, plot_heart_rate, plot_timeline, recording_plot_names,
                    save_figure)

if TYPE_CHECKING:
    from ..recordings.segment import SegmentOptions

#: ECG strips drawn per recording: around its most anomalous beats.
STRIPS = 4
#: Seconds of signal a strip shows, its beat in the middle.
STRIP_SECONDS = 6.0


def strip_beats(peaks: np.ndarray, scores: np.ndarray, reach: float,
                count: int = STRIPS) -> list[tuple[int, list[int]]]:
    """Which beats get a strip: the ``count`` highest-scoring beats that no higher-scoring
    beat's strip already shows, in time order.

    Two beats flagged a few hundred milliseconds apart (a beat and a false detection on
    it, a couplet) would otherwise give two strips of the same few seconds. So the beats
    are taken from the highest score down; a beat within ``reach`` of a beat already
    chosen (closer than half a strip: it is in that strip) gets no strip of its own and
    is named in that strip's title instead. No two strips then show the same beat in
    their middle, and every beat ranked above the last strip's is in a strip.

    Parameters
    ----------
    peaks : ndarray, shape (n,)
        The beats' R peaks (samples), in increasing order.
    scores : ndarray, shape (n,)
    reach : float
        Half a strip, in samples.
    count : int, default STRIPS

    Returns
    -------
    list of (int, list of int)
        Per strip, in time order: the index of its beat, and the indices of the beats
        ranked above the last strip's that it also shows (highest score first).
    """
    chosen: list[tuple[int, list[int]]] = []
    for index in np.argsort(-scores, kind="stable"):
        if len(chosen) == count:
            break
        shown_in = next((also for beat, also in chosen
                         if abs(int(peaks[index]) - int(peaks[beat])) < reach), None)
        if shown_in is None:
            chosen.append((int(index), []))
        else:
            shown_in.append(int(index))
    return sorted(chosen)


def recording_figures(summary, input_name: str, segment: "SegmentOptions", rhythm=None):
    """The timeline and the strips of one scored recording, as figures; ``segment`` is how
    its beats were found (its lead and beat window), by which the strips are read again.
    The strips are around the beats :func:`strip_beats` chooses. With the recording's
    ``rhythm`` (:class:`anomaly.holter.summary.RecordingRhythm`), its heart rate is drawn
    under the timeline, on the same time axis."""
    from ..recordings.reading import read_strips
    from ..recordings.signals import open_lead

    peaks, scores, readable = summary.timeline(input_name)
    fs = open_lead(input_name, lead=segment.lead, fs=segment.fs).fs
    # A beat of an unreadable stretch gets no strip of its own: its score says nothing.
    ranked = np.where(readable, scores, -np.inf)
    chosen = strip_beats(peaks, ranked, reach=STRIP_SECONDS * fs / 2)
    chosen = [(beat, also) for beat, also in chosen if readable[beat]]
    strips = read_strips(input_name, segment, peaks[[beat for beat, _ in chosen]],
                         seconds=STRIP_SECONDS)
    name = Path(input_name).name
    analysable = summary.analysable.get(input_name)
    axes = None
    if rhythm is not None:
        from matplotlib.figure import Figure

        figure = Figure(figsize=(12, 5.6), layout="constrained")
        axes = figure.subplots(2, 1, sharex=True, height_ratios=(3.5, 2.1))
        rate = rhythm.analysis.heart_rate
        plot_heart_rate(rate.minute_start_s, rate.per_minute_bpm,
                        episodes=rhythm.analysis.atrial_fibrillation.episodes,
                        span_s=peaks[-1] / fs if len(peaks) else None, ax=axes[1],
                        title=f"{name}: heart rate of each minute")
    timeline = plot_timeline(peaks / fs, scores, summary.threshold, readable=readable,
                             unreadable=() if analysable is None else analysable.longest(),
                             title=f"{name}: anomaly score of every beat"
                             + ("" if analysable is None else f" ({analysable.headline()})"),
                             ax=None if axes is None else axes[0])
    window = (segment.window.before, segment.window.after)
    return timeline, plot_ecg_strips(strips, peaks, scores, summary.threshold, window,
                                     also=[peaks[also] for _, also in chosen],
                                     readable=readable,
                                     title=f"{name}: the {len(strips)} most anomalous beats")


def save_recording_plots(summary, recordings: dict[str, "SegmentOptions"],
                         directory: str | os.PathLike, rhythms=None) -> list[Path]:
    """For every recording of the run (its name and how its beats were found):
    ``NAME.timeline.png`` (with the heart rate under it when ``rhythms``, by name, hold
    the recording's) and ``NAME.strips.png``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for input_name, segment in recordings.items():
        figures = recording_figures(summary, input_name, segment,
                                    (rhythms or {}).get(input_name))
        for figure, name in zip(figures, recording_plot_names(input_name)):
            written.append(save_figure(figure, directory / name))
    return written
