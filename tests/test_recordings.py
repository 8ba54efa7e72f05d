"""Recordings: WFDB (formats 212 and 16), EDF and signal CSV written here, read, cut into
beats at the right samples, labelled from annotations, streamed in chunks as a whole read
would, and every bad input refused in one line with nothing written."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from anomaly.recordings.annotations import AAMI_CLASSES, UNMATCHED
from anomaly.recordings.reading import read_recording
from anomaly.recordings.segment import BeatWindow, SegmentOptions
from anomaly.recordings.signals import open_lead
from anomaly.recordings.times import format_duration, format_time, parse_time
from conftest import assert_images_render_in_browser, read_rows, recording_model, run_cli

FS = 360
#: R peaks of the synthetic recordings may be found this far from where they were put.
TOLERANCE = int(0.02 * FS)


def beat_train(duration: float, fs: int = FS, seed: int = 0) -> np.ndarray:
    """R-peak samples of a heart beating at 60-90 bpm, from 1 s to ``duration`` - 1 s."""
    rng = np.random.default_rng(seed)
    peaks, t = [], 1.0
    while t < duration - 1.0:
        peaks.append(int(round(t * fs)))
        t += rng.uniform(0.67, 1.0)
    return np.array(peaks)


def synthetic_ecg(peaks: np.ndarray, n: int, fs: int = FS, seed: int = 0,
                  s_waves: np.ndarray | None = None) -> np.ndarray:
    """Millivolts: P, QRS and T waves (Gaussians) around each peak, baseline wander, noise.
    ``s_waves``: each beat's S wave (mV; -0.25 unless given)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fs
    signal = 0.15 * np.sin(2 * np.pi * 0.2 * t) + rng.normal(0, 0.01, n)
    s_waves = np.full(len(peaks), -0.25) if s_waves is None else s_waves
    for peak, s_wave in zip(peaks, s_waves):
        centre = peak / fs
        for offset, width, height in ((-0.2, 0.025, 0.15), (-0.03, 0.008, -0.15),
                                      (0.0, 0.01, 1.2), (0.03, 0.008, s_wave),
                                      (0.28, 0.05, 0.3)):
            signal += height * np.exp(-0.5 * ((t - centre - offset) / width) ** 2)
    return signal


def write_wfdb(directory: Path, name: str, signals: np.ndarray, fmt: str = "212",
               lead_names=("MLII", "V1"), fs: int = FS) -> Path:
    import wfdb

    wfdb.wrsamp(name, fs=fs, units=["mV"] * signals.shape[1], sig_name=list(lead_names),
                p_signal=signals, fmt=[fmt] * signals.shape[1], write_dir=str(directory))
    return directory / name


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """A two-lead, two-minute WFDB record (format 212) whose R peaks are known, with a
    reference annotation file: every fifth beat a V, one an A, the others N."""
    import wfdb

    directory = tmp_path_factory.mktemp("recording")
    duration = 120
    peaks = beat_train(duration)
    n = duration * FS
    lead = synthetic_ecg(peaks, n)
    base = write_wfdb(directory, "rec", np.column_stack([lead, -0.5 * lead]))
    symbols = ["V" if i % 5 == 4 else "N" for i in range(len(peaks))]
    symbols[7] = "A"
    wfdb.wrann("rec", "atr", np.array(peaks), symbol=symbols + [], write_dir=str(directory))
    return base, peaks, symbols


def test_times_parse_as_seconds_and_clock():
    assert parse_time("90") == 90
    assert parse_time("90.5") == 90.5
    assert parse_time("5:00") == 300
    assert parse_time("1:02:03.5") == 3723.5
    assert format_time(3723.5) == "1:02:04"
    assert format_time(300) == "05:00"
    # A duration in a sentence is said in words, not as a clock.
    assert [format_duration(s) for s in (26.4, 60, 1479, 7500)] == \
        ["26 s", "1 min 00 s", "24 min 39 s", "2 h 05 min"]
    assert parse_time("1e3") == 1000 and parse_time(".5") == 0.5
    # Digits 0 to 9 only: float() would read these as 10 and 20.
    for bad in ("", "abc", "-1", "1:60", "1:2:3:4", "inf", "nan", "1_0", "\u0661\u0660",
                "\uff12\uff10", "+5", "0x10", "9" * 5000, "1:" + "0" * 5000):
        with pytest.raises(ValueError, match="not a time"):
            parse_time(bad)


def test_beats_are_cut_at_the_known_r_peaks(recording):
    base, peaks, _ = recording
    read = read_recording(base, SegmentOptions())
    found = read.beats.sample
    assert read.lead.name == "MLII" and read.lead.fs == FS
    # Every beat whose window fits is found, each within 20 ms of where it was put.
    nearest = np.abs(found[:, None] - peaks[None, :]).min(axis=1)
    assert nearest.max() <= TOLERANCE
    assert len(found) + read.counts.dropped_at_edges == len(peaks)
    assert read.beats.values.shape == (len(found), 140)
    np.testing.assert_allclose(read.beats.values.mean(axis=1), 0, atol=1e-9)
    np.testing.assert_allclose(read.beats.values.std(axis=1), 1, atol=1e-9)
    # The peak sits at the window's 0.25 / 0.70 point, as in every beat.
    assert abs(int(np.median(read.beats.values.argmax(axis=1))) - round(140 * 0.25 / 0.7)) <= 2
    # RR context: previous and next intervals, and their local mean.
    np.testing.assert_allclose(read.beats.rr_prev[1:], np.diff(found) / FS, atol=TOLERANCE / FS)
    np.testing.assert_allclose(read.beats.rr_next[:-1], np.diff(found) / FS, atol=TOLERANCE / FS)
    assert np.isnan(read.beats.rr_next[-1])
    assert np.all((read.beats.rr_local_mean[1:] > 0.6) & (read.beats.rr_local_mean[1:] < 1.05))


@pytest.fixture(scope="module")
def flipping(tmp_path_factory):
    """A one-lead, two-minute WFDB record of one beat shape whose S wave (-1.1 mV, less
    than its 1.2 mV R wave) grows past the R wave (-1.3 mV) after the first minute, as
    MIT-BIH 117's does: the R peak, the largest magnitude, moves 30 ms on to the S wave."""
    directory = tmp_path_factory.mktemp("flipping")
    peaks = beat_train(120, seed=3)
    lead = synthetic_ecg(peaks, 120 * FS, seed=3,
                         s_waves=np.where(peaks < 60 * FS, -1.1, -1.3))
    return write_wfdb(directory, "flip", lead[:, None], lead_names=("MLII",)), peaks


def test_a_beats_window_is_centred_on_the_wave_that_matches_the_dominant_beat(flipping):
    from anomaly.recordings.alignment import aligned_centres, template_at
    from anomaly.recordings.filters import band_pass
    from anomaly.recordings.patient import correlation

    base, peaks = flipping
    plain = read_recording(base, SegmentOptions()).beats
    later = plain.sample >= 60 * FS
    # The R peak moves on to the S wave where it is the larger.
    assert np.all(np.abs(plain.sample[~later] - peaks[np.searchsorted(peaks, plain.sample[~later]
                                                                      - TOLERANCE)]) <= 3)
    template = np.median(plain.values[~later], axis=0)
    assert np.median(correlation(plain.values[later], template)) < 0.8
    aligned = read_recording(base, SegmentOptions(window=BeatWindow().aligned_on(template)))
    np.testing.assert_array_equal(aligned.beats.sample, plain.sample)  # Times stay.
    assert correlation(aligned.beats.values, template).min() > 0.97
    # Each later window is centred back on the R wave, 30 ms before the S wave.
    lead = open_lead(base, lead=None)
    filtered = band_pass(lead.read(0, lead.n_samples), FS)
    before, after = BeatWindow().samples_at(FS, "flip")
    at_lead = template_at(template, before, after)
    shift = aligned_centres(filtered, plain.sample, at_lead, before, FS) - plain.sample
    assert np.all(shift[~later] == 0)
    assert np.all(np.abs(shift[later] + round(0.03 * FS)) <= 2)
    # A window that would run off the lead read is not moved there (the first later beat,
    # read from 5 samples before its own window); the model's template at its own length
    # is refused.
    start = plain.sample[later][0] - before - 5
    assert aligned_centres(filtered[start:], [before + 5], at_lead, before, FS) == [before + 5]
    with pytest.raises(ValueError, match="a template of 140 samples has no sample 250"):
        aligned_centres(filtered, plain.sample, template, 250, FS)


@pytest.mark.parametrize("fs", [128, 500, 1000])
def test_beats_are_aligned_on_the_dominant_beat_at_any_sampling_rate(tmp_path, fs):
    """The record whose S wave outgrows its R wave, at other rates than MIT-BIH's: cut
    around their R peaks the later beats are unlike the first minute's, aligned alike."""
    from anomaly.recordings.patient import correlation

    peaks = beat_train(120, fs=fs, seed=3)
    lead = synthetic_ecg(peaks, 120 * fs, fs=fs, seed=3,
                         s_waves=np.where(peaks < 60 * fs, -1.1, -1.3))
    base = write_wfdb(tmp_path, "flip", lead[:, None], lead_names=("MLII",), fs=fs)
    plain = read_recording(base, SegmentOptions()).beats
    later = plain.sample >= 60 * fs
    template = np.median(plain.values[~later], axis=0)
    assert np.median(correlation(plain.values[later], template)) < 0.5
    aligned = read_recording(base, SegmentOptions(window=BeatWindow().aligned_on(template)))
    assert correlation(aligned.beats.values, template).min() > 0.97


def test_a_recordings_training_beats_are_aligned_on_the_dominant_beat(flipping):
    """Fitted on the whole record, the dominant beat is the first minute's or the later
    one's, and the training beats of both are cut alike, centred on it."""
    from anomaly.recordings.patient import correlation
    from anomaly.recordings.reading import read_normal_recording_beats

    base, _ = flipping
    data, read = read_normal_recording_beats(base, SegmentOptions())
    template = np.array(read.window.template)
    assert len(data.normal) > 0.7 * len(read.beats)
    assert correlation(data.normal, template).min() > 0.97
    # Cut around their R peaks, a minute's beats are unlike it.
    plain = read_recording(base, SegmentOptions()).beats
    assert np.mean(correlation(plain.values, template) < 0.8) > 0.3


def test_a_model_aligns_only_the_beats_of_the_lead_its_dominant_beat_is_of(tmp_path):
    """A model fitted on MLII scoring lead V1 (of the same shape here, so that aligning
    it would move its windows): V1's beats are cut around their R peaks, not centred on
    MLII's dominant beat; MLII's, asked by name or by index, are aligned."""
    from anomaly.scoring.base import ModelLimits
    from anomaly.scoring.plan import ScoreOptions
    from anomaly.scoring.sources import recording_segment

    peaks = beat_train(120, seed=3)
    lead = synthetic_ecg(peaks, 120 * FS, seed=3, s_waves=np.where(peaks < 60 * FS, -1.1, -1.3))
    base = write_wfdb(tmp_path, "two", np.column_stack([lead, lead]), lead_names=("MLII", "V1"))
    plain = read_recording(base, SegmentOptions()).beats
    window = BeatWindow().aligned_on(np.median(plain.values[plain.sample < 60 * FS], axis=0))
    aligned = read_recording(base, SegmentOptions(window=window)).beats
    assert not np.allclose(aligned.values, plain.values)  # The case: aligning moves windows.
    limits = ModelLimits(140, (-10.0, 10.0), window, "MLII")
    for asked, expected in (("V1", plain), ("1", plain), ("MLII", aligned), ("0", aligned),
                            (None, aligned)):
        segment = recording_segment(ScoreOptions(segment=SegmentOptions(lead=asked)), limits)
        beats = read_recording(base, segment).beats
        np.testing.assert_array_equal(beats.sample, expected.sample)
        np.testing.assert_allclose(beats.values, expected.values, err_msg=str(asked))
    # A model fitted, before leads were told apart, on the lead named 1 (now 1#0): that
    # lead is read, aligned, not the lead at index 1.
    numbered = write_wfdb(tmp_path, "numbered", np.column_stack([lead, -lead]),
                          lead_names=("1", "0"))
    old = ModelLimits(140, (-10.0, 10.0), window, "1")
    beats = read_recording(numbered, recording_segment(ScoreOptions(), old)).beats
    np.testing.assert_allclose(beats.values, aligned.values)


