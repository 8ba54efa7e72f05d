"""ECG strips drawn as a Holter reader prints them: on ECG paper, at 25 mm/s and 10 mm/mV.

The paper's small squares are 1 mm (0.04 s by 0.1 mV), its large ones 5 mm (0.2 s by
0.5 mV); a strip is drawn at that scale whatever the picture's size, so a reader measures
an interval or an amplitude by counting squares. Above each beat its kind (``N``, ``S``,
``V``, ``?`` unreadable, from :mod:`anomaly.holter.events`; a dot without a rhythm) in the
colour of its flag (red anomaly, blue normal, grey unreadable), the strip's own beat
marked by a triangle; under it the reference label when the recording has annotations.
The sheet's title is followed by that key (:data:`KEY`), and a caption longer than its
strip is wrapped within it.

A recording that declares no voltage unit (a signal CSV without a units row), or one its
values' size belies (microvolts declared as millivolts:
:data:`anomaly.recordings.reading.MOST_PLAUSIBLE_MV`), is drawn at 10 mm per the height
of the strip's largest wave, and its strips say so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

#: ECG paper: millimetres per second and per millivolt.
MM_PER_SECOND = 25.0
MM_PER_MILLIVOLT = 10.0
#: The amplitudes a strip shows at least (mV) and at most (a span: beyond it, clipped).
_LEAST_SPAN = (-0.5, 1.0)
_MOST_SPAN_MV = 5.0
_MM_PER_INCH = 25.4
_PAPER = "#fff6f6"

_MINOR, _MAJOR = "#f6caca", "#e38f8f"
_FLAG_COLOURS = {"anomaly": "tab:red", "normal": "tab:blue", "unreadable": "0.55"}
# Around each strip's paper, in millimetres: its caption above, time labels below.
_LEFT_MM, _RIGHT_MM, _CAPTION_MM, _BELOW_MM = 14.0, 4.0, 11.0, 7.0
#: A caption line's height, and the width of one of its characters (about: digits are
#: wider, most letters narrower), in mm, at the captions' size in points; the sheet's
#: title's size.
_LINE_MM, _CHARACTER_MM = 3.6, 1.75
_CAPTION_POINTS, _TITLE_POINTS = 8.5, 11
#: What the marks mean, under the sheet's title.
KEY = ("Above each beat its kind (N normal, S supraventricular ectopic, V ventricular "
       "ectopic, ? unreadable): red flagged as an anomaly, blue not, grey in an unreadable "
       "stretch; \u25bc the beat the strip is about; below a beat, grey: the reference's "
       "label, when the recording has annotations. Times in [h:]mm:ss from the recording's "
       "start.")



def paper_squares(calibrated: bool) -> str:
    """What the paper's squares are, for a report's text: ``At 25 mm/s and 10 mm/mV: a
    small square is 0.04 s and 0.1 mV, ...``, or for a recording without a voltage unit
    what 10 mm is instead."""
    small_s, large_s = 1 / MM_PER_SECOND, 5 / MM_PER_SECOND
    if calibrated:
        return (f"At {MM_PER_SECOND:g} mm/s and {MM_PER_MILLIVOLT:g} mm/mV: a small square is "
                f"{small_s:g} s and {1 / MM_PER_MILLIVOLT:g} mV, a large one {large_s:g} s "
                f"and {5 / MM_PER_MILLIVOLT:g} mV.")
    return (f"At {MM_PER_SECOND:g} mm/s: a small square is {small_s:g} s, a large one "
            f"{large_s:g} s. The recording declares no voltage unit, or one its values' size "
            f"belies: {MM_PER_MILLIVOLT:g} mm is the height of each strip's largest wave, not "
            "1 mV.")


def paper_scale(calibrated: bool) -> str:
    """The strips' scale in words: ``25 mm/s, 10 mm/mV``, or for a recording without a
    voltage unit what 10 mm is instead."""
    return (f"{MM_PER_SECOND:g} mm/s, {MM_PER_MILLIVOLT:g} mm/mV" if calibrated else
            f"{MM_PER_SECOND:g} mm/s, {MM_PER_MILLIVOLT:g} mm per the height of the strip's "
            "largest wave (amplitude not calibrated)")


@dataclass(frozen=True)
class BeatMark:
    """A beat drawn on a strip: its R peak (sample), its kind letter, its flag
    (``anomaly``, ``normal`` or ``unreadable``) and its reference label (or None)."""

    sample: int
    kind: str
    flag: str
    reference: str | None = None


@dataclass(frozen=True)
class PaperStrip:
    """One strip to draw: ``values`` from sample ``start`` at ``fs`` (in millivolts when
    ``calibrated``, else in heights of the strip's largest wave: see
    :class:`anomaly.recordings.reading.Strip`), the sample of its own beat (``centre``),
    the beats in it and its caption (one line or two)."""

    start: int
    values: np.ndarray
    fs: float
    centre: int
    marks: tuple[BeatMark, ...]
    caption: str
    calibrated: bool = True


def plot_paper_strips(strips: list[PaperStrip], *, title: str = ""):
    """The strips, one under the other, each on ECG paper at its true scale (a figure
    whose size in inches is the paper's)."""
    from matplotlib.figure import Figure

    import textwrap

    spans = [_amplitude_span(strip) for strip in strips]
    seconds = max((len(strip.values) / strip.fs for strip in strips), default=1.0)
    paper_mm = seconds * MM_PER_SECOND
    width_mm = _LEFT_MM + paper_mm + _RIGHT_MM
    # A caption line longer than its strip is wrapped, and the strip given room for it.
    characters = max(1, int(paper_mm / _CHARACTER_MM))
    captions = ["\n".join(textwrap.fill(line, characters) for line in strip.caption.split("\n"))
                for strip in strips]
    key = textwrap.fill(KEY, characters)
    # The title's characters are larger than a caption's.
    title = textwrap.fill(title, max(1, int(characters * _CAPTION_POINTS / _TITLE_POINTS)))
    heights = [_CAPTION_MM + (caption.count("\n") - strip.caption.count("\n")) * _LINE_MM
               + (high - low) * MM_PER_MILLIVOLT + _BELOW_MM
               for strip, caption, (low, high) in zip(strips, captions, spans)]
    title_mm = 7.0 + title.count("\n") * _LINE_MM * _TITLE_POINTS / _CAPTION_POINTS
    top_mm = title_mm + (key.count("\n") + 1) * _LINE_MM if title else 1.0
    height_mm = top_mm + sum(heights)
    figure = Figure(figsize=(width_mm / _MM_PER_INCH, height_mm / _MM_PER_INCH))
    if title:
        figure.suptitle(title, x=_LEFT_MM / width_mm, y=1 - 2 / height_mm, ha="left",
                        va="top", fontsize=_TITLE_POINTS)
        figure.text(_LEFT_MM / width_mm, 1 - (title_mm + 1.5) / height_mm, key, ha="left",
                    va="top", fontsize=7.5, color="0.25")
    below = height_mm - top_mm
    for strip, caption, (low, high), row_mm in zip(strips, captions, spans, heights):
        strip = replace(strip, caption=caption)
        below -= row_mm
        plot_mm = (high - low) * MM_PER_MILLIVOLT
        ax = figure.add_axes((_LEFT_MM / width_mm, (below + _BELOW_MM) / height_mm,
                              len(strip.values) / strip.fs * MM_PER_SECOND / width_mm,
                              plot_mm / height_mm))
        _draw_strip(ax, strip, low, high)
    return figure


def _amplitude_span(strip: PaperStrip) -> tuple[float, float]:
    """The strip's amplitudes, out to whole large squares: its values (their 0.2% and
    99.8% quantiles: an artefact's spike does not squash the beats), at least
    ``_LEAST_SPAN``, at most ``_MOST_SPAN_MV`` (the rest clipped)."""
    values = strip.values[np.isfinite(strip.values)]
    low, high = ((np.quantile(values, 0.002), np.quantile(values, 0.998)) if len(values)
                 else _LEAST_SPAN)
    low, high = min(low, _LEAST_SPAN[0]), max(high, _LEAST_SPAN[1])
    if high - low > _MOST_SPAN_MV:
        middle = float(np.median(values)) if len(values) else 0.0
        low = max(low, middle - _MOST_SPAN_MV / 2)
        high = low + _MOST_SPAN_MV
    # Room above the beats for their kind letters and the marker, below for the
    # reference labels.
    return float(np.floor(low / 0.5) * 0.5 - 0.5), float(np.ceil(high / 0.5) * 0.5 + 1.0)


def _draw_strip(ax, strip: PaperStrip, low: float, high: float) -> None:
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    from ..recordings.times import format_time

    fs = strip.fs
    first = strip.start / fs
    last = first + len(strip.values) / fs
    ax.set_facecolor(_PAPER)
    for step, colour, width in ((0.04, _MINOR, 0.4), (0.2, _MAJOR, 0.8)):
        ax.vlines(np.arange(np.ceil(first / step) * step, last, step), low, high,
                  colors=colour, linewidth=width, zorder=0)
    for step, colour, width in ((0.1, _MINOR, 0.4), (0.5, _MAJOR, 0.8)):
        ax.hlines(np.arange(np.ceil(low / step - 1e-9) * step, high + 1e-9, step), first,
                  last, colors=colour, linewidth=width, zorder=0)
    t = first + np.arange(len(strip.values)) / fs
    ax.plot(t, np.clip(strip.values, low, high), color="black", linewidth=0.9, zorder=2)
    for mark in strip.marks:
        at = mark.sample / fs
        if not first <= at < last:
            continue
        colour = _FLAG_COLOURS[mark.flag]
        own = mark.sample == strip.centre
        ax.text(at, high - 0.12, mark.kind or "\u2022", ha="center", va="top",
                color=colour, fontsize=10 if own else 8,
                fontweight="bold" if own else "normal", zorder=3)
        if own:
            ax.plot(at, high - 0.7, "v", color=colour, markersize=6, zorder=3)
        if mark.reference is not None:
            ax.text(at, low + 0.1, mark.reference, ha="center", va="bottom", color="0.35",
                    fontsize=7, zorder=3)
    ax.set_xlim(first, last)
    ax.set_ylim(low, high)
    ax.xaxis.set_major_locator(MultipleLocator(1.0))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda seconds, _: format_time(seconds)))
    ax.yaxis.set_major_locator(MultipleLocator(1.0 if high - low > 3 else 0.5))
    ax.tick_params(labelsize=7, length=2)
    for side in ax.spines.values():
        side.set_color(_MAJOR)
    ax.set_ylabel("mV" if strip.calibrated else "largest wave's heights", fontsize=7,
                  labelpad=1)
    ax.set_title(strip.caption, loc="left", fontsize=_CAPTION_POINTS, pad=3)
