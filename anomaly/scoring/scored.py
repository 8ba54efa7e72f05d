"""Reports of a run already scored, from its run report and scores files, without scoring
again: ``anomaly summary RUN_REPORT``.

A scheduled job scores at night (``anomaly score ... --output-dir scores --report
scores/run.json``); a person summarises later. The run report says which model scored
(its directory and SHA-256), how the inputs were read and from which working directory
(``options``), and where each input's scores are. From them this module makes what the
scoring run would have made with ``--report``, ``--html`` and ``--plot-dir``: per
recording its summary, timeline, rhythm, strips and families (the recording is read
again for its rhythm, as a scoring run with a report does), the score histogram, with
labels the metrics, and the most anomalous beats and a typical normal one over their
reconstructions. No beat is scored again: the model only reconstructs the few beats
drawn, each found again in its stretch of the recording.

Everything is checked before anything is written: the run report against its schema
(:data:`SCHEMA`); the model is the one that scored (its SHA-256); each recording is the
one scored (its SHA-256, or, for an input the run skipped as up to date, its scores file
newer than it); each scores file is that recording's (its ``record``, its beats in the
span, in order) with the rows the run report says. What differs from the scoring run's
own reports: the beats of a beats CSV are in the histogram and the metrics but not drawn
(the summary reads recordings again, not beats files), which the log says.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import logs
from ..exceptions import InputError, ModelError, first_line
from .plan import Job, RunPlan, ScoreOptions
from .summary import NORMAL_SAMPLE, TOP_BEATS, InputResult, RunResult, ScoredBeat, ScoreSummary

#: The JSON schema of the run report (the README's File formats).
SCHEMA = Path(__file__).resolve().parent.parent / "report" / "run_report.schema.json"
#: The largest run report read (a day's recordings by the hundred, each with its rhythm).
MAX_REPORT_BYTES = 64 * 1024 * 1024
#: The largest scores file read: this many bytes per row the run report gives it, and
#: a megabyte over.
_BYTES_PER_ROW, _SLACK_BYTES = 4096, 1024 * 1024
#: Beats tried in turn for each beat drawn, should one not be found again.
_TRIES = 5


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
        Where to write the JSON report (the run's, with each recording's rhythm and
        ``summarised``), the HTML report and the PNG plots.
    model_dir : Path, optional
        The model that scored; default the run report's (a relative path in the run
        report, as every other, is from the run's working directory).

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
    from .run import recording_segments, with_rhythms, write_plots, write_reports

    run = read_run_report(run_report)
    directory = Path(run["options"].get("directory", "."))
    model_dir = Path(model_dir) if model_dir is not None else _from(directory,
                                                                      run["model"]["dir"])
    options = ScoreOptions.from_json(run["options"])
    jobs = tuple(_job(directory, index, item, options)
                 for index, item in enumerate(run["inputs"]))
    if not any(job.output is not None for job in jobs):
        raise InputError(f"{run_report}: no input of the run has a scores file (scored to "
                         "standard output): nothing to summarise")
    _check_destinations(jobs, run_report, report, html, plot_dir, model_dir)
    detector = AutoencoderDetector.load(model_dir, runtime="auto")
    if detector.model_sha256_ != run["model"]["sha256"]:
        raise ModelError(f"{model_dir}: not the model that scored {run_report} (its SHA-256 "
                         f"is {detector.model_sha256_[:16]}..., the run's "
                         f"{run['model']['sha256'][:16]}...)")
    summary = ScoreSummary(float(run["model"]["threshold"]))
    inputs, scored = [], {}
    for job, item in zip(jobs, run["inputs"]):
        if job.output is None:
            logs.warning(f"Warning: {job.input} was scored to standard output: it has no "
                         "scores file to summarise.", event="summary_skipped", input=job.input)
            inputs.append(InputResult(input=job.input, output=None,
                                      skipped="scored to standard output"))
            continue
        scores = _scores_of(job, item)
        summary.add_scores(job.input, scores["score"], scores["readable"],
                           truth=scores.get("truth"), positions=scores.get("sample"))
        inputs.append(_input_result(job, item, scores))
        if inputs[-1].analysable is not None:
            summary.analysable[job.input] = inputs[-1].analysable
        scored[job.input] = scores
    plan = RunPlan(model_dir, jobs, report=report, html=html, plot_dir=plot_dir)
    recordings = recording_segments(plan, detector, summary)
    for entry in _most_anomalous(recordings, detector, scored, jobs):
        summary.keep_top(entry)
    summary.normals += _typical_normals(recordings, detector, scored, summary.threshold)
    inputs = with_rhythms(inputs, summary, recordings)
    for item in inputs:  # An input the run skipped: what was analysable, from its rhythm.
        if item.rhythm is not None and item.input not in summary.analysable:
            summary.analysable[item.input] = item.rhythm.analysable
    result = RunResult(
        inputs, summary, run["engine"], run["model"], run["created"],
        {key: value for key, value in run["seconds"].items() if key != "total"},
        metrics=summary.metrics() if summary.has_labels else None,
        html=None if html is None else str(html), options=run["options"],
        summarised=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    result.plots = write_plots(plan, detector, summary, recordings,
                               {item.input: item.rhythm for item in inputs
                                if item.rhythm is not None})
    write_reports(plan, detector, result, recordings)
    return result


def _from(directory: Path, path: str) -> Path:
    """A path of the run report, relative ones from the run's working directory."""
    return Path(path) if os.path.isabs(path) else directory / path


