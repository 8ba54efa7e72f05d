#!/usr/bin/env python
"""Morphology families, atrial fibrillation and heart rate on MIT-BIH, against the
reference annotations, at 360 Hz and away from it.

Per record (the 44 non-paced ones) and condition (360 Hz as recorded; resampled to 128,
250 or 500 Hz; 12 dB of muscle artefact or electrode motion, as
``benchmark_beat_detection.py`` makes them), the MLII lead is written as a WFDB record and
read as the tool reads a recording (its beat detector, its unreadable stretches, the
analysis window), and :func:`anomaly.holter.analysis.analyse_beats` runs on its beats.
Detected beats get the class of the reference beat they match (within 150 ms).

- **Families**: how many families a record's beats make, how many hold its V beats and
  how few hold 90% of them, and the purity of those (the share of their beats that are
  V); the share of V beats in a family not of normal shape ("ectopic by shape"), and of
  N beats wrongly there.
- **Atrial fibrillation** by duration against the reference rhythm episodes ``(AFIB`` and
  ``(AFL`` (aux notes of the ``atr`` annotations): Se (the reference's time found) and +P
  (the time found that is right), pooled over the AF records 201, 202, 203, 210, 219,
  221, 222 and per record, and the minutes of AF found on the other records. Beside the
  tool's detector (the RR series without beats ectopic by shape, and the P waves): the
  same without the P waves; the RR detector alone (Petrėnas et al. 2015's parameters and
  ectopy handling, no beats left out, no P waves; the tool's 30 s shortest episode and
  unreadable beats still apply); and with the reference's V and F beats as the ectopic
  ones (an oracle for the families).
- **Rhythm events** against the reference episodes ``(B`` (ventricular bigeminy), ``(T``
  (trigeminy), ``(VT`` and ``(SVTA``, and the pauses against the reference's RR intervals
  of 2 s or more (outside ventricular flutter), episode by episode: a reference episode
  is found when an event of its kinds overlaps it (within 1 s), and an event is right
  when it overlaps a reference episode of its rhythm; pooled over the records; and by duration,
  the reference episodes' time the events cover and the events' time inside one. Beside the
  conditions, the same rules run on the reference's own beats and AAMI classes (as
  :data:`REFERENCE_KINDS` maps them): what the rules find when every beat's kind is
  right, the ceiling of the tool's beats and families.
- **Beat kinds**: the supraventricular and ventricular beats the events are read from
  against the reference's S and V beats the tool found (Se, +P), and the reference's N
  beats given either kind.
- **Heart rate**: on the records without AF, the mean rate, SDNN and RMSSD of the tool's
  NN intervals against those of the reference's (consecutive reference N beats).

Usage::

    python scripts/benchmark_rhythm.py [--data DIR] [--records 201,203]
        [--conditions "360 Hz,128 Hz"] [--jobs N] [--json PATH]
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from dataclasses import fields
from pathlib import Path
from typing import Sequence

import numpy as np
import wfdb

from anomaly.holter.analysis import ANALYSIS_WINDOW, RhythmBeats, analyse_beats
from anomaly.holter.atrial import AfParameters, atrial_fibrillation, p_wave_consistency
from anomaly.holter.episodes import DurationAgreement, Episode, EpisodeAgreement
from anomaly.holter.events import (FLUTTER, NORMAL, SUPRAVENTRICULAR, UNKNOWN, VENTRICULAR,
                                   Event, EventLimits, rhythm_events)
from anomaly.holter.heart_rate import heart_rate
from anomaly.holter.reference import ATRIAL_FIBRILLATION_RHYTHMS, reference_rhythms
from anomaly.recordings.annotations import AAMI_CLASSES, match_labels
from anomaly.recordings.quality import Analysable
from anomaly.recordings.reading import read_recording
from anomaly.recordings.segment import SegmentOptions
from benchmark_beat_detection import condition_record, run_over_conditions
from benchmark_mitdb import load_record

AF_RECORDS = ("201", "202", "203", "210", "219", "221", "222")
DEFAULT_CONDITIONS = ("360 Hz", "128 Hz", "250 Hz", "500 Hz", "ma 12 dB", "em 12 dB")
#: The AF detectors compared: the tool's, then its parts and the oracle.
AF_VARIANTS = ("tool: RR without shape-ectopic beats + P waves",
               "RR without shape-ectopic beats", "RR alone (Petrėnas 2015's rules)",
               "RR without reference V/F beats + P waves (oracle)")
COVERAGE = 0.9
#: The reference's pauses, measured as the rhythms are: its RR intervals of
#: :attr:`EventLimits.pause_s` or more (:func:`reference_pauses`).
PAUSES = "pause"
#: The reference rhythm episodes the events are measured against, and the events that
#: find them (a ventricular run slower than 100 bpm is the tool's "ventricular run").
EVENT_RHYTHMS = {"(B": ("ventricular bigeminy",), "(T": ("ventricular trigeminy",),
                 "(VT": ("ventricular tachycardia",),
                 "(VT, any rate": ("ventricular tachycardia", "ventricular run"),
                 "(SVTA": ("supraventricular tachycardia",), PAUSES: ("pause",),
                 "(VFL": (FLUTTER,)}


def reference_pauses(record, pause_s: float = EventLimits.pause_s) -> list[Episode]:
    """The reference's pauses: each interval of ``pause_s`` or more between two of its
    beats, but across ventricular flutter, whose waves it marks with no beat (207)."""
    times = record.beats / record.fs
    flutter = np.asarray(record.flutter, dtype=float).reshape(-1, 2) / record.fs
    return [Episode(PAUSES, float(start), float(end))
            for start, end in zip(times[:-1], times[1:])
            if end - start >= pause_s
            and not ((flutter[:, 0] < end) & (flutter[:, 1] > start)).any()]


def family_figures(families, labels: np.ndarray) -> dict:
    """How a record's families hold its V beats (see the module's docstring)."""
    assigned = families.family >= 0
    ventricular = (labels == "V") & assigned
    held = np.bincount(families.family[ventricular], minlength=len(families))
    order = np.argsort(-held, kind="stable")
    covered = np.cumsum(held[order])
    needed = int(np.searchsorted(covered, COVERAGE * ventricular.sum())) + 1 \
        if ventricular.any() else 0
    chosen = order[:needed]
    ectopic = families.ectopic
    return {"families": len(families), "families_1pct": int((families.counts >= 0.01 *
                                                             assigned.sum()).sum()),
            "v": int(ventricular.sum()), "v_families": int((held > 0).sum()),
            "v_families_90": needed, "v_in_chosen": int(held[chosen].sum()),
            "beats_in_chosen": int(families.counts[chosen].sum()),
            "v_ectopic": int((ectopic & ventricular).sum()),
            "n": int(((labels == "N") & assigned).sum()),
            "n_ectopic": int((ectopic & (labels == "N") & assigned).sum())}


def kind_figures(kinds: np.ndarray, labels: np.ndarray) -> dict:
    """The beats' kinds (the events' beats) against the reference's AAMI classes they
    matched (``labels``: a reference beat the detector missed is in neither): per kind
    (supraventricular S, ventricular V) the beats of the class, the beats of the kind,
    those of both, and the N beats of the kind."""
    figures = {}
    for kind, label in ((SUPRAVENTRICULAR, "S"), (VENTRICULAR, "V")):
        called = kinds == kind
        figures[label] = {"reference": int((labels == label).sum()),
                          "called": int(called.sum()),
                          "true": int((called & (labels == label)).sum()),
                          "n_called": int((called & (labels == "N")).sum())}
    return figures


def af_figures(beats: RhythmBeats, analysis, labels: np.ndarray,
               reference: list[Episode]) -> dict[str, dict]:
    """Each AF variant's agreement with the reference, in seconds."""
    times, readable = beats.time_s, beats.readable
    ectopic = analysis.families.ectopic
    oracle = np.isin(labels, ("V", "F"))
    oracle_consistency = p_wave_consistency(beats.p_waves, readable & ~oracle)
    published = AfParameters(min_kept_share=0.0)
    found = {
        AF_VARIANTS[0]: analysis.atrial_fibrillation,
        AF_VARIANTS[1]: atrial_fibrillation(times, ectopic=ectopic, readable=readable),
        AF_VARIANTS[2]: atrial_fibrillation(times, readable=readable, parameters=published),
        AF_VARIANTS[3]: atrial_fibrillation(times, ectopic=oracle, readable=readable,
                                            consistency=oracle_consistency),
    }
    return {variant: vars(DurationAgreement.of(result.episodes, reference))
            for variant, result in found.items()}


