#!/usr/bin/env python
"""A lead off that leaves mains hum on the lead, planted in MIT-BIH records: is it set
aside, and is mains hum over the ECG left readable?

A Holter electrode that comes off leaves the lead's input open: it picks up the mains
(50 or 60 Hz) and the amplifier's noise. Per record (the 44 non-paced ones) and condition
(360 Hz as recorded, resampled, or with noise, as ``benchmark_beat_detection.py`` makes
them), the :data:`SPAN` of lead MLII is written as a WFDB record and read as the tool
reads a recording, in chunks of :data:`CHUNK_SECONDS` (so that one chunk holds nothing
but the lead off, as in a recording whose electrode was off for minutes):

- **lead off** (:data:`LEAD_OFFS`): over :data:`LEAD_OFF` (seconds into the span), nothing
  on the lead but hum and white noise about an offset. How much of it is set aside; the "beats" the
  detectors found in it, and how many of them are read (scored as heart beats); and, more
  than :data:`EDGE_SECONDS` from it, the share of the reference beats read (a readable
  beat within :data:`MATCH_SECONDS`) and the readable beats that match none, beside the
  same in the record without the lead off;
- **hum over the ECG** (:data:`HUM_OVER_MV`): 60 Hz hum added to the whole span; the
  share of the reference beats read and the false beats read, beside the record without
  it;
- **the records as they are**: the time of the whole record read as nothing but hum (MIT-BIH
  was recorded where the mains is 60 Hz, and has some).

Usage::

    python scripts/benchmark_lead_off.py [--data DIR] [--records 100,119]
        [--conditions "360 Hz,128 Hz"] [--jobs N] [--json PATH]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import wfdb

from anomaly.recordings.quality import (HUM_FRACTION, REASONS, WINDOW_SECONDS, hum_only,
                                        neurokit_peaks, rest_to_hum)
from anomaly.recordings.filters import PAD_SECONDS
from anomaly.recordings.reading import read_recording
from anomaly.recordings.segment import SegmentOptions
from benchmark_beat_detection import condition_record, run_over_conditions
from benchmark_mitdb import load_record, split_results

DEFAULT_CONDITIONS = ("360 Hz", "128 Hz", "250 Hz", "500 Hz", "em 12 dB")
#: The span of each record read, seconds: its second 5 minutes, where the noise stress
#: test's first noisy stretch begins (its first 5 minutes are clean).
SPAN = (300.0, 600.0)
CHUNK_SECONDS = 60.0
#: The chunks a file is read in by default (``SegmentOptions.chunk_seconds``).
FILE_CHUNK_SECONDS = SegmentOptions.chunk_seconds
LEAD_OFF = (100.0, 220.0)
EDGE_SECONDS = 4.0
#: A reference beat is found when a readable beat lies this close.
MATCH_SECONDS = 0.15
OFFSET_MV = 0.1
#: The lead offs planted: name -> (mains Hz or None, hum amplitude mV, noise SD mV).
LEAD_OFFS = {"50 Hz 0.2 mV, noise 5 uV": (50.0, 0.2, 0.005),
             "60 Hz 0.05 mV, noise 10 uV": (60.0, 0.05, 0.01),
             "60 Hz 0.02 mV, noise 5 uV": (60.0, 0.02, 0.005),
             "no hum, noise 10 uV": (None, 0.0, 0.01)}
#: Hum added over the ECG, mV (amplitude, 60 Hz).
HUM_OVER_MV = (0.1, 0.3, 1.0)


def planted(signal: np.ndarray, fs: float, hz: float | None, mv: float, noise_mv: float,
            seed: int) -> np.ndarray:
    """``signal`` with the lead off of :data:`LEAD_OFF` planted in it."""
    cut = slice(int(LEAD_OFF[0] * fs), int(LEAD_OFF[1] * fs))
    t = np.arange(cut.stop - cut.start) / fs
    hum = mv * np.sin(2 * np.pi * hz * t) if hz else 0.0
    noise = np.random.default_rng(seed).normal(0.0, noise_mv, len(t))
    out = signal.copy()
    out[cut] = OFFSET_MV + hum + noise
    return out


def read(directory: Path, name: str, signal: np.ndarray, fs: float):
    wfdb.wrsamp(name, fs=fs, units=["mV"], sig_name=["MLII"], fmt=["16"],
                p_signal=signal[:, None], write_dir=str(directory))
    return read_recording(directory / name, SegmentOptions(chunk_seconds=CHUNK_SECONDS))


def nearest_gap(times: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Each of ``times``' distance to the nearest of ``others`` (both increasing; inf where
    there is none)."""
    if len(others) == 0:
        return np.full(len(times), np.inf)
    index = np.clip(np.searchsorted(others, times), 1, max(1, len(others) - 1))
    before = np.abs(times - others[index - 1])
    after = np.abs(times - others[np.minimum(index, len(others) - 1)])
    return np.minimum(before, after)