def _job(directory: Path, index: int, item: dict[str, Any], options: ScoreOptions) -> Job:
    return Job(str(_from(directory, item["input"])), index, options,
               _from(directory, item["output"]) if "output" in item else None,
               rejects=_from(directory, item["rejects_file"]) if "rejects_file" in item
               else None)


def _check_destinations(jobs, run_report, report, html, plot_dir, model_dir) -> None:
    """Nothing written may overwrite the run report, a scores or rejects file, a
    recording or the model (see :mod:`anomaly.io.destinations`)."""
    from dataclasses import replace

    from ..io.destinations import Place, check_destinations
    from ..io.writers import check_can_create_directory, check_writable
    from ..exceptions import UsageError
    from .plan import STDIO, input_files, run_destinations

    for path, option in ((report, "--report"), (html, "--html"), (plot_dir, "--plot-dir")):
        if path is not None and str(path) == STDIO:
            raise UsageError(f"{STDIO!r} is not a file here: name the file to write", option)
    read = [Place(Path(run_report), "the run report")]
    for job in jobs:
        read += [Place(path, f"the {what} file of {job.input}")
                 for path, what in ((job.output, "scores"), (job.rejects, "rejects"))
                 if path is not None]
        read += [Place(Path(path), "the input") for path in input_files(job)]
    check_destinations(run_destinations([replace(job, output=None, rejects=None)
                                         for job in jobs], report, html, plot_dir),
                       read, model_dir)
    for path in (report, html):
        if path is not None:
            check_writable(path)
    if plot_dir is not None:
        check_can_create_directory(plot_dir)


def _scores_of(job: Job, item: dict[str, Any]) -> dict[str, np.ndarray]:
    """An input's scores, checked to be the run's (see :func:`read_scores`); for a
    recording, checked to be the recording scored."""
    if not job.options.is_recording(job.input):
        logs.info(f"{job.input} is a beats file: its scores are in the histogram and the "
                  "metrics, its beats are not drawn.", event="summary_beats_file",
                  input=job.input)
        return read_scores(job.output, item, job.options)
    from ..recordings.reading import segmenter_for
    from ..recordings.segment import SegmentOptions

    segmenter = segmenter_for(job.input, job.options.segment or SegmentOptions())
    _check_same_recording(job, item, segmenter)
    return read_scores(job.output, item, job.options, recording=segmenter)


def _check_same_recording(job: Job, item: dict[str, Any], segmenter) -> None:
    """The recording is the one scored: its SHA-256 the run report's, or, skipped by
    that run as up to date, older than its scores file."""
    from ..recordings.limits import stamps_sha256

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


def read_scores(path: Path, item: dict[str, Any], options: ScoreOptions, *,
                recording=None) -> dict[str, np.ndarray]:
    """A scores file's ``score``, ``flagged``, ``readable``, with labels ``label`` (and
    ``truth`` when the run read them as labels), and a recording's (``recording``: its
    :class:`anomaly.recordings.segment.Segmenter`) ``sample`` and ``beat``.

    Raises InputError naming the file when it is not the run's: a size or a row count
    the run report does not give, a missing column, a value that is not a number, beats
    of another record, outside the span scored or out of order.
    """
    import pandas as pd

    if not path.is_file():
        raise InputError(f"{path}: no such scores file (the run report names it for "
                         f"{item['input']})")
    # An input the run skipped as up to date has its scores from an earlier run.
    rows = None if "skipped" in item else item["rows_scored"]
    if rows is not None and path.stat().st_size > _SLACK_BYTES + _BYTES_PER_ROW * rows:
        raise InputError(f"{path}: {path.stat().st_size:,} bytes is not a scores file of "
                         f"{rows:,} rows (the run report's)")
    try:
        table = (pd.read_parquet(path) if path.suffix == ".parquet" else
                 pd.read_csv(path, dtype=str, keep_default_na=False))
    except Exception as error:  # noqa: BLE001 - pandas and pyarrow raise many kinds.
        raise InputError(f"{path}: not a scores file ({first_line(error)})") from None
    needed = ["score", "is_anomaly"] + (["record", "sample", "beat"] if recording else [])
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
        if recording:
            scores["sample"] = _numbers(table["sample"], np.int64, "sample")
            scores["beat"] = _numbers(table["beat"], np.int64, "beat")
    except ValueError as error:
        raise InputError(f"{path}: not a scores file ({first_line(error)})") from None
    unreadable = (table["unreadable"].fillna("").astype(str).to_numpy()
                  if "unreadable" in table.columns else np.full(len(table), ""))
    scores["readable"] = unreadable == ""
    if recording:
        _check_beats(path, table["record"].astype(str), scores["sample"], recording)
    columns = list(table.columns)
    after = columns.index("is_anomaly") + 1
    if after < len(columns):  # The labels' column follows is_anomaly, under its header.
        scores["label"] = table[columns[after]].astype(str).to_numpy(dtype=object)
        if options.label_column is not None:
            scores["truth"] = (scores["label"] != options.normal_label).astype(np.int8)
    return scores


