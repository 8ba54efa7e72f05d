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
from ..exceptions import InputError, ModelError, first_line, shortened
from ..io.beats import is_anomaly
from .plan import Job, RunPlan, ScoreOptions
from .summary import (NORMAL_SAMPLE, TOP_BEATS, InputResult, RunResult, ScoredBeat,
                      ScoreSummary, normal_sample_rows, rr_intervals, top_rows)

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
        report = json.loads(stamp.read_head(stamp.size), parse_constant=_no_constant,
                            parse_float=_finite)
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
    paths = [report["model"]["dir"], report["options"].get("directory", ".")] + [
        item[key] for item in report["inputs"] for key in ("input", "output", "rejects_file")
        if key in item]
    if any("\x00" in name for name in paths):
        raise InputError(f"{path}: a path in it holds a NUL byte: not a run report")
    from ..recordings.times import RecordingStart

    for number, item in enumerate(report["inputs"]):
        started = item.get("recording", {}).get("started")
        try:
            if started is not None:
                RecordingStart.from_json(started)
        except ValueError as error:  # A pattern the schema allows: 29:00:00, 2026-02-30.
            raise InputError(f"{path}: not a run report of this version (inputs/{number}/"
                             f"recording/started: {first_line(error)})") from None
    return report


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _finite(text: str) -> float:
    value = float(text)
    if not np.isfinite(value):
        raise ValueError(f"{text[:40]} is too large a number")
    return value


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
    # The run report's paths, relative ones from the run's working directory.
    scored_by = directory / run["model"]["dir"]
    model_dir = Path(model_dir) if model_dir is not None else scored_by
    options = ScoreOptions.from_json(run["options"])
    jobs = tuple(_job(directory, index, item, options)
                 for index, item in enumerate(run["inputs"]))
    if not any(job.output is not None for job in jobs):
        raise InputError(f"{run_report}: no input of the run has a scores file (scored to "
                         "standard output): nothing to summarise")
    _refuse_shared_outputs(run_report, jobs)
    # A copy given with --model-dir leaves the run's own model as much to protect.
    _check_destinations(jobs, run_report, report, html, plot_dir,
                        list(dict.fromkeys([model_dir, scored_by])))
    detector = AutoencoderDetector.load(model_dir, runtime="auto")
    if detector.model_sha256_ != run["model"]["sha256"]:
        raise ModelError(f"{model_dir}: not the model that scored {run_report} (its SHA-256 "
                         f"is {detector.model_sha256_[:16]}..., the run's "
                         f"{run['model']['sha256'][:16]}...)")
    if float(detector.threshold_) != run["model"]["threshold"]:
        raise ModelError(f"{model_dir}: its threshold {detector.threshold_:.6g} is not the "
                         f"one that scored {run_report} ({run['model']['threshold']:.6g})")
    summary = ScoreSummary(float(detector.threshold_))
    inputs, scored = [], {}
    for job, item in zip(jobs, run["inputs"]):
        if job.output is None:
            logs.warning(f"Warning: {job.input} was scored to standard output: it has no "
                         "scores file to summarise.", event="summary_skipped", input=job.input)
            inputs.append(InputResult(input=job.input, output=None,
                                      skipped="scored to standard output"))
            continue
        scores = _scores_of(job, item, detector)
        if np.any(scores["flagged"] != is_anomaly(scores["score"], summary.threshold,
                                                  scores["readable"])):
            raise InputError(f"{job.output}: its is_anomaly flags are not its scores above "
                             f"the threshold {summary.threshold:.6g} (readable beats only): "
                             "not the scores of this run's model")
        summary.add_scores(job.input, scores["score"], scores["readable"],
                           truth=scores.get("truth"), positions=scores.get("sample"))
        inputs.append(_input_result(job, item, scores))
        if inputs[-1].analysable is not None:
            summary.analysable[job.input] = inputs[-1].analysable
        scored[job.input] = scores
    plan = RunPlan(model_dir, jobs, report=report, html=html, plot_dir=plot_dir)
    recordings = recording_segments(plan, detector, summary)
    if html is not None or plot_dir is not None:  # Only the pictures show these beats.
        for entry in _most_anomalous(recordings, detector, scored, jobs):
            summary.keep_top(entry)
        summary.normals += _typical_normals(recordings, detector, scored, summary.threshold)
    inputs = with_rhythms(inputs, summary, recordings, found_again=True)
    for item in inputs:  # An input the run skipped: what was analysable, from its rhythm.
        if item.analysable is not None:
            summary.analysable.setdefault(item.input, item.analysable)
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