#: The tool's beat kinds for the reference's AAMI classes, for the events' ceiling: a
#: fusion beat (F), partly conducted normally, is not of AAMI's ventricular class.
REFERENCE_KINDS = {"N": NORMAL, "S": SUPRAVENTRICULAR, "V": VENTRICULAR, "F": NORMAL,
                   "Q": UNKNOWN}


def event_figures(events: Sequence[Event], episodes: dict[str, list[Episode]]) -> dict[str, dict]:
    """Per reference rhythm of :data:`EVENT_RHYTHMS`, its episodes against the ``events``
    of the kinds that find it, episode by episode and by duration."""
    figures = {}
    for rhythm, kinds in EVENT_RHYTHMS.items():
        found = [event for event in events if event.kind in kinds]
        reference = episodes.get(rhythm.split(",")[0], [])
        figures[rhythm] = {**vars(EpisodeAgreement.of(found, reference)),
                           "seconds": vars(DurationAgreement.of(found, reference))}
    return figures


def episode_agreement(figures: dict) -> EpisodeAgreement:
    """The episode-by-episode agreement in a rhythm's :func:`event_figures`."""
    return EpisodeAgreement(**{field.name: figures[field.name]
                               for field in fields(EpisodeAgreement)})


def rate_figures(beats, analysis, labels: np.ndarray) -> dict:
    """The tool's heart rate and variability beside the reference NN intervals'."""
    ours = analysis.heart_rate
    theirs = heart_rate(beats.time_s, (labels == "N") & beats.readable)
    figures = lambda rate: {"mean_bpm": rate.nn.mean_bpm, "sdnn_ms": rate.sdnn_ms,  # noqa: E731
                            "rmssd_ms": rate.rmssd_ms, "nn_count": rate.nn_count}
    return {name: (value, figures(theirs)[name]) for name, value in figures(ours).items()}


