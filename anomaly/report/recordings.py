"""The pictures of a scored recording: the score of every beat over the recording's time,
and ECG strips around its most anomalous beats (read again from the recording), for the
HTML report and ``--plot-dir``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .plots import plot_ecg_strips, plot_timeline, recording_plot_names, save_figure

#: ECG strips drawn per recording: around its most anomalous beats.
STRIPS = 4


def recording_figures(summary, job, limits):
    """The timeline and the strips of one scored recording (a job of the run), as
    figures; ``limits`` are the model's (its lead and beat window)."""
    from ..recordings.reading import read_strips
    from ..scoring.sources import recording_segment

    segment = recording_segment(job.options, limits)
    peaks, scores = summary.timeline(job.input)
    top = np.sort(peaks[np.argsort(scores, kind="stable")[::-1][:STRIPS]])
    strips = read_strips(job.input, segment, top)
    fs = strips[0].fs
    name = Path(job.input).name
    timeline = plot_timeline(peaks / fs, scores, summary.threshold,
                             title=f"{name}: anomaly score of every beat")
    window = (segment.window.before, segment.window.after)
    return timeline, plot_ecg_strips(strips, peaks, scores, summary.threshold, window,
                                     title=f"{name}: the {len(top)} most anomalous beats")


def save_recording_plots(summary, jobs, limits, directory: str | os.PathLike) -> list[Path]:
    """For every recording of the run: ``NAME.timeline.png`` and ``NAME.strips.png``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for job in jobs:
        if job.input in summary.timelines:
            figures = recording_figures(summary, job, limits)
            for figure, name in zip(figures, recording_plot_names(job.input)):
                written.append(save_figure(figure, directory / name))
    return written
