#!/usr/bin/env python
"""Benchmark on the MIT-BIH Arrhythmia Database (48 half-hour records, 360 Hz).

Part ``peaks`` measures R-peak detectors. Each candidate of :data:`DETECTORS` (name ->
``function(signal, fs) -> sample indices``) runs on the MLII lead of each non-paced record
(44: 102, 104, 107 and 217 are paced, and 102 and 104 have no MLII), over the whole
record, ends included. Its peaks are matched one-to-one to the reference beats of the
``.atr`` file (the symbols of :data:`BEAT_SYMBOLS`) by
``wfdb.processing.compare_annotations``, within 150 ms (|detected - reference| <= 54
samples). Printed as markdown:

- per detector, pooled over the records: sensitivity Se = TP/(TP+FN), positive
  predictivity +P = TP/(TP+FP), the worst record's Se and +P, +P when the ventricular
  flutter episodes (between ``[`` and ``]``, only in record 207) are left out as ANSI/AAMI
  EC57 does, Se on the ventricular ectopic beats (V, E), seconds per record on this
  machine (pre-filter included, reading not), and the median and 95th percentile of
  |detected - reference| and the median of detected - reference over the matched beats
  (ms): the tool cuts a fixed window around each R peak, so peaks must sit on the R wave
  consistently;
- the same after each refinement of :data:`REFINEMENTS`, for the detectors of
  :data:`REFINED`;
- for the chosen pipeline :data:`CHOSEN` (:func:`detect_r_peaks`), chunked detection as the
  tool streams long recordings (300 s chunks, each read with 10 s more on either side,
  peaks kept in the chunk's own 300 s) against whole-record detection;
- for the chosen pipeline, record by record.

``main`` dispatches ``--parts`` to :data:`PARTS`, one function per part (``patient`` and
``inter`` are to come).

Usage::

    python scripts/benchmark_mitdb.py [--data DIR] [--records 100,108] [--detectors GLOBS]
        [--jobs N] [--json PATH] [--parts peaks]

The tables of /tmp/peaks/results.md came from, in the project root (all detectors, 56 min
with 2 jobs; then the chosen detector alone, 3.5 min)::

    .venv/bin/python scripts/benchmark_mitdb.py --jobs 2 --json /tmp/peaks/results_run1.json
    .venv/bin/python scripts/benchmark_mitdb.py --detectors 'nk khamis2016 / raw' --jobs 2 \\
        --json /tmp/peaks/results_chosen.json
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import neurokit2
import numpy as np
import scipy.signal
import sleepecg
import wfdb
from wfdb import processing
from wfdb.io.annotation import ann_labels, is_qrs

#: Records with a pacemaker, left out as usual (102 and 104 have no MLII lead either).
PACED = frozenset({"102", "104", "107", "217"})
LEAD = "MLII"
#: wfdb's own list of QRS (beat) labels, less "!" (ventricular flutter wave), which it
#: counts as QRS but which is no beat: N L R a V F J A S E j / Q B ? e n f r.
BEAT_SYMBOLS = frozenset(label.symbol for label in ann_labels if is_qrs[label.label_store]) - {"!"}
VENTRICULAR = ("V", "E")  # AAMI's ventricular ectopic beats.
TOLERANCE_S = 0.150
SLOW_S = 60.0  # A detector slower than this on some record is flagged as too slow.

Detector = Callable[[np.ndarray, float], np.ndarray]


# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------
@dataclass
class Record:
    name: str
    signal: np.ndarray  # The MLII lead, mV.
    fs: float
    beats: np.ndarray  # Sample indices of the reference beats.
    symbols: np.ndarray  # Their annotation symbols.
    flutter: list[tuple[int, int]]  # Ventricular flutter episodes, [ to ] (samples).


def default_data_dir() -> Path | None:
    """``$ANOMALY_DATA_DIR/mitdb``, the download cache, then ``../shared/data/mitdb``."""
    try:
        from anomaly.datasets import find_mitdb

        return find_mitdb()
    except ImportError:  # Run outside the package's environment.
        candidates = [Path(os.environ.get("ANOMALY_DATA_DIR", "")) / "mitdb",
                      Path("..") / "shared" / "data" / "mitdb"]
    return next((path for path in candidates if (path / "RECORDS").is_file()), None)


def record_names(data_dir: Path) -> list[str]:
    """The records of ``RECORDS`` without a pacemaker (44)."""
    return [name for name in (data_dir / "RECORDS").read_text().split() if name not in PACED]


def add_record_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data``, ``--records``, ``--jobs`` and ``--json``, as every MIT-BIH benchmark
    takes them."""
    parser.add_argument("--data", type=Path, default=None,
                        help="MIT-BIH directory (default: $ANOMALY_DATA_DIR/mitdb, the download "
                             "cache, then ../shared/data/mitdb)")
    parser.add_argument("--records", default=None,
                        help="comma-separated record names (default: the 44 non-paced ones)")
    parser.add_argument("--jobs", type=int, default=1, help="records run in parallel")
    parser.add_argument("--json", type=Path, default=None, help="save the results here")