def _job(directory: Path, index: int, item: dict[str, Any], options: ScoreOptions) -> Job:
    return Job(str(directory / item["input"]), index, options,
               directory / item["output"] if "output" in item else None,
               rejects=directory / item["rejects_file"] if "rejects_file" in item else None)


def _refuse_shared_outputs(run_report, jobs) -> None:
    """A scoring run refuses an input given twice, and two inputs with one scores file; a
    run report that names one twice (thousands of times: each read again), by any name
    (hard links), is not one it wrote."""
    from ..io.destinations import file_identity, same_file

    for what, paths in (("input", [job.input for job in jobs]),
                        ("scores file", [job.output for job in jobs])):
        seen: list[tuple] = []
        for path in paths:
            if path is None:
                continue
            identity = file_identity(path)
            if same_file(identity, seen):
                raise InputError(f"{run_report}: names the {what} {path} twice (by this "
                                 "name or another): not a run report anomaly wrote")
            seen.append(identity)


def _check_destinations(jobs, run_report, report, html, plot_dir, model_dirs) -> None:
    """Nothing written may overwrite the run report, a scores or rejects file, a
    recording or any of ``model_dirs`` (see :mod:`anomaly.io.destinations`)."""
    from dataclasses import replace

    from ..io.destinations import Place, check_destinations
    from ..io.writers import check_can_create_directory, check_writable
    from .plan import input_files, refuse_standard_output, run_destinations

    refuse_standard_output(report, html, plot_dir)
    read = [Place(Path(run_report), "the run report")]
    for job in jobs:
        read += [Place(path, f"the {what} file of {job.input}")
                 for path, what in ((job.output, "scores"), (job.rejects, "rejects"))
                 if path is not None]
        read += [Place(Path(path), "the input") for path in input_files(job)]
    destinations = run_destinations([replace(job, output=None, rejects=None) for job in jobs],
                                    report, html, plot_dir)
    for model_dir in model_dirs:
        check_destinations(destinations, read, model_dir)
    for path in (report, html):
        if path is not None:
            check_writable(path)
    if plot_dir is not None:
        check_can_create_directory(plot_dir)


