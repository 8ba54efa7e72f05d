"""Issue 26's recordings, each through the command line in a real process.

Headers that declare more than their files hold (skews, samples per frame, byte offsets,
lengths, signal counts, EDF records and durations), headers of absurd size or that are not
files, annotation files that are not annotations, rates that are not rates, signal CSVs
with gaps, and files that grow or change while they are read. Every case checks the exit
code and the one ``Error:`` line, that every file that was there before is unchanged byte
for byte (including the files behind planted links), and the peak memory of the process.
The processes run under an address-space limit, so that a regression fails the test
instead of taking the machine's memory.
"""

from __future__ import annotations

import hashlib
import json
import resource
import shutil
import threading
import time
from pathlib import Path

import pytest

from anomaly.exceptions import EXIT_OK

from conftest import assert_one_line_error, read_rows, run_cli
from hostile import MEMORY_BUDGET_MB, anomaly, good_recording, hostile_recordings, snapshot

#: Address space a recording's process may map: far above the memory budget (the libraries
#: map more than they touch), far below what a header could make it allocate.
ADDRESS_SPACE_BYTES = 6 << 30


def limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_BYTES, ADDRESS_SPACE_BYTES))


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> tuple[Path, dict]:
    directory = tmp_path_factory.mktemp("hostile-recordings")
    return directory, hostile_recordings(directory)


CASES = ["skew of 10^9 samples", "2000 samples per frame over a sparse 720 MB file",
         "byte offset of 10^11", "160 days over a sparse 10 GB file", "20,000 signals",
         "a sparse 1 GB header", "a FIFO for a header", "sampling rate -360",
         "sampling rate nan", "format 508 (FLAC)", "annotations: 10 MB of zeros",
         "annotations: 60 KB of zeros", "annotations of another record",
         "EDF: 10^8 records declared, 120 held", "EDF: record duration nan",
         "EDF: record duration 1e-300", "EDF: 9999 signals", "EDF: 10^8 samples per record",
         "EDF+: 10^8 annotation samples a 1 s record over a sparse 3 GB file",
         "EDF+: 300 MB of annotations over a sparse file",
         "EDF+: 72 MB of annotations, 1 record declared",
         "EDF+: 256 KB of unending annotations in one record",
         "signal CSV: 3,600 blank lines (a 10 s gap)", "signal CSV: time jumps 10 s ahead",
         "signal CSV: time goes 5 s back", "a superscript digit as the signal count",
         "a gain of 1e-320", "a baseline of 10^30", "two signals declared, one signal line",
         "a checksum field that is not a number", "a checksum of 5,000 digits",
         "a baseline with a plus sign, which wfdb reads as none",
         "a gain of 2E2, which wfdb reads as 2", "one signal declared, two signal lines",
         "a unit of a.u., which wfdb reads as a and a name",
         "a negative ADC resolution, which wfdb reads as the zero", "a baseline of 5,000 digits",
         "a negative skew (212:-5), which wfdb reads as a gain",
         "EDF: a superscript digit as the signal count", "EDF: header size 256 declared, 512 held",
         "EDF: physical range of +-1e300", "EDF: physical minimum = maximum",
         "signal CSV: values of 1e300", "--from 1e308", "--lead \u00b2",
         "signal CSV with a byte-order mark"]


def test_the_cases_are_the_builders_cases(recordings):
    _, cases = recordings
    assert sorted(cases) == sorted(CASES)


#: The cases that would take memory or time if a check let them through (a header that
#: declares gigabytes, a FIFO, an annotation file the reader would decode whole): each runs
#: in a real process, under an address-space limit, its peak memory and seconds measured.
#: The others are refused for what they are: run through the command line in this process.
COSTLY = ["skew of 10^9 samples", "2000 samples per frame over a sparse 720 MB file",
          "byte offset of 10^11", "160 days over a sparse 10 GB file", "20,000 signals",
          "a sparse 1 GB header", "a FIFO for a header", "annotations: 10 MB of zeros",
          "EDF: 10^8 records declared, 120 held", "EDF: 9999 signals",
          "EDF: 10^8 samples per record", "EDF: physical range of +-1e300",
          "signal CSV: 3,600 blank lines (a 10 s gap)", "--from 1e308"]


@pytest.mark.parametrize("case", COSTLY)
def test_a_hostile_recording_is_one_line_within_the_memory_budget(recordings, case):
    directory, cases = recordings
    arguments, expected, code = cases[case]
    before = snapshot(directory)
    started = time.monotonic()
    finished = anomaly("beats", *arguments, "-o", "out.csv", "-q", cwd=directory,
                       preexec_fn=limited, timeout=120)
    seconds = time.monotonic() - started
    _check_outcome(directory, code, expected, finished.code, finished.stderr)
    assert snapshot(directory) == before
    assert finished.peak_mb < MEMORY_BUDGET_MB, (case, finished.peak_mb)
    assert seconds < 60, (case, seconds)


