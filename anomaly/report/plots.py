"""Pictures a person looks at: reconstructions with the error shaded, the score histogram.

Each function takes arrays and an optional ``ax`` and returns the Figure (one that adds
to an ``ax``, its new axis); nothing calls ``pyplot.show``. Figures are built without pyplot, so no display or backend is needed.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..holter.windows import values_per_second
from ..io.beats import is_anomaly
from ..io.writers import atomic_write

if TYPE_CHECKING:
    from ..recordings.segment import BeatWindow
    from ..recordings.times import RecordingStart

#: The files :func:`save_batch_plots` writes into its directory.
BATCH_PLOTS = ("score_histogram.png", "normal_beat.png", "anomalous_beat.png")
#: The files :func:`save_recording_plots` writes for each recording: ``{name}`` is the
#: recording's file name without its extension.
RECORDING_PLOTS = ("{name}.timeline.png", "{name}.strips.png")

_NORMAL_COLOUR = "tab:blue"
_ANOMALY_COLOUR = "tab:red"


def _axes(ax, figsize=(7, 4)):
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, layout="constrained")
    return figure, figure.add_subplot()


def plot_reconstruction(trace: np.ndarray, reconstruction: np.ndarray, *, title: str = "",
                        score: float | None = None, threshold: float | None = None,
                        window: "BeatWindow | None" = None, ax=None):
    """A trace drawn over its reconstruction, the error between them shaded.

    With the ``window`` a recording's beats were cut by, the time axis is in milliseconds
    from the R peak (marked), as a reader of ECG expects; without, in samples (a beats
    file's rows say nothing of their rate). Amplitudes are the model's input: a beats
    file's values, a recording's beat z-normalised (in standard deviations of the beat)
    unless the window keeps its amplitude (the recording's units, baseline filtered).
    """
    figure, ax = _axes(ax)
    if window is None:
        where, unit = np.arange(len(trace)), "sample"
    else:
        per_second = values_per_second(window.before, window.after, window.samples)
        where = (np.arange(len(trace)) / per_second - window.before) * 1000.0
        unit = "ms from the R peak"
        ax.axvline(0.0, color="grey", linestyle=":", linewidth=1)
    ax.plot(where, trace, color="black", linewidth=1.5, label="input")
    ax.plot(where, reconstruction, color="tab:orange", linewidth=1.5, label="reconstruction")
    ax.fill_between(where, trace, reconstruction, color="lightcoral", alpha=0.6, label="error")
    if score is not None:
        verdict = "" if threshold is None else ("  (anomaly)" if score > threshold else "  (normal)")
        title = f"{title}\nscore {score:.4f}{verdict}" if title else f"score {score:.4f}{verdict}"
    ax.set_title(title)
    ax.set_xlabel(unit)
    ax.set_ylabel("value (as in the input)" if window is None else
                  "amplitude (recording's units)" if window.keep_amplitude else
                  "amplitude (SDs of the beat)")
    ax.legend(loc="best")
    return figure


#: Scores spread over more than this ratio (largest over smallest) are drawn on a
#: logarithmic axis: the normal beats' scores, bunched near the smallest, are then seen
#: beside the threshold rather than as one bar (or, over time, as a line at zero).
LOG_AXIS_SPREAD = 100.0


def logarithmic(scores: np.ndarray) -> bool:
    """Whether ``scores`` are drawn on a logarithmic axis: every finite one is positive
    and the largest is more than :data:`LOG_AXIS_SPREAD` times the smallest."""
    scores = np.asarray(scores, dtype=np.float64)
    scores = scores[np.isfinite(scores)]
    return bool(len(scores) and scores.min() > 0
                and scores.max() / scores.min() > LOG_AXIS_SPREAD)


def _logarithmic_axis(ax, which: str) -> None:
    """``ax``'s ``which`` axis (``x`` or ``y``) logarithmic, its ticks written 0.1, 1, 10
    rather than as powers of ten: read at a glance."""
    from matplotlib.ticker import FuncFormatter

    getattr(ax, f"set_{which}scale")("log")
    getattr(ax, f"{which}axis").set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))


def histogram_bins(scores: np.ndarray, count: int = 60) -> tuple[np.ndarray, bool]:
    """``count`` bins for a histogram of ``scores``: their edges, and whether they are
    logarithmic (:func:`logarithmic`). Scores that are not finite are left out of the
    bins (and so of the histogram)."""
    scores = np.asarray(scores, dtype=np.float64)
    scores = scores[np.isfinite(scores)]
    if logarithmic(scores):
        return np.geomspace(scores.min(), scores.max(), count + 1), True
    if len(scores) and np.ptp(scores) <= 1e-9 * max(1.0, float(np.abs(scores).max())):
        # One score (to the precision of its size): numpy's bins of a 1e15 would be
        # narrower than a float tells apart. One bin, 1% either side.
        middle = float(scores.mean())
        half = max(abs(middle) * 0.01, 1e-12)
        return np.linspace(middle - half, middle + half, count + 1), False
    return np.histogram_bin_edges(scores, bins=count), False


def plot_score_histogram(scores: np.ndarray, threshold: float, *, truth: np.ndarray | None = None,
                         ax=None):
    """Histogram of scores with the threshold line; split by label when labels are known.
    Scores spread over orders of magnitude are drawn on a logarithmic axis
    (:func:`histogram_bins`)."""
    figure, ax = _axes(ax)
    bins, log_axis = histogram_bins(scores)
    if truth is None:
        ax.hist(scores, bins=bins, color="tab:gray", alpha=0.8, label="all beats")
    else:
        ax.hist(scores[truth == 0], bins=bins, color=_NORMAL_COLOUR, alpha=0.6, label="labelled normal")
        ax.hist(scores[truth == 1], bins=bins, color=_ANOMALY_COLOUR, alpha=0.6, label="labelled anomaly")
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.4f}")
    if log_axis:
        _logarithmic_axis(ax, "x")
    ax.set_xlabel("anomaly score" + (" (logarithmic axis)" if log_axis else ""))
    ax.set_ylabel("beats")
    ax.set_title("Anomaly scores")
    ax.legend(loc="best")
    return figure


def save_figure(figure, path: str | os.PathLike) -> Path:
    """Write a figure as PNG, atomically."""
    with atomic_write(path, "wb") as file:
        figure.savefig(file, format="png", dpi=100)
    return Path(path)


def save_batch_plots(detector, summary, directory: str | os.PathLike) -> list[Path]:
    """The standard pictures of a scored run, as PNGs in ``directory``.

    - ``normal_beat.png``: a typical beat the detector calls normal (the median score
      among a sample of them), over its reconstruction;
    - ``anomalous_beat.png``: the most anomalous beat over its reconstruction;
    - ``score_histogram.png``: the scores of every readable row, with the threshold.

    ``summary`` is a :class:`anomaly.scoring.summary.ScoreSummary`.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    histogram, normal, anomalous = BATCH_PLOTS
    scores, truth = summary.readable_scores()
    written = [save_figure(plot_score_histogram(scores, summary.threshold, truth=truth),
                           directory / histogram)]
    examples = [(summary.typical_normal(), "Normal beat", normal),
                ((summary.most_anomalous() or [None])[0], "Most anomalous beat", anomalous)]
    examples = [example for example in examples if example[0] is not None]
    if not examples:  # No readable beat kept (all unreadable, or none drawn again).
        return written
    values = np.stack([beat.values for beat, _, _ in examples])
    # A beat's context (its RR context), after its samples, is not drawn with them.
    samples, reconstructions = (detector.scaling_.samples(inputs) for inputs in
                                (values, detector.reconstruct(values)))
    for (beat, title, name), beat_samples, reconstruction in zip(examples, samples,
                                                                 reconstructions):
        caption = beat_caption(beat, summary, title=True)
        figure = plot_reconstruction(beat_samples, reconstruction,
                                     title=_parenthesised(title, caption),
                                     score=beat.score, threshold=summary.threshold,
                                     window=beat_window(beat, summary, detector))
        written.append(save_figure(figure, directory / name))
    return written


def _of_recording(beat, summary) -> bool:
    """Whether a drawn beat is a recording's (``summary`` holds its timeline), not a row
    of a beats file."""
    return beat.input in summary.timelines


def beat_window(beat, summary, detector) -> "BeatWindow | None":
    """The window a drawn beat was cut by when it is a recording's (``summary`` holds its
    timeline): the model's, or the default one; None for a row of a beats file."""
    from ..scoring.base import ModelLimits

    return ModelLimits.of(detector).beat_window() if _of_recording(beat, summary) else None


def _parenthesised(title: str, caption: str) -> str:
    """``Most anomalous beat (beat 12 at 00:10)``, a caption's second line after it."""
    first, _, rest = caption.partition("\n")
    return f"{title} ({first})" + (f"\n{rest}" if rest else "")


def beat_caption(beat, summary, *, title: bool = False) -> str:
    """``row 11 (line 12), label 0`` for a beat of a beats file (its row in the scores,
    its line in the file); ``beat 1586 at 24:48, label V; RR 0.57 s before, 2.60 s after
    (usual 0.57 s)`` for one of a recording (``summary`` holds its timeline), whose beats
    are numbered, not lines, and found on its strips by their time, and whose timing its
    score weighs beside the shape drawn. In a picture's ``title``, the timing is a line of
    its own."""
    from ..recordings.times import format_time

    label = "" if beat.label is None else f", label {beat.label}"
    if not _of_recording(beat, summary):
        if beat.row is None:
            return f"line {beat.line}{label}"
        return f"row {beat.row} (line {beat.line}){label}"
    at = "" if beat.time_s is None else f" at {format_time(beat.time_s)}"
    timing = _timing(beat.rr_s)
    return f"beat {beat.line}{at}{label}" + (("\n" if title else "; ") + timing if timing else "")


def _timing(rr_s) -> str:
    """``RR 0.57 s before, 2.60 s after (usual 0.57 s)``: what of a recording beat's
    score its picture, the shape alone, does not show (empty when none is known)."""
    if rr_s is None or not any(np.isfinite(value) for value in rr_s):
        return ""
    before, after, usual = (("?" if not np.isfinite(value) else f"{value:.2f} s")
                            for value in rr_s)
    return f"RR {before} before, {after} after (usual {usual})"


def recording_plot_names(input_name: str) -> tuple[str, ...]:
    """The names of a recording's timeline and strips (``208.timeline.png``...)."""
    from ..io.readers import input_stem

    return tuple(pattern.format(name=input_stem(input_name)) for pattern in RECORDING_PLOTS)


#: How the timelines' legends name the shaded stretches (unreadable, or flutter).
SET_ASIDE_LABEL = "stretches set aside (the longest)"


def plot_timeline(times: np.ndarray, scores: np.ndarray, threshold: float, *,
                  readable: np.ndarray | None = None, unreadable=(), title: str = "",
                  ax=None):
    """Every beat's score over the recording's time, the threshold across it: where in a
    Holter record the abnormal beats cluster. Beats of unreadable stretches (``readable``
    False) are grey crosses, never flagged; the ``unreadable`` stretches (``(from, to,
    reason)``, seconds) are shaded."""
    figure, ax = _axes(ax, figsize=(12, 3.5))
    scale, unit = time_scale(times[-1] if len(times) else 0.0)
    x = times / scale
    readable = np.ones(len(scores), dtype=bool) if readable is None else readable
    flagged = is_anomaly(scores, threshold, readable)
    normal = ~flagged & readable
    ax.plot(x[normal], scores[normal], ".", markersize=2, color=_NORMAL_COLOUR,
            label=f"below the threshold ({int(normal.sum())})")
    ax.plot(x[flagged], scores[flagged], ".", markersize=3, color=_ANOMALY_COLOUR,
            label=f"flagged ({int(flagged.sum())})")
    if not readable.all():
        ax.plot(x[~readable], scores[~readable], "x", markersize=3, color="0.6",
                label=f"set aside (unreadable, flutter), not flagged ({int((~readable).sum())})")
    shortest = 0.002 * (times[-1] if len(times) else 0)  # Seconds: a short stretch shows.
    for number, (first, end, _) in enumerate(unreadable):
        ax.axvspan(first / scale, max(end, first + shortest) / scale, color="0.85", zorder=0,
                   label=SET_ASIDE_LABEL if number == 0 else None)
    ax.axhline(threshold, color="black", linestyle="--", linewidth=1,
               label=f"threshold {threshold:.4f}")
    ax.set_xlabel(f"time in the recording ({unit})")
    log_axis = logarithmic(scores)
    if log_axis:
        _logarithmic_axis(ax, "y")
    ax.set_ylabel("anomaly score" + (" (logarithmic axis)" if log_axis else ""))
    ax.set_title(title or "Anomaly score of every beat")
    _legend_beside(ax, markerscale=4)
    return figure


#: Past this many seconds a recording's timeline shows its scores per :data:`TREND_BIN_S`
#: (a day's hundred thousand beats drawn one by one are a cloud).
TREND_AFTER_S = 2 * 3600
TREND_BIN_S = 300


def plot_score_trend(times: np.ndarray, scores: np.ndarray, threshold: float, *,
                     readable: np.ndarray | None = None, unreadable=(), title: str = "",
                     axes=None):
    """A long recording's timeline, per :data:`TREND_BIN_S` seconds: the median and the
    99th percentile of its readable beats' scores and the highest, the threshold across
    (``axes[0]``), and how many beats were flagged as anomalies (``axes[1]``). The
    ``unreadable`` stretches (``(from, to, reason)``, seconds) are shaded."""
    if axes is None:
        from matplotlib.figure import Figure

        figure = Figure(figsize=(12, 5), layout="constrained")
        axes = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1.6))
    score_ax, count_ax = axes
    readable = np.ones(len(scores), dtype=bool) if readable is None else readable
    flagged = is_anomaly(scores, threshold, readable)
    scale, unit = time_scale(times[-1] if len(times) else 0.0)
    # Bins from the first beat: a span read from hour 3 starts its first bin there.
    first = float(times[0]) if len(times) else 0.0
    bins = np.floor((np.asarray(times) - first) / TREND_BIN_S).astype(int)
    edges = np.arange(bins.max() + 1 if len(bins) else 0)
    kept = readable & np.isfinite(scores)
    per_bin = [scores[kept & (bins == index)] for index in edges]
    centres = (first + (edges + 0.5) * TREND_BIN_S) / scale
    median, high, top = (np.array([np.quantile(values, q) if len(values) else np.nan
                                   for values in per_bin]) for q in (0.5, 0.99, 1.0))
    score_ax.fill_between(centres, median, high, color=_NORMAL_COLOUR, alpha=0.25,
                          label="median to 99th percentile", step="mid")
    score_ax.step(centres, median, where="mid", color=_NORMAL_COLOUR, linewidth=1,
                  label="median score")
    score_ax.plot(centres, top, ".", color="0.3", markersize=3, label="highest score")
    score_ax.axhline(threshold, color="black", linestyle="--", linewidth=1,
                     label=f"threshold {threshold:.4f}")
    counts = np.bincount(bins[flagged], minlength=len(edges)) if len(edges) else []
    count_ax.bar(centres, counts, width=TREND_BIN_S / scale, color=_ANOMALY_COLOUR,
                 label=f"anomalies ({int(flagged.sum()):,} in all)")
    for ax in axes:
        for number, (first, end, _) in enumerate(unreadable):
            ax.axvspan(first / scale, end / scale, color="0.85", zorder=0,
                       label=SET_ASIDE_LABEL if number == 0 and
                       ax is score_ax else None)
    minutes = TREND_BIN_S / 60
    score_ax.set_ylabel("anomaly score")
    score_ax.set_title(title or f"Anomaly scores of every {minutes:g} minutes")
    _legend_beside(score_ax)
    count_ax.set_ylabel(f"anomalies per {minutes:g} min")
    count_ax.set_xlabel(f"time in the recording ({unit})")
    _legend_beside(count_ax)
    return score_ax.figure


