"""What a Holter reader reads: episodes and their agreement, atrial fibrillation, heart
rate and morphology families, on synthetic beats with known answers and on MIT-BIH
records with reference annotations."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from anomaly.holter.atrial import ATRIAL_FIBRILLATION, AfParameters, atrial_fibrillation
from anomaly.holter.episodes import DurationAgreement, Episode
from anomaly.holter.heart_rate import heart_rate, nn_intervals


def sinus_then_af(seed: int = 0, *, af_from: float = 300.0, af_to: float = 480.0,
                  end: float = 780.0) -> np.ndarray:
    """Beat times (s): sinus rhythm near 75 bpm with a little variability, and from
    ``af_from`` to ``af_to`` intervals drawn uniformly from 0.4 to 1.1 s."""
    rng = np.random.default_rng(seed)
    times, now = [0.0], 0.0
    while now < end:
        interval = rng.uniform(0.4, 1.1) if af_from <= now < af_to else \
            0.8 + 0.02 * np.sin(now / 4.0) + rng.normal(0, 0.005)
        now += interval
        times.append(now)
    return np.array(times)


# ---------------------------------------------------------------------------------------
# Episodes
# ---------------------------------------------------------------------------------------
def test_duration_agreement_counts_overlaps_once():
    found = [Episode("af", 10, 30), Episode("af", 25, 40), Episode("af", 100, 110)]
    reference = [Episode("af", 20, 50), Episode("af", 105, 130)]
    agreement = DurationAgreement.of(found, reference)
    # Found covers 10-40 and 100-110 (40 s); reference 20-50 and 105-130 (55 s); both
    # 20-40 and 105-110 (25 s).
    assert (agreement.found, agreement.reference, agreement.both) == (40, 55, 25)
    assert agreement.sensitivity == pytest.approx(25 / 55)
    assert agreement.positive_predictivity == pytest.approx(25 / 40)
    pooled = agreement + DurationAgreement.of([], [Episode("af", 0, 5)])
    assert pooled.sensitivity == pytest.approx(25 / 60)
    assert np.isnan(DurationAgreement.of([], []).sensitivity)


def test_an_episode_reads_as_a_holter_reader_writes_it():
    assert str(Episode(ATRIAL_FIBRILLATION, 3725, 3905.4)) == \
        "atrial fibrillation 1:02:05-1:05:05 (03:00)"


# ---------------------------------------------------------------------------------------
# Atrial fibrillation
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_an_irregular_stretch_is_found_as_one_af_episode_with_its_times(seed):
    times = sinus_then_af(seed)
    found = atrial_fibrillation(times)
    assert len(found.episodes) == 1
    episode = found.episodes[0]
    assert episode.kind == ATRIAL_FIBRILLATION
    # The irregularity is smoothed over some 50 intervals (forwards and backwards), so an
    # episode's ends move inwards by up to half a minute.
    assert 300 <= episode.start_s < 330 and 450 < episode.end_s <= 480
    agreement = DurationAgreement.of(found.episodes, [Episode("af", 300, 480)])
    assert agreement.sensitivity > 0.7 and agreement.positive_predictivity > 0.95
    inside = (times > 340) & (times < 440)
    assert found.in_af[inside].all() and not found.in_af[times < 250].any()
    # The burden is of what was found: the 180 s of AF less the ends smoothed away.
    assert 0.7 * 180 / 780 <= found.burden(780) <= 180 / 780


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_span_that_opens_in_af_is_in_af_from_its_first_beat(seed):
    """A recording scored from 5:00 that is in AF throughout (MIT-BIH 203, 221) was read as
    sinus rhythm for its first 26 and 72 seconds: the smoothing started from the first
    interval's irregularity alone, before any window of intervals was irregular."""
    times = sinus_then_af(seed, af_from=0.0, af_to=300.0, end=600.0)
    [episode] = atrial_fibrillation(times).episodes
    # Its end, where sinus rhythm returns, moves inwards as any episode's does.
    assert episode.start_s < 5 and 270 < episode.end_s <= 300
    # A span that closes in AF was read so before (a guard, not the fault mended).
    times = sinus_then_af(seed, af_from=300.0, af_to=1e9, end=600.0)
    [episode] = atrial_fibrillation(times).episodes
    assert 300 <= episode.start_s < 330 and episode.end_s == times[-1]


def test_frequent_ectopy_left_out_by_shape_is_not_af():
    """A sinus rhythm with frequent premature beats, single and in runs of two or three,
    each run followed by a compensatory pause: irregular enough to read as AF, regular
    once the premature beats (ectopic by their shape) are left out."""
    rng = np.random.default_rng(3)
    intervals, ectopic = [], []
    while len(intervals) < 900:
        if rng.random() < 0.3:
            run = int(rng.integers(1, 4))
            intervals += list(rng.uniform(0.35, 0.6, run)) + [1.1]
            ectopic += [True] * run + [False]
        else:
            intervals.append(0.8 + rng.normal(0, 0.01))
            ectopic.append(False)
    times = np.cumsum(intervals)
    assert atrial_fibrillation(times).episodes  # kept in the series, they read as AF
    assert not atrial_fibrillation(times, ectopic=np.array(ectopic)).episodes
    # Where so many are left out that too few intervals are left, P waves missing (a
    # noisy lead) do not make it AF: the intervals left are regular.
    assert (_centred_mean_share(ectopic) < AfParameters().min_kept_share).any()
    assert not atrial_fibrillation(times, ectopic=np.array(ectopic),
                                   consistency=np.full(len(times), 0.05)).episodes


def _centred_mean_share(ectopic: list) -> np.ndarray:
    """Per interval, the share of those around it kept (neither of its beats ectopic)."""
    from anomaly.holter.atrial import _centred_mean

    ectopic = np.array(ectopic)
    return _centred_mean(~ectopic[:-1] & ~ectopic[1:], AfParameters().share_window)


def test_af_whose_beats_are_often_of_another_shape_is_found_where_p_waves_are_missing():
    """AF in which a third of the beats are of another shape (aberrant conduction, or
    ectopy the families misread, as on MIT-BIH 203): left out, they leave too few
    intervals to judge alone, so the P waves decide, where they were looked at and are
    clearly missing. (Ten minutes of it: the intervals left must be irregular too, and
    Petrėnas's averages need a few hundred of them.)"""
    times = sinus_then_af(5, af_to=900.0, end=1200.0)
    in_af = (times > 300) & (times < 900)
    ectopic = in_af & (np.random.default_rng(5).random(len(times)) < 0.35)
    absent = np.where(in_af, 0.05, 0.9)
    found = atrial_fibrillation(times, ectopic=ectopic, consistency=absent)
    assert len(found.episodes) == 1
    agreement = DurationAgreement.of(found.episodes, [Episode("af", 300, 900)])
    assert agreement.sensitivity > 0.7 and agreement.positive_predictivity > 0.95
    # Without the P waves, or with P waves neither clear nor clearly missing (as where
    # frequent PVCs interrupt a sinus rhythm: MIT-BIH 200), AF is called only where
    # enough intervals happen to be left: a small part of it.
    assert atrial_fibrillation(times, ectopic=ectopic).seconds < 0.25 * found.seconds
    assert atrial_fibrillation(times, ectopic=ectopic, consistency=np.where(
        in_af, 0.4, 0.9)).seconds < 0.25 * found.seconds
    # Where enough intervals are left, P waves that are not clear do not veto AF.
    assert len(atrial_fibrillation(times, consistency=np.where(in_af, 0.4, 0.9)).episodes) == 1


def test_repeating_p_waves_veto_af_and_unreadable_beats_are_never_in_it():
    times = sinus_then_af(4)
    consistent = np.full(len(times), 0.9)  # a P wave before every beat: not AF
    assert not atrial_fibrillation(times, consistency=consistent).episodes
    absent = np.where((times > 300) & (times < 480), 0.05, 0.9)
    assert len(atrial_fibrillation(times, consistency=absent).episodes) == 1
    readable = ~((times > 350) & (times < 420))
    found = atrial_fibrillation(times, readable=readable)
    assert not found.in_af[~readable].any()
    assert found.seconds < 180 - 60


def test_p_waves_that_repeat_are_consistent_and_fibrillatory_waves_are_not():
    """A P wave repeated beat after beat (with noise and a little drift in its place)
    against the irregular waves of AF: the same measure, near 1 and near 0; an ectopic
    beat (no P wave) left out does not lower it."""
    from anomaly.holter.atrial import p_wave_consistency

    rng = np.random.default_rng(7)
    t = np.linspace(-0.23, -0.07, 32)
    sinus = np.stack([np.exp(-0.5 * ((t + 0.16 + rng.normal(0, 0.004)) / 0.025) ** 2)
                      + rng.normal(0, 0.05, len(t)) for _ in range(200)])
    fibrillating = np.stack([np.sin(2 * np.pi * rng.uniform(5, 8) * t + rng.uniform(0, 6))
                             + rng.normal(0, 0.05, len(t)) for _ in range(200)])
    usable = np.ones(200, bool)
    assert p_wave_consistency(sinus, usable).min() > 0.8
    alike = p_wave_consistency(fibrillating, usable)
    assert alike.max() < AfParameters().p_wave_consistency and np.abs(alike).mean() < 0.3
    with_ectopy = sinus.copy()
    with_ectopy[::5] = rng.normal(0, 1, (40, len(t)))
    assert p_wave_consistency(with_ectopy, np.arange(200) % 5 != 0).min() > 0.8
    assert np.isnan(p_wave_consistency(sinus, np.zeros(200, bool))).all()


def test_p_waves_in_muscle_noise_are_compared_in_their_own_band():
    """Whole beat windows at 200 values a second: sinus P waves under broadband noise as
    large as they are (muscle artefact), and fibrillatory waves (5-8 Hz) with the same
    noise. Compared as read, the noise makes the sinus P waves look missing; low-passed
    to a P wave's band they repeat, and the fibrillatory waves, inside the band, still do
    not."""
    from anomaly.holter.atrial import p_wave_band, p_wave_consistency, p_wave_slice

    rng = np.random.default_rng(3)
    t = np.linspace(-0.25, 0.45, 140, endpoint=False)
    part = p_wave_slice(0.25, 0.45, 140)
    qrs = 4 * np.exp(-0.5 * (t / 0.012) ** 2)
    sinus = np.stack([qrs + np.exp(-0.5 * ((t + 0.16) / 0.025) ** 2)
                      + rng.normal(0, 0.8, len(t)) for _ in range(200)])
    fibrillating = np.stack([qrs + np.sin(2 * np.pi * rng.uniform(5, 8) * t + rng.uniform(0, 6))
                             + rng.normal(0, 0.8, len(t)) for _ in range(200)])
    usable = np.ones(200, bool)
    limit = AfParameters().p_wave_consistency
    assert np.median(p_wave_consistency(sinus[:, part], usable)) < limit  # The case.
    assert p_wave_consistency(p_wave_band(sinus, 200.0)[:, part], usable).min() > limit
    assert p_wave_consistency(p_wave_band(fibrillating, 200.0)[:, part], usable).max() < limit


def test_af_refuses_beats_out_of_order_and_flags_of_another_length():
    with pytest.raises(ValueError, match="increase"):
        atrial_fibrillation([0.0, 1.0, 0.5])
    with pytest.raises(ValueError, match="one ectopic and one readable flag per beat"):
        atrial_fibrillation([0.0, 1.0, 2.0], ectopic=[False, True])


# ---------------------------------------------------------------------------------------
# Heart rate
# ---------------------------------------------------------------------------------------
def test_heart_rate_variability_matches_neurokit2_on_the_same_nn_intervals():
    import neurokit2

    times = sinus_then_af(5, af_from=1e9)  # sinus throughout
    rate = heart_rate(times, np.ones(len(times), bool))
    peaks = np.round(times * 1000).astype(int)
    theirs = neurokit2.hrv_time(peaks, sampling_rate=1000).iloc[0]
    intervals = np.round(np.diff(times) * 1000) / 1000
    assert rate.nn_count == len(times) - 1
    assert rate.sdnn_ms == pytest.approx(theirs["HRV_SDNN"], rel=0.01)
    assert rate.rmssd_ms == pytest.approx(theirs["HRV_RMSSD"], rel=0.01)
    assert 100 * rate.pnn50 == pytest.approx(theirs["HRV_pNN50"], abs=0.5)
    assert rate.nn.mean_bpm == pytest.approx(60 / intervals.mean(), rel=1e-3)