def records_asked(args: argparse.Namespace) -> tuple[Path, list[str]] | None:
    """The MIT-BIH directory and the records the arguments ask for; None (said on stderr)
    when MIT-BIH is not found."""
    data = args.data or default_data_dir()
    if data is None or not (data / "RECORDS").is_file():
        print("MIT-BIH not found: pass --data or set ANOMALY_DATA_DIR", file=sys.stderr)
        return None
    return data, (args.records.split(",") if args.records else record_names(data))


def load_record(data_dir: Path, name: str) -> Record:
    record = wfdb.rdrecord(str(data_dir / name), channel_names=[LEAD])
    if record.p_signal is None or record.p_signal.shape[1] != 1:
        raise ValueError(f"record {name} has no {LEAD} lead")
    annotation = wfdb.rdann(str(data_dir / name), "atr")
    symbols = np.asarray(annotation.symbol)
    is_beat = np.isin(symbols, sorted(BEAT_SYMBOLS))
    flutter = list(zip(annotation.sample[symbols == "["], annotation.sample[symbols == "]"]))
    return Record(name, record.p_signal[:, 0], float(record.fs), annotation.sample[is_beat],
                  symbols[is_beat], flutter)


# ---------------------------------------------------------------------------------------
# Pre-filters and detectors
# ---------------------------------------------------------------------------------------
def bandpass(signal: np.ndarray, fs: float, low: float = 0.5, high: float = 40.0) -> np.ndarray:
    """Zero-phase Butterworth band-pass (order 3, run forward and backward)."""
    sos = scipy.signal.butter(3, [low, high], btype="bandpass", fs=fs, output="sos")
    return scipy.signal.sosfiltfilt(sos, signal)


def sleepecg_peaks(signal: np.ndarray, fs: float) -> np.ndarray:
    return sleepecg.detect_heartbeats(signal, fs)


def xqrs_peaks(signal: np.ndarray, fs: float) -> np.ndarray:
    return processing.xqrs_detect(signal, fs, verbose=False)


def neurokit_peaks(method: str) -> Detector:
    def detect(signal: np.ndarray, fs: float) -> np.ndarray:
        return neurokit2.ecg_peaks(signal, sampling_rate=fs, method=method)[1]["ECG_R_Peaks"]

    return detect


def neurokit_clean(method: str) -> Callable[[np.ndarray, float], np.ndarray]:
    def clean(signal: np.ndarray, fs: float) -> np.ndarray:
        return neurokit2.ecg_clean(signal, sampling_rate=fs, method=method)

    return clean


def prefiltered(detect: Detector, prefilter) -> Detector:
    return lambda signal, fs: detect(prefilter(signal, fs), fs)


#: neurokit2.ecg_peaks methods -> the ecg_clean method made for them (None where ecg_clean
#: returns its input unchanged, or has no method of that name).
NEUROKIT_METHODS = {
    "neurokit": "neurokit",
    "pantompkins1985": "pantompkins1985",
    "hamilton2002": "hamilton2002",
    "elgendi2010": "elgendi2010",
    "elgendi2013": "elgendi2013",
    "engzeemod2012": "engzeemod2012",
    "gamboa2008": "gamboa2008",
    "kalidas2017": None,
    "rodrigues2021": None,
    "nabian2018": None,
    "manikandan2012": None,
    "khamis2016": None,
    "martinez2004": None,
}
#: Slow methods (15-60 s a record here): run on their own input only.
NEUROKIT_SLOW = {"christov2004": "raw", "zong2003": "raw", "promac": "ecg_clean"}
NO_BANDPASS = {"engzeemod2012"}  # Slow too (15-25 s a record): raw and ecg_clean only.


def build_detectors() -> dict[str, Detector]:
    """Every candidate, named ``"library method / input"``: input ``raw``, ``ecg_clean``
    (neurokit2's cleaning for that method; ``neurokit``'s for promac) or ``bp`` (0.5-40 Hz
    band-pass). emrich2023 is left out: it needs ts2vg, not installed."""
    detectors: dict[str, Detector] = {}
    for name, detect in (("sleepecg", sleepecg_peaks), ("wfdb xqrs", xqrs_peaks)):
        detectors[f"{name} / raw"] = detect
        detectors[f"{name} / bp"] = prefiltered(detect, bandpass)
    for method, clean in NEUROKIT_METHODS.items():
        detect = neurokit_peaks(method)
        detectors[f"nk {method} / raw"] = detect
        if clean:
            detectors[f"nk {method} / ecg_clean"] = prefiltered(detect, neurokit_clean(clean))
        if method not in NO_BANDPASS:
            detectors[f"nk {method} / bp"] = prefiltered(detect, bandpass)
    for method, given in NEUROKIT_SLOW.items():
        detect = neurokit_peaks(method)
        if given == "ecg_clean":
            detect = prefiltered(detect, neurokit_clean("neurokit"))
        detectors[f"nk {method} / {given}"] = detect
    return detectors


