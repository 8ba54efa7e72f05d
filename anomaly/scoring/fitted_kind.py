"""Whether an input's beats are of the kind a model was fitted on, checked before scoring.

A model learns beats as they were made: cut from a recording around each R peak by its
beat window, at that recording's sampling rate, from one lead; or as a beats CSV held
them. Beats made otherwise get scores the model's threshold was not set for (a model
fitted on a beats CSV flagged every beat of a recording), and nothing in the scores
shows it. So, once the model has loaded and before anything is created, what the model
records of its training beats (:class:`anomaly.model.Provenance`) is compared with each
input, and what differs is said in one line naming the input and the model:

- **refused** (InputError, exit 2) where the scores would mean nothing or the input cannot
  be read as the model asks: beats of another length than the model's input (refused
  where the length is known, as a CSV's first line is read:
  :func:`anomaly.io.csv_parser.layout_from_head`; a recording's beats are resampled to the
  model's length), and a lead the model was fitted on that the recording lacks (said as
  the model's, not as a lead the user asked for);
- **warned about** where the scores may still be usable: a model fitted on a beats CSV
  scoring a recording (ECG5000's beats are made as ``anomaly beats`` makes them, so such
  a model may apply; but the window its beats were cut by is unknown), a recording at
  another sampling rate than the model's (the beats are cut by the same window in seconds
  and resampled to the same length, but R-peak detection and the beats' detail change
  with the rate), a lead other than the model's asked for with ``--lead`` (the user's
  choice, but another lead's beats have another shape, and they are not centred on the
  model's dominant beat), a model fitted on a recording scoring a beats CSV that
  ``anomaly beats`` did not write (its beats may be cut by another window), and one that
  centres beats on the patient's dominant beat (:mod:`anomaly.recordings.alignment`)
  scoring any beats CSV (cut around R peaks alone). A refusal there would stop runs that
  are right; a warning costs a line. Each is said once the input's first beats have been
  read, before they are scored (:func:`anomaly.scoring.pipeline.score_source`), so that
  an input refused before it yields a beat fails in one line, as every failure does.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..exceptions import InputError
from ..io.layout import ID_COLUMNS
from ..io.readers import STDIO
from ..recordings.limits import SAME_RATE_TOLERANCE
from .base import ModelLimits
from .plan import Job

if TYPE_CHECKING:
    from ..model import AutoencoderDetector



def model_label(where: str | os.PathLike) -> str:
    """How messages name a model: ``the model (DIR)`` on the command line, ``the model
    (NAME)`` in the service (by the name it serves it under, not where it lies)."""
    return f"the model ({where})"


def fitted_kind_warnings(job: Job, detector: "AutoencoderDetector", model: str) -> list[str]:
    """The warnings for scoring ``job``'s input with ``detector``, one line each,
    ``Warning: INPUT: ...``, naming the model as ``model`` (:func:`model_label`); none when its
    beats are of the kind the model was fitted on.

    Raises
    ------
    InputError
        The recording lacks the lead the model was fitted on (and ``--lead`` chose none).
    """
    if job.input == STDIO or not os.path.isfile(job.input) and \
            not job.options.is_recording(job.input):
        # A pipe or FIFO is read once, by scoring: its head cannot be read here first.
        return []
    if job.options.is_recording(job.input):
        problems = _recording_differences(job, detector, model)
    else:
        problems = _csv_differences(job, detector, model)
    return [f"Warning: {job.input}: {problem}" for problem in problems]


def _recording_differences(job: Job, detector, model: str) -> list[str]:
    from ..recordings.signals import NoSuchLead, listed, open_lead
    from .sources import recording_segment

    limits = ModelLimits.of(detector)
    segment = recording_segment(job.options, limits)
    asked = job.options.segment.lead if job.options.segment is not None else None
    try:
        lead = open_lead(job.input, lead=segment.lead, fs=segment.fs)
    except NoSuchLead as error:
        if asked is not None:
            raise
        raise InputError(f"{error.path}: {model} was fitted on lead {error.lead!r}, which "
                         f"this recording does not have (its leads: {listed(error.leads)}); "
                         "choose one with --lead (lead= over HTTP)") from None
    return lead_differences(detector, model, lead.fs, lead.name if asked is not None else None)


def lead_differences(detector, model: str, fs: float, asked: str | None = None) -> list[str]:
    """What differs between the beats ``detector`` was fitted on and those of a lead at
    ``fs`` Hz (``asked``: the lead a user chose, None when the model's own or unnamed),
    one line each, naming the ``model``: a live stream's too."""
    limits = ModelLimits.of(detector)
    origin = detector.provenance_.recording
    if origin is None:
        window = limits.beat_window()
        file = detector.provenance_.file
        trained = f"a beats CSV ({file})" if file else "beats not cut from a recording"
        return [f"{model} was fitted on {trained}, so how its beats were cut is unknown; "
                f"this recording's are cut {window.before:g} s before to {window.after:g} s "
                "after each R "
                f"peak, resampled to {window.samples} samples"
                f"{'' if window.keep_amplitude else ' and z-normalised'}: if they were not "
                "cut so, the scores do not mean what its threshold says (fit a model on a "
                "recording)"]
    problems = []
    if origin.fs is not None and abs(fs - origin.fs) > SAME_RATE_TOLERANCE * origin.fs:
        problems.append(f"{model} was fitted on a recording at {origin.fs:g} Hz and this one "
                        f"is at {fs:g} Hz: its beats are cut by the same window and "
                        "resampled to the same length, but R-peak detection and the beats' "
                        "detail change with the rate; check the scores, or fit a model at "
                        f"{fs:g} Hz")
    if asked is not None and origin.lead is not None and asked != origin.lead:
        # Another lead than the model's is never aligned (SegmentOptions.aligns).
        aligned = origin.window.template is not None
        problems.append(f"{model} was fitted on lead {origin.lead} and --lead reads lead "
                        f"{asked}: another lead's beats have another shape, so many "
                        "may be flagged for that alone"
                        + (f" (and they are cut around their R peaks, not centred on the "
                           f"dominant beat of lead {origin.lead} as the model's were)"
                           if aligned else ""))
    return problems


def _csv_differences(job: Job, detector, model: str) -> list[str]:
    from ..io.csv_parser import layout_from_head
    from ..io.readers import InputSource
    from ..model.context import beat_context

    origin = detector.provenance_.recording
    if origin is None:
        return []
    options = job.options
    try:
        with InputSource(job.input) as source:
            layout = layout_from_head(job.input, source.read_head(),
                                      label_column=options.label_column,
                                      header=options.header,
                                      samples=detector.scaling_.n_samples)
    except InputError:
        return []  # Reading the input refuses it, in its own words (another length too).
    context = beat_context(detector.scaling_.context)
    if context is not None and context.missing(layout.id_names):
        # A model with a context refuses a CSV without the columns it is computed from,
        # in its own words, as the first block is scored.
        return []
    problems = []
    if origin.window.template is not None:
        problems.append(f"{model} centres each beat's window on the wave of its QRS complex "
                        "that matches the patient's dominant beat, and a beats CSV's beats "
                        "were cut around their R peaks alone: where a QRS complex's R and S "
                        "waves are of a size, their scores may be high; score the recording "
                        "itself")
    if not set(ID_COLUMNS) & set(layout.id_names):
        window = origin.window
        lead = f"lead {origin.lead}, " if origin.lead else ""
        problems.append(f"{model} was fitted on beats cut from a recording ({lead}"
                        f"{window.before:g} s before to {window.after:g} s after each R "
                        f"peak); this file has none of the columns "
                        f"{', '.join(ID_COLUMNS[:3])} that 'anomaly beats' writes, so its "
                        "beats may be cut otherwise and the scores not mean what the "
                        "model's threshold says")
    return problems
