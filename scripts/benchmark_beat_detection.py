#!/usr/bin/env python
"""Beat detection away from 360 Hz and through noise, on MIT-BIH: the tool's detector
beside others, in the same run.

Each record's MLII lead (the 44 non-paced records) is read at 360 Hz, then, per
condition of :data:`CONDITIONS`:

- resampled to 128, 250, 500 or 1,000 Hz (``scipy.signal.resample_poly``, its
  anti-aliasing filter), the reference beats moved to the new rate;
- or, at 360 Hz, given noise of one of the three kinds of the MIT-BIH Noise Stress Test
  at 24, 12 or 6 dB SNR, by its standard protocol (clean first 5 minutes, then 2 noisy
  and 2 clean minutes alternately), from the model of :mod:`anomaly.noise_stress`
  (seeded by record and kind: reruns add the same noise);
- or both: 12 dB of electrode motion, then 128 Hz.

Every detector of :data:`DETECTORS` runs on the whole record; its peaks are matched one
to one with the reference beats within 150 ms (``wfdb.processing.compare_annotations``,
as in ``benchmark_mitdb.py``). Printed as markdown, per condition and detector, pooled
over the records: Se, +P, FN, FP, the worst record's Se and +P, and seconds per record;
for noise, Se and +P over the noisy segments alone (reference beats and detections there).

Usage::

    python scripts/benchmark_beat_detection.py [--data DIR] [--records 100,108]
        [--conditions GLOBS] [--detectors GLOBS] [--jobs N] [--json PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import json
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import neurokit2
import numpy as np
import sleepecg
from wfdb import processing

from anomaly.noise_stress import add_noise
from anomaly.recordings.filters import band_pass, resample, resampling_ratio
from anomaly.recordings.peaks import REFINE_SECONDS, detect_r_peaks
from benchmark_mitdb import (Record, add_record_arguments, load_record, ratio, records_asked,
                             run_per_record, score, split_results)

NOISE_KINDS = {"bw": "baseline wander", "ma": "muscle artefact", "em": "electrode motion"}
#: Condition name -> (rate in Hz, noise kind or None, SNR in dB or None).
CONDITIONS = {"360 Hz": (360.0, None, None)}
CONDITIONS |= {f"{rate} Hz": (float(rate), None, None) for rate in (128, 250, 500, 1000)}
CONDITIONS |= {f"{kind} {snr} dB": (360.0, kind, float(snr))
               for kind in NOISE_KINDS for snr in (24, 12, 6)}
CONDITIONS["128 Hz + em 12 dB"] = (128.0, "em", 12.0)


def tool(signal: np.ndarray, fs: float) -> np.ndarray:
    return detect_r_peaks(signal, fs, band_pass(signal, fs))


def khamis_at_record_rate(signal: np.ndarray, fs: float) -> np.ndarray:
    """The tool's detector before it ran at 360 Hz: khamis2016 at the record's own rate,
    refined the same way."""
    peaks = np.asarray(neurokit2.ecg_peaks(signal, sampling_rate=fs, method="khamis2016")[1]
                       ["ECG_R_Peaks"], dtype=np.int64)
    peaks = peaks[(peaks >= 0) & (peaks < len(signal))]
    if len(peaks) == 0:
        return peaks
    magnitude, radius = np.abs(band_pass(signal, fs)), int(round(REFINE_SECONDS * fs))
    around = np.clip(peaks[:, None] + np.arange(-radius, radius + 1), 0, len(signal) - 1)
    return np.unique(around[np.arange(len(peaks)), np.argmax(magnitude[around], axis=1)])


DETECTORS = {
    "anomaly (khamis2016 at 360 Hz, refractory)": tool,
    "khamis2016 at the record's rate": khamis_at_record_rate,
    "nk neurokit": lambda signal, fs: neurokit2.ecg_peaks(signal, sampling_rate=fs,
                                                          method="neurokit")[1]["ECG_R_Peaks"],
    "sleepecg": lambda signal, fs: sleepecg.detect_heartbeats(signal, fs),
    "wfdb xqrs": lambda signal, fs: processing.xqrs_detect(signal, fs, verbose=False),
}


def condition_record(record: Record, condition: str) -> tuple[Record, np.ndarray | None]:
    """The record under ``condition``, and where noise was added (None: nowhere)."""
    rate, kind, snr = CONDITIONS[condition]
    signal, noisy = record.signal, None
    if kind is not None:  # Noise is added at 360 Hz, before any resampling.
        seed = int(record.name) * 10 + list(NOISE_KINDS).index(kind)
        signal, noisy = add_noise(signal, record.fs, record.beats, kind, snr, seed)
    if rate == record.fs:
        return dataclasses.replace(record, signal=signal), noisy
    scale = resampling_ratio(record.fs, rate)
    signal = resample(signal, scale)
    move = lambda samples: np.round(np.asarray(samples) * float(scale)).astype(np.int64)  # noqa: E731
    if noisy is not None:
        noisy = noisy[np.minimum(np.arange(len(signal)) * scale.denominator // scale.numerator,
                                 len(noisy) - 1)]
    return dataclasses.replace(record, signal=signal, fs=float(record.fs * scale),
                               beats=move(record.beats),
                               flutter=[(move(a), move(b)) for a, b in record.flutter]), noisy


def evaluate_record(data_dir: Path, name: str, conditions: list[str],
                    detectors: list[str]) -> dict:
    warnings.filterwarnings("ignore")  # neurokit2's chatter.
    clean = load_record(data_dir, name)
    results: dict[str, dict] = {}
    for condition in conditions:
        record, noisy = condition_record(clean, condition)
        for detector in detectors:
            if detector == "khamis2016 at the record's rate" and record.fs == clean.fs:
                continue  # The same as the tool's there.
            started = time.perf_counter()
            try:
                found = DETECTORS[detector](record.signal, record.fs)
            except Exception as error:  # noqa: BLE001 - a crash is a result too.
                results[f"{condition} | {detector}"] = {"error": f"{type(error).__name__}: {error}"}
                continue
            seconds = time.perf_counter() - started
            peaks = np.unique(np.asarray(found, dtype=np.int64))
            peaks = peaks[(peaks >= 0) & (peaks < len(record.signal))]
            row = score(record, peaks, seconds)
            row.pop("offsets")
            if noisy is not None:
                inside = dataclasses.replace(record, beats=record.beats[noisy[record.beats]],
                                             flutter=[])
                noisy_row = score(inside, peaks[noisy[peaks]], seconds)
                row |= {f"noisy_{key}": noisy_row[key] for key in ("tp", "fn", "fp")}
            results[f"{condition} | {detector}"] = row
    return {"record": name, "results": results}


def summarize(rows: list[dict]) -> dict:
    total = {key: sum(row.get(key, 0) for row in rows)
             for key in ("tp", "fn", "fp", "noisy_tp", "noisy_fn", "noisy_fp")}
    seconds = [row["seconds"] for row in rows]
    return total | {
        "records": len(rows),
        "se": ratio(total["tp"], total["tp"] + total["fn"]),
        "ppv": ratio(total["tp"], total["tp"] + total["fp"]),
        "noisy_se": ratio(total["noisy_tp"], total["noisy_tp"] + total["noisy_fn"]),
        "noisy_ppv": ratio(total["noisy_tp"], total["noisy_tp"] + total["noisy_fp"]),
        "worst_se": min(ratio(r["tp"], r["tp"] + r["fn"]) for r in rows),
        "worst_ppv": min(ratio(r["tp"], r["tp"] + r["fp"]) for r in rows),
        "seconds_per_record": float(np.mean(seconds)),
    }


def tables(summaries: dict[str, dict], errors: dict[str, list[str]],
           conditions: list[str], detectors: list[str], n_records: int) -> list[str]:
    lines = ["| condition | detector | Se | +P | FN | FP | worst Se | worst +P | "
             "Se noisy | +P noisy | s/record | note |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for condition in conditions:
        for detector in detectors:
            key = f"{condition} | {detector}"
            if key not in summaries and key not in errors:
                continue
            if key not in summaries:
                lines.append(f"| {condition} | {detector} | crashed: {errors[key][0]} |"
                             + " |" * 9)
                continue
            s = summaries[key]
            notes = []
            if s["records"] != n_records:
                notes.append(f"{s['records']} records; crashed on "
                             + ", ".join(e.split(":")[0] for e in errors.get(key, [])))
            noisy = (f"{s['noisy_se']:.4f} | {s['noisy_ppv']:.4f}"
                     if CONDITIONS[condition][1] else " | ")
            bold = "**" if detector.startswith("anomaly") else ""
            lines.append(
                f"| {condition} | {bold}{detector}{bold} | {bold}{s['se']:.4f}{bold} | "
                f"{bold}{s['ppv']:.4f}{bold} | {s['fn']} | {s['fp']} | {s['worst_se']:.4f} | "
                f"{s['worst_ppv']:.4f} | {noisy} | {s['seconds_per_record']:.2f} | "
                f"{'; '.join(notes)} |")
    return lines


def worst_records(records: list[dict], detector: str, conditions: list[str]) -> list[str]:
    """The three worst records of ``detector`` under each condition, by min(Se, +P)."""
    lines = ["| condition | worst records (Se / +P) |", "|---|---|"]
    for condition in conditions:
        scored = []
        for record in records:
            row = record["results"].get(f"{condition} | {detector}")
            if row and "error" not in row:
                se, ppv = ratio(row["tp"], row["tp"] + row["fn"]), ratio(row["tp"], row["tp"] + row["fp"])
                scored.append((min(se, ppv), f"{record['record']} ({se:.3f} / {ppv:.3f})"))
        lines.append(f"| {condition} | {', '.join(text for _, text in sorted(scored)[:3])} |")
    return lines


def run_over_conditions(description: str, evaluate, tables, default_conditions: Sequence[str],
                        argv: list[str] | None) -> int:
    """The command of a benchmark that runs ``evaluate(data, name, conditions=...)`` per
    MIT-BIH record (``--data``, ``--records``, ``--jobs``, ``--json``) under ``--conditions``
    (comma-separated names of :data:`CONDITIONS`), and prints ``tables(records,
    conditions)``; 1 when a record crashed (said on stderr), 2 when MIT-BIH is not found."""
    parser = argparse.ArgumentParser(description=description)
    add_record_arguments(parser)
    parser.add_argument("--conditions", default=",".join(default_conditions),
                        help=f"comma-separated, of: {', '.join(CONDITIONS)}")
    args = parser.parse_args(argv)
    if (asked := records_asked(args)) is None:
        return 2
    data, names = asked
    conditions = args.conditions.split(",")
    unknown = [name for name in conditions if name not in CONDITIONS]
    if unknown:
        parser.error(f"unknown conditions: {', '.join(unknown)}")
    run = run_per_record(evaluate, names, args.jobs, data, conditions=conditions)
    _, errors = split_results(run.records)
    for key, crashes in errors.items():
        print(f"{key}: {crashes}", file=sys.stderr)
    print(tables(run.records, conditions))
    print(f"\n{len(names)} records, {run.wall:.0f} s wall time")
    if args.json:
        args.json.write_text(json.dumps({"conditions": conditions, "records": run.records},
                                        default=float, indent=1))
    return 1 if errors else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_record_arguments(parser)
    parser.add_argument("--conditions", default="*", help="comma-separated glob patterns "
                        f"of conditions, among: {', '.join(CONDITIONS)}")
    parser.add_argument("--detectors", default="*", help="comma-separated glob patterns "
                        f"of detectors, among: {', '.join(DETECTORS)}")
    args = parser.parse_args(argv)
    if (asked := records_asked(args)) is None:
        return 2
    data, names = asked
    pick = lambda known, globs: [k for k in known  # noqa: E731
                                 if any(fnmatch.fnmatch(k, g) for g in globs.split(","))]
    conditions, detectors = pick(CONDITIONS, args.conditions), pick(DETECTORS, args.detectors)

    run = run_per_record(evaluate_record, names, args.jobs, data, conditions=conditions,
                         detectors=detectors)
    records, wall, (load_before, load_after) = run.records, run.wall, run.load_average
    rows, errors = split_results(records)
    summaries = {key: summarize(group) for key, group in rows.items()}
    tool_name = next(iter(DETECTORS))
    lines = [f"Beat detection on {len(records)} MIT-BIH records (lead MLII), matched within "
             f"150 ms. Wall time {wall:.0f} s with {args.jobs} job(s) on {os.cpu_count()} cores, "
             f"1-min load average {load_before:.1f} before and {load_after:.1f} after.", ""]
    lines += tables(summaries, errors, conditions, detectors, len(records))
    if tool_name in detectors:
        lines += ["", f"Worst records, {tool_name}:", ""]
        lines += worst_records(records, tool_name, conditions)
    print("\n".join(lines))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"wall_seconds": wall, "jobs": args.jobs,
                                         "summaries": summaries, "errors": errors,
                                         "records": records}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