DETECTORS = build_detectors()


# ---------------------------------------------------------------------------------------
# Refinements, the chosen pipeline, chunks
# ---------------------------------------------------------------------------------------
def as_peaks(peaks, length: int) -> np.ndarray:
    """Sorted, unique, in-range integer sample indices."""
    peaks = np.unique(np.asarray(peaks, dtype=np.int64))
    return peaks[(peaks >= 0) & (peaks < length)]


def refine_abs_max(signal: np.ndarray, fs: float, peaks: np.ndarray, radius_s=0.05) -> np.ndarray:
    """Move each peak to the largest |band-passed signal| within +-radius_s (either polarity,
    beat by beat)."""
    if len(peaks) == 0:
        return peaks
    magnitude = np.abs(bandpass(signal, fs))
    radius = round(radius_s * fs)
    window = np.clip(peaks[:, None] + np.arange(-radius, radius + 1), 0, len(signal) - 1)
    return window[np.arange(len(peaks)), np.argmax(magnitude[window], axis=1)]


def refine_correct_peaks(signal: np.ndarray, fs: float, peaks: np.ndarray, radius_s=0.05):
    """``wfdb.processing.correct_peaks`` on the band-passed signal: every peak moved to the
    local max, or to the local min when the signal's peaks are larger downwards (one
    polarity for the whole signal), within +-radius_s."""
    if len(peaks) == 0:
        return peaks
    return processing.correct_peaks(bandpass(signal, fs), peaks, search_radius=round(radius_s * fs),
                                    smooth_window_size=round(0.4 * fs), peak_dir="compare")


REFINEMENTS = {
    "abs max ±25 ms": lambda signal, fs, peaks: refine_abs_max(signal, fs, peaks, 0.025),
    "abs max ±50 ms": refine_abs_max,
    "correct_peaks ±50 ms": refine_correct_peaks,
}
#: Detectors also scored after each refinement: the three best, and sleepecg.
REFINED = ("nk khamis2016 / raw", "nk neurokit / raw", "wfdb xqrs / raw", "sleepecg / raw")
#: The pipeline the tool uses (detector, refinement), as :func:`detect_r_peaks`.
CHOSEN = ("nk khamis2016 / raw", "abs max ±25 ms")
CHOSEN_NAME = " → ".join(CHOSEN)


def detect_r_peaks(signal: np.ndarray, fs: float) -> np.ndarray:
    """The chosen pipeline, as the tool runs it (:func:`anomaly.recordings.peaks.
    detect_r_peaks`): neurokit2's UNSW detector (Khamis et al. 2016) on the raw lead, then
    each peak moved to the largest |0.5-40 Hz band-passed signal| within +-25 ms."""
    from anomaly.recordings.filters import band_pass
    from anomaly.recordings.peaks import detect_r_peaks as tool_detector

    return as_peaks(tool_detector(signal, fs, band_pass(signal, fs)), len(signal))


def detect_chunked(detect: Detector, signal: np.ndarray, fs: float, chunk_s: float = 300.0,
                   overlap_s: float = 10.0) -> np.ndarray:
    """Detect chunk by chunk as the tool streams: each chunk read with ``overlap_s`` more on
    either side, its peaks kept only inside the chunk itself."""
    chunk, overlap, kept = round(chunk_s * fs), round(overlap_s * fs), []
    for start in range(0, len(signal), chunk):
        stop = min(start + chunk, len(signal))
        begin, end = max(0, start - overlap), min(len(signal), stop + overlap)
        peaks = as_peaks(detect(signal[begin:end], fs), end - begin) + begin
        kept.append(peaks[(peaks >= start) & (peaks < stop)])
    return np.concatenate(kept)


# ---------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------
def compare(reference: np.ndarray, peaks: np.ndarray, fs: float):
    """``compare_annotations`` within TOLERANCE_S; None when there is nothing to compare."""
    if len(reference) == 0 or len(peaks) == 0:
        return None
    # It matches when |difference| < window: + 1 makes that <= 150 ms (54 samples at 360 Hz).
    comparison = processing.compare_annotations(reference, peaks, round(TOLERANCE_S * fs) + 1)
    comparison.compare()
    return comparison


def outside(samples: np.ndarray, episodes: list[tuple[int, int]]) -> np.ndarray:
    keep = np.ones(len(samples), dtype=bool)
    for start, stop in episodes:
        keep &= (samples < start) | (samples > stop)
    return keep


