"""Carrying out a scoring run: the plan's jobs through an engine, then the run's reports.

Order of work: the engine checks every job and the model loads (a bad model or an
impossible job costs nothing and creates nothing); each input is compared with the beats
the model was fitted on (:mod:`.fitted_kind`: refused, or a warning line per difference);
the output directory is created; each output is locked for the whole run; each input is
scored and its output committed as soon as it is complete; the plots, the HTML report and
the JSON run report come last. A failure on one input leaves the outputs already committed
(complete and correct) and writes nothing for the failing input.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import time
from dataclasses import replace

import numpy as np

from .. import logs
from ..exceptions import InputError
from ..progress import rows_progress
from .base import Engine, ModelLimits
from .fitted_kind import fitted_kind_warnings, model_label as label_of
from .plan import Job, RunPlan, is_up_to_date, rejects_file_for
from .summary import InputResult, RunResult, ScoredInput, ScoreSummary


def execute(plan: RunPlan, engine: Engine | None = None, *, progress: bool = False,
            detector=None, model_label: str | None = None) -> RunResult:
    """Score every job of a plan and write the run's plots and reports.

    Parameters
    ----------
    plan : RunPlan
        From :func:`anomaly.scoring.plan.plan_run`.
    engine : Engine, optional
        Where to score; default :class:`anomaly.scoring.engines.LocalEngine`.
    progress : bool, default False
        Draw a progress bar on stderr when it is a terminal.
    detector : AutoencoderDetector, optional
        The plan's model, already loaded from ``plan.model_dir`` (the service's); default:
        loaded here.
    model_label : str, optional
        How messages name the model (the service: by the name it serves it under, not by
        where it lies); default: :func:`.fitted_kind.model_label` of ``plan.model_dir``.

    Returns
    -------
    RunResult
        Per input counts, the run's summary and metrics; ``report()`` is the JSON report.

    Raises
    ------
    InputError, ModelError, OutputLockedError
        The first failure; outputs committed before it stay, complete.
    """
    from ..model import AutoencoderDetector
    from ..report.metrics import format_report
    from .engines import LocalEngine

    engine = LocalEngine() if engine is None else engine
    started = time.perf_counter()
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    for job in plan.jobs:
        engine.check(job)
    if detector is None:
        detector = AutoencoderDetector.load(plan.model_dir, runtime=plan.runtime)
    loaded = time.perf_counter()
    # Each input against the beats the model was fitted on: refused now, before anything
    # is created, or warned about as its beats come (an input skipped as up to date is not
    # looked at).
    checked = {job.index: replace(job, warnings=tuple(
                   fitted_kind_warnings(job, detector, model_label or label_of(plan.model_dir))))
               for job in plan.jobs
               if not (plan.skip_existing and is_up_to_date(job, plan.model_dir))}
    if plan.output_dir is not None:
        plan.output_dir.mkdir(parents=True, exist_ok=True)
    summary = ScoreSummary(float(detector.threshold_))
    results: dict[int, InputResult] = {}
    with contextlib.ExitStack() as locks:
        for job in plan.jobs:
            if job.output is not None:
                _lock(locks, job)
        todo = []
        for job in plan.jobs:
            if plan.skip_existing and is_up_to_date(job, plan.model_dir):
                results[job.index] = _skipped(job)
            else:
                todo.append(checked.get(job.index, job))
        if todo:
            locks.enter_context(engine)
        engine_started = time.perf_counter()
        for job in todo:
            job_started = time.perf_counter()
            with rows_progress(job.input, progress) as bar:
                outcome = engine.score(job, detector, plan.model_dir, progress=bar)
            results[job.index] = _input_result(job, outcome, time.perf_counter() - job_started)
            summary.merge(outcome.summary)
        inputs = [results[job.index] for job in plan.jobs]
        for item in inputs:
            if item.skipped is None:
                _log_input(item, summary.threshold, detector.runtime_.name)
        scored = time.perf_counter()
        metrics = summary.metrics() if summary.scores else None
        if metrics is not None:
            logs.info(format_report(metrics), event="metrics", metrics=metrics)
        recordings = recording_segments(plan, detector, summary)
        if any(place is not None for place in (plan.report, plan.html, plan.plot_dir)):
            inputs = with_rhythms(inputs, summary, recordings)
        rhythms = {item.input: item.rhythm for item in inputs if item.rhythm is not None}
        result = RunResult(
            inputs, summary, engine.name,
            model={"dir": str(plan.model_dir), "sha256": detector.model_sha256_,
                   "threshold": float(detector.threshold_),
                   "threshold_k": float(detector.threshold_k),
                   "threshold_winsorise": int(detector.threshold_winsorise),
                   "runtime": detector.runtime_.name},
            created=created,
            seconds={"load_model": loaded - started, "engine_start": engine_started - loaded,
                     "scoring": scored - engine_started},
            metrics=metrics, plots=write_plots(plan, detector, summary, recordings, rhythms),
            html=None if plan.html is None else str(plan.html),
            options=None if not plan.jobs else {**plan.jobs[0].options.as_json(),
                                                "directory": os.getcwd()})
        write_reports(plan, detector, result, recordings)
    return result


def _lock(locks: contextlib.ExitStack, job: Job) -> None:
    """Hold the lock of the job's output (and rejects file) for the whole run."""
    from ..io.writers import output_lock

    # The rejects file's name is guarded even when this run rejects nothing: a killed run
    # in skip mode may have left its temporary.
    stale = locks.enter_context(output_lock(job.output, companions=[rejects_file_for(job.output)]))
    if stale:
        logs.info(f"Removed {len(stale)} temporary file(s) left beside {job.output} by "
                  "an interrupted run.", event="stale_removed",
                  paths=[str(item) for item in stale])


