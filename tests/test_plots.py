"""The pictures' rules that are not the report's layout: how the score histogram bins, what
the timeline's axes read."""

import numpy as np

from anomaly.report.plots import LOG_AXIS_SPREAD, histogram_bins, plot_score_histogram


def test_the_histogram_draws_scores_spread_over_orders_of_magnitude_on_a_log_axis():
    """The product's scores span decades (ECG5000: normal beats near 1, abnormal ones up to
    400): on a linear axis every normal beat falls in the first bar."""
    rng = np.random.default_rng(0)
    spread = np.concatenate([rng.lognormal(0.0, 0.3, 500), rng.lognormal(3.5, 0.8, 100)])
    bins, logarithmic = histogram_bins(spread)
    assert logarithmic and np.allclose(np.diff(np.log(bins)), np.log(bins[1] / bins[0]))
    # The bins hold every score.
    assert (bins[0], bins[-1]) == (spread.min(), spread.max())
    assert np.histogram(spread, bins)[0].sum() == len(spread)
    figure = plot_score_histogram(spread, 3.0, truth=np.repeat([0, 1], [500, 100]))
    assert figure.axes[0].get_xscale() == "log"
    # Scores that are not finite are left out of the bins, not allowed to break them.
    bins, logarithmic = histogram_bins(np.append(spread, [np.nan, np.inf]))
    assert logarithmic and np.isfinite(bins).all()
    # The spread decides: just under the limit linear, just over it logarithmic.
    assert not histogram_bins(np.array([1.0, 0.9 * LOG_AXIS_SPREAD]))[1]
    assert histogram_bins(np.array([1.0, 1.1 * LOG_AXIS_SPREAD]))[1]
    # Narrow scores, or any not positive, keep a linear axis.
    assert not histogram_bins(rng.uniform(0.02, 0.05, 200))[1]
    assert not histogram_bins(np.append(spread, 0.0))[1]
    assert plot_score_histogram(rng.uniform(0.02, 0.05, 200), 0.04).axes[0].get_xscale() == "linear"


def test_the_heart_rate_axis_does_not_stretch_a_small_drift_over_the_panel():
    """MIT-BIH 119's minutes ran from 68 to 66.4 bpm: the axis autoscaled to those two drew
    a steep fall. At least 40 bpm are shown, about the rates, never below 0."""
    from anomaly.report.plots import MIN_HEART_RATE_SPAN_BPM, heart_rate_limits, plot_heart_rate

    drift = np.array([68.0, 67.2, 66.9, 66.7, 66.4])
    low, high = heart_rate_limits(drift)
    assert high - low == MIN_HEART_RATE_SPAN_BPM and low < 66.4 and high > 68.0
    assert plot_heart_rate(np.arange(5) * 60.0, drift).axes[0].get_ylim() == (low, high)
    # A wide range is shown whole with a margin; a slow one is not cut at 0.
    low, high = heart_rate_limits(np.array([40.0, 150.0, np.nan]))
    assert low < 40 and high > 150 and high - low > 110
    low, high = heart_rate_limits(np.array([12.0, 15.0]))
    assert low == 0 and high - low == MIN_HEART_RATE_SPAN_BPM
    assert heart_rate_limits(np.array([np.nan])) == (40.0, 80.0)


def test_the_timeline_draws_scores_spread_over_orders_of_magnitude_on_a_log_axis():
    """MIT-BIH 208 fitted with labels: one beat at 13,740 and a few in the thousands made
    every other beat a line at 0 on a linear axis; the histogram above it was already
    logarithmic. The timeline follows the same rule."""
    from anomaly.report.plots import plot_timeline

    rng = np.random.default_rng(1)
    times = np.sort(rng.uniform(0, 1800, 600))
    spread = np.concatenate([rng.lognormal(0.0, 0.3, 590), [13740.0] + [2000.0] * 9])
    ax = plot_timeline(times, spread, 3.0).axes[0]
    assert ax.get_yscale() == "log" and "logarithmic" in ax.get_ylabel()
    narrow = rng.uniform(0.02, 0.05, 600)
    assert plot_timeline(times, narrow, 0.04).axes[0].get_yscale() == "linear"


def test_one_score_however_large_gets_bins_that_hold_it():
    """Every beat of one score (a forged scores file gave each 1e15, which the summary
    allows): numpy's own bins of it are narrower than a float tells apart, and the
    summary's pictures failed with an internal error."""
    for value in (0.0, 0.5, 1e15, 1e100):
        scores = np.full(40, value)
        bins, logarithmic = histogram_bins(scores)
        assert not logarithmic and np.isfinite(bins).all() and np.all(np.diff(bins) > 0)
        assert np.histogram(scores, bins)[0].sum() == len(scores)
        plot_score_histogram(scores, value)


def test_a_report_names_a_wfdb_record_alike_by_its_header_or_its_name():
    """'mitdb/119.hea' was titled '119.hea' where 'mitdb/208' was '208'."""
    from anomaly.report.recordings import recording_name

    assert recording_name("mitdb/208.hea") == recording_name("mitdb/208") == "208"
    assert recording_name("/data/holter.edf") == "holter.edf"


def test_a_recordings_timeline_reads_the_time_of_day_along_its_top():
    """A recording whose header says it started at 09:12 on 2 Mar 2026: its timeline has
    the recorder's clock along the top, on round times (a technician reads a diary's
    "dizzy at 09:30" against it), every 15 s on two minutes to every 12 hours
    on three days, placed where those times fall on the time from the start below; a
    day's recording wraps past midnight, which says its day. Without a start, no clock is
    made up."""
    import datetime

    from anomaly.report.recordings import _timeline
    from anomaly.recordings.times import RecordingStart

    started = RecordingStart(datetime.time(9, 12), datetime.date(2026, 3, 2))
    began = 9.2 * 3600
    rng = np.random.default_rng(2)
    for span, step in ((120, 15), (270, 30), (1800, 300), (3600, 600), (26 * 3600, 10800),
                       (3 * 86400, 43200)):
        times = np.sort(rng.uniform(0, span, 3000))
        scores = rng.gamma(2.0, 0.03, len(times))
        figure = _timeline("night.edf", times, scores, np.ones(len(times), bool), 0.15, None,
                           None, started)
        figure.draw_without_rendering()
        [top] = figure.axes[0].child_axes
        assert top.get_xlabel() == "time of day (the recorder's clock)"
        scale = 3600 if span > 2 * 3600 else 60
        low, high = figure.axes[0].get_xlim()
        labels, seconds = [], []
        for tick, text in zip(top.get_xticks(), top.get_xticklabels()):
            # The tick's place on the time from the start (the axis below).
            if low <= tick - began / scale <= high:
                labels.append(text.get_text())
                seconds.append(round(tick * scale))
        assert len(labels) >= 4, (span, labels)
        assert set(np.diff(seconds)) == {step} and seconds[0] % step == 0, (span, labels)
        clock = [f"day {s // 86400 + 1}" if s % 86400 == 0 else
                 f"{s // 3600 % 24:02d}:{s // 60 % 60:02d}" + (f":{s % 60:02d}" if step < 60
                                                                else "") for s in seconds]
        assert labels == clock, (span, labels)
        if span > 86400 - began:  # Midnight says which day it starts.
            assert "day 2" in labels, labels
    figure = _timeline("night.edf", times, scores, np.ones(len(times), bool), 0.15, None,
                       None, None)
    assert figure.axes[0].child_axes == []
