"""Reports of a run already scored, from its run report and scores files, without scoring
again: ``anomaly summary RUN_REPORT``.

A scheduled job scores at night (``anomaly score ... --output-dir scores --report
scores/run.json``); a person summarises later. The run report says which model scored
(its directory and SHA-256), how the inputs were read (``options``) and where each one's
scores are. From them this module makes what the scoring run would have made with
``--report``, ``--html`` and ``--plot-dir``: per recording its timeline, rhythm, strips
and families (the recording is read again for its rhythm, as a scoring run with a report
does), the score histogram, with labels the metrics, and the most anomalous beats over
their reconstructions. The model only reconstructs the few beats drawn (each read again
from the seconds around it); no beat is scored again.

Everything is checked before anything is written: the run report against its schema
(:data:`SCHEMA`); the model is the one that scored (its SHA-256); each recording is the
one scored (its SHA-256, or, for an input the run skipped as up to date, its scores file
newer than it); each scores file has the rows the run report says. A beats CSV's scores
are in the histogram and the metrics, but its beats are not drawn (summary reads
recordings again, not beats files); the log says so.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import logs
from ..exceptions import InputError, ModelError, first_line
from .plan import Job, RunPlan, ScoreOptions
from .summary import InputResult, RunResult, ScoredBeat, ScoreSummary, TOP_BEATS

#: The JSON schema of the run report (``docs``: the README's File formats).
SCHEMA = Path(__file__).resolve().parent.parent / "report" / "run_report.schema.json"
#: The largest run report read (a day's recordings by the hundred, each with its rhythm).
MAX_REPORT_BYTES = 64 * 1024 * 1024
#: The largest scores file read, per row the run report gives it, and over that.
_BYTES_PER_ROW, _SLACK_BYTES = 4096, 1024 * 1024
#: Beats tried for the typical normal beat drawn.
_NORMAL_TRIES = 5


def read_run_report(path: str | os.PathLike) -> dict[str, Any]:
    """A run report, checked against :data:`SCHEMA`; InputError naming the file and
    what is wrong (one line) otherwise."""
    import jsonschema

    from ..recordings.limits import FileStamp

    stamp = FileStamp.of(path, "a run report", max_bytes=MAX_REPORT_BYTES)
    try:
        report = json.loads(stamp.read_head(stamp.size), parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:
        raise InputError(f"{path}: not a run report (not JSON: {first_line(error)})") from None
    schema = json.loads(SCHEMA.read_text())
    problem = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(report))
    if problem is not None:
        where = "/".join(str(part) for part in problem.absolute_path) or "the top level"
        raise InputError(f"{path}: not a run report of this version ({where}: "
                         f"{first_line(problem)})")
    if "options" not in report:
        raise InputError(f"{path}: a run report without 'options' (written before "
                         "'anomaly summary' existed): score again with --report")
    return report


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def summarise(run_report: str | os.PathLike, *, report: Path | None = None,
              html: Path | None = None, plot_dir: Path | None = None,
              model_dir: Path | None = None) -> RunResult:
    """Write the reports of a run already scored (see the module's docstring).

    Parameters
    ----------
    run_report : path
        The JSON report ``anomaly score --report`` wrote.
    report, html, plot_dir : Path, optional
        Where to write the JSON report (the run's, with each recording's rhythm), the
        HTML report and the PNG plots.
    model_dir : Path, optional
        The model that scored; default the run report's (relative paths in the run
        report are read from the working directory).

    Returns
    -------
    RunResult

    Raises
    ------
    InputError, UsageError
        A run report, scores file or recording that cannot be read or is not the one
        scored; a destination that would overwrite one of them.
    ModelError
        A model that cannot be loaded or is not the one that scored.
    """
    from ..model import AutoencoderDetector
    from .run import _recordings, _with_rhythms, _write_plots, _write_reports

    run = read_run_report(run_report)
    model_dir = Path(model_dir if model_dir is not None else run["model"]["dir"])
    options = _options(run["options"])
    jobs = tuple(Job(item["input"], index, options,
                     Path(item["output"]) if "output" in item else None)
                 for index, item in enumerate(run["inputs"]))
    _check_destinations(jobs, run_report, report, html, plot_dir, model_dir)
    detector = AutoencoderDetector.load(model_dir, runtime="auto")
    if detector.model_sha256_ != run["model"]["sha256"]:
        raise ModelError(f"{model_dir}: not the model that scored {run_report} (its SHA-256 "
                         f"is {detector.model_sha256_[:16]}..., the run's "
                         f"{run['model']['sha256'][:16]}...)")
    summary = ScoreSummary(float(run["model"]["threshold"]))
    inputs, scored = [], {}
    for job, item in zip(jobs, run["inputs"]):
        result, scored[job.input] = _read_input(job, item, options, summary)
        inputs.append(result)
    plan = RunPlan(model_dir, jobs, report=report, html=html, plot_dir=plot_dir)
    recordings = _recordings(plan, detector, summary)
    _keep_beats_to_draw(summary, recordings, detector, jobs, scored)
    inputs = _with_rhythms(inputs, summary, recordings)
    metrics = summary.metrics() if summary.scores and summary.has_labels else None
    result = RunResult(
        inputs, summary, run["engine"], run["model"], run["created"],
        {key: value for key, value in run["seconds"].items() if key != "total"},
        metrics=metrics, html=None if html is None else str(html), options=run["options"],
        summarised=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    result.plots = _write_plots(plan, detector, summary, recordings,
                                {item.input: item.rhythm for item in inputs
                                 if item.rhythm is not None})
    _write_reports(plan, detector, result, recordings)
    return result


def _options(given: dict[str, Any]) -> ScoreOptions:
    from ..recordings.segment import SegmentOptions

    recording = given["recording"]
    segment = SegmentOptions(lead=recording["lead"], start=float(recording["from_s"]),
                             stop=recording["to_s"], fs=recording["fs"],
                             annotations=recording["annotations"])
    return ScoreOptions(label_column=given["label_column"], normal_label=given["normal_label"],
                        signal_csv=given["signal_csv"],
                        segment=None if segment == SegmentOptions() else segment)


def _check_destinations(jobs, run_report, report, html, plot_dir, model_dir) -> None:
    """Nothing written may overwrite the run report, a scores file, a recording or the
    model (see :mod:`anomaly.io.destinations`)."""
    from ..io.destinations import Place, check_destinations
    from ..io.writers import check_can_create_directory, check_writable
    from .plan import _destinations, input_files

    for path, option in ((report, "--report"), (html, "--html"), (plot_dir, "--plot-dir")):
        if path is not None and str(path) == "-":
            from ..exceptions import UsageError

            raise UsageError("'-' is not a file here: name the file to write", option)
    read = [Place(Path(run_report), "the run report")]
    for job in jobs:
        if job.output is not None:
            read.append(Place(job.output, f"the scores file of {job.input}"))
        read += [Place(Path(path), "the input") for path in input_files(job)]
    check_destinations(_destinations([replace(job, output=None) for job in jobs], report,
                                     html, plot_dir), read, model_dir)
    for path in (report, html):
        if path is not None:
            check_writable(path)
    if plot_dir is not None:
        check_can_create_directory(plot_dir)


def _read_input(job: Job, item: dict[str, Any], options: ScoreOptions,
                summary: ScoreSummary) -> tuple[InputResult, dict[str, np.ndarray] | None]:
    """One input of the run, its scores added to ``summary``, and its scores as read."""
    if job.output is None:
        logs.warning(f"Warning: {job.input} was scored to standard output: it has no "
                     "scores file to summarise.", event="summary_skipped", input=job.input)
        return InputResult(input=job.input, output=None,
                           skipped="scored to standard output"), None
    recording = options.is_recording(job.input)
    if recording:
        _check_same_recording(job, item)
    scores = _read_scores(job.output, item, recording, options)
    truth = None
    if "label" in scores and options.label_column is not None:
        truth = (scores["label"] != options.normal_label).astype(np.int8)
    readable = scores["readable"]
    summary.scores.append(scores["score"])
    summary.readable.append(readable)
    if truth is None:
        summary.has_labels = False
    else:
        summary.truth.append(truth)
    result = InputResult(
        input=job.input, output=str(job.output), sha256=item.get("sha256"),
        rows_read=len(readable) if "skipped" in item else item["rows_read"],
        rows_scored=len(readable),
        rows_rejected=0 if "skipped" in item else item["rows_rejected"],
        anomalies=int(scores["flagged"].sum()), seconds=item["seconds"],
        rejects_file=item.get("rejects_file"), rows_unreadable=int((~readable).sum()),
        analysable=None if "recording" not in item else _analysable(item["recording"]))
    if recording:
        summary.timelines[job.input] = [(scores["sample"], scores["score"], readable)]
        if result.analysable is not None:
            summary.analysable[job.input] = result.analysable
    else:
        logs.info(f"{job.input} is a beats file: its scores are in the histogram and the "
                  "metrics, its beats are not drawn.", event="summary_beats_file",
                  input=job.input)
    return result, scores


def _check_same_recording(job: Job, item: dict[str, Any]) -> None:
    """The recording is the one scored: its SHA-256 the run report's, or, skipped by
    that run as up to date, older than its scores file."""
    from ..recordings.limits import stamps_sha256
    from ..recordings.reading import segmenter_for
    from ..recordings.segment import SegmentOptions

    segmenter = segmenter_for(job.input, job.options.segment or SegmentOptions())
    if "sha256" in item:
        now = stamps_sha256(segmenter.files)
        if now != item["sha256"]:
            raise InputError(f"{job.input}: changed since it was scored (its SHA-256 is "
                             f"{now[:16]}..., the run report's {item['sha256'][:16]}...): "
                             "score it again")
        return
    newest = max(os.stat(stamp.path).st_mtime_ns for stamp in segmenter.files)
    if not job.output.is_file() or job.output.stat().st_mtime_ns <= newest:
        raise InputError(f"{job.input}: its scores file {job.output} is not newer than it "
                         "(changed since it was scored?): score it again")


def _read_scores(path: Path, item: dict[str, Any], recording: bool,
                 options: ScoreOptions) -> dict[str, np.ndarray]:
    """A scores file's ``score``, flags (``flagged``), readability and, a recording's,
    ``sample`` and ``beat``, and with labels ``label``; InputError naming it when it is
    not the run's."""
    import pandas as pd

    if not path.is_file():
        raise InputError(f"{path}: no such scores file (the run report names it for "
                         f"{item['input']})")
    # An input the run skipped as up to date has its scores from an earlier run.
    rows = None if "skipped" in item else item.get("rows_scored")
    if rows is not None and path.stat().st_size > _SLACK_BYTES + _BYTES_PER_ROW * rows:
        raise InputError(f"{path}: {path.stat().st_size:,} bytes is not a scores file of "
                         f"{rows:,} rows (the run report's)")
    try:
        table = (pd.read_parquet(path) if path.suffix == ".parquet" else
                 pd.read_csv(path, dtype=str, keep_default_na=False))
    except Exception as error:  # noqa: BLE001 - pandas and pyarrow raise many kinds.
        raise InputError(f"{path}: not a scores file ({first_line(error)})") from None
    needed = ["score", "is_anomaly"] + (["sample", "beat"] if recording else [])
    missing = [name for name in needed if name not in table.columns]
    if missing:
        raise InputError(f"{path}: not the scores of {item['input']} (no column "
                         f"{', '.join(missing)})")
    if rows is not None and len(table) != rows:
        raise InputError(f"{path}: {len(table):,} rows, the run report says {rows:,} were "
                         "scored: not this run's scores")
    try:
        scores = {"score": _numbers(table["score"], np.float64, "score"),
                  "flagged": _numbers(table["is_anomaly"], np.int64, "is_anomaly") != 0}
        unreadable = (table["unreadable"].fillna("").astype(str).to_numpy()
                      if "unreadable" in table.columns else np.full(len(table), ""))
        scores["readable"] = unreadable == ""
        if recording:
            scores["sample"] = _numbers(table["sample"], np.int64, "sample")
            scores["beat"] = _numbers(table["beat"], np.int64, "beat")
            if np.any(np.diff(scores["sample"]) <= 0):
                raise ValueError("its samples are not in increasing order")
    except (ValueError, TypeError, OverflowError) as error:
        raise InputError(f"{path}: not a scores file ({first_line(error)})") from None
    columns = list(table.columns)
    after = columns.index("is_anomaly") + 1
    if after < len(columns):
        # The labels' column follows is_anomaly, under its own header.
        scores["label"] = table[columns[after]].astype(str).to_numpy(dtype=object)
    return scores