def score(record: Record, peaks: np.ndarray, seconds: float) -> dict:
    """Counts of one detector on one record, and the signed offsets (samples) of its
    matched beats."""
    comparison = compare(record.beats, peaks, record.fs)
    missed = (np.arange(len(record.beats)) if comparison is None
              else comparison.unmatched_ref_inds)
    tp = len(record.beats) - len(missed)
    row = {"tp": tp, "fn": len(missed), "fp": len(peaks) - tp, "seconds": seconds,
           "ventricular": int(np.isin(record.symbols, VENTRICULAR).sum()),
           "ventricular_missed": int(np.isin(record.symbols[missed], VENTRICULAR).sum()),
           "offsets": np.zeros(0, dtype=np.int64) if comparison is None else
           (comparison.matched_test_sample - comparison.matched_ref_sample).astype(np.int64)}
    row["tp_ec57"], row["fp_ec57"] = row["tp"], row["fp"]
    if record.flutter:  # EC57 leaves ventricular flutter out: score again without it.
        beats, kept = record.beats[outside(record.beats, record.flutter)], \
            peaks[outside(peaks, record.flutter)]
        again = compare(beats, kept, record.fs)
        row["tp_ec57"] = 0 if again is None else again.tp
        row["fp_ec57"] = len(kept) - row["tp_ec57"]
    return row


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def evaluate_record(data_dir: Path, name: str, detector_names: list[str]) -> dict:
    """Every detector (then the refinements, then the chosen one chunked) on one record."""
    warnings.filterwarnings("ignore")  # neurokit2's chatter.
    record = load_record(data_dir, name)
    signal, fs = record.signal, record.fs
    results, kept = {}, {}
    for detector in detector_names:
        try:  # promac prints its failing sub-detectors: keep stdout for the tables.
            with contextlib.redirect_stdout(sys.stderr):
                peaks, seconds = timed(DETECTORS[detector], signal, fs)
        except Exception as error:  # noqa: BLE001 - a crash is a result too.
            results[detector] = {"error": f"{type(error).__name__}: {error}"}
            continue
        peaks = as_peaks(peaks, len(signal))
        results[detector] = score(record, peaks, seconds)
        if detector in REFINED:
            for refinement, refine in REFINEMENTS.items():
                moved, extra = timed(refine, signal, fs, peaks)
                name_refined = f"{detector} → {refinement}"
                kept[name_refined] = moved = as_peaks(moved, len(signal))
                results[name_refined] = score(record, moved, seconds + extra)
    if CHOSEN_NAME in kept:
        chunked, seconds = timed(detect_chunked, detect_r_peaks, signal, fs)
        chunked, whole = as_peaks(chunked, len(signal)), kept[CHOSEN_NAME]
        results[f"{CHOSEN_NAME}, chunked"] = score(record, chunked, seconds) | {
            "only_whole": len(np.setdiff1d(whole, chunked)),
            "only_chunked": len(np.setdiff1d(chunked, whole)),
        }
    beats_down = float(np.mean(bandpass(signal, fs)[record.beats] < 0))
    return {"record": name, "fs": fs, "beats": len(record.beats), "beats_down": beats_down,
            "results": results}


# ---------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------

@dataclass
class Run:
    """Every record's result (in the order asked), the wall time, and the 1-minute load
    average before and after."""

    records: list[dict]
    wall: float
    load_average: tuple[float, float]


def run_per_record(evaluate, names: list[str], jobs: int, data: Path, **options) -> Run:
    """``evaluate(data, name, **options)`` for each record name, ``jobs`` at a time, each
    said on stderr as it is done. ``evaluate`` returns ``{"record": name, "results":
    {key: row}}``, a row holding ``"error"`` where it crashed."""
    load_before, started = os.getloadavg()[0], time.perf_counter()
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(evaluate, data, name, **options) for name in names]
        records = []
        for future in futures:
            records.append(future.result())
            print(f"record {records[-1]['record']} done ({time.perf_counter() - started:.0f} s)",
                  file=sys.stderr, flush=True)
    return Run(records, time.perf_counter() - started, (load_before, os.getloadavg()[0]))


def split_results(records: list[dict]) -> tuple[dict[str, list[dict]], dict[str, list[str]]]:
    """The records' rows by key, and by key the crashes (``"record: error"``)."""
    rows: dict[str, list[dict]] = {}
    errors: dict[str, list[str]] = {}
    for record in records:
        for key, row in record["results"].items():
            if "error" in row:
                errors.setdefault(key, []).append(f"{record['record']}: {row['error']}")
            else:
                rows.setdefault(key, []).append(row)
    return rows, errors

def ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else float("nan")


def summarize(rows: list[dict], fs: float) -> dict:
    """Pooled figures of one detector over the records it ran on."""
    total = {key: sum(row[key] for row in rows) for key in
             ("tp", "fn", "fp", "tp_ec57", "fp_ec57", "ventricular", "ventricular_missed")}
    offsets = np.concatenate([row["offsets"] for row in rows]) * 1000.0 / fs
    magnitude = np.abs(offsets)
    seconds = [row["seconds"] for row in rows]
    summary = total | {
        "records": len(rows),
        "se": ratio(total["tp"], total["tp"] + total["fn"]),
        "ppv": ratio(total["tp"], total["tp"] + total["fp"]),
        "ppv_ec57": ratio(total["tp_ec57"], total["tp_ec57"] + total["fp_ec57"]),
        "se_ventricular": 1 - ratio(total["ventricular_missed"], total["ventricular"]),
        "worst_se": min(ratio(r["tp"], r["tp"] + r["fn"]) for r in rows),
        "worst_ppv": min(ratio(r["tp"], r["tp"] + r["fp"]) for r in rows),
        "seconds_per_record": float(np.mean(seconds)),
        "max_seconds": float(np.max(seconds)),
        "offset_median_ms": float(np.median(magnitude)) if len(offsets) else float("nan"),
        "offset_p95_ms": float(np.percentile(magnitude, 95)) if len(offsets) else float("nan"),
        "offset_signed_median_ms": float(np.median(offsets)) if len(offsets) else float("nan"),
    }
    for key in ("only_whole", "only_chunked"):
        if key in rows[0]:
            summary[key] = sum(row[key] for row in rows)
    return summary


