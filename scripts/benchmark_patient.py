#!/usr/bin/env python
"""The label-free patient-specific protocol on MIT-BIH, as a Holter user runs the tool:
``anomaly fit RECORD --to 5:00`` without labels, then ``anomaly score RECORD --from 5:00``.

Per record of the 44 non-paced ones: the model is fitted on the first 5 minutes as
``anomaly fit`` fits a recording without labels (the tool's beats, the beats of the
dominant rhythm and shape, the RR context, ``AutoencoderDetector`` with the CLI's
defaults), then every later beat is scored and compared with the reference labels
(matched within 150 ms). Beside it, on the same training beats and test beats (samples
and RR context columns alike): PCA with 8 components scored by the same rule, and
``LocalOutlierFactor(novelty=True)`` at its own threshold; and, on the records whose
first 5 minutes hold >= 10% V or S beats, the autoencoder trained on every beat (the
tool before it chose the dominant beats).

Figures, pooled over records (sums over sums) and per record, for each k of the threshold
mean + k x std of the calibration errors: V and S sensitivity, normal beats flagged per
hour of analysable recording, and the share of the 10 highest-scoring beats of each record
that are real beats (a detection no reference beat matches is not, unless it lies in a
ventricular flutter episode, whose waves the reference marks with no beat label). A beat
of an unreadable stretch (``anomaly/recordings/quality.py``) is never flagged (a V beat
there counts as missed) nor among the top 10, as in the tool. Beside them, the
oracle threshold at the 98th percentile of each record's normal beats' scores (a
reference point in hindsight for any label-free threshold on these scores); all records, the ectopy-rich ones, the
DS1 and DS2 halves, and the k chosen on DS1 with what it gives on DS2
(``anomaly.recordings.RECORDING_THRESHOLD_K`` is that k); and at ``--k``, the layout of
ANSI/AAMI EC57 as far as a one-class detector allows, per record, gross and average: beat
detection Se and +P (wfdb's comparator, 150 ms, ventricular flutter left out as EC57
leaves it), VEB and SVEB Se, the share of flagged beats that are abnormal, normal beats
flagged per hour, the top 10's real beats and the share of the recording analysable,
with PCA-8, LOF and the oracle on the same beats.

Usage::

    python scripts/benchmark_patient.py [--data DIR] [--records 100,119] [--jobs N]
        [--json PATH] [--code-distance auto|on|off] [--no-rr-context] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from benchmark_mitdb import (DS1, DS2, ReconstructionBaseline, Run, add_record_arguments,
                             compare, load_record, outside, records_asked, run_per_record,
                             split_results)

TRAIN_SECONDS = 300
THRESHOLD_KS = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
#: Records whose training minutes hold at least this share of V or S beats.
ECTOPIC_SHARE = 0.10
TOP = 10


#: Where ``--code-distance`` reaches the worker processes.
CODE_DISTANCE_VARIABLE = "BENCHMARK_PATIENT_CODE_DISTANCE"
#: Where ``--no-rr-context`` reaches them.
NO_RR_CONTEXT_VARIABLE = "BENCHMARK_PATIENT_NO_RR_CONTEXT"
#: Where ``--seed`` reaches them.
SEED_VARIABLE = "BENCHMARK_PATIENT_SEED"


def fit_detector(train: np.ndarray, context: tuple[str, ...]):
    from anomaly.model import AutoencoderDetector
    from anomaly.recordings import RECORDING_SETTINGS

    settings = {**RECORDING_SETTINGS, "code_distance": os.environ.get(
        CODE_DISTANCE_VARIABLE, RECORDING_SETTINGS["code_distance"])}
    # The benchmark tries each k of THRESHOLD_KS on the calibration's mean and std.
    settings.pop("threshold_k")
    seed = int(os.environ.get(SEED_VARIABLE, "0"))
    return AutoencoderDetector(seed=seed, context=context, **settings).fit(train)


def metrics(labels: np.ndarray, scores: np.ndarray, threshold: float, readable: np.ndarray,
            real: np.ndarray) -> dict:
    """Counts at ``threshold``: V and S beats and how many are flagged (a beat of an
    unreadable stretch never is: a V beat there counts as missed), N beats flagged, all
    flagged beats and the abnormal ones among them, and of the TOP highest-scoring readable
    beats, how many are ``real`` beats."""
    flags = (scores > threshold) & readable
    top = np.flatnonzero(readable)[np.argsort(-scores[readable], kind="stable")[:TOP]]
    return {"V": int((labels == "V").sum()), "V_flagged": int((flags & (labels == "V")).sum()),
            "S": int((labels == "S").sum()), "S_flagged": int((flags & (labels == "S")).sum()),
            "N_flagged": int((flags & (labels == "N")).sum()), "N": int((labels == "N").sum()),
            "flagged": int(flags.sum()),
            "flagged_abnormal": int((flags & np.isin(labels, ["V", "S", "F", "Q"])).sum()),
            "top": len(top), "top_real": int(real[top].sum())}


def detection_counts(data_dir: Path, name: str, peaks: np.ndarray, start: int) -> dict:
    """EC57's beat detection counts of ``peaks`` against the reference beats from sample
    ``start`` on (wfdb's comparator, 150 ms), ventricular flutter left out as EC57 leaves
    it; and which peaks lie in a flutter episode (its waves are the heart's, not
    artefacts, though no beat label marks them)."""
    record = load_record(data_dir, name)
    reference = record.beats[record.beats >= start]
    kept_reference, kept = outside(reference, record.flutter), outside(peaks, record.flutter)
    comparison = compare(reference[kept_reference], peaks[kept], record.fs)
    tp = 0 if comparison is None else comparison.tp
    return {"reference": int(kept_reference.sum()), "detected": int(kept.sum()), "tp": tp,
            "in_flutter": ~kept}


def evaluate_record(data_dir: Path, name: str) -> dict:
    warnings.filterwarnings("ignore")
    from sklearn.neighbors import LocalOutlierFactor

    from anomaly.model.context import beat_context
    from anomaly.recordings.reading import read_normal_recording_beats, read_recording
    from anomaly.recordings.rhythm import RR_CONTEXT
    from anomaly.recordings.segment import SegmentOptions

    path = data_dir / name
    context = None if os.environ.get(NO_RR_CONTEXT_VARIABLE) else beat_context(RR_CONTEXT)
    names = RR_CONTEXT if context else ()
    train, read = read_normal_recording_beats(
        path, SegmentOptions(stop=TRAIN_SECONDS, annotations="atr"), context=context)
    first = read.beats.labels
    # Cut as the model cuts them: aligned on the dominant beat the fit found.
    test = read_recording(path, SegmentOptions(start=TRAIN_SECONDS, annotations="atr",
                                               window=read.window))
    beats = test.beats
    values = beats.values if context is None else context.appended(beats.values,
                                                                   beats.ids(name), str(path))
    counts = test.counts
    hours = (counts.span_samples - counts.unreadable_samples) / test.lead.fs / 3600
    detection = detection_counts(data_dir, name, beats.sample,
                                 int(round(TRAIN_SECONDS * test.lead.fs)))
    real = (beats.labels != "-") | detection.pop("in_flutter")
    readable = beats.readable
    quality = {"hours": hours, "span_hours": counts.span_samples / test.lead.fs / 3600,
               "unreadable_V": int((~readable & (beats.labels == "V")).sum()),
               "unreadable_N": int((~readable & (beats.labels == "N")).sum()),
               "unreadable_beats": int((~readable).sum())} | detection
    ectopic = float(np.isin(first, ["V", "S"]).mean())
    results, started = {}, time.perf_counter()

    def record(method: str, scores: np.ndarray, thresholds: dict) -> None:
        for k, threshold in thresholds.items():
            results[f"{method} | {k}"] = metrics(beats.labels, scores, threshold, readable,
                                                 real) | quality

    detector = fit_detector(train.normal, names)
    calibration = detector.calibration_
    scores = detector.score(values)
    record("anomaly", scores, {k: calibration.mean + k * calibration.std for k in THRESHOLD_KS})
    normal = scores[(beats.labels == "N") & readable]
    if len(normal):
        # The threshold that flags just 2% of the record's normal beats, set in hindsight:
        # a reference point for label-free thresholds on these scores, not a method.
        record("anomaly, oracle", scores, {"98th pct of N": float(np.percentile(normal, 98))})
    pca = ReconstructionBaseline(8).fit(train.normal)
    record("PCA-8", pca.score(values), {k: pca.mean + k * pca.std for k in THRESHOLD_KS})
    lof = LocalOutlierFactor(novelty=True, n_neighbors=min(20, len(train.normal) - 1))
    lof.fit(train.normal)
    record("LOF", -lof.score_samples(values), {"own": -lof.offset_})
    if ectopic >= ECTOPIC_SHARE:
        every, _ = read_normal_recording_beats(path, SegmentOptions(stop=TRAIN_SECONDS,
                                                                    window=read.window),
                                               context=context, every_beat=True)
        everything = fit_detector(every.normal, names)
        record("anomaly, every beat", everything.score(values),
               {k: everything.calibration_.mean + k * everything.calibration_.std
                for k in THRESHOLD_KS})
    return {"record": name, "train_read": train.n_read, "train_kept": len(train.normal),
            "train_V": int((first == "V").sum()), "train_S": int((first == "S").sum()),
            "ectopic_share": ectopic, "seconds": time.perf_counter() - started,
            "results": results}


def selection_counts(data_dir: Path, name: str) -> dict:
    """Of the first 5 minutes' beats of each AAMI class, how many the unlabelled fit
    trains on (the readable beats of the dominant rhythm and shape)."""
    from anomaly.recordings.patient import dominant_beats
    from anomaly.recordings.reading import read_recording
    from anomaly.recordings.segment import SegmentOptions

    beats = read_recording(data_dir / name, SegmentOptions(stop=TRAIN_SECONDS,
                                                           annotations="atr")).beats
    readable = beats.readable  # As the fit: a beat of an unreadable stretch is never kept.
    kept = np.zeros(len(beats), dtype=bool)
    kept[readable] = dominant_beats(beats.values[readable], beats.rr_prev[readable],
                                    beats.rr_next[readable], beats.rr_local_mean[readable]).kept
    return {"record": name, "results": {label: {"beats": int((beats.labels == label).sum()),
                                                "kept": int((kept & (beats.labels == label)).sum())}
                                        for label in ("N", "S", "V", "F", "Q", "-")}}


def selection_table(records: list[dict]) -> list[str]:
    lines = ["| class | beats in the first 5 minutes | trained on | share |", "|---|---|---|---|"]
    for label in ("N", "S", "V", "F", "Q", "-"):
        beats = sum(r["results"][label]["beats"] for r in records)
        kept = sum(r["results"][label]["kept"] for r in records)
        lines.append(f"| {label} | {beats} | {kept} | {kept / beats if beats else float('nan'):.3f} |")
    return lines


COUNTED = ("V", "V_flagged", "S", "S_flagged", "N", "N_flagged", "top", "top_real", "hours",
           "span_hours", "flagged", "flagged_abnormal", "reference", "detected", "tp",
           "unreadable_V", "unreadable_N", "unreadable_beats")


def rates(total: dict) -> dict:
    """The rates of a record's counts, or of counts summed over records."""
    share = lambda a, b: total[a] / total[b] if total[b] else float("nan")  # noqa: E731
    return {"se_V": share("V_flagged", "V"), "se_S": share("S_flagged", "S"),
            "N_per_hour": total["N_flagged"] / total["hours"] if total["hours"] else float("nan"),
            "top_real_share": share("top_real", "top"), "se_QRS": share("tp", "reference"),
            "ppv_QRS": share("tp", "detected"), "ppv_flag": share("flagged_abnormal", "flagged"),
            "analysable": share("hours", "span_hours")}


def pooled(rows: list[dict]) -> dict:
    """Gross figures: counts summed over records, then the rates."""
    total = {key: sum(row[key] for row in rows) for key in COUNTED}
    return total | rates(total) | {"records": len(rows)}


def averaged(rows: list[dict]) -> dict:
    """Average figures, as EC57 gives them beside the gross: each rate's mean over the
    records where it is defined."""
    per_record = [rates(row) for row in rows]
    if not per_record:
        return {}
    return {key: float(np.nanmean([r[key] for r in per_record]))
            if any(np.isfinite(r[key]) for r in per_record) else float("nan")
            for key in per_record[0]}


EC57_COLUMNS = (("QRS Se", "se_QRS"), ("QRS +P", "ppv_QRS"), ("VEB Se", "se_V"),
                ("SVEB Se", "se_S"), ("flag +P", "ppv_flag"), ("N flagged / h", "N_per_hour"),
                ("top-10 real", "top_real_share"), ("analysable", "analysable"))


def _cells(figures: dict) -> str:
    return " | ".join(f"{figures[key]:.0f}" if key == "N_per_hour" else f"{figures[key]:.3f}"
                      for _, key in EC57_COLUMNS)


def ec57_tables(records: list[dict], keys: list[str]) -> list[str]:
    """EC57's layout, as far as a one-class detector allows: per record, then gross and
    average, for the first of ``keys``; then gross and average for each of ``keys`` (the
    baselines on the same beats). A flag is the detector's only class: VEB and SVEB Se are
    the shares of V and S beats flagged, and "flag +P" the share of flagged beats that
    are V, S, F or Q (EC57's +P per class has no one-class counterpart)."""
    header = "| " + " | ".join(name for name, _ in EC57_COLUMNS) + " |"
    rule = "|---" * (len(EC57_COLUMNS) + 1) + "|"
    key = keys[0]
    lines = [f"#### EC57 layout: {key.replace(' | ', ', k = ')}, record by record", "",
             "| record " + header + " unreadable beats (V) |", rule + "---|"]
    rows = [record["results"][key] | {"record": record["record"]} for record in records
            if key in record["results"]]
    for row in rows:
        lines.append(f"| {row['record']} | {_cells(row | rates(row))} | "
                     f"{row['unreadable_beats']} ({row['unreadable_V']}) |")
    total = pooled(rows)
    lines.append(f"| **gross** | {_cells(total)} | {total['unreadable_beats']} "
                 f"({total['unreadable_V']}) |")
    lines.append(f"| **average** | {_cells(averaged(rows))} | |")
    lines += ["", "#### EC57 layout: gross and average of each method, on the same beats", "",
              "| method | k | figures " + header, rule + "---|---|"]
    for key in keys:
        rows = [record["results"][key] for record in records if key in record["results"]]
        if rows:
            method, k = key.split(" | ")
            lines.append(f"| {method} | {k} | gross | {_cells(pooled(rows))} |")
            lines.append(f"| {method} | {k} | average | {_cells(averaged(rows))} |")
    return lines


def table(title: str, rows: dict[str, list[dict]], keys: list[str]) -> list[str]:
    lines = [f"#### {title}", "", "| method | k | records | V Se | S Se | N flagged / h | "
             "top-10 real beats | V | S | N flagged |", "|---|---|---|---|---|---|---|---|---|---|"]
    for key in keys:
        if key not in rows:
            continue
        s = pooled(rows[key])
        method, k = key.split(" | ")
        lines.append(f"| {method} | {k} | {s['records']} | {s['se_V']:.3f} | {s['se_S']:.3f} | "
                     f"{s['N_per_hour']:.0f} | {s['top_real_share']:.3f} | {s['V']} | {s['S']} | "
                     f"{s['N_flagged']} |")
    return lines


def k_chosen_on_ds1(records: list[dict]) -> list[str]:
    """The k for recordings chosen on DS1 (the largest whose pooled V Se >= 0.95 and S Se
    >= 0.70 there, the sensitivities issue 22 asks for) and what it gives on DS2, which
    had no say in it."""
    halves = {half: split_results([r for r in records if r["record"] in names])[0]
              for half, names in (("DS1", DS1), ("DS2", DS2))}
    if not all(halves.values()):
        return ["No k chosen on DS1: that needs records of DS1 and of DS2."]
    fit = [k for k in THRESHOLD_KS
           if pooled(halves["DS1"][f"anomaly | {k}"])["se_V"] >= 0.95
           and pooled(halves["DS1"][f"anomaly | {k}"])["se_S"] >= 0.70]
    if not fit:
        return ["No k keeps V Se >= 0.95 and S Se >= 0.70 on DS1."]
    k = max(fit)
    ds1, ds2 = (pooled(halves[half][f"anomaly | {k}"]) for half in ("DS1", "DS2"))
    return [f"k chosen on DS1 (the largest with V Se >= 0.95 and S Se >= 0.70 there): "
            f"**{k:g}** (DS1: V Se {ds1['se_V']:.3f}, S Se {ds1['se_S']:.3f}, "
            f"{ds1['N_per_hour']:.0f} N flagged / h); on DS2, held out: V Se "
            f"{ds2['se_V']:.3f}, S Se {ds2['se_S']:.3f}, {ds2['N_per_hour']:.0f} N flagged / h."]


def per_record_table(records: list[dict], key: str) -> list[str]:
    lines = [f"#### Per record: {key.replace(' | ', ', k = ')}", "",
             "| record | training beats kept / read | V, S in training | V Se | S Se | "
             "N flagged / h | top-10 real |", "|---|---|---|---|---|---|---|"]
    for record in records:
        row = record["results"].get(key)
        if row is None:
            continue
        se = lambda cls: (f"{row[cls + '_flagged'] / row[cls]:.3f} ({row[cls]})"  # noqa: E731
                          if row[cls] else "-")
        lines.append(f"| {record['record']} | {record['train_kept']} / {record['train_read']} | "
                     f"{record['train_V']}, {record['train_S']} | {se('V')} | {se('S')} | "
                     f"{row['N_flagged'] / row['hours']:.0f} | {row['top_real']}/{row['top']} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_record_arguments(parser)
    parser.add_argument("--k", type=float, default=1.0, help="the k of the per-record table")
    parser.add_argument("--selection", action="store_true",
                        help="only count, per class, the training beats the unlabelled fit keeps")
    parser.add_argument("--tables-from", type=Path, default=None, metavar="JSON",
                        help="print the tables of a run saved with --json, without running")
    parser.add_argument("--code-distance", choices=("auto", "on", "off"), default=None,
                        help="the detector's code_distance (default: what 'anomaly fit' "
                             "gives a recording fitted without labels)")
    parser.add_argument("--no-rr-context", action="store_true",
                        help="fit and score on the beats' shape alone, as 'anomaly fit "
                             "--no-rr-context' does")
    parser.add_argument("--seed", type=int, default=0,
                        help="the detector's seed (its weights' initialisation and the "
                             "order of its training beats; default 0, as 'anomaly fit')")
    args = parser.parse_args(argv)
    os.environ[SEED_VARIABLE] = str(args.seed)
    if args.code_distance is not None:
        os.environ[CODE_DISTANCE_VARIABLE] = args.code_distance
    if args.no_rr_context:
        os.environ[NO_RR_CONTEXT_VARIABLE] = "1"
    if args.selection:
        if (asked := records_asked(args)) is None:
            return 2
        data, names = asked
        print("\n".join(selection_table(run_per_record(selection_counts, names, args.jobs,
                                                        data).records)))
        return 0
    if args.tables_from is not None:
        saved = json.loads(args.tables_from.read_text())
        run = Run(saved["records"], saved["wall_seconds"],
                  tuple(saved.get("load_average", (float("nan"), float("nan")))))
        jobs, seed = saved.get("jobs", "?"), saved.get("seed", 0)
    else:
        if (asked := records_asked(args)) is None:
            return 2
        data, names = asked
        run, jobs = run_per_record(evaluate_record, names, args.jobs, data), args.jobs
        seed = args.seed
    if args.json:  # saved before the tables: a run is kept whatever they make of it
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"wall_seconds": run.wall, "jobs": jobs,
                                         "seed": seed,
                                         "load_average": run.load_average,
                                         "records": run.records}, indent=1, default=float))
    print("\n".join(report(run, jobs, args.k, seed)))
    return 0


