"""What the hostile-input tests share: run ``anomaly`` in a real process and measure its
peak memory, picture a directory before and after, check a refusal; and the hostile
recordings, built here for the tests and for ``scripts/benchmark_hostile.py`` alike."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from anomaly.exceptions import EXIT_BAD_INPUT

from conftest import assert_one_line_error

ANOMALY = [sys.executable, "-m", "anomaly"]
#: A small process that runs a command and writes its peak RSS (KB) to the file argv[1].
MEASURE = ("import os, sys\n"
           "pid = os.fork()\n"
           "if pid == 0:\n"
           "    os.execv(sys.argv[2], sys.argv[2:])\n"
           "_, status, usage = os.wait4(pid, 0)\n"
           "open(sys.argv[1], 'w').write(str(usage.ru_maxrss))\n"
           "sys.exit(os.waitstatus_to_exitcode(status) % 256)\n")
#: The streaming budget every hostile input must stay under (peak RSS of the process).
MEMORY_BUDGET_MB = 1500


class Finished:
    """A finished ``anomaly`` process: exit code, output, and peak RSS in MB."""

    def __init__(self, code: int, stdout: str, stderr: str, peak_mb: float):
        self.code, self.stdout, self.stderr, self.peak_mb = code, stdout, stderr, peak_mb


def anomaly(*args, cwd: Path, stdin=None, preexec_fn=None, timeout: float = 300) -> Finished:
    """Run ``anomaly ARGS`` in a new process and measure its peak RSS.

    Through a small launcher (:data:`MEASURE`), not ``os.wait4`` on a child of this
    process: Linux charges a child the memory its parent had when it forked, until the
    new program starts, and this process holds TensorFlow.
    """
    out, err, rss = cwd / ".out.txt", cwd / ".err.txt", cwd / ".rss.txt"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        completed = subprocess.run([sys.executable, "-c", MEASURE, str(rss), *ANOMALY,
                                    *(str(arg) for arg in args)], cwd=cwd,
                                   stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                   stdout=stdout, stderr=stderr, preexec_fn=preexec_fn,
                                   timeout=timeout)
    peak_kb = int(rss.read_text())
    finished = Finished(completed.returncode, out.read_text(errors="replace"),
                        err.read_text(errors="replace"), peak_kb / 1024)
    for path in (out, err, rss):
        path.unlink()
    return finished


#: Files larger than this (the sparse gigabytes of the hostile recordings) are pictured by
#: their size and change time instead of their hash: the kernel sets a file's ctime on any
#: write, and no process can set it back.
HASHED_BYTES = 64 << 20


def snapshot(directory: Path) -> dict[str, object]:
    """What every entry below ``directory`` is: a file's SHA-256 (a large file's size and
    change time), a link's target, a device or FIFO's kind. Files of the runner itself
    (``.out.txt``) are left out."""
    found: dict[str, object] = {}
    for path in sorted(directory.rglob("*")):
        name = str(path.relative_to(directory))
        if name in (".out.txt", ".err.txt", ".rss.txt"):
            continue
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            found[name] = ("link", os.readlink(path))
        elif stat.S_ISREG(info.st_mode) and info.st_size > HASHED_BYTES:
            found[name] = ("large", info.st_size, info.st_mtime_ns, info.st_ctime_ns)
        elif stat.S_ISREG(info.st_mode):
            found[name] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[name] = stat.S_IFMT(info.st_mode)
    return found


def started_writing(cwd: Path, *args: str) -> subprocess.Popen:
    """``anomaly ARGS`` started in ``cwd`` (stderr piped), once it has begun writing an
    output in ``cwd/out`` (a temporary file there): the moment to interrupt it."""
    process = subprocess.Popen(ANOMALY + list(args), cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(path.name.endswith(".tmp") for path in (cwd / "out").iterdir()):
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.02)
    return process


def refused(finished: Finished, *fragments: str, code: int = EXIT_BAD_INPUT) -> None:
    assert finished.code == code, finished.stderr
    assert_one_line_error(finished.stderr, *fragments)


# -- hostile recordings ----------------------------------------------------------------------

#: The rate of the hostile recordings' good original.
RECORDING_FS = 360


def good_recording(directory: Path, name: str = "rec", seconds: int = 120) -> Path:
    """A two-lead WFDB record (format 212) of a simulated ECG, with beat annotations."""
    import neurokit2 as nk
    import wfdb
    from wfdb.processing import XQRS

    signal = nk.ecg_simulate(duration=seconds, sampling_rate=RECORDING_FS, heart_rate=70,
                             method="simple", random_state=0)
    wfdb.wrsamp(name, fs=RECORDING_FS, units=["mV", "mV"], sig_name=["MLII", "V1"],
                p_signal=np.column_stack([signal, -0.5 * signal]), fmt=["212", "212"],
                write_dir=str(directory))
    detector = XQRS(signal, RECORDING_FS)
    detector.detect(verbose=False)
    peaks = np.asarray(detector.qrs_inds)
    wfdb.wrann(name, "atr", peaks, symbol=["N"] * len(peaks), write_dir=str(directory))
    return directory / name


def _variant(directory: Path, name: str, header: str, *, dat: bytes | int | None = None,
             atr: bytes | None = None) -> Path:
    """A record ``name`` whose header is ``header`` (written for ``rec``), with the good
    record's signal file, or ``dat`` bytes, or a sparse signal file of ``dat`` bytes."""
    good = directory / "rec"
    (directory / f"{name}.hea").write_text(header.replace("rec.dat", f"{name}.dat")
                                           .replace("rec ", f"{name} ", 1))
    if dat is None:
        shutil.copy(f"{good}.dat", directory / f"{name}.dat")
    elif isinstance(dat, bytes):
        (directory / f"{name}.dat").write_bytes(dat)
    else:
        with open(directory / f"{name}.dat", "wb") as file:
            file.truncate(dat)
    if atr is not None:
        (directory / f"{name}.atr").write_bytes(atr)
    return directory / name