def pooled_table(summaries: dict[str, dict], errors: dict[str, list[str]],
                 n_records: int) -> list[str]:
    lines = ["| detector / input | Se | +P | FN | FP | worst Se | worst +P | +P EC57 | Se V,E | "
             "s/record (max) | median \\|Δ\\| ms | p95 \\|Δ\\| ms | median Δ ms | note |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    ranked = sorted(summaries.items(), key=lambda item: (item[1]["records"] == n_records,
                                                         min(item[1]["se"], item[1]["ppv"])),
                    reverse=True)
    for name, s in ranked:
        notes = ["**chosen**"] if name == CHOSEN_NAME else []
        if s["max_seconds"] > SLOW_S:
            notes.append(f"over {SLOW_S:.0f} s on some record")
        if name in errors:
            failed = ", ".join(failure.split(":")[0] for failure in errors[name])
            notes.append(f"{s['records']} records only: crashed on {failed} "
                         f"({errors[name][0].split(': ', 1)[1]})")
        lines.append(
            f"| {name} | {s['se']:.4f} | {s['ppv']:.4f} | {s['fn']} | {s['fp']} | "
            f"{s['worst_se']:.4f} | {s['worst_ppv']:.4f} | {s['ppv_ec57']:.4f} | "
            f"{s['se_ventricular']:.4f} | {s['seconds_per_record']:.2f} ({s['max_seconds']:.1f}) | "
            f"{s['offset_median_ms']:.1f} | {s['offset_p95_ms']:.1f} | "
            f"{s['offset_signed_median_ms']:+.1f} | {'; '.join(notes)} |")
    for name in sorted(set(errors) - set(summaries)):
        lines.append(f"| {name} | crashed on every record: {errors[name][0]} |" + " |" * 12)
    return lines


def chunked_table(summaries: dict[str, dict]) -> list[str]:
    chunked = f"{CHOSEN_NAME}, chunked"
    lines = ["| detection | Se | +P | TP | FN | FP | s/record | peaks only in whole-record "
             "detection | peaks only in chunked detection |", "|---|---|---|---|---|---|---|---|---|"]
    for label, name in (("whole record", CHOSEN_NAME), ("300 s chunks ± 10 s", chunked)):
        s = summaries[name]
        lines.append(f"| {label} | {s['se']:.4f} | {s['ppv']:.4f} | {s['tp']} | {s['fn']} | "
                     f"{s['fp']} | {s['seconds_per_record']:.2f} | {s.get('only_whole', '')} | "
                     f"{s.get('only_chunked', '')} |")
    return lines