def _legend_beside(ax, **options) -> None:
    """``ax``'s legend to the right of its plot, where it hides no point (inside, the
    highest scores of a recording's end went under it)."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=8,
              **options)


def time_scale(seconds: float) -> tuple[float, str]:
    """The unit of a recording's time axis: hours past two hours, else minutes."""
    return (3600.0, "hours") if seconds > 2 * 3600 else (60.0, "minutes")


#: The steps of a clock's ticks, in seconds, and the most ticks an axis takes: the
#: smallest step that many ticks cover the axis with.
CLOCK_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
                 21600, 43200, 86400)
MAX_CLOCK_TICKS = 10


def clock_ticks(low: float, high: float, scale: float) -> np.ndarray:
    """Ticks on round times of day between ``low`` and ``high`` (seconds since the start
    day's midnight, in units of ``scale`` seconds): every 10 minutes on an hour, 3 hours
    on a day, 12 on three days; the step of :data:`CLOCK_STEPS_S` that at most
    :data:`MAX_CLOCK_TICKS` ticks cover."""
    span = (high - low) * scale
    step = next((step for step in CLOCK_STEPS_S if span <= step * MAX_CLOCK_TICKS),
                CLOCK_STEPS_S[-1] * math.ceil(span / (CLOCK_STEPS_S[-1] * MAX_CLOCK_TICKS)))
    first, last = math.ceil(low * scale / step), math.floor(high * scale / step)
    return np.arange(first, last + 1) * step / scale