# A library's deprecation warnings are ignored in a real process (Python's default
# filters), as they are here; pytest would show them.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("case", [case for case in CASES if case not in COSTLY])
def test_a_hostile_recording_is_one_line(recordings, case, capsys):
    directory, cases = recordings
    arguments, expected, code = cases[case]
    before = snapshot(directory)
    got, _, err = run_cli(capsys, "beats", *arguments, "-o", directory / "out.csv", "-q")
    _check_outcome(directory, code, expected, got, err)
    assert snapshot(directory) == before


def _check_outcome(directory: Path, code: int, expected: str, got: int, err: str) -> None:
    """A refusal: ``code``, one ``Error:`` line holding ``expected``, no output. A valid
    input (``code`` 0): read, with at most one warning line (``expected``)."""
    if code:
        assert got == code, err
        assert_one_line_error(err, expected)
        assert not (directory / "out.csv").exists()
    else:
        assert got == EXIT_OK, err
        lines = err.strip().splitlines()
        assert len(lines) == (1 if expected else 0) and expected in err, lines
        (directory / "out.csv").unlink()


def test_a_signal_csv_with_a_byte_order_mark_reads_as_without(recordings):
    """Excel's "CSV UTF-8" starts with a byte-order mark: the time column is found, and the
    beats are those of the same file without it."""
    directory, cases = recordings
    path = Path(cases["signal CSV with a byte-order mark"][0][0])
    plain = directory / "plain.csv"
    plain.write_bytes(path.read_bytes().removeprefix(b"\xef\xbb\xbf"))
    beats = []
    for name in (path, plain):
        finished = anomaly("beats", name.name, "-o", "b.csv", "-q", cwd=directory)
        assert finished.code == EXIT_OK, finished.stderr
        beats.append([row.split(",", 1)[1] for row in
                      (directory / "b.csv").read_text().splitlines()])
        (directory / "b.csv").unlink()
    plain.unlink()
    assert len(beats[0]) > 50 and beats[0] == beats[1]


def test_a_library_warning_is_one_line_of_the_chosen_log_format(recordings, model_dir):
    """edfio's warning (more records declared than held) arrives as one JSON line."""
    directory, cases = recordings
    shutil.copytree(model_dir, directory / "model", dirs_exist_ok=True)
    arguments, _, _ = cases["EDF: 10^8 records declared, 120 held"]
    finished = anomaly("score", *arguments, "-m", "model", "-o", "scores.csv",
                       "--log-format", "json", cwd=directory, preexec_fn=limited)
    assert finished.code == EXIT_OK, finished.stderr
    messages = [json.loads(line) for line in finished.stderr.strip().splitlines()]
    # The library's, beside the one saying that the model was not fitted on a recording
    # and the one saying that it flags most of the recording's beats.
    warnings = [message for message in messages if message["level"] == "warning"
                and message.get("event") not in ("fitted_kind", "most_flagged")]
    assert len(warnings) == 1 and "records.edf" in warnings[0]["message"]
    assert "data records" in warnings[0]["message"]
    (directory / "scores.csv").unlink()


# -- files that change while they are read ------------------------------------------------

def signal_csv(path: Path, seconds: float, start: float = 0.0) -> str:
    """Rows of a signal CSV (time, MLII) of a simulated ECG from ``start``."""
    import neurokit2 as nk
    import numpy as np

    signal = nk.ecg_simulate(duration=int(seconds), sampling_rate=360, heart_rate=70,
                             method="simple", random_state=int(start))
    times = start + np.arange(len(signal)) / 360
    return "".join(f"{t:.4f},{v:.4f}\n" for t, v in zip(times, signal))


def test_a_signal_csv_appended_to_while_scored_is_read_as_it_was_opened(tmp_path,
                                                                       model_dir):
    """A recorder appends a second of samples every few milliseconds while ``score``
    reads: the scores are those of the file as it was when opened, and the report's
    SHA-256 is that of the bytes read (one of the file's sizes after a whole append)."""
    shutil.copytree(model_dir, tmp_path / "model")
    path = tmp_path / "live.csv"
    path.write_text("time,MLII\n" + signal_csv(path, 600))
    sizes = [path.stat().st_size]
    stop = threading.Event()

    def record() -> None:
        second = 600
        while not stop.is_set():
            with open(path, "a") as file:
                file.write(signal_csv(path, 1, start=second))
            sizes.append(path.stat().st_size)
            second += 1
            time.sleep(0.005)

    recorder = threading.Thread(target=record)
    recorder.start()
    try:
        finished = anomaly("score", path.name, "--signal", "-m", "model", "-o", "s.csv",
                           "--report", "r.json", cwd=tmp_path, preexec_fn=limited)
    finally:
        stop.set()
        recorder.join()
    assert finished.code == EXIT_OK, finished.stderr
    assert len(sizes) > 10  # The file grew while it was read.
    data = path.read_bytes()
    report = json.loads((tmp_path / "r.json").read_text())
    (entry,) = report["inputs"]
    read = [size for size in sizes if hashlib.sha256(data[:size]).hexdigest() == entry["sha256"]]
    assert len(read) == 1, "the report's SHA-256 is not that of the file at any size it had"
    seconds = (data[:read[0]].count(b"\n") - 1) / 360
    last_beat = max(float(row["time_s"]) for row in read_rows(tmp_path / "s.csv"))
    assert seconds - 2 < last_beat < seconds