def evaluate_record(data: Path, name: str, conditions: list[str]) -> dict:
    warnings.filterwarnings("ignore")
    clean = load_record(data, name)
    episodes = {**reference_rhythms(data / name), PAUSES: reference_pauses(clean)}
    reference_af = [item for rhythm in ATRIAL_FIBRILLATION_RHYTHMS
                    for item in episodes.get(rhythm, [])]
    classes = np.array([AAMI_CLASSES.get(symbol, "Q") for symbol in clean.symbols], dtype=object)
    results = {}
    with tempfile.TemporaryDirectory() as directory:
        for condition in conditions:
            record, _ = condition_record(clean, condition)
            base = str(Path(directory) / name)
            wfdb.wrsamp(name, fs=record.fs, units=["mV"], sig_name=["MLII"], fmt=["16"],
                        adc_gain=[200.0], baseline=[0], write_dir=directory,
                        p_signal=record.signal[:, None])
            options = SegmentOptions(lead="MLII", window=ANALYSIS_WINDOW)
            read = read_recording(base, options)
            beats = RhythmBeats.of(read.beats)
            labels = match_labels(beats.sample, record.beats, classes, record.fs)
            analysis = analyse_beats(beats, span_s=(0.0, len(record.signal) / record.fs),
                                     flutter=Analysable.of(read.counts, record.fs).flutter)
            results[condition] = {
                "families": family_figures(analysis.families, labels),
                "af": af_figures(beats, analysis, labels, reference_af),
                "events": event_figures(analysis.events, episodes),
                "kinds": kind_figures(analysis.kinds, labels),
                "rate": rate_figures(beats, analysis, labels),
            }
    # The events' rules run on the cardiologists' own beats and classes: what the rules
    # find with every beat's kind right, whatever the signal.
    kinds = [REFERENCE_KINDS[label] for label in classes]
    reference_events = event_figures(rhythm_events(clean.beats / clean.fs, kinds), episodes)
    return {"record": name, "results": results, "reference_events": reference_events}


def pooled(rows: list[dict], variant: str) -> DurationAgreement:
    return sum((DurationAgreement(**row["af"][variant]) for row in rows),
               DurationAgreement(0.0, 0.0, 0.0))