def per_record_table(records: list[dict]) -> list[str]:
    unrefined = CHOSEN[0]
    lines = ["| record | beats | beats down % | TP | FN | FP | Se | +P | median \\|Δ\\| ms | "
             "p95 \\|Δ\\| ms | p95 \\|Δ\\| ms unrefined | chunked FN | chunked FP |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def milliseconds(row, record):
        return np.abs(row["offsets"]) * 1000.0 / record["fs"]

    for record in records:
        row = record["results"].get(CHOSEN_NAME)
        if row is None:
            lines.append(f"| {record['record']} | {record['beats']} | failed |" + " |" * 10)
            continue
        chunked = record["results"].get(f"{CHOSEN_NAME}, chunked", {})
        plain = record["results"][unrefined]
        lines.append(
            f"| {record['record']} | {record['beats']} | {100 * record['beats_down']:.0f} | "
            f"{row['tp']} | {row['fn']} | {row['fp']} | "
            f"{ratio(row['tp'], row['tp'] + row['fn']):.4f} | "
            f"{ratio(row['tp'], row['tp'] + row['fp']):.4f} | "
            f"{np.median(milliseconds(row, record)):.1f} | "
            f"{np.percentile(milliseconds(row, record), 95):.1f} | "
            f"{np.percentile(milliseconds(plain, record), 95):.1f} | "
            f"{chunked.get('fn', '')} | {chunked.get('fp', '')} |")
    return lines


def run_peaks(args) -> dict:
    """Part ``peaks``: R-peak detectors against the reference beats."""
    patterns = args.detectors.split(",")
    names = [name for name in DETECTORS if any(fnmatch.fnmatch(name, p) for p in patterns)]
    run = run_per_record(evaluate_record, args.records, args.jobs, args.data,
                         detector_names=names)
    records, wall, (load_before, load_after) = run.records, run.wall, run.load_average
    rows, errors = split_results(records)
    summaries = {name: summarize(group, records[0]["fs"]) for name, group in rows.items()}
    pooled = {name: s for name, s in summaries.items() if not name.endswith(", chunked")}

    lines = [f"# R-peak detectors on MIT-BIH Arrhythmia: {len(records)} records, lead {LEAD}",
             "", f"Whole records, ends included; match within {TOLERANCE_S * 1000:.0f} ms "
             "(wfdb compare_annotations); Δ = detected - reference over the matched beats; "
             "+P EC57: ventricular flutter episodes of record 207 left out; Se V,E: Se on "
             "the V and E beats; s/record: mean (max) seconds of detection per 30-min record. "
             f"Wall time {wall:.0f} s with {args.jobs} job(s) on {os.cpu_count()} cores, "
             f"1-min load average {load_before:.1f} before and {load_after:.1f} after.",
             "", "## Pooled", ""]
    lines += pooled_table(pooled, errors, len(records))
    if f"{CHOSEN_NAME}, chunked" in summaries:
        lines += ["", f"## Chunked vs whole record: {CHOSEN_NAME}", ""]
        lines += chunked_table(summaries)
    if CHOSEN_NAME in summaries:
        lines += ["", f"## Per record: {CHOSEN_NAME}", "",
                  "beats down: reference beats where the band-passed signal is negative."]
        lines += [""] + per_record_table(records)
    print("\n".join(lines))

    return {
        "wall_seconds": wall, "jobs": args.jobs, "load_average": [load_before, load_after],
        "records": [record["record"] for record in records], "tolerance_s": TOLERANCE_S,
        "chosen": CHOSEN_NAME, "pooled": summaries, "errors": errors,
        "per_record": {record["record"]: {name: {k: v for k, v in row.items() if k != "offsets"}
                                          for name, row in record["results"].items()}
                       for record in records},
    }


# -- detection: patient-specific and inter-patient ---------------------------------------

#: The de Chazal et al. (2004) inter-patient split of the 44 non-paced records.
DS1 = ("101 106 108 109 112 114 115 116 118 119 122 124 201 203 205 207 208 209 215 220 "
       "223 230").split()
DS2 = ("100 103 105 111 113 117 121 123 200 202 210 212 213 214 219 221 222 228 231 232 "
       "233 234").split()
#: Patient-specific protocol: fit on the N beats of the first minutes, score the rest.
TRAIN_SECONDS = 300
#: The k of mean + k x std swept for the threshold.
THRESHOLD_KS = (1.0, 2.0, 3.0, 4.0)
#: Records in the "enough beats" subset: at least this many N training beats and
#: abnormal test beats (the issue's anchor table uses 50 and 20).
MIN_TRAIN_N, MIN_TEST_ABNORMAL = 50, 20


def recording_beats(data: Path, records: list[str]) -> dict:
    """Every record's beats as the tool finds them (its detector, its window), labelled
    with the reference AAMI classes; the seconds it took."""
    from anomaly.recordings.reading import read_recording
    from anomaly.recordings.segment import SegmentOptions

    beats, started = {}, time.perf_counter()
    for record in records:
        read = read_recording(data / record, SegmentOptions(annotations="atr"))
        beats[record] = (read.beats, read.lead.n_samples / read.lead.fs)
    return beats, time.perf_counter() - started


class ReconstructionBaseline:
    """PCA with ``n`` components, scored like the autoencoder: per-beat MAE of the
    reconstruction, threshold mean + k x std of the training errors."""

    def __init__(self, n_components: int = 8):
        self.n_components = n_components

    def fit(self, x):
        from sklearn.decomposition import PCA

        self.pca = PCA(min(self.n_components, len(x) - 1, x.shape[1])).fit(x)
        errors = self.score(x)
        self.mean, self.std = errors.mean(), errors.std()
        return self

    def score(self, x):
        return np.abs(self.pca.inverse_transform(self.pca.transform(x)) - x).mean(axis=1)


def run_methods(train: np.ndarray, test: np.ndarray, seed: int = 0) -> dict:
    """Scores of the test beats and thresholds (per k) of each method, fitted on ``train``.

    ``anomaly``: the tool's detector with its defaults; ``PCA-8``: see
    ReconstructionBaseline; ``LOF``: LocalOutlierFactor(novelty=True) at its own
    threshold (its ``predict``).
    """
    from sklearn.neighbors import LocalOutlierFactor

    from anomaly.model import AutoencoderDetector

    results = {}
    detector = AutoencoderDetector(seed=seed).fit(train)
    results["anomaly"] = (detector.score(test), {k: detector.calibration_.mean + k * detector.calibration_.std
                                                 for k in THRESHOLD_KS})
    pca = ReconstructionBaseline(8).fit(train)
    results["PCA-8"] = (pca.score(test), {k: pca.mean + k * pca.std for k in THRESHOLD_KS})
    lof = LocalOutlierFactor(novelty=True, n_neighbors=min(20, len(train) - 1)).fit(train)
    results["LOF"] = (-lof.score_samples(test), {None: -lof.offset_})
    return results


def detection_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float,
                      hours: float) -> dict:
    """ROC-AUC, F1 (abnormal = not N, positive), V and S recall, normal beats flagged per
    hour, at ``threshold``; None where a class is absent."""
    from sklearn.metrics import f1_score, roc_auc_score

    truth = labels != "N"
    flags = scores > threshold
    recall = {cls: (float(flags[labels == cls].mean()) if (labels == cls).any() else None)
              for cls in ("V", "S")}
    return {"roc_auc": float(roc_auc_score(truth, scores)) if 0 < truth.sum() < len(truth) else None,
            "f1": float(f1_score(truth, flags, zero_division=0.0)),
            "recall_V": recall["V"], "recall_S": recall["S"],
            "false_alarms_per_hour": float((flags & ~truth).sum() / hours)}