def _numbers(column, dtype, name: str) -> np.ndarray:
    try:
        values = np.asarray(column, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"column {name} holds a value that is not a number") from None
    if not np.all(np.isfinite(values)):
        raise ValueError(f"column {name} holds a value that is not a finite number")
    return values.astype(dtype)


def _check_beats(path: Path, records, samples: np.ndarray, segmenter) -> None:
    """A recording's scores are its own: its record's name, its beats in the span scored,
    in order."""
    record = segmenter.lead.record
    others = sorted(set(records) - {record})
    if others:
        raise InputError(f"{path}: the scores of record {others[0]!r}, not of {record!r} "
                         "(the recording the run report names)")
    if len(samples) and (samples[0] < segmenter.start or samples[-1] >= segmenter.stop or
                         np.any(np.diff(samples) <= 0)):
        raise InputError(f"{path}: its beats are not in order within the span scored "
                         f"({segmenter.span}): not the scores of {segmenter.lead.path}")


def _input_result(job: Job, item: dict[str, Any], scores: dict[str, np.ndarray]) -> InputResult:
    """The input as the run report gives it, its counts those of its scores."""
    from ..recordings.quality import Analysable

    readable = scores["readable"]
    skipped = "skipped" in item
    return InputResult(
        input=job.input, output=str(job.output), sha256=item.get("sha256"),
        rows_read=len(readable) if skipped else item["rows_read"], rows_scored=len(readable),
        rows_rejected=0 if skipped else item["rows_rejected"],
        anomalies=int(scores["flagged"].sum()), seconds=item["seconds"],
        rejects_file=None if job.rejects is None else str(job.rejects),
        rows_unreadable=int((~readable).sum()),
        analysable=Analysable.from_json(item["recording"]) if "recording" in item else None)


def _most_anomalous(recordings: dict, detector, scored: dict, jobs) -> list[tuple]:
    """The run's most anomalous readable beats of recordings, as
    :meth:`ScoreSummary.keep_top` keeps them, each read again (as the model saw it); a
    beat not found again gives way to the next."""
    index_of = {job.input: job.index for job in jobs}
    ranked = []
    for name in recordings:
        scores = scored[name]
        rows = np.flatnonzero(scores["readable"])
        rows = rows[np.argsort(-scores["score"][rows], kind="stable")][:TOP_BEATS + _TRIES]
        ranked += [(float(scores["score"][row]), -index_of[name], -int(scores["beat"][row]),
                    name, int(row)) for row in rows]
    kept = []
    for score, order, line, name, row in sorted(ranked, reverse=True):
        if len(kept) == TOP_BEATS:
            break
        beat = _beat(name, recordings[name], detector, scored[name], row)
        if beat is not None:
            kept.append((score, order, line, beat))
    return kept


def _typical_normals(recordings: dict, detector, scored: dict,
                     threshold: float) -> list[ScoredBeat]:
    """A typical normal beat, chosen as a scoring run chooses it (the median score of
    the first :data:`NORMAL_SAMPLE` readable beats at or under the threshold, in input
    order), read again; or the nearest to it found again."""
    candidates = []
    for name in recordings:
        scores = scored[name]
        rows = np.flatnonzero((scores["score"] <= threshold) & scores["readable"])
        candidates += [(float(scores["score"][row]), name, int(row))
                       for row in rows[:NORMAL_SAMPLE - len(candidates)]]
    candidates.sort(key=lambda candidate: candidate[0])
    middle = len(candidates) // 2
    for index in sorted(range(len(candidates)), key=lambda index: abs(index - middle))[:_TRIES]:
        _, name, row = candidates[index]
        beat = _beat(name, recordings[name], detector, scored[name], row)
        if beat is not None:
            return [beat]
    return []


def _beat(name: str, segment, detector, scores: dict[str, np.ndarray],
          row: int) -> ScoredBeat | None:
    """Row ``row`` of a recording's scores, its beat read again as the model saw it."""
    from ..report.recordings import model_beats_at

    [values] = model_beats_at(name, segment, detector, [int(scores["sample"][row])])
    if values is None:
        return None
    label = str(scores["label"][row]) if "label" in scores else None
    return ScoredBeat(name, int(scores["beat"][row]), float(scores["score"][row]), values,
                      label)