def _edf_variant(directory: Path, name: str, good: bytes,
                 fields: dict[tuple[int, int], str]) -> Path:
    """The good EDF file with header fields (byte offset, width) set to values (bytes as
    latin-1, as EDF headers are ASCII and a hostile one is anything)."""
    data = bytearray(good)
    for (start, width), value in fields.items():
        data[start:start + width] = value.ljust(width).encode("latin-1")
    path = directory / f"{name}.edf"
    path.write_bytes(bytes(data))
    return path


def hostile_recordings(directory: Path) -> dict[str, tuple[list[str], str, int]]:
    """Hostile recordings written into ``directory`` beside a good one (``rec``): case ->
    (``anomaly beats`` arguments, what its stderr must hold (one ``Error:`` line, or for a
    valid input one warning line, or nothing: ``""``), its exit code)."""
    import edfio

    base = good_recording(directory)
    header = Path(f"{base}.hea").read_text()
    one_signal = "rec 1 360 43200\nrec.dat 16 200 12 0 0 0 0 MLII\n"
    signals = "".join(f"many.dat 16 200 12 0 0 0 0 S{i}\n" for i in range(20_000))
    (directory / "many.hea").write_text(f"many 20000 360 1000\n{signals}")
    (directory / "many.dat").write_bytes(b"")
    with open(directory / "huge.hea", "wb") as file:
        file.write(header.replace("rec ", "huge ", 1).encode())
        file.truncate(1 << 30)
    os.mkfifo(directory / "fifo.hea")
    times = np.arange(60 * RECORDING_FS) / RECORDING_FS
    rows = [f"{t:.4f},{v:.4f}\n" for t, v in zip(times, np.sin(times * 7))]
    gap = 20 * RECORDING_FS
    (directory / "blank.csv").write_text("time,MLII\n" + "".join(rows[:gap]) + "\n" * 3600
                                         + "".join(rows[gap:]))
    (directory / "jump.csv").write_text("time,MLII\n" + "".join(rows[:gap]) + "".join(
        f"{t + 10:.4f},{v:.4f}\n" for t, v in zip(times[gap:], np.sin(times[gap:] * 7))))
    (directory / "back.csv").write_text("time,MLII\n" + "".join(rows[:gap]) + "".join(
        f"{t - 5:.4f},{v:.4f}\n" for t, v in zip(times[gap:], np.sin(times[gap:] * 7))))
    sine = np.sin(np.arange(120 * 360) / 50)
    edfio.Edf([edfio.EdfSignal(sine, sampling_frequency=360, label="MLII",
                               physical_range=(-5, 5))]).write(directory / "good.edf")
    good_edf = (directory / "good.edf").read_bytes()
    edfio.Edf([edfio.EdfSignal(sine, sampling_frequency=360, label="MLII",
                               physical_range=(-5, 5))],
              annotations=[edfio.EdfAnnotation(0, None, "start")]).write(
        directory / "annotated.edf")
    annotated_edf = (directory / "annotated.edf").read_bytes()
    header_bytes, records, duration, count = (184, 8), (236, 8), (244, 8), (252, 4)
    # The first signal's fields: after the label (16), transducer (80) and unit (8).
    physical_min, physical_max, samples_per_record = (256 + 104, 8), (256 + 112, 8), \
        (256 + 216, 8)

    def record(name: str, text: str, **files) -> Path:
        return _variant(directory, name, text, **files)


    def edf(name: str, fields: dict[tuple[int, int], str]) -> Path:
        return _edf_variant(directory, name, good_edf, fields)

    def annotated(name: str, samples: int, records: int, declared: int | None = None,
                  fill: bytes | None = None) -> Path:
        """The EDF+ file whose annotation signal (the second of two) has ``samples`` a
        data record, over ``records`` records (its header says ``declared``, by default
        as many): a sparse file of that size, a few KB on disk, whose annotations edfio
        would read whole; the first record's annotations ``fill`` repeated, if given."""
        count = records if declared is None else declared
        path = _edf_variant(directory, name, annotated_edf,
                            {(256 + 2 * 216 + 8, 8): str(samples), (236, 8): str(count)})
        with open(path, "r+b") as file:
            file.truncate(256 * 3 + records * 2 * (360 + samples))
            if fill is not None:
                file.seek(256 * 3 + 2 * 360)
                file.write((fill * (2 * samples // len(fill) + 1))[:2 * samples])
        return path

    frames = "rec 2 10000 100000\n" + "".join(f"rec.dat 212x2000 200 12 0 0 0 0 {lead}\n"
                                              for lead in ("MLII", "V1"))
    days = "rec 1 360 5000000000\nrec.dat 16 200 12 0 0 0 0 MLII\n"
    with_atr = "--annotations", "atr"
    cases = {
        "skew of 10^9 samples": (record("skew", header.replace(" 212 ", " 212:1000000000 ")),
                                 "skew of 1,000,000,000 samples"),
        "2000 samples per frame over a sparse 720 MB file": (
            record("frames", frames, dat=720_000_000), "2000 samples per frame"),
        "byte offset of 10^11": (record("offset", header.replace(" 212 ", " 212+99999999999 ")),
                                 "truncated"),
        "160 days over a sparse 10 GB file": (record("long", days, dat=10_000_000_000),
                                              "at most 31 days"),
        "20,000 signals": (directory / "many", "at most 256"),
        "a sparse 1 GB header": (directory / "huge.hea", "a WFDB header of at most"),
        "a FIFO for a header": (directory / "fifo.hea", "not a regular file"),
        "sampling rate -360": (record("negative", header.replace("rec 2 360", "rec 2 -360")),
                               "sampling rate of -360 Hz"),
        "sampling rate nan": (record("nan", header.replace("rec 2 360", "rec 2 nan")),
                              "sampling rate of nan Hz"),
        "format 508 (FLAC)": (record("flac", one_signal.replace(" 16 ", " 508 ")),
                              "format 508 (FLAC), which is not read"),
        "annotations: 10 MB of zeros": ([record("zeros", header, atr=bytes(10_000_000)),
                                         *with_atr], "annotation file of at most"),
        "annotations: 60 KB of zeros": ([record("fewzeros", header, atr=bytes(60_000)),
                                         *with_atr], "no beat annotations"),
        "annotations of another record": (
            [record("other", header.replace("43200", "4320")), *with_atr],
            "outside its record"),
        "EDF: 10^8 records declared, 120 held": (edf("records", {records: "99999999"}), None),
        "EDF: record duration nan": (edf("nan", {duration: "nan"}), "duration 'nan'"),
        # Refused by its values a second, before the rate of its one signal is read.
        "EDF: record duration 1e-300": (edf("tiny", {duration: "1e-300"}),
                                        "3.6e+302 a second; at most 200,000 values a second are read"),
        "EDF: 9999 signals": (edf("signals", {count: "9999"}), "1 to 256 are read"),
        "EDF: 10^8 samples per record": (edf("samples", {samples_per_record: "99999999"}),
                                         "declares data records of 199,999,998 bytes"),
        # edfio read an EDF+ file's annotation signal whole: 6.3 GB from 68 KB on disk.
        "EDF+: 10^8 annotation samples a 1 s record over a sparse 3 GB file": (
            annotated("annotations", 99_999_999, 15),
            "100,000,359 values a data record of 1 s"),
        "EDF+: 300 MB of annotations over a sparse file": (
            annotated("manyannotations", 150_000, 1000), "300,000,000 bytes of annotations"),
        # edfio's is_continuous parsed them in time that grows with the square of a
        # record's annotations: 256 KB took 102 s.
        "EDF+: 256 KB of unending annotations in one record": (
            annotated("unending", 131_072, 120, fill=b"+0\x14"), ""),
        # edfio reads the records the file holds whatever the header declares.
        "EDF+: 72 MB of annotations, 1 record declared": (
            annotated("fewdeclared", 60_000, 600, declared=1),
            "72,000,000 bytes of annotations"),
    }
    cases |= {
        "signal CSV: 3,600 blank lines (a 10 s gap)": (directory / "blank.csv",
                                                       "line 7,202 has no number"),
        "signal CSV: time jumps 10 s ahead": (directory / "jump.csv", "line 7,202: the time "
                                              "column jumps from 19.9972 s to 30 s"),
        "signal CSV: time goes 5 s back": (directory / "back.csv", "line 7,202: the time "
                                           "column goes back"),
    }
    (directory / "huge.csv").write_text("time,MLII\n" + "".join(
        f"{t:.4f},{1e300 * v:.4e}\n" for t, v in zip(times, np.sin(times * 7))))
    (directory / "bom.csv").write_text("time,V1\n" + "".join(rows), encoding="utf-8-sig")
    cases |= {
        "a superscript digit as the signal count": (
            record("superscript", header.replace("rec 2 360", "rec 2\u00b2 360")),
            "not a WFDB header"),
        "a negative skew (212:-5), which wfdb reads as a gain": (
            record("negskew", header.replace(" 212 ", " 212:-5 ")), "format field '212:-5'"),
        "EDF: a superscript digit as the signal count": (
            edf("superscript", {count: "\u00b9"}), "one of too many signals"),
        "EDF: header size 256 declared, 512 held": (
            edf("headersize", {header_bytes: "256"}), "its header declares '256' bytes"),
        "EDF: physical range of +-1e300": (
            edf("range", {physical_min: "-1e300", physical_max: "1e300"}),
            "not an ECG's value"),
        "EDF: physical minimum = maximum": (
            edf("flat", {physical_min: "5", physical_max: "5"}),
            "physical range 5 to 5 is not one"),
        "signal CSV: values of 1e300": (directory / "huge.csv", "not an ECG's value"),
        "--from 1e308": ([base, "--from", "1e308"], "past the end of any recording"),
        "--lead \u00b2": ([base, "--lead", "\u00b2"], "no lead '\u00b2'"),
    }
    # A signal line's fields as wfdb would misread them, or that no signal can have.
    for case, name, old, new, message in (
            ("a gain of 1e-320", "gain", " 16 200 ", " 16 1e-320 ",
             "gain field '1e-320' is not a usable ADC gain"),
            ("a baseline of 10^30", "baseline", " 16 200 ", " 16 200(1" + "0" * 30 + ") ",
             "baseline 10000"),
            ("a baseline of 5,000 digits", "longbase", " 16 200 ", " 16 200(1" + "0" * 5000 + ") ",
             "baseline 10000"),
            ("a checksum field that is not a number", "checksum", " 12 0 0 0 0 ",
             " 12 0 0 abc xyz 0 ", "signal line 1: checksum field 'abc' is not an integer"),
            ("a negative ADC resolution, which wfdb reads as the zero", "resolution",
             " 12 0 0 0 0 ", " -12 0 0 0 0 ",
             "signal line 1: ADC resolution field '-12' is not a count"),
            ("a baseline with a plus sign, which wfdb reads as none", "plus", " 16 200 ",
             " 16 200(+5)/mV ", "gain field '200(+5)/mV' is not a usable ADC gain"),
            ("a gain of 2E2, which wfdb reads as 2", "upper", " 16 200 ", " 16 2E2(0)/mV ",
             "gain field '2E2(0)/mV' is not a usable ADC gain"),
            ("a unit of a.u., which wfdb reads as a and a name", "unit", " 16 200 ",
             " 16 200(0)/a.u. ", "unit 'a.u.' holds characters wfdb does not read"),
            ("one signal declared, two signal lines", "morelines", " MLII\n",
             " MLII\nrec.dat 16 200 12 0 0 0 0 V1\n", "declares 1 signal but has 2 signal lines"),
            ("a checksum of 5,000 digits", "longsum", " 12 0 0 0 0 ",
             " 12 0 0 " + "9" * 5000 + " 0 ", "checksum field '9999"),
            ("two signals declared, one signal line", "fewlines", "rec 1 360", "rec 2 360",
             "declares 2 signals but has 1 signal line")):
        cases[case] = (record(name, one_signal.replace(old, new)), message)
    valid = {"EDF: 10^8 records declared, 120 held": "records.edf: EDF header indicates",
             "signal CSV with a byte-order mark": "",
             "EDF+: 256 KB of unending annotations in one record": ""}
    cases["signal CSV with a byte-order mark"] = (directory / "bom.csv", "")
    shutil.copy(f"{base}.atr", directory / "other.atr")
    return {case: ([str(arg) for arg in (args if isinstance(args, list) else [args])],
                   valid.get(case, fragment), 0 if case in valid else 2)
            for case, (args, fragment) in cases.items()}