def test_a_file_rewritten_or_grown_mid_line_while_read_is_refused(tmp_path):
    from anomaly.exceptions import InputError
    from anomaly.recordings.limits import stamps_sha256
    from anomaly.recordings.reading import segmenter_for
    from anomaly.recordings.segment import SegmentOptions

    path = tmp_path / "rec.csv"
    rows = signal_csv(path, 60)
    path.write_text("time,MLII\n" + rows)
    segmenter = segmenter_for(path, SegmentOptions())
    list(segmenter.chunks())
    assert stamps_sha256(segmenter.files) == hashlib.sha256(path.read_bytes()).hexdigest()
    path.write_text("time,MLII\n" + rows.replace("0", "1"))  # Same size, other bytes.
    with pytest.raises(InputError, match="rewritten while it was read"):
        stamps_sha256(segmenter.files)
    path.write_text("time,MLII\n" + rows)
    segmenter = segmenter_for(path, SegmentOptions())
    list(segmenter.chunks())
    path.write_text("time,MLII\n" + rows.replace("0", "1") + rows)  # Rewritten longer.
    with pytest.raises(InputError, match="rewritten while it was read"):
        stamps_sha256(segmenter.files)

    path.write_text("time,MLII\n" + rows + "60.0000,0.1")  # A last line half-written...
    segmenter = segmenter_for(path, SegmentOptions())
    list(segmenter.chunks())
    with open(path, "a") as file:  # ...and finished while the file is read.
        file.write("234\n60.0028,0.1\n")
    with pytest.raises(InputError, match="last line was still being written"):
        stamps_sha256(segmenter.files)


def test_a_wfdb_record_whose_signal_file_grows_is_read_to_its_declared_length(tmp_path):
    from anomaly.recordings.limits import stamps_sha256
    from anomaly.recordings.reading import read_recording
    from anomaly.recordings.segment import SegmentOptions

    base = good_recording(tmp_path)
    original = b"".join(Path(f"{base}{suffix}").read_bytes() for suffix in (".hea", ".dat"))
    recording = read_recording(base, SegmentOptions())
    with open(f"{base}.dat", "ab") as file:
        file.write(bytes(3000))
    assert stamps_sha256(recording.files) == hashlib.sha256(original).hexdigest()



def test_any_library_warning_is_one_line_once(capsys):
    """What a library warns (wfdb, neurokit2, scipy) is one line of the chosen format,
    said once however often it is raised, not Python's two lines with the source."""
    import warnings

    from anomaly import logs

    logs.configure("json")
    saved = warnings.showwarning
    try:
        logs.route_warnings()
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            for _ in range(3):
                warnings.warn("invalid value encountered\nin divide", RuntimeWarning)
    finally:
        warnings.showwarning = saved
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert json.loads(lines[0])["message"] == ("Warning: invalid value encountered "
                                               "(RuntimeWarning)")


def test_threads_setting_warnings_aside_at_once_leave_the_process_s_warnings_as_they_were():
    """The service reads recordings and streams in several threads, each setting aside
    the warnings of an EDF header or a flat stretch: whatever their order, the process's
    filters and the function that shows a warning are what they were (unguarded,
    ``warnings.catch_warnings`` in two threads puts back what the other set)."""
    import warnings

    from anomaly import logs

    filters, shown = list(warnings.filters), warnings.showwarning
    recorded: list[int] = []

    def set_aside(record: bool) -> None:
        for _ in range(200):
            with logs.set_aside_warnings(record=record) as caught:
                time.sleep(0.0005)  # Inside while the other thread comes and goes.
                warnings.warn("from inside", RuntimeWarning)
                recorded.append(len(caught))

    threads = [threading.Thread(target=set_aside, args=(record,)) for record in (True, False)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert warnings.filters == filters and warnings.showwarning is shown
    # Each recording block saw its own warning, once: none went to another's list.
    assert recorded.count(1) == 200 and recorded.count(0) == 200