def clock_axis(ax, started: "RecordingStart", scale: float):
    """The time of day along the top of ``ax``, whose time axis is from the recording's
    start in units of ``scale`` seconds (:func:`time_scale`), where the recording says
    when it ``started``: ticks on round times of the recorder's clock
    (:func:`clock_ticks`), as a technician reads a patient's diary against it. Returns
    the new axis."""
    from matplotlib.ticker import Formatter, Locator

    from ..recordings.times import DAY_SECONDS, time_of_day

    offset = started.seconds_of_day / scale
    top = ax.secondary_xaxis("top", functions=(lambda x: x + offset, lambda x: x - offset))

    class Clock(Locator):
        def __call__(self):
            return self.tick_values(*self.axis.get_view_interval())

        def tick_values(self, vmin, vmax):
            return clock_ticks(min(vmin, vmax), max(vmin, vmax), scale)

    class Labels(Formatter):
        """``09:20``, or ``09:20:30`` on every tick where one is not on a whole minute;
        a later day's midnight ``day 2`` (over days, every tick read ``00:00``)."""

        def __call__(self, value, pos=None):
            return time_of_day(round(value * scale) % DAY_SECONDS)

        def format_ticks(self, values):
            texts = [self(value) for value in values]
            if any(not text.endswith(":00") for text in texts):
                return texts
            days = [round(value * scale) // DAY_SECONDS for value in values]
            return [f"day {day + 1}" if day and text == "00:00:00" else text[:5]
                    for day, text in zip(days, texts)]

    top.xaxis.set_major_locator(Clock())
    top.xaxis.set_major_formatter(Labels())
    top.set_xlabel("time of day (the recorder's clock)")
    return top


def plot_heart_rate(minute_start_s: np.ndarray, bpm: np.ndarray, *, episodes=(),
                    every_beat_bpm: np.ndarray | None = None,
                    span_s: float | None = None, title: str = "", ax=None):
    """The heart rate of each minute (from normal-to-normal intervals; a gap where a
    minute has too few) and, under it in grey, that of every beat (``every_beat_bpm``),
    with the atrial fibrillation ``episodes`` (``start_s``/``end_s``) shaded; on the time
    axis of :func:`plot_timeline` for a recording of ``span_s`` seconds."""
    figure, ax = _axes(ax, figsize=(12, 2.6))
    span = span_s if span_s is not None else (minute_start_s[-1] + 60 if len(minute_start_s)
                                              else 0)
    scale, unit = time_scale(span)
    centres = (np.asarray(minute_start_s, dtype=float) + 30) / scale
    if every_beat_bpm is not None:
        ax.plot(centres, every_beat_bpm, color="tab:grey", linewidth=1, marker=".",
                markersize=3, label="every beat")
    # Dots as well as the line: a minute between two gaps has no neighbour to join.
    ax.plot(centres, bpm, color="black", linewidth=1, marker=".", markersize=3,
            label="normal-to-normal" if every_beat_bpm is not None
            else "heart rate (per minute)")
    for number, episode in enumerate(episodes):
        ax.axvspan(episode.start_s / scale, episode.end_s / scale, color="tab:orange",
                   alpha=0.3, zorder=0,
                   label="atrial fibrillation" if number == 0 else None)
    ax.set_ylim(*heart_rate_limits(bpm if every_beat_bpm is None else
                                   np.concatenate([bpm, every_beat_bpm])))
    ax.set_xlabel(f"time in the recording ({unit})")
    ax.set_ylabel("beats per minute")
    ax.set_title(title or "Heart rate")
    _legend_beside(ax)
    return figure


#: The heart-rate axis spans at least this many beats per minute: left to itself it
#: stretched a drift from 68 to 66 bpm over the whole panel, a fall at a glance.
MIN_HEART_RATE_SPAN_BPM = 40.0


def heart_rate_limits(bpm: np.ndarray) -> tuple[float, float]:
    """The heart-rate axis's limits: the rates' range with a margin, widened about its
    middle to :data:`MIN_HEART_RATE_SPAN_BPM` and kept above 0 (40 to 80 bpm with no
    rate known)."""
    known = np.asarray(bpm, dtype=float)
    known = known[np.isfinite(known)]
    low, high = (float(known.min()), float(known.max())) if len(known) else (60.0, 60.0)
    margin = max(0.1 * (high - low), (MIN_HEART_RATE_SPAN_BPM - (high - low)) / 2, 0.0)
    low, high = low - margin, high + margin
    if low < 0:
        low, high = 0.0, high - low
    return low, high