def _scores_of(job: Job, item: dict[str, Any], detector) -> dict[str, np.ndarray]:
    """An input's scores, checked to be the run's (see :func:`read_scores`), the input
    checked to be the one scored (:func:`_check_same_input`)."""
    if not job.options.is_recording(job.input):
        from ..io.readers import check_readable
        from ..io.writers import file_sha256

        file = check_readable(job.input)
        if not file.is_file():
            raise InputError(f"{job.input}: not a regular file (the run report names it as "
                             "an input)")
        _check_same_input(job, item, [file], lambda: file_sha256(file))
        logs.info(f"{job.input} is a beats file: its scores are in the histogram and the "
                  "metrics, its beats are not drawn.", event="summary_beats_file",
                  input=job.input)
        return read_scores(job.output, item, job.options,
                           most_rows=file.stat().st_size // 2 + 1)
    from ..recordings.limits import stamps_sha256
    from ..recordings.reading import segmenter_for
    from .base import ModelLimits
    from .sources import recording_segment

    # The recording read as the run read it for the model (its lead, span and window).
    segmenter = segmenter_for(job.input, recording_segment(job.options,
                                                           ModelLimits.of(detector)))
    _check_same_input(job, item, [stamp.path for stamp in segmenter.files],
                      lambda: stamps_sha256(segmenter.files))
    # Beats are at least 200 ms apart (the detector's refractory period).
    span_s = (segmenter.stop - segmenter.start) / segmenter.lead.fs
    return read_scores(job.output, item, job.options, recording=segmenter,
                       most_rows=int(span_s * 5) + 1)


def _check_same_input(job: Job, item: dict[str, Any], files: list, sha256) -> None:
    """The input (its ``files``) is the one scored: their SHA-256 (``sha256()``) the run
    report's or, skipped by that run as up to date, all older than its scores file."""
    if "sha256" in item:
        now = sha256()
        if now != item["sha256"]:
            raise InputError(f"{job.input}: changed since it was scored (its SHA-256 is "
                             f"{now[:16]}..., the run report's {item['sha256'][:16]}...): "
                             "score it again")
        return
    newest = max(os.stat(file).st_mtime_ns for file in files)
    if not job.output.is_file() or job.output.stat().st_mtime_ns <= newest:
        raise InputError(f"{job.input}: its scores file {job.output} is not newer than it "
                         "(changed since it was scored?): score it again")


def read_scores(path: Path, item: dict[str, Any], options: ScoreOptions, *,
                most_rows: int, recording=None) -> dict[str, np.ndarray]:
    """A scores file's ``score``, ``flagged``, ``readable``, with labels ``label`` (and
    ``truth`` when the run read them as labels), and a recording's (``recording``: its
    :class:`anomaly.recordings.segment.Segmenter`) ``sample`` and ``beat``.

    Bounded before it is read: its rows are the run report's (or, for an input the run
    skipped, at most ``most_rows``), its size and columns those of such a file (a
    Parquet file by its metadata: a small file may unpack to gigabytes), and only the
    columns used are read.

    Raises InputError naming the file when it is not the run's: a size, row count or
    layout the run report does not give, a missing column, a value that is not a number
    (or not a whole one where it must be), a label too long to be one, beats of another
    record, outside the span scored or out of order.
    """
    if not path.is_file():
        raise InputError(f"{path}: no such scores file (the run report names it for "
                         f"{shortened(item['input'])})")
    # An input the run skipped as up to date has its scores from an earlier run.
    rows = None if "skipped" in item else item["rows_scored"]
    most = most_rows if rows is None else rows
    limit = _SLACK_BYTES + _BYTES_PER_ROW * most
    if path.stat().st_size > limit:
        raise InputError(f"{path}: {path.stat().st_size:,} bytes is not a scores file of "
                         f"{'at most ' if rows is None else ''}{most:,} rows")
    needed = ["score", "is_anomaly"] + (["record", "sample", "beat"] if recording else [])
    table = _scores_table(path, needed, most, limit)
    if rows is not None and len(table) != rows:
        raise InputError(f"{path}: {len(table):,} rows, the run report says {rows:,} were "
                         "scored: not this run's scores")
    if len(table) > most:
        raise InputError(f"{path}: {len(table):,} rows, more beats than the recording can "
                         "hold: not its scores")
    try:
        scores = {"score": _score_column(table["score"]),
                  "flagged": _whole(table["is_anomaly"], "is_anomaly", 0, 1) == 1}
        if recording:
            scores["sample"] = _whole(table["sample"], "sample", 0, np.iinfo(np.int64).max)
            scores["beat"] = _whole(table["beat"], "beat", 1, np.iinfo(np.int64).max)
    except ValueError as error:
        raise InputError(f"{path}: not a scores file ({first_line(error)})") from None
    unreadable = (table["unreadable"].fillna("").astype(str).to_numpy()
                  if "unreadable" in table.columns else np.full(len(table), ""))
    scores["readable"] = unreadable == ""
    if recording:
        _check_beats(path, table["record"].astype(str), scores["sample"], recording)
    label = table.attrs.get("label")
    if label is not None:
        labels = table[label].astype(str).to_numpy(dtype=object)
        if len(labels) and max(map(len, labels)) > MAX_LABEL_CHARACTERS:
            raise InputError(f"{path}: a label of more than {MAX_LABEL_CHARACTERS} "
                             f"characters in its column {shortened(label)!r}: not a scores file")
        scores["label"] = labels
        if options.label_column is not None:
            scores["truth"] = (labels != options.normal_label).astype(np.int8)
    return scores


#: The longest label a scores file's label column may hold (AAMI classes, ECG5000's
#: digits and the like are a few characters).
MAX_LABEL_CHARACTERS = 64
#: The most columns a scores file has: a beat's ids, its score and flag, its label.
_MOST_COLUMNS = 16


def _scores_table(path: Path, needed: list[str], most_rows: int, most_bytes: int):
    """The columns of a scores file the summary uses (``needed``, ``unreadable`` and the
    labels' column, the one after ``is_anomaly``, named in ``attrs["label"]``), checked
    before they are read: their names, and for Parquet its rows and unpacked bytes."""
    import pandas as pd

    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            metadata = pq.ParquetFile(path).metadata
            columns = [metadata.schema.column(index).name
                       for index in range(metadata.num_columns)]
            unpacked = sum(metadata.row_group(index).total_byte_size
                           for index in range(metadata.num_row_groups))
            if metadata.num_rows > most_rows or unpacked > most_bytes:
                raise InputError(f"{path}: {metadata.num_rows:,} rows and {unpacked:,} bytes "
                                 f"unpacked, more than a scores file of {most_rows:,} rows")
        else:
            with path.open("rb") as file:
                head = file.readline(_SLACK_BYTES + 1)
            if len(head) > _SLACK_BYTES:
                raise InputError(f"{path}: its header line is longer than {_SLACK_BYTES:,} "
                                 "bytes: not a scores file")
            columns = list(pd.read_csv(path, nrows=0, dtype=str).columns)
        if len(columns) > _MOST_COLUMNS:
            raise InputError(f"{path}: {len(columns):,} columns, not a scores file")
        missing = [name for name in needed if name not in columns]
        if missing:
            raise InputError(f"{path}: not a scores file (no column {', '.join(missing)})")
        after = columns.index("is_anomaly") + 1
        label = columns[after] if after < len(columns) else None
        used = list(dict.fromkeys(needed + [name for name in ("unreadable", label)
                                           if name in columns]))
        table = (_parquet_columns(path, used, most_rows, most_bytes)
                 if path.suffix == ".parquet" else
                 pd.read_csv(path, dtype=str, keep_default_na=False, usecols=used))
    except InputError:
        raise
    except Exception as error:  # noqa: BLE001 - pandas and pyarrow raise many kinds.
        raise InputError(f"{path}: not a scores file ({first_line(error)[:200]})") from None
    table.attrs["label"] = label
    return table


#: Rows of a Parquet scores file decoded at a time, each batch counted before the next.
_PARQUET_BATCH_ROWS = 4096


def _parquet_columns(path: Path, columns: list[str], most_rows: int, most_bytes: int):
    """A Parquet scores file's ``columns`` as a DataFrame, their decoded size checked
    first: a dictionary-encoded text column holds each text once in the file and in its
    row groups' unpacked sizes, but decodes it once a row (one 2.4 MB text in 384 rows of
    an 11 KB file decoded to 2.6 GB). So text columns are read as dictionaries, their
    decoded bytes counted, and only then decoded, to objects that share the texts."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    texts = []
    for name in columns:
        kind = schema.field(name).type
        text = kind.value_type if pa.types.is_dictionary(kind) else kind
        if pa.types.is_string(text) or pa.types.is_large_string(text):
            texts.append(name)
        elif text is not kind or not (pa.types.is_integer(kind) or pa.types.is_floating(kind)
                                      or pa.types.is_boolean(kind)):
            raise InputError(f"{path}: its column {name} holds {kind}, not numbers or text: "
                             "not a scores file")
    # Batch by batch, counted as they come: the footer's rows and sizes are the file's
    # word, and a file of 4.5 MB whose footer said 1,000 rows held 300 million.
    batches, rows, decoded = [], 0, 0
    for batch in pq.ParquetFile(path, read_dictionary=texts).iter_batches(
            batch_size=_PARQUET_BATCH_ROWS, columns=columns):
        rows += batch.num_rows
        for column in batch.columns:
            if pa.types.is_dictionary(column.type):
                lengths = pc.binary_length(column.dictionary)
                decoded += pc.sum(pc.take(lengths, column.indices)).as_py() or 0
            else:
                decoded += column.nbytes
        if rows > most_rows or decoded > most_bytes:
            raise InputError(f"{path}: {rows:,} rows of {decoded:,} bytes decoded, more than "
                             f"a scores file of {most_rows:,} rows (and not all read)")
        batches.append(batch)
    table = pa.Table.from_batches(batches, schema=batches[0].schema) if batches else \
        pq.read_table(path, columns=columns, read_dictionary=texts)
    frame = table.to_pandas()
    for name in frame.columns:  # Categoricals to objects: the codes index the shared texts.
        if isinstance(frame[name].dtype, pd.CategoricalDtype):
            frame[name] = frame[name].astype(object)
    return frame


#: The largest score a scores file may hold: a model's score is an error (and a distance),
#: never negative and nowhere near this; beyond it the pictures' arithmetic overflows.
MAX_SCORE = 1e100


def _score_column(column) -> np.ndarray:
    """The scores, each a number from 0 to :data:`MAX_SCORE`."""
    values = _numbers(column, "score")
    if np.any(values < 0) or np.any(values > MAX_SCORE):
        raise ValueError(f"column score holds a value that is not a model's score (from 0 "
                         f"to {MAX_SCORE:g})")
    return values


def _numbers(column, name: str) -> np.ndarray:
    try:
        values = np.asarray(column, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"column {name} holds a value that is not a number") from None
    if not np.all(np.isfinite(values)):
        raise ValueError(f"column {name} holds a value that is not a finite number")
    return values


def _whole(column, name: str, least: int, most: int) -> np.ndarray:
    """A column of whole numbers from ``least`` to ``most``."""
    values = _numbers(column, name)
    if np.any(values != np.round(values)) or np.any(values < least) or \
            np.any(values > most):
        raise ValueError(f"column {name} holds a value that is not a whole number from "
                         f"{least} to {most}")
    return values.astype(np.int64)


def _check_beats(path: Path, records, samples: np.ndarray, segmenter) -> None:
    """A recording's scores are its own: its record's name, its beats in the span scored,
    in order."""
    record = segmenter.lead.record
    others = sorted(set(records) - {record})
    if others:
        raise InputError(f"{path}: the scores of record {shortened(others[0])!r}, not of "
                         f"{record!r} (the recording the run report names)")
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
        rows = top_rows(scores["score"], scores["readable"], TOP_BEATS + _TRIES)
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
        rows = normal_sample_rows(scores["score"], scores["readable"], threshold,
                           NORMAL_SAMPLE - len(candidates))
        candidates += [(float(scores["score"][row]), name, int(row)) for row in rows]
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
    from ..recordings.signals import open_lead

    label = str(scores["label"][row]) if "label" in scores else None
    fs = open_lead(name, lead=segment.lead, fs=segment.fs).fs
    return ScoredBeat(name, int(scores["beat"][row]), float(scores["score"][row]), values,
                      label, round(int(scores["sample"][row]) / fs, 4),
                      rr_s=rr_intervals(scores, row))
