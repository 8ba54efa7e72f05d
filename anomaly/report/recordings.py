"""The pictures of a scored recording: the score of every beat over the recording's time,
and ECG strips around its most anomalous beats (read again from the recording), for the
HTML report and ``--plot-dir``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .plots import plot_ecg_strips, plot_timeline, recording_plot_names, save_figure

if TYPE_CHECKING:
    from ..recordings.segment import SegmentOptions

#: ECG strips drawn per recording: around its most anomalous beats.
STRIPS = 4


def recording_figures(summary, input_name: str, segment: "SegmentOptions"):
    """The timeline and the strips of one scored recording, as figures; ``segment`` is how
    its beats were found (its lead and beat window), by which the strips are read again."""
    from ..recordings.reading import read_strips

    peaks, scores = summary.timeline(input_name)
    top = np.sort(peaks[np.argsort(scores, kind="stable")[::-1][:STRIPS]])
    strips = read_strips(input_name, segment, top)
    fs = strips[0].fs
    name = Path(input_name).name
    timeline = plot_timeline(peaks / fs, scores, summary.threshold,
                             title=f"{name}: anomaly score of every beat")
    window = (segment.window.before, segment.window.after)
    return timeline, plot_ecg_strips(strips, peaks, scores, summary.threshold, window,
                                     title=f"{name}: the {len(top)} most anomalous beats")


def save_recording_plots(summary, recordings: dict[str, "SegmentOptions"],
                         directory: str | os.PathLike) -> list[Path]:
    """For every recording of the run (its name and how its beats were found):
    ``NAME.timeline.png`` and ``NAME.strips.png``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for input_name, segment in recordings.items():
        figures = recording_figures(summary, input_name, segment)
        for figure, name in zip(figures, recording_plot_names(input_name)):
            written.append(save_figure(figure, directory / name))
    return written