def tables(records: list[dict], conditions: list[str]) -> str:
    out = []
    by_condition = {condition: [{"record": item["record"], **item["results"][condition]}
                                for item in records if condition in item["results"]]
                    for condition in conditions}
    out.append("Atrial fibrillation by duration (AFIB and AFL): Se and +P pooled over "
               f"{', '.join(AF_RECORDS)}; AF minutes found on the other records\n")
    out.append("| condition | detector | Se | +P | reference min | found min | false AF min "
               "elsewhere (records) |")
    out.append("|---|---|---|---|---|---|---|")
    for condition, rows in by_condition.items():
        inside = [row for row in rows if row["record"] in AF_RECORDS]
        outside = [row for row in rows if row["record"] not in AF_RECORDS]
        for variant in AF_VARIANTS:
            total = pooled(inside, variant)
            false = [(row["record"], row["af"][variant]["found"]) for row in outside
                     if row["af"][variant]["found"] > 0]
            out.append(f"| {condition} | {variant} | {total.sensitivity:.3f} | "
                       f"{total.positive_predictivity:.3f} | {total.reference / 60:.1f} | "
                       f"{total.found / 60:.1f} | {sum(s for _, s in false) / 60:.1f} "
                       f"({len(false)}) |")
    first = conditions[0]
    out.append(f"\nPer AF record, {first}, the tool's detector\n")
    out.append("| record | reference min | found min | Se | +P |")
    out.append("|---|---|---|---|---|")
    for row in by_condition[first]:
        if row["record"] in AF_RECORDS:
            agreement = DurationAgreement(**row["af"][AF_VARIANTS[0]])
            out.append(f"| {row['record']} | {agreement.reference / 60:.1f} | "
                       f"{agreement.found / 60:.1f} | {agreement.sensitivity:.3f} | "
                       f"{agreement.positive_predictivity:.3f} |")
    out.append("\nRhythm events against the reference rhythm episodes, episode by episode (an "
               "episode found when an event of the kinds overlaps it, within 1 s), pooled "
               "over the records: Se (episodes found / reference) and +P (events overlapping "
               "a reference episode / events)\n")
    out.append("| condition | " + " | ".join(EVENT_RHYTHMS) + " |")
    out.append("|---|" + "---|" * len(EVENT_RHYTHMS))
    rows_by_name = {**by_condition, "the reference's beats and classes (the rules' ceiling)": [
        {"record": item["record"], "events": item["reference_events"]} for item in records]}
    for condition, rows in rows_by_name.items():
        cells = []
        for rhythm in EVENT_RHYTHMS:
            total = sum((episode_agreement(row["events"][rhythm]) for row in rows),
                        EpisodeAgreement(0, 0, 0, 0))
            cells.append(f"{total.sensitivity:.3f} / {total.positive_predictivity:.3f} "
                         f"({total.detected}/{total.reference}, {total.true}/{total.found})")
        out.append(f"| {condition} | " + " | ".join(cells) + " |")
    out.append("\nThe same by duration: Se (the reference episodes' time that events of the "
               "kinds cover) and +P (the events' time inside a reference episode), pooled; in "
               "brackets the reference's and the events' minutes\n")
    out.append("| condition | " + " | ".join(EVENT_RHYTHMS) + " |")
    out.append("|---|" + "---|" * len(EVENT_RHYTHMS))
    for condition, rows in rows_by_name.items():
        cells = []
        for rhythm in EVENT_RHYTHMS:
            total = sum((DurationAgreement(**row["events"][rhythm]["seconds"]) for row in rows),
                        DurationAgreement(0.0, 0.0, 0.0))
            cells.append(f"{total.sensitivity:.3f} / {total.positive_predictivity:.3f} "
                         f"({total.reference / 60:.1f}, {total.found / 60:.1f})")
        out.append(f"| {condition} | " + " | ".join(cells) + " |")
    out.append(f"\nPer record with reference episodes, {first}: found/reference, "
               "true/found\n")
    out.append("| record | " + " | ".join(EVENT_RHYTHMS) + " |")
    out.append("|---|" + "---|" * len(EVENT_RHYTHMS))
    for row in by_condition[first]:
        items = [episode_agreement(row["events"][rhythm]) for rhythm in EVENT_RHYTHMS]
        if any(item.reference for item in items):
            out.append(f"| {row['record']} | " + " | ".join(
                f"{item.detected}/{item.reference}, {item.true}/{item.found}"
                for item in items) + " |")
    out.append("\nBeat kinds (those the events are read from) against the reference's classes, "
               "pooled over the records: Se (of the reference's S or V beats the tool found, "
               "those of that kind), +P (beats of the kind that are of the class), and the "
               "reference's N beats given the kind\n")
    out.append("| condition | S Se | S +P | N beats called S | V Se | V +P | N beats called V |")
    out.append("|---|---|---|---|---|---|---|")
    for condition, rows in by_condition.items():
        cells = []
        for label in ("S", "V"):
            total = {key: sum(row["kinds"][label][key] for row in rows)
                     for key in ("reference", "called", "true", "n_called")}
            cells += [f"{total['true'] / max(total['reference'], 1):.3f} "
                      f"({total['true']:,}/{total['reference']:,})",
                      f"{total['true'] / max(total['called'], 1):.3f}",
                      f"{total['n_called']:,}"]
        out.append(f"| {condition} | " + " | ".join(cells) + " |")
    out.append(f"\nPer record with >= 10 S beats or >= 50 N beats called S, {first}: S beats "
               "of that kind / reference, N beats called S\n")
    out.append("| record | S found / reference | N called S |")
    out.append("|---|---|---|")
    for row in by_condition[first]:
        item = row["kinds"]["S"]
        if item["reference"] >= 10 or item["n_called"] >= 50:
            out.append(f"| {row['record']} | {item['true']}/{item['reference']} | "
                       f"{item['n_called']} |")
    out.append("\nMorphology families, per condition, over the records with V beats\n")
    out.append("| condition | records | families per record (>= 1% of beats) | V beats | "
               "families holding V (median, max) | families holding 90% of V (median, max) "
               "| their purity | V ectopic by shape | N ectopic by shape |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for condition, rows in by_condition.items():
        with_v = [row["families"] for row in rows if row["families"]["v"] >= 10]
        if not with_v:
            continue
        total = lambda key: sum(item[key] for item in with_v)  # noqa: E731
        every = [row["families"] for row in rows]
        out.append(
            f"| {condition} | {len(with_v)} | {np.median([f['families'] for f in every]):.0f}"
            f" ({np.median([f['families_1pct'] for f in every]):.0f}) | {total('v')} | "
            f"{np.median([f['v_families'] for f in with_v]):.0f}, "
            f"{max(f['v_families'] for f in with_v)} | "
            f"{np.median([f['v_families_90'] for f in with_v]):.0f}, "
            f"{max(f['v_families_90'] for f in with_v)} | "
            f"{total('v_in_chosen') / total('beats_in_chosen'):.3f} | "
            f"{total('v_ectopic') / total('v'):.3f} | "
            f"{sum(f['n_ectopic'] for f in every) / sum(f['n'] for f in every):.4f} |")
    out.append(f"\nPer record with >= 10 V beats, {first}\n")
    out.append("| record | V beats | families | holding V | holding 90% of V | their purity | "
               "V ectopic by shape |")
    out.append("|---|---|---|---|---|---|---|")
    for row in by_condition[first]:
        item = row["families"]
        if item["v"] >= 10:
            out.append(f"| {row['record']} | {item['v']} | {item['families']} | "
                       f"{item['v_families']} | {item['v_families_90']} | "
                       f"{item['v_in_chosen'] / item['beats_in_chosen']:.3f} | "
                       f"{item['v_ectopic'] / item['v']:.3f} |")
    out.append("\nHeart rate on the records without AF: the tool's NN intervals against the "
               "reference's (median and largest absolute difference over the records)\n")
    out.append("| condition | records | mean HR (bpm) | SDNN (ms) | RMSSD (ms) |")
    out.append("|---|---|---|---|---|")
    for condition, rows in by_condition.items():
        sinus = [row["rate"] for row in rows if row["record"] not in AF_RECORDS]
        cells = []
        for key in ("mean_bpm", "sdnn_ms", "rmssd_ms"):
            gaps = np.abs([ours - theirs for ours, theirs in (item[key] for item in sinus)])
            cells.append(f"{np.nanmedian(gaps):.2f}, {np.nanmax(gaps):.1f}")
        out.append(f"| {condition} | {len(sinus)} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    return run_over_conditions(__doc__.split("\n\n")[0], evaluate_record, tables,
                               DEFAULT_CONDITIONS, argv)


if __name__ == "__main__":
    sys.exit(main())
