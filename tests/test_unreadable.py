"""Unreadable stretches of a lead (flat, off its baseline, clipped, too noisy) and
ventricular flutter set aside:
found where they are planted in real records and where MIT-BIH 208's lead MLII comes off,
absent from clean ECG, and said in every output (the scores' ``unreadable`` column, the
run's log line, its report and HTML)."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly.holter.episodes import Episode
from anomaly.recordings.annotations import UNMATCHED
from anomaly.recordings.quality import (REASONS, Unreadable, _recovering, confirmed_share,
                                        hum_only,
                                        lone_artefacts, waves_between_beats)
from anomaly.recordings.reading import read_recording
from anomaly.recordings.segment import SegmentOptions, find_beats
from test_recordings import beat_train, synthetic_ecg, write_wfdb

FS = 360


@pytest.fixture(scope="module")
def mitdb():
    from anomaly.datasets import find_mitdb

    found = find_mitdb(["119", "205", "207", "208", "210", "219", "228", "232"])
    if found is None:
        pytest.skip("MIT-BIH not found (looked in $ANOMALY_DATA_DIR, the download cache and "
                    "../shared/data; 'anomaly data fetch mitdb' downloads it)")
    return found


def near(times: np.ndarray, first: float, end: float, reach: float = 0.5) -> np.ndarray:
    return (times >= first - reach) & (times <= end + reach)


def test_mitdb_208s_lead_off_is_set_aside_and_its_clean_minutes_are_not(mitdb):
    """208 from 19:00 to 24:00: lead MLII leaves its baseline at 20:16-20:18 and at
    23:03-23:08 (an electrode's pop, then the amplifier recovering); the beats there are
    the ones the issue found topping the anomalies. They are set aside as off baseline; of
    the other beats matched to a reference beat, >= 97% are readable."""
    read = read_recording(mitdb / "208", SegmentOptions(start=1140, stop=1440,
                                                        annotations="atr"))
    beats, counts = read.beats, read.counts
    times, reasons = beats.time_s, beats.unreadable_reasons()
    pops = near(times, 1216.5, 1218.0, 0) | near(times, 1383.5, 1388.5, 0)
    assert pops.sum() >= 3
    assert set(reasons[pops]) == {"off baseline"}
    off = counts.unreadable[REASONS.index("off baseline")] / FS
    assert 5 <= off <= 12, off
    real = (beats.labels != UNMATCHED) & ~near(times, 1216.9, 1218.0) \
        & ~near(times, 1383.8, 1388.2)
    assert beats.readable[real].mean() >= 0.97
    assert counts.span_samples == 300 * FS


def test_planted_artefacts_in_a_real_record_are_set_aside_by_kind(mitdb, tmp_path):
    """119's first 4 minutes (bigeminy), written again with a lead off (flat, 60-64 s),
    an electrode pulled (the baseline 3 mV up, 130-140 s) and a burst of electrode-motion
    noise 12 dB above the QRS complexes (180-190 s): each stretch is unreadable for its
    reason, the beats cut from it are set aside, and the clean minutes stay readable (their
    bigeminy too). (Noise at 0 dB, through which both detectors still find the real beats,
    is readable: it is the ECG's own, and its beats are scored.)"""
    import wfdb

    from anomaly.noise_stress import qrs_power, stress_noise

    signal = wfdb.rdrecord(str(mitdb / "119"), channel_names=["MLII"],
                           sampto=240 * FS).p_signal[:, 0]
    annotation = wfdb.rdann(str(mitdb / "119"), "atr", sampto=240 * FS)
    beats = annotation.sample[np.isin(annotation.symbol, list("NV"))]
    at = lambda first, end: slice(first * FS, end * FS)  # noqa: E731
    signal[at(60, 64)] = signal[60 * FS]
    signal[at(130, 140)] += 3.0
    noise = stress_noise("em", 10 * FS, FS, seed=1)
    signal[at(180, 190)] += noise * np.sqrt(16 * qrs_power(signal, beats, FS)
                                            / np.mean(noise ** 2))
    wfdb.wrsamp("planted", fs=FS, units=["mV"], sig_name=["MLII"], fmt=["16"],
                p_signal=signal[:, None], write_dir=str(tmp_path))
    wfdb.wrann("planted", "atr", annotation.sample, symbol=annotation.symbol,
               write_dir=str(tmp_path))

    read = read_recording(tmp_path / "planted", SegmentOptions(annotations="atr"))
    found, counts = read.beats, read.counts
    times, reasons = found.time_s, found.unreadable_reasons()
    seconds = dict(zip(REASONS, np.array(counts.unreadable) / FS))
    assert 3.5 <= seconds["flat"] <= 5, seconds
    assert 9.5 <= seconds["off baseline"] <= 16, seconds  # And a second either side.
    assert seconds["noisy"] >= 4, seconds
    assert set(reasons[near(times, 131, 139, 0)]) == {"off baseline"}
    in_noise = near(times, 180.5, 189.5, 0)
    assert in_noise.sum() >= 10 and not found.readable[in_noise].any()
    clean = ~(near(times, 60, 64, 1) | near(times, 130, 140, 1) | near(times, 180, 190, 6))
    assert found.readable[clean].mean() >= 0.99
    assert found.readable[clean & (found.labels == "V")].all()
    stretches = {(round(first / FS), round(end / FS), REASONS[code - 1])
                 for first, end, code in counts.stretches}
    assert (60, 64, "flat") in stretches and (129, 141, "off baseline") in stretches


def planted_lead_off(signal: np.ndarray, fs: float, first: float, end: float, *,
                     noise_mv: float, hum_hz: float = 50.0, hum_mv: float = 0.0) -> np.ndarray:
    """``signal`` with a lead off from ``first`` to ``end`` seconds: nothing on it but the
    amplifier's noise (``noise_mv``, white) and mains hum (``hum_mv`` in amplitude; none
    by default), about an offset of 0.1 mV."""
    rng = np.random.default_rng(3)
    cut = slice(int(first * fs), int(end * fs))
    t = np.arange(cut.stop - cut.start) / fs
    signal = signal.copy()
    signal[cut] = 0.1 + hum_mv * np.sin(2 * np.pi * hum_hz * t) + rng.normal(0, noise_mv, len(t))
    return signal


def test_hum_only_finds_three_seconds_or_more_of_nothing_but_mains_hum():
    """Synthetic ECG at 250 Hz with mains hum planted in it (whole seconds): 3 s of hum
    alone are found, 2 s are not (a slow rhythm's second may hold no QRS complex); hum
    over the ECG, even over a low-voltage one, noise without hum, nothing at all and hum
    at 100 Hz sampling (no notch under its Nyquist frequency) are not."""
    fs = 250
    rng = np.random.default_rng(0)
    ecg = synthetic_ecg(beat_train(20, fs), 20 * fs, fs)
    t = np.arange(len(ecg)) / fs
    hum = 0.2 * np.sin(2 * np.pi * 50 * t) + rng.normal(0, 0.005, len(t))
    assert hum_only(hum, fs).all()
    for seconds in (2, 3, 6):
        lead = ecg.copy()
        lead[5 * fs:(5 + seconds) * fs] = hum[:seconds * fs]
        found = hum_only(lead, fs)
        assert found.sum() == (seconds * fs if seconds >= 3 else 0), seconds
        assert seconds < 3 or found[5 * fs:(5 + seconds) * fs].all()
    assert not hum_only(ecg + 0.3 * np.sin(2 * np.pi * 60 * t), fs).any()
    # A low-voltage ECG under hum over twice its QRS complexes' size: its beats are there
    # without the hum (the whole of it read as a lead off, or no beat at all, before).
    assert not hum_only(0.3 * ecg + 1.2 * np.sin(2 * np.pi * 60 * t), fs).any()
    assert not hum_only(rng.normal(0, 0.01, len(t)), fs).any()
    assert len(hum_only(np.empty(0), fs)) == 0
    slow = np.arange(20 * 100) / 100
    assert not hum_only(0.2 * np.sin(2 * np.pi * 50 * slow), 100).any()


def test_a_live_steps_guess_of_what_comes_next_is_not_hum():
    """A live stream's step reads the lead followed by its last seconds mirrored, a guess
    of what comes next (:mod:`anomaly.recordings.live`): 2.5 s of hum at the end of the
    lead, mirrored into 4.5 s, were read as hum alone where the lead itself, read from a
    file, was not (under 3 s). The readability of the lead is the same either way."""
    fs = 250
    n = 20 * fs
    lead = synthetic_ecg(beat_train(20, fs), n, fs)
    tail = int(2.5 * fs)
    lead[-tail:] = 0.2 * np.sin(2 * np.pi * 50 * np.arange(tail) / fs)
    guess = 2 * fs
    _, plain = find_beats(lead, 0, fs, 90, 110, keep=(0, n), n_samples=n)
    _, guessed = find_beats(np.concatenate([lead, lead[-guess:][::-1]]), 0, fs, 90, 110,
                            keep=(0, n), n_samples=n, guessed=guess)
    assert np.array_equal(guessed.reason, plain.reason)


@pytest.mark.parametrize("fs, hz, mv, noise_mv", [(FS, 50.0, 0.2, 0.005),
                                                  (128, 60.0, 0.05, 0.01),
                                                  (500, 60.0, 0.02, 0.002)])
def test_a_lead_off_that_leaves_mains_hum_on_the_lead_is_flat(mitdb, tmp_path, fs, hz, mv,
                                                              noise_mv):
    """219's first 5 minutes, read in chunks of 60 s, with the lead off from 100 s to 230 s
    and nothing on it but mains hum and the amplifier's noise: the chunk from 120 s to
    180 s holds nothing else, so no QRS amplitude to be flat against, and both detectors
    found "beats" in the hum (a 12-minute lead off with 0.2 mV of 50 Hz hum read as 99%
    analysable, 1,337 beats). The stretch is one, flat; no beat is read in it
    (the detector does not look at it), and the minutes around it stay readable (but for
    the seconds after it, where the second detector settles)."""
    import wfdb

    from anomaly.recordings.filters import resample, resampling_ratio

    signal = wfdb.rdrecord(str(mitdb / "219"), channel_names=["MLII"],
                           sampto=300 * FS).p_signal[:, 0]
    signal = planted_lead_off(resample(signal, resampling_ratio(FS, fs)), fs, 100, 230,
                              noise_mv=noise_mv, hum_hz=hz, hum_mv=mv)
    wfdb.wrsamp("hum", fs=fs, units=["mV"], sig_name=["MLII"], fmt=["16"],
                p_signal=signal[:, None], write_dir=str(tmp_path))

    read = read_recording(tmp_path / "hum", SegmentOptions(chunk_seconds=60))
    times = read.beats.time_s
    assert not read.beats.readable[near(times, 100, 230, 0)].any()
    stretches = [(first / fs, end / fs, REASONS[code - 1])
                 for first, end, code in read.counts.stretches]
    assert len(stretches) == 1, stretches
    (first, end, reason), = stretches
    # Its edges: the second detector settles for a few seconds after the lead comes back.
    assert reason == "flat" and 98 <= first <= 101 and 229 <= end <= 234, stretches
    assert read.beats.readable[~near(times, 100, 230, 4)].mean() >= 0.99


@pytest.mark.parametrize("fs", [FS, 500])
def test_a_lead_off_with_nothing_but_noise_on_it_reads_no_beat(mitdb, tmp_path, fs):
    """219's first 5 minutes, read in chunks of 60 s, with the lead off from 100 s to
    230 s and nothing on it but the amplifier's noise (10 uV, no hum): the chunk from 120 s
    to 180 s holds nothing else, the tool's detector finds "beats" in it and the second
    detector none at all, which was taken for no opinion (at 360 Hz, 1,750 of 8,500 such
    beats were read over the 44 MIT-BIH records; 4,229 at 500 Hz). No beat is read in it."""
    import wfdb

    from anomaly.recordings.filters import resample, resampling_ratio

    signal = wfdb.rdrecord(str(mitdb / "219"), channel_names=["MLII"],
                           sampto=300 * FS).p_signal[:, 0]
    signal = planted_lead_off(resample(signal, resampling_ratio(FS, fs)), fs, 100, 230,
                              noise_mv=0.01)
    wfdb.wrsamp("noise", fs=fs, units=["mV"], sig_name=["MLII"], fmt=["16"],
                p_signal=signal[:, None], write_dir=str(tmp_path))

    read = read_recording(tmp_path / "noise", SegmentOptions(chunk_seconds=60))
    inside = near(read.beats.time_s, 100, 230, 0)
    assert inside.sum() >= 50  # The "beats" found in the noise ...
    assert not read.beats.readable[inside].any()  # ... none read.


def test_the_beats_around_a_lead_off_of_hum_are_found_as_without_it(mitdb, tmp_path):
    """232's first 5 minutes (sinus bradycardia, small P and T waves) with a lead off of
    hum from 100 s to 220 s, read in chunks of 60 s: the beats read more than 4 s from it
    are those read without it, but one (of 181). Over the hum the R-peak detector's
    adaptive thresholds fell for the whole chunk, and 232's P and T waves 40 s before it
    were beats (25 differed: 5 missed, 20 more)."""
    import wfdb

    clean = wfdb.rdrecord(str(mitdb / "232"), channel_names=["MLII"],
                          sampto=300 * FS).p_signal[:, 0]
    found = []
    off = planted_lead_off(clean, FS, 100, 220, noise_mv=0.01, hum_hz=60.0, hum_mv=0.05)
    for name, signal in (("clean", clean), ("off", off)):
        wfdb.wrsamp(name, fs=FS, units=["mV"], sig_name=["MLII"], fmt=["16"],
                    p_signal=signal[:, None], write_dir=str(tmp_path))
        beats = read_recording(tmp_path / name, SegmentOptions(chunk_seconds=60)).beats
        away = ~near(beats.time_s, 100, 220, 4)
        found.append(set(np.round(beats.time_s[away & beats.readable], 2)))
    assert len(found[0]) >= 100
    assert len(found[0] ^ found[1]) <= 1, found[0] ^ found[1]


def test_mains_hum_over_the_ecg_is_no_lead_off(mitdb, tmp_path):
    """Mains hum over the ECG (0.3 mV of 60 Hz, larger than 232's P and T waves), through
    232's sinus bradycardia and pauses, whose seconds between beats hold no QRS complex: its
    beats are as readable as without the hum."""
    import wfdb

    clean = wfdb.rdrecord(str(mitdb / "232"), channel_names=["MLII"],
                          sampto=300 * FS).p_signal[:, 0]
    hum = clean + 0.3 * np.sin(2 * np.pi * 60.0 * np.arange(len(clean)) / FS)
    readable = []
    for name, signal in (("clean", clean), ("hum", hum)):
        wfdb.wrsamp(name, fs=FS, units=["mV"], sig_name=["MLII"], fmt=["16"],
                    p_signal=signal[:, None], write_dir=str(tmp_path))
        readable.append(read_recording(tmp_path / name, SegmentOptions()).beats.readable)
    assert len(readable[0]) >= 250 and len(readable[1]) == len(readable[0])
    assert readable[1].sum() >= readable[0].sum()


@pytest.mark.parametrize("chunk_seconds", [300.0, 67.0])
def test_a_clipped_stretch_is_listed_as_one(mitdb, tmp_path, chunk_seconds):
    """119's first 2 minutes with 15 s (60-75 s) clipped at the 25th and 75th percentiles
    of that stretch: the lead leaves the rails between its waves, and its clipped pieces,
    0.1-0.7 s each, were listed as 22 stretches. They are one, clipped, also across a
    chunk's border (read in chunks of 67 s); the beats there are set aside."""
    import wfdb

    signal = wfdb.rdrecord(str(mitdb / "119"), channel_names=["MLII"],
                           sampto=120 * FS).p_signal[:, 0]
    clipped = signal[60 * FS:75 * FS]
    signal[60 * FS:75 * FS] = np.clip(clipped, *np.percentile(clipped, [25, 75]))
    wfdb.wrsamp("clipped", fs=FS, units=["mV"], sig_name=["MLII"], fmt=["16"],
                p_signal=signal[:, None], write_dir=str(tmp_path))

    read = read_recording(tmp_path / "clipped", SegmentOptions(chunk_seconds=chunk_seconds))
    stretches = [(first / FS, end / FS, REASONS[code - 1])
                 for first, end, code in read.counts.stretches]
    assert len(stretches) == 1 and read.counts.n_stretches == 1, stretches
    (first, end, reason), = stretches
    assert reason == "clipped" and 59 <= first <= 61 and 74 <= end <= 76, stretches
    assert not read.beats.readable[near(read.beats.time_s, 61, 74, 0)].any()


def test_a_bigeminy_whose_pvcs_the_second_detector_misses_stays_readable(tmp_path):
    """Three minutes of ventricular bigeminy whose PVCs are wide and negative (synthetic,
    250 Hz): the second detector misses many of them (so its windows confirm fewer than
    80% of the beats, and N and V beats are not alike), yet each PVC it misses looks like
    those it counts: the bigeminy is read, not set aside as noise. It was, 63 s of 90 in
    a recording of the README's."""
    import wfdb

    from anomaly.recordings.quality import confirmed, second_opinion
    from anomaly.synthetic import synthetic_holter

    fs = 250
    signal, beats = synthetic_holter(420.0, fs, seed=3, bigeminy=(120.0, 300.0))
    wfdb.wrsamp("bigeminy", fs=fs, units=["mV"], sig_name=["MLII"], fmt=["16"],
                p_signal=signal[:, None], write_dir=str(tmp_path))
    ventricular = np.array([round(time * fs) for time, kind in beats
                            if kind == "v" and 125 <= time < 295])
    missed = ~confirmed(ventricular, second_opinion(signal, fs), int(0.15 * fs))
    assert missed.mean() >= 0.2  # The case: the second detector misses many PVCs.
    found = read_recording(tmp_path / "bigeminy", SegmentOptions()).beats
    assert found.readable.all(), found.time_s[~found.readable]


def test_the_rules_of_the_tests():
    # A window off the baseline grows into the quiet windows after (or before) it, then by
    # one window either side; a quiet window elsewhere (a pause) stays readable.
    off = np.zeros(10, dtype=bool)
    off[2] = True
    quiet = np.zeros(10, dtype=bool)
    quiet[[3, 4, 8]] = True
    np.testing.assert_array_equal(_recovering(off, quiet), [0, 1, 1, 1, 1, 1, 0, 0, 0, 0])
    # The second detector confirms a beat within the tolerance, either side.
    assert confirmed_share(np.array([100, 200, 300]), np.array([95, 310]), 10) == 2 / 3
    assert confirmed_share(np.array([], dtype=int), np.array([5]), 10) == 1.0
    # A beat no one confirms that splits an interval of the rhythm is a lone artefact; an
    # unconfirmed premature beat followed by a pause is not.
    peaks = np.array([0, 100, 200, 250, 300, 400, 460, 620, 700])
    other = np.array([0, 100, 200, 300, 400, 620, 700])
    np.testing.assert_array_equal(np.flatnonzero(lone_artefacts(peaks, other, 5)), [3])
    # With the band-passed lead: only a beat like neither neighbour is (a spike between
    # two beats); one like the next (a ventricular run's first beat, whose next beat is of
    # its shape) is not. Beats at 0, 100, 200 (narrow), 250 (the candidate), 300 (wide).
    narrow = np.exp(-0.5 * (np.arange(-10, 11) / 2.0) ** 2)
    wide = np.sin(np.linspace(0, 2 * np.pi, 21)) * np.hanning(21)
    spike = np.eye(21)[10] - np.eye(21)[13]  # correlated 0.31 and 0.26 with them
    for candidate, expected in ((wide, []), (spike, [3])):
        lead = np.zeros(410)
        for peak, shape in ((0 + 10, narrow), (100, narrow), (200, narrow),
                            (250, candidate), (300, wide), (390, narrow)):
            lead[peak - 10:peak + 11] += shape
        beats = np.array([10, 100, 200, 250, 300, 390])
        found = np.flatnonzero(lone_artefacts(beats, np.array([10, 100, 200, 300, 390]), 5,
                                              filtered=lead, half=10))
        np.testing.assert_array_equal(found, expected)
    with pytest.raises(ValueError, match="half"):
        lone_artefacts(beats, beats, 5, filtered=lead)
    # Stretches by reason, and the reason found first in a window.
    unreadable = Unreadable(np.array([0, 1, 1, 0, 4, 4, 4, 0, 2], dtype=np.int8))
    assert unreadable.stretches(0, 9) == [(1, 3, 1), (4, 7, 4), (8, 9, 2)]
    assert unreadable.stretches(2, 6) == [(2, 3, 1), (4, 6, 4)]
    np.testing.assert_array_equal(unreadable.within(np.array([0, 3, 7]), np.array([3, 5, 8])),
                                  [1, 4, 0])
    assert unreadable.samples() == (2, 1, 0, 3, 0)
    # Ventricular flutter (code 5) is a stretch of its own, never joined to the lead's,
    # nor they through it, however close.
    unreadable = Unreadable(np.array([0, 4, 4, 5, 5, 5, 0, 4, 0, 5, 5], dtype=np.int8), join=4)
    assert unreadable.stretches(0, 11) == [(1, 3, 4), (3, 6, 5), (7, 8, 4), (9, 11, 5)]


def test_a_lead_off_across_chunks_is_one_stretch_and_spoils_no_rr_interval(tmp_path):
    """A lead off from 28 s to 55 s, read in 40-second chunks (the stretch runs over a
    chunk's border and past its 10 s of padding) and in one: the same beats set aside
    (the last before it and the first after it, whose RR interval spans it, too), one
    stretch, and a local mean RR that the 27-second gap does not enter."""

    peaks = beat_train(100, FS)
    lead = synthetic_ecg(peaks, 100 * FS, FS)
    lead[28 * FS:55 * FS] = lead[28 * FS]
    base = write_wfdb(tmp_path, "off", lead[:, None], lead_names=("MLII",), fs=FS)
    whole = read_recording(base, SegmentOptions(chunk_seconds=1e6))
    chunked = read_recording(base, SegmentOptions(chunk_seconds=40))
    for read in (whole, chunked):
        beats = read.beats
        assert not beats.readable[np.argmax(beats.time_s > 55)]  # The first after it.
        assert not beats.readable[np.flatnonzero(beats.time_s < 28)[-1]]  # The last before.
        assert beats.readable[(beats.time_s < 26) | (beats.time_s > 57)].all()
        assert np.nanmax(beats.rr_local_mean) < 1.2
        assert read.counts.n_stretches == 1
        (first, end, code), = read.counts.stretches
        assert (round(first / FS), round(end / FS), REASONS[code - 1]) == (28, 55, "flat")
    np.testing.assert_array_equal(chunked.beats.unreadable, whole.beats.unreadable)
    np.testing.assert_array_equal(chunked.beats.rr_local_mean, whole.beats.rr_local_mean)


def test_mitdb_210s_ventricular_tachycardias_are_read_whole(mitdb):
    """210's runs of ventricular tachycardia at 7:01 and 18:03: the second detector misses
    a beat of each, which splits the interval around it as a lone artefact between two
    beats would, but it is like the run's next beat: read, not set aside as noise (the
    runs were reported 3 beats long, their other beats unreadable)."""
    from anomaly.recordings.annotations import read_reference_beats

    reference = read_reference_beats(str(mitdb / "210"), "atr", n_samples=650000, fs=FS)
    for start, stop in ((415, 430), (1078, 1090)):
        read = read_recording(mitdb / "210", SegmentOptions(start=start, stop=stop))
        ventricular = reference.samples[(reference.classes == "V")
                                        & (reference.samples >= start * FS)
                                        & (reference.samples < stop * FS)]
        found = read.beats.sample
        matched = np.abs(found[:, None] - ventricular[None, :]).min(axis=1) < 0.15 * FS
        assert matched.sum() >= 5, (start, matched.sum())
        assert read.beats.readable[matched].all(), read.beats.time_s[matched & ~read.beats.readable]
        assert read.counts.n_stretches == 0


def test_mitdb_219s_pause_is_read(mitdb):
    """MIT-BIH 219's 2.6 s pause at 5:01 (the reference's comment 'PSE'), where the lead
    moves less than 2% of a QRS complex: read, the beats either side of it too. Set aside
    as flat, it hid the pause."""
    read = read_recording(mitdb / "219", SegmentOptions(start=280, stop=320))
    times, beats = read.beats.time_s, read.beats
    before = np.flatnonzero(times < 302)[-1]
    assert times[before + 1] - times[before] > 2.5  # the pause, between two beats found
    assert beats.readable[before - 2:before + 4].all() and read.counts.n_stretches == 0


def test_waves_between_beats_a_pause_apart_are_no_pause():
    """Between two beats 3 s apart, smooth waves at 4 Hz, a third of the usual amplitude,
    that the detector did not read as beats (ventricular flutter) are waves: the stretch
    between the first beat's T wave and the second's QRS. A pause's small P waves are
    not, nor the same waves on a lead whose usual amplitude is four times as large, nor
    waves between beats closer than a pause; beats a pause apart exactly are judged."""
    t = np.arange(6 * FS) / FS
    waves = 0.3 * np.sin(2 * np.pi * 4 * t)
    peaks = (np.array([0.5, 1.5, 4.5, 5.5]) * FS).astype(int)
    gap = [(int(1.95 * FS), int(4.2 * FS))]
    assert waves_between_beats(waves, peaks, FS, usual=1.0) == gap
    assert waves_between_beats(waves / 10, peaks, FS, usual=1.0) == []
    assert waves_between_beats(waves, peaks, FS, usual=4.0) == []
    assert waves_between_beats(waves, peaks, FS, usual=0.0) == []  # the flat test's
    closer = (np.array([0.5, 1.5, 3.0, 4.0]) * FS).astype(int)
    assert waves_between_beats(waves, closer, FS, usual=1.0) == []
    exactly = (np.array([0.5, 1.5, 3.5, 4.5]) * FS).astype(int)
    assert waves_between_beats(waves, exactly, FS, usual=1.0) == [
        (int(1.95 * FS), int(3.2 * FS))]


def test_mitdb_207s_ventricular_flutter_is_no_pause_and_232s_pauses_are(mitdb):
    """MIT-BIH 207's ventricular flutter (25:41 to 27:19), whose waves the detectors partly
    miss, left gaps of 2 s and more between readable beats, listed as pauses up to 4.1 s
    (judged to 27:16: the gap where the flutter ends is a pause); 232's pauses are read
    (its RR intervals of 2 s and more: 116 in the record, 19 in these 200 s)."""
    read = read_recording(mitdb / "207", SegmentOptions(start=1500, stop=1700))
    times, readable = read.beats.time_s, read.beats.readable
    gaps = (np.diff(times) >= 2.0) & readable[:-1] & readable[1:]
    assert not (gaps & near(times[:-1], 1541.0, 1636.0, 0)).any()
    read = read_recording(mitdb / "232", SegmentOptions(start=1300, stop=1500))
    times, readable = read.beats.time_s, read.beats.readable
    assert ((np.diff(times) >= 2.0) & readable[:-1] & readable[1:]).sum() >= 15


def test_a_quiet_pause_between_beats_is_read_and_a_quiet_lead_off_is_not(tmp_path):
    """A stretch where the lead is quiet (moving less than 2% of a QRS complex, its noise
    still there) between two beats of the rhythm is a pause when they are at most 10 s
    apart: a synthetic 7 s asystole is read, the beats either side too. Flat still: a
    lead quiet for 15 s; one that does not move at all; and one whose loose electrode
    taps every 3.2 s (each tap found as a beat: they read as 13 pauses of 3.2 s and a
    bradycardia)."""

    peaks = beat_train(130, FS)
    quiet = {"asystole": (20, 27), "quiet": (40, 55), "off": (62, 68), "taps": (80, 120)}
    kept = np.ones(len(peaks), bool)
    for first, end in quiet.values():
        kept &= (peaks < first * FS) | (peaks >= end * FS)
    lead = synthetic_ecg(peaks[kept], 130 * FS, FS)
    rng = np.random.default_rng(1)
    for name, (first, end) in quiet.items():
        stretch = slice(first * FS, end * FS)
        lead[stretch] = lead[first * FS] + (0 if name == "off" else
                                            rng.normal(0, 0.004, (end - first) * FS))
    for tap in np.arange(81.0, 119.0, 3.2):  # 40 ms, 1 mV
        lead[int(tap * FS):int((tap + 0.04) * FS)] += 1.0
    base = write_wfdb(tmp_path, "pauses", lead[:, None], lead_names=("MLII",), fs=FS)
    read = read_recording(base, SegmentOptions())
    stretches = {(round(first / FS), round(end / FS), REASONS[code - 1])
                 for first, end, code in read.counts.stretches}
    assert not near(read.beats.time_s[~read.beats.readable], 18, 29).any()
    assert {reason for _, _, reason in stretches} <= {"flat", "noisy"}, stretches
    found = {(first, end) for first, end, _ in stretches}
    assert any(first <= 41 and end >= 54 for first, end in found), stretches
    assert any(first <= 63 and end >= 67 for first, end in found), stretches
    assert not any(first < 28 and end > 19 for first, end in found), stretches
    # The taps' stretch: unreadable but for the taps' own windows.
    taps = near(read.beats.time_s, 82, 118, 0)
    assert taps.sum() >= 10 and not read.beats.readable[taps].any()


def test_a_recording_keeps_its_longest_stretches_however_many():
    """A lead clipping every few seconds for a day has tens of thousands of stretches:
    the counts keep their number, the first, the last and the 20 longest."""
    from anomaly.recordings.quality import LISTED_STRETCHES
    from anomaly.recordings.segment import SegmentCounts

    total = SegmentCounts()
    rng = np.random.default_rng(0)
    lengths = rng.integers(36, 3600, 30_000)
    for chunk in range(300):
        own = [(chunk * 10**6 + i * 4000, chunk * 10**6 + i * 4000 + int(lengths[chunk * 100 + i]),
                3) for i in range(100)]
        total += SegmentCounts(stretches=tuple(own), n_stretches=len(own))
    assert total.n_stretches == 30_000
    assert len(total.stretches) <= LISTED_STRETCHES + 2
    kept = sorted((end - first for first, end, _ in total.stretches[1:-1]), reverse=True)
    assert kept == sorted(lengths, reverse=True)[:LISTED_STRETCHES]
    # A stretch that runs into the next chunk is one, its reason that of its longer part.
    joined = (SegmentCounts(stretches=((0, 100, 1),), n_stretches=1)
              + SegmentCounts(stretches=((100, 130, 4), (200, 210, 2)), n_stretches=2))
    assert joined.stretches == ((0, 130, 1), (200, 210, 2)) and joined.n_stretches == 2
    # Two stretches of flutter kept apart by a short one of the lead's stay apart when the
    # lead's is no longer listed (the 20 longest are kept).
    from anomaly.recordings.quality import FLUTTER

    lead = tuple((10**6 + 10**4 * i, 10**6 + 10**4 * i + 5000, 1) for i in range(24))
    first = SegmentCounts(stretches=((300_000, 310_000, FLUTTER), (310_300, 310_400, 3),
                                     (310_700, 320_000, FLUTTER)), n_stretches=3, join=720)
    both = (first + SegmentCounts(stretches=lead, n_stretches=24, join=720)
            + SegmentCounts(stretches=((10**8, 10**8 + 10, 1),), n_stretches=1, join=720))
    assert both.n_stretches == 28
    assert [stretch for stretch in both.stretches if stretch[2] == FLUTTER] == [
        (300_000, 310_000, FLUTTER), (310_700, 320_000, FLUTTER)]


def test_the_unreadable_stretches_table_gives_their_time_of_day():
    """Where the recording says when it started (23:59:00), the table of unreadable
    stretches gives each its time of day beside its time from the start, as the events'
    and AF episodes' tables do: a technician checks a lead off against the patient's
    diary. Without a start, no column is made up."""
    import datetime
    import re

    from anomaly.recordings.quality import Analysable
    from anomaly.recordings.times import RecordingStart
    from anomaly.report.html import _analysable

    stretches = ((100.0, 130.0, "flat"), (400.0, 403.5, "noisy"))
    started = RecordingStart(datetime.time(23, 59), datetime.date(2026, 12, 6))
    page = _analysable(Analysable(600.0, (30.0, 0.0, 0.0, 3.5), 4, stretches, 2, started))
    assert "<th>time of day</th>" in page
    assert re.search(r"<td[^>]*>01:40</td><td[^>]*>02:10</td>"
                     r"<td[^>]*>day 2, 00:00:40 to 00:01:10</td>", page), page
    assert "day 2, 00:05:40 to 00:05:44" in page
    assert "time of day" not in _analysable(Analysable(600.0, (30.0, 0.0, 0.0, 3.5), 4,
                                                       stretches, 2))


def test_a_runs_summary_never_flags_keeps_nor_plots_an_unreadable_beat():
    """The run's metrics count a beat of an unreadable stretch as not flagged, the most
    anomalous beats and the histogram leave it out, the timeline keeps it (drawn apart)."""
    from anomaly.io.beats import Beats
    from anomaly.scoring.summary import ScoreSummary

    scores = np.array([0.1, 0.9, 0.2, 0.8, 0.05])
    unreadable = np.array(["", "flat", "", "", "noisy"], dtype=object)
    block = Beats(np.zeros((5, 3)), np.arange(1, 6), ids={"unreadable": unreadable},
                  truth=np.array([0, 1, 0, 1, 0], dtype=np.int8),
                  positions=np.arange(5) * 300)
    summary = ScoreSummary(0.5)
    summary.add("rec", block, scores, block.readable)
    assert [beat.score for beat in summary.most_anomalous()] == [0.8, 0.2, 0.1]
    histogram, truth = summary.readable_scores()
    np.testing.assert_array_equal(histogram, [0.1, 0.2, 0.8])
    np.testing.assert_array_equal(truth, [0, 0, 1])
    metrics = summary.metrics()
    assert metrics["recall"] == 0.5 and metrics["precision"] == 1.0
    assert summary.timeline("rec")[2].tolist() == [True, False, True, True, False]


def test_a_beats_files_unreadable_rows_are_never_trained_on(tmp_path):
    from anomaly.exceptions import InputError
    from anomaly.io.readers import read_normal_beats

    rows = np.random.default_rng(0).normal(size=(6, 8))
    header = "unreadable," + ",".join(f"x{i}" for i in range(8)) + "\n"
    some, every = tmp_path / "some.csv", tmp_path / "every.csv"
    for path, marks in ((some, ["", "flat", "", "", "noisy", ""]), (every, ["flat"] * 6)):
        path.write_text(header + "".join(f"{mark}," + ",".join(map(str, row)) + "\n"
                                         for mark, row in zip(marks, rows)))
    data = read_normal_beats(some)
    np.testing.assert_allclose(data.normal, rows[[0, 2, 3, 5]])
    assert data.n_read == 6 and data.skipped == "beats: 2 in unreadable stretches"
    with pytest.raises(InputError, match="every.csv: 0 of 6 rows are readable"):
        read_normal_beats(every)


def test_ventricular_flutter_is_set_aside_and_listed_as_an_event(tmp_path):
    """20 s of ventricular flutter (smooth waves at 4.5 a second, as large as the QRS
    complexes, with a little noise) in a sinus rhythm: the stretch is ventricular flutter
    or fibrillation, any of its waves read as beats set aside, and the rhythm lists it as an event
    at its times, before any other, with no ventricular run, tachycardia or pause in it,
    and not said to be near noise (its beats set aside are the heart's, not noise).
    The sinus rhythm around it is not flutter, nor the same waves a tenth as large (on a
    lead whose usual amplitude is a QRS complex's), nor a mains hum on a flat lead."""
    from anomaly.holter.analysis import ANALYSIS_WINDOW, RhythmBeats, analyse_beats
    from anomaly.holter.events import FLUTTER
    from anomaly.holter.summary import recording_rhythm
    from anomaly.recordings.filters import band_pass
    from anomaly.recordings.quality import Analysable, flutter_waves


    peaks = beat_train(90, FS)
    flutter = (40, 60)
    lead = synthetic_ecg(peaks[(peaks < flutter[0] * FS) | (peaks >= flutter[1] * FS)],
                         90 * FS, FS)
    t = np.arange((flutter[1] - flutter[0]) * FS) / FS
    rng = np.random.default_rng(2)
    lead[flutter[0] * FS:flutter[1] * FS] = (0.7 * np.sin(2 * np.pi * 4.5 * t)
                                             + rng.normal(0, 0.02, len(t)))
    base = write_wfdb(tmp_path, "flutter", lead[:, None], lead_names=("MLII",))
    read = read_recording(base, SegmentOptions(window=ANALYSIS_WINDOW))
    analysable = Analysable.of(read.counts, FS)
    [(first, end)] = analysable.flutter
    assert first <= flutter[0] + 4 and end >= flutter[1] - 4 and first >= flutter[0] - 2 \
        and end <= flutter[1] + 2, analysable.flutter
    beats = read.beats
    inside = near(beats.time_s, first, end, 0)
    assert set(beats.unreadable_reasons()[inside]) <= {FLUTTER}
    assert beats.readable[near(beats.time_s, 5, flutter[0] - 5, 0)].all()
    assert beats.readable[near(beats.time_s, flutter[1] + 5, 85, 0)].all()
    events = analyse_beats(RhythmBeats.of(beats), span_s=(0.0, 90.0),
                           flutter=analysable.flutter).events
    assert [(event.start_s, event.end_s) for event in events if event.kind == FLUTTER] \
        == [(first, end)]
    assert not [event for event in events if event.kind != FLUTTER
                and event.end_s > first and event.start_s < end]
    # Its beats set aside are not noise: the report's note says an event is near noise.
    rhythm = recording_rhythm(base, SegmentOptions(), peaks=np.empty(0, np.int64),
                              scores=np.empty(0), flagged=np.empty(0, bool), analysable_s=None)
    [event] = [event for event in rhythm.analysis.events if event.kind == FLUTTER]
    assert not rhythm.near_unreadable(event)
    assert list(rhythm.event_counts())[0] == FLUTTER

    band = band_pass(lead, FS)
    waves = band[flutter[0] * FS:flutter[1] * FS]
    assert flutter_waves(waves, FS, usual=np.ptp(band[: 30 * FS])).mean() > 0.5
    assert not flutter_waves(waves / 10, FS, usual=np.ptp(band[: 30 * FS])).any()
    hum = 0.02 * np.sin(2 * np.pi * 50 * np.arange(20 * FS) / FS)
    assert not flutter_waves(band_pass(hum, FS), FS, usual=1.0).any()


def test_mitdb_207s_ventricular_flutter_is_found_and_205s_tachycardia_is_no_flutter(mitdb):
    """MIT-BIH 207's six episodes of ventricular flutter (2.4 minutes, the only ones of the
    database) are each found, and most of their time (measured: Se 0.67 and +P 0.94 by
    duration, docs/benchmarks.md), the pauses after the longest still read; 205's
    ventricular tachycardias at up to 200 bpm (the most sine-like of the other records',
    leaking 0.55 at their least) are no flutter."""
    from anomaly.holter.episodes import DurationAgreement, EpisodeAgreement
    from anomaly.holter.reference import reference_rhythms
    from anomaly.recordings.quality import Analysable

    read = read_recording(mitdb / "207", SegmentOptions())
    flutter = [Episode("flutter", first, end)
               for first, end in Analysable.of(read.counts, read.lead.fs).flutter]
    reference = reference_rhythms(mitdb / "207")["(VFL"]
    episodes = EpisodeAgreement.of(flutter, reference)
    assert (episodes.detected, episodes.true) == (len(reference), len(flutter)) == (6, 6)
    duration = DurationAgreement.of(flutter, reference)
    assert duration.both >= 0.6 * duration.reference and duration.both >= 0.9 * duration.found
    times, readable = read.beats.time_s, read.beats.readable
    assert ((np.diff(times) >= 2.0) & readable[:-1] & readable[1:]
            & near(times[:-1], 1639.0, 1646.0, 0)).any()
    read = read_recording(mitdb / "205", SegmentOptions())
    assert Analysable.of(read.counts, read.lead.fs).flutter == ()


def test_an_asystole_whose_noise_is_about_the_quiet_limit_is_one_pause(tmp_path):
    """An 8 s asystole whose lead's noise moves about 2% of a QRS complex, the flat test's
    limit, its 1-second windows quiet and not by turns: read as one pause, its beats
    readable either side (it was read as flat, partly, with no pause: a quiet piece next
    to a moving one was taken for a lead off cut by taps)."""

    peaks = beat_train(60, FS)
    asystole = (30, 38)
    kept = (peaks < asystole[0] * FS) | (peaks >= asystole[1] * FS)
    lead = synthetic_ecg(peaks[kept], 60 * FS, FS)
    level = lead[asystole[0] * FS]
    rng = np.random.default_rng(3)
    for second in range(*asystole):
        size = 0.012 if second % 2 else 0.045  # mV peak to peak: under and over 2%
        lead[second * FS:(second + 1) * FS] = level + rng.uniform(-size / 2, size / 2, FS)
    read = read_recording(write_wfdb(tmp_path, "asystole", lead[:, None], lead_names=("MLII",)),
                          SegmentOptions())
    times, readable = read.beats.time_s, read.beats.readable
    assert readable[near(times, 20, 48, 0)].all(), read.counts.stretches
    gaps = np.diff(times) >= asystole[1] - asystole[0] - 1
    assert (gaps & readable[:-1] & readable[1:]).sum() == 1


def test_a_recording_mostly_unreadable_asks_for_the_recordings_least_beats(tmp_path):
    """A fit on a minute of noise whose beats are nearly all unreadable is refused with
    the least a recording's fit needs (30 beats), not a beats file's (2)."""
    from anomaly.exceptions import InputError
    from anomaly.recordings import MIN_RECORDING_BEATS
    from anomaly.recordings.reading import read_normal_recording_beats


    noise = np.random.default_rng(4).normal(0, 0.5, (60 * FS, 1))
    base = write_wfdb(tmp_path, "noise", noise, lead_names=("MLII",))
    with pytest.raises(InputError, match=f"are readable .the others are marked unreadable.; at "
                                         f"least {MIN_RECORDING_BEATS} are needed"):
        read_normal_recording_beats(base, SegmentOptions())


def test_a_slow_sinus_rhythms_t_and_p_waves_are_no_waves_between_beats():
    """At 28 bpm (RR intervals of 2.1 s) a tall T wave (half the R wave) ends about 0.65 s
    after its R peak (the QT interval grows with the RR interval), and a P wave, with a
    PR interval of 0.2 s, begins about 0.25 s before the next R peak: neither is waves
    between the beats (a root mean square of 0.10 of the QRS complex's between 0.45 s
    after a beat and 0.2 s before the next, 0.045 where they end; a quarter of such a
    rhythm's beats were set aside as noisy). Flutter's waves between two of them are still
    waves, judged from the slow beat's T wave's end on."""
    from anomaly.recordings.filters import band_pass

    t = np.arange(12 * FS) / FS
    peaks = (np.arange(0.5, 11.5, 2.1) * FS).astype(int)
    lead = np.zeros(len(t))
    for peak in peaks / FS:
        for offset, width, height in ((-0.18, 0.03, 0.2), (0.0, 0.012, 1.2),
                                      (0.48, 0.08, 0.6)):
            lead += height * np.exp(-0.5 * ((t - peak - offset) / width) ** 2)
    filtered = band_pass(lead, FS)
    usual = np.ptp(filtered[peaks[1] - FS // 10:peaks[1] + FS // 10])
    assert waves_between_beats(filtered, peaks, FS, usual) == []
    # Waves between two of those beats (flutter's, a fifth of the QRS) are still waves,
    # judged from the slow beat's longer T wave on.
    gap = slice(peaks[2] + int(0.7 * FS), peaks[3] - int(0.35 * FS))
    waves = filtered.copy()
    waves[gap] += 0.2 * usual * np.sin(2 * np.pi * 4 * t[gap])
    reach = int(round(0.45 * np.sqrt(2.0) * FS))  # the RR interval before, 2.1 s, capped
    assert waves_between_beats(waves, peaks, FS, usual) == [
        (int(peaks[2]) + reach, int(peaks[3]) - int(round(0.3 * FS)))]


def test_a_lead_whose_level_steps_or_drifts_is_read_but_for_the_step(tmp_path):
    """A DC-coupled recorder's lead: a step of 2 mV at 60 s, then from 120 s a drift of
    0.5 mV a minute. The band-pass takes both out and the beats read as before: only the
    beats beside the step may be set aside (against the chunk's median level, the minute
    before the step was off baseline, and most of a drifting chunk)."""

    peaks = beat_train(240, FS)
    lead = synthetic_ecg(peaks, 240 * FS, FS)
    t = np.arange(len(lead)) / FS
    lead += np.where(t >= 60, 2.0, 0.0) + np.where(t >= 120, 0.5 * (t - 120) / 60, 0.0)
    read = read_recording(write_wfdb(tmp_path, "dc", lead[:, None], lead_names=("MLII",)),
                          SegmentOptions())
    times, readable = read.beats.time_s, read.beats.readable
    assert readable[~near(times, 60, 60, 2.0)].all(), read.counts.stretches



def test_a_report_written_before_flutter_was_set_aside_still_reads():
    """A run report's recording block from before the fifth reason (no flutter among its
    unreadable seconds) reads as none of it."""
    from anomaly.recordings.quality import Analysable

    before = {"span_s": 600.0, "unreadable_s": {"flat": 3.0, "off baseline": 0.0,
                                                "clipped": 0.0, "noisy": 1.5},
              "unreadable_beats": 4, "longest_unreadable_stretches": [],
              "unreadable_stretches": 1}
    analysable = Analysable.from_json(before)
    assert analysable.unreadable_seconds == (3.0, 0.0, 0.0, 1.5, 0.0)
    assert analysable.flutter == () and analysable.seconds == 595.5


def _waves_over_sinus(tmp_path, name: str, waves):
    """What the reading sets aside of two minutes of sinus rhythm with ``waves`` (a
    function of time in seconds, mV) added from 30 to 90 s."""
    from anomaly.recordings.quality import Analysable


    peaks = beat_train(120, FS)
    lead = synthetic_ecg(peaks, 120 * FS, FS)
    t = np.arange(len(lead)) / FS
    inside = (t >= 30) & (t < 90)
    lead[inside] += waves(t[inside])
    read = read_recording(write_wfdb(tmp_path, name, lead[:, None], lead_names=("MLII",)),
                          SegmentOptions())
    return Analysable.of(read.counts, FS)


@pytest.mark.parametrize("hz", [4.0, 6.0])
def test_a_tremor_through_a_sinus_rhythm_is_no_flutter(tmp_path, hz):
    """A tremor of 4 or 6 waves a second, half as large as the QRS complexes, over a sinus
    rhythm whose QRS complexes go on through it (both detectors find them): no flutter (it
    was read as flutter for nearly all its minute). A tremor as large as the QRS
    complexes, which hides them from both detectors, still reads as flutter (README)."""
    rng = np.random.default_rng(5)
    phase = rng.uniform(0, 2 * np.pi)
    analysable = _waves_over_sinus(
        tmp_path, "tremor", lambda t: 0.35 * np.sin(2 * np.pi * hz * t + phase))
    assert analysable.flutter == ()


def test_an_atrial_flutters_round_f_waves_are_no_ventricular_flutter(tmp_path):
    """Atrial flutter's F waves, rounded (as in lead II), 300 a minute and 0.6 mV peak to
    peak, between QRS complexes of a regular ventricular response: atrial, not ventricular
    flutter (it was read as ventricular flutter throughout)."""
    analysable = _waves_over_sinus(
        tmp_path, "atrial", lambda t: 0.3 * np.sin(2 * np.pi * 5.0 * t))
    assert analysable.flutter == ()


def test_flutter_across_a_chunks_border_is_read_as_in_one_chunk(tmp_path):
    """Flutter from 25 to 45 s, read in 30 s chunks (its border at 30 s) and in one: the
    same stretch."""
    from anomaly.recordings.quality import Analysable


    peaks = beat_train(70, FS)
    lead = synthetic_ecg(peaks[(peaks < 25 * FS) | (peaks >= 45 * FS)], 70 * FS, FS)
    t = np.arange(20 * FS) / FS
    lead[25 * FS:45 * FS] = 0.7 * np.sin(2 * np.pi * 4.5 * t)
    base = write_wfdb(tmp_path, "border", lead[:, None], lead_names=("MLII",))
    found = [Analysable.of(read_recording(base, SegmentOptions(chunk_seconds=chunk)).counts,
                           FS).flutter for chunk in (30, 300)]
    assert found[0] == found[1] and len(found[0]) == 1, found


def test_a_detection_no_detector_sees_on_another_lead_that_follows_the_rhythm_is_no_beat():
    """:func:`unseen_elsewhere` at 100 Hz: beats a second apart, the second detector
    confirming all but the one at 6 s; another lead (its beats) denies it only where it
    follows the rhythm about it (of the confirmed beats within 3 s, 3 or more, 80%)."""
    from anomaly.recordings.quality import unseen_elsewhere

    peaks = np.arange(1, 12) * 100
    other = peaks[peaks != 600]
    follows = other + 3  # Every beat but the one at 6 s, a few samples off.
    asked = []

    def denied(*leads, second=other, n_samples=1200):
        asked.clear()
        opinions = lambda: asked.append(True) or leads  # noqa: E731
        return np.flatnonzero(unseen_elsewhere(peaks, second, opinions, 100.0, n_samples))

    assert denied().size == 0  # No other lead: nothing to say.
    np.testing.assert_array_equal(denied(follows), [5])
    # It shows on the other lead: a beat (an ectopic beat the second detector missed).
    assert denied(peaks).size == 0
    # A lead that misses the beats about it (off, or its complexes too small) says
    # nothing, and one lead's QRS complex at it is enough, whatever another lead says.
    assert denied(np.array([100, 1100])).size == 0
    assert denied(follows, peaks).size == 0
    # Of the 6 confirmed beats within 3 s, finding 5 (83%) is following; 4 (67%) is not.
    np.testing.assert_array_equal(denied(follows[follows != 303]), [5])
    assert denied(follows[~np.isin(follows, [303, 903])]).size == 0
    # Too few beats the second detector confirms within 3 s to tell whether a lead follows.
    assert denied(follows, second=np.array([100, 500, 700, 1100])).size == 0
    # A detection the second detector confirms is not judged here (the noise windows
    # are), nor one within 2 s of the chunk's ends, where the detectors settle; then the
    # other leads' detectors are not even run.
    assert denied(follows, second=peaks).size == 0 and not asked
    assert denied(follows, n_samples=750).size == 0 and not asked


def test_a_spike_only_one_lead_shows_is_no_beat_where_the_other_lead_reads_the_beats(
        mitdb, tmp_path):
    """MIT-BIH 228 at 6:03.0: a small wave in the long interval before one of its PVCs,
    0.50 s after the beat before it, which the tool's detector takes for a beat and the
    second detector misses; lead V1 reads every beat about it and shows nothing there.
    Read with V1 it is no beat, and the beats either side keep their RR intervals,
    readable; the same 140 s of MLII written alone (a one-lead recording, as a live
    stream is) reads it as a beat, as the tool did before it looked at other leads (from
    4:40, where the tool's detector finds it). Every other beat is found alike, and
    read."""
    import wfdb

    span = dict(sampfrom=280 * FS, sampto=420 * FS)
    both = wfdb.rdrecord(str(mitdb / "228"), **span)
    annotation = wfdb.rdann(str(mitdb / "228"), "atr", shift_samps=True, **span)
    read = {}
    for name, signals, leads in (("both", both.p_signal, both.sig_name),
                                 ("alone", both.p_signal[:, :1], both.sig_name[:1])):
        write_wfdb(tmp_path, name, signals, fmt="16", lead_names=leads)
        wfdb.wrann(name, "atr", annotation.sample, symbol=annotation.symbol,
                   write_dir=str(tmp_path))
        read[name] = read_recording(tmp_path / name, SegmentOptions(annotations="atr")).beats
    spike = np.abs(read["alone"].time_s - 82.98) < 0.05
    assert spike.sum() == 1 and read["alone"].labels[spike][0] == UNMATCHED
    np.testing.assert_array_equal(read["both"].sample, read["alone"].sample[~spike])
    both = read["both"]
    assert both.readable.all() and read["alone"].readable.all()
    after = np.searchsorted(both.time_s, 82.98)  # The beat after the spike, and before:
    assert both.rr_next[after - 1] == both.rr_prev[after] > 0.9


def write_signal_csv(path, signals, names) -> None:
    """A signal CSV as PhysioNet's ``rdsamp -p -v`` writes one: seconds, then mV."""
    times = np.arange(len(signals)) / FS
    np.savetxt(path, np.column_stack([times, signals]), delimiter=",", fmt="%.5f",
               header=",".join(["time", *names]), comments="")


def test_a_signal_csv_s_other_lead_checks_its_beats(mitdb, tmp_path, capsys):
    """The spike of 228 at 6:03.0 (above) in a signal CSV of MLII and V1: no beat, as in
    the WFDB record. Where V1 has a cell it cannot read, V1 checks nothing and is not
    said to, said once (not as a signal that ends early, chunk after chunk), and the
    beats are those of MLII alone."""
    import wfdb

    from conftest import run_cli
    from anomaly.recordings.signals import open_lead, open_other_leads

    signal = wfdb.rdrecord(str(mitdb / "228"), sampfrom=280 * FS, sampto=420 * FS).p_signal
    write_signal_csv(tmp_path / "both.csv", signal, ["MLII", "V1"])
    write_signal_csv(tmp_path / "alone.csv", signal[:, :1], ["MLII"])
    lead = open_lead(tmp_path / "both.csv")
    (other,) = open_other_leads(lead)
    assert (other.name, other.fs, other.n_samples) == ("V1", lead.fs, lead.n_samples)
    np.testing.assert_allclose(other.read(1000, 1010), signal[1000:1010, 1], atol=1e-5)
    beats = {name: read_recording(tmp_path / f"{name}.csv", SegmentOptions()).beats
             for name in ("both", "alone")}
    spike = np.abs(beats["alone"].time_s - 82.98) < 0.05
    assert spike.sum() == 1
    np.testing.assert_array_equal(beats["both"].sample, beats["alone"].sample[~spike])
    code, out, err = run_cli(capsys, "beats", tmp_path / "both.csv", "-o", tmp_path / "b.csv")
    assert code == 0 and "lead MLII (of MLII, V1; beats checked on V1)" in out, err

    lines = (tmp_path / "both.csv").read_text().splitlines(keepends=True)
    lines[100 * FS] = lines[100 * FS].rsplit(",", 1)[0] + ",\n"  # V1 empty at 99.997 s.
    (tmp_path / "gap.csv").write_text("".join(lines))
    code, out, err = run_cli(capsys, "beats", tmp_path / "gap.csv", "-o", tmp_path / "g.csv")
    assert code == 0 and "lead MLII (of MLII, V1);" in out, err
    assert err.count("lead V1 does not check the beats of lead MLII: line 36,001 has no "
                     "number in column 'V1'") == 1, err
    gap = read_recording(tmp_path / "gap.csv", SegmentOptions()).beats
    np.testing.assert_array_equal(gap.sample, beats["alone"].sample)
    # In chunks of 20 s, likewise.
    (tmp_path / "chunked.csv").write_text("".join(lines))  # A new name: said anew.
    capsys.readouterr()
    chunked = read_recording(tmp_path / "chunked.csv", SegmentOptions(chunk_seconds=20)).beats
    err = capsys.readouterr().err
    assert err.count("lead V1 does not check the beats of lead MLII") == 1, err
    assert "shortened while it was read" not in err and len(chunked.sample) > 100


def test_another_lead_off_or_of_another_kind_confirms_no_beat(mitdb, tmp_path):
    """228 from 4:40 to 7:00 with its second lead flat (an electrode off throughout), or
    named as what is not ECG (a respiration signal follows the heart too, not its QRS
    complexes' instants): the spike at 6:03.0 is read as a beat, as on MLII alone. Of
    many leads, the first two others that are ECG leads by name and unit check the
    beats."""
    import wfdb

    from anomaly.recordings.signals import open_lead, open_other_leads

    signal = wfdb.rdrecord(str(mitdb / "228"), sampfrom=280 * FS, sampto=420 * FS).p_signal
    flat = signal.copy()
    flat[:, 1] = 0.0
    for name, signals, leads in (("flat", flat, ["MLII", "V1"]),
                                 ("resp", signal, ["MLII", "RESP"])):
        beats = read_recording(write_wfdb(tmp_path, name, signals, fmt="16", lead_names=leads),
                               SegmentOptions()).beats
        assert (np.abs(beats.time_s - 82.98) < 0.05).sum() == 1, name
    assert open_other_leads(open_lead(tmp_path / "resp")) == ()
    assert [lead.name for lead in open_other_leads(open_lead(tmp_path / "flat"))] == ["V1"]
    # A monitor's channels named for the ECG but not leads (a heart rate, a status) are
    # passed over, and a lead in mmHg.
    leads = ["MLII", "RESP", "ECG HR", "ECG Status", "V5", "V4", "V1", "V2"]
    units = ["mV", "mV", "mV", "mV", "mV", "mmHg", "mV", "mV"]
    wfdb.wrsamp("many", fs=FS, units=units, sig_name=leads, fmt=["16"] * 8,
                p_signal=np.tile(signal[:FS * 10, :1], 8), write_dir=str(tmp_path))
    assert [lead.name for lead in open_other_leads(open_lead(tmp_path / "many"))] == \
        ["V5", "V1"]


def test_another_lead_that_cannot_be_read_checks_nothing_and_fails_nothing(tmp_path, capsys):
    """A lead the user did not ask for never fails a run: an EDF whose V1 header field is
    out of range (edfio raised a ValueError, an internal error), or a WFDB record whose V1
    holds one value no ECG holds (the run was refused). Each is said once, and the beats
    are those of the lead alone."""
    import edfio
    import wfdb

    from conftest import run_cli
    from test_recordings import beat_train, synthetic_ecg

    peaks = beat_train(60)
    lead = synthetic_ecg(peaks, 60 * FS)
    alone = read_recording(write_wfdb(tmp_path, "alone", lead[:, None], fmt="16",
                                      lead_names=("MLII",)), SegmentOptions()).beats
    other = -0.5 * lead
    other[30 * FS] = 2e9
    wfdb.wrsamp("spot", fs=FS, units=["mV", "mV"], sig_name=["MLII", "V1"],
                fmt=["32", "32"], adc_gain=[1000.0, 1.0], baseline=[0, 0],
                p_signal=np.column_stack([lead, other]), write_dir=str(tmp_path))
    edf = tmp_path / "bad.edf"
    edfio.Edf([edfio.EdfSignal(lead, FS, label="ECG MLII", physical_range=(-5, 5)),
               edfio.EdfSignal(other.clip(-5, 5), FS, label="ECG V1",
                               physical_range=(-5, 5))]).write(edf)
    header = bytearray(edf.read_bytes())
    field = 256 + 2 * (16 + 80 + 8 + 8) + 8  # The second signal's physical maximum.
    header[field:field + 8] = b"inf     "
    edf.write_bytes(bytes(header))
    for path, says in ((tmp_path / "spot", "lead V1 does not check the beats of lead MLII: "
                        "lead V1 holds 2e+09 at sample 10800"),
                       (edf, "lead ECG V1 does not check the beats of lead ECG MLII: ")):
        code, out, err = run_cli(capsys, "beats", path, "-o", tmp_path / f"{path.stem}.csv")
        assert code == 0, err
        assert err.count(says) == 1, err
        beats = read_recording(path, SegmentOptions()).beats
        np.testing.assert_array_equal(beats.sample, alone.sample)