def patient_specific(data: Path, records: list[str], beats: dict) -> list[dict]:
    """Per record: fit on the N beats of the first TRAIN_SECONDS, score every later beat
    (beats no reference beat matches are left out: they are not heartbeats)."""
    rows = []
    for record in records:
        found, duration = beats[record]
        seconds = found.sample / found.fs
        train = found.values[(seconds < TRAIN_SECONDS) & (found.labels == "N")]
        test = (seconds >= TRAIN_SECONDS) & (found.labels != "-")
        labels = found.labels[test]
        base = {"record": record, "train_n": len(train), "test_beats": int(test.sum()),
                "test_abnormal": int((labels != "N").sum()),
                "unmatched_left_out": int((found.labels[seconds >= TRAIN_SECONDS] == "-").sum())}
        if len(train) < 10:
            rows.append({**base, "method": None, "note": "fewer than 10 N training beats"})
            continue
        hours = (duration - TRAIN_SECONDS) / 3600
        started = time.perf_counter()
        for method, (scores, thresholds) in run_methods(train, found.values[test]).items():
            for k, threshold in thresholds.items():
                rows.append({**base, "method": method, "k": k,
                             **detection_metrics(labels, scores, threshold, hours)})
        print(f"  {record}: {len(train)} N training beats, {int(test.sum())} test beats, "
              f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
    return rows


def inter_patient(beats: dict) -> list[dict]:
    """Fit on every N beat of DS1, score every beat of DS2 (pooled)."""
    train = np.concatenate([found.values[found.labels == "N"] for found, _ in
                            (beats[record] for record in DS1)])
    parts = [(found.values[found.labels != "-"], found.labels[found.labels != "-"])
             for found, _ in (beats[record] for record in DS2)]
    test, labels = np.concatenate([v for v, _ in parts]), np.concatenate([l for _, l in parts])
    hours = sum(beats[record][1] for record in DS2) / 3600
    rows = []
    for method, (scores, thresholds) in run_methods(train, test).items():
        for k, threshold in thresholds.items():
            rows.append({"method": method, "k": k, "train_n": len(train),
                         "test_beats": len(test), "test_abnormal": int((labels != "N").sum()),
                         **detection_metrics(labels, scores, threshold, hours)})
    return rows


def _mean(rows: list[dict], key: str) -> float | None:
    values = [row[key] for row in rows if row.get(key) is not None]
    return float(np.mean(values)) if values else None


def _cell(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


METHODS = ("anomaly", "PCA-8", "LOF")


def detection_tables(patient: list[dict], inter: list[dict]) -> list[str]:
    """Markdown: the patient-specific means (all records, and the records with enough
    beats), per record at k = 1, the k sweep, and the inter-patient split."""
    scored = [row for row in patient if row.get("method")]
    at_k1 = [row for row in scored if row["k"] in (1.0, None)]
    enough = {row["record"] for row in at_k1 if row["train_n"] >= MIN_TRAIN_N
              and row["test_abnormal"] >= MIN_TEST_ABNORMAL}
    lines = ["## Patient-specific: fit on the N beats of minutes 0-5, score the rest",
             "", "Means over records (k = 1 for anomaly and PCA-8; LOF at its own threshold). "
             f"'enough beats': the {len(enough)} records with at least {MIN_TRAIN_N} N "
             f"training beats and {MIN_TEST_ABNORMAL} abnormal test beats.", "",
             "| records | method | ROC-AUC | F1 | V recall | S recall | false alarms / h |",
             "|---|---|---|---|---|---|---|"]
    for subset, keep in ((f"all {len({r['record'] for r in at_k1})}", lambda r: True),
                         (f"enough beats ({len(enough)})", lambda r: r["record"] in enough)):
        for method in METHODS:
            rows = [row for row in at_k1 if row["method"] == method and keep(row)]
            lines.append(f"| {subset} | {method} | {_cell(_mean(rows, 'roc_auc'))} | "
                         f"{_cell(_mean(rows, 'f1'))} | {_cell(_mean(rows, 'recall_V'))} | "
                         f"{_cell(_mean(rows, 'recall_S'))} | "
                         f"{_cell(_mean(rows, 'false_alarms_per_hour'), 0)} |")
    lines += ["", "### Per record (ROC-AUC / F1; k = 1)", "",
              "| record | N train | test beats | abnormal | " + " | ".join(METHODS)
              + " | V recall (anomaly) | S recall (anomaly) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for record in sorted({row["record"] for row in patient}):
        rows = {row["method"]: row for row in at_k1 if row["record"] == record}
        first = next(row for row in patient if row["record"] == record)
        if not rows:
            lines.append(f"| {record} | {first['train_n']} | {first['test_beats']} | "
                         f"{first['test_abnormal']} | {first.get('note', '')} | | | | |")
            continue
        cells = [f"{_cell(rows[m]['roc_auc'])} / {_cell(rows[m]['f1'])}" for m in METHODS]
        lines.append(f"| {record} | {first['train_n']} | {first['test_beats']} | "
                     f"{first['test_abnormal']} | " + " | ".join(cells) + " | "
                     f"{_cell(rows['anomaly']['recall_V'])} | {_cell(rows['anomaly']['recall_S'])} |")
    lines += ["", "### Threshold sweep (patient-specific, means over all records)", "",
              "| method | k | F1 | V recall | S recall | false alarms / h |", "|---|---|---|---|---|---|"]
    for method in ("anomaly", "PCA-8"):
        for k in THRESHOLD_KS:
            rows = [row for row in scored if row["method"] == method and row["k"] == k]
            lines.append(f"| {method} | {k:g} | {_cell(_mean(rows, 'f1'))} | "
                         f"{_cell(_mean(rows, 'recall_V'))} | {_cell(_mean(rows, 'recall_S'))} | "
                         f"{_cell(_mean(rows, 'false_alarms_per_hour'), 0)} |")
    if inter:
        first = inter[0]
        lines += ["", "## Inter-patient: fit on the N beats of DS1, score every beat of DS2", "",
                  f"{first['train_n']:,} N training beats; {first['test_beats']:,} test beats, "
                  f"{first['test_abnormal']:,} abnormal.", "",
                  "| method | k | ROC-AUC | F1 | V recall | S recall | false alarms / h |",
                  "|---|---|---|---|---|---|---|"]
        for row in inter:
            k = "own" if row["k"] is None else f"{row['k']:g}"
            lines.append(f"| {row['method']} | {k} | {_cell(row['roc_auc'])} | {_cell(row['f1'])} | "
                         f"{_cell(row['recall_V'])} | {_cell(row['recall_S'])} | "
                         f"{_cell(row['false_alarms_per_hour'], 0)} |")
    return lines


def run_detection(args) -> dict:
    """Parts ``patient`` and ``inter``: the tool's beats (its detector and window),
    labelled by the reference; the autoencoder with its defaults beside PCA-8 and LOF."""
    started = time.perf_counter()
    names = [name for name in args.records if name not in PACED]
    records = sorted(set(names) | (set(DS1) | set(DS2) if "inter" in args.parts else set()))
    beats, segment_seconds = recording_beats(args.data, records)
    patient = patient_specific(args.data, names, beats) if "patient" in args.parts else []
    patient_seconds = time.perf_counter() - started - segment_seconds
    inter = inter_patient(beats) if "inter" in args.parts else []
    seconds = {"segment": round(segment_seconds, 1), "patient": round(patient_seconds, 1),
               "inter": round(time.perf_counter() - started - segment_seconds - patient_seconds, 1)}
    lines = [f"# Detection on MIT-BIH: the tool's beats, {len(records)} records", "",
             f"Seconds on {os.cpu_count()} cores: segmenting {seconds['segment']}, "
             f"patient-specific {seconds['patient']}, inter-patient {seconds['inter']}.", ""]
    print("\n".join(lines + detection_tables(patient, inter)))
    return {"seconds": seconds, "patient": patient, "inter": inter}


PARTS = {"peaks": run_peaks, "patient": run_detection, "inter": run_detection}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_record_arguments(parser)
    parser.add_argument("--parts", default="peaks",
                        help=f"comma-separated parts to run, among: {', '.join(PARTS)}")
    parser.add_argument("--detectors", default="*",
                        help="comma-separated glob patterns of detector names (default: all)")
    args = parser.parse_args(argv)
    if (asked := records_asked(args)) is None:
        return 2
    args.data, args.records = asked
    parts = args.parts.split(",")
    unknown = [part for part in parts if part not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; known: {', '.join(PARTS)}")

    args.parts = parts
    results = {}
    for part in parts:  # patient and inter share one run (and one segmentation)
        if PARTS[part] not in [PARTS[done] for done in results]:
            results[part] = PARTS[part](args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