def _skipped(job: Job) -> InputResult:
    logs.info(f"Skipped {job.input}: {job.output} is newer than it and the model.",
              event="skipped", input=job.input, output=str(job.output))
    return InputResult(input=job.input, output=str(job.output),
                       skipped="output is newer than input and model")


def _input_result(job: Job, outcome: ScoredInput, seconds: float) -> InputResult:
    counts = outcome.counts
    return InputResult(
        input=job.input, output=None if job.output is None else str(job.output),
        sha256=outcome.sha256, rows_read=counts.rows_read, rows_scored=counts.rows_scored,
        rows_rejected=counts.rows_rejected, anomalies=counts.anomalies, seconds=seconds,
        rejects_file=None if job.rejects is None else str(job.rejects),
        rows_unreadable=counts.rows_unreadable,
        analysable=outcome.summary.analysable.get(job.input))


def _log_input(item: InputResult, threshold: float, runtime: str) -> None:
    scored = max(item.rows_scored, 1)
    rejected = (f", {item.rows_rejected} rejected (see {item.rejects_file})"
                if item.rows_rejected else "")
    where = f"; scores in {item.output}" if item.output else ""
    analysable = (f"; {item.analysable.describe()}" if item.analysable is not None else
                  f"; {item.rows_unreadable} rows marked unreadable, never flagged"
                  if item.rows_unreadable else "")
    what = "beats" if item.analysable is not None else "rows"  # A recording's are beats.
    logs.info(
        f"Scored {item.rows_scored} {what} from {item.input} ({runtime} runtime): "
        f"{item.anomalies} anomal{'y' if item.anomalies == 1 else 'ies'} "
        f"({item.anomalies / scored:.1%}) above the threshold "
        f"{threshold:.6g}{analysable}{rejected}{where}.",
        event="scored", runtime=runtime, **item.as_json())
    from ..recordings import too_many_flagged_note

    note = too_many_flagged_note(item.anomalies, item.rows_scored, item.rows_unreadable,
                                 recording=item.analysable is not None)
    if note is not None:
        logs.warning(f"Warning: {item.input}: {note}", event="most_flagged")


def write_plots(plan: RunPlan, detector, summary: ScoreSummary, recordings: dict,
                 rhythms: dict) -> list[str]:
    if plan.plot_dir is None or not summary.scores:
        return []
    from ..report.plots import save_batch_plots

    plots = [str(path) for path in save_batch_plots(detector, summary, plan.plot_dir)]
    if summary.timelines:
        from ..report.recordings import save_recording_plots

        plots += [str(path) for path in save_recording_plots(summary, recordings,
                                                             plan.plot_dir, rhythms)]
    logs.info(f"Plots written to {plan.plot_dir}/", event="plots", plots=plots)
    return plots