def away(times: np.ndarray) -> np.ndarray:
    return (times < LEAD_OFF[0] - EDGE_SECONDS) | (times > LEAD_OFF[1] + EDGE_SECONDS)


def beat_figures(found, reference_s: np.ndarray, prefix: str) -> dict:
    """Of the reference beats away from the lead off, how many a readable beat of
    ``found`` matches; and the readable beats there that match none."""
    times = found.beats.time_s
    readable = times[found.beats.readable]
    reference = reference_s[away(reference_s)]
    extra = away(readable) & (nearest_gap(readable, reference_s) > MATCH_SECONDS)
    return {f"{prefix}reference": len(reference),
            f"{prefix}found": int((nearest_gap(reference, readable) <= MATCH_SECONDS).sum()),
            f"{prefix}false": int(extra.sum())}


def lead_off_figures(found, clean, fs: float, reference_s: np.ndarray) -> dict:
    """What the reading made of the lead off (``found``), and of the beats away from it
    in ``found`` and in ``clean`` (the record without it)."""
    first, end = (int(second * fs) for second in LEAD_OFF)
    reasons: dict[str, float] = {}
    # The stretches a reading keeps and lists (the longest, the first and the last:
    # quality.LISTED_STRETCHES); a lead off broken into more pieces would be undercounted.
    for start, stop, code in found.counts.stretches:
        overlap = max(0, min(stop, end) - max(start, first))
        if overlap:
            reasons[REASONS[code - 1]] = reasons.get(REASONS[code - 1], 0) + overlap / fs
    inside = (found.beats.time_s >= LEAD_OFF[0]) & (found.beats.time_s < LEAD_OFF[1])
    return {"set_aside_s": sum(reasons.values()), "reasons_s": reasons,
            "beats_inside": int(inside.sum()),
            "read_inside": int(found.beats.readable[inside].sum()),
            **beat_figures(found, reference_s, ""), **beat_figures(clean, reference_s, "clean_")}


def second_detector_rates(signal: np.ndarray, fs: float) -> list[float]:
    """The beats a minute the second detector (neurokit2's own method, on the lead as it
    is) finds in each chunk a file is read in (:data:`FILE_CHUNK_SECONDS`, with the
    padding): where it finds none, the tool asks it again on the lead without its hum,
    and takes its finding none for its verdict."""
    chunk, pad = int(FILE_CHUNK_SECONDS * fs), int(PAD_SECONDS * fs)
    rates = []
    for start in range(0, len(signal), chunk):
        part = signal[max(0, start - pad):start + chunk + pad]
        rates.append(60.0 * len(neurokit_peaks(part, fs)) / (len(part) / fs))
    return rates


def evaluate_record(data_dir: Path, name: str, conditions: list[str]) -> dict:
    record = load_record(data_dir, name)
    results = {}
    with tempfile.TemporaryDirectory() as work:
        directory = Path(work)
        for condition in conditions:
            try:
                conditioned, _ = condition_record(record, condition)
                fs = conditioned.fs
                ratios = rest_to_hum(conditioned.signal, fs, int(round(WINDOW_SECONDS * fs)))
                results[f"{condition}|as recorded"] = {
                    "seconds": len(conditioned.signal) / fs,
                    "hum_s": float(hum_only(conditioned.signal, fs).sum() / fs),
                    "least_ratio": float(ratios.min()), "under_2": int((ratios < 2).sum()),
                    "second_per_min": second_detector_rates(conditioned.signal, fs)}
                first, stop = (int(round(second * fs)) for second in SPAN)
                signal = conditioned.signal[first:stop]
                beats = np.sort(conditioned.beats)
                reference_s = (beats[(beats >= first) & (beats < stop)] - first) / fs
                clean = read(directory, "clean", signal, fs)
                for case, (hz, mv, noise_mv) in LEAD_OFFS.items():
                    found = read(directory, "off", planted(signal, fs, hz, mv, noise_mv,
                                                           seed=int(name)), fs)
                    results[f"{condition}|off|{case}"] = lead_off_figures(found, clean, fs,
                                                                       reference_s)
                t = np.arange(len(signal)) / fs
                for mv in HUM_OVER_MV:
                    found = read(directory, "hum", signal + mv * np.sin(2 * np.pi * 60 * t), fs)
                    results[f"{condition}|over|{mv}"] = {
                        **beat_figures(found, reference_s, ""),
                        **beat_figures(clean, reference_s, "clean_")}
            except Exception as error:  # noqa: BLE001 - one record's crash is reported, not fatal
                results[f"{condition}|error"] = {"error": f"{type(error).__name__}: {error}"}
    return {"record": name, "results": results}