def report(run: Run, jobs: int, k: float, seed: int = 0) -> list[str]:
    """The tables: every record, the records rich in ectopy (with the autoencoder trained
    on every beat beside), the DS1 and DS2 halves, and record by record at ``k``."""
    rows, errors = split_results(run.records)
    keys = ([f"anomaly | {k}" for k in THRESHOLD_KS] + ["anomaly, oracle | 98th pct of N"]
            + [f"PCA-8 | {k}" for k in THRESHOLD_KS] + ["LOF | own"])
    every = [f"anomaly, every beat | {k}" for k in THRESHOLD_KS]
    ectopic = [r for r in run.records if r["ectopic_share"] >= ECTOPIC_SHARE]
    lines = [f"{len(run.records)} records, seed {seed}; wall {run.wall:.0f} s with {jobs} "
             f"job(s) on {os.cpu_count()} cores, 1-min load average "
             f"{run.load_average[0]:.1f} before and {run.load_average[1]:.1f} after.", ""]
    lines += table(f"All {len(run.records)} records", rows, keys) + [""]
    lines += table(f"The {len(ectopic)} records whose first 5 minutes hold >= 10% V or S "
                   f"beats ({', '.join(r['record'] for r in ectopic)})",
                   split_results(ectopic)[0], [f"anomaly | {k}" for k in THRESHOLD_KS] + every)
    for half, names in (("DS1", DS1), ("DS2", DS2)):
        chosen = [r for r in run.records if r["record"] in names]
        lines += [""] + table(f"{half} ({len(chosen)} records)", split_results(chosen)[0],
                              [f"anomaly | {k}" for k in THRESHOLD_KS]
                              + ["anomaly, oracle | 98th pct of N", "LOF | own"])
    lines += [""] + k_chosen_on_ds1(run.records)
    lines += [""] + ec57_tables(run.records, [f"anomaly | {k}", f"PCA-8 | {k}", "LOF | own",
                                               "anomaly, oracle | 98th pct of N"])
    lines += [""] + per_record_table(run.records, f"anomaly | {k}")
    if errors:
        lines += ["", f"Crashed: {errors}"]
    return lines


if __name__ == "__main__":
    sys.exit(main())