def _numbers(column, dtype, name: str) -> np.ndarray:
    values = np.asarray(column, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"column {name} holds a value that is not a finite number")
    return values.astype(dtype)


def _analysable(recording: dict[str, Any]):
    """How much of a recording could be read, from the run report's ``recording``."""
    from ..recordings.quality import REASONS, Analysable
    from ..recordings.times import parse_time

    return Analysable(
        span_seconds=recording["span_minutes"] * 60,
        unreadable_seconds=tuple(recording["unreadable_minutes"].get(name, 0.0) * 60
                                 for name in REASONS),
        unreadable_beats=recording["unreadable_beats"],
        stretches=tuple((parse_time(item["from"]), parse_time(item["to"]), item["reason"])
                        for item in recording["longest_unreadable_stretches"]),
        n_stretches=recording["unreadable_stretches"])


def _keep_beats_to_draw(summary: ScoreSummary, recordings: dict, detector, jobs,
                        scored: dict[str, dict[str, np.ndarray]]) -> None:
    """The most anomalous beats of the recordings and a typical normal one (the median
    score among the first recording's normal beats), read again as the model saw them,
    to be drawn over their reconstructions."""
    index_of = {job.input: job.index for job in jobs}
    candidates = []
    for name in recordings:
        scores = scored[name]
        ranked = np.flatnonzero(scores["readable"])
        ranked = ranked[np.argsort(-scores["score"][ranked], kind="stable")][:TOP_BEATS]
        candidates += [(float(scores["score"][row]), -index_of[name],
                        -int(scores["beat"][row]), name, row) for row in ranked]
    candidates.sort(reverse=True)
    for score, input_order, line, name, row in candidates[:TOP_BEATS]:
        beat = _beat(name, recordings[name], detector, scored[name], row)
        if beat is not None:
            summary._keep_top((score, input_order, line, beat))
    for name in recordings:
        scores = scored[name]
        normal = np.flatnonzero(scores["readable"] & ~scores["flagged"])
        ordered = normal[np.argsort(scores["score"][normal], kind="stable")]
        middle = len(ordered) // 2
        # The median first, then the beats nearest it, should one not be found again.
        for row in ordered[np.argsort(np.abs(np.arange(len(ordered)) - middle),
                                      kind="stable")][:_NORMAL_TRIES]:
            beat = _beat(name, recordings[name], detector, scores, row)
            if beat is not None:
                summary.normals.append(beat)
                return


def _beat(name: str, segment, detector, scores: dict[str, np.ndarray],
          row: int) -> ScoredBeat | None:
    """The scored beat of row ``row`` of a recording's scores, read again."""
    from ..report.recordings import model_beats_at

    [values] = model_beats_at(name, segment, detector, [int(scores["sample"][row])])
    if values is None:
        return None
    label = str(scores["label"][row]) if "label" in scores else None
    return ScoredBeat(name, int(scores["beat"][row]), float(scores["score"][row]), values,
                      label)