def test_nn_intervals_skip_ectopic_beats_and_their_differences_are_not_successive():
    times = np.array([0.0, 1.0, 2.0, 2.5, 3.6, 4.6, 5.6])
    normal = np.array([True, True, True, False, True, True, True])
    intervals, ends, successive = nn_intervals(times, normal)
    np.testing.assert_allclose(intervals, [1.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(ends, [1.0, 2.0, 4.6, 5.6])
    assert successive.tolist() == [False, True, False, True]
    rate = heart_rate(times, normal)
    assert rate.rmssd_ms == pytest.approx(0.0, abs=1e-9)  # none across the ectopic beat
    sinus = np.array([True] * 5 + [False] * 2)  # the last interval in AF
    assert heart_rate(times, normal, sinus=sinus).nn_count == 4
    assert heart_rate(times, normal, sinus=sinus).sdnn_ms == pytest.approx(0.0, abs=1e-9)


def test_the_variability_says_how_much_sinus_rhythm_it_rests_on():
    """In a recording mostly in AF the variability is of its few sinus intervals: it says
    how few, and the one-line summary leaves it out (MIT-BIH 203 gave 'SDNN 72 ms' from
    42 intervals, 26 s, as if from its 1,410)."""
    import dataclasses

    from anomaly.holter.analysis import RhythmBeats, analyse_beats
    from anomaly.holter.summary import RecordingRhythm

    times = sinus_then_af(3, af_from=60.0, af_to=1e9, end=900.0)
    normal = np.ones(len(times), bool)
    sinus = times < 60.0
    rate = heart_rate(times, normal, sinus=sinus)
    expected = np.diff(times)[sinus[1:]]
    assert rate.nn_count == len(times) - 1
    assert rate.sinus_nn_count == len(expected)
    assert rate.sinus_nn_seconds == pytest.approx(expected.sum())
    assert rate.variability_is_short and np.isfinite(rate.sdnn_ms)
    assert not heart_rate(times, normal).variability_is_short

    count = len(times)
    beats = RhythmBeats(sample=np.round(times * 250).astype(int), time_s=times,
                        on_time=normal, usual_rr_s=np.full(count, 0.8), readable=normal,
                        shapes=np.tile(np.sin(np.linspace(0, 6, 60)), (count, 1)
                                       ).astype(np.float32),
                        p_waves=np.zeros((count, 32), np.float32))
    analysis = analyse_beats(beats, span_s=(0.0, times[-1] + 1))
    short = RecordingRhythm(dataclasses.replace(analysis, heart_rate=rate), (), 900.0, times,
                            beats.sample)
    assert "SDNN" not in short.describe() and "mean" in short.describe()
    assert short.as_json()["heart_rate"]["sinus_nn_intervals"] == len(expected)
    long = RecordingRhythm(dataclasses.replace(analysis, heart_rate=heart_rate(times, normal)),
                           (), 900.0, times, beats.sample)
    assert "SDNN" in long.describe()
    # The report's table gives no figures from so few (MIT-BIH 210's read 'SDNN 139 ms,
    # pNN50 100.0%' from 2 intervals); from enough, it does.
    from anomaly.report.html import _rhythm

    assert re.search(r"in sinus rhythm \([^)]*\)</td>(<td[^>]*>n/a \(under 4 min 00 s of "
                     r"them\)</td>){3}</tr>", _rhythm(short))
    assert re.search(r"in sinus rhythm \([^)]*\)</td><td[^>]*>\d+ ms</td><td[^>]*>\d+ ms</td>",
                     _rhythm(long))


def test_the_trend_has_a_rate_per_minute_and_the_extremes_their_minute():
    times = np.concatenate([np.arange(0, 60, 1.0), np.arange(60, 120, 0.5),
                            np.arange(180, 240, 0.75)])
    rate = heart_rate(times, np.ones(len(times), bool), end_s=240)
    np.testing.assert_allclose(rate.nn.per_minute_bpm[[0, 1, 3]], [60, 120, 80], rtol=0.02)
    # The minute-long gap is not an NN interval (beats missed, or a pause: an event).
    assert np.isnan(rate.nn.per_minute_bpm[2])
    assert rate.nn_count == len(times) - 2
    assert rate.nn.maximum_at_s == 60 and rate.nn.minimum_at_s == 0
    assert rate.minute_start_s.tolist() == [0, 60, 120, 180]


def test_the_rate_of_every_beat_counts_ectopic_beats_and_pauses_not_gaps():
    """Beside the NN rate, the rate of every readable beat: a minute of bigeminy (every
    other beat ectopic) has no NN rate but its 80 beats a minute; a 4 s pause lowers its
    minute's rate; an interval next to an unreadable beat, or longer than 10 s, is not
    counted (MIT-BIH 208 had 10 minutes without a rate in its report)."""
    sinus = np.arange(0, 60, 1.0)
    bigeminy = 60 + np.cumsum(np.tile([0.5, 1.0], 40))  # 80 beats a minute
    paused = np.concatenate([np.arange(121, 150, 1.0), np.arange(154, 180, 1.0)])
    gap = np.arange(200, 240, 1.0)  # 21 s after the last: a gap, no interval
    times = np.concatenate([sinus, bigeminy, paused, gap])
    normal = np.ones(len(times), bool)
    normal[len(sinus):len(sinus) + len(bigeminy):2] = False  # the early beats: ectopic
    readable = np.ones(len(times), bool)
    readable[-20] = False  # its two intervals are not read
    rate = heart_rate(times, normal, readable=readable, end_s=240)
    every = rate.every_beat
    assert np.isnan(rate.nn.per_minute_bpm[1])  # No NN interval in the bigeminy minute.
    np.testing.assert_allclose(every.per_minute_bpm[[0, 1]], [60, 80], rtol=0.02)
    # The pause's minute: 55 intervals over 59 s (the 5 s pause among them).
    assert every.per_minute_bpm[2] == pytest.approx(60 * 55 / 59, rel=0.02)
    assert every.per_minute_bpm[3] == pytest.approx(60, rel=0.01)
    # The mean: every interval but the 21 s gap and the unreadable beat's two of 1 s.
    counted, seconds = len(times) - 1 - 1 - 2, times[-1] - times[0] - 21 - 2
    assert every.mean_bpm == pytest.approx(60 * counted / seconds, rel=1e-6)
    assert every.maximum_at_s == 60 and every.minimum_at_s in (120, 180)


def test_a_tables_row_adds_up_its_start_end_and_duration():
    """201's AF episode from 0.4 s to 384.3 s read '00:00 to 06:24, duration 06:23': each
    time rounded on its own. The duration is now that of the two times shown."""
    from anomaly.recordings.times import clock_span

    assert clock_span(0.4, 384.3) == ("00:00", "06:24", "06:24")
    assert clock_span(3599.6, 3661.2) == ("1:00:00", "1:01:01", "01:01")


def test_hourly_rates_split_the_intervals_by_the_hour_they_end_in():
    """Two hours, at 60 then 80 bpm, and a third with 5 s of intervals: each hour's rate
    is 60 over its own mean NN interval; under 10 s of them, none (one interval gave an
    hour its rate)."""
    from anomaly.holter.heart_rate import rates_per_period

    times = np.concatenate([np.arange(0.0, 3600.0, 1.0), np.arange(3600.0, 7200.0, 0.75),
                            np.arange(7200.0, 7205.0, 1.0)])
    intervals, ends, _ = nn_intervals(times, np.ones(len(times), bool))
    rates = rates_per_period(intervals, ends, np.array([0.0, 3600.0, 7200.0]), 3600.0)
    np.testing.assert_allclose(rates[:2], [60.0, 80.0], rtol=1e-3)
    assert np.isnan(rates[2])


def alike_beats(times: np.ndarray, *, readable: bool = True, seed: int = 0):
    """The analysis's beats at ``times`` (seconds, 250 Hz): of one shape (a little noise),
    on time, all ``readable`` or none, with P waves of noise."""
    from anomaly.holter.analysis import RhythmBeats

    count = len(times)
    rng = np.random.default_rng(seed)
    return RhythmBeats(sample=np.round(times * 250).astype(int), time_s=times,
                       on_time=np.ones(count, bool),
                       usual_rr_s=np.diff(times, prepend=times[:1] - 1.0),
                       readable=np.full(count, readable),
                       shapes=(np.sin(np.linspace(0, 6, 60))
                               + rng.normal(0, 0.01, (count, 60))).astype(np.float32),
                       p_waves=rng.normal(size=(count, 32)).astype(np.float32))


@pytest.mark.parametrize(("started", "first_s", "span_s", "expected"), [
    # A start with a fraction of a second: the hours split where the clock shows them.
    ((22, 30, 0, 700000), 0.0, 6000.0, ["22:30:00", "23:00:00", "day 2, 00:00:00"]),
    # On the hour: no first row of nothing.
    ((9, 0, 0, 0), 0.0, 7000.0, ["09:00:00", "10:00:00"]),
    # A second before midnight: its first hour joined to the next, not a row of no beats.
    ((23, 59, 59, 999999), 0.0, 3700.0, ["23:59:59", "day 2, 01:00:00"]),
    # A span from 22:30:20 to 22:59:50 (--from 20 --to 29:50): no empty row for 23:00.
    ((22, 30, 0, 0), 20.0, 1770.0, ["22:30:20"]),
])
def test_hour_by_hour_goes_by_the_clocks_hours(started, first_s, span_s, expected):
    """Where the recording says when it started, the hours are the clock's, each row's
    beats those of its hour, adding up to the span's; without a start, every hour from
    the span's start."""
    import datetime

    from anomaly.holter.analysis import analyse_beats
    from anomaly.holter.summary import RecordingRhythm, family_summaries
    from anomaly.recordings.quality import Analysable
    from anomaly.recordings.times import RecordingStart

    times = np.arange(first_s + 0.5, first_s + span_s, 1.0)
    count = len(times)
    beats = alike_beats(times)
    analysis = analyse_beats(beats, span_s=(first_s, first_s + span_s))
    families = family_summaries(analysis, np.full(count, 0.1), np.zeros(count, bool))
    start = RecordingStart(datetime.time(*started), datetime.date(2026, 3, 2))
    rhythm = RecordingRhythm(analysis, families, span_s, times, beats.sample,
                             Analysable(span_s, (0.0,) * 4, started=start))
    hours = rhythm.hourly()
    assert [hour["time_of_day"] for hour in hours] == expected
    assert sum(hour["beats"] for hour in hours) == count
    unknown = RecordingRhythm(analysis, families, span_s, times, beats.sample,
                              Analysable(span_s, (0.0,) * 4))
    assert [hour["start_s"] for hour in unknown.hourly()] == \
        [first_s + 3600.0 * index for index in range(int(np.ceil(span_s / 3600)))]


def test_the_summary_says_how_few_minutes_its_rates_range_over():
    """The minimum and maximum are of the minutes with a rate (10 s of NN intervals), the
    mean of every NN interval: after a minute at 60 bpm, 8 s at 120 bpm have no rate of
    their own and raise the mean. The summary read "60-60 bpm, mean 67 bpm"; it says the
    range is of 1 minute of 2."""
    from anomaly.holter.analysis import analyse_beats
    from anomaly.holter.summary import RecordingRhythm, family_summaries

    times = np.concatenate([np.arange(1.0, 61.0, 1.0), 60.0 + np.arange(1, 17) * 0.5])
    count = len(times)
    beats = alike_beats(times)
    analysis = analyse_beats(beats, span_s=(0.0, 70.0))
    rhythm = RecordingRhythm(analysis, family_summaries(analysis, np.full(count, 0.1),
                                                        np.zeros(count, bool)), 70.0, times,
                             beats.sample)
    assert dict(rhythm.facts())["heart rate"].startswith(
        "60-60 bpm in the 1 of 2 minutes with a rate, mean 6")


@pytest.mark.parametrize("count", [0, 1, 2, 5, 40])
@pytest.mark.parametrize("readable", [True, False])
def test_a_few_beats_or_none_readable_give_a_report_without_nan(count, readable):
    """A recording of a few beats of one shape, or none readable: the analysis gives what
    it can and its report is JSON without NaN (the run report refuses NaN)."""
    import json

    from anomaly.holter.analysis import analyse_beats
    from anomaly.holter.summary import RecordingRhythm, family_summaries

    times = 1.0 + 0.8 * np.arange(count)
    beats = alike_beats(times, readable=readable, seed=count)
    analysis = analyse_beats(beats, span_s=(0.0, times[-1] + 1 if count else 1.0))
    assert not analysis.atrial_fibrillation.episodes
    rhythm = RecordingRhythm(analysis, family_summaries(analysis, np.full(count, 0.1),
                                                        np.zeros(count, bool)), 30.0, times,
                             beats.sample)
    report = json.loads(json.dumps(rhythm.as_json(), allow_nan=False))
    intervals = count - 1 if readable and count > 1 else 0
    assert report["heart_rate"]["nn_intervals"] == intervals
    assert (report["heart_rate"]["mean_bpm"] == pytest.approx(75.0)) if intervals else \
        report["heart_rate"]["mean_bpm"] is None
    assert sum(family["beats"] for family in report["families"]) + \
        report["other_families"]["beats"] == (count if readable else 0)
    assert ("mean 75 bpm" if intervals else "heart rate unknown") in rhythm.describe()


# ---------------------------------------------------------------------------------------
# Rhythm events
# ---------------------------------------------------------------------------------------
def beats_of(pattern: str, interval_s: float = 0.8, start_s: float = 1.0) -> tuple[list, list]:
    """Beat times and kinds from a pattern of kinds (``NNVNV``), every ``interval_s``."""
    return [start_s + interval_s * index for index in range(len(pattern))], list(pattern)


def test_couplets_runs_bigeminy_trigeminy_pauses_and_rates_are_found_with_their_times():
    from anomaly.holter.events import rhythm_events

    times, kinds = beats_of("N" * 20)
    def add(pattern: str, interval_s: float = 0.8, gap_s: float = 0.8):
        start = times[-1] + gap_s
        more, more_kinds = beats_of(pattern, interval_s, start)
        times.extend(more)
        kinds.extend(more_kinds)
        return start
    couplet = add("VV" + "N" * 10)
    run = add("VVVV", 0.4, gap_s=0.4)  # early, then 150 bpm: ventricular tachycardia
    add("N" * 10)
    bigeminy = add("VNVNVNVN" + "N" * 10)
    trigeminy = add("VNNVNNVNN" + "N" * 10)
    pause = times[-1]
    add("N" * 30, gap_s=2.5)
    slow = add("N" * 40, 1.3)  # 46 bpm for 52 s
    fast = add("N" * 80, 0.5)  # 120 bpm for 40 s
    add("N" * 20)
    events = {event.kind: event for event in rhythm_events(times, kinds)}
    assert set(events) == {"ventricular couplet", "ventricular tachycardia",
                           "ventricular bigeminy", "ventricular trigeminy", "pause",
                           "bradycardia", "tachycardia"}
    assert events["ventricular couplet"].start_s == couplet and \
        events["ventricular couplet"].beats == 2
    assert events["ventricular tachycardia"].start_s == run
    assert events["ventricular tachycardia"].beats == 4
    assert events["ventricular tachycardia"].rate_bpm == pytest.approx(150, rel=0.01)
    # Bigeminy starts at the normal beat before its first V beat.
    assert events["ventricular bigeminy"].start_s == pytest.approx(bigeminy - 0.8)
    assert events["ventricular bigeminy"].beats == 8
    assert events["ventricular trigeminy"].start_s == pytest.approx(trigeminy - 1.6)
    assert events["pause"].start_s == pause and events["pause"].duration_s == \
        pytest.approx(2.5)
    assert abs(events["bradycardia"].start_s - slow) < 8 * 1.3
    assert events["bradycardia"].rate_bpm == pytest.approx(60 / 1.3, rel=0.05)
    assert abs(events["tachycardia"].start_s - fast) < 8 * 0.5
    assert events["tachycardia"].duration_s >= 30


def test_a_runs_rate_is_of_the_intervals_between_its_beats():
    """Three ectopic beats 0.4 s apart, the first 0.6 s after a normal beat: 150 bpm, as
    the strip shows, not 129 with the coupling interval (MIT-BIH 220's 3-beat runs at
    6:52 read 128 bpm); a couplet 0.4 s apart is at 150 too."""
    from anomaly.holter.events import rhythm_events

    for pattern, kind in (("SSS", "supraventricular tachycardia"),
                          ("VV", "ventricular couplet")):
        intervals = np.r_[np.full(20, 0.8), 0.6, np.full(len(pattern) - 1, 0.4), 1.0,
                          np.full(20, 0.8)]
        times = list(1.0 + np.concatenate([[0.0], np.cumsum(intervals)]))
        kinds = list("N" * 21 + pattern + "N" * 21)
        [run] = [event for event in rhythm_events(times, kinds) if event.kind == kind]
        assert run.rate_bpm == pytest.approx(150.0)


@pytest.mark.parametrize(("kind", "stretches", "expected_bpm"), [
    # Two stretches at 105 bpm, 20 s each, 8 s of 60 bpm between them: one tachycardia
    # (joined), whose mean over all its beats, 97 bpm, read as a tachycardia under 100.
    ("tachycardia", [(35, 60 / 105), (8, 1.0), (35, 60 / 105)], 105.0),
    # 30 s at 48 bpm, then 30 s at 44: one bradycardia, at its slowest.
    ("bradycardia", [(24, 1.25), (22, 60 / 44)], 44.0)])
def test_a_tachycardia_reads_its_fastest_rate_and_a_bradycardia_its_slowest(kind, stretches,
                                                                             expected_bpm):
    """A tachycardia's rate is its fastest over 8 intervals, a bradycardia's its slowest,
    not the mean of all its beats."""
    from anomaly.holter.events import rhythm_events

    times, kinds = beats_of("N" * 20)
    for count, interval_s in stretches + [(20, 0.8)]:
        more, more_kinds = beats_of("N" * count, interval_s, times[-1] + interval_s)
        times.extend(more)
        kinds.extend(more_kinds)
    event, = [event for event in rhythm_events(times, kinds) if event.kind == kind]
    assert event.rate_bpm == pytest.approx(expected_bpm, rel=0.01)


def test_a_tachycardias_rate_is_its_normal_beats_not_a_run_or_couplets_inside_it():
    """A sinus tachycardia at 105 bpm with a ventricular tachycardia of 6 beats at 180 bpm
    inside it: the tachycardia reads 105, the run is its own event (MIT-BIH 203's
    'tachycardia up to 178 bpm' was its VT). Sinus rhythm at 92 bpm with a PVC couplet
    every 8 beats (each early, then a compensatory pause) is no tachycardia, though every
    beat's rate is over 100 (233's 30 minutes at '117'). The rate is of the NN intervals
    the heart rate counts."""
    from anomaly.holter.events import rhythm_events

    times, kinds = beats_of("N" * 20)

    def add(pattern: str, interval_s: float) -> None:
        more, more_kinds = beats_of(pattern, interval_s, times[-1] + interval_s)
        times.extend(more)
        kinds.extend(more_kinds)

    add("N" * 50, 60 / 105)
    add("VVVVVV", 60 / 180)
    add("N" * 50, 60 / 105)
    add("N" * 20, 0.8)
    events = rhythm_events(times, kinds)
    [fast] = [event for event in events if event.kind == "tachycardia"]
    assert fast.rate_bpm == pytest.approx(105, rel=0.01)
    assert any(event.kind == "ventricular tachycardia" and
               fast.start_s < event.start_s < fast.end_s for event in events), events

    # Each cycle: 6 normal beats at 92 bpm, a couplet 0.35 s apart, a 0.8 s pause.
    intervals = np.tile([60 / 92] * 5 + [0.35, 0.35, 0.8], 40)
    times = list(1.0 + np.concatenate([[0.0], np.cumsum(intervals)]))
    kinds = list("NNNNNNVV" * 40 + "N")
    every_beat = 60 * 8 / intervals[:8].sum()
    assert every_beat > 100
    assert not [event for event in rhythm_events(times, kinds) if event.kind == "tachycardia"]
    # A tachycardia at 133 bpm with a trigeminy for 6 of its 10 minutes (one NN interval
    # in three): one tachycardia throughout, not two either side of the trigeminy.
    sinus = 60 / 133
    intervals = np.concatenate([np.full(251, sinus), np.tile([sinus, 0.3, 2 * sinus - 0.3],
                                                             270), np.full(250, sinus)])
    kinds = list("N" * 251 + "NNV" * 270 + "N" * 251)
    times = list(1.0 + np.concatenate([[0.0], np.cumsum(intervals)]))
    [fast] = [event for event in rhythm_events(times, kinds) if event.kind == "tachycardia"]
    assert fast.duration_s > 0.95 * (times[-1] - times[0])
    assert fast.rate_bpm == pytest.approx(133, rel=0.01)
    # Nor is an interval over 3 s one of the rate's, as the heart rate's NN intervals
    # leave it out: 55 bpm with a 6 s pause every 8 beats is pauses, no bradycardia.
    intervals = np.tile([60 / 55] * 7 + [6.0], 20)
    times = list(1.0 + np.concatenate([[0.0], np.cumsum(intervals)]))
    events = rhythm_events(times, ["N"] * len(times))
    assert {event.kind for event in events} == {"pause"}, events


def test_a_bradycardias_rate_is_shown_rounded_down():
    """A bradycardia at 49.96 bpm (below the 50 of its limit) reads 49 in the report and
    49.9 in the run report, never 50."""
    from anomaly.holter.events import Event, rounded_rate, shown_rate

    slow = Event("bradycardia", 0.0, 40.0, 33, 49.96)
    assert shown_rate(slow) == "49" and rounded_rate(slow, 1) == 49.9
    assert shown_rate(Event("tachycardia", 0.0, 40.0, 70, 104.6)) == "105"
    assert shown_rate(Event("pause", 0.0, 2.5, 2, 24.0)) == ""


def test_events_are_read_by_kind_in_the_readers_order_the_most_telling_first():
    from anomaly.holter.events import Event, most_telling, most_telling_first

    events = [Event("ventricular couplet", 10.0, 10.6, 2, 100.0),
              Event("pause", 20.0, 22.5, 2, 24.0),
              Event("ventricular couplet", 30.0, 30.4, 2, 150.0),
              Event("bradycardia", 40.0, 90.0, 40, 45.0),
              Event("ventricular tachycardia", 100.0, 103.0, 8, 160.0),
              Event("pause", 110.0, 113.9, 2, 15.4),
              Event("bradycardia", 120.0, 160.0, 30, 41.0),
              Event("ventricular tachycardia", 170.0, 171.2, 4, 180.0),
              Event("bradycardia", 5.0, 60.0, 30)]  # its rate unknown: not the slowest
    ordered = [(event.kind, event.start_s) for event in most_telling_first(events)]
    assert ordered == [("ventricular tachycardia", 100.0), ("ventricular tachycardia", 170.0),
                       ("pause", 110.0), ("pause", 20.0),
                       ("bradycardia", 120.0), ("bradycardia", 40.0), ("bradycardia", 5.0),
                       ("ventricular couplet", 30.0), ("ventricular couplet", 10.0)]
    assert [(event.kind, event.start_s) for event in most_telling(events, 1)] == [
        ("ventricular tachycardia", 100.0), ("pause", 110.0), ("bradycardia", 120.0),
        ("ventricular couplet", 30.0)]


def test_an_unreadable_beat_breaks_a_pattern_and_hides_a_pause():
    from anomaly.holter.events import rhythm_events

    times, kinds = beats_of("NNVNV?VNVNNN")
    times[-1] += 3.0
    kinds[-2] = "?"
    assert not [event for event in rhythm_events(times, kinds)
                if event.kind in ("ventricular bigeminy", "pause")]


@pytest.mark.parametrize("pattern", ["VNVNVNVN", "VNNVNNVNNV"])
def test_a_pattern_from_the_recordings_first_beat_starts_there(pattern):
    """A bigeminy or trigeminy whose first beat is the recording's starts at its first beat
    (MIT-BIH 200 opens with one: its bigeminy was listed from 30:04 to 00:23, the pattern's
    start taken from the beat before the first, which is the last)."""
    from anomaly.holter.events import rhythm_events

    times, kinds = beats_of(pattern + "N" * 10)
    [found] = [event for event in rhythm_events(times, kinds) if "geminy" in event.kind]
    assert found.start_s == times[0] and found.end_s == times[len(pattern.rstrip("N")) - 1]
    assert found.beats == len(pattern.rstrip("N"))


def test_the_bigeminy_of_119_is_found_episode_by_episode(mitdb, analysed):
    from anomaly.holter.episodes import EpisodeAgreement
    from anomaly.holter.reference import reference_rhythms

    events = [event for event in analysed["119"][1].events
              if event.kind == "ventricular bigeminy"]
    agreement = EpisodeAgreement.of(events, reference_rhythms(mitdb / "119")["(B"])
    assert agreement.sensitivity >= 0.9 and agreement.positive_predictivity >= 0.9


def test_the_ventricular_tachycardia_runs_of_203_are_found_above_a_floor(mitdb, analysed):
    """203's ventricular tachycardia (multiform runs, often inside atrial flutter or
    fibrillation): 9 of its 21 reference episodes found when last measured (Se 0.43; 7
    when this test was written), and 10 of the 17 runs found overlap one (+P 0.59; 11 of
    36 before aberrant beats in AF, as narrow as the dominant family's, stopped counting
    as ventricular). The issue's target (0.9 by episode) is not reached
    (docs/benchmarks.md); the floor, a run under each, keeps what is found from being
    lost, and the false runs from coming back."""
    from anomaly.holter.episodes import EpisodeAgreement
    from anomaly.holter.reference import reference_rhythms

    events = [event for event in analysed["203"][1].events
              if event.kind == "ventricular tachycardia"]
    reference = reference_rhythms(mitdb / "203")["(VT"]
    agreement = EpisodeAgreement.of(events, reference)
    assert len(reference) == 21
    assert agreement.sensitivity >= 6 / 21 and agreement.positive_predictivity >= 6 / 13


def test_the_alternating_ventricular_tachycardias_of_223_are_read_as_such(mitdb, analysed):
    """223's ventricular tachycardias (106 s in 7 episodes, the longest 55 s) alternate a
    wide complex with one correlating 0.95 with the dominant beat and on time at the
    run's rate: read as bigeminy before a wide family following ectopic beats was
    ectopic (0 s found). Measured: 94 of the 106 s found, all inside an episode."""
    from anomaly.holter.episodes import DurationAgreement
    from anomaly.holter.reference import reference_rhythms

    events = [event for event in analysed["223"][1].events
              if event.kind == "ventricular tachycardia"]
    agreement = DurationAgreement.of(events, reference_rhythms(mitdb / "223")["(VT"])
    assert agreement.reference > 100
    assert agreement.sensitivity >= 0.8 and agreement.positive_predictivity >= 0.9


def timed_beats(intervals: np.ndarray):
    """Beats of one shape (:func:`alike_beats`) at these RR intervals from 1 s, each on
    time or premature against the mean of the last 10 intervals, as a recording's are."""
    from anomaly.holter.analysis import ON_TIME_RATIO

    times = 1.0 + np.concatenate([[0.0], np.cumsum(intervals)])
    usual = np.array([intervals[max(index - 10, 0):index].mean() if index else 0.8
                      for index in range(len(times))])
    interval = np.diff(times, prepend=times[0] - 0.8)
    return replace(alike_beats(times), on_time=interval / usual >= ON_TIME_RATIO,
                   usual_rr_s=usual)


def test_a_supraventricular_tachycardia_is_one_run_to_its_last_fast_beat():
    """Sinus rhythm at 75 bpm, a run of 20 beats of the same shape at 150 bpm, sinus again:
    one supraventricular tachycardia of 20 beats. Judged each against the mean of the last
    10 intervals (as a recording's beats are), the run's beats after its first few came
    on time against intervals of their own: MIT-BIH 209's runs were found for 22 s of
    their 102."""
    from anomaly.holter.analysis import analyse_beats

    beats = timed_beats(np.r_[np.full(60, 0.8), np.full(20, 0.4), np.full(60, 0.8)])
    assert beats.on_time[61:81].sum() > 10  # the run's later beats come "on time"
    analysis = analyse_beats(beats)
    [run] = [event for event in analysis.events if "supraventricular" in event.kind]
    assert run.kind == "supraventricular tachycardia" and run.beats == 20
    assert (run.start_s, run.end_s) == (beats.time_s[61], beats.time_s[80])
    assert list(analysis.kinds[81:]) == ["N"] * (len(beats.time_s) - 81)
    # The sinus rate back after a 2:1 block, or a sinus tachycardia at 105 bpm after a
    # 2.5 s pause: its first beats early against the intervals the block or the pause
    # lifted, the rest on time; no run goes on through them (MIT-BIH 231).
    for intervals in (np.r_[np.full(60, 0.8), np.full(20, 1.6), np.full(60, 0.8)],
                      np.r_[np.full(60, 60 / 105), 2.5, np.full(100, 60 / 105)]):
        beats = timed_beats(intervals)
        kinds = analyse_beats(beats).kinds
        assert (kinds == "S").sum() == (~beats.on_time).sum() > 0
    # A run just over 100 bpm, a tachycardia's rate, after sinus rhythm at 60 bpm goes on
    # to its last beat.
    beats = timed_beats(np.r_[np.full(40, 1.0), np.full(30, 0.58), np.full(40, 1.0)])
    [run] = [event for event in analyse_beats(beats).events
             if event.kind == "supraventricular tachycardia"]
    assert run.beats == 30


def test_a_sinus_rate_speeding_up_gradually_has_no_premature_beats():
    """Sinus arrhythmia: the rate rises and falls by a fifth with the breath, each interval
    within a few percent of the one before. Judged against the mean of the last 10
    intervals, its fastest beats come early (MIT-BIH 113, 115 and 123: some 180 N beats
    each called S); an ectopic beat comes abruptly, under 0.9 of the interval before it.
    Only the atrial premature beats and the supraventricular tachycardia put in it are
    supraventricular, where the sinus rate is slowest and where it is fastest (the stretch
    of early sinus beats before them is not)."""
    from anomaly.holter.analysis import analyse_beats, premature_beats

    intervals = 0.8 + 0.16 * np.sin(np.arange(200) * 2 * np.pi / 20)  # fastest at 15 + 20 k
    assert np.all(np.abs(np.diff(intervals)) < 0.1 * intervals[1:])
    # Atrial premature beats (the interval into each, then the pause after them:
    # compensatory, the two intervals of the sinus rhythm they replace) ...
    premature_at = [45, 75, 125, 126]
    for first, coupling in ((45, [0.5]), (75, [0.45]), (125, [0.45, 0.5])):
        stop = first + len(coupling)
        intervals[first:stop + 1] = np.r_[coupling,
                                          intervals[first:stop + 1].sum() - sum(coupling)]
    # ... and a supraventricular tachycardia of 10 beats at 150 bpm.
    intervals[155:165] = 0.4
    premature_at += list(range(155, 165))
    beats = timed_beats(intervals)
    p_wave = np.sin(np.linspace(0, np.pi, 32))  # a sinus rhythm's P waves, irregular as it is
    beats = replace(beats, p_waves=np.tile(p_wave, (len(beats.time_s), 1)).astype(np.float32))
    early = np.flatnonzero(~beats.on_time)
    assert len(set(early) - {index + 1 for index in premature_at}) > 10
    premature = premature_beats(beats)
    assert list(np.flatnonzero(premature)) == [index + 1 for index in sorted(premature_at)]
    analysis = analyse_beats(beats)
    assert list(np.flatnonzero(analysis.kinds == "S")) == list(np.flatnonzero(premature))
    [run] = [event for event in analysis.events
             if event.kind == "supraventricular tachycardia"]
    assert run.beats == 10


def test_a_wide_complex_is_wider_than_a_narrow_one_of_any_shape():
    from anomaly.holter.families import spread

    x = np.arange(60.0)
    narrow, wide = np.exp(-0.5 * ((x - 20) / 2) ** 2), np.exp(-0.5 * ((x - 20) / 6) ** 2)
    assert spread(wide) >= 2.5 * spread(narrow) > 0
    for other in (np.gradient(narrow), -narrow, np.gradient(np.gradient(narrow))):
        assert spread(other) < 1.2 * spread(narrow)  # another shape, as narrow
    assert spread(np.zeros(60)) == spread(np.ones(1)) == 0


def test_a_run_of_beats_each_of_a_family_of_its_own_is_no_tachycardia():
    """Three early beats of one wide shape: a ventricular tachycardia. Three early beats
    each of a shape of its own (false detections in noise: MIT-BIH 228 at 4:41) are not."""
    from anomaly.holter.analysis import analyse_beats

    rng = np.random.default_rng(11)
    intervals = np.r_[np.full(40, 0.8), 0.45, 0.4, 0.4, 1.0, np.full(40, 0.8)]
    x = np.arange(60)
    narrow = np.exp(-0.5 * ((x - 20) / 2.0) ** 2)
    wide = -np.exp(-0.5 * ((x - 25) / 8.0) ** 2)
    for shapes_of_run, expected in ((np.tile(wide, (3, 1)), 1),
                                    (rng.normal(size=(3, 60)), 0)):
        beats = timed_beats(intervals)
        shapes = np.tile(narrow, (len(beats.time_s), 1))
        shapes[41:44] = shapes_of_run
        shapes += rng.normal(0, 0.01, shapes.shape)
        analysis = analyse_beats(replace(beats, shapes=shapes.astype(np.float32)))
        assert analysis.families.ectopic[41:44].all()
        found = [event for event in analysis.events if event.kind == "ventricular tachycardia"]
        assert len(found) == expected, found


def test_in_af_a_narrow_family_of_another_shape_is_aberrant_and_a_wide_one_ventricular():
    """AF with runs of beats of other shapes: narrow ones (conducted aberrantly, as in
    MIT-BIH 203's and 222's fibrillation and flutter) are not ventricular there, wide ones
    are. In sinus rhythm an early beat of a shape not the dominant one's is ventricular,
    alone or in a wide run; a run of 3 narrow ones is not (a ventricular tachycardia is a
    wide-complex tachycardia: 222's flutter read as VT), but supraventricular. (The beats
    in sinus rhythm come early, as ectopic beats do: a family of narrow beats on time is
    conducted.)"""
    from anomaly.holter.analysis import RhythmBeats, analyse_beats
    from anomaly.holter.events import SUPRAVENTRICULAR, VENTRICULAR
    from anomaly.holter.summary import RecordingRhythm, family_summaries

    rng = np.random.default_rng(11)
    times = sinus_then_af(7, af_to=900.0, end=1200.0)
    x = np.arange(60.0)
    narrow = np.exp(-0.5 * ((x - 20) / 2) ** 2)
    shapes = np.tile(narrow, (len(times), 1))
    aberrant = np.flatnonzero((times > 500) & (times < 510))[:3]
    aberrant_in_sinus = np.flatnonzero(times > 1000)[:3]
    alone_in_sinus = np.searchsorted(times, [1050.0, 1080.0, 1110.0])
    wide = np.flatnonzero((times > 700) & (times < 710))[:3]
    wide_in_sinus = np.flatnonzero(times > 1150)[:3]
    for run, shape in ((aberrant, np.gradient(narrow)), (aberrant_in_sinus, np.gradient(narrow)),
                       (alone_in_sinus, np.gradient(narrow)),
                       (wide, np.exp(-0.5 * ((x - 20) / 6) ** 2)),
                       (wide_in_sinus, np.exp(-0.5 * ((x - 20) / 6) ** 2))):
        shapes[run] = shape
    in_af = (times > 300) & (times < 900)
    p_wave = np.sin(np.linspace(0, np.pi, 32))
    p_waves = np.where(in_af[:, None], rng.normal(size=(len(times), 32)), p_wave)
    # In sinus rhythm they come early, each 0.24 s before the last interval's time.
    on_time = np.ones(len(times), bool)
    for run in (aberrant_in_sinus, *alone_in_sinus[:, None], wide_in_sinus):
        times[run] -= 0.24 * np.arange(1, len(run) + 1)
        on_time[run] = False
    beats = RhythmBeats(sample=np.round(times * 250).astype(int), time_s=times,
                        on_time=on_time, usual_rr_s=np.diff(times, prepend=times[:1] - 1.0),
                        readable=np.ones(len(times), bool),
                        shapes=(shapes + rng.normal(0, 0.01, shapes.shape)).astype(np.float32),
                        p_waves=p_waves.astype(np.float32))
    analysis = analyse_beats(beats)
    assert analysis.atrial_fibrillation.in_af[np.r_[aberrant, wide]].all()
    ectopic = np.r_[aberrant, aberrant_in_sinus, alone_in_sinus, wide, wide_in_sinus]
    assert analysis.families.ectopic[ectopic].all()
    ventricular = analysis.kinds == VENTRICULAR
    assert not ventricular[np.r_[aberrant, aberrant_in_sinus]].any()
    assert (analysis.kinds[aberrant_in_sinus] == SUPRAVENTRICULAR).all()
    assert ventricular[np.r_[wide, alone_in_sinus, wide_in_sinus]].all()
    assert "ventricular tachycardia" not in {event.kind for event in analysis.events
                                             if event.start_s == times[aberrant_in_sinus[0]]}
    # The summary says why its ectopic-shape beats outnumber its ventricular ones.
    rhythm = RecordingRhythm(analysis, family_summaries(analysis, np.full(len(times), 0.1),
                                                        np.zeros(len(times), bool)),
                             len(times) * 0.8, times, beats.sample)
    assert "(15 beats; 6 of them narrow, in AF or in a run: counted as conducted)" in \
        rhythm.describe()


def test_rhythm_analysis_imports_no_tensorflow():
    code = ("import sys, anomaly.holter.analysis, anomaly.holter.reference; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------------------
# On MIT-BIH
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mitdb():
    from anomaly.datasets import find_mitdb

    found = find_mitdb(["119", "201", "203", "223", "233"])
    if found is None:
        pytest.skip("MIT-BIH not found (looked in $ANOMALY_DATA_DIR, the download cache and "
                    "../shared/data; 'anomaly data fetch mitdb' downloads it)")
    return found


@pytest.fixture(scope="module")
def analysed(mitdb):
    """Records read as the tool reads them, with the reference labels, analysed."""
    from anomaly.holter.analysis import ANALYSIS_WINDOW, RhythmBeats, analyse_beats
    from anomaly.recordings.reading import read_recording
    from anomaly.recordings.segment import SegmentOptions

    def analyse(record: str):
        options = SegmentOptions(lead="MLII", annotations="atr", window=ANALYSIS_WINDOW)
        beats = read_recording(mitdb / record, options).beats
        return beats, analyse_beats(RhythmBeats.of(beats))

    return {record: analyse(record) for record in ("119", "201", "203", "223", "233")}


@pytest.mark.parametrize("record, most_families, least_purity", [("119", 1, 0.98),
                                                                  ("233", 5, 0.95)])
def test_the_v_beats_of_a_record_fall_in_few_nearly_pure_families(analysed, record,
                                                                   most_families, least_purity):
    beats, analysis = analysed[record]
    families = analysis.families
    ventricular = (beats.labels == "V") & (families.family >= 0)
    held = np.bincount(families.family[ventricular], minlength=len(families))
    order = np.argsort(-held)
    needed = int(np.searchsorted(np.cumsum(held[order]), 0.9 * ventricular.sum())) + 1
    assert needed <= most_families
    chosen = order[:needed]
    assert held[chosen].sum() / families.counts[chosen].sum() >= least_purity
    # Those families are ectopic by shape, and the dominant one is of N beats.
    assert families.ectopic[ventricular].mean() >= 0.9
    dominant = families.family == families.dominant
    assert (beats.labels[dominant] == "N").mean() >= 0.98


def qrs(centre_s: float, width_s: float, fs: float = 200.0) -> np.ndarray:
    """A beat's shape window (0.1 s before its R peak to 0.2 s after) holding a QRS
    whose R and S waves are of a size, the R wave at ``centre_s`` from the window's
    start, each wave ``width_s`` wide."""
    t = np.arange(int(round(0.3 * fs))) / fs
    return (np.exp(-((t - centre_s) / width_s) ** 2)
            - np.exp(-((t - centre_s - 2 * width_s) / width_s) ** 2))


def test_beats_found_at_their_r_wave_or_their_s_wave_are_one_shape_and_a_pvc_is_not():
    """Where a QRS's R and S waves are of a size, the R peak is found at either (MIT-BIH
    117): the same beats, 25 ms apart, are of normal shape; a wide PVC is not."""
    from anomaly.holter.families import beat_families

    rng = np.random.default_rng(0)
    at_r = [qrs(0.100, 0.0125) for _ in range(60)]
    at_s = [qrs(0.075, 0.0125) for _ in range(40)]  # found at the S wave, 25 ms later
    pvcs = [-qrs(0.080, 0.04) for _ in range(15)]
    shapes = np.array(at_r + at_s + pvcs) + rng.normal(0, 0.01, (115, 60))
    on_time = np.array([True] * 100 + [False] * 15)
    families = beat_families(shapes, on_time)
    assert len(families) == 3  # three shapes to review ...
    assert not families.ectopic[:100].any()  # ... two of them normal
    assert families.ectopic[100:].all()


def test_af_of_201_agrees_with_the_reference_and_119_has_none(mitdb, analysed):
    from anomaly.holter.reference import ATRIAL_FIBRILLATION_RHYTHMS, reference_rhythms

    rhythms = reference_rhythms(mitdb / "201")
    reference = [item for rhythm in ATRIAL_FIBRILLATION_RHYTHMS for item in rhythms.get(rhythm, [])]
    found = analysed["201"][1].atrial_fibrillation
    agreement = DurationAgreement.of(found.episodes, reference)
    assert agreement.sensitivity >= 0.85 and agreement.positive_predictivity >= 0.9
    assert not reference_rhythms(mitdb / "119").keys() & set(ATRIAL_FIBRILLATION_RHYTHMS)
    assert not analysed["119"][1].atrial_fibrillation.episodes  # bigeminy is not AF


# ---------------------------------------------------------------------------------------
# In the run's report
# ---------------------------------------------------------------------------------------
HOLTER_FS = 250
AF_FROM_S, AF_TO_S, HOLTER_S = 180.0, 360.0, 480.0


def holter_recording(directory, seed: int = 0):
    """An 8-minute synthetic one-lead recording at 250 Hz: sinus rhythm near 75 bpm with
    a premature ventricular beat (early, wide, inverted, no P wave, a compensatory pause
    after it) every ninth beat, then atrial fibrillation from 3:00 to 6:00 (irregular
    intervals, no P waves, fibrillatory waves), then sinus again. Returns the record's
    base path and the times of its ventricular beats."""
    import wfdb

    from anomaly.synthetic import synthetic_holter

    signal, beats = synthetic_holter(HOLTER_S, HOLTER_FS, seed=seed, af=(AF_FROM_S, AF_TO_S))
    wfdb.wrsamp("holter", fs=HOLTER_FS, units=["mV"], sig_name=["MLII"], fmt=["16"],
                p_signal=signal[:, None], write_dir=str(directory))
    return directory / "holter", np.array([time for time, kind in beats if kind == "v"])


def test_fitting_on_atrial_fibrillation_warns_that_the_model_learns_it_as_normal(in_tmp,
                                                                              capsys):
    """A patient model fitted on a stretch in AF learns its irregular rhythm as normal and
    flags many normal beats later: the fit says so (a newcomer fitted MIT-BIH 203 and 221,
    in AF throughout, without a word), and so does the report of every run with the model
    (its directory records the span's rhythm): the technician reading it did not fit it. A
    stretch in sinus rhythm gets no such warning."""
    import html
    import json

    from conftest import run_cli

    def read_metadata(model: str) -> dict:
        return json.loads((in_tmp / model / "metadata.json").read_text())

    base, _ = holter_recording(in_tmp)
    code, _, err = run_cli(capsys, "fit", base, "--from", "3:00", "--to", "6:00", "-m",
                           "in_af", "--epochs", "1", "-q")
    assert code == 0, err
    found = re.search(r"Warning: .*holter: (\d min \d\d s of the 3 min 00 s trained on is "
                      r"atrial fibrillation; the model learns each beat's timing and shape[^\n]*"
                      r"rather than beat by beat)\.", err)
    assert found, err
    recording = read_metadata("in_af")["provenance"]["recording"]
    assert recording["analysable_s"] > 170
    assert recording["in_af_s"] >= 0.5 * recording["analysable_s"]
    code, _, err = run_cli(capsys, "fit", base, "--to", "3:00", "-m", "in_sinus", "--epochs",
                           "1", "-q")
    assert code == 0, err
    assert "atrial fibrillation" not in err, err
    recording = read_metadata("in_sinus")["provenance"]["recording"]
    assert recording["in_af_s"] < 0.1 * recording["analysable_s"]
    for model, warned in (("in_af", True), ("in_sinus", False)):
        code, _, err = run_cli(capsys, "score", base, "-m", model, "--from", "6:00", "-o",
                               f"{model}.csv", "--html", f"{model}.html")
        assert code in (0, 1), err
        page = (in_tmp / f"{model}.html").read_text()
        assert ("The model was fitted on atrial fibrillation." in page) is warned
        said = found.group(1).replace("read its report", "read this report")
        assert (html.escape(said[0].upper() + said[1:]) in page) is warned


def test_fitting_on_few_beats_of_the_dominant_shape_warns(mitdb, in_tmp, capsys):
    """MIT-BIH 203's first 5 minutes (atrial fibrillation, multiform ventricular beats):
    a third of its beats are of the dominant rhythm and shape, and the fit says what the
    model rests on; 119's (bigeminy: three quarters kept) get no such warning."""
    from conftest import run_cli

    code, _, err = run_cli(capsys, "fit", str(mitdb / "203"), "--to", "5:00", "-m", "m203",
                           "--epochs", "1", "-q")
    assert code == 0, err
    assert re.search(r"Warning: .*203: \d+ of the \d+ beats read \(\d\d%\) are of the "
                     r"dominant rhythm and shape; the model trains on them only: the span is "
                     r"noisy, irregular or mostly ectopic", err), err
    code, _, err = run_cli(capsys, "fit", str(mitdb / "119"), "--to", "5:00", "-m", "m119",
                           "--epochs", "1", "-q")
    assert code == 0, err
    assert "dominant rhythm and shape" not in err, err


def test_a_recordings_report_gives_its_heart_rate_af_and_families(model_dir, in_tmp, capsys):
    """Scored with --report and --html, a recording's rhythm is in both and in the log:
    the AF episode with its times and burden, the heart rate, and the ventricular beats
    in a family of their own, of ectopic shape; the page renders in a browser."""
    import json
    import re
    from pathlib import Path

    from conftest import assert_images_render_in_browser, recording_model, run_cli

    base, ventricular = holter_recording(in_tmp)
    model = recording_model(model_dir, in_tmp / "model", fs=HOLTER_FS)
    code, _, err = run_cli(capsys, "score", base, "-m", model, "-o", "scores.csv",
                           "--report", "run.json", "--html", "report.html")
    assert code == 0, err
    assert re.search(r"Rhythm of .*holter: heart rate \d+-\d+ bpm, mean \d+ bpm.*; atrial "
                     r"fibrillation [23] min \d\d s in 1 episode \(burden \d+%\)", err), err
    rhythm = json.loads(Path("run.json").read_text())["inputs"][0]["rhythm"]
    fibrillation = rhythm["atrial_fibrillation"]
    [episode] = fibrillation["episodes"]
    assert abs(episode["start_s"] - AF_FROM_S) < 40 and abs(episode["end_s"] - AF_TO_S) < 40
    assert fibrillation["burden"] == pytest.approx((AF_TO_S - AF_FROM_S) / HOLTER_S, abs=0.1)
    rate = rhythm["heart_rate"]
    # Sinus beats come every 0.8 s (75 bpm), and AF's intervals average 0.775 s.
    assert 70 <= rate["mean_bpm"] <= 80
    assert rate["nn_intervals"] > 300 and 0 < rate["rmssd_ms"] < 100
    # Every beat's rate too: the same beats a minute, the PVCs (early, then a pause) among
    # them, and every minute of the 8 has one.
    assert abs(rate["every_beat"]["mean_bpm"] - rate["mean_bpm"]) < 5
    assert len(rate["every_beat"]["per_minute_bpm"]) == 8
    assert None not in rate["every_beat"]["per_minute_bpm"]
    families = rhythm["families"]
    assert families[0]["kind"] == "dominant"
    ectopic = [family for family in families if family["kind"] == "ectopic shape"]
    assert sum(family["beats"] for family in ectopic[:2]) >= 0.9 * len(ventricular)
    assert rhythm["ectopic_shape_beats"] <= 1.1 * len(ventricular)
    assert abs(rhythm["beats"]["ventricular"] - len(ventricular)) <= 0.1 * len(ventricular)
    # Single PVCs every ninth beat: no couplet, run, bigeminy or pause among the events.
    assert not {"ventricular couplet", "ventricular bigeminy", "pause"} & \
        set(rhythm["event_counts"])
    [hour] = rhythm["hourly"]
    # 'h:mm:ss' where hours are counted: '05:00' (a span from 5:00) read as five o'clock.
    assert hour["start"] == "0:00:00" and hour["ventricular"] == rhythm["beats"]["ventricular"]
    # One hour: its mean rate is the span's (the mean of the minutes' rates was not).
    assert hour["mean_bpm"] == pytest.approx(rate["mean_bpm"], abs=0.06)
    page = Path("report.html").read_text()
    start, end = episode["start"], episode["end"]
    assert re.search(rf"<td[^>]*>{start}</td><td[^>]*>{end}</td>", page)
    assert "Morphology families" in page and "ectopic shape" in page
    assert "Hour by hour" in page and "per minute, every beat" in page
    # Strips on ECG paper: the AF episode's onset, the dominant family and the family of
    # the ventricular beats, each a strip of its own; each family's typical beat drawn
    # over its reconstruction.
    captions = re.findall(r'alt="ECG strip of holter: ([^"]*)"', page)
    assert any(caption.startswith(f"atrial fibrillation from {start}") or
               f"; atrial fibrillation from {start}" in caption for caption in captions)
    assert any("family 0 (dominant" in caption for caption in captions), captions
    assert any(re.search(r"family \d+ \(ectopic shape, [\d,]+ beats\)", caption)
               for caption in captions), captions
    assert all("marked beat at " in caption for caption in captions), captions
    assert 'alt="the families of holter"' in page
    assert_images_render_in_browser(Path("report.html"))


def test_a_recordings_times_of_day_are_its_headers(model_dir, in_tmp, capsys):
    """An EDF recording that started at 23:57:00 on 6 Dec 2026 (its header says): the
    report gives each AF episode, event and hour its time of day beside its time from the
    start, past midnight on day 2, as the recorder's clock read (computed here with
    datetime); the summary block says when the span was recorded, and each strip's marked
    beat its time of day. A technician reads events against the patient's diary."""
    import datetime
    import json
    from pathlib import Path

    import edfio

    from conftest import recording_model, run_cli
    from anomaly.synthetic import synthetic_holter

    started = datetime.datetime(2026, 12, 6, 23, 57, 0)
    signal, _ = synthetic_holter(HOLTER_S, HOLTER_FS, af=(AF_FROM_S, AF_TO_S))
    edfio.Edf([edfio.EdfSignal(signal, HOLTER_FS, label="MLII", physical_dimension="mV")],
              starttime=started.time(),
              recording=edfio.Recording(startdate=started.date())).write("night.edf")
    model = recording_model(model_dir, in_tmp / "model", fs=HOLTER_FS)
    code, _, err = run_cli(capsys, "score", "night.edf", "-m", model, "-o", "scores.csv",
                           "--report", "run.json", "--html", "report.html")
    assert code == 0, err

    def clock(seconds: float) -> str:
        """The time of day of a time from the start rounded as the report rounds it."""
        moment = started + datetime.timedelta(seconds=round(seconds))
        day = (moment.date() - started.date()).days
        return moment.strftime("%H:%M:%S") if day == 0 else \
            f"day {day + 1}, {moment:%H:%M:%S}"

    [item] = json.loads(Path("run.json").read_text())["inputs"]
    assert item["recording"]["started"] == {"time": "23:57:00", "date": "2026-12-06"}
    rhythm = item["rhythm"]
    [episode] = rhythm["atrial_fibrillation"]["episodes"]
    timed = [episode] + rhythm["events"]
    assert len(timed) >= 2
    for entry in timed:  # The JSON's seconds are rounded to the hundredth.
        assert entry["time_of_day"] in {clock(entry["start_s"] - 0.005),
                                        clock(entry["start_s"] + 0.005)}, entry
    assert episode["time_of_day"].startswith("day 2, 00:0")  # AF from about 3:00 on
    # Hour by hour by the clock's hours: 23:57 to midnight, then from midnight.
    hours = rhythm["hourly"]
    assert [hour["time_of_day"] for hour in hours] == ["23:57:00", "day 2, 00:00:00"]
    assert [hour["start_s"] for hour in hours] == [0.0, 180.0]
    assert 150 < hours[0]["beats"] < hours[1]["beats"]  # 3 minutes, then 5
    page = Path("report.html").read_text()
    assert ("23:57:00 to day 2, 00:05:00: the recording started at 23:57:00 on 6 Dec 2026, "
            "its header says") in page
    # The AF table: from and to, both by the clock, and the duration in words ('01:18'
    # was read as a time).
    # Its day once, where both ends are on it: 'day 2, 00:00:28 to 00:02:44'.
    to = "|".join(clock(episode["end_s"] + shift).removeprefix("day 2, ")
                  for shift in (-0.005, 0.005))
    assert re.search(rf"<td[^>]*>{episode['start']}</td><td[^>]*>{episode['end']}</td>"
                     rf"<td[^>]*>{episode['time_of_day']} to ({to})</td>"
                     r"<td[^>]*>\d+ min \d\d s</td>", page)
    # The slowest and fastest minutes too.
    rate = rhythm["heart_rate"]
    minutes, seconds = map(int, rate["minimum_at"].split(":"))
    assert f"at {rate['minimum_at']} ({clock(60 * minutes + seconds)})" in page
    # Summarised again, the start is the recording's, read again, whatever the run
    # report says (its times of day were the header's, its start another).
    report = json.loads(Path("run.json").read_text())
    report["inputs"][0]["recording"]["started"] = {"time": "12:00:00", "date": None}
    Path("edited.json").write_text(json.dumps(report))
    code, _, err = run_cli(capsys, "summary", "edited.json", "--report", "again.json")
    assert code == 0, err
    [again] = json.loads(Path("again.json").read_text())["inputs"]
    assert again["recording"]["started"] == item["recording"]["started"]
    assert again["rhythm"]["events"] == rhythm["events"]
    captions = re.findall(r'alt="ECG strip of night.edf: ([^"]*)"', page)
    assert captions
    for caption in captions:
        found = re.search(r"marked beat at (\d\d):(\d\d) \(([^)]*) by the clock\)", caption)
        assert found, caption
        # Each time is rounded to the second on its own: the two within a second.
        at = int(found.group(1)) * 60 + int(found.group(2))
        assert found.group(3) in {clock(at - 1), clock(at), clock(at + 1)}, found.group(0)


def test_a_recording_start_is_read_from_its_header_or_not_made_up(tmp_path):
    """A WFDB header's base time and date are the recording's start; MIT-BIH's headers
    give none. An EDF file's date that is not known (EDF+'s X) is left out, its time
    kept; an EDF file with neither a date nor a time past midnight (edfio's and other
    writers' placeholder) has no start: no time of day is made up."""
    import datetime

    import edfio
    import wfdb

    from anomaly.recordings.signals import open_lead
    from anomaly.recordings.times import RecordingStart

    signal = np.zeros((2500, 1))
    wfdb.wrsamp("timed", fs=HOLTER_FS, units=["mV"], sig_name=["MLII"], fmt=["16"],
                p_signal=signal, write_dir=str(tmp_path), base_time=datetime.time(14, 30, 5),
                base_date=datetime.date(2026, 1, 2))
    wfdb.wrsamp("untimed", fs=HOLTER_FS, units=["mV"], sig_name=["MLII"], fmt=["16"],
                p_signal=signal, write_dir=str(tmp_path))
    assert open_lead(str(tmp_path / "timed")).started == RecordingStart(
        datetime.time(14, 30, 5), datetime.date(2026, 1, 2))
    assert open_lead(str(tmp_path / "untimed")).started is None
    for name, starttime, expected in (
            ("evening.edf", datetime.time(22, 1), RecordingStart(datetime.time(22, 1))),
            ("placeholder.edf", None, None)):
        edf = edfio.Edf([edfio.EdfSignal(signal[:, 0], HOLTER_FS, label="ECG",
                                         physical_dimension="mV")], starttime=starttime)
        edf.write(tmp_path / name)
        assert open_lead(str(tmp_path / name)).started == expected, name
    # A plain EDF header (no EDF+ recording field): its start date field, 'dd.mm.yy', with
    # EDF's years (70 is 2070, 85 is 1985); a time field that is not a time gives no start.
    header = bytearray((tmp_path / "evening.edf").read_bytes())
    header[88:168] = b"Ward 3, bed 12".ljust(80)
    for date_field, time_field, expected in (
            (b"06.12.26", b"08.14.03", RecordingStart(datetime.time(8, 14, 3),
                                                      datetime.date(2026, 12, 6))),
            (b"06.12.70", b"08.14.03", RecordingStart(datetime.time(8, 14, 3),
                                                      datetime.date(2070, 12, 6))),
            (b"06.12.85", b"08.14.03", RecordingStart(datetime.time(8, 14, 3),
                                                      datetime.date(1985, 12, 6))),
            (b"06.12.26", b"25.99.00", None)):
        header[168:184] = date_field + time_field
        (tmp_path / "plain.edf").write_bytes(bytes(header))
        assert open_lead(str(tmp_path / "plain.edf")).started == expected, date_field
    start = RecordingStart(datetime.time(23, 50), datetime.date(2026, 12, 6))
    assert [start.clock(seconds) for seconds in (0, 599.4, 600, 90000)] == \
        ["23:50:00", "23:59:59", "day 2, 00:00:00", "day 3, 00:50:00"]
    assert start.describe() == "23:50:00 on 6 Dec 2026"
    # To the second as a clock shows it: a start half a second before midnight is on its
    # first day (rounded, it was 'day 2, 00:00:00 on 31 Dec 2026').
    late = RecordingStart(datetime.time(23, 59, 59, 500000), datetime.date(2026, 12, 31))
    assert late.describe() == "23:59:59 on 31 Dec 2026"
    assert [late.clock(seconds) for seconds in (0.49, 0.6)] == ["23:59:59", "day 2, 00:00:00"]
    assert RecordingStart.from_json(start.as_json()) == start


def test_a_pause_is_shown_whole_with_the_beats_either_side(in_tmp):
    """A 6.5 s sinus pause: its strip (8 s) is centred on the pause's middle, no beat,
    and shows the beats either side of it. Centred on the beat nearest its middle (one
    of them), or named in the strip of the beat before it, the other fell off the strip
    (MIT-BIH 232's 5.9 s pause)."""
    import wfdb

    from anomaly.holter.summary import recording_rhythm
    from anomaly.recordings.segment import SegmentOptions
    from anomaly.report.recordings import STRIP_SECONDS, strip_choices
    from anomaly.synthetic import synthetic_holter

    signal, _ = synthetic_holter(120.0, HOLTER_FS, pauses=(40.0, 80.0), pause_s=6.5)
    wfdb.wrsamp("paused", fs=HOLTER_FS, units=["mV"], sig_name=["MLII"], fmt=["16"],
                p_signal=signal[:, None], write_dir=str(in_tmp))
    rhythm = recording_rhythm(in_tmp / "paused", SegmentOptions(), peaks=np.zeros(0, int),
                              scores=np.zeros(0), flagged=np.zeros(0, bool), analysable_s=None)
    pauses = [event for event in rhythm.analysis.events if event.kind == "pause"]
    assert len(pauses) == 2 and all(event.duration_s > 6 for event in pauses), pauses
    samples = rhythm.samples
    # The beat before each pause scores highest (its next interval is long): a strip of
    # the most anomalous beats is centred on it, and shows only the pause's first 3.5 s.
    scores = np.zeros(len(samples))
    scores[np.searchsorted(rhythm.times_s, [event.start_s for event in pauses])] = 1.0
    choices = strip_choices(samples, scores, np.ones(len(samples), bool), HOLTER_FS, rhythm)
    [strip] = [choice for choice in choices
               if any("pause of" in reason for reason in choice.reasons)]
    reason = next(reason for reason in strip.reasons if "pause of" in reason)
    assert "(the longest of 2)" in reason
    pause = next(event for event in pauses if f"pause of {event.duration_s:.1f} s" in reason)
    half = STRIP_SECONDS * HOLTER_FS / 2
    margin = 0.3 * HOLTER_FS  # the beats' QRS complexes on the strip too
    assert strip.centre - half + margin <= pause.start_s * HOLTER_FS
    assert pause.end_s * HOLTER_FS <= strip.centre + half - margin
    # Centred on no beat, the strip describes none: with the reference's beats, it said
    # 'no reference beat here', which reads as a false detection in the pause.
    from anomaly.report.recordings import _Marks

    marks = _Marks(samples, scores, np.ones(len(samples), bool), 0.5, rhythm,
                   (samples, np.full(len(samples), "N")))
    assert strip.centre not in samples
    assert marks._describe(strip.centre, HOLTER_FS, {}) == ""
    assert marks._describe(int(samples[5]), HOLTER_FS, {}).startswith("marked beat at")


def test_the_reports_events_table_lists_the_gravest_kinds_first_and_every_kind(in_tmp):
    """208's 40 first events in time order were couplets and trigeminy, its pause and
    ventricular tachycardia unlisted: the table is by kind in the reader's order, the 5
    most telling of each, with their duration; the caption counts every event."""
    from anomaly.holter.events import Event
    from anomaly.holter.summary import recording_rhythm
    from anomaly.recordings.segment import SegmentOptions
    from anomaly.report.html import _events

    base, _ = holter_recording(in_tmp)
    rhythm = recording_rhythm(base, SegmentOptions(), peaks=np.zeros(0, int),
                              scores=np.zeros(0), flagged=np.zeros(0, bool), analysable_s=None)
    couplets = [Event("ventricular couplet", 10.0 * index, 10.0 * index + 0.5, 2,
                      90.0 + index) for index in range(7)]
    events = couplets + [Event("pause", 200.0, 202.4, 2, 25.0),
                         Event("ventricular tachycardia", 300.0, 301.5, 5, 160.0),
                         Event("pause", 250.0, 253.8, 2, 15.8)]
    page = _events(replace(rhythm, analysis=replace(rhythm.analysis, events=tuple(events))))
    assert re.search(r"<b>1</b> episode of ventricular tachycardia, <b>2</b> pauses, "
                     r"<b>7</b> ventricular couplets \(of each kind, the 5 most telling", page)
    rows = re.findall(r"<tr><td[^>]*>([a-z ]+)</td><td[^>]*>([\d:]+)</td><td[^>]*>[\d:]+</td>"
                      r"<td[^>]*>([^<]+)</td>", page)
    assert [(kind, start) for kind, start, _ in rows] == [
        ("ventricular tachycardia", "05:00"), ("pause", "04:10"), ("pause", "03:20"),
        ("ventricular couplet", "01:00"), ("ventricular couplet", "00:50"),
        ("ventricular couplet", "00:40"), ("ventricular couplet", "00:30"),
        ("ventricular couplet", "00:20")]
    assert rows[1][2] == "3.8 s" and rows[0][2] == "1.5 s"
    # Without events, the hours are still given (record 100's report had none).
    quiet = _events(replace(rhythm, analysis=replace(rhythm.analysis, events=())))
    assert "No rhythm events" in quiet and "Hour by hour" in quiet and "0:00:00" in quiet
    # An event with an unreadable beat within 5 s is noted (105's ventricular runs in
    # noise the tests did not set aside read as any other): the VT, whose run ends at
    # 301.5 s, with beats set aside from 305 s; the pauses and couplets, further, not.
    kinds = rhythm.analysis.kinds.copy()
    kinds[(rhythm.times_s > 305.0) & (rhythm.times_s < 310.0)] = "?"
    noisy = replace(rhythm, analysis=replace(rhythm.analysis, events=tuple(events),
                                             kinds=kinds))
    page = _events(noisy)
    noted = re.findall(r"<tr><td[^>]*>([a-z ]+)</td>.*?<td[^>]*>([^<]*)</td></tr>", page)
    assert [kind for kind, note in noted if note == "near noise (unreadable within 5 s)"] == \
        ["ventricular tachycardia"], noted
    assert [item["near_unreadable"] for item in noisy.as_json()["events"]
            if item["kind"] != "ventricular couplet"] == [False, True, False]


def test_a_bradycardia_strip_shows_its_slowest_beats():
    """A bradycardia event whose beats come at 54 bpm, then 40 bpm for 15 s, then 54
    again: its strip is in the slow part (from its onset it showed beats faster than the
    event's rate, MIT-BIH 201 and 232); a tachycardia's, in its fastest part."""
    from anomaly.holter.events import Event
    from anomaly.report.recordings import STRIP_SECONDS, _telling_stretch

    times = np.concatenate([np.arange(0.0, 30.0, 1.1), np.arange(30.0, 45.0, 1.5),
                            np.arange(45.0, 80.0, 1.1)])
    middle = _telling_stretch(times, np.full(len(times), "N"),
                              Event("bradycardia", 0.0, float(times[-1]), len(times), 50.0))
    assert 30.0 + STRIP_SECONDS / 2 - 2 <= middle <= 45.0 - STRIP_SECONDS / 2 + 2, middle
    fast = np.concatenate([np.arange(0.0, 30.0, 0.55), np.arange(30.0, 45.0, 0.4),
                           np.arange(45.0, 80.0, 0.55)])
    middle = _telling_stretch(fast, np.full(len(fast), "N"),
                              Event("tachycardia", 0.0, float(fast[-1]), len(fast), 110.0))
    assert 30.0 + STRIP_SECONDS / 2 - 2 <= middle <= 45.0 - STRIP_SECONDS / 2 + 2, middle
    # A ventricular run inside a tachycardia at 100 bpm, then 110 bpm from 60 s: the strip
    # shows the fastest normal beats, as the event's rate is read, not the run at 180.
    run = 15.0 + np.arange(6) / 3
    fast = np.concatenate([np.arange(0.0, 15.0, 0.6), run, np.arange(17.2, 60.0, 0.6),
                           np.arange(60.0, 90.0, 60 / 110)])
    kinds = np.where(np.isin(fast, run), "V", "N")
    middle = _telling_stretch(fast, kinds, Event("tachycardia", 0.0, float(fast[-1]),
                                                 len(fast), 110.0))
    assert middle >= 60.0 + STRIP_SECONDS / 2 - 2, middle


@pytest.mark.parametrize(("pattern", "cycles"), [("ventricular bigeminy", 3),
                                                 ("ventricular bigeminy", 5),
                                                 ("ventricular trigeminy", 5)])
def test_a_patterns_strip_marks_one_of_its_ventricular_beats(in_tmp, pattern, cycles):
    """A strip of a bigeminy or trigeminy, short (in the strip's middle) or long (from its
    onset), is centred on, and its triangle marks, a ventricular beat of the pattern: on
    the beat nearest the pattern's middle, it marked a normal beat between (MIT-BIH 221),
    and the caption said 'marked beat: normal'. Named in another beat's strip, its
    caption says where its ventricular beat is."""
    import wfdb

    from anomaly.holter.events import VENTRICULAR
    from anomaly.holter.summary import recording_rhythm
    from anomaly.recordings.segment import SegmentOptions
    from anomaly.report.recordings import STRIP_SECONDS, strip_choices
    from anomaly.synthetic import synthetic_holter

    period = 2 if pattern.endswith("bigeminy") else 3
    # The beat nearest a pattern's middle may be a normal one.
    stretch = (60.0, 60.0 + cycles * period * 0.8)
    signal, _ = synthetic_holter(180.0, HOLTER_FS, pvc_every=50,
                                 **{"bigeminy" if period == 2 else "trigeminy": stretch})
    wfdb.wrsamp("patterned", fs=HOLTER_FS, units=["mV"], sig_name=["MLII"], fmt=["16"],
                p_signal=signal[:, None], write_dir=str(in_tmp))
    rhythm = recording_rhythm(in_tmp / "patterned", SegmentOptions(), peaks=np.zeros(0, int),
                              scores=np.zeros(0), flagged=np.zeros(0, bool), analysable_s=None)
    events = [event for event in rhythm.analysis.events if event.kind == pattern]
    assert events, rhythm.analysis.events
    peaks = rhythm.samples
    choices = strip_choices(peaks, np.zeros(len(peaks)), np.ones(len(peaks), bool),
                            HOLTER_FS, rhythm)
    [choice] = [choice for choice in choices
                if any(reason.startswith(f"{pattern}:") for reason in choice.reasons)]
    assert rhythm.analysis.kinds[np.searchsorted(peaks, choice.centre)] == VENTRICULAR
    [event] = events
    assert (event.duration_s <= STRIP_SECONDS - 2) == (cycles == 3)  # both branches
    # A long pattern's strip keeps its onset.
    assert choice.centre - STRIP_SECONDS * HOLTER_FS / 2 <= event.start_s * HOLTER_FS
    # Shown in the strip of a normal beat among the most anomalous (whose triangle it
    # is), the caption says where the pattern's ventricular beat is.
    near = (event.start_s + event.end_s) / 2 if cycles == 3 else event.start_s + 1
    normals = np.flatnonzero(rhythm.analysis.kinds == "N")
    normal = normals[np.argmin(np.abs(rhythm.times_s[normals] - near))]
    scores = np.zeros(len(peaks))
    scores[normal] = 1.0
    choices = strip_choices(peaks, scores, np.ones(len(peaks), bool), HOLTER_FS, rhythm)
    [choice] = [choice for choice in choices
                if any(reason.startswith(f"{pattern}:") for reason in choice.reasons)]
    assert choice.centre == peaks[normal]
    found = re.search(r"its ventricular beat at ([+-][\d.]+) s", "; ".join(choice.reasons))
    assert found, choice.reasons
    at = choice.centre + float(found.group(1)) * HOLTER_FS
    assert rhythm.analysis.kinds[np.argmin(np.abs(peaks - at))] == VENTRICULAR


def test_a_familys_typical_beat_named_in_another_strip_is_told_by_its_time(in_tmp):
    """The most anomalous beat next to the dominant family's most typical one: the family
    is named in that beat's strip, whose triangle marks the anomalous beat, with the time
    of its typical beat from it (a reader looked for family 5 at the triangle and found a
    beat of family 1)."""
    from anomaly.holter.summary import recording_rhythm
    from anomaly.recordings.segment import SegmentOptions
    from anomaly.report.recordings import strip_choices

    base, _ = holter_recording(in_tmp)
    rhythm = recording_rhythm(base, SegmentOptions(), peaks=np.zeros(0, int),
                              scores=np.zeros(0), flagged=np.zeros(0, bool), analysable_s=None)
    peaks = rhythm.samples
    dominant, = [family for family in rhythm.families if family.dominant]
    scores = np.zeros(len(peaks))
    scores[dominant.representative + 1] = 1.0
    choices = strip_choices(peaks, scores, np.ones(len(peaks), bool), HOLTER_FS, rhythm)
    named = f"family {dominant.family} ("
    choice, = [choice for choice in choices
               if any(reason.startswith(named) for reason in choice.reasons)]
    assert choice.centre == peaks[dominant.representative + 1]
    offset = (peaks[dominant.representative] - choice.centre) / HOLTER_FS
    # Its reason first (a family before the most anomalous beats), naming the beat's time.
    assert choice.reasons[0].startswith(named)
    assert choice.reasons[0].endswith(f"its most typical beat: the beat at {offset:+.2f} s")
    # Only a beat is told by its time: an event named in another strip is told by its own.
    assert all(reason.startswith("family ") for choice in choices for reason in choice.reasons
               if ": the beat at" in reason)


def test_a_strip_is_placed_for_the_gravest_event_it_shows():
    """A supraventricular couplet, then a supraventricular tachycardia 2 s after it: the
    tachycardia's strip is placed for it (its triangle on one of its beats), not the
    couplet's strip before it with the tachycardia's onset at its edge (MIT-BIH 207 at
    29:12)."""
    from anomaly.holter.analysis import analyse_beats
    from anomaly.holter.summary import RecordingRhythm
    from anomaly.report.recordings import strip_choices

    beats = timed_beats(np.r_[np.full(40, 0.8), 0.5, 0.5, 1.0, 0.8, 0.5, np.full(39, 0.4),
                              1.0, np.full(40, 0.8)])
    analysis = analyse_beats(beats)
    [couplet] = [event for event in analysis.events if event.kind.endswith("couplet")]
    [run] = [event for event in analysis.events
             if event.kind == "supraventricular tachycardia"]
    assert run.start_s - couplet.end_s < 3.0
    rhythm = RecordingRhythm(analysis, (), 200.0, beats.time_s, beats.sample)
    choices = strip_choices(beats.sample, np.zeros(len(beats.sample)),
                            np.ones(len(beats.sample), bool), 250.0, rhythm)
    [strip] = [choice for choice in choices
               if choice.reasons[0].startswith("supraventricular tachycardia")]
    assert run.start_s <= strip.centre / 250.0 <= run.end_s, (strip, run)


def test_strips_show_each_event_kind_and_family_once_and_never_the_same_window(in_tmp):
    """The strips of a recording's rhythm: one for the most telling event of each kind, one
    for the AF episode's onset and one per family of ectopic shape and the dominant one,
    around a beat of it; what falls in a strip already chosen is named in its caption:
    no two strips are within half a strip of each other."""
    from anomaly.holter.summary import recording_rhythm
    from anomaly.recordings.segment import SegmentOptions
    from anomaly.report.recordings import STRIP_SECONDS, strip_choices

    base, _ = holter_recording(in_tmp)
    rhythm = recording_rhythm(base, SegmentOptions(), peaks=np.zeros(0, int),
                              scores=np.zeros(0), flagged=np.zeros(0, bool), analysable_s=None)
    peaks = rhythm.samples
    scores = np.linspace(0.0, 0.1, len(peaks))
    choices = strip_choices(peaks, scores, np.ones(len(peaks), bool), HOLTER_FS, rhythm)
    centres = np.array([choice.centre for choice in choices])
    assert np.all(np.diff(np.sort(centres)) >= STRIP_SECONDS * HOLTER_FS / 2)
    assert set(centres) <= set(peaks)
    # In the order a reader looks for them: the events by kind as the events table lists
    # them (210's ventricular tachycardia was the ninth strip of 19, in time order), the AF
    # onset after supraventricular tachycardia, the families, then the most anomalous
    # beats; in time order within a place.
    from anomaly.holter.events import reading_rank
    from anomaly.report.recordings import AF_RANK, ANOMALOUS_RANK, FAMILY_RANK

    def place(reason: str) -> float:
        kind = next((event.kind for event in rhythm.analysis.events
                     if reason.startswith((f"{event.kind}:", f"{event.kind} of"))), None)
        return (reading_rank(kind) if kind is not None else
                AF_RANK if reason.startswith("atrial fibrillation") else
                FAMILY_RANK if reason.startswith("family") else ANOMALOUS_RANK)

    places = [min(place(reason) for reason in choice.reasons) for choice in choices]
    assert places == sorted(places) and len(set(places)) > 2, (places, choices)
    # Each caption starts with what puts its strip there.
    assert [place(choice.reasons[0]) for choice in choices] == places, choices
    for before, after in zip(choices, choices[1:]):
        assert places[choices.index(before)] < places[choices.index(after)] or \
            before.centre < after.centre
    reasons = [reason for choice in choices for reason in choice.reasons]
    for kind in {event.kind for event in rhythm.analysis.events}:
        # Named once: the longest event of its kind.
        assert sum(reason.startswith(f"{kind}:") or reason.startswith(f"{kind} of")
                   for reason in reasons) == 1, (kind, reasons)
    assert sum(reason.startswith("atrial fibrillation from") for reason in reasons) == 1
    # When it starts and ends, and how long it lasts in words (not a clock time).
    assert any(re.fullmatch(r"atrial fibrillation from \d\d:\d\d to \d\d:\d\d, "
                            r"\d+ min \d\d s", reason) for reason in reasons), reasons
    for family in rhythm.families:
        if family.dominant or not family.normal_shape:
            assert sum(reason.startswith(f"family {family.family} ({family.kind}")
                       for reason in reasons) == 1
            # Its strip is around its most typical beat (the triangle on it), or names it
            # in another's with its time from that strip's beat.
            typical = peaks[family.representative]
            choice, = [choice for choice in choices if any(
                reason.startswith(f"family {family.family} (") for reason in choice.reasons)]
            reason, = [reason for reason in choice.reasons
                       if reason.startswith(f"family {family.family} (")]
            assert choice.centre == typical or reason.endswith(
                f"its most typical beat: the beat at {(typical - choice.centre) / HOLTER_FS:+.2f} s"
            ), (choice, reason)
    # A family's most typical beat is the member whose shape correlates best with the
    # mean of its members' (z-normalised) shapes.
    from anomaly.holter.analysis import read_rhythm_beats
    from anomaly.recordings.patient import correlation, unit_rows

    beats, _, _ = read_rhythm_beats(base, SegmentOptions())
    families = rhythm.analysis.families
    for index in range(len(families)):
        members = np.flatnonzero(families.family == index)
        shapes = unit_rows(beats.shapes[members].astype(float))
        likeness = correlation(shapes, shapes.mean(axis=0))
        # Of the members on time, in a family of normal shape (where it has some).
        among = beats.on_time[members] if families.normal_shape[index] and \
            beats.on_time[members].any() else np.ones(len(members), bool)
        assert among[members == families.representative[index]][0]
        assert likeness[members == families.representative[index]][0] == \
            pytest.approx(likeness[among].max(), abs=1e-5)
    # The last beats score highest: the first strip chosen is around the highest.
    assert peaks[-1] in centres or any(abs(peaks[-1] - centre) < STRIP_SECONDS * HOLTER_FS / 2
                                       for centre in centres)


def qrs_complex(width: float, *, centre: float = 20, s_wave_at: float = 6,
                sign: float = 1) -> np.ndarray:
    """A QRS complex's shape on 60 samples: an R wave at ``centre`` and an S wave, 0.3 of
    its size, ``s_wave_at`` samples after it, each a Gaussian of deviation ``width``."""
    x = np.arange(60)
    return sign * (np.exp(-0.5 * ((x - centre) / width) ** 2)
                   - 0.3 * np.exp(-0.5 * ((x - centre - s_wave_at) / width) ** 2))


def families_of(kinds: str, shape_of: dict, rng, on_time: np.ndarray | None = None):
    """The morphology families of beats of ``kinds`` (a letter a beat, ``shape_of`` its
    shape, with a little noise), all on time unless ``on_time`` says."""
    from anomaly.holter.families import beat_families

    shapes = np.stack([shape_of[kind] for kind in kinds])
    shapes = (shapes + rng.normal(0, 0.01, shapes.shape)).astype(np.float32)
    return beat_families(shapes, np.ones(len(kinds), bool) if on_time is None else on_time)


def test_a_family_of_early_wide_beats_is_ectopic_however_like_the_dominant():
    """Beats that nearly all come early, their complex 1.6 times as wide as the dominant
    family's though correlating 0.92 with it, are of ectopic shape (MIT-BIH 214's PVCs
    beside its bundle branch block's beats, read as normal, and its trigeminy missed);
    the same beats on time are of normal shape (a rate-related change of the QRS)."""
    from anomaly.holter.families import beat_families

    rng = np.random.default_rng(5)
    shapes = np.r_[qrs_complex(2.0) + rng.normal(0, 0.01, (60, 60)),
                   qrs_complex(3.4) + rng.normal(0, 0.01, (20, 60))].astype(np.float32)
    for early, ectopic in ((True, True), (False, False)):
        on_time = np.r_[np.ones(60, bool), np.full(20, not early)]
        families = beat_families(shapes, on_time)
        assert families.family[60] != families.dominant
        assert families.ectopic[60:].all() == ectopic and not families.ectopic[:60].any()


def test_a_wide_family_that_alternates_with_ectopic_beats_is_ectopic():
    """A ventricular tachycardia whose complexes alternate (MIT-BIH 223's 55 s one): every
    other beat is of a family correlating 0.92 with the dominant one, 1.6 times as wide,
    and on time at the run's own rate. A wide family whose beats mostly come right after
    a beat of ectopic shape is of ectopic shape; the same beats after normal ones, or only
    two of them after ectopic beats, are of normal shape."""
    rng = np.random.default_rng(11)
    shape_of = {"N": qrs_complex(2.0), "A": qrs_complex(3.4),
                "V": qrs_complex(6.0, centre=30, sign=-1)}

    def alike_and_ectopic(kinds: str):
        families = families_of(kinds, shape_of, rng)
        first_alike = kinds.index("A")
        assert families.family[first_alike] != families.dominant
        return families.ectopic[first_alike], families.ectopic[kinds.index("V")]

    assert alike_and_ectopic("N" * 60 + "VA" * 10 + "N" * 20) == (True, True)
    assert alike_and_ectopic("N" * 60 + "NA" * 10 + "V" * 3 + "N" * 20) == (False, True)
    assert alike_and_ectopic("N" * 60 + "VA" * 2 + "V" + "N" * 20) == (False, True)


def test_a_family_of_early_beats_after_ectopic_ones_is_ectopic_however_narrow():
    """MIT-BIH 200's ventricular tachycardias were broken by a beat of a family of 16 V
    beats, each early and right after a V beat, as narrow as the dominant beats and
    correlating 0.93 with them. Such a family is of ectopic shape; the same early beats
    after normal ones (atrial premature beats) are of normal shape."""
    from anomaly.holter.families import spread

    normal, narrow = qrs_complex(2.0), qrs_complex(1.4, s_wave_at=4)
    ectopic = -np.exp(-0.5 * ((np.arange(60) - 30) / 6.0) ** 2)
    assert spread(narrow) < spread(normal)
    rng = np.random.default_rng(12)

    def narrow_family_is_ectopic(kinds: str) -> bool:
        families = families_of(kinds, {"N": normal, "E": narrow, "V": ectopic}, rng,
                               on_time=np.array([kind != "E" for kind in kinds]))
        first = kinds.index("E")
        assert families.family[first] != families.dominant
        assert families.ectopic[kinds.index("V")]
        return bool(families.ectopic[first])

    assert narrow_family_is_ectopic("N" * 60 + "VE" * 8 + "N" * 20)
    assert not narrow_family_is_ectopic("N" * 60 + "NE" * 8 + "V" * 3 + "N" * 20)


def test_a_family_of_narrow_beats_on_time_is_conducted_however_unlike_the_dominant():
    """MIT-BIH 108's and 111's normal beats change shape with the lead's position: large
    families of narrow complexes, on time, correlating under 0.8 with the dominant one,
    read as ventricular runs at the sinus rate (108: 16 of them). A family of narrow beats
    nearly all on time is of normal shape; the same beats early, or a wide family on
    time (a slow ventricular rhythm), are of ectopic shape."""
    from anomaly.holter.families import beat_families, spread

    normal = qrs_complex(2.0)
    changed = -normal  # the lead's axis turned: a QRS as narrow, inverted
    wide = -np.exp(-0.5 * ((np.arange(60) - 28) / 6.0) ** 2)
    assert spread(changed) < 1.2 * spread(normal) <= spread(wide)
    rng = np.random.default_rng(13)

    def second_family_is_ectopic(other: np.ndarray, on_time: bool) -> bool:
        shapes = np.r_[normal + rng.normal(0, 0.01, (60, 60)),
                       other + rng.normal(0, 0.01, (30, 60))].astype(np.float32)
        families = beat_families(shapes, np.r_[np.ones(60, bool), np.full(30, on_time)])
        assert families.family[60] != families.dominant
        assert not families.ectopic[:60].any()
        return bool(families.ectopic[60:].all())

    assert not second_family_is_ectopic(changed, on_time=True)
    assert second_family_is_ectopic(changed, on_time=False)
    assert second_family_is_ectopic(wide, on_time=True)


def test_a_normal_familys_typical_beat_comes_on_time():
    """A family of normal shape is shown by a beat on time, though premature beats of its
    shape match its template better (MIT-BIH 232: the dominant family's strip marked a
    beat called S); a family of ectopic shape by its most typical beat, on time or not."""
    from anomaly.holter.families import beat_families

    rng = np.random.default_rng(3)
    normal = np.exp(-0.5 * ((np.arange(60) - 20) / 2.0) ** 2)
    ectopic = np.exp(-0.5 * ((np.arange(60) - 25) / 7.0) ** 2)
    shapes = np.r_[normal + rng.normal(0, 0.05, (50, 60)), np.tile(normal, (5, 1)),
                   ectopic + rng.normal(0, 0.05, (20, 60)), np.tile(ectopic, (1, 1))]
    on_time = np.r_[np.ones(50, bool), np.zeros(5, bool), np.zeros(20, bool), [True]]
    families = beat_families(shapes.astype(np.float32), on_time)
    dominant = families.dominant
    assert families.family[50] == dominant and not families.normal_shape[families.family[60]]
    assert on_time[families.representative[dominant]]
    assert families.representative[families.family[60]] == len(shapes) - 1


def test_strips_are_drawn_at_25_mm_per_second_and_10_mm_per_millivolt(in_tmp):
    """ECG paper's scale, whatever the strip: 25 mm of the picture per second and 10 mm
    per millivolt; a recording in microvolts (EDF) is drawn in millivolts as one in
    millivolts is, and one without a unit says its amplitude is not calibrated."""
    import edfio
    import pandas as pd

    from anomaly.recordings.reading import read_strips
    from anomaly.recordings.segment import SegmentOptions
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    from anomaly.report.paper import PaperStrip, plot_paper_strips

    base, _ = holter_recording(in_tmp)
    from anomaly.recordings.signals import open_lead

    millivolts = open_lead(base).read(0, int(HOLTER_S * HOLTER_FS))
    edfio.Edf([edfio.EdfSignal(millivolts * 1000, HOLTER_FS, label="MLII",
                               physical_dimension="uV", physical_range=(-5000, 5000))]
              ).write(in_tmp / "holter.edf")
    pd.DataFrame({"MLII": millivolts}).to_csv(in_tmp / "holter.csv", index=False)
    centres = np.array([20 * HOLTER_FS, 200 * HOLTER_FS])
    read = {name: read_strips(path, SegmentOptions(fs=HOLTER_FS if name == "csv" else None),
                              centres, seconds=8.0)
            for name, path in (("wfdb", base), ("edf", in_tmp / "holter.edf"),
                               ("csv", in_tmp / "holter.csv"))}
    for wfdb_strip, edf_strip in zip(read["wfdb"], read["edf"]):
        assert wfdb_strip.calibrated and edf_strip.calibrated
        np.testing.assert_allclose(edf_strip.values, wfdb_strip.values, atol=0.01)
    assert not any(strip.calibrated for strip in read["csv"])

    strips = [PaperStrip(strip.start, strip.values, strip.fs, strip.centre, (), "a strip")
              for strip in read["wfdb"]]
    figure = plot_paper_strips(strips)
    width_in, height_in = figure.get_size_inches()
    for ax, strip in zip(figure.axes, strips):
        box = ax.get_position()
        seconds = len(strip.values) / strip.fs
        low, high = ax.get_ylim()
        assert box.width * width_in * 25.4 == pytest.approx(25 * seconds, rel=1e-6)
        assert box.height * height_in * 25.4 == pytest.approx(10 * (high - low), rel=1e-6)
        assert low <= np.quantile(strip.values, 0.01) and high >= np.quantile(strip.values, 0.99)
    # A caption longer than its strip is wrapped within it, the sheet made taller for it,
    # and the sheet's title says what the marks mean.
    long = [replace(strip, caption="ventricular tachycardia: 4 beats at 107 bpm " * 6)
            for strip in strips]
    short = plot_paper_strips(strips, title="holter: ECG strips")
    titled = plot_paper_strips(long, title="holter: ECG strips")
    (key,) = [text for text in titled.texts if "Above each beat" in text.get_text()]
    added = 0
    renderer = FigureCanvasAgg(titled).get_renderer()
    for ax in titled.axes:
        (caption,) = [child for child in ax.get_children() if isinstance(child, Text)
                      and child.get_text() == ax.get_title(loc="left")]
        added += caption.get_text().count("\n")
        # Each wrapped caption, as drawn, ends within its strip's paper.
        assert caption.get_window_extent(renderer).x1 <= ax.get_window_extent(renderer).x1
    assert added >= len(long)
    taller_mm = (titled.get_size_inches()[1] - short.get_size_inches()[1]) * 25.4
    assert taller_mm == pytest.approx(added * 3.6)


def test_a_rhythm_that_cannot_be_read_costs_the_rhythm_not_the_run(in_tmp, caplog):
    """A recording scored, then gone (moved away by the job that dropped it) when its
    rhythm is read: the run keeps its inputs, without a rhythm, and a warning says why."""
    import logging

    from anomaly.recordings.segment import SegmentOptions
    from anomaly.scoring.run import with_rhythms
    from anomaly.scoring.summary import InputResult, ScoreSummary

    gone = str(in_tmp / "gone")
    summary = ScoreSummary(0.1)
    summary.timelines[gone] = [(np.array([360, 720]), np.array([0.05, 0.2]),
                                np.array([True, True]))]
    inputs = [InputResult(input=gone, output="scores.csv", rows_scored=2)]
    with caplog.at_level(logging.WARNING):
        kept = with_rhythms(inputs, summary, {gone: SegmentOptions()})
    assert kept == inputs and kept[0].rhythm is None
    assert f"the rhythm of {gone} was not analysed" in caplog.text