def test_a_live_stream_cuts_the_windows_the_recorded_file_gives(flipping):
    """The same beats, windows and RR context, streamed in quarter seconds through a
    model's aligned window as read from the file."""
    from anomaly.recordings.live import LiveSegmenter

    base, _ = flipping
    plain = read_recording(base, SegmentOptions()).beats
    window = BeatWindow().aligned_on(np.median(plain.values[plain.sample < 60 * FS], axis=0))
    expected = read_recording(base, SegmentOptions(window=window)).beats
    lead = open_lead(base, lead=None)
    samples = lead.read(0, lead.n_samples)
    live = LiveSegmenter(FS, window)
    steps = [step for first in range(0, len(samples), FS // 4)
             for step in live.feed(samples[first:first + FS // 4])] + [live.end()]
    final = [step.final.beats for step in steps if step.final.beats is not None]
    np.testing.assert_array_equal(np.concatenate([b.sample for b in final]), expected.sample)
    np.testing.assert_allclose(np.concatenate([b.values for b in final]), expected.values,
                               atol=1e-6)


def test_a_recordings_model_keeps_its_dominant_beat_and_scores_beats_aligned_on_it(
        flipping, in_tmp, capsys):
    """Fitted on the first minute, the model scores the later beats, of the same shape but
    whose R peak moved, as it scores the first minute's; without the template it kept (as
    a model fitted before beats were aligned) it scores them far higher."""
    import json

    base, _ = flipping
    code, _, err = run_cli(capsys, "fit", base, "--to", "1:00", "-m", "m", "--epochs", "100",
                           "-q")
    assert code == 0, err
    metadata = json.loads(Path("m/metadata.json").read_text())
    assert len(metadata["provenance"]["recording"]["beat_window"]["template"]) == 140

    def scores(output: str) -> tuple[float, float, int]:
        """Median score of the first minute's beats and of the later ones, and how many
        later ones are flagged."""
        assert run_cli(capsys, "score", base, "-m", "m", "-o", output, "-q")[0] in (0, 1)
        with open(output, newline="") as file:
            rows = list(csv.DictReader(file))
        later = np.array([float(row["time_s"]) >= 60 for row in rows])
        score = np.array([float(row["score"]) for row in rows])
        flagged = np.array([row["is_anomaly"] == "1" for row in rows])
        return np.median(score[~later]), np.median(score[later]), int(flagged[later].sum())

    first, later, flagged = scores("s.csv")
    assert later < 1.15 * first
    del metadata["provenance"]["recording"]["beat_window"]["template"]
    Path("m/metadata.json").write_text(json.dumps(metadata))
    first_unaligned, later_unaligned, flagged_unaligned = scores("unaligned.csv")
    assert first_unaligned == pytest.approx(first)
    assert later_unaligned > 1.5 * first and flagged_unaligned > 2 * flagged


def test_kept_amplitudes_are_millivolts(recording):
    base, _, _ = recording
    window = BeatWindow(before=0.2, after=0.4, samples=100, keep_amplitude=True)
    beats = read_recording(base, SegmentOptions(window=window)).beats
    assert beats.values.shape[1] == 100
    assert 0.9 < np.median(beats.values.max(axis=1)) < 1.5  # the R wave's 1.2 mV


def test_formats_212_and_16_edf_and_signal_csv_give_the_same_beats(recording, tmp_path):
    import edfio

    base, peaks, _ = recording
    reference = read_recording(base, SegmentOptions()).beats
    lead = open_lead(base).read(0, 120 * FS)

    format16 = write_wfdb(tmp_path, "rec16", lead[:, None], fmt="16", lead_names=("MLII",))
    edf = tmp_path / "rec.edf"
    edfio.Edf([edfio.EdfSignal(np.zeros(120 * FS), FS, label="V1"),
               edfio.EdfSignal(lead, FS, label="MLII", physical_range=(-5, 5))]).write(edf)
    with_time = tmp_path / "with_time.csv"
    without_time = tmp_path / "without_time.csv"
    samples = np.arange(len(lead))
    with open(with_time, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["time", "MLII"])
        writer.writerows(zip((samples / FS).round(6), lead))
    with open(without_time, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["V1", "MLII"])
        writer.writerow(["-", "'(mV)'"])  # A units row, as PhysioNet exports write one.
        writer.writerows(zip(np.zeros(len(lead)), lead))

    for path, options in ((format16, SegmentOptions()), (edf, SegmentOptions()),
                          (with_time, SegmentOptions()), (without_time, SegmentOptions(fs=FS))):
        beats = read_recording(path, options).beats
        assert np.array_equal(beats.sample, reference.sample), path
        # 212 stores 12 bits, EDF 16 bits over +-5 mV: the same beats within quantisation.
        np.testing.assert_allclose(beats.values, reference.values, atol=0.05)


@pytest.mark.parametrize(("header", "per_second"),
                         [("Time (s)", 1.0), ("time [ms]", 1000.0), ("time_ms", 1000.0),
                          ("Elapsed time", 1.0)])
def test_a_time_column_named_with_its_unit_gives_the_rate(recording, tmp_path, header,
                                                          per_second):
    """A time column named as exports name it, with its unit: read at its rate (no --fs),
    the same beats as the WFDB record. 'Time (s)' was not taken for one: the file was
    refused for want of --fs, and with it its time was read as the lead."""
    base, _, _ = recording
    reference = read_recording(base, SegmentOptions()).beats
    lead = open_lead(base).read(0, 120 * FS)
    path = tmp_path / "timed.csv"
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([header, "ECG"])
        writer.writerows(zip((np.arange(len(lead)) / FS * per_second).round(6), lead))
    beats = read_recording(path, SegmentOptions()).beats
    assert open_lead(path).fs == pytest.approx(FS) and open_lead(path).name == "ECG"
    np.testing.assert_array_equal(beats.sample, reference.sample)


def test_streaming_in_chunks_gives_the_beats_of_a_whole_read(recording):
    base, _, _ = recording
    whole = read_recording(base, SegmentOptions(chunk_seconds=1e6)).beats
    for chunk_seconds in (7.0, 30.0, 61.3):
        chunked = read_recording(base, SegmentOptions(chunk_seconds=chunk_seconds)).beats
        assert np.array_equal(chunked.sample, whole.sample)
        assert np.array_equal(chunked.beat, whole.beat)
        np.testing.assert_allclose(chunked.values, whole.values, atol=1e-6)
        for name in ("rr_prev", "rr_next", "rr_local_mean"):
            np.testing.assert_array_equal(getattr(chunked, name), getattr(whole, name))


def test_each_chunk_counts_its_own_beats_and_the_counts_add_up(recording):
    from anomaly.recordings.reading import segmenter_for
    from anomaly.recordings.segment import SegmentCounts
    from anomaly.scoring.plan import ScoreOptions
    from anomaly.scoring.sources import RecordingSource

    base, peaks, _ = recording
    whole = read_recording(base, SegmentOptions())
    chunks = list(segmenter_for(base, SegmentOptions(chunk_seconds=30.0)).chunks())
    assert len(chunks) >= 4  # 120 s in chunks of 30 s
    for chunk in chunks:
        assert chunk.counts.beats == (0 if chunk.beats is None else len(chunk.beats))
    positions = [chunk.counts.position for chunk in chunks]
    assert positions == sorted(positions) and positions[-1] == 120 * FS
    total = sum((chunk.counts for chunk in chunks), SegmentCounts())
    assert (total.beats, total.dropped_at_edges) == (whole.counts.beats,
                                                     whole.counts.dropped_at_edges)
    assert total.beats + total.dropped_at_edges == len(peaks)
    # Each chunk is read with its padding: more samples than the recording holds.
    assert total.samples_read > 120 * FS
    # A recording source reports its progress from the chunks' positions.
    with RecordingSource(str(base), ScoreOptions()) as source:
        assert source.progress() == (0, 120 * FS)
        blocks = list(source.blocks())
        assert source.progress() == (120 * FS, 120 * FS)
    assert sum(len(block) for block in blocks) == whole.counts.beats


def test_span_keeps_the_beats_whose_peak_is_inside_with_their_context(recording):
    base, _, _ = recording
    whole = read_recording(base, SegmentOptions()).beats
    part = read_recording(base, SegmentOptions(start=30, stop=60)).beats
    inside = (whole.sample >= 30 * FS) & (whole.sample < 60 * FS)
    assert np.array_equal(part.sample, whole.sample[inside])
    assert part.beat[0] == 1
    # The first beat's previous interval comes from the peak before --from.
    np.testing.assert_array_equal(part.rr_prev, whole.rr_prev[inside])
    np.testing.assert_array_equal(part.rr_next, whole.rr_next[inside])


def test_annotations_label_beats_with_aami_classes(recording):
    base, peaks, symbols = recording
    beats = read_recording(base, SegmentOptions(annotations="atr")).beats
    expected = {peak: AAMI_CLASSES[symbol] for peak, symbol in zip(peaks, symbols)}
    for sample, label in zip(beats.sample, beats.labels):
        nearest = peaks[np.abs(peaks - sample).argmin()]
        assert label == expected[nearest]
    assert set(beats.labels) == {"N", "V", "S"}
    assert UNMATCHED not in set(beats.labels)


def test_lead_by_name_index_and_default(recording, tmp_path):
    base, _, _ = recording
    assert open_lead(base).name == "MLII"
    assert open_lead(base, lead="V1").name == "V1"
    assert open_lead(base, lead="1").name == "V1"
    lead = open_lead(base).read(0, 10 * FS)
    second = write_wfdb(tmp_path, "second", np.column_stack([lead, lead]),
                        lead_names=("V5", "MLII"))
    assert open_lead(second).name == "MLII"  # as on MIT-BIH record 114
    no_mlii = write_wfdb(tmp_path, "nomlii", np.column_stack([lead, lead]),
                         lead_names=("V5", "V2"))
    assert open_lead(no_mlii).name == "V5"


@pytest.mark.parametrize("names, units, chosen", [
    # MIT-BIH as before: MLII wherever it is, else the first lead.
    (["MLII", "V1"], None, "MLII"), (["V5", "MLII"], None, "MLII"), (["V5", "V2"], None, "V5"),
    # Lead II, however spelled, before the leads listed ahead of it.
    (["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"], None, "II"),
    (["ECG I", "EKG-II"], None, "EKG-II"), (["Lead I", "Lead II"], None, "Lead II"),
    (["V1", "ML2"], None, "ML2"), (["DI", "DII", "DIII"], None, "DII"), (["D1", "D2"], None, "D2"),
    # Named as an ECG lead, after signals that may be anything.
    (["X1", "ECG"], None, "ECG"), (["signal", "MV5"], None, "MV5"), (["sig0", "LA-RA"], None, "LA-RA"),
    (["ECG1", "ECG2"], None, "ECG1"), (["MLIII", "V4"], None, "MLIII"), (["CM5", "CC5"], None, "CM5"),
    # Never a signal named as another, nor one in a unit that is not a voltage.
    (["RESP", "ABP", "PLETH", "II", "V"], ["pm", "mmHg", "NU", "mV", "mV"], "II"),
    (["EEG Fpz-Cz", "EOG horizontal", "EMG submental", "ECG"], ["uV"] * 4, "ECG"),
    (["C3-M2", "E1-M2", "Chin1-Chin2", "X1"], ["uV"] * 4, "X1"),
    (["LOC-A2", "ROC-A1", "LLeg", "DX1-DX2", "Effort THO", "etCO2", "%SpO2", "X1"], None, "X1"),
    (["ECG HR", "ECG"], ["bpm", "mV"], "ECG"), (["EOG", "ECG Status", "ECG SQI", "ECG"], None, "ECG"),
    (["EKG Rate", "ECG Lead Off", "EKG"], None, "EKG"), (["SaO2", "H.R.", "ECG"], ["%", "bpm", "mV"], "ECG"),
    (["value", "x"], ["mmHg", "mV"], "x"),
    # A raw unit leaves the choice to the name: the ECG in adu is read.
    (["EOG", "ECG"], ["uV", "adu"], "ECG"), (["ECG"], ["counts"], "ECG"),
    (["CH1", "CH2"], ["microvolts"] * 2, "CH1"),
    # A word that is not a lead's name is no reason to pass a lead by.
    (["ECG II (paced)", "ECG I"], None, "ECG II (paced)"), (["II paced"], None, "II paced"),
    (["Separate II", "V1"], None, "Separate II"), (["EOG", "Chest lead V1"], None, "Chest lead V1"),
    (["EMG", "Local ECG"], None, "Local ECG"), (["ECG_equal"], None, "ECG_equal"),
    (["EKGRate", "ECG"], None, "ECG"), (["ECG Pacer", "ECG"], None, "ECG"),
    # Compatibility forms: a Roman numeral, full-width letters; a dotless i is no I.
    (["ECG \u2160", "ECG \u2161"], None, "ECG \u2161"), (["V1", "\uff29\uff29"], None, "\uff29\uff29"),
    (["V1", "\u0131\u0131"], None, "V1"),
    # A monitor's ST trend is not lead II; a muscle lead's numeral is not a limb lead.
    (["ST-II", "ECG II"], None, "ECG II"), (["ST II", "ECG I", "ECG II"], None, "ECG II"),
    (["EMG II", "ECG"], None, "ECG"), (["x", "ECG"], ["mm", "mV"], "ECG"),
])
def test_the_default_lead_among_names_of_many_databases_and_devices(names, units, chosen):
    from anomaly.recordings.lead_names import default_lead
    from anomaly.recordings.signals import distinct_names

    assert names[default_lead("rec", distinct_names(names), units)] == chosen


@pytest.mark.parametrize("micro", [b"\xb5", "\u00b5".encode()], ids=["latin-1", "utf-8"])
def test_an_edf_in_microvolts_spelt_with_the_micro_sign_is_calibrated(recording, tmp_path,
                                                                      micro):
    """EDF headers are ASCII, but devices write the micro sign (Latin-1 0xB5, or UTF-8):
    read as a voltage, so the strips are on ECG paper (it was 'not a voltage')."""
    import edfio

    lead = open_lead(recording[0]).read(0, 10 * FS)
    path = tmp_path / "micro.edf"
    edfio.Edf([edfio.EdfSignal(1000 * lead, FS, label="ECG", physical_dimension="uV",
                               physical_range=(-10_000, 10_000))]).write(path)
    data = path.read_bytes()
    at = data.index(b"uV      ", 256)  # the signal's physical dimension, 8 bytes
    path.write_bytes(data[:at] + (micro + b"V").ljust(8) + data[at + 8:])
    opened = open_lead(path)
    assert opened.millivolts_per_unit == pytest.approx(1e-3)


@pytest.mark.parametrize("names, units", [
    (["EEG Fpz-Cz", "EOG"], None), (["ABP", "PLETH"], ["mmHg", "NU"]), (["ECG HR"], ["bpm"]),
    # EEG montages as CHB-MIT, eegmmidb and others name them; a sleep study without ECG.
    (["T7-FT9", "FT9-FT10", "Fp1-AF3", "C3-CP3", "FP1-REF", "C3-AVG", "Cz-LE", "Nz", "Iz.."],
     None),
    (["SOUND", "TERMISTORE", "CPAP", "Light", "Activity", "Impedance"], None)])
def test_a_recording_without_a_lead_that_may_be_ecg_is_refused(names, units):
    from anomaly.exceptions import InputError
    from anomaly.recordings.lead_names import default_lead
    from anomaly.recordings.signals import distinct_names

    with pytest.raises(InputError, match=r"^rec: none of its signals \(.*\) is ECG by its "
                                         r"name or unit: give --lead NAME\|INDEX"):
        default_lead("rec", distinct_names(names), units)


def test_the_default_lead_is_lead_ii_or_the_first_ecg_lead_never_another_signal(
        recording, tmp_path, capsys):
    """Unasked, a 12-lead record is read on lead II (however spelled), a bedside monitor's
    record on its ECG lead rather than its respiration, blood pressure, plethysmogram or
    a heart rate named ECG HR before it, a sleep study's EDF on its ECG rather than its
    EEG, EOG and EMG (microvolts too, however named), a signal CSV likewise by its units
    row; one without an ECG lead is refused in one line naming the file and its signals,
    and read when --lead names one (a lead in a unit other than a voltage with a
    warning)."""
    import edfio

    lead = open_lead(recording[0]).read(0, 30 * FS)
    twelve = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
    incart = write_wfdb(tmp_path, "incart", np.column_stack([lead] * 12), fmt="16",
                        lead_names=twelve)
    assert open_lead(incart).name == "II"
    import wfdb

    wfdb.wrsamp("icu", fs=FS, units=["pm", "mmHg", "NU", "mV", "mV"],
                sig_name=["RESP", "ABP", "PLETH", "V", "AVR"],
                p_signal=np.column_stack([lead, 100 + 20 * lead, lead, lead, -lead]),
                fmt=["16"] * 5, write_dir=str(tmp_path))
    assert open_lead(tmp_path / "icu").name == "V"
    wfdb.wrsamp("rate", fs=FS, units=["bpm", "mV"], sig_name=["ECG HR", "ECG"],
                p_signal=np.column_stack([np.full(len(lead), 72.0), lead]), fmt=["16"] * 2,
                write_dir=str(tmp_path))
    assert open_lead(tmp_path / "rate").name == "ECG"  # not the rate derived from it
    code, _, err = run_cli(capsys, "beats", tmp_path / "icu", "--lead", "ABP",
                           "-o", tmp_path / "abp.csv")
    assert code == 0 and (f"Warning: {tmp_path / 'icu'}: lead ABP is in mmHg, not a "
                          "voltage: read as ECG as asked") in err
    sleep = tmp_path / "sleep.edf"
    edfio.Edf([edfio.EdfSignal(1000 * lead, FS, label=label, physical_dimension="uV",
                               physical_range=(-10_000, 10_000))
               for label in ("EEG Fpz-Cz", "EOG horizontal", "EMG submental", "ECG II")]
              ).write(sleep)
    assert open_lead(sleep).name == "ECG II"
    aasm = tmp_path / "aasm.edf"  # EEG and EOG derivations named the AASM way
    edfio.Edf([edfio.EdfSignal(1000 * lead, FS, label=label, physical_dimension="uV",
                               physical_range=(-10_000, 10_000))
               for label in ("C3-M2", "E1-M2", "Chin1-Chin2", "X1")]).write(aasm)
    assert open_lead(aasm).name == "X1"
    table = tmp_path / "monitor.csv"
    table.write_text("time,pressure,ecg\ns,mmHg,mV\n" + "".join(
        f"{i / FS:.6f},{100 + a:.4f},{a:.4f}\n" for i, a in enumerate(lead)))
    assert open_lead(table).name == "ecg"
    unnamed = tmp_path / "unnamed.csv"  # no lead named as ECG: the first, said so
    unnamed.write_text("time,a,b\n" + "".join(f"{i / FS:.6f},{x:.4f},0\n"
                                               for i, x in enumerate(lead)))
    code, _, err = run_cli(capsys, "beats", unnamed, "-o", tmp_path / "u.csv")
    assert code == 0 and (f"Warning: {unnamed}: no lead is named as ECG; reading a (of a, "
                          "b): give --lead to choose another") in err, err

    brain = tmp_path / "brain.edf"
    edfio.Edf([edfio.EdfSignal(1000 * lead, FS, label=label, physical_dimension="uV",
                               physical_range=(-10_000, 10_000))
               for label in ("EEG Fpz-Cz", "EOG horizontal")]).write(brain)
    code, _, err = run_cli(capsys, "beats", brain, "-o", tmp_path / "brain.csv")
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        f"Error: {brain}: none of its signals (EEG Fpz-Cz, EOG horizontal) is ECG by its "
        "name or unit: give --lead NAME|INDEX to read one as ECG")
    assert not (tmp_path / "brain.csv").exists()
    assert open_lead(brain, lead="EEG Fpz-Cz").name == "EEG Fpz-Cz"


def test_leads_of_one_name_are_told_apart_by_index_in_every_format(recording, tmp_path):
    """Two signals named ECG (as some EDF and WFDB files have) are ECG#0 and ECG#1 (the
    lead's index, as --lead counts them), in a WFDB record, an EDF file and a signal CSV
    alike: each is read by that name or its index, and the shared name, which would be
    either, is refused naming both."""
    import edfio

    from anomaly.recordings.signals import NoSuchLead

    first = open_lead(recording[0]).read(0, 10 * FS)
    second = -2 * first
    base = write_wfdb(tmp_path, "twins", np.column_stack([first, second]),
                      lead_names=("ECG", "ECGX"))  # wfdb writes no header of two names.
    header = Path(f"{base}.hea")
    header.write_text(header.read_text().replace(" ECGX", " ECG"))
    edf = tmp_path / "twins.edf"
    edfio.Edf([edfio.EdfSignal(signal, FS, label="ECG", physical_range=(-10, 10))
               for signal in (first, second)]).write(edf)
    table = tmp_path / "twins.csv"
    table.write_text("time,ECG,V1,ECG\n" + "".join(
        f"{i / FS:.6f},{a:.6f},0,{b:.6f}\n" for i, (a, b) in enumerate(zip(first, second))))
    for path, index in ((base, 1), (edf, 1), (table, 2)):
        assert open_lead(path).name == "ECG#0"
        for asked in (f"ECG#{index}", str(index)):
            lead = open_lead(path, lead=asked)
            assert lead.name == f"ECG#{index}"
            np.testing.assert_allclose(lead.read(0, lead.n_samples), second, atol=0.01)
        with pytest.raises(NoSuchLead, match=rf"no lead 'ECG' \(its leads: ECG#0, "
                                             rf"(V1, )?ECG#{index};"):
            open_lead(path, lead="ECG")


def test_every_lead_name_is_one_leads_printable_short_and_no_index(tmp_path):
    """A name given the lead's index may be another lead's own (ECG, ECG, ECG#0), a name
    may be a number (leads 1 and 0: --lead 0 is the first), empty, hold a newline or be a
    sentence; a WFDB signal line without a name is read, its lead named by its index."""
    from anomaly.recordings.signals import MAX_LEAD_NAME, NoSuchLead, distinct_names

    first, second = (f"Holter channel {'x' * 50} limb {limb}" for limb in ("I", "II"))
    for names in (["ECG", "ECG", "ECG#0"], ["1", "0"], [None, "", "MLII"],
                  ["y" * 60, "ECG", "ECG", "ECG#1"], [first, second, first],
                  ["V5\nError: forged", "x" * 70, "x" * 70], ["Y" * 63, "Y" * 63], ["#0", None]):
        named = distinct_names(names)
        assert len(set(named)) == len(names), named
        assert all(name.isprintable() and 0 < len(name) <= MAX_LEAD_NAME for name in named)
        assert not any(name.isdigit() for name in named)
    assert distinct_names(["1", "0"]) == ["1#0", "0#1"]
    assert distinct_names([None, "MLII"]) == ["#0", "MLII"]
    assert distinct_names(["y" * 60, "ECG", "ECG", "ECG#1"])[0] == "y" * 60  # Unique: kept.
    # Long names alike for 60 characters: each lead keeps its name in either order, so a
    # model fitted on one never reads the other where they are swapped.
    assert distinct_names([first, second]) == distinct_names([second, first])[::-1]
    assert NoSuchLead("rec.hea", "V9", [f"L{i}" for i in range(100)]).args[0].endswith(
        "L10, L11, ... (100 in all); give a name or a 0-based index)")
    peaks = beat_train(30)
    base = write_wfdb(tmp_path, "unnamed", np.column_stack([synthetic_ecg(peaks, 30 * FS)] * 2),
                      lead_names=("XX", "MLII"))
    header = Path(f"{base}.hea")
    header.write_text(header.read_text().replace(" XX\n", "\n"))
    assert open_lead(base).name == "MLII"
    lead = open_lead(base, lead="0")
    assert (lead.name, lead.leads) == ("#0", ("#0", "MLII"))


# -- the command line -------------------------------------------------------------------

def test_beats_fit_and_score_carry_the_ids_in_order(recording, in_tmp, capsys):
    base, _, _ = recording
    code, out, err = run_cli(capsys, "beats", base, "--annotations", "atr", "-o", "beats.csv")
    assert code == 0, err
    with open("beats.csv", newline="") as file:
        rows = list(csv.reader(file))
    header = rows[0]
    assert header[:9] == ["record", "beat", "sample", "time_s", "rr_prev_s", "rr_next_s",
                          "rr_local_mean_s", "unreadable", "label"]
    assert header[9:] == [f"x{i}" for i in range(140)]
    assert [row[0] for row in rows[1:]] == ["rec"] * (len(rows) - 1)
    assert [int(row[1]) for row in rows[1:]] == list(range(1, len(rows)))
    # The first beat has no previous one, the last no next one: empty cells.
    assert rows[1][4] == "" and rows[2][4] != "" and rows[-1][5] == "" and rows[-2][5] != ""

    code, _, err = run_cli(capsys, "fit", "beats.csv", "--label-column", "label",
                           "--normal-label", "N", "-m", "model", "--epochs", "3", "-q")
    assert code == 0, err
    code, _, err = run_cli(capsys, "score", "beats.csv", "--label-column", "label",
                           "--normal-label", "N", "-m", "model", "-o", "scores.csv", "-q")
    assert code == 0, err
    with open("scores.csv", newline="") as file:
        scored = list(csv.reader(file))
    assert scored[0] == ["row", "record", "beat", "sample", "time_s", "rr_prev_s", "rr_next_s",
                         "rr_local_mean_s", "unreadable", "score", "is_anomaly", "label"]
    assert [row[1:9] for row in scored[1:]] == [row[:8] for row in rows[1:]]
    assert [row[11] for row in scored[1:]] == [row[8] for row in rows[1:]]


def test_a_recording_scores_as_its_beats_file_does(recording, in_tmp, capsys):
    """'score RECORD' and 'beats' then 'score beats.csv': the same beats, ids of the same
    types, the same labels (carried without --label-column), the same scores within
    float32 rounding."""
    import pyarrow.parquet as pq

    base, _, _ = recording
    assert run_cli(capsys, "fit", base, "--to", "1:00", "-m", "model", "--epochs", "3",
                   "--lead", "V1", "-q")[0] == 0
    for arguments in (["beats", base, "-o", "beats.csv", "--lead", "V1", "--annotations", "atr"],
                      ["score", base, "-m", "model", "-o", "direct.parquet", "--annotations", "atr"],
                      ["score", "beats.csv", "-m", "model", "-o", "via.parquet"]):
        code, _, err = run_cli(capsys, *arguments, "-q")
        assert code == 0, (arguments, err)
    direct, via = pq.read_table("direct.parquet"), pq.read_table("via.parquet")
    assert via.column_names == ["row"] + direct.column_names
    for name in direct.column_names:
        if name == "score":
            np.testing.assert_allclose(via[name].to_numpy(), direct[name].to_numpy(),
                                       rtol=1e-4, atol=1e-5)
        elif name != "is_anomaly":
            assert via[name].type == direct[name].type, name
            assert via[name].to_pylist() == direct[name].to_pylist(), name
    # The model was fitted on V1: scoring the record reads V1 unless told otherwise.
    v1 = read_recording(base, SegmentOptions(lead="V1")).beats
    assert direct["sample"].to_pylist() == v1.sample.tolist()


def test_a_signal_csv_read_from_a_later_time_gives_the_records_samples(recording, tmp_path):
    base, _, _ = recording
    lead = open_lead(base)
    values = lead.read(0, lead.n_samples)
    path = tmp_path / "signal.csv"
    with open(path, "w", newline="") as file:
        csv.writer(file).writerows([["MLII"], *([value] for value in values)])
    streamed = open_lead(path, fs=FS)
    for start, stop in ((50_000, 50_010), (40_000, 40_005), (43_000, 43_100), (0, 3)):
        np.testing.assert_array_equal(streamed.read(start, stop), values[start:stop])
    np.testing.assert_array_equal(
        read_recording(path, SegmentOptions(start=65, fs=FS)).beats.sample,
        read_recording(base, SegmentOptions(start=65)).beats.sample)


def test_fit_and_score_read_recordings_directly(recording, in_tmp, capsys):
    base, _, _ = recording
    code, out, err = run_cli(capsys, "fit", base, "--to", "1:00", "--annotations", "atr",
                             "--label-column", "label", "--normal-label", "N",
                             "-m", "model", "--epochs", "3", "--samples", "100")
    assert code == 0, err
    assert "beats of lead MLII" in out
    # A recording's are beats, not rows (a beats file's rows).
    assert re.search(r"Training on \d+ normal beats", out), out
    # What was left out is said of beats and their reference labels (it said "rows whose
    # label in column 'label'", a beats file's words).
    assert "beats whose label in the reference annotations is not 'N'" in out, out
    code, out, err = run_cli(capsys, "score", f"{base}.hea", "--from", "1:00", "--annotations",
                             "atr", "--label-column", "label", "--normal-label", "N",
                             "-m", "model", "-o", "scores.csv")
    assert code == 0, err
    assert re.search(r"Scored \d+ beats from ", err), err
    with open("scores.csv", newline="") as file:
        scored = list(csv.DictReader(file))
    direct = read_recording(base, SegmentOptions(start=60, annotations="atr",
                                                 window=BeatWindow(samples=100))).beats
    assert [int(row["sample"]) for row in scored] == direct.sample.tolist()
    assert [row["label"] for row in scored] == direct.labels.tolist()
    assert min(float(row["time_s"]) for row in scored) >= 60


def test_a_lead_of_several_samples_per_frame_is_read_averaged_and_said_so(recording,
                                                                         tmp_path, capsys):
    """A multi-frequency WFDB record (a 500 Hz lead in frames of 125 Hz) is read as wfdb
    reads it, each frame's samples averaged, at the frame rate: the beats are found, and
    a warning says the lead was not read at its own rate."""
    import wfdb

    lead = open_lead(recording[0]).read(0, 60 * FS)
    from anomaly.recordings.filters import resample, resampling_ratio

    fast = resample(lead, resampling_ratio(FS, 500))
    frames = len(fast) // 4
    record = wfdb.Record(record_name="multi", n_sig=2, fs=125, sig_len=frames,
                         file_name=["multi.dat"] * 2, fmt=["16", "16"], samps_per_frame=[1, 4],
                         units=["pm", "mV"], sig_name=["RESP", "II"],
                         e_p_signal=[np.zeros(frames), fast[:4 * frames]],
                         adc_gain=[1000.0, 1000.0], baseline=[0, 0])
    record.set_d_features(do_adc=True, expanded=True)
    record.set_defaults()
    record.wrsamp(expanded=True, write_dir=str(tmp_path))
    code, out, err = run_cli(capsys, "beats", tmp_path / "multi", "-o", tmp_path / "b.csv")
    assert code == 0, err
    assert (f"Warning: {tmp_path / 'multi'}.hea: signal II has 4 samples per frame: read as "
            "wfdb reads it, averaged over each frame, at 125 Hz, not its own 500 Hz") in err
    with open(tmp_path / "b.csv", newline="") as file:
        found = np.array([float(row["time_s"]) for row in csv.DictReader(file)])
    expected = beat_train(120)[:len(found)] / FS
    assert len(found) >= 55 and np.abs(found - expected[np.abs(
        expected[:, None] - found).argmin(axis=0)]).max() < 0.03


def test_a_recordings_fit_needs_30_beats_exactly(in_tmp, capsys):
    """At a beat a second, spans a second apart: 29 beats to train on are refused (the
    message saying nothing was left out), 30 are trained on."""
    duration = 60
    peaks = np.arange(1, duration) * FS
    base = write_wfdb(in_tmp, "steady", np.column_stack([synthetic_ecg(peaks, duration * FS)] * 2))
    outcomes = {}
    for end in range(30, 36):
        code, out, err = run_cli(capsys, "fit", base, "--to", str(end), "--every-beat",
                                 "-m", f"model{end}", "--epochs", "1")
        refused = re.search(r"(\d+) of the \d+ beats of lead MLII \(of MLII, V1; beats "
                            r"checked on V1\) between "
                            r"00:00 and 00:\d\d can be trained on; at least 30 are needed: "
                            r"fit a longer span or another lead \(--lead\)$", err.strip())
        trained = re.search(r"Training on (\d+) normal beats", out)
        assert (code, bool(refused), bool(trained)) in ((2, True, False), (0, False, True)), err
        outcomes[int((refused or trained).group(1))] = code
    assert outcomes.get(29) == 2 and outcomes.get(30) == 0, outcomes
    assert all((code == 2) == (n < 30) for n, code in outcomes.items())


def test_a_recording_mostly_flagged_is_said_to_be_read_otherwise_than_the_model_knows(
        recording, in_tmp, capsys):
    """A patient model scoring beats it does not know (here the same record with its lead
    inverted, as a paced or fibrillating stretch is to a model of sinus beats) flags most
    of them: the log and the report's summary say the flags say little there. On the
    patient's own later beats it says nothing."""
    base, _, _ = recording
    lead = open_lead(base).read(0, 120 * FS)
    inverted = write_wfdb(in_tmp, "inverted", np.column_stack([-lead, lead]))
    code, _, err = run_cli(capsys, "fit", base, "--to", "1:00", "-m", "model", "--epochs", "30")
    assert code == 0, err
    code, _, err = run_cli(capsys, "score", inverted, "-m", "model", "-o", "s.csv",
                           "--html", "r.html")
    assert code == 0, err
    assert re.search(rf"Warning: {re.escape(str(inverted))}: \d+ of its \d+ beats are flagged, "
                     r"more than half: the model does not know this recording's usual beats",
                     err), err
    page = (in_tmp / "r.html").read_text()
    assert "beats are flagged, more than half: the model does not know" in page
    assert re.search(r"<td class=\"text\">1 family, 0 of ectopic shape", page)  # not "1 families"
    code, _, err = run_cli(capsys, "score", base, "--from", "1:00", "-m", "model", "-o", "own.csv")
    assert code == 0 and "more than half" not in err, err


def test_a_fit_of_a_span_mostly_unreadable_is_refused_saying_what_was_left_out(in_tmp,
                                                                              capsys):
    """A device attached late: the first 4:30 of the 5 minutes asked for are flat. The fit
    trained on 2 beats and its model flagged 98% of the later ones; now it is refused in
    one line whose counts add up (unreadable, premature, of another shape) and which names
    the lead read and what to do, and no model directory is left."""
    duration = 360
    peaks = beat_train(duration)
    lead = synthetic_ecg(peaks, duration * FS)
    lead[:270 * FS] = 0.0
    base = write_wfdb(in_tmp, "late", np.column_stack([lead, -0.5 * lead]))
    code, _, err = run_cli(capsys, "fit", base, "--to", "5:00", "-m", "model", "--epochs", "2")
    assert code == 2
    message = err.strip().splitlines()[-1]
    found = re.fullmatch(
        rf"Error: {re.escape(str(base))}: (\d+) of the (\d+) beats of lead MLII \(of MLII, "
        r"V1; beats checked on V1\) between 00:00 and 05:00 can be trained on \(skipped "
        r"(\d+) beats: (\d+) in unreadable stretches, (\d+) beats? outside the dominant "
        r"rhythm and shape \((\d+) premature, (\d+) of another shape\)\); at least 30 are "
        r"needed: fit a longer span, another lead \(--lead\), labels, or --every-beat", message)
    assert found, message
    kept, total, skipped, unreadable, outside, premature, other = map(int, found.groups())
    assert kept < 30 and kept + skipped == total and unreadable + outside == skipped
    assert premature + other == outside and unreadable > 0
    assert not (in_tmp / "model").exists()
    code, _, err = run_cli(capsys, "fit", base, "--to", "6:00", "-m", "model", "--epochs", "2")
    assert code == 0, err  # 90 s of beats


@pytest.mark.parametrize("duration, gaps", [
    (60, [(20.0, 20.0), (40.0, 42.0)]),
    # Most of a chunk (300 s): the lead's usual amplitude and baseline are the ECG's.
    (320, [(100.4, 280.0)])])
def test_samples_a_record_does_not_have_read_as_a_flat_stretch_set_aside(in_tmp, capsys,
                                                                         duration, gaps):
    """WFDB marks a sample it does not have (a lead off, a gap) with an invalid value, read
    as NaN: the recording is read, those samples and a second either side are a flat,
    unreadable stretch whose beats are set aside, and every other beat is found, readable,
    as without the gap (one missing sample refused the whole recording before, whatever
    the span asked)."""
    import pandas as pd

    peaks = beat_train(duration)
    lead = synthetic_ecg(peaks, duration * FS)
    whole = write_wfdb(in_tmp, "whole", lead[:, None], fmt="16", lead_names=("MLII",))
    for first, last in gaps:
        lead[int(first * FS):int(last * FS) + 1] = np.nan
    holed = write_wfdb(in_tmp, "holed", lead[:, None], fmt="16", lead_names=("MLII",))
    for base, output in ((whole, "whole.csv"), (holed, "holed.csv")):
        code, out, err = run_cli(capsys, "beats", base, "-o", output)
        assert code == 0, err
    missing_s = sum(last - first + 1 / FS for first, last in gaps)
    flat, unit = re.search(r"unreadable \(flat ([0-9.]+) (s|min)\)", out).groups()
    assert float(flat) * (60 if unit == "min" else 1) == pytest.approx(
        missing_s + 2 * len(gaps), abs=0.05 if unit == "s" else 3.0), out
    before, after = (pd.read_csv(name, keep_default_na=False)
                     for name in ("whole.csv", "holed.csv"))
    near = np.zeros(len(after), bool)
    for first, last in gaps:  # Within a second of it, or a beat either side (its RR).
        near |= after["time_s"].between(first - 2.1, last + 2.1).to_numpy()
    set_aside = (after["unreadable"] != "").to_numpy()
    assert set(after["unreadable"][set_aside]) == {"flat"}
    assert not (set_aside & ~near).any()
    # Away from the gaps, the same beats as without them, all readable.
    away = before[~np.any([before["time_s"].between(first - 2.1, last + 2.1)
                           for first, last in gaps], axis=0)]
    kept = after[~near]
    np.testing.assert_array_equal(kept["sample"], away["sample"])
    assert (before["unreadable"] == "").all()


def score_signal_csv(capsys, base, column: list) -> tuple[str, str]:
    """Fit on the recording ``base``'s first minute, score a signal CSV of one lead,
    MLII, holding ``column`` (a units row first, or none), with --html: the score's
    stderr and the report's page."""
    import pandas as pd

    pd.DataFrame({"MLII": column}).to_csv("lead.csv", index=False)
    code, _, err = run_cli(capsys, "fit", base, "--to", "1:00", "-m", "model", "--epochs",
                           "3", "-q")
    assert code == 0, err
    code, _, err = run_cli(capsys, "score", "lead.csv", "--signal", "--fs", str(FS), "--from",
                           "1:00", "-m", "model", "-o", "scores.csv", "--html", "report.html")
    assert code == 0, err
    return err, Path("report.html").read_text()


def test_a_recording_without_a_voltage_unit_is_not_said_to_be_in_millivolts(recording, in_tmp,
                                                                           capsys):
    """A signal CSV without a units row is drawn at 10 mm per its largest wave: the
    report's strips and their sheet say so rather than '10 mm/mV' (a newcomer read the
    title's mV and took the heights for millivolts)."""
    from anomaly.report.paper import paper_scale

    base, peaks, _ = recording
    _, page = score_signal_csv(capsys, base, synthetic_ecg(peaks, 120 * FS).tolist())
    assert "declares no voltage unit, or one its values' size belies: 10 mm is the height" \
        in page and "mm/mV" not in page
    assert paper_scale(True) == "25 mm/s, 10 mm/mV"
    assert "mV" not in paper_scale(False) and "not calibrated" in paper_scale(False)
    captions = re.findall(r'alt="ECG strip of lead.csv: ([^"]*)"', page)
    assert captions and all(caption.endswith("(amplitude not calibrated: no voltage unit "
                                             "declared)") for caption in captions), captions


def test_microvolts_declared_as_millivolts_are_not_drawn_as_millivolts(recording, in_tmp,
                                                                        capsys):
    """A signal CSV whose units row says mV but whose values are microvolts (QRS complexes
    of 1,000 'mV'): a warning names the file and the size, and the strips are drawn at
    the height of their largest wave rather than off the paper."""
    from anomaly.recordings.reading import MOST_PLAUSIBLE_MV

    base, peaks, _ = recording
    lead = 1000.0 * synthetic_ecg(peaks, 120 * FS)
    assert np.ptp(lead) > MOST_PLAUSIBLE_MV
    err, page = score_signal_csv(capsys, base, ["mV"] + lead.tolist())
    assert "Warning: lead.csv: lead MLII's waves measure" in err
    assert "are its values in another unit?" in err
    assert "or one its values' size belies" in page and "mm/mV" not in page
    # Each strip says why it is not in mV: the unit declared is one its waves belie.
    captions = re.findall(r'alt="ECG strip of lead.csv: ([^"]*)"', page)
    assert captions and all(re.search(r"\(amplitude not calibrated: its waves measure "
                                      r"[\d,]+ mV in its declared unit, mV: another unit\?\)",
                                      caption) for caption in captions), captions


def test_a_recordings_report_shows_its_timeline_and_strips(recording, in_tmp, capsys):
    """The HTML report and --plot-dir of a scored recording: the score of every beat over
    time and ECG strips of the most anomalous beats, rendered in a real browser. The
    recording's lead comes off for 5 s (flat) and an electrode is pulled for 5 s (its
    baseline up 3 mV): the beats there are scored, never flagged, and every output says
    how much of the recording could be analysed."""
    import pandas as pd

    base, peaks, _ = recording
    lead = synthetic_ecg(peaks, 120 * FS)
    lead[70 * FS:75 * FS] = lead[70 * FS]
    lead[90 * FS:95 * FS] += 3.0
    pulled = write_wfdb(Path.cwd(), "pulled", np.column_stack([lead, -0.5 * lead]))
    code, _, err = run_cli(capsys, "fit", base, "--to", "1:00", "-m", "model", "--epochs",
                           "3", "-q")
    assert code == 0, err
    code, _, err = run_cli(capsys, "score", pulled, "--from", "1:00", "-m", "model",
                           "-o", "scores.csv", "--html", "report.html", "--plot-dir", "plots",
                           "--report", "run.json")
    assert code == 0, err
    # Off baseline: the 5 s pulled and a second either side, where the filter settles.
    assert ("0.8 of 1.0 min analysable (80%); 12 s unreadable (flat 5.0 s, off baseline 7.0 s): "
            "its 13 beats set aside, never flagged") in err
    scores = pd.read_csv("scores.csv", keep_default_na=False)
    set_aside = scores["unreadable"] != ""
    assert set(scores["unreadable"][set_aside]) == {"flat", "off baseline"}
    assert scores["time_s"][set_aside].between(69, 97).all() and set_aside.sum() >= 6
    assert (scores["is_anomaly"][set_aside] == 0).all()
    recording_report = json.loads(Path("run.json").read_text())["inputs"][0]["recording"]
    assert recording_report["analysable_minutes"] == pytest.approx(48 / 60, abs=0.01)
    assert recording_report["unreadable_beats"] == set_aside.sum()
    assert [(s["from"], s["to"], s["reason"])
            for s in recording_report["longest_unreadable_stretches"]] == [
        ("01:10", "01:15", "flat"), ("01:29", "01:36", "off baseline")]
    page = Path("report.html").read_text()
    assert "<h2>Recordings</h2>" in page and "min analysable" in page
    # A recording's rhythm and strips come before the histogram, which is the engineer's.
    assert page.index("<h2>Recordings</h2>") < page.index("<h2>Anomaly scores</h2>")
    assert "pulled: lead MLII (of MLII, V1; beats checked on V1), 360 Hz" in page
    # What a flag is worth, beside their count (a new user read 70 flags on a normal ECG
    # without a word of it).
    assert "<th>reading the flags</th>" in page and "not a diagnosis" in page
    assert re.search(r"<td[^>]*>01:29</td><td[^>]*>01:36</td><td[^>]*>7.0</td>"
                     r"<td[^>]*>off baseline</td>", page)
    assert 'alt="timeline of pulled"' in page and 'alt="ECG strip of pulled: ' in page
    # A recording's beats are numbered, not lines of a file.
    assert re.search(r'alt="the beat \d+ at \d\d:\d\d', page) and 'alt="the row ' not in page
    # Its timing, which its score weighs beside the shape drawn, is named with it.
    top = scores[~set_aside].loc[scores["score"][~set_aside].idxmax()]
    rr = [f"{float(top[name]):.2f} s" for name in ("rr_prev_s", "rr_next_s", "rr_local_mean_s")]
    assert re.search(rf'alt="the beat {top["beat"]} at \d\d:\d\d; RR {rr[0]} before, '
                     rf'{rr[1]} after \(usual {rr[2]}\)"', page)
    assert {"pulled.timeline.png", "pulled.strips.png"} <= {
        path.name for path in Path("plots").iterdir()}
    assert_images_render_in_browser(Path("report.html"))
    # Cut into a beats CSV, the same beats are set aside: its rows are never flagged nor
    # trained on, and the run says how many there were.
    assert run_cli(capsys, "beats", pulled, "--from", "1:00", "-o", "pulled.csv", "-q")[0] == 0
    code, _, err = run_cli(capsys, "score", "pulled.csv", "-m", "model", "-o", "via.csv",
                           "--report", "via.json")
    assert code == 0, err
    assert f"; {set_aside.sum()} rows marked unreadable, never flagged" in err
    assert json.loads(Path("via.json").read_text())["inputs"][0]["rows_unreadable"] == \
        set_aside.sum()
    via = pd.read_csv("via.csv", keep_default_na=False)
    assert (via["unreadable"] != "").sum() == set_aside.sum()
    assert (via["is_anomaly"][via["unreadable"] != ""] == 0).all()
    code, out, err = run_cli(capsys, "fit", "pulled.csv", "-m", "csv_model", "--epochs", "1")
    assert code == 0, err
    assert f"skipped {set_aside.sum()} beats: {set_aside.sum()} in unreadable stretches" in out


def bad_recordings(tmp_path: Path, base: Path) -> dict[str, tuple[list[str], str]]:
    """Each bad input: the command line's arguments, and what its error must say."""
    import shutil

    def copy(name: str) -> Path:
        for suffix in (".hea", ".dat", ".atr"):
            text = (base.parent / f"rec{suffix}").read_bytes()
            if suffix == ".hea":
                text = text.replace(b"rec.dat", f"{name}.dat".encode()).replace(
                    b"rec ", f"{name} ".encode(), 1)
            (tmp_path / f"{name}{suffix}").write_bytes(text)
        return tmp_path / name

    missing = copy("missing")
    os.unlink(f"{missing}.dat")
    truncated = copy("truncated")
    data = Path(f"{truncated}.dat").read_bytes()
    Path(f"{truncated}.dat").write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.hea"
    garbage.write_text("this is not a header\n")
    flat = write_wfdb(tmp_path, "flat", np.zeros((60 * FS, 1)), lead_names=("MLII",))
    short = write_wfdb(tmp_path, "short", np.zeros((100, 1)), lead_names=("MLII",))
    no_fs = tmp_path / "no_fs.csv"
    no_fs.write_text("MLII,V1\n" + "0.1,0.2\n" * 1000)
    text_cell = tmp_path / "text_cell.csv"
    text_cell.write_text("time,MLII\n" + "".join(f"{i / 360},0.1\n" for i in range(2000))
                         + "5.6,abc\n")
    samples = "".join(f"{i / 360},0.1\n" for i in range(2000))
    text_first = tmp_path / "text_first.csv"  # Not a units row: its time is a number.
    text_first.write_text("time,MLII\n0.0,abc\n" + samples)
    brief = synthetic_ecg(np.array([100, 400]), 600)
    brief[300] = np.nan  # Shorter than the second either side of it: an internal error.
    short_gap = write_wfdb(tmp_path, "shortgap", brief[:, None], fmt="16",
                           lead_names=("MLII",))
    utf16 = tmp_path / "utf16.csv"  # Said "no time column ... give --fs" before.
    utf16.write_bytes(("time,MLII\n" + samples).encode("utf-16"))
    missing_first = tmp_path / "missing_first.csv"  # A spreadsheet's #N/A: no unit.
    missing_first.write_text("time,MLII\n#N/A,#N/A\n" + samples)
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(f"L{i}" for i in range(300)) + "\n" + ",".join(["0.1"] * 300) + "\n")
    header_only = tmp_path / "header_only.csv"
    header_only.write_text("time,MLII\ns,mV\n")
    two_times = tmp_path / "two_times.csv"
    two_times.write_text("time,t,MLII\n" + "".join(f"{i / 360},{i / 360},0.1\n"
                                                   for i in range(2000)))
    shutil.copy(f"{base}.hea", tmp_path / "noatr.hea")
    shutil.copy(f"{base}.atr", tmp_path / "noatr.qrs")  # a detector's beats, not atr
    shutil.copy(f"{base}.dat", tmp_path / "rec.dat")
    in_ms = tmp_path / "in_ms.csv"
    in_ms.write_text("time,MLII\n" + "".join(f"{1000 * i / 360:.3f},0.1\n" for i in range(2000)))
    in_minutes = tmp_path / "in_minutes.csv"
    in_minutes.write_text("Time (min),MLII\n" + "".join(f"{i / 360 / 60:.6f},0.1\n"
                                                        for i in range(2000)))
    clock = tmp_path / "clock.csv"  # PhysioNet's LightWAVE export
    clock.write_text("'Elapsed time','MLII'\n'hh:mm:ss.mmm','mV'\n" + "".join(
        f"'0:{i / 360:06.3f}',0.1\n" for i in range(2000)))
    # A multi-segment record (as MIMIC's waveforms are), its layout header beside it.
    (tmp_path / "segmented.hea").write_text("segmented/4 2 360 43200\nsegmented_layout 0\n"
                                            "noatr 21600\n~ 360\nnoatr 21240\n")
    (tmp_path / "segmented_layout.hea").write_text(
        "segmented_layout 2 360 0\n~ 0 200/mV 16 0 0 0 0 MLII\n~ 0 200/mV 16 0 0 0 0 V1\n")
    return {
        "missing signal file": ([str(missing)], "signal file"),
        "truncated signal file": ([str(truncated)], "truncated"),
        "header that does not parse": ([str(garbage)], "not a WFDB header"),
        "no such lead": ([str(base), "--lead", "V9"], "no lead 'V9'"),
        "--from after --to": ([str(base), "--from", "1:00", "--to", "0:30"], "is not before"),
        "--from past the end": ([str(base), "--from", "40:00"], "past the end"),
        "--to past the end": ([str(base), "--to", "1:00:00"], "past the end"),
        "shorter than a window": ([str(short)], "shorter than one beat window"),
        "flat lead": ([str(flat), "--to", "0:30"],
                      "no beats detected in lead MLII between 00:00 and 00:30"),
        "signal CSV without a rate": ([str(no_fs), "--signal"], "give --fs"),
        "text in a signal CSV": ([str(text_cell), "--signal"], "text_cell.csv: .*abc"),
        "text in its first row": ([str(text_first), "--signal"], "text_first.csv: .*abc"),
        "#N/A in its first row": ([str(missing_first), "--signal"], "missing_first.csv: line 2 has no number"),
        "a UTF-16 signal CSV": ([str(utf16), "--signal"], "utf16.csv: looks like UTF-16 text"),
        "2 s with a missing sample": ([str(short_gap)], "shortgap: no beats detected"),
        "300 leads": ([str(wide), "--signal", "--fs", "360"],
                      "wide.csv: 300 lead columns; at most 256 are read"),
        "a header and no samples": ([str(header_only), "--signal"],
                                    "header_only.csv: no row of samples under its header"),
        "two time columns": ([str(two_times), "--signal"],
                             "two_times.csv: 2 time columns \\(time, t\\): a signal CSV has one"),
        "no annotation file": ([str(tmp_path / "noatr"), "--annotations", "atr"],
                               "noatr.atr: no such annotation file \\(--annotations atr; "
                               "beside it: qrs\\)"),
        "bad time": ([str(base), "--from", "5 minutes"], "not a time"),
        "no such record": ([str(tmp_path / "nothere")], "no such file|does not exist"),
        "a time column in milliseconds": ([str(in_ms), "--signal"],
                                          "in_ms.csv: its time column \\(time\\) steps by "
                                          "2.778 at a time, a rate of 0.36 Hz if they are "
                                          "seconds: are they milliseconds, or sample "
                                          "numbers\\? Name a column of milliseconds "
                                          "'time_ms'"),
        "a time column in minutes": ([str(in_minutes), "--signal"],
                                     "in_minutes.csv: its time column is in min, a unit not "
                                     "read \\(s or ms"),
        "a time column of clock times": ([str(clock), "--signal"],
                                         "clock.csv: its time column holds clock times "
                                         "\\('0:00.000'\\), not seconds"),
        "a multi-segment record": ([str(tmp_path / "segmented")],
                                   "segmented.hea: a multi-segment record \\(segments noatr, "
                                   "noatr\\), which is not read whole: give its segments' "
                                   "headers one by one"),
        "its layout header": ([str(tmp_path / "segmented_layout")],
                              "segmented_layout.hea: declares no samples \\(a multi-segment "
                              "record's layout header\\): no signal to read"),
    }


def test_a_cell_of_a_megabyte_in_a_signal_csv_is_a_short_line(tmp_path, capsys):
    """pyarrow's message quotes the bad cell, whose length the file's maker chooses: the
    error is one line of a few hundred characters (a 1 MB cell made a 1 MB line, and the
    clock-time check's pattern took seconds over it)."""
    cell = "invalid value '" * 64_000
    table = tmp_path / "long.csv"
    table.write_text("time,ECG\n" + "".join(
        f"{i / 360:.6f},{cell if i == 3000 else '0.1'}\n" for i in range(3600)))
    code, _, err = run_cli(capsys, "beats", table, "-o", tmp_path / "b.csv")
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"Error: {table}: In CSV column #1: CSV conversion error to "
                           "double: invalid value") and len(line) < 400 and line.endswith("...")


def test_every_bad_recording_is_one_line_exit_2_and_nothing_written(recording, model_dir,
                                                                    tmp_path, capsys):
    base, _, _ = recording
    output, new_model = tmp_path / "out.csv", tmp_path / "new-model"
    cases = bad_recordings(tmp_path, base)
    files = set(os.listdir(tmp_path))
    for case, (arguments, message) in cases.items():
        for command in (["beats", "-o", output],
                        ["score", "-o", output, "-m", model_dir, "--html", tmp_path / "r.html",
                         "--plot-dir", tmp_path / "plots", "--report", tmp_path / "r.json"],
                        ["fit", "-m", new_model, "--epochs", "1"]):
            if command[0] == "fit":  # fit reads one recording, before its options
                command = ["fit", arguments[0], *command[1:], *arguments[1:]]
                arguments_after = []
            else:  # beats reads every .csv as a signal CSV
                arguments_after = [argument for argument in arguments
                                   if command[0] == "score" or argument != "--signal"]
            code, out, err = run_cli(capsys, *command, *arguments_after)
            assert code == 2, (case, command[0], err)
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("Error:"), (case, err)
            assert re.search(message, lines[0]), (case, command[0], lines[0])
            assert set(os.listdir(tmp_path)) == files, (case, command[0])  # no file, lock, temporary


def test_score_refuses_recording_options_without_a_recording(data_dir, model_dir, in_tmp,
                                                             capsys):
    code, _, err = run_cli(capsys, "score", data_dir / "batch.csv", "-m", model_dir,
                           "--from", "1:00", "-o", "s.csv")
    assert code == 2 and "apply to recordings" in err
    assert not Path("s.csv").exists()


def test_a_recordings_model_scores_each_beats_timing_unless_told_not_to(recording, in_tmp,
                                                                       capsys):
    """'fit RECORD' predicts each beat's RR context (metadata, the network's width) and sets
    its threshold at k = 2 unless told; --no-rr-context does not; a beats CSV without the RR columns is refused by a model that
    needs them, in one line naming the file; a beats CSV with the RR columns is fitted with
    its RR context, and --rr-context on one without them is refused."""
    import json

    from anomaly.recordings import (RECORDING_CODE_DISTANCE, RECORDING_THRESHOLD_K,
                                    RECORDING_THRESHOLD_SOURCE)
    from anomaly.recordings.rhythm import RR_CONTEXT

    base, _, _ = recording
    code, out, err = run_cli(capsys, "fit", base, "--to", "1:00", "-m", "timed", "--epochs", "3")
    assert code == 0, err
    timed = json.loads(Path("timed/metadata.json").read_text())["params"]
    assert timed["context"] == list(RR_CONTEXT)
    assert timed["threshold_k"] == RECORDING_THRESHOLD_K == 2  # A recording's default k.
    # And its score and threshold source: the error alone and one held-out fifth's scores,
    # on which that k was chosen.
    assert timed["code_distance"] == RECORDING_CODE_DISTANCE == "off"
    assert timed["threshold_source"] == RECORDING_THRESHOLD_SOURCE == "heldout-refit"
    assert ("Score: the mean absolute error of the reconstruction (weighing the beat's "
            "samples 0.75 and its RR context 0.25).") in out
    assert "Network: dense 142-128-64-16-64-128-142" in out and "+ 2 x std" in out
    assert "beats outside the dominant rhythm and shape (" in out
    code, _, err = run_cli(capsys, "fit", base, "--to", "1:00", "-m", "shape", "--epochs", "3",
                           "--no-rr-context", "--threshold-k", "1.5", "--code-distance", "on",
                           "--threshold-source", "training", "--threshold-winsorise", "2", "-q")
    assert code == 0, err
    shape = json.loads(Path("shape/metadata.json").read_text())
    assert (shape["params"]["threshold_winsorise"], shape["calibration"]["winsorised"]) == (2, 2)
    assert shape["params"]["context"] == [] and shape["params"]["threshold_k"] == 1.5
    assert shape["params"]["code_distance"] == "on" and "code_memory" in shape
    assert shape["params"]["threshold_source"] == "training"

    assert run_cli(capsys, "beats", base, "-o", "beats.csv", "-q")[0] == 0
    with open("beats.csv", newline="") as file, open("bare.csv", "w", newline="") as bare:
        csv.writer(bare).writerows(row[8:] for row in list(csv.reader(file))[1:])
    code, _, err = run_cli(capsys, "score", "bare.csv", "-m", "timed", "-o", "s.csv")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "bare.csv" in err and "RR context" in err and "rr_prev_s" in err
    assert not Path("s.csv").exists()
    assert run_cli(capsys, "score", "bare.csv", "-m", "shape", "-o", "s.csv", "-q")[0] == 0

    # A beats CSV is fitted with its RR context where it has the RR columns (as a
    # recording), and --rr-context without them is refused in one line naming the file.
    code, out, err = run_cli(capsys, "fit", "beats.csv", "-m", "from-beats", "--epochs", "3")
    assert code == 0, err
    assert "rows of 140 samples and their RR context" in out
    from_beats = json.loads(Path("from-beats/metadata.json").read_text())["params"]
    assert from_beats["context"] == list(RR_CONTEXT)
    assert from_beats["threshold_k"] == 1 and from_beats["code_distance"] == "auto"
    assert run_cli(capsys, "score", "beats.csv", "-m", "from-beats", "-o", "fb.csv",
                   "-q")[0] in (0, 1)
    assert len(read_rows("fb.csv")) == len(read_rows("beats.csv"))
    for options in (["--no-rr-context"], ["--model", "conv"]):
        code, _, err = run_cli(capsys, "fit", "beats.csv", "-m", "m3", "--epochs", "1", "-q",
                               *options)
        assert code == 0, err
        assert json.loads(Path("m3/metadata.json").read_text())["params"]["context"] == []
    code, _, err = run_cli(capsys, "fit", "beats.csv", "-m", "m2", "--rr-context",
                           "--model", "conv")
    assert code == 2 and "--rr-context needs --model dense without --denoise" in err
    code, _, err = run_cli(capsys, "fit", "bare.csv", "--rr-context", "-m", "m2")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert ("bare.csv: the RR context needs the columns rr_prev_s, rr_next_s, "
            "rr_local_mean_s (as 'anomaly beats' writes them), and the file has no header "
            "row; fit with --no-rr-context") in err
    # One absurd interval would set the context's scaling: said, in one line.
    with open("beats.csv", newline="") as file, open("far.csv", "w", newline="") as far:
        rows = list(csv.reader(file))
        rows[3][4] = "1e300"
        csv.writer(far).writerows(rows)
    code, _, err = run_cli(capsys, "fit", "far.csv", "-m", "m4", "--epochs", "1", "-q")
    assert code == 0 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("Warning: far.csv: the training beats' rr_prev_ratio span ")
    assert "a few extreme values set the min-max scaling" in err
    # Intervals all unknown: a context the same for every beat teaches nothing, refused.
    with open("beats.csv", newline="") as file, open("blank.csv", "w", newline="") as blank:
        rows = list(csv.reader(file))
        csv.writer(blank).writerows(rows[:1] + [row[:5] + [""] + row[6:] for row in rows[1:]])
    code, _, err = run_cli(capsys, "fit", "blank.csv", "-m", "m2")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert ("blank.csv: the RR context's rr_next_ratio is 1 for every training beat, which "
            "teaches the model nothing") in err and not Path("m2").exists()
    # Some of the columns but not all: refused even unasked, rather than fitted on the
    # shape alone without a word.
    with open("beats.csv", newline="") as file, open("part.csv", "w", newline="") as part:
        csv.writer(part).writerows(row[:6] + row[7:] for row in csv.reader(file))
    code, _, err = run_cli(capsys, "fit", "part.csv", "-m", "m2")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "part.csv: the RR context needs the columns" in err
    assert "and the file lacks rr_local_mean_s; fit with --no-rr-context" in err
    assert not Path("m2").exists()
    code, _, err = run_cli(capsys, "fit", "bare.csv", "--every-beat", "-m", "m2")
    assert code == 2 and "--every-beat applies to recordings" in err
    code, _, err = run_cli(capsys, "fit", base, "--every-beat", "--annotations", "atr",
                           "--label-column", "label", "--normal-label", "N", "-m", "m2")
    assert code == 2 and "--every-beat trains on every beat and --label-column" in err
    # A FIFO is read once, by scoring: the check of the model's kind leaves it alone (read
    # first, the scoring found it empty, or waited for a writer that had gone).
    os.mkfifo("pipe.csv")
    writer = threading.Thread(target=lambda: Path("pipe.csv").write_bytes(
        Path("beats.csv").read_bytes()), daemon=True)
    writer.start()
    scored = subprocess.run([sys.executable, "-m", "anomaly", "score", "pipe.csv", "-m",
                             "shape", "-o", "piped.csv", "-q"], capture_output=True, text=True,
                            timeout=120)
    assert scored.returncode in (0, 1), scored.stderr
    assert len(Path("piped.csv").read_text().splitlines()) == \
        len(Path("beats.csv").read_text().splitlines())
    # Another family, or denoising, fits on the shape unless the context is asked for.
    code, _, err = run_cli(capsys, "fit", base, "--to", "1:00", "-m", "m2", "--model", "conv",
                           "--rr-context")
    assert code == 2 and "--rr-context needs --model dense without --denoise" in err
    assert not Path("m2").exists()
    code, _, err = run_cli(capsys, "fit", base, "--to", "1:00", "-m", "noisy", "--denoise",
                           "0.05", "--epochs", "2", "-q")
    assert code == 0, err
    assert json.loads(Path("noisy/metadata.json").read_text())["params"]["context"] == []


def test_beats_refuses_writing_over_a_recording_file(recording, tmp_path, capsys):
    base, _, _ = recording
    before = Path(f"{base}.atr").read_bytes()
    code, _, err = run_cli(capsys, "beats", base, "--annotations", "atr", "-o", f"{base}.atr")
    assert code == 2 and "would overwrite the input" in err
    assert Path(f"{base}.atr").read_bytes() == before


@pytest.fixture(scope="module")
def mitdb() -> Path:
    from anomaly.datasets import find_mitdb

    found = find_mitdb(["100", "114", "208"])
    if found is not None:
        return found
    pytest.skip("MIT-BIH not found (looked in $ANOMALY_DATA_DIR, the download cache and "
                "../shared/data; 'anomaly data fetch mitdb' downloads it)")


@pytest.mark.parametrize("record", ["100", "114", "208"])
def test_mitdb_beats_are_the_cardiologists_beats(mitdb, record):
    """The first five minutes: the beats found are the reference beats (within 150 ms),
    on the MLII lead wherever it is in the record (second in 114)."""
    from anomaly.recordings.annotations import read_reference_beats

    read = read_recording(mitdb / record, SegmentOptions(stop=300, annotations="atr"))
    assert read.lead.name == "MLII"
    reference = read_reference_beats(str(mitdb / record), "atr", n_samples=650_000, fs=360,
                                     stop=300 * 360).samples
    labels = read.beats.labels
    matched = int((labels != UNMATCHED).sum())
    assert matched / len(reference) >= 0.99  # sensitivity (the window drops at most one)
    assert matched / len(labels) >= 0.99  # positive predictivity
    if record == "208":  # a record rich in V beats: they are labelled so
        assert (labels == "V").sum() > 20


@pytest.mark.parametrize("record", ["119", "203"])
def test_mitdb_spans_and_chunks_see_the_beats_of_the_whole_record(mitdb, record):
    """The chunk grid does not move with --from/--to: a span's beats are the whole
    record's beats in that span; a beat two chunks both find is kept once."""
    whole = read_recording(mitdb / record, SegmentOptions(stop=600)).beats
    span = read_recording(mitdb / record, SegmentOptions(start=300, stop=600)).beats
    inside = whole.sample >= 300 * 360
    np.testing.assert_array_equal(span.sample, whole.sample[inside])
    np.testing.assert_array_equal(span.rr_prev, whole.rr_prev[inside])
    small = read_recording(mitdb / record, SegmentOptions(stop=600, chunk_seconds=13)).beats
    assert np.diff(small.sample).min() >= 0.2 * 360


# -- what a new user met (issue 22, part 6) ----------------------------------------------

def test_a_bare_mitdb_name_is_read_from_the_mitdb_data_here(tmp_path, monkeypatch, capsys):
    """'beats 208' (and fit, score) as the README shows: a record 208 in the working
    directory wins; else MIT-BIH record 208 of the data on this machine; else one line
    saying where it was looked for and how to fetch it."""
    import wfdb

    from anomaly import datasets
    from conftest import assert_one_line_error

    mitdb = tmp_path / "data" / "mitdb"
    mitdb.mkdir(parents=True)
    peaks = beat_train(40)
    write_wfdb(mitdb, "208", np.column_stack([synthetic_ecg(peaks, 40 * FS)] * 2))
    wfdb.wrann("208", "atr", peaks, symbol=["N"] * len(peaks), write_dir=str(mitdb))
    monkeypatch.setenv("ANOMALY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ANOMALY_CACHE_DIR", str(tmp_path / "cache"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)

    code, out, err = run_cli(capsys, "beats", "208", "-o", "208.beats.csv")
    assert code == 0, err
    assert f"{mitdb / '208'}: " in out and Path("208.beats.csv").is_file()
    code, _, err = run_cli(capsys, "fit", "208", "--lead", "V9", "-m", "m")
    assert code == 2 and f"{mitdb / '208.hea'}: no lead 'V9'" in err, err

    here = beat_train(20)
    write_wfdb(work, "208", synthetic_ecg(here, 20 * FS)[:, None], lead_names=("MLII",))
    code, out, err = run_cli(capsys, "beats", "208", "-o", "here.csv")
    assert code == 0, err
    assert out.startswith("208: ") and str(mitdb) not in out
    for suffix in (".hea", ".dat"):
        os.unlink(f"208{suffix}")

    monkeypatch.delenv("ANOMALY_DATA_DIR")
    monkeypatch.setattr(datasets, "data_dirs", lambda: [tmp_path / "shared"])
    for command in (["beats", "208"], ["score", "208"], ["fit", "208", "-m", "m"]):
        code, _, err = run_cli(capsys, *command)
        assert code == 2, (command, err)
        assert_one_line_error(err, "208: no such file or WFDB record here", "MIT-BIH record 208",
                              str(tmp_path / "cache" / "mitdb"), str(tmp_path / "shared" / "mitdb"),
                              "'anomaly data fetch mitdb 208'")
    code, _, err = run_cli(capsys, "beats", "nothere")
    assert code == 2 and "nothere: no such file" in err
    assert sorted(os.listdir(work)) == ["208.beats.csv", "here.csv"]


def test_strips_are_titled_by_their_own_beat_and_never_repeat_a_window(recording):
    """Each strip's title gives the time and score of the beat it was read around, also
    at the recording's ends where the strip is cut short; two high-scoring beats within
    one strip's reach make one strip naming both."""
    from anomaly.report.recordings import recording_figures
    from anomaly.scoring.summary import ScoreSummary

    base, _, _ = recording
    peaks = read_recording(base, SegmentOptions()).beats.sample
    scores = np.full(len(peaks), 0.1)
    # The last and first beats (their strips cut short), a pair under a second apart, one more.
    for index, score in ((-1, 0.9), (0, 0.8), (10, 0.7), (11, 0.65), (30, 0.6)):
        scores[index] = score
    summary = ScoreSummary(0.5, timelines={str(base): [(peaks, scores,
                                                        np.ones(len(peaks), dtype=bool))]})
    _, figure = recording_figures(summary, str(base), SegmentOptions())
    titles = [ax.get_title(loc="left") for ax in figure.axes]
    expected = [f"among the most anomalous beats: {format_time(peaks[i] / FS)}, score "
                f"{scores[i]:.4f}" for i in (0, 10, 30, -1)]
    assert len(titles) == 4, titles
    for title, start in zip(titles, expected):
        assert title.startswith(start), (title, start)
    assert titles[1].endswith(f"; beat at {(peaks[11] - peaks[10]) / FS:+.2f} s: score 0.6500")
    assert not any("0.1000" in title for title in titles)
    # No strip's beat is in another (strips are 8 s long).
    centres = np.array([peaks[i] for i in (0, 10, 30, -1)])
    assert np.diff(centres).min() >= 4 * FS


def test_a_strip_of_a_beat_the_model_did_not_flag_says_so(recording):
    """With fewer flagged beats than strips of the most anomalous ones, the strips of the
    highest-scoring beats below the threshold say they are not flagged, with the
    threshold: titled 'among the most anomalous beats', a technician read them as
    anomalies (their caption's last words, '(normal)', said otherwise)."""
    from anomaly.report.recordings import recording_figures
    from anomaly.scoring.summary import ScoreSummary

    base, _, _ = recording
    peaks = read_recording(base, SegmentOptions()).beats.sample
    scores = np.full(len(peaks), 0.1)
    for index, score in ((5, 0.9), (20, 0.8), (35, 0.4), (50, 0.3)):
        scores[index] = score
    summary = ScoreSummary(0.5, timelines={str(base): [(peaks, scores,
                                                        np.ones(len(peaks), dtype=bool))]})
    _, figure = recording_figures(summary, str(base), SegmentOptions())
    titles = [ax.get_title(loc="left") for ax in figure.axes]
    assert len(titles) == 4, titles
    for title, index in zip(titles, (5, 20)):
        assert title.startswith("among the most anomalous beats: "
                                f"{format_time(peaks[index] / FS)}, score {scores[index]:.4f}")
    for title, index in zip(titles[2:], (35, 50)):
        assert title.startswith("among the highest scores, not flagged (threshold 0.5000): "
                                f"{format_time(peaks[index] / FS)}, score {scores[index]:.4f}")


def test_fs_given_for_a_recording_that_states_its_rate_must_be_that_rate(
        recording, model_dir, tmp_path, capsys):
    """--fs is the rate of a signal CSV without a time column; a WFDB or EDF header
    states its own, so another --fs is refused in one line (it was silently ignored)."""
    import edfio

    from conftest import assert_one_line_error

    base, _, _ = recording
    edf = tmp_path / "rec.edf"
    edfio.Edf([edfio.EdfSignal(open_lead(base).read(0, 60 * FS), FS, label="MLII",
                               physical_range=(-5, 5))]).write(edf)
    output = tmp_path / "out.csv"
    for path, named in ((base, f"{base}.hea"), (edf, str(edf))):
        for command in (["beats", path, "-o", output], ["score", path, "-m", model_dir, "-o", output],
                        ["fit", path, "-m", tmp_path / "m"]):
            code, _, err = run_cli(capsys, *command, "--fs", "250")
            assert code == 2, (command, err)
            assert_one_line_error(err, f"{named}: --fs 250 but its header says 360 Hz")
        assert not output.exists() and not (tmp_path / "m").exists()
        code, out, err = run_cli(capsys, "beats", path, "-o", output, "--fs", "360")
        assert code == 0 and output.is_file(), err
        output.unlink()


def test_beats_says_which_lead_it_read(recording, in_tmp, capsys):
    """And which other lead confirmed its beats (the recording's other ECG lead)."""
    base, _, _ = recording
    code, out, err = run_cli(capsys, "beats", base, "-o", "beats.csv")
    assert code == 0, err
    assert re.search(rf"^{re.escape(str(base))}: \d+ beats, lead MLII \(of MLII, V1; beats "
                     r"checked on V1\); 2\.0 of 2\.0 min analysable \(100%\)$", out,
                     re.MULTILINE), out
    code, out, err = run_cli(capsys, "beats", base, "-o", "beats.csv", "--lead", "1")
    assert code == 0 and "beats, lead V1 (of MLII, V1; beats checked on MLII);" in out, err


def test_a_glob_of_headers_names_every_record_it_matches(recording, tmp_path, capsys):
    """``'dir/*.hea'`` is a pattern (a name that ends in .hea is no record unless the file
    exists): both records are read. A record in a directory whose name holds pattern
    characters is taken as named."""
    lead = open_lead(recording[0]).read(0, 30 * FS)
    odd = tmp_path / "drop[1]"
    odd.mkdir()
    for directory, name in ((tmp_path, "one"), (tmp_path, "two"), (odd, "three")):
        write_wfdb(directory, name, np.column_stack([lead, lead]))
    code, out, err = run_cli(capsys, "beats", tmp_path / "[ot][nw]*.hea", "-o", tmp_path / "b.csv")
    assert code == 0, err
    assert "of 2 recording(s)" in out and f"{tmp_path / 'one'}.hea: " in out
    code, out, err = run_cli(capsys, "beats", odd / "three", "-o", tmp_path / "c.csv")
    assert code == 0 and "of 1 recording(s)" in out, err


def test_beats_to_standard_output_in_a_real_process(recording, tmp_path):
    """``beats -o -`` writes the beats CSV to standard output, the file's bytes, and what
    it says to stderr (a file named '-' was written before)."""
    base, _, _ = recording
    done = subprocess.run([sys.executable, "-m", "anomaly", "beats", str(base), "-o", "-"],
                          capture_output=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    subprocess.run([sys.executable, "-m", "anomaly", "beats", str(base), "-o",
                    str(tmp_path / "beats.csv")], check=True, capture_output=True, timeout=120)
    assert done.stdout == (tmp_path / "beats.csv").read_bytes()
    assert b"beats, lead MLII (of MLII, V1; beats checked on V1);" in done.stderr
    assert b"recording(s) to standard output" in done.stderr
    assert not (tmp_path / "-").exists()


def test_standard_output_that_fails_or_is_an_input_is_exit_2(recording, model_dir, tmp_path):
    """``-o -`` where standard output is an input left open by the shell (``1<>``), is
    closed, reaches a file size limit or a reader that stopped (a broken pipe): one
    Error line and exit 2, the input untouched (a limit cut the CSV and exited 0; a
    broken pipe exited 1, 'anomalies found'; a closed one was an internal error)."""
    import resource

    base, _, _ = recording
    command = [sys.executable, "-m", "anomaly", "beats", str(base), "-o", "-"]
    signal_file = Path(f"{base}.dat")
    before = signal_file.read_bytes()
    with open(signal_file, "r+b") as opened:
        done = subprocess.run(command, stdout=opened, stderr=subprocess.PIPE, text=True,
                              timeout=120)
    assert done.returncode == 2 and done.stderr.splitlines()[-1] == (
        f"Error: standard output is the input {signal_file}: writing there would "
        "overwrite it")
    assert signal_file.read_bytes() == before
    metadata = Path(model_dir) / "metadata.json"
    kept = metadata.read_bytes()
    with open(metadata, "ab") as opened:  # score -o - >> model/metadata.json
        done = subprocess.run([sys.executable, "-m", "anomaly", "score", str(base), "-m",
                               str(model_dir), "-o", "-"], stdout=opened,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.splitlines()[-1] == (
        f"Error: standard output is a file of the model directory {model_dir}: writing "
        "there would overwrite it")
    assert metadata.read_bytes() == kept
    report = tmp_path / "report.json"
    report.write_text("{}")
    with open(report, "ab") as opened:  # score -o - --report r.json >> r.json
        done = subprocess.run([sys.executable, "-m", "anomaly", "score", str(base), "-m",
                               str(model_dir), "--report", str(report), "-o", "-"],
                              stdout=opened, stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.splitlines()[-1] == (
        f"Error: standard output is the run report (--report) {report}: writing there would "
        "overwrite it")
    beats_file = tmp_path / "beats.csv"
    subprocess.run(command[:-1] + [str(beats_file)], check=True, capture_output=True,
                   timeout=120)
    kept = beats_file.read_bytes()
    with open(beats_file, "rb") as stdin, open(beats_file, "ab") as stdout:  # - < b >> b
        done = subprocess.run([sys.executable, "-m", "anomaly", "score", "-", "-m",
                               str(model_dir), "-o", "-"], stdin=stdin, stdout=stdout,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.splitlines()[-1] == (
        "Error: standard output is standard input's file: writing there would overwrite "
        "the input")
    assert beats_file.read_bytes() == kept

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    with open(tmp_path / "limited.csv", "wb") as limited_file:
        done = subprocess.run(command, stdout=limited_file, stderr=subprocess.PIPE, text=True,
                              timeout=120, preexec_fn=limited)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1] == "Error: standard output: File too large"

    closed = subprocess.run(" ".join(command) + " >&-", shell=True, capture_output=True,
                            text=True, timeout=120)
    assert closed.returncode == 2 and closed.stderr.splitlines()[-1] == (
        "Error: standard output is closed (>&-): give --output FILE")

    reader = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader.stdout.read(100)
    reader.stdout.close()  # the reader stops: the rest meets a broken pipe
    _, err = reader.communicate(timeout=120)
    assert reader.returncode == 2 and err.decode().splitlines()[-1] == (
        "Error: standard output: Broken pipe")


def test_a_lead_the_model_asks_for_and_the_recording_lacks_is_the_models(
        model_dir, tmp_path, capsys):
    from conftest import assert_one_line_error

    peaks = beat_train(30)
    record = write_wfdb(tmp_path, "rec", np.column_stack([synthetic_ecg(peaks, 30 * FS)] * 2),
                        lead_names=("V1", "V2"))
    model = recording_model(model_dir, tmp_path / "model", lead="MLII")
    output = tmp_path / "s.csv"
    code, _, err = run_cli(capsys, "score", record, "-m", model, "-o", output)
    assert code == 2
    assert_one_line_error(err, f"{record}.hea: the model ({model}) was fitted on lead 'MLII', "
                               "which this recording does not have (its leads: V1, V2); choose "
                               "one with --lead (lead= over HTTP)")
    assert not output.exists()
    # A lead asked for that the recording lacks is the user's.
    code, _, err = run_cli(capsys, "score", record, "-m", model, "-o", output, "--lead", "V9")
    assert code == 2 and "no lead 'V9' (its leads: V1, V2;" in err
    # A model's lead is a name, never an index: one fitted on a lead named 1 does not
    # read this recording's second lead.
    numbered = recording_model(model_dir, tmp_path / "numbered", lead="1")
    code, _, err = run_cli(capsys, "score", record, "-m", numbered, "-o", output)
    assert code == 2 and not output.exists()
    assert "was fitted on lead '1', which this recording does not have" in err, err


def test_beats_of_another_kind_than_the_models_are_warned_about_before_scoring(
        recording, model_dir, data_dir, tmp_path, capsys):
    """One warning line, naming the input and the model, before the input is scored: a
    model fitted on a beats CSV scoring a recording, a recording at another rate, another
    lead, a beats CSV that 'anomaly beats' did not write scored by a recording's model,
    any beats CSV scored by a model that centres beats on the patient's dominant beat;
    none when the beats are of the model's kind."""
    base, _, _ = recording
    output = str(tmp_path / "s.csv")

    said_after: list[str] = []

    def warnings(*arguments) -> list[str]:
        """The warnings said before the input is scored (those after it, of what the
        scores show, go to ``said_after``)."""
        code, _, err = run_cli(capsys, "score", *arguments, "-o", output)
        assert code == 0, err
        lines = err.strip().splitlines()
        scored = next(i for i, line in enumerate(lines) if line.startswith("Scored "))
        said_after[:] = [line for line in lines[scored:] if line.startswith("Warning: ")]
        return [line for line in lines[:scored] if line.startswith("Warning: ")]

    [line] = warnings(base, "-m", model_dir)
    assert line.startswith(f"Warning: {base}: the model ({model_dir}) was fitted on beats not "
                           "cut from a recording, so how its beats were cut is unknown"), line
    assert "0.25 s before to 0.45 s after each R peak, resampled to 96 samples" in line
    # ... and, once scored, what its flags are worth there (it flags every beat).
    [line] = said_after
    assert "beats are flagged, more than half: the model does not know" in line

    same = recording_model(model_dir, tmp_path / "same")
    assert warnings(base, "-m", same) == []
    assert warnings(base, "-m", same, "--lead", "MLII") == []
    [line] = warnings(base, "-m", same, "--lead", "V1")
    assert "was fitted on lead MLII and --lead reads lead V1" in line
    assert "not centred" not in line  # The model has no dominant beat.
    faster = recording_model(model_dir, tmp_path / "faster", fs=500)
    [line] = warnings(base, "-m", faster)
    assert f"the model ({faster}) was fitted on a recording at 500 Hz and this one is at " \
           "360 Hz" in line
    [line] = warnings(data_dir / "batch_nolabel.csv", "-m", same)
    assert line.startswith(f"Warning: {data_dir / 'batch_nolabel.csv'}: the model ({same}) "
                           "was fitted on beats cut from a recording (lead MLII, 0.25 s "
                           "before to 0.45 s after each R peak)")
    aligned = recording_model(model_dir, tmp_path / "aligned",
                              template=np.hanning(96).tolist())
    assert warnings(base, "-m", aligned) == []
    [line] = warnings(base, "-m", aligned, "--lead", "V1")
    assert line.endswith("(and they are cut around their R peaks, not centred on the dominant "
                         "beat of lead MLII as the model's were)"), line
    assert warnings(base, "-m", aligned, "--lead", "0") == []  # MLII, by its index.
    assert run_cli(capsys, "beats", base, "--samples", "96", "-o", tmp_path / "b.csv",
                   "-q")[0] == 0
    [line] = warnings(tmp_path / "b.csv", "-m", aligned)
    assert line.startswith(f"Warning: {tmp_path / 'b.csv'}: the model ({aligned}) centres each "
                           "beat's window on the wave of its QRS complex that matches the "
                           "patient's dominant beat") and line.endswith("score the recording "
                                                                         "itself"), line


def test_a_beat_window_longer_than_the_limit_is_refused_naming_where():
    from anomaly.exceptions import InputError
    from anomaly.recordings.segment import MAX_WINDOW_SAMPLES, BeatWindow

    assert BeatWindow().samples_at(360, "rec.edf") == (90, 162)
    assert sum(BeatWindow().samples_at(11_000, "rec.edf")) <= MAX_WINDOW_SAMPLES
    with pytest.raises(InputError, match=r"^rec.edf: a beat window of 0.7 s at 12000 Hz is "
                                         r"8,400 samples \(at most 8,192\)$"):
        BeatWindow().samples_at(12_000, "rec.edf")