def recording_segments(plan: RunPlan, detector, summary: ScoreSummary) -> dict:
    """The run's scored recordings, in input order, each with how its beats were found
    (:class:`anomaly.recordings.segment.SegmentOptions`), for their pictures."""
    from .sources import recording_segment

    limits = ModelLimits.of(detector)
    return {job.input: recording_segment(job.options, limits) for job in plan.jobs
            if job.input in summary.timelines}


def with_rhythms(inputs: list[InputResult], summary: ScoreSummary, recordings: dict, *,
                 found_again: bool = False) -> list[InputResult]:
    """The inputs, each recording with its rhythm (read again from the recording: the
    cost of a run that writes a report or plots, not of every run), each said in the
    log. A recording whose scoring this run did not see (skipped as up to date, then
    summarised) takes what was analysable from the rhythm's reading. With
    ``found_again`` (``anomaly summary``, whose scores were written by another run), an
    InputError, before the recording's rhythm is said, when its scored beats are not
    where the reading finds its beats (:func:`_check_found_again`)."""
    from ..exceptions import first_line
    from ..holter.summary import recording_rhythm
    from ..io.beats import is_anomaly

    with_rhythms = []
    for item in inputs:
        if item.input in recordings:
            peaks, scores, readable = summary.timeline(item.input)
            try:
                rhythm = recording_rhythm(
                    item.input, recordings[item.input], peaks=peaks, scores=scores,
                    flagged=is_anomaly(scores, summary.threshold, readable),
                    analysable_s=item.analysable.seconds if item.analysable else None)
            except Exception as error:  # noqa: BLE001 - the scores are written: report them.
                if found_again:  # The scores' own check needs the reading.
                    raise InputError(f"{item.output}: the beats of {item.input} could not "
                                     "be found again to check these are its scores "
                                     f"({first_line(error)})") from None
                # The rhythm adds to a finished run: a recording that cannot be read again
                # (changed since it was scored, too short for the analysis window) costs
                # its rhythm, not the run's reports.
                logs.warning(f"Warning: the rhythm of {item.input} was not analysed: "
                             f"{first_line(error)}", event="rhythm_failed", input=item.input)
            else:
                if found_again:
                    _check_found_again(item, peaks, rhythm.samples)
                logs.info(f"Rhythm of {item.input}: {rhythm.describe()}.", event="rhythm",
                          input=item.input, rhythm=rhythm.as_json())
                # Its start as the recording read again gives it: the HTML's and the
                # rhythm's, whatever a run report read back said.
                item = replace(item, rhythm=rhythm, analysable=rhythm.analysable if
                               item.analysable is None else
                               replace(item.analysable, started=rhythm.started))
        with_rhythms.append(item)
    return with_rhythms


#: The least share of a recording's scored beats whose R peaks its rhythm's reading finds
#: again (the same detector: all of them but a few at a span's edges).
MIN_FOUND_AGAIN = 0.9


def _check_found_again(item: InputResult, scored: np.ndarray, found: np.ndarray) -> None:
    """The scored beats are the recording's: their R peaks (``scored``) are where its
    rhythm's reading found its beats again (``found``). For ``anomaly summary``: a scores
    file of another recording of the same name, put in place of an input the run skipped,
    passes every other check."""
    share = float(np.isin(scored, found).mean()) if len(scored) else 1.0
    if share < MIN_FOUND_AGAIN:
        raise InputError(f"{item.output}: only {share:.0%} of its beats are where the beats "
                         f"of {item.input} are found again: not the scores of this recording")


def write_reports(plan: RunPlan, detector, result: RunResult, recordings: dict) -> None:
    """Write the HTML report and the JSON run report."""
    from ..io.writers import write_json

    if plan.html is not None:
        from ..report.html import write_html_report

        write_html_report(plan.html, detector, result, recordings)
        logs.info(f"HTML report written to {plan.html}", event="html", path=str(plan.html))
    if plan.report is not None:
        write_json(plan.report, result.report())
        logs.info(f"Report written to {plan.report}", event="report", path=str(plan.report))
