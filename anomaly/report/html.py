"""A self-contained HTML report of a scoring run: one file, images embedded as PNG data.

Sections: a summary (inputs, rows, anomalies, threshold, model), the score histogram with
the threshold, for recordings the timeline of every beat's score and ECG strips around
the most anomalous beats, the most anomalous beats drawn over their reconstructions and,
when the inputs carry labels, the confusion matrix and the ROC and precision-recall
curves.
"""

from __future__ import annotations

import base64
import html
import io
import os

import numpy as np

from ..io.writers import atomic_write
from .plots import beat_caption, beat_window, plot_reconstruction, plot_score_histogram

#: Strips on ECG paper: 1 mm of paper is 6 pixels (a small square shows, at any zoom).
_PAPER_DPI = 150
#: Longer tables are folded (HTML ``details``), opened by a click.
_SHOWN_ROWS = 10
#: AF episodes a recording's section lists, and rhythm events of each kind.
_LISTED_EPISODES = 20
_EVENTS_PER_KIND = 5

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th { background: #f3f3f3; } td.text { text-align: left; }
table.block th { text-align: left; white-space: nowrap; }
.beats { display: grid; grid-template-columns: repeat(auto-fill, minmax(30rem, 1fr)); gap: 1rem; }
img { max-width: 100%; }
.strips img { display: block; margin: 0 0 0.8rem; }
details { margin: 0.5rem 0 1rem; } summary { cursor: pointer; }
p.note { background: #fff4d6; border-left: 4px solid #e0a800; padding: 0.5rem 0.8rem; }
"""


def write_html_report(path: str | os.PathLike, detector, result, recordings=None) -> None:
    """Write the report of a run (a :class:`anomaly.scoring.summary.RunResult`);
    ``recordings``, the run's recordings by name with how their beats were found
    (``SegmentOptions``), each get a timeline and ECG strips."""
    summary = result.summary
    sections = [_summary_section(detector, summary, result)]
    if summary.scores:
        scores, truth = summary.readable_scores()
        rhythms = {item.input: item.rhythm for item in result.inputs
                   if item.rhythm is not None}
        # A recording's reader looks for its rhythm, events and strips first; the scores'
        # histogram against the threshold is for whoever tunes the model.
        sections.append(_recordings_section(detector, summary, recordings or {}, rhythms))
        sections.append("<h2>Anomaly scores</h2>" + _image(
            plot_score_histogram(scores, summary.threshold, truth=truth), "score histogram"))
        sections.append(_beats_section(detector, summary))
    else:
        # A nightly run with nothing new: the page says so rather than last night's
        # report staying in place, read as tonight's.
        sections.append("<p><b>Nothing was scored in this run.</b></p>")
    if result.metrics is not None:
        sections.append(_metrics_section(summary, result.metrics))
    body = "\n".join(sections)
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>anomaly scoring report</title><style>{_STYLE}</style></head>"
            f"<body><h1>anomaly scoring report</h1>\n{body}\n</body></html>\n")
    with atomic_write(path) as file:
        file.write(page)


def _summary_section(detector, summary, result) -> str:
    recordings = any(item.analysable is not None for item in result.inputs)
    # A recording's are beats, a beats file's rows.
    unit = ("beats" if all(item.analysable is not None for item in result.inputs) else
            "rows or beats" if recordings else "rows")
    rows = [("input", f"{unit} scored", f"{unit} rejected", "anomalies", "share")
            + (("analysable", "beats set aside") if recordings else ())]
    for item in result.inputs:
        if item.skipped is None:
            share = item.anomalies / item.rows_scored if item.rows_scored else 0.0
            row = (item.input, item.rows_scored, item.rows_rejected, item.anomalies,
                   f"{share:.1%}")
            if recordings:
                read = item.analysable
                row += (("-", item.rows_unreadable) if read is None else
                        (read.headline(), read.unreadable_beats))
            rows.append(row)
    model = (f"<p>Run of {html.escape(_when(result.created))}. Threshold "
             f"<b>{summary.threshold:.6g}</b> (mean + {detector.threshold_k:g} "
             f"&times; std of the scores of {html.escape(detector.calibration_.describe())});"
             f" model <code>{html.escape(detector.model_sha256_[:16])}</code>.</p>")
    skipped = [item.input for item in result.inputs if item.skipped is not None]
    listed = ("" if not skipped else
              f"<p>Not scored again, their scores being newer than the input and the model "
              f"(<code>--skip-existing</code>; <code>anomaly summary</code> reports on them): "
              f"{html.escape(', '.join(skipped))}.</p>")
    return ("<h2>Summary</h2>" + model + _trained_in_af(detector)
            + (_table(rows) if len(rows) > 1 else "") + listed)


def _trained_in_af(detector) -> str:
    """The fit's warning, where the model was fitted on a recording's span mostly in
    atrial fibrillation (its directory records the span's rhythm): a report's reader, not
    the one who fitted it, meets its many flags (MIT-BIH 203)."""
    origin = detector.provenance_.recording
    if origin is None or origin.in_af_s is None:
        return ""
    from ..holter.analysis import SpanFibrillation

    span = SpanFibrillation(origin.in_af_s, origin.analysable_s)
    if not span.mostly:
        return ""
    note = span.training_note(bool(detector.scaling_.context), "this report")
    return (f"<p class=\"note\"><b>The model was fitted on atrial fibrillation.</b> "
            f"{html.escape(note[0].upper() + note[1:])}.</p>")


def _when(created: str) -> str:
    """The run's start, ``2026-12-06 15:10 UTC``, from its ISO time (as given if not one)."""
    import datetime

    try:
        moment = datetime.datetime.fromisoformat(created)
    except (TypeError, ValueError):
        return str(created)
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _recordings_section(detector, summary, recordings, rhythms) -> str:
    """Per recording: the timeline of every beat's score, the heart rate under it and
    the rhythm (:func:`_rhythm`), and strips on ECG paper of its events, families and
    most anomalous beats."""
    if not recordings:
        return ""
    from .paper import KEY, paper_squares, plot_paper_strips
    from .recordings import recording_name, recording_pictures

    parts = []
    for input_name, segment in recordings.items():
        rhythm = rhythms.get(input_name)
        timeline, strips = recording_pictures(summary, input_name, segment, rhythm)
        name = html.escape(recording_name(input_name))
        pictures = "".join(_image(plot_paper_strips([strip]),
                                  f"ECG strip of {name}: {strip.caption}", dpi=_PAPER_DPI)
                           for strip in strips)
        parts.append(f"<h3>{name}</h3>"
                     + _recording_summary(summary, input_name, segment, rhythm)
                     + _analysable(summary.analysable.get(input_name))
                     + _image(timeline, f"timeline of {name}")
                     + ("" if rhythm is None else _rhythm(rhythm) + _family_beats(
                         detector, summary, input_name, segment, rhythm))
                     + f"<h4>ECG strips of {name}</h4>"
                     + f"<p>{paper_squares(all(strip.calibrated for strip in strips))} "
                     + f"{html.escape(KEY)}</p>"
                     + f"<div class=\"strips\">{pictures}</div>")
    return "<h2>Recordings</h2>" + "".join(parts)


def _recording_summary(summary, input_name, segment, rhythm) -> str:
    """The block a reader starts from: the recording, its lead, span and analysable time,
    its beats by kind and per hour, heart rate, AF burden, families and events."""
    from ..io.beats import is_anomaly
    from ..recordings import flagged_share_note
    from ..recordings.signals import open_lead, open_other_leads
    from ..recordings.times import format_duration, format_time
    from .recordings import recording_name

    lead = open_lead(input_name, lead=segment.lead, fs=segment.fs)
    peaks, scores, readable = summary.timeline(input_name)
    flagged = int(is_anomaly(scores, summary.threshold, readable).sum())
    analysable = summary.analysable.get(input_name)
    span_s = (analysable.span_seconds if analysable is not None else
              (segment.stop or lead.duration) - segment.start)
    start = segment.start
    described = lead.describe(open_other_leads(lead))
    rows = [("recording", f"{recording_name(input_name)}: {described}, {lead.fs:g} Hz"
             + (f", {lead.unit}" if lead.unit else ", no voltage unit declared")),
            ("span", f"{format_time(start)} to {format_time(start + span_s)} "
                     f"({format_duration(span_s)})"),
            ("time of day", _recorded_when(lead.started, start, span_s)),
            ("analysable", analysable.describe() if analysable is not None else "not checked"),
            ("beats scored", f"{len(peaks):,}, {flagged:,} flagged as anomalies "
                             f"({flagged / max(len(peaks), 1):.1%})")]
    note = flagged_share_note(flagged, len(peaks))
    if note is not None:
        rows.append(("note", note[0].upper() + note[1:] + "."))
    rows.append(("reading the flags", READING_THE_FLAGS))
    if rhythm is not None:
        counts = rhythm.beat_counts()
        hours = max(rhythm.analysable_s / 3600, 1e-9)
        rows.append(("beats by kind", f"{counts['normal']:,} normal, "
                     f"{counts['supraventricular']:,} supraventricular ectopic, "
                     f"{counts['ventricular']:,} ventricular ectopic, "
                     f"{counts['unreadable']:,} unreadable"))
        rows.append(("ectopic beats per hour", f"{counts['ventricular'] / hours:,.0f} "
                     f"ventricular, {counts['supraventricular'] / hours:,.0f} "
                     "supraventricular (per analysable hour)"))
        rows += rhythm.facts()
    return "<table class=\"block\">" + "".join(
        f"<tr><th>{html.escape(name)}</th><td class=\"text\">{html.escape(value)}</td></tr>"
        for name, value in rows) + "</table>"


def _recorded_when(started, start_s: float, span_s: float) -> str:
    """When the span was recorded, by the recorder's clock (``23:14:03 to day 2, 00:14:03:
    the recording started at 23:14:03 on 6 Dec 2026, its header says``), or that the
    recording does not say: every time of the report is then from its start only."""
    if started is None:
        return "not known (its header does not say): the times below are from its start"
    return (f"{started.clock(start_s)} to {started.clock(start_s + span_s)}: the recording "
            f"started at {started.describe()}, its header says")


def _with_time_of_day(rows: list, times_s, started, column: int = 2) -> list:
    """A table's ``rows`` (a header, then one row for each of ``times_s``, each a time or a
    ``(from, to)`` pair of seconds from the start) with each row's time of day (``08:14:03``
    or ``08:14:03 to 08:15:10``) as a column at ``column``, where the recording says when
    it started (``started``: :class:`anomaly.recordings.times.RecordingStart` or None)."""
    if started is None:
        return rows
    head, *body = rows

    def of_day(seconds) -> str:
        return started.clock(seconds) if np.ndim(seconds) == 0 else started.span(*seconds)

    return [tuple(head[:column]) + ("time of day",) + tuple(head[column:])] + [
        tuple(row[:column]) + (of_day(seconds),) + tuple(row[column:])
        for row, seconds in zip(body, times_s)]


#: What a flag on a recording's beat is worth, for its reader (the label-free figures of
#: docs/benchmarks.md, "Label-free patient-specific detection", at k = 2).
READING_THE_FLAGS = ("An anomaly is a beat unlike this patient's usual ones, not a diagnosis. "
                     "Fitted without labels on MIT-BIH at the default threshold, about one "
                     "normal beat in six is flagged beside the abnormal ones (some 680 an "
                     "hour over all, with 98% of ventricular and 55% of supraventricular "
                     "ectopic beats, 90% leaving out one record whose first minutes were "
                     "mostly such beats; by record from under 100 to over 3,000 an hour, the "
                     "most in atrial fibrillation and flutter and with frequent ectopic "
                     "beats): confirm flags on the strips, family by family and event by "
                     "event.")


def _rhythm(rhythm) -> str:
    """Tables of a recording's rhythm: heart rate and variability, atrial fibrillation
    and its episodes, the morphology families."""
    from ..holter.heart_rate import MIN_VARIABILITY_SECONDS
    from ..holter.summary import LISTED_FAMILIES
    from ..recordings.times import clock_span, format_duration, format_time

    analysis = rhythm.analysis
    rate, fibrillation = analysis.heart_rate, analysis.atrial_fibrillation
    bpm = lambda value: "n/a" if not np.isfinite(value) else f"{value:.0f}"  # noqa: E731

    def at(seconds: float) -> str:
        """`` at 07:00``, and by the clock where known: `` at 07:00 (23:04:00)``."""
        if not np.isfinite(seconds):
            return ""
        return f" at {format_time(seconds)}" + (
            "" if rhythm.started is None else f" ({rhythm.started.clock(seconds)})")

    ms = lambda value: "n/a" if not np.isfinite(value) else f"{value:.0f} ms"  # noqa: E731
    summary = [("heart rate (bpm)", "minimum", "mean", "maximum")] + [
        (f"per minute, {which}", bpm(rates.minimum_bpm) + at(rates.minimum_at_s),
         bpm(rates.mean_bpm), bpm(rates.maximum_bpm) + at(rates.maximum_at_s))
        for which, rates in (("normal-to-normal", rate.nn), ("every beat", rate.every_beat))]
    intervals = (f"{rate.sinus_nn_count:,} normal-to-normal intervals in sinus rhythm "
                 f"({format_duration(rate.sinus_nn_seconds)})")
    if rate.variability_is_short:  # Figures of a few intervals would read as measured.
        short = f"n/a (under {format_duration(MIN_VARIABILITY_SECONDS)} of them)"
        variability = [("variability (sinus rhythm)", "SDNN", "RMSSD", "pNN50"),
                       (intervals, short, short, short)]
    else:
        variability = [("variability (sinus rhythm)", "SDNN", "RMSSD", "pNN50"),
                       (intervals, ms(rate.sdnn_ms), ms(rate.rmssd_ms),
                        "n/a" if not np.isfinite(rate.pnn50) else f"{rate.pnn50:.1%}")]
    if fibrillation.episodes:
        listed = fibrillation.episodes[:_LISTED_EPISODES]
        more = len(fibrillation.episodes) - len(listed)
        episodes = _folded(
            f"Atrial fibrillation: <b>{format_duration(fibrillation.seconds)}</b> in "
            f"{len(fibrillation.episodes)} episode(s), <b>{rhythm.burden:.0%}</b> of the "
            f"analysable time{f' (the first {len(listed)} listed)' if more else ''}",
            _with_time_of_day([("from", "to", "duration")]
                              + [clock_span(item.start_s, item.end_s, words=True)
                                 for item in listed],
                              [(item.start_s, item.end_s) for item in listed],
                              rhythm.started))
    else:
        episodes = "<p>No atrial fibrillation found.</p>"
    families = _table([("family", "shape", "beats", "share", "mean score", "flagged")] + [
        (str(item.family), item.kind, f"{item.beats:,}", f"{item.share:.1%}",
         "n/a" if not np.isfinite(item.mean_score) else f"{item.mean_score:.4f}",
         f"{item.anomalies:,}") for item in rhythm.families[:LISTED_FAMILIES]])
    rest = rhythm.families[LISTED_FAMILIES:]
    others = (f"<p>and {len(rest)} smaller families of {sum(item.beats for item in rest):,}"
              " beats.</p>" if rest else "")
    return (_table(summary) + _table(variability) + episodes + _events(rhythm)
            + f"<p>Morphology families: {len(rhythm.families)} (beats grouped by the shape of "
            f"their QRS; the dominant family and those like it are of normal shape)"
            f"{f', the {LISTED_FAMILIES} largest listed' if rest else ''}:</p>"
            + families + others)


def _family_beats(detector, summary, input_name, segment, rhythm) -> str:
    """Each listed family's most typical beat drawn over the model's reconstruction of
    it, with its score: what the family looks like, and how well the model knows it."""
    from ..holter.summary import LISTED_FAMILIES
    from .recordings import beats_at, beats_counted, recording_name

    listed = rhythm.families[:LISTED_FAMILIES]
    if not listed:
        return ""
    samples = [int(rhythm.samples[item.representative]) for item in listed]
    beats = beats_at(input_name, segment, detector, samples)
    peaks, scores, _ = summary.timeline(input_name)
    drawn = [(item, beat, sample) for item, beat, sample in zip(listed, beats, samples)
             if beat is not None]
    if not drawn:
        return ""
    from matplotlib.figure import Figure

    from ..recordings.times import format_time

    from ..scoring.base import ModelLimits

    window = ModelLimits.of(detector).beat_window()
    columns = 4
    rows = -(-len(drawn) // columns)
    figure = Figure(figsize=(12, 2.7 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for number, (ax, (item, (values, reconstruction), sample)) in enumerate(zip(axes, drawn)):
        where = int(np.searchsorted(peaks, sample))
        score = float(scores[where]) if where < len(peaks) and peaks[where] == sample else None
        plot_reconstruction(values, reconstruction, score=score, threshold=summary.threshold,
                            window=window,
                            title=f"family {item.family}: {item.kind}, "
                                  f"{beats_counted(item.beats)}\n"
                                  f"beat at {format_time(rhythm.times_s[item.representative])}",
                            ax=ax)
        ax.title.set_fontsize(8.5)
        ax.xaxis.label.set_fontsize(7)
        ax.set_ylabel("")
        ax.tick_params(labelsize=7)
        if number:
            ax.get_legend().remove()
        else:
            ax.legend(fontsize=7, loc="best")
    for ax in axes[len(drawn):]:
        ax.set_visible(False)
    return ("<p>Each family's most typical beat (black) over the model's reconstruction "
            "of it (orange), the error between them shaded; each beat as the model sees it, its "
            "heights in units of its own spread, not mV:</p>"
            + _image(figure, f"the families of {recording_name(input_name)}"))


def _events(rhythm) -> str:
    """A recording's rhythm events: how many of each kind, the most telling of each kind
    (:func:`anomaly.holter.events.most_telling`) with their times, and the beats
    and events hour by hour."""
    from ..holter.events import most_telling, shown_rate, telling_words
    from ..recordings.times import format_time

    events = rhythm.analysis.events
    counts = rhythm.event_counts()
    hours = rhythm.hourly()
    hourly = _table(_with_time_of_day(
        [("hour from (h:mm:ss)", "beats", "ventricular", "supraventricular", "pauses",
          "mean rate (bpm)")] + [
            (row["start"], f"{row['beats']:,}", f"{row['ventricular']:,}",
             f"{row['supraventricular']:,}", f"{row['pauses']:,}",
             "n/a" if row["mean_bpm"] is None else f"{row['mean_bpm']:.0f}")
            for row in hours], [row["start_s"] for row in hours], rhythm.started, 1))
    if not events:  # The hours still: a reader looks for the beats of each.
        return ("<p>No rhythm events (ventricular flutter, couplets, runs, bigeminy, pauses, "
                "brady- or tachycardia) found.</p><p>Hour by hour:</p>" + hourly)
    listed = most_telling(events, _EVENTS_PER_KIND)
    more = any(count > _EVENTS_PER_KIND for count in counts.values())
    caption = ("Rhythm events: " + ", ".join(
        f"<b>{count:,}</b> {html.escape(_counted(kind, count))}" for kind, count in counts.items())
        + (f" (of each kind, the {_EVENTS_PER_KIND} most telling listed: "
           f"{html.escape(telling_words())})" if more else ""))
    # Not folded: the events are what the reader of a Holter report looks for first.
    table = f"<p>{caption}:</p>" + _table(_with_time_of_day(
        [("event", "from", "to", "duration", "beats", "rate (bpm)", "note")] + [
            (event.kind, format_time(event.start_s), format_time(event.end_s),
             _length(event.duration_s), f"{event.beats:,}" if event.beats else "",
             shown_rate(event), NEAR_UNREADABLE if rhythm.near_unreadable(event) else "")
            for event in listed], [(event.start_s, event.end_s) for event in listed],
        rhythm.started, 3))
    return table + "<p>Hour by hour:</p>" + hourly


#: The events table's note on an event near an unreadable beat
#: (:meth:`anomaly.holter.summary.RecordingRhythm.near_unreadable`).
NEAR_UNREADABLE = "near noise (unreadable within 5 s)"


def _counted(kind: str, count: int) -> str:
    """``ventricular couplets``, ``pause``, ``episodes of ventricular bigeminy``: an event
    kind after its count."""
    if kind.endswith(("couplet", "run", "pause")):
        return kind + ("" if count == 1 else "s")
    return ("episode" if count == 1 else "episodes") + " of " + kind


def _length(seconds: float) -> str:
    """How long an event lasted, in a table's duration column: ``3.8 s`` under a minute
    (a pause's tenth of a second counts), ``1 min 18 s`` from a minute on (``01:18``
    was read as a time)."""
    from ..recordings.times import format_duration

    return f"{seconds:.1f} s" if seconds < 59.95 else format_duration(seconds)


def _analysable(analysable) -> str:
    """A recording's longest stretches set aside, unreadable or in ventricular flutter
    (how much could be read is in its summary block)."""
    if analysable is None or not analysable.longest():
        return ""
    from ..recordings.times import format_time

    longest = analysable.longest()
    more = analysable.n_stretches - len(longest)
    caption = (f"Stretches set aside: the {len(longest)} longest of "
               f"{analysable.n_stretches}" if more else "Stretches set aside")
    rows = [("from", "to", "seconds", "why")] + [
        (format_time(first), format_time(end), f"{end - first:.1f}", reason)
        for first, end, reason in longest]
    return _folded(html.escape(caption), _with_time_of_day(
        rows, [(first, end) for first, end, _ in longest], analysable.started))


def _beats_section(detector, summary) -> str:
    beats = summary.most_anomalous()
    if not beats:
        return ""
    values = np.stack([beat.values for beat in beats])
    # A beat's context (its RR context), after its samples, is not drawn with them.
    samples, reconstructions = (detector.scaling_.samples(inputs) for inputs in
                                (values, detector.reconstruct(values)))
    images = [_image(plot_reconstruction(beat_samples, reconstruction,
                                         title=f"{os.path.basename(beat.input)} "
                                               f"{beat_caption(beat, summary, title=True)}",
                                         score=beat.score, threshold=summary.threshold,
                                         window=beat_window(beat, summary, detector)),
                     f"the {beat_caption(beat, summary)}")
              for beat, beat_samples, reconstruction in zip(beats, samples, reconstructions)]
    return ("<h2>Most anomalous beats</h2><div class=\"beats\">"
            + "".join(f"<div>{image}</div>" for image in images) + "</div>")


def _metrics_section(summary, metrics) -> str:
    from matplotlib.figure import Figure
    from sklearn.metrics import precision_recall_curve, roc_curve

    matrix = metrics["confusion_matrix"]
    figures = ""
    if metrics["roc_auc"] is not None:
        truth, scores = summary.all_truth, summary.all_scores
        figure = Figure(figsize=(10, 4), layout="constrained")
        roc_ax, pr_ax = figure.subplots(1, 2)
        fpr, tpr, _ = roc_curve(truth, scores)
        roc_ax.plot(fpr, tpr, label=f"ROC-AUC {metrics['roc_auc']:.4f}")
        roc_ax.plot([0, 1], [0, 1], color="gray", linestyle=":")
        roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
        roc_ax.legend(loc="lower right")
        precision, recall, _ = precision_recall_curve(truth, scores)
        pr_ax.plot(recall, precision)
        pr_ax.set(xlabel="recall", ylabel="precision", title="Precision-recall curve")
        if metrics["precision"] is not None:  # None: nothing flagged, no point to draw.
            pr_ax.plot([metrics["recall"]], [metrics["precision"]], "o", color="black",
                       label="at the threshold")
            pr_ax.legend(loc="lower left")
        figures = _image(figure, "ROC and precision-recall curves")
    scores_row = [("precision", "recall", "F1", "accuracy", "ROC-AUC"),
                  tuple(_number(metrics[key]) for key in ("precision", "recall", "f1",
                                                           "accuracy", "roc_auc"))]
    confusion = [("", "predicted normal", "predicted anomaly"),
                 ("actual normal", matrix["tn"], matrix["fp"]),
                 ("actual anomaly", matrix["fn"], matrix["tp"])]
    return ("<h2>Against the labels (positive class = anomaly)</h2>" + _table(scores_row)
            + "<h3>Confusion matrix</h3>" + _table(confusion) + figures)


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _folded(caption: str, rows) -> str:
    """A table under its caption (HTML), folded under it when it is long: a day's
    recording lists dozens of rows a reader opens when wanted."""
    if len(rows) - 1 <= _SHOWN_ROWS:
        return f"<p>{caption}:</p>" + _table(rows)
    return (f"<details><summary>{caption} (click to show the {len(rows) - 1} rows)"
            f"</summary>{_table(rows)}</details>")


def _table(rows) -> str:
    head, *body = rows
    cells = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in head)
    lines = [f"<tr>{cells}</tr>"]
    for row in body:
        cells = "".join(
            f"<td class=\"{'text' if isinstance(cell, str) and not cell[:1].isdigit() else ''}\">"
            f"{html.escape(str(cell))}</td>" for cell in row)
        lines.append(f"<tr>{cells}</tr>")
    return "<table>" + "".join(lines) + "</table>"


def _image(figure, alt: str, dpi: int = 90) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<img alt=\"{html.escape(alt)}\" src=\"data:image/png;base64,{data}\">"