def tables(records: list[dict], conditions: list[str]) -> str:
    rows, _ = split_results(records)
    total = lambda key, name: sum(row[name] for row in rows.get(key, []))  # noqa: E731
    lead_off_s = LEAD_OFF[1] - LEAD_OFF[0]

    def found_share(key: str, prefix: str) -> str:
        return f"{total(key, prefix + 'found') / total(key, prefix + 'reference'):.4f}"

    out = [f"Lead offs planted from {LEAD_OFF[0]:.0f} s to {LEAD_OFF[1]:.0f} s of each "
           f"record's {SPAN[0]:.0f}-{SPAN[1]:.0f} s (read in chunks of {CHUNK_SECONDS:.0f} s), "
           "pooled over the records: the share of the lead off set aside (and by what "
           "reason, seconds a record), the beats found in it and how many were read; and, "
           f"more than {EDGE_SECONDS:.0f} s from it, the share of the reference beats read "
           "and the false beats read (beside: the record without the lead off)\n",
           "| condition | lead off | set aside | by reason (s a record) | beats found in it "
           "| of them read | other reference beats read (without it) | false beats read "
           "elsewhere (without it) |",
           "|---|---|---|---|---|---|---|---|"]
    for condition in conditions:
        for case in LEAD_OFFS:
            key = f"{condition}|off|{case}"
            if key not in rows:
                continue
            count = len(rows[key])
            reasons: dict[str, float] = {}
            for row in rows[key]:
                for reason, seconds in row["reasons_s"].items():
                    reasons[reason] = reasons.get(reason, 0.0) + seconds / count
            by_reason = ", ".join(f"{reason} {seconds:.1f}"
                                  for reason, seconds in sorted(reasons.items()))
            out.append(
                f"| {condition} | {case} | {total(key, 'set_aside_s') / (count * lead_off_s):.3f}"
                f" | {by_reason or '-'} | {total(key, 'beats_inside'):,} | "
                f"{total(key, 'read_inside'):,} | {found_share(key, '')} "
                f"({found_share(key, 'clean_')}) | {total(key, 'false'):,} "
                f"({total(key, 'clean_false'):,}) |")
    out += ["\nMains hum (60 Hz) over the whole span: the share of the reference beats read "
            f"(more than {EDGE_SECONDS:.0f} s from where the lead offs are planted), and the "
            "false beats read, beside the same records without it\n",
            "| condition | " + " | ".join(f"{mv} mV" for mv in HUM_OVER_MV) + " | without |",
            "|---|" + "---|" * (len(HUM_OVER_MV) + 1)]
    for condition in conditions:
        keys = [f"{condition}|over|{mv}" for mv in HUM_OVER_MV]
        if not all(key in rows for key in keys):
            continue
        cells = [f"{found_share(key, '')}, {total(key, 'false')} false" for key in keys]
        out.append(f"| {condition} | " + " | ".join(cells) +
                   f" | {found_share(keys[0], 'clean_')}, {total(keys[0], 'clean_false')} false |")
    out += ["\nThe records as they are (all of lead MLII): the time read as nothing but mains "
            "hum (`quality.hum_only`), pooled, and the windows' least ratio of the rest to "
            "the hum (`quality.rest_to_hum`; hum alone under "
            f"{HUM_FRACTION}) and how many are under 2; and the fewest beats a minute the "
            f"second detector finds in a chunk of {FILE_CHUNK_SECONDS:.0f} s (on the lead as "
            "it is; where none, the tool asks again without the hum)\n",
            "| condition | records | hours | hum alone (s) | least ratio (record) "
            "| windows under 2 | second detector, fewest beats a minute (record) |",
            "|---|---|---|---|---|---|---|"]
    for condition in conditions:
        key = f"{condition}|as recorded"
        if key in rows:
            least = min(rows[key], key=lambda row: row["least_ratio"])
            record = next(item["record"] for item in records
                          if item["results"].get(key) is least)
            slowest = min(rows[key], key=lambda row: min(row["second_per_min"]))
            slow_record = next(item["record"] for item in records
                               if item["results"].get(key) is slowest)
            out.append(f"| {condition} | {len(rows[key])} | {total(key, 'seconds') / 3600:.1f}"
                       f" | {total(key, 'hum_s'):.1f} | {least['least_ratio']:.2f} ({record})"
                       f" | {total(key, 'under_2')} | {min(slowest['second_per_min']):.1f} "
                       f"({slow_record}) |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    return run_over_conditions(__doc__.split("\n\n")[0], evaluate_record, tables,
                               DEFAULT_CONDITIONS, argv)


if __name__ == "__main__":
    sys.exit(main())
